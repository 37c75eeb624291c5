//! The processes a benchmark case runs: an `scrc dev-broker` and `replicas` `scrc run` instances in one consumer
//! group. Real processes, so that scaling across replicas is measured as it is deployed.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Where the `scrc` binary is and what every process it starts gets in its environment (images, overrides).
#[derive(Debug, Clone)]
pub struct Tools {
    pub scrc: PathBuf,
    pub env: Vec<(String, String)>,
}

pub struct Broker {
    child: Child,
    pub brokers: String,
}

impl Broker {
    /// Starts `scrc dev-broker` and reads its `KAFKA_BROKERS=` line.
    ///
    /// # Errors
    /// When the process cannot start or does not announce its address.
    pub async fn start(tools: &Tools, partitions: usize) -> anyhow::Result<Self> {
        let mut child = Command::new(&tools.scrc)
            .args(["dev-broker", "--partitions", &partitions.to_string()])
            .envs(tools.env.iter().cloned())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {} dev-broker", tools.scrc.display()))?;
        let stdout = child.stdout.take().context("dev-broker stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .context("dev-broker did not start within 30 s")??
            .context("dev-broker exited before announcing its address")?;
        let brokers = line
            .strip_prefix("KAFKA_BROKERS=")
            .with_context(|| format!("unexpected first line from dev-broker: {line:?}"))?
            .to_owned();
        Ok(Self { child, brokers })
    }

    pub async fn stop(mut self) {
        terminate(&mut self.child, Duration::from_secs(10)).await;
    }
}

/// The runners' `session.timeout.ms`: how long the group keeps a member that stopped heartbeating.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(6);

pub struct Runner {
    child: Child,
}

impl Runner {
    /// Starts `scrc run` against the embedded broker at `brokers`, logging (JSON) to `log`.
    ///
    /// # Errors
    /// When the log cannot be created or the process cannot start.
    pub fn start(tools: &Tools, brokers: &str, parallelism: usize, instance: &str, log: &Path) -> anyhow::Result<Self> {
        let log = std::fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
        // The embedded broker answers an idle fetch only when its wait expires, so keep the wait short.
        Self::spawn(
            tools,
            brokers,
            parallelism,
            instance,
            log,
            &[("RDKAFKA_FETCH_WAIT_MAX_MS", "10")],
        )
    }

    /// Starts `scrc run` against `brokers` with `extra` variables on top of the harness's, logging (JSON) to `log`.
    ///
    /// # Errors
    /// When the process cannot start.
    pub fn spawn(
        tools: &Tools,
        brokers: &str,
        parallelism: usize,
        instance: &str,
        log: std::fs::File,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let child = Command::new(&tools.scrc)
            .arg("run")
            .envs(tools.env.iter().cloned())
            .env("KAFKA_BROKERS", brokers)
            .env("KAFKA_GROUP_ID", "bench-runners")
            .env("RUNNER_MAX_PARALLEL", parallelism.to_string())
            .env("RUNNER_INSTANCE_ID", instance)
            // Several runners share this host: no metrics listener, which would want the same port.
            .env("RUNNER_HTTP_ADDR", "")
            .env("RUNNER_SHUTDOWN_GRACE", "20s")
            .env("LOG_FORMAT", "json")
            .env("RDKAFKA_SESSION_TIMEOUT_MS", SESSION_TIMEOUT.as_millis().to_string())
            .env("RDKAFKA_HEARTBEAT_INTERVAL_MS", "500")
            .envs(extra.iter().map(|(name, value)| (*name, *value)))
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {} run", tools.scrc.display()))?;
        Ok(Self { child })
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Whether the process has exited (for example on a configuration error).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGTERM and wait up to 40 s. Returns the exit status, or `None` when the runner had to be killed.
    pub async fn stop(mut self) -> Option<std::process::ExitStatus> {
        terminate(&mut self.child, Duration::from_secs(40)).await
    }

    /// SIGKILL and wait: the runner gets no chance to finish, publish or commit anything.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }
}

/// A memory figure of a process from `/proc/<pid>/status` (`VmRSS` now, `VmHWM` its peak), in KiB.
pub fn memory_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
}

/// SIGTERM, then SIGKILL if the process has not exited within `grace`. Returns the exit status of a process that
/// exited by itself.
async fn terminate(child: &mut Child, grace: Duration) -> Option<std::process::ExitStatus> {
    if let Some(pid) = child.id() {
        let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
    }
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => status.ok(),
        Err(_) => {
            let _ = child.kill().await;
            None
        }
    }
}

