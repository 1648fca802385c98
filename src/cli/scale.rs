//! `concierge scale SERVICE up|down [--by N]`, `concierge scale SERVICE to N`: read the
//! service's replicas and bounds, decide, apply, print one line, publish the decision as a
//! Sensu result; exit 0 scaled, 1 refused, 2 failed, 3 bad arguments.

use std::process::ExitCode;

use clap::Args;

use super::{Context, exit};
use crate::config::Loaded;
use crate::scale::decide::Move;
use crate::scale::swarm::Swarm;
use crate::scale::{DEFAULT_COOLDOWN, Limits, Outcome, report, scale};

/// Exit code when a request is refused (at a bound, in cooldown, no max for an up-scale).
pub const EXIT_REFUSED: u8 = 1;
/// Exit code when the service could not be read or updated.
pub const EXIT_FAILED: u8 = 2;

/// `concierge scale`.
#[derive(Debug, Clone, Args)]
pub struct ScaleArgs {
    /// The service (Swarm: its name or id)
    pub service: String,
    /// `up`, `down`, or `to`
    #[arg(value_name = "up|down|to")]
    pub action: String,
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
    /// The orchestrator: swarm
    #[arg(long, default_value = "swarm")]
    pub platform: String,
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
        match (self.action.as_str(), self.count, self.by) {
            ("up", None, by) => Ok(Move::Up(by.unwrap_or(1))),
            ("down", None, by) => Ok(Move::Down(by.unwrap_or(1))),
            ("to", Some(n), None) => Ok(Move::To(n)),
            ("to", None, _) => Err("`to` needs a replica count: concierge scale SERVICE to N".into()),
            ("to", Some(_), Some(_)) => Err("--by goes with up or down, not to".into()),
            ("up" | "down", Some(n), _) => Err(format!("{} takes --by N, not a count ({n})", self.action)),
            (other, _, _) => Err(format!("unknown action {other:?}: up, down or to")),
        }
    }
}

/// Run `concierge scale`.
pub async fn run(context: &Context, args: &ScaleArgs) -> ExitCode {
    let request = match args.request() {
        Ok(request) => request,
        Err(problem) => {
            eprintln!("error: {problem}");
            return ExitCode::from(exit::UNKNOWN);
        }
    };
    if args.platform != "swarm" {
        eprintln!("error: unknown platform {:?}: swarm", args.platform);
        return ExitCode::from(exit::UNKNOWN);
    }
    if let (Some(min), Some(max)) = (args.min, args.max)
        && min > max
    {
        eprintln!("error: --min {min} is above --max {max}");
        return ExitCode::from(exit::UNKNOWN);
    }
    // Where the decision's result goes: the broker of the settings, if any.
    let settings = match Loaded::load(&context.sources(false)).map_err(|e| e.to_string()).and_then(|loaded| {
        loaded.validate().map_err(|failures| {
            failures.iter().map(|f| format!("{}: {}", f.key, f.message)).collect::<Vec<_>>().join("; ")
        })
    }) {
        Ok(settings) => settings,
        Err(problem) => {
            eprintln!("error: configuration is invalid: {problem}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let limits = Limits { min: args.min, max: args.max, cooldown: args.cooldown };
    let outcome = match Swarm::connect().await {
        Ok(swarm) => scale(&swarm, &args.service, request, limits, args.dry_run).await,
        Err(error) => Outcome::Failed { service: args.service.clone(), error },
    };
    let line = outcome.line();
    {
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), "{}{line}", if args.dry_run { "(dry run) " } else { "" });
    }
    let name = args.check_name.clone().unwrap_or_else(|| report::check_name(&args.service));
    let mut check = report::check(&outcome, &name, &args.trigger);
    if args.dry_run {
        check.insert("dry_run".into(), true.into());
    }
    match report::deliver(&settings, check).await {
        Ok(delivered) => tracing::info!(?delivered, "scale decision reported"),
        Err(problem) => eprintln!("warning: {problem}"),
    }
    ExitCode::from(outcome.status())
}
