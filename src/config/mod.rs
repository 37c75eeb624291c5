//! Configuration, loaded once at startup from the environment.
//!
//! Variable names and meanings follow SCRC, so an SCRC deployment's environment keeps working, with one deliberate
//! difference: every time and memory limit is finite, so `RUNNER_TIME_LIMIT=0` ("no limit" in SCRC) is refused.
//! Where SCRC silently fell back to a default on a bad value, scrc stops with a message naming the variable and the
//! value. Cross-field rules (for example, that the Kafka poll interval outlasts the longest script) are checked
//! here too.

pub mod duration;

use std::time::Duration;

use serde::Deserialize;

use crate::adapters::docker::DockerSettings;
use crate::adapters::docker::hardening::HardeningSettings;
use crate::adapters::docker::languages::Toolchain;
use crate::adapters::docker::sandbox::{SandboxMode, SandboxSettings};
use crate::adapters::kafka::{KafkaSettings, PROTECTED_PROPERTIES};
use crate::app::{Backoff, ExecutorSettings, RetryPolicy};
use crate::domain::{Language, LimitPolicy, Limits, MemoryLimit, TimeLimit};
use duration::parse_go_duration;

const MIB: u64 = 1024 * 1024;

/// Prefix of the variables passed through to librdkafka: `RDKAFKA_SECURITY_PROTOCOL=SASL_SSL` sets
/// `security.protocol`.
pub const RDKAFKA_PREFIX: &str = "RDKAFKA_";

/// Docker refuses memory limits under 6 MiB.
pub const MIN_MEMORY_LIMIT: u64 = 6 * MIB;

/// librdkafka's ceiling for `max.poll.interval.ms`.
const MAX_POLL_INTERVAL_CEILING: Duration = Duration::from_secs(24 * 3600);

/// Time each test may spend on sandbox overhead (container creation, start, removal) on top of its limit when
/// sizing the per-script deadline.
const PER_TEST_OVERHEAD: Duration = Duration::from_secs(10);

