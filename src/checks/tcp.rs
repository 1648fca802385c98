//! The built-in TCP check (`"extension": "tcp"`): connect, optionally over TLS, optionally
//! send a string, optionally read until a response matches a pattern (a banner, a reply),
//! with phase timings (dns, connect, tls, response, total) and perfdata.

use std::time::Duration;

use regex::Regex;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::failure::{CheckFailure, Reason};
use super::net::{self, CheckTls, IpPreference};
use super::plugin::{self, Perf, Report, Status, Thresholds};
use super::{Builtin, BuiltinContext, BuiltinFuture};
use crate::proto::Object;

/// TLS on the connection: `true`, or the TLS options (`{"insecure": true, …}`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum TlsChoice {
    /// `true`: TLS with the defaults; `false`: plain TCP.
    On(bool),
    /// TLS with these options.
    With(CheckTls),
}

impl Default for TlsChoice {
    fn default() -> Self {
        Self::On(false)
    }
}

/// Parameters of `"tcp": {…}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpParams {
    /// Host to connect to (name or IP).
    pub host: String,
    /// Port.
    pub port: u16,
    /// TLS after connecting.
    #[serde(default)]
    pub tls: TlsChoice,
    /// Text to send once connected (`\n`, `\r` as written in JSON).
    #[serde(default)]
    pub send: Option<String>,
    /// A pattern the response must match: read until it does, the peer closes, `max_bytes`
    /// arrived, or nothing more came for a second after the last data (a banner that waits).
    #[serde(default)]
    pub expect: Option<String>,
    /// Text to send before closing (e.g. `QUIT\r\n`).
    #[serde(default)]
    pub quit: Option<String>,
    /// Most bytes of the response read. Default 4096.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// Seconds for the whole probe. Default 10.
    #[serde(default = "default_timeout")]
    pub timeout: f64,
    /// Warning above this many seconds in all.
    #[serde(default)]
    pub warning: Option<f64>,
    /// Critical above this many seconds in all.
    #[serde(default)]
    pub critical: Option<f64>,
    /// Address family preference. Default `ipv4_first`.
    #[serde(default)]
    pub ip: IpPreference,
    /// Graphite scheme for `type: metric`. Default `<client>.tcp.<check>`.
    #[serde(default)]
    pub scheme: Option<String>,
}

fn default_max_bytes() -> usize {
    4096
}
fn default_timeout() -> f64 {
    10.0
}

/// How long a response may pause before it counts as complete.
const RESPONSE_IDLE: Duration = Duration::from_secs(1);

/// Largest `max_bytes` accepted.
const MAX_READ: usize = 1024 * 1024;

/// The TCP built-in.
#[derive(Debug, Default)]
pub struct Tcp;

impl Builtin for Tcp {
    fn name(&self) -> &'static str {
        "tcp"
    }

    fn run(&self, check: std::sync::Arc<Object>, ctx: BuiltinContext) -> BuiltinFuture {
        Box::pin(async move {
            let params = plugin::parameters::<TcpParams>(&check, "tcp").and_then(validate);
            let params = match params {
                Ok(p) => p,
                Err(problem) => return plugin::invalid_parameters("TCP", problem),
            };
            let scheme =
                || params.0.scheme.clone().unwrap_or_else(|| plugin::default_scheme(&ctx.client_name, &check, "tcp"));
            probe(&params).await.into_outcome(&check, scheme)
        })
    }
}

/// The parameters, checked; the pattern compiled.
pub fn validate(p: TcpParams) -> Result<(TcpParams, Option<Regex>), CheckFailure> {
    let bad = |m: String| Err(CheckFailure::parameters(m));
    if p.host.is_empty() {
        return bad("host must not be empty".into());
    }
    if p.port == 0 {
        return bad("port must be 1 to 65535".into());
    }
    if !(p.timeout > 0.0 && p.timeout.is_finite() && p.timeout <= 3600.0) {
        return bad("timeout must be a positive number of seconds (at most 3600)".into());
    }
    if p.max_bytes == 0 || p.max_bytes > MAX_READ {
        return bad(format!("max_bytes must be 1 to {MAX_READ}"));
    }
    if let (Some(w), Some(c)) = (p.warning, p.critical)
        && w > c
    {
        return bad(format!("warning ({w}) must not be above critical ({c})"));
    }
    let expect = match &p.expect {
        Some(re) => Some(Regex::new(re).map_err(|e| CheckFailure::parameters(format!("expect: {e}")))?),
        None => None,
    };
    Ok((p, expect))
}

