//! The built-in HTTP check against real HTTP/HTTPS servers on loopback, through the
//! executor (as a request from the fleet is run) and through the CLI.

mod support;

use concierge::checks::Executor;
use concierge::proto::Object;
use serde_json::{Value, json};
use support::web::{CertKind, TestCa, TestServer};
use support::{assert_output, obj, output};

fn executor() -> Executor {
    support::executor::Builder::default()
        .client(json!({"name": "probe-1", "site": {"base": "http://127.0.0.1"}}))
        .spawn_limit(2)
        .builtins()
        .build()
}

async fn http(params: Value) -> Object {
    executor().process(obj(json!({"name": "api", "extension": "http", "http": params, "issued": 1}))).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ok_with_every_phase_in_output_and_attributes() {
    let server = TestServer::http().await;
    let r = http(json!({"url": server.url_for("/ok")})).await;
    assert_eq!(r["status"], 0);
    assert_output(
        &r,
        r"^HTTP OK: 200 in \d+\.\d{3} s, 15 bytes \| time=[\d.]+s;;;0 dns=0s;;;0 connect=[\d.]+s;;;0 ttfb=[\d.]+s;;;0 transfer=[\d.]+s;;;0 size=15B;;;0 status_code=200;;;0\n$",
    );
    let timings = r["timings"].as_object().unwrap();
    assert_eq!(timings.keys().collect::<Vec<_>>(), ["dns", "connect", "ttfb", "transfer", "total"]);
    assert_eq!(r["probe"]["status_code"], 200);
    assert_eq!(r["probe"]["bytes"], 15);
    assert_eq!(r["probe"]["redirects"], 0);
    assert!(r.get("reason").is_none());
    assert!(r["executed"].is_i64() && r["duration"].is_f64());
    // The request went out with the connection, once.
    assert_eq!((server.connections(), server.requests()), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_codes() {
    let server = TestServer::http().await;
    let r = http(json!({"url": server.url_for("/status/503")})).await;
    assert_eq!(r["status"], 2);
    assert_eq!(r["reason"], "status");
    assert_output(&r, r"^HTTP CRITICAL: 503 in \d+\.\d{3} s, 10 bytes \(expected status 200-399\) \|");
    let r = http(json!({"url": server.url_for("/status/503"), "status": ["5xx"]})).await;
    assert_eq!(r["status"], 0);
    let r = http(json!({"url": server.url_for("/status/404"), "status": [200, "201-299"]})).await;
    assert_output(&r, r"\(expected status 200,201-299\)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects() {
    let server = TestServer::http().await;
    // Not followed by default: a 302 is accepted as the answer (2xx/3xx).
    let r = http(json!({"url": server.url_for("/redirect/0")})).await;
    assert_eq!(r["status"], 0);
    assert_eq!(r["probe"]["status_code"], 302);
    let r = http(json!({"url": server.url_for("/redirect/1"), "follow_redirects": true})).await;
    assert_eq!(r["status"], 0);
    assert_eq!(r["probe"]["status_code"], 200);
    assert_eq!(r["probe"]["redirects"], 2);
    assert!(r["probe"]["url"].as_str().unwrap().ends_with("/ok"));
    assert_output(&r, r"^HTTP OK: 200 in \d+\.\d{3} s, 15 bytes after 2 redirects \|");
    let r = http(json!({"url": server.url_for("/redirect/5"), "follow_redirects": true, "max_redirects": 2})).await;
    assert_eq!(r["status"], 2);
    assert_eq!(r["reason"], "redirects");
    assert_output(&r, r"^HTTP CRITICAL: more than 2 redirects \|");
}

// Where a redirect leads, and what goes there: locations resolved as RFC 3986 has them (a
// query naming a URL is a path on the same server); the probe's credentials and cookies only
// to its own origin (another port is another origin); after a 303 (or a 301/302 of a POST)
// a GET without the body, after a 307 the same POST and body. What `/echo` received is
// read through the body assertions, as a user would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_resolve_locations_and_keep_credentials_at_home() {
    let (home, other) = (TestServer::http().await, TestServer::http().await);
    let probe = |url: String, assertion: &str, pattern: &str| {
        http(json!({"url": url, "follow_redirects": true, "method": "post", "body": "payload",
            "user": "user", "password": "pass", "headers": {"Cookie": "session=1", "Content-Type": "text/plain"},
            assertion: pattern}))
    };
    let received = |url: String, fragments: &'static [&'static str], absent: &'static [&'static str]| async move {
        for fragment in fragments {
            let r = probe(url.clone(), "body_match", &regex::escape(fragment)).await;
            assert_eq!(r["status"], 0, "{fragment} not received from {url}: {}", output(&r));
        }
        for fragment in absent {
            let r = probe(url.clone(), "body_not_match", &regex::escape(fragment)).await;
            assert_eq!(r["status"], 0, "{fragment} received from {url}: {}", output(&r));
        }
    };
    const CREDENTIALS: &[&str] = &[r#""authorization":"Basic dXNlcjpwYXNz""#, r#""cookie":"session=1""#];
    received(
        home.url_for("/goto/307?/echo?next=http://127.0.0.1:9/"),
        &[r#""path":"/echo""#, r#""query":"next=http://127.0.0.1:9/""#, r#""method":"POST""#, r#""body":"payload""#],
        &[],
    )
    .await;
    received(home.url_for("/goto/307?/echo"), CREDENTIALS, &[]).await;

    let elsewhere = other.url_for("/echo");
    let r = probe(home.url_for(&format!("/goto/307?{elsewhere}")), "body_match", "").await;
    assert_eq!((r["status"].clone(), r["probe"]["url"].clone()), (json!(0), json!(elsewhere)), "{}", output(&r));
    assert!(other.requests() > 0, "the other server was not asked");
    let away = home.url_for(&format!("/goto/307?{elsewhere}"));
    received(away.clone(), &[r#""method":"POST""#, r#""body":"payload""#, r#""content-type":"text/plain""#], &[]).await;
    received(away, &[], &[r#""authorization""#, r#""cookie""#]).await;

    for code in [301, 302, 303] {
        let url = home.url_for(&format!("/goto/{code}?/echo"));
        received(url.clone(), &[r#""method":"GET""#, r#""body":"""#], &[r#""content-type""#, r#""content-length""#])
            .await;
        received(url, CREDENTIALS, &[]).await;
    }
    let r = probe(home.url_for("/goto/302?ftp://127.0.0.1/x"), "body_match", "").await;
    assert_eq!((r["status"].clone(), r["reason"].clone()), (json!(2), json!("redirects")));
    assert_output(&r, r#"^HTTP CRITICAL: redirect to "ftp://127\.0\.0\.1/x" not followed: only http and https are \|"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_and_header_assertions() {
    let server = TestServer::http().await;
    let url = server.url_for("/ok");
    assert_eq!(http(json!({"url": url, "body_match": "hello"})).await["status"], 0);
    let r = http(json!({"url": url, "body_match": "^bye"})).await;
    assert_eq!((r["status"].clone(), r["reason"].clone()), (json!(2), json!("body")));
    assert_output(&r, r"; body does not match /\^bye/ \|");
    let r = http(json!({"url": url, "body_not_match": "concierge"})).await;
    assert_eq!(r["reason"], "body");
    assert_output(&r, r"; body matches /concierge/ \|");
    assert_eq!(http(json!({"url": url, "headers_match": {"X-Test": "^yes$"}})).await["status"], 0);
    let r = http(json!({"url": url, "headers_match": {"X-Missing": "."}})).await;
    assert_eq!(r["reason"], "header");
    assert_output(&r, r"; header x-missing missing \|");
    let r = http(json!({"url": url, "headers_match": {"Content-Type": "json"}})).await;
    assert_output(&r, r"; header content-type does not match /json/ \|");
    let r = http(json!({"url": url, "headers_not_match": {"X-Test": "yes"}})).await;
    assert_output(&r, r"; header x-test matches /yes/ \|");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_headers_body_and_auth_are_sent() {
    let server = TestServer::http().await;
    let r = http(json!({
        "url": server.url_for("/echo"), "method": "post", "headers": {"X-Trace": "abc"},
        "body": "payload", "user": "user", "password": "pass"
    }))
    .await;
    assert_eq!(r["status"], 0, "{}", output(&r));
    // What the server received, checked through the body assertions as a user would.
    for fragment in [
        r#""method":"POST""#,
        r#""authorization":"Basic dXNlcjpwYXNz""#,
        r#""user-agent":"Sensu-HTTP-Check \(concierge\)""#,
        r#""x-trace":"abc""#,
        r#""body":"payload""#,
    ] {
        let r = http(json!({"url": server.url_for("/echo"), "method": "post", "headers": {"X-Trace": "abc"},
            "body": "payload", "user": "user", "password": "pass", "body_match": fragment}))
        .await;
        assert_eq!(r["status"], 0, "{}", output(&r));
    }
    let r = http(
        json!({"url": server.url_for("/echo"), "bearer_token": "t0k", "body_match": r#""authorization":"Bearer t0k""#}),
    )
    .await;
    assert_eq!(r["status"], 0, "{}", output(&r));
    // Host: the URL's authority (its port not the default), unless the check gives its own.
    let url = server.url_for("/echo");
    let authority = url.trim_start_matches("http://").split('/').next().unwrap().to_string();
    let r = http(json!({"url": url, "body_match": format!(r#""host":"{}""#, regex::escape(&authority))})).await;
    assert_eq!(r["status"], 0, "{}", output(&r));
    let r =
        http(json!({"url": url, "headers": {"Host": "api.example"}, "body_match": r#""host":"api\.example""#})).await;
    assert_eq!(r["status"], 0, "{}", output(&r));
    // A query without a path: the request target is `/?…` (the test server answers 404 there).
    let bare = format!("http://{authority}?q=1");
    let r = http(json!({"url": bare, "status": [404], "body_match": "^not found$"})).await;
    assert_eq!(r["status"], 0, "{}", output(&r));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_name_the_phase_and_timings_separate_ttfb_from_transfer() {
    let server = TestServer::http().await;
    let r = http(json!({"url": server.url_for("/delay/3000"), "timeout": 0.4})).await;
    assert_eq!((r["status"].clone(), r["reason"].clone()), (json!(2), json!("timeout")));
    assert_output(&r, r"^HTTP CRITICAL: timed out after 0\.4 s \(during ttfb\) \|");
    let r = http(json!({"url": server.url_for("/slowbody/3000"), "timeout": 0.4})).await;
    assert_output(&r, r"^HTTP CRITICAL: timed out after 0\.4 s \(during transfer\) \|");
    let r = http(json!({"url": server.url_for("/slowbody/1000")})).await;
    assert_eq!(r["status"], 0);
    let (ttfb, transfer) = (r["timings"]["ttfb"].as_f64().unwrap(), r["timings"]["transfer"].as_f64().unwrap());
    assert!(ttfb < 0.5 && transfer >= 0.5, "ttfb {ttfb}, transfer {transfer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_thresholds() {
    let server = TestServer::http().await;
    let r = http(json!({"url": server.url_for("/delay/300"), "warning": 0.1, "critical": 5})).await;
    assert_eq!((r["status"].clone(), r["reason"].clone()), (json!(1), json!("latency")));
    assert_output(&r, r"^HTTP WARNING: 200 in \d+\.\d{3} s, 5 bytes \(slower than 0\.1 s\) \| time=[\d.]+s;0\.1;5;0 ");
    let r = http(json!({"url": server.url_for("/delay/300"), "warning": 0.05, "critical": 0.1})).await;
    assert_eq!((r["status"].clone(), r["reason"].clone()), (json!(2), json!("latency")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_size_limit_connect_and_dns_failures() {
    let server = TestServer::http().await;
    let r = http(json!({"url": server.url_for("/bytes/2000"), "max_body_bytes": 1000})).await;
    assert_eq!(r["reason"], "body_size");
    assert_output(&r, r"^HTTP CRITICAL: 200: body larger than 1000 bytes \|");
    let r = http(json!({"url": "http://127.0.0.1:1/"})).await;
    assert_eq!((r["status"].clone(), r["reason"].clone()), (json!(2), json!("connect")));
    assert_output(&r, r"^HTTP CRITICAL: cannot connect: 127\.0\.0\.1:1: Connection refused");
    let r = http(json!({"url": server.url_for("/ok"), "ip": "ipv6"})).await;
    assert_eq!(r["reason"], "dns");
    assert_output(&r, r"^HTTP CRITICAL: 127\.0\.0\.1 is not an IPv6 address \|");
}

/// A raw server on loopback: each connection has its request read (up to the empty line),
/// gets `response` and is closed. Its port.
fn raw_server(response: &'static [u8]) -> u16 {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") && matches!(stream.read(&mut byte), Ok(1)) {
                request.push(byte[0]);
            }
            let _ = stream.write_all(response);
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_close_delimited_and_broken_responses() {
    let server = TestServer::http().await;
    let r = http(json!({"url": server.url_for("/chunked/300"), "body_match": "^chunk 0;chunk 1;.*chunk 299;$"})).await;
    assert_eq!(r["status"], 0, "{}", output(&r));
    let bytes: usize = (0..300).map(|i| format!("chunk {i};").len()).sum();
    assert_eq!(r["probe"]["bytes"], bytes);
    let r = http(json!({"url": server.url_for("/chunked/300"), "max_body_bytes": 2000})).await;
    assert_eq!(r["reason"], "body_size");
    assert_output(&r, r"^HTTP CRITICAL: 200: body larger than 2000 bytes \|");

    // HTTP/1.0 without a length: the body ends with the connection.
    let port = raw_server(b"HTTP/1.0 200 OK\r\nServer: raw\r\n\r\nuntil the end");
    let r = http(json!({"url": format!("http://127.0.0.1:{port}/"), "body_match": "^until the end$"})).await;
    assert_eq!(r["status"], 0, "{}", output(&r));
    assert_eq!(r["probe"]["bytes"], 13);
    for (response, expected) in [
        (b"".as_slice(), r"^HTTP CRITICAL: no HTTP response: the server closed the connection \|"),
        (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", r"^HTTP CRITICAL: invalid HTTP response: invalid HTTP version \|"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
            r"^HTTP CRITICAL: reading the body: the connection closed before the body was complete \|",
        ),
    ] {
        let port = raw_server(response);
        let r = http(json!({"url": format!("http://127.0.0.1:{port}/")})).await;
        assert_eq!((r["status"].clone(), r["reason"].clone()), (json!(2), json!("http")), "{}", output(&r));
        assert_output(&r, expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_certificates() {
    let ca = TestCa::new("Concierge HTTP Test CA");
    let dir = tempfile::tempdir().unwrap();
    let ca_file = ca.write_pem(dir.path().join("ca.pem"));
    let ca_file = ca_file.to_str().unwrap();
    let valid = TestServer::https(&ca.issue(CertKind::Valid)).await;
    let r = http(json!({"url": valid.url_for("/ok"), "tls": {"ca_file": ca_file}})).await;
    assert_eq!(r["status"], 0, "{}", output(&r));
    assert_output(&r, r" tls=[\d.]+s;;;0 ");
    assert!(r["timings"]["tls"].as_f64().unwrap() > 0.0);
    // A rotated CA file is read again on the next check (not at a restart): another CA's
    // file refuses the server, the right one back accepts it.
    let other = TestCa::new("Concierge Other Test CA");
    other.write_pem(dir.path().join("ca.pem"));
    let r = http(json!({"url": valid.url_for("/ok"), "tls": {"ca_file": ca_file}})).await;
    assert_eq!(r["reason"], "tls_verify", "{}", output(&r));
    ca.write_pem(dir.path().join("ca.pem"));
    let r = http(json!({"url": valid.url_for("/ok"), "tls": {"ca_file": ca_file}})).await;
    assert_eq!(r["status"], 0, "{}", output(&r));
    // Connecting by IP with the name given separately.
    let r = http(json!({"url": valid.ip_url.clone() + "/ok", "tls": {"ca": ca.cert_pem, "server_name": "localhost"}}))
        .await;
    assert_eq!(r["status"], 0, "{}", output(&r));
    // Without the CA the chain is unknown.
    let r = http(json!({"url": valid.url_for("/ok")})).await;
    assert_eq!(r["reason"], "tls_verify");
    assert_output(&r, r"^HTTP CRITICAL: TLS certificate not accepted: unknown issuer");
    assert!(r.get("probe").is_none(), "nothing was fetched");

    for (kind, message) in [
        (CertKind::Expired, "certificate expired"),
        (CertKind::SelfSigned, "unknown issuer"),
        (CertKind::WrongHost, "certificate not valid for this name"),
    ] {
        let server = TestServer::https(&ca.issue(kind)).await;
        let r = http(json!({"url": server.url_for("/ok"), "tls": {"ca_file": ca_file}})).await;
        assert_eq!((r["status"].clone(), r["reason"].clone()), (json!(2), json!("tls_verify")), "{kind:?}");
        assert_output(&r, &format!("^HTTP CRITICAL: TLS certificate not accepted: {message}"));
        let r = http(json!({"url": server.url_for("/ok"), "tls": {"insecure": true}})).await;
        assert_eq!(r["status"], 0, "insecure accepts {kind:?}: {}", output(&r));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_substituted_in_parameters() {
    let server = TestServer::http().await;
    let r = http(json!({"url": format!(":::site.base:::{}", &server.url[16..]) + "/ok"})).await;
    assert_eq!(r["status"], 0, "{}", output(&r));
    // The published check keeps the parameters as requested (tokens and all).
    assert!(r["http"]["url"].as_str().unwrap().starts_with(":::site.base:::"));
    let r = http(json!({"url": ":::missing.url:::"})).await;
    assert_eq!(r["status"], 3);
    assert_eq!(r["output"], "Unmatched client token(s): missing.url");
}

/// One executor runs a check definition again and again (a probe is compiled once for
/// equal parameters and kept): every change of its parameters, and only the parameters it
/// has now, count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_run_again_uses_its_current_parameters() {
    let server = TestServer::http().await;
    let executor = executor();
    let run = |params: Value| {
        let executor = &executor;
        async move {
            let r = executor
                .process(obj(json!({"name": "api", "extension": "http", "http": params, "issued": 1})))
                .await
                .unwrap();
            let url = r.get("probe").map_or(Value::Null, |p| p["url"].clone());
            (r["status"].as_i64().unwrap(), output(&r).to_string(), url)
        }
    };
    let ok = json!({"url": server.url_for("/ok")});
    let (status, _, url) = run(ok.clone()).await;
    assert_eq!((status, url), (0, json!(server.url_for("/ok"))));
    for _ in 0..2 {
        let (status, out, url) = run(json!({"url": server.url_for("/status/503")})).await;
        assert_eq!((status, url), (2, json!(server.url_for("/status/503"))), "{out}");
    }
    // Only the accepted statuses change: 503 is now OK.
    let (status, out, _) = run(json!({"url": server.url_for("/status/503"), "status": ["5xx"]})).await;
    assert_eq!(status, 0, "{out}");
    let (status, out, _) = run(json!({"url": server.url_for("/ok"), "body_match": "(("})).await;
    assert_eq!(status, 3, "{out}");
    let (status, out, _) = run(json!({"url": server.url_for("/ok"), "body_match": "nothing-like-this"})).await;
    assert!(status == 2 && out.contains("body does not match /nothing-like-this/"), "{out}");
    // A token's value is part of the parameters compiled.
    let (status, out, url) = run(json!({"url": format!(":::site.base:::{}", &server.url[16..]) + "/ok"})).await;
    assert_eq!((status, url), (0, json!(server.url_for("/ok"))), "{out}");
    let (status, _, url) = run(ok).await;
    assert_eq!((status, url), (0, json!(server.url_for("/ok"))));
}

/// The same parameters, from any check, are compiled once; others are compiled again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_is_compiled_once_for_equal_parameters() {
    use concierge::checks::{Builtin, BuiltinContext, http::Http};
    let server = TestServer::http().await;
    let http = Http::default();
    let run = |name: &str, params: Value| {
        let check = obj(json!({"name": name, "extension": "http", "http": params}));
        http.run(std::sync::Arc::new(check), BuiltinContext::default())
    };
    for name in ["a", "a", "b"] {
        assert_eq!(run(name, json!({"url": server.url_for("/ok"), "timeout": 5})).await.status, 0);
    }
    // Keys in another order are the same parameters.
    assert_eq!(run("c", json!({"timeout": 5, "url": server.url_for("/ok")})).await.status, 0);
    assert_eq!(http.compiles(), 1);
    let outcome = run("a", json!({"url": server.url_for("/status/503"), "timeout": 5})).await;
    assert_eq!((outcome.status, http.compiles()), (2, 2));
    // A probe with a regex is compiled for each run.
    for _ in 0..2 {
        assert_eq!(run("a", json!({"url": server.url_for("/ok"), "body_match": "."})).await.status, 0);
    }
    assert_eq!(http.compiles(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_type_prints_graphite_lines() {
    let server = TestServer::http().await;
    let r = executor()
        .process(obj(
            json!({"name": "api", "type": "metric", "extension": "http", "http": {"url": server.url_for("/ok")}}),
        ))
        .await
        .unwrap();
    let lines: Vec<&str> = output(&r).lines().collect();
    let names: Vec<&str> = lines.iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        names,
        [
            "probe-1.curl_timings.api.time",
            "probe-1.curl_timings.api.dns",
            "probe-1.curl_timings.api.connect",
            "probe-1.curl_timings.api.ttfb",
            "probe-1.curl_timings.api.transfer",
            "probe-1.curl_timings.api.size",
            "probe-1.curl_timings.api.status_code"
        ]
    );
    let ts = lines[0].split(' ').nth(2).unwrap();
    assert!(lines.iter().all(|l| l.ends_with(ts)), "one timestamp");
    assert!(lines[6].starts_with("probe-1.curl_timings.api.status_code 200 "));
    let r = executor()
        .process(obj(json!({"name": "api", "type": "metric", "extension": "http", "http": {"url": server.url_for("/ok"), "scheme": "eu.web"}})))
        .await
        .unwrap();
    assert!(output(&r).starts_with("eu.web.time "));
    // A given scheme is not among the probe's details, which keep their order.
    let keys: Vec<&String> = r["probe"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["status_code", "bytes", "url", "address", "redirects"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_parameters_are_unknown_not_panics() {
    for (params, message) in [
        (json!({}), "missing field `url`"),
        (json!({"url": "http://x", "body_match": "(("}), "body_match is not a valid regex"),
        (json!({"url": "http://x", "status": ["abc"]}), "status entry \"abc\""),
        (json!({"url": 5}), "invalid type"),
        (json!({"url": "http://x", "method": "GE T"}), "method is not a valid HTTP method"),
        (json!({"url": "http://x", "timeout": 1e20}), "timeout 100000000000000000000 is too large"),
    ] {
        let r = http(params.clone()).await;
        assert_eq!(r["status"], 3, "{params}");
        assert_eq!(r["reason"], "parameters");
        assert!(
            output(&r).starts_with("HTTP UNKNOWN: invalid parameters: ") && output(&r).contains(message),
            "{}",
            output(&r)
        );
    }
    let r = executor().process(obj(json!({"name": "api", "extension": "http"}))).await.unwrap();
    assert_eq!(r["output"], "HTTP UNKNOWN: invalid parameters: missing `http` object with the check's parameters\n");
}

#[test]
fn cli_runs_the_same_check() {
    let server = TestServer::http_blocking();
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| support::bin::run(dir.path(), args);
    let out = run(&["http", &server.url_for("/ok"), "--match", "hello", "--header-match", "X-Test: yes"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("HTTP OK: 200 in "));
    let out = run(&["http", &server.url_for("/status/500")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("HTTP CRITICAL: 500 in "));
    let out = run(&["http", &server.url_for("/echo"), "-X", "PUT", "--data", "x", "--json", "--name", "echo"]);
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["client"], "cli");
    assert_eq!(result["check"]["name"], "echo");
    assert_eq!(result["check"]["http"]["method"], "PUT");
    assert_eq!(result["check"]["probe"]["status_code"], 200);
}

/// Where the handshake does not complete inside `connect()`, the request waits for the
/// connection: here a listener whose accept queue (backlog 1) is full drops the check's SYN,
/// the client sends it again a second later, and by then the queue has room. The check
/// succeeds, and the wait is in its connect phase, not in the time to first byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_not_made_at_once_is_awaited_before_the_request() {
    use nix::sys::socket::{self, AddressFamily, Backlog, SockFlag, SockType, SockaddrIn};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fd = socket::socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).unwrap();
    socket::bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrIn::new(127, 0, 0, 1, 0)).unwrap();
    // Backlog 1: two connections fill the accept queue (with 0, kernels before 2025 count the
    // half-open queue as full too, and a filler's connect would never complete).
    socket::listen(&fd, Backlog::new(1).unwrap()).unwrap();
    let listener = std::net::TcpListener::from(fd);
    let addr = listener.local_addr().unwrap();
    let fillers: Vec<_> = (0..2)
        .map(|_| std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(5)).unwrap())
        .collect();
    listener.set_nonblocking(true).unwrap();
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    let server = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        for _ in 0..2 {
            drop(listener.accept().await.unwrap());
        }
        drop(fillers);
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut request = vec![0u8; 1024];
        let n = stream.read(&mut request).await.unwrap();
        stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok").await.unwrap();
        String::from_utf8_lossy(&request[..n]).into_owned()
    });
    let r = http(json!({"url": format!("http://{addr}/slow-accept"), "timeout": 5})).await;
    assert_eq!(r["status"], 0, "{}", output(&r));
    let request = server.await.unwrap();
    assert!(request.starts_with("GET /slow-accept HTTP/1.1\r\n"), "{request:?}");
    let connect = r["timings"]["connect"].as_f64().unwrap();
    let ttfb = r["timings"]["ttfb"].as_f64().unwrap();
    assert!(connect >= 0.3 && ttfb < connect, "connect {connect} s, ttfb {ttfb} s");
}

/// Read a request's head from `stream`: the bytes read (the head, and whatever followed it in
/// the same reads) and the head's length, its blank line included.
async fn read_head(stream: &mut tokio::net::TcpStream) -> (Vec<u8>, usize) {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before the head ended");
        got.extend_from_slice(&buf[..n]);
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            return (got, end + 4);
        }
    }
}

/// A body larger than the socket's send buffer: the part the first `send` took goes out with
/// the connection and the rest after it, each byte once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_body_is_sent_once_and_whole() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const BODY: usize = 8 << 20;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        // Read the head, then exactly the body it announces, then answer; whatever comes
        // after (until the client closes) would be a second copy.
        let (mut got, head_len) = read_head(&mut stream).await;
        let head = String::from_utf8_lossy(&got[..head_len]).to_ascii_lowercase();
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|v| v.trim().parse::<usize>().unwrap())
            .unwrap();
        let mut buf = vec![0u8; 1 << 16];
        while got.len() < head_len + length {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed after {} body bytes", got.len() - head_len);
            got.extend_from_slice(&buf[..n]);
        }
        stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok").await.unwrap();
        let mut more = Vec::new();
        let _ = stream.read_to_end(&mut more).await;
        (length, got.split_off(head_len), more.len())
    });
    let body: String = (0..BODY).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    let r = http(json!({"url": format!("http://{addr}/upload"), "method": "PUT", "body": body, "timeout": 10})).await;
    assert_eq!(r["status"], 0, "{}", output(&r));
    let (length, received, after) = server.await.unwrap();
    assert_eq!((length, received.len(), after), (BODY, BODY, 0));
    assert!(received.as_slice() == body.as_bytes(), "the body arrived changed");
}

/// A server that answers before reading the whole request and then stops reading (a 413 for
/// a body too large): the client's write fails, and the check reports the answer, as curl
/// does, not the write's error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_given_before_the_body_was_read_is_the_result() {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        read_head(&mut stream).await;
        stream
            .write_all(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big!")
            .await
            .unwrap();
        // Closed with the body unread: the kernel resets the connection.
    });
    let body = "x".repeat(8 << 20);
    let url = format!("http://{addr}/upload");
    let r = http(json!({"url": url, "method": "PUT", "body": body, "timeout": 10})).await;
    server.await.unwrap();
    assert_eq!(r["status"], 2, "{}", output(&r));
    assert!(output(&r).contains("413"), "{}", output(&r));
    assert!(!output(&r).contains("sending the request"), "{}", output(&r));
}
