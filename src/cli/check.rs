//! `concierge check NAME|FILE`: run one check once, print its output (or the whole Sensu
//! result) and exit with its status, like a Nagios plugin. The built-ins' front ends
//! (`concierge http|dns|tls`) end here too.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::atomic::{AtomicI64, Ordering};

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{Complaint, Context, exit};
use crate::checks::executor::Processed;
use crate::client::pipeline;
use crate::config::{self, Settings};
use crate::proto::{self, Object, ResultPayload};
use crate::transport::sink::Sink;

/// `concierge check`.
pub async fn check(context: &Context, target: &str, json: bool) -> ExitCode {
    // Loaded first, built (the `concierge` scope) once the definition is known to be usable.
    let loaded = match Complaint::Plugin.load(&context.sources(true)) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let checks = loaded.checks();
    let definition = if Path::new(target).is_file() {
        match definition_from_file(Path::new(target)) {
            Ok(def) => def,
            Err(problem) => {
                eprintln!("UNKNOWN: {target}: {problem}");
                return ExitCode::from(exit::UNKNOWN);
            }
        }
    } else {
        match checks.iter().find(|c| c.get("name").and_then(Value::as_str) == Some(target)) {
            Some(def) => def.clone(),
            None => {
                let known: Vec<&str> = checks.iter().filter_map(|c| c.get("name")?.as_str()).collect();
                eprintln!(
                    "UNKNOWN: no check named {target:?} (and no such file); defined checks: {}",
                    if known.is_empty() { "none".to_string() } else { known.join(", ") }
                );
                return ExitCode::from(exit::UNKNOWN);
            }
        }
    };
    let name = definition.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
    // Validate the definition as Sensu would (subscribers/interval are not needed to run once).
    let mut as_standalone = definition.clone();
    as_standalone.insert("standalone".into(), true.into());
    as_standalone.insert("publish".into(), false.into());
    let failures = proto::validate::check_definition_failures(&as_standalone, crate::schedule::SYNTAX);
    if let Some(problem) = failures.first() {
        eprintln!("UNKNOWN: check {name:?}: {problem}");
        return ExitCode::from(exit::UNKNOWN);
    }
    let settings = match loaded.build() {
        Ok(settings) => settings,
        Err(failure) => return Complaint::Plugin.print(&[failure.message]),
    };
    run_once(context, settings, definition, json).await
}

/// Run one check definition once, as a local definition; print its output (or the full
/// result) and exit with its status.
pub async fn run_once(context: &Context, mut settings: Settings, definition: Object, json: bool) -> ExitCode {
    // A local definition, so safe mode and the local merge treat it as one.
    settings.define_check(definition.clone());
    let telemetry = std::sync::Arc::new(crate::telemetry::Telemetry::new());
    let executor = crate::checks::Executor::new(crate::client::executor_settings(&settings, &context.env, &telemetry));
    let mut request = definition;
    request.insert("issued".into(), proto::now_epoch().into());
    let Processed::Result(finished) = executor.process_until(request, &CancellationToken::new()).await else {
        eprintln!("UNKNOWN: the check was not run");
        return ExitCode::from(exit::UNKNOWN);
    };
    // Prints each published result (the output, or the whole result with --json); the exit
    // status is the last one's: the check's, or a courier's delivery report.
    let sink = PrintSink { json, last_status: AtomicI64::new(3) };
    pipeline::publish(&sink, finished).await;
    let status = sink.last_status.load(Ordering::Relaxed);
    ExitCode::from(u8::try_from(status.clamp(0, 255)).unwrap_or(exit::UNKNOWN))
}

/// Results go to stdout: the output, or the whole result with `--json`.
struct PrintSink {
    json: bool,
    last_status: AtomicI64,
}

impl Sink for PrintSink {
    fn publish(&self, payload: ResultPayload) -> Pin<Box<dyn Future<Output = bool> + Send + '_>> {
        Box::pin(async move {
            use std::io::Write as _;
            let status = payload.status().unwrap_or(3);
            self.last_status.store(status, Ordering::Relaxed);
            let mut out = std::io::stdout().lock();
            let written = if self.json {
                writeln!(out, "{}", String::from_utf8_lossy(&payload.to_bytes()))
            } else {
                let output = payload.output().unwrap_or_default();
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
