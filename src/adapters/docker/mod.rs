//! The Docker runtime: the real sandbox behind the [`Runtime`] port, through bollard.
//!
//! [`languages`] knows how each language builds and runs, as [`plans`]. A script is built in one pre-started
//! container from the [`pool`] and all its tests run in another (or, sealed, in the same one), each driven as a
//! [`session`] with the [`supervisor`] over its attached stream ([`protocol`]); [`program`] ties these together,
//! with the [`artifacts`] cache in front of the compiler. Every container is made by [`hardening`];
//! [`shared_dirs`] lets the pool's sandboxes share their toolchain's page cache where the storage driver does not.
//! [`outcome`] maps what the supervisor reports to verdict facts, and [`reaper`] removes what a crashed runner left.

pub mod artifacts;
pub mod engine;
pub mod fault;
pub mod hardening;
pub mod labels;
pub mod languages;
pub mod outcome;
pub mod phases;
pub mod plans;
pub mod pool;
pub mod program;
pub mod protocol;
pub mod reaper;
pub mod session;
pub mod settings;
pub mod shared_dirs;
pub mod supervisor;
pub mod uids;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::domain::{Execution, Language, Limits, Script};
use crate::ports::{CheckFiles, Preparation, Runtime, RuntimeError, describe};
use artifacts::{ArtifactCache, CacheStats};
use engine::Engine;
use fault::SandboxFault;
use languages::{Layout, OwnHeap, Toolchain};
use phases::PhaseObserver;
use plans::{BuildPlan, RunPlan};
use pool::{Images, Pool};
use program::{Built, Feed, Programs};
use settings::SandboxSettings;

#[derive(Debug, Clone, PartialEq)]
pub struct DockerSettings {
    /// `DOCKER_HOST`: the engine's address; `None` for the local socket, `/var/run/docker.sock`.
    pub host: Option<String>,
    /// What every sandbox gets.
    pub sandbox: SandboxSettings,
    /// The images and working directory of each language (SCRC's `*_IMAGE`, `*_RUN_IMAGE`, `*_WORKDIR`).
    pub toolchains: BTreeMap<Language, Toolchain>,
    /// How long to wait for a registry when pulling a missing image at startup.
    pub pull_timeout: Duration,
}

pub struct DockerRuntime {
    /// The engine, for the probes and the cleanup at the end of a run.
    engine: Engine,
    /// Builds scripts into sandboxes from the pool and runs their tests.
    programs: Programs,
    /// What every sandbox gets; the instance names what is this runner's on the engine.
    settings: SandboxSettings,
    /// The images and working directory of each language.
    toolchains: BTreeMap<Language, Toolchain>,
    /// Stops the periodic reaper and the pool's refill when the runtime is dropped.
    reaper: CancellationToken,
}

/// A built program in its sandbox, and its runtime's own heap, if it has one.
#[derive(Debug)]
pub struct Program {
    /// The program built in its sandbox, ready for its tests; boxed, so that a `Program` moves cheaply.
    built: Box<program::Program>,
    /// The cap the language's runtime enforces itself: its report of reaching it counts (ML) only with the memory
    /// to show for it (see [`OwnHeap`]).
    own_heap: Option<OwnHeap>,
}

impl DockerRuntime {
    /// Connects to the Docker engine, removes what a previous run of this instance left, makes sure the images are
    /// present (pulling them when a registry answers), and starts the periodic reaper.
    ///
    /// # Errors
    /// [`RuntimeError::Unavailable`] when the Docker engine cannot be reached.
    pub async fn start(settings: DockerSettings) -> Result<Self, RuntimeError> {
        Self::start_observed(settings, None).await
    }

    /// Like [`DockerRuntime::start`], reporting every sandbox phase's duration to `observer`.
    ///
    /// # Errors
    /// [`RuntimeError::Unavailable`] when the Docker engine cannot be reached.
    pub async fn start_observed(
        settings: DockerSettings,
        observer: Option<Arc<dyn PhaseObserver>>,
    ) -> Result<Self, RuntimeError> {
        let engine = Engine::connect(settings.host.as_deref()).await?;
        engine.ping().await?;
        check_runtime(&engine, settings.sandbox.hardening.runtime.as_deref()).await?;
        reaper::sweep(&engine, Some(&settings.sandbox.instance)).await;
        ensure_images(&engine, &settings.toolchains, settings.pull_timeout).await;
        let reaper = CancellationToken::new();
        tokio::spawn(reaper::run_periodically(engine.clone(), reaper.clone()));
        let pool = Pool::new(
            engine.clone(),
            settings.sandbox.clone(),
            settings.sandbox.pool_idle,
            reaper.child_token(),
        );
        let artifacts = open_artifact_cache(&settings.sandbox);
        let programs = Programs::new(pool, engine.clone(), settings.sandbox.clone(), observer, artifacts);
        Ok(Self {
            engine,
            programs,
            settings: settings.sandbox,
            toolchains: settings.toolchains,
            reaper,
        })
    }

