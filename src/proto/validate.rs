//! Sensu's validation rules for checks, with Sensu's exact messages.
//!
//! Two entry points share the rules:
//! * [`validate_result`] is `Sensu::Client::Validators::Check#valid?`
//!   (`sensu/lib/sensu/client/validators/check.rb`): it checks a result that arrived on
//!   the local socket or HTTP API and stops at the first failure.
//! * [`check_definition_failures`] is sensu-settings' `validate_check`
//!   (`sensu-settings/lib/sensu/settings/validators/check.rb`): it checks a check
//!   definition in the settings and collects every failure.

use serde_json::Value;

use super::{Object, is_valid_name};

type Rule = Result<(), &'static str>;

fn is_int(v: Option<&Value>) -> bool {
    v.is_some_and(|v| v.is_i64() || v.is_u64())
}
fn is_str(v: Option<&Value>) -> bool {
    v.is_some_and(Value::is_string)
}
fn set(v: Option<&Value>) -> bool {
    v.is_some_and(|v| !v.is_null())
}
fn truthy(v: Option<&Value>) -> bool {
    v.is_some_and(|v| !v.is_null() && v != &Value::Bool(false))
}
fn bool_if_set(v: Option<&Value>) -> bool {
    !set(v) || v.is_some_and(Value::is_boolean)
}
fn str_if_set(v: Option<&Value>) -> bool {
    !set(v) || is_str(v)
}
fn int_if_set(v: Option<&Value>) -> bool {
    !set(v) || is_int(v)
}
fn items_are_strings(v: &[Value]) -> bool {
    v.iter().all(|i| i.as_str().is_some_and(|s| !s.is_empty()))
}
fn fail(ok: bool, msg: &'static str) -> Rule {
    if ok { Ok(()) } else { Err(msg) }
}

/// `\A[\w.:|-]+\z`, the aggregate name rule.
fn is_aggregate_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.:|-".contains(&b))
}

/// `\A[\w.-]*([:]{3}[\w|.-]+[:]{3}[\w.-]*|[\w.-]+)\z`: a source name, possibly holding
/// one client token (tokens in `source` are substituted before publishing).
fn is_source(s: &str) -> bool {
    static SOURCE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\A[A-Za-z0-9_.-]*(:{3}[A-Za-z0-9_|.-]+:{3}[A-Za-z0-9_.-]*|[A-Za-z0-9_.-]+)\z")
            .unwrap_or_else(|e| unreachable!("static regex: {e}"))
    });
    SOURCE.is_match(s)
}

fn name_rules(c: &Object, out: &mut Vec<&'static str>) {
    let name = c.get("name");
    if !is_str(name) {
        out.push("check name must be a string");
    }
    if !name.and_then(Value::as_str).is_some_and(is_valid_name) {
        out.push("check name cannot contain spaces or special characters");
    }
}

fn handling_rules(c: &Object, out: &mut Vec<&'static str>) {
    push(out, fail(str_if_set(c.get("handler")), "check handler must be a string"));
    let handlers = c.get("handlers");
    push(out, fail(!set(handlers) || handlers.is_some_and(Value::is_array), "check handlers must be an array"));
    if let Some(Value::Array(items)) = handlers {
        push(out, fail(items_are_strings(items), "check handlers must each be a string"));
    }
}

fn aggregate_rules(c: &Object, out: &mut Vec<&'static str>) {
    if truthy(c.get("aggregates")) {
        match c.get("aggregates") {
            Some(Value::Array(items)) => push(
                out,
                fail(
                    items.iter().all(|i| i.as_str().is_some_and(is_aggregate_name)),
                    "check aggregates items must be strings without spaces or special characters",
                ),
            ),
            _ => out.push("check aggregates must be an array"),
        }
    }
    if truthy(c.get("aggregate")) {
        match c.get("aggregate") {
            Some(Value::String(s)) => {
                push(out, fail(is_aggregate_name(s), "check aggregate cannot contain spaces or special characters"))
            }
            Some(v) => push(out, fail(v.is_boolean(), "check aggregate must be a string (name) or boolean")),
            None => {}
        }
    }
}

fn flap_rules(c: &Object, out: &mut Vec<&'static str>) {
    let (low, high) = (c.get("low_flap_threshold"), c.get("high_flap_threshold"));
    if set(low) || set(high) {
        push(out, fail(is_int(low), "check low flap threshold must be an integer"));
        push(out, fail(is_int(high), "check high flap threshold must be an integer"));
    }
}

fn truncate_rules(c: &Object, out: &mut Vec<&'static str>) {
    push(out, fail(bool_if_set(c.get("truncate_output")), "check truncate_output must be a boolean"));
    let len = c.get("truncate_output_length");
    if set(len) {
        push(
            out,
            fail(
                len.and_then(Value::as_i64).is_some_and(|n| n > 0) && is_int(len),
                "check truncate_output_length must be an integer greater than 0",
            ),
        );
    }
}

