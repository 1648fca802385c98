//! Executors as the tests build them: one builder over `ExecutorSettings`.

use concierge::checks::{Executor, ExecutorSettings, builtins};
use serde_json::{Value, json};

use super::obj;

/// An executor for client `probe-1`, 12 command slots (sensu-client's spawn limit) and 50
/// built-in slots, no local checks and no built-ins unless asked.
pub struct Builder(ExecutorSettings);

impl Default for Builder {
    fn default() -> Self {
        Builder(ExecutorSettings {
            client: obj(json!({"name": "probe-1"})),
            spawn_limit: 12,
            builtin_limit: 50,
            ..ExecutorSettings::default()
        })
    }
}

impl Builder {
    /// The whole `client` scope (a JSON object).
    pub fn client(mut self, client: Value) -> Self {
        self.0.client = obj(client);
        self
    }

    /// Local check definitions (JSON objects, each with its `name`).
    pub fn local_checks(mut self, checks: Vec<Value>) -> Self {
        self.0.local_checks = checks.into_iter().map(obj).collect();
        self
    }

    pub fn spawn_limit(mut self, n: usize) -> Self {
        self.0.spawn_limit = n;
        self
    }

    pub fn builtin_limit(mut self, n: usize) -> Self {
        self.0.builtin_limit = n;
        self
    }

    /// Every built-in check Concierge ships.
    pub fn builtins(mut self) -> Self {
        self.0.builtins = builtins();
        self
    }

    /// Bytes of a command's output kept (`concierge.output_limit`).
    pub fn output_limit(mut self, bytes: usize) -> Self {
        self.0.output_limit = bytes;
        self
    }

    /// Run known plugin command lines in-process (as a client does by default).
    pub fn native_plugins(mut self, on: bool) -> Self {
        self.0.native_plugins = on;
        self
    }

    pub fn settings(self) -> ExecutorSettings {
        self.0
    }

    pub fn build(self) -> Executor {
        Executor::new(self.0)
    }
}

/// The default executor with every built-in check.
pub fn with_builtins() -> Executor {
    Builder::default().builtins().build()
}
