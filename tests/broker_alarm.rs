//! A resource alarm in the middle of a stream of results: the broker blocks publishing
//! connections and stops confirming. The client waits the alarm out on the same session
//! (the publish timeout does not run while the broker blocks the connection), its
//! keepalives too, and once the alarm clears every result arrives, in order, once (unless
//! heartbeats are off: then nothing tells a blocked connection from a dead one, and the
//! client reconnects as after any publish timeout). Its own
//! test binary, because the alarm blocks every publisher on the broker the other tests share.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use support::{Client, ServerSide, rabbitmqctl, unique};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Submit results through the local socket (3030), which needs no publisher on the test's
/// side: the test's own connection would be blocked by the alarm too.
async fn submit(socket: SocketAddr, names: std::ops::Range<usize>) {
    let results: Vec<Value> = names.map(|i| json!({"name": format!("alarm_{i}"), "output": "x"})).collect();
    let mut stream = tokio::net::TcpStream::connect(socket).await.unwrap();
    stream.write_all(&serde_json::to_vec(&results).unwrap()).await.unwrap();
    let mut reply = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut reply)).await.unwrap().unwrap();
    assert_eq!(reply, "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_alarm_mid_stream_loses_nothing() {
    let server = ServerSide::connect().await;
    let mut results = server.tap_results().await;
    let name = unique("alarm");
    let client = Client::start(&name, &["x"], &[("CONCIERGE_PUBLISH_TIMEOUT", "2")]);
    let socket = client.bound("listening for check results (TCP and UDP)").await;
    client.ready().await;
    submit(socket, 0..50).await;
    let before = results.collect_for(&name, 50, Duration::from_secs(20)).await;
    assert_eq!(before.len(), 50, "{}", client.logs());

    let http = client.bound("HTTP socket listening").await;
    let metric = |name: &str| support::web::metric(http.port(), name).unwrap_or(-1.0);
    let keepalives = metric("concierge_keepalives_total");

    rabbitmqctl(&["set_vm_memory_high_watermark", "absolute", "1"]);
    // Back to what scripts/rabbitmq.sh configures (vm_memory_high_watermark.relative).
    let cleared = support::scopeguard(|| {
        rabbitmqctl(&["set_vm_memory_high_watermark", "0.8"]);
    });
    submit(socket, 50..400).await;
    client.wait_log("broker blocked the connection (resource alarm)", 1, Duration::from_secs(20)).await;
    // A replica started during the alarm does not wait it out in its bootstrap, where it
    // would not see SIGTERM: its first keepalive gives up after the publish timeout, and a
    // SIGTERM then stops it.
    let mut late = Client::start(&unique("alarm_late"), &["x"], &[("CONCIERGE_PUBLISH_TIMEOUT", "2")]);
    late.wait_log("bootstrap failed; reconnecting", 1, Duration::from_secs(20)).await;
    late.signal(nix::sys::signal::Signal::SIGTERM);
    let stopped = late.wait_exit(Duration::from_secs(15)).await;
    assert!(stopped.is_some_and(|s| s.success()), "{stopped:?}: {}", late.logs());
    // Longer than a keepalive period (20 s) and ten publish timeouts (2 s): both connections
    // publish during the alarm, and neither gives up on its confirm while the broker blocks it.
    client.wait_log("broker blocked the connection (resource alarm)", 2, Duration::from_secs(25)).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(client.count_log("no publish confirm from the broker in time"), 0, "{}", client.logs());
    assert_eq!(client.count_log("failed to publish keepalive"), 0, "{}", client.logs());
    assert_eq!(metric("concierge_reconnects_total"), 0.0, "{}", client.logs());
    assert_eq!(metric("concierge_keepalives_total"), keepalives, "a keepalive confirmed during the alarm");
    assert_eq!(metric("concierge_transport_blocked"), 2.0, "both connections blocked: {}", client.logs());
    // Healthy all the same: the replica waits the alarm out, and a restart would not end it.
    let health: serde_json::Value =
        serde_json::from_str(&support::web::get(http.port(), "/healthz").unwrap_or_default()).unwrap_or_default();
    assert_eq!((&health["status"], &health["transport"]["blocked"]), (&json!("ok"), &json!(2)), "{health}");
    drop(cleared);

    // What the broker routed before it blocked is confirmed now, not sent again: everything
    // arrives once, in order.
    let mut names: Vec<String> = Vec::new();
    let mut repeats = 0;
    while names.len() < 350 {
        let Some((result, _)) = results.next_for(&name, Duration::from_secs(60)).await else { break };
        let got = result["check"]["name"].as_str().unwrap().to_string();
        if names.contains(&got) {
            repeats += 1;
        } else {
            names.push(got);
        }
    }
    while let Some((result, _)) = results.next_for(&name, Duration::from_secs(3)).await {
        assert!(names.iter().any(|n| result["check"]["name"] == n.as_str()), "unexpected {result}");
        repeats += 1;
    }
    let expected: Vec<String> = (50..400).map(|i| format!("alarm_{i}")).collect();
    assert_eq!(names, expected, "every result, in order:\n{}", client.logs());
    assert_eq!(repeats, 0, "{repeats} results arrived twice:\n{}", client.logs());
    // The keepalive that waited is confirmed, on the same session.
    let started = std::time::Instant::now();
    while metric("concierge_keepalives_total") <= keepalives && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(metric("concierge_keepalives_total") > keepalives, "{}", client.logs());
    assert_eq!(metric("concierge_reconnects_total"), 0.0, "{}", client.logs());
    assert_eq!(metric("concierge_transport_blocked"), 0.0, "unblocked: {}", client.logs());
    drop(client);

    // Without heartbeats nothing tells a blocked connection from a dead one, so the alarm
    // is not waited out: the publish timeout runs and the client reconnects, and once the
    // alarm clears every result arrives (the batch in flight may arrive twice).
    // Heartbeats are off only if both sides say 0 (else lapin follows the broker's).
    let heartbeat = rabbitmqctl(&["eval", "application:get_env(rabbit, heartbeat)."]);
    let heartbeat = heartbeat.trim().trim_start_matches("{ok,").trim_end_matches('}').to_string();
    assert!(heartbeat.parse::<u32>().is_ok(), "the broker's heartbeat: {heartbeat:?}");
    rabbitmqctl(&["eval", "application:set_env(rabbit, heartbeat, 0)."]);
    let _heartbeat_back = support::scopeguard(move || {
        rabbitmqctl(&["eval", &format!("application:set_env(rabbit, heartbeat, {heartbeat}).")]);
    });
    let name = unique("alarm_nohb");
    let client = Client::start(&name, &["x"], &[("CONCIERGE_PUBLISH_TIMEOUT", "2"), ("CONCIERGE_HEARTBEAT", "0")]);
    let socket = client.bound("listening for check results (TCP and UDP)").await;
    client.ready().await;
    rabbitmqctl(&["set_vm_memory_high_watermark", "absolute", "1"]);
    let cleared = support::scopeguard(|| {
        rabbitmqctl(&["set_vm_memory_high_watermark", "0.8"]);
    });
    submit(socket, 0..20).await;
    client.wait_log("no publish confirm from the broker in time", 1, Duration::from_secs(20)).await;
    drop(cleared);
    let mut names: Vec<String> = Vec::new();
    while let Some((result, _)) =
        results.next_for(&name, Duration::from_secs(if names.len() < 20 { 60 } else { 3 })).await
    {
        names.push(result["check"]["name"].as_str().unwrap().to_string());
    }
    names.dedup();
    names.sort_by_key(|n| n.trim_start_matches("alarm_").parse::<usize>().unwrap());
    names.dedup();
    let expected: Vec<String> = (0..20).map(|i| format!("alarm_{i}")).collect();
    assert_eq!(names, expected, "every result:\n{}", client.logs());
}
