//! Validation of what came back, stricter than SCRC's (which only counted results per type): every result's
//! status must equal its scenario's expected outcome, every id must come back, and no id may come back with two
//! different verdicts (a duplicate from redelivery is fine if it agrees).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write;

/// What one sent script should get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    pub language: String,
    pub outcome: String,
    /// The status it must get; for a problem, with the score after it (`WA 21/101`, see [`crate::library::verdict`]).
    pub status: String,
    /// Whether the score is part of the verdict: a problem's is.
    pub scored: bool,
}

#[derive(Debug, Default)]
pub struct Validator {
    expected: HashMap<String, Expectation>,
    observed: HashMap<String, BTreeSet<String>>,
}

/// The verdict on a whole run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validation {
    /// Per (language, outcome): the expected status and how many results came back with each status.
    pub cells: BTreeMap<(String, String), Cell>,
    /// Ids sent that never came back.
    pub missing: Vec<String>,
    /// Ids that came back with more than one verdict.
    pub conflicting: Vec<(String, Vec<String>)>,
    /// Ids whose verdict differs from the expected one: (id, expected, got).
    pub mismatched: Vec<(String, String, String)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cell {
    pub expected: String,
    pub sent: usize,
    pub got: BTreeMap<String, usize>,
}

impl Validator {
    pub fn expect(&mut self, id: impl Into<String>, expectation: Expectation) {
        self.expected.insert(id.into(), expectation);
    }

    /// Records a result, with its score where the script is a problem. Returns false for an id this run never sent
    /// (old results on the topic).
    pub fn observe(&mut self, id: &str, status: &str, score: Option<[f64; 2]>) -> bool {
        let Some(expectation) = self.expected.get(id) else {
            return false;
        };
        let verdict = if expectation.scored {
            // A problem's result without a score is wrong: it shows as the bare status, which differs.
            crate::library::verdict(status, score)
        } else {
            status.to_owned()
        };
        self.observed.entry(id.to_owned()).or_default().insert(verdict);
        true
    }

    pub fn sent(&self) -> usize {
        self.expected.len()
    }

    pub fn returned(&self) -> usize {
        self.observed.len()
    }

    /// Every sent id has come back at least once.
    pub fn is_complete(&self) -> bool {
        self.expected.keys().all(|id| self.observed.contains_key(id))
    }

    pub fn validation(&self) -> Validation {
        let mut validation = Validation {
            cells: BTreeMap::new(),
            missing: Vec::new(),
            conflicting: Vec::new(),
            mismatched: Vec::new(),
        };
        let mut ids: Vec<&String> = self.expected.keys().collect();
        ids.sort();
        for id in ids {
            let expectation = &self.expected[id];
            let cell = validation
                .cells
                .entry((expectation.language.clone(), expectation.outcome.clone()))
                .or_insert_with(|| Cell {
                    expected: expectation.status.clone(),
                    ..Cell::default()
                });
            cell.sent += 1;
            match self.observed.get(id) {
                None => validation.missing.push(id.clone()),
                Some(statuses) => {
                    if statuses.len() > 1 {
                        validation
                            .conflicting
                            .push((id.clone(), statuses.iter().cloned().collect()));
                    }
                    for status in statuses {
                        *cell.got.entry(status.clone()).or_default() += 1;
                        if *status != expectation.status {
                            validation
                                .mismatched
                                .push((id.clone(), expectation.status.clone(), status.clone()));
                        }
                    }
                }
            }
        }
        validation
    }
}

impl Validation {
    pub fn passed(&self) -> bool {
        self.missing.is_empty() && self.conflicting.is_empty() && self.mismatched.is_empty()
    }

    /// A table of language by outcome: each cell shows what came back against what was expected; then, for the
    /// problems, a table of their scores.
    pub fn table(&self) -> String {
        let is_outcome = |outcome: &String| outcome_rank(outcome) != usize::MAX;
        let languages: BTreeSet<&String> = self
            .cells
            .keys()
            .filter(|(_, o)| is_outcome(o))
            .map(|(l, _)| l)
            .collect();
        let mut outcomes: Vec<&String> = self
            .cells
            .keys()
            .map(|(_, o)| o)
            .filter(|o| is_outcome(o))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        outcomes.sort_by_key(|outcome| outcome_rank(outcome));
        let mut out = String::new();
        let _ = write!(out, "{:<10}", "language");
        for outcome in &outcomes {
            let _ = write!(out, " | {:<13}", format!("{outcome} (want {})", outcome.to_uppercase()));
        }
        out.push('\n');
        let _ = writeln!(out, "{}", "-".repeat(10 + outcomes.len() * 16));
        for language in &languages {
            let _ = write!(out, "{language:<10}");
            for outcome in &outcomes {
                let text = match self.cells.get(&((*language).clone(), (*outcome).clone())) {
                    None => "-".to_owned(),
                    Some(cell) => {
                        let matched = cell.got.get(&cell.expected).copied().unwrap_or(0);
                        let others: Vec<String> = cell
                            .got
                            .iter()
                            .filter(|(status, _)| **status != cell.expected)
                            .map(|(status, count)| format!("{status}x{count}"))
                            .collect();
                        let mark = if matched == cell.sent && others.is_empty() {
                            "ok"
                        } else {
                            "FAIL"
                        };
                        if others.is_empty() {
                            format!("{} {matched}/{} {mark}", cell.expected, cell.sent)
                        } else {
                            format!("{} {matched}/{} {} {mark}", cell.expected, cell.sent, others.join(","))
                        }
                    }
                };
                let _ = write!(out, " | {text:<13}");
            }
            out.push('\n');
        }
        let problems: Vec<(&(String, String), &Cell)> = self
            .cells
            .iter()
            .filter(|((_, outcome), _)| !is_outcome(outcome))
            .collect();
        if !problems.is_empty() {
            let _ = writeln!(
                out,
                "\n{:<16} | {:<8} | {:<12} | got",
                "problem", "language", "want (score)"
            );
            let _ = writeln!(out, "{}", "-".repeat(60));
            for ((language, problem), cell) in problems {
                let got: Vec<String> = cell
                    .got
                    .iter()
                    .map(|(verdict, count)| format!("{verdict} x{count}"))
                    .collect();
                let matched = cell.got.get(&cell.expected).copied().unwrap_or(0);
                let mark = if matched == cell.sent && cell.got.len() == 1 {
                    "ok"
                } else {
                    "FAIL"
                };
                let _ = writeln!(
                    out,
                    "{problem:<16} | {language:<8} | {:<12} | {} {mark}",
                    cell.expected,
                    got.join(", ")
                );
            }
        }
        let _ = writeln!(
            out,
            "\nsent {}, mismatched {}, missing {}, conflicting {}: {}",
            self.cells.values().map(|c| c.sent).sum::<usize>(),
            self.mismatched.len(),
            self.missing.len(),
            self.conflicting.len(),
            if self.passed() { "PASSED" } else { "FAILED" }
        );
        for (id, expected, got) in self.mismatched.iter().take(20) {
            let _ = writeln!(out, "  mismatch: {id}: expected {expected}, got {got}");
        }
        for id in self.missing.iter().take(20) {
            let _ = writeln!(out, "  missing: {id}");
        }
        for (id, statuses) in self.conflicting.iter().take(20) {
            let _ = writeln!(out, "  conflicting verdicts: {id}: {}", statuses.join(", "));
        }
        out
    }
}

