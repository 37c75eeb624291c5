//! The scripts consumer: a member of the runners' consumer group that reads, classifies and (on the app's word)
//! commits.
//!
//! Offsets are never stored automatically (`enable.auto.offset.store=false`): the app stores a position only once
//! the results of everything before it are acknowledged, and auto-commit then makes stored positions durable. Each
//! assignment of a partition gets a new generation number; a position from an older generation is dropped, so a
//! partition revoked mid-script is never committed by the instance that lost it. With the cooperative-sticky
//! assignor a rebalance lists only the partitions that move, so a partition this instance keeps keeps its
//! generation, and its in-flight scripts are committed as usual.
//!
//! The consumer is polled all the time by a task of its own, the poller, because librdkafka serves the group
//! protocol (rebalances) only while it is polled: a runner whose slots are all busy with long scripts would
//! otherwise hold up every rebalance of the group for as long as its longest script. The app asks for messages
//! through [`ScriptSource::next`] only when it has a free slot, so messages that arrive while nobody asks are held,
//! up to what the app may take at once (one per slot, and with fair sharing the scripts it may hold back), and then
//! the assigned partitions are paused. They are resumed once the held messages are down to half that: pausing drops
//! librdkafka's prefetched messages and resuming fetches them again, so pausing at every message that finds no free
//! slot would cost a fetch round trip per message.
//!
//! `KAFKA_TOPIC` may list several topics, the priority lanes ([`super::lanes`]). Each lane holds and pauses on its
//! own: a burst on the batch lane fills and pauses only the batch lane, so an interactive script is received at once
//! and handed to the next free slot ahead of everything the batch lane holds.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::lanes::{LanePolicy, Lanes};
use super::offsets::OffsetLedger;
use super::wire::{self, Coordinates};
use super::{KafkaSettings, KafkaSetupError};
use crate::ports::{CloseError, CommitError, DeadLetter, Delivery, Inbound, Position, ScriptSource, SourceError};

/// A request for the next message, answered by the poller.
type Reply = oneshot::Sender<Result<Delivery, SourceError>>;

pub struct KafkaSource {
    consumer: Arc<StreamConsumer<SourceContext>>,
    /// The scripts topics, one per lane, in priority order.
    topics: Vec<String>,
    /// Where [`ScriptSource::next`] asks the poller for a message.
    requests: mpsc::Sender<Reply>,
    /// The poller, started by the first [`ScriptSource::next`] (which runs inside the Tokio runtime it needs).
    poller: Mutex<PollerState>,
    /// Stops the poller before the final commit.
    stop_polling: CancellationToken,
    /// The deliveries handed out and not yet acknowledged. Its lock is held across storing an offset, so that two
    /// acknowledgements can never store their positions out of order.
    ledger: Mutex<OffsetLedger>,
}

enum PollerState {
    NotStarted(Box<Poller>, mpsc::Receiver<Reply>),
    Running(JoinHandle<()>),
    Stopped,
}

/// Tracks which partitions this instance owns, under which generation, and what librdkafka's statistics say about
/// them.
struct SourceContext {
    /// The scripts topics, one per lane, whose partitions' lag the statistics report.
    topics: Vec<String>,
    /// The latest statistics' view, for metrics and readiness.
    statistics: Mutex<GroupView>,
    /// The generation of each owned partition, by lane and partition.
    owned: Mutex<HashMap<(u16, i32), u64>>,
    generations: AtomicU64,
    /// Whether the poller has paused each lane because it holds as many messages as it may: partitions of the lane
    /// assigned meanwhile are paused too, so that they do not deliver into a runner that has no room for them.
    paused: Vec<AtomicBool>,
    /// How many messages the poller holds for each lane, for [`ScriptSource::has_waiting_ahead_of`].
    waiting: Vec<AtomicUsize>,
    /// Whether the lanes are in strict priority order (no `KAFKA_TOPIC_WEIGHTS`).
    strict: bool,
}

impl SourceContext {
    fn new(topics: Vec<String>, policy: &LanePolicy) -> Self {
        Self {
            paused: topics.iter().map(|_| AtomicBool::new(false)).collect(),
            waiting: topics.iter().map(|_| AtomicUsize::new(0)).collect(),
            strict: *policy == LanePolicy::Strict,
            topics,
            statistics: Mutex::default(),
            owned: Mutex::default(),
            generations: AtomicU64::new(0),
        }
    }

