//! One syslog message (RFC 5424 or RFC 3164, via `syslog_loose`) into a log event with
//! Vector's field names. Field values are slices of the received frame, so parsing does
//! not copy the text. A message that is not syslog is kept whole as `message`.

use crate::event::{KeyString, ObjectMap, Value};
use bytes::Bytes;
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use std::net::IpAddr;
use syslog_loose::{IncompleteDate, ProcId, Protocol, Variant};

/// What became of one frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A syslog message with its fields.
    Syslog,
    /// Not syslog: the raw text is the `message`.
    Raw,
    /// Only whitespace: no event.
    Empty,
}

const UTF8_BOM: &str = "\u{feff}";

/// The slice of `base` that `s` points into, or a copy if it does not point into it.
fn sub(base: &Bytes, s: &str) -> Value {
    let (bp, bl) = (base.as_ptr() as usize, base.len());
    let sp = s.as_ptr() as usize;
    if sp >= bp && sp + s.len() <= bp + bl {
        Value::Bytes(base.slice(sp - bp..sp - bp + s.len()))
    } else {
        Value::Bytes(Bytes::copy_from_slice(s.as_bytes()))
    }
}

/// The year that puts a year-less RFC 3164 date closest to `now`: a December message
/// received on 1 January belongs to last year, a January one received on 31 December to
/// next year.
pub fn resolve_year((month, day, hour, min, sec): IncompleteDate, now: DateTime<Utc>) -> i32 {
    let y = now.year();
    let mut best = (i64::MAX, y);
    for cand in [y - 1, y, y + 1] {
        let Some(date) = NaiveDate::from_ymd_opt(cand, month, day)
            .or_else(|| NaiveDate::from_ymd_opt(cand, month, 28))
            .and_then(|d| d.and_hms_opt(hour.min(23), min.min(59), sec.min(59)))
        else {
            continue;
        };
        let dist = (Utc.from_utc_datetime(&date) - now).num_seconds().abs();
        if dist < best.0 {
            best = (dist, cand);
        }
    }
    best.1
}

/// The `source_ip` value of a peer, made once per connection rather than per event.
pub fn ip_value(ip: IpAddr) -> Value {
    Value::Bytes(Bytes::from(ip.to_string()))
}

/// Fills `fields` from `frame`. `now` stands in for a missing timestamp and resolves
/// year-less dates; `source_ip` (from [`ip_value`]) becomes `source_ip` and the fallback
/// for `host`.
pub fn parse_into(
    frame: &Bytes,
    source_ip: Option<&Value>,
    now: DateTime<Utc>,
    fields: &mut ObjectMap,
) -> Parsed {
    parse_from(frame, source_ip, source_ip, now, fields)
}

/// [`parse_into`] for a message whose sender has no address (the local socket): no
/// `source_ip`, and `host` falls back to `local_host` (this machine's name). RFC 3164
/// as glibc's `syslog(3)` writes it has no host name (`<PRI>Mmm dd hh:mm:ss
/// tag[pid]: msg`), so a tag right after the timestamp is read as the tag, not as a
/// host, as rsyslog's imuxsock does.
pub fn parse_local(
    frame: &Bytes,
    local_host: &Value,
    now: DateTime<Utc>,
    fields: &mut ObjectMap,
) -> Parsed {
    match with_local_host(frame, local_host) {
        Some(whole) => parse_from(&whole, None, Some(local_host), now, fields),
        None => parse_from(frame, None, Some(local_host), now, fields),
    }
}

/// `frame` with `host` put after its timestamp, when it is RFC 3164 whose first word
/// after the timestamp is a tag (`app:` or `app[pid]:`) rather than a host name.
fn with_local_host(frame: &[u8], host: &Value) -> Option<Bytes> {
    let pri_end = frame.iter().position(|b| *b == b'>')?;
    if frame.first() != Some(&b'<') || pri_end > 4 {
        return None;
    }
    // `Mmm dd hh:mm:ss ` (the day space-padded), as glibc writes it.
    let ts = frame.get(pri_end + 1..pri_end + 17)?;
    let looks_like_time = ts[0].is_ascii_uppercase()
        && ts[3] == b' '
        && ts[9] == b':'
        && ts[12] == b':'
        && ts[15] == b' ';
    if !looks_like_time {
        return None;
    }
    let rest = &frame[pri_end + 17..];
    let word = rest.split(|b| *b == b' ').next()?;
    if !(word.ends_with(b":") || word.contains(&b'[')) {
        return None;
    }
    let host = host.as_bytes()?;
    let mut out = Vec::with_capacity(frame.len() + host.len() + 1);
    out.extend_from_slice(&frame[..pri_end + 17]);
    out.extend_from_slice(host);
    out.push(b' ');
    out.extend_from_slice(rest);
    Some(Bytes::from(out))
}

