//! Ruby: no compilation, but `ruby -c` at build time, so that a syntax error is BF rather than a runtime error.
//!
//! Ruby has no heap limit of its own: a program that outgrows the container is OOM-killed (ML), or, when an
//! allocation fails first, raises `NoMemoryError` ("failed to allocate memory"), which is ML too.

use super::{LanguageModule, PROGRAM_DIR, strings};
use crate::domain::MemoryLimit;

pub struct Ruby;

impl LanguageModule for Ruby {
    fn source_file(&self, _source: &str) -> String {
        "main.rb".into()
    }

    fn build_command(&self, source_file: &str) -> Vec<String> {
        let mut command = strings(&["ruby", "-c"]);
        command.push(source_file.to_owned());
        command
    }

    fn run_command(&self, source_file: &str, _memory: MemoryLimit) -> Vec<String> {
        vec!["ruby".into(), format!("{PROGRAM_DIR}/{source_file}")]
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
