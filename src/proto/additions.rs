//! What a client adds to a check it ran (`duration`, `output`, `status`, a built-in's
//! `timings` and `probe`…), kept apart from the request's own keys and written after them.
//!
//! sensu-client assigns these into the check hash one by one: a key the request already has
//! keeps its place and takes the new value, a new one goes at the end. Concierge's results
//! carry them the same way, but without making each one a map entry first: every entry of
//! an ordered JSON map costs its key's allocation and a SipHash (an OK built-in HTTP check
//! added 15 entries, nested ones included: about 8 % of its instructions). [`ResultPayload`]
//! writes them after the request's keys. They are folded into the map
//! ([`Additions::fold_into`], which gives exactly the Ruby order) when the request already
//! has one of them — rare: a check definition that sets `output` or `status` — and when the
//! check is needed whole: for a hook (chosen by status, given the check on stdin) and for a
//! built-in's follow-up (the courier's parts).
//!
//! [`ResultPayload`]: super::ResultPayload

use serde::ser::{Serialize, SerializeMap as _, Serializer};
use serde_json::Value;

use super::Object;

/// One added value.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    /// Any JSON value.
    Json(Value),
    /// A static string (no allocation).
    Str(&'static str),
    /// A number of seconds (written as JSON's `Value::from(f64)` writes it: `null` when not
    /// finite).
    Float(f64),
    /// A nested object.
    Fields(Additions),
}

impl Field {
    /// The value as JSON.
    pub fn into_value(self) -> Value {
        match self {
            Self::Json(value) => value,
            Self::Str(s) => Value::from(s),
            Self::Float(f) => Value::from(f),
            Self::Fields(fields) => Value::Object(fields.into_object()),
        }
    }
}

impl<T: Into<Value>> From<T> for Field {
    fn from(value: T) -> Self {
        Self::Json(value.into())
    }
}

impl Serialize for Field {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Json(value) => value.serialize(serializer),
            Self::Str(s) => serializer.serialize_str(s),
            Self::Float(f) if f.is_finite() => serializer.serialize_f64(*f),
            Self::Float(_) => serializer.serialize_unit(),
            Self::Fields(fields) => fields.serialize(serializer),
        }
    }
}

/// Keys with values, in the order they were first set; setting a key again replaces its
/// value in place, as a Ruby hash (and [`Object::insert`]) does.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Additions(Vec<(&'static str, Field)>);

impl Additions {
    /// Nothing added yet, with room for `n` keys.
    pub fn with_capacity(n: usize) -> Self {
        Self(Vec::with_capacity(n))
    }

    /// Set `key` to `value`.
    pub fn set(&mut self, key: &'static str, value: impl Into<Field>) {
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some((_, slot)) => *slot = value,
            None => self.0.push((key, value)),
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Field> {
        self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The keys and values, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Field)> + '_ {
        self.0.iter().map(|(k, v)| (*k, v))
    }

    /// Assign every key into `check` in order: a key it has keeps its place, a new one is
    /// appended (sensu-client's `check[:key] = value`).
    pub fn fold_into(self, check: &mut Object) {
        for (key, value) in self.0 {
            check.insert(key.to_string(), value.into_value());
        }
    }

    /// The additions as a JSON object.
    pub fn into_object(self) -> Object {
        let mut object = Object::with_capacity(self.0.len());
        self.fold_into(&mut object);
        object
    }

    /// Whether `check` has any of these keys (then they must be folded into it to keep their
    /// places). A scan of the check's keys: cheaper than a hashed lookup per added key.
    pub fn overlap(&self, check: &Object) -> bool {
        check.keys().any(|key| self.0.iter().any(|(k, _)| *k == key))
    }
}

impl Serialize for Additions {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (key, value) in self.iter() {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn written_as_the_map_they_fold_into() {
        let mut added = Additions::default();
        added.set("duration", Field::Float(0.012));
        added.set("reason", Field::Str("timeout"));
        added.set("status", 2);
        let mut timings = Additions::default();
        timings.set("dns", Field::Float(1e-6));
        timings.set("total", Field::Float(f64::NAN));
        added.set("timings", Field::Fields(timings));
        added.set("status", 3);
        let written = serde_json::to_string(&added).unwrap();
        assert_eq!(written, r#"{"duration":0.012,"reason":"timeout","status":3,"timings":{"dns":1e-6,"total":null}}"#);
        assert_eq!(serde_json::to_string(&added.clone().into_object()).unwrap(), written);
        assert_eq!(added.get("status"), Some(&Field::Json(json!(3))));
    }

    #[test]
    fn folding_keeps_the_place_of_a_key_the_check_has() {
        let mut check = json!({"name": "a", "status": 0, "command": "x"}).as_object().cloned().unwrap();
        let mut added = Additions::default();
        added.set("output", "out");
        added.set("status", 2);
        assert!(added.overlap(&check));
        added.fold_into(&mut check);
        assert_eq!(serde_json::to_string(&check).unwrap(), r#"{"name":"a","status":2,"command":"x","output":"out"}"#);
        let mut other = Additions::default();
        other.set("duration", 1);
        assert!(!other.overlap(&check));
    }
}
