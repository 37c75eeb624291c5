//! The checkers plan (`cargo bench --bench harness -- checkers`): a 10-test C++ problem judged by a C++ checker
//! program against the same problem judged by the exact comparison, in one run (issue 22).
//!
//! An idle runner at parallelism 1 receives, each round, one submission of each kind, in alternating order. Every
//! submission's source is unique (a student's new code, so the program is always compiled); the checker is the
//! same in every submission, so it is built for the first and must come from the artifact cache for all the others.
//! Latency is send to result through Kafka; the figures are medians over the counted rounds. The runner's own count
//! of cache hits, logged when it stops, must be the checker's (every submission after the first) and its misses
//! every program and the checker's first build (the run fails otherwise).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::processes::{Broker, Runner, Tools};
use super::{builds, output, stats};
use crate::kafka;

/// Counted rounds; each sends one submission of each kind. Round 0 warms the pools and is not counted, so the
/// checker serves 50 scripts of one problem: built for the first, found in the cache for the other 49.
const ROUNDS: usize = 49;

/// The problem's program: the sum of two numbers.
const PROGRAM: &str = "#include <iostream>\nint main(){long long a,b;std::cin>>a>>b;std::cout<<a+b<<\"\\n\";}\n";

/// A C++ checker in testlib's calling convention: the tokens of the output against the answer's.
const CHECKER: &str = r#"#include <fstream>
#include <iostream>
#include <string>
int main(int argc, char* argv[]) {
    if (argc < 4) { std::cerr << "FAIL usage: checker input output answer\n"; return 3; }
    std::ifstream output(argv[2]), answer(argv[3]);
    std::string got, want;
    int index = 0;
    while (answer >> want) {
        ++index;
        if (!(output >> got)) { std::cerr << "wrong answer token " << index << " is missing\n"; return 1; }
        if (got != want) { std::cerr << "wrong answer token " << index << ": expected " << want << ", found " << got << "\n"; return 1; }
    }
    if (output >> got) { std::cerr << "wrong answer extra output\n"; return 1; }
    std::cerr << "ok " << index << " tokens\n";
    return 0;
}
"#;

/// The kinds of submission compared.
const KINDS: [&str; 2] = ["exact", "checker"];

fn message(kind: &str, marker: &str) -> Value {
    let tests: Vec<Value> = (1..=10)
        .map(|n: i64| json!({"input": format!("{n} {}\n", n * n), "expected_output": format!("{}\n", n + n * n)}))
        .collect();
    let mut message = json!({
        "language": "cpp",
        "source": format!("// {marker}\n{PROGRAM}"),
        "tests": tests,
    });
    if kind == "checker" {
        message["checker"] = json!({"language": "cpp", "source": CHECKER});
    }
    message
}

/// Runs the plan and writes `checkers_manifest.json` under `out`. Returns the manifest.
///
/// # Errors
/// When Docker, a process or Kafka fails, or a submission is not judged OK.
pub async fn run(tools: &Tools, out: &Path) -> anyhow::Result<Value> {
    std::fs::create_dir_all(out.join("logs")).with_context(|| format!("cannot create {}", out.display()))?;
    let clock = Instant::now();
    let started_unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let tag = format!("{started_unix:x}");
    let broker = Broker::start(tools, 4).await?;
    let log = out.join("logs").join("checkers-runner.log");
    let runner = Runner::start(tools, &broker.brokers, 1, &format!("bench-{tag}-checkers"), &log)?;
    let measured = measure(&broker.brokers, &tag).await;
    runner.stop().await;
    broker.stop().await;
    let samples = measured?;

    // Every submission is a new program (a miss); the checker is built once and then found (hits).
    let submissions = (ROUNDS as u64 + 1) * KINDS.len() as u64;
    let checked = ROUNDS as u64 + 1;
    let counts = builds::cache_counts(&log);
    if let Some((hits, misses)) = counts {
        anyhow::ensure!(
            hits == checked - 1 && misses == submissions + 1,
            "the runner counted {hits} cache hits and {misses} misses; expected {} hits (the checker after its \
             first build) and {} misses (every program and the checker once)",
            checked - 1,
            submissions + 1
        );
    }
    let median = |kind: &str| {
        let values = samples.get(kind).cloned().unwrap_or_default();
        stats::distribution(&values).map(|d| d.median)
    };
    let (exact, checker) = (median("exact"), median("checker"));
    let manifest = json!({
        "plan": {"name": "checkers", "rounds": ROUNDS, "tests_per_submission": 10},
        "machine": output::machine(),
        "started_unix": started_unix,
        "duration_seconds": clock.elapsed().as_secs_f64(),
        "latency_median_ms": {"exact": exact, "checker": checker},
        "checker_over_exact": exact.zip(checker).map(|(exact, checker)| checker / exact),
        "checker_overhead_ms": exact.zip(checker).map(|(exact, checker)| checker - exact),
        "checker_builds": counts.map(|(hits, _)| json!({
            "scripts": checked,
            "from_cache": hits,
            "hit_rate": hits as f64 / checked as f64,
        })),
    });
    output::finish(&out.join("checkers_manifest.json"), manifest, clock)
}

/// Sends one submission of each kind per round, alternating which goes first, and times each result.
async fn measure(brokers: &str, tag: &str) -> anyhow::Result<BTreeMap<&'static str, Vec<f64>>> {
    let stop = CancellationToken::new();
    let mut results = kafka::results(
        brokers,
        "script-results",
        &format!("checkers-{tag}-reader"),
        Duration::from_millis(100),
        stop.clone(),
    )?;
    let producer = kafka::producer(brokers)?;
    let mut samples: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
    for round in 0..=ROUNDS {
        let mut kinds = KINDS;
        if round % 2 == 1 {
            kinds.reverse();
        }
        for kind in kinds {
            let id = format!("checkers-{tag}-{round}-{kind}");
            let mut payload = message(kind, &id);
            payload["id"] = json!(id);
            let latency = kafka::judged_ok(&producer, &mut results, &id, &payload.to_string()).await?;
            if round > 0 {
                samples.entry(kind).or_default().push(latency.as_secs_f64() * 1000.0);
            }
            // Idle between submissions, so that each is judged by an idle runner whose pool has refilled.
            tokio::time::sleep(Duration::from_millis(700)).await;
        }
    }
    stop.cancel();
    Ok(samples)
}
