//! Python: no compilation, but a syntax check (`py_compile`) at build time, so that a syntax error is BF rather
//! than a wrong answer. The bytecode it writes travels with the source and spares each test the compile.

use super::{LanguageModule, PROGRAM_DIR, strings};
use crate::domain::MemoryLimit;

pub struct Python;

impl LanguageModule for Python {
    fn source_file(&self, _source: &str) -> String {
        "main.py".into()
    }

    fn build_command(&self, source_file: &str) -> Vec<String> {
        strings(&["python3", "-m", "py_compile", source_file])
    }

    fn run_command(&self, source_file: &str, _memory: MemoryLimit) -> Vec<String> {
        vec!["python3".into(), format!("{PROGRAM_DIR}/{source_file}")]
    }
}
