//! The courier against real loopback endpoints serving fixture pages: exact converted
//! lines, one timestamp, filters, the delivery report, bad input, and the whole shot
//! through the private broker.

mod support;

use std::sync::Mutex;
use std::time::Duration;

use concierge::checks::executor::Processed;
use concierge::client::pipeline::publish;
use concierge::proto::{Object, ResultPayload};
use concierge::transport::sink::Sink;
use serde_json::{Value, json};
use support::fixtures::FixtureServer;
use support::obj;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// Records what would be published.
#[derive(Default)]
struct Recorder(Mutex<Vec<Object>>);

impl Sink for Recorder {
    fn publish(
        &self,
        payload: ResultPayload,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + '_>> {
        Box::pin(async move {
            self.0.lock().unwrap().push(payload.into_check());
            true
        })
    }
}

/// Run a courier check through the executor and deliver it; returns what was published.
async fn shot(params: Value) -> Vec<Object> {
    shot_of(json!({"name": "app", "type": "metric", "extension": "courier", "courier": params, "handlers": ["graphite"], "issued": 1})).await
}

/// Run a courier definition through the executor and deliver it; returns what was published.
async fn shot_of(definition: Value) -> Vec<Object> {
    let executor = support::executor::Builder::default().builtin_limit(10).builtins().build();
    let check = obj(definition);
    let Processed::Result(finished) = executor.process_until(check, &Default::default()).await else {
        panic!("not run")
    };
    let recorder = Recorder::default();
    publish(&recorder, finished).await;
    recorder.0.into_inner().unwrap()
}

fn lines(check: &Object) -> Vec<String> {
    check["output"].as_str().unwrap().lines().map(str::to_string).collect()
}

