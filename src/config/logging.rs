//! How the runner logs: text or JSON lines (`LOG_FORMAT`), filtered by `RUST_LOG` or `LOG_LEVEL`.

use super::env::Env;
use super::{ConfigError, invalid};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// `LOG_FORMAT`: plain text lines for people (the default), or one JSON object per line for a log collector.
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `scrc=debug,rdkafka=warn`.
    pub filter: String,
}

/// The filter when neither `RUST_LOG` nor `LOG_LEVEL` is set.
const DEFAULT_FILTER: &str = "info";

/// # Errors
/// [`ConfigError::Invalid`] for a `LOG_FORMAT` other than `text` or `json`.
pub(super) fn log_settings(env: &Env) -> Result<LogSettings, ConfigError> {
    let format = match env.log_format.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(_) => {
            return Err(invalid(
                "LOG_FORMAT",
                env.log_format.clone().unwrap_or_default(),
                "must be \"text\" or \"json\"",
            ));
        }
    };
    let filter = env
        .rust_log
        .clone()
        .or_else(|| env.log_level.clone())
        .unwrap_or_else(|| DEFAULT_FILTER.into());
    Ok(LogSettings { format, filter })
}
