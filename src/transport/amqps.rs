//! TLS to the broker (`amqps`), with rustls.
//!
//! sensu-client (EventMachine `start_tls`) does **not** verify the broker's certificate
//! unless `verify_peer` is set, and many deployments rely on that with self-signed
//! brokers. Concierge keeps that default for compatibility (`verify: false`) and says so
//! in the log at every connect; set `verify: true` (`CONCIERGE_TLS_VERIFY=true`) to check
//! the chain against the system roots plus `ca`/`ca_file`. Even unverified, the handshake
//! signature is checked, so the broker must hold the key of the certificate it shows.

use std::sync::Arc;

use crate::config::brokers::TlsOptions;
use rustls::ClientConfig;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[error("TLS {what}: {problem}")]
pub struct TlsError {
    what: &'static str,
    problem: String,
}

fn err(what: &'static str, problem: impl ToString) -> TlsError {
    TlsError { what, problem: problem.to_string() }
}

fn pem(inline: &Option<String>, file: &Option<String>, what: &'static str) -> Result<Option<Vec<u8>>, TlsError> {
    if let Some(text) = inline {
        return Ok(Some(text.as_bytes().to_vec()));
    }
    match file {
        Some(path) => std::fs::read(path).map(Some).map_err(|e| err(what, format!("{path}: {e}"))),
        None => Ok(None),
    }
}

fn certs(bytes: &[u8], what: &'static str) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, TlsError> {
    crate::pki::certs_from_pem(bytes).map_err(|e| err(what, e))
}

/// Build the rustls client configuration for these options.
pub fn client_config(options: &TlsOptions) -> Result<ClientConfig, TlsError> {
    let provider = crate::pki::provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| err("protocol versions", e))?;
    let builder = if options.verify {
        let ca = pem(&options.ca, &options.ca_file, "ca")?;
        let roots = crate::pki::roots_with(ca.as_deref()).map_err(|e| err("ca", e))?;
        if roots.is_empty() {
            return Err(err("verify", "no trusted roots: install ca-certificates or set ca_file"));
        }
        builder.with_root_certificates(roots)
    } else {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(crate::pki::NoChainVerification(provider)))
    };
    let chain = pem(&options.cert_chain, &options.cert_chain_file, "cert_chain")?;
    let key = pem(&options.private_key, &options.private_key_file, "private_key")?;
    match (chain, key) {
        (Some(chain), Some(key)) => {
            let key = PrivateKeyDer::from_pem_slice(&key).map_err(|e| err("private_key", e))?;
            builder.with_client_auth_cert(certs(&chain, "cert_chain")?, key).map_err(|e| err("client certificate", e))
        }
        (None, None) => Ok(builder.with_no_client_auth()),
        (Some(_), None) => Err(err("private_key", "a client certificate needs a private key")),
        (None, Some(_)) => Err(err("cert_chain", "a private key needs a client certificate")),
    }
}
