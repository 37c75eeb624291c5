//! The benchmark harness, after SCRC's method and matrices, measured against real `scrc` processes:
//!
//! - throughput against `RUNNER_MAX_PARALLEL` for one runner;
//! - runner replicas by parallelism (several runners in one consumer group);
//! - latency per language and outcome: median, p95 and the distribution;
//! - timeout impact: a TL-heavy mix against the baseline;
//! - throughput share by language;
//! - the school burst: every student of a school submitting twice, all at once.
//!
//! Everything lands in one output directory: a CSV per run, aggregated and summary CSVs, PNG charts and
//! `benchmark_manifest.json`.

pub mod builds;
pub mod chaos;
pub mod charts;
pub mod checkers;
pub mod files;
pub mod load;
pub mod output;
pub mod plan;
pub mod processes;
pub mod sandbox;
pub mod stats;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde_json::{Value, json};

use crate::library::Scenario;
use crate::validate::outcome_rank;
use load::{Draw, Phases, Sample};
pub use plan::{Burst, Case, Load, Plan, Profile};
pub use processes::Tools;
use processes::{Broker, Runner};

/// The chart files every plan produces.
pub const CHARTS: [&str; 7] = [
    "single_runner_throughput.png",
    "scaling_heatmap.png",
    "language_latency_heatmap.png",
    "language_latency_boxplot.png",
    "timeout_impact.png",
    "language_throughput.png",
    "school_burst.png",
];

/// The harness's command line, shared by `scrc-bench` and `cargo bench --bench harness`: the plan name (`quick`,
/// `full`, or `school` for the full plan's burst alone) as the first argument, `SCRC_BENCH_SCALE` to scale its
/// windows, `SCRC_BENCH_OUT` for the output directory (default `default_out/<plan>`). Prints the matrices and
/// returns the process exit code.
pub fn main(args: &[String], tools: Tools, default_out: &Path) -> i32 {
    let name = args
        .iter()
        .find(|arg| !arg.starts_with('-'))
        .map_or("quick", String::as_str);
    let scale = std::env::var("SCRC_BENCH_SCALE")
        .ok()
        .and_then(|v| v.parse::<f64>().ok());
    // `sandbox` compares the sandbox with the Docker floor and `runtimes` runc with gVisor (see `sandbox.rs`),
    // `builds` the toolchains and the artifact cache (see `builds.rs`), and `languages` measures every language's
    // latency; they have no windows of the other plans.
    if ["sandbox", "builds", "languages", "runtimes", "files", "checkers"].contains(&name) {
        let out = std::env::var("SCRC_BENCH_OUT")
            .map(PathBuf::from)
            .unwrap_or_else(|_| default_out.join(name));
        let scale = scale.unwrap_or(1.0);
        let outcome = tokio::runtime::Runtime::new()
            .map_err(anyhow::Error::from)
            .and_then(|runtime| {
                runtime.block_on(async {
                    if name == "sandbox" {
                        sandbox::run(&tools, &out, scale).await
                    } else if name == "runtimes" {
                        sandbox::runtimes(&tools, &out, scale).await
                    } else if name == "files" {
                        files::run(&tools, &out).await
                    } else if name == "checkers" {
                        checkers::run(&tools, &out).await
                    } else if name == "languages" {
                        sandbox::languages(&tools, &out).await
                    } else {
                        builds::run(&tools, &out, scale).await
                    }
                })
            });
        return match outcome {
            Ok(manifest) => {
                println!("{}", serde_json::to_string_pretty(&manifest).unwrap_or_default());
                0
            }
            Err(error) => {
                eprintln!("harness: {error:#}");
                1
            }
        };
    }
    // `chaos` kills and restarts runners against tansu (see `chaos/mod.rs`); it has no windows either.
    if name == "chaos" {
        let out = std::env::var("SCRC_BENCH_OUT")
            .map(PathBuf::from)
            .unwrap_or_else(|_| default_out.join("chaos"));
        let plan = chaos::ChaosPlan::full(chaos::seed_from_env()).scaled(scale.unwrap_or(1.0));
        let outcome = tokio::runtime::Runtime::new()
            .map_err(anyhow::Error::from)
            .and_then(|runtime| runtime.block_on(run_chaos(&plan, &tools, &out)));
        return match outcome {
            Ok(summary) => {
                println!("{}", serde_json::to_string_pretty(&summary).unwrap_or_default());
                0
            }
            Err(error) => {
                eprintln!("harness: {error:#}");
                1
            }
        };
    }
    // `school` is the full plan's burst alone: the load-test report's scenario without the hours of the full plan.
    let (plan_name, school_only) = match name {
        "school" => ("full", true),
        other => (other, false),
    };
    let Some(mut plan) = Plan::named(plan_name) else {
        eprintln!("harness: unknown plan {name:?}; use quick, full, school, sandbox, runtimes, files, builds or chaos");
        return 2;
    };
    if let Some(factor) = scale {
        plan = plan.scaled(factor);
    }
    let out = std::env::var("SCRC_BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| default_out.join(if school_only { "school" } else { plan.name.as_str() }));
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("harness: {error}");
            return 1;
        }
    };
    let outcome = if school_only {
        runtime.block_on(run_school(plan.burst, &tools, &out))
    } else {
        runtime.block_on(run(&plan, &tools, &out))
    };
    match outcome {
        Ok(manifest) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&manifest["matrices"]).unwrap_or_default()
            );
            0
        }
        Err(error) => {
            eprintln!("harness: {error:#}");
            1
        }
    }
}

