//! A program of several files: the paths its files may take, the files themselves, and where a test's input and
//! output go when the program reads and writes files instead of stdin and stdout.
//!
//! A script's `source` is one file; `files` adds others beside it (a header, a helper module, the setter's grader
//! stub) or replaces it. Whatever the producer sent, the domain holds the entry (the file that is the program) as
//! [`super::Source`] and every other file here, so that a one-file script is the special case it always was.

use std::fmt;

/// A path inside the program's directory, as a producer names one of its files: relative, no `..` or `.`
/// component, no empty component, no NUL, no component starting with `-` or `@` (the paths go on compilers' command
/// lines, where `-fplugin=x` is an option and `@x` a file of options), at most [`ProgramPath::MAX_BYTES`] bytes, and
/// none of the names scrc keeps for itself ([`ProgramPath::RESERVED`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProgramPath(String);

impl ProgramPath {
    /// The longest path accepted, in bytes: a file name on most filesystems, and room for a package's directories.
    pub const MAX_BYTES: usize = 255;

    /// Names at the top of the program directory that scrc's builds write (`prog`, `prog.jar`, `prog.exe`) or keep
    /// (anything starting with `.scrc`): a file of the program there would be overwritten, or would stand in for the
    /// build's output.
    pub const RESERVED: [&'static str; 3] = ["prog", "prog.jar", "prog.exe"];

    /// # Errors
    /// [`InvalidPath`] naming the rule `path` breaks.
    pub fn new(path: impl Into<String>) -> Result<Self, InvalidPath> {
        let path = path.into();
        let refuse = |rule: PathRule| {
            Err(InvalidPath {
                path: path.clone(),
                rule,
            })
        };
        if path.is_empty() {
            return refuse(PathRule::Empty);
        }
        if path.len() > Self::MAX_BYTES {
            return refuse(PathRule::TooLong);
        }
        if path.contains('\0') {
            return refuse(PathRule::Nul);
        }
        if path.starts_with('/') || path.contains('\\') {
            return refuse(PathRule::NotRelative);
        }
        if path
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
        {
            return refuse(PathRule::Component);
        }
        if path.split('/').any(|part| part.starts_with(['-', '@'])) {
            return refuse(PathRule::OptionLike);
        }
        let top = path.split('/').next().unwrap_or_default();
        if Self::RESERVED.contains(&top) || top.starts_with(".scrc") {
            return refuse(PathRule::Reserved);
        }
        Ok(Self(path))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path's directories, outermost first: `a/b/c.txt` has `a` and `a/b`.
    pub fn parents(&self) -> impl Iterator<Item = &str> {
        self.0.match_indices('/').map(|(at, _)| &self.0[..at])
    }
}

impl fmt::Display for ProgramPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("path {path:?} {rule}")]
pub struct InvalidPath {
    /// The path as the producer sent it.
    pub path: String,
    /// The rule it breaks.
    pub rule: PathRule,
}

/// The rules a program's path must keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathRule {
    #[error("is empty")]
    Empty,
    #[error("is over 255 bytes")]
    TooLong,
    #[error("holds a NUL byte")]
    Nul,
    #[error("is not relative (it starts with '/' or holds '\\')")]
    NotRelative,
    #[error("has an empty, '.' or '..' component: it must stay inside the program's directory")]
    Component,
    #[error("has a component starting with '-' or '@': a compiler would read it as an option or a file of options")]
    OptionLike,
    #[error("is scrc's own (prog, prog.jar, prog.exe and names starting with .scrc hold the build's output)")]
    Reserved,
}

/// One file of a program besides its entry: a header, a module, a data file or a grader stub.
#[derive(Clone, PartialEq, Eq)]
pub struct ProgramFile {
    /// Where the file goes, relative to the program's directory.
    pub path: ProgramPath,
    /// Its bytes, decoded (a producer sends binary files as base64).
    pub content: Vec<u8>,
}

impl fmt::Debug for ProgramFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProgramFile")
            .field("path", &self.path)
            .field("bytes", &self.content.len())
            .finish()
    }
}

/// Why a program's files cannot be built as sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilesError {
    #[error("{count} files, over the limit of {limit} (RUNNER_MAX_FILES)")]
    TooMany { count: usize, limit: usize },
    #[error("two files have the path {0:?}")]
    Duplicate(String),
    #[error("{file:?} is a file, and {path:?} needs it to be a directory")]
    ParentIsFile { file: String, path: String },
    #[error("the files hold {bytes} bytes decoded, over the message limit of {limit} bytes")]
    TooLarge { bytes: usize, limit: usize },
}

