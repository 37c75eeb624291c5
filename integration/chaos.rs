//! The chaos test of the delivery path: three `scrc run` processes in one group against tansu (an out-of-process
//! broker with a real group coordinator), SIGKILLed and restarted at seeded random points of the drain, and one
//! rebalance started while every slot of a runner is busy. Every id must come back, no id with two different
//! verdicts, and no container or volume of any runner may be left. The run itself is the harness's chaos plan at CI
//! size (`scrc_simulator::bench::chaos`); `cargo bench --bench harness -- chaos` runs it at full size.
//!
//! Needs the tansu image of `scripts/build-deploy-images.sh`; without it (or without Docker) the test skips, except
//! under `CI=true`, where it fails. `SCRC_CHAOS_SEED` repeats a failed run's draws (the seed is printed).

#[path = "../tests/support/mod.rs"]
mod support;

use scrc_simulator::bench::Tools;
use scrc_simulator::bench::chaos::{self, ChaosPlan};
use scrc_simulator::bench::processes::{TANSU_IMAGE, Tansu};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn runners_killed_restarted_and_rebalanced_while_busy_lose_nothing_and_judge_nothing_twice() {
    if !Tansu::image_present().await {
        assert!(
            !support::in_ci(),
            "CI=true but {TANSU_IMAGE} is missing: run scripts/build-deploy-images.sh"
        );
        eprintln!("skipping: no {TANSU_IMAGE} (scripts/build-deploy-images.sh builds it)");
        return;
    }
    let plan = ChaosPlan::ci(chaos::seed_from_env());
    let tools = Tools {
        scrc: env!("CARGO_BIN_EXE_scrc").into(),
        env: support::local_images(),
    };
    let logs = std::env::temp_dir().join(format!("scrc-chaos-{}", support::unique()));
    let report = chaos::run(&plan, &tools, &logs)
        .await
        .unwrap_or_else(|error| panic!("chaos run (SCRC_CHAOS_SEED={:#x}) failed: {error:#}", plan.seed));
    let summary = serde_json::to_string_pretty(&report.summary()).unwrap_or_default();
    eprintln!("{summary}");
    let problems = report.problems();
    assert!(
        problems.is_empty(),
        "SCRC_CHAOS_SEED={:#x}; runner logs in {}:\n{}\n{summary}",
        plan.seed,
        logs.display(),
        problems.join("\n")
    );
    // The same count through the engine API, for every instance the run used.
    for (instance, _, _) in &report.leftovers {
        assert_eq!(support::leftovers(instance).await, (0, 0), "{instance} left sandboxes");
    }
    eprintln!(
        "chaos: {} sent, {} kills, {} duplicates (same verdict), drained in {:.0} s",
        report.sent,
        report.kills.len(),
        report.duplicates,
        report.drain_seconds
    );
}
