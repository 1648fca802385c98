//! sensu-plugins-http's `check-http.rb`, in-process: the same options, the same first line
//! (`CheckHttp OK: 200, 1234 bytes`) and exit status for every case the plugin tells apart.
//!
//! Read from `bin/check-http.rb` (6.x). What the script leaves to Ruby is Ruby 2.4's, the
//! version sensu-client 1.x embeds: one request, no redirects followed; `-t` (default 15)
//! bounds the whole request (`Request timed out`), `--open-timeout` the connection and TLS
//! (`Request timed out opening connection`), `--read-timeout` each wait for data (`Request
//! timed out reading data`), each only when shorter than what is left of `-t`; a name is
//! resolved to its first address (IPv4 first), which alone is tried, as `resolv-replace`
//! does; connection errors read `Request error: Failed to open TCP connection to h:p (…)`.
//! Patterns are Ruby regexes: `^`/`$` match at line ends; one the `regex` crate reads
//! differently (inline `(?m)`, `(?s)`, `(?x)`) or cannot read is not run natively.

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use sha2::Digest as _;
use tokio::time::Instant;

use super::Parsed;
use super::options::{self, Opt, switch, value};
use super::ruby_cli::{RubyRegex, Status, say};
use crate::checks::net::{self, CheckTls};

const CLASS: &str = "CheckHttp";

/// Most bytes of a body read; a larger one fails the check (the plugin has no limit).
pub const MAX_BODY: usize = 32 * 1024 * 1024;

const OPTIONS: &[Opt] = &[
    value("ua", Some('x'), Some("user-agent")),
    value("url", Some('u'), Some("url")),
    value("host", Some('h'), Some("hostname")),
    value("port", Some('P'), Some("port")),
    value("request_uri", Some('p'), Some("request-uri")),
    value("method", Some('m'), Some("method")),
    value("header", Some('H'), Some("header")),
    value("headerfile", None, Some("headerfile")),
    value("body", Some('d'), Some("body")),
    switch("ssl", Some('s'), None),
    switch("insecure", Some('k'), None),
    value("user", Some('U'), Some("username")),
    value("password", Some('a'), Some("password")),
    value("cert", Some('c'), Some("cert")),
    value("cacert", Some('C'), Some("cacert")),
    value("expiry", Some('e'), Some("expiry")),
    value("pattern", Some('q'), Some("query")),
    value("negpattern", Some('n'), Some("negquery")),
    value("sha256checksum", Some('S'), Some("checksum")),
    value("timeout", Some('t'), Some("timeout")),
    value("open_timeout", None, Some("open-timeout")),
    value("read_timeout", None, Some("read-timeout")),
    value("dns_timeout", None, Some("dns-timeout")),
    switch("redirectok", Some('r'), None),
    value("redirectto", Some('R'), Some("redirect-to")),
    switch("whole_response", Some('w'), Some("whole-response")),
    value("response_bytes", Some('b'), Some("response-bytes")),
    value("require_bytes", Some('B'), Some("require-bytes")),
    value("min_bytes", Some('g'), Some("min-bytes")),
    value("response_code", None, Some("response-code")),
    value("proxy_url", None, Some("proxy-url")),
    switch("no_proxy", None, Some("noproxy")),
    switch("aws_v4", None, Some("aws-v4")),
    value("aws_v4_region", None, Some("aws-v4-region")),
    value("aws_v4_service", None, Some("aws-v4-service")),
];

/// Options the native path does not run (the real plugin does, if installed).
const NOT_NATIVE: &[(&str, &str)] =
    &[("headerfile", "--headerfile"), ("cert", "--cert"), ("proxy_url", "--proxy-url"), ("aws_v4", "--aws-v4")];

/// What the plugin was asked.
#[derive(Debug, Clone, PartialEq)]
pub struct Args {
    host: String,
    port: u16,
    ssl: bool,
    request_uri: String,
    method: Method,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Option<String>,
    tls: CheckTls,
    pattern: Option<RubyRegex>,
    negpattern: Option<RubyRegex>,
    sha256: Option<String>,
    timeout: Option<Duration>,
    open_timeout: Option<Duration>,
    read_timeout: Duration,
    redirectok: bool,
    redirectto: Option<String>,
    whole_response: bool,
    response_bytes: Option<usize>,
    require_bytes: Option<i64>,
    /// `-e`: warn when a certificate of the verified chain ends within this many days.
    expiry: Option<i64>,
    min_bytes: Option<i64>,
    response_code: Option<RubyRegex>,
}

