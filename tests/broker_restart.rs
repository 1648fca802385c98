//! A broker restart (`rabbitmqctl stop_app` / `start_app`) in the middle of a stream of
//! checks: the client recovers by itself and no result is lost. Its own test binary,
//! because it restarts the broker every other test shares.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{Client, Proxy, ServerSide, rabbitmqctl, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_mid_stream_loses_no_result() {
    // The client goes through a proxy, so the test can re-attach its own taps after the
    // restart (transient queues and bindings die with the broker) before the client is
    // let back in: the results it buffered must then all arrive.
    let proxy = Proxy::to_broker().await;
    let server = ServerSide::connect().await;
    let mut results = server.tap_results().await;
    let rr = format!("roundrobin:{}", unique("restart"));
    let name = unique("restart");
    let client = Client::start_with_url(&proxy.url(), &name, &[&rr], &[]);
    let http = client.bound("HTTP socket listening").await;
    client.ready().await;
    assert_eq!(healthz(http).await, 200);
    for i in 0..4 {
        server
            .publish_request(&rr, &json!({"command": "sleep 3; echo survived", "name": format!("r{i}"), "issued": 1}))
            .await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.cut();
    rabbitmqctl(&["stop_app"]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The replica cannot work: /healthz says so, and `concierge health` exits 1.
    assert_eq!(healthz(http).await, 503);
    let out = support::bin::concierge().args(["health", "--url", &format!("http://{http}/healthz")]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("not connected to the broker"));
    rabbitmqctl(&["start_app"]);
    rabbitmqctl(&["await_startup"]);

    let server = ServerSide::connect().await;
    let mut results_after = server.tap_results().await;
    let mut keepalives = server.tap_keepalives().await;
    drop(results.next_any(Duration::from_millis(10)).await);
    proxy.restore();

    let done = results_after.collect_for(&name, 4, Duration::from_secs(40)).await;
    let mut names: Vec<String> = done.iter().map(|r| r["check"]["name"].as_str().unwrap().to_string()).collect();
    names.sort();
    assert_eq!(names, ["r0", "r1", "r2", "r3"], "every buffered result arrives:\n{}", client.logs());
    assert!(done.iter().all(|r| r["check"]["output"] == "survived\n"));

    // Fully re-bootstrapped: keepalive, subscription queue re-declared and consumed.
    keepalives.next_for(&name, Duration::from_secs(20)).await.expect("keepalive after the restart");
    client.wait_log("bootstrap complete", 2, Duration::from_secs(20)).await;
    assert_eq!(server.queue_state(&rr).await, Some((0, 1)));
    server.publish_request(&rr, &json!({"command": "echo back", "name": "after", "issued": 1})).await;
    let (result, _) = results_after.next_for(&name, Duration::from_secs(20)).await.expect("requests work again");
    assert_eq!(result["check"]["output"], "back\n");
    assert_eq!(healthz(http).await, 200, "healthy again after the recovery");
}

async fn healthz(addr: std::net::SocketAddr) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.unwrap();
    reply[9..12].parse().unwrap()
}
