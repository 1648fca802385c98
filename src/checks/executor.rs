//! Check request processing, as `Sensu::Client::Process#process_check_request` and
//! `#execute_check_command` do it (sensu 1.9.0 `lib/sensu/client/process.rb`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_util::sync::CancellationToken;

use super::command::{self, Spawn};
use super::{Builtin, FollowUp, hooks};
use crate::config::ClientSettings;
use crate::proto::{
    Additions, Field, Object, ResultPayload, field, now_epoch, object_has_tokens, object_substitute_tokens, round3,
    substitute_tokens,
};

/// How long a plugin command line run natively may take when its check has no `timeout`.
pub const NATIVE_RUN_LIMIT: Duration = Duration::from_secs(600);
/// Output of a request refused by safe mode (sensu-client).
pub const SAFE_MODE_OUTPUT: &str = "Check is not locally defined (safe mode)";
/// Prefix of the output when tokens match nothing (sensu-client).
pub const UNMATCHED_TOKENS_PREFIX: &str = "Unmatched client token(s): ";

/// What the executor needs from the settings.
#[derive(Clone)]
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
    /// Where executions are counted and timed.
    pub telemetry: Arc<crate::telemetry::Telemetry>,
    /// Run known plugin command lines in-process ([`super::native`]).
    pub native_plugins: bool,
    /// Bytes of a command's output kept ([`command::Spawn::output_limit`]).
    pub output_limit: usize,
}

impl Default for ExecutorSettings {
    fn default() -> Self {
        Self {
            client: Default::default(),
            local_checks: Default::default(),
            spawn_limit: Default::default(),
            builtin_limit: Default::default(),
            env: Default::default(),
            builtins: Default::default(),
            telemetry: Default::default(),
            native_plugins: Default::default(),
            output_limit: command::DEFAULT_OUTPUT_LIMIT,
        }
    }
}

/// A finished check: its result payload, built once, and what its built-in asks to publish
/// besides it.
#[derive(Debug)]
pub struct Finished {
    /// The result to publish (`{client, check, signature?}`); with a follow-up, the check
    /// as it finished, which the follow-up turns into the results to publish.
    pub result: ResultPayload,
    /// Parts and reports to publish with it (the courier's), driven by the client's pipeline.
    pub follow_up: Option<Box<dyn FollowUp>>,
}

/// What became of a request.
#[derive(Debug)]
pub enum Processed {
    /// A result to publish.
    Result(Finished),
    /// Nothing to publish: the check was already in progress, or the request had no name.
    Dropped,
    /// Cancelled while waiting for an execution slot: never started, safe to hand back.
    NotStarted,
}

/// The parts of the executor that a configuration reload replaces.
struct Config {
    client: Object,
    /// `client.name` and `client.signature`, read once: every result carries them.
    name: Arc<str>,
    signature: Option<String>,
    safe_mode: bool,
    local: HashMap<String, Object>,
    env: Vec<(String, String)>,
    builtins: HashMap<&'static str, Arc<dyn Builtin>>,
    native_plugins: bool,
    output_limit: usize,
}

impl Config {
    fn from(settings: ExecutorSettings) -> Self {
        Self {
            safe_mode: settings.client.get("safe_mode") == Some(&Value::Bool(true)),
            local: settings
                .local_checks
                .into_iter()
                .filter_map(|c| Some((c.get("name")?.as_str()?.to_string(), c)))
                .collect(),
            name: ClientSettings::name_of(&settings.client).into(),
            signature: ClientSettings::signature_of(&settings.client),
            client: settings.client,
            env: settings.env,
            builtins: settings.builtins.into_iter().map(|b| (b.name(), b)).collect(),
            native_plugins: settings.native_plugins,
            output_limit: settings.output_limit,
        }
    }
}

/// A semaphore whose size can change at run time.
struct Slots {
    semaphore: Arc<Semaphore>,
    size: AtomicUsize,
}

impl Slots {
    fn new(size: usize) -> Self {
        let size = size.max(1);
        Self { semaphore: Arc::new(Semaphore::new(size)), size: AtomicUsize::new(size) }
    }

