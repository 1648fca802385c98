//! `concierge`: the command line. It only wires things: CLI → settings → run.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use concierge::checks::executor::Processed;
use concierge::client::fleet::Fleet;
use concierge::client::signals::Signals;
use concierge::config::{self, Settings, Sources};
use concierge::logging::{self, LogFormat};
use concierge::proto::{self, Object};
use concierge::telemetry::Telemetry;
use concierge::{api, client, schedule};

/// Exit code for invalid configuration (as sensu-client).
const EXIT_CONFIG: u8 = 2;
/// Exit code of `concierge check` when the check cannot be run at all (Nagios UNKNOWN).
const EXIT_UNKNOWN: u8 = 3;

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
struct Cli {
    /// Sensu config file [default: /etc/sensu/config.json if present]
    #[arg(short = 'c', long = "config", env = "CONCIERGE_CONFIG_FILE", global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Sensu config directories, comma-separated [default: /etc/sensu/conf.d if present, and ./checks for `run --local` and `check`]
    #[arg(
        short = 'd',
        long = "config-dir",
        env = "CONCIERGE_CONFIG_DIR",
        global = true,
        value_delimiter = ',',
        value_name = "DIR[,DIR]"
    )]
    config_dir: Vec<PathBuf>,
    /// Log level or tracing filter
    #[arg(short = 'L', long = "log-level", env = "CONCIERGE_LOG_LEVEL", global = true, default_value = "info")]
    log_level: String,
    /// Log format (logs go to stderr)
    #[arg(long = "log-format", env = "CONCIERGE_LOG_FORMAT", global = true, value_enum, default_value = "json")]
    log_format: LogFormat,
    /// Runtime threads: 1 runs checks, sockets and the transport on one thread (the least
    /// CPU per check); 0 = one per CPU; N = N threads
    #[arg(
        long = "worker-threads",
        env = "CONCIERGE_WORKER_THREADS",
        global = true,
        default_value_t = 1,
        value_name = "N"
    )]
    worker_threads: usize,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
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
    Http(concierge::checks::cli::HttpArgs),
    /// Run the built-in DNS check once for NAME
    Dns(concierge::checks::cli::DnsArgs),
    /// Run the built-in TLS certificate check once against HOST[:PORT] (or --file)
    Tls(concierge::checks::cli::TlsArgs),
    /// Courier tools
    Courier {
        #[command(subcommand)]
        action: CourierAction,
    },
    /// Ask the running client's /healthz; exit 0 if it can do work, 1 if not (for a
    /// Docker HEALTHCHECK in an image without curl)
    Health {
        /// URL of /healthz [default: from client.http_socket, else http://127.0.0.1:3031/healthz]
        #[arg(long)]
        url: Option<String>,
    },
    /// Print the effective configuration (redacted), or validate it
    Config {
        /// Only validate: print `configuration is valid` (exit 0) or the errors (exit 2)
        #[arg(long)]
        validate: bool,
    },
}

#[derive(Subcommand, Debug)]
enum CourierAction {
    /// List the metric families an endpoint exposes (name, type, label keys, samples), to
    /// write include/exclude rules
    Discover(concierge::checks::cli::DiscoverArgs),
}

/// The async runtime. One thread by default: a check runner waits on sockets and children
/// almost all the time, and one thread saves the cross-thread wake-ups that cost more CPU per
/// check than the checks themselves (README, "Benchmarks"). Scale with replicas, or with
/// `--worker-threads` for CPU-heavy work such as large courier shots.
fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(&cli.log_level, cli.log_format);
    let env: HashMap<String, String> = std::env::vars().collect();
    let runtime = match runtime(cli.worker_threads) {
        Ok(rt) => rt,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Run { local } => run(&cli.config, &cli.config_dir, local, env).await,
            Command::Check { ref target, json } => check(&cli.config, &cli.config_dir, target, json, env).await,
            Command::Config { validate } => show_config(&cli.config, &cli.config_dir, validate, env),
            Command::Health { ref url } => health(&cli.config, &cli.config_dir, url.clone(), env).await,
            Command::Courier { action: CourierAction::Discover(ref args) } => discover(args).await,
            Command::Http(ref args) => {
                let json = args.common.json;
                builtin(&cli.config, &cli.config_dir, args.to_check(), json, env).await
            }
            Command::Dns(ref args) => {
                let json = args.common.json;
                builtin(&cli.config, &cli.config_dir, args.to_check(), json, env).await
            }
            Command::Tls(ref args) => {
                let json = args.common.json;
                builtin(&cli.config, &cli.config_dir, args.to_check(), json, env).await
            }
        }
    })
}

