//! Dropwizard/Codahale `MetricsServlet` JSON: `gauges`, `counters`, `histograms`,
//! `meters` and `timers`, each metric with its fields (`count`, `p99`, `m1_rate`, …).
//! Every numeric field becomes a sample `<metric>.<field>` (a gauge's `value` is the
//! metric itself); unit strings and non-numeric gauges are skipped.

use serde_json::Value;

use super::{Family, Kind, Page, ParseError, Sample};

const SECTIONS: [(&str, Kind); 5] = [
    ("gauges", Kind::Gauge),
    ("counters", Kind::Counter),
    ("histograms", Kind::Histogram),
    ("meters", Kind::Other),
    ("timers", Kind::Summary),
];

/// Whether a JSON body looks like a `MetricsServlet` document.
pub fn looks_like(body: &[u8]) -> bool {
    let has = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    has(b"\"version\"") && (has(b"\"gauges\"") || has(b"\"timers\"") || has(b"\"meters\"") || has(b"\"counters\""))
}

/// Parse a `MetricsServlet` document.
pub fn parse(body: &[u8]) -> Result<Page<'static>, ParseError> {
    let bad = |problem: String| ParseError { format: "dropwizard json", problem };
    let doc: Value = serde_json::from_slice(body).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    let Value::Object(doc) = doc else { return Err(bad("expected a JSON object".into())) };
    let mut page = Page::default();
    for (section, kind) in SECTIONS {
        let Some(metrics) = doc.get(section) else { continue };
        let Value::Object(metrics) = metrics else { return Err(bad(format!("`{section}` must be an object"))) };
        for (name, fields) in metrics {
            let before = page.samples.len();
            match fields {
                Value::Object(fields) => {
                    for (field, value) in fields {
                        let Some(v) = number(value) else { continue };
                        let sample_name = if section == "gauges" && field == "value" {
                            name.clone()
                        } else {
                            format!("{name}.{field}")
                        };
                        page.samples.push(Sample { name: sample_name.into(), labels: Vec::new(), value: v });
                    }
                }
                other => {
                    if let Some(v) = number(other) {
                        page.samples.push(Sample { name: name.clone().into(), labels: Vec::new(), value: v });
                    }
                }
            }
            let samples = page.samples.len() - before;
            if samples > 0 {
                page.families.push(Family { name: name.clone(), kind, label_keys: Vec::new(), samples });
            }
        }
    }
    Ok(page)
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_section_and_field() {
        let doc = br#"{"version":"4.0.0",
          "gauges":{"jvm.memory.heap.used":{"value":123456},"jvm.threads.deadlocks":{"value":[]},"app.ready":{"value":true}},
          "counters":{"requests.active":{"count":5}},
          "histograms":{"sizes":{"count":10,"max":9,"mean":4.5,"min":0,"p50":4,"p75":6,"p95":8,"p98":9,"p99":9,"p999":9,"stddev":2.9}},
          "meters":{"hits":{"count":100,"m15_rate":1.5,"m1_rate":2.5,"m5_rate":2.0,"mean_rate":1.9,"units":"events/second"}},
          "timers":{"db.query":{"count":42,"max":0.5,"mean":0.1,"min":0.01,"p50":0.09,"p75":0.12,"p95":0.3,"p98":0.4,"p99":0.45,"p999":0.5,"stddev":0.05,"m15_rate":0.2,"m1_rate":0.3,"m5_rate":0.25,"mean_rate":0.21,"duration_units":"seconds","rate_units":"calls/second"}}}"#;
        assert!(looks_like(doc));
        let page = parse(doc).unwrap();
        let names: Vec<&str> = page.samples.iter().map(|s| &*s.name).collect();
        assert_eq!(&names[..3], ["jvm.memory.heap.used", "app.ready", "requests.active.count"]);
        assert_eq!(page.samples.iter().filter(|s| s.name.starts_with("sizes.")).count(), 11);
        assert_eq!(page.samples.iter().filter(|s| s.name.starts_with("hits.")).count(), 5);
        assert_eq!(page.samples.iter().filter(|s| s.name.starts_with("db.query.")).count(), 15);
        assert_eq!(page.families.len(), 6);
        assert!(parse(b"[1]").is_err());
        assert!(parse(br#"{"version":"4","gauges":5}"#).unwrap_err().problem.contains("`gauges` must be an object"));
    }
}
