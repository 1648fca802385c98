//! Settings from environment variables: Sensu's own, unchanged, and Concierge's
//! `CONCIERGE_*` additions. One table drives both the loader and the README's
//! configuration table (a test checks that the README lists every variable).
//!
//! As in sensu-settings, the environment is applied *before* the config files, so a
//! file value wins over an env value and arrays from both are unioned.

use std::collections::HashMap;

use base64::Engine as _;
use serde_json::Value;

use super::ConfigError;
use crate::proto::{Object, deep_merge_into};

/// How a variable's text becomes a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string, as given.
    Str,
    /// A comma-separated list of strings (items trimmed, empty trailing items dropped).
    List,
    /// `true`/`false` (also `1`/`0`, `yes`/`no`).
    Bool,
    /// An integer.
    Int,
    /// A number of seconds (fractions allowed).
    Number,
    /// A JSON object, deep-merged at the path.
    JsonObject,
    /// Base64-encoded text (a PEM file's content), stored decoded.
    Base64Text,
}

/// Where a variable's value goes.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// A settings path, e.g. `client.name`.
    Path(&'static [&'static str]),
    /// Not a setting: read by the CLI or the loader itself (documented here anyway).
    Cli,
}

/// One documented environment variable.
#[derive(Debug, Clone, Copy)]
pub struct EnvVar {
    /// The variable's name.
    pub name: &'static str,
    /// Where the value goes.
    pub target: Target,
    /// How the text is parsed.
    pub kind: Kind,
    /// Default, as shown in the README.
    pub default: &'static str,
    /// What it does, as shown in the README.
    pub help: &'static str,
}

