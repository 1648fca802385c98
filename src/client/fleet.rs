//! Joined to a Sensu deployment: the sensu-client lifecycle over RabbitMQ, plus what a
//! container fleet needs (acknowledge after publish, buffered results, drain, reload).
//!
//! The loop is sensu-transport's: connect to the next broker (shuffled), bootstrap
//! (keepalive at once, subscriptions, keepalive timer, standalone schedule), run until
//! the connection breaks, then pause everything and reconnect with a back-off of 2, 4,
//! 6 … seconds capped at 20. Checks already running carry on across a reconnect; their
//! results wait in the publisher's buffer.

use std::sync::Arc;
use std::time::Duration;

use rand::seq::SliceRandom;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::executor_settings;
use super::pipeline::Pipeline;
use super::signals::Signals;
use crate::checks::Executor;
use crate::config::{AckMode, ClientSettings, ConciergeSettings, Loaded, Settings, Sources};
use crate::proto::{Object, ResultPayload, deep_merge_into, keepalive_payload, now_epoch};
use crate::schedule;
use crate::telemetry::Telemetry;
use crate::transport::acks::AckCounters;
use crate::transport::inbox::Inbox;
use crate::transport::publisher::Publisher;
use crate::transport::session::{OnAlarm, Session, SessionCounters, TransportError};
use crate::transport::view::TransportView;
use crate::transport::{KEEPALIVE_INTERVAL_SECS, Subscription, funnel_name};

/// Output of the deregistration result (sensu-client `deregister`).
pub const DEREGISTRATION_OUTPUT: &str = "client initiated deregistration";
/// Longest pause between reconnect attempts (sensu-transport `periodically_reconnect`).
pub const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(20);
/// Time kept at the end of the drain for the deregistration and the last confirms.
const DRAIN_RESERVE: Duration = Duration::from_millis(1500);

/// The back-off before reconnect attempt `n` (1-based): 2, 4, 6 … capped at 20 s.
pub fn reconnect_delay(attempt: u32) -> Duration {
    Duration::from_secs(2 * u64::from(attempt.max(1))).min(MAX_RECONNECT_DELAY)
}

/// The fleet client.
pub struct Fleet {
    sources: Sources,
    settings: Settings,
    executor: Arc<Executor>,
    publisher: Publisher,
    pipeline: Arc<Pipeline>,
    funnel: String,
    telemetry: Arc<Telemetry>,
    transport: Arc<TransportView>,
}

/// Everything a running session owns that a pause or reload stops.
struct Activity {
    /// Stops the consumers, the keepalive timer and the schedule, and hands back the
    /// requests they fed that still wait for an execution slot (see [`Pipeline`]).
    stop: CancellationToken,
    /// Consumer tags.
    consumers: Vec<String>,
}

impl Fleet {
    /// Build the client from validated settings (`sources` are read again on SIGHUP).
    pub fn new(sources: Sources, settings: Settings, telemetry: Arc<Telemetry>) -> Self {
        let concierge = &settings.concierge;
        let executor = Arc::new(Executor::new(executor_settings(&settings, &sources.env, &telemetry)));
        let publisher = Publisher::new(
            concierge.result_buffer,
            Duration::from_secs_f64(concierge.publish_timeout.max(0.1)),
            telemetry.clone(),
        );
        let funnel = funnel_name(&settings.client.name, now_epoch());
        let pipeline = Pipeline::new(executor.clone(), Arc::new(publisher.clone()), concierge.max_request_bytes);
        Self { sources, settings, executor, publisher, pipeline, funnel, telemetry, transport: Arc::default() }
    }

    /// Where a session's acks are counted.
    fn session_counters(&self) -> SessionCounters {
        let acks = AckCounters { requests: self.telemetry.acked.clone(), frames: self.telemetry.ack_frames.clone() };
        SessionCounters { acks, blocked: self.telemetry.blocked.clone() }
    }

    fn prefetch(&self) -> u16 {
        let (commands, builtins) = self.executor.capacity();
        let slots = u16::try_from(commands + builtins).unwrap_or(u16::MAX);
        self.settings.concierge.prefetch.unwrap_or(slots).max(1)
    }

