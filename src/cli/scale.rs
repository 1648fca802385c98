//! `concierge scale SERVICE up|down [--by N]`, `concierge scale SERVICE to N`: read the
//! service's replicas and bounds, decide, apply, print one line, publish the decision as a
//! Sensu result; exit 0 scaled, 1 refused, 2 failed, 3 bad arguments.
//! `concierge scale handle`: the same, as a Sensu pipe handler reading the event on stdin.

use std::io::Read as _;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{Complaint, Context, exit, validated};
use crate::scale::backend::Target;
use crate::scale::decide::Move;
use crate::scale::event::{self, Asked};
use crate::scale::platform::TaskRef;
use crate::scale::{DEFAULT_COOLDOWN, Limits, Outcome, report, scale};

/// Exit code when a request is refused (at a bound, in cooldown, no max for an up-scale).
pub const EXIT_REFUSED: u8 = 1;
/// Exit code when the service could not be read or updated.
pub const EXIT_FAILED: u8 = 2;

/// How long a decision may take, reading and applying included (below the 30 s a Sensu
/// handler is usually given).
pub const DECISION_DEADLINE: std::time::Duration = std::time::Duration::from_secs(25);

/// Largest event accepted on the handler's stdin.
pub const MAX_EVENT_BYTES: u64 = 1024 * 1024;

/// `concierge scale …`: a service directly, or a front door.
#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ScaleCommand {
    /// A front door instead of a service.
    #[command(subcommand)]
    pub tool: Option<ScaleTool>,
    /// Scale a service directly.
    #[command(flatten)]
    pub direct: ScaleArgs,
}

/// The scheduler's front doors.
#[derive(Debug, Clone, Subcommand)]
pub enum ScaleTool {
    /// A Sensu 1.x pipe handler: read the event sensu-server writes on stdin and scale what
    /// its check's `scale` attribute names (exit as `scale`; 0 when there is nothing to do)
    Handle(HandleArgs),
    /// An HTTP receiver: Alertmanager webhooks (POST /v1/alertmanager, payload version 4) and
    /// scripts (POST /v1/scale?service=X&by=±N), with a bearer token (CONCIERGE_SCALE_TOKEN)
    Serve(ServeArgs),
}

/// The orchestrator.
#[derive(Debug, Clone, Args)]
pub struct PlatformArgs {
    /// The orchestrator: swarm (DOCKER_HOST) or ecs (the AWS SDK's settings) [default: ecs
    /// with --cluster, else swarm]
    #[arg(long)]
    pub platform: Option<String>,
    /// The ECS cluster [default: default]
    #[arg(long)]
    pub cluster: Option<String>,
}

impl PlatformArgs {
    /// The target, or why there is none.
    pub fn target(&self) -> Result<Target, String> {
        let implied = if self.cluster.is_some() { "ecs" } else { "swarm" };
        Target::named(self.platform.as_deref().unwrap_or(implied), self.cluster.as_deref())
    }
}

/// `concierge scale serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:9095")]
    pub listen: std::net::SocketAddr,
    /// Serve without a bearer token (anyone who reaches the port can scale services)
    #[arg(long)]
    pub insecure_no_auth: bool,
    /// Seconds a move holds back the next one in the same direction
    #[arg(long, default_value_t = DEFAULT_COOLDOWN)]
    pub cooldown: u64,
    /// Fewest replicas [default: each service's labels, else 1]
    #[arg(long)]
    pub min: Option<u64>,
    /// Most replicas [default: each service's labels; none refuses up-scales]
    #[arg(long)]
    pub max: Option<u64>,
    /// The orchestrator.
    #[command(flatten)]
    pub platform: PlatformArgs,
}