/// Every environment variable Concierge reads, in README order.
pub const VARIABLES: &[EnvVar] = &[
    EnvVar {
        name: "RABBITMQ_URL",
        target: Target::Path(&["rabbitmq"]),
        kind: Kind::Str,
        default: "unset (no broker: `run` needs `--local`)",
        help: "Sensu's variable: `amqp://user:pass@host:port/vhost` or `amqps://…`. Replaces the `rabbitmq` setting with the URL string; a `rabbitmq` hash in a config file replaces it again.",
    },
    EnvVar {
        name: "SENSU_TRANSPORT_NAME",
        target: Target::Path(&["transport", "name"]),
        kind: Kind::Str,
        default: "`rabbitmq`",
        help: "Sensu's variable: `transport.name`. Only `rabbitmq` is supported.",
    },
    EnvVar {
        name: "SENSU_CLIENT_NAME",
        target: Target::Path(&["client", "name"]),
        kind: Kind::Str,
        default: "the hostname",
        help: "Sensu's variable: `client.name`. May hold `{hostname}`, `{env:VAR}` and `{ecs_task_id}` placeholders (fleet naming).",
    },
    EnvVar {
        name: "SENSU_CLIENT_ADDRESS",
        target: Target::Path(&["client", "address"]),
        kind: Kind::Str,
        default: "first non-loopback IPv4, else `unknown`",
        help: "Sensu's variable: `client.address`.",
    },
    EnvVar {
        name: "SENSU_CLIENT_SUBSCRIPTIONS",
        target: Target::Path(&["client", "subscriptions"]),
        kind: Kind::List,
        default: "none (`client:<name>` is always added)",
        help: "Sensu's variable: comma-separated subscriptions, unioned with those in files. Items are trimmed (Sensu keeps spaces).",
    },
    EnvVar {
        name: "SENSU_LOADED_TEMPFILE_DIR",
        target: Target::Cli,
        kind: Kind::Str,
        default: "the system temp dir",
        help: "Sensu's variable: where `sensu_client_loaded_files` is written; its path is exported to checks as `SENSU_LOADED_TEMPFILE`.",
    },
    EnvVar {
        name: "CONCIERGE_CONFIG_FILE",
        target: Target::Cli,
        kind: Kind::Str,
        default: "`/etc/sensu/config.json` if present",
        help: "Same as `-c`: a Sensu JSON config file.",
    },
    EnvVar {
        name: "CONCIERGE_CONFIG_DIR",
        target: Target::Cli,
        kind: Kind::List,
        default: "`/etc/sensu/conf.d` if present (plus `./checks` for `run --local` and `check`)",
        help: "Same as `-d`: comma-separated directories of `*.json` files, read recursively in sorted order.",
    },
    EnvVar {
        name: "CONCIERGE_CONFIG_JSON",
        target: Target::Cli,
        kind: Kind::JsonObject,
        default: "unset",
        help: "A whole Sensu config document as JSON, merged after the files (it wins).",
    },
    EnvVar {
        name: "CONCIERGE_CONFIG_B64",
        target: Target::Cli,
        kind: Kind::JsonObject,
        default: "unset",
        help: "The same, base64-encoded (standard or URL-safe alphabet), merged after `CONCIERGE_CONFIG_JSON`.",
    },
    EnvVar {
        name: "CONCIERGE_CLIENT_ATTRIBUTES",
        target: Target::Path(&["client"]),
        kind: Kind::JsonObject,
        default: "unset",
        help: "A JSON object deep-merged into `client`: custom attributes (`{\"environment\":\"prod\"}`), `keepalive`, `deregistration`, `socket`…",
    },
    EnvVar {
        name: "CONCIERGE_SAFE_MODE",
        target: Target::Path(&["client", "safe_mode"]),
        kind: Kind::Bool,
        default: "`false`",
        help: "`client.safe_mode`: run command checks only if they are defined locally.",
    },
    EnvVar {
        name: "CONCIERGE_DEREGISTER",
        target: Target::Path(&["client", "deregister"]),
        kind: Kind::Bool,
        default: "`false`",
        help: "`client.deregister`: publish a `deregistration` result on a clean stop (recommended for fleets).",
    },
    EnvVar {
        name: "CONCIERGE_SIGNATURE",
        target: Target::Path(&["client", "signature"]),
        kind: Kind::Str,
        default: "unset",
        help: "`client.signature`, added to every keepalive and result.",
    },
    EnvVar {
        name: "CONCIERGE_REDACT",
        target: Target::Path(&["client", "redact"]),
        kind: Kind::List,
        default: "Sensu's 22 keys",
        help: "`client.redact`: comma-separated keys to redact in keepalives; replaces the default list.",
    },
    EnvVar {
        name: "CONCIERGE_COMMAND_CONCURRENCY",
        target: Target::Path(&["sensu", "spawn", "limit"]),
        kind: Kind::Int,
        default: "`12`",
        help: "`sensu.spawn.limit`: command checks (and hooks) running at once; the rest wait in order.",
    },
    EnvVar {
        name: "CONCIERGE_BUILTIN_CONCURRENCY",
        target: Target::Path(&["concierge", "builtin_concurrency"]),
        kind: Kind::Int,
        default: "`500`",
        help: "Built-in (in-process) checks running at once.",
    },
    EnvVar {
        name: "CONCIERGE_ACK_MODE",
        target: Target::Path(&["concierge", "ack"]),
        kind: Kind::Str,
        default: "`after_publish`",
        help: "`after_publish`: ack a request only once its result is confirmed by the broker (a killed replica loses nothing). `auto`: sensu-client's no-ack consuming.",
    },
    EnvVar {
        name: "CONCIERGE_PREFETCH",
        target: Target::Path(&["concierge", "prefetch"]),
        kind: Kind::Int,
        default: "execution slots (spawn limit + built-in concurrency)",
        help: "`basic.qos` prefetch for subscription queues (channel-wide).",
    },
    EnvVar {
        name: "CONCIERGE_HEARTBEAT",
        target: Target::Path(&["concierge", "heartbeat"]),
        kind: Kind::Int,
        default: "the broker's (RabbitMQ: 60)",
        help: "AMQP heartbeat in seconds, when the URL (`?heartbeat=`) or hash does not set one.",
    },
    EnvVar {
        name: "CONCIERGE_CONNECT_TIMEOUT",
        target: Target::Path(&["concierge", "connect_timeout"]),
        kind: Kind::Number,
        default: "`10`",
        help: "Seconds to connect to a broker (TCP, TLS and AMQP handshake).",
    },
    EnvVar {
        name: "CONCIERGE_PUBLISH_TIMEOUT",
        target: Target::Path(&["concierge", "publish_timeout"]),
        kind: Kind::Number,
        default: "`10`",
        help: "Seconds a publish may wait for the broker's confirm before the connection is considered broken.",
    },
    EnvVar {
        name: "CONCIERGE_RESULT_BUFFER",
        target: Target::Path(&["concierge", "result_buffer"]),
        kind: Kind::Int,
        default: "`10000`",
        help: "Results kept while the broker is away; beyond this the oldest is dropped (counted and logged).",
    },
    EnvVar {
        name: "CONCIERGE_DRAIN_GRACE",
        target: Target::Path(&["concierge", "drain_grace"]),
        kind: Kind::Number,
        default: "`8`",
        help: "Seconds SIGTERM/SIGINT may take: finish running checks, publish results and deregistration, then exit 0.",
    },
    EnvVar {
        name: "CONCIERGE_TLS_VERIFY",
        target: Target::Path(&["concierge", "tls", "verify"]),
        kind: Kind::Bool,
        default: "`false` (as sensu-client)",
        help: "Verify the broker's TLS certificate against the system roots plus the CA below.",
    },
    EnvVar {
        name: "CONCIERGE_TLS_CA_FILE",
        target: Target::Path(&["concierge", "tls", "ca_file"]),
        kind: Kind::Str,
        default: "unset",
        help: "PEM file of CA certificates to trust for the broker.",
    },
    EnvVar {
        name: "CONCIERGE_TLS_CA_B64",
        target: Target::Path(&["concierge", "tls", "ca"]),
        kind: Kind::Base64Text,
        default: "unset",
        help: "The same CA PEM, base64-encoded, instead of a file.",
    },
    EnvVar {
        name: "CONCIERGE_TLS_CERT_FILE",
        target: Target::Path(&["concierge", "tls", "cert_chain_file"]),
        kind: Kind::Str,
        default: "unset",
        help: "PEM client certificate chain (Sensu's `ssl.cert_chain_file`).",
    },
    EnvVar {
        name: "CONCIERGE_TLS_CERT_B64",
        target: Target::Path(&["concierge", "tls", "cert_chain"]),
        kind: Kind::Base64Text,
        default: "unset",
        help: "The same certificate chain, base64-encoded.",
    },
    EnvVar {
        name: "CONCIERGE_TLS_KEY_FILE",
        target: Target::Path(&["concierge", "tls", "private_key_file"]),
        kind: Kind::Str,
        default: "unset",
        help: "PEM client private key (Sensu's `ssl.private_key_file`).",
    },
    EnvVar {
        name: "CONCIERGE_TLS_KEY_B64",
        target: Target::Path(&["concierge", "tls", "private_key"]),
        kind: Kind::Base64Text,
        default: "unset",
        help: "The same private key, base64-encoded (shown as `REDACTED` by `concierge config`).",
    },
    EnvVar {
        name: "CONCIERGE_TLS_SERVER_NAME",
        target: Target::Path(&["concierge", "tls", "server_name"]),
        kind: Kind::Str,
        default: "the broker host",
        help: "TLS server name (SNI and verification), e.g. when connecting by IP address.",
    },
    EnvVar {
        name: "CONCIERGE_SOCKET_BIND",
        target: Target::Path(&["client", "socket", "bind"]),
        kind: Kind::Str,
        default: "`127.0.0.1`",
        help: "`client.socket.bind`: address of the JSON socket (TCP and UDP).",
    },
    EnvVar {
        name: "CONCIERGE_SOCKET_PORT",
        target: Target::Path(&["client", "socket", "port"]),
        kind: Kind::Int,
        default: "`3030`",
        help: "`client.socket.port`. Also a sum, such as `23030+{{.Task.Slot}}`: replicas sharing a host network each get their own port from one Swarm service.",
    },
    EnvVar {
        name: "CONCIERGE_HTTP_SOCKET_BIND",
        target: Target::Path(&["client", "http_socket", "bind"]),
        kind: Kind::Str,
        default: "`127.0.0.1`",
        help: "`client.http_socket.bind`: address of the HTTP socket with `/healthz` and `/metrics` (use `0.0.0.0` for Prometheus to scrape).",
    },
    EnvVar {
        name: "CONCIERGE_HTTP_SOCKET_PORT",
        target: Target::Path(&["client", "http_socket", "port"]),
        kind: Kind::Int,
        default: "`3031`",
        help: "`client.http_socket.port`. Also a sum, such as `24030+{{.Task.Slot}}` (see above); `concierge health` and the image's `HEALTHCHECK` read the same variable.",
    },
    EnvVar {
        name: "CONCIERGE_EMF",
        target: Target::Path(&["concierge", "emf"]),
        kind: Kind::Bool,
        default: "`false`",
        help: "Print the scaling figures as CloudWatch Embedded Metric Format lines on stdout (ECS with awslogs).",
    },
    EnvVar {
        name: "CONCIERGE_EMF_INTERVAL",
        target: Target::Path(&["concierge", "emf_interval"]),
        kind: Kind::Number,
        default: "`60`",
        help: "Seconds between EMF lines.",
    },
    EnvVar {
        name: "CONCIERGE_NATIVE_PLUGINS",
        target: Target::Path(&["concierge", "native_plugins"]),
        kind: Kind::Bool,
        default: "`true`",
        help: "Run known plugin command lines (`check-http.rb`, `check_http`, `check_dns`…, see \"Plugin command lines, run natively\") in-process, with the plugin's options, output and status; `false` forks them as sensu-client does. A check's `\"native\": false` opts it out.",
    },
    EnvVar {
        name: "CONCIERGE_OUTPUT_LIMIT",
        target: Target::Path(&["concierge", "output_limit"]),
        kind: Kind::Int,
        default: "`2097152`",
        help: "Bytes of a command check's (or hook's) output kept; the rest is dropped and the output ends with `[concierge: output truncated: N of M bytes kept; CONCIERGE_OUTPUT_LIMIT]`. The default keeps 12 runaway commands at once near 100 MB.",
    },
    EnvVar {
        name: "CONCIERGE_SERVICE_NAME",
        target: Target::Path(&["concierge", "service_name"]),
        kind: Kind::Str,
        default: "`concierge`",
        help: "The `Service` dimension of EMF metrics (one per ECS service).",
    },
    EnvVar {
        name: "CONCIERGE_LOG_LEVEL",
        target: Target::Cli,
        kind: Kind::Str,
        default: "`info`",
        help: "Same as `-L`: `trace`, `debug`, `info`, `warn`, `error`, or a tracing filter such as `concierge=debug`.",
    },
    EnvVar {
        name: "CONCIERGE_WORKER_THREADS",
        target: Target::Cli,
        kind: Kind::Str,
        default: "`1`",
        help: "Same as `--worker-threads`: runtime threads. `1` runs checks, sockets and the transport on one thread, the least CPU per check (lapin adds one I/O thread per broker connection); `0` = one per CPU; `N` = N threads, for CPU-heavy work such as very large courier shots.",
    },
    EnvVar {
        name: "CONCIERGE_SCALE_TOKEN",
        target: Target::Cli,
        kind: Kind::Str,
        default: "unset (`concierge scale serve` refuses to start)",
        help: "The bearer token `concierge scale serve` requires of every request (`Authorization: Bearer …`); also as `CONCIERGE_SCALE_TOKEN_FILE`.",
    },
    EnvVar {
        name: "CONCIERGE_AUTOSCALE_SERVICE",
        target: Target::Cli,
        kind: Kind::Str,
        default: "unset (required)",
        help: "`concierge autoscale`: the fleet's service (Swarm service name; ECS service in `CONCIERGE_AUTOSCALE_CLUSTER`).",
    },
    EnvVar {
        name: "CONCIERGE_AUTOSCALE_MIN",
        target: Target::Cli,
        kind: Kind::Int,
        default: "unset (required)",
        help: "`concierge autoscale`: fewest replicas.",
    },
    EnvVar {
        name: "CONCIERGE_AUTOSCALE_MAX",
        target: Target::Cli,
        kind: Kind::Int,
        default: "unset (required)",
        help: "`concierge autoscale`: most replicas.",
    },
    EnvVar {
        name: "CONCIERGE_AUTOSCALE_PLATFORM",
        target: Target::Cli,
        kind: Kind::Str,
        default: "`ecs` with a cluster, else `swarm`",
        help: "`concierge autoscale`: the orchestrator (`swarm`: `DOCKER_HOST`; `ecs`: the AWS SDK's settings).",
    },
    EnvVar {
        name: "CONCIERGE_AUTOSCALE_CLUSTER",
        target: Target::Cli,
        kind: Kind::Str,
        default: "`default`",
        help: "`concierge autoscale`: the ECS cluster.",
    },
    EnvVar {
        name: "CONCIERGE_AUTOSCALE_QUEUES",
        target: Target::Cli,
        kind: Kind::List,
        default: "the client's `roundrobin:` subscriptions",
        help: "`concierge autoscale`: the fleet's round-robin queues, whose depth is read by a passive `queue.declare`.",
    },
    EnvVar {
        name: "CONCIERGE_AUTOSCALE_INTERVAL",
        target: Target::Cli,
        kind: Kind::Int,
        default: "`15`",
        help: "`concierge autoscale`: seconds between rounds.",
    },
    EnvVar {
        name: "CONCIERGE_AUTOSCALE_BUSY_TARGET",
        target: Target::Cli,
        kind: Kind::Number,
        default: "`0.6`",
        help: "`concierge autoscale`: the busy ratio to hold each replica at.",
    },
    EnvVar {
        name: "CONCIERGE_AUTOSCALE_BACKLOG_TARGET",
        target: Target::Cli,
        kind: Kind::Number,
        default: "the replicas' command slots",
        help: "`concierge autoscale`: waiting requests per replica.",
    },
    EnvVar {
        name: "CONCIERGE_AUTOSCALE_STEP",
        target: Target::Cli,
        kind: Kind::Int,
        default: "double (at least +1)",
        help: "`concierge autoscale`: most replicas added at once.",
    },
    EnvVar {
        name: "CONCIERGE_AUTOSCALE_WINDOW",
        target: Target::Cli,
        kind: Kind::Int,
        default: "`300`",
        help: "`concierge autoscale`: seconds every recommendation must have been lower before a scale-down.",
    },
    EnvVar {
        name: "CONCIERGE_AUTOSCALE_COOLDOWN",
        target: Target::Cli,
        kind: Kind::Int,
        default: "the interval",
        help: "`concierge autoscale`: seconds a move holds back the next one in the same direction.",
    },
    EnvVar {
        name: "CONCIERGE_AUTOSCALE_LISTEN",
        target: Target::Cli,
        kind: Kind::Str,
        default: "`127.0.0.1:9096`",
        help: "`concierge autoscale`: the address of its `/healthz` and `/metrics`.",
    },
    EnvVar {
        name: "CONCIERGE_LOG_FORMAT",
        target: Target::Cli,
        kind: Kind::Str,
        default: "`json`",
        help: "`json` (one object per line, on stderr) or `text`.",
    },
];

