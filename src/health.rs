//! Health that means something. While `scrc run` serves, it checks every 10 s (every second while it is not
//! ready) that the Kafka brokers answer, that the Docker engine answers and that the consumer is in its group, and
//! keeps the outcome in memory ([`Vitals`], for `/healthz` and `/readyz`) and in `RUNNER_HEALTH_FILE` (for
//! `scrc health`, the container's HEALTHCHECK). Both read the same record the same way:
//!
//! - *live* means the reporter ticks: the record is fresh, so the process and its runtime are not hung;
//! - *ready* means live, both checks passed, the circuit breaker is closed and the instance is in its consumer
//!   group. A runner that hangs, loses its brokers, loses its Docker engine, has stopped taking scripts because the
//!   engine kept failing, or drops out of its group turns unready, and `scrc health` unhealthy.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::adapters::docker::EngineProbe;
use crate::adapters::kafka::KafkaSource;
use crate::app::CircuitBreaker;

/// How often the runner checks while it is ready.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// How often the runner checks while it is not ready, so that readiness comes back soon after its cause goes.
pub const UNREADY_INTERVAL: Duration = Duration::from_secs(1);

/// How long one check may wait for the brokers or the engine.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// How old a health file may be before the runner counts as hung.
pub const STALE_AFTER: Duration = Duration::from_secs(45);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// The runner's instance id, so that `scrc health` and a reader of the file can tell whose record it is.
    pub instance: String,
    /// When the record was written, in Unix seconds: a record older than [`STALE_AFTER`] means the runner is hung.
    pub updated_unix: u64,
    /// `ok`, or why the brokers did not answer.
    pub kafka: String,
    /// `ok`, or why the Docker engine did not answer.
    pub docker: String,
    /// `closed`, or how long the circuit breaker stays open: while it is, the runner takes no new script.
    #[serde(default = "closed")]
    pub breaker: String,
    /// Partitions of the scripts topic this instance owns.
    pub assigned_partitions: usize,
    /// Whether the consumer has joined its group, by librdkafka's statistics; `None` before the first statistics,
    /// when owning a partition counts as being in the group.
    #[serde(default)]
    pub in_group: Option<bool>,
}

impl Health {
    /// Whether the reporter still ticks.
    ///
    /// # Errors
    /// Why not: the record is stale.
    pub fn live(&self) -> Result<(), String> {
        let age = now_unix().saturating_sub(self.updated_unix);
        if age > STALE_AFTER.as_secs() {
            return Err(format!("the runner has not reported for {age} s"));
        }
        Ok(())
    }

    /// Whether the runner can judge: live, brokers and engine answering, and in its consumer group.
    ///
    /// # Errors
    /// The first reason it cannot.
    pub fn ready(&self) -> Result<(), String> {
        self.live()?;
        if self.kafka != "ok" {
            return Err(format!("the Kafka brokers do not answer: {}", self.kafka));
        }
        if self.docker != "ok" {
            return Err(format!("the Docker engine does not answer: {}", self.docker));
        }
        if self.breaker != CLOSED {
            return Err(format!(
                "the circuit breaker is {}: the sandbox engine failed repeatedly, and no new script is taken until a \
                 probe succeeds",
                self.breaker
            ));
        }
        if !self.in_group.unwrap_or(self.assigned_partitions > 0) {
            return Err("the consumer is not in its group (joining, or rebalancing)".to_owned());
        }
        Ok(())
    }
}

/// The latest health record, shared between the reporter and the HTTP probes, and whether the runner is stopping.
#[derive(Debug, Clone, Default)]
pub struct Vitals {
    /// The reporter's latest record, which `/healthz` and `/readyz` answer from; `None` until the first check ends.
    latest: Arc<Mutex<Option<Health>>>,
    /// Set once shutdown starts: a draining runner takes no new script, so it is no longer ready.
    stopping: Arc<std::sync::atomic::AtomicBool>,
}

impl Vitals {
    fn set(&self, health: Health) {
        *self.latest.lock().unwrap_or_else(|p| p.into_inner()) = Some(health);
    }

