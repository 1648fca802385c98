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
        let tcp = super::connect_any(host, port, None).await.map_err(|e| match e {
            super::ConnectError::Resolve(why) => ChainError::Other(format!("getaddrinfo: {why}")),
            super::ConnectError::Connect(error) => ChainError::Connect(error),
        })?;
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

/// Ruby's `OpenSSL::SSL.verify_hostname` (2.4 to 3.x): ASCII only, labels compared ignoring
/// case, a `*` allowed in the left-most label only, where it stands for at least one
/// character (`*`, `f*`, `*o`, `f*o`), and not inside an `xn--` label unless it is the
/// whole label.
fn name_matches(san: &str, hostname: &str) -> bool {
    if !san.is_ascii() || !hostname.is_ascii() {
        return false;
    }
    // Ruby's `split(".")`: trailing empty fields dropped.
    let split = |text: &str| -> Vec<String> {
        let mut parts: Vec<String> = text.to_ascii_lowercase().split('.').map(str::to_string).collect();
        while parts.last().is_some_and(String::is_empty) {
            parts.pop();
        }
        parts
    };
    let san_parts = split(san);
    if san_parts.len() < 2 {
        return san == hostname;
    }
    let host_parts = split(hostname);
    if san_parts.len() != host_parts.len() || !wildcard_matches(&host_parts[0], &san_parts[0]) {
        return false;
    }
    san_parts[1..] == host_parts[1..]
}

/// Ruby's `verify_wildcard` for one label.
fn wildcard_matches(domain: &str, san: &str) -> bool {
    let parts: Vec<&str> = san.split('*').collect();
    match parts.as_slice() {
        [whole] => *whole == domain,
        [prefix, suffix] => {
            !(domain.starts_with("xn--") && san != "*")
                && prefix.len() + suffix.len() < domain.len()
                && domain.starts_with(prefix)
                && domain.ends_with(suffix)
        }
        _ => false,
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

/// The `notAfter` of the certificate in a file, PEM (the first one) or DER, as
/// `OpenSSL::X509::Certificate.new` reads either, in Unix seconds.
pub async fn file_not_after(path: &str) -> Result<i64, String> {
    let bytes = super::read_small_file(path).await?;
    let not_after = |der: &[u8]| {
        x509_parser::parse_x509_certificate(der)
            .map(|(_, c)| c.validity().not_after.timestamp())
            .map_err(|e| e.to_string())
    };
    match x509_parser::pem::parse_x509_pem(&bytes) {
        Ok((_, pem)) => not_after(&pem.contents),
        Err(_) => not_after(&bytes),
    }
}

/// A time as Ruby's `Time#to_s` prints a UTC time: `2027-01-31 10:00:00 UTC`.
pub fn ruby_time(epoch: i64) -> String {
    chrono::DateTime::from_timestamp(epoch, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_as_ruby_matches_them() {
        for (pattern, host, want) in [
            ("localhost", "LOCALHOST", false),
            ("WWW.Example.com", "www.example.COM", true),
            ("*.example.com", "www.example.com", true),
            ("*.example.com", "a.b.example.com", false),
            ("*.example.com", "example.com", false),
            ("f*.example.com", "foo.example.com", true),
            ("f*o.example.com", "fo.example.com", false),
            ("*.com", "example.com", true),
            ("www.*.com", "www.example.com", false),
            ("*.example.com", "xn--bcher-kva.example.com", true),
            ("x*.example.com", "xn--bcher-kva.example.com", false),
        ] {
            assert_eq!(name_matches(pattern, host), want, "{pattern} {host}");
        }
    }
}
