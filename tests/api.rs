//! The local API of a running client against the private broker: the JSON socket (TCP
//! and UDP) and the HTTP socket, byte for byte as sensu-client (spec §5, checklist items
//! 30–42), plus `/healthz`, `/metrics` and `concierge health`.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use support::{Client, ServerSide, unique};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WAIT: Duration = Duration::from_secs(20);

/// Send bytes in chunks (with pauses) and read the whole reply.
async fn tcp_exchange(addr: SocketAddr, chunks: &[&[u8]], pause: Duration) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    for chunk in chunks {
        stream.write_all(chunk).await.unwrap();
        tokio::time::sleep(pause).await;
    }
    let mut reply = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut reply)).await.unwrap().unwrap();
    reply
}

/// A raw HTTP exchange: status line, header block and body.
async fn http_raw(addr: SocketAddr, request: &str) -> (String, String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut raw)).await.unwrap().unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (status.to_string(), headers.to_lowercase(), body.to_string())
}

fn get(path: &str, auth: Option<(&str, &str)>) -> String {
    let auth = auth.map_or(String::new(), |(u, p)| {
        format!("Authorization: Basic {}\r\n", base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}")))
    });
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}\r\n")
}

fn post(path: &str, content_type: &str, body: &str, auth: Option<(&str, &str)>) -> String {
    let auth = auth.map_or(String::new(), |(u, p)| {
        format!("Authorization: Basic {}\r\n", base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}")))
    });
    format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{auth}\r\n{body}",
        body.len()
    )
}

struct Fixture {
    server: ServerSide,
    results: support::Tap,
    client: Client,
    socket: SocketAddr,
    http: SocketAddr,
}

async fn fixture(extra: Value) -> Fixture {
    let server = ServerSide::connect().await;
    let results = server.tap_results().await;
    let name = unique("api");
    let mut attributes = json!({"http_socket": {"user": "foo", "password": "bar"}, "api": {"password": "bar"}});
    for (k, v) in extra.as_object().unwrap() {
        attributes["http_socket"][k] = v.clone();
    }
    let config = json!({"client": attributes.clone(), "api": {"user": "admin", "password": "bar"}});
    let client = Client::start(&name, &["x"], &[("CONCIERGE_CONFIG_JSON", &config.to_string())]);
    let socket = client.bound("listening for check results (TCP and UDP)").await;
    let http = client.bound("HTTP socket listening").await;
    client.ready().await;
    Fixture { server, results, client, socket, http }
}