/// Parse `check-http.rb`'s arguments.
pub fn parse(argv: &[String]) -> Parsed<Args> {
    match parse_given(argv) {
        Ok(args) => Parsed::Run(args),
        Err(why) => Parsed::Unsupported(why),
    }
}

fn parse_given(argv: &[String]) -> Result<Args, String> {
    let given = options::parse(OPTIONS, argv)?;
    if let Some((_, flag)) = NOT_NATIVE.iter().find(|(key, _)| given.has(key)) {
        return Err(format!("option {flag} is not supported natively"));
    }
    let method_text = given.or("method", "GET");
    let method = match method_text {
        "GET" => Method::GET,
        "HEAD" => Method::HEAD,
        "POST" => Method::POST,
        "PUT" => Method::PUT,
        other => return Err(format!("method {other:?} is not one of GET, HEAD, POST, PUT")),
    };
    let (host, port, request_uri, ssl) = match given.get("url") {
        Some(url) => {
            let uri: Uri = url.parse().map_err(|_| format!("url {url:?} is not one the native path reads"))?;
            let ssl = match uri.scheme_str() {
                Some("https") => true,
                Some("http") => false,
                _ => return Err(format!("url {url:?} is not http:// or https://")),
            };
            let host = uri.host().filter(|h| !h.is_empty()).ok_or(format!("url {url:?} has no host"))?;
            let port = uri.port_u16().unwrap_or(if ssl { 443 } else { 80 });
            // `URI#request_uri`: the path (`/` when empty) and the query.
            let request_uri = format!(
                "{}{}",
                if uri.path().is_empty() { "/" } else { uri.path() },
                uri.query().map(|q| format!("?{q}")).unwrap_or_default()
            );
            (host.to_string(), port, request_uri, ssl)
        }
        None => {
            let ssl = given.has("ssl");
            // The plugin answers `UNKNOWN: No URL specified` itself: an empty host says so below.
            let host = given.get("host").unwrap_or_default().to_string();
            let request_uri = given.get("request_uri").unwrap_or_default().to_string();
            let port = match given.int("port") {
                Some(p @ 1..=65535) => p as u16,
                None => {
                    if ssl {
                        443
                    } else {
                        80
                    }
                }
                Some(p) => return Err(format!("port {p} is not one the native path runs")),
            };
            if !request_uri.is_empty() && !request_uri.starts_with('/') {
                return Err(format!("request uri {request_uri:?} is not one the native path runs"));
            }
            (host, port, request_uri, ssl)
        }
    };
    if !given.has("no_proxy")
        && ["http_proxy", "HTTP_PROXY"].iter().any(|v| std::env::var(v).is_ok_and(|p| !p.is_empty()))
    {
        return Err("http_proxy is set: proxies are not supported natively".into());
    }
    let mut headers = Vec::new();
    let mut header = |name: &str, value: &str| -> Result<(), String> {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("header name {name:?} is invalid"))?;
        let value = HeaderValue::from_str(value).map_err(|_| format!("header {name} has an invalid value"))?;
        headers.retain(|(n, _)| *n != name);
        headers.push((name, value));
        Ok(())
    };
    header("user-agent", given.or("ua", "Sensu-HTTP-Check"))?;
    if given.has("user") || given.has("password") {
        let credentials = format!("{}:{}", given.or("user", ""), given.or("password", ""));
        let token = base64::engine::general_purpose::STANDARD.encode(credentials);
        header("authorization", &format!("Basic {token}"))?;
    }
    if let Some(list) = given.get("header") {
        for item in list.split(',') {
            let Some((name, value)) = item.split_once(':') else {
                return Err(format!("header {item:?} has no ':' (the plugin fails on it)"));
            };
            header(name.trim(), value.trim())?;
        }
    }
    let regex = |option: &str, key: &str| {
        given.get(key).map(|p| RubyRegex::new(p).map_err(|why| format!("{option} {why}"))).transpose()
    };
    let pattern = regex("--query", "pattern")?;
    let negpattern = regex("--negquery", "negpattern")?;
    let response_code = regex("--response-code", "response_code")?;
    let seconds = |key: &str, default: i64| -> Result<Option<Duration>, String> {
        match given.int(key).unwrap_or(default) {
            0 => Ok(None),
            n if n > 0 && n <= 31_536_000 => Ok(Some(Duration::from_secs(n as u64))),
            n if n > 0 => Err(format!("{key} {n} is longer than the native path runs (a year)")),
            n => Err(format!("{key} {n} is not one the native path runs")),
        }
    };
    let read_timeout = seconds("read_timeout", 15)?.ok_or("read_timeout 0 is not one the native path runs")?;
    let response_bytes = match given.int("response_bytes") {
        Some(n) if n >= 0 => Some(n as usize),
        Some(n) => return Err(format!("--response-bytes {n} is not one the native path runs")),
        None => None,
    };
    // With HEAD the plugin's `res.body` is nil: these options fail inside the plugin itself.
    let reads_body = ["pattern", "negpattern", "sha256checksum", "require_bytes", "min_bytes", "response_bytes"]
        .iter()
        .any(|k| given.has(k));
    if method == Method::HEAD && reads_body {
        return Err("HEAD with a body option fails in the plugin itself".into());
    }
    // A CA file the plugin trusts alone; a device or a pipe is not read natively.
    if let Some(ca) = given.get("cacert")
        && !super::small_file(ca)
    {
        return Err(format!("--cacert {ca}: not a regular file of at most 1 MiB"));
    }
    Ok(Args {
        host,
        port,
        ssl,
        request_uri,
        method,
        headers,
        body: given.get("body").map(str::to_string),
        tls: CheckTls {
            insecure: given.has("insecure"),
            ca_file: given.get("cacert").map(str::to_string),
            ..CheckTls::default()
        },
        pattern,
        negpattern,
        sha256: given.get("sha256checksum").map(str::to_string),
        timeout: seconds("timeout", 15)?,
        open_timeout: seconds("open_timeout", 15)?,
        read_timeout,
        redirectok: given.has("redirectok"),
        redirectto: given.get("redirectto").map(str::to_string),
        whole_response: given.has("whole_response"),
        response_bytes,
        require_bytes: given.int("require_bytes"),
        expiry: given.int("expiry"),
        min_bytes: given.int("min_bytes"),
        response_code,
    })
}

