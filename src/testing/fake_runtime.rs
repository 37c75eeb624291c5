//! A runtime that runs no code: it interprets each script's source as a few lines of instructions, so tests and
//! benchmarks can drive the app and the Kafka adapters through any verdict without Docker.
//!
//! One instruction per line:
//!
//! | line | effect |
//! |---|---|
//! | `echo` | prints the test input |
//! | `print <text>` | prints `<text>` and a newline |
//! | `sleep <ms>` | sleeps, honouring cancellation |
//! | `exit <code>` | exits with `<code>` |
//! | `timeout` / `oom` / `flood` | reports the time, memory or output limit hit |
//! | `build-fail <text>` | fails the build with `<text>` as diagnostics |
//! | `build-sleep <ms>` | sleeps during the build |
//! | `flaky <n>` | the first `<n>` run calls of this script fail as infrastructure errors |
//! | `broken` | every runtime call fails as an infrastructure error |
//! | `panic` | the run panics, as a bug in an adapter would |
//! | `warn <text>` | prints `<text>` and a newline on stderr |
//! | `compare` | as a checker: exits 0 when the output is the answer, else 1 with "wrong answer" on stderr |
//!
//! Any other line is ignored, so real programs also "run" (and print nothing).
//!
//! Two switches fail the whole runtime the way the Docker engine fails: [`FakeRuntime::set_engine_down`] makes
//! every call an infrastructure error (a dead engine), and [`FakeRuntime::remove_image`] makes every build of one
//! language fail with [`RuntimeError::ImageMissing`].

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::domain::{Execution, Exit, Language, Limits, Script, ScriptId};
use crate::ports::{BuildFailure, CheckFiles, Preparation, Runtime, RuntimeError};

#[derive(Debug, Default, Clone)]
pub struct FakeRuntime {
    /// The counters, shared by every clone, so that a test keeps a handle while the executor owns the runtime.
    stats: Arc<FakeRuntimeStats>,
    /// Remaining injected failures per script, from `flaky <n>`.
    flaky: Arc<Mutex<HashMap<ScriptId, u32>>>,
    /// Every call fails as an infrastructure error while set, as when the Docker engine is down.
    engine_down: Arc<AtomicBool>,
    /// Languages whose image is missing: their builds fail with [`RuntimeError::ImageMissing`].
    missing_images: Arc<Mutex<HashSet<Language>>>,
}

/// Counters a test can assert on.
#[derive(Debug, Default)]
pub struct FakeRuntimeStats {
    /// Every `prepare` call, whatever came of it.
    pub prepare_calls: AtomicUsize,
    /// Every `probe` call, whatever came of it.
    pub probes: AtomicUsize,
    /// Successful builds.
    pub prepared: AtomicUsize,
    /// Every `run` call, whatever came of it: one per test run, retries included.
    pub runs: AtomicUsize,
    /// Every `check` call, whatever came of it: one per checker run.
    pub checks: AtomicUsize,
    /// Programs released, so that a test can check that every program prepared was released.
    pub released: AtomicUsize,
    /// Programs prepared and not yet released.
    pub active: AtomicUsize,
    /// The largest `active` ever seen: the number of scripts judged at once.
    pub max_active: AtomicUsize,
}

/// The fake's built program: the parsed instructions.
#[derive(Debug)]
pub struct FakeProgram {
    /// The script's id, by which its remaining `flaky` failures are found.
    id: ScriptId,
    /// The source's lines understood as instructions, applied on every run.
    instructions: Vec<Instruction>,
}

#[derive(Debug, Clone)]
enum Instruction {
    Echo,
    Print(String),
    Sleep(Duration),
    Exit(i32),
    Timeout,
    Oom,
    Flood,
    BuildFail(String),
    BuildSleep(Duration),
    Flaky(u32),
    Broken,
    Panic,
    Warn(String),
    Compare,
}

