//! The Sensu/Nagios plugin conventions the built-in checks follow, so handlers, Uchiwa
//! and metric pipelines treat their results like any plugin's:
//!
//! * a first line `KIND STATUS: message`, then ` | ` and Nagios perfdata
//!   (`label=value[UOM];warn;crit;min;max`) with every measured value;
//! * status 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN;
//! * with `"type": "metric"`, Graphite plaintext lines instead
//!   (`<scheme>.<name>.<measure> <value> <timestamp>`), as sensu-plugins' metric scripts print;
//! * a machine-readable `reason` when the status is not OK, and the `timings`, in the
//!   result's check attributes.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::BuiltinOutcome;
use super::failure::{CheckFailure, Reason};
use crate::proto::{Additions, Field, Object};

/// A check status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// 0
    Ok = 0,
    /// 1
    Warning = 1,
    /// 2
    Critical = 2,
    /// 3
    Unknown = 3,
}

impl Status {
    /// `OK`, `WARNING`, `CRITICAL`, `UNKNOWN`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Warning => "WARNING",
            Self::Critical => "CRITICAL",
            Self::Unknown => "UNKNOWN",
        }
    }
}

/// One perfdata value.
#[derive(Debug, Clone, PartialEq)]
pub struct Perf {
    /// Label, also the Graphite measure name.
    pub label: &'static str,
    /// Value.
    pub value: f64,
    /// Unit of measure: `s`, `B`, `d` (days, written without unit), or empty.
    pub unit: &'static str,
    /// Warning threshold.
    pub warn: Option<f64>,
    /// Critical threshold.
    pub crit: Option<f64>,
}

impl Perf {
    /// Seconds.
    pub fn seconds(label: &'static str, value: f64) -> Self {
        Self { label, value, unit: "s", warn: None, crit: None }
    }
    /// A plain number.
    pub fn number(label: &'static str, value: f64) -> Self {
        Self { label, value, unit: "", warn: None, crit: None }
    }
    /// Bytes.
    pub fn bytes(label: &'static str, value: f64) -> Self {
        Self { label, value, unit: "B", warn: None, crit: None }
    }
    /// With thresholds.
    pub fn thresholds(mut self, warn: Option<f64>, crit: Option<f64>) -> Self {
        self.warn = warn;
        self.crit = crit;
        self
    }
}

/// A perfdata or Graphite number: whole numbers without decimals, others with at most six
/// and no trailing zeros. Written in place (a result has a dozen of them).
struct Num(f64);

impl std::fmt::Display for Num {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self.0;
        if let Some(text) = NumText::new(v).as_str() {
            return f.write_str(text);
        }
        if v.fract() == 0.0 && v.abs() < 1e15 {
            return write!(f, "{v:.0}");
        }
        let mut buf = [0u8; 64];
        let mut cursor = std::io::Cursor::new(&mut buf[..]);
        if std::io::Write::write_fmt(&mut cursor, format_args!("{v:.6}")).is_err() {
            let text = format!("{v:.6}");
            return f.write_str(text.trim_end_matches('0').trim_end_matches('.'));
        }
        let len = usize::try_from(cursor.position()).unwrap_or(0);
        let text = std::str::from_utf8(&buf[..len]).unwrap_or_default();
        f.write_str(text.trim_end_matches('0').trim_end_matches('.'))
    }
}

/// Append [`Num`]`(v)` to `out`.
fn push_num(out: &mut String, v: f64) {
    match NumText::new(v).as_str() {
        Some(text) => out.push_str(text),
        None => {
            let _ = write!(out, "{}", Num(v));
        }
    }
}

/// [`Num`]'s text for the numbers checks measure, made with integer arithmetic where it is
/// sure to agree with `{:.0}` and `{:.6}` (which take a dozen formatting calls, and for
/// some timings bignum arithmetic, per number): whole numbers below 2⁵³, and six decimals
/// of `|v| × 10⁶` below 2⁴⁰ (within 2⁻¹² of the exact product) not within 10⁻³ of a tie.
struct NumText {
    buf: [u8; 48],
    len: usize,
}