/// Why the request did not complete, as the plugin reports it.
enum Failed {
    /// `Request timed out opening connection`.
    Open,
    /// `Request timed out reading data`.
    Read,
    /// `Request error: …`.
    Error(String),
}

/// A response: status code, `Location`, body.
struct Response {
    code: u16,
    location: Option<String>,
    body: Bytes,
    /// With `-e`: the `notAfter` of the certificate the plugin's verify callback saw last
    /// among those ending within the days (Unix seconds).
    expiring: Option<i64>,
}

/// What the run printed and its exit status.
pub async fn run(args: &Args) -> (String, i32) {
    if args.host.is_empty() || args.request_uri.is_empty() {
        return say(CLASS, Status::Unknown, "No URL specified");
    }
    let deadline = args.timeout.map(|t| Instant::now() + t);
    let request = request(args, deadline);
    let outcome = match args.timeout {
        Some(limit) => tokio::time::timeout(limit, request).await,
        None => Ok(request.await),
    };
    match outcome {
        Err(_) => say(CLASS, Status::Critical, "Request timed out"),
        Ok(Err(Failed::Open)) => say(CLASS, Status::Critical, "Request timed out opening connection"),
        Ok(Err(Failed::Read)) => say(CLASS, Status::Critical, "Request timed out reading data"),
        Ok(Err(Failed::Error(message))) => say(CLASS, Status::Critical, &format!("Request error: {message}")),
        Ok(Ok(response)) => judge(args, &response),
    }
}

/// A phase limit that applies only when it ends before the whole request's.
fn phase_limit(limit: Option<Duration>, deadline: Option<Instant>) -> Option<Duration> {
    let limit = limit?;
    match deadline {
        Some(deadline) if Instant::now() + limit >= deadline => None,
        _ => Some(limit),
    }
}

async fn within<F: std::future::Future>(limit: Option<Duration>, f: F) -> Option<F::Output> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, f).await.ok(),
        None => Some(f.await),
    }
}

