//! The verdict vocabulary. SCRC's six codes keep their spelling; the four finer ones separate a crashing program
//! (RE), a flooding one (OL), a broken runner (IE) and an invalid message (RJ) from the verdicts they used to hide in.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// Ran within its limits, exited 0, and the checker accepted the output.
    Ok,
    /// Ran within its limits and exited 0, but the checker rejected the output.
    WrongAnswer,
    /// Ran past its wall-clock limit and was killed.
    TimeLimit,
    /// Exceeded its memory limit: killed by the OOM killer, or failed with its language's out-of-memory error.
    MemoryLimit,
    /// Did not compile (or, for Python, did not pass the syntax check), or the compiler exceeded its own limits.
    BuildFailure,
    /// Not run, because an earlier test already decided the verdict.
    NotRun,
    /// Exited non-zero or was killed by a signal, and neither TL nor ML applies.
    RuntimeError,
    /// Wrote more than the output limit to stdout or stderr and was killed.
    OutputLimit,
    /// The runner or its infrastructure failed after bounded retries. Says nothing about the program.
    InternalError,
    /// The message was readable but invalid, so nothing was run.
    Rejected,
}

impl Status {
    pub const ALL: [Status; 10] = [
        Status::Ok,
        Status::WrongAnswer,
        Status::TimeLimit,
        Status::MemoryLimit,
        Status::BuildFailure,
        Status::NotRun,
        Status::RuntimeError,
        Status::OutputLimit,
        Status::InternalError,
        Status::Rejected,
    ];

    /// The code on the wire.
    pub fn code(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::WrongAnswer => "WA",
            Status::TimeLimit => "TL",
            Status::MemoryLimit => "ML",
            Status::BuildFailure => "BF",
            Status::NotRun => "-",
            Status::RuntimeError => "RE",
            Status::OutputLimit => "OL",
            Status::InternalError => "IE",
            Status::Rejected => "RJ",
        }
    }

    pub fn from_code(code: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|status| status.code() == code)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_keep_scrc_spelling() {
        for status in Status::ALL {
            assert_eq!(Status::from_code(status.code()), Some(status));
        }
        let scrc: Vec<&str> = [
            Status::Ok,
            Status::WrongAnswer,
            Status::TimeLimit,
            Status::MemoryLimit,
            Status::BuildFailure,
            Status::NotRun,
        ]
        .iter()
        .map(|s| s.code())
        .collect();
        assert_eq!(scrc, ["OK", "WA", "TL", "ML", "BF", "-"]);
        assert_eq!(Status::from_code("ok"), None);
    }
}
