//! Times each phase of the sandbox lifecycle for each language on this machine: taking a pre-started pair from the
//! pool, putting the source in, the compiler's run and the program's run (starting and removing containers happens
//! off the script's path). Each script is a small sum program with three tests, built and judged
//! `SCRC_BENCH_ITERATIONS` times (default 5) after one warm-up, on an otherwise idle runner; each source is unique,
//! so the artifact cache never spares a compile.
//!
//!     cargo bench --bench phases
//!
//! Before and after in one run: `SCRC_BENCH_BASELINE_IMAGES` names other images, as `VAR=image` pairs separated by
//! spaces or commas (for the cold toolchains: `scripts/build-images.sh` images before the warm ones, see README
//! "Language images"). The runner is then measured with those images ("before") and with the configured ones
//! ("after"), one script of each in turn, and a last table compares the compile medians per language.
//!
//!     SCRC_BENCH_BASELINE_IMAGES="GO_IMAGE=scrc-local/go:bookworm C_IMAGE=scrc-local/gcc:bookworm \
//!       CPP_IMAGE=scrc-local/gcc:bookworm JAVA_IMAGE=scrc-local/jdk:bookworm" cargo bench --bench phases
//!
//! Needs Docker and the images of `scripts/build-images.sh` (or whatever `*_IMAGE` variables point at).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scrc::adapters::docker::DockerRuntime;
use scrc::adapters::docker::phases::{Phase, PhaseObserver};
use scrc::app::{CircuitBreaker, Judge};
use scrc::config::Config;
use scrc::domain::{Language, Script, Status};
use scrc::testing::fixtures;
use tokio_util::sync::CancellationToken;

#[derive(Default)]
struct Recorder {
    samples: Mutex<BTreeMap<Phase, Vec<Duration>>>,
}

impl PhaseObserver for Recorder {
    fn observe(&self, phase: Phase, duration: Duration) {
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        samples.entry(phase).or_default().push(duration);
    }
}

impl Recorder {
    fn take(&self) -> BTreeMap<Phase, Vec<Duration>> {
        std::mem::take(&mut *self.samples.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The program with a comment naming the iteration, so that the artifact cache never answers: every script is
/// compiled, as the compile medians need.
fn unique_source(language: Language, n: usize) -> String {
    let comment = if matches!(language, Language::Python | Language::Ruby) {
        "#"
    } else {
        "//"
    };
    format!(
        "{}{comment} phases bench {n} {}\n",
        fixtures::sum_program(language),
        std::process::id()
    )
}

fn script(language: Language, n: usize) -> Script {
    fixtures::script(
        format!("bench-{language}-{n}"),
        language,
        &unique_source(language, n),
        &fixtures::SUM_TESTS,
    )
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

/// Per language: the median time of each phase, and of a whole script.
type Medians = BTreeMap<Language, (BTreeMap<Phase, Duration>, Duration)>;

const PHASES: [Phase; 4] = [Phase::Create, Phase::Transfer, Phase::Compile, Phase::Run];

/// The `VAR=image` pairs of `SCRC_BENCH_BASELINE_IMAGES`, or `None` when it is unset or empty.
fn baseline_images() -> Option<Vec<(String, String)>> {
    let value = std::env::var("SCRC_BENCH_BASELINE_IMAGES").ok()?;
    let pairs: Vec<(String, String)> = value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((name, image)) => (name.to_owned(), image.to_owned()),
            None => panic!("SCRC_BENCH_BASELINE_IMAGES: {pair:?} is not VAR=image"),
        })
        .collect();
    (!pairs.is_empty()).then_some(pairs)
}

/// One measured configuration: the configured images ("after"), or those with the baseline images in their place
/// ("before").
struct Setup<'a> {
    label: &'a str,
    images: &'a [(String, String)],
}

/// A runtime of one setup, with the recorder of its phases.
struct Bench {
    judge: Judge<DockerRuntime>,
    recorder: Arc<Recorder>,
}

async fn start(setup: &Setup<'_>) -> Option<Bench> {
    // Local images first, the environment on top: `PYTHON_IMAGE=python:3.12-alpine cargo bench` still works.
    let mut vars = scrc::config::local_images();
    vars.push((
        "RUNNER_INSTANCE_ID".into(),
        format!("bench-{}-{}", setup.label, std::process::id()),
    ));
    vars.extend(std::env::vars());
    vars.extend(setup.images.iter().cloned());
    let config = match Config::from_vars(vars) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("bench: {error}");
            return None;
        }
    };
    let recorder = Arc::new(Recorder::default());
    let observer: Arc<dyn PhaseObserver> = recorder.clone();
    let docker = match DockerRuntime::start_observed(config.docker.clone(), Some(observer)).await {
        Ok(docker) => docker,
        Err(error) => {
            eprintln!("bench: skipped, no Docker engine: {error}");
            return None;
        }
    };
    docker.prime();
    let breaker = Arc::new(CircuitBreaker::new(config.breaker_threshold, config.breaker_cool_down));
    let judge = Judge::new(docker, config.policy, breaker, config.retry);
    Some(Bench { judge, recorder })
}

