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
    (format!("{class} {word}: {message}\n"), code)
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
    fn output_as_sensu_plugin_prints_it() {
        assert_eq!(say("CheckHttp", Status::Critical, "404"), ("CheckHttp CRITICAL: 404\n".into(), 2));
        assert_eq!(failed_to_run("boom"), ("Check failed to run: boom\n".into(), 3));
    }
}
