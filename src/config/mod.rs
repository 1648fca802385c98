//! Where settings come from, and their validation.
//!
//! The loading order is sensu-settings' (`Sensu::Settings.load`):
//! 1. defaults (client name = hostname, address = first non-loopback IPv4, …);
//! 2. the environment ([`env`]), assigned over the defaults;
//! 3. config files, deep-merged in order ([`files`]), then the JSON documents given
//!    whole in `CONCIERGE_CONFIG_JSON` / `CONCIERGE_CONFIG_B64`;
//! 4. overrides: `client:<name>` appended to `client.subscriptions`.
//!
//! The result is kept as the raw merged JSON document ([`Settings::raw`]), because
//! Sensu settings are open-ended (custom client attributes, unknown scopes shared with
//! sensu-server), plus typed views of the parts Concierge interprets.
//!
//! We do not use the `config` crate for this: it replaces arrays where Sensu
//! concatenates them, lower-cases keys, and its `try_parsing` turns `007` into `7`.
//! Sensu's merge is a few lines ([`crate::proto::merge`]) and the env table is ours.

pub mod brokers;
pub mod env;
pub mod files;
pub mod identity;
pub mod validate;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Value, json};

pub use validate::Failure;

use crate::proto::{Object, deep_merge_into};

/// Sensu's default config file.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/sensu/config.json";
/// Sensu's default config directory.
pub const DEFAULT_CONFIG_DIR: &str = "/etc/sensu/conf.d";
/// The project-relative directory of check definitions that local mode runs.
pub const LOCAL_CHECKS_DIR: &str = "checks";
/// Sensu's default `sensu.spawn.limit` (sensu-settings `DEFAULT_SETTINGS`).
pub const DEFAULT_SPAWN_LIMIT: usize = 12;
/// Default number of built-in checks running at once (`concierge.builtin_concurrency`).
pub const DEFAULT_BUILTIN_LIMIT: usize = 500;
/// Default JSON socket port (`client.socket.port`).
pub const DEFAULT_SOCKET_PORT: u16 = 3030;
/// Default HTTP socket port (`client.http_socket.port`).
pub const DEFAULT_HTTP_PORT: u16 = 3031;
/// Default bind address of both sockets.
pub const DEFAULT_BIND: &str = "127.0.0.1";
/// Name of the loaded-files list sensu-plugin reads (`SENSU_LOADED_TEMPFILE`).
pub const LOADED_TEMPFILE_NAME: &str = "sensu_client_loaded_files";

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// An environment variable's value is unusable.
    #[error("environment variable {var}: {problem}")]
    Env {
        /// The variable.
        var: String,
        /// What is wrong.
        problem: String,
    },
    /// A config file or directory could not be read or parsed.
    #[error("config file {}: {problem}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

/// Which files and environment to load settings from.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// `-c`: a config file. `None` means the default, if it exists.
    pub config_file: Option<PathBuf>,
    /// `-d`: config directories. Empty means the defaults that exist.
    pub config_dirs: Vec<PathBuf>,
    /// Also read `./checks` when no directory is given (local mode, `check`).
    pub include_local_checks_dir: bool,
    /// `run`: also read `./checks` (when no directory is given) if no broker is
    /// configured, since the client then runs locally. Whether one is configured is
    /// decided before `./checks` is read.
    pub local_checks_without_broker: bool,
    /// The environment (injected so tests need not touch the process's).
    pub env: HashMap<String, String>,
}

/// How subscription requests are acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckMode {
    /// Ack a request only after its result was published and confirmed by the broker
    /// (default): a client killed mid-check loses nothing, RabbitMQ redelivers.
    AfterPublish,
    /// sensu-client's behaviour: consume with `no_ack`; a dying client loses its requests.
    Auto,
}

/// Bytes of a command's output kept unless `concierge.output_limit` says otherwise.
pub const DEFAULT_OUTPUT_LIMIT: usize = 2 * 1024 * 1024;

