//! Rust: compiled once with rustc (edition 2021, optimised) into a statically linked binary, so it runs in the
//! same empty image as C, C++ and Go. The standard library's "memory allocation of N bytes failed" abort is ML.

use super::{LanguageModule, Layout, PROGRAM_DIR, strings};
use crate::domain::MemoryLimit;

pub struct Rust;

impl LanguageModule for Rust {
    /// The entry, `main.rs`, compiled as the crate's root, its `mod` files found beside it. glibc's static libraries (libc6-dev, which scripts/build-images.sh installs by name: debootstrap does not
    /// resolve rustc's virtual `libc-dev`) make `crt-static` work on the GNU target. Colour is off.
    fn build_command(&self, layout: &Layout<'_>) -> Vec<String> {
        let mut command = strings(&[
            "rustc",
            "--edition=2021",
            "-O",
            "-C",
            "target-feature=+crt-static",
            "--color=never",
            "-o",
            "prog",
        ]);
        command.push(layout.entry.to_owned());
        command
    }

    fn run_command(&self, _layout: &Layout<'_>, _memory: MemoryLimit) -> Vec<String> {
        vec![format!("{PROGRAM_DIR}/prog")]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_runs_out_of_memory_only_where_the_kernel_says_so() {
        assert!(
            Rust.own_heap(crate::domain::MemoryLimit::new(64 << 20).unwrap())
                .is_none()
        );
    }

    #[test]
    fn the_build_is_static() {
        let command = Rust.build_command(&super::super::layout(&["main.rs".to_owned()]));
        assert!(
            command.contains(&"target-feature=+crt-static".to_owned()),
            "{command:?}"
        );
        assert_eq!(command.last().map(String::as_str), Some("main.rs"));
    }
}
