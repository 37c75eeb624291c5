//! Kafka's settings: the brokers, group and topics, the message sizes, librdkafka properties passed through with
//! `RDKAFKA_` variables, and a poll interval that outlasts the longest script.

use std::time::Duration;

use super::env::Env;
use super::{ConfigError, invalid};
use crate::adapters::kafka::{KafkaSettings, LanePolicy, PROTECTED_PROPERTIES};

/// Prefix of the variables passed through to librdkafka: `RDKAFKA_SECURITY_PROTOCOL=SASL_SSL` sets
/// `security.protocol`.
pub const RDKAFKA_PREFIX: &str = "RDKAFKA_";

/// librdkafka's ceiling for `max.poll.interval.ms`.
pub(super) const MAX_POLL_INTERVAL_CEILING: Duration = Duration::from_secs(24 * 3600);

/// Slack between the longest script and `max.poll.interval.ms`, so that a script finishing at its deadline is
/// published and committed before the group gives its partitions away.
const POLL_INTERVAL_MARGIN: Duration = Duration::from_secs(60);

/// The smallest `RUNNER_MAX_MESSAGE_BYTES`: below it even a short script would be dead-lettered.
const MIN_MESSAGE_BYTES: usize = 1024;

/// The smallest `RUNNER_MAX_RESULT_BYTES`: a shortened result and a dead letter must still hold scrc's own fields
/// and headers.
const MIN_RESULT_BYTES: usize = 16 * 1024;

/// The most lanes `KAFKA_TOPIC` may list: priority classes, not a topic per user; each lane holds up to one
/// message per slot.
const MAX_LANES: usize = 8;

/// The largest weight of `KAFKA_TOPIC_WEIGHTS`: ratios beyond 1000 to 1 are strict priority in all but name.
const MAX_LANE_WEIGHT: u32 = 1000;

/// The consumer's `max.poll.interval.ms`: longer than the longest script, so a slow script never costs the
/// instance its group membership.
pub(super) fn max_poll_interval(script_deadline: Duration) -> Duration {
    script_deadline.saturating_add(POLL_INTERVAL_MARGIN)
}

/// `RUNNER_MAX_FILES` may allow this many files per program at most: each is a frame to the sandbox and an entry
/// of the artifact cache's key.
const MAX_FILES_RANGE: std::ops::RangeInclusive<usize> = 1..=4096;

/// `RUNNER_MAX_FILES`, within [`MAX_FILES_RANGE`].
fn max_files(env: &Env) -> Result<usize, ConfigError> {
    if MAX_FILES_RANGE.contains(&env.runner_max_files) {
        return Ok(env.runner_max_files);
    }
    Err(invalid(
        "RUNNER_MAX_FILES",
        env.runner_max_files,
        format!(
            "must be between {} and {}",
            MAX_FILES_RANGE.start(),
            MAX_FILES_RANGE.end()
        ),
    ))
}

/// # Errors
/// [`ConfigError::Invalid`] naming the first empty or invalid name, invalid weights or too small a size.
pub(super) fn kafka_settings(
    env: &Env,
    instance: &str,
    properties: Vec<(String, String)>,
    script_deadline: Duration,
    max_parallel: usize,
    hold_per_lane: usize,
) -> Result<KafkaSettings, ConfigError> {
    if env.runner_max_message_bytes < MIN_MESSAGE_BYTES {
        return Err(invalid(
            "RUNNER_MAX_MESSAGE_BYTES",
            env.runner_max_message_bytes,
            format!("must be at least {MIN_MESSAGE_BYTES}"),
        ));
    }
    if env.runner_max_result_bytes < MIN_RESULT_BYTES {
        return Err(invalid(
            "RUNNER_MAX_RESULT_BYTES",
            env.runner_max_result_bytes,
            format!("must be at least {MIN_RESULT_BYTES}"),
        ));
    }
    let scripts_topics = scripts_topics(env)?;
    let lane_policy = lane_policy(env, scripts_topics.len())?;
    for (name, value) in [
        ("KAFKA_BROKERS", &env.kafka_brokers),
        ("KAFKA_GROUP_ID", &env.kafka_group_id),
        ("KAFKA_RESULTS_TOPIC", &env.kafka_results_topic),
        ("KAFKA_DLQ_TOPIC", &env.kafka_dlq_topic),
    ] {
        if value.trim().is_empty() {
            return Err(invalid(name, value, "must not be empty"));
        }
    }
    Ok(KafkaSettings {
        brokers: env.kafka_brokers.clone(),
        scripts_topics,
        lane_policy,
        group_id: env.kafka_group_id.clone(),
        results_topic: env.kafka_results_topic.clone(),
        dlq_topic: env.kafka_dlq_topic.clone(),
        client_id: instance.to_owned(),
        properties,
        max_message_bytes: env.runner_max_message_bytes,
        max_files: max_files(env)?,
        max_result_bytes: env.runner_max_result_bytes,
        max_poll_interval: max_poll_interval(script_deadline),
        max_parallel,
        hold_per_lane,
    })
}

