//! The scheduler through real parts: `concierge scale` against a service on the private
//! one-node Swarm of `scripts/test.sh` (`scripts/docker.sh`), its decisions read back from
//! the engine and from the private broker's `results` exchange.
//!
//! Run alone with `scripts/test.sh --test scale -- --nocapture`.

mod support;

use std::process::Output;
use std::time::Duration;

use concierge::scale::decide::Move;
use concierge::scale::platform::{Platform, PlatformError, ServiceState};
use concierge::scale::swarm::Swarm;
use concierge::scale::{Limits, Outcome, scale};
use serde_json::Value;
use support::docker::{self, Engine};
use support::{ServerSide, Tap, amqp_url, unique};

/// A dummy replicated service (the image, sleeping) with bounds 2..4 in Docker Flow
/// Monitor's labels; removed on drop.
struct Service {
    engine: Engine,
    name: String,
}

impl Service {
    fn create(engine: &Engine, replicas: u32) -> Self {
        let name = unique("api").replace('-', "_");
        engine.ok(&[
            "service",
            "create",
            "--detach",
            "--quiet",
            "--name",
            &name,
            "--label",
            "com.df.scaleMin=2",
            "--label",
            "com.df.scaleMax=4",
            "--replicas",
            &replicas.to_string(),
            "--network",
            "host",
            "--no-healthcheck",
            "--entrypoint",
            "/bin/sleep",
            &engine.image,
            "1d",
        ]);
        Self { engine: engine.clone(), name }
    }

    fn replicas(&self) -> String {
        self.engine.ok(&["service", "inspect", &self.name, "--format", "{{.Spec.Mode.Replicated.Replicas}}"])
    }

    fn running_tasks(&self) -> usize {
        let states = self.engine.ok(&[
            "service",
            "ps",
            &self.name,
            "--filter",
            "desired-state=running",
            "--format",
            "{{.CurrentState}}",
        ]);
        states.lines().filter(|s| s.starts_with("Running")).count()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.engine.output(&["service", "rm", &self.name]);
    }
}

/// `concierge scale ARGS` against the engine, its result published to the private broker.
fn concierge_scale(client: &str, args: &[&str]) -> Output {
    support::bin::concierge()
        .env("DOCKER_HOST", std::env::var("CONCIERGE_TEST_DOCKER_HOST").unwrap())
        .env("RABBITMQ_URL", amqp_url())
        .env("SENSU_CLIENT_NAME", client)
        .arg("scale")
        .args(args)
        .output()
        .unwrap()
}

