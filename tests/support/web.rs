//! Real HTTP and HTTPS servers on loopback (127.0.0.1 only) for the built-in HTTP and
//! TLS-certificate checks, plus a throwaway certificate authority to issue their certificates.
//!
//! # Certificates
//!
//! [`TestCa::new`] makes a self-signed root (valid from yesterday to +3650 days) and
//! [`TestCa::issue`] makes server certificates of a [`CertKind`]. All keys are ECDSA P-256,
//! all times are whole seconds, and "now" is the moment `issue` is called. Unless the kind says
//! otherwise a leaf has the SANs `DNS:localhost` and `IP:127.0.0.1`, the extended key usage
//! `serverAuth`, and is valid from now − 1 day to now + 60 days. See [`CertKind`] for each
//! kind's exact window. [`ServerCert::not_after`] and friends are **Unix epoch seconds** (`i64`),
//! exactly the values encoded in the certificates (the test crate has no direct `time` dependency).
//!
//! # Servers
//!
//! [`TestServer::http`] / [`TestServer::https`] start an HTTP/1.1 server (keep-alive, any number
//! of concurrent connections) on `127.0.0.1:0`. It runs on its own thread and Tokio runtime, so it
//! keeps serving even while the test's own runtime is busy or blocked; dropping the server stops
//! it and closes its socket and every connection before `drop` returns. Routes:
//!
//! | route               | response                                                                 |
//! |---------------------|--------------------------------------------------------------------------|
//! | `/ok`               | 200, `hello concierge`, `Content-Type: text/plain`, `X-Test: yes`        |
//! | `/status/{code}`    | `{code}` (200..=599), body `status {code}` (none for 204/304)            |
//! | `/delay/{ms}`       | sleeps `ms` milliseconds, then 200 `slept`                               |
//! | `/slowbody/{ms}`    | 200 headers (`Content-Length: 4`) at once, the body `slow` after `ms`    |
//! | `/redirect/{n}`     | 302, `Location: /redirect/{n-1}`; `/redirect/0` → 302 `Location: /ok`    |
//! | `/goto/{code}?LOC`  | `{code}` (300..=399), `Location: LOC` (the raw query; `/ok` without one) |
//! | `/bytes/{n}`        | 200, `n` bytes of `x` (`Content-Type: application/octet-stream`)         |
//! | `/echo`             | 200 JSON `{"method","path","query","headers","body"}` of the request     |
//! | `/json`             | 200 `{"status":"UP","checks":[{"name":"db","ok":true}]}` (JSON type)     |
//! | anything else       | 404 `not found` (also for malformed numbers, e.g. `/status/abc`)         |
//!
//! Routes match on the path only (any method, query ignored). `/redirect/{n}` reaches `/ok` after
//! `n + 1` redirects. In `/echo`, `headers` maps lower-case names to values (repeated headers joined
//! with `", "`), `query` is the raw query string or `null`, and `body` is the request body as
//! (lossy) UTF-8. Plain-text bodies are `text/plain`.
//!
//! HTTPS uses rustls with aws-lc-rs (TLS 1.2 and 1.3), presents the certificate whatever the SNI,
//! and accepts ALPN `http/1.1` or none (a client offering only `h2` fails the handshake).
//!
//! [`TlsOnlyServer`] is for the certificate check: it completes a TLS handshake with the given
//! certificate, sends `close_notify`, waits (at most 10 s) for the client to close, and closes;
//! it serves no HTTP at all.
//!
//! Pitfall: `https` URLs use the name `localhost` (so that host-name verification is exercised)
//! but the servers only listen on 127.0.0.1. Where `localhost` resolves to `::1` first, a client
//! must fall back to the next address; `ip_url` (`https://127.0.0.1:PORT`) avoids the question,
//! and the certificates carry the IP SAN for it.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Map, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// One day in seconds.
pub const DAY: i64 = 86_400;
/// One hour in seconds.
pub const HOUR: i64 = 3_600;

/// Seconds since the Unix epoch, now.
pub fn now_epoch() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock before 1970").as_secs() as i64
}