fn sources(config: &Option<PathBuf>, dirs: &[PathBuf], local: bool, env: &HashMap<String, String>) -> Sources {
    Sources {
        config_file: config.clone(),
        config_dirs: dirs.to_vec(),
        include_local_checks_dir: local,
        env: env.clone(),
    }
}

/// Load and validate settings, reporting problems the way sensu-client does.
fn load_valid(sources: &Sources) -> Result<Settings, ExitCode> {
    let settings = match Settings::load(sources) {
        Ok(s) => s,
        Err(error) => {
            eprintln!("error: {error}");
            eprintln!("configuration is invalid");
            return Err(ExitCode::from(EXIT_CONFIG));
        }
    };
    let failures = config::validate::validate(&settings);
    if failures.is_empty() {
        return Ok(settings);
    }
    for failure in &failures {
        eprintln!("error: {}: {}", failure.key, failure.message);
    }
    eprintln!("configuration is invalid");
    Err(ExitCode::from(EXIT_CONFIG))
}

async fn run(config: &Option<PathBuf>, dirs: &[PathBuf], local: bool, env: HashMap<String, String>) -> ExitCode {
    let mut sources = sources(config, dirs, local, &env);
    let mut settings = match load_valid(&sources) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let has_broker = settings.raw.contains_key("rabbitmq");
    if !local && !has_broker {
        tracing::info!("no broker configured (RABBITMQ_URL or a rabbitmq setting): running checks locally");
    }
    let local = local || !has_broker;
    if local && !sources.include_local_checks_dir {
        // Local mode also reads ./checks when no directory is given.
        sources.include_local_checks_dir = true;
        settings = match load_valid(&sources) {
            Ok(s) => s,
            Err(code) => return code,
        };
    }
    let signals = match Signals::install() {
        Ok(s) => s,
        Err(error) => {
            eprintln!("error: cannot install signal handlers: {error}");
            return ExitCode::FAILURE;
        }
    };
    let telemetry = Arc::new(Telemetry::new());
    let api_shutdown = CancellationToken::new();
    if local {
        let executor = match client::executor_settings(&settings, &env, &telemetry) {
            Ok(e) => Arc::new(concierge::checks::Executor::new(e)),
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::from(EXIT_CONFIG);
            }
        };
        tokio::spawn({
            let reload = signals.reload.clone();
            async move {
                loop {
                    reload.notified().await;
                    tracing::warn!("configuration reload is not supported in local mode; restart instead");
                }
            }
        });
        let state_sink: Arc<dyn concierge::transport::sink::Sink> = Arc::new(concierge::transport::sink::StdoutSink);
        let state = api::ApiState {
            executor: executor.clone(),
            sink: state_sink.clone(),
            settings: settings.raw.clone(),
            telemetry: telemetry.clone(),
            transport: None,
            http: api::HttpSocketSettings::from_client(&executor.client()),
        };
        if let Err(error) = api::start(Arc::new(state), api_shutdown.clone()).await {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
        let pipeline = client::pipeline::Pipeline::new(executor, state_sink, usize::MAX);
        client::local::run(&settings, pipeline, signals.stop.clone()).await;
        api_shutdown.cancel();
        return ExitCode::SUCCESS;
    }
    let concierge_settings = settings.concierge().unwrap_or_default();
    let fleet_raw = settings.raw.clone();
    let fleet = match Fleet::new(sources, env, settings, telemetry.clone()) {
        Ok(f) => f,
        Err(error) => {
            eprintln!("error: {error}");
            eprintln!("configuration is invalid");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let state = api::ApiState {
        executor: fleet.pipeline().executor().clone(),
        sink: fleet.pipeline().sink().clone(),
        settings: fleet_raw,
        telemetry: telemetry.clone(),
        transport: Some(fleet.transport().clone()),
        http: api::HttpSocketSettings::from_client(&fleet.pipeline().executor().client()),
    };
    if let Err(error) = api::start(Arc::new(state), api_shutdown.clone()).await {
        eprintln!("error: {error}");
        return ExitCode::FAILURE;
    }
    if concierge_settings.emf {
        let (telemetry, stop) = (telemetry.clone(), api_shutdown.clone());
        let client_name = fleet.client_name();
        let service = concierge_settings.service_name.clone();
        let period = Duration::from_secs_f64(concierge_settings.emf_interval.max(1.0));
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(period);
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = ticker.tick() => println!("{}", telemetry.emf(&service, &client_name)),
                }
            }
        });
    }
    fleet.run(signals).await;
    api_shutdown.cancel();
    ExitCode::SUCCESS
}