/// The medians of each setup. With several setups their scripts alternate (one of each in turn), so that a change
/// in the machine's load weighs on all of them alike.
async fn measure(setups: &[Setup<'_>], iterations: usize) -> Option<Vec<Medians>> {
    let mut benches = Vec::new();
    for setup in setups {
        benches.push(start(setup).await?);
    }
    let mut medians = vec![Medians::new(); benches.len()];
    for language in Language::ALL {
        let mut ready = true;
        for bench in &benches {
            let warm_up = bench.judge.judge(&script(language, 0), &CancellationToken::new()).await;
            if !matches!(&warm_up, Ok(report) if report.status == Status::Ok) {
                eprintln!("bench: {language} did not judge OK: {warm_up:?}");
                ready = false;
            }
        }
        if !ready {
            continue;
        }
        let mut totals = vec![Vec::new(); benches.len()];
        let mut samples = vec![BTreeMap::new(); benches.len()];
        for n in 1..=iterations {
            for (index, bench) in benches.iter().enumerate() {
                // An idle runner: the pool has refilled and removals have finished before the next script arrives.
                tokio::time::sleep(Duration::from_millis(500)).await;
                bench.recorder.take();
                let started = Instant::now();
                let report = bench.judge.judge(&script(language, n), &CancellationToken::new()).await;
                totals[index].push(started.elapsed());
                assert!(
                    matches!(report, Ok(ref r) if r.status == Status::Ok),
                    "{} {language}: {report:?}",
                    setups[index].label
                );
                for (phase, durations) in bench.recorder.take() {
                    samples[index].entry(phase).or_insert_with(Vec::new).extend(durations);
                }
            }
        }
        for (index, samples) in samples.iter_mut().enumerate() {
            let phases = PHASES
                .iter()
                .map(|phase| (*phase, median(samples.entry(*phase).or_default())))
                .collect();
            medians[index].insert(language, (phases, median(&mut totals[index])));
        }
    }
    for bench in &benches {
        bench.judge.runtime().cleanup().run().await;
    }
    Some(medians)
}

fn print_table(title: &str, medians: &Medians) {
    println!("\n{title}: median milliseconds per phase and per script (3 tests).");
    print!("| language |");
    for phase in PHASES {
        print!(" {} |", phase.name());
    }
    println!(" script total |");
    println!("|---|{}---|", "---|".repeat(PHASES.len()));
    for (language, (phases, total)) in medians {
        print!("| {language} |");
        for phase in PHASES {
            print!(" {:.1} |", phases[&phase].as_secs_f64() * 1000.0);
        }
        println!(" {:.0} |", total.as_secs_f64() * 1000.0);
    }
}

/// Compile medians per language with the baseline images against the configured ones, measured in this run.
fn print_compile_comparison(before: &Medians, after: &Medians) {
    println!("\nMedian compile milliseconds, baseline images (before) against configured (after).");
    println!("| language | compile before | compile after | after / before | script before | script after |");
    println!("|---|---|---|---|---|---|");
    for (language, (phases_after, total_after)) in after {
        let Some((phases_before, total_before)) = before.get(language) else {
            continue;
        };
        let (compile_before, compile_after) = (phases_before[&Phase::Compile], phases_after[&Phase::Compile]);
        println!(
            "| {language} | {:.0} | {:.0} | {:.2} | {:.0} | {:.0} |",
            compile_before.as_secs_f64() * 1000.0,
            compile_after.as_secs_f64() * 1000.0,
            compile_after.as_secs_f64() / compile_before.as_secs_f64().max(f64::EPSILON),
            total_before.as_secs_f64() * 1000.0,
            total_after.as_secs_f64() * 1000.0,
        );
    }
}

fn main() {
    let iterations: usize = std::env::var("SCRC_BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        println!("{iterations} scripts of 3 tests per language, one at a time, after one warm-up.");
        println!("Create is taking a started pair from the pool, transfer is putting the source in and the wipe");
        println!("before each test; compile and run are the supervisor's.");
        let baseline = baseline_images();
        let mut setups = Vec::new();
        if let Some(images) = &baseline {
            setups.push(Setup {
                label: "before",
                images,
            });
        }
        setups.push(Setup {
            label: "after",
            images: &[],
        });
        let Some(mut medians) = measure(&setups, iterations).await else {
            return;
        };
        let after = medians.pop().unwrap_or_default();
        if let Some(before) = medians.pop() {
            print_table("Before (baseline images)", &before);
            print_table("After", &after);
            print_compile_comparison(&before, &after);
        } else {
            print_table("This build", &after);
        }
    });
}
