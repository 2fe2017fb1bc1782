//! One component's output feeding every component that lists it in `inputs`. Each
//! downstream buffer is offered the batch at once; only the full ones are waited on, so
//! a slow sink never delays a sibling that has room, and `drop_newest` sinks never wait.
//!
//! The set of downstream buffers sits behind an [`Edges`] cell shared by every clone of
//! the output (each TCP connection holds one) and by the topology, which swaps it on a
//! reload: a send takes the current set once per batch, lock-free, so rewiring never
//! pauses the sender and a send already under way finishes into the set it started with.

use super::buffer::{BufferSender, Closed, TrySend};
use crate::event::Batch;
use crate::internal_events::ComponentMetrics;
use arc_swap::ArcSwap;
use metrics::Counter;
use std::sync::Arc;
use std::time::Duration;

/// The downstream buffers of one output (`ID` or `ID.name`), swapped whole on a reload.
#[derive(Debug, Default)]
pub struct Edges(ArcSwap<Vec<BufferSender>>);

impl Edges {
    /// A cell feeding `outputs`.
    pub fn new(outputs: Vec<BufferSender>) -> Arc<Self> {
        Arc::new(Self(ArcSwap::from_pointee(outputs)))
    }

    /// Points the output at `outputs` from its next batch on.
    pub fn replace(&self, outputs: Vec<BufferSender>) {
        self.0.store(Arc::new(outputs));
    }
}

/// The sending side of a component's output. Cheap to clone: each TCP connection of a
/// source holds its own copy and sends straight into the downstream buffers.
#[derive(Clone, Debug)]
pub struct Fanout {
    edges: Arc<Edges>,
    sent_events: Counter,
    /// For an output nothing consumes: what it is given is dropped here, counted.
    unconsumed: Counter,
}

impl Fanout {
    /// An output that feeds `outputs` and counts what it passes on as sent by the
    /// component of `metrics`. An output no component lists in `inputs` (a route branch
    /// nobody reads) drops what it is given and counts it as discarded on purpose
    /// (`intentional="true"`): the operator chose not to consume it.
    pub fn new(outputs: Vec<BufferSender>, metrics: &ComponentMetrics) -> Self {
        Self::on(Edges::new(outputs), metrics)
    }

    /// An output over a cell the topology keeps, to rewire it on a reload.
    pub fn on(edges: Arc<Edges>, metrics: &ComponentMetrics) -> Self {
        Self {
            edges,
            sent_events: metrics.sent_events.clone(),
            unconsumed: metrics.discarded_intentional.clone(),
        }
    }

    /// Passes a batch to every downstream buffer, waiting only where a buffer is full
    /// and blocks. Fails only when every downstream component has stopped.
    pub async fn send(&self, batch: Batch) -> Result<(), Closed> {
        if batch.is_empty() {
            return Ok(());
        }
        let n = batch.len() as u64;
        let outputs = self.edges.0.load_full();
        if outputs.is_empty() {
            self.unconsumed.increment(n);
            return Ok(());
        }
        let mut waiting: Vec<(usize, Batch)> = Vec::new();
        let mut open = 0usize;
        let last = outputs.len().saturating_sub(1);
        let mut batch = Some(batch);
        for (i, out) in outputs.iter().enumerate() {
            let copy = if i == last {
                match batch.take() {
                    Some(b) => b,
                    None => break,
                }
            } else {
                match &batch {
                    Some(b) => b.clone(),
                    None => break,
                }
            };
            match out.try_send(copy) {
                TrySend::Done => open += 1,
                TrySend::Full(b) => waiting.push((i, b)),
                TrySend::Closed => {}
            }
        }
        for (i, b) in waiting {
            if outputs[i].send(b).await.is_ok() {
                open += 1;
            }
        }
        if open == 0 {
            return Err(Closed);
        }
        self.sent_events.increment(n);
        Ok(())
    }

