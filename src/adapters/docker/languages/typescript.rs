//! TypeScript: type-checked and compiled once with tsc into `main.js`, which runs on Node.js exactly as a
//! JavaScript program does (see javascript.rs, also for the blocking stdio the build leaves). A type error is BF:
//! nothing is emitted when there is one.
//!
//! Programs read stdin with Node's API (`require('fs')`, `process.stdin`), so tsc is given Node's type
//! definitions: from Debian's nodejs (`/usr/share/nodejs/@types`), or from a global npm install
//! (`/usr/local/lib/node_modules/@types`) in other images; tsc skips a root that does not exist.

use super::javascript::{leaving_blocking_stdio, node_heap, node_out_of_memory, node_under};
use super::{LanguageModule, Layout, OwnHeap, PROGRAM_DIR, strings};
use crate::domain::MemoryLimit;

pub struct TypeScript;

impl LanguageModule for TypeScript {
    fn build_command(&self, layout: &Layout<'_>) -> Vec<String> {
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
            // Each `.js` beside its `.ts`: without a root, tsc would take the sources' common directory as one, and
            // an entry at `src/main.ts` with its modules would come out as `./main.js`.
            "--rootDir",
            ".",
            "--outDir",
            ".",
        ]);
        command.extend(layout.with_extension(&[".ts"]));
        leaving_blocking_stdio(command)
    }

    fn run_command(&self, layout: &Layout<'_>, memory: MemoryLimit) -> Vec<String> {
        let stem = layout.entry.strip_suffix(".ts").unwrap_or(layout.entry);
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
        let command = TypeScript.run_command(
            &super::super::layout(&["main.ts".to_owned()]),
            MemoryLimit::new(256 * 1024 * 1024).unwrap(),
        );
        assert_eq!(command.last().map(String::as_str), Some("/box/main.js"));
        assert!(command.contains(&"--max-old-space-size=192".to_owned()), "{command:?}");
        let build = TypeScript.build_command(&super::super::layout(&["main.ts".to_owned()]));
        assert!(build.contains(&"--noEmitOnError".to_owned()), "{build:?}");
    }
}
