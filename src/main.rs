//! The `scrc` binary: parses the command, loads the configuration, starts logging, and hands over.

use std::process::ExitCode;

use scrc::cli::{self, Command, USAGE};
use scrc::config::Config;
use scrc::{commands, shutdown, telemetry};
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match cli::parse(&args) {
        Ok(command) => command,
        Err(error) => {
            eprintln!("scrc: {error}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Help => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Command::Version => {
            println!("scrc {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Command::Run | Command::DevBroker { .. } => {}
    }
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("scrc: {error}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&config.log);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("scrc: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        match command {
            Command::DevBroker { partitions } => commands::dev_broker(&config, partitions).await,
            _ => {
                let stop = CancellationToken::new();
                shutdown::on_signals(stop.clone())?;
                commands::run(config, stop).await.map(|_| ())
            }
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("scrc: {error:#}");
            ExitCode::FAILURE
        }
    }
}
