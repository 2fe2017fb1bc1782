//! The input buffer in front of every sink (and transform): a queue bounded in *events*,
//! not batches, so `buffer.max_events` means what it says whatever the batch sizes are.
//! A semaphore holds the room; the queue itself never grows past it. A sink's buffer may
//! instead live on disk (`disk.rs`), behind the same sender and receiver types.

mod disk;

use crate::event::Batch;
use crate::internal_events::names;
use crate::internal_events::ComponentMetrics;
use metrics::Gauge;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::sync::{mpsc, Semaphore, TryAcquireError};

/// Room in a sink's buffer unless the config says otherwise: two full source batches.
/// Larger than Vector's 500 because one batch holds up to 1000 events; not larger,
/// because measured on syslog TCP -> file, 5000 gave lower throughput (487k vs 606k
/// events/s) at nearly twice the peak RSS (92 vs 54 MiB).
pub const DEFAULT_MAX_EVENTS: usize = 2000;

/// `buffer` of a sink: how much may wait in front of it and what happens when it is full.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BufferConfig {
    /// Where the buffer lives: `memory` (default) or `disk`.
    #[serde(default, rename = "type")]
    pub kind: BufferType,
    /// Events that may wait before a memory buffer counts as full.
    #[serde(default = "default_max_events")]
    pub max_events: usize,
    /// Bytes a disk buffer may hold on disk before it counts as full: at least 256 MiB
    /// (268435488, Vector's minimum), default 1 GiB.
    #[serde(default)]
    pub max_size: Option<u64>,
    /// A disk buffer `fsync`s after every write unless this is set: then at most every
    /// this many milliseconds, and a source hears its events are kept only after the
    /// sync that covers them. Faster; a power loss can take back up to this much.
    #[serde(default)]
    pub sync_interval_ms: Option<u64>,
    /// `block` pushes back on the sources; `drop_newest` drops what does not fit and counts it.
    #[serde(default)]
    pub when_full: WhenFull,
}

impl BufferConfig {
    /// Problems `validate` reports, as (key, message).
    pub fn issues(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        match self.kind {
            BufferType::Memory => {
                if self.max_size.is_some() {
                    out.push((
                        "buffer.max_size",
                        "applies to `type = \"disk\"` only; a memory buffer is sized by max_events"
                            .to_string(),
                    ));
                }
                if self.sync_interval_ms.is_some() {
                    out.push((
                        "buffer.sync_interval_ms",
                        "applies to `type = \"disk\"` only".to_string(),
                    ));
                }
            }
            BufferType::Disk => {
                if let Some(n) = self.max_size {
                    if n < disk::MIN_MAX_SIZE {
                        out.push((
                            "buffer.max_size",
                            format!(
                                "{n} is below the minimum of {} bytes (256 MiB) for a disk buffer",
                                disk::MIN_MAX_SIZE
                            ),
                        ));
                    }
                }
                if self.max_events != DEFAULT_MAX_EVENTS {
                    out.push(("buffer.max_events", "applies to `type = \"memory\"` only; a disk buffer is sized by max_size (bytes)".to_string()));
                }
                if self.sync_interval_ms == Some(0) {
                    out.push((
                        "buffer.sync_interval_ms",
                        "must be at least 1; leave it out to fsync after every write".to_string(),
                    ));
                }
            }
        }
        out
    }
}

fn default_max_events() -> usize {
    DEFAULT_MAX_EVENTS
}

impl Default for BufferConfig {
    fn default() -> Self {
        Self {
            kind: BufferType::Memory,
            max_events: DEFAULT_MAX_EVENTS,
            max_size: None,
            sync_interval_ms: None,
            when_full: WhenFull::Block,
        }
    }
}

/// Buffer storage.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BufferType {
    /// In memory: fast, lost on a crash.
    #[default]
    Memory,
    /// On disk under `data_dir/buffer/<sink id>/`: survives crashes and restarts.
    Disk,
}

/// What a full buffer does with new events.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// Wait for room: pressure reaches the sources.
    #[default]
    Block,
    /// Drop the events that do not fit, counted as discarded; siblings never wait.
    DropNewest,
}

