//! One component's output feeding every component that lists it in `inputs`. Each
//! downstream buffer is offered the batch at once; only the full ones are waited on, so
//! a slow sink never delays a sibling that has room, and `drop_newest` sinks never wait.

use super::buffer::{BufferSender, Closed, TrySend};
use crate::event::Batch;
use metrics::Counter;
use std::time::Duration;

/// The sending side of a component's output. Cheap to clone: each TCP connection of a
/// source holds its own copy and sends straight into the downstream buffers.
#[derive(Clone, Debug)]
pub struct Fanout {
    outputs: Vec<BufferSender>,
    sent_events: Counter,
}

impl Fanout {
    /// An output that feeds `outputs` and counts what it passes on in `sent_events`.
    pub fn new(outputs: Vec<BufferSender>, sent_events: Counter) -> Self {
        Self {
            outputs,
            sent_events,
        }
    }

    /// Passes a batch to every downstream buffer, waiting only where a buffer is full
    /// and blocks. Fails only when every downstream component has stopped.
    pub async fn send(&self, batch: Batch) -> Result<(), Closed> {
        if batch.is_empty() {
            return Ok(());
        }
        let n = batch.len() as u64;
        let mut waiting: Vec<(usize, Batch)> = Vec::new();
        let mut open = 0usize;
        let last = self.outputs.len().saturating_sub(1);
        let mut batch = Some(batch);
        for (i, out) in self.outputs.iter().enumerate() {
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
            if self.outputs[i].send(b).await.is_ok() {
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
        let deadline = tokio::time::Instant::now() + wait;
        let mut reserved = Vec::with_capacity(self.outputs.len());
        for out in &self.outputs {
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
        let last = self.outputs.len().saturating_sub(1);
        let mut batch = Some(batch);
        for (i, (out, r)) in self.outputs.iter().zip(reserved).enumerate() {
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