/// Concierge's own settings: the `concierge` scope of the config (sensu-server ignores
/// unknown scopes, so the same files can serve both).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConciergeSettings {
    /// Built-in checks running at once. Default 500.
    pub builtin_concurrency: usize,
    /// When requests are acknowledged. Default `after_publish`.
    pub ack: AckMode,
    /// `basic.qos` prefetch for subscriptions (channel-wide). Default: the execution
    /// slots (`sensu.spawn.limit` + `builtin_concurrency`), so a replica holds no more
    /// unacknowledged requests than it can run.
    pub prefetch: Option<u16>,
    /// Seconds a publish may take until the broker confirms it. Default 10.
    pub publish_timeout: f64,
    /// Results kept while the broker is unreachable; the oldest is dropped beyond this.
    /// Default 10000.
    pub result_buffer: usize,
    /// Seconds SIGTERM/SIGINT may take to drain (finish checks, publish, deregister).
    /// Default 8, below Docker's 10 s stop timeout.
    pub drain_grace: f64,
    /// Largest check request accepted from a subscription, in bytes. Default 1 MiB.
    pub max_request_bytes: usize,
    /// AMQP heartbeat in seconds when the broker setting has none. Default unset: the
    /// broker's proposal is used (RabbitMQ: 60 s), as sensu-client does.
    pub heartbeat: Option<u16>,
    /// Seconds to connect to a broker (TCP, TLS, AMQP handshake). Default 10.
    pub connect_timeout: f64,
    /// AMQP `frame_max` Concierge proposes when the broker setting has none. Default
    /// 16384: lapin keeps 32 frames of buffer per direction and connection, so the
    /// amqp gem's 131072 would cost 16 MB of memory for nothing a check runner needs.
    pub frame_max: u32,
    /// TLS defaults for `amqps` brokers (per-broker `ssl` hashes override them).
    pub tls: brokers::TlsOptions,
    /// Print CloudWatch Embedded Metric Format lines on stdout. Default false.
    pub emf: bool,
    /// Seconds between EMF lines. Default 60.
    pub emf_interval: f64,
    /// The `Service` dimension of EMF lines. Default `concierge`.
    pub service_name: String,
    /// Run known plugin command lines in-process (`check_tcp`…). Default true; a check's
    /// `"native": false` opts it out.
    pub native_plugins: bool,
    /// Bytes of a command's output kept (checks and hooks); the rest is read and dropped, and
    /// the output says so at its end. Default 2 MiB: with the default 12 commands at once,
    /// runaway outputs cannot hold more than about 100 MB (see the README's "Memory").
    pub output_limit: usize,
}

impl Default for ConciergeSettings {
    fn default() -> Self {
        Self {
            builtin_concurrency: DEFAULT_BUILTIN_LIMIT,
            ack: AckMode::AfterPublish,
            prefetch: None,
            publish_timeout: 10.0,
            result_buffer: 10_000,
            drain_grace: 8.0,
            max_request_bytes: 1024 * 1024,
            heartbeat: None,
            connect_timeout: 10.0,
            frame_max: 16_384,
            tls: brokers::TlsOptions::default(),
            emf: false,
            emf_interval: 60.0,
            service_name: "concierge".into(),
            native_plugins: true,
            output_limit: DEFAULT_OUTPUT_LIMIT,
        }
    }
}

/// The merged settings document as loaded, before validation: sensu-settings'
/// `@settings`. Parse, then validate: [`Loaded::validate`] turns it into the one
/// [`Settings`] value every component receives.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The whole merged document.
    pub raw: Object,
    /// Files that were read, in order.
    pub loaded_files: Vec<PathBuf>,
    /// Whether a broker is configured (`RABBITMQ_URL` or a `rabbitmq` setting; a
    /// `./checks` read only because there is none does not count).
    pub has_broker: bool,
}

