//! Go: compiled once without cgo into a static binary. The runtime's own "out of memory" fatal error counts as
//! ML, and GOMAXPROCS follows the CPU quota rather than the host's core count.
//!
//! Builds start warm: scrc's Go image carries a build cache of the standard library packages programs use
//! ([`WARM_CACHE`], prepared by `scripts/build-images.sh` with this module's build environment). The image's root
//! is read-only and shared by every build, so each build copies that cache into its own writable `GOCACHE` under
//! its private `/tmp` first: nothing one build writes is ever read by another. Any other Go image (without the
//! directory) builds from an empty cache as before.

use super::{LanguageModule, Layout, PROGRAM_DIR, strings};
use crate::domain::MemoryLimit;

pub struct Go;

/// The read-only standard-library build cache in scrc's Go image.
const WARM_CACHE: &str = "/opt/scrc/go-cache";

/// The build's own cache, on its private `/tmp`.
const BUILD_CACHE: &str = "/tmp/go-cache";

impl LanguageModule for Go {
    /// `sh -c` with the `.go` files of the entry's directory (one `package main`) as its positional arguments,
    /// never spliced into the script. A failed copy (a full
    /// `/tmp`) leaves an empty cache rather than a partial one. `-s -w` leaves out the symbol table and DWARF, which
    /// no judged run reads (a panic's trace comes from the runtime's own tables, unchanged) and which cost the linker
    /// about a third of the build.
    fn build_command(&self, layout: &Layout<'_>) -> Vec<String> {
        let script = format!(
            "[ ! -d {WARM_CACHE} ] || cp -R {WARM_CACHE} {BUILD_CACHE} || rm -rf {BUILD_CACHE}; \
             exec go build -ldflags='-s -w' -o prog \"$@\""
        );
        let mut command = strings(&["sh", "-c", &script, "sh"]);
        command.extend(layout.beside_entry(&[".go"]));
        command
    }

    /// `scripts/build-images.sh` (`warm_go`) prepares the image's cache with this same environment; a change here
    /// needs one there, or the cache silently stops matching (the test below checks they agree).
    fn build_env(&self) -> Vec<String> {
        let mut env = strings(&["HOME=/tmp", "TMPDIR=/tmp"]);
        env.push(format!("GOCACHE={BUILD_CACHE}"));
        env.extend(strings(&CACHE_KEY_ENV));
        env
    }

    fn run_command(&self, _layout: &Layout<'_>, _memory: MemoryLimit) -> Vec<String> {
        vec![format!("{PROGRAM_DIR}/prog")]
    }

    fn run_env(&self, cpus: f64) -> Vec<String> {
        let procs = cpus.ceil().max(1.0) as u32;
        vec!["HOME=/tmp".into(), "TMPDIR=/tmp".into(), format!("GOMAXPROCS={procs}")]
    }
}

/// The build variables that decide whether a cached package can be reused.
const CACHE_KEY_ENV: [&str; 5] = [
    "CGO_ENABLED=0",
    "GOPATH=/tmp/go",
    "GOFLAGS=-buildvcs=false",
    "GOTOOLCHAIN=local",
    "GOPROXY=off",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_file_is_an_argument_of_the_build_script_never_part_of_it() {
        let hostile = "$(touch /tmp/pwned)'\";.go";
        let command = Go.build_command(&super::super::layout(&[hostile.to_owned()]));
        assert_eq!(command[..2], ["sh", "-c"]);
        assert_eq!(command[3], "sh", "$0");
        assert_eq!(command[4], hostile, "$1");
        assert_eq!(command.len(), 5);
        assert!(!command[2].contains(hostile));
        assert!(
            command[2].ends_with("exec go build -ldflags='-s -w' -o prog \"$@\""),
            "{}",
            command[2]
        );
    }

    #[test]
    fn each_build_copies_the_shared_cache_into_its_own() {
        let script = &Go.build_command(&super::super::layout(&["main.go".to_owned()]))[2];
        assert!(script.contains("cp -R /opt/scrc/go-cache /tmp/go-cache"), "{script}");
        assert!(Go.build_env().contains(&"GOCACHE=/tmp/go-cache".to_owned()));
        assert!(BUILD_CACHE.starts_with("/tmp/"), "the build's private tmpfs");
    }

    #[test]
    fn the_image_cache_is_prepared_with_the_build_environment() {
        let script = include_str!("../../../../scripts/build-images.sh");
        let warm_go = script.split("warm_go() {").nth(1).expect("build-images.sh has warm_go");
        for variable in CACHE_KEY_ENV {
            assert!(warm_go.contains(variable), "warm_go lacks {variable}");
        }
        assert!(warm_go.contains(&format!("GOCACHE={WARM_CACHE}")));
    }
}
