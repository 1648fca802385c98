//! Sensu's deep merge (`Sensu::Utilities#deep_merge`, sensu-settings `Loader#deep_merge`).
//!
//! Hashes merge recursively, arrays are concatenated and de-duplicated, and any other
//! value (including a type change) is replaced by the later one. Keys keep the position
//! they had in the first hash; new keys are appended, as Ruby's `Hash#merge` does.

use serde_json::Value;

use super::Object;

/// Merge `two` over `one` and return the result.
pub fn deep_merge(one: &Value, two: &Value) -> Value {
    let mut merged = one.clone();
    merge_value(&mut merged, two);
    merged
}

/// Merge `two` over `one` in place, both being objects.
pub fn deep_merge_into(one: &mut Object, two: &Object) {
    for (key, value) in two {
        match one.get_mut(key) {
            Some(existing) => merge_value(existing, value),
            None => {
                one.insert(key.clone(), value.clone());
            }
        }
    }
}

fn merge_value(target: &mut Value, other: &Value) {
    match (target, other) {
        (Value::Object(a), Value::Object(b)) => deep_merge_into(a, b),
        (Value::Array(a), Value::Array(b)) => {
            for item in b {
                a.push(item.clone());
            }
            dedup_in_order(a);
        }
        (target, other) => *target = other.clone(),
    }
}

/// Ruby's `Array#uniq`: keep the first occurrence of each element.
fn dedup_in_order(items: &mut Vec<Value>) {
    let mut kept: Vec<Value> = Vec::with_capacity(items.len());
    for item in items.drain(..) {
        if !kept.contains(&item) {
            kept.push(item);
        }
    }
    *items = kept;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // Spec §7 item 43.
    #[test]
    fn nested_hashes_merge_and_arrays_concatenate_uniquely() {
        let one = json!({"foo": {"bar": "baz"}, "list": ["one"], "num": 42});
        let two = json!({"foo": {"qux": 1}, "list": ["one", "two", "three"], "num": [42]});
        let merged = deep_merge(&one, &two);
        assert_eq!(merged, json!({"foo": {"bar": "baz", "qux": 1}, "list": ["one", "two", "three"], "num": [42]}));
    }

    #[test]
    fn key_order_follows_the_first_hash() {
        let one = json!({"b": 1, "a": {"y": 1}});
        let two = json!({"c": 3, "a": {"x": 2}, "b": 2});
        let merged = deep_merge(&one, &two);
        assert_eq!(serde_json::to_string(&merged).unwrap(), r#"{"b":2,"a":{"y":1,"x":2},"c":3}"#);
    }

    #[test]
    fn scalar_replaced_by_hash_and_hash_by_scalar() {
        assert_eq!(deep_merge(&json!({"a": 1}), &json!({"a": {"b": 1}})), json!({"a": {"b": 1}}));
        assert_eq!(deep_merge(&json!({"a": {"b": 1}}), &json!({"a": false})), json!({"a": false}));
    }

    proptest::proptest! {
        #[test]
        fn merging_with_itself_is_identity(keys in proptest::collection::vec("[a-c]{1,2}", 0..6), vals in proptest::collection::vec(0i64..3, 0..6)) {
            let mut obj = Object::new();
            for (k, v) in keys.iter().zip(vals.iter()) {
                obj.insert(k.clone(), json!([v, {"k": v}]));
            }
            let value = Value::Object(obj);
            proptest::prop_assert_eq!(deep_merge(&value, &value), value);
        }
    }
}