    fn op_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.settings.concierge.publish_timeout.max(0.1))
    }

    fn subscriptions(&self) -> &[String] {
        &self.settings.client.subscriptions
    }

    /// The client's name.
    pub fn client_name(&self) -> &str {
        &self.settings.client.name
    }

    /// The request pipeline: its executor, and its sink (the confirmed results pipe), which
    /// the local API publishes to as well.
    pub fn pipeline(&self) -> &Arc<Pipeline> {
        &self.pipeline
    }

    /// The broker as the local API sees it.
    pub fn transport(&self) -> &Arc<TransportView> {
        &self.transport
    }

    /// Run until a stop signal, then drain. Returns when the process may exit 0.
    pub async fn run(mut self, signals: Signals) {
        let publisher_stop = CancellationToken::new();
        let publisher_task = tokio::spawn(self.publisher.clone().run(publisher_stop.clone()));
        let give_back = tokio::spawn(super::memory::give_back_periodically(publisher_stop.clone()));
        let mut order: Vec<usize> = Vec::new();
        let mut attempt: u32 = 0;
        let mut ever_connected = false;
        let mut current: Option<Arc<Session>> = None;

        if self.settings.brokers.is_empty() {
            tracing::error!("no broker to connect to");
        }
        'connect: while !signals.stop.is_cancelled() && !self.settings.brokers.is_empty() {
            if order.is_empty() {
                order = (0..self.settings.brokers.len()).collect();
                order.shuffle(&mut rand::rng());
            }
            let broker = self.settings.brokers[order.remove(0)].clone();
            let opened = tokio::select! {
                () = signals.stop.cancelled() => break 'connect,
                opened = Session::open(&broker, self.client_name(), self.prefetch(), self.op_timeout(), self.session_counters()) => opened,
            };
            let session = match opened {
                Ok(session) => Arc::new(session),
                Err(error) => {
                    attempt += 1;
                    let delay = reconnect_delay(attempt);
                    tracing::warn!(%error, retry_in = ?delay, "transport connection failed");
                    tokio::select! {
                        () = signals.stop.cancelled() => break 'connect,
                        () = tokio::time::sleep(delay) => continue 'connect,
                    }
                }
            };
            if ever_connected {
                self.telemetry.reconnects.inc();
            }
            attempt = 0;
            ever_connected = true;
            tracing::info!(broker = %session.label, funnel = %self.funnel, "connected to the transport");

            let mut activity = match self.bootstrap(&session).await {
                Ok(activity) => {
                    self.transport_up(&session, &activity).await;
                    tracing::info!(subscriptions = ?self.subscriptions(), "bootstrap complete");
                    activity
                }
                Err(error) => {
                    tracing::warn!(%error, "bootstrap failed; reconnecting");
                    self.pause(&session, None).await;
                    attempt += 1;
                    tokio::select! {
                        () = signals.stop.cancelled() => break 'connect,
                        () = tokio::time::sleep(reconnect_delay(attempt)) => continue 'connect,
                    }
                }
            };
            loop {
                tokio::select! {
                    () = session.broken.cancelled() => {
                        tracing::warn!(broker = %session.label, "transport connection lost; reconnecting");
                        self.pause(&session, Some(activity)).await;
                        continue 'connect;
                    }
                    () = signals.stop.cancelled() => {
                        activity.stop.cancel();
                        session.cancel_consumers(&activity.consumers).await;
                        current = Some(session);
                        break 'connect;
                    }
                    () = signals.reload.notified() => {
                        activity = self.reload(&session, activity).await;
                    }
                }
            }
        }

        self.drain(ever_connected).await;
        if let Some(session) = current {
            session.close().await;
        }
        publisher_stop.cancel();
        let _ = publisher_task.await;
        let _ = give_back.await;
    }

    /// Keepalive at once, subscriptions, keepalive timer, standalone schedule.
    async fn bootstrap(&self, session: &Arc<Session>) -> Result<Activity, TransportError> {
        session.declare_pipes().await?;
        // Bounded even under a resource alarm: SIGTERM is not watched here, and failing
        // sends the loop to reconnect, where it is.
        session.publish_keepalive(&keepalive(&self.executor), OnAlarm::GiveUp).await?;
        self.telemetry.keepalives.inc();
        let stop = CancellationToken::new();
        let consumers = self.start_consumers(session, &stop).await?;
        // Buffered results go out once the server has seen our keepalive.
        self.publisher.attach(session);
        self.start_keepalives(session, &stop);
        self.start_schedule(&stop);
        Ok(Activity { stop, consumers })
    }

    async fn start_consumers(
        &self,
        session: &Session,
        stop: &CancellationToken,
    ) -> Result<Vec<String>, TransportError> {
        let no_ack = self.settings.concierge.ack == AckMode::Auto;
        let inboxes = session.subscribe(&self.funnel, self.subscriptions(), no_ack).await?;
        let mut tags = Vec::new();
        for inbox in inboxes {
            tags.push(inbox.tag());
            tokio::spawn(consume(inbox, self.pipeline.clone(), session.broken.clone(), stop.clone()));
        }
        Ok(tags)
    }

    fn start_keepalives(&self, session: &Arc<Session>, stop: &CancellationToken) {
        let session = session.clone();
        let stop = stop.clone();
        let executor = self.executor.clone();
        let telemetry = self.telemetry.clone();
        tokio::spawn(async move {
            let period = Duration::from_secs(KEEPALIVE_INTERVAL_SECS);
            let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            // A keepalive that waited out a resource alarm is followed by the next one a
            // period later, not by the ones missed meanwhile all at once.
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = session.broken.cancelled() => return,
                    _ = ticker.tick() => {}
                }
                match session.publish_keepalive(&keepalive(&executor), OnAlarm::WaitOut).await {
                    Ok(()) => {
                        telemetry.keepalives.inc();
                    }
                    Err(error) => {
                        tracing::warn!(%error, "failed to publish keepalive");
                        session.broken.cancel();
                        return;
                    }
                }
            }
        });
    }

    fn start_schedule(&self, stop: &CancellationToken) {
        let checks = schedule::eligible(&self.settings.checks, false);
        if checks.is_empty() {
            return;
        }
        let pipeline = self.pipeline.clone();
        let submit = {
            let stop = stop.clone();
            move |request: Object| pipeline.submit(request, stop.clone(), |_| async {})
        };
        tokio::spawn(schedule::run(self.client_name().to_string(), checks, submit, stop.clone()));
    }

    /// Tell the API (health, `/info`) that the session is bootstrapped.
    async fn transport_up(&self, session: &Arc<Session>, activity: &Activity) {
        let subscriptions = self.subscriptions();
        let mut queues: Vec<String> = subscriptions
            .iter()
            .map(|s| match Subscription::parse(s) {
                Subscription::Shared(name) => name,
                Subscription::Fanout(_) => self.funnel.clone(),
            })
            .collect();
        queues.sort();
        queues.dedup();
        self.transport.up(session.clone(), activity.consumers.len(), queues.len()).await;
        self.telemetry.connected.set(1);
    }

    /// Stop the session's activity and close it; results stay buffered.
    async fn pause(&self, session: &Session, activity: Option<Activity>) {
        self.transport.down().await;
        self.telemetry.connected.set(0);
        if let Some(activity) = activity {
            activity.stop.cancel();
        }
        self.publisher.detach();
        session.close().await;
    }

    /// SIGHUP: reload the settings; on success apply them without dropping work.
    async fn reload(&mut self, session: &Arc<Session>, activity: Activity) -> Activity {
        // Reading files (and, for `{ecs_task_id}`, asking the metadata endpoint) blocks: on
        // the blocking pool, so the runtime thread keeps the transport and checks going.
        let sources = self.sources.clone();
        let loaded = tokio::task::spawn_blocking(move || Loaded::load(&sources)).await;
        let loaded = match loaded.map_err(|e| e.to_string()).and_then(|r| r.map_err(|e| e.to_string())) {
            Ok(loaded) => loaded,
            Err(error) => {
                tracing::error!(%error, "reload failed; keeping the running configuration");
                return activity;
            }
        };
        let mut settings = match loaded.validate() {
            Ok(settings) => settings,
            Err(failures) => {
                for f in &failures {
                    tracing::error!(key = %f.key, message = %f.message, "reload: invalid configuration");
                }
                tracing::error!("reload failed; keeping the running configuration");
                return activity;
            }
        };
        if settings.client.name != self.settings.client.name {
            tracing::warn!("reload: client.name cannot change without a restart; keeping the old name");
            settings.client.name.clone_from(&self.settings.client.name);
        }
        let mut executor_config = executor_settings(&settings, &self.sources.env, &self.telemetry);
        deep_merge_into(&mut executor_config.client, &{
            let mut keep = Object::new();
            keep.insert("name".into(), self.settings.client.name.clone().into());
            keep
        });
        settings.client.attributes.clone_from(&executor_config.client);
        // The brokers and the `concierge` scope (ack mode, timeouts, buffer, drain) take effect
        // at the next start; of the latter only the built-in slots change now, with the
        // executor's.
        settings.brokers = std::mem::take(&mut self.settings.brokers);
        let builtin_concurrency = settings.concierge.builtin_concurrency;
        settings.concierge = ConciergeSettings { builtin_concurrency, ..self.settings.concierge.clone() };
        let old_subscriptions = self.subscriptions().to_vec();
        self.executor.reconfigure(executor_config);
        self.settings = settings;
        // Removed fanout subscriptions unbound from the funnel, the new consumers started,
        // then the old ones stopped (with the keepalive timer and the schedule): a
        // subscription queue is auto-delete, and stopped first, a queue this replica alone
        // consumed went away with the requests in it, and those published until the new
        // consumer declared it again were unroutable (the funnel too, when its last fanout
        // went). Requests still waiting for an execution slot are handed back to their queues
        // (nacked with requeue), and so are those the old consumers receive until the broker
        // confirms their cancel; they come back through the new consumers. Running checks
        // finish and publish. Unacknowledged requests stay valid on the channel, which stays
        // open — unless a cancel is not confirmed: then it reconnects.
        let new_subscriptions = self.subscriptions().to_vec();
        for gone in old_subscriptions.iter().filter(|s| !new_subscriptions.contains(s)) {
            if let Subscription::Fanout(exchange) = Subscription::parse(gone)
                && let Err(error) = session.unbind_fanout(&self.funnel, &exchange).await
            {
                tracing::warn!(%error, "reload: could not unbind a removed subscription");
            }
        }
        let stop = CancellationToken::new();
        let consumers = match self.start_consumers(session, &stop).await {
            Ok(c) => c,
            Err(error) => {
                tracing::warn!(%error, "reload: subscribing failed; reconnecting");
                session.broken.cancel();
                Vec::new()
            }
        };
        activity.stop.cancel();
        if !session.cancel_consumers(&activity.consumers).await {
            tracing::warn!("reload: the broker did not confirm a consumer's cancel; reconnecting");
            session.broken.cancel();
        }
        self.start_keepalives(session, &stop);
        self.start_schedule(&stop);
        tracing::info!(subscriptions = ?new_subscriptions, "configuration reloaded");
        let activity = Activity { stop, consumers };
        if let Some(session) = self.transport.session().await {
            self.transport_up(&session, &activity).await;
        }
        activity
    }

    /// Let running checks finish, publish their results and the deregistration, and wait
    /// for the broker's confirms, all within `concierge.drain_grace`.
    async fn drain(&self, ever_connected: bool) {
        let grace = Duration::from_secs_f64(self.settings.concierge.drain_grace.max(0.0));
        let deadline = tokio::time::Instant::now() + grace;
        let tracker = self.pipeline.tracker();
        tracker.close();
        tracing::info!(running = tracker.len(), grace = ?grace, "draining");
        let checks_deadline = deadline.checked_sub(DRAIN_RESERVE).unwrap_or(deadline);
        if tokio::time::timeout_at(checks_deadline, tracker.wait()).await.is_err() {
            tracing::warn!(running = tracker.len(), "checks still running at the end of the drain grace");
        }
        if ever_connected && self.settings.client.deregister {
            let payload = deregistration(&self.settings.client, now_epoch());
            let confirmed = self.publisher.submit(payload.to_bytes());
            let wait = tokio::time::timeout_at(deadline, confirmed).await;
            if !matches!(wait, Ok(Ok(true))) {
                tracing::warn!("deregistration was not confirmed by the broker before the grace ran out");
            }
        }
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        if !self.publisher.flushed(remaining).await {
            tracing::warn!(unpublished = self.publisher.pending(), "results not confirmed by the broker are lost");
        }
    }
}

