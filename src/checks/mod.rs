//! How a check request becomes a result.
//!
//! [`executor::Executor`] applies sensu-client's request processing (local definition
//! merge, safe mode, token substitution, in-progress guard, concurrency limits, hooks)
//! and hands the execution to a runner: [`command`] for `command` checks, or a
//! [`Builtin`] selected by `extension` for checks that run in-process.

pub mod command;
pub mod compiled;
pub mod courier;
pub mod dns;
pub mod executor;
pub mod failure;
pub mod hooks;
pub mod http;
pub mod http1;
pub mod native;
pub mod net;
pub mod plugin;
pub mod tcp;
pub mod tls;

use std::future::Future;
use std::pin::Pin;

use crate::proto::{Additions, Object, ResultPayload};

pub use executor::{Executor, ExecutorSettings};
pub use failure::{CheckFailure, Reason};

/// What a built-in check produced.
#[derive(Debug, Default)]
pub struct BuiltinOutcome {
    /// Plugin-style output (first line, then `|` perfdata).
    pub output: String,
    /// 0 OK, 1 warning, 2 critical, 3 unknown.
    pub status: i32,
    /// Attributes added to the published check (e.g. `reason`, timings).
    pub attributes: Additions,
    /// What to publish besides the result, and after it (the courier's parts and delivery
    /// report).
    pub follow_up: Option<Box<dyn FollowUp>>,
}

/// What a built-in asks the client to do with its result beyond publishing it: publish it
/// as several results, and one more once those are confirmed (or not). The client's
/// request pipeline drives it the same way for every built-in; the courier uses it for
/// split shots and its `<check>.delivery` report.
pub trait FollowUp: Send + std::fmt::Debug {
    /// The results to publish for this finished check (all at once; possibly none). It
    /// gets the check verbatim (an empty `source` not yet dropped): build each result with
    /// `ResultPayload::new`.
    fn results(&mut self, result: ResultPayload) -> Vec<ResultPayload>;
    /// A last result to publish once those were confirmed (`delivered`) or not,
    /// `seconds` after the first was handed over.
    fn finish(self: Box<Self>, seconds: f64, delivered: bool) -> Option<ResultPayload>;
}

/// What a built-in check gets besides its request.
#[derive(Debug, Clone, Default)]
pub struct BuiltinContext {
    /// The client's name (for default metric schemes); shared, not copied per check.
    pub client_name: std::sync::Arc<str>,
}

/// A running built-in check.
pub type BuiltinFuture = Pin<Box<dyn Future<Output = BuiltinOutcome> + Send + 'static>>;

/// A check that runs inside the client's async runtime instead of forking a process.
pub trait Builtin: Send + Sync {
    /// The `extension` name that selects it.
    fn name(&self) -> &'static str;
    /// Run it for one (token-substituted) check request, shared with the executor, which
    /// keeps it for the result. Must not panic on bad input: unusable parameters give an
    /// UNKNOWN outcome naming the problem.
    fn run(&self, check: std::sync::Arc<Object>, ctx: BuiltinContext) -> BuiltinFuture;
}

/// Every built-in check Concierge ships.
pub fn builtins() -> Vec<std::sync::Arc<dyn Builtin>> {
    vec![
        std::sync::Arc::new(http::Http::default()),
        std::sync::Arc::new(dns::Dns::default()),
        std::sync::Arc::new(tls::Tls),
        std::sync::Arc::new(tcp::Tcp),
        std::sync::Arc::new(courier::Courier),
    ]
}
