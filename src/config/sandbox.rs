//! Docker's settings: the engine, the hardening every sandbox container gets, the sandbox mode and its pool, the
//! sizes of builds and runs, and the per-language toolchains.

use std::ops::RangeInclusive;
use std::time::Duration;

use super::env::Env;
use super::limits::LimitSettings;
use super::toolchains::toolchains;
use super::{ConfigError, MIB, invalid};
use crate::adapters::docker::DockerSettings;
use crate::adapters::docker::hardening::HardeningSettings;
use crate::adapters::docker::protocol;
use crate::adapters::docker::settings::{SandboxSettings, Seccomp};

/// Size of every sandbox's `/dev/shm`, a quarter of Docker's 64 MiB default: it counts against the memory limit, and
/// judged programs barely use it.
const SHM_BYTES: i64 = 16 * MIB as i64;

/// How long to wait for a registry when pulling a missing image at startup: a large build image over a slow link,
/// but not so long that a runner with an unreachable registry never starts judging the other languages.
const PULL_TIMEOUT: Duration = Duration::from_secs(120);

/// The most warm sandboxes `RUNNER_POOL_IDLE` may keep started per pair of images: each idle one holds memory.
const MAX_POOL_IDLE: usize = 64;

/// The most CPUs `RUNNER_CPUS` may give one container: one sandbox judges one program, which cannot use a machine
/// larger than this.
const MAX_CPUS: f64 = 64.0;

/// Processes and threads `RUNNER_PIDS_LIMIT` may allow: a JVM needs about 20, a fork bomb must stop somewhere.
const PIDS_LIMIT_RANGE: RangeInclusive<i64> = 16..=32_768;

/// Open files `RUNNER_NOFILE_LIMIT` may allow per process: a runtime opens a few at start.
const NOFILE_LIMIT_RANGE: RangeInclusive<i64> = 16..=65_536;

/// The smallest file `RUNNER_FILE_SIZE_LIMIT` may allow: compilers and programs write files of some size.
const MIN_FILE_SIZE_LIMIT: i64 = MIB as i64;

/// The smallest `RUNNER_OUTPUT_LIMIT`: an error message or a stack trace must fit before a program is OL.
const MIN_OUTPUT_LIMIT: usize = 1024;

/// The largest `RUNNER_OUTPUT_LIMIT`: a test's report carries both streams in one reply of the supervisor, whose
/// size the runner bounds.
const MAX_OUTPUT_LIMIT: usize = protocol::MAX_OUTPUT_LIMIT;

/// `RUNNER_ARTIFACT_LIMIT`: the program volume must hold a static C binary, and the gathered program tree (names
/// and metadata counted) must fit one reply of the supervisor.
const ARTIFACT_LIMIT_RANGE: RangeInclusive<usize> = MIB as usize..=protocol::MAX_ARTIFACT_LIMIT;

/// The smallest `/tmp` of a build or run container: compilers keep temporary files there.
const MIN_TMPFS_BYTES: u64 = MIB;

/// # Errors
/// [`ConfigError::Invalid`] naming the first sandbox variable out of its range, or toolchain variable that is
/// empty or relative.
pub(super) fn docker_settings(
    env: &Env,
    instance: &str,
    limits: &LimitSettings,
    max_parallel: usize,
) -> Result<DockerSettings, ConfigError> {
    check_sandbox_mode(env)?;
    let pool_idle = pool_idle(env, max_parallel)?;
    let hardening = hardening(env)?;
    check_sizes(env)?;
    Ok(DockerSettings {
        host: env.docker_host.clone().filter(|host| !host.is_empty()),
        sandbox: SandboxSettings {
            instance: instance.to_owned(),
            hardening,
            output_limit: env.runner_output_limit,
            compile_time_limit: limits.compile_time.as_duration(),
            compile_memory_limit: limits.compile_memory,
            build_tmpfs_bytes: env.runner_build_tmpfs_size,
            run_tmpfs_bytes: env.runner_tmpfs_size,
            artifact_limit: env.runner_artifact_limit,
            script_deadline: limits.script_deadline(),
            pool_idle,
            run_memory_default: limits.memory.bytes(),
            artifact_cache_bytes: env.runner_artifact_cache_bytes,
            shared_toolchains: env.runner_shared_toolchains,
            uids: sandbox_uids(env)?,
            seccomp: seccomp(env)?,
        },
        toolchains: toolchains(env)?,
        pull_timeout: PULL_TIMEOUT,
    })
}