/// `concierge health`: ask the local HTTP socket's `/healthz`; exit 0 if healthy.
async fn health(
    config: &Option<PathBuf>,
    dirs: &[PathBuf],
    url: Option<String>,
    env: HashMap<String, String>,
) -> ExitCode {
    let url = match url {
        Some(url) => url,
        None => {
            let settings = Settings::load(&sources(config, dirs, false, &env)).ok();
            let client = settings.map(|s| s.client()).unwrap_or_default();
            let addr = api::listen_address(&client, "http_socket", api::DEFAULT_HTTP_PORT).ok().flatten();
            let addr = addr.map(|a| {
                if a.ip().is_unspecified() { std::net::SocketAddr::new([127, 0, 0, 1].into(), a.port()) } else { a }
            });
            format!("http://{}/healthz", addr.unwrap_or_else(|| ([127, 0, 0, 1], api::DEFAULT_HTTP_PORT).into()))
        }
    };
    let params = serde_json::json!({"url": url, "timeout": 5, "status": ["200"]});
    let params = match serde::Deserialize::deserialize(params) {
        Ok(p) => p,
        Err(e) => {
            let e: serde_json::Error = e;
            eprintln!("unhealthy: {e}");
            return ExitCode::FAILURE;
        }
    };
    match concierge::checks::http::fetch(params).await {
        Ok(fetched) if fetched.status == 200 => {
            println!("{}", String::from_utf8_lossy(&fetched.body));
            ExitCode::SUCCESS
        }
        Ok(fetched) => {
            println!("{}", String::from_utf8_lossy(&fetched.body));
            ExitCode::FAILURE
        }
        Err(failure) => {
            eprintln!("unhealthy: {}", failure.message);
            ExitCode::FAILURE
        }
    }
}

async fn check(
    config: &Option<PathBuf>,
    dirs: &[PathBuf],
    target: &str,
    json: bool,
    env: HashMap<String, String>,
) -> ExitCode {
    let settings = match Settings::load(&sources(config, dirs, true, &env)) {
        Ok(s) => s,
        Err(error) => {
            eprintln!("UNKNOWN: {error}");
            return ExitCode::from(EXIT_UNKNOWN);
        }
    };
    let definition = if Path::new(target).is_file() {
        match definition_from_file(Path::new(target)) {
            Ok(def) => def,
            Err(problem) => {
                eprintln!("UNKNOWN: {target}: {problem}");
                return ExitCode::from(EXIT_UNKNOWN);
            }
        }
    } else {
        match settings.checks().into_iter().find(|c| c.get("name").and_then(Value::as_str) == Some(target)) {
            Some(def) => def,
            None => {
                let known: Vec<String> =
                    settings.checks().iter().filter_map(|c| c.get("name")?.as_str().map(str::to_string)).collect();
                eprintln!(
                    "UNKNOWN: no check named {target:?} (and no such file); defined checks: {}",
                    if known.is_empty() { "none".to_string() } else { known.join(", ") }
                );
                return ExitCode::from(EXIT_UNKNOWN);
            }
        }
    };
    let name = definition.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
    // Validate the definition as Sensu would (subscribers/interval are not needed to run once).
    let mut as_standalone = definition.clone();
    as_standalone.insert("standalone".into(), true.into());
    as_standalone.insert("publish".into(), false.into());
    let failures = proto::validate::check_definition_failures(&as_standalone, schedule::SYNTAX);
    if let Some(problem) = failures.first() {
        eprintln!("UNKNOWN: check {name:?}: {problem}");
        return ExitCode::from(EXIT_UNKNOWN);
    }
    run_once(settings, definition, json, &env).await
}

