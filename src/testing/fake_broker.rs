//! In-memory stand-ins for the Kafka adapters: a source fed by the test and a publisher that records what it was
//! given, with switches to make it fail the ways a broker does: not acknowledging a record (transient), or
//! refusing one as invalid (permanent, like a record over the broker's `message.max.bytes`).

use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use crate::adapters::kafka::delivery::{KafkaDelivery, Position, RawRecord, Receipt};
use crate::adapters::kafka::offsets::OffsetLedger;
use crate::adapters::kafka::producer::Letter;
use crate::domain::RunReport;
use crate::ports::{
    AckError, Aside, CloseError, Delivery, FlushError, Inbound, PublishError, ReceiveError, ReportPublisher,
    ScriptSource, Standing,
};
use crate::sync::lock;

/// A delivery of the fake source, shaped as the Kafka source's.
pub type FakeDelivery = KafkaDelivery;

/// The topic the fake names a lane by: `scripts` for the first, `scripts-<lane>` for the others.
fn topic(lane: u16) -> Arc<str> {
    if lane == 0 {
        Arc::from("scripts")
    } else {
        Arc::from(format!("scripts-{lane}").as_str())
    }
}

/// A source whose messages the test pushes in. Reading waits while the queue is empty, as a consumer waits on an
/// idle topic.
#[derive(Debug, Default)]
pub struct FakeSource {
    /// Messages pushed by the test and not yet read, oldest first.
    queue: Mutex<VecDeque<FakeDelivery>>,
    /// Wakes a reader waiting on an empty queue when the test pushes a message.
    arrived: Notify,
    /// The deliveries handed out and not yet acknowledged, kept as the Kafka source keeps them.
    ledger: Mutex<OffsetLedger>,
    /// What the executor has taken ahead of its commit.
    outstanding: Mutex<Outstanding>,
    /// Every position made durable, in order: (partition, generation, next offset).
    commits: Mutex<Vec<(i32, u64, i64)>>,
    /// Messages handed out so far, for tests that count what the executor fetched.
    delivered: AtomicUsize,
    /// Set once the executor has closed the source, as it must at the end of every run.
    closed: AtomicBool,
    /// `close` never returns, as a final commit to an unreachable group coordinator may not.
    close_hangs: AtomicBool,
    /// The offset [`FakeSource::push`] gives the next message on partition 0.
    next_offset: Mutex<i64>,
    /// Assignments taken away, as (partition, generation): their deliveries are no longer current.
    revoked: Mutex<BTreeSet<(i32, u64)>>,
}

/// The deliveries handed out and not yet acknowledged, with the most there ever were at once.
#[derive(Debug, Default)]
struct Outstanding {
    /// As (partition, generation, offset).
    now: BTreeSet<(i32, u64, i64)>,
    /// The most deliveries ever outstanding at once, for tests of the bound on messages taken ahead of the commit.
    most: usize,
}

impl FakeSource {
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues a message on partition 0, generation 1, at the next offset. Returns its position.
    pub fn push(&self, message: Inbound<RawRecord>) -> Position {
        let mut next = lock(&self.next_offset);
        let position = Position {
            lane: 0,
            partition: 0,
            offset: *next,
            generation: 1,
        };
        *next += 1;
        drop(next);
        self.push_at(position, message);
        position
    }

    /// Queues a message at `position`, on the topic of its lane.
    pub fn push_at(&self, position: Position, message: Inbound<RawRecord>) {
        lock(&self.queue).push_back(Delivery {
            receipt: Receipt::new(topic(position.lane), position),
            message,
            enqueued: Some(std::time::SystemTime::now()),
        });
        self.arrived.notify_one();
    }

    pub fn commits(&self) -> Vec<(i32, u64, i64)> {
        lock(&self.commits).clone()
    }

    /// The last committed position of a partition.
    pub fn committed(&self, partition: i32) -> Option<i64> {
        self.commits().iter().rev().find(|c| c.0 == partition).map(|c| c.2)
    }

    /// How many deliveries are handed out and not acknowledged now.
    pub fn outstanding(&self) -> usize {
        lock(&self.outstanding).now.len()
    }

