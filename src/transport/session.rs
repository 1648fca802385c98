//! One connected broker: the two connections sensu-transport opens, their channels,
//! and Sensu's topology with its exact flags (spec §1.2).

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{
    BasicCancelOptions, BasicConsumeOptions, BasicQosOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ConnectionStatus, Consumer, ExchangeKind};
use prometheus_client::metrics::gauge::Gauge;
use tokio_util::sync::CancellationToken;

use super::acks::{AckCounters, Acks};
use super::amqps;
use super::inbox::Inbox;
use super::{CONTENT_TYPE, KEEPALIVES_EXCHANGE, RESULTS_EXCHANGE, ROUTING_KEY, Subscription};
use crate::config::brokers::Broker;

/// What a session counts into the client's telemetry.
#[derive(Clone, Default)]
pub struct SessionCounters {
    /// Requests acknowledged, and the frames that did it.
    pub acks: AckCounters,
    /// The session's connections the broker blocks now (a resource alarm), 0–2.
    pub blocked: Gauge,
}

/// Why talking to the broker failed. Each carries the operation and, for timeouts, the limit.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// Could not connect.
    #[error("connecting to {broker}: {problem}")]
    Connect {
        /// Broker label (no password).
        broker: String,
        /// What went wrong.
        problem: String,
    },
    /// An AMQP operation failed.
    #[error("{operation}: {source}")]
    Amqp {
        /// What we were doing.
        operation: String,
        /// lapin's error.
        source: lapin::Error,
    },
    /// An operation took too long.
    #[error("{operation}: no answer within {limit:?}")]
    Timeout {
        /// What we were doing.
        operation: String,
        /// The limit.
        limit: Duration,
    },
    /// The broker refused a publish (`basic.nack`).
    #[error("{operation}: the broker refused the message (nack)")]
    Nacked {
        /// What we were doing.
        operation: String,
    },
}

/// Bound an AMQP operation in time and name it in the error.
pub async fn bounded<T>(
    operation: impl Into<String>,
    limit: Duration,
    fut: impl std::future::Future<Output = lapin::Result<T>>,
) -> Result<T, TransportError> {
    let operation = operation.into();
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(source)) => Err(TransportError::Amqp { operation, source }),
        Err(_) => Err(TransportError::Timeout { operation, limit }),
    }
}

/// How often a wait on a blocked connection looks whether the broker unblocked it.
const BLOCKED_POLL: Duration = Duration::from_millis(250);

/// What a publish does while the broker blocks its connection (a resource alarm).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnAlarm {
    /// Waits it out: the timeout does not run while the connection is blocked.
    WaitOut,
    /// Gives up after the timeout, as any other operation (the caller has a way out: the
    /// bootstrap reconnects, a one-off publisher tries the next broker).
    GiveUp,
}

/// A connection's state, to wait out an alarm on; `None` where an alarm is not waited out:
/// without heartbeats, nothing would tell a blocked connection from a dead one.
pub(super) fn alarm_view(connection: &Connection) -> Option<ConnectionStatus> {
    (connection.configuration().heartbeat() > 0).then(|| connection.status().clone())
}

/// Wait for `fut` within `limit`, the clock stopped while the broker blocks the connection
/// (`connection.blocked`: a memory or disk alarm, during which RabbitMQ reads nothing from
/// a connection that publishes, so confirms nothing). `None` once `limit` is spent with the
/// connection not blocked, or lost, or with no `connection` to watch (see [`alarm_view`]).
/// Giving up on a blocked connection would not help: a new one is blocked at its first
/// publish, which the broker routes before it blocks, so every reconnect during a long
/// alarm would deliver that publish once more.
pub(super) async fn unless_blocked<F: std::future::Future>(
    connection: Option<&ConnectionStatus>,
    limit: Duration,
    fut: F,
) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    // A connection lost while blocked is no alarm to wait out (lapin reports it: its
    // heartbeats go unanswered).
    let waiting = || connection.is_some_and(|c| c.blocked() && c.connected());
    loop {
        if let Ok(output) = tokio::time::timeout(limit, fut.as_mut()).await {
            return Some(output);
        }
        if !waiting() {
            return None;
        }
        while waiting() {
            if let Ok(output) = tokio::time::timeout(BLOCKED_POLL, fut.as_mut()).await {
                return Some(output);
            }
        }
    }
}

