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
use std::sync::Arc;

use crate::checks::courier::DeliveryPlan;
use crate::checks::executor::Processed;
use crate::checks::{Executor, ExecutorSettings};
use crate::config::Settings;
use crate::proto::{Object, ResultPayload};
use crate::telemetry::Telemetry;

/// Where results go.
pub trait Sink: Send + Sync {
    /// Deliver one result; `true` once it is safe (confirmed by the broker, written).
    fn publish(&self, payload: ResultPayload) -> Pin<Box<dyn Future<Output = bool> + Send + '_>>;
}

/// Local mode's sink: one JSON document per line on stdout.
#[derive(Debug, Default)]
pub struct StdoutSink;

impl Sink for StdoutSink {
    fn publish(&self, payload: ResultPayload) -> Pin<Box<dyn Future<Output = bool> + Send + '_>> {
        Box::pin(async move {
            use std::io::Write as _;
            let mut line = payload.to_bytes();
            line.push(b'\n');
            let mut out = std::io::stdout().lock();
            match out.write_all(&line).and_then(|()| out.flush()) {
                Ok(()) => true,
                Err(error) => {
                    tracing::error!(%error, "failed to write result to stdout");
                    false
                }
            }
        })
    }
}

/// The fleet's sink: the confirmed results pipe.
impl Sink for crate::transport::publisher::Publisher {
    fn publish(&self, payload: ResultPayload) -> Pin<Box<dyn Future<Output = bool> + Send + '_>> {
        Box::pin(async move { crate::transport::publisher::Publisher::publish(self, payload.to_bytes()).await })
    }
}

/// Spawn `task` onto `tracker` after polling it once here, so that work waiting for an
/// execution slot joins the queue in the order it was handed over: tokio may start freshly
/// spawned tasks out of order, and `CONCIERGE_COMMAND_CONCURRENCY` promises that waiting
/// checks run in order. A task that completes in that first poll is not spawned.
pub fn spawn_in_order(tracker: &tokio_util::task::TaskTracker, task: impl Future<Output = ()> + Send + 'static) {
    let mut task = Box::pin(task);
    let mut cx = std::task::Context::from_waker(futures_util::task::noop_waker_ref());
    if task.as_mut().poll(&mut cx).is_pending() {
        tracker.spawn(task);
    }
}

/// Publish a processed check: its result, and for a courier shot the further parts and
/// then the delivery report, timed from the first publish to the last confirmation.
/// Returns whether everything was delivered.
pub async fn deliver(executor: &Executor, sink: &dyn Sink, check: Object, plan: Option<Box<DeliveryPlan>>) -> bool {
    let Some(plan) = plan else {
        return sink.publish(result_payload(executor, check)).await;
    };
    let started = tokio::time::Instant::now();
    let mut delivered = true;
    // What the report needs of the check, kept before the (large) check is moved out.
    let mut context = Object::new();
    for key in ["name", "issued", "executed", "source"] {
        if let Some(v) = check.get(key) {
            context.insert(key.into(), v.clone());
        }
    }
    if plan.failure.is_none() {
        let parts = plan.extra_parts.len() + 1;
        let mut extra = Vec::with_capacity(parts - 1);
        for (i, output) in plan.extra_parts.iter().enumerate() {
            let mut part = check.clone();
            part.insert("output".into(), output.clone().into());
            part.insert("part".into(), format!("{}/{parts}", i + 2).into());
            extra.push(part);
        }
        let mut first = check;
        if parts > 1 {
            first.insert("part".into(), format!("1/{parts}").into());
        }
        let mut pending = vec![sink.publish(result_payload(executor, first))];
        pending.extend(extra.into_iter().map(|part| sink.publish(result_payload(executor, part))));
        delivered = futures_util::future::join_all(pending).await.into_iter().all(|ok| ok);
    }
    let report = plan.report(&context, started.elapsed().as_secs_f64(), delivered, crate::proto::now_epoch());
    sink.publish(result_payload(executor, report)).await && delivered
}

/// What the executor needs from the settings. Writes `SENSU_LOADED_TEMPFILE`.
pub fn executor_settings(
    settings: &Settings,
    env: &HashMap<String, String>,
    telemetry: &Arc<Telemetry>,
) -> anyhow::Result<ExecutorSettings> {
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
        telemetry: telemetry.clone(),
    })
}

/// Build the executor the settings describe.
pub fn build_executor(settings: &Settings, env: &HashMap<String, String>) -> anyhow::Result<Executor> {
    Ok(Executor::new(executor_settings(settings, env, &Arc::new(Telemetry::new()))?))
}

/// The payload for a check this client executed.
pub fn result_payload(executor: &Executor, check: Object) -> ResultPayload {
    ResultPayload::new(&executor.client_name(), check, executor.signature().as_deref())
}

/// Process one request and publish its result, if any.
pub async fn execute_and_publish(executor: &Executor, sink: &dyn Sink, request: Object) {
    if let Processed::Result(check, plan) =
        executor.process_until(request, &tokio_util::sync::CancellationToken::new()).await
    {
        deliver(executor, sink, check, plan).await;
    }
}
