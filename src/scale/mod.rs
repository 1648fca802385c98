//! The scheduler: scale a service within its bounds when monitoring says so, and report every
//! decision as a Sensu result beside the incident that caused it.
//!
//! * [`decide`]: the pure decision (bounds, clamping, cooldown) and its one-line wording;
//! * [`platform`]: what an orchestrator must offer (read a service, set its count, keep the
//!   record of the move on the service so a cooldown outlives the process);
//! * [`swarm`]: Docker Swarm through the Engine API (bollard);
//! * [`ecs`]: Amazon ECS through the AWS SDK for Rust;
//! * [`backend`]: which of them a request names, connected;
//! * [`report`]: a decision as a Sensu result: to the broker, a local client socket, or stdout;
//! * [`event`]: a Sensu event (the pipe handler's stdin) as a scaling request;
//! * [`serve`]: the HTTP receiver for Alertmanager webhooks and scripts;
//! * [`autoscale`]: the fleet sizing itself from its own backlog and load.
//!
//! [`scale`] ties them: read, decide, apply; a conflicting concurrent update re-reads and
//! retries once.

pub mod autoscale;
pub mod backend;
pub mod decide;
pub mod ecs;
pub mod event;
pub mod platform;
pub mod report;
pub mod serve;
pub mod swarm;

use decide::{Decision, Move};
use platform::{LAST_REPLACE_LABEL, Platform, PlatformError, TaskRef, last_move_label};

/// What a caller sets besides the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Minimum replicas (else the service's labels, else 1).
    pub min: Option<u64>,
    /// Maximum replicas (else the service's labels; none refuses up-scales).
    pub max: Option<u64>,
    /// Seconds a move holds the next one in the same direction back.
    pub cooldown: u64,
}

/// Whether `name` can be a service name or id (`[A-Za-z0-9][A-Za-z0-9_.-]*`, at most 255
/// characters): nothing else reaches an orchestrator's API.
pub fn valid_service_name(name: &str) -> bool {
    name.len() <= 255
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(crate::proto::is_name_char)
}

/// The failure for a name that is no service name: nothing reaches the platform.
fn unnamable(service: &str) -> Option<Outcome> {
    let error = PlatformError::Api(format!("{service:?} is not a service name"));
    (!valid_service_name(service)).then(|| Outcome::Failed { service: service.to_string(), error })
}

/// Default cooldown per service and direction, in seconds.
pub const DEFAULT_COOLDOWN: u64 = 300;

/// How a scale request ended.
#[derive(Debug)]
pub enum Outcome {
    /// Decided (and, unless a dry run, applied).
    Decided(Decision),
    /// A stuck client's task was stopped for the orchestrator to replace.
    Replaced {
        /// The service.
        service: String,
        /// The client.
        client: String,
        /// Its task.
        task: TaskRef,
        /// What was stopped.
        stopped: String,
    },
    /// A replacement was refused; why.
    ReplaceRefused {
        /// The service.
        service: String,
        /// The client.
        client: String,
        /// Why.
        why: String,
    },
    /// The service could not be read or updated.
    Failed {
        /// The service.
        service: String,
        /// Why.
        error: PlatformError,
    },
}

impl Outcome {
    /// Sensu status and exit code: 0 scaled, 1 refused, 2 failed.
    pub fn status(&self) -> u8 {
        match self {
            Self::Decided(d) if matches!(d.verdict, decide::Verdict::Scale { .. }) => 0,
            Self::Replaced { .. } => 0,
            Self::Decided(_) | Self::ReplaceRefused { .. } => 1,
            Self::Failed { .. } => 2,
        }
    }

    /// The one line: `SCALE OK: api 3 → 4 (up by 1; bounds 2..6)`.
    pub fn line(&self) -> String {
        match self {
            Self::Decided(d) => d.line(),
            Self::Replaced { service, client, task, stopped } => {
                format!(
                    "SCALE REPLACED: {client} (service {service}, {task}): stopped {stopped}; its keepalives had stopped"
                )
            }
            Self::ReplaceRefused { service, client, why } => {
                format!("SCALE REFUSED: {client} (service {service}) is not replaced: {why}")
            }
            Self::Failed { service, error } => format!("SCALE FAILED: {service}: {error}"),
        }
    }

