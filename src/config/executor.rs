//! The executor's settings and the judge's retries: how many scripts run at once, how shutdown is paced, and how
//! infrastructure failures are retried and cut off by the circuit breaker.

use std::ops::RangeInclusive;
use std::time::Duration;

use super::duration::parse_go_duration;
use super::env::Env;
use super::limits::positive_duration;
use super::{ConfigError, invalid};
use crate::app::{Backoff, ExecutorSettings, RetryPolicy};

/// Slots `RUNNER_MAX_PARALLEL` may ask for: at least one, or nothing is judged; parallelism beyond the sandboxes'
/// cores buys nothing (2 cores flatten at 4), so 256 leaves room for the largest engine and no more.
const MAX_PARALLEL_RANGE: RangeInclusive<usize> = 1..=256;

/// The most messages `RUNNER_TENANT_LOOKAHEAD` may hold back: each is a whole script in memory (up to
/// `RUNNER_MAX_MESSAGE_BYTES`), and each holds the partition's commit below it, so a crash redelivers them all.
const MAX_LOOKAHEAD: usize = 1024;

/// The default `RUNNER_TENANT_LOOKAHEAD`, in slots: enough to find another tenant's script behind a flood of a few
/// scripts per slot without taking a large share of the partition away from the other instances.
const LOOKAHEAD_PER_SLOT: usize = 4;

/// How long abandoned scripts get to release their containers after the shutdown grace, and then the final flush
/// and commit: with the default 30 s grace a shutdown lasts at most 40 s, inside compose's stop grace period.
const CLEANUP_GRACE: Duration = Duration::from_secs(5);

/// Retries of publishing and of source hiccups: soon enough that a broker blip costs little, capped so that a
/// long outage is not hammered.
const PUBLISH_BACKOFF: Backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));

/// Recent script ids remembered to catch one id reused for a different script: hours of traffic at the measured
/// throughput, while the executor's byte bound keeps their memory under 16 MiB.
const RECENT_IDS: usize = 65_536;

/// Retries of a runtime call that failed for infrastructure reasons: all attempts fit in a few seconds, well inside
/// a script's deadline.
const RUNTIME_BACKOFF: Backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(5));

/// How many cool-downs a runtime call waits for an open breaker before giving up as IE: more than one, so that the
/// wait outlasts the breaker's cool-down wherever in it the call arrives.
const BREAKER_WAIT_IN_COOL_DOWNS: u32 = 2;

/// `RUNNER_MAX_PARALLEL`, which the executor, the consumer and the sandbox pool all size themselves by.
///
/// # Errors
/// [`ConfigError::Invalid`] outside [`MAX_PARALLEL_RANGE`].
pub(super) fn max_parallel(env: &Env) -> Result<usize, ConfigError> {
    let max_parallel = env.runner_max_parallel;
    if !MAX_PARALLEL_RANGE.contains(&max_parallel) {
        return Err(invalid(
            "RUNNER_MAX_PARALLEL",
            max_parallel,
            format!(
                "must be between {} and {}",
                MAX_PARALLEL_RANGE.start(),
                MAX_PARALLEL_RANGE.end()
            ),
        ));
    }
    Ok(max_parallel)
}

/// `RUNNER_TENANT_MAX_PARALLEL`: the most slots one tenant may hold, between 1 and `RUNNER_MAX_PARALLEL`.
/// Unset or empty means no cap, as before fair sharing existed.
///
/// # Errors
/// [`ConfigError::Invalid`] for a value that is not an integer in that range.
pub(super) fn tenant_max_parallel(env: &Env, max_parallel: usize) -> Result<Option<usize>, ConfigError> {
    optional_count(
        "RUNNER_TENANT_MAX_PARALLEL",
        env.runner_tenant_max_parallel.as_deref(),
        1..=max_parallel,
        &format!("must be an integer between 1 and RUNNER_MAX_PARALLEL ({max_parallel}), or empty for no cap"),
    )
}

