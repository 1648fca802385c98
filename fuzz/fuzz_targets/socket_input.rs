//! What the 3030 socket does with a buffer: ping, JSON, then Sensu's result validation.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if String::from_utf8_lossy(data).trim() == "ping" {
        return;
    }
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let items = match value {
            serde_json::Value::Array(items) => items,
            other => vec![other],
        };
        for item in items {
            if let serde_json::Value::Object(check) = item {
                let _ = concierge::proto::validate::validate_result(&check);
            }
        }
    }
});
