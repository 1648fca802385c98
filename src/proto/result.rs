//! The payloads a client publishes: check results and keepalives.

use serde_json::Value;

use super::{Additions, Object, SENSU_VERSION, redact};

/// A check result as published to the `results` pipe (`publish_check_result` in
/// `sensu/lib/sensu/client/process.rb`): `{client, check, signature?}`.
#[derive(Debug, Clone)]
pub struct ResultPayload {
    /// The publishing client's name (also for proxy results).
    pub client: String,
    /// The check: request, local definition and what the client assigned into it.
    pub check: Object,
    /// What the execution added, written after `check`'s keys (none of which it shares:
    /// see [`ResultPayload::with_additions`]).
    pub added: Additions,
    /// `client.signature`, present only when configured.
    pub signature: Option<String>,
}

impl ResultPayload {
    /// Build the payload for a check executed by this client. An empty `source` is
    /// removed, as sensu-client does since 1.4.3, the other keys keeping their order (Ruby's
    /// `Hash#delete`; serde_json's `remove` would move the last key into its place).
    pub fn new(client: &str, mut check: Object, signature: Option<&str>) -> Self {
        if super::field(&check, "source").is_some_and(|s| s == "") {
            check.shift_remove("source");
        }
        Self::verbatim(client, check, signature)
    }

    /// Build the payload without touching the check (the socket path keeps an empty
    /// `source`, as `Sensu::Client::CheckUtils#publish_check_result` does).
    pub fn verbatim(client: &str, check: Object, signature: Option<&str>) -> Self {
        Self {
            client: client.to_string(),
            check,
            added: Additions::default(),
            signature: signature.map(str::to_string),
        }
    }

    /// The same result with `added` after the check's keys: kept apart when the check has
    /// none of its keys, else assigned into the check (a key the check has keeps its place).
    pub fn with_additions(mut self, added: Additions) -> Self {
        if added.overlap(&self.check) {
            added.fold_into(&mut self.check);
        } else {
            self.added = added;
        }
        self
    }

    /// The whole check, additions included.
    pub fn into_check(self) -> Object {
        let Self { mut check, added, .. } = self;
        added.fold_into(&mut check);
        check
    }

    /// `status` of the check, wherever it was set.
    pub fn status(&self) -> Option<i64> {
        self.value("status").and_then(Value::as_i64)
    }

    /// `output` of the check, wherever it was set.
    pub fn output(&self) -> Option<&str> {
        self.value("output").and_then(Value::as_str)
    }

    /// `key` of the check as published: what the run added, else the request's.
    fn value(&self, key: &str) -> Option<&Value> {
        match self.added.get(key) {
            Some(super::Field::Json(value)) => Some(value),
            _ => self.check.get(key),
        }
    }

    /// The JSON document, keys in sensu-client's order.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// Compact JSON bytes, as they go on the wire, written straight from the check (no
    /// copy of it: a courier result can be megabytes).
    pub fn to_bytes(&self) -> Vec<u8> {
        // A typical result fits in the first buffer; serde_json's own starts at 128 bytes
        // and was reallocated three times per result.
        let mut bytes = Vec::with_capacity(1024);
        match serde_json::to_writer(&mut bytes, self) {
            Ok(()) => bytes,
            Err(_) => Vec::new(),
        }
    }
}

/// The same message on the wire: the same bytes, key order included (how the check is split
/// between the map and the additions does not matter; the maps' own `==` ignores order).
impl PartialEq for ResultPayload {
    fn eq(&self, other: &Self) -> bool {
        self.to_bytes() == other.to_bytes()
    }
}

/// `{client, check, signature?}`, in sensu-client's key order.
impl serde::Serialize for ResultPayload {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = serializer.serialize_map(Some(2 + usize::from(self.signature.is_some())))?;
        map.serialize_entry("client", &self.client)?;
        map.serialize_entry("check", &Check(self))?;
        if let Some(signature) = &self.signature {
            map.serialize_entry("signature", signature)?;
        }
        map.end()
    }
}

/// The check's keys, then the additions'.
struct Check<'a>(&'a ResultPayload);

