//! Amazon ECS through the AWS SDK for Rust: the standard credentials chain and region
//! (`AWS_*` variables, profiles, the task role), the standard endpoint overrides
//! (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_ECS`). The bounds and the record of the last moves
//! are the service's tags (same names as the Swarm labels).
//!
//! ECS has no version on a service to update against; a scale re-reads the desired count just
//! before `UpdateService` and treats a change since the decision as a conflict (re-read and
//! decide again, once), which narrows the race to the two calls. The move is tagged after
//! the update succeeded.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_ecs::Client;
use aws_sdk_ecs::config::http::HttpResponse;
use aws_sdk_ecs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_ecs::types::{DesiredStatus, Tag};

use super::platform::{Platform, PlatformError, ServiceState, TaskRef};

/// How long one ECS operation may take, retries included.
const API_TIMEOUT: Duration = Duration::from_secs(20);

/// The default cluster, as ECS names it.
pub const DEFAULT_CLUSTER: &str = "default";

/// An SDK error that is not the service's answer, in one line (the SDK's own wording
/// carries the raw response).
fn brief<E: std::error::Error + 'static>(error: &SdkError<E, HttpResponse>) -> String {
    match error {
        SdkError::TimeoutError(_) => format!("no answer within {API_TIMEOUT:?}"),
        SdkError::DispatchFailure(e) => match e.as_connector_error() {
            Some(connector) => format!("cannot reach ECS: {}", chain(connector)),
            None => "cannot reach ECS".into(),
        },
        SdkError::ResponseError(e) => {
            let source = std::error::Error::source(error).map(ToString::to_string).unwrap_or_default();
            format!("unreadable answer (HTTP {}): {source}", e.raw().status().as_u16())
        }
        other => DisplayErrorContext(other).to_string(),
    }
}

/// An error and its causes, `a: b: c`, each said once.
fn chain(error: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// An ECS cluster's services.
pub struct Ecs {
    client: Client,
    cluster: String,
}

impl Ecs {
    /// The SDK's standard configuration (credentials, region, endpoint overrides) for `cluster`.
    pub async fn connect(cluster: &str) -> Result<Self, PlatformError> {
        let timeouts = aws_config::timeout::TimeoutConfig::builder().operation_timeout(API_TIMEOUT).build();
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(timeouts).load().await;
        if config.region().is_none() {
            return Err(PlatformError::Api("ecs: no AWS region: set AWS_REGION (or a profile's region)".into()));
        }
        Ok(Self { client: Client::new(&config), cluster: cluster.to_string() })
    }

    /// The service as DescribeServices gives it.
    async fn describe(&self, service: &str) -> Result<aws_sdk_ecs::types::Service, PlatformError> {
        let out = self
            .client
            .describe_services()
            .cluster(&self.cluster)
            .services(service)
            .send()
            .await
            .map_err(|e| self.failed(&format!("describing service {service}"), e))?;
        let found = out.services().iter().find(|s| s.status() != Some("INACTIVE"));
        match found {
            Some(found) => Ok(found.clone()),
            None => Err(PlatformError::NotFound(format!("{service} (cluster {})", self.cluster))),
        }
    }

    /// Tag the resource `arn` with `key` = `value`.
    async fn tag(
        &self,
        arn: &str,
        key: &str,
        value: String,
    ) -> Result<(), SdkError<aws_sdk_ecs::operation::tag_resource::TagResourceError, HttpResponse>> {
        let tag = Tag::builder().key(key).value(value).build();
        self.client.tag_resource().resource_arn(arn).tags(tag).send().await.map(|_| ())
    }

    /// An SDK error in one line: the service's code and message when it answered.
    fn failed<E>(&self, doing: &str, error: SdkError<E, HttpResponse>) -> PlatformError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        match error.as_service_error() {
            Some(e) if e.code() == Some("ClusterNotFoundException") => {
                PlatformError::NotFound(format!("cluster {}", self.cluster))
            }
            Some(e) if e.code() == Some("ServiceNotFoundException") => {
                PlatformError::NotFound(format!("{doing}: no such service in cluster {}", self.cluster))
            }
            Some(e) => PlatformError::Api(format!(
                "ecs: {doing}: {}: {}",
                e.code().unwrap_or("error"),
                e.message().unwrap_or("no message")
            )),
            None => PlatformError::Api(format!("ecs: {doing}: {}", brief(&error))),
        }
    }

    /// The ids of the service's tasks that are meant to run.
    async fn task_ids(&self, service: &str) -> Result<Vec<String>, PlatformError> {
        let mut ids = Vec::new();
        let mut pages = self
            .client
            .list_tasks()
            .cluster(&self.cluster)
            .service_name(service)
            .desired_status(DesiredStatus::Running)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.failed(&format!("listing the tasks of {service}"), e))?;
            ids.extend(page.task_arns().iter().map(|arn| arn.rsplit('/').next().unwrap_or(arn).to_string()));
        }
        Ok(ids)
    }
}