/// What the exchange found.
struct Exchange {
    response: Vec<u8>,
    matched: Option<bool>,
}

/// Run the probe.
pub async fn probe((p, expect): &(TcpParams, Option<Regex>)) -> Report {
    let mut report = Report::new("TCP");
    let target = if p.host.contains(':') && !p.host.starts_with('[') {
        format!("[{}]:{}", p.host, p.port)
    } else {
        format!("{}:{}", p.host, p.port)
    };
    let started = Instant::now();
    let mut timings = Vec::new();
    let limit = Duration::from_secs_f64(p.timeout);
    let outcome = tokio::time::timeout(limit, exchange(p, expect.as_ref(), &mut timings)).await;
    let total = started.elapsed().as_secs_f64();
    timings.push(("total", total));
    report.timings = timings.clone();
    report.perf = vec![Perf::seconds("time", total).thresholds(p.warning, p.critical)];
    report.perf.extend(timings.iter().filter(|(k, _)| *k != "total").map(|(k, v)| Perf::seconds(k, *v)));
    let tls = !matches!(p.tls, TlsChoice::On(false));
    report.details.set("target", target.clone());
    report.details.set("tls", tls);
    let exchange = match outcome {
        Err(_) => {
            let phase = ["dns", "connect", "tls", "response"]
                .into_iter()
                .find(|phase| !timings.iter().any(|(k, _)| k == phase) && phase_applies(phase, p, tls))
                .unwrap_or("response");
            return report.fail(
                Status::Critical,
                Reason::Timeout,
                format!("{target}: no {phase} within {} s", plugin::trim_secs(p.timeout)),
            );
        }
        Ok(Err(failure)) => {
            return report.fail(Status::Critical, failure.reason, format!("{target}: {}", failure.message));
        }
        Ok(Ok(exchange)) => exchange,
    };
    let shown = printable(&exchange.response);
    if !shown.is_empty() {
        report.details.set("response", shown.clone());
    }
    let mut message =
        format!("{target} connected{} in {} s", if tls { " over TLS" } else { "" }, plugin::fmt_secs(total));
    if !shown.is_empty() {
        message.push_str(&format!(", response {shown:?}"));
    }
    if exchange.matched == Some(false) {
        let pattern = p.expect.as_deref().unwrap_or_default();
        return report.fail(
            Status::Critical,
            Reason::Expect,
            format!("{target}: the response does not match /{pattern}/: {shown:?}"),
        );
    }
    let status = Thresholds { warning: p.warning, critical: p.critical }.status(total);
    if status != Status::Ok {
        report.escalate(status, Reason::Latency);
    }
    report.message = message;
    report
}

fn phase_applies(phase: &str, p: &TcpParams, tls: bool) -> bool {
    match phase {
        "tls" => tls,
        "response" => p.send.is_some() || p.expect.is_some(),
        _ => true,
    }
}

