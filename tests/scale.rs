//! The scheduler through real parts: `concierge scale` against a service on the private
//! one-node Swarm of `scripts/test.sh` (`scripts/docker.sh`), its decisions read back from
//! the engine and from the private broker's `results` exchange.
//!
//! Run alone with `scripts/test.sh --test scale -- --nocapture`.

mod support;

use std::process::Output;
use std::time::Duration;

use concierge::scale::decide::Move;
use concierge::scale::platform::{Platform, PlatformError, ServiceState, TaskRef};
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
        self.engine.replicas(&self.name).to_string()
    }

    fn running_tasks(&self) -> usize {
        self.engine.running_tasks(&self.name)
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
    // Down, then down again inside the cooldown, then once the recorded move is old enough.
    decision(
        &client,
        &mut results,
        &check,
        &[name, "down"],
        0,
        &format!("SCALE OK: {name} 4 → 3 (down by 1; bounds 2..4)"),
    )
    .await;
    let refused = format!("SCALE REFUSED: {name} stays at 3: scaled down …");
    let r = decision(&client, &mut results, &check, &[name, "down"], 1, &refused).await;
    assert!(r["check"]["output"].as_str().unwrap().ends_with(" s ago, cooldown 300 s (down by 1; bounds 2..4)\n"));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let long_ago = format!("concierge.scale.last_down={}", now - 301);
    engine.ok(&["service", "update", "--detach", "--label-add", &long_ago, name]);
    decision(
        &client,
        &mut results,
        &check,
        &[name, "down"],
        0,
        &format!("SCALE OK: {name} 3 → 2 (down by 1; bounds 2..4)"),
    )
    .await;
    assert_eq!(api.replicas(), "2");
    // `to` beyond the bounds is clamped to them; a dry run changes and reports nothing.
    let out = concierge_scale(&client, &[name, "to", "9", "--dry-run", "--cooldown", "0"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), format!("(dry run) SCALE OK: {name} 2 → 4 (to 9, clamped to the bounds; bounds 2..4)"));
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
    for bad in [
        vec![name, "sideways"],
        vec![name, "to"],
        vec![name, "up", "2"],
        vec![name, "up", "--by", "x"],
        vec![name, "up", "--by", "0"],
        vec!["", "up"],
        vec!["../services", "up"],
        vec!["api?x=1", "up"],
    ] {
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

    async fn running_tasks(&self, service: &str) -> Result<Vec<TaskRef>, PlatformError> {
        self.swarm.running_tasks(service).await
    }

    async fn replace_task(&self, service: &str, task: &TaskRef) -> Result<String, PlatformError> {
        self.swarm.replace_task(service, task).await
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

/// `concierge scale ARGS` with `input` on stdin, against the engine and the private broker.
fn piped(client: &str, args: &[&str], input: &[u8]) -> Output {
    let docker = [("DOCKER_HOST", std::env::var("CONCIERGE_TEST_DOCKER_HOST").unwrap())];
    piped_with(&docker, client, args, input)
}

/// `concierge scale ARGS` with `env` and `input` on stdin, its result to the private broker.
fn piped_with(env: &[(&str, String)], client: &str, args: &[&str], input: &[u8]) -> Output {
    use std::io::Write as _;
    let mut child = support::bin::concierge()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("RABBITMQ_URL", amqp_url())
        .env("SENSU_CLIENT_NAME", client)
        .arg("scale")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// `concierge scale handle` with `event` on stdin.
fn handle(client: &str, event: &[u8]) -> Output {
    piped(client, &["handle"], event)
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

/// One HTTP/1.1 request on loopback; the status and the body.
fn http(port: u16, method: &str, path: &str, token: Option<&str>, body: &[u8]) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return (0, String::new()) };
    // A server that accepts and never answers fails the call rather than hanging the test.
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    // A server that refuses a body early may close before all of it is written.
    let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body));
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
}

/// An Alertmanager (v0.25) webhook payload, version 4.
fn webhook(alerts: Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "receiver": "concierge", "status": "firing", "alerts": alerts,
        "groupLabels": {"alertname": "ConciergeBusy"}, "commonLabels": {"alertname": "ConciergeBusy"},
        "commonAnnotations": {}, "externalURL": "http://127.0.0.1:9093", "version": "4",
        "groupKey": "{}:{alertname=\"ConciergeBusy\"}", "truncatedAlerts": 0
    }))
    .unwrap()
}

fn alert(status: &str, labels: Value) -> Value {
    serde_json::json!({"status": status, "labels": labels, "annotations": {"summary": "busy"},
        "startsAt": "2026-12-02T01:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://127.0.0.1:9090/graph", "fingerprint": "c0ffee"})
}

