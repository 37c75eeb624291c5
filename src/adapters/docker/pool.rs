//! Warm sandboxes started before they are needed. For each pair of build and run images scripts have asked for,
//! the pool keeps up to `idle` [`Pair`]s started: a per-script program volume (a size-bounded tmpfs owned by the
//! sandbox user), a build container that mounts it writable, and a run container that mounts it read-only, each
//! with the supervisor serving on its attached stream. A script takes a pair, compiles into the volume, drops the
//! build container and runs every test in the run container; then the pair is removed in the background. A pair is
//! never handed to a second script.
//!
//! When a language builds and runs in the same image (Python) and the kernel offers Landlock, one container does
//! both: it builds into the volume, then runs every test sealed, so that the program directory is read-only to
//! the tests although it is mounted writable. A container costs about a fifth of a CPU-second on a 2-core machine
//! to start and remove, so this halves the sandbox overhead of the commonest language.
//!
//! Limits that depend on the script stay the script's: every build container has the compile limits, and the run
//! container gets the script's memory limit with `docker update` when it was started with another one (a few ms;
//! swap follows it). A runtime that cannot change a started container's limits (gVisor's `runsc`) gets pairs
//! without a run container, which is started for its script once the limit is known. Everything else (CPU, PIDs,
//! tmpfs sizes, hardening) is the same for every script.
//!
//! The refill task lives until the runtime is dropped; the supervisor of every pooled container exits when the
//! runner's stream closes, so a runner killed with SIGKILL leaves only stopped containers for the reaper.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{Notify, OnceCell};
use tokio_util::sync::CancellationToken;

use super::engine::Engine;
use super::hardening::{ContainerSpec, VolumeMount, hardened};
use super::labels;
use super::languages::PROGRAM_DIR;
use super::lock;
use super::session::{ProgramVolume, Session};
use super::settings::SandboxSettings;
use super::shared_dirs::SharedDirs;
use super::supervisor::{self, GUARD_DIR, GUARD_NAME};
use super::uids::Uids;
use crate::ports::{RuntimeError, describe};

/// Directories the supervisor empties before every test: every place a test can write.
const RUN_WRITABLE: [&str; 2] = ["/tmp", "/dev/shm"];
/// A build also writes the program directory.
const BUILD_WRITABLE: [&str; 3] = ["/tmp", "/dev/shm", PROGRAM_DIR];
/// An idle pair older than this is replaced, well before its expiry labels let a reaper take it.
const IDLE_MAX: Duration = Duration::from_secs(300);
/// How long a failed refill waits before it tries again, so a missing image does not spin.
const REFILL_BACKOFF: Duration = Duration::from_secs(5);

/// The images of a language: pairs are kept per pair of images.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Images {
    /// The language's build image (`*_IMAGE`), which its build containers start from.
    pub build: String,
    /// The language's run image (`*_RUN_IMAGE`), which its run containers start from; may be the same as `build`.
    pub run: String,
}

/// What one script gets: a build container and a run container sharing a fresh program volume, or one container
/// that builds and then runs the tests sealed.
pub struct Pair {
    /// The container the script is built in, the program volume mounted writable; without `runner`, it runs the tests.
    pub builder: Session,
    /// `None` when the builder runs the tests too, sealed (`builder.seal_tests`), or when the runtime cannot change a
    /// started container's memory limit, so that the run container is started for the script.
    pub runner: Option<Session>,
    /// The volume, for a run container started later to replace a broken one.
    pub volume: Arc<ProgramVolume>,
}

impl Pair {
    fn usable(&self) -> bool {
        let fresh = |session: &Session| !session.is_broken() && session.started.elapsed() < IDLE_MAX;
        fresh(&self.builder) && self.runner.as_ref().is_none_or(fresh)
    }
}

#[derive(Clone)]
pub struct Pool {
    /// Shared with the refill task, which outlives any one handle.
    inner: Arc<Inner>,
}

