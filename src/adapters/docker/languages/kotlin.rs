//! Kotlin: compiled once with kotlinc into a jar that carries the Kotlin runtime, run on the JRE as Java is (see
//! java.rs): the same heap sizing under the memory limit, and the JVM's `OutOfMemoryError` is ML.
//!
//! The thread stack is smaller than Java's quarter of the limit: a JVM whose program overflows its stack peaks
//! at about five times `-Xss` (measured on this JRE: 245 MiB with 48 MiB stacks, 107 MiB with 16 MiB), so with a
//! quarter the container is OOM-killed (ML) before the program's `StackOverflowError` (RE). A sixteenth of the
//! limit, between 1 and 16 MiB, leaves deep recursion 16 MiB of stack at the default 256 MiB.

use super::java::{java_under, jvm_heap, jvm_out_of_memory};
use super::{LanguageModule, Layout, MIB, OwnHeap, PROGRAM_DIR, strings};
use crate::domain::MemoryLimit;
use crate::domain::entry::kotlin_main_class;

pub struct Kotlin;

impl LanguageModule for Kotlin {
    /// The compiler's JVM gets Java's compile flags (java.rs): one GC thread, the quick JIT tier, no perf file.
    fn build_command(&self, layout: &Layout<'_>) -> Vec<String> {
        let mut command = strings(&[
            "kotlinc",
            "-J-XX:+UseSerialGC",
            "-J-XX:TieredStopAtLevel=1",
            "-J-XX:-UsePerfData",
            "-nowarn",
            "-include-runtime",
            "-d",
            "prog.jar",
        ]);
        command.extend(layout.with_extension(&[".kt"]));
        command
    }

    /// The entry's `main`, by its class: with `-jar` the JVM would run the one kotlinc chose for the manifest,
    /// whichever file of the program declares it (a student's `main` beside a grader's).
    fn run_command(&self, layout: &Layout<'_>, memory: MemoryLimit) -> Vec<String> {
        let stack = (memory.bytes() / 16).clamp(MIB, 16 * MIB);
        let mut command = java_under(memory, stack);
        command.extend([
            "-cp".into(),
            format!("{PROGRAM_DIR}/prog.jar"),
            kotlin_main_class(layout.entry, layout.entry_source),
        ]);
        command
    }

    fn own_heap(&self, memory: MemoryLimit) -> Option<OwnHeap> {
        Some(OwnHeap::new(jvm_heap(memory), jvm_out_of_memory))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jar_runs_on_a_heap_sized_like_java() {
        let command = Kotlin.run_command(
            &super::super::layout(&["main.kt".to_owned()]),
            MemoryLimit::new(256 * MIB).unwrap(),
        );
        assert!(command.contains(&"-Xmx196608k".to_owned()), "{command:?}");
        assert!(command.contains(&"-Xss16384k".to_owned()), "{command:?}");
        assert_eq!(command[command.len() - 3..], ["-cp", "/box/prog.jar", "MainKt"]);
        assert!(jvm_out_of_memory(
            b"Exception in thread \"main\" java.lang.OutOfMemoryError: Java heap space"
        ));
    }
}
