//! Priority lanes: a runner may consume several scripts topics (`KAFKA_TOPIC=scripts-interactive,scripts-batch`),
//! and when a slot frees while more than one of them has a script waiting, the lane policy chooses which goes first.
//!
//! The consumer holds what each lane delivered, oldest first, in a queue of its own. [`LanePolicy::Strict`] always
//! takes the first lane in `KAFKA_TOPIC`'s order that has a script, so a bulk re-judge on a later lane never delays a
//! student's run by more than the script it waits behind, and waits itself for as long as the earlier lanes are
//! busy. [`LanePolicy::Weighted`] shares the slots between the lanes that have something waiting in proportion to
//! their weights, with the smooth weighted round-robin of nginx's upstreams: with weights `4,1` and both lanes full,
//! four interactive scripts, one batch script, and so on, interleaved rather than in runs, and no lane waits for
//! long.

use std::collections::VecDeque;

use super::delivery::KafkaDelivery as Delivery;

/// How the consumer chooses between lanes that both have a script waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LanePolicy {
    /// The first lane with a script, in `KAFKA_TOPIC`'s order.
    Strict,
    /// Shares in proportion to these weights (`KAFKA_TOPIC_WEIGHTS`), one per lane, each at least 1.
    Weighted(Vec<u32>),
}

/// The deliveries each lane has received and nobody has taken yet.
#[derive(Debug)]
pub struct Lanes {
    /// What each lane received and nobody took yet, oldest first; one queue per lane, in lane order.
    held: Vec<VecDeque<Delivery>>,
    /// How [`Lanes::pick`] chooses between lanes that both hold something.
    policy: LanePolicy,
    /// The weighted policy's running credit per lane.
    credit: Vec<i64>,
}

impl Lanes {
    /// Empty queues for `count` lanes. A weighted policy's weights are one per lane (the configuration checks it);
    /// a lane without a weight counts as weight 1.
    pub fn new(count: usize, policy: LanePolicy) -> Self {
        Self {
            held: (0..count).map(|_| VecDeque::new()).collect(),
            policy,
            credit: vec![0; count],
        }
    }

    /// Holds `delivery` at the back of its lane's queue.
    pub fn push(&mut self, delivery: Delivery) {
        let lane = usize::from(delivery.receipt.position().lane);
        if let Some(queue) = self.held.get_mut(lane) {
            queue.push_back(delivery);
        } else {
            // Positions are made by the consumer from its own topic list, so this cannot happen; a delivery is
            // never dropped for it.
            tracing::warn!(lane, "delivery of an unknown lane held in the first");
            if let Some(first) = self.held.first_mut() {
                first.push_back(delivery);
            }
        }
    }

    /// Puts back a delivery just taken, at the front of its lane: nobody was waiting for it after all.
    pub fn unpick(&mut self, delivery: Delivery) {
        let lane = usize::from(delivery.receipt.position().lane).min(self.held.len().saturating_sub(1));
        if let Some(queue) = self.held.get_mut(lane) {
            queue.push_front(delivery);
        }
    }

    /// How many deliveries `lane` holds.
    pub fn len(&self, lane: usize) -> usize {
        self.held.get(lane).map_or(0, VecDeque::len)
    }

    /// Drops held deliveries for which `keep` is false (those of partitions revoked since they arrived: their new
    /// owner reads them) and returns how many were dropped.
    pub fn retain(&mut self, mut keep: impl FnMut(&Delivery) -> bool) -> usize {
        let before: usize = self.held.iter().map(VecDeque::len).sum();
        for queue in &mut self.held {
            queue.retain(&mut keep);
        }
        before - self.held.iter().map(VecDeque::len).sum::<usize>()
    }