/// `RUNNER_TENANT_LOOKAHEAD`: how many taken messages the executor may hold back while their tenant is at its cap.
/// Unset or empty means [`LOOKAHEAD_PER_SLOT`] per slot.
///
/// # Errors
/// [`ConfigError::Invalid`] for a value that is not an integer from 1 to [`MAX_LOOKAHEAD`].
pub(super) fn tenant_lookahead(env: &Env, max_parallel: usize) -> Result<usize, ConfigError> {
    let lookahead = optional_count(
        "RUNNER_TENANT_LOOKAHEAD",
        env.runner_tenant_lookahead.as_deref(),
        1..=MAX_LOOKAHEAD,
        &format!("must be an integer between 1 and {MAX_LOOKAHEAD}"),
    )?;
    Ok(lookahead.unwrap_or((max_parallel * LOOKAHEAD_PER_SLOT).min(MAX_LOOKAHEAD)))
}

/// An optional count: `None` when unset or empty, else a whole number within `range`.
///
/// # Errors
/// [`ConfigError::Invalid`] naming `name` and `reason` for anything else.
fn optional_count(
    name: &'static str,
    value: Option<&str>,
    range: RangeInclusive<usize>,
    reason: &str,
) -> Result<Option<usize>, ConfigError> {
    let Some(text) = value.filter(|text| !text.trim().is_empty()) else {
        return Ok(None);
    };
    match text.trim().parse::<usize>() {
        Ok(count) if range.contains(&count) => Ok(Some(count)),
        _ => Err(invalid(name, text, reason)),
    }
}

/// `RUNNER_SHUTDOWN_GRACE`, which may be zero: a runner may be told to abandon its scripts at once.
///
/// # Errors
/// [`ConfigError::Invalid`] for a malformed duration.
pub(super) fn shutdown_grace(env: &Env) -> Result<Duration, ConfigError> {
    parse_go_duration(&env.runner_shutdown_grace)
        .map_err(|reason| invalid("RUNNER_SHUTDOWN_GRACE", &env.runner_shutdown_grace, reason))
}

/// The fair-sharing variables, checked together because both are sized by `RUNNER_MAX_PARALLEL`.
#[derive(Debug, Clone, Copy)]
pub(super) struct FairSharing {
    /// `RUNNER_TENANT_MAX_PARALLEL`; `None` for no cap.
    pub(super) tenant_max_parallel: Option<usize>,
    /// `RUNNER_TENANT_LOOKAHEAD`.
    pub(super) lookahead: usize,
}

impl FairSharing {
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first of the two variables out of its range.
    pub(super) fn from_env(env: &Env, max_parallel: usize) -> Result<Self, ConfigError> {
        Ok(Self {
            tenant_max_parallel: tenant_max_parallel(env, max_parallel)?,
            lookahead: tenant_lookahead(env, max_parallel)?,
        })
    }

    /// The most messages the executor may take from the source at once: its slots, and with a cap the deliveries
    /// it may hold back. The consumer holds as many per lane before it pauses the lane.
    pub(super) fn taken_at_most(&self, max_parallel: usize) -> usize {
        max_parallel + self.tenant_max_parallel.map_or(0, |_| self.lookahead)
    }
}

/// The executor's settings from the values already checked.
pub(super) fn executor_settings(
    env: &Env,
    max_parallel: usize,
    fair_sharing: FairSharing,
    shutdown_grace: Duration,
    script_deadline: Duration,
) -> ExecutorSettings {
    ExecutorSettings {
        max_parallel,
        tenant_max_parallel: fair_sharing.tenant_max_parallel,
        lookahead: fair_sharing.lookahead,
        script_expected: (env.script_expected > 0).then_some(env.script_expected),
        shutdown_grace,
        cleanup_grace: CLEANUP_GRACE,
        backoff: PUBLISH_BACKOFF,
        recent_ids: RECENT_IDS,
        script_deadline,
    }
}

/// The circuit breaker's settings and the judge's retries of the runtime.
#[derive(Debug, Clone, Copy)]
pub(super) struct FailureSettings {
    /// How the judge retries a runtime call that failed for infrastructure reasons: `RUNNER_RETRY_ATTEMPTS` attempts,
    /// with a back-off, and how long a call waits for an open breaker (two `RUNNER_BREAKER_COOL_DOWN`s).
    pub(super) retry: RetryPolicy,
    /// `RUNNER_BREAKER_THRESHOLD`: consecutive failures that open the breaker.
    pub(super) breaker_threshold: u32,
    /// `RUNNER_BREAKER_COOL_DOWN`: how long the breaker stays open.
    pub(super) breaker_cool_down: Duration,
}