    /// The lane of `topic`: its index in `KAFKA_TOPIC`'s list.
    fn lane(&self, topic: &str) -> Option<u16> {
        let index = self.topics.iter().position(|name| name == topic)?;
        u16::try_from(index).ok()
    }

    fn generation(&self, lane: u16, partition: i32) -> Option<u64> {
        self.owned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(lane, partition))
            .copied()
    }

    fn is_paused(&self, lane: u16) -> bool {
        self.paused
            .get(usize::from(lane))
            .is_some_and(|paused| paused.load(Ordering::SeqCst))
    }

    /// The lane and partition of each element of `partitions`; elements of a topic this runner does not consume
    /// (which the group never assigns it) are left out.
    fn lanes_of(&self, partitions: &TopicPartitionList) -> Vec<(u16, i32)> {
        partitions
            .elements()
            .iter()
            .filter_map(|element| Some((self.lane(element.topic())?, element.partition())))
            .collect()
    }

    fn assigned(&self, partitions: &TopicPartitionList) {
        let mut owned = self.owned.lock().unwrap_or_else(|p| p.into_inner());
        let assigned = self.lanes_of(partitions);
        for key in &assigned {
            let generation = self.generations.fetch_add(1, Ordering::SeqCst) + 1;
            owned.insert(*key, generation);
        }
        for (topic, assigned) in self.by_topic(&assigned) {
            tracing::info!(topic, ?assigned, "partitions assigned");
        }
    }

    fn revoked(&self, partitions: &TopicPartitionList) {
        let mut owned = self.owned.lock().unwrap_or_else(|p| p.into_inner());
        let revoked = self.lanes_of(partitions);
        for key in &revoked {
            owned.remove(key);
        }
        for (topic, revoked) in self.by_topic(&revoked) {
            tracing::info!(
                topic,
                ?revoked,
                "partitions revoked; their in-flight results will not be committed here"
            );
        }
    }

    /// The partitions of `keys` grouped by their lane's topic, lanes in order, for the log: one line per topic
    /// whose `assigned` or `revoked` field lists partition numbers, as it did before lanes (log readers such as
    /// the chaos harness parse it).
    fn by_topic<'a>(&'a self, keys: &[(u16, i32)]) -> Vec<(&'a str, Vec<i32>)> {
        (0u16..)
            .zip(&self.topics)
            .map(|(lane, topic)| {
                let partitions: Vec<i32> = keys.iter().filter(|key| key.0 == lane).map(|key| key.1).collect();
                (topic.as_str(), partitions)
            })
            .filter(|(_, partitions)| !partitions.is_empty())
            .collect()
    }

    /// Pauses the elements of `partitions` whose lane the poller has paused and resumes the others.
    fn apply_pauses(&self, consumer: &BaseConsumer<Self>, partitions: &TopicPartitionList) -> KafkaResult<()> {
        let mut paused = TopicPartitionList::new();
        let mut resumed = TopicPartitionList::new();
        for element in partitions.elements() {
            let list = match self.lane(element.topic()) {
                Some(lane) if self.is_paused(lane) => &mut paused,
                _ => &mut resumed,
            };
            list.add_partition(element.topic(), element.partition());
        }
        if paused.count() > 0 {
            consumer.pause(&paused)?;
        }
        if resumed.count() > 0 {
            consumer.resume(&resumed)?;
        }
        Ok(())
    }
}

impl ClientContext for SourceContext {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(%error, reason, "Kafka consumer error");
    }

    /// Keeps the lag of each owned partition and the group membership, every `statistics.interval.ms`.
    fn stats(&self, statistics: Statistics) {
        let owned: Vec<(u16, i32)> = self
            .owned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .copied()
            .collect();
        let mut lag: Vec<PartitionLag> = Vec::new();
        for (lane, name) in (0u16..).zip(&self.topics) {
            let Some(topic) = statistics.topics.get(name) else {
                continue;
            };
            lag.extend(
                topic
                    .partitions
                    .iter()
                    // librdkafka reports -1 until it knows, and lists partition -1 for its own bookkeeping.
                    .filter(|(partition, stats)| owned.contains(&(lane, **partition)) && stats.consumer_lag >= 0)
                    .map(|(partition, stats)| PartitionLag {
                        topic: name.clone(),
                        partition: *partition,
                        lag: stats.consumer_lag,
                    }),
            );
        }
        lag.sort_unstable();
        let in_group = statistics
            .cgrp
            .map(|group| group.state == "up" && group.join_state == "steady");
        *self.statistics.lock().unwrap_or_else(|p| p.into_inner()) = GroupView { lag, in_group };
    }
}