    fn resize(&self, size: usize) {
        let size = size.max(1);
        let old = self.size.swap(size, Ordering::SeqCst);
        if size > old {
            self.semaphore.add_permits(size - old);
        } else if size < old {
            // Permits in use come back later: take the surplus as they do, and forget it.
            let semaphore = self.semaphore.clone();
            let surplus = u32::try_from(old - size).unwrap_or(u32::MAX);
            tokio::spawn(async move {
                if let Ok(permits) = semaphore.acquire_many(surplus).await {
                    permits.forget();
                }
            });
        }
    }

    /// Wait (in order) for a slot, unless `stop` fires first.
    async fn acquire(&self, stop: &CancellationToken) -> Option<SemaphorePermit<'_>> {
        // A free slot is taken at once: none is free while requests wait for one (a slot
        // given back goes to the first waiting), so this keeps their order. Only waiting is
        // boxed — inline, its state would be carried by every request's task.
        if let Ok(permit) = self.semaphore.try_acquire() {
            return Some(permit);
        }
        Box::pin(self.wait(stop)).await
    }

    async fn wait(&self, stop: &CancellationToken) -> Option<SemaphorePermit<'_>> {
        tokio::select! {
            biased;
            permit = self.semaphore.acquire() => permit.ok(),
            () = stop.cancelled() => None,
        }
    }

    fn in_use(&self) -> usize {
        self.size.load(Ordering::Relaxed).saturating_sub(self.semaphore.available_permits())
    }
}

/// Turns check requests into results. Shared by every source of requests.
pub struct Executor {
    telemetry: Arc<crate::telemetry::Telemetry>,
    config: RwLock<Arc<Config>>,
    spawn_slots: Slots,
    builtin_slots: Slots,
    in_progress: Mutex<Running>,
    /// Woken when an execution ends, if anyone waits for one ([`Executor::until_idle`]).
    released: tokio::sync::Notify,
    /// Callers of [`Executor::until_idle`] waiting now (none, almost always: an execution that
    /// ends then wakes nobody).
    waiting: AtomicUsize,
}

/// The executions running, by check key (`source:name` or `name`): when each started and its
/// timeout. The key is shared with the execution's guard, which removes it.
type Running = HashMap<Arc<str>, (tokio::time::Instant, Option<Duration>)>;

/// Removes the in-progress key when the execution ends, however it ends.
struct InProgress<'a> {
    executor: &'a Executor,
    key: Arc<str>,
}

impl Drop for InProgress<'_> {
    fn drop(&mut self) {
        if let Ok(mut set) = self.executor.in_progress.lock() {
            set.remove(&self.key);
        }
        if self.executor.waiting.load(Ordering::SeqCst) > 0 {
            self.executor.released.notify_waiters();
        }
    }
}

/// The key a check runs under (`source:name` or `name`): one execution per key at a time.
fn running_key(name: &str, source: Option<&Value>) -> Arc<str> {
    match source.and_then(Value::as_str) {
        Some(source) => format!("{source}:{name}").into(),
        None => name.into(),
    }
}

/// A check's `name`, or the empty one.
fn name_of(check: &Object) -> &str {
    field(check, "name").and_then(Value::as_str).unwrap_or_default()
}

impl Executor {
    /// Build an executor from validated settings.
    pub fn new(settings: ExecutorSettings) -> Self {
        Self {
            telemetry: settings.telemetry.clone(),
            spawn_slots: Slots::new(settings.spawn_limit),
            builtin_slots: Slots::new(settings.builtin_limit),
            config: RwLock::new(Arc::new(Config::from(settings))),
            in_progress: Mutex::new(HashMap::new()),
            released: tokio::sync::Notify::new(),
            waiting: AtomicUsize::new(0),
        }
    }

