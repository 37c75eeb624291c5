//! Health that means something. While `scrc run` serves, it checks every 10 s that the Kafka brokers answer and
//! that the Docker engine answers, and writes the outcome to `RUNNER_HEALTH_FILE`. `scrc health` (the container's
//! HEALTHCHECK) reads that file: it is healthy only if the file is fresh and both checks passed, so a runner that
//! hangs, loses its brokers, or loses its Docker engine turns unhealthy.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::adapters::docker::EngineProbe;
use crate::adapters::kafka::KafkaSource;

/// How often the runner checks.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// How old a health file may be before the runner counts as hung.
pub const STALE_AFTER: Duration = Duration::from_secs(45);

/// Where the runner writes its health when `RUNNER_HEALTH_FILE` is not set.
pub fn default_path() -> PathBuf {
    std::env::temp_dir().join("scrc-health.json")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub instance: String,
    pub updated_unix: u64,
    /// `ok`, or why the brokers did not answer.
    pub kafka: String,
    /// `ok`, or why the Docker engine did not answer.
    pub docker: String,
    /// Partitions of the scripts topic this instance owns.
    pub assigned_partitions: usize,
}

fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Writes the runner's health every [`INTERVAL`] until `stop` fires.
pub async fn report(
    path: PathBuf,
    instance: String,
    source: std::sync::Arc<KafkaSource>,
    docker: EngineProbe,
    stop: CancellationToken,
) {
    loop {
        let (kafka, docker_state) = tokio::join!(source.check(Duration::from_secs(5)), docker.ping());
        let health = Health {
            instance: instance.clone(),
            updated_unix: now_unix(),
            kafka: kafka.as_ref().map_or_else(Clone::clone, |_| "ok".to_owned()),
            docker: docker_state.map_or_else(|e| e.to_string(), |()| "ok".to_owned()),
            assigned_partitions: kafka.unwrap_or(0),
        };
        if let Ok(bytes) = serde_json::to_vec(&health) {
            let temporary = path.with_extension("tmp");
            if std::fs::write(&temporary, bytes)
                .and_then(|()| std::fs::rename(&temporary, &path))
                .is_err()
            {
                tracing::warn!(path = %path.display(), "cannot write the health file");
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(INTERVAL) => {}
        }
    }
}

/// Reads a health file and says whether the runner is healthy.
///
/// # Errors
/// Why it is not: no file, a stale file, or a failed check.
pub fn check(path: &Path) -> Result<Health, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("no health file at {}: {e}", path.display()))?;
    let health: Health = serde_json::from_slice(&bytes).map_err(|e| format!("unreadable health file: {e}"))?;
    let age = now_unix().saturating_sub(health.updated_unix);
    if age > STALE_AFTER.as_secs() {
        return Err(format!("the runner has not reported for {age} s"));
    }
    if health.kafka != "ok" {
        return Err(format!("the Kafka brokers do not answer: {}", health.kafka));
    }
    if health.docker != "ok" {
        return Err(format!("the Docker engine does not answer: {}", health.docker));
    }
    Ok(health)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, health: &Health) -> PathBuf {
        let path = dir.join(format!("health-{}.json", health.updated_unix));
        std::fs::write(&path, serde_json::to_vec(health).unwrap()).unwrap();
        path
    }

    fn healthy() -> Health {
        Health {
            instance: "r1".into(),
            updated_unix: now_unix(),
            kafka: "ok".into(),
            docker: "ok".into(),
            assigned_partitions: 3,
        }
    }

    #[test]
    fn fresh_and_passing_is_healthy() {
        let dir = std::env::temp_dir();
        assert!(check(&write(&dir, &healthy())).is_ok());
    }

    #[test]
    fn stale_missing_or_failing_is_unhealthy() {
        let dir = std::env::temp_dir();
        let mut stale = healthy();
        stale.updated_unix -= 120;
        assert!(check(&write(&dir, &stale)).unwrap_err().contains("not reported for"));
        let mut no_docker = healthy();
        no_docker.docker = "connection refused".into();
        no_docker.updated_unix += 1;
        assert!(check(&write(&dir, &no_docker)).unwrap_err().contains("Docker engine"));
        assert!(
            check(Path::new("/nonexistent/health.json"))
                .unwrap_err()
                .contains("no health file")
        );
    }
}
