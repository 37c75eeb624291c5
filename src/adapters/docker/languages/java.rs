//! Java: compiled once with javac, run on the JRE with a heap sized under the container's memory limit, so that
//! heap exhaustion is an `OutOfMemoryError` (ML) rather than the container dying mid-allocation.
//!
//! The JVM itself needs roughly 40 MiB besides the heap. The heap gets the limit minus 64 MiB (half the limit
//! below 128 MiB). A limit too small for the JVM to start at all (SCRC's 16 MiB case) is ML too: the JVM either
//! reports that it cannot reserve its heap or is OOM-killed while starting, and the program did not fit in the
//! memory it was given. The file is named after the source's public class, which is also the class run.
//!
//! javac starts from a class-data sharing archive of the classes it loads ([`JAVAC_ARCHIVE`], dumped by
//! `scripts/build-images.sh` while compiling a representative program with these flags): mapping them saves
//! loading and verifying some 2,000 classes per compile. The archive is read-only in the image; with `-Xshare:auto`
//! a JDK without it, or one it does not match, starts as before, silently.

use super::{LanguageModule, Layout, MIB, OwnHeap, PROGRAM_DIR, contains, heap_under, strings};
use crate::domain::MemoryLimit;
use crate::domain::entry::java_main_class;

pub struct Java;

/// javac's class-data sharing archive in scrc's JDK image.
const JAVAC_ARCHIVE: &str = "/opt/scrc/javac.jsa";

impl LanguageModule for Java {
    fn build_command(&self, layout: &Layout<'_>) -> Vec<String> {
        let mut command = strings(&[
            "javac",
            "-J-XX:+UseSerialGC",
            "-J-XX:TieredStopAtLevel=1",
            "-J-XX:-UsePerfData",
            "-J-Xshare:auto",
        ]);
        command.push(format!("-J-XX:SharedArchiveFile={JAVAC_ARCHIVE}"));
        command.extend(strings(&["-encoding", "UTF-8", "-d", "."]));
        command.extend(layout.with_extension(&[".java"]));
        command
    }

    fn run_command(&self, layout: &Layout<'_>, memory: MemoryLimit) -> Vec<String> {
        let class = java_main_class(layout.entry, layout.entry_source);
        let stack = (memory.bytes() / 4).clamp(MIB, 64 * MIB);
        let mut command = java_under(memory, stack);
        command.extend(["-cp".into(), PROGRAM_DIR.into(), class]);
        command
    }

    fn own_heap(&self, memory: MemoryLimit) -> Option<OwnHeap> {
        Some(OwnHeap::new(jvm_heap(memory), jvm_out_of_memory))
    }
}

/// `java` with its heap sized under the container's memory limit and thread stacks of `stack` bytes (Java and
/// Kotlin run alike but for the stack).
pub(super) fn java_under(memory: MemoryLimit, stack: u64) -> Vec<String> {
    vec![
        "java".into(),
        "-XX:+UseSerialGC".into(),
        "-XX:-UsePerfData".into(),
        "-Xshare:auto".into(),
        format!("-Xmx{}k", jvm_heap(memory) / 1024),
        format!("-Xss{}k", stack / 1024),
    ]
}

/// The JVM's heap under `memory`: the limit less 64 MiB (half the limit below 128 MiB), at least 1 MiB.
pub(super) fn jvm_heap(memory: MemoryLimit) -> u64 {
    heap_under(memory.bytes(), 64 * MIB).max(MIB) / 1024 * 1024
}

/// The JVM's own ways of saying that the program, or the JVM itself, did not fit.
pub(super) fn jvm_out_of_memory(stderr: &[u8]) -> bool {
    [
        "java.lang.OutOfMemoryError",
        "Could not reserve enough space",
        "insufficient memory for the Java Runtime Environment",
        "Error occurred during initialization of VM",
    ]
    .iter()
    .any(|pattern| contains(stderr, pattern))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn javac_maps_the_image_archive_and_tolerates_its_absence() {
        let command = Java.build_command(&super::super::layout(&["Main.java".to_owned()]));
        assert!(
            command.contains(&"-J-XX:SharedArchiveFile=/opt/scrc/javac.jsa".to_owned()),
            "{command:?}"
        );
        assert!(
            command.contains(&"-J-Xshare:auto".to_owned()),
            "never -Xshare:on: {command:?}"
        );
        assert_eq!(command.last().map(String::as_str), Some("Main.java"));
    }

    #[test]
    fn the_image_archive_is_dumped_with_the_build_flags() {
        let script = include_str!("../../../../scripts/build-images.sh");
        let warm_jdk = script
            .split("warm_jdk() {")
            .nth(1)
            .expect("build-images.sh has warm_jdk");
        let command = Java.build_command(&super::super::layout(&["Main.java".to_owned()]));
        for flag in command
            .iter()
            .filter(|arg| arg.starts_with("-J-") && !arg.contains("SharedArchiveFile"))
        {
            assert!(warm_jdk.contains(flag.as_str()), "warm_jdk lacks {flag}");
        }
        assert!(warm_jdk.contains(&format!("-J-XX:ArchiveClassesAtExit={JAVAC_ARCHIVE}")));
    }

    #[test]
    fn the_heap_fits_under_the_container_limit() {
        let command = Java.run_command(
            &super::super::layout(&["Main.java".to_owned()]),
            MemoryLimit::new(256 * MIB).unwrap(),
        );
        assert!(command.contains(&"-Xmx196608k".to_owned()), "{command:?}");
        assert_eq!(command.last().map(String::as_str), Some("Main"));
        let small = Java.run_command(
            &super::super::layout(&["Main.java".to_owned()]),
            MemoryLimit::new(16 * MIB).unwrap(),
        );
        assert!(small.contains(&"-Xmx8192k".to_owned()), "{small:?}");
    }

    #[test]
    fn jvm_memory_failures_are_recognised() {
        assert!(jvm_out_of_memory(
            b"Exception in thread \"main\" java.lang.OutOfMemoryError: Java heap space"
        ));
        assert!(jvm_out_of_memory(
            b"Error occurred during initialization of VM\nToo small maximum heap"
        ));
        assert!(!jvm_out_of_memory(
            b"Exception in thread \"main\" java.lang.ArithmeticException"
        ));
    }
}
