//! Network plumbing shared by the built-in checks: resolution with a measured DNS
//! phase and an address-family preference, TCP connect with fallback across addresses,
//! and TLS client configurations (cached, since building one loads roots).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ProtocolConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use rustls::ClientConfig;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::failure::{CheckFailure, Reason};

/// Which addresses to try, in which order. The default is IPv4 first: blackbox_exporter's
/// IPv6-first default breaks inside Docker, where IPv6 is usually not routed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum IpPreference {
    /// IPv4 addresses first, then IPv6.
    #[default]
    Ipv4First,
    /// IPv6 addresses first, then IPv4.
    Ipv6First,
    /// IPv4 only.
    Ipv4,
    /// IPv6 only.
    Ipv6,
}

/// DNS transport.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DnsProtocol {
    /// UDP (default).
    #[default]
    Udp,
    /// TCP.
    Tcp,
}

/// Build a resolver with caching off (every check really resolves): against `server`,
/// or the system configuration (`/etc/resolv.conf`, `/etc/hosts`) when `None`. A
/// resolver that cannot be built is a `parameters` failure (the check asked for it).
pub fn resolver(
    server: Option<SocketAddr>,
    protocol: DnsProtocol,
    timeout: Duration,
) -> Result<TokioResolver, CheckFailure> {
    new_resolver(server, protocol, timeout)
        .map_err(|e| CheckFailure::parameters(format!("cannot build a resolver: {e}")))
}

fn new_resolver(server: Option<SocketAddr>, protocol: DnsProtocol, timeout: Duration) -> Result<TokioResolver, String> {
    let (config, options) = match server {
        Some(addr) => {
            let mut connection = ConnectionConfig::new(match protocol {
                DnsProtocol::Udp => ProtocolConfig::Udp,
                DnsProtocol::Tcp => ProtocolConfig::Tcp,
            });
            connection.port = addr.port();
            let mut ns = NameServerConfig::udp(addr.ip());
            ns.connections = vec![connection];
            let mut options = hickory_resolver::config::ResolverOpts::default();
            options.use_hosts_file = hickory_resolver::config::ResolveHosts::Never;
            (ResolverConfig::from_parts(None, vec![], vec![ns]), options)
        }
        None => system_config(&std::fs::read(RESOLV_CONF).unwrap_or_default())?,
    };
    if server.is_none() && protocol == DnsProtocol::Tcp {
        return Err("protocol tcp needs an explicit server".into());
    }
    build(config, options, timeout)
}

/// A resolver with caching off (every check really resolves) and one attempt.
fn build(
    config: ResolverConfig,
    mut options: hickory_resolver::config::ResolverOpts,
    timeout: Duration,
) -> Result<TokioResolver, String> {
    options.cache_size = 0;
    options.timeout = timeout;
    options.attempts = 1;
    TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
        .with_options(options)
        .build()
        .map_err(|e| e.to_string())
}

const RESOLV_CONF: &str = "/etc/resolv.conf";

/// The system configuration from `resolv.conf`'s text, read as the C library reads it: a
/// missing file or one without a `nameserver` line means the name server on this machine
/// (127.0.0.1), instead of hickory's "no nameservers" error that would fail every lookup,
/// even of names in `/etc/hosts`.
fn system_config(resolv_conf: &[u8]) -> Result<(ResolverConfig, hickory_resolver::config::ResolverOpts), String> {
    use hickory_resolver::system_conf::parse_resolv_conf;
    parse_resolv_conf(resolv_conf).or_else(|error| {
        let mut with_local = resolv_conf.to_vec();
        with_local.extend_from_slice(b"\nnameserver 127.0.0.1\n");
        parse_resolv_conf(with_local).map_err(|_| format!("reading {RESOLV_CONF}: {error}"))
    })
}

