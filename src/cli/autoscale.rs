//! `concierge autoscale`: the fleet's controller, env-configured like everything else
//! (`CONCIERGE_AUTOSCALE_*`); `--once` for one round, `--dry-run` to change nothing.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::scale::PlatformArgs;
use super::{Complaint, Context, exit, validated};
use crate::scale::autoscale::controller::{Controller, Options};
use crate::scale::autoscale::decide::Policy;
use crate::transport::KEEPALIVE_INTERVAL_SECS;

/// The longest interval, window or cooldown accepted (a day).
pub const MAX_SECONDS: u64 = 86_400;

/// `concierge autoscale`.
#[derive(Debug, Clone, Args)]
pub struct AutoscaleArgs {
    /// The fleet's service (Swarm: its name; ECS: its name in --cluster)
    #[arg(long, env = "CONCIERGE_AUTOSCALE_SERVICE")]
    pub service: Option<String>,
    /// Fewest replicas (required)
    #[arg(long, env = "CONCIERGE_AUTOSCALE_MIN")]
    pub min: Option<u64>,
    /// Most replicas (required)
    #[arg(long, env = "CONCIERGE_AUTOSCALE_MAX")]
    pub max: Option<u64>,
    /// The orchestrator: swarm (DOCKER_HOST) or ecs (the AWS SDK's settings) [default: ecs
    /// with --cluster, else swarm]
    #[arg(long, env = "CONCIERGE_AUTOSCALE_PLATFORM")]
    pub platform: Option<String>,
    /// The ECS cluster [default: default]
    #[arg(long, env = "CONCIERGE_AUTOSCALE_CLUSTER")]
    pub cluster: Option<String>,
    /// The fleet's round-robin queues, comma-separated [default: the client's `roundrobin:`
    /// subscriptions]
    #[arg(long, env = "CONCIERGE_AUTOSCALE_QUEUES", value_delimiter = ',')]
    pub queues: Vec<String>,
    /// Seconds between rounds
    #[arg(long, env = "CONCIERGE_AUTOSCALE_INTERVAL", default_value_t = 15)]
    pub interval: u64,
    /// Busy ratio to hold each replica at
    #[arg(long, env = "CONCIERGE_AUTOSCALE_BUSY_TARGET", default_value_t = 0.6)]
    pub busy_target: f64,
    /// Waiting requests per replica [default: the replicas' command slots]
    #[arg(long, env = "CONCIERGE_AUTOSCALE_BACKLOG_TARGET")]
    pub backlog_target: Option<f64>,
    /// Most replicas added at once [default: double, at least +1]
    #[arg(long, env = "CONCIERGE_AUTOSCALE_STEP")]
    pub step: Option<u64>,
    /// Seconds of lower recommendations before a scale-down
    #[arg(long, env = "CONCIERGE_AUTOSCALE_WINDOW", default_value_t = 300)]
    pub window: u64,
    /// Seconds a move holds back the next one in the same direction [default: the interval]
    #[arg(long, env = "CONCIERGE_AUTOSCALE_COOLDOWN")]
    pub cooldown: Option<u64>,
    /// Address for /healthz and /metrics
    #[arg(long, env = "CONCIERGE_AUTOSCALE_LISTEN", default_value = "127.0.0.1:9096")]
    pub listen: std::net::SocketAddr,
    /// Decide and print, change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// One round (after listening to one keepalive period), then exit 0 held or scaled, 1
    /// refused, 2 failed
    #[arg(long)]
    pub once: bool,
}

