//! Check request processing, as `Sensu::Client::Process#process_check_request` and
//! `#execute_check_command` do it (sensu 1.9.0 `lib/sensu/client/process.rb`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Semaphore;

use super::command::{self, Spawn};
use super::{Builtin, hooks};
use crate::proto::{Object, now_epoch, object_substitute_tokens, round3, substitute_tokens};

/// Output of a request refused by safe mode (sensu-client).
pub const SAFE_MODE_OUTPUT: &str = "Check is not locally defined (safe mode)";
/// Prefix of the output when tokens match nothing (sensu-client).
pub const UNMATCHED_TOKENS_PREFIX: &str = "Unmatched client token(s): ";
/// Sensu's default `sensu.spawn.limit`.
pub const DEFAULT_SPAWN_LIMIT: usize = 12;
/// Default number of built-in checks running at once.
pub const DEFAULT_BUILTIN_LIMIT: usize = 500;

/// What the executor needs from the settings.
#[derive(Clone, Default)]
pub struct ExecutorSettings {
    /// The whole, unredacted `client` scope (token values, stdin payloads).
    pub client: Object,
    /// Local check definitions, each with its `name`.
    pub local_checks: Vec<Object>,
    /// Command checks running at once (`sensu.spawn.limit`); the rest wait in order.
    pub spawn_limit: usize,
    /// Built-in checks running at once.
    pub builtin_limit: usize,
    /// Environment added to every command (`SENSU_LOADED_TEMPFILE`).
    pub env: Vec<(String, String)>,
    /// Built-in checks by extension name.
    pub builtins: Vec<Arc<dyn Builtin>>,
}

/// Turns check requests into results. Shared by every source of requests.
pub struct Executor {
    client: Object,
    safe_mode: bool,
    local: HashMap<String, Object>,
    env: Vec<(String, String)>,
    builtins: HashMap<&'static str, Arc<dyn Builtin>>,
    spawn_slots: Arc<Semaphore>,
    builtin_slots: Arc<Semaphore>,
    in_progress: Mutex<HashSet<String>>,
}

/// Removes the in-progress key when the execution ends, however it ends.
struct InProgress<'a> {
    set: &'a Mutex<HashSet<String>>,
    key: String,
}

impl Drop for InProgress<'_> {
    fn drop(&mut self) {
        if let Ok(mut set) = self.set.lock() {
            set.remove(&self.key);
        }
    }
}

impl Executor {
    /// Build an executor from validated settings.
    pub fn new(settings: ExecutorSettings) -> Self {
        let local =
            settings.local_checks.into_iter().filter_map(|c| Some((c.get("name")?.as_str()?.to_string(), c))).collect();
        Self {
            safe_mode: settings.client.get("safe_mode") == Some(&Value::Bool(true)),
            client: settings.client,
            local,
            env: settings.env,
            builtins: settings.builtins.into_iter().map(|b| (b.name(), b)).collect(),
            spawn_slots: Arc::new(Semaphore::new(settings.spawn_limit.max(1))),
            builtin_slots: Arc::new(Semaphore::new(settings.builtin_limit.max(1))),
            in_progress: Mutex::new(HashSet::new()),
        }
    }

    /// The client's name.
    pub fn client_name(&self) -> &str {
        self.client.get("name").and_then(Value::as_str).unwrap_or_default()
    }

    /// The client's signature, if configured.
    pub fn signature(&self) -> Option<&str> {
        self.client.get("signature").and_then(Value::as_str)
    }

    /// The local definition named `name`.
    pub fn local_definition(&self, name: &str) -> Option<&Object> {
        self.local.get(name)
    }

    /// Process one check request. Returns the check to publish, or `None` when the
    /// request is dropped (already in progress, or not an object with a name).
    pub async fn process(&self, mut check: Object) -> Option<Object> {
        let name = check.get("name").and_then(Value::as_str)?.to_string();
        let local = self.local.get(&name);
        if let Some(local) = local.filter(|_| !check.contains_key("proxy_requests")) {
            // `check.merge!(local)`: local attributes win, command included.
            for (key, value) in local {
                check.insert(key.clone(), value.clone());
            }
        }
        if check.contains_key("command") {
            if self.safe_mode && local.is_none() {
                check.insert("output".into(), SAFE_MODE_OUTPUT.into());
                check.insert("status".into(), 3.into());
                check.insert("handle".into(), false.into());
                check.insert("executed".into(), now_epoch().into());
                return Some(check);
            }
            self.execute_command(check).await
        } else {
            self.execute_builtin(check).await
        }
    }

