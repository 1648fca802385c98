//! The built-in TLS certificate check against real TLS servers on loopback, with rcgen
//! certificates: valid, expired, expiring soon, self-signed, wrong host, with an
//! intermediate that expires before the leaf.

mod support;

use concierge::proto::Object;
use serde_json::{Value, json};
use support::web::{CertKind, TestCa, TlsOnlyServer};
use support::{assert_output, obj, output};

async fn tls(params: Value) -> Object {
    let executor = support::executor::with_builtins();
    executor.process(obj(json!({"name": "cert", "extension": "tls", "tls": params, "issued": 1}))).await.unwrap()
}

struct Fixture {
    ca: TestCa,
}

impl Fixture {
    fn new() -> Self {
        Self { ca: TestCa::new("Concierge TLS Test CA") }
    }

    async fn server(&self, kind: CertKind) -> TlsOnlyServer {
        TlsOnlyServer::start(&self.ca.issue(kind)).await
    }

    fn params(&self, server: &TlsOnlyServer, extra: Value) -> Value {
        let mut p = json!({"host": "localhost", "port": server.port, "ca": self.ca.cert_pem});
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        p
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_certificate_reports_days_chain_and_names() {
    let f = Fixture::new();
    let server = f.server(CertKind::Valid).await;
    let r = tls(f.params(&server, json!({}))).await;
    assert_eq!(r["status"], 0, "{}", output(&r));
    assert_output(
        &r,
        r"^TLS OK: localhost:\d+ certificate expires in (59|60) days \(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\); chain verified; subject CN=localhost issued by CN=Concierge TLS Test CA, O=Concierge tests \[DNS:localhost, IP:127\.0\.0\.1\] \| days_left=(59|60);14;7;0 leaf_days_left=(59|60);;;0 earliest_days_left=(59|60);;;0 dns=[\d.]+s;;;0 connect=[\d.]+s;;;0 tls=[\d.]+s;;;0 total=[\d.]+s;;;0\n$",
    );
    assert_eq!(r["probe"]["verified"], true);
    assert_eq!(r["probe"]["leaf"]["sans"], json!(["DNS:localhost", "IP:127.0.0.1"]));
    assert_eq!(r["probe"]["chain_length"], 1);
    assert!(r["timings"]["tls"].as_f64().unwrap() > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_thresholds_default_to_14_and_7_days() {
    let f = Fixture::new();
    let soon = f.server(CertKind::ExpiresInDays(3)).await;
    let r = tls(f.params(&soon, json!({}))).await;
    assert_eq!((r["status"].clone(), r["reason"].clone()), (json!(2), json!("cert_expiry")));
    assert_output(&r, r"^TLS CRITICAL: localhost:\d+ certificate expires in [23] days ");
    let ten = f.server(CertKind::ExpiresInDays(10)).await;
    let r = tls(f.params(&ten, json!({}))).await;
    assert_eq!((r["status"].clone(), r["reason"].clone()), (json!(1), json!("cert_expiry")));
    let r = tls(f.params(&ten, json!({"warning": 5, "critical": 2}))).await;
    assert_eq!(r["status"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_self_signed_and_wrong_host_complete_the_handshake() {
    let f = Fixture::new();
    let expired = f.server(CertKind::Expired).await;
    let r = tls(f.params(&expired, json!({}))).await;
    assert_eq!((r["status"].clone(), r["reason"].clone()), (json!(2), json!("cert_expiry")));
    assert_output(
        &r,
        r"^TLS CRITICAL: localhost:\d+ certificate expired 1 day ago \(.*\); chain does not verify: certificate expired;",
    );
    let days_left = r["probe"]["leaf"]["days_left"].as_f64().unwrap();
    assert!((-1.26..=-1.24).contains(&days_left), "{days_left}");
    assert_output(&r, r"\| days_left=-2;14;7;0 leaf_days_left=-2;;;0 ");

    let self_signed = f.server(CertKind::SelfSigned).await;
    let r = tls(f.params(&self_signed, json!({}))).await;
    assert_eq!((r["status"].clone(), r["reason"].clone()), (json!(2), json!("tls_verify")));
    assert_output(&r, r"certificate expires in (59|60) days .*; chain does not verify: unknown issuer");
    assert_eq!(r["probe"]["verify_error"], "unknown issuer (self-signed or untrusted CA)");
    // Policy: verification failures not critical.
    let r = tls(f.params(&self_signed, json!({"verify": false}))).await;
    assert_eq!(r["status"], 0, "{}", output(&r));
    assert_eq!(r["probe"]["verified"], false);

    let wrong = f.server(CertKind::WrongHost).await;
    let r = tls(f.params(&wrong, json!({}))).await;
    assert_eq!(r["reason"], "tls_verify");
    assert_output(
        &r,
        r"chain does not verify: certificate not valid for this name; subject CN=other\.invalid .*\[DNS:other\.invalid\]",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intermediate_expiring_first_and_the_scope_policy() {
    let f = Fixture::new();
    let server = f.server(CertKind::WithIntermediate).await;
    let r = tls(f.params(&server, json!({}))).await;
    assert_eq!(r["status"], 0, "scope leaf: {}", output(&r));
    assert_output(
        &r,
        r"certificate expires in (59|60) days .*; earliest in chain: CN=Concierge TLS Test CA Intermediate, O=Concierge tests expires in [45] days \(.*\); chain verified;",
    );
    assert_eq!(r["probe"]["earliest"]["position"], 1);
    assert_eq!(r["probe"]["chain_length"], 2);
    assert_output(&r, r"\| days_left=(59|60);14;7;0 leaf_days_left=(59|60);;;0 earliest_days_left=[45];;;0 ");
    let r = tls(f.params(&server, json!({"scope": "chain"}))).await;
    assert_eq!((r["status"].clone(), r["reason"].clone()), (json!(2), json!("cert_expiry")));
    assert_output(
        &r,
        r"^TLS CRITICAL: localhost:\d+ chain expires in [45] days \(.*\) \[certificate 1: CN=Concierge TLS Test CA Intermediate, O=Concierge tests\];",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pem_files_connection_failures_and_bad_parameters() {
    let f = Fixture::new();
    let dir = tempfile::tempdir().unwrap();
    let cert = f.ca.issue(CertKind::ExpiresInDays(10));
    let path = dir.path().join("cert.pem");
    std::fs::write(&path, &cert.chain_pem).unwrap();
    let r = tls(json!({"file": path})).await;
    assert_eq!((r["status"].clone(), r["reason"].clone()), (json!(1), json!("cert_expiry")));
    assert_output(
        &r,
        &format!("^TLS WARNING: {} certificate expires in (9|10) days ", regex::escape(path.to_str().unwrap())),
    );
    let r = tls(json!({"file": "/nonexistent.pem"})).await;
    assert_eq!(r["status"], 3);
    let r = tls(json!({"host": "127.0.0.1", "port": 1})).await;
    assert_eq!((r["status"].clone(), r["reason"].clone()), (json!(2), json!("connect")));
    assert_output(&r, r"^TLS CRITICAL: 127\.0\.0\.1:1: cannot connect: ");
    // A plain TCP listener that never speaks TLS: the handshake times out.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let r = tls(json!({"host": "127.0.0.1", "port": port, "timeout": 0.3})).await;
    assert_eq!(r["reason"], "timeout");
    for (params, message) in [
        (json!({}), "either host or file is required"),
        (json!({"host": "h", "warning": 1, "critical": 5}), "must not be more days than warning"),
        (json!({"host": "h", "port": "x"}), "invalid type"),
        (json!({"host": "h", "timeout": 1e20}), "timeout 100000000000000000000 is too large"),
    ] {
        let r = tls(params).await;
        assert_eq!(r["status"], 3);
        assert!(output(&r).contains(message), "{}", output(&r));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_runs_the_same_check() {
    let f = Fixture::new();
    let server = f.server(CertKind::Valid).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = f.ca.write_pem(dir.path().join("ca.pem"));
    let out = support::bin::run_async(dir.path(), &["tls", &server.host_port(), "--ca", ca.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("TLS OK: localhost:"));
    let out = support::bin::run_async(dir.path(), &["tls", &server.host_port()]).await;
    assert_eq!(out.status.code(), Some(2), "unknown CA is critical by default");
}