/// The aws-lc-rs crypto provider (never a process-wide default; `ring` is not available).
pub fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Set `params`' validity window from Unix epoch seconds. rcgen 0.14 wants `time::OffsetDateTime`
/// but does not re-export `time`, and the tests do not depend on `time` directly, so build the
/// value as `rcgen::date_time_ymd(1970, 1, 1)` plus a std `Duration` (times before 1970 unsupported).
fn set_validity(params: &mut CertificateParams, not_before: i64, not_after: i64) {
    let secs = |t: i64| Duration::from_secs(u64::try_from(t).expect("validity before 1970"));
    params.not_before = rcgen::date_time_ymd(1970, 1, 1) + secs(not_before);
    params.not_after = rcgen::date_time_ymd(1970, 1, 1) + secs(not_after);
}

// ------------------------------------------------------------------------------------------------
// Certificates
// ------------------------------------------------------------------------------------------------

/// A throwaway certificate authority (self-signed root, ECDSA P-256).
///
/// Valid from now − 1 day to now + 3650 days; subject `CN={name}, O=Concierge tests`.
pub struct TestCa {
    /// The CA certificate, PEM (what a check's `ca_file` should contain).
    pub cert_pem: String,
    /// The CA certificate, DER.
    pub cert_der: CertificateDer<'static>,
    /// The common name given to [`TestCa::new`].
    pub name: String,
    issuer: Issuer<'static, KeyPair>,
}

/// What kind of server certificate [`TestCa::issue`] makes. "now" is the time of the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertKind {
    /// Issued by the CA; SANs `localhost`, `127.0.0.1`; valid now − 1 day .. now + 60 days.
    Valid,
    /// Issued by the CA; SANs `localhost`, `127.0.0.1`; valid now − 30 days .. now − 30 hours (so the
    /// whole days elapsed are 1, far from a rounding edge).
    Expired,
    /// Issued by the CA; SANs `localhost`, `127.0.0.1`; valid until now + n days, from
    /// now − 1 day (or from `not_after` − 1 day if that is earlier, for n ≤ 0).
    ExpiresInDays(i64),
    /// Self-signed, not issued by the CA; SANs `localhost`, `127.0.0.1`; valid now − 1 day ..
    /// now + 60 days.
    SelfSigned,
    /// Issued by the CA; SAN `DNS:other.invalid` only (CN `other.invalid`); valid now − 1 day ..
    /// now + 60 days.
    WrongHost,
    /// Leaf (SANs `localhost`, `127.0.0.1`, valid now − 1 day .. now + 60 days) issued by an
    /// intermediate CA (`CN={ca name} Intermediate`, valid now − 1 day .. now + 5 days) issued by
    /// the root. `chain_pem` holds leaf then intermediate, so the earliest expiry in the served
    /// chain (`chain_not_after`, +5 days) is earlier than the leaf's (`not_after`, +60 days).
    WithIntermediate,
}

/// A server certificate chain and its key.
pub struct ServerCert {
    /// The chain the server presents, PEM: the leaf, then the intermediate for
    /// [`CertKind::WithIntermediate`]. Never contains the root.
    pub chain_pem: String,
    /// The leaf's private key, PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub key_pem: String,
    /// The leaf's notBefore, Unix epoch seconds.
    pub not_before: i64,
    /// The leaf's notAfter, Unix epoch seconds.
    pub not_after: i64,
    /// The earliest notAfter among the certificates in `chain_pem` (the intermediate's for
    /// [`CertKind::WithIntermediate`], otherwise equal to `not_after`), Unix epoch seconds.
    pub chain_not_after: i64,
    /// The kind this was issued as.
    pub kind: CertKind,
}

/// The SANs of every leaf except [`CertKind::WrongHost`]'s (`CertificateParams::new` turns the
/// IP literal into an `IP:` SAN).
const LOCAL_SANS: &[&str] = &["localhost", "127.0.0.1"];

/// Parameters for a CA certificate; `path_len` limits the CAs below it (`None`: unconstrained).
fn ca_params(common_name: &str, path_len: Option<u8>, not_before: i64, not_after: i64) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "Concierge tests");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(match path_len {
        None => BasicConstraints::Unconstrained,
        Some(n) => BasicConstraints::Constrained(n),
    });
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, not_before, not_after);
    params
}

