//! Token substitution: `:::path.to.attr|default:::` (`Sensu::Utilities#substitute_tokens`
//! and `#object_substitute_tokens`, sensu 1.9.0 `lib/sensu/utilities.rb`).
//!
//! Departure from Sensu, on purpose: Ruby re-encodes the string "from binary to UTF-8"
//! before matching, which strips every byte that is not ASCII, valid UTF-8 included
//! (`echo héllo` would run as `echo hllo`). We remove only bytes that are not valid
//! UTF-8 (the case the re-encoding was meant for) and keep real characters.

use std::sync::LazyLock;

use regex::bytes::Regex;
use serde_json::Value;

use super::{Object, ruby};

/// Three colons, one character that is not a colon, then the shortest run up to the next
/// three colons: Sensu's `/:::([^:].*?):::/`.
static TOKEN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r":::([^:].*?):::").unwrap_or_else(|e| unreachable!("static regex: {e}")));

/// Substitute the tokens in one string. Returns the new string and the names of the
/// tokens that matched nothing and had no default (not de-duplicated, as in Ruby).
pub fn substitute_tokens(input: &[u8], attributes: &Object) -> (String, Vec<String>) {
    let cleaned = drop_invalid_utf8(input);
    let mut unmatched = Vec::new();
    let mut out: Vec<u8> = Vec::with_capacity(cleaned.len());
    let mut last = 0;
    for caps in TOKEN.captures_iter(cleaned.as_bytes()) {
        let (Some(whole), Some(body)) = (caps.get(0), caps.get(1)) else {
            continue;
        };
        out.extend_from_slice(&cleaned.as_bytes()[last..whole.start()]);
        last = whole.end();
        // The regex only splits on ASCII colons, so the body is valid UTF-8.
        let body = String::from_utf8_lossy(body.as_bytes());
        let (token, default) = match body.split_once('|') {
            Some((token, default)) => (token, Some(default)),
            None => (body.as_ref(), None),
        };
        match find_attribute_value(attributes, token).or(default.map(str::to_string)) {
            Some(value) => out.extend_from_slice(value.as_bytes()),
            None => unmatched.push(token.to_string()),
        }
    }
    out.extend_from_slice(&cleaned.as_bytes()[last..]);
    (String::from_utf8_lossy(&out).into_owned(), unmatched)
}

/// Substitute tokens in every string of a JSON value (hash values and array items,
/// recursively; keys and non-string scalars are left alone). Returns the de-duplicated
/// unmatched token names.
pub fn object_substitute_tokens(value: &mut Value, attributes: &Object) -> Vec<String> {
    let mut unmatched = Vec::new();
    walk(value, attributes, &mut unmatched);
    let mut seen = Vec::new();
    for name in unmatched {
        if !seen.contains(&name) {
            seen.push(name);
        }
    }
    seen
}

/// Whether any string in the object (hash values and array items, recursively) holds a
/// token, i.e. whether [`object_substitute_tokens`] could change it.
pub fn object_has_tokens(object: &Object) -> bool {
    // One searcher for every request: `str::contains` built one per string (a tenth of the
    // executor's own instructions for a built-in check).
    static MARKER: LazyLock<memchr::memmem::Finder<'static>> = LazyLock::new(|| memchr::memmem::Finder::new(":::"));
    fn has(value: &Value) -> bool {
        match value {
            Value::Object(map) => map.values().any(has),
            Value::Array(items) => items.iter().any(has),
            Value::String(s) => MARKER.find(s.as_bytes()).is_some(),
            _ => false,
        }
    }
    object.values().any(has)
}

fn walk(value: &mut Value, attributes: &Object, unmatched: &mut Vec<String>) {
    match value {
        Value::Object(map) => map.values_mut().for_each(|v| walk(v, attributes, unmatched)),
        Value::Array(items) => items.iter_mut().for_each(|v| walk(v, attributes, unmatched)),
        Value::String(s) if s.contains(":::") => {
            let (new, missing) = substitute_tokens(s.as_bytes(), attributes);
            *s = new;
            unmatched.extend(missing);
        }
        _ => {}
    }
}