/// All lines end with one and the same timestamp; returns it and the lines without it.
fn strip_timestamp(lines: &[String]) -> (i64, Vec<String>) {
    let ts = lines[0].rsplit(' ').next().unwrap().to_string();
    assert!(lines.iter().all(|l| l.ends_with(&format!(" {ts}"))), "one timestamp for the whole shot");
    (ts.parse().unwrap(), lines.iter().map(|l| l[..l.len() - ts.len() - 1].to_string()).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spring_boot_actuator_page_converts_exactly() {
    let server = FixtureServer::start(vec![(
        "/actuator/prometheus",
        "text/plain; version=0.0.4; charset=utf-8",
        fixture("spring-actuator-prometheus.txt"),
    )]);
    let published = shot(json!({"url": server.url("/actuator/prometheus")})).await;
    assert_eq!(published.len(), 2, "the metric result, then the delivery report");
    let (metric, report) = (&published[0], &published[1]);
    assert_eq!(metric["name"], "app");
    assert_eq!(metric["type"], "metric");
    assert_eq!(metric["status"], 0);
    let (ts, body) = strip_timestamp(&lines(metric));
    assert!((chrono::Utc::now().timestamp() - ts).abs() < 10);
    let p = "probe-1.app.";
    let expected = [
        "jvm_memory_used_bytes.area.heap.id.G1_Survivor_Space 4194304",
        "jvm_memory_used_bytes.area.heap.id.G1_Old_Gen 27262976",
        "jvm_memory_used_bytes.area.nonheap.id.Metaspace 62185712",
        "process_uptime_seconds 3521.764",
        "http_server_requests_seconds_count.exception.None.method.GET.outcome.SUCCESS.status.200.uri._api_orders 1523",
        "http_server_requests_seconds_sum.exception.None.method.GET.outcome.SUCCESS.status.200.uri._api_orders 42.117683",
        "http_server_requests_seconds_count.exception.None.method.GET.outcome.SERVER_ERROR.status.500.uri._api_orders 7",
        "http_server_requests_seconds_sum.exception.None.method.GET.outcome.SERVER_ERROR.status.500.uri._api_orders 1.2043",
        "http_server_requests_seconds_max.exception.None.method.GET.outcome.SUCCESS.status.200.uri._api_orders 0.231",
        "http_server_requests_seconds_max.exception.None.method.GET.outcome.SERVER_ERROR.status.500.uri._api_orders 0",
        "hikaricp_connections_pending.pool.HikariPool-1 0",
        "logback_events_total.level.warn 12",
        "logback_events_total.level.error 3",
        "tomcat_sessions_active_current_sessions 0",
        "http_client_requests_seconds_bucket.client_name.payments.le.0_05 90",
        "http_client_requests_seconds_bucket.client_name.payments.le.0_1 98",
        "http_client_requests_seconds_bucket.client_name.payments.le._Inf 100",
        "http_client_requests_seconds_count.client_name.payments 100",
        "http_client_requests_seconds_sum.client_name.payments 3.81",
        "jvm_gc_pause_seconds_count.action.end_of_minor_GC.cause.G1_Evacuation_Pause 24",
        "jvm_gc_pause_seconds_sum.action.end_of_minor_GC.cause.G1_Evacuation_Pause 0.183",
    ];
    let expected: Vec<String> = expected.iter().map(|l| format!("{p}{l}")).collect();
    assert_eq!(body, expected);

    assert_eq!(report["name"], "app.delivery");
    assert_eq!(report["type"], "standard");
    assert_eq!(report["status"], 0);
    assert!(report.get("handlers").is_none(), "the metric handlers are not the report's");
    let output = report["output"].as_str().unwrap();
    let re = regex::Regex::new(
        r"^COURIER OK: 21 metrics, \d+\.\d kB, scrape \d+ ms, convert \d+ ms, delivery \d+ ms, 1 non-finite values skipped \| metrics=21;;;0 bytes=\d+B;;;0 scrape=[\d.]+s;;;0 convert=[\d.]+s;;;0 delivery=[\d.]+s;;;0 total=[\d.]+s;;;0\n$",
    )
    .unwrap();
    assert!(re.is_match(output), "{output}");
    assert_eq!(report["probe"]["format"], "prometheus");
    assert_eq!(report["probe"]["skipped"], 1);
    assert_eq!(report["probe"]["bytes"], metric["output"].as_str().unwrap().len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropwizard_servlet_to_influx_and_json_to_opentsdb() {
    let server = FixtureServer::start(vec![
        ("/metrics", "application/json", fixture("dropwizard-metrics.json")),
        ("/health", "application/json", br#"{"status":"UP","db":{"ok":true,"latency":0.012}}"#.to_vec()),
    ]);
    let published = shot(json!({"url": server.url("/metrics"), "output": "influx", "prefix": "svc."})).await;
    let (ts, body) = strip_timestamp(&lines(&published[0]));
    assert_eq!(ts % 1_000_000_000, 0, "nanoseconds");
    assert_eq!(body.len(), 2 + 1 + 11 + 5 + 15, "numeric fields only: {body:?}");
    assert_eq!(body[0], "svc.jvm.memory.heap.used value=123456789");
    assert!(body.contains(&"svc.orders.create.p99 value=0.17".to_string()));
    assert!(body.contains(&"svc.ch.qos.logback.core.Appender.error.m1_rate value=0".to_string()));
    assert_eq!(published[1]["probe"]["format"], "dropwizard");

    let published = shot(json!({"url": server.url("/health"), "output": "opentsdb"})).await;
    let got = lines(&published[0]);
    let ts = got[0].split(' ').nth(2).unwrap().to_string();
    assert_eq!(got, [format!("put db.ok {ts} 1 host=probe-1"), format!("put db.latency {ts} 0.012 host=probe-1")]);
    assert_eq!(published[1]["probe"]["format"], "json");
}

// A definition that forgot `"type": "metric"` still publishes a metric result (sensu-server
// runs metric handlers on OK results only for that type); one that says otherwise is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_lines_are_a_metric_result_even_without_the_type() {
    let server = FixtureServer::start(vec![("/m", "text/plain", fixture("spring-actuator-prometheus.txt"))]);
    let forgot = json!({"name": "app", "extension": "courier", "courier": {"url": server.url("/m")}, "issued": 1});
    let published = shot_of(forgot).await;
    assert_eq!(published[0]["type"], "metric");
    assert_eq!(published[1]["type"], "standard", "the delivery report stays a standard result");
    let standard = json!({"name": "app", "type": "standard", "extension": "courier", "courier": {"url": server.url("/m")}, "issued": 1});
    assert_eq!(shot_of(standard).await[0]["type"], "standard");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn include_exclude_and_rename() {
    let server = FixtureServer::start(vec![("/m", "text/plain", fixture("spring-actuator-prometheus.txt"))]);
    let published = shot(json!({
        "url": server.url("/m"), "scheme": "prod.orders",
        "include": "^(jvm_|logback_)", "exclude": "gc_pause",
        "rename": [{"pattern": "^jvm_memory_used_bytes$", "replacement": "heap_bytes"}, {"pattern": "^logback_", "replacement": "log_"}]
    }))
    .await;
    let (_, body) = strip_timestamp(&lines(&published[0]));
    assert_eq!(
        body,
        [
            "prod.orders.heap_bytes.area.heap.id.G1_Survivor_Space 4194304",
            "prod.orders.heap_bytes.area.heap.id.G1_Old_Gen 27262976",
            "prod.orders.heap_bytes.area.nonheap.id.Metaspace 62185712",
            "prod.orders.log_events_total.level.warn 12",
            "prod.orders.log_events_total.level.error 3",
        ]
    );
    assert!(published[1]["output"].as_str().unwrap().starts_with("COURIER OK: 5 metrics, "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gives_a_clear_status_and_nothing_to_the_metric_handlers() {
    let mut big = b"# TYPE big gauge\n".to_vec();
    while big.len() < 50 * 1024 * 1024 {
        big.extend_from_slice(b"big{instance=\"0123456789abcdef0123456789\"} 1\n");
    }
    // A long key repeated in every path: a 16 KB page whose output would be 33 MB.
    let long_key = format!("{{\"{}\": [{}1]}}", "k".repeat(8192), "1,".repeat(3999)).into_bytes();
    let server = FixtureServer::start(vec![
        ("/long-key", "application/json", long_key),
        // Short names under a long scheme: 12 times the page written, and nothing wrong with it.
        ("/array", "application/json", format!("[{}0]", (1..100_000).map(|i| format!("{i},")).collect::<String>()).into_bytes()),
        ("/truncated", "text/plain", b"ok 1\nhttp_requests_total{method=\"GE".to_vec()),
        ("/utf8", "text/plain", b"ok 1\nbad\xff 2\n".to_vec()),
        ("/om", "application/openmetrics-text; version=1.0.0", b"# TYPE a counter\na_total 1\n".to_vec()),
        ("/dupes", "text/plain", b"x{a=\"1\"} 1\nx{a=\"1\"} 2\ny 3\n".to_vec()),
        // Written as it is read: a bad line after good ones still refuses the whole page.
        ("/late", "text/plain", b"ok 1\nfine{a=\"1\"} 2\nbroken{a=\"x\" 1\nafter 3\n".to_vec()),
        // The same series however it is spaced or escaped; labels in another order are another.
        (
            "/series",
            "text/plain",
            b"x{a=\"1\",b=\"2\"} 1\nx{b=\"2\",a=\"1\"} 2\nx{ a = \"1\" , b=\"2\" } 3\ne{p=\"C:\\\\DIR\"} 1\ne{p=\"C:\\\\DIR\"} 2\ne{p=\"C:\\\\dir\"} 3\ny 3\ny 4\n"
                .to_vec(),
        ),
        ("/nan", "text/plain", b"x NaN\ny +Inf\n".to_vec()),
        ("/garbage", "application/json", b"{\"unterminated\": ".to_vec()),
        // Written as it is read, too: invalid JSON after good numbers refuses the document.
        ("/json-late", "application/json", b"{\"a\": 1, \"b\": {\"c\": 2}, ]".to_vec()),
        // A path met again (a repeated key, a dotted key) is a duplicate: the first is written.
        ("/json-dupes", "application/json", b"{\"a\":{\"b\":1},\"a.b\":2,\"c\":[true,null,\"x\"],\"a\":{\"b\":3}}".to_vec()),
        ("/big", "text/plain", big),
    ]);
    let cases = [
        ("/truncated", json!({}), 2, "parse", "the page is truncated"),
        ("/utf8", json!({}), 2, "parse", "not valid UTF-8"),
        ("/late", json!({}), 2, "parse", "line 3: expected , or } after label a"),
        ("/om", json!({}), 2, "parse", "no # EOF"),
        ("/nan", json!({}), 2, "empty", "no metric left"),
        ("/garbage", json!({}), 2, "parse", "invalid JSON"),
        ("/json-late", json!({}), 2, "parse", "invalid JSON: key must be a string at line 1 column 25"),
        (
            "/long-key",
            json!({}),
            2,
            "output_size",
            "long-key passed 1178168 bytes, 8 times the page (max_output_bytes sets",
        ),
        ("/dupes", json!({"max_output_bytes": 40}), 2, "output_size", "passed 40 bytes"),
        ("/big", json!({}), 2, "body_size", "body larger than 33554432 bytes"),
        ("/missing", json!({}), 2, "status", "answered HTTP 404"),
    ];
    for (path, extra, status, reason, words) in cases {
        let mut params = json!({"url": server.url(path)});
        for (k, v) in extra.as_object().unwrap() {
            params[k] = v.clone();
        }
        let published = shot(params).await;
        assert_eq!(published.len(), 1, "{path}: only the report");
        let report = &published[0];
        assert_eq!(report["name"], "app.delivery");
        assert_eq!(
            (report["status"].clone(), report["reason"].clone()),
            (json!(status), json!(reason)),
            "{path}: {}",
            report["output"]
        );
        let output = report["output"].as_str().unwrap();
        assert!(output.starts_with("COURIER CRITICAL: ") && output.contains(words), "{path}: {output}");
    }
    let published = shot(json!({"url": server.url("/dupes")})).await;
    assert_eq!(published.len(), 2);
    assert_eq!(lines(&published[0]).len(), 2);
    assert_eq!((published[1]["status"].clone(), published[1]["reason"].clone()), (json!(1), json!("duplicate_series")));
    assert!(published[1]["output"].as_str().unwrap().contains(", 1 duplicate series dropped"));
    let published = shot(json!({"url": server.url("/series")})).await;
    let (_, written) = strip_timestamp(&lines(&published[0]));
    assert_eq!(
        written,
        [
            "probe-1.app.x.a.1.b.2 1",
            "probe-1.app.x.b.2.a.1 2",
            "probe-1.app.e.p.C:_DIR 1",
            "probe-1.app.e.p.C:_dir 3",
            "probe-1.app.y 3"
        ]
    );
    assert!(published[1]["output"].as_str().unwrap().contains(", 3 duplicate series dropped"));

    let published = shot(json!({"url": server.url("/json-dupes"), "output": "influx"})).await;
    let (_, written) = strip_timestamp(&lines(&published[0]));
    assert_eq!(written, ["a.b value=1", "c.0 value=1"]);
    assert_eq!((published[1]["status"].clone(), published[1]["reason"].clone()), (json!(1), json!("duplicate_series")));
    assert!(published[1]["output"].as_str().unwrap().contains(", 2 duplicate series dropped"));

    let scheme = "a-rather-long-client-name.eu-west-1.compute.internal.app_metrics";
    let published = shot(json!({"url": server.url("/array"), "scheme": scheme})).await;
    assert_eq!(published[1]["status"], 0, "{}", published[1]["output"]);
    let written = published[0]["output"].as_str().unwrap();
    assert_eq!(written.lines().count(), 100_000);
    assert!(written.len() > 12 * 588_891, "{} bytes", written.len());

    let refused = shot(json!({"url": "http://127.0.0.1:1/metrics"})).await;
    assert_eq!(refused[0]["reason"], "connect");
    let web = support::web::TestServer::http().await;
    let slow = shot(json!({"url": web.url_for("/delay/3000"), "timeout": 0.3})).await;
    assert_eq!(slow[0]["reason"], "timeout");
    assert!(slow[0]["output"].as_str().unwrap().contains("timed out after 0.3 s"));
    let bad = shot(json!({"url": server.url("/dupes"), "include": "("})).await;
    assert_eq!((bad[0]["status"].clone(), bad[0]["reason"].clone()), (json!(2), json!("parameters")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_output_shares_one_timestamp() {
    let page: String = (0..3000).map(|i| format!("metric_{i} {i}\n")).collect();
    let server = FixtureServer::start(vec![("/m", "text/plain", page.into_bytes())]);
    let published = shot(json!({"url": server.url("/m"), "max_message_size": 16384})).await;
    let (parts, report) = published.split_at(published.len() - 1);
    assert!(parts.len() > 3, "{} parts", parts.len());
    let all: Vec<String> = parts.iter().flat_map(lines).collect();
    assert_eq!(all.len(), 3000);
    strip_timestamp(&all);
    for (i, part) in parts.iter().enumerate() {
        assert_eq!(part["part"], format!("{}/{}", i + 1, parts.len()));
        assert!(serde_json::to_vec(part).unwrap().len() <= 16384);
    }
    assert!(report[0]["output"].as_str().unwrap().contains(&format!(" in {} parts", parts.len())));
}

#[test]
fn cli_check_and_discover() {
    let server =
        FixtureServer::start(vec![("/actuator/prometheus", "text/plain", fixture("spring-actuator-prometheus.txt"))]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("courier.json");
    std::fs::write(
        &file,
        json!({"checks": {"orders": {"type": "metric", "extension": "courier", "courier": {"url": server.url("/actuator/prometheus"), "include": "^logback"}, "interval": 10}}}).to_string(),
    )
    .unwrap();
    let run = |args: &[&str]| support::bin::run(dir.path(), args);
    let out = run(&["check", file.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("cli.orders.logback_events_total.level.warn 12 "));
    assert!(lines[2].starts_with("COURIER OK: 2 metrics, "));
    assert_eq!(out.status.code(), Some(0));

    let out = run(&["courier", "discover", &server.url("/actuator/prometheus")]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("# 9 families, 22 samples, prometheus, scraped in "), "{text}");
    let row = text.lines().find(|l| l.starts_with("http_server_requests_seconds ")).unwrap();
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols, ["http_server_requests_seconds", "summary", "4", "exception,method,outcome,status,uri"]);
    let out = run(&["courier", "discover", "http://127.0.0.1:1/"]);
    assert_eq!(out.status.code(), Some(2));
}

/// A generated page with `n` samples (about 45 bytes each, labels included).
fn big_page(n: usize) -> Vec<u8> {
    let mut page = String::with_capacity(n * 50);
    for f in 0..(n / 100) {
        page.push_str(&format!("# HELP family_{f} A family.\n# TYPE family_{f} gauge\n"));
        for i in 0..100 {
            page.push_str(&format!("family_{f}{{instance=\"i{i}\",job=\"app\"}} {}.5\n", f * 100 + i));
        }
    }
    page.into_bytes()
}

// The whole shot through the private broker: the metric result is published and
// confirmed, then the delivery report; 34,000 metrics in one result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_four_thousand_metrics_in_one_shot_through_the_broker() {
    let page = big_page(34_000);
    assert!(page.len() > 1_400_000, "{} bytes", page.len());
    let server = FixtureServer::start(vec![("/metrics", "text/plain; version=0.0.4", page)]);
    let broker = support::ServerSide::connect().await;
    let mut results = broker.tap_results().await;
    let rr = format!("roundrobin:{}", support::unique("courier"));
    let name = support::unique("courier");
    let client = support::Client::start(&name, &[&rr], &[]);
    client.ready().await;
    broker
        .publish_request(&rr, &json!({"name": "app", "type": "metric", "extension": "courier", "courier": {"url": server.url("/metrics"), "critical": 10}, "issued": 1}))
        .await;
    let (metric, _) = results.next_for(&name, Duration::from_secs(30)).await.expect("metric result");
    assert_eq!(metric["check"]["name"], "app");
    let output = metric["check"]["output"].as_str().unwrap();
    let lines: Vec<String> = output.lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 34_000);
    strip_timestamp(&lines);
    let (report, _) = results.next_for(&name, Duration::from_secs(30)).await.expect("delivery report");
    let check = &report["check"];
    assert_eq!(check["name"], "app.delivery");
    assert_eq!(check["status"], 0, "{}", check["output"]);
    assert!(check["output"].as_str().unwrap().starts_with("COURIER OK: 34000 metrics, "), "{}", check["output"]);
    assert!(check["timings"]["delivery"].as_f64().unwrap() > 0.0);
}
