//! Concierge: a Sensu 1.x-compatible check runner.
//!
//! The folders show the architecture, and dependencies point one way: a module uses only
//! modules of a lower layer (`tests/architecture.rs` fails otherwise). Two modules of one
//! layer talk through types of a lower one.
//!
//! | layer | modules | role |
//! |---|---|---|
//! | 5 | `main.rs` | wiring: parse the command line, start logging and the runtime, dispatch |
//! | 4 | [`cli`] | front ends: argument types, one file per subcommand, exit codes, settings errors |
//! | 3 | [`client`], [`api`], [`scale`] | processes: the agent (fleet session, local mode, the request pipeline, signals); the local sockets; the scheduler |
//! | 2 | [`checks`], [`transport`] | services: the executor and one runner per kind of check; RabbitMQ (session, inbox, publisher, sinks) |
//! | 1 | [`config`], [`telemetry`], [`pki`], [`logging`], [`serve`] | shared: sources → one validated `Settings`; figures; rustls plumbing; logs; bounded HTTP servers |
//! | 0 | [`proto`], then [`scrape`], [`schedule`] | pure core: the Sensu model and rules; metric formats; splay, cron, subdue |
//!
//! * [`proto`]: the Sensu 1.x data model and its pure rules (token substitution,
//!   redaction, deep merge, result and definition validation, payloads). No I/O.
//! * [`scrape`]: metric page formats (Prometheus/OpenMetrics, Dropwizard, JSON) and the
//!   Graphite/Influx/OpenTSDB writers.
//! * [`schedule`]: standalone checks: splay, cron and subdue.
//! * [`config`]: where settings come from (environment, JSON files, base64 documents),
//!   parsed into [`config::Loaded`], then validated once into [`config::Settings`].
//! * [`telemetry`]: Concierge's own figures (`/metrics`, EMF lines).
//! * [`pki`]: rustls plumbing shared by the broker connection and the checks.
//! * [`logging`]: the tracing subscriber.
//! * [`serve`]: HTTP/1.1 servers with bounds (connections, header time), for the local API
//!   and the scheduler.
//! * [`checks`]: how a check request becomes a result: the executor (local definitions,
//!   safe mode, in-progress guard, hooks) and one runner per kind.
//! * [`transport`]: RabbitMQ exactly as sensu-transport uses it, and where results go.
//! * [`api`]: the JSON and HTTP sockets, `/healthz`, `/metrics`.
//! * [`client`]: the agent: the request pipeline, local mode, the fleet lifecycle.
//! * [`scale`]: the scheduler: scale a service within its bounds; every decision a Sensu result.
//! * [`cli`]: the command line.
// No unsafe code but one reviewed exception, allowed where it is: `client::memory` calls glibc's
// `malloc_trim` (tests/architecture.rs keeps it the only one).
#![deny(unsafe_code)]
#![deny(rust_2018_idioms)]

pub mod api;
pub mod checks;
pub mod cli;
pub mod client;
pub mod config;
pub mod logging;
pub mod pki;
pub mod proto;
pub mod scale;
pub mod schedule;
pub mod scrape;
pub mod serve;
pub mod telemetry;
pub mod transport;

/// Concierge's own version, as built.
pub const CONCIERGE_VERSION: &str = env!("CARGO_PKG_VERSION");