    /// The service.
    pub fn service(&self) -> &str {
        match self {
            Self::Decided(d) => &d.service,
            Self::Replaced { service, .. } | Self::ReplaceRefused { service, .. } | Self::Failed { service, .. } => {
                service
            }
        }
    }
}

/// Read `service`, decide `request`, and apply the decision unless `dry_run`. A concurrent
/// update between the read and the write re-reads and decides again, once.
pub async fn scale(platform: &impl Platform, service: &str, request: Move, limits: Limits, dry_run: bool) -> Outcome {
    if let Some(failed) = unnamable(service) {
        return failed;
    }
    let mut retried = false;
    loop {
        let state = match platform.read(service).await {
            Ok(state) => state,
            Err(error) => return Outcome::Failed { service: service.to_string(), error },
        };
        let now = crate::proto::now_epoch();
        let bounds = state.bounds(limits.min, limits.max);
        let decision = decide::decide(service, state.replicas, request, bounds, state.cooldown(limits.cooldown), now);
        let decide::Verdict::Scale { to, .. } = decision.verdict else { return Outcome::Decided(decision) };
        if dry_run {
            return Outcome::Decided(decision);
        }
        let record = (last_move_label(decision.direction()), now.to_string());
        match platform.apply(&state, to, record).await {
            Ok(()) => return Outcome::Decided(decision),
            Err(PlatformError::Conflict(_)) if !retried => {
                tracing::info!(service, "the service changed while scaling it; reading it again");
                retried = true;
            }
            Err(error) => return Outcome::Failed { service: service.to_string(), error },
        }
    }
}

/// Replace the stuck client in `task` of `service`: stop its task so the orchestrator starts
/// a fresh one — at most one replacement per service per cooldown, never while the service
/// is below its min. The replacement is recorded on the service (`concierge.scale.last_replace`).
pub async fn replace(platform: &impl Platform, service: &str, client: &str, task: TaskRef, limits: Limits) -> Outcome {
    let refuse =
        |why: String| Outcome::ReplaceRefused { service: service.to_string(), client: client.to_string(), why };
    if let Some(failed) = unnamable(service) {
        return failed;
    }
    let state = match platform.read(service).await {
        Ok(state) => state,
        Err(error) => return Outcome::Failed { service: service.to_string(), error },
    };
    let bounds = state.bounds(limits.min, limits.max);
    let running = match platform.running_tasks(service).await {
        Ok(running) => running,
        Err(error) => return Outcome::Failed { service: service.to_string(), error },
    };
    if !running.contains(&task) {
        return refuse(format!("{task} is not a running task of it"));
    }
    if running.len().saturating_sub(1) < usize::try_from(bounds.min).unwrap_or(usize::MAX) {
        return refuse(format!(
            "{} of its tasks run; stopping one would leave fewer than its min {}",
            running.len(),
            bounds.min
        ));
    }
    let now = crate::proto::now_epoch();
    let last = state.labels.get(LAST_REPLACE_LABEL).and_then(|v| v.parse::<i64>().ok());
    if let Some(ago) = decide::cooling(last, limits.cooldown, now) {
        return refuse(format!("a client of it was replaced {ago} s ago, cooldown {} s", limits.cooldown));
    }
    // Recorded first: a second handler for the same outage sees the cooldown.
    if let Err(error) = platform.apply(&state, state.replicas, (LAST_REPLACE_LABEL.to_string(), now.to_string())).await
    {
        return Outcome::Failed { service: service.to_string(), error };
    }
    match platform.replace_task(service, &task).await {
        Ok(stopped) => Outcome::Replaced { service: service.to_string(), client: client.to_string(), task, stopped },
        Err(error) => Outcome::Failed { service: service.to_string(), error },
    }
}
