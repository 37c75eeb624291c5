//! Compiles the sandbox supervisor, `guard/scrc-guard.c`, into a static binary that the Docker runtime embeds and
//! copies into every sandbox. Static and libc-only, so it runs in any image, even one holding nothing else.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=guard/scrc-guard.c");
    println!("cargo:rerun-if-env-changed=CC");
    let out_dir = std::env::var_os("OUT_DIR")
        .map(PathBuf::from)
        .expect("cargo always sets OUT_DIR");
    let binary = out_dir.join("scrc-guard");
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&compiler)
        .args(["-static", "-O2", "-s", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&binary)
        .arg("guard/scrc-guard.c")
        .status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => panic!(
            "compiling guard/scrc-guard.c with {compiler} failed ({status}); it needs a static libc (Debian: libc6-dev)"
        ),
        Err(error) => panic!("cannot run the C compiler {compiler:?}: {error}"),
    }
}