/// The properties every Sensu publish carries: `application/octet-stream`, delivery
/// mode 1 (not persistent), priority 0, nothing else.
pub fn sensu_properties() -> BasicProperties {
    BasicProperties::default().with_content_type(CONTENT_TYPE.into()).with_delivery_mode(1).with_priority(0)
}

/// Exchange flags: non-durable, not auto-delete, not internal, no arguments.
fn exchange_options() -> ExchangeDeclareOptions {
    ExchangeDeclareOptions { passive: false, durable: false, auto_delete: false, internal: false, nowait: false }
}

/// Queue flags: non-durable, non-exclusive, auto-delete, no arguments.
pub fn queue_options() -> QueueDeclareOptions {
    QueueDeclareOptions { passive: false, durable: false, exclusive: false, auto_delete: true, nowait: false }
}

/// A connected broker.
pub struct Session {
    /// Which broker (no password).
    pub label: String,
    primary: Connection,
    secondary: Connection,
    /// Primary channel: subscriptions and keepalives (confirm mode).
    pub(super) channel: Channel,
    /// Secondary channel: results (confirm mode).
    pub(super) results: Channel,
    /// How the primary channel's requests are settled (acks sent together).
    acks: Arc<Acks>,
    /// Fired when either connection fails or is closed by the broker, or a publish on it
    /// fails or goes unconfirmed past the timeout while the broker does not block it.
    pub broken: CancellationToken,
    /// Timeout for declarations and publishes.
    pub op_timeout: Duration,
}

impl Session {
    /// Open both connections to `broker`, their channels, qos and confirm mode.
    pub async fn open(
        broker: &Broker,
        client_name: &str,
        prefetch: u16,
        op_timeout: Duration,
        counters: SessionCounters,
    ) -> Result<Self, TransportError> {
        let label = broker.label();
        let primary = connect(broker, &format!("concierge {client_name} (primary)")).await?;
        let secondary = match connect(broker, &format!("concierge {client_name} (secondary)")).await {
            Ok(c) => c,
            Err(e) => {
                // Bounded, as in `close`: a broker that stopped answering would hold the
                // reconnect until lapin's heartbeat gave up.
                let closing = primary.close(200, "secondary connection failed".into());
                let _ = tokio::time::timeout(Duration::from_secs(2), closing).await;
                return Err(e);
            }
        };
        let broken = CancellationToken::new();
        for (role, conn) in [("primary", &primary), ("secondary", &secondary)] {
            watch(conn, role, broken.clone(), counters.blocked.clone());
        }
        // Until the session is whole, a failure (or this future dropped) ends the watchers.
        let unfinished = broken.clone().drop_guard();
        let channel = bounded("channel.open (primary)", op_timeout, primary.create_channel()).await?;
        let results = bounded("channel.open (secondary)", op_timeout, secondary.create_channel()).await?;
        // Channel-wide prefetch: no more unacknowledged requests than execution slots.
        bounded("basic.qos", op_timeout, channel.basic_qos(prefetch, BasicQosOptions { global: true })).await?;
        bounded("basic.qos", op_timeout, results.basic_qos(prefetch, BasicQosOptions { global: true })).await?;
        bounded("confirm.select", op_timeout, channel.confirm_select(ConfirmSelectOptions::default())).await?;
        bounded("confirm.select", op_timeout, results.confirm_select(ConfirmSelectOptions::default())).await?;
        unfinished.disarm();
        let acks = Acks::new(Arc::new(channel.clone()), prefetch, counters.acks);
        Ok(Self { label, primary, secondary, channel, results, acks, broken, op_timeout })
    }

