//! Delivery tracking: a source that can wait for its events to be delivered (file tail,
//! HTTP with acknowledgements) attaches a [`BatchNotifier`]; every copy of an event that
//! fanout makes shares it, and the source learns the worst status once all copies are done.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// What happened to a batch of events, ordered from best to worst so copies can merge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum BatchStatus {
    /// The destination accepted every copy (or a filter dropped it on purpose).
    Delivered = 0,
    /// A transient failure: the source may retry or must not checkpoint past it.
    Errored = 1,
    /// The destination refused the events permanently (for example HTTP 400).
    Rejected = 2,
}

impl BatchStatus {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Delivered,
            1 => Self::Errored,
            _ => Self::Rejected,
        }
    }
}

/// Shared by every event of one source batch and all their copies; reports once, when
/// the last reference is dropped, so the source never hears about a half-delivered batch.
#[derive(Debug)]
pub struct BatchNotifier {
    status: AtomicU8,
    tx: Mutex<Option<oneshot::Sender<BatchStatus>>>,
}

impl BatchNotifier {
    /// Creates a notifier and the receiver on which the source awaits the final status.
    pub fn new() -> (Arc<Self>, oneshot::Receiver<BatchStatus>) {
        let (tx, rx) = oneshot::channel();
        let notifier = Arc::new(Self {
            status: AtomicU8::new(BatchStatus::Delivered as u8),
            tx: Mutex::new(Some(tx)),
        });
        (notifier, rx)
    }

    /// Makes every event of `batch` report to one new notifier and returns where the
    /// final status arrives: what a source that waits for delivery (file tail, HTTP with
    /// acknowledgements) does with each batch it sends.
    pub fn attach(batch: &mut [super::Event]) -> oneshot::Receiver<BatchStatus> {
        let (notifier, rx) = Self::new();
        for e in batch.iter_mut() {
            let md = match e {
                super::Event::Log(l) => &mut l.metadata,
                super::Event::Metric(m) => &mut m.metadata,
            };
            md.finalizers.add(notifier.clone());
        }
        rx
    }

    /// Merges a status in; the worst one wins.
    pub fn update(&self, status: BatchStatus) {
        self.status.fetch_max(status as u8, Ordering::AcqRel);
    }
}

impl Drop for BatchNotifier {
    fn drop(&mut self) {
        let status = BatchStatus::from_u8(self.status.load(Ordering::Acquire));
        let tx = match self.tx.get_mut() {
            Ok(slot) => slot.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(tx) = tx {
            // The source may have stopped listening; then nobody needs the answer.
            let _ = tx.send(status);
        }
    }
}

/// Set once the shutdown timeout has passed and the pipeline is abandoned.
static ABANDONED: AtomicBool = AtomicBool::new(false);

/// From now on, an event dropped without an outcome was abandoned (the shutdown timeout
/// passed with it still in a buffer or a request): its sources hear `Errored`, so a
/// file checkpoint or a Kafka offset never moves past it. Before this, a drop without
/// an outcome is a transform's intentional drop (a filter), which counts as delivered.
pub fn abandon_unanswered() {
    ABANDONED.store(true, Ordering::Release);
}

/// The notifiers an event belongs to. Empty for sources that cannot acknowledge, which
/// keeps the common path free of reference counting; one notifier (an acknowledging
/// source's batch, or a disk buffer's record) is held without an allocation, so
/// attaching a batch's notifier to each of its events allocates nothing per event.
#[derive(Clone, Debug, Default)]
pub struct EventFinalizers(Notifiers);

#[derive(Clone, Debug, Default)]
enum Notifiers {
    #[default]
    None,
    One(Arc<BatchNotifier>),
    /// Rare: an event copied into several batches, or a sink's whole request.
    Many(Vec<Arc<BatchNotifier>>),
}

impl Notifiers {
    fn as_slice(&self) -> &[Arc<BatchNotifier>] {
        match self {
            Notifiers::None => &[],
            Notifiers::One(n) => std::slice::from_ref(n),
            Notifiers::Many(v) => v,
        }
    }
}

impl EventFinalizers {
    /// Attaches the event to a batch notifier.
    pub fn add(&mut self, notifier: Arc<BatchNotifier>) {
        self.0 = match std::mem::take(&mut self.0) {
            Notifiers::None => Notifiers::One(notifier),
            Notifiers::One(first) => Notifiers::Many(vec![first, notifier]),
            Notifiers::Many(mut v) => {
                v.push(notifier);
                Notifiers::Many(v)
            }
        };
    }

