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
    let proxy = Proxy::to_broker().await;
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
    /// Publish `rate` requests/s of `command`, named `PREFIX-N`, until `done` has completed
    /// and `tail` more has passed; what `done` returned.
    async fn publish_during<T>(
        server: &ServerSide,
        rr: &str,
        prefix: &str,
        rate: u32,
        done: impl std::future::Future<Output = T>,
        tail: Duration,
    ) -> (Self, T) {
        let mut published = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
        let mut done = std::pin::pin!(done);
        let mut outcome = None;
        let mut until = None;
        loop {
            tokio::select! {
                value = &mut done, if outcome.is_none() => {
                    outcome = Some(value);
                    until = Some(Instant::now() + tail);
                }
                _ = tick.tick() => {
                    if until.is_some_and(|u| Instant::now() >= u) {
                        break;
                    }
                    let name = format!("{prefix}-{}", published.len());
                    let command = "sleep 0.2; echo ok";
                    server.publish_request(rr, &json!({"name": name, "command": command, "issued": now()})).await;
                    published.push(name);
                }
            }
        }
        (Self { published }, outcome.expect("done"))
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

/// Every keepalive of the fleet's clients, with when it arrived.
#[derive(Clone, Default)]
struct Keepalives(std::sync::Arc<std::sync::Mutex<Vec<(Instant, String)>>>);

impl Keepalives {
    /// Record the keepalives of clients named `PREFIX-*` from now on.
    async fn record(server: &ServerSide, prefix: &str) -> Self {
        let mut tap = server.tap_keepalives().await;
        let seen = Self::default();
        let (into, prefix) = (seen.clone(), prefix.to_string());
        tokio::spawn(async move {
            while let Some(k) = tap.next_any(Duration::from_secs(3600)).await {
                if let Some(name) = k["name"].as_str().filter(|n| n.starts_with(&prefix)) {
                    into.0.lock().unwrap().push((Instant::now(), name.to_string()));
                }
            }
        });
        seen
    }

    /// The distinct names seen since `since`.
    fn names_since(&self, since: Instant) -> Vec<String> {
        let seen = self.0.lock().unwrap();
        let names: std::collections::BTreeSet<String> =
            seen.iter().filter(|(at, _)| *at >= since).map(|(_, n)| n.clone()).collect();
        names.into_iter().collect()
    }

    /// When `name` first sent a keepalive after `since`.
    fn first_after(&self, name: &str, since: Instant) -> Option<Instant> {
        self.0.lock().unwrap().iter().find(|(at, n)| *at > since && n == name).map(|(at, _)| *at)
    }

    /// The longest silence between two keepalives of one name (a replaced task included).
    fn longest_gap(&self) -> Duration {
        let seen = self.0.lock().unwrap();
        let mut last: HashMap<&str, Instant> = HashMap::new();
        let mut longest = Duration::ZERO;
        for (at, name) in seen.iter() {
            if let Some(before) = last.insert(name, *at) {
                longest = longest.max(at.duration_since(before));
            }
        }
        longest
    }
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
    let mut results = server.tap_results().await;
    let prefix = unique("probe");
    let rr = unique("roundrobin:fleet");
    let keepalives = Keepalives::record(&server, &prefix).await;
    let deployed = Instant::now();
    let stack = deploy_fleet(&engine, dir.path(), &prefix, &rr, 3);
    let service = format!("{}_concierge", stack.name);
    let all: Vec<String> = (1..=3).map(|i| format!("{prefix}-{i}")).collect();
    let took = engine
        .wait_for("3 replicas registered", Duration::from_secs(90), || keepalives.names_since(deployed) == all)
        .await;
    println!("swarm: 3 replicas registered as {all:?} within {:.1} s of the deploy", took.as_secs_f64());

    // Kill one task's container mid-stream: Swarm replaces it, the slot's name comes back.
    let (slot, victim) = stack.containers("concierge").into_iter().min().expect("a task");
    let name = format!("{prefix}-{slot}");
    let kill = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        engine.ok(&["kill", &victim]);
        let killed = Instant::now();
        engine
            .wait_for("the killed slot registers again", Duration::from_secs(30), || {
                keepalives.first_after(&name, killed).is_some()
            })
            .await;
        killed
    };
    let (stream, killed) = Stream::publish_during(&server, &rr, "kill", 100, kill, Duration::from_secs(3)).await;
    let replaced = stack.containers("concierge").iter().any(|(s, id)| *s == slot && *id != victim);
    assert!(replaced, "Swarm replaced the killed task");
    let registered = keepalives.first_after(&name, killed).unwrap().duration_since(killed);
    println!("swarm: killed {name}'s container; its replacement registered {:.1} s later", registered.as_secs_f64());
    let (lost, _) = stream.settle(&mut results, "swarm kill", Duration::from_secs(20)).await;
    assert_eq!(lost, 0);

    // Scale 3 → 1 under load.
    let scaled_at = now().to_string();
    let scale = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        engine.ok(&["service", "scale", "--detach", &format!("{service}=1")]);
        engine.wait_for("one task left", Duration::from_secs(60), || stack.containers("concierge").len() == 1).await
    };
    let (stream, took) = Stream::publish_during(&server, &rr, "scale", 100, scale, Duration::from_secs(3)).await;
    let (lost, duplicates, deregistered) = {
        // Results and deregistrations arrive on the same pipe.
        let wanted: std::collections::HashSet<&str> = stream.published.iter().map(String::as_str).collect();
        let (mut seen, mut deregistered): (HashMap<String, usize>, Vec<String>) = Default::default();
        while seen.len() < wanted.len() || deregistered.len() < 2 {
            let Some(result) = results.next_any(Duration::from_secs(20)).await else { break };
            let check = result["check"]["name"].as_str().unwrap_or_default().to_string();
            let client = result["client"].as_str().unwrap_or_default().to_string();
            if check == "deregistration" && client.starts_with(&prefix) {
                deregistered.push(client);
            } else if wanted.contains(check.as_str()) {
                *seen.entry(check).or_default() += 1;
            }
        }
        (wanted.len() - seen.len(), seen.values().map(|n| n - 1).sum::<usize>(), deregistered)
    };
    // How the removed tasks' containers ended, from the engine's events (Swarm forgets the
    // tasks of removed slots once they have stopped).
    let label = format!("label=com.docker.swarm.service.name={service}");
    let until = (now() + 1).to_string();
    let died = engine.ok(&[
        "events",
        "--since",
        &scaled_at,
        "--until",
        &until,
        "--filter",
        "event=die",
        "--filter",
        &label,
        "--format",
        "{{.Actor.Attributes.exitCode}}",
    ]);
    let codes: Vec<&str> = died.lines().collect();
    println!(
        "swarm scale 3 → 1 in {:.1} s: published {}, lost {lost}, duplicates {duplicates}; deregistered {deregistered:?}; removed tasks exited {codes:?}",
        took.as_secs_f64(),
        stream.published.len()
    );
    assert_eq!(lost, 0);
    assert_eq!(deregistered.len(), 2, "the two removed replicas deregister");
    // They drained and exited 0 inside the stop grace period (137 would be Docker's SIGKILL).
    assert_eq!(codes, ["0", "0"]);

    // Rolling restart under load.
    let rescaled = Instant::now();
    engine.ok(&["service", "scale", "--detach", &format!("{service}=3")]);
    engine.wait_for("3 replicas again", Duration::from_secs(60), || keepalives.names_since(rescaled).len() == 3).await;
    let update = {
        let engine = engine.clone();
        let service = service.clone();
        async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let started = Instant::now();
            let out = tokio::task::spawn_blocking(move || engine.output(&["service", "update", "--force", &service]))
                .await
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            started.elapsed()
        }
    };
    let (stream, took) = Stream::publish_during(&server, &rr, "update", 100, update, Duration::from_secs(3)).await;
    let (lost, _) = stream.settle(&mut results, "swarm rolling restart", Duration::from_secs(20)).await;
    println!(
        "swarm: rolling restart of 3 tasks took {:.1} s; longest keepalive gap of a slot over the whole test {:.1} s",
        took.as_secs_f64(),
        keepalives.longest_gap().as_secs_f64()
    );
    assert_eq!(lost, 0);
}