fn parse(var: &EnvVar, raw: &str) -> Result<Value, ConfigError> {
    let bad = |problem: String| ConfigError::Env { var: var.name.to_string(), problem };
    Ok(match var.kind {
        Kind::Str => Value::String(raw.to_string()),
        Kind::List => {
            let mut items: Vec<&str> = raw.split(',').map(str::trim).collect();
            while items.last() == Some(&"") {
                items.pop();
            }
            Value::Array(items.into_iter().map(|s| Value::String(s.to_string())).collect())
        }
        Kind::Bool => match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Value::Bool(true),
            "false" | "0" | "no" | "off" | "" => Value::Bool(false),
            other => return Err(bad(format!("expected true or false, got {other:?}"))),
        },
        Kind::Int => Value::from(integer(raw).ok_or_else(|| bad(format!("expected an integer, got {raw:?}")))?),
        Kind::Number => {
            let n = raw.trim().parse::<f64>().map_err(|_| bad(format!("expected a number, got {raw:?}")))?;
            serde_json::Number::from_f64(n).map(Value::Number).ok_or_else(|| bad("not a finite number".into()))?
        }
        Kind::Base64Text => {
            let bytes = decode_base64(raw).map_err(bad)?;
            Value::String(String::from_utf8(bytes).map_err(|_| bad("decoded text is not UTF-8".into()))?)
        }
        Kind::JsonObject => {
            let value: Value = serde_json::from_str(raw).map_err(|e| bad(format!("invalid JSON: {e}")))?;
            if !value.is_object() {
                return Err(bad("expected a JSON object".into()));
            }
            value
        }
    })
}