/// The broker image of `scripts/build-deploy-images.sh`: tansu, an out-of-process Kafka-protocol broker.
pub const TANSU_IMAGE: &str = "scrc-local/tansu:0.6.0";

/// A tansu broker in a container started with the Docker CLI, its data in SQLite inside the container. Used where
/// the embedded broker is not enough: its group coordinator is librdkafka's mock, while tansu's is a real one with
/// real rebalances.
pub struct Tansu {
    container: String,
    pub brokers: String,
}

impl Tansu {
    /// Whether the tansu image is present on the engine.
    pub async fn image_present() -> bool {
        Command::new("docker")
            .args(["image", "inspect", TANSU_IMAGE])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .is_ok_and(|status| status.success())
    }

    /// Starts tansu on a free local port, waits until it listens, and creates scrc's topics with `partitions`
    /// partitions through `scrc create-topics`.
    ///
    /// # Errors
    /// When the container does not start or listen, or the topics cannot be created.
    pub async fn start(tools: &Tools, partitions: usize, label: &str) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .context("no free local port")?
            .port();
        let started = Command::new("docker")
            .args(["run", "--detach", "--label", label, "--publish"])
            .arg(format!("{port}:9092"))
            .args([TANSU_IMAGE, "broker", "--storage-engine", "sqlite://tansu.db"])
            .arg("--advertised-listener-url")
            .arg(format!("tcp://localhost:{port}"))
            .output()
            .await
            .context("cannot run the docker CLI")?;
        if !started.status.success() {
            anyhow::bail!(
                "docker run {TANSU_IMAGE} failed: {}",
                String::from_utf8_lossy(&started.stderr).trim()
            );
        }
        let broker = Self {
            container: String::from_utf8_lossy(&started.stdout).trim().to_owned(),
            brokers: format!("localhost:{port}"),
        };
        let listening = tokio::time::Instant::now() + Duration::from_secs(60);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            if tokio::time::Instant::now() > listening {
                broker.stop().await;
                anyhow::bail!("tansu never listened on port {port}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let created = Command::new(&tools.scrc)
            .args(["create-topics", "--partitions", &partitions.to_string()])
            .envs(tools.env.iter().cloned())
            .env("KAFKA_BROKERS", &broker.brokers)
            .stdout(Stdio::null())
            .output()
            .await
            .context("cannot run scrc create-topics")?;
        if !created.status.success() {
            broker.stop().await;
            anyhow::bail!(
                "scrc create-topics failed: {}",
                String::from_utf8_lossy(&created.stderr).trim()
            );
        }
        Ok(broker)
    }

    /// Removes the container and its anonymous volumes.
    pub async fn stop(self) {
        let _ = Command::new("docker")
            .args(["rm", "--force", "--volumes", &self.container])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
    }
}

/// Containers and volumes on the engine still labelled with scrc instance `instance` (by the Docker CLI).
///
/// # Errors
/// When the Docker CLI fails.
pub async fn leftovers(instance: &str) -> anyhow::Result<(usize, usize)> {
    let filter = format!("label=scrc.instance={instance}");
    let count = |args: &'static [&'static str]| {
        let filter = filter.clone();
        async move {
            let listed = Command::new("docker")
                .args(args)
                .args(["--quiet", "--filter", &filter])
                .output()
                .await
                .context("cannot run the docker CLI")?;
            if !listed.status.success() {
                anyhow::bail!(
                    "docker {} failed: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&listed.stderr).trim()
                );
            }
            Ok(String::from_utf8_lossy(&listed.stdout)
                .lines()
                .filter(|l| !l.trim().is_empty())
                .count())
        }
    };
    Ok((count(&["ps", "--all"]).await?, count(&["volume", "ls"]).await?))
}
