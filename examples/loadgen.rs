//! The benchmarks' load generator, playing sensu-server: check requests published as
//! sensu-server publishes them (a subscription's exchange, routing key `""`, transient,
//! `application/octet-stream`, no publisher confirms, a unique name and `issued` each), at a
//! fixed offered rate or flat out with a bounded window of outstanding requests; results
//! consumed from the `results` exchange; the achieved rate and the latency from publish to
//! result. Also the floors' other half: bare connect/GET/close requests, bare TLS handshakes,
//! bare DNS queries, and blackbox-exporter `/probe` requests, at the same rates; and two
//! targets. Run by `bench/run sweep` and `bench/run sweep-tls-dns`; not part of the product.
//!
//! ```text
//! loadgen amqp AMQP_URL SUBSCRIPTION KIND TARGET RATE N [WINDOW]   KIND and TARGET:
//!        http URL | tls HOST:PORT[,CA_FILE] | dns NAME@SERVER:PORT | none -
//! loadgen get  URL RATE N [WINDOW]                                 connect, GET, read to the end, close
//! loadgen tls  HOST:PORT RATE N [WINDOW] [CA_FILE]                 connect, TLS handshake (verified), close
//! loadgen dns  SERVER:PORT NAME RATE N [WINDOW]                    a fresh UDP socket, one A query, its answer
//! loadgen slow PORT HOLD_MS                                        an HTTP target holding every response
//! loadgen dnsd PORT                                                a DNS server (UDP, hickory-server): one A record,
//!                                                                  www.bench.concierge. 192.0.2.10; prints its address
//! ```
//! `RATE` 0 is flat out (at most `WINDOW` outstanding, 1,000 by default). One JSON line on
//! stdout: sent, received, ok, wall seconds, achieved rate, latency p50/p99/max in ms, this
//! process's CPU seconds, and `steal_pct`: the share of the machine's CPU time its hypervisor
//! took while the generator ran (`/proc/stat`). A host that stops the VM's CPUs stops every
//! process on it at once, the generator too, and latency percentiles then say more about the
//! host than about the client. With `LOADGEN_LATENCIES=FILE`, an `amqp` run also writes one
//! line per result: the request's index, when it was published (ms after the start) and its
//! latency (ms).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

/// What came back, shared by the publisher and the consumer.
#[derive(Default)]
struct Seen {
    sent_at: HashMap<u64, Instant>,
    latencies: Vec<f64>,
    /// Request index, when it was published (ms after the start) and its latency (ms),
    /// in arrival order: written to `$LOADGEN_LATENCIES` if set.
    trace: Vec<(u64, f64, f64)>,
    received: u64,
    ok: u64,
}

fn usage() -> ! {
    eprintln!(
        "usage: loadgen amqp AMQP_URL SUBSCRIPTION http|tls|dns|none TARGET RATE N [WINDOW]\n       loadgen get URL RATE N [WINDOW]\n       loadgen tls HOST:PORT RATE N [WINDOW] [CA_FILE]\n       loadgen dns SERVER:PORT NAME RATE N [WINDOW]\n       loadgen slow PORT HOLD_MS\n       loadgen dnsd PORT"
    );
    std::process::exit(2);
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| f.iter().filter_map(|x| x.parse::<f64>().ok()).sum());
    ticks / 100.0
}

/// The machine's CPU time so far, in ticks: (stolen by the hypervisor, all).
fn cpu_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|x| x.parse().ok())
        .collect();
    (ticks.get(7).copied().unwrap_or(0), ticks.iter().sum())
}

static STARTED_TICKS: std::sync::OnceLock<(u64, u64)> = std::sync::OnceLock::new();

