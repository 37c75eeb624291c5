//! Tar archives for Docker's archive API: what goes into a sandbox (source, supervisor, artifact) and what comes
//! out of a build.

use std::io::Read;

/// One file to put into a container.
pub struct FileEntry<'a> {
    pub path: &'a str,
    pub mode: u32,
    pub contents: &'a [u8],
}

/// Packs directories (created first) and files into a tar archive.
pub fn pack(directories: &[(&str, u32)], files: &[FileEntry<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for (path, mode) in directories {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(*mode);
        header.set_size(0);
        header.set_mtime(now);
        // Writing into a Vec cannot fail.
        let _ = builder.append_data(&mut header, path, std::io::empty());
    }
    for file in files {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(file.mode);
        header.set_size(file.contents.len() as u64);
        header.set_mtime(now);
        let _ = builder.append_data(&mut header, file.path, file.contents);
    }
    builder.into_inner().unwrap_or_default()
}

/// Whether a tar archive holds a regular file with exactly `contents`.
pub fn contains_file(tar_bytes: &[u8], contents: &[u8]) -> bool {
    let mut archive = tar::Archive::new(tar_bytes);
    let Ok(entries) = archive.entries() else {
        return false;
    };
    entries.flatten().any(|mut entry| {
        let mut held = Vec::new();
        entry.header().entry_type().is_file() && entry.read_to_end(&mut held).is_ok() && held == contents
    })
}

/// Why an artifact was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable build output: {0}")]
pub struct BadArtifact(pub String);

/// Re-roots a build's output for the program volume: drops the archive's top directory, keeps only regular files
/// and directories (no links or devices), drops any file named like the supervisor (a fresh one is added by the
/// caller), makes everything readable by the sandbox user, and keeps modification times (Python's bytecode cache
/// is checked against them).
pub fn reroot_artifact(tar_bytes: &[u8], reserved: &str) -> Result<Vec<u8>, BadArtifact> {
    let bad = |e: std::io::Error| BadArtifact(e.to_string());
    let mut archive = tar::Archive::new(tar_bytes);
    let mut builder = tar::Builder::new(Vec::new());
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_dir()) {
            continue;
        }
        let path = entry.path().map_err(bad)?.into_owned();
        let relative: std::path::PathBuf = path.components().skip(1).collect();
        if relative.as_os_str().is_empty() || relative.file_name().is_some_and(|name| name == reserved) {
            continue;
        }
        let mode = entry.header().mode().map_err(bad)?;
        let mtime = entry.header().mtime().map_err(bad)?;
        let mut contents = Vec::new();
        entry.read_to_end(&mut contents).map_err(bad)?;
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(if kind.is_dir() {
            tar::EntryType::Directory
        } else {
            tar::EntryType::Regular
        });
        let readable = if kind.is_dir() || mode & 0o111 != 0 {
            0o555
        } else {
            0o444
        };
        header.set_mode(readable);
        header.set_size(contents.len() as u64);
        header.set_mtime(mtime);
        builder
            .append_data(&mut header, &relative, contents.as_slice())
            .map_err(bad)?;
    }
    builder.into_inner().map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(tar_bytes: &[u8]) -> Vec<(String, u32, Vec<u8>)> {
        let mut archive = tar::Archive::new(tar_bytes);
        archive
            .entries()
            .unwrap()
            .map(|entry| {
                let mut entry = entry.unwrap();
                let path = entry.path().unwrap().to_string_lossy().into_owned();
                let mode = entry.header().mode().unwrap();
                let mut contents = Vec::new();
                entry.read_to_end(&mut contents).unwrap();
                (path, mode, contents)
            })
            .collect()
    }

    #[test]
    fn artifacts_are_rerooted_cleaned_and_made_readable() {
        let downloaded = pack(
            &[("work", 0o777), ("work/pkg", 0o700)],
            &[
                FileEntry {
                    path: "work/prog",
                    mode: 0o700,
                    contents: b"\x7fELF",
                },
                FileEntry {
                    path: "work/pkg/A.class",
                    mode: 0o600,
                    contents: b"cafe",
                },
                FileEntry {
                    path: "work/.scrc-guard",
                    mode: 0o755,
                    contents: b"forged",
                },
            ],
        );
        let rerooted = reroot_artifact(&downloaded, ".scrc-guard").unwrap();
        assert_eq!(
            listing(&rerooted),
            [
                ("pkg".to_owned(), 0o555, vec![]),
                ("prog".to_owned(), 0o555, b"\x7fELF".to_vec()),
                ("pkg/A.class".to_owned(), 0o444, b"cafe".to_vec()),
            ]
        );
    }

    #[test]
    fn links_are_dropped() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        builder.append_link(&mut header, "work/escape", "/etc/shadow").unwrap();
        let rerooted = reroot_artifact(&builder.into_inner().unwrap(), ".scrc-guard").unwrap();
        assert!(listing(&rerooted).is_empty());
    }
}
