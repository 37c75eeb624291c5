//! In-memory stand-ins for the Kafka adapters: a source fed by the test and a publisher that records what it was
//! given, with switches to make it fail.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use crate::domain::RunReport;
use crate::ports::{
    CloseError, CommitError, DeadLetter, Delivery, Inbound, Position, PublishError, ReportPublisher, ScriptSource,
    SourceError,
};

/// A source whose messages the test pushes in. Reading waits while the queue is empty, as a consumer waits on an
/// idle topic.
#[derive(Debug, Default)]
pub struct FakeSource {
    queue: Mutex<VecDeque<Delivery>>,
    arrived: Notify,
    /// Every `commit` call, in order: (partition, generation, next offset).
    commits: Mutex<Vec<(i32, u64, i64)>>,
    delivered: AtomicUsize,
    closed: AtomicBool,
    next_offset: Mutex<i64>,
}

impl FakeSource {
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues a message on partition 0, generation 1, at the next offset. Returns its position.
    pub fn push(&self, message: Inbound) -> Position {
        let mut next = self.next_offset.lock().unwrap_or_else(|p| p.into_inner());
        let position = Position {
            partition: 0,
            offset: *next,
            generation: 1,
        };
        *next += 1;
        drop(next);
        self.push_at(position, message);
        position
    }

    pub fn push_at(&self, position: Position, message: Inbound) {
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(Delivery { position, message });
        self.arrived.notify_one();
    }

    pub fn commits(&self) -> Vec<(i32, u64, i64)> {
        self.commits.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The last committed position of a partition.
    pub fn committed(&self, partition: i32) -> Option<i64> {
        self.commits().iter().rev().find(|c| c.0 == partition).map(|c| c.2)
    }

    pub fn delivered(&self) -> usize {
        self.delivered.load(Ordering::SeqCst)
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }
}

impl ScriptSource for FakeSource {
    async fn next(&self) -> Result<Delivery, SourceError> {
        loop {
            let notified = self.arrived.notified();
            if let Some(delivery) = self.queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front() {
                self.delivered.fetch_add(1, Ordering::SeqCst);
                return Ok(delivery);
            }
            notified.await;
        }
    }

    fn commit(&self, partition: i32, generation: u64, next_offset: i64) -> Result<(), CommitError> {
        self.commits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((partition, generation, next_offset));
        Ok(())
    }

    async fn close(&self) -> Result<(), CloseError> {
        self.closed.store(true, Ordering::SeqCst);
        Ok(())
    }
}

/// A publisher that keeps everything it acknowledges.
#[derive(Debug, Default)]
pub struct FakePublisher {
    reports: Mutex<Vec<RunReport>>,
    dead_letters: Mutex<Vec<DeadLetter>>,
    /// Publish calls to refuse before acknowledging again.
    failures_left: AtomicUsize,
    /// Every publish call, acknowledged or not.
    attempts: AtomicUsize,
    notify: Notify,
}

impl FakePublisher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next `count` publish calls fail as unacknowledged.
    pub fn fail_next(&self, count: usize) {
        self.failures_left.store(count, Ordering::SeqCst);
    }

    pub fn reports(&self) -> Vec<RunReport> {
        self.reports.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.dead_letters.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn attempts(&self) -> usize {
        self.attempts.load(Ordering::SeqCst)
    }

    /// Waits until at least `count` reports are acknowledged.
    pub async fn wait_for_reports(&self, count: usize) -> Vec<RunReport> {
        loop {
            let notified = self.notify.notified();
            let reports = self.reports();
            if reports.len() >= count {
                return reports;
            }
            notified.await;
        }
    }

    fn refuse(&self) -> Result<(), PublishError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        let refused = self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(1))
            .is_ok();
        if refused {
            return Err(PublishError::NotAcknowledged("fake broker refused".into()));
        }
        Ok(())
    }
}

impl ReportPublisher for FakePublisher {
    async fn publish(&self, report: &RunReport) -> Result<(), PublishError> {
        self.refuse()?;
        self.reports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(report.clone());
        self.notify.notify_waiters();
        Ok(())
    }

    async fn dead_letter(&self, letter: &DeadLetter) -> Result<(), PublishError> {
        self.refuse()?;
        self.dead_letters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(letter.clone());
        self.notify.notify_waiters();
        Ok(())
    }

    async fn flush(&self, _timeout: Duration) -> Result<(), PublishError> {
        Ok(())
    }
}
