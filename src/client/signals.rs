//! Process signals. SIGTERM/SIGINT ask for a graceful stop (drain); a second one exits
//! at once. SIGHUP asks for a configuration reload (sensu-client does not trap HUP and
//! dies of it; a container fleet is better served by a reload).

use std::sync::Arc;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Exit code when a second stop signal cuts the drain short.
pub const EXIT_FORCED: i32 = 130;

/// What signals have asked for.
#[derive(Clone, Default)]
pub struct Signals {
    /// Fired by the first SIGTERM/SIGINT.
    pub stop: CancellationToken,
    /// Notified on each SIGHUP.
    pub reload: Arc<Notify>,
}

impl Signals {
    /// Install the handlers (needs a Tokio runtime).
    pub fn install() -> std::io::Result<Self> {
        let signals = Self::default();
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
        let stop = signals.stop.clone();
        tokio::spawn(async move {
            for round in 0.. {
                let name = tokio::select! {
                    _ = term.recv() => "TERM",
                    _ = int.recv() => "INT",
                };
                if round == 0 {
                    tracing::info!(signal = name, "stopping");
                    stop.cancel();
                } else {
                    tracing::warn!(signal = name, "second stop signal: exiting now");
                    std::process::exit(EXIT_FORCED);
                }
            }
        });
        let reload = signals.reload.clone();
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                tracing::info!(signal = "HUP", "reloading configuration");
                reload.notify_one();
            }
        });
        Ok(signals)
    }
}