struct Inner {
    /// Creates, starts and removes the pool's containers and volumes.
    engine: Engine,
    /// The hardening, sizes, compile limits and instance id every sandbox is created with.
    settings: SandboxSettings,
    /// Idle pairs kept started per pair of images.
    idle_target: usize,
    /// The started pairs waiting for a script, oldest first, per pair of images; refilled by the refill task.
    idle: Mutex<HashMap<Images, VecDeque<Pair>>>,
    /// The pairs of images scripts have asked for, with the memory limit last asked for, which new run containers
    /// start with.
    wanted: Mutex<HashMap<Images, u64>>,
    /// Wakes the refill task after a take.
    wake: Notify,
    /// The supervisor's volume, made once.
    guard_volume: OnceCell<String>,
    /// The images' toolchain directories, where the storage driver needs them shared.
    shared_dirs: SharedDirs,
    /// Cleared when a supervisor reports that it cannot seal tests (no Landlock): every script then gets a pair.
    sealing: AtomicBool,
    /// Gives each sandbox a user of its own.
    uids: Arc<Uids>,
    /// Numbers the containers this pool names (`scrc-<instance>-w<n>`), so that no two names clash.
    sequence: AtomicU64,
    /// Stops the refill task, which then drops the idle pairs and so removes their containers.
    stop: CancellationToken,
}

impl Pool {
    /// A pool keeping `idle_target` pairs per pair of images (0 keeps none: every take starts one). Its refill task
    /// runs until `stop` fires.
    pub fn new(engine: Engine, settings: SandboxSettings, idle_target: usize, stop: CancellationToken) -> Self {
        let shared_dirs = SharedDirs::new(engine.clone(), settings.instance.clone(), settings.shared_toolchains);
        let uids = Uids::new(engine.clone(), settings.uids.clone());
        let pool = Self {
            inner: Arc::new(Inner {
                engine,
                settings,
                idle_target,
                idle: Mutex::new(HashMap::new()),
                wanted: Mutex::new(HashMap::new()),
                wake: Notify::new(),
                guard_volume: OnceCell::new(),
                shared_dirs,
                sealing: AtomicBool::new(true),
                uids,
                sequence: AtomicU64::new(0),
                stop,
            }),
        };
        if idle_target > 0 {
            tokio::spawn(refill(Arc::clone(&pool.inner)));
        }
        pool
    }

    /// Starts pairs for these images ahead of the first script.
    pub fn prime(&self, images: impl IntoIterator<Item = Images>) {
        let memory = self.inner.settings.run_memory_default;
        let mut wanted = lock(&self.inner.wanted);
        for images in images {
            wanted.entry(images).or_insert(memory);
        }
        drop(wanted);
        self.inner.wake.notify_one();
    }

    /// A started pair for `images`, from the pool or started now. Its run container's limit is fitted to the script
    /// after the build, when the program's size is known; `memory`, the script's limit, is what the next pairs'
    /// run containers start with.
    ///
    /// # Errors
    /// [`RuntimeError`] when a container cannot be started.
    pub async fn take(&self, images: &Images, memory: u64) -> Result<Pair, RuntimeError> {
        lock(&self.inner.wanted).insert(images.clone(), memory);
        let pooled = {
            let mut idle = lock(&self.inner.idle);
            let queue = idle.entry(images.clone()).or_default();
            queue.retain(Pair::usable);
            queue.pop_front()
        };
        self.inner.wake.notify_one();
        match pooled {
            Some(pair) => Ok(pair),
            None => self.inner.start_pair(images, memory).await,
        }
    }