    /// The most deliveries ever handed out and not acknowledged at once.
    pub fn most_outstanding(&self) -> usize {
        lock(&self.outstanding).most
    }

    pub fn delivered(&self) -> usize {
        self.delivered.load(Ordering::SeqCst)
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Takes `generation` of `partition` away, as a rebalance does: its deliveries are no longer current, and
    /// acknowledging them commits nothing.
    pub fn revoke(&self, partition: i32, generation: u64) {
        lock(&self.revoked).insert((partition, generation));
    }

    /// Makes `close` hang forever from now on.
    pub fn hang_on_close(&self) {
        self.close_hangs.store(true, Ordering::SeqCst);
    }
}

impl ScriptSource for FakeSource {
    type Receipt = Receipt;
    type Raw = RawRecord;

    async fn next(&self) -> Result<FakeDelivery, ReceiveError> {
        loop {
            let notified = self.arrived.notified();
            let queued = lock(&self.queue).pop_front();
            if let Some(delivery) = queued {
                self.delivered.fetch_add(1, Ordering::SeqCst);
                let position = delivery.receipt.position();
                let mut outstanding = lock(&self.outstanding);
                outstanding
                    .now
                    .insert((position.partition, position.generation, position.offset));
                outstanding.most = outstanding.most.max(outstanding.now.len());
                drop(outstanding);
                lock(&self.ledger).begin(position);
                return Ok(delivery);
            }
            notified.await;
        }
    }

    /// Withdrawn for a revoked assignment; behind when anything is queued on an earlier lane (strict priority
    /// lanes, as the Kafka source has them).
    fn standing(&self, receipt: &Receipt) -> Standing {
        let position = receipt.position();
        if !self.is_current(position) {
            return Standing::Withdrawn;
        }
        let ahead = lock(&self.queue)
            .iter()
            .any(|delivery| delivery.receipt.position().lane < position.lane);
        if ahead { Standing::Behind } else { Standing::First }
    }

    /// Finishes the delivery in the same ledger as the Kafka source, and records each commit it lets through.
    fn ack(&self, receipt: &Receipt) -> Result<(), AckError> {
        let position = receipt.position();
        lock(&self.outstanding)
            .now
            .remove(&(position.partition, position.generation, position.offset));
        let mut ledger = lock(&self.ledger);
        if let Some(next_offset) = ledger.finish(position)
            && self.is_current(position)
        {
            lock(&self.commits).push((position.partition, position.generation, next_offset));
        }
        Ok(())
    }

