//! JavaScript on Node.js: no compilation, but `node --check` at build time, so that a syntax error is BF rather
//! than a runtime error in the first test.
//!
//! V8 does not look at the container's memory limit: left alone it grows its heap until the kernel OOM-kills it.
//! The old generation is sized under the limit the way java.rs sizes the JVM's heap (the limit minus 64 MiB, half
//! the limit below 128 MiB), so that a program that keeps its objects alive dies with V8's own "JavaScript heap out
//! of memory", which is ML, with the runtime still in control of its last words.
//!
//! Node writes to a pipe without blocking: once the pipe is full it queues what a program prints in memory until
//! the event loop runs, which a program printing in a loop never lets it do. A long output would then be held in
//! the heap (ML instead of OK), and an endless one would never reach the output limit (TL instead of OL). So the
//! build also leaves [`BLOCKING_STDIO`] next to the program, preloaded by every run, which makes stdout and stderr
//! blocking, as they are for a file.

use super::{LanguageModule, Layout, MIB, OwnHeap, PROGRAM_DIR, contains, each_file, heap_under, strings};
use crate::domain::MemoryLimit;

pub struct JavaScript;

impl LanguageModule for JavaScript {
    /// Every `.js` file syntax-checked; modules load from beside the entry.
    fn build_command(&self, layout: &Layout<'_>) -> Vec<String> {
        leaving_blocking_stdio(each_file("node --check", &layout.with_extension(&[".js"])))
    }

    fn run_command(&self, layout: &Layout<'_>, memory: MemoryLimit) -> Vec<String> {
        node_under(memory, &format!("{PROGRAM_DIR}/{}", layout.entry))
    }

    fn own_heap(&self, memory: MemoryLimit) -> Option<OwnHeap> {
        Some(OwnHeap::new(node_heap(memory), node_out_of_memory))
    }
}

/// The preload, in the program directory, that makes stdout and stderr blocking.
const BLOCKING_STDIO: &str = ".scrc-blocking-stdio.js";

/// Its code: Node's stream handles for pipes can be switched to blocking writes.
const BLOCKING_STDIO_CODE: &str = "for (const s of [process.stdout, process.stderr]) \
     if (s._handle && s._handle.setBlocking) s._handle.setBlocking(true);";

/// `build`, then, when it succeeded, [`BLOCKING_STDIO`] written next to the program. The build's words are `sh`'s
/// positional arguments, never part of its script (JavaScript and TypeScript build alike).
pub(super) fn leaving_blocking_stdio(build: Vec<String>) -> Vec<String> {
    let script = format!("\"$@\" || exit; printf '%s\\n' '{BLOCKING_STDIO_CODE}' > {BLOCKING_STDIO}");
    let mut command = strings(&["sh", "-c", &script, "sh"]);
    command.extend(build);
    command
}

/// `node` running `script` with V8's old generation sized under the container's memory limit and the blocking
/// stdio preloaded (JavaScript and TypeScript run alike).
pub(super) fn node_under(memory: MemoryLimit, script: &str) -> Vec<String> {
    vec![
        "node".into(),
        format!("--max-old-space-size={}", node_heap(memory) / MIB),
        "--require".into(),
        format!("{PROGRAM_DIR}/{BLOCKING_STDIO}"),
        script.into(),
    ]
}

/// V8's old generation under `memory`: the limit less 64 MiB (half the limit below 128 MiB), at least 4 MiB.
pub(super) fn node_heap(memory: MemoryLimit) -> u64 {
    (heap_under(memory.bytes(), 64 * MIB) / MIB).max(4) * MIB
}

/// V8's fatal heap exhaustion, and the allocation failures of buffers outside its heap.
pub(super) fn node_out_of_memory(stderr: &[u8]) -> bool {
    [
        "JavaScript heap out of memory",
        "RangeError: Array buffer allocation failed",
        "Fatal process out of memory",
    ]
    .iter()
    .any(|pattern| contains(stderr, pattern))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heap_fits_under_the_container_limit() {
        let command = JavaScript.run_command(
            &super::super::layout(&["main.js".to_owned()]),
            MemoryLimit::new(256 * MIB).unwrap(),
        );
        assert_eq!(
            command,
            [
                "node",
                "--max-old-space-size=192",
                "--require",
                "/box/.scrc-blocking-stdio.js",
                "/box/main.js"
            ]
        );
        let small = JavaScript.run_command(
            &super::super::layout(&["main.js".to_owned()]),
            MemoryLimit::new(64 * MIB).unwrap(),
        );
        assert_eq!(small[1], "--max-old-space-size=32");
    }

    #[test]
    fn a_syntax_check_is_the_build_and_it_leaves_the_preload() {
        let command = JavaScript.build_command(&super::super::layout(&["main.js".to_owned()]));
        assert_eq!(command[..2], ["sh", "-c"]);
        assert_eq!(command[3..], ["sh", "node", "--check", "main.js"]);
        assert!(
            command[2].starts_with("\"$@\" || exit; ") && command[2].ends_with("> .scrc-blocking-stdio.js"),
            "{}",
            command[2]
        );
        assert!(
            !BLOCKING_STDIO_CODE.contains('\''),
            "the code is single-quoted in the script"
        );
    }

    #[test]
    fn v8_memory_failures_are_recognised() {
        assert!(node_out_of_memory(
            b"FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory"
        ));
        assert!(!node_out_of_memory(b"RangeError: Maximum call stack size exceeded"));
    }
}
