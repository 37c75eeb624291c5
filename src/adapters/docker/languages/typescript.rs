//! TypeScript: type-checked and compiled once with tsc into `main.js`, which runs on Node.js exactly as a
//! JavaScript program does (see javascript.rs, also for the blocking stdio the build leaves). A type error is BF:
//! nothing is emitted when there is one.
//!
//! Programs read stdin with Node's API (`require('fs')`, `process.stdin`), so tsc is given Node's type
//! definitions: from Debian's nodejs (`/usr/share/nodejs/@types`), or from a global npm install
//! (`/usr/local/lib/node_modules/@types`) in other images; tsc skips a root that does not exist.

use super::javascript::{leaving_blocking_stdio, node_heap, node_out_of_memory, node_under};
use super::{LanguageModule, OwnHeap, PROGRAM_DIR, strings};
use crate::domain::MemoryLimit;

pub struct TypeScript;

impl LanguageModule for TypeScript {
    fn source_file(&self, _source: &str) -> String {
        "main.ts".into()
    }

    fn build_command(&self, source_file: &str) -> Vec<String> {
        let mut command = strings(&[
            "tsc",
            "--noEmitOnError",
            "--pretty",
            "false",
            "--skipLibCheck",
            "--target",
            "es2020",
            "--module",
            "commonjs",
            "--typeRoots",
            "/usr/share/nodejs/@types,/usr/local/lib/node_modules/@types",
            "--types",
            "node",
            "--outDir",
            ".",
        ]);
        command.push(source_file.to_owned());
        leaving_blocking_stdio(command)
    }

    fn run_command(&self, source_file: &str, memory: MemoryLimit) -> Vec<String> {
        let stem = source_file.strip_suffix(".ts").unwrap_or(source_file);
        node_under(memory, &format!("{PROGRAM_DIR}/{stem}.js"))
    }

    fn own_heap(&self, memory: MemoryLimit) -> Option<OwnHeap> {
        Some(OwnHeap::new(node_heap(memory), node_out_of_memory))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_script_runs_on_node() {
        let command = TypeScript.run_command("main.ts", MemoryLimit::new(256 * 1024 * 1024).unwrap());
        assert_eq!(command.last().map(String::as_str), Some("/box/main.js"));
        assert!(command.contains(&"--max-old-space-size=192".to_owned()), "{command:?}");
        let build = TypeScript.build_command("main.ts");
        assert!(build.contains(&"--noEmitOnError".to_owned()), "{build:?}");
    }
}
