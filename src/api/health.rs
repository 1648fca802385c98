//! Whether this replica can do work: connected to the broker (blocked by a resource alarm
//! or not), a consumer on every subscription, and no check stuck past its time. `/healthz`
//! answers 200 or 503 with the reason, and `concierge health` turns that into an exit code
//! for a Docker `HEALTHCHECK`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::checks::Executor;
use crate::transport::view::TransportView;

/// A check without a timeout counts as stuck after this long.
pub const STUCK_WITHOUT_TIMEOUT: Duration = Duration::from_secs(600);
/// Time allowed beyond a check's own timeout (the TERM→KILL grace and some slack).
pub const STUCK_GRACE: Duration = Duration::from_secs(30);

/// The health verdict and its JSON document.
pub async fn check(executor: &Executor, transport: Option<&TransportView>) -> (bool, Value) {
    let mut problems = Vec::new();
    let mut doc = json!({});
    if let Some(t) = transport {
        let session = t.session().await;
        let connected = session.is_some();
        // Blocked by a resource alarm is still healthy: the replica waits it out, and a
        // restart would not end it.
        let blocked = session.map_or(0, |s| s.blocked());
        let (consumers, expected) = t.consumers();
        doc["transport"] = json!({
            "connected": connected, "blocked": blocked, "consumers": consumers, "subscriptions_queues": expected
        });
        if !connected {
            problems.push("not connected to the broker".to_string());
        } else if !t.subscribed() {
            problems.push(format!("consuming {consumers} of {expected} subscription queues"));
        }
    } else {
        doc["mode"] = json!("local");
    }
    if let Some((key, running, timeout)) = executor.oldest_running() {
        let limit = timeout.map_or(STUCK_WITHOUT_TIMEOUT, |t| t + STUCK_GRACE);
        doc["oldest_check"] = json!({"check": key, "running_seconds": running.as_secs_f64()});
        if running > limit {
            problems.push(format!("check {key} has been running for {} s", running.as_secs()));
        }
    }
    let (busy, capacity) = (executor.busy(), executor.capacity());
    doc["slots"] =
        json!({"command": {"busy": busy.0, "total": capacity.0}, "builtin": {"busy": busy.1, "total": capacity.1}});
    let healthy = problems.is_empty();
    doc["status"] = json!(if healthy { "ok" } else { "unhealthy" });
    if !healthy {
        doc["reason"] = json!(problems.join("; "));
    }
    (healthy, doc)
}