/// The system resolver, built once (its cache is off, so every lookup goes out).
fn system_resolver() -> Result<TokioResolver, String> {
    static SYSTEM: OnceLock<Result<TokioResolver, String>> = OnceLock::new();
    SYSTEM.get_or_init(|| new_resolver(None, DnsProtocol::Udp, Duration::from_secs(5))).clone()
}

/// Resolve `host` to socket addresses in preference order. Returns the addresses and the
/// time the lookup took (zero for an IP literal); fails with reason `dns`.
pub async fn resolve(
    host: &str,
    port: u16,
    preference: IpPreference,
) -> Result<(Vec<SocketAddr>, Duration), CheckFailure> {
    let dns = |message: String| CheckFailure::new(Reason::Dns, message);
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = literal.parse::<IpAddr>() {
        let addrs = order(vec![SocketAddr::new(ip, port)], preference);
        if addrs.is_empty() {
            return Err(dns(format!("{host} is not an {} address", family_name(preference))));
        }
        return Ok((addrs, Duration::ZERO));
    }
    let resolver = system_resolver().map_err(dns)?;
    let started = Instant::now();
    // Boxed: the resolver's future is large and only a name needs it, while every check in
    // flight would carry its size inline.
    let lookup = Box::pin(resolver.lookup_ip(host)).await.map_err(|e| dns(format!("cannot resolve {host}: {e}")))?;
    let took = started.elapsed();
    let addrs = order(lookup.iter().map(|ip| SocketAddr::new(ip, port)).collect(), preference);
    if addrs.is_empty() {
        return Err(dns(format!("{host} has no {} address", family_name(preference))));
    }
    Ok((addrs, took))
}

fn family_name(p: IpPreference) -> &'static str {
    match p {
        IpPreference::Ipv4 => "IPv4",
        IpPreference::Ipv6 => "IPv6",
        _ => "IP",
    }
}

fn order(mut addrs: Vec<SocketAddr>, preference: IpPreference) -> Vec<SocketAddr> {
    match preference {
        IpPreference::Ipv4 => addrs.retain(SocketAddr::is_ipv4),
        IpPreference::Ipv6 => addrs.retain(SocketAddr::is_ipv6),
        IpPreference::Ipv4First => addrs.sort_by_key(|a| !a.is_ipv4()),
        IpPreference::Ipv6First => addrs.sort_by_key(|a| !a.is_ipv6()),
    }
    addrs
}

/// Connect to the first address that accepts. Returns the stream and the address used;
/// fails with reason `connect`, naming the last address's error.
pub async fn connect(addrs: &[SocketAddr]) -> Result<(TcpStream, SocketAddr), CheckFailure> {
    connect_first(addrs).await.map_err(connect_failure)
}

/// The failure of a connect that tried every address: reason `connect`, naming the last
/// address tried and its error.
fn connect_failure(last: Option<(SocketAddr, std::io::Error)>) -> CheckFailure {
    let last = last.map_or_else(|| "no address to connect to".to_string(), |(addr, e)| format!("{addr}: {e}"));
    CheckFailure::new(Reason::Connect, format!("cannot connect: {last}"))
}

/// A nonblocking, close-on-exec socket of `kind` for `address`'s family (nix: connecting it
/// without tokio's steps in between).
pub fn socket_for(address: SocketAddr, kind: nix::sys::socket::SockType) -> nix::Result<std::os::fd::OwnedFd> {
    use nix::sys::socket::{AddressFamily, SockFlag, socket};
    let family = if address.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
    socket(family, kind, SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC, None)
}

/// Try the addresses in order, the first that accepts (`TCP_NODELAY` set) and its address;
/// else the last address tried and its error (none when there was no address).
pub async fn connect_first(
    addrs: &[SocketAddr],
) -> Result<(TcpStream, SocketAddr), Option<(SocketAddr, std::io::Error)>> {
    first_accepting(addrs, |addr| async move {
        let stream = TcpStream::connect(addr).await?;
        let _ = stream.set_nodelay(true);
        Ok((stream, addr))
    })
    .await
}