/// Time a build may spend on overhead and retries on top of the compile limit.
const BUILD_OVERHEAD: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct Config {
    pub instance: String,
    pub kafka: KafkaSettings,
    pub executor: ExecutorSettings,
    pub policy: LimitPolicy,
    pub retry: RetryPolicy,
    pub breaker_threshold: u32,
    pub breaker_cool_down: Duration,
    pub docker: DockerSettings,
    /// `RUNNER_HEALTH_FILE`: where the runner reports its health for `scrc health`.
    pub health_file: std::path::PathBuf,
    /// `RUNNER_HTTP_ADDR`: where `/metrics`, `/healthz` and `/readyz` are served; `None` (set empty) for nowhere.
    pub http_addr: Option<std::net::SocketAddr>,
    /// `KAFKA_EVENTS_TOPIC`: where lifecycle events go; `None` (unset or empty) for no events.
    pub events_topic: Option<String>,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `scrc=debug,rdkafka=warn`.
    pub filter: String,
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

/// The environment as envy reads it: SCRC's names, scrc's additions, and the defaults.
#[derive(Debug, Deserialize)]
struct Env {
    #[serde(default = "defaults::kafka_brokers")]
    kafka_brokers: String,
    #[serde(default = "defaults::kafka_topic")]
    kafka_topic: String,
    #[serde(default = "defaults::kafka_group_id")]
    kafka_group_id: String,
    #[serde(default = "defaults::kafka_results_topic")]
    kafka_results_topic: String,
    #[serde(default = "defaults::kafka_dlq_topic")]
    kafka_dlq_topic: String,
    #[serde(default = "defaults::one")]
    runner_max_parallel: usize,
    #[serde(default = "defaults::runner_time_limit")]
    runner_time_limit: String,
    #[serde(default = "defaults::runner_memory_limit")]
    runner_memory_limit: u64,
    #[serde(default = "defaults::runner_max_time_limit")]
    runner_max_time_limit: String,
    #[serde(default = "defaults::runner_max_memory_limit")]
    runner_max_memory_limit: u64,
    #[serde(default = "defaults::runner_max_tests")]
    runner_max_tests: usize,
    #[serde(default = "defaults::runner_compile_time_limit")]
    runner_compile_time_limit: String,
    #[serde(default = "defaults::runner_compile_memory_limit")]
    runner_compile_memory_limit: u64,
    #[serde(default)]
    script_expected: u64,
    #[serde(default = "defaults::runner_shutdown_grace")]
    runner_shutdown_grace: String,
    #[serde(default)]
    runner_instance_id: Option<String>,
    #[serde(default = "defaults::runner_max_message_bytes")]
    runner_max_message_bytes: usize,
    #[serde(default = "defaults::runner_max_result_bytes")]
    runner_max_result_bytes: usize,
    #[serde(default = "defaults::runner_retry_attempts")]
    runner_retry_attempts: u32,
    #[serde(default = "defaults::runner_breaker_threshold")]
    runner_breaker_threshold: u32,
    #[serde(default = "defaults::runner_breaker_cool_down")]
    runner_breaker_cool_down: String,
    #[serde(default = "defaults::runner_output_limit")]
    runner_output_limit: usize,
    #[serde(default = "defaults::runner_pids_limit")]
    runner_pids_limit: i64,
    #[serde(default = "defaults::runner_cpus")]
    runner_cpus: f64,
    #[serde(default = "defaults::runner_nofile_limit")]
    runner_nofile_limit: i64,
    #[serde(default = "defaults::runner_file_size_limit")]
    runner_file_size_limit: i64,
    #[serde(default = "defaults::runner_tmpfs_size")]
    runner_tmpfs_size: u64,
    #[serde(default = "defaults::runner_build_tmpfs_size")]
    runner_build_tmpfs_size: u64,
    #[serde(default = "defaults::runner_artifact_limit")]
    runner_artifact_limit: usize,
    #[serde(default = "defaults::runner_artifact_cache_bytes")]
    runner_artifact_cache_bytes: u64,
    #[serde(default = "defaults::runner_shared_toolchains")]
    runner_shared_toolchains: bool,
    #[serde(default = "defaults::python_image")]
    python_image: String,
    #[serde(default)]
    python_run_image: Option<String>,
    #[serde(default = "defaults::workdir")]
    python_workdir: String,
    #[serde(default = "defaults::go_image")]
    go_image: String,
    #[serde(default = "defaults::alpine")]
    go_run_image: String,
    #[serde(default = "defaults::workdir")]
    go_workdir: String,
    #[serde(default = "defaults::gcc_image")]
    c_image: String,
    #[serde(default = "defaults::alpine")]
    c_run_image: String,
    #[serde(default = "defaults::workdir")]
    c_workdir: String,
    #[serde(default = "defaults::gcc_image")]
    cpp_image: String,
    #[serde(default = "defaults::alpine")]
    cpp_run_image: String,
    #[serde(default = "defaults::workdir")]
    cpp_workdir: String,
    #[serde(default = "defaults::java_image")]
    java_image: String,
    #[serde(default = "defaults::java_run_image")]
    java_run_image: String,
    #[serde(default = "defaults::workdir")]
    java_workdir: String,
    #[serde(default = "defaults::javascript_image")]
    javascript_image: String,
    #[serde(default)]
    javascript_run_image: Option<String>,
    #[serde(default = "defaults::workdir")]
    javascript_workdir: String,
    #[serde(default = "defaults::ruby_image")]
    ruby_image: String,
    #[serde(default)]
    ruby_run_image: Option<String>,
    #[serde(default = "defaults::workdir")]
    ruby_workdir: String,
    #[serde(default = "defaults::php_image")]
    php_image: String,
    #[serde(default)]
    php_run_image: Option<String>,
    #[serde(default = "defaults::workdir")]
    php_workdir: String,
    #[serde(default = "defaults::rust_image")]
    rust_image: String,
    #[serde(default = "defaults::alpine")]
    rust_run_image: String,
    #[serde(default = "defaults::workdir")]
    rust_workdir: String,
    #[serde(default = "defaults::javascript_image")]
    typescript_image: String,
    #[serde(default = "defaults::javascript_image")]
    typescript_run_image: String,
    #[serde(default = "defaults::workdir")]
    typescript_workdir: String,
    #[serde(default = "defaults::java_image")]
    kotlin_image: String,
    #[serde(default = "defaults::java_run_image")]
    kotlin_run_image: String,
    #[serde(default = "defaults::workdir")]
    kotlin_workdir: String,
    #[serde(default = "defaults::csharp_image")]
    csharp_image: String,
    #[serde(default = "defaults::csharp_image")]
    csharp_run_image: String,
    #[serde(default = "defaults::workdir")]
    csharp_workdir: String,
    #[serde(default)]
    docker_host: Option<String>,
    #[serde(default)]
    runner_health_file: Option<String>,
    #[serde(default = "defaults::runner_http_addr")]
    runner_http_addr: String,
    #[serde(default)]
    kafka_events_topic: Option<String>,
    #[serde(default)]
    log_format: Option<String>,
    #[serde(default)]
    runner_sandbox: Option<String>,
    #[serde(default)]
    runner_pool_idle: Option<usize>,
    #[serde(default)]
    log_level: Option<String>,
    #[serde(default)]
    rust_log: Option<String>,
}

/// Defaults, named so the README and the code say the same thing.
mod defaults {
    use super::MIB;

    pub fn kafka_brokers() -> String {
        "kafka:9092".into()
    }
    pub fn kafka_topic() -> String {
        "scripts".into()
    }
    pub fn kafka_group_id() -> String {
        "scrc-runner".into()
    }
    pub fn kafka_results_topic() -> String {
        "script-results".into()
    }
    pub fn kafka_dlq_topic() -> String {
        "scripts-dlq".into()
    }
    /// Port 9464, which Prometheus' list of default exporter ports gives the OpenTelemetry exporter; all interfaces,
    /// so that Prometheus reaches a containerised runner.
    pub fn runner_http_addr() -> String {
        "0.0.0.0:9464".into()
    }
    pub const fn one() -> usize {
        1
    }
    /// SCRC's default is 0, "no limit"; scrc always has one.
    pub fn runner_time_limit() -> String {
        "5s".into()
    }
    /// SCRC's default is 0, "no limit"; scrc always has one.
    pub const fn runner_memory_limit() -> u64 {
        256 * MIB
    }
    pub fn runner_max_time_limit() -> String {
        "20s".into()
    }
    pub const fn runner_max_memory_limit() -> u64 {
        1024 * MIB
    }
    pub const fn runner_max_tests() -> usize {
        128
    }
    pub fn runner_compile_time_limit() -> String {
        "30s".into()
    }
    pub const fn runner_compile_memory_limit() -> u64 {
        1024 * MIB
    }
    pub fn runner_shutdown_grace() -> String {
        "30s".into()
    }
    /// The broker's default `message.max.bytes` is 1 MiB, so larger scripts could not arrive anyway.
    pub const fn runner_max_message_bytes() -> usize {
        1024 * 1024
    }
    /// Under the producer's default `message.max.bytes` (1,000,000) with room for the key and headers.
    pub const fn runner_max_result_bytes() -> usize {
        950_000
    }
    pub const fn runner_retry_attempts() -> u32 {
        3
    }
    pub const fn runner_breaker_threshold() -> u32 {
        5
    }
    pub fn runner_breaker_cool_down() -> String {
        "30s".into()
    }
    pub const fn runner_output_limit() -> usize {
        1024 * 1024
    }
    /// Processes and threads: a JVM needs about 20, a fork bomb is stopped here.
    pub const fn runner_pids_limit() -> i64 {
        128
    }
    pub const fn runner_cpus() -> f64 {
        1.0
    }
    pub const fn runner_nofile_limit() -> i64 {
        256
    }
    pub const fn runner_file_size_limit() -> i64 {
        64 * MIB as i64
    }
    pub const fn runner_tmpfs_size() -> u64 {
        64 * MIB
    }
    pub const fn runner_build_tmpfs_size() -> u64 {
        512 * MIB
    }
    pub const fn runner_artifact_limit() -> usize {
        64 * 1024 * 1024
    }
    /// Room for a few hundred compiled programs (a static C++ or Go binary is 1–2 MiB).
    pub const fn runner_artifact_cache_bytes() -> u64 {
        256 * MIB
    }
    /// On wherever the storage driver needs it: one set of volumes per image on the engine, shared by its runners.
    pub const fn runner_shared_toolchains() -> bool {
        true
    }
    // SCRC's official image names, so that a host with a registry works out of the box.
    pub fn python_image() -> String {
        "python:3.12-alpine".into()
    }
    pub fn go_image() -> String {
        "golang:1.22-alpine".into()
    }
    pub fn gcc_image() -> String {
        "gcc:14".into()
    }
    pub fn alpine() -> String {
        "alpine:3.20".into()
    }
    pub fn java_image() -> String {
        "eclipse-temurin:21-jdk-alpine".into()
    }
    pub fn java_run_image() -> String {
        "eclipse-temurin:21-jre-alpine".into()
    }
    // The official images of the languages SCRC does not have. TypeScript and Kotlin have none: their defaults are
    // the images they run on (Node.js, the JDK), which lack tsc and kotlinc, so a host with a registry must name a
    // build image that has them (TYPESCRIPT_IMAGE, KOTLIN_IMAGE) before it judges either.
    pub fn javascript_image() -> String {
        "node:20-alpine".into()
    }
    pub fn ruby_image() -> String {
        "ruby:3.3-alpine".into()
    }
    pub fn php_image() -> String {
        "php:8.3-cli-alpine".into()
    }
    pub fn rust_image() -> String {
        "rust:1-alpine".into()
    }
    pub fn csharp_image() -> String {
        "mono:6.12".into()
    }
    pub fn workdir() -> String {
        "/tmp".into()
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
    /// # Errors
    /// [`ConfigError`] naming the first invalid variable and its value.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        // As in an environment, a later value of a variable replaces an earlier one.
        let vars: Vec<(String, String)> = vars
            .into_iter()
            .collect::<std::collections::BTreeMap<_, _>>()
            .into_iter()
            .collect();
        let env: Env = envy::from_iter(vars.iter().cloned())?;
        let properties = rdkafka_properties(&vars)?;

        let positive = |name: &'static str, text: &str| -> Result<Duration, ConfigError> {
            let duration = parse_go_duration(text).map_err(|reason| invalid(name, text, reason))?;
            if duration.is_zero() {
                return Err(invalid(
                    name,
                    text,
                    "must be greater than zero; scrc always enforces a limit",
                ));
            }
            Ok(duration)
        };
        let time_limit = positive("RUNNER_TIME_LIMIT", &env.runner_time_limit)?;
        let max_time_limit = positive("RUNNER_MAX_TIME_LIMIT", &env.runner_max_time_limit)?;
        let compile_time_limit = positive("RUNNER_COMPILE_TIME_LIMIT", &env.runner_compile_time_limit)?;
        let breaker_cool_down = positive("RUNNER_BREAKER_COOL_DOWN", &env.runner_breaker_cool_down)?;
        let shutdown_grace = parse_go_duration(&env.runner_shutdown_grace)
            .map_err(|reason| invalid("RUNNER_SHUTDOWN_GRACE", &env.runner_shutdown_grace, reason))?;

        let memory = |name: &'static str, bytes: u64| -> Result<MemoryLimit, ConfigError> {
            if bytes < MIN_MEMORY_LIMIT {
                return Err(invalid(
                    name,
                    bytes,
                    format!("must be at least {MIN_MEMORY_LIMIT} bytes (6 MiB)"),
                ));
            }
            MemoryLimit::new(bytes).map_err(|e| invalid(name, bytes, e.to_string()))
        };
        let memory_limit = memory("RUNNER_MEMORY_LIMIT", env.runner_memory_limit)?;
        let max_memory_limit = memory("RUNNER_MAX_MEMORY_LIMIT", env.runner_max_memory_limit)?;
        memory("RUNNER_COMPILE_MEMORY_LIMIT", env.runner_compile_memory_limit)?;
        if time_limit > max_time_limit {
            return Err(ConfigError::Rule(format!(
                "RUNNER_TIME_LIMIT ({}) exceeds RUNNER_MAX_TIME_LIMIT ({})",
                env.runner_time_limit, env.runner_max_time_limit
            )));
        }
        if memory_limit > max_memory_limit {
            return Err(ConfigError::Rule(format!(
                "RUNNER_MEMORY_LIMIT ({}) exceeds RUNNER_MAX_MEMORY_LIMIT ({})",
                env.runner_memory_limit, env.runner_max_memory_limit
            )));
        }
        let max_parallel = env.runner_max_parallel;
        if !(1..=256).contains(&max_parallel) {
            return Err(invalid(
                "RUNNER_MAX_PARALLEL",
                max_parallel,
                "must be between 1 and 256",
            ));
        }
        if !(1..=10_000).contains(&env.runner_max_tests) {
            return Err(invalid(
                "RUNNER_MAX_TESTS",
                env.runner_max_tests,
                "must be between 1 and 10000",
            ));
        }
        if env.runner_retry_attempts == 0 {
            return Err(invalid("RUNNER_RETRY_ATTEMPTS", 0, "must be at least 1"));
        }
        if env.runner_max_message_bytes < 1024 {
            return Err(invalid(
                "RUNNER_MAX_MESSAGE_BYTES",
                env.runner_max_message_bytes,
                "must be at least 1024",
            ));
        }
        if env.runner_max_result_bytes < 16 * 1024 {
            return Err(invalid(
                "RUNNER_MAX_RESULT_BYTES",
                env.runner_max_result_bytes,
                "must be at least 16384",
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
        if env.kafka_dlq_topic == env.kafka_topic {
            return Err(ConfigError::Rule(
                "KAFKA_DLQ_TOPIC must differ from KAFKA_TOPIC, or dead letters would be read again".into(),
            ));
        }

        let instance = match env.runner_instance_id {
            Some(id) => {
                if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                    return Err(invalid(
                        "RUNNER_INSTANCE_ID",
                        id,
                        "use letters, digits, '-', '_' and '.' only",
                    ));
                }
                id
            }
            None => default_instance_id(),
        };

        // The longest script this runner may take on: its build, then every test at the maximum time limit.
        let tests = u32::try_from(env.runner_max_tests).unwrap_or(u32::MAX);
        let script_deadline = compile_time_limit + BUILD_OVERHEAD + (max_time_limit + PER_TEST_OVERHEAD) * tests;
        let max_poll_interval = script_deadline + Duration::from_secs(60);
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

        let format = match env.log_format.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("") | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(_) => {
                return Err(invalid(
                    "LOG_FORMAT",
                    env.log_format.unwrap_or_default(),
                    "must be \"text\" or \"json\"",
                ));
            }
        };
        let sandbox_mode = match env.runner_sandbox.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("") | Some("warm") => SandboxMode::Warm,
            Some("fresh") => SandboxMode::Fresh,
            Some(_) => {
                return Err(invalid(
                    "RUNNER_SANDBOX",
                    env.runner_sandbox.unwrap_or_default(),
                    "must be \"warm\" or \"fresh\"",
                ));
            }
        };
        // Enough idle containers per image and role that a burst of RUNNER_MAX_PARALLEL scripts of one language
        // finds half of them started; the refill task starts the rest while they build.
        let pool_idle = env.runner_pool_idle.unwrap_or(max_parallel.div_ceil(2));
        if pool_idle > 64 {
            return Err(invalid("RUNNER_POOL_IDLE", pool_idle, "must be at most 64"));
        }
        let filter = env.rust_log.or(env.log_level).unwrap_or_else(|| "info".into());

        if !(env.runner_cpus > 0.0 && env.runner_cpus <= 64.0) {
            return Err(invalid(
                "RUNNER_CPUS",
                env.runner_cpus,
                "must be greater than 0 and at most 64",
            ));
        }
        if !(16..=32_768).contains(&env.runner_pids_limit) {
            return Err(invalid(
                "RUNNER_PIDS_LIMIT",
                env.runner_pids_limit,
                "must be between 16 and 32768",
            ));
        }
        if !(16..=65_536).contains(&env.runner_nofile_limit) {
            return Err(invalid(
                "RUNNER_NOFILE_LIMIT",
                env.runner_nofile_limit,
                "must be between 16 and 65536",
            ));
        }
        if env.runner_file_size_limit < 1024 * 1024 {
            return Err(invalid(
                "RUNNER_FILE_SIZE_LIMIT",
                env.runner_file_size_limit,
                "must be at least 1 MiB",
            ));
        }
        if env.runner_output_limit < 1024 {
            return Err(invalid(
                "RUNNER_OUTPUT_LIMIT",
                env.runner_output_limit,
                "must be at least 1024 bytes",
            ));
        }
        for (name, size) in [
            ("RUNNER_TMPFS_SIZE", env.runner_tmpfs_size),
            ("RUNNER_BUILD_TMPFS_SIZE", env.runner_build_tmpfs_size),
        ] {
            if size < MIB {
                return Err(invalid(name, size, "must be at least 1 MiB"));
            }
        }
        let mut toolchains = std::collections::BTreeMap::new();
        for (language, build_image, run_image, workdir, names) in [
            (
                Language::Python,
                &env.python_image,
                env.python_run_image.as_ref().unwrap_or(&env.python_image),
                &env.python_workdir,
                ["PYTHON_IMAGE", "PYTHON_RUN_IMAGE", "PYTHON_WORKDIR"],
            ),
            (
                Language::Go,
                &env.go_image,
                &env.go_run_image,
                &env.go_workdir,
                ["GO_IMAGE", "GO_RUN_IMAGE", "GO_WORKDIR"],
            ),
            (
                Language::C,
                &env.c_image,
                &env.c_run_image,
                &env.c_workdir,
                ["C_IMAGE", "C_RUN_IMAGE", "C_WORKDIR"],
            ),
            (
                Language::Cpp,
                &env.cpp_image,
                &env.cpp_run_image,
                &env.cpp_workdir,
                ["CPP_IMAGE", "CPP_RUN_IMAGE", "CPP_WORKDIR"],
            ),
            (
                Language::Java,
                &env.java_image,
                &env.java_run_image,
                &env.java_workdir,
                ["JAVA_IMAGE", "JAVA_RUN_IMAGE", "JAVA_WORKDIR"],
            ),
            (
                Language::JavaScript,
                &env.javascript_image,
                env.javascript_run_image.as_ref().unwrap_or(&env.javascript_image),
                &env.javascript_workdir,
                ["JAVASCRIPT_IMAGE", "JAVASCRIPT_RUN_IMAGE", "JAVASCRIPT_WORKDIR"],
            ),
            (
                Language::Ruby,
                &env.ruby_image,
                env.ruby_run_image.as_ref().unwrap_or(&env.ruby_image),
                &env.ruby_workdir,
                ["RUBY_IMAGE", "RUBY_RUN_IMAGE", "RUBY_WORKDIR"],
            ),
            (
                Language::Php,
                &env.php_image,
                env.php_run_image.as_ref().unwrap_or(&env.php_image),
                &env.php_workdir,
                ["PHP_IMAGE", "PHP_RUN_IMAGE", "PHP_WORKDIR"],
            ),
            (
                Language::Rust,
                &env.rust_image,
                &env.rust_run_image,
                &env.rust_workdir,
                ["RUST_IMAGE", "RUST_RUN_IMAGE", "RUST_WORKDIR"],
            ),
            (
                Language::TypeScript,
                &env.typescript_image,
                &env.typescript_run_image,
                &env.typescript_workdir,
                ["TYPESCRIPT_IMAGE", "TYPESCRIPT_RUN_IMAGE", "TYPESCRIPT_WORKDIR"],
            ),
            (
                Language::Kotlin,
                &env.kotlin_image,
                &env.kotlin_run_image,
                &env.kotlin_workdir,
                ["KOTLIN_IMAGE", "KOTLIN_RUN_IMAGE", "KOTLIN_WORKDIR"],
            ),
            (
                Language::CSharp,
                &env.csharp_image,
                &env.csharp_run_image,
                &env.csharp_workdir,
                ["CSHARP_IMAGE", "CSHARP_RUN_IMAGE", "CSHARP_WORKDIR"],
            ),
        ] {
            for (name, value) in names.iter().zip([build_image, run_image]) {
                if value.trim().is_empty() {
                    return Err(invalid(name, value, "must name an image"));
                }
            }
            if !workdir.starts_with('/') {
                return Err(invalid(names[2], workdir, "must be an absolute path"));
            }
            toolchains.insert(
                language,
                Toolchain {
                    build_image: build_image.clone(),
                    run_image: run_image.clone(),
                    workdir: workdir.clone(),
                },
            );
        }

        let http_addr = match env.runner_http_addr.trim() {
            "" => None,
            text => Some(text.parse::<std::net::SocketAddr>().map_err(|_| {
                invalid(
                    "RUNNER_HTTP_ADDR",
                    text,
                    "expected an IP address and port such as 0.0.0.0:9464 or [::]:9464, or empty to turn it off",
                )
            })?),
        };
        let events_topic = env
            .kafka_events_topic
            .map(|topic| topic.trim().to_owned())
            .filter(|topic| !topic.is_empty());
        if let Some(topic) = &events_topic
            && [&env.kafka_topic, &env.kafka_results_topic, &env.kafka_dlq_topic].contains(&topic)
        {
            return Err(ConfigError::Rule(format!(
                "KAFKA_EVENTS_TOPIC={topic:?} is also the scripts, results or dead-letter topic; lifecycle events \
                 need a topic of their own, or their readers would take them for scripts or results"
            )));
        }
        let ceiling = |value: Duration| TimeLimit::new(value).map_err(|e| ConfigError::Rule(e.to_string()));
        Ok(Config {
            http_addr,
            events_topic,
            kafka: KafkaSettings {
                brokers: env.kafka_brokers,
                scripts_topic: env.kafka_topic,
                group_id: env.kafka_group_id,
                results_topic: env.kafka_results_topic,
                dlq_topic: env.kafka_dlq_topic,
                client_id: instance.clone(),
                properties,
                max_message_bytes: env.runner_max_message_bytes,
                max_result_bytes: env.runner_max_result_bytes,
                max_poll_interval,
                max_parallel,
            },
            executor: ExecutorSettings {
                max_parallel,
                script_expected: (env.script_expected > 0).then_some(env.script_expected),
                shutdown_grace,
                // With the default 30 s grace, a shutdown lasts at most 40 s: inside compose's 45 s.
                cleanup_grace: Duration::from_secs(5),
                backoff: Backoff::new(Duration::from_millis(200), Duration::from_secs(10)),
                recent_ids: 65_536,
                script_deadline,
            },
            policy: LimitPolicy {
                default: Limits {
                    time: ceiling(time_limit)?,
                    memory: memory_limit,
                },
                max: Limits {
                    time: ceiling(max_time_limit)?,
                    memory: max_memory_limit,
                },
                min_memory: memory("RUNNER_MEMORY_LIMIT", MIN_MEMORY_LIMIT)?,
                max_tests: env.runner_max_tests,
            },
            retry: RetryPolicy {
                attempts: env.runner_retry_attempts,
                backoff: Backoff::new(Duration::from_millis(500), Duration::from_secs(5)),
                breaker_wait: breaker_cool_down * 2,
            },
            breaker_threshold: env.runner_breaker_threshold.max(1),
            breaker_cool_down,
            docker: DockerSettings {
                host: env.docker_host.filter(|host| !host.is_empty()),
                sandbox: SandboxSettings {
                    instance: instance.clone(),
                    hardening: HardeningSettings {
                        pids_limit: env.runner_pids_limit,
                        cpus: env.runner_cpus,
                        nofile: env.runner_nofile_limit,
                        file_size: env.runner_file_size_limit,
                        shm_bytes: 16 * MIB as i64,
                    },
                    output_limit: env.runner_output_limit,
                    compile_time_limit,
                    compile_memory_limit: env.runner_compile_memory_limit,
                    build_tmpfs_bytes: env.runner_build_tmpfs_size,
                    run_tmpfs_bytes: env.runner_tmpfs_size,
                    artifact_limit: env.runner_artifact_limit,
                    script_deadline,
                    mode: sandbox_mode,
                    pool_idle,
                    run_memory_default: memory_limit.bytes(),
                    artifact_cache_bytes: env.runner_artifact_cache_bytes,
                    shared_toolchains: env.runner_shared_toolchains,
                },
                toolchains,
                pull_timeout: Duration::from_secs(120),
            },
            health_file: env
                .runner_health_file
                .filter(|path| !path.is_empty())
                .map_or_else(crate::health::default_path, std::path::PathBuf::from),
            log: LogSettings { format, filter },
            instance,
        })
    }
}

/// The variables of `images/local.env`, which point scrc at the images `scripts/build-images.sh` builds from
/// Debian packages. Embedded, so `scrc demo`, the tests and the benchmarks agree on them wherever they run.
pub fn local_images() -> Vec<(String, String)> {
    include_str!("../../images/local.env")
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect()
}

/// `RDKAFKA_SASL_MECHANISMS=PLAIN` becomes `("sasl.mechanisms", "PLAIN")`.
fn rdkafka_properties(vars: &[(String, String)]) -> Result<Vec<(String, String)>, ConfigError> {
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

/// `<hostname>-<pid>`: unique among live runners on one host, and stable across restarts of a containerised
/// runner (same hostname, same PID), so a restarted runner recognises what its previous run left behind.
fn default_instance_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "scrc".into());
    let host: String = host
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_vars(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
    }

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
        assert_eq!(config.kafka.scripts_topic, "scripts");
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
        let longest = Duration::from_secs(30) + BUILD_OVERHEAD + (Duration::from_secs(20) + PER_TEST_OVERHEAD) * 10;
        assert_eq!(config.executor.script_deadline, longest);
        assert!(config.kafka.max_poll_interval > longest);
    }

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
