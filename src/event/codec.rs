//! A compact binary form of events, for the disk buffer: every value keeps its type (a
//! timestamp stays a timestamp, an integer an integer, bytes that are not UTF-8 stay
//! bytes), with the metadata that must survive a restart (source, ingest time, VRL's
//! `%` metadata). Finalizers do not travel: whoever waits for delivery was answered
//! when the event reached the disk.
//!
//! Lengths and integers are LEB128 varints; a decoder never trusts a length beyond the
//! bytes it was given, so a corrupt record is an error, never a panic or a huge
//! allocation.

use super::{Bucket, Quantile, Sample, StatisticKind};
use super::{Event, EventMetadata, LogEvent, Metric, MetricKind, MetricValue, ObjectMap, Value};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};

/// Bumped when the form changes; a record of another version is reported, not guessed.
pub const VERSION: u8 = 1;

/// Why bytes could not be read back as events.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes ended inside a value.
    #[error("truncated at byte {0}")]
    Truncated(usize),
    /// A tag or value no encoder writes.
    #[error("invalid {what} at byte {at}")]
    Invalid {
        /// What was being read.
        what: &'static str,
        /// Where.
        at: usize,
    },
}

/// Appends the binary form of `event` to `out`.
pub fn encode(event: &Event, out: &mut Vec<u8>) {
    match event {
        Event::Log(l) => {
            out.push(0);
            metadata(&l.metadata, out);
            object(l.fields(), out);
        }
        Event::Metric(m) => {
            out.push(1);
            metadata(&m.metadata, out);
            metric(m, out);
        }
    }
}

#[inline(always)]
fn varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

#[inline(always)]
fn bytes(b: &[u8], out: &mut Vec<u8>) {
    varint(b.len() as u64, out);
    append(b, out);
}

/// `extend_from_slice` without a call to `memcpy` for the short keys and values most
/// events are made of: up to 16 bytes are two overlapping fixed-size copies, which
/// compile to plain loads and stores (a third of the encoding time went to `memcpy`).
#[inline(always)]
fn append(b: &[u8], out: &mut Vec<u8>) {
    match b.len() {
        8..=16 => overlapping::<8>(b, out),
        4..=7 => overlapping::<4>(b, out),
        0..=3 => {
            for &x in b {
                out.push(x);
            }
        }
        _ => out.extend_from_slice(b),
    }
}

/// Appends `b` (`N` to `2 * N` bytes long) as its first and its last `N` bytes, the
/// second copy overwriting what the two share.
#[inline(always)]
fn overlapping<const N: usize>(b: &[u8], out: &mut Vec<u8>) {
    let n = b.len();
    let (Ok(head), Ok(tail)) = (
        <[u8; N]>::try_from(&b[..N]),
        <[u8; N]>::try_from(&b[n - N..]),
    ) else {
        return out.extend_from_slice(b);
    };
    let start = out.len();
    out.extend_from_slice(&head);
    out.truncate(start + n - N);
    out.extend_from_slice(&tail);
}

#[inline(always)]
fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

#[inline(always)]
fn time(t: &DateTime<Utc>, out: &mut Vec<u8>) {
    varint(zigzag(t.timestamp()), out);
    varint(u64::from(t.timestamp_subsec_nanos()), out);
}

fn metadata(m: &EventMetadata, out: &mut Vec<u8>) {
    bytes(m.source_id.as_str().as_bytes(), out);
    time(&m.ingest_time, out);
    match &m.value {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            value(v, out);
        }
    }
}

fn object(o: &ObjectMap, out: &mut Vec<u8>) {
    varint(o.len() as u64, out);
    for (k, v) in o {
        bytes(k.as_str().as_bytes(), out);
        value(v, out);
    }
}

