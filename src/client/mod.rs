//! The client process: it builds the executor from the settings and feeds it check
//! requests from the scheduler and, with a broker, from subscriptions, sending each
//! result to a [`Sink`].
//!
//! * [`local`]: local mode, results on stdout.
//! * [`fleet`]: joined to a Sensu deployment over RabbitMQ.
//! * [`requests`]: parsing what arrives on a subscription.
//! * [`signals`]: SIGTERM/SIGINT (drain), a second one (exit now), SIGHUP (reload).

pub mod fleet;
pub mod local;
pub mod requests;
pub mod signals;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use crate::checks::{Executor, ExecutorSettings};
use crate::config::Settings;
use crate::proto::{Object, ResultPayload};

/// Where results go.
pub trait Sink: Send + Sync {
    /// Deliver one result.
    fn publish(&self, payload: ResultPayload) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// Local mode's sink: one JSON document per line on stdout.
#[derive(Debug, Default)]
pub struct StdoutSink;

impl Sink for StdoutSink {
    fn publish(&self, payload: ResultPayload) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            use std::io::Write as _;
            let mut line = payload.to_bytes();
            line.push(b'\n');
            let mut out = std::io::stdout().lock();
            if let Err(error) = out.write_all(&line).and_then(|()| out.flush()) {
                tracing::error!(%error, "failed to write result to stdout");
            }
        })
    }
}

/// What the executor needs from the settings. Writes `SENSU_LOADED_TEMPFILE`.
pub fn executor_settings(settings: &Settings, env: &HashMap<String, String>) -> anyhow::Result<ExecutorSettings> {
    let concierge = settings.concierge().map_err(anyhow::Error::msg)?;
    let mut child_env = Vec::new();
    match settings.write_loaded_tempfile(env) {
        Ok(var) => child_env.push(var),
        Err(error) => tracing::warn!(%error, "could not write the loaded-files list (SENSU_LOADED_TEMPFILE)"),
    }
    Ok(ExecutorSettings {
        client: settings.client(),
        local_checks: settings.checks(),
        spawn_limit: settings.spawn_limit(),
        builtin_limit: concierge.builtin_concurrency,
        env: child_env,
        builtins: crate::checks::builtins(),
    })
}

/// Build the executor the settings describe.
pub fn build_executor(settings: &Settings, env: &HashMap<String, String>) -> anyhow::Result<Executor> {
    Ok(Executor::new(executor_settings(settings, env)?))
}

/// The payload for a check this client executed.
pub fn result_payload(executor: &Executor, check: Object) -> ResultPayload {
    ResultPayload::new(&executor.client_name(), check, executor.signature().as_deref())
}

/// Process one request and publish its result, if any.
pub async fn execute_and_publish(executor: &Executor, sink: &dyn Sink, request: Object) {
    if let Some(check) = executor.process(request).await {
        sink.publish(result_payload(executor, check)).await;
    }
}
