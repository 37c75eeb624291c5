//! The shape of the house, checked on the source itself: the folders are the architecture (STYLE.md), so a change
//! that makes a lower layer import a higher one, makes two sibling modules import each other, or lets Kafka's words
//! into the ports or the app fails here rather than in a review.
//!
//! It reads `src/` as text: every `crate::`, `super::` and `self::` path outside test modules is an import.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module of the crate, as `a::b::c` (the crate root is the empty string), with the file it lives in.
struct Module {
    path: String,
    text: String,
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// Every module of the library under `src/` (the binaries are left out: they import everything by design), with
/// its text up to its first test module.
fn modules() -> Vec<Module> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files
        .into_iter()
        .filter_map(|file| {
            let relative = file.strip_prefix(&src).ok()?.to_string_lossy().into_owned();
            if relative.starts_with("bin/") || relative == "main.rs" {
                return None;
            }
            let path = relative
                .trim_end_matches(".rs")
                .trim_end_matches("/mod")
                .trim_end_matches("lib")
                .replace('/', "::");
            let text = std::fs::read_to_string(&file).ok()?;
            let text = match text.find("#[cfg(test)]\nmod tests") {
                Some(at) => text[..at].to_owned(),
                None => text,
            };
            Some(Module { path, text })
        })
        .collect()
}

/// `text` without its comments (from `//` to the end of each line): a doc link names a module without importing
/// it.
fn code(text: &str) -> String {
    text.lines()
        .map(|line| line.find("//").map_or(line, |at| &line[..at]))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The module paths named by `crate::`, `super::` and `self::` paths, and by `use` of a child module, in `module`'s
/// code, resolved to the longest prefix that is a module of the crate. `use` groups (`crate::a::{b, c::d}`) name
/// each of their members.
fn imports(module: &Module, known: &BTreeSet<String>) -> BTreeSet<String> {
    let parent = |path: &str| path.rsplit_once("::").map_or(String::new(), |(p, _)| p.to_owned());
    let mut found = BTreeSet::new();
    let text = &code(&module.text);
    for line in text.lines() {
        let Some(used) = line
            .trim()
            .strip_prefix("use ")
            .or_else(|| line.trim().strip_prefix("pub use "))
        else {
            continue;
        };
        let first: String = used
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let child = if module.path.is_empty() {
            first
        } else {
            format!("{}::{first}", module.path)
        };
        if known.contains(&child) {
            found.insert(child);
        }
    }
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < text.len() {
        let rest = &text[at..];
        let (base, skip) = if rest.starts_with("crate::") {
            (String::new(), "crate::".len())
        } else if rest.starts_with("super::") {
            let mut base = parent(&module.path);
            let mut skip = "super::".len();
            while text[at + skip..].starts_with("super::") {
                base = parent(&base);
                skip += "super::".len();
            }
            (base, skip)
        } else if rest.starts_with("self::") {
            (module.path.clone(), "self::".len())
        } else {
            at += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        };
        // A path only starts after a character that cannot be part of an identifier.
        if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_' || bytes[at - 1] == b':') {
            at += skip;
            continue;
        }
        let tail: String = text[at + skip..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '{' | '}' | ',' | ' ' | '\n'))
            .collect();
        for member in expand(&tail) {
            let mut target = base.clone();
            let mut best = None;
            for segment in member.split("::").filter(|s| !s.is_empty()) {
                target = if target.is_empty() {
                    segment.to_owned()
                } else {
                    format!("{target}::{segment}")
                };
                if known.contains(&target) {
                    best = Some(target.clone());
                }
            }
            if let Some(best) = best {
                found.insert(best);
            } else if known.contains(&base) {
                found.insert(base.clone());
            }
        }
        at += skip;
    }
    found.remove(&module.path);
    found
}

