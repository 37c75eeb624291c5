//! The benchmark harness: runs a plan of the simulator's harness against real `scrc` processes (dev broker and
//! runners) and writes CSVs, PNG charts and a manifest.
//!
//!     cargo bench --bench harness              the quick plan (under 5 minutes on 2 cores) into logs/benchmarks/quick
//!     cargo bench --bench harness -- full      SCRC's full method (hours)
//!     cargo bench --bench harness -- school    the full plan's school burst alone (500 submissions at once)
//!     cargo bench --bench harness -- sandbox   scrc's sandboxes against the Docker floor
//!     cargo bench --bench harness -- runtimes  runc against gVisor's runsc, side by side (about 15 minutes)
//!     cargo bench --bench harness -- files     programs of several files against one file, built and cached
//!     cargo bench --bench harness -- checkers  a 10-test C++ problem with a C++ checker against the exact one
//!     cargo bench --bench harness -- languages the idle latency of every language's OK program
//!     cargo bench --bench harness -- chaos     1,000 submissions to three runners against tansu, 20 SIGKILLs and
//!                                              restarts, a rebalance while busy (`SCRC_CHAOS_SEED` repeats a run)
//!
//! `SCRC_BENCH_OUT` changes the output directory, `SCRC_BENCH_SCALE` scales every window and the burst.
//! The runners get the images of `images/local.env` unless `*_IMAGE` variables say otherwise.

use std::path::{Path, PathBuf};

use scrc_simulator::bench::{self, Tools};

fn main() {
    // `cargo bench` passes `--bench`; the plan is the first other argument.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let tools = Tools {
        scrc: PathBuf::from(env!("CARGO_BIN_EXE_scrc")),
        // The local images, unless the environment names others.
        env: scrc::config::local_images()
            .into_iter()
            .filter(|(name, _)| std::env::var_os(name).is_none())
            .collect(),
    };
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("logs/benchmarks");
    std::process::exit(bench::main(&args, tools, &out));
}
