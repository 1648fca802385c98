//! The Sensu 1.x data model and its pure rules.
//!
//! Sensu messages are JSON objects whose attributes are open-ended: a check request
//! carries whatever the check definition holds (custom attributes included), and the
//! result must carry all of it back. So checks are kept as ordered JSON objects
//! ([`Object`]) rather than closed structs; key order follows Ruby's hash insertion
//! order, which keeps our payloads byte-comparable with sensu-client's.

pub mod additions;
pub mod merge;
pub mod redact;
pub mod result;
pub mod ruby;
pub mod tokens;
pub mod validate;

pub use additions::{Additions, Field};
pub use merge::{deep_merge, deep_merge_into};
pub use redact::{DEFAULT_REDACT_KEYS, redact};
pub use result::{ResultPayload, fill_socket_defaults, keepalive_payload};
pub use tokens::{object_has_tokens, object_substitute_tokens, substitute_tokens};

/// A JSON object that keeps insertion order (serde_json's `preserve_order`).
pub type Object = serde_json::Map<String, serde_json::Value>;

/// Most keys an object may have for [`field`] to find one by comparing keys.
const SMALL: usize = 16;

/// `object[key]`. A check request has a handful of keys; serde_json's map hashes every key
/// looked up (SipHash, about 250 instructions with the probe), where comparing a few short
/// keys costs a tenth of that. So a small object is searched in order, a larger one by hash;
/// the answer is the same.
pub fn field<'a>(object: &'a Object, key: &str) -> Option<&'a serde_json::Value> {
    if object.len() <= SMALL { object.iter().find_map(|(k, v)| (k == key).then_some(v)) } else { object.get(key) }
}

/// The Sensu version Concierge speaks and reports (`version` in keepalives, the funnel
/// queue name). sensu-server 1.x does not interpret it, Uchiwa displays it.
/// Mirrors `sensu/lib/sensu/constants.rb` `VERSION`.
pub const SENSU_VERSION: &str = "1.9.0";

/// Current wall-clock time in whole epoch seconds (Ruby `Time.now.to_i`).
pub fn now_epoch() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Current wall-clock time in epoch seconds with sub-second precision (`Time.now.to_f`).
pub fn now_epoch_f64() -> f64 {
    chrono::Utc::now().timestamp_micros() as f64 / 1_000_000.0
}

/// Round a duration in seconds to 3 decimals, as Ruby's `("%.3f" % d).to_f`.
pub fn round3(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

/// Round to 6 decimals (microseconds), for timings in results.
pub fn round6(seconds: f64) -> f64 {
    (seconds * 1_000_000.0).round() / 1_000_000.0
}

/// `\A[\w.-]+\z` with ASCII word characters: Sensu's rule for client and check names.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(is_name_char)
}

/// A character Sensu allows in a client or check name (`[\w.-]`, ASCII).
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// `text` with every character Sensu does not allow in a name replaced by `fill`.
pub fn name_from(text: &str, fill: char) -> String {
    text.chars().map(|c| if is_name_char(c) { c } else { fill }).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    #[test]
    fn a_field_is_found_as_by_hash_in_small_and_large_objects() {
        for size in [0, 1, 4, SMALL, SMALL + 1, 40] {
            let mut object = Object::new();
            for i in 0..size {
                object.insert(format!("k{i}"), json!(i));
            }
            // Keys that share a prefix or a length with present ones, and the empty key.
            for key in (0..size + 2).map(|i| format!("k{i}")).chain(["k".into(), "".into(), "k00".into()]) {
                assert_eq!(field(&object, &key), object.get(&key), "{size} keys, {key:?}");
            }
            if size > 0 {
                assert_eq!(field(&object, "k0"), Some(&Value::from(0)));
            }
        }
    }
}
