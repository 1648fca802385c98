//! The autoscaler's decision, pure: Kubernetes' HPA arithmetic on the fleet's own signals.
//!
//! For each signal `desired = ceil(current × value / target)` (a ratio within 10 % of the
//! target keeps the current count, as the HPA's tolerance does); the recommendation is the
//! largest. Up at once, but at most by the step (default: double, at least +1); down only to
//! the largest recommendation of the whole stabilization window, so every recommendation in
//! it must have been lower; never past min/max. Stale signals are not signals.

use std::collections::VecDeque;

/// What the controller is told.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Fewest replicas.
    pub min: u64,
    /// Most replicas.
    pub max: u64,
    /// Busy ratio to hold each replica at (0–1).
    pub busy_target: f64,
    /// Waiting requests per replica to allow; `None`: the replicas' command slots.
    pub backlog_target: Option<f64>,
    /// Most replicas added at once; `None`: double (at least +1).
    pub step: Option<u64>,
    /// Seconds of recommendations a scale-down must agree with.
    pub window: u64,
}

/// The fleet now, as the controller read it. A signal is `None` when it is unknown or stale.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Signals {
    /// Replicas the orchestrator is asked for now.
    pub current: u64,
    /// Requests waiting in the fleet's queues.
    pub backlog: Option<u64>,
    /// Mean busy ratio of the replicas reporting.
    pub busy: Option<f64>,
    /// Replicas whose keepalives are fresh.
    pub reporting: usize,
    /// Mean command slots per reporting replica.
    pub slots: Option<f64>,
    /// Largest p95 lag among the reporting replicas, seconds.
    pub lag_p95: Option<f64>,
}

impl Signals {
    /// `backlog 12, busy 0.83 (3 replicas), lag p95 4.1 s`.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        parts.push(match self.backlog {
            Some(b) => format!("backlog {b}"),
            None => "backlog unknown".into(),
        });
        parts.push(match self.busy {
            Some(b) => format!("busy {b:.2} ({} replicas reporting)", self.reporting),
            None => "busy unknown (no fresh keepalives)".into(),
        });
        if let Some(lag) = self.lag_p95 {
            parts.push(format!("lag p95 {lag:.1} s"));
        }
        parts.join(", ")
    }
}

/// What one evaluation recommends.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The replicas now.
    pub current: u64,
    /// What each signal asks for: `(signal, replicas)`.
    pub wanted: Vec<(&'static str, u64)>,
    /// The largest of them (the raw recommendation), if any signal was there.
    pub recommendation: Option<u64>,
    /// Where to go, within the rules: equal to `current` to hold.
    pub to: u64,
    /// Why, in a few words.
    pub why: String,
}

impl Plan {
    /// Whether it moves.
    pub fn moves(&self) -> bool {
        self.to != self.current
    }
}

/// The tolerance around a target inside which the count holds (the HPA's 0.1).
pub const TOLERANCE: f64 = 0.1;

/// `ceil(current × ratio)`, holding within the tolerance; `ratio` is the signal over its
/// target. (A hair below the next whole number, so that 5 × 1.2 is 6, not 7.)
fn wanted(current: u64, ratio: f64) -> u64 {
    if !ratio.is_finite() || ratio < 0.0 {
        return current;
    }
    if current > 0 && (ratio - 1.0).abs() <= TOLERANCE {
        return current;
    }
    let desired = (current.max(1) as f64 * ratio - 1e-9).ceil().max(0.0);
    if desired >= u64::MAX as f64 { u64::MAX } else { desired as u64 }
}

/// The recommendations of the stabilization window, with their times.
#[derive(Debug, Default, Clone)]
pub struct Autoscaler {
    history: VecDeque<(i64, u64)>,
    started: Option<i64>,
}

