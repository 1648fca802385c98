//! The client against a real RabbitMQ (the private broker of `scripts/test.sh`): what a
//! sensu-server would see, message by message. Spec §1, §2, §3.1, §4.1, §4.3; checklist
//! items 1–6, 21, 24, 55–64.

mod support;

use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::json;
use support::{Client, Gate, Proxy, ServerSide, rabbitmqctl, unique};

const WAIT: Duration = Duration::from_secs(20);

fn rows(output: &str, name: &str) -> Vec<Vec<String>> {
    output
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect::<Vec<_>>())
        .filter(|cols| cols.iter().any(|c| c == name))
        .collect()
}

/// `(messages_ready, messages_unacknowledged)` of `queue`, as rabbitmqctl lists them.
fn ready_and_unacked(queue: &str) -> Option<(String, String)> {
    let listing =
        rabbitmqctl(&["list_queues", "-q", "--no-table-headers", "name", "messages_ready", "messages_unacknowledged"]);
    rows(&listing, queue).first().map(|row| (row[1].clone(), row[2].clone()))
}

/// [`ready_and_unacked`] once it reads `expected`, or after 10 s whatever it reads then.
async fn settle_to(queue: &str, expected: (&str, &str)) -> Option<(String, String)> {
    let expected = Some((expected.0.to_string(), expected.1.to_string()));
    settle(|| ready_and_unacked(queue), expected, Duration::from_secs(10)).await
}

/// `read()` once it returns `expected`, or after `within` whatever it returns then.
async fn settle<T: PartialEq>(read: impl Fn() -> T, expected: T, within: Duration) -> T {
    let deadline = tokio::time::Instant::now() + within;
    while read() != expected && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    read()
}

// Items 1, 55; spec §1.2: exchanges, queues and bindings with Sensu's exact flags.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topology_has_sensus_exact_flags() {
    let name = unique("topo");
    let fanout = unique("linux");
    let rr = format!("roundrobin:{}", unique("ext"));
    let direct = format!("direct:{}", unique("d"));
    let client = Client::start(&name, &[&fanout, &rr, &direct], &[]);
    client.ready().await;

    let queues = rabbitmqctl(&["list_queues", "name", "durable", "auto_delete", "exclusive", "arguments", "consumers"]);
    let funnel: Vec<Vec<String>> = queues
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .filter(|c: &Vec<String>| c[0].starts_with(&format!("{name}-1.9.0-")))
        .collect();
    assert_eq!(funnel.len(), 1, "one funnel queue per process: {queues}");
    assert_eq!(funnel[0][1..], ["false", "true", "false", "[]", "1"], "funnel flags");
    for shared in [&rr, &direct] {
        assert_eq!(rows(&queues, shared)[0][1..], ["false", "true", "false", "[]", "1"], "{shared} flags");
    }

    let exchanges = rabbitmqctl(&["list_exchanges", "name", "type", "durable", "auto_delete", "internal", "arguments"]);
    let client_sub = format!("client:{name}");
    for (exchange, kind) in [
        (fanout.as_str(), "fanout"),
        (client_sub.as_str(), "fanout"),
        (rr.as_str(), "direct"),
        (direct.as_str(), "direct"),
        ("keepalives", "direct"),
        ("results", "direct"),
    ] {
        let row = &rows(&exchanges, exchange)[0];
        assert_eq!(row[1..], [kind, "false", "false", "false", "[]"], "exchange {exchange}");
    }

    let bindings = rabbitmqctl(&["list_bindings", "source_name", "destination_name", "routing_key"]);
    let funnel_name = &funnel[0][0];
    for (source, destination) in [
        (fanout.as_str(), funnel_name.as_str()),
        (client_sub.as_str(), funnel_name.as_str()),
        (rr.as_str(), rr.as_str()),
        (direct.as_str(), direct.as_str()),
    ] {
        assert!(
            bindings.lines().any(|l| l == format!("{source}\t{destination}\t")),
            "binding {source} -> {destination} with routing key \"\" missing:\n{bindings}"
        );
    }

    let consumers = rabbitmqctl(&["list_consumers", "queue_name", "ack_required", "prefetch_count"]);
    let row = &rows(&consumers, &rr)[0];
    assert_eq!(row[1], "true", "requests are acknowledged after publish by default");
}

// Items 2, 3; spec §2: keepalive payload, first one at once, then every 20 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalives_carry_client_settings_redacted_and_come_every_20s() {
    let server = ServerSide::connect().await;
    let mut keepalives = server.tap_keepalives().await;
    let name = unique("ka");
    let started = std::time::Instant::now();
    let client = Client::start(
        &name,
        &["linux"],
        &[
            ("SENSU_CLIENT_ADDRESS", "10.0.0.5"),
            (
                "CONCIERGE_CLIENT_ATTRIBUTES",
                r#"{"environment":"peer","service":{"password":"secret"},"keepalive":{"thresholds":{"warning":120,"critical":180}}}"#,
            ),
        ],
    );
    let (first, delivery) = keepalives.next_for(&name, WAIT).await.expect("first keepalive");
    let first_at = started.elapsed();
    assert_eq!(first["name"], name.as_str());
    assert_eq!(first["address"], "10.0.0.5");
    assert_eq!(first["subscriptions"], json!(["linux", format!("client:{name}")]));
    assert_eq!(first["environment"], "peer");
    assert_eq!(first["service"]["password"], "REDACTED");
    assert_eq!(first["keepalive"], json!({"thresholds": {"warning": 120, "critical": 180}}));
    assert_eq!(first["version"], "1.9.0");
    let now = chrono::Utc::now().timestamp();
    assert!((now - first["timestamp"].as_i64().unwrap()).abs() <= 10);
    // Same key order as the captured sample: client attributes, then version, timestamp.
    let keys: Vec<&String> = first.as_object().unwrap().keys().collect();
    assert_eq!(keys.last().unwrap().as_str(), "timestamp");
    assert_eq!(keys[keys.len() - 2].as_str(), "version");
    // The replica's load, for `concierge autoscale`, among the attributes.
    assert_eq!(keys[keys.len() - 3].as_str(), "concierge");
    assert_eq!(first["concierge"]["busy_ratio"], 0.0);
    assert!(first["concierge"]["slots"].as_u64().unwrap() > first["concierge"]["command_slots"].as_u64().unwrap());
    assert_properties(&delivery);

    let (second, _) = keepalives.next_for(&name, Duration::from_secs(30)).await.expect("second keepalive");
    let gap = started.elapsed() - first_at;
    assert!(gap >= Duration::from_secs(19) && gap <= Duration::from_secs(22), "keepalive period {gap:?}");
    assert!(second["timestamp"].as_i64().unwrap() >= first["timestamp"].as_i64().unwrap() + 19);
    drop(client);
}

