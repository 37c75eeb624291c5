//! The script library: for every language, a program per outcome (ok, wa, tl, ml, bf, re) with the tests and
//! limits that make it produce that outcome. It lives in `simulator/scripts/<language>/<outcome>/` and is
//! embedded at build time.
//!
//! Beside them are problems as teachers and contests write them ([`problems`]): a checker program that accepts
//! any valid answer, one that gives partial points, a broken one, and subtask groups with a dependency. Each says
//! the score it must earn as well as its status.

use serde::Deserialize;
use serde_json::{Value, json};

include!(concat!(env!("OUT_DIR"), "/library.rs"));

/// One program with a known verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub language: String,
    /// The directory name: `ok`, `wa`, `tl`, `ml`, `bf` or `re`.
    pub outcome: String,
    /// The status the runner must return, such as `TL`.
    pub expected: String,
    pub source: String,
    pub limits: Limits,
    pub tests: Vec<TestSpec>,
    /// A problem's `checker` and `groups`, sent as they are; empty for the six outcomes.
    pub extra: serde_json::Map<String, Value>,
    /// The `score` and `max_score` a problem must earn; `None` for the six outcomes, which SCRC judges.
    pub score: Option<[f64; 2]>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Limits {
    pub time_limit_ms: u64,
    pub memory_limit_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TestSpec {
    pub input: String,
    pub expected_output: String,
    /// The test's `points`, for a scored problem.
    #[serde(default)]
    pub points: Option<f64>,
}

#[derive(Deserialize)]
struct ScenarioFile {
    expected: String,
    limits: Limits,
    tests: Vec<TestSpec>,
    #[serde(default)]
    checker: Option<Value>,
    #[serde(default)]
    groups: Option<Value>,
    #[serde(default)]
    score: Option<[f64; 2]>,
}

/// The outcomes every language has, in SCRC's order; any other directory is a problem.
pub const OUTCOMES: [&str; 6] = ["ok", "wa", "tl", "ml", "bf", "re"];

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
    let mut scenarios = embedded()?;
    scenarios.retain(|scenario| OUTCOMES.contains(&scenario.outcome.as_str()));
    Ok(scenarios)
}

/// The problems: checker programs, partial points and subtask groups, each with the score it must earn.
///
/// # Errors
/// [`LibraryError`] when a `scenario.json` does not parse.
pub fn problems() -> Result<Vec<Scenario>, LibraryError> {
    let mut scenarios = embedded()?;
    scenarios.retain(|scenario| !OUTCOMES.contains(&scenario.outcome.as_str()));
    Ok(scenarios)
}

fn embedded() -> Result<Vec<Scenario>, LibraryError> {
    EMBEDDED
        .iter()
        .map(|(language, outcome, _file, source, scenario)| {
            let file: ScenarioFile = serde_json::from_str(scenario).map_err(|e| LibraryError {
                language: (*language).into(),
                outcome: (*outcome).into(),
                reason: e.to_string(),
            })?;
            let mut extra = serde_json::Map::new();
            extra.extend(file.checker.map(|checker| ("checker".to_owned(), checker)));
            extra.extend(file.groups.map(|groups| ("groups".to_owned(), groups)));
            Ok(Scenario {
                language: (*language).into(),
                outcome: (*outcome).into(),
                expected: file.expected,
                source: (*source).into(),
                limits: file.limits,
                tests: file.tests,
                extra,
                score: file.score,
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
                let mut message =
                    json!({"number": index + 1, "input": test.input, "expected_output": test.expected_output});
                if let Some(points) = test.points {
                    message["points"] = json!(points);
                }
                message
            })
            .collect();
        let mut message = json!({
            "type": "script",
            "id": id,
            "language": self.language,
            "source": self.source,
            "limits": {
                "time_limit_ms": self.limits.time_limit_ms,
                "memory_limit_bytes": self.limits.memory_limit_bytes,
            },
            "tests": tests,
        });
        if let Some(object) = message.as_object_mut() {
            object.extend(self.extra.clone());
        }
        message
    }

    /// What the result must say: the status, and for a problem the score out of the maximum (`WA 21/101`).
    pub fn verdict(&self) -> String {
        verdict(&self.expected, self.score)
    }
}

/// A status, with `score/max_score` after it when there is a score: how the validator compares results.
pub fn verdict(status: &str, score: Option<[f64; 2]>) -> String {
    match score {
        Some([score, max_score]) => format!("{status} {score}/{max_score}"),
        None => status.to_owned(),
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
    fn the_problems_need_a_checker_partial_points_a_broken_checker_and_groups() {
        let problems = problems().unwrap();
        let names: Vec<&str> = problems.iter().map(|p| p.outcome.as_str()).collect();
        assert_eq!(names, ["subtasks", "partial-points", "any-answer", "broken-checker"]);
        for problem in &problems {
            assert!(problem.score.is_some(), "{} says its score", problem.outcome);
            let message = problem.message("p-1");
            assert!(message.get("checker").is_some() || message.get("groups").is_some());
        }
        assert_eq!(problems[0].verdict(), "WA 21/101");
        assert_eq!(problems[3].expected, "IE");
        assert!(problems.iter().all(|p| SCRC_LANGUAGES.contains(&p.language.as_str())));
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
