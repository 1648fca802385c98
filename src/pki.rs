//! rustls plumbing shared by the broker connection and the built-in checks: the crypto
//! provider, trusted roots, PEM loading, and the two non-default verifiers.

use std::sync::{Arc, Mutex, OnceLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

/// The one crypto provider (aws-lc-rs), shared.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER.get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider())).clone()
}

/// The system's trusted roots, loaded once (`ca-certificates`).
pub fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut roots = RootCertStore::empty();
            for cert in system_root_certs().iter() {
                let _ = roots.add(cert.clone());
            }
            Arc::new(roots)
        })
        .clone()
}

/// The system's trusted certificates themselves (their dates too), read once.
pub fn system_root_certs() -> Arc<Vec<CertificateDer<'static>>> {
    static CERTS: OnceLock<Arc<Vec<CertificateDer<'static>>>> = OnceLock::new();
    CERTS.get_or_init(|| Arc::new(rustls_native_certs::load_native_certs().certs)).clone()
}

/// The system roots plus the certificates in `extra_pem`. A check that names a CA runs the
/// same few CA documents again and again, and copying the system store (some 150 anchors)
/// for each run cost more than the handshake's own verification: the stores built for the
/// last [`ROOT_SETS`] documents (up to [`ROOT_SET_DOCUMENT_LIMIT`] bytes each) are kept,
/// keyed by the document itself, so an edited CA file counts at its next run.
pub fn roots_with(extra_pem: Option<&[u8]>) -> Result<Arc<RootCertStore>, String> {
    let Some(pem) = extra_pem else { return Ok(system_roots()) };
    let lock = || root_stores().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, roots)) = lock().iter().find(|(key, _)| key.as_slice() == pem) {
        return Ok(roots.clone());
    }
    let mut roots = (*system_roots()).clone();
    for cert in certs_from_pem(pem)? {
        roots.add(cert).map_err(|e| format!("CA certificate: {e}"))?;
    }
    let roots = Arc::new(roots);
    if pem.len() <= ROOT_SET_DOCUMENT_LIMIT {
        let mut cache = lock();
        if let Some((_, kept)) = cache.iter().find(|(key, _)| key.as_slice() == pem) {
            return Ok(kept.clone());
        }
        if cache.len() >= ROOT_SETS {
            cache.remove(0);
        }
        cache.push((pem.to_vec(), roots.clone()));
    }
    Ok(roots)
}

/// How many CA documents' root stores [`roots_with`] keeps.
pub const ROOT_SETS: usize = 16;

/// The largest CA document whose root store [`roots_with`] keeps (a whole system bundle is
/// about 220 KB): what is kept stays within a few MB, whatever the checks name.
pub const ROOT_SET_DOCUMENT_LIMIT: usize = 512 * 1024;

/// Root stores built by [`roots_with`], oldest first, each with the document it was built from.
type RootStores = Mutex<Vec<(Vec<u8>, Arc<RootCertStore>)>>;

fn root_stores() -> &'static RootStores {
    static STORES: OnceLock<RootStores> = OnceLock::new();
    STORES.get_or_init(RootStores::default)
}

/// Every certificate in a PEM document (at least one).
pub fn certs_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no PEM certificate found".into());
    }
    Ok(certs)
}

/// The handshake signature check both verifiers keep, whatever they do with the chain.
fn check_signature(
    provider: &CryptoProvider,
    tls13: bool,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    let algorithms = &provider.signature_verification_algorithms;
    if tls13 {
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    } else {
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }
}

/// Accepts any certificate chain but still checks that the handshake was signed by the
/// certificate's key (sensu-client's unverified TLS, and `insecure: true` in checks).
#[derive(Debug)]
pub struct NoChainVerification(pub Arc<CryptoProvider>);

impl ServerCertVerifier for NoChainVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        check_signature(&self.0, false, message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        check_signature(&self.0, true, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Verifies like webpki but never fails the handshake: it records the verdict, so a
/// certificate check can complete the handshake with an expired, self-signed or
/// wrong-host certificate and still report why the chain does not verify.
#[derive(Debug)]
pub struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    provider: Arc<CryptoProvider>,
    verdict: Mutex<Option<Result<(), rustls::Error>>>,
}

impl RecordingVerifier {
    /// A recorder verifying against `roots`.
    pub fn new(roots: Arc<RootCertStore>) -> Result<Arc<Self>, String> {
        let provider = provider();
        let inner = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| format!("certificate verifier: {e}"))?;
        Ok(Arc::new(Self { inner, provider, verdict: Mutex::new(None) }))
    }

    /// What verification said (None if no certificate was seen).
    pub fn verdict(&self) -> Option<Result<(), rustls::Error>> {
        self.verdict.lock().ok().and_then(|v| v.clone())
    }
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
        if let Ok(mut slot) = self.verdict.lock() {
            *slot = Some(verdict.map(|_| ()));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        check_signature(&self.provider, false, message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        check_signature(&self.provider, true, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// A short, stable description of a rustls certificate error.
pub fn describe_cert_error(error: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match error {
        rustls::Error::InvalidCertificate(e) => match e {
            C::Expired | C::ExpiredContext { .. } => "certificate expired".into(),
            C::NotValidYet | C::NotValidYetContext { .. } => "certificate not valid yet".into(),
            C::UnknownIssuer => "unknown issuer (self-signed or untrusted CA)".into(),
            C::NotValidForName | C::NotValidForNameContext { .. } => "certificate not valid for this name".into(),
            C::BadSignature => "bad certificate signature".into(),
            // webpki reports the last candidate it tried; with no trusted issuer at all that
            // can be a key-type mismatch against an unrelated root.
            C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. }
            | C::UnsupportedSignatureAlgorithmContext { .. } => "unknown issuer (self-signed or untrusted CA)".into(),
            C::Revoked => "certificate revoked".into(),
            other => format!("invalid certificate: {other:?}"),
        },
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca_pem(name: &str) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().expect("key");
        params.self_signed(&key).expect("certificate").pem().into_bytes()
    }

    #[test]
    fn root_stores_are_kept_per_ca_document() {
        let (a, b) = (ca_pem("roots test A"), ca_pem("roots test B"));
        let system = system_roots().len();
        let first = roots_with(Some(&a)).expect("A");
        assert_eq!(first.len(), system + 1);
        assert!(Arc::ptr_eq(&first, &roots_with(Some(&a)).expect("A again")), "the same document reuses its store");
        let other = roots_with(Some(&b)).expect("B");
        assert!(!Arc::ptr_eq(&first, &other), "another document gets its own store");
        let both = [a.clone(), b.clone()].concat();
        assert_eq!(roots_with(Some(&both)).expect("A and B").len(), system + 2, "an edited document counts");
        assert!(Arc::ptr_eq(&roots_with(None).expect("system"), &system_roots()));
        assert!(roots_with(Some(b"not a certificate")).is_err());
        for i in 0..ROOT_SETS + 2 {
            roots_with(Some(&ca_pem(&format!("roots test {i}")))).expect("many");
        }
        assert!(root_stores().lock().expect("lock").len() <= ROOT_SETS, "the cache is bounded");
        let large = [a.clone(), vec![b'\n'; ROOT_SET_DOCUMENT_LIMIT]].concat();
        let first = roots_with(Some(&large)).expect("large");
        assert_eq!(first.len(), system + 1);
        assert!(!Arc::ptr_eq(&first, &roots_with(Some(&large)).expect("large again")), "a large document is not kept");
    }
}
