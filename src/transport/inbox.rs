//! Check requests as they arrive on a subscription queue, and how each is settled once
//! its fate is known: acknowledged (its result is confirmed, or it was dropped), handed
//! back to the queue (not run, or its result not confirmed), or rejected (not a check
//! request). lapin's types stay in this module.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicNackOptions, BasicRejectOptions};
use lapin::{Acker, Channel, Consumer};

use super::session::TransportError;

/// A subscription queue's consumer.
pub struct Inbox {
    queue: String,
    consumer: Consumer,
    /// Shared with every ticket (a lapin `Channel` is some 100 bytes of handles, cloned one
    /// by one; every request's task carries its ticket).
    channel: Arc<Channel>,
    manual_ack: bool,
}

/// One message from a subscription queue.
pub struct Incoming {
    /// The message body (a check request, if well formed).
    pub body: Vec<u8>,
    /// The broker delivered it before (to this or another consumer).
    pub redelivered: bool,
    /// How to settle it.
    pub ticket: Ticket,
}

/// What becomes of a message once its request is done with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// Done: its result is confirmed by the broker, or there was nothing to publish.
    Ack,
    /// Hand it back to the queue for another replica (not run, or result not confirmed).
    Requeue,
    /// Not a check request: drop it for good.
    Reject,
}

/// The right to settle one message. Settling is a no-op when consuming without acks.
pub struct Ticket {
    channel: Arc<Channel>,
    tag: u64,
    acker: Acker,
    manual_ack: bool,
}

impl Ticket {
    /// Settle the message on its channel. If the channel is gone (a reconnect), the broker
    /// has requeued the message already and nothing is sent.
    ///
    /// The settlement is queued on the channel, not awaited: lapin puts the frame on its
    /// outgoing queue in the first poll and then only waits for its I/O thread to have
    /// written it. Waiting for that would put the runtime thread to sleep and wake it once
    /// more per request (at 1,000 requests/s, each wake-up is a cross-thread hand-over);
    /// a write that fails means the connection is lost, and the broker requeues the message
    /// itself — what awaiting it would have led to as well.
    pub async fn settle(self, how: Settle) {
        if !self.manual_ack || !self.acker.usable() {
            return;
        }
        // Straight to the channel rather than through the acker, which relays it via
        // lapin's internal RPC task: one hand-over less per request.
        let channel = &self.channel;
        let done = match how {
            Settle::Ack => queue(channel.basic_ack(self.tag, BasicAckOptions::default())),
            Settle::Requeue => queue(channel.basic_nack(self.tag, BasicNackOptions { multiple: false, requeue: true })),
            Settle::Reject => queue(channel.basic_reject(self.tag, BasicRejectOptions { requeue: false })),
        };
        if let Err(error) = done {
            tracing::debug!(%error, ?how, "could not settle a request on a closed channel");
        }
    }
}

/// Poll a lapin method once, which queues its frame, and leave its write to lapin's I/O
/// thread. Returns the error of a method refused outright (a closed channel).
fn queue(method: impl Future<Output = lapin::Result<()>>) -> lapin::Result<()> {
    let mut method = std::pin::pin!(method);
    let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
    match method.as_mut().poll(&mut cx) {
        Poll::Ready(done) => done,
        Poll::Pending => Ok(()),
    }
}

impl Inbox {
    pub(super) fn new(queue: String, consumer: Consumer, channel: Channel, manual_ack: bool) -> Self {
        Self { queue, consumer, channel: Arc::new(channel), manual_ack }
    }

    /// The queue's name.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// The consumer tag (to cancel it).
    pub fn tag(&self) -> String {
        self.consumer.tag().to_string()
    }

    /// The next message; `None` when the broker cancelled the consumer or the channel closed.
    pub async fn next(&mut self) -> Option<Result<Incoming, TransportError>> {
        let delivery = match self.consumer.next().await? {
            Ok(delivery) => delivery,
            Err(source) => {
                return Some(Err(TransportError::Amqp {
                    operation: format!("basic.consume {:?}", self.queue),
                    source,
                }));
            }
        };
        Some(Ok(Incoming {
            body: delivery.data,
            redelivered: delivery.redelivered,
            ticket: Ticket {
                channel: self.channel.clone(),
                tag: delivery.delivery_tag,
                acker: delivery.acker,
                manual_ack: self.manual_ack,
            },
        }))
    }
}
