//! A Sensu 1.x event as a scaling request: what `concierge scale handle` (a pipe handler)
//! makes of the JSON sensu-server writes on its stdin. The check definition says what to
//! scale: `"scale": {"service": "api", "direction": "up", "by": 1}` (optional `min`, `max`,
//! `cooldown`, `platform`: `swarm` or `ecs` with `cluster`, and `on_resolve: true` to scale back the other way when
//! the check resolves). sensu-server calls the handler again on every failing result
//! (`occurrences` 1, 2, 3…): the cooldown keeps one incident from scaling to the max.

use serde_json::Value;

use super::backend::Target;
use super::decide::Move;
use super::platform::TaskRef;

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
        /// `platform` (and `cluster`) from the definition; else the handler's.
        platform: Option<Target>,
        /// The check and client that caused it, for the result's `trigger`.
        trigger: String,
    },
    /// Replace a stuck client: stop the task behind it so the orchestrator starts a fresh one.
    Replace {
        /// The service the client belongs to.
        service: String,
        /// Its task.
        task: TaskRef,
        /// The client.
        client: String,
        /// The keepalive event, for the result's `trigger`.
        trigger: String,
    },
    /// Nothing to do; why, in one line.
    Nothing(String),
}

/// How client names map to tasks: `probe-{slot}=SERVICE`, the fleet's own Swarm naming
/// (`SENSU_CLIENT_NAME=probe-{{.Task.Slot}}`), or `probe-{ecs_task_id}=SERVICE` on ECS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientPattern {
    prefix: String,
    suffix: String,
    /// `{slot}` (Swarm) or `{ecs_task_id}` (ECS).
    by_slot: bool,
    /// The service whose task the name gives.
    pub service: String,
}

impl std::str::FromStr for ClientPattern {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (pattern, service) = s
            .split_once('=')
            .filter(|(_, service)| !service.is_empty())
            .ok_or_else(|| format!("{s:?}: expected NAME-{{slot}}=SERVICE"))?;
        let (by_slot, (prefix, suffix)) = match (pattern.split_once("{slot}"), pattern.split_once("{ecs_task_id}")) {
            (Some(parts), None) => (true, parts),
            (None, Some(parts)) => (false, parts),
            _ => return Err(format!("{s:?}: the client name pattern needs one {{slot}} or {{ecs_task_id}}")),
        };
        Ok(Self { prefix: prefix.to_string(), suffix: suffix.to_string(), by_slot, service: service.to_string() })
    }
}

impl ClientPattern {
    /// The task a client name gives, if it matches.
    pub fn task(&self, client: &str) -> Option<TaskRef> {
        let part = client.strip_prefix(&self.prefix)?.strip_suffix(&self.suffix)?;
        if self.by_slot {
            // Exactly what Swarm writes for {{.Task.Slot}}: no sign, no leading zero.
            if part.is_empty() || part.starts_with('0') || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            return part.parse().ok().map(TaskRef::Slot);
        }
        // An ECS task id: 32 hex digits (older ids: a UUID with dashes).
        let id_like = (1..=64).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
        id_like.then(|| TaskRef::Id(part.to_string()))
    }
}

