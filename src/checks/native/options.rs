//! Plugin options as Ruby's `OptionParser` (sensu-plugins, through `mixlib-cli`) and GNU
//! `getopt_long` (monitoring-plugins) read them — alike for everything plugins use: words are
//! taken in order, non-options are left aside wherever they are; `--name value`,
//! `--name=value` and any unambiguous prefix of a long name; `-xVALUE`, `-x VALUE`, switches
//! clustered (`-sk`); a required value is the next word even when it starts with `-`; `--`
//! ends the options; the last of a repeated option wins. What they reject (an unknown or
//! ambiguous option, a missing value) is an error here, and the native path steps aside for
//! the real plugin, which says it its own way.

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

/// The options given: values by key (every one, in order), switches as `"true"`; and the
/// words that are not options.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Given(HashMap<&'static str, Vec<String>>, Vec<String>);

impl Given {
    /// The value of an option, if given (the last one).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.last()).map(String::as_str)
    }

    /// Every value given to an option, in order.
    pub fn all(&self, key: &str) -> &[String] {
        self.0.get(key).map_or(&[], Vec::as_slice)
    }

    /// The words that are not options or their values, in order.
    pub fn positional(&self) -> &[String] {
        &self.1
    }

    fn set(&mut self, key: &'static str, value: String) {
        self.0.entry(key).or_default().push(value);
    }

    /// The value of an option, or its default.
    pub fn or<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.get(key).unwrap_or(default)
    }

    /// Whether a switch (or any option) was given.
    pub fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// A monitoring-plugins time threshold (`-w`, `-c`) as the native path runs it: a plain
    /// number of seconds; anything else (a range such as `5:10`, `@…`, `~:`) is left to the
    /// real plugin.
    pub fn seconds(&self, key: &str, flag: &str) -> Result<Option<f64>, String> {
        self.get(key)
            .map(|t| {
                t.parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite() && (0.0..=1e6).contains(n) && !t.starts_with(['+', '.']))
                    .ok_or(format!("{flag} {t:?} is not a threshold the native path runs"))
            })
            .transpose()
    }

    /// An integer option as the plugin's `proc(&:to_i)` reads it.
    pub fn int(&self, key: &str) -> Option<i64> {
        self.get(key).map(super::ruby_cli::to_i)
    }
}

/// Read `argv` (after the program name) as `OptionParser` reads it for these options.
/// The error is `OptionParser`'s own message (`invalid option: --frob`).
pub fn parse(opts: &[Opt], argv: &[String]) -> Result<Given, String> {
    let mut given = Given::default();
    let mut words = argv.iter();
    while let Some(word) = words.next() {
        if word == "--" {
            given.1.extend(words.by_ref().cloned());
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
                given.set(opt.key, "true".into());
                continue;
            }
            let value = inline.or_else(|| words.next().cloned()).ok_or(format!("missing argument: --{name}"))?;
            given.set(opt.key, value);
        } else if let Some(shorts) = word.strip_prefix('-').filter(|s| !s.is_empty()) {
            for (at, c) in shorts.char_indices() {
                let opt = opts
                    .iter()
                    .find(|o| o.short == Some(c))
                    .ok_or_else(|| format!("invalid option: -{}", &shorts[at..]))?;
                if !opt.value {
                    given.set(opt.key, "true".into());
                    continue;
                }
                let rest = &shorts[at + c.len_utf8()..];
                let value = if rest.is_empty() {
                    words.next().cloned().ok_or(format!("missing argument: -{c}"))?
                } else {
                    rest.to_string()
                };
                given.set(opt.key, value);
                break;
            }
        } else {
            given.1.push(word.clone());
        }
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
        let g = parse(OPTS, &words("one --url a two --url b -- --frob")).unwrap();
        assert_eq!((g.get("url"), g.all("url")), (Some("b"), &["a".to_string(), "b".to_string()][..]));
        assert_eq!(g.positional(), ["one", "two", "--frob"]);
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
}
