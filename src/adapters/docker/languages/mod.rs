//! Per-language knowledge: the source file name, how to build, how to run, and how the language reports running
//! out of memory. The sandbox does the rest, the same way for every language.
//!
//! A build runs in the build image with the build directory as its working directory and must leave the program
//! there; a run executes it from the read-only program directory `/box`.

mod c;
mod cpp;
mod csharp;
mod go;
mod java;
mod javascript;
mod kotlin;
mod php;
mod python;
mod ruby;
mod rust;
mod typescript;

use crate::domain::{Language, MemoryLimit};

/// Where the program's files are mounted in a run container.
pub const PROGRAM_DIR: &str = "/box";

/// The images and working directory a language uses (SCRC's `*_IMAGE`, `*_RUN_IMAGE`, `*_WORKDIR`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toolchain {
    /// The image the language's programs are built in (`*_IMAGE`), which has the compiler.
    pub build_image: String,
    /// The image they run in (`*_RUN_IMAGE`), which needs only the runtime; the build image itself for some languages.
    pub run_image: String,
    /// Working directory of the program when it runs.
    pub workdir: String,
}

/// A program's files as its build and run see them, as paths relative to the program directory.
#[derive(Debug, Clone, Copy)]
pub struct Layout<'a> {
    /// The entry, the file that is the program (see [`crate::domain::entry`]).
    pub entry: &'a str,
    /// The entry's source text, for what a language reads from it (Java's package).
    pub entry_source: &'a str,
    /// Every file of the program, the entry first.
    pub files: &'a [String],
}

impl Layout<'_> {
    /// The files whose names end in one of `extensions`, the entry first when it is one of them.
    pub fn with_extension(&self, extensions: &[&str]) -> Vec<String> {
        self.files
            .iter()
            .filter(|file| extensions.iter().any(|extension| file.ends_with(extension)))
            .cloned()
            .collect()
    }

    /// The files of `extensions` in the entry's own directory (a Go package).
    pub fn beside_entry(&self, extensions: &[&str]) -> Vec<String> {
        let directory = |path: &str| path.rfind('/').map_or("", |at| &path[..at]).to_owned();
        let entry_directory = directory(self.entry);
        self.with_extension(extensions)
            .into_iter()
            .filter(|file| directory(file) == entry_directory)
            .collect()
    }
}

/// `check` run on each of `files`, stopping at the first that fails: the one file itself when there is one, else
/// a loop of `sh` over the files as its positional arguments, never part of its script. `check` is scrc's own.
fn each_file(check: &str, files: &[String]) -> Vec<String> {
    if let [file] = files {
        let mut command: Vec<String> = check.split(' ').map(str::to_owned).collect();
        command.push(file.clone());
        return command;
    }
    let mut command = strings(&["sh", "-c", &format!("for f do {check} \"$f\" || exit; done"), "sh"]);
    command.extend(files.iter().cloned());
    command
}

