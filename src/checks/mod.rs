//! How a check request becomes a result.
//!
//! [`executor::Executor`] applies sensu-client's request processing (local definition
//! merge, safe mode, token substitution, in-progress guard, concurrency limits, hooks)
//! and hands the execution to a runner: [`command`] for `command` checks, or a
//! [`Builtin`] selected by `extension` for checks that run in-process.

pub mod command;
pub mod executor;
pub mod hooks;

use std::future::Future;
use std::pin::Pin;

use crate::proto::Object;

pub use executor::{Executor, ExecutorSettings};

/// What a built-in check produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuiltinOutcome {
    /// Plugin-style output (first line, then `|` perfdata).
    pub output: String,
    /// 0 OK, 1 warning, 2 critical, 3 unknown.
    pub status: i32,
    /// Attributes added to the published check (e.g. `reason`, timings).
    pub attributes: Object,
}

/// A check that runs inside the client's async runtime instead of forking a process.
pub trait Builtin: Send + Sync {
    /// The `extension` name that selects it.
    fn name(&self) -> &'static str;
    /// Run it for one (token-substituted) check request.
    fn run(&self, check: Object) -> Pin<Box<dyn Future<Output = BuiltinOutcome> + Send + 'static>>;
}
