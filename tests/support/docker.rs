//! The private Docker engine of `scripts/test.sh` (`scripts/docker.sh`): its client, and
//! containers and Swarm stacks that are removed when their handle drops, even when a test
//! fails. Every container uses the host network, so all traffic stays on 127.0.0.1.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The engine, if this run has one. In CI a missing engine is a failure; elsewhere (no root)
/// the container tests skip, saying so.
pub fn engine() -> Option<Engine> {
    match (std::env::var("CONCIERGE_TEST_DOCKER_HOST"), std::env::var("CONCIERGE_TEST_IMAGE")) {
        (Ok(host), Ok(image)) => Some(Engine {
            host,
            image,
            client: std::env::var("CONCIERGE_TEST_DOCKER").unwrap_or_else(|_| "/usr/bin/docker".into()),
        }),
        _ => {
            assert!(
                std::env::var("CI").is_err(),
                "CI must run the container tests: scripts/test.sh starts the engine as root"
            );
            eprintln!("SKIPPED: no private Docker engine (run scripts/test.sh as root for the container tests)");
            None
        }
    }
}

/// A private Docker engine.
#[derive(Clone)]
pub struct Engine {
    host: String,
    client: String,
    /// The image under test (`concierge:test`).
    pub image: String,
}

impl Engine {
    /// `docker ARGS`, with this engine.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.client);
        cmd.env("DOCKER_HOST", &self.host).args(args);
        cmd
    }

    /// Run `docker ARGS`; the output, whatever the status.
    pub fn output(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("docker client")
    }

    /// Run `docker ARGS`, which must succeed; its trimmed stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert!(
            out.status.success(),
            "docker {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// `docker run -d --network host [ARGS] IMAGE [CMD]`: removed on drop.
    pub fn run(&self, name: &str, args: &[&str], cmd: &[&str]) -> Container {
        let mut all = vec!["run", "-d", "--network", "host", "--name", name];
        all.extend_from_slice(args);
        all.push(&self.image);
        all.extend_from_slice(cmd);
        self.ok(&all);
        Container { engine: self.clone(), name: name.to_string() }
    }

    /// `docker inspect -f FORMAT NAME`.
    pub fn inspect(&self, name: &str, format: &str) -> String {
        self.ok(&["inspect", "-f", format, name])
    }

    /// Poll `check` every 200 ms until it holds or `timeout` passes; how long it took.
    pub async fn wait_for(&self, what: &str, timeout: Duration, mut check: impl FnMut() -> bool) -> Duration {
        let started = Instant::now();
        while !check() {
            assert!(started.elapsed() < timeout, "{what}: not within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        started.elapsed()
    }
}

/// A container, removed (with its anonymous volumes) when dropped.
pub struct Container {
    engine: Engine,
    /// Its name.
    pub name: String,
}

impl Container {
    /// `docker exec NAME ARGS` (as the image's user); stdout.
    pub fn exec(&self, args: &[&str]) -> String {
        let mut all = vec!["exec", self.name.as_str()];
        all.extend_from_slice(args);
        self.engine.ok(&all)
    }

    /// `docker inspect` of this container.
    pub fn inspect(&self, format: &str) -> String {
        self.engine.inspect(&self.name, format)
    }

    /// Its logs (stdout and stderr).
    pub fn logs(&self) -> String {
        let out = self.engine.output(&["logs", &self.name]);
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.engine.output(&["rm", "-f", "-v", &self.name]);
    }
}

/// A Swarm stack, removed when dropped (its tasks' containers with it).
pub struct Stack {
    engine: Engine,
    /// The stack's name (services are `NAME_SERVICE`).
    pub name: String,
}

impl Stack {
    /// `docker stack deploy -c FILE… NAME`.
    pub fn deploy(engine: &Engine, name: &str, files: &[&std::path::Path]) -> Self {
        let mut args = vec!["stack".to_string(), "deploy".to_string()];
        for f in files {
            args.push("-c".into());
            args.push(f.display().to_string());
        }
        args.push(name.to_string());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        engine.ok(&args);
        Self { engine: engine.clone(), name: name.to_string() }
    }

    /// The running containers of a service: (task slot, container id).
    pub fn containers(&self, service: &str) -> Vec<(u32, String)> {
        let label = format!("label=com.docker.swarm.service.name={}_{service}", self.name);
        let ids = self.engine.ok(&["ps", "-q", "--filter", &label]);
        ids.lines()
            .filter_map(|id| {
                let task = self.engine.inspect(id, "{{index .Config.Labels \"com.docker.swarm.task.name\"}}");
                // `STACK_SERVICE.SLOT.TASKID`
                let slot = task.rsplit('.').nth(1)?.parse().ok()?;
                Some((slot, id.to_string()))
            })
            .collect()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.engine.output(&["stack", "rm", &self.name]);
        // Wait for the tasks' containers to go, so the next test starts on a quiet engine.
        let label = format!("label=com.docker.stack.namespace={}", self.name);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let out = self.engine.output(&["ps", "-aq", "--filter", &label]);
            if out.stdout.iter().all(u8::is_ascii_whitespace) {
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

impl Engine {
    /// The replicas `service` is asked for.
    pub fn replicas(&self, service: &str) -> u64 {
        let out = self.ok(&["service", "inspect", service, "--format", "{{.Spec.Mode.Replicated.Replicas}}"]);
        out.parse().unwrap()
    }

    /// The tasks of `service` that run (and passed their health check, if any).
    pub fn running_tasks(&self, service: &str) -> usize {
        let states =
            self.ok(&["service", "ps", service, "--filter", "desired-state=running", "--format", "{{.CurrentState}}"]);
        states.lines().filter(|s| s.starts_with("Running")).count()
    }
}

/// A Swarm service of Concierge replicas (the image, `run`) on the host network, named
/// `NAME-SLOT`, on one round-robin subscription, with ports from the task slot (HTTP socket at
/// `http_base + slot`); removed when dropped.
pub struct Fleet {
    engine: Engine,
    /// The service's name.
    pub name: String,
    /// The HTTP socket of slot N listens on `http_base + N`.
    pub http_base: u16,
}

impl Fleet {
    /// Create it with `replicas`, `labels` and `env` (`KEY=VALUE`) besides the fleet's own.
    pub fn create(engine: &Engine, subscription: &str, replicas: u32, labels: &[&str], env: &[&str]) -> Self {
        let name = super::unique("fleet").replace('-', "_");
        let http_base = 20000 + (std::process::id() % 2000) as u16 * 4;
        let slot = "{{.Task.Slot}}";
        let own = [
            format!("RABBITMQ_URL={}", super::amqp_url()),
            format!("SENSU_CLIENT_NAME={name}-{slot}"),
            format!("SENSU_CLIENT_SUBSCRIPTIONS={subscription}"),
            format!("CONCIERGE_HTTP_SOCKET_PORT={http_base}+{slot}"),
            format!("CONCIERGE_SOCKET_PORT={}+{slot}", http_base + 2000),
        ];
        let mut args: Vec<String> = ["service", "create", "--detach", "--quiet", "--name", &name, "--network", "host"]
            .map(String::from)
            .to_vec();
        for label in labels {
            args.extend(["--label".to_string(), label.to_string()]);
        }
        for e in own.iter().map(String::as_str).chain(env.iter().copied()) {
            args.extend(["--env".to_string(), e.to_string()]);
        }
        let replicas = replicas.to_string();
        args.extend(["--replicas", &replicas, "--stop-grace-period", "15s", &engine.image, "run"].map(String::from));
        engine.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
        Self { engine: engine.clone(), name, http_base }
    }

    /// The replicas the service is asked for.
    pub fn replicas(&self) -> u64 {
        self.engine.replicas(&self.name)
    }

    /// Its tasks that run (and, with the image's health check, passed it).
    pub fn running(&self) -> usize {
        self.engine.running_tasks(&self.name)
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let _ = self.engine.output(&["service", "rm", &self.name]);
    }
}
