//! One event into one syslog message (RFC 5424 or RFC 3164), framed for its transport.
//! The header fields come from the event by default, the names the `syslog` source
//! gives them, so syslog → sluice → syslog sends what it received: structured-data
//! elements are rebuilt from the objects the source made of them. Every buffer is the
//! encoder's own and reused; an event costs no allocation unless a header field needs
//! characters replaced.

use super::config::{Format, WireFraming};
use crate::event::{schema::log_schema, Event, LogEvent, Value};
use crate::internal_events::failures::Truncated;
use crate::internal_events::Reporter;
use crate::sinks::util::encoding::json::{encode_json, encode_text};
use crate::sinks::util::template::Template;
use crate::sources::syslog::char_boundary;
use chrono::{DateTime, Datelike, Local, Timelike, Utc};
use std::fmt::Write as _;

/// Facility names by code, as the `syslog` source writes them (`syslog_loose`).
pub const FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "ntp", "audit", "alert", "clockd", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];

/// Severity names by code, as the `syslog` source writes them.
pub const SEVERITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// The code of a facility given by name (the source's names, `security` and `cron`'s
/// BSD spelling `clock` too) or by number.
pub fn facility_code(s: &str) -> Option<u8> {
    let s = s.trim();
    if let Ok(n) = s.parse::<u8>() {
        return (usize::from(n) < FACILITIES.len()).then_some(n);
    }
    let lower = s.to_ascii_lowercase();
    let name = match lower.as_str() {
        "security" => "auth",
        "clock" => "cron",
        "logaudit" => "audit",
        "logalert" => "alert",
        other => other,
    };
    FACILITIES.iter().position(|f| *f == name).map(|i| i as u8)
}

/// The code of a severity given by name (with the long spellings operators write:
/// `error`, `warn`, `informational`, `critical`, `emergency`, `panic`) or by number.
pub fn severity_code(s: &str) -> Option<u8> {
    let s = s.trim();
    if let Ok(n) = s.parse::<u8>() {
        return (usize::from(n) < SEVERITIES.len()).then_some(n);
    }
    let lower = s.to_ascii_lowercase();
    let name = match lower.as_str() {
        "emergency" | "panic" => "emerg",
        "critical" => "crit",
        "error" => "err",
        "warn" => "warning",
        "informational" => "info",
        other => other,
    };
    SEVERITIES.iter().position(|f| *f == name).map(|i| i as u8)
}

/// Where a header field comes from: the operator's template, else the event's own
/// fields (the first of `fields` that is set).
#[derive(Debug, Clone)]
pub struct HeaderField {
    template: Option<Template>,
    fields: &'static [&'static str],
}

impl HeaderField {
    /// A field read from `template` when given, else from `fields`.
    pub fn new(template: Option<Template>, fields: &'static [&'static str]) -> Self {
        Self { template, fields }
    }

    /// Renders into `out` (cleared first); false when the event has no value for it
    /// (a template naming a missing field, or none of `fields` set), so the caller
    /// uses its default.
    fn render(&self, event: &Event, time: DateTime<Utc>, out: &mut String) -> bool {
        out.clear();
        if let Some(t) = &self.template {
            return t.render_text(event, time, out).is_ok() && !out.is_empty();
        }
        let Some(log) = event.as_log() else {
            return false;
        };
        for name in self.fields {
            match log.get(name) {
                None | Some(Value::Null) => continue,
                Some(Value::Bytes(b)) => out.push_str(&String::from_utf8_lossy(b)),
                Some(Value::Integer(i)) => {
                    let _ = write!(out, "{i}");
                }
                Some(other) => out.push_str(&other.to_string_lossy()),
            }
            return !out.is_empty();
        }
        false
    }
}

