//! Acknowledgements and checkpoints of the file source: each batch sent carries a
//! notifier; answers arrive in any order, and checkpoints move over the answered batches
//! at the front of the queue only, in order, so a checkpoint never passes a line whose
//! delivery is still open. A file whose batch failed is pinned: its checkpoint stays
//! until restart, which re-reads and re-sends. Checkpoints are written at most once a
//! second, and at shutdown after waiting (within `shutdown_timeout_secs`) for the answers.

use super::checkpoint::Checkpoints;
use super::tail::FileId;
use super::PROVISIONAL;
use crate::event::{BatchNotifier, BatchStatus, Event};
use crate::internal_events::failures::CheckpointFailed;
use crate::internal_events::names;
use crate::internal_events::Reporter;
use crate::sources::util::acks::OrderedAcks;
use crate::topology::component::SourceContext;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// See the module documentation.
pub(super) struct Delivery {
    /// Where each file's delivered lines end, as on disk under `data_dir`.
    pub(super) checkpoints: Checkpoints,
    /// Batches sent, in order, with the offset each reaches per file; a file whose
    /// delivery failed is pinned there until restart.
    pending: OrderedAcks<FileId, (u64, PathBuf)>,
    acks_tx: mpsc::UnboundedSender<(u64, BatchStatus)>,
    acks_rx: mpsc::UnboundedReceiver<(u64, BatchStatus)>,
    writes: metrics::Counter,
    errors: Reporter<CheckpointFailed>,
}

impl Delivery {
    /// Loads the checkpoints under `dir`; a corrupt file is reported and set aside.
    /// Loads the checkpoints in `dir`; with `ignore`, starts from none (the file is
    /// overwritten by the first checkpoint write).
    pub(super) fn load(dir: &Path, cx: &SourceContext, ignore: bool) -> Self {
        let (mut checkpoints, problem) = Checkpoints::load(dir);
        if ignore {
            checkpoints.clear();
        }
        let errors = cx.metrics.reporter::<CheckpointFailed>();
        if let Some(p) = problem {
            errors.emit(|| p);
        }
        let (acks_tx, acks_rx) = mpsc::unbounded_channel();
        Self {
            checkpoints,
            pending: OrderedAcks::default(),
            acks_tx,
            acks_rx,
            writes: cx.metrics.counter(names::CHECKPOINT_WRITES),
            errors,
        }
    }

    /// Attaches a notifier to `batch` whose answer will move the checkpoints of the
    /// files to `offsets`.
    pub(super) fn track(&mut self, batch: &mut [Event], offsets: BTreeMap<FileId, (u64, PathBuf)>) {
        let rx = BatchNotifier::attach(batch);
        let seq = self.pending.push(offsets.into_iter().collect());
        let tx = self.acks_tx.clone();
        tokio::spawn(async move {
            // A dropped notifier without an answer means the events were lost.
            let status = rx.await.unwrap_or(BatchStatus::Errored);
            let _ = tx.send((seq, status));
        });
    }

    /// Takes every answer that has arrived and moves the checkpoints.
    pub(super) fn collect(&mut self) {
        while let Ok((seq, status)) = self.acks_rx.try_recv() {
            self.ack(seq, status);
        }
        self.advance();
    }

    /// Waits for the next answer (for the idle loop's `select!`); never returns `None`
    /// while the source holds its own sender.
    pub(super) async fn answered(&mut self) -> Option<(u64, BatchStatus)> {
        self.acks_rx.recv().await
    }

    /// Records an answer.
    pub(super) fn ack(&mut self, seq: u64, status: BatchStatus) {
        self.pending.answer(seq, status);
    }

    /// Moves checkpoints over the answered batches at the front, in order.
    fn advance(&mut self) {
        let checkpoints = &mut self.checkpoints;
        self.pending.advance(
            |id, (offset, path)| {
                if !id.starts_with(PROVISIONAL) {
                    checkpoints.set(&id, offset, &path);
                }
            },
            |_| {},
        );
    }

    /// Whether checkpoints changed since they were last written.
    pub(super) fn is_dirty(&self) -> bool {
        self.checkpoints.is_dirty()
    }

    /// Writes the checkpoints if they changed (atomically: temp file, fsync, rename).
    pub(super) fn write(&mut self) {
        match self.checkpoints.flush() {
            Ok(true) => self.writes.increment(1),
            Ok(false) => {}
            Err(e) => self
                .errors
                .emit(|| format!("Writing checkpoints failed: {e}")),
        }
    }

    /// At shutdown: waits up to `wait` for the answers still open, then writes the
    /// checkpoints over everything delivered.
    pub(super) async fn finish(&mut self, wait: Duration) {
        let deadline = Instant::now() + wait;
        while !self.pending.is_empty() && Instant::now() < deadline {
            tokio::select! {
                Some((seq, status)) = self.acks_rx.recv() => self.ack(seq, status),
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
            self.advance();
        }
        self.write();
    }
}
