//! Running a command the way sensu-spawn 2.5.0 does (`Sensu::Spawn.process` with
//! childprocess 0.5.8), which is what check commands and hooks go through.
//!
//! * `sh -c COMMAND`, the child leading its own process group;
//! * stdout and stderr share one pipe, so the output interleaves exactly as written;
//! * the output is captured raw, not trimmed; beyond [`Spawn::output_limit`] bytes (2 MiB
//!   by default, `concierge.output_limit`) the rest is read and dropped and the output ends
//!   with a line saying so (sensu-spawn keeps everything, which lets one runaway check take
//!   the client's memory);
//! * with `stdin` data, a pipe receives it and is closed; otherwise stdin is
//!   `/dev/null` (sensu-client inherits its own stdin, which is `/dev/null` for a
//!   daemon; a terminal would let a check steal keystrokes from `concierge check`);
//! * on timeout: `TERM` to the group, up to 3 s for it to exit, then `KILL` to the
//!   group; output `Execution timed out`, status 2. Unlike sensu-spawn we always send the
//!   final `KILL` to the group, so a grandchild that ignored `TERM` and holds the pipe
//!   cannot outlive the check;
//! * the status is the exit code, or the number of the signal that ended `sh`.
//!
//! Without a timeout the read waits for end-of-file like Sensu does, so a background
//! grandchild holding the pipe keeps the check running (sensu#1052); set `timeout`.

use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Output kept per execution unless configured otherwise (`concierge.output_limit`).
/// Sensu keeps everything; we keep this much and drain the rest so a runaway check cannot
/// exhaust memory, and say so at the end of the output.
pub use crate::config::DEFAULT_OUTPUT_LIMIT;

/// Exact output of a timed-out execution (sensu-spawn).
pub const TIMED_OUT_OUTPUT: &str = "Execution timed out";

/// How long the group gets between `TERM` and `KILL` (sensu-spawn `poll_for_exit(3)`).
pub const TERM_GRACE: Duration = Duration::from_secs(3);

/// What to run.
#[derive(Debug, Clone)]
pub struct Spawn {
    /// The shell command line.
    pub command: String,
    /// Kill the process group after this long.
    pub timeout: Option<Duration>,
    /// Bytes to write to the child's stdin, which is then closed.
    pub stdin: Option<Vec<u8>>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Bytes of output kept; the rest is drained and counted.
    pub output_limit: usize,
}

impl Default for Spawn {
    fn default() -> Self {
        Self { command: String::new(), timeout: None, stdin: None, env: Vec::new(), output_limit: DEFAULT_OUTPUT_LIMIT }
    }
}

/// What came back: the raw output (converted lossily to UTF-8) and the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Combined stdout and stderr, untrimmed.
    pub output: String,
    /// Exit code, or signal number.
    pub status: i32,
}

/// Run the command. Never fails: a spawn error becomes `Unexpected error: …`, status 3.
pub async fn run(spawn: Spawn) -> Outcome {
    match run_inner(spawn).await {
        Ok(outcome) => outcome,
        Err(error) => Outcome { output: format!("Unexpected error: {error}"), status: 3 },
    }
}

async fn run_inner(spawn: Spawn) -> std::io::Result<Outcome> {
    let (reader, writer) = std::io::pipe()?;
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg(&spawn.command)
        .process_group(0)
        .stdout(Stdio::from(writer.try_clone()?))
        .stderr(Stdio::from(writer))
        .stdin(if spawn.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .kill_on_drop(true);
    for (key, value) in &spawn.env {
        command.env(key, value);
    }
    let mut child = command.spawn()?;
    // The command holds our copies of the pipe's write end: drop it so that end-of-file
    // arrives when the child (and its children) close theirs.
    drop(command);
    let pid = child.id().map(|id| Pid::from_raw(id as i32));

    if let (Some(mut stdin), Some(data)) = (child.stdin.take(), spawn.stdin) {
        // A separate task, so a child that writes before reading cannot deadlock us.
        tokio::spawn(async move {
            let _ = stdin.write_all(&data).await;
            let _ = stdin.shutdown().await;
        });
    }

    let mut pipe = tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(reader))?;
    let mut output = Vec::new();
    let work = async {
        read_capped(&mut pipe, &mut output, spawn.output_limit).await?;
        child.wait().await
    };
    let finished = match spawn.timeout {
        Some(limit) => tokio::time::timeout(limit, work).await.ok(),
        None => Some(work.await),
    };
    match finished {
        Some(status) => {
            let status = status?;
            let code = status.code().or_else(|| status.signal()).unwrap_or(3);
            Ok(Outcome { output: text(output), status: code })
        }
        None => Ok(kill_group(&mut child, pid).await),
    }
}

async fn read_capped(
    pipe: &mut tokio::net::unix::pipe::Receiver,
    output: &mut Vec<u8>,
    limit: usize,
) -> std::io::Result<()> {
    let mut chunk = vec![0u8; 64 * 1024];
    let mut dropped = 0usize;
    loop {
        let n = pipe.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        let room = limit.saturating_sub(output.len());
        output.extend_from_slice(&chunk[..n.min(room)]);
        dropped += n.saturating_sub(room);
    }
    if dropped > 0 {
        let marker = format!(
            "\n[concierge: output truncated: {} of {} bytes kept; CONCIERGE_OUTPUT_LIMIT]",
            output.len(),
            output.len() + dropped
        );
        output.reserve_exact(marker.len());
        output.extend_from_slice(marker.as_bytes());
    }
    Ok(())
}

