//! A Sensu 1.x event as a scaling request: what `concierge scale handle` (a pipe handler)
//! makes of the JSON sensu-server writes on its stdin. The check definition says what to
//! scale: `"scale": {"service": "api", "direction": "up", "by": 1}` (optional `min`, `max`,
//! `cooldown`, `platform`: `swarm`, and `on_resolve: true` to scale back the other way when
//! the check resolves). sensu-server calls the handler again on every failing result
//! (`occurrences` 1, 2, 3…): the cooldown keeps one incident from scaling to the max.

use serde_json::Value;

use super::decide::Move;

/// What an event asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asked {
    /// Scale a service.
    Scale {
        /// The service.
        service: String,
        /// The move.
        request: Move,
        /// `min` from the definition.
        min: Option<u64>,
        /// `max` from the definition.
        max: Option<u64>,
        /// `cooldown` (seconds) from the definition.
        cooldown: Option<u64>,
        /// The check and client that caused it, for the result's `trigger`.
        trigger: String,
    },
    /// Nothing to do; why, in one line.
    Nothing(String),
}

/// Read an event. `Err` names what is wrong with it (the handler exits 3).
pub fn asked(event: &Value) -> Result<Asked, String> {
    let check = event.get("check").and_then(Value::as_object).ok_or("not a Sensu event: no `check` object")?;
    let name = check.get("name").and_then(Value::as_str).ok_or("not a Sensu event: the check has no name")?;
    let client = event.get("client").and_then(|c| c.get("name")).and_then(Value::as_str).unwrap_or("?");
    let action = event.get("action").and_then(Value::as_str).unwrap_or("create");
    let Some(scale) = check.get("scale") else {
        return Ok(Asked::Nothing(format!("check {name} has no `scale` attribute: nothing to scale")));
    };
    let scale = scale.as_object().ok_or_else(|| format!("check {name}: `scale` must be an object"))?;
    let service = scale
        .get("service")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("check {name}: `scale.service` must be a service name"))?;
    let count = |key: &str| -> Result<Option<u64>, String> {
        match scale.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => {
                v.as_u64().map(Some).ok_or_else(|| format!("check {name}: `scale.{key}` must be a whole number"))
            }
        }
    };
    let by = count("by")?.unwrap_or(1);
    if by == 0 {
        return Err(format!("check {name}: `scale.by` must be at least 1"));
    }
    let up = match scale.get("direction").and_then(Value::as_str) {
        Some("up") | None => true,
        Some("down") => false,
        Some(other) => return Err(format!("check {name}: `scale.direction` must be up or down, not {other:?}")),
    };
    match scale.get("platform").and_then(Value::as_str) {
        None | Some("swarm") => {}
        Some(other) => return Err(format!("check {name}: `scale.platform` {other:?} is not supported here (swarm)")),
    }
    let status = check.get("status").and_then(Value::as_i64).unwrap_or(0);
    let occurrence = event.get("occurrences").and_then(Value::as_u64).unwrap_or(1);
    let up = match action {
        "create" | "flapping" if status != 0 => up,
        "create" | "flapping" => return Ok(Asked::Nothing(format!("check {name} is OK: nothing to scale"))),
        "resolve" if scale.get("on_resolve") == Some(&Value::Bool(true)) => !up,
        "resolve" => {
            return Ok(Asked::Nothing(format!(
                "check {name} resolved: nothing to scale (\"on_resolve\": true scales back)"
            )));
        }
        other => return Ok(Asked::Nothing(format!("event action {other:?}: nothing to scale"))),
    };
    Ok(Asked::Scale {
        service: service.to_string(),
        request: if up { Move::Up(by) } else { Move::Down(by) },
        min: count("min")?,
        max: count("max")?,
        cooldown: count("cooldown")?,
        trigger: format!("sensu check {name} on {client}, occurrence {occurrence} ({action})"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(action: &str, status: i64, scale: Value) -> Value {
        json!({"client": {"name": "probe-1"}, "check": {"name": "api_response_time", "status": status, "scale": scale},
               "occurrences": 4, "action": action})
    }

    #[test]
    fn failing_checks_scale_in_their_direction() {
        let got = asked(&event("create", 2, json!({"service": "api", "direction": "up", "by": 2}))).unwrap();
        assert_eq!(
            got,
            Asked::Scale {
                service: "api".into(),
                request: Move::Up(2),
                min: None,
                max: None,
                cooldown: None,
                trigger: "sensu check api_response_time on probe-1, occurrence 4 (create)".into()
            }
        );
        let got = asked(&event("flapping", 1, json!({"service": "api", "direction": "down", "max": 6}))).unwrap();
        assert!(matches!(got, Asked::Scale { request: Move::Down(1), max: Some(6), .. }), "{got:?}");
    }

    #[test]
    fn resolves_and_unscaled_checks_do_nothing() {
        assert_eq!(
            asked(&event("resolve", 0, json!({"service": "api"}))).unwrap(),
            Asked::Nothing(
                "check api_response_time resolved: nothing to scale (\"on_resolve\": true scales back)".into()
            )
        );
        let back =
            asked(&event("resolve", 0, json!({"service": "api", "direction": "up", "on_resolve": true}))).unwrap();
        assert!(matches!(back, Asked::Scale { request: Move::Down(1), .. }), "{back:?}");
        let plain = json!({"client": {"name": "c"}, "check": {"name": "disk", "status": 2}, "action": "create"});
        assert_eq!(
            asked(&plain).unwrap(),
            Asked::Nothing("check disk has no `scale` attribute: nothing to scale".into())
        );
        assert!(matches!(asked(&event("create", 0, json!({"service": "api"}))).unwrap(), Asked::Nothing(_)));
    }

    #[test]
    fn malformed_events_say_what_is_wrong() {
        assert_eq!(asked(&json!([1])).unwrap_err(), "not a Sensu event: no `check` object");
        assert_eq!(asked(&json!({"check": {}})).unwrap_err(), "not a Sensu event: the check has no name");
        let bad = |scale: Value| asked(&event("create", 2, scale)).unwrap_err();
        assert_eq!(bad(json!("api")), "check api_response_time: `scale` must be an object");
        assert_eq!(bad(json!({"by": 1})), "check api_response_time: `scale.service` must be a service name");
        assert_eq!(
            bad(json!({"service": "api", "by": -1})),
            "check api_response_time: `scale.by` must be a whole number"
        );
        assert_eq!(bad(json!({"service": "api", "by": 0})), "check api_response_time: `scale.by` must be at least 1");
        assert_eq!(
            bad(json!({"service": "api", "direction": "sideways"})),
            "check api_response_time: `scale.direction` must be up or down, not \"sideways\""
        );
    }
}
