//! The client process: it builds the executor from the settings and feeds it check
//! requests from the scheduler and, with a broker, from subscriptions, sending each
//! result to a [`Sink`].
//!
//! * [`pipeline`]: one request's life: parse, execute, publish, settle.
//! * [`local`]: local mode, results on stdout.
//! * [`fleet`]: joined to a Sensu deployment over RabbitMQ.
//! * [`requests`]: parsing what arrives on a subscription.
//! * [`memory`]: a burst's freed memory given back to the system.
//! * [`signals`]: SIGTERM/SIGINT (drain), a second one (exit now), SIGHUP (reload).

pub mod fleet;
pub mod local;
pub mod memory;
pub mod pipeline;
pub mod requests;
pub mod signals;

use std::collections::HashMap;
use std::sync::Arc;

use crate::checks::ExecutorSettings;
use crate::config::Settings;
use crate::telemetry::Telemetry;

/// What the executor needs from the settings. Writes `SENSU_LOADED_TEMPFILE`, whose path
/// goes to every command's environment.
pub fn executor_settings(
    settings: &Settings,
    env: &HashMap<String, String>,
    telemetry: &Arc<Telemetry>,
) -> ExecutorSettings {
    let mut child_env = Vec::new();
    match settings.write_loaded_tempfile(env) {
        Ok(var) => child_env.push(var),
        Err(error) => tracing::warn!(%error, "could not write the loaded-files list (SENSU_LOADED_TEMPFILE)"),
    }
    ExecutorSettings {
        client: settings.client.attributes.clone(),
        local_checks: settings.checks.clone(),
        spawn_limit: settings.spawn_limit,
        builtin_limit: settings.concierge.builtin_concurrency,
        env: child_env,
        builtins: crate::checks::builtins(),
        telemetry: telemetry.clone(),
        native_plugins: settings.concierge.native_plugins,
        output_limit: settings.concierge.output_limit,
    }
}