impl Platform for Ecs {
    async fn read(&self, service: &str) -> Result<ServiceState, PlatformError> {
        let found = self.describe(service).await?;
        let arn = found.service_arn().unwrap_or_default().to_string();
        let tags = self
            .client
            .list_tags_for_resource()
            .resource_arn(&arn)
            .send()
            .await
            .map_err(|e| self.failed(&format!("reading the tags of {service}"), e))?;
        let labels: BTreeMap<String, String> = tags
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
            .collect();
        Ok(ServiceState {
            name: found.service_name().unwrap_or(service).to_string(),
            replicas: u64::try_from(found.desired_count()).unwrap_or(0),
            labels,
            version: None,
            id: arn,
        })
    }

    async fn apply(&self, state: &ServiceState, replicas: u64, record: (String, String)) -> Result<(), PlatformError> {
        let service = state.name.as_str();
        let now = self.describe(service).await?;
        if u64::try_from(now.desired_count()).ok() != Some(state.replicas) {
            return Err(PlatformError::Conflict(service.to_string()));
        }
        let count = i32::try_from(replicas)
            .map_err(|_| PlatformError::Api(format!("ecs: {replicas} tasks is more than ECS counts")))?;
        // ECS cannot set the count and a tag in one call, so the move is recorded first: a
        // count set and then not recorded (no permission to tag, a throttled call) left no
        // cooldown, and every retry of the alert moved the service once more.
        let (key, value) = record;
        self.tag(&state.id, &key, value)
            .await
            .map_err(|e| self.failed(&format!("recording the move on {service} (its count is unchanged)"), e))?;
        if count != now.desired_count() {
            let updated =
                self.client.update_service().cluster(&self.cluster).service(service).desired_count(count).send().await;
            if let Err(error) = updated {
                // Refused by ECS: the record is put back, so a retry is not refused for a move
                // that did not happen. Without an answer (a timeout, a lost connection) the
                // count may be set: the record stays, and a retry waits for the cooldown.
                let refused = error.as_service_error().is_some();
                let restored = refused
                    && match state.labels.get(&key) {
                        Some(previous) => self.tag(&state.id, &key, previous.clone()).await.is_ok(),
                        None => {
                            self.client.untag_resource().resource_arn(&state.id).tag_keys(&key).send().await.is_ok()
                        }
                    };
                let doing = if restored {
                    format!("updating {service}")
                } else {
                    format!("updating {service} (the move stays recorded: a retry waits for the cooldown)")
                };
                return Err(self.failed(&doing, error));
            }
        }
        Ok(())
    }

    async fn running_tasks(&self, service: &str) -> Result<Vec<TaskRef>, PlatformError> {
        Ok(self.task_ids(service).await?.into_iter().map(TaskRef::Id).collect())
    }

    /// `StopTask`: the service's scheduler starts a fresh task in its place.
    async fn replace_task(&self, service: &str, task: &TaskRef) -> Result<String, PlatformError> {
        let TaskRef::Id(id) = task else {
            return Err(PlatformError::Api(format!("ECS names tasks by id, not by {task} (use {{ecs_task_id}})")));
        };
        let stopped = self
            .client
            .stop_task()
            .cluster(&self.cluster)
            .task(id)
            .reason(format!("concierge: the Sensu client of this task of {service} stopped sending keepalives"))
            .send()
            .await;
        match stopped {
            Ok(_) => {}
            // The task was stopped (HTTP 200); only its description, which is not needed here,
            // could not be read (moto, for one, writes a container's `cpu` as a number).
            Err(SdkError::ResponseError(e)) if e.raw().status().is_success() => {
                tracing::warn!(task = %id, "StopTask succeeded, its answer could not be read");
            }
            Err(e) => return Err(self.failed(&format!("stopping task {id} of {service}"), e)),
        }
        Ok(format!("task {id}"))
    }
}
