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

use super::{LanguageModule, MIB, OwnHeap, PROGRAM_DIR, contains, heap_under, strings};
use crate::domain::MemoryLimit;

pub struct Java;

/// javac's class-data sharing archive in scrc's JDK image.
const JAVAC_ARCHIVE: &str = "/opt/scrc/javac.jsa";

impl LanguageModule for Java {
    fn source_file(&self, source: &str) -> String {
        format!("{}.java", public_class(source).unwrap_or_else(|| "Main".into()))
    }

    fn build_command(&self, source_file: &str) -> Vec<String> {
        let mut command = strings(&[
            "javac",
            "-J-XX:+UseSerialGC",
            "-J-XX:TieredStopAtLevel=1",
            "-J-XX:-UsePerfData",
            "-J-Xshare:auto",
        ]);
        command.push(format!("-J-XX:SharedArchiveFile={JAVAC_ARCHIVE}"));
        command.extend(strings(&["-encoding", "UTF-8", "-d", "."]));
        command.push(source_file.to_owned());
        command
    }

    fn run_command(&self, source_file: &str, memory: MemoryLimit) -> Vec<String> {
        let class = source_file.strip_suffix(".java").unwrap_or(source_file);
        let stack = (memory.bytes() / 4).clamp(MIB, 64 * MIB);
        let mut command = java_under(memory, stack);
        command.extend(["-cp".into(), PROGRAM_DIR.into(), class.into()]);
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

/// The name of the first `public` top-level class, interface, enum or record, skipping comments and literals.
fn public_class(source: &str) -> Option<String> {
    let code = strip_comments_and_literals(source);
    let tokens: Vec<&str> = code
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
        .filter(|token| !token.is_empty())
        .collect();
    let kinds = ["class", "interface", "enum", "record"];
    let modifiers = ["public", "final", "abstract", "static", "strictfp", "sealed", "non"];
    for (index, token) in tokens.iter().enumerate() {
        if !kinds.contains(token) {
            continue;
        }
        let mut preceding = tokens[..index].iter().rev().take_while(|t| modifiers.contains(t));
        if preceding.any(|t| *t == "public") {
            return tokens.get(index + 1).map(|name| (*name).to_owned());
        }
    }
    None
}

/// Blanks out comments and string or character literals (keeping byte offsets), so words inside them are not
/// mistaken for declarations.
fn strip_comments_and_literals(source: &str) -> String {
    let bytes = source.as_bytes();
    let mut out = bytes.to_vec();
    let mut i = 0;
    while i < bytes.len() {
        let blank_until = |out: &mut Vec<u8>, from: usize, to: usize| {
            for byte in &mut out[from..to.min(bytes.len())] {
                if *byte != b'\n' {
                    *byte = b' ';
                }
            }
        };
        match (bytes[i], bytes.get(i + 1)) {
            (b'/', Some(b'/')) => {
                let end = source[i..].find('\n').map_or(bytes.len(), |n| i + n);
                blank_until(&mut out, i, end);
                i = end;
            }
            (b'/', Some(b'*')) => {
                let end = source[i + 2..].find("*/").map_or(bytes.len(), |n| i + 2 + n + 2);
                blank_until(&mut out, i, end);
                i = end;
            }
            (quote @ (b'"' | b'\''), _) => {
                let mut end = i + 1;
                while end < bytes.len() && bytes[end] != quote {
                    end += if bytes[end] == b'\\' { 2 } else { 1 };
                }
                blank_until(&mut out, i, end + 1);
                i = end + 1;
            }
            _ => i += 1,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_class_names_the_file() {
        assert_eq!(Java.source_file("public class Main { }"), "Main.java");
        assert_eq!(
            Java.source_file("import java.util.*;\nclass Helper {}\npublic final class Solution {}"),
            "Solution.java"
        );
        assert_eq!(Java.source_file("class Main { }"), "Main.java", "no public class: Main");
        assert_eq!(
            Java.source_file(
                "// public class Decoy\n/* public class Other */\nString s = \"public class X\";\npublic class Real {}"
            ),
            "Real.java"
        );
    }

    #[test]
    fn javac_maps_the_image_archive_and_tolerates_its_absence() {
        let command = Java.build_command("Main.java");
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
        let command = Java.build_command("Main.java");
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
        let command = Java.run_command("Main.java", MemoryLimit::new(256 * MIB).unwrap());
        assert!(command.contains(&"-Xmx196608k".to_owned()), "{command:?}");
        assert_eq!(command.last().map(String::as_str), Some("Main"));
        let small = Java.run_command("Main.java", MemoryLimit::new(16 * MIB).unwrap());
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
