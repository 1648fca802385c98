//! One check request's life, whatever brought it (a subscription, the standalone
//! schedule, local mode, the command line):
//!
//! delivery → [parse](super::requests) → execute ([`Executor`], which builds the result
//! payload once) → publish, with the built-in's [`FollowUp`](crate::checks::FollowUp) if
//! it has one → settle (ack, hand back or reject, through
//! [`Ticket`](crate::transport::inbox::Ticket)).
//!
//! The pipeline is shared by every request (one `Arc`), never cloned per request. Each
//! request carries the `stop` token of whatever is feeding it: when it fires (SIGTERM, a
//! lost connection, a SIGHUP reload), requests still waiting for an execution slot give
//! up unstarted and are handed back to the queue, while running ones finish and publish.

use std::future::Future;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::requests::{self, RejectionLog};
use crate::checks::Executor;
use crate::checks::executor::{Finished, Processed};
use crate::proto::Object;
use crate::transport::inbox::{Incoming, Settle};
use crate::transport::sink::Sink;

/// What became of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Its results were confirmed (by the broker, or written).
    Delivered,
    /// It ran, but its results were not confirmed.
    Undelivered,
    /// Nothing to publish (already in progress).
    Dropped,
    /// Stopped while waiting for an execution slot: never started.
    NotStarted,
}

impl Outcome {
    /// How the request's message is settled: acknowledged once it needs nothing more,
    /// handed back when another replica should run it (or publish it) instead.
    pub fn settle(self) -> Settle {
        match self {
            Self::Delivered | Self::Dropped => Settle::Ack,
            Self::Undelivered | Self::NotStarted => Settle::Requeue,
        }
    }
}

/// Requests in, results out.
pub struct Pipeline {
    executor: Arc<Executor>,
    sink: Arc<dyn Sink>,
    tracker: TaskTracker,
    rejections: RejectionLog,
    max_request_bytes: usize,
}

impl Pipeline {
    /// A pipeline running requests on `executor` and publishing to `sink`; requests from
    /// queues larger than `max_request_bytes` are rejected.
    pub fn new(executor: Arc<Executor>, sink: Arc<dyn Sink>, max_request_bytes: usize) -> Arc<Self> {
        Arc::new(Self {
            executor,
            sink,
            tracker: TaskTracker::new(),
            rejections: RejectionLog::default(),
            max_request_bytes,
        })
    }

    /// The executor.
    pub fn executor(&self) -> &Arc<Executor> {
        &self.executor
    }

    /// Where results go.
    pub fn sink(&self) -> &Arc<dyn Sink> {
        &self.sink
    }

    /// The requests running or waiting now (to drain them).
    pub fn tracker(&self) -> &TaskTracker {
        &self.tracker
    }

    /// Process one request and publish its results.
    pub async fn run(&self, request: Object, stop: &CancellationToken) -> Outcome {
        // Bound by `let`, not matched on in place: a matched-on result would be kept in the
        // request's task across the publish below (160 bytes of every request in flight).
        let finished = match self.executor.process_until(request, stop).await {
            Processed::Result(finished) => finished,
            Processed::Dropped => return Outcome::Dropped,
            Processed::NotStarted => return Outcome::NotStarted,
        };
        // Boxed: the publish future is only needed once the check is done, and inline it
        // would enlarge every request's task for the whole check.
        if Box::pin(publish(self.sink.as_ref(), finished)).await { Outcome::Delivered } else { Outcome::Undelivered }
    }

    /// Run a request as a tracked task, then hand its outcome to `then`. Requests waiting
    /// for an execution slot queue in the order they were submitted.
    pub fn submit<F, Fut>(self: &Arc<Self>, request: Object, stop: CancellationToken, then: F)
    where
        F: FnOnce(Outcome) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let pipeline = self.clone();
        spawn_in_order(&self.tracker, async move {
            let outcome = pipeline.run(request, &stop).await;
            then(outcome).await;
        });
    }

    /// A message from a subscription queue: parse it (a bad one is rejected, logged once
    /// per kind and counted), run it, and settle it by its outcome.
    pub fn receive(self: &Arc<Self>, queue: &str, incoming: Incoming, stop: &CancellationToken) {
        let telemetry = self.executor.telemetry();
        let Incoming { body, redelivered, ticket } = incoming;
        let request = match requests::parse(&body, self.max_request_bytes) {
            Ok(request) => request,
            Err(rejection) => {
                telemetry.rejected.get_or_create(&vec![("reason", rejection.label().to_string())]).inc();
                self.rejections.record(rejection, queue, &body);
                spawn_in_order(&self.tracker, ticket.settle(Settle::Reject));
                return;
            }
        };
        drop(body);
        telemetry.requests.inc();
        if redelivered {
            telemetry.redelivered.inc();
        }
        // A redelivered request may be the one still running here, delivered before the
        // broker took its channel away: acked as a duplicate, it would be gone before its
        // result is safe. So it is kept to run again once that execution ends.
        // (Boxed, and the stop token cloned, only then: every request in flight carries this.)
        let again = redelivered.then(|| Box::new((request.clone(), stop.clone())));
        let pipeline = self.clone();
        self.submit(request, stop.clone(), move |outcome| async move {
            // Boxed: only such a request needs the wait and the second run, and inline they
            // would enlarge every request's task.
            let outcome = match again {
                Some(again) if outcome == Outcome::Dropped => Box::pin(pipeline.run_again(*again)).await,
                _ => outcome,
            };
            if outcome == Outcome::NotStarted {
                pipeline.executor.telemetry().handed_back.inc();
            }
            ticket.settle(outcome.settle()).await;
        });
    }

    /// Run a redelivered `request`, dropped because it was running here, once that execution
    /// ends (again, if another took its place); `NotStarted` if `stop` fired first.
    async fn run_again(&self, (request, stop): (Object, CancellationToken)) -> Outcome {
        loop {
            if !self.executor.until_idle(&request, &stop).await {
                return Outcome::NotStarted;
            }
            match self.run(request.clone(), &stop).await {
                // Never a loop that does not wait: should the key waited for ever differ from
                // the one the run claims, a run dropped again waits a little first.
                Outcome::Dropped => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
                outcome => return outcome,
            }
        }
    }
}

/// Publish a finished check: its result, or what its follow-up makes of it (parts, then a
/// report timed from the first publish to the last confirmation). Returns whether
/// everything was delivered.
pub async fn publish(sink: &dyn Sink, finished: Finished) -> bool {
    let Finished { result, follow_up } = finished;
    let Some(mut follow_up) = follow_up else {
        return sink.publish(result).await;
    };
    let started = tokio::time::Instant::now();
    let results = follow_up.results(result);
    let delivered =
        futures_util::future::join_all(results.into_iter().map(|r| sink.publish(r))).await.into_iter().all(|ok| ok);
    match follow_up.finish(started.elapsed().as_secs_f64(), delivered) {
        Some(report) => sink.publish(report).await && delivered,
        None => delivered,
    }
}

/// Spawn `task` onto `tracker` after polling it once here, so that work waiting for an
/// execution slot joins the queue in the order it was handed over: tokio may start freshly
/// spawned tasks out of order, and `CONCIERGE_COMMAND_CONCURRENCY` promises that waiting
/// checks run in order. A task that completes in that first poll is not spawned.
fn spawn_in_order(tracker: &TaskTracker, task: impl Future<Output = ()> + Send + 'static) {
    let mut task = Box::pin(task);
    let mut cx = std::task::Context::from_waker(futures_util::task::noop_waker_ref());
    if task.as_mut().poll(&mut cx).is_pending() {
        tracker.spawn(task);
    }
}
