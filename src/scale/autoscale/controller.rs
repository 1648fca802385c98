//! The controller's rounds: read the signals (queue depths by passive declare, the replicas'
//! loads from their keepalives, the service's replicas), decide (HPA arithmetic), apply
//! through the scheduler's core (same platforms, bounds, cooldown), report each move as a
//! Sensu result `autoscale_<service>`, and keep going through broker and platform outages
//! (one failing result per outage, back-off, no decision on stale data).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use std::sync::atomic::AtomicU64;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::decide::{Autoscaler, Plan, Policy, Signals};
use super::readings::Readings;
use crate::config::Settings;
use crate::scale::decide::Move;
use crate::scale::platform::{Platform, PlatformError};
use crate::scale::{Limits, Outcome, report, scale};
use crate::transport::KEEPALIVE_INTERVAL_SECS;
use crate::transport::observer::Observer;

/// How long one broker operation may take.
const BROKER_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest wait between rounds while something is failing.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Results kept for a broker that is down, at most.
const MAX_PENDING: usize = 16;

/// What the controller is told.
#[derive(Debug, Clone)]
pub struct Options {
    /// The service of the fleet.
    pub service: String,
    /// The decision's settings.
    pub policy: Policy,
    /// The fleet's round-robin queues.
    pub queues: Vec<String>,
    /// Time between rounds.
    pub interval: Duration,
    /// Seconds a move holds back the next one in the same direction.
    pub cooldown: u64,
    /// Decide and print, change nothing.
    pub dry_run: bool,
    /// The result's check name.
    pub check_name: String,
}

impl Options {
    /// Signals older than this are stale: two rounds, or two keepalives when rounds are
    /// shorter than the keepalive period (20 s, fixed by Sensu).
    pub fn max_age(&self) -> i64 {
        let round = self.interval.as_secs().max(1);
        i64::try_from(round.max(KEEPALIVE_INTERVAL_SECS).saturating_mul(2).saturating_add(1)).unwrap_or(i64::MAX)
    }
}

/// Keepalives as they arrive: (epoch seconds, body).
type Keepalives = mpsc::Receiver<(i64, Vec<u8>)>;

/// The figures of `/metrics`.
#[derive(Default)]
pub struct Metrics {
    backlog: Gauge,
    busy: Gauge<f64, AtomicU64>,
    lag: Gauge<f64, AtomicU64>,
    reporting: Gauge,
    current: Gauge,
    desired: Gauge,
    decisions: Family<Vec<(String, String)>, Counter>,
}

impl Metrics {
    /// A registry of them.
    pub fn registry(&self) -> Registry {
        let mut r = Registry::with_prefix("concierge_autoscale");
        r.register("backlog", "Requests waiting in the fleet's queues", self.backlog.clone());
        r.register("busy_ratio", "Mean busy ratio of the replicas reporting", self.busy.clone());
        r.register("lag_p95_seconds", "Largest p95 lag among the replicas reporting", self.lag.clone());
        r.register("replicas_reporting", "Replicas with fresh keepalives", self.reporting.clone());
        r.register("replicas_current", "Replicas the orchestrator is asked for", self.current.clone());
        r.register("replicas_desired", "Replicas the last round decided on", self.desired.clone());
        r.register("decisions", "Rounds, by outcome", self.decisions.clone());
        r
    }

    fn count(&self, outcome: &str) {
        self.decisions.get_or_create(&vec![("outcome".to_string(), outcome.to_string())]).inc();
    }
}

/// How the controller is doing, for `/healthz`.
#[derive(Debug, Clone, Default)]
pub struct Health {
    /// When the last round ended (epoch seconds).
    pub last_round: Option<i64>,
    /// What is failing, if anything.
    pub outage: Option<String>,
    /// The last decision's line.
    pub last_decision: Option<String>,
}

/// How one round ended.
#[derive(Debug)]
pub enum Round {
    /// Nothing to do (or only stale signals).
    Held(Plan, Signals),
    /// A move was asked of the platform.
    Moved(Outcome, Plan, Signals),
    /// A move was decided, not made.
    DryRun(Plan, Signals),
    /// The service could not be read.
    Blind(String),
}

