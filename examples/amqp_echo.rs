//! A reference point for the fleet benchmark: the least a lapin client can do per check
//! request. It consumes a round-robin subscription the way Concierge does (two
//! connections, channel-wide prefetch, publisher confirms — publishes queued in batches
//! without waiting for their writes, the batch's last confirm awaited —, acks after the
//! confirm, queued and sent together: one `multiple` ack at most every 20 ms or every 64
//! confirms) and
//! answers every request with a fixed result carrying the request's name (copied as bytes,
//! so the load generator can time it): no parsing, no check, no result building. Its CPU per request is what the AMQP path costs before any of Concierge's
//! own work. Run by `bench/run fleet`; not part of the product.
//!
//! Usage: amqp_echo AMQP_URL SUBSCRIPTION PREFETCH

use futures_util::StreamExt;
use futures_util::future::maybe_done;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const RESULT_HEAD: &[u8] = br#"{"client":"amqp-echo","check":{"name":""#;
const RESULT_TAIL: &[u8] = br#"","issued":0,"executed":0,"status":0,"output":"ok"}}"#;

/// The fixed result with the request's `"name"` (its bytes up to the closing quote).
fn result(request: &[u8]) -> Vec<u8> {
    const KEY: &[u8] = br#""name":""#;
    let name = request
        .windows(KEY.len())
        .position(|w| w == KEY)
        .map(|at| &request[at + KEY.len()..])
        .and_then(|rest| rest.iter().position(|&b| b == b'"').map(|end| &rest[..end]))
        .unwrap_or(b"echo");
    [RESULT_HEAD, name, RESULT_TAIL].concat()
}

/// Confirmed requests not acked yet.
#[derive(Default)]
struct Waiting {
    /// The highest confirmed tag.
    top: u64,
    /// The highest tag acked (with everything below it: a tag is acked once only).
    acked: u64,
    /// How many wait.
    count: usize,
    /// A flush is due.
    scheduled: bool,
}

/// Queue one `multiple` ack for what waits, not awaited, as Concierge does: the first poll
/// puts the frame on lapin's outgoing queue; waiting for its write costs a wake-up. (Unlike
/// Concierge, it may cover a request whose confirm is still on its way: a floor, not a client.)
fn ack(channel: &Channel, waiting: &mut Waiting) {
    waiting.count = 0;
    if waiting.top <= waiting.acked {
        return;
    }
    waiting.acked = waiting.top;
    let _ = poll_quietly(std::pin::pin!(channel.basic_ack(waiting.top, BasicAckOptions { multiple: true })));
}

/// Poll once with a waker that does nothing: a lapin method's first poll queues its frames.
fn poll_quietly<F: Future>(future: std::pin::Pin<&mut F>) -> std::task::Poll<F::Output> {
    future.poll(&mut std::task::Context::from_waker(futures_util::task::noop_waker_ref()))
}

/// Publish a batch of answers as Concierge does: every publish queued without waiting for
/// its write (a wake-up), then the broker's confirm of the last one awaited. The tags whose
/// answers the broker acked.
async fn publish_batch(publish: &Channel, batch: &[(u64, Vec<u8>)]) -> Vec<u64> {
    let mut writes: Vec<_> = batch
        .iter()
        .map(|(_, body)| {
            let properties = BasicProperties::default();
            Box::pin(maybe_done(publish.basic_publish(
                "results".into(),
                "".into(),
                BasicPublishOptions::default(),
                body,
                properties,
            )))
        })
        .collect();
    for write in &mut writes {
        let _ = poll_quietly(write.as_mut());
    }
    let _ = publish.wait_for_confirms().await;
    let mut confirmed = Vec::with_capacity(batch.len());
    for (write, (tag, _)) in writes.iter_mut().zip(batch) {
        write.as_mut().await;
        if let Some(Ok(confirm)) = write.as_mut().take_output()
            && confirm.await.is_ok_and(|c| c.is_ack())
        {
            confirmed.push(*tag);
        }
    }
    confirmed
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, subscription, prefetch] = args.as_slice() else {
        eprintln!("usage: amqp_echo AMQP_URL SUBSCRIPTION PREFETCH");
        std::process::exit(2);
    };
    let prefetch: u16 = prefetch.parse().expect("PREFETCH is a number");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let requests = Connection::connect(url, ConnectionProperties::default()).await.expect("connect");
        let results = Connection::connect(url, ConnectionProperties::default()).await.expect("connect");
        let channel = requests.create_channel().await.expect("channel");
        let publish = results.create_channel().await.expect("channel");
        channel.basic_qos(prefetch, BasicQosOptions { global: true }).await.expect("qos");
        publish.confirm_select(ConfirmSelectOptions::default()).await.expect("confirm.select");
        let queue = QueueDeclareOptions { auto_delete: true, ..QueueDeclareOptions::default() };
        channel.queue_declare(subscription.as_str().into(), queue, FieldTable::default()).await.expect("queue");
        let exchange = ExchangeDeclareOptions::default();
        channel
            .exchange_declare(subscription.as_str().into(), ExchangeKind::Direct, exchange, FieldTable::default())
            .await
            .expect("exchange");
        channel
            .queue_bind(
                subscription.as_str().into(),
                subscription.as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("bind");
        let mut consumer = channel
            .basic_consume(
                subscription.as_str().into(),
                "amqp-echo".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("consume");
        // Requests in arrival order to the one publisher (lapin's last-confirm wait needs
        // a channel's publishes to come from one place).
        let (answers, mut answered) = tokio::sync::mpsc::unbounded_channel::<(u64, Vec<u8>)>();
        let acks = Arc::new(Mutex::new(Waiting::default()));
        tokio::spawn(async move {
            let mut batch = Vec::new();
            while answered.recv_many(&mut batch, 256).await > 0 {
                let confirmed = publish_batch(&publish, &batch).await;
                let later = {
                    let mut waiting = acks.lock().unwrap();
                    for tag in confirmed {
                        waiting.top = waiting.top.max(tag);
                        waiting.count += 1;
                        if waiting.count >= 64 {
                            ack(&channel, &mut waiting);
                        }
                    }
                    !std::mem::replace(&mut waiting.scheduled, true)
                };
                batch.clear();
                if later {
                    let (channel, acks) = (channel.clone(), acks.clone());
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        let mut waiting = acks.lock().unwrap();
                        waiting.scheduled = false;
                        ack(&channel, &mut waiting);
                    });
                }
            }
        });
        while let Some(Ok(delivery)) = consumer.next().await {
            let _ = answers.send((delivery.delivery_tag, result(&delivery.data)));
        }
    });
}
