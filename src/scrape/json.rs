//! Any JSON document, flattened to dotted paths (`a.b.0.c`), as sensu-plugins'
//! metrics-http-json-deep does: numbers as they are, booleans as 1/0, strings skipped.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::{Kind, Page, ParseError, Sample, families_from_samples};

/// Parse and flatten a JSON document.
pub fn parse(body: &[u8]) -> Result<Page<'static>, ParseError> {
    let mut samples = Vec::new();
    for_each_sample(body, |name, value| {
        samples.push(Sample { name: name.to_string().into(), labels: Vec::new(), value });
    })?;
    let families = families_from_samples(&samples, |_| Kind::Gauge);
    Ok(Page { samples, families })
}

/// Walk a JSON document, handing each number (and boolean, as 1/0) to `each` with its dotted
/// path (`value` for a document that is one number), in document order, keeping nothing: no
/// document tree, no samples (a 9.8 MB document of 340,000 numbers took 240 MB as a tree and
/// samples). A key repeated in an object is handed over each time. Invalid JSON anywhere
/// fails the whole document.
pub fn for_each_sample(body: &[u8], mut each: impl FnMut(&str, f64)) -> Result<(), ParseError> {
    let invalid = |e: serde_json::Error| ParseError { format: "json", problem: format!("invalid JSON: {e}") };
    let mut json = serde_json::Deserializer::from_slice(body);
    let mut path = String::new();
    Numbers(Node { path: &mut path, each: &mut each }).deserialize(&mut json).map_err(invalid)?;
    json.end().map_err(invalid)
}

/// How a walk over a JSON document meets a value it reads samples from; [`Numbers`] turns it
/// into a serde seed.
pub(super) trait Walk<'de>: Sized {
    type Value;
    /// A number, or a boolean as 1/0.
    fn number<E>(self, value: f64) -> Result<Self::Value, E>;
    /// A string or a null: no sample.
    fn nothing<E>(self) -> Result<Self::Value, E>;
    fn map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error>;
    fn seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error>;
}

/// A [`Walk`] as a serde seed: the one place that says which JSON values are numbers (for
/// this format and Dropwizard's).
pub(super) struct Numbers<W>(pub W);

impl<'de, W: Walk<'de>> DeserializeSeed<'de> for Numbers<W> {
    type Value = W::Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<W::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, W: Walk<'de>> Visitor<'de> for Numbers<W> {
    type Value = W::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<W::Value, E> {
        self.0.number(f64::from(u8::from(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<W::Value, E> {
        self.0.number(v as f64)
    }

    fn visit_u64<E>(self, v: u64) -> Result<W::Value, E> {
        self.0.number(v as f64)
    }

    fn visit_f64<E>(self, v: f64) -> Result<W::Value, E> {
        self.0.number(v)
    }

    fn visit_str<E>(self, _: &str) -> Result<W::Value, E> {
        self.0.nothing()
    }

    fn visit_unit<E>(self) -> Result<W::Value, E> {
        self.0.nothing()
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<W::Value, A::Error> {
        self.0.map(map)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<W::Value, A::Error> {
        self.0.seq(seq)
    }
}

/// A value at `path`.
struct Node<'w, F> {
    path: &'w mut String,
    each: &'w mut F,
}

impl<'de, F: FnMut(&str, f64)> Walk<'de> for Node<'_, F> {
    type Value = ();

    fn number<E>(self, value: f64) -> Result<(), E> {
        (self.each)(if self.path.is_empty() { "value" } else { self.path }, value);
        Ok(())
    }

    fn nothing<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Node { path, each } = self;
        let len = path.len();
        while let Some(key) = map.next_key_seed(Key)? {
            push(path, &key);
            map.next_value_seed(Numbers(Node { path, each }))?;
            path.truncate(len);
        }
        Ok(())
    }

    fn seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Node { path, each } = self;
        let len = path.len();
        for i in 0usize.. {
            push(path, itoa::Buffer::new().format(i));
            let more = seq.next_element_seed(Numbers(Node { path, each }))?.is_some();
            path.truncate(len);
            if !more {
                break;
            }
        }
        Ok(())
    }
}

/// An object's key, borrowed from the page when it has no escapes (for this format and
/// Dropwizard's).
pub(super) struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Cow<'de, str>, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_string()))
    }
}

fn push(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(key);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattens_to_dotted_paths() {
        let page =
            parse(br#"{"status":"UP","db":{"ok":true,"latency":0.12},"queues":[{"depth":3},{"depth":5}]}"#).unwrap();
        let got: Vec<(&str, f64)> = page.samples.iter().map(|s| (&*s.name, s.value)).collect();
        assert_eq!(got, [("db.ok", 1.0), ("db.latency", 0.12), ("queues.0.depth", 3.0), ("queues.1.depth", 5.0)]);
        assert!(parse(b"{").is_err());
    }

    #[test]
    fn walked_in_document_order_without_a_tree() {
        let doc =
            br#"{"a":{"b":1,"c":[2,{"d":3.5}],"e":"text","f":null,"g":false},"a.b":4,"a":{"b":5},"esc\"aped":-6}"#;
        let mut seen = Vec::new();
        for_each_sample(doc, |name, value| seen.push((name.to_string(), value))).unwrap();
        let seen: Vec<(&str, f64)> = seen.iter().map(|(n, v)| (n.as_str(), *v)).collect();
        assert_eq!(
            seen,
            [
                ("a.b", 1.0),
                ("a.c.0", 2.0),
                ("a.c.1.d", 3.5),
                ("a.g", 0.0),
                ("a.b", 4.0),
                ("a.b", 5.0),
                ("esc\"aped", -6.0)
            ]
        );
        let mut top = Vec::new();
        for_each_sample(b" 7 ", |name, value| top.push((name.to_string(), value))).unwrap();
        assert_eq!(top, [("value".to_string(), 7.0)]);
        for bad in [&b"{\"a\":1,"[..], b"{\"a\":1} x", b"[1,2", b""] {
            let error = for_each_sample(bad, |_, _| ()).unwrap_err();
            assert!(error.problem.starts_with("invalid JSON: "), "{error}");
        }
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        assert!(for_each_sample(deep.as_bytes(), |_, _| ()).unwrap_err().problem.contains("recursion limit"));
    }
}
