//! Gathering encoded events into request payloads, one open payload per partition (for
//! the `http` sink, per rendered URI): a payload closes when it reaches
//! `batch.max_events` or `batch.max_bytes`, or `batch.timeout_secs` after its first
//! event. Events are encoded straight into the payload buffer, once.

use crate::event::EventFinalizers;
use serde::Deserialize;
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
        }
    }

    /// Range checks, as `(key, problem)` relative to `batch`.
    pub fn problems(&self) -> Vec<(&'static str, &'static str)> {
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

/// How events sit in a payload: `[a,b]` for JSON, `a\nb\n` for NDJSON.
#[derive(Clone, Copy, Debug)]
pub struct Framing {
    /// Before the first event.
    pub prefix: &'static [u8],
    /// Between two events.
    pub separator: &'static [u8],
    /// After the last event.
    pub suffix: &'static [u8],
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
}

struct Open {
    body: Vec<u8>,
    events: usize,
    finalizers: EventFinalizers,
    started: Instant,
}

impl Open {
    fn new(capacity: usize) -> Self {
        Self {
            body: Vec::with_capacity(capacity),
            events: 0,
            finalizers: EventFinalizers::default(),
            started: Instant::now(),
        }
    }
}

fn close(framing: Framing, key: String, mut open: Open) -> Payload {
    open.body.extend_from_slice(framing.suffix);
    Payload {
        key,
        body: open.body,
        events: open.events,
        finalizers: open.finalizers,
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
    /// close are appended to `ready`. One map lookup per event.
    pub fn push(
        &mut self,
        key: &str,
        encode: impl FnOnce(&mut Vec<u8>),
        finalizers: EventFinalizers,
        ready: &mut Vec<Payload>,
    ) {
        let f = self.framing;
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
            return;
        };
        let mark = open.body.len();
        open.body.extend_from_slice(if open.events == 0 {
            f.prefix
        } else {
            f.separator
        });
        let start = open.body.len();
        encode(&mut open.body);
        if open.body.len() + f.suffix.len() > limits.max_bytes && open.events > 0 {
            // This event starts the next payload; the full one goes out without it.
            let mut next = Open::new(capacity);
            next.body.extend_from_slice(f.prefix);
            next.body.extend_from_slice(&open.body[start..]);
            open.body.truncate(mark);
            let full = std::mem::replace(open, next);
            self.last_size = full.body.len();
            ready.push(close(f, key.to_string(), full));
        }
        open.events += 1;
        open.finalizers.merge(finalizers);
        if open.events >= limits.max_events || open.body.len() + f.suffix.len() >= limits.max_bytes
        {
            self.last_size = open.body.len() + f.suffix.len();
            if let Some(full) = self.open.remove(key) {
                ready.push(close(f, key.to_string(), full));
            }
        }
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
                ready.push(close(self.framing, k, o));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: Framing = Framing {
        prefix: b"[",
        separator: b",",
        suffix: b"]",
    };

    fn limits(max_events: usize, max_bytes: usize) -> BatchLimits {
        BatchLimits {
            max_events,
            max_bytes,
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn closes_on_events_and_on_bytes_without_splitting_an_event() {
        let mut b = Batcher::new(limits(3, 1000), JSON);
        let mut ready = Vec::new();
        for i in 0..7 {
            b.push(
                "k",
                |o| o.extend_from_slice(format!("{i}").as_bytes()),
                Default::default(),
                &mut ready,
            );
        }
        assert_eq!(ready.len(), 2);
        assert_eq!(ready[0].body, b"[0,1,2]");
        assert_eq!(ready[1].events, 3);
        b.take_due(true, &mut ready);
        assert_eq!(ready[2].body, b"[6]");

        // 10-byte limit: "[aaaa,bbbb]" is 11, so bbbb starts the next payload.
        let mut b = Batcher::new(limits(100, 10), JSON);
        let mut ready = Vec::new();
        b.push(
            "k",
            |o| o.extend_from_slice(b"aaaa"),
            Default::default(),
            &mut ready,
        );
        b.push(
            "k",
            |o| o.extend_from_slice(b"bbbb"),
            Default::default(),
            &mut ready,
        );
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].body, b"[aaaa]");
        // An event larger than the limit goes alone.
        b.push(
            "k",
            |o| o.extend_from_slice(b"cccccccccccccccc"),
            Default::default(),
            &mut ready,
        );
        b.take_due(true, &mut ready);
        let bodies: Vec<&[u8]> = ready.iter().map(|p| p.body.as_slice()).collect();
        assert_eq!(bodies, [&b"[aaaa]"[..], b"[bbbb]", b"[cccccccccccccccc]"]);
    }

    #[tokio::test(start_paused = true)]
    async fn partitions_fill_separately_and_time_out() {
        let mut b = Batcher::new(limits(10, 1000), JSON);
        let mut ready = Vec::new();
        b.push("a", |o| o.push(b'1'), Default::default(), &mut ready);
        tokio::time::sleep(Duration::from_millis(600)).await;
        b.push("b", |o| o.push(b'2'), Default::default(), &mut ready);
        assert!(b.next_deadline().is_some());
        tokio::time::sleep(Duration::from_millis(500)).await;
        b.take_due(false, &mut ready);
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].key, "a");
    }
}
