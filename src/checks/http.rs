//! The built-in HTTP check (`"extension": "http"`), one HTTP/1.1 exchange per connection
//! ([`super::http1`]) with every phase timed:
//! dns, connect, tls, time to first byte, transfer, total (each summed over redirects, as
//! blackbox_exporter does).
//!
//! Defaults follow sensu-plugins `check-http.rb` where users know them: 2xx and 3xx are
//! accepted, redirects are not followed unless asked.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use regex::Regex;
use serde::Deserialize;
use serde_json::Value;
use tokio::time::Instant;

use super::compiled::{Compiled, Weigh};
use super::failure::{CheckFailure, Reason};
use super::http1;
use super::net::{self, CheckTls, IpPreference};
use super::plugin::{self, Perf, Report, Status, Thresholds};
use super::{Builtin, BuiltinContext, BuiltinFuture};
use crate::proto::{Additions, Object};

/// Parameters of `"http": {…}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpParams {
    /// `http://` or `https://` URL. Required.
    pub url: String,
    /// Request method. Default `GET`.
    #[serde(default)]
    pub method: Option<String>,
    /// Request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Request body.
    #[serde(default)]
    pub body: Option<String>,
    /// Basic auth user (with `password`).
    #[serde(default)]
    pub user: Option<String>,
    /// Basic auth password.
    #[serde(default)]
    pub password: Option<String>,
    /// Bearer token (`Authorization: Bearer …`).
    #[serde(default)]
    pub bearer_token: Option<String>,
    /// Accepted status codes: numbers, `"2xx"`, or ranges `"200-299"`. Default 200–399.
    #[serde(default)]
    pub status: Option<Vec<Value>>,
    /// Follow redirects. Default false (a 3xx is then the final answer).
    #[serde(default)]
    pub follow_redirects: bool,
    /// Most redirects followed. Default 10.
    #[serde(default = "default_max_redirects")]
    pub max_redirects: u32,
    /// The body must match this regex.
    #[serde(default)]
    pub body_match: Option<String>,
    /// The body must not match this regex.
    #[serde(default)]
    pub body_not_match: Option<String>,
    /// Headers that must be present and match a regex: `{"Content-Type": "json"}`.
    #[serde(default)]
    pub headers_match: BTreeMap<String, String>,
    /// Headers that must not match a regex (absent is fine).
    #[serde(default)]
    pub headers_not_match: BTreeMap<String, String>,
    /// Largest body read, in bytes; a larger one is CRITICAL. Default 10 MiB.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// TLS options.
    #[serde(default)]
    pub tls: CheckTls,
    /// Address family preference. Default `ipv4_first`.
    #[serde(default)]
    pub ip: IpPreference,
    /// Seconds for the whole probe. Default 10.
    #[serde(default = "default_timeout")]
    pub timeout: f64,
    /// Warning above this many seconds in total.
    #[serde(default)]
    pub warning: Option<f64>,
    /// Critical above this many seconds in total.
    #[serde(default)]
    pub critical: Option<f64>,
    /// `User-Agent`. Default `Sensu-HTTP-Check (concierge)`.
    #[serde(default)]
    pub user_agent: Option<String>,
    /// Graphite scheme for `type: metric`. Default `<client>.curl_timings.<check>`.
    #[serde(default)]
    pub scheme: Option<String>,
}

fn default_max_redirects() -> u32 {
    10
}
fn default_max_body() -> usize {
    10 * 1024 * 1024
}
fn default_timeout() -> f64 {
    10.0
}

/// Accepted status codes.
#[derive(Debug, Clone)]
struct StatusSpec(Cow<'static, [(u16, u16)]>, Cow<'static, str>);

impl StatusSpec {
    fn parse(items: &Option<Vec<Value>>) -> Result<Self, String> {
        // The default is most checks': borrowed, nothing allocated per check.
        let Some(items) = items else { return Ok(Self(Cow::Borrowed(&[(200, 399)]), Cow::Borrowed("200-399"))) };
        let mut ranges = Vec::new();
        let mut shown = Vec::new();
        for item in items {
            let text = match item {
                Value::Number(n) => n.to_string(),
                Value::String(s) => s.trim().to_string(),
                other => return Err(format!("status entry {other} must be a number or a string")),
            };
            let bad = || format!("status entry {text:?} must be like 200, \"2xx\" or \"200-299\"");
            let range = if let Some(class) = text.strip_suffix("xx") {
                let c: u16 = class.parse().map_err(|_| bad())?;
                (c * 100, c * 100 + 99)
            } else if let Some((a, b)) = text.split_once('-') {
                (a.trim().parse().map_err(|_| bad())?, b.trim().parse().map_err(|_| bad())?)
            } else {
                let c: u16 = text.parse().map_err(|_| bad())?;
                (c, c)
            };
            if range.0 < 100 || range.1 > 599 || range.0 > range.1 {
                return Err(bad());
            }
            ranges.push(range);
            shown.push(text);
        }
        if ranges.is_empty() {
            return Err("status must list at least one code".into());
        }
        Ok(Self(ranges.into(), shown.join(",").into()))
    }