fn value(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Bytes(b) => {
            out.push(0);
            bytes(b, out);
        }
        Value::String(s) => {
            out.push(1);
            bytes(s.as_bytes(), out);
        }
        Value::Regex(r) => {
            out.push(2);
            bytes(r.as_bytes_slice(), out);
        }
        Value::Integer(i) => {
            out.push(3);
            varint(zigzag(*i), out);
        }
        Value::Float(f) => {
            out.push(4);
            out.extend_from_slice(&f.into_inner().to_le_bytes());
        }
        Value::Boolean(b) => out.push(if *b { 6 } else { 5 }),
        Value::Timestamp(t) => {
            out.push(7);
            time(t, out);
        }
        Value::Object(o) => {
            out.push(8);
            object(o, out);
        }
        Value::Array(a) => {
            out.push(9);
            varint(a.len() as u64, out);
            for v in a {
                value(v, out);
            }
        }
        Value::Null => out.push(10),
    }
}

fn f64s(v: f64, out: &mut Vec<u8>) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn metric(m: &Metric, out: &mut Vec<u8>) {
    bytes(m.name.as_bytes(), out);
    match &m.namespace {
        None => out.push(0),
        Some(n) => {
            out.push(1);
            bytes(n.as_bytes(), out);
        }
    }
    varint(m.tags.len() as u64, out);
    for (k, v) in &m.tags {
        bytes(k.as_bytes(), out);
        bytes(v.as_bytes(), out);
    }
    out.push(match m.kind {
        MetricKind::Incremental => 0,
        MetricKind::Absolute => 1,
    });
    match &m.timestamp {
        None => out.push(0),
        Some(t) => {
            out.push(1);
            time(t, out);
        }
    }
    match m.interval_ms {
        None => out.push(0),
        Some(i) => {
            out.push(1);
            varint(u64::from(i), out);
        }
    }
    match &m.value {
        MetricValue::Counter(v) => {
            out.push(0);
            f64s(*v, out);
        }
        MetricValue::Gauge(v) => {
            out.push(1);
            f64s(*v, out);
        }
        MetricValue::Set(s) => {
            out.push(2);
            varint(s.len() as u64, out);
            for v in s {
                bytes(v.as_bytes(), out);
            }
        }
        MetricValue::Distribution { samples, statistic } => {
            out.push(3);
            out.push(match statistic {
                StatisticKind::Histogram => 0,
                StatisticKind::Summary => 1,
            });
            varint(samples.len() as u64, out);
            for s in samples {
                f64s(s.value, out);
                varint(u64::from(s.rate), out);
            }
        }
        MetricValue::AggregatedHistogram {
            buckets,
            count,
            sum,
        } => {
            out.push(4);
            varint(buckets.len() as u64, out);
            for b in buckets {
                f64s(b.upper_limit, out);
                varint(b.count, out);
            }
            varint(*count, out);
            f64s(*sum, out);
        }
        MetricValue::AggregatedSummary {
            quantiles,
            count,
            sum,
        } => {
            out.push(5);
            varint(quantiles.len() as u64, out);
            for q in quantiles {
                f64s(q.quantile, out);
                f64s(q.value, out);
            }
            varint(*count, out);
            f64s(*sum, out);
        }
    }
}

/// Reads events back from the bytes [`encode`] wrote.
pub struct Decoder<'a> {
    buf: &'a [u8],
    at: usize,
    /// When decoding from a shared buffer, byte values are slices of it, not copies.
    shared: Option<&'a bytes::Bytes>,
    /// The last source ID met: interning takes a lock, and a record's events nearly
    /// always share their source.
    source: Option<(&'a [u8], super::SourceId)>,
}

