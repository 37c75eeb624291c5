//! C: compiled once with gcc, statically linked, so the run image needs nothing but the binary.

use super::{LanguageModule, PROGRAM_DIR, gcc};
use crate::domain::MemoryLimit;

pub struct C;

impl LanguageModule for C {
    fn source_file(&self, _source: &str) -> String {
        "main.c".into()
    }

    fn build_command(&self, source_file: &str) -> Vec<String> {
        gcc("gcc", "-std=gnu17", source_file, &["-lm"])
    }

    fn run_command(&self, _source_file: &str, _memory: MemoryLimit) -> Vec<String> {
        vec![format!("{PROGRAM_DIR}/prog")]
    }
}
