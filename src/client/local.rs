//! Local mode: no broker. Every local check with an `interval` or `cron` runs on its
//! Sensu schedule and each result is printed as one JSON line on stdout.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::pipeline::Pipeline;
use super::signals::Signals;
use crate::config::Settings;
use crate::proto::Object;
use crate::schedule;

/// How long local mode lets running checks finish after Ctrl-C.
pub const LOCAL_DRAIN_GRACE: Duration = Duration::from_secs(8);

/// Run until a stop signal, then let running checks finish (for at most
/// [`LOCAL_DRAIN_GRACE`]). Checks run to the end once started: nothing waits in a queue
/// that could take them back. SIGHUP is logged and ignored.
pub async fn run(settings: &Settings, pipeline: Arc<Pipeline>, signals: &Signals) {
    let reload = signals.reload.clone();
    let ignore_reloads = tokio::spawn(async move {
        loop {
            reload.notified().await;
            tracing::warn!("configuration reload is not supported in local mode; restart instead");
        }
    });
    let checks = schedule::eligible(&settings.checks, true);
    if checks.is_empty() {
        tracing::warn!("no check definitions with an interval or cron were found; nothing to run");
    }
    let client = pipeline.executor().client_name();
    tracing::info!(
        client,
        checks = checks.len(),
        files = settings.loaded_files.len(),
        "Running checks locally (no broker); results go to stdout."
    );
    let submit = {
        let pipeline = pipeline.clone();
        // Scheduled checks are never handed back in local mode: a token that never fires.
        let keep_going = CancellationToken::new();
        move |request: Object| pipeline.submit(request, keep_going.clone(), |_| async {})
    };
    schedule::run(client, checks, submit, signals.stop.clone()).await;
    ignore_reloads.abort();
    let tracker = pipeline.tracker();
    tracker.close();
    if tokio::time::timeout(LOCAL_DRAIN_GRACE, tracker.wait()).await.is_err() {
        tracing::warn!(running = tracker.len(), "checks still running after the grace period; exiting anyway");
    }
}