impl Autoscaler {
    /// Evaluate `signals` at `now` (epoch seconds) under `policy`.
    pub fn evaluate(&mut self, policy: &Policy, signals: &Signals, now: i64) -> Plan {
        let started = *self.started.get_or_insert(now);
        let current = signals.current;
        let mut wanted_by = Vec::new();
        if let Some(busy) = signals.busy.filter(|_| policy.busy_target > 0.0) {
            // As the HPA does for pods without metrics: replicas asked for but not reporting
            // yet count as idle when deciding to grow, as full when deciding to shrink, so a
            // move just made is not made again before its replicas are heard from.
            let reporting = signals.reporting as f64;
            let missing = current.saturating_sub(signals.reporting as u64) as f64;
            let all = (reporting + missing).max(1.0);
            let up = wanted(current, busy * reporting / all / policy.busy_target);
            let down = wanted(current, (busy * reporting + missing) / all / policy.busy_target);
            wanted_by.push(("busy", if up > current { up } else { down.min(current) }));
        }
        if let Some(backlog) = signals.backlog {
            let per_replica = policy.backlog_target.or(signals.slots).filter(|t| *t > 0.0);
            if let Some(per_replica) = per_replica {
                // The HPA's average-value form: what the waiting requests need, spread over
                // replicas taking `per_replica` each.
                let ratio = backlog as f64 / (current.max(1) as f64 * per_replica);
                wanted_by.push(("backlog", if backlog == 0 { 0 } else { wanted(current, ratio) }));
            }
        }
        let recommendation = wanted_by.iter().map(|(_, n)| *n).max();
        let plan = |to: u64, why: String| Plan { current, wanted: wanted_by.clone(), recommendation, to, why };
        let Some(recommendation) = recommendation else {
            // Blind: what comes after is watched afresh, a whole window before any scale-down.
            self.history.clear();
            self.started = None;
            return plan(current.clamp(policy.min, policy.max), "no fresh signals: holding".into());
        };
        self.history.push_back((now, recommendation));
        while self.history.front().is_some_and(|(t, _)| now - t > i64::try_from(policy.window).unwrap_or(i64::MAX)) {
            self.history.pop_front();
        }
        if current < policy.min {
            return plan(policy.min, format!("below the min {}", policy.min));
        }
        if current > policy.max {
            return plan(policy.max, format!("above the max {}", policy.max));
        }
        if recommendation > current {
            let step = policy.step.unwrap_or(current.max(1));
            let to = recommendation.min(current.saturating_add(step.max(1))).min(policy.max);
            let why = if to == current {
                format!("wants {recommendation}, at the max {}", policy.max)
            } else if to < recommendation.min(policy.max) {
                format!("wants {recommendation}, up by at most {} at once", to - current)
            } else {
                format!("wants {recommendation}")
            };
            return plan(to, why);
        }
        // Down only to what the whole window asked for at most, once the window is known.
        let stabilized = self.history.iter().map(|(_, n)| *n).max().unwrap_or(recommendation);
        if stabilized < current {
            let window = i64::try_from(policy.window).unwrap_or(i64::MAX);
            if now - started < window {
                return plan(
                    current,
                    format!("wants {stabilized}, but has watched {} s of the {window} s window", now - started),
                );
            }
            let to = stabilized.max(policy.min);
            if to == current {
                return plan(current, format!("wants {stabilized}, at the min {}", policy.min));
            }
            return plan(to, format!("every recommendation of the last {window} s was at most {stabilized}"));
        }
        if recommendation < current {
            return plan(current, format!("wants {recommendation}, but {stabilized} within the window"));
        }
        plan(current, "steady".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy { min: 1, max: 10, busy_target: 0.6, backlog_target: Some(10.0), step: None, window: 300 }
    }

    fn signals(current: u64, busy: Option<f64>, backlog: Option<u64>) -> Signals {
        Signals { current, busy, backlog, reporting: current as usize, slots: Some(10.0), lag_p95: None }
    }

    /// Run a sequence of `(seconds, current, busy, backlog)` and return each plan's `to`.
    fn run(policy: &Policy, steps: &[(i64, u64, Option<f64>, Option<u64>)]) -> Vec<u64> {
        let mut a = Autoscaler::default();
        steps.iter().map(|(t, c, b, q)| a.evaluate(policy, &signals(*c, *b, *q), 1_000_000 + t).to).collect()
    }

    #[test]
    fn hpa_semantics_per_signal_and_the_largest_wins() {
        let p = policy();
        // busy 0.9 on 4 replicas at target 0.6: ceil(4 × 1.5) = 6.
        assert_eq!(run(&p, &[(0, 4, Some(0.9), Some(0))]), vec![6]);
        // Within 10 % of the target: steady.
        assert_eq!(run(&p, &[(0, 4, Some(0.65), Some(0))]), vec![4]);
        // Backlog 70 at 10 per replica asks 7, busy asks 4: 7 — but one step doubles 4 at most → 7 fits (≤ 8).
        assert_eq!(run(&p, &[(0, 4, Some(0.6), Some(70))]), vec![7]);
        let mut a = Autoscaler::default();
        let plan = a.evaluate(&p, &signals(4, Some(0.6), Some(70)), 0);
        assert_eq!(plan.wanted, vec![("busy", 4), ("backlog", 7)]);
        assert_eq!(plan.why, "wants 7");
    }

    #[test]
    fn up_is_limited_by_the_step_and_the_max() {
        let p = policy();
        // Wants 40 from 2: double → 4, then 8, then the max 10.
        assert_eq!(
            run(&p, &[(0, 2, None, Some(400)), (15, 4, None, Some(400)), (30, 8, None, Some(400))]),
            vec![4, 8, 10]
        );
        let p1 = Policy { step: Some(1), ..policy() };
        assert_eq!(run(&p1, &[(0, 2, None, Some(400))]), vec![3]);
        // From 0 (or 1), at least +1.
        assert_eq!(run(&p, &[(0, 1, Some(1.0), None)]), vec![2]);
        let mut a = Autoscaler::default();
        assert_eq!(a.evaluate(&p, &signals(10, Some(1.0), None), 0).why, "wants 17, at the max 10");
    }

    #[test]
    fn down_waits_for_the_whole_window() {
        let p = Policy { window: 60, ..policy() };
        // Idle from the start: nothing until the controller has watched a window, then at once to what the window wanted.
        let idle: Vec<_> = (0..=5).map(|i| (i * 15, 4, Some(0.0), Some(0))).collect();
        assert_eq!(run(&p, &idle), vec![4, 4, 4, 4, 1, 1]);
        // A busy moment inside the window holds the count up until it leaves the window.
        let steps = [
            (0, 4, Some(0.6), Some(0)),
            (15, 4, Some(0.0), Some(0)),
            (30, 4, Some(0.0), Some(0)),
            (45, 4, Some(0.0), Some(0)),
            (60, 4, Some(0.0), Some(0)),
            (75, 4, Some(0.0), Some(0)),
        ];
        assert_eq!(run(&p, &steps), vec![4, 4, 4, 4, 4, 1]);
        // Never below the min.
        let p2 = Policy { min: 2, window: 0, ..policy() };
        assert_eq!(run(&p2, &[(0, 4, Some(0.0), Some(0))]), vec![2]);
    }

    #[test]
    fn flapping_load_does_not_move_replicas_each_interval() {
        let p = Policy { window: 60, ..policy() };
        // Bursts of 20 s in 40, current 4: up when busy, never down in between.
        let mut a = Autoscaler::default();
        let mut current = 4;
        let mut moves = Vec::new();
        for i in 0..24 {
            let busy = if (i * 10) % 40 < 20 { 0.6 } else { 0.05 };
            let plan = a.evaluate(&p, &signals(current, Some(busy), Some(0)), i * 10);
            if plan.moves() {
                moves.push((i, plan.to));
                current = plan.to;
            }
        }
        assert!(moves.is_empty(), "{moves:?}");
    }

    #[test]
    fn replicas_not_heard_from_yet_do_not_make_the_same_move_twice() {
        let p = policy();
        let mut a = Autoscaler::default();
        // Asked for 4, two report busy 1.0: as if 4 × 0.5 → busy wants ceil(4 × 0.83) = 4: hold.
        let s = Signals { current: 4, busy: Some(1.0), reporting: 2, ..signals(4, None, None) };
        assert_eq!(a.evaluate(&p, &s, 0).wanted, vec![("busy", 4)]);
        // Shrinking counts them as full: two idle reporting of 4 → (0 + 2) / 4 = 0.5 → hold.
        let s = Signals { current: 4, busy: Some(0.0), reporting: 2, ..signals(4, None, None) };
        assert_eq!(Autoscaler::default().evaluate(&p, &s, 0).wanted, vec![("busy", 4)]);
        // 5 × 0.72 / 0.6 is 6, not 7.
        assert_eq!(run(&p, &[(0, 5, Some(0.72), None)]), vec![6]);
        // The backlog has the same tolerance: 42 waiting for 4 × 10 holds.
        assert_eq!(run(&p, &[(0, 4, None, Some(42))]), vec![4]);
    }

    #[test]
    fn a_blind_spell_restarts_the_window() {
        let p = Policy { window: 60, ..policy() };
        // Idle for a whole window, then blind, then idle again: the window starts over.
        let steps = [
            (0, 4, Some(0.0), Some(0)),
            (70, 4, None, None),
            (80, 4, Some(0.0), Some(0)),
            (150, 4, Some(0.0), Some(0)),
        ];
        assert_eq!(run(&p, &steps), vec![4, 4, 4, 1]);
    }

    #[test]
    fn bounds_and_missing_signals() {
        let p = Policy { min: 2, max: 5, ..policy() };
        assert_eq!(run(&p, &[(0, 1, Some(0.6), None)]), vec![2]);
        assert_eq!(run(&p, &[(0, 7, Some(0.6), None)]), vec![5]);
        let mut a = Autoscaler::default();
        let plan = a.evaluate(&p, &signals(3, None, None), 0);
        assert_eq!((plan.to, plan.why.as_str()), (3, "no fresh signals: holding"));
        // The backlog target defaults to the replicas' slots.
        let p = Policy { backlog_target: None, ..policy() };
        let mut a = Autoscaler::default();
        assert_eq!(a.evaluate(&p, &signals(1, None, Some(25)), 0).to, 2);
        let mut s = signals(1, None, Some(25));
        s.slots = Some(5.0);
        assert_eq!(Autoscaler::default().evaluate(&p, &s, 0).to, 2, "doubling at most: wants 5");
    }
}
