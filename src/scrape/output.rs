//! Output formats for a courier shot. Every line carries the same timestamp.
//!
//! * Graphite plaintext: `<scheme>.<prefix><name>.<label>.<value>… <value> <ts>`; label
//!   keys and values are folded into the path, each made safe as one path node
//!   (anything but `[A-Za-z0-9_:-]` becomes `_`).
//! * InfluxDB line protocol: `<prefix><name>[,label=value…] value=<v> <ts in ns>`, with
//!   line-protocol escaping.
//! * OpenTSDB (telnet `put`): `put <prefix><name> <ts> <v> label=value…`, with a `host`
//!   tag when a sample has no labels (OpenTSDB needs one).
//!
//! NaN and infinite values cannot be written in these formats and are skipped (counted).

use std::fmt::Write as _;

use serde::Deserialize;

use super::Sample;

/// The output format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputFormat {
    /// Graphite plaintext (default).
    #[default]
    Graphite,
    /// InfluxDB line protocol.
    Influx,
    /// OpenTSDB telnet `put` lines.
    Opentsdb,
}

/// How to write one shot.
#[derive(Debug, Clone)]
pub struct Writer {
    /// The format.
    pub format: OutputFormat,
    /// Graphite path prefix (the scheme).
    pub scheme: String,
    /// Prefix added to every metric name.
    pub prefix: String,
    /// The one timestamp, epoch seconds.
    pub timestamp: i64,
    /// The `host` tag for OpenTSDB samples without labels.
    pub host: String,
}

/// Copy `s`, replacing every character `keep` rejects by `_` (fast path: nothing to replace).
fn sanitized(s: &str, out: &mut String, keep: impl Fn(u8) -> bool) {
    if s.bytes().all(&keep) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        out.push(if c.is_ascii() && keep(c as u8) { c } else { '_' });
    }
}

/// Make a string safe as one Graphite path node.
pub fn graphite_node(s: &str, out: &mut String) {
    sanitized(s, out, |b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':'));
}

fn graphite_name(s: &str, out: &mut String) {
    sanitized(s, out, |b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':' | b'.'));
}

fn influx_escape(s: &str, out: &mut String, measurement: bool) {
    for c in s.chars() {
        if c == ',' || c == ' ' || (!measurement && c == '=') || c == '\\' {
            out.push('\\');
        }
        if c == '\n' {
            out.push_str("\\n");
        } else {
            out.push(c);
        }
    }
}

fn tsdb_safe(s: &str, out: &mut String) {
    for c in s.chars() {
        out.push(if c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '/') { c } else { '_' });
    }
}

fn value(v: f64, out: &mut String) {
    // Integral values (counters, most gauges) without going through float formatting.
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

impl Writer {
    /// Append one sample (with its final name) to `out`. Returns false if skipped
    /// (non-finite value).
    pub fn write(&self, name: &str, sample: &Sample<'_>, out: &mut String) -> bool {
        if !sample.value.is_finite() {
            return false;
        }
        match self.format {
            OutputFormat::Graphite => {
                if !self.scheme.is_empty() {
                    out.push_str(&self.scheme);
                    out.push('.');
                }
                graphite_name(&self.prefix, out);
                graphite_name(name, out);
                for (k, v) in &sample.labels {
                    out.push('.');
                    graphite_node(k, out);
                    out.push('.');
                    graphite_node(v, out);
                }
                out.push(' ');
                value(sample.value, out);
                let _ = writeln!(out, " {}", self.timestamp);
            }
            OutputFormat::Influx => {
                influx_escape(&self.prefix, out, true);
                influx_escape(name, out, true);
                for (k, v) in &sample.labels {
                    if v.is_empty() {
                        continue;
                    }
                    out.push(',');
                    influx_escape(k, out, false);
                    out.push('=');
                    influx_escape(v, out, false);
                }
                out.push_str(" value=");
                value(sample.value, out);
                let _ = writeln!(out, " {}", i128::from(self.timestamp) * 1_000_000_000);
            }
            OutputFormat::Opentsdb => {
                out.push_str("put ");
                tsdb_safe(&self.prefix, out);
                tsdb_safe(name, out);
                let _ = write!(out, " {} ", self.timestamp);
                value(sample.value, out);
                let mut tagged = false;
                for (k, v) in &sample.labels {
                    if v.is_empty() {
                        continue;
                    }
                    out.push(' ');
                    tsdb_safe(k, out);
                    out.push('=');
                    tsdb_safe(v, out);
                    tagged = true;
                }
                if !tagged {
                    out.push_str(" host=");
                    tsdb_safe(&self.host, out);
                }
                out.push('\n');
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str, labels: &[(&str, &str)], v: f64) -> Sample<'static> {
        Sample {
            name: name.to_string().into(),
            labels: labels.iter().map(|(k, v)| (k.to_string().into(), v.to_string().into())).collect(),
            value: v,
        }
    }

    fn writer(format: OutputFormat) -> Writer {
        Writer {
            format,
            scheme: "web-1.app".into(),
            prefix: String::new(),
            timestamp: 1700000000,
            host: "web-1".into(),
        }
    }

    #[test]
    fn graphite_folds_labels_safely() {
        let mut out = String::new();
        let s = sample("http_requests_total", &[("method", "GET"), ("uri", "/api/v1.0/x y")], 1027.0);
        assert!(writer(OutputFormat::Graphite).write(&s.name, &s, &mut out));
        let s = sample("bucket", &[("le", "+Inf")], 0.5);
        writer(OutputFormat::Graphite).write(&s.name, &s, &mut out);
        assert_eq!(
            out,
            "web-1.app.http_requests_total.method.GET.uri._api_v1_0_x_y 1027 1700000000\nweb-1.app.bucket.le._Inf 0.5 1700000000\n"
        );
    }

    #[test]
    fn influx_escapes_and_uses_nanoseconds() {
        let mut out = String::new();
        let s = sample("http requests", &[("path", "/a,b=c"), ("empty", "")], 3.5);
        writer(OutputFormat::Influx).write(&s.name, &s, &mut out);
        assert_eq!(out, "http\\ requests,path=/a\\,b\\=c value=3.5 1700000000000000000\n");
    }

    #[test]
    fn opentsdb_needs_a_tag() {
        let mut out = String::new();
        let s = sample("jvm.threads", &[], 42.0);
        writer(OutputFormat::Opentsdb).write(&s.name, &s, &mut out);
        let s = sample("req", &[("code", "200 OK")], 1.0);
        writer(OutputFormat::Opentsdb).write(&s.name, &s, &mut out);
        assert_eq!(out, "put jvm.threads 1700000000 42 host=web-1\nput req 1700000000 1 code=200_OK\n");
    }

    #[test]
    fn non_finite_values_are_skipped() {
        let mut out = String::new();
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(!writer(OutputFormat::Graphite).write("x", &sample("x", &[], v), &mut out));
        }
        assert!(out.is_empty());
    }
}