fn assert_properties(delivery: &lapin::message::Delivery) {
    assert_eq!(delivery.routing_key.as_str(), "");
    let p = &delivery.properties;
    assert_eq!(p.content_type().as_ref().map(|s| s.as_str()), Some("application/octet-stream"));
    assert_eq!(*p.delivery_mode(), Some(1));
    assert_eq!(*p.priority(), Some(0));
    assert!(p.headers().is_none() && p.message_id().is_none() && p.timestamp().is_none());
}

// Items 4, 21, 24; spec §3.1, §4.1: requests on fanout, round-robin and client:NAME
// produce results shaped exactly like the captured samples.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_on_every_kind_of_subscription_produce_exact_results() {
    let server = ServerSide::connect().await;
    let mut results = server.tap_results().await;
    let name = unique("req");
    let fanout = unique("linux");
    let rr = format!("roundrobin:{}", unique("external"));
    let client = Client::start(&name, &[&fanout, &rr], &[]);
    client.ready().await;

    // As in check-request-fanout-linux.json.
    server
        .publish_request(&fanout, &json!({"command": "echo ok", "name": "check_echo_ok", "issued": 1795234867}))
        .await;
    let (result, delivery) = results.next_for(&name, WAIT).await.expect("fanout result");
    assert_properties(&delivery);
    let check = result["check"].as_object().unwrap();
    let keys: Vec<&str> = check.keys().map(String::as_str).collect();
    assert_eq!(keys, ["command", "name", "issued", "executed", "duration", "output", "status"]);
    assert_eq!(result.as_object().unwrap().keys().collect::<Vec<_>>(), ["client", "check"]);
    assert_eq!(check["output"], "ok\n");
    assert_eq!(check["status"], 0);
    assert_eq!(check["issued"], 1795234867);
    assert!(check["executed"].is_i64());
    assert!(check["duration"].is_f64());

    // Round-robin, as check-request-roundrobin-external.json.
    server
        .publish_request(&rr, &json!({"command": "echo rr-ok", "name": "check_rr_external", "issued": 1795234870}))
        .await;
    let (result, _) = results.next_for(&name, WAIT).await.expect("round-robin result");
    assert_eq!(result["check"]["output"], "rr-ok\n");

    // The API's ad-hoc request on client:NAME, with api_requested and a custom attribute.
    server
        .publish_request(
            &format!("client:{name}"),
            &json!({"command": "echo WARNING && exit 1", "name": "adhoc", "api_requested": {"reason": null, "creator": null}, "team": "ops", "source": "", "issued": 1795234865}),
        )
        .await;
    let (result, _) = results.next_for(&name, WAIT).await.expect("client subscription result");
    assert_eq!(result["check"]["output"], "WARNING\n");
    assert_eq!(result["check"]["status"], 1);
    assert_eq!(result["check"]["api_requested"], json!({"reason": null, "creator": null}));
    assert_eq!(result["check"]["team"], "ops");
    assert!(result["check"].get("source").is_none(), "an empty source is removed (item 5)");
    // …the other keys keeping their order, as Ruby's `Hash#delete` leaves them.
    let keys: Vec<&str> = result["check"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["command", "name", "api_requested", "team", "issued", "executed", "duration", "output", "status"]
    );
}

// Items 33, 71 (client side): a signature is added to results and keepalives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signature_goes_on_every_result_and_keepalive() {
    let server = ServerSide::connect().await;
    let mut results = server.tap_results().await;
    let mut keepalives = server.tap_keepalives().await;
    let name = unique("sig");
    let rr = format!("roundrobin:{}", unique("sig"));
    let client = Client::start(&name, &[&rr], &[("CONCIERGE_SIGNATURE", "s3cr3t")]);
    let (keepalive, _) = keepalives.next_for(&name, WAIT).await.unwrap();
    assert_eq!(keepalive["signature"], "s3cr3t", "sensu-client sends the signature in clear");
    client.ready().await;
    server.publish_request(&rr, &json!({"command": "true", "name": "t", "issued": 1})).await;
    let (result, _) = results.next_for(&name, WAIT).await.unwrap();
    assert_eq!(result["signature"], "s3cr3t");
}

