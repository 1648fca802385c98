//! A private moto server (PyPI's `moto[server]`, installed by `scripts/test.sh`) on
//! loopback: the stand-in for Amazon ECS, which is not reachable here. It speaks ECS's
//! JSON API, so the AWS SDK and `concierge scale --platform ecs` talk to it unchanged through
//! `AWS_ENDPOINT_URL`. Killed when its handle drops.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running moto server.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// Its port.
    pub port: u16,
    log: std::path::PathBuf,
}

impl Moto {
    /// Start one on a free loopback port. In CI a missing moto is a failure; elsewhere the
    /// ECS tests skip, saying so.
    pub async fn start() -> Option<Self> {
        // The probe listener is closed before moto starts (a temporary in the call would live
        // through the `.await`, holding the port and answering the readiness check itself).
        // Between the two, another test's process may take the port (the kernel hands freed
        // ports out again): moto then fails to bind and exits, and another port is tried.
        for attempt in 1.. {
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            match Self::launch(port).await {
                Ok(moto) => return moto,
                Err(why) if attempt < 5 => eprintln!("moto on {port}, attempt {attempt}: {why}; another port"),
                Err(why) => panic!("{why}"),
            }
        }
        unreachable!()
    }

    /// Start one on `port` (a fresh server: nothing of an earlier one's state).
    pub async fn start_on(port: u16) -> Option<Self> {
        Self::launch(port).await.unwrap_or_else(|why| panic!("{why}"))
    }

    /// Start one on `port`; `Err` if it exited before answering there.
    async fn launch(port: u16) -> Result<Option<Self>, String> {
        // `PYTHON -m moto.server` with the interpreter scripts/test.sh sets up (one path, spaces
        // and all), else a command line (`moto_server` on the PATH by default).
        let (program, args): (String, Vec<String>) = match std::env::var("CONCIERGE_TEST_MOTO_PYTHON") {
            Ok(python) => (python, vec!["-m".into(), "moto.server".into()]),
            Err(_) => {
                let line = std::env::var("CONCIERGE_TEST_MOTO").unwrap_or_else(|_| "moto_server".into());
                let mut words = line.split_whitespace().map(str::to_string);
                (words.next().unwrap_or_else(|| "moto_server".into()), words.collect())
            }
        };
        let log = std::env::temp_dir().join(format!("concierge-test-moto-{port}.log"));
        let child = Command::new(&program)
            .args(&args)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).map(Stdio::from).unwrap_or_else(|_| Stdio::null()))
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(error) => {
                assert!(std::env::var("CI").is_err(), "CI must run the ECS tests: {program}: {error}");
                eprintln!("SKIPPED: no moto server ({program}: {error}; scripts/test.sh installs moto[server])");
                return Ok(None);
            }
        };
        let mut moto = Self { child, endpoint: format!("http://127.0.0.1:{port}"), port, log: log.clone() };
        let start = Instant::now();
        while !answers_as_moto(port).await {
            if let Ok(Some(status)) = moto.child.try_wait() {
                let stderr = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(format!("moto exited ({status}) before listening on {port}: {stderr}"));
            }
            assert!(start.elapsed() < Duration::from_secs(30), "moto did not listen on {port} within 30 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Some(moto))
    }

    /// The AWS settings that point a process at this server (credentials in the environment come
    /// first; no instance metadata).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    /// An ECS client of this server, for setting up and reading back.
    pub fn ecs(&self) -> aws_sdk_ecs::Client {
        let config = aws_sdk_ecs::Config::builder()
            .behavior_version(aws_sdk_ecs::config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_sdk_ecs::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_ecs::config::Credentials::new("testing", "testing", None, None, "test"))
            .build();
        aws_sdk_ecs::Client::from_conf(config)
    }
}

