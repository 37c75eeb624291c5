//! The files a benchmark leaves: a CSV per run, an aggregated CSV per case and matrix, a summary CSV per matrix,
//! and the manifest that lists everything with the machine it ran on.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::load::Sample;

const HEADER: &str = "run,id,language,outcome,expected,status,runner,sent_unix_ms,latency_ms,in_window";

fn field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn rows(run: usize, samples: &[Sample], out: &mut String) {
    for sample in samples {
        let _ = writeln!(
            out,
            "{run},{},{},{},{},{},{},{},{},{}",
            field(&sample.id),
            sample.language,
            sample.outcome,
            sample.expected,
            sample.status.as_deref().unwrap_or(""),
            field(sample.runner.as_deref().unwrap_or("")),
            sample.sent_unix_ms,
            sample.latency_ms.map_or(String::new(), |ms| format!("{ms:.1}")),
            sample.in_window
        );
    }
}

/// Writes `{matrix}__{case}__run-{n}.csv` for each run and `{matrix}__{case}__aggregated.csv` for all of them.
///
/// # Errors
/// When a file cannot be written.
pub fn write_case(dir: &Path, matrix: &str, case: &str, runs: &[Vec<Sample>]) -> std::io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let mut aggregated = format!("{HEADER}\n");
    for (index, samples) in runs.iter().enumerate() {
        let run = index + 1;
        let mut csv = format!("{HEADER}\n");
        rows(run, samples, &mut csv);
        rows(run, samples, &mut aggregated);
        let path = dir.join(format!("{matrix}__{case}__run-{run}.csv"));
        std::fs::write(&path, csv)?;
        written.push(path);
    }
    let path = dir.join(format!("{matrix}__{case}__aggregated.csv"));
    std::fs::write(&path, aggregated)?;
    written.push(path);
    Ok(written)
}

/// Writes `{matrix}__summary.csv` from a header and rows.
///
/// # Errors
/// When the file cannot be written.
pub fn write_summary(dir: &Path, matrix: &str, header: &str, rows: &[String]) -> std::io::Result<PathBuf> {
    let path = dir.join(format!("{matrix}__summary.csv"));
    std::fs::write(&path, format!("{header}\n{}\n", rows.join("\n")))?;
    Ok(path)
}

/// Writes a plan's manifest to `path` and says on stderr that the plan is done, how long it took and where its
/// results are; hands the manifest back as the plan's result.
///
/// # Errors
/// When the manifest cannot be encoded or written.
pub fn finish(
    path: &Path,
    manifest: serde_json::Value,
    clock: std::time::Instant,
) -> anyhow::Result<serde_json::Value> {
    std::fs::write(path, serde_json::to_vec_pretty(&manifest)?)?;
    let results = path.parent().unwrap_or(path);
    eprintln!(
        "bench: done in {:.0} s; results in {}",
        clock.elapsed().as_secs_f64(),
        results.display()
    );
    Ok(manifest)
}

/// What the manifest says about the machine.
pub fn machine() -> serde_json::Value {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split_once(':'))
        .map(|(_, name)| name.trim().to_owned());
    let memory_kb: Option<u64> = read("/proc/meminfo")
        .lines()
        .find(|line| line.starts_with("MemTotal"))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|kb| kb.parse().ok());
    let docker = std::process::Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .ok()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned());
    serde_json::json!({
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "cpu": cpu,
        "memory_gib": memory_kb.map(|kb| (kb as f64 / 1024.0 / 1024.0 * 10.0).round() / 10.0),
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        "docker": docker,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_with_commas_or_quotes_are_quoted() {
        assert_eq!(field("a"), "a");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
