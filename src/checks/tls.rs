//! The built-in TLS certificate check (`"extension": "tls"`), on rustls and x509-parser.
//!
//! It completes the handshake even for expired, self-signed or wrong-host certificates
//! (the verifier records its verdict instead of failing), then reports the leaf's
//! remaining days, the earliest expiry in the presented chain and which certificate it
//! is, whether the chain verifies and why not, and the leaf's subject, issuer and SANs.
//!
//! The status policy is explicit: `scope: "leaf"` (default, as sensu-plugins
//! check-ssl-host) or `"chain"` (any presented certificate, as blackbox's
//! `probe_ssl_earliest_cert_expiry`) decides which expiry the thresholds apply to, and
//! `verify: true` (default) makes a chain that does not verify CRITICAL.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use super::failure::{CheckFailure, Reason};
use super::net::{self, IpPreference};
use super::plugin::{self, Perf, Report, Status};
use super::{Builtin, BuiltinContext, BuiltinFuture};
use crate::proto::Object;

/// Which certificate's expiry the thresholds apply to.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The server's own certificate.
    #[default]
    Leaf,
    /// Whichever presented certificate expires first.
    Chain,
}

/// Parameters of `"tls": {…}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsParams {
    /// Host to connect to (name or IP). Either `host` or `file`.
    #[serde(default)]
    pub host: Option<String>,
    /// Port. Default 443.
    #[serde(default = "default_port")]
    pub port: u16,
    /// SNI and verification name. Default `host` (no SNI for an IP).
    #[serde(default)]
    pub server_name: Option<String>,
    /// A PEM file of certificates on disk to check instead of a server.
    #[serde(default)]
    pub file: Option<String>,
    /// Warning when fewer days are left. Default 14.
    #[serde(default = "default_warning")]
    pub warning: f64,
    /// Critical when fewer days are left. Default 7.
    #[serde(default = "default_critical")]
    pub critical: f64,
    /// `leaf` (default) or `chain`.
    #[serde(default)]
    pub scope: Scope,
    /// A chain that does not verify is CRITICAL. Default true.
    #[serde(default = "default_true")]
    pub verify: bool,
    /// PEM file of extra CA certificates trusted for verification.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// PEM text of extra CA certificates.
    #[serde(default)]
    pub ca: Option<String>,
    /// Seconds for connect and handshake. Default 10.
    #[serde(default = "default_timeout")]
    pub timeout: f64,
    /// Address family preference. Default `ipv4_first`.
    #[serde(default)]
    pub ip: IpPreference,
    /// Graphite scheme for `type: metric`. Default `<client>.tls.<check>`.
    #[serde(default)]
    pub scheme: Option<String>,
}

fn default_port() -> u16 {
    443
}
fn default_warning() -> f64 {
    14.0
}
fn default_critical() -> f64 {
    7.0
}
fn default_true() -> bool {
    true
}
fn default_timeout() -> f64 {
    10.0
}

/// The TLS certificate built-in.
#[derive(Debug, Default)]
pub struct Tls;

impl Builtin for Tls {
    fn name(&self) -> &'static str {
        "tls"
    }

    fn run(&self, check: std::sync::Arc<Object>, ctx: BuiltinContext) -> BuiltinFuture {
        Box::pin(async move {
            let params = match plugin::parameters::<TlsParams>(&check, "tls")
                .and_then(|p| validate(p).map_err(CheckFailure::parameters))
            {
                Ok(p) => p,
                Err(problem) => return plugin::invalid_parameters("TLS", problem),
            };
            let report = match &params.file {
                Some(file) => from_file(&params, file),
                None => from_server(&params).await,
            };
            report.into_outcome(&check, || {
                params.scheme.clone().unwrap_or_else(|| plugin::default_scheme(&ctx.client_name, &check, "tls"))
            })
        })
    }
}

fn validate(p: TlsParams) -> Result<TlsParams, String> {
    match (&p.host, &p.file) {
        (None, None) => return Err("either host or file is required".into()),
        (Some(_), Some(_)) => return Err("give host or file, not both".into()),
        _ => {}
    }
    if p.critical > p.warning {
        return Err(format!("critical ({}) must not be more days than warning ({})", p.critical, p.warning));
    }
    plugin::timeout_param(p.timeout)?;
    Ok(p)
}

/// What we learnt about one certificate.
#[derive(Debug, Clone)]
struct CertInfo {
    subject: String,
    issuer: String,
    sans: Vec<String>,
    serial: String,
    not_after: i64,
    days_left: f64,
}

