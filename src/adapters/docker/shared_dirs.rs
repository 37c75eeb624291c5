//! Toolchain directories shared through volumes, for storage drivers that give every container its own page cache.
//!
//! Under fuse-overlayfs (rootless and nested engines, and this project's CI), every container is its own FUSE mount
//! of its image, with its own page cache: each new container reads its toolchain from disk again. The first
//! `go build` in a new container took 370–930 ms where the next ones took 160–270 ms; with the Go root on a volume,
//! the first took 160–270 ms too (`docker run` of the same build four times, three trials each). A volume is a plain
//! host directory, whose pages every container shares once one of them has read them. On overlay2, containers of
//! one image share its page cache already, and nothing here is done.
//!
//! An image opts in with the label [`LABEL`]: absolute directories, separated by `:`, that no build or test writes
//! (`scripts/build-images.sh` sets it on scrc's build images). For such an image the pool makes one volume per
//! directory. Docker fills an empty volume from the image's files at its mount point when a container that mounts
//! it is created; a container that is never started does that once. Every sandbox of the image then mounts the
//! volumes read-only over the image's own copies of the same files, and is created from the image's id rather than
//! its tag, so a tag moved to a rebuilt image never meets the old image's files.
//!
//! Nothing here weakens the sandbox: a program reads the same files as before and can write them never, because
//! the mounts are read-only and no sandbox holds the capability to remount them. The volumes belong to this runner
//! instance and carry an expiry like every other resource; a new set replaces them every [`ROTATE`], so that the
//! reaper can remove what a crashed runner left, and the shutdown cleanup removes the rest.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::OnceCell;

use super::engine::{Engine, EngineError};
use super::hardening::{self, VolumeMount};
use super::labels;
use super::languages::PROGRAM_DIR;
use super::lock;
use super::pool::GUARD_DIR;
use crate::ports::RuntimeError;

/// The image label listing the directories to share.
pub const LABEL: &str = "org.scrc.shared-dirs";

/// How long one set of volumes serves new sandboxes before a new set replaces it.
const ROTATE: Duration = Duration::from_secs(3600);

/// How long a failure to make the volumes is kept before the next sandbox tries again; sandboxes start without
/// them meanwhile.
const RETRY: Duration = Duration::from_secs(60);

/// Places the sandbox mounts itself, or that the kernel provides: a shared directory may neither be one of them nor
/// hold one nor lie inside one.
const RESERVED: [&str; 7] = ["/tmp", "/dev", "/proc", "/sys", "/etc", PROGRAM_DIR, GUARD_DIR];

/// The directories `value` lists, or why the label is refused.
///
/// # Errors
/// A directory that is not absolute and normal, that is `/`, that touches a reserved place, or that holds another.
pub fn parse(value: &str) -> Result<Vec<String>, String> {
    let mut dirs: Vec<String> = Vec::new();
    for dir in value.split(':').map(str::trim).filter(|dir| !dir.is_empty()) {
        let normal = dir.starts_with('/')
            && dir.len() > 1
            && !dir.ends_with('/')
            && dir[1..]
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != "..");
        if !normal {
            return Err(format!("{dir:?} is not an absolute, normal directory other than /"));
        }
        if let Some(place) = RESERVED.iter().find(|place| overlaps(dir, place)) {
            return Err(format!("{dir:?} overlaps {place}, which the sandbox mounts itself"));
        }
        if let Some(other) = dirs.iter().find(|other| overlaps(dir, other)) {
            return Err(format!("{dir:?} overlaps {other:?}"));
        }
        dirs.push(dir.to_owned());
    }
    Ok(dirs)
}

/// Whether one of two normal absolute directories is the other or holds it.
fn overlaps(a: &str, b: &str) -> bool {
    let holds = |outer: &str, inner: &str| inner.strip_prefix(outer).is_some_and(|rest| rest.starts_with('/'));
    a == b || holds(a, b) || holds(b, a)
}

/// What a sandbox of an image is created with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageMounts {
    /// The image to create the container from: its id when it has shared directories, else the name asked for.
    pub image: String,
    /// The shared directories' volumes, read-only.
    pub volumes: Vec<VolumeMount>,
}

/// One image's current volumes.
struct Set {
    /// When it began to serve; its volumes' expiry counts from then.
    made: Instant,
    /// How long this set serves: [`ROTATE`], or [`RETRY`] after a failure.
    serves: Duration,
    volumes: Vec<VolumeMount>,
}

/// The shared directories of every image this runner has started sandboxes of.
pub struct SharedDirs {
    engine: Engine,
    /// The runner instance the volumes belong to (their names and labels).
    instance: String,
    /// How long after a set is replaced its last sandbox may still use it.
    outlived_by: Duration,
    /// `RUNNER_SHARED_TOOLCHAINS`.
    enabled: bool,
    /// Whether the engine's storage driver needs this, decided once.
    needed: OnceCell<bool>,
    /// Per image id, the set new sandboxes mount.
    sets: Mutex<HashMap<String, Arc<OnceCell<Set>>>>,
    /// Numbers the sets, so that a new set never reuses an old one's volume names.
    sequence: AtomicU64,
}

impl SharedDirs {
    /// `outlived_by` bounds how long a sandbox lives after it is started, so that a set's volumes expire only after
    /// every sandbox that mounts them. With `enabled` false nothing is ever shared.
    pub fn new(engine: Engine, instance: String, outlived_by: Duration, enabled: bool) -> Self {
        Self {
            engine,
            instance,
            outlived_by,
            enabled,
            needed: OnceCell::new(),
            sets: Mutex::new(HashMap::new()),
            sequence: AtomicU64::new(0),
        }
    }

