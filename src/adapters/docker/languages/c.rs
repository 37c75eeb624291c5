//! C: compiled once with gcc, statically linked, so the run image needs nothing but the binary.

use super::{LanguageModule, PROGRAM_DIR, strings};
use crate::domain::MemoryLimit;

pub struct C;

impl LanguageModule for C {
    fn source_file(&self, _source: &str) -> String {
        "main.c".into()
    }

    fn build_command(&self, source_file: &str) -> Vec<String> {
        let mut command = strings(&[
            "gcc",
            "-O2",
            "-std=gnu17",
            "-static",
            "-pipe",
            "-fdiagnostics-color=never",
            "-fmax-errors=20",
            "-o",
            "prog",
        ]);
        command.extend([source_file.to_owned(), "-lm".to_owned()]);
        command
    }

    fn run_command(&self, _source_file: &str, _memory: MemoryLimit) -> Vec<String> {
        vec![format!("{PROGRAM_DIR}/prog")]
    }
}