/// SCRC's order of outcomes: the successful one first, then by how far the program got.
pub fn outcome_rank(outcome: &str) -> usize {
    ["ok", "wa", "tl", "ml", "bf", "re"]
        .iter()
        .position(|known| known.eq_ignore_ascii_case(outcome))
        .unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expectation(language: &str, outcome: &str) -> Expectation {
        Expectation {
            language: language.into(),
            outcome: outcome.into(),
            status: outcome.to_uppercase(),
            scored: false,
        }
    }

    fn validator() -> Validator {
        let mut validator = Validator::default();
        validator.expect("a", expectation("c", "ok"));
        validator.expect("b", expectation("c", "tl"));
        validator.expect("c", expectation("python", "ok"));
        validator
    }

    #[test]
    fn all_expected_verdicts_pass() {
        let mut validator = validator();
        assert!(validator.observe("a", "OK", None));
        assert!(validator.observe("b", "TL", None));
        assert!(!validator.is_complete());
        assert!(validator.observe("c", "OK", None));
        assert!(validator.is_complete());
        let validation = validator.validation();
        assert!(validation.passed(), "{}", validation.table());
        assert!(validation.table().contains("PASSED"));
    }

    #[test]
    fn a_problem_must_earn_its_score_as_well_as_its_status() {
        let mut validator = Validator::default();
        let problem = |status: &str| Expectation {
            language: "c".into(),
            outcome: "subtasks".into(),
            status: status.into(),
            scored: true,
        };
        validator.expect("right", problem("WA 21/101"));
        validator.expect("wrong", problem("WA 21/101"));
        validator.expect("unscored", problem("WA 21/101"));
        validator.observe("right", "WA", Some([21.0, 101.0]));
        validator.observe("wrong", "WA", Some([20.0, 101.0]));
        validator.observe("unscored", "WA", None);
        let validation = validator.validation();
        assert_eq!(
            validation.mismatched,
            [
                ("unscored".into(), "WA 21/101".into(), "WA".into()),
                ("wrong".into(), "WA 21/101".into(), "WA 20/101".into())
            ]
        );
    }

    #[test]
    fn a_wrong_status_fails() {
        let mut validator = validator();
        validator.observe("a", "OK", None);
        validator.observe("b", "WA", None);
        validator.observe("c", "OK", None);
        let validation = validator.validation();
        assert!(!validation.passed());
        assert_eq!(validation.mismatched, [("b".into(), "TL".into(), "WA".into())]);
        assert!(validation.table().contains("WAx1 FAIL"));
    }

    #[test]
    fn a_missing_id_fails() {
        let mut validator = validator();
        validator.observe("a", "OK", None);
        validator.observe("c", "OK", None);
        let validation = validator.validation();
        assert!(!validation.passed());
        assert_eq!(validation.missing, ["b"]);
    }

    #[test]
    fn a_duplicate_with_a_different_verdict_fails_but_an_agreeing_duplicate_passes() {
        let mut validator = validator();
        validator.observe("a", "OK", None);
        validator.observe("a", "OK", None);
        validator.observe("b", "TL", None);
        validator.observe("c", "OK", None);
        assert!(
            validator.validation().passed(),
            "a redelivered result that agrees is fine"
        );
        validator.observe("c", "IE", None);
        let validation = validator.validation();
        assert!(!validation.passed());
        assert_eq!(validation.conflicting, [("c".into(), vec!["IE".into(), "OK".into()])]);
    }

    #[test]
    fn results_of_other_runs_are_ignored() {
        let mut validator = validator();
        assert!(!validator.observe("old-run-id", "OK", None));
        assert_eq!(validator.returned(), 0);
    }
}
