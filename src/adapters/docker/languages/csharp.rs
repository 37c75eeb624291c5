//! C#: compiled once with Mono's C# compiler (mcs) into `prog.exe`, run on the Mono runtime in a smaller image
//! that has the runtime and the class libraries but no compiler.
//!
//! Mono's GC is given a heap ceiling under the container's memory limit (the limit minus 32 MiB, half of it
//! below 64 MiB), so that a program that keeps too much alive gets an `OutOfMemoryException`, which is ML, rather
//! than an OOM kill.

use super::{LanguageModule, Layout, MIB, OwnHeap, PROGRAM_DIR, contains, heap_under, strings};
use crate::domain::MemoryLimit;

pub struct CSharp;

impl LanguageModule for CSharp {
    fn build_command(&self, layout: &Layout<'_>) -> Vec<String> {
        let mut command = strings(&["mcs", "-optimize+", "-nologo", "-out:prog.exe"]);
        command.extend(layout.with_extension(&[".cs"]));
        command
    }

    fn run_command(&self, _layout: &Layout<'_>, memory: MemoryLimit) -> Vec<String> {
        vec![
            "mono".into(),
            format!("--gc-params=max-heap-size={}m", mono_heap(memory) / MIB),
            format!("{PROGRAM_DIR}/prog.exe"),
        ]
    }

    fn own_heap(&self, memory: MemoryLimit) -> Option<OwnHeap> {
        Some(OwnHeap::holding_a_third(mono_heap(memory), mono_out_of_memory))
    }
}

/// Mono's heap ceiling under `memory`: the limit less 32 MiB (half of it below 64 MiB), at least 4 MiB.
fn mono_heap(memory: MemoryLimit) -> u64 {
    (heap_under(memory.bytes(), 32 * MIB) / MIB).max(4) * MIB
}

/// Mono's report of its heap exhausted.
fn mono_out_of_memory(stderr: &[u8]) -> bool {
    contains(stderr, "System.OutOfMemoryException")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heap_fits_under_the_container_limit() {
        let command = CSharp.run_command(
            &super::super::layout(&["main.cs".to_owned()]),
            MemoryLimit::new(256 * MIB).unwrap(),
        );
        assert_eq!(command, ["mono", "--gc-params=max-heap-size=224m", "/box/prog.exe"]);
        assert!(mono_out_of_memory(
            b"Unhandled Exception:\nSystem.OutOfMemoryException: Out of memory"
        ));
        assert!(!mono_out_of_memory(
            b"Unhandled Exception:\nSystem.DivideByZeroException"
        ));
    }
}
