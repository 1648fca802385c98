//! Concierge's own figures, in one registry (prometheus-client), exported as Prometheus
//! text on `/metrics` and, optionally, as CloudWatch Embedded Metric Format lines.
//!
//! These are the figures to scale a fleet on. Two gauges are meant to drive a scaling
//! policy on their own:
//! * `concierge_execution_slots_busy_ratio`: how full the fuller of the two slot pools is
//!   (busy command slots / command slots, or busy built-in slots / built-in slots; 0–1);
//! * `concierge_lag_p95_seconds`: the 95th percentile of `executed − issued` over the
//!   last minute (how late checks start compared with when the server asked).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// Labels of a check outcome.
pub type CheckLabels = Vec<(&'static str, String)>;

/// The labels of the figures every check updates (`kind`, `status`): static strings, so
/// counting a check allocates nothing.
pub type KindStatus = [(&'static str, &'static str); 2];
/// `kind` alone.
pub type Kind = [(&'static str, &'static str); 1];

/// How far back the lag percentile looks.
const LAG_WINDOW: Duration = Duration::from_secs(60);

/// The keepalive attribute carrying a replica's [`Load`].
pub const LOAD_ATTRIBUTE: &str = "concierge";

/// A replica's load as its keepalives carry it (the `concierge` attribute), for
/// `concierge autoscale`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Load {
    /// How full the fuller slot pool is (0–1).
    pub busy_ratio: f64,
    /// Busy slots, both pools.
    pub busy: usize,
    /// Slots, both pools.
    pub slots: usize,
    /// Command slots (the spawn limit): what a fleet of command checks can run at once.
    #[serde(default)]
    pub command_slots: usize,
    /// p95 of the lag over the last minute, seconds.
    pub lag_p95: f64,
}

/// Every figure Concierge exports.
pub struct Telemetry {
    /// Checks run, by `kind` (command, http, dns, tls, courier) and `status`.
    pub checks: Family<KindStatus, Counter>,
    /// Check duration, by kind.
    pub duration: Family<Kind, Histogram>,
    /// `executed − issued` of each request, seconds.
    pub lag: Histogram,
    /// Time a request waited for an execution slot, seconds.
    pub queue_wait: Histogram,
    /// Executions running, by kind (`command`, `builtin`).
    pub in_flight: Family<CheckLabels, Gauge>,
    /// Execution slots, by kind.
    pub slots: Family<CheckLabels, Gauge>,
    /// How full the fuller slot pool is.
    pub busy_ratio: Gauge<f64, AtomicU64>,
    /// p95 of the lag over the last minute.
    pub lag_p95: Gauge<f64, AtomicU64>,
    /// Check requests received from subscriptions.
    pub requests: Counter,
    /// Requests that arrived redelivered (another replica died or handed them back).
    pub redelivered: Counter,
    /// Malformed messages rejected, by reason.
    pub rejected: Family<CheckLabels, Counter>,
    /// Requests handed back at drain.
    pub handed_back: Counter,
    /// Requests acknowledged (once their result was confirmed, or they needed none).
    pub acked: Counter,
    /// `basic.ack` frames sent for them (one with `multiple` acknowledges many).
    pub ack_frames: Counter,
    /// Requests dropped because the same check was still running.
    pub duplicates_dropped: Counter,
    /// Results confirmed by the broker.
    pub results_published: Counter,
    /// Results waiting for the broker (buffered or in flight).
    pub results_buffered: Gauge,
    /// Results dropped because the buffer was full.
    pub results_dropped: Counter,
    /// Results the broker refused (nacked); each is published again.
    pub results_nacked: Counter,
    /// Publish → confirm latency, seconds.
    pub confirm_latency: Histogram,
    /// Reconnections after a lost session.
    pub reconnects: Counter,
    /// Keepalives confirmed.
    pub keepalives: Counter,
    /// 1 while both broker connections are up.
    pub connected: Gauge,
    /// Broker connections the broker blocks (`connection.blocked`: a resource alarm), 0–2.
    pub blocked: Gauge,
    /// Results received on the local socket and HTTP API.
    pub local_results: Counter,
    /// Plugin command lines run, by `plugin` and `runner` (`native`, `fork`, `unknown`).
    pub plugin_runs: Family<CheckLabels, Counter>,
    recent_lags: Mutex<VecDeque<(Instant, f64)>>,
    /// The `checks` and `duration` series of each kind seen, kept at hand: a label set looked
    /// up in a family is hashed (SipHash) every time.
    kinds: Mutex<Vec<KindFigures>>,
}