/// The writing end, cloned into every upstream fanout.
#[derive(Clone, Debug)]
pub struct BufferSender {
    tx: mpsc::UnboundedSender<(Batch, u32)>,
    room: Arc<Semaphore>,
    max_events: u32,
    when_full: WhenFull,
    depth: Gauge,
    metrics: ComponentMetrics,
}

/// A sender that does not keep its buffer open: what a disk buffer keeps so a sink
/// rebuilt by a reload can join it, while the buffer still closes once every real
/// sender is gone.
#[derive(Clone, Debug)]
struct WeakBufferSender {
    tx: mpsc::WeakUnboundedSender<(Batch, u32)>,
    room: Arc<Semaphore>,
    max_events: u32,
    when_full: WhenFull,
    depth: Gauge,
    metrics: ComponentMetrics,
}

impl WeakBufferSender {
    fn upgrade(&self) -> Option<BufferSender> {
        Some(BufferSender {
            tx: self.tx.upgrade()?,
            room: self.room.clone(),
            max_events: self.max_events,
            when_full: self.when_full,
            depth: self.depth.clone(),
            metrics: self.metrics.clone(),
        })
    }
}

/// The reading end, owned by the sink's task.
#[derive(Debug)]
pub struct BufferReceiver {
    rx: mpsc::UnboundedReceiver<(Batch, u32)>,
    /// For a disk buffer: the buffer, and the reader's output once this receiver holds
    /// it (`rx` is then an empty, closed channel).
    disk: Option<DiskInput>,
    room: Arc<Semaphore>,
    max: u32,
    depth: Gauge,
    held: HeldEvents,
    /// The consumer's `received_events`, counted here so no sink or transform can forget.
    received: metrics::Counter,
    /// The consumer's own shutdown: once cancelled, `recv` hands out what is queued and
    /// then ends, as if every sender had gone, so one component can be stopped (on
    /// reload) without stopping its sources.
    stop: tokio_util::sync::CancellationToken,
}

/// Events a sink took out of its buffer but has not finished with (gathered into
/// batches, in requests being retried). Counted so a shutdown that times out reports
/// them as undelivered too, not only what still sat in the buffer.
#[derive(Clone, Debug, Default)]
pub struct HeldEvents(Arc<std::sync::atomic::AtomicU64>);

