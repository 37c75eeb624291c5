//! The sandbox plan (`cargo bench --bench harness -- sandbox`): scrc's sandboxes in one run against the floor of
//! what Docker itself costs. (Until issue 21 it also measured the retired fresh path, a container per test; its
//! figures stay in the README as history.)
//!
//! - **Latency floor**: each latency program (the library's OK program of every language) run the cheapest way
//!   Docker allows: one `docker exec` per test into a container of the same image that is already started and has
//!   run the program once, after one `docker exec` of the compiler for compiled languages, with the toolchain as
//!   scrc uses it (Go from a private copy of the image's prepared build cache each time, javac with its class-data
//!   archive). Median of five.
//! - **Latency**: an idle runner at parallelism 1, each program sent alone (unique source, so no cache helps) and
//!   timed from send to result through Kafka. Median per language, and its ratio to the floor.
//! - **Throughput**: the classroom mix (60 % Python, 20 % Java, then C, C++ and Go; OK, WA and TL) with unique
//!   sources, one runner at `RUNNER_MAX_PARALLEL=4`, two submissions outstanding per slot.
//! - **School burst**: the load-test report's 500 submissions at once, unique sources, drain rate and latency
//!   quantiles, and the runner's resident memory idle and at its peak.
//!
//! `SCRC_BENCH_SCALE` scales the throughput window and the burst.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::load::{self, Mix, Order, Phases, Sources};
use super::plan::Burst;
use super::processes::{Broker, Runner, Tools};
use super::{charts, output, stats};
use crate::kafka;
use crate::library::Scenario;

const LANGUAGES: [&str; 5] = ["python", "c", "cpp", "go", "java"];
/// Samples per language for the floor and for scrc's latency.
const REPEATS: usize = 5;

/// Runs the plan and writes `sandbox_manifest.json`, CSVs and charts under `out`. Returns the manifest.
///
/// # Errors
/// When Docker, a process or Kafka fails.
pub async fn run(tools: &Tools, out: &Path, scale: f64) -> anyhow::Result<Value> {
    std::fs::create_dir_all(out.join("logs")).with_context(|| format!("cannot create {}", out.display()))?;
    let library = crate::library()?;
    let clock = Instant::now();
    let started_unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let tag = format!("{started_unix:x}");

    eprintln!("bench: latency floor (docker exec into warm containers)");
    let mut floors = BTreeMap::new();
    for language in LANGUAGES {
        let scenario = ok(&library, language)?;
        let floor = floor(tools, scenario)
            .await
            .with_context(|| format!("{language} floor"))?;
        eprintln!("bench:   {language}: {floor:.0} ms");
        floors.insert(language, floor);
    }

    eprintln!("bench: latency ({:.0} s elapsed)", clock.elapsed().as_secs_f64());
    let latency = idle_latency(tools, "scrc", &library, &LANGUAGES, out, &tag).await?;

    let window = Duration::from_secs_f64(60.0 * scale);
    eprintln!("bench: throughput ({:.0} s elapsed)", clock.elapsed().as_secs_f64());
    let throughput = classroom_throughput(tools, "scrc", &library, window, out, &tag).await?;

    let burst = Burst {
        students: ((250.0 * scale).round() as usize).max(5),
        replicas: 1,
        parallelism: 4,
        timeout: Duration::from_secs(1800),
    };
    eprintln!("bench: school burst ({:.0} s elapsed)", clock.elapsed().as_secs_f64());
    let (samples, burst) = super::run_burst(burst, &library, tools, out, &tag, Sources::Unique).await?;
    output::write_case(out, "sandbox_burst", "scrc", std::slice::from_ref(&samples))?;

    let mut rows = Vec::new();
    let mut bars = Vec::new();
    for language in LANGUAGES {
        let floor = floors[language];
        let scrc = latency.get(language).copied();
        rows.push(json!({
            "language": language,
            "floor_ms": floor,
            "scrc_ms": scrc,
            "scrc_over_floor": scrc.map(|ms| ms / floor),
        }));
        for (name, value) in [("floor", Some(floor)), ("scrc", scrc)] {
            if let Some(ms) = value {
                bars.push((format!("{} {name}", super::short(language)), ms));
            }
        }
    }
    charts::bars(
        &out.join("sandbox_latency.png"),
        "Idle latency, OK programs: the floor and scrc",
        "milliseconds, send to result",
        &bars,
    )?;
    let manifest = json!({
        "plan": {"name": "sandbox", "scale": scale},
        "machine": output::machine(),
        "started_unix": started_unix,
        "duration_seconds": clock.elapsed().as_secs_f64(),
        "latency": rows,
        "throughput_per_min": throughput,
        "school_burst": burst,
        "charts": ["sandbox_latency.png"],
    });
    output::finish(&out.join("sandbox_manifest.json"), manifest, clock)
}