/// Runs `plan` with the `scrc` binary of `tools`, writing everything under `out`. Returns the manifest.
///
/// # Errors
/// When a process cannot be started, Kafka fails, or an output cannot be written.
pub async fn run(plan: &Plan, tools: &Tools, out: &Path) -> anyhow::Result<Value> {
    std::fs::create_dir_all(out.join("logs")).with_context(|| format!("cannot create {}", out.display()))?;
    let library = crate::library()?;
    let clock = Instant::now();
    let started_unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let tag = format!("{started_unix:x}");

    let mut measured: BTreeMap<Case, Vec<Vec<Sample>>> = BTreeMap::new();
    for case in plan.cases() {
        for run in 1..=plan.runs {
            eprintln!(
                "bench: {} run {run}/{} ({:.0} s elapsed)",
                case.name(),
                plan.runs,
                clock.elapsed().as_secs_f64()
            );
            let samples = run_case(plan, case, run, &library, tools, out, &tag).await?;
            measured.entry(case).or_default().push(samples);
        }
    }
    let window_seconds = plan.window.as_secs_f64();
    let mut csv_files: Vec<PathBuf> = Vec::new();
    let mut matrices = serde_json::Map::new();

    // Throughput against parallelism, one runner.
    let mut throughput_points = Vec::new();
    let mut throughput_rows = Vec::new();
    let mut throughput_json = Vec::new();
    for &parallelism in &plan.throughput_parallelism {
        let case = Case {
            replicas: 1,
            parallelism,
            profile: Profile::Baseline,
            load: Load::Saturating,
        };
        let (mean, runs) = case_throughput(&measured, case, window_seconds);
        csv_files.extend(output::write_case(out, "throughput", &case.name(), &measured[&case])?);
        throughput_points.push((parallelism, mean));
        throughput_rows.push(format!("{parallelism},{},{mean:.2}", runs.len()));
        throughput_json
            .push(json!({"replicas": 1, "parallelism": parallelism, "throughput_per_min": mean, "runs": runs}));
    }
    csv_files.push(output::write_summary(
        out,
        "throughput",
        "parallelism,runs,throughput_per_min",
        &throughput_rows,
    )?);
    charts::single_runner_throughput(&out.join(CHARTS[0]), &throughput_points)?;
    matrices.insert("throughput".into(), Value::Array(throughput_json));

    // Replicas by parallelism.
    let mut scaling_values = Vec::new();
    let mut scaling_rows = Vec::new();
    let mut scaling_json = Vec::new();
    for &replicas in &plan.scaling_replicas {
        let mut row = Vec::new();
        for &parallelism in &plan.scaling_parallelism {
            let case = Case {
                replicas,
                parallelism,
                profile: Profile::Baseline,
                load: Load::Saturating,
            };
            let (mean, runs) = case_throughput(&measured, case, window_seconds);
            csv_files.extend(output::write_case(out, "scaling", &case.name(), &measured[&case])?);
            row.push(Some(mean));
            scaling_rows.push(format!("{replicas},{parallelism},{},{mean:.2}", runs.len()));
            scaling_json.push(
                json!({"replicas": replicas, "parallelism": parallelism, "throughput_per_min": mean, "runs": runs}),
            );
        }
        scaling_values.push(row);
    }
    csv_files.push(output::write_summary(
        out,
        "scaling",
        "replicas,parallelism,runs,throughput_per_min",
        &scaling_rows,
    )?);
    charts::heatmap(
        &out.join(CHARTS[1]),
        "Throughput (submissions/min): runner replicas by parallelism",
        &plan
            .scaling_replicas
            .iter()
            .map(|r| format!("{r} replica(s)"))
            .collect::<Vec<_>>(),
        &plan
            .scaling_parallelism
            .iter()
            .map(|p| format!("parallel {p}"))
            .collect::<Vec<_>>(),
        &scaling_values,
        "",
    )?;
    matrices.insert("scaling".into(), Value::Array(scaling_json));

    // Latency per language and outcome: the reference configuration, paced so that no queue adds to it.
    let reference = plan.reference_case();
    let paced = plan.latency_case();
    let reference_samples: Vec<Sample> = measured[&reference].iter().flatten().cloned().collect();
    let paced_samples: Vec<Sample> = measured[&paced].iter().flatten().cloned().collect();
    csv_files.extend(output::write_case(out, "latency", &paced.name(), &measured[&paced])?);
    let mut languages: Vec<String> = library.iter().map(|s| s.language.clone()).collect();
    languages.dedup();
    let mut outcomes: Vec<String> = library.iter().map(|s| s.outcome.clone()).collect();
    outcomes.sort_by_key(|o| outcome_rank(o));
    outcomes.dedup();
    let mut heat_values = Vec::new();
    let mut groups = Vec::new();
    let mut latency_rows = Vec::new();
    let mut latency_json = Vec::new();
    for language in &languages {
        let mut row = Vec::new();
        for outcome in &outcomes {
            let group: Vec<Sample> = paced_samples
                .iter()
                .filter(|s| &s.language == language && &s.outcome == outcome)
                .cloned()
                .collect();
            let seconds = stats::latencies(&group);
            let distribution = stats::distribution(&seconds);
            row.push(distribution.map(|d| d.median));
            if let Some(d) = distribution {
                latency_rows.push(format!(
                    "{language},{outcome},{},{:.3},{:.3},{:.3},{:.3}",
                    d.count, d.median, d.p95, d.mean, d.max
                ));
                latency_json.push(json!({"language": language, "outcome": outcome, "distribution": d}));
            }
            groups.push((format!("{} {}", short(language), outcome.to_uppercase()), seconds));
        }
        heat_values.push(row);
    }
    csv_files.push(output::write_summary(
        out,
        "latency",
        "language,outcome,count,median_s,p95_s,mean_s,max_s",
        &latency_rows,
    )?);
    charts::heatmap(
        &out.join(CHARTS[2]),
        &format!("Median latency (s), send to result, {}", paced.name()),
        &languages,
        &outcomes.iter().map(|o| o.to_uppercase()).collect::<Vec<_>>(),
        &heat_values,
        "",
    )?;
    charts::boxplot(
        &out.join(CHARTS[3]),
        "Latency distribution by language and outcome",
        &groups,
    )?;
    matrices.insert("latency".into(), json!({"case": paced.name(), "groups": latency_json}));

    // Timeout impact.
    let heavy = Case {
        profile: Profile::TimeoutHeavy,
        ..reference
    };
    let (baseline_rate, _) = case_throughput(&measured, reference, window_seconds);
    let (heavy_rate, heavy_runs) = case_throughput(&measured, heavy, window_seconds);
    csv_files.extend(output::write_case(
        out,
        "timeout_impact",
        &heavy.name(),
        &measured[&heavy],
    )?);
    csv_files.extend(output::write_case(
        out,
        "timeout_impact",
        &reference.name(),
        &measured[&reference],
    )?);
    let change = if baseline_rate > 0.0 {
        (heavy_rate / baseline_rate - 1.0) * 100.0
    } else {
        0.0
    };
    csv_files.push(output::write_summary(
        out,
        "timeout_impact",
        "profile,throughput_per_min",
        &[
            format!("baseline,{baseline_rate:.2}"),
            format!("timeout-heavy,{heavy_rate:.2}"),
        ],
    )?);
    charts::bars(
        &out.join(CHARTS[4]),
        "Timeout impact on throughput",
        "submissions / min",
        &[
            ("baseline".into(), baseline_rate),
            ("TL-heavy (x2.5)".into(), heavy_rate),
        ],
    )?;
    matrices.insert(
        "timeout_impact".into(),
        json!({"baseline_per_min": baseline_rate, "timeout_heavy_per_min": heavy_rate, "change_percent": change, "timeout_heavy_runs": heavy_runs}),
    );

    // Throughput share by language.
    let mut share_rows = Vec::new();
    let mut share_json = Vec::new();
    let mut shares = Vec::new();
    let completed: Vec<&Sample> = reference_samples
        .iter()
        .filter(|s| s.in_window && s.status.is_some())
        .collect();
    for language in &languages {
        let mut parts = Vec::new();
        for outcome in &outcomes {
            let count = completed
                .iter()
                .filter(|s| &s.language == language && &s.outcome == outcome)
                .count();
            parts.push((outcome.clone(), count as f64));
            let share = count as f64 / completed.len().max(1) as f64 * 100.0;
            share_rows.push(format!("{language},{outcome},{count},{share:.2}"));
            share_json
                .push(json!({"language": language, "outcome": outcome, "completed": count, "share_percent": share}));
        }
        shares.push((language.clone(), parts));
    }
    csv_files.push(output::write_summary(
        out,
        "language_share",
        "language,outcome,completed,share_percent",
        &share_rows,
    )?);
    charts::stacked_shares(
        &out.join(CHARTS[5]),
        &format!("Throughput share by language, {}", reference.name()),
        &shares,
    )?;
    matrices.insert("language_share".into(), Value::Array(share_json));

    let burst = school_burst(plan.burst, &library, tools, out, &tag, clock, &mut csv_files).await?;
    matrices.insert("school_burst".into(), burst);

    let manifest = json!({
        "plan": {
            "name": plan.name,
            "runs": plan.runs,
            "warmup_seconds": plan.warmup.as_secs_f64(),
            "window_seconds": plan.window.as_secs_f64(),
            "cooldown_seconds": plan.cooldown.as_secs_f64(),
            "latency_window_seconds": plan.latency_window.as_secs_f64(),
            "cases": plan.cases().iter().map(Case::name).collect::<Vec<_>>(),
        },
        "machine": output::machine(),
        "started_unix": started_unix,
        "duration_seconds": clock.elapsed().as_secs_f64(),
        "matrices": matrices,
        "charts": CHARTS,
        "csv": csv_files.iter().filter_map(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).collect::<Vec<_>>(),
    });
    output::finish(&out.join("benchmark_manifest.json"), manifest, clock)
}

