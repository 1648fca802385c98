//! sensu-plugins command lines run natively through the real path: check requests over the
//! private broker to a `concierge run` client (tokens substituted in the arguments), and
//! `concierge check`. Each line's expected first line and status are read from the plugins'
//! sources (`check-http.rb`, `check-ports.rb`) and Ruby 2.4's libraries, the Ruby that
//! sensu-client 1.x embeds.
//!
//! With `CONCIERGE_TEST_SENSU_PLUGINS=DIR` (a directory with the plugins' `bin/` and a
//! `lib/` holding sensu-plugin), every line that does not depend on Ruby 2.4's own wording
//! is also run by `ruby` side by side, and the two must agree.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use sha2::Digest as _;
use support::web::{CertKind, TestCa, TestServer};

/// One command line and what the plugin says.
struct Case {
    command: String,
    first_line: String,
    status: i64,
    /// Depends on wording of Ruby 2.4 (or OpenSSL 1.0.2) that newer Ruby changed.
    ruby24: bool,
    /// More of the output that must be there (a metric plugin's other lines).
    also: Option<String>,
}

fn case(command: String, first_line: impl Into<String>, status: i64) -> Case {
    Case { command, first_line: first_line.into(), status, ruby24: false, also: None }
}

/// A line whose output must also contain `also`.
fn with(command: String, first_line: impl Into<String>, also: impl Into<String>, status: i64) -> Case {
    Case { also: Some(also.into()), ..case(command, first_line, status) }
}