/// The header fields of the sink, each from a template or the event.
#[derive(Debug, Clone)]
pub struct HeaderFields {
    /// Facility (name or number); `user` when missing or unknown.
    pub facility: HeaderField,
    /// Severity (name or number); `info` when missing or unknown.
    pub severity: HeaderField,
    /// HOSTNAME; this machine's name when missing.
    pub hostname: HeaderField,
    /// APP-NAME (RFC 3164: the tag); none (`-`) when missing.
    pub appname: HeaderField,
    /// PROCID; none when missing.
    pub procid: HeaderField,
    /// MSGID (RFC 5424 only); none when missing.
    pub msgid: HeaderField,
}

/// Turns events into framed syslog messages.
pub struct SyslogEncoder {
    format: Format,
    framing: WireFraming,
    header: HeaderFields,
    local_host: String,
    /// UDP: the longest message a datagram carries.
    max_message: usize,
    truncated: Reporter<Truncated>,
    /// The message being built, before framing.
    line: Vec<u8>,
    scratch: String,
}

/// RFC 5424 §6: the longest APP-NAME, PROCID and MSGID; HOSTNAME is 255.
const APP_NAME_MAX: usize = 48;
const PROCID_MAX: usize = 128;
const MSGID_MAX: usize = 32;
const HOSTNAME_MAX: usize = 255;
/// RFC 5424 §6.3.2: SD-IDs and PARAM-NAMEs.
const SD_NAME_MAX: usize = 32;

impl SyslogEncoder {
    /// An encoder writing `format`, framed as `framing`; datagrams carry at most
    /// `max_message` bytes (longer messages are cut and counted).
    pub fn new(
        format: Format,
        framing: WireFraming,
        header: HeaderFields,
        max_message: usize,
        truncated: Reporter<Truncated>,
    ) -> Self {
        Self {
            format,
            framing,
            header,
            local_host: crate::hostname(),
            max_message: max_message.max(1),
            truncated,
            line: Vec::with_capacity(1024),
            scratch: String::with_capacity(64),
        }
    }

    /// Appends `event`, framed, to `out`.
    pub fn encode(&mut self, event: &Event, out: &mut Vec<u8>) {
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        match self.format {
            Format::Rfc5424 => self.write_5424(event, &mut line),
            Format::Rfc3164 => self.write_3164(event, &mut line),
        }
        match self.framing {
            WireFraming::OctetCounting => {
                let _ = write_len(line.len(), out);
                out.push(b' ');
                out.extend_from_slice(&line);
            }
            WireFraming::Newline => {
                // One event stays one frame: a line feed inside is written as rsyslog
                // shows control characters (`#012`).
                let mut rest = &line[..];
                while let Some(i) = memchr::memchr(b'\n', rest) {
                    out.extend_from_slice(&rest[..i]);
                    out.extend_from_slice(b"#012");
                    rest = &rest[i + 1..];
                }
                out.extend_from_slice(rest);
                out.push(b'\n');
            }
            WireFraming::Datagram => {
                // Datagrams travel inside a payload octet-counted, so the sender can
                // split it again; each goes out alone.
                let mut len = line.len();
                if len > self.max_message {
                    len = char_boundary(&line, self.max_message);
                    let (was, max) = (line.len(), self.max_message);
                    self.truncated.emit(|| {
                        format!("A {was}-byte message was cut to {len} bytes to fit one datagram (max_datagram_bytes = {max}).")
                    });
                }
                let _ = write_len(len, out);
                out.push(b' ');
                out.extend_from_slice(&line[..len]);
            }
        }
        self.line = line;
    }

    fn pri(&mut self, event: &Event, time: DateTime<Utc>, out: &mut Vec<u8>) {
        let facility = if self.header.facility.render(event, time, &mut self.scratch) {
            facility_code(&self.scratch).unwrap_or(1)
        } else {
            1
        };
        let severity = if self.header.severity.render(event, time, &mut self.scratch) {
            severity_code(&self.scratch).unwrap_or(6)
        } else {
            6
        };
        out.push(b'<');
        let _ = write_len(usize::from(facility) * 8 + usize::from(severity), out);
        out.push(b'>');
    }