/// Parameters for a server (end-entity) certificate; the first SAN is also the CN.
fn leaf_params(sans: &[&str], not_before: i64, not_after: i64) -> CertificateParams {
    let mut params =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("valid SANs");
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, sans[0]);
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, not_before, not_after);
    params
}

fn new_key() -> KeyPair {
    KeyPair::generate().expect("generate ECDSA P-256 key")
}

impl TestCa {
    /// A new root CA with common name `name`, valid from now − 1 day to now + 3650 days.
    pub fn new(name: &str) -> TestCa {
        let now = now_epoch();
        let params = ca_params(name, None, now - DAY, now + 3650 * DAY);
        let key = new_key();
        let cert = params.self_signed(&key).expect("self-sign CA");
        TestCa {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            name: name.to_string(),
            issuer: Issuer::new(params, key),
        }
    }

    /// Issue a server certificate of `kind` (see [`CertKind`] for the exact validity windows).
    pub fn issue(&self, kind: CertKind) -> ServerCert {
        let now = now_epoch();
        let (from, to) = (now - DAY, now + 60 * DAY);
        let leaf = match kind {
            CertKind::Expired => leaf_params(LOCAL_SANS, now - 30 * DAY, now - DAY - 6 * HOUR),
            CertKind::ExpiresInDays(days) => {
                let not_after = now + days * DAY;
                leaf_params(LOCAL_SANS, from.min(not_after - DAY), not_after)
            }
            CertKind::WrongHost => leaf_params(&["other.invalid"], from, to),
            CertKind::Valid | CertKind::SelfSigned | CertKind::WithIntermediate => leaf_params(LOCAL_SANS, from, to),
        };
        let (not_before, not_after) = (leaf.not_before.unix_timestamp(), leaf.not_after.unix_timestamp());
        let key = new_key();
        let (mut chain_pem, mut chain_not_after) = (String::new(), not_after);
        let leaf_cert = match kind {
            CertKind::SelfSigned => leaf.self_signed(&key),
            CertKind::WithIntermediate => {
                let params = ca_params(&format!("{} Intermediate", self.name), Some(0), from, now + 5 * DAY);
                let int_key = new_key();
                let int_cert = params.signed_by(&int_key, &self.issuer).expect("sign intermediate");
                chain_not_after = chain_not_after.min(params.not_after.unix_timestamp());
                let int_issuer = Issuer::new(params, int_key);
                let leaf_cert = leaf.signed_by(&key, &int_issuer);
                // Leaf first, then the intermediate.
                chain_pem = int_cert.pem();
                leaf_cert
            }
            _ => leaf.signed_by(&key, &self.issuer),
        }
        .expect("sign leaf");
        chain_pem.insert_str(0, &leaf_cert.pem());
        ServerCert { chain_pem, key_pem: key.serialize_pem(), not_before, not_after, chain_not_after, kind }
    }

    /// A root store holding only this CA.
    pub fn root_store(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.cert_der.clone()).expect("add test CA to root store");
        roots
    }

    /// A rustls client configuration (aws-lc-rs, TLS 1.2 and 1.3) that trusts only this CA.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let config = rustls::ClientConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(self.root_store())
            .with_no_client_auth();
        Arc::new(config)
    }

    /// Write the CA certificate (PEM) to `path` and return `path`.
    pub fn write_pem(&self, path: impl AsRef<std::path::Path>) -> std::path::PathBuf {
        std::fs::write(path.as_ref(), &self.cert_pem).expect("write CA PEM");
        path.as_ref().to_path_buf()
    }
}

impl ServerCert {
    /// The certificates of `chain_pem`, DER, leaf first.
    pub fn chain_der(&self) -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_slice_iter(self.chain_pem.as_bytes()).collect::<Result<_, _>>().expect("parse chain PEM")
    }

    /// The leaf's private key, DER.
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).expect("parse key PEM")
    }

    /// A rustls server configuration (aws-lc-rs, TLS 1.2 and 1.3) presenting this chain to every
    /// client, whatever its SNI, with no ALPN.
    pub fn server_config(&self) -> rustls::ServerConfig {
        rustls::ServerConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(self.chain_der(), self.key_der())
            .expect("server certificate and key")
    }
}

// ------------------------------------------------------------------------------------------------
// Servers
// ------------------------------------------------------------------------------------------------

