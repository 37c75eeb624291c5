//! The rules that relate variables to each other, checked in one place once every variable is valid on its own:
//! a default within its ceiling, topics that cannot be mistaken for each other, and a longest script and shutdown
//! that fit inside Kafka's poll interval.

use std::time::Duration;

use super::ConfigError;
use super::env::Env;
use super::kafka::{MAX_POLL_INTERVAL_CEILING, max_poll_interval};
use super::limits::LimitSettings;

/// # Errors
/// [`ConfigError::Rule`] for the first rule broken, naming the variables involved.
pub(super) fn check_cross_field_rules(
    env: &Env,
    limits: &LimitSettings,
    shutdown_grace: Duration,
    scripts_topics: &[String],
    events_topic: Option<&str>,
) -> Result<(), ConfigError> {
    check_defaults_within_ceilings(env, limits)?;
    check_topics_are_distinct(env, scripts_topics, events_topic)?;
    check_poll_interval(env, limits, shutdown_grace)
}

fn check_defaults_within_ceilings(env: &Env, limits: &LimitSettings) -> Result<(), ConfigError> {
    if limits.time > limits.max_time {
        return Err(ConfigError::Rule(format!(
            "RUNNER_TIME_LIMIT ({}) exceeds RUNNER_MAX_TIME_LIMIT ({})",
            env.runner_time_limit, env.runner_max_time_limit
        )));
    }
    if limits.memory > limits.max_memory {
        return Err(ConfigError::Rule(format!(
            "RUNNER_MEMORY_LIMIT ({}) exceeds RUNNER_MAX_MEMORY_LIMIT ({})",
            env.runner_memory_limit, env.runner_max_memory_limit
        )));
    }
    Ok(())
}

fn check_topics_are_distinct(env: &Env, scripts: &[String], events_topic: Option<&str>) -> Result<(), ConfigError> {
    if scripts.contains(&env.kafka_dlq_topic) {
        return Err(ConfigError::Rule(
            "KAFKA_DLQ_TOPIC must differ from every topic of KAFKA_TOPIC, or dead letters would be read again".into(),
        ));
    }
    if scripts.contains(&env.kafka_results_topic) {
        return Err(ConfigError::Rule(
            "KAFKA_RESULTS_TOPIC must differ from every topic of KAFKA_TOPIC, or results would be read as scripts"
                .into(),
        ));
    }
    if let Some(topic) = events_topic
        && (scripts.iter().any(|other| other == topic)
            || [&env.kafka_results_topic, &env.kafka_dlq_topic]
                .iter()
                .any(|other| other.as_str() == topic))
    {
        return Err(ConfigError::Rule(format!(
            "KAFKA_EVENTS_TOPIC={topic:?} is also the scripts, results or dead-letter topic; lifecycle events \
             need a topic of their own, or their readers would take them for scripts or results"
        )));
    }
    Ok(())
}

/// The consumer must outlast the longest script, or it loses its partitions mid-script; and the shutdown grace must
/// end before the poll interval does, or the group moves on before the runner commits.
fn check_poll_interval(env: &Env, limits: &LimitSettings, shutdown_grace: Duration) -> Result<(), ConfigError> {
    let script_deadline = limits.script_deadline();
    let max_poll_interval = max_poll_interval(script_deadline);
    if max_poll_interval > MAX_POLL_INTERVAL_CEILING {
        return Err(ConfigError::Rule(format!(
            "RUNNER_MAX_TESTS x RUNNER_MAX_TIME_LIMIT allows a script to run for {} s, over Kafka's \
             24 h ceiling for max.poll.interval.ms; lower one of them",
            script_deadline.as_secs()
        )));
    }
    if shutdown_grace >= max_poll_interval {
        return Err(ConfigError::Rule(format!(
            "RUNNER_SHUTDOWN_GRACE ({}) must be shorter than the consumer's max.poll.interval.ms ({} s)",
            env.runner_shutdown_grace,
            max_poll_interval.as_secs()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::limits::{BUILD_OVERHEAD, PER_TEST_OVERHEAD};
    use crate::config::load;

    #[test]
    fn cross_field_rules_are_enforced() {
        let error = load(&[("RUNNER_TIME_LIMIT", "30s")]).unwrap_err().to_string();
        assert!(error.contains("exceeds RUNNER_MAX_TIME_LIMIT"), "{error}");
        let error = load(&[
            ("RUNNER_MAX_TESTS", "10000"),
            ("RUNNER_MAX_TIME_LIMIT", "1h"),
            ("RUNNER_TIME_LIMIT", "1s"),
        ])
        .unwrap_err()
        .to_string();
        assert!(error.contains("24 h ceiling"), "{error}");
        let error = load(&[("KAFKA_DLQ_TOPIC", "scripts")]).unwrap_err().to_string();
        assert!(error.contains("KAFKA_DLQ_TOPIC must differ"), "{error}");
    }

    #[test]
    fn the_poll_interval_outlasts_the_longest_allowed_script() {
        let config = load(&[("RUNNER_MAX_TESTS", "10"), ("RUNNER_MAX_TIME_LIMIT", "20s")]).unwrap();
        // A test at the maximum time limit, then its checker program at the default checker limit of 10 s.
        let test = Duration::from_secs(20) + Duration::from_secs(10) + PER_TEST_OVERHEAD;
        let longest = Duration::from_secs(30) + BUILD_OVERHEAD + test * 10;
        assert_eq!(config.executor.script_deadline, longest);
        assert!(config.kafka.max_poll_interval > longest);
    }

    #[test]
    fn a_time_limit_too_long_to_add_up_is_refused_not_a_panic() {
        let error = load(&[("RUNNER_MAX_TIME_LIMIT", "100000000000000h")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("24 h ceiling"), "{error}");
    }
}