fn ruby24(command: String, first_line: impl Into<String>, status: i64) -> Case {
    Case { ruby24: true, ..case(command, first_line, status) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensu_plugin_command_lines_say_what_the_plugins_say() {
    let web = TestServer::http().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("native plugins");
    let valid = ca.issue(CertKind::Valid);
    let tls = TestServer::https(&valid).await;
    let wrong_host = TestServer::https(&ca.issue(CertKind::WrongHost)).await;
    let self_signed_cert = ca.issue(CertKind::SelfSigned);
    let self_signed = TestServer::https(&self_signed_cert).await;
    let expired_cert = ca.issue(CertKind::Expired);
    let expired = TestServer::https(&expired_cert).await;
    let chained_cert = ca.issue(CertKind::WithIntermediate);
    let chained = TestServer::https(&chained_cert).await;
    // A leaf followed by a certificate that did not sign it.
    let mut broken = ca.issue(CertKind::Valid);
    let stranger = TestCa::new("stranger");
    let stranger_pem = std::fs::read_to_string(stranger.write_pem(dir.path().join("stranger.pem"))).unwrap();
    broken.chain_pem.push_str(&stranger_pem);
    // A chain whose root nobody here trusts (only -k gets through).
    let untrusted_cert = stranger.issue(CertKind::WithIntermediate);
    let untrusted = TestServer::https(&untrusted_cert).await;
    let broken_chain = TestServer::https(&broken).await;
    let (ch, bc) = (chained.port(), broken_chain.port());
    let ca_file = ca.write_pem(dir.path().join("ca.pem"));
    let ca_file = ca_file.to_str().unwrap();
    let (p, s, w, ss, ex) = (web.port(), tls.port(), wrong_host.port(), self_signed.port(), expired.port());
    // The plugins' days, from the certificate's notAfter as the test issued it.
    // A second after issuing, the whole days left are one less than the days the certificate
    // was issued for, and stay so for a day: no rounding edge while the test runs.
    let now = chrono::Utc::now().timestamp();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let https_days = (valid.not_after - now - 1).div_euclid(86_400);
    let utc =
        |epoch: i64| chrono::DateTime::from_timestamp(epoch, 0).unwrap().format("%Y-%m-%d %H:%M:%S UTC").to_string();
    let on = utc(valid.not_after);
    let calendar_days = (chrono::DateTime::from_timestamp(valid.not_after, 0).unwrap().date_naive()
        - chrono::Local::now().date_naive())
    .num_days();
    let expired_days = (chrono::Local::now().date_naive()
        - chrono::DateTime::from_timestamp(expired_cert.not_after, 0).unwrap().date_naive())
    .num_days();
    let leaf_pem = dir.path().join("leaf.pem");
    std::fs::write(&leaf_pem, &valid.chain_pem).unwrap();
    let leaf_pem = leaf_pem.to_str().unwrap();
    let closed = support::tcp::closed_port();
    let stalled = support::tcp::stalled_port().await;
    let dns = support::dns::TestDns::start().await;
    let ns = dns.addr.port();
    let host = nix::unistd::gethostname().unwrap().to_string_lossy().into_owned();
    let sum: String = sha2::Sha256::digest(b"hello concierge").iter().map(|b| format!("{b:02x}")).collect();
    let http = |args: &str| format!("check-http.rb {args}");
    let url = |path: &str| format!("http://127.0.0.1:{p}{path}");
    let mut cases = vec![
        case(http(&format!("-u {}", url("/ok"))), "CheckHttp OK: 200, 15 bytes", 0),
        case(http(&format!("--url={}", url("/ok"))), "CheckHttp OK: 200, 15 bytes", 0),
        case(format!("/opt/sensu/embedded/bin/check-http.rb -u {}", url("/ok")), "CheckHttp OK: 200, 15 bytes", 0),
        case(http(&format!("-u {} -q concierge", url("/ok"))), "CheckHttp OK: 200, found /concierge/ in 15 bytes", 0),
        case(
            http(&format!("-u {} -q '^hello (c|x)on'", url("/ok"))),
            "CheckHttp OK: 200, found /^hello (c|x)on/ in 15 bytes",
            0,
        ),
        case(
            http(&format!("-u {} --query absent", url("/ok"))),
            "CheckHttp CRITICAL: 200, did not find /absent/ in 15 bytes: hello concierge...",
            2,
        ),
        case(
            http(&format!("-u {} -n concierge", url("/ok"))),
            "CheckHttp CRITICAL: 200, found /concierge/ in 15 bytes: hello concierge...",
            2,
        ),
        case(http(&format!("-u {} -n absent", url("/ok"))), "CheckHttp OK: 200, did not find /absent/ in 15 bytes", 0),
        case(
            http(&format!("-u {} -S {sum}", url("/ok"))),
            format!("CheckHttp OK: 200, checksum match {sum} in 15 bytes"),
            0,
        ),
        case(
            http(&format!("-u {} -S 00ff", url("/ok"))),
            "CheckHttp CRITICAL: 200, checksum did not match 00ff in 15 bytes: hello concierge...",
            2,
        ),
        case(http(&format!("-u {}", url("/status/404"))), "CheckHttp CRITICAL: 404", 2),
        case(http(&format!("-u {}", url("/status/503"))), "CheckHttp CRITICAL: 503", 2),
        case(http(&format!("-u {} --response-code 404", url("/status/404"))), "CheckHttp OK: 404, 10 bytes", 0),
        case(http(&format!("-u {} --response-code '^3'", url("/status/200"))), "CheckHttp CRITICAL: 200", 2),
        case(http(&format!("-u {} --response-code 20", url("/status/201"))), "CheckHttp OK: 201, 10 bytes", 0),
        case(http(&format!("-u {}", url("/status/204"))), "CheckHttp OK: 204, 0 bytes", 0),
        case(http(&format!("-u {}", url("/redirect/0"))), "CheckHttp WARNING: 302", 1),
        case(http(&format!("-u {} -r", url("/redirect/0"))), "CheckHttp OK: 302, 0 bytes", 0),
        case(http(&format!("-u {} -R /ok", url("/redirect/0"))), "CheckHttp OK: 302 found redirect to /ok", 0),
        case(
            http(&format!("-u {} --redirect-to /elsewhere", url("/redirect/0"))),
            "CheckHttp CRITICAL: Expected redirect to /elsewhere instead redirected to /ok",
            2,
        ),
        case(http(&format!("-u {} -R /ok", url("/ok"))), "CheckHttp CRITICAL: Expected redirect to /ok but got 200", 2),
        case(http(&format!("-u {} -r --response-code 404", url("/redirect/0"))), "CheckHttp CRITICAL: 302", 2),
        case(http(&format!("-u {} -B 100", url("/bytes/100"))), "CheckHttp OK: 200, 100 bytes", 0),
        case(
            http(&format!("-u {} -B 99", url("/bytes/100"))),
            "CheckHttp CRITICAL: Response was 100 bytes instead of 99",
            2,
        ),
        case(
            http(&format!("-u {} --min-bytes 200", url("/bytes/100"))),
            "CheckHttp CRITICAL: Response was 100 bytes instead of the indicated minimum 200",
            2,
        ),
        case(http(&format!("-u {} -w", url("/status/503"))), "CheckHttp CRITICAL: 503", 2),
        case(http(&format!("-u {} -b 4", url("/ok"))), "CheckHttp OK: 200, 15 bytes", 0),
        case(http(&format!("-h 127.0.0.1 -P {p} -p /ok")), "CheckHttp OK: 200, 15 bytes", 0),
        case(http(&format!("-h 127.0.0.1 -P {p}")), "CheckHttp UNKNOWN: No URL specified", 3),
        case(http(&format!("-u http://localhost:{p}/ok")), "CheckHttp OK: 200, 15 bytes", 0),
        case(http(&format!("-m HEAD -u {}", url("/ok"))), "CheckHttp OK: 200, 0 bytes", 0),
        case(
            http(&format!("-m POST -d 'a=1' -u {} -q '\"method\":\"POST\".*\"body\":\"a=1\"'", url("/echo"))),
            "CheckHttp OK: 200, found /\"method\":\"POST\".*\"body\":\"a=1\"/ in",
            0,
        ),
        case(
            http(&format!("-u {} -H 'X-One: 1, X-Two:2' -q '\"x-one\":\"1\",\"x-two\":\"2\"'", url("/echo"))),
            "CheckHttp OK: 200, found /\"x-one\":\"1\",\"x-two\":\"2\"/ in",
            0,
        ),
        case(
            http(&format!("-u {} -U user -a pass -x Probe/1 -q 'Probe/1.*Basic dXNlcjpwYXNz'", url("/echo"))),
            "CheckHttp OK: 200, found /Probe/1.*Basic dXNlcjpwYXNz/ in",
            0,
        ),
        case(http(&format!("-u {} -t 1", url("/delay/3000"))), "CheckHttp CRITICAL: Request timed out", 2),
        case(
            http(&format!("-u {} --read-timeout 1", url("/delay/3000"))),
            "CheckHttp CRITICAL: Request timed out reading data",
            2,
        ),
        case(
            http(&format!("-u http://127.0.0.1:{stalled}/ --open-timeout 1")),
            "CheckHttp CRITICAL: Request timed out opening connection",
            2,
        ),
        ruby24(
            http(&format!("-u http://127.0.0.1:{closed}/")),
            format!(
                "CheckHttp CRITICAL: Request error: Failed to open TCP connection to 127.0.0.1:{closed} (Connection refused - connect(2) for \"127.0.0.1\" port {closed})"
            ),
            2,
        ),
        case(http(&format!("-u https://localhost:{s}/ok -C {ca_file}")), "CheckHttp OK: 200, 15 bytes", 0),
        case(http(&format!("-u https://127.0.0.1:{s}/ok -k")), "CheckHttp OK: 200, 15 bytes", 0),
        // -e: the verify callback keeps the lowest certificate of the chain ending within the days.
        case(http(&format!("-u https://localhost:{s}/ok -C {ca_file} -e 30")), "CheckHttp OK: 200, 15 bytes", 0),
        case(
            http(&format!("-u https://localhost:{s}/ok -C {ca_file} -e 90")),
            format!("CheckHttp WARNING: Certificate will expire {on}"),
            1,
        ),
        case(
            http(&format!("-u https://localhost:{s}/ok -C {ca_file} --expiry=4000")),
            format!("CheckHttp WARNING: Certificate will expire {on}"),
            1,
        ),
        case(
            http(&format!("-u https://localhost:{ch}/ok -C {ca_file} -e 30")),
            format!("CheckHttp WARNING: Certificate will expire {}", utc(chained_cert.chain_not_after)),
            1,
        ),
        case(
            http(&format!("-u https://localhost:{ch}/ok -C {ca_file} -e 90")),
            format!("CheckHttp WARNING: Certificate will expire {}", utc(chained_cert.not_after)),
            1,
        ),
        case(
            http(&format!("-u https://127.0.0.1:{ss}/ok -k -e 90")),
            format!("CheckHttp WARNING: Certificate will expire {}", utc(self_signed_cert.not_after)),
            1,
        ),
        case(http(&format!("-u {} -e 90", url("/ok"))), "CheckHttp OK: 200, 15 bytes", 0),
        // -k with a chain that does not end in a trusted root: OpenSSL's walk stops at its top.
        case(
            http(&format!("-u https://localhost:{}/ok -k -e 90", untrusted.port())),
            format!("CheckHttp WARNING: Certificate will expire {}", utc(untrusted_cert.chain_not_after)),
            1,
        ),
        case(
            http(&format!("-u https://localhost:{s}/ok -C {ca_file} -e 90 -B 3")),
            "CheckHttp CRITICAL: Response was 15 bytes instead of 3",
            2,
        ),
        case(http(&format!("-h localhost -P {s} -p /ok -s -C {ca_file}")), "CheckHttp OK: 200, 15 bytes", 0),
        ruby24(
            http(&format!("-u https://127.0.0.1:{ss}/ok")),
            "CheckHttp CRITICAL: Request error: SSL_connect returned=1 errno=0 state=error: certificate verify failed",
            2,
        ),
        ruby24(
            http(&format!("-u https://localhost:{w}/ok -C {ca_file}")),
            "CheckHttp CRITICAL: Request error: hostname \"localhost\" does not match the server certificate",
            2,
        ),
        case(
            format!("check-ports.rb -H 127.0.0.1 -p {p}"),
            format!("CheckPort OK: All ports ({p}) are accessible for hosts 127.0.0.1"),
            0,
        ),
        case(
            format!("check-ports.rb -H 127.0.0.1,localhost -p {p},{s}"),
            format!("CheckPort OK: All ports ({p},{s}) are accessible for hosts 127.0.0.1,localhost"),
            0,
        ),
        case(
            format!("check-ports.rb --hostname 127.0.0.1 --ports {p}-{p}"),
            format!("CheckPort OK: All ports ({p}-{p}) are accessible for hosts 127.0.0.1"),
            0,
        ),
        case(
            format!("check-ports.rb -p {p}"),
            format!("CheckPort OK: All ports ({p}) are accessible for hosts 0.0.0.0"),
            0,
        ),
        case(
            format!("check-port.rb -H 127.0.0.1 -p {p}"),
            format!("CheckPort OK: All ports ({p}) are accessible for hosts 127.0.0.1"),
            0,
        ),
        case(
            format!("check-ports.rb -H 127.0.0.1 -p {p},{closed},{s}"),
            format!("CheckPort CRITICAL: Connection refused by 127.0.0.1:{closed}"),
            2,
        ),
        case(
            format!("check-ports.rb -H 127.0.0.1 -p {closed}-{closed}"),
            format!("CheckPort CRITICAL: Connection refused by 127.0.0.1:{closed}"),
            2,
        ),
        case(
            format!("check-ports.rb -H 127.0.0.1 -p {stalled} -t 1"),
            format!("CheckPort CRITICAL: Connection or read timed out (127.0.0.1:{stalled})"),
            2,
        ),
        case(
            format!("check-ports.rb -H 127.0.0.1 -P udp -p {closed}"),
            format!("CheckPort OK: All ports ({closed}) are accessible for hosts 127.0.0.1"),
            0,
        ),
        case(
            format!("check-https-cert.rb -u https://localhost:{s}/ok"),
            format!("CheckHttpCert OK: TLS/SSL certificate expires on {on} - {https_days} days left."),
            0,
        ),
        case(
            format!("check-https-cert.rb -u https://127.0.0.1:{s}/ -w 70"),
            format!("CheckHttpCert WARNING: TLS/SSL certificate expires on {on} - {https_days} days left."),
            1,
        ),
        case(
            format!("check-https-cert.rb --url https://localhost:{s}/ --critical 70 --warning 80"),
            format!("CheckHttpCert CRITICAL: TLS/SSL certificate expires on {on} - {https_days} days left."),
            2,
        ),
        case(
            format!("check-https-cert.rb -u https://localhost:{s}/ -e"),
            format!("CheckHttpCert CRITICAL: TLS/SSL certificate expires on {on} - {https_days} days left."),
            2,
        ),
        case(
            format!("check-https-cert.rb -u https://localhost:{ex}/ -k"),
            "CheckHttpCert CRITICAL: TLS/SSL certificate expired 1 days ago.",
            2,
        ),
        case(
            format!("check-https-cert.rb -u https://localhost:{ex}/ -k -e"),
            "CheckHttpCert OK: TLS/SSL certificate expired 1 days ago.",
            0,
        ),
        case(
            format!("check-https-cert.rb -u https://localhost:{ex}/"),
            format!("CheckHttpCert CRITICAL: Could not connect to https://localhost:{ex}/"),
            2,
        ),
        case(
            format!("check-https-cert.rb -u https://localhost:{ss}/"),
            format!("CheckHttpCert CRITICAL: Could not connect to https://localhost:{ss}/"),
            2,
        ),
        case(
            format!("check-https-cert.rb -u https://127.0.0.1:{closed}/"),
            format!("CheckHttpCert CRITICAL: Could not connect to https://127.0.0.1:{closed}/"),
            2,
        ),
        case("check-https-cert.rb".into(), "CheckHttpCert CRITICAL: Could not connect to", 2),
        case(
            format!("check-ssl-cert.rb -h 127.0.0.1 -p {s} -c 10 -w 20"),
            format!("CheckSSLCert OK: {calendar_days} days left"),
            0,
        ),
        case(
            format!("check-ssl-cert.rb --host localhost --port {s} --critical 10 --warning 70"),
            format!("CheckSSLCert WARNING: {calendar_days} days left"),
            1,
        ),
        case(
            format!("check-ssl-cert.rb -h localhost -p {ss} -s localhost -c 70 -w 80"),
            format!("CheckSSLCert CRITICAL: {calendar_days} days left"),
            2,
        ),
        case(
            format!("check-ssl-cert.rb -h 127.0.0.1 -p {ex} -c 1 -w 2"),
            format!("CheckSSLCert CRITICAL: Expired {expired_days} days ago"),
            2,
        ),
        case(
            format!("check-ssl-cert.rb -P {leaf_pem} -c 10 -w 20"),
            format!("CheckSSLCert OK: {calendar_days} days left"),
            0,
        ),
        case("check-ssl-cert.rb -P /nonexistent.pem -c 10 -w 20".into(), "CheckSSLCert UNKNOWN: No such cert", 3),
        case("check-ssl-cert.rb -h 127.0.0.1 -c 10 -w 20".into(), "CheckSSLCert UNKNOWN: Host and port required", 3),
        case(format!("check-ssl-cert.rb -h 127.0.0.1 -p {closed} -c 10 -w 20"), "Check failed to run: invalid date", 3),
        with(
            format!("metrics-curl.rb -u {} -s test.curl", url("/ok")),
            "test.curl.time_total 0.",
            "\ntest.curl.time_redirect 0.000000 ",
            0,
        ),
        with(
            format!("metrics-curl.rb --url {}", url("/status/404")),
            format!("{host}.curl_timings.time_total "),
            " 404 ",
            0,
        ),
        with(
            format!("metrics-curl.rb -u https://localhost:{ss}/ok -s c -a -k"),
            "c.time_total ",
            "\nc.http_code 200 ",
            0,
        ),
        with(format!("metrics-curl.rb -u https://localhost:{ss}/ok -s c"), "c.time_total ", "\nc.http_code 000 ", 1),
        with(format!("metrics-curl.rb -u http://127.0.0.1:{closed}/ -s c"), "c.time_total ", "\nc.http_code 000 ", 1),
        case(
            format!("metrics-dns.rb -d www.test.concierge -s 127.0.0.1 -p {ns} -S test.dns"),
            "test.dns.A.www_test_concierge.response_time 0.",
            0,
        ),
        case(
            format!("metrics-dns.rb --domain www.test.concierge --type AAAA --server 127.0.0.1 --port {ns}"),
            format!("{host}.dns.AAAA.www_test_concierge.response_time 0."),
            0,
        ),
        case(
            format!("metrics-dns.rb -d txt.test.concierge -s 127.0.0.1 -p {ns} -S d"),
            "d.A.txt_test_concierge.response_time 0.",
            0,
        ),
        case(
            format!("metrics-dns.rb -d missing.test.concierge -t MX -s 127.0.0.1 -p {ns}"),
            "Could not resolve missing.test.concierge MX record",
            2,
        ),
        case(format!("metrics-dns.rb -s 127.0.0.1 -p {ns}"), "No domain specified", 3),
        case(format!("metrics-dns.rb -d example.org -s 127.0.0.1 -p {ns}"), "Dnsruby::Refused", 3),
        case(
            format!("metrics-dns.rb -d www.test.concierge -s 127.0.0.1 -p {closed}"),
            "recvfrom failed from 127.0.0.1; Connection refused - recvfrom(2)",
            3,
        ),
    ];
    let sslhost = |args: &str| format!("check-ssl-host.rb {args}");
    cases.extend([
        case(
            sslhost(&format!("-h localhost -p {s}")),
            format!("check_ssl_host OK: localhost - {calendar_days} days until expiry"),
            0,
        ),
        case(
            sslhost(&format!("--host 127.0.0.1 --port {s}")),
            format!("check_ssl_host OK: 127.0.0.1 - {calendar_days} days until expiry"),
            0,
        ),
        case(
            sslhost(&format!("-h localhost -a 127.0.0.1 -p {s}")),
            format!("check_ssl_host OK: localhost - {calendar_days} days until expiry"),
            0,
        ),
        case(
            sslhost(&format!("-h localhost -p {s} -w 70")),
            format!("check_ssl_host WARNING: localhost - {calendar_days} days until expiry"),
            1,
        ),
        case(
            sslhost(&format!("-h localhost -p {s} -c 70 -w 80")),
            format!("check_ssl_host CRITICAL: localhost - {calendar_days} days until expiry"),
            2,
        ),
        case(
            sslhost(&format!("-h localhost -p {w}")),
            "check_ssl_host CRITICAL: localhost hostname mismatch (/CN=other.invalid)",
            2,
        ),
        case(
            sslhost(&format!("-h localhost -p {w} --skip-hostname-verification")),
            format!("check_ssl_host OK: localhost - {calendar_days} days until expiry"),
            0,
        ),
        case(
            sslhost(&format!("-h localhost -p {ex}")),
            format!("check_ssl_host CRITICAL: localhost - Expired -{expired_days} days ago"),
            2,
        ),
        case(sslhost(&format!("-h localhost -p {ch}")), "check_ssl_host OK: localhost - ", 0),
        case(
            sslhost(&format!("-h localhost -p {bc}")),
            "check_ssl_host CRITICAL: localhost - Invalid certificate chain",
            2,
        ),
        case(
            sslhost(&format!("-h localhost -p {bc} --skip-chain-verification")),
            format!("check_ssl_host OK: localhost - {calendar_days} days until expiry"),
            0,
        ),
        ruby24(
            sslhost(&format!("-h 127.0.0.1 -p {closed}")),
            format!("Check failed to run: Connection refused - connect(2) for \"127.0.0.1\" port {closed}"),
            3,
        ),
    ]);
    let dig = |args: &str| format!("check-dns.rb -s 127.0.0.1 -p {ns} {args}");
    let www = "www.test.concierge";
    cases.extend([
        case(dig(&format!("-d {www}")), format!("DNS OK: Resolved {www} A"), 0),
        case(dig(&format!("--domain {www} --type AAAA")), format!("DNS OK: Resolved {www} AAAA"), 0),
        case(dig(&format!("-d {www} -c 3")), format!("DNS OK: Resolved {www} A"), 0),
        case(dig(&format!("-d {www} -T")), format!("DNS OK: Resolved {www} A"), 0),
        case(dig(&format!("-d {www} -c IN")), "DNS UNKNOWN: Count must be 1 or more", 3),
        case(
            dig("-d missing.test.concierge"),
            "DNS CRITICAL: 0% of tests succeeded: Could not resolve missing.test.concierge A record",
            2,
        ),
        case(
            dig("-d missing.test.concierge -w -c 2"),
            "DNS WARNING: 0% of tests succeeded: Could not resolve missing.test.concierge A record",
            1,
        ),
        case(dig("-d txt.test.concierge"), "DNS OK: Could not resolve txt.test.concierge A record", 0),
        case(dig(&format!("-d {www} -r 192.0.2.11")), format!("DNS OK: Resolved UNCHECKED {www} A included 192.0.2.11"), 0),
        case(
            dig(&format!("-d {www} --result 192.0.2.99,192.0.2.98")),
            format!("DNS CRITICAL: Resolved {www} A did not include 192.0.2.99,192.0.2.98"),
            2,
        ),
        case(
            dig(&format!("-d {www} -t AAAA -r 2001:db8:0::10")),
            format!("DNS OK: Resolved UNCHECKED {www} AAAA included 2001:db8:0::10"),
            0,
        ),
        case(
            dig(&format!("-d {www} -R '192\\.0\\.2\\.11'")),
            format!("DNS OK: Resolved {www} A matched (?-mix:192\\.0\\.2\\.11)"),
            0,
        ),
        case(dig(&format!("-d {www} -R '^www.*10$'")), format!("DNS OK: Resolved {www} A matched (?-mix:^www.*10$)"), 0),
        case(
            dig("-d test.concierge -t MX -R '10 mail'"),
            "DNS OK: Resolved test.concierge MX matched (?-mix:10 mail)",
            0,
        ),
        case(
            dig(&format!("-d {www} -R nomatch")),
            format!("DNS CRITICAL: Resolved {www} A did not match (?-mix:nomatch)"),
            2,
        ),
        case(
            dig("-d example.org"),
            "DNS CRITICAL: 0% of tests succeeded: Could not resolve example.org: Dnsruby::Refused",
            2,
        ),
        case(dig("-t A"), "DNS UNKNOWN: No domain specified", 3),
        case(
            format!("check-dns.rb -d {www} -s 127.0.0.1 -p {closed}"),
            format!(
                "DNS CRITICAL: 0% of tests succeeded: Could not resolve {www}: recvfrom failed from 127.0.0.1; Connection refused - recvfrom(2)"
            ),
            2,
        ),
    ]);
    assert!(cases.len() >= 40, "{} cases", cases.len());

    // Through the broker: one request per line to a client on a round-robin subscription.
    // Tokens in the arguments are the client's: an attribute, and a default.
    let broker = support::ServerSide::connect().await;
    let mut results = broker.tap_results().await;
    let rr = format!("roundrobin:{}", support::unique("plugins"));
    let client_name = support::unique("plugins");
    // The plugins trust the test CA as OpenSSL would: through SSL_CERT_FILE.
    let client = support::Client::start(&client_name, &[&rr], &[("SSL_CERT_FILE", ca_file)]);
    client.ready().await;
    let mut requests: Vec<(String, String, String, i64, Option<String>)> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("plugin_{i}"), c.command.clone(), c.first_line.clone(), c.status, c.also.clone()))
        .collect();
    requests.push((
        "plugin_tokens".into(),
        format!(
            "check-http.rb -u 'http://127.0.0.1::::web.port|{p}:::/echo' -H 'X-Client: :::name:::' -q '\"x-client\":\":::name:::\"'"
        ),
        format!("CheckHttp OK: 200, found /\"x-client\":\"{client_name}\"/ in"),
        0,
        None,
    ));
    for (name, command, _, _, _) in &requests {
        broker.publish_request(&rr, &json!({"name": name, "command": command, "issued": 1, "timeout": 30})).await;
    }
    let mut got: BTreeMap<String, Value> = BTreeMap::new();
    while got.len() < requests.len() {
        let Some((result, _)) = results.next_for(&client_name, Duration::from_secs(60)).await else {
            panic!("{} of {} results; log:\n{}", got.len(), requests.len(), client.logs());
        };
        got.insert(result["check"]["name"].as_str().unwrap().to_string(), result["check"].clone());
    }
    let mut mismatches = Vec::new();
    for (name, command, first_line, status, also) in &requests {
        let check = &got[name];
        let output = check["output"].as_str().unwrap_or_default();
        let line = output.lines().next().unwrap_or_default();
        let plugin = command.split_whitespace().next().unwrap().rsplit('/').next().unwrap();
        let expected_runner = format!("native:{plugin}");
        let also_there = also.as_ref().is_none_or(|a| output.contains(a.as_str()));
        if !line.starts_with(first_line.as_str())
            || check["status"] != *status
            || check["runner"] != expected_runner
            || !also_there
        {
            mismatches.push(format!(
                "{command}\n  expected: {status} {first_line} (and {also:?})\n  got:      {} {output:?} runner {}",
                check["status"], check["runner"]
            ));
        }
    }
    assert!(mismatches.is_empty(), "{} mismatches:\n{}", mismatches.len(), mismatches.join("\n"));
    eprintln!("{} command lines through the broker say what the plugins say", requests.len());

    // `concierge check` runs the same lines the same way.
    let conf = dir.path().join("conf.d");
    std::fs::create_dir(&conf).unwrap();
    std::fs::write(
        conf.join("plugins.json"),
        json!({"checks": {
            "web": {"command": http(&format!("-u {} -q concierge", url("/ok"))), "interval": 10},
            "ports": {"command": format!("check-ports.rb -H 127.0.0.1 -p {closed}"), "interval": 10},
        }})
        .to_string(),
    )
    .unwrap();
    let conf = conf.to_str().unwrap();
    let out = support::bin::run_async(dir.path(), &["check", "-d", conf, "web"]).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "CheckHttp OK: 200, found /concierge/ in 15 bytes\n");
    assert_eq!(out.status.code(), Some(0));
    let out = support::bin::run_async(dir.path(), &["check", "-d", conf, "ports"]).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("CheckPort CRITICAL: Connection refused by 127.0.0.1:{closed}\n")
    );
    assert_eq!(out.status.code(), Some(2));

    side_by_side_with_ruby(&cases, ca_file);
}