/// The deregistration result: `{handler: "deregistration", status: 1}` deep-merged with
/// `client.deregistration`, then `name`, `output`, `issued`, `executed` forced.
pub fn deregistration(client: &ClientSettings, now: i64) -> ResultPayload {
    let mut check = Object::new();
    check.insert("handler".into(), "deregistration".into());
    check.insert("status".into(), 1.into());
    if let Some(Value::Object(extra)) = client.attributes.get("deregistration") {
        deep_merge_into(&mut check, extra);
    }
    check.insert("name".into(), "deregistration".into());
    check.insert("output".into(), DEREGISTRATION_OUTPUT.into());
    check.insert("issued".into(), now.into());
    check.insert("executed".into(), now.into());
    ResultPayload::new(&client.name, check, client.signature.as_deref())
}

/// The keepalive document, now, from the client settings as they are (after reloads), with
/// the replica's load as the `concierge` attribute (for `concierge autoscale`; sensu-server
/// keeps a client's attributes as they come).
fn keepalive(executor: &Executor) -> Vec<u8> {
    // Among the client's attributes, so `version` and `timestamp` still come last, as Sensu's.
    let mut client = executor.client();
    client.insert(crate::telemetry::LOAD_ATTRIBUTE.into(), serde_json::to_value(executor.load()).unwrap_or_default());
    serde_json::to_vec(&keepalive_payload(&client, now_epoch())).unwrap_or_default()
}

