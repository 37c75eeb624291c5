//! One started sandbox container whose PID 1 is the supervisor in serve mode, driven over the container's attached
//! streams (the frames of [`super::protocol`]). It serves one script: its build, or every test of it one after
//! another, each test starting from a wiped sandbox.
//!
//! The session is never handed to a second script. Dropping it removes the container in the background (and then
//! lets go of the script's program volume), so no path out of a script (an error, a cancellation, a panic) leaves a
//! container running.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use futures::{Stream, StreamExt};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::engine::{Engine, EngineError};
use super::fault::{SandboxFault, SessionFault};
use super::protocol::{self, Entry, Exec, File, Hello, Reply, ServedReport};
use super::uids::Uid;
use crate::ports::{RuntimeError, describe};

type Output = Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>;
type Input = Pin<Box<dyn AsyncWrite + Send>>;

/// How long a started supervisor may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(30);
/// How long writing a frame may take: a wipe, a source file or a test's input, through a local socket.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a wipe may take: killing what a test left and emptying tmpfs directories of at most their inode bound, a
/// fraction of a second; a wipe this slow means the sandbox is stuck.
const WIPE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long gathering a built program may take: reading at most the artifact limit from a tmpfs.
const GATHER_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Session {
    /// The engine the container is stopped and removed through when the session is dropped.
    engine: Engine,
    /// The container's id.
    id: String,
    /// The container's attached stdin, where request frames are written to the supervisor.
    input: Input,
    /// The container's attached output, where the supervisor's reply frames come from.
    output: Output,
    /// Reply bytes read but not yet decoded.
    buffer: Vec<u8>,
    /// Set once the stream is out of step or the container misbehaved: the session must not be used again.
    broken: bool,
    /// When the container was started, so that an idle one can be retired before its expiry label passes.
    pub started: Instant,
    /// The memory limit the container has now, in bytes.
    pub memory: u64,
    /// What the supervisor said when it started.
    pub hello: Hello,
    /// Whether tests run here sealed: the container built the program into a volume it mounts writable.
    pub seal_tests: bool,
    /// The script's program volume, let go of only after the container is removed.
    volume: Option<Arc<ProgramVolume>>,
}

/// A per-script volume holding the program, removed once the last container using it is gone; then its user is
/// free for another sandbox.
pub struct ProgramVolume {
    /// Removes the volume when it is dropped.
    engine: Engine,
    /// The volume's name.
    pub name: String,
    /// The sandbox's own user, which owns the volume and runs every container that mounts it; given back only once
    /// the volume is removed, the last of the sandbox to go.
    uid: Option<Uid>,
}

impl ProgramVolume {
    pub fn new(engine: Engine, name: String, uid: Uid) -> Self {
        Self {
            engine,
            name,
            uid: Some(uid),
        }
    }

    /// The sandbox's uid (also its gid).
    pub fn uid(&self) -> u32 {
        self.uid.as_ref().map_or(0, Uid::get)
    }
}

impl Drop for ProgramVolume {
    fn drop(&mut self) {
        let engine = self.engine.clone();
        let name = std::mem::take(&mut self.name);
        let uid = self.uid.take();
        spawn(async move {
            if let Err(error) = persist(|| engine.remove_volume(&name), in_use_or_retryable).await {
                tracing::warn!(error = %describe(&error), volume = %name, "cannot remove a program volume; the reaper will retry");
            }
            drop(uid);
        });
    }
}

/// What a test or build left: the supervisor's report and the output it kept.
pub struct Served {
    /// The supervisor's account of the run: how it ended, its times, memory and limits.
    pub report: Box<ServedReport>,
    /// The stdout the supervisor kept, at most the output limit.
    pub stdout: Vec<u8>,
    /// The stderr the supervisor kept, at most the output limit.
    pub stderr: Vec<u8>,
}

/// How waiting for a test's report ended.
pub enum Waited {
    Served(Served),
    /// No report by the backstop: the container was killed and is gone.
    Backstop,
    /// The container ran out of memory and the kernel killed the supervisor with the test (memory a test holds
    /// outside any process, such as files in `/tmp`, is not freed by killing the test).
    OutOfMemory,
}