    /// Starts a sandbox for images a script asked for and removes it again: the circuit breaker's probe. It
    /// proves that the engine makes a volume, creates and starts a container, and that the supervisor greets.
    /// Before any script asked for images there is nothing to start, and only the engine's answer counts.
    ///
    /// # Errors
    /// [`RuntimeError`] when the sandbox cannot be started.
    pub async fn probe(&self) -> Result<(), RuntimeError> {
        let wanted = lock(&self.inner.wanted)
            .iter()
            .next()
            .map(|(images, memory)| (images.clone(), *memory));
        match wanted {
            Some((images, memory)) => self.inner.start_pair(&images, memory).await.map(drop),
            None => Ok(()),
        }
    }

    /// A new run container on an existing program volume: for a script whose run container broke, or whose pair
    /// came without one.
    ///
    /// # Errors
    /// [`RuntimeError`] when the container cannot be started.
    pub async fn start_runner(
        &self,
        image: &str,
        volume: &Arc<ProgramVolume>,
        memory: u64,
    ) -> Result<Session, RuntimeError> {
        self.inner.start(image, Role::Run, volume, memory).await
    }

    /// How many containers and volumes are idle now.
    pub fn idle(&self) -> (usize, usize) {
        let idle = lock(&self.inner.idle);
        let pairs = idle.values().flatten();
        let containers = pairs.clone().map(|pair| 1 + usize::from(pair.runner.is_some())).sum();
        (containers, pairs.count())
    }

    /// How many started pairs (or single sandboxes) wait for a script now, each with its program volume.
    pub fn idle_pairs(&self) -> usize {
        lock(&self.inner.idle).values().map(VecDeque::len).sum()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Build,
    Run,
    /// Builds, then runs the tests sealed.
    Both,
}

impl Inner {
    /// Creates a program volume and starts both containers on it.
    async fn start_pair(&self, images: &Images, memory: u64) -> Result<Pair, RuntimeError> {
        let settings = &self.settings;
        let name = format!("{}-box", self.name());
        let bytes = settings.artifact_limit as u64;
        let expires = self.expiry();
        let uid = self.uids.claim().await?;
        self.engine
            .create_program_volume(
                &name,
                bytes,
                uid.get(),
                labels::for_sandbox(&settings.instance, expires, uid.get()),
            )
            .await?;
        let volume = Arc::new(ProgramVolume::new(self.engine.clone(), name, uid));
        if images.build == images.run && self.sealing.load(Ordering::Relaxed) {
            let session = self
                .start(
                    &images.build,
                    Role::Both,
                    &volume,
                    settings.compile_memory_limit.bytes(),
                )
                .await?;
            if session.hello.can_seal() {
                return Ok(Pair {
                    builder: session,
                    runner: None,
                    volume,
                });
            }
            tracing::warn!(
                landlock = session.hello.landlock,
                "the kernel cannot seal tests (Landlock ABI 3 or later is needed): every script gets a build and a \
                 run container"
            );
            self.sealing.store(false, Ordering::Relaxed);
        }
        let build = self.start(
            &images.build,
            Role::Build,
            &volume,
            settings.compile_memory_limit.bytes(),
        );
        if !settings.hardening.updates_memory() {
            return Ok(Pair {
                builder: build.await?,
                runner: None,
                volume,
            });
        }
        let (builder, runner) = tokio::join!(build, self.start(&images.run, Role::Run, &volume, memory));
        Ok(Pair {
            builder: builder?,
            runner: Some(runner?),
            volume,
        })
    }

    fn name(&self) -> String {
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        format!("scrc-{}-w{sequence}", self.settings.instance)
    }

    fn expiry(&self) -> SystemTime {
        SystemTime::now() + lifetime(&self.settings)
    }