/// A configurable HTTP/1.1 server on 127.0.0.1 (see the module documentation for the routes).
/// Dropping it stops it.
pub struct TestServer {
    /// The listening address (127.0.0.1, an ephemeral port).
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT` or `https://localhost:PORT` (no trailing slash).
    pub url: String,
    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT` (no trailing slash).
    pub ip_url: String,
    running: Running,
}

impl TestServer {
    /// Plain HTTP on `127.0.0.1:0`; `url` is `http://127.0.0.1:PORT`.
    pub async fn http() -> TestServer {
        Self::http_blocking()
    }

    /// HTTPS presenting `cert` (whatever the SNI, ALPN `http/1.1` or none); `url` is
    /// `https://localhost:PORT`, `ip_url` is `https://127.0.0.1:PORT`.
    pub async fn https(cert: &ServerCert) -> TestServer {
        Self::https_blocking(cert)
    }

    /// [`TestServer::http`], for code outside an async context.
    pub fn http_blocking() -> TestServer {
        let running = Running::start(Mode::Http);
        let port = running.addr.port();
        let url = format!("http://127.0.0.1:{port}");
        TestServer { addr: running.addr, ip_url: url.clone(), url, running }
    }

    /// [`TestServer::https`], for code outside an async context.
    pub fn https_blocking(cert: &ServerCert) -> TestServer {
        let mut config = cert.server_config();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let running = Running::start(Mode::Https(tokio_rustls::TlsAcceptor::from(Arc::new(config))));
        let port = running.addr.port();
        TestServer {
            addr: running.addr,
            url: format!("https://localhost:{port}"),
            ip_url: format!("https://127.0.0.1:{port}"),
            running,
        }
    }

    /// `url` followed by `path` (which should start with `/`).
    pub fn url_for(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// HTTP requests received so far (counted when their head has been read, before any delay).
    pub fn requests(&self) -> usize {
        self.running.stats.requests.load(Ordering::SeqCst)
    }

    /// TCP connections accepted so far (keep-alive reuse does not add to it).
    pub fn connections(&self) -> usize {
        self.running.stats.connections.load(Ordering::SeqCst)
    }

    /// TLS handshakes completed so far (always 0 for plain HTTP).
    pub fn handshakes(&self) -> usize {
        self.running.stats.handshakes.load(Ordering::SeqCst)
    }

    /// TLS handshakes that failed (e.g. the client rejected the certificate).
    pub fn failed_handshakes(&self) -> usize {
        self.running.stats.failed_handshakes.load(Ordering::SeqCst)
    }
}

/// A TLS-only listener on 127.0.0.1 for the certificate check: each connection gets a TLS
/// handshake presenting the certificate, then `close_notify`, then the server reads and discards
/// until the client closes (at most 10 s) and closes. No HTTP. Dropping it stops it.
pub struct TlsOnlyServer {
    /// The listening address (127.0.0.1, an ephemeral port).
    pub addr: SocketAddr,
    /// `localhost` (the name the valid certificates are issued for).
    pub host: String,
    /// The listening port.
    pub port: u16,
    running: Running,
}

impl TlsOnlyServer {
    /// Start presenting `cert`.
    pub async fn start(cert: &ServerCert) -> TlsOnlyServer {
        Self::start_blocking(cert)
    }

    /// [`TlsOnlyServer::start`], for code outside an async context.
    pub fn start_blocking(cert: &ServerCert) -> TlsOnlyServer {
        let running = Running::start(Mode::TlsOnly(tokio_rustls::TlsAcceptor::from(Arc::new(cert.server_config()))));
        TlsOnlyServer { addr: running.addr, host: "localhost".to_string(), port: running.addr.port(), running }
    }

    /// `localhost:PORT`.
    pub fn host_port(&self) -> String {
        format!("localhost:{}", self.port)
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.running.stats.connections.load(Ordering::SeqCst)
    }

    /// TLS handshakes completed so far.
    pub fn handshakes(&self) -> usize {
        self.running.stats.handshakes.load(Ordering::SeqCst)
    }