    fn accepts(&self, code: u16) -> bool {
        self.0.iter().any(|(a, b)| (*a..=*b).contains(&code))
    }
}

/// Validated parameters.
#[derive(Debug)]
struct Probe {
    url: Uri,
    /// `url` as published in the result's `probe.url` (written once, when compiled).
    url_text: String,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
    status: StatusSpec,
    follow: bool,
    max_redirects: u32,
    body_match: Option<Regex>,
    body_not_match: Option<Regex>,
    headers_match: Vec<(HeaderName, Regex)>,
    headers_not_match: Vec<(HeaderName, Regex)>,
    max_body: usize,
    tls: CheckTls,
    ip: IpPreference,
    timeout: Duration,
    thresholds: Thresholds,
    scheme: Option<String>,
    /// The first request's bytes, written when compiled (`None` when they cannot be: the
    /// same refusal then comes from the run, as for a redirect's request).
    request: Option<Vec<u8>>,
}

impl Weigh for Probe {
    /// Kept unless it holds a regex (whose lazy DFA cache grows with use); its strings and
    /// headers plus a fixed share for the rest.
    fn weight(&self) -> Option<usize> {
        let regexes = self.body_match.is_some()
            || self.body_not_match.is_some()
            || !self.headers_match.is_empty()
            || !self.headers_not_match.is_empty();
        if regexes {
            return None;
        }
        let headers: usize = self.headers.iter().map(|(name, value)| 64 + name.as_str().len() + value.len()).sum();
        let tls = &self.tls;
        let strings = [&self.scheme, &tls.ca_file, &tls.ca, &tls.cert_file, &tls.key_file, &tls.server_name]
            .into_iter()
            .map(|s| s.as_ref().map_or(0, String::len))
            .sum::<usize>();
        // The URL twice (parsed, and as text), the rest once, and the request written from them.
        let request = self.request.as_ref().map_or(0, Vec::len);
        Some(1024 + 2 * self.url_text.len() + strings + self.status.1.len() + headers + self.body.len() + request)
    }
}

fn regex(what: &str, pattern: &Option<String>) -> Result<Option<Regex>, String> {
    pattern.as_ref().map(|p| Regex::new(p).map_err(|e| format!("{what} is not a valid regex: {e}"))).transpose()
}

impl HttpParams {
    fn compile(self) -> Result<Probe, String> {
        let url: Uri = self.url.parse().map_err(|e| format!("url {:?}: {e}", self.url))?;
        match url.scheme_str() {
            Some("http" | "https") => {}
            _ => return Err(format!("url {:?} must start with http:// or https://", self.url)),
        }
        if url.host().is_none() {
            return Err(format!("url {:?} has no host", self.url));
        }
        let method = match self.method.as_deref() {
            None => Method::GET,
            Some(method) => Method::from_bytes(method.to_ascii_uppercase().as_bytes())
                .map_err(|_| "method is not a valid HTTP method".to_string())?,
        };
        let mut headers = HeaderMap::new();
        let agent = match &self.user_agent {
            Some(agent) => HeaderValue::from_str(agent).map_err(|_| "user_agent is not a valid header value")?,
            None => HeaderValue::from_static("Sensu-HTTP-Check (concierge)"),
        };
        headers.insert(http::header::USER_AGENT, agent);
        for (name, value) in &self.headers {
            let name =
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("header name {name:?} is invalid"))?;
            let value = HeaderValue::from_str(value).map_err(|_| format!("header {name} has an invalid value"))?;
            headers.insert(name, value);
        }
        if http1::request_ends_chunked(&headers) == Some(false) {
            return Err("header transfer-encoding must end with chunked (the body is sent chunked)".into());
        }
        match (&self.user, &self.password, &self.bearer_token) {
            (Some(_), _, Some(_)) => return Err("use either user/password or bearer_token".into()),
            (Some(user), password, None) => {
                let token = base64::engine::general_purpose::STANDARD
                    .encode(format!("{user}:{}", password.as_deref().unwrap_or_default()));
                headers.insert(
                    http::header::AUTHORIZATION,
                    HeaderValue::from_str(&format!("Basic {token}")).map_err(|_| "invalid user")?,
                );
            }
            (None, Some(_), _) => return Err("password needs user".into()),
            (None, None, Some(token)) => {
                headers.insert(
                    http::header::AUTHORIZATION,
                    HeaderValue::from_str(&format!("Bearer {token}"))
                        .map_err(|_| "bearer_token is not a valid header value")?,
                );
            }
            (None, None, None) => {}
        }
        let header_rules = |rules: &BTreeMap<String, String>, what: &str| -> Result<Vec<(HeaderName, Regex)>, String> {
            rules
                .iter()
                .map(|(name, pattern)| {
                    let header = HeaderName::from_bytes(name.as_bytes())
                        .map_err(|_| format!("{what} header name {name:?} is invalid"))?;
                    let re = Regex::new(pattern).map_err(|e| format!("{what} for {name} is not a valid regex: {e}"))?;
                    Ok((header, re))
                })
                .collect()
        };
        let timeout = plugin::timeout_param(self.timeout)?;
        let mut probe = Probe {
            url_text: display(&url, 64),
            url,
            method,
            headers,
            body: Bytes::from(self.body.unwrap_or_default()),
            status: StatusSpec::parse(&self.status)?,
            follow: self.follow_redirects,
            max_redirects: self.max_redirects,
            body_match: regex("body_match", &self.body_match)?,
            body_not_match: regex("body_not_match", &self.body_not_match)?,
            headers_match: header_rules(&self.headers_match, "headers_match")?,
            headers_not_match: header_rules(&self.headers_not_match, "headers_not_match")?,
            max_body: self.max_body_bytes,
            tls: self.tls,
            ip: self.ip,
            timeout,
            thresholds: Thresholds::new(self.warning, self.critical),
            scheme: self.scheme,
            request: None,
        };
        probe.request = request_for(&probe, None).ok();
        Ok(probe)
    }
}

