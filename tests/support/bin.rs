//! The `concierge` binary, started the one way every test starts it.

use std::path::Path;
use std::process::{Command, Output, Stdio};

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