/// `attempt` on the addresses in order: the first that succeeds; else the last address tried
/// and its error (none when there was no address).
async fn first_accepting<T, F: Future<Output = std::io::Result<T>>>(
    addrs: &[SocketAddr],
    mut attempt: impl FnMut(SocketAddr) -> F,
) -> Result<T, Option<(SocketAddr, std::io::Error)>> {
    let mut last = None;
    for addr in addrs {
        match attempt(*addr).await {
            Ok(done) => return Ok(done),
            Err(e) => last = Some((*addr, e)),
        }
    }
    Err(last)
}

/// A connection [`connect_sending`] made.
#[derive(Debug)]
pub struct Sending {
    /// The connected stream (`TCP_NODELAY` set).
    pub stream: TcpStream,
    /// The address it is connected to.
    pub address: SocketAddr,
    /// How many of the first bytes went out with the connection (0: none yet).
    pub written: usize,
    /// When their sending began: the end of the connect phase.
    pub sending: Instant,
}

/// [`connect`], and `first` written as soon as the connection is up. Where the handshake
/// completes inside `connect()` (loopback) the bytes go out at once, with no wait for the
/// socket to be reported writable: a `getsockopt` fewer per connection, and a reactor turn
/// where the reactor does not turn anyway before the answer (low rates).
/// Elsewhere the connection is awaited as tokio awaits it and nothing is written yet. Fails
/// as [`connect`] does.
pub async fn connect_sending(addrs: &[SocketAddr], first: &[u8]) -> Result<Sending, CheckFailure> {
    first_accepting(addrs, |addr| connect_one(addr, first)).await.map_err(connect_failure)
}

async fn connect_one(address: SocketAddr, first: &[u8]) -> std::io::Result<Sending> {
    use nix::errno::Errno;
    use nix::sys::socket::{self, MsgFlags, SockType, SockaddrStorage, sockopt};
    use std::os::fd::AsRawFd;
    let fd = socket_for(address, SockType::Stream)?;
    socket::setsockopt(&fd, sockopt::TcpNoDelay, &true)?;
    let connecting = match socket::connect(fd.as_raw_fd(), &SockaddrStorage::from(address)) {
        Ok(()) => false,
        Err(Errno::EINPROGRESS) => true,
        Err(e) => return Err(e.into()),
    };
    let mut sending = Instant::now();
    // A connection still being made refuses the bytes with EAGAIN; a refused one says so.
    let (up, written) = match socket::send(fd.as_raw_fd(), first, MsgFlags::MSG_NOSIGNAL) {
        Ok(n) => (true, n),
        Err(Errno::EAGAIN) if connecting => (false, 0),
        Err(e) => return Err(e.into()),
    };
    let stream = TcpStream::from_std(std::net::TcpStream::from(fd))?;
    if !up {
        stream.writable().await?;
        if let Some(e) = stream.take_error()? {
            return Err(e);
        }
        sending = Instant::now();
    }
    Ok(Sending { stream, address, written, sending })
}

/// `address` as `Display` writes it (`127.0.0.1:80`, `[::1]:443`), an IPv4 one written
/// digit by digit: through `fmt`, its octets and port cost 2,000 instructions of every check.
pub fn address_text(address: SocketAddr) -> String {
    let SocketAddr::V4(v4) = address else {
        return address.to_string();
    };
    let mut text = String::with_capacity(21);
    push_ipv4(&mut text, *v4.ip());
    text.push(':');
    text.push_str(itoa::Buffer::new().format(v4.port()));
    text
}

/// Append `ip` as `Display` writes it (`127.0.0.1`), digit by digit.
pub fn push_ipv4(out: &mut String, ip: std::net::Ipv4Addr) {
    let mut digits = itoa::Buffer::new();
    for (i, octet) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        out.push_str(digits.format(octet));
    }
}