    /// How many of the two connections the broker blocks now (a resource alarm).
    pub fn blocked(&self) -> usize {
        [&self.primary, &self.secondary].iter().filter(|c| c.status().blocked()).count()
    }

    /// The state of the connection results are published on, to wait out an alarm on.
    pub(super) fn results_alarm_view(&self) -> Option<ConnectionStatus> {
        alarm_view(&self.secondary)
    }

    /// Declare the two pipes a client publishes to (`keepalives`, `results`: direct).
    pub async fn declare_pipes(&self) -> Result<(), TransportError> {
        self.declare_exchange(&self.channel, KEEPALIVES_EXCHANGE, ExchangeKind::Direct).await?;
        self.declare_exchange(&self.results, RESULTS_EXCHANGE, ExchangeKind::Direct).await
    }

    /// Publish a keepalive on the primary channel and wait for the broker's confirm, within
    /// the timeout or, with [`OnAlarm::WaitOut`], not counting the time the broker blocks the
    /// connection, as for results.
    pub async fn publish_keepalive(&self, body: &[u8], on_alarm: OnAlarm) -> Result<(), TransportError> {
        let patient = match on_alarm {
            OnAlarm::WaitOut => alarm_view(&self.primary),
            OnAlarm::GiveUp => None,
        };
        self.publish(&self.channel, patient.as_ref(), KEEPALIVES_EXCHANGE, body).await
    }

    /// Declare the `results` pipe and publish one result to it, confirmed (a one-off
    /// publisher such as `concierge scale`), within the timeout even if the broker blocks
    /// the connection: the caller may try another broker. Never on a session whose results
    /// channel a [`super::publisher::Publisher`] drains: its batches wait for the channel's
    /// last confirm.
    pub async fn publish_result(&self, body: &[u8]) -> Result<(), TransportError> {
        self.declare_exchange(&self.results, RESULTS_EXCHANGE, ExchangeKind::Direct).await?;
        self.publish(&self.results, None, RESULTS_EXCHANGE, body).await
    }

    /// Cancel consumers, all at once (bounded each); unacknowledged requests stay valid on the
    /// channel. Whether the broker confirmed every cancel.
    pub async fn cancel_consumers(&self, tags: &[String]) -> bool {
        let cancels = tags.iter().map(|tag| {
            let cancel = self.channel.basic_cancel(tag.as_str().into(), BasicCancelOptions::default());
            tokio::time::timeout(self.op_timeout, cancel)
        });
        futures_util::future::join_all(cancels).await.into_iter().all(|done| matches!(done, Ok(Ok(()))))
    }

    /// Declare an exchange with Sensu's flags.
    pub async fn declare_exchange(
        &self,
        channel: &Channel,
        name: &str,
        kind: ExchangeKind,
    ) -> Result<(), TransportError> {
        declare_sensu_exchange(channel, name, kind, self.op_timeout).await
    }

    /// Publish to `exchange` with routing key `""` and Sensu's properties, and wait for the
    /// broker's confirm within the operation timeout; with `patient`, not counting the time
    /// the broker blocks that connection.
    async fn publish(
        &self,
        channel: &Channel,
        patient: Option<&ConnectionStatus>,
        exchange: &str,
        body: &[u8],
    ) -> Result<(), TransportError> {
        let operation = format!("basic.publish to {exchange:?}");
        let limit = self.op_timeout;
        let publish = async {
            let properties = sensu_properties();
            channel
                .basic_publish(exchange.into(), ROUTING_KEY.into(), Default::default(), body, properties)
                .await?
                .await
        };
        let confirmation = unless_blocked(patient, limit, publish).await;
        match confirmation {
            Some(Ok(confirmation)) if confirmation.is_nack() => Err(TransportError::Nacked { operation }),
            Some(Ok(_)) => Ok(()),
            Some(Err(source)) => Err(TransportError::Amqp { operation, source }),
            None => Err(TransportError::Timeout { operation, limit }),
        }
    }

