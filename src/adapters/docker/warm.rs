//! The warm sandbox path (`RUNNER_SANDBOX=warm`, the default): a script is built in one pre-started build container
//! and all its tests run, one after another, in one pre-started run container, both taken from the [`Pool`] as a
//! pair sharing the script's own program volume.
//!
//! Nothing moves through Docker's archive API on the way: the source goes in over the build supervisor's attached
//! stream, the compiler writes the program into the volume, and the run container sees it there read-only, so the
//! artifact never leaves the engine and no test can change it. Before every test the supervisor kills whatever the
//! previous test left and empties every writable directory, so each test starts from the built program, a clean
//! `/tmp` and `/dev/shm`, and no process of an earlier test; its time, CPU, memory peak and OOM kills are measured
//! for it alone (see `guard/scrc-guard.c`).
//!
//! A run container whose supervisor stopped answering is dropped (and removed); the next test starts a new one on
//! the same volume.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::languages::PROGRAM_DIR;
use super::outcome::{self, CompileLimits, NoReport, Observed, Pressure};
use super::pool::{Images, Pool};
use super::protocol::{Exec, File, ServedReport};
use super::sandbox::{BuildPlan, Phase, PhaseObserver, RunPlan, SandboxSettings};
use super::server::{ProgramVolume, Server, Waited};
use crate::domain::{Execution, Limits};
use crate::ports::{BuildFailure, RuntimeError};

/// How long past its own limit the runner waits for a report before it kills the container itself.
const BACKSTOP: Duration = Duration::from_secs(2);

pub struct WarmSandbox {
    pool: Pool,
    settings: SandboxSettings,
    observer: Option<Arc<dyn PhaseObserver>>,
}

/// A built script: the run container its tests use, and the volume holding its program.
pub struct WarmWorkspace {
    volume: Arc<ProgramVolume>,
    run: RunPlan,
    limits: Limits,
    /// The run container, taken while the build ran; replaced when it breaks.
    server: tokio::sync::Mutex<Option<Server>>,
}

impl std::fmt::Debug for WarmWorkspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WarmWorkspace")
            .field("volume", &self.volume.name)
            .field("run", &self.run)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

pub enum WarmBuilt {
    Ready(Box<WarmWorkspace>),
    Failed(BuildFailure),
}

impl WarmSandbox {
    pub fn new(pool: Pool, settings: SandboxSettings, observer: Option<Arc<dyn PhaseObserver>>) -> Self {
        Self {
            pool,
            settings,
            observer,
        }
    }

    /// Starts pairs for these images ahead of their first script.
    pub fn prime(&self, images: impl IntoIterator<Item = Images>) {
        self.pool.prime(images);
    }

    /// Containers and volumes started and waiting in the pool.
    pub fn idle(&self) -> (usize, usize) {
        self.pool.idle()
    }

    fn observe(&self, phase: Phase, since: Instant) {
        if let Some(observer) = &self.observer {
            observer.observe(phase, since.elapsed());
        }
    }

    /// Builds a script in a warm build container while its run container is taken.
    ///
    /// # Errors
    /// [`RuntimeError`] when Docker fails or an image is missing; the containers are removed.
    pub async fn build(
        &self,
        source: &str,
        plan: BuildPlan,
        run: RunPlan,
        limits: Limits,
        cancel: &CancellationToken,
    ) -> Result<WarmBuilt, RuntimeError> {
        let taking = Instant::now();
        let images = Images {
            build: plan.image.clone(),
            run: run.image.clone(),
        };
        let pair = self.pool.take(&images, limits.memory.bytes()).await?;
        let (mut builder, runner, volume) = (pair.builder, pair.runner, pair.volume);
        self.observe(Phase::Create, taking);

        let transferring = Instant::now();
        let path = format!("{PROGRAM_DIR}/{}", plan.source_file);
        let source = File {
            path: &path,
            mode: 0o444,
            mtime: unix_now(),
            contents: source.as_bytes(),
        };
        builder.reset(&[source]).await?;
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
        };
        let observed = match builder.exec(&request, limit + BACKSTOP, cancel).await? {
            Waited::Served(served) => {
                check_served(&served.report, &plan.image, &plan.command)?;
                if let Some(observer) = &self.observer {
                    observer.observe(Phase::Compile, Duration::from_nanos(served.report.wall_ns));
                }
                observed(served.report, served.stdout, served.stderr)
            }
            Waited::Backstop => backstopped(limit),
            Waited::OutOfMemory => out_of_memory(),
        };
        let limits_of_build = CompileLimits {
            time: limit,
            memory: self.settings.compile_memory_limit,
        };
        match outcome::build_failure(&observed, limits_of_build) {
            Ok(None) => {}
            Ok(Some(reason)) => {
                return Ok(WarmBuilt::Failed(BuildFailure {
                    diagnostics: outcome::diagnostics(&observed),
                    reason,
                }));
            }
            Err(NoReport) => return Err(RuntimeError::Sandbox("the build supervisor sent no report".into())),
        }

