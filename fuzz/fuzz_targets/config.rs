//! A config document: merged over the defaults, validated, broker and concierge scopes read.
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
    let settings = concierge::config::Settings { raw, loaded_files: Vec::new() };
    let _ = concierge::config::validate::validate(&settings);
    let _ = settings.checks();
    if let Ok(concierge) = settings.concierge()
        && let Some(rabbitmq) = settings.raw.get("rabbitmq")
    {
        let _ = concierge::transport::settings::brokers(rabbitmq, &concierge);
    }
    let _ = concierge::schedule::eligible(&settings.checks(), true);
});