impl HeldEvents {
    /// The sink took `n` events on.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// The sink is done with `n` events (delivered or given up).
    pub fn sub(&self, n: u64) {
        self.0.fetch_sub(n, std::sync::atomic::Ordering::Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The outcome of a send that did not wait.
pub enum TrySend {
    /// Accepted whole (or the part that fit, the rest counted as dropped).
    Done,
    /// The buffer is full and blocks; the batch comes back for an awaited send.
    Full(Batch),
    /// The sink is gone.
    Closed,
}

/// Makes a buffer for the component whose `metrics` are given: the one constructor,
/// whatever `buffer.type` says. Senders and the receiver are the same types for every
/// kind of buffer, so fanout, sinks and the shutdown report never see which one it is.
/// A disk buffer lives under `data_dir`; opening it can fail (permissions, another
/// process using it).
pub fn buffer(
    config: &BufferConfig,
    metrics: ComponentMetrics,
    data_dir: &std::path::Path,
) -> Result<(BufferSender, BufferReceiver), crate::topology::component::BuildError> {
    match config.kind {
        BufferType::Memory => Ok(memory_buffer(config, metrics)),
        BufferType::Disk => {
            let id = metrics.labels.id.clone();
            disk::open(
                data_dir,
                &id,
                &disk::DiskOptions {
                    max_size: config.max_size.unwrap_or(disk::DEFAULT_MAX_SIZE),
                    sync_interval: config
                        .sync_interval_ms
                        .map(std::time::Duration::from_millis),
                    when_full: config.when_full,
                },
                metrics,
            )
        }
    }
}

fn memory_buffer(
    config: &BufferConfig,
    metrics: ComponentMetrics,
) -> (BufferSender, BufferReceiver) {
    metrics
        .gauge(names::BUFFER_MAX_EVENTS)
        .set(config.max_events.max(1) as f64);
    let received = metrics.received_events.clone();
    memory_channel(config.max_events, config.when_full, metrics, received)
}

/// The memory queue in front of a disk buffer's writer: events are counted as received
/// by the sink when it reads them from disk, not here.
fn memory_queue(
    max_events: usize,
    when_full: WhenFull,
    metrics: ComponentMetrics,
) -> (BufferSender, BufferReceiver) {
    memory_channel(max_events, when_full, metrics, metrics::Counter::noop())
}

fn memory_channel(
    max_events: usize,
    when_full: WhenFull,
    metrics: ComponentMetrics,
    received: metrics::Counter,
) -> (BufferSender, BufferReceiver) {
    let max = max_events.clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize)) as u32;
    let (tx, rx) = mpsc::unbounded_channel();
    let room = Arc::new(Semaphore::new(max as usize));
    let depth = metrics.gauge(names::BUFFER_EVENTS);
    (
        BufferSender {
            tx,
            room: room.clone(),
            max_events: max,
            when_full,
            depth: depth.clone(),
            metrics,
        },
        BufferReceiver {
            rx,
            disk: None,
            room,
            max,
            depth,
            held: HeldEvents::default(),
            received,
            stop: tokio_util::sync::CancellationToken::new(),
        },
    )
}

/// A receiver's hold on a disk buffer.
struct DiskInput {
    buffer: Arc<disk::DiskBuffer>,
    /// The takeover number of the batches meant for this receiver, once it claimed the
    /// reader's output (at its first `recv`, or earlier through `claim`).
    mine: std::sync::OnceLock<u64>,
    /// The reader's output while this receiver holds it.
    output: Option<HeldOutput>,
}

/// The reader's output, held exclusively.
type HeldOutput = tokio::sync::OwnedMutexGuard<mpsc::Receiver<(u64, Batch)>>;

impl std::fmt::Debug for DiskInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskInput")
            .field("sink", &self.buffer.id())
            .finish()
    }
}

impl BufferReceiver {
    fn disk(buffer: Arc<disk::DiskBuffer>, metrics: ComponentMetrics) -> Self {
        let (_, mut rx) = mpsc::unbounded_channel();
        rx.close();
        Self {
            rx,
            disk: Some(DiskInput {
                buffer,
                mine: std::sync::OnceLock::new(),
                output: None,
            }),
            room: Arc::new(Semaphore::new(0)),
            max: 0,
            depth: metrics.gauge(names::BUFFER_EVENTS),
            held: HeldEvents::default(),
            received: metrics.received_events.clone(),
            stop: tokio_util::sync::CancellationToken::new(),
        }
    }

    /// The next batch from the disk: waits for this receiver's turn (a sink rebuilt by a
    /// reload waits for its old instance to let go), then for the reader. Stopping ends
    /// it at once: what is on disk stays there for the next reader.
    async fn recv_disk(&mut self) -> Option<Batch> {
        let stop = self.stop.clone();
        let input = self.disk.as_mut()?;
        if stop.is_cancelled() {
            // Let go at once, so a successor can take over.
            input.output = None;
            return None;
        }
        let mine = *input.mine.get_or_init(|| input.buffer.take_over());
        if input.output.is_none() {
            let out = input.buffer.output();
            tokio::select! {
                g = out.lock_owned() => input.output = Some(g),
                _ = stop.cancelled() => return None,
            }
        }
        let out = input.output.as_mut()?;
        let batch = loop {
            tokio::select! {
                b = out.recv() => match b {
                    Some((t, b)) if t == mine => break b,
                    // Read for an earlier holder; read again for this one.
                    Some(_) => continue,
                    None => return None,
                },
                _ = stop.cancelled() => {
                    input.output = None;
                    return None;
                }
            }
        };
        self.received.increment(batch.len() as u64);
        Some(batch)
    }

    /// For a disk buffer: makes this receiver the one the reader works for from now
    /// on, before the instance it replaces is stopped, so whatever that instance held
    /// and did not deliver is read again for this one (and its answers for it no
    /// longer count). Nothing for a memory buffer.
    pub fn claim(&self) {
        if let Some(d) = &self.disk {
            d.mine.get_or_init(|| d.buffer.take_over());
        }
    }
}

