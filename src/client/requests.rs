//! What arrives on a subscription queue. sensu-client parses the body as JSON and hands
//! it to `process_check_request`; anything else either logs `failed to parse the check
//! request payload` or crashes the reactor (a JSON array, an object without `name`). We
//! reject each kind of bad message cleanly, log the first of each kind, and count them.

use std::collections::HashSet;
use std::sync::Mutex;

use serde_json::Value;

use crate::proto::Object;

/// Why a message is not a check request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rejection {
    /// Larger than `concierge.max_request_bytes`.
    TooLarge,
    /// Not valid JSON (or not UTF-8).
    NotJson,
    /// JSON, but not an object (e.g. an array).
    NotObject,
    /// An object without a string `name`.
    NoName,
}

impl Rejection {
    /// A stable label for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            Self::TooLarge => "too_large",
            Self::NotJson => "not_json",
            Self::NotObject => "not_object",
            Self::NoName => "no_name",
        }
    }
}

/// Parse a delivery body into a check request.
pub fn parse(body: &[u8], max_bytes: usize) -> Result<Object, Rejection> {
    if body.len() > max_bytes {
        return Err(Rejection::TooLarge);
    }
    let mut json = serde_json::Deserializer::from_slice(body);
    let check =
        match serde::Deserializer::deserialize_map(&mut json, RequestObject).and_then(|c| json.end().map(|()| c)) {
            Ok(check) => check,
            // Not an object: JSON of another type (read whole, as strictly as before: reading
            // an array stopped at its `[`), or not JSON at all.
            Err(e) if e.is_data() && serde_json::from_slice::<Value>(body).is_ok() => {
                return Err(Rejection::NotObject);
            }
            Err(_) => return Err(Rejection::NotJson),
        };
    if !crate::proto::field(&check, "name").is_some_and(Value::is_string) {
        return Err(Rejection::NoName);
    }
    Ok(check)
}

/// Room in a parsed request for a typical request's keys and the `executed` its result adds
/// (the rest of what a run adds is kept apart: `proto::Additions`, unless a hook or a
/// follow-up needs the check whole): grown entry by entry, the check's map was reallocated
/// and rehashed three or four times. Nine entries of 104 bytes fit the largest block glibc
/// serves from its per-thread cache (1,032 bytes with the header); sixteen, room for what
/// results added before, took the slower path on every request.
const REQUEST_ROOM: usize = 9;

/// A JSON object read into a map with [`REQUEST_ROOM`] from the start (as serde_json's
/// own `Value` reads objects, the last of repeated keys winning).
struct RequestObject;

impl<'de> serde::de::Visitor<'de> for RequestObject {
    type Value = Object;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut entries: A) -> Result<Object, A::Error> {
        let mut check = Object::with_capacity(REQUEST_ROOM.max(entries.size_hint().unwrap_or(0)));
        while let Some((key, value)) = entries.next_entry::<String, Value>()? {
            check.insert(key, value);
        }
        Ok(check)
    }
}

/// Logs the first rejection of each kind (later ones only count), so a flood of bad
/// messages cannot flood the log.
#[derive(Default)]
pub struct RejectionLog(Mutex<HashSet<Rejection>>);

impl RejectionLog {
    /// Record a rejection; logs it if it is the first of its kind.
    pub fn record(&self, rejection: Rejection, queue: &str, body: &[u8]) {
        let first = self.0.lock().map(|mut seen| seen.insert(rejection)).unwrap_or(false);
        if first {
            let preview = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            tracing::warn!(
                reason = rejection.label(),
                queue,
                bytes = body.len(),
                preview,
                "failed to parse the check request payload; rejected (further ones of this kind are only counted)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_room_fits_the_allocators_per_thread_cache() {
        // An ordered map's entry: the key's hash, the key, the value.
        let entry = std::mem::size_of::<(u64, String, Value)>();
        assert_eq!(entry, 104, "the room's size in the comment");
        assert!(REQUEST_ROOM * entry + 8 <= 1032, "{REQUEST_ROOM} entries of {entry} bytes");
    }

    #[test]
    fn kinds_of_bad_messages() {
        assert_eq!(parse(b"not json", 100), Err(Rejection::NotJson));
        assert_eq!(parse(b"\xff\xfe", 100), Err(Rejection::NotJson));
        assert_eq!(parse(b"[1,2]", 100), Err(Rejection::NotObject));
        assert_eq!(parse(b"\"name\"", 100), Err(Rejection::NotObject));
        assert_eq!(parse(b"[1,2", 100), Err(Rejection::NotJson));
        assert_eq!(parse(br#"{"name":"ok"} {}"#, 100), Err(Rejection::NotJson));
        assert_eq!(parse(br#"{"name":"ok""#, 100), Err(Rejection::NotJson));
        // Arrays that are not JSON either: bad UTF-8, a lone surrogate, a number out of
        // range, deeper than serde_json's limit.
        assert_eq!(parse(b"[\"\xff\"]", 100), Err(Rejection::NotJson));
        assert_eq!(parse(br#"["\ud800"]"#, 100), Err(Rejection::NotJson));
        assert_eq!(parse(b"[1e400]", 100), Err(Rejection::NotJson));
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(parse(deep.as_bytes(), 1000), Err(Rejection::NotJson));
        assert_eq!(parse(br#"{"command":"true"}"#, 100), Err(Rejection::NoName));
        assert_eq!(parse(br#"{"name":5}"#, 100), Err(Rejection::NoName));
        assert_eq!(parse(&[b' '; 101], 100), Err(Rejection::TooLarge));
        assert!(parse(br#"{"name":"ok","command":"true"}"#, 100).is_ok());
        // Repeated keys: the last wins, in the first one's place (as serde_json's `Value`).
        let check = parse(br#"{"name":"a","x":1,"name":"b"}"#, 100).unwrap();
        assert_eq!(serde_json::to_string(&check).unwrap(), r#"{"name":"b","x":1}"#);
    }
}
