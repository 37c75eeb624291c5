//! The one memory of recent scripts that makes a script judged at most once per instance: for each recent id, the
//! script's fingerprint ([`Script::fingerprint`]), the report it got, and whether it is being judged right now.
//!
//! - **An id reused for another script** (same id, another fingerprint) gets RJ: consumers deduplicate results by
//!   id, and would silently drop one of the two.
//! - **A script delivered again** (same id, same fingerprint; after the source moved its stream, or a restart of
//!   its reader) gets the report it already had, without a second judging: a second judging costs a sandbox run and,
//!   for a program near its time limit or a nondeterministic one, may give a second verdict under the same id.
//!   IE reports are not kept, so those are judged again.
//! - **A script delivered again while it is being judged** waits for that judging's report.
//!
//! The memory is bounded twice. Ids (and their fingerprints) by count, `recent_ids`, and by [`IDS_MAX_BYTES`],
//! because ids are producer-chosen and up to [`ScriptId::MAX_BYTES`] long; reports, which carry every test's
//! output, by [`REPORTS_MAX_BYTES`]. The oldest go first: a report is dropped before its id is forgotten.

use std::collections::{HashMap, VecDeque};

use tokio::sync::watch;

use crate::domain::{RunReport, Script, ScriptId, Status};

/// The most memory the remembered ids may take: the full count of UUID-sized ids, and about 27,000 of the longest.
pub const IDS_MAX_BYTES: usize = 16 * 1024 * 1024;

/// The most memory the remembered reports may take: thousands of typical reports, but not hundreds of megabytes of
/// captured output.
pub const REPORTS_MAX_BYTES: usize = 64 * 1024 * 1024;

/// Where a judging's report will appear: `None` until it is done; the sender is dropped without a report if the
/// judging is abandoned.
pub type Pending = watch::Receiver<Option<RunReport>>;

/// What the memory says of a script about to be judged.
#[derive(Debug)]
pub enum Claim {
    /// Another script was judged under this id recently: the RJ reason.
    Conflict(String),
    /// This script was judged already: its report.
    /// Boxed: a report is far larger than a conflict's reason.
    Answered(Box<RunReport>),
    /// This script is being judged now: wait for that report.
    UnderWay(Pending),
    /// Judge it here, and send the report through this when done.
    Judge(watch::Sender<Option<RunReport>>),
}

/// One remembered id.
#[derive(Debug)]
struct Entry {
    /// The script it was last seen with.
    fingerprint: u64,
    /// Its report and the sequence number it was kept under, so that an eviction of an older report of the same id
    /// cannot take the newer one.
    report: Option<(u64, RunReport)>,
    /// A judging under way here.
    pending: Option<Pending>,
}

#[derive(Debug)]
pub struct Recent {
    /// Every remembered id.
    entries: HashMap<ScriptId, Entry>,
    /// Ids from oldest to newest, for forgetting them.
    order: VecDeque<ScriptId>,
    /// Ids whose report is kept, from oldest to newest, with the report's sequence number.
    reported: VecDeque<(ScriptId, u64)>,
    /// The most ids remembered (`recent_ids`); 0 remembers nothing.
    capacity: usize,
    /// What the remembered ids cost, by [`id_cost`].
    id_bytes: usize,
    /// What the kept reports cost, by [`report_cost`].
    report_bytes: usize,
    /// The bound on `report_bytes`.
    reports_max_bytes: usize,
    /// The sequence number of the next report kept.
    next_report: u64,
}

impl Recent {
    /// A memory of at most `capacity` ids.
    pub fn new(capacity: usize) -> Self {
        Self::with_report_bytes(capacity, REPORTS_MAX_BYTES)
    }

    fn with_report_bytes(capacity: usize, reports_max_bytes: usize) -> Self {
        Self {
            entries: HashMap::new(),
            order: VecDeque::new(),
            reported: VecDeque::new(),
            capacity,
            id_bytes: 0,
            report_bytes: 0,
            reports_max_bytes,
            next_report: 0,
        }
    }