    /// Marks the runner as shutting down: not ready from now on, though still live while it drains.
    pub fn stopping(&self) {
        self.stopping.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// The latest record, `None` before the first check finished.
    pub fn latest(&self) -> Option<Health> {
        self.latest.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// [`Health::live`] of the latest record.
    ///
    /// # Errors
    /// Why the runner is not live, or that it has not reported yet.
    pub fn live(&self) -> Result<(), String> {
        self.latest().ok_or_else(not_reported)?.live()
    }

    /// [`Health::ready`] of the latest record.
    ///
    /// # Errors
    /// Why the runner is not ready, or that it has not reported yet.
    pub fn ready(&self) -> Result<(), String> {
        if self.stopping.load(std::sync::atomic::Ordering::SeqCst) {
            return Err("the runner is shutting down".to_owned());
        }
        self.latest().ok_or_else(not_reported)?.ready()
    }
}

/// What [`Health::breaker`] says while the breaker lets calls through.
const CLOSED: &str = "closed";

fn closed() -> String {
    CLOSED.to_owned()
}

/// The breaker's state in words: `closed`, `open for another N s`, or `half-open` while a probe decides.
fn breaker_state(breaker: &CircuitBreaker) -> String {
    if breaker.is_closed() {
        return closed();
    }
    match breaker.open_until() {
        Some(until) => format!(
            "open for another {} s",
            until.saturating_duration_since(tokio::time::Instant::now()).as_secs()
        ),
        None => "half-open, probing".to_owned(),
    }
}

impl crate::ports::Probes for Vitals {
    fn why_not_live(&self) -> Option<String> {
        self.live().err()
    }

    fn why_not_ready(&self) -> Option<String> {
        self.ready().err()
    }
}

fn not_reported() -> String {
    "the runner has not checked its health yet".to_owned()
}

fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Checks the runner's health every [`INTERVAL`] ([`UNREADY_INTERVAL`] while it is not ready), keeping it in
/// `vitals` and writing it to `path`, until `stop` fires.
pub async fn report(
    path: PathBuf,
    instance: String,
    source: Arc<KafkaSource>,
    docker: EngineProbe,
    breaker: Arc<CircuitBreaker>,
    vitals: Vitals,
    stop: CancellationToken,
) {
    loop {
        let docker_ping = async {
            match tokio::time::timeout(CHECK_TIMEOUT, docker.ping()).await {
                Ok(answer) => answer.map_err(|e| e.to_string()),
                Err(_) => Err(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
            }
        };
        let (kafka, docker_state) = tokio::join!(source.check(CHECK_TIMEOUT), docker_ping);
        let health = Health {
            instance: instance.clone(),
            updated_unix: now_unix(),
            kafka: kafka.as_ref().map_or_else(ToString::to_string, |_| "ok".to_owned()),
            docker: docker_state.map_or_else(|e| e, |()| "ok".to_owned()),
            breaker: breaker_state(&breaker),
            assigned_partitions: kafka.unwrap_or(0),
            in_group: source.group_view().in_group,
        };
        let interval = if health.ready().is_ok() {
            INTERVAL
        } else {
            UNREADY_INTERVAL
        };
        vitals.set(health.clone());
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
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// Reads a health file and says whether the runner is healthy: [`Health::ready`], as `/readyz` says.
///
/// # Errors
/// Why it is not: no file, a stale file, a failed check, or not in the group.
pub fn check(path: &Path) -> Result<Health, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("no health file at {}: {e}", path.display()))?;
    let health: Health = serde_json::from_slice(&bytes).map_err(|e| format!("unreadable health file: {e}"))?;
    health.ready()?;
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
            breaker: closed(),
            assigned_partitions: 3,
            in_group: Some(true),
        }
    }

    #[test]
    fn a_stale_record_is_neither_live_nor_ready_and_a_failed_check_only_unready() {
        let vitals = Vitals::default();
        assert!(vitals.live().unwrap_err().contains("not checked"));
        let mut no_docker = healthy();
        no_docker.docker = "connection refused".into();
        vitals.set(no_docker.clone());
        assert_eq!(vitals.live(), Ok(()));
        assert!(vitals.ready().unwrap_err().contains("Docker engine"));
        no_docker.updated_unix -= 120;
        vitals.set(no_docker);
        assert!(vitals.live().unwrap_err().contains("not reported for"));
        vitals.set(healthy());
        assert_eq!(vitals.ready(), Ok(()));
        vitals.stopping();
        assert!(vitals.ready().unwrap_err().contains("shutting down"));
        assert_eq!(vitals.live(), Ok(()), "a draining runner is still alive");
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_breaker_is_not_ready_until_a_probe_closes_it() {
        // Issue 26: a runner whose breaker stayed open judged nothing for minutes while `/readyz` said ready.
        let breaker = CircuitBreaker::new(1, Duration::from_secs(30));
        breaker.pass().await.failed();
        let mut open = healthy();
        open.breaker = breaker_state(&breaker);
        assert_eq!(open.breaker, "open for another 30 s");
        let why = open.ready().unwrap_err();
        assert!(why.contains("circuit breaker is open for another 30 s"), "{why}");
        assert_eq!(open.live(), Ok(()), "an open breaker is not a hang");
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(breaker_state(&breaker), "half-open, probing");
        breaker.pass().await.succeeded();
        open.breaker = breaker_state(&breaker);
        assert_eq!(open.ready(), Ok(()));
        let old_file: Health = serde_json::from_str(
            r#"{"instance":"r1","updated_unix":1,"kafka":"ok","docker":"ok","assigned_partitions":1}"#,
        )
        .unwrap();
        assert_eq!(
            old_file.breaker, "closed",
            "a file written before the field reads as closed"
        );
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
        let mut rebalancing = healthy();
        rebalancing.in_group = Some(false);
        rebalancing.updated_unix += 2;
        assert!(check(&write(&dir, &rebalancing)).unwrap_err().contains("group"));
        let mut before_statistics = healthy();
        before_statistics.in_group = None;
        before_statistics.updated_unix += 3;
        assert!(
            check(&write(&dir, &before_statistics)).is_ok(),
            "owning partitions is being in the group"
        );
        assert!(
            check(Path::new("/nonexistent/health.json"))
                .unwrap_err()
                .contains("no health file")
        );
    }
}