/// What the consumer's latest statistics say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupView {
    /// Messages behind the end of each owned partition whose lag is known, by topic and partition.
    pub lag: Vec<PartitionLag>,
    /// Whether the consumer has joined its group and applied its assignment; `None` before the first statistics
    /// (or with `statistics.interval.ms=0`).
    pub in_group: Option<bool>,
}

/// How far one owned partition is behind its end.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PartitionLag {
    /// One of the scripts topics: a closed set, the configured lanes.
    pub topic: String,
    /// The partition's number in that topic.
    pub partition: i32,
    /// Messages between the committed offset and the end of the partition.
    pub lag: i64,
}

impl ConsumerContext for SourceContext {
    /// Applies a rebalance. Under the cooperative protocol an assignment lists only the partitions added and a
    /// revocation only those lost, applied with `incremental_assign` / `incremental_unassign`; under the eager one
    /// both list everything. Either way the ownership map follows exactly what the lists say, so a partition kept
    /// across a cooperative rebalance keeps its generation.
    fn rebalance(&self, consumer: &BaseConsumer<Self>, error: RDKafkaRespErr, partitions: &mut TopicPartitionList) {
        let cooperative = matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative);
        let applied = match error {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.assigned(partitions);
                let applied = if cooperative {
                    consumer.incremental_assign(partitions)
                } else {
                    consumer.assign(partitions)
                };
                // Each new partition takes its lane's current state explicitly. librdkafka keeps the
                // application's pause on a partition across its revocation and a later assignment, and the poller
                // resumes only what is assigned when it resumes: a partition revoked while paused and assigned
                // again after the resume would otherwise never deliver again. A paused lane's new partitions wait
                // like the others.
                applied.and_then(|()| self.apply_pauses(consumer, partitions))
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.revoked(partitions);
                if cooperative {
                    consumer.incremental_unassign(partitions)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                tracing::warn!(error = %RDKafkaErrorCode::from(other), "rebalance failed; giving up the partitions listed");
                self.revoked(partitions);
                if cooperative {
                    consumer.incremental_unassign(partitions)
                } else {
                    consumer.unassign()
                }
            }
        };
        if let Err(error) = applied {
            // librdkafka then leaves the group state as it was; the next rebalance applies afresh.
            tracing::error!(%error, cooperative, "cannot apply the rebalance");
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => tracing::debug!(partitions = offsets.count(), "offsets committed"),
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(error) => tracing::warn!(%error, "offset commit failed; it will be retried"),
        }
    }
}

/// Polls the consumer for as long as the source lives, handing messages to whoever asks and holding them (with the
/// lane paused) while nobody does.
struct Poller {
    consumer: Arc<StreamConsumer<SourceContext>>,
    max_message_bytes: usize,
    /// Messages received while nobody asked, oldest first in each lane.
    held: Lanes,
    /// How many messages a lane may hold before it is paused: what the app may take at once.
    hold_limit: usize,
}