/// The runtimes plan (`cargo bench --bench harness -- runtimes`): gVisor's cost, runc and runsc side by side in one
/// run. Each round measures the idle latency of every language's OK program (as in [`run`]) and the classroom
/// throughput at `RUNNER_MAX_PARALLEL=4`, first under runc and then under runsc; two rounds, so that a drift of
/// the machine shows as a difference between rounds rather than between runtimes. Needs the engine to offer the
/// runtime `runsc` (scripts/install-gvisor.sh).
///
/// # Errors
/// When Docker, a process or Kafka fails.
pub async fn runtimes(tools: &Tools, out: &Path, scale: f64) -> anyhow::Result<Value> {
    const ROUNDS: usize = 2;
    std::fs::create_dir_all(out.join("logs")).with_context(|| format!("cannot create {}", out.display()))?;
    let library = crate::library()?;
    let clock = Instant::now();
    let started_unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let window = Duration::from_secs_f64(120.0 * scale);
    let mut latency: BTreeMap<&str, BTreeMap<String, Vec<f64>>> = BTreeMap::new();
    let mut throughput: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for round in 1..=ROUNDS {
        for runtime in ["runc", "runsc"] {
            let mut tools = tools.clone();
            tools.env.push(("RUNNER_DOCKER_RUNTIME".into(), runtime.into()));
            let tag = format!("{started_unix:x}-{round}");
            let label = format!("{runtime}-{round}");
            eprintln!(
                "bench: round {round}, {runtime}: latency ({:.0} s elapsed)",
                clock.elapsed().as_secs_f64()
            );
            let medians = idle_latency(&tools, &label, &library, &LANGUAGES, out, &tag).await?;
            for (language, median) in medians {
                latency
                    .entry(runtime)
                    .or_default()
                    .entry(language)
                    .or_default()
                    .push(median);
            }
            eprintln!(
                "bench: round {round}, {runtime}: throughput ({:.0} s elapsed)",
                clock.elapsed().as_secs_f64()
            );
            let per_min = classroom_throughput(&tools, &label, &library, window, out, &tag).await?;
            throughput.entry(runtime).or_default().push(per_min);
        }
    }
    let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len().max(1) as f64;
    let mut rows = Vec::new();
    let mut bars = Vec::new();
    for language in LANGUAGES {
        let of = |runtime: &str| latency.get(runtime).and_then(|m| m.get(language)).map(|v| mean(v));
        let (runc, runsc) = (of("runc"), of("runsc"));
        rows.push(json!({
            "language": language,
            "runc_ms": runc,
            "runsc_ms": runsc,
            "runsc_over_runc": runc.zip(runsc).map(|(runc, runsc)| runsc / runc),
            "rounds": {"runc": latency.get("runc").and_then(|m| m.get(language)),
                       "runsc": latency.get("runsc").and_then(|m| m.get(language))},
        }));
        for (runtime, value) in [("runc", runc), ("runsc", runsc)] {
            if let Some(ms) = value {
                bars.push((format!("{} {runtime}", super::short(language)), ms));
            }
        }
    }
    charts::bars(
        &out.join("runtimes_latency.png"),
        "Idle latency, OK programs: runc and gVisor (runsc)",
        "milliseconds, send to result",
        &bars,
    )?;
    let (runc, runsc) = (mean(&throughput["runc"]), mean(&throughput["runsc"]));
    let manifest = json!({
        "plan": {"name": "runtimes", "scale": scale, "rounds": ROUNDS, "window_seconds": window.as_secs_f64()},
        "machine": output::machine(),
        "started_unix": started_unix,
        "duration_seconds": clock.elapsed().as_secs_f64(),
        "latency": rows,
        "throughput_per_min": {"runc": throughput["runc"], "runsc": throughput["runsc"],
                               "runsc_over_runc": runsc / runc},
        "charts": ["runtimes_latency.png"],
    });
    output::finish(&out.join("runtimes_manifest.json"), manifest, clock)
}