    /// TLS handshakes that failed (e.g. the client rejected the certificate).
    pub fn failed_handshakes(&self) -> usize {
        self.running.stats.failed_handshakes.load(Ordering::SeqCst)
    }
}

#[derive(Default)]
struct Stats {
    requests: AtomicUsize,
    connections: AtomicUsize,
    handshakes: AtomicUsize,
    failed_handshakes: AtomicUsize,
}

#[derive(Clone)]
enum Mode {
    Http,
    Https(tokio_rustls::TlsAcceptor),
    TlsOnly(tokio_rustls::TlsAcceptor),
}

/// A listener served by its own thread and current-thread Tokio runtime. Dropping it shuts the
/// runtime down (closing the listener and every connection) and joins the thread.
struct Running {
    addr: SocketAddr,
    stats: Arc<Stats>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    fn start(mode: Mode) -> Running {
        // Bind before returning, so the port accepts connections as soon as the server exists.
        let listener =
            std::net::TcpListener::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)).expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let addr = listener.local_addr().expect("listener address");
        let stats = Arc::new(Stats::default());
        let (shutdown, stop) = oneshot::channel::<()>();
        let thread_stats = stats.clone();
        let thread = std::thread::Builder::new()
            .name(format!("test-web-{}", addr.port()))
            .spawn(move || {
                let runtime =
                    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("test server runtime");
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener).expect("tokio listener");
                    tokio::select! {
                        _ = stop => {}
                        _ = accept_loop(listener, mode, thread_stats) => {}
                    }
                });
                // Dropping the runtime drops every connection task, closing its socket.
                drop(runtime);
            })
            .expect("spawn test server thread");
        Running { addr, stats, shutdown: Some(shutdown), thread: Some(thread) }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(listener: TcpListener, mode: Mode, stats: Arc<Stats>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // E.g. out of descriptors: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        stats.connections.fetch_add(1, Ordering::SeqCst);
        let _ = stream.set_nodelay(true);
        let (mode, stats) = (mode.clone(), stats.clone());
        tokio::spawn(async move {
            match mode {
                Mode::Http => serve_http(TokioIo::new(stream), stats).await,
                Mode::Https(acceptor) => match acceptor.accept(stream).await {
                    Ok(tls) => {
                        stats.handshakes.fetch_add(1, Ordering::SeqCst);
                        serve_http(TokioIo::new(tls), stats).await;
                    }
                    Err(_) => {
                        stats.failed_handshakes.fetch_add(1, Ordering::SeqCst);
                    }
                },
                Mode::TlsOnly(acceptor) => match acceptor.accept(stream).await {
                    Ok(mut tls) => {
                        stats.handshakes.fetch_add(1, Ordering::SeqCst);
                        let _ = tls.shutdown().await;
                        // Drain until the client closes, so closing does not reset the connection.
                        let mut sink = tokio::io::sink();
                        let _ =
                            tokio::time::timeout(Duration::from_secs(10), tokio::io::copy(&mut tls, &mut sink)).await;
                    }
                    Err(_) => {
                        stats.failed_handshakes.fetch_add(1, Ordering::SeqCst);
                    }
                },
            }
        });
    }
}

