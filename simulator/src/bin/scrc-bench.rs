//! `scrc-bench [quick|full|school]`: the benchmark harness as a program (the compose `benchmark` profile runs it). It
//! starts `scrc` processes (found on PATH, or at `SCRC_BIN`) and writes CSVs, charts and a manifest under
//! `SCRC_BENCH_OUT` (default `logs/benchmarks/<plan>`). The runners get this process's environment, so the
//! `*_IMAGE` variables choose the language images.

use std::path::PathBuf;

use scrc_simulator::bench::{self, Tools};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let tools = Tools {
        scrc: std::env::var("SCRC_BIN").map_or_else(|_| PathBuf::from("scrc"), PathBuf::from),
        env: Vec::new(),
    };
    std::process::exit(bench::main(&args, tools, &PathBuf::from("logs/benchmarks")));
}