    /// What to do with `script` now, remembering it.
    pub fn claim(&mut self, script: &Script) -> Claim {
        let fingerprint = script.fingerprint();
        if self.capacity == 0 {
            return Claim::Judge(watch::channel(None).0);
        }
        if let Some(entry) = self.entries.get_mut(&script.id) {
            if entry.fingerprint != fingerprint {
                return Claim::Conflict(format!(
                    "duplicate id {:?}: this runner recently judged a different script with the same id; ids must \
                     be unique because consumers deduplicate results by id",
                    script.id.as_str()
                ));
            }
            if let Some((_, report)) = &entry.report {
                return Claim::Answered(Box::new(report.clone()));
            }
            if let Some(pending) = &entry.pending {
                return Claim::UnderWay(pending.clone());
            }
            let (done, pending) = watch::channel(None);
            entry.pending = Some(pending);
            return Claim::Judge(done);
        }
        let (done, pending) = watch::channel(None);
        self.remember(script.id.clone(), fingerprint, Some(pending));
        Claim::Judge(done)
    }

    /// Records how a judging claimed by [`Recent::claim`] ended: its report, kept unless it is IE or too large,
    /// or `None` when it was abandoned.
    pub fn judged(&mut self, script: &Script, report: Option<&RunReport>) {
        let Some(entry) = self.entries.get_mut(&script.id) else {
            return;
        };
        entry.pending = None;
        let Some(report) = report else { return };
        let cost = report_cost(report);
        if report.status == Status::InternalError || cost > self.reports_max_bytes {
            return;
        }
        let sequence = self.next_report;
        self.next_report += 1;
        if let Some((_, old)) = entry.report.replace((sequence, report.clone())) {
            self.report_bytes -= report_cost(&old);
        }
        self.report_bytes += cost;
        self.reported.push_back((script.id.clone(), sequence));
        while self.report_bytes > self.reports_max_bytes {
            let Some((id, sequence)) = self.reported.pop_front() else {
                break;
            };
            if let Some(entry) = self.entries.get_mut(&id)
                && entry.report.as_ref().is_some_and(|(kept, _)| *kept == sequence)
                && let Some((_, old)) = entry.report.take()
            {
                self.report_bytes -= report_cost(&old);
            }
        }
    }

    /// Forgets a judging under way that ended without a report (its task died), if `pending` is still the one
    /// remembered, so that the next delivery judges the script.
    pub fn forget_pending(&mut self, id: &ScriptId, pending: &Pending) {
        if let Some(entry) = self.entries.get_mut(id)
            && entry.pending.as_ref().is_some_and(|seen| seen.same_channel(pending))
        {
            entry.pending = None;
        }
    }

    fn remember(&mut self, id: ScriptId, fingerprint: u64, pending: Option<Pending>) {
        self.id_bytes += id_cost(&id);
        self.order.push_back(id.clone());
        self.entries.insert(
            id,
            Entry {
                fingerprint,
                report: None,
                pending,
            },
        );
        while self.order.len() > self.capacity || self.id_bytes > IDS_MAX_BYTES {
            let Some(oldest) = self.order.pop_front() else { break };
            self.id_bytes -= id_cost(&oldest);
            if let Some(Entry {
                report: Some((_, report)),
                ..
            }) = self.entries.remove(&oldest)
            {
                self.report_bytes -= report_cost(&report);
            }
        }
    }
}

/// The memory one remembered id takes, counted generously: its text twice (map and queue), two `String` allocations,
/// the fingerprint and the map's own overhead.
fn id_cost(id: &ScriptId) -> usize {
    2 * id.as_str().len() + 96
}