    /// Wait until `request` is not running here (no execution holds the key it would run
    /// under): `true`, or `false` if `stop` fired first (or the in-progress set is poisoned).
    pub async fn until_idle(&self, request: &Object, stop: &CancellationToken) -> bool {
        /// Counts a waiter for as long as it waits, however the wait ends.
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        // The key it runs under: the request's `name`, and its `source` as the local
        // definition merged over it has it (as `process_until` merges before `claim`).
        let name = name_of(request);
        let config = self.config();
        let local = config.local.get(name).filter(|_| !request.contains_key("proxy_requests"));
        let key = running_key(name, local.and_then(|l| l.get("source")).or_else(|| field(request, "source")));
        drop(config);
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.waiting);
        loop {
            // Registered before the key is looked at: an execution ending in between wakes it.
            let released = self.released.notified();
            // A poisoned set claims nothing either (`claim`): the request is handed back.
            let Ok(running) = self.in_progress.lock().map(|set| set.contains_key(&key)) else { return false };
            if !running {
                return true;
            }
            tokio::select! {
                () = stop.cancelled() => return false,
                () = released => {}
            }
        }
    }

    /// Replace the configuration (SIGHUP). Running checks finish with the old one; the
    /// in-progress guard and the slots carry over.
    pub fn reconfigure(&self, settings: ExecutorSettings) {
        self.spawn_slots.resize(settings.spawn_limit);
        self.builtin_slots.resize(settings.builtin_limit);
        let config = Arc::new(Config::from(settings));
        *self.config.write().unwrap_or_else(std::sync::PoisonError::into_inner) = config;
    }

    fn config(&self) -> Arc<Config> {
        self.config.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The client's name.
    pub fn client_name(&self) -> String {
        self.config().name.to_string()
    }

    /// The client's signature, if configured.
    pub fn signature(&self) -> Option<String> {
        self.config().signature.clone()
    }

    /// The whole, unredacted client settings.
    pub fn client(&self) -> Object {
        self.config().client.clone()
    }

    /// The local definition named `name`.
    pub fn local_definition(&self, name: &str) -> Option<Object> {
        self.config().local.get(name).cloned()
    }

    /// Command and built-in executions running now (slots in use).
    pub fn busy(&self) -> (usize, usize) {
        (self.spawn_slots.in_use(), self.builtin_slots.in_use())
    }

    /// The load now (and the slot gauges updated to it).
    pub fn load(&self) -> crate::telemetry::Load {
        let ((busy_commands, busy_builtins), (commands, builtins)) = (self.busy(), self.capacity());
        self.telemetry.slots_used((busy_commands, commands), (busy_builtins, builtins))
    }

    /// The figures this executor reports to.
    pub fn telemetry(&self) -> &Arc<crate::telemetry::Telemetry> {
        &self.telemetry
    }

    /// The execution running the longest: its key, how long it has run, and its timeout.
    pub fn oldest_running(&self) -> Option<(String, Duration, Option<Duration>)> {
        let set = self.in_progress.lock().ok()?;
        set.iter()
            .min_by_key(|(_, (started, _))| *started)
            .map(|(key, (started, timeout))| (key.to_string(), started.elapsed(), *timeout))
    }

    /// Record that an execution starts now (after any wait for a slot).
    fn started(&self, check: &Object, waited: Duration) {
        self.telemetry.queue_wait.observe(waited.as_secs_f64());
        if let Some(issued) = field(check, "issued").and_then(Value::as_i64) {
            self.telemetry.lag_observed(crate::proto::now_epoch_f64() - issued as f64);
        }
    }

    /// Total execution slots (commands, built-ins).
    pub fn capacity(&self) -> (usize, usize) {
        (self.spawn_slots.size.load(Ordering::Relaxed), self.builtin_slots.size.load(Ordering::Relaxed))
    }

    /// Process one check request. Returns the check to publish, or `None` when the
    /// request is dropped (already in progress, or without a name).
    pub async fn process(&self, check: Object) -> Option<Object> {
        match self.process_until(check, &CancellationToken::new()).await {
            Processed::Result(finished) => Some(finished.result.into_check()),
            Processed::Dropped | Processed::NotStarted => None,
        }
    }

    /// Process one check request; if `stop` fires while it waits for an execution slot,
    /// give up before starting it ([`Processed::NotStarted`]).
    pub async fn process_until(&self, mut check: Object, stop: &CancellationToken) -> Processed {
        let config = self.config();
        let Some(name) = field(&check, "name").and_then(Value::as_str) else {
            return Processed::Dropped;
        };
        let local = config.local.get(name);
        if let Some(local) = local.filter(|_| !check.contains_key("proxy_requests")) {
            // `check.merge!(local)`: local attributes win, command included.
            for (key, value) in local {
                check.insert(key.clone(), value.clone());
            }
        }
        if field(&check, "command").is_some() {
            if config.safe_mode && local.is_none() {
                check.insert("output".into(), SAFE_MODE_OUTPUT.into());
                check.insert("status".into(), 3.into());
                check.insert("handle".into(), false.into());
                check.insert("executed".into(), now_epoch().into());
                return finished(&config, check, None);
            }
            // Boxed: a command's future (the process, its pipes, hooks) is large; inline, every
            // built-in request in flight — thousands at once — would carry its size too.
            Box::pin(self.execute_command(&config, check, stop)).await
        } else {
            self.execute_builtin(&config, check, stop).await
        }
    }

    fn claim(&self, check: &Object) -> Option<InProgress<'_>> {
        let key = running_key(name_of(check), field(check, "source"));
        let mut set = self.in_progress.lock().ok()?;
        if set.contains_key(&key) {
            self.telemetry.duplicates_dropped.inc();
            return None;
        }
        set.insert(key.clone(), (tokio::time::Instant::now(), timeout_of(field(check, "timeout"))));
        Some(InProgress { executor: self, key })
    }

    async fn execute_command(&self, config: &Config, check: Object, stop: &CancellationToken) -> Processed {
        let Some(_guard) = self.claim(&check) else {
            tracing::warn!(check = ?check.get("name"), "previous check command execution in progress");
            return Processed::Dropped;
        };
        let original_command = check.get("command").cloned().unwrap_or(Value::Null);
        let mut substituted = Value::Object(check);
        let unmatched = object_substitute_tokens(&mut substituted, &config.client);
        let Value::Object(mut check) = substituted else { return Processed::Dropped };
        let command_line = match check.insert("command".into(), original_command) {
            Some(Value::String(s)) => s,
            _ => String::new(),
        };
        let started = tokio::time::Instant::now();
        check.insert("executed".into(), now_epoch().into());
        if !unmatched.is_empty() {
            return finished(config, unmatched_result(check, &unmatched), None);
        }
        let native = (config.native_plugins && check.get("native") != Some(&Value::Bool(false)))
            .then(|| super::native::recognize(&command_line))
            .flatten();
        match native {
            Some(super::native::Recognized::Run(plugin)) => {
                return self.execute_native(config, check, plugin, started, stop).await;
            }
            Some(super::native::Recognized::Unsupported { plugin, program, why })
                if !super::native::installed(&program) =>
            {
                self.telemetry.plugin_run(plugin, "unknown");
                check.insert("runner".into(), format!("native:{plugin}").into());
                check.insert(
                    "output".into(),
                    format!("UNKNOWN: {plugin}: {why} and {plugin} is not installed\n").into(),
                );
                check.insert("status".into(), 3.into());
                check.insert("duration".into(), round3(started.elapsed().as_secs_f64()).into());
                return finished(config, check, None);
            }
            Some(super::native::Recognized::Unsupported { plugin, why, .. }) => {
                tracing::debug!(plugin, why, "plugin option not run natively: forking the plugin");
                self.telemetry.plugin_run(plugin, "fork");
                check.insert("runner".into(), "fork".into());
            }
            None => {}
        }
        let stdin = (check.get("stdin") == Some(&Value::Bool(true))).then(|| stdin_payload(config, &check));
        let Some(slot) = self.spawn_slots.acquire(stop).await else { return Processed::NotStarted };
        self.started(&check, started.elapsed());
        let outcome = self.spawn(config, command_line, timeout_of(check.get("timeout")), stdin).await;
        drop(slot);
        self.telemetry.check_finished("command", i64::from(outcome.status), started.elapsed().as_secs_f64());
        let added = ran(Additions::with_capacity(3), started, outcome.output, outcome.status);
        self.complete(config, check, added, None).await
    }

    /// A plugin command line run in-process, in a built-in slot: the plugin's output and
    /// status, and `runner: native:<plugin>`. The check's `timeout` still applies.
    async fn execute_native(
        &self,
        config: &Config,
        mut check: Object,
        plugin: super::native::Native,
        started: tokio::time::Instant,
        stop: &CancellationToken,
    ) -> Processed {
        let Some(slot) = self.builtin_slots.acquire(stop).await else { return Processed::NotStarted };
        self.started(&check, started.elapsed());
        let name = plugin.plugin();
        let run = plugin.run();
        // As a forked command that ran past its timeout. Without one, a native run still ends:
        // it holds a built-in slot, which a run that never ends would keep from every check.
        let limit = timeout_of(check.get("timeout")).unwrap_or(NATIVE_RUN_LIMIT);
        let (output, status) =
            tokio::time::timeout(limit, run).await.unwrap_or_else(|_| (command::TIMED_OUT_OUTPUT.to_string(), 2));
        drop(slot);
        self.telemetry.plugin_run(name, "native");
        self.telemetry.check_finished("command", i64::from(status), started.elapsed().as_secs_f64());
        check.insert("runner".into(), format!("native:{name}").into());
        let added = ran(Additions::with_capacity(3), started, output, status);
        self.complete(config, check, added, None).await
    }

    async fn execute_builtin(&self, config: &Config, mut check: Object, stop: &CancellationToken) -> Processed {
        let Some(builtin) = extension_of(&check).and_then(|e| config.builtins.get(e)).cloned() else {
            let extension = extension_of(&check).unwrap_or_default().to_string();
            // sensu-client logs "unknown check extension" and publishes nothing, which
            // leaves a misconfigured check silently stale. We publish an UNKNOWN result
            // that says why.
            tracing::warn!(extension, "unknown check extension");
            check.insert("executed".into(), now_epoch().into());
            check.insert("output".into(), format!("Unknown check extension: {extension}").into());
            check.insert("status".into(), 3.into());
            return finished(config, check, None);
        };
        let Some(_guard) = self.claim(&check) else {
            tracing::warn!(check = ?check.get("name"), "previous check extension execution in progress");
            return Processed::Dropped;
        };
        let started = tokio::time::Instant::now();
        check.insert("executed".into(), now_epoch().into());
        // The result carries the request as it came; the built-in runs on a substituted copy
        // only when there is something to substitute, and otherwise shares the request.
        let substituted = if object_has_tokens(&check) {
            let mut substituted = Value::Object(check.clone());
            let unmatched = object_substitute_tokens(&mut substituted, &config.client);
            if !unmatched.is_empty() {
                return finished(config, unmatched_result(check, &unmatched), None);
            }
            let Value::Object(request) = substituted else { return Processed::Dropped };
            Some(Arc::new(request))
        } else {
            None
        };
        let Some(slot) = self.builtin_slots.acquire(stop).await else { return Processed::NotStarted };
        self.started(&check, started.elapsed());
        let ctx = super::BuiltinContext { client_name: config.name.clone() };
        let (outcome, check) = match substituted {
            Some(request) => (builtin.run(request, ctx).await, check),
            None => {
                let shared = Arc::new(check);
                let outcome = builtin.run(shared.clone(), ctx).await;
                (outcome, Arc::try_unwrap(shared).unwrap_or_else(|shared| (*shared).clone()))
            }
        };
        drop(slot);
        self.telemetry.check_finished(builtin.name(), i64::from(outcome.status), started.elapsed().as_secs_f64());
        let added = ran(outcome.attributes, started, outcome.output, outcome.status);
        if !hooks::has_hooks(&check) && outcome.follow_up.is_none() {
            return ready(config, check, added);
        }
        // Boxed: waiting for a hook is rare, and inline every built-in request in flight
        // would carry the state (the request's task then outgrows the allocator's cache).
        Box::pin(self.complete(config, check, added, outcome.follow_up)).await
    }

    /// The result of a check that ran: what the run `added` goes after the request's keys
    /// when written ([`Additions`]); a hook needs the check whole, to pick itself by status
    /// and for its stdin, and so does a follow-up.
    async fn complete(
        &self,
        config: &Config,
        mut check: Object,
        added: Additions,
        follow_up: Option<Box<dyn FollowUp>>,
    ) -> Processed {
        if !hooks::has_hooks(&check) && follow_up.is_none() {
            return ready(config, check, added);
        }
        added.fold_into(&mut check);
        // Boxed: a hook is a command (its process and pipes); inline, every built-in's
        // future — thousands in flight — would carry its size too.
        Box::pin(self.run_hook(config, &mut check)).await;
        finished(config, check, follow_up)
    }

    async fn spawn(
        &self,
        config: &Config,
        command: String,
        timeout: Option<Duration>,
        stdin: Option<Vec<u8>>,
    ) -> command::Outcome {
        command::run(Spawn { command, timeout, stdin, env: config.env.clone(), output_limit: config.output_limit })
            .await
    }

    async fn run_hook(&self, config: &Config, check: &mut Object) {
        if !hooks::has_hooks(check) {
            return;
        }
        let status = check.get("status").and_then(Value::as_i64).unwrap_or(3);
        let Some(key) = check.get("hooks").and_then(Value::as_object).and_then(|h| hooks::select(h, status)) else {
            return;
        };
        let stdin_doc = stdin_payload(config, check);
        let Some(hook) = hooks::hook_mut(check, &key) else { return };
        let raw = hook.get("command").and_then(Value::as_str).unwrap_or_default().to_string();
        let (command_line, unmatched) = substitute_tokens(raw.as_bytes(), &config.client);
        if !unmatched.is_empty() {
            hook.insert("output".into(), format!("{UNMATCHED_TOKENS_PREFIX}{}", unmatched.join(", ")).into());
            hook.insert("status".into(), 3.into());
            return;
        }
        hook.insert("executed".into(), now_epoch().into());
        let started = tokio::time::Instant::now();
        let timeout = timeout_of(hook.get("timeout")).or(Some(Duration::from_secs_f64(hooks::DEFAULT_HOOK_TIMEOUT)));
        let stdin = (hook.get("stdin") == Some(&Value::Bool(true))).then_some(stdin_doc);
        // Hooks go through the same spawn queue as checks (sensu-spawn).
        let slot = self.spawn_slots.acquire(&CancellationToken::new()).await;
        let outcome = self.spawn(config, command_line, timeout, stdin).await;
        drop(slot);
        hook.insert("duration".into(), round3(started.elapsed().as_secs_f64()).into());
        hook.insert("output".into(), outcome.output.into());
        hook.insert("status".into(), outcome.status.into());
    }
}

