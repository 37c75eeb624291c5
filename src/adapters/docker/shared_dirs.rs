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
//! (`scripts/build-images.sh` sets it on scrc's build images). For such an image the engine holds one set of
//! volumes, one per directory, shared by every runner on it. Docker fills an empty volume from the image's files at
//! its mount point when a container that mounts it is created; a filler container that is never started does that
//! once. Every sandbox of the image then mounts the set read-only over the image's own copies of the same files, and
//! is created from the image's id rather than its tag, so a tag moved to a rebuilt image never meets the old files.
//!
//! **One set per image, made once.** The filler's name is fixed per image, so the engine lets one runner at a time
//! fill (a second create is refused with 409). The set's volumes are named with a nonce; only when the filler's
//! creation returned, so that the copy is complete, does its runner create the image's *marker* volume, whose label
//! names the nonce. Creating a volume that exists returns it unchanged, so the first marker wins, and a runner that
//! filled a set in vain removes it. A runner uses only a set a marker names and whose volumes all exist: it never
//! mounts a half-copied directory. A runner killed while filling leaves a filler of its instance, which the reaper
//! removes (see [`labels::for_filler`]), and an unnamed set, which [`sweep`] removes once a marker names another.
//!
//! **Lifetime.** A set has no expiry: it serves as long as its image exists. [`sweep`] removes the sets of images
//! that are gone (a rebuilt image has a new id, hence a new set), and a marker whose set lost a volume.
//!
//! Nothing here weakens the sandbox: a program reads the same files as before and can write them never, because
//! the mounts are read-only and no sandbox holds the capability to remount them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::OnceCell;

use super::engine::{Engine, EngineError, Labelled};
use super::fault::SandboxFault;
use super::hardening::{self, VolumeMount};
use super::labels;
use super::languages::PROGRAM_DIR;
use super::lock;
use super::supervisor::{GUARD_DIR, fnv1a};
use crate::ports::{RuntimeError, describe};

/// The image label listing the directories to share.
pub const LABEL: &str = "org.scrc.shared-dirs";

/// How long a runner mounts a set it found before it looks again, so that a set the reaper removed (its image was
/// rebuilt) or an operator damaged is not mounted for long.
const RECHECK: Duration = Duration::from_secs(600);

/// How long a failure to make the set is kept before the next sandbox tries again; sandboxes start without it
/// meanwhile.
const RETRY: Duration = Duration::from_secs(60);

/// How long a runner waits before it looks again while another runner fills the set (filling takes 1–2 s).
const BUSY_RETRY: Duration = Duration::from_secs(2);

/// Places the sandbox mounts itself, or that the kernel provides: a shared directory may neither be one of them nor
/// hold one nor lie inside one.
const RESERVED: [&str; 7] = ["/tmp", "/dev", "/proc", "/sys", "/etc", PROGRAM_DIR, GUARD_DIR];

/// Why an image's [`LABEL`] is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("{0:?} is not an absolute, normal directory other than /")]
    NotNormal(String),
    #[error("{dir:?} overlaps {place}, which the sandbox mounts itself")]
    Reserved { dir: String, place: &'static str },
    #[error("{dir:?} overlaps {other:?}")]
    Nested { dir: String, other: String },
}