impl FakeRuntime {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn stats(&self) -> &FakeRuntimeStats {
        &self.stats
    }

    /// Takes the engine down (`true`) or brings it back (`false`).
    pub fn set_engine_down(&self, down: bool) {
        self.engine_down.store(down, Ordering::SeqCst);
    }

    /// Removes the image of `language`: its builds fail with [`RuntimeError::ImageMissing`] until restored.
    pub fn remove_image(&self, language: Language) {
        crate::sync::lock(&self.missing_images).insert(language);
    }

    pub fn restore_image(&self, language: Language) {
        crate::sync::lock(&self.missing_images).remove(&language);
    }

    fn check_engine(&self) -> Result<(), RuntimeError> {
        if self.engine_down.load(Ordering::SeqCst) {
            return Err(RuntimeError::Unavailable("fake engine is down".into()));
        }
        Ok(())
    }
}

fn parse(source: &str) -> Vec<Instruction> {
    let millis = |text: &str| Duration::from_millis(text.trim().parse().unwrap_or(0));
    source
        .lines()
        .filter_map(|line| {
            let (word, rest) = line.trim().split_once(' ').unwrap_or((line.trim(), ""));
            Some(match word {
                "echo" => Instruction::Echo,
                "print" => Instruction::Print(rest.to_owned()),
                "sleep" => Instruction::Sleep(millis(rest)),
                "exit" => Instruction::Exit(rest.trim().parse().unwrap_or(1)),
                "timeout" => Instruction::Timeout,
                "oom" => Instruction::Oom,
                "flood" => Instruction::Flood,
                "build-fail" => Instruction::BuildFail(rest.to_owned()),
                "build-sleep" => Instruction::BuildSleep(millis(rest)),
                "flaky" => Instruction::Flaky(rest.trim().parse().unwrap_or(1)),
                "broken" => Instruction::Broken,
                "panic" => Instruction::Panic,
                "warn" => Instruction::Warn(rest.to_owned()),
                "compare" => Instruction::Compare,
                _ => return None,
            })
        })
        .collect()
}

async fn sleep(duration: Duration, cancel: &CancellationToken) -> Result<(), RuntimeError> {
    tokio::select! {
        () = cancel.cancelled() => Err(RuntimeError::Cancelled),
        () = tokio::time::sleep(duration) => Ok(()),
    }
}

impl Runtime for FakeRuntime {
    type Program = FakeProgram;

    async fn prepare(
        &self,
        script: &Script,
        _limits: Limits,
        cancel: &CancellationToken,
    ) -> Result<Preparation<FakeProgram>, RuntimeError> {
        self.stats.prepare_calls.fetch_add(1, Ordering::SeqCst);
        self.check_engine()?;
        let missing = crate::sync::lock(&self.missing_images).contains(&script.language);
        if missing {
            return Err(RuntimeError::ImageMissing {
                image: format!("fake/{}", script.language),
                cause: "removed by the test".into(),
            });
        }
        let instructions = parse(script.source.as_str());
        for instruction in &instructions {
            match instruction {
                Instruction::Broken => return Err(RuntimeError::Unavailable("fake engine is broken".into())),
                Instruction::BuildSleep(duration) => sleep(*duration, cancel).await?,
                Instruction::BuildFail(text) => {
                    return Ok(Preparation::BuildFailed(BuildFailure {
                        diagnostics: text.as_bytes().to_vec(),
                        reason: "compilation failed with exit code 1".into(),
                    }));
                }
                Instruction::Flaky(count) => {
                    let mut flaky = crate::sync::lock(&self.flaky);
                    flaky.entry(script.id.clone()).or_insert(*count);
                }
                _ => {}
            }
        }
        self.stats.prepared.fetch_add(1, Ordering::SeqCst);
        let active = self.stats.active.fetch_add(1, Ordering::SeqCst) + 1;
        self.stats.max_active.fetch_max(active, Ordering::SeqCst);
        Ok(Preparation::Ready(FakeProgram {
            id: script.id.clone(),
            instructions,
        }))
    }

