//! The JSON writer (one object per event, Vector's shapes for logs and metrics) and the
//! text writer (the `message` field), appending to a caller's buffer.

use super::fields::{keep, FieldTree, Keep};
use super::TimestampFormat;
use crate::event::{Event, Metric, MetricKind, MetricValue, ObjectMap, StatisticKind, Value};
use chrono::{DateTime, Datelike, Timelike, Utc};

/// What an `encoding` table changes in a log event's JSON: which fields are written and
/// how timestamps look. The default writes every field with RFC 3339 timestamps.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogShape<'a> {
    /// `only_fields`: when set, nothing outside these paths.
    pub only: Option<&'a FieldTree>,
    /// `except_fields`: these paths are left out.
    pub except: Option<&'a FieldTree>,
    /// `timestamp_format`.
    pub timestamps: TimestampFormat,
}

/// Appends an event as one JSON object.
pub fn encode_json(event: &Event, out: &mut Vec<u8>) {
    encode_json_shaped(event, LogShape::default(), out)
}

/// Appends an event as one JSON object, a log event in `shape`.
pub fn encode_json_shaped(event: &Event, shape: LogShape<'_>, out: &mut Vec<u8>) {
    match event {
        Event::Log(l) if shape.only.is_none() && shape.except.is_none() => {
            write_object(l.fields(), shape.timestamps, out)
        }
        Event::Log(l) => {
            write_filtered(l.fields(), shape.only, shape.except, shape.timestamps, out)
        }
        Event::Metric(m) => write_metric(m, out),
    }
}

/// Appends the event's `message` (a log's text, a metric's name and value).
pub fn encode_text(event: &Event, out: &mut Vec<u8>) {
    match event {
        Event::Log(l) => match l.get(crate::event::schema::log_schema().message_key.as_str()) {
            Some(Value::Bytes(b)) => out.extend_from_slice(b),
            Some(Value::String(s)) => out.extend_from_slice(s.as_bytes()),
            Some(other) => write_value(other, TimestampFormat::Rfc3339, out),
            None => {}
        },
        Event::Metric(m) => {
            out.extend_from_slice(m.name.as_bytes());
            out.push(b' ');
            match &m.value {
                MetricValue::Counter(v) | MetricValue::Gauge(v) => write_f64(*v, out),
                MetricValue::Set(values) => write_f64(values.len() as f64, out),
                MetricValue::Distribution { samples, .. } => write_f64(samples.len() as f64, out),
                MetricValue::AggregatedHistogram { count, .. }
                | MetricValue::AggregatedSummary { count, .. } => write_f64(*count as f64, out),
            }
        }
    }
}