// The webhook receiver: Alertmanager v4 payloads scale within the bounds (resolved alerts and
// alerts without the labels do nothing), scripts scale by ±N; a wrong token, an oversized
// or malformed body scale nothing; /metrics counts the decisions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_receiver_scales_on_alerts_and_refuses_what_it_must() {
    let Some(engine) = docker::engine() else { return };
    let api = Service::create(&engine, 2);
    let name = api.name.as_str();
    let token = "s3cret-token";
    let mut cmd = support::bin::concierge();
    cmd.env("DOCKER_HOST", std::env::var("CONCIERGE_TEST_DOCKER_HOST").unwrap())
        .env("RABBITMQ_URL", amqp_url())
        .env("SENSU_CLIENT_NAME", unique("receiver"))
        .env("CONCIERGE_SCALE_TOKEN", token)
        .args(["scale", "serve", "--listen", "127.0.0.1:0", "--cooldown", "0"]);
    let (mut receiver, port) = support::bin::spawn_listening(cmd, RECEIVER_LISTENING);
    let _stop = support::scopeguard(move || {
        let _ = receiver.kill();
        let _ = receiver.wait();
    });
    engine
        .wait_for("the receiver answers", Duration::from_secs(20), || http(port, "GET", "/healthz", None, b"").0 == 200)
        .await;

    // Two firing alerts for the service (one by 2), one resolved, one without labels.
    let payload = webhook(serde_json::json!([
        alert("firing", serde_json::json!({"alertname": "ConciergeBusy", "service": name, "scale": "up"})),
        alert("resolved", serde_json::json!({"alertname": "ConciergeBusy", "service": name, "scale": "up"})),
        alert("firing", serde_json::json!({"alertname": "Other"})),
        alert(
            "firing",
            serde_json::json!({"alertname": "ConciergeBusy", "service": name, "scale": "up", "scale_by": "2"})
        ),
    ]));
    let (status, body) = http(port, "POST", "/v1/alertmanager", Some(token), &payload);
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["ignored"], 2);
    // The two firing alerts about the service are one decision: the larger move.
    assert_eq!(body["decisions"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["decisions"][0]["line"], format!("SCALE OK: {name} 2 → 4 (up by 2; bounds 2..4)"));
    assert_eq!(api.replicas(), "4");

    // Scripts: refused at the max (409), then down by 2.
    let (status, body) = http(port, "POST", &format!("/v1/scale?service={name}&by=1"), Some(token), b"");
    assert_eq!(status, 409, "{body}");
    let (status, body) = http(port, "POST", &format!("/v1/scale?service={name}&by=-2"), Some(token), b"");
    assert_eq!(status, 200, "{body}");
    assert_eq!(api.replicas(), "2");

    // Refusals that scale nothing.
    let up = webhook(serde_json::json!([alert("firing", serde_json::json!({"service": name, "scale": "up"}))]));
    assert_eq!(http(port, "POST", "/v1/alertmanager", Some("wrong"), &up).0, 401);
    assert_eq!(http(port, "POST", "/v1/alertmanager", None, &up).0, 401);
    let (status, body) = http(port, "POST", "/v1/alertmanager", Some(token), b"{\"version\":");
    assert_eq!(status, 400);
    assert!(body.contains("not JSON"), "{body}");
    let (status, body) = http(port, "POST", "/v1/alertmanager", Some(token), br#"{"version":"3","alerts":[]}"#);
    assert_eq!((status, body.contains("\\\"version\\\" must be \\\"4\\\"")), (400, true), "{body}");
    let sideways = webhook(serde_json::json!([
        alert("firing", serde_json::json!({"service": name, "scale": "up"})),
        alert("firing", serde_json::json!({"service": name, "scale": "sideways"})),
    ]));
    let (status, body) = http(port, "POST", "/v1/alertmanager", Some(token), &sideways);
    assert_eq!(status, 400);
    assert!(body.contains("alerts[1]: scale must be up or down"), "{body}");
    let both_ways = webhook(serde_json::json!([
        alert("firing", serde_json::json!({"service": name, "scale": "up"})),
        alert("firing", serde_json::json!({"service": name, "scale": "down"})),
    ]));
    let (status, body) = http(port, "POST", "/v1/alertmanager", Some(token), &both_ways);
    assert_eq!(status, 400);
    assert!(body.contains(&format!("alerts ask {name} to scale both up and down: nothing applied")), "{body}");
    assert_eq!(announced(port, token, 2 * 1024 * 1024).0, 400, "a body announced over 1 MiB");
    let (status, body) = http(port, "POST", "/v1/scale?service=..%2Fx&by=1", Some(token), b"");
    assert_eq!(status, 400, "{body}");
    assert_eq!(http(port, "POST", "/v1/scale?service=&by=1", Some(token), b"").0, 400);
    assert_eq!(http(port, "POST", &format!("/v1/scale?service={name}&by=0"), Some(token), b"").0, 400);
    assert_eq!(api.replicas(), "2", "nothing refused was scaled");

    let (_, metrics) = http(port, "GET", "/metrics", None, b"");
    assert!(metrics.contains("concierge_scale_decisions_total{outcome=\"scaled\"} 2"), "{metrics}");
    assert!(metrics.contains("concierge_scale_decisions_total{outcome=\"refused\"} 1"), "{metrics}");
}

// Without a token the receiver does not start.
#[test]
fn the_receiver_needs_a_token() {
    let out = support::bin::concierge().args(["scale", "serve", "--listen", "127.0.0.1:0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("set CONCIERGE_SCALE_TOKEN"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// A stuck client is replaced on its keepalive event: the task behind it (frozen here with
// `docker pause`, alive to the orchestrator) is stopped and Swarm starts a fresh one in the
// slot; a second event within the cooldown replaces nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_client_is_replaced_after_its_keepalive_event() {
    let Some(engine) = docker::engine() else { return };
    let server = ServerSide::connect().await;
    let mut results = server.tap_results().await;
    let client = unique("handler");
    let api = Service::create(&engine, 3);
    let name = api.name.as_str();
    engine.wait_for("3 tasks running", Duration::from_secs(60), || api.running_tasks() == 3).await;
    let container = |slot: u32| {
        let label = format!("label=com.docker.swarm.service.name={name}");
        let ids = engine.ok(&["ps", "-q", "--filter", &label]);
        ids.lines()
            .find(|id| {
                engine.inspect(id, "{{index .Config.Labels \"com.docker.swarm.task.name\"}}").split('.').nth(1)
                    == Some(&slot.to_string())
            })
            .map(str::to_string)
    };
    let frozen = container(2).expect("slot 2's container");
    engine.ok(&["pause", &frozen]);

    // What sensu-server raises once a client's keepalives stop.
    let keepalive = |probe: &str| {
        serde_json::to_vec(&serde_json::json!({
            "client": {"name": probe, "address": "127.0.0.1", "subscriptions": ["probe"], "version": "1.9.0", "timestamp": 1796168000},
            "check": {"name": "keepalive", "status": 2, "output": "No keepalive sent from client for 185 seconds (>=180)",
                      "thresholds": {"warning": 120, "critical": 180}, "issued": 1796168185, "executed": 1796168185, "handlers": ["scale"]},
            "occurrences": 1, "action": "create", "timestamp": 1796168185
        }))
        .unwrap()
    };
    let pattern = format!("probe-{{slot}}={name}");
    let replace = |event: &[u8]| piped(&client, &["handle", "--replace-clients", &pattern], event);
    let out = replace(&keepalive("probe-2"));
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).starts_with(&format!("SCALE REPLACED: probe-2 (service {name}, slot 2): stopped container ")),
        "{}",
        stdout(&out)
    );
    let (r, _) = results.next_for(&client, Duration::from_secs(10)).await.expect("the replacement's result");
    assert_eq!((r["check"]["client"].as_str(), r["check"]["slot"].as_u64()), (Some("probe-2"), Some(2)));
    let took = engine
        .wait_for("a fresh task in slot 2", Duration::from_secs(60), || {
            container(2).is_some_and(|c| c != frozen) && api.running_tasks() == 3
        })
        .await;
    println!("scale: probe-2's frozen task replaced, a fresh one running {:.1} s later", took.as_secs_f64());
    assert_eq!(api.replicas(), "3");

    // The same outage seen again (or another client of the service) within the cooldown.
    let out = replace(&keepalive("probe-3"));
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).starts_with(&format!(
            "SCALE REFUSED: probe-3 (service {name}) is not replaced: a client of it was replaced "
        )),
        "{}",
        stdout(&out)
    );
    // A keepalive of a client no pattern names replaces nothing.
    let out = replace(&keepalive("web-1"));
    assert_eq!(
        (out.status.code(), stdout(&out)),
        (Some(0), "SCALE IGNORED: keepalive of web-1: no --replace-clients pattern names it".to_string())
    );
}

