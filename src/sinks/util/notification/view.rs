//! A notification as the chat and email sinks see it, read once from the event that
//! carries it, so rendering and merging never walk event fields again. Three shapes
//! arrive: the `alert` transform's notification (Alertmanager's webhook payload, with
//! `groupKey` and `alerts`), its single alert event (without a `notify` stage), and any
//! other log event, shown by its `message`.

use crate::event::{Event, Value};
use std::collections::BTreeMap;

/// Firing or resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// At least one alert fires.
    Firing,
    /// Everything resolved.
    Resolved,
}

impl Status {
    /// `firing` / `resolved`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

/// One alert of a notification.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertView {
    /// Its status.
    pub status: Status,
    /// Its identity; alerts of two notifications of one group are matched by it.
    pub fingerprint: String,
    /// `alertname` and the rest.
    pub labels: BTreeMap<String, String>,
    /// `summary`, `description`, `runbook` and the rest.
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339.
    pub starts_at: String,
    /// RFC 3339, when resolved.
    pub ends_at: Option<String>,
    /// The rule's value at the change.
    pub value: Option<String>,
    /// Pinned firing by the flap guard.
    pub flapping: bool,
}

impl AlertView {
    /// `name=value` of every label but `alertname` (which the title already says).
    pub fn label_pairs(&self) -> Vec<String> {
        self.labels
            .iter()
            .filter(|(k, _)| k.as_str() != "alertname")
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }

    /// `summary`, else `message`-like annotations, else the alert name.
    pub fn headline(&self) -> &str {
        self.annotations
            .get("summary")
            .or_else(|| self.annotations.get("message"))
            .or_else(|| self.labels.get("alertname"))
            .map_or("alert", String::as_str)
    }
}

/// What one message tells.
#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    /// Which group this is the newest state of; `None` for plain events, which are
    /// never merged.
    pub key: Option<String>,
    /// The labels the group was formed by.
    pub group_labels: BTreeMap<String, String>,
    /// The alerts, firing first as the transform sends them.
    pub alerts: Vec<AlertView>,
    /// A plain event's text.
    pub message: Option<String>,
}

fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    match v {
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.to_string(), text(v))).collect(),
        _ => BTreeMap::new(),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::Bytes(_) | Value::String(_) => v.to_string_lossy().into_owned(),
        other => other.to_string(),
    }
}

fn alert(v: &Value) -> Option<AlertView> {
    match v {
        Value::Object(m) => alert_of(m),
        _ => None,
    }
}

fn alert_of(m: &crate::event::ObjectMap) -> Option<AlertView> {
    let labels = string_map(m.get("labels"));
    if labels.is_empty() {
        return None;
    }
    let status = match m.get("status").map(text).as_deref() {
        Some("resolved") => Status::Resolved,
        _ => Status::Firing,
    };
    let fingerprint = m.get("fingerprint").map(text).unwrap_or_else(|| {
        labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    });
    let ends_at = m
        .get("endsAt")
        .map(text)
        .filter(|t| status == Status::Resolved && !t.starts_with("0001-"));
    Some(AlertView {
        status,
        fingerprint,
        annotations: string_map(m.get("annotations")),
        starts_at: m.get("startsAt").map(text).unwrap_or_default(),
        ends_at,
        value: m.get("value").map(text),
        flapping: matches!(m.get("flapping"), Some(Value::Boolean(true))),
        labels,
    })
}

impl Notification {
    /// Reads an event of any of the three shapes.
    pub fn from_event(event: &Event) -> Notification {
        let Some(log) = event.as_log() else {
            return Notification::plain("(a metric event)".into());
        };
        if let Some(Value::Array(items)) = log.get("alerts") {
            let alerts: Vec<AlertView> = items.iter().filter_map(alert).collect();
            if !alerts.is_empty() {
                return Notification {
                    key: log.get("groupKey").map(text),
                    group_labels: string_map(log.get("groupLabels")),
                    alerts,
                    message: None,
                };
            }
        }
        if let Some(a) = alert_of(log.fields()) {
            return Notification {
                key: Some(a.fingerprint.clone()),
                group_labels: a.labels.clone(),
                alerts: vec![a],
                message: None,
            };
        }
        let message = match log.get("message") {
            Some(v) => text(v),
            None => Value::Object(log.fields().clone()).to_string(),
        };
        Notification::plain(message)
    }

