//! sensu-plugins-dns' `check-dns.rb`, in-process: each server (`-s`, comma-separated) asked
//! `-c` times; `Resolved <domain> <type>` when enough queries succeed (`-l`, 100 %), else
//! `<n>% of tests succeeded: <errors>` (CRITICAL, or WARNING with `-w`); `-r` compares the
//! A/AAAA addresses, `-R` the records' text.
//!
//! Read from `bin/check-dns.rb` (2.x) and the dnsruby it runs on. The script declares `-c`
//! twice (class, request count) and `-T` twice (use TCP, timeout): `mixlib-cli` defines its
//! options sorted by name and the later definition of a short flag wins, so `-c` is the
//! request count and `-T` is TCP (`--class` and `--timeout` remain). An answer without
//! records counts as a success worded `Could not resolve <domain> <type> record`. `-R`
//! prints the regex as Ruby prints a `Regexp` (`(?-mix:…)`) and matches the records as
//! dnsruby prints them (`name.\tTTL\tIN\tTYPE\tdata`, one line per record). Not run natively:
//! `-v` (DNSSEC), `--debug`, `-r` for other types, `-R` for types whose text dnsruby and
//! Concierge print differently, a server given by name, more than one query with `-r`.

use std::time::Duration;

use super::Parsed;
use super::dns_query::{self, Answer, Query};
use super::options::{self, Opt, switch, value};
use super::ruby_cli::{RubyRegex, Status, say};

const CLASS: &str = "DNS";

/// In `mixlib-cli`'s order (sorted by name): of two options with the same short flag, the
/// later one keeps it.
const OPTIONS: &[Opt] = &[
    value("class", None, Some("class")),
    switch("debug", None, Some("debug")),
    value("domain", Some('d'), Some("domain")),
    value("port", Some('p'), Some("port")),
    value("regex", Some('R'), Some("regex-match")),
    value("request_count", Some('c'), Some("request_count")),
    value("result", Some('r'), Some("result")),
    value("server", Some('s'), Some("server")),
    value("threshold", Some('l'), Some("threshold")),
    value("timeout", None, Some("timeout")),
    value("type", Some('t'), Some("type")),
    switch("use_tcp", Some('T'), Some("use-tcp")),
    switch("validate", Some('v'), Some("validate")),
    switch("warn_only", Some('w'), Some("warn-only")),
];

/// What the plugin was asked.
#[derive(Debug, Clone, PartialEq)]
pub struct Args {
    domain: Option<String>,
    type_text: String,
    queries: Vec<Query>,
    count: i64,
    threshold: i64,
    timeout: u64,
    result: Option<String>,
    regex: Option<(RubyRegex, String)>,
    warn_only: bool,
}

/// Parse `check-dns.rb`'s arguments.
pub fn parse(argv: &[String]) -> Parsed<Args> {
    match parse_given(argv) {
        Ok(args) => Parsed::Run(args),
        Err(why) => Parsed::Unsupported(why),
    }
}