async fn exchange(
    p: &TcpParams,
    expect: Option<&Regex>,
    timings: &mut Vec<(&'static str, f64)>,
) -> Result<Exchange, CheckFailure> {
    let (addrs, dns) = net::resolve(&p.host, p.port, p.ip).await?;
    timings.push(("dns", dns.as_secs_f64()));
    let connect_started = Instant::now();
    let (tcp, _) = net::connect(&addrs).await?;
    timings.push(("connect", connect_started.elapsed().as_secs_f64()));
    let options = match &p.tls {
        TlsChoice::On(false) => return converse(tcp, p, expect, timings).await,
        TlsChoice::On(true) => CheckTls::default(),
        TlsChoice::With(options) => options.clone(),
    };
    let config = net::client_config(&options, false)?;
    let name = options.server_name.clone().unwrap_or_else(|| p.host.trim_matches(['[', ']']).to_string());
    let server_name = rustls::pki_types::ServerName::try_from(name.clone())
        .map_err(|_| CheckFailure::parameters(format!("invalid server name {name:?}")))?;
    let tls_started = Instant::now();
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(server_name, tcp)
        .await
        .map_err(|e| CheckFailure::new(Reason::TlsHandshake, format!("TLS handshake failed: {e}")))?;
    timings.push(("tls", tls_started.elapsed().as_secs_f64()));
    converse(stream, p, expect, timings).await
}

/// Send, read what is expected, say goodbye.
async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    p: &TcpParams,
    expect: Option<&Regex>,
    timings: &mut Vec<(&'static str, f64)>,
) -> Result<Exchange, CheckFailure> {
    let io = |e: std::io::Error| CheckFailure::new(Reason::Connect, format!("connection failed: {e}"));
    let started = Instant::now();
    if let Some(send) = &p.send {
        stream.write_all(send.as_bytes()).await.map_err(io)?;
        stream.flush().await.map_err(io)?;
    }
    let mut response = Vec::new();
    let mut matched = None;
    if let Some(expect) = expect {
        let mut buf = [0u8; 2048];
        loop {
            if expect.is_match(&String::from_utf8_lossy(&response)) {
                matched = Some(true);
                break;
            }
            if response.len() >= p.max_bytes {
                matched = Some(false);
                break;
            }
            // Before any data, the probe's own timeout applies; after some, a quiet second
            // ends the response (a server that sent its banner and waits).
            let read = stream.read(&mut buf);
            let n = if response.is_empty() {
                read.await.map_err(io)?
            } else {
                match tokio::time::timeout(RESPONSE_IDLE, read).await {
                    Ok(n) => n.map_err(io)?,
                    Err(_) => 0,
                }
            };
            if n == 0 {
                matched = Some(expect.is_match(&String::from_utf8_lossy(&response)));
                break;
            }
            response.extend_from_slice(&buf[..n.min(p.max_bytes - response.len())]);
        }
        timings.push(("response", started.elapsed().as_secs_f64()));
    } else if p.send.is_some() {
        timings.push(("response", started.elapsed().as_secs_f64()));
    }
    if let Some(quit) = &p.quit {
        let _ = stream.write_all(quit.as_bytes()).await;
    }
    let _ = stream.shutdown().await;
    Ok(Exchange { response, matched })
}

/// The response, its line ending dropped, at most 120 characters (messages quote it with
/// control characters escaped).
fn printable(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_end_matches(['\r', '\n']);
    let mut out: String = text.chars().take(120).collect();
    if text.chars().count() > 120 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(v: serde_json::Value) -> Result<(TcpParams, Option<Regex>), CheckFailure> {
        serde_json::from_value::<TcpParams>(v).map_err(|e| CheckFailure::parameters(e.to_string())).and_then(validate)
    }

    #[test]
    fn parameters_are_checked() {
        assert!(params(json!({"host": "127.0.0.1", "port": 22})).is_ok());
        let (p, _) = params(json!({"host": "h", "port": 1, "tls": true, "warning": 1, "critical": 2})).unwrap();
        assert_eq!(p.tls, TlsChoice::On(true));
        let (p, _) = params(json!({"host": "h", "port": 1, "tls": {"insecure": true}})).unwrap();
        assert!(matches!(p.tls, TlsChoice::With(CheckTls { insecure: true, .. })));
        for (bad, why) in [
            (json!({"host": "h", "port": 0}), "port must be 1 to 65535"),
            (json!({"host": "", "port": 1}), "host must not be empty"),
            (json!({"host": "h", "port": 1, "expect": "("}), "expect: regex parse error"),
            (json!({"host": "h", "port": 1, "timeout": 0}), "timeout must be a positive number"),
            (json!({"host": "h", "port": 1, "max_bytes": 0}), "max_bytes must be 1 to"),
            (
                json!({"host": "h", "port": 1, "warning": 3, "critical": 2}),
                "warning (3) must not be above critical (2)",
            ),
            (json!({"host": "h"}), "missing field `port`"),
            (json!({"host": "h", "port": 1, "bogus": 1}), "unknown field `bogus`"),
        ] {
            let err = params(bad.clone()).unwrap_err().message;
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn responses_print_on_one_line() {
        assert_eq!(printable(b"SSH-2.0-OpenSSH_9.2\r\n"), "SSH-2.0-OpenSSH_9.2");
        assert_eq!(printable(&[b'x'; 200]).chars().count(), 121);
    }
}
