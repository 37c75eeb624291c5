//! Time and memory limits: the defaults and ceilings scripts are judged with, the limits of a build, and the
//! longest script they allow, which Kafka's poll interval and the sandboxes' expiry must outlast.
//!
//! Every limit is finite: SCRC's `0` ("no limit") is refused, so one busy loop cannot hold a slot forever.

use std::ops::RangeInclusive;
use std::time::Duration;

use super::duration::parse_go_duration;
use super::env::Env;
use super::{ConfigError, MIB, invalid};
use crate::domain::{LimitPolicy, Limits, MemoryLimit, TimeLimit};

/// Docker refuses memory limits under 6 MiB.
pub const MIN_MEMORY_LIMIT: u64 = 6 * MIB;

/// The name [`MIN_MEMORY_LIMIT`] goes by in an error: it is scrc's own constant, not a variable a user sets.
const MIN_MEMORY_LIMIT_NAME: &str = "MIN_MEMORY_LIMIT";

/// Test suites `RUNNER_MAX_TESTS` may allow: at least one test, and at most so many that every test, each costing a
/// container and up to the time limit, still fits in one script's deadline.
const MAX_TESTS_RANGE: RangeInclusive<usize> = 1..=10_000;

/// Time each test may spend on sandbox overhead (container creation, start, removal) on top of its limit when
/// sizing the per-script deadline.
pub(super) const PER_TEST_OVERHEAD: Duration = Duration::from_secs(10);

/// Time a build may spend on overhead and retries on top of the compile limit.
pub(super) const BUILD_OVERHEAD: Duration = Duration::from_secs(30);

/// The time and memory limits, each valid on its own; how they relate is checked by [`super::rules`].
#[derive(Debug, Clone, Copy)]
pub(super) struct LimitSettings {
    /// `RUNNER_TIME_LIMIT`: per test, for scripts that ask for nothing.
    pub(super) time: TimeLimit,
    /// `RUNNER_MAX_TIME_LIMIT`: per test; scripts that ask for more are rejected.
    pub(super) max_time: TimeLimit,
    /// `RUNNER_COMPILE_TIME_LIMIT`: the wall-clock limit of a build.
    pub(super) compile_time: TimeLimit,
    /// `RUNNER_MEMORY_LIMIT`: for scripts that ask for nothing.
    pub(super) memory: MemoryLimit,
    /// `RUNNER_MAX_MEMORY_LIMIT`: scripts that ask for more are rejected.
    pub(super) max_memory: MemoryLimit,
    /// `RUNNER_COMPILE_MEMORY_LIMIT`: the memory limit of a build.
    pub(super) compile_memory: MemoryLimit,
    /// `RUNNER_MAX_TESTS`: longer suites are rejected.
    pub(super) max_tests: usize,
    /// `RUNNER_CHECKER_TIME_LIMIT`: a checker program's time limit per test.
    pub(super) checker_time: TimeLimit,
    /// `RUNNER_CHECKER_MEMORY_LIMIT`: a checker program's memory limit.
    pub(super) checker_memory: MemoryLimit,
}

