//! Side-by-side benchmark: N HTTP checks through Concierge's built-in HTTP check versus
//! the same N checks through the command path running monitoring-plugins' `check_http`
//! (the way sensu-client users run them), against one local HTTP server.
//!
//! Run it with `bench/run http` (or `cargo bench --bench checks -- http --n 2000`).
//!
//! The orchestrator starts the target server as its own process, then runs each side in
//! a fresh worker process, interleaved (A, B, A, B, …), so one side's allocations or
//! caches never help the other. Each worker pushes N check requests through the same
//! executor the client uses (`Executor::process`) and reports its wall time, its CPU
//! time including its children (getrusage self + children), and its peak RSS. The table
//! gives medians over the rounds and the ratio.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use concierge::checks::{Executor, ExecutorSettings, builtins};
use nix::sys::resource::{UsageWho, getrusage};
use serde_json::{Value, json};

const CHECK_HTTP: &str = "/usr/lib/nagios/plugins/check_http";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let get = |flag: &str, default: &str| -> String {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or_else(|| default.to_string())
    };
    match args.first().map(String::as_str) {
        Some("serve") => serve(get("--port-file", "")),
        Some("worker") => {
            worker(&get("--mode", "builtin"), get("--n", "1000").parse().unwrap_or(1000), &get("--url", ""))
        }
        Some("http") | None => {
            orchestrate(get("--n", "2000").parse().unwrap_or(2000), get("--rounds", "3").parse().unwrap_or(3))
        }
        Some(other) => {
            eprintln!("unknown benchmark {other:?}; try: http [--n N] [--rounds R]");
            std::process::exit(2);
        }
    }
}

