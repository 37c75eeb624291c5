//! Compiles the sandbox supervisor, every `.c` file of `guard/`, into a static binary that the Docker runtime embeds
//! and copies into every sandbox. Static and libc-only, so it runs in any image, even one holding nothing else. Its
//! tests (`guard/tests/`) are compiled by `tests/guard_frames.rs` instead.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=guard");
    println!("cargo:rerun-if-env-changed=CC");
    let out_dir = std::env::var_os("OUT_DIR")
        .map(PathBuf::from)
        .expect("cargo always sets OUT_DIR");
    let binary = out_dir.join("scrc-guard");
    let mut sources: Vec<PathBuf> = std::fs::read_dir("guard")
        .expect("guard/ holds the supervisor's sources")
        .map(|entry| entry.expect("guard/ is readable").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "c"))
        .collect();
    sources.sort();
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&compiler)
        .args(["-static", "-O2", "-s", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&binary)
        .args(&sources)
        .status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => panic!(
            "compiling the supervisor in guard/ with {compiler} failed ({status}); it needs a static libc (Debian: libc6-dev)"
        ),
        Err(error) => panic!("cannot run the C compiler {compiler:?}: {error}"),
    }
}
