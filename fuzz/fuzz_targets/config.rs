//! A config document: merged over the defaults, validated, and built into typed settings.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(serde_json::Value::Object(doc)) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let mut raw = serde_json::json!({"client": {"name": "fuzz", "address": "127.0.0.1", "subscriptions": []},
        "sensu": {"spawn": {"limit": 12}}, "transport": {"name": "rabbitmq"},
        "checks": {}, "filters": {}, "mutators": {}, "handlers": {}, "extensions": {}})
    .as_object()
    .cloned()
    .unwrap();
    concierge::proto::deep_merge_into(&mut raw, &doc);
    let loaded = concierge::config::Loaded { raw, loaded_files: Vec::new(), has_broker: false };
    let _ = loaded.failures();
    // Validated or not, building the typed settings never panics.
    if let Ok(settings) = loaded.clone().validate() {
        let _ = concierge::schedule::eligible(&settings.checks, true);
    }
    if let Ok(settings) = loaded.build() {
        let _ = concierge::schedule::eligible(&settings.checks, true);
    }
});
