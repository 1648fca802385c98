//! The certificate a TLS server presents, for the certificate-expiry plugins: connect (every
//! address in resolver order), handshake with or without verification, and read the leaf's
//! `notAfter`.

use std::time::Duration;

use crate::checks::net::{self, CheckTls};

/// The leaf certificate's `notAfter`, in Unix seconds, or why there is none.
pub async fn not_after(host: &str, port: u16, server_name: &str, verify: bool, limit: Duration) -> Result<i64, String> {
    let handshake = async {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<_> = tokio::net::lookup_host((host, port)).await.map_err(|e| e.to_string())?.collect();
        let mut last = String::from("no address");
        let mut connected = None;
        for addr in addrs {
            match tokio::net::TcpStream::connect(addr).await {
                Ok(tcp) => {
                    connected = Some(tcp);
                    break;
                }
                Err(e) => last = e.to_string(),
            }
        }
        let tcp = connected.ok_or(last)?;
        let tls = CheckTls { insecure: !verify, ..CheckTls::default() };
        let config = net::client_config(&tls, false).map_err(|f| f.message)?;
        let name = rustls::pki_types::ServerName::try_from(
            server_name.trim_start_matches('[').trim_end_matches(']').to_string(),
        )
        .map_err(|e| e.to_string())?;
        let stream = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await.map_err(|e| e.to_string())?;
        let leaf = stream.get_ref().1.peer_certificates().and_then(|c| c.first()).ok_or("no certificate")?.to_vec();
        let (_, cert) = x509_parser::parse_x509_certificate(&leaf).map_err(|e| e.to_string())?;
        Ok(cert.validity().not_after.timestamp())
    };
    tokio::time::timeout(limit, handshake).await.unwrap_or_else(|_| Err("timed out".into()))
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