/// An integer, or a sum of integers (`23030+{{.Task.Slot}}` once Swarm has filled in its
/// template: replicas sharing a host network each get their own ports from one service
/// definition).
fn integer(raw: &str) -> Option<i64> {
    raw.split('+').map(|term| term.trim().parse::<i64>().ok()).try_fold(0i64, |sum, term| sum.checked_add(term?))
}

/// Apply the environment to the settings, in table order. Plain values replace what is
/// at their path (as sensu-settings assigns them); JSON objects are deep-merged.
pub fn apply(settings: &mut Object, env: &HashMap<String, String>) -> Result<(), ConfigError> {
    for var in VARIABLES {
        let (Target::Path(path), Some(raw)) = (var.target, env.get(var.name)) else { continue };
        let value = parse(var, raw)?;
        let (last, parents) = path.split_last().unwrap_or((&"", &[]));
        let mut node = &mut *settings;
        for key in parents {
            let entry = node.entry(key.to_string()).or_insert_with(|| Value::Object(Object::new()));
            if !entry.is_object() {
                *entry = Value::Object(Object::new());
            }
            node = entry.as_object_mut().ok_or_else(|| ConfigError::Env {
                var: var.name.to_string(),
                problem: "cannot be nested here".into(),
            })?;
        }
        match (var.kind, node.get_mut(*last), value) {
            (Kind::JsonObject, Some(Value::Object(existing)), Value::Object(new)) => deep_merge_into(existing, &new),
            (_, _, value) => {
                node.insert(last.to_string(), value);
            }
        }
    }
    Ok(())
}

