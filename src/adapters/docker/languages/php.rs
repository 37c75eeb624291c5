//! PHP: no compilation, but `php -l` at build time, so that a parse error is BF rather than a runtime error.
//!
//! PHP's `memory_limit` is set from the script's limit, less room for the interpreter itself (the limit minus
//! 16 MiB, three quarters of it below 64 MiB), so that a program that allocates too much stops with PHP's own
//! "Allowed memory size of N bytes exhausted", which is ML. Errors go to stderr once (not also to the log, which is
//! stderr too in the CLI), and the image's php.ini is otherwise left as Debian ships it.

use super::{LanguageModule, Layout, MIB, OwnHeap, PROGRAM_DIR, contains, each_file, strings};
use crate::domain::MemoryLimit;

pub struct Php;

impl LanguageModule for Php {
    /// Every `.php` file linted; `require` loads from beside the entry.
    fn build_command(&self, layout: &Layout<'_>) -> Vec<String> {
        each_file(
            "php -d display_errors=stderr -d log_errors=0 -l",
            &layout.with_extension(&[".php"]),
        )
    }

    fn run_command(&self, layout: &Layout<'_>, memory: MemoryLimit) -> Vec<String> {
        let mut command = strings(&["php", "-d", "display_errors=stderr", "-d", "log_errors=0", "-d"]);
        command.push(format!("memory_limit={}", php_heap(memory)));
        command.push(format!("{PROGRAM_DIR}/{}", layout.entry));
        command
    }

    fn own_heap(&self, memory: MemoryLimit) -> Option<OwnHeap> {
        Some(OwnHeap::holding_a_third(php_heap(memory), php_out_of_memory))
    }
}

/// PHP's `memory_limit` under `memory`: the limit less 16 MiB (three quarters of it below 64 MiB), at least 2 MiB.
fn php_heap(memory: MemoryLimit) -> u64 {
    let bytes = memory.bytes();
    let limit = if bytes >= 64 * MIB {
        bytes - 16 * MIB
    } else {
        bytes / 4 * 3
    };
    limit.max(2 * MIB)
}

/// PHP's reports of its `memory_limit` reached, or of an allocation refused.
fn php_out_of_memory(stderr: &[u8]) -> bool {
    contains(stderr, "Allowed memory size of") || contains(stderr, "Out of memory (allocated")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_limit_follows_the_script() {
        let command = Php.run_command(
            &super::super::layout(&["main.php".to_owned()]),
            MemoryLimit::new(256 * MIB).unwrap(),
        );
        assert!(command.contains(&format!("memory_limit={}", 240 * MIB)), "{command:?}");
        assert_eq!(command.last().map(String::as_str), Some("/box/main.php"));
        let small = Php.run_command(
            &super::super::layout(&["main.php".to_owned()]),
            MemoryLimit::new(16 * MIB).unwrap(),
        );
        assert!(small.contains(&format!("memory_limit={}", 12 * MIB)), "{small:?}");
    }

    #[test]
    fn php_memory_failures_are_recognised() {
        assert!(php_out_of_memory(
            b"PHP Fatal error:  Allowed memory size of 50331648 bytes exhausted (tried to allocate 16777224 bytes)"
        ));
        assert!(!php_out_of_memory(
            b"PHP Fatal error:  Uncaught DivisionByZeroError: Division by zero"
        ));
    }
}
