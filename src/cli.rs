//! The command line: `scrc [run]`, `scrc dev-broker`, `scrc create-topics` and `scrc health`. The demo is a binary of
//! its own, `scrc-demo`.
//! Configuration itself comes from the environment, as in SCRC; flags only choose what to do.

use std::fmt;

pub const USAGE: &str = "\
scrc: a code runner. Scripts in from Kafka, built and run in Docker sandboxes, verdicts out to Kafka.

usage: scrc [COMMAND] [FLAGS]

commands:
  run                  run the runner daemon; the default when no command is given
  dev-broker           start an embedded Kafka-protocol broker for development [--partitions N, default 6]
  create-topics        create the scripts, results, dead-letter and events topics [--partitions N] [--replication N]
  health               exit 0 when the running runner is ready (Kafka, Docker, group): the container HEALTHCHECK
  help                 show this help (also --help, -h)
  version              show the version (also --version, -V)

The demo (a broker, a runner and the simulator in one process, every verdict checked) is its own binary:
scrc-demo [--all-languages], or from the source tree: cargo run --release --bin scrc-demo.

Configuration comes from environment variables (KAFKA_BROKERS, RUNNER_MAX_PARALLEL, RUNNER_HTTP_ADDR, ...), listed
in the README's Configuration section. A running runner serves /metrics, /healthz and /readyz on RUNNER_HTTP_ADDR
(default 0.0.0.0:9464).";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Run,
    DevBroker { partitions: i32 },
    CreateTopics { partitions: i32, replication: i32 },
    Health,
    Help,
    Version,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\n\n{USAGE}", self.0)
    }
}

impl std::error::Error for UsageError {}

/// Parses the arguments after the program name.
///
/// # Errors
/// [`UsageError`] for an unknown command or flag, or a bad flag value.
pub fn parse(args: &[String]) -> Result<Command, UsageError> {
    let mut args = args.iter().map(String::as_str);
    let command = match args.next() {
        None | Some("run") => Command::Run,
        Some("dev-broker") => {
            let mut partitions = 6;
            while let Some(flag) = args.next() {
                match flag {
                    "--partitions" => {
                        let value = args
                            .next()
                            .ok_or_else(|| UsageError("--partitions needs a value".into()))?;
                        partitions = value
                            .parse()
                            .ok()
                            .filter(|n| (1..=1000).contains(n))
                            .ok_or_else(|| UsageError(format!("--partitions {value:?}: expected 1 to 1000")))?;
                    }
                    other => return Err(UsageError(format!("unknown flag {other:?} for dev-broker"))),
                }
            }
            return Ok(Command::DevBroker { partitions });
        }
        Some("demo") => {
            return Err(UsageError(
                "the demo is a binary of its own: scrc-demo [--all-languages] (cargo run --release --bin scrc-demo)"
                    .into(),
            ));
        }
        Some("health") => Command::Health,
        Some("create-topics") => {
            let (mut partitions, mut replication) = (12, 1);
            while let Some(flag) = args.next() {
                let target = match flag {
                    "--partitions" => &mut partitions,
                    "--replication" => &mut replication,
                    other => return Err(UsageError(format!("unknown flag {other:?} for create-topics"))),
                };
                let value = args.next().ok_or_else(|| UsageError(format!("{flag} needs a value")))?;
                *target = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| UsageError(format!("{flag} {value:?}: expected 1 to 1000")))?;
            }
            return Ok(Command::CreateTopics {
                partitions,
                replication,
            });
        }
        Some("help" | "--help" | "-h") => Command::Help,
        Some("version" | "--version" | "-V") => Command::Version,
        Some(other) => return Err(UsageError(format!("unknown command {other:?}"))),
    };
    match args.next() {
        None => Ok(command),
        Some(extra) => Err(UsageError(format!("unexpected argument {extra:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(words: &[&str]) -> Result<Command, UsageError> {
        parse(&words.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn bare_scrc_runs_the_daemon_as_scrc_does() {
        assert_eq!(parse_words(&[]), Ok(Command::Run));
        assert_eq!(parse_words(&["run"]), Ok(Command::Run));
    }

    #[test]
    fn dev_broker_takes_a_partition_count() {
        assert_eq!(parse_words(&["dev-broker"]), Ok(Command::DevBroker { partitions: 6 }));
        assert_eq!(
            parse_words(&["dev-broker", "--partitions", "12"]),
            Ok(Command::DevBroker { partitions: 12 })
        );
        assert!(parse_words(&["dev-broker", "--partitions", "0"]).is_err());
        assert!(parse_words(&["dev-broker", "--partitions"]).is_err());
        assert!(parse_words(&["dev-broker", "--fast"]).is_err());
    }

    #[test]
    fn demo_points_to_its_own_binary() {
        let refused = parse_words(&["demo"]).unwrap_err();
        assert!(refused.0.contains("scrc-demo"), "{refused}");
    }

    #[test]
    fn create_topics_and_health_parse() {
        assert_eq!(
            parse_words(&["create-topics"]),
            Ok(Command::CreateTopics {
                partitions: 12,
                replication: 1
            })
        );
        assert_eq!(
            parse_words(&["create-topics", "--replication", "3", "--partitions", "24"]),
            Ok(Command::CreateTopics {
                partitions: 24,
                replication: 3
            })
        );
        assert!(parse_words(&["create-topics", "--partitions", "x"]).is_err());
        assert_eq!(parse_words(&["health"]), Ok(Command::Health));
    }

    #[test]
    fn the_help_lists_every_command_on_a_line_of_its_own() {
        let commands = [
            ("run", Command::Run),
            ("dev-broker", Command::DevBroker { partitions: 6 }),
            (
                "create-topics",
                Command::CreateTopics {
                    partitions: 12,
                    replication: 1,
                },
            ),
            ("health", Command::Health),
            ("help", Command::Help),
            ("version", Command::Version),
        ];
        for (word, command) in commands {
            assert_eq!(parse_words(&[word]), Ok(command), "{word}");
            let lines: Vec<&str> = USAGE
                .lines()
                .filter(|line| line.split_whitespace().next() == Some(word))
                .collect();
            assert_eq!(lines.len(), 1, "{word} has one line: {lines:?}");
            assert!(
                lines[0].split_whitespace().count() > 3,
                "{word} is described: {lines:?}"
            );
        }
        assert!(
            USAGE.lines().all(|line| line.chars().count() <= 120),
            "lines fit 120 columns"
        );
    }

    #[test]
    fn unknown_commands_are_refused_with_usage() {
        let error = parse_words(&["serve"]).unwrap_err();
        assert!(error.to_string().contains("unknown command \"serve\"") && error.to_string().contains("usage:"));
        assert!(parse_words(&["run", "extra"]).is_err());
    }
}