    async fn run(
        &self,
        program: &FakeProgram,
        input: &[u8],
        cancel: &CancellationToken,
    ) -> Result<Execution, RuntimeError> {
        self.stats.runs.fetch_add(1, Ordering::SeqCst);
        self.execute(program, input, None, cancel).await
    }

    async fn check(
        &self,
        checker: &FakeProgram,
        files: CheckFiles<'_>,
        cancel: &CancellationToken,
    ) -> Result<Execution, RuntimeError> {
        self.stats.checks.fetch_add(1, Ordering::SeqCst);
        self.execute(checker, files.input, Some(files), cancel).await
    }

    async fn probe(&self, _cancel: &CancellationToken) -> Result<(), RuntimeError> {
        self.stats.probes.fetch_add(1, Ordering::SeqCst);
        self.check_engine()
    }

    async fn release(&self, _program: FakeProgram) {
        self.stats.released.fetch_add(1, Ordering::SeqCst);
        self.stats.active.fetch_sub(1, Ordering::SeqCst);
    }
}

impl FakeRuntime {
    /// Applies a program's instructions to `input`; a checker also has the test's files.
    async fn execute(
        &self,
        program: &FakeProgram,
        input: &[u8],
        files: Option<CheckFiles<'_>>,
        cancel: &CancellationToken,
    ) -> Result<Execution, RuntimeError> {
        self.check_engine()?;
        {
            let mut flaky = crate::sync::lock(&self.flaky);
            if let Some(remaining) = flaky.get_mut(&program.id).filter(|remaining| **remaining > 0) {
                *remaining -= 1;
                return Err(RuntimeError::Unavailable("fake engine hiccup".into()));
            }
        }
        let mut execution = Execution {
            exit: Exit::Code(0),
            wall_time: Duration::from_millis(1),
            cpu_time: Some(Duration::from_millis(1)),
            memory_peak: Some(1 << 20),
            stdout: Vec::new(),
            stderr: Vec::new(),
            timed_out: false,
            memory_exceeded: false,
            stalled_at_memory_limit: false,
            output_exceeded: false,
            cpu_exceeded: false,
            output_file_missing: false,
        };
        for instruction in &program.instructions {
            match instruction {
                Instruction::Echo => execution.stdout.extend_from_slice(input),
                Instruction::Print(text) => {
                    execution.stdout.extend_from_slice(text.as_bytes());
                    execution.stdout.push(b'\n');
                }
                Instruction::Sleep(duration) => {
                    sleep(*duration, cancel).await?;
                    execution.wall_time += *duration;
                }
                Instruction::Exit(code) => execution.exit = Exit::Code(*code),
                Instruction::Timeout => {
                    execution.timed_out = true;
                    execution.exit = Exit::Signal(9);
                }
                Instruction::Oom => {
                    execution.memory_exceeded = true;
                    execution.exit = Exit::Signal(9);
                }
                Instruction::Flood => {
                    execution.output_exceeded = true;
                    execution.exit = Exit::Signal(9);
                }
                Instruction::Broken => return Err(RuntimeError::Unavailable("fake engine is broken".into())),
                Instruction::Panic => panic!("fake runtime told to panic"),
                Instruction::Warn(text) => {
                    execution.stderr.extend_from_slice(text.as_bytes());
                    execution.stderr.push(b'\n');
                }
                Instruction::Compare => {
                    let same = files.is_some_and(|files| files.output.trim_ascii() == files.answer.trim_ascii());
                    if !same {
                        execution.exit = Exit::Code(1);
                        execution.stderr.extend_from_slice(b"wrong answer\n");
                    }
                }
                Instruction::BuildFail(_) | Instruction::BuildSleep(_) | Instruction::Flaky(_) => {}
            }
        }
        Ok(execution)
    }
}
