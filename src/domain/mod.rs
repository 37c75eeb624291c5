//! The pure core of scrc: what a script is, what limits apply, how output is checked and how a run becomes a
//! verdict. Nothing here performs I/O or knows about Kafka, Docker or tokio.

pub mod checker;
pub mod entry;
pub mod limits;
pub mod program;
pub mod report;
pub mod score;
pub mod script;
pub mod status;
pub mod verdict;

pub use checker::Comparison;
pub use limits::{LimitPolicy, Limits, MemoryLimit, RequestedLimits, TimeLimit};
pub use program::{FileIo, IoName, ProgramFile, ProgramPath};
pub use report::{OutputBudget, OutputCut, RunReport, TestResult};
pub use score::{Fraction, Group, GroupResult, Groups, Points, Score};
pub use script::{Checker, CheckerProgram, Language, Script, ScriptId, Source, Tenant, TestCase};
pub use status::Status;
pub use verdict::{Execution, Exit, Verdict, verdict_before_check, verdict_of};
