//! Events to PutLogEvents calls, within every rule of the API: each event's partition is
//! its (group, stream); its order key its timestamp in milliseconds, so the runner sorts
//! each batch and never lets one span more than 24 hours; its encoding is the message as
//! the configured codec writes it, truncated (with a visible marker, still valid JSON)
//! when it would not fit into a request alone. Events CloudWatch would refuse for their
//! timestamp are counted and reported here, before they cost a request.
//!
//! A payload carries each event as `timestamp (i64 LE) | length (u32 LE) | message`: the
//! 12 bytes of header count toward the 26 bytes CloudWatch adds per event, so the
//! runner's byte limit is exactly the API's.

use super::service::PutRequest;
use crate::event::{Event, Value};
use crate::internal_events::{names, ComponentMetrics, ErrorReporter};
use crate::sinks::util::encoding::Encoder;
use crate::sinks::util::runner::{Built, RequestBuilder, Unsendable};
use crate::sinks::util::template::Template;
use bytes::Bytes;
use metrics::Counter;

/// Bytes PutLogEvents counts per event beyond its message.
pub const EVENT_OVERHEAD: usize = 26;
/// Most bytes of one request: messages plus [`EVENT_OVERHEAD`] each.
pub const MAX_REQUEST_BYTES: usize = 1_048_576;
/// Most events in one request.
pub const MAX_REQUEST_EVENTS: usize = 10_000;
/// The longest message that fits into a request alone.
pub const MAX_MESSAGE_BYTES: usize = MAX_REQUEST_BYTES - EVENT_OVERHEAD;
/// The widest range of timestamps one request may hold: 24 hours, in milliseconds.
pub const MAX_SPAN_MS: i64 = 24 * 3600 * 1000;
/// How far in the future CloudWatch accepts a timestamp: 2 hours.
const MAX_FUTURE_MS: i64 = 2 * 3600 * 1000;
/// How far back it accepts one without a shorter retention: 14 days.
pub const MAX_AGE_DAYS: u32 = 14;
/// Slack at both ends of the accepted range, so an event that was inside when batched is
/// still inside when its request arrives.
const MARGIN_MS: i64 = 5 * 60 * 1000;
/// Bytes of the per-event header in a payload.
pub const HEADER: usize = 12;
/// Appended to a truncated message, as the CloudWatch agent marks one.
pub const TRUNCATED_MARKER: &str = "[Truncated...]";
/// Separates group and stream in a partition key: a control character neither name may
/// contain.
const SEPARATOR: char = '\u{1f}';

/// Why an event or a part of a request was refused, as
/// `sluice_cloudwatch_rejected_events_total{reason}` counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    /// Older than 14 days or the group's retention.
    TooOld,
    /// More than 2 hours in the future.
    TooNew,
    /// Older than the group's retention, as the API reported.
    Expired,
    /// A rendered group or stream name CloudWatch does not allow.
    InvalidName,
    /// Nothing to send: CloudWatch refuses an empty message.
    EmptyMessage,
}

impl RejectReason {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TooOld => "too_old",
            Self::TooNew => "too_new",
            Self::Expired => "expired",
            Self::InvalidName => "invalid_name",
            Self::EmptyMessage => "empty_message",
        }
    }

    /// Every reason, to register the counters up front.
    pub const ALL: [RejectReason; 5] = [
        Self::TooOld,
        Self::TooNew,
        Self::Expired,
        Self::InvalidName,
        Self::EmptyMessage,
    ];
}

/// `sluice_cloudwatch_rejected_events_total`, one counter per reason.
#[derive(Clone)]
pub struct RejectedCounters(Vec<Counter>);

impl RejectedCounters {
    /// Registers every reason for `metrics`' component.
    pub fn new(metrics: &ComponentMetrics) -> Self {
        Self(
            RejectReason::ALL
                .iter()
                .map(|r| {
                    metrics.counter_with(
                        names::CLOUDWATCH_REJECTED_EVENTS,
                        "reason",
                        r.as_str().into(),
                    )
                })
                .collect(),
        )
    }