/// The directories `value` lists, or why the label is refused.
///
/// # Errors
/// [`Refused`]: a directory that is not absolute and normal, that is `/`, that touches a reserved place, or that
/// holds another.
pub fn parse(value: &str) -> Result<Vec<String>, Refused> {
    let mut dirs: Vec<String> = Vec::new();
    for dir in value.split(':').map(str::trim).filter(|dir| !dir.is_empty()) {
        let normal = dir.starts_with('/')
            && dir.len() > 1
            && !dir.ends_with('/')
            && dir[1..]
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != "..");
        if !normal {
            return Err(Refused::NotNormal(dir.to_owned()));
        }
        if let Some(place) = RESERVED.iter().find(|place| overlaps(dir, place)) {
            return Err(Refused::Reserved {
                dir: dir.to_owned(),
                place,
            });
        }
        if let Some(other) = dirs.iter().find(|other| overlaps(dir, other)) {
            return Err(Refused::Nested {
                dir: dir.to_owned(),
                other: other.clone(),
            });
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

/// The set new sandboxes of one image mount, as this runner last found it.
struct Set {
    /// When it was found (or not); it is looked for again after `serves`.
    found: Instant,
    /// [`RECHECK`], or [`RETRY`] / [`BUSY_RETRY`] when there is none yet.
    serves: Duration,
    /// The set's volumes, mounted read-only over the image's own toolchain directories; empty when there is no set yet.
    volumes: Vec<VolumeMount>,
}

impl Set {
    fn none(serves: Duration) -> Self {
        Self {
            found: Instant::now(),
            serves,
            volumes: Vec::new(),
        }
    }
}

/// Why this runner could not make a set.
enum Unmade {
    /// Another runner is filling one now.
    Busy,
    Failed(RuntimeError),
}

impl From<EngineError> for Unmade {
    fn from(error: EngineError) -> Self {
        Self::Failed(error.into())
    }
}

/// The shared directories of every image this runner has started sandboxes of.
pub struct SharedDirs {
    /// Finds, fills and labels the shared volumes, and asks the storage driver's name.
    engine: Engine,
    /// The runner instance, named on the fillers it creates.
    instance: String,
    /// `RUNNER_SHARED_TOOLCHAINS`.
    enabled: bool,
    /// Whether the engine's storage driver needs this, decided once.
    needed: OnceCell<bool>,
    /// Per image id, the set new sandboxes mount.
    sets: Mutex<HashMap<String, Arc<OnceCell<Set>>>>,
}

impl SharedDirs {
    /// With `enabled` false nothing is ever shared.
    pub fn new(engine: Engine, instance: String, enabled: bool) -> Self {
        Self {
            engine,
            instance,
            enabled,
            needed: OnceCell::new(),
            sets: Mutex::new(HashMap::new()),
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
            if entry.get().is_some_and(|set| set.found.elapsed() >= set.serves) {
                *entry = Arc::default();
            }
            Arc::clone(entry)
        };
        let set = cell.get_or_init(|| self.find_or_make(&id, &dirs)).await;
        if set.volumes.is_empty() {
            return Ok(plain);
        }
        Ok(ImageMounts {
            image: id,
            volumes: set.volumes.clone(),
        })
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

    /// The engine's set for the image, made now if there is none.
    async fn find_or_make(&self, id: &str, dirs: &[String]) -> Set {
        let found = match find(&self.engine, id, dirs).await {
            Ok(Some(volumes)) => Ok(volumes),
            Ok(None) => self.make(id, dirs).await,
            Err(error) => Err(Unmade::from(error)),
        };
        match found {
            Ok(volumes) => Set {
                found: Instant::now(),
                serves: RECHECK,
                volumes,
            },
            Err(Unmade::Busy) => Set::none(BUSY_RETRY),
            Err(Unmade::Failed(error)) => {
                tracing::warn!(error = %describe(&error), image = id, "cannot make the toolchain volumes; sandboxes start without them");
                Set::none(RETRY)
            }
        }
    }

    /// Fills a set under the image's filler name, names it in the image's marker unless another set was named
    /// first, and returns the named set.
    async fn make(&self, id: &str, dirs: &[String]) -> Result<Vec<VolumeMount>, Unmade> {
        let nonce = nonce();
        let volumes = set_volumes(id, &nonce, dirs);
        let set_labels = labels::for_toolchain(id, &nonce, dirs.len());
        let started = Instant::now();
        let filled = self.fill(id, &volumes, set_labels.clone()).await;
        if filled.is_ok() {
            // Returns the marker another runner made first unchanged: then its set is the one to use.
            let marked = self
                .engine
                .create_volume(&marker(id), labels::for_toolchain_marker(set_labels))
                .await;
            if let Err(error) = marked {
                tracing::warn!(error = %describe(&error), image = id, "cannot name the filled toolchain volumes");
            }
        }
        let named = find(&self.engine, id, dirs).await;
        let mine = matches!(&named, Ok(Some(named)) if *named == volumes);
        // Only when the engine said which set is named: a set a marker names must never lose a volume.
        if named.is_ok() && !mine {
            for volume in &volumes {
                let _ = self.engine.remove_volume(&volume.volume).await;
            }
        }
        // A set another runner named meanwhile serves as well as this one's.
        match (named?, filled) {
            (Some(named), _) => {
                if mine {
                    tracing::info!(image = id, dirs = dirs.join(":"), elapsed = ?started.elapsed(), "toolchain volumes made");
                }
                Ok(named)
            }
            (None, Err(unmade)) => Err(unmade),
            (None, Ok(())) => Err(Unmade::Failed(SandboxFault::ToolchainUnnamed(id.to_owned()).into())),
        }
    }

    /// Creates the volumes, then the image's filler, which mounts them and is never started: creating it copies
    /// the image's files into them, and its fixed name lets only one runner fill at a time.
    async fn fill(&self, id: &str, volumes: &[VolumeMount], set_labels: HashMap<String, String>) -> Result<(), Unmade> {
        for volume in volumes {
            self.engine.create_volume(&volume.volume, set_labels.clone()).await?;
        }
        let writable: Vec<VolumeMount> = volumes
            .iter()
            .map(|volume| VolumeMount {
                read_only: false,
                ..volume.clone()
            })
            .collect();
        let body = hardening::filler(id, &writable, labels::for_filler(&self.instance));
        let filler = match self
            .engine
            .create_container(&format!("{}-fill", marker(id)), body)
            .await
        {
            Ok(filler) => filler,
            Err(error) if error.status() == Some(409) => return Err(Unmade::Busy),
            Err(error) => return Err(error.into()),
        };
        if let Err(error) = self.engine.remove_container(&filler).await {
            tracing::warn!(error = %describe(&error), container = %filler, "cannot remove the toolchain volumes' filler");
        }
        Ok(())
    }
}

/// The image's marker volume, whose label names its set; also the stem of the filler's name.
fn marker(id: &str) -> String {
    format!("scrc-tc-{}", short(id))
}

fn short(id: &str) -> &str {
    let hex = id.trim_start_matches("sha256:");
    hex.get(..12).unwrap_or(hex)
}

/// The volumes of the set `nonce` of the image, one per directory.
fn set_volumes(id: &str, nonce: &str, dirs: &[String]) -> Vec<VolumeMount> {
    dirs.iter()
        .enumerate()
        .map(|(index, dir)| VolumeMount {
            volume: format!("{}-{nonce}-{index}", marker(id)),
            target: dir.clone(),
            read_only: true,
        })
        .collect()
}

/// A name no other fill of any runner uses.
fn nonce() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let seed = format!(
        "{:?} {} {}",
        SystemTime::now(),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    format!("{:016x}", fnv1a(seed.as_bytes()))
}

/// The set the image's marker names, if it is complete.
async fn find(engine: &Engine, id: &str, dirs: &[String]) -> Result<Option<Vec<VolumeMount>>, EngineError> {
    let listed = engine
        .volumes_with_label(&format!("{}={id}", labels::TOOLCHAIN_IMAGE))
        .await?;
    let Some(nonce) = listed
        .iter()
        .find(|volume| volume.name == marker(id))
        .and_then(|marker| marker.labels.get(labels::TOOLCHAIN_SET))
    else {
        return Ok(None);
    };
    let volumes = set_volumes(id, nonce, dirs);
    let complete = volumes
        .iter()
        .all(|wanted| listed.iter().any(|volume| volume.name == wanted.volume));
    if !complete {
        tracing::warn!(image = id, set = %nonce, "the named toolchain set lacks a volume; sandboxes start without it");
        return Ok(None);
    }
    Ok(Some(volumes))
}

/// The toolchain volumes among `listed` (the engine's managed volumes) that no runner can need, in the order to
/// remove them: every set and marker of an image that no longer exists (its marker first, so that no runner finds a
/// set being removed), every set the image's marker does not name, and a marker whose set lost a volume. A set no
/// marker names yet is left alone: a runner may be filling it.
pub async fn unneeded(engine: &Engine, listed: &[Labelled]) -> Vec<String> {
    let mut by_image: HashMap<&str, Vec<&Labelled>> = HashMap::new();
    for volume in listed {
        if let Some(image) = volume.labels.get(labels::TOOLCHAIN_IMAGE) {
            by_image.entry(image).or_default().push(volume);
        }
    }
    let mut doomed = Vec::new();
    for (image, volumes) in by_image {
        match engine.image_exists(image).await {
            Ok(false) => {
                let (markers, sets): (Vec<_>, Vec<_>) = volumes.into_iter().partition(|v| v.name == marker(image));
                doomed.extend(markers.into_iter().chain(sets).map(|v| v.name.clone()));
            }
            Ok(true) => doomed.extend(stale(image, &volumes)),
            Err(error) => {
                tracing::warn!(error = %describe(&error), image, "reaper cannot inspect a toolchain set's image")
            }
        }
    }
    doomed
}

/// The volumes of an existing image that no runner can need: sets the marker does not name, or the marker itself
/// when its set is incomplete.
fn stale(image: &str, volumes: &[&Labelled]) -> Vec<String> {
    let marker_name = marker(image);
    let Some(named) = volumes.iter().find(|v| v.name == marker_name) else {
        return Vec::new();
    };
    let set = |v: &Labelled| v.labels.get(labels::TOOLCHAIN_SET).cloned();
    let wanted: usize = named
        .labels
        .get(labels::TOOLCHAIN_VOLUMES)
        .and_then(|count| count.parse().ok())
        .unwrap_or(0);
    let members = volumes
        .iter()
        .filter(|v| v.name != marker_name && set(v) == set(named))
        .count();
    if members < wanted {
        return vec![marker_name];
    }
    volumes
        .iter()
        .filter(|v| v.name != marker_name && set(v) != set(named))
        .map(|v| v.name.clone())
        .collect()
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
            assert!(matches!(refused, Refused::Reserved { .. }), "{bad}: {refused}");
        }
        // A directory holding a reserved place would hide it too.
        assert!(
            matches!(parse("/usr:/usr/lib"), Err(Refused::Nested { .. })),
            "nested directories"
        );
        assert!(parse("/tmpdir").is_ok(), "a prefix by name only is not inside");
    }
}