fn parse_from(
    frame: &Bytes,
    source_ip: Option<&Value>,
    host_fallback: Option<&Value>,
    now: DateTime<Utc>,
    fields: &mut ObjectMap,
) -> Parsed {
    // Invalid UTF-8 is replaced, not rejected; only then is the text copied.
    let owned: Bytes;
    let lossy: String;
    let (base, text): (&Bytes, &str) = match std::str::from_utf8(frame) {
        Ok(t) => (frame, t),
        Err(_) => {
            lossy = String::from_utf8_lossy(frame).into_owned();
            owned = Bytes::copy_from_slice(lossy.as_bytes());
            (&owned, lossy.as_str())
        }
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Parsed::Empty;
    }
    let ip_value = source_ip;
    // Fields are gathered in key order and the map is built in one bulk step: cheaper
    // than a dozen searching inserts, and this runs for every message.
    let mut pairs: Vec<(KeyString, Value)> = Vec::with_capacity(16);
    let mut put = |k: &str, v: Value| pairs.push((KeyString::from(k), v));

    // Well-formed RFC 5424 takes the fast path; everything else goes to syslog_loose.
    let parsed = match super::rfc5424::parse_strict(trimmed) {
        Some(m) => Ok(m),
        None => syslog_loose::parse_message_with_year_exact(
            trimmed,
            |d| resolve_year(d, now),
            Variant::Either,
        ),
    };
    let msg = match parsed {
        Ok(m) if looks_like_syslog(&m) => m,
        _ => {
            if let Some(h) = host_fallback {
                put("host", h.clone());
            }
            put("message", sub(base, trimmed));
            if let Some(ip) = ip_value {
                put("source_ip", ip.clone());
            }
            put("source_type", Value::Bytes(Bytes::from_static(b"syslog")));
            put("timestamp", Value::Timestamp(now));
            fill(fields, pairs);
            return Parsed::Raw;
        }
    };

    let mut appname = msg.appname;
    let mut body = msg.msg.strip_prefix(UTF8_BOM).unwrap_or(msg.msg);
    if let (Protocol::RFC3164, Some(a), None) = (&msg.protocol, appname, &msg.procid) {
        // RFC 3164 §5.3: a TAG ends at `:` or `[`. `syslog_loose` also takes a first word
        // followed by a space as the tag ("<13>Feb 5 17:32:18 host Use the BFG!"); that
        // word is message text, so it goes back into the message.
        if let Some(rejoined) = rejoin_untagged(trimmed, a) {
            appname = None;
            body = rejoined;
        }
    }
    // Standard fields, in key order.
    if let Some(a) = appname {
        put("appname", sub(base, a));
    }
    if let Some(f) = msg.facility {
        put(
            "facility",
            Value::Bytes(Bytes::from_static(f.as_str().as_bytes())),
        );
    }
    match (msg.hostname, host_fallback) {
        (Some(h), _) => put("host", sub(base, h)),
        (None, Some(fallback)) => put("host", fallback.clone()),
        (None, None) => {}
    }
    if let Some(h) = msg.hostname {
        put("hostname", sub(base, h));
    }
    put("message", sub(base, body));
    if let Some(m) = msg.msgid {
        put("msgid", sub(base, m));
    }
    match msg.procid {
        Some(ProcId::PID(p)) => put("procid", Value::Integer(p as i64)),
        Some(ProcId::Name(n)) => put("procid", sub(base, n)),
        None => {}
    }
    if let Some(s) = msg.severity {
        put(
            "severity",
            Value::Bytes(Bytes::from_static(s.as_str().as_bytes())),
        );
    }
    if let Some(ip) = ip_value {
        put("source_ip", ip.clone());
    }
    put("source_type", Value::Bytes(Bytes::from_static(b"syslog")));
    put(
        "timestamp",
        Value::Timestamp(msg.timestamp.map(|t| t.with_timezone(&Utc)).unwrap_or(now)),
    );
    if let Protocol::RFC5424(v) = msg.protocol {
        put("version", Value::Integer(v as i64));
    }
    // Structured data, each element inserted at its place. A repeated SD-ID merges
    // into the first (later values winning); an SD-ID equal to a standard field name
    // is dropped in favour of the field.
    for element in &msg.structured_data {
        let params = element.params.iter().map(|(name, raw)| {
            let v = if raw.contains('\\') {
                Value::Bytes(Bytes::from(unescape_sd(raw)))
            } else {
                sub(base, raw)
            };
            (KeyString::from(*name), v)
        });
        match pairs.binary_search_by(|(k, _)| k.as_str().cmp(element.id)) {
            Ok(i) => {
                if let Value::Object(existing) = &mut pairs[i].1 {
                    existing.extend(params);
                }
            }
            Err(i) => pairs.insert(
                i,
                (KeyString::from(element.id), Value::Object(params.collect())),
            ),
        }
    }
    fill(fields, pairs);
    Parsed::Syslog
}