    /// Counts `n` events refused for `reason`.
    pub fn add(&self, reason: RejectReason, n: u64) {
        if let Some(c) = RejectReason::ALL
            .iter()
            .position(|r| *r == reason)
            .and_then(|i| self.0.get(i))
        {
            c.increment(n);
        }
    }
}

/// The group and stream of every event: fixed, or rendered per event.
pub enum Names {
    /// Neither template uses a field or the time: one partition, checked at start.
    Fixed(String),
    /// Rendered per event.
    Templated {
        /// `group_name`.
        group: Template,
        /// `stream_name`.
        stream: Template,
    },
}

/// See the module documentation.
pub struct CloudwatchRequestBuilder {
    names: Names,
    encoder: Encoder,
    /// Events older than this (ms) are refused: 14 days, or `retention_days` if shorter.
    max_age_ms: i64,
    /// Where requests go, for the circuit breaker and the log.
    destination: String,
    rejected: RejectedCounters,
    truncated: Counter,
    truncated_log: ErrorReporter,
    scratch: String,
}

impl CloudwatchRequestBuilder {
    /// A builder writing with `encoder`; `retention_days` shortens the accepted age.
    pub fn new(
        names: Names,
        encoder: Encoder,
        retention_days: Option<u32>,
        destination: String,
        metrics: &ComponentMetrics,
    ) -> Self {
        let days = retention_days.map_or(MAX_AGE_DAYS, |d| d.min(MAX_AGE_DAYS));
        Self {
            names,
            encoder,
            max_age_ms: i64::from(days) * 86_400_000,
            destination,
            rejected: RejectedCounters::new(metrics),
            truncated: metrics.counter(names::CLOUDWATCH_TRUNCATED_EVENTS),
            truncated_log: metrics.error_reporter("truncated"),
            scratch: String::new(),
        }
    }

    /// Writes the event's message, made valid UTF-8 (the API takes strings, and a
    /// replacement character must be counted as the 3 bytes it is).
    fn write_message(&mut self, event: &Event, out: &mut Vec<u8>) {
        let start = out.len();
        self.encoder.encode(event, out);
        if std::str::from_utf8(&out[start..]).is_err() {
            let fixed = String::from_utf8_lossy(&out[start..]).into_owned();
            out.truncate(start);
            out.extend_from_slice(fixed.as_bytes());
        }
    }

    /// Re-encodes an oversized event at `start` of `out` so its message fits: for JSON
    /// the `message` field is shortened, so the line stays a valid object.
    fn truncate(&mut self, event: &Event, out: &mut Vec<u8>, start: usize) {
        let original = out.len() - start;
        self.truncated.increment(1);
        self.truncated_log.report(1, || {
            format!("An event of {original} bytes does not fit into one PutLogEvents request (at most {MAX_MESSAGE_BYTES}); it is sent truncated, marked {TRUNCATED_MARKER}")
        });
        if self.encoder.codec().is_json() {
            if let Some(shortened) = self.shorten_message(event, out, start) {
                if shortened {
                    return;
                }
            }
            // No message field to shorten, or it is not what makes the event large:
            // the start of the encoding itself becomes the message of a new object.
            let text = String::from_utf8_lossy(&out[start..]).into_owned();
            out.truncate(start);
            let key = crate::event::schema::log_schema().message_key.as_str();
            fit(&text, out, |kept, out| {
                let mut o = serde_json::Map::new();
                o.insert(key.into(), format!("{kept}{TRUNCATED_MARKER}").into());
                o.insert("truncated".into(), true.into());
                // Writing into a Vec cannot fail.
                let _ = serde_json::to_writer(out, &o);
            });
        } else {
            let text = String::from_utf8_lossy(&out[start..]).into_owned();
            out.truncate(start);
            fit(&text, out, |kept, out| {
                out.extend_from_slice(kept.as_bytes());
                out.extend_from_slice(TRUNCATED_MARKER.as_bytes());
            });
        }
    }

