//! `concierge scale serve`: an HTTP receiver for Alertmanager webhooks and scripts.
//!
//! * `POST /v1/alertmanager`: an Alertmanager webhook (payload version 4). Each *firing*
//!   alert whose labels name a `service` and `scale: up|down` (optional `scale_by`) scales
//!   that service; resolved alerts and alerts without those labels do nothing.
//! * `POST /v1/scale?service=X&by=±N`: one move, for scripts.
//! * `GET /healthz`, `GET /metrics` (decisions by outcome).
//!
//! Every request but `/healthz` and `/metrics` needs `Authorization: Bearer TOKEN`; a wrong
//! token is 401 and a malformed body 400 naming what is wrong, and neither scales anything.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::decide::Move;
use super::platform::Platform;
use super::{Limits, Outcome, report, scale};
use crate::config::Settings;

/// Largest request body accepted.
pub const MAX_BODY: usize = 1024 * 1024;
/// Distinct moves one Alertmanager payload may ask for.
pub const MAX_MOVES: usize = 50;

/// Prometheus text of `registry`, as an HTTP answer.
pub fn metrics_response(registry: &Registry) -> Response<Full<Bytes>> {
    let mut out = String::new();
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    let mut response = Response::new(Full::new(Bytes::from(out)));
    if let Ok(value) = "text/plain; version=0.0.4".parse() {
        response.headers_mut().insert(http::header::CONTENT_TYPE, value);
    }
    response
}

/// What the receiver needs.
pub struct Receiver<P> {
    /// The orchestrator.
    pub platform: P,
    /// Where decisions are reported (the broker of these settings, if any).
    pub settings: Settings,
    /// The bearer token; `None` only when started with `--insecure-no-auth`.
    pub token: Option<String>,
    /// Bounds and cooldown.
    pub limits: Limits,
    decisions: Family<Vec<(String, String)>, Counter>,
}