/// A minimal HTTP/1.1 server answering `200 ok` to everything, on 127.0.0.1.
fn serve(port_file: String) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    rt.block_on(async move {
        // A deep accept queue: bursts of connects must not overflow it into SYN retries.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(4096).unwrap();
        std::fs::write(&port_file, listener.local_addr().unwrap().port().to_string()).unwrap();
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(http_body_util::Full::new(
                        bytes::Bytes::from_static(b"ok"),
                    )))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

/// Run N checks of one kind and print `{"wall","cpu","rss_kb","children_rss_kb","ok"}`.
fn worker(mode: &str, n: usize, url: &str) {
    // The runtime `concierge run` uses by default (`--worker-threads 1`).
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let port = url.rsplit(':').next().unwrap_or("80").trim_end_matches("/ok").to_string();
    let (wall, ok) = rt.block_on(async {
        let executor = Arc::new(Executor::new(ExecutorSettings {
            client: json!({"name": "bench"}).as_object().cloned().unwrap(),
            spawn_limit: 12,
            builtin_limit: 500,
            builtins: builtins(),
            ..ExecutorSettings::default()
        }));
        let started = Instant::now();
        if mode == "floor" {
            return floor(n, &port).await;
        }
        let mut tasks = Vec::with_capacity(n);
        for i in 0..n {
            let check = match mode {
                "builtin" => json!({"name": format!("c{i}"), "extension": "http", "http": {"url": url, "timeout": 10}}),
                _ => json!({"name": format!("c{i}"), "command": format!("{CHECK_HTTP} -H 127.0.0.1 -p {port} -u /ok -t 10"), "timeout": 10}),
            };
            let executor = executor.clone();
            tasks.push(tokio::spawn(async move { executor.process(check.as_object().cloned().unwrap()).await }));
        }
        let mut ok = 0;
        for task in tasks {
            if let Ok(Some(result)) = task.await
                && result.get("status") == Some(&Value::from(0))
            {
                ok += 1;
            }
        }
        (started.elapsed(), ok)
    });
    let me = getrusage(UsageWho::RUSAGE_SELF).unwrap();
    let children = getrusage(UsageWho::RUSAGE_CHILDREN).unwrap();
    let secs = |u: &nix::sys::resource::Usage| {
        let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
        t(u.user_time()) + t(u.system_time())
    };
    println!(
        "{}",
        json!({"wall": wall.as_secs_f64(), "cpu": secs(&me) + secs(&children), "rss_kb": peak_rss_kb(), "children_rss_kb": children.max_rss(), "ok": ok})
    );
}

/// This process's peak RSS (`VmHWM`): its own address space's. `getrusage`'s `max_rss` would
/// be at least the harness's peak, which Linux keeps through exec (a worker is spawned from
/// the harness's address space).
fn peak_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The floor under any HTTP check: N tasks, at most 500 at a time as the built-in's
/// slots allow, that each open a fresh TCP connection, write a fixed GET, read until the
/// response is complete and close — no HTTP library, no check logic, no result. What
/// remains is the kernel and the runtime.
async fn floor(n: usize, port: &str) -> (Duration, usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let slots = Arc::new(tokio::sync::Semaphore::new(500));
    let started = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let slots = slots.clone();
            tokio::spawn(async move {
                let _slot = slots.acquire().await.ok()?;
                let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
                stream.write_all(b"GET /ok HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n").await.ok()?;
                let mut buffer = [0u8; 1024];
                let mut filled = 0;
                while !buffer[..filled].ends_with(b"\r\n\r\nok") {
                    let read = stream.read(&mut buffer[filled..]).await.ok()?;
                    if read == 0 {
                        return None;
                    }
                    filled += read;
                }
                buffer.starts_with(b"HTTP/1.1 200").then_some(())
            })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        if let Ok(Some(())) = task.await {
            ok += 1;
        }
    }
    (started.elapsed(), ok)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn orchestrate(n: usize, rounds: usize) {
    if !std::path::Path::new(CHECK_HTTP).exists() {
        eprintln!("{CHECK_HTTP} is missing: install Debian's monitoring-plugins-basic (bench/run does)");
        std::process::exit(2);
    }
    let me = std::env::current_exe().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port_file = dir.path().join("port");
    let mut server = Command::new(&me).args(["serve", "--port-file", port_file.to_str().unwrap()]).spawn().unwrap();
    let started = Instant::now();
    while !port_file.exists() || std::fs::read_to_string(&port_file).unwrap_or_default().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(10), "server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let url = format!("http://127.0.0.1:{}/ok", std::fs::read_to_string(&port_file).unwrap());
    let mut samples: Vec<(&str, Value)> = Vec::new();
    for round in 0..rounds {
        for mode in ["builtin", "command", "floor"] {
            let out = Command::new(&me)
                .args(["worker", "--mode", mode, "--n", &n.to_string(), "--url", &url])
                .stderr(Stdio::inherit())
                .output()
                .unwrap();
            let sample: Value = serde_json::from_slice(&out.stdout).expect("worker output");
            eprintln!("round {}: {mode:8} {sample}", round + 1);
            samples.push((mode, sample));
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    let stat = |mode: &str, key: &str| {
        median(samples.iter().filter(|(m, _)| *m == mode).map(|(_, s)| s[key].as_f64().unwrap()).collect())
    };
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    println!(
        "HTTP checks: {n} per run, {rounds} interleaved rounds, medians; {cores} cores; target http://127.0.0.1 (local hyper server)"
    );
    println!("{:<36} {:>14} {:>20} {:>16} {:>8}", "path", "checks/s", "CPU-s per 1000", "peak RSS (MB)", "ok");
    let mut rows = Vec::new();
    for (mode, label) in [
        ("builtin", "concierge built-in http"),
        ("command", "command: check_http (sh -c, 12 slots)"),
        ("floor", "floor: bare connect/GET/close"),
    ] {
        let wall = stat(mode, "wall");
        let cpu = stat(mode, "cpu");
        let rss = stat(mode, "rss_kb") / 1024.0;
        let ok = stat(mode, "ok");
        println!("{label:<36} {:>14.0} {:>20.3} {:>16.1} {:>8.0}", n as f64 / wall, cpu / n as f64 * 1000.0, rss, ok);
        rows.push((n as f64 / wall, cpu / n as f64 * 1000.0));
    }
    println!(
        "ratio: built-in is {:.1}x faster and uses {:.1}x less CPU per check",
        rows[0].0 / rows[1].0,
        rows[1].1 / rows[0].1
    );
    println!(
        "floor: the kernel and runtime alone cost {:.0}% of the built-in check's CPU",
        rows[2].1 / rows[0].1 * 100.0
    );
}