/// `RUNNER_SANDBOX` chose between two sandbox paths; one is left, and a configuration that still asks for the
/// retired one is told so rather than silently judged on the other.
fn check_sandbox_mode(env: &Env) -> Result<(), ConfigError> {
    match env.runner_sandbox.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("warm") => Ok(()),
        Some(_) => Err(invalid(
            "RUNNER_SANDBOX",
            env.runner_sandbox.clone().unwrap_or_default(),
            "the only sandbox path is \"warm\" (a container per test, \"fresh\", was retired): unset it",
        )),
    }
}

/// `RUNNER_DOCKER_RUNTIME`: the name of one of the engine's OCI runtimes (`runsc`, say), checked against the
/// engine's list at startup; unset or empty for the engine's default.
fn docker_runtime(env: &Env) -> Result<Option<String>, ConfigError> {
    let Some(name) = env
        .runner_docker_runtime
        .as_deref()
        .map(str::trim)
        .filter(|name| !name.is_empty())
    else {
        return Ok(None);
    };
    let named = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !named {
        return Err(invalid(
            "RUNNER_DOCKER_RUNTIME",
            name,
            "must be the name of one of the engine's runtimes (letters, digits, '-', '_' and '.'), such as runsc"
                .to_owned(),
        ));
    }
    Ok(Some(name.to_owned()))
}

/// `RUNNER_SECCOMP`: the supervisor's strict filter unless asked for the engine's default profile alone.
fn seccomp(env: &Env) -> Result<Seccomp, ConfigError> {
    match env
        .runner_seccomp
        .as_deref()
        .map(str::trim)
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("" | "strict") => Ok(Seccomp::Strict),
        Some("default") => Ok(Seccomp::EngineDefault),
        Some(_) => Err(invalid(
            "RUNNER_SECCOMP",
            env.runner_seccomp.clone().unwrap_or_default(),
            "must be \"strict\" (the supervisor's filter over the engine's profile) or \"default\" (the engine's default profile alone)",
        )),
    }
}

/// The smallest `RUNNER_SANDBOX_UIDS` range: one uid per live sandbox, and a runner keeps up to 64 idle per pair of
/// images beside `RUNNER_MAX_PARALLEL` (256) busy ones; random draws want room beyond that.
const MIN_SANDBOX_UIDS: u32 = 1024;

/// The lowest uid a sandbox may run as: below are the host's system and people's accounts.
const LOWEST_SANDBOX_UID: u32 = 1000;

/// `RUNNER_SANDBOX_UIDS`: `first-last`, at least [`MIN_SANDBOX_UIDS`] uids from [`LOWEST_SANDBOX_UID`] up and below
/// 2^31. Under Docker's user-namespace remapping it must lie within the subordinate range (`10000-59999`, say).
fn sandbox_uids(env: &Env) -> Result<RangeInclusive<u32>, ConfigError> {
    let value = env.runner_sandbox_uids.trim();
    let bad = |why: &str| invalid("RUNNER_SANDBOX_UIDS", value, why.to_owned());
    let (first, last) = value
        .split_once('-')
        .ok_or_else(|| bad("must be a range of uids, first-last, such as 100000-1099999"))?;
    let parse = |text: &str| {
        text.trim()
            .parse::<u32>()
            .map_err(|_| bad("must be two whole numbers, first-last"))
    };
    let (first, last) = (parse(first)?, parse(last)?);
    if first < LOWEST_SANDBOX_UID || last >= 1 << 31 || last < first || last - first + 1 < MIN_SANDBOX_UIDS {
        return Err(bad(&format!(
            "must hold at least {MIN_SANDBOX_UIDS} uids, from {LOWEST_SANDBOX_UID} up and below 2147483648"
        )));
    }
    Ok(first..=last)
}