/// TLS options of a check (HTTP, TLS certificate): files or inline PEM.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields, default)]
pub struct CheckTls {
    /// Do not verify the server certificate (chain, name, dates).
    pub insecure: bool,
    /// PEM file of extra CA certificates to trust.
    pub ca_file: Option<String>,
    /// PEM text of extra CA certificates.
    pub ca: Option<String>,
    /// PEM file with the client certificate chain.
    pub cert_file: Option<String>,
    /// PEM file with the client private key.
    pub key_file: Option<String>,
    /// TLS server name (SNI and verification) when it differs from the URL's host.
    pub server_name: Option<String>,
}

impl CheckTls {
    /// The extra CA PEM, from `ca` or `ca_file`.
    fn ca_pem(&self) -> Result<Option<Vec<u8>>, String> {
        if let Some(pem) = &self.ca {
            return Ok(Some(pem.as_bytes().to_vec()));
        }
        self.ca_file.as_ref().map(|f| std::fs::read(f).map_err(|e| format!("ca_file {f}: {e}"))).transpose()
    }
}

/// Most TLS client configurations kept (one per distinct set of options); past it they are
/// made again as needed.
const CLIENT_CONFIGS: usize = 256;

/// The state of the files a configuration was made from: (modified, length) of `ca_file`,
/// `cert_file` and `key_file` (`None` where not set or not readable).
type FileStamps = [Option<(Option<std::time::SystemTime>, u64)>; 3];

type ClientConfigs = Mutex<HashMap<(CheckTls, bool), (FileStamps, Arc<ClientConfig>)>>;

fn client_configs() -> &'static ClientConfigs {
    static CACHE: OnceLock<ClientConfigs> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// The files' state now: one `stat` per file set (none for options without files), so that a
/// rotated CA, certificate or key is read again on the next check instead of at a restart.
fn file_stamps(tls: &CheckTls) -> FileStamps {
    let stamp = |file: &Option<String>| {
        let meta = std::fs::metadata(file.as_ref()?).ok()?;
        Some((meta.modified().ok(), meta.len()))
    };
    [stamp(&tls.ca_file), stamp(&tls.cert_file), stamp(&tls.key_file)]
}

/// A client configuration for these options (cached per distinct options, and made again
/// when a file they name changed), with ALPN
/// `http/1.1` when `http` is set. Options that cannot be used (unreadable files, a
/// certificate without its key) fail with reason `tls_handshake`, where the check's TLS
/// setup fails.
pub fn client_config(tls: &CheckTls, http: bool) -> Result<Arc<ClientConfig>, CheckFailure> {
    let cache = client_configs();
    let key = (tls.clone(), http);
    let stamps = file_stamps(tls);
    if let Some(config) =
        cache.lock().ok().and_then(|c| c.get(&key).filter(|(made, _)| *made == stamps).map(|(_, c)| c.clone()))
    {
        return Ok(config);
    }
    let config = Arc::new(
        new_client_config(tls, http).map_err(|e| CheckFailure::new(Reason::TlsHandshake, format!("TLS setup: {e}")))?,
    );
    if let Ok(mut cache) = cache.lock() {
        // Bounded: each distinct set of options (an inline `ca`, a `server_name`) adds one.
        if cache.len() >= CLIENT_CONFIGS && !cache.contains_key(&key) {
            cache.clear();
        }
        cache.insert(key, (stamps, config.clone()));
    }
    Ok(config)
}

