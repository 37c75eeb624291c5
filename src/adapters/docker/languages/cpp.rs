//! C++: compiled once with g++, statically linked. `std::bad_alloc` is the language's out-of-memory failure.

use super::{LanguageModule, PROGRAM_DIR, contains, gcc};
use crate::domain::MemoryLimit;

pub struct Cpp;

impl LanguageModule for Cpp {
    fn source_file(&self, _source: &str) -> String {
        "main.cpp".into()
    }

    fn build_command(&self, source_file: &str) -> Vec<String> {
        gcc("g++", "-std=gnu++17", source_file, &[])
    }

    fn run_command(&self, _source_file: &str, _memory: MemoryLimit) -> Vec<String> {
        vec![format!("{PROGRAM_DIR}/prog")]
    }

    fn reports_out_of_memory(&self, stderr: &[u8]) -> bool {
        contains(stderr, "std::bad_alloc")
    }
}