/// Whether moto answers on `port`: its own API's `GET /moto-api/data.json` with a 200. Not
/// merely a listener — another test's process may hold a port picked as free (a client's
/// local API answered the ECS calls once) — nor the connect loop reaching itself (TCP's
/// simultaneous open, when the kernel picks the same port as the source).
async fn answers_as_moto(port: u16) -> bool {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        if stream.local_addr().ok() == stream.peer_addr().ok() {
            return None;
        }
        stream.write_all(b"GET /moto-api/data.json HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").await.ok()?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.ok()?;
        Some(head.starts_with(b"HTTP/1.") && &head[8..] == b" 200")
    };
    tokio::time::timeout(Duration::from_secs(5), exchange).await.ok().flatten().unwrap_or(false)
}

impl Moto {
    /// A cluster `cluster` (made if new) with a service `api` of `replicas` tasks of the
    /// task definition `probe`, tagged `tags`.
    pub async fn service(&self, cluster: &str, replicas: i32, tags: &[(&str, &str)]) {
        use aws_sdk_ecs::types::{ContainerDefinition, Tag};
        let ecs = self.ecs();
        ecs.create_cluster().cluster_name(cluster).send().await.unwrap();
        let container = ContainerDefinition::builder().name("probe").image("concierge:test").memory(64).build();
        ecs.register_task_definition().family("probe").container_definitions(container).send().await.unwrap();
        let tags: Vec<Tag> = tags.iter().map(|(k, v)| Tag::builder().key(*k).value(*v).build()).collect();
        ecs.create_service()
            .cluster(cluster)
            .service_name("api")
            .task_definition("probe")
            .desired_count(replicas)
            .set_tags(Some(tags).filter(|t| !t.is_empty()))
            .send()
            .await
            .unwrap();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A door in front of a moto server that refuses one ECS action while it is set (as AWS
/// refuses a role without the permission): each request is otherwise passed on to moto as
/// it came, on a connection of its own.
pub struct Door {
    /// The endpoint to give a client (`AWS_ENDPOINT_URL`).
    pub endpoint: String,
    refused: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

impl Door {
    /// A door to `moto` on a loopback port of its own, refusing nothing yet.
    pub async fn open(moto: &Moto) -> Door {
        use http_body_util::BodyExt as _;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let target = moto.endpoint.trim_start_matches("http://").to_string();
        let refused = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
        let shared = refused.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (target, refused) = (target.clone(), shared.clone());
                let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let (target, refused) = (target.clone(), refused.clone());
                    async move {
                        let action = request.headers().get("x-amz-target").and_then(|v| v.to_str().ok());
                        let action = action.and_then(|a| a.rsplit('.').next()).unwrap_or_default().to_string();
                        if refused.lock().unwrap().as_deref() == Some(action.as_str()) {
                            let body = format!(
                                r#"{{"__type":"AccessDeniedException","message":"not authorized to perform ecs:{action}"}}"#
                            );
                            let response = hyper::Response::builder()
                                .status(400)
                                .header("content-type", "application/x-amz-json-1.1")
                                .body(
                                    http_body_util::Full::new(bytes::Bytes::from(body)).map_err(|e| match e {}).boxed(),
                                )
                                .unwrap();
                            return Ok::<_, hyper::Error>(response);
                        }
                        let stream = tokio::net::TcpStream::connect(&target).await.unwrap();
                        let (mut sender, connection) =
                            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
                        tokio::spawn(connection);
                        let response = sender.send_request(request).await?;
                        Ok(response.map(|body| body.boxed()))
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
                );
            }
        });
        Door { endpoint, refused }
    }

    /// Refuse `action` (`TagResource`, `UpdateService`, …), or nothing.
    pub fn refuse(&self, action: Option<&str>) {
        *self.refused.lock().unwrap() = action.map(str::to_string);
    }

    /// [`Moto::env`] with this door as the endpoint.
    pub fn env(&self, moto: &Moto) -> Vec<(&'static str, String)> {
        let mut env = moto.env();
        for (key, value) in &mut env {
            if *key == "AWS_ENDPOINT_URL" {
                *value = self.endpoint.clone();
            }
        }
        env
    }
}
