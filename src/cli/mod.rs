//! The command line: argument types, one file per subcommand, the exit codes, and the
//! one place where settings are loaded and their problems printed.
//!
//! * [`run`]: the client, locally or joined to a Sensu deployment;
//! * [`check`]: one check once, like a Nagios plugin;
//! * [`builtins`]: `http`, `dns`, `tls`: a built-in check from flags;
//! * [`courier`]: `courier discover`;
//! * [`health`]: ask a running client's `/healthz`;
//! * [`config`]: print or validate the configuration;
//! * [`scale`]: scale a service within its bounds (the scheduler);
//! * [`args`]: flags shared by the built-ins' front ends.

pub mod args;
pub mod autoscale;
pub mod builtins;
pub mod check;
pub mod config;
pub mod courier;
pub mod health;
pub mod run;
pub mod scale;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Failure, Loaded, Settings, Sources};
use crate::logging::LogFormat;

/// Exit codes.
pub mod exit {
    /// Success; for `check`, status OK.
    pub const OK: u8 = 0;
    /// A failure that is not the configuration's (a socket in use, `health`: unhealthy).
    pub const FAILURE: u8 = 1;
    /// Invalid configuration (as sensu-client).
    pub const CONFIG: u8 = 2;
    /// `check` and the built-ins: the check could not be run at all (Nagios UNKNOWN).
    pub const UNKNOWN: u8 = 3;
}

#[derive(Parser, Debug)]
#[command(
    name = "concierge",
    version,
    about = "A Sensu 1.x-compatible check runner.",
    long_about = "A Sensu 1.x-compatible check runner.\n\n\
Without a broker (no RABBITMQ_URL, no `rabbitmq` setting) `concierge run` runs the check \
definitions in ./checks (or -d DIR) on their Sensu schedule and prints each result as a JSON \
line. With RABBITMQ_URL it joins a Sensu deployment as a client.\n\n\
Settings come from Sensu's env vars, CONCIERGE_* env vars and Sensu JSON config files \
(-c, -d); see the README's configuration table.",
    after_help = "Examples:\n  \
concierge run --local                 run ./checks locally, print results\n  \
concierge check checks/example.json   run one check once, exit with its status\n  \
concierge check disk_usage --json     run a defined check, print the Sensu result\n  \
concierge http https://example.com/health --match UP   try the built-in HTTP check\n  \
concierge config --validate           validate the configuration (exit 0 or 2)"
)]
#[allow(missing_docs)]
pub struct Cli {
    /// Sensu config file [default: /etc/sensu/config.json if present]
    #[arg(short = 'c', long = "config", env = "CONCIERGE_CONFIG_FILE", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Sensu config directories, comma-separated [default: /etc/sensu/conf.d if present, and ./checks for `run --local` and `check`]
    #[arg(
        short = 'd',
        long = "config-dir",
        env = "CONCIERGE_CONFIG_DIR",
        global = true,
        value_delimiter = ',',
        value_name = "DIR[,DIR]"
    )]
    pub config_dir: Vec<PathBuf>,
    /// Log level or tracing filter
    #[arg(short = 'L', long = "log-level", env = "CONCIERGE_LOG_LEVEL", global = true, default_value = "info")]
    pub log_level: String,
    /// Log format (logs go to stderr)
    #[arg(long = "log-format", env = "CONCIERGE_LOG_FORMAT", global = true, value_enum, default_value = "json")]
    pub log_format: LogFormat,
    /// Runtime threads: 1 runs checks, sockets and the transport on one thread (the least
    /// CPU per check); 0 = one per CPU; N = N threads
    #[arg(
        long = "worker-threads",
        env = "CONCIERGE_WORKER_THREADS",
        global = true,
        default_value_t = 1,
        value_name = "N"
    )]
    pub worker_threads: usize,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
