//! Docker Swarm through the Engine API: `DOCKER_HOST`, `DOCKER_TLS_VERIFY` and
//! `DOCKER_CERT_PATH` as the docker CLI reads them (a unix socket by default, or `tcp://`,
//! with TLS and a client certificate: `ca.pem`, `cert.pem`, `key.pem` in the cert path,
//! default `~/.docker`). bollard connects and agrees on the engine's API version.
//!
//! The service object itself is read and written as raw JSON, on purpose: an update must send
//! the whole spec back, and bollard's typed `ServiceSpec` loses what its model does not
//! know or names differently (the engine writes `Healthcheck`, the model reads `HealthCheck`),
//! so a typed round trip changes the task template and restarts every task. Here only the
//! replica count and the move's label change, at the version the service was read at
//! (optimistic concurrency): a rolling update already under way is not disturbed beyond the
//! count.

use std::collections::BTreeMap;
use std::time::Duration;

use bollard::Docker;
use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use serde_json::Value;

use super::platform::{Platform, PlatformError, ServiceState, TaskRef};

/// How long one Engine API call may take.
const API_TIMEOUT: Duration = Duration::from_secs(20);
/// The engine's default socket.
const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// A Swarm manager's Engine API.
pub struct Swarm {
    host: String,
    /// `v1.41`: the version agreed with the engine.
    version: String,
    /// TLS with the engine (`DOCKER_TLS_VERIFY`), and the name to verify.
    tls: Option<(tokio_rustls::TlsConnector, rustls::pki_types::ServerName<'static>)>,
}

/// The client side of the engine's TLS, as the docker CLI finds it: `DOCKER_TLS_VERIFY` set
/// (non-empty) turns it on, `DOCKER_CERT_PATH` (default `~/.docker`) holds `ca.pem`,
/// `cert.pem` and `key.pem`.
fn tls_files() -> Option<std::path::PathBuf> {
    std::env::var("DOCKER_TLS_VERIFY").ok().filter(|v| !v.is_empty())?;
    let dir = std::env::var_os("DOCKER_CERT_PATH").filter(|p| !p.is_empty()).map(std::path::PathBuf::from);
    Some(dir.unwrap_or_else(|| std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".docker")))
}

impl Swarm {
    /// Connect as the docker CLI would (`DOCKER_HOST`), agreeing on the engine's API version.
    pub async fn connect() -> Result<Self, PlatformError> {
        Self::connect_to(&std::env::var("DOCKER_HOST").unwrap_or_else(|_| DEFAULT_HOST.to_string())).await
    }

