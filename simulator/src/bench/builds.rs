//! The builds plan (`cargo bench --bench harness -- builds`): warm toolchains and the artifact cache, in one run.
//!
//! - **Floor**: each language's OK program compiled and run the cheapest way Docker allows, `docker exec` into a
//!   started container of its build image with the toolchain as scrc uses it (median of five; see
//!   [`super::sandbox`]).
//! - **Idle latency**: an idle runner at parallelism 1, each OK program sent alone with a unique
//!   source (so the artifact cache cannot answer it), timed from send to result; median and ratio to the floor.
//!   The target is Go and Java within 1.3× of their floor.
//! - **Throughput**: one runner at `RUNNER_MAX_PARALLEL=4`, two mixes, each with the artifact cache off
//!   (`RUNNER_ARTIFACT_CACHE_BYTES=0`) and on: the classroom mix with unique sources (no hit is possible: the cost
//!   of keeping entries) and SCRC's simulator mix (the library's programs as they are, drawn uniformly, as SCRC's
//!   simulator sends them). The hit rate is the runner's own count, logged when it stops.
//!
//! `SCRC_BENCH_SCALE` scales the throughput windows.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde_json::{Value, json};

use super::load::{Mix, Order, Sources};
use super::processes::Tools;
use super::sandbox::{self, classroom_weights};
use super::{charts, output};

const LANGUAGES: [&str; 5] = ["python", "c", "cpp", "go", "java"];

/// Runs the plan and writes `builds_manifest.json`, CSVs and a chart under `out`. Returns the manifest.
///
/// # Errors
/// When Docker, a process or Kafka fails.
pub async fn run(tools: &Tools, out: &Path, scale: f64) -> anyhow::Result<Value> {
    std::fs::create_dir_all(out.join("logs")).with_context(|| format!("cannot create {}", out.display()))?;
    let library = crate::library()?;
    let clock = Instant::now();
    let started_unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let tag = format!("{started_unix:x}");

    eprintln!("bench: floor (docker exec into warm build containers)");
    let mut floors = BTreeMap::new();
    for language in LANGUAGES {
        let floor = sandbox::floor(tools, sandbox::ok(&library, language)?)
            .await
            .with_context(|| format!("{language} floor"))?;
        eprintln!("bench:   {language}: {floor:.0} ms");
        floors.insert(language, floor);
    }
    eprintln!("bench: idle latency ({:.0} s elapsed)", clock.elapsed().as_secs_f64());
    let latency = sandbox::idle_latency(tools, "builds", &library, &LANGUAGES, out, &tag).await?;

    let window = Duration::from_secs_f64(60.0 * scale);
    let mixes = [
        ("classroom", classroom_weights(&library), Sources::Unique),
        ("simulator", vec![1.0; library.len()], Sources::AsIs),
    ];
    let mut throughput = Vec::new();
    for (mix_name, weights, sources) in mixes {
        for (cache, bytes) in [("off", "0"), ("on", "268435456")] {
            eprintln!(
                "bench: {mix_name} mix, cache {cache} ({:.0} s elapsed)",
                clock.elapsed().as_secs_f64()
            );
            let mut tools = tools.clone();
            tools.env.retain(|(name, _)| name != "RUNNER_ARTIFACT_CACHE_BYTES");
            tools.env.push(("RUNNER_ARTIFACT_CACHE_BYTES".into(), bytes.into()));
            let mix = Mix {
                order: Order::Weighted(weights.clone()),
                seed: 0xb1d5,
                sources,
            };
            let name = format!("builds-{mix_name}-cache-{cache}");
            let measured = sandbox::throughput(&tools, &name, &library, mix, window, out, &tag).await?;
            output::write_case(out, "builds_throughput", &name, std::slice::from_ref(&measured.samples))?;
            let counts = cache_counts(&measured.log);
            let hit_rate = counts.map(|(hits, misses)| hits as f64 / (hits + misses).max(1) as f64);
            eprintln!(
                "bench:   {:.0}/min, hit rate {}",
                measured.per_min,
                hit_rate.map_or("-".into(), |rate| format!("{:.0} %", rate * 100.0))
            );
            throughput.push(json!({
                "mix": mix_name,
                "cache": cache,
                "per_min": measured.per_min,
                "hits": counts.map(|(hits, _)| hits),
                "misses": counts.map(|(_, misses)| misses),
                "hit_rate": hit_rate,
            }));
        }
    }

    let mut rows = Vec::new();
    let mut bars = Vec::new();
    for language in LANGUAGES {
        let floor = floors[language];
        let warm = latency.get(language).copied();
        rows.push(json!({
            "language": language,
            "floor_ms": floor,
            "warm_ms": warm,
            "warm_over_floor": warm.map(|ms| ms / floor),
        }));
        bars.push((format!("{} floor", super::short(language)), floor));
        if let Some(ms) = warm {
            bars.push((format!("{} scrc", super::short(language)), ms));
        }
    }
    charts::bars(
        &out.join("builds_latency.png"),
        "Idle latency of OK programs, unique sources: floor and scrc",
        "milliseconds, send to result",
        &bars,
    )?;
    let manifest = json!({
        "plan": {"name": "builds", "scale": scale},
        "machine": output::machine(),
        "started_unix": started_unix,
        "duration_seconds": clock.elapsed().as_secs_f64(),
        "latency": rows,
        "throughput": throughput,
        "charts": ["builds_latency.png"],
    });
    output::finish(&out.join("builds_manifest.json"), manifest, clock)
}

/// The artifact cache's hits and misses from the line a runner logs when it stops (JSON logs), or `None` when the
/// cache was off.
pub(super) fn cache_counts(log: &Path) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines().rev().find_map(|line| {
        let record: Value = serde_json::from_str(line).ok()?;
        // scrc's JSON logs put the fields beside the message; tracing's default nests them under "fields".
        let fields = record.get("fields").unwrap_or(&record);
        if fields.get("message")?.as_str()? != "artifact cache" {
            return None;
        }
        Some((fields.get("hits")?.as_u64()?, fields.get("misses")?.as_u64()?))
    })
}