impl Loaded {
    /// Load the document from the given sources.
    pub fn load(sources: &Sources) -> Result<Self, ConfigError> {
        let environment = env::with_files(&sources.env)?;
        let mut raw = defaults();
        env::apply(&mut raw, &environment)?;

        let mut loaded_files = Vec::new();
        let config_file = match &sources.config_file {
            Some(path) => Some(path.clone()),
            None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|p| p.is_file()),
        };
        if let Some(path) = config_file {
            if path.is_file() {
                merge_file(&mut raw, &path, &mut loaded_files)?;
            } else {
                tracing::warn!(file = %path.display(), "config file does not exist or is not readable");
            }
        }
        let dirs: Vec<PathBuf> = if sources.config_dirs.is_empty() {
            let mut dirs = vec![PathBuf::from(DEFAULT_CONFIG_DIR)];
            if sources.include_local_checks_dir {
                dirs.push(PathBuf::from(LOCAL_CHECKS_DIR));
            }
            dirs.into_iter().filter(|d| d.is_dir()).collect()
        } else {
            sources.config_dirs.clone()
        };
        for dir in dirs {
            if !dir.is_dir() {
                tracing::warn!(dir = %dir.display(), "config directory does not exist");
                continue;
            }
            for path in files::json_files(&dir)? {
                merge_file(&mut raw, &path, &mut loaded_files)?;
            }
        }
        let documents = env::documents(&environment)?;
        let has_broker = raw.contains_key("rabbitmq") || documents.iter().any(|(_, doc)| doc.get("rabbitmq").is_some());
        let local_dir = PathBuf::from(LOCAL_CHECKS_DIR);
        if sources.local_checks_without_broker
            && !has_broker
            && !sources.include_local_checks_dir
            && sources.config_dirs.is_empty()
            && local_dir.is_dir()
        {
            for path in files::json_files(&local_dir)? {
                merge_file(&mut raw, &path, &mut loaded_files)?;
            }
        }
        for (_origin, doc) in documents {
            if let Value::Object(doc) = doc {
                deep_merge_into(&mut raw, &doc);
            }
        }
        expand_client_name(&mut raw, &environment)?;
        apply_overrides(&mut raw);
        Ok(Self { raw, loaded_files, has_broker })
    }

    /// The local check definitions, each with its `name`.
    pub fn checks(&self) -> Vec<Object> {
        checks(&self.raw)
    }

    /// What sensu-settings' validator finds wrong (empty: valid).
    pub fn failures(&self) -> Vec<Failure> {
        validate::validate(self)
    }

    /// Validate the whole document, then build the settings (for `run`: the client). The
    /// brokers are read here: with a broker configured, `brokers` is never empty.
    pub fn validate(self) -> Result<Settings, Vec<Failure>> {
        let failures = self.failures();
        if !failures.is_empty() {
            return Err(failures);
        }
        let mut settings = self.build().map_err(|failure| vec![failure])?;
        settings.brokers = broker_list(&settings.raw, &settings.concierge).map_err(|failure| vec![failure])?;
        Ok(settings)
    }

    /// Build the settings without Sensu's validation, for commands that run one check
    /// once (`concierge check`, `http`, `dns`, `tls`): the rest of the configuration need
    /// not be valid to run it, but the `concierge` scope must be. The brokers are not read
    /// (`brokers` stays empty).
    pub fn build(self) -> Result<Settings, Failure> {
        let concierge = concierge_scope(&self.raw)?;
        Ok(Settings {
            client: ClientSettings::from_raw(&self.raw),
            api: ApiSettings::from_raw(&self.raw),
            spawn_limit: spawn_limit(&self.raw),
            checks: checks(&self.raw),
            has_broker: self.has_broker,
            brokers: Vec::new(),
            concierge,
            raw: self.raw,
            loaded_files: self.loaded_files,
        })
    }
}

