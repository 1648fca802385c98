//! The results pipe: a bounded buffer drained to the broker with publisher confirms.
//!
//! sensu-client drops a result when the transport is down. Concierge keeps results in
//! order in a bounded buffer while the broker is away and publishes them once a session
//! is attached again; when the buffer is full the oldest result is dropped with a
//! logged, counted warning. Each submitted result has a completion that says whether
//! the broker confirmed it, which is what lets a request be acknowledged only after its
//! result is safe.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::{join_all, maybe_done};
use lapin::{Channel, ConnectionStatus};
use tokio::sync::{Notify, oneshot};
use tokio_util::sync::CancellationToken;

use super::session::{sensu_properties, unless_blocked};
use super::{RESULTS_EXCHANGE, ROUTING_KEY};

/// Results published without waiting for earlier confirms.
const WINDOW: usize = 256;

/// The pause before results the broker nacked are published again on the same session; it
/// doubles while every try is nacked, up to [`NACK_PAUSE_MAX`]. A nack can come for a
/// result other queues took (one bound queue refusing, say), so each try may reach them again.
const NACK_PAUSE: Duration = Duration::from_secs(1);
/// The longest pause between tries of nacked results (the reconnect back-off's cap).
const NACK_PAUSE_MAX: Duration = Duration::from_secs(20);

/// What became of a batch: the results to publish again, in order, and whether the session
/// failed (a write failed or timed out, or a confirm did not come in time) rather than the
/// broker refusing results it answered (nacks).
struct Sent {
    retry: Vec<Pending>,
    failed: bool,
}

struct Pending {
    body: Vec<u8>,
    done: Option<oneshot::Sender<bool>>,
}

impl Pending {
    fn finish(mut self, delivered: bool) {
        if let Some(done) = self.done.take() {
            let _ = done.send(delivered);
        }
    }
}

/// Where results go: a session's results channel, its `broken`, and the state of the
/// channel's connection, to wait out a resource alarm on.
#[derive(Clone)]
struct Target {
    channel: Channel,
    broken: CancellationToken,
    connection: Option<ConnectionStatus>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Pending>,
    target: Option<Target>,
}

/// Handle to the results pipe; cheap to clone.
#[derive(Clone)]
pub struct Publisher {
    state: Arc<Mutex<State>>,
    wake: Arc<Notify>,
    idle: Arc<Notify>,
    capacity: usize,
    timeout: Duration,
    /// Results waiting (buffered or in flight); published, dropped and buffered counts
    /// go to the telemetry.
    pending: Arc<AtomicUsize>,
    telemetry: Arc<crate::telemetry::Telemetry>,
}

