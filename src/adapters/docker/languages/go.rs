//! Go: compiled once without cgo into a static binary. The runtime's own "out of memory" fatal error counts as
//! ML, and GOMAXPROCS follows the CPU quota rather than the host's core count.

use super::{LanguageModule, PROGRAM_DIR, contains, strings};
use crate::domain::MemoryLimit;

pub struct Go;

impl LanguageModule for Go {
    fn source_file(&self, _source: &str) -> String {
        "main.go".into()
    }

    fn build_command(&self, source_file: &str) -> Vec<String> {
        let mut command = strings(&["go", "build", "-o", "prog"]);
        command.push(source_file.to_owned());
        command
    }

    fn build_env(&self) -> Vec<String> {
        strings(&[
            "HOME=/tmp",
            "TMPDIR=/tmp",
            "CGO_ENABLED=0",
            "GOCACHE=/tmp/go-cache",
            "GOPATH=/tmp/go",
            "GOFLAGS=-buildvcs=false",
            "GOTOOLCHAIN=local",
            "GOPROXY=off",
        ])
    }

    fn run_command(&self, _source_file: &str, _memory: MemoryLimit) -> Vec<String> {
        vec![format!("{PROGRAM_DIR}/prog")]
    }

    fn run_env(&self, cpus: f64) -> Vec<String> {
        let procs = cpus.ceil().max(1.0) as u32;
        vec!["HOME=/tmp".into(), "TMPDIR=/tmp".into(), format!("GOMAXPROCS={procs}")]
    }

    fn reports_out_of_memory(&self, stderr: &[u8]) -> bool {
        contains(stderr, "runtime: out of memory")
    }
}
