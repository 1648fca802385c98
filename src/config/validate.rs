//! Settings validation: sensu-settings' `Validator#run(settings, "client")`, with its
//! messages, plus each failure's key so the operator knows where to look.

use serde::Serialize;
use serde_json::Value;

use super::Loaded;
use crate::proto::validate::check_definition_failures;
use crate::proto::{Object, is_valid_name};

/// One validation failure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    /// Where: `client`, `checks.cpu`, `sensu`, …
    pub key: String,
    /// Sensu's message.
    pub message: String,
    /// The offending object, as Sensu reports it.
    pub object: Value,
}

/// Scopes that must be hashes (sensu-settings `CATEGORIES`).
const CATEGORIES: &[(&str, &str)] = &[
    ("checks", "check"),
    ("filters", "filter"),
    ("mutators", "mutator"),
    ("handlers", "handler"),
    ("extensions", "extension"),
];

/// Validate the settings for running a client. Empty means valid.
pub fn validate(settings: &Loaded) -> Vec<Failure> {
    let mut failures = Vec::new();
    let raw = &settings.raw;
    let mut fail = |key: &str, object: &Value, message: &str| {
        failures.push(Failure { key: key.to_string(), message: message.to_string(), object: object.clone() })
    };
    let null = Value::Null;

    let sensu = raw.get("sensu").unwrap_or(&null);
    match sensu.as_object() {
        Some(s) => match s.get("spawn").and_then(Value::as_object) {
            Some(spawn) => match spawn.get("limit") {
                Some(l) if l.is_i64() || l.is_u64() => {
                    if l.as_i64().is_some_and(|n| n <= 0) {
                        fail("sensu", sensu, "sensu spawn limit must be greater than 0");
                    }
                }
                _ => fail("sensu", sensu, "sensu spawn limit must be an integer"),
            },
            None => fail("sensu", sensu, "sensu spawn must be a hash"),
        },
        None => fail("sensu", sensu, "sensu must be a hash"),
    }

    let transport = raw.get("transport").unwrap_or(&null);
    match transport.as_object() {
        Some(t) => {
            match t.get("name") {
                Some(Value::String(name)) if name == "rabbitmq" => {}
                Some(Value::String(_)) => fail(
                    "transport",
                    transport,
                    "transport name must be rabbitmq (the only transport Concierge speaks)",
                ),
                _ => fail("transport", transport, "transport name must be a string"),
            }
            if t.get("reconnect_on_error").is_some_and(|v| !v.is_boolean() && !v.is_null()) {
                fail("transport", transport, "transport reconnect_on_error must be a boolean");
            }
        }
        None => fail("transport", transport, "transport must be a hash"),
    }

    for (category, singular) in CATEGORIES {
        let value = raw.get(*category).unwrap_or(&null);
        let Some(items) = value.as_object() else {
            fail(category, value, &format!("{category} must be a hash"));
            continue;
        };
        for (name, def) in items {
            let key = format!("{category}.{name}");
            let Some(def) = def.as_object() else {
                fail(&key, def, &format!("{singular} must be a hash"));
                continue;
            };
            if *category == "checks" {
                let mut with_name = def.clone();
                with_name.insert("name".into(), Value::String(name.clone()));
                let object = Value::Object(with_name.clone());
                for message in check_definition_failures(&with_name, crate::schedule::SYNTAX) {
                    fail(&key, &object, message);
                }
            }
        }
    }

    let client = raw.get("client").unwrap_or(&null);
    match client.as_object() {
        Some(c) => {
            for message in client_failures(c) {
                fail("client", client, message);
            }
        }
        None => fail("client", client, "client must be a hash"),
    }

    if let Err(failure) = super::concierge_scope(raw).and_then(|concierge| super::broker_list(raw, &concierge)) {
        failures.push(failure);
    }
    failures
}

fn is_bool_if_set(v: Option<&Value>) -> bool {
    v.is_none_or(|v| v.is_null() || v.is_boolean())
}
fn is_str_if_set(v: Option<&Value>) -> bool {
    v.is_none_or(|v| v.is_null() || v.is_string())
}
fn is_int_if_set(v: Option<&Value>) -> bool {
    v.is_none_or(|v| v.is_null() || v.is_i64() || v.is_u64())
}
fn is_hash_if_set(v: Option<&Value>) -> bool {
    v.is_none_or(|v| v.is_null() || v.is_object())
}
fn strings(items: &[Value]) -> bool {
    items.iter().all(|i| i.as_str().is_some_and(|s| !s.is_empty()))
}

fn handler_rules(scope: &Object, out: &mut Vec<&'static str>, messages: [&'static str; 3]) {
    if !is_str_if_set(scope.get("handler")) {
        out.push(messages[0]);
    }
    match scope.get("handlers") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            if !strings(items) {
                out.push(messages[2]);
            }
        }
        Some(_) => out.push(messages[1]),
    }
}

