//! The built-in DNS check against a real DNS server (hickory-server) on loopback.

mod support;

use concierge::proto::Object;
use serde_json::{Value, json};
use support::dns::TestDns;
use support::{assert_output, obj, output};

async fn dns(params: Value) -> Object {
    let executor = support::executor::Builder::default()
        .client(json!({"name": "probe-1", "names": {"web": "www.test.concierge"}}))
        .builtins()
        .build();
    executor.process(obj(json!({"name": "resolve", "extension": "dns", "dns": params, "issued": 1}))).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_type_over_udp() {
    let server = TestDns::start().await;
    let s = server.addr.to_string();
    let cases = [
        ("www.test.concierge", "A", vec!["192.0.2.10", "192.0.2.11"]),
        ("www.test.concierge", "AAAA", vec!["2001:db8::10"]),
        ("alias.test.concierge", "CNAME", vec!["www.test.concierge."]),
        ("test.concierge", "MX", vec!["10 mail.test.concierge."]),
        ("test.concierge", "NS", vec!["ns1.test.concierge."]),
        ("txt.test.concierge", "TXT", vec!["v=spf1 -all", "hello world"]),
        ("_http._tcp.test.concierge", "SRV", vec!["10 5 8080 www.test.concierge."]),
        ("192.0.2.10", "PTR", vec!["www.test.concierge."]),
    ];
    for (name, kind, expect) in cases {
        let r = dns(json!({"name": name, "type": kind, "server": s, "expect": expect})).await;
        assert_eq!(r["status"], 0, "{kind}: {}", output(&r));
        assert_eq!(r["probe"]["rcode"], "NOERROR");
        assert!(output(&r).contains(&format!(" {kind} NOERROR in ")), "{}", output(&r));
    }
    let r = dns(json!({"name": "test.concierge", "type": "SOA", "server": s})).await;
    assert_output(
        &r,
        r"^DNS OK: test\.concierge\. SOA NOERROR in \d\.\d{3} s: ns1\.test\.concierge\. hostmaster\.test\.concierge\. 2026112101 3600 600 86400 60 \(127\.0\.0\.1:\d+\) \| time=[\d.]+s;;;0 answers=1;;;0\n$",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_output_and_attributes() {
    let server = TestDns::start().await;
    let r = dns(json!({"name": "www.test.concierge.", "server": server.addr.to_string()})).await;
    assert_output(
        &r,
        r"^DNS OK: www\.test\.concierge\. A NOERROR in \d\.\d{3} s: 192\.0\.2\.1[01], 192\.0\.2\.1[01] \(127\.0\.0\.1:\d+\) \| time=[\d.]+s;;;0 answers=2;;;0\n$",
    );
    assert_eq!(r["probe"]["query"], "www.test.concierge. A");
    let mut answers: Vec<&str> = r["probe"]["answers"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    answers.sort_unstable();
    assert_eq!(answers, ["A 192.0.2.10", "A 192.0.2.11"]);
    assert!(r["timings"]["resolve"].as_f64().unwrap() > 0.0);
    // A query through a CNAME: the alias is in the answers, the A records are compared.
    let r = dns(json!({"name": "alias.test.concierge", "server": server.addr.to_string(), "expect": ["192.0.2.11", "192.0.2.10"]})).await;
    assert_eq!(r["status"], 0, "{}", output(&r));
    assert!(r["probe"]["answers"].as_array().unwrap().iter().any(|a| a.as_str().unwrap().starts_with("CNAME ")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_and_expectations() {
    let server = TestDns::start().await;
    let s = server.addr.to_string();
    let r = dns(
        json!({"name": "www.test.concierge", "server": s, "protocol": "tcp", "expect_match": "^192\\.0\\.2\\.11$"}),
    )
    .await;
    assert_eq!(r["status"], 0, "{}", output(&r));
    let r = dns(json!({"name": "www.test.concierge", "server": s, "expect": ["192.0.2.10"]})).await;
    assert_eq!((r["status"].clone(), r["reason"].clone()), (json!(2), json!("answer")));
    assert_output(&r, r"; expected 192\.0\.2\.10 \|");
    let r = dns(json!({"name": "www.test.concierge", "server": s, "expect_match": "^10\\."})).await;
    assert_output(&r, r"; no answer matches /\^10\\\./ \|");
    let r = dns(json!({"name": "www.test.concierge", "server": s, "expect_not_match": "\\.11$"})).await;
    assert_output(&r, r"; answer 192\.0\.2\.11 matches /\\\.11\$/ \|");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_codes() {
    let server = TestDns::start().await;
    let s = server.addr.to_string();
    let r = dns(json!({"name": "missing.test.concierge", "server": s})).await;
    assert_eq!((r["status"].clone(), r["reason"].clone()), (json!(2), json!("rcode")));
    assert_output(
        &r,
        r"^DNS CRITICAL: missing\.test\.concierge\. A NXDOMAIN in \d\.\d{3} s: no records \(127\.0\.0\.1:\d+\); expected NOERROR \|",
    );
    let r = dns(json!({"name": "missing.test.concierge", "server": s, "rcodes": ["nxdomain"]})).await;
    assert_eq!(r["status"], 0, "{}", output(&r));
    let r = dns(json!({"name": "example.org", "server": s})).await;
    assert_eq!(r["probe"]["rcode"], "REFUSED");
    assert_eq!(r["reason"], "rcode");
    // NOERROR but no record of the type.
    let r = dns(json!({"name": "txt.test.concierge", "type": "A", "server": s})).await;
    assert_eq!((r["status"].clone(), r["reason"].clone()), (json!(2), json!("answer")));
    let r = dns(json!({"name": "txt.test.concierge", "type": "A", "server": s, "allow_empty": true})).await;
    assert_eq!(r["status"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_and_thresholds() {
    // A UDP port nobody answers on.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let r =
        dns(json!({"name": "www.test.concierge", "server": silent.local_addr().unwrap().to_string(), "timeout": 0.3}))
            .await;
    assert_eq!((r["status"].clone(), r["reason"].clone()), (json!(2), json!("timeout")));
    assert_output(&r, r"^DNS CRITICAL: www\.test\.concierge\. A timed out after 0\.3 s \(127\.0\.0\.1:\d+\) \|");
    let server = TestDns::start().await;
    let r =
        dns(json!({"name": "www.test.concierge", "server": server.addr.to_string(), "warning": 0.0, "critical": 5}))
            .await;
    assert_eq!((r["status"].clone(), r["reason"].clone()), (json!(1), json!("latency")));
    assert_output(&r, r"\(slower than 0 s\) \| time=[\d.]+s;0;5;0 ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_metrics_and_bad_parameters() {
    let server = TestDns::start().await;
    let r = dns(json!({"name": ":::names.web:::", "server": server.addr.to_string()})).await;
    assert_eq!(r["status"], 0, "{}", output(&r));
    let executor = support::executor::Builder::default().builtin_limit(5).builtins().build();
    let r = executor
        .process(obj(json!({"name": "resolve", "type": "metric", "extension": "dns", "dns": {"name": "www.test.concierge", "server": server.addr.to_string()}})))
        .await
        .unwrap();
    let lines: Vec<&str> = output(&r).lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines[0].starts_with("probe-1.dns.resolve.time ") && lines[1].starts_with("probe-1.dns.resolve.answers 2 ")
    );
    for (params, message) in [
        (json!({"name": "x", "type": "BOGUS"}), "unknown record type \"BOGUS\""),
        (json!({"type": "A"}), "missing field `name`"),
        (json!({"name": "x", "server": "not-an-ip"}), "must be an IP address"),
        (json!({"name": "x", "timeout": 1e20}), "timeout 100000000000000000000 is too large"),
        // Far past a day (the clock's `now + timeout` would overflow).
        (json!({"name": "x", "timeout": 1e19, "server": "127.0.0.1"}), "is too large (at most 86400 s)"),
        (json!({"name": "a..b", "server": "127.0.0.1"}), "name \"a..b.\" is not a valid DNS name"),
        (json!({"name": "x", "expect_match": "[", "server": "127.0.0.1"}), "expect_match is not a valid regex"),
    ] {
        let r = dns(params).await;
        assert_eq!(r["status"], 3);
        assert!(
            output(&r).starts_with("DNS UNKNOWN: invalid parameters: ") && output(&r).contains(message),
            "{}",
            output(&r)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_runs_the_same_check() {
    let server = TestDns::start().await;
    let dir = tempfile::tempdir().unwrap();
    let addr = server.addr.to_string();
    let out = support::bin::run_async(
        dir.path(),
        &["dns", "www.test.concierge", "-s", &addr, "-e", "192.0.2.10", "-e", "192.0.2.11"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("DNS OK: www.test.concierge. A NOERROR"));
    let out = support::bin::run_async(dir.path(), &["dns", "missing.test.concierge", "-s", &addr, "--tcp"]).await;
    assert_eq!(out.status.code(), Some(2));
}

/// One DNS built-in run again and again: equal parameters are compiled once, yet every run
/// really asks the server (no answer is kept): with the server gone the next run fails, and
/// with a server back at the same address the next run reaches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_run_asks_the_server() {
    use concierge::checks::{Builtin, BuiltinContext, dns::Dns};
    let server = TestDns::start().await;
    let addr = server.addr;
    let builtin = Dns::default();
    let run = |name: &str, params: Value| {
        let check = obj(json!({"name": name, "extension": "dns", "dns": params}));
        builtin.run(std::sync::Arc::new(check), BuiltinContext::default())
    };
    let www = json!({"name": "www.test.concierge", "server": addr.to_string(), "timeout": 0.5});
    for name in ["a", "a", "b"] {
        let outcome = run(name, www.clone()).await;
        assert_eq!(outcome.status, 0, "{}", outcome.output);
    }
    let mail = json!({"name": "mail.test.concierge", "server": addr.to_string(), "timeout": 0.5});
    let outcome = run("c", mail.clone()).await;
    assert!(outcome.status == 0 && outcome.output.contains("192.0.2.25"), "{}", outcome.output);
    assert_eq!(builtin.compiles(), 2);
    drop(server);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let outcome = run("a", www.clone()).await;
    assert_eq!(outcome.status, 2, "answered with the server gone: {}", outcome.output);
    let _back = TestDns::start_at(addr).await.expect("the same port again");
    let outcome = run("a", www.clone()).await;
    assert_eq!(outcome.status, 0, "{}", outcome.output);
    let outcome = run("c", mail).await;
    assert!(outcome.status == 0 && outcome.output.contains("192.0.2.25"), "{}", outcome.output);
    // Asked directly, a CNAME the server did not follow is reported as it is (a resolver
    // would ask for its target: here, a name the server refuses).
    let dangling = json!({"name": "dangling.test.concierge", "server": addr.to_string(), "allow_empty": true});
    let outcome = run("e", dangling.clone()).await;
    assert!(outcome.status == 0 && outcome.output.contains("A NOERROR in "), "{}", outcome.output);
    let r = dns(dangling).await;
    assert_eq!(r["probe"]["answers"], json!(["CNAME gone.example."]), "{}", output(&r));
    // Over TCP the query is kept too; with a regex it is compiled for each run.
    let tcp = json!({"name": "www.test.concierge", "server": addr.to_string(), "protocol": "tcp"});
    let regex = json!({"name": "www.test.concierge", "server": addr.to_string(), "expect_match": "^192"});
    for params in [tcp.clone(), tcp, regex.clone(), regex] {
        let outcome = run("d", params).await;
        assert_eq!(outcome.status, 0, "{}", outcome.output);
    }
    assert_eq!(builtin.compiles(), 6);
}

/// A truncated UDP answer is asked again over TCP, at the same address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_answer_is_asked_again_over_tcp() {
    let upstream = TestDns::start().await;
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let _relay = support::dns::Relay::start_at(addr, upstream.addr).await.expect("the relay's UDP port");
    // The relay answers `truncated…` names with TC set and no records; the TCP side here
    // takes the connection and says nothing.
    let (connected, mut seen) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        while let Ok((stream, _)) = tcp.accept().await {
            let _ = connected.send(stream).await;
        }
    });
    let r = dns(json!({"name": "truncated.test.concierge", "server": addr.to_string(), "timeout": 0.5})).await;
    assert_eq!((r["status"].clone(), r["reason"].clone()), (json!(2), json!("timeout")), "{}", output(&r));
    let mut connections = 0;
    while seen.try_recv().is_ok() {
        connections += 1;
    }
    assert!(connections > 0, "no TCP connection after a truncated answer: {}", output(&r));
    // A whole answer through the relay is used as it is, with no TCP connection.
    let r = dns(json!({"name": "www.test.concierge", "server": addr.to_string(), "timeout": 0.5})).await;
    assert_eq!(r["status"], 0, "{}", output(&r));
    assert!(seen.try_recv().is_err());
}

/// What a test server saw: the ID of every question it got.
type Seen = std::sync::Arc<std::sync::Mutex<Vec<u16>>>;

/// A UDP server on `socket` that answers each question with what `reply` makes of it (the
/// question's number, from 1, the question and its source); returns the IDs of the questions it got.
fn udp_server(
    socket: tokio::net::UdpSocket,
    reply: impl Fn(usize, &hickory_server::proto::op::Message, std::net::SocketAddr) -> Vec<Vec<u8>> + Send + 'static,
) -> (Seen, tokio::task::JoinHandle<()>) {
    let seen = Seen::default();
    let task = tokio::spawn({
        let seen = seen.clone();
        async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, from)) = socket.recv_from(&mut buf).await else { continue };
                let Ok(query) = hickory_server::proto::op::Message::from_vec(&buf[..n]) else { continue };
                let number = {
                    let mut seen = seen.lock().unwrap();
                    seen.push(query.metadata.id);
                    seen.len()
                };
                for datagram in reply(number, &query, from) {
                    let _ = socket.send_to(&datagram, from).await;
                }
            }
        }
    });
    (seen, task)
}

/// `query` answered with one `A` record, `ip`.
fn answer(query: &hickory_server::proto::op::Message, ip: [u8; 4]) -> Vec<u8> {
    use hickory_server::proto::op::MessageType;
    use hickory_server::proto::rr::{RData, Record, rdata::A};
    let mut response = query.clone();
    response.metadata.message_type = MessageType::Response;
    let name = response.queries[0].name().clone();
    response.answers.push(Record::from_rdata(name, 60, RData::A(A::from(std::net::Ipv4Addr::from(ip)))));
    response.to_vec().unwrap()
}

/// A UDP server that loses the first question it gets, then answers each later one six
/// times: from another port, with another ID, for another question, as a query (a reflected
/// question), unreadable (the run's ID and a cut header), and last the real answer,
/// `192.0.2.10`. The impostors that can be read all say `198.51.100.x`.
async fn impostor() -> (std::net::SocketAddr, Seen, tokio::task::JoinHandle<()>) {
    use hickory_server::proto::op::Query;
    use hickory_server::proto::rr::Name;
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let other_port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let (seen, task) = udp_server(socket, move |number, query, from| {
        if number == 1 {
            return Vec::new();
        }
        // The kernel's source check is what this one tests: sent here, from the other port.
        let _ = other_port.send_to(&answer(query, [198, 51, 100, 1]), from);
        let mut wrong_id = query.clone();
        wrong_id.metadata.id ^= 1;
        let mut other_question = query.clone();
        other_question.queries[0] =
            Query::query(Name::from_ascii("other.test.concierge.").unwrap(), query.queries[0].query_type());
        let mut unreadable = query.metadata.id.to_be_bytes().to_vec();
        unreadable.extend_from_slice(&[0x81, 0x80, 0, 1]);
        vec![
            answer(&wrong_id, [198, 51, 100, 2]),
            answer(&other_question, [198, 51, 100, 3]),
            query.to_vec().unwrap(),
            unreadable,
            answer(query, [192, 0, 2, 10]),
        ]
    });
    (addr, seen, task)
}

/// An answer is taken only from the server, with the run's ID, for the question asked, as a
/// response, and readable; a question with no answer is sent again (with the same ID) after
/// 333 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_servers_answer_to_the_question_counts_and_a_lost_question_is_sent_again() {
    let (addr, seen, task) = impostor().await;
    let params = json!({"name": "www.test.concierge", "server": addr.to_string(), "timeout": 2});
    let r = dns(params.clone()).await;
    assert_eq!(r["status"], 0, "{}", output(&r));
    assert_eq!(r["probe"]["answers"], json!(["A 192.0.2.10"]), "{}", output(&r));
    let ids = seen.lock().unwrap().clone();
    assert!(ids.len() >= 2 && ids.iter().all(|id| *id == ids[0]), "the question sent again with its ID: {ids:?}");
    assert!(r["timings"]["resolve"].as_f64().unwrap() >= 0.3, "{}", r["timings"]);
    // Later runs (answered at once) ask with IDs of their own.
    for _ in 0..2 {
        assert_eq!(dns(params.clone()).await["status"], 0);
    }
    task.abort();
    let mut ids = seen.lock().unwrap().clone();
    ids.dedup();
    assert!(ids.len() > 1, "one ID for three runs: {ids:?}");
}

/// A server that never answers gets the question three times, 333 ms apart, and the run
/// times out by its deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_is_sent_three_times_at_most() {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let (seen, task) = udp_server(socket, |_, _, _| Vec::new());
    let r = dns(json!({"name": "www.test.concierge", "server": addr.to_string(), "timeout": 1.2})).await;
    assert_eq!((r["status"].clone(), r["reason"].clone()), (json!(2), json!("timeout")), "{}", output(&r));
    assert_output(&r, r"^DNS CRITICAL: www\.test\.concierge\. A timed out after 1\.2 s \(127\.0\.0\.1:\d+\) \|");
    // The run is over: what the server has not counted yet is still on its way.
    for _ in 0..100 {
        if seen.lock().unwrap().len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    task.abort();
    assert_eq!(seen.lock().unwrap().len(), 3);
}

/// Answers with the run's ID that cannot be read are ignored; if nothing else came by the
/// deadline, the run says why the last could not be read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_answer_is_reported_when_nothing_else_came() {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let (_, task) = udp_server(socket, |_, query, _| {
        let mut cut = query.metadata.id.to_be_bytes().to_vec();
        cut.extend_from_slice(&[0x81, 0x80, 0, 1]);
        vec![cut]
    });
    let r = dns(json!({"name": "www.test.concierge", "server": addr.to_string(), "timeout": 0.5})).await;
    task.abort();
    assert_eq!((r["status"].clone(), r["reason"].clone()), (json!(2), json!("dns")), "{}", output(&r));
    assert_output(
        &r,
        r"^DNS CRITICAL: www\.test\.concierge\. A failed: no readable answer: .+ \(127\.0\.0\.1:\d+\) \|",
    );
}

/// An answer larger than 4,096 bytes is asked for again over TCP, as a truncated one is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_too_large_to_read_is_asked_again_over_tcp() {
    let (udp, tcp) = loop {
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        if let Ok(tcp) = tokio::net::TcpListener::bind(udp.local_addr().unwrap()).await {
            break (udp, tcp);
        }
    };
    let addr = tcp.local_addr().unwrap();
    let (_, task) = udp_server(udp, |_, query, _| {
        let mut large = answer(query, [192, 0, 2, 10]);
        large.resize(5_000, 0);
        vec![large]
    });
    let accepted = tokio::spawn(async move { tcp.accept().await.is_ok() });
    let r = dns(json!({"name": "www.test.concierge", "server": addr.to_string(), "timeout": 0.5})).await;
    task.abort();
    let accepted = tokio::time::timeout(std::time::Duration::from_secs(5), accepted).await;
    assert!(matches!(accepted, Ok(Ok(true))), "no TCP connection: {}", output(&r));
    assert_eq!(r["status"], 2, "{}", output(&r));
}

/// A port nobody listens on answers with an ICMP "port unreachable": the run fails at once
/// and says so, rather than waiting out its timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_port_is_reported_as_refused() {
    let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let r = dns(json!({"name": "www.test.concierge", "server": closed.to_string(), "timeout": 30})).await;
    assert_eq!((r["status"].clone(), r["reason"].clone()), (json!(2), json!("dns")), "{}", output(&r));
    assert_output(
        &r,
        r"^DNS CRITICAL: www\.test\.concierge\. A failed: Connection refused \(os error 111\) \(127\.0\.0\.1:\d+\) \|",
    );
    // At once, not at the resend 333 ms later (whose `send` would report it too).
    assert!(r["timings"]["resolve"].as_f64().unwrap() < 0.3, "{}", r["timings"]);
}
