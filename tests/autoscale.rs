//! `concierge autoscale` through real parts: the private broker (queue depths by passive
//! declare, keepalives through the controller's own queue), the private Swarm with a fleet of
//! Concierge replicas, and ECS on PyPI's moto server with a scripted signal sequence.
//!
//! Run alone with `scripts/test.sh --test autoscale -- --nocapture`.

mod support;

use std::collections::HashMap;
use std::process::Child;
use std::time::{Duration, Instant};

use lapin::options::{QueueBindOptions, QueueDeclareOptions, QueuePurgeOptions};
use lapin::types::FieldTable;
use serde_json::{Value, json};
use support::docker;
use support::{ServerSide, Tap, amqp_url, unique};

/// A loopback port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running `concierge autoscale`, killed when dropped.
struct Autoscaler {
    child: Child,
    /// Its `/healthz` and `/metrics` port.
    port: u16,
    /// Its client name (the results' `client`).
    name: String,
}

impl Autoscaler {
    fn start(env: &[(&str, String)], args: &[&str]) -> Self {
        let name = unique("autoscaler");
        let mut cmd = support::bin::concierge();
        cmd.env("RABBITMQ_URL", amqp_url())
            .env("SENSU_CLIENT_NAME", &name)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .arg("autoscale")
            .args(args)
            .args(["--listen", "127.0.0.1:0"]);
        let (child, port) = support::bin::spawn_listening(cmd, "autoscale: /healthz and /metrics");
        Self { child, port, name }
    }

    fn metric(&self, name: &str) -> Option<f64> {
        support::web::metric(self.port, name)
    }
}

impl Drop for Autoscaler {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A keepalive as a Concierge replica of `queue` sends it, with its load.
fn keepalive(name: &str, queue: &str, busy_ratio: f64) -> Vec<u8> {
    serde_json::to_vec(
        &json!({"name": name, "address": "127.0.0.1", "subscriptions": [queue, format!("client:{name}")],
        "version": "1.9.0", "timestamp": support::web::now_epoch(),
        "concierge": {"busy_ratio": busy_ratio, "busy": 0, "slots": 4, "lag_p95": 0.5}}),
    )
    .unwrap()
}

/// Publish to the `keepalives` pipe as a client does.
async fn publish_keepalive(server: &ServerSide, body: &[u8]) {
    publish_keepalives(server, &[body.to_vec()]).await;
}

/// Publish several keepalives back to back, then wait for their confirms: the controller
/// sees the replicas change together (one confirm round trip per keepalive would leave a
/// mixed state for a tick to see on a busy machine: half the replicas busy, a recommendation
/// of its own in the window).
async fn publish_keepalives(server: &ServerSide, bodies: &[Vec<u8>]) {
    support::broker::declare_exchange(&server.channel, "keepalives", lapin::ExchangeKind::Direct).await;
    let mut confirms = Vec::new();
    for body in bodies {
        let properties = lapin::BasicProperties::default().with_content_type("application/octet-stream".into());
        let publish =
            server.channel.basic_publish("keepalives".into(), "".into(), Default::default(), body, properties);
        confirms.push(publish.await.unwrap());
    }
    for confirm in confirms {
        confirm.await.unwrap();
    }
}

/// The fleet's queue with nobody consuming it yet (as a replica declares and binds it).
async fn idle_queue(server: &ServerSide, queue: &str) {
    let options = QueueDeclareOptions { auto_delete: true, ..Default::default() };
    server.channel.queue_declare(queue.into(), options, FieldTable::default()).await.unwrap();
    support::broker::declare_exchange(&server.channel, queue, lapin::ExchangeKind::Direct).await;
    server
        .channel
        .queue_bind(queue.into(), queue.into(), "".into(), QueueBindOptions::default(), FieldTable::default())
        .await
        .unwrap();
}

/// The next `autoscale_*` result of `client`, with its output.
async fn next_decision(results: &mut Tap, client: &str, timeout: Duration) -> Option<Value> {
    let (r, _) = results.next_for(client, timeout).await?;
    Some(r["check"].clone())
}

// ECS (moto on loopback standing in for AWS), with the signals scripted on the private broker:
// a backlog grows the service at once but by at most a doubling per move, up to the max;
// flapping load within the window moves nothing; a quiet window brings it down to the min.
// Every move is a result `autoscale_api` naming its signals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecs_follows_a_scripted_signal_sequence() {
    let Some(moto) = support::moto::Moto::start().await else { return };
    let ecs = moto.ecs();
    let cluster = unique("fleet");
    moto.service(&cluster, 1, &[]).await;
    let desired = async || {
        let out = ecs.describe_services().cluster(&cluster).services("api").send().await.unwrap();
        out.services()[0].desired_count()
    };

