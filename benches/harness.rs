//! The benchmark harness: runs a plan of the simulator's harness against real `scrc` processes (dev broker and
//! runners) and writes CSVs, PNG charts and a manifest.
//!
//!     cargo bench --bench harness              the quick plan (under 5 minutes on 2 cores) into logs/benchmarks/quick
//!     cargo bench --bench harness -- full      SCRC's full method (hours)
//!
//! `SCRC_BENCH_OUT` changes the output directory, `SCRC_BENCH_SCALE` scales every window and the burst.
//! The runners get the images of `images/local.env` unless `*_IMAGE` variables say otherwise.

use std::path::PathBuf;

use scrc_simulator::bench::{self, Plan, Tools};

fn local_images() -> Vec<(String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/images/local.env");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn main() {
    let name = std::env::args()
        .skip(1)
        .find(|arg| !arg.starts_with('-'))
        .unwrap_or_else(|| "quick".into());
    let Some(mut plan) = Plan::named(&name) else {
        eprintln!("harness: unknown plan {name:?}; use quick or full");
        std::process::exit(2);
    };
    if let Some(factor) = std::env::var("SCRC_BENCH_SCALE").ok().and_then(|v| v.parse::<f64>().ok()) {
        plan = plan.scaled(factor);
    }
    let out = std::env::var("SCRC_BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("logs/benchmarks").join(&plan.name));
    let user: std::collections::HashSet<String> = std::env::vars().map(|(k, _)| k).collect();
    let env = local_images().into_iter().filter(|(k, _)| !user.contains(k)).collect();
    let tools = Tools {
        scrc: PathBuf::from(env!("CARGO_BIN_EXE_scrc")),
        env,
    };
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    match runtime.block_on(bench::run(&plan, &tools, &out)) {
        Ok(manifest) => println!("{}", serde_json::to_string_pretty(&manifest["matrices"]).unwrap_or_default()),
        Err(error) => {
            eprintln!("harness: {error:#}");
            std::process::exit(1);
        }
    }
}
