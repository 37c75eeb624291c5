//! The supervisor's C tests, run by `cargo test`: `guard/tests/frames_test.c` holds the guard's encoders to the
//! golden frames in `guard/fixtures` (the runner's codec is held to the same files by the tests of
//! `src/adapters/docker/protocol.rs`), decodes the runner's requests with the guard's own parsing, and checks the
//! gather's byte accounting on trees it makes. It is compiled here with every guard source but `main.c` and the
//! warnings `build.rs` uses. It needs a C compiler (`cc`, or `$CC`), but neither Docker nor PID 1.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn guard_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("guard")
}

/// Every `.c` file of the supervisor but `main.c`, in a stable order.
fn guard_sources() -> Vec<PathBuf> {
    let mut sources: Vec<PathBuf> = std::fs::read_dir(guard_dir())
        .expect("guard/ is readable")
        .map(|entry| entry.expect("guard/ is readable").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "c") && !path.ends_with("main.c"))
        .collect();
    sources.sort();
    sources
}

#[test]
fn the_supervisor_encodes_and_decodes_every_frame_as_its_fixture() {
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("guard_frames-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("the test's temporary directory");
    let binary = work.join("frames_test");
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let compiled = Command::new(&compiler)
        .args(["-O2", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&binary)
        .arg(guard_dir().join("tests/frames_test.c"))
        .args(guard_sources())
        .output()
        .unwrap_or_else(|error| {
            panic!("the supervisor's C tests need a C compiler, and {compiler:?} cannot be run ({error}): install one (Debian: gcc and libc6-dev) or set CC")
        });
    assert!(
        compiled.status.success(),
        "compiling guard/tests/frames_test.c with {compiler} failed ({}):\n{}",
        compiled.status,
        String::from_utf8_lossy(&compiled.stderr)
    );

    let ran = Command::new(&binary)
        .arg(guard_dir().join("fixtures"))
        .arg(work.join("scratch"))
        .stdin(Stdio::null())
        .output()
        .expect("the compiled C tests run");
    let stdout = String::from_utf8_lossy(&ran.stdout);
    let stderr = String::from_utf8_lossy(&ran.stderr);
    assert!(
        ran.status.success() && stdout.contains("checks passed"),
        "guard/tests/frames_test.c failed ({}):\n{stdout}{stderr}",
        ran.status
    );
    std::fs::remove_dir_all(&work).expect("the test's temporary directory is removed");
}

/// A fixture neither side reads, or one the README does not describe, would hold nothing in step.
#[test]
fn every_fixture_is_described_and_read_by_both_sides() {
    let read = |path: &str| std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
    let readme = read("guard/fixtures/README.md");
    let c_side = read("guard/tests/frames_test.c");
    let rust_side = read("src/adapters/docker/protocol.rs");
    let mut fixtures: Vec<String> = std::fs::read_dir(guard_dir().join("fixtures"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".bin"))
        .collect();
    fixtures.sort();
    assert!(fixtures.len() >= 12, "the fixtures: {fixtures:?}");
    for name in &fixtures {
        assert!(
            readme.contains(&format!("`{name}`")),
            "guard/fixtures/README.md describes {name}"
        );
        assert!(
            c_side.contains(&format!("\"{name}\"")),
            "guard/tests/frames_test.c reads {name}"
        );
        assert!(rust_side.contains(&format!("\"{name}\"")), "protocol.rs reads {name}");
    }
}