/// The paths a `use` tail names: `a::{b, c::d}` gives `a::b` and `a::c::d`; a plain path gives itself.
fn expand(tail: &str) -> Vec<String> {
    let tail = tail.trim();
    let Some(open) = tail.find('{') else {
        let path: String = tail
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':'))
            .collect();
        return vec![path.trim_end_matches(':').to_owned()];
    };
    let head = tail[..open].trim_end_matches(':').to_owned();
    let mut depth = 0;
    let mut end = tail.len();
    for (index, c) in tail[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    end = open + index;
                    break;
                }
            }
            _ => {}
        }
    }
    let inner = &tail[open + 1..end.max(open + 1)];
    let mut members = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (index, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                members.push(&inner[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    members.push(&inner[start..]);
    members
        .into_iter()
        .filter(|m| !m.trim().is_empty())
        .flat_map(expand)
        .map(|member| {
            if member == "self" || member.is_empty() {
                head.clone()
            } else {
                format!("{head}::{member}")
            }
        })
        .collect()
}

/// The layer a module belongs to, lowest first, and the top-level modules it may import.
fn layer(path: &str) -> (&'static str, &'static [&'static str]) {
    match path.split("::").next().unwrap_or_default() {
        "domain" => ("domain", &["domain"]),
        "ports" => ("ports", &["domain", "ports"]),
        "sync" => ("sync", &["sync"]),
        "app" => ("app", &["domain", "ports", "app", "sync"]),
        "adapters" => ("adapters", &["domain", "ports", "adapters", "sync"]),
        "config" => ("config", &["domain", "ports", "app", "adapters", "config", "sync"]),
        "testing" => ("testing", &["domain", "ports", "adapters", "testing", "sync"]),
        _ => (
            "top",
            &[
                "domain",
                "ports",
                "app",
                "adapters",
                "config",
                "sync",
                "health",
                "shutdown",
                "telemetry",
                "commands",
                "cli",
            ],
        ),
    }
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules();
    let known: BTreeSet<String> = modules.iter().map(|m| m.path.clone()).collect();
    modules
        .iter()
        .map(|module| (module.path.clone(), imports(module, &known)))
        .collect()
}

#[test]
fn no_layer_imports_one_above_it() {
    let mut wrong = Vec::new();
    for (module, imports) in graph() {
        let (name, allowed) = layer(&module);
        for import in imports {
            let top = import.split("::").next().unwrap_or_default();
            if !top.is_empty() && !allowed.contains(&top) {
                wrong.push(format!("{module} ({name}) imports {import}"));
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layers:\n{}", wrong.join("\n"));
}

#[test]
fn no_two_sibling_modules_import_each_other() {
    let graph = graph();
    let mut circles = Vec::new();
    for (module, imports) in &graph {
        for import in imports {
            let siblings = module.rsplit_once("::").map(|(p, _)| p) == import.rsplit_once("::").map(|(p, _)| p);
            if module < import && siblings && graph.get(import).is_some_and(|back| back.contains(module)) {
                circles.push(format!("{module} <-> {import}"));
            }
        }
    }
    assert!(
        circles.is_empty(),
        "modules that import each other:\n{}",
        circles.join("\n")
    );
}

#[test]
fn the_ports_and_the_app_speak_no_kafka() {
    const WORDS: [&str; 5] = ["partition", "offset", "generation", "header", "key"];
    let mut spoken = Vec::new();
    for module in modules()
        .into_iter()
        .filter(|m| m.path.starts_with("ports") || m.path.starts_with("app"))
    {
        for (number, line) in module.text.lines().enumerate() {
            let lower = line.to_ascii_lowercase();
            let words = lower.split(|c: char| !c.is_ascii_alphanumeric());
            for word in words {
                if WORDS.iter().any(|kafka| word == *kafka || word == format!("{kafka}s")) {
                    spoken.push(format!("{}:{}: {}", module.path, number + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        spoken.is_empty(),
        "Kafka's words in the ports or the app:\n{}",
        spoken.join("\n")
    );
}

#[test]
fn the_checks_see_the_imports_they_are_about() {
    // The checks are only as good as the reading of imports: the executor's rooms, and the docker adapter's.
    let graph = graph();
    let of = |module: &str| graph.get(module).cloned().unwrap_or_default();
    assert!(
        of("app::executor").contains("app::executor::intake"),
        "{:?}",
        of("app::executor")
    );
    assert!(of("app::executor::intake").contains("app::fairness"));
    assert!(of("adapters::docker::pool").contains("adapters::docker::shared_dirs"));
    assert!(of("adapters::docker::shared_dirs").contains("adapters::docker::supervisor"));
    assert!(of("adapters::http").contains("ports") && !of("adapters::http").contains("health"));
    assert!(!of("adapters::docker::shared_dirs").contains("adapters::docker::pool"));
}