/// The HTTP built-in: its probes, compiled once per check definition.
#[derive(Debug, Default)]
pub struct Http {
    probes: Compiled<Probe>,
}

impl Http {
    /// How many times this built-in compiled a probe (a request whose parameters were
    /// compiled before and kept does not count).
    pub fn compiles(&self) -> usize {
        self.probes.compiles()
    }
}

impl Builtin for Http {
    fn name(&self) -> &'static str {
        "http"
    }

    fn run(&self, check: std::sync::Arc<Object>, ctx: BuiltinContext) -> BuiltinFuture {
        let probe = self.probes.get(&check, "http", |params| {
            plugin::deserialize::<HttpParams>(params)?.compile().map_err(CheckFailure::parameters)
        });
        // Unwrapped here: the running check carries the probe, not the result of compiling it.
        let probe = match probe {
            Ok(p) => p,
            Err(problem) => return Box::pin(async move { plugin::invalid_parameters("HTTP", problem) }),
        };
        Box::pin(async move {
            let report = run_probe(&probe).await;
            report.into_outcome(&check, || {
                probe.scheme.clone().unwrap_or_else(|| plugin::default_scheme(&ctx.client_name, &check, "curl_timings"))
            })
        })
    }
}

/// Where the probe is, and what it measured so far (readable after a timeout).
#[derive(Debug, Default, Clone)]
struct Progress {
    phase: &'static str,
    dns: f64,
    connect: f64,
    tls: f64,
    ttfb: f64,
    transfer: f64,
}

/// What one exchange returned.
struct Exchange {
    status: u16,
    headers: http1::Headers,
    body: Bytes,
    address: std::net::SocketAddr,
}

async fn run_probe(probe: &Probe) -> Report {
    let started = Instant::now();
    let progress = Mutex::new(Progress { phase: "dns", ..Progress::default() });
    let outcome = tokio::time::timeout(probe.timeout, follow(probe, &progress)).await;
    let total = started.elapsed().as_secs_f64();
    let p = progress.lock().map(|p| p.clone()).unwrap_or_default();
    let mut report = Report::new("HTTP");
    // Sized for what a finished exchange adds: grown entry by entry, each was reallocated.
    report.details = Additions::with_capacity(5);
    report.timings = Vec::with_capacity(6);
    let is_https = probe.url.scheme_str() == Some("https");
    report.timings.extend([("dns", p.dns), ("connect", p.connect)]);
    if is_https {
        report.timings.push(("tls", p.tls));
    }
    report.timings.extend([("ttfb", p.ttfb), ("transfer", p.transfer), ("total", total)]);
    let mut perf = Vec::with_capacity(report.timings.len() + 2);
    perf.push(Perf::seconds("time", total).thresholds(probe.thresholds.warning, probe.thresholds.critical));
    perf.extend(report.timings.iter().filter(|(k, _)| *k != "total").map(|(k, v)| Perf::seconds(k, *v)));
    match outcome {
        Err(_) => {
            report.perf = perf;
            report.fail(
                Status::Critical,
                Reason::Timeout,
                format!("timed out after {} s (during {})", plugin::trim_secs(probe.timeout.as_secs_f64()), p.phase),
            )
        }
        Ok(Err(failure)) => {
            report.perf = perf;
            report.fail(Status::Critical, failure.reason, failure.message)
        }
        Ok(Ok((exchange, moved, redirects))) => {
            let bytes = exchange.body.len();
            perf.push(Perf::bytes("size", bytes as f64));
            perf.push(Perf::number("status_code", f64::from(exchange.status)));
            report.perf = perf;
            report.details.set("status_code", exchange.status);
            report.details.set("bytes", bytes);
            // Written once per definition, unless a redirect moved the probe elsewhere.
            report.details.set("url", moved.map_or_else(|| probe.url_text.clone(), |moved| display(&moved.url, 64)));
            report.details.set("address", net::address_text(exchange.address));
            report.details.set("redirects", redirects);
            // `<status> in <seconds> s, <bytes> bytes`, piece by piece (`format!` took 1,200
            // instructions of every check).
            let mut summary = String::with_capacity(48);
            summary.push_str(itoa::Buffer::new().format(exchange.status));
            summary.push_str(" in ");
            plugin::push_secs(&mut summary, total);
            summary.push_str(" s, ");
            summary.push_str(itoa::Buffer::new().format(bytes));
            summary.push_str(" bytes");
            if redirects > 0 {
                summary.push_str(&format!(" after {redirects} redirect{}", if redirects == 1 { "" } else { "s" }));
            }
            assess(probe, &exchange, total, summary, report)
        }
    }
}

