//! sensu-plugins-ssl's `check-ssl-cert.rb`, in-process: calendar days until a certificate
//! expires — a server's (`-h`/`-p`, SNI `-s`) or a PEM file's (`-P`) — against the required
//! `-c` and `-w` days.
//!
//! Read from `bin/check-ssl-cert.rb` (2.x): the server's certificate is read as
//! `openssl s_client | openssl x509 -enddate` reads it (no verification), its date compared
//! with today's local date; when no certificate can be read, the script fails parsing an
//! empty date (`Check failed to run: invalid date`, exit 3). PKCS#12 files (`-C`) are not
//! run natively.

use std::time::Duration;

use super::Parsed;
use super::options::{self, Opt, value};
use super::peer_cert;
use super::ruby_cli::{self, Status, say};

const CLASS: &str = "CheckSSLCert";

const OPTIONS: &[Opt] = &[
    value("critical", Some('c'), Some("critical")),
    value("warning", Some('w'), Some("warning")),
    value("pem", Some('P'), Some("pem")),
    value("host", Some('h'), Some("host")),
    value("port", Some('p'), Some("port")),
    value("servername", Some('s'), Some("servername")),
    value("pkcs12", Some('C'), Some("cert")),
    value("pass", Some('S'), Some("pass")),
];

/// What the plugin was asked.
#[derive(Debug, Clone, PartialEq)]
pub struct Args {
    critical: i64,
    warning: i64,
    pem: Option<String>,
    host: Option<String>,
    port: Option<String>,
    servername: Option<String>,
}

/// Parse `check-ssl-cert.rb`'s arguments.
pub fn parse(argv: &[String]) -> Parsed<Args> {
    let given = match options::parse(OPTIONS, argv) {
        Ok(given) => given,
        Err(why) => return Parsed::Unsupported(why),
    };
    if given.has("pkcs12") {
        return Parsed::Unsupported("option -C is not supported natively".into());
    }
    let (Some(critical), Some(warning)) = (given.int("critical"), given.int("warning")) else {
        return Parsed::Unsupported("-c and -w are required".into());
    };
    Parsed::Run(Args {
        critical,
        warning,
        pem: given.get("pem").map(str::to_string),
        host: given.get("host").map(str::to_string),
        port: given.get("port").map(str::to_string),
        servername: given.get("servername").map(str::to_string),
    })
}

/// What the run printed and its exit status.
pub async fn run(args: &Args) -> (String, i32) {
    let not_after = match &args.pem {
        Some(pem) => {
            if !std::path::Path::new(pem).exists() {
                return say(CLASS, Status::Unknown, "No such cert");
            }
            match peer_cert::file_not_after(pem).await {
                Ok(t) => Some(t),
                Err(e) => return ruby_cli::failed_to_run(&e),
            }
        }
        None => {
            let (Some(host), Some(port)) = (&args.host, &args.port) else {
                return say(CLASS, Status::Unknown, "Host and port required");
            };
            let server_name = args.servername.as_deref().unwrap_or(host);
            match port.parse::<u16>() {
                Ok(port) => peer_cert::not_after(host, port, server_name, false, Duration::from_secs(60)).await.ok(),
                Err(_) => None,
            }
        }
    };
    // `Date.parse("")` when `openssl x509` read no certificate.
    let Some(not_after) = not_after else { return ruby_cli::failed_to_run("invalid date") };
    let Some(end) = chrono::DateTime::from_timestamp(not_after, 0) else {
        return ruby_cli::failed_to_run("invalid date");
    };
    let days = (end.date_naive() - chrono::Local::now().date_naive()).num_days();
    if days < 0 {
        say(CLASS, Status::Critical, &format!("Expired {} days ago", days.abs()))
    } else if days < args.critical {
        say(CLASS, Status::Critical, &format!("{days} days left"))
    } else if days < args.warning {
        say(CLASS, Status::Warning, &format!("{days} days left"))
    } else {
        say(CLASS, Status::Ok, &format!("{days} days left"))
    }
}