/// Run `concierge scale ARGS`: it exits with `code`, prints `line` (or a line `line` says
/// the start of, when it ends with `…`), and publishes it as the `check` result.
async fn decision(client: &str, results: &mut Tap, check: &str, args: &[&str], code: i32, line: &str) -> Value {
    let out = concierge_scale(client, args);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    match line.strip_suffix('…') {
        Some(start) => assert!(stdout(&out).starts_with(start), "{}", stdout(&out)),
        None => assert_eq!(stdout(&out), line),
    }
    let (result, _) = results.next_for(client, Duration::from_secs(10)).await.expect("a result per decision");
    assert_eq!(result["check"]["name"], check);
    assert_eq!(
        result["check"]["output"].as_str().unwrap(),
        format!("{}\n", stdout(&out)).trim_start_matches("(dry run) ")
    );
    assert_eq!(result["check"]["status"], code);
    result
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_within_the_bounds_with_cooldowns_and_a_result_per_decision() {
    let Some(engine) = docker::engine() else { return };
    let server = ServerSide::connect().await;
    let mut results = server.tap_results().await;
    let client = unique("scheduler");
    let api = Service::create(&engine, 3);
    engine.wait_for("3 tasks running", Duration::from_secs(60), || api.running_tasks() == 3).await;
    let name = api.name.as_str();
    let check = format!("scale_{name}");
    // Up within the bounds: the tasks really run.
    let r = decision(
        &client,
        &mut results,
        &check,
        &[name, "up"],
        0,
        &format!("SCALE OK: {name} 3 → 4 (up by 1; bounds 2..4)"),
    )
    .await;
    assert_eq!((r["check"]["from"].clone(), r["check"]["to"].clone()), (Value::from(3), Value::from(4)));
    assert_eq!(r["check"]["bounds"], serde_json::json!({"min": 2, "max": 4}));
    assert_eq!(r["check"]["trigger"], "concierge scale");
    assert_eq!(api.replicas(), "4");
    let took = engine.wait_for("4 tasks running", Duration::from_secs(60), || api.running_tasks() == 4).await;
    println!("scale: {name} 3 → 4, the 4th task running {:.1} s later", took.as_secs_f64());

    // At the max: refused, exit 1, a status-1 result.
    decision(
        &client,
        &mut results,
        &check,
        &[name, "up", "--cooldown", "0"],
        1,
        &format!("SCALE REFUSED: {name} stays at 4: at the max (up by 1; bounds 2..4)"),
    )
    .await;
    // Down, then down again inside the cooldown (short here), then once it expired.
    decision(
        &client,
        &mut results,
        &check,
        &[name, "down", "--cooldown", "3"],
        0,
        &format!("SCALE OK: {name} 4 → 3 (down by 1; bounds 2..4)"),
    )
    .await;
    let refused = format!("SCALE REFUSED: {name} stays at 3: scaled down …");
    let r = decision(&client, &mut results, &check, &[name, "down", "--cooldown", "3"], 1, &refused).await;
    assert!(r["check"]["output"].as_str().unwrap().ends_with(" s ago, cooldown 3 s (down by 1; bounds 2..4)\n"));
    tokio::time::sleep(Duration::from_millis(3200)).await;
    decision(
        &client,
        &mut results,
        &check,
        &[name, "down", "--cooldown", "3"],
        0,
        &format!("SCALE OK: {name} 3 → 2 (down by 1; bounds 2..4)"),
    )
    .await;
    assert_eq!(api.replicas(), "2");
    // `to` beyond the bounds is clamped to them; a dry run changes nothing.
    decision(
        &client,
        &mut results,
        &check,
        &[name, "to", "9", "--dry-run", "--cooldown", "0"],
        0,
        &format!("(dry run) SCALE OK: {name} 2 → 4 (to 9, clamped to the bounds; bounds 2..4)"),
    )
    .await;
    assert_eq!(api.replicas(), "2");
    decision(
        &client,
        &mut results,
        &check,
        &[name, "to", "9", "--cooldown", "0"],
        0,
        &format!("SCALE OK: {name} 2 → 4 (to 9, clamped to the bounds; bounds 2..4)"),
    )
    .await;
    assert_eq!(api.replicas(), "4");

    // A missing service: exit 2, a status-2 result. Bad arguments: exit 3, nothing scaled.
    let out = concierge_scale(&client, &["no-such-service", "up"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stdout(&out), "SCALE FAILED: no-such-service: service no-such-service not found");
    let (r, _) = results.next_for(&client, Duration::from_secs(10)).await.expect("the failure's result");
    assert_eq!((r["check"]["name"].as_str(), r["check"]["status"].as_i64()), (Some("scale_no-such-service"), Some(2)));
    for bad in [vec![name, "sideways"], vec![name, "to"], vec![name, "up", "2"], vec![name, "up", "--by", "x"]] {
        let out = concierge_scale(&client, &bad);
        assert_eq!(out.status.code(), Some(3), "{bad:?}");
    }
    assert_eq!(api.replicas(), "4");
}

/// Swarm, with someone else updating the service between the read and the write once.
struct Contended<'a> {
    swarm: Swarm,
    engine: &'a Engine,
    interfered: std::sync::atomic::AtomicBool,
}

impl Platform for Contended<'_> {
    async fn read(&self, service: &str) -> Result<ServiceState, PlatformError> {
        self.swarm.read(service).await
    }

    async fn apply(&self, state: &ServiceState, replicas: u64, record: (String, String)) -> Result<(), PlatformError> {
        if !self.interfered.swap(true, std::sync::atomic::Ordering::SeqCst) {
            self.engine.ok(&["service", "update", "--detach", "--label-add", "someone=else", &state.name]);
        }
        self.swarm.apply(state, replicas, record).await
    }
}

