//! A message on a subscription queue: parsed as sensu-client would, then its tokens
//! substituted against client attributes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = concierge::client::requests::parse(data, 1024 * 1024) {
        let attrs = serde_json::json!({"name": "fuzz", "nested": {"a": true}, "empty": {}}).as_object().cloned().unwrap();
        let mut value = serde_json::Value::Object(request);
        let _ = concierge::proto::object_substitute_tokens(&mut value, &attrs);
    }
});
