//! Which orchestrator a request goes to: the choice as a user writes it (`swarm`, or `ecs`
//! with a cluster) and the connected back end.

use super::ecs::{self, Ecs};
use super::platform::{Platform, PlatformError, ServiceState, TaskRef};
use super::swarm::Swarm;

/// The orchestrator a request names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Docker Swarm, through `DOCKER_HOST`.
    Swarm,
    /// Amazon ECS, a cluster of it.
    Ecs {
        /// The cluster (name or ARN).
        cluster: String,
    },
}

impl Target {
    /// `swarm` or `ecs` (with `cluster`, else ECS's `default`); `Err` says what is known.
    pub fn named(platform: &str, cluster: Option<&str>) -> Result<Self, String> {
        match platform {
            "swarm" if cluster.is_some() => Err("a cluster goes with the ecs platform, not swarm".into()),
            "swarm" => Ok(Self::Swarm),
            "ecs" => {
                let cluster = cluster.unwrap_or(ecs::DEFAULT_CLUSTER);
                let fine = !cluster.is_empty()
                    && cluster.len() <= 2048
                    && cluster.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_:/.".contains(&b));
                if fine {
                    Ok(Self::Ecs { cluster: cluster.to_string() })
                } else {
                    Err(format!("{cluster:?} is not a cluster name"))
                }
            }
            other => Err(format!("unknown platform {other:?}: swarm or ecs")),
        }
    }

    /// Connect to it.
    pub async fn connect(&self) -> Result<Backend, PlatformError> {
        match self {
            Self::Swarm => Swarm::connect().await.map(Backend::Swarm),
            Self::Ecs { cluster } => Ecs::connect(cluster).await.map(Backend::Ecs),
        }
    }
}

/// A connected orchestrator.
pub enum Backend {
    /// Docker Swarm.
    Swarm(Swarm),
    /// Amazon ECS.
    Ecs(Ecs),
}

impl Platform for Backend {
    async fn read(&self, service: &str) -> Result<ServiceState, PlatformError> {
        match self {
            Self::Swarm(p) => p.read(service).await,
            Self::Ecs(p) => p.read(service).await,
        }
    }

    async fn apply(&self, state: &ServiceState, replicas: u64, record: (String, String)) -> Result<(), PlatformError> {
        match self {
            Self::Swarm(p) => p.apply(state, replicas, record).await,
            Self::Ecs(p) => p.apply(state, replicas, record).await,
        }
    }

    async fn running_tasks(&self, service: &str) -> Result<Vec<TaskRef>, PlatformError> {
        match self {
            Self::Swarm(p) => p.running_tasks(service).await,
            Self::Ecs(p) => p.running_tasks(service).await,
        }
    }

    async fn replace_task(&self, service: &str, task: &TaskRef) -> Result<String, PlatformError> {
        match self {
            Self::Swarm(p) => p.replace_task(service, task).await,
            Self::Ecs(p) => p.replace_task(service, task).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_are_named_with_their_cluster() {
        assert_eq!(Target::named("swarm", None), Ok(Target::Swarm));
        assert_eq!(Target::named("ecs", None), Ok(Target::Ecs { cluster: "default".into() }));
        assert_eq!(Target::named("ecs", Some("probes")), Ok(Target::Ecs { cluster: "probes".into() }));
        assert_eq!(Target::named("k8s", None), Err("unknown platform \"k8s\": swarm or ecs".into()));
        assert_eq!(Target::named("swarm", Some("x")), Err("a cluster goes with the ecs platform, not swarm".into()));
        assert_eq!(Target::named("ecs", Some("a b")), Err("\"a b\" is not a cluster name".into()));
    }
}
