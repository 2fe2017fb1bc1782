//! Gathering encoded events into request payloads, one open payload per partition (for
//! the `http` sink, per rendered URI): a payload closes when it reaches
//! `batch.max_events` or `batch.max_bytes`, or `batch.timeout_secs` after its first
//! event. Events are encoded straight into the payload buffer, once.

use crate::event::{Event, EventFinalizers};
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

/// `batch` of a sink; unset keys take the sink's defaults.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// Most events in one request.
    pub max_events: Option<usize>,
    /// Most bytes in one request body, before compression. An event larger than this
    /// alone is sent alone.
    pub max_bytes: Option<usize>,
    /// Longest an event waits for its batch to fill, in seconds.
    pub timeout_secs: Option<f64>,
}

/// Resolved limits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchLimits {
    /// See [`BatchConfig::max_events`].
    pub max_events: usize,
    /// See [`BatchConfig::max_bytes`].
    pub max_bytes: usize,
    /// See [`BatchConfig::timeout_secs`].
    pub timeout: Duration,
    /// Bytes each event counts toward `max_bytes` beyond its encoding: what the
    /// destination adds per event (CloudWatch Logs counts 26). Not an option; the sink's.
    pub per_event_overhead: usize,
    /// The widest range of order keys one payload may hold (CloudWatch Logs: 24 hours of
    /// timestamps); an event that would widen it further starts the next payload. Not
    /// an option; the sink's. `None` for no limit.
    pub max_order_span: Option<i64>,
}

impl BatchConfig {
    /// The limits, with `defaults` for what the operator left out.
    pub fn limits(&self, defaults: BatchLimits) -> BatchLimits {
        BatchLimits {
            max_events: self.max_events.unwrap_or(defaults.max_events),
            max_bytes: self.max_bytes.unwrap_or(defaults.max_bytes),
            timeout: self
                .timeout_secs
                .filter(|t| t.is_finite() && *t >= 0.0)
                .map_or(defaults.timeout, crate::seconds),
            per_event_overhead: defaults.per_event_overhead,
            max_order_span: defaults.max_order_span,
        }
    }

    /// Range checks, each under `prefix` (the table's key in the sink, e.g. `batch`),
    /// so every sink reports them the same way.
    pub fn issues(&self, prefix: &str) -> Vec<crate::config::field::FieldIssue> {
        crate::config::field::FieldIssue::under(prefix, self.problems())
    }

    /// Range checks, as `(key, problem)` relative to the table.
    fn problems(&self) -> Vec<(&'static str, &'static str)> {
        let mut p = Vec::new();
        if self.max_events == Some(0) {
            p.push(("max_events", "must be at least 1"));
        }
        if self.max_bytes == Some(0) {
            p.push(("max_bytes", "must be at least 1"));
        }
        if self
            .timeout_secs
            .is_some_and(|t| !(t.is_finite() && t >= 0.0))
        {
            p.push((
                "timeout_secs",
                "must be zero or a positive number of seconds",
            ));
        }
        p
    }
}

/// How events sit in a payload: `[a,b]` for JSON, `a\nb\n` for NDJSON. Fixed
/// framings are borrowed; configured ones (`payload_prefix`, a chosen delimiter) owned.
#[derive(Clone, Debug)]
pub struct Framing {
    /// Before the first event.
    pub prefix: Cow<'static, [u8]>,
    /// Between two events.
    pub separator: Cow<'static, [u8]>,
    /// After the last event.
    pub suffix: Cow<'static, [u8]>,
}

impl Framing {
    /// A framing of fixed bytes.
    pub const fn fixed(
        prefix: &'static [u8],
        separator: &'static [u8],
        suffix: &'static [u8],
    ) -> Self {
        Self {
            prefix: Cow::Borrowed(prefix),
            separator: Cow::Borrowed(separator),
            suffix: Cow::Borrowed(suffix),
        }
    }
}

/// A closed payload, ready to become a request.
#[derive(Debug)]
pub struct Payload {
    /// The partition it belongs to.
    pub key: String,
    /// The framed, encoded events.
    pub body: Vec<u8>,
    /// How many events it holds.
    pub events: usize,
    /// Who waits for their delivery.
    pub finalizers: EventFinalizers,
    /// The events themselves, in payload order, when the sink keeps them for its dead
    /// letters (empty otherwise).
    pub kept: Vec<Event>,
}

struct Open {
    body: Vec<u8>,
    events: usize,
    finalizers: EventFinalizers,
    started: Instant,
    /// For destinations that need events in order (CloudWatch Logs: chronological):
    /// each event's sort key and where its encoding sits in `body`.
    records: Vec<(i64, usize, usize)>,
    /// The smallest and largest order keys held, for `max_order_span`.
    span: Option<(i64, i64)>,
    /// The events, when kept (see [`Payload::kept`]).
    kept: Vec<Event>,
}