async fn request(args: &Args, deadline: Option<Instant>) -> Result<Response, Failed> {
    let open = phase_limit(args.open_timeout, deadline);
    let connected = within(open, connect(args)).await.ok_or(Failed::Open)?;
    let stream = connected?;
    let default_port = if args.ssl { 443 } else { 80 };
    let authority = if args.port == default_port { args.host.clone() } else { format!("{}:{}", args.host, args.port) };
    let mut builder = Request::builder()
        .method(args.method.clone())
        .uri(&args.request_uri)
        .header(http::header::HOST, authority)
        .header(http::header::ACCEPT, "*/*");
    for (name, value) in &args.headers {
        builder = builder.header(name, value);
    }
    if args.body.is_some() && !args.headers.iter().any(|(n, _)| n == http::header::CONTENT_TYPE) {
        builder = builder.header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    let body = Full::new(Bytes::from(args.body.clone().unwrap_or_default()));
    let request = builder.body(body).map_err(|e| Failed::Error(e.to_string()))?;
    let read = |deadline| phase_limit(Some(args.read_timeout), deadline);
    let response = match stream {
        Stream::Plain(tcp) => exchange(tcp, request, || read(deadline), args.method == Method::HEAD).await,
        Stream::Tls(tls) => {
            let expiring = match args.expiry {
                Some(days) => expiring(args, tls.get_ref().1.peer_certificates().unwrap_or_default(), days).await,
                None => None,
            };
            exchange(*tls, request, || read(deadline), args.method == Method::HEAD)
                .await
                .map(|response| Response { expiring, ..response })
        }
    }?;
    Ok(response)
}

enum Stream {
    Plain(tokio::net::TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>),
}

/// Resolve (the first address, IPv4 first), connect, and set up TLS, as the plugin's Ruby does.
async fn connect(args: &Args) -> Result<Stream, Failed> {
    let opening =
        |why: String| Failed::Error(format!("Failed to open TCP connection to {}:{} ({why})", args.host, args.port));
    let mut addrs: Vec<std::net::SocketAddr> =
        match tokio::net::lookup_host((args.host.trim_matches(['[', ']']), args.port)).await {
            Ok(addrs) => addrs.collect(),
            Err(_) => Vec::new(),
        };
    addrs.sort_by_key(|a| !a.is_ipv4());
    let Some(addr) = addrs.first() else {
        return Err(opening(format!("no address for {}", args.host)));
    };
    let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|error| {
        opening(format!("{} - connect(2) for \"{}\" port {}", super::strerror(&error), addr.ip(), args.port))
    })?;
    let _ = tcp.set_nodelay(true);
    if !args.ssl {
        return Ok(Stream::Plain(tcp));
    }
    let config = match &args.tls.ca_file {
        // Net::HTTP with `ca_file` trusts that file alone (OpenSSL's default store is not added).
        Some(ca) if !args.tls.insecure => ca_only_config(ca).await.map_err(Failed::Error)?,
        _ => net::client_config(&args.tls, true).map_err(|f| Failed::Error(f.message))?,
    };
    let name = args.host.trim_matches(['[', ']']).to_string();
    let server_name = rustls::pki_types::ServerName::try_from(name.clone())
        .map_err(|_| Failed::Error(format!("hostname {name:?} is not a TLS server name")))?;
    match tokio_rustls::TlsConnector::from(config).connect(server_name, tcp).await {
        Ok(tls) => Ok(Stream::Tls(Box::new(tls))),
        Err(error) => Err(Failed::Error(ssl_error(&error, &name))),
    }
}

