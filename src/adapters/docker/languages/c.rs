//! C: compiled once with gcc, statically linked, so the run image needs nothing but the binary.

use super::{LanguageModule, Layout, PROGRAM_DIR, gcc};
use crate::domain::MemoryLimit;

pub struct C;

impl LanguageModule for C {
    /// Every `.c` file compiled and linked together; headers are found beside the files that include them.
    fn build_command(&self, layout: &Layout<'_>) -> Vec<String> {
        gcc("gcc", "-std=gnu17", &layout.with_extension(&[".c"]), &["-lm"])
    }

    fn run_command(&self, _layout: &Layout<'_>, _memory: MemoryLimit) -> Vec<String> {
        vec![format!("{PROGRAM_DIR}/prog")]
    }
}
