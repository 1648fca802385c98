//! What a sensu-plugins Ruby script shares with every other one beyond its options (read
//! by [`super::options`]): Ruby's `String#to_i`, and its output as `sensu-plugin` prints it
//! (`CheckHttp CRITICAL: 404`, exit 2).

/// Ruby's `String#to_i`: leading blanks, a sign, digits (single `_` between them); 0 when
/// there are none.
pub fn to_i(text: &str) -> i64 {
    let text = text.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let mut value: i64 = 0;
    let mut previous_digit = false;
    for (i, b) in digits.bytes().enumerate() {
        match b {
            b'0'..=b'9' => {
                value = value.saturating_mul(10).saturating_add(i64::from(b - b'0'));
                previous_digit = true;
            }
            b'_' if previous_digit && digits.as_bytes().get(i + 1).is_some_and(u8::is_ascii_digit) => {
                previous_digit = false;
            }
            _ => break,
        }
    }
    if negative { -value } else { value }
}

/// Ruby's `Float#to_s`: the shortest text that reads back the same, `1.0` for whole
/// numbers, and the exponent form below 1e-4 and from 1e16 (`5.12e-05`).
pub fn float_to_s(value: f64) -> String {
    if value == 0.0 {
        return "0.0".into();
    }
    let magnitude = value.abs();
    if !(1e-4..1e16).contains(&magnitude) {
        let text = format!("{value:e}");
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        let mantissa = if mantissa.contains('.') { mantissa.to_string() } else { format!("{mantissa}.0") };
        let exponent: i32 = exponent.parse().unwrap_or(0);
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exponent.abs());
    }
    let text = format!("{value}");
    if text.contains('.') { text } else { format!("{text}.0") }
}

/// A Ruby regex, matched as Ruby 2.4 matches it against the binary strings the plugins
/// get from the network: byte by byte, ASCII classes, `^`/`$` at line ends. A pattern the
/// `regex` crate would read differently (inline flags and groups — Ruby's `(?m)` is dot-all —,
/// non-ASCII text) or cannot read (look-around, back-references) is refused.
#[derive(Debug, Clone)]
pub struct RubyRegex {
    text: String,
    regex: regex::bytes::Regex,
}

impl RubyRegex {
    /// The regex, or why the native path does not read it.
    pub fn new(pattern: &str) -> Result<Self, String> {
        if pattern.contains("(?") || !pattern.is_ascii() {
            return Err(format!("{pattern:?}: a regex Ruby and Concierge would read differently"));
        }
        let regex = regex::bytes::RegexBuilder::new(pattern)
            .multi_line(true)
            .unicode(false)
            .build()
            .map_err(|_| format!("{pattern:?} is not a regex the native path reads"))?;
        Ok(Self { text: pattern.to_string(), regex })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether it matches anywhere in `haystack`.
    pub fn is_match(&self, haystack: &[u8]) -> bool {
        self.regex.is_match(haystack)
    }
}

impl PartialEq for RubyRegex {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

/// A sensu-plugin status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `ok`, exit 0.
    Ok,
    /// `warning`, exit 1.
    Warning,
    /// `critical`, exit 2.
    Critical,
    /// `unknown`, exit 3.
    Unknown,
}

/// What `sensu-plugin` prints for a check class ending with `status` and `message`, and the
/// exit status: `CheckHttp CRITICAL: 404`.
pub fn say(class: &str, status: Status, message: &str) -> (String, i32) {
    let (word, code) = match status {
        Status::Ok => ("OK", 0),
        Status::Warning => ("WARNING", 1),
        Status::Critical => ("CRITICAL", 2),
        Status::Unknown => ("UNKNOWN", 3),
    };
    // `puts` adds a line end only where there is none.
    let end = if message.ends_with('\n') { "" } else { "\n" };
    (format!("{class} {word}: {message}{end}"), code)
}

/// What `sensu-plugin` prints when the check raised an exception it did not rescue
/// (`Check failed to run: getaddrinfo: …`), exit 3. The plugin follows it with the Ruby
/// backtrace on the same line; there is none to print here.
pub fn failed_to_run(message: &str) -> (String, i32) {
    (format!("Check failed to run: {message}\n"), 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_read_as_ruby_reads_them() {
        for (text, n) in [("15", 15), (" 7s", 7), ("abc", 0), ("", 0), ("-3", -3), ("1_000", 1000), ("1__0", 1)] {
            assert_eq!(to_i(text), n, "{text:?}");
        }
    }

    #[test]
    fn floats_print_as_ruby_prints_them() {
        for (value, text) in
            [(0.00123457, "0.00123457"), (5.12e-5, "5.12e-05"), (1.0, "1.0"), (0.0001, "0.0001"), (2e-5, "2.0e-05")]
        {
            assert_eq!(float_to_s(value), text);
        }
    }

    #[test]
    fn output_as_sensu_plugin_prints_it() {
        assert_eq!(say("CheckHttp", Status::Critical, "404"), ("CheckHttp CRITICAL: 404\n".into(), 2));
        assert_eq!(failed_to_run("boom"), ("Check failed to run: boom\n".into(), 3));
        assert_eq!(say("C", Status::Ok, "200\nbody\n").0, "C OK: 200\nbody\n", "puts adds no second line end");
    }
}