/// Runs the chaos plan and writes its summary under `out` (runner logs under `out/logs`). Returns the summary.
///
/// # Errors
/// When tansu is missing or a process cannot start. A run that lost or double-judged something is written and
/// printed like any other, then reported as an error.
pub async fn run_chaos(plan: &chaos::ChaosPlan, tools: &Tools, out: &Path) -> anyhow::Result<Value> {
    if !processes::Tansu::image_present().await {
        anyhow::bail!(
            "the chaos plan needs {} (scripts/build-deploy-images.sh)",
            processes::TANSU_IMAGE
        );
    }
    let report = chaos::run(plan, tools, &out.join("logs")).await?;
    chaos::write_summary(&report, out)?;
    let summary = report.summary();
    eprintln!(
        "bench: chaos done in {:.0} s; summary in {}",
        report.duration_seconds,
        out.display()
    );
    let problems = report.problems();
    if !problems.is_empty() {
        println!("{}", serde_json::to_string_pretty(&summary).unwrap_or_default());
        anyhow::bail!("chaos run (seed {:#x}) failed: {}", plan.seed, problems.join("; "));
    }
    Ok(summary)
}

/// Runs only the school burst `burst`, writing its CSV, chart and a manifest under `out`. Returns the manifest.
///
/// # Errors
/// As [`run`].
pub async fn run_school(burst: Burst, tools: &Tools, out: &Path) -> anyhow::Result<Value> {
    std::fs::create_dir_all(out.join("logs")).with_context(|| format!("cannot create {}", out.display()))?;
    let library = crate::library()?;
    let clock = Instant::now();
    let started_unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let tag = format!("{started_unix:x}");
    let mut csv_files = Vec::new();
    let metrics = school_burst(burst, &library, tools, out, &tag, clock, &mut csv_files).await?;
    let manifest = json!({
        "plan": {"name": "school"},
        "machine": output::machine(),
        "started_unix": started_unix,
        "duration_seconds": clock.elapsed().as_secs_f64(),
        "matrices": {"school_burst": metrics},
        "charts": [CHARTS[6]],
        "csv": csv_files.iter().filter_map(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).collect::<Vec<_>>(),
    });
    output::finish(&out.join("benchmark_manifest.json"), manifest, clock)
}