impl Poller {
    async fn run(mut self, mut requests: mpsc::Receiver<Reply>, stop: CancellationToken) {
        let mut waiting: Option<Reply> = None;
        loop {
            if let Some(reply) = waiting.take() {
                waiting = self.answer(reply);
            }
            self.count_waiting();
            for lane in (0u16..).take(self.consumer.context().topics.len()) {
                if self.held.len(usize::from(lane)) <= self.hold_limit / 2 && self.consumer.context().is_paused(lane) {
                    self.set_paused(lane, false);
                }
            }
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                // The app stopped waiting (shutdown); the next message is held instead.
                () = closed(&mut waiting) => waiting = None,
                request = requests.recv(), if waiting.is_none() => match request {
                    Some(reply) => waiting = Some(reply),
                    None => break,
                },
                received = self.consumer.recv() => match received {
                    Ok(message) => {
                        let delivery = classify(&message, self.max_message_bytes, self.consumer.context());
                        drop(message);
                        let lane = delivery.position.lane;
                        self.held.push(delivery);
                        if self.held.len(usize::from(lane)) >= self.hold_limit {
                            self.set_paused(lane, true);
                        }
                    }
                    Err(error) => {
                        let error = match error {
                            KafkaError::Canceled => SourceError::Fatal(error.to_string()),
                            error => SourceError::Transient(error.to_string()),
                        };
                        match waiting.take() {
                            Some(reply) => drop(reply.send(Err(error))),
                            None => tracing::warn!(%error, "Kafka consumer error while no slot is free"),
                        }
                    }
                },
            }
        }
    }

    /// Tells the source how many messages each lane holds now.
    fn count_waiting(&self) {
        for (lane, count) in self.consumer.context().waiting.iter().enumerate() {
            count.store(self.held.len(lane), Ordering::SeqCst);
        }
    }

    /// Hands the held message the lane policy chooses to `reply`, after dropping those whose partition was
    /// revoked since they arrived (their new owner reads them). Returns the request back when there is nothing to
    /// hand over yet.
    fn answer(&mut self, reply: Reply) -> Option<Reply> {
        let context = self.consumer.context();
        let dropped = self.held.retain(|delivery| {
            context.generation(delivery.position.lane, delivery.position.partition)
                == Some(delivery.position.generation)
        });
        if dropped > 0 {
            tracing::debug!(dropped, "held messages of revoked partitions dropped");
        }
        let Some(delivery) = self.held.pick() else {
            return Some(reply);
        };
        if let Err(Ok(delivery)) = reply.send(Ok(delivery)) {
            // Nobody is waiting any more: keep the message for the next request.
            self.held.unpick(delivery);
        }
        None
    }

    /// Pauses (or resumes) every partition of `lane` assigned now. Pausing is repeated for each message that
    /// arrives over the hold limit, which covers partitions assigned by a rebalance in between. The lane's flag is
    /// set first, so that a rebalance meanwhile treats new partitions alike, and put back if librdkafka refuses,
    /// so that the poller tries again rather than believing a lane resumed that is still paused.
    fn set_paused(&self, lane: u16, paused: bool) {
        let context = self.consumer.context();
        let (Some(flag), Some(topic)) = (
            context.paused.get(usize::from(lane)),
            context.topics.get(usize::from(lane)),
        ) else {
            return;
        };
        let was = flag.swap(paused, Ordering::SeqCst);
        let assignment = match self.consumer.assignment() {
            Ok(assignment) => assignment,
            Err(error) => {
                flag.store(was, Ordering::SeqCst);
                tracing::warn!(%error, "cannot read the assignment to pause or resume it");
                return;
            }
        };
        let mut partitions = TopicPartitionList::new();
        for element in assignment.elements().iter().filter(|element| element.topic() == topic) {
            partitions.add_partition(topic, element.partition());
        }
        if partitions.count() == 0 {
            return;
        }
        let applied = if paused {
            self.consumer.pause(&partitions)
        } else {
            self.consumer.resume(&partitions)
        };
        match applied {
            Err(error) => {
                flag.store(was, Ordering::SeqCst);
                tracing::warn!(%error, paused, topic, "cannot pause or resume the lane's partitions");
            }
            Ok(()) if was != paused => {
                tracing::debug!(paused, topic, partitions = partitions.count(), "consumer flow control")
            }
            Ok(()) => {}
        }
    }
}

/// Completes when the app has given up the request it is waiting on; never while there is none.
async fn closed(waiting: &mut Option<Reply>) {
    match waiting {
        Some(reply) => reply.closed().await,
        None => std::future::pending().await,
    }
}