/// `value` as text, written into one buffer of `capacity` bytes (`to_string` grows its
/// buffer piece by piece).
fn display(value: &impl std::fmt::Display, capacity: usize) -> String {
    let mut text = String::with_capacity(capacity);
    let _ = write!(text, "{value}");
    text
}

fn assess(probe: &Probe, exchange: &Exchange, total: f64, summary: String, mut report: Report) -> Report {
    if !probe.status.accepts(exchange.status) {
        return report.fail(
            Status::Critical,
            Reason::Status,
            format!("{summary} (expected status {})", probe.status.1),
        );
    }
    let body = String::from_utf8_lossy(&exchange.body);
    if let Some(re) = &probe.body_match
        && !re.is_match(&body)
    {
        return report.fail(Status::Critical, Reason::Body, format!("{summary}; body does not match /{re}/"));
    }
    if let Some(re) = &probe.body_not_match
        && re.is_match(&body)
    {
        return report.fail(Status::Critical, Reason::Body, format!("{summary}; body matches /{re}/"));
    }
    for (name, re) in &probe.headers_match {
        let values: Vec<&str> = exchange.headers.get_all(name.as_str()).filter_map(http1::text).collect();
        if values.is_empty() {
            return report.fail(Status::Critical, Reason::Header, format!("{summary}; header {name} missing"));
        }
        if !values.iter().any(|v| re.is_match(v)) {
            return report.fail(
                Status::Critical,
                Reason::Header,
                format!("{summary}; header {name} does not match /{re}/"),
            );
        }
    }
    for (name, re) in &probe.headers_not_match {
        if exchange.headers.get_all(name.as_str()).filter_map(http1::text).any(|v| re.is_match(v)) {
            return report.fail(Status::Critical, Reason::Header, format!("{summary}; header {name} matches /{re}/"));
        }
    }
    report.message = summary;
    let status = probe.thresholds.status(total);
    if status != Status::Ok {
        let limit = if status == Status::Critical { probe.thresholds.critical } else { probe.thresholds.warning };
        report.message.push_str(&format!(" (slower than {} s)", plugin::trim_secs(limit.unwrap_or_default())));
        report.escalate(status, Reason::Latency);
    }
    report
}

/// Run the exchange, following redirects if asked. Returns the last exchange, where a
/// redirect moved the probe if one did (boxed: most runs follow none, and every check in
/// flight carries this future), and the number of redirects followed.
async fn follow(
    probe: &Probe,
    progress: &Mutex<Progress>,
) -> Result<(Exchange, Option<Box<Redirected>>, u32), CheckFailure> {
    let mut moved: Option<Box<Redirected>> = None;
    let mut redirects = 0;
    loop {
        let exchange = exchange(probe, moved.as_deref(), progress).await?;
        let location = exchange.headers.get("location").map(str::to_string);
        match location {
            Some(location) if probe.follow && (300..400).contains(&exchange.status) => {
                if redirects >= probe.max_redirects {
                    return Err(CheckFailure::new(
                        Reason::Redirects,
                        format!("more than {} redirects", probe.max_redirects),
                    ));
                }
                let (url, method) = sent(probe, moved.as_deref());
                let url = resolve_location(url, &location).map_err(|e| CheckFailure::new(Reason::Redirects, e))?;
                let method = redirected_method(method, exchange.status);
                let same_origin = same_origin(&url, &probe.url);
                moved = Some(Box::new(Redirected { url, method, same_origin }));
                redirects += 1;
            }
            _ => return Ok((exchange, moved, redirects)),
        }
    }
}