fn new_client_config(tls: &CheckTls, http: bool) -> Result<ClientConfig, String> {
    let provider = crate::pki::provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = if tls.insecure {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(crate::pki::NoChainVerification(provider)))
    } else {
        builder.with_root_certificates(crate::pki::roots_with(tls.ca_pem()?.as_deref())?)
    };
    let mut config = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            let chain = std::fs::read(cert).map_err(|e| format!("cert_file {cert}: {e}"))?;
            let key_pem = std::fs::read(key).map_err(|e| format!("key_file {key}: {e}"))?;
            let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| format!("key_file {key}: {e}"))?;
            builder
                .with_client_auth_cert(crate::pki::certs_from_pem(&chain)?, key)
                .map_err(|e| format!("client certificate: {e}"))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err("cert_file and key_file go together".into()),
    };
    if http {
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_written_as_display_writes_it() {
        let mut addresses: Vec<SocketAddr> = ["[::1]:443", "[2001:db8::ff00:42:8329]:8080", "[::ffff:127.0.0.1]:1"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        for octets in [[0, 0, 0, 0], [127, 0, 0, 1], [255, 255, 255, 255], [10, 9, 100, 99], [1, 20, 200, 7]] {
            for port in [0, 1, 80, 443, 9999, 10000, 65535] {
                addresses.push(SocketAddr::from((octets, port)));
            }
        }
        for address in addresses {
            assert_eq!(address_text(address), address.to_string());
        }
    }

    #[test]
    fn tls_client_configurations_kept_are_bounded() {
        for i in 0..CLIENT_CONFIGS + 40 {
            let tls = CheckTls { insecure: true, server_name: Some(format!("n{i}.test")), ..CheckTls::default() };
            client_config(&tls, i % 2 == 0).unwrap();
            let kept = client_configs().lock().unwrap().len();
            assert!((1..=CLIENT_CONFIGS).contains(&kept), "{kept}");
        }
    }

    #[test]
    fn preference_orders_and_filters() {
        let v4: SocketAddr = "192.0.2.1:80".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:80".parse().unwrap();
        assert_eq!(order(vec![v6, v4], IpPreference::Ipv4First), [v4, v6]);
        assert_eq!(order(vec![v4, v6], IpPreference::Ipv6First), [v6, v4]);
        assert_eq!(order(vec![v4, v6], IpPreference::Ipv6), [v6]);
        assert_eq!(order(vec![v4, v6], IpPreference::Ipv4), [v4]);
    }

    #[test]
    fn resolv_conf_without_nameserver_means_this_machine() {
        let local: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap()];
        let servers = |conf: &ResolverConfig| conf.name_servers().iter().map(|ns| ns.ip).collect::<Vec<_>>();
        let (conf, _) = system_config(b"").unwrap();
        assert_eq!(servers(&conf), local);
        let (conf, _) = system_config(b"search example.com\noptions ndots:2\n").unwrap();
        assert_eq!(servers(&conf), local);
        assert_eq!(conf.search().iter().map(ToString::to_string).collect::<Vec<_>>(), ["example.com"]);
        let (conf, options) = system_config(b"nameserver 192.0.2.53\noptions timeout:3\n").unwrap();
        assert_eq!(servers(&conf), ["192.0.2.53".parse::<IpAddr>().unwrap()]);
        assert_eq!(options.timeout, Duration::from_secs(3));
    }

    // With no name server configured, names in /etc/hosts still resolve (no DNS server
    // listens on 127.0.0.1:53 here; the hosts file answers).
    #[tokio::test]
    async fn hosts_file_answers_without_a_configured_nameserver() {
        let (config, options) = system_config(b"").unwrap();
        let resolver = build(config, options, Duration::from_secs(2)).unwrap();
        let lookup = resolver.lookup_ip("localhost").await.expect("localhost from /etc/hosts");
        assert!(lookup.iter().any(|ip| ip.is_loopback()), "{lookup:?}");
    }

    #[tokio::test]
    async fn literal_addresses_skip_dns() {
        let (addrs, took) = resolve("127.0.0.1", 8080, IpPreference::Ipv4First).await.unwrap();
        assert_eq!(addrs, ["127.0.0.1:8080".parse::<SocketAddr>().unwrap()]);
        assert_eq!(took, Duration::ZERO);
        let (addrs, _) = resolve("[::1]", 443, IpPreference::Ipv6First).await.unwrap();
        assert_eq!(addrs, ["[::1]:443".parse::<SocketAddr>().unwrap()]);
    }
}
