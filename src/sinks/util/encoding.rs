//! Event encoders shared by the sinks: JSON (one object per event, timestamps in
//! RFC 3339) and text (the `message` field). They write into a caller's reusable buffer,
//! so encoding a batch allocates nothing once the buffer has grown.

use crate::event::{Event, Metric, MetricKind, MetricValue, ObjectMap, Value};
use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::{Deserialize, Serialize};

/// `encoding` of a sink.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EncodingConfig {
    /// `json` (default) or `text`.
    #[serde(default)]
    pub codec: Codec,
}

/// `compression` of a sink: files written gzipped, or HTTP bodies sent with
/// `Content-Encoding: gzip`.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// As is.
    #[default]
    None,
    /// gzip (flate2, fast level).
    Gzip,
}

/// How events become bytes.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Codec {
    /// One JSON object per event with every field.
    #[default]
    Json,
    /// The `message` field only, as it arrived.
    Text,
}

impl Codec {
    /// Appends one event and a newline to `out`.
    pub fn encode_line(self, event: &Event, out: &mut Vec<u8>) {
        match self {
            Codec::Json => encode_json(event, out),
            Codec::Text => encode_text(event, out),
        }
        out.push(b'\n');
    }
}

/// Appends an event as one JSON object.
pub fn encode_json(event: &Event, out: &mut Vec<u8>) {
    match event {
        Event::Log(l) => write_object(l.fields(), out),
        Event::Metric(m) => write_metric(m, out),
    }
}

/// Appends the event's `message` (a log's text, a metric's name and value).
pub fn encode_text(event: &Event, out: &mut Vec<u8>) {
    match event {
        Event::Log(l) => match l.get("message") {
            Some(Value::Bytes(b)) => out.extend_from_slice(b),
            Some(Value::String(s)) => out.extend_from_slice(s.as_bytes()),
            Some(other) => write_value(other, out),
            None => {}
        },
        Event::Metric(m) => {
            out.extend_from_slice(m.name.as_bytes());
            out.push(b' ');
            match &m.value {
                MetricValue::Counter(v) | MetricValue::Gauge(v) => write_f64(*v, out),
                MetricValue::Distribution(s) => write_f64(s.len() as f64, out),
            }
        }
    }
}

fn write_metric(m: &Metric, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"name\":");
    write_str(&m.name, out);
    out.extend_from_slice(b",\"tags\":{");
    for (i, (k, v)) in m.tags.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(k, out);
        out.push(b':');
        write_str(v, out);
    }
    out.extend_from_slice(b"},\"kind\":");
    out.extend_from_slice(match m.kind {
        MetricKind::Incremental => b"\"incremental\"",
        MetricKind::Absolute => b"\"absolute\"",
    });
    match &m.value {
        MetricValue::Counter(v) => {
            out.extend_from_slice(b",\"counter\":{\"value\":");
            write_f64(*v, out);
            out.push(b'}');
        }
        MetricValue::Gauge(v) => {
            out.extend_from_slice(b",\"gauge\":{\"value\":");
            write_f64(*v, out);
            out.push(b'}');
        }
        MetricValue::Distribution(samples) => {
            out.extend_from_slice(b",\"distribution\":{\"samples\":[");
            for (i, (v, rate)) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"value\":");
                write_f64(*v, out);
                out.extend_from_slice(b",\"rate\":");
                out.extend_from_slice(itoa::Buffer::new().format(*rate).as_bytes());
                out.push(b'}');
            }
            out.extend_from_slice(b"]}");
        }
    }
    if let Some(ts) = m.timestamp {
        out.extend_from_slice(b",\"timestamp\":\"");
        write_timestamp(&ts, out);
        out.push(b'"');
    }
    out.push(b'}');
}

fn write_object(map: &ObjectMap, out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(k.as_str(), out);
        out.push(b':');
        write_value(v, out);
    }
    out.push(b'}');
}

fn write_value(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Bytes(b) => write_bytes(b, out),
        Value::String(s) => write_str(s, out),
        Value::Regex(r) => write_str(r.as_str(), out),
        Value::Integer(i) => out.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes()),
        Value::Float(f) => write_f64(f.into_inner(), out),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Timestamp(ts) => {
            out.push(b'"');
            write_timestamp(ts, out);
            out.push(b'"');
        }
        Value::Object(m) => write_object(m, out),
        Value::Array(a) => {
            out.push(b'[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out);
            }
            out.push(b']');
        }
        Value::Null => out.extend_from_slice(b"null"),
    }
}