impl serde::Serialize for Check<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let ResultPayload { check, added, .. } = self.0;
        if added.is_empty() {
            return check.serialize(serializer);
        }
        let mut map = serializer.serialize_map(Some(check.len() + added.len()))?;
        for (key, value) in check {
            map.serialize_entry(key, value)?;
        }
        // Additions share no key with the check (`with_additions`): a plain continuation.
        for (key, value) in added.iter() {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// sensu-client writes the socket defaults into a configured `socket`/`http_socket` hash when
/// it opens them (the hash *is* its settings), so they show in keepalives, in a `stdin` check's
/// client and in `:::socket.bind:::` tokens; never added when the hash is absent.
pub fn fill_socket_defaults(client: &mut Object) {
    for (key, port) in [("socket", 3030), ("http_socket", 3031)] {
        if let Some(Value::Object(scope)) = client.get_mut(key) {
            scope.entry("bind").or_insert_with(|| Value::from("127.0.0.1"));
            scope.entry("port").or_insert_with(|| Value::from(port));
        }
    }
}

/// The keepalive document (`keepalive_payload`): the client settings merged with
/// `version` and `timestamp`, then redacted with `client.redact` or the default list.
pub fn keepalive_payload(client: &Object, timestamp: i64) -> Value {
    let mut payload = client.clone();
    fill_socket_defaults(&mut payload);
    payload.insert("version".into(), Value::String(SENSU_VERSION.to_string()));
    payload.insert("timestamp".into(), Value::from(timestamp));
    let payload = Value::Object(payload);
    match client.get("redact").and_then(Value::as_array) {
        Some(keys) => {
            let keys: Vec<&str> = keys.iter().filter_map(Value::as_str).collect();
            redact(&payload, &keys)
        }
        None => redact(&payload, super::DEFAULT_REDACT_KEYS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Object {
        v.as_object().cloned().unwrap()
    }

    // Spec §7 item 5.
    #[test]
    fn empty_source_is_removed() {
        let payload = ResultPayload::new("i-424242", obj(json!({"name": "test", "source": ""})), None);
        assert_eq!(payload.to_value(), json!({"client": "i-424242", "check": {"name": "test"}}));
    }

    // Spec §7 items 32–33.
    #[test]
    fn signature_is_top_level_and_only_when_set() {
        let payload = ResultPayload::new("i-424242", obj(json!({"name": "test"})), Some("foo"));
        assert_eq!(
            String::from_utf8(payload.to_bytes()).unwrap(),
            r#"{"client":"i-424242","check":{"name":"test"},"signature":"foo"}"#
        );
    }

    // Spec §2.1, §7 item 2; compared with the captured sample.
    #[test]
    fn additions_follow_the_checks_keys_and_equal_the_folded_check() {
        let mut added = crate::proto::Additions::default();
        added.set("output", "ok");
        added.set("status", 0);
        let apart =
            ResultPayload::new("c", obj(json!({"name": "a", "source": ""})), None).with_additions(added.clone());
        assert!(!apart.added.is_empty(), "no shared key: kept apart");
        let folded = ResultPayload::new("c", apart.clone().into_check(), None);
        assert_eq!(apart, folded);
        assert_eq!(
            String::from_utf8(apart.to_bytes()).unwrap(),
            r#"{"client":"c","check":{"name":"a","output":"ok","status":0}}"#
        );
        assert_eq!((apart.status(), apart.output()), (Some(0), Some("ok")));
        // A key the check has keeps its place.
        let shared = ResultPayload::new("c", obj(json!({"status": 2, "name": "a"})), None).with_additions(added);
        assert!(shared.added.is_empty());
        assert_eq!(
            String::from_utf8(shared.to_bytes()).unwrap(),
            r#"{"client":"c","check":{"status":0,"name":"a","output":"ok"}}"#
        );
        let reordered = ResultPayload::new("c", obj(json!({"name": "a", "status": 0, "output": "ok"})), None);
        assert_ne!(shared, reordered, "the same keys in another order are another message");
    }

    #[test]
    fn keepalive_overwrites_version_and_redacts() {
        let client = obj(json!({
            "name": "i-424242", "address": "127.0.0.1", "version": "TOBEREPLACED",
            "service": {"password": "secret"}, "subscriptions": ["test", "client:i-424242"]
        }));
        let k = keepalive_payload(&client, 1575000000);
        assert_eq!(
            serde_json::to_string(&k).unwrap(),
            r#"{"name":"i-424242","address":"127.0.0.1","version":"1.9.0","service":{"password":"REDACTED"},"subscriptions":["test","client:i-424242"],"timestamp":1575000000}"#
        );
    }

    // The captured sample: configured sockets show their defaults.
    #[test]
    fn keepalive_fills_configured_socket_defaults() {
        let client = obj(json!({"name": "c", "socket": {}, "http_socket": {"port": 4031}}));
        let k = keepalive_payload(&client, 1);
        assert_eq!(serde_json::to_string(&k["socket"]).unwrap(), r#"{"bind":"127.0.0.1","port":3030}"#);
        assert_eq!(k["http_socket"], json!({"port": 4031, "bind": "127.0.0.1"}));
        assert!(keepalive_payload(&obj(json!({"name": "c"})), 1).get("socket").is_none());
    }

    #[test]
    fn keepalive_with_custom_redact_list() {
        let client = obj(json!({"name": "a", "password": "p", "token": "t", "redact": ["token"]}));
        let k = keepalive_payload(&client, 1);
        assert_eq!(k["password"], "p");
        assert_eq!(k["token"], "REDACTED");
    }
}
