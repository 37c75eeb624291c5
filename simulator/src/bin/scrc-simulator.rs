//! `scrc-simulator`: sends the script library to the runner and validates every result. Configured by SCRC's
//! simulator variables (`KAFKA_BROKER`, `SCRIPT_ITERATIONS`, ...) or the matching flags (`--kafka-broker`, ...).
//! Exits 0 only when every verdict matched.

use std::process::ExitCode;

use scrc_simulator::{SimulatorConfig, library};
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match SimulatorConfig::load(std::env::vars(), &args) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("scrc-simulator: {error}");
            return ExitCode::from(2);
        }
    };
    let library = match library() {
        Ok(library) => library,
        Err(error) => {
            eprintln!("scrc-simulator: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("scrc-simulator: {error}");
            return ExitCode::FAILURE;
        }
    };
    let stop = CancellationToken::new();
    let on_signal = stop.clone();
    let report = runtime.block_on(async move {
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                on_signal.cancel();
            }
        });
        scrc_simulator::run(&config, &library, stop).await
    });
    match report {
        Ok(report) => {
            println!("{}", report.validation.table());
            if report.timed_out {
                println!(
                    "timed out waiting for results after {:.1} s",
                    report.elapsed.as_secs_f64()
                );
            }
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("scrc-simulator: {error:#}");
            ExitCode::FAILURE
        }
    }
}
