//! Plugin command lines run natively, side by side with the real plugins on the same loopback
//! targets: Debian's monitoring-plugins `check_tcp`, `check_http`, `check_curl` and `check_dns`
//! (installed by the test command; `check_dns` asks servers on port 53, so as root). The
//! status and the text up to the timing figures must match; the native path says so in the
//! result (`runner`), an option it does not run forks the real plugin, and without the plugin
//! installed it is UNKNOWN, saying why.

mod support;

use concierge::proto::Object;
use serde_json::{Value, json};
use support::tcp::server;
use support::{obj, output};

const CHECK_TCP: &str = "/usr/lib/nagios/plugins/check_tcp";

/// The real plugin, if this machine has it (CI must).
fn real_plugin() -> bool {
    installed(CHECK_TCP, "monitoring-plugins-basic")
}

/// Whether `plugin` is installed (CI must have its package: scripts/test.sh installs it).
fn installed(plugin: &str, package: &str) -> bool {
    let there = std::path::Path::new(plugin).exists();
    assert!(there || std::env::var("CI").is_err(), "CI must have {package} (scripts/test.sh installs it)");
    if !there {
        eprintln!("SKIPPED: no {plugin} ({package})");
    }
    there
}

async fn run(command: &str, native: bool) -> Object {
    let executor = support::executor::Builder::default().native_plugins(native).build();
    let check = obj(json!({"name": "port", "command": command, "issued": 1}));
    executor.process(check).await.unwrap()
}

/// The text with the measured figures blanked: `0.001 second`, `time=…s`, curl's `after 0 ms`
/// and `after 1001 milliseconds`.
fn untimed(text: &str) -> String {
    let seconds = regex::Regex::new(r"\d+\.\d{3} seconds?").unwrap();
    let perf = regex::Regex::new(r"time=\d+\.\d{6}s").unwrap();
    let after = regex::Regex::new(r"after \d+ (ms|milliseconds)").unwrap();
    let text = perf.replace_all(&seconds.replace_all(text, "N second"), "time=Ns").into_owned();
    after.replace_all(&text, "after N $1").into_owned()
}

