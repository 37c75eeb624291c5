//! scrc's simulator: drives any SCRC-compatible runner through Kafka with a library of programs whose verdicts
//! are known, and checks every verdict that comes back. It also holds the benchmark harness.
//!
//! It deliberately shares no code with the runner: it speaks the wire format as any producer and consumer would,
//! so it checks compatibility rather than assuming it.

#[cfg(feature = "bench")]
pub mod bench;
pub mod config;
pub mod kafka;
pub mod library;
pub mod simulation;
pub mod validate;

pub use config::SimulatorConfig;
pub use library::{SCRC_LANGUAGES, Scenario, full_library, library, problems};
pub use simulation::{SimulationReport, run};
