//! sensu-plugins-dns' `metrics-dns.rb`, in-process: one query timed, printed as the plugin
//! prints it (`<scheme>.<type>.<domain_with_underscores>.response_time 0.00123457 <now>`,
//! scheme `<hostname>.dns` by default).
//!
//! Read from `bin/metrics-dns.rb` (2.x): the time is in seconds, rounded to 8 decimals and
//! printed as Ruby prints a Float; NXDOMAIN prints `Could not resolve <domain> <type>
//! record` (exit 2); any other failure prints the exception's message (exit 3); an answer
//! without records is still timed. A server (`-s`) must be an IP address here; record classes
//! other than IN are not run natively.

use std::time::Duration;

use super::Parsed;
use super::dns_query::{self, Answer};
use super::options::{self, Opt, value};

const OPTIONS: &[Opt] = &[
    value("domain", Some('d'), Some("domain")),
    value("type", Some('t'), Some("type")),
    value("class", Some('c'), Some("class")),
    value("server", Some('s'), Some("server")),
    value("port", Some('p'), Some("port")),
    value("scheme", Some('S'), Some("scheme")),
];

/// What the plugin was asked.
#[derive(Debug, Clone, PartialEq)]
pub struct Args {
    domain: Option<String>,
    query: dns_query::Query,
    scheme: String,
}

/// Parse `metrics-dns.rb`'s arguments.
pub fn parse(argv: &[String]) -> Parsed<Args> {
    let given = match options::parse(OPTIONS, argv) {
        Ok(given) => given,
        Err(why) => return Parsed::Unsupported(why),
    };
    let query = match dns_query::Query::new(
        given.get("domain").unwrap_or("."),
        given.or("type", "A"),
        given.or("class", "IN"),
        given.get("server"),
        given.int("port"),
        false,
    ) {
        Ok(q) => q,
        Err(why) => return Parsed::Unsupported(why),
    };
    Parsed::Run(Args {
        domain: given.get("domain").map(str::to_string),
        query,
        scheme: given.get("scheme").map_or_else(|| format!("{}.dns", super::hostname()), str::to_string),
    })
}

/// What the run printed and its exit status.
pub async fn run(args: &Args) -> (String, i32) {
    // The metric plugins print a message alone, without the check's name.
    let Some(domain) = &args.domain else { return ("No domain specified\n".into(), 3) };
    let started = tokio::time::Instant::now();
    let answer = dns_query::run(&args.query, Duration::from_secs(5)).await;
    let took = started.elapsed().as_secs_f64();
    match answer {
        Answer::NxDomain => (format!("Could not resolve {domain} {} record\n", args.query.type_text), 2),
        Answer::Failed(message) => (format!("{message}\n"), 3),
        Answer::Records { .. } => {
            let key = domain.replace('.', "_");
            let rounded = (took * 1e8).round() / 1e8;
            let now = chrono::Utc::now().timestamp();
            (
                format!(
                    "{}.{}.{key}.response_time {} {now}\n",
                    args.scheme,
                    args.query.type_text,
                    super::ruby_cli::float_to_s(rounded)
                ),
                0,
            )
        }
    }
}
