//! The broker as `concierge autoscale` watches it, over a connection of its own: the depth of
//! a queue by a **passive** `queue.declare` (nothing is created; a missing queue is no
//! backlog), and the fleet's keepalives through a private, exclusive queue bound to the
//! `keepalives` exchange — never taking a message from sensu-server's `keepalives` queue.

use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ExchangeKind};
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

use super::session::{TransportError, bounded, connect, declare_sensu_exchange};
use super::{KEEPALIVES_EXCHANGE, ROUTING_KEY};
use crate::config::brokers::Broker;

/// Keepalives waiting to be read, at most; more are dropped (the next ones tell the same).
const KEEPALIVE_BACKLOG: usize = 4096;

/// A watching connection.
pub struct Observer {
    /// Which broker (no password).
    pub label: String,
    connection: Connection,
    /// For passive declares; replaced when the broker closes it (a passive declare of a
    /// missing queue closes the channel).
    probe: Mutex<Channel>,
    /// Fired when the keepalive consumer stops or a probe fails (see [`Self::is_broken`]).
    pub broken: CancellationToken,
    op_timeout: Duration,
}

impl Observer {
    /// Connect to `broker` as `name`.
    pub async fn open(broker: &Broker, name: &str, op_timeout: Duration) -> Result<Self, TransportError> {
        let connection = connect(broker, &format!("concierge {name} (autoscale)")).await?;
        // Not the sessions' connection watcher: lapin reports a channel the broker closed (a
        // passive declare of a missing queue does that) as a connection error, and here that
        // is an answer, not a broken link. The connection's own state and the keepalive
        // consumer tell when the link is gone.
        let broken = CancellationToken::new();
        let probe = bounded("channel.open", op_timeout, connection.create_channel()).await?;
        Ok(Self { label: broker.label(), connection, probe: Mutex::new(probe), broken, op_timeout })
    }

    /// `(ready messages, consumers)` of `queue`, or `None` when there is no such queue.
    pub async fn queue_state(&self, queue: &str) -> Result<Option<(u32, u32)>, TransportError> {
        let mut channel = self.probe.lock().await;
        if !channel.status().connected() {
            *channel = bounded("channel.open", self.op_timeout, self.connection.create_channel()).await?;
        }
        let passive =
            QueueDeclareOptions { passive: true, durable: false, exclusive: false, auto_delete: false, nowait: false };
        let declared =
            tokio::time::timeout(self.op_timeout, channel.queue_declare(queue.into(), passive, FieldTable::default()))
                .await;
        match declared {
            Ok(Ok(q)) => Ok(Some((q.message_count(), q.consumer_count()))),
            Ok(Err(error)) if not_found(&error) => Ok(None),
            Ok(Err(source)) => {
                Err(TransportError::Amqp { operation: format!("queue.declare (passive) {queue:?}"), source })
            }
            Err(_) => Err(TransportError::Timeout {
                operation: format!("queue.declare (passive) {queue:?}"),
                limit: self.op_timeout,
            }),
        }
    }

    /// Every keepalive from now on, as published, with when it arrived (epoch seconds): a
    /// private queue (server-named, exclusive, auto-delete) bound to the `keepalives`
    /// exchange, consumed without acknowledgements.
    pub async fn keepalives(&self) -> Result<mpsc::Receiver<(i64, Vec<u8>)>, TransportError> {
        let channel = bounded("channel.open", self.op_timeout, self.connection.create_channel()).await?;
        declare_sensu_exchange(&channel, KEEPALIVES_EXCHANGE, ExchangeKind::Direct, self.op_timeout).await?;
        let private =
            QueueDeclareOptions { passive: false, durable: false, exclusive: true, auto_delete: true, nowait: false };
        let queue = bounded(
            "queue.declare (private keepalives)",
            self.op_timeout,
            channel.queue_declare("".into(), private, FieldTable::default()),
        )
        .await?;
        let name = queue.name().to_string();
        bounded(
            format!("queue.bind {name:?} to {KEEPALIVES_EXCHANGE:?}"),
            self.op_timeout,
            channel.queue_bind(
                name.as_str().into(),
                KEEPALIVES_EXCHANGE.into(),
                ROUTING_KEY.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            ),
        )
        .await?;
        let options = BasicConsumeOptions { no_local: false, no_ack: true, exclusive: true, nowait: false };
        let mut consumer = bounded(
            format!("basic.consume {name:?}"),
            self.op_timeout,
            channel.basic_consume(name.as_str().into(), "concierge-autoscale".into(), options, FieldTable::default()),
        )
        .await?;
        let (tx, rx) = mpsc::channel(KEEPALIVE_BACKLOG);
        let broken = self.broken.clone();
        tokio::spawn(async move {
            // The channel lives as long as the consumer reads from it.
            let _channel = channel;
            loop {
                let delivery = tokio::select! {
                    () = broken.cancelled() => return,
                    delivery = consumer.next() => delivery,
                };
                match delivery {
                    Some(Ok(delivery)) => {
                        if tx.try_send((crate::proto::now_epoch(), delivery.data)).is_err() && tx.is_closed() {
                            return;
                        }
                    }
                    Some(Err(error)) => {
                        tracing::warn!(%error, "keepalive tap failed");
                        broken.cancel();
                        return;
                    }
                    None => {
                        broken.cancel();
                        return;
                    }
                }
            }
        });
        Ok(rx)
    }

    /// Whether the link is gone (the connection, or the keepalive consumer).
    pub fn is_broken(&self) -> bool {
        self.broken.is_cancelled() || !self.connection.status().connected()
    }

    /// Close the connection (bounded).
    pub async fn close(&self) {
        self.broken.cancel();
        let _ =
            tokio::time::timeout(Duration::from_secs(2), self.connection.close(200, "concierge stopping".into())).await;
    }
}

/// Whether the broker answered 404 NOT_FOUND.
fn not_found(error: &lapin::Error) -> bool {
    matches!(error.kind(), lapin::ErrorKind::ProtocolError(e) if e.get_id() == 404)
}