// Two clients on one round-robin queue both do work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_share_a_round_robin_subscription() {
    let server = ServerSide::connect().await;
    let mut results = server.tap_results().await;
    let rr = format!("roundrobin:{}", unique("shared"));
    let (a, b) = (unique("rr-a"), unique("rr-b"));
    let ca = Client::start(&a, &[&rr], &[("CONCIERGE_PREFETCH", "1")]);
    let cb = Client::start(&b, &[&rr], &[("CONCIERGE_PREFETCH", "1")]);
    ca.ready().await;
    cb.ready().await;
    for i in 0..20 {
        server
            .publish_request(&rr, &json!({"command": "sleep 0.1; echo done", "name": format!("c{i}"), "issued": 1}))
            .await;
    }
    let mut by_client = std::collections::HashMap::<String, usize>::new();
    let mut names = std::collections::HashSet::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while names.len() < 20 && tokio::time::Instant::now() < deadline {
        let Some(r) = results.next_any(Duration::from_millis(500)).await else { continue };
        let client = r["client"].as_str().unwrap().to_string();
        if client == a || client == b {
            *by_client.entry(client).or_default() += 1;
            names.insert(r["check"]["name"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(names.len(), 20, "every request answered: {by_client:?}");
    assert_eq!(by_client.values().sum::<usize>(), 20, "and only once: {by_client:?}");
    assert!(
        by_client.get(&a).copied().unwrap_or(0) >= 3 && by_client.get(&b).copied().unwrap_or(0) >= 3,
        "{by_client:?}"
    );
}

// Acknowledgements are queued on the channel, not awaited, and sent together (README,
// "Benchmarks"): every answered request still reaches the broker as acked, the last ones
// included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answered_request_is_acknowledged() {
    let server = ServerSide::connect().await;
    let mut results = server.tap_results().await;
    let rr = format!("roundrobin:{}", unique("acked"));
    let name = unique("acker");
    let client = Client::start(&name, &[&rr], &[("CONCIERGE_PREFETCH", "4")]);
    client.ready().await;
    // Five times the prefetch: a request that was never acked would stop the delivery of
    // the ones behind it.
    for i in 0..20 {
        server.publish_request(&rr, &json!({"command": "echo ok", "name": format!("a{i}"), "issued": 1})).await;
    }
    assert_eq!(results.collect_for(&name, 20, WAIT).await.len(), 20, "{}", client.logs());
    assert_eq!(settle_to(&rr, ("0", "0")).await, Some(("0".into(), "0".into())), "ready and unacknowledged on {rr}");
}

// A batch of results waits only for the broker's answer to its last publish, then reads
// every result's own (README, "Benchmarks"): a result the broker nacks is not taken as
// confirmed. In a vhost of its own, a queue that takes nothing (`x-max-length` 0,
// `reject-publish`) is bound to `results`, so the broker nacks every result: the client
// publishes it again and again on the same session, each time after a longer pause, confirms
// none, and once that queue is gone, confirms it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nacked_result_is_published_again_until_the_broker_takes_it() {
    use lapin::options::{QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions};
    use lapin::types::{AMQPValue, FieldTable};
    let vhost = unique("nacks");
    rabbitmqctl(&["add_vhost", &vhost]);
    rabbitmqctl(&["set_permissions", "-p", &vhost, "guest", ".*", ".*", ".*"]);
    let url = support::amqp_url().replace("/%2f", &format!("/{vhost}"));
    let server = ServerSide::connect_to(&url).await;
    let mut results = server.tap_results().await;
    let mut full = FieldTable::default();
    full.insert("x-max-length".into(), AMQPValue::LongInt(0));
    full.insert("x-overflow".into(), AMQPValue::LongString("reject-publish".into()));
    server.channel.queue_declare("full".into(), QueueDeclareOptions::default(), full).await.expect("full queue");
    let bind = server.channel.queue_bind(
        "full".into(),
        "results".into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    );
    bind.await.expect("bind the full queue");

    let rr = format!("roundrobin:{}", unique("nacked"));
    let name = unique("nacked");
    let client = Client::start_with_url(&url, &name, &[&rr], &[]);
    client.ready().await;
    let http = client.bound("HTTP socket listening").await;
    let published = || support::web::metric(http.port(), "concierge_results_published_total");
    server.publish_request(&rr, &json!({"command": "echo ok", "name": "nacked", "issued": 1})).await;
    // The tap takes each copy; the broker nacks each publish, as the full queue refuses it.
    let copies = results.collect_for(&name, 2, WAIT).await;
    assert_eq!(copies.len(), 2, "published again after a nack: {}", client.logs());
    assert!(copies.iter().all(|r| r["check"]["name"] == "nacked"));
    assert_eq!(published(), Some(0.0), "a nacked result counted as confirmed");
    let nacked = support::web::metric(http.port(), "concierge_results_nacked_total");
    assert!(nacked.is_some_and(|n| n >= 1.0), "the first copy's nack counted before the second went: {nacked:?}");
    // Published again on the same session: a nack says nothing of the connection, and
    // reconnecting would hand back every request running on it.
    let reconnects = support::web::metric(http.port(), "concierge_reconnects_total");
    assert_eq!(reconnects, Some(0.0), "reconnected after a nack: {}", client.logs());
    // Each try the broker refuses again waits longer (1 s, then 2 s, …): other queues bound to
    // `results` may have taken every copy. A lower bound only, which a slow machine keeps.
    let second = std::time::Instant::now();
    assert!(results.next_for(&name, WAIT).await.is_some(), "a third copy: {}", client.logs());
    let waited = second.elapsed();
    assert!(waited >= Duration::from_millis(1500), "the third copy {waited:?} after the second");

    server.channel.queue_delete("full".into(), QueueDeleteOptions::default()).await.expect("delete the full queue");
    assert_eq!(
        settle(published, Some(1.0), WAIT).await,
        Some(1.0),
        "confirmed once the broker took it: {}",
        client.logs()
    );
    drop(client);
    rabbitmqctl(&["delete_vhost", &vhost]);
}

// Acknowledgements wait up to 20 ms to go out together, one `basic.ack` with `multiple`
// covering many (README, "Benchmarks"). A request still running below acked ones is never
// covered: twenty fast requests are acked (in fewer frames than requests), then a slow
// one runs while thirty more behind it are acked; it alone stays unacknowledged, and when
// its client is killed it goes to another replica — alone, as nothing acked was lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_sent_together_never_cover_a_running_request() {
    let server = ServerSide::connect().await;
    let mut results = server.tap_results().await;
    let rr = format!("roundrobin:{}", unique("gap"));
    let (a, b) = (unique("gapped"), unique("taker"));
    let mut victim = Client::start(&a, &[&rr], &[]);
    victim.ready().await;
    let fast = |i: usize| json!({"command": "echo ok", "name": format!("fast{i}"), "issued": 1});
    for i in 0..20 {
        server.publish_request(&rr, &fast(i)).await;
    }
    assert_eq!(results.collect_for(&a, 20, WAIT).await.len(), 20, "{}", victim.logs());
    assert_eq!(settle_to(&rr, ("0", "0")).await, Some(("0".into(), "0".into())), "the first twenty acknowledged");
    // Together: fewer frames than requests (the client's own count, on /metrics).
    let http = victim.bound("HTTP socket listening").await;
    let metric = |name| support::web::metric(http.port(), name);
    let (acked, frames) = (metric("concierge_requests_acked_total"), metric("concierge_ack_frames_total"));
    assert_eq!(acked, Some(20.0));
    assert!(frames.is_some_and(|f| (1.0..20.0).contains(&f)), "{frames:?} frames for 20 acks");

    let gate = Gate::closed();
    let slow = json!({"command": gate.command("echo finished"), "name": "slow", "issued": 1});
    server.publish_request(&rr, &slow).await;
    for i in 20..50 {
        server.publish_request(&rr, &fast(i)).await;
    }
    assert_eq!(results.collect_for(&a, 30, WAIT).await.len(), 30, "{}", victim.logs());
    assert_eq!(
        settle_to(&rr, ("0", "1")).await,
        Some(("0".into(), "1".into())),
        "only the running request unacknowledged"
    );

    let taker = Client::start(&b, &[&rr], &[]);
    taker.ready().await;
    victim.signal(Signal::SIGKILL);
    victim.wait_exit(Duration::from_secs(5)).await.expect("killed");
    gate.open();
    let done = results.collect_for(&b, 1, Duration::from_secs(30)).await;
    assert_eq!(done[0]["check"]["name"], "slow", "{}", taker.logs());
    assert_eq!(done[0]["check"]["output"], "finished\n");
    assert!(results.next_for(&b, Duration::from_secs(1)).await.is_none(), "no acked request came back");
}