    /// Connect to the engine at `host` (`unix:///…`, `tcp://…`).
    pub async fn connect_to(host: &str) -> Result<Self, PlatformError> {
        let fail = |e: &dyn std::fmt::Display| PlatformError::Api(format!("docker {host}: {e}"));
        let (docker, tls) = match tls_files() {
            None => (Docker::connect_with_host(host).map_err(|e| fail(&e))?, None),
            Some(dir) => {
                let Some(address) = host.strip_prefix("tcp://") else {
                    return Err(fail(&"DOCKER_TLS_VERIFY needs a tcp:// DOCKER_HOST"));
                };
                let file = |name: &str| dir.join(name);
                for name in ["ca.pem", "cert.pem", "key.pem"] {
                    if !file(name).is_file() {
                        return Err(fail(&format!("DOCKER_TLS_VERIFY is set but {} is missing", file(name).display())));
                    }
                }
                let docker = Docker::connect_with_ssl(
                    host,
                    &file("key.pem"),
                    &file("cert.pem"),
                    &file("ca.pem"),
                    API_TIMEOUT.as_secs(),
                    bollard::API_DEFAULT_VERSION,
                )
                .map_err(|e| fail(&e))?;
                let path = |name: &str| Some(file(name).to_string_lossy().into_owned());
                let options = crate::config::brokers::TlsOptions {
                    verify: true,
                    ca_file: path("ca.pem"),
                    cert_chain_file: path("cert.pem"),
                    private_key_file: path("key.pem"),
                    ..Default::default()
                };
                let config = crate::transport::amqps::client_config(&options).map_err(|e| fail(&e))?;
                let name = address.rsplit_once(':').map_or(address, |(h, _)| h).trim_matches(['[', ']']);
                let name = rustls::pki_types::ServerName::try_from(name.to_string()).map_err(|e| fail(&e))?;
                (docker, Some((tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)), name)))
            }
        };
        let docker = docker.with_timeout(API_TIMEOUT).negotiate_version().await.map_err(|e| fail(&e))?;
        let v = docker.client_version();
        Ok(Self { host: host.to_string(), version: format!("v{}.{}", v.major_version, v.minor_version), tls })
    }

    /// One Engine API call; the status and the body.
    async fn call(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<(u16, Bytes), PlatformError> {
        let fail = |e: &dyn std::fmt::Display| PlatformError::Api(format!("docker {}: {e}", self.host));
        let exchange = async {
            let request = Request::builder()
                .method(method)
                .uri(format!("/{}{path}", self.version))
                .header(http::header::HOST, "docker")
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(body.unwrap_or_default())))
                .map_err(|e| fail(&e))?;
            let response = if let Some(path) = self.host.strip_prefix("unix://") {
                let stream = tokio::net::UnixStream::connect(path).await.map_err(|e| fail(&e))?;
                send(hyper_util::rt::TokioIo::new(stream), request).await
            } else if let Some(address) = self.host.strip_prefix("tcp://") {
                let stream = tokio::net::TcpStream::connect(address).await.map_err(|e| fail(&e))?;
                match &self.tls {
                    Some((connector, name)) => {
                        let stream = connector.connect(name.clone(), stream).await.map_err(|e| fail(&e))?;
                        send(hyper_util::rt::TokioIo::new(stream), request).await
                    }
                    None => send(hyper_util::rt::TokioIo::new(stream), request).await,
                }
            } else {
                return Err(PlatformError::Api(format!("DOCKER_HOST {}: unix:// or tcp:// expected", self.host)));
            };
            response.map_err(|e| fail(&e))
        };
        tokio::time::timeout(API_TIMEOUT, exchange)
            .await
            .map_err(|_| fail(&format!("no answer within {API_TIMEOUT:?}")))?
    }

    /// The service object, raw.
    async fn inspect(&self, service: &str) -> Result<Value, PlatformError> {
        let (status, body) = self.call(Method::GET, &format!("/services/{service}"), None).await?;
        match status {
            200 => {
                serde_json::from_slice(&body).map_err(|e| PlatformError::Api(format!("docker: service {service}: {e}")))
            }
            404 => Err(PlatformError::NotFound(service.to_string())),
            _ => Err(PlatformError::Api(format!("docker: service {service}: HTTP {status}: {}", message(&body)))),
        }
    }
}

async fn send<IO>(
    io: IO,
    request: Request<Full<Bytes>>,
) -> Result<(u16, Bytes), Box<dyn std::error::Error + Send + Sync>>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(connection);
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// The engine's error message (`{"message": "…"}`), or the body.
fn message(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string())
}

