//! Which offsets a Kafka source may commit: only those of events delivered end to end.
//! Each batch sent carries a notifier; answers arrive in any order, and offsets move
//! over the answered batches at the front of the queue only, in order, so a committed
//! offset never passes a message whose delivery is still open (as the file source's
//! checkpoints). A partition whose batch failed is pinned: nothing more of it is
//! committed until it is assigned anew, when it is read again from the last commit.

use crate::event::{BatchNotifier, BatchStatus, Event};
use crate::sources::util::acks::OrderedAcks;
use std::collections::{HashMap, HashSet};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A topic and partition.
pub type Partition = (Arc<str>, i32);

/// See the module documentation.
pub struct Offsets {
    /// Batches sent, in order, with the last offset each holds per partition.
    pending: OrderedAcks<Partition, i64>,
    acks_tx: mpsc::Sender<(u64, BatchStatus)>,
    acks_rx: mpsc::Receiver<(u64, BatchStatus)>,
    /// What may be committed, by partition: the next offset to read.
    ready: HashMap<Partition, i64>,
}

impl Default for Offsets {
    fn default() -> Self {
        let (acks_tx, acks_rx) = mpsc::channel();
        Self {
            pending: OrderedAcks::default(),
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
        let seq = self.pending.push(offsets);
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
            self.pending.answer(seq, status);
        }
        let ready = &mut self.ready;
        // A failed batch pins its partition, and what was ready for it is not
        // committed either: it would pass the failed events.
        let mut failed: Vec<Partition> = Vec::new();
        self.pending.advance(
            |tp, offset| {
                ready.insert(tp, offset + 1);
            },
            |tp| failed.push(tp.clone()),
        );
        for tp in failed {
            self.ready.remove(&tp);
        }
    }

    /// Waits up to `timeout` for one more answer, then moves offsets. False when none
    /// came.
    pub fn wait(&mut self, timeout: Duration) -> bool {
        match self.acks_rx.recv_timeout(timeout) {
            Ok((seq, status)) => {
                self.pending.answer(seq, status);
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
            let open = match partitions {
                Some(set) => self
                    .pending
                    .is_open(Some(&|tp: &Partition| set.contains(tp))),
                None => self.pending.is_open(None),
            };
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

    /// Takes what may be committed since the last call: per partition, the next
    /// offset to read.
    pub fn take_ready(&mut self) -> Vec<(Partition, i64)> {
        self.ready.drain().collect()
    }

    /// Forgets `partitions` (revoked): their open batches no longer move anything,
    /// and their pins are lifted for a later assignment.
    pub fn forget(&mut self, partitions: &HashSet<Partition>) {
        self.pending.forget(|tp| partitions.contains(tp));
        self.ready.retain(|tp, _| !partitions.contains(tp));
    }

    /// Batches sent and not yet answered.
    pub fn open(&self) -> usize {
        self.pending.open()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(p: i32) -> Partition {
        (Arc::from("t"), p)
    }

    #[test]
    fn ready_offsets_are_the_next_to_read_and_a_failure_withholds_its_partition() {
        let mut o = Offsets::default();
        let a = o.pending.push(vec![(tp(0), 9), (tp(1), 4)]);
        let b = o.pending.push(vec![(tp(1), 9)]);
        o.acks_tx.send((a, BatchStatus::Delivered)).unwrap();
        o.acks_tx.send((b, BatchStatus::Errored)).unwrap();
        o.collect();
        // Partition 1's batch failed: its earlier delivered offset is not committed
        // either, so the failed events are read again.
        assert_eq!(o.take_ready(), vec![(tp(0), 10)]);
        let c = o.pending.push(vec![(tp(1), 20)]);
        o.acks_tx.send((c, BatchStatus::Delivered)).unwrap();
        o.collect();
        assert!(o.take_ready().is_empty(), "pinned until revoked");
        o.forget(&[tp(1)].into_iter().collect());
        let d = o.pending.push(vec![(tp(1), 30)]);
        o.acks_tx.send((d, BatchStatus::Delivered)).unwrap();
        o.collect();
        assert_eq!(o.take_ready(), vec![(tp(1), 31)]);
    }
}