/// By default, enough idle containers per image and role that a burst of `RUNNER_MAX_PARALLEL` scripts of one
/// language finds half of them started; the refill task starts the rest while they build.
fn pool_idle(env: &Env, max_parallel: usize) -> Result<usize, ConfigError> {
    let pool_idle = env.runner_pool_idle.unwrap_or(max_parallel.div_ceil(2));
    if pool_idle > MAX_POOL_IDLE {
        return Err(invalid(
            "RUNNER_POOL_IDLE",
            pool_idle,
            format!("must be at most {MAX_POOL_IDLE}"),
        ));
    }
    Ok(pool_idle)
}

fn hardening(env: &Env) -> Result<HardeningSettings, ConfigError> {
    if !(env.runner_cpus > 0.0 && env.runner_cpus <= MAX_CPUS) {
        return Err(invalid(
            "RUNNER_CPUS",
            env.runner_cpus,
            format!("must be greater than 0 and at most {MAX_CPUS}"),
        ));
    }
    for (name, value, range) in [
        ("RUNNER_PIDS_LIMIT", env.runner_pids_limit, PIDS_LIMIT_RANGE),
        ("RUNNER_NOFILE_LIMIT", env.runner_nofile_limit, NOFILE_LIMIT_RANGE),
    ] {
        if !range.contains(&value) {
            return Err(invalid(
                name,
                value,
                format!("must be between {} and {}", range.start(), range.end()),
            ));
        }
    }
    if env.runner_file_size_limit < MIN_FILE_SIZE_LIMIT {
        return Err(invalid(
            "RUNNER_FILE_SIZE_LIMIT",
            env.runner_file_size_limit,
            "must be at least 1 MiB",
        ));
    }
    Ok(HardeningSettings {
        pids_limit: env.runner_pids_limit,
        cpus: env.runner_cpus,
        nofile: env.runner_nofile_limit,
        file_size: env.runner_file_size_limit,
        shm_bytes: SHM_BYTES,
        runtime: docker_runtime(env)?,
    })
}