    /// Set up every subscription in settings order, as `Client::Process#setup_subscriptions`
    /// does: `[queue.declare if new] → exchange.declare → queue.bind → [basic.consume if
    /// new]`. Fanout subscriptions share the funnel queue and its one consumer. Without
    /// `no_ack`, each request is settled through its [`super::inbox::Ticket`].
    pub async fn subscribe(
        &self,
        funnel: &str,
        subscriptions: &[String],
        no_ack: bool,
    ) -> Result<Vec<Inbox>, TransportError> {
        let mut consumers: Vec<(String, Consumer)> = Vec::new();
        for name in subscriptions {
            let sub = Subscription::parse(name);
            let (queue, kind) = match &sub {
                Subscription::Shared(n) => (n.as_str(), ExchangeKind::Direct),
                Subscription::Fanout(_) => (funnel, ExchangeKind::Fanout),
            };
            let new = !consumers.iter().any(|(q, _)| q == queue);
            if new {
                bounded(
                    format!("queue.declare {queue:?}"),
                    self.op_timeout,
                    self.channel.queue_declare(queue.into(), queue_options(), FieldTable::default()),
                )
                .await?;
            }
            self.declare_exchange(&self.channel, sub.name(), kind).await?;
            bounded(
                format!("queue.bind {queue:?} to {:?}", sub.name()),
                self.op_timeout,
                self.channel.queue_bind(
                    queue.into(),
                    sub.name().into(),
                    ROUTING_KEY.into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                ),
            )
            .await?;
            if new {
                let tag = format!("{queue}-{}-{}", chrono::Utc::now().timestamp_millis(), rand::random::<u32>());
                let options = BasicConsumeOptions { no_local: false, no_ack, exclusive: false, nowait: false };
                let consumer = bounded(
                    format!("basic.consume {queue:?}"),
                    self.op_timeout,
                    self.channel.basic_consume(queue.into(), tag.into(), options, FieldTable::default()),
                )
                .await?;
                consumers.push((queue.to_string(), consumer));
            }
        }
        Ok(consumers
            .into_iter()
            .map(|(queue, consumer)| Inbox::new(queue, consumer, self.acks.clone(), !no_ack))
            .collect())
    }

    /// Unbind the funnel from a fanout subscription's exchange (used when a reload drops it).
    pub async fn unbind_fanout(&self, funnel: &str, exchange: &str) -> Result<(), TransportError> {
        bounded(
            format!("queue.unbind {funnel:?} from {exchange:?}"),
            self.op_timeout,
            self.channel.queue_unbind(funnel.into(), exchange.into(), ROUTING_KEY.into(), FieldTable::default()),
        )
        .await
    }

    /// `(messages, consumers)` of a queue, by an active declare with Sensu's flags (which is
    /// what sensu-client's `/info` does, and so may create the queue).
    pub async fn queue_stats(&self, queue: &str) -> Result<(u32, u32), TransportError> {
        let q = bounded(
            format!("queue.declare {queue:?}"),
            self.op_timeout,
            self.channel.queue_declare(queue.into(), queue_options(), FieldTable::default()),
        )
        .await?;
        Ok((q.message_count(), q.consumer_count()))
    }

    /// Whether both connections are up.
    pub fn connected(&self) -> bool {
        !self.broken.is_cancelled() && self.primary.status().connected() && self.secondary.status().connected()
    }

    /// Close both connections (bounded), after the acks that wait.
    pub async fn close(&self) {
        self.acks.flush();
        self.broken.cancel();
        for conn in [&self.primary, &self.secondary] {
            let _ = tokio::time::timeout(Duration::from_secs(2), conn.close(200, "concierge stopping".into())).await;
        }
    }
}

