//! A script's program in its sandbox: built in a pre-started build container from the [`Pool`] while its run
//! container is taken, then run test by test in the run container, the two sharing the script's own program volume.
//!
//! Nothing moves through Docker's archive API on the way: the source goes in over the build supervisor's attached
//! stream, the compiler writes the program into the volume, and the run container sees it there read-only, so the
//! artifact never leaves the engine and no test can change it. Before every test the supervisor kills whatever the
//! previous test left and empties every writable directory, so each test starts from the built program, a clean
//! `/tmp` and `/dev/shm`, and no process of an earlier test; its time, CPU, memory peak and OOM kills are measured
//! for it alone (see `guard/`).
//!
//! A run container whose supervisor stopped answering is dropped (and removed); the next test starts a new one
//! holding the same program.
//!
//! With the artifact cache ([`super::artifacts`]) a build that was done before is not done again: a cached failure
//! comes back without any container, and a cached program goes into the script's volume through the pair's build
//! container instead of a compiler run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::artifacts::{self, ArtifactCache, Cached, Key};
use super::engine::Engine;
use super::fault::{self, ImageUnfit, SandboxFault};
use super::languages::{OwnHeap, PROGRAM_DIR};
use super::lock;
use super::outcome::{self, CompileLimits, NoReport, Observed};
use super::phases::{Phase, PhaseObserver};
use super::plans::{BuildPlan, RunPlan, unix_now};
use super::pool::{Images, Pair, Pool};
use super::protocol::{self, Entry, Exec, File, ServedReport};
use super::session::{ProgramVolume, Session, Waited};
use super::settings::{SandboxSettings, Seccomp};
use crate::domain::{Execution, Limits};
use crate::ports::{BuildFailure, CheckFiles, RuntimeError, describe};

/// How long past its own limit the runner waits for a report before it kills the container itself.
const BACKSTOP: Duration = Duration::from_secs(2);
/// How long an image's id is trusted for the artifact cache's keys before it is looked up again: a tag moved to a
/// rebuilt image is noticed within this time.
const IMAGE_ID_TTL: Duration = Duration::from_secs(10);

pub struct Programs {
    /// Hands out the started sandbox pairs that scripts are built and run in.
    pool: Pool,
    /// The output and artifact limits, the compile limits and the instance every build and test is held to.
    settings: SandboxSettings,
    /// Told how long each phase took (create, compile, transfer, run), for the phase benchmark; `None` in the runner.
    observer: Option<Arc<dyn PhaseObserver>>,
    /// Built programs and compile errors kept by source, so that a program seen before is not compiled again; `None`
    /// when `RUNNER_ARTIFACT_CACHE_BYTES` is 0.
    artifacts: Option<Arc<ArtifactCache>>,
    /// Asked for the build image's id, part of the artifact cache's key.
    engine: Engine,
    /// Image ids by name, with when they were looked up.
    image_ids: Mutex<HashMap<String, (String, Instant)>>,
    /// The runner's own directory (mode 0700, emptied when the runtime starts) for the copies of large programs in
    /// flight (see [`ProgramCopy`]).
    spill: PathBuf,
}

