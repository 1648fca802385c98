//! What the controller has heard of the fleet: each replica's load from its keepalives (the
//! `concierge` attribute), kept with the time it arrived, and turned into [`Signals`] with
//! what is stale left out.

use std::collections::HashMap;

use serde_json::Value;

use super::decide::Signals;
use crate::telemetry::Load;

/// Replicas remembered at most (a flood of made-up client names cannot grow it further).
pub const MAX_REPLICAS: usize = 10_000;

/// The fleet's replicas as their keepalives describe them.
#[derive(Debug, Default)]
pub struct Readings {
    /// The fleet's queues: a client subscribing to one of them is a replica.
    queues: Vec<String>,
    loads: HashMap<String, (Load, i64)>,
}

impl Readings {
    /// Readings of the replicas subscribed to `queues`.
    pub fn new(queues: &[String]) -> Self {
        Self { queues: queues.to_vec(), loads: HashMap::new() }
    }

    /// Take a keepalive that arrived at `now`: kept when it is a replica's (it subscribes to
    /// one of the queues) and carries a load; anything else is not about this fleet.
    pub fn keepalive(&mut self, body: &[u8], now: i64) -> bool {
        let Ok(keepalive) = serde_json::from_slice::<Value>(body) else { return false };
        let Some(name) = keepalive.get("name").and_then(Value::as_str) else { return false };
        let member = keepalive
            .get("subscriptions")
            .and_then(Value::as_array)
            .is_some_and(|subs| subs.iter().filter_map(Value::as_str).any(|s| self.queues.iter().any(|q| q == s)));
        let load = keepalive
            .get(crate::telemetry::LOAD_ATTRIBUTE)
            .and_then(|l| serde_json::from_value::<Load>(l.clone()).ok());
        let (true, Some(load)) = (member, load) else { return false };
        if !load.busy_ratio.is_finite() || !load.lag_p95.is_finite() || !(0.0..=1.0).contains(&load.busy_ratio) {
            return false;
        }
        if self.loads.len() >= MAX_REPLICAS && !self.loads.contains_key(name) {
            return false;
        }
        self.loads.insert(name.to_string(), (load, now));
        true
    }

    /// Forget replicas not heard of for `max_age` seconds.
    pub fn prune(&mut self, now: i64, max_age: i64) {
        self.loads.retain(|_, (_, at)| now - *at <= max_age);
    }

    /// The signals at `now`: loads younger than `max_age` seconds, the backlog as read.
    pub fn signals(&self, current: u64, backlog: Option<u64>, now: i64, max_age: i64) -> Signals {
        let fresh: Vec<&Load> = self.loads.values().filter(|(_, at)| now - *at <= max_age).map(|(l, _)| l).collect();
        let n = fresh.len();
        let mean = |f: &dyn Fn(&Load) -> f64| (n > 0).then(|| fresh.iter().map(|l| f(l)).sum::<f64>() / n as f64);
        Signals {
            current,
            backlog,
            busy: mean(&|l| l.busy_ratio),
            reporting: n,
            slots: mean(&|l| l.command_slots as f64).filter(|s| *s > 0.0),
            lag_p95: fresh.iter().map(|l| l.lag_p95).reduce(f64::max),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keepalive(name: &str, subs: &[&str], busy: f64) -> Vec<u8> {
        serde_json::to_vec(&json!({"name": name, "subscriptions": subs, "version": "1.9.0",
            "concierge": {"busy_ratio": busy, "busy": 1, "slots": 504, "command_slots": 4, "lag_p95": 2.0}}))
        .unwrap()
    }

    #[test]
    fn only_fresh_replicas_of_the_fleet_count() {
        let mut r = Readings::new(&["roundrobin:load".to_string()]);
        assert!(r.keepalive(&keepalive("probe-1", &["roundrobin:load"], 1.0), 100));
        assert!(r.keepalive(&keepalive("probe-2", &["roundrobin:load", "linux"], 0.5), 110));
        assert!(!r.keepalive(&keepalive("web-1", &["linux"], 1.0), 110), "not a replica of this fleet");
        assert!(!r.keepalive(b"{not json", 110));
        assert!(
            !r.keepalive(
                &serde_json::to_vec(&json!({"name": "old", "subscriptions": ["roundrobin:load"]})).unwrap(),
                110
            ),
            "no load"
        );
        assert!(!r.keepalive(&keepalive("probe-3", &["roundrobin:load"], 7.0), 110), "a ratio above 1");
        let s = r.signals(2, Some(5), 120, 40);
        assert_eq!((s.busy, s.reporting, s.slots, s.lag_p95), (Some(0.75), 2, Some(4.0), Some(2.0)));
        // probe-1's last keepalive is 45 s old at 145: stale.
        let s = r.signals(2, Some(5), 145, 40);
        assert_eq!((s.busy, s.reporting), (Some(0.5), 1));
        let s = r.signals(2, None, 200, 40);
        assert_eq!((s.busy, s.reporting, s.backlog), (None, 0, None));
        r.prune(200, 40);
        assert!(r.loads.is_empty());
    }
}
