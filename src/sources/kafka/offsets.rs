//! Which offsets a Kafka source may commit: only those of events delivered end to end.
//! Each batch sent carries a notifier; answers arrive in any order, and offsets move
//! over the answered batches at the front of the queue only, in order, so a committed
//! offset never passes a message whose delivery is still open (as the file source's
//! checkpoints). A partition whose batch failed is pinned: nothing more of it is
//! committed until it is assigned anew, when it is read again from the last commit.

use crate::event::{BatchNotifier, BatchStatus, Event};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A topic and partition.
pub type Partition = (Arc<str>, i32);

struct Pending {
    seq: u64,
    /// Per partition, the last offset the batch holds.
    offsets: Vec<(Partition, i64)>,
    status: Option<BatchStatus>,
}

/// See the module documentation.
pub struct Offsets {
    pending: VecDeque<Pending>,
    pinned: HashSet<Partition>,
    next_seq: u64,
    acks_tx: mpsc::Sender<(u64, BatchStatus)>,
    acks_rx: mpsc::Receiver<(u64, BatchStatus)>,
    /// What may be committed, by partition: the next offset to read.
    ready: HashMap<Partition, i64>,
}

impl Default for Offsets {
    fn default() -> Self {
        let (acks_tx, acks_rx) = mpsc::channel();
        Self {
            pending: VecDeque::new(),
            pinned: HashSet::new(),
            next_seq: 0,
            acks_tx,
            acks_rx,
            ready: HashMap::new(),
        }
    }
}

impl Offsets {
    /// Attaches a notifier to `batch`, whose answer lets `offsets` (the last offset of
    /// each partition in it) be committed. The answer is awaited on `runtime`.
    pub fn track(
        &mut self,
        batch: &mut [Event],
        offsets: Vec<(Partition, i64)>,
        runtime: &tokio::runtime::Handle,
    ) {
        let rx = BatchNotifier::attach(batch);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.pending.push_back(Pending {
            seq,
            offsets,
            status: None,
        });
        let tx = self.acks_tx.clone();
        runtime.spawn(async move {
            // A notifier dropped without an answer means the events were lost.
            let status = rx.await.unwrap_or(BatchStatus::Errored);
            let _ = tx.send((seq, status));
        });
    }

    /// Takes the answers that have arrived and moves offsets.
    pub fn collect(&mut self) {
        while let Ok((seq, status)) = self.acks_rx.try_recv() {
            self.ack(seq, status);
        }
        self.advance();
    }

    /// Waits up to `timeout` for one more answer, then moves offsets. False when none
    /// came.
    pub fn wait(&mut self, timeout: Duration) -> bool {
        match self.acks_rx.recv_timeout(timeout) {
            Ok((seq, status)) => {
                self.ack(seq, status);
                self.collect();
                true
            }
            Err(_) => false,
        }
    }

    /// Waits until no batch holding one of `partitions` (all, when `None`) is open, or
    /// until `deadline`. True when none is open.
    pub fn drain(&mut self, partitions: Option<&HashSet<Partition>>, deadline: Instant) -> bool {
        loop {
            self.collect();
            let open = self.pending.iter().any(|p| {
                p.status.is_none()
                    && partitions.is_none_or(|set| p.offsets.iter().any(|(tp, _)| set.contains(tp)))
            });
            if !open {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            self.wait((deadline - now).min(Duration::from_millis(100)));
        }
    }

    fn ack(&mut self, seq: u64, status: BatchStatus) {
        if let Some(p) = self.pending.iter_mut().find(|p| p.seq == seq) {
            p.status = Some(status);
        }
    }

    fn advance(&mut self) {
        while let Some(front) = self.pending.front() {
            let Some(status) = front.status else { break };
            let Some(done) = self.pending.pop_front() else {
                break;
            };
            for (tp, offset) in done.offsets {
                if status != BatchStatus::Delivered {
                    self.ready.remove(&tp);
                    self.pinned.insert(tp);
                } else if !self.pinned.contains(&tp) {
                    self.ready.insert(tp, offset + 1);
                }
            }
        }
    }

    /// Takes what may be committed since the last call: per partition, the next
    /// offset to read.
    pub fn take_ready(&mut self) -> Vec<(Partition, i64)> {
        self.ready.drain().collect()
    }

    /// Forgets `partitions` (revoked): their open batches no longer move anything,
    /// and their pins are lifted for a later assignment.
    pub fn forget(&mut self, partitions: &HashSet<Partition>) {
        for p in &mut self.pending {
            p.offsets.retain(|(tp, _)| !partitions.contains(tp));
        }
        self.pinned.retain(|tp| !partitions.contains(tp));
        self.ready.retain(|tp, _| !partitions.contains(tp));
    }

    /// Batches sent and not yet answered.
    pub fn open(&self) -> usize {
        self.pending.iter().filter(|p| p.status.is_none()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> Partition {
        (Arc::from("t"), p)
    }

    #[test]
    fn offsets_move_in_order_and_a_failure_pins_its_partition() {
        let mut o = Offsets::default();
        for (seq, offsets) in [
            (0, vec![(tp(0), 9), (tp(1), 4)]),
            (1, vec![(tp(0), 19)]),
            (2, vec![(tp(1), 9)]),
        ] {
            o.pending.push_back(Pending {
                seq,
                offsets,
                status: None,
            });
        }
        // The second answered first: nothing moves past the first.
        o.ack(1, BatchStatus::Delivered);
        o.advance();
        assert!(o.take_ready().is_empty());
        o.ack(0, BatchStatus::Delivered);
        o.advance();
        let mut ready = o.take_ready();
        ready.sort();
        assert_eq!(ready, vec![(tp(0), 20), (tp(1), 5)]);
        // A failed batch pins partition 1: nothing of it is committed any more.
        o.ack(2, BatchStatus::Errored);
        o.advance();
        assert!(o.take_ready().is_empty());
        o.pending.push_back(Pending {
            seq: 3,
            offsets: vec![(tp(1), 30)],
            status: Some(BatchStatus::Delivered),
        });
        o.advance();
        assert!(o.take_ready().is_empty());
        // Until it is revoked and assigned again.
        o.forget(&[tp(1)].into_iter().collect());
        o.pending.push_back(Pending {
            seq: 4,
            offsets: vec![(tp(1), 40)],
            status: Some(BatchStatus::Delivered),
        });
        o.advance();
        assert_eq!(o.take_ready(), vec![(tp(1), 41)]);
    }
}