    /// Passes a batch on only if every blocking buffer has room for it within `wait`;
    /// otherwise hands it back untouched. For sources that can tell their client to come
    /// back later (HTTP 503) instead of holding the request: all sinks get the batch, or
    /// none does, so a retried request never duplicates events in some sinks.
    pub async fn send_or_refuse(&self, batch: Batch, wait: Duration) -> Result<(), Refused> {
        if batch.is_empty() {
            return Ok(());
        }
        let n = batch.len();
        let outputs = self.edges.0.load_full();
        if outputs.is_empty() {
            self.unconsumed.increment(n as u64);
            return Ok(());
        }
        let deadline = tokio::time::Instant::now() + wait;
        let mut reserved = Vec::with_capacity(outputs.len());
        for out in outputs.iter() {
            if !out.blocks() {
                reserved.push(None);
                continue;
            }
            match tokio::time::timeout_at(deadline, out.reserve(n)).await {
                Ok(Ok(r)) => reserved.push(Some(r)),
                Ok(Err(Closed)) => reserved.push(None),
                // The reservations made so far are dropped, which frees their room.
                Err(_) => return Err(Refused::Full(batch)),
            }
        }
        let mut open = 0usize;
        let last = outputs.len().saturating_sub(1);
        let mut batch = Some(batch);
        for (i, (out, r)) in outputs.iter().zip(reserved).enumerate() {
            let copy = match (i == last, &batch) {
                (true, _) => batch.take(),
                (false, Some(b)) => Some(b.clone()),
                (false, None) => None,
            };
            let Some(copy) = copy else { break };
            let ok = match r {
                Some(r) => out.send_reserved(copy, r).is_ok(),
                None => matches!(out.try_send(copy), TrySend::Done),
            };
            open += usize::from(ok);
        }
        if open == 0 {
            return Err(Refused::Closed);
        }
        self.sent_events.increment(n as u64);
        Ok(())
    }
}

/// Why [`Fanout::send_or_refuse`] did not take a batch.
#[derive(Debug)]
pub enum Refused {
    /// A blocking buffer stayed full; the batch comes back.
    Full(Batch),
    /// Every downstream component has stopped.
    Closed,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::internal_events::{ComponentKind, ComponentLabels};
    use crate::topology::buffer::test_util::{batch, make};
    use crate::topology::buffer::WhenFull;

    fn metrics(id: &str) -> ComponentMetrics {
        ComponentMetrics::new(ComponentLabels {
            id: id.into(),
            kind: ComponentKind::Sink,
            type_name: "test",
        })
    }

    #[tokio::test]
    async fn a_full_sink_never_delays_a_sibling_with_room() {
        let (full_tx, mut full_rx) = make(1, WhenFull::Block);
        let (room_tx, mut room_rx) = make(100, WhenFull::Block);
        full_tx.send(batch(1)).await.unwrap();
        let out = Fanout::new(vec![full_tx, room_tx], &metrics("src"));
        let pending = tokio::spawn(async move { out.send(batch(3)).await });
        // The sibling has the batch while the send still waits on the full buffer.
        assert_eq!(room_rx.recv().await.map(|b| b.len()), Some(3));
        assert!(!pending.is_finished());
        assert_eq!(full_rx.recv().await.map(|b| b.len()), Some(1));
        assert!(pending.await.unwrap().is_ok());
        assert_eq!(full_rx.recv().await.map(|b| b.len()), Some(3));
    }

    #[tokio::test]
    async fn drop_newest_sinks_never_wait_and_refusal_is_all_or_nothing() {
        let (drop_tx, _drop_rx) = make(1, WhenFull::DropNewest);
        let (block_tx, mut block_rx) = make(2, WhenFull::Block);
        let out = Fanout::new(vec![drop_tx, block_tx], &metrics("src"));
        out.send(batch(2)).await.unwrap();
        // The blocking buffer is full: the batch comes back whole, and the drop_newest
        // sibling does not get a copy that a retried request would duplicate.
        match out
            .send_or_refuse(batch(1), Duration::from_millis(20))
            .await
        {
            Err(Refused::Full(b)) => assert_eq!(b.len(), 1),
            other => panic!("{other:?}"),
        }
        assert_eq!(block_rx.recv().await.map(|b| b.len()), Some(2));
        assert!(out
            .send_or_refuse(batch(1), Duration::from_millis(20))
            .await
            .is_ok());
        assert_eq!(block_rx.recv().await.map(|b| b.len()), Some(1));
    }

    #[tokio::test]
    async fn an_output_nobody_reads_discards_and_one_whose_readers_stopped_fails() {
        let out = Fanout::new(Vec::new(), &metrics("src"));
        assert!(out.send(batch(5)).await.is_ok());
        let (tx, rx) = make(10, WhenFull::Block);
        drop(rx);
        let out = Fanout::new(vec![tx], &metrics("src"));
        assert!(out.send(batch(1)).await.is_err());
    }
}