    let server = ServerSide::connect().await;
    let mut results = server.tap_results().await;
    let queue = unique("roundrobin:ecs");
    idle_queue(&server, &queue).await;
    // 20 requests waiting, 5 per replica wanted; then one replica reporting, busy at the target.
    for i in 0..20 {
        server.publish_request(&queue, &json!({"name": format!("c{i}"), "command": "true", "issued": 1})).await;
    }
    let env: Vec<(&str, String)> = moto.env().into_iter().collect();
    // A second queue nobody declared: a missing queue is no backlog, and does not blind it.
    let queues = format!("{queue},roundrobin:nobody-{cluster}");
    let autoscaler = Autoscaler::start(
        &env,
        &[
            "--cluster",
            &cluster,
            "--service",
            "api",
            "--min",
            "1",
            "--max",
            "4",
            "--queues",
            &queues,
            "--interval",
            "1",
            "--backlog-target",
            "5",
            "--window",
            "6",
            "--cooldown",
            "0",
        ],
    );
    let up = Instant::now();
    while support::web::get(autoscaler.port, "/healthz").is_none() {
        assert!(up.elapsed() < Duration::from_secs(20), "the autoscaler did not answer");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    publish_keepalive(&server, &keepalive("probe-a", &queue, 0.6)).await;
    let started = Instant::now();
    let mut timeline = Vec::new();
    let mut note = |what: String| timeline.push(format!("{:5.1} s  {what}", started.elapsed().as_secs_f64()));

    // Up: 1 → 2 (a doubling), 2 → 4 (wants 4, the max).
    let first = next_decision(&mut results, &autoscaler.name, Duration::from_secs(20)).await.expect("a first move");
    note(first["output"].as_str().unwrap().trim().to_string());
    assert_eq!((first["name"].as_str(), first["status"].as_i64()), (Some("autoscale_api"), Some(0)));
    assert!(first["output"].as_str().unwrap().starts_with("SCALE OK: api 1 → 2 "), "{first}");
    assert!(first["output"].as_str().unwrap().contains("wants 4, up by at most 1 at once; backlog 20"), "{first}");
    assert_eq!(first["signals"]["backlog"], 20);
    assert_eq!(first["wanted"]["backlog"], 4);
    let second = next_decision(&mut results, &autoscaler.name, Duration::from_secs(20)).await.expect("a second move");
    note(second["output"].as_str().unwrap().trim().to_string());
    assert!(second["output"].as_str().unwrap().starts_with("SCALE OK: api 2 → 4 "), "{second}");
    assert_eq!(desired().await, 4);

    // The backlog is gone; the load flaps (busy, idle, busy…) within the 6 s window: no move.
    server.channel.queue_purge(queue.as_str().into(), QueuePurgeOptions::default()).await.unwrap();
    note("backlog purged; load flapping".into());
    for i in 0..8 {
        let busy = if i % 2 == 0 { 0.6 } else { 0.0 };
        let all: Vec<_> = ["probe-a", "probe-b", "probe-c", "probe-d"].map(|r| keepalive(r, &queue, busy)).into();
        publish_keepalives(&server, &all).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    assert_eq!(desired().await, 4, "flapping load moved the service");
    assert!(
        results.next_for(&autoscaler.name, Duration::from_millis(100)).await.is_none(),
        "no decision while flapping"
    );

    // Quiet: after a whole window of low recommendations, down to the min at once.
    let idle: Vec<_> = ["probe-a", "probe-b", "probe-c", "probe-d"].map(|r| keepalive(r, &queue, 0.0)).into();
    publish_keepalives(&server, &idle).await;
    note("all idle".into());
    let down = next_decision(&mut results, &autoscaler.name, Duration::from_secs(30)).await.expect("a move down");
    note(down["output"].as_str().unwrap().trim().to_string());
    assert!(down["output"].as_str().unwrap().starts_with("SCALE OK: api 4 → 1 "), "{down}");
    assert!(down["output"].as_str().unwrap().contains("every recommendation of the last 6 s was at most"), "{down}");
    assert_eq!(desired().await, 1);
    assert!(autoscaler.metric("concierge_autoscale_decisions_total{outcome=\"scaled\"}").unwrap_or(0.0) >= 3.0);
    assert_eq!(support::web::get(autoscaler.port, "/healthz").map(|b| b.contains("\"status\":\"ok\"")), Some(true));

    // The platform goes away: one failing result for the whole outage, the controller keeps
    // going (backing off), and says so when the service answers again.
    let port = moto.port;
    drop(moto);
    note("ECS unreachable".into());
    let failed = next_decision(&mut results, &autoscaler.name, Duration::from_secs(20)).await.expect("a failure");
    note(failed["output"].as_str().unwrap().trim().to_string());
    assert_eq!(failed["status"], 2);
    assert!(
        failed["output"].as_str().unwrap().starts_with("AUTOSCALE FAILED: api: cannot read the service: "),
        "{failed}"
    );
    assert!(results.next_for(&autoscaler.name, Duration::from_secs(5)).await.is_none(), "one result per outage");
    let health = support::web::get(autoscaler.port, "/healthz").unwrap();
    assert!(health.contains("\"outage\":\"cannot read the service"), "{health}");
    let moto = support::moto::Moto::start_on(port).await.unwrap();
    moto.service(&cluster, 1, &[]).await;
    let back = next_decision(&mut results, &autoscaler.name, Duration::from_secs(30)).await.expect("a recovery");
    note(back["output"].as_str().unwrap().trim().to_string());
    assert_eq!(
        (back["status"].as_i64(), back["output"].as_str()),
        (Some(0), Some("AUTOSCALE OK: api: signals readable again\n"))
    );
    println!("autoscale on ECS (moto):\n{}", timeline.join("\n"));
}

// Bad settings are a clear message and exit 2, before anything is read or scaled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settings_exit_2_with_a_message() {
    let run = |env: &[(&str, &str)], args: &[&str]| {
        let out = support::bin::concierge()
            .env("SENSU_CLIENT_NAME", "autoscaler")
            .envs(env.iter().copied())
            .arg("autoscale")
            .args(args)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).trim().to_string())
    };
    let url = amqp_url();
    let broker = [("RABBITMQ_URL", url.as_str())];
    type Case<'a> = (Vec<(&'a str, &'a str)>, Vec<&'a str>, &'a str);
    let cases: Vec<Case> = vec![
        (
            broker.to_vec(),
            vec!["--service", "api", "--min", "1"],
            "error: set the bounds: --min and --max (CONCIERGE_AUTOSCALE_MIN, CONCIERGE_AUTOSCALE_MAX)",
        ),
        (broker.to_vec(), vec!["--service", "api", "--min", "5", "--max", "2"], "error: --min 5 is above --max 2"),
        (
            broker.to_vec(),
            vec!["--service", "api", "--min", "1", "--max", "2", "--platform", "nomad"],
            "error: unknown platform \"nomad\": swarm or ecs",
        ),
        (
            vec![
                ("CONCIERGE_AUTOSCALE_MIN", "1"),
                ("CONCIERGE_AUTOSCALE_MAX", "3"),
                ("CONCIERGE_AUTOSCALE_SERVICE", "api"),
            ],
            vec![],
            "error: autoscale reads the fleet's queues and keepalives: set RABBITMQ_URL",
        ),
        (
            broker.to_vec(),
            vec!["--service", "api", "--min", "1", "--max", "2"],
            "error: name the fleet's queues: --queues roundrobin:NAME (or the same SENSU_CLIENT_SUBSCRIPTIONS as the fleet)",
        ),
        (
            broker.to_vec(),
            vec!["--service", "api", "--min", "1", "--max", "2", "--busy-target", "0"],
            "error: --busy-target 0 must be above 0 and at most 1",
        ),
    ];
    for (env, args, expected) in cases {
        assert_eq!(run(&env, &args), (Some(2), expected.to_string()), "{env:?} {args:?}");
    }
    // An unreachable broker at start.
    let closed = format!("amqp://guest:guest@127.0.0.1:{}/%2f", free_port());
    let (code, stderr) = run(
        &[("RABBITMQ_URL", &closed), ("AWS_REGION", "us-east-1")],
        &["--cluster", "x", "--service", "api", "--min", "1", "--max", "2", "--queues", "roundrobin:x"],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.starts_with("error: cannot watch the broker: connecting to "), "{stderr}");
}

