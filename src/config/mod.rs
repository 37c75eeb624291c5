//! Configuration, loaded once at startup from the environment.
//!
//! Variable names and meanings follow SCRC, so an SCRC deployment's environment keeps working, with one deliberate
//! difference: every time and memory limit is finite, so `RUNNER_TIME_LIMIT=0` ("no limit" in SCRC) is refused.
//! Where SCRC silently fell back to a default on a bad value, scrc stops with a message naming the variable and the
//! value. Cross-field rules (for example, that the Kafka poll interval outlasts the longest script) are checked
//! here too.
//!
//! This module only assembles: `env` reads the variables and their defaults, each part beside it checks its own
//! variables and builds its settings (`limits`, `executor`, `kafka`, `sandbox`, `toolchains`, `logging`,
//! `runner`), and `rules` checks how they relate.

pub mod duration;
mod env;
mod executor;
mod kafka;
mod limits;
mod logging;
mod rules;
mod runner;
mod sandbox;
mod toolchains;

pub use runner::default_health_file;

use std::time::Duration;

use crate::adapters::docker::DockerSettings;
use crate::adapters::kafka::KafkaSettings;
use crate::app::{ExecutorSettings, RetryPolicy};
use crate::domain::LimitPolicy;
use env::Env;
use executor::FailureSettings;
use limits::LimitSettings;

pub use kafka::RDKAFKA_PREFIX;
pub use limits::MIN_MEMORY_LIMIT;
pub use logging::{LogFormat, LogSettings};

const MIB: u64 = 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Config {
    /// `RUNNER_INSTANCE_ID`, or `<hostname>-<pid>`: names this runner in container labels, logs, results and the
    /// dead-letter headers, and must be unique among live runners on one Docker engine.
    pub instance: String,
    /// The brokers, topics, consumer group, message size limits (`RUNNER_MAX_MESSAGE_BYTES`, `RUNNER_MAX_RESULT_BYTES`)
    /// and `RDKAFKA_` properties of the Kafka adapters.
    pub kafka: KafkaSettings,
    /// Scripts judged at once (`RUNNER_MAX_PARALLEL`), fair sharing, `SCRIPT_EXPECTED`, `RUNNER_SHUTDOWN_GRACE`.
    pub executor: ExecutorSettings,
    /// The default and maximum limits (`RUNNER_TIME_LIMIT`, `RUNNER_MEMORY_LIMIT`, `RUNNER_MAX_*`), against which each
    /// script's requested limits are resolved.
    pub policy: LimitPolicy,
    /// The judge's retries of a failed runtime call (`RUNNER_RETRY_ATTEMPTS`) and its wait for an open breaker.
    pub retry: RetryPolicy,
    /// `RUNNER_BREAKER_THRESHOLD`: consecutive infrastructure failures that open the circuit breaker and stop fetching.
    pub breaker_threshold: u32,
    /// `RUNNER_BREAKER_COOL_DOWN`: how long the breaker stays open before it lets one probe through.
    pub breaker_cool_down: Duration,
    /// The engine (`DOCKER_HOST`), the sandboxes' hardening, sizes and pool, and each language's images and workdir.
    pub docker: DockerSettings,
    /// `RUNNER_HEALTH_FILE`: where the runner reports its health for `scrc health`.
    pub health_file: std::path::PathBuf,
    /// `RUNNER_HTTP_ADDR`: where `/metrics`, `/healthz` and `/readyz` are served; `None` (set empty) for nowhere.
    pub http_addr: Option<std::net::SocketAddr>,
    /// `KAFKA_EVENTS_TOPIC`: where lifecycle events go; `None` (unset or empty) for no events.
    pub events_topic: Option<String>,
    /// How the runner logs: `LOG_FORMAT`, and the filter from `RUST_LOG` or `LOG_LEVEL`.
    pub log: LogSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid configuration: {0}")]
    Env(#[from] envy::Error),
    #[error("invalid configuration: {name}={value:?}: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
    #[error("invalid configuration: {0}")]
    Rule(String),
}

fn invalid(name: &'static str, value: impl ToString, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        value: value.to_string(),
        reason: reason.into(),
    }
}