impl Round {
    /// Exit code for `--once`: 0 held or scaled, 1 refused, 2 failed.
    pub fn status(&self) -> u8 {
        match self {
            Self::Held(..) | Self::DryRun(..) => 0,
            Self::Moved(outcome, ..) => outcome.status(),
            Self::Blind(_) => 2,
        }
    }

    /// One line: the decision, why, and the signals.
    pub fn line(&self, service: &str) -> String {
        match self {
            Self::Held(plan, signals) => {
                format!("AUTOSCALE OK: {service} holds at {}: {}; {}", plan.current, plan.why, signals.summary())
            }
            Self::Moved(outcome, plan, signals) => format!("{}: {}; {}", outcome.line(), plan.why, signals.summary()),
            Self::DryRun(plan, signals) => format!(
                "(dry run) AUTOSCALE: {service} {} → {}: {}; {}",
                plan.current,
                plan.to,
                plan.why,
                signals.summary()
            ),
            Self::Blind(why) => format!("AUTOSCALE FAILED: {service}: {why}"),
        }
    }
}

/// The controller.
pub struct Controller<P> {
    platform: P,
    settings: Settings,
    options: Options,
    autoscaler: Autoscaler,
    readings: Readings,
    watch: Option<(Observer, Keepalives)>,
    failures: u32,
    /// Results not delivered yet (the broker was down), oldest first.
    pending: std::collections::VecDeque<crate::proto::Object>,
    /// The status and kind of the last result sent about a move that was not made, so a
    /// refusal or failure repeated every round is reported once.
    last_unmade: Option<(u8, String)>,
    /// Shared with `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Shared with `/healthz`.
    pub health: Arc<Mutex<Health>>,
}

impl<P: Platform + Send + Sync> Controller<P> {
    /// A controller; it must reach the broker now (an unreachable broker at start is a
    /// settings problem, later it is an outage).
    pub async fn start(platform: P, settings: Settings, options: Options) -> Result<Self, String> {
        let readings = Readings::new(&options.queues);
        let mut controller = Self {
            platform,
            settings,
            options,
            autoscaler: Autoscaler::default(),
            readings,
            watch: None,
            failures: 0,
            pending: std::collections::VecDeque::new(),
            last_unmade: None,
            metrics: Arc::default(),
            health: Arc::default(),
        };
        controller.connect().await?;
        Ok(controller)
    }

    /// Watch the first broker that answers.
    async fn connect(&mut self) -> Result<(), String> {
        let mut problems = Vec::new();
        for broker in &self.settings.brokers {
            let opened = async {
                let observer = Observer::open(broker, &self.settings.client.name, BROKER_TIMEOUT).await?;
                let keepalives = observer.keepalives().await?;
                Ok::<_, crate::transport::session::TransportError>((observer, keepalives))
            };
            match opened.await {
                Ok(watch) => {
                    tracing::info!(broker = %watch.0.label, "autoscale: watching the broker");
                    self.watch = Some(watch);
                    return Ok(());
                }
                Err(error) => problems.push(error.to_string()),
            }
        }
        if problems.is_empty() {
            problems.push("no broker is configured (RABBITMQ_URL)".into());
        }
        Err(problems.join("; "))
    }

    /// The backlog of the fleet's queues, and whether the broker answered.
    async fn backlog(&mut self, now: i64) -> Result<u64, String> {
        if self.watch.as_ref().is_none_or(|(o, _)| o.is_broken()) {
            if let Some((observer, _)) = self.watch.take() {
                observer.close().await;
            }
            self.connect().await?;
        }
        let Some((observer, keepalives)) = self.watch.as_mut() else { return Err("not connected".into()) };
        while let Ok((arrived, body)) = keepalives.try_recv() {
            self.readings.keepalive(&body, arrived.min(now));
        }
        let mut backlog = 0u64;
        for queue in &self.options.queues {
            match observer.queue_state(queue).await {
                Ok(Some((messages, _consumers))) => backlog += u64::from(messages),
                Ok(None) => {}
                Err(error) => {
                    observer.broken.cancel();
                    return Err(error.to_string());
                }
            }
        }
        Ok(backlog)
    }

