//! What a language asks of the sandbox: the image, command and environment of its build and of each run. The
//! language modules ([`super::languages`]) make them; the sandbox carries them out the same way for every language.

use super::protocol::Entry;
use crate::domain::ProgramFile;

/// What a language asks of a build.
#[derive(Debug, Clone)]
pub struct BuildPlan {
    /// The language's name, part of the artifact cache's key.
    pub language: &'static str,
    /// The build image; its id is part of the artifact cache's key, so a rebuilt image never serves old output.
    pub image: String,
    /// The program's files as the build gets them, under the program directory: its directories, then its files,
    /// the entry among them.
    pub sources: Vec<Entry>,
    /// The compiler's command line, run in the program directory.
    pub command: Vec<String>,
    /// The compiler's environment, over the image's own.
    pub env: Vec<String>,
}

/// What a language asks of each run.
#[derive(Debug, Clone)]
pub struct RunPlan {
    /// The run image; it needs nothing but the program's runtime.
    pub image: String,
    /// The program's working directory (SCRC's `*_WORKDIR`).
    pub workdir: String,
    /// The program's command line.
    pub command: Vec<String>,
    /// The program's environment, over the image's own.
    pub env: Vec<String>,
    /// Where a test's input is put instead of on stdin (`io.input_file`, in the working directory).
    pub input_file: Option<String>,
    /// Where the program's output is read from instead of its stdout (`io.output_file`, in the working directory).
    pub output_file: Option<String>,
}

/// The program's files as a tree for the build: every directory their paths need (outermost first, mode 0755),
/// then the entry and the other files, read-only (0444), all as of now, so that a language's bytecode cache
/// matches its sources.
pub fn sources(entry: &str, source: &str, files: &[ProgramFile]) -> Vec<Entry> {
    let mtime = unix_now();
    let mut directories = std::collections::BTreeSet::new();
    let paths = std::iter::once(entry).chain(files.iter().map(|file| file.path.as_str()));
    for path in paths {
        directories.extend(path.match_indices('/').map(|(at, _)| path[..at].to_owned()));
    }
    let mut tree: Vec<Entry> = directories
        .into_iter()
        .map(|path| Entry {
            path,
            mode: 0o755,
            mtime,
            contents: None,
        })
        .collect();
    tree.push(Entry {
        path: entry.to_owned(),
        mode: 0o444,
        mtime,
        contents: Some(source.as_bytes().to_vec()),
    });
    tree.extend(files.iter().map(|file| Entry {
        path: file.path.to_string(),
        mode: 0o444,
        mtime,
        contents: Some(file.content.clone()),
    }));
    tree
}

/// Now, in seconds since the epoch, as the supervisor's frames give a file's modification time.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}
