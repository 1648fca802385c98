//! Redaction of sensitive attributes (`Sensu::Utilities#redact_sensitive`).

use serde_json::Value;

/// Sensu 1.9's default list of keys whose values are replaced by `"REDACTED"`
/// (`sensu/lib/sensu/utilities.rb` `redact_sensitive`; the 1.9 docs list only the
/// first nine).
pub const DEFAULT_REDACT_KEYS: &[&str] = &[
    "password",
    "passwd",
    "pass",
    "api_key",
    "api_token",
    "access_key",
    "secret_key",
    "private_key",
    "secret",
    "routing_key",
    "access_token_read",
    "access_token_write",
    "access_token_path",
    "webhook_url",
    "nickserv_password",
    "channel_password",
    "community",
    "keystore_password",
    "truststore_password",
    "proxy_password",
    "access_key_id",
    "secret_access_key",
];

/// The replacement value Sensu uses.
pub const REDACTED: &str = "REDACTED";

/// Return a copy of `value` with every hash key listed in `keys` replaced by
/// `"REDACTED"`, recursively through hashes and arrays (arrays in arrays included).
pub fn redact<S: AsRef<str>>(value: &Value, keys: &[S]) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if keys.iter().any(|key| key.as_ref() == k) {
                        Value::String(REDACTED.to_string())
                    } else {
                        redact(v, keys)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| redact(v, keys)).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // Spec §7 item 44.
    #[test]
    fn redacts_nested_hashes_arrays_of_hashes_and_arrays_of_arrays() {
        let input = json!({
            "one": 1,
            "password": "foo",
            "nested": {"password": {"whole": "hash"}, "secret": 42},
            "list": [{"api_key": "k"}, [{"pass": "p"}], "password"],
            "strings": ["secret", "password"]
        });
        let out = redact(&input, DEFAULT_REDACT_KEYS);
        assert_eq!(
            out,
            json!({
                "one": 1,
                "password": "REDACTED",
                "nested": {"password": "REDACTED", "secret": "REDACTED"},
                "list": [{"api_key": "REDACTED"}, [{"pass": "REDACTED"}], "password"],
                "strings": ["secret", "password"]
            })
        );
    }

    #[test]
    fn custom_list_replaces_default() {
        let input = json!({"password": "x", "token": "y"});
        assert_eq!(redact(&input, &["token"]), json!({"password": "x", "token": "REDACTED"}));
    }
}