/// Percent of the machine's CPU time stolen since the generator started (stolen ÷ all, idle
/// included); NaN (`null` in the report) when `/proc/stat` could not be read.
fn steal_pct() -> f64 {
    let (steal0, all0) = *STARTED_TICKS.get_or_init(cpu_ticks);
    let (steal, all) = cpu_ticks();
    if all0 == 0 || all <= all0 {
        return f64::NAN;
    }
    100.0 * steal.saturating_sub(steal0) as f64 / (all - all0) as f64
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// Publish times for a paced run: request `i` is due at `i / rate` seconds.
async fn pace(rate: f64, started: Instant, i: u64) {
    if rate > 0.0 {
        let due = started + Duration::from_secs_f64(i as f64 / rate);
        if due > Instant::now() {
            tokio::time::sleep_until(due.into()).await;
        }
    }
}

fn report(seen: &Seen, sent: u64, wall: f64, cpu: f64) {
    // Only an `amqp` run traces its results; the other modes leave the file alone.
    if let Some(path) = std::env::var_os("LOADGEN_LATENCIES").filter(|_| !seen.trace.is_empty()) {
        let lines: String = seen.trace.iter().map(|(i, at, ms)| format!("{i} {at:.3} {ms:.3}\n")).collect();
        if let Err(e) = std::fs::write(&path, lines) {
            eprintln!("loadgen: cannot write {}: {e}", path.to_string_lossy());
        }
    }
    let mut latencies = seen.latencies.clone();
    latencies.sort_by(f64::total_cmp);
    println!(
        "{}",
        serde_json::json!({
            "sent": sent, "received": seen.received, "ok": seen.ok, "wall_s": wall,
            "rate": seen.received as f64 / wall,
            "p50_ms": percentile(&latencies, 0.50), "p99_ms": percentile(&latencies, 0.99),
            "max_ms": latencies.last().copied().unwrap_or(f64::NAN), "self_cpu_s": cpu,
            "steal_pct": steal_pct(),
        })
    );
}

async fn amqp(args: &[String]) {
    let [url, subscription, kind, target, rate, n, rest @ ..] = args else { usage() };
    let rate: f64 = rate.parse().unwrap_or_else(|_| usage());
    let n: u64 = n.parse().unwrap_or_else(|_| usage());
    let window: usize = rest.first().map_or(1000, |w| w.parse().unwrap_or_else(|_| usage()));
    let parameters = builtin_parameters(kind, target);
    let publisher = Connection::connect(url, ConnectionProperties::default()).await.expect("connect");
    let consumer = Connection::connect(url, ConnectionProperties::default()).await.expect("connect");
    let ch = publisher.create_channel().await.expect("channel");
    let rx = consumer.create_channel().await.expect("channel");
    let direct = ExchangeDeclareOptions::default();
    ch.exchange_declare(subscription.as_str().into(), ExchangeKind::Direct, direct, FieldTable::default())
        .await
        .expect("exchange");
    rx.exchange_declare("results".into(), ExchangeKind::Direct, direct, FieldTable::default()).await.expect("results");
    let queue = rx
        .queue_declare(
            "".into(),
            QueueDeclareOptions { exclusive: true, auto_delete: true, ..QueueDeclareOptions::default() },
            FieldTable::default(),
        )
        .await
        .expect("queue");
    rx.queue_bind(
        queue.name().clone(),
        "results".into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("bind");
    let mut results = rx
        .basic_consume(
            queue.name().clone(),
            "loadgen".into(),
            BasicConsumeOptions { no_ack: true, ..BasicConsumeOptions::default() },
            FieldTable::default(),
        )
        .await
        .expect("consume");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let slots = Arc::new(Semaphore::new(if rate > 0.0 { Semaphore::MAX_PERMITS } else { window }));
    let run = unique();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<()>(1);
    let started = Instant::now();
    {
        let (seen, slots) = (seen.clone(), slots.clone());
        tokio::spawn(async move {
            let prefix = format!("c{run}-");
            while let Some(Ok(delivery)) = results.next().await {
                let now = Instant::now();
                let result: serde_json::Value = serde_json::from_slice(&delivery.data).unwrap_or_default();
                let check = &result["check"];
                let mut seen = seen.lock().unwrap();
                seen.received += 1;
                if check["status"] == 0 {
                    seen.ok += 1;
                }
                let index = check["name"].as_str().and_then(|n| n.strip_prefix(&prefix)).and_then(|i| i.parse().ok());
                if let Some((i, sent)) = index.and_then(|i| seen.sent_at.remove(&i).map(|sent| (i, sent))) {
                    let latency = now.duration_since(sent).as_secs_f64() * 1000.0;
                    seen.latencies.push(latency);
                    let at = sent.duration_since(started).as_secs_f64() * 1000.0;
                    seen.trace.push((i, at, latency));
                }
                slots.add_permits(1);
                if seen.received >= n {
                    let _ = done_tx.try_send(());
                }
            }
        });
    }
    let properties = BasicProperties::default()
        .with_content_type("application/octet-stream".into())
        .with_delivery_mode(1)
        .with_priority(0);
    let cpu0 = cpu_seconds();
    for i in 0..n {
        pace(rate, started, i).await;
        slots.acquire().await.expect("semaphore").forget();
        let issued = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
        let mut request = serde_json::json!({"name": format!("c{run}-{i}"), "extension": kind, "issued": issued});
        if let Some(parameters) = &parameters {
            request[kind.as_str()] = parameters.clone();
        }
        let body = serde_json::to_vec(&request).expect("json");
        seen.lock().unwrap().sent_at.insert(i, Instant::now());
        ch.basic_publish(
            subscription.as_str().into(),
            "".into(),
            BasicPublishOptions::default(),
            &body,
            properties.clone(),
        )
        .await
        .expect("publish");
    }
    let limit = Duration::from_secs_f64(if rate > 0.0 { n as f64 / rate } else { 0.0 } + 60.0);
    let _ = tokio::time::timeout(limit, done_rx.recv()).await;
    let wall = started.elapsed().as_secs_f64();
    report(&seen.lock().unwrap(), n, wall, cpu_seconds() - cpu0);
}

async fn get(args: &[String]) {
    let [url, rate, n, rest @ ..] = args else { usage() };
    let rate: f64 = rate.parse().unwrap_or_else(|_| usage());
    let n: u64 = n.parse().unwrap_or_else(|_| usage());
    let window: usize = rest.first().map_or(64, |w| w.parse().unwrap_or_else(|_| usage()));
    let uri: hyper::Uri = url.parse().unwrap_or_else(|_| usage());
    let authority = uri.authority().map(|a| a.to_string()).unwrap_or_else(|| usage());
    let path = uri.path_and_query().map_or("/".to_string(), |p| p.to_string());
    let addr: std::net::SocketAddr =
        tokio::net::lookup_host(&authority).await.expect("resolve").next().expect("address");
    let request =
        Arc::new(format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n").into_bytes());
    let get = move |request: Arc<Vec<u8>>| async move {
        let mut body = Vec::new();
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        stream.write_all(&request).await.ok()?;
        stream.read_to_end(&mut body).await.ok()?;
        Some(
            body.starts_with(b"HTTP/1.1 200")
                && (body.windows(15).any(|w| w == b"probe_success 1") || !path_is_probe(&request)),
        )
    };
    paced(rate, n, window, |_| get(request.clone())).await;
}

/// The parameters of the built-in check `kind` for `target` (`None`: no check, the AMQP path
/// only, answered with status 3 as an unknown extension).
fn builtin_parameters(kind: &str, target: &str) -> Option<serde_json::Value> {
    match kind {
        "http" => Some(serde_json::json!({"url": target})),
        "tls" => {
            let (address, ca) = target.split_once(',').map_or((target, None), |(a, c)| (a, Some(c)));
            let (host, port) = address.rsplit_once(':').unwrap_or_else(|| usage());
            let port: u16 = port.parse().unwrap_or_else(|_| usage());
            let mut p = serde_json::json!({"host": host.trim_start_matches('[').trim_end_matches(']'), "port": port});
            if let Some(ca) = ca {
                p["ca_file"] = ca.into();
            }
            Some(p)
        }
        "dns" => {
            let (name, server) = target.split_once('@').unwrap_or_else(|| usage());
            Some(serde_json::json!({"name": name, "server": server, "type": "A"}))
        }
        "none" => None,
        _ => usage(),
    }
}

/// Bare TLS handshakes: connect, handshake (the chain verified against `CA_FILE`, or the
/// system's roots), close. The client configuration is built once, as a long-lived client's.
async fn tls(args: &[String]) {
    let [address, rate, n, rest @ ..] = args else { usage() };
    let rate: f64 = rate.parse().unwrap_or_else(|_| usage());
    let n: u64 = n.parse().unwrap_or_else(|_| usage());
    let window: usize = rest.first().map_or(64, |w| w.parse().unwrap_or_else(|_| usage()));
    let mut roots = rustls::RootCertStore::empty();
    match rest.get(1) {
        Some(ca) => {
            use rustls::pki_types::pem::PemObject;
            for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).expect("CA_FILE") {
                roots.add(cert.expect("CA certificate")).expect("CA certificate");
            }
        }
        None => {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
    }
    let mut config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
    // A full handshake each time, as the check and blackbox make: a resumed session would
    // show no certificate to the server's cost nor the client's.
    config.resumption = rustls::client::Resumption::disabled();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let addr: std::net::SocketAddr =
        tokio::net::lookup_host(address.as_str()).await.expect("resolve").next().expect("address");
    let host =
        address.rsplit_once(':').map_or(address.as_str(), |(h, _)| h).trim_start_matches('[').trim_end_matches(']');
    let server_name = rustls::pki_types::ServerName::try_from(host.to_string()).expect("server name");
    let ok = move |connector: tokio_rustls::TlsConnector, server_name: rustls::pki_types::ServerName<'static>| async move {
        let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let tls = connector.connect(server_name, stream).await.ok()?;
        Some(tls.get_ref().1.peer_certificates().is_some_and(|c| !c.is_empty()))
    };
    paced(rate, n, window, |_| ok(connector.clone(), server_name.clone())).await;
}

/// Bare DNS queries over UDP, as a stub resolver sends them: a fresh socket each, one `A`
/// question with recursion desired, the answer's ID and response code checked.
async fn dns(args: &[String]) {
    let [server, name, rate, n, rest @ ..] = args else { usage() };
    let rate: f64 = rate.parse().unwrap_or_else(|_| usage());
    let n: u64 = n.parse().unwrap_or_else(|_| usage());
    let window: usize = rest.first().map_or(64, |w| w.parse().unwrap_or_else(|_| usage()));
    let server: std::net::SocketAddr = server.parse().unwrap_or_else(|_| usage());
    let mut question = Vec::new();
    for label in name.trim_end_matches('.').split('.') {
        question.push(label.len() as u8);
        question.extend_from_slice(label.as_bytes());
    }
    question.extend_from_slice(&[0, 0, 1, 0, 1]); // root, type A, class IN
    let question = Arc::new(question);
    let ok = move |i: u64, question: Arc<Vec<u8>>| async move {
        let id = (i as u16).to_be_bytes();
        let mut query = vec![id[0], id[1], 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        query.extend_from_slice(&question);
        let socket = tokio::net::UdpSocket::bind(("127.0.0.1", 0)).await.ok()?;
        socket.connect(server).await.ok()?;
        socket.send(&query).await.ok()?;
        let mut answer = [0u8; 512];
        let got = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut answer)).await.ok()?.ok()?;
        // Same ID, a response, NOERROR, at least one answer.
        Some(got >= 12 && answer[..2] == id && answer[2] & 0x80 != 0 && answer[3] & 0x0f == 0 && answer[6..8] != [0, 0])
    };
    paced(rate, n, window, |i| ok(i, question.clone())).await;
}

/// `n` requests made by `request(i)` (true: it succeeded), paced at `rate` (0: flat out) with
/// at most `window` at once; the report.
async fn paced<F, R>(rate: f64, n: u64, window: usize, request: R)
where
    R: Fn(u64) -> F,
    F: std::future::Future<Output = Option<bool>> + Send + 'static,
{
    let seen = Arc::new(Mutex::new(Seen::default()));
    let slots = Arc::new(Semaphore::new(window));
    let cpu0 = cpu_seconds();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        pace(rate, started, i).await;
        let permit = slots.clone().acquire_owned().await.expect("semaphore");
        let (seen, request) = (seen.clone(), request(i));
        tasks.spawn(async move {
            let sent = Instant::now();
            let ok = request.await;
            let mut seen = seen.lock().unwrap();
            seen.received += 1;
            if ok == Some(true) {
                seen.ok += 1;
            }
            seen.latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let wall = started.elapsed().as_secs_f64();
    report(&seen.lock().unwrap(), n, wall, cpu_seconds() - cpu0);
}

/// A DNS server on 127.0.0.1:`PORT` (0: any free port), UDP only, authoritative for
/// `bench.concierge.` with one `A` record: `www.bench.concierge. 60 IN A 192.0.2.10`. Prints
/// the address it serves on, then serves until killed.
async fn dnsd(args: &[String]) {
    use hickory_server::Server;
    use hickory_server::proto::rr::rdata::{A, SOA};
    use hickory_server::proto::rr::{LowerName, Name, RData, Record};
    use hickory_server::store::in_memory::InMemoryZoneHandler;
    use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
    let [port, ..] = args else { usage() };
    let port: u16 = port.parse().unwrap_or_else(|_| usage());
    let name = |s: &str| <Name as std::str::FromStr>::from_str(s).expect("name");
    let origin = name("bench.concierge.");
    let mut zone: InMemoryZoneHandler = InMemoryZoneHandler::empty(origin.clone(), ZoneType::Primary, AxfrPolicy::Deny);
    let soa = SOA::new(name("ns1.bench.concierge."), name("hostmaster.bench.concierge."), 1, 3600, 600, 86400, 60);
    zone.upsert_mut(Record::from_rdata(origin.clone(), 60, RData::SOA(soa)), 1);
    zone.upsert_mut(Record::from_rdata(name("www.bench.concierge."), 60, RData::A(A::new(192, 0, 2, 10))), 1);
    let mut catalog = Catalog::new();
    catalog.upsert(LowerName::from(origin), vec![Arc::new(zone)]);
    let socket = tokio::net::UdpSocket::bind(("127.0.0.1", port)).await.expect("bind");
    println!("{}", socket.local_addr().expect("address"));
    let mut server = Server::new(catalog);
    server.register_socket(socket);
    let _ = server.block_until_done().await;
}

/// A blackbox-exporter `/probe` request: its success is in the body.
fn path_is_probe(request: &[u8]) -> bool {
    request.starts_with(b"GET /probe")
}

/// A loopback HTTP target that answers every request `200 ok` after holding it `HOLD_MS`,
/// however many are open at once (until killed).
async fn slow(args: &[String]) {
    let [port, hold, ..] = args else { usage() };
    let hold = Duration::from_millis(hold.parse().unwrap_or_else(|_| usage()));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port.parse::<u16>().unwrap_or_else(|_| usage())))
        .await
        .expect("bind");
    loop {
        let Ok((mut stream, _)) = listener.accept().await else { continue };
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            tokio::time::sleep(hold).await;
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n").await;
        });
    }
}

fn unique() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    STARTED_TICKS.get_or_init(cpu_ticks);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    match args.first().map(String::as_str) {
        Some("amqp") => runtime.block_on(amqp(&args[1..])),
        Some("get") => runtime.block_on(get(&args[1..])),
        Some("slow") => runtime.block_on(slow(&args[1..])),
        Some("tls") => runtime.block_on(tls(&args[1..])),
        Some("dns") => runtime.block_on(dns(&args[1..])),
        Some("dnsd") => runtime.block_on(dnsd(&args[1..])),
        _ => usage(),
    }
}
