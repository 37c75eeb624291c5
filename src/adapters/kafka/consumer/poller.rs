//! The poller: the task that polls the consumer for as long as the source lives. librdkafka serves the group
//! protocol (rebalances) only while it is polled, so the consumer is polled all the time, whether or not the app
//! has a free slot: messages that arrive while nobody asks are held, per lane, and a lane that holds as many as the
//! app may take at once is paused until it is down to half.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use rdkafka::TopicPartitionList;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::classify::classify;
use super::context::SourceContext;
use crate::adapters::kafka::delivery::KafkaDelivery;
use crate::adapters::kafka::lanes::Lanes;
use crate::adapters::kafka::wire::MessageLimits;
use crate::ports::{ReceiveError, describe};

/// A request for the next message, answered by the poller.
pub(super) type Reply = oneshot::Sender<Result<KafkaDelivery, ReceiveError>>;

/// Polls the consumer for as long as the source lives, handing messages to whoever asks and holding them (with the
/// lane paused) while nobody does.
pub(super) struct Poller {
    /// The consumer it polls, shared with the source for commits and checks.
    pub consumer: Arc<StreamConsumer<SourceContext>>,
    /// Larger messages are unreadable (`RUNNER_MAX_MESSAGE_BYTES`).
    pub limits: MessageLimits,
    /// Messages received while nobody asked, oldest first in each lane.
    pub held: Lanes,
    /// How many messages a lane may hold before it is paused: what the app may take at once.
    pub hold_limit: usize,
}

impl Poller {
    pub async fn run(mut self, mut requests: mpsc::Receiver<Reply>, stop: CancellationToken) {
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
                        let delivery = classify(&message, self.limits, self.consumer.context());
                        drop(message);
                        let lane = delivery.receipt.position().lane;
                        self.held.push(delivery);
                        if self.held.len(usize::from(lane)) >= self.hold_limit {
                            self.set_paused(lane, true);
                        }
                    }
                    Err(error) => {
                        let error = match error {
                            KafkaError::Canceled => ReceiveError::Stopped(Box::new(error)),
                            error => ReceiveError::Transient(Box::new(error)),
                        };
                        match waiting.take() {
                            Some(reply) => drop(reply.send(Err(error))),
                            None => tracing::warn!(error = %describe(&error), "Kafka consumer error while no slot is free"),
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
            let position = delivery.receipt.position();
            context.generation(position.lane, position.partition) == Some(position.generation)
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
            context.topics.get(usize::from(lane)).map(|topic| &**topic),
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
