//! How Ruby turns JSON-parsed values into strings (`to_s`), which is what Sensu
//! substitutes for a token whose attribute is not a string.

use serde_json::Value;

/// Ruby's `to_s` for a value parsed by Oj with symbol keys: strings as-is, `nil` as
/// the empty string, arrays and hashes in `inspect` form (`["a", 1]`, `{:k=>"v"}`).
pub fn to_s(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => inspect(other),
    }
}

/// Ruby's `inspect`.
pub fn inspect(value: &Value) -> String {
    match value {
        Value::Null => "nil".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number(n),
        Value::String(s) => inspect_str(s),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(inspect).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Object(map) => {
            let parts: Vec<String> =
                map.iter().map(|(k, v)| format!("{}=>{}", inspect_symbol(k), inspect(v))).collect();
            format!("{{{}}}", parts.join(", "))
        }
    }
}

fn number(n: &serde_json::Number) -> String {
    if let Some(f) = n.as_f64().filter(|_| n.is_f64())
        && f.is_finite()
        && f.fract() == 0.0
        && f.abs() < 1e16
    {
        return format!("{f:.1}");
    }
    n.to_string()
}

fn inspect_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '#' => out.push('#'),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\x{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn inspect_symbol(key: &str) -> String {
    let simple = !key.is_empty()
        && !key.as_bytes()[0].is_ascii_digit()
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if simple { format!(":{key}") } else { format!(":{}", inspect_str(key)) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_and_collections_render_as_ruby_would() {
        assert_eq!(to_s(&json!(true)), "true");
        assert_eq!(to_s(&json!(42)), "42");
        assert_eq!(to_s(&json!(1.0)), "1.0");
        assert_eq!(to_s(&json!(2.5)), "2.5");
        assert_eq!(to_s(&json!(["a", "b"])), r#"["a", "b"]"#);
        assert_eq!(to_s(&json!([1, null, false])), "[1, nil, false]");
        assert_eq!(to_s(&json!({"a": 1, "b-c": "x"})), r#"{:a=>1, :"b-c"=>"x"}"#);
    }
}