impl NumText {
    fn new(v: f64) -> Self {
        let mut text = Self { buf: [0; 48], len: 0 };
        let magnitude = v.abs();
        if v.fract() == 0.0 && magnitude < (1u64 << 53) as f64 {
            if v.is_sign_negative() {
                text.push(b"-");
            }
            text.push(itoa::Buffer::new().format(magnitude as u64).as_bytes());
            return text;
        }
        let Some(micros) = rounded_scaled(magnitude, 1e6) else { return text };
        let (whole, fraction) = (micros / 1_000_000, micros % 1_000_000);
        if v.is_sign_negative() {
            text.push(b"-");
        }
        text.push(itoa::Buffer::new().format(whole).as_bytes());
        if fraction > 0 {
            // `.` and six digits, trailing zeros dropped.
            let mut digits = *b".000000";
            let mut rest = fraction;
            for d in digits[1..].iter_mut().rev() {
                *d = b'0' + (rest % 10) as u8;
                rest /= 10;
            }
            let end = digits.iter().rposition(|&d| d != b'0').map_or(0, |i| i + 1);
            text.push(&digits[..end]);
        }
        text
    }

    fn push(&mut self, bytes: &[u8]) {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    /// The text, or `None` when the number needs `std::fmt`.
    fn as_str(&self) -> Option<&str> {
        (self.len > 0).then(|| std::str::from_utf8(&self.buf[..self.len]).ok()).flatten()
    }
}

/// Seconds with three decimals, as the first line shows a measured time (`0.120`).
pub fn fmt_secs(s: f64) -> String {
    let mut out = String::with_capacity(16);
    push_secs(&mut out, s);
    out
}

/// Append [`fmt_secs`]`(s)` to `out`: with integer arithmetic where it is sure to agree with
/// `{:.3}` (as [`NumText`]: positive, `s × 10³` below 2⁴⁰ and not within 10⁻³ of a tie),
/// else through `std::fmt`, which took a thousand instructions per call.
pub fn push_secs(out: &mut String, s: f64) {
    let Some(millis) = rounded_scaled(s, 1e3).filter(|_| s.is_sign_positive()) else {
        let _ = write!(out, "{s:.3}");
        return;
    };
    out.push_str(itoa::Buffer::new().format(millis / 1000));
    let fraction = millis % 1000;
    let digits = [b'.', b'0' + (fraction / 100) as u8, b'0' + (fraction / 10 % 10) as u8, b'0' + (fraction % 10) as u8];
    out.push_str(std::str::from_utf8(&digits).unwrap_or(".000"));
}

/// `v × factor` (`v` ≥ 0) rounded to an integer, when integer arithmetic is sure to round it
/// as `std::fmt` rounds `v` to that many decimals: the product below 2⁴⁰ (within 2⁻¹² of the
/// exact one) and not within 10⁻³ of a tie. `None` otherwise (NaN included).
fn rounded_scaled(v: f64, factor: f64) -> Option<u64> {
    let scaled = v * factor;
    (scaled < (1u64 << 40) as f64 && (scaled.fract() - 0.5).abs() > 1e-3).then(|| scaled.round() as u64)
}

/// The largest `timeout` a built-in accepts: a day. Far larger ones (`1e19`) overflow a
/// clock's `now + timeout`, which panics, and none is meant.
pub const MAX_TIMEOUT_SECS: f64 = 86_400.0;

/// A check's `timeout` parameter: positive seconds, at most [`MAX_TIMEOUT_SECS`].
pub fn timeout_param(seconds: f64) -> Result<Duration, String> {
    if !(seconds > 0.0 && seconds.is_finite()) {
        return Err("timeout must be a positive number of seconds".into());
    }
    if seconds > MAX_TIMEOUT_SECS {
        return Err(format!("timeout {seconds} is too large (at most {MAX_TIMEOUT_SECS} s)"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Seconds with at most three decimals and no trailing zeros, as the first line shows a
/// configured limit (`0.5`, `10`).
pub fn trim_secs(s: f64) -> String {
    let t = format!("{s:.3}");
    t.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// `label=value[UOM];warn;crit;min;max`, joined by spaces.
pub fn perfdata(perf: &[Perf]) -> String {
    let mut out = String::with_capacity(PERF_LEN * perf.len());
    write_perfdata(&mut out, perf);
    out
}

/// About the length of one perfdata field (`connect=0.000123s;;;0`), for sizing buffers.
const PERF_LEN: usize = 32;

/// [`perfdata`], appended to `out`.
fn write_perfdata(out: &mut String, perf: &[Perf]) {
    for (i, p) in perf.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        // Piece by piece: through `write!`, formatting took 8 % of a built-in HTTP check's
        // instructions (11,700 of 148,500, callgrind).
        out.push_str(p.label);
        out.push('=');
        push_num(out, p.value);
        if p.unit == "s" || p.unit == "B" {
            out.push_str(p.unit);
        }
        out.push(';');
        if let Some(warn) = p.warn {
            push_num(out, warn);
        }
        out.push(';');
        if let Some(crit) = p.crit {
            push_num(out, crit);
        }
        out.push_str(";0");
    }
}

/// What a probe found.
#[derive(Debug, Clone)]
pub struct Report {
    /// `HTTP`, `DNS`, `TLS`.
    pub kind: &'static str,
    /// The status.
    pub status: Status,
    /// The message after `KIND STATUS: `.
    pub message: String,
    /// Why, when not OK (published as the `reason` attribute).
    pub reason: Option<Reason>,
    /// Perfdata / metrics.
    pub perf: Vec<Perf>,
    /// Phase timings in seconds, for the `timings` attribute.
    pub timings: Vec<(&'static str, f64)>,
    /// Kind-specific details for the `probe` attribute.
    pub details: Additions,
}

impl Report {
    /// A report with nothing measured yet.
    pub fn new(kind: &'static str) -> Self {
        Self {
            kind,
            status: Status::Ok,
            message: String::new(),
            reason: None,
            perf: Vec::new(),
            timings: Vec::new(),
            details: Additions::default(),
        }
    }

    /// Mark as failed with a reason and a message.
    pub fn fail(mut self, status: Status, reason: Reason, message: impl Into<String>) -> Self {
        self.status = status;
        self.reason = Some(reason);
        self.message = message.into();
        self
    }

    /// Raise the status to `status` for `reason` (keeps the worse one).
    pub fn escalate(&mut self, status: Status, reason: Reason) {
        if status > self.status {
            self.status = status;
            self.reason = Some(reason);
        }
    }

    /// The first output line with perfdata.
    pub fn plugin_output(&self) -> String {
        // One buffer for the whole line (a dozen fields): grown piece by piece, it was
        // reallocated five times per check.
        let mut line = String::with_capacity(self.kind.len() + self.message.len() + 16 + PERF_LEN * self.perf.len());
        for piece in [self.kind, " ", self.status.label(), ": ", &self.message] {
            line.push_str(piece);
        }
        if !self.perf.is_empty() {
            line.push_str(" | ");
            write_perfdata(&mut line, &self.perf);
        }
        line.push('\n');
        line
    }

    /// Graphite plaintext lines `<scheme>.<measure> <value> <ts>`.
    pub fn graphite(&self, scheme: &str, timestamp: i64) -> String {
        let mut out = String::with_capacity((scheme.len() + PERF_LEN) * self.perf.len());
        for p in &self.perf {
            let _ = writeln!(out, "{scheme}.{} {} {timestamp}", p.label, Num(p.value));
        }
        out
    }

    /// The outcome for the executor: plugin text, or Graphite lines for metric checks
    /// (only when the probe got measurements; a failure stays readable text).
    /// `scheme` gives the Graphite scheme (the check's own, else the default); it is asked
    /// for only when the output is Graphite lines.
    pub fn into_outcome(self, check: &Object, scheme: impl FnOnce() -> String) -> BuiltinOutcome {
        let metric = crate::proto::field(check, "type").and_then(Value::as_str) == Some("metric");
        let output = if metric && self.reason.is_none_or(|_| self.status != Status::Critical) && !self.perf.is_empty() {
            self.graphite(&scheme(), crate::proto::now_epoch())
        } else {
            self.plugin_output()
        };
        // Room for these and what the executor adds (duration, output, status).
        let mut attributes = Additions::with_capacity(6);
        if let Some(reason) = self.reason {
            attributes.set("reason", Field::Str(reason.as_str()));
        }
        let mut timings = Additions::with_capacity(self.timings.len());
        for (k, v) in &self.timings {
            timings.set(k, Field::Float(crate::proto::round6(*v)));
        }
        attributes.set("timings", Field::Fields(timings));
        if !self.details.is_empty() {
            attributes.set("probe", Field::Fields(self.details));
        }
        BuiltinOutcome { output, status: self.status as i32, attributes, follow_up: None }
    }
}

/// Warning/critical thresholds on a duration in seconds.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Warning above this many seconds.
    pub warning: Option<f64>,
    /// Critical above this many seconds.
    pub critical: Option<f64>,
}

impl Thresholds {
    /// Thresholds as a kept compiled form needs them: `-0.0` is equal to `0.0` (so one kept
    /// form serves parameters with either) but prints `-0`, so a limit is the `0` it means
    /// (adding `0.0` clears the sign).
    pub fn new(warning: Option<f64>, critical: Option<f64>) -> Self {
        let unsigned = |limit: Option<f64>| limit.map(|l| l + 0.0);
        Self { warning: unsigned(warning), critical: unsigned(critical) }
    }

    /// The status a duration deserves.
    pub fn status(&self, seconds: f64) -> Status {
        if self.critical.is_some_and(|c| seconds > c) {
            Status::Critical
        } else if self.warning.is_some_and(|w| seconds > w) {
            Status::Warning
        } else {
            Status::Ok
        }
    }
}

/// The UNKNOWN result for parameters that cannot be used (missing, wrong type, bad
/// regex): status 3, naming the problem, never a panic.
pub fn invalid_parameters(kind: &'static str, problem: impl std::fmt::Display) -> BuiltinOutcome {
    let mut attributes = Additions::with_capacity(4);
    attributes.set("reason", Field::Str(Reason::Parameters.as_str()));
    BuiltinOutcome {
        output: format!("{kind} UNKNOWN: invalid parameters: {problem}\n"),
        status: 3,
        attributes,
        follow_up: None,
    }
}

/// The parameters object of a built-in (`check.<extension>`), deserialized.
pub fn parameters<'a, P: Deserialize<'a>>(check: &'a Object, key: &str) -> Result<P, CheckFailure> {
    parameters_object(check, key).and_then(deserialize)
}

/// The parameters object of a built-in (`check.<extension>`), as it is.
pub fn parameters_object<'a>(check: &'a Object, key: &str) -> Result<&'a Value, CheckFailure> {
    match crate::proto::field(check, key) {
        Some(v @ Value::Object(_)) => Ok(v),
        Some(_) => Err(CheckFailure::parameters(format!("`{key}` must be an object"))),
        None => Err(CheckFailure::parameters(format!("missing `{key}` object with the check's parameters"))),
    }
}

/// A parameters object deserialized; what does not fit is named.
pub fn deserialize<'a, P: Deserialize<'a>>(params: &'a Value) -> Result<P, CheckFailure> {
    P::deserialize(params).map_err(|e| CheckFailure::parameters(e.to_string()))
}

/// The default Graphite scheme: `<client>.<suffix>.<check name>` (sensu-plugins'
/// metric scripts default to `<hostname>.<suffix>`).
pub fn default_scheme(client: &str, check: &Object, suffix: &str) -> String {
    let name = check.get("name").and_then(Value::as_str).unwrap_or("check");
    format!("{}.{suffix}.{}", graphite_safe(client), graphite_safe(name))
}

/// Make a string safe as one Graphite path component.
pub fn graphite_safe(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reproducible stream of pseudo-random numbers (xorshift64).
    fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }

    #[test]
    fn numbers_are_written_as_before() {
        // The text `num()` made before numbers were written in place.
        let reference = |v: f64| {
            if v.fract() == 0.0 && v.abs() < 1e15 {
                format!("{v:.0}")
            } else {
                format!("{v:.6}").trim_end_matches('0').trim_end_matches('.').to_string()
            }
        };
        let values = [
            0.0,
            -0.0,
            1.0,
            0.5,
            0.1234567,
            2.0000004,
            -1e-7,
            1e15,
            1e20,
            -3.5e18,
            1e300,
            f64::MAX,
            f64::MIN_POSITIVE,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            123456.000001,
            9.9999999,
        ];
        for v in values {
            assert_eq!(Num(v).to_string(), reference(v), "{v:e}");
        }
        // Ties at the seventh decimal (k/128: the first 20,000 and 20,000 more up to the
        // integer path's end), their neighbours, and a spread of timings,
        // sizes and counts across the integer path's range and past it.
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
        let ties: Vec<u64> = (0..20_000).chain((0..20_000).map(|_| next() % (1 << 27))).collect();
        for k in ties {
            let tie = k as f64 / 128.0;
            for v in [tie, -tie, f64::from_bits(tie.to_bits() + 1), f64::from_bits(tie.to_bits().saturating_sub(1))] {
                assert_eq!(Num(v).to_string(), reference(v), "{v:e}");
            }
        }
        for _ in 0..200_000 {
            let bits = next();
            let magnitude = 10f64.powi((bits % 22) as i32 - 9);
            let v = (bits >> 11) as f64 / (1u64 << 53) as f64 * magnitude;
            let v = if bits & 1 == 1 { -v } else { v };
            assert_eq!(Num(v).to_string(), reference(v), "{v:e}");
        }
    }

    #[test]
    fn perfdata_grammar() {
        let perf = [
            Perf::seconds("time", 0.1234567).thresholds(Some(1.0), Some(2.0)),
            Perf::bytes("size", 5120.0),
            Perf::number("days", 45.0).thresholds(Some(14.0), Some(7.0)),
        ];
        assert_eq!(perfdata(&perf), "time=0.123457s;1;2;0 size=5120B;;;0 days=45;14;7;0");
    }

    #[test]
    fn first_line_and_graphite() {
        let mut r = Report::new("HTTP");
        r.message = "200 in 0.123 s, 5 bytes".into();
        r.perf = vec![Perf::seconds("time", 0.123), Perf::bytes("size", 5.0)];
        assert_eq!(r.plugin_output(), "HTTP OK: 200 in 0.123 s, 5 bytes | time=0.123s;;;0 size=5B;;;0\n");
        assert_eq!(
            r.graphite("host.curl_timings.api", 1700000000),
            "host.curl_timings.api.time 0.123 1700000000\nhost.curl_timings.api.size 5 1700000000\n"
        );
    }

    #[test]
    fn seconds_are_written_as_by_std_fmt() {
        let mut next = xorshift(0x2545_f491_4f6c_dd1d);
        let mut values = vec![0.0, -0.0, -0.0004, -1.5, 0.0005, 0.0015, 1e12, 1e13, f64::NAN, f64::INFINITY, f64::MAX];
        // Ties at the fourth decimal (k/16) and their neighbours, then a spread of timings.
        for k in (0..20_000u64).chain((0..20_000).map(|_| next() % (1 << 36))) {
            let tie = k as f64 / 16.0;
            values.extend([tie, f64::from_bits(tie.to_bits() + 1), f64::from_bits(tie.to_bits().saturating_sub(1))]);
        }
        for _ in 0..200_000 {
            let bits = next();
            values.push((bits >> 11) as f64 / (1u64 << 53) as f64 * 10f64.powi((bits % 16) as i32 - 6));
        }
        for v in values {
            assert_eq!(fmt_secs(v), format!("{v:.3}"), "{v:e}");
        }
    }

    #[test]
    fn seconds_in_messages() {
        assert_eq!(fmt_secs(0.12), "0.120");
        assert_eq!(fmt_secs(2.0), "2.000");
        assert_eq!(trim_secs(0.5), "0.5");
        assert_eq!(trim_secs(10.0), "10");
        assert_eq!(trim_secs(0.1234), "0.123");
    }

    #[test]
    fn thresholds() {
        let t = Thresholds { warning: Some(1.0), critical: Some(2.0) };
        assert_eq!(t.status(0.5), Status::Ok);
        assert_eq!(t.status(1.5), Status::Warning);
        assert_eq!(t.status(2.5), Status::Critical);
        assert_eq!(Thresholds::default().status(100.0), Status::Ok);
    }
}
