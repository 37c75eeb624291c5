//! Cleanup of what crashed runners leave behind.
//!
//! A runner killed with SIGKILL cannot remove its containers. Their programs end on their own (the supervisor
//! kills them at their limit), and the containers and volumes are then removed here:
//! - at startup, everything labelled with this runner's own instance id: it can only be left from a previous run
//!   of this instance (a restarted container keeps its hostname and PID, so its default instance id);
//! - periodically, anything past its expiry label, whichever runner created it: no live runner can still need
//!   it, because every live runner stops its own work before that time;
//! - any stopped warm sandbox: its supervisor exits only when the runner that drove it closed its stream;
//! - the shared toolchain volumes no runner can need (see [`shared_dirs::unneeded`]).
//!
//! Another live runner's unexpired containers are never touched.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use super::engine::{Engine, Labelled};
use super::labels;
use super::shared_dirs;
use crate::ports::describe;

/// How often expired resources are looked for.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(30);

/// What one sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Containers removed: expired ones, stopped warm sandboxes, and with an instance given, all of that instance's.
    pub containers: usize,
    /// Volumes removed: expired ones, those of the instance given, and toolchain sets no longer needed.
    pub volumes: usize,
}

/// Removes expired resources, and with `own_instance` also everything of that instance.
pub async fn sweep(engine: &Engine, own_instance: Option<&str>) -> Swept {
    let now = SystemTime::now();
    let doomed = |labels: &HashMap<String, String>| doomed(labels, now, own_instance);
    let mut swept = Swept::default();
    match engine.containers_with_label(labels::MANAGED).await {
        Ok(containers) => {
            // A warm sandbox stops only when the runner that drove it closed its stream (it finished or died), so
            // a stopped one is garbage whoever made it.
            let stopped_warm =
                |c: &Labelled| c.stopped && c.labels.get(labels::ROLE).map(String::as_str) == Some(labels::WARM);
            for container in containers.iter().filter(|c| doomed(&c.labels) || stopped_warm(c)) {
                match engine.remove_container(&container.name).await {
                    Ok(()) => swept.containers += 1,
                    Err(error) => {
                        tracing::warn!(error = %describe(&error), container = %container.name, "reaper cannot remove a container")
                    }
                }
            }
        }
        Err(error) => tracing::warn!(error = %describe(&error), "reaper cannot list containers"),
    }
    match engine.volumes_with_label(labels::MANAGED).await {
        Ok(volumes) => {
            let mut names: Vec<String> = volumes
                .iter()
                .filter(|v| doomed(&v.labels))
                .map(|v| v.name.clone())
                .collect();
            names.extend(shared_dirs::unneeded(engine, &volumes).await);
            for name in names {
                match engine.remove_volume(&name).await {
                    Ok(()) => swept.volumes += 1,
                    Err(error) => {
                        tracing::debug!(error = %describe(&error), volume = %name, "reaper cannot remove a volume yet")
                    }
                }
            }
        }
        Err(error) => tracing::warn!(error = %describe(&error), "reaper cannot list volumes"),
    }
    if swept != Swept::default() {
        tracing::info!(
            containers = swept.containers,
            volumes = swept.volumes,
            "reaped leftover sandboxes"
        );
    }
    swept
}

/// Whether a resource with these labels is removed by a sweep at `now`, of `own_instance`'s leftovers if given.
fn doomed(labels: &HashMap<String, String>, now: SystemTime, own_instance: Option<&str>) -> bool {
    labels::expired(labels, now)
        || own_instance.is_some_and(|own| labels.get(labels::INSTANCE).map(String::as_str) == Some(own))
}

/// Sweeps expired resources every [`SWEEP_INTERVAL`] until `stop` fires.
pub async fn run_periodically(engine: Engine, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(SWEEP_INTERVAL) => {
                sweep(&engine, None).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filler_left_by_a_killed_runner_is_swept_by_its_restart_or_after_it_expires() {
        let now = SystemTime::now();
        let filler = labels::for_filler("runner-a");
        assert!(
            doomed(&filler, now, Some("runner-a")),
            "the restarted instance removes its own filler"
        );
        assert!(
            !doomed(&filler, now, Some("runner-b")),
            "a live neighbour's filler is left alone"
        );
        assert!(!doomed(&filler, now, None));
        let later = now + labels::FILLER_LIFETIME + Duration::from_secs(2);
        assert!(doomed(&filler, later, None), "any runner removes it once expired");
    }

    #[test]
    fn the_shared_supervisor_volume_is_never_swept() {
        let guard = labels::for_guard_volume();
        let later = SystemTime::now() + Duration::from_secs(86_400 * 365);
        assert!(!doomed(&guard, later, Some("runner-a")));
    }
}
