//! sensu-client's request processing through the public executor: spec §7 items 7–25
//! (process_spec.rb), each with the real `sh` behind it.

mod support;

use concierge::checks::Executor;
use concierge::proto::Object;
use serde_json::{Value, json};
use support::obj;

/// The fixture of sensu's spec/helpers.rb.
fn executor(safe_mode: bool) -> Executor {
    support::executor::Builder::default()
        .client(json!({
            "name": "i-424242",
            "address": "127.0.0.1",
            "subscriptions": ["test", "roundrobin:test", "all", "client:i-424242"],
            "nested": {"attribute": true},
            "service": {"password": "secret"},
            "empty": {},
            "safe_mode": safe_mode
        }))
        .local_checks(vec![json!({
            "command": "echo :::name::: :::nested.attribute::: && exit 2",
            "subscribers": ["test"],
            "interval": 60,
            "name": "tokens"
        })])
        .spawn_limit(12)
        .builtin_limit(10)
        .build()
}

fn request(extra: Value) -> Object {
    let mut check = obj(json!({"name": "test", "command": "echo WARNING && exit 1", "issued": 1_575_000_000}));
    for (k, v) in obj(extra) {
        check.insert(k, v);
    }
    check
}

// Items 8 and 21: execute a check command.
#[tokio::test]
async fn executes_a_check_command() {
    let result = executor(false).process(request(json!({}))).await.unwrap();
    assert_eq!(result["output"], "WARNING\n");
    assert_eq!(result["status"], 1);
    assert!(result["executed"].is_i64());
    assert!(result["duration"].is_f64());
    let keys: Vec<&str> = result.keys().map(String::as_str).collect();
    assert_eq!(keys, ["name", "command", "issued", "executed", "duration", "output", "status"]);
}

// A timeout no `Duration` can hold is no timeout (it panicked in `Duration::from_secs_f64`).
#[tokio::test]
async fn a_huge_timeout_is_no_timeout() {
    let result = executor(false).process(request(json!({"timeout": 1e20}))).await.unwrap();
    assert_eq!((result["status"].clone(), result["output"].clone()), (json!(1), json!("WARNING\n")));
}

// Item 9: stdin gets {client, check}.
#[tokio::test]
async fn command_with_stdin_receives_client_and_check() {
    let result = executor(false).process(request(json!({"command": "cat", "stdin": true}))).await.unwrap();
    let doc: Value = serde_json::from_str(result["output"].as_str().unwrap()).unwrap();
    assert_eq!(doc["client"]["name"], "i-424242");
    // Unredacted: the check's stdin is private to it.
    assert_eq!(doc["client"]["service"]["password"], "secret");
    assert_eq!(doc["check"]["name"], "test");
    assert!(doc["check"]["executed"].is_i64());
}

// Items 10–11: tokens everywhere; the published command is the original.
#[tokio::test]
async fn substitutes_tokens_and_publishes_the_original_command() {
    let command = "echo :::nested.attribute|default::: :::missing|default::: :::missing|::: :::nested.attribute:::::::nested.attribute::: :::empty|localhost::: :::empty.hash|localhost:8080:::";
    let result = executor(false)
        .process(request(json!({"command": command, "source": ":::missing|qux:::", "foo": [":::name:::"]})))
        .await
        .unwrap();
    // Spec item 11: echo collapses the empty substitution.
    assert_eq!(result["output"], "true default true:true localhost localhost:8080\n");
    assert_eq!(result["command"], command);
    assert_eq!(result["source"], "qux");
    assert_eq!(result["foo"], json!(["i-424242"]));
}

// Item 12: unmatched tokens → status 3, handle false, not run.
#[tokio::test]
async fn unmatched_tokens_are_reported_and_not_run() {
    let result = executor(false)
        .process(request(json!({"command": "echo :::nonexistent::: :::noexistent.hash::: :::empty.hash::: && touch /tmp/concierge-should-not-exist"})))
        .await
        .unwrap();
    assert_eq!(result["output"], "Unmatched client token(s): nonexistent, noexistent.hash, empty.hash");
    assert_eq!(result["status"], 3);
    assert_eq!(result["handle"], false);
    assert!(result.get("duration").is_none());
    assert!(!std::path::Path::new("/tmp/concierge-should-not-exist").exists());
}

// Items 13 and 19: the warning hook runs; the ok hook is untouched.
#[tokio::test]
async fn runs_the_severity_hook() {
    let hooks = json!({"warning": {"command": "echo HOOKED"}, "ok": {"command": "echo NOPE"}});
    let result = executor(false).process(request(json!({"hooks": hooks}))).await.unwrap();
    assert_eq!(result["output"], "WARNING\n");
    let warning = &result["hooks"]["warning"];
    assert_eq!(warning["output"], "HOOKED\n");
    assert_eq!(warning["status"], 0);
    assert!(warning["executed"].is_i64() && warning["duration"].is_f64());
    assert!(result["hooks"]["ok"].get("output").is_none());
}