// A request delivered again while it still runs here — the broker took away the channel it
// came on, so the run can no longer ack it — is not acked as a duplicate of itself: it is
// held until that run ends, then runs again, and is acked once that result is confirmed.
// (Acked at once, it was gone from the broker before any result of it was safe.) A second
// consumer holding one message of its own keeps the auto-delete queue through the cut and
// leaves every other message to the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_redelivered_while_it_runs_is_held_and_run_again() {
    use lapin::options::{BasicConsumeOptions, BasicQosOptions, QueueBindOptions, QueueDeclareOptions};
    use lapin::types::FieldTable;
    let proxy = Proxy::to_broker().await;
    let server = ServerSide::connect().await;
    let mut results = server.tap_results().await;
    let rr = format!("roundrobin:{}", unique("again"));
    let holder = ServerSide::connect().await;
    holder.channel.basic_qos(1, BasicQosOptions::default()).await.expect("qos");
    let queue = QueueDeclareOptions { auto_delete: true, ..QueueDeclareOptions::default() };
    holder.channel.queue_declare(rr.as_str().into(), queue, FieldTable::default()).await.expect("queue");
    support::broker::declare_exchange(&holder.channel, &rr, lapin::ExchangeKind::Direct).await;
    let bind = QueueBindOptions::default();
    holder
        .channel
        .queue_bind(rr.as_str().into(), rr.as_str().into(), "".into(), bind, FieldTable::default())
        .await
        .expect("bind");
    let _held = holder
        .channel
        .basic_consume(rr.as_str().into(), "holder".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .expect("consume");
    server.publish_request(&rr, &json!({"command": "true", "name": "held", "issued": 1})).await;
    assert_eq!(settle_to(&rr, ("0", "1")).await, Some(("0".into(), "1".into())), "the holder's own message");

    let name = unique("again");
    let client = Client::start_with_url(&proxy.url(), &name, &[&rr], &[]);
    client.ready().await;
    client.wait_log("bootstrap complete", 1, WAIT).await;
    let http = client.bound("HTTP socket listening").await;
    let gate = Gate::closed();
    server.publish_request(&rr, &json!({"command": gate.command("echo finished"), "name": "slow", "issued": 7})).await;
    assert_eq!(settle_to(&rr, ("0", "2")).await, Some(("0".into(), "2".into())), "running: {}", client.logs());
    proxy.cut();
    proxy.restore();
    client.wait_log("bootstrap complete", 2, WAIT).await;
    // Redelivered to the client's new session while the first run still waits at the gate.
    let redelivered = || support::web::metric(http.port(), "concierge_requests_redelivered_total");
    assert_eq!(settle(redelivered, Some(1.0), WAIT).await, Some(1.0), "{}", client.logs());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(ready_and_unacked(&rr), Some(("0".into(), "2".into())), "the redelivered copy was acked");

    gate.open();
    let done = results.collect_for(&name, 2, WAIT).await;
    assert_eq!(done.len(), 2, "the first run's result, then the copy's: {}", client.logs());
    assert!(done.iter().all(|r| r["check"]["name"] == "slow" && r["check"]["output"] == "finished\n"));
    assert_eq!(
        settle_to(&rr, ("0", "1")).await,
        Some(("0".into(), "1".into())),
        "acked once its own run was confirmed"
    );
    assert!(results.next_for(&name, Duration::from_secs(1)).await.is_none(), "run a third time");
}

