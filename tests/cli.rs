//! The `concierge` binary as an operator uses it: `check`, `config`, `run --local`.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn concierge(dir: &Path) -> Command {
    let mut cmd = support::bin::concierge_in(dir);
    cmd.env("SENSU_CLIENT_NAME", "cli-test");
    cmd
}

fn write(dir: &Path, rel: &str, body: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn check_file_prints_output_and_exits_with_status() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "warn.json", r#"{"checks":{"warn":{"command":"echo WARNING && exit 1","interval":10}}}"#);
    let out = concierge(dir.path()).args(["check", "warn.json"]).output().unwrap();
    assert_eq!(stdout(&out), "WARNING\n");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));

    write(dir.path(), "bare.json", r#"{"command":"printf 'hi :::name:::'; exit 2"}"#);
    let out = concierge(dir.path()).args(["check", "bare.json"]).output().unwrap();
    assert_eq!(stdout(&out), "hi cli-test");
    assert_eq!(out.status.code(), Some(2));

    write(dir.path(), "code.json", r#"{"command":"exit 42"}"#);
    let out = concierge(dir.path()).args(["check", "code.json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(42), "a command's own code is passed through");
}

#[test]
fn check_by_name_with_json_prints_the_sensu_result() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "checks/mem.json",
        r#"{"checks":{"mem":{"command":"echo ok","subscribers":["linux"],"interval":10,"team":"ops"}}}"#,
    );
    let out = concierge(dir.path()).args(["check", "mem", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let result: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(result["client"], "cli-test");
    let check = &result["check"];
    assert_eq!(check["name"], "mem");
    assert_eq!(check["output"], "ok\n");
    assert_eq!(check["status"], 0);
    assert_eq!(check["team"], "ops", "custom attributes survive into the result");
    assert_eq!(check["subscribers"], serde_json::json!(["linux"]));
    assert!(check["issued"].is_i64() && check["executed"].is_i64() && check["duration"].is_f64());
}

#[test]
fn check_problems_are_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let out = concierge(dir.path()).args(["check", "nothing-here"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("no check named \"nothing-here\""), "{}", stderr(&out));

    write(dir.path(), "bad.json", r#"{"name":"has space","command":"true"}"#);
    let out = concierge(dir.path()).args(["check", "bad.json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("check name cannot contain spaces or special characters"), "{}", stderr(&out));

    write(dir.path(), "broken.json", r#"{"command": "#);
    let out = concierge(dir.path()).args(["check", "broken.json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("invalid JSON"), "{}", stderr(&out));
}

#[test]
fn check_commands_see_the_loaded_files_list() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "conf/a.json",
        r#"{"checks":{"files":{"command":"cat \"$SENSU_LOADED_TEMPFILE\"","interval":5}}}"#,
    );
    let out = concierge(dir.path()).args(["-d", "conf", "check", "files"]).output().unwrap();
    assert_eq!(stdout(&out), dir.path().join("conf/a.json").display().to_string());
}

#[test]
fn config_validate_and_print() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "config.json",
        r#"{"client":{"service":{"password":"secret"}},"checks":{"ok":{"command":"true","standalone":true,"interval":5}}}"#,
    );
    let out = concierge(dir.path()).args(["-c", "config.json", "config", "--validate"]).output().unwrap();
    assert_eq!(stdout(&out), "configuration is valid\n");
    assert_eq!(out.status.code(), Some(0));

    let out = concierge(dir.path()).args(["-c", "config.json", "config"]).output().unwrap();
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["client"]["service"]["password"], "REDACTED");
    assert_eq!(printed["client"]["name"], "cli-test");
    assert_eq!(printed["client"]["subscriptions"], serde_json::json!(["client:cli-test"]));

    write(dir.path(), "bad.json", r#"{"checks":{"cpu":{"command":"true","interval":"10","standalone":true}}}"#);
    let out = concierge(dir.path()).args(["-c", "bad.json", "config", "--validate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let text = stdout(&out);
    assert!(text.starts_with("configuration is invalid\n"), "{text}");
    let errors: Value = serde_json::from_str(text.trim_start_matches("configuration is invalid\n")).unwrap();
    assert_eq!(errors["errors"][0]["key"], "checks.cpu");
    assert_eq!(errors["errors"][0]["message"], "check interval must be an integer greater than 0");
}

#[test]
fn invalid_environment_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = concierge(dir.path()).env("CONCIERGE_SAFE_MODE", "perhaps").args(["run", "--local"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("CONCIERGE_SAFE_MODE"), "{}", stderr(&out));

    let out = concierge(dir.path()).env("SENSU_CLIENT_NAME", "bad name").args(["run", "--local"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("client: client name cannot contain spaces or special characters"));
}

// A guessed variable name used to be ignored without a word (issue 11).
#[test]
fn an_unknown_concierge_variable_is_warned_about_with_the_closest_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = concierge(dir.path())
        .env("CONCIERGE_HTTP_PORT", "3131")
        .env("CONCIERGE_XYZZY", "1")
        .args(["config", "--validate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "still valid: the variable is ignored; {}", stderr(&out));
    assert_eq!(stdout(&out), "configuration is valid\n");
    let warnings: Vec<Value> = stderr(&out).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let message =
        |var: &str| warnings.iter().find(|w| w["variable"] == var).map(|w| w["message"].as_str().unwrap().to_string());
    assert_eq!(
        message("CONCIERGE_HTTP_PORT").as_deref(),
        Some(
            "environment variable CONCIERGE_HTTP_PORT is not a Concierge setting and is ignored; did you mean CONCIERGE_HTTP_SOCKET_PORT?"
        ),
        "{}",
        stderr(&out)
    );
    assert!(message("CONCIERGE_XYZZY").unwrap().ends_with("is ignored (see the README's configuration table)"));
    // Known variables and other programs' variables draw no warning.
    assert_eq!(warnings.iter().filter(|w| w["variable"].is_string()).count(), 2, "{}", stderr(&out));
}

// Docker secrets: a credential given as NAME_FILE is read from the file, never shown; a file
// that cannot be read is a configuration error naming the variable.
#[test]
fn settings_can_come_from_secret_files() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "secrets/url", "amqp://sensu:hunter2@127.0.0.1:5672/%2F\n");
    let secret = dir.path().join("secrets/url");
    let out = concierge(dir.path()).env("RABBITMQ_URL_FILE", &secret).args(["config"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let printed: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(printed["rabbitmq"], "amqp://sensu:REDACTED@127.0.0.1:5672/%2F");
    assert!(!stdout(&out).contains("hunter2") && !stderr(&out).contains("hunter2"));

    let missing = dir.path().join("secrets/nope");
    let out = concierge(dir.path()).env("RABBITMQ_URL_FILE", &missing).args(["run"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!("environment variable RABBITMQ_URL_FILE: cannot read {}", missing.display())),
        "{}",
        stderr(&out)
    );
}

#[test]
fn run_local_prints_results_on_schedule_and_stops_cleanly_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "checks/fast.json",
        r#"{"checks":{
            "fast":{"command":"echo fast :::environment|dev:::","interval":1,"subscribers":["x"]},
            "never":{"command":"echo never","publish":false,"interval":1,"subscribers":["x"]},
            "adhoc":{"command":"echo adhoc","subscribers":["x"],"interval":1,"subdue":{"days":{"all":[{"begin":"12:00:00 AM","end":"11:59:59 PM"},{"begin":"11:59:00 PM","end":"12:01:00 AM"}]}}}
        }}"#,
    );
    let mut child = concierge(dir.path())
        .env("CONCIERGE_CLIENT_ATTRIBUTES", r#"{"environment":"test"}"#)
        .args(["run"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let started = Instant::now();
    let mut results = Vec::new();
    while results.len() < 3 && started.elapsed() < Duration::from_secs(15) {
        let line = lines.next().unwrap().unwrap();
        results.push(serde_json::from_str::<Value>(&line).unwrap());
    }
    assert_eq!(results.len(), 3);
    for r in &results {
        assert_eq!(r["client"], "cli-test");
        assert_eq!(r["check"]["name"], "fast", "publish:false and subdued checks never run");
        assert_eq!(r["check"]["output"], "fast test\n");
        assert_eq!(r["check"]["interval"], 1);
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let stopped = Instant::now();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(stopped.elapsed() < Duration::from_secs(5));
}

#[test]
fn version_and_help() {
    let dir = tempfile::tempdir().unwrap();
    let out = concierge(dir.path()).arg("--version").output().unwrap();
    assert_eq!(stdout(&out), format!("concierge {}\n", env!("CARGO_PKG_VERSION")));
    let out = concierge(dir.path()).arg("--help").output().unwrap();
    assert!(stdout(&out).contains("concierge run --local"));
}

#[test]
fn printed_configuration_hides_broker_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let out =
        concierge(dir.path()).env("RABBITMQ_URL", "amqp://sensu:hunter2@mq:5672/%2F").arg("config").output().unwrap();
    let text = stdout(&out);
    assert!(!text.contains("hunter2"), "{text}");
    let printed: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(printed["rabbitmq"], "amqp://sensu:REDACTED@mq:5672/%2F");
}

// One runtime thread by default; `CONCIERGE_WORKER_THREADS` (or `--worker-threads`) picks
// more, and the checks run the same either way.
#[test]
fn worker_threads_choose_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "checks/tick.json",
        r#"{"checks":{"tick":{"command":"echo tick","interval":1,"subscribers":["x"]}}}"#,
    );
    let runtime_threads = |threads: Option<&str>| {
        let mut cmd = concierge(dir.path());
        if let Some(n) = threads {
            cmd.env("CONCIERGE_WORKER_THREADS", n);
        }
        let mut child = cmd.args(["run", "--local"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let line = BufReader::new(child.stdout.take().unwrap()).lines().next().unwrap().unwrap();
        assert_eq!(serde_json::from_str::<Value>(&line).unwrap()["check"]["output"], "tick\n");
        let workers = std::fs::read_dir(format!("/proc/{}/task", child.id()))
            .unwrap()
            .filter(|t| {
                let comm = std::fs::read_to_string(t.as_ref().unwrap().path().join("comm")).unwrap_or_default();
                comm.trim() == "tokio-rt-worker"
            })
            .count();
        child.kill().unwrap();
        child.wait().unwrap();
        workers
    };
    assert_eq!(runtime_threads(None), 0, "the default runs on the main thread");
    assert_eq!(runtime_threads(Some("3")), 3);

    let out = concierge(dir.path()).env("CONCIERGE_WORKER_THREADS", "many").args(["run", "--local"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--worker-threads"), "{}", stderr(&out));
}

// Like sensu-client, a configured socket carries its defaults in the client's own settings:
// `:::socket.bind:::` substitutes, and a `stdin` check sees them (not only the keepalive).
#[test]
fn a_configured_socket_has_its_defaults_in_tokens_and_stdin() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "tokens.json",
        r#"{"command":"printf ':::socket.bind:::/:::socket.port:::/:::http_socket.bind|none:::'"}"#,
    );
    write(dir.path(), "stdin.json", r#"{"command":"cat","stdin":true}"#);
    let run = |file: &str| {
        concierge(dir.path())
            .env_remove("CONCIERGE_SOCKET_PORT")
            .env_remove("CONCIERGE_HTTP_SOCKET_PORT")
            .env("CONCIERGE_CLIENT_ATTRIBUTES", r#"{"socket":{"port":4030}}"#)
            .args(["check", file])
            .output()
            .unwrap()
    };
    let out = run("tokens.json");
    assert_eq!(stdout(&out), "127.0.0.1/4030/none", "{}", stderr(&out));
    let out = run("stdin.json");
    let event: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(event["client"]["socket"], serde_json::json!({"port": 4030, "bind": "127.0.0.1"}));
    assert!(event["client"].get("http_socket").is_none(), "an unconfigured socket stays absent");
}

#[test]
fn a_command_output_beyond_the_output_limit_is_cut_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "big.json", r#"{"command":"head -c 300 /dev/zero | tr '\\0' x; echo; exit 1"}"#);
    let out = concierge(dir.path()).env("CONCIERGE_OUTPUT_LIMIT", "100").args(["check", "big.json"]).output().unwrap();
    assert_eq!(
        stdout(&out),
        format!("{}\n[concierge: output truncated: 100 of 301 bytes kept; CONCIERGE_OUTPUT_LIMIT]", "x".repeat(100))
    );
    assert_eq!(out.status.code(), Some(1), "the status survives the cut");
    // The default keeps it whole.
    let out = concierge(dir.path()).args(["check", "big.json"]).output().unwrap();
    assert_eq!(stdout(&out), format!("{}\n", "x".repeat(300)));
    // A limit that is not a byte count is a configuration error, named.
    let out = concierge(dir.path()).env("CONCIERGE_OUTPUT_LIMIT", "lots").args(["check", "big.json"]).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("CONCIERGE_OUTPUT_LIMIT"), "{}", stderr(&out));
}
