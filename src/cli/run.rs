//! `concierge run`: the client. Without a broker (or with `--local`) it runs the local
//! check definitions and prints results; with one it joins the Sensu deployment.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Complaint, Context, exit, validated};
use crate::api::{self, ApiState};
use crate::checks::Executor;
use crate::client::fleet::Fleet;
use crate::client::pipeline::Pipeline;
use crate::client::signals::Signals;
use crate::client::{executor_settings, local};
use crate::config::Settings;
use crate::telemetry::Telemetry;
use crate::transport::sink::{Sink, StdoutSink};

/// Run the client until a stop signal.
pub async fn run(context: &Context, local: bool) -> ExitCode {
    let mut sources = context.sources(local);
    // Local mode also reads ./checks when no directory is given.
    sources.local_checks_without_broker = true;
    let settings = match validated(&sources, Complaint::Sensu) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    if !local && !settings.has_broker {
        tracing::info!("no broker configured (RABBITMQ_URL or a rabbitmq setting): running checks locally");
    }
    let signals = match Signals::install() {
        Ok(s) => s,
        Err(error) => {
            eprintln!("error: cannot install signal handlers: {error}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    let telemetry = Arc::new(Telemetry::new());
    if local || !settings.has_broker {
        run_local(context, settings, signals, telemetry).await
    } else {
        sources.local_checks_without_broker = false;
        run_fleet(sources, settings, signals, telemetry).await
    }
}

/// Local mode: the schedule's results and the sockets' go to stdout.
async fn run_local(context: &Context, settings: Settings, signals: Signals, telemetry: Arc<Telemetry>) -> ExitCode {
    let executor = Arc::new(Executor::new(executor_settings(&settings, &context.env, &telemetry)));
    let sink: Arc<dyn Sink> = Arc::new(StdoutSink);
    let pipeline = Pipeline::new(executor.clone(), sink.clone(), settings.concierge.max_request_bytes);
    let state = ApiState {
        executor,
        sink,
        settings: settings.raw.clone(),
        telemetry,
        transport: None,
        api: settings.api.clone(),
    };
    let api_stop = match start_api(state).await {
        Ok(stop) => stop,
        Err(code) => return code,
    };
    local::run(&settings, pipeline, &signals).await;
    api_stop.cancel();
    ExitCode::from(exit::OK)
}

/// Joined to a Sensu deployment over RabbitMQ.
async fn run_fleet(
    sources: crate::config::Sources,
    settings: Settings,
    signals: Signals,
    telemetry: Arc<Telemetry>,
) -> ExitCode {
    let (raw, api_settings, concierge) = (settings.raw.clone(), settings.api.clone(), settings.concierge.clone());
    let fleet = Fleet::new(sources, settings, telemetry.clone());
    let state = ApiState {
        executor: fleet.pipeline().executor().clone(),
        sink: fleet.pipeline().sink().clone(),
        settings: raw,
        telemetry: telemetry.clone(),
        transport: Some(fleet.transport().clone()),
        api: api_settings,
    };
    let api_stop = match start_api(state).await {
        Ok(stop) => stop,
        Err(code) => return code,
    };
    if concierge.emf {
        let period = Duration::from_secs_f64(concierge.emf_interval.max(1.0));
        let ticker =
            telemetry.emf_ticker(concierge.service_name, fleet.client_name().to_string(), period, api_stop.clone());
        tokio::spawn(ticker);
    }
    fleet.run(signals).await;
    api_stop.cancel();
    ExitCode::from(exit::OK)
}

/// Bind the local sockets; the token stops them.
async fn start_api(state: ApiState) -> Result<CancellationToken, ExitCode> {
    let stop = CancellationToken::new();
    match api::start(Arc::new(state), stop.clone()).await {
        Ok(_) => Ok(stop),
        Err(error) => {
            eprintln!("error: {error}");
            Err(ExitCode::from(exit::FAILURE))
        }
    }
}