pub(super) fn ok<'a>(library: &'a [Scenario], language: &str) -> anyhow::Result<&'a Scenario> {
    library
        .iter()
        .find(|s| s.language == language && s.outcome == "ok")
        .with_context(|| format!("the library has no {language} ok scenario"))
}

/// The image a language builds in, as the runners get it.
fn build_image(tools: &Tools, language: &str) -> anyhow::Result<String> {
    let variable = match language {
        "python" => "PYTHON_IMAGE",
        "c" => "C_IMAGE",
        "cpp" => "CPP_IMAGE",
        "go" => "GO_IMAGE",
        _ => "JAVA_IMAGE",
    };
    std::env::var(variable)
        .ok()
        .or_else(|| {
            tools
                .env
                .iter()
                .find(|(name, _)| name == variable)
                .map(|(_, v)| v.clone())
        })
        .with_context(|| format!("{variable} is not set"))
}

/// The file name, compile command and run command scrc uses for a language, in a working directory.
fn commands(language: &str, attempt: usize) -> (&'static str, Option<String>, &'static str) {
    match language {
        "python" => ("main.py", None, "python3 main.py"),
        "c" => (
            "main.c",
            Some(
                "gcc -O2 -std=gnu17 -static -pipe -fdiagnostics-color=never -fmax-errors=20 -o prog main.c -lm".into(),
            ),
            "./prog",
        ),
        "cpp" => (
            "main.cpp",
            Some(
                "g++ -O2 -std=gnu++17 -static -pipe -fdiagnostics-color=never -fmax-errors=20 -o prog main.cpp".into(),
            ),
            "./prog",
        ),
        "go" => (
            "main.go",
            Some(format!(
                "rm -rf /tmp/gocache-{attempt}; [ ! -d /opt/scrc/go-cache ] || \
                 cp -R /opt/scrc/go-cache /tmp/gocache-{attempt}; \
                 CGO_ENABLED=0 GOCACHE=/tmp/gocache-{attempt} GOPATH=/tmp/go GOFLAGS=-buildvcs=false \
                 GOTOOLCHAIN=local GOPROXY=off go build -ldflags='-s -w' -o prog main.go"
            )),
            "./prog",
        ),
        _ => (
            "Main.java",
            Some(
                "javac -J-XX:+UseSerialGC -J-XX:TieredStopAtLevel=1 -J-XX:-UsePerfData -J-Xshare:auto \
                 -J-XX:SharedArchiveFile=/opt/scrc/javac.jsa -encoding UTF-8 -d . Main.java"
                    .into(),
            ),
            "java -XX:+UseSerialGC -XX:-UsePerfData -Xshare:auto -Xmx64m -cp . Main",
        ),
    }
}

/// One `docker exec` with `input` on stdin; its wall time.
async fn exec(container: &str, command: &str, input: &[u8]) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut child = Command::new("docker")
        .args([
            "exec",
            "-i",
            "-w",
            "/tmp/w",
            "-e",
            "HOME=/tmp",
            container,
            "sh",
            "-c",
            command,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot run docker")?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input).await?;
    }
    let status = child.wait().await?;
    anyhow::ensure!(status.success(), "{command:?} failed in the floor container ({status})");
    Ok(started.elapsed())
}

