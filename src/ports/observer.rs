//! The observing port: what the app says about each script as it goes, for metrics and for live UIs.
//!
//! Every method returns at once and cannot fail: an observer must never delay, block or change a verdict or an
//! message made durable. An implementation that sends anything anywhere hands it to a bounded queue and drops it when the
//! queue is full. Every method has an empty default, so an observer implements only what it needs.

use std::sync::Arc;
use std::time::Duration;

use crate::domain::{Language, RunReport, ScriptId};

pub trait Observer: Send + Sync + 'static {
    /// A script (or a readable but invalid submission) was taken from the queue, `waited` after it was enqueued;
    /// `None` when the source does not know when that was.
    fn accepted(&self, _id: &ScriptId, _language: Option<Language>, _waited: Option<Duration>) {}

    /// The script's build starts.
    fn building(&self, _id: &ScriptId, _language: Language) {}

    /// The script's build ended (built, or failed to build), after `took`.
    fn built(&self, _language: Language, _took: Duration) {}

    /// The script's program starts on its `test`th test, counted from 1 in the order given (the producer's own
    /// numbers may start at 0); 1 for a script without tests, whose one run it is.
    fn running(&self, _id: &ScriptId, _language: Language, _test: u32) {}

    /// One run of the program ended after `took`.
    fn ran(&self, _language: Language, _took: Duration) {}

    /// The script's report was acknowledged by the broker, `took` after the script was enqueued (after it was
    /// taken when the enqueue time is unknown).
    fn finished(&self, _report: &RunReport, _took: Duration) {}

    /// A record set aside (a message that could not be answered with a result) was acknowledged.
    fn set_aside(&self) {}

    /// Publishing a record failed once (it is retried or replaced).
    fn publish_failed(&self) {}

    /// A message's task started (`true`) or ended (`false`).
    fn in_flight(&self, _started: bool) {}

    /// How many scripts are held back now because their tenant is at its cap; told whenever that changes.
    fn held_back(&self, _scripts: usize) {}
}

/// Observes nothing: the default of the app.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unobserved;

impl Observer for Unobserved {}

/// Several observers as one, each told everything in turn.
#[derive(Clone, Default)]
pub struct Observers(Vec<Arc<dyn Observer>>);

impl Observers {
    pub fn push(&mut self, observer: Arc<dyn Observer>) {
        self.0.push(observer);
    }
}

impl Observer for Observers {
    fn accepted(&self, id: &ScriptId, language: Option<Language>, waited: Option<Duration>) {
        self.0.iter().for_each(|o| o.accepted(id, language, waited));
    }
    fn building(&self, id: &ScriptId, language: Language) {
        self.0.iter().for_each(|o| o.building(id, language));
    }
    fn built(&self, language: Language, took: Duration) {
        self.0.iter().for_each(|o| o.built(language, took));
    }
    fn running(&self, id: &ScriptId, language: Language, test: u32) {
        self.0.iter().for_each(|o| o.running(id, language, test));
    }
    fn ran(&self, language: Language, took: Duration) {
        self.0.iter().for_each(|o| o.ran(language, took));
    }
    fn finished(&self, report: &RunReport, took: Duration) {
        self.0.iter().for_each(|o| o.finished(report, took));
    }
    fn set_aside(&self) {
        self.0.iter().for_each(|o| o.set_aside());
    }
    fn publish_failed(&self) {
        self.0.iter().for_each(|o| o.publish_failed());
    }
    fn in_flight(&self, started: bool) {
        self.0.iter().for_each(|o| o.in_flight(started));
    }
    fn held_back(&self, scripts: usize) {
        self.0.iter().for_each(|o| o.held_back(scripts));
    }
}