impl AutoscaleArgs {
    /// The policy, or what is wrong with the settings.
    pub fn policy(&self) -> Result<Policy, String> {
        let (Some(min), Some(max)) = (self.min, self.max) else {
            return Err("set the bounds: --min and --max (CONCIERGE_AUTOSCALE_MIN, CONCIERGE_AUTOSCALE_MAX)".into());
        };
        if min > max {
            return Err(format!("--min {min} is above --max {max}"));
        }
        if min == 0 {
            return Err(
                "--min must be at least 1: with no replica the fleet's auto-delete queues are gone, and no backlog could bring one back"
                    .into(),
            );
        }
        if !(self.busy_target > 0.0 && self.busy_target <= 1.0) {
            return Err(format!("--busy-target {} must be above 0 and at most 1", self.busy_target));
        }
        if self.backlog_target.is_some_and(|t| !(t > 0.0 && t.is_finite())) {
            return Err("--backlog-target must be above 0".into());
        }
        if self.step == Some(0) {
            return Err("--step must be at least 1".into());
        }
        if !(1..=MAX_SECONDS).contains(&self.interval) {
            return Err(format!("--interval must be 1 to {MAX_SECONDS} seconds"));
        }
        if self.window > MAX_SECONDS || self.cooldown.is_some_and(|c| c > MAX_SECONDS) {
            return Err(format!("--window and --cooldown must be at most {MAX_SECONDS} seconds"));
        }
        Ok(Policy {
            min,
            max,
            busy_target: self.busy_target,
            backlog_target: self.backlog_target,
            step: self.step,
            window: self.window,
        })
    }
}

/// Run `concierge autoscale`.
pub async fn run(context: &Context, args: &AutoscaleArgs) -> ExitCode {
    let fail = |problem: &dyn std::fmt::Display| {
        eprintln!("error: {problem}");
        ExitCode::from(exit::CONFIG)
    };
    let policy = match args.policy() {
        Ok(policy) => policy,
        Err(problem) => return fail(&problem),
    };
    let Some(service) = args.service.clone().filter(|s| crate::scale::valid_service_name(s)) else {
        return fail(&"set the fleet's service: --service NAME (CONCIERGE_AUTOSCALE_SERVICE)");
    };
    let platform = PlatformArgs { platform: args.platform.clone(), cluster: args.cluster.clone() };
    let target = match platform.target() {
        Ok(target) => target,
        Err(problem) => return fail(&problem),
    };
    let settings = match validated(&context.sources(false), Complaint::Sensu) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    if !settings.has_broker {
        return fail(&"autoscale reads the fleet's queues and keepalives: set RABBITMQ_URL");
    }
    let queues: Vec<String> = if args.queues.is_empty() {
        settings.client.subscriptions.iter().filter(|s| s.starts_with("roundrobin:")).cloned().collect()
    } else {
        args.queues.iter().map(|q| q.trim().to_string()).filter(|q| !q.is_empty()).collect()
    };
    if queues.is_empty() {
        return fail(
            &"name the fleet's queues: --queues roundrobin:NAME (or the same SENSU_CLIENT_SUBSCRIPTIONS as the fleet)",
        );
    }
    let platform = match target.connect().await {
        Ok(platform) => platform,
        Err(error) => return fail(&error),
    };
    let options = Options {
        check_name: format!("autoscale_{}", crate::proto::name_from(&service, '_')),
        service,
        policy,
        queues,
        interval: Duration::from_secs(args.interval),
        cooldown: args.cooldown.unwrap_or(args.interval),
        dry_run: args.dry_run,
    };
    // Rounds back off for up to five minutes while something is down: not a stall.
    let stale_after = i64::try_from(crate::scale::autoscale::controller::MAX_BACKOFF.as_secs() + 2 * args.interval)
        .unwrap_or(i64::MAX);
    let mut controller = match Controller::start(platform, settings, options.clone()).await {
        Ok(controller) => controller,
        Err(problem) => return fail(&format!("cannot watch the broker: {problem}")),
    };
    if args.once {
        controller.listen_for(Duration::from_secs(KEEPALIVE_INTERVAL_SECS + 1)).await;
        let round = controller.round().await;
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), "{}", round.line(&options.service));
        return ExitCode::from(round.status());
    }
    let signals = match crate::client::signals::Signals::install() {
        Ok(signals) => signals,
        Err(error) => return fail(&format!("cannot install signal handlers: {error}")),
    };
    let (metrics, health) = (controller.metrics.clone(), controller.health.clone());
    let status = crate::scale::autoscale::serve_status(args.listen, signals.stop.clone(), metrics, health, stale_after);
    match status.await {
        Ok(bound) => tracing::info!(%bound, "autoscale: /healthz and /metrics"),
        Err(error) => return fail(&format!("{}: {error}", args.listen)),
    }
    tracing::info!(service = %options.service, queues = ?options.queues, "autoscale: watching the fleet");
    controller.run(signals.stop.clone()).await;
    ExitCode::from(exit::OK)
}
