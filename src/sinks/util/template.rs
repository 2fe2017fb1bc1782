//! Templates such as `/var/log/{{ appname }}-%Y-%m-%d.jsonl`: `{{ field }}` (dotted paths
//! allowed) from the event, strftime specifiers from the event's `timestamp` (ingest
//! time when it has none), as in Vector. Parsed once at start; rendering reuses the
//! caller's buffer.

use crate::config::timezone::TimeZone;
use crate::event::{Event, Value};
use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, Utc};
use std::fmt::Write;

#[derive(Debug, Clone)]
enum Part {
    Literal(String),
    Time(Vec<Item<'static>>),
    Field(String),
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    parts: Vec<Part>,
    source: String,
    /// What strftime specifiers render in; UTC when `None`.
    timezone: Option<TimeZone>,
}

/// Why a template could not be parsed or rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{{` without `}}`, or an empty field name.
    #[error("`{0}` is not a valid template: {1}")]
    Syntax(String, &'static str),
    /// A strftime specifier chrono does not know.
    #[error("`{0}` has an invalid strftime specifier")]
    Strftime(String),
    /// The event lacks a field the template needs.
    #[error("the event has no field `{0}`")]
    MissingField(String),
}

impl Template {
    /// Parses a template.
    pub fn parse(s: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = s;
        while !rest.is_empty() {
            match rest.find("{{") {
                Some(start) => {
                    push_literal(&mut parts, &rest[..start], s)?;
                    let after = &rest[start + 2..];
                    let end = after
                        .find("}}")
                        .ok_or(TemplateError::Syntax(s.to_string(), "`{{` without `}}`"))?;
                    let name = after[..end].trim();
                    if name.is_empty() {
                        return Err(TemplateError::Syntax(s.to_string(), "empty `{{ }}`"));
                    }
                    parts.push(Part::Field(name.to_string()));
                    rest = &after[end + 2..];
                }
                None => {
                    push_literal(&mut parts, rest, s)?;
                    rest = "";
                }
            }
        }
        Ok(Self {
            parts,
            source: s.to_string(),
            timezone: None,
        })
    }

    /// Renders strftime specifiers in `timezone` (UTC when `None`).
    pub fn with_timezone(mut self, timezone: Option<TimeZone>) -> Self {
        self.timezone = timezone;
        self
    }

    /// Whether rendering depends on nothing but time (so a cache keyed by second works).
    pub fn is_time_only(&self) -> bool {
        !self.parts.iter().any(|p| matches!(p, Part::Field(_)))
    }