/// The config documents given whole in the environment (`CONCIERGE_CONFIG_JSON`, then
/// `CONCIERGE_CONFIG_B64`), with the variable name as their origin.
pub fn documents(env: &HashMap<String, String>) -> Result<Vec<(String, Value)>, ConfigError> {
    let mut docs = Vec::new();
    if let Some(raw) = env.get("CONCIERGE_CONFIG_JSON") {
        let var = lookup("CONCIERGE_CONFIG_JSON");
        docs.push((var.name.to_string(), parse(var, raw)?));
    }
    if let Some(raw) = env.get("CONCIERGE_CONFIG_B64") {
        let var = lookup("CONCIERGE_CONFIG_B64");
        let text = decode_base64(raw).map_err(|problem| ConfigError::Env { var: var.name.into(), problem })?;
        let text = String::from_utf8(text)
            .map_err(|_| ConfigError::Env { var: var.name.into(), problem: "decoded text is not UTF-8".into() })?;
        docs.push((var.name.to_string(), parse(var, &text)?));
    }
    Ok(docs)
}

/// Suffix of a variable whose value is read from a file (Docker's convention for Swarm
/// and Compose secrets, as in its official images): `RABBITMQ_URL_FILE=/run/secrets/url`.
pub const FILE_SUFFIX: &str = "_FILE";

