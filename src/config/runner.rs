//! Who this runner is and where it reports: its instance id, its health file and its HTTP listener.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::env::Env;
use super::{ConfigError, invalid};

/// `RUNNER_INSTANCE_ID`, or `<hostname>-<pid>` when unset.
///
/// # Errors
/// [`ConfigError::Invalid`] for an id that is empty or has characters a container label or name cannot hold.
pub(super) fn instance_id(env: &Env) -> Result<String, ConfigError> {
    match &env.runner_instance_id {
        Some(id) => {
            if id.is_empty() || !id.chars().all(is_instance_char) {
                return Err(invalid(
                    "RUNNER_INSTANCE_ID",
                    id,
                    "use letters, digits, '-', '_' and '.' only",
                ));
            }
            Ok(id.clone())
        }
        None => Ok(default_instance_id()),
    }
}

fn is_instance_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.".contains(c)
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
        .map(|c| if is_instance_char(c) { c } else { '-' })
        .collect();
    format!("{host}-{}", std::process::id())
}

/// `RUNNER_HTTP_ADDR`; `None` when set empty.
///
/// # Errors
/// [`ConfigError::Invalid`] for anything but an IP address and port.
pub(super) fn http_addr(env: &Env) -> Result<Option<SocketAddr>, ConfigError> {
    match env.runner_http_addr.trim() {
        "" => Ok(None),
        text => text.parse::<SocketAddr>().map(Some).map_err(|_| {
            invalid(
                "RUNNER_HTTP_ADDR",
                text,
                "expected an IP address and port such as 0.0.0.0:9464 or [::]:9464, or empty to turn it off",
            )
        }),
    }
}

/// Where the runner writes its health when `RUNNER_HEALTH_FILE` is not set.
pub fn default_health_file() -> PathBuf {
    std::env::temp_dir().join("scrc-health.json")
}

/// `RUNNER_HEALTH_FILE`, or the default path when unset or empty.
pub(super) fn health_file(env: &Env) -> PathBuf {
    env.runner_health_file
        .as_deref()
        .filter(|path| !path.is_empty())
        .map_or_else(default_health_file, PathBuf::from)
}
