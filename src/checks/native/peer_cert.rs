//! The certificates a TLS server presents, for the certificate plugins: connect (every
//! address in resolver order), handshake with or without verification, and read the chain or
//! the leaf's `notAfter`; a certificate's host names and subject as OpenSSL reads them.

use std::time::Duration;

use crate::checks::net::{self, CheckTls};

/// Why no chain was read.
#[derive(Debug)]
pub enum ChainError {
    /// No address accepted the connection: the last error.
    Connect(std::io::Error),
    /// The server reset the connection during the handshake.
    Reset,
    /// Anything else, in words.
    Other(String),
}

/// The chain the server at `host`:`port` presents (leaf first, DER), with SNI and (when
/// `verify`) verification for `server_name`.
pub async fn chain_verified(
    host: &str,
    port: u16,
    server_name: &str,
    verify: bool,
    limit: Duration,
) -> Result<Vec<Vec<u8>>, ChainError> {
    let handshake = async {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<_> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| ChainError::Other(super::check_ports::getaddrinfo_message(&e)))?
            .collect();
        let mut last = None;
        let mut connected = None;
        for addr in addrs {
            match tokio::net::TcpStream::connect(addr).await {
                Ok(tcp) => {
                    connected = Some(tcp);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let tcp = connected
            .ok_or_else(|| last.map_or_else(|| ChainError::Other("no address".into()), ChainError::Connect))?;
        let tls = CheckTls { insecure: !verify, ..CheckTls::default() };
        let config = net::client_config(&tls, false).map_err(|f| ChainError::Other(f.message))?;
        let name = rustls::pki_types::ServerName::try_from(
            server_name.trim_start_matches('[').trim_end_matches(']').to_string(),
        )
        .map_err(|e| ChainError::Other(e.to_string()))?;
        let stream = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::ConnectionReset {
                ChainError::Reset
            } else {
                ChainError::Other(format!("SSL_connect returned=1 errno=0 state=error: {e}"))
            }
        })?;
        let certs = stream.get_ref().1.peer_certificates().unwrap_or_default();
        Ok(certs.iter().map(|c| c.to_vec()).collect())
    };
    tokio::time::timeout(limit, handshake).await.unwrap_or_else(|_| Err(ChainError::Other("execution expired".into())))
}

/// The chain the server presents, read without verification (SNI `server_name`).
pub async fn chain(host: &str, port: u16, server_name: &str, limit: Duration) -> Result<Vec<Vec<u8>>, ChainError> {
    chain_verified(host, port, server_name, false, limit).await
}

/// The leaf certificate's `notAfter`, in Unix seconds, or why there is none.
pub async fn not_after(host: &str, port: u16, server_name: &str, verify: bool, limit: Duration) -> Result<i64, String> {
    let chain = chain_verified(host, port, server_name, verify, limit).await.map_err(|e| format!("{e:?}"))?;
    let leaf = chain.first().ok_or("no certificate")?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf).map_err(|e| e.to_string())?;
    Ok(cert.validity().not_after.timestamp())
}

/// Whether `host` is a name (or address) of the certificate, as Ruby's
/// `OpenSSL::SSL.verify_certificate_identity` decides: the DNS and IP alternative names when
/// there are any (a `*` standing for one whole left-most label), else the common name.
pub fn matches_host(cert: &x509_parser::certificate::X509Certificate<'_>, host: &str) -> bool {
    use x509_parser::extensions::GeneralName;
    let host_ip: Option<std::net::IpAddr> = host.parse().ok();
    let mut use_common_name = true;
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(pattern) => {
                    use_common_name = false;
                    if name_matches(pattern, host) {
                        return true;
                    }
                }
                GeneralName::IPAddress(bytes) => {
                    use_common_name = false;
                    let ip = match bytes.len() {
                        4 => <[u8; 4]>::try_from(*bytes).ok().map(std::net::IpAddr::from),
                        16 => <[u8; 16]>::try_from(*bytes).ok().map(std::net::IpAddr::from),
                        _ => None,
                    };
                    if ip.is_some() && ip == host_ip {
                        return true;
                    }
                }
                _ => {}
            }
        }
    }
    use_common_name
        && cert.subject().iter_common_name().filter_map(|cn| cn.as_str().ok()).any(|cn| name_matches(cn, host))
}

fn name_matches(pattern: &str, host: &str) -> bool {
    let (pattern, host) = (pattern.to_ascii_lowercase(), host.to_ascii_lowercase());
    match pattern.strip_prefix("*.") {
        Some(suffix) => host.split_once('.').is_some_and(|(label, rest)| {
            !label.is_empty() && rest == suffix && host.parse::<std::net::IpAddr>().is_err()
        }),
        None => pattern == host,
    }
}

/// A certificate's subject as OpenSSL's one-line form prints it: `/C=US/O=Example/CN=host`.
pub fn openssl_subject(cert: &x509_parser::certificate::X509Certificate<'_>) -> String {
    let registry = x509_parser::objects::oid_registry();
    cert.subject()
        .iter_attributes()
        .map(|attr| {
            let name = x509_parser::objects::oid2abbrev(attr.attr_type(), registry)
                .map(str::to_string)
                .unwrap_or_else(|_| attr.attr_type().to_id_string());
            format!("/{name}={}", attr.as_str().unwrap_or_default())
        })
        .collect()
}

/// The first certificate of a PEM file's `notAfter`, in Unix seconds.
pub fn pem_not_after(path: &str) -> Result<i64, String> {
    let pem = std::fs::read(path).map_err(|e| e.to_string())?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).map_err(|e| e.to_string())?;
    let cert = pem.parse_x509().map_err(|e| e.to_string())?;
    Ok(cert.validity().not_after.timestamp())
}

/// A time as Ruby's `Time#to_s` prints a UTC time: `2027-01-31 10:00:00 UTC`.
pub fn ruby_time(epoch: i64) -> String {
    chrono::DateTime::from_timestamp(epoch, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}