    /// Records the outcome and releases this copy's hold on the notifiers.
    pub fn update_status(mut self, status: BatchStatus) {
        for n in self.0.as_slice() {
            n.update(status);
        }
        self.0 = Notifiers::None;
    }

    /// Takes over `other`'s notifiers, so a sink can answer for a whole request at once.
    /// Consecutive events of one source batch share a notifier; it is kept once.
    pub fn merge(&mut self, mut other: EventFinalizers) {
        match std::mem::take(&mut other.0) {
            Notifiers::None => {}
            Notifiers::One(n) => self.add_unless_last(n),
            Notifiers::Many(v) => {
                for n in v {
                    self.add_unless_last(n);
                }
            }
        }
    }

    fn add_unless_last(&mut self, n: Arc<BatchNotifier>) {
        if !self.0.as_slice().last().is_some_and(|l| Arc::ptr_eq(l, &n)) {
            self.add(n);
        }
    }

    /// Whether any source waits on this event.
    pub fn is_empty(&self) -> bool {
        self.0.as_slice().is_empty()
    }
}

impl Drop for EventFinalizers {
    fn drop(&mut self) {
        if !self.is_empty() && ABANDONED.load(Ordering::Acquire) {
            for n in self.0.as_slice() {
                n.update(BatchStatus::Errored);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn worst_status_of_all_copies_is_reported_after_the_last_drop() {
        let (n, rx) = BatchNotifier::new();
        let mut a = EventFinalizers::default();
        a.add(n.clone());
        let b = a.clone();
        drop(n);
        a.update_status(BatchStatus::Delivered);
        b.update_status(BatchStatus::Errored);
        assert_eq!(rx.await.ok(), Some(BatchStatus::Errored));
    }

    #[tokio::test]
    async fn attach_reports_once_every_event_of_the_batch_is_done() {
        use crate::event::{Event, EventMetadata, LogEvent, ObjectMap};
        let mut batch: Vec<Event> = (0..3)
            .map(|_| {
                LogEvent::from_parts(
                    ObjectMap::new(),
                    EventMetadata::new("t", chrono::Utc::now()),
                )
                .into()
            })
            .collect();
        let mut rx = BatchNotifier::attach(&mut batch);
        let last = batch.pop();
        for mut e in batch {
            e.take_finalizers().update_status(BatchStatus::Delivered);
        }
        assert!(rx.try_recv().is_err(), "one event is still out");
        if let Some(mut e) = last {
            e.take_finalizers().update_status(BatchStatus::Rejected);
        }
        assert_eq!(rx.await.ok(), Some(BatchStatus::Rejected));
    }

    #[test]
    fn holding_one_notifier_takes_no_more_room_than_the_list_did() {
        assert_eq!(
            std::mem::size_of::<EventFinalizers>(),
            std::mem::size_of::<Vec<Arc<BatchNotifier>>>()
        );
    }

    #[tokio::test]
    async fn an_event_in_several_batches_answers_to_each_and_merges_keep_each_once() {
        let (n1, rx1) = BatchNotifier::new();
        let (n2, rx2) = BatchNotifier::new();
        let mut a = EventFinalizers::default();
        a.add(n1.clone());
        a.add(n2.clone());
        let mut request = EventFinalizers::default();
        let mut b = EventFinalizers::default();
        b.add(n2.clone());
        request.merge(b);
        request.merge(a);
        drop((n1, n2));
        assert_eq!(
            request.0.as_slice().len(),
            3,
            "n2, n1, n2: only a repeat of the last is folded"
        );
        request.update_status(BatchStatus::Rejected);
        assert_eq!(rx1.await.ok(), Some(BatchStatus::Rejected));
        assert_eq!(rx2.await.ok(), Some(BatchStatus::Rejected));
    }

    #[tokio::test]
    async fn dropped_without_update_counts_as_delivered() {
        let (n, rx) = BatchNotifier::new();
        let mut a = EventFinalizers::default();
        a.add(n);
        drop(a);
        assert_eq!(rx.await.ok(), Some(BatchStatus::Delivered));
    }
}