/// One kind's series in `checks` (by status: ok, warning, critical, unknown, made when first
/// counted) and `duration`; shared with the families, which export them.
struct KindFigures {
    kind: &'static str,
    by_status: [Option<Counter>; 4],
    duration: Histogram,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    /// A fresh registry with every figure registered.
    pub fn new() -> Self {
        let duration_buckets = || Histogram::new(exponential_buckets(0.001, 2.0, 16));
        Self {
            checks: Family::default(),
            duration: Family::new_with_constructor(duration_buckets),
            lag: Histogram::new([0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0]),
            queue_wait: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            in_flight: Family::default(),
            slots: Family::default(),
            busy_ratio: Gauge::default(),
            lag_p95: Gauge::default(),
            requests: Counter::default(),
            redelivered: Counter::default(),
            rejected: Family::default(),
            handed_back: Counter::default(),
            acked: Counter::default(),
            ack_frames: Counter::default(),
            duplicates_dropped: Counter::default(),
            results_published: Counter::default(),
            results_buffered: Gauge::default(),
            results_dropped: Counter::default(),
            results_nacked: Counter::default(),
            confirm_latency: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            reconnects: Counter::default(),
            keepalives: Counter::default(),
            connected: Gauge::default(),
            blocked: Gauge::default(),
            local_results: Counter::default(),
            plugin_runs: Family::default(),
            kinds: Mutex::default(),
            recent_lags: Mutex::new(VecDeque::new()),
        }
    }

    fn registry(&self) -> Registry {
        let mut r = Registry::with_prefix("concierge");
        r.register("checks", "Checks run, by kind and status", self.checks.clone());
        r.register("check_duration_seconds", "Check duration, by kind", self.duration.clone());
        r.register("lag_seconds", "executed - issued of each check request", self.lag.clone());
        r.register("queue_wait_seconds", "Time a request waited for an execution slot", self.queue_wait.clone());
        r.register("executions_in_flight", "Executions running, by kind", self.in_flight.clone());
        r.register("execution_slots", "Execution slots, by kind", self.slots.clone());
        r.register(
            "execution_slots_busy_ratio",
            "Busy execution slots / all slots (scale on this)",
            self.busy_ratio.clone(),
        );
        r.register(
            "lag_p95_seconds",
            "95th percentile of the lag over the last minute (or scale on this)",
            self.lag_p95.clone(),
        );
        r.register("requests", "Check requests received from subscriptions", self.requests.clone());
        r.register("requests_redelivered", "Requests that arrived redelivered", self.redelivered.clone());
        r.register("requests_rejected", "Malformed messages rejected, by reason", self.rejected.clone());
        r.register("requests_handed_back", "Requests handed back (requeued) at drain", self.handed_back.clone());
        r.register("requests_acked", "Requests acknowledged to the broker", self.acked.clone());
        r.register(
            "ack_frames",
            "basic.ack frames sent (one with multiple acknowledges many requests)",
            self.ack_frames.clone(),
        );
        r.register(
            "requests_dropped_in_progress",
            "Requests dropped because the check was still running",
            self.duplicates_dropped.clone(),
        );
        r.register("results_published", "Results confirmed by the broker", self.results_published.clone());
        r.register("results_buffered", "Results waiting for the broker", self.results_buffered.clone());
        r.register("results_dropped", "Results dropped because the buffer was full", self.results_dropped.clone());
        r.register(
            "results_nacked",
            "Results the broker refused (nacked), each published again",
            self.results_nacked.clone(),
        );
        r.register("publish_confirm_seconds", "Publish to broker confirm latency", self.confirm_latency.clone());
        r.register("reconnects", "Reconnections to the broker", self.reconnects.clone());
        r.register("keepalives", "Keepalives confirmed by the broker", self.keepalives.clone());
        r.register("transport_connected", "1 while connected to the broker", self.connected.clone());
        r.register(
            "transport_blocked",
            "Broker connections blocked by the broker (a resource alarm); publishes wait it out",
            self.blocked.clone(),
        );
        r.register("local_results", "Results received on the local socket and HTTP API", self.local_results.clone());
        r.register("plugin_runs", "Plugin command lines run, by plugin and runner", self.plugin_runs.clone());
        r
    }