/// The floor of one language: the median over [`REPEATS`] of compile (if any) plus one exec per test, in a started
/// container that has run the program once already.
pub(super) async fn floor(tools: &Tools, scenario: &Scenario) -> anyhow::Result<f64> {
    let image = build_image(tools, &scenario.language)?;
    let name = format!("scrc-bench-floor-{}-{}", scenario.language, std::process::id());
    let started = Command::new("docker")
        .args(["run", "-d", "--rm", "--network", "none", "--name", &name])
        .args([
            "--tmpfs",
            "/tmp:rw,exec,size=256m,mode=1777",
            "--entrypoint",
            "sh",
            &image,
        ])
        .args(["-c", "mkdir -p /tmp/w && exec sleep 3600"])
        .stdout(Stdio::null())
        .status()
        .await?;
    anyhow::ensure!(started.success(), "cannot start a floor container of {image}");
    let measured = async {
        let (file, _, _) = commands(&scenario.language, 0);
        exec(&name, &format!("cat > /tmp/w/{file}"), scenario.source.as_bytes()).await?;
        let mut totals = Vec::new();
        for attempt in 0..=REPEATS {
            let (_, compile, run) = commands(&scenario.language, attempt);
            let mut total = Duration::ZERO;
            if let Some(compile) = compile {
                total += exec(&name, &compile, b"").await?;
            }
            for test in &scenario.tests {
                total += exec(&name, run, test.input.as_bytes()).await?;
            }
            // The first round only warms the container up.
            if attempt > 0 {
                totals.push(total.as_secs_f64() * 1000.0);
            }
        }
        anyhow::Ok(stats::distribution(&totals).map_or(0.0, |d| d.median))
    }
    .await;
    let _ = Command::new("docker")
        .args(["rm", "-f", &name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
    measured
}

/// The languages plan (`cargo bench --bench harness -- languages`): the idle latency of the OK program of every
/// language of the full library, the seven scrc added to SCRC's included, on the warm path. The runner primes a warm
/// sandbox for every language at its start, as `scrc run` does.
///
/// # Errors
/// When Docker, a process or Kafka fails, or a program is not judged OK.
pub async fn languages(tools: &Tools, out: &Path) -> anyhow::Result<Value> {
    std::fs::create_dir_all(out.join("logs")).with_context(|| format!("cannot create {}", out.display()))?;
    let library = crate::full_library()?;
    let clock = Instant::now();
    let started_unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let tag = format!("{started_unix:x}");
    let mut languages: Vec<&str> = library.iter().map(|s| s.language.as_str()).collect();
    languages.dedup();
    eprintln!(
        "bench: idle latency of the OK program, warm path, {} languages",
        languages.len()
    );
    let latency = idle_latency(tools, "languages", &library, &languages, out, &tag).await?;
    let manifest = json!({
        "plan": {"name": "languages"},
        "machine": output::machine(),
        "started_unix": started_unix,
        "duration_seconds": clock.elapsed().as_secs_f64(),
        "warm_latency_median_ms": latency,
    });
    std::fs::write(
        out.join("languages_manifest.json"),
        serde_json::to_vec_pretty(&manifest)?,
    )?;
    Ok(manifest)
}

/// Median send-to-result latency of the OK program of each of `languages`, from an idle runner at parallelism 1 on
/// runner labelled `label` in its logs and ids.
pub(super) async fn idle_latency(
    tools: &Tools,
    label: &str,
    library: &[Scenario],
    languages: &[&str],
    out: &Path,
    tag: &str,
) -> anyhow::Result<BTreeMap<String, f64>> {
    let broker = Broker::start(tools, 4).await?;
    let log = out.join("logs").join(format!("latency-{label}-runner.log"));
    let runner = Runner::start(tools, &broker.brokers, 1, &format!("bench-{tag}-latency-{label}"), &log)?;
    let measured = async {
        let stop = CancellationToken::new();
        let mut results = kafka::results(
            &broker.brokers,
            "script-results",
            &format!("latency-{tag}-{label}-reader"),
            Duration::from_millis(100),
            stop.clone(),
        )?;
        let producer = kafka::producer(&broker.brokers)?;
        let mut sequence = 0;
        let mut once = |scenario: &Scenario| {
            sequence += 1;
            let id = format!("latency-{tag}-{label}-{sequence}-{}", scenario.language);
            (id.clone(), scenario.unique(&id).message(&id).to_string())
        };
        // The first result also means the runner is in its group and this reader is assigned.
        let mut latencies: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for language in std::iter::once("python").chain(languages.iter().copied()) {
            let scenario = ok(library, language)?;
            let repeats = if latencies.is_empty() { 1 } else { REPEATS };
            for _ in 0..repeats {
                let (id, message) = once(scenario);
                let sent = Instant::now();
                kafka::send(&producer, "scripts", &id, &message).await?;
                let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
                loop {
                    let received = tokio::time::timeout_at(deadline, results.recv())
                        .await
                        .with_context(|| format!("no result for {id} ({label})"))?
                        .context("the result reader stopped")?;
                    if received.id == id {
                        anyhow::ensure!(received.status == "OK", "{id} got {}", received.status);
                        latencies
                            .entry(language.to_owned())
                            .or_default()
                            .push(received.at.duration_since(sent).as_secs_f64() * 1000.0);
                        break;
                    }
                }
                // Idle: the runner has refilled its pool and finished removing containers.
                tokio::time::sleep(Duration::from_millis(700)).await;
            }
        }
        stop.cancel();
        let medians = latencies
            .into_iter()
            .filter_map(|(language, mut samples)| {
                if samples.len() > 1 {
                    samples.remove(0);
                }
                Some((language, stats::distribution(&samples)?.median))
            })
            .collect();
        anyhow::Ok(medians)
    }
    .await;
    runner.stop().await;
    broker.stop().await;
    measured
}

/// Submissions per minute of the classroom mix with unique sources, one runner at parallelism 4, labelled `label`.
async fn classroom_throughput(
    tools: &Tools,
    label: &str,
    library: &[Scenario],
    window: Duration,
    out: &Path,
    tag: &str,
) -> anyhow::Result<f64> {
    let mix = Mix {
        order: Order::Weighted(classroom_weights(library)),
        seed: 0xc1a55,
        sources: Sources::Unique,
    };
    let measured = throughput(tools, &format!("throughput-{label}"), library, mix, window, out, tag).await?;
    output::write_case(
        out,
        "sandbox_throughput",
        label,
        std::slice::from_ref(&measured.samples),
    )?;
    Ok(measured.per_min)
}

/// The classroom's share of each scenario: 60 % Python, 20 % Java, then C, C++ and Go; 60 % OK, 30 % WA, 10 % TL.
pub(super) fn classroom_weights(library: &[Scenario]) -> Vec<f64> {
    library
        .iter()
        .map(|s| {
            let language = match s.language.as_str() {
                "python" => 0.60,
                "java" => 0.20,
                "c" | "cpp" => 0.07,
                _ => 0.06,
            };
            let outcome = match s.outcome.as_str() {
                "ok" => 0.6,
                "wa" => 0.3,
                "tl" => 0.1,
                _ => 0.0,
            };
            language * outcome
        })
        .collect()
}

/// What one throughput run measured.
pub(super) struct Measured {
    pub samples: Vec<super::load::Sample>,
    pub per_min: f64,
    /// The runner's log, which ends with its artifact cache's counters.
    pub log: std::path::PathBuf,
}

/// Submissions per minute of `mix`, one runner of `tools` at parallelism 4 with two submissions outstanding per
/// slot, over `window` after a 10 s warm-up.
pub(super) async fn throughput(
    tools: &Tools,
    name: &str,
    library: &[Scenario],
    mix: Mix,
    window: Duration,
    out: &Path,
    tag: &str,
) -> anyhow::Result<Measured> {
    let broker = Broker::start(tools, 12).await?;
    let log = out.join("logs").join(format!("{name}-runner.log"));
    let mut runner = Runner::start(tools, &broker.brokers, 4, &format!("bench-{tag}-{name}"), &log)?;
    let phases = Phases {
        warmup: Duration::from_secs(10),
        window,
        cooldown: Duration::from_secs(60),
    };
    let samples = load::closed_loop(&broker.brokers, library, mix, 8, phases, &format!("tp-{tag}-{name}")).await;
    let exited = runner.exited();
    runner.stop().await;
    broker.stop().await;
    let samples = samples?;
    anyhow::ensure!(
        exited.is_none(),
        "the {name} runner exited early; see {}",
        log.display()
    );
    let per_min = stats::run_metrics(&samples, window.as_secs_f64()).throughput_per_min;
    Ok(Measured { samples, per_min, log })
}
