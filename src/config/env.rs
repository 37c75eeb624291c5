//! The environment as envy reads it: every variable scrc knows, under SCRC's names where SCRC has one, with the
//! default each takes when unset. Values are only typed here; the parts beside this module check them.

use serde::Deserialize;

use super::{ConfigError, MIB};

/// The variables in name order, the last value of each kept: as in an environment, a later value of a variable
/// replaces an earlier one.
pub(super) fn latest_values(vars: impl IntoIterator<Item = (String, String)>) -> Vec<(String, String)> {
    vars.into_iter()
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_iter()
        .collect()
}

/// The environment as envy reads it: SCRC's names, scrc's additions, and the defaults.
#[derive(Debug, Deserialize)]
pub(super) struct Env {
    #[serde(default = "defaults::kafka_brokers")]
    pub(super) kafka_brokers: String,
    #[serde(default = "defaults::kafka_topic")]
    pub(super) kafka_topic: String,
    /// `KAFKA_TOPIC_WEIGHTS`: unset for strict priority between the lanes of `KAFKA_TOPIC`.
    #[serde(default)]
    pub(super) kafka_topic_weights: Option<String>,
    #[serde(default = "defaults::kafka_group_id")]
    pub(super) kafka_group_id: String,
    #[serde(default = "defaults::kafka_results_topic")]
    pub(super) kafka_results_topic: String,
    #[serde(default = "defaults::kafka_dlq_topic")]
    pub(super) kafka_dlq_topic: String,
    #[serde(default = "defaults::one")]
    pub(super) runner_max_parallel: usize,
    #[serde(default = "defaults::runner_time_limit")]
    pub(super) runner_time_limit: String,
    #[serde(default = "defaults::runner_memory_limit")]
    pub(super) runner_memory_limit: u64,
    #[serde(default = "defaults::runner_max_time_limit")]
    pub(super) runner_max_time_limit: String,
    #[serde(default = "defaults::runner_max_memory_limit")]
    pub(super) runner_max_memory_limit: u64,
    #[serde(default = "defaults::runner_max_tests")]
    pub(super) runner_max_tests: usize,
    #[serde(default = "defaults::runner_compile_time_limit")]
    pub(super) runner_compile_time_limit: String,
    #[serde(default = "defaults::runner_compile_memory_limit")]
    pub(super) runner_compile_memory_limit: u64,
    #[serde(default)]
    pub(super) script_expected: u64,
    #[serde(default = "defaults::runner_shutdown_grace")]
    pub(super) runner_shutdown_grace: String,
    #[serde(default)]
    pub(super) runner_instance_id: Option<String>,
    #[serde(default = "defaults::runner_max_message_bytes")]
    pub(super) runner_max_message_bytes: usize,
    #[serde(default = "defaults::runner_max_result_bytes")]
    pub(super) runner_max_result_bytes: usize,
    #[serde(default = "defaults::runner_retry_attempts")]
    pub(super) runner_retry_attempts: u32,
    #[serde(default = "defaults::runner_breaker_threshold")]
    pub(super) runner_breaker_threshold: u32,
    #[serde(default = "defaults::runner_breaker_cool_down")]
    pub(super) runner_breaker_cool_down: String,
    #[serde(default = "defaults::runner_output_limit")]
    pub(super) runner_output_limit: usize,
    #[serde(default = "defaults::runner_pids_limit")]
    pub(super) runner_pids_limit: i64,
    #[serde(default = "defaults::runner_cpus")]
    pub(super) runner_cpus: f64,
    #[serde(default = "defaults::runner_nofile_limit")]
    pub(super) runner_nofile_limit: i64,
    #[serde(default = "defaults::runner_file_size_limit")]
    pub(super) runner_file_size_limit: i64,
    #[serde(default = "defaults::runner_tmpfs_size")]
    pub(super) runner_tmpfs_size: u64,
    #[serde(default = "defaults::runner_build_tmpfs_size")]
    pub(super) runner_build_tmpfs_size: u64,
    #[serde(default = "defaults::runner_artifact_limit")]
    pub(super) runner_artifact_limit: usize,
    #[serde(default = "defaults::runner_artifact_cache_bytes")]
    pub(super) runner_artifact_cache_bytes: u64,
    #[serde(default = "defaults::runner_shared_toolchains")]
    pub(super) runner_shared_toolchains: bool,
    #[serde(default = "defaults::python_image")]
    pub(super) python_image: String,
    #[serde(default)]
    pub(super) python_run_image: Option<String>,
    #[serde(default = "defaults::workdir")]
    pub(super) python_workdir: String,
    #[serde(default = "defaults::go_image")]
    pub(super) go_image: String,
    #[serde(default = "defaults::alpine")]
    pub(super) go_run_image: String,
    #[serde(default = "defaults::workdir")]
    pub(super) go_workdir: String,
    #[serde(default = "defaults::gcc_image")]
    pub(super) c_image: String,
    #[serde(default = "defaults::alpine")]
    pub(super) c_run_image: String,
    #[serde(default = "defaults::workdir")]
    pub(super) c_workdir: String,
    #[serde(default = "defaults::gcc_image")]
    pub(super) cpp_image: String,
    #[serde(default = "defaults::alpine")]
    pub(super) cpp_run_image: String,
    #[serde(default = "defaults::workdir")]
    pub(super) cpp_workdir: String,
    #[serde(default = "defaults::java_image")]
    pub(super) java_image: String,
    #[serde(default = "defaults::java_run_image")]
    pub(super) java_run_image: String,
    #[serde(default = "defaults::workdir")]
    pub(super) java_workdir: String,
    #[serde(default = "defaults::javascript_image")]
    pub(super) javascript_image: String,
    #[serde(default)]
    pub(super) javascript_run_image: Option<String>,
    #[serde(default = "defaults::workdir")]
    pub(super) javascript_workdir: String,
    #[serde(default = "defaults::ruby_image")]
    pub(super) ruby_image: String,
    #[serde(default)]
    pub(super) ruby_run_image: Option<String>,
    #[serde(default = "defaults::workdir")]
    pub(super) ruby_workdir: String,
    #[serde(default = "defaults::php_image")]
    pub(super) php_image: String,
    #[serde(default)]
    pub(super) php_run_image: Option<String>,
    #[serde(default = "defaults::workdir")]
    pub(super) php_workdir: String,
    #[serde(default = "defaults::rust_image")]
    pub(super) rust_image: String,
    #[serde(default = "defaults::alpine")]
    pub(super) rust_run_image: String,
    #[serde(default = "defaults::workdir")]
    pub(super) rust_workdir: String,
    #[serde(default = "defaults::javascript_image")]
    pub(super) typescript_image: String,
    #[serde(default = "defaults::javascript_image")]
    pub(super) typescript_run_image: String,
    #[serde(default = "defaults::workdir")]
    pub(super) typescript_workdir: String,
    #[serde(default = "defaults::java_image")]
    pub(super) kotlin_image: String,
    #[serde(default = "defaults::java_run_image")]
    pub(super) kotlin_run_image: String,
    #[serde(default = "defaults::workdir")]
    pub(super) kotlin_workdir: String,
    #[serde(default = "defaults::csharp_image")]
    pub(super) csharp_image: String,
    #[serde(default = "defaults::csharp_image")]
    pub(super) csharp_run_image: String,
    #[serde(default = "defaults::workdir")]
    pub(super) csharp_workdir: String,
    #[serde(default)]
    pub(super) docker_host: Option<String>,
    #[serde(default)]
    pub(super) runner_health_file: Option<String>,
    #[serde(default = "defaults::runner_http_addr")]
    pub(super) runner_http_addr: String,
    #[serde(default)]
    pub(super) kafka_events_topic: Option<String>,
    #[serde(default)]
    pub(super) log_format: Option<String>,
    #[serde(default)]
    pub(super) runner_sandbox: Option<String>,
    #[serde(default)]
    pub(super) runner_pool_idle: Option<usize>,
    /// Read as text: set empty, it means "no cap", as unset does.
    #[serde(default)]
    pub(super) runner_tenant_max_parallel: Option<String>,
    /// Read as text, so that empty means the default, as for `RUNNER_TENANT_MAX_PARALLEL`.
    #[serde(default)]
    pub(super) runner_tenant_lookahead: Option<String>,
    #[serde(default)]
    pub(super) log_level: Option<String>,
    #[serde(default)]
    pub(super) rust_log: Option<String>,
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

impl Env {
    /// # Errors
    /// [`ConfigError::Env`] naming a variable whose value does not have its type.
    pub(super) fn read(vars: &[(String, String)]) -> Result<Self, ConfigError> {
        Ok(envy::from_iter(vars.iter().cloned())?)
    }