    /// Writes a header field: its value with characters RFC 5424 does not allow there
    /// (anything but printable ASCII) replaced by `_`, at most `max` of them, or `-`.
    fn header_field(
        &mut self,
        which: fn(&HeaderFields) -> &HeaderField,
        event: &Event,
        time: DateTime<Utc>,
        max: usize,
        out: &mut Vec<u8>,
    ) -> bool {
        if !which(&self.header).render(event, time, &mut self.scratch) {
            return false;
        }
        push_printable(&self.scratch, max, &[], out);
        true
    }

    fn write_5424(&mut self, event: &Event, out: &mut Vec<u8>) {
        let time = Template::event_time(event);
        self.pri(event, time, out);
        out.extend_from_slice(b"1 ");
        write_rfc3339(time, out);
        out.push(b' ');
        if !self.header_field(|h| &h.hostname, event, time, HOSTNAME_MAX, out) {
            push_printable(&self.local_host, HOSTNAME_MAX, &[], out);
        }
        for (which, max) in [
            (
                (|h| &h.appname) as fn(&HeaderFields) -> &HeaderField,
                APP_NAME_MAX,
            ),
            (|h| &h.procid, PROCID_MAX),
            (|h| &h.msgid, MSGID_MAX),
        ] {
            out.push(b' ');
            if !self.header_field(which, event, time, max, out) {
                out.push(b'-');
            }
        }
        out.push(b' ');
        match event.as_log() {
            Some(log) if write_structured_data(log, out) => {}
            _ => out.push(b'-'),
        }
        let before = out.len();
        out.push(b' ');
        write_message(event, out);
        if out.len() == before + 1 {
            out.truncate(before);
        }
    }

    fn write_3164(&mut self, event: &Event, out: &mut Vec<u8>) {
        let time = Template::event_time(event);
        self.pri(event, time, out);
        // `Mmm dd hh:mm:ss`, the day padded with a space, in local time as glibc writes it.
        let local = time.with_timezone(&Local);
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        out.extend_from_slice(MONTHS[local.month0() as usize % 12].as_bytes());
        let _ = std::io::Write::write_fmt(
            out,
            format_args!(
                " {:>2} {:02}:{:02}:{:02} ",
                local.day(),
                local.hour(),
                local.minute(),
                local.second()
            ),
        );
        if !self.header_field(|h| &h.hostname, event, time, HOSTNAME_MAX, out) {
            push_printable(&self.local_host, HOSTNAME_MAX, &[], out);
        }
        out.push(b' ');
        // The tag: `app[pid]: `, or nothing when the event has no app name (the first
        // word of the message then reads as the tag, as it did when it was received).
        if self.header.appname.render(event, time, &mut self.scratch) {
            push_printable(&self.scratch, APP_NAME_MAX, b":[]", out);
            if self.header.procid.render(event, time, &mut self.scratch) {
                out.push(b'[');
                push_printable(&self.scratch, PROCID_MAX, b"]", out);
                out.push(b']');
            }
            out.extend_from_slice(b": ");
        }
        write_message(event, out);
    }
}

/// Decimal digits of `n`.
fn write_len(n: usize, out: &mut Vec<u8>) -> std::io::Result<()> {
    let mut buf = itoa::Buffer::new();
    out.extend_from_slice(buf.format(n).as_bytes());
    Ok(())
}

/// Appends `s` with every character outside printable ASCII (33–126), and every one of
/// `also`, replaced by `_`, cut at `max` characters; `-` when that leaves nothing.
fn push_printable(s: &str, max: usize, also: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    for c in s.chars().take(max) {
        let ok = c.is_ascii_graphic() && !also.contains(&(c as u8));
        out.push(if ok { c as u8 } else { b'_' });
    }
    if out.len() == start {
        out.push(b'-');
    }
}

