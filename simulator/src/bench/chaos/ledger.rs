//! Every record of the results topic, not just the first per id: the chaos run's evidence. A runner killed after
//! publishing but before committing, or a partition moved while its script ran, legitimately publishes a script's
//! report twice; what must never happen is two different verdicts for one id, or an id with none.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

/// The verdicts published for each id sent, in the order they arrived.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Sent id -> every status published for it (one per record).
    verdicts: BTreeMap<String, Vec<String>>,
    /// When the first result of each sent id arrived.
    first_seen: BTreeMap<String, Instant>,
    /// Records for ids this run never sent (another run's leftovers on a shared topic).
    strangers: usize,
}

/// An id published with more than one distinct verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub id: String,
    /// Every status published for it, in arrival order.
    pub verdicts: Vec<String>,
}

impl Ledger {
    /// Expects a result for `id`.
    pub fn sent(&mut self, id: &str) {
        self.verdicts.entry(id.to_owned()).or_default();
    }

    /// Records one result record.
    pub fn record(&mut self, id: &str, status: &str, at: Instant) {
        match self.verdicts.get_mut(id) {
            Some(verdicts) => {
                verdicts.push(status.to_owned());
                self.first_seen.entry(id.to_owned()).or_insert(at);
            }
            None => self.strangers += 1,
        }
    }

    /// How many sent ids have at least one result.
    pub fn answered(&self) -> usize {
        self.first_seen.len()
    }

    /// Whether `id` has at least one result.
    pub fn is_answered(&self, id: &str) -> bool {
        self.first_seen.contains_key(id)
    }

    /// When the first result of `id` arrived.
    pub fn first_seen(&self, id: &str) -> Option<Instant> {
        self.first_seen.get(id).copied()
    }

    /// Whether every sent id has a result.
    pub fn complete(&self) -> bool {
        self.first_seen.len() == self.verdicts.len()
    }

    /// Sent ids with no result at all.
    pub fn lost(&self) -> Vec<String> {
        self.verdicts
            .iter()
            .filter(|(_, verdicts)| verdicts.is_empty())
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Records beyond the first for an id (same verdict or not): re-publications.
    pub fn duplicates(&self) -> usize {
        self.verdicts.values().map(|v| v.len().saturating_sub(1)).sum()
    }

    /// Ids published with two or more different verdicts.
    pub fn conflicts(&self) -> Vec<Conflict> {
        self.verdicts
            .iter()
            .filter(|(_, verdicts)| verdicts.iter().collect::<BTreeSet<_>>().len() > 1)
            .map(|(id, verdicts)| Conflict {
                id: id.clone(),
                verdicts: verdicts.clone(),
            })
            .collect()
    }

    /// The first verdict of `id`, when it has one.
    pub fn verdict(&self, id: &str) -> Option<&str> {
        self.verdicts.get(id)?.first().map(String::as_str)
    }

    /// Every record read, including those of ids this run never sent.
    pub fn records(&self) -> usize {
        self.verdicts.values().map(Vec::len).sum::<usize>() + self.strangers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_with_one_verdict_are_duplicates_and_different_verdicts_are_conflicts() {
        let now = Instant::now();
        let mut ledger = Ledger::default();
        for id in ["a", "b", "c", "d"] {
            ledger.sent(id);
        }
        ledger.record("a", "OK", now);
        ledger.record("a", "OK", now);
        ledger.record("b", "TL", now);
        ledger.record("b", "OK", now);
        ledger.record("c", "WA", now);
        ledger.record("elsewhere", "OK", now);

        assert_eq!(ledger.answered(), 3);
        assert!(!ledger.complete());
        assert_eq!(ledger.lost(), vec!["d".to_owned()]);
        assert_eq!(ledger.duplicates(), 2);
        assert_eq!(
            ledger.conflicts(),
            vec![Conflict {
                id: "b".into(),
                verdicts: vec!["TL".into(), "OK".into()]
            }]
        );
        assert_eq!(ledger.verdict("b"), Some("TL"));
        assert_eq!(ledger.records(), 6);
    }

    #[test]
    fn complete_once_every_sent_id_is_answered() {
        let mut ledger = Ledger::default();
        ledger.sent("a");
        assert!(!ledger.complete());
        ledger.record("a", "OK", Instant::now());
        assert!(ledger.complete());
        assert!(ledger.lost().is_empty());
        assert!(ledger.conflicts().is_empty());
    }
}
