//! Every decision is a Sensu result, beside the incident that caused it: check
//! `scale_<service>`, status 0 scaled / 1 refused / 2 failed, the one-line output, and the
//! attributes a handler or a dashboard reads (`service`, `from`, `to`, `bounds`, `trigger`).
//! It goes to the broker's `results` exchange when one is configured (the wire format of any
//! other result), else to a local client's JSON socket if one answers, else to stdout.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Outcome;
use super::decide::Verdict;
use super::platform::TaskRef;
use crate::config::Settings;
use crate::proto::{Object, ResultPayload, now_epoch};
use crate::transport::session::{Session, SessionCounters};

/// How long a broker or a local socket may take to take the result.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a result went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// Confirmed by this broker.
    Broker(String),
    /// Taken (`ok`) by the local client's socket at this address.
    Socket(String),
    /// Printed on stdout (no broker, no local client).
    Stdout,
}

/// The result's check: `name`, `output`, `status`, `issued`, `executed`, then the decision.
pub fn check(outcome: &Outcome, check_name: &str, trigger: &str) -> Object {
    let now = now_epoch();
    let mut check = Object::new();
    check.insert("name".into(), check_name.into());
    check.insert("type".into(), "standard".into());
    check.insert("output".into(), format!("{}\n", outcome.line()).into());
    check.insert("status".into(), outcome.status().into());
    check.insert("issued".into(), now.into());
    check.insert("executed".into(), now.into());
    check.insert("service".into(), outcome.service().into());
    if let Outcome::Decided(decision) = outcome {
        check.insert("from".into(), decision.from.into());
        check.insert("to".into(), decision.to().into());
        check.insert("bounds".into(), json!({"min": decision.bounds.min, "max": decision.bounds.max}));
        if let Verdict::Refused(why) = &decision.verdict {
            check.insert("reason".into(), why.clone().into());
        }
    }
    match outcome {
        Outcome::Replaced { client, task, .. } => {
            check.insert("client".into(), client.clone().into());
            match task {
                TaskRef::Slot(slot) => check.insert("slot".into(), (*slot).into()),
                TaskRef::Id(id) => check.insert("task".into(), id.clone().into()),
            };
        }
        Outcome::ReplaceRefused { client, why, .. } => {
            check.insert("client".into(), client.clone().into());
            check.insert("reason".into(), why.clone().into());
        }
        Outcome::Decided(_) | Outcome::Failed { .. } => {}
    }
    check.insert("trigger".into(), trigger.into());
    check
}

/// The default check name for a service: `scale_<service>` (characters Sensu does not
/// allow in a name become `_`).
pub fn check_name(service: &str) -> String {
    format!("scale_{}", crate::proto::name_from(service, '_'))
}

/// Deliver the result: the broker if one is configured, else the local socket, else stdout.
pub async fn deliver(settings: &Settings, check: Object) -> Result<Delivered, String> {
    if settings.has_broker {
        let payload = ResultPayload::new(&settings.client.name, check, settings.client.signature.as_deref());
        let mut problems = Vec::new();
        for broker in &settings.brokers {
            let sent = async {
                let session =
                    Session::open(broker, &settings.client.name, 1, DELIVERY_TIMEOUT, SessionCounters::default())
                        .await?;
                let sent = session.publish_result(&payload.to_bytes()).await;
                session.close().await;
                sent
            };
            match sent.await {
                Ok(()) => return Ok(Delivered::Broker(broker.label())),
                Err(error) => problems.push(error.to_string()),
            }
        }
        return Err(format!("the result was not published: {}", problems.join("; ")));
    }
    if let Ok(Some(address)) = settings.api.socket.address() {
        let address = if address.ip().is_unspecified() { ([127, 0, 0, 1], address.port()).into() } else { address };
        if let Ok(Ok(reply)) = tokio::time::timeout(DELIVERY_TIMEOUT, to_socket(address, &check)).await
            && reply == "ok"
        {
            return Ok(Delivered::Socket(address.to_string()));
        }
    }
    use std::io::Write as _;
    writeln!(std::io::stdout(), "{}", Value::Object(check)).map_err(|e| format!("the result was not printed: {e}"))?;
    Ok(Delivered::Stdout)
}

/// Send a result to a client's JSON socket; its reply (`ok` or `invalid`).
async fn to_socket(address: std::net::SocketAddr, check: &Object) -> std::io::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    stream.write_all(&serde_json::to_vec(check).unwrap_or_default()).await?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await?;
    Ok(reply)
}
