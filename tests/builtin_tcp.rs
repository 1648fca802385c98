//! The built-in TCP check against real servers on loopback: a banner server, an echo
//! server, a silent server, a closed port, and a TLS server with an rcgen certificate —
//! through the executor (the fleet's path) and through `concierge tcp`.

mod support;

use concierge::proto::Object;
use serde_json::{Value, json};
use support::tcp::{closed_port, server};
use support::web::{CertKind, TestCa, TlsOnlyServer};
use support::{assert_output, obj, output};

async fn tcp(params: Value) -> Object {
    let executor = support::executor::with_builtins();
    executor.process(obj(json!({"name": "port", "extension": "tcp", "tcp": params, "issued": 1}))).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_banner_is_read_and_matched() {
    let port = server("SSH-2.0-ConciergeTest\r\n", None);
    let r = tcp(json!({"host": "127.0.0.1", "port": port, "expect": "^SSH-2\\.0-"})).await;
    assert_eq!(r["status"], 0, "{}", output(&r));
    assert_output(
        &r,
        &format!(
            r#"^TCP OK: 127\.0\.0\.1:{port} connected in [\d.]+ s, response "SSH-2\.0-ConciergeTest" \| time=[\d.]+s;;;0 dns=[\d.]+s;;;0 connect=[\d.]+s;;;0 response=[\d.]+s;;;0\n$"#
        ),
    );
    assert_eq!(r["probe"]["response"], "SSH-2.0-ConciergeTest");
    assert!(r["timings"]["connect"].as_f64().unwrap() > 0.0);
    // Not the banner expected: critical, reason `expect`.
    let r = tcp(json!({"host": "127.0.0.1", "port": port, "expect": "^220 "})).await;
    assert_eq!((r["status"].clone(), r["reason"].clone()), (json!(2), json!("expect")), "{}", output(&r));
    assert_output(
        &r,
        &format!(
            r#"^TCP CRITICAL: 127\.0\.0\.1:{port}: the response does not match /\^220 /: "SSH-2\.0-ConciergeTest" \|"#
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_expect_quit() {
    let port = server("", Some(("PING\n", "PONG\n")));
    let r = tcp(json!({"host": "127.0.0.1", "port": port, "send": "PING\n", "expect": "PONG", "quit": "QUIT\n"})).await;
    assert_eq!(r["status"], 0, "{}", output(&r));
    assert!(output(&r).contains(r#"response "PONG""#), "{}", output(&r));
    // A plain connect: OK without reading anything.
    let r = tcp(json!({"host": "127.0.0.1", "port": port})).await;
    assert_eq!(r["status"], 0, "{}", output(&r));
    assert_output(&r, &format!(r"^TCP OK: 127\.0\.0\.1:{port} connected in [\d.]+ s \| time="));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_silent_and_slow_ports_say_why() {
    let port = closed_port();
    let r = tcp(json!({"host": "127.0.0.1", "port": port})).await;
    assert_eq!((r["status"].clone(), r["reason"].clone()), (json!(2), json!("connect")), "{}", output(&r));
    assert_output(
        &r,
        &format!(r"^TCP CRITICAL: 127\.0\.0\.1:{port}: cannot connect: 127\.0\.0\.1:{port}: Connection refused"),
    );
    // A server that never answers what is expected: a timeout naming the phase.
    let silent = server("", Some(("never", "")));
    let r = tcp(json!({"host": "127.0.0.1", "port": silent, "expect": "hello", "timeout": 0.5})).await;
    assert_eq!((r["status"].clone(), r["reason"].clone()), (json!(2), json!("timeout")), "{}", output(&r));
    assert_output(&r, &format!(r"^TCP CRITICAL: 127\.0\.0\.1:{silent}: no response within 0\.5 s"));
    // Slower than the warning threshold: warning, reason `latency`, threshold in the perfdata.
    let r = tcp(json!({"host": "127.0.0.1", "port": silent, "warning": 0.00001})).await;
    assert_eq!((r["status"].clone(), r["reason"].clone()), (json!(1), json!("latency")), "{}", output(&r));
    assert_output(&r, r"^TCP WARNING: .* \| time=[\d.]+s;0\.00001;;0 ");
    // Unusable parameters: unknown, naming them.
    let r = tcp(json!({"host": "127.0.0.1", "port": 0})).await;
    assert_eq!(r["status"], 3);
    assert_output(&r, r"^TCP UNKNOWN: invalid parameters: port must be 1 to 65535\n$");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_after_connecting_verifies_the_certificate() {
    let ca = TestCa::new("Concierge TCP Test CA");
    let server = TlsOnlyServer::start(&ca.issue(CertKind::Valid)).await;
    let trusted = json!({"host": "localhost", "port": server.port, "tls": {"ca": ca.cert_pem}});
    let r = tcp(trusted).await;
    assert_eq!(r["status"], 0, "{}", output(&r));
    assert_output(
        &r,
        &format!(r"^TCP OK: localhost:{} connected over TLS in [\d.]+ s \|.* tls=[\d.]+s;;;0", server.port),
    );
    let r = tcp(json!({"host": "localhost", "port": server.port, "tls": true})).await;
    assert_eq!((r["status"].clone(), r["reason"].clone()), (json!(2), json!("tls_handshake")), "{}", output(&r));
    let r = tcp(json!({"host": "localhost", "port": server.port, "tls": {"insecure": true}})).await;
    assert_eq!(r["status"], 0, "{}", output(&r));
}

#[test]
fn the_command_line_runs_the_same_check() {
    let port = server("220 smtp.test ESMTP\r\n", Some(("QUIT", "221 bye\r\n")));
    let run = |args: &[&str]| {
        let out = support::bin::concierge().arg("tcp").args(args).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).to_string())
    };
    let target = format!("127.0.0.1:{port}");
    let (code, stdout) = run(&[&target, "-e", "^220 ", "-q", "QUIT\\r\\n"]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.starts_with(&format!("TCP OK: {target} connected in ")), "{stdout}");
    let (code, stdout) = run(&[&format!("127.0.0.1:{}", closed_port())]);
    assert_eq!(code, Some(2), "{stdout}");
    assert!(stdout.starts_with("TCP CRITICAL: "), "{stdout}");
    let (code, _) = run(&["127.0.0.1"]);
    assert_eq!(code, Some(3), "no port is a usage problem");
    let (code, stdout) = run(&[&target, "--json"]);
    assert_eq!(code, Some(0));
    let result: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(result["check"]["extension"], "tcp");
    assert!(result["check"]["timings"]["connect"].as_f64().is_some());
}
