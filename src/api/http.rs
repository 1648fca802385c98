//! The HTTP socket (`Sensu::Client::HTTPSocket`, em-http-server): one request per
//! connection, Sensu's status lines, bodies and auth rules, plus `/healthz` and
//! `/metrics`.
//!
//! Departures from Sensu, on purpose: the Basic-auth password is split at the first `:`
//! only, so a password containing `:` works (sensu-client cuts it and never matches); an
//! empty user or password configured authenticates nobody.

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::ext::ReasonPhrase;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{ApiState, LocalResultError, process_local_results};
use crate::serve::Unread;

/// Largest request body accepted.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// The 404 body: sensu-client's endpoint list, byte for byte.
pub const ENDPOINTS: &str = r#"{"endpoints":{"/info":{"help":"Sensu client information","methods":["GET"]},"/results":{"help":"Send check JSON results here","methods":["POST"]},"/settings":{"help":"Get redacted Sensu settings (requires basic auth). Use ?redacted=false if you want the setting unredacted.","methods":["GET"]},"/brew":{"help":"Ask Sensu to brew a cup of joe (try it!)","methods":["GET"]}}}"#;

/// Bind and serve until `shutdown` (one request per connection, within the bounds of
/// [`crate::serve`]). Returns the bound address.
pub async fn start(addr: SocketAddr, state: Arc<ApiState>, shutdown: CancellationToken) -> std::io::Result<SocketAddr> {
    let bound = crate::serve::serve_http(addr, shutdown, false, move |req| {
        let state = state.clone();
        async move { handle(req, &state).await }
    })
    .await?;
    tracing::info!(%bound, "HTTP socket listening");
    Ok(bound)
}

fn respond(status: u16, reason: &'static str, body: impl Into<Bytes>, content_type: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.extensions_mut().insert(ReasonPhrase::from_static(reason.as_bytes()));
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert(http::header::CONTENT_TYPE, value);
    }
    response
}

fn json_response(status: u16, reason: &'static str, body: &Value) -> Response<Full<Bytes>> {
    respond(status, reason, serde_json::to_vec(body).unwrap_or_default(), "application/json")
}

fn unauthorized() -> Response<Full<Bytes>> {
    let mut r = json_response(
        401,
        "Unauthorized",
        &json!({"response": "You must be authenticated using your http_options user and password settings"}),
    );
    r.headers_mut().insert(
        http::header::WWW_AUTHENTICATE,
        http::HeaderValue::from_static("Basic realm=\"Sensu Client Restricted Area\""),
    );
    r
}

fn authorized(req: &Request<Incoming>, state: &ApiState) -> bool {
    let (Some(user), Some(password)) = (&state.api.http_auth.user, &state.api.http_auth.password) else { return false };
    // Empty ones (an unset variable in a template, say) let nobody in: with them, `Og==`
    // (`:`) would be a password anyone knows.
    if user.is_empty() || password.is_empty() {
        return false;
    }
    let Some(header) = req.headers().get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some(encoded) = header.strip_prefix("Basic ") else { return false };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else { return false };
    let decoded = String::from_utf8_lossy(&decoded);
    decoded.split_once(':').is_some_and(|(u, p)| u == user && p == password)
}

fn method_not_allowed(methods: &str) -> Response<Full<Bytes>> {
    json_response(
        405,
        "Method Not Allowed",
        &json!({"response": format!("Valid methods for this endpoint: {methods}")}),
    )
}

async fn handle(req: Request<Incoming>, state: &ApiState) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let protect = state.api.http_auth.protect_all_endpoints;
    match (path.as_str(), req.method()) {
        ("/info", &Method::GET) => {
            if protect && !authorized(&req, state) {
                return unauthorized();
            }
            json_response(200, "OK", &info(state).await)
        }
        ("/results", &Method::POST) => {
            if protect && !authorized(&req, state) {
                return unauthorized();
            }
            let json_type = req
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.contains("application/json"));
            if !json_type {
                return json_response(
                    415,
                    "Only application/json content type accepted",
                    &json!({"response": "Invalid content type"}),
                );
            }
            let body = match crate::serve::read_body(req.into_body(), MAX_BODY).await {
                Ok(body) => body,
                Err(Unread::Late) => {
                    let within = crate::serve::BODY_TIMEOUT.as_secs();
                    return json_response(
                        408,
                        "Request Timeout",
                        &json!({"response": format!("the body did not arrive within {within} s")}),
                    );
                }
                Err(Unread::Refused) => {
                    return json_response(
                        400,
                        "Failed to parse JSON body",
                        &json!({"response": "Failed to parse JSON body"}),
                    );
                }
            };
            let Ok(value) = serde_json::from_slice::<Value>(&body) else {
                return json_response(
                    400,
                    "Failed to parse JSON body",
                    &json!({"response": "Failed to parse JSON body"}),
                );
            };
            match process_local_results(state, value).await {
                Ok(()) => json_response(202, "OK", &json!({"response": "ok"})),
                Err(error) => {
                    let message = match error {
                        LocalResultError::NotAnObject => "check result must be a JSON object",
                        LocalResultError::Invalid(m) => m,
                    };
                    tracing::error!(error = message, "failed to process check result from the HTTP socket");
                    json_response(
                        500,
                        "Internal Server Error",
                        &json!({"response": "Internal Server Error: Check your Sensu logs for error details"}),
                    )
                }
            }
        }
        ("/settings", &Method::GET) => {
            if !authorized(&req, state) {
                return unauthorized();
            }
            let unredacted = req.uri().query().is_some_and(|q| q.to_ascii_lowercase().contains("redacted=false"));
            let settings = Value::Object(state.settings.clone());
            let body =
                if unredacted { settings } else { crate::proto::redact(&settings, crate::proto::DEFAULT_REDACT_KEYS) };
            json_response(200, "OK", &body)
        }
        ("/brew", &Method::GET) => json_response(418, "I'm a teapot", &json!({"response": "I'm a teapot!"})),
        ("/healthz", &Method::GET) => {
            let (healthy, doc) = super::health::check(&state.executor, state.transport.as_deref()).await;
            if healthy { json_response(200, "OK", &doc) } else { json_response(503, "Service Unavailable", &doc) }
        }
        ("/metrics", &Method::GET) => {
            state.executor.load();
            respond(200, "OK", state.telemetry.render(), "application/openmetrics-text; version=1.0.0; charset=utf-8")
        }
        ("/info" | "/settings" | "/brew" | "/healthz" | "/metrics", _) => method_not_allowed(r#"["GET"]"#),
        ("/results", _) => method_not_allowed(r#"["POST"]"#),
        _ => respond(404, "Not Found", ENDPOINTS, "application/json"),
    }
}

/// `/info`: the Sensu version and the transport's queue figures (by an active declare
/// of `keepalives` and `results` with Sensu's flags, as sensu-client does).
async fn info(state: &ApiState) -> Value {
    let session = match &state.transport {
        Some(t) => t.session().await,
        None => None,
    };
    let mut transport = json!({"name": "rabbitmq", "keepalives": {"messages": null, "consumers": null},
        "results": {"messages": null, "consumers": null}, "connected": false});
    if let Some(session) = session
        && let (Ok(k), Ok(r)) = (session.queue_stats("keepalives").await, session.queue_stats("results").await)
    {
        transport = json!({"name": "rabbitmq",
            "keepalives": {"messages": k.0, "consumers": k.1},
            "results": {"messages": r.0, "consumers": r.1},
            "connected": true});
    }
    json!({"sensu": {"version": crate::proto::SENSU_VERSION}, "transport": transport})
}
