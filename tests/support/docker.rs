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
