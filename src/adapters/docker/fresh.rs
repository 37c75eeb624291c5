//! The fresh sandbox path (`RUNNER_SANDBOX=fresh`): a build container per script and a fresh run container per
//! test, with files moved through Docker's archive API. It was the only path before warm sandboxes and is kept so
//! that both can be compared and tested side by side.
//!
//! Per script:
//! 1. Two Docker volumes: `build` (the compiler's working directory) and `box` (the program, read-only to tests).
//! 2. A build container (build image, compile limits) gets the source and the supervisor through the archive API,
//!    runs the build under the supervisor, and is read back through the archive API: the artifact leaves the
//!    container that way, never through a host path. The artifact is re-rooted, checked against the size limit
//!    and put into `box` together with a fresh supervisor. Then the build container and volume go.
//! 3. Each test runs in a fresh run container (run image, the script's limits) that mounts `box` read-only, with
//!    the supervisor as PID 1, the test input on stdin, stdout and stderr read live under a cap. The container is
//!    removed as soon as the verdict's facts are read.
//! 4. Releasing the script removes `box`.
//!
//! Every container and volume is labelled with the runner instance, the script, its role and an expiry time, so
//! that the [`super::reaper`] can remove whatever a crashed runner left behind.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bollard::models::ContainerState;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use super::archive::{self, FileEntry};
use super::capture::{Capture, Flow};
use super::engine::{Download, Engine};
use super::guard::{self, GUARD_BINARY, GUARD_FILE, GuardReport, REPORT_ALLOWANCE};
use super::hardening::{ContainerSpec, VolumeMount, hardened};
use super::labels;
use super::languages::PROGRAM_DIR;
use super::outcome::{self, CompileLimits, NoReport, Observed};
use super::sandbox::{BuildPlan, Phase, PhaseObserver, RunPlan, SandboxSettings};
use crate::domain::{Execution, Limits, ScriptId};
use crate::ports::{BuildFailure, RuntimeError};

/// Where the build volume is mounted in a build container.
const BUILD_DIR: &str = "/build";
/// The compiler's working directory, inside the build volume: the only place the sandbox user can write.
const BUILD_WORK: &str = "/build/work";
/// How long past its own limit the runner waits before it kills a container itself. The supervisor inside kills
/// at the limit; this only covers a supervisor that could not.
const BACKSTOP: Duration = Duration::from_secs(2);
/// How long a killed or finished container may take to report that it stopped.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// A built script: its program volume and how to run it.
#[derive(Debug)]
pub struct FreshWorkspace {
    script: ScriptId,
    program_volume: String,
    run: RunPlan,
    limits: Limits,
}

#[derive(Debug)]
pub enum FreshBuilt {
    Ready(FreshWorkspace),
    Failed(BuildFailure),
}

pub struct FreshSandbox {
    engine: Engine,
    settings: SandboxSettings,
    /// Numbers containers and volumes, so their names are unique within this instance.
    sequence: AtomicU64,
    /// Told how long each phase took; the phase benchmark listens here.
    observer: Option<Arc<dyn PhaseObserver>>,
}

/// Why the runner killed a container itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kill {
    Deadline,
    Output,
}

/// What one supervised container left behind.
struct Supervised {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    report: Option<GuardReport>,
    killed: Option<Kill>,
    state: ContainerState,
    /// The runner's own measure of the run, used only when the container's timestamps are missing.
    elapsed: Duration,
}

impl Supervised {
    fn oom_killed(&self) -> bool {
        self.state.oom_killed.unwrap_or(false) || self.report.as_ref().and_then(|r| r.oom_kills).unwrap_or(0) > 0
    }

    /// What this run tells the verdict rules.
    fn into_observed(self) -> Observed {
        let wall_time = self.wall_time();
        let oom_killed = self.oom_killed();
        let report = self.report.as_ref();
        Observed {
            reported: report.is_some(),
            exit_code: report.and_then(|r| r.exit_code),
            signal: report.and_then(|r| r.signal),
            wall_time,
            cpu_time: report.and_then(|r| r.cpu_ns).map(Duration::from_nanos),
            memory_peak: report.and_then(|r| r.memory_peak),
            timed_out: self.killed == Some(Kill::Deadline) || report.is_some_and(|r| r.timed_out),
            killed_by_runner: self.killed.is_some(),
            oom_killed,
            output_exceeded: self.killed == Some(Kill::Output),
            pressure_at_timeout: report.and_then(|r| r.at_timeout.pressure()),
            stdout: self.stdout,
            stderr: self.stderr,
        }
    }

