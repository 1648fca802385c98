//! The container path through a real Docker engine (`scripts/docker.sh`, started by
//! `scripts/test.sh`): the image built from the Dockerfile's runtime stage, and the fleet
//! deployed from `deploy/swarm/stack.yml` on a one-node Swarm. Every container uses the host
//! network; the broker is the suite's private one on 127.0.0.1.
//!
//! Run alone with `scripts/test.sh --test container -- --nocapture` to see the figures.

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use support::docker::{self, Engine, Stack};
use support::{Proxy, ServerSide, Tap, amqp_url, unique};

/// The Swarm tests share one engine and two cores: one at a time.
static SWARM: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Env flags for one container: the broker, a name, a subscription, ports of its own.
fn env_flags(url: &str, name: &str, subscription: &str) -> Vec<String> {
    [
        format!("RABBITMQ_URL={url}"),
        format!("SENSU_CLIENT_NAME={name}"),
        format!("SENSU_CLIENT_SUBSCRIPTIONS={subscription}"),
        format!("CONCIERGE_SOCKET_PORT={}", free_port()),
        format!("CONCIERGE_HTTP_SOCKET_PORT={}", free_port()),
    ]
    .into_iter()
    .flat_map(|e| ["-e".to_string(), e])
    .collect()
}

// The image: env-only configuration joins the broker and answers with the exact Sensu result;
// the process runs as uid 10001 under tini, which reaps orphaned check grandchildren; SIGTERM
// (`docker stop`) drains and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_joins_from_the_environment_reaps_orphans_and_stops_cleanly() {
    let Some(engine) = docker::engine() else { return };
    let server = ServerSide::connect().await;
    let mut keepalives = server.tap_keepalives().await;
    let mut results = server.tap_results().await;
    let name = unique("image");
    let rr = unique("roundrobin:image");
    let flags = env_flags(&amqp_url(), &name, &rr);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let c = engine.run(&name, &flags, &[]);
    assert_eq!(engine.ok(&["run", "--rm", "--network", "host", &engine.image, "--version"]), "concierge 0.1.0");

    let (keepalive, _) =
        keepalives.next_for(&name, Duration::from_secs(30)).await.unwrap_or_else(|| panic!("{}", c.logs()));
    assert_eq!(keepalive["subscriptions"], json!([rr, format!("client:{name}")]));
    assert_eq!(keepalive["version"], "1.9.0");

    // uid 10001 under tini.
    assert_eq!(c.exec(&["id", "-u"]), "10001");
    assert_eq!(c.exec(&["cat", "/proc/1/comm"]), "tini");
    let concierge = c.exec(&[
        "sh",
        "-c",
        "for p in /proc/[0-9]*; do [ \"$(cat $p/comm)\" = concierge ] && grep -E '^(PPid|Uid):' $p/status; done",
    ]);
    assert!(concierge.contains("PPid:\t1\n") && concierge.contains("Uid:\t10001"), "{concierge}");

    // A round-robin request is answered with the exact Sensu result.
    let issued = now();
    server
        .publish_request(&rr, &json!({"name": "hello", "command": "echo hello from :::name:::", "issued": issued}))
        .await;
    let (result, _) = results.next_for(&name, Duration::from_secs(20)).await.expect("result");
    let check = &result["check"];
    assert_eq!(result.as_object().unwrap().keys().collect::<Vec<_>>(), ["client", "check"]);
    assert_eq!(
        check.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["name", "command", "issued", "executed", "duration", "output", "status"]
    );
    assert_eq!((check["output"].as_str(), check["status"].as_i64()), (Some(&*format!("hello from {name}\n")), Some(0)));
    assert_eq!(check["issued"], issued);

    // Orphans: 50 checks that leave a background child behind; tini reaps them all.
    for i in 0..50 {
        server
            .publish_request(
                &rr,
                &json!({"name": format!("orphan-{i}"), "command": "sleep 0.3 & echo left a child", "issued": now()}),
            )
            .await;
    }
    let answered = results.collect_for(&name, 50, Duration::from_secs(60)).await;
    assert_eq!(answered.len(), 50);
    let zombies = || c.exec(&["sh", "-c", "grep -l '^State:.Z' /proc/[0-9]*/status 2>/dev/null | wc -l"]);
    engine.wait_for("orphaned check children reaped", Duration::from_secs(10), || zombies() == "0").await;
    let children = c.exec(&["sh", "-c", "grep -l '^PPid:.1$' /proc/[0-9]*/status | wc -l"]);
    println!("image: 50 orphaning checks answered; zombies 0; processes left under tini: {children}");

    // SIGTERM drains and exits 0, well inside the drain grace.
    let started = Instant::now();
    engine.ok(&["stop", "-t", "20", &c.name]);
    let stopped = started.elapsed();
    assert_eq!(c.inspect("{{.State.ExitCode}}"), "0", "{}", c.logs());
    assert!(stopped < Duration::from_secs(9), "stopped in {stopped:?}");
    assert!(c.logs().contains("draining"), "{}", c.logs());
    println!("image: docker stop → exit 0 in {:.1} s", stopped.as_secs_f64());
}