impl Config {
    /// Reads the process environment.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first invalid variable and its value.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars())
    }

    /// Reads configuration from `vars`, as if they were the environment.
    ///
    /// Each variable is checked on its own first, part by part, and then the rules between them.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first invalid variable and its value, or the first cross-field rule broken.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let vars = env::latest_values(vars);
        let env = Env::read(&vars)?;
        let properties = kafka::rdkafka_properties(&vars)?;
        let limits = LimitSettings::from_env(&env)?;
        let failures = FailureSettings::from_env(&env)?;
        let shutdown_grace = executor::shutdown_grace(&env)?;
        let max_parallel = executor::max_parallel(&env)?;
        let fair_sharing = executor::FairSharing::from_env(&env, max_parallel)?;
        let instance = runner::instance_id(&env)?;
        let script_deadline = limits.script_deadline();
        let kafka = kafka::kafka_settings(
            &env,
            &instance,
            properties,
            script_deadline,
            max_parallel,
            fair_sharing.taken_at_most(max_parallel),
        )?;
        let log = logging::log_settings(&env)?;
        let docker = sandbox::docker_settings(&env, &instance, &limits, max_parallel)?;
        let http_addr = runner::http_addr(&env)?;
        let events_topic = kafka::events_topic(&env);
        rules::check_cross_field_rules(
            &env,
            &limits,
            shutdown_grace,
            &kafka.scripts_topics,
            events_topic.as_deref(),
        )?;
        Ok(Config {
            executor: executor::executor_settings(&env, max_parallel, fair_sharing, shutdown_grace, script_deadline),
            policy: limits.policy()?,
            retry: failures.retry,
            breaker_threshold: failures.breaker_threshold,
            breaker_cool_down: failures.breaker_cool_down,
            health_file: runner::health_file(&env),
            http_addr,
            events_topic,
            kafka,
            docker,
            log,
            instance,
        })
    }
}

/// The name of every variable the configuration reads, as the environment spells it, besides the `RDKAFKA_`
/// properties ([`reads_variable`] says yes to those too).
pub fn variable_names() -> Vec<String> {
    Env::variable_names()
}

/// Whether the configuration reads the variable `name`: one of [`variable_names`], or an `RDKAFKA_` property.
/// Any other variable is ignored without a word, so a misspelt one would do nothing: a deployment's manifests are
/// checked against this (`tests/kubernetes.rs`).
pub fn reads_variable(name: &str) -> bool {
    name.strip_prefix(RDKAFKA_PREFIX).map_or_else(
        || Env::variable_names().iter().any(|known| known == name),
        |property| !property.is_empty(),
    )
}

/// The variables of `images/local.env`, which point scrc at the images `scripts/build-images.sh` builds from
/// Debian packages. Embedded, so `scrc-demo`, the tests and the benchmarks agree on them wherever they run.
pub fn local_images() -> Vec<(String, String)> {
    include_str!("../../images/local.env")
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect()
}

/// Loads a configuration from `vars` alone, for the tests of every part.
#[cfg(test)]
fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::from_vars(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
}

#[cfg(test)]
mod tests {
    use super::duration::parse_go_duration;
    use super::*;
    use crate::domain::Language;

    #[test]
    fn the_http_listener_and_events_are_configured_or_turned_off() {
        let config = load(&[]).unwrap();
        assert_eq!(config.http_addr, Some("0.0.0.0:9464".parse().unwrap()));
        assert_eq!(config.events_topic, None);
        let config = load(&[("RUNNER_HTTP_ADDR", ""), ("KAFKA_EVENTS_TOPIC", "script-events")]).unwrap();
        assert_eq!(config.http_addr, None);
        assert_eq!(config.events_topic.as_deref(), Some("script-events"));
        let error = load(&[("RUNNER_HTTP_ADDR", "localhost:9464")]).unwrap_err().to_string();
        assert!(error.contains("RUNNER_HTTP_ADDR=\"localhost:9464\""), "{error}");
        let error = load(&[("KAFKA_EVENTS_TOPIC", "script-results")])
            .unwrap_err()
            .to_string();
        assert!(error.contains("KAFKA_EVENTS_TOPIC"), "{error}");
    }

    #[test]
    fn defaults_follow_scrc_with_finite_limits() {
        let config = load(&[]).unwrap();
        assert_eq!(config.kafka.brokers, "kafka:9092");
        assert_eq!(config.kafka.scripts_topics, ["scripts"]);
        assert_eq!(config.kafka.group_id, "scrc-runner");
        assert_eq!(config.kafka.results_topic, "script-results");
        assert_eq!(config.kafka.dlq_topic, "scripts-dlq");
        assert_eq!(config.executor.max_parallel, 1);
        assert_eq!(config.executor.script_expected, None);
        assert_eq!(config.policy.default.time.as_duration(), Duration::from_secs(5));
        assert_eq!(config.policy.default.memory.bytes(), 256 * MIB);
        assert_eq!(config.executor.shutdown_grace, Duration::from_secs(30));
        assert_eq!(config.log.format, LogFormat::Text);
        let python = &config.docker.toolchains[&Language::Python];
        assert_eq!(python.build_image, "python:3.12-alpine");
        assert_eq!(python.run_image, "python:3.12-alpine", "Python runs in its own image");
        assert_eq!(config.docker.toolchains[&Language::Go].run_image, "alpine:3.20");
        assert_eq!(
            config.docker.toolchains[&Language::Java].build_image,
            "eclipse-temurin:21-jdk-alpine"
        );
        assert_eq!(config.docker.toolchains[&Language::Cpp].workdir, "/tmp");
        let javascript = &config.docker.toolchains[&Language::JavaScript];
        assert_eq!(javascript.build_image, "node:20-alpine");
        assert_eq!(
            javascript.run_image, "node:20-alpine",
            "JavaScript runs in its own image"
        );
        assert_eq!(config.docker.toolchains[&Language::Rust].run_image, "alpine:3.20");
        assert_eq!(config.docker.toolchains[&Language::CSharp].build_image, "mono:6.12");
        assert_eq!(config.docker.toolchains.len(), Language::ALL.len());
        assert_eq!(config.docker.sandbox.output_limit, 1024 * 1024);
    }