impl Open {
    fn new(capacity: usize) -> Self {
        Self {
            body: Vec::with_capacity(capacity),
            events: 0,
            finalizers: EventFinalizers::default(),
            started: Instant::now(),
            records: Vec::new(),
            span: None,
            kept: Vec::new(),
        }
    }

    /// Whether holding an event keyed `k` would stretch this payload's keys over more
    /// than `max`.
    fn too_wide(&self, k: i64, max: i64) -> bool {
        self.span
            .is_some_and(|(lo, hi)| hi.max(k).saturating_sub(lo.min(k)) > max)
    }

    fn widen(&mut self, k: i64) {
        self.span = Some(match self.span {
            Some((lo, hi)) => (lo.min(k), hi.max(k)),
            None => (k, k),
        });
    }
}

fn close(framing: &Framing, key: String, mut open: Open) -> Payload {
    if !open.records.is_sorted_by_key(|r| r.0) {
        // Rebuilt once per payload, in key order (stable: equal keys keep arrival order).
        let records = std::mem::take(&mut open.records);
        let mut order: Vec<usize> = (0..records.len()).collect();
        order.sort_by_key(|i| records[*i].0);
        let mut body = Vec::with_capacity(open.body.len() + framing.suffix.len());
        body.extend_from_slice(&framing.prefix);
        for (n, i) in order.iter().enumerate() {
            let (_, start, end) = records[*i];
            if n > 0 {
                body.extend_from_slice(&framing.separator);
            }
            body.extend_from_slice(&open.body[start..end]);
        }
        open.body = body;
        if open.kept.len() == records.len() {
            // The kept events follow the payload's order.
            let mut slots: Vec<Option<Event>> = open.kept.drain(..).map(Some).collect();
            open.kept = order.iter().filter_map(|i| slots[*i].take()).collect();
        }
    }
    open.body.extend_from_slice(&framing.suffix);
    Payload {
        key,
        body: open.body,
        events: open.events,
        finalizers: open.finalizers,
        kept: open.kept,
    }
}

/// Open payloads by partition.
pub struct Batcher {
    limits: BatchLimits,
    framing: Framing,
    open: HashMap<String, Open>,
    last_size: usize,
}

impl Batcher {
    /// An empty batcher.
    pub fn new(limits: BatchLimits, framing: Framing) -> Self {
        Self {
            limits,
            framing,
            open: HashMap::new(),
            last_size: 0,
        }
    }

    /// Adds one event to partition `key`: `encode` appends its bytes. Payloads that
    /// close are appended to `ready`. One map lookup per event. When `encode` fails, what
    /// it appended is taken back and the error comes back with the finalizers.
    pub fn push<E>(
        &mut self,
        key: &str,
        encode: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
        finalizers: EventFinalizers,
        ready: &mut Vec<Payload>,
    ) -> Result<(), (E, EventFinalizers)> {
        self.push_ordered(key, None, encode, finalizers, ready)
    }

    /// Like [`Batcher::push`]; with an `order` key, each closed payload holds its
    /// events sorted by it (CloudWatch Logs refuses a batch out of chronological order).
    pub fn push_ordered<E>(
        &mut self,
        key: &str,
        order: Option<i64>,
        encode: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
        finalizers: EventFinalizers,
        ready: &mut Vec<Payload>,
    ) -> Result<(), (E, EventFinalizers)> {
        self.push_inner(key, order, |_, out| encode(out), finalizers, None, ready)
            .map_err(|(e, f, _)| (e, f))
    }

    /// Like [`Batcher::push_ordered`], keeping `event` itself with its payload, for a
    /// sink that writes refused events to its dead letters. On error the event comes
    /// back too.
    pub fn push_keeping<E>(
        &mut self,
        key: &str,
        order: Option<i64>,
        encode: impl FnOnce(&Event, &mut Vec<u8>) -> Result<(), E>,
        finalizers: EventFinalizers,
        event: Event,
        ready: &mut Vec<Payload>,
    ) -> Result<(), (E, EventFinalizers, Option<Event>)> {
        self.push_inner(
            key,
            order,
            |event, out| event.map_or(Ok(()), |event| encode(event, out)),
            finalizers,
            Some(event),
            ready,
        )
    }