/// `concierge scale handle`.
#[derive(Debug, Clone, Args)]
pub struct HandleArgs {
    /// Replace stuck clients: on a client's keepalive event, stop the task behind it. NAME
    /// holds `{slot}` (Swarm: `probe-{slot}=probes_concierge`) or `{ecs_task_id}` (ECS, in
    /// --cluster) (repeatable)
    #[arg(long = "replace-clients", value_name = "NAME-{slot}=SERVICE")]
    pub replace_clients: Vec<crate::scale::event::ClientPattern>,
    /// Seconds a move holds back the next one in the same direction (the check's
    /// `scale.cooldown` wins)
    #[arg(long, default_value_t = DEFAULT_COOLDOWN)]
    pub cooldown: u64,
    /// Decide and report, but change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// The orchestrator, for checks whose `scale` names none.
    #[command(flatten)]
    pub platform: PlatformArgs,
}

/// `concierge scale SERVICE …`.
#[derive(Debug, Clone, Args)]
pub struct ScaleArgs {
    /// The service (Swarm: its name or id; ECS: its name or ARN)
    #[arg(required = true)]
    pub service: Option<String>,
    /// `up`, `down`, or `to`
    #[arg(value_name = "up|down|to", required = true)]
    pub action: Option<String>,
    /// The replica count, for `to`
    #[arg(value_name = "N")]
    pub count: Option<u64>,
    /// Replicas to add or remove [default: 1]
    #[arg(long)]
    pub by: Option<u64>,
    /// Fewest replicas [default: the service's com.df.scaleMin or concierge.scale.min label, else 1]
    #[arg(long)]
    pub min: Option<u64>,
    /// Most replicas [default: the service's com.df.scaleMax or concierge.scale.max label; none refuses up-scales]
    #[arg(long)]
    pub max: Option<u64>,
    /// Seconds a move holds back the next one in the same direction
    #[arg(long, default_value_t = DEFAULT_COOLDOWN)]
    pub cooldown: u64,
    /// Decide and report, but change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// The orchestrator.
    #[command(flatten)]
    pub platform: PlatformArgs,
    /// The result's check name [default: scale_SERVICE]
    #[arg(long)]
    pub check_name: Option<String>,
    /// What asked for the move, for the result's `trigger` attribute
    #[arg(long, default_value = "concierge scale")]
    pub trigger: String,
}

impl ScaleArgs {
    /// The request the arguments make, or why they make none.
    pub fn request(&self) -> Result<Move, String> {
        if self.by == Some(0) {
            return Err("--by must be at least 1".into());
        }
        if !crate::scale::valid_service_name(self.service.as_deref().unwrap_or_default()) {
            return Err(format!("{:?} is not a service name", self.service.as_deref().unwrap_or_default()));
        }
        match (self.action.as_deref().unwrap_or_default(), self.count, self.by) {
            ("up", None, by) => Ok(Move::Up(by.unwrap_or(1))),
            ("down", None, by) => Ok(Move::Down(by.unwrap_or(1))),
            ("to", Some(n), None) => Ok(Move::To(n)),
            ("to", None, _) => Err("`to` needs a replica count: concierge scale SERVICE to N".into()),
            ("to", Some(_), Some(_)) => Err("--by goes with up or down, not to".into()),
            (action @ ("up" | "down"), Some(n), _) => Err(format!("{action} takes --by N, not a count ({n})")),
            (other, _, _) => Err(format!("unknown action {other:?}: up, down or to")),
        }
    }
}

/// Run `concierge scale`.
pub async fn run(context: &Context, command: &ScaleCommand) -> ExitCode {
    match &command.tool {
        Some(ScaleTool::Handle(args)) => handle(context, args).await,
        Some(ScaleTool::Serve(args)) => serve(context, args).await,
        None => direct(context, &command.direct).await,
    }
}