// A client killed mid-check loses nothing: its unacknowledged requests go to a replica
// still consuming the queue. (With no consumer left, the auto-delete queue goes away with
// its messages: Sensu's topology, which Concierge keeps.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_check_loses_no_request() {
    let server = ServerSide::connect().await;
    let mut results = server.tap_results().await;
    let rr = format!("roundrobin:{}", unique("kill"));
    let (a, b) = (unique("victim"), unique("survivor"));
    let mut victim = Client::start(&a, &[&rr], &[]);
    victim.ready().await;
    // The checks run until the test says so, however long the replicas take to start.
    let gate = Gate::closed();
    for i in 0..5 {
        let request = json!({"command": gate.command("echo finished"), "name": format!("slow{i}"), "issued": 1});
        server.publish_request(&rr, &request).await;
    }
    // All five are running on the victim (prefetch = execution slots); then a second
    // replica joins and finds the queue empty.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let survivor = Client::start(&b, &[&rr], &[]);
    survivor.ready().await;
    assert_eq!(server.queue_state(&rr).await, Some((0, 2)), "the victim holds every request");
    victim.signal(Signal::SIGKILL);
    victim.wait_exit(Duration::from_secs(5)).await.expect("killed");
    gate.open();
    let done = results.collect_for(&b, 5, Duration::from_secs(30)).await;
    let mut names: Vec<String> = done.iter().map(|r| r["check"]["name"].as_str().unwrap().to_string()).collect();
    names.sort();
    assert_eq!(names, ["slow0", "slow1", "slow2", "slow3", "slow4"], "{}", survivor.logs());
    assert!(results.next_for(&a, Duration::from_millis(100)).await.is_none(), "the victim published nothing");
}

// Requests that wait for a command slot run in the order they arrived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_requests_run_in_arrival_order() {
    let server = ServerSide::connect().await;
    let mut results = server.tap_results().await;
    let name = unique("orderly");
    let client = Client::start(&name, &["ordered"], &[("CONCIERGE_COMMAND_CONCURRENCY", "1")]);
    client.ready().await;
    let direct = format!("client:{name}");
    for i in 0..8 {
        let request = json!({"command": format!("sleep 0.05; echo q{i}"), "name": format!("q{i}"), "issued": 1});
        server.publish_request(&direct, &request).await;
    }
    let order: Vec<String> = results
        .collect_for(&name, 8, WAIT)
        .await
        .iter()
        .map(|r| r["check"]["name"].as_str().unwrap().to_string())
        .collect();
    let expected: Vec<String> = (0..8).map(|i| format!("q{i}")).collect();
    assert_eq!(order, expected, "{}", client.logs());
}

