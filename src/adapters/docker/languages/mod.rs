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

pub trait LanguageModule: Send + Sync {
    /// The file the source is saved as.
    fn source_file(&self, source: &str) -> String;

    /// The build command, run in the build directory.
    fn build_command(&self, source_file: &str) -> Vec<String>;

    fn build_env(&self) -> Vec<String> {
        vec!["HOME=/tmp".into(), "TMPDIR=/tmp".into()]
    }

    /// The command that runs the built program from [`PROGRAM_DIR`].
    fn run_command(&self, source_file: &str, memory: MemoryLimit) -> Vec<String>;

    fn run_env(&self, cpus: f64) -> Vec<String> {
        let _ = cpus;
        vec!["HOME=/tmp".into(), "TMPDIR=/tmp".into()]
    }

    /// Whether stderr shows the language's own out-of-memory failure (checked only after a failed run).
    fn reports_out_of_memory(&self, stderr: &[u8]) -> bool {
        let _ = stderr;
        false
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

/// A static, optimised GCC build of `source_file` into `prog`, diagnostics without colour and capped.
fn gcc(compiler: &str, standard: &str, source_file: &str, libraries: &[&str]) -> Vec<String> {
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
        source_file,
    ]);
    command.extend(strings(libraries));
    command
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle.as_bytes())
}

fn strings(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|part| (*part).to_owned()).collect()
}