/// `concierge scale SERVICE up|down|to`.
async fn direct(context: &Context, args: &ScaleArgs) -> ExitCode {
    let request = match args.request() {
        Ok(request) => request,
        Err(problem) => {
            eprintln!("error: {problem}");
            return ExitCode::from(exit::UNKNOWN);
        }
    };
    let target = match args.platform.target() {
        Ok(target) => target,
        Err(problem) => {
            eprintln!("error: {problem}");
            return ExitCode::from(exit::UNKNOWN);
        }
    };
    if let (Some(min), Some(max)) = (args.min, args.max)
        && min > max
    {
        eprintln!("error: --min {min} is above --max {max}");
        return ExitCode::from(exit::UNKNOWN);
    }
    let service = args.service.clone().unwrap_or_default();
    let limits = Limits { min: args.min, max: args.max, cooldown: args.cooldown };
    let name = args.check_name.clone().unwrap_or_else(|| report::check_name(&service));
    decide_and_report(context, &target, &service, request, limits, args.dry_run, &name, &args.trigger).await
}

/// `concierge scale handle`: the event on stdin.
async fn handle(context: &Context, args: &HandleArgs) -> ExitCode {
    let mut input = Vec::new();
    let read = std::io::stdin().lock().take(MAX_EVENT_BYTES + 1).read_to_end(&mut input);
    let event = match read {
        Err(error) => Err(format!("cannot read the event on stdin: {error}")),
        Ok(_) if input.len() as u64 > MAX_EVENT_BYTES => {
            Err(format!("the event is larger than {MAX_EVENT_BYTES} bytes"))
        }
        Ok(_) => serde_json::from_slice::<serde_json::Value>(&input)
            .map_err(|e| format!("the event on stdin is not JSON: {e}")),
    };
    let target = args.platform.target();
    let asked = target.clone().and_then(|_| event.and_then(|event| event::asked_with(&event, &args.replace_clients)));
    match asked {
        Err(problem) => {
            eprintln!("UNKNOWN: {problem}; nothing scaled");
            ExitCode::from(exit::UNKNOWN)
        }
        Ok(Asked::Nothing(why)) => {
            use std::io::Write as _;
            let _ = writeln!(std::io::stdout(), "SCALE IGNORED: {why}");
            ExitCode::from(exit::OK)
        }
        Ok(Asked::Replace { service, task, client, trigger }) => {
            let limits = Limits { min: None, max: None, cooldown: args.cooldown };
            // The name's placeholder says where the task runs: a slot on Swarm, an id on ECS.
            let target = match &task {
                TaskRef::Slot(_) => Target::Swarm,
                TaskRef::Id(_) => Target::Ecs {
                    cluster: args.platform.cluster.clone().unwrap_or_else(|| crate::scale::ecs::DEFAULT_CLUSTER.into()),
                },
            };
            report_outcome(context, args.dry_run, &report::check_name(&service), &trigger, async {
                if args.dry_run {
                    return Outcome::Replaced { service: service.clone(), client, task, stopped: "nothing".into() };
                }
                match target.connect().await {
                    Ok(platform) => crate::scale::replace(&platform, &service, &client, task, limits).await,
                    Err(error) => Outcome::Failed { service: service.clone(), error },
                }
            })
            .await
        }
        Ok(Asked::Scale { service, request, min, max, cooldown, platform, trigger }) => {
            if let (Some(min), Some(max)) = (min, max)
                && min > max
            {
                eprintln!("UNKNOWN: `scale.min` {min} is above `scale.max` {max}; nothing scaled");
                return ExitCode::from(exit::UNKNOWN);
            }
            let limits = Limits { min, max, cooldown: cooldown.unwrap_or(args.cooldown) };
            let name = report::check_name(&service);
            let target = platform.or(target.ok()).unwrap_or(Target::Swarm);
            decide_and_report(context, &target, &service, request, limits, args.dry_run, &name, &trigger).await
        }
    }
}

