//! The files plan (`cargo bench --bench harness -- files`): programs of several files against one-file programs of
//! the same size, in one run (issue 23).
//!
//! Four programs, each an OK program summing two numbers: a Java project of 20 files (a main class and 19 helper
//! classes it calls) and the same classes in one file, and a C program of 3 files (`main.c`, `add.c`, `add.h`) and
//! the same code in one file. An idle runner at parallelism 1 receives each program twice in a row, the second
//! time identical, so the first is built and the second must come from the artifact cache (the key covers every
//! file's path and bytes); each round makes every source unique again, so that no earlier round can answer it.
//! Latency is send to result through Kafka; the figures are medians over the rounds, for the first (built) and the
//! second (cached) send. The runner's own count of cache hits, logged when it stops, must equal the second sends, and its misses
//! the first (the run fails otherwise).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::processes::{Broker, Runner, Tools};
use super::{builds, output, stats};
use crate::kafka;

/// Rounds of the four programs; each round sends each program twice.
const ROUNDS: usize = 5;

/// One program as a script message's fields, given the round's unique marker.
struct Program {
    name: &'static str,
    message: fn(&str) -> Value,
}

const PROGRAMS: [Program; 4] = [
    Program {
        name: "java-20-files",
        message: java_project,
    },
    Program {
        name: "java-1-file",
        message: java_one_file,
    },
    Program {
        name: "c-3-files",
        message: c_project,
    },
    Program {
        name: "c-1-file",
        message: c_one_file,
    },
];

const TESTS: [(&str, &str); 3] = [("2 3\n", "5\n"), ("10 20\n", "30\n"), ("-1 1\n", "0\n")];

fn tests() -> Value {
    TESTS
        .iter()
        .map(|(input, expected)| json!({"input": input, "expected_output": expected}))
        .collect()
}

/// The 19 helper classes: each adds its own constant and takes it away again, so that the sum is unchanged and
/// every class is loaded.
fn helper(index: usize, marker: &str) -> String {
    format!(
        "class Step{index} {{ // {marker}\n    static long apply(long value) {{ return value + {index} - {index}; }}\n}}\n"
    )
}

fn java_main(marker: &str) -> String {
    let calls: String = (1..20)
        .map(|index| format!("        v = Step{index}.apply(v);\n"))
        .collect();
    format!(
        "import java.util.*;\n// {marker}\npublic class Main {{\n    public static void main(String[] args) {{\n        \
         Scanner in = new Scanner(System.in);\n        long v = in.nextLong() + in.nextLong();\n{calls}        \
         System.out.println(v);\n    }}\n}}\n"
    )
}

fn java_project(marker: &str) -> Value {
    let files: Vec<Value> = (1..20)
        .map(|index| json!({"path": format!("Step{index}.java"), "content": helper(index, marker)}))
        .collect();
    json!({"language": "java", "source": java_main(marker), "files": files, "tests": tests()})
}

fn java_one_file(marker: &str) -> Value {
    let mut source = java_main(marker);
    for index in 1..20 {
        source.push_str(&helper(index, marker));
    }
    json!({"language": "java", "source": source, "tests": tests()})
}

const C_MAIN: &str = "#include <stdio.h>\n#include \"add.h\"\nint main(void){long a,b;scanf(\"%ld %ld\",&a,&b);\
                      printf(\"%ld\\n\",add(a,b));return 0;}\n";
const C_HEADER: &str = "long add(long a, long b);\n";
const C_ADD: &str = "#include \"add.h\"\nlong add(long a, long b){return a+b;}\n";

fn c_project(marker: &str) -> Value {
    json!({
        "language": "c",
        "source": format!("// {marker}\n{C_MAIN}"),
        "files": [
            {"path": "add.h", "content": format!("// {marker}\n{C_HEADER}")},
            {"path": "add.c", "content": format!("// {marker}\n{C_ADD}")},
        ],
        "tests": tests(),
    })
}