/// The settings: loaded, validated and typed once ([`Loaded::validate`]), then handed to
/// every component. Raw JSON remains only where Sensu is open-ended: the client's
/// attributes, check definitions, and the whole document for `/settings`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The whole merged document (`/settings`, `concierge config`).
    pub raw: Object,
    /// Files that were read, in order.
    pub loaded_files: Vec<PathBuf>,
    /// The `client` scope.
    pub client: ClientSettings,
    /// Concierge's own scope.
    pub concierge: ConciergeSettings,
    /// Whether a broker is configured (`RABBITMQ_URL` or a `rabbitmq` setting).
    pub has_broker: bool,
    /// The brokers to connect to, in configured order (empty when none is configured, and
    /// in settings [built](Loaded::build) for one check).
    pub brokers: Vec<brokers::Broker>,
    /// `sensu.spawn.limit`: command checks running at once.
    pub spawn_limit: usize,
    /// Local check definitions, each with its `name` (as `@settings.checks`).
    pub checks: Vec<Object>,
    /// The local sockets.
    pub api: ApiSettings,
}

/// The `client` scope: what Concierge reads of it, and the whole scope, which is
/// open-ended (custom attributes go into keepalives, token substitution and stdin).
#[derive(Debug, Clone, Default)]
pub struct ClientSettings {
    /// `client.name` (placeholders expanded).
    pub name: String,
    /// `client.signature`.
    pub signature: Option<String>,
    /// `client.subscriptions`, in order (`client:<name>` included).
    pub subscriptions: Vec<String>,
    /// `client.deregister`: publish a deregistration result on a clean stop.
    pub deregister: bool,
    /// The whole, unredacted scope.
    pub attributes: Object,
}

impl ClientSettings {
    /// From the document's `client` scope.
    pub fn from_raw(raw: &Object) -> Self {
        let attributes = raw.get("client").and_then(Value::as_object).cloned().unwrap_or_default();
        Self::from_attributes(attributes)
    }

    /// The client name in a `client` scope: the one definition of it (Sensu requires a
    /// string; validated settings always have one).
    pub fn name_of(attributes: &Object) -> String {
        attributes.get("name").and_then(Value::as_str).unwrap_or("unknown").to_string()
    }

    /// `client.signature` in a `client` scope.
    pub fn signature_of(attributes: &Object) -> Option<String> {
        attributes.get("signature").and_then(Value::as_str).map(str::to_string)
    }

    /// From a whole `client` scope (a configured `socket`/`http_socket` gets its defaults
    /// filled in, as sensu-client's settings do once it opens them).
    pub fn from_attributes(mut attributes: Object) -> Self {
        crate::proto::fill_socket_defaults(&mut attributes);
        Self {
            name: Self::name_of(&attributes),
            signature: Self::signature_of(&attributes),
            subscriptions: attributes
                .get("subscriptions")
                .and_then(Value::as_array)
                .map(|s| s.iter().filter_map(Value::as_str).map(str::to_string).collect())
                .unwrap_or_default(),
            deregister: attributes.get("deregister") == Some(&Value::Bool(true)),
            attributes,
        }
    }
}

/// The local sockets (`client.socket`, `client.http_socket`).
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// The JSON socket.
    pub socket: Listen,
    /// The HTTP socket.
    pub http_socket: Listen,
    /// The HTTP socket's credentials and policy.
    pub http_auth: HttpAuth,
}

/// Where a local socket listens, as configured (checked when it is bound).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    /// Which scope: `socket` or `http_socket`.
    pub key: &'static str,
    /// `enabled` is not false.
    pub enabled: bool,
    /// `bind` (default `127.0.0.1`).
    pub bind: String,
    /// `port`.
    pub port: u64,
}

impl Listen {
    fn from_client(client: Option<&Object>, key: &'static str, default_port: u16) -> Self {
        let scope = client.and_then(|c| c.get(key)).and_then(Value::as_object);
        Self {
            key,
            enabled: scope.and_then(|s| s.get("enabled")) != Some(&Value::Bool(false)),
            bind: scope.and_then(|s| s.get("bind")).and_then(Value::as_str).unwrap_or(DEFAULT_BIND).to_string(),
            port: scope.and_then(|s| s.get("port")).and_then(Value::as_u64).unwrap_or(u64::from(default_port)),
        }
    }

