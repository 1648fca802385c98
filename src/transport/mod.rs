//! The RabbitMQ transport, exactly as sensu-transport 8.3.0 uses it
//! (`lib/sensu/transport/rabbitmq.rb`) and as `Sensu::Client::Process` subscribes.
//!
//! * [`amqps`]: rustls configuration for `amqps` (verification configurable).
//! * [`session`]: one connected broker: two connections (primary for consumers and
//!   keepalives, secondary for results), Sensu's topology and flags.
//! * [`inbox`]: requests arriving on subscription queues, each with the right to settle it.
//! * [`acks`]: how they are settled: acknowledgements sent together, the rest at once.
//! * [`publisher`]: the results pipe: a bounded buffer drained with publisher confirms.
//! * [`sink`]: where results go (the publisher, or stdout in local mode).
//! * [`view`]: the broker as the local API sees it (connected, consumers).
//! * [`observer`]: the broker as `concierge autoscale` watches it (queue depths, keepalives).

pub mod acks;
pub mod amqps;
pub mod inbox;
pub mod observer;
pub mod publisher;
pub mod session;
pub mod sink;
pub mod view;

/// Exchange (direct) keepalives are published to (`keepalives` pipe).
pub const KEEPALIVES_EXCHANGE: &str = "keepalives";
/// Exchange (direct) results are published to (`results` pipe).
pub const RESULTS_EXCHANGE: &str = "results";
/// Every bind and publish uses the empty routing key (sensu-transport `publish`/`subscribe`).
pub const ROUTING_KEY: &str = "";
/// `content_type` of every publish (the amqp gem's default for `publish`).
pub const CONTENT_TYPE: &str = "application/octet-stream";
/// Keepalive period, fixed in sensu-client (`EM::PeriodicTimer.new(20)`).
pub const KEEPALIVE_INTERVAL_SECS: u64 = 20;

/// How a subscription maps onto RabbitMQ (`transport_subscribe_options` in
/// sensu 1.9.0 `lib/sensu/client/process.rb`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subscription {
    /// `roundrobin:NAME` or `direct:NAME`: a direct exchange and a shared queue, both
    /// named with the full string.
    Shared(String),
    /// Anything else (`client:NAME` included): a fanout exchange named with the full
    /// string, bound to this process's funnel queue.
    Fanout(String),
}

impl Subscription {
    /// Classify a subscription string: split once on the first `:`; `direct` and
    /// `roundrobin` prefixes are shared, everything else is fanout.
    pub fn parse(name: &str) -> Self {
        match name.split_once(':') {
            Some(("direct" | "roundrobin", _)) => Self::Shared(name.to_string()),
            _ => Self::Fanout(name.to_string()),
        }
    }

    /// The exchange (and, for shared subscriptions, queue) name.
    pub fn name(&self) -> &str {
        match self {
            Self::Shared(n) | Self::Fanout(n) => n,
        }
    }
}

/// The per-process funnel queue: `<client name>-<sensu VERSION>-<process start epoch>`.
pub fn funnel_name(client: &str, start_epoch: i64) -> String {
    format!("{client}-{}-{start_epoch}", crate::proto::SENSU_VERSION)
}

/// Poll `future` once, with a waker that does nothing. For a lapin method this queues its
/// frames — lapin 4.12 (pinned in Cargo.toml) pushes them in the first poll, in order — and
/// asks nothing more: lapin then only reports that its I/O thread has written them, and
/// waiting for that report would put the runtime thread to sleep and wake it once more.
fn poll_quietly<F: std::future::Future>(future: std::pin::Pin<&mut F>) -> std::task::Poll<F::Output> {
    future.poll(&mut std::task::Context::from_waker(futures_util::task::noop_waker_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_kinds_follow_sensu() {
        assert_eq!(Subscription::parse("roundrobin:web"), Subscription::Shared("roundrobin:web".into()));
        assert_eq!(Subscription::parse("direct:x"), Subscription::Shared("direct:x".into()));
        assert_eq!(Subscription::parse("client:i-1"), Subscription::Fanout("client:i-1".into()));
        assert_eq!(Subscription::parse("a:b:c"), Subscription::Fanout("a:b:c".into()));
        assert_eq!(Subscription::parse("linux"), Subscription::Fanout("linux".into()));
        assert_eq!(Subscription::parse("roundrobin"), Subscription::Fanout("roundrobin".into()));
    }

    #[test]
    fn funnel_queue_name() {
        assert_eq!(funnel_name("i-424242", 1575000000), "i-424242-1.9.0-1575000000");
    }
}