fn c_one_file(marker: &str) -> Value {
    let main = C_MAIN.replace("#include \"add.h\"\n", "");
    let add = C_ADD.replace("#include \"add.h\"\n", "");
    json!({
        "language": "c",
        "source": format!("// {marker}\n// {marker}\n{C_HEADER}// {marker}\n{add}{main}"),
        "tests": tests(),
    })
}

/// Runs the plan and writes `files_manifest.json` under `out`. Returns the manifest.
///
/// # Errors
/// When Docker, a process or Kafka fails, or a program is not judged OK.
pub async fn run(tools: &Tools, out: &Path) -> anyhow::Result<Value> {
    std::fs::create_dir_all(out.join("logs")).with_context(|| format!("cannot create {}", out.display()))?;
    let clock = Instant::now();
    let started_unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let tag = format!("{started_unix:x}");
    let broker = Broker::start(tools, 4).await?;
    let log = out.join("logs").join("files-runner.log");
    let runner = Runner::start(tools, &broker.brokers, 1, &format!("bench-{tag}-files"), &log)?;
    let measured = measure(&broker.brokers, &tag).await;
    runner.stop().await;
    broker.stop().await;
    let samples = measured?;
    let hits = builds::cache_counts(&log);
    let second_sends = (ROUNDS as u64 + 1) * PROGRAMS.len() as u64;
    if let Some((hits, misses)) = hits {
        anyhow::ensure!(
            hits == second_sends && misses == second_sends,
            "the runner counted {hits} cache hits and {misses} misses; every first send is a miss and every \
             second a hit ({second_sends} each)"
        );
    }

    let mut rows = Vec::new();
    for program in &PROGRAMS {
        let median = |second: bool| {
            let values: Vec<f64> = samples.get(&(program.name, second)).cloned().unwrap_or_default();
            stats::distribution(&values).map(|d| d.median)
        };
        rows.push(json!({
            "program": program.name,
            "built_ms": median(false),
            "cached_ms": median(true),
        }));
    }
    let ratio = |several: &str, one: &str, field: &str| {
        let of = |name: &str| {
            rows.iter()
                .find(|row| row["program"] == name)
                .and_then(|row| row[field].as_f64())
        };
        of(several).zip(of(one)).map(|(several, one)| several / one)
    };
    let manifest = json!({
        "plan": {"name": "files", "rounds": ROUNDS},
        "machine": output::machine(),
        "started_unix": started_unix,
        "duration_seconds": clock.elapsed().as_secs_f64(),
        "latency_median_ms": rows,
        "java_20_over_1_built": ratio("java-20-files", "java-1-file", "built_ms"),
        "c_3_over_1_built": ratio("c-3-files", "c-1-file", "built_ms"),
        "cache": hits.map(|(hits, misses)| json!({"hits": hits, "misses": misses, "second_sends": second_sends})),
    });
    output::finish(&out.join("files_manifest.json"), manifest, clock)
}

/// Sends every program twice per round and times each result: latencies by (program, second send).
async fn measure(brokers: &str, tag: &str) -> anyhow::Result<BTreeMap<(&'static str, bool), Vec<f64>>> {
    let stop = CancellationToken::new();
    let mut results = kafka::results(
        brokers,
        "script-results",
        &format!("files-{tag}-reader"),
        Duration::from_millis(100),
        stop.clone(),
    )?;
    let producer = kafka::producer(brokers)?;
    let mut samples: BTreeMap<(&'static str, bool), Vec<f64>> = BTreeMap::new();
    // Round 0 warms the runner's pools and is not counted.
    for round in 0..=ROUNDS {
        for program in &PROGRAMS {
            let marker = format!("{tag}-{round}-{}", program.name);
            let message = (program.message)(&marker);
            for second in [false, true] {
                let id = format!("files-{marker}-{}", u8::from(second));
                let mut payload = message.clone();
                payload["id"] = json!(id);
                let latency = kafka::judged_ok(&producer, &mut results, &id, &payload.to_string()).await?;
                if round > 0 {
                    samples
                        .entry((program.name, second))
                        .or_default()
                        .push(latency.as_secs_f64() * 1000.0);
                }
                tokio::time::sleep(Duration::from_millis(700)).await;
            }
        }
    }
    stop.cancel();
    Ok(samples)
}