/// RFC 3339 in UTC with as many fraction digits as the time needs (0, 3, 6 or 9), so
/// a received `2003-10-11T22:14:15.003Z` goes out as it came.
fn write_rfc3339(t: DateTime<Utc>, out: &mut Vec<u8>) {
    let _ = std::io::Write::write_fmt(
        out,
        format_args!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
    );
    let nanos = t.nanosecond() % 1_000_000_000;
    if nanos != 0 {
        let _ = if nanos.is_multiple_of(1_000_000) {
            std::io::Write::write_fmt(out, format_args!(".{:03}", nanos / 1_000_000))
        } else if nanos.is_multiple_of(1_000) {
            std::io::Write::write_fmt(out, format_args!(".{:06}", nanos / 1_000))
        } else {
            std::io::Write::write_fmt(out, format_args!(".{nanos:09}"))
        };
    }
    out.push(b'Z');
}

/// The message: the `message` field as it is; for a log without one, the whole event
/// as JSON (nothing is left behind); for a metric, its name and value.
fn write_message(event: &Event, out: &mut Vec<u8>) {
    match event {
        Event::Log(l) if l.get(log_schema().message_key.as_str()).is_none() => {
            encode_json(event, out)
        }
        _ => encode_text(event, out),
    }
}

/// Whether `name` can be an SD-ID or PARAM-NAME as it is.
fn is_sd_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= SD_NAME_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'=' | b']' | b'"'))
}

/// Writes the structured data of `log`: each top-level object field named like an
/// SD-ID (what the `syslog` source makes of an SD element) is an element, its fields
/// the parameters; an object under `structured_data` (Vector's encoder) is used
/// instead when present. Returns false when there is none.
fn write_structured_data(log: &LogEvent, out: &mut Vec<u8>) -> bool {
    let elements = match log.get("structured_data") {
        Some(Value::Object(sd)) => sd,
        _ => log.fields(),
    };
    let start = out.len();
    for (id, value) in elements {
        let Value::Object(params) = value else {
            continue;
        };
        if !is_sd_name(id) {
            continue;
        }
        out.push(b'[');
        out.extend_from_slice(id.as_bytes());
        for (name, v) in params {
            out.push(b' ');
            push_printable(name, SD_NAME_MAX, b"=]\"", out);
            out.extend_from_slice(b"=\"");
            write_param_value(v, out);
            out.push(b'"');
        }
        out.push(b']');
    }
    out.len() > start
}