    /// The program's run time: the supervisor's measure, else the container's start and finish times.
    fn wall_time(&self) -> Duration {
        if let Some(report) = &self.report {
            return Duration::from_nanos(report.wall_ns);
        }
        let parse = |stamp: &Option<String>| stamp.as_deref().and_then(|s| humantime::parse_rfc3339(s).ok());
        match (parse(&self.state.started_at), parse(&self.state.finished_at)) {
            (Some(started), Some(finished)) => finished.duration_since(started).unwrap_or(self.elapsed),
            _ => self.elapsed,
        }
    }
}

impl FreshSandbox {
    pub fn new(engine: Engine, settings: SandboxSettings) -> Self {
        Self {
            engine,
            settings,
            sequence: AtomicU64::new(0),
            observer: None,
        }
    }

    /// Reports every phase's duration to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn PhaseObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    fn observe(&self, phase: Phase, since: Instant) {
        self.record(phase, since.elapsed());
    }

    fn record(&self, phase: Phase, duration: Duration) {
        if let Some(observer) = &self.observer {
            observer.observe(phase, duration);
        }
    }

    pub fn settings(&self) -> &SandboxSettings {
        &self.settings
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    fn name(&self, role: &str) -> String {
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed);
        format!("scrc-{}-{sequence}-{role}", self.settings.instance)
    }

    fn labels(&self, script: &ScriptId, role: &str, lifetime: Duration) -> HashMap<String, String> {
        labels::for_resource(&self.settings.instance, script, role, SystemTime::now() + lifetime)
    }

    /// Builds a script into a workspace, or reports why it did not build.
    ///
    /// # Errors
    /// [`RuntimeError`] when Docker fails or an image is missing; every resource created is removed first.
    pub async fn build(
        &self,
        script: &ScriptId,
        source: &str,
        plan: BuildPlan,
        run: RunPlan,
        limits: Limits,
        cancel: &CancellationToken,
    ) -> Result<FreshBuilt, RuntimeError> {
        let build_volume = self.name("build");
        let program_volume = self.name("box");
        let build_lifetime = self.settings.compile_time_limit + Duration::from_secs(120);
        let creating = Instant::now();
        self.engine
            .create_volume(&build_volume, self.labels(script, "build", build_lifetime))
            .await?;
        let created = self
            .engine
            .create_volume(
                &program_volume,
                self.labels(script, "box", self.settings.script_deadline),
            )
            .await;
        self.observe(Phase::Create, creating);
        let built = match created {
            Ok(()) => {
                self.build_into(script, source, &plan, &build_volume, &program_volume, cancel)
                    .await
            }
            Err(error) => Err(error.into()),
        };
        let removing = Instant::now();
        self.remove_volume(&build_volume).await;
        self.observe(Phase::Remove, removing);
        match built {
            Ok(None) => Ok(FreshBuilt::Ready(FreshWorkspace {
                script: script.clone(),
                program_volume,
                run,
                limits,
            })),
            Ok(Some(failure)) => {
                self.remove_volume(&program_volume).await;
                Ok(FreshBuilt::Failed(failure))
            }
            Err(error) => {
                self.remove_volume(&program_volume).await;
                Err(error)
            }
        }
    }

    /// Runs the build in its container and fills the program volume. `Some` is a build failure.
    async fn build_into(
        &self,
        script: &ScriptId,
        source: &str,
        plan: &BuildPlan,
        build_volume: &str,
        program_volume: &str,
        cancel: &CancellationToken,
    ) -> Result<Option<BuildFailure>, RuntimeError> {
        let limit = self.settings.compile_time_limit;
        let mut command = vec![limit.as_millis().to_string()];
        command.extend(plan.command.iter().cloned());
        let spec = ContainerSpec {
            image: plan.image.clone(),
            entrypoint: format!("{BUILD_DIR}/{GUARD_FILE}"),
            command,
            env: plan.env.clone(),
            workdir: BUILD_WORK.into(),
            volumes: vec![
                VolumeMount {
                    volume: build_volume.into(),
                    target: BUILD_DIR.into(),
                    read_only: false,
                },
                VolumeMount {
                    volume: program_volume.into(),
                    target: PROGRAM_DIR.into(),
                    read_only: false,
                },
            ],
            memory: self.settings.compile_memory_limit.bytes(),
            tmpfs_bytes: self.settings.build_tmpfs_bytes,
            labels: self.labels(script, "build", limit + Duration::from_secs(120)),
        };
        let creating = Instant::now();
        let container = self
            .engine
            .create_container(&self.name("build"), hardened(spec, &self.settings.hardening))
            .await?;
        self.observe(Phase::Create, creating);
        let result = self.build_in(&container, source, plan, limit, cancel).await;
        self.remove_container(&container).await;
        result
    }

    async fn build_in(
        &self,
        container: &str,
        source: &str,
        plan: &BuildPlan,
        limit: Duration,
        cancel: &CancellationToken,
    ) -> Result<Option<BuildFailure>, RuntimeError> {
        let source_path = format!("work/{}", plan.source_file);
        let inputs = archive::pack(
            &[("work", 0o777)],
            &[
                FileEntry {
                    path: GUARD_FILE,
                    mode: 0o555,
                    contents: GUARD_BINARY,
                },
                FileEntry {
                    path: &source_path,
                    mode: 0o444,
                    contents: source.as_bytes(),
                },
            ],
        );
        let transferring = Instant::now();
        self.engine.upload(container, BUILD_DIR, inputs).await?;
        self.observe(Phase::Transfer, transferring);

        let nonce = guard::nonce();
        let supervised = self
            .supervise(
                container,
                format!("{nonce}\n").into_bytes(),
                &nonce,
                limit + BACKSTOP,
                cancel,
            )
            .await?;
        if let Some(report) = &supervised.report {
            self.record(Phase::Compile, Duration::from_nanos(report.wall_ns));
        }
        if let Some(report) = &supervised.report
            && report.exec_errno != 0
        {
            return Err(RuntimeError::ImageMissing {
                image: plan.image.clone(),
                detail: format!("it cannot execute {:?} (errno {})", plan.command[0], report.exec_errno),
            });
        }
        let exit_code = supervised.state.exit_code;
        let observed = supervised.into_observed();
        let limits = CompileLimits {
            time: limit,
            memory: self.settings.compile_memory_limit.bytes(),
        };
        if let Some(missing) = outcome::toolchain_missing(&observed, &plan.image) {
            return Err(missing);
        }
        let fail = |reason: String| {
            Ok(Some(BuildFailure {
                diagnostics: outcome::diagnostics(&observed),
                reason,
            }))
        };
        match outcome::build_failure(&observed, limits) {
            Ok(None) => {}
            Ok(Some(reason)) => return fail(reason),
            Err(NoReport) => {
                return Err(RuntimeError::Sandbox(format!(
                    "the build supervisor exited with code {} and no report",
                    exit_code.unwrap_or(-1)
                )));
            }
        }

        let transferring = Instant::now();
        let artifact = match self
            .engine
            .download(container, BUILD_WORK, self.settings.artifact_limit)
            .await?
        {
            Download::Complete(tar) => tar,
            Download::TooLarge => {
                return fail(format!(
                    "program too large: the build produced more than the artifact limit of {} MiB",
                    self.settings.artifact_limit / (1024 * 1024)
                ));
            }
        };
        let program =
            archive::reroot_artifact(&artifact, GUARD_FILE).map_err(|e| RuntimeError::Sandbox(e.to_string()))?;
        self.engine.upload(container, PROGRAM_DIR, program).await?;
        let supervisor = archive::pack(
            &[],
            &[FileEntry {
                path: GUARD_FILE,
                mode: 0o555,
                contents: GUARD_BINARY,
            }],
        );
        self.engine.upload(container, PROGRAM_DIR, supervisor).await?;
        self.observe(Phase::Transfer, transferring);
        Ok(None)
    }

    /// Runs a built program once with `input` on stdin.
    ///
    /// # Errors
    /// [`RuntimeError`] when Docker fails, the run image cannot execute the program, or the supervisor vanished.
    pub async fn run(
        &self,
        workspace: &FreshWorkspace,
        input: &[u8],
        reports_out_of_memory: impl Fn(&[u8]) -> bool,
        cancel: &CancellationToken,
    ) -> Result<Execution, RuntimeError> {
        let limit = workspace.limits.time.as_duration();
        let mut command = vec![limit.as_millis().to_string()];
        command.extend(workspace.run.command.iter().cloned());
        let spec = ContainerSpec {
            image: workspace.run.image.clone(),
            entrypoint: format!("{PROGRAM_DIR}/{GUARD_FILE}"),
            command,
            env: workspace.run.env.clone(),
            workdir: workspace.run.workdir.clone(),
            volumes: vec![VolumeMount {
                volume: workspace.program_volume.clone(),
                target: PROGRAM_DIR.into(),
                read_only: true,
            }],
            memory: workspace.limits.memory.bytes(),
            tmpfs_bytes: self.settings.run_tmpfs_bytes,
            labels: self.labels(&workspace.script, "run", limit + Duration::from_secs(120)),
        };
        let creating = Instant::now();
        let container = self
            .engine
            .create_container(&self.name("run"), hardened(spec, &self.settings.hardening))
            .await?;
        self.observe(Phase::Create, creating);
        let nonce = guard::nonce();
        let mut stdin = Vec::with_capacity(nonce.len() + 1 + input.len());
        stdin.extend_from_slice(nonce.as_bytes());
        stdin.push(b'\n');
        stdin.extend_from_slice(input);
        let supervised = self
            .supervise(&container, stdin, &nonce, limit + BACKSTOP, cancel)
            .await;
        self.remove_container(&container).await;
        let supervised = supervised?;
        if let Some(report) = &supervised.report {
            self.record(Phase::Run, Duration::from_nanos(report.wall_ns));
        }
        if let Some(report) = &supervised.report
            && report.exec_errno != 0
        {
            return Err(RuntimeError::ImageMissing {
                image: workspace.run.image.clone(),
                detail: format!(
                    "it cannot execute {:?} (errno {})",
                    workspace.run.command.first().map_or("", String::as_str),
                    report.exec_errno
                ),
            });
        }
        let exit_code = supervised.state.exit_code;
        outcome::execution(
            supervised.into_observed(),
            self.settings.output_limit,
            reports_out_of_memory,
        )
        .map_err(|NoReport| {
            RuntimeError::Sandbox(format!(
                "the sandbox supervisor exited with code {} and no report",
                exit_code.unwrap_or(-1)
            ))
        })
    }

    /// Attaches to a created container, starts it, feeds `stdin`, reads its output under the caps, and kills it at
    /// `deadline` or at the first byte past a cap. Returns once the container has stopped; removing it is the
    /// caller's job. On cancellation the container is killed and `Cancelled` returned.
    async fn supervise(
        &self,
        container: &str,
        stdin: Vec<u8>,
        nonce: &str,
        deadline: Duration,
        cancel: &CancellationToken,
    ) -> Result<Supervised, RuntimeError> {
        let starting = Instant::now();
        let attached = self.engine.attach(container).await?;
        let mut output = attached.output;
        let mut input = attached.input;
        self.engine.start(container).await?;
        self.observe(Phase::Start, starting);
        let started = Instant::now();
        // The writer runs apart: a program that never reads its stdin must not stall the runner.
        let writer = tokio::spawn(async move {
            let _ = input.write_all(&stdin).await;
            let _ = input.shutdown().await;
        });
        let limit = self.settings.output_limit;
        let mut capture = Capture::new(limit, limit + REPORT_ALLOWANCE);
        let backstop = tokio::time::sleep(deadline);
        tokio::pin!(backstop);
        let killed = loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => {
                    writer.abort();
                    let _ = self.engine.kill(container).await;
                    return Err(RuntimeError::Cancelled);
                }
                () = &mut backstop => break Some(Kill::Deadline),
                chunk = output.next() => match chunk {
                    Some(Ok(chunk)) => {
                        if capture.push(chunk) == Flow::Exceeded {
                            break Some(Kill::Output);
                        }
                    }
                    Some(Err(error)) => {
                        writer.abort();
                        let _ = self.engine.kill(container).await;
                        return Err(RuntimeError::Unavailable(format!("reading container output: {error}")));
                    }
                    None => break None,
                },
            }
        };
        writer.abort();
        drop(output);
        let stopping = Instant::now();
        if killed.is_some() {
            self.engine.kill(container).await?;
        }
        self.engine.wait_stopped(container, STOP_TIMEOUT).await?;
        let state = self.engine.state(container).await?;
        self.observe(Phase::Stop, stopping);
        let elapsed = started.elapsed();
        let Capture { stdout, mut stderr, .. } = capture;
        let report = guard::take_report(&mut stderr, nonce);
        Ok(Supervised {
            stdout,
            stderr,
            report,
            killed,
            state,
            elapsed,
        })
    }

    /// Frees a built script.
    pub async fn release(&self, workspace: FreshWorkspace) {
        self.remove_volume(&workspace.program_volume).await;
    }

    async fn remove_container(&self, container: &str) {
        let removing = Instant::now();
        if let Err(error) = self.engine.remove_container(container).await {
            tracing::warn!(%error, container, "cannot remove a sandbox container; the reaper will retry");
        }
        self.observe(Phase::Remove, removing);
    }

    async fn remove_volume(&self, volume: &str) {
        if let Err(error) = self.engine.remove_volume(volume).await {
            tracing::warn!(%error, volume, "cannot remove a sandbox volume; the reaper will retry");
        }
    }
}
