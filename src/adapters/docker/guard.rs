//! The sandbox supervisor's runner side: the embedded binary, the per-run nonce, and the report it prints.
//!
//! `guard/scrc-guard.c` runs as PID 1 of every sandbox container. It reads a nonce from the first line of stdin,
//! runs the program, enforces the wall-clock limit with SIGKILL, and prints `"\n<nonce> {json}\n"` on stderr after
//! every other process in the container is dead. The runner takes the last report carrying its nonce out of
//! stderr; the program never sees the nonce, so it cannot print a report of its own that would be believed.

use std::io::Read;

use serde::Deserialize;

use super::outcome::MemoryAtTimeout;

/// The static supervisor binary, built by `build.rs`.
pub const GUARD_BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/scrc-guard"));

/// The file name of the supervisor inside a sandbox volume.
pub const GUARD_FILE: &str = ".scrc-guard";

/// Room on stderr for the report, on top of the output limit.
pub const REPORT_ALLOWANCE: usize = 1024;

/// What the supervisor saw.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GuardReport {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub wall_ns: u64,
    pub timed_out: bool,
    /// Non-zero when the program could not be executed at all (its errno).
    pub exec_errno: i32,
    /// Which cgroup interface the counters came from: "v1", "v2" or "none".
    pub cgroup: String,
    pub cpu_ns: Option<u64>,
    pub memory_peak: Option<u64>,
    /// OOM kills in the container's cgroup; `None` when the cgroup does not expose the counter.
    pub oom_kills: Option<u64>,
    /// What the cgroup said of memory when the time limit stopped the run.
    #[serde(flatten)]
    pub at_timeout: MemoryAtTimeout,
}

/// A fresh, unguessable nonce: 128 bits from the kernel's random pool, as hex.
pub fn nonce() -> String {
    let mut bytes = [0u8; 16];
    let filled = std::fs::File::open("/dev/urandom").and_then(|mut random| random.read_exact(&mut bytes));
    if filled.is_err() {
        // Without /dev/urandom, fall back to the process's randomly keyed hasher: still unknown to the program.
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(std::time::SystemTime::now().elapsed().map_or(0, |d| d.as_nanos()));
        bytes[..8].copy_from_slice(&hasher.finish().to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Removes the supervisor's report from `stderr` and returns it. Only the last line that starts with the nonce
/// counts; stderr is left as the program wrote it.
pub fn take_report(stderr: &mut Vec<u8>, nonce: &str) -> Option<GuardReport> {
    let marker = format!("\n{nonce} ");
    let start = stderr
        .windows(marker.len())
        .rposition(|window| window == marker.as_bytes())?;
    let json_start = start + marker.len();
    let json_end = stderr[json_start..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(stderr.len(), |end| json_start + end);
    let report = serde_json::from_slice(&stderr[json_start..json_end]).ok()?;
    stderr.truncate(start);
    Some(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = r#"{"v":1,"exit_code":0,"signal":null,"wall_ns":14140904,"timed_out":false,"exec_errno":0,"cgroup":"v1","cpu_ns":24991543,"memory_peak":4087808,"oom_kills":0}"#;

    #[test]
    fn the_report_is_taken_out_of_stderr() {
        let mut stderr = format!("warning: x\n\nabc123 {REPORT}\n").into_bytes();
        let report = take_report(&mut stderr, "abc123").unwrap();
        assert_eq!(report.exit_code, Some(0));
        assert_eq!(report.wall_ns, 14140904);
        assert_eq!(report.oom_kills, Some(0));
        assert_eq!(
            report.at_timeout.memory_limit, None,
            "a run that ended by itself has no pressure facts"
        );
        assert_eq!(stderr, b"warning: x\n");
    }

    #[test]
    fn a_run_stopped_at_its_time_limit_carries_the_memory_facts() {
        let stopped = REPORT.replace(
            "\"oom_kills\":0}",
            "\"oom_kills\":0,\"memory_limit\":16777216,\"memory_at_timeout\":16687104,\"refaulted_before_timeout\":215871488}",
        );
        let mut stderr = format!("\nn1 {stopped}\n").into_bytes();
        let report = take_report(&mut stderr, "n1").unwrap();
        assert_eq!(
            (
                report.at_timeout.memory_limit,
                report.at_timeout.memory_at_timeout,
                report.at_timeout.refaulted_before_timeout
            ),
            (Some(16777216), Some(16687104), Some(215871488))
        );
    }

    #[test]
    fn a_forged_report_without_the_nonce_is_ignored_and_the_last_real_one_wins() {
        let forged = REPORT.replace("\"exit_code\":0", "\"exit_code\":7");
        let mut stderr = format!("\nguess {forged}\n\nn1 {forged}\n\nn1 {REPORT}\n").into_bytes();
        let report = take_report(&mut stderr, "n1").unwrap();
        assert_eq!(report.exit_code, Some(0), "the supervisor's report comes last");
        assert!(
            String::from_utf8_lossy(&stderr).contains("guess"),
            "program output stays"
        );

        let mut without = format!("\nguess {forged}\n").into_bytes();
        assert_eq!(take_report(&mut without, "n1"), None);
    }

    #[test]
    fn nonces_are_distinct_hex() {
        let (a, b) = (nonce(), nonce());
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn the_embedded_supervisor_is_a_static_executable() {
        assert_eq!(&GUARD_BINARY[..4], b"\x7fELF");
    }
}
