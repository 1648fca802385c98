//! Concierge: a Sensu 1.x-compatible check runner.
//!
//! The crate is laid out so that its folders show the architecture:
//!
//! * [`proto`]: the Sensu 1.x data model and its pure rules (token substitution,
//!   redaction, deep merge, result validation). No I/O.
//! * [`config`]: where settings come from: environment, JSON files, base64 documents,
//!   and their validation.
//! * [`checks`]: how a check request becomes a result: the executor (local
//!   definitions, safe mode, in-progress guard, hooks) and one runner per kind.
//! * [`schedule`]: standalone checks: splay, cron and subdue.
//! * [`client`]: the process that ties them together, and the sinks results go to.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod api;
pub mod checks;
pub mod client;
pub mod config;
pub mod logging;
pub mod pki;
pub mod proto;
pub mod schedule;
pub mod scrape;
pub mod telemetry;
pub mod transport;

/// Concierge's own version, as built.
pub const CONCIERGE_VERSION: &str = env!("CARGO_PKG_VERSION");