// The image's HEALTHCHECK (`concierge health`) follows the broker: healthy while connected,
// unhealthy once it is gone, healthy again when it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_healthcheck_follows_the_broker() {
    let Some(engine) = docker::engine() else { return };
    let port: u16 = std::env::var("CONCIERGE_TEST_AMQP_PORT").unwrap().parse().unwrap();
    let proxy = Proxy::start(port).await;
    let name = unique("health");
    let mut flags = env_flags(&proxy.url(), &name, &unique("roundrobin:health"));
    flags.extend(
        ["--health-interval=1s", "--health-timeout=3s", "--health-retries=2", "--health-start-period=0s"]
            .map(String::from),
    );
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let c = engine.run(&name, &flags, &[]);
    let health = || c.inspect("{{.State.Health.Status}}");
    let up = engine.wait_for("healthy", Duration::from_secs(40), || health() == "healthy").await;
    proxy.cut();
    let down =
        engine.wait_for("unhealthy after the broker left", Duration::from_secs(30), || health() == "unhealthy").await;
    let log = c.inspect("{{range .State.Health.Log}}{{.Output}}{{end}}");
    assert!(log.contains("not connected to the broker"), "{log}");
    proxy.restore();
    let back = engine.wait_for("healthy again", Duration::from_secs(60), || health() == "healthy").await;
    println!(
        "healthcheck: healthy after {:.1} s, unhealthy {:.1} s after the broker left, healthy {:.1} s after it returned",
        up.as_secs_f64(),
        down.as_secs_f64(),
        back.as_secs_f64()
    );
}

/// Round-robin requests published at a steady pace, and what became of them.
struct Stream {
    published: Vec<String>,
}

impl Stream {
    /// Publish `rate` requests/s of `command` for `seconds`, named `PREFIX-N`.
    async fn publish(server: &ServerSide, rr: &str, prefix: &str, command: &str, rate: u32, seconds: f64) -> Self {
        let mut published = Vec::new();
        let period = Duration::from_secs_f64(1.0 / f64::from(rate));
        let mut tick = tokio::time::interval(period);
        let started = Instant::now();
        while started.elapsed().as_secs_f64() < seconds {
            tick.tick().await;
            let name = format!("{prefix}-{}", published.len());
            server.publish_request(rr, &json!({"name": name, "command": command, "issued": now()})).await;
            published.push(name);
        }
        Self { published }
    }

    /// Collect results until every request is answered or `quiet` passes without one.
    /// Returns (lost, duplicates) and prints the figures.
    async fn settle(&self, results: &mut Tap, what: &str, quiet: Duration) -> (usize, usize) {
        let wanted: std::collections::HashSet<&str> = self.published.iter().map(String::as_str).collect();
        let mut seen: HashMap<String, usize> = HashMap::new();
        while seen.len() < wanted.len() {
            let Some(result) = results.next_any(quiet).await else { break };
            let name = result["check"]["name"].as_str().unwrap_or_default().to_string();
            if wanted.contains(name.as_str()) {
                *seen.entry(name).or_default() += 1;
            }
        }
        let lost = wanted.len() - seen.len();
        let duplicates = seen.values().map(|n| n - 1).sum();
        println!("{what}: published {}, answered {}, lost {lost}, duplicates {duplicates}", wanted.len(), seen.len());
        (lost, duplicates)
    }
}

