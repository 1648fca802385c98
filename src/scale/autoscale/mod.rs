//! `concierge autoscale`: the fleet sizes itself from its own backlog and load, on the
//! scheduler's core (same platforms, bounds, cooldown, a Sensu result per move).
//!
//! * [`decide`]: the HPA arithmetic, pure (per-signal desired counts, step limit,
//!   stabilization window, bounds);
//! * [`readings`]: the replicas' loads from their keepalives, and which are fresh;
//! * [`controller`]: the rounds (read, decide, apply, report) through outages.
//!
//! [`serve_status`] answers `/healthz` and `/metrics`.

pub mod controller;
pub mod decide;
pub mod readings;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http::{Method, StatusCode};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use controller::{Health, Metrics};

/// Serve `/healthz` (503 once no round has ended for `stale_after` seconds) and `/metrics`
/// on `listen` until `stop`; the bound address.
pub async fn serve_status(
    listen: SocketAddr,
    stop: CancellationToken,
    metrics: Arc<Metrics>,
    health: Arc<Mutex<Health>>,
    stale_after: i64,
) -> std::io::Result<SocketAddr> {
    let started = crate::proto::now_epoch();
    crate::serve::serve_http(listen, stop, true, move |req| {
        let (metrics, health) = (metrics.clone(), health.clone());
        async move {
            match (req.method(), req.uri().path()) {
                (&Method::GET, "/metrics") => super::serve::metrics_response(&metrics.registry()),
                (&Method::GET, "/healthz") => {
                    let health = health.lock().map(|h| h.clone()).unwrap_or_default();
                    let now = crate::proto::now_epoch();
                    let fresh = now - health.last_round.unwrap_or(started) <= stale_after;
                    let body = json!({"status": if fresh { "ok" } else { "stalled" }, "last_round": health.last_round,
                        "outage": health.outage, "last_decision": health.last_decision});
                    super::serve::respond(if fresh { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, body)
                }
                _ => super::serve::respond(StatusCode::NOT_FOUND, json!({"error": "GET /healthz, GET /metrics"})),
            }
        }
    })
    .await
}