/// A POST whose Content-Length announces `length` bytes, sending none of them.
fn announced(port: u16, token: &str, length: usize) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return (0, String::new()) };
    let head = format!(
        "POST /v1/alertmanager HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nContent-Length: {length}\r\n\r\n"
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, response)
}

/// An ECS service `api` in a new cluster of the moto server, with bounds 2..4 in its tags.
async fn ecs_service(moto: &support::moto::Moto, replicas: i32) -> (String, String) {
    let cluster = unique("probes");
    let tags = [("com.df.scaleMin", "2"), ("com.df.scaleMax", "4"), ("team", "probes")];
    moto.service(&cluster, replicas, &tags).await;
    (cluster, "api".into())
}

/// The service's desired count and tags, read back from the server.
async fn ecs_state(ecs: &aws_sdk_ecs::Client, cluster: &str, service: &str) -> (i32, Vec<(String, String)>) {
    let out = ecs.describe_services().cluster(cluster).services(service).send().await.unwrap();
    let found = &out.services()[0];
    let tags = ecs.list_tags_for_resource().resource_arn(found.service_arn().unwrap()).send().await.unwrap();
    let tags = tags.tags().iter().map(|t| (t.key().unwrap().to_string(), t.value().unwrap().to_string())).collect();
    (found.desired_count(), tags)
}