/// The environment with every `NAME_FILE` of a variable in [`VARIABLES`] replaced by
/// `NAME` holding the file's content (one trailing line break removed). Setting both is an
/// error, and so is a file that cannot be read; errors name the variable and the path,
/// never the content.
pub fn with_files(env: &HashMap<String, String>) -> Result<HashMap<String, String>, ConfigError> {
    let mut out = env.clone();
    for var in VARIABLES.iter().filter(|v| has_file_form(v)) {
        let file_var = format!("{}{FILE_SUFFIX}", var.name);
        let Some(path) = env.get(&file_var) else { continue };
        if env.contains_key(var.name) {
            return Err(ConfigError::Env {
                var: file_var,
                problem: format!("{} is set too; set one of them", var.name),
            });
        }
        let content = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Env { var: file_var.clone(), problem: format!("cannot read {path}: {e}") })?;
        let value = content.strip_suffix('\n').map(|v| v.strip_suffix('\r').unwrap_or(v)).unwrap_or(&content);
        out.remove(&file_var);
        out.insert(var.name.to_string(), value.to_string());
    }
    Ok(out)
}

/// Whether `NAME_FILE` is read for this variable: every setting the loader reads (the
/// command line's own variables, such as `CONCIERGE_LOG_LEVEL`, are read by clap).
fn has_file_form(var: &EnvVar) -> bool {
    matches!(var.target, Target::Path(_))
        || matches!(var.name, "CONCIERGE_CONFIG_JSON" | "CONCIERGE_CONFIG_B64" | "CONCIERGE_SCALE_TOKEN")
}

/// Whether Concierge reads `name`: a variable of [`VARIABLES`], or the `_FILE` form of one.
pub fn is_known(name: &str) -> bool {
    VARIABLES.iter().any(|v| v.name == name || (Some(v.name) == name.strip_suffix(FILE_SUFFIX) && has_file_form(v)))
}

/// Prefix of the variables Concierge owns: one it does not know is most likely a typo.
pub const PREFIX: &str = "CONCIERGE_";

/// Warn, once at start-up, about each `CONCIERGE_*` variable that Concierge does not read
/// (a typo would otherwise be ignored without a word), naming the closest known one.
pub fn warn_unknown(env: &HashMap<String, String>) {
    for (var, closest) in unknown_variables(env) {
        match closest {
            Some(known) => tracing::warn!(
                variable = %var,
                closest = known,
                "environment variable {var} is not a Concierge setting and is ignored; did you mean {known}?"
            ),
            None => tracing::warn!(
                variable = %var,
                "environment variable {var} is not a Concierge setting and is ignored (see the README's configuration table)"
            ),
        }
    }
}

