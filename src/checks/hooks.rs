//! Check hooks (sensu 1.1+; `determine_check_hook` / `execute_check_hook` in
//! `sensu/lib/sensu/client/process.rb`).
//!
//! After a check finishes, at most one hook runs, chosen in this order: the hook named
//! after the exact status (`"1"`), the one named after its severity (`warning`), then
//! `non-zero` if the status is not 0. Its results go inside the hook's own object.

use serde_json::Value;

use crate::proto::Object;

/// Default hook timeout in seconds (`hook[:timeout] || 60`).
pub const DEFAULT_HOOK_TIMEOUT: f64 = 60.0;

const SEVERITIES: [&str; 4] = ["ok", "warning", "critical", "unknown"];

/// The key of the hook to run for `status`, if any.
pub fn select(hooks: &Object, status: i64) -> Option<String> {
    let by_status = status.to_string();
    if hooks.contains_key(&by_status) {
        return Some(by_status);
    }
    let severity = SEVERITIES[usize::try_from(status).unwrap_or(3).min(3)];
    if hooks.contains_key(severity) {
        return Some(severity.to_string());
    }
    if status != 0 && hooks.contains_key("non-zero") {
        return Some("non-zero".to_string());
    }
    None
}

/// The hook object under `key`, when it is one.
pub fn hook_mut<'a>(check: &'a mut Object, key: &str) -> Option<&'a mut Object> {
    check.get_mut("hooks")?.as_object_mut()?.get_mut(key)?.as_object_mut()
}

/// Whether the check carries a non-empty `hooks` hash.
pub fn has_hooks(check: &Object) -> bool {
    check.get("hooks").and_then(Value::as_object).is_some_and(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hooks(v: Value) -> Object {
        v.as_object().cloned().unwrap()
    }

    // Spec §7 items 13–15.
    #[test]
    fn selection_order() {
        let all = hooks(json!({"1": {}, "warning": {}, "non-zero": {}, "ok": {}}));
        assert_eq!(select(&all, 1).as_deref(), Some("1"));
        let sev = hooks(json!({"warning": {}, "non-zero": {}, "ok": {}}));
        assert_eq!(select(&sev, 1).as_deref(), Some("warning"));
        assert_eq!(select(&sev, 0).as_deref(), Some("ok"));
        let nz = hooks(json!({"non-zero": {}}));
        assert_eq!(select(&nz, 2).as_deref(), Some("non-zero"));
        assert_eq!(select(&nz, 0), None);
        let unknown = hooks(json!({"unknown": {}}));
        assert_eq!(select(&unknown, 127).as_deref(), Some("unknown"));
    }
}