/// What `-e` finds: the chain OpenSSL builds from the presented certificates and its store
/// (the `-C` file, else the system's), leaf first; the verify callback sees it from the top
/// down and keeps the last certificate ending by now + `days`, so the lowest one wins.
async fn expiring(args: &Args, presented: &[rustls::pki_types::CertificateDer<'_>], days: i64) -> Option<i64> {
    use x509_parser::prelude::{FromDer as _, X509Certificate};
    let store: Vec<Vec<u8>> = match &args.tls.ca_file {
        Some(ca) => super::read_small_file(ca)
            .await
            .ok()
            .and_then(|pem| crate::pki::certs_from_pem(&pem).ok())
            .map(|certs| certs.iter().map(|c| c.to_vec()).collect())
            .unwrap_or_default(),
        None => crate::pki::system_root_certs().iter().map(|c| c.to_vec()).collect(),
    };
    let presented: Vec<Vec<u8>> = presented.iter().map(|c| c.to_vec()).collect();
    fn parse(der: &[u8]) -> Option<X509Certificate<'_>> {
        X509Certificate::from_der(der).ok().map(|(_, cert)| cert)
    }
    let now = chrono::Utc::now().timestamp();
    let warn_date = (now as i128).saturating_add(i128::from(days) * 86_400);
    let valid_now = |cert: &X509Certificate<'_>| {
        cert.validity().not_before.timestamp() <= now && now <= cert.validity().not_after.timestamp()
    };
    // The chain as OpenSSL builds it, leaf first: each issuer looked up in the store first, a
    // certificate valid now over one that is not; whether it ends in the store (trusted).
    let mut chain = Vec::new();
    let mut trusted = false;
    let mut current = presented.first().and_then(|der| parse(der))?;
    for _ in 0..10 {
        chain.push(current.validity().not_after.timestamp());
        if current.subject().as_raw() == current.issuer().as_raw() {
            break;
        }
        let issuer = current.issuer().as_raw().to_vec();
        let in_store =
            || store.iter().filter_map(|der| parse(der)).filter(|c| c.subject().as_raw() == issuer.as_slice());
        let sent = || {
            presented.iter().skip(1).filter_map(|der| parse(der)).filter(|c| c.subject().as_raw() == issuer.as_slice())
        };
        if let Some(anchor) = in_store().find(valid_now).or_else(|| in_store().next()) {
            chain.push(anchor.validity().not_after.timestamp());
            trusted = true;
            break;
        }
        match sent().find(valid_now).or_else(|| sent().next()) {
            Some(next) => current = next,
            None => break,
        }
    }
    // The callback sees the chain from the top down and keeps the last certificate ending by
    // the date; an untrusted chain (only with -k) stops the walk at its top certificate.
    let seen = if trusted { &chain[..] } else { &chain[chain.len() - 1..] };
    seen.iter().copied().find(|&not_after| i128::from(not_after) <= warn_date)
}

/// A TLS client trusting only the certificates of the PEM file `ca`.
async fn ca_only_config(ca: &str) -> Result<std::sync::Arc<rustls::ClientConfig>, String> {
    let pem = super::read_small_file(ca).await?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in crate::pki::certs_from_pem(&pem)? {
        roots.add(cert).map_err(|e| e.to_string())?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(crate::pki::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(std::sync::Arc::new(config))
}

/// OpenSSL's words (Ruby 2.4, OpenSSL 1.0.2) for a failed handshake.
fn ssl_error(error: &std::io::Error, host: &str) -> String {
    use rustls::CertificateError as C;
    match error.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. })) => {
            format!("hostname \"{host}\" does not match the server certificate")
        }
        Some(rustls::Error::InvalidCertificate(_)) => {
            "SSL_connect returned=1 errno=0 state=error: certificate verify failed".into()
        }
        Some(other) => format!("SSL_connect returned=1 errno=0 state=error: {other}"),
        None => format!("SSL_connect SYSCALL returned=5 errno=0 state=unknown state: {error}"),
    }
}

/// One HTTP/1.1 exchange on `stream`, each wait for data bounded by `read()`.
async fn exchange<S>(
    stream: S,
    request: Request<Full<Bytes>>,
    read: impl Fn() -> Option<Duration>,
    head: bool,
) -> Result<Response, Failed>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| Failed::Error(e.to_string()))?;
    let driver = tokio::spawn(connection);
    let outcome = async {
        let response = within(read(), sender.send_request(request)).await.ok_or(Failed::Read)?.map_err(|e| {
            Failed::Error(if e.is_incomplete_message() { "end of file reached".into() } else { e.to_string() })
        })?;
        let code = response.status().as_u16();
        let location = response.headers().get(http::header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string);
        let mut body = response.into_body();
        let mut collected = Vec::new();
        if !head {
            loop {
                let Some(frame) = within(read(), body.frame()).await.ok_or(Failed::Read)? else { break };
                let frame = frame.map_err(|_| Failed::Error("end of file reached".into()))?;
                if let Some(data) = frame.data_ref() {
                    if collected.len() + data.len() > MAX_BODY {
                        return Err(Failed::Error(format!(
                            "response body larger than {MAX_BODY} bytes (Concierge's limit)"
                        )));
                    }
                    collected.extend_from_slice(data);
                }
            }
        }
        Ok(Response { code, location, body: Bytes::from(collected), expiring: None })
    }
    .await;
    driver.abort();
    outcome
}

