//! C++: compiled once with g++, statically linked. `std::bad_alloc` is the language's out-of-memory failure.
//!
//! scrc's gcc image carries precompiled `<bits/stdc++.h>` and `<iostream>` headers built with this module's
//! flags, next to the headers, and links with gold (see `scripts/build-images.sh`, `warm_gcc`). The command does
//! not name either: g++ uses a precompiled header by itself when a program includes that header first and the
//! header is valid for the compile (same flags, no conflicting macro defined before it), and parses as usual
//! otherwise. Nothing is force-included, so the names in scope are the program's own choice.

use super::{LanguageModule, Layout, PROGRAM_DIR, gcc};
use crate::domain::MemoryLimit;

pub struct Cpp;

impl LanguageModule for Cpp {
    /// Every `.cpp`, `.cc` and `.cxx` file compiled and linked together; headers are found beside their includers.
    fn build_command(&self, layout: &Layout<'_>) -> Vec<String> {
        gcc(
            "g++",
            "-std=gnu++17",
            &layout.with_extension(&[".cpp", ".cc", ".cxx"]),
            &[],
        )
    }

    fn run_command(&self, _layout: &Layout<'_>, _memory: MemoryLimit) -> Vec<String> {
        vec![format!("{PROGRAM_DIR}/prog")]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_headers_are_precompiled_with_the_build_flags() {
        let script = include_str!("../../../../scripts/build-images.sh");
        let warm_gcc = script
            .split("warm_gcc() {")
            .nth(1)
            .expect("build-images.sh has warm_gcc");
        let flags = warm_gcc
            .lines()
            .find_map(|line| line.strip_prefix("flags=\""))
            .and_then(|rest| rest.strip_suffix('"'))
            .expect("warm_gcc sets flags=\"...\"");
        let command = Cpp.build_command(&super::super::layout(&["main.cpp".to_owned()]));
        for flag in flags.split_whitespace() {
            assert!(
                command.iter().any(|arg| arg == flag),
                "the build lacks {flag}: {command:?}"
            );
        }
        for flag in command
            .iter()
            .filter(|arg| arg.starts_with("-O") || arg.starts_with("-std="))
        {
            assert!(flags.split_whitespace().any(|f| f == flag), "the headers lack {flag}");
        }
    }
}
