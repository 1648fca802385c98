//! The private broker started by `scripts/test.sh` and what talks to it: a "server side"
//! that publishes requests and taps results exactly as sensu-server does, a client process
//! to start, stop and kill, and a TCP proxy to cut the client off from the broker.

use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer, ExchangeKind};
use serde_json::Value;

use super::unique;

/// The private broker's URL (set by `scripts/test.sh`).
pub fn amqp_url() -> String {
    std::env::var("CONCIERGE_TEST_AMQP_URL")
        .expect("CONCIERGE_TEST_AMQP_URL is not set: run the broker tests through scripts/test.sh")
}

/// Run `rabbitmqctl` against the private broker.
pub fn rabbitmqctl(args: &[&str]) -> String {
    let ctl = std::env::var("CONCIERGE_TEST_RABBITMQCTL").expect("CONCIERGE_TEST_RABBITMQCTL (run scripts/test.sh)");
    let out = Command::new(ctl).args(args).output().expect("rabbitmqctl");
    assert!(out.status.success(), "rabbitmqctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The server side of the broker: a connection and a channel.
pub struct ServerSide {
    pub conn: Connection,
    pub channel: Channel,
}

impl ServerSide {
    pub async fn connect() -> Self {
        Self::connect_to(&amqp_url()).await
    }

    pub async fn connect_to(url: &str) -> Self {
        let conn = Connection::connect(url, ConnectionProperties::default()).await.expect("test connection");
        let channel = conn.create_channel().await.expect("test channel");
        Self { conn, channel }
    }

    /// Publish a check request as sensu-server's `publish_check_request` does.
    pub async fn publish_request(&self, subscription: &str, request: &Value) {
        self.publish_raw(subscription, &serde_json::to_vec(request).unwrap()).await;
    }

    /// Publish any bytes to a subscription's exchange (declared with Sensu's flags).
    pub async fn publish_raw(&self, subscription: &str, body: &[u8]) {
        let kind = match subscription.split_once(':') {
            Some(("roundrobin" | "direct", _)) => ExchangeKind::Direct,
            _ => ExchangeKind::Fanout,
        };
        declare_exchange(&self.channel, subscription, kind).await;
        self.channel
            .basic_publish(
                subscription.into(),
                "".into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default()
                    .with_content_type("application/octet-stream".into())
                    .with_delivery_mode(1)
                    .with_priority(0),
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
    }

    /// A private tap on the `results` pipe (a copy of everything published there).
    pub async fn tap_results(&self) -> Tap {
        self.tap("results").await
    }

    /// A private tap on the `keepalives` pipe.
    pub async fn tap_keepalives(&self) -> Tap {
        self.tap("keepalives").await
    }

    async fn tap(&self, exchange: &str) -> Tap {
        declare_exchange(&self.channel, exchange, ExchangeKind::Direct).await;
        let queue = unique(&format!("tap-{exchange}"));
        self.channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions { exclusive: true, auto_delete: true, ..Default::default() },
                FieldTable::default(),
            )
            .await
            .expect("tap queue");
        self.channel
            .queue_bind(queue.as_str().into(), exchange.into(), "".into(), Default::default(), FieldTable::default())
            .await
            .expect("tap bind");
        let consumer = self
            .channel
            .basic_consume(
                queue.as_str().into(),
                "".into(),
                BasicConsumeOptions { no_ack: true, ..Default::default() },
                FieldTable::default(),
            )
            .await
            .expect("tap consume");
        Tap { consumer, exchange: exchange.to_string() }
    }

    /// `(messages, consumers)` of a queue, or None if it does not exist.
    pub async fn queue_state(&self, queue: &str) -> Option<(u32, u32)> {
        let channel = self.conn.create_channel().await.ok()?;
        let q = channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions { passive: true, ..Default::default() },
                FieldTable::default(),
            )
            .await
            .ok()?;
        let _ = channel.close(200, "".into()).await;
        Some((q.message_count(), q.consumer_count()))
    }
}

/// Declare an exchange with Sensu's flags (non-durable, not auto-delete).
pub async fn declare_exchange(channel: &Channel, name: &str, kind: ExchangeKind) {
    channel
        .exchange_declare(
            name.into(),
            kind,
            ExchangeDeclareOptions { durable: false, auto_delete: false, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .expect("exchange.declare");
}

/// Copies of what was published to an exchange.
pub struct Tap {
    consumer: Consumer,
    exchange: String,
}

impl Tap {
    /// The next message whose client (results: `client`, keepalives: `name`) is `client`.
    pub async fn next_for(&mut self, client: &str, timeout: Duration) -> Option<(Value, Delivery)> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let delivery = tokio::time::timeout_at(deadline, self.consumer.next()).await.ok()??.ok()?;
            let body: Value = serde_json::from_slice(&delivery.data).expect("published JSON");
            let from = if self.exchange == "keepalives" { &body["name"] } else { &body["client"] };
            if from == client {
                return Some((body, delivery));
            }
        }
    }

    /// The next message, whoever it is from.
    pub async fn next_any(&mut self, timeout: Duration) -> Option<Value> {
        let delivery = tokio::time::timeout(timeout, self.consumer.next()).await.ok()??.ok()?;
        Some(serde_json::from_slice(&delivery.data).expect("published JSON"))
    }

    /// Up to `n` messages for `client` within `timeout`.
    pub async fn collect_for(&mut self, client: &str, n: usize, timeout: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut out = Vec::new();
        while out.len() < n {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_for(client, left).await {
                Some((body, _)) => out.push(body),
                None => break,
            }
        }
        out
    }
}

/// A `concierge run` process.
pub struct Client {
    pub name: String,
    child: Option<Child>,
    pub dir: tempfile::TempDir,
}

impl Client {
    /// Start a client named `name` with `subscriptions`, connected to `url`.
    pub fn start(name: &str, subscriptions: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_with_url(&amqp_url(), name, subscriptions, env)
    }

    pub fn start_with_url(url: &str, name: &str, subscriptions: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        let mut cmd = super::bin::concierge_in(dir.path());
        cmd.arg("run")
            .env("RABBITMQ_URL", url)
            .env("SENSU_CLIENT_NAME", name)
            .env("SENSU_CLIENT_SUBSCRIPTIONS", subscriptions.join(","))
            .env("CONCIERGE_LOG_LEVEL", "debug")
            .env("CONCIERGE_PUBLISH_TIMEOUT", "5")
            .stdout(Stdio::null())
            .stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start concierge");
        Self { name: name.to_string(), child: Some(child), dir }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// How many times a log line with this message was written.
    pub fn count_log(&self, message: &str) -> usize {
        self.logs().lines().filter(|l| l.contains(&format!("\"message\":\"{message}"))).count()
    }

    /// Wait until the log shows `message` `n` times.
    pub async fn wait_log(&self, message: &str, n: usize, timeout: Duration) {
        let started = Instant::now();
        while self.count_log(message) < n {
            if started.elapsed() > timeout {
                panic!("{}: no {n}× {message:?} within {timeout:?}; log:\n{}", self.name, self.logs());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The address a socket bound (from the log): `"HTTP socket listening"` or
    /// `"listening for check results (TCP and UDP)"`.
    pub async fn bound(&self, message: &str) -> std::net::SocketAddr {
        self.wait_log(message, 1, Duration::from_secs(20)).await;
        let line = self.logs().lines().find(|l| l.contains(&format!("\"message\":\"{message}"))).unwrap().to_string();
        let doc: Value = serde_json::from_str(&line).unwrap();
        doc["bound"].as_str().unwrap().parse().unwrap()
    }

    /// Wait until subscribed (bootstrap complete).
    pub async fn ready(&self) {
        self.wait_log("bootstrap complete", 1, Duration::from_secs(30)).await;
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), signal).unwrap();
    }

    /// Wait for the process to exit.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.as_mut()?.try_wait().unwrap() {
                return Some(status);
            }
            if started.elapsed() > timeout {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn kill(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("--- log of {} ---\n{}", self.name, self.logs());
        }
    }
}

/// A TCP proxy in front of the broker that can cut all connections and refuse new ones.
pub struct Proxy {
    pub port: u16,
    open: Arc<AtomicBool>,
    generation: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Proxy {
    /// A proxy to the private broker of `scripts/test.sh`.
    pub async fn to_broker() -> Self {
        Self::start(std::env::var("CONCIERGE_TEST_AMQP_PORT").unwrap().parse().unwrap()).await
    }

    pub async fn start(target_port: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = Arc::new(AtomicBool::new(true));
        let (tx, _) = tokio::sync::watch::channel(0u64);
        let generation = Arc::new(tx);
        let (o, g) = (open.clone(), generation.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { return };
                if !o.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let mut cut = g.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(("127.0.0.1", target_port)).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self { port, open, generation }
    }

    /// Drop every proxied connection and refuse new ones.
    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Accept connections again.
    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }

    /// The broker URL through this proxy.
    pub fn url(&self) -> String {
        let url = amqp_url();
        let port = std::env::var("CONCIERGE_TEST_AMQP_PORT").unwrap();
        url.replace(&format!(":{port}/"), &format!(":{}/", self.port))
    }
}