/// The plugin's verdict on a response (`acquire_resource`'s end and `handle_response`).
fn judge(args: &Args, res: &Response) -> (String, i32) {
    let len = res.body.len();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    let body = if args.whole_response {
        format!("\n{}", text(&res.body))
    } else if let Some(n) = args.response_bytes {
        format!("\n{}", text(&res.body[..len.min(n.saturating_add(1))]))
    } else {
        String::new()
    };
    let critical = |message: String| say(CLASS, Status::Critical, &message);
    let ok = |message: String| say(CLASS, Status::Ok, &message);
    if let Some(want) = args.require_bytes
        && len as i64 != want
    {
        return critical(format!("Response was {len} bytes instead of {want}{body}"));
    }
    if let Some(min) = args.min_bytes
        && (len as i64) < min
    {
        return critical(format!("Response was {len} bytes instead of the indicated minimum {min}{body}"));
    }
    if let Some(not_after) = res.expiring {
        let when = super::peer_cert::ruby_time(not_after);
        return say(CLASS, Status::Warning, &format!("Certificate will expire {when}"));
    }
    let code = res.code.to_string();
    let first200 = || text(&res.body[..len.min(200)]);
    let wants_code = args.response_code.is_some();
    match code.as_bytes()[0] {
        b'2' => {
            if let Some(to) = &args.redirectto {
                return critical(format!("Expected redirect to {to} but got {code}{body}"));
            } else if let Some(re) = &args.pattern {
                let shown = re.as_str();
                return if re.is_match(&res.body) {
                    ok(format!("{code}, found /{shown}/ in {len} bytes{body}"))
                } else {
                    critical(format!("{code}, did not find /{shown}/ in {len} bytes: {}...", first200()))
                };
            } else if let Some(re) = &args.negpattern {
                let shown = re.as_str();
                return if re.is_match(&res.body) {
                    critical(format!("{code}, found /{shown}/ in {len} bytes: {}...", first200()))
                } else {
                    ok(format!("{code}, did not find /{shown}/ in {len} bytes{body}"))
                };
            } else if let Some(sum) = &args.sha256 {
                let digest: String = sha2::Sha256::digest(&res.body).iter().map(|b| format!("{b:02x}")).collect();
                return if &digest == sum {
                    ok(format!("{code}, checksum match {sum} in {len} bytes{body}"))
                } else {
                    critical(format!("{code}, checksum did not match {sum} in {len} bytes: {}...", first200()))
                };
            } else if !wants_code {
                return ok(format!("{code}, {len} bytes{body}"));
            }
        }
        b'3' => {
            if args.redirectok {
                if !wants_code {
                    return ok(format!("{code}, {len} bytes{body}"));
                }
            } else if let Some(to) = &args.redirectto {
                let location = res.location.as_deref().unwrap_or_default();
                return if to == location {
                    ok(format!("{code} found redirect to {location}{body}"))
                } else {
                    critical(format!("Expected redirect to {to} instead redirected to {location}{body}"))
                };
            } else {
                return say(CLASS, Status::Warning, &format!("{code}{body}"));
            }
        }
        b'4' | b'5' => {
            if !wants_code {
                return critical(format!("{code}{body}"));
            }
        }
        _ => {
            if !wants_code {
                return say(CLASS, Status::Warning, &format!("{code}{body}"));
            }
        }
    }
    match &args.response_code {
        Some(re) if re.is_match(code.as_bytes()) => ok(format!("{code}, {len} bytes{body}")),
        _ => critical(format!("{code}{body}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Parsed<Args> {
        parse(&crate::checks::native::words::split(line).unwrap())
    }

    #[test]
    fn options_parse_as_the_plugin_reads_them() {
        let Parsed::Run(a) = args("-u https://h:8443/a?b=1 -k -t 5 --read-timeout 2 -q 'ok$' --response-code '^2'")
        else {
            panic!()
        };
        assert_eq!((a.host.as_str(), a.port, a.ssl, a.request_uri.as_str()), ("h", 8443, true, "/a?b=1"));
        assert!(a.tls.insecure);
        assert_eq!((a.timeout, a.read_timeout), (Some(Duration::from_secs(5)), Duration::from_secs(2)));
        let Parsed::Run(a) = args("-h 127.0.0.1 -p /x -s -P 8443 -H 'A: 1, B:2' -U u -a p -m POST -d x") else {
            panic!()
        };
        assert_eq!((a.host.as_str(), a.port, a.ssl, a.method), ("127.0.0.1", 8443, true, Method::POST));
        let names: Vec<&str> = a.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["user-agent", "authorization", "a", "b"]);
        assert_eq!(a.headers[1].1, "Basic dTpw");
        let Parsed::Run(a) = args("-u http://h?x=1") else { panic!() };
        assert_eq!(a.request_uri, "/?x=1");
        let Parsed::Run(a) = args("-h 127.0.0.1") else { panic!() };
        assert!(a.request_uri.is_empty(), "the plugin's own UNKNOWN");
        for (line, why) in [
            ("-u http://h/ --headerfile f", "option --headerfile"),
            ("-u ftp://h/", "not http:// or https://"),
            ("-u http://h/ -m DELETE", "method \"DELETE\""),
            ("-u http://h/ -H NoColon", "has no ':'"),
            ("-u http://h/ -q '(?s)a.b'", "read differently"),
            ("-u http://h/ -q 'a\\1'", "not a regex the native path reads"),
            ("-u http://h/ -q 'é'", "read differently"),
            ("-u http://h/ -m HEAD -q x", "HEAD with a body option"),
            ("-u http://h/ --frob", "invalid option: --frob"),
            ("-u", "missing argument: -u"),
            ("-u http://h/ -t 9999999999999999999", "longer than the native path runs"),
            ("-u https://h/ -C /dev/zero", "not a regular file"),
        ] {
            match args(line) {
                Parsed::Unsupported(got) => assert!(got.contains(why), "{line}: {got}"),
                Parsed::Run(a) => panic!("{line}: {a:?}"),
            }
        }
    }

    fn response(code: u16, location: Option<&str>, body: &str) -> Response {
        Response { code, location: location.map(str::to_string), body: Bytes::from(body.to_string()), expiring: None }
    }

    #[test]
    fn verdicts_follow_handle_response() {
        let judge_with = |line: &str, res: &Response| {
            let Parsed::Run(a) = args(&format!("-u http://h/ {line}")) else { panic!("{line}") };
            judge(&a, res)
        };
        let ok = response(200, None, "hello world");
        let cases = [
            ("", &ok, "CheckHttp OK: 200, 11 bytes", 0),
            ("-q wor", &ok, "CheckHttp OK: 200, found /wor/ in 11 bytes", 0),
            ("-q nope", &ok, "CheckHttp CRITICAL: 200, did not find /nope/ in 11 bytes: hello world...", 2),
            ("-n wor", &ok, "CheckHttp CRITICAL: 200, found /wor/ in 11 bytes: hello world...", 2),
            ("-B 3", &ok, "CheckHttp CRITICAL: Response was 11 bytes instead of 3", 2),
            (
                "-g 20 -w",
                &ok,
                "CheckHttp CRITICAL: Response was 11 bytes instead of the indicated minimum 20\nhello world",
                2,
            ),
            ("-b 3", &ok, "CheckHttp OK: 200, 11 bytes\nhell", 0),
            ("--response-code 201", &ok, "CheckHttp CRITICAL: 200", 2),
            ("-R /x", &ok, "CheckHttp CRITICAL: Expected redirect to /x but got 200", 2),
        ];
        for (line, res, text, status) in cases {
            assert_eq!(judge_with(line, res), (format!("{text}\n"), status), "{line}");
        }
        let moved = response(301, Some("/new"), "");
        assert_eq!(judge_with("", &moved).1, 1);
        assert_eq!(judge_with("-r", &moved).0, "CheckHttp OK: 301, 0 bytes\n");
        assert_eq!(judge_with("-R /new", &moved).0, "CheckHttp OK: 301 found redirect to /new\n");
        assert_eq!(
            judge_with("-R /old", &moved),
            ("CheckHttp CRITICAL: Expected redirect to /old instead redirected to /new\n".into(), 2)
        );
        assert_eq!(judge_with("-r --response-code 30", &moved), ("CheckHttp OK: 301, 0 bytes\n".into(), 0));
        let missing = response(404, None, "no");
        assert_eq!(judge_with("", &missing), ("CheckHttp CRITICAL: 404\n".into(), 2));
        assert_eq!(judge_with("--response-code 404", &missing), ("CheckHttp OK: 404, 2 bytes\n".into(), 0));
        assert_eq!(judge_with("", &response(101, None, "")), ("CheckHttp WARNING: 101\n".into(), 1));
    }
}