// Items 6; spec §4.3: SIGTERM lets running checks finish, publishes their results and
// the deregistration, hands back what had not started, and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_deregisters_and_exits_cleanly() {
    let server = ServerSide::connect().await;
    let mut results = server.tap_results().await;
    let rr = format!("roundrobin:{}", unique("drain"));
    let name = unique("drainer");
    let mut client = Client::start(
        &name,
        &[&rr],
        &[
            ("CONCIERGE_DEREGISTER", "true"),
            ("CONCIERGE_CLIENT_ATTRIBUTES", r#"{"deregistration":{"handler":"DEREGISTER_HANDLER"}}"#),
            ("CONCIERGE_COMMAND_CONCURRENCY", "1"),
            ("CONCIERGE_PREFETCH", "3"),
        ],
    );
    client.ready().await;
    let gate = Gate::closed();
    for i in 0..3 {
        let request = json!({"command": gate.command("echo drained"), "name": format!("d{i}"), "issued": 1});
        server.publish_request(&rr, &request).await;
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Another replica, which finds the queue empty (the first holds all three).
    let peer = unique("peer");
    let peer_client = Client::start(&peer, &[&rr], &[]);
    peer_client.ready().await;
    client.signal(Signal::SIGTERM);
    // The running check finishes once the drain has handed back the waiting ones.
    tokio::time::sleep(Duration::from_millis(500)).await;
    gate.open();
    let status = client.wait_exit(Duration::from_secs(10)).await.expect("exits within the grace");
    assert_eq!(status.code(), Some(0), "{}", client.logs());

    // The draining client publishes what it ran (the check running at SIGTERM), then the
    // deregistration, last; the peer runs what was handed back, meanwhile.
    let (mut ran, mut handed_back, mut dereg) = (Vec::new(), Vec::new(), None);
    while dereg.is_none() || handed_back.len() < 2 {
        let result = results.next_any(WAIT).await.unwrap_or_else(|| {
            panic!("ran {ran:?}, peer {handed_back:?}, deregistered {}\n{}", dereg.is_some(), peer_client.logs())
        });
        let check = result["check"].clone();
        if result["client"] == name.as_str() {
            assert!(dereg.is_none(), "nothing after the deregistration: {result}");
            if check["name"] == "deregistration" {
                dereg = Some(check);
            } else {
                assert_eq!(check["output"], "drained\n");
                ran.push(check["name"].as_str().unwrap().to_string());
            }
        } else if result["client"] == peer.as_str() {
            handed_back.push(check["name"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(ran, ["d0"], "the running check finished; the waiting ones were handed back");
    handed_back.sort();
    assert_eq!(handed_back, ["d1", "d2"], "the other replica ran what was handed back");
    let check = dereg.unwrap();
    assert_eq!(check["handler"], "DEREGISTER_HANDLER");
    assert_eq!(check["status"], 1);
    assert_eq!(check["output"], "client initiated deregistration");
    assert_eq!(check["issued"], check["executed"]);
}

// A flood of malformed messages is rejected and counted; valid requests still run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_flood_does_not_stop_valid_requests() {
    let server = ServerSide::connect().await;
    let mut results = server.tap_results().await;
    let rr = format!("roundrobin:{}", unique("flood"));
    let name = unique("flooded");
    let client = Client::start(&name, &[&rr], &[]);
    client.ready().await;
    let huge = vec![b'{'; 2 * 1024 * 1024];
    for i in 0..400 {
        let body: Vec<u8> = match i % 5 {
            0 => b"not json at all".to_vec(),
            1 => b"[1,2,3]".to_vec(),
            2 => br#"{"command":"echo no name"}"#.to_vec(),
            3 => b"\xff\xfe\x00garbage".to_vec(),
            _ => br#"{"name":42}"#.to_vec(),
        };
        server.publish_raw(&rr, &body).await;
    }
    server.publish_raw(&rr, &huge).await;
    server.publish_request(&rr, &json!({"command": "echo still here", "name": "valid", "issued": 1})).await;
    let (result, _) = results.next_for(&name, WAIT).await.expect("valid request still served");
    assert_eq!(result["check"]["output"], "still here\n");
    // Rejected without requeue: nothing left on the queue, one log line per kind.
    assert_eq!(server.queue_state(&rr).await, Some((0, 1)));
    let logged = client.count_log("failed to parse the check request payload");
    assert!((1..=5).contains(&logged), "logged once per kind, got {logged}");
}

// Items 56, 61–63: several brokers (shuffled, next on failure), unreachable and
// unresolvable ones do not crash the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn falls_through_bad_brokers_to_a_good_one() {
    let port: u16 = std::env::var("CONCIERGE_TEST_AMQP_PORT").unwrap().parse().unwrap();
    let brokers = json!({"rabbitmq": [
        {"host": "no-such-host.invalid", "port": port},
        {"host": "127.0.0.1", "port": 1},
        {"host": "localhost", "port": port, "user": "guest", "password": "guest"}
    ]});
    let server = ServerSide::connect().await;
    let mut keepalives = server.tap_keepalives().await;
    let name = unique("multi");
    let client = Client::start(
        &name,
        &["x"],
        &[("CONCIERGE_CONFIG_JSON", &brokers.to_string()), ("CONCIERGE_CONNECT_TIMEOUT", "2")],
    );
    // Three brokers in random order: at worst two failures (2 s + 4 s back-off) first.
    let (keepalive, _) =
        keepalives.next_for(&name, Duration::from_secs(30)).await.unwrap_or_else(|| panic!("{}", client.logs()));
    assert_eq!(keepalive["name"], name.as_str());
}

// sensu-client's auto-ack behaviour is one setting away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_ack_mode_consumes_without_acks() {
    let server = ServerSide::connect().await;
    let mut results = server.tap_results().await;
    let rr = format!("roundrobin:{}", unique("auto"));
    let name = unique("autoack");
    let client = Client::start(&name, &[&rr], &[("CONCIERGE_ACK_MODE", "auto")]);
    client.ready().await;
    let consumers = rabbitmqctl(&["list_consumers", "queue_name", "ack_required"]);
    assert_eq!(rows(&consumers, &rr)[0][1], "false");
    server.publish_request(&rr, &json!({"command": "echo auto", "name": "a", "issued": 1})).await;
    assert_eq!(results.next_for(&name, WAIT).await.unwrap().0["check"]["output"], "auto\n");
}

// Results produced while the broker is unreachable are kept and published after the
// reconnect, which re-bootstraps everything (keepalive, subscriptions).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_survive_a_lost_connection_and_the_client_rebootstraps() {
    let proxy = Proxy::to_broker().await;
    let server = ServerSide::connect().await;
    let mut results = server.tap_results().await;
    let mut keepalives = server.tap_keepalives().await;
    let rr = format!("roundrobin:{}", unique("cut"));
    let name = unique("cut");
    let client = Client::start_with_url(&proxy.url(), &name, &[&rr], &[("CONCIERGE_ACK_MODE", "auto")]);
    client.ready().await;
    keepalives.next_for(&name, WAIT).await.expect("first keepalive");
    for i in 0..3 {
        server
            .publish_request(&rr, &json!({"command": "sleep 1.5; echo survived", "name": format!("s{i}"), "issued": 1}))
            .await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.cut();
    // The checks finish while the client is cut off.
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.restore();
    let done = results.collect_for(&name, 3, Duration::from_secs(30)).await;
    assert_eq!(done.len(), 3, "buffered results published after reconnect:\n{}", client.logs());
    assert!(done.iter().all(|r| r["check"]["output"] == "survived\n"));
    // Re-bootstrapped: a fresh keepalive and a working subscription.
    keepalives.next_for(&name, WAIT).await.expect("keepalive after reconnect");
    client.wait_log("bootstrap complete", 2, WAIT).await;
    server.publish_request(&rr, &json!({"command": "echo again", "name": "after", "issued": 1})).await;
    assert_eq!(results.next_for(&name, WAIT).await.unwrap().0["check"]["output"], "again\n");
}

// Results sent to the local socket while the broker is unreachable: "ok" means all of them
// are queued in the bounded results buffer before the answer (one at a time, each waiting
// for the one before to be confirmed, the rest waited outside the buffer, unbounded and
// unseen by the drain), and once the broker is back they arrive whole and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_results_are_buffered_whole_while_the_broker_is_away() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let proxy = Proxy::to_broker().await;
    let server = ServerSide::connect().await;
    let mut results = server.tap_results().await;
    let name = unique("away");
    let client = Client::start_with_url(&proxy.url(), &name, &["x"], &[]);
    let socket = client.bound("listening for check results (TCP and UDP)").await;
    let http = client.bound("HTTP socket listening").await;
    client.ready().await;
    proxy.cut();
    let burst: Vec<serde_json::Value> = (0..300).map(|i| json!({"name": format!("away_{i}"), "output": "x"})).collect();
    let mut stream = tokio::net::TcpStream::connect(socket).await.unwrap();
    stream.write_all(&serde_json::to_vec(&burst).unwrap()).await.unwrap();
    let mut reply = String::new();
    tokio::time::timeout(WAIT, stream.read_to_string(&mut reply)).await.unwrap().unwrap();
    assert_eq!(reply, "ok");
    let buffered = || support::web::metric(http.port(), "concierge_results_buffered");
    assert_eq!(settle(buffered, Some(300.0), Duration::from_secs(5)).await, Some(300.0), "{}", client.logs());
    proxy.restore();
    let names: Vec<String> = results
        .collect_for(&name, 300, Duration::from_secs(60))
        .await
        .iter()
        .map(|r| r["check"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, (0..300).map(|i| format!("away_{i}")).collect::<Vec<_>>(), "{}", client.logs());
}

// SIGHUP reloads subscriptions and checks without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_subscriptions() {
    let server = ServerSide::connect().await;
    let mut results = server.tap_results().await;
    let first = format!("roundrobin:{}", unique("before"));
    let second = format!("roundrobin:{}", unique("after"));
    let name = unique("reload");
    let client = Client::start(&name, &[&first], &[("CONCIERGE_CONFIG_DIR", "conf.d")]);
    client.ready().await;
    let conf = client.dir.path().join("conf.d");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(conf.join("extra.json"), json!({"client": {"subscriptions": [second]}}).to_string()).unwrap();
    client.signal(Signal::SIGHUP);
    client.wait_log("configuration reloaded", 1, WAIT).await;
    server.publish_request(&second, &json!({"command": "echo reloaded", "name": "r", "issued": 1})).await;
    assert_eq!(results.next_for(&name, WAIT).await.unwrap().0["check"]["output"], "reloaded\n");
    server.publish_request(&first, &json!({"command": "echo kept", "name": "k", "issued": 1})).await;
    assert_eq!(results.next_for(&name, WAIT).await.unwrap().0["check"]["output"], "kept\n");
    assert_eq!(server.queue_state(&second).await.map(|s| s.1), Some(1));
}

// Reloads under load: the new consumers start before the old ones stop (the queue is
// auto-delete), and requests that arrive at an old consumer until the broker confirms its
// cancel go back to the queue and are answered through the new consumers. Four reloads
// while 1,000 requests flow: every request answered exactly once, nothing left
// unacknowledged on the channel, which the reloads keep open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_under_load_leave_nothing_unacknowledged() {
    reloads_under_load(&[]).await;
}