/// The shipped stack with a test override: the image under test, the host network, this
/// test's broker subscription, per-slot names and ports, quick health checks.
fn deploy_fleet(engine: &Engine, dir: &Path, prefix: &str, rr: &str, replicas: u32) -> Stack {
    // The broker URL reaches the tasks as a Swarm secret, as in production.
    let secret = engine.output(&["secret", "inspect", "rabbitmq_url"]);
    if !secret.status.success() {
        let mut create = engine.command(&["secret", "create", "rabbitmq_url", "-"]);
        create.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::null());
        let mut child = create.spawn().unwrap();
        use std::io::Write as _;
        child.stdin.take().unwrap().write_all(amqp_url().as_bytes()).unwrap();
        child.wait().unwrap();
    }
    let (socket, http) = (free_port() - 100, free_port() - 100);
    let over = format!(
        r#"version: "3.8"
services:
  concierge:
    image: {image}
    environment:
      SENSU_CLIENT_NAME: "{prefix}-{{{{.Task.Slot}}}}"
      SENSU_CLIENT_SUBSCRIPTIONS: "{rr}"
      CONCIERGE_SOCKET_PORT: "{socket}+{{{{.Task.Slot}}}}"
      CONCIERGE_HTTP_SOCKET_PORT: "{http}+{{{{.Task.Slot}}}}"
      CONCIERGE_HTTP_SOCKET_BIND: "127.0.0.1"
    networks: [hostnet]
    healthcheck:
      interval: 2s
      start_period: 2s
    deploy:
      replicas: {replicas}
      restart_policy:
        delay: 1s
      update_config:
        # On the host network two tasks of one slot cannot hold its ports at once.
        order: stop-first
        monitor: 2s
networks:
  hostnet:
    external: true
    name: host
"#,
        image = engine.image
    );
    let file = dir.join("override.yml");
    std::fs::write(&file, over).unwrap();
    let stack = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/swarm/stack.yml");
    Stack::deploy(engine, &unique("fleet").replace('-', "_"), &[&stack, &file])
}

/// Wait until `n` distinct clients named `PREFIX-*` sent keepalives; their names.
async fn registered(keepalives: &mut Tap, prefix: &str, n: usize, timeout: Duration) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut names = std::collections::BTreeSet::new();
    while names.len() < n {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(k) = keepalives.next_any(left).await else { break };
        if let Some(name) = k["name"].as_str().filter(|n| n.starts_with(prefix)) {
            names.insert(name.to_string());
        }
    }
    names.into_iter().collect()
}