impl FailureSettings {
    /// # Errors
    /// [`ConfigError::Invalid`] for a malformed or zero cool-down, no attempts, or a zero threshold (a breaker
    /// that opens before any failure would stop every script).
    pub(super) fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let breaker_cool_down = positive_duration("RUNNER_BREAKER_COOL_DOWN", &env.runner_breaker_cool_down)?;
        if env.runner_retry_attempts == 0 {
            return Err(invalid("RUNNER_RETRY_ATTEMPTS", 0, "must be at least 1"));
        }
        if env.runner_breaker_threshold == 0 {
            return Err(invalid("RUNNER_BREAKER_THRESHOLD", 0, "must be at least 1"));
        }
        Ok(Self {
            retry: RetryPolicy {
                attempts: env.runner_retry_attempts,
                backoff: RUNTIME_BACKOFF,
                breaker_wait: breaker_cool_down * BREAKER_WAIT_IN_COOL_DOWNS,
            },
            breaker_threshold: env.runner_breaker_threshold,
            breaker_cool_down,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::load;

    #[test]
    fn without_tenant_variables_nothing_is_capped_and_the_lookahead_is_four_per_slot() {
        let config = load(&[("RUNNER_MAX_PARALLEL", "3")]).unwrap();
        assert_eq!(config.executor.tenant_max_parallel, None);
        assert_eq!(config.executor.lookahead, 12);
        let config = load(&[
            ("RUNNER_MAX_PARALLEL", "3"),
            ("RUNNER_TENANT_MAX_PARALLEL", ""),
            ("RUNNER_TENANT_LOOKAHEAD", ""),
        ])
        .unwrap();
        assert_eq!(config.executor.tenant_max_parallel, None, "empty means no cap");
        assert_eq!(config.executor.lookahead, 12, "empty means the default");
        let config = load(&[("RUNNER_MAX_PARALLEL", "256"), ("RUNNER_POOL_IDLE", "0")]).unwrap();
        assert_eq!(config.executor.lookahead, 1024, "the default never passes the maximum");
    }

    #[test]
    fn the_tenant_cap_and_lookahead_are_read_within_their_ranges() {
        let config = load(&[
            ("RUNNER_MAX_PARALLEL", "4"),
            ("RUNNER_TENANT_MAX_PARALLEL", "1"),
            ("RUNNER_TENANT_LOOKAHEAD", "1"),
        ])
        .unwrap();
        assert_eq!(config.executor.tenant_max_parallel, Some(1));
        assert_eq!(config.executor.lookahead, 1);
        let config = load(&[
            ("RUNNER_MAX_PARALLEL", "4"),
            ("RUNNER_TENANT_MAX_PARALLEL", "4"),
            ("RUNNER_TENANT_LOOKAHEAD", "1024"),
        ])
        .unwrap();
        assert_eq!(config.executor.tenant_max_parallel, Some(4));
        assert_eq!(config.executor.lookahead, 1024);
    }

    #[test]
    fn a_tenant_cap_or_lookahead_out_of_range_is_refused_naming_the_variable_and_the_range() {
        for value in ["0", "5", "-1", "two", "1.5"] {
            let error = load(&[("RUNNER_MAX_PARALLEL", "4"), ("RUNNER_TENANT_MAX_PARALLEL", value)])
                .unwrap_err()
                .to_string();
            assert!(
                error.contains(&format!("RUNNER_TENANT_MAX_PARALLEL=\"{value}\""))
                    && error.contains("between 1 and RUNNER_MAX_PARALLEL (4)"),
                "{error}"
            );
        }
        for value in ["0", "1025", "lots"] {
            let error = load(&[("RUNNER_TENANT_LOOKAHEAD", value)]).unwrap_err().to_string();
            assert!(
                error.contains(&format!("RUNNER_TENANT_LOOKAHEAD=\"{value}\"")) && error.contains("between 1 and 1024"),
                "{error}"
            );
        }
    }

    #[test]
    fn a_breaker_that_could_never_open_is_refused_not_raised_to_one() {
        for (name, value) in [("RUNNER_BREAKER_THRESHOLD", "0"), ("RUNNER_RETRY_ATTEMPTS", "0")] {
            let error = load(&[(name, value)]).unwrap_err().to_string();
            assert!(
                error.contains(&format!("{name}=\"0\"")) && error.contains("at least 1"),
                "{error}"
            );
        }
        let config = load(&[("RUNNER_BREAKER_THRESHOLD", "1")]).unwrap();
        assert_eq!(config.breaker_threshold, 1);
    }
}
