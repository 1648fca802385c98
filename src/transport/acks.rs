//! How the requests of the subscription channel are settled: acknowledgements sent
//! together, requeues and rejections at once.
//!
//! Each request is still acknowledged only once its result is confirmed (or it needed none),
//! but the `basic.ack` waits up to [`ACK_DELAY`] for others: one frame with `multiple` then
//! covers every request settled before it. The channel is on the primary connection, whose
//! I/O thread is woken for nothing else between two deliveries: sent one by one at 1,000
//! requests/s, acks woke it (and the broker) a thousand times a second. A gap — a request
//! still running below later ones — is never covered: what waits above it is acknowledged
//! one by one, in the same flush. A small prefetch (Sensu's default is 1) gets its acks at
//! once, as the broker sends nothing more until they arrive; so does a full prefetch window.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use lapin::Channel;
use lapin::options::{BasicAckOptions, BasicNackOptions, BasicRejectOptions};
use prometheus_client::metrics::counter::Counter;

/// How long an acknowledgement may wait for others.
pub const ACK_DELAY: Duration = Duration::from_millis(20);

/// The most acknowledgements waiting at once: more are sent at once.
const MAX_WAITING: usize = 64;

/// The most settled requests kept above a gap. A gap that lasts this long (a request whose
/// task was lost and will never be settled) ends the `multiple` acks on this channel: every
/// ack then goes out on its own, still [`ACK_DELAY`] apart at most.
const MAX_ABOVE_GAP: usize = 4096;

/// What the acks count: requests acknowledged, and the frames that did it.
#[derive(Clone, Default)]
pub struct AckCounters {
    /// Requests acknowledged.
    pub requests: Counter,
    /// `basic.ack` frames sent.
    pub frames: Counter,
}

/// The settlements of one channel (one per session: tags are the channel's).
pub struct Acks {
    channel: Arc<Channel>,
    counters: AckCounters,
    /// Waiting acks that send at once (a quarter of the prefetch, 1 to [`MAX_WAITING`]).
    batch: usize,
    /// The channel's prefetch: with this many deliveries unacknowledged (waiting acks
    /// included), the broker sends no more, so what waits is sent at once.
    prefetch: usize,
    state: Mutex<State>,
}

struct State {
    /// Acks not sent yet.
    waiting: Vec<u64>,
    /// Deliveries whose settlement is not sent yet (running, or their ack waiting).
    outstanding: usize,
    /// Every delivery tag below this one is settled: acknowledged (sent or waiting),
    /// requeued or rejected. Tags start at 1 on a channel.
    floor: u64,
    /// Settled tags above `floor`: a request below them is still running.
    above: BTreeSet<u64>,
    /// `false` once a gap lasted past [`MAX_ABOVE_GAP`]: no more `multiple` acks.
    tracking: bool,
    /// A flush is due within [`ACK_DELAY`].
    scheduled: bool,
}

impl Acks {
    /// The settlements of `channel`, consuming with `prefetch`, counted in `counters`.
    pub fn new(channel: Arc<Channel>, prefetch: u16, counters: AckCounters) -> Arc<Self> {
        let batch = (usize::from(prefetch) / 4).clamp(1, MAX_WAITING);
        let state = State::default();
        Arc::new(Self { channel, counters, batch, prefetch: usize::from(prefetch), state: Mutex::new(state) })
    }

    /// A delivery arrived (to be settled through this).
    pub fn delivered(&self) {
        self.lock().outstanding += 1;
    }

    /// Acknowledge `tag`: sent with others within [`ACK_DELAY`], or at once when enough wait.
    pub fn ack(self: &Arc<Self>, tag: u64) {
        let mut state = self.lock();
        state.settled(tag);
        state.waiting.push(tag);
        if state.waiting.len() >= self.batch || state.outstanding >= self.prefetch {
            self.send(&mut state);
        } else if !state.scheduled {
            // Outside a runtime (none here today), at once.
            let Ok(runtime) = tokio::runtime::Handle::try_current() else { return self.send(&mut state) };
            state.scheduled = true;
            let acks = self.clone();
            runtime.spawn(async move {
                tokio::time::sleep(ACK_DELAY).await;
                let mut state = acks.lock();
                state.scheduled = false;
                acks.send(&mut state);
            });
        }
    }

    /// Hand `tag` back to the queue, at once.
    pub fn requeue(&self, tag: u64) {
        self.settle_now(tag, self.channel.basic_nack(tag, BasicNackOptions { multiple: false, requeue: true }));
    }

    /// Drop `tag` for good (not a check request), at once.
    pub fn reject(&self, tag: u64) {
        self.settle_now(tag, self.channel.basic_reject(tag, BasicRejectOptions { requeue: false }));
    }

    /// Queue `method` settling `tag`, then count `tag` as settled — under the lock, so no
    /// `multiple` ack covering it can be queued before it.
    fn settle_now(&self, tag: u64, method: impl Future<Output = lapin::Result<()>>) {
        let mut state = self.lock();
        if let Err(error) = poll_once(method) {
            tracing::debug!(%error, tag, "could not settle a request on a closed channel");
        }
        state.outstanding = state.outstanding.saturating_sub(1);
        state.settled(tag);
    }