    /// Shortens the event's message until its JSON fits. `None` when it has no string
    /// message; `Some(false)` when even an empty message leaves it too large.
    fn shorten_message(&mut self, event: &Event, out: &mut Vec<u8>, start: usize) -> Option<bool> {
        let key = crate::event::schema::log_schema().message_key.as_str();
        let log = event.as_log()?;
        let message = match log.get(key)? {
            v @ (Value::Bytes(_) | Value::String(_)) => v.to_string_lossy().into_owned(),
            _ => return None,
        };
        let mut copy = log.clone();
        let mut keep = message.len();
        for _ in 0..8 {
            let len = out.len() - start;
            if keep == 0 {
                break;
            }
            // Escaping makes the kept text longer in JSON than in the event: shrink in
            // proportion to what the whole line measured, and measure again.
            keep = shrink(keep, len);
            let kept = &message[..floor_char_boundary(&message, keep)];
            copy.insert(key, Value::from(format!("{kept}{TRUNCATED_MARKER}")));
            out.truncate(start);
            self.encoder.encode(&Event::Log(copy.clone()), out);
            if out.len() - start <= MAX_MESSAGE_BYTES {
                return Some(true);
            }
        }
        Some(false)
    }

    /// Splits a partition key into group and stream.
    pub fn split_key(key: &str) -> (&str, &str) {
        key.split_once(SEPARATOR).unwrap_or((key, ""))
    }

    /// The partition key of a group and stream.
    pub fn key(group: &str, stream: &str) -> String {
        format!("{group}{SEPARATOR}{stream}")
    }
}

/// Writes `write(prefix of text)` into `out`, with the prefix as long as fits into
/// [`MAX_MESSAGE_BYTES`].
fn fit(text: &str, out: &mut Vec<u8>, write: impl Fn(&str, &mut Vec<u8>)) {
    let start = out.len();
    let mut keep = MAX_MESSAGE_BYTES - TRUNCATED_MARKER.len() - 64;
    loop {
        let kept = &text[..floor_char_boundary(text, keep.min(text.len()))];
        write(kept, out);
        let len = out.len() - start;
        if len <= MAX_MESSAGE_BYTES || kept.is_empty() {
            return;
        }
        out.truncate(start);
        keep = shrink(kept.len(), len);
    }
}

/// How much of `keep` bytes to keep when they made an encoding of `len` bytes, so the
/// next try lands just under [`MAX_MESSAGE_BYTES`] with room for the marker.
fn shrink(keep: usize, len: usize) -> usize {
    let room = MAX_MESSAGE_BYTES - TRUNCATED_MARKER.len() - 64;
    let scaled = (keep as u128 * room as u128 / len.max(1) as u128) as usize;
    // Always progress, even when the line is only just over.
    scaled.min(keep.saturating_sub(64))
}