/// Where a redirect led, and how the request is sent there.
#[derive(Debug)]
struct Redirected {
    url: Uri,
    /// The probe's method, or `GET` once a redirect changed it ([`redirected_method`]); the
    /// probe's body goes only with the probe's method.
    method: Method,
    /// On the probe's own origin (scheme, host and port): the probe's credentials
    /// (`authorization`, `proxy-authorization`, `cookie`) and a given `host` are sent only
    /// there, as curl and browsers do, so a redirect cannot hand them to another server.
    same_origin: bool,
}

/// `location` resolved against `base` (RFC 3986, 5: relative paths, `?query`, `//host/…`,
/// `..`), its fragment dropped; only `http` and `https` are followed.
fn resolve_location(base: &Uri, location: &str) -> Result<Uri, String> {
    let invalid = || format!("invalid redirect location {location:?}");
    let base = url::Url::parse(&base.to_string()).map_err(|_| invalid())?;
    let mut next = base.join(location).map_err(|_| invalid())?;
    if !matches!(next.scheme(), "http" | "https") {
        return Err(format!("redirect to {location:?} not followed: only http and https are"));
    }
    next.set_fragment(None);
    next.as_str().parse().map_err(|_| invalid())
}

/// The method after a `status` redirect, as the Fetch standard (browsers, curl, reqwest) has
/// it: `POST` becomes `GET` after a 301 or 302, anything but `GET` and `HEAD` after a 303; a
/// 307 or 308 keeps it.
fn redirected_method(method: &Method, status: u16) -> Method {
    match status {
        301 | 302 if *method == Method::POST => Method::GET,
        303 if *method != Method::GET && *method != Method::HEAD => Method::GET,
        _ => method.clone(),
    }
}

/// Whether `a` and `b` have the same origin: scheme, host (any case) and port.
fn same_origin(a: &Uri, b: &Uri) -> bool {
    let ((a_https, a_host, a_port), (b_https, b_host, b_port)) = (target(a), target(b));
    a_https == b_https && a_port == b_port && a_host.eq_ignore_ascii_case(b_host)
}

/// The URL and method of the request sent: the probe's, or where a redirect led.
fn sent<'a>(probe: &'a Probe, redirected: Option<&'a Redirected>) -> (&'a Uri, &'a Method) {
    redirected.map_or((&probe.url, &probe.method), |r| (&r.url, &r.method))
}

/// Whether the request sent is a `HEAD`.
fn to_head(probe: &Probe, redirected: Option<&Redirected>) -> bool {
    *sent(probe, redirected).1 == Method::HEAD
}

fn set_phase(progress: &Mutex<Progress>, update: impl FnOnce(&mut Progress)) {
    if let Ok(mut p) = progress.lock() {
        update(&mut p);
    }
}

/// One request and its response: to the probe's own URL, or to where a redirect led.
async fn exchange(
    probe: &Probe,
    redirected: Option<&Redirected>,
    progress: &Mutex<Progress>,
) -> Result<Exchange, CheckFailure> {
    let (https, host, port) = target(sent(probe, redirected).0);

    set_phase(progress, |p| p.phase = "dns");
    let (addrs, dns) = net::resolve(host, port, probe.ip).await?;
    set_phase(progress, |p| {
        p.dns += dns.as_secs_f64();
        p.phase = "connect";
    });
    // The probe's own request was written when it was compiled.
    let built;
    let request = match &probe.request {
        Some(request) if redirected.is_none() => request.as_slice(),
        _ => {
            built = request_for(probe, redirected)?;
            built.as_slice()
        }
    };
    let connect_started = Instant::now();
    if https {
        let (tcp, address) = net::connect(&addrs).await?;
        set_phase(progress, |p| p.connect += connect_started.elapsed().as_secs_f64());
        // Boxed: the handshake and the TLS stream are large; inline, every plain HTTP check
        // in flight would carry their size.
        // Whether the request is a HEAD is found again here, not kept across the connect:
        // every check in flight would carry it.
        Box::pin(https_exchange(probe, to_head(probe, redirected), host, request, tcp, address, progress)).await
    } else {
        // The request goes out with the connection where it is up at once (loopback).
        let net::Sending { stream, address, written, sending } = net::connect_sending(&addrs, request).await?;
        set_phase(progress, |p| p.connect += (sending - connect_started).as_secs_f64());
        let to_head = to_head(probe, redirected);
        send_from(probe, to_head, &request[written..], sending, stream, address, progress).await
    }
}