/// Each of `cases` (the arguments) given to `plugin` (the real one's path) natively and forked
/// at the same time: the native path ran (`runner`), the fork ran the plugin itself, and the
/// status and the text but for the measured times are the same.
async fn side_by_side(plugin: &str, cases: &[String]) {
    let name = plugin.rsplit('/').next().unwrap();
    for args in cases {
        let command = format!("{plugin} {args}");
        let (native, forked) = tokio::join!(run(&command, true), run(&command, false));
        assert_eq!(native["runner"], format!("native:{name}"), "{command}");
        assert!(forked.get("runner").is_none(), "{command}: the plugin itself ran");
        assert_eq!(
            (native["status"].clone(), untimed(output(&native))),
            (forked["status"].clone(), untimed(output(&forked))),
            "{command}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_tcp_natively_says_what_the_plugin_says() {
    if !real_plugin() {
        return;
    }
    let ssh = server("SSH-2.0-ConciergeTest\r\n", None);
    let smtp = server("220 smtp.test ESMTP\r\n", Some(("HELO", "250 hello\r\n")));
    let closed = support::tcp::closed_port();
    let cases = [
        format!("-H 127.0.0.1 -p {ssh}"),
        format!("-H 127.0.0.1 -p {ssh} -e SSH"),
        format!("-H 127.0.0.1 -p {ssh} -e SSH-2.0 -e 220"),
        format!("-H 127.0.0.1 -p {ssh} -e SSH -e 220 -A"),
        format!("-H 127.0.0.1 -p {ssh} -e FOO"),
        format!("-H 127.0.0.1 -p {ssh} -e FOO -M crit"),
        format!("-H 127.0.0.1 -p {ssh} -e FOO -M ok"),
        format!("-H 127.0.0.1 -p {ssh} -e FOO -w 1 -c 3"),
        format!("-H 127.0.0.1 -p {ssh} -e FOO -w 1 -c 1.5"),
        format!("-H 127.0.0.1 -p {ssh} -e FOO -w 1 -c 3 -M crit"),
        format!("-H 127.0.0.1 -p {ssh} -e FOO -w 1 -c 3 -M ok"),
        format!("-H 127.0.0.1 -p {ssh} -e FOO -w 5 -M ok"),
        format!("-H 127.0.0.1 -p {ssh} -e SSH -j"),
        format!("-H localhost -p {ssh}"),
        format!("127.0.0.1 -p {ssh}"),
        format!("--hostname=127.0.0.1 --port={ssh} --expect=SSH"),
        format!("-H 127.0.0.1 -p {ssh} -w 0.000001 -c 5"),
        format!("-H 127.0.0.1 -p {ssh} -c 0.000001"),
        format!("-H 127.0.0.1 -p {ssh} -w 5 -c 10 -t 3"),
        format!("-H 127.0.0.1 -p {smtp} -s 'HELO x\r\n' -e 250"),
        format!("-H 127.0.0.1 -p {smtp} -e 220 -q QUIT"),
        format!("-H 127.0.0.1 -p {closed}"),
        format!("-H 127.0.0.1 -p {closed} -r warn"),
        format!("-H 127.0.0.1 -p {closed} -r ok"),
    ];
    side_by_side(CHECK_TCP, &cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_native_path_does_not_run_is_forked_or_unknown() {
    if !real_plugin() {
        return;
    }
    let ssh = server("SSH-2.0-ConciergeTest\r\n", None);
    // An option the native path does not run: the real plugin runs, and says so.
    let r = run(&format!("{CHECK_TCP} -H 127.0.0.1 -p {ssh} -E"), true).await;
    assert_eq!(r["runner"], "fork");
    assert_eq!(r["status"], 0, "{}", output(&r));
    assert!(output(&r).starts_with("TCP OK - "), "{}", output(&r));
    // …and without the plugin installed: UNKNOWN, naming the option.
    let r = run(&format!("/nonexistent/check_tcp -H 127.0.0.1 -p {ssh} -E"), true).await;
    assert_eq!((r["status"].clone(), r["runner"].clone()), (json!(3), json!("native:check_tcp")));
    assert_eq!(output(&r), "UNKNOWN: check_tcp: option -E is not supported natively and check_tcp is not installed\n");
    // Shell syntax beyond a simple command: the shell runs it (the pipe proves it).
    let r = run(&format!("{CHECK_TCP} -H 127.0.0.1 -p {ssh} | tr OK ok"), true).await;
    assert!(r.get("runner").is_none());
    assert!(output(&r).starts_with("TCP ok - "), "{}", output(&r));
    // Natively even when the plugin is not installed at all.
    let r = run(&format!("/nonexistent/check_tcp -H 127.0.0.1 -p {ssh}"), true).await;
    assert_eq!((r["status"].clone(), r["runner"].clone()), (json!(0), json!("native:check_tcp")), "{}", output(&r));
    // Opted out per check: forked (and here not found, as the shell says).
    let executor = support::executor::Builder::default().native_plugins(true).build();
    let check = obj(
        json!({"name": "port", "command": format!("/nonexistent/check_tcp -H 127.0.0.1 -p {ssh}"), "native": false, "issued": 1}),
    );
    let r = executor.process(check).await.unwrap();
    assert_eq!(r["status"], 127, "{}", output(&r));
    let _: Option<Value> = None;
}

const CHECK_HTTP: &str = "/usr/lib/nagios/plugins/check_http";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_http_natively_says_what_the_plugin_says() {
    if !real_plugin() {
        return;
    }
    let web = support::web::TestServer::http().await;
    let ca = support::web::TestCa::new("check_http");
    let tls = support::web::TestServer::https(&ca.issue(support::web::CertKind::Valid)).await;
    let (p, s) = (web.port(), tls.port());
    let closed = support::tcp::closed_port();
    let on = |args: &str| format!("-H 127.0.0.1 -p {p} {args}");
    let cases = [
        on("-u /ok"),
        format!("-I 127.0.0.1 -p {p} -u /ok"),
        format!("127.0.0.1 -p {p} -u /ok"),
        format!("-H 127.0.0.1:{p} -u /ok"),
        on("-u /status/404"),
        on("-u /status/503"),
        on("-u /status/204"),
        on("-u /redirect/0"),
        on("-u /redirect/0 -f warning"),
        on("-u /redirect/0 --onredirect=critical"),
        on("-u /ok -s concierge"),
        on("-u /ok -s absent"),
        on("-u /ok -s 'a search string of thirty-five chars'"),
        on("-u /ok -r 'hello.*ge$'"),
        on("-u /ok -r absent"),
        on("-u /ok -R HELLO"),
        on("-u /ok -r hello --invert-regex"),
        on("-u /ok -d X-Test"),
        on("-u /ok -d X-Absent -s absent"),
        on("-u /ok -e 200"),
        on("-u /ok -e 404,500"),
        on("-u /status/404 -e 404"),
        on("-u /ok -m 10"),
        on("-u /ok -m 10000"),
        on("-u /ok -m 10:50"),
        on("-u /ok -w 0.000001 -c 5"),
        on("-u /ok -c 0.000001"),
        on("-u /ok -w 5 -c 20"),
        on("-u /echo -P 'a=1' -s '\"method\":\"POST\"'"),
        on("-u /echo -j PUT -s '\"method\":\"PUT\"'"),
        on("-u /echo -k 'X-One: 1' -k 'X-Two: 2' -s '\"x-two\":\"2\"'"),
        on("-u /echo -a user:pass -s 'Basic dXNlcjpwYXNz'"),
        on("-u /echo -A Probe/1 -s 'Probe/1'"),
        on("-u /echo -T application/json -P '{}'"),
        on("-u /bytes/100000"),
        on("-u /delay/3000 -t 1"),
        format!("-H 127.0.0.1 -p {closed}"),
        format!("-H localhost -p {s} -S -u /ok"),
        format!("-I 127.0.0.1 -p {s} -S -u /ok -s concierge"),
    ];
    side_by_side(CHECK_HTTP, &cases).await;
}

const CHECK_CURL: &str = "/usr/lib/nagios/plugins/check_curl";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_curl_natively_says_what_the_plugin_says() {
    if !installed(CHECK_CURL, "monitoring-plugins-standard") {
        return;
    }
    let web = support::web::TestServer::http().await;
    let ca = support::web::TestCa::new("check_curl");
    let tls = support::web::TestServer::https(&ca.issue(support::web::CertKind::Valid)).await;
    let (p, s) = (web.port(), tls.port());
    let closed = support::tcp::closed_port();
    let on = |args: &str| format!("-H 127.0.0.1 -p {p} {args}");
    let cases = [
        on("-u /ok"),
        format!("-I 127.0.0.1 -p {p} -u /ok"),
        format!("127.0.0.1 -p {p} -u /ok"),
        format!("-H 127.0.0.1:{p} -u /ok"),
        format!("-H localhost -I 127.0.0.1 -p {p} -u /ok -4"),
        on("-u /status/404"),
        on("-u /status/503"),
        on("-u /status/204"),
        on("-u /status/599"),
        on("-u /redirect/0"),
        on("-u /redirect/0 -f warning"),
        on("-u /redirect/0 --onredirect=critical"),
        on("-u /ok -s concierge"),
        on("-u /ok -s absent"),
        on("-u /ok -s 'a search string of thirty-five chars'"),
        on("-u /ok -r 'hello.*ge$'"),
        on("-u /ok -r absent"),
        on("-u /ok -R HELLO"),
        on("-u /ok -r hello --invert-regex"),
        on("-u /ok -d X-Test"),
        on("-u /ok -d X-Absent -s absent"),
        on("-u /ok -e 200"),
        on("-u /ok -e 404,500"),
        on("-u /status/404 -e 404"),
        on("-u /ok -e 200 -s absent -m 10:50"),
        on("-u /ok -m 10"),
        on("-u /ok -m 10000"),
        on("-u /ok -m 10:50"),
        on("-u /ok -w 0.000001 -c 5"),
        on("-u /ok -c 0.000001"),
        on("-u /ok -w 5 -c 20"),
        on("-u /echo -P 'a=1' -s '\"method\":\"POST\"'"),
        on("-u /echo -P 'a=1' -P 'b=2' -s 'a=1'"),
        on("-u /echo -j PUT -s '\"method\":\"PUT\"'"),
        on("-u /echo -j DELETE"),
        on("-u /echo -k 'X-One: 1' -k 'X-Two: 2' -s '\"x-two\":\"2\"'"),
        on("-u /echo -k 'Host: vhost' -s vhost"),
        on("-u /echo -a user:pass -s 'Basic dXNlcjpwYXNz'"),
        on("-u /echo -a user"),
        on("-u /echo -A Probe/1 -s 'Probe/1'"),
        on("-u /echo -T application/json -P '{}'"),
        on("-u '/echo?q=1' -s 'q=1'"),
        on("-u /bytes/100000"),
        on("-u /delay/3000 -t 1"),
        on("-u /slowbody/3000 -t 1"),
        format!("-H 127.0.0.1 -p {closed}"),
        format!("-H localhost -p {closed}"),
        "-H nosuch.invalid".to_string(),
        format!("-H localhost -p {s} -S -u /ok"),
        format!("-I 127.0.0.1 -p {s} -S -u /ok -s concierge"),
        format!("-H localhost:{s} -S -u /echo -s localhost"),
        format!("-H 127.0.0.1 -p {s} -u /ok"),
    ];
    side_by_side(CHECK_CURL, &cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_check_curl_does_not_run_natively_is_forked_or_unknown() {
    if !installed(CHECK_CURL, "monitoring-plugins-standard") {
        return;
    }
    let web = support::web::TestServer::http().await;
    let p = web.port();
    // Extended perfdata: the real plugin runs it.
    let r = run(&format!("{CHECK_CURL} -H 127.0.0.1 -p {p} -u /ok -E"), true).await;
    assert_eq!(r["runner"], "fork");
    assert_eq!(r["status"], 0, "{}", output(&r));
    assert!(output(&r).starts_with("HTTP OK: HTTP/1.1 200 OK - "), "{}", output(&r));
    // …and without the plugin installed: UNKNOWN, naming the option.
    let r = run(&format!("/nonexistent/check_curl -H 127.0.0.1 -p {p} -D"), true).await;
    assert_eq!((r["status"].clone(), r["runner"].clone()), (json!(3), json!("native:check_curl")));
    assert_eq!(
        output(&r),
        "UNKNOWN: check_curl: option -D is not supported natively and check_curl is not installed\n"
    );
    // Natively even when the plugin is not installed at all.
    let r = run(&format!("/nonexistent/check_curl -H 127.0.0.1 -p {p} -u /ok"), true).await;
    assert_eq!((r["status"].clone(), r["runner"].clone()), (json!(0), json!("native:check_curl")), "{}", output(&r));
}

const CHECK_DNS: &str = "/usr/lib/nagios/plugins/check_dns";

/// `check_dns` runs `nslookup`, which asks port 53 only: the test's servers listen on
/// 127.0.0.77:53 (the zone), 127.0.0.80:53 (a relay that is not authoritative), and a
/// socket on 127.0.0.79:53 that never answers. Binding them needs root, as CI has.
/// The tests that need them take turns (the addresses are fixed): the guard comes with the
/// servers, and a port the previous test's runtime is still closing is waited for.
async fn dns_servers() -> Option<DnsServers> {
    static PORT_53: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let turn = PORT_53.lock().await;
    let zone = "127.0.0.77:53".parse().unwrap();
    let dns = match bound(|| support::dns::TestDns::start_at(zone)).await {
        Ok(dns) => dns,
        Err(e) => {
            assert!(std::env::var("CI").is_err(), "CI runs as root and can bind {zone}: {e}");
            eprintln!("SKIPPED: cannot bind {zone} ({e})");
            return None;
        }
    };
    let relay = bound(|| support::dns::Relay::start_at("127.0.0.80:53".parse().unwrap(), zone)).await.unwrap();
    let hole = bound(|| async { std::net::UdpSocket::bind("127.0.0.79:53") }).await.unwrap();
    Some((dns, relay, hole, turn))
}

/// `bind()`, tried again for up to 10 s while the address is still in use.
async fn bound<T, F: std::future::Future<Output = std::io::Result<T>>>(
    mut bind: impl FnMut() -> F,
) -> std::io::Result<T> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match bind().await {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            done => return done,
        }
    }
}

type DnsServers =
    (support::dns::TestDns, support::dns::Relay, std::net::UdpSocket, tokio::sync::MutexGuard<'static, ()>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_dns_natively_says_what_the_plugin_says() {
    if !installed(CHECK_DNS, "monitoring-plugins-standard") {
        return;
    }
    let Some(_servers) = dns_servers().await else { return };
    let on = |args: &str| format!("-s 127.0.0.77 {args}");
    let cases = [
        on("-H www.test.concierge"),
        on("-H alias.test.concierge"),
        on("-H dangling.test.concierge"),
        on("-H mail.test.concierge -a 192.0.2.25"),
        on("-H www.test.concierge -a 192.0.2.25"),
        on("-H www.test.concierge -a 192.0.2.25,192.0.2.10"),
        on("-H www.test.concierge -a 192.0.2.25 -a 192.0.2.11"),
        on("-H www.test.concierge -a 192.0.2.10 -L"),
        on("-H www.test.concierge -a 192.0.2.10,192.0.2.11,2001:db8::10 -L"),
        on("-H www.test.concierge -a 192.0.2.0/24"),
        on("-H www.test.concierge -a 198.51.100.0/24"),
        on("-H missing.test.concierge"),
        on("-H missing.test.concierge -n"),
        on("-H www.test.concierge -n"),
        on("-H txt.test.concierge"),
        on("-H test.concierge"),
        on("-H example.org"),
        on("-H 192.0.2.10"),
        on("-H 192.0.2.10 -a www.test.concierge."),
        on("-H 192.0.2.99"),
        on("-H 198.51.100.1"),
        on("-H 2001:db8::10"),
        on("-H WWW.Test.Concierge."),
        on("-H www.test.concierge -A"),
        on("-H www.test.concierge -w 0.000001 -c 5"),
        on("-H www.test.concierge -c 0.000001"),
        on("-H www.test.concierge -w 5 -c 10 -t 3"),
        "www.test.concierge 127.0.0.77".to_string(),
        "--hostname=mail.test.concierge --server=127.0.0.77 --expected-address=192.0.2.25".to_string(),
        "-H www.test.concierge -s 127.0.0.80".to_string(),
        "-H www.test.concierge -s 127.0.0.80 -A".to_string(),
        "-H 192.0.2.10 -s 127.0.0.80 -A".to_string(),
        "-H servfail.test.concierge -s 127.0.0.80".to_string(),
        "-H www.test.concierge -s 127.0.0.78".to_string(),
        "-H www.test.concierge -s ::1".to_string(),
        "-H www.test.concierge -s 127.0.0.79 -t 1".to_string(),
    ];
    side_by_side(CHECK_DNS, &cases).await;
    eprintln!("{} check_dns command lines say what the plugin says", cases.len());
    // What the native path does not run forks the plugin (-v prints nslookup's lines too).
    let r = run(&format!("{CHECK_DNS} -H www.test.concierge -s 127.0.0.77 -v"), true).await;
    assert_eq!(r["runner"], "fork");
    assert!(output(&r).contains("Server:\t\t127.0.0.77"), "{}", output(&r));
    let r = run("/nonexistent/check_dns -H www.test.concierge -s dns.test.concierge", true).await;
    assert_eq!((r["status"].clone(), r["runner"].clone()), (json!(3), json!("native:check_dns")));
    assert_eq!(
        output(&r),
        "UNKNOWN: check_dns: a server given by name (dns.test.concierge) is not supported natively and check_dns is not installed\n"
    );
}

/// `command` run in a private mount namespace whose `/etc/resolv.conf` is `conf` (root only).
async fn with_resolv_conf(conf: &std::path::Path, command: &[&str]) -> (Option<i32>, String) {
    let out = tokio::process::Command::new("unshare")
        .args(["-m", "sh", "-c", r#"mount --bind "$0" /etc/resolv.conf && exec "$@""#])
        .arg(conf)
        .args(command)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CONCIERGE_LOG_LEVEL", "warn")
        .env("SENSU_CLIENT_NAME", "cli")
        .env("SENSU_LOADED_TEMPFILE_DIR", conf.parent().unwrap())
        .current_dir(conf.parent().unwrap())
        .output()
        .await
        .expect("unshare");
    (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_dns_without_a_server_reads_the_resolver_configuration_as_nslookup_does() {
    if !installed(CHECK_DNS, "monitoring-plugins-standard") {
        return;
    }
    let Some(_servers) = dns_servers().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let search = "nameserver 127.0.0.77\nsearch test.concierge\n";
    let cases = [
        (search, "-H www"),
        (search, "-H txt"),
        (search, "-H missing"),
        (search, "-H www.test.concierge -A"),
        (search, "-H mail.test.concierge."),
        ("# a comment\nnameserver 127.0.0.78\nnameserver 127.0.0.77\n", "-H www.test.concierge"),
        ("nameserver 127.0.0.80\ndomain test.concierge\n", "-H www -A"),
        // The relay offers no recursion and another server is left: nslookup asks that one.
        ("nameserver 127.0.0.80\nnameserver 127.0.0.77\noptions edns0 trust-ad\n", "-H www.test.concierge -A"),
        ("nameserver 127.0.0.77\nsearch test.concierge\noptions ndots:3\n", "-H www.test"),
        ("nameserver 127.0.0.77\nsearch example.org test.concierge\n", "-H mail"),
    ];
    for (i, (conf, args)) in cases.iter().enumerate() {
        let resolv = dir.path().join(format!("resolv{i}.conf"));
        std::fs::write(&resolv, conf).unwrap();
        let confd = dir.path().join(format!("conf{i}.d"));
        std::fs::create_dir(&confd).unwrap();
        // Not installed under this name: only the native path can answer.
        std::fs::write(
            confd.join("dns.json"),
            json!({"checks": {"dns": {"command": format!("/nonexistent/check_dns {args}"), "interval": 10}}})
                .to_string(),
        )
        .unwrap();
        let real: Vec<&str> = std::iter::once(CHECK_DNS).chain(args.split(' ')).collect();
        let ours = [env!("CARGO_BIN_EXE_concierge"), "check", "-d", confd.to_str().unwrap(), "dns"];
        let (native, forked) = tokio::join!(with_resolv_conf(&resolv, &ours), with_resolv_conf(&resolv, &real),);
        assert_eq!((native.0, untimed(&native.1)), (forked.0, untimed(&forked.1)), "{conf:?} check_dns {args}");
    }
}
