//! The quick benchmark plan on a reduced window: every CSV, chart and manifest entry must be produced and well
//! formed. The numbers themselves are not asserted; the machine decides them.

mod support;

use std::path::{Path, PathBuf};

use scrc_simulator::bench::{self, CHARTS, Plan, Tools};

fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|line| line.split(',').map(str::to_owned).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_quick_plan_produces_every_artifact() {
    if support::docker_runtime(support::config(&[]).docker).await.is_none() {
        return;
    }
    let plan = Plan::quick().scaled(0.3);
    let out = std::env::temp_dir().join(format!("scrc-bench-{}", support::unique()));
    let tools = Tools {
        scrc: PathBuf::from(env!("CARGO_BIN_EXE_scrc")),
        env: support::local_images(),
    };
    let manifest = bench::run(&plan, &tools, &out).await.expect("the quick plan runs");

    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("benchmark_manifest.json")).expect("manifest")).expect("JSON");
    for key in ["plan", "charts", "csv"] {
        assert_eq!(written[key], manifest[key], "the written manifest's {key}");
    }
    assert!(written["machine"]["cores"].as_u64().unwrap_or(0) >= 1);
    for matrix in [
        "throughput",
        "scaling",
        "latency",
        "timeout_impact",
        "language_share",
        "school_burst",
    ] {
        assert!(!written["matrices"][matrix].is_null(), "manifest lacks {matrix}");
    }
    assert_eq!(
        written["matrices"]["throughput"].as_array().map(Vec::len),
        Some(plan.throughput_parallelism.len())
    );
    let burst = &written["matrices"]["school_burst"];
    assert_eq!(burst["submissions"].as_u64(), Some(2 * plan.burst.students as u64));
    for key in [
        "drain_seconds",
        "latency_p50_seconds",
        "latency_p95_seconds",
        "latency_p99_seconds",
        "failure_rate",
    ] {
        assert!(burst[key].is_number(), "school burst lacks {key}: {burst}");
    }

    for chart in CHARTS {
        let bytes = std::fs::read(out.join(chart)).unwrap_or_else(|e| panic!("{chart}: {e}"));
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{chart} is not a PNG");
        assert!(bytes.len() > 5_000, "{chart} is suspiciously small");
    }

    let listed: Vec<String> = written["csv"]
        .as_array()
        .expect("csv list")
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_owned())
        .collect();
    for matrix in [
        "throughput",
        "scaling",
        "latency",
        "timeout_impact",
        "language_share",
        "school_burst",
    ] {
        assert!(
            listed.iter().any(|f| f.starts_with(&format!("{matrix}__"))),
            "no CSV for {matrix}"
        );
    }
    for file in &listed {
        let rows = csv_rows(&out.join(file));
        assert!(rows.len() >= 2, "{file} has no data rows");
        let width = rows[0].len();
        assert!(rows.iter().all(|row| row.len() == width), "{file} has ragged rows");
        if file.contains("__run-") || file.ends_with("__aggregated.csv") {
            assert_eq!(rows[0][0], "run", "{file} header");
        }
    }
    for matrix in ["throughput", "scaling", "timeout_impact", "latency", "school_burst"] {
        assert!(
            listed
                .iter()
                .any(|f| f.starts_with(&format!("{matrix}__")) && f.contains("__run-1.csv"))
        );
        assert!(
            listed
                .iter()
                .any(|f| f.starts_with(&format!("{matrix}__")) && f.ends_with("__aggregated.csv"))
        );
    }
    let _ = std::fs::remove_dir_all(&out);
}