impl KafkaSource {
    /// Joins the consumer group and subscribes to the scripts topics.
    ///
    /// # Errors
    /// [`KafkaSetupError`] when a property is invalid or the subscription fails.
    pub fn connect(settings: &KafkaSettings) -> Result<Self, KafkaSetupError> {
        let setup = |source| KafkaSetupError {
            client: "consumer",
            source,
        };
        let consumer: StreamConsumer<SourceContext> = settings
            .consumer_config()
            .create_with_context(SourceContext::new(
                settings.scripts_topics.clone(),
                &settings.lane_policy,
            ))
            .map_err(setup)?;
        let topics: Vec<&str> = settings.scripts_topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics).map_err(setup)?;
        let consumer = Arc::new(consumer);
        // One request at a time: the app asks for a message only with a slot in hand.
        let (requests, receiver) = mpsc::channel(1);
        let poller = Poller {
            consumer: Arc::clone(&consumer),
            max_message_bytes: settings.max_message_bytes,
            held: Lanes::new(settings.scripts_topics.len(), settings.lane_policy.clone()),
            hold_limit: settings.hold_per_lane.max(1),
        };
        Ok(Self {
            consumer,
            topics: settings.scripts_topics.clone(),
            requests,
            poller: Mutex::new(PollerState::NotStarted(Box::new(poller), receiver)),
            stop_polling: CancellationToken::new(),
            ledger: Mutex::new(OffsetLedger::default()),
        })
    }

    /// Stores `next_offset` as the position of the partition of `at`'s lane, unless the partition has been
    /// reassigned since `at`'s generation delivered it: then its new owner commits for it.
    fn store(&self, at: Position, next_offset: i64) -> Result<(), CommitError> {
        let Position {
            lane,
            partition,
            generation,
            ..
        } = at;
        if self.consumer.context().generation(lane, partition) != Some(generation) {
            tracing::debug!(
                partition,
                next_offset,
                "partition no longer owned under this generation; not storing"
            );
            return Ok(());
        }
        let error = |reason: String| CommitError {
            partition,
            next_offset,
            reason,
        };
        let topic = self
            .topics
            .get(usize::from(lane))
            .ok_or_else(|| error(format!("no scripts topic has lane {lane}")))?;
        let mut positions = TopicPartitionList::new();
        positions
            .add_partition_offset(topic, partition, Offset::Offset(next_offset))
            .map_err(|e| error(e.to_string()))?;
        self.consumer
            .store_offsets(&positions)
            .map_err(|e| error(e.to_string()))
    }

    fn ledger(&self) -> MutexGuard<'_, OffsetLedger> {
        self.ledger.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn start_polling(&self) {
        let mut state = self.poller.lock().unwrap_or_else(|p| p.into_inner());
        if let PollerState::NotStarted(..) = *state
            && let PollerState::NotStarted(poller, receiver) = std::mem::replace(&mut *state, PollerState::Stopped)
        {
            *state = PollerState::Running(tokio::spawn(poller.run(receiver, self.stop_polling.clone())));
        }
    }

    /// Stops the poller and waits for it, so that nothing polls the consumer during the final commit.
    async fn stop_polling(&self) {
        self.stop_polling.cancel();
        let state = std::mem::replace(
            &mut *self.poller.lock().unwrap_or_else(|p| p.into_inner()),
            PollerState::Stopped,
        );
        if let PollerState::Running(handle) = state
            && let Err(error) = handle.await
        {
            tracing::warn!(%error, "the consumer's poller failed");
        }
    }

    /// Checks that the brokers answer (a metadata request for the first scripts topic) and returns how many
    /// partitions of the scripts topics this instance owns.
    ///
    /// # Errors
    /// [`CheckError`] when no broker answers within `timeout`.
    pub async fn check(&self, timeout: std::time::Duration) -> Result<usize, CheckError> {
        let consumer = Arc::clone(&self.consumer);
        let topic = self.topics.first().cloned();
        tokio::task::spawn_blocking(move || consumer.fetch_metadata(topic.as_deref(), timeout))
            .await
            .map_err(CheckError::Task)?
            .map_err(CheckError::Unanswered)?;
        Ok(self
            .consumer
            .context()
            .owned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len())
    }
}

