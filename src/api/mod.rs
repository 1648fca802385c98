//! The local API, as sensu-client has it, plus what a container fleet needs:
//!
//! * [`socket`]: the JSON socket (TCP and UDP, default 127.0.0.1:3030): `ping`/`pong`,
//!   results in, `ok`/`invalid` out;
//! * [`http`]: the HTTP socket (default 127.0.0.1:3031): `/info`, `/results`,
//!   `/settings`, `/brew`, and Concierge's `/healthz` and `/metrics`;
//! * [`health`]: whether this replica can do work.
//!
//! Both sockets are bound at start-up, before the broker is reached (sensu-client waits
//! for the transport), so `/healthz` can say "not connected" instead of refusing the
//! connection; results that arrive meanwhile are buffered like any other.

pub mod health;
pub mod http;
pub mod socket;

use std::future::Future as _;
use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::checks::Executor;
use crate::config::ApiSettings;
use crate::proto::{Object, ResultPayload, now_epoch, validate::validate_result};
use crate::telemetry::Telemetry;
use crate::transport::sink::Sink;
use crate::transport::view::TransportView;

/// What the API handlers share.
pub struct ApiState {
    /// The client's executor (client settings, slots).
    pub executor: Arc<Executor>,
    /// Where results received locally go.
    pub sink: Arc<dyn Sink>,
    /// The whole settings document, for `/settings`.
    pub settings: Object,
    /// Figures.
    pub telemetry: Arc<Telemetry>,
    /// The broker side, when there is one.
    pub transport: Option<Arc<TransportView>>,
    /// Where the sockets listen, and the HTTP socket's credentials.
    pub api: ApiSettings,
}

/// Why a locally received result was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum LocalResultError {
    /// Not a JSON object (or an array element that is not).
    NotAnObject,
    /// A validation rule failed (Sensu's message).
    Invalid(&'static str),
}

/// `Sensu::Client::CheckUtils#process_check_result`: `status ||= 0`, `executed ||= now`,
/// validate, then publish with `issued` = now (no token substitution, an empty `source`
/// kept). Results before a failing element of an array have already been published.
pub async fn process_local_results(state: &ApiState, value: Value) -> Result<(), LocalResultError> {
    let items = match value {
        Value::Array(items) => items,
        other => vec![other],
    };
    let mut accepted = Vec::with_capacity(items.len());
    let mut outcome = Ok(());
    // One clock reading: `executed` (when missing) and `issued` agree, as Sensu's do within
    // a second.
    let now = now_epoch();
    for item in items {
        let Value::Object(mut check) = item else {
            outcome = Err(LocalResultError::NotAnObject);
            break;
        };
        if check.get("status").is_none_or(|s| s.is_null() || s == &Value::Bool(false)) {
            check.insert("status".into(), 0.into());
        }
        if check.get("executed").is_none_or(|s| s.is_null() || s == &Value::Bool(false)) {
            check.insert("executed".into(), now.into());
        }
        if let Err(message) = validate_result(&check) {
            outcome = Err(LocalResultError::Invalid(message));
            break;
        }
        check.insert("issued".into(), now.into());
        state.telemetry.local_results.inc();
        accepted.push(ResultPayload::verbatim(
            &state.executor.client_name(),
            check,
            state.executor.signature().as_deref(),
        ));
    }
    // "ok" means queued for publishing, as in Sensu: the broker is not waited for, but every
    // element is queued before the answer, in order (those before a failing one too). A
    // publish queues its result when first polled; published one after another, the rest of
    // an array waited outside the results buffer, and a drain right after "ok" lost them.
    let sink = state.sink.clone();
    let mut publishing = Box::pin(async move {
        let mut confirms = Vec::with_capacity(accepted.len());
        for payload in accepted {
            let mut publish = sink.publish(payload);
            let first = std::future::poll_fn(|cx| std::task::Poll::Ready(publish.as_mut().poll(cx))).await;
            if first.is_pending() {
                confirms.push(publish);
            }
        }
        futures_util::future::join_all(confirms).await;
    });
    let mut cx = std::task::Context::from_waker(futures_util::task::noop_waker_ref());
    if publishing.as_mut().poll(&mut cx).is_pending() {
        tokio::spawn(publishing);
    }
    outcome
}

/// Start both sockets (those enabled). Returns the addresses actually bound.
pub async fn start(state: Arc<ApiState>, shutdown: CancellationToken) -> Result<Vec<SocketAddr>, String> {
    let mut bound = Vec::new();
    if let Some(addr) = state.api.socket.address()? {
        bound.push(
            socket::start(addr, state.clone(), shutdown.clone()).await.map_err(|e| format!("socket {addr}: {e}"))?,
        );
    }
    if let Some(addr) = state.api.http_socket.address()? {
        bound.push(
            http::start(addr, state.clone(), shutdown.clone()).await.map_err(|e| format!("http_socket {addr}: {e}"))?,
        );
    }
    Ok(bound)
}