    /// The address to bind; `None` when disabled.
    pub fn address(&self) -> Result<Option<SocketAddr>, String> {
        if !self.enabled {
            return Ok(None);
        }
        let key = self.key;
        let port = u16::try_from(self.port).map_err(|_| format!("client.{key}.port {} is not a port", self.port))?;
        let ip: IpAddr =
            self.bind.parse().map_err(|_| format!("client.{key}.bind {:?} is not an IP address", self.bind))?;
        Ok(Some(SocketAddr::new(ip, port)))
    }
}

/// `client.http_socket` user, password and `protect_all_endpoints`.
#[derive(Debug, Clone, Default)]
pub struct HttpAuth {
    /// Basic auth user.
    pub user: Option<String>,
    /// Basic auth password.
    pub password: Option<String>,
    /// Require auth on `/info` and `/results` too.
    pub protect_all_endpoints: bool,
}

/// Sensu's defaults: both sockets on 127.0.0.1, ports 3030 and 3031, no credentials.
impl Default for ApiSettings {
    fn default() -> Self {
        Self::from_raw(&Object::new())
    }
}

impl ApiSettings {
    /// From the document's `client` scope.
    pub fn from_raw(raw: &Object) -> Self {
        let client = raw.get("client").and_then(Value::as_object);
        let http = client.and_then(|c| c.get("http_socket")).and_then(Value::as_object);
        let text = |key: &str| http.and_then(|h| h.get(key)).and_then(Value::as_str).map(str::to_string);
        Self {
            socket: Listen::from_client(client, "socket", DEFAULT_SOCKET_PORT),
            http_socket: Listen::from_client(client, "http_socket", DEFAULT_HTTP_PORT),
            http_auth: HttpAuth {
                user: text("user"),
                password: text("password"),
                protect_all_endpoints: http.and_then(|h| h.get("protect_all_endpoints")) == Some(&Value::Bool(true)),
            },
        }
    }
}

/// The `concierge` scope, typed.
fn concierge_scope(raw: &Object) -> Result<ConciergeSettings, Failure> {
    match raw.get("concierge") {
        None => Ok(ConciergeSettings::default()),
        Some(v) => ConciergeSettings::deserialize(v).map_err(|e| Failure {
            key: "concierge".into(),
            message: e.to_string(),
            object: v.clone(),
        }),
    }
}

/// The `rabbitmq` setting, parsed (empty when none is set); a failure is worded as
/// validation reports it, without the password.
fn broker_list(raw: &Object, concierge: &ConciergeSettings) -> Result<Vec<brokers::Broker>, Failure> {
    let Some(rabbitmq) = raw.get("rabbitmq") else { return Ok(Vec::new()) };
    brokers::brokers(rabbitmq, concierge).map_err(|problem| Failure {
        key: "rabbitmq".into(),
        message: problem.strip_prefix("rabbitmq: ").unwrap_or(&problem).to_string(),
        object: brokers::redacted(rabbitmq),
    })
}

/// `sensu.spawn.limit`.
fn spawn_limit(raw: &Object) -> usize {
    raw.get("sensu")
        .and_then(|s| s.get("spawn"))
        .and_then(|s| s.get("limit"))
        .and_then(Value::as_u64)
        .map_or(DEFAULT_SPAWN_LIMIT, |n| n as usize)
}

/// Local check definitions, each with `name` appended (as `@settings.checks`).
fn checks(raw: &Object) -> Vec<Object> {
    let Some(checks) = raw.get("checks").and_then(Value::as_object) else { return Vec::new() };
    checks
        .iter()
        .filter_map(|(name, def)| {
            let mut def = def.as_object()?.clone();
            def.insert("name".into(), Value::String(name.clone()));
            Some(def)
        })
        .collect()
}

impl Settings {
    /// Add (or replace) a local check definition (`concierge check FILE` runs a file's
    /// definition as a local one, so safe mode and the local merge treat it as such).
    pub fn define_check(&mut self, definition: Object) {
        let name = definition.get("name").cloned();
        self.checks.retain(|c| c.get("name") != name.as_ref());
        self.checks.push(definition);
    }