// Item 14: a status hook beats a severity hook.
#[tokio::test]
async fn status_hook_takes_precedence() {
    let hooks = json!({"1": {"command": "echo STATUS"}, "warning": {"command": "echo SEVERITY"}});
    let result = executor(false).process(request(json!({"hooks": hooks}))).await.unwrap();
    assert_eq!(result["hooks"]["1"]["output"], "STATUS\n");
    assert!(result["hooks"]["warning"].get("output").is_none());
}

// Item 15: non-zero.
#[tokio::test]
async fn non_zero_hook() {
    let hooks = json!({"non-zero": {"command": "echo NON-ZERO"}});
    let result = executor(false).process(request(json!({"hooks": hooks}))).await.unwrap();
    assert_eq!(result["hooks"]["non-zero"]["output"], "NON-ZERO\n");
}

// A built-in's result gets its hook as a command's does, picked by the built-in's status.
#[tokio::test]
async fn a_builtin_check_runs_its_hook() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let hooks = json!({"critical": {"command": "echo HOOKED"}, "ok": {"command": "echo NOPE"}});
    let tcp = json!({"host": "127.0.0.1", "port": closed, "timeout": 5});
    let result = support::executor::with_builtins()
        .process(obj(json!({"name": "port", "extension": "tcp", "tcp": tcp, "issued": 1, "hooks": hooks})))
        .await
        .unwrap();
    assert_eq!(result["status"], 2, "{result:?}");
    assert_eq!(result["hooks"]["critical"]["output"], "HOOKED\n");
    assert!(result["hooks"]["ok"].get("output").is_none());
    assert!(result["output"].as_str().unwrap().starts_with("TCP CRITICAL"), "{result:?}");
}

// Items 16–18: hook tokens, stdin and timeout.
#[tokio::test]
async fn hook_tokens_stdin_and_timeout() {
    let hooks = json!({"1": {"command": "echo :::name::: :::missing|default:::"}});
    let result = executor(false).process(request(json!({"hooks": hooks}))).await.unwrap();
    assert_eq!(result["hooks"]["1"]["output"], "i-424242 default\n");

    let hooks = json!({"1": {"command": "cat", "stdin": true}});
    let result = executor(false).process(request(json!({"hooks": hooks}))).await.unwrap();
    let doc: Value = serde_json::from_str(result["hooks"]["1"]["output"].as_str().unwrap()).unwrap();
    assert_eq!(doc["client"]["name"], "i-424242");
    assert_eq!(doc["check"]["output"], "WARNING\n");

    let hooks = json!({"1": {"command": "sleep 10", "timeout": 1}});
    let result = executor(false).process(request(json!({"hooks": hooks}))).await.unwrap();
    assert_eq!(result["hooks"]["1"]["output"], "Execution timed out");
    assert_eq!(result["hooks"]["1"]["status"], 2);
}

// Item 22: the local definition wins, command included.
#[tokio::test]
async fn local_definition_overrides_the_request() {
    let result = executor(false).process(request(json!({"name": "tokens"}))).await.unwrap();
    assert_eq!(result["output"], "i-424242 true\n");
    assert_eq!(result["status"], 2);
    assert_eq!(result["subscribers"], json!(["test"]));
    assert_eq!(result["interval"], 60);
}

// Item 23: proxy requests ignore local definitions.
#[tokio::test]
async fn proxy_request_ignores_local_definition() {
    let result = executor(false)
        .process(request(json!({"name": "tokens", "proxy_requests": {"client_attributes": {}}, "source": "switch-1"})))
        .await
        .unwrap();
    assert_eq!(result["output"], "WARNING\n");
    assert_eq!(result["status"], 1);
}

// Item 25: safe mode.
#[tokio::test]
async fn safe_mode_refuses_checks_not_defined_locally() {
    let result = executor(true).process(request(json!({}))).await.unwrap();
    assert_eq!(result["output"], "Check is not locally defined (safe mode)");
    assert_eq!(result["status"], 3);
    assert_eq!(result["handle"], false);
    assert!(result["executed"].is_i64());
    // A local definition still runs in safe mode.
    let result = executor(true).process(request(json!({"name": "tokens"}))).await.unwrap();
    assert_eq!(result["status"], 2);
}

