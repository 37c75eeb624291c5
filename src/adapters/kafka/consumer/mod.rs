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

mod classify;
mod context;
mod poller;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::delivery::{KafkaDelivery, RawRecord, Receipt};
use super::lanes::Lanes;
use super::offsets::OffsetLedger;
use super::wire::MessageLimits;
use super::{KafkaSettings, KafkaSetupError};
use crate::ports::{AckError, CloseError, ReceiveError, ScriptSource, Standing};
use crate::sync::lock;
use context::SourceContext;
pub use context::{GroupView, PartitionLag};
use poller::{Poller, Reply};

pub struct KafkaSource {
    /// The group member, shared with the poller.
    consumer: Arc<StreamConsumer<SourceContext>>,
    /// Where [`ScriptSource::next`] asks the poller for a message.
    requests: mpsc::Sender<Reply>,
    /// The poller, started by the first [`ScriptSource::next`] (which runs inside the Tokio runtime it needs).
    poller: Mutex<PollerState>,
    /// Stops the poller before the final commit.
    stop_polling: CancellationToken,
    /// The deliveries handed out and not yet answered. Its lock is held across storing an offset, so that two
    /// answers can never store their positions out of order.
    ledger: Mutex<OffsetLedger>,
}

/// The poller's life: made with the source, started by the first request, stopped before the final commit.
enum PollerState {
    NotStarted(Box<Poller>, mpsc::Receiver<Reply>),
    Running(JoinHandle<()>),
    Stopped,
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
            .create_with_context(SourceContext::new(&settings.scripts_topics, &settings.lane_policy))
            .map_err(setup)?;
        let topics: Vec<&str> = settings.scripts_topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics).map_err(setup)?;
        let consumer = Arc::new(consumer);
        // One request at a time: the app asks for a message only with a slot in hand.
        let (requests, receiver) = mpsc::channel(1);
        let poller = Poller {
            consumer: Arc::clone(&consumer),
            limits: MessageLimits {
                max_bytes: settings.max_message_bytes,
                max_files: settings.max_files,
            },
            held: Lanes::new(settings.scripts_topics.len(), settings.lane_policy.clone()),
            hold_limit: settings.hold_per_lane.max(1),
        };
        Ok(Self {
            consumer,
            requests,
            poller: Mutex::new(PollerState::NotStarted(Box::new(poller), receiver)),
            stop_polling: CancellationToken::new(),
            ledger: Mutex::new(OffsetLedger::default()),
        })
    }

    /// Stores `next_offset` as the position of the partition of `receipt`, unless the partition has been reassigned
    /// since `receipt`'s generation delivered it: then its new owner commits for it.
    fn store(&self, receipt: &Receipt, next_offset: i64) -> Result<(), AckError> {
        let position = receipt.position();
        if !self.owns(receipt) {
            tracing::debug!(
                partition = position.partition,
                next_offset,
                "partition no longer owned under this generation; not storing"
            );
            return Ok(());
        }
        let failed = |error: KafkaError| AckError {
            receipt: receipt.to_string(),
            cause: Box::new(error),
        };
        let mut positions = TopicPartitionList::new();
        positions
            .add_partition_offset(receipt.topic(), position.partition, Offset::Offset(next_offset))
            .map_err(failed)?;
        self.consumer.store_offsets(&positions).map_err(failed)
    }

    /// Whether this instance still owns `receipt`'s partition under the assignment that delivered it.
    fn owns(&self, receipt: &Receipt) -> bool {
        let position = receipt.position();
        self.consumer.context().generation(position.lane, position.partition) == Some(position.generation)
    }

    fn ledger(&self) -> MutexGuard<'_, OffsetLedger> {
        lock(&self.ledger)
    }

    fn start_polling(&self) {
        let mut state = lock(&self.poller);
        if let PollerState::NotStarted(..) = *state
            && let PollerState::NotStarted(poller, receiver) = std::mem::replace(&mut *state, PollerState::Stopped)
        {
            *state = PollerState::Running(tokio::spawn(poller.run(receiver, self.stop_polling.clone())));
        }
    }

    /// Stops the poller and waits for it, so that nothing polls the consumer during the final commit.
    async fn stop_polling(&self) {
        self.stop_polling.cancel();
        let state = std::mem::replace(&mut *lock(&self.poller), PollerState::Stopped);
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
        let topic = self.consumer.context().topics.first().map(|topic| topic.to_string());
        tokio::task::spawn_blocking(move || consumer.fetch_metadata(topic.as_deref(), timeout))
            .await
            .map_err(CheckError::Task)?
            .map_err(CheckError::Unanswered)?;
        Ok(lock(&self.consumer.context().owned).len())
    }

    /// What the consumer's latest statistics say: lag per owned partition, and group membership.
    pub fn group_view(&self) -> GroupView {
        lock(&self.consumer.context().statistics).clone()
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

/// The poller has stopped: the source was closed, or the task died.
#[derive(Debug, thiserror::Error)]
#[error("the consumer's poller has stopped")]
struct PollerStopped;

impl ScriptSource for KafkaSource {
    type Receipt = Receipt;
    type Raw = RawRecord;

    async fn next(&self) -> Result<KafkaDelivery, ReceiveError> {
        self.start_polling();
        let stopped = || ReceiveError::Stopped(Box::new(PollerStopped));
        let (reply, answer) = oneshot::channel();
        self.requests.send(reply).await.map_err(|_| stopped())?;
        let delivery = answer.await.map_err(|_| stopped())??;
        self.ledger().begin(delivery.receipt.position());
        Ok(delivery)
    }

    fn ack(&self, receipt: &Receipt) -> Result<(), AckError> {
        let mut ledger = self.ledger();
        match ledger.finish(receipt.position()) {
            Some(next_offset) => self.store(receipt, next_offset),
            None => Ok(()),
        }
    }

    /// Withdrawn when the partition was revoked since the message arrived; behind when, with strict lanes, the
    /// poller holds a message of an earlier lane.
    fn standing(&self, receipt: &Receipt) -> Standing {
        if !self.owns(receipt) {
            return Standing::Withdrawn;
        }
        let context = self.consumer.context();
        let ahead = context.strict
            && context
                .waiting
                .iter()
                .take(usize::from(receipt.position().lane))
                .any(|count| count.load(Ordering::SeqCst) > 0);
        if ahead { Standing::Behind } else { Standing::First }
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
        .map_err(|error| CloseError(Box::new(error)))?;
        match committed {
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => Ok(()),
            Err(error) => Err(CloseError(Box::new(error))),
        }
    }
}
