//! The data that flows through the graph: log events (maps of `vrl` values, so the remap
//! transform can run VRL on them as they are) and metric events, each with metadata
//! that travels beside the fields.

pub mod codec;
mod finalizer;
mod metric;
pub mod schema;

pub use finalizer::{
    abandon_unanswered as finalizer_abandon_unanswered, BatchNotifier, BatchStatus, EventFinalizers,
};
pub use metric::{Bucket, Metric, MetricKind, MetricValue, Quantile, Sample, StatisticKind};

use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
pub use vrl::value::{KeyString, ObjectMap, Value};

/// What one channel send carries: events travel in batches, never one by one.
pub type Batch = Vec<Event>;

/// The largest batch a source builds before it sends (Vector uses the same figure).
pub const MAX_BATCH_EVENTS: usize = 1000;

/// One event: a log line or a metric sample.
#[derive(Clone, Debug)]
pub enum Event {
    /// A structured log record.
    Log(LogEvent),
    /// A metric sample, boxed: a metric is larger than a log event, and every event
    /// of every batch is as large as the largest variant (unboxed, a log event moved
    /// through the graph cost 1.5% more instructions per event).
    Metric(Box<Metric>),
}

impl Event {
    /// The metadata shared by both kinds.
    pub fn metadata(&self) -> &EventMetadata {
        match self {
            Event::Log(l) => &l.metadata,
            Event::Metric(m) => &m.metadata,
        }
    }

    /// Takes the finalizers out so a sink can report the outcome after sending.
    pub fn take_finalizers(&mut self) -> EventFinalizers {
        let md = match self {
            Event::Log(l) => &mut l.metadata,
            Event::Metric(m) => &mut m.metadata,
        };
        std::mem::take(&mut md.finalizers)
    }

    /// The log view, when this is a log event.
    pub fn as_log(&self) -> Option<&LogEvent> {
        match self {
            Event::Log(l) => Some(l),
            Event::Metric(_) => None,
        }
    }
}

impl From<Metric> for Event {
    fn from(m: Metric) -> Self {
        Event::Metric(Box::new(m))
    }
}

impl From<LogEvent> for Event {
    fn from(l: LogEvent) -> Self {
        Event::Log(l)
    }
}

/// A source's ID as every event carries it: a thin pointer (8 bytes, where a `&str`
/// takes 16) to the interned name. Every event is as large as its metadata, so the
/// eight bytes saved here pay for the VRL metadata slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceId(&'static &'static str);

impl SourceId {
    /// The ID.
    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl From<&str> for SourceId {
    /// Interns `id` (a lock and a lookup: sources intern once at start, not per event).
    fn from(id: &str) -> Self {
        intern(id)
    }
}

/// The `'static` copy of a component ID. IDs live as long as the process, and a shared
/// `Arc` would cost every event two atomic operations on one cache line that all source
/// tasks and sinks touch; an interned ID costs nothing to copy. Each distinct ID is
/// allocated once, however often configs are reloaded.
pub fn intern(id: &str) -> SourceId {
    static IDS: OnceLock<Mutex<BTreeMap<&'static str, SourceId>>> = OnceLock::new();
    let mut ids = match IDS.get_or_init(Default::default).lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Some(known) = ids.get(id) {
        return *known;
    }
    let name: &'static str = Box::leak(id.to_owned().into_boxed_str());
    let handle = SourceId(Box::leak(Box::new(name)));
    ids.insert(name, handle);
    handle
}

/// Facts about an event that are not its fields: where and when it entered sluice, and
/// who waits for its delivery.
#[derive(Clone, Debug)]
pub struct EventMetadata {
    /// The ID of the source that produced the event (see [`intern`]).
    pub source_id: SourceId,
    /// When sluice received it.
    pub ingest_time: DateTime<Utc>,
    /// The batches whose sources wait for this event's delivery.
    pub finalizers: EventFinalizers,
    /// VRL's `%` paths: values a program keeps beside the fields, never written out.
    /// Boxed and absent until a program sets one, so events that never meet VRL stay
    /// small.
    pub value: Option<Box<Value>>,
}

impl EventMetadata {
    /// Metadata for an event a source creates now.
    pub fn new(source_id: impl Into<SourceId>, ingest_time: DateTime<Utc>) -> Self {
        Self {
            source_id: source_id.into(),
            ingest_time,
            finalizers: EventFinalizers::default(),
            value: None,
        }
    }
}

/// A log record: a map from field names to values.
#[derive(Clone, Debug)]
pub struct LogEvent {
    fields: ObjectMap,
    /// Source, ingest time, finalizers.
    pub metadata: EventMetadata,
}

impl LogEvent {
    /// A log event from prepared fields.
    pub fn from_parts(fields: ObjectMap, metadata: EventMetadata) -> Self {
        Self { fields, metadata }
    }

    /// The fields and the metadata, apart (for a program that takes the fields whole).
    pub fn into_parts(self) -> (ObjectMap, EventMetadata) {
        (self.fields, self.metadata)
    }

    /// The top-level fields, in key order.
    pub fn fields(&self) -> &ObjectMap {
        &self.fields
    }

    /// Mutable access for transforms.
    pub fn fields_mut(&mut self) -> &mut ObjectMap {
        &mut self.fields
    }

    /// A top-level field.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields.get(key)
    }

    /// Sets a top-level field.
    pub fn insert(&mut self, key: impl Into<KeyString>, value: impl Into<Value>) {
        self.fields.insert(key.into(), value.into());
    }

    /// The field at a dotted path (`a.b.c`), for templates that reach into objects.
    pub fn get_path(&self, path: &str) -> Option<&Value> {
        let mut parts = path.split('.');
        let mut cur = self.fields.get(parts.next()?)?;
        for p in parts {
            cur = match cur {
                Value::Object(m) => m.get(p)?,
                _ => return None,
            };
        }
        Some(cur)
    }

    /// The message field (`log_schema.message_key`) as text, when it is text.
    pub fn message(&self) -> Option<&[u8]> {
        match self.fields.get(schema::log_schema().message_key.as_str())? {
            Value::Bytes(b) => Some(b),
            Value::String(s) => Some(s.as_bytes()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod size_tests {
    /// Every event in a batch is as large as `Event`: the VRL metadata slot had to be
    /// paid for by the thin source ID, not by every event of every pipeline.
    #[test]
    fn an_event_stays_within_80_bytes() {
        assert!(
            std::mem::size_of::<super::Event>() <= 80,
            "Event is {} bytes",
            std::mem::size_of::<super::Event>()
        );
    }
}
