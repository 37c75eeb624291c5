//! The script library: for every language, a program per outcome (ok, wa, tl, ml, bf, re) with the tests and
//! limits that make it produce that outcome. It lives in `simulator/scripts/<language>/<outcome>/` and is
//! embedded at build time.

use serde::Deserialize;
use serde_json::{Value, json};

include!(concat!(env!("OUT_DIR"), "/library.rs"));

/// One program with a known verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    pub language: String,
    /// The directory name: `ok`, `wa`, `tl`, `ml`, `bf` or `re`.
    pub outcome: String,
    /// The status the runner must return, such as `TL`.
    pub expected: String,
    pub source: String,
    pub limits: Limits,
    pub tests: Vec<TestSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Limits {
    pub time_limit_ms: u64,
    pub memory_limit_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TestSpec {
    pub input: String,
    pub expected_output: String,
}

#[derive(Deserialize)]
struct ScenarioFile {
    expected: String,
    limits: Limits,
    tests: Vec<TestSpec>,
}

#[derive(Debug, thiserror::Error)]
#[error("scenario {language}/{outcome} is invalid: {reason}")]
pub struct LibraryError {
    pub language: String,
    pub outcome: String,
    pub reason: String,
}

/// SCRC's own languages. The simulator, the load and chaos benchmarks and `scrc-demo` send only these by default,
/// so their mixes, and the figures measured with them, stay those of SCRC's library.
pub const SCRC_LANGUAGES: [&str; 5] = ["c", "cpp", "go", "java", "python"];

/// The scenarios of SCRC's languages ([`SCRC_LANGUAGES`]), in language then outcome order.
///
/// # Errors
/// [`LibraryError`] when a `scenario.json` does not parse.
pub fn library() -> Result<Vec<Scenario>, LibraryError> {
    let mut scenarios = full_library()?;
    scenarios.retain(|scenario| SCRC_LANGUAGES.contains(&scenario.language.as_str()));
    Ok(scenarios)
}

/// Every scenario of the embedded library, all twelve languages, in language then outcome order.
///
/// # Errors
/// [`LibraryError`] when a `scenario.json` does not parse.
pub fn full_library() -> Result<Vec<Scenario>, LibraryError> {
    EMBEDDED
        .iter()
        .map(|(language, outcome, _file, source, scenario)| {
            let file: ScenarioFile = serde_json::from_str(scenario).map_err(|e| LibraryError {
                language: (*language).into(),
                outcome: (*outcome).into(),
                reason: e.to_string(),
            })?;
            Ok(Scenario {
                language: (*language).into(),
                outcome: (*outcome).into(),
                expected: file.expected,
                source: (*source).into(),
                limits: file.limits,
                tests: file.tests,
            })
        })
        .collect()
}

impl Scenario {
    /// The script message, exactly as an SCRC producer writes it.
    /// The same scenario with a comment naming `token` at the end of its source: a program no cache has seen, with
    /// the same behaviour.
    pub fn unique(&self, token: &str) -> Scenario {
        let comment = match self.language.as_str() {
            "python" | "ruby" => "#",
            _ => "//",
        };
        let mut unique = self.clone();
        unique.source = format!("{}\n{comment} {token}\n", self.source.trim_end());
        unique
    }

    pub fn message(&self, id: &str) -> Value {
        let tests: Vec<Value> = self
            .tests
            .iter()
            .enumerate()
            .map(|(index, test)| {
                json!({"number": index + 1, "input": test.input, "expected_output": test.expected_output})
            })
            .collect();
        json!({
            "type": "script",
            "id": id,
            "language": self.language,
            "source": self.source,
            "limits": {
                "time_limit_ms": self.limits.time_limit_ms,
                "memory_limit_bytes": self.limits.memory_limit_bytes,
            },
            "tests": tests,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_library_covers_every_language_and_outcome() {
        let library = full_library().unwrap();
        let languages = [
            "c",
            "cpp",
            "csharp",
            "go",
            "java",
            "javascript",
            "kotlin",
            "php",
            "python",
            "ruby",
            "rust",
            "typescript",
        ];
        assert_eq!(library.len(), languages.len() * 6);
        for language in languages {
            for outcome in ["bf", "ml", "ok", "re", "tl", "wa"] {
                let scenario = library
                    .iter()
                    .find(|s| s.language == language && s.outcome == outcome)
                    .unwrap_or_else(|| panic!("{language}/{outcome} missing"));
                assert_eq!(scenario.expected, outcome.to_uppercase());
                assert!(!scenario.tests.is_empty());
            }
        }
    }

    #[test]
    fn the_default_library_is_scrcs() {
        let library = library().unwrap();
        assert_eq!(library.len(), 30);
        assert!(library.iter().all(|s| SCRC_LANGUAGES.contains(&s.language.as_str())));
    }

    #[test]
    fn a_unique_source_differs_only_by_a_trailing_comment() {
        for scenario in full_library().unwrap() {
            let unique = scenario.unique("tok-1");
            assert_ne!(unique.source, scenario.source);
            assert!(
                unique.source.starts_with(scenario.source.trim_end()),
                "{}",
                scenario.language
            );
            assert!(unique.source.trim_end().ends_with("tok-1"));
            assert_eq!(unique.tests, scenario.tests);
        }
    }

    #[test]
    fn messages_follow_scrcs_format() {
        let scenario = &library().unwrap()[0];
        let message = scenario.message("sim-1");
        assert_eq!(message["type"], "script");
        assert_eq!(message["id"], "sim-1");
        assert_eq!(message["tests"][0]["number"], 1);
        assert!(message["limits"]["time_limit_ms"].is_u64());
    }
}