    /// A check finished.
    pub fn check_finished(&self, kind: &'static str, status: i64, seconds: f64) {
        const STATUSES: [&str; 4] = ["ok", "warning", "critical", "unknown"];
        let index = usize::try_from(status).ok().filter(|s| *s < 3).unwrap_or(3);
        let mut kinds = self.kinds.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let at = match kinds.iter().position(|k| k.kind == kind) {
            Some(at) => at,
            None => {
                let duration = self.duration.get_or_create(&[("kind", kind)]).clone();
                kinds.push(KindFigures { kind, by_status: Default::default(), duration });
                kinds.len() - 1
            }
        };
        let figures = &mut kinds[at];
        figures.by_status[index]
            .get_or_insert_with(|| self.checks.get_or_create(&[("kind", kind), ("status", STATUSES[index])]).clone())
            .inc();
        figures.duration.observe(seconds);
    }

    /// A plugin command line ran natively, was forked, or could not run (`runner`).
    pub fn plugin_run(&self, plugin: &str, runner: &str) {
        self.plugin_runs.get_or_create(&vec![("plugin", plugin.to_string()), ("runner", runner.to_string())]).inc();
    }

    /// A request started `lag` seconds after it was issued.
    pub fn lag_observed(&self, lag: f64) {
        let lag = lag.max(0.0);
        self.lag.observe(lag);
        if let Ok(mut recent) = self.recent_lags.lock() {
            let now = Instant::now();
            recent.push_back((now, lag));
            while recent.front().is_some_and(|(t, _)| now.duration_since(*t) > LAG_WINDOW) || recent.len() > 10_000 {
                recent.pop_front();
            }
        }
    }

    /// Update the slot gauges from `(busy, slots)` of each pool; the replica's load now.
    ///
    /// The busy ratio is the fuller pool's: a replica whose command slots are all taken is
    /// saturated for command checks however many built-in slots wait (500 by default), so
    /// a ratio over all slots would hide it.
    pub fn slots_used(&self, commands: (usize, usize), builtins: (usize, usize)) -> Load {
        let set = |family: &Family<CheckLabels, Gauge>, kind: &str, v: usize| {
            family.get_or_create(&vec![("kind", kind.to_string())]).set(i64::try_from(v).unwrap_or(i64::MAX));
        };
        set(&self.in_flight, "command", commands.0);
        set(&self.in_flight, "builtin", builtins.0);
        set(&self.slots, "command", commands.1);
        set(&self.slots, "builtin", builtins.1);
        let ratio =
            |(busy, slots): (usize, usize)| if slots == 0 { 0.0 } else { (busy as f64 / slots as f64).min(1.0) };
        let busy_ratio = ratio(commands).max(ratio(builtins));
        self.busy_ratio.set(busy_ratio);
        self.refresh_lag_p95();
        Load {
            busy_ratio,
            busy: commands.0 + builtins.0,
            slots: commands.1 + builtins.1,
            command_slots: commands.1,
            lag_p95: self.lag_p95.get(),
        }
    }

    /// Recompute the windowed lag percentile.
    fn refresh_lag_p95(&self) {
        let now = Instant::now();
        let mut lags: Vec<f64> = match self.recent_lags.lock() {
            Ok(recent) => {
                recent.iter().filter(|(t, _)| now.duration_since(*t) <= LAG_WINDOW).map(|(_, l)| *l).collect()
            }
            Err(_) => Vec::new(),
        };
        if lags.is_empty() {
            self.lag_p95.set(0.0);
            return;
        }
        lags.sort_by(f64::total_cmp);
        let index = ((lags.len() as f64) * 0.95).ceil() as usize;
        self.lag_p95.set(lags[index.saturating_sub(1).min(lags.len() - 1)]);
    }

