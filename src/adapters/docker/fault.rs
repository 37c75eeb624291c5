//! What goes wrong in a sandbox through no fault of the program: the causes this adapter gives the runtime port's
//! errors ([`RuntimeError::Sandbox`], [`RuntimeError::ImageMissing`]). A program's own doing is never one of these:
//! it is a verdict.

use crate::domain::Language;
use crate::ports::RuntimeError;

use super::protocol::BadFrame;

/// The sandbox misbehaved.
#[derive(Debug, thiserror::Error)]
pub enum SandboxFault {
    /// The runner has no images for the language (a configuration without it).
    #[error("no images are configured for {0}")]
    NoToolchain(Language),
    /// The supervisor of a build or of a test ended without a report.
    #[error("the {0} supervisor sent no report")]
    NoReport(&'static str),
    /// A program put back from the runner's copy came out different.
    #[error("a built program did not arrive whole in its sandbox")]
    ProgramChanged,
    /// A program could not be put back into a new sandbox.
    #[error("a built program could not be put into its sandbox (errno {0})")]
    ProgramNotPut(i32),
    /// A script's sandbox died, and the runner had no copy of its program to set up another.
    #[error("the sandbox of a script died, and its program could not be kept to set up another")]
    ProgramLost,
    /// The supervisor could not wipe the sandbox, put a file in, seal the test or install its syscall filter before
    /// a run: the run did not start.
    #[error("the sandbox could not be reset, sealed or filtered before the run (errno {0})")]
    NotReset(i32),
    /// The conversation with a sandbox's supervisor failed.
    #[error("sandbox {container}")]
    Session {
        container: String,
        #[source]
        fault: SessionFault,
    },
    /// `RUNNER_DOCKER_RUNTIME` names a runtime the engine does not offer.
    #[error(
        "RUNNER_DOCKER_RUNTIME={name:?}, but the engine offers only {offered}: register it with the engine (for gVisor, scripts/install-gvisor.sh) or unset the variable"
    )]
    NoSuchRuntime { name: String, offered: String },
    /// Another runner filled the toolchain volumes of an image, yet no marker names them.
    #[error("the toolchain volumes of {0} were filled but are not named")]
    ToolchainUnnamed(String),
}

/// What went wrong talking to one sandbox's supervisor. The sandbox is not used again.
#[derive(Debug, thiserror::Error)]
pub enum SessionFault {
    #[error("the supervisor did not start with a hello")]
    NoHello,
    #[error("the supervisor did not say hello within 30 s")]
    HelloTimedOut,
    #[error("the supervisor answered a {0} with something else")]
    Unexpected(&'static str),
    #[error("the supervisor did not gather the program within 30 s")]
    GatherTimedOut,
    #[error("the supervisor did not clear the sandbox within 30 s")]
    WipeTimedOut,
    #[error(transparent)]
    Frame(#[from] BadFrame),
    #[error("writing to the supervisor")]
    Write(#[source] std::io::Error),
    #[error("writing to the supervisor timed out")]
    WriteTimedOut,
    #[error("reading the supervisor")]
    Read(#[source] bollard::errors::Error),
    #[error("the supervisor's container stopped")]
    Stopped,
}

/// An image the engine has, which cannot run what its language needs.
#[derive(Debug, thiserror::Error)]
pub enum ImageUnfit {
    /// The supervisor could not execute the build or run command.
    #[error("it cannot execute {command:?} (errno {errno})")]
    CannotExecute { command: String, errno: i32 },
    /// The build command ended the way a shell ends for a command it cannot find or execute.
    #[error("its build command exited {code}, as a shell does for a command it cannot run: {said}")]
    ShellCannotRun { code: i32, said: String },
}

impl From<SandboxFault> for RuntimeError {
    fn from(fault: SandboxFault) -> Self {
        RuntimeError::Sandbox(Box::new(fault))
    }
}

/// The runtime's error for an image that cannot run what `image`'s language needs.
pub fn unfit(image: &str, why: ImageUnfit) -> RuntimeError {
    RuntimeError::ImageMissing {
        image: image.to_owned(),
        cause: Box::new(why),
    }
}