/// The result of a check that needs nothing more: the request, then what the run `added`.
fn ready(config: &Config, check: Object, added: Additions) -> Processed {
    let result = ResultPayload::new(&config.name, check, config.signature.as_deref()).with_additions(added);
    Processed::Result(Finished { result, follow_up: None })
}

/// The result of a check this client executed, with its name and signature. A follow-up
/// gets the check verbatim and makes its own results of it.
fn finished(config: &Config, check: Object, follow_up: Option<Box<dyn FollowUp>>) -> Processed {
    let result = match follow_up {
        None => ResultPayload::new(&config.name, check, config.signature.as_deref()),
        Some(_) => ResultPayload::verbatim(&config.name, check, config.signature.as_deref()),
    };
    Processed::Result(Finished { result, follow_up })
}

/// What every run adds after its own attributes, in sensu-client's order: `duration` (since
/// `started`), `output`, `status`.
fn ran(mut added: Additions, started: tokio::time::Instant, output: String, status: i32) -> Additions {
    added.set("duration", Field::Float(round3(started.elapsed().as_secs_f64())));
    added.set("output", output);
    added.set("status", status);
    added
}

/// `{client, check}` as a check's stdin (unredacted client settings, as Sensu).
fn stdin_payload(config: &Config, check: &Object) -> Vec<u8> {
    let mut doc = Object::new();
    doc.insert("client".into(), Value::Object(config.client.clone()));
    doc.insert("check".into(), Value::Object(check.clone()));
    serde_json::to_vec(&doc).unwrap_or_default()
}

/// The result for a check whose tokens matched nothing: not run, status 3, not handled.
fn unmatched_result(mut check: Object, unmatched: &[String]) -> Object {
    check.insert("output".into(), format!("{UNMATCHED_TOKENS_PREFIX}{}", unmatched.join(", ")).into());
    check.insert("status".into(), 3.into());
    check.insert("handle".into(), false.into());
    check
}

/// The built-in a request names: its `extension`, else its `name`.
fn extension_of(check: &Object) -> Option<&str> {
    field(check, "extension").or_else(|| field(check, "name")).and_then(Value::as_str)
}

/// A Sensu `timeout` (numeric seconds, fractions allowed; absent, zero or negative
/// means none).
fn timeout_of(value: Option<&Value>) -> Option<Duration> {
    // A timeout no `Duration` can hold (`1e20` s) is as good as none.
    value.and_then(Value::as_f64).filter(|t| *t > 0.0).and_then(|t| Duration::try_from_secs_f64(t).ok())
}