    async fn close(&self) -> Result<(), CloseError> {
        if self.close_hangs.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        self.closed.store(true, Ordering::SeqCst);
        Ok(())
    }
}

impl FakeSource {
    /// Whether the assignment that delivered `position` has not been revoked.
    fn is_current(&self, position: Position) -> bool {
        !lock(&self.revoked).contains(&(position.partition, position.generation))
    }
}

/// A publisher that keeps everything it acknowledges.
#[derive(Debug, Default)]
pub struct FakePublisher {
    /// Every report acknowledged, in order, for the test to assert on.
    reports: Mutex<Vec<RunReport>>,
    /// What was set aside, as the Kafka publisher would write it before fitting it to the record size.
    dead_letters: Mutex<Vec<Letter>>,
    /// Publish calls to refuse before acknowledging again.
    failures_left: AtomicUsize,
    /// Every publish call, acknowledged or not.
    attempts: AtomicUsize,
    /// Records larger than this (by [`record_size`]) are refused as invalid, as a broker refuses a record over
    /// its `message.max.bytes`. Zero means no limit.
    max_record_bytes: AtomicUsize,
    /// Script ids whose reports are always refused as invalid, whatever the report says.
    refused_ids: Mutex<Vec<String>>,
    /// Invalid refusals in a row. A test double cannot time out a busy loop under paused time, so past
    /// [`SPIN_LIMIT`] the fake panics to make a spinning executor fail its test instead of hanging it.
    invalid_in_a_row: AtomicUsize,
    /// Wakes [`FakePublisher::wait_for_reports`] whenever a record is acknowledged.
    notify: Notify,
}

/// Invalid refusals in a row after which [`FakePublisher`] decides the executor is spinning.
const SPIN_LIMIT: usize = 1000;

/// The bytes a record would take on the wire, roughly: every field the broker would have to carry.
pub fn record_size(record: RecordRef<'_>) -> usize {
    match record {
        RecordRef::Report(report) => {
            let tests: usize = report
                .tests
                .iter()
                .map(|t| t.stdout().len() + t.stderr().len() + t.input.len() + t.expected_output.len() + t.error.len())
                .sum();
            report.id.as_str().len() + report.stdout.len() + report.stderr.len() + report.error.len() + tests
        }
        RecordRef::DeadLetter(letter) => {
            let headers: usize = letter
                .headers
                .iter()
                .map(|(name, value)| name.len() + value.as_ref().map_or(0, Vec::len))
                .sum();
            letter.reason.len()
                + letter.origin.len()
                + letter.payload.as_ref().map_or(0, Vec::len)
                + letter.key.as_ref().map_or(0, Vec::len)
                + headers
        }
    }
}

/// A record offered to the fake publisher.
#[derive(Debug, Clone, Copy)]
pub enum RecordRef<'a> {
    Report(&'a RunReport),
    DeadLetter(&'a Letter),
}

impl FakePublisher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next `count` publish calls fail as unacknowledged.
    pub fn fail_next(&self, count: usize) {
        self.failures_left.store(count, Ordering::SeqCst);
    }

    /// Refuses every record larger than `bytes` (by [`record_size`]) as invalid from now on.
    pub fn limit_record_bytes(&self, bytes: usize) {
        self.max_record_bytes.store(bytes, Ordering::SeqCst);
    }

    /// Refuses every report of script `id` as invalid from now on, whatever it says.
    pub fn refuse_reports_for(&self, id: &str) {
        lock(&self.refused_ids).push(id.to_owned());
    }

    pub fn reports(&self) -> Vec<RunReport> {
        lock(&self.reports).clone()
    }

    pub fn dead_letters(&self) -> Vec<Letter> {
        lock(&self.dead_letters).clone()
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

    fn refuse(&self, record: RecordRef<'_>) -> Result<(), PublishError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if let Some(reason) = self.invalid(record) {
            let in_a_row = self.invalid_in_a_row.fetch_add(1, Ordering::SeqCst) + 1;
            assert!(
                in_a_row <= SPIN_LIMIT,
                "{in_a_row} records in a row refused as invalid: the executor keeps offering what can never be published"
            );
            return Err(PublishError::Refused(reason.into()));
        }
        self.invalid_in_a_row.store(0, Ordering::SeqCst);
        let refused = self
            .failures_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(1))
            .is_ok();
        if refused {
            return Err(PublishError::NotAcknowledged("fake broker did not acknowledge".into()));
        }
        Ok(())
    }

    /// Why the record can never be published, if it cannot.
    fn invalid(&self, record: RecordRef<'_>) -> Option<String> {
        if let RecordRef::Report(report) = record {
            let refused = lock(&self.refused_ids);
            if refused.iter().any(|id| id == report.id.as_str()) {
                return Some("fake broker refuses every report of this script".into());
            }
        }
        let limit = self.max_record_bytes.load(Ordering::SeqCst);
        let size = record_size(record);
        (limit > 0 && size > limit).then(|| format!("record of {size} bytes is over the fake broker's {limit} bytes"))
    }
}

impl ReportPublisher for FakePublisher {
    type Raw = RawRecord;

    async fn publish(&self, report: &RunReport) -> Result<(), PublishError> {
        self.refuse(RecordRef::Report(report))?;
        lock(&self.reports).push(report.clone());
        self.notify.notify_waiters();
        Ok(())
    }

    async fn set_aside(&self, aside: Aside<'_, RawRecord>) -> Result<(), PublishError> {
        let letter = Letter::of(aside);
        self.refuse(RecordRef::DeadLetter(&letter))?;
        lock(&self.dead_letters).push(letter);
        self.notify.notify_waiters();
        Ok(())
    }

    async fn flush(&self, _timeout: Duration) -> Result<(), FlushError> {
        Ok(())
    }
}