/// The output as text: as it is when it is UTF-8 (no copy), else lossily converted.
fn text(output: Vec<u8>) -> String {
    String::from_utf8(output).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

async fn kill_group(child: &mut tokio::process::Child, pid: Option<Pid>) -> Outcome {
    let Some(pid) = pid else {
        return Outcome { output: TIMED_OUT_OUTPUT.to_string(), status: 2 };
    };
    if let Err(error) = killpg(pid, Signal::SIGTERM) {
        let _ = child.wait().await;
        return Outcome {
            output: format!("{TIMED_OUT_OUTPUT} - Unable to TERM/KILL the process: #{pid}, {error}"),
            status: 2,
        };
    }
    let _ = tokio::time::timeout(TERM_GRACE, child.wait()).await;
    // Whatever is left of the group (the shell, or grandchildren that ignored TERM).
    let _ = killpg(pid, Signal::SIGKILL);
    let _ = child.wait().await;
    Outcome { output: TIMED_OUT_OUTPUT.to_string(), status: 2 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(command: &str) -> Spawn {
        Spawn { command: command.to_string(), ..Spawn::default() }
    }

    // Spec §7 items 47–54 (sensu-spawn's spec).
    #[tokio::test]
    async fn echo_and_exit_codes() {
        assert_eq!(run(cmd("echo foo")).await, Outcome { output: "foo\n".into(), status: 0 });
        assert_eq!(run(cmd("echo foo && exit 1")).await, Outcome { output: "foo\n".into(), status: 1 });
        let unknown = run(cmd("concierge-no-such-command")).await;
        assert!(unknown.output.contains("not found"), "{unknown:?}");
        assert_eq!(unknown.status, 127);
    }

    #[tokio::test]
    async fn output_beyond_the_limit_is_dropped_and_said_so() {
        let script = "head -c 5000 /dev/zero | tr '\\0' 'x'; echo tail";
        let out = run(Spawn { output_limit: 1000, ..cmd(script) }).await;
        assert_eq!(out.status, 0);
        assert_eq!(
            out.output,
            format!(
                "{}\n[concierge: output truncated: 1000 of 5005 bytes kept; CONCIERGE_OUTPUT_LIMIT]",
                "x".repeat(1000)
            )
        );
        // At the limit exactly: nothing said.
        let out = run(Spawn { output_limit: 5005, ..cmd(script) }).await;
        assert_eq!(out.output.len(), 5005);
        assert!(out.output.ends_with("xtail\n"));
    }

    #[tokio::test]
    async fn one_megabyte_of_output_intact_with_and_without_timeout() {
        let script = "head -c 1048576 /dev/zero | tr '\\0' 'x'";
        let out = run(cmd(script)).await;
        assert_eq!(out.output.len(), 1_048_576);
        let out = run(Spawn { timeout: Some(Duration::from_secs(10)), ..cmd(script) }).await;
        assert_eq!(out.output.len(), 1_048_576);
        assert!(out.output.bytes().all(|b| b == b'x'));
    }

    #[tokio::test]
    async fn timeout_gives_exact_output() {
        let started = std::time::Instant::now();
        let out = run(Spawn { timeout: Some(Duration::from_millis(500)), ..cmd("echo partial; sleep 5") }).await;
        assert_eq!(out, Outcome { output: "Execution timed out".into(), status: 2 });
        assert!(started.elapsed() < Duration::from_secs(4));
    }

    #[tokio::test]
    async fn stdin_is_passed_and_closed() {
        let out = run(Spawn { stdin: Some(b"bar".to_vec()), ..cmd("cat") }).await;
        assert_eq!(out, Outcome { output: "bar".into(), status: 0 });
        let big = vec![b'y'; 1_048_576];
        let out = run(Spawn { stdin: Some(big.clone()), ..cmd("cat") }).await;
        assert_eq!(out.output.as_bytes(), &big[..]);
        let out = run(Spawn { stdin: Some(b"bar".to_vec()), ..cmd("true") }).await;
        assert_eq!(out, Outcome { output: String::new(), status: 0 });
    }

    #[tokio::test]
    async fn stdout_and_stderr_interleave_in_write_order() {
        let out = run(cmd("echo one; echo two >&2; echo three")).await;
        assert_eq!(out.output, "one\ntwo\nthree\n");
    }

    #[tokio::test]
    async fn signal_number_is_the_status() {
        let out = run(cmd("kill -9 $$")).await;
        assert_eq!(out.status, 9);
    }

    #[tokio::test]
    async fn grandchild_holding_the_pipe_does_not_outlive_the_timeout() {
        let started = std::time::Instant::now();
        let out = run(Spawn {
            timeout: Some(Duration::from_millis(300)),
            ..cmd("trap '' TERM; (trap '' TERM; sleep 30) & echo started")
        })
        .await;
        assert_eq!(out.output, TIMED_OUT_OUTPUT);
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn non_utf8_output_is_kept_lossily() {
        let out = run(cmd("printf 'ok \\377\\376 done'")).await;
        assert_eq!(out.output, "ok \u{FFFD}\u{FFFD} done");
    }
}