impl<'a> Decoder<'a> {
    /// A decoder over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            at: 0,
            shared: None,
            source: None,
        }
    }

    /// A decoder whose byte values share `buf` instead of copying out of it.
    pub fn shared(buf: &'a bytes::Bytes) -> Self {
        Self {
            buf,
            at: 0,
            shared: Some(buf),
            source: None,
        }
    }

    /// Whether every byte was read.
    pub fn is_empty(&self) -> bool {
        self.at >= self.buf.len()
    }

    /// The next event.
    pub fn event(&mut self) -> Result<Event, DecodeError> {
        match self.u8()? {
            0 => {
                let md = self.metadata()?;
                let fields = self.object(0)?;
                Ok(Event::Log(LogEvent::from_parts(fields, md)))
            }
            1 => {
                let md = self.metadata()?;
                Ok(Event::Metric(Box::new(self.metric(md)?)))
            }
            _ => Err(self.invalid("event kind")),
        }
    }

    fn invalid(&self, what: &'static str) -> DecodeError {
        DecodeError::Invalid { what, at: self.at }
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        let b = *self
            .buf
            .get(self.at)
            .ok_or(DecodeError::Truncated(self.at))?;
        self.at += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(self.invalid("varint"))
    }

    /// A count of items that each take at least one byte: never more than the bytes
    /// left, so a corrupt count cannot reserve a huge allocation.
    fn count(&mut self) -> Result<usize, DecodeError> {
        let n = self.varint()?;
        let left = (self.buf.len() - self.at.min(self.buf.len())) as u64;
        if n > left {
            return Err(DecodeError::Truncated(self.at));
        }
        Ok(n as usize)
    }

    fn slice(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.count()?;
        let s = &self.buf[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let at = self.at;
        let s = self.slice()?;
        String::from_utf8(s.to_vec()).map_err(|_| DecodeError::Invalid {
            what: "UTF-8 text",
            at,
        })
    }

    fn f64(&mut self) -> Result<f64, DecodeError> {
        let end = self.at + 8;
        let b = self
            .buf
            .get(self.at..end)
            .ok_or(DecodeError::Truncated(self.at))?;
        self.at = end;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_le_bytes(a))
    }

    fn zigzag(&mut self) -> Result<i64, DecodeError> {
        let n = self.varint()?;
        Ok(((n >> 1) as i64) ^ -((n & 1) as i64))
    }

    fn time(&mut self) -> Result<DateTime<Utc>, DecodeError> {
        let secs = self.zigzag()?;
        let nanos = self.varint()?;
        u32::try_from(nanos)
            .ok()
            .and_then(|n| DateTime::from_timestamp(secs, n))
            .ok_or_else(|| self.invalid("timestamp"))
    }

    fn metadata(&mut self) -> Result<EventMetadata, DecodeError> {
        let at = self.at;
        let raw = self.slice()?;
        let source = match self.source {
            Some((last, id)) if last == raw => id,
            _ => {
                let name = std::str::from_utf8(raw).map_err(|_| DecodeError::Invalid {
                    what: "source ID",
                    at,
                })?;
                let id = super::intern(name);
                self.source = Some((raw, id));
                id
            }
        };
        let mut md = EventMetadata::new(source, self.time()?);
        md.value = match self.u8()? {
            0 => None,
            1 => Some(Box::new(self.value(0)?)),
            _ => return Err(self.invalid("metadata")),
        };
        Ok(md)
    }

    /// Objects and arrays nest at most this deep, so a corrupt record cannot exhaust the
    /// stack.
    const MAX_DEPTH: usize = 128;

    fn object(&mut self, depth: usize) -> Result<ObjectMap, DecodeError> {
        if depth > Self::MAX_DEPTH {
            return Err(self.invalid("nesting depth"));
        }
        let n = self.count()?;
        let mut o = ObjectMap::new();
        for _ in 0..n {
            let k = self.string()?;
            let v = self.value(depth + 1)?;
            o.insert(k.into(), v);
        }
        Ok(o)
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        Ok(match self.u8()? {
            0 => {
                let start = self.at;
                let s = self.slice()?;
                Value::Bytes(match self.shared {
                    Some(b) => b.slice(start + (self.at - start - s.len())..self.at),
                    None => bytes::Bytes::copy_from_slice(s),
                })
            }
            1 => Value::String(self.string()?.into()),
            2 => {
                let at = self.at;
                let pattern = self.string()?;
                let re = regex::Regex::new(&pattern)
                    .map_err(|_| DecodeError::Invalid { what: "regex", at })?;
                Value::Regex(vrl::value::value::ValueRegex::new(std::sync::Arc::new(re)))
            }
            3 => Value::Integer(self.zigzag()?),
            4 => {
                let f = self.f64()?;
                Value::Float(vrl::prelude::NotNan::new(f).map_err(|_| self.invalid("float"))?)
            }
            5 => Value::Boolean(false),
            6 => Value::Boolean(true),
            7 => Value::Timestamp(self.time()?),
            8 => Value::Object(self.object(depth + 1)?),
            9 => {
                if depth > Self::MAX_DEPTH {
                    return Err(self.invalid("nesting depth"));
                }
                let n = self.count()?;
                let mut a = Vec::with_capacity(n);
                for _ in 0..n {
                    a.push(self.value(depth + 1)?);
                }
                Value::Array(a)
            }
            10 => Value::Null,
            _ => return Err(self.invalid("value type")),
        })
    }

    fn metric(&mut self, metadata: EventMetadata) -> Result<Metric, DecodeError> {
        let name = self.string()?;
        let namespace = match self.u8()? {
            0 => None,
            1 => Some(self.string()?),
            _ => return Err(self.invalid("namespace")),
        };
        let n = self.count()?;
        let mut tags = BTreeMap::new();
        for _ in 0..n {
            let k = self.string()?;
            tags.insert(k, self.string()?);
        }
        let kind = match self.u8()? {
            0 => MetricKind::Incremental,
            1 => MetricKind::Absolute,
            _ => return Err(self.invalid("metric kind")),
        };
        let timestamp = match self.u8()? {
            0 => None,
            1 => Some(self.time()?),
            _ => return Err(self.invalid("timestamp")),
        };
        let interval_ms = match self.u8()? {
            0 => None,
            1 => Some(u32::try_from(self.varint()?).map_err(|_| self.invalid("interval"))?),
            _ => return Err(self.invalid("interval")),
        };
        let value = match self.u8()? {
            0 => MetricValue::Counter(self.f64()?),
            1 => MetricValue::Gauge(self.f64()?),
            2 => {
                let n = self.count()?;
                let mut s = BTreeSet::new();
                for _ in 0..n {
                    s.insert(self.string()?);
                }
                MetricValue::Set(s)
            }
            3 => {
                let statistic = match self.u8()? {
                    0 => StatisticKind::Histogram,
                    1 => StatisticKind::Summary,
                    _ => return Err(self.invalid("statistic")),
                };
                let n = self.count()?;
                let mut samples = Vec::with_capacity(n);
                for _ in 0..n {
                    let value = self.f64()?;
                    let rate = u32::try_from(self.varint()?).map_err(|_| self.invalid("rate"))?;
                    samples.push(Sample { value, rate });
                }
                MetricValue::Distribution { samples, statistic }
            }
            4 => {
                let n = self.count()?;
                let mut buckets = Vec::with_capacity(n);
                for _ in 0..n {
                    let upper_limit = self.f64()?;
                    buckets.push(Bucket {
                        upper_limit,
                        count: self.varint()?,
                    });
                }
                MetricValue::AggregatedHistogram {
                    buckets,
                    count: self.varint()?,
                    sum: self.f64()?,
                }
            }
            5 => {
                let n = self.count()?;
                let mut quantiles = Vec::with_capacity(n);
                for _ in 0..n {
                    let quantile = self.f64()?;
                    quantiles.push(Quantile {
                        quantile,
                        value: self.f64()?,
                    });
                }
                MetricValue::AggregatedSummary {
                    quantiles,
                    count: self.varint()?,
                    sum: self.f64()?,
                }
            }
            _ => return Err(self.invalid("metric value")),
        };
        let mut m = Metric::new(name, kind, value, metadata);
        m.namespace = namespace;
        m.tags = tags;
        m.timestamp = timestamp;
        m.interval_ms = interval_ms;
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(e: &Event) -> Event {
        let mut buf = Vec::new();
        encode(e, &mut buf);
        let mut d = Decoder::new(&buf);
        let back = d.event().expect("decode");
        assert!(d.is_empty());
        back
    }

    #[test]
    fn every_value_type_comes_back_as_it_was() {
        let t = DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap();
        let mut fields = ObjectMap::new();
        fields.insert(
            "bytes".into(),
            Value::Bytes(bytes::Bytes::from_static(b"\xff\x00raw")),
        );
        fields.insert("text".into(), Value::String(String::from("héllo").into()));
        fields.insert("int".into(), Value::Integer(-42));
        fields.insert("float".into(), Value::from_f64_or_zero(1.5));
        fields.insert("yes".into(), Value::Boolean(true));
        fields.insert("when".into(), Value::Timestamp(t));
        fields.insert("none".into(), Value::Null);
        fields.insert(
            "list".into(),
            Value::Array(vec![Value::Integer(i64::MIN), Value::Integer(i64::MAX)]),
        );
        let mut inner = ObjectMap::new();
        inner.insert("deep".into(), Value::from("x"));
        fields.insert("obj".into(), Value::Object(inner));
        let mut md = EventMetadata::new("src", t);
        md.value = Some(Box::new(Value::from("meta")));
        let e: Event = LogEvent::from_parts(fields.clone(), md).into();
        let back = round_trip(&e);
        let log = back.as_log().unwrap();
        assert_eq!(log.fields(), &fields);
        // The same from a shared buffer, whose byte values are slices of it.
        let mut buf = Vec::new();
        encode(&e, &mut buf);
        let shared = bytes::Bytes::from(buf);
        let again = Decoder::shared(&shared).event().expect("decode");
        assert_eq!(again.as_log().unwrap().fields(), &fields);
        assert_eq!(back.metadata().source_id.as_str(), "src");
        assert_eq!(back.metadata().ingest_time, t);
        assert_eq!(back.metadata().value.as_deref(), Some(&Value::from("meta")));
    }

    /// Short keys and values are copied without `memcpy`, in pieces by length: every
    /// length across the pieces' edges comes back byte for byte.
    #[test]
    fn keys_and_values_of_every_short_length_come_back_whole() {
        let text: String = ('a'..='z').chain('A'..='Z').collect();
        let mut fields = ObjectMap::new();
        for n in 0..=40usize {
            let key = format!("{n:02}{}", &text[..n.saturating_sub(2)]);
            fields.insert(key.as_str().into(), Value::from(&text[..n]));
        }
        let e: Event =
            LogEvent::from_parts(fields.clone(), EventMetadata::new("s", Utc::now())).into();
        assert_eq!(round_trip(&e).as_log().unwrap().fields(), &fields);
    }

    #[test]
    fn metrics_come_back_with_their_series_and_value() {
        let md = EventMetadata::new("m", Utc::now());
        let mut m = Metric::new(
            "latency",
            MetricKind::Absolute,
            MetricValue::AggregatedHistogram {
                buckets: vec![Bucket {
                    upper_limit: 0.5,
                    count: 3,
                }],
                count: 3,
                sum: 1.2,
            },
            md,
        );
        m.namespace = Some("app".into());
        m.tags.insert("host".into(), "a".into());
        m.timestamp = Some(Utc::now());
        m.interval_ms = Some(10_000);
        let back = round_trip(&m.clone().into());
        let Event::Metric(b) = back else {
            panic!("not a metric")
        };
        assert_eq!(b.name, m.name);
        assert_eq!(b.namespace, m.namespace);
        assert_eq!(b.tags, m.tags);
        assert_eq!(b.value, m.value);
        assert_eq!(b.timestamp, m.timestamp);
        assert_eq!(b.interval_ms, m.interval_ms);
    }

    #[test]
    fn corrupt_bytes_are_an_error_never_a_panic() {
        let mut fields = ObjectMap::new();
        fields.insert("message".into(), Value::from("hello world"));
        let e: Event = LogEvent::from_parts(fields, EventMetadata::new("s", Utc::now())).into();
        let mut buf = Vec::new();
        encode(&e, &mut buf);
        for cut in 0..buf.len() {
            assert!(Decoder::new(&buf[..cut]).event().is_err(), "cut at {cut}");
        }
        // Every single-byte change either fails or decodes to something; none panics.
        for i in 0..buf.len() {
            for x in [0x00, 0x7f, 0x80, 0xff] {
                let mut b = buf.clone();
                b[i] = x;
                let _ = Decoder::new(&b).event();
            }
        }
    }
}