/// RFC 5424 §6.3.3: `"`, `\` and `]` escaped with a backslash.
fn write_param_value(v: &Value, out: &mut Vec<u8>) {
    let owned;
    let text: &[u8] = match v {
        Value::Bytes(b) => b,
        Value::String(s) => s.as_bytes(),
        other => {
            owned = other.to_string_lossy().into_owned();
            owned.as_bytes()
        }
    };
    for &b in text {
        if matches!(b, b'"' | b'\\' | b']') {
            out.push(b'\\');
        }
        out.push(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventMetadata, ObjectMap};
    use crate::internal_events::{ComponentKind, ComponentLabels, ComponentMetrics};
    use bytes::Bytes;
    use chrono::TimeZone;

    fn fields() -> HeaderFields {
        HeaderFields {
            facility: HeaderField::new(None, &["facility"]),
            severity: HeaderField::new(None, &["severity"]),
            hostname: HeaderField::new(None, &["hostname", "host"]),
            appname: HeaderField::new(None, &["appname"]),
            procid: HeaderField::new(None, &["procid"]),
            msgid: HeaderField::new(None, &["msgid"]),
        }
    }

    fn metrics() -> ComponentMetrics {
        ComponentMetrics::new(ComponentLabels {
            id: "out".into(),
            kind: ComponentKind::Sink,
            type_name: "syslog",
        })
    }

    fn encoder(format: Format, framing: WireFraming) -> SyslogEncoder {
        let metrics = metrics();
        SyslogEncoder::new(format, framing, fields(), 1452, metrics.reporter())
    }

    /// The event the `syslog` source makes of `line`.
    fn received(line: &str) -> Event {
        let mut f = ObjectMap::new();
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        crate::sources::syslog::parse_into(&Bytes::from(line.to_string()), None, now, &mut f);
        Event::Log(LogEvent::from_parts(f, EventMetadata::new("in", now)))
    }

    fn encode(e: &mut SyslogEncoder, event: &Event) -> String {
        let mut out = Vec::new();
        e.encode(event, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn rfc5424_round_trips_through_the_source() {
        let mut e = encoder(Format::Rfc5424, WireFraming::Newline);
        for line in [
            "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed",
            "<165>1 2003-08-24T05:14:15.000003Z 192.0.2.1 myproc 8710 - - %% It's time",
            "<165>1 2003-10-11T22:14:15.003Z host evntslog - ID47 [exampleSDID@32473 eventID=\"1011\" eventSource=\"Application\" iut=\"3\"] An application event",
            "<165>1 2003-10-11T22:14:15Z host app 1 - [a@1 x=\"q\\\"uo\\\\te\\]\"][b@2 y=\"\"]",
            "<13>1 2026-01-01T00:00:00Z h - - - -",
        ] {
            assert_eq!(encode(&mut e, &received(line)), format!("{line}\n"));
        }
    }

    #[test]
    fn rfc3164_keeps_the_tag_and_the_untagged_message() {
        let mut e = encoder(Format::Rfc3164, WireFraming::OctetCounting);
        let event = received("<13>Feb  5 17:32:18 web1 nginx[42]: GET / 200");
        let out = encode(&mut e, &event);
        let (len, msg) = out.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), msg.len());
        assert!(msg.starts_with("<13>Feb  5 "), "{msg}");
        assert!(msg.ends_with(" web1 nginx[42]: GET / 200"), "{msg}");
        let untagged = received("<13>Feb  5 17:32:18 web1 Use the BFG!");
        assert!(encode(&mut e, &untagged).ends_with(" web1 Use the BFG!"));
    }

    #[test]
    fn templates_override_and_fall_back_to_defaults() {
        let mut f = fields();
        f.facility = HeaderField::new(Some(Template::parse("local3").unwrap()), &[]);
        f.severity = HeaderField::new(Some(Template::parse("{{ level }}").unwrap()), &[]);
        f.appname = HeaderField::new(Some(Template::parse("{{ service }}").unwrap()), &[]);
        let metrics = metrics();
        let mut e = SyslogEncoder::new(
            Format::Rfc5424,
            WireFraming::Newline,
            f,
            1452,
            metrics.reporter(),
        );
        let mut fields = ObjectMap::new();
        fields.insert("message".into(), Value::from("line\nnext"));
        fields.insert("level".into(), Value::from("error"));
        fields.insert("hostname".into(), Value::from("h o"));
        let t = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        let event = Event::Log(LogEvent::from_parts(fields, EventMetadata::new("in", t)));
        // local3 = 19, err = 3: 19 * 8 + 3 = 155; no `service` field, so APP-NAME is nil.
        let out = encode(&mut e, &event);
        assert!(out.starts_with("<155>1 "), "{out}");
        assert!(out.ends_with(" h_o - - - - line#012next\n"), "{out}");
    }

    #[test]
    fn datagrams_are_cut_on_a_character_boundary() {
        let metrics = metrics();
        let mut e = SyslogEncoder::new(
            Format::Rfc5424,
            WireFraming::Datagram,
            fields(),
            60,
            metrics.reporter(),
        );
        let event = received(&format!(
            "<13>1 2026-01-01T00:00:00Z h a - - - {}",
            "é".repeat(40)
        ));
        let out = encode(&mut e, &event);
        let (len, msg) = out.split_once(' ').unwrap();
        assert!(msg.len() <= 60 && msg.len() >= 59, "{}", msg.len());
        assert_eq!(len.parse::<usize>().unwrap(), msg.len());
    }

    #[test]
    fn codes_by_name_and_number() {
        assert_eq!(facility_code("local7"), Some(23));
        assert_eq!(facility_code("AUTH"), Some(4));
        assert_eq!(facility_code("4"), Some(4));
        assert_eq!(facility_code("24"), None);
        assert_eq!(severity_code("warn"), Some(4));
        assert_eq!(severity_code("informational"), Some(6));
        assert_eq!(severity_code("bogus"), None);
    }
}