// A concurrent update between the read and the write: the version index refuses the stale
// write, the scheduler reads again and retries once, and both changes survive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_update_is_retried_on_the_new_version() {
    let Some(engine) = docker::engine() else { return };
    let api = Service::create(&engine, 2);
    let swarm = Swarm::connect_to(&std::env::var("CONCIERGE_TEST_DOCKER_HOST").unwrap()).await.unwrap();
    let contended = Contended { swarm, engine: &engine, interfered: Default::default() };
    let limits = Limits { min: None, max: None, cooldown: 0 };
    let outcome = scale(&contended, &api.name, Move::Up(1), limits, false).await;
    let Outcome::Decided(decision) = &outcome else { panic!("{}", outcome.line()) };
    assert_eq!((decision.from, decision.to()), (2, 3), "{}", outcome.line());
    assert_eq!(api.replicas(), "3");
    let labels = engine.ok(&["service", "inspect", &api.name, "--format", "{{json .Spec.Labels}}"]);
    assert!(labels.contains("\"someone\":\"else\"") && labels.contains("concierge.scale.last_up"), "{labels}");
}

/// `concierge scale handle` with `event` on stdin.
fn handle(client: &str, event: &[u8]) -> Output {
    use std::io::Write as _;
    let mut child = support::bin::concierge()
        .env("DOCKER_HOST", std::env::var("CONCIERGE_TEST_DOCKER_HOST").unwrap())
        .env("RABBITMQ_URL", amqp_url())
        .env("SENSU_CLIENT_NAME", client)
        .args(["scale", "handle"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(event).unwrap();
    child.wait_with_output().unwrap()
}

/// A sample event captured from sensu-server 1.9.0, its `scale.service` pointed at `service`.
fn sample(file: &str, service: &str) -> Vec<u8> {
    let path = format!("{}/../shared/spec/samples/{file}", env!("CARGO_MANIFEST_DIR"));
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    if event["check"]["scale"].is_object() {
        event["check"]["scale"]["service"] = service.into();
        event["check"]["scale"]["max"] = 4.into();
    }
    serde_json::to_vec(&event).unwrap()
}

// The Sensu pipe handler: the captured events scale the service once per incident (the
// repeated calls of later occurrences meet the cooldown), a resolve or an unscaled check
// changes nothing, and malformed input scales nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sensu_handler_scales_on_events_once_per_cooldown() {
    let Some(engine) = docker::engine() else { return };
    let server = ServerSide::connect().await;
    let mut results = server.tap_results().await;
    let client = unique("handler");
    let api = Service::create(&engine, 3);
    let name = api.name.as_str();

    let out = handle(&client, &sample("handler-event-create.json", name));
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout(&out), format!("SCALE OK: {name} 3 → 4 (up by 1; bounds 2..4)"));
    assert_eq!(api.replicas(), "4");
    let (r, _) = results.next_for(&client, Duration::from_secs(10)).await.expect("the decision's result");
    assert_eq!(r["check"]["trigger"], "sensu check api_response_time on probe-1, occurrence 1 (create)");

    // The same incident, called again at its 4th occurrence: held back, not scaled further.
    let out = handle(&client, &sample("handler-event-create-occurrence-4.json", name));
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).starts_with(&format!("SCALE REFUSED: {name} stays at 4: ")), "{}", stdout(&out));
    assert_eq!(api.replicas(), "4");

    let out = handle(&client, &sample("handler-event-resolve.json", name));
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).starts_with("SCALE IGNORED: check api_response_time resolved"), "{}", stdout(&out));
    let mut unscaled: Value = serde_json::from_slice(&sample("handler-event-create.json", name)).unwrap();
    unscaled["check"].as_object_mut().unwrap().remove("scale");
    let out = handle(&client, &serde_json::to_vec(&unscaled).unwrap());
    assert_eq!(
        (out.status.code(), stdout(&out)),
        (Some(0), "SCALE IGNORED: check api_response_time has no `scale` attribute: nothing to scale".to_string())
    );

    for bad in [
        &b"{\"check\":"[..],
        b"[1,2]",
        b"{\"check\":{\"name\":\"x\",\"status\":2,\"scale\":{\"by\":1}},\"action\":\"create\"}",
    ] {
        let out = handle(&client, bad);
        assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(bad));
        assert!(String::from_utf8_lossy(&out.stderr).contains("nothing scaled"));
    }
    assert_eq!(api.replicas(), "4");
}