    /// Starts sandboxes for every configured language ahead of its first script. Without this, a language's pool
    /// fills after its first script.
    pub fn prime(&self) {
        self.programs.prime(self.toolchains.values().map(|toolchain| Images {
            build: toolchain.build_image.clone(),
            run: toolchain.run_image.clone(),
        }));
    }

    /// A handle that removes everything of this instance, for the end of a run, once no script is in flight.
    pub fn cleanup(&self) -> Cleanup {
        Cleanup {
            engine: self.engine.clone(),
            instance: self.settings.instance.clone(),
            stop: self.reaper.clone(),
        }
    }

    /// A handle that checks the engine answers, for health checks running beside the executor.
    pub fn probe(&self) -> EngineProbe {
        EngineProbe(self.engine.clone())
    }

    /// What the artifact cache did since the runtime started; `None` when it is off.
    pub fn artifact_cache_stats(&self) -> Option<CacheStats> {
        self.artifact_cache().map(|cache| cache.stats())
    }

    /// The artifact cache, when it is on, for reading its counters after the runtime has been handed on.
    pub fn artifact_cache(&self) -> Option<Arc<ArtifactCache>> {
        self.programs.artifacts()
    }

    /// Containers and volumes of sandboxes started and waiting for a script.
    pub fn idle_sandboxes(&self) -> (usize, usize) {
        self.programs.idle()
    }

    /// A handle that counts the idle sandboxes, for metrics beside the executor.
    pub fn idle_counter(&self) -> IdleSandboxes {
        IdleSandboxes(self.programs.pool())
    }

    fn toolchain(&self, language: Language) -> Result<&Toolchain, RuntimeError> {
        self.toolchains
            .get(&language)
            .ok_or_else(|| SandboxFault::NoToolchain(language).into())
    }
}

/// Counts the sandboxes waiting for a script (see [`DockerRuntime::idle_counter`]).
#[derive(Clone)]
pub struct IdleSandboxes(Pool);

impl IdleSandboxes {
    /// Sandboxes (a build and a run container each, or a build container alone) started and waiting.
    pub fn count(&self) -> usize {
        self.0.idle_pairs()
    }
}

/// Removes every container and volume of one runner instance: the idle warm sandboxes, and anything a script
/// dropped at shutdown is still removing in the background. A process that exits right after its last script
/// would otherwise leave them to the next start of the instance or to the reaper.
pub struct Cleanup {
    /// The engine the instance's containers and volumes are removed from.
    engine: Engine,
    /// The runner's instance id: everything labelled with it is removed, and nothing of another runner.
    instance: String,
    /// Stops the reaper and the pool's refill, so that nothing new is started while the instance is cleared.
    stop: CancellationToken,
}