#[cfg(test)]
impl BufferReceiver {
    /// For a disk buffer: records handed out directly, from the tail and from disk.
    fn disk_handed(&self) -> Option<[u64; 3]> {
        self.disk.as_ref().map(|d| d.buffer.handed())
    }
}

/// Waits for the disk buffers to save where delivery got to, before the process exits.
pub async fn settle_disk_buffers() {
    disk::settle(std::time::Duration::from_secs(5)).await;
}

impl BufferSender {
    fn downgrade(&self) -> WeakBufferSender {
        WeakBufferSender {
            tx: self.tx.downgrade(),
            room: self.room.clone(),
            max_events: self.max_events,
            when_full: self.when_full,
            depth: self.depth.clone(),
            metrics: self.metrics.clone(),
        }
    }

    /// Permits a batch takes: its length, but never more than the whole buffer, so a
    /// batch larger than `max_events` still fits into an empty buffer.
    fn cost(&self, batch: &Batch) -> u32 {
        (batch.len().min(u32::MAX as usize) as u32).min(self.max_events)
    }

    /// Sends without waiting. With `drop_newest` this never returns `Full`.
    pub fn try_send(&self, mut batch: Batch) -> TrySend {
        if batch.is_empty() {
            return TrySend::Done;
        }
        let cost = self.cost(&batch);
        match self.room.clone().try_acquire_many_owned(cost) {
            Ok(p) => {
                p.forget();
                self.enqueue(batch, cost)
            }
            Err(TryAcquireError::Closed) => TrySend::Closed,
            Err(TryAcquireError::NoPermits) => match self.when_full {
                WhenFull::Block => TrySend::Full(batch),
                WhenFull::DropNewest => {
                    // Keep what fits, count the rest: never wait on a full buffer.
                    let available = self.room.available_permits().min(cost as usize) as u32;
                    let fit = match self.room.clone().try_acquire_many_owned(available) {
                        Ok(p) if available > 0 => {
                            p.forget();
                            available
                        }
                        _ => 0,
                    };
                    let dropped = (batch.len() - fit as usize) as u64;
                    batch.truncate(fit as usize);
                    // They reached this component and it dropped them: received and
                    // discarded, so its events still add up.
                    self.metrics.received_events.increment(dropped);
                    self.metrics.discarded_unintentional.increment(dropped);
                    if fit == 0 {
                        TrySend::Done
                    } else {
                        self.enqueue(batch, fit)
                    }
                }
            },
        }
    }

    /// Sends, waiting for room when the buffer blocks. Errors only when the sink is gone.
    pub async fn send(&self, batch: Batch) -> Result<(), Closed> {
        match self.try_send(batch) {
            TrySend::Done => Ok(()),
            TrySend::Closed => Err(Closed),
            TrySend::Full(batch) => {
                let room = self.reserve(batch.len()).await?;
                self.send_reserved(batch, room)
            }
        }
    }

    /// Whether a full buffer makes its senders wait (`when_full = "block"`).
    pub fn blocks(&self) -> bool {
        self.when_full == WhenFull::Block
    }

    /// Waits for room for a batch of `events` without sending it yet: a source that must
    /// accept all or nothing (HTTP answers 503 instead) first reserves room in every
    /// buffer, and gives it back untouched if one stays full.
    pub async fn reserve(&self, events: usize) -> Result<Reservation, Closed> {
        let cost = (events.min(u32::MAX as usize) as u32).clamp(1, self.max_events);
        let permit = self
            .room
            .clone()
            .acquire_many_owned(cost)
            .await
            .map_err(|_| Closed)?;
        Ok(Reservation { permit })
    }

    /// Sends a batch into room reserved for it; never waits.
    pub fn send_reserved(&self, batch: Batch, reservation: Reservation) -> Result<(), Closed> {
        let cost = reservation.permit.num_permits() as u32;
        reservation.permit.forget();
        match self.enqueue(batch, cost) {
            TrySend::Closed => Err(Closed),
            _ => Ok(()),
        }
    }

