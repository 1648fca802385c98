//! Check requests as they arrive on a subscription queue, and how each is settled once
//! its fate is known: acknowledged (its result is confirmed, or it was dropped), handed
//! back to the queue (not run, or its result not confirmed), or rejected (not a check
//! request). lapin's types stay in this module.

use std::sync::Arc;

use futures_util::StreamExt;
use lapin::{Acker, Consumer};

use super::acks::Acks;
use super::session::TransportError;

/// A subscription queue's consumer.
pub struct Inbox {
    queue: String,
    consumer: Consumer,
    /// The channel's settlements, shared with every ticket (a lapin `Channel` is some 100
    /// bytes of handles; every request's task carries its ticket).
    acks: Arc<Acks>,
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

/// The right to settle one message. Settling is a no-op when consuming without acks. A
/// ticket dropped unsettled (its request's task lost) hands its message back at once, so it
/// holds neither a prefetch slot nor the acks behind it until the channel closes.
pub struct Ticket {
    acks: Arc<Acks>,
    tag: u64,
    acker: Acker,
    manual_ack: bool,
    settled: bool,
}

impl Ticket {
    /// Whether settling it tells the broker anything (consuming with acks): a message
    /// consumed without acks is the client's from its delivery on.
    pub fn acknowledged(&self) -> bool {
        self.manual_ack
    }

    /// Settle the message on its channel (an ack within [`super::acks::ACK_DELAY`], a requeue
    /// or rejection at once). If the channel is gone (a reconnect), the broker has requeued
    /// the message already and nothing is sent.
    pub async fn settle(mut self, how: Settle) {
        self.settled = true;
        if !self.manual_ack || !self.acker.usable() {
            return;
        }
        // Straight to the channel rather than through the acker, which relays it via
        // lapin's internal RPC task: one hand-over less per request.
        match how {
            Settle::Ack => self.acks.ack(self.tag),
            Settle::Requeue => self.acks.requeue(self.tag),
            Settle::Reject => self.acks.reject(self.tag),
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.settled && self.manual_ack && self.acker.usable() {
            self.acks.requeue(self.tag);
        }
    }
}

impl Inbox {
    pub(super) fn new(queue: String, consumer: Consumer, acks: Arc<Acks>, manual_ack: bool) -> Self {
        Self { queue, consumer, acks, manual_ack }
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
        if self.manual_ack {
            self.acks.delivered();
        }
        Some(Ok(Incoming {
            body: delivery.data,
            redelivered: delivery.redelivered,
            ticket: Ticket {
                acks: self.acks.clone(),
                tag: delivery.delivery_tag,
                acker: delivery.acker,
                manual_ack: self.manual_ack,
                settled: false,
            },
        }))
    }
}