impl Cleanup {
    /// Sweeps until nothing of the instance is left, or for at most [`CLEANUP_PATIENCE`]: removals the pool
    /// started in the background may still be under way, and the engine refuses a volume while a container that
    /// mounts it is being removed.
    pub async fn run(self) {
        self.stop.cancel();
        let deadline = tokio::time::Instant::now() + CLEANUP_PATIENCE;
        let label = format!("{}={}", labels::INSTANCE, self.instance);
        loop {
            reaper::sweep(&self.engine, Some(&self.instance)).await;
            let containers = self.engine.containers_with_label(&label).await.map(|c| c.len());
            let volumes = self.engine.volumes_with_label(&label).await.map(|v| v.len());
            let cleared = matches!((containers, volumes), (Ok(0), Ok(0)));
            if cleared || tokio::time::Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// How long the end of a run may spend removing the instance's sandboxes; part of the longest shutdown, which
/// compose's stop grace period must cover.
pub const CLEANUP_PATIENCE: Duration = Duration::from_secs(5);

/// Checks that the Docker engine answers.
#[derive(Clone)]
pub struct EngineProbe(Engine);

impl EngineProbe {
    /// # Errors
    /// [`RuntimeError::Unavailable`] when the engine does not answer.
    pub async fn ping(&self) -> Result<(), RuntimeError> {
        Ok(self.0.ping().await?)
    }
}

impl Drop for DockerRuntime {
    fn drop(&mut self) {
        self.reaper.cancel();
    }
}

/// The artifact cache in a directory of this instance's own under the system's temporary directory, or `None`
/// when it is off or the directory cannot be made (every script is then compiled, as without it).
fn open_artifact_cache(settings: &SandboxSettings) -> Option<Arc<ArtifactCache>> {
    if settings.artifact_cache_bytes == 0 {
        return None;
    }
    let dir = std::env::temp_dir().join(format!("scrc-artifacts-{}", settings.instance));
    match ArtifactCache::open(&dir, settings.artifact_cache_bytes) {
        Ok(cache) => Some(Arc::new(cache)),
        Err(error) => {
            tracing::warn!(error = %describe(&error), dir = %dir.display(), "cannot open the artifact cache; every script is compiled");
            None
        }
    }
}

/// Checks every configured image, pulls the missing ones, and warns about those that cannot be had: the scripts
/// of those languages will get IE naming the image until it is present.
/// A runtime named by `RUNNER_DOCKER_RUNTIME` must be one the engine offers: else every sandbox would fail to start,
/// one script at a time.
async fn check_runtime(engine: &Engine, runtime: Option<&str>) -> Result<(), RuntimeError> {
    let Some(name) = runtime else {
        return Ok(());
    };
    let offered = engine.runtimes().await?;
    if offered.iter().any(|offered| offered == name) {
        return Ok(());
    }
    Err(RuntimeError::Sandbox(
        SandboxFault::NoSuchRuntime {
            name: name.to_owned(),
            offered: offered.join(", "),
        }
        .into(),
    ))
}

async fn ensure_images(engine: &Engine, toolchains: &BTreeMap<Language, Toolchain>, pull_timeout: Duration) {
    let mut users: BTreeMap<&str, BTreeSet<Language>> = BTreeMap::new();
    for (language, toolchain) in toolchains {
        users.entry(&toolchain.build_image).or_default().insert(*language);
        users.entry(&toolchain.run_image).or_default().insert(*language);
    }
    let checks = users.into_iter().map(|(image, languages)| async move {
        match engine.image_exists(image).await {
            Ok(true) => return,
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(error = %describe(&error), image, "cannot check image");
                return;
            }
        }
        tracing::info!(image, "image missing; pulling it");
        if let Err(error) = engine.pull(image, pull_timeout).await {
            let languages: Vec<&str> = languages.iter().map(|l| l.as_str()).collect();
            tracing::warn!(
                image,
                ?languages,
                error = %describe(&error),
                "image missing and cannot be pulled: scripts in these languages will get IE until it is present \
                 (on a host without a registry, build local images with scripts/build-images.sh)"
            );
        }
    });
    futures::future::join_all(checks).await;
}

impl Runtime for DockerRuntime {
    type Program = Program;

    async fn prepare(
        &self,
        script: &Script,
        limits: Limits,
        cancel: &CancellationToken,
    ) -> Result<Preparation<Program>, RuntimeError> {
        let module = languages::module(script.language);
        let toolchain = self.toolchain(script.language)?;
        let entry = script.language.saved_as(script.entry.as_ref(), script.source.as_str());
        let mut paths = vec![entry.clone()];
        paths.extend(script.files.iter().map(|file| file.path.to_string()));
        let layout = Layout {
            entry: &entry,
            entry_source: script.source.as_str(),
            files: &paths,
        };
        let build = BuildPlan {
            language: script.language.as_str(),
            image: toolchain.build_image.clone(),
            command: module.build_command(&layout),
            env: module.build_env(),
            sources: plans::sources(&entry, script.source.as_str(), &script.files),
        };
        let in_workdir = |name: &crate::domain::IoName| format!("{}/{name}", toolchain.workdir.trim_end_matches('/'));
        let run = RunPlan {
            image: toolchain.run_image.clone(),
            workdir: toolchain.workdir.clone(),
            command: module.run_command(&layout, limits.memory),
            env: module.run_env(self.settings.hardening.cpus),
            input_file: script.io.input_file.as_ref().map(in_workdir),
            output_file: script.io.output_file.as_ref().map(in_workdir),
        };
        let built = self.programs.build(build, run, limits, cancel).await?;
        Ok(match built {
            Built::Ready(built) => Preparation::Ready(Program {
                built,
                own_heap: module.own_heap(limits.memory),
            }),
            Built::Failed(failure) => Preparation::BuildFailed(failure),
        })
    }

    async fn run(
        &self,
        program: &Program,
        input: &[u8],
        cancel: &CancellationToken,
    ) -> Result<Execution, RuntimeError> {
        self.programs
            .run(&program.built, Feed::Input(input), program.own_heap, cancel)
            .await
    }

    async fn check(
        &self,
        checker: &Program,
        files: CheckFiles<'_>,
        cancel: &CancellationToken,
    ) -> Result<Execution, RuntimeError> {
        self.programs
            .run(&checker.built, Feed::Check(files), checker.own_heap, cancel)
            .await
    }

    async fn probe(&self, cancel: &CancellationToken) -> Result<(), RuntimeError> {
        let probed = async {
            self.engine.ping().await?;
            self.programs.probe().await
        };
        tokio::select! {
            () = cancel.cancelled() => Err(RuntimeError::Cancelled),
            probed = probed => probed,
        }
    }

    async fn release(&self, program: Program) {
        // Dropping the program drops its sandbox, which removes its container and volume in the background.
        drop(program);
    }
}

/// Locks a mutex whose data stays valid even if a holder panicked (counters, queues, caches): a poisoned lock is
/// taken as it is rather than spreading the panic.
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