/// `concierge scale ARGS` against the moto server, with `input` on stdin; its result
/// published to the private broker.
fn ecs_scale(moto: &support::moto::Moto, client: &str, args: &[&str], input: &[u8]) -> Output {
    piped_with(&moto.env(), client, args, input)
}

// ECS (moto on loopback standing in for AWS): the same decisions as on Swarm, the bounds
// from the service's tags, the cooldown kept in its tags across processes, a result each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecs_services_scale_within_their_tags_with_cooldowns_in_tags() {
    let Some(moto) = support::moto::Moto::start().await else { return };
    let ecs = moto.ecs();
    let (cluster, api) = ecs_service(&moto, 3).await;
    let server = ServerSide::connect().await;
    let mut results = server.tap_results().await;
    let client = unique("ecs-scheduler");
    let on_ecs = |args: &[&str]| -> Vec<String> {
        let mut all: Vec<String> = ["--platform", "ecs", "--cluster", &cluster].map(String::from).to_vec();
        all.extend(args.iter().map(|a| a.to_string()));
        all
    };
    let mut decide = async |args: &[&str], code: i32, line: &str| -> Value {
        let args = on_ecs(args);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = ecs_scale(&moto, &client, &args, b"");
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
        match line.strip_suffix('…') {
            Some(start) => assert!(stdout(&out).starts_with(start), "{}", stdout(&out)),
            None => assert_eq!(stdout(&out), line),
        }
        let (r, _) = results.next_for(&client, Duration::from_secs(10)).await.expect("a result per decision");
        let check = format!("scale_{}", args[4]);
        assert_eq!(
            (r["check"]["name"].as_str(), r["check"]["status"].as_i64()),
            (Some(check.as_str()), Some(code.into()))
        );
        r
    };

    let r = decide(&[&api, "up"], 0, "SCALE OK: api 3 → 4 (up by 1; bounds 2..4)").await;
    assert_eq!(r["check"]["bounds"], serde_json::json!({"min": 2, "max": 4}));
    let (count, tags) = ecs_state(&ecs, &cluster, &api).await;
    assert_eq!(count, 4);
    assert!(tags.iter().any(|(k, _)| k == "concierge.scale.last_up"), "{tags:?}");
    assert!(tags.contains(&("team".into(), "probes".into())), "other tags are kept: {tags:?}");

    decide(&[&api, "up", "--cooldown", "0"], 1, "SCALE REFUSED: api stays at 4: at the max (up by 1; bounds 2..4)")
        .await;
    decide(&[&api, "down"], 0, "SCALE OK: api 4 → 3 (down by 1; bounds 2..4)").await;
    // A new process reads the cooldown back from the tags.
    decide(&[&api, "down"], 1, "SCALE REFUSED: api stays at 3: scaled down …").await;
    assert_eq!(ecs_state(&ecs, &cluster, &api).await.0, 3);
    let arn = format!("arn:aws:ecs:us-east-1:123456789012:service/{cluster}/{api}");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let long_ago = aws_sdk_ecs::types::Tag::builder().key("concierge.scale.last_down").value((now - 301).to_string());
    ecs.tag_resource().resource_arn(&arn).tags(long_ago.build()).send().await.unwrap();
    decide(&[&api, "down"], 0, "SCALE OK: api 3 → 2 (down by 1; bounds 2..4)").await;
    decide(&[&api, "to", "9", "--cooldown", "0"], 0, "SCALE OK: api 2 → 4 (to 9, clamped to the bounds; bounds 2..4)")
        .await;
    assert_eq!(ecs_state(&ecs, &cluster, &api).await.0, 4);

    // What is not there fails (exit 2), naming it.
    decide(&["nope", "up"], 2, &format!("SCALE FAILED: nope: service nope (cluster {cluster}) not found")).await;
    let out = ecs_scale(&moto, &client, &["--platform", "ecs", "--cluster", "no-such-cluster", &api, "up"], b"");
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stdout(&out).starts_with("SCALE FAILED: api: "), "{}", stdout(&out));
    let _ = results.next_for(&client, Duration::from_secs(10)).await;
    // A platform that is not there is a bad argument.
    let out = ecs_scale(&moto, &client, &["--platform", "nomad", &api, "up"], b"");
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), "error: unknown platform \"nomad\": swarm or ecs");
    assert_eq!(ecs_state(&ecs, &cluster, &api).await.0, 4);
}