/// A built script: the container its tests run in, and what is needed to set up another one if it breaks.
pub struct Program {
    /// The build and run images, to take another pair from the pool when the run container breaks.
    images: Images,
    /// How each test runs: the run image, the program's command line, environment and working directory.
    run: RunPlan,
    /// The script's enforced time and memory limits: each test's time limit, and the run container's memory.
    limits: Limits,
    /// The runner's copy of the built program, to set up another sandbox when this one dies.
    copy: ProgramCopy,
    /// The bytes of the program's files, which count against each test's memory limit (see [`run_memory`]); 0 when
    /// the program could not be gathered.
    program_bytes: u64,
    /// The container the tests run in, with its program volume; replaced when it breaks.
    sandbox: tokio::sync::Mutex<Option<(Session, Arc<ProgramVolume>)>>,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("images", &self.images)
            .field("run", &self.run)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

pub enum Built {
    Ready(Box<Program>),
    Failed(BuildFailure),
}

/// What one run of a built program is given.
#[derive(Debug, Clone, Copy)]
pub enum Feed<'a> {
    /// A test's input: on stdin, or in the file the script's `io.input_file` names.
    Input(&'a [u8]),
    /// A checker program's three files, put in `/tmp` (its own, wiped before each test) and named on its command
    /// line after the program's own arguments, in testlib's order.
    Check(CheckFiles<'a>),
}

/// Where a checker program finds the test's input, the program's output and the expected answer.
const CHECK_FILES: [&str; 3] = ["/tmp/input.txt", "/tmp/output.txt", "/tmp/answer.txt"];

impl Programs {
    pub fn new(
        pool: Pool,
        engine: Engine,
        settings: SandboxSettings,
        observer: Option<Arc<dyn PhaseObserver>>,
        artifacts: Option<Arc<ArtifactCache>>,
    ) -> Self {
        let spill = std::env::temp_dir().join(format!("scrc-programs-{}", settings.instance));
        if let Err(error) = fresh_directory(&spill) {
            tracing::warn!(%error, dir = %spill.display(), "cannot make the directory for large programs in flight");
        }
        Self {
            pool,
            settings,
            observer,
            artifacts,
            engine,
            image_ids: Mutex::new(HashMap::new()),
            spill,
        }
    }

    /// The artifact cache, when it is on.
    pub fn artifacts(&self) -> Option<Arc<ArtifactCache>> {
        self.artifacts.clone()
    }

    /// Starts pairs for these images ahead of their first script.
    pub fn prime(&self, images: impl IntoIterator<Item = Images>) {
        self.pool.prime(images);
    }

    /// Starts a sandbox and removes it again, for the circuit breaker's probe.
    ///
    /// # Errors
    /// [`RuntimeError`] when it cannot be started.
    pub async fn probe(&self) -> Result<(), RuntimeError> {
        self.pool.probe().await
    }

    /// Containers and volumes started and waiting in the pool.
    pub fn idle(&self) -> (usize, usize) {
        self.pool.idle()
    }

    /// The pool, for counting its idle sandboxes beside the runtime.
    pub fn pool(&self) -> Pool {
        self.pool.clone()
    }

    fn observe(&self, phase: Phase, since: Instant) {
        if let Some(observer) = &self.observer {
            observer.observe(phase, since.elapsed());
        }
    }

    /// Builds a script in a build container from the pool while its run container is taken, or loads the program (or the
    /// compile error) the artifact cache kept from an earlier build of the same source.
    ///
    /// # Errors
    /// [`RuntimeError`] when Docker fails or an image is missing; the containers are removed.
    pub async fn build(
        &self,
        plan: BuildPlan,
        run: RunPlan,
        limits: Limits,
        cancel: &CancellationToken,
    ) -> Result<Built, RuntimeError> {
        let images = Images {
            build: plan.image.clone(),
            run: run.image.clone(),
        };
        let key = self.cache_key(&plan).await?;
        if let (Some(cache), Some(key)) = (&self.artifacts, &key) {
            match cache.get(key).await {
                Some(Cached::Failed(failure)) => return Ok(Built::Failed(failure)),
                Some(Cached::Program(entries)) => {
                    let program: Arc<[Entry]> = entries.into();
                    let (session, volume) = self.load(&program, &images, limits).await?;
                    return Ok(ready(images, run, limits, Some(program), &self.spill, session, volume));
                }
                None => {}
            }
        }
        let taking = Instant::now();
        let pair = self.pool.take(&images, limits.memory.bytes()).await?;
        let (mut builder, runner, volume) = (pair.builder, pair.runner, pair.volume);
        self.observe(Phase::Create, taking);

        let transferring = Instant::now();
        builder.restore(PROGRAM_DIR, &plan.sources).await?;
        self.observe(Phase::Transfer, transferring);

        let limit = self.settings.compile_time_limit;
        let request = Exec {
            limit_ms: millis(limit),
            output_limit: u32::try_from(self.settings.output_limit).unwrap_or(u32::MAX),
            workdir: PROGRAM_DIR,
            argv: &plan.command,
            env: &plan.env,
            stdin: b"",
            seal: false,
            strict: self.settings.seccomp == Seccomp::Strict,
            cpu_limit_ms: 0,
            output_file: None,
        };
        let (started, memory) = (Instant::now(), builder.memory);
        let observed = match builder.exec(&request, limit + BACKSTOP, cancel).await? {
            Waited::Served(served) => {
                check_served(&served.report, &plan.image, &plan.command)?;
                if let Some(observer) = &self.observer {
                    observer.observe(Phase::Compile, Duration::from_nanos(served.report.wall_ns));
                }
                observed(*served.report, served.stdout, served.stderr)
            }
            Waited::Backstop => backstopped(limit),
            Waited::OutOfMemory => out_of_memory(started.elapsed(), memory),
        };
        if let Some(missing) = outcome::toolchain_missing(&observed, &plan.image) {
            return Err(missing);
        }
        let limits_of_build = CompileLimits {
            time: limit,
            memory: self.settings.compile_memory_limit.bytes(),
        };
        match outcome::build_failure(&observed, limits_of_build) {
            Ok(None) => {}
            Ok(Some(reason)) => {
                let failure = BuildFailure {
                    diagnostics: outcome::diagnostics(&observed),
                    reason,
                };
                if let (Some(cache), Some(key)) = (&self.artifacts, key)
                    && refused_by_the_compiler(&observed)
                {
                    cache.put(key, &Cached::Failed(failure.clone())).await;
                }
                return Ok(Built::Failed(failure));
            }
            Err(NoReport) => return Err(SandboxFault::NoReport("build").into()),
        }
        // The program is kept outside the sandbox: for the cache, and to set up another sandbox for the remaining
        // tests if this one dies (the volume is a tmpfs, gone with the last container that mounts it).
        let limit = u32::try_from(self.settings.artifact_limit).unwrap_or(u32::MAX);
        let program: Option<Arc<[Entry]>> = match builder.gather(PROGRAM_DIR, limit).await? {
            Ok(entries) => Some(entries.into()),
            // The tree fits its volume but not the limit once its names and metadata count: the same source always
            // builds the same tree, so this is the program's verdict, never a failure of the sandbox to retry.
            Err(protocol::EFBIG) => {
                let failure = BuildFailure {
                    diagnostics: outcome::diagnostics(&observed),
                    reason: format!(
                        "program too large: the build's files, with their names, exceed the artifact limit of {} bytes",
                        self.settings.artifact_limit
                    ),
                };
                if let (Some(cache), Some(key)) = (&self.artifacts, key) {
                    cache.put(key, &Cached::Failed(failure.clone())).await;
                }
                return Ok(Built::Failed(failure));
            }
            Err(errno) => {
                tracing::debug!(errno, "a built program that cannot be kept outside its sandbox");
                None
            }
        };
        if let (Some(cache), Some(key), Some(program)) = (&self.artifacts, key, &program) {
            cache.put(key, &Cached::Program(program.to_vec())).await;
        }
        let bytes = program.as_deref().map_or(0, tree_bytes);
        let pair = Pair {
            builder,
            runner,
            volume,
        };
        let (session, volume) = self
            .tests_container(pair, program.as_deref(), bytes, &images, limits)
            .await?;
        Ok(ready(images, run, limits, program, &self.spill, session, volume))
    }

    /// The container the tests run in: the run container, limited to the script's memory less the program's
    /// `program_bytes` (see [`run_memory`]) and started now where the pair has none, or the one that holds the
    /// program writable, sealed, under the script's own memory limit. `program` is what to load into a new sandbox
    /// when that one cannot be lowered: `None` where this is that load, so that it never loads again.
    async fn tests_container(
        &self,
        pair: Pair,
        program: Option<&[Entry]>,
        program_bytes: u64,
        images: &Images,
        limits: Limits,
    ) -> Result<(Session, Arc<ProgramVolume>), RuntimeError> {
        let Pair {
            mut builder,
            runner,
            volume,
        } = pair;
        let memory = run_memory(limits, program_bytes);
        if let Some(mut runner) = runner {
            if let Some(memory) = memory {
                runner.limit_memory(memory).await?;
            }
            return Ok((runner, volume));
        }
        if !builder.seal_tests {
            // Started before the builder goes, so that the volume stays mounted.
            let runner = self
                .pool
                .start_runner(&images.run, &volume, memory.unwrap_or(MIN_RUN_MEMORY))
                .await?;
            drop(builder);
            return Ok((runner, volume));
        }
        builder.keep(PROGRAM_DIR).await?;
        match builder.limit_memory(limits.memory.bytes()).await {
            Ok(()) => Ok((builder, volume)),
            // The kernel could not bring the build's memory under the script's limit: the tests get a run
            // container of their own instead, started before this one goes so that the volume stays mounted.
            Err(error) => {
                tracing::warn!(error = %describe(&error), "cannot lower a sandbox to the script's memory limit");
                let tests = match program {
                    Some(program) => self.load(program, images, limits).await?,
                    None => {
                        let memory = run_memory(limits, program_bytes).unwrap_or(MIN_RUN_MEMORY);
                        let runner = self.pool.start_runner(&images.run, &volume, memory).await?;
                        (runner, volume)
                    }
                };
                drop(builder);
                Ok(tests)
            }
        }
    }

    /// A new sandbox holding `program`: a pair from the pool whose build container compiles nothing but receives
    /// the program and sends it back for checking. Returns the container the tests run in and its volume.
    ///
    /// The program goes in through the build container because only a container that mounts the volume writable
    /// can put it there, and the run container must not: a program directory mounted read-only is the one place
    /// where a test cannot even change its program's mode (Landlock, which seals Python's single container, does
    /// not cover chmod).
    async fn load(
        &self,
        program: &[Entry],
        images: &Images,
        limits: Limits,
    ) -> Result<(Session, Arc<ProgramVolume>), RuntimeError> {
        let taking = Instant::now();
        let mut pair = self.pool.take(images, limits.memory.bytes()).await?;
        self.observe(Phase::Create, taking);
        let transferring = Instant::now();
        pair.builder.restore(PROGRAM_DIR, program).await?;
        let limit = u32::try_from(self.settings.artifact_limit).unwrap_or(u32::MAX);
        match pair.builder.gather(PROGRAM_DIR, limit).await? {
            Ok(gathered) if same_tree(&gathered, program) => {}
            Ok(_) => {
                return Err(SandboxFault::ProgramChanged.into());
            }
            Err(errno) => {
                return Err(SandboxFault::ProgramNotPut(errno).into());
            }
        }
        self.observe(Phase::Transfer, transferring);
        let bytes = tree_bytes(program);
        Box::pin(self.tests_container(pair, None, bytes, images, limits)).await
    }

    /// The artifact cache's key for a build, or `None` when the cache is off or the build image is not present
    /// (the build then fails naming it).
    async fn cache_key(&self, plan: &BuildPlan) -> Result<Option<Key>, RuntimeError> {
        if self.artifacts.is_none() {
            return Ok(None);
        }
        let Some(image_id) = self.image_id(&plan.image).await? else {
            return Ok(None);
        };
        Ok(Some(Key::of(
            plan.language,
            &image_id,
            &plan.command,
            &plan.env,
            &plan.sources,
        )))
    }

    async fn image_id(&self, image: &str) -> Result<Option<String>, RuntimeError> {
        if let Some((id, looked_up)) = lock(&self.image_ids).get(image)
            && looked_up.elapsed() < IMAGE_ID_TTL
        {
            return Ok(Some(id.clone()));
        }
        let id = self.engine.image_id(image).await?;
        if let Some(id) = &id {
            lock(&self.image_ids).insert(image.to_owned(), (id.clone(), Instant::now()));
        }
        Ok(id)
    }

    /// Runs one test of a built script (or a checker program on one test's files) in its run container, from a
    /// wiped sandbox.
    ///
    /// # Errors
    /// [`RuntimeError`] when Docker fails, the run image cannot execute the program, or the supervisor vanished.
    pub async fn run(
        &self,
        workspace: &Program,
        feed: Feed<'_>,
        own_heap: Option<OwnHeap>,
        cancel: &CancellationToken,
    ) -> Result<Execution, RuntimeError> {
        if run_memory(workspace.limits, workspace.program_bytes).is_none() {
            // The program's own files take the memory limit: it cannot run within it.
            return outcome::execution(program_too_large_for_memory(), self.settings.output_limit, None)
                .map_err(|NoReport| SandboxFault::NoReport("test").into());
        }
        let mut slot = workspace.sandbox.lock().await;
        let (session, _) = match slot.take() {
            Some((session, volume)) if !session.is_broken() => slot.insert((session, volume)),
            broken => slot.insert(self.replace(workspace, broken).await?),
        };

        // With `io.input_file` the input is a file of the sandbox's user in the working directory, put there after
        // the wipe, and stdin is empty; so are a checker's three files, read-only, in its `/tmp`.
        let transferring = Instant::now();
        let file = |path, mode, contents| File {
            path,
            mode,
            mtime: unix_now(),
            contents,
        };
        let mut argv = std::borrow::Cow::Borrowed(workspace.run.command.as_slice());
        let (files, stdin): (Vec<File<'_>>, &[u8]) = match (feed, &workspace.run.input_file) {
            (Feed::Input(input), Some(path)) => (vec![file(path, 0o644, input)], b""),
            (Feed::Input(input), None) => (Vec::new(), input),
            (Feed::Check(check), _) => {
                argv.to_mut().extend(CHECK_FILES.iter().map(|&path| path.to_owned()));
                let contents = [check.input, check.output, check.answer];
                let files = CHECK_FILES
                    .iter()
                    .zip(contents)
                    .map(|(&path, contents)| file(path, 0o444, contents));
                (files.collect(), b"")
            }
        };
        session.reset(&files).await?;
        self.observe(Phase::Transfer, transferring);
        let limit = workspace.limits.time.as_duration();
        let request = Exec {
            limit_ms: millis(limit),
            output_limit: u32::try_from(self.settings.output_limit).unwrap_or(u32::MAX),
            workdir: &workspace.run.workdir,
            argv: &argv,
            env: &workspace.run.env,
            stdin,
            seal: session.seal_tests,
            strict: self.settings.seccomp == Seccomp::Strict,
            cpu_limit_ms: workspace.limits.cpu_time.map_or(0, |cpu| millis(cpu.as_duration())),
            output_file: workspace.run.output_file.as_deref(),
        };
        let sealed = session.seal_tests;
        let (started, memory) = (Instant::now(), session.memory);
        let observed = match session.exec(&request, limit + BACKSTOP, cancel).await? {
            Waited::Served(served) => {
                if let Err(error) = check_served(&served.report, &workspace.run.image, &workspace.run.command) {
                    slot.take();
                    return Err(error);
                }
                if let Some(observer) = &self.observer {
                    observer.observe(Phase::Run, Duration::from_nanos(served.report.wall_ns));
                }
                observed(*served.report, served.stdout, served.stderr)
            }
            Waited::Backstop => {
                slot.take();
                backstopped(limit)
            }
            Waited::OutOfMemory => {
                slot.take();
                out_of_memory(started.elapsed(), memory)
            }
        };
        let mut execution = outcome::execution(observed, self.settings.output_limit, own_heap)
            .map_err(|NoReport| RuntimeError::from(SandboxFault::NoReport("test")))?;
        if !sealed {
            // A separate run container's limit left the program's files out (see run_memory): its peak counts them.
            execution.memory_peak = execution.memory_peak.map(|peak| peak + workspace.program_bytes);
        }
        Ok(execution)
    }
}

/// Whether a failed build is the source's doing, so that the same source always fails the same way: the compiler
/// ran to its end and refused it. Limits, signals and floods of output can depend on the load, and are not cached.
fn refused_by_the_compiler(observed: &Observed) -> bool {
    observed.reported
        && !observed.timed_out
        && !observed.oom_killed
        && !observed.output_exceeded
        && observed.exit_code.is_some_and(|code| code != 0)
}

/// Whether a tree gathered back is the one put in: the same paths, kinds and contents (the owner may have gained
/// write access to directories, which a read-only mount or the seal makes moot).
fn same_tree(gathered: &[Entry], put: &[Entry]) -> bool {
    fn key(entry: &Entry) -> (&str, Option<&[u8]>) {
        (entry.path.as_str(), entry.contents.as_deref())
    }
    let mut gathered: Vec<_> = gathered.iter().map(key).collect();
    let mut put: Vec<_> = put.iter().map(key).collect();
    gathered.sort();
    put.sort();
    gathered == put
}

impl Programs {
    /// A sandbox for the remaining tests of a script whose container broke (killed at the backstop, or by the
    /// kernel for memory): a new one loaded with the program, since a program volume is a tmpfs that is gone once
    /// no container mounts it; without the program, a run container on the old volume, which works only while
    /// another container still mounts it.
    async fn replace(
        &self,
        workspace: &Program,
        broken: Option<(Session, Arc<ProgramVolume>)>,
    ) -> Result<(Session, Arc<ProgramVolume>), RuntimeError> {
        if let Some(program) = workspace.copy.tree().await {
            drop(broken);
            return self.load(&program, &workspace.images, workspace.limits).await;
        }
        let Some((session, volume)) = broken else {
            return Err(SandboxFault::ProgramLost.into());
        };
        let taking = Instant::now();
        let replacement = self
            .pool
            .start_runner(
                &workspace.run.image,
                &volume,
                run_memory(workspace.limits, workspace.program_bytes).unwrap_or(MIN_RUN_MEMORY),
            )
            .await;
        drop(session);
        self.observe(Phase::Create, taking);
        Ok((replacement?, volume))
    }
}

/// The program of a script whose tests are about to run in `session`, with the runner's copy of it kept in `spill`.
fn ready(
    images: Images,
    run: RunPlan,
    limits: Limits,
    program: Option<Arc<[Entry]>>,
    spill: &Path,
    session: Session,
    volume: Arc<ProgramVolume>,
) -> Built {
    Built::Ready(Box::new(Program {
        images,
        run,
        limits,
        program_bytes: program.as_deref().map_or(0, tree_bytes),
        copy: ProgramCopy::of(program, spill),
        sandbox: tokio::sync::Mutex::new(Some((session, volume))),
    }))
}

/// Makes `dir` empty and the runner's alone (mode 0700).
fn fresh_directory(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    match std::fs::remove_dir_all(dir) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Programs larger than this are kept on disk while their script runs rather than in the runner's memory.
const KEPT_IN_MEMORY: u64 = 1024 * 1024;

/// The runner's copy of a built program for the life of its script: a program volume is a tmpfs, gone with the
/// last container that mounts it, so a sandbox that dies mid-script is replaced by a new one loaded from this copy.
/// A program of up to [`KEPT_IN_MEMORY`] is kept in memory; a larger one (up to `RUNNER_ARTIFACT_LIMIT`, 64 MiB)
/// in a file of the runner's own, so that the runner's memory per script in flight stays small.
enum ProgramCopy {
    /// The program could not be gathered (a tree of more than plain files and directories).
    None,
    /// A small program's tree.
    Memory(Arc<[Entry]>),
    /// A large program's tree, in a file removed when the copy is dropped.
    Disk(PathBuf),
}

impl ProgramCopy {
    fn of(program: Option<Arc<[Entry]>>, spill: &Path) -> Self {
        let Some(program) = program else {
            return ProgramCopy::None;
        };
        if tree_bytes(&program) <= KEPT_IN_MEMORY {
            return ProgramCopy::Memory(program);
        }
        static SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let path = spill.join(format!(
            "{}",
            SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let bytes = artifacts::encode(&Cached::Program(program.to_vec()));
        match std::fs::write(&path, bytes) {
            Ok(()) => ProgramCopy::Disk(path),
            Err(error) => {
                tracing::warn!(%error, path = %path.display(), "cannot keep a built program on disk; kept in memory");
                ProgramCopy::Memory(program)
            }
        }
    }

    /// The program's tree, read back from disk when it is kept there; `None` when there is no copy.
    async fn tree(&self) -> Option<Arc<[Entry]>> {
        match self {
            ProgramCopy::None => None,
            ProgramCopy::Memory(program) => Some(Arc::clone(program)),
            ProgramCopy::Disk(path) => match tokio::fs::read(path).await.ok().and_then(|b| artifacts::decode(&b)) {
                Some(Cached::Program(entries)) => Some(entries.into()),
                _ => {
                    tracing::warn!(path = %path.display(), "a built program kept on disk is gone or damaged");
                    None
                }
            },
        }
    }
}

impl Drop for ProgramCopy {
    fn drop(&mut self) {
        if let ProgramCopy::Disk(path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The bytes of a program's files.
fn tree_bytes(entries: &[Entry]) -> u64 {
    entries
        .iter()
        .filter_map(|entry| entry.contents.as_ref())
        .map(|contents| contents.len() as u64)
        .sum()
}

/// The smallest memory limit Docker accepts for a container.
const MIN_RUN_MEMORY: u64 = 6 * 1024 * 1024;

/// The memory limit of a run container for a program of `program_bytes` under `limits`, or `None` when the program's
/// own files leave less than Docker's smallest limit.
///
/// The program's files count against its memory. In a container that builds and then runs the tests sealed, the
/// program volume's pages were written by that container, so the kernel charges them to it already. A separate run
/// container only maps them, charged to the build container that is gone: its read-only data (a table of 60 MiB
/// compiled into a binary) would cost the test nothing. So the run container's limit is the script's less the
/// program's bytes, and each test's memory peak counts them, the same on either side.
pub fn run_memory(limits: Limits, program_bytes: u64) -> Option<u64> {
    let left = limits.memory.bytes().checked_sub(program_bytes)?;
    (left >= MIN_RUN_MEMORY).then_some(left)
}

/// A report that says nothing ran: the sandbox could not be prepared, or the image cannot execute the command.
fn check_served(report: &ServedReport, image: &str, command: &[String]) -> Result<(), RuntimeError> {
    if report.setup_errno != 0 {
        return Err(SandboxFault::NotReset(report.setup_errno).into());
    }
    if report.exec_errno != 0 {
        let command = command.first().cloned().unwrap_or_default();
        return Err(fault::unfit(
            image,
            ImageUnfit::CannotExecute {
                command,
                errno: report.exec_errno,
            },
        ));
    }
    Ok(())
}

fn observed(report: ServedReport, stdout: Vec<u8>, stderr: Vec<u8>) -> Observed {
    Observed {
        reported: true,
        exit_code: report.exit_code,
        signal: report.signal,
        wall_time: Duration::from_nanos(report.wall_ns),
        cpu_time: report.cpu_ns.map(Duration::from_nanos),
        memory_peak: report.memory_peak,
        timed_out: report.timed_out,
        killed_by_runner: false,
        oom_killed: report.oom_kills.unwrap_or(0) > 0,
        output_exceeded: report.output_exceeded,
        cpu_exceeded: report.cpu_exceeded,
        output_file_missing: report.output_file.as_deref() == Some("missing"),
        pressure_at_timeout: report.at_timeout.pressure(),
        stdout,
        stderr,
    }
}

/// A run that could not start: the program's files alone take its memory limit.
fn program_too_large_for_memory() -> Observed {
    Observed {
        oom_killed: true,
        killed_by_runner: true,
        ..Observed::default()
    }
}

/// A run the runner had to kill at its backstop: the supervisor could not, so it counts as out of time.
fn backstopped(limit: Duration) -> Observed {
    Observed {
        wall_time: limit + BACKSTOP,
        timed_out: true,
        killed_by_runner: true,
        ..Observed::default()
    }
}

/// A run whose container the kernel killed for memory, supervisor included (under gVisor, any run over its limit):
/// the program did not fit. Its peak was the container's `limit`; its wall time is the runner's own measure, and its
/// CPU time is lost with the supervisor.
fn out_of_memory(wall_time: Duration, limit: u64) -> Observed {
    Observed {
        wall_time,
        memory_peak: Some(limit),
        oom_killed: true,
        killed_by_runner: true,
        ..Observed::default()
    }
}

fn millis(duration: Duration) -> u32 {
    u32::try_from(duration.as_millis()).unwrap_or(u32::MAX)
}