/// sensu-settings `validate_client`.
fn client_failures(c: &Object) -> Vec<&'static str> {
    let mut out = Vec::new();
    match c.get("name") {
        Some(Value::String(name)) => {
            if !is_valid_name(name) {
                out.push("client name cannot contain spaces or special characters");
            }
        }
        _ => {
            out.push("client name must be a string");
            out.push("client name cannot contain spaces or special characters");
        }
    }
    if !c.get("address").is_some_and(Value::is_string) {
        out.push("client address must be a string");
    }
    if !is_bool_if_set(c.get("safe_mode")) {
        out.push("client safe_mode must be boolean");
    }
    match c.get("subscriptions") {
        Some(Value::Array(items)) => {
            if !strings(items) {
                out.push("client subscriptions must each be a non empty string");
            }
        }
        _ => out.push("client subscriptions must be an array"),
    }
    if !is_hash_if_set(c.get("socket")) {
        out.push("client socket must be a hash");
    }
    if let Some(Value::Object(s)) = c.get("socket") {
        if !is_bool_if_set(s.get("enabled")) {
            out.push("client socket enabled must be a boolean");
        }
        if !is_str_if_set(s.get("bind")) {
            out.push("client socket bind must be a string");
        }
        if !is_int_if_set(s.get("port")) {
            out.push("client socket port must be an integer");
        }
    }
    if !is_hash_if_set(c.get("http_socket")) {
        out.push("client http_socket must be a hash");
    }
    if let Some(Value::Object(s)) = c.get("http_socket") {
        if !is_bool_if_set(s.get("enabled")) {
            out.push("client http_socket enabled must be boolean");
        }
        if !is_str_if_set(s.get("bind")) {
            out.push("client http_socket bind must be a string");
        }
        if !is_int_if_set(s.get("port")) {
            out.push("client http_socket port must be an integer");
        }
        let set = |k: &str| s.get(k).is_some_and(|v| !v.is_null());
        if set("user") || set("password") {
            if !s.get("user").is_some_and(Value::is_string) {
                out.push("client http_socket user must be a string");
            }
            if !s.get("password").is_some_and(Value::is_string) {
                out.push("client http_socket password must be a string");
            }
        }
        if !is_bool_if_set(s.get("protect_all_endpoints")) {
            out.push("client http_socket protect_all_endpoints must be boolean");
        }
    }
    if !is_bool_if_set(c.get("keepalives")) {
        out.push("client keepalives must be boolean");
    }
    if !is_hash_if_set(c.get("keepalive")) {
        out.push("client keepalive must be a hash");
    }
    if let Some(Value::Object(k)) = c.get("keepalive") {
        handler_rules(
            k,
            &mut out,
            [
                "client keepalive handler must be a string",
                "client keepalive handlers must be an array",
                "client keepalive handlers must each be a string",
            ],
        );
        if !is_hash_if_set(k.get("thresholds")) {
            out.push("client keepalive thresholds must be a hash");
        }
        if let Some(Value::Object(t)) = k.get("thresholds") {
            if !is_int_if_set(t.get("warning")) {
                out.push("client keepalive warning threshold must be an integer");
            }
            if !is_int_if_set(t.get("critical")) {
                out.push("client keepalive critical threshold must be an integer");
            }
        }
    }
    match c.get("redact") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            if !strings(items) {
                out.push("client redact keys must each be a string");
            }
        }
        Some(_) => out.push("client redact must be an array"),
    }
    if !is_str_if_set(c.get("signature")) {
        out.push("client signature must be a string");
    }
    for (scope, messages) in [
        (
            "registration",
            [
                "client registration must be a hash",
                "client registration handler must be a string",
                "client registration handlers must be an array",
                "client registration handlers must each be a string",
                "client registration status must be an integer",
            ],
        ),
        (
            "deregistration",
            [
                "client deregistration must be a hash",
                "client deregistration handler must be a string",
                "client deregistration handlers must be an array",
                "client deregistration handlers must each be a string",
                "client deregistration status must be an integer",
            ],
        ),
    ] {
        if !is_hash_if_set(c.get(scope)) {
            out.push(messages[0]);
        }
        if let Some(Value::Object(r)) = c.get(scope) {
            handler_rules(r, &mut out, [messages[1], messages[2], messages[3]]);
            if !is_int_if_set(r.get("status")) {
                out.push(messages[4]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(doc: Value) -> Loaded {
        let mut base = json!({
            "client": {"name": "i-424242", "address": "127.0.0.1", "subscriptions": ["client:i-424242"]},
            "sensu": {"spawn": {"limit": 12}},
            "transport": {"name": "rabbitmq"},
            "checks": {}, "filters": {}, "mutators": {}, "handlers": {}, "extensions": {}
        })
        .as_object()
        .cloned()
        .unwrap();
        crate::proto::deep_merge_into(&mut base, doc.as_object().unwrap());
        Loaded { raw: base, loaded_files: vec![], has_broker: false }
    }

    #[test]
    fn valid_settings_have_no_failures() {
        let s = settings(json!({"checks": {"cpu": {"command": "true", "interval": 10, "standalone": true}}}));
        assert_eq!(validate(&s), vec![]);
    }

    #[test]
    fn failures_name_the_key() {
        let s = settings(json!({
            "checks": {"cpu": {"command": "true", "interval": "10", "standalone": true}, "bad": 3},
            "client": {"name": "has space", "deregistration": {"status": "1"}},
            "sensu": {"spawn": {"limit": 0}},
            "concierge": {"no_such_setting": 1}
        }));
        let found: Vec<(String, String)> = validate(&s).into_iter().map(|f| (f.key, f.message)).collect();
        let expect = |k: &str, m: &str| (k.to_string(), m.to_string());
        assert!(found.contains(&expect("checks.cpu", "check interval must be an integer greater than 0")), "{found:?}");
        assert!(found.contains(&expect("checks.bad", "check must be a hash")));
        assert!(found.contains(&expect("client", "client name cannot contain spaces or special characters")));
        assert!(found.contains(&expect("client", "client deregistration status must be an integer")));
        assert!(found.contains(&expect("sensu", "sensu spawn limit must be greater than 0")));
        assert!(found.iter().any(|(k, m)| k == "concierge" && m.contains("unknown field `no_such_setting`")));
    }
}