/// Why the brokers could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// No broker answered the metadata request in time, or it failed.
    #[error("{0}")]
    Unanswered(#[source] KafkaError),
    /// The blocking task that asks could not run to its end (the runtime is shutting down).
    #[error("the broker check did not complete: {0}")]
    Task(#[source] tokio::task::JoinError),
}

impl KafkaSource {
    /// What the consumer's latest statistics say: lag per owned partition, and group membership.
    pub fn group_view(&self) -> GroupView {
        self.consumer
            .context()
            .statistics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

fn classify(message: &BorrowedMessage<'_>, max_message_bytes: usize, context: &SourceContext) -> Delivery {
    let enqueued = message
        .timestamp()
        .to_millis()
        .and_then(|millis| u64::try_from(millis).ok())
        .map(|millis| std::time::UNIX_EPOCH + std::time::Duration::from_millis(millis));
    let at = Coordinates {
        topic: message.topic(),
        partition: message.partition(),
        offset: message.offset(),
    };
    // The group assigns only the subscribed topics, so every message has a lane. Were one not to, generation 0,
    // which no assignment has, keeps its offset from ever being stored under the first lane's topic.
    let lane = context.lane(message.topic());
    let position = Position {
        lane: lane.unwrap_or(0),
        partition: message.partition(),
        offset: message.offset(),
        generation: lane
            .and_then(|lane| context.generation(lane, message.partition()))
            .unwrap_or(0),
    };
    let headers = read_headers(message);
    let tenant = headers
        .iter()
        .find(|(name, _)| name == wire::TENANT_HEADER)
        .and_then(|(_, value)| value.as_deref());
    let parsed = wire::parse_message(message.payload(), message.key(), tenant, at, max_message_bytes);
    let message = match parsed {
        Ok(inbound) => inbound,
        Err(unreadable) => Inbound::Unreadable(DeadLetter {
            reason: unreadable.reason,
            id: unreadable.id,
            origin: format!("{}:{}:{}", at.topic, at.partition, at.offset),
            payload: message.payload().map(<[u8]>::to_vec),
            key: message.key().map(<[u8]>::to_vec),
            headers,
        }),
    };
    Delivery {
        position,
        message,
        enqueued,
    }
}

/// A message's headers, names converted lossily to UTF-8 (invalid bytes become U+FFFD).
///
/// Any client can send a header name that is not UTF-8, and rdkafka's `Headers::get`, `try_get` and `iter` all
/// unwrap the name as UTF-8, panicking on such a message. So the headers are read through librdkafka directly.
fn read_headers(message: &BorrowedMessage<'_>) -> Vec<(String, Option<Vec<u8>>)> {
    use rdkafka::bindings as rdsys;
    use rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR;

    let mut headers: *mut rdsys::rd_kafka_headers_t = std::ptr::null_mut();
    // SAFETY: `message.ptr()` is the live native message for as long as `message` is borrowed. librdkafka keeps
    // ownership of the header list it hands out, which lives as long as the message.
    let error = unsafe { rdsys::rd_kafka_message_headers(message.ptr(), &raw mut headers) };
    if error != RD_KAFKA_RESP_ERR_NO_ERROR || headers.is_null() {
        return Vec::new();
    }
    // SAFETY: `headers` is the message's valid header list (above).
    let count = unsafe { rdsys::rd_kafka_header_cnt(headers) };
    (0..count)
        .filter_map(|index| {
            let mut name: *const std::ffi::c_char = std::ptr::null();
            let mut value: *const std::ffi::c_void = std::ptr::null();
            let mut size = 0usize;
            // SAFETY: `index` is below the count; the out-pointers are valid locals.
            let error =
                unsafe { rdsys::rd_kafka_header_get_all(headers, index, &raw mut name, &raw mut value, &raw mut size) };
            if error != RD_KAFKA_RESP_ERR_NO_ERROR || name.is_null() {
                return None;
            }
            // SAFETY: librdkafka stores every name NUL-terminated, and a non-null value as `size` bytes; both are
            // owned by the message and copied here before the borrow ends.
            let name = unsafe { std::ffi::CStr::from_ptr(name) }.to_string_lossy().into_owned();
            let value =
                (!value.is_null()).then(|| unsafe { std::slice::from_raw_parts(value.cast::<u8>(), size) }.to_vec());
            Some((name, value))
        })
        .collect()
}

impl ScriptSource for KafkaSource {
    async fn next(&self) -> Result<Delivery, SourceError> {
        self.start_polling();
        let stopped = || SourceError::Fatal("the consumer's poller has stopped".into());
        let (reply, answer) = oneshot::channel();
        self.requests.send(reply).await.map_err(|_| stopped())?;
        let delivery = answer.await.map_err(|_| stopped())??;
        self.ledger().begin(delivery.position);
        Ok(delivery)
    }

    fn ack(&self, position: Position) -> Result<(), CommitError> {
        let mut ledger = self.ledger();
        match ledger.finish(position) {
            Some(next_offset) => self.store(position, next_offset),
            None => Ok(()),
        }
    }

    fn is_current(&self, position: Position) -> bool {
        self.consumer.context().generation(position.lane, position.partition) == Some(position.generation)
    }

    fn has_waiting_ahead_of(&self, lane: u16) -> bool {
        let context = self.consumer.context();
        context.strict
            && context
                .waiting
                .iter()
                .take(usize::from(lane))
                .any(|count| count.load(Ordering::SeqCst) > 0)
    }

    fn origin(&self, position: Position) -> String {
        let topic = self.topics.get(usize::from(position.lane)).map_or("?", String::as_str);
        format!("{topic}:{}:{}", position.partition, position.offset)
    }

    async fn close(&self) -> Result<(), CloseError> {
        self.stop_polling().await;
        let consumer = Arc::clone(&self.consumer);
        let committed = tokio::task::spawn_blocking(move || {
            let result = consumer.commit_consumer_state(CommitMode::Sync);
            consumer.unsubscribe();
            result
        })
        .await
        .map_err(|e| CloseError(e.to_string()))?;
        match committed {
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => Ok(()),
            Err(error) => Err(CloseError(error.to_string())),
        }
    }
}