fn source_rules(c: &Object, out: &mut Vec<&'static str>) {
    if truthy(c.get("source")) {
        match c.get("source") {
            Some(Value::String(s)) => push(
                out,
                fail(is_source(s), "check source cannot contain spaces, special characters, or invalid tokens"),
            ),
            _ => out.push("check source must be a string"),
        }
    }
}

fn ttl_rules(c: &Object, out: &mut Vec<&'static str>) {
    if truthy(c.get("ttl")) {
        match c.get("ttl") {
            Some(v) if is_int(Some(v)) => {
                push(out, fail(v.as_i64().is_none_or(|n| n > 0), "check ttl must be greater than 0"))
            }
            _ => out.push("check ttl must be an integer"),
        }
        push(out, fail(int_if_set(c.get("ttl_status")), "check ttl_status must be an integer"));
    }
}

fn push(out: &mut Vec<&'static str>, rule: Rule) {
    if let Err(msg) = rule {
        out.push(msg);
    }
}

/// The schedule syntax that check validation needs: whether a cron expression and a
/// subdue time of day parse. Implemented by the schedule layer (`schedule::SYNTAX`), so
/// the model does not depend on it.
pub trait ScheduleSyntax {
    /// `cron` parses.
    fn cron_valid(&self, cron: &str) -> bool;
    /// A subdue `begin`/`end` time parses.
    fn time_valid(&self, time: &str) -> bool;
}

/// Validate a check result received from a local socket or the HTTP API. Returns the
/// first failure's message, exactly as sensu-client raises it.
pub fn validate_result(c: &Object) -> Result<(), &'static str> {
    let mut out = Vec::new();
    push(&mut out, fail(is_str(c.get("output")), "check output must be a string"));
    push(&mut out, fail(is_int(c.get("status")), "check status must be an integer"));
    push(&mut out, fail(is_int(c.get("executed")), "check executed timestamp must be an integer"));
    name_rules(c, &mut out);
    handling_rules(c, &mut out);
    aggregate_rules(c, &mut out);
    flap_rules(c, &mut out);
    truncate_rules(c, &mut out);
    source_rules(c, &mut out);
    ttl_rules(c, &mut out);
    match out.first() {
        Some(msg) => Err(msg),
        None => Ok(()),
    }
}

/// Hook keys sensu-settings accepts: a severity, a status "0"–"255", or `non-zero`.
pub fn is_hook_key(key: &str) -> bool {
    matches!(key, "ok" | "warning" | "critical" | "unknown" | "non-zero")
        || key.parse::<u16>().is_ok_and(|n| n <= 255 && n.to_string() == key)
}

/// Validate a check definition from the settings (`name` already inserted), collecting
/// every failure. `syntax` decides whether cron strings and subdue times parse (the
/// parsers belong to the schedule layer, above this one: `schedule::SYNTAX`).
pub fn check_definition_failures(c: &Object, syntax: &dyn ScheduleSyntax) -> Vec<&'static str> {
    let mut out = Vec::new();
    name_rules(c, &mut out);
    // Execution: command xor extension, numeric timeout, boolean stdin.
    push(&mut out, fail(str_if_set(c.get("command")), "check command must be a string"));
    push(&mut out, fail(str_if_set(c.get("extension")), "check extension must be a string"));
    push(
        &mut out,
        fail(set(c.get("command")) ^ set(c.get("extension")), "either check command or extension must be set"),
    );
    push(
        &mut out,
        fail(!set(c.get("timeout")) || c.get("timeout").is_some_and(Value::is_number), "check timeout must be numeric"),
    );
    push(&mut out, fail(bool_if_set(c.get("stdin")), "check stdin must be a boolean"));
    source_rules(c, &mut out);
    // Scheduling.
    push(&mut out, fail(bool_if_set(c.get("publish")), "check publish must be boolean"));
    if c.get("publish") != Some(&Value::Bool(false)) {
        if truthy(c.get("cron")) {
            match c.get("cron") {
                Some(Value::String(s)) => {
                    push(&mut out, fail(syntax.cron_valid(s), "check cron string must use the cron syntax"))
                }
                _ => out.push("check cron must be a string"),
            }
        } else {
            let interval = c.get("interval");
            push(
                &mut out,
                fail(
                    is_int(interval) && interval.and_then(Value::as_i64).is_some_and(|n| n > 0),
                    "check interval must be an integer greater than 0",
                ),
            );
        }
    }
    push(&mut out, fail(bool_if_set(c.get("standalone")), "check standalone must be boolean"));
    if !truthy(c.get("standalone")) {
        match c.get("subscribers") {
            Some(Value::Array(items)) => {
                push(&mut out, fail(items_are_strings(items), "check subscribers must each be a string"))
            }
            _ => out.push("check subscribers must be an array"),
        }
    }
    handling_rules(c, &mut out);
    ttl_rules(c, &mut out);
    aggregate_rules(c, &mut out);
    flap_rules(c, &mut out);
    truncate_rules(c, &mut out);
    if let Some(hooks) = c.get("hooks") {
        match hooks {
            Value::Object(map) => {
                for (key, hook) in map {
                    push(&mut out, fail(is_hook_key(key), "check hook key must be a severity, status, or 'non-zero'"));
                    match hook {
                        Value::Object(h) => {
                            push(&mut out, fail(is_str(h.get("command")), "check hook command must be a string"));
                            push(
                                &mut out,
                                fail(
                                    !set(h.get("timeout")) || h.get("timeout").is_some_and(Value::is_number),
                                    "check hook timeout must be numeric",
                                ),
                            );
                            push(&mut out, fail(bool_if_set(h.get("stdin")), "check hook stdin must be boolean"));
                        }
                        _ => out.push("check hook must be a hash"),
                    }
                }
            }
            _ => out.push("check hooks must be a hash"),
        }
    }
    if truthy(c.get("subdue")) {
        subdue_rules(c.get("subdue"), syntax, &mut out);
    }
    out
}