// Item 7: the in-progress key is `source:name`; a duplicate is dropped.
#[tokio::test]
async fn in_progress_guard_drops_duplicates_per_source() {
    let executor = std::sync::Arc::new(executor(false));
    let slow = request(json!({"command": "sleep 0.5; echo done"}));
    let first = tokio::spawn({
        let e = executor.clone();
        let r = slow.clone();
        async move { e.process(r).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(executor.process(slow.clone()).await.is_none(), "duplicate must be dropped");
    let mut other_source = slow.clone();
    other_source.insert("source".into(), "rspec".into());
    let second = executor.process(other_source).await.unwrap();
    assert_eq!(second["output"], "done\n");
    assert_eq!(first.await.unwrap().unwrap()["output"], "done\n");
    // Once finished, the key is free again.
    assert!(executor.process(slow).await.is_some());
}

// `until_idle` waits for the execution holding the key a request would run under: its
// `source` as the local definition merged over it has it (else the pipeline's re-run of a
// redelivered request found "idle", was dropped again, and spun), and not for another
// source's; it returns once that execution ends.
#[tokio::test]
async fn until_idle_waits_for_the_key_the_request_would_run_under() {
    let gate = support::Gate::closed();
    let executor = std::sync::Arc::new(
        support::executor::Builder::default()
            .client(json!({"name": "c"}))
            .local_checks(vec![json!({"name": "slow", "source": "proxy-a", "command": gate.command("echo done")})])
            .build(),
    );
    let request = obj(json!({"name": "slow", "command": "true", "issued": 1}));
    let running = tokio::spawn({
        let (e, r) = (executor.clone(), request.clone());
        async move { e.process(r).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(executor.process(request.clone()).await.is_none(), "running under proxy-a:slow");
    let stop = tokio_util::sync::CancellationToken::new();
    let mut other = request.clone();
    other.insert("name".into(), "other".into());
    assert!(executor.until_idle(&other, &stop).await, "another check is idle");
    let waiting = tokio::spawn({
        let (e, r, s) = (executor.clone(), request.clone(), stop.clone());
        async move { e.until_idle(&r, &s).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "idle while proxy-a:slow runs");
    gate.open();
    assert_eq!(running.await.unwrap().unwrap()["output"], "done\n");
    assert!(waiting.await.unwrap(), "idle once it ended");
    stop.cancel();
}

// The spawn limit queues in order; duration includes the wait (as Sensu).
#[tokio::test]
async fn spawn_limit_queues_and_duration_includes_the_wait() {
    let executor = std::sync::Arc::new(
        support::executor::Builder::default().client(json!({"name": "c"})).spawn_limit(1).builtin_limit(1).build(),
    );
    // All three submitted at once, so all three start waiting in the same pass of the runtime
    // (spaced by sleeps, a late first poll on a loaded machine shortened the third's wait).
    let handles: Vec<_> = (0..3)
        .map(|i| {
            let e = executor.clone();
            tokio::spawn(async move {
                e.process(obj(json!({"name": format!("c{i}"), "command": "sleep 0.3"}))).await.unwrap()
            })
        })
        .collect();
    let mut durations = Vec::new();
    for h in handles {
        durations.push(h.await.unwrap()["duration"].as_f64().unwrap());
    }
    durations.sort_by(f64::total_cmp);
    // One ran at once (0.3 s), one after it (0.6 s), one after both (0.9 s): each duration
    // counts the wait; the margins are for a loaded machine's late timers.
    assert!(durations[1] >= 0.45 && durations[2] >= 0.75, "{durations:?}");
}

#[tokio::test]
async fn unknown_extension_is_an_unknown_result() {
    let result = executor(false).process(obj(json!({"name": "x", "extension": "nope", "issued": 1}))).await.unwrap();
    assert_eq!(result["status"], 3);
    assert_eq!(result["output"], "Unknown check extension: nope");
}

#[tokio::test]
async fn requests_without_a_name_are_dropped() {
    assert!(executor(false).process(obj(json!({"command": "true"}))).await.is_none());
    assert!(executor(false).process(obj(json!({"name": 5, "command": "true"}))).await.is_none());
}

#[tokio::test]
async fn ten_megabytes_of_output_are_published_with_the_limit_raised() {
    let big = request(json!({"command": "head -c 10485760 /dev/zero | tr '\\0' 'x'", "timeout": 30}));
    let raised = support::executor::Builder::default().output_limit(11 * 1024 * 1024).build();
    let result = raised.process(big.clone()).await.unwrap();
    assert_eq!(result["output"].as_str().unwrap().len(), 10 * 1024 * 1024);
    assert_eq!(result["status"], 0);
    // The default keeps 2 MiB and says what it dropped.
    let result = executor(false).process(big).await.unwrap();
    let output = result["output"].as_str().unwrap();
    assert!(output.starts_with(&"x".repeat(2 * 1024 * 1024)));
    assert!(
        output.ends_with("\n[concierge: output truncated: 2097152 of 10485760 bytes kept; CONCIERGE_OUTPUT_LIMIT]")
    );
    assert_eq!(result["status"], 0);
}
