//! Pieces every sink shares: encoders, templates, a home for blocking I/O, and the
//! delivery machinery of network sinks (batching, the HTTP client, retries with backoff,
//! circuit breakers, and the driver that runs requests with bounded concurrency).

pub mod batch;
pub mod circuit;
pub mod dead_letter;
pub mod driver;
pub mod encoding;
pub mod http_client;
pub mod notification;
pub mod proxy;
pub mod retry;
pub mod runner;
pub mod template;

pub use crate::topology::on_own_thread;

/// Frees spent batches on a helper thread so a sink's own thread can go on encoding.
/// Bounded: when the helper is behind, the caller frees the batch itself, so garbage can
/// never pile up (an unbounded version raised peak RSS from 64 to 110 MiB).
#[derive(Debug)]
pub struct Dropper {
    tx: Option<std::sync::mpsc::SyncSender<Vec<crate::event::Batch>>>,
}

impl Dropper {
    /// Starts the helper thread (named after the sink); without a thread, frees inline.
    pub fn new(name: &str) -> Self {
        Self::with_depth(name, 1)
    }

    /// As [`Dropper::new`], with up to `depth` hand-overs waiting: for a component
    /// whose own work per event is small next to freeing it (the `alert` transform),
    /// so a helper briefly behind does not put the freeing back on its thread.
    pub fn with_depth(name: &str, depth: usize) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<crate::event::Batch>>(depth.max(1));
        let spawned = std::thread::Builder::new()
            .name(format!("drop-{name}"))
            .spawn(move || while rx.recv().is_ok() {});
        Self {
            tx: spawned.ok().map(|_| tx),
        }
    }

    /// Hands `batches` to the helper, or frees them here when it is busy.
    pub fn drop_batches(&self, batches: Vec<crate::event::Batch>) {
        if let Some(tx) = &self.tx {
            // On `Full` or `Disconnected` the batches come back and are freed here.
            let _ = tx.try_send(batches);
        }
    }
}
