//! The Prometheus/OpenMetrics parser, then every output writer.
#![no_main]
use concierge::scrape::output::{OutputFormat, Writer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for openmetrics in [false, true] {
        if let Ok(page) = concierge::scrape::prometheus::parse_with(data, openmetrics) {
            for format in [OutputFormat::Graphite, OutputFormat::Influx, OutputFormat::Opentsdb] {
                let writer = Writer { format, scheme: "s".into(), prefix: "p.".into(), timestamp: 1, host: "h".into() };
                let mut out = String::new();
                for sample in &page.samples {
                    writer.write(&sample.name, sample, &mut out);
                }
            }
        }
    }
});
