//! The ordered acknowledgement queue of sources that resume from a position (the file
//! source's checkpoints, the Kafka source's offsets): each batch sent is queued with the
//! position it reaches per key (file, partition); answers arrive in any order, and
//! positions move over the answered batches at the front of the queue only, so a saved
//! position never passes an event whose delivery is still open. A key whose batch
//! failed is pinned: nothing more of it moves until the source releases it.

use crate::event::BatchStatus;
use std::collections::{HashSet, VecDeque};
use std::hash::Hash;

struct Pending<K, P> {
    seq: u64,
    positions: Vec<(K, P)>,
    status: Option<BatchStatus>,
}

/// See the module documentation.
pub struct OrderedAcks<K, P> {
    pending: VecDeque<Pending<K, P>>,
    pinned: HashSet<K>,
    next_seq: u64,
}

impl<K, P> Default for OrderedAcks<K, P> {
    fn default() -> Self {
        Self {
            pending: VecDeque::new(),
            pinned: HashSet::new(),
            next_seq: 0,
        }
    }
}

impl<K: Eq + Hash + Clone, P> OrderedAcks<K, P> {
    /// Queues a batch reaching `positions`; its answer is to be given with the
    /// returned sequence number.
    pub fn push(&mut self, positions: Vec<(K, P)>) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.pending.push_back(Pending {
            seq,
            positions,
            status: None,
        });
        seq
    }

    /// Records the answer for batch `seq`.
    pub fn answer(&mut self, seq: u64, status: BatchStatus) {
        if let Some(p) = self.pending.iter_mut().find(|p| p.seq == seq) {
            p.status = Some(status);
        }
    }

    /// Moves over the answered batches at the front: `delivered` gets each position of
    /// a delivered batch whose key is not pinned; a failed batch pins its keys, and
    /// `failed` hears of each so the source can drop what it was about to save.
    pub fn advance(&mut self, mut delivered: impl FnMut(K, P), mut failed: impl FnMut(&K)) {
        while self.pending.front().is_some_and(|p| p.status.is_some()) {
            let Some(done) = self.pending.pop_front() else {
                break;
            };
            for (key, position) in done.positions {
                if done.status != Some(BatchStatus::Delivered) {
                    failed(&key);
                    self.pinned.insert(key);
                } else if !self.pinned.contains(&key) {
                    delivered(key, position);
                }
            }
        }
    }

    /// Whether a batch holding a key that `matches` is still unanswered (any, with
    /// `None`).
    pub fn is_open(&self, matches: Option<&dyn Fn(&K) -> bool>) -> bool {
        self.pending.iter().any(|p| {
            p.status.is_none() && matches.is_none_or(|m| p.positions.iter().any(|(k, _)| m(k)))
        })
    }

    /// Batches sent and not yet answered.
    pub fn open(&self) -> usize {
        self.pending.iter().filter(|p| p.status.is_none()).count()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Forgets the keys `drop` says (a revoked Kafka partition): their queued positions
    /// no longer move anything and their pins are lifted.
    pub fn forget(&mut self, drop: impl Fn(&K) -> bool) {
        for p in &mut self.pending {
            p.positions.retain(|(k, _)| !drop(k));
        }
        self.pinned.retain(|k| !drop(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_move_in_order_and_a_failure_pins_its_key() {
        let mut q: OrderedAcks<&str, u64> = OrderedAcks::default();
        let a = q.push(vec![("x", 10), ("y", 5)]);
        let b = q.push(vec![("x", 20)]);
        let c = q.push(vec![("y", 9)]);
        let mut moved = Vec::new();
        q.answer(b, BatchStatus::Delivered);
        q.advance(|k, p| moved.push((k, p)), |_| {});
        assert!(moved.is_empty(), "nothing passes an open batch");
        q.answer(a, BatchStatus::Delivered);
        q.advance(|k, p| moved.push((k, p)), |_| {});
        assert_eq!(moved, vec![("x", 10), ("y", 5), ("x", 20)]);
        q.answer(c, BatchStatus::Errored);
        let d = q.push(vec![("y", 30)]);
        q.answer(d, BatchStatus::Delivered);
        moved.clear();
        q.advance(|k, p| moved.push((k, p)), |_| {});
        assert!(moved.is_empty(), "a pinned key stays");
        q.forget(|k| *k == "y");
        let e = q.push(vec![("y", 40)]);
        q.answer(e, BatchStatus::Delivered);
        q.advance(|k, p| moved.push((k, p)), |_| {});
        assert_eq!(moved, vec![("y", 40)]);
    }
}