    /// `encode` gets the kept event, if any.
    fn push_inner<E>(
        &mut self,
        key: &str,
        order: Option<i64>,
        encode: impl FnOnce(Option<&Event>, &mut Vec<u8>) -> Result<(), E>,
        finalizers: EventFinalizers,
        keep: Option<Event>,
        ready: &mut Vec<Payload>,
    ) -> Result<(), (E, EventFinalizers, Option<Event>)> {
        let f = &self.framing;
        let limits = self.limits;
        // New payloads start at the size the last one reached, so the buffer does not
        // regrow (and copy) its way up for every request.
        let capacity = self
            .last_size
            .max(4096)
            .min(limits.max_bytes.saturating_add(1024));
        if !self.open.contains_key(key) {
            self.open.insert(key.to_string(), Open::new(capacity));
        }
        let Some(open) = self.open.get_mut(key) else {
            return Ok(());
        };
        if let (Some(k), Some(max)) = (order, limits.max_order_span) {
            if open.too_wide(k, max) {
                // The payload so far goes out; this event starts the next one.
                let full = std::mem::replace(open, Open::new(capacity));
                self.last_size = full.body.len() + f.suffix.len();
                ready.push(close(f, key.to_string(), full));
            }
        }
        let overhead = limits.per_event_overhead;
        let mark = open.body.len();
        open.body.extend_from_slice(if open.events == 0 {
            &f.prefix
        } else {
            &f.separator
        });
        let start = open.body.len();
        if let Err(e) = encode(keep.as_ref(), &mut open.body) {
            open.body.truncate(mark);
            if open.events == 0 {
                self.open.remove(key);
            }
            return Err((e, finalizers, keep));
        }
        let size = |o: &Open| o.body.len() + f.suffix.len() + o.events * overhead;
        if size(open) + overhead > limits.max_bytes && open.events > 0 {
            // This event starts the next payload; the full one goes out without it.
            let mut next = Open::new(capacity);
            next.body.extend_from_slice(&f.prefix);
            let moved = next.body.len();
            next.body.extend_from_slice(&open.body[start..]);
            if let Some(k) = order {
                next.records.push((k, moved, next.body.len()));
            }
            open.body.truncate(mark);
            let full = std::mem::replace(open, next);
            self.last_size = full.body.len();
            ready.push(close(f, key.to_string(), full));
        } else if let Some(k) = order {
            open.records.push((k, start, open.body.len()));
        }
        if let Some(e) = keep {
            open.kept.push(e);
        }
        if let Some(k) = order {
            open.widen(k);
        }
        open.events += 1;
        open.finalizers.merge(finalizers);
        if open.events >= limits.max_events || size(open) >= limits.max_bytes {
            self.last_size = open.body.len() + f.suffix.len();
            if let Some(full) = self.open.remove(key) {
                ready.push(close(f, key.to_string(), full));
            }
        }
        Ok(())
    }