/// A metric in Vector's JSON shape (what its `json` codec writes), so tools that read
/// Vector's metric output read ours: `{"name", "namespace"?, "tags"?, "timestamp"?,
/// "interval_ms"?, "kind", "<type>": {...}}`.
fn write_metric(m: &Metric, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"name\":");
    write_str(&m.name, out);
    if let Some(ns) = &m.namespace {
        out.extend_from_slice(b",\"namespace\":");
        write_str(ns, out);
    }
    if !m.tags.is_empty() {
        out.extend_from_slice(b",\"tags\":{");
        for (i, (k, v)) in m.tags.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(k, out);
            out.push(b':');
            write_str(v, out);
        }
        out.push(b'}');
    }
    if let Some(ts) = m.timestamp {
        out.extend_from_slice(b",\"timestamp\":\"");
        write_timestamp(&ts, out);
        out.push(b'"');
    }
    if let Some(ms) = m.interval_ms {
        out.extend_from_slice(b",\"interval_ms\":");
        out.extend_from_slice(itoa::Buffer::new().format(ms).as_bytes());
    }
    out.extend_from_slice(b",\"kind\":");
    out.extend_from_slice(match m.kind {
        MetricKind::Incremental => b"\"incremental\"",
        MetricKind::Absolute => b"\"absolute\"",
    });
    out.extend_from_slice(b",\"");
    out.extend_from_slice(m.value.type_name().as_bytes());
    out.extend_from_slice(b"\":{");
    let count_sum = |out: &mut Vec<u8>, count: u64, sum: f64| {
        out.extend_from_slice(b",\"count\":");
        out.extend_from_slice(itoa::Buffer::new().format(count).as_bytes());
        out.extend_from_slice(b",\"sum\":");
        write_f64(sum, out);
    };
    match &m.value {
        MetricValue::Counter(v) | MetricValue::Gauge(v) => {
            out.extend_from_slice(b"\"value\":");
            write_f64(*v, out);
        }
        MetricValue::Set(values) => {
            out.extend_from_slice(b"\"values\":");
            write_list(out, values, |v, out| write_str(v, out));
        }
        MetricValue::Distribution { samples, statistic } => {
            out.extend_from_slice(b"\"samples\":");
            write_list(out, samples, |s, out| {
                out.extend_from_slice(b"{\"value\":");
                write_f64(s.value, out);
                out.extend_from_slice(b",\"rate\":");
                out.extend_from_slice(itoa::Buffer::new().format(s.rate).as_bytes());
                out.push(b'}');
            });
            out.extend_from_slice(match statistic {
                StatisticKind::Histogram => b",\"statistic\":\"histogram\"",
                StatisticKind::Summary => b",\"statistic\":\"summary\"",
            });
        }
        MetricValue::AggregatedHistogram {
            buckets,
            count,
            sum,
        } => {
            out.extend_from_slice(b"\"buckets\":");
            write_list(out, buckets, |b, out| {
                out.extend_from_slice(b"{\"upper_limit\":");
                write_f64(b.upper_limit, out);
                out.extend_from_slice(b",\"count\":");
                out.extend_from_slice(itoa::Buffer::new().format(b.count).as_bytes());
                out.push(b'}');
            });
            count_sum(out, *count, *sum);
        }
        MetricValue::AggregatedSummary {
            quantiles,
            count,
            sum,
        } => {
            out.extend_from_slice(b"\"quantiles\":");
            write_list(out, quantiles, |q, out| {
                out.extend_from_slice(b"{\"quantile\":");
                write_f64(q.quantile, out);
                out.extend_from_slice(b",\"value\":");
                write_f64(q.value, out);
                out.push(b'}');
            });
            count_sum(out, *count, *sum);
        }
    }
    out.extend_from_slice(b"}}");
}

fn write_list<'a, T: 'a>(
    out: &mut Vec<u8>,
    items: impl IntoIterator<Item = &'a T>,
    item: impl Fn(&'a T, &mut Vec<u8>),
) {
    out.push(b'[');
    for (i, x) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        item(x, out);
    }
    out.push(b']');
}

fn write_object(map: &ObjectMap, ts: TimestampFormat, out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(k.as_str(), out);
        out.push(b':');
        write_value(v, ts, out);
    }
    out.push(b'}');
}

/// Whether anything of `v` survives `only` (Vector leaves out a parent none of whose
/// named children exist, rather than writing it empty).
fn any_kept(v: &Value, only: Option<&FieldTree>, except: Option<&FieldTree>) -> bool {
    let Value::Object(map) = v else {
        // A path through a value that is not an object names nothing.
        return only.is_none();
    };
    only.is_none()
        || map
            .iter()
            .any(|(k, v)| match keep(k.as_str(), only, except) {
                Keep::Skip => false,
                Keep::All => true,
                Keep::Below(o, e) => any_kept(v, o, e),
            })
}

fn write_filtered(
    map: &ObjectMap,
    only: Option<&FieldTree>,
    except: Option<&FieldTree>,
    ts: TimestampFormat,
    out: &mut Vec<u8>,
) {
    out.push(b'{');
    let mut first = true;
    for (k, v) in map.iter() {
        let below = match keep(k.as_str(), only, except) {
            Keep::Skip => continue,
            Keep::All => None,
            Keep::Below(o, e) => {
                if !any_kept(v, o, e) {
                    continue;
                }
                Some((o, e))
            }
        };
        if !first {
            out.push(b',');
        }
        first = false;
        write_str(k.as_str(), out);
        out.push(b':');
        match (below, v) {
            (Some((o, e)), Value::Object(inner)) => write_filtered(inner, o, e, ts, out),
            _ => write_value(v, ts, out),
        }
    }
    out.push(b'}');
}

/// Appends one value as JSON (what a sink writes for arrays it cannot carry natively).
pub fn encode_json_value(v: &Value, out: &mut Vec<u8>) {
    write_value(v, TimestampFormat::Rfc3339, out)
}