/// `find_attribute_value`: descend while the value is a hash. A path that ends on a hash
/// (even `{}`), a missing key or `null` finds nothing.
fn find_attribute_value(attributes: &Object, token: &str) -> Option<String> {
    // Ruby's `split(".")` drops trailing empty fields; an empty path looks up `nil`.
    let mut path: Vec<&str> = token.split('.').collect();
    while path.last() == Some(&"") {
        path.pop();
    }
    let mut tree = attributes;
    let mut segments = path.into_iter();
    loop {
        let value = tree.get(segments.next()?)?;
        match value {
            Value::Object(map) => tree = map,
            Value::Null => return None,
            other => return Some(ruby::to_s(other)),
        }
    }
}

fn drop_invalid_utf8(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len());
    for chunk in input.utf8_chunks() {
        out.push_str(chunk.valid());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_tokens_where_substitution_would_look() {
        let object = |v: serde_json::Value| v.as_object().cloned().expect("object");
        assert!(!object_has_tokens(&object(
            serde_json::json!({"name": "api", "interval": 10, "http": {"url": "http://h/"}})
        )));
        assert!(object_has_tokens(&object(serde_json::json!({"http": {"url": "http://:::address|h:::/"}}))));
        assert!(object_has_tokens(&object(serde_json::json!({"args": [1, ["x", ":::a:::"]]}))));
        // Keys are never substituted.
        assert!(!object_has_tokens(&object(serde_json::json!({":::key:::": "plain"}))));
    }
    use serde_json::json;

    fn attrs() -> Object {
        json!({"nested": {"attribute": true}, "empty": {}, "foo": true}).as_object().cloned().unwrap()
    }

    // Spec §3.3 and §7 item 45: the exact vector from sensu's spec/utilities_spec.rb.
    #[test]
    fn spec_vector_substitutes_exactly() {
        let input: &[u8] = b":::nested.attribute|default::: :::missing|default::: :::missing|::: :::missing::: :::nested.attribute:::::::nested.attribute::: :::empty|localhost::: :::empty.hash|localhost:8080::: :::foo\xAD|default::: :::empty|default|with_pipe:::";
        let (out, unmatched) = substitute_tokens(input, &attrs());
        assert_eq!(out, "true default   true:true localhost localhost:8080 true default|with_pipe");
        assert_eq!(unmatched, vec!["missing".to_string()]);
    }

    #[test]
    fn seven_colons_leave_one_literal_colon() {
        let a = json!({"a": "A", "b": "B"}).as_object().cloned().unwrap();
        assert_eq!(substitute_tokens(b":::a:::::::b:::", &a).0, "A:B");
    }

    // Spec §7 item 10.
    #[test]
    fn object_substitution_recurses_and_dedups() {
        let client = json!({"name": "i-424242"}).as_object().cloned().unwrap();
        let mut check = json!({
            "command": "echo :::nonexistent|true:::",
            "foo": [":::missing|foo:::", ":::missing:::"],
            "nested": {"a": ":::missing|qux:::", "b": ":::name:::", "c": ":::nonexistent:::", "n": 5},
            "again": ":::missing:::"
        });
        let unmatched = object_substitute_tokens(&mut check, &client);
        assert_eq!(check["command"], "echo true");
        assert_eq!(check["foo"], json!(["foo", ""]));
        assert_eq!(check["nested"]["a"], "qux");
        assert_eq!(check["nested"]["b"], "i-424242");
        assert_eq!(check["nested"]["n"], 5);
        assert_eq!(unmatched, vec!["missing".to_string(), "nonexistent".to_string()]);
    }

    #[test]
    fn non_ascii_characters_are_kept() {
        let a = json!({"x": "é"}).as_object().cloned().unwrap();
        assert_eq!(substitute_tokens("héllo :::x:::".as_bytes(), &a).0, "héllo é");
    }

    #[test]
    fn arrays_and_numbers_render_like_ruby_to_s() {
        let a = json!({"list": ["a", "b"], "n": 3}).as_object().cloned().unwrap();
        assert_eq!(substitute_tokens(b":::list::: :::n:::", &a).0, r#"["a", "b"] 3"#);
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_strings_without_tokens_pass_through(s in "\\PC*") {
            let (out, unmatched) = substitute_tokens(s.as_bytes(), &attrs());
            if !s.contains(":::") {
                proptest::prop_assert_eq!(out, s);
                proptest::prop_assert!(unmatched.is_empty());
            }
        }
    }
}