    /// One round.
    pub async fn round(&mut self) -> Round {
        let now = crate::proto::now_epoch();
        let service = self.options.service.clone();
        let backlog = self.backlog(now).await;
        let state = self.platform.read(&service).await;
        let outage = match (&backlog, &state) {
            (Err(broker), _) => Some(format!("cannot read the broker: {broker}")),
            (_, Err(platform)) => Some(format!("cannot read the service: {platform}")),
            _ => None,
        };
        self.outage(outage.clone(), now).await;
        if outage.is_none() && !self.pending.is_empty() {
            self.flush().await;
        }
        let max_age = self.options.max_age();
        self.readings.prune(now, max_age.saturating_mul(4));
        let current = match state {
            Ok(state) => state.replicas,
            Err(error) => return self.finish(Round::Blind(error.to_string()), now),
        };
        // Without the broker there is no fresh backlog and no keepalive: no decision is taken
        // on what is left of them.
        let signals = match backlog {
            Ok(backlog) => self.readings.signals(current, Some(backlog), now, max_age),
            Err(_) => Signals { current, ..Signals::default() },
        };
        self.observe(&signals);
        let plan = self.autoscaler.evaluate(&self.options.policy, &signals, now);
        self.metrics.desired.set(i64::try_from(plan.to).unwrap_or(i64::MAX));
        if !plan.moves() || (signals.backlog.is_none() && signals.busy.is_none()) {
            return self.finish(Round::Held(plan, signals), now);
        }
        if self.options.dry_run {
            return self.finish(Round::DryRun(plan, signals), now);
        }
        let policy = &self.options.policy;
        let limits = Limits { min: Some(policy.min), max: Some(policy.max), cooldown: self.options.cooldown };
        let outcome = scale(&self.platform, &service, Move::To(plan.to), limits, false).await;
        if matches!(outcome, Outcome::Failed { .. }) {
            // Back off as for an outage; the result says what failed.
            self.failures = self.failures.saturating_add(1);
        } else if outcome.status() == 0 {
            self.failures = 0;
        }
        // Recorded before it is reported: whoever sees the result sees the metric and health too.
        let round = self.finish(Round::Moved(outcome, plan, signals), now);
        self.report(&round).await;
        round
    }

    fn observe(&self, signals: &Signals) {
        let m = &self.metrics;
        m.backlog.set(signals.backlog.map_or(-1, |b| i64::try_from(b).unwrap_or(i64::MAX)));
        m.busy.set(signals.busy.unwrap_or(-1.0));
        m.lag.set(signals.lag_p95.unwrap_or(-1.0));
        m.reporting.set(i64::try_from(signals.reporting).unwrap_or(i64::MAX));
        m.current.set(i64::try_from(signals.current).unwrap_or(i64::MAX));
    }

    /// Record the round: metrics, health, one log line per decision.
    fn finish(&mut self, round: Round, now: i64) -> Round {
        let line = round.line(&self.options.service);
        let outcome = match &round {
            Round::Held(..) => "held",
            Round::DryRun(..) => "dry_run",
            Round::Blind(_) => "failed",
            Round::Moved(outcome, ..) => match outcome.status() {
                0 => "scaled",
                1 => "refused",
                _ => "failed",
            },
        };
        self.metrics.count(outcome);
        if !matches!(round, Round::Held(..)) {
            tracing::info!(service = %self.options.service, decision = %line, "autoscale decision");
        }
        if let Ok(mut health) = self.health.lock() {
            health.last_round = Some(now);
            if !matches!(round, Round::Held(..)) {
                health.last_decision = Some(line);
            }
        }
        round
    }

    /// Report an outage once when it starts, and once when it ends.
    async fn outage(&mut self, outage: Option<String>, _now: i64) {
        let was = self.health.lock().ok().and_then(|h| h.outage.clone());
        match (&was, &outage) {
            (None, Some(why)) => {
                self.failures = 1;
                tracing::warn!(service = %self.options.service, problem = %why, "autoscale: signals unreadable");
                let line = format!("AUTOSCALE FAILED: {}: {why}; holding until it answers", self.options.service);
                self.report_line(&line, 2, json!({})).await;
            }
            (Some(_), Some(_)) => self.failures = self.failures.saturating_add(1),
            (Some(_), None) => {
                self.failures = 0;
                let line = format!("AUTOSCALE OK: {}: signals readable again", self.options.service);
                tracing::info!(service = %self.options.service, "autoscale: signals readable again");
                self.report_line(&line, 0, json!({})).await;
            }
            (None, None) => {}
        }
        if let Ok(mut health) = self.health.lock() {
            health.outage = outage;
        }
    }