fn parse_given(argv: &[String]) -> Result<Args, String> {
    let given = options::parse(OPTIONS, argv)?;
    for (key, flag) in [("validate", "-v"), ("debug", "--debug")] {
        if given.has(key) {
            return Err(format!("option {flag} is not supported natively"));
        }
    }
    let type_text = given.or("type", "A").to_string();
    let count = given.int("request_count").unwrap_or(1);
    if count > 100 {
        return Err(format!("-c {count}: more than 100 queries per server are not run natively"));
    }
    let result = given.get("result").map(str::to_string);
    let is_ip = type_text == "A" || type_text == "AAAA";
    if result.is_some() && !is_ip {
        return Err(format!("-r with type {type_text} is not run natively"));
    }
    if result.is_some() && count > 1 {
        return Err("-r with more than one query is not run natively".into());
    }
    // Ruby's `IPAddr.new` raises on anything but an address (and masks a CIDR).
    if let Some(r) = &result
        && r.split(',').any(|ip| ip.contains('/') || ip.trim().parse::<std::net::IpAddr>().is_err())
    {
        return Err(format!("-r {r:?} is not a list of addresses the native path reads"));
    }
    let regex = match given.get("regex") {
        Some(re) => {
            if !["A", "CNAME", "MX", "NS", "PTR"].contains(&type_text.as_str()) {
                return Err(format!("-R with type {type_text} is not run natively"));
            }
            Some((RubyRegex::new(re).map_err(|why| format!("-R {why}"))?, format!("(?-mix:{re})")))
        }
        None => None,
    };
    let timeout = match given.int("timeout").unwrap_or(5) {
        t if t > 0 => t as u64,
        t => return Err(format!("--timeout {t} is not run natively")),
    };
    let domain = given.get("domain").map(str::to_string);
    let servers: Vec<Option<&str>> = match given.get("server") {
        Some(list) => list.split(',').map(Some).collect(),
        None => vec![None],
    };
    let queries = servers
        .into_iter()
        .map(|server| {
            Query::new(
                domain.as_deref().unwrap_or("."),
                &type_text,
                given.or("class", "IN"),
                server,
                given.int("port"),
                given.has("use_tcp"),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Args {
        domain,
        type_text,
        queries,
        count,
        threshold: given.int("threshold").unwrap_or(100),
        timeout,
        result,
        regex,
        warn_only: given.has("warn_only"),
    })
}

/// What the run printed and its exit status.
pub async fn run(args: &Args) -> (String, i32) {
    let Some(domain) = &args.domain else { return say(CLASS, Status::Unknown, "No domain specified") };
    if args.count < 1 {
        return say(CLASS, Status::Unknown, "Count must be 1 or more");
    }
    let t = &args.type_text;
    let mut errors: Vec<String> = Vec::new();
    let mut success: Vec<String> = Vec::new();
    for query in &args.queries {
        for _ in 0..args.count {
            let answer = dns_query::run(query, Duration::from_secs(args.timeout)).await;
            let records = match answer {
                Answer::NxDomain => {
                    errors.push(format!("Could not resolve {domain} {t} record"));
                    continue;
                }
                Answer::Failed(message) if message == "Query timed out" => {
                    errors.push(format!("Could not resolve {domain}: Query timed out"));
                    continue;
                }
                Answer::Failed(message) => {
                    errors.push(format!("Could not resolve {domain}: {message}"));
                    continue;
                }
                Answer::Records { typed, all } => (typed, all),
            };
            let (records, all) = records;
            if all.is_empty() {
                success.push(format!("Could not resolve {domain} {t} record"));
            } else if let Some(result) = &args.result {
                // `check_ips`: the first match decides, at once.
                let wanted: Vec<std::net::IpAddr> = result.split(',').filter_map(|r| r.trim().parse().ok()).collect();
                let found = records
                    .iter()
                    .filter_map(|r| r.rsplit('\t').next().and_then(|ip| ip.parse::<std::net::IpAddr>().ok()))
                    .any(|ip| wanted.contains(&ip));
                return if found {
                    say(CLASS, Status::Ok, &format!("Resolved UNCHECKED {domain} {t} included {result}"))
                } else {
                    say(CLASS, Status::Critical, &format!("Resolved {domain} {t} did not include {result}"))
                };
            } else if let Some((re, shown)) = &args.regex {
                // `check_against_regex`: the record set of the type asked when the answer has
                // more than one record, else the only record (whatever its type).
                let texts: Vec<String> = if all.len() > 1 {
                    if records.is_empty() {
                        Vec::new()
                    } else {
                        vec![records.iter().map(|r| format!("{r}\n")).collect()]
                    }
                } else {
                    all.clone()
                };
                return if texts.iter().any(|text| re.is_match(text.as_bytes())) {
                    say(CLASS, Status::Ok, &format!("Resolved {domain} {t} matched {shown}"))
                } else {
                    say(CLASS, Status::Critical, &format!("Resolved {domain} {t} did not match {shown}"))
                };
            } else {
                success.push(format!("Resolved {domain} {t}"));
            }
        }
    }
    let percent = success.len() as f64 / (args.count as f64 * args.queries.len() as f64) * 100.0;
    if percent < args.threshold as f64 {
        let output = format!("{}% of tests succeeded: {}", percent as i64, uniq(errors).join(", "));
        say(CLASS, if args.warn_only { Status::Warning } else { Status::Critical }, &output)
    } else {
        say(CLASS, Status::Ok, &uniq(success).join(", "))
    }
}

/// Ruby's `Array#uniq`: the first of each, in order.
fn uniq(items: Vec<String>) -> Vec<String> {
    let mut unique: Vec<String> = Vec::new();
    for item in items {
        if !unique.contains(&item) {
            unique.push(item);
        }
    }
    unique
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Parsed<Args> {
        parse(&line.split_whitespace().map(str::to_string).collect::<Vec<_>>())
    }

    #[test]
    fn duplicated_flags_and_limits() {
        let Parsed::Run(a) = args("-d example.org -c 3 -T -s 127.0.0.1") else { panic!() };
        assert_eq!(a.count, 3, "-c is the request count");
        let Parsed::Run(a) = args("-d example.org -c IN") else { panic!() };
        assert_eq!(a.count, 0, "-c IN is a count of 0, which the plugin refuses");
        for (line, why) in [
            ("-d example.org -c 1000", "more than 100 queries"),
            ("-d example.org -r nonsense", "not a list of addresses"),
            ("-d example.org -r 10.0.0.0/8", "not a list of addresses"),
            ("-d 192.0.2.10 -t PTR", "reverse name"),
            ("-d example.org -t TXT -r x", "-r with type TXT"),
            ("-d example.org -v", "option -v"),
            ("-d example.org -s ns.example.org", "not an IP address"),
        ] {
            match args(line) {
                Parsed::Unsupported(got) => assert!(got.contains(why), "{line}: {got}"),
                Parsed::Run(a) => panic!("{line}: {a:?}"),
            }
        }
    }
}