async fn serve_http<I>(io: I, stats: Arc<Stats>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = service_fn(move |request: Request<Incoming>| {
        stats.requests.fetch_add(1, Ordering::SeqCst);
        async move { Ok::<_, Infallible>(route(request).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new().keep_alive(true).serve_connection(io, service).await;
}

type ResponseBody = BoxBody<Bytes, Infallible>;

fn respond(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response<ResponseBody> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .body(Full::new(body.into()).boxed())
        .expect("valid response")
}

fn text(status: u16, body: impl Into<Bytes>) -> Response<ResponseBody> {
    respond(status, "text/plain", body)
}

async fn route(request: Request<Incoming>) -> Response<ResponseBody> {
    let path = request.uri().path().to_string();
    let number = |prefix: &str| {
        path.strip_prefix(prefix).filter(|n| n.bytes().all(|b| b.is_ascii_digit())).and_then(|n| n.parse::<u64>().ok())
    };
    if path == "/ok" {
        let mut response = text(200, "hello concierge");
        response.headers_mut().insert("x-test", http::HeaderValue::from_static("yes"));
        response
    } else if let Some(code) = number("/status/").filter(|c| (200..=599).contains(c)) {
        let status = StatusCode::from_u16(code as u16).expect("status code");
        let body = if matches!(code, 204 | 304) { String::new() } else { format!("status {code}") };
        let mut response = text(200, body);
        *response.status_mut() = status;
        response
    } else if let Some(ms) = number("/delay/") {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        text(200, "slept")
    } else if let Some(ms) = number("/slowbody/") {
        let body = SlowBody {
            sleep: Box::pin(tokio::time::sleep(Duration::from_millis(ms))),
            data: Some(Bytes::from_static(b"slow")),
        };
        Response::builder()
            .status(200)
            .header(header::CONTENT_TYPE, "text/plain")
            .body(body.boxed())
            .expect("valid response")
    } else if let Some(n) = number("/redirect/") {
        let location = if n == 0 { "/ok".to_string() } else { format!("/redirect/{}", n - 1) };
        Response::builder()
            .status(302)
            .header(header::LOCATION, location)
            .body(Full::new(Bytes::new()).boxed())
            .expect("valid response")
    } else if let Some(code) = number("/goto/").filter(|c| (300..=399).contains(c)) {
        // The query, as it is, is the location: `/goto/307?http://127.0.0.1:1234/echo`.
        let location = request.uri().query().unwrap_or("/ok").to_string();
        Response::builder()
            .status(code as u16)
            .header(header::LOCATION, location)
            .body(Full::new(Bytes::new()).boxed())
            .expect("valid response")
    } else if let Some(n) = number("/bytes/") {
        respond(200, "application/octet-stream", vec![b'x'; n as usize])
    } else if path == "/echo" {
        let mut headers = Map::new();
        for (name, value) in request.headers() {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            match headers.get_mut(name.as_str()) {
                Some(Value::String(existing)) => {
                    existing.push_str(", ");
                    existing.push_str(&value);
                }
                _ => {
                    headers.insert(name.as_str().to_string(), Value::String(value));
                }
            }
        }
        let method: &Method = request.method();
        let mut echo = Map::new();
        echo.insert("method".into(), Value::String(method.to_string()));
        echo.insert("path".into(), Value::String(path.clone()));
        echo.insert("query".into(), request.uri().query().map_or(Value::Null, |q| Value::String(q.to_string())));
        echo.insert("headers".into(), Value::Object(headers));
        let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        echo.insert("body".into(), Value::String(String::from_utf8_lossy(&body).into_owned()));
        respond(200, "application/json", Value::Object(echo).to_string())
    } else if let Some(n) = number("/chunked/") {
        // n frames of "chunk i;" with no length: hyper sends them chunked.
        let frames = (0..n).map(|i| Bytes::from(format!("chunk {i};"))).collect();
        Response::builder()
            .status(200)
            .header(header::CONTENT_TYPE, "text/plain")
            .body(Frames(frames).boxed())
            .expect("valid response")
    } else if path == "/json" {
        respond(200, "application/json", r#"{"status":"UP","checks":[{"name":"db","ok":true}]}"#)
    } else {
        text(404, "not found")
    }
}

/// A body of frames whose length is not known ahead: sent chunked.
struct Frames(std::collections::VecDeque<Bytes>);

impl Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|data| Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }
}

/// A body whose single chunk arrives after a delay: hyper sends the head (with
/// `Content-Length`, from the exact size hint) at once.
struct SlowBody {
    sleep: Pin<Box<tokio::time::Sleep>>,
    data: Option<Bytes>,
}

impl Body for SlowBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.data.is_none() {
            return Poll::Ready(None);
        }
        match std::future::Future::poll(self.sleep.as_mut(), cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => Poll::Ready(self.data.take().map(|data| Ok(Frame::data(data)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.as_ref().map_or(0, |data| data.len() as u64))
    }
}

/// `GET path` from `127.0.0.1:port` as a scraper or a probe sends it (one request,
/// `Connection: close`, at most 10 s for the answer); the body.
pub fn get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response.split_once("\r\n\r\n")?.1.to_string())
}

/// The value of the series `name` (labels included, as written) in the Prometheus text that
/// `/metrics` on `127.0.0.1:port` serves.
pub fn metric(port: u16, name: &str) -> Option<f64> {
    let text = get(port, "/metrics")?;
    text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}