impl Publisher {
    /// A publisher keeping at most `capacity` results, waiting `timeout` for each confirm.
    pub fn new(capacity: usize, timeout: Duration, telemetry: Arc<crate::telemetry::Telemetry>) -> Self {
        Self {
            state: Arc::default(),
            wake: Arc::default(),
            idle: Arc::default(),
            capacity: capacity.max(1),
            timeout,
            pending: Arc::default(),
            telemetry,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queue a result. The receiver says `true` once the broker confirmed it, `false` if it
    /// was dropped (buffer full).
    pub fn submit(&self, body: Vec<u8>) -> oneshot::Receiver<bool> {
        let (tx, rx) = oneshot::channel();
        let overflow = {
            let mut state = self.lock();
            state.queue.push_back(Pending { body, done: Some(tx) });
            (state.queue.len() > self.capacity).then(|| state.queue.pop_front()).flatten()
        };
        if let Some(oldest) = overflow {
            let dropped = self.telemetry.results_dropped.inc() + 1;
            tracing::warn!(
                dropped_total = dropped,
                capacity = self.capacity,
                "result buffer full; dropped the oldest result"
            );
            oldest.finish(false);
        } else {
            let pending = self.pending.fetch_add(1, Ordering::Relaxed) + 1;
            self.telemetry.results_buffered.set(i64::try_from(pending).unwrap_or(i64::MAX));
        }
        self.wake.notify_one();
        rx
    }

    /// Queue a result and wait until it is confirmed (`true`) or dropped (`false`).
    pub async fn publish(&self, body: Vec<u8>) -> bool {
        self.submit(body).await.unwrap_or(false)
    }

    /// Start draining into a session's results channel; its `broken` is fired on failure.
    pub fn attach(&self, session: &super::session::Session) {
        let target = Target {
            channel: session.results.clone(),
            broken: session.broken.clone(),
            connection: session.results_alarm_view(),
        };
        self.lock().target = Some(target);
        self.wake.notify_one();
    }

    /// Stop draining (the session is gone); results stay buffered.
    pub fn detach(&self) {
        self.lock().target = None;
    }

    /// Results not yet confirmed.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    /// Wait until nothing is pending, for at most `limit`. Returns whether it emptied.
    pub async fn flushed(&self, limit: Duration) -> bool {
        let wait = async {
            loop {
                let idle = self.idle.notified();
                if self.pending() == 0 {
                    return;
                }
                idle.await;
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok()
    }

    /// Drain the buffer whenever a session is attached, until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut nack_pause = NACK_PAUSE;
        loop {
            let notified = self.wake.notified();
            let batch = {
                let mut state = self.lock();
                match &state.target {
                    Some(target) if !state.queue.is_empty() && !target.broken.is_cancelled() => {
                        let target = target.clone();
                        let n = state.queue.len().min(WINDOW);
                        Some((target, state.queue.drain(..n).collect::<Vec<_>>()))
                    }
                    _ => None,
                }
            };
            let Some((target, batch)) = batch else {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = notified => continue,
                }
            };
            let Sent { retry, failed } = self.send(&target, batch).await;
            if retry.is_empty() {
                nack_pause = NACK_PAUSE;
                continue;
            }
            {
                let mut state = self.lock();
                for pending in retry.into_iter().rev() {
                    state.queue.push_front(pending);
                }
            }
            if failed {
                // The session is broken: the results wait for the next one to be attached.
                // The target is left as it is (a broken one is skipped above): by now it may
                // be the next session's, attached while this batch waited.
                target.broken.cancel();
                nack_pause = NACK_PAUSE;
            } else {
                // Only nacks: the session is sound, and tearing it down would hand back every
                // request running on it. The broker refused these results (a full queue
                // bound to `results`, say), so they are published again after a pause, longer
                // at each try the broker refuses again.
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(nack_pause) => {}
                }
                nack_pause = (nack_pause * 2).min(NACK_PAUSE_MAX);
            }
        }
    }

    /// Publish a batch and wait for its confirms. Returns what must be retried, in order.
    ///
    /// lapin resolves a publish once its I/O thread has written it, and waiting for that
    /// would wake the runtime thread once more per batch — per result at low rates, where
    /// each wake-up costs more than the work. So every publish of the batch is queued (its
    /// first poll puts its frames on the channel, in batch order) without asking to be
    /// woken, and the batch waits for the broker's confirm of its last publish instead
    /// (`wait_for_confirms`: this is the only publisher on its channel, so that is the
    /// channel's last publish); the broker confirms what it has read, so by then every
    /// write is done. The writes are then collected in order, within the publish timeout: a
    /// failed or late write ends the batch there, and only it and what follows are retried —
    /// what was written before still waits for its confirm. While the broker blocks the
    /// connection (a resource alarm: it routes what it read, then stops reading and
    /// confirming) the timeout waits too, so the alarm is waited out on the same session and
    /// what the broker took is confirmed once it clears, not sent again. Each confirm is read
    /// on its own: one that is late or a nack has its result retried, the others are done;
    /// only a failed or late write or a late confirm fails the session.
    async fn send(&self, target: &Target, batch: Vec<Pending>) -> Sent {
        let channel = &target.channel;
        let started = tokio::time::Instant::now();
        let mut writes: Vec<_> = batch
            .iter()
            .map(|pending| {
                Box::pin(maybe_done(channel.basic_publish(
                    RESULTS_EXCHANGE.into(),
                    ROUTING_KEY.into(),
                    Default::default(),
                    &pending.body,
                    sensu_properties(),
                )))
            })
            .collect();
        for write in &mut writes {
            let _ = super::poll_quietly(write.as_mut());
        }
        // Ack or nack of the last publish, or the channel's failure: each is read below.
        let last_answered =
            unless_blocked(target.connection.as_ref(), self.timeout, channel.wait_for_confirms()).await.is_some();
        // Without that answer the timeout is spent: what is not written or confirmed by now
        // is late (each is still read once, so what came is kept).
        let limit = |now| if last_answered { now } else { started } + self.timeout;
        let written_by = limit(tokio::time::Instant::now());
        let mut confirms = Vec::with_capacity(batch.len());
        for write in &mut writes {
            let written = tokio::time::timeout_at(written_by, write.as_mut()).await;
            match written.map(|()| write.as_mut().take_output()) {
                Ok(Some(Ok(confirm))) => confirms.push(confirm),
                Ok(Some(Err(error))) => {
                    tracing::warn!(%error, "failed to publish check result; it stays buffered");
                    break;
                }
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(timeout = ?self.timeout, "publishing a check result timed out; it stays buffered");
                    break;
                }
            }
        }
        drop(writes);
        // One write per result, in batch order: the first `sent` results went out.
        let sent = confirms.len();
        let confirmed_by = limit(tokio::time::Instant::now());
        let outcomes = join_all(confirms.into_iter().map(|c| tokio::time::timeout_at(confirmed_by, c))).await;
        self.telemetry.confirm_latency.observe(started.elapsed().as_secs_f64());
        let late = outcomes.iter().filter(|o| o.is_err()).count();
        if late > 0 {
            tracing::warn!(timeout = ?self.timeout, late, "no publish confirm from the broker in time");
        }
        // A confirm that came is an ack or a nack; a channel error or none in time (`late`)
        // fails the session, as a write that did not go out does.
        let mut failed = sent < batch.len();
        let mut nacked = 0_u64;
        let outcomes: Vec<bool> = outcomes
            .into_iter()
            .map(|o| match o {
                Ok(Ok(confirm)) => {
                    nacked += u64::from(confirm.is_nack());
                    confirm.is_ack()
                }
                _ => {
                    failed = true;
                    false
                }
            })
            .collect();
        if nacked > 0 {
            self.telemetry.results_nacked.inc_by(nacked);
            if !failed {
                tracing::warn!(nacked, "the broker refused (nacked) results; publishing them again");
            }
        }
        let mut batch = batch.into_iter();
        let mut retry = Vec::new();
        for (pending, acked) in batch.by_ref().take(sent).zip(outcomes) {
            if acked {
                self.telemetry.results_published.inc();
                let before = self.pending.fetch_sub(1, Ordering::Relaxed);
                self.telemetry.results_buffered.set(i64::try_from(before.saturating_sub(1)).unwrap_or(i64::MAX));
                if before == 1 {
                    self.idle.notify_waiters();
                }
                pending.finish(true);
            } else {
                retry.push(pending);
            }
        }
        // Then what was not written.
        retry.extend(batch);
        Sent { retry, failed }
    }
}