/// `concierge courier discover`: scrape once and list the families.
async fn discover(args: &concierge::checks::cli::DiscoverArgs) -> ExitCode {
    use concierge::checks::courier::{CourierParams, scrape};
    let params =
        args.to_params().and_then(|v| serde::Deserialize::deserialize(v).map_err(|e: serde_json::Error| e.to_string()));
    let params: CourierParams = match params {
        Ok(p) => p,
        Err(problem) => {
            eprintln!("UNKNOWN: {problem}");
            return ExitCode::from(EXIT_UNKNOWN);
        }
    };
    match scrape(&params).await.and_then(|scraped| {
        let page = scraped.parse()?;
        Ok((page.families, page.samples.len(), scraped.format_label(), scraped.seconds))
    }) {
        Ok((families, samples, format, seconds)) => {
            let width = families.iter().map(|f| f.name.len()).max().unwrap_or(4).max(4);
            println!(
                "# {} families, {samples} samples, {format}, scraped in {seconds:.3} s from {}",
                families.len(),
                params.url
            );
            println!("{:<width$}  {:<9}  {:>7}  LABELS", "NAME", "TYPE", "SAMPLES");
            for f in &families {
                println!("{:<width$}  {:<9}  {:>7}  {}", f.name, f.kind.label(), f.samples, f.label_keys.join(","));
            }
            ExitCode::SUCCESS
        }
        Err(failure) => {
            eprintln!("CRITICAL: {} ({})", failure.message, failure.reason.as_str());
            ExitCode::from(2)
        }
    }
}

/// Run a built-in check from its CLI flags.
async fn builtin(
    config: &Option<PathBuf>,
    dirs: &[PathBuf],
    definition: Result<Object, String>,
    json: bool,
    env: HashMap<String, String>,
) -> ExitCode {
    let definition = match definition {
        Ok(d) => d,
        Err(problem) => {
            eprintln!("UNKNOWN: {problem}");
            return ExitCode::from(EXIT_UNKNOWN);
        }
    };
    let settings = match Settings::load(&sources(config, dirs, false, &env)) {
        Ok(s) => s,
        Err(error) => {
            eprintln!("UNKNOWN: {error}");
            return ExitCode::from(EXIT_UNKNOWN);
        }
    };
    run_once(settings, definition, json, &env).await
}

/// Run one check definition once, as a local definition; print its output (or the full
/// result) and exit with its status.
async fn run_once(mut settings: Settings, definition: Object, json: bool, env: &HashMap<String, String>) -> ExitCode {
    let name = definition.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
    // Make it a local definition, so safe mode and the local merge treat it as one.
    let mut body = definition.clone();
    body.remove("name");
    if let Some(Value::Object(checks)) = settings.raw.get_mut("checks") {
        checks.insert(name.clone(), Value::Object(body));
    }
    let executor = match client::build_executor(&settings, env) {
        Ok(e) => e,
        Err(error) => {
            eprintln!("UNKNOWN: {error}");
            return ExitCode::from(EXIT_UNKNOWN);
        }
    };
    let mut request = definition;
    request.insert("issued".into(), proto::now_epoch().into());
    let Processed::Result(finished) = executor.process_until(request, &CancellationToken::new()).await else {
        eprintln!("UNKNOWN: the check was not run");
        return ExitCode::from(EXIT_UNKNOWN);
    };
    // Prints each published result (the output, or the whole result with --json); the exit
    // status is the last one's: the check's, or a courier's delivery report.
    let sink = PrintSink { json, last_status: std::sync::atomic::AtomicI64::new(3) };
    client::pipeline::publish(&sink, finished).await;
    let status = sink.last_status.load(std::sync::atomic::Ordering::Relaxed);
    ExitCode::from(u8::try_from(status.clamp(0, 255)).unwrap_or(EXIT_UNKNOWN))
}