async fn https_exchange(
    probe: &Probe,
    to_head: bool,
    host: &str,
    request: &[u8],
    tcp: tokio::net::TcpStream,
    address: std::net::SocketAddr,
    progress: &Mutex<Progress>,
) -> Result<Exchange, CheckFailure> {
    set_phase(progress, |p| p.phase = "tls");
    let tls_started = Instant::now();
    let config = net::client_config(&probe.tls, true)?;
    let name =
        probe.tls.server_name.clone().unwrap_or_else(|| host.trim_start_matches('[').trim_end_matches(']').to_string());
    let server_name = rustls::pki_types::ServerName::try_from(name.clone())
        .map_err(|_| CheckFailure::new(Reason::TlsHandshake, format!("invalid TLS server name {name:?}")))?;
    let stream = tokio_rustls::TlsConnector::from(config).connect(server_name, tcp).await.map_err(tls_failure)?;
    set_phase(progress, |p| p.tls += tls_started.elapsed().as_secs_f64());
    send_from(probe, to_head, request, Instant::now(), stream, address, progress).await
}

fn tls_failure(error: std::io::Error) -> CheckFailure {
    match error.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
        Some(e @ rustls::Error::InvalidCertificate(_)) => CheckFailure::new(
            Reason::TlsVerify,
            format!("TLS certificate not accepted: {}", crate::pki::describe_cert_error(e)),
        ),
        Some(e) => CheckFailure::new(Reason::TlsHandshake, format!("TLS handshake failed: {e}")),
        None => CheckFailure::new(Reason::TlsHandshake, format!("TLS handshake failed: {error}")),
    }
}

/// Whether `url` is HTTPS, its host and its port (the scheme's default unless given).
fn target(url: &Uri) -> (bool, &str, u16) {
    let https = url.scheme_str() == Some("https");
    (https, url.host().unwrap_or_default(), url.port_u16().unwrap_or(if https { 443 } else { 80 }))
}

/// Headers a redirect to another origin does not carry ([`Redirected::same_origin`]).
const CREDENTIALS: [HeaderName; 4] =
    [http::header::AUTHORIZATION, http::header::PROXY_AUTHORIZATION, http::header::COOKIE, http::header::HOST];

/// Headers that describe a body, left out when a redirect changed the method (and dropped it).
const BODY_HEADERS: [HeaderName; 6] = [
    http::header::CONTENT_TYPE,
    http::header::CONTENT_LENGTH,
    http::header::TRANSFER_ENCODING,
    http::header::CONTENT_ENCODING,
    http::header::CONTENT_LANGUAGE,
    http::header::CONTENT_LOCATION,
];

/// The request's bytes: the probe's URL, method, headers and body, `Host` unless given; after
/// a redirect, its URL and method, without the credentials on another origin and without the
/// body once the method changed.
fn request_for(probe: &Probe, redirected: Option<&Redirected>) -> Result<Vec<u8>, CheckFailure> {
    let (url, method) = sent(probe, redirected);
    let other_origin = redirected.is_some_and(|r| !r.same_origin);
    let body_dropped = *method != probe.method;
    let kept;
    let headers = if other_origin || body_dropped {
        let mut headers = probe.headers.clone();
        let dropped =
            other_origin.then_some(&CREDENTIALS[..]).into_iter().chain(body_dropped.then_some(&BODY_HEADERS[..]));
        for name in dropped.flatten() {
            headers.remove(name);
        }
        kept = headers;
        &kept
    } else {
        &probe.headers
    };
    let body = if body_dropped { &[][..] } else { &probe.body[..] };
    let (https, host, port) = target(url);
    let target = url.path_and_query().map_or("/", |p| p.as_str());
    // `http://host?query` has no path: the request target still starts with `/`.
    let rooted;
    let target = if target.starts_with('?') {
        rooted = format!("/{target}");
        &rooted
    } else {
        target
    };
    if headers.contains_key(http::header::HOST) {
        return Ok(http1::request(method, target, headers, None, body));
    }
    let default_port = if https { 443 } else { 80 };
    let with_port;
    let host_header = if port == default_port {
        host
    } else {
        with_port = format!("{host}:{port}");
        &with_port
    };
    if host_header.bytes().any(|b| b.is_ascii_control()) {
        return Err(CheckFailure::parameters("invalid host"));
    }
    Ok(http1::request(method, target, headers, Some(host_header), body))
}