fn parse_chain(ders: &[Vec<u8>], now: i64) -> Result<Vec<CertInfo>, String> {
    ders.iter()
        .enumerate()
        .map(|(i, der)| {
            let (_, cert) =
                X509Certificate::from_der(der).map_err(|e| format!("certificate {i} does not parse: {e}"))?;
            let not_after = cert.validity().not_after.timestamp();
            let sans = match cert.subject_alternative_name() {
                Ok(Some(ext)) => ext
                    .value
                    .general_names
                    .iter()
                    .filter_map(|n| match n {
                        GeneralName::DNSName(d) => Some(format!("DNS:{d}")),
                        GeneralName::IPAddress(ip) => ip_from_bytes(ip).map(|ip| format!("IP:{ip}")),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            Ok(CertInfo {
                subject: cert.subject().to_string(),
                issuer: cert.issuer().to_string(),
                sans,
                serial: cert.raw_serial_as_string(),
                not_after,
                days_left: (not_after - now) as f64 / 86_400.0,
            })
        })
        .collect()
}

fn ip_from_bytes(b: &[u8]) -> Option<std::net::IpAddr> {
    match b.len() {
        4 => Some(std::net::IpAddr::from(<[u8; 4]>::try_from(b).ok()?)),
        16 => Some(std::net::IpAddr::from(<[u8; 16]>::try_from(b).ok()?)),
        _ => None,
    }
}

fn date(epoch: i64) -> String {
    chrono::DateTime::from_timestamp(epoch, 0)
        .map_or_else(|| epoch.to_string(), |d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
}

fn days_phrase(days: f64) -> String {
    if days < 0.0 {
        // Whole days elapsed, as people say it: 30 hours ago is "1 day ago".
        match (-days).floor() as i64 {
            0 => "expired less than a day ago".to_string(),
            d => format!("expired {d} day{} ago", if d == 1 { "" } else { "s" }),
        }
    } else {
        let d = days.floor() as i64;
        format!("expires in {d} day{}", if d == 1 { "" } else { "s" })
    }
}

fn from_file(p: &TlsParams, file: &str) -> Report {
    let report = Report::new("TLS");
    let pem = match std::fs::read(file) {
        Ok(pem) => pem,
        Err(e) => return report.fail(Status::Unknown, Reason::File, format!("cannot read {file}: {e}")),
    };
    let ders = match crate::pki::certs_from_pem(&pem) {
        Ok(c) => c.into_iter().map(|c| c.to_vec()).collect::<Vec<_>>(),
        Err(e) => return report.fail(Status::Unknown, Reason::File, format!("{file}: {e}")),
    };
    assess(p, file.to_string(), &ders, None, report)
}

async fn from_server(p: &TlsParams) -> Report {
    let mut report = Report::new("TLS");
    let host = p.host.clone().unwrap_or_default();
    let target = format!("{host}:{}", p.port);
    let started = Instant::now();
    let limit = Duration::from_secs_f64(p.timeout);
    let mut timings = Vec::new();
    let handshake = tokio::time::timeout(limit, handshake(p, &host, &mut timings)).await;
    timings.push(("total", started.elapsed().as_secs_f64()));
    report.timings = timings.clone();
    report.perf = timings.iter().map(|(k, v)| Perf::seconds(k, *v)).collect();
    match handshake {
        Err(_) => report.fail(Status::Critical, Reason::Timeout, format!("{target}: timed out after {} s", p.timeout)),
        Ok(Err(failure)) => report.fail(Status::Critical, failure.reason, format!("{target}: {}", failure.message)),
        Ok(Ok((ders, verdict))) => assess(p, target, &ders, Some(verdict), report),
    }
}

type Verdict = Option<Result<(), rustls::Error>>;

async fn handshake(
    p: &TlsParams,
    host: &str,
    timings: &mut Vec<(&'static str, f64)>,
) -> Result<(Vec<Vec<u8>>, Verdict), CheckFailure> {
    let (addrs, dns) = net::resolve(host, p.port, p.ip).await?;
    timings.push(("dns", dns.as_secs_f64()));
    let connect_started = Instant::now();
    let (tcp, _) = net::connect(&addrs).await?;
    timings.push(("connect", connect_started.elapsed().as_secs_f64()));
    let ca = match (&p.ca, &p.ca_file) {
        (Some(pem), _) => Some(pem.as_bytes().to_vec()),
        (None, Some(f)) => Some(std::fs::read(f).map_err(|e| CheckFailure::parameters(format!("ca_file {f}: {e}")))?),
        (None, None) => None,
    };
    let roots = crate::pki::roots_with(ca.as_deref()).map_err(CheckFailure::parameters)?;
    let recorder = crate::pki::RecordingVerifier::new(roots).map_err(|e| CheckFailure::new(Reason::TlsHandshake, e))?;
    let config = rustls::ClientConfig::builder_with_provider(crate::pki::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| CheckFailure::new(Reason::TlsHandshake, e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone())
        .with_no_client_auth();
    let name = p.server_name.clone().unwrap_or_else(|| host.trim_start_matches('[').trim_end_matches(']').to_string());
    let server_name = rustls::pki_types::ServerName::try_from(name.clone())
        .map_err(|_| CheckFailure::parameters(format!("invalid server name {name:?}")))?;
    let tls_started = Instant::now();
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(server_name, tcp)
        .await
        .map_err(|e| CheckFailure::new(Reason::TlsHandshake, format!("TLS handshake failed: {e}")))?;
    timings.push(("tls", tls_started.elapsed().as_secs_f64()));
    let ders =
        stream.get_ref().1.peer_certificates().map(|c| c.iter().map(|c| c.to_vec()).collect()).unwrap_or_default();
    Ok((ders, recorder.verdict()))
}

fn assess(p: &TlsParams, target: String, ders: &[Vec<u8>], verdict: Option<Verdict>, mut report: Report) -> Report {
    let now = crate::proto::now_epoch();
    let chain = match parse_chain(ders, now) {
        Ok(c) if !c.is_empty() => c,
        Ok(_) => {
            return report.fail(Status::Critical, Reason::TlsHandshake, format!("{target}: no certificate presented"));
        }
        Err(e) => return report.fail(Status::Critical, Reason::Certificate, format!("{target}: {e}")),
    };
    let leaf = &chain[0];
    let (earliest_index, earliest) = chain.iter().enumerate().min_by_key(|(_, c)| c.not_after).unwrap_or((0, leaf));
    let governing = match p.scope {
        Scope::Leaf => leaf,
        Scope::Chain => earliest,
    };
    let governing_days = governing.days_left;
    let days = [
        Perf::number("days_left", governing_days.floor()).thresholds(Some(p.warning), Some(p.critical)),
        Perf::number("leaf_days_left", leaf.days_left.floor()),
        Perf::number("earliest_days_left", earliest.days_left.floor()),
    ];
    report.perf.splice(0..0, days);

    let describe = |c: &CertInfo| {
        json!({
            "subject": c.subject, "issuer": c.issuer, "sans": c.sans, "serial": c.serial,
            "not_after": date(c.not_after), "days_left": (c.days_left * 100.0).floor() / 100.0,
        })
    };
    report.details.set("leaf", describe(leaf));
    let mut earliest_doc = describe(earliest);
    earliest_doc["position"] = json!(earliest_index);
    report.details.set("earliest", earliest_doc);
    report.details.set("chain_length", chain.len());

    let mut message = format!(
        "{target} {} {} ({})",
        if p.scope == Scope::Leaf { "certificate" } else { "chain" },
        days_phrase(governing_days),
        date(governing.not_after)
    );
    if p.scope == Scope::Leaf && earliest_index != 0 {
        message.push_str(&format!(
            "; earliest in chain: {} {} ({})",
            earliest.subject,
            days_phrase(earliest.days_left),
            date(earliest.not_after)
        ));
    }
    if p.scope == Scope::Chain && earliest_index != 0 {
        message.push_str(&format!(" [certificate {earliest_index}: {}]", earliest.subject));
    }
    let mut expiry_status = Status::Ok;
    if governing_days < p.critical {
        expiry_status = Status::Critical;
    } else if governing_days < p.warning {
        expiry_status = Status::Warning;
    }
    match verdict {
        None => {}
        Some(None) => {
            report.details.set("verified", false);
        }
        Some(Some(Ok(()))) => {
            report.details.set("verified", true);
            message.push_str("; chain verified");
        }
        Some(Some(Err(e))) => {
            let why = crate::pki::describe_cert_error(&e);
            report.details.set("verified", false);
            report.details.set("verify_error", Value::String(why.clone()));
            message.push_str(&format!("; chain does not verify: {why}"));
            if p.verify && expiry_status != Status::Critical {
                report.escalate(Status::Critical, Reason::TlsVerify);
            }
        }
    }
    message.push_str(&format!("; subject {} issued by {}", leaf.subject, leaf.issuer));
    if !leaf.sans.is_empty() {
        message.push_str(&format!(" [{}]", leaf.sans.join(", ")));
    }
    report.escalate(expiry_status, Reason::CertExpiry);
    report.message = message;
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_phrases() {
        assert_eq!(days_phrase(45.7), "expires in 45 days");
        assert_eq!(days_phrase(1.2), "expires in 1 day");
        assert_eq!(days_phrase(-0.5), "expired less than a day ago");
        assert_eq!(days_phrase(-1.0), "expired 1 day ago");
        assert_eq!(days_phrase(-1.00001), "expired 1 day ago");
        assert_eq!(days_phrase(-3.2), "expired 3 days ago");
    }

    #[test]
    fn parameter_rules() {
        let v = |j: serde_json::Value| TlsParams::deserialize(j).map_err(|e| e.to_string()).and_then(validate);
        assert!(v(json!({})).unwrap_err().contains("either host or file"));
        assert!(v(json!({"host": "h", "file": "f"})).unwrap_err().contains("not both"));
        assert!(v(json!({"host": "h", "warning": 5, "critical": 10})).unwrap_err().contains("must not be more days"));
        assert!(v(json!({"host": "h", "scope": "everything"})).unwrap_err().contains("unknown variant"));
        let ok = v(json!({"host": "h"})).unwrap();
        assert_eq!((ok.port, ok.warning, ok.critical, ok.scope, ok.verify), (443, 14.0, 7.0, Scope::Leaf, true));
    }
}
