//! What a sensu-plugins Ruby script shares with every other one: its options as `mixlib-cli`
//! declares them and Ruby's `OptionParser` reads them, and its output as `sensu-plugin`
//! prints it (`CheckHttp CRITICAL: 404`, exit 2).
//!
//! `OptionParser`, as the plugins use it: words are taken in order, non-options are left
//! aside wherever they are; `--name value`, `--name=value` and any unambiguous prefix of a
//! long name; `-xVALUE`, `-x VALUE`, switches clustered (`-sk`); a required value is the next
//! word even when it starts with `-`; `--` ends the options; the last of a repeated option
//! wins. What it rejects (an unknown or ambiguous option, a missing value) is an error here,
//! and the native path steps aside for the real plugin, which says it its own way.

use std::collections::HashMap;

/// One option a plugin declares.
#[derive(Debug, Clone, Copy)]
pub struct Opt {
    /// The key the plugin reads it by (`config[:url]`).
    pub key: &'static str,
    /// Its short form, without the dash.
    pub short: Option<char>,
    /// Its long form, without the dashes.
    pub long: Option<&'static str>,
    /// Whether it takes a value (else it is a switch, `boolean: true`).
    pub value: bool,
}

/// An option with a value: `-u URL`, `--url URL`.
pub const fn value(key: &'static str, short: Option<char>, long: Option<&'static str>) -> Opt {
    Opt { key, short, long, value: true }
}

/// A switch: `-s`, `--whole-response`.
pub const fn switch(key: &'static str, short: Option<char>, long: Option<&'static str>) -> Opt {
    Opt { key, short, long, value: false }
}

/// The options given: values by key, switches as `"true"`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Given(HashMap<&'static str, String>);

impl Given {
    /// The value of an option, if given.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// The value of an option, or its default.
    pub fn or<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.get(key).unwrap_or(default)
    }

    /// Whether a switch (or any option) was given.
    pub fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// An integer option as the plugin's `proc(&:to_i)` reads it.
    pub fn int(&self, key: &str) -> Option<i64> {
        self.get(key).map(to_i)
    }
}

/// Read `argv` (after the program name) as `OptionParser` reads it for these options.
/// The error is `OptionParser`'s own message (`invalid option: --frob`).
pub fn parse(opts: &[Opt], argv: &[String]) -> Result<Given, String> {
    let mut given = Given::default();
    let mut words = argv.iter();
    while let Some(word) = words.next() {
        if word == "--" {
            break;
        }
        if let Some(long) = word.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let opt = find_long(opts, name).map_err(|e| format!("{e}: --{name}"))?;
            if !opt.value {
                if inline.is_some() {
                    return Err(format!("needless argument: {word}"));
                }
                given.0.insert(opt.key, "true".into());
                continue;
            }
            let value = inline.or_else(|| words.next().cloned()).ok_or(format!("missing argument: --{name}"))?;
            given.0.insert(opt.key, value);
        } else if let Some(shorts) = word.strip_prefix('-').filter(|s| !s.is_empty()) {
            for (at, c) in shorts.char_indices() {
                let opt = opts
                    .iter()
                    .find(|o| o.short == Some(c))
                    .ok_or_else(|| format!("invalid option: -{}", &shorts[at..]))?;
                if !opt.value {
                    given.0.insert(opt.key, "true".into());
                    continue;
                }
                let rest = &shorts[at + c.len_utf8()..];
                let value = if rest.is_empty() {
                    words.next().cloned().ok_or(format!("missing argument: -{c}"))?
                } else {
                    rest.to_string()
                };
                given.0.insert(opt.key, value);
                break;
            }
        }
        // Anything else is left for the plugin, which ignores it.
    }
    Ok(given)
}

fn find_long(opts: &[Opt], name: &str) -> Result<Opt, &'static str> {
    if let Some(exact) = opts.iter().find(|o| o.long == Some(name)) {
        return Ok(*exact);
    }
    let mut candidates = opts.iter().filter(|o| o.long.is_some_and(|l| !name.is_empty() && l.starts_with(name)));
    match (candidates.next(), candidates.next()) {
        (Some(only), None) => Ok(*only),
        (Some(_), Some(_)) => Err("ambiguous option"),
        _ => Err("invalid option"),
    }
}

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

    const OPTS: &[Opt] = &[
        value("url", Some('u'), Some("url")),
        value("ua", Some('x'), Some("user-agent")),
        value("user", Some('U'), Some("username")),
        switch("ssl", Some('s'), None),
        switch("insecure", Some('k'), None),
        switch("whole", Some('w'), Some("whole-response")),
    ];

    fn words(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn options_read_as_option_parser_reads_them() {
        let g = parse(OPTS, &words("-u http://x -sk --user-agent=A extra --userna bob")).unwrap();
        assert_eq!((g.get("url"), g.get("ua"), g.get("user")), (Some("http://x"), Some("A"), Some("bob")));
        assert!(g.has("ssl") && g.has("insecure") && !g.has("whole"));
        let g = parse(OPTS, &words("-uhttp://y -ku -dash -w")).unwrap();
        assert_eq!((g.get("url"), g.has("insecure"), g.has("whole")), (Some("-dash"), true, true));
        let g = parse(OPTS, &words("--url a --url b -- --frob")).unwrap();
        assert_eq!(g.get("url"), Some("b"));
        for (line, error) in [
            ("--frob", "invalid option: --frob"),
            ("--u x", "ambiguous option: --u"),
            ("-z", "invalid option: -z"),
            ("-sz", "invalid option: -z"),
            ("-u", "missing argument: -u"),
            ("--url", "missing argument: --url"),
            ("--whole-response=yes", "needless argument: --whole-response=yes"),
        ] {
            assert_eq!(parse(OPTS, &words(line)), Err(error.to_string()), "{line}");
        }
    }

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
