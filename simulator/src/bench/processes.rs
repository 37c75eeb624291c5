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

pub struct Runner {
    child: Child,
}

impl Runner {
    /// Starts `scrc run` against `brokers`, logging (JSON) to `log`.
    ///
    /// # Errors
    /// When the process cannot start.
    pub fn start(tools: &Tools, brokers: &str, parallelism: usize, instance: &str, log: &Path) -> anyhow::Result<Self> {
        let log = std::fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
        let child = Command::new(&tools.scrc)
            .arg("run")
            .envs(tools.env.iter().cloned())
            .env("KAFKA_BROKERS", brokers)
            .env("KAFKA_GROUP_ID", "bench-runners")
            .env("RUNNER_MAX_PARALLEL", parallelism.to_string())
            .env("RUNNER_INSTANCE_ID", instance)
            .env("RUNNER_SHUTDOWN_GRACE", "20s")
            .env("LOG_FORMAT", "json")
            .env("RDKAFKA_SESSION_TIMEOUT_MS", "6000")
            .env("RDKAFKA_HEARTBEAT_INTERVAL_MS", "500")
            // The embedded broker answers an idle fetch only when its wait expires, so keep the wait short.
            .env("RDKAFKA_FETCH_WAIT_MAX_MS", "10")
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

    pub async fn stop(mut self) {
        terminate(&mut self.child, Duration::from_secs(40)).await;
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

/// SIGTERM, then SIGKILL if the process has not exited within `grace`.
async fn terminate(child: &mut Child, grace: Duration) {
    if let Some(pid) = child.id() {
        let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
    }
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
}
