//! The simulator's settings: SCRC's environment variables and defaults, and a flag for each
//! (`--kafka-broker host:9092` sets what `KAFKA_BROKER` sets; flags win over the environment).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq)]
pub struct SimulatorConfig {
    /// Iterations of the whole library; `None` runs until interrupted (`SCRIPT_ITERATIONS` <= 0).
    pub iterations: Option<u64>,
    /// Pause between iterations.
    pub interval: Duration,
    /// How long to wait for the last results after the last send.
    pub result_wait_timeout: Duration,
    /// Every result received is appended here as one JSON line.
    pub result_log_path: PathBuf,
    pub broker: String,
    pub topic: String,
    pub results_topic: String,
    pub consumer_group: String,
    pub poll_timeout: Duration,
}

#[derive(Debug, Deserialize)]
struct Env {
    #[serde(default = "defaults::iterations")]
    script_iterations: i64,
    #[serde(default = "defaults::interval")]
    script_interval_seconds: f64,
    #[serde(default = "defaults::wait")]
    result_wait_timeout_seconds: f64,
    #[serde(default = "defaults::log_path")]
    result_consumer_log_path: String,
    #[serde(default = "defaults::broker")]
    kafka_broker: String,
    #[serde(default = "defaults::topic")]
    kafka_topic: String,
    #[serde(default = "defaults::results_topic")]
    kafka_results_topic: String,
    #[serde(default = "defaults::group")]
    kafka_consumer_group: String,
    #[serde(default = "defaults::poll")]
    consumer_poll_timeout_ms: u64,
}

/// SCRC's simulator defaults.
mod defaults {
    pub const fn iterations() -> i64 {
        1
    }
    pub const fn interval() -> f64 {
        1.0
    }
    pub const fn wait() -> f64 {
        60.0
    }
    pub fn log_path() -> String {
        "consumer.log".into()
    }
    pub fn broker() -> String {
        "localhost:9092".into()
    }
    pub fn topic() -> String {
        "scripts".into()
    }
    pub fn results_topic() -> String {
        "script-results".into()
    }
    pub fn group() -> String {
        "scrc-simulator".into()
    }
    pub const fn poll() -> u64 {
        1000
    }
}

/// The variables the simulator reads; each also has a flag.
pub const VARIABLES: [&str; 9] = [
    "SCRIPT_ITERATIONS",
    "SCRIPT_INTERVAL_SECONDS",
    "RESULT_WAIT_TIMEOUT_SECONDS",
    "RESULT_CONSUMER_LOG_PATH",
    "KAFKA_BROKER",
    "KAFKA_TOPIC",
    "KAFKA_RESULTS_TOPIC",
    "KAFKA_CONSUMER_GROUP",
    "CONSUMER_POLL_TIMEOUT_MS",
];

#[derive(Debug, thiserror::Error)]
pub enum SimulatorConfigError {
    #[error("invalid simulator configuration: {0}")]
    Env(#[from] envy::Error),
    #[error("invalid simulator configuration: {0}")]
    Invalid(String),
    #[error("{0}\nflags: {flags}", flags = flag_names())]
    Usage(String),
}

fn flag_names() -> String {
    VARIABLES.iter().map(|v| flag_for(v)).collect::<Vec<_>>().join(" ")
}

fn flag_for(variable: &str) -> String {
    format!("--{}", variable.to_ascii_lowercase().replace('_', "-"))
}

impl SimulatorConfig {
    /// Reads the environment, then applies `args` (`--flag value` pairs) over it.
    ///
    /// # Errors
    /// [`SimulatorConfigError`] naming the bad variable or flag.
    pub fn load(
        vars: impl IntoIterator<Item = (String, String)>,
        args: &[String],
    ) -> Result<Self, SimulatorConfigError> {
        let mut vars: std::collections::BTreeMap<String, String> = vars.into_iter().collect();
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let variable = VARIABLES
                .iter()
                .find(|v| flag_for(v) == *flag)
                .ok_or_else(|| SimulatorConfigError::Usage(format!("unknown flag {flag:?}")))?;
            let value = args
                .next()
                .ok_or_else(|| SimulatorConfigError::Usage(format!("{flag} needs a value")))?;
            vars.insert((*variable).to_owned(), value.clone());
        }
        let env: Env = envy::from_iter(vars)?;
        let seconds = |name: &str, value: f64| {
            Duration::try_from_secs_f64(value)
                .map_err(|_| SimulatorConfigError::Invalid(format!("{name}={value}: expected seconds >= 0")))
        };
        if env.kafka_broker.trim().is_empty() {
            return Err(SimulatorConfigError::Invalid("KAFKA_BROKER must not be empty".into()));
        }
        Ok(Self {
            iterations: u64::try_from(env.script_iterations).ok().filter(|&n| n > 0),
            interval: seconds("SCRIPT_INTERVAL_SECONDS", env.script_interval_seconds)?,
            result_wait_timeout: seconds("RESULT_WAIT_TIMEOUT_SECONDS", env.result_wait_timeout_seconds)?,
            result_log_path: PathBuf::from(env.result_consumer_log_path),
            broker: env.kafka_broker,
            topic: env.kafka_topic,
            results_topic: env.kafka_results_topic,
            consumer_group: env.kafka_consumer_group,
            poll_timeout: Duration::from_millis(env.consumer_poll_timeout_ms.max(1)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()
    }

    #[test]
    fn defaults_are_scrcs() {
        let config = SimulatorConfig::load(vec![], &[]).unwrap();
        assert_eq!(config.iterations, Some(1));
        assert_eq!(config.interval, Duration::from_secs(1));
        assert_eq!(config.result_wait_timeout, Duration::from_secs(60));
        assert_eq!(config.result_log_path, PathBuf::from("consumer.log"));
        assert_eq!(config.broker, "localhost:9092");
        assert_eq!(config.topic, "scripts");
        assert_eq!(config.results_topic, "script-results");
        assert_eq!(config.consumer_group, "scrc-simulator");
        assert_eq!(config.poll_timeout, Duration::from_millis(1000));
    }

    #[test]
    fn flags_override_the_environment() {
        let args: Vec<String> = [
            "--kafka-broker",
            "b:1",
            "--script-iterations",
            "0",
            "--script-interval-seconds",
            "0.5",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let config =
            SimulatorConfig::load(vars(&[("KAFKA_BROKER", "a:1"), ("SCRIPT_ITERATIONS", "3")]), &args).unwrap();
        assert_eq!(config.broker, "b:1");
        assert_eq!(config.iterations, None, "<= 0 means until interrupted");
        assert_eq!(config.interval, Duration::from_millis(500));
    }

    #[test]
    fn bad_values_and_flags_are_refused() {
        let error = SimulatorConfig::load(vars(&[("SCRIPT_ITERATIONS", "many")]), &[]).unwrap_err();
        assert!(error.to_string().contains("SCRIPT_ITERATIONS"), "{error}");
        let error = SimulatorConfig::load(vec![], &["--nope".into(), "1".into()]).unwrap_err();
        assert!(error.to_string().contains("unknown flag \"--nope\""), "{error}");
        let error = SimulatorConfig::load(vars(&[("RESULT_WAIT_TIMEOUT_SECONDS", "-1")]), &[]).unwrap_err();
        assert!(error.to_string().contains("RESULT_WAIT_TIMEOUT_SECONDS"), "{error}");
    }
}