fn subdue_rules(subdue: Option<&Value>, syntax: &dyn ScheduleSyntax, out: &mut Vec<&'static str>) {
    const DAYS: &[&str] = &["all", "sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"];
    let Some(Value::Object(subdue)) = subdue else {
        out.push("check subdue must be a hash");
        return;
    };
    let Some(Value::Object(days)) = subdue.get("days") else {
        out.push("check subdue days must be a hash");
        return;
    };
    if days.is_empty() {
        out.push("check subdue days must include at least one day of the week or 'all'");
        return;
    }
    if !days.keys().all(|d| DAYS.contains(&d.as_str())) {
        out.push("check subdue days must be valid days of the week or 'all'");
        return;
    }
    for windows in days.values() {
        let Value::Array(windows) = windows else {
            out.push("check subdue day time windows must be in an array");
            continue;
        };
        for window in windows {
            let valid = window.as_object().is_some_and(|w| {
                let parses = |k: &str| w.get(k).and_then(Value::as_str).is_some_and(|t| syntax.time_valid(t));
                parses("begin") && parses("end")
            });
            if !window.is_object() {
                out.push("check subdue must be a hash");
            } else if !valid {
                out.push("check subdue begin and end times must be valid");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn result(extra: Value) -> Object {
        let mut base =
            json!({"name": "foo", "output": "bar", "status": 0, "executed": 1}).as_object().cloned().unwrap();
        for (k, v) in extra.as_object().cloned().unwrap() {
            base.insert(k, v);
        }
        base
    }

    // Spec §7 item 31: every validator failure with its exact message.
    #[test]
    fn socket_result_failures_have_sensu_messages() {
        let cases = [
            (json!({"name": ""}), "check name cannot contain spaces or special characters"),
            (json!({"name": "foo bar"}), "check name cannot contain spaces or special characters"),
            (json!({"name": "foo\nbar"}), "check name cannot contain spaces or special characters"),
            (json!({"source": "foo bar"}), "check source cannot contain spaces, special characters, or invalid tokens"),
            (
                json!({"source": "foo\nbar"}),
                "check source cannot contain spaces, special characters, or invalid tokens",
            ),
            (json!({"output": 1234}), "check output must be a string"),
            (json!({"status": "2"}), "check status must be an integer"),
            (json!({"executed": "1234"}), "check executed timestamp must be an integer"),
            (json!({"ttl": "30"}), "check ttl must be an integer"),
            (json!({"ttl": -10}), "check ttl must be greater than 0"),
            (json!({"low_flap_threshold": "25"}), "check low flap threshold must be an integer"),
        ];
        for (extra, message) in cases {
            assert_eq!(validate_result(&result(extra.clone())), Err(message), "{extra}");
        }
    }

    #[test]
    fn valid_results_pass_including_token_sources() {
        assert_eq!(validate_result(&result(json!({}))), Ok(()));
        assert_eq!(
            validate_result(&result(json!({"source": ":::name:::-proxy", "ttl": 30, "handlers": ["a"]}))),
            Ok(())
        );
        let mut missing_output = result(json!({}));
        missing_output.remove("output");
        assert_eq!(validate_result(&missing_output), Err("check output must be a string"));
    }

    #[test]
    fn definition_failures_are_collected() {
        let def = json!({"name": "x y", "command": "true", "extension": "http", "interval": 0, "hooks": {"sometimes": {"command": 1}}})
            .as_object()
            .cloned()
            .unwrap();
        struct Lenient;
        impl ScheduleSyntax for Lenient {
            fn cron_valid(&self, _: &str) -> bool {
                true
            }
            fn time_valid(&self, _: &str) -> bool {
                true
            }
        }
        let failures = check_definition_failures(&def, &Lenient);
        assert_eq!(
            failures,
            vec![
                "check name cannot contain spaces or special characters",
                "either check command or extension must be set",
                "check interval must be an integer greater than 0",
                "check subscribers must be an array",
                "check hook key must be a severity, status, or 'non-zero'",
                "check hook command must be a string",
            ]
        );
    }

    #[test]
    fn hook_keys() {
        for k in ["ok", "warning", "critical", "unknown", "non-zero", "0", "1", "255"] {
            assert!(is_hook_key(k), "{k}");
        }
        for k in ["256", "01", "-1", "sometimes"] {
            assert!(!is_hook_key(k), "{k}");
        }
    }
}