    /// The name of every variable [`Env`] reads, as the environment spells it (`KAFKA_BROKERS`). Taken from the
    /// struct's own serde description rather than written out again, so it cannot drift from what is read: envy
    /// ignores a variable it has no field for, and a deployment checks its variables against this list.
    pub(super) fn variable_names() -> Vec<String> {
        let mut fields: &'static [&'static str] = &[];
        // The recorder refuses every value, so this always errs, after it has seen the fields.
        let _ = Env::deserialize(field_names::Recorder(&mut fields));
        fields.iter().map(|field| field.to_ascii_uppercase()).collect()
    }
}

/// A serde deserializer that reads nothing and records the field names a struct asks for, which is how serde
/// tells a data format what a struct holds.
mod field_names {
    use serde::de::{self, Visitor};

    pub(super) struct Recorder<'a>(pub(super) &'a mut &'static [&'static str]);

    /// The only answer the recorder gives.
    #[derive(Debug)]
    pub(super) struct Recorded;

    impl std::fmt::Display for Recorded {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("field names recorded, no value read")
        }
    }

    impl std::error::Error for Recorded {}

    impl de::Error for Recorded {
        fn custom<T: std::fmt::Display>(_: T) -> Self {
            Recorded
        }
    }

    impl<'de> de::Deserializer<'de> for Recorder<'_> {
        type Error = Recorded;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Recorded> {
            Err(Recorded)
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Recorded> {
            *self.0 = fields;
            Err(Recorded)
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
            unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }
}