    /// Whether rendering depends on the event at all.
    pub fn is_static(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The time a template renders with: the event's `timestamp`, else its ingest time.
    pub fn event_time(event: &Event) -> DateTime<Utc> {
        match event {
            Event::Log(l) => match l.get(crate::event::schema::log_schema().timestamp_key.as_str())
            {
                Some(Value::Timestamp(t)) => *t,
                _ => l.metadata.ingest_time,
            },
            Event::Metric(m) => m.timestamp.unwrap_or(m.metadata.ingest_time),
        }
    }

    /// Renders into `out` (cleared first). Field values have `/` and NUL replaced and a
    /// bare `.` or `..` replaced, so an event cannot steer a path outside its directory.
    pub fn render(
        &self,
        event: &Event,
        time: DateTime<Utc>,
        out: &mut String,
    ) -> Result<(), TemplateError> {
        self.render_with(event, time, out, Escape::PathSegment)
    }

    /// Renders a URI: field values are percent-encoded (all but RFC 3986 unreserved
    /// characters), so an event can fill in a path segment or a query value but never
    /// change the host, add parameters, or climb the path.
    pub fn render_uri(
        &self,
        event: &Event,
        time: DateTime<Utc>,
        out: &mut String,
    ) -> Result<(), TemplateError> {
        self.render_with(event, time, out, Escape::Uri)
    }

    /// Renders text that goes nowhere a path or URI could be steered (a syslog header
    /// field): field values are copied as they are; the caller checks their characters.
    pub fn render_text(
        &self,
        event: &Event,
        time: DateTime<Utc>,
        out: &mut String,
    ) -> Result<(), TemplateError> {
        self.render_with(event, time, out, Escape::None)
    }

    fn render_with(
        &self,
        event: &Event,
        time: DateTime<Utc>,
        out: &mut String,
        escape: Escape,
    ) -> Result<(), TemplateError> {
        out.clear();
        for part in &self.parts {
            match part {
                Part::Literal(l) => out.push_str(l),
                Part::Time(items) => {
                    let _ = match self.timezone {
                        None => write!(out, "{}", time.format_with_items(items.iter())),
                        Some(TimeZone::Local) => write!(
                            out,
                            "{}",
                            time.with_timezone(&chrono::Local)
                                .format_with_items(items.iter())
                        ),
                        Some(TimeZone::Named(tz)) => write!(
                            out,
                            "{}",
                            time.with_timezone(&tz).format_with_items(items.iter())
                        ),
                    };
                }
                Part::Field(name) => {
                    let v = event
                        .as_log()
                        .and_then(|l| l.get_path(name))
                        .filter(|v| !matches!(v, Value::Null))
                        .ok_or_else(|| TemplateError::MissingField(name.clone()))?;
                    let start = out.len();
                    match v {
                        Value::Bytes(b) => out.push_str(&String::from_utf8_lossy(b)),
                        other => out.push_str(&other.to_string_lossy()),
                    }
                    let rendered = &out[start..];
                    if escape == Escape::None {
                        continue;
                    }
                    if escape == Escape::Uri {
                        let encoded = if rendered == "." || rendered == ".." {
                            "%2E".repeat(rendered.len())
                        } else {
                            percent_encode(rendered)
                        };
                        out.truncate(start);
                        out.push_str(&encoded);
                    } else if rendered == "." || rendered == ".." || rendered.contains(['/', '\0'])
                    {
                        let safe: String = if rendered == "." || rendered == ".." {
                            "_".repeat(rendered.len())
                        } else {
                            rendered.replace(['/', '\0'], "_")
                        };
                        out.truncate(start);
                        out.push_str(&safe);
                    }
                }
            }
        }
        Ok(())
    }
}

/// How field values are made safe for where the rendered string goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Escape {
    PathSegment,
    Uri,
    None,
}

/// Percent-encodes everything but RFC 3986's unreserved characters: for a value placed
/// in a URI path segment or query.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn push_literal(parts: &mut Vec<Part>, lit: &str, whole: &str) -> Result<(), TemplateError> {
    if lit.is_empty() {
        return Ok(());
    }
    if lit.contains('%') {
        let items: Vec<Item<'static>> = StrftimeItems::new(lit)
            .parse_to_owned()
            .map_err(|_| TemplateError::Strftime(whole.to_string()))?;
        parts.push(Part::Time(items));
    } else {
        parts.push(Part::Literal(lit.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventMetadata, LogEvent, ObjectMap};
    use chrono::TimeZone;

    #[test]
    fn a_named_zone_follows_daylight_saving_without_a_restart() {
        let t = Template::parse("%Y-%m-%d %H")
            .unwrap()
            .with_timezone(Some(super::TimeZone::Named(chrono_tz::Tz::Europe__Berlin)));
        let e: Event =
            LogEvent::from_parts(ObjectMap::new(), EventMetadata::new("s", Utc::now())).into();
        let mut out = String::new();
        // Summer time starts on 2026-03-29 at 01:00 UTC: 02:00 local becomes 03:00.
        let before = Utc
            .with_ymd_and_hms(2026, 3, 29, 0, 30, 0)
            .single()
            .unwrap();
        t.render(&e, before, &mut out).unwrap();
        assert_eq!(out, "2026-03-29 01");
        let after = Utc
            .with_ymd_and_hms(2026, 3, 29, 1, 30, 0)
            .single()
            .unwrap();
        t.render(&e, after, &mut out).unwrap();
        assert_eq!(out, "2026-03-29 03");
        let utc = Template::parse("%H").unwrap();
        utc.render(&e, after, &mut out).unwrap();
        assert_eq!(out, "01", "UTC without a zone");
    }

    #[test]
    fn uri_rendering_percent_encodes_field_values() {
        let mut f = ObjectMap::new();
        f.insert("team".into(), "a/b c?d=1&e".into());
        f.insert("up".into(), "..".into());
        let e = Event::Log(LogEvent::from_parts(
            f,
            EventMetadata::new("t", chrono::Utc::now()),
        ));
        let t = Template::parse("https://h.example/hooks/{{ team }}/{{ up }}?x=1").unwrap();
        let mut out = String::new();
        t.render_uri(&e, chrono::Utc::now(), &mut out).unwrap();
        assert_eq!(
            out,
            "https://h.example/hooks/a%2Fb%20c%3Fd%3D1%26e/%2E%2E?x=1"
        );
    }

    fn event(app: &str) -> Event {
        let mut f = ObjectMap::new();
        f.insert("appname".into(), Value::from(app));
        LogEvent::from_parts(f, EventMetadata::new("s", Utc::now())).into()
    }

    #[test]
    fn renders_fields_and_time() {
        let t = Template::parse("/logs/{{ appname }}-%Y-%m-%d.jsonl").ok();
        let t = t.as_ref();
        let time = Utc
            .with_ymd_and_hms(2026, 11, 22, 1, 2, 3)
            .single()
            .unwrap_or_default();
        let mut out = String::new();
        assert_eq!(
            t.map(|t| t.render(&event("sshd"), time, &mut out)),
            Some(Ok(()))
        );
        assert_eq!(out, "/logs/sshd-2026-11-22.jsonl");
    }

    #[test]
    fn event_fields_cannot_escape_the_directory() {
        let t = Template::parse("/logs/{{ appname }}/x.log").ok();
        let mut out = String::new();
        let _ = t.map(|t| t.render(&event(".."), Utc::now(), &mut out));
        assert_eq!(out, "/logs/__/x.log");
        let t = Template::parse("/logs/{{ appname }}.log").ok();
        let _ = t.map(|t| t.render(&event("../../etc/passwd"), Utc::now(), &mut out));
        assert_eq!(out, "/logs/.._.._etc_passwd.log");
    }

    #[test]
    fn bad_templates_are_refused() {
        assert!(Template::parse("/x/{{ a").is_err());
        assert!(Template::parse("/x/%Q").is_err());
    }
}