/// Moves `pairs` into `fields`, in one bulk build when `fields` is empty (always, on
/// the source's path).
fn fill(fields: &mut ObjectMap, pairs: Vec<(KeyString, Value)>) {
    if fields.is_empty() {
        *fields = pairs.into_iter().collect();
    } else {
        fields.extend(pairs);
    }
}

/// RFC 5424 §6.3.3: inside PARAM-VALUE, `\"`, `\\` and `\]` stand for the character;
/// a backslash before anything else is kept.
fn unescape_sd(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(&next @ ('"' | '\\' | ']')) = chars.peek() {
                out.push(next);
                chars.next();
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// When `tag` sits in `text` without `:` or `[` right after it, the rest of `text` from
/// the tag on, which is the message the sender wrote.
fn rejoin_untagged<'a>(text: &'a str, tag: &str) -> Option<&'a str> {
    let start = (tag.as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
    let end = start + tag.len();
    if end > text.len() {
        return None;
    }
    match text.as_bytes().get(end) {
        Some(b':') | Some(b'[') => None,
        _ => Some(&text[start..]),
    }
}

/// `syslog_loose` accepts nearly anything as RFC 3164; a message with no PRI, no
/// timestamp and no hostname carried no syslog header at all, so it counts as raw.
fn looks_like_syslog(m: &syslog_loose::Message<&str>) -> bool {
    m.facility.is_some() || m.timestamp.is_some() || matches!(m.protocol, Protocol::RFC5424(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 30, 0)
            .single()
            .unwrap_or_default()
    }

    #[test]
    fn december_message_on_new_years_day_is_last_year() {
        assert_eq!(resolve_year((12, 31, 23, 59, 0), now()), 2025);
        assert_eq!(resolve_year((1, 1, 0, 10, 0), now()), 2026);
        let late = Utc
            .with_ymd_and_hms(2026, 12, 31, 23, 0, 0)
            .single()
            .unwrap_or_default();
        assert_eq!(resolve_year((1, 1, 0, 10, 0), late), 2027);
    }

    #[test]
    fn rfc5424_fields() {
        let frame = Bytes::from_static(
            b"<34>1 2003-10-11T22:14:15.003Z mymachine su 42 ID47 [ex@1 a=\"1\"] hello",
        );
        let mut f = ObjectMap::new();
        assert_eq!(parse_into(&frame, None, now(), &mut f), Parsed::Syslog);
        assert_eq!(f.get("message"), Some(&Value::from("hello")));
        assert_eq!(f.get("appname"), Some(&Value::from("su")));
        assert_eq!(f.get("procid"), Some(&Value::Integer(42)));
        assert_eq!(f.get("severity"), Some(&Value::from("crit")));
        assert_eq!(f.get("facility"), Some(&Value::from("auth")));
        assert_eq!(f.get("version"), Some(&Value::Integer(1)));
        let sd = f
            .get("ex@1")
            .and_then(|v| v.as_object())
            .and_then(|o| o.get("a"));
        assert_eq!(sd, Some(&Value::from("1")));
    }

    #[test]
    fn sd_values_are_unescaped_and_repeated_ids_merge() {
        let frame =
            Bytes::from_static(b"<34>1 - h a - - [x@1 a=\"q\\\"uote\\\\ \\]b\\n\"][x@1 b=\"2\"] m");
        let mut f = ObjectMap::new();
        parse_into(&frame, None, now(), &mut f);
        let sd = f.get("x@1").and_then(|v| v.as_object());
        assert_eq!(
            sd.and_then(|o| o.get("a")),
            Some(&Value::from("q\"uote\\ ]b\\n"))
        );
        assert_eq!(sd.and_then(|o| o.get("b")), Some(&Value::from("2")));
    }

    #[test]
    fn non_syslog_text_is_kept_raw() {
        let frame = Bytes::from_static(b"just some text");
        let mut f = ObjectMap::new();
        let ip = ip_value([10, 0, 0, 1].into());
        assert_eq!(parse_into(&frame, Some(&ip), now(), &mut f), Parsed::Raw);
        assert_eq!(f.get("message"), Some(&Value::from("just some text")));
        assert_eq!(f.get("host"), Some(&Value::from("10.0.0.1")));
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let frame = Bytes::from_static(b"<13>Jan  1 00:00:00 h app: caf\xe9");
        let mut f = ObjectMap::new();
        parse_into(&frame, None, now(), &mut f);
        assert_eq!(f.get("message"), Some(&Value::from("caf\u{fffd}")));
    }
}
