//! What the scheduler needs of an orchestrator: read a service (replicas, its labels or
//! tags, a version for optimistic concurrency) and set its replica count together with the
//! record of the move (the cooldown outlives the process: a Sensu handler is a new process
//! per event, so the last move is kept on the service itself).

use std::collections::BTreeMap;

use super::decide::{Bounds, Cooldown, Direction};

/// Labels (Swarm) or tags (ECS) holding the bounds: Docker Flow Monitor's names first, so
/// existing stacks work unchanged, then Concierge's.
pub const MIN_LABELS: &[&str] = &["com.df.scaleMin", "concierge.scale.min"];
/// See [`MIN_LABELS`].
pub const MAX_LABELS: &[&str] = &["com.df.scaleMax", "concierge.scale.max"];
/// Label or tag prefix of the last move each way: `concierge.scale.last_up` = epoch seconds.
pub const LAST_MOVE_PREFIX: &str = "concierge.scale.last_";
/// Label or tag of the last replacement of a stuck client (epoch seconds).
pub const LAST_REPLACE_LABEL: &str = "concierge.scale.last_replace";
/// Default minimum.
pub const DEFAULT_MIN: u64 = 1;

/// A service as the platform reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceState {
    /// Its name.
    pub name: String,
    /// Desired replicas.
    pub replicas: u64,
    /// Its labels (Swarm) or tags (ECS).
    pub labels: BTreeMap<String, String>,
    /// The platform's version of the service object (Swarm: the version index; ECS has none).
    pub version: Option<u64>,
    /// The platform's own handle on it (Swarm: the service id; ECS: the service ARN).
    pub id: String,
}

impl ServiceState {
    /// Bounds: the given ones win, else the labels, else min 1 and no max.
    pub fn bounds(&self, min: Option<u64>, max: Option<u64>) -> Bounds {
        let label = |names: &[&str]| names.iter().find_map(|n| self.labels.get(*n)?.trim().parse::<u64>().ok());
        Bounds { min: min.or_else(|| label(MIN_LABELS)).unwrap_or(DEFAULT_MIN), max: max.or_else(|| label(MAX_LABELS)) }
    }

    /// The cooldown, with the last moves recorded on the service.
    pub fn cooldown(&self, seconds: u64) -> Cooldown {
        let last = |d: Direction| self.labels.get(&last_move_label(d)).and_then(|v| v.parse::<i64>().ok());
        Cooldown { seconds, last_up: last(Direction::Up), last_down: last(Direction::Down) }
    }
}

/// The label or tag recording the last move in a direction.
pub fn last_move_label(direction: Direction) -> String {
    format!("{LAST_MOVE_PREFIX}{}", direction.as_str())
}

/// A task of a service, as a client's name gives it: Swarm's task slot (`probe-{slot}`,
/// from `{{.Task.Slot}}`) or an ECS task id (`probe-{ecs_task_id}`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum TaskRef {
    /// A Swarm task slot.
    Slot(u64),
    /// An ECS task id (the last segment of its ARN).
    Id(String),
}

impl std::fmt::Display for TaskRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Slot(slot) => write!(f, "slot {slot}"),
            Self::Id(id) => write!(f, "task {id}"),
        }
    }
}

/// Why the platform could not read or update a service.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// No such service.
    #[error("service {0} not found")]
    NotFound(String),
    /// Someone else updated the service since it was read.
    #[error("service {0} was updated by someone else meanwhile")]
    Conflict(String),
    /// The API failed.
    #[error("{0}")]
    Api(String),
}

/// An orchestrator.
pub trait Platform {
    /// Read a service.
    fn read(&self, service: &str) -> impl Future<Output = Result<ServiceState, PlatformError>> + Send;
    /// Set `state`'s service to `replicas` and record the move (`label` = `value`),
    /// provided it is still at `state.version`.
    fn apply(
        &self,
        state: &ServiceState,
        replicas: u64,
        record: (String, String),
    ) -> impl Future<Output = Result<(), PlatformError>> + Send;
    /// The service's tasks that are running now.
    fn running_tasks(&self, service: &str) -> impl Future<Output = Result<Vec<TaskRef>, PlatformError>> + Send;
    /// Stop the running `task` of `service`, so the orchestrator starts a fresh one; what was
    /// stopped (a container or task id).
    fn replace_task(&self, service: &str, task: &TaskRef)
    -> impl Future<Output = Result<String, PlatformError>> + Send;
}