    /// Takes the delivery the policy chooses, or `None` when every lane is empty.
    pub fn pick(&mut self) -> Option<Delivery> {
        let lane = match &self.policy {
            LanePolicy::Strict => self.held.iter().position(|queue| !queue.is_empty())?,
            LanePolicy::Weighted(weights) => {
                let weight = |lane: usize| i64::from(weights.get(lane).copied().unwrap_or(1).max(1));
                let waiting: Vec<usize> = (0..self.held.len())
                    .filter(|&lane| !self.held[lane].is_empty())
                    .collect();
                let total: i64 = waiting.iter().map(|&lane| weight(lane)).sum();
                let mut chosen: Option<usize> = None;
                for &lane in &waiting {
                    self.credit[lane] += weight(lane);
                    if chosen.is_none_or(|best| self.credit[lane] > self.credit[best]) {
                        chosen = Some(lane);
                    }
                }
                let lane = chosen?;
                self.credit[lane] -= total;
                lane
            }
        };
        self.held[lane].pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::kafka::delivery::{Position, Receipt};
    use crate::ports::Inbound;

    fn delivery(lane: u16, offset: i64) -> Delivery {
        let position = Position {
            lane,
            partition: 0,
            offset,
            generation: 1,
        };
        Delivery {
            receipt: Receipt::new(std::sync::Arc::from("scripts"), position),
            message: Inbound::Done,
            enqueued: None,
        }
    }

    fn lanes_of(lanes: &mut Lanes, picks: usize) -> Vec<u16> {
        (0..picks)
            .filter_map(|_| lanes.pick())
            .map(|d| d.receipt.position().lane)
            .collect()
    }

    #[test]
    fn strict_takes_the_first_lane_while_it_has_anything() {
        let mut lanes = Lanes::new(2, LanePolicy::Strict);
        for offset in 0..3 {
            lanes.push(delivery(1, offset));
        }
        lanes.push(delivery(0, 0));
        lanes.push(delivery(0, 1));
        assert_eq!(lanes_of(&mut lanes, 6), [0, 0, 1, 1, 1]);
    }

    #[test]
    fn each_lane_keeps_its_order() {
        let mut lanes = Lanes::new(2, LanePolicy::Strict);
        for offset in 0..4 {
            lanes.push(delivery(1, offset));
        }
        let offsets: Vec<i64> = (0..4)
            .filter_map(|_| lanes.pick())
            .map(|d| d.receipt.position().offset)
            .collect();
        assert_eq!(offsets, [0, 1, 2, 3]);
    }

    #[test]
    fn weighted_interleaves_in_proportion_to_the_weights() {
        let mut lanes = Lanes::new(2, LanePolicy::Weighted(vec![3, 1]));
        for offset in 0..20 {
            lanes.push(delivery(0, offset));
            lanes.push(delivery(1, offset));
        }
        let picked = lanes_of(&mut lanes, 8);
        assert_eq!(
            picked,
            [0, 0, 1, 0, 0, 0, 1, 0],
            "3 to 1, the batch lane never waits more than 3"
        );
    }

    #[test]
    fn weighted_gives_everything_to_the_only_lane_waiting() {
        let mut lanes = Lanes::new(2, LanePolicy::Weighted(vec![1, 4]));
        for offset in 0..3 {
            lanes.push(delivery(0, offset));
        }
        assert_eq!(lanes_of(&mut lanes, 4), [0, 0, 0]);
        lanes.push(delivery(1, 0));
        lanes.push(delivery(0, 3));
        assert_eq!(
            lanes_of(&mut lanes, 2),
            [1, 0],
            "no credit saved up while a lane was empty beats the weights"
        );
    }

    #[test]
    fn unpick_puts_a_delivery_back_first_and_retain_drops_revoked_ones() {
        let mut lanes = Lanes::new(2, LanePolicy::Strict);
        lanes.push(delivery(1, 7));
        lanes.push(delivery(1, 8));
        let first = lanes.pick().expect("held");
        lanes.unpick(first);
        assert_eq!(lanes.len(1), 2);
        assert_eq!(lanes.retain(|d| d.receipt.position().offset != 7), 1);
        assert_eq!(lanes.pick().map(|d| d.receipt.position().offset), Some(8));
        assert!(lanes.pick().is_none());
    }
}