/// Checks a program's files as a tree: one file per path, no file where another needs a directory, at most
/// `max_files` of them (the entry included) and at most `max_bytes` decoded.
///
/// # Errors
/// [`FilesError`] naming the first rule broken.
pub fn check_tree<'a>(
    paths: impl IntoIterator<Item = (&'a ProgramPath, usize)>,
    max_files: usize,
    max_bytes: usize,
) -> Result<(), FilesError> {
    let mut seen = std::collections::BTreeSet::new();
    let mut bytes = 0usize;
    for (path, size) in paths {
        if !seen.insert(path.as_str()) {
            return Err(FilesError::Duplicate(path.to_string()));
        }
        bytes = bytes.saturating_add(size);
    }
    if seen.len() > max_files {
        return Err(FilesError::TooMany {
            count: seen.len(),
            limit: max_files,
        });
    }
    if bytes > max_bytes {
        return Err(FilesError::TooLarge {
            bytes,
            limit: max_bytes,
        });
    }
    for path in &seen {
        let path = ProgramPath(path.to_string());
        if let Some(file) = path.parents().find(|parent| seen.contains(parent)) {
            return Err(FilesError::ParentIsFile {
                file: file.to_owned(),
                path: path.to_string(),
            });
        }
    }
    Ok(())
}

/// Where a test's input and output go when the program uses files (an scrc extension, `io`): the input is put at
/// `input_file` in the program's working directory instead of on stdin, and the output read from `output_file`
/// instead of stdout. Either may be set alone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct FileIo {
    /// The file the test's input is put in; `None` for stdin.
    pub input_file: Option<IoName>,
    /// The file the program's output is read from; `None` for stdout.
    pub output_file: Option<IoName>,
}

/// A file name of `io`: a single component (no `/`), at most 255 bytes, no NUL, not `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IoName(String);

impl IoName {
    /// # Errors
    /// [`InvalidIoName`] for a name with a `/`, a NUL, `.`, `..`, nothing or more than 255 bytes.
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidIoName> {
        let name = name.into();
        let valid = !name.is_empty()
            && name.len() <= ProgramPath::MAX_BYTES
            && name != "."
            && name != ".."
            && !name.contains(['/', '\\', '\0']);
        if valid {
            Ok(Self(name))
        } else {
            Err(InvalidIoName(name))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a file name: one component of 1 to 255 bytes, without '/', '\\\\' or NUL, and not . or ..")]
pub struct InvalidIoName(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    fn path(text: &str) -> ProgramPath {
        ProgramPath::new(text).unwrap()
    }

    #[test]
    fn a_path_stays_inside_the_program_directory() {
        for ok in [
            "main.c",
            "lib/util.h",
            "com/example/App.java",
            "data.bin",
            ".hidden",
            "prog2",
            "progs/x",
            "a-b/c@d.c",
        ] {
            assert!(ProgramPath::new(ok).is_ok(), "{ok}");
        }
        let refused = [
            ("", PathRule::Empty),
            ("/etc/x", PathRule::NotRelative),
            ("a\\b", PathRule::NotRelative),
            ("../x", PathRule::Component),
            ("a/../../x", PathRule::Component),
            ("a//b", PathRule::Component),
            ("./a", PathRule::Component),
            ("a/", PathRule::Component),
            ("a\0b", PathRule::Nul),
            ("prog", PathRule::Reserved),
            ("prog.jar", PathRule::Reserved),
            ("prog.exe/x", PathRule::Reserved),
            (".scrc-guard", PathRule::Reserved),
            ("-fplugin=x.c", PathRule::OptionLike),
            ("lib/@opts.java", PathRule::OptionLike),
            ("-toolexec=x.go", PathRule::OptionLike),
        ];
        for (text, rule) in refused {
            assert_eq!(ProgramPath::new(text).unwrap_err().rule, rule, "{text:?}");
        }
        assert_eq!(ProgramPath::new("x".repeat(256)).unwrap_err().rule, PathRule::TooLong);
        assert!(ProgramPath::new("x".repeat(255)).is_ok());
    }

    #[test]
    fn a_paths_parents_are_its_directories() {
        assert_eq!(path("a/b/c.txt").parents().collect::<Vec<_>>(), ["a", "a/b"]);
        assert_eq!(path("c.txt").parents().count(), 0);
    }

    #[test]
    fn a_tree_has_one_file_per_path_and_no_file_where_a_directory_goes() {
        let (a, b, ab) = (path("a"), path("b"), path("a/b"));
        assert!(check_tree([(&a, 1), (&b, 1)], 2, 2).is_ok());
        assert_eq!(
            check_tree([(&a, 1), (&a, 1)], 8, 8),
            Err(FilesError::Duplicate("a".into()))
        );
        assert_eq!(
            check_tree([(&ab, 1), (&a, 1)], 8, 8),
            Err(FilesError::ParentIsFile {
                file: "a".into(),
                path: "a/b".into()
            })
        );
        assert_eq!(
            check_tree([(&a, 1), (&b, 1)], 1, 8),
            Err(FilesError::TooMany { count: 2, limit: 1 })
        );
        assert_eq!(
            check_tree([(&a, 5), (&b, 4)], 8, 8),
            Err(FilesError::TooLarge { bytes: 9, limit: 8 })
        );
    }

    #[test]
    fn an_io_name_is_one_component() {
        for ok in ["input.txt", "OUTPUT", "a.b.c"] {
            assert!(IoName::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "/in", "a\0", "a\\b"] {
            assert!(IoName::new(bad).is_err(), "{bad:?}");
        }
    }
}