// A move ECS does not let through is not half made: ECS cannot set a count and a tag in one
// call, so the move is recorded (tagged) first. A role that may not tag leaves the count as it
// was (it was set, then the tag failed, so no cooldown held the alert's retries: each one
// scaled again); a count that may not be set has its record put back, so the retry is not
// refused for a move that did not happen. Then the retry moves once, and the next is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ecs_move_half_refused_is_not_made_and_its_retry_moves_once() {
    let Some(moto) = support::moto::Moto::start().await else { return };
    let ecs = moto.ecs();
    let (cluster, api) = ecs_service(&moto, 2).await;
    let door = support::moto::Door::open(&moto).await;
    let client = unique("ecs-door");
    let up = ["--platform", "ecs", "--cluster", &cluster, &api, "up"];
    for action in ["TagResource", "UpdateService"] {
        door.refuse(Some(action));
        let out = piped_with(&door.env(&moto), &client, &up, b"");
        assert_eq!(out.status.code(), Some(2), "{action}: {}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
        assert!(stdout(&out).contains(&format!("not authorized to perform ecs:{action}")), "{}", stdout(&out));
        let (count, tags) = ecs_state(&ecs, &cluster, &api).await;
        assert_eq!(count, 2, "refused {action}, and the count moved anyway");
        assert!(!tags.iter().any(|(k, _)| k == "concierge.scale.last_up"), "refused {action}, recorded: {tags:?}");
    }
    door.refuse(None);
    let out = piped_with(&door.env(&moto), &client, &up, b"");
    assert_eq!(stdout(&out), "SCALE OK: api 2 → 3 (up by 1; bounds 2..4)");
    let out = piped_with(&door.env(&moto), &client, &up, b"");
    assert!(stdout(&out).starts_with("SCALE REFUSED: api stays at 3: scaled up "), "{}", stdout(&out));
    assert_eq!(ecs_state(&ecs, &cluster, &api).await.0, 3);
}

// ECS through the Sensu handler: a check naming `"platform": "ecs"` scales the service, and a
// keepalive event of `probe-{ecs_task_id}` stops that task (StopTask), once per cooldown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sensu_handler_scales_and_replaces_on_ecs() {
    let Some(moto) = support::moto::Moto::start().await else { return };
    let ecs = moto.ecs();
    let (cluster, api) = ecs_service(&moto, 2).await;
    let client = unique("ecs-handler");
    let mut event: Value = serde_json::from_slice(&sample("handler-event-create.json", &api)).unwrap();
    event["check"]["scale"]["platform"] = "ecs".into();
    event["check"]["scale"]["cluster"] = cluster.clone().into();
    let out = ecs_scale(&moto, &client, &["handle"], &serde_json::to_vec(&event).unwrap());
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout(&out), "SCALE OK: api 2 → 3 (up by 1; bounds 2..4)");
    assert_eq!(ecs_state(&ecs, &cluster, &api).await.0, 3);

    // Four tasks of the service; the client in the second stopped sending keepalives. (The
    // SDK cannot read moto's RunTask answer, whose containers' `cpu` is a number where ECS
    // sends a string; the tasks are made all the same and listed below.)
    let _ = ecs
        .run_task()
        .cluster(&cluster)
        .task_definition("probe")
        .count(4)
        .launch_type(aws_sdk_ecs::types::LaunchType::Fargate)
        .group("service:api")
        .send()
        .await;
    let tasks = async |status: aws_sdk_ecs::types::DesiredStatus| -> Vec<String> {
        let listed = ecs.list_tasks().cluster(&cluster).desired_status(status).send().await.unwrap();
        listed.task_arns().iter().map(|arn| arn.rsplit('/').next().unwrap().to_string()).collect()
    };
    let ids = tasks(aws_sdk_ecs::types::DesiredStatus::Running).await;
    assert_eq!(ids.len(), 4, "{ids:?}");
    let keepalive = |id: &str| {
        serde_json::to_vec(&serde_json::json!({"client": {"name": format!("probe-{id}")},
            "check": {"name": "keepalive", "status": 2, "output": "No keepalive sent from client for 185 seconds (>=180)"},
            "occurrences": 1, "action": "create"}))
        .unwrap()
    };
    let replace = ["handle", "--replace-clients", "probe-{ecs_task_id}=api", "--cluster", &cluster];
    let out = ecs_scale(&moto, &client, &replace, &keepalive(&ids[1]));
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        stdout(&out),
        format!(
            "SCALE REPLACED: probe-{id} (service api, task {id}): stopped task {id}; its keepalives had stopped",
            id = ids[1]
        )
    );
    assert_eq!(tasks(aws_sdk_ecs::types::DesiredStatus::Stopped).await, vec![ids[1].clone()]);
    // Another stuck client within the cooldown: not replaced (exit 1), nothing stopped.
    let out = ecs_scale(&moto, &client, &replace, &keepalive(&ids[2]));
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).starts_with(&format!(
            "SCALE REFUSED: probe-{} (service api) is not replaced: a client of it was replaced ",
            ids[2]
        )),
        "{}",
        stdout(&out)
    );
    assert_eq!(tasks(aws_sdk_ecs::types::DesiredStatus::Stopped).await, vec![ids[1].clone()]);
}