pub trait LanguageModule: Send + Sync {
    /// The build command, run in the build directory.
    fn build_command(&self, layout: &Layout<'_>) -> Vec<String>;

    fn build_env(&self) -> Vec<String> {
        vec!["HOME=/tmp".into(), "TMPDIR=/tmp".into()]
    }

    /// The command that runs the built program from [`PROGRAM_DIR`].
    fn run_command(&self, layout: &Layout<'_>, memory: MemoryLimit) -> Vec<String>;

    fn run_env(&self, cpus: f64) -> Vec<String> {
        let _ = cpus;
        vec!["HOME=/tmp".into(), "TMPDIR=/tmp".into()]
    }

    /// The heap the language's runtime is given under `memory` and enforces itself (the JVM's, V8's, PHP's, Mono's),
    /// with how it reports reaching it; `None` for a language whose program runs out of memory only where the kernel
    /// says so (an OOM kill). See [`OwnHeap`].
    fn own_heap(&self, memory: MemoryLimit) -> Option<OwnHeap> {
        let _ = memory;
        None
    }
}

/// A runtime's own heap: a cap below the memory limit that the runtime enforces in the program's process, and how
/// it says it reached it.
///
/// Verdicts come from facts a program cannot forge, and the kernel's are those: an OOM kill, the cgroup's counters,
/// the supervisor's kill. A runtime that enforces its own cap reports reaching it only in the program's own process
/// (its exit code, its stderr, a file, a signal, a child it starts), and every one of those channels is open to the
/// program's own code as well, so no report of it alone can be trusted. What the program cannot fake is the memory
/// it used: its report counts as ML only when the test's memory peak reached a share of the cap (three quarters,
/// [`OwnHeap::new`]; a third for PHP and Mono, [`OwnHeap::holding_a_third`]). A program that prints the report without the memory
/// to show for it is RE.
#[derive(Debug, Clone, Copy)]
pub struct OwnHeap {
    /// The cap in bytes, as the run command gives it to the runtime.
    pub cap: u64,
    /// The memory peak in bytes the report needs to count: the share of the cap the runtime surely holds then.
    pub shown: u64,
    /// Whether stderr carries the runtime's report of reaching its cap.
    pub reports: fn(&[u8]) -> bool,
}

impl OwnHeap {
    /// A runtime that reports its heap full when it is: its process then holds at least three quarters of the cap.
    pub fn new(cap: u64, reports: fn(&[u8]) -> bool) -> Self {
        Self {
            cap,
            shown: cap / 4 * 3,
            reports,
        }
    }

    /// A runtime that reports its cap reached holding only about half of it, owed a third for a margin: PHP counts
    /// each allocation of a MiB or more as the 2 MiB chunks it takes, touched or not, and Mono's SGen gives up on an
    /// array of 8 MiB with two such arrays, 16 MiB, in a 32 MiB heap. (Measured under gVisor, whose count of a
    /// process's own memory leaves out the page cache that made up the rest under runc, and is sampled.) A program
    /// that forges the report holds far less: a few MiB against a third of a cap that is the limit less 16 or 32 MiB.
    pub fn holding_a_third(cap: u64, reports: fn(&[u8]) -> bool) -> Self {
        Self {
            shown: cap / 3,
            ..Self::new(cap, reports)
        }
    }

    /// Whether a run that failed with `stderr` and peaked at `peak` bytes ran out of this heap.
    pub fn exhausted(&self, stderr: &[u8], peak: Option<u64>) -> bool {
        (self.reports)(stderr) && peak.is_some_and(|peak| peak >= self.shown)
    }
}

pub fn module(language: Language) -> &'static dyn LanguageModule {
    match language {
        Language::Python => &python::Python,
        Language::Go => &go::Go,
        Language::C => &c::C,
        Language::Cpp => &cpp::Cpp,
        Language::Java => &java::Java,
        Language::JavaScript => &javascript::JavaScript,
        Language::Ruby => &ruby::Ruby,
        Language::Php => &php::Php,
        Language::Rust => &rust::Rust,
        Language::TypeScript => &typescript::TypeScript,
        Language::Kotlin => &kotlin::Kotlin,
        Language::CSharp => &csharp::CSharp,
    }
}

const MIB: u64 = 1024 * 1024;

/// A managed runtime's own heap cap under a memory limit of `bytes`: the limit less `reserve` (the runtime's code,
/// stacks and buffers) from twice `reserve` up, and half the limit below that, so that a program that keeps too much
/// alive meets the language's own out-of-memory error before the kernel's OOM killer.
fn heap_under(bytes: u64, reserve: u64) -> u64 {
    if bytes >= 2 * reserve {
        bytes - reserve
    } else {
        bytes / 2
    }
}

/// A static, optimised GCC build of `sources` into `prog`, diagnostics without colour and capped.
fn gcc(compiler: &str, standard: &str, sources: &[String], libraries: &[&str]) -> Vec<String> {
    let mut command = strings(&[
        compiler,
        "-O2",
        standard,
        "-static",
        "-pipe",
        "-fdiagnostics-color=never",
        "-fmax-errors=20",
        "-o",
        "prog",
    ]);
    command.extend(sources.iter().cloned());
    command.extend(strings(libraries));
    command
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle.as_bytes())
}

fn strings(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|part| (*part).to_owned()).collect()
}

/// A layout of `files`, the first the entry, for the languages' tests.
#[cfg(test)]
pub(super) fn layout(files: &[String]) -> Layout<'_> {
    Layout {
        entry: &files[0],
        entry_source: "",
        files,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_runs_on_each_file_without_splicing_a_name_into_a_script() {
        assert_eq!(each_file("ruby -c", &["main.rb".into()]), ["ruby", "-c", "main.rb"]);
        let files = vec!["main.rb".to_owned(), "$(reboot).rb".to_owned()];
        let command = each_file("ruby -c", &files);
        assert_eq!(&command[..2], ["sh", "-c"]);
        assert!(!command[2].contains("reboot"), "{command:?}");
        assert_eq!(&command[4..], files);
    }

    #[test]
    fn a_layout_picks_files_by_extension_and_directory() {
        let files = vec![
            "main.go".to_owned(),
            "util.go".to_owned(),
            "sub/x.go".to_owned(),
            "data.txt".to_owned(),
        ];
        let layout = Layout {
            entry: "main.go",
            entry_source: "",
            files: &files,
        };
        assert_eq!(layout.with_extension(&[".go"]), ["main.go", "util.go", "sub/x.go"]);
        assert_eq!(layout.beside_entry(&[".go"]), ["main.go", "util.go"]);
    }
}