/// `KAFKA_TOPIC`: one scripts topic, or a comma-separated list of them, the priority lanes, first lane first.
///
/// # Errors
/// [`ConfigError::Invalid`] for an empty list or name, a name Kafka would refuse, a topic listed twice or more
/// than [`MAX_LANES`] topics.
fn scripts_topics(env: &Env) -> Result<Vec<String>, ConfigError> {
    let value = &env.kafka_topic;
    let topics: Vec<String> = value.split(',').map(|topic| topic.trim().to_owned()).collect();
    for (index, topic) in topics.iter().enumerate() {
        if topic.is_empty() {
            return Err(invalid(
                "KAFKA_TOPIC",
                value,
                "must name a topic, or several separated by commas",
            ));
        }
        // Kafka's own rule for topic names, so that a typo is named here rather than by a broker's refusal.
        if topic.len() > 249
            || topic == "."
            || topic == ".."
            || !topic.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return Err(invalid(
                "KAFKA_TOPIC",
                value,
                format!("{topic:?} is not a Kafka topic name (at most 249 of a-z, A-Z, 0-9, '.', '_' and '-')"),
            ));
        }
        if topics[..index].contains(topic) {
            return Err(invalid("KAFKA_TOPIC", value, format!("lists {topic:?} twice")));
        }
    }
    if topics.len() > MAX_LANES {
        return Err(invalid(
            "KAFKA_TOPIC",
            value,
            format!("lists {} topics; at most {MAX_LANES} priority lanes", topics.len()),
        ));
    }
    Ok(topics)
}

/// `KAFKA_TOPIC_WEIGHTS`: unset or empty for strict priority, or one weight per topic of `KAFKA_TOPIC`.
///
/// # Errors
/// [`ConfigError::Invalid`] for a weight that is not a whole number from 1 to [`MAX_LANE_WEIGHT`], or a count
/// that differs from the topics'.
fn lane_policy(env: &Env, lanes: usize) -> Result<LanePolicy, ConfigError> {
    let Some(value) = env
        .kafka_topic_weights
        .as_deref()
        .filter(|value| !value.trim().is_empty())
    else {
        return Ok(LanePolicy::Strict);
    };
    let weights = value
        .split(',')
        .map(|weight| match weight.trim().parse::<u32>() {
            Ok(weight) if (1..=MAX_LANE_WEIGHT).contains(&weight) => Ok(weight),
            _ => Err(invalid(
                "KAFKA_TOPIC_WEIGHTS",
                value,
                format!(
                    "{:?} is not a weight: each is a whole number from 1 to {MAX_LANE_WEIGHT}",
                    weight.trim()
                ),
            )),
        })
        .collect::<Result<Vec<u32>, ConfigError>>()?;
    if weights.len() != lanes {
        return Err(invalid(
            "KAFKA_TOPIC_WEIGHTS",
            value,
            format!(
                "gives {} weights for the {lanes} topics of KAFKA_TOPIC: one each",
                weights.len()
            ),
        ));
    }
    Ok(LanePolicy::Weighted(weights))
}

/// `KAFKA_EVENTS_TOPIC`, trimmed; `None` when unset or empty.
pub(super) fn events_topic(env: &Env) -> Option<String> {
    env.kafka_events_topic
        .as_deref()
        .map(|topic| topic.trim().to_owned())
        .filter(|topic| !topic.is_empty())
}

/// `RDKAFKA_SASL_MECHANISMS=PLAIN` becomes `("sasl.mechanisms", "PLAIN")`.
///
/// # Errors
/// [`ConfigError::Rule`] for a variable that would override a property scrc's delivery guarantees rest on.
pub(super) fn rdkafka_properties(vars: &[(String, String)]) -> Result<Vec<(String, String)>, ConfigError> {
    let mut properties = Vec::new();
    for (name, value) in vars {
        let Some(property) = name.strip_prefix(RDKAFKA_PREFIX) else {
            continue;
        };
        let property = property.to_ascii_lowercase().replace('_', ".");
        if property.is_empty() {
            continue;
        }
        if property == "auto.offset.reset" {
            return Err(ConfigError::Rule(format!(
                "{name} would override auto.offset.reset, which scrc sets to earliest: with latest, scripts sent \
                 before the group first commits (or after its committed offsets expire) would never be judged"
            )));
        }
        if PROTECTED_PROPERTIES.contains(&property.as_str()) {
            return Err(ConfigError::Rule(format!(
                "{name} would override {property}, which scrc sets itself (use KAFKA_BROKERS and KAFKA_GROUP_ID for \
                 the bootstrap list and group; idempotence, acks=all and manual offset storage are what make \
                 delivery at-least-once)"
            )));
        }
        properties.push((property, value.clone()));
    }
    properties.sort();
    Ok(properties)
}