fn write_f64(v: f64, out: &mut Vec<u8>) {
    if v.is_finite() {
        out.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}

/// Bytes as a JSON string; invalid UTF-8 is replaced so the output is always valid JSON.
/// ASCII text (the common case) is checked and escaped in one pass; only text with
/// non-ASCII bytes pays for a UTF-8 validation.
fn write_bytes(b: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    if write_escaped(b, out) && std::str::from_utf8(b).is_err() {
        out.truncate(start);
        write_escaped(String::from_utf8_lossy(b).as_bytes(), out);
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Whether any byte of `w` needs a closer look: below 0x20, `"`, `\\` (escaped in
/// JSON) or 0x80 and above (not ASCII). Exact, using the classic word tricks.
#[inline]
fn word_is_special(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    let q = w ^ (ONES * b'"' as u64);
    let quote = q.wrapping_sub(ONES) & !q & HIGH;
    let b = w ^ (ONES * b'\\' as u64);
    let backslash = b.wrapping_sub(ONES) & !b & HIGH;
    (below_space | quote | backslash | (w & HIGH)) != 0
}

/// A JSON string literal.
pub fn write_str(s: &str, out: &mut Vec<u8>) {
    write_escaped(s.as_bytes(), out);
}

/// Writes `bytes` as a JSON string literal: checks eight bytes at a time (a short tail
/// as one word padded with a plain letter), looks at single bytes only inside a word that
/// needs it, copies runs in one go. Returns whether any byte was not ASCII (so the
/// caller knows whether UTF-8 still needs validating).
fn write_escaped(bytes: &[u8], out: &mut Vec<u8>) -> bool {
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let n = bytes.len();
    let (mut start, mut i, mut non_ascii) = (0, 0, false);
    while i < n {
        let word = match bytes[i..].first_chunk::<8>() {
            Some(w) => *w,
            None => {
                let mut w = [b'A'; 8];
                w[..n - i].copy_from_slice(&bytes[i..]);
                w
            }
        };
        if !word_is_special(u64::from_le_bytes(word)) {
            i += 8;
            continue;
        }
        for _ in 0..8 {
            let Some(&b) = bytes.get(i) else { break };
            i += 1;
            let esc: &[u8] = match b {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                b'\t' => b"\\t",
                0x08 => b"\\b",
                0x0c => b"\\f",
                0..=0x1f => {
                    out.extend_from_slice(&bytes[start..i - 1]);
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[(b >> 4) as usize]);
                    out.push(HEX[(b & 0xf) as usize]);
                    start = i;
                    continue;
                }
                _ => {
                    non_ascii |= b >= 0x80;
                    continue;
                }
            };
            out.extend_from_slice(&bytes[start..i - 1]);
            out.extend_from_slice(esc);
            start = i;
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
    non_ascii
}

fn push_digits(out: &mut Vec<u8>, v: u32, width: usize) {
    let mut buf = [b'0'; 10];
    let mut v = v;
    for i in (0..width).rev() {
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.extend_from_slice(&buf[..width]);
}

/// RFC 3339 in UTC with as many fraction digits as needed (0, 3, 6 or 9), like
/// chrono's `to_rfc3339_opts(AutoSi, true)` but without allocating.
pub fn write_timestamp(ts: &DateTime<Utc>, out: &mut Vec<u8>) {
    let year = ts.year();
    if !(0..=9999).contains(&year) {
        out.extend_from_slice(
            ts.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                .as_bytes(),
        );
        return;
    }
    push_digits(out, year as u32, 4);
    out.push(b'-');
    push_digits(out, ts.month(), 2);
    out.push(b'-');
    push_digits(out, ts.day(), 2);
    out.push(b'T');
    push_digits(out, ts.hour(), 2);
    out.push(b':');
    push_digits(out, ts.minute(), 2);
    out.push(b':');
    push_digits(out, ts.second(), 2);
    let nanos = ts.nanosecond() % 1_000_000_000;
    if nanos != 0 {
        out.push(b'.');
        if nanos % 1_000_000 == 0 {
            push_digits(out, nanos / 1_000_000, 3);
        } else if nanos % 1_000 == 0 {
            push_digits(out, nanos / 1_000, 6);
        } else {
            push_digits(out, nanos, 9);
        }
    }
    out.push(b'Z');
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn timestamps_match_chrono() {
        for nanos in [0, 3_000_000, 3_000, 7] {
            let ts = Utc
                .with_ymd_and_hms(2003, 10, 11, 22, 14, 15)
                .single()
                .unwrap_or_default()
                + chrono::Duration::nanoseconds(nanos);
            let mut out = Vec::new();
            write_timestamp(&ts, &mut out);
            assert_eq!(
                String::from_utf8_lossy(&out),
                ts.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            );
        }
    }

    #[test]
    fn strings_round_trip_through_serde_json() {
        let s = "quote\" back\\ nl\n tab\t bell\u{7} é ☃";
        let mut out = Vec::new();
        write_str(s, &mut out);
        let back: String = serde_json::from_slice(&out).unwrap_or_default();
        assert_eq!(back, s);
    }

    #[test]
    fn invalid_utf8_bytes_become_replacement_characters() {
        let mut out = Vec::new();
        write_bytes(b"caf\xe9 \"ok\"", &mut out);
        assert_eq!(String::from_utf8_lossy(&out), "\"caf\u{fffd} \\\"ok\\\"\"");
    }

    proptest::proptest! {
        #[test]
        fn bytes_escaping_matches_serde_json(b in proptest::collection::vec(proptest::num::u8::ANY, 0..40)) {
            let mut out = Vec::new();
            write_bytes(&b, &mut out);
            proptest::prop_assert_eq!(String::from_utf8_lossy(&out).into_owned(), serde_json::to_string(&String::from_utf8_lossy(&b)).unwrap_or_default());
        }

        #[test]
        fn escaping_matches_serde_json(s in "\\PC*|[\\x00-\\x7f]{0,40}") {
            let mut out = Vec::new();
            write_str(&s, &mut out);
            proptest::prop_assert_eq!(String::from_utf8_lossy(&out).into_owned(), serde_json::to_string(&s).unwrap_or_default());
        }
    }
}