    /// Creates and starts one warm container on `volume`.
    async fn start(
        &self,
        image: &str,
        role: Role,
        volume: &Arc<ProgramVolume>,
        memory: u64,
    ) -> Result<Session, RuntimeError> {
        let guard_volume = self
            .guard_volume
            .get_or_try_init(|| supervisor::volume(&self.engine, image, &self.settings.instance))
            .await?;
        let settings = &self.settings;
        // A container that runs tests gets their /tmp size; one that builds and then runs the tests wipes only
        // what tests may write, and the fresh volume needs no wipe before its build.
        let (tmpfs_bytes, writable, read_only): (u64, &[&str], bool) = match role {
            Role::Build => (settings.build_tmpfs_bytes, &BUILD_WRITABLE, false),
            Role::Run => (settings.run_tmpfs_bytes, &RUN_WRITABLE, true),
            Role::Both => (settings.run_tmpfs_bytes, &RUN_WRITABLE, false),
        };
        let mut command = vec!["--serve".to_owned(), "--uid".to_owned(), volume.uid().to_string()];
        command.extend(
            settings
                .hardening
                .supervisor_options()
                .iter()
                .map(|&option| option.to_owned()),
        );
        command.extend(writable.iter().map(|dir| (*dir).to_owned()));
        let mut mounts = self.shared_dirs.for_image(image).await?;
        mounts.volumes.extend([
            VolumeMount {
                volume: guard_volume.clone(),
                target: GUARD_DIR.into(),
                read_only: true,
            },
            VolumeMount {
                volume: volume.name.clone(),
                target: PROGRAM_DIR.into(),
                read_only,
            },
        ]);
        let spec = ContainerSpec {
            image: mounts.image,
            entrypoint: format!("{GUARD_DIR}/{GUARD_NAME}"),
            command,
            env: Vec::new(),
            workdir: "/".into(),
            volumes: mounts.volumes,
            memory,
            tmpfs_bytes,
            labels: labels::for_sandbox(&settings.instance, self.expiry(), volume.uid()),
        };
        let id = self
            .engine
            .create_container(&self.name(), hardened(spec, &settings.hardening))
            .await?;
        let mut session = Session::start(self.engine.clone(), id, memory, Some(Arc::clone(volume))).await?;
        session.seal_tests = role == Role::Both;
        Ok(session)
    }
}

/// The longest a warm container can live after it is started: idle in the pool, then one script, then a margin.
fn lifetime(settings: &SandboxSettings) -> Duration {
    IDLE_MAX + settings.script_deadline + Duration::from_secs(60)
}

/// Keeps every wanted pair of images at its idle target, one pair at a time so that refilling never competes with
/// the scripts for more than a couple of engine calls.
async fn refill(inner: Arc<Inner>) {
    loop {
        let wanted: Vec<(Images, u64)> = lock(&inner.wanted).iter().map(|(k, m)| (k.clone(), *m)).collect();
        let mut failed = false;
        for (images, memory) in wanted {
            loop {
                let short = {
                    let mut idle = lock(&inner.idle);
                    let queue = idle.entry(images.clone()).or_default();
                    queue.retain(Pair::usable);
                    queue.len() < inner.idle_target
                };
                if !short || inner.stop.is_cancelled() {
                    break;
                }
                let started = tokio::select! {
                    () = inner.stop.cancelled() => return,
                    started = inner.start_pair(&images, memory) => started,
                };
                match started {
                    Ok(pair) => lock(&inner.idle).entry(images.clone()).or_default().push_back(pair),
                    Err(error) => {
                        tracing::warn!(error = %describe(&error), build = %images.build, run = %images.run,
                            "cannot start a warm sandbox; retrying later");
                        failed = true;
                        break;
                    }
                }
            }
        }
        // After a failure only time helps; otherwise a take, or the age of the idle ones, calls for a refill.
        let woken = async {
            if failed {
                tokio::time::sleep(REFILL_BACKOFF).await;
            } else {
                tokio::select! {
                    () = inner.wake.notified() => {}
                    () = tokio::time::sleep(IDLE_MAX / 4) => {}
                }
            }
        };
        tokio::select! {
            () = inner.stop.cancelled() => break,
            () = woken => {}
        }
    }
    // Dropping the idle pairs removes their containers and volumes.
    lock(&inner.idle).clear();
}