    fn enqueue(&self, batch: Batch, cost: u32) -> TrySend {
        let n = batch.len();
        match self.tx.send((batch, cost)) {
            Ok(()) => {
                self.depth.increment(n as f64);
                TrySend::Done
            }
            Err(_) => TrySend::Closed,
        }
    }
}

/// Room held in a buffer for one batch; dropping it gives the room back.
#[derive(Debug)]
pub struct Reservation {
    permit: tokio::sync::OwnedSemaphorePermit,
}

/// The receiving component has stopped.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the downstream component has stopped")]
pub struct Closed;

/// Tells how many events wait in a buffer without holding it open.
#[derive(Debug)]
pub struct BufferProbe {
    room: Arc<Semaphore>,
    max: u32,
    held: HeldEvents,
    disk: Option<std::sync::Weak<disk::DiskBuffer>>,
}

impl BufferProbe {
    /// Events queued (as counted against `max_events`) plus those the sink holds; for a
    /// disk buffer, those on disk not yet answered for.
    pub fn queued(&self) -> u64 {
        if let Some(d) = &self.disk {
            return d.upgrade().map_or(0, |d| d.waiting());
        }
        (self.max as u64).saturating_sub(self.room.available_permits() as u64) + self.held.get()
    }

    /// Whether what waits is on disk, kept for the next start rather than lost.
    pub fn durable(&self) -> bool {
        self.disk.is_some()
    }

    /// Events only in memory, lost if the process stops now: all that `queued` counts
    /// for a memory buffer; for a disk buffer, those queued in front of the disk, not yet
    /// written (there are some only while the disk is full or the writer is behind).
    pub fn in_memory(&self) -> u64 {
        match &self.disk {
            Some(d) => d.upgrade().map_or(0, |d| d.in_memory()),
            None => self.queued(),
        }
    }
}

impl BufferReceiver {
    /// A probe for shutdown reports.
    pub fn probe(&self) -> BufferProbe {
        BufferProbe {
            room: self.room.clone(),
            max: self.max,
            held: self.held.clone(),
            disk: self.disk.as_ref().map(|d| Arc::downgrade(&d.buffer)),
        }
    }

    /// Where a sink that keeps events past `recv` (batching, retrying) counts them.
    pub fn held(&self) -> HeldEvents {
        self.held.clone()
    }

    /// The next batch, or `None` once every sender is gone (or the consumer was
    /// stopped) and the queue is empty. Taking a batch out is what counts it as received
    /// by the consuming component.
    pub async fn recv(&mut self) -> Option<Batch> {
        if self.disk.is_some() {
            return self.recv_disk().await;
        }
        let (batch, cost) = if self.stop.is_cancelled() {
            self.close_input();
            self.rx.recv().await?
        } else {
            tokio::select! {
                biased;
                b = self.rx.recv() => b?,
                _ = self.stop.cancelled() => {
                    self.close_input();
                    self.rx.recv().await?
                }
            }
        };
        self.release(&batch, cost);
        Some(batch)
    }

    /// Refuses new batches (senders see the component gone) while what is queued can
    /// still be taken out.
    fn close_input(&mut self) {
        self.room.close();
        self.rx.close();
    }

    /// Stops the consuming component alone: what is queued is still handed out, then
    /// `recv` ends. Senders see the buffer closed once this receiver is dropped.
    pub fn stop_token(&self) -> tokio_util::sync::CancellationToken {
        self.stop.clone()
    }

    /// The next batch if one is queued, without waiting: lets a sink gather what piled up.
    pub fn try_recv_now(&mut self) -> Option<Batch> {
        if let Some(d) = self.disk.as_mut() {
            let mine = *d.mine.get()?;
            let out = d.output.as_mut()?;
            if self.stop.is_cancelled() {
                return None;
            }
            let batch = loop {
                match out.try_recv().ok()? {
                    (t, b) if t == mine => break b,
                    _ => continue,
                }
            };
            self.received.increment(batch.len() as u64);
            return Some(batch);
        }
        let (batch, cost) = self.rx.try_recv().ok()?;
        self.release(&batch, cost);
        Some(batch)
    }

