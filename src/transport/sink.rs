//! Where results go: the [`Sink`] every source of results (the request pipeline, the local
//! sockets, local mode) hands them to. The fleet's sink is the broker's confirmed results
//! pipe ([`super::publisher::Publisher`]); local mode's is stdout.

use std::future::Future;
use std::pin::Pin;

use crate::proto::ResultPayload;

/// Where results go.
pub trait Sink: Send + Sync {
    /// Deliver one result; `true` once it is safe (confirmed by the broker, written).
    fn publish(&self, payload: ResultPayload) -> Pin<Box<dyn Future<Output = bool> + Send + '_>>;
}

/// Local mode's sink: one JSON document per line on stdout.
#[derive(Debug, Default)]
pub struct StdoutSink;

impl Sink for StdoutSink {
    fn publish(&self, payload: ResultPayload) -> Pin<Box<dyn Future<Output = bool> + Send + '_>> {
        Box::pin(async move {
            use std::io::Write as _;
            let mut line = payload.to_bytes();
            drop(payload);
            line.push(b'\n');
            let mut out = std::io::stdout().lock();
            match out.write_all(&line).and_then(|()| out.flush()) {
                Ok(()) => true,
                Err(error) => {
                    tracing::error!(%error, "failed to write result to stdout");
                    false
                }
            }
        })
    }
}

/// The fleet's sink: the confirmed results pipe.
impl Sink for super::publisher::Publisher {
    fn publish(&self, payload: ResultPayload) -> Pin<Box<dyn Future<Output = bool> + Send + '_>> {
        // Written out now, and the payload dropped: a courier's output is not held twice
        // while the broker confirms it.
        let body = payload.to_bytes();
        drop(payload);
        Box::pin(super::publisher::Publisher::publish(self, body))
    }
}
