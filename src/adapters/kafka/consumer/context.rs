//! The consumer's context: which partitions of the scripts topics this instance owns and under which generation,
//! the rebalances librdkafka calls it for, and what librdkafka's statistics say (lag, group membership).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, TopicPartitionList};

use crate::adapters::kafka::lanes::LanePolicy;
use crate::sync::lock;

/// Tracks which partitions this instance owns, under which generation, and what librdkafka's statistics say about
/// them.
pub(super) struct SourceContext {
    /// The scripts topics, one per lane, whose partitions' lag the statistics report; shared with every receipt.
    pub(super) topics: Vec<Arc<str>>,
    /// The latest statistics' view, for metrics and readiness.
    pub(super) statistics: Mutex<GroupView>,
    /// The generation of each owned partition, by lane and partition.
    pub(super) owned: Mutex<HashMap<(u16, i32), u64>>,
    /// The last generation handed out: each assignment of a partition gets the next.
    generations: AtomicU64,
    /// Whether the poller has paused each lane because it holds as many messages as it may: partitions of the lane
    /// assigned meanwhile are paused too, so that they do not deliver into a runner that has no room for them.
    pub(super) paused: Vec<AtomicBool>,
    /// How many messages the poller holds for each lane, for [`super::KafkaSource`]'s standing of a held-back
    /// delivery.
    pub(super) waiting: Vec<AtomicUsize>,
    /// Whether the lanes are in strict priority order (no `KAFKA_TOPIC_WEIGHTS`).
    pub(super) strict: bool,
}

impl SourceContext {
    pub(super) fn new(topics: &[String], policy: &LanePolicy) -> Self {
        Self {
            paused: topics.iter().map(|_| AtomicBool::new(false)).collect(),
            waiting: topics.iter().map(|_| AtomicUsize::new(0)).collect(),
            strict: *policy == LanePolicy::Strict,
            topics: topics.iter().map(|topic| Arc::from(topic.as_str())).collect(),
            statistics: Mutex::default(),
            owned: Mutex::default(),
            generations: AtomicU64::new(0),
        }
    }

    /// The lane of `topic`: its index in `KAFKA_TOPIC`'s list.
    pub(super) fn lane(&self, topic: &str) -> Option<u16> {
        let index = self.topics.iter().position(|name| &**name == topic)?;
        u16::try_from(index).ok()
    }

    pub(super) fn generation(&self, lane: u16, partition: i32) -> Option<u64> {
        lock(&self.owned).get(&(lane, partition)).copied()
    }

    pub(super) fn is_paused(&self, lane: u16) -> bool {
        self.paused
            .get(usize::from(lane))
            .is_some_and(|paused| paused.load(Ordering::SeqCst))
    }

    /// The lane and partition of each element of `partitions`; elements of a topic this runner does not consume
    /// (which the group never assigns it) are left out.
    pub(super) fn lanes_of(&self, partitions: &TopicPartitionList) -> Vec<(u16, i32)> {
        partitions
            .elements()
            .iter()
            .filter_map(|element| Some((self.lane(element.topic())?, element.partition())))
            .collect()
    }

    pub(super) fn assigned(&self, partitions: &TopicPartitionList) {
        let mut owned = lock(&self.owned);
        let assigned = self.lanes_of(partitions);
        for key in &assigned {
            let generation = self.generations.fetch_add(1, Ordering::SeqCst) + 1;
            owned.insert(*key, generation);
        }
        for (topic, assigned) in self.by_topic(&assigned) {
            tracing::info!(topic, ?assigned, "partitions assigned");
        }
    }

    pub(super) fn revoked(&self, partitions: &TopicPartitionList) {
        let mut owned = lock(&self.owned);
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
                (&**topic, partitions)
            })
            .filter(|(_, partitions)| !partitions.is_empty())
            .collect()
    }

    /// Pauses the elements of `partitions` whose lane the poller has paused and resumes the others.
    pub(super) fn apply_pauses(
        &self,
        consumer: &BaseConsumer<Self>,
        partitions: &TopicPartitionList,
    ) -> KafkaResult<()> {
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
        let owned: Vec<(u16, i32)> = lock(&self.owned).keys().copied().collect();
        let mut lag: Vec<PartitionLag> = Vec::new();
        for (lane, name) in (0u16..).zip(&self.topics) {
            let Some(topic) = statistics.topics.get(&**name) else {
                continue;
            };
            lag.extend(
                topic
                    .partitions
                    .iter()
                    // librdkafka reports -1 until it knows, and lists partition -1 for its own bookkeeping.
                    .filter(|(partition, stats)| owned.contains(&(lane, **partition)) && stats.consumer_lag >= 0)
                    .map(|(partition, stats)| PartitionLag {
                        topic: name.to_string(),
                        partition: *partition,
                        lag: stats.consumer_lag,
                    }),
            );
        }
        lag.sort_unstable();
        let in_group = statistics
            .cgrp
            .map(|group| group.state == "up" && group.join_state == "steady");
        *lock(&self.statistics) = GroupView { lag, in_group };
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