// The fleet sizes itself on the private Swarm: a service of Concierge replicas (min 1, max 4)
// on one round-robin queue, the controller beside it. A backlog of 1 s command checks at three
// times what one replica holds grows the service; once it stops, the stabilization window
// brings it back to 1. Every request is answered; duplicates are counted and reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_grows_under_backlog_and_shrinks_back_without_losing_a_request() {
    let Some(engine) = docker::engine() else { return };
    let server = ServerSide::connect().await;
    let mut results = server.tap_results().await;
    let rr = unique("roundrobin:load");
    // Two command slots and a prefetch of two: what waits, waits in the queue.
    let fleet =
        docker::Fleet::create(&engine, &rr, 1, &[], &["CONCIERGE_COMMAND_CONCURRENCY=2", "CONCIERGE_PREFETCH=2"]);
    let name = fleet.name.clone();
    let replicas = || fleet.replicas();
    let running = || fleet.running();
    engine
        .wait_for("the first replica consumes", Duration::from_secs(60), || {
            futures_executor_block(server.queue_state(&rr)).is_some_and(|(_, consumers)| consumers == 1)
        })
        .await;

    let autoscaler = Autoscaler::start(
        &[("DOCKER_HOST", std::env::var("CONCIERGE_TEST_DOCKER_HOST").unwrap())],
        &[
            "--service",
            &name,
            "--min",
            "1",
            "--max",
            "4",
            "--queues",
            &rr,
            "--interval",
            "2",
            "--window",
            "20",
            "--cooldown",
            "2",
            "--backlog-target",
            "4",
        ],
    );
    let start = Instant::now();
    let mut timeline: Vec<String> = Vec::new();
    let mut last = (u64::MAX, usize::MAX, String::new());
    let peak = std::cell::Cell::new(1);
    let mut observe = |timeline: &mut Vec<String>, backlog: u32| {
        let busy = autoscaler.metric("concierge_autoscale_busy_ratio").filter(|b| *b >= 0.0);
        let now = (replicas(), running(), busy.map_or("  ? ".into(), |b| format!("{b:.2}")));
        peak.set(peak.get().max(now.0));
        if now != last {
            let desired = autoscaler.metric("concierge_autoscale_replicas_desired").unwrap_or(-1.0);
            timeline.push(format!(
                "{:6.1} s  backlog {backlog:3}  busy {}  desired {desired}  replicas {}  running {}",
                start.elapsed().as_secs_f64(),
                now.2,
                now.0,
                now.1
            ));
            last = now.clone();
        }
        now
    };

    // 6 checks a second of `sleep 1` for 40 s; one replica finishes 2.
    let mut published = Vec::new();
    while start.elapsed() < Duration::from_secs(40) {
        for _ in 0..6 {
            let check = format!("load_{}", published.len());
            let request =
                json!({"name": check, "command": "sleep 1", "issued": support::web::now_epoch(), "subscribers": [rr]});
            server.publish_request(&rr, &request).await;
            published.push(check);
        }
        let backlog = server.queue_state(&rr).await.map_or(0, |(m, _)| m);
        observe(&mut timeline, backlog);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    timeline.push(format!("{:6.1} s  load stops: {} checks published", start.elapsed().as_secs_f64(), published.len()));
    let grown = peak.get();
    let shrunk = loop {
        let backlog = server.queue_state(&rr).await.map_or(0, |(m, _)| m);
        let (desired, ..) = observe(&mut timeline, backlog);
        if desired == 1 && running() == 1 {
            break true;
        }
        if start.elapsed() > Duration::from_secs(200) {
            break false;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };

    // Every request answered (results of the fleet's clients), duplicates counted.
    let wanted: std::collections::HashSet<&str> = published.iter().map(String::as_str).collect();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut decisions = Vec::new();
    let settle = Instant::now();
    while seen.len() < wanted.len() && settle.elapsed() < Duration::from_secs(60) {
        let Some(r) = results.next_any(Duration::from_secs(5)).await else { continue };
        let check = r["check"]["name"].as_str().unwrap_or_default().to_string();
        if r["client"] == autoscaler.name.as_str() {
            decisions.push(r["check"]["output"].as_str().unwrap_or_default().trim().to_string());
        } else if wanted.contains(check.as_str()) {
            *seen.entry(check).or_default() += 1;
        }
    }
    while let Some(r) = results.next_any(Duration::from_millis(500)).await {
        if r["client"] == autoscaler.name.as_str() {
            decisions.push(r["check"]["output"].as_str().unwrap_or_default().trim().to_string());
        }
    }
    let lost = wanted.len() - seen.len();
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    println!("autoscale on Swarm:\n{}", timeline.join("\n"));
    println!("decisions:\n  {}", decisions.join("\n  "));
    println!("{} requests, {lost} lost, {duplicates} answered twice", published.len());
    assert!(grown >= 3, "the backlog grew the fleet (peak {grown})");
    assert!(grown <= 4, "never past the max (peak {grown})");
    assert!(shrunk, "back to 1 replica after the window");
    assert_eq!(lost, 0, "every request answered");
    assert!(decisions.iter().any(|d| d.starts_with(&format!("SCALE OK: {name} 1 → 2 "))), "{decisions:?}");
    assert!(decisions.iter().any(|d| d.starts_with("SCALE OK: ") && d.contains(" → 1 ")), "{decisions:?}");
}

/// Block on a future from a synchronous closure (the engine's wait helper polls closures).
fn futures_executor_block<F: std::future::Future>(future: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(future))
}