/// Runs the school burst and writes its CSV and chart. Returns its metrics.
async fn school_burst(
    burst: Burst,
    library: &[Scenario],
    tools: &Tools,
    out: &Path,
    tag: &str,
    clock: Instant,
    csv_files: &mut Vec<PathBuf>,
) -> anyhow::Result<Value> {
    eprintln!(
        "bench: school burst, {} students ({:.0} s elapsed)",
        burst.students,
        clock.elapsed().as_secs_f64()
    );
    let (samples, metrics) = run_burst(burst, library, tools, out, tag, load::Sources::AsIs).await?;
    csv_files.extend(output::write_case(
        out,
        "school_burst",
        &format!("students-{}", burst.students),
        std::slice::from_ref(&samples),
    )?);
    let latencies: Vec<f64> = samples
        .iter()
        .filter_map(|s| s.latency_ms)
        .map(|ms| ms / 1000.0)
        .collect();
    charts::burst_curve(
        &out.join(CHARTS[6]),
        &format!("School burst: {} submissions at once", samples.len()),
        &latencies,
        samples.len(),
    )?;
    Ok(metrics)
}

/// A short language name for crowded chart labels.
fn short(language: &str) -> &str {
    match language {
        "python" => "py",
        other => other,
    }
}

/// Mean throughput over a case's runs, and each run's metrics.
fn case_throughput(
    measured: &BTreeMap<Case, Vec<Vec<Sample>>>,
    case: Case,
    window_seconds: f64,
) -> (f64, Vec<stats::RunMetrics>) {
    let runs: Vec<stats::RunMetrics> = measured
        .get(&case)
        .map(|runs| {
            runs.iter()
                .map(|samples| stats::run_metrics(samples, window_seconds))
                .collect()
        })
        .unwrap_or_default();
    let mean = runs.iter().map(|r| r.throughput_per_min).sum::<f64>() / runs.len().max(1) as f64;
    (mean, runs)
}

