//! The ledger of in-flight offsets that makes out-of-order completion safe. The Kafka source keeps one: it begins
//! an entry for each delivery it hands out and finishes it when the app acknowledges the delivery.
//!
//! With several scripts running at once, offset 7 may finish before offset 5. Committing 8 then would lose 5 and 6
//! on a crash, so the ledger only ever returns the end of the contiguous finished prefix of each partition: the
//! smallest offset still in flight, or one past the last offset seen when nothing is in flight. Ledgers are kept
//! per lane (topic), partition *and* generation, so work finished for a revoked assignment never moves the new one.

use std::collections::{BTreeSet, HashMap};

use super::delivery::Position;

#[derive(Debug, Default)]
pub struct OffsetLedger {
    /// A ledger per lane, partition and assignment generation: work done under a revoked assignment moves no commit.
    partitions: HashMap<(u16, i32, u64), PartitionLedger>,
}

#[derive(Debug)]
struct PartitionLedger {
    /// Offsets delivered and not yet finished.
    in_flight: BTreeSet<i64>,
    /// The highest offset delivered so far.
    last_delivered: i64,
    /// The commit position last handed out, so it only ever moves forward.
    committed: i64,
}

impl OffsetLedger {
    /// Records a delivered message. Messages of one partition must be begun in offset order.
    pub fn begin(&mut self, position: Position) {
        let ledger = self
            .partitions
            .entry((position.lane, position.partition, position.generation))
            .or_insert(PartitionLedger {
                in_flight: BTreeSet::new(),
                last_delivered: position.offset,
                committed: position.offset,
            });
        ledger.in_flight.insert(position.offset);
        ledger.last_delivered = ledger.last_delivered.max(position.offset);
    }

    /// Records a finished message. Returns the new commit position (the next offset to consume) when the
    /// contiguous prefix moved forward.
    pub fn finish(&mut self, position: Position) -> Option<i64> {
        let key = (position.lane, position.partition, position.generation);
        let ledger = self.partitions.get_mut(&key)?;
        if !ledger.in_flight.remove(&position.offset) {
            return None;
        }
        let next = ledger.in_flight.first().copied().unwrap_or(ledger.last_delivered + 1);
        let advanced = next > ledger.committed;
        if ledger.in_flight.is_empty() {
            self.partitions.remove(&key);
        } else {
            ledger.committed = ledger.committed.max(next);
        }
        advanced.then_some(next)
    }

    /// How many messages are delivered and unfinished.
    #[cfg(test)]
    fn in_flight(&self) -> usize {
        self.partitions.values().map(|ledger| ledger.in_flight.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(partition: i32, offset: i64) -> Position {
        Position {
            lane: 0,
            partition,
            offset,
            generation: 1,
        }
    }

    #[test]
    fn in_order_completion_commits_each_offset() {
        let mut ledger = OffsetLedger::default();
        ledger.begin(at(0, 0));
        ledger.begin(at(0, 1));
        assert_eq!(ledger.finish(at(0, 0)), Some(1));
        assert_eq!(ledger.finish(at(0, 1)), Some(2));
        assert_eq!(ledger.in_flight(), 0);
    }

    #[test]
    fn out_of_order_completion_waits_for_the_gap() {
        let mut ledger = OffsetLedger::default();
        for offset in 5..8 {
            ledger.begin(at(0, offset));
        }
        assert_eq!(
            ledger.finish(at(0, 7)),
            None,
            "5 is still in flight: nothing may be committed"
        );
        assert_eq!(ledger.finish(at(0, 6)), None);
        assert_eq!(ledger.finish(at(0, 5)), Some(8), "the prefix closes and jumps past 7");
    }

    #[test]
    fn partitions_are_independent() {
        let mut ledger = OffsetLedger::default();
        ledger.begin(at(0, 10));
        ledger.begin(at(1, 3));
        assert_eq!(ledger.finish(at(1, 3)), Some(4));
        assert_eq!(ledger.in_flight(), 1);
        assert_eq!(ledger.finish(at(0, 10)), Some(11));
    }

    #[test]
    fn the_same_partition_of_two_lanes_is_two_ledgers() {
        let mut ledger = OffsetLedger::default();
        let batch = |offset| Position {
            lane: 1,
            ..at(0, offset)
        };
        ledger.begin(at(0, 4));
        ledger.begin(batch(4));
        ledger.begin(batch(5));
        assert_eq!(
            ledger.finish(batch(5)),
            None,
            "the batch lane still waits for its own offset 4"
        );
        assert_eq!(ledger.finish(batch(4)), Some(6));
        assert_eq!(
            ledger.finish(at(0, 4)),
            Some(5),
            "the first lane's offset 4 was never finished before"
        );
    }

    #[test]
    fn gaps_in_offsets_are_skipped() {
        let mut ledger = OffsetLedger::default();
        ledger.begin(at(0, 3));
        ledger.begin(at(0, 9));
        assert_eq!(ledger.finish(at(0, 9)), None);
        assert_eq!(ledger.finish(at(0, 3)), Some(10));
    }

    #[test]
    fn an_older_generation_never_moves_the_new_one() {
        let mut ledger = OffsetLedger::default();
        let old = Position {
            lane: 0,
            partition: 0,
            offset: 4,
            generation: 1,
        };
        let new = Position {
            lane: 0,
            partition: 0,
            offset: 4,
            generation: 2,
        };
        ledger.begin(old);
        ledger.begin(new);
        let five = Position { offset: 5, ..new };
        ledger.begin(five);
        assert_eq!(
            ledger.finish(five),
            None,
            "generation 2 still waits for its own offset 4"
        );
        assert_eq!(ledger.finish(old), Some(5), "generation 1 reports its own prefix only");
        assert_eq!(ledger.finish(new), Some(6));
    }

    #[test]
    fn finishing_twice_or_unknown_offsets_returns_nothing() {
        let mut ledger = OffsetLedger::default();
        ledger.begin(at(0, 0));
        assert_eq!(ledger.finish(at(0, 0)), Some(1));
        assert_eq!(ledger.finish(at(0, 0)), None);
        assert_eq!(ledger.finish(at(3, 0)), None);
    }

    proptest! {
        /// Whatever the completion order, a returned position never passes an unfinished offset, and once
        /// everything is finished the last position is one past the last offset.
        #[test]
        fn commit_positions_never_pass_an_unfinished_offset(order in Just((0..30i64).collect::<Vec<_>>()).prop_shuffle()) {
            let mut ledger = OffsetLedger::default();
            for offset in 0..30 {
                ledger.begin(at(0, offset));
            }
            let mut finished = BTreeSet::new();
            let mut last = None;
            for offset in order {
                finished.insert(offset);
                if let Some(next) = ledger.finish(at(0, offset)) {
                    for below in 0..next {
                        prop_assert!(finished.contains(&below), "committed {next} while {below} unfinished");
                    }
                    last = Some(next);
                }
            }
            prop_assert_eq!(last, Some(30));
        }
    }
}