/// With the plugins' sources at hand, run every line that does not depend on Ruby 2.4's
/// wording with `ruby` too: the first lines and statuses must agree.
fn side_by_side_with_ruby(cases: &[Case], ca_file: &str) {
    let Ok(dir) = std::env::var("CONCIERGE_TEST_SENSU_PLUGINS") else {
        eprintln!("(CONCIERGE_TEST_SENSU_PLUGINS not set: the table is checked against the expected lines only)");
        return;
    };
    let mut compared = 0;
    for case in cases.iter().filter(|c| !c.ruby24) {
        let words = concierge::checks::native::words::split(&case.command).unwrap();
        let plugin = words[0].rsplit('/').next().unwrap().replace("check-port.rb", "check-ports.rb");
        let out = std::process::Command::new("ruby")
            .arg(format!("-I{dir}/lib"))
            .arg(format!("{dir}/bin/{plugin}"))
            .args(&words[1..])
            .env("SSL_CERT_FILE", ca_file)
            .output()
            .expect("ruby");
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().next().unwrap_or_default();
        assert!(
            line.starts_with(&case.first_line),
            "{}\n  ruby: {line:?}\n  expected: {:?}",
            case.command,
            case.first_line
        );
        assert_eq!(i64::from(out.status.code().unwrap_or(-1)), case.status, "{}: ruby said {line:?}", case.command);
        compared += 1;
    }
    eprintln!("{compared} command lines agree with the Ruby plugins");
}