impl Session {
    /// Attaches to a created container, starts it and waits for the supervisor's hello.
    ///
    /// # Errors
    /// [`RuntimeError`] when Docker fails or the supervisor does not answer; the container is removed.
    pub async fn start(
        engine: Engine,
        id: String,
        memory: u64,
        volume: Option<Arc<ProgramVolume>>,
    ) -> Result<Self, RuntimeError> {
        let attached = match engine.attach(&id).await {
            Ok(attached) => attached,
            Err(error) => {
                discard(engine, id, volume);
                return Err(error.into());
            }
        };
        let mut session = Self {
            engine,
            id,
            input: attached.input,
            output: attached.output,
            buffer: Vec::new(),
            broken: false,
            started: Instant::now(),
            memory,
            hello: Hello { landlock: 0 },
            seal_tests: false,
            volume,
        };
        session.engine.start(&session.id).await?;
        match tokio::time::timeout(HELLO_TIMEOUT, session.reply()).await {
            Ok(Ok(Reply::Hello(hello))) => {
                session.hello = hello;
                Ok(session)
            }
            Ok(Ok(_)) => Err(session.fail(SessionFault::NoHello)),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(session.fail(SessionFault::HelloTimedOut)),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Sets the container's memory limit (and swap, equal to it), when it differs.
    ///
    /// # Errors
    /// [`RuntimeError`] when Docker refuses; the session is then broken.
    pub async fn limit_memory(&mut self, bytes: u64) -> Result<(), RuntimeError> {
        if bytes == self.memory {
            return Ok(());
        }
        if let Err(error) = self.engine.update_memory(&self.id, bytes).await {
            self.broken = true;
            return Err(error.into());
        }
        self.memory = bytes;
        Ok(())
    }

    /// Kills what the last run left, empties the writable directories, and puts `files` in.
    ///
    /// # Errors
    /// [`RuntimeError`] when the stream or the wipe fails; a failure to put a file comes back with the next report.
    pub async fn reset(&mut self, files: &[File<'_>]) -> Result<(), RuntimeError> {
        self.wipe().await?;
        let mut frames = Vec::new();
        for file in files {
            frames.extend(protocol::put(file));
        }
        self.send(&frames).await
    }

    /// Kills what the last run left and empties the writable directories, waiting until the supervisor says the
    /// sandbox is clear: a test's clock starts only after that, so the wipe is never charged to it.
    ///
    /// # Errors
    /// [`RuntimeError`] when the stream fails, the wipe fails or does not end within [`WIPE_TIMEOUT`]; the session is
    /// then broken, and the next test gets a new sandbox.
    async fn wipe(&mut self) -> Result<Duration, RuntimeError> {
        self.send(&protocol::wipe()).await?;
        match tokio::time::timeout(WIPE_TIMEOUT, self.reply()).await {
            Ok(Ok(Reply::Cleared { errno: 0, took })) => Ok(took),
            Ok(Ok(Reply::Cleared { errno, .. })) => {
                self.broken = true;
                Err(SandboxFault::NotReset(errno).into())
            }
            Ok(Ok(_)) => Err(self.fail(SessionFault::Unexpected("wipe"))),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(self.fail(SessionFault::WipeTimedOut)),
        }
    }

    /// Kills what the last run left, empties the writable directories, and puts a program tree gathered earlier
    /// back under `root`: its directories, then its files.
    ///
    /// # Errors
    /// [`RuntimeError`] when the stream fails; a failure inside the container comes back with the next report.
    pub async fn restore(&mut self, root: &str, entries: &[Entry]) -> Result<(), RuntimeError> {
        self.wipe().await?;
        let mut frames = Vec::new();
        for entry in entries {
            let path = format!("{root}/{}", entry.path);
            frames.extend(match &entry.contents {
                None => protocol::directory(&path, entry.mode),
                Some(contents) => protocol::put(&File {
                    path: &path,
                    mode: entry.mode,
                    mtime: entry.mtime,
                    contents,
                }),
            });
        }
        self.send(&frames).await
    }

    /// Every file and directory under `path`, for the artifact cache; `Ok(Err(errno))` when the supervisor could
    /// not gather all of it (more than `limit` bytes, a link, a special file).
    ///
    /// # Errors
    /// [`RuntimeError`] when the stream fails or the supervisor answers something else; the session is then broken.
    pub async fn gather(&mut self, path: &str, limit: u32) -> Result<Result<Vec<Entry>, i32>, RuntimeError> {
        self.send(&protocol::gather(path, limit)).await?;
        match tokio::time::timeout(GATHER_TIMEOUT, self.reply()).await {
            Ok(Ok(Reply::Gathered(gathered))) => Ok(gathered),
            Ok(Ok(_)) => Err(self.fail(SessionFault::Unexpected("gather"))),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(self.fail(SessionFault::GatherTimedOut)),
        }
    }

    /// Records the modes and times of the built program under `path`: Landlock keeps sealed tests from writing it,
    /// not from changing those, so the supervisor puts them back before every sealed test.
    ///
    /// # Errors
    /// [`RuntimeError`] when the stream fails; a failure inside the container comes back with the next report.
    pub async fn keep(&mut self, path: &str) -> Result<(), RuntimeError> {
        self.send(&protocol::keep(path)).await
    }

    /// Runs one test and waits for its report until `backstop`. On cancellation the container is killed.
    ///
    /// # Errors
    /// [`RuntimeError`] when the stream fails or is out of step, or [`RuntimeError::Cancelled`].
    pub async fn exec(
        &mut self,
        request: &Exec<'_>,
        backstop: Duration,
        cancel: &CancellationToken,
    ) -> Result<Waited, RuntimeError> {
        self.send(&protocol::exec(request)).await?;
        enum Event {
            Cancelled,
            Backstop,
            Reply(Result<Reply, RuntimeError>),
        }
        let event = tokio::select! {
            biased;
            () = cancel.cancelled() => Event::Cancelled,
            () = tokio::time::sleep(backstop) => Event::Backstop,
            reply = self.reply() => Event::Reply(reply),
        };
        match event {
            Event::Cancelled => {
                self.broken = true;
                Err(RuntimeError::Cancelled)
            }
            Event::Backstop => {
                self.broken = true;
                let _ = self.engine.kill(&self.id).await;
                Ok(Waited::Backstop)
            }
            Event::Reply(Ok(Reply::Report { report, stdout, stderr })) => {
                Ok(Waited::Served(Served { report, stdout, stderr }))
            }
            Event::Reply(Ok(_)) => Err(self.fail(SessionFault::Unexpected("test"))),
            Event::Reply(Err(error)) => match self.engine.state(&self.id).await {
                Ok(state) if state.oom_killed == Some(true) => Ok(Waited::OutOfMemory),
                _ => Err(error),
            },
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), RuntimeError> {
        let written = tokio::time::timeout(TRANSFER_TIMEOUT, async {
            self.input.write_all(bytes).await?;
            self.input.flush().await
        })
        .await;
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(self.fail(SessionFault::Write(error))),
            Err(_) => Err(self.fail(SessionFault::WriteTimedOut)),
        }
    }

    /// The next whole reply. The supervisor's own stderr (never a test's) is logged.
    async fn reply(&mut self) -> Result<Reply, RuntimeError> {
        loop {
            match protocol::take_reply(&mut self.buffer) {
                Ok(Some(reply)) => return Ok(reply),
                Ok(None) => {}
                Err(error) => return Err(self.fail(SessionFault::Frame(error))),
            }
            match self.output.next().await {
                Some(Ok(LogOutput::StdOut { message } | LogOutput::Console { message })) => {
                    self.buffer.extend_from_slice(&message);
                }
                Some(Ok(LogOutput::StdErr { message })) => {
                    tracing::warn!(container = %self.id, message = %String::from_utf8_lossy(&message), "supervisor");
                }
                Some(Ok(LogOutput::StdIn { .. })) => {}
                Some(Err(error)) => return Err(self.fail_unavailable(SessionFault::Read(error))),
                None => return Err(self.fail(SessionFault::Stopped)),
            }
        }
    }

    /// Marks the session broken and says why, as a sandbox failure.
    fn fail(&mut self, fault: SessionFault) -> RuntimeError {
        self.broken = true;
        SandboxFault::Session {
            container: self.id.clone(),
            fault,
        }
        .into()
    }

    /// Marks the session broken and says why, as the engine being unavailable.
    fn fail_unavailable(&mut self, fault: SessionFault) -> RuntimeError {
        self.broken = true;
        RuntimeError::Unavailable(Box::new(SandboxFault::Session {
            container: self.id.clone(),
            fault,
        }))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        discard(self.engine.clone(), std::mem::take(&mut self.id), self.volume.take());
    }
}

/// Removes a container in the background, then lets go of its program volume. The supervisor also exits when its
/// stream closes, so even a removal that fails (a dead engine) leaves no process running; the reaper removes the
/// stopped container and the expired volume later.
fn discard(engine: Engine, id: String, volume: Option<Arc<ProgramVolume>>) {
    spawn(async move {
        if let Err(error) = persist(|| engine.remove_container(&id), EngineError::is_retryable).await {
            tracing::warn!(error = %describe(&error), container = %id, "cannot remove a sandbox; the reaper will retry");
        }
        drop(volume);
    });
}

/// Retries a removal through an engine hiccup for up to two minutes, so that a short outage does not leave
/// containers and volumes for the reaper. `worth_retrying` says which failures may pass.
async fn persist<F: Future<Output = Result<(), EngineError>>>(
    mut removal: impl FnMut() -> F,
    worth_retrying: impl Fn(&EngineError) -> bool,
) -> Result<(), EngineError> {
    const PATIENCE: Duration = Duration::from_secs(120);
    let started = tokio::time::Instant::now();
    let mut delay = Duration::from_millis(250);
    loop {
        match removal().await {
            Err(error) if worth_retrying(&error) && started.elapsed() < PATIENCE => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            result => return result,
        }
    }
}

/// A volume's removal may also pass "in use" (409): the engine answers a second removal of a container with 409 as
/// soon as the first is under way, and a gVisor sandbox that held a fork storm (thousands of host tasks) takes tens
/// of seconds more to go, its volume in use until then.
fn in_use_or_retryable(error: &EngineError) -> bool {
    error.is_retryable() || error.status() == Some(409)
}

/// Spawns cleanup on the current runtime; without one (the process is ending) the reaper cleans up instead.
fn spawn(cleanup: impl Future<Output = ()> + Send + 'static) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(cleanup);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bollard::errors::Error as BollardError;

    use super::*;
    use crate::adapters::docker::engine::Operation;

    fn in_use() -> EngineError {
        EngineError::Api {
            operation: Operation::RemoveVolume,
            source: BollardError::DockerResponseServerError {
                status_code: 409,
                message: "volume is in use".into(),
            },
        }
    }

    /// Removes on the third call, "in use" before.
    async fn third_time(calls: &AtomicUsize) -> Result<(), EngineError> {
        match calls.fetch_add(1, Ordering::SeqCst) {
            0 | 1 => Err(in_use()),
            _ => Ok(()),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_volume_still_in_use_is_removed_once_its_container_is_gone() {
        let calls = AtomicUsize::new(0);
        assert!(persist(|| third_time(&calls), in_use_or_retryable).await.is_ok());
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_container_answered_with_a_client_error_is_not_retried() {
        let calls = AtomicUsize::new(0);
        assert!(persist(|| third_time(&calls), EngineError::is_retryable).await.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_volume_in_use_for_good_is_left_to_the_reaper_after_two_minutes() {
        let started = tokio::time::Instant::now();
        assert!(persist(|| async { Err(in_use()) }, in_use_or_retryable).await.is_err());
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(120) && waited < Duration::from_secs(125),
            "{waited:?}"
        );
    }
}
