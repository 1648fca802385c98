//! sensu-plugins-http's `check-https-cert.rb`, in-process: days until the server
//! certificate expires, against `-w` (50) and `-c` (25) days, or `-e` when it is expected to
//! have expired; any failure to connect or verify is `Could not connect to <url>`.
//!
//! Read from `bin/check-https-cert.rb` (6.x): the certificate is verified (chain and name)
//! unless `-k`; days are `((not_after - now) / 86400).to_i`, truncated toward zero;
//! `not_after` prints as Ruby's `Time#to_s`. Net::HTTP's own open timeout (60 s) bounds the
//! connection.

use std::time::Duration;

use http::Uri;

use super::Parsed;
use super::options::{self, Opt, switch, value};
use super::peer_cert;
use super::ruby_cli::{Status, say};

const CLASS: &str = "CheckHttpCert";

const OPTIONS: &[Opt] = &[
    value("url", Some('u'), Some("url")),
    value("warning", Some('w'), Some("warning")),
    value("critical", Some('c'), Some("critical")),
    switch("expired", Some('e'), Some("expired")),
    switch("insecure", Some('k'), Some("insecure")),
];

/// What the plugin was asked.
#[derive(Debug, Clone, PartialEq)]
pub struct Args {
    url: String,
    warning: i64,
    critical: i64,
    expired: bool,
    insecure: bool,
}

/// Parse `check-https-cert.rb`'s arguments.
pub fn parse(argv: &[String]) -> Parsed<Args> {
    match options::parse(OPTIONS, argv) {
        Ok(given) => Parsed::Run(Args {
            url: given.or("url", "").to_string(),
            warning: given.int("warning").unwrap_or(50),
            critical: given.int("critical").unwrap_or(25),
            expired: given.has("expired"),
            insecure: given.has("insecure"),
        }),
        Err(why) => Parsed::Unsupported(why),
    }
}

/// What the run printed and its exit status.
pub async fn run(args: &Args) -> (String, i32) {
    let cannot = || say(CLASS, Status::Critical, &format!("Could not connect to {}", args.url));
    let Ok(uri) = args.url.parse::<Uri>() else { return cannot() };
    let (Some(host), Some(scheme)) = (uri.host(), uri.scheme_str()) else { return cannot() };
    let port = uri.port_u16().unwrap_or(if scheme == "https" { 443 } else { 80 });
    let not_after = match peer_cert::not_after(host, port, host, !args.insecure, Duration::from_secs(60)).await {
        Ok(t) => t,
        Err(_) => return cannot(),
    };
    let days = ((not_after - chrono::Utc::now().timestamp()) as f64 / 86_400.0).trunc() as i64;
    let expires =
        |days: i64| format!("TLS/SSL certificate expires on {} - {days} days left.", peer_cert::ruby_time(not_after));
    let expired = |days: i64| format!("TLS/SSL certificate expired {} days ago.", days.abs());
    if args.expired {
        return if days >= 0 {
            say(CLASS, Status::Critical, &expires(days))
        } else {
            say(CLASS, Status::Ok, &expired(days))
        };
    }
    if days <= 0 {
        say(CLASS, Status::Critical, &expired(days))
    } else if days < args.critical {
        say(CLASS, Status::Critical, &expires(days))
    } else if days < args.warning {
        say(CLASS, Status::Warning, &expires(days))
    } else {
        say(CLASS, Status::Ok, &expires(days))
    }
}
