//! Token substitution on arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let attrs = serde_json::json!({"name": "fuzz", "nested": {"attribute": true}, "list": ["a", 1], "empty": {}})
        .as_object()
        .cloned()
        .unwrap();
    let _ = concierge::proto::substitute_tokens(data, &attrs);
});