// `--once --dry-run`: one round after a keepalive period, the move it would make printed with
// its signals, nothing changed, exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_with_dry_run_prints_the_move_and_changes_nothing() {
    let Some(moto) = support::moto::Moto::start().await else { return };
    let ecs = moto.ecs();
    let cluster = unique("once");
    moto.service(&cluster, 2, &[]).await;
    let server = ServerSide::connect().await;
    let queue = unique("roundrobin:once");
    idle_queue(&server, &queue).await;
    for i in 0..30 {
        server.publish_request(&queue, &json!({"name": format!("c{i}"), "command": "true", "issued": 1})).await;
    }
    let out = support::bin::concierge()
        .envs(moto.env())
        .env("RABBITMQ_URL", amqp_url())
        .env("SENSU_CLIENT_NAME", unique("once"))
        .args([
            "autoscale",
            "--once",
            "--dry-run",
            "--cluster",
            &cluster,
            "--service",
            "api",
            "--min",
            "1",
            "--max",
            "8",
        ])
        .args(["--queues", &queue, "--backlog-target", "5", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        stdout,
        "(dry run) AUTOSCALE: api 2 → 4: wants 6, up by at most 2 at once; backlog 30, busy unknown (no fresh keepalives)"
    );
    let described = ecs.describe_services().cluster(&cluster).services("api").send().await.unwrap();
    assert_eq!(described.services()[0].desired_count(), 2, "a dry run changes nothing");
}