impl<P: Platform + Send + Sync + 'static> Receiver<P> {
    /// A receiver scaling on `platform`.
    pub fn new(platform: P, settings: Settings, token: Option<String>, limits: Limits) -> Arc<Self> {
        Arc::new(Self { platform, settings, token, limits, decisions: Family::default() })
    }

    /// Bind and serve until `stop`; the bound address.
    pub async fn serve(self: Arc<Self>, listen: SocketAddr, stop: CancellationToken) -> std::io::Result<SocketAddr> {
        let bound = crate::serve::serve_http(listen, stop, true, move |req| {
            let receiver = self.clone();
            async move { receiver.handle(req).await }
        })
        .await?;
        tracing::info!(%bound, "scale receiver listening");
        Ok(bound)
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = req.uri().path().to_string();
        match (req.method(), path.as_str()) {
            (&Method::GET, "/healthz") => respond(StatusCode::OK, json!({"status": "ok"})),
            (&Method::GET, "/metrics") => {
                let mut registry = Registry::default();
                registry.register("concierge_scale_decisions", "Scaling decisions, by outcome", self.decisions.clone());
                metrics_response(&registry)
            }
            (&Method::POST, "/v1/alertmanager" | "/v1/scale") => {
                if !self.authorized(&req) {
                    return respond(StatusCode::UNAUTHORIZED, json!({"error": "a valid bearer token is required"}));
                }
                let query = req.uri().query().unwrap_or_default().to_string();
                let Ok(body) = crate::serve::read_body(req.into_body(), MAX_BODY).await else {
                    let within = crate::serve::BODY_TIMEOUT;
                    return respond(
                        StatusCode::BAD_REQUEST,
                        json!({"error": format!("the body is larger than {MAX_BODY} bytes, or did not arrive within {within:?}")}),
                    );
                };
                if path == "/v1/scale" { self.script(&query).await } else { self.alertmanager(&body).await }
            }
            _ => respond(
                StatusCode::NOT_FOUND,
                json!({"error": "POST /v1/alertmanager, POST /v1/scale, GET /healthz, GET /metrics"}),
            ),
        }
    }

    fn authorized(&self, req: &Request<Incoming>) -> bool {
        let Some(token) = &self.token else { return true };
        let given = req.headers().get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        given.and_then(|v| v.strip_prefix("Bearer ")).is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes()))
    }

    /// `POST /v1/scale?service=X&by=±N`.
    async fn script(&self, query: &str) -> Response<Full<Bytes>> {
        let params: std::collections::HashMap<String, String> = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.replace("%2B", "+").replace("%2b", "+")))
            .collect();
        let Some(service) = params.get("service").filter(|s| super::valid_service_name(s)) else {
            return respond(
                StatusCode::BAD_REQUEST,
                json!({"error": "service=NAME is required ([A-Za-z0-9][A-Za-z0-9_.-]*)"}),
            );
        };
        let by = params.get("by").map_or("1", String::as_str);
        let request = match by.parse::<i64>() {
            Ok(n) if n > 0 => Move::Up(n.unsigned_abs()),
            Ok(n) if n < 0 => Move::Down(n.unsigned_abs()),
            _ => {
                return respond(
                    StatusCode::BAD_REQUEST,
                    json!({"error": format!("by={by}: a non-zero whole number (+N up, -N down)")}),
                );
            }
        };
        let decided = self.decide(service, request, "POST /v1/scale").await;
        let code = match decided["status"].as_u64() {
            Some(0) => StatusCode::OK,
            Some(1) => StatusCode::CONFLICT,
            _ => StatusCode::BAD_GATEWAY,
        };
        respond(code, decided)
    }

    /// `POST /v1/alertmanager`: each firing alert with `service` and `scale` labels.
    async fn alertmanager(&self, body: &[u8]) -> Response<Full<Bytes>> {
        let payload: Value = match serde_json::from_slice(body) {
            Ok(p) => p,
            Err(e) => return respond(StatusCode::BAD_REQUEST, json!({"error": format!("not JSON: {e}")})),
        };
        if payload.get("version").and_then(Value::as_str) != Some("4") {
            return respond(
                StatusCode::BAD_REQUEST,
                json!({"error": "not an Alertmanager webhook: \"version\" must be \"4\""}),
            );
        }
        let Some(alerts) = payload.get("alerts").and_then(Value::as_array) else {
            return respond(
                StatusCode::BAD_REQUEST,
                json!({"error": "not an Alertmanager webhook: no \"alerts\" array"}),
            );
        };
        // Every alert is checked before anything is scaled: a malformed one refuses the lot.
        let mut moves = Vec::new();
        let mut ignored = 0;
        for (i, alert) in alerts.iter().enumerate() {
            let labels = alert.get("labels").and_then(Value::as_object);
            let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
            let (Some(service), Some(direction)) = (label("service"), label("scale")) else {
                ignored += 1;
                continue;
            };
            if !super::valid_service_name(service) {
                return respond(
                    StatusCode::BAD_REQUEST,
                    json!({"error": format!("alerts[{i}]: {service:?} is not a service name")}),
                );
            }
            if alert.get("status").and_then(Value::as_str) != Some("firing") {
                ignored += 1;
                continue;
            }
            let by = match label("scale_by").map(str::parse::<u64>) {
                None => 1,
                Some(Ok(n)) if n > 0 => n,
                Some(_) => {
                    return respond(
                        StatusCode::BAD_REQUEST,
                        json!({"error": format!("alerts[{i}]: scale_by must be a whole number above 0")}),
                    );
                }
            };
            let request = match direction {
                "up" => Move::Up(by),
                "down" => Move::Down(by),
                other => {
                    return respond(
                        StatusCode::BAD_REQUEST,
                        json!({"error": format!("alerts[{i}]: scale must be up or down, not {other:?}")}),
                    );
                }
            };
            let name = label("alertname").unwrap_or("alert");
            // One move per service and direction (the largest asked): a group of alerts about
            // one service is one decision, not a burst of them.
            match moves.iter_mut().find(|(s, r, _): &&mut (String, Move, String)| s == service && same_way(*r, request))
            {
                Some(existing) => existing.1 = larger(existing.1, request),
                None => moves.push((service.to_string(), request, format!("alertmanager alert {name}"))),
            }
            if moves.len() > MAX_MOVES {
                return respond(
                    StatusCode::BAD_REQUEST,
                    json!({"error": format!("more than {MAX_MOVES} services in one payload")}),
                );
            }
        }
        // Up and down for one service at once say nothing about which way it should go: both
        // taken would be two rolling updates that end where they began.
        if let Some((service, _, _)) =
            moves.iter().find(|(s, r, _)| moves.iter().any(|(t, q, _)| t == s && !same_way(*q, *r)))
        {
            return respond(
                StatusCode::BAD_REQUEST,
                json!({"error": format!("alerts ask {service} to scale both up and down: nothing applied")}),
            );
        }
        let mut decisions = Vec::new();
        for (service, request, trigger) in moves {
            decisions.push(self.decide(&service, request, &trigger).await);
        }
        // A failed decision asks Alertmanager to send again (the cooldown keeps the
        // decisions that were taken from being taken twice).
        let failed = decisions.iter().any(|d| d["status"].as_u64() == Some(2));
        let code = if failed { StatusCode::BAD_GATEWAY } else { StatusCode::OK };
        respond(code, json!({"decisions": decisions, "ignored": ignored}))
    }

    /// Decide, apply, report; the decision as JSON.
    async fn decide(&self, service: &str, request: Move, trigger: &str) -> Value {
        let outcome = scale(&self.platform, service, request, self.limits, false).await;
        let label = match outcome.status() {
            0 => "scaled",
            1 => "refused",
            _ => "failed",
        };
        self.decisions.get_or_create(&vec![("outcome".to_string(), label.to_string())]).inc();
        tracing::info!(service, trigger, decision = %outcome.line(), "scale decision");
        let check = report::check(&outcome, &report::check_name(service), trigger);
        if let Err(problem) = report::deliver(&self.settings, check).await {
            tracing::warn!(%problem, "scale decision not reported");
        }
        let to = match &outcome {
            Outcome::Decided(d) => Some(d.to()),
            _ => None,
        };
        json!({"service": service, "status": outcome.status(), "line": outcome.line(), "to": to})
    }
}

fn same_way(a: Move, b: Move) -> bool {
    matches!((a, b), (Move::Up(_), Move::Up(_)) | (Move::Down(_), Move::Down(_)))
}

fn larger(a: Move, b: Move) -> Move {
    match (a, b) {
        (Move::Up(x), Move::Up(y)) => Move::Up(x.max(y)),
        (Move::Down(x), Move::Down(y)) => Move::Down(x.max(y)),
        (a, _) => a,
    }
}

pub(super) fn respond(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(serde_json::to_vec(&body).unwrap_or_default())));
    *response.status_mut() = status;
    if let Ok(value) = "application/json".parse() {
        response.headers_mut().insert(http::header::CONTENT_TYPE, value);
    }
    response
}

/// Compare without stopping at the first difference (the token is a secret).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
