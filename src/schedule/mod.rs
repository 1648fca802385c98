//! Standalone checks: the client-side scheduler (sensu 1.9.0 `schedule_checks`).
//!
//! Each eligible check gets its own task. Interval checks wait for their exact splay
//! and then fire every `interval` seconds; cron checks sleep until the next cron time
//! (local time) after each run. A subdued check is skipped and logged. Every firing
//! hands a copy of the definition, with `issued` set, to the `submit` callback, which
//! processes it exactly like a check request.

pub mod cron;
pub mod splay;
pub mod subdue;

use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::proto::validate::ScheduleSyntax;
use crate::proto::{Object, now_epoch, now_epoch_f64};

/// The schedule syntax check validation uses (`proto::validate::check_definition_failures`).
pub const SYNTAX: &Syntax = &Syntax;

/// Cron expressions and subdue times, as this layer parses them.
#[derive(Debug, Clone, Copy)]
pub struct Syntax;

impl ScheduleSyntax for Syntax {
    fn cron_valid(&self, expr: &str) -> bool {
        cron::is_valid(expr)
    }
    fn time_valid(&self, time: &str) -> bool {
        subdue::parse_time(time).is_some()
    }
}

/// When a standalone check fires.
#[derive(Debug, Clone)]
pub enum Timing {
    /// Every N seconds, after the splay.
    Interval(u64),
    /// At each time the cron expression matches.
    Cron(Box<croner::Cron>),
}

/// A check the scheduler runs.
#[derive(Debug, Clone)]
pub struct Scheduled {
    /// The definition as published (with `name`).
    pub definition: Object,
    /// When it fires.
    pub timing: Timing,
}

impl Scheduled {
    /// The check's name.
    pub fn name(&self) -> &str {
        self.definition.get("name").and_then(Value::as_str).unwrap_or_default()
    }
}

/// Pick the checks to schedule from local definitions (each with `name`). Sensu
/// schedules those with `standalone: true`, `publish` not false and an Integer
/// `interval` or a String `cron` (cron wins). With `all_with_schedule` (local mode,
/// where no server schedules subscription checks), `standalone` is not required.
pub fn eligible(definitions: &[Object], all_with_schedule: bool) -> Vec<Scheduled> {
    definitions
        .iter()
        .filter(|d| all_with_schedule || d.get("standalone") == Some(&Value::Bool(true)))
        .filter(|d| d.get("publish") != Some(&Value::Bool(false)))
        .filter_map(|d| {
            let timing = if let Some(expr) = d.get("cron").and_then(Value::as_str) {
                Timing::Cron(Box::new(cron::parse(expr).ok()?))
            } else {
                Timing::Interval(d.get("interval").and_then(Value::as_u64).filter(|i| *i > 0)?)
            };
            Some(Scheduled { definition: d.clone(), timing })
        })
        .collect()
}

/// Run the schedule until `shutdown` fires. `submit` receives each check request.
pub async fn run<F>(client_name: String, checks: Vec<Scheduled>, submit: F, shutdown: CancellationToken)
where
    F: Fn(Object) + Clone + Send + Sync + 'static,
{
    let mut tasks = tokio::task::JoinSet::new();
    for check in checks {
        let submit = submit.clone();
        let client_name = client_name.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = run_one(&client_name, check, submit) => {}
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

async fn run_one<F: Fn(Object)>(client_name: &str, check: Scheduled, submit: F) {
    match &check.timing {
        Timing::Interval(interval) => {
            let splay = splay::splay_seconds(client_name, check.name(), now_epoch_f64(), *interval);
            tracing::debug!(check = check.name(), splay, interval, "Scheduled standalone check.");
            tokio::time::sleep(Duration::from_secs_f64(splay)).await;
            let mut ticker = tokio::time::interval(Duration::from_secs(*interval));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                fire(&check, &submit);
            }
        }
        Timing::Cron(expr) => loop {
            let Some(delay) = cron::delay_until_next(expr, chrono::Local::now()) else {
                tracing::warn!(check = check.name(), "Cron expression has no next time; not scheduling.");
                return;
            };
            tokio::time::sleep(delay).await;
            fire(&check, &submit);
        },
    }
}

fn fire<F: Fn(Object)>(check: &Scheduled, submit: &F) {
    if subdue::is_subdued(&check.definition, chrono::Local::now()) {
        tracing::info!(check = check.name(), "check execution was subdued");
        return;
    }
    let mut request = check.definition.clone();
    request.insert("issued".into(), Value::from(now_epoch()));
    submit(request);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn defs(v: Value) -> Vec<Object> {
        v.as_array().unwrap().iter().map(|d| d.as_object().cloned().unwrap()).collect()
    }

    #[test]
    fn eligibility_follows_sensu() {
        let d = defs(json!([
            {"name": "a", "command": "true", "standalone": true, "interval": 10},
            {"name": "b", "command": "true", "subscribers": ["x"], "interval": 10},
            {"name": "c", "command": "true", "standalone": true, "interval": 10, "publish": false},
            {"name": "d", "command": "true", "standalone": true, "cron": "* * * * *", "interval": 5},
            {"name": "e", "command": "true", "standalone": true}
        ]));
        let names = |v: Vec<Scheduled>| v.iter().map(|s| s.name().to_string()).collect::<Vec<_>>();
        assert_eq!(names(eligible(&d, false)), ["a", "d"]);
        assert_eq!(names(eligible(&d, true)), ["a", "b", "d"]);
        // Spec §7 item 27: a cron check gets one cron timer, not an interval one.
        assert!(matches!(eligible(&d, false)[1].timing, Timing::Cron(_)));
    }
}
