//! sensu-plugins-ssl's `check-ssl-host.rb`, in-process: the server's certificate chain read
//! without verification, then the plugin's own checks in its order — the host name against
//! the leaf (`<host> hostname mismatch (<subject>)`), each certificate signed by the next one
//! presented (`<host> - Invalid certificate chain`), and calendar days until the leaf
//! expires against `-c` (7) and `-w` (14): `check_ssl_host OK: <host> - 60 days until expiry`.
//!
//! Read from `bin/check-ssl-host.rb` (2.x): the TCP connection goes to `-a` or the host, SNI
//! is the host; an expired certificate prints its (negative) days as the script does
//! (`Expired -2 days ago`); a connection error the script does not rescue is sensu-plugin's
//! `Check failed to run: …` with Ruby 2.4's words. Not run natively: `--starttls`, client
//! certificates.

use std::time::Duration;

use super::Parsed;
use super::options::{self, Opt, switch, value};
use super::peer_cert;
use super::ruby_cli::{self, Status, say};

const CLASS: &str = "check_ssl_host";

const OPTIONS: &[Opt] = &[
    value("critical", Some('c'), Some("critical")),
    value("warning", Some('w'), Some("warning")),
    value("host", Some('h'), Some("host")),
    value("port", Some('p'), Some("port")),
    value("address", Some('a'), Some("address")),
    value("client_cert", None, Some("client-cert")),
    value("client_key", None, Some("client-key")),
    switch("skip_hostname_verification", None, Some("skip-hostname-verification")),
    switch("skip_chain_verification", None, Some("skip-chain-verification")),
    value("starttls", None, Some("starttls")),
];

/// What the plugin was asked.
#[derive(Debug, Clone, PartialEq)]
pub struct Args {
    host: String,
    port: u16,
    address: Option<String>,
    critical: i64,
    warning: i64,
    check_hostname: bool,
    check_chain: bool,
}

/// Parse `check-ssl-host.rb`'s arguments.
pub fn parse(argv: &[String]) -> Parsed<Args> {
    let given = match options::parse(OPTIONS, argv) {
        Ok(given) => given,
        Err(why) => return Parsed::Unsupported(why),
    };
    for (key, flag) in [("starttls", "--starttls"), ("client_cert", "--client-cert"), ("client_key", "--client-key")] {
        if given.has(key) {
            return Parsed::Unsupported(format!("option {flag} is not supported natively"));
        }
    }
    let Some(host) = given.get("host") else { return Parsed::Unsupported("-h is required".into()) };
    let port = match given.or("port", "443").parse::<u16>() {
        Ok(p) if p > 0 => p,
        _ => return Parsed::Unsupported(format!("port {:?} is not one the native path runs", given.or("port", ""))),
    };
    Parsed::Run(Args {
        host: host.to_string(),
        port,
        address: given.get("address").map(str::to_string),
        critical: given.int("critical").unwrap_or(7),
        warning: given.int("warning").unwrap_or(14),
        check_hostname: !given.has("skip_hostname_verification"),
        check_chain: !given.has("skip_chain_verification"),
    })
}

/// What the run printed and its exit status.
pub async fn run(args: &Args) -> (String, i32) {
    let host = &args.host;
    let target = args.address.as_deref().unwrap_or(host);
    let chain = match peer_cert::chain(target, args.port, host, Duration::from_secs(60)).await {
        Ok(chain) => chain,
        Err(peer_cert::ChainError::Reset) => {
            return say(CLASS, Status::Critical, "Errno::ECONNRESET - Connection reset by peer");
        }
        Err(peer_cert::ChainError::Connect(error)) => {
            return ruby_cli::failed_to_run(&format!(
                "{} - connect(2) for {target:?} port {}",
                super::strerror(&error),
                args.port
            ));
        }
        Err(peer_cert::ChainError::Other(message)) => return ruby_cli::failed_to_run(&message),
    };
    let certs: Vec<_> =
        chain.iter().filter_map(|der| x509_parser::parse_x509_certificate(der).ok().map(|(_, c)| c)).collect();
    let Some(leaf) = certs.first() else { return ruby_cli::failed_to_run("no certificate") };
    if args.check_hostname && !peer_cert::matches_host(leaf, host) {
        let subject = peer_cert::openssl_subject(leaf);
        return say(CLASS, Status::Critical, &format!("{host} hostname mismatch ({subject})"));
    }
    if args.check_chain {
        let valid = certs.windows(2).all(|pair| pair[0].verify_signature(Some(pair[1].public_key())).is_ok());
        if !valid {
            return say(CLASS, Status::Critical, &format!("{host} - Invalid certificate chain"));
        }
    }
    let Some(end) = chrono::DateTime::from_timestamp(leaf.validity().not_after.timestamp(), 0) else {
        return ruby_cli::failed_to_run("invalid date");
    };
    let days = (end.date_naive() - chrono::Local::now().date_naive()).num_days();
    let message = format!("{host} - {days} days until expiry");
    if days < 0 {
        say(CLASS, Status::Critical, &format!("{host} - Expired {days} days ago"))
    } else if days < args.critical {
        say(CLASS, Status::Critical, &message)
    } else if days < args.warning {
        say(CLASS, Status::Warning, &message)
    } else {
        say(CLASS, Status::Ok, &message)
    }
}