/// Send what is left of a request (`request`; its sending began at `sent`; a `HEAD` if
/// `to_head`), and read the response.
async fn send_from<S>(
    probe: &Probe,
    to_head: bool,
    request: &[u8],
    sent: Instant,
    stream: S,
    address: std::net::SocketAddr,
    progress: &Mutex<Progress>,
) -> Result<Exchange, CheckFailure>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut connection = http1::Connection::new(stream);
    set_phase(progress, |p| p.phase = "ttfb");
    // A failed write is kept, not returned: a server may answer before it has read the whole
    // request and then stop reading (a 413 for a body too large, say), and that answer is
    // what the check reports, as curl does. Without an answer, the write's error. (An
    // `io::Error` is one word: every check in flight carries it across the read.)
    let unsent = if request.is_empty() { None } else { connection.send(request).await.err() };
    let head = match connection.head().await {
        Ok(head) => head,
        Err(failure) => return Err(unsent.map_or(failure, http1::sending_failure)),
    };
    set_phase(progress, |p| {
        p.ttfb += sent.elapsed().as_secs_f64();
        p.phase = "transfer";
    });
    let transfer_started = Instant::now();
    let body = connection.body(to_head, &head, probe.max_body).await?;
    set_phase(progress, |p| p.transfer += transfer_started.elapsed().as_secs_f64());
    Ok(Exchange { status: head.status, headers: head.headers, body, address })
}

/// A fetched response (the courier's scrape).
#[derive(Debug)]
pub struct Fetched {
    /// Status code.
    pub status: u16,
    /// Response headers.
    pub headers: http1::Headers,
    /// The body.
    pub body: Bytes,
    /// Seconds the fetch took.
    pub seconds: f64,
}