    fn release(&self, batch: &Batch, cost: u32) {
        self.received.increment(batch.len() as u64);
        self.depth.decrement(batch.len() as f64);
        self.room.add_permits(cost as usize);
    }
}

impl Drop for BufferReceiver {
    fn drop(&mut self) {
        // Wake senders waiting for room so they see the sink is gone instead of hanging.
        self.room.close();
    }
}

/// Batches and buffers for the tests of the buffer and of fanout.
#[cfg(test)]
pub(crate) mod test_util {
    use super::*;
    use crate::event::{EventMetadata, LogEvent, ObjectMap};
    use crate::internal_events::{ComponentKind, ComponentLabels};

    pub(crate) fn batch(n: usize) -> Batch {
        (0..n)
            .map(|_| {
                LogEvent::from_parts(
                    ObjectMap::new(),
                    EventMetadata::new("t", chrono::Utc::now()),
                )
                .into()
            })
            .collect()
    }

    pub(crate) fn make(max: usize, when_full: WhenFull) -> (BufferSender, BufferReceiver) {
        let m = ComponentMetrics::new(ComponentLabels {
            id: "t".into(),
            kind: ComponentKind::Sink,
            type_name: "test",
        });
        memory_buffer(
            &BufferConfig {
                kind: BufferType::Memory,
                max_events: max,
                when_full,
                ..Default::default()
            },
            m,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::{batch, make};
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn block_waits_for_room_then_delivers() {
        let (tx, mut rx) = make(10, WhenFull::Block);
        assert!(tx.send(batch(8)).await.is_ok());
        let pending = tokio::spawn({
            let tx = tx.clone();
            async move { tx.send(batch(5)).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !pending.is_finished(),
            "a full blocking buffer must make the sender wait"
        );
        assert_eq!(rx.recv().await.map(|b| b.len()), Some(8));
        assert!(matches!(pending.await, Ok(Ok(()))));
        assert_eq!(rx.recv().await.map(|b| b.len()), Some(5));
        assert_eq!(rx.probe().queued(), 0);
    }

    #[tokio::test]
    async fn drop_newest_keeps_what_fits_and_never_waits() {
        let (tx, mut rx) = make(10, WhenFull::DropNewest);
        assert!(matches!(tx.try_send(batch(7)), TrySend::Done));
        assert!(matches!(tx.try_send(batch(7)), TrySend::Done));
        assert!(matches!(tx.try_send(batch(7)), TrySend::Done));
        assert_eq!(rx.recv().await.map(|b| b.len()), Some(7));
        assert_eq!(rx.recv().await.map(|b| b.len()), Some(3));
        assert!(rx.try_recv_now().is_none());
    }

    #[tokio::test]
    async fn a_batch_larger_than_the_buffer_still_fits_an_empty_one() {
        let (tx, mut rx) = make(10, WhenFull::Block);
        assert!(tx.send(batch(25)).await.is_ok());
        assert_eq!(rx.recv().await.map(|b| b.len()), Some(25));
    }

    #[tokio::test]
    async fn a_stopped_consumer_gets_what_was_queued_then_the_end() {
        let (tx, mut rx) = make(100, WhenFull::Block);
        assert!(tx.send(batch(3)).await.is_ok());
        assert!(tx.send(batch(4)).await.is_ok());
        rx.stop_token().cancel();
        assert_eq!(rx.recv().await.map(|b| b.len()), Some(3));
        // New batches are refused once stopped; the queued ones still come out.
        assert!(tx.send(batch(5)).await.is_err());
        assert_eq!(rx.recv().await.map(|b| b.len()), Some(4));
        assert!(rx.recv().await.is_none());
        assert_eq!(rx.probe().queued(), 0);
    }

    #[tokio::test]
    async fn senders_waiting_on_a_dropped_sink_are_released() {
        let (tx, rx) = make(1, WhenFull::Block);
        assert!(tx.send(batch(1)).await.is_ok());
        let pending = tokio::spawn({
            let tx = tx.clone();
            async move { tx.send(batch(1)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(rx);
        assert!(matches!(pending.await, Ok(Err(Closed))));
    }
}