// The same without acks (`CONCIERGE_ACK_MODE=auto`): a request delivered to an old consumer
// is the client's already, so it runs rather than going back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_under_load_without_acks_answer_every_request() {
    reloads_under_load(&[("CONCIERGE_ACK_MODE", "auto")]).await;
}

async fn reloads_under_load(env: &[(&str, &str)]) {
    let server = ServerSide::connect().await;
    let mut results = server.tap_results().await;
    let rr = format!("roundrobin:{}", unique("reloading"));
    let name = unique("reloader");
    let client = Client::start(&name, &[&rr], env);
    client.ready().await;
    let total = 1000;
    let publishing = {
        let rr = rr.clone();
        tokio::spawn(async move {
            let server = ServerSide::connect().await;
            for i in 0..total {
                // An unknown extension: answered at once with status 3, no process to fork.
                server.publish_request(&rr, &json!({"name": format!("r{i}"), "extension": "none", "issued": 1})).await;
            }
        })
    };
    // A reload after 50, 150, 250 and 350 results, each once the one before is done.
    let mut names = std::collections::HashSet::new();
    let (mut received, mut reloads) = (0, 0);
    let deadline = tokio::time::Instant::now() + WAIT;
    while names.len() < total && tokio::time::Instant::now() < deadline {
        if let Some((result, _)) = results.next_for(&name, Duration::from_secs(1)).await {
            received += 1;
            names.insert(result["check"]["name"].as_str().unwrap().to_string());
        }
        if reloads < 4 && received >= 50 + 100 * reloads && client.count_log("configuration reloaded") == reloads {
            if reloads == 0 {
                assert!(!publishing.is_finished(), "the reloads overlap the traffic");
            }
            client.signal(Signal::SIGHUP);
            reloads += 1;
        }
    }
    publishing.await.unwrap();
    client.wait_log("configuration reloaded", 4, WAIT).await;
    assert_eq!(names.len(), total, "(ready, unacknowledged) {:?}", ready_and_unacked(&rr));
    while results.next_for(&name, Duration::from_millis(500)).await.is_some() {
        received += 1;
    }
    assert_eq!(received, total, "every request answered once");
    assert_eq!(
        settle_to(&rr, ("0", "0")).await,
        Some(("0".into(), "0".into())),
        "ready and unacknowledged on {rr}: {}",
        client.logs()
    );
}

// Standalone checks are scheduled by the client and published with the definition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_checks_are_published() {
    let server = ServerSide::connect().await;
    let mut results = server.tap_results().await;
    let name = unique("standalone");
    let config =
        json!({"checks": {"standalone": {"command": "echo foobar && exit 1", "standalone": true, "interval": 1}}});
    let _client = Client::start(&name, &["x"], &[("CONCIERGE_CONFIG_JSON", &config.to_string())]);
    let (result, _) = results.next_for(&name, WAIT).await.expect("standalone result");
    let check = &result["check"];
    assert_eq!(check["output"], "foobar\n");
    assert_eq!(check["status"], 1);
    assert_eq!(check["standalone"], true);
    assert_eq!(check["interval"], 1);
    assert!(check["issued"].is_i64());
}

#[test]
fn invalid_broker_settings_are_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = support::bin::concierge_in(dir.path()).arg("run").env("RABBITMQ_URL", "http://nope").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("rabbitmq: invalid URL"), "{stderr}");
}

fn tls_file(name: &str) -> String {
    format!("{}/{name}", std::env::var("CONCIERGE_TEST_TLS_DIR").expect("CONCIERGE_TEST_TLS_DIR (scripts/test.sh)"))
}

fn amqps_url(host: &str) -> String {
    format!("amqps://guest:guest@{host}:{}/%2f", std::env::var("CONCIERGE_TEST_AMQPS_PORT").unwrap())
}

// Item 64 and spec §1.9: TLS. Unverified by default, as sensu-client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqps_connects_without_verification_by_default() {
    let server = ServerSide::connect().await;
    let mut keepalives = server.tap_keepalives().await;
    let name = unique("tls-default");
    let client = Client::start_with_url(&amqps_url("127.0.0.1"), &name, &["x"], &[]);
    keepalives.next_for(&name, WAIT).await.unwrap_or_else(|| panic!("{}", client.logs()));
    assert!(client.logs().contains("is not verified"), "the operator is told");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqps_verifies_against_a_base64_ca_and_refuses_an_unknown_one() {
    use base64::Engine as _;
    let server = ServerSide::connect().await;
    let mut keepalives = server.tap_keepalives().await;
    let ca = base64::engine::general_purpose::STANDARD.encode(std::fs::read(tls_file("ca.pem")).unwrap());
    let name = unique("tls-verify");
    let client = Client::start_with_url(
        &amqps_url("localhost"),
        &name,
        &["x"],
        &[("CONCIERGE_TLS_VERIFY", "true"), ("CONCIERGE_TLS_CA_B64", &ca)],
    );
    keepalives.next_for(&name, WAIT).await.unwrap_or_else(|| panic!("{}", client.logs()));

    let refused = unique("tls-refused");
    let client = Client::start_with_url(&amqps_url("localhost"), &refused, &["x"], &[("CONCIERGE_TLS_VERIFY", "true")]);
    assert!(keepalives.next_for(&refused, Duration::from_secs(4)).await.is_none(), "an unknown CA must be refused");
    client.wait_log("transport connection failed", 1, WAIT).await;
    assert!(client.logs().contains("UnknownIssuer"), "{}", client.logs());
}

