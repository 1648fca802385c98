//! Any JSON document, flattened to dotted paths (`a.b.0.c`), as sensu-plugins'
//! metrics-http-json-deep does: numbers as they are, booleans as 1/0, strings skipped.

use serde_json::Value;

use super::{Kind, Page, ParseError, Sample, families_from_samples};

/// Parse and flatten a JSON document.
pub fn parse(body: &[u8]) -> Result<Page<'static>, ParseError> {
    let doc: Value = serde_json::from_slice(body)
        .map_err(|e| ParseError { format: "json", problem: format!("invalid JSON: {e}") })?;
    let mut samples = Vec::new();
    flatten(&doc, &mut String::new(), &mut samples);
    let families = families_from_samples(&samples, |_| Kind::Gauge);
    Ok(Page { samples, families })
}

fn flatten(value: &Value, path: &mut String, out: &mut Vec<Sample<'static>>) {
    let push = |out: &mut Vec<Sample<'static>>, path: &str, v: f64| {
        let name = if path.is_empty() { "value".to_string() } else { path.to_string() };
        out.push(Sample { name: name.into(), labels: Vec::new(), value: v });
    };
    match value {
        Value::Number(n) => push(out, path, n.as_f64().unwrap_or(f64::NAN)),
        Value::Bool(b) => push(out, path, f64::from(u8::from(*b))),
        Value::Object(map) => {
            for (k, v) in map {
                descend(path, k, v, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                descend(path, &i.to_string(), v, out);
            }
        }
        Value::String(_) | Value::Null => {}
    }
}

fn descend(path: &mut String, key: &str, value: &Value, out: &mut Vec<Sample<'static>>) {
    let len = path.len();
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(key);
    flatten(value, path, out);
    path.truncate(len);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattens_to_dotted_paths() {
        let page =
            parse(br#"{"status":"UP","db":{"ok":true,"latency":0.12},"queues":[{"depth":3},{"depth":5}]}"#).unwrap();
        let got: Vec<(&str, f64)> = page.samples.iter().map(|s| (&*s.name, s.value)).collect();
        assert_eq!(got, [("db.ok", 1.0), ("db.latency", 0.12), ("queues.0.depth", 3.0), ("queues.1.depth", 5.0)]);
        assert!(parse(b"{").is_err());
    }
}