/// Starts a broker and the runners of `case`, drives the closed-loop load through its phases, and stops them.
async fn run_case(
    plan: &Plan,
    case: Case,
    run: usize,
    library: &[Scenario],
    tools: &Tools,
    out: &Path,
    tag: &str,
) -> anyhow::Result<Vec<Sample>> {
    let broker = Broker::start(tools, (case.replicas * case.parallelism).max(12)).await?;
    let mut runners = Vec::new();
    for index in 0..case.replicas {
        let instance = format!("bench-{tag}-{}-{run}-{index}", case.name());
        let log = out
            .join("logs")
            .join(format!("{}-run{run}-runner{index}.log", case.name()));
        runners.push(Runner::start(
            tools,
            &broker.brokers,
            case.parallelism,
            &instance,
            &log,
        )?);
    }
    let weights: Vec<f64> = library
        .iter()
        .map(|s| case.profile.weight(&s.language, &s.outcome))
        .collect();
    // Paced latency runs go round the library, so that every language and outcome is sampled alike.
    let draw = match case.load {
        Load::Saturating => load::Order::Weighted(weights),
        Load::Paced => load::Order::RoundRobin,
    };
    let phases = Phases {
        warmup: plan.warmup,
        window: plan.window_of(&case),
        cooldown: plan.cooldown,
    };
    let seed = 0x5eed ^ (run as u64) << 8 ^ case.parallelism as u64;
    let samples = load::closed_loop(
        &broker.brokers,
        library,
        load::Mix {
            order: draw,
            seed,
            sources: load::Sources::AsIs,
        },
        case.outstanding(),
        phases,
        &format!("b-{tag}-{}-{run}", case.name()),
    )
    .await;
    let exited: Vec<String> = runners
        .iter_mut()
        .enumerate()
        .filter_map(|(i, r)| r.exited().map(|status| format!("runner {i} exited early ({status})")))
        .collect();
    futures::future::join_all(runners.into_iter().map(Runner::stop)).await;
    broker.stop().await;
    if !exited.is_empty() {
        anyhow::bail!(
            "{}: {}; see {}",
            case.name(),
            exited.join(", "),
            out.join("logs").display()
        );
    }
    samples
}