// Items 30, 32, 35, 36: ping, one result, an array, each published exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_socket_protocol() {
    let mut f = fixture(json!({})).await;
    assert_eq!(tcp_exchange(f.socket, &[b"ping"], Duration::ZERO).await, "pong");
    assert_eq!(tcp_exchange(f.socket, &[b"  ping \n"], Duration::ZERO).await, "pong");
    let reply =
        tcp_exchange(f.socket, &[br#"{"name":"app_01","output":"could not connect","status":1}"#], Duration::ZERO)
            .await;
    assert_eq!(reply, "ok");
    let (result, _) = f.results.next_for(&f.client.name, WAIT).await.expect("published");
    let check = result["check"].as_object().unwrap();
    assert_eq!(check.keys().collect::<Vec<_>>(), ["name", "output", "status", "executed", "issued"]);
    assert_eq!(check["executed"], check["issued"]);
    assert_eq!(result.as_object().unwrap().keys().collect::<Vec<_>>(), ["client", "check"]);
    // An array: each element published, one "ok".
    let reply = tcp_exchange(
        f.socket,
        &[br#"[{"name":"a","output":"x"},{"name":"b","output":"y","status":2,"executed":5,"issued":1,"source":"proxy-1"}]"#],
        Duration::ZERO,
    )
    .await;
    assert_eq!(reply, "ok");
    let first = f.results.next_for(&f.client.name, WAIT).await.unwrap().0;
    assert_eq!((first["check"]["name"].clone(), first["check"]["status"].clone()), (json!("a"), json!(0)));
    let second = f.results.next_for(&f.client.name, WAIT).await.unwrap().0;
    assert_eq!(second["check"]["executed"], 5, "a given executed is kept");
    assert_ne!(second["check"]["issued"], 1, "issued is always overwritten");
    assert_eq!(second["check"]["source"], "proxy-1");
    // Elements before a failing one are already published (as in Sensu); an empty source
    // is validated like any other (Ruby's "" is truthy) and refused.
    let reply = tcp_exchange(
        f.socket,
        &[br#"[{"name":"c","output":"x"},{"name":"d","output":"y","source":""}]"#],
        Duration::ZERO,
    )
    .await;
    assert_eq!(reply, "invalid");
    assert_eq!(f.results.next_for(&f.client.name, WAIT).await.unwrap().0["check"]["name"], "c");
}

// "ok" means every element is queued: a burst larger than a batch of the results pipe (256)
// arrives complete, once each, and in order, even when the client is stopped right after
// the answer (its drain publishes what is queued).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_results_is_published_whole_and_in_order_even_if_stopped_at_once() {
    let mut f = fixture(json!({})).await;
    let burst: Vec<Value> = (0..600).map(|i| json!({"name": format!("burst_{i}"), "output": "x"})).collect();
    let body = serde_json::to_vec(&burst).unwrap();
    assert_eq!(tcp_exchange(f.socket, &[&body], Duration::ZERO).await, "ok");
    f.client.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(f.client.wait_exit(WAIT).await.is_some_and(|s| s.success()), "{}", f.client.logs());
    let names: Vec<String> = f
        .results
        .collect_for(&f.client.name, 600, WAIT)
        .await
        .iter()
        .map(|r| r["check"]["name"].as_str().unwrap().to_string())
        .collect();
    let expected: Vec<String> = (0..600).map(|i| format!("burst_{i}")).collect();
    assert_eq!(names, expected);
    assert!(f.results.next_for(&f.client.name, Duration::from_millis(500)).await.is_none(), "published twice");
}

// Items 31, 37: validation failures and partial data give "invalid"; one character per
// chunk still gives one publish; non-ASCII is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_socket_chunks_watchdog_and_validation() {
    let mut f = fixture(json!({})).await;
    let body = r#"{"name":"slow","output":"héllo","status":0}"#;
    let chunks: Vec<&[u8]> = body.as_bytes().chunks(1).collect();
    assert_eq!(tcp_exchange(f.socket, &chunks, Duration::from_millis(5)).await, "ok");
    let (result, _) = f.results.next_for(&f.client.name, WAIT).await.unwrap();
    assert_eq!(result["check"]["output"], "héllo");
    let started = std::time::Instant::now();
    assert_eq!(tcp_exchange(f.socket, &[br#"{"name":"partial""#], Duration::ZERO).await, "invalid");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(450) && waited < Duration::from_secs(3), "watchdog {waited:?}");
    for bad in [
        r#"{"name":"has space","output":"x"}"#,
        r#"{"name":"x","output":1234}"#,
        r#"{"name":"x","output":"x","status":"2"}"#,
        r#"{"name":"x","output":"x","ttl":-10}"#,
        r#"[1,2]"#,
    ] {
        assert_eq!(tcp_exchange(f.socket, &[bad.as_bytes()], Duration::ZERO).await, "invalid", "{bad}");
    }
    assert!(
        f.results.next_for(&f.client.name, Duration::from_millis(300)).await.is_none(),
        "nothing invalid published"
    );
}

// Bytes that can no longer become JSON are answered `invalid` at once: a sender that keeps
// trickling (each chunk would restart the watchdog) hears it while it is still sending,
// rather than having the whole buffer parsed again at every chunk. And the socket serves at
// most 64 connections at once: a 65th waits until one of them closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_socket_answers_broken_json_at_once_and_bounds_its_connections() {
    let f = fixture(json!({})).await;
    for broken in [&b"[1,]"[..], br#"{"name":"a"} x"#, b"[1e999]"] {
        let mut stream = tokio::net::TcpStream::connect(f.socket).await.unwrap();
        stream.write_all(broken).await.unwrap();
        let mut reply = Vec::new();
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let mut buf = [0u8; 64];
            match stream.try_read(&mut buf) {
                Ok(n) if n > 0 => reply.extend_from_slice(&buf[..n]),
                _ => {}
            }
            if !reply.is_empty() || stream.write_all(b" ").await.is_err() {
                break;
            }
        }
        assert_eq!(String::from_utf8_lossy(&reply), "invalid", "{}", String::from_utf8_lossy(broken));
    }
    // What may still become `ping` waits for the rest, as sensu-client does.
    assert_eq!(tcp_exchange(f.socket, &[b"p", b"in", b"g"], Duration::from_millis(100)).await, "pong");

    let mut held = Vec::new();
    for _ in 0..64 {
        held.push(tokio::net::TcpStream::connect(f.socket).await.unwrap());
    }
    // Connected by the kernel's backlog, but not served while the 64 are open.
    let mut waiting = tokio::net::TcpStream::connect(f.socket).await.unwrap();
    waiting.write_all(b"ping").await.unwrap();
    let mut pong = String::new();
    let early = tokio::time::timeout(Duration::from_secs(1), waiting.read_to_string(&mut pong)).await;
    assert!(early.is_err(), "served beyond 64 connections: {pong:?}");
    drop(held.pop());
    tokio::time::timeout(WAIT, waiting.read_to_string(&mut pong)).await.unwrap().unwrap();
    assert_eq!(pong, "pong");
}

// Items 30, 37: UDP results are published, never answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_socket() {
    let mut f = fixture(json!({})).await;
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    udp.send_to(br#"{"name":"partial""#, f.socket).await.unwrap();
    udp.send_to(b"ping", f.socket).await.unwrap();
    udp.send_to(br#"{"name":"udp","output":"via udp","status":1}"#, f.socket).await.unwrap();
    let (result, _) = f.results.next_for(&f.client.name, WAIT).await.expect("udp result");
    assert_eq!(result["check"]["name"], "udp");
    let mut buf = [0u8; 16];
    assert!(
        tokio::time::timeout(Duration::from_millis(300), udp.recv_from(&mut buf)).await.is_err(),
        "no reply on UDP"
    );
}

// Items 38–41 and the status lines, headers and bodies of every endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_socket_endpoints() {
    let mut f = fixture(json!({})).await;
    let (status, headers, body) = http_raw(f.http, &get("/info", None)).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(headers.contains("content-type: application/json"));
    let info: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["sensu"]["version"], "1.9.0");
    assert_eq!(info["transport"]["connected"], true);
    assert_eq!(info["transport"]["name"], "rabbitmq");
    assert!(info["transport"]["keepalives"]["messages"].is_u64() && info["transport"]["results"]["consumers"].is_u64());

    let (status, _, body) = http_raw(
        f.http,
        &post("/results", "application/json; charset=utf-8", r#"{"name":"http","output":"ok","status":0}"#, None),
    )
    .await;
    assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.1 202 OK", r#"{"response":"ok"}"#));
    assert_eq!(f.results.next_for(&f.client.name, WAIT).await.unwrap().0["check"]["name"], "http");
    let three = r#"[{"name":"h1","output":"1"},{"name":"h2","output":"2"},{"name":"h3","output":"3"}]"#;
    assert_eq!(http_raw(f.http, &post("/results", "application/json", three, None)).await.0, "HTTP/1.1 202 OK");
    assert_eq!(f.results.collect_for(&f.client.name, 3, WAIT).await.len(), 3);

    let (status, _, body) = http_raw(f.http, &post("/results", "text/plain", "{}", None)).await;
    assert_eq!(
        (status.as_str(), body.as_str()),
        ("HTTP/1.1 415 Only application/json content type accepted", r#"{"response":"Invalid content type"}"#)
    );
    let (status, _, body) = http_raw(f.http, &post("/results", "application/json", "{nope", None)).await;
    assert_eq!(
        (status.as_str(), body.as_str()),
        ("HTTP/1.1 400 Failed to parse JSON body", r#"{"response":"Failed to parse JSON body"}"#)
    );
    let (status, _, body) =
        http_raw(f.http, &post("/results", "application/json", r#"{"name":"bad name","output":"x"}"#, None)).await;
    assert_eq!(
        (status.as_str(), body.as_str()),
        (
            "HTTP/1.1 500 Internal Server Error",
            r#"{"response":"Internal Server Error: Check your Sensu logs for error details"}"#
        )
    );

    let (status, headers, body) = http_raw(f.http, &get("/settings", None)).await;
    assert_eq!(status, "HTTP/1.1 401 Unauthorized");
    assert!(headers.contains("www-authenticate: basic realm=\"sensu client restricted area\""));
    assert_eq!(body, r#"{"response":"You must be authenticated using your http_options user and password settings"}"#);
    assert_eq!(http_raw(f.http, &get("/settings", Some(("foo", "wrong")))).await.0, "HTTP/1.1 401 Unauthorized");
    let (status, _, body) = http_raw(f.http, &get("/settings", Some(("foo", "bar")))).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let settings: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(settings["api"]["password"], "REDACTED");
    assert_eq!(settings["client"]["name"], f.client.name.as_str());
    let (_, _, body) = http_raw(f.http, &get("/settings?Redacted=False", Some(("foo", "bar")))).await;
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["api"]["password"], "bar");

    let (status, _, body) = http_raw(f.http, &get("/brew", None)).await;
    assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.1 418 I'm a teapot", r#"{"response":"I'm a teapot!"}"#));
    let (status, _, body) = http_raw(f.http, &get("/nowhere", None)).await;
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    assert_eq!(body, concierge::api::http::ENDPOINTS);
    let (status, _, body) = http_raw(f.http, &post("/info", "application/json", "{}", None)).await;
    assert_eq!(
        (status.as_str(), body.as_str()),
        ("HTTP/1.1 405 Method Not Allowed", r#"{"response":"Valid methods for this endpoint: [\"GET\"]"}"#)
    );
    let (status, _, body) = http_raw(f.http, &get("/results", None)).await;
    assert_eq!(
        (status.as_str(), body.as_str()),
        ("HTTP/1.1 405 Method Not Allowed", r#"{"response":"Valid methods for this endpoint: [\"POST\"]"}"#)
    );
    // One request per connection: the server closes after the response.
    let (_, headers, _) = http_raw(f.http, &get("/brew", None)).await;
    assert!(headers.contains("connection: close"), "{headers}");
    drop(f.server);
}

// Item 42: protect_all_endpoints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protect_all_endpoints() {
    let f = fixture(json!({"protect_all_endpoints": true})).await;
    assert_eq!(http_raw(f.http, &get("/info", None)).await.0, "HTTP/1.1 401 Unauthorized");
    assert_eq!(
        http_raw(f.http, &post("/results", "application/json", r#"{"name":"p","output":"x"}"#, None)).await.0,
        "HTTP/1.1 401 Unauthorized"
    );
    assert_eq!(http_raw(f.http, &get("/info", Some(("foo", "bar")))).await.0, "HTTP/1.1 200 OK");
    assert_eq!(
        http_raw(f.http, &post("/results", "application/json", r#"{"name":"p","output":"x"}"#, Some(("foo", "bar"))))
            .await
            .0,
        "HTTP/1.1 202 OK"
    );
    assert_eq!(http_raw(f.http, &get("/brew", None)).await.0, "HTTP/1.1 418 I'm a teapot", "/brew is never protected");
}

// An empty user and password configured (an unset variable in a template) let nobody in:
// sensu-client took `Authorization: Basic Og==` (`:`) for them and showed the settings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_credentials_authenticate_nobody() {
    let f = fixture(json!({"user": "", "password": ""})).await;
    assert_eq!(http_raw(f.http, &get("/settings", Some(("", "")))).await.0, "HTTP/1.1 401 Unauthorized");
    assert_eq!(http_raw(f.http, &get("/info", None)).await.0, "HTTP/1.1 200 OK");
}

// A body announced and not sent is waited for at most 10 s (`crate::serve::BODY_TIMEOUT`),
// then answered 408: a connection that trickles or stalls holds none of the 64 slots longer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_does_not_come_is_answered_408() {
    let f = fixture(json!({})).await;
    let mut stream = tokio::net::TcpStream::connect(f.http).await.unwrap();
    let head =
        "POST /results HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{";
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let mut raw = String::new();
    tokio::time::timeout(WAIT, stream.read_to_string(&mut raw)).await.unwrap().unwrap();
    assert!(raw.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{raw}");
    assert!(raw.ends_with(r#"{"response":"the body did not arrive within 10 s"}"#), "{raw}");
    assert!(started.elapsed() >= Duration::from_secs(9), "answered after {:?}", started.elapsed());
}

// Health, the `concierge health` command, and /metrics figures moving under a burst.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics() {
    let server = ServerSide::connect().await;
    let rr = format!("roundrobin:{}", unique("burst"));
    let client = Client::start(&unique("metrics"), &[&rr], &[("CONCIERGE_COMMAND_CONCURRENCY", "2")]);
    let http = client.bound("HTTP socket listening").await;
    client.ready().await;
    let (status, _, body) = http_raw(http, &get("/healthz", None)).await;
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["transport"]["connected"], true);
    let run_health = |url: String| {
        support::bin::concierge().args(["health", "--url", &url]).env("CONCIERGE_LOG_LEVEL", "error").output().unwrap()
    };
    assert_eq!(run_health(format!("http://{http}/healthz")).status.code(), Some(0));
    assert_eq!(run_health("http://127.0.0.1:1/healthz".into()).status.code(), Some(1));

    // A burst of slow checks, issued a while ago: slots fill up and lag shows.
    let issued = chrono::Utc::now().timestamp() - 30;
    for i in 0..6 {
        server.publish_request(&rr, &json!({"command": "sleep 1", "name": format!("b{i}"), "issued": issued})).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, headers, text) = http_raw(http, &get("/metrics", None)).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(headers.contains("content-type: application/openmetrics-text"));
    assert!(text.ends_with("# EOF\n"));
    let page =
        concierge::scrape::prometheus::parse_with(text.as_bytes(), true).expect("/metrics parses as OpenMetrics");
    let value = |name: &str, label: Option<(&str, &str)>| {
        page.samples
            .iter()
            .find(|s| s.name == name && label.is_none_or(|(k, v)| s.labels.iter().any(|(a, b)| a == k && b == v)))
            .map(|s| s.value)
            .unwrap_or_else(|| panic!("{name} missing in\n{text}"))
    };
    assert_eq!(value("concierge_executions_in_flight", Some(("kind", "command"))), 2.0);
    assert!(value("concierge_execution_slots_busy_ratio", None) > 0.0);
    assert!(value("concierge_lag_p95_seconds", None) >= 29.0);
    assert_eq!(value("concierge_transport_connected", None), 1.0);
    assert!(value("concierge_keepalives_total", None) >= 1.0);
    assert!(value("concierge_requests_total", None) >= 6.0);
    // After the burst: counted by kind and status, slots free again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let text = loop {
        let (_, _, text) = http_raw(http, &get("/metrics", None)).await;
        if text.contains("concierge_results_published_total 6") || tokio::time::Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(text.contains("concierge_checks_total{kind=\"command\",status=\"ok\"} 6"), "{text}");
    assert!(text.contains("concierge_executions_in_flight{kind=\"command\"} 0"));
    assert!(text.contains("concierge_results_published_total 6"));
}