/// Read an event, mapping clients to tasks for keepalive events. `Err` names what is wrong.
pub fn asked_with(event: &Value, clients: &[ClientPattern]) -> Result<Asked, String> {
    let check = event.get("check").and_then(|c| c.get("name")).and_then(Value::as_str);
    if check != Some("keepalive") {
        return asked(event);
    }
    let client = event.get("client").and_then(|c| c.get("name")).and_then(Value::as_str).unwrap_or("?");
    let status = event.get("check").and_then(|c| c.get("status")).and_then(Value::as_i64).unwrap_or(0);
    let action = event.get("action").and_then(Value::as_str).unwrap_or("create");
    // Only a critical keepalive (sensu-server's 180 s threshold by default): a warning may
    // be a slow client, not a stuck one.
    if !matches!(action, "create" | "flapping") || status < 2 {
        return Ok(Asked::Nothing(format!("keepalive of {client} ({action}, status {status}): nothing to replace")));
    }
    let Some((pattern, task)) = clients.iter().find_map(|p| Some((p, p.task(client)?))) else {
        return Ok(Asked::Nothing(format!("keepalive of {client}: no --replace-clients pattern names it")));
    };
    Ok(Asked::Replace {
        service: pattern.service.clone(),
        task,
        client: client.to_string(),
        trigger: format!("sensu keepalive of {client} ({action}, status {status})"),
    })
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
        .filter(|s| super::valid_service_name(s))
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
    let text = |key: &str| match scale.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(format!("check {name}: `scale.{key}` must be a string")),
    };
    let platform = match (text("platform")?, text("cluster")?) {
        (None, None) => None,
        (platform, cluster) => Some(
            Target::named(platform.unwrap_or(if cluster.is_some() { "ecs" } else { "swarm" }), cluster)
                .map_err(|e| format!("check {name}: `scale.platform`: {e}"))?,
        ),
    };
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
        platform,
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
                platform: None,
                trigger: "sensu check api_response_time on probe-1, occurrence 4 (create)".into()
            }
        );
        let got = asked(&event("flapping", 1, json!({"service": "api", "direction": "down", "max": 6}))).unwrap();
        assert!(matches!(got, Asked::Scale { request: Move::Down(1), max: Some(6), .. }), "{got:?}");
        let ecs =
            asked(&event("create", 2, json!({"service": "api", "platform": "ecs", "cluster": "probes"}))).unwrap();
        assert!(matches!(ecs, Asked::Scale { platform: Some(Target::Ecs { ref cluster }), .. } if cluster == "probes"));
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
    fn stuck_clients_map_to_their_slot() {
        let patterns: Vec<ClientPattern> = vec!["probe-{slot}=probes_concierge".parse().unwrap()];
        let keepalive = |client: &str, status: i64, action: &str| json!({"client": {"name": client}, "check": {"name": "keepalive", "status": status}, "action": action});
        assert_eq!(
            asked_with(&keepalive("probe-2", 2, "create"), &patterns).unwrap(),
            Asked::Replace {
                service: "probes_concierge".into(),
                task: TaskRef::Slot(2),
                client: "probe-2".into(),
                trigger: "sensu keepalive of probe-2 (create, status 2)".into()
            }
        );
        assert!(matches!(asked_with(&keepalive("probe-2", 0, "resolve"), &patterns).unwrap(), Asked::Nothing(_)));
        assert_eq!(
            asked_with(&keepalive("web-1", 2, "create"), &patterns).unwrap(),
            Asked::Nothing("keepalive of web-1: no --replace-clients pattern names it".into())
        );
        assert!(matches!(asked_with(&keepalive("probe-2", 1, "create"), &patterns).unwrap(), Asked::Nothing(_)));
        for odd in ["probe-02", "probe-+2", "probe-", "probe-2x"] {
            assert!(matches!(asked_with(&keepalive(odd, 2, "create"), &patterns).unwrap(), Asked::Nothing(_)), "{odd}");
        }
        assert!("probe=x".parse::<ClientPattern>().unwrap_err().contains("needs one {slot} or {ecs_task_id}"));
        let ecs: Vec<ClientPattern> = vec!["probe-{ecs_task_id}=probes".parse().unwrap()];
        let id = "0f5e2c3a4b5d4e6f8a9b0c1d2e3f4a5b";
        assert!(matches!(
            asked_with(&keepalive(&format!("probe-{id}"), 2, "create"), &ecs).unwrap(),
            Asked::Replace { task: TaskRef::Id(got), .. } if got == id
        ));
        assert!(matches!(asked_with(&keepalive("probe-xyz", 2, "create"), &ecs).unwrap(), Asked::Nothing(_)));
        assert!("probe-{slot}".parse::<ClientPattern>().unwrap_err().contains("expected NAME-{slot}=SERVICE"));
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
        assert_eq!(
            bad(json!({"service": "api", "platform": "nomad"})),
            "check api_response_time: `scale.platform`: unknown platform \"nomad\": swarm or ecs"
        );
        assert_eq!(
            bad(json!({"service": "api", "cluster": 3})),
            "check api_response_time: `scale.cluster` must be a string"
        );
    }
}