#[cfg(test)]
mod tests {
    use crate::config::load;

    #[test]
    fn rdkafka_variables_pass_through_but_cannot_weaken_delivery() {
        let config = load(&[
            ("RDKAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
            ("RDKAFKA_SASL_MECHANISMS", "SCRAM-SHA-512"),
            ("RDKAFKA_SSL_CA_LOCATION", "/etc/ca.pem"),
        ])
        .unwrap();
        assert_eq!(
            config.kafka.properties,
            [
                ("sasl.mechanisms".to_owned(), "SCRAM-SHA-512".to_owned()),
                ("security.protocol".to_owned(), "SASL_SSL".to_owned()),
                ("ssl.ca.location".to_owned(), "/etc/ca.pem".to_owned()),
            ]
        );
        let error = load(&[("RDKAFKA_ENABLE_AUTO_OFFSET_STORE", "true")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("enable.auto.offset.store"), "{error}");
    }

    #[test]
    fn kafka_topic_lists_priority_lanes_with_strict_or_weighted_order() {
        use crate::adapters::kafka::LanePolicy;

        let config = load(&[]).unwrap();
        assert_eq!(config.kafka.scripts_topics, ["scripts"]);
        assert_eq!(config.kafka.lane_policy, LanePolicy::Strict);
        let config = load(&[("KAFKA_TOPIC", "scripts-interactive, scripts-batch")]).unwrap();
        assert_eq!(config.kafka.scripts_topics, ["scripts-interactive", "scripts-batch"]);
        assert_eq!(config.kafka.lane_policy, LanePolicy::Strict);
        let config = load(&[
            ("KAFKA_TOPIC", "scripts-interactive,scripts-batch"),
            ("KAFKA_TOPIC_WEIGHTS", "4, 1"),
        ])
        .unwrap();
        assert_eq!(config.kafka.lane_policy, LanePolicy::Weighted(vec![4, 1]));
        for (topic, weights, says) in [
            ("a,,b", "", "must name a topic"),
            ("a,b,a", "", "twice"),
            ("a b", "", "not a Kafka topic name"),
            ("a,b,c,d,e,f,g,h,i", "", "at most 8"),
            ("a,b", "4", "one each"),
            ("a,b", "4,0", "whole number from 1"),
            ("a,b", "4,x", "whole number from 1"),
        ] {
            let error = load(&[("KAFKA_TOPIC", topic), ("KAFKA_TOPIC_WEIGHTS", weights)])
                .unwrap_err()
                .to_string();
            assert!(
                error.contains(says) && error.contains("KAFKA_TOPIC"),
                "{topic} {weights}: {error}"
            );
        }
    }

    #[test]
    fn each_lane_holds_what_the_executor_may_take_before_it_pauses() {
        let config = load(&[("RUNNER_MAX_PARALLEL", "3")]).unwrap();
        assert_eq!(config.kafka.hold_per_lane, 3, "no cap: the slots");
        let config = load(&[("RUNNER_MAX_PARALLEL", "3"), ("RUNNER_TENANT_MAX_PARALLEL", "1")]).unwrap();
        assert_eq!(
            config.kafka.hold_per_lane,
            3 + 12,
            "with a cap: the slots and the lookahead"
        );
        let config = load(&[
            ("RUNNER_MAX_PARALLEL", "3"),
            ("RUNNER_TENANT_MAX_PARALLEL", "1"),
            ("RUNNER_TENANT_LOOKAHEAD", "5"),
        ])
        .unwrap();
        assert_eq!(config.kafka.hold_per_lane, 8);
    }

    #[test]
    fn auto_offset_reset_cannot_be_overridden() {
        for value in ["latest", "earliest", "error"] {
            let error = load(&[("RDKAFKA_AUTO_OFFSET_RESET", value)]).unwrap_err().to_string();
            assert!(
                error.contains("RDKAFKA_AUTO_OFFSET_RESET") && error.contains("auto.offset.reset"),
                "{error}"
            );
            assert!(error.contains("latest"), "says why: {error}");
        }
    }
}
