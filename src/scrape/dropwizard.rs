//! Dropwizard/Codahale `MetricsServlet` JSON: `gauges`, `counters`, `histograms`,
//! `meters` and `timers`, each metric with its fields (`count`, `p99`, `m1_rate`, …).
//! Every numeric field becomes a sample `<metric>.<field>` (a gauge's `value` is the
//! metric itself); unit strings and non-numeric gauges are skipped.

use std::fmt;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::json::{Key, Numbers, Walk};
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
    let mut page = Page::default();
    // A metric's samples come together: a family per metric, if it has any.
    let mut current: Option<(&'static str, String)> = None;
    for_each_sample(body, |section, kind, metric, name, value| {
        if current.as_ref().is_none_or(|(s, m)| *s != section || m != metric) {
            page.families.push(Family { name: metric.to_string(), kind, label_keys: Vec::new(), samples: 0 });
            current = Some((section, metric.to_string()));
        }
        if let Some(family) = page.families.last_mut() {
            family.samples += 1;
        }
        page.samples.push(Sample { name: name.to_string().into(), labels: Vec::new(), value });
    })?;
    Ok(page)
}

/// Walk a `MetricsServlet` document in document order (`MetricsServlet` writes gauges,
/// counters, histograms, meters, timers), keeping nothing: each numeric field of each metric
/// goes to `each` as it is read, with its section, the section's kind, the metric's name and
/// the sample's (`<metric>.<field>`; a gauge's `value` is the metric itself; a metric that is
/// a bare number is itself; booleans as 1/0). Other sections and non-numeric fields are
/// skipped. Invalid JSON, a document that is not an object or a section that is not one fails
/// the whole document.
pub fn for_each_sample(
    body: &[u8],
    mut each: impl FnMut(&'static str, Kind, &str, &str, f64),
) -> Result<(), ParseError> {
    let mut json = serde_json::Deserializer::from_slice(body);
    let walked =
        serde::Deserializer::deserialize_any(&mut json, Document { each: &mut each, name: &mut String::new() });
    walked.and_then(|()| json.end()).map_err(|e| ParseError {
        format: "dropwizard json",
        // A shape error says what was expected (`invalid type: …, expected `gauges` to be an object`).
        problem: if e.is_data() { e.to_string() } else { format!("invalid JSON: {e}") },
    })
}

/// The document: an object of sections.
struct Document<'w, F> {
    each: &'w mut F,
    /// The sample name being written.
    name: &'w mut String,
}

/// A section's metrics (`section` names it).
struct Section<'w, F> {
    section: &'static str,
    kind: Kind,
    walk: Document<'w, F>,
}

/// One metric: an object of fields, or a number.
struct Metric<'w, 'm, F> {
    section: &'static str,
    kind: Kind,
    metric: &'m str,
    walk: &'m mut Document<'w, F>,
}

/// A field's value, kept if it is a number or a boolean.
struct Number;

impl<F> Document<'_, F> {
    fn reborrow(&mut self) -> Document<'_, F> {
        Document { each: &mut *self.each, name: &mut *self.name }
    }
}

impl<'de, F: FnMut(&'static str, Kind, &str, &str, f64)> Visitor<'de> for Document<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(Key)? {
            match SECTIONS.iter().find(|(section, _)| *section == key) {
                Some(&(section, kind)) => map.next_value_seed(Section { section, kind, walk: self.reborrow() })?,
                None => map.next_value::<IgnoredAny>().map(drop)?,
            }
        }
        Ok(())
    }
}

impl<'de, F: FnMut(&'static str, Kind, &str, &str, f64)> DeserializeSeed<'de> for Section<'_, F> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, F: FnMut(&'static str, Kind, &str, &str, f64)> Visitor<'de> for Section<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` to be an object", self.section)
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        while let Some(metric) = map.next_key_seed(Key)? {
            let (section, kind) = (self.section, self.kind);
            map.next_value_seed(Numbers(Metric { section, kind, metric: &metric, walk: &mut self.walk }))?;
        }
        Ok(())
    }
}

impl<'de, F: FnMut(&'static str, Kind, &str, &str, f64)> Walk<'de> for Metric<'_, '_, F> {
    type Value = ();

    fn number<E>(self, value: f64) -> Result<(), E> {
        (self.walk.each)(self.section, self.kind, self.metric, self.metric, value);
        Ok(())
    }

    fn nothing<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Metric { section, kind, metric, walk } = self;
        while let Some(field) = map.next_key_seed(Key)? {
            let Some(value) = map.next_value_seed(Numbers(Number))? else { continue };
            if section == "gauges" && field == "value" {
                (walk.each)(section, kind, metric, metric, value);
            } else {
                walk.name.clear();
                walk.name.push_str(metric);
                walk.name.push('.');
                walk.name.push_str(&field);
                (walk.each)(section, kind, metric, walk.name, value);
            }
        }
        Ok(())
    }
}

impl<'de> Walk<'de> for Number {
    type Value = Option<f64>;

    fn number<E>(self, value: f64) -> Result<Option<f64>, E> {
        Ok(Some(value))
    }

    fn nothing<E>(self) -> Result<Option<f64>, E> {
        Ok(None)
    }

    fn seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<f64>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<f64>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
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
        assert_eq!(
            parse(b"[1]").unwrap_err().problem,
            "invalid type: sequence, expected a JSON object at line 1 column 1"
        );
        assert!(
            parse(br#"{"version":"4","gauges":{"a":{"value":1}},"#).unwrap_err().problem.starts_with("invalid JSON: ")
        );
        let mut read = Vec::new();
        for_each_sample(
            br#"{"counters":{"c":{"count":1}},"gauges":{"g":2,"h":{"value":"x"}},"x":[{"gauges":5}]}"#,
            |s, _, m, n, v| {
                read.push((s, m.to_string(), n.to_string(), v));
            },
        )
        .unwrap();
        let read: Vec<(&str, &str, &str, f64)> =
            read.iter().map(|(s, m, n, v)| (*s, m.as_str(), n.as_str(), *v)).collect();
        assert_eq!(read, [("counters", "c", "c.count", 1.0), ("gauges", "g", "g", 2.0)], "document order");
        assert!(
            parse(br#"{"version":"4","gauges":5}"#).unwrap_err().problem.contains("expected `gauges` to be an object")
        );
    }
}
