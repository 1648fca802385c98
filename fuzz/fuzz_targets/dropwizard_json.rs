//! The Dropwizard and generic JSON parsers, and format detection.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = concierge::scrape::detect(Some("application/json"), data);
    let _ = concierge::scrape::dropwizard::parse(data);
    let _ = concierge::scrape::json::parse(data);
});
