//! Ruby: no compilation, but `ruby -c` at build time, so that a syntax error is BF rather than a runtime error.
//!
//! Ruby has no heap limit of its own: a program that outgrows the container is OOM-killed (ML), or, when an
//! allocation fails first, raises `NoMemoryError` ("failed to allocate memory"), which is ML too.

use super::{LanguageModule, Layout, PROGRAM_DIR, each_file};
use crate::domain::MemoryLimit;

pub struct Ruby;

impl LanguageModule for Ruby {
    /// Every `.rb` file syntax-checked; `require_relative` loads from beside the entry.
    fn build_command(&self, layout: &Layout<'_>) -> Vec<String> {
        each_file("ruby -c", &layout.with_extension(&[".rb"]))
    }

    fn run_command(&self, layout: &Layout<'_>, _memory: MemoryLimit) -> Vec<String> {
        vec!["ruby".into(), format!("{PROGRAM_DIR}/{}", layout.entry)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ruby_runs_out_of_memory_only_where_the_kernel_says_so() {
        assert!(
            Ruby.own_heap(crate::domain::MemoryLimit::new(64 << 20).unwrap())
                .is_none()
        );
    }
}
