//! sensu-plugins-http's `metrics-curl.rb`, in-process: one GET timed as `curl -w` times it,
//! printed as the plugin prints it (Graphite lines `<scheme>.time_total 0.001234 <now>`,
//! scheme `<hostname>.curl_timings` by default), exit 0, or 1 when curl would have failed.
//!
//! Read from `bin/metrics-curl.rb` (6.x) and curl 7.x's `-w` variables: `time_namelookup`,
//! `time_connect`, `time_pretransfer` (after TLS), `time_starttransfer` (the first response
//! byte) and `time_total` are seconds from the start with six decimals; `time_redirect` is 0
//! (curl follows no redirect unless told); `http_code` is `000` when there was no response.
//! curl verifies TLS certificates; extra curl arguments (`-a`) other than `-k`/`--insecure`
//! are not run natively.

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::time::Instant;

use super::Parsed;
use super::options::{self, Opt, value};
use crate::checks::net::{self, CheckTls};

const OPTIONS: &[Opt] = &[
    value("url", Some('u'), Some("url")),
    value("curl_args", Some('a'), Some("curl_args")),
    value("scheme", Some('s'), Some("scheme")),
];

/// What the plugin was asked.
#[derive(Debug, Clone, PartialEq)]
pub struct Args {
    url: String,
    host: String,
    port: u16,
    https: bool,
    path: String,
    insecure: bool,
    scheme: String,
}

/// Parse `metrics-curl.rb`'s arguments.
pub fn parse(argv: &[String]) -> Parsed<Args> {
    let given = match options::parse(OPTIONS, argv) {
        Ok(given) => given,
        Err(why) => return Parsed::Unsupported(why),
    };
    let insecure = match given.or("curl_args", "").trim() {
        "" => false,
        "-k" | "--insecure" => true,
        other => return Parsed::Unsupported(format!("curl arguments {other:?} are not run natively")),
    };
    let url = given.or("url", "http://127.0.0.1:80/").to_string();
    // The plugin hands the URL to the shell unquoted: anything the shell would read is its.
    if url.chars().any(|c| c.is_whitespace() || "&;|<>$`'\"(){}*?[]\\".contains(c)) {
        return Parsed::Unsupported(format!("url {url:?} is read by the shell in the plugin"));
    }
    let Ok(uri) = url.parse::<http::Uri>() else {
        return Parsed::Unsupported(format!("url {url:?} is not one the native path reads"));
    };
    let https = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Parsed::Unsupported(format!("url {url:?} is not http:// or https://")),
    };
    let Some(host) = uri.host().filter(|h| !h.is_empty()) else {
        return Parsed::Unsupported(format!("url {url:?} has no host"));
    };
    Parsed::Run(Args {
        host: host.trim_start_matches('[').trim_end_matches(']').to_string(),
        port: uri.port_u16().unwrap_or(if https { 443 } else { 80 }),
        https,
        path: format!(
            "{}{}",
            if uri.path().is_empty() { "/" } else { uri.path() },
            uri.query().map(|q| format!("?{q}")).unwrap_or_default()
        ),
        insecure,
        scheme: given.get("scheme").map_or_else(|| format!("{}.curl_timings", super::hostname()), str::to_string),
        url,
    })
}

/// curl's `-w` figures, seconds from the start.
#[derive(Default)]
struct Times {
    namelookup: f64,
    connect: f64,
    pretransfer: f64,
    starttransfer: f64,
    code: u16,
}

/// What the run printed and its exit status.
pub async fn run(args: &Args) -> (String, i32) {
    let started = Instant::now();
    let mut times = Times::default();
    let ok = transfer(args, started, &mut times).await.is_ok();
    let total = started.elapsed().as_secs_f64();
    let now = chrono::Utc::now().timestamp();
    let code = if times.code == 0 { "000".to_string() } else { format!("{:03}", times.code) };
    let figures = [
        ("time_total", format!("{total:.6}")),
        ("time_namelookup", format!("{:.6}", times.namelookup)),
        ("time_connect", format!("{:.6}", times.connect)),
        ("time_pretransfer", format!("{:.6}", times.pretransfer)),
        ("time_redirect", format!("{:.6}", 0.0)),
        ("time_starttransfer", format!("{:.6}", times.starttransfer)),
        ("http_code", code),
    ];
    let text: String = figures.iter().map(|(name, value)| format!("{}.{name} {value} {now}\n", args.scheme)).collect();
    (text, if ok { 0 } else { 1 })
}

async fn transfer(args: &Args, started: Instant, times: &mut Times) -> Result<(), ()> {
    // curl resolves, then connects: the lookup's own time is its `time_namelookup`.
    let addrs = super::resolve(&args.host, args.port, None).await.map_err(|_| ())?;
    times.namelookup = started.elapsed().as_secs_f64();
    let tcp = super::connect_to(&addrs).await.map_err(|_| ())?;
    times.connect = started.elapsed().as_secs_f64();
    let default_port = if args.https { 443 } else { 80 };
    let authority = if args.port == default_port { args.host.clone() } else { format!("{}:{}", args.host, args.port) };
    let request = Request::get(&args.path)
        .header(http::header::HOST, authority)
        .header(http::header::USER_AGENT, "curl/7.88.1")
        .header(http::header::ACCEPT, "*/*")
        .body(Empty::<Bytes>::new())
        .map_err(|_| ())?;
    if args.https {
        let config =
            net::client_config(&CheckTls { insecure: args.insecure, ..CheckTls::default() }, true).map_err(|_| ())?;
        let name = rustls::pki_types::ServerName::try_from(args.host.clone()).map_err(|_| ())?;
        let tls = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await.map_err(|_| ())?;
        times.pretransfer = started.elapsed().as_secs_f64();
        exchange(tls, request, started, times).await
    } else {
        times.pretransfer = times.connect;
        exchange(tcp, request, started, times).await
    }
}

async fn exchange<S>(stream: S, request: Request<Empty<Bytes>>, started: Instant, times: &mut Times) -> Result<(), ()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|_| ())?;
    let driver = tokio::spawn(connection);
    let outcome = async {
        let response = sender.send_request(request).await.map_err(|_| ())?;
        times.starttransfer = started.elapsed().as_secs_f64();
        times.code = response.status().as_u16();
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            frame.map_err(|_| ())?;
        }
        Ok(())
    }
    .await;
    driver.abort();
    outcome
}