/// A classroom: mostly Python, then Java, C, C++ and Go. First attempts fail often; fixes mostly pass.
fn classroom(students: usize, library: &[Scenario], tag: &str, sources: load::Sources) -> Vec<(String, Scenario)> {
    let languages = [
        ("python", 0.60),
        ("java", 0.20),
        ("c", 0.08),
        ("cpp", 0.08),
        ("go", 0.04),
    ];
    let first = [
        ("ok", 0.40),
        ("wa", 0.25),
        ("re", 0.15),
        ("bf", 0.10),
        ("tl", 0.05),
        ("ml", 0.05),
    ];
    let fix = [
        ("ok", 0.75),
        ("wa", 0.12),
        ("re", 0.06),
        ("bf", 0.03),
        ("tl", 0.02),
        ("ml", 0.02),
    ];
    let mut draw = Draw::new(0xc1a55);
    let pick = |draw: &mut Draw, options: &[(&'static str, f64)]| {
        options[draw.weighted(&options.iter().map(|o| o.1).collect::<Vec<_>>())].0
    };
    let scenario = |language: &str, outcome: &str| {
        library
            .iter()
            .find(|s| s.language == language && s.outcome == outcome)
            .cloned()
    };
    let mut submissions = Vec::new();
    for student in 0..students {
        let language = pick(&mut draw, &languages);
        for (attempt, mix) in [("first", &first), ("fix", &fix)] {
            let outcome = pick(&mut draw, mix);
            if let Some(scenario) = scenario(language, outcome) {
                let id = format!("burst-{tag}-s{student}-{attempt}-{language}-{outcome}");
                let scenario = match sources {
                    load::Sources::AsIs => scenario,
                    load::Sources::Unique => scenario.unique(&id),
                };
                submissions.push((id, scenario));
            }
        }
    }
    submissions
}

/// Sends the whole burst at once to a freshly started runner (after one probe script has come back, so the runner
/// is in its group) and measures until every result is back. The metrics include the runners' resident memory
/// when idle (after the probe) and at their peak (the kernel's high-water mark, at the end).
pub(crate) async fn run_burst(
    burst: Burst,
    library: &[Scenario],
    tools: &Tools,
    out: &Path,
    tag: &str,
    sources: load::Sources,
) -> anyhow::Result<(Vec<Sample>, Value)> {
    let broker = Broker::start(tools, (burst.replicas * burst.parallelism).max(12)).await?;
    let mut runners = Vec::new();
    for index in 0..burst.replicas {
        let log = out.join("logs").join(format!("school-burst-runner{index}.log"));
        runners.push(Runner::start(
            tools,
            &broker.brokers,
            burst.parallelism,
            &format!("bench-{tag}-burst-{index}"),
            &log,
        )?);
    }
    let probe = library
        .iter()
        .find(|s| s.language == "python" && s.outcome == "ok")
        .context("the library has no python ok scenario")?;
    let (probed, _) = load::burst(
        &broker.brokers,
        &[(format!("burst-{tag}-probe"), probe.clone())],
        Duration::from_secs(180),
        &format!("burst-{tag}-probe"),
    )
    .await?;
    if probed.iter().any(|s| s.status.is_none()) {
        anyhow::bail!(
            "the burst runner never answered its probe; see {}",
            out.join("logs").display()
        );
    }
    let idle_rss = runners
        .iter()
        .filter_map(|r| processes::memory_kib(r.pid()?, "VmRSS"))
        .max();
    let submissions = classroom(burst.students, library, tag, sources);
    let (samples, drain) = load::burst(&broker.brokers, &submissions, burst.timeout, &format!("burst-{tag}")).await?;
    let peak_rss = runners
        .iter()
        .filter_map(|r| processes::memory_kib(r.pid()?, "VmHWM"))
        .max();
    futures::future::join_all(runners.into_iter().map(Runner::stop)).await;
    broker.stop().await;

    let total = samples.len().max(1) as f64;
    let latencies: Vec<f64> = samples
        .iter()
        .filter_map(|s| s.latency_ms)
        .map(|ms| ms / 1000.0)
        .collect();
    let distribution = stats::distribution(&latencies);
    let failures = samples
        .iter()
        .filter(|s| s.status.as_deref().is_none_or(|status| status == "IE"))
        .count();
    let mismatches = samples
        .iter()
        .filter(|s| s.status.as_deref().is_some_and(|status| status != s.expected))
        .count();
    let metrics = json!({
        "students": burst.students,
        "submissions": samples.len(),
        "replicas": burst.replicas,
        "parallelism": burst.parallelism,
        "drain_seconds": drain.as_secs_f64(),
        "latency_p50_seconds": distribution.map(|d| d.median),
        "latency_p95_seconds": distribution.map(|d| d.p95),
        "latency_p99_seconds": distribution.map(|d| d.p99),
        "failure_rate": failures as f64 / total,
        "mismatch_rate": mismatches as f64 / total,
        "runner_rss_idle_mib": idle_rss.map(|kib| kib as f64 / 1024.0),
        "runner_rss_peak_mib": peak_rss.map(|kib| kib as f64 / 1024.0),
    });
    Ok((samples, metrics))
}