#[allow(missing_docs)]
pub enum Command {
    /// Run the client: locally (no broker) or joined to a Sensu deployment (RABBITMQ_URL)
    Run {
        /// Run the local check definitions and print results, even if a broker is configured
        #[arg(long)]
        local: bool,
    },
    /// Run one check once, print its output and exit with its status (like a Nagios plugin)
    Check {
        /// A check name from the configuration, or a JSON file holding one check definition
        #[arg(value_name = "NAME|FILE")]
        target: String,
        /// Print the full Sensu result (`{"client":…,"check":{…}}`) instead of the output
        #[arg(long)]
        json: bool,
    },
    /// Run the built-in HTTP check once against URL (same output and status as in the fleet)
    Http(builtins::HttpArgs),
    /// Run the built-in DNS check once for NAME
    Dns(builtins::DnsArgs),
    /// Run the built-in TLS certificate check once against HOST[:PORT] (or --file)
    Tls(builtins::TlsArgs),
    /// Run the built-in TCP check once against HOST:PORT (connect, optional TLS, send,
    /// expect)
    Tcp(builtins::TcpArgs),
    /// Courier tools
    Courier {
        #[command(subcommand)]
        action: courier::CourierAction,
    },
    /// Ask the running client's /healthz; exit 0 if it can do work, 1 if not (for a
    /// Docker HEALTHCHECK in an image without curl)
    Health {
        /// URL of /healthz [default: from client.http_socket, else http://127.0.0.1:3031/healthz]
        #[arg(long)]
        url: Option<String>,
    },
    /// Scale a service within its bounds: SERVICE up|down [--by N], or SERVICE to N (exit 0
    /// scaled, 1 refused, 2 failed, 3 bad arguments)
    Scale(scale::ScaleCommand),
    /// Size the fleet's service from its own backlog and load (HPA arithmetic), on Swarm or
    /// ECS; a Sensu result per move
    Autoscale(autoscale::AutoscaleArgs),
    /// Print the effective configuration (redacted), or validate it
    Config {
        /// Only validate: print `configuration is valid` (exit 0) or the errors (exit 2)
        #[arg(long)]
        validate: bool,
    },
}

/// Where settings come from, as the global flags and the environment say.
#[derive(Debug, Clone)]
pub struct Context {
    config: Option<PathBuf>,
    config_dirs: Vec<PathBuf>,
    env: HashMap<String, String>,
}

impl Context {
    /// From the parsed command line and the process's environment.
    pub fn new(cli: &Cli) -> Self {
        Self { config: cli.config.clone(), config_dirs: cli.config_dir.clone(), env: std::env::vars().collect() }
    }

    /// The sources; `local_checks`: also read `./checks` when no `-d` is given.
    pub fn sources(&self, local_checks: bool) -> Sources {
        Sources {
            config_file: self.config.clone(),
            config_dirs: self.config_dirs.clone(),
            include_local_checks_dir: local_checks,
            local_checks_without_broker: false,
            env: self.env.clone(),
        }
    }
}

/// How a command reports settings it cannot use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Complaint {
    /// sensu-client's way: `error: …` lines, then `configuration is invalid`; exit 2.
    Sensu,
    /// A Nagios plugin's way: `UNKNOWN: …`; exit 3.
    Plugin,
}

impl Complaint {
    fn load(self, sources: &Sources) -> Result<Loaded, ExitCode> {
        Loaded::load(sources).map_err(|error| self.print(&[error.to_string()]))
    }

    fn print(self, problems: &[String]) -> ExitCode {
        match self {
            Self::Sensu => {
                for problem in problems {
                    eprintln!("error: {problem}");
                }
                eprintln!("configuration is invalid");
                ExitCode::from(exit::CONFIG)
            }
            Self::Plugin => {
                eprintln!("UNKNOWN: {}", problems.first().map_or("", String::as_str));
                ExitCode::from(exit::UNKNOWN)
            }
        }
    }
}