    /// Report a move as `autoscale_<service>`; a refusal or failure like the last one is
    /// not reported again.
    async fn report(&mut self, round: &Round) {
        let Round::Moved(outcome, plan, signals) = round else { return };
        let kind = match outcome {
            Outcome::Decided(d) => match &d.verdict {
                crate::scale::decide::Verdict::Refused(why) => {
                    why.split(|c: char| c.is_ascii_digit()).next().unwrap_or_default().to_string()
                }
                crate::scale::decide::Verdict::Scale { .. } => String::new(),
            },
            Outcome::Failed { error, .. } => format!("{error:?}").split('(').next().unwrap_or_default().to_string(),
            _ => String::new(),
        };
        let unmade = (outcome.status() != 0).then(|| (outcome.status(), kind));
        if unmade.is_some() && unmade == self.last_unmade {
            return;
        }
        self.last_unmade = unmade;
        let mut check = report::check(outcome, &self.options.check_name, "concierge autoscale");
        check.insert("output".into(), format!("{}\n", round.line(&self.options.service)).into());
        check.insert("signals".into(), signals_json(signals));
        check.insert("desired".into(), plan.recommendation.into());
        check.insert("wanted".into(), plan.wanted.iter().map(|(k, v)| ((*k).to_string(), Value::from(*v))).collect());
        self.deliver(check).await;
    }

    async fn report_line(&mut self, line: &str, status: u8, extra: Value) {
        let outcome =
            Outcome::Failed { service: self.options.service.clone(), error: PlatformError::Api(String::new()) };
        let mut check = report::check(&outcome, &self.options.check_name, "concierge autoscale");
        check.insert("output".into(), format!("{line}\n").into());
        check.insert("status".into(), status.into());
        if let Value::Object(extra) = extra {
            check.extend(extra);
        }
        self.deliver(check).await;
    }

    /// Deliver `check` after any result still waiting; what the broker does not take waits
    /// for the next round (at most [`MAX_PENDING`], the oldest dropped first).
    async fn deliver(&mut self, check: crate::proto::Object) {
        self.pending.push_back(check);
        while self.pending.len() > MAX_PENDING {
            self.pending.pop_front();
        }
        self.flush().await;
    }

    async fn flush(&mut self) {
        while let Some(check) = self.pending.front() {
            match report::deliver(&self.settings, check.clone()).await {
                Ok(_) => {
                    self.pending.pop_front();
                }
                Err(problem) => {
                    tracing::warn!(%problem, waiting = self.pending.len(), "autoscale: results wait for the broker");
                    return;
                }
            }
        }
    }

    /// The wait before the next round: the interval, doubled per failing round (at most
    /// five minutes).
    pub fn next_wait(&self) -> Duration {
        let doubling = 2u32.saturating_pow(self.failures.saturating_sub(1).min(16));
        if self.failures == 0 {
            self.options.interval
        } else {
            self.options.interval.checked_mul(doubling).unwrap_or(MAX_BACKOFF).min(MAX_BACKOFF)
        }
    }

    /// Rounds until `stop`.
    pub async fn run(mut self, stop: CancellationToken) {
        loop {
            let round = self.round().await;
            if self.options.dry_run && !matches!(round, Round::Held(..)) {
                use std::io::Write as _;
                let _ = writeln!(std::io::stdout(), "{}", round.line(&self.options.service));
            }
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(self.next_wait()) => {}
            }
        }
        if let Some((observer, _)) = self.watch.take() {
            observer.close().await;
        }
    }

    /// Collect keepalives for `period` without deciding (for `--once`).
    pub async fn listen_for(&mut self, period: Duration) {
        tokio::time::sleep(period).await;
    }
}

/// The signals as result attributes.
fn signals_json(signals: &Signals) -> Value {
    json!({
        "current": signals.current,
        "backlog": signals.backlog,
        "busy_ratio": signals.busy,
        "replicas_reporting": signals.reporting,
        "slots_per_replica": signals.slots,
        "lag_p95": signals.lag_p95,
    })
}