/// Fetch a URL with the HTTP check's machinery (timeouts, TLS options, auth, body
/// limit, redirects if asked). Fails as the HTTP check would, with its reason and message.
pub async fn fetch(params: HttpParams) -> Result<Fetched, CheckFailure> {
    let probe = params.compile().map_err(CheckFailure::parameters)?;
    let started = Instant::now();
    let progress = Mutex::new(Progress { phase: "dns", ..Progress::default() });
    match tokio::time::timeout(probe.timeout, follow(&probe, &progress)).await {
        Err(_) => {
            let phase = progress.lock().map(|p| p.phase).unwrap_or("fetch");
            Err(CheckFailure::new(
                Reason::Timeout,
                format!("timed out after {} s (during {phase})", plugin::trim_secs(probe.timeout.as_secs_f64())),
            ))
        }
        Ok(Err(failure)) => Err(failure),
        Ok(Ok((exchange, _, _))) => Ok(Fetched {
            status: exchange.status,
            headers: exchange.headers,
            body: exchange.body,
            seconds: started.elapsed().as_secs_f64(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// glibc serves allocations up to 1,032 bytes from a per-thread cache; a larger box
    /// took ten times the instructions to allocate and free, on every check.
    #[test]
    fn a_running_check_fits_the_allocators_per_thread_cache() {
        let check = json!({"name": "h", "extension": "http", "http": {"url": "http://127.0.0.1:8080/"}});
        let check = std::sync::Arc::new(check.as_object().cloned().unwrap());
        let running = Http::default().run(check, crate::checks::BuiltinContext { client_name: "c".into() });
        assert!(std::mem::size_of_val(&*running) <= 1032, "{} bytes", std::mem::size_of_val(&*running));
    }

    #[test]
    fn status_specs() {
        let default = StatusSpec::parse(&None).unwrap();
        assert!(default.accepts(200) && default.accepts(301) && !default.accepts(404));
        let spec = StatusSpec::parse(&Some(vec![json!(204), json!("4xx"), json!("500-502")])).unwrap();
        assert!(
            spec.accepts(204) && spec.accepts(404) && spec.accepts(501) && !spec.accepts(200) && !spec.accepts(503)
        );
        assert!(StatusSpec::parse(&Some(vec![json!("abc")])).is_err());
        assert!(StatusSpec::parse(&Some(vec![json!(700)])).is_err());
    }

    #[test]
    fn redirect_locations() {
        let base: Uri = "http://h:8080/a/b?x=1".parse().unwrap();
        let resolved = |location| resolve_location(&base, location).map(|u| u.to_string());
        for (location, expected) in [
            ("/c", "http://h:8080/c"),
            ("c?d", "http://h:8080/a/c?d"),
            ("https://o/x", "https://o/x"),
            // A query naming a URL is still a path on this server.
            ("/login?next=http://x/", "http://h:8080/login?next=http://x/"),
            ("//other/x", "http://other/x"),
            ("?q", "http://h:8080/a/b?q"),
            ("../up", "http://h:8080/up"),
            ("c#part", "http://h:8080/a/c"),
            ("HTTP://O:80/x", "http://o/x"),
        ] {
            assert_eq!(resolved(location).as_deref(), Ok(expected), "{location}");
        }
        assert_eq!(
            resolved("ftp://o/x"),
            Err(r#"redirect to "ftp://o/x" not followed: only http and https are"#.into())
        );
        assert!(resolved("http://[::1").unwrap_err().starts_with("invalid redirect location"));
    }

    #[test]
    fn a_redirect_changes_the_method_as_fetch_does() {
        let after = |method: Method, status| redirected_method(&method, status);
        assert_eq!(after(Method::POST, 301), Method::GET);
        assert_eq!(after(Method::POST, 302), Method::GET);
        assert_eq!(after(Method::PUT, 302), Method::PUT);
        assert_eq!(after(Method::PUT, 303), Method::GET);
        assert_eq!(after(Method::HEAD, 303), Method::HEAD);
        assert_eq!(after(Method::POST, 307), Method::POST);
        assert_eq!(after(Method::DELETE, 308), Method::DELETE);
    }

    #[test]
    fn a_redirect_elsewhere_leaves_credentials_and_a_changed_method_the_body() {
        let probe = HttpParams::deserialize(json!({
            "url": "http://h:8080/a", "method": "post", "body": "data", "user": "u", "password": "p",
            "headers": {"Cookie": "c=1", "Content-Type": "text/plain", "Host": "given", "X-Kept": "k"}
        }))
        .unwrap()
        .compile()
        .unwrap();
        let request = |url: &str, method: Method| {
            let url: Uri = url.parse().unwrap();
            let same_origin = same_origin(&url, &probe.url);
            let redirected = Redirected { url: url.clone(), method, same_origin };
            String::from_utf8(request_for(&probe, Some(&redirected)).unwrap()).unwrap().to_ascii_lowercase()
        };
        // The same origin (any case), the method kept (307): everything goes.
        let same = request("http://H:8080/b", Method::POST);
        for part in ["post /b ", "authorization: basic", "cookie: c=1", "host: given", "x-kept: k", "\r\n\r\ndata"] {
            assert!(same.contains(part), "{part} in {same:?}");
        }
        // Another port, scheme or host: no credentials, the URL's own host.
        for url in ["http://h:8081/b", "https://h:8080/b", "http://other:8080/b"] {
            let elsewhere = request(url, Method::POST);
            for gone in ["authorization", "cookie", "host: given"] {
                assert!(!elsewhere.contains(gone), "{gone} sent to {url}: {elsewhere:?}");
            }
            assert!(elsewhere.contains("x-kept: k") && elsewhere.ends_with("data"), "{elsewhere:?}");
        }
        // The method changed to GET: no body, nor the headers describing it.
        let get = request("http://h:8080/b", Method::GET);
        assert!(get.starts_with("get /b ") && get.ends_with("\r\n\r\n"), "{get:?}");
        assert!(!get.contains("content-type") && !get.contains("content-length"), "{get:?}");
        assert!(get.contains("authorization: basic"), "{get:?}");
    }

    #[test]
    fn a_probe_with_a_regex_is_not_kept_and_a_large_body_weighs() {
        let probe = |v: Value| HttpParams::deserialize(v).unwrap().compile().unwrap();
        let plain = probe(json!({"url": "http://x/"})).weight().unwrap();
        assert!((1024..2048).contains(&plain), "{plain}");
        let body = probe(json!({"url": "http://x/", "body": "b".repeat(100_000)})).weight().unwrap();
        assert!(body >= plain + 100_000, "{body}");
        assert_eq!(probe(json!({"url": "http://x/", "body_match": "ok"})).weight(), None);
        assert_eq!(probe(json!({"url": "http://x/", "headers_not_match": {"server": "x"}})).weight(), None);
    }

    #[test]
    fn a_negative_zero_threshold_is_compiled_as_zero() {
        // Equal parameters share one kept probe, and -0.0 == 0.0: both must print `0`.
        let probe = HttpParams::deserialize(json!({"url": "http://x/", "warning": -0.0, "critical": -0.0}))
            .unwrap()
            .compile()
            .unwrap();
        for limit in [probe.thresholds.warning, probe.thresholds.critical] {
            assert!(limit.unwrap().is_sign_positive());
        }
        assert_eq!(plugin::trim_secs(probe.thresholds.warning.unwrap()), "0");
    }

    #[test]
    fn bad_parameters_are_named() {
        let bad = |v: Value| {
            HttpParams::deserialize(v).map_err(|e| e.to_string()).and_then(HttpParams::compile).err().unwrap()
        };
        assert!(bad(json!({})).contains("missing field `url`"));
        assert!(bad(json!({"url": "ftp://x"})).contains("must start with http:// or https://"));
        assert!(bad(json!({"url": "http://x", "body_match": "("})).contains("body_match is not a valid regex"));
        assert!(bad(json!({"url": "http://x", "nope": 1})).contains("unknown field `nope`"));
        assert!(bad(json!({"url": "http://x", "timeout": 0})).contains("timeout must be a positive"));
        assert!(
            bad(json!({"url": "http://x", "timeout": 1e20})).contains("timeout 100000000000000000000 is too large")
        );
        let te = json!({"url": "http://x", "headers": {"Transfer-Encoding": "gzip"}});
        assert!(bad(te).contains("transfer-encoding must end with chunked"));
    }
}