    /// What a sandbox of `image` mounts. Never fails for want of shared directories: a sandbox without them reads
    /// the image's own files, only more slowly.
    ///
    /// # Errors
    /// [`RuntimeError`] only when the image cannot be inspected, which would fail the container's creation too.
    pub async fn for_image(&self, image: &str) -> Result<ImageMounts, RuntimeError> {
        let plain = ImageMounts {
            image: image.to_owned(),
            volumes: Vec::new(),
        };
        if !self.enabled || !self.needed().await {
            return Ok(plain);
        }
        let Some((id, image_labels)) = self.engine.image_labels(image).await? else {
            return Ok(plain);
        };
        let Some(value) = image_labels.get(LABEL) else {
            return Ok(plain);
        };
        let dirs = match parse(value) {
            Ok(dirs) if !dirs.is_empty() => dirs,
            Ok(_) => return Ok(plain),
            Err(reason) => {
                tracing::warn!(image, %reason, "the image's {LABEL} label is refused; its sandboxes share nothing");
                return Ok(plain);
            }
        };
        let cell = {
            let mut sets = lock(&self.sets);
            let entry = sets.entry(id.clone()).or_default();
            if entry.get().is_some_and(|set| set.made.elapsed() >= set.serves) {
                *entry = Arc::default();
            }
            Arc::clone(entry)
        };
        let set = cell.get_or_init(|| self.make(&id, &dirs)).await;
        if set.volumes.is_empty() {
            return Ok(plain);
        }
        Ok(ImageMounts {
            image: id,
            volumes: set.volumes.clone(),
        })
    }

    /// How many volumes the current sets hold.
    pub fn volumes(&self) -> usize {
        lock(&self.sets)
            .values()
            .filter_map(|cell| cell.get())
            .map(|set| set.volumes.len())
            .sum()
    }

    async fn needed(&self) -> bool {
        let decided = self
            .needed
            .get_or_try_init(|| async {
                let driver = self.engine.storage_driver().await?;
                let needed = driver.as_deref() != Some("overlay2");
                tracing::info!(
                    driver = driver.as_deref().unwrap_or("unknown"),
                    shared = needed,
                    "toolchain directories are shared through volumes only where containers do not share the \
                     image's page cache"
                );
                Ok::<_, EngineError>(needed)
            })
            .await;
        decided.is_ok_and(|needed| *needed)
    }

    /// Makes and fills one volume per directory, or an empty set (tried again after [`RETRY`]) when that fails.
    async fn make(&self, id: &str, dirs: &[String]) -> Set {
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        let stem = format!(
            "scrc-{}-tc{sequence}-{}",
            self.instance,
            id.trim_start_matches("sha256:").get(..12).unwrap_or(id)
        );
        let volumes: Vec<VolumeMount> = dirs
            .iter()
            .enumerate()
            .map(|(index, dir)| VolumeMount {
                volume: format!("{stem}-{index}"),
                target: dir.clone(),
                read_only: true,
            })
            .collect();
        let expires = SystemTime::now() + ROTATE + self.outlived_by;
        // The set serves from now, when its expiry was set, however long the copy takes.
        let started = Instant::now();
        match self.fill(id, &stem, &volumes, expires).await {
            Ok(()) => {
                tracing::info!(image = id, dirs = dirs.join(":"), elapsed = ?started.elapsed(), "toolchain volumes made");
                Set {
                    made: started,
                    serves: ROTATE,
                    volumes,
                }
            }
            Err(error) => {
                tracing::warn!(%error, image = id, "cannot make the toolchain volumes; sandboxes start without them");
                for volume in &volumes {
                    let _ = self.engine.remove_volume(&volume.volume).await;
                }
                Set {
                    made: Instant::now(),
                    serves: RETRY,
                    volumes: Vec::new(),
                }
            }
        }
    }

    /// Creates the volumes, then a container that mounts them and is never started: creating it copies the image's
    /// files into them.
    async fn fill(
        &self,
        id: &str,
        stem: &str,
        volumes: &[VolumeMount],
        expires: SystemTime,
    ) -> Result<(), RuntimeError> {
        let labels = labels::for_toolchain(&self.instance, expires);
        for volume in volumes {
            self.engine.create_volume(&volume.volume, labels.clone()).await?;
        }
        let body = hardening::filler(id, volumes, labels);
        let filler = self.engine.create_container(&format!("{stem}-fill"), body).await?;
        if let Err(error) = self.engine.remove_container(&filler).await {
            tracing::warn!(%error, container = %filler, "cannot remove the toolchain volumes' filler");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_split_on_colons() {
        assert_eq!(
            parse("/usr/lib/go-1.19:/usr/share/go-1.19:/opt/scrc").unwrap(),
            ["/usr/lib/go-1.19", "/usr/share/go-1.19", "/opt/scrc"]
        );
        assert_eq!(parse(" /usr/lib/jvm : ").unwrap(), ["/usr/lib/jvm"]);
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn a_directory_must_be_absolute_and_normal_and_not_the_root() {
        for bad in ["usr/lib", "/", "/usr/../etc", "/usr/./lib", "/usr//lib", "/usr/lib/"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn no_directory_may_touch_what_the_sandbox_mounts_itself() {
        for bad in [
            "/tmp",
            "/tmp/cache",
            "/box",
            "/.scrc",
            "/dev/shm",
            "/proc",
            "/etc/java",
            "/sys/fs",
        ] {
            let refused = parse(bad).unwrap_err();
            assert!(refused.contains("overlaps"), "{bad}: {refused}");
        }
        // A directory holding a reserved place would hide it too.
        assert!(parse("/usr:/usr/lib").is_err(), "nested directories");
        assert!(parse("/tmpdir").is_ok(), "a prefix by name only is not inside");
    }
}
