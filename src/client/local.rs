//! Local mode: no broker. Every local check with an `interval` or `cron` runs on its
//! Sensu schedule and each result is printed as one JSON line on stdout.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Sink, StdoutSink, execute_and_publish};
use crate::checks::Executor;
use crate::config::Settings;
use crate::proto::Object;
use crate::schedule;

/// How long local mode lets running checks finish after Ctrl-C.
pub const LOCAL_DRAIN_GRACE: Duration = Duration::from_secs(8);

/// Run until `shutdown`, then let running checks finish (for at most
/// [`LOCAL_DRAIN_GRACE`]).
pub async fn run(settings: &Settings, executor: Arc<Executor>, shutdown: CancellationToken) {
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
            super::spawn_in_order(
                &tracker,
                async move { execute_and_publish(&executor, sink.as_ref(), request).await },
            );
        }
    };
    schedule::run(executor.client_name(), checks, submit, shutdown).await;
    tracker.close();
    if tokio::time::timeout(LOCAL_DRAIN_GRACE, tracker.wait()).await.is_err() {
        tracing::warn!(running = tracker.len(), "checks still running after the grace period; exiting anyway");
    }
}
