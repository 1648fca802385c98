//! The client process: it builds the executor from the settings and feeds it check
//! requests from the scheduler (and, with a broker, from subscriptions), sending each
//! result to a [`Sink`].

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::checks::{Executor, ExecutorSettings};
use crate::config::Settings;
use crate::proto::{Object, ResultPayload};
use crate::schedule;

/// How long local mode lets running checks finish after Ctrl-C.
pub const LOCAL_DRAIN_GRACE: Duration = Duration::from_secs(8);

/// Where results go.
pub trait Sink: Send + Sync {
    /// Deliver one result.
    fn publish(&self, payload: ResultPayload) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// Local mode's sink: one JSON document per line on stdout.
#[derive(Debug, Default)]
pub struct StdoutSink;

impl Sink for StdoutSink {
    fn publish(&self, payload: ResultPayload) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            use std::io::Write as _;
            let mut line = payload.to_bytes();
            line.push(b'\n');
            let mut out = std::io::stdout().lock();
            if let Err(error) = out.write_all(&line).and_then(|()| out.flush()) {
                tracing::error!(%error, "failed to write result to stdout");
            }
        })
    }
}

/// Build the executor the settings describe. Writes `SENSU_LOADED_TEMPFILE`.
pub fn build_executor(settings: &Settings, env: &HashMap<String, String>) -> anyhow::Result<Executor> {
    let concierge = settings.concierge().map_err(anyhow::Error::msg)?;
    let mut child_env = Vec::new();
    match settings.write_loaded_tempfile(env) {
        Ok(var) => child_env.push(var),
        Err(error) => tracing::warn!(%error, "could not write the loaded-files list (SENSU_LOADED_TEMPFILE)"),
    }
    Ok(Executor::new(ExecutorSettings {
        client: settings.client(),
        local_checks: settings.checks(),
        spawn_limit: settings.spawn_limit(),
        builtin_limit: concierge.builtin_concurrency,
        env: child_env,
        builtins: Vec::new(),
    }))
}

/// Process one request and publish its result, if any.
pub async fn execute_and_publish(executor: &Executor, sink: &dyn Sink, request: Object) {
    if let Some(check) = executor.process(request).await {
        sink.publish(ResultPayload::new(executor.client_name(), check, executor.signature())).await;
    }
}

/// Local mode: run every local check that has an `interval` or `cron` on its Sensu
/// schedule and print each result, until `shutdown`; then let running checks finish
/// (for at most [`LOCAL_DRAIN_GRACE`]).
pub async fn run_local(settings: &Settings, executor: Arc<Executor>, shutdown: CancellationToken) {
    let checks = schedule::eligible(&settings.checks(), true);
    if checks.is_empty() {
        tracing::warn!("no check definitions with an interval or cron were found; nothing to run");
    }
    tracing::info!(
        client = executor.client_name(),
        checks = checks.len(),
        files = settings.loaded_files.len(),
        "Running checks locally (no broker); results go to stdout."
    );
    let sink: Arc<dyn Sink> = Arc::new(StdoutSink);
    let tracker = TaskTracker::new();
    let submit = {
        let tracker = tracker.clone();
        let executor = executor.clone();
        move |request: Object| {
            let executor = executor.clone();
            let sink = sink.clone();
            tracker.spawn(async move { execute_and_publish(&executor, sink.as_ref(), request).await });
        }
    };
    schedule::run(executor.client_name().to_string(), checks, submit, shutdown).await;
    tracker.close();
    if tokio::time::timeout(LOCAL_DRAIN_GRACE, tracker.wait()).await.is_err() {
        tracing::warn!(running = tracker.len(), "checks still running after the grace period; exiting anyway");
    }
}