/// `concierge check` / `http` / … output: results go to stdout.
struct PrintSink {
    json: bool,
    last_status: std::sync::atomic::AtomicI64,
}

impl concierge::transport::sink::Sink for PrintSink {
    fn publish(
        &self,
        payload: concierge::proto::ResultPayload,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + '_>> {
        Box::pin(async move {
            use std::io::Write as _;
            let status = payload.check.get("status").and_then(Value::as_i64).unwrap_or(3);
            self.last_status.store(status, std::sync::atomic::Ordering::Relaxed);
            let mut out = std::io::stdout().lock();
            let written = if self.json {
                writeln!(out, "{}", String::from_utf8_lossy(&payload.to_bytes()))
            } else {
                let output = payload.check.get("output").and_then(Value::as_str).unwrap_or_default();
                out.write_all(output.as_bytes())
            };
            written.and_then(|()| out.flush()).is_ok()
        })
    }
}

/// Read one check definition from a file: a Sensu snippet `{"checks":{"name":{…}}}` with
/// exactly one check, or a bare definition (`name` defaults to the file's stem).
fn definition_from_file(path: &Path) -> Result<Object, String> {
    let doc = config::files::read(path).map_err(|e| e.to_string())?.ok_or("the file is empty")?;
    let Value::Object(doc) = doc else { return Err("expected a JSON object".into()) };
    if let Some(checks) = doc.get("checks") {
        let checks = checks.as_object().ok_or("`checks` must be a hash")?;
        let mut iter = checks.iter();
        return match (iter.next(), iter.next()) {
            (Some((name, def)), None) => {
                let mut def = def.as_object().ok_or("the check definition must be a hash")?.clone();
                def.insert("name".into(), Value::String(name.clone()));
                Ok(def)
            }
            (None, _) => Err("`checks` is empty".into()),
            _ => Err(format!(
                "holds {} checks ({}); name one of them instead",
                checks.len(),
                checks.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
        };
    }
    let mut def = doc;
    if !def.contains_key("name") {
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("check").to_string();
        def.insert("name".into(), Value::String(stem));
    }
    Ok(def)
}

fn show_config(config: &Option<PathBuf>, dirs: &[PathBuf], validate: bool, env: HashMap<String, String>) -> ExitCode {
    let settings = match Settings::load(&sources(config, dirs, false, &env)) {
        Ok(s) => s,
        Err(error) => {
            println!("configuration is invalid");
            println!("{}", serde_json::json!({"errors": [{"message": error.to_string()}]}));
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let failures = config::validate::validate(&settings);
    if validate {
        if failures.is_empty() {
            println!("configuration is valid");
            return ExitCode::SUCCESS;
        }
        println!("configuration is invalid");
        let doc = serde_json::json!({ "errors": failures });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return ExitCode::from(EXIT_CONFIG);
    }
    let mut redacted = proto::redact(&Value::Object(settings.raw.clone()), proto::DEFAULT_REDACT_KEYS);
    if let Some(rabbitmq) = settings.raw.get("rabbitmq") {
        redacted["rabbitmq"] = concierge::config::brokers::redacted(rabbitmq);
    }
    println!("{}", serde_json::to_string_pretty(&redacted).unwrap_or_default());
    for failure in &failures {
        eprintln!("error: {}: {}", failure.key, failure.message);
    }
    if failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(EXIT_CONFIG) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

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