    /// Write the loaded-files list that sensu-plugin reads, and return the variable to
    /// export to check commands (`SENSU_LOADED_TEMPFILE`).
    pub fn write_loaded_tempfile(&self, env: &HashMap<String, String>) -> std::io::Result<(String, String)> {
        let dir = env.get("SENSU_LOADED_TEMPFILE_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
        let path = dir.join(LOADED_TEMPFILE_NAME);
        let list: Vec<String> = self.loaded_files.iter().map(|p| absolute(p).display().to_string()).collect();
        // Write then rename, so a check never reads a half-written list.
        let tmp = dir.join(format!(".{LOADED_TEMPFILE_NAME}.{}", std::process::id()));
        std::fs::write(&tmp, list.join(":"))?;
        std::fs::rename(&tmp, &path)?;
        Ok(("SENSU_LOADED_TEMPFILE".to_string(), path.display().to_string()))
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn merge_file(raw: &mut Object, path: &Path, loaded: &mut Vec<PathBuf>) -> Result<(), ConfigError> {
    if let Some(Value::Object(doc)) = files::read(path)? {
        deep_merge_into(raw, &doc);
    }
    loaded.push(path.to_path_buf());
    Ok(())
}

/// sensu-settings' defaults.
fn defaults() -> Object {
    let doc = json!({
        "client": {"name": hostname(), "address": first_ipv4()},
        "sensu": {"spawn": {"limit": DEFAULT_SPAWN_LIMIT}, "keepalives": {"thresholds": {"warning": 120, "critical": 180}}},
        "transport": {"name": "rabbitmq", "reconnect_on_error": true},
        "checks": {}, "filters": {}, "mutators": {}, "handlers": {}, "extensions": {}
    });
    doc.as_object().cloned().unwrap_or_default()
}

/// Expand `{hostname}`, `{env:VAR}` and `{ecs_task_id}` in `client.name`.
fn expand_client_name(raw: &mut Object, env: &HashMap<String, String>) -> Result<(), ConfigError> {
    let Some(Value::Object(client)) = raw.get_mut("client") else { return Ok(()) };
    let Some(Value::String(name)) = client.get("name") else { return Ok(()) };
    let expanded = identity::expand(name, env, &hostname())
        .map_err(|problem| ConfigError::Env { var: "client.name".into(), problem })?;
    client.insert("name".into(), Value::String(expanded));
    Ok(())
}

/// `client.subscriptions ||= []`, then `client:<name>` appended, de-duplicated.
fn apply_overrides(raw: &mut Object) {
    let Some(Value::Object(client)) = raw.get_mut("client") else { return };
    let name = client.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
    let subscriptions = client.entry("subscriptions").or_insert_with(|| Value::Array(Vec::new()));
    match subscriptions {
        Value::Array(items) => {
            let own = Value::String(format!("client:{name}"));
            if !items.contains(&own) {
                items.push(own);
            }
            let mut seen = Vec::new();
            items.retain(|i| {
                let fresh = !seen.contains(i);
                seen.push(i.clone());
                fresh
            });
        }
        _ => tracing::warn!("unable to apply client subscriptions overrides: subscriptions is not an array"),
    }
}

fn hostname() -> String {
    nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "unknown".into())
}

/// The first non-loopback IPv4 address (`Socket.ip_address_list`), or `unknown`.
fn first_ipv4() -> String {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else { return "unknown".into() };
    for ifaddr in addrs {
        if let Some(ip) = ifaddr.address.as_ref().and_then(|a| a.as_sockaddr_in()).map(|s| s.ip())
            && !ip.is_loopback()
        {
            return ip.to_string();
        }
    }
    "unknown".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(dir: &Path, env: &[(&str, &str)]) -> Sources {
        Sources {
            config_file: Some(dir.join("config.json")),
            config_dirs: vec![dir.join("conf.d")],
            include_local_checks_dir: false,
            local_checks_without_broker: false,
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn files_override_env_and_arrays_union() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("conf.d/sub")).unwrap();
        std::fs::write(dir.path().join("config.json"), r#"{"client":{"name":"from-file","subscriptions":["a"]}}"#)
            .unwrap();
        std::fs::write(dir.path().join("conf.d/b.json"), "\u{FEFF}{\"client\":{\"subscriptions\":[\"b\"],\"x\":2}}")
            .unwrap();
        std::fs::write(dir.path().join("conf.d/a.json"), r#"{"client":{"x":1}}"#).unwrap();
        std::fs::write(dir.path().join("conf.d/sub/c.json"), "").unwrap();
        let s =
            Loaded::load(&sources(dir.path(), &[("SENSU_CLIENT_NAME", "env"), ("SENSU_CLIENT_SUBSCRIPTIONS", "e,a")]))
                .unwrap();
        assert_eq!(ClientSettings::from_raw(&s.raw).name, "from-file");
        assert_eq!(s.raw["client"]["subscriptions"], json!(["e", "a", "b", "client:from-file"]));
        // Sorted: a.json before b.json, so b wins.
        assert_eq!(s.raw["client"]["x"], 2);
        assert_eq!(s.loaded_files.len(), 4);
    }

    // `concierge health` falls back to these when the settings cannot be read.
    #[test]
    fn default_sockets_are_sensu_s() {
        let api = ApiSettings::default();
        assert_eq!(api.socket.address().unwrap(), Some(([127, 0, 0, 1], 3030).into()));
        assert_eq!(api.http_socket.address().unwrap(), Some(([127, 0, 0, 1], 3031).into()));
        let raw = json!({"client": {"http_socket": {"bind": "0.0.0.0", "port": 4031}, "socket": {"enabled": false}}});
        let api = ApiSettings::from_raw(raw.as_object().unwrap());
        assert_eq!(api.http_socket.address().unwrap(), Some(([0, 0, 0, 0], 4031).into()));
        assert_eq!(api.socket.address().unwrap(), None);
        let raw = json!({"client": {"http_socket": {"port": 70000}}});
        assert_eq!(
            ApiSettings::from_raw(raw.as_object().unwrap()).http_socket.address().unwrap_err(),
            "client.http_socket.port 70000 is not a port"
        );
    }

    // Spec §7 item 67.
    #[test]
    fn client_subscription_is_added() {
        let dir = tempfile::tempdir().unwrap();
        let s = Loaded::load(&sources(dir.path(), &[("SENSU_CLIENT_NAME", "i-424242")])).unwrap();
        assert_eq!(s.raw["client"]["subscriptions"], json!(["client:i-424242"]));
        assert_eq!(s.raw["sensu"]["spawn"]["limit"], 12);
    }

    #[test]
    fn invalid_json_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("conf.d")).unwrap();
        std::fs::write(dir.path().join("conf.d/bad.json"), "{\"checks\": ").unwrap();
        let err = Loaded::load(&sources(dir.path(), &[])).unwrap_err().to_string();
        assert!(err.contains("bad.json: invalid JSON"), "{err}");
    }

    #[test]
    fn json_documents_from_env_win() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), r#"{"client":{"name":"file"}}"#).unwrap();
        let s =
            Loaded::load(&sources(dir.path(), &[("CONCIERGE_CONFIG_JSON", r#"{"client":{"name":"doc"}}"#)])).unwrap();
        assert_eq!(ClientSettings::from_raw(&s.raw).name, "doc");
    }

    // Spec §7 item 66.
    #[test]
    fn loaded_tempfile_lists_the_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), "{}").unwrap();
        std::fs::create_dir_all(dir.path().join("conf.d")).unwrap();
        std::fs::write(dir.path().join("conf.d/x.json"), "{}").unwrap();
        let s = Loaded::load(&sources(dir.path(), &[])).unwrap().build().unwrap();
        let env: HashMap<String, String> =
            [("SENSU_LOADED_TEMPFILE_DIR".to_string(), dir.path().display().to_string())].into();
        let (key, path) = s.write_loaded_tempfile(&env).unwrap();
        assert_eq!(key, "SENSU_LOADED_TEMPFILE");
        let content = std::fs::read_to_string(path).unwrap();
        assert_eq!(
            content,
            format!("{}:{}", dir.path().join("config.json").display(), dir.path().join("conf.d/x.json").display())
        );
    }
}
