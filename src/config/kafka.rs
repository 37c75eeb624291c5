//! Kafka's settings: the brokers, group and topics, the message sizes, librdkafka properties passed through with
//! `RDKAFKA_` variables, and a poll interval that outlasts the longest script.

use std::time::Duration;

use super::env::Env;
use super::{ConfigError, invalid};
use crate::adapters::kafka::{KafkaSettings, PROTECTED_PROPERTIES};

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

/// The consumer's `max.poll.interval.ms`: longer than the longest script, so a slow script never costs the
/// instance its group membership.
pub(super) fn max_poll_interval(script_deadline: Duration) -> Duration {
    script_deadline.saturating_add(POLL_INTERVAL_MARGIN)
}

/// # Errors
/// [`ConfigError::Invalid`] naming the first empty name or too small a size.
pub(super) fn kafka_settings(
    env: &Env,
    instance: &str,
    properties: Vec<(String, String)>,
    script_deadline: Duration,
    max_parallel: usize,
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
    for (name, value) in [
        ("KAFKA_BROKERS", &env.kafka_brokers),
        ("KAFKA_TOPIC", &env.kafka_topic),
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
        scripts_topic: env.kafka_topic.clone(),
        group_id: env.kafka_group_id.clone(),
        results_topic: env.kafka_results_topic.clone(),
        dlq_topic: env.kafka_dlq_topic.clone(),
        client_id: instance.to_owned(),
        properties,
        max_message_bytes: env.runner_max_message_bytes,
        max_result_bytes: env.runner_max_result_bytes,
        max_poll_interval: max_poll_interval(script_deadline),
        max_parallel,
    })
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
