//! The `scrc` binary: parses the command, loads the configuration, starts logging, and hands over.

use std::process::ExitCode;

use scrc::cli::{self, Command, USAGE};
use scrc::config::Config;
use scrc::{commands, shutdown, telemetry};
use tokio_util::sync::CancellationToken;

/// `scrc health`: reads the running runner's health file (`RUNNER_HEALTH_FILE`).
fn health() -> ExitCode {
    let path = std::env::var("RUNNER_HEALTH_FILE")
        .ok()
        .filter(|p| !p.is_empty())
        .map_or_else(scrc::config::default_health_file, std::path::PathBuf::from);
    match scrc::health::check(&path) {
        Ok(health) => {
            println!(
                "healthy: {} reaches Kafka and Docker, is in its group, owns {} partitions",
                health.instance, health.assigned_partitions
            );
            ExitCode::SUCCESS
        }
        Err(reason) => {
            println!("unhealthy: {reason}");
            ExitCode::FAILURE
        }
    }
}

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
        Command::Run | Command::DevBroker { .. } | Command::CreateTopics { .. } => {}
        Command::Health => return health(),
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
            Command::CreateTopics {
                partitions,
                replication,
            } => commands::create_topics(&config, partitions, replication).await,
            _ => {
                let stop = CancellationToken::new();
                shutdown::on_signals(stop.clone())?;
                commands::run(config, stop).await.map(|_| ())
            }
        }
    });
    // A final commit the executor gave up on may still hold a blocking thread; dropping the runtime would wait
    // for it without limit, outlasting the shutdown bound.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("scrc: {error:#}");
            ExitCode::FAILURE
        }
    }
}
