//! Shutdown on SIGTERM and SIGINT: the first signal starts a graceful shutdown, a second one ends the process at
//! once (what it leaves uncommitted is delivered again).

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// Cancels `shutdown` on the first SIGTERM or SIGINT and exits with status 130 on the second.
///
/// # Errors
/// When the signal handlers cannot be installed.
pub fn on_signals(shutdown: CancellationToken) -> std::io::Result<()> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        for round in 0.. {
            let name = tokio::select! {
                _ = terminate.recv() => "SIGTERM",
                _ = interrupt.recv() => "SIGINT",
            };
            if round == 0 {
                tracing::info!(signal = name, "shutting down: finishing in-flight scripts");
                shutdown.cancel();
            } else {
                tracing::warn!(
                    signal = name,
                    "second signal: exiting now; unfinished scripts will be redelivered"
                );
                std::process::exit(130);
            }
        }
    });
    Ok(())
}

/// Waits for SIGTERM or SIGINT.
///
/// # Errors
/// When the signal handlers cannot be installed.
pub async fn signalled() -> std::io::Result<()> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    Ok(())
}
