//! Python: no compilation, but a syntax check (`py_compile`) at build time, so that a syntax error is BF rather
//! than a wrong answer. The bytecode it writes travels with the source and spares each test the compile.

use super::{LanguageModule, Layout, PROGRAM_DIR, strings};
use crate::domain::MemoryLimit;

pub struct Python;

impl LanguageModule for Python {
    /// Every `.py` file syntax-checked; the entry's directory is first on the module path when it runs, so its
    /// modules import.
    fn build_command(&self, layout: &Layout<'_>) -> Vec<String> {
        let mut command = strings(&["python3", "-m", "py_compile"]);
        command.extend(layout.with_extension(&[".py"]));
        command
    }

    fn run_command(&self, layout: &Layout<'_>, _memory: MemoryLimit) -> Vec<String> {
        vec!["python3".into(), format!("{PROGRAM_DIR}/{}", layout.entry)]
    }
}