impl Platform for Swarm {
    async fn read(&self, service: &str) -> Result<ServiceState, PlatformError> {
        let found = self.inspect(service).await?;
        let spec = &found["Spec"];
        // The engine also answers to an id prefix: scale only what was named exactly.
        if spec["Name"].as_str() != Some(service) && found["ID"].as_str() != Some(service) {
            return Err(PlatformError::NotFound(format!(
                "{service} (the engine matched {} by a prefix; name a service by its full name or id)",
                spec["Name"].as_str().unwrap_or("another service")
            )));
        }
        let Some(replicas) = spec["Mode"]["Replicated"]["Replicas"].as_u64() else {
            return Err(PlatformError::Api(format!("service {service} is not a replicated service")));
        };
        let labels: BTreeMap<String, String> = spec["Labels"]
            .as_object()
            .map(|l| l.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
            .unwrap_or_default();
        Ok(ServiceState {
            name: spec["Name"].as_str().unwrap_or(service).to_string(),
            replicas,
            labels,
            version: found["Version"]["Index"].as_u64(),
            id: found["ID"].as_str().unwrap_or(service).to_string(),
        })
    }

    async fn apply(&self, state: &ServiceState, replicas: u64, record: (String, String)) -> Result<(), PlatformError> {
        let service = state.name.as_str();
        let found = self.inspect(service).await?;
        let version = found["Version"]["Index"].as_u64();
        if version != state.version {
            return Err(PlatformError::Conflict(service.to_string()));
        }
        let mut spec = found["Spec"].clone();
        spec["Mode"]["Replicated"]["Replicas"] = replicas.into();
        if !spec["Labels"].is_object() {
            spec["Labels"] = Value::Object(Default::default());
        }
        spec["Labels"][record.0.as_str()] = record.1.into();
        let path = format!("/services/{service}/update?version={}", version.unwrap_or_default());
        let (status, body) =
            self.call(Method::POST, &path, Some(serde_json::to_vec(&spec).unwrap_or_default())).await?;
        match status {
            200 => Ok(()),
            404 => Err(PlatformError::NotFound(service.to_string())),
            _ if message(&body).contains("out of sequence") => Err(PlatformError::Conflict(service.to_string())),
            _ => Err(PlatformError::Api(format!("docker: updating {service}: HTTP {status}: {}", message(&body)))),
        }
    }

    async fn running_tasks(&self, service: &str) -> Result<Vec<TaskRef>, PlatformError> {
        Ok(self.running(service).await?.iter().filter_map(|t| Some(TaskRef::Slot(t["Slot"].as_u64()?))).collect())
    }

    /// Remove the container of the slot's running task (forced: a frozen, paused container
    /// too); Swarm sees the task fail and starts a fresh one in the slot. The Engine API can
    /// only remove containers of this node: a task elsewhere is an error that says so.
    async fn replace_task(&self, service: &str, task: &TaskRef) -> Result<String, PlatformError> {
        let TaskRef::Slot(slot) = *task else {
            return Err(PlatformError::Api(format!("Swarm names tasks by slot, not by {task} (use {{slot}})")));
        };
        let tasks = self.running(service).await?;
        let task = tasks
            .iter()
            .find(|t| t["Slot"].as_u64() == Some(slot))
            .ok_or_else(|| PlatformError::Api(format!("service {service} has no running task in slot {slot}")))?;
        let container = task["Status"]["ContainerStatus"]["ContainerID"]
            .as_str()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| PlatformError::Api(format!("the task in slot {slot} of {service} has no container yet")))?;
        let (status, body) = self.call(Method::DELETE, &format!("/containers/{container}?force=true"), None).await?;
        match status {
            204 | 200 => Ok(format!("container {}", container.get(..12).unwrap_or(container))),
            404 => Err(PlatformError::Api(format!(
                "the task in slot {slot} of {service} runs on another node ({}); the Engine API of this one cannot stop it",
                task["NodeID"].as_str().unwrap_or("?")
            ))),
            _ => Err(PlatformError::Api(format!(
                "docker: removing container {container}: HTTP {status}: {}",
                message(&body)
            ))),
        }
    }
}

impl Swarm {
    /// The service's tasks that are meant to run and do run now.
    async fn running(&self, service: &str) -> Result<Vec<Value>, PlatformError> {
        let filters = serde_json::json!({"service": [service], "desired-state": ["running"]}).to_string();
        let (status, body) = self.call(Method::GET, &format!("/tasks?filters={}", url_encode(&filters)), None).await?;
        if status != 200 {
            return Err(PlatformError::Api(format!("docker: tasks of {service}: HTTP {status}: {}", message(&body))));
        }
        let tasks: Value = serde_json::from_slice(&body)
            .map_err(|e| PlatformError::Api(format!("docker: tasks of {service}: {e}")))?;
        Ok(tasks
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["Status"]["State"].as_str() == Some("running"))
            .cloned()
            .collect())
    }
}

/// Percent-encode a query value.
fn url_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