/// Declare an exchange with Sensu's flags, bounded by `limit`.
pub(super) async fn declare_sensu_exchange(
    channel: &Channel,
    name: &str,
    kind: ExchangeKind,
    limit: Duration,
) -> Result<(), TransportError> {
    bounded(
        format!("exchange.declare {name:?}"),
        limit,
        channel.exchange_declare(name.into(), kind, exchange_options(), FieldTable::default()),
    )
    .await
}

/// Fire `broken` when the connection reports an error, and count it in `blocked` while the
/// broker blocks it.
fn watch(conn: &Connection, role: &'static str, broken: CancellationToken, blocked: Gauge) {
    let mut events = Box::pin(conn.events_listener());
    // Blocked before anyone listened (lapin passes on events only to listeners already there).
    let blocked_already = conn.status().blocked();
    tokio::spawn(async move {
        let mut is_blocked = false;
        let mut set_blocked = |now: bool| {
            if now != is_blocked {
                is_blocked = now;
                if now {
                    blocked.inc()
                } else {
                    blocked.dec()
                };
            }
        };
        set_blocked(blocked_already);
        loop {
            tokio::select! {
                () = broken.cancelled() => break,
                event = events.next() => match event {
                    Some(lapin::Event::Error(error)) => {
                        tracing::warn!(connection = role, %error, "transport connection error");
                        broken.cancel();
                        break;
                    }
                    Some(lapin::Event::ConnectionBlocked(reason)) => {
                        tracing::warn!(connection = role, %reason, "broker blocked the connection (resource alarm)");
                        set_blocked(true);
                    }
                    Some(lapin::Event::ConnectionUnblocked) => {
                        tracing::info!(connection = role, "broker unblocked the connection");
                        set_blocked(false);
                    }
                    Some(_) => {}
                    None => {
                        broken.cancel();
                        break;
                    }
                },
            }
        }
        // The connection is done with: it no longer counts as blocked.
        set_blocked(false);
    });
}

pub(super) async fn connect(broker: &Broker, name: &str) -> Result<Connection, TransportError> {
    let label = broker.label();
    let fail = |problem: String| TransportError::Connect { broker: label.clone(), problem };
    let properties = ConnectionProperties::default()
        .with_connection_name(name.into())
        .with_client_property("product".into(), "concierge".into())
        .with_client_property("version".into(), crate::CONCIERGE_VERSION.into());
    let limit = broker.connect_timeout;
    let attempt = async {
        match &broker.tls {
            None => Connection::connect_uri(broker.uri.clone(), properties).await.map_err(|e| fail(e.to_string())),
            Some(options) => {
                if !options.verify {
                    tracing::warn!(broker = %label, "TLS certificate of the broker is not verified (as sensu-client); set CONCIERGE_TLS_VERIFY=true to verify it");
                }
                let config = amqps::client_config(options).map_err(|e| fail(e.to_string()))?;
                let connector = lapin::tcp::RustlsConnector::from(config);
                let server_name = options.server_name.clone().unwrap_or_else(|| broker.uri.authority.host.clone());
                let runtime = lapin::runtime::default_runtime().map_err(|e| fail(e.to_string()))?;
                // Resolved here, as sensu-transport does; the name still goes to SNI.
                let host = (broker.uri.authority.host.as_str(), broker.uri.authority.port);
                let addresses: Vec<std::net::SocketAddr> = tokio::net::lookup_host(host)
                    .await
                    .map_err(|e| fail(format!("resolving {}: {e}", host.0)))?
                    .collect();
                Connection::connector(
                    broker.uri.clone(),
                    runtime,
                    async move |_uri, runtime| {
                        let tcp = lapin::tcp::AsyncTcpStream::connect(&runtime, addresses.clone()).await?;
                        Ok(tcp.into_rustls(&connector, &server_name).await?)
                    },
                    properties,
                )
                .await
                .map_err(|e| fail(e.to_string()))
            }
        }
    };
    match tokio::time::timeout(limit, attempt).await {
        Ok(result) => result,
        Err(_) => Err(fail(format!("no connection within {limit:?}"))),
    }
}