    fn claim(&self, check: &Object) -> Option<InProgress<'_>> {
        let name = check.get("name").and_then(Value::as_str).unwrap_or_default();
        let key = match check.get("source").and_then(Value::as_str) {
            Some(source) => format!("{source}:{name}"),
            None => name.to_string(),
        };
        let mut set = self.in_progress.lock().ok()?;
        if set.insert(key.clone()) { Some(InProgress { set: &self.in_progress, key }) } else { None }
    }

    async fn execute_command(&self, check: Object) -> Option<Object> {
        let Some(_guard) = self.claim(&check) else {
            tracing::warn!(check = ?check.get("name"), "previous check command execution in progress");
            return None;
        };
        let original_command = check.get("command").cloned().unwrap_or(Value::Null);
        let mut substituted = Value::Object(check);
        let unmatched = object_substitute_tokens(&mut substituted, &self.client);
        let Value::Object(mut check) = substituted else { return None };
        let command_line = match check.insert("command".into(), original_command) {
            Some(Value::String(s)) => s,
            _ => String::new(),
        };
        let started = tokio::time::Instant::now();
        check.insert("executed".into(), now_epoch().into());
        if !unmatched.is_empty() {
            check.insert("output".into(), format!("{UNMATCHED_TOKENS_PREFIX}{}", unmatched.join(", ")).into());
            check.insert("status".into(), 3.into());
            check.insert("handle".into(), false.into());
            return Some(check);
        }
        let stdin = (check.get("stdin") == Some(&Value::Bool(true))).then(|| self.stdin_payload(&check));
        let outcome = self.spawn(command_line, timeout_of(check.get("timeout")), stdin).await;
        check.insert("duration".into(), round3(started.elapsed().as_secs_f64()).into());
        check.insert("output".into(), outcome.output.into());
        check.insert("status".into(), outcome.status.into());
        self.run_hook(&mut check).await;
        Some(check)
    }

    async fn execute_builtin(&self, mut check: Object) -> Option<Object> {
        let extension = check
            .get("extension")
            .or_else(|| check.get("name"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let Some(builtin) = self.builtins.get(extension.as_str()).cloned() else {
            // sensu-client logs "unknown check extension" and publishes nothing, which
            // leaves a misconfigured check silently stale. We publish an UNKNOWN result
            // that says why.
            tracing::warn!(extension, "unknown check extension");
            check.insert("executed".into(), now_epoch().into());
            check.insert("output".into(), format!("Unknown check extension: {extension}").into());
            check.insert("status".into(), 3.into());
            return Some(check);
        };
        let Some(_guard) = self.claim(&check) else {
            tracing::warn!(check = ?check.get("name"), "previous check extension execution in progress");
            return None;
        };
        let started = tokio::time::Instant::now();
        check.insert("executed".into(), now_epoch().into());
        let mut substituted = Value::Object(check.clone());
        let unmatched = object_substitute_tokens(&mut substituted, &self.client);
        if !unmatched.is_empty() {
            check.insert("output".into(), format!("{UNMATCHED_TOKENS_PREFIX}{}", unmatched.join(", ")).into());
            check.insert("status".into(), 3.into());
            check.insert("handle".into(), false.into());
            return Some(check);
        }
        let Value::Object(request) = substituted else { return None };
        let outcome = {
            let _slot = self.builtin_slots.acquire().await.ok()?;
            builtin.run(request).await
        };
        for (key, value) in outcome.attributes {
            check.insert(key, value);
        }
        check.insert("duration".into(), round3(started.elapsed().as_secs_f64()).into());
        check.insert("output".into(), outcome.output.into());
        check.insert("status".into(), outcome.status.into());
        self.run_hook(&mut check).await;
        Some(check)
    }

    async fn spawn(&self, command: String, timeout: Option<Duration>, stdin: Option<Vec<u8>>) -> command::Outcome {
        // FIFO wait for a slot (tokio's semaphore is fair), as Sensu's spawn queue.
        let _slot = self.spawn_slots.acquire().await;
        command::run(Spawn { command, timeout, stdin, env: self.env.clone() }).await
    }

    fn stdin_payload(&self, check: &Object) -> Vec<u8> {
        let mut doc = Object::new();
        doc.insert("client".into(), Value::Object(self.client.clone()));
        doc.insert("check".into(), Value::Object(check.clone()));
        serde_json::to_vec(&doc).unwrap_or_default()
    }

    async fn run_hook(&self, check: &mut Object) {
        if !hooks::has_hooks(check) {
            return;
        }
        let status = check.get("status").and_then(Value::as_i64).unwrap_or(3);
        let Some(key) = check.get("hooks").and_then(Value::as_object).and_then(|h| hooks::select(h, status)) else {
            return;
        };
        let stdin_doc = self.stdin_payload(check);
        let Some(hook) = hooks::hook_mut(check, &key) else { return };
        let raw = hook.get("command").and_then(Value::as_str).unwrap_or_default().to_string();
        let (command_line, unmatched) = substitute_tokens(raw.as_bytes(), &self.client);
        if !unmatched.is_empty() {
            hook.insert("output".into(), format!("{UNMATCHED_TOKENS_PREFIX}{}", unmatched.join(", ")).into());
            hook.insert("status".into(), 3.into());
            return;
        }
        hook.insert("executed".into(), now_epoch().into());
        let started = tokio::time::Instant::now();
        let timeout = timeout_of(hook.get("timeout")).or(Some(Duration::from_secs_f64(hooks::DEFAULT_HOOK_TIMEOUT)));
        let stdin = (hook.get("stdin") == Some(&Value::Bool(true))).then_some(stdin_doc);
        let outcome = self.spawn(command_line, timeout, stdin).await;
        hook.insert("duration".into(), round3(started.elapsed().as_secs_f64()).into());
        hook.insert("output".into(), outcome.output.into());
        hook.insert("status".into(), outcome.status.into());
    }
}

/// A Sensu `timeout` (numeric seconds, fractions allowed; absent, zero or negative
/// means none).
fn timeout_of(value: Option<&Value>) -> Option<Duration> {
    value.and_then(Value::as_f64).filter(|t| *t > 0.0 && t.is_finite()).map(Duration::from_secs_f64)
}