    /// Prometheus text exposition of everything.
    pub fn render(&self) -> String {
        self.refresh_lag_p95();
        let mut out = String::new();
        let _ = encode(&mut out, &self.registry());
        out
    }

    /// Print an EMF line on stdout every `period` until `stop` (ECS with awslogs turns
    /// them into CloudWatch metrics to scale on).
    pub async fn emf_ticker(
        self: std::sync::Arc<Self>,
        service: String,
        client: String,
        period: Duration,
        stop: tokio_util::sync::CancellationToken,
    ) {
        let mut ticker = tokio::time::interval(period);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticker.tick() => println!("{}", self.emf(&service, &client)),
            }
        }
    }

    /// One CloudWatch Embedded Metric Format document with the scaling figures.
    pub fn emf(&self, service: &str, client: &str) -> String {
        self.refresh_lag_p95();
        let timestamp = chrono::Utc::now().timestamp_millis();
        serde_json::json!({
            "_aws": {"Timestamp": timestamp, "CloudWatchMetrics": [{
                "Namespace": "Concierge",
                "Dimensions": [["Service"]],
                "Metrics": [
                    {"Name": "ExecutionSlotsBusyRatio", "Unit": "None"},
                    {"Name": "LagP95", "Unit": "Seconds"},
                    {"Name": "ResultsBuffered", "Unit": "Count"},
                    {"Name": "Connected", "Unit": "None"}
                ]
            }]},
            "Service": service,
            "Client": client,
            "ExecutionSlotsBusyRatio": self.busy_ratio.get(),
            "LagP95": self.lag_p95.get(),
            "ResultsBuffered": self.results_buffered.get(),
            "Connected": self.connected.get(),
        })
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text_with_scaling_gauges() {
        let t = Telemetry::new();
        t.check_finished("http", 0, 0.02);
        t.check_finished("command", 2, 1.5);
        for lag in [0.0, 1.0, 1.0, 2.0, 30.0] {
            t.lag_observed(lag);
        }
        let load = t.slots_used((3, 12), (1, 500));
        assert_eq!(load, Load { busy_ratio: 0.25, busy: 4, slots: 512, command_slots: 12, lag_p95: 30.0 });
        assert_eq!(t.slots_used((0, 2), (2, 2)).busy_ratio, 1.0, "a full built-in pool is a full replica");
        t.slots_used((3, 12), (1, 500));
        let text = t.render();
        assert!(text.contains("concierge_checks_total{kind=\"http\",status=\"ok\"} 1"), "{text}");
        assert!(text.contains("concierge_check_duration_seconds_count{kind=\"command\"} 1"));
        assert!(text.contains("concierge_lag_p95_seconds 30.0"));
        assert!(text.contains("concierge_execution_slots_busy_ratio 0.25"));
        assert!(text.contains("concierge_executions_in_flight{kind=\"command\"} 3"));
        assert!(text.ends_with("# EOF\n"));
        let emf: serde_json::Value = serde_json::from_str(&t.emf("probes", "p1")).unwrap();
        assert_eq!(emf["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Concierge");
        assert_eq!(emf["LagP95"], 30.0);
    }

    #[test]
    fn checks_counted_through_kept_series_show_in_the_families() {
        let t = Telemetry::new();
        for (kind, status) in
            [("http", 0), ("http", 0), ("http", 1), ("dns", 2), ("http", 7), ("http", -1), ("http", 2)]
        {
            t.check_finished(kind, status, 0.5);
        }
        let text = t.render();
        for series in [
            "concierge_checks_total{kind=\"http\",status=\"ok\"} 2",
            "concierge_checks_total{kind=\"http\",status=\"warning\"} 1",
            "concierge_checks_total{kind=\"http\",status=\"critical\"} 1",
            "concierge_checks_total{kind=\"http\",status=\"unknown\"} 2",
            "concierge_checks_total{kind=\"dns\",status=\"critical\"} 1",
            "concierge_check_duration_seconds_count{kind=\"http\"} 6",
            "concierge_check_duration_seconds_count{kind=\"dns\"} 1",
        ] {
            assert!(text.contains(series), "{series} in {text}");
        }
        assert!(!text.contains("kind=\"dns\",status=\"ok\""), "a status never counted is not exported");
    }
}