/// Feed a subscription queue's requests into the pipeline until `stop` or the session breaks.
async fn consume(mut inbox: Inbox, pipeline: Arc<Pipeline>, broken: CancellationToken, stop: CancellationToken) {
    loop {
        let next = tokio::select! {
            () = stop.cancelled() => return hand_back(inbox, pipeline, broken).await,
            () = broken.cancelled() => return,
            next = inbox.next() => next,
        };
        match next {
            Some(Ok(incoming)) => pipeline.receive(inbox.queue(), incoming, &stop),
            Some(Err(error)) => {
                tracing::warn!(queue = %inbox.queue(), %error, "consumer failed");
                broken.cancel();
                return;
            }
            None => {
                if !stop.is_cancelled() {
                    tracing::warn!(queue = %inbox.queue(), "consumer cancelled by the broker; reconnecting");
                    broken.cancel();
                }
                return;
            }
        }
    }
}

/// Stopped (a reload or the drain cancels the consumer next): what still arrives until the
/// broker confirms the cancel goes back to the queue — a ticket dropped unsettled requeues
/// its message — so nothing stays unacknowledged on the channel, which a reload keeps open.
/// Held until the cancel is confirmed: handed back earlier, a message could come straight
/// back to this consumer. Consumed without acks, a message is the client's already: it runs.
/// Bounded, in case the cancel is never confirmed (a reload then reconnects).
async fn hand_back(mut inbox: Inbox, pipeline: Arc<Pipeline>, broken: CancellationToken) {
    let mut held = Vec::new();
    let rest = async {
        while let Some(Ok(incoming)) = inbox.next().await {
            if incoming.ticket.acknowledged() {
                tracing::debug!(queue = %inbox.queue(), "a request arrived while stopping; handed back");
                held.push(incoming);
            } else {
                pipeline.receive(inbox.queue(), incoming, &CancellationToken::new());
            }
        }
    };
    tokio::select! {
        () = rest => {}
        () = broken.cancelled() => {}
        () = tokio::time::sleep(Duration::from_secs(10)) => {}
    }
    drop(held);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn back_off_is_sensu_s() {
        let secs: Vec<u64> = (1..=12).map(|a| reconnect_delay(a).as_secs()).collect();
        assert_eq!(secs, [2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 20, 20]);
    }

    // Spec §4.3 and §7 item 6.
    #[test]
    fn deregistration_payload() {
        let client = ClientSettings::from_attributes(
            json!({"name": "i-424242", "deregistration": {"handler": "DEREGISTER_HANDLER", "handlers": ["a"]}})
                .as_object()
                .cloned()
                .unwrap(),
        );
        let payload = deregistration(&client, 1575000000);
        assert_eq!(
            String::from_utf8(payload.to_bytes()).unwrap(),
            r#"{"client":"i-424242","check":{"handler":"DEREGISTER_HANDLER","status":1,"handlers":["a"],"name":"deregistration","output":"client initiated deregistration","issued":1575000000,"executed":1575000000}}"#
        );
        let plain =
            deregistration(&ClientSettings::from_attributes(json!({"name": "x"}).as_object().cloned().unwrap()), 1);
        assert_eq!(
            String::from_utf8(plain.to_bytes()).unwrap(),
            r#"{"client":"x","check":{"handler":"deregistration","status":1,"name":"deregistration","output":"client initiated deregistration","issued":1,"executed":1}}"#
        );
    }
}