    /// When the oldest open payload times out.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.open
            .values()
            .map(|o| o.started + self.limits.timeout)
            .min()
    }

    /// Closes payloads whose timeout passed (all of them with `all`).
    pub fn take_due(&mut self, all: bool, ready: &mut Vec<Payload>) {
        let now = Instant::now();
        let timeout = self.limits.timeout;
        let due: Vec<String> = self
            .open
            .iter()
            .filter(|(_, o)| all || o.started + timeout <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in due {
            if let Some(o) = self.open.remove(&k) {
                ready.push(close(&self.framing, k, o));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: Framing = Framing::fixed(b"[", b",", b"]");

    fn put(bytes: &[u8]) -> impl FnOnce(&mut Vec<u8>) -> Result<(), ()> + '_ {
        move |o| {
            o.extend_from_slice(bytes);
            Ok(())
        }
    }

    fn limits(max_events: usize, max_bytes: usize) -> BatchLimits {
        BatchLimits {
            max_events,
            max_bytes,
            timeout: Duration::from_secs(1),
            per_event_overhead: 0,
            max_order_span: None,
        }
    }

    #[test]
    fn closes_on_events_and_on_bytes_without_splitting_an_event() {
        let mut b = Batcher::new(limits(3, 1000), JSON);
        let mut ready = Vec::new();
        for i in 0..7 {
            b.push(
                "k",
                put(format!("{i}").as_bytes()),
                Default::default(),
                &mut ready,
            )
            .unwrap();
        }
        assert_eq!(ready.len(), 2);
        assert_eq!(ready[0].body, b"[0,1,2]");
        assert_eq!(ready[1].events, 3);
        b.take_due(true, &mut ready);
        assert_eq!(ready[2].body, b"[6]");

        // 10-byte limit: "[aaaa,bbbb]" is 11, so bbbb starts the next payload.
        let mut b = Batcher::new(limits(100, 10), JSON);
        let mut ready = Vec::new();
        b.push("k", put(b"aaaa"), Default::default(), &mut ready)
            .unwrap();
        b.push("k", put(b"bbbb"), Default::default(), &mut ready)
            .unwrap();
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].body, b"[aaaa]");
        // An event larger than the limit goes alone.
        b.push(
            "k",
            put(b"cccccccccccccccc"),
            Default::default(),
            &mut ready,
        )
        .unwrap();
        b.take_due(true, &mut ready);
        let bodies: Vec<&[u8]> = ready.iter().map(|p| p.body.as_slice()).collect();
        assert_eq!(bodies, [&b"[aaaa]"[..], b"[bbbb]", b"[cccccccccccccccc]"]);
    }

    #[test]
    fn ordered_payloads_hold_their_events_sorted_even_across_a_split() {
        let mut b = Batcher::new(limits(100, 12), JSON);
        let mut ready = Vec::new();
        // "[k3,k1,k2]" is 10 bytes; "k0" would make 13: it starts the next payload.
        for (k, text) in [(3, "k3"), (1, "k1"), (2, "k2"), (9, "k9"), (0, "k0")] {
            b.push_ordered(
                "p",
                Some(k),
                put(text.as_bytes()),
                Default::default(),
                &mut ready,
            )
            .unwrap();
        }
        b.take_due(true, &mut ready);
        let bodies: Vec<&[u8]> = ready.iter().map(|p| p.body.as_slice()).collect();
        assert_eq!(bodies, [&b"[k1,k2,k3]"[..], b"[k0,k9]"]);
    }

    #[test]
    fn no_payload_spans_more_than_max_order_span() {
        let mut b = Batcher::new(
            BatchLimits {
                max_order_span: Some(10),
                ..limits(100, 1000)
            },
            JSON,
        );
        let mut ready = Vec::new();
        // 5..15 fits; 16 would widen it to 11; 3 then widens 16's payload to 13.
        for k in [5, 15, 10, 16, 3, 12] {
            b.push_ordered(
                "p",
                Some(k),
                put(k.to_string().as_bytes()),
                Default::default(),
                &mut ready,
            )
            .unwrap();
        }
        b.take_due(true, &mut ready);
        let bodies: Vec<&[u8]> = ready.iter().map(|p| p.body.as_slice()).collect();
        assert_eq!(bodies, [&b"[5,10,15]"[..], b"[16]", b"[3,12]"]);
    }

    #[test]
    fn closed_partitions_leave_nothing_open() {
        let mut b = Batcher::new(limits(2, 1000), JSON);
        let mut ready = Vec::new();
        for i in 0..1000 {
            let key = format!("stream-{i}");
            b.push(&key, put(b"x"), Default::default(), &mut ready)
                .unwrap();
            b.push(&key, put(b"y"), Default::default(), &mut ready)
                .unwrap();
        }
        assert_eq!(ready.len(), 1000);
        assert!(b.open.is_empty(), "a full payload leaves its partition");
        b.push("last", put(b"z"), Default::default(), &mut ready)
            .unwrap();
        b.take_due(true, &mut ready);
        assert!(b.open.is_empty());
    }

    #[test]
    fn per_event_overhead_counts_toward_max_bytes() {
        // Each 4-byte event costs 4 + 6 = 10 bytes: three fit into 30, not four.
        let mut b = Batcher::new(
            BatchLimits {
                per_event_overhead: 6,
                ..limits(100, 30)
            },
            Framing::fixed(b"", b"", b""),
        );
        let mut ready = Vec::new();
        for _ in 0..4 {
            b.push("k", put(b"abcd"), Default::default(), &mut ready)
                .unwrap();
        }
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].events, 3);
    }

    #[test]
    fn a_failed_encoding_leaves_no_trace() {
        let mut b = Batcher::new(limits(10, 1000), JSON);
        let mut ready = Vec::new();
        let failed = b.push(
            "k",
            |o| {
                o.extend_from_slice(b"half");
                Err("no")
            },
            Default::default(),
            &mut ready,
        );
        assert!(failed.is_err());
        assert!(
            b.next_deadline().is_none(),
            "no empty payload may stay open"
        );
        b.push("k", put(b"1"), Default::default(), &mut ready)
            .unwrap();
        let failed = b.push(
            "k",
            |o| {
                o.extend_from_slice(b"half");
                Err("no")
            },
            Default::default(),
            &mut ready,
        );
        assert!(failed.is_err());
        b.take_due(true, &mut ready);
        assert_eq!(ready[0].body, b"[1]");
        assert_eq!(ready[0].events, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn partitions_fill_separately_and_time_out() {
        let mut b = Batcher::new(limits(10, 1000), JSON);
        let mut ready = Vec::new();
        b.push("a", put(b"1"), Default::default(), &mut ready)
            .unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
        b.push("b", put(b"2"), Default::default(), &mut ready)
            .unwrap();
        assert!(b.next_deadline().is_some());
        tokio::time::sleep(Duration::from_millis(500)).await;
        b.take_due(false, &mut ready);
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].key, "a");
    }
}