fn write_value(v: &Value, ts: TimestampFormat, out: &mut Vec<u8>) {
    match v {
        Value::Bytes(b) => write_bytes(b, out),
        Value::String(s) => write_str(s, out),
        Value::Regex(r) => write_str(r.as_str(), out),
        Value::Integer(i) => out.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes()),
        Value::Float(f) => write_f64(f.into_inner(), out),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Timestamp(t) => write_timestamp_as(t, ts, out),
        Value::Object(m) => write_object(m, ts, out),
        Value::Array(a) => {
            out.push(b'[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, ts, out);
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

/// A timestamp value in `timestamp_format`: an RFC 3339 string or a Unix number.
fn write_timestamp_as(t: &DateTime<Utc>, format: TimestampFormat, out: &mut Vec<u8>) {
    let mut int = |v: i64| out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    match format {
        TimestampFormat::Rfc3339 => {
            out.push(b'"');
            write_timestamp(t, out);
            out.push(b'"');
        }
        TimestampFormat::Unix => int(t.timestamp()),
        TimestampFormat::UnixMs => int(t.timestamp_millis()),
        TimestampFormat::UnixUs => int(t.timestamp_micros()),
        // Beyond 2262 nanoseconds overflow an i64; microseconds with three zeros is
        // what the value would be, written as text rather than wrapped.
        TimestampFormat::UnixNs => match t.timestamp_nanos_opt() {
            Some(n) => int(n),
            None => {
                int(t.timestamp_micros());
                out.extend_from_slice(b"000");
            }
        },
        TimestampFormat::UnixFloat => write_f64(t.timestamp_micros() as f64 / 1e6, out),
    }
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
        if nanos.is_multiple_of(1_000_000) {
            push_digits(out, nanos / 1_000_000, 3);
        } else if nanos.is_multiple_of(1_000) {
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
    fn metrics_take_vectors_json_shape() {
        use crate::event::{Bucket, EventMetadata, Quantile, Sample};
        let md = || EventMetadata::new("t", Utc::now());
        let json = |m: Metric| {
            let mut out = Vec::new();
            encode_json(&Event::from(m), &mut out);
            serde_json::from_slice::<serde_json::Value>(&out).unwrap()
        };
        let mut c = Metric::new(
            "requests",
            MetricKind::Incremental,
            MetricValue::Counter(2.0),
            md(),
        );
        c.namespace = Some("app".into());
        c.tags.insert("host".into(), "web-1".into());
        c.timestamp = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).single();
        c.interval_ms = Some(10_000);
        assert_eq!(
            json(c),
            serde_json::json!({"name": "requests", "namespace": "app", "tags": {"host": "web-1"},
                "timestamp": "2026-12-01T00:00:00Z", "interval_ms": 10000,
                "kind": "incremental", "counter": {"value": 2.0}})
        );
        let g = Metric::new("temp", MetricKind::Absolute, MetricValue::Gauge(21.5), md());
        assert_eq!(
            json(g),
            serde_json::json!({"name": "temp", "kind": "absolute", "gauge": {"value": 21.5}})
        );
        let set = MetricValue::Set(["b".to_string(), "a".to_string()].into());
        assert_eq!(
            json(Metric::new("users", MetricKind::Incremental, set, md()))["set"],
            serde_json::json!({"values": ["a", "b"]})
        );
        let d = MetricValue::Distribution {
            samples: vec![Sample {
                value: 1.5,
                rate: 2,
            }],
            statistic: StatisticKind::Summary,
        };
        assert_eq!(
            json(Metric::new("lat", MetricKind::Incremental, d, md()))["distribution"],
            serde_json::json!({"samples": [{"value": 1.5, "rate": 2}], "statistic": "summary"})
        );
        let h = MetricValue::AggregatedHistogram {
            buckets: vec![
                Bucket {
                    upper_limit: 0.5,
                    count: 3,
                },
                Bucket {
                    upper_limit: 1.0,
                    count: 1,
                },
            ],
            count: 4,
            sum: 1.75,
        };
        assert_eq!(
            json(Metric::new("lat", MetricKind::Absolute, h, md()))["aggregated_histogram"],
            serde_json::json!({"buckets": [{"upper_limit": 0.5, "count": 3}, {"upper_limit": 1.0, "count": 1}], "count": 4, "sum": 1.75})
        );
        let q = MetricValue::AggregatedSummary {
            quantiles: vec![Quantile {
                quantile: 0.99,
                value: 0.9,
            }],
            count: 10,
            sum: 3.0,
        };
        assert_eq!(
            json(Metric::new("lat", MetricKind::Absolute, q, md()))["aggregated_summary"],
            serde_json::json!({"quantiles": [{"quantile": 0.99, "value": 0.9}], "count": 10, "sum": 3.0})
        );
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