/// `concierge scale serve`: until SIGTERM/SIGINT.
async fn serve(context: &Context, args: &ServeArgs) -> ExitCode {
    let token = match scale_token(&context.env) {
        Ok(Some(token)) => Some(token),
        Ok(None) if args.insecure_no_auth => None,
        Ok(None) => {
            eprintln!(
                "error: set CONCIERGE_SCALE_TOKEN (or CONCIERGE_SCALE_TOKEN_FILE): requests must carry it as a bearer token; --insecure-no-auth serves without one"
            );
            return ExitCode::from(exit::CONFIG);
        }
        Err(problem) => {
            eprintln!("error: {problem}");
            return ExitCode::from(exit::CONFIG);
        }
    };
    let settings = match validated(&context.sources(false), Complaint::Sensu) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    let platform = match args.platform.target() {
        Ok(target) => target.connect().await,
        Err(problem) => {
            eprintln!("error: {problem}");
            return ExitCode::from(exit::CONFIG);
        }
    };
    let platform = match platform {
        Ok(platform) => platform,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let signals = match crate::client::signals::Signals::install() {
        Ok(signals) => signals,
        Err(error) => {
            eprintln!("error: cannot install signal handlers: {error}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let limits = Limits { min: args.min, max: args.max, cooldown: args.cooldown };
    let receiver = crate::scale::serve::Receiver::new(platform, settings, token, limits);
    if let Err(error) = receiver.serve(args.listen, signals.stop.clone()).await {
        eprintln!("error: {}: {error}", args.listen);
        return ExitCode::from(EXIT_FAILED);
    }
    signals.stop.cancelled().await;
    ExitCode::from(exit::OK)
}

/// The receiver's bearer token: `CONCIERGE_SCALE_TOKEN`, or the file `CONCIERGE_SCALE_TOKEN_FILE` names.
fn scale_token(env: &std::collections::HashMap<String, String>) -> Result<Option<String>, String> {
    let env = crate::config::env::with_files(env).map_err(|e| e.to_string())?;
    Ok(env.get("CONCIERGE_SCALE_TOKEN").map(|t| t.trim().to_string()).filter(|t| !t.is_empty()))
}

/// Decide (and apply), print the line, publish the result; exit with the decision's status.
#[allow(clippy::too_many_arguments)]
async fn decide_and_report(
    context: &Context,
    target: &Target,
    service: &str,
    request: Move,
    limits: Limits,
    dry_run: bool,
    check_name: &str,
    trigger: &str,
) -> ExitCode {
    let outcome = async {
        match target.connect().await {
            Ok(platform) => scale(&platform, service, request, limits, dry_run).await,
            Err(error) => Outcome::Failed { service: service.to_string(), error },
        }
    };
    report_outcome(context, dry_run, check_name, trigger, outcome).await
}

/// Settle `outcome` (after the settings loaded), print its line, publish it as a result; exit
/// with its status.
async fn report_outcome(
    context: &Context,
    dry_run: bool,
    check_name: &str,
    trigger: &str,
    outcome: impl Future<Output = Outcome>,
) -> ExitCode {
    // Where the decision's result goes: the broker of the settings, if any.
    let settings = match validated(&context.sources(false), Complaint::Sensu) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    // Within a Sensu handler's usual timeout, whatever the engine does.
    let outcome = match tokio::time::timeout(DECISION_DEADLINE, outcome).await {
        Ok(outcome) => outcome,
        Err(_) => Outcome::Failed {
            service: check_name.trim_start_matches("scale_").to_string(),
            error: crate::scale::platform::PlatformError::Api(format!("no decision within {DECISION_DEADLINE:?}")),
        },
    };
    {
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), "{}{}", if dry_run { "(dry run) " } else { "" }, outcome.line());
    }
    // A dry run is not reported: its status 0 could resolve a real event.
    if dry_run {
        return ExitCode::from(outcome.status());
    }
    let check = report::check(&outcome, check_name, trigger);
    match report::deliver(&settings, check).await {
        Ok(delivered) => tracing::info!(?delivered, "scale decision reported"),
        Err(problem) => eprintln!("warning: {problem}"),
    }
    ExitCode::from(outcome.status())
}