    /// Send what waits now (before the channel closes).
    pub fn flush(&self) {
        self.send(&mut self.lock());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Send the waiting acks (see [`State::take`]).
    fn send(&self, state: &mut State) {
        self.counters.requests.inc_by(state.waiting.len() as u64);
        let (singles, multiple) = state.take();
        for tag in singles {
            self.queue(tag, false);
        }
        if let Some(tag) = multiple {
            self.queue(tag, true);
        }
    }

    /// Queue a `basic.ack` on the channel, not awaited (see [`poll_once`]).
    fn queue(&self, tag: u64, multiple: bool) {
        self.counters.frames.inc();
        let method = self.channel.basic_ack(tag, BasicAckOptions { multiple });
        if let Err(error) = poll_once(method) {
            tracing::debug!(%error, tag, "could not acknowledge a request on a closed channel");
        }
    }
}

impl Default for State {
    fn default() -> Self {
        Self { waiting: Vec::new(), outstanding: 0, floor: 1, above: BTreeSet::new(), tracking: true, scheduled: false }
    }
}

impl State {
    /// The waiting acks, emptied: those to send one by one (above a gap), and the tag of one
    /// `multiple` ack for the others (every tag below the floor is settled, so it covers no
    /// request still running; the tag is a waiting one, still unacknowledged).
    fn take(&mut self) -> (Vec<u64>, Option<u64>) {
        let floor = if self.tracking { self.floor } else { 0 };
        let mut multiple = None;
        let mut singles = Vec::new();
        self.outstanding = self.outstanding.saturating_sub(self.waiting.len());
        for tag in self.waiting.drain(..) {
            if tag < floor {
                multiple = multiple.max(Some(tag));
            } else {
                singles.push(tag);
            }
        }
        (singles, multiple)
    }

    /// Record `tag` as settled, moving the floor past it and what was settled above it.
    fn settled(&mut self, tag: u64) {
        if !self.tracking || tag < self.floor {
            return;
        }
        if tag > self.floor {
            self.above.insert(tag);
            if self.above.len() > MAX_ABOVE_GAP {
                tracing::warn!(below = self.floor, "a request was never settled; acknowledging one by one from now on");
                self.tracking = false;
                self.above.clear();
            }
            return;
        }
        self.floor += 1;
        while self.above.remove(&self.floor) {
            self.floor += 1;
        }
    }
}

/// Queue a lapin method's frame and leave its write to lapin's I/O thread (see
/// [`super::poll_quietly`]). Returns the error of a method refused outright (a closed channel).
///
/// Settlements are queued, not awaited: a write that fails means the connection is lost,
/// and the broker requeues the message itself — what awaiting it would have led to as well.
/// A requeue is counted as settled once polled, so a later `multiple` ack relies on its
/// frame being queued ahead of it, which the first poll does.
fn poll_once(method: impl Future<Output = lapin::Result<()>>) -> lapin::Result<()> {
    match super::poll_quietly(std::pin::pin!(method)) {
        Poll::Ready(done) => done,
        Poll::Pending => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(state: &mut State, tag: u64) {
        state.settled(tag);
        state.waiting.push(tag);
    }

    #[test]
    fn acks_in_order_go_as_one() {
        let mut s = State { outstanding: 6, ..State::default() };
        for tag in 1..=5 {
            ack(&mut s, tag);
        }
        assert_eq!(s.take(), (vec![], Some(5)));
        assert_eq!((s.floor, s.outstanding), (6, 1), "one delivery still running");
        assert_eq!(s.take(), (vec![], None), "nothing waits any more");
    }

    #[test]
    fn a_running_request_is_never_covered() {
        let mut s = State::default();
        // 1 and 2 acked, 3 still running, 4 and 5 acked.
        for tag in [1, 2, 4, 5] {
            ack(&mut s, tag);
        }
        assert_eq!(s.take(), (vec![4, 5], Some(2)));
        assert_eq!(s.floor, 3);
        // 3 done: the floor passes 4 and 5, already sent; 6 acked.
        ack(&mut s, 3);
        ack(&mut s, 6);
        assert_eq!(s.take(), (vec![], Some(6)));
        assert_eq!((s.floor, s.above.len()), (7, 0));
    }

    #[test]
    fn requeued_and_rejected_requests_count_as_settled() {
        let mut s = State::default();
        ack(&mut s, 1);
        s.settled(2); // requeued, sent at once
        ack(&mut s, 3);
        s.settled(4); // rejected
        assert_eq!(s.take(), (vec![], Some(3)), "the multiple ack names a waiting tag");
        assert_eq!(s.floor, 5);
    }

    #[test]
    fn a_gap_that_lasts_ends_multiple_acks() {
        let mut s = State::default();
        // Tag 1 is never settled.
        for tag in 2..=(MAX_ABOVE_GAP as u64 + 2) {
            ack(&mut s, tag);
        }
        assert!(!s.tracking && s.above.is_empty(), "what was kept above the gap is let go");
        let (singles, multiple) = s.take();
        assert_eq!((singles.len(), multiple), (MAX_ABOVE_GAP + 1, None));
        ack(&mut s, 1);
        ack(&mut s, 9999);
        assert_eq!(s.take(), (vec![1, 9999], None));
    }
}
