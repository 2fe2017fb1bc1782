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

/// Fills `fields` from `frame`. `now` stands in for a missing timestamp and resolves
/// year-less dates; `source_ip` becomes `source_ip` and the fallback for `host`.
pub fn parse_into(
    frame: &Bytes,
    source_ip: Option<IpAddr>,
    now: DateTime<Utc>,
    fields: &mut ObjectMap,
) -> Parsed {
    // Invalid UTF-8 is replaced, not rejected; only then is the text copied.
    let owned;
    let base: &Bytes = match std::str::from_utf8(frame) {
        Ok(_) => frame,
        Err(_) => {
            owned = Bytes::from(String::from_utf8_lossy(frame).into_owned());
            &owned
        }
    };
    // Safe: `base` was just validated or built from a String.
    let text = match std::str::from_utf8(base) {
        Ok(t) => t,
        Err(_) => return Parsed::Empty,
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Parsed::Empty;
    }
    let ip_value = source_ip.map(|ip| Value::Bytes(Bytes::from(ip.to_string())));
    let put = |fields: &mut ObjectMap, k: &str, v: Value| {
        fields.insert(KeyString::from(k), v);
    };
    put(
        fields,
        "source_type",
        Value::Bytes(Bytes::from_static(b"syslog")),
    );
    if let Some(ip) = &ip_value {
        put(fields, "source_ip", ip.clone());
    }

    let parsed = syslog_loose::parse_message_with_year_exact(
        trimmed,
        |d| resolve_year(d, now),
        Variant::Either,
    );
    let msg = match parsed {
        Ok(m) if looks_like_syslog(&m) => m,
        _ => {
            put(fields, "message", sub(base, trimmed));
            put(fields, "timestamp", Value::Timestamp(now));
            if let Some(ip) = ip_value {
                put(fields, "host", ip);
            }
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
    put(fields, "message", sub(base, body));
    put(
        fields,
        "timestamp",
        Value::Timestamp(msg.timestamp.map(|t| t.with_timezone(&Utc)).unwrap_or(now)),
    );
    if let Some(h) = msg.hostname {
        put(fields, "hostname", sub(base, h));
        put(fields, "host", sub(base, h));
    } else if let Some(ip) = ip_value {
        put(fields, "host", ip);
    }
    if let Some(a) = appname {
        put(fields, "appname", sub(base, a));
    }
    match msg.procid {
        Some(ProcId::PID(p)) => put(fields, "procid", Value::Integer(p as i64)),
        Some(ProcId::Name(n)) => put(fields, "procid", sub(base, n)),
        None => {}
    }
    if let Some(m) = msg.msgid {
        put(fields, "msgid", sub(base, m));
    }
    if let Some(s) = msg.severity {
        put(
            fields,
            "severity",
            Value::Bytes(Bytes::from_static(s.as_str().as_bytes())),
        );
    }
    if let Some(f) = msg.facility {
        put(
            fields,
            "facility",
            Value::Bytes(Bytes::from_static(f.as_str().as_bytes())),
        );
    }
    if let Protocol::RFC5424(v) = msg.protocol {
        put(fields, "version", Value::Integer(v as i64));
    }
    for element in &msg.structured_data {
        let mut params = ObjectMap::new();
        for (name, value) in element.params() {
            params.insert(KeyString::from(*name), Value::Bytes(Bytes::from(value)));
        }
        match fields.get_mut(element.id) {
            // A repeated SD-ID merges into the first, later values winning.
            Some(Value::Object(existing)) => existing.extend(params),
            _ => put(fields, element.id, Value::Object(params)),
        }
    }
    Parsed::Syslog
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
    fn non_syslog_text_is_kept_raw() {
        let frame = Bytes::from_static(b"just some text");
        let mut f = ObjectMap::new();
        let ip: IpAddr = [10, 0, 0, 1].into();
        assert_eq!(parse_into(&frame, Some(ip), now(), &mut f), Parsed::Raw);
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