/// The `CONCIERGE_*` variables set in `env` that are not in [`VARIABLES`], sorted, each
/// with the known variable closest to it, if one is close enough to be a likely typo.
pub fn unknown_variables(env: &HashMap<String, String>) -> Vec<(String, Option<&'static str>)> {
    let mut unknown: Vec<(String, Option<&'static str>)> = env
        .keys()
        .filter(|k| k.starts_with(PREFIX))
        .filter(|k| !is_known(k))
        .map(|k| (k.clone(), closest(k)))
        .collect();
    unknown.sort();
    unknown
}

/// The known variable a misspelt or guessed name most likely meant: the one sharing the
/// most `_`-separated words with it (beyond the prefix), then the most similar spelling.
/// `None` when nothing is similar enough.
pub fn closest(name: &str) -> Option<&'static str> {
    let words = |n: &str| -> Vec<String> {
        n.trim_start_matches(PREFIX).split('_').filter(|w| !w.is_empty()).map(str::to_string).collect()
    };
    let wanted = words(name);
    VARIABLES
        .iter()
        .filter(|v| v.name.starts_with(PREFIX))
        .map(|v| {
            let theirs = words(v.name);
            let shared = wanted.iter().filter(|w| theirs.contains(w)).count();
            (shared, strsim::normalized_levenshtein(name, v.name), v.name)
        })
        .filter(|(shared, similarity, _)| *shared > 0 || *similarity >= 0.8)
        .max_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)))
        .map(|(_, _, name)| name)
}

fn lookup(name: &str) -> &'static EnvVar {
    VARIABLES.iter().find(|v| v.name == name).unwrap_or(&VARIABLES[0])
}