// The fleet on a real Swarm: per-slot names; a killed task is replaced under its slot's name
// while a steady stream of requests loses nothing; scaling 3 → 1 under load loses nothing,
// the removed tasks exit 0 inside the stop grace and deregister; a rolling restart under load
// loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_on_swarm_is_replaced_scaled_and_restarted_without_losing_a_request() {
    let Some(engine) = docker::engine() else { return };
    let _one_at_a_time = SWARM.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let server = ServerSide::connect().await;
    let mut keepalives = server.tap_keepalives().await;
    let mut results = server.tap_results().await;
    let prefix = unique("probe");
    let rr = unique("roundrobin:fleet");
    let stack = deploy_fleet(&engine, dir.path(), &prefix, &rr, 3);
    let service = format!("{}_concierge", stack.name);

    let names = registered(&mut keepalives, &prefix, 3, Duration::from_secs(90)).await;
    assert_eq!(names, (1..=3).map(|i| format!("{prefix}-{i}")).collect::<Vec<_>>());
    println!("swarm: 3 replicas registered as {names:?}");

    // Kill one task's container mid-stream: Swarm replaces it, the slot's name comes back.
    let (slot, victim) = stack.containers("concierge").into_iter().min().expect("a task");
    let stream = {
        let publishing = Stream::publish(&server, &rr, "kill", "sleep 0.2; echo ok", 40, 12.0);
        let kill = async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            engine.ok(&["kill", &victim]);
            Instant::now()
        };
        let (stream, killed) = tokio::join!(publishing, kill);
        let back = engine
            .wait_for("a replacement task", Duration::from_secs(30), || {
                stack.containers("concierge").iter().any(|(s, id)| *s == slot && *id != victim)
            })
            .await;
        let name = format!("{prefix}-{slot}");
        let mut again = server.tap_keepalives().await;
        again.next_for(&name, Duration::from_secs(30)).await.expect("the replacement registers under the slot's name");
        println!(
            "swarm: killed {name}; replaced after {:.1} s, registered {:.1} s after the kill",
            back.as_secs_f64(),
            killed.elapsed().as_secs_f64()
        );
        stream
    };
    let (lost, _) = stream.settle(&mut results, "swarm kill", Duration::from_secs(20)).await;
    assert_eq!(lost, 0);

    // Scale 3 → 1 under load.
    let deregistered = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let publishing = Stream::publish(&server, &rr, "scale", "sleep 0.2; echo ok", 40, 12.0);
    let scale = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let before = stack.containers("concierge");
        engine.ok(&["service", "scale", "--detach", &format!("{service}=1")]);
        before
    };
    let (stream, before) = tokio::join!(publishing, scale);
    engine.wait_for("one task left", Duration::from_secs(60), || stack.containers("concierge").len() == 1).await;
    let kept: Vec<String> = stack.containers("concierge").into_iter().map(|(_, id)| id).collect();
    let mut settled = Vec::new();
    let (lost, duplicates) = {
        // Results and deregistrations arrive on the same pipe.
        let wanted: std::collections::HashSet<&str> = stream.published.iter().map(String::as_str).collect();
        let mut seen: HashMap<String, usize> = HashMap::new();
        while seen.len() < wanted.len() {
            let Some(result) = results.next_any(Duration::from_secs(20)).await else { break };
            let name = result["check"]["name"].as_str().unwrap_or_default().to_string();
            if name == "deregistration" && result["client"].as_str().is_some_and(|c| c.starts_with(&prefix)) {
                deregistered.lock().unwrap().push(result["client"].as_str().unwrap().to_string());
            } else if wanted.contains(name.as_str()) {
                *seen.entry(name).or_default() += 1;
            }
        }
        settled.extend(seen.keys().cloned());
        (wanted.len() - seen.len(), seen.values().map(|n| n - 1).sum::<usize>())
    };
    for (_, id) in before.iter().filter(|(_, id)| !kept.contains(id)) {
        let code = engine.output(&["inspect", "-f", "{{.State.ExitCode}}", id]);
        let code = String::from_utf8_lossy(&code.stdout).trim().to_string();
        // A removed task's container may already be gone; if not, it exited 0 (no SIGKILL: 137).
        assert!(code.is_empty() || code == "0", "a removed task exited {code}");
    }
    let deregistered = deregistered.lock().unwrap().clone();
    println!(
        "swarm scale 3 → 1: published {}, answered {}, lost {lost}, duplicates {duplicates}; deregistered {deregistered:?}",
        stream.published.len(),
        settled.len()
    );
    assert_eq!(lost, 0);
    assert_eq!(deregistered.len(), 2, "the two removed replicas deregister");

    // Rolling restart under load.
    engine.ok(&["service", "scale", "--detach", &format!("{service}=3")]);
    registered(&mut keepalives, &prefix, 3, Duration::from_secs(60)).await;
    let publishing = Stream::publish(&server, &rr, "update", "sleep 0.2; echo ok", 40, 15.0);
    let update = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let started = Instant::now();
        let out = tokio::task::block_in_place(|| engine.output(&["service", "update", "--force", &service]));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        started.elapsed()
    };
    let (stream, took) = tokio::join!(publishing, update);
    let (lost, _) = stream.settle(&mut results, "swarm rolling restart", Duration::from_secs(20)).await;
    println!("swarm: rolling restart of 3 tasks took {:.1} s", took.as_secs_f64());
    assert_eq!(lost, 0);
}