// A remote manager over TCP with TLS and a client certificate, found as the docker CLI
// finds it (DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH): scaled through it; without
// the certificate, or without TLS, it fails (exit 2) and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_over_tls_is_reached_as_the_docker_cli_reaches_it() {
    let Some(engine) = docker::engine() else { return };
    let host = std::env::var("CONCIERGE_TEST_DOCKER_TLS_HOST").expect("scripts/docker.sh starts a TLS listener");
    let certs = std::env::var("CONCIERGE_TEST_DOCKER_CERT_PATH").unwrap();
    let api = Service::create(&engine, 2);
    let name = api.name.as_str();
    let run = |env: &[(&str, &str)], args: &[&str]| {
        let mut cmd = support::bin::concierge();
        cmd.env_remove("DOCKER_TLS_VERIFY").env_remove("DOCKER_CERT_PATH").env("DOCKER_HOST", &host);
        cmd.env("RABBITMQ_URL", amqp_url());
        cmd.env("SENSU_CLIENT_NAME", unique("tls")).envs(env.iter().copied()).arg("scale").args(args);
        cmd.output().unwrap()
    };
    let out = run(&[("DOCKER_TLS_VERIFY", "1"), ("DOCKER_CERT_PATH", &certs)], &[name, "up"]);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout(&out), format!("SCALE OK: {name} 2 → 3 (up by 1; bounds 2..4)"));
    assert_eq!(api.replicas(), "3");

    let empty = tempfile::tempdir().unwrap();
    let out = run(&[("DOCKER_TLS_VERIFY", "1"), ("DOCKER_CERT_PATH", empty.path().to_str().unwrap())], &[name, "down"]);
    assert_eq!(out.status.code(), Some(2));
    let missing = format!("{}/ca.pem is missing", empty.path().display());
    assert!(
        stdout(&out).starts_with(&format!("SCALE FAILED: {name}: docker {host}: DOCKER_TLS_VERIFY is set but ")),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).ends_with(&missing), "{}", stdout(&out));
    let out = run(&[], &[name, "down"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stdout(&out).starts_with(&format!("SCALE FAILED: {name}: docker {host}: ")), "{}", stdout(&out));
    assert_eq!(api.replicas(), "3");
}

/// The receiver's log line naming the address it bound.
const RECEIVER_LISTENING: &str = "scale receiver listening";

/// A background process (Prometheus, Alertmanager), killed when dropped.
struct Daemon {
    child: std::process::Child,
    /// The port it listens on.
    port: u16,
}