    fn plain(message: String) -> Notification {
        Notification {
            key: None,
            group_labels: BTreeMap::new(),
            alerts: Vec::new(),
            message: Some(message),
        }
    }

    /// Alerts firing.
    pub fn firing(&self) -> usize {
        self.alerts
            .iter()
            .filter(|a| a.status == Status::Firing)
            .count()
    }

    /// Firing while anything fires (a plain event counts as firing: it is news).
    pub fn status(&self) -> Status {
        if self.alerts.is_empty() || self.firing() > 0 {
            Status::Firing
        } else {
            Status::Resolved
        }
    }

    /// Labels every alert has with the same value.
    pub fn common_labels(&self) -> BTreeMap<String, String> {
        let Some(first) = self.alerts.first() else {
            return BTreeMap::new();
        };
        first
            .labels
            .iter()
            .filter(|(k, v)| self.alerts.iter().all(|a| a.labels.get(*k) == Some(*v)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The severity all alerts share (`severity` label), for colours and emoji.
    pub fn severity(&self) -> Option<String> {
        self.common_labels().get("severity").cloned()
    }

    /// Alertmanager's default title: `[FIRING:2] HighErrorRate (host=web1)`; a plain
    /// event's first line.
    pub fn title(&self) -> String {
        if let Some(m) = &self.message {
            return m.lines().next().unwrap_or_default().to_string();
        }
        let mut t = format!("[{}", self.status().as_str().to_uppercase());
        if self.status() == Status::Firing {
            t.push_str(&format!(":{}", self.firing()));
        }
        t.push(']');
        let common = self.common_labels();
        if let Some(name) = common.get("alertname") {
            t.push(' ');
            t.push_str(name);
        }
        let rest: Vec<String> = self
            .group_labels
            .iter()
            .filter(|(k, _)| k.as_str() != "alertname")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !rest.is_empty() {
            t.push_str(&format!(" ({})", rest.join(" ")));
        }
        t
    }

    /// Takes in what an older, unsent state of the same group told that this one no
    /// longer does: alerts that had resolved (so the resolve is not lost). Alerts the
    /// older one had firing and this one leaves out were muted meanwhile, and stay out.
    pub fn merge_older(&mut self, older: Notification) {
        for a in older.alerts {
            if a.status == Status::Resolved
                && !self.alerts.iter().any(|b| b.fingerprint == a.fingerprint)
            {
                self.alerts.push(a);
            }
        }
    }

    /// Template variables for subjects and bodies: `status`, `STATUS`, `title`,
    /// `firing`, `resolved`, `alertname`, `message`, and every common label.
    pub fn vars(&self) -> BTreeMap<String, String> {
        let mut v = self.common_labels();
        let status = self.status().as_str();
        v.insert("status".into(), status.into());
        v.insert("STATUS".into(), status.to_uppercase());
        v.insert("title".into(), self.title());
        v.insert("firing".into(), self.firing().to_string());
        v.insert(
            "resolved".into(),
            (self.alerts.len() - self.firing()).to_string(),
        );
        v.entry("alertname".into()).or_default();
        v.insert("message".into(), self.message.clone().unwrap_or_default());
        v
    }
}

/// Length as Slack and Discord count it (JavaScript string length, UTF-16 units): at
/// least the number of code points, so a cut that fits this fits any count.
pub fn units(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// `s` cut to at most `max` units, ending in `marker` when cut; never inside a code
/// point. Trailing whitespace is trimmed first (Discord counts after trimming).
pub fn fit(s: &str, max: usize, marker: &str) -> String {
    let s = s.trim_end();
    if units(s) <= max {
        return s.to_string();
    }
    let room = max.saturating_sub(units(marker));
    let mut used = 0;
    let mut end = 0;
    for (i, c) in s.char_indices() {
        if used + c.len_utf16() > room {
            break;
        }
        used += c.len_utf16();
        end = i + c.len_utf8();
    }
    let mut out = s[..end].trim_end().to_string();
    if units(&out) + units(marker) <= max {
        out.push_str(marker);
    }
    out
}

/// Slack mrkdwn: `&`, `<` and `>` escaped, so nothing in a log line can become a link,
/// `<!channel>` or `<@U123>`.
pub fn escape_mrkdwn(s: &str) -> String {
    escape_entities(s, false)
}

/// HTML text and attribute values: `&`, `<`, `>` and `"`.
pub fn escape_html(s: &str) -> String {
    escape_entities(s, true)
}

fn escape_entities(s: &str, quotes: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if quotes => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// [`fit`] for mrkdwn: escapes first and never leaves half an entity at the cut.
pub fn fit_mrkdwn(s: &str, max: usize, marker: &str) -> String {
    let escaped = escape_mrkdwn(s);
    let mut cut = fit(&escaped, max, marker);
    if cut.len() != escaped.trim_end().len() {
        let body = cut.strip_suffix(marker).unwrap_or(&cut).to_string();
        if let Some(amp) = body.rfind('&') {
            if !body[amp..].contains(';') {
                cut = format!("{}{marker}", body[..amp].trim_end());
            }
        }
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_count_utf16_units_and_never_split_a_code_point() {
        assert_eq!(fit("héllo", 10, "…"), "héllo");
        assert_eq!(fit("abcdefgh", 5, "…"), "abcd…");
        // 😀 is two units: a limit of 4 keeps one emoji and the marker.
        let cut = fit("😀😀😀", 4, "…");
        assert_eq!(cut, "😀…");
        assert!(units(&cut) <= 4);
        assert_eq!(fit("ab   ", 2, "…"), "ab");
    }

    #[test]
    fn mrkdwn_escapes_mentions_and_cuts_outside_entities() {
        assert_eq!(
            escape_mrkdwn("<!channel> & <@U1>"),
            "&lt;!channel&gt; &amp; &lt;@U1&gt;"
        );
        let cut = fit_mrkdwn("aaaa<b", 8, "…");
        assert!(!cut.contains("&l…"), "{cut}");
        assert!(units(&cut) <= 8);
        assert_eq!(cut, "aaaa…");
    }

    #[test]
    fn an_older_unsent_resolve_is_kept_when_a_newer_state_replaces_it() {
        let a = |fp: &str, status| AlertView {
            status,
            fingerprint: fp.into(),
            labels: [("alertname".to_string(), "X".to_string())].into(),
            annotations: BTreeMap::new(),
            starts_at: String::new(),
            ends_at: None,
            value: None,
            flapping: false,
        };
        let older = Notification {
            key: Some("g".into()),
            group_labels: BTreeMap::new(),
            alerts: vec![a("1", Status::Firing), a("2", Status::Resolved)],
            message: None,
        };
        let mut newer = Notification {
            alerts: vec![a("1", Status::Resolved), a("3", Status::Firing)],
            ..older.clone()
        };
        newer.merge_older(older);
        let got: Vec<(&str, Status)> = newer
            .alerts
            .iter()
            .map(|a| (a.fingerprint.as_str(), a.status))
            .collect();
        assert_eq!(
            got,
            [
                ("1", Status::Resolved),
                ("3", Status::Firing),
                ("2", Status::Resolved)
            ]
        );
        assert_eq!(newer.title(), "[FIRING:1] X");
    }
}
