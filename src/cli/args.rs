//! Flags shared by the built-in checks' front ends (`concierge http|dns|tls`, `courier
//! discover`), and the helpers that turn flags into check parameters.

use clap::Args;
use serde_json::Value;

use crate::proto::Object;

/// Flags every built-in accepts.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Check name used in the result and metric scheme [default: the kind]
    #[arg(long = "name", id = "check_name")]
    pub check_name: Option<String>,
    /// Print the full Sensu result (`{"client":…,"check":{…}}`) instead of the output
    #[arg(long)]
    pub json: bool,
    /// Output Graphite metric lines (`"type": "metric"`)
    #[arg(long)]
    pub metric: bool,
    /// Any other parameter, as KEY=VALUE (VALUE is JSON, or a plain string)
    #[arg(short = 'P', long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Seconds for the whole probe
    #[arg(short = 't', long)]
    pub timeout: Option<f64>,
}

/// Credentials of the built-ins that make HTTP requests (`http`, `courier discover`).
#[derive(Debug, Clone, Args)]
pub struct Auth {
    /// Basic auth user
    #[arg(long)]
    pub user: Option<String>,
    /// Basic auth password
    #[arg(long)]
    pub password: Option<String>,
    /// Bearer token
    #[arg(long)]
    pub bearer: Option<String>,
}

impl Auth {
    /// Set `user`, `password` and `bearer_token` in the check parameters.
    pub fn apply(&self, params: &mut Object) {
        set(params, "user", self.user.clone().map(Value::from));
        set(params, "password", self.password.clone().map(Value::from));
        set(params, "bearer_token", self.bearer.clone().map(Value::from));
    }
}

/// Set `key` when the flag was given.
pub fn set(params: &mut Object, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        params.insert(key.to_string(), v);
    }
}

fn split_header(h: &str) -> Result<(String, String), String> {
    h.split_once(':')
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .ok_or_else(|| format!("{h:?} is not \"Name: value\""))
}

/// `"Name: value"` flags as a `{"Name": "value"}` parameter (nothing when there are none).
pub fn set_headers(params: &mut Object, key: &str, flags: &[String]) -> Result<(), String> {
    if flags.is_empty() {
        return Ok(());
    }
    let mut headers = Object::new();
    for flag in flags {
        let (name, value) = split_header(flag)?;
        headers.insert(name, value.into());
    }
    params.insert(key.into(), Value::Object(headers));
    Ok(())
}

/// The check definition for built-in `kind` with these parameters and common flags.
pub fn finish(kind: &str, mut params: Object, common: &Common) -> Result<Object, String> {
    set(&mut params, "timeout", common.timeout.map(Value::from));
    for p in &common.params {
        let (key, raw) = p.split_once('=').ok_or_else(|| format!("--param {p:?} is not KEY=VALUE"))?;
        let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
        params.insert(key.trim().to_string(), value);
    }
    let mut check = Object::new();
    check.insert("name".into(), common.check_name.clone().unwrap_or_else(|| kind.to_string()).into());
    check.insert("extension".into(), kind.into());
    check.insert(kind.into(), Value::Object(params));
    if common.metric {
        check.insert("type".into(), "metric".into());
    }
    Ok(check)
}