async fn run(command: &str, native: bool, opt_out: bool) -> concierge::proto::Object {
    let executor = support::executor::Builder::default().native_plugins(native).build();
    let mut check = json!({"name": "web", "command": command, "issued": 1});
    if opt_out {
        check["native"] = json!(false);
    }
    executor.process(support::obj(check)).await.unwrap()
}

/// A stand-in for an installed plugin: it says it was forked, with its arguments.
fn installed_plugin(dir: &std::path::Path, name: &str) -> String {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join(name);
    std::fs::write(&path, "#!/bin/sh\necho \"forked $*\"\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_not_run_natively_is_forked_or_unknown() {
    let web = TestServer::http().await;
    let url = web.url_for("/ok");
    let dir = tempfile::tempdir().unwrap();
    let plugin = installed_plugin(dir.path(), "check-http.rb");
    let output = |r: &concierge::proto::Object| support::output(r).to_string();

    // An option the native path does not run, plugin installed: the plugin runs.
    let r = run(&format!("{plugin} --headerfile /etc/hostname -u {url}"), true, false).await;
    assert_eq!(
        (output(&r), r["runner"].clone()),
        (format!("forked --headerfile /etc/hostname -u {url}\n"), json!("fork"))
    );
    // …not installed: UNKNOWN, naming the option.
    let r = run(&format!("check-http.rb --headerfile /etc/hostname -u {url}"), true, false).await;
    assert_eq!((r["status"].clone(), r["runner"].clone()), (json!(3), json!("native:check-http.rb")));
    assert_eq!(
        output(&r),
        "UNKNOWN: check-http.rb: option --headerfile is not supported natively and check-http.rb is not installed\n"
    );
    let r = run("check-ports.rb -H 127.0.0.1 --frob", true, false).await;
    assert_eq!(
        (output(&r), r["status"].clone()),
        ("UNKNOWN: check-ports.rb: invalid option: --frob and check-ports.rb is not installed\n".into(), json!(3))
    );
    // Natively while installed: the stand-in does not run.
    let r = run(&format!("{plugin} -u {url}"), true, false).await;
    assert_eq!(
        (output(&r), r["runner"].clone()),
        ("CheckHttp OK: 200, 15 bytes\n".into(), json!("native:check-http.rb"))
    );
    // Shell syntax: the shell runs the line (the plugin, then echo).
    let r = run(&format!("{plugin} -u {url}; echo done"), true, false).await;
    assert_eq!(output(&r), format!("forked -u {url}\ndone\n"));
    assert!(r.get("runner").is_none());
    // A plugin Concierge does not know: forked.
    let other = installed_plugin(dir.path(), "check-foo.rb");
    let r = run(&format!("{other} -u {url}"), true, false).await;
    assert_eq!((output(&r), r.get("runner")), (format!("forked -u {url}\n"), None));
    // Opted out, per check and for the whole client.
    for (native, opt_out) in [(true, true), (false, false)] {
        let r = run(&format!("{plugin} -u {url}"), native, opt_out).await;
        assert_eq!((output(&r), r.get("runner")), (format!("forked -u {url}\n"), None), "{native} {opt_out}");
    }
}
