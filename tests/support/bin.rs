//! The `concierge` binary, started the one way every test starts it.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// The `concierge` binary with a clean environment: nothing inherited but `PATH` (no
/// `RABBITMQ_URL`, `CONCIERGE_*` or `SENSU_*` from the shell running the tests), quiet logs
/// (`CONCIERGE_LOG_LEVEL=warn`), stdin closed, and, as many run at once, free ports for its
/// sockets. Tests add or override what they need with `.env(…)`.
pub fn concierge() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_concierge"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CONCIERGE_LOG_LEVEL", "warn")
        .env("CONCIERGE_SOCKET_PORT", "0")
        .env("CONCIERGE_HTTP_SOCKET_PORT", "0")
        .stdin(Stdio::null());
    cmd
}

/// [`concierge`] run in `dir` as client `cli`, keeping its loaded-tempfile state there.
pub fn concierge_in(dir: &Path) -> Command {
    let mut cmd = concierge();
    cmd.current_dir(dir).env("SENSU_CLIENT_NAME", "cli").env("SENSU_LOADED_TEMPFILE_DIR", dir);
    cmd
}

/// [`concierge_in`] `dir` with `args`, run to completion.
pub fn run(dir: &Path, args: &[&str]) -> Output {
    concierge_in(dir).args(args).output().expect("run concierge")
}

/// [`run`] for async tests: waits without blocking the runtime that serves the test's
/// loopback servers.
pub async fn run_async(dir: &Path, args: &[&str]) -> Output {
    tokio::process::Command::from(concierge_in(dir)).args(args).output().await.expect("run concierge")
}

/// Spawn `cmd`, a [`concierge`] told to listen on `127.0.0.1:0`, and return it with the port it
/// logs as bound (the `bound` field of its log line `message`): a port picked beforehand could
/// be taken by another test before the process binds it. Its log goes on to the test's output.
pub fn spawn_listening(mut cmd: Command, message: &'static str) -> (Child, u16) {
    let mut child = cmd
        .env("CONCIERGE_LOG_LEVEL", "warn,concierge=info")
        .env("CONCIERGE_LOG_FORMAT", "json")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn concierge");
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let bound = serde_json::from_str::<serde_json::Value>(&line).ok().filter(|v| v["message"] == message);
            let bound = bound.and_then(|v| v["bound"].as_str()?.parse::<std::net::SocketAddr>().ok());
            if let Some(bound) = bound {
                let _ = port_tx.send(bound.port());
            }
            eprintln!("{line}");
        }
    });
    match port_rx.recv_timeout(Duration::from_secs(30)) {
        Ok(port) => (child, port),
        Err(_) => {
            let _ = child.kill();
            panic!("concierge bound no port within 30 s ({:?}); its log is above", child.wait());
        }
    }
}
