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
    /// `KAFKA_BROKERS`: the bootstrap list of brokers, `host:port` separated by commas.
    #[serde(default = "defaults::kafka_brokers")]
    pub(super) kafka_brokers: String,
    /// `KAFKA_TOPIC`: the scripts topic, or a comma-separated list of topics, the priority lanes, first lane first.
    #[serde(default = "defaults::kafka_topic")]
    pub(super) kafka_topic: String,
    /// `KAFKA_TOPIC_WEIGHTS`: unset for strict priority between the lanes of `KAFKA_TOPIC`.
    #[serde(default)]
    pub(super) kafka_topic_weights: Option<String>,
    /// `KAFKA_GROUP_ID`: the consumer group the runners share the scripts' partitions in.
    #[serde(default = "defaults::kafka_group_id")]
    pub(super) kafka_group_id: String,
    /// `KAFKA_RESULTS_TOPIC`: where results are published, keyed by script id.
    #[serde(default = "defaults::kafka_results_topic")]
    pub(super) kafka_results_topic: String,
    /// `KAFKA_DLQ_TOPIC`: where unreadable messages go, with their original bytes.
    #[serde(default = "defaults::kafka_dlq_topic")]
    pub(super) kafka_dlq_topic: String,
    /// `RUNNER_MAX_PARALLEL`: scripts judged at once by this instance (1 to 256).
    #[serde(default = "defaults::one")]
    pub(super) runner_max_parallel: usize,
    /// `RUNNER_TIME_LIMIT`: the default wall-clock limit per test, a Go duration such as `5s`.
    #[serde(default = "defaults::runner_time_limit")]
    pub(super) runner_time_limit: String,
    /// `RUNNER_MEMORY_LIMIT`: the default memory limit per test, in bytes.
    #[serde(default = "defaults::runner_memory_limit")]
    pub(super) runner_memory_limit: u64,
    /// `RUNNER_MAX_TIME_LIMIT`: the largest time limit a script may ask for, a Go duration; more is RJ.
    #[serde(default = "defaults::runner_max_time_limit")]
    pub(super) runner_max_time_limit: String,
    /// `RUNNER_MAX_MEMORY_LIMIT`: the largest memory limit a script may ask for, in bytes; more is RJ.
    #[serde(default = "defaults::runner_max_memory_limit")]
    pub(super) runner_max_memory_limit: u64,
    /// `RUNNER_MAX_TESTS`: the most tests one script may have; more is RJ.
    #[serde(default = "defaults::runner_max_tests")]
    pub(super) runner_max_tests: usize,
    /// `RUNNER_COMPILE_TIME_LIMIT`: the wall-clock limit of a build, a Go duration.
    #[serde(default = "defaults::runner_compile_time_limit")]
    pub(super) runner_compile_time_limit: String,
    /// `RUNNER_COMPILE_MEMORY_LIMIT`: the memory limit of a build, in bytes.
    #[serde(default = "defaults::runner_compile_memory_limit")]
    pub(super) runner_compile_memory_limit: u64,
    /// `RUNNER_CHECKER_TIME_LIMIT`: the wall-clock limit of a checker program on one test, a Go duration.
    #[serde(default = "defaults::runner_checker_time_limit")]
    pub(super) runner_checker_time_limit: String,
    /// `RUNNER_CHECKER_MEMORY_LIMIT`: the memory limit of a checker program, in bytes.
    #[serde(default = "defaults::runner_checker_memory_limit")]
    pub(super) runner_checker_memory_limit: u64,
    /// `SCRIPT_EXPECTED`: exit 0 after judging this many scripts; 0 for never.
    #[serde(default)]
    pub(super) script_expected: u64,
    /// `RUNNER_SHUTDOWN_GRACE`: how long in-flight scripts may finish at shutdown, a Go duration.
    #[serde(default = "defaults::runner_shutdown_grace")]
    pub(super) runner_shutdown_grace: String,
    /// `RUNNER_INSTANCE_ID`: this runner's name in labels, logs and results; unset for `<hostname>-<pid>`.
    #[serde(default)]
    pub(super) runner_instance_id: Option<String>,
    /// `RUNNER_MAX_FILES`: the most files a script's program may have, its entry included; more is RJ.
    #[serde(default = "defaults::runner_max_files")]
    pub(super) runner_max_files: usize,
    /// `RUNNER_MAX_MESSAGE_BYTES`: the largest script message read, in bytes; a larger one is dead-lettered.
    #[serde(default = "defaults::runner_max_message_bytes")]
    pub(super) runner_max_message_bytes: usize,
    /// `RUNNER_MAX_RESULT_BYTES`: the largest record published, in bytes; a larger result is shortened to fit.
    #[serde(default = "defaults::runner_max_result_bytes")]
    pub(super) runner_max_result_bytes: usize,
    /// `RUNNER_RETRY_ATTEMPTS`: attempts per runtime call that fails for infrastructure reasons.
    #[serde(default = "defaults::runner_retry_attempts")]
    pub(super) runner_retry_attempts: u32,
    /// `RUNNER_BREAKER_THRESHOLD`: consecutive infrastructure failures that open the circuit breaker.
    #[serde(default = "defaults::runner_breaker_threshold")]
    pub(super) runner_breaker_threshold: u32,
    /// `RUNNER_BREAKER_COOL_DOWN`: how long the breaker stays open, a Go duration.
    #[serde(default = "defaults::runner_breaker_cool_down")]
    pub(super) runner_breaker_cool_down: String,
    /// `RUNNER_OUTPUT_LIMIT`: bytes kept per stream per test; one more byte is OL.
    #[serde(default = "defaults::runner_output_limit")]
    pub(super) runner_output_limit: usize,
    /// `RUNNER_PIDS_LIMIT`: processes and threads per container.
    #[serde(default = "defaults::runner_pids_limit")]
    pub(super) runner_pids_limit: i64,
    /// `RUNNER_CPUS`: the CPU quota of each container, in CPUs.
    #[serde(default = "defaults::runner_cpus")]
    pub(super) runner_cpus: f64,
    /// `RUNNER_NOFILE_LIMIT`: open files per process in a container.
    #[serde(default = "defaults::runner_nofile_limit")]
    pub(super) runner_nofile_limit: i64,
    /// `RUNNER_FILE_SIZE_LIMIT`: the largest file a process may write, in bytes.
    #[serde(default = "defaults::runner_file_size_limit")]
    pub(super) runner_file_size_limit: i64,
    /// `RUNNER_TMPFS_SIZE`: the size of a run container's `/tmp`, in bytes (it counts against memory).
    #[serde(default = "defaults::runner_tmpfs_size")]
    pub(super) runner_tmpfs_size: u64,
    /// `RUNNER_BUILD_TMPFS_SIZE`: the size of a build container's `/tmp`, in bytes.
    #[serde(default = "defaults::runner_build_tmpfs_size")]
    pub(super) runner_build_tmpfs_size: u64,
    /// `RUNNER_ARTIFACT_LIMIT`: the largest build output accepted, in bytes; more is BF "program too large".
    #[serde(default = "defaults::runner_artifact_limit")]
    pub(super) runner_artifact_limit: usize,
    /// `RUNNER_ARTIFACT_CACHE_BYTES`: bytes of built programs kept so that a program is not compiled twice; 0 for none.
    #[serde(default = "defaults::runner_artifact_cache_bytes")]
    pub(super) runner_artifact_cache_bytes: u64,
    /// `RUNNER_SHARED_TOOLCHAINS`: whether sandboxes read their image's toolchain directories from shared volumes.
    #[serde(default = "defaults::runner_shared_toolchains")]
    pub(super) runner_shared_toolchains: bool,
    /// `RUNNER_DOCKER_RUNTIME`: the engine's OCI runtime for sandboxes, such as `runsc`; unset for the engine's
    /// default.
    #[serde(default)]
    pub(super) runner_docker_runtime: Option<String>,
    /// `RUNNER_SECCOMP`: `strict` (unset or empty) for the supervisor's syscall filter over the engine's profile,
    /// `default` for the engine's default profile alone.
    #[serde(default)]
    pub(super) runner_seccomp: Option<String>,
    /// `RUNNER_SANDBOX_UIDS`: the uids sandboxes run as, `first-last`, one per live sandbox.
    #[serde(default = "defaults::runner_sandbox_uids")]
    pub(super) runner_sandbox_uids: String,
    /// `PYTHON_IMAGE`: the image Python programs are built in.
    #[serde(default = "defaults::python_image")]
    pub(super) python_image: String,
    /// `PYTHON_RUN_IMAGE`: the image Python programs run in; unset for `PYTHON_IMAGE`.
    #[serde(default)]
    pub(super) python_run_image: Option<String>,
    /// `PYTHON_WORKDIR`: the working directory Python programs run in, an absolute path.
    #[serde(default = "defaults::workdir")]
    pub(super) python_workdir: String,
    /// `GO_IMAGE`: the image Go programs are built in.
    #[serde(default = "defaults::go_image")]
    pub(super) go_image: String,
    /// `GO_RUN_IMAGE`: the image Go programs run in.
    #[serde(default = "defaults::alpine")]
    pub(super) go_run_image: String,
    /// `GO_WORKDIR`: the working directory Go programs run in, an absolute path.
    #[serde(default = "defaults::workdir")]
    pub(super) go_workdir: String,
    /// `C_IMAGE`: the image C programs are built in.
    #[serde(default = "defaults::gcc_image")]
    pub(super) c_image: String,
    /// `C_RUN_IMAGE`: the image C programs run in.
    #[serde(default = "defaults::alpine")]
    pub(super) c_run_image: String,
    /// `C_WORKDIR`: the working directory C programs run in, an absolute path.
    #[serde(default = "defaults::workdir")]
    pub(super) c_workdir: String,
    /// `CPP_IMAGE`: the image C++ programs are built in.
    #[serde(default = "defaults::gcc_image")]
    pub(super) cpp_image: String,
    /// `CPP_RUN_IMAGE`: the image C++ programs run in.
    #[serde(default = "defaults::alpine")]
    pub(super) cpp_run_image: String,
    /// `CPP_WORKDIR`: the working directory C++ programs run in, an absolute path.
    #[serde(default = "defaults::workdir")]
    pub(super) cpp_workdir: String,
    /// `JAVA_IMAGE`: the image Java programs are built in.
    #[serde(default = "defaults::java_image")]
    pub(super) java_image: String,
    /// `JAVA_RUN_IMAGE`: the image Java programs run in.
    #[serde(default = "defaults::java_run_image")]
    pub(super) java_run_image: String,
    /// `JAVA_WORKDIR`: the working directory Java programs run in, an absolute path.
    #[serde(default = "defaults::workdir")]
    pub(super) java_workdir: String,
    /// `JAVASCRIPT_IMAGE`: the image JavaScript programs are built in.
    #[serde(default = "defaults::javascript_image")]
    pub(super) javascript_image: String,
    /// `JAVASCRIPT_RUN_IMAGE`: the image JavaScript programs run in; unset for `JAVASCRIPT_IMAGE`.
    #[serde(default)]
    pub(super) javascript_run_image: Option<String>,
    /// `JAVASCRIPT_WORKDIR`: the working directory JavaScript programs run in, an absolute path.
    #[serde(default = "defaults::workdir")]
    pub(super) javascript_workdir: String,
    /// `RUBY_IMAGE`: the image Ruby programs are built in.
    #[serde(default = "defaults::ruby_image")]
    pub(super) ruby_image: String,
    /// `RUBY_RUN_IMAGE`: the image Ruby programs run in; unset for `RUBY_IMAGE`.
    #[serde(default)]
    pub(super) ruby_run_image: Option<String>,
    /// `RUBY_WORKDIR`: the working directory Ruby programs run in, an absolute path.
    #[serde(default = "defaults::workdir")]
    pub(super) ruby_workdir: String,
    /// `PHP_IMAGE`: the image PHP programs are built in.
    #[serde(default = "defaults::php_image")]
    pub(super) php_image: String,
    /// `PHP_RUN_IMAGE`: the image PHP programs run in; unset for `PHP_IMAGE`.
    #[serde(default)]
    pub(super) php_run_image: Option<String>,
    /// `PHP_WORKDIR`: the working directory PHP programs run in, an absolute path.
    #[serde(default = "defaults::workdir")]
    pub(super) php_workdir: String,
    /// `RUST_IMAGE`: the image Rust programs are built in.
    #[serde(default = "defaults::rust_image")]
    pub(super) rust_image: String,
    /// `RUST_RUN_IMAGE`: the image Rust programs run in.
    #[serde(default = "defaults::alpine")]
    pub(super) rust_run_image: String,
    /// `RUST_WORKDIR`: the working directory Rust programs run in, an absolute path.
    #[serde(default = "defaults::workdir")]
    pub(super) rust_workdir: String,
    /// `TYPESCRIPT_IMAGE`: the image TypeScript programs are built in.
    #[serde(default = "defaults::javascript_image")]
    pub(super) typescript_image: String,
    /// `TYPESCRIPT_RUN_IMAGE`: the image TypeScript programs run in.
    #[serde(default = "defaults::javascript_image")]
    pub(super) typescript_run_image: String,
    /// `TYPESCRIPT_WORKDIR`: the working directory TypeScript programs run in, an absolute path.
    #[serde(default = "defaults::workdir")]
    pub(super) typescript_workdir: String,
    /// `KOTLIN_IMAGE`: the image Kotlin programs are built in.
    #[serde(default = "defaults::java_image")]
    pub(super) kotlin_image: String,
    /// `KOTLIN_RUN_IMAGE`: the image Kotlin programs run in.
    #[serde(default = "defaults::java_run_image")]
    pub(super) kotlin_run_image: String,
    /// `KOTLIN_WORKDIR`: the working directory Kotlin programs run in, an absolute path.
    #[serde(default = "defaults::workdir")]
    pub(super) kotlin_workdir: String,
    /// `CSHARP_IMAGE`: the image C# programs are built in.
    #[serde(default = "defaults::csharp_image")]
    pub(super) csharp_image: String,
    /// `CSHARP_RUN_IMAGE`: the image C# programs run in.
    #[serde(default = "defaults::csharp_image")]
    pub(super) csharp_run_image: String,
    /// `CSHARP_WORKDIR`: the working directory C# programs run in, an absolute path.
    #[serde(default = "defaults::workdir")]
    pub(super) csharp_workdir: String,
    /// `DOCKER_HOST`: the engine's address; unset or empty for the local socket.
    #[serde(default)]
    pub(super) docker_host: Option<String>,
    /// `RUNNER_HEALTH_FILE`: where the runner's health is written for `scrc health`; unset for the temp directory.
    #[serde(default)]
    pub(super) runner_health_file: Option<String>,
    /// `RUNNER_HTTP_ADDR`: the IP and port of `/metrics`, `/healthz` and `/readyz`; empty for no listener.
    #[serde(default = "defaults::runner_http_addr")]
    pub(super) runner_http_addr: String,
    /// `KAFKA_EVENTS_TOPIC`: where lifecycle events go; unset or empty for no events.
    #[serde(default)]
    pub(super) kafka_events_topic: Option<String>,
    /// `LOG_FORMAT`: `text` (the default) or `json`, one object per line.
    #[serde(default)]
    pub(super) log_format: Option<String>,
    /// `RUNNER_SANDBOX`: only `warm` is accepted; the retired `fresh` is refused at startup.
    #[serde(default)]
    pub(super) runner_sandbox: Option<String>,
    /// `RUNNER_POOL_IDLE`: warm sandboxes kept per pair of images; unset for half `RUNNER_MAX_PARALLEL`, rounded up.
    #[serde(default)]
    pub(super) runner_pool_idle: Option<usize>,
    /// Read as text: set empty, it means "no cap", as unset does.
    #[serde(default)]
    pub(super) runner_tenant_max_parallel: Option<String>,
    /// Read as text, so that empty means the default, as for `RUNNER_TENANT_MAX_PARALLEL`.
    #[serde(default)]
    pub(super) runner_tenant_lookahead: Option<String>,
    /// `LOG_LEVEL`: the log filter when `RUST_LOG` is unset.
    #[serde(default)]
    pub(super) log_level: Option<String>,
    /// `RUST_LOG`: the log filter, such as `info` or `scrc=debug`; it wins over `LOG_LEVEL`.
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
    /// A checker reads three files once: seconds are plenty, and a hanging one must not hold a slot long.
    pub fn runner_checker_time_limit() -> String {
        "10s".into()
    }
    /// Room for a JVM checker and a checker holding a large answer.
    pub const fn runner_checker_memory_limit() -> u64 {
        512 * MIB
    }
    pub fn runner_shutdown_grace() -> String {
        "30s".into()
    }
    /// A Java project of a few dozen classes, a C program with its headers, a grader and its stubs.
    pub const fn runner_max_files() -> usize {
        64
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
    /// A million uids above every account a host makes for people (Debian's `UID_MAX` is 60,000) and below 2^31.
    pub fn runner_sandbox_uids() -> String {
        "100000-1099999".into()
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