    #[test]
    fn scrc_style_values_are_read() {
        let config = load(&[
            ("KAFKA_BROKERS", "k1:9092,k2:9092"),
            ("RUNNER_MAX_PARALLEL", "8"),
            ("RUNNER_TIME_LIMIT", "2m30s"),
            ("RUNNER_MAX_TIME_LIMIT", "5m"),
            ("RUNNER_MEMORY_LIMIT", "134217728"),
            ("SCRIPT_EXPECTED", "100"),
            ("LOG_FORMAT", "json"),
        ])
        .unwrap();
        assert_eq!(config.kafka.brokers, "k1:9092,k2:9092");
        assert_eq!(config.executor.max_parallel, 8);
        assert_eq!(config.policy.default.time.as_duration(), Duration::from_secs(150));
        assert_eq!(config.policy.default.memory.bytes(), 128 * MIB);
        assert_eq!(config.executor.script_expected, Some(100));
        assert_eq!(config.log.format, LogFormat::Json);
    }

    #[test]
    fn invalid_values_name_the_variable_and_the_value() {
        let error = load(&[("RUNNER_MAX_PARALLEL", "lots")]).unwrap_err().to_string();
        assert!(
            error.contains("RUNNER_MAX_PARALLEL") && error.contains("lots"),
            "{error}"
        );
        let error = load(&[("RUNNER_TIME_LIMIT", "5")]).unwrap_err().to_string();
        assert!(
            error.contains("RUNNER_TIME_LIMIT=\"5\"") && error.contains("missing unit"),
            "{error}"
        );
        let error = load(&[("RUNNER_TIME_LIMIT", "0")]).unwrap_err().to_string();
        assert!(
            error.contains("RUNNER_TIME_LIMIT=\"0\"") && error.contains("always enforces"),
            "{error}"
        );
        let error = load(&[("RUNNER_MEMORY_LIMIT", "0")]).unwrap_err().to_string();
        assert!(error.contains("RUNNER_MEMORY_LIMIT=\"0\""), "{error}");
        let error = load(&[("RUNNER_MAX_PARALLEL", "0")]).unwrap_err().to_string();
        assert!(error.contains("RUNNER_MAX_PARALLEL=\"0\""), "{error}");
        let error = load(&[("LOG_FORMAT", "xml")]).unwrap_err().to_string();
        assert!(error.contains("LOG_FORMAT=\"xml\""), "{error}");
        let error = load(&[("RUNNER_INSTANCE_ID", "a b")]).unwrap_err().to_string();
        assert!(error.contains("RUNNER_INSTANCE_ID=\"a b\""), "{error}");
    }

    #[test]
    fn the_variables_read_are_the_environments_own_names_and_the_rdkafka_properties() {
        let names = variable_names();
        for name in [
            "KAFKA_BROKERS",
            "RUNNER_MAX_PARALLEL",
            "PYTHON_RUN_IMAGE",
            "CSHARP_WORKDIR",
            "RUST_LOG",
        ] {
            assert!(names.iter().any(|known| known == name), "{name} in {names:?}");
            assert!(reads_variable(name), "{name}");
        }
        assert!(reads_variable("RDKAFKA_SASL_USERNAME"));
        for unknown in [
            "RUNNER_MAX_PARALEL",
            "KAFKA_BROKER",
            "RDKAFKA_",
            "HOSTNAME",
            "runner_max_parallel",
        ] {
            assert!(!reads_variable(unknown), "{unknown}");
        }
        // Every name really is read: set to a value of the wrong type, it fails the start and is named.
        for name in [
            "RUNNER_MAX_PARALLEL",
            "RUNNER_MEMORY_LIMIT",
            "RUNNER_SHARED_TOOLCHAINS",
            "RUNNER_POOL_IDLE",
        ] {
            let error = load(&[(name, "not-a-number")]).unwrap_err().to_string();
            assert!(
                error.contains(&name.to_ascii_lowercase()) || error.contains(name),
                "{name}: {error}"
            );
        }
    }

    #[test]
    fn the_longest_shutdown_fits_in_composes_stop_grace_period() {
        // Compose kills the runner after stop_grace_period; a shutdown cut short there commits nothing.
        let compose = include_str!("../../docker-compose.yml");
        let period = compose
            .lines()
            .find_map(|line| line.trim().strip_prefix("stop_grace_period:"))
            .map(|value| parse_go_duration(value.trim()).unwrap())
            .expect("docker-compose.yml sets stop_grace_period for the runner");
        let longest = load(&[]).unwrap().executor.longest_shutdown() + crate::adapters::docker::CLEANUP_PATIENCE;
        assert!(
            longest + Duration::from_secs(3) <= period,
            "shutdown may take {longest:?}, too close to compose's {period:?}"
        );
    }
}
