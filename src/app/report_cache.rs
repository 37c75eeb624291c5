//! The reports this instance produced recently, by script id and content, so that a script delivered again (after
//! a rebalance or a restart of the partition's consumer) gets the report it already had instead of a second
//! judging. A second judging costs a sandbox run and, for a program near its time limit or a nondeterministic one,
//! may give a different verdict under the same id, which consumers deduplicating by id cannot resolve.
//!
//! The cache is bounded by bytes ([`REPORT_CACHE_MAX_BYTES`]), the oldest report forgotten first. IE reports are
//! not kept: they say nothing about the program, and a redelivery deserves another try.

use std::collections::{HashMap, VecDeque};

use crate::domain::{RunReport, ScriptId, Status};

/// The most memory the cached reports may take. A report holds the captured output of every test, so a few large
/// ones could otherwise hold hundreds of megabytes; 64 MiB keeps thousands of typical reports.
pub const REPORT_CACHE_MAX_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug)]
pub struct ReportCache {
    /// By script id: the content fingerprint the report belongs to, and the report.
    reports: HashMap<ScriptId, (u64, RunReport)>,
    /// Ids from oldest to newest, for eviction.
    order: VecDeque<ScriptId>,
    /// What the cached reports cost, by [`cost`].
    bytes: usize,
    max_bytes: usize,
}

impl Default for ReportCache {
    fn default() -> Self {
        Self::new(REPORT_CACHE_MAX_BYTES)
    }
}

impl ReportCache {
    pub fn new(max_bytes: usize) -> Self {
        Self {
            reports: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            max_bytes,
        }
    }

    /// The report produced for this id and content, if it is still cached.
    pub fn get(&self, id: &ScriptId, fingerprint: u64) -> Option<RunReport> {
        self.reports
            .get(id)
            .filter(|(cached, _)| *cached == fingerprint)
            .map(|(_, report)| report.clone())
    }

    /// Keeps `report` for its id and content, forgetting the oldest reports to stay within the byte bound. A
    /// report larger than the whole bound, and an IE report, is not kept.
    pub fn insert(&mut self, fingerprint: u64, report: &RunReport) {
        let size = cost(report);
        if report.status == Status::InternalError || size > self.max_bytes {
            return;
        }
        if let Some((_, old)) = self.reports.remove(&report.id) {
            self.bytes -= cost(&old);
            self.order.retain(|id| *id != report.id);
        }
        while self.bytes + size > self.max_bytes {
            let Some(oldest) = self.order.pop_front() else { break };
            if let Some((_, old)) = self.reports.remove(&oldest) {
                self.bytes -= cost(&old);
            }
        }
        self.bytes += size;
        self.order.push_back(report.id.clone());
        self.reports.insert(report.id.clone(), (fingerprint, report.clone()));
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// The memory a cached report takes, counted generously: every byte of text it carries, the id twice (map and
/// queue), and a fixed overhead per test and per entry.
fn cost(report: &RunReport) -> usize {
    let tests: usize = report
        .tests
        .iter()
        .map(|t| t.stdout().len() + t.stderr().len() + t.input.len() + t.expected_output.len() + t.error.len() + 160)
        .sum();
    2 * report.id.as_str().len() + report.stdout.len() + report.stderr.len() + report.error.len() + tests + 256
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Language;

    fn report(id: &str, error: &str) -> RunReport {
        RunReport::rejected(ScriptId::new(id).unwrap(), Some(Language::C), error.to_owned())
    }

    #[test]
    fn a_report_is_found_only_for_the_same_id_and_content() {
        let mut cache = ReportCache::default();
        let first = report("a", "x");
        cache.insert(7, &first);
        assert_eq!(cache.get(&first.id, 7), Some(first.clone()));
        assert_eq!(cache.get(&first.id, 8), None, "other content under the same id");
        assert_eq!(cache.get(&ScriptId::new("b").unwrap(), 7), None);
    }

    #[test]
    fn the_cache_is_bounded_by_bytes_and_forgets_the_oldest_first() {
        let big = "e".repeat(1000);
        let mut cache = ReportCache::new(10_000);
        for n in 0..50 {
            cache.insert(n, &report(&format!("r{n}"), &big));
            assert!(cache.bytes() <= 10_000, "{} bytes", cache.bytes());
        }
        assert!(cache.get(&ScriptId::new("r49").unwrap(), 49).is_some());
        assert!(cache.get(&ScriptId::new("r0").unwrap(), 0).is_none());
        cache.insert(99, &report("huge", &"e".repeat(20_000)));
        assert!(
            cache.get(&ScriptId::new("huge").unwrap(), 99).is_none(),
            "larger than the bound: not kept"
        );
    }

    #[test]
    fn an_internal_error_is_not_kept() {
        let mut cache = ReportCache::default();
        let ie = RunReport::internal_error(ScriptId::new("ie").unwrap(), None, "engine down".into(), Vec::new());
        cache.insert(1, &ie);
        assert_eq!(cache.get(&ie.id, 1), None);
        assert_eq!(cache.bytes(), 0);
    }
}