/// The memory a kept report takes, counted generously: every byte of text it carries, the id again (the queue of
/// reports), and a fixed overhead per test and per report.
fn report_cost(report: &RunReport) -> usize {
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
    use crate::testing::fixtures;

    fn script(id: &str, source: &str) -> Script {
        fixtures::script(id, Language::Python, source, &[])
    }

    fn report(script: &Script, error: &str) -> RunReport {
        RunReport::rejected(script.id.clone(), Some(Language::Python), error.to_owned())
    }

    fn judge(recent: &mut Recent, script: &Script, error: &str) {
        assert!(matches!(recent.claim(script), Claim::Judge(_)));
        recent.judged(script, Some(&report(script, error)));
    }

    fn long_id(n: usize) -> String {
        format!("{n:0>256}")
    }

    #[test]
    fn a_script_is_judged_once_its_redelivery_answered_and_a_reused_id_refused() {
        let mut recent = Recent::new(16);
        let first = script("a", "print(1)");
        let Claim::Judge(done) = recent.claim(&first) else {
            panic!("the first delivery is judged");
        };
        let Claim::UnderWay(mut pending) = recent.claim(&first) else {
            panic!("a redelivery while it is judged waits");
        };
        done.send_replace(Some(report(&first, "x")));
        recent.judged(&first, Some(&report(&first, "x")));
        assert_eq!(pending.borrow_and_update().as_ref(), Some(&report(&first, "x")));
        assert!(matches!(recent.claim(&first), Claim::Answered(r) if *r == report(&first, "x")));
        let Claim::Conflict(reason) = recent.claim(&script("a", "print(2)")) else {
            panic!("the same id for another script is refused");
        };
        assert!(reason.contains("duplicate id \"a\""), "{reason}");
    }

    #[test]
    fn an_internal_error_or_an_abandoned_judging_is_judged_again() {
        let mut recent = Recent::new(16);
        let first = script("ie", "print(1)");
        assert!(matches!(recent.claim(&first), Claim::Judge(_)));
        let ie = RunReport::internal_error(first.id.clone(), None, "engine down".into(), Vec::new());
        recent.judged(&first, Some(&ie));
        assert!(matches!(recent.claim(&first), Claim::Judge(_)), "IE is not kept");
        recent.judged(&first, None);
        assert!(matches!(recent.claim(&first), Claim::Judge(_)), "an abandoned judging");
        assert_eq!(recent.report_bytes, 0);
    }

    #[test]
    fn ids_are_bounded_by_bytes_not_only_by_count() {
        let mut recent = Recent::new(65_536);
        for n in 0..65_536 {
            let script = script(&long_id(n), "a");
            assert!(matches!(recent.claim(&script), Claim::Judge(_)));
            recent.judged(&script, None);
        }
        assert!(
            recent.order.len() < 65_536,
            "{} of 65,536 long ids kept",
            recent.order.len()
        );
        assert_eq!(recent.order.len(), recent.entries.len());
        assert!(recent.id_bytes <= IDS_MAX_BYTES, "{} bytes", recent.id_bytes);
        assert!(
            matches!(recent.claim(&script(&long_id(65_535), "b")), Claim::Conflict(_)),
            "the newest ids are still remembered"
        );
        assert!(
            matches!(recent.claim(&script(&long_id(0), "b")), Claim::Judge(_)),
            "the oldest were forgotten"
        );
    }

    #[test]
    fn short_ids_are_bounded_by_count() {
        let mut recent = Recent::new(10);
        for n in 0..20 {
            judge(&mut recent, &script(&format!("s{n}"), "a"), "x");
        }
        assert_eq!(recent.order.len(), 10);
        assert!(matches!(recent.claim(&script("s19", "b")), Claim::Conflict(_)));
        assert!(matches!(recent.claim(&script("s0", "b")), Claim::Judge(_)));
    }

    #[test]
    fn reports_are_bounded_by_bytes_and_go_before_their_ids() {
        let big = "e".repeat(1000);
        let mut recent = Recent::with_report_bytes(1000, 10_000);
        for n in 0..50 {
            judge(&mut recent, &script(&format!("r{n}"), "a"), &big);
            assert!(recent.report_bytes <= 10_000, "{} bytes", recent.report_bytes);
        }
        assert!(matches!(recent.claim(&script("r49", "a")), Claim::Answered(_)));
        assert!(
            matches!(recent.claim(&script("r0", "a")), Claim::Judge(_)),
            "its report was dropped: judged again"
        );
        assert!(
            matches!(recent.claim(&script("r1", "b")), Claim::Conflict(_)),
            "but its id is still remembered"
        );
        let huge = script("huge", "a");
        judge(&mut recent, &huge, &"e".repeat(20_000));
        assert!(
            matches!(recent.claim(&huge), Claim::Judge(_)),
            "a report larger than the bound is not kept"
        );
    }

    #[test]
    fn with_no_capacity_nothing_is_remembered() {
        let mut recent = Recent::new(0);
        let first = script("a", "print(1)");
        judge(&mut recent, &first, "x");
        assert!(matches!(recent.claim(&first), Claim::Judge(_)));
        assert!(matches!(recent.claim(&script("a", "print(2)")), Claim::Judge(_)));
    }
}
