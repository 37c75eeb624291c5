//! Embeds the script library (`scripts/<language>/<outcome>/`) in the crate, so that the simulator and
//! `scrc-demo` carry it wherever they go.

use std::fmt::Write;
use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut entries = Vec::new();
    let mut languages: Vec<_> = std::fs::read_dir(&root)
        .expect("simulator/scripts exists")
        .flatten()
        .collect();
    languages.sort_by_key(|e| e.file_name());
    for language in languages {
        let mut outcomes: Vec<_> = std::fs::read_dir(language.path())
            .expect("readable")
            .flatten()
            .collect();
        outcomes.sort_by_key(|e| e.file_name());
        for outcome in outcomes {
            println!("cargo:rerun-if-changed={}", outcome.path().display());
            let mut files: Vec<_> = std::fs::read_dir(outcome.path()).expect("readable").flatten().collect();
            files.sort_by_key(|e| e.file_name());
            let source = files
                .iter()
                .find(|f| {
                    f.file_name()
                        .to_string_lossy()
                        .to_ascii_lowercase()
                        .starts_with("main.")
                })
                .unwrap_or_else(|| panic!("{} has no main.* program", outcome.path().display()));
            entries.push((
                language.file_name().to_string_lossy().into_owned(),
                outcome.file_name().to_string_lossy().into_owned(),
                source.file_name().to_string_lossy().into_owned(),
                source.path(),
                outcome.path().join("scenario.json"),
            ));
        }
    }
    let mut code = String::from("pub static EMBEDDED: &[(&str, &str, &str, &str, &str)] = &[\n");
    for (language, outcome, file, source, scenario) in entries {
        writeln!(
            code,
            "    ({language:?}, {outcome:?}, {file:?}, include_str!({:?}), include_str!({:?})),",
            source.display().to_string(),
            scenario.display().to_string()
        )
        .expect("writing to a String");
    }
    code.push_str("];\n");
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("library.rs");
    std::fs::write(out, code).expect("write the embedded library");
}