        // The tests run in the run container, or sealed in the builder, under the script's own memory limit.
        let runner = match runner {
            Some(runner) => runner,
            None => {
                builder.keep(PROGRAM_DIR).await?;
                match builder.limit_memory(limits.memory.bytes()).await {
                    Ok(()) => builder,
                    // The kernel could not bring the build's memory under the script's limit: the tests get a
                    // run container of their own on the same volume instead.
                    Err(error) => {
                        tracing::warn!(%error, "cannot lower a warm sandbox to the script's memory limit");
                        drop(builder);
                        self.pool
                            .replace_runner(&run.image, &volume, limits.memory.bytes())
                            .await?
                    }
                }
            }
        };
        Ok(WarmBuilt::Ready(Box::new(WarmWorkspace {
            volume,
            run,
            limits,
            server: tokio::sync::Mutex::new(Some(runner)),
        })))
    }

    /// Runs one test of a built script in its run container, from a wiped sandbox.
    ///
    /// # Errors
    /// [`RuntimeError`] when Docker fails, the run image cannot execute the program, or the supervisor vanished.
    pub async fn run(
        &self,
        workspace: &WarmWorkspace,
        input: &[u8],
        reports_out_of_memory: impl Fn(&[u8]) -> bool,
        cancel: &CancellationToken,
    ) -> Result<Execution, RuntimeError> {
        let mut slot = workspace.server.lock().await;
        let server = match slot.take() {
            Some(server) if !server.is_broken() => server,
            _ => {
                let taking = Instant::now();
                let server = self
                    .pool
                    .replace_runner(&workspace.run.image, &workspace.volume, workspace.limits.memory.bytes())
                    .await?;
                self.observe(Phase::Create, taking);
                server
            }
        };
        let server = slot.insert(server);

        let transferring = Instant::now();
        server.reset(&[]).await?;
        self.observe(Phase::Transfer, transferring);
        let limit = workspace.limits.time.as_duration();
        let request = Exec {
            limit_ms: millis(limit),
            output_limit: u32::try_from(self.settings.output_limit).unwrap_or(u32::MAX),
            workdir: &workspace.run.workdir,
            argv: &workspace.run.command,
            env: &workspace.run.env,
            stdin: input,
            seal: server.seal_tests,
        };
        let observed = match server.exec(&request, limit + BACKSTOP, cancel).await? {
            Waited::Served(served) => {
                if let Err(error) = check_served(&served.report, &workspace.run.image, &workspace.run.command) {
                    slot.take();
                    return Err(error);
                }
                if let Some(observer) = &self.observer {
                    observer.observe(Phase::Run, Duration::from_nanos(served.report.wall_ns));
                }
                observed(served.report, served.stdout, served.stderr)
            }
            Waited::Backstop => {
                slot.take();
                backstopped(limit)
            }
            Waited::OutOfMemory => {
                slot.take();
                out_of_memory()
            }
        };
        outcome::execution(observed, self.settings.output_limit, reports_out_of_memory)
            .map_err(|NoReport| RuntimeError::Sandbox("the sandbox supervisor sent no report".into()))
    }
}

/// A report that says nothing ran: the sandbox could not be prepared, or the image cannot execute the command.
fn check_served(report: &ServedReport, image: &str, command: &[String]) -> Result<(), RuntimeError> {
    if report.setup_errno != 0 {
        return Err(RuntimeError::Sandbox(format!(
            "the warm sandbox could not be reset (errno {})",
            report.setup_errno
        )));
    }
    if report.exec_errno != 0 {
        return Err(RuntimeError::ImageMissing {
            image: image.to_owned(),
            detail: format!(
                "it cannot execute {:?} (errno {})",
                command.first().map_or("", String::as_str),
                report.exec_errno
            ),
        });
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
        pressure_at_timeout: Pressure::from_report(
            report.memory_limit,
            report.memory_at_timeout,
            report.refaulted_before_timeout,
        ),
        stdout,
        stderr,
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

/// A run whose container the kernel killed for memory, supervisor included: the program did not fit.
fn out_of_memory() -> Observed {
    Observed {
        oom_killed: true,
        killed_by_runner: true,
        ..Observed::default()
    }
}

fn millis(duration: Duration) -> u32 {
    u32::try_from(duration.as_millis()).unwrap_or(u32::MAX)
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}
