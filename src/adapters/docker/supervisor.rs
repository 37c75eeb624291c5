//! The sandbox supervisor's place on the engine: the static binary `build.rs` compiles from `guard/`, and the
//! read-only volume through which every sandbox runs it as PID 1 (`/.scrc/scrc-guard --serve ...`).
//!
//! The volume is named by the binary's hash, so runners of one build share it and a new build never runs an old
//! supervisor. It is made and filled through a container that is never started (Docker's archive API), and a
//! volume that exists already is only checked, so that a supervisor some sandbox is executing is never rewritten.

use std::io::Read;
use std::time::SystemTime;

use super::engine::{Download, Engine};
use super::hardening::{self, VolumeMount};
use super::labels;
use crate::ports::{RuntimeError, describe};

/// The static supervisor binary, built by `build.rs`.
pub const GUARD_BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/scrc-guard"));

/// Where the supervisor's volume is mounted, read-only, in every sandbox.
pub const GUARD_DIR: &str = "/.scrc";

/// The file name of the supervisor in its volume.
pub const GUARD_NAME: &str = "scrc-guard";

/// The volume holding this build's supervisor, made and filled if it is not there yet. The filler is labelled as
/// `instance`'s, so that a runner killed while filling leaves nothing the reaper misses.
///
/// # Errors
/// [`RuntimeError`] when the engine refuses the volume, the filler or the copy.
pub async fn volume(engine: &Engine, image: &str, instance: &str) -> Result<String, RuntimeError> {
    let name = format!("scrc-guard-{:016x}", fnv1a(GUARD_BINARY));
    engine.create_volume(&name, labels::for_guard_volume()).await?;
    let mount = VolumeMount {
        volume: name.clone(),
        target: GUARD_DIR.into(),
        read_only: false,
    };
    let body = hardening::filler(image, &[mount], labels::for_filler(instance));
    let filler = format!(
        "{name}-fill-{}-{}",
        std::process::id(),
        fnv1a(format!("{:?}", SystemTime::now()).as_bytes())
    );
    let id = engine.create_container(&filler, body).await?;
    let filled = fill(engine, &id).await;
    if let Err(error) = engine.remove_container(&id).await {
        tracing::warn!(error = %describe(&error), container = %id, "cannot remove the supervisor volume's filler");
    }
    filled.map(|()| name)
}

/// Copies the supervisor into the filler's volume, unless the volume already holds exactly this binary.
async fn fill(engine: &Engine, filler: &str) -> Result<(), RuntimeError> {
    let path = format!("{GUARD_DIR}/{GUARD_NAME}");
    if let Ok(Download::Complete(tar)) = engine.download(filler, &path, GUARD_BINARY.len() * 2).await
        && holds_file(&tar, GUARD_BINARY)
    {
        return Ok(());
    }
    Ok(engine
        .upload(filler, GUARD_DIR, packed(GUARD_NAME, GUARD_BINARY))
        .await?)
}

/// A tar archive of one read-only executable file, for Docker's archive API.
fn packed(path: &str, contents: &[u8]) -> Vec<u8> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o555);
    header.set_size(contents.len() as u64);
    header.set_mtime(
        SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    );
    let mut builder = tar::Builder::new(Vec::new());
    // Writing into a Vec cannot fail.
    let _ = builder.append_data(&mut header, path, contents);
    builder.into_inner().unwrap_or_default()
}

/// Whether a tar archive holds a regular file with exactly `contents`.
fn holds_file(tar_bytes: &[u8], contents: &[u8]) -> bool {
    let mut archive = tar::Archive::new(tar_bytes);
    let Ok(entries) = archive.entries() else {
        return false;
    };
    entries.flatten().any(|mut entry| {
        let mut held = Vec::new();
        entry.header().entry_type().is_file() && entry.read_to_end(&mut held).is_ok() && held == contents
    })
}

/// A stable 64-bit hash (FNV-1a): enough to tell supervisor builds apart, and the same in every process.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_volume_name_follows_the_supervisor_build() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_ne!(fnv1a(b"a"), fnv1a(b"b"));
    }

    #[test]
    fn a_packed_file_is_found_only_with_its_exact_contents() {
        let tar = packed(GUARD_NAME, b"\x7fELF binary");
        assert!(holds_file(&tar, b"\x7fELF binary"));
        assert!(!holds_file(&tar, b"\x7fELF other"));
        assert!(!holds_file(b"not a tar", b""));
    }
}