/// The largest index at most `i` that starts a character of `s`.
fn floor_char_boundary(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Why a rendered name cannot be used, if it cannot. Group names allow `[.-_/#A-Za-z0-9]`,
/// stream names anything but `:` and `*`; both 1 to 512 characters.
pub fn name_problem(what: &str, name: &str, group: bool) -> Option<String> {
    if name.is_empty() || name.len() > 512 {
        return Some(format!("{what} `{name}` must be 1 to 512 characters long"));
    }
    let bad = if group {
        name.chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/' | '#')))
    } else {
        name.chars()
            .find(|c| matches!(c, ':' | '*') || c.is_control())
    };
    bad.map(|c| format!("{what} `{name}` may not contain {c:?}"))
}

/// The CloudWatch timestamp of an event, in milliseconds: its `timestamp`, else when
/// sluice received it.
pub fn timestamp_ms(event: &Event) -> i64 {
    Template::event_time(event).timestamp_millis()
}

impl RequestBuilder for CloudwatchRequestBuilder {
    type Request = PutRequest;

    fn partition(&mut self, event: &Event, key: &mut String) -> Result<(), Unsendable> {
        let ts = timestamp_ms(event);
        let now = chrono::Utc::now().timestamp_millis();
        let refused = if ts < now - self.max_age_ms + MARGIN_MS {
            Some((
                RejectReason::TooOld,
                "older than CloudWatch Logs accepts (14 days, or retention_days)",
            ))
        } else if ts > now + MAX_FUTURE_MS - MARGIN_MS {
            Some((RejectReason::TooNew, "more than 2 hours in the future"))
        } else {
            None
        };
        if let Some((reason, why)) = refused {
            self.rejected.add(reason, 1);
            let at = chrono::DateTime::from_timestamp_millis(ts)
                .map_or_else(|| ts.to_string(), |t| t.to_rfc3339());
            return Err(Unsendable::new(
                reason.as_str(),
                format!("timestamp {at} is {why}"),
            ));
        }
        match &self.names {
            Names::Fixed(k) => key.push_str(k),
            Names::Templated { group, stream } => {
                let time = Template::event_time(event);
                for (i, (t, what)) in [(group, "group_name"), (stream, "stream_name")]
                    .into_iter()
                    .enumerate()
                {
                    t.render_text(event, time, &mut self.scratch)
                        .map_err(|e| Unsendable::new("template", format!("{what}: {e}")))?;
                    if let Some(p) = name_problem(what, &self.scratch, i == 0) {
                        self.rejected.add(RejectReason::InvalidName, 1);
                        return Err(Unsendable::new("invalid_name", p));
                    }
                    if i == 1 {
                        key.push(SEPARATOR);
                    }
                    key.push_str(&self.scratch);
                }
            }
        }
        Ok(())
    }

    fn order_key(&self, event: &Event) -> Option<i64> {
        Some(timestamp_ms(event))
    }

    fn encode(&mut self, event: &Event, out: &mut Vec<u8>) -> Result<(), Unsendable> {
        let head = out.len();
        out.extend_from_slice(&timestamp_ms(event).to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        let start = out.len();
        self.write_message(event, out);
        if out.len() == start {
            out.truncate(head);
            self.rejected.add(RejectReason::EmptyMessage, 1);
            return Err(Unsendable::new(
                "empty_message",
                "the event's message is empty, and CloudWatch Logs refuses an empty message",
            ));
        }
        if out.len() - start > MAX_MESSAGE_BYTES {
            self.truncate(event, out, start);
        }
        let len = (out.len() - start) as u32;
        out[head + 8..start].copy_from_slice(&len.to_le_bytes());
        Ok(())
    }

    fn build(
        &mut self,
        partition: &str,
        body: Bytes,
        events: usize,
    ) -> Result<Built<PutRequest>, Unsendable> {
        let (group, stream) = Self::split_key(partition);
        Ok(Built {
            destination: self.destination.clone(),
            request: PutRequest {
                group: group.to_string(),
                stream: stream.to_string(),
                body,
                events,
            },
        })
    }
}

/// The events of a payload, for the SDK: `(timestamp ms, message)` in payload order.
/// `None` if the payload is not one this module wrote.
pub fn decode(body: &[u8]) -> Option<Vec<(i64, &str)>> {
    let mut events = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let ts = i64::from_le_bytes(rest.get(..8)?.try_into().ok()?);
        let len = u32::from_le_bytes(rest.get(8..HEADER)?.try_into().ok()?) as usize;
        let message = std::str::from_utf8(rest.get(HEADER..HEADER + len)?).ok()?;
        events.push((ts, message));
        rest = &rest[HEADER + len..];
    }
    Some(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventMetadata, LogEvent, ObjectMap};
    use crate::internal_events::{ComponentKind, ComponentLabels};
    use crate::sinks::util::batch::{BatchLimits, Batcher, Framing};
    use crate::sinks::util::encoding::Codec;
    use chrono::{DateTime, Utc};

    fn metrics() -> ComponentMetrics {
        ComponentMetrics::new(ComponentLabels {
            id: "cw".into(),
            kind: ComponentKind::Sink,
            type_name: "aws_cloudwatch_logs",
        })
    }

    fn builder(codec: Codec, names: Names) -> CloudwatchRequestBuilder {
        CloudwatchRequestBuilder::new(names, Encoder::new(codec), None, "test".into(), &metrics())
    }

    fn fixed() -> Names {
        Names::Fixed(CloudwatchRequestBuilder::key("g", "s"))
    }

    fn event(message: &str, host: &str, at: DateTime<Utc>) -> Event {
        let mut f = ObjectMap::new();
        f.insert("message".into(), Value::from(message));
        f.insert("host".into(), Value::from(host));
        f.insert("timestamp".into(), Value::Timestamp(at));
        Event::Log(LogEvent::from_parts(
            f,
            EventMetadata::new("in", Utc::now()),
        ))
    }

    fn encode_one(b: &mut CloudwatchRequestBuilder, e: &Event) -> (i64, String) {
        let mut out = Vec::new();
        b.encode(e, &mut out).unwrap();
        let events = decode(&out).unwrap();
        assert_eq!(events.len(), 1);
        (events[0].0, events[0].1.to_string())
    }

    #[test]
    fn an_event_becomes_its_timestamp_and_its_encoded_message() {
        let at = Utc::now();
        let e = event("héllo", "web-1", at);
        let (ts, m) = encode_one(&mut builder(Codec::Text, fixed()), &e);
        assert_eq!((ts, m.as_str()), (at.timestamp_millis(), "héllo"));
        let (_, m) = encode_one(&mut builder(Codec::Json, fixed()), &e);
        let v: serde_json::Value = serde_json::from_str(&m).unwrap();
        assert_eq!(v["message"], "héllo");
        assert_eq!(v["host"], "web-1");
    }

    #[test]
    fn an_oversized_message_is_truncated_to_fit_and_stays_valid_json() {
        // Quotes grow by escaping, and a multi-byte character must not be cut in half.
        let big = "é\"x".repeat(600_000);
        let e = event(&big, "h", Utc::now());
        for codec in [Codec::Json, Codec::Text] {
            let (_, m) = encode_one(&mut builder(codec, fixed()), &e);
            assert!(m.len() <= MAX_MESSAGE_BYTES, "{codec:?}: {}", m.len());
            assert!(
                m.len() > MAX_MESSAGE_BYTES - 200_000,
                "{codec:?}: kept too little"
            );
            let message = if codec == Codec::Json {
                let v: serde_json::Value = serde_json::from_str(&m).unwrap();
                assert_eq!(v["host"], "h");
                v["message"].as_str().unwrap().to_string()
            } else {
                m
            };
            assert!(message.ends_with(TRUNCATED_MARKER), "{codec:?}");
            assert!(big.starts_with(message.trim_end_matches(TRUNCATED_MARKER)));
        }
        // Large because of another field: the start of the line is kept, as JSON.
        let mut f = ObjectMap::new();
        f.insert("message".into(), Value::from("short"));
        f.insert("blob".into(), Value::from("b".repeat(2 << 20)));
        let e = Event::Log(LogEvent::from_parts(
            f,
            EventMetadata::new("in", Utc::now()),
        ));
        let (_, m) = encode_one(&mut builder(Codec::Json, fixed()), &e);
        assert!(m.len() <= MAX_MESSAGE_BYTES);
        let v: serde_json::Value = serde_json::from_str(&m).unwrap();
        assert_eq!(v["truncated"], true);
        assert!(v["message"]
            .as_str()
            .unwrap()
            .starts_with("{\"blob\":\"bbb"));
    }

    #[test]
    fn events_too_old_too_new_or_empty_are_refused_unsent() {
        let mut b = builder(Codec::Text, fixed());
        let mut key = String::new();
        let now = Utc::now();
        for (age_h, ok) in [
            (0, true),
            (24 * 13, true),
            (24 * 15, false),
            (-1, true),
            (-3, false),
        ] {
            key.clear();
            let e = event("m", "h", now - chrono::Duration::hours(age_h));
            assert_eq!(b.partition(&e, &mut key).is_ok(), ok, "{age_h} h old");
        }
        let mut out = Vec::new();
        let err = b.encode(&event("", "h", now), &mut out).unwrap_err();
        assert_eq!(err.error_type, "empty_message");
        assert!(out.is_empty());
        // A shorter retention refuses sooner.
        let mut b = CloudwatchRequestBuilder::new(
            fixed(),
            Encoder::new(Codec::Text),
            Some(1),
            "t".into(),
            &metrics(),
        );
        assert!(b
            .partition(
                &event("m", "h", now - chrono::Duration::hours(30)),
                &mut key
            )
            .is_err());
    }

    #[test]
    fn templated_names_partition_by_group_and_stream_and_bad_names_are_refused() {
        let names = Names::Templated {
            group: Template::parse("/app/{{ host }}").unwrap(),
            stream: Template::parse("{{ host }}-%Y").unwrap(),
        };
        let mut b = builder(Codec::Text, names);
        let mut key = String::new();
        let now = Utc::now();
        b.partition(&event("m", "web-1", now), &mut key).unwrap();
        let year = now.format("%Y").to_string();
        assert_eq!(
            CloudwatchRequestBuilder::split_key(&key),
            ("/app/web-1", format!("web-1-{year}").as_str())
        );
        key.clear();
        let err = b
            .partition(&event("m", "bad host:1", now), &mut key)
            .unwrap_err();
        assert_eq!(err.error_type, "invalid_name");
    }

    #[test]
    fn payloads_stay_within_every_putlogevents_limit() {
        // 25,000 events of varied size over 3 days, arriving out of order.
        let mut b = builder(Codec::Text, fixed());
        let mut batcher = Batcher::new(
            BatchLimits {
                max_events: MAX_REQUEST_EVENTS,
                max_bytes: MAX_REQUEST_BYTES,
                timeout: std::time::Duration::from_secs(1),
                per_event_overhead: EVENT_OVERHEAD - HEADER,
                max_order_span: Some(MAX_SPAN_MS),
            },
            Framing::fixed(b"", b"", b""),
        );
        let now = Utc::now();
        let mut ready = Vec::new();
        for i in 0..25_000u32 {
            let age = chrono::Duration::minutes(i64::from((i * 7919) % (3 * 24 * 60)));
            let e = event(&"x".repeat((i % 200) as usize + 1), "h", now - age);
            let order = b.order_key(&e);
            batcher
                .push_ordered(
                    "k",
                    order,
                    |out| b.encode(&e, out),
                    Default::default(),
                    &mut ready,
                )
                .unwrap();
        }
        batcher.take_due(true, &mut ready);
        let mut total = 0;
        for p in &ready {
            let events = decode(&p.body).unwrap();
            let bytes: usize = events.iter().map(|(_, m)| m.len() + EVENT_OVERHEAD).sum();
            assert!(events.len() <= MAX_REQUEST_EVENTS);
            assert!(bytes <= MAX_REQUEST_BYTES, "{bytes}");
            assert!(
                events.windows(2).all(|w| w[0].0 <= w[1].0),
                "not chronological"
            );
            let span = events.last().unwrap().0 - events[0].0;
            assert!(span <= MAX_SPAN_MS, "spans {span} ms");
            total += events.len();
        }
        assert_eq!(total, 25_000);
        assert!(ready.len() >= 3);
    }
}