/// Load and validate the settings (the client).
pub fn validated(sources: &Sources, complaint: Complaint) -> Result<Settings, ExitCode> {
    complaint.load(sources)?.validate().map_err(|failures| {
        let lines: Vec<String> = failures.iter().map(|f| format!("{}: {}", f.key, f.message)).collect();
        complaint.print(&lines)
    })
}

/// Load the settings to run one check once: Sensu's validation of the rest is not needed.
pub fn for_one_check(sources: &Sources, complaint: Complaint) -> Result<Settings, ExitCode> {
    complaint.load(sources)?.build().map_err(|failure: Failure| complaint.print(&[failure.message]))
}

/// The exit code for a command line clap cannot parse: 0 for help and version, 3 for
/// `concierge scale` (its documented code for bad arguments), else clap's (2).
pub fn usage_exit_code(error: &clap::Error, args: &[String]) -> u8 {
    let code = u8::try_from(error.exit_code()).unwrap_or(exit::CONFIG);
    // The subcommand is the first word that is neither a flag nor a global flag's value.
    let mut words = args.iter().skip(1);
    let mut subcommand = None;
    while let Some(word) = words.next() {
        if ["-c", "--config", "-d", "--config-dir", "-L", "--log-level", "--log-format", "--worker-threads"]
            .contains(&word.as_str())
        {
            words.next();
        } else if !word.starts_with('-') {
            subcommand = Some(word.as_str());
            break;
        }
    }
    if code != 0 && subcommand == Some("scale") { exit::UNKNOWN } else { code }
}

/// The async runtime. One thread by default: a check runner waits on sockets and children
/// almost all the time, and one thread saves the cross-thread wake-ups that cost more CPU per
/// check than the checks themselves (README, "Benchmarks"). Scale with replicas, or with
/// `--worker-threads` for CPU-heavy work such as large courier shots.
pub fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = match threads {
        1 => tokio::runtime::Builder::new_current_thread(),
        0 => tokio::runtime::Builder::new_multi_thread(),
        n => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(n);
            builder
        }
    };
    builder.enable_all().build()
}

/// Run the command.
pub async fn dispatch(cli: Cli) -> ExitCode {
    let context = Context::new(&cli);
    crate::config::env::warn_unknown(&context.env);
    match cli.command {
        Command::Run { local } => run::run(&context, local).await,
        Command::Check { ref target, json } => check::check(&context, target, json).await,
        Command::Http(ref args) => builtins::run(&context, args).await,
        Command::Dns(ref args) => builtins::run(&context, args).await,
        Command::Tls(ref args) => builtins::run(&context, args).await,
        Command::Tcp(ref args) => builtins::run(&context, args).await,
        Command::Courier { action: courier::CourierAction::Discover(ref args) } => courier::discover(args).await,
        Command::Health { ref url } => health::health(&context, url.clone()).await,
        Command::Config { validate } => config::show(&context, validate),
        Command::Scale(ref args) => scale::run(&context, args).await,
        Command::Autoscale(ref args) => autoscale::run(&context, args).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn scale_usage_errors_exit_3() {
        let code = |args: &[&str]| {
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            let error = Cli::try_parse_from(&args).unwrap_err();
            usage_exit_code(&error, &args)
        };
        assert_eq!(code(&["concierge", "scale", "api"]), exit::UNKNOWN);
        assert_eq!(code(&["concierge", "-L", "debug", "scale", "api", "up", "--by", "x"]), exit::UNKNOWN);
        assert_eq!(code(&["concierge", "check", "scale", "--nope"]), 2);
        assert_eq!(code(&["concierge", "scale", "--help"]), 0);
    }

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
        // Subcommands are only built (and their flags checked against the global ones)
        // when used: build each one.
        for sub in Cli::command().get_subcommands() {
            let err = Cli::try_parse_from(["concierge", sub.get_name(), "--help"]).unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp, "{}", sub.get_name());
        }
    }
}
