//! `concierge config [--validate]`: print the effective configuration (redacted), or
//! only validate it.

use std::process::ExitCode;

use serde_json::Value;

use super::{Context, exit};
use crate::config::Loaded;
use crate::proto;

/// Print or validate the configuration; exit 2 if it is invalid.
pub fn show(context: &Context, validate: bool) -> ExitCode {
    let loaded = match Loaded::load(&context.sources(false)) {
        Ok(loaded) => loaded,
        Err(error) => {
            println!("configuration is invalid");
            println!("{}", serde_json::json!({"errors": [{"message": error.to_string()}]}));
            return ExitCode::from(exit::CONFIG);
        }
    };
    let failures = loaded.failures();
    if validate {
        if failures.is_empty() {
            println!("configuration is valid");
            return ExitCode::from(exit::OK);
        }
        println!("configuration is invalid");
        let doc = serde_json::json!({ "errors": failures });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return ExitCode::from(exit::CONFIG);
    }
    let mut redacted = proto::redact(&Value::Object(loaded.raw.clone()), proto::DEFAULT_REDACT_KEYS);
    if let Some(rabbitmq) = loaded.raw.get("rabbitmq") {
        redacted["rabbitmq"] = crate::config::brokers::redacted(rabbitmq);
    }
    println!("{}", serde_json::to_string_pretty(&redacted).unwrap_or_default());
    for failure in &failures {
        eprintln!("error: {}: {}", failure.key, failure.message);
    }
    ExitCode::from(if failures.is_empty() { exit::OK } else { exit::CONFIG })
}