impl Daemon {
    /// Start `program` with `args` and `--web.listen-address=127.0.0.1:0`, its output in `log`;
    /// the port is the one it logs as bound, so no other test can take it in between. A daemon
    /// that exits or logs no port within 30 s fails the test with its log.
    fn start(program: &str, args: &[String], log: &std::path::Path) -> Self {
        let out = std::fs::File::create(log).unwrap();
        let mut child = std::process::Command::new(program)
            .args(args)
            .arg("--web.listen-address=127.0.0.1:0")
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("{program}: {e} (scripts/test.sh installs it)"));
        let started = std::time::Instant::now();
        loop {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            // `msg="Listening on" address=127.0.0.1:PORT` (the Prometheus exporter toolkit's line).
            let port = text
                .lines()
                .filter(|line| line.contains("msg=\"Listening on\""))
                .find_map(|line| line.split("address=127.0.0.1:").nth(1)?.split_whitespace().next()?.parse().ok());
            if let Some(port) = port {
                return Self { child, port };
            }
            let exited = child.try_wait().unwrap();
            if exited.is_some() || started.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{program}: no port bound ({exited:?} after {:?}); its log:\n{text}", started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The shipped alerting rules, made quick for a test: the `scale` rules name `service`, hold
/// for `for_` instead of minutes, and the way down ignores the lag (its window is a minute).
/// Every change is checked to have applied; the thresholds are the shipped ones.
fn quick_rules(service: &str, for_: &str) -> String {
    let path = format!("{}/deploy/swarm/prometheus-rules.yml", env!("CARGO_MANIFEST_DIR"));
    let mut rules: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut scaling = Vec::new();
    for rule in rules["groups"][0]["rules"].as_array_mut().unwrap() {
        let Some(direction) = rule["labels"]["scale"].as_str().map(str::to_string) else { continue };
        rule["labels"]["service"] = service.into();
        rule["for"] = for_.into();
        if direction == "down" {
            let expr = rule["expr"].as_str().unwrap().to_string();
            let lag = "concierge_lag_p95_seconds{job=\"concierge\"}) < ";
            let quick = expr.replace(&format!("{lag}5"), &format!("{lag}3600"));
            assert_ne!(quick, expr, "the shipped rule changed shape: {expr}");
            rule["expr"] = quick.into();
        }
        scaling.push(direction);
    }
    assert_eq!(scaling, ["up", "down"], "an up and a down rule are shipped");
    serde_json::to_string_pretty(&rules).unwrap()
}

// The seeds' whole loop, for real: Concierge replicas on the Swarm expose /metrics; Debian's
// Prometheus scrapes them and evaluates the shipped rules; Debian's Alertmanager routes the
// `scale` alerts to `concierge scale serve`, which scales the fleet's service. A burst of slow
// round-robin checks grows it to its max (and no further); idle shrinks it back to its min.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_and_alertmanager_scale_the_fleet_through_the_receiver() {
    let Some(engine) = docker::engine() else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = ServerSide::connect().await;
    let mut results = server.tap_results().await;
    let rr = unique("roundrobin:loop");
    let token = "loop-token";

    // The fleet: one replica to start, bounds 1..3, two command slots (slow commands fill a
    // replica: its busy ratio is its fuller pool's).
    let fleet = docker::Fleet::create(
        &engine,
        &rr,
        1,
        &["com.df.scaleMin=1", "com.df.scaleMax=3"],
        &["CONCIERGE_COMMAND_CONCURRENCY=2"],
    );
    let (name, http_base) = (fleet.name.clone(), fleet.http_base);
    let replicas = || fleet.replicas().to_string();
    let running = || fleet.running();

    // The receiver, Alertmanager, Prometheus.
    let receiver_client = unique("scale-receiver");
    let mut cmd = support::bin::concierge();
    cmd.env("DOCKER_HOST", std::env::var("CONCIERGE_TEST_DOCKER_HOST").unwrap())
        .env("RABBITMQ_URL", amqp_url())
        .env("SENSU_CLIENT_NAME", &receiver_client)
        .env("CONCIERGE_SCALE_TOKEN", token)
        .args(["scale", "serve", "--listen", "127.0.0.1:0", "--cooldown", "4"]);
    let (mut receiver, receiver_port) = support::bin::spawn_listening(cmd, RECEIVER_LISTENING);
    let _receiver = support::scopeguard(move || {
        let _ = receiver.kill();
        let _ = receiver.wait();
    });
    let am_config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &am_config,
        format!(
            "route: {{receiver: concierge, group_by: [alertname], group_wait: 1s, group_interval: 1s, repeat_interval: 2s}}\n\
             receivers:\n  - name: concierge\n    webhook_configs:\n      - url: http://127.0.0.1:{receiver_port}/v1/alertmanager\n        \
             http_config: {{authorization: {{credentials: {token}}}}}\n"
        ),
    )
    .unwrap();
    let alertmanager = Daemon::start(
        "prometheus-alertmanager",
        &[
            format!("--config.file={}", am_config.display()),
            format!("--storage.path={}", dir.path().join("am").display()),
            "--cluster.listen-address=".into(),
        ],
        &dir.path().join("alertmanager.log"),
    );
    let am_port = alertmanager.port;
    let rules = dir.path().join("rules.json");
    std::fs::write(&rules, quick_rules(&name, "3s")).unwrap();
    let targets: Vec<String> = (1..=3).map(|slot| format!("\"127.0.0.1:{}\"", http_base + slot)).collect();
    let prom_config = dir.path().join("prometheus.yml");
    std::fs::write(
        &prom_config,
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nrule_files: [{}]\n\
             alerting: {{alertmanagers: [{{static_configs: [{{targets: [\"127.0.0.1:{am_port}\"]}}]}}]}}\n\
             scrape_configs: [{{job_name: concierge, static_configs: [{{targets: [{}]}}]}}]\n",
            rules.display(),
            targets.join(", ")
        ),
    )
    .unwrap();
    let prometheus = Daemon::start(
        "prometheus",
        &[
            format!("--config.file={}", prom_config.display()),
            format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()),
            "--rules.alert.resend-delay=1s".into(),
        ],
        &dir.path().join("prometheus.log"),
    );
    let prom_port = prometheus.port;
    for (what, port, path) in [
        ("the receiver", receiver_port, "/healthz"),
        ("Alertmanager", am_port, "/-/ready"),
        ("Prometheus", prom_port, "/-/ready"),
    ] {
        engine.wait_for(what, Duration::from_secs(30), || http(port, "GET", path, None, b"").0 == 200).await;
    }
    engine.wait_for("the first replica", Duration::from_secs(60), || running() == 1).await;

    // The timeline: what Alertmanager holds, the desired replicas, the running tasks.
    let start = std::time::Instant::now();
    let mut timeline: Vec<String> = Vec::new();
    let mut last = (String::new(), String::new(), 0usize);
    let mut peak = 1u64;
    let mut observe = |timeline: &mut Vec<String>| -> (u64, usize) {
        let (_, body) = http(am_port, "GET", "/api/v2/alerts?active=true&silenced=false&inhibited=false", None, b"");
        let alerts: Value = serde_json::from_str(&body).unwrap_or_default();
        let mut firing: Vec<String> = alerts
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| Some(a["labels"]["alertname"].as_str()?.to_string()))
            .collect();
        firing.sort();
        let now = (firing.join(", "), replicas(), running());
        let t = start.elapsed().as_secs_f64();
        if now.0 != last.0 {
            timeline.push(format!("{t:6.1} s  alerts firing at Alertmanager: [{}]", now.0));
        }
        if now.1 != last.1 {
            timeline.push(format!("{t:6.1} s  service scaled to {} replicas", now.1));
        }
        if now.2 != last.2 {
            timeline.push(format!("{t:6.1} s  {} tasks running", now.2));
        }
        last = now;
        let desired: u64 = last.1.parse().unwrap();
        peak = peak.max(desired);
        (desired, last.2)
    };

    // A burst of slow checks: 5 a second of `sleep 1` (each its own check: like sensu-client,
    // a replica does not start a check that is still running), while one replica finishes 2.
    let mut sent = 0u64;
    let grown = loop {
        for _ in 0..5 {
            sent += 1;
            let request = serde_json::json!({"name": format!("loop_work_{sent}"), "command": "sleep 1", "issued": support::web::now_epoch(), "subscribers": [rr]});
            server.publish_request(&rr, &request).await;
        }
        let (desired, tasks) = observe(&mut timeline);
        if desired == 3 && tasks == 3 {
            break true;
        }
        if start.elapsed() > Duration::from_secs(150) {
            break false;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    timeline.push(format!("{:6.1} s  burst over: {sent} checks published", start.elapsed().as_secs_f64()));
    // Idle: the backlog drains, the busy ratio falls, the scale-down alert brings it back.
    let shrunk = loop {
        let (desired, _) = observe(&mut timeline);
        if desired == 1 || start.elapsed() > Duration::from_secs(330) {
            break desired == 1;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!("the Prometheus → Alertmanager → concierge scale serve loop:\n{}", timeline.join("\n"));
    assert!(grown, "the burst grew the service to its max of 3 replicas, all running");
    assert!(shrunk, "idle shrank the service back to its min of 1");
    assert_eq!(peak, 3, "never past the max");

    // Each move is a Sensu result from the receiver, beside the alert that caused it.
    let decisions = results.collect_for(&receiver_client, 200, Duration::from_secs(5)).await;
    let lines: Vec<&str> = decisions.iter().filter_map(|r| r["check"]["output"].as_str()).collect();
    for expected in [
        format!("SCALE OK: {name} 1 → 2 (up by 1; bounds 1..3)\n"),
        format!("SCALE OK: {name} 2 → 3 (up by 1; bounds 1..3)\n"),
        format!("SCALE OK: {name} 3 → 2 (down by 1; bounds 1..3)\n"),
        format!("SCALE OK: {name} 2 → 1 (down by 1; bounds 1..3)\n"),
    ] {
        assert!(lines.contains(&expected.as_str()), "{expected:?} in {lines:?}");
    }
    let up = decisions.iter().find(|r| r["check"]["to"] == 2 && r["check"]["from"] == 1).unwrap();
    assert!(up["check"]["trigger"].as_str().unwrap().contains("ConciergeScaleUp"), "{}", up["check"]["trigger"]);
}