impl LimitSettings {
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first limit that is malformed, zero, or under Docker's minimum.
    pub(super) fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let time = time_limit("RUNNER_TIME_LIMIT", &env.runner_time_limit)?;
        let max_time = time_limit("RUNNER_MAX_TIME_LIMIT", &env.runner_max_time_limit)?;
        let compile_time = time_limit("RUNNER_COMPILE_TIME_LIMIT", &env.runner_compile_time_limit)?;
        let memory = memory_limit("RUNNER_MEMORY_LIMIT", env.runner_memory_limit)?;
        let max_memory = memory_limit("RUNNER_MAX_MEMORY_LIMIT", env.runner_max_memory_limit)?;
        let compile_memory = memory_limit("RUNNER_COMPILE_MEMORY_LIMIT", env.runner_compile_memory_limit)?;
        let checker_time = time_limit("RUNNER_CHECKER_TIME_LIMIT", &env.runner_checker_time_limit)?;
        let checker_memory = memory_limit("RUNNER_CHECKER_MEMORY_LIMIT", env.runner_checker_memory_limit)?;
        if !MAX_TESTS_RANGE.contains(&env.runner_max_tests) {
            return Err(invalid(
                "RUNNER_MAX_TESTS",
                env.runner_max_tests,
                format!(
                    "must be between {} and {}",
                    MAX_TESTS_RANGE.start(),
                    MAX_TESTS_RANGE.end()
                ),
            ));
        }
        Ok(Self {
            time,
            max_time,
            compile_time,
            memory,
            max_memory,
            compile_memory,
            max_tests: env.runner_max_tests,
            checker_time,
            checker_memory,
        })
    }

    /// The longest script this runner may take on: its build, then every test at the maximum time limit with its
    /// checker program at its own.
    /// Saturating, so that limits too long to add up reach the poll-interval rule instead of panicking.
    pub(super) fn script_deadline(&self) -> Duration {
        let tests = u32::try_from(self.max_tests).unwrap_or(u32::MAX);
        let build = self.compile_time.as_duration().saturating_add(BUILD_OVERHEAD);
        let test = (self.max_time.as_duration())
            .saturating_add(self.checker_time.as_duration())
            .saturating_add(PER_TEST_OVERHEAD);
        build.saturating_add(test.saturating_mul(tests))
    }

    /// # Errors
    /// [`ConfigError::Invalid`] if [`MIN_MEMORY_LIMIT`] is not a memory limit.
    pub(super) fn policy(&self) -> Result<LimitPolicy, ConfigError> {
        Ok(LimitPolicy {
            default: Limits {
                time: self.time,
                memory: self.memory,
                cpu_time: None,
            },
            max: Limits {
                time: self.max_time,
                memory: self.max_memory,
                cpu_time: None,
            },
            min_memory: minimum_memory_limit(MIN_MEMORY_LIMIT)?,
            max_tests: self.max_tests,
            checker: Limits {
                time: self.checker_time,
                memory: self.checker_memory,
                cpu_time: None,
            },
        })
    }
}

/// A Go duration greater than zero, from the variable `name`.
///
/// # Errors
/// [`ConfigError::Invalid`] naming `name` for a malformed or zero duration.
pub(super) fn positive_duration(name: &'static str, text: &str) -> Result<Duration, ConfigError> {
    let duration = parse_go_duration(text).map_err(|reason| invalid(name, text, reason))?;
    if duration.is_zero() {
        return Err(invalid(
            name,
            text,
            "must be greater than zero; scrc always enforces a limit",
        ));
    }
    Ok(duration)
}

fn time_limit(name: &'static str, text: &str) -> Result<TimeLimit, ConfigError> {
    let duration = positive_duration(name, text)?;
    TimeLimit::new(duration).map_err(|error| invalid(name, text, error.to_string()))
}

fn memory_limit(name: &'static str, bytes: u64) -> Result<MemoryLimit, ConfigError> {
    if bytes < MIN_MEMORY_LIMIT {
        return Err(invalid(
            name,
            bytes,
            format!("must be at least {MIN_MEMORY_LIMIT} bytes (6 MiB)"),
        ));
    }
    MemoryLimit::new(bytes).map_err(|error| invalid(name, bytes, error.to_string()))
}

/// The smallest memory limit a script may ask for. It comes from a constant, not from the environment, so an error
/// names the constant: naming `RUNNER_MEMORY_LIMIT`, as it once did, sent the reader to a variable that was fine.
fn minimum_memory_limit(bytes: u64) -> Result<MemoryLimit, ConfigError> {
    MemoryLimit::new(bytes).map_err(|error| {
        invalid(
            MIN_MEMORY_LIMIT_NAME,
            bytes,
            format!("scrc's built-in floor for memory limits: {error}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_minimum_memory_limit_names_the_constant_not_a_variable() {
        let error = minimum_memory_limit(0)
            .expect_err("zero is not a memory limit")
            .to_string();
        assert!(error.contains("MIN_MEMORY_LIMIT=\"0\""), "{error}");
        assert!(!error.contains("RUNNER_MEMORY_LIMIT"), "{error}");
    }

    #[test]
    fn the_minimum_memory_limit_is_dockers() {
        let minimum = minimum_memory_limit(MIN_MEMORY_LIMIT).map(MemoryLimit::bytes);
        assert_eq!(minimum.ok(), Some(6 * MIB));
    }
}