/// Decode base64 in the standard or URL-safe alphabet, padded or not, ignoring
/// whitespace and line breaks (as `base64 -w76` produces).
pub fn decode_base64(raw: &str) -> Result<Vec<u8>, String> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let compact: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    let trimmed = compact.trim_end_matches('=');
    STANDARD_NO_PAD
        .decode(trimmed)
        .or_else(|_| URL_SAFE_NO_PAD.decode(trimmed))
        .map_err(|e| format!("invalid base64: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    // Spec §7 item 65.
    #[test]
    fn sensu_variables_apply() {
        let mut s =
            json!({"client": {"name": "host"}, "transport": {"name": "rabbitmq"}}).as_object().cloned().unwrap();
        apply(
            &mut s,
            &env(&[
                ("SENSU_CLIENT_NAME", "i-424242"),
                ("SENSU_CLIENT_ADDRESS", "10.0.0.5"),
                ("SENSU_CLIENT_SUBSCRIPTIONS", "foo,bar,baz"),
                ("SENSU_TRANSPORT_NAME", "rabbitmq"),
                ("RABBITMQ_URL", "amqp://guest:guest@localhost:5672/%2F"),
            ]),
        )
        .unwrap();
        assert_eq!(s["client"]["name"], "i-424242");
        assert_eq!(s["client"]["address"], "10.0.0.5");
        assert_eq!(s["client"]["subscriptions"], json!(["foo", "bar", "baz"]));
        assert_eq!(s["rabbitmq"], "amqp://guest:guest@localhost:5672/%2F");
    }

    #[test]
    fn concierge_variables_and_errors_name_the_variable() {
        let mut s = Object::new();
        apply(
            &mut s,
            &env(&[
                ("CONCIERGE_CLIENT_ATTRIBUTES", r#"{"environment":"prod","keepalive":{"thresholds":{"warning":60}}}"#),
                ("CONCIERGE_SAFE_MODE", "yes"),
                ("CONCIERGE_COMMAND_CONCURRENCY", "4"),
                ("SENSU_CLIENT_SUBSCRIPTIONS", "linux, web,"),
            ]),
        )
        .unwrap();
        assert_eq!(s["client"]["environment"], "prod");
        assert_eq!(s["client"]["safe_mode"], true);
        assert_eq!(s["client"]["subscriptions"], json!(["linux", "web"]));
        assert_eq!(s["sensu"]["spawn"]["limit"], 4);

        let err = apply(&mut Object::new(), &env(&[("CONCIERGE_SAFE_MODE", "perhaps")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"environment variable CONCIERGE_SAFE_MODE: expected true or false, got "perhaps""#
        );
        let mut ports = Object::new();
        apply(&mut ports, &env(&[("CONCIERGE_SOCKET_PORT", "23030+3"), ("CONCIERGE_HTTP_SOCKET_PORT", " 24030 + 3 ")]))
            .unwrap();
        assert_eq!(
            (ports["client"]["socket"]["port"].clone(), ports["client"]["http_socket"]["port"].clone()),
            (json!(23033), json!(24033))
        );
        for bad in ["3030+", "+1", "3030+x", "1.5"] {
            let err = apply(&mut Object::new(), &env(&[("CONCIERGE_SOCKET_PORT", bad)])).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("environment variable CONCIERGE_SOCKET_PORT: expected an integer, got {bad:?}")
            );
        }
        let err = apply(&mut Object::new(), &env(&[("CONCIERGE_CLIENT_ATTRIBUTES", "[1]")])).unwrap_err();
        assert!(err.to_string().contains("CONCIERGE_CLIENT_ATTRIBUTES: expected a JSON object"));
    }

    #[test]
    fn unknown_concierge_variables_name_the_closest_known_one() {
        let found = unknown_variables(&env(&[
            ("CONCIERGE_HTTP_PORT", "3131"),
            ("CONCIERGE_SAFEMODE", "true"),
            ("CONCIERGE_XYZZY", "1"),
            ("CONCIERGE_HTTP_SOCKET_PORT", "3131"),
            ("HOME", "/root"),
        ]));
        assert_eq!(
            found,
            vec![
                ("CONCIERGE_HTTP_PORT".to_string(), Some("CONCIERGE_HTTP_SOCKET_PORT")),
                ("CONCIERGE_SAFEMODE".to_string(), Some("CONCIERGE_SAFE_MODE")),
                ("CONCIERGE_XYZZY".to_string(), None),
            ]
        );
        assert_eq!(closest("CONCIERGE_ACK"), Some("CONCIERGE_ACK_MODE"));
        assert_eq!(closest("CONCIERGE_DRAIN"), Some("CONCIERGE_DRAIN_GRACE"));
        assert_eq!(closest("CONCIERGE_SAFE_MOD"), Some("CONCIERGE_SAFE_MODE"));
    }

    #[test]
    fn variables_can_come_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("url");
        std::fs::write(&url, "amqp://u:secret@h:5672/%2F\n").unwrap();
        let path = url.display().to_string();
        let read = with_files(&env(&[("RABBITMQ_URL_FILE", &path), ("CONCIERGE_TLS_KEY_B64_FILE", &path)])).unwrap();
        assert_eq!(read["RABBITMQ_URL"], "amqp://u:secret@h:5672/%2F");
        assert!(!read.contains_key("RABBITMQ_URL_FILE"));
        assert_eq!(read["CONCIERGE_TLS_KEY_B64"], "amqp://u:secret@h:5672/%2F");
        // Variables the command line reads itself have no file form.
        assert_eq!(unknown_variables(&env(&[("CONCIERGE_LOG_LEVEL_FILE", "x")])).len(), 1);
        // Not every variable ending in _FILE is one (CONCIERGE_TLS_CA_FILE is a path).
        let env2 = with_files(&env(&[("CONCIERGE_TLS_CA_FILE", "/ca.pem")])).unwrap();
        assert_eq!(env2["CONCIERGE_TLS_CA_FILE"], "/ca.pem");
        assert!(unknown_variables(&env(&[("CONCIERGE_TLS_KEY_B64_FILE", "x")])).is_empty());

        let missing = dir.path().join("nope").display().to_string();
        let err = with_files(&env(&[("RABBITMQ_URL_FILE", &missing)])).unwrap_err().to_string();
        assert!(err.starts_with(&format!("environment variable RABBITMQ_URL_FILE: cannot read {missing}: ")), "{err}");
        let err = with_files(&env(&[("RABBITMQ_URL_FILE", &path), ("RABBITMQ_URL", "amqp://x")])).unwrap_err();
        assert_eq!(err.to_string(), "environment variable RABBITMQ_URL_FILE: RABBITMQ_URL is set too; set one of them");
        assert!(!err.to_string().contains("secret"));
    }

    #[test]
    fn base64_documents() {
        let doc = base64::engine::general_purpose::STANDARD.encode(r#"{"client":{"name":"b64"}}"#);
        let docs = documents(&env(&[("CONCIERGE_CONFIG_B64", &doc)])).unwrap();
        assert_eq!(docs[0].1["client"]["name"], "b64");
        let err = documents(&env(&[("CONCIERGE_CONFIG_B64", "!!!")])).unwrap_err();
        assert!(err.to_string().starts_with("environment variable CONCIERGE_CONFIG_B64: invalid base64"));
    }
}