fn check_sizes(env: &Env) -> Result<(), ConfigError> {
    if !(MIN_OUTPUT_LIMIT..=MAX_OUTPUT_LIMIT).contains(&env.runner_output_limit) {
        return Err(invalid(
            "RUNNER_OUTPUT_LIMIT",
            env.runner_output_limit,
            format!(
                "must be between {MIN_OUTPUT_LIMIT} and {MAX_OUTPUT_LIMIT} bytes (32 MiB: a test's report carries both \
                 streams in one reply of the sandbox supervisor)"
            ),
        ));
    }
    if !ARTIFACT_LIMIT_RANGE.contains(&env.runner_artifact_limit) {
        return Err(invalid(
            "RUNNER_ARTIFACT_LIMIT",
            env.runner_artifact_limit,
            format!(
                "must be between {} and {} bytes (1 to 64 MiB: the built program, its file names counted, comes back \
                 in one reply of the sandbox supervisor)",
                ARTIFACT_LIMIT_RANGE.start(),
                ARTIFACT_LIMIT_RANGE.end()
            ),
        ));
    }
    for (name, size) in [
        ("RUNNER_TMPFS_SIZE", env.runner_tmpfs_size),
        ("RUNNER_BUILD_TMPFS_SIZE", env.runner_build_tmpfs_size),
    ] {
        if size < MIN_TMPFS_BYTES {
            return Err(invalid(name, size, "must be at least 1 MiB"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::load;
    use super::Seccomp;

    #[test]
    fn output_and_artifact_limits_stay_within_one_reply_of_the_supervisor() {
        // Issue 26: an output limit over 32 MiB or an artifact limit over 64 MiB let a flood or a big binary make a
        // reply the runner refuses, which it took for a broken sandbox.
        for (name, value) in [
            ("RUNNER_OUTPUT_LIMIT", "33554433"),
            ("RUNNER_OUTPUT_LIMIT", "1023"),
            ("RUNNER_ARTIFACT_LIMIT", "67108865"),
            ("RUNNER_ARTIFACT_LIMIT", "1048575"),
        ] {
            let error = load(&[(name, value)]).unwrap_err().to_string();
            assert!(error.contains(&format!("{name}=\"{value}\"")), "{error}");
            assert!(error.contains("one reply of the sandbox supervisor"), "{error}");
        }
        let config = load(&[
            ("RUNNER_OUTPUT_LIMIT", "33554432"),
            ("RUNNER_ARTIFACT_LIMIT", "67108864"),
        ])
        .unwrap();
        assert_eq!(config.docker.sandbox.output_limit, 32 << 20);
        assert_eq!(config.docker.sandbox.artifact_limit, 64 << 20);
    }

    #[test]
    fn sandbox_uids_are_a_range_of_enough_unprivileged_uids() {
        assert_eq!(load(&[]).unwrap().docker.sandbox.uids, 100_000..=1_099_999);
        assert_eq!(
            load(&[("RUNNER_SANDBOX_UIDS", "10000-59999")])
                .unwrap()
                .docker
                .sandbox
                .uids,
            10_000..=59_999
        );
        for bad in [
            "100000",
            "a-b",
            "0-5000",
            "100000-100010",
            "2000-1000",
            "2000000000-2200000000",
        ] {
            let error = load(&[("RUNNER_SANDBOX_UIDS", bad)]).unwrap_err().to_string();
            assert!(error.contains(&format!("RUNNER_SANDBOX_UIDS=\"{bad}\"")), "{error}");
        }
    }

    #[test]
    fn the_retired_sandbox_path_is_refused_by_name() {
        assert!(load(&[("RUNNER_SANDBOX", "warm")]).is_ok());
        let error = load(&[("RUNNER_SANDBOX", "fresh")]).unwrap_err().to_string();
        assert!(
            error.contains("RUNNER_SANDBOX=\"fresh\"") && error.contains("retired"),
            "{error}"
        );
    }

    #[test]
    fn the_strict_syscall_filter_is_on_unless_the_engines_default_profile_alone_is_asked_for() {
        let seccomp = |value: &str| load(&[("RUNNER_SECCOMP", value)]).map(|config| config.docker.sandbox.seccomp);
        assert_eq!(load(&[]).unwrap().docker.sandbox.seccomp, Seccomp::Strict);
        assert_eq!(seccomp("").unwrap(), Seccomp::Strict);
        assert_eq!(seccomp("strict").unwrap(), Seccomp::Strict);
        assert_eq!(seccomp(" Default ").unwrap(), Seccomp::EngineDefault);
        let error = seccomp("off").unwrap_err().to_string();
        assert!(
            error.contains("RUNNER_SECCOMP=\"off\"") && error.contains("default"),
            "{error}"
        );
    }

    #[test]
    fn the_docker_runtime_is_a_name_or_the_engines_default() {
        let runtime = |value: &str| {
            load(&[("RUNNER_DOCKER_RUNTIME", value)]).map(|config| config.docker.sandbox.hardening.runtime)
        };
        assert_eq!(load(&[]).unwrap().docker.sandbox.hardening.runtime, None);
        assert_eq!(runtime(" ").unwrap(), None);
        assert_eq!(runtime("runsc").unwrap().as_deref(), Some("runsc"));
        let error = runtime("runsc --debug").unwrap_err().to_string();
        assert!(error.contains("RUNNER_DOCKER_RUNTIME=\"runsc --debug\""), "{error}");
    }
}