// Sensu's `ssl` hash with `cert_chain_file` and `private_key_file`: a client certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate_from_sensu_ssl_options() {
    let server = ServerSide::connect().await;
    let mut keepalives = server.tap_keepalives().await;
    let name = unique("tls-cert");
    let port: u16 = std::env::var("CONCIERGE_TEST_AMQPS_PORT").unwrap().parse().unwrap();
    let config = json!({"rabbitmq": {
        "host": "127.0.0.1", "port": port,
        "ssl": {"cert_chain_file": tls_file("client.pem"), "private_key_file": tls_file("client.pk8")}
    }});
    let client = Client::start(&name, &["x"], &[("CONCIERGE_CONFIG_JSON", &config.to_string())]);
    keepalives.next_for(&name, WAIT).await.unwrap_or_else(|| panic!("{}", client.logs()));
    let connections = rabbitmqctl(&["list_connections", "client_properties", "peer_cert_subject"]);
    assert!(
        connections.lines().any(|l| l.contains(&format!("concierge {name}")) && l.contains("CN=concierge-test-client")),
        "the broker saw our client certificate:\n{connections}"
    );
}

// Items 58, 61: stopping right after start, or while the broker is unreachable, is clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stops_cleanly_while_connecting_or_right_after() {
    let mut unreachable =
        Client::start_with_url("amqp://guest:guest@127.0.0.1:1/%2f", &unique("nobroker"), &["x"], &[]);
    unreachable.wait_log("transport connection failed", 1, WAIT).await;
    unreachable.signal(Signal::SIGTERM);
    let status = unreachable.wait_exit(Duration::from_secs(3)).await.expect("exits at once");
    assert_eq!(status.code(), Some(0));

    let mut quick = Client::start(&unique("quick"), &["x"], &[("CONCIERGE_DEREGISTER", "true")]);
    quick.ready().await;
    quick.signal(Signal::SIGTERM);
    let status = quick.wait_exit(Duration::from_secs(5)).await.expect("exits");
    assert_eq!(status.code(), Some(0), "{}", quick.logs());
}

// A built-in check definition forwarded unchanged by the server (`extension` plus its
// parameters object) runs in-process and publishes the plugin output and attributes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builtin_http_check_requested_over_the_wire() {
    let web = support::web::TestServer::http().await;
    let server = ServerSide::connect().await;
    let mut results = server.tap_results().await;
    let rr = format!("roundrobin:{}", unique("external"));
    let name = unique("prober");
    let client = Client::start(&name, &[&rr], &[]);
    client.ready().await;
    // As sensu-server publishes such a definition (sample README): extension, the
    // parameters object, type, handlers, name, issued.
    let request = json!({"extension": "http", "http": {"url": web.url_for("/ok"), "timeout": 5},
        "type": "standard", "handlers": ["default"], "name": "api", "issued": 1795234870});
    server.publish_request(&rr, &request).await;
    let (result, _) = results.next_for(&name, WAIT).await.expect("result");
    let check = &result["check"];
    assert_eq!(check["status"], 0);
    assert!(check["output"].as_str().unwrap().starts_with("HTTP OK: 200 in "));
    assert_eq!(check["http"], request["http"]);
    assert_eq!(check["handlers"], json!(["default"]));
    assert_eq!(check["probe"]["status_code"], 200);
    assert!(check["timings"]["total"].is_f64());
    assert!(check.get("reason").is_none());
    assert_eq!(web.requests(), 1);
    // sensu-client's order: the request's keys, then what the run assigned, in turn.
    let keys: Vec<&str> = check.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "extension",
            "http",
            "type",
            "handlers",
            "name",
            "issued",
            "executed",
            "timings",
            "probe",
            "duration",
            "output",
            "status"
        ]
    );
    let timing_keys: Vec<&str> = check["timings"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(timing_keys, ["dns", "connect", "ttfb", "transfer", "total"]);
    let probe_keys: Vec<&str> = check["probe"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(probe_keys, ["status_code", "bytes", "url", "address", "redirects"]);

    // A definition that already has keys the run assigns: they keep their places and take
    // the run's values (Ruby's `check[:status] = …`); a failing probe adds `reason`.
    let request = json!({"name": "api2", "status": 9, "extension": "http", "output": "stale",
        "http": {"url": web.url_for("/status/503"), "timeout": 5}, "issued": 1795234871});
    server.publish_request(&rr, &request).await;
    let (result, delivery) = results.next_for(&name, WAIT).await.expect("second result");
    // Each key once on the wire (a parsed document would hide a repeated one).
    let raw = String::from_utf8(delivery.data.clone()).unwrap();
    for key in ["\"status\":", "\"output\":"] {
        assert_eq!(raw.matches(key).count(), 1, "{key} in {raw}");
    }
    let check = &result["check"];
    let keys: Vec<&str> = check.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "name",
            "status",
            "extension",
            "output",
            "http",
            "issued",
            "executed",
            "reason",
            "timings",
            "probe",
            "duration"
        ]
    );
    assert_eq!(check["status"], 2);
    assert_eq!(check["reason"], "status");
    assert!(check["output"].as_str().unwrap().starts_with("HTTP CRITICAL: 503 in "), "{check}");
}
