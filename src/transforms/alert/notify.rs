//! The notification stage of the `alert` transform, Alertmanager's semantics without
//! Alertmanager: alerts are gathered into groups by `group_by` labels; a new group waits
//! `group_wait` before its first notification (so related alerts arrive together, and
//! an alert that resolves meanwhile is never sent), then is looked at every
//! `group_interval`, and notified when its firing set has something new, when all of it
//! resolved, when `send_resolved` and something resolved, or when `repeat_interval`
//! passed — the decision of Alertmanager's `notify/dedup_stage.go`. Inhibition rules
//! mute a target alert while a matching source alert fires with the same `equal`
//! labels; silences (a file, re-read when it changes) mute what their matchers match
//! between their start and end.
//!
//! Each notification is one event in the shape of Alertmanager's webhook payload.
//! Times are milliseconds of wall-clock time, given by the caller.
//!
//! A notification counts as sent once its sinks say so: each event carries a delivery
//! notifier. Until the answer comes, the decision treats it as sent (so a slow sink
//! does not get the same group twice), but the saved state does not: after a crash it
//! is sent again. A notification its sinks could not deliver (out of retries, dropped
//! from a full queue) is undone, and the group is looked at again at its next tick.
//! One a destination refused for good is not repeated (it would be refused again).

use super::matcher::{all_match, Matcher};
use super::{AlertSnapshot, Notice};
use crate::config::field::FieldIssue;
use crate::event::{
    BatchNotifier, BatchStatus, Event, EventMetadata, LogEvent, ObjectMap, SourceId, Value,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// `[transforms.ID.notify]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// Labels whose values group alerts into one notification. Default none: every
    /// alert of the transform in one group (as Alertmanager's route without group_by).
    #[serde(default)]
    pub group_by: Vec<String>,
    /// Wait before a new group's first notification, in seconds. Default 30.
    #[serde(default = "default_group_wait")]
    pub group_wait_secs: f64,
    /// How often a group is looked at after that, in seconds. Default 300.
    #[serde(default = "default_group_interval")]
    pub group_interval_secs: f64,
    /// How long before a group that did not change is notified again, in seconds.
    /// Checked at group_interval ticks. Default 14400.
    #[serde(default = "default_repeat_interval")]
    pub repeat_interval_secs: f64,
    /// Notify when alerts resolve. Default true.
    #[serde(default = "default_true")]
    pub send_resolved: bool,
    /// Inhibition rules.
    #[serde(default)]
    pub inhibit_rules: Vec<InhibitConfig>,
    /// A JSON file of silences (`[{"matchers": ["alertname=\"X\""], "starts_at":
    /// "...", "ends_at": "...", "comment": "..."}]`), re-read when it changes.
    pub silences_file: Option<PathBuf>,
}

/// One inhibition rule.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InhibitConfig {
    /// What a firing alert must match to mute others.
    pub source_matchers: Vec<String>,
    /// What the muted alerts match.
    pub target_matchers: Vec<String>,
    /// Labels source and target must have the same values of.
    #[serde(default)]
    pub equal: Vec<String>,
}

fn default_group_wait() -> f64 {
    30.0
}
fn default_group_interval() -> f64 {
    300.0
}
fn default_repeat_interval() -> f64 {
    14_400.0
}
fn default_true() -> bool {
    true
}

impl NotifyConfig {
    /// Problems, keys under `notify`.
    pub fn issues(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        for (k, v) in [
            ("notify.group_wait_secs", self.group_wait_secs),
            ("notify.group_interval_secs", self.group_interval_secs),
            ("notify.repeat_interval_secs", self.repeat_interval_secs),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                issues.push(FieldIssue::new(
                    k,
                    "must be zero or a positive number of seconds",
                ));
            }
        }
        if self.group_interval_secs <= 0.0 {
            issues.push(FieldIssue::new(
                "notify.group_interval_secs",
                "must be more than 0",
            ));
        }
        for (i, r) in self.inhibit_rules.iter().enumerate() {
            for (k, list) in [
                ("source_matchers", &r.source_matchers),
                ("target_matchers", &r.target_matchers),
            ] {
                for m in list {
                    if let Err(e) = Matcher::parse(m) {
                        issues.push(FieldIssue::new(format!("notify.inhibit_rules[{i}].{k}"), e));
                    }
                }
            }
        }
        issues
    }
}

/// A silence as the file holds it.
#[derive(Clone, Debug, Deserialize)]
struct SilenceFile {
    matchers: Vec<String>,
    starts_at: Option<String>,
    ends_at: Option<String>,
    /// Why, for people: read so a file with it parses, not used.
    #[serde(default, rename = "comment")]
    _comment: String,
}

#[derive(Clone, Debug)]
struct Silence {
    matchers: Vec<Matcher>,
    starts_ms: i64,
    ends_ms: i64,
}

#[derive(Clone, Debug)]
struct Inhibit {
    source: Vec<Matcher>,
    target: Vec<Matcher>,
    equal: Vec<String>,
}

/// What was last notified for a group (Alertmanager's notification log entry).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct LogEntry {
    /// Fingerprints firing when notified.
    pub firing: BTreeSet<String>,
    /// Fingerprints resolved when notified.
    pub resolved: BTreeSet<String>,
    /// When.
    pub at_ms: i64,
}

/// A group of alerts notified together.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AggGroup {
    /// Its `group_by` labels.
    pub labels: BTreeMap<String, String>,
    /// Its alerts, by fingerprint.
    pub alerts: BTreeMap<String, AlertSnapshot>,
    /// When it is next looked at.
    pub next_flush_ms: i64,
}

/// What the stage keeps, and what survives a restart.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NotifyState {
    /// Groups by key.
    pub groups: BTreeMap<String, AggGroup>,
    /// The notification log by group key.
    pub log: BTreeMap<String, LogEntry>,
}

/// A notification emitted and not yet answered by its sinks.
struct Unconfirmed {
    /// The log entry before it, to go back to if it is not delivered.
    previous: Option<LogEntry>,
    /// The entry it wrote (`at_ms` tells whether a later one replaced it).
    at_ms: i64,
    /// The group as it was notified, resolved alerts included, to restore if the
    /// notification is undone after the group was cleaned up.
    group: AggGroup,
    answer: tokio::sync::oneshot::Receiver<BatchStatus>,
}

/// See the module documentation.
pub struct Notifier {
    group_by: Vec<String>,
    group_wait_ms: i64,
    group_interval_ms: i64,
    repeat_ms: i64,
    send_resolved: bool,
    inhibit: Vec<Inhibit>,
    silences_file: Option<PathBuf>,
    silences_mtime: Option<std::time::SystemTime>,
    silences: Vec<Silence>,
    /// The groups and the log.
    pub state: NotifyState,
    receiver: String,
    unconfirmed: BTreeMap<String, Unconfirmed>,
}

fn ms(secs: f64) -> i64 {
    (secs * 1000.0) as i64
}

fn parse_time(s: &Option<String>, default: i64) -> Result<i64, String> {
    match s {
        None => Ok(default),
        Some(t) => chrono::DateTime::parse_from_rfc3339(t)
            .map(|d| d.timestamp_millis())
            .map_err(|e| format!("`{t}` is not an RFC 3339 time: {e}")),
    }
}

impl Notifier {
    /// A stage for `config`, named `receiver` in its notifications.
    pub fn new(config: &NotifyConfig, receiver: &str) -> Result<Self, String> {
        let parse_all = |list: &[String]| -> Result<Vec<Matcher>, String> {
            list.iter().map(|m| Matcher::parse(m)).collect()
        };
        let inhibit = config
            .inhibit_rules
            .iter()
            .map(|r| {
                Ok(Inhibit {
                    source: parse_all(&r.source_matchers)?,
                    target: parse_all(&r.target_matchers)?,
                    equal: r.equal.clone(),
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Self {
            group_by: config.group_by.clone(),
            group_wait_ms: ms(config.group_wait_secs),
            group_interval_ms: ms(config.group_interval_secs).max(1),
            repeat_ms: ms(config.repeat_interval_secs),
            send_resolved: config.send_resolved,
            inhibit,
            silences_file: config.silences_file.clone(),
            silences_mtime: None,
            silences: Vec::new(),
            state: NotifyState::default(),
            receiver: receiver.to_string(),
            unconfirmed: BTreeMap::new(),
        })
    }

    /// Reads the silences file again if it changed; a file that does not parse keeps
    /// the silences in force and is reported (once per change).
    pub fn reload_silences(&mut self, now_ms: i64) {
        let Some(path) = &self.silences_file else {
            return;
        };
        let mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        if mtime == self.silences_mtime {
            return;
        }
        self.silences_mtime = mtime;
        if mtime.is_none() {
            self.silences.clear();
            return;
        }
        let parsed = std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<Vec<SilenceFile>>(&b).map_err(|e| e.to_string()))
            .and_then(|list| {
                list.iter()
                    .map(|s| {
                        Ok(Silence {
                            matchers: s
                                .matchers
                                .iter()
                                .map(|m| Matcher::parse(m))
                                .collect::<Result<_, _>>()?,
                            starts_ms: parse_time(&s.starts_at, i64::MIN)?,
                            ends_ms: parse_time(&s.ends_at, i64::MAX)?,
                        })
                    })
                    .collect::<Result<Vec<_>, String>>()
            });
        match parsed {
            Ok(s) => {
                tracing::info!(file = %path.display(), silences = s.len(), active = s.iter().filter(|x| x.starts_ms <= now_ms && now_ms < x.ends_ms).count(), "Read the silences file.");
                self.silences = s;
            }
            Err(e) => {
                tracing::error!(file = %path.display(), error = %e, "The silences file does not parse; the silences read before stay in force.");
            }
        }
    }

    /// The key of the group an alert belongs to, and its labels.
    fn group_of(&self, labels: &BTreeMap<String, String>) -> (String, BTreeMap<String, String>) {
        let group: BTreeMap<String, String> = self
            .group_by
            .iter()
            .map(|k| (k.clone(), labels.get(k).cloned().unwrap_or_default()))
            .collect();
        let mut key = String::from("{");
        for (i, (k, v)) in group.iter().enumerate() {
            if i > 0 {
                key.push_str(", ");
            }
            key.push_str(&format!("{k}={v:?}"));
        }
        key.push('}');
        (key, group)
    }

    /// Takes an alert's new status.
    pub fn ingest(&mut self, alert: AlertSnapshot, now_ms: i64) {
        let (key, labels) = self.group_of(&alert.labels);
        let wait = self.group_wait_ms;
        let g = self.state.groups.entry(key).or_insert_with(|| AggGroup {
            labels,
            alerts: BTreeMap::new(),
            next_flush_ms: now_ms + wait,
        });
        g.alerts.insert(alert.fingerprint.clone(), alert);
    }

    /// When the next group is due, if any.
    pub fn next_due_ms(&self) -> Option<i64> {
        self.state.groups.values().map(|g| g.next_flush_ms).min()
    }

    fn muted(&self, a: &AlertSnapshot, sources: &[&AlertSnapshot], now_ms: i64) -> bool {
        let silenced = self.silences.iter().any(|s| {
            s.starts_ms <= now_ms && now_ms < s.ends_ms && all_match(&s.matchers, &a.labels)
        });
        silenced
            || self.inhibit.iter().any(|r| {
                all_match(&r.target, &a.labels)
                    && sources.iter().any(|s| {
                        s.fingerprint != a.fingerprint
                            && all_match(&r.source, &s.labels)
                            && r.equal.iter().all(|l| s.labels.get(l) == a.labels.get(l))
                    })
            })
    }

    /// Notifies the groups that are due at `now_ms`, appending one event per
    /// notification to `out`; `true` when any group was due (its state changed).
    pub fn flush(&mut self, now_ms: i64, source: SourceId, out: &mut Vec<Event>) -> bool {
        self.reload_silences(now_ms);
        let due: Vec<String> = self
            .state
            .groups
            .iter()
            .filter(|(_, g)| g.next_flush_ms <= now_ms)
            .map(|(k, _)| k.clone())
            .collect();
        if due.is_empty() {
            return false;
        }
        let all_firing: Vec<AlertSnapshot> = self
            .state
            .groups
            .values()
            .flat_map(|g| g.alerts.values())
            .filter(|a| a.status == Notice::Firing)
            .cloned()
            .collect();
        let sources: Vec<&AlertSnapshot> = all_firing.iter().collect();
        for key in due {
            let Some(g) = self.state.groups.get(&key) else {
                continue;
            };
            let mut firing_alerts = Vec::new();
            let mut resolved_alerts = Vec::new();
            for a in g.alerts.values() {
                match a.status {
                    Notice::Firing if !self.muted(a, &sources, now_ms) => {
                        firing_alerts.push(a.clone())
                    }
                    Notice::Firing => {}
                    Notice::Resolved => resolved_alerts.push(a.clone()),
                }
            }
            let firing: BTreeSet<String> = firing_alerts
                .iter()
                .map(|a| a.fingerprint.clone())
                .collect();
            let resolved: BTreeSet<String> = resolved_alerts
                .iter()
                .map(|a| a.fingerprint.clone())
                .collect();
            let entry = self.state.log.get(&key);
            if needs_update(
                entry,
                &firing,
                &resolved,
                self.send_resolved,
                self.repeat_ms,
                now_ms,
            ) {
                let mut alerts = firing_alerts;
                if self.send_resolved {
                    alerts.extend(resolved_alerts);
                }
                if !alerts.is_empty() {
                    let mut event = [notification(
                        &self.receiver,
                        &key,
                        &g.labels,
                        &alerts,
                        now_ms,
                        source,
                    )];
                    let answer = BatchNotifier::attach(&mut event);
                    let group = g.clone();
                    let [event] = event;
                    out.push(event);
                    // An older unanswered one stays the one to go back to.
                    let previous = match self.unconfirmed.remove(&key) {
                        Some(u) => u.previous,
                        None => self.state.log.get(&key).cloned(),
                    };
                    self.unconfirmed.insert(
                        key.clone(),
                        Unconfirmed {
                            previous,
                            at_ms: now_ms,
                            group,
                            answer,
                        },
                    );
                }
                self.state.log.insert(
                    key.clone(),
                    LogEntry {
                        firing,
                        resolved,
                        at_ms: now_ms,
                    },
                );
            }
            // Resolved alerts have been considered: they leave the group; an empty group
            // goes, and with it a log entry that holds nothing firing.
            let interval = self.group_interval_ms;
            if let Some(g) = self.state.groups.get_mut(&key) {
                g.alerts.retain(|_, a| a.status == Notice::Firing);
                g.next_flush_ms = now_ms + interval;
                if g.alerts.is_empty() {
                    self.state.groups.remove(&key);
                    if self
                        .state
                        .log
                        .get(&key)
                        .is_some_and(|e| e.firing.is_empty())
                    {
                        self.state.log.remove(&key);
                    }
                }
            }
        }
        true
    }
}

impl Notifier {
    /// Takes in the sinks' answers: delivered or refused for good, the log entry
    /// stands; not delivered, it is undone and the group (restored if it was cleaned
    /// up) is looked at again at its next tick. `true` when the saved state changes.
    pub fn confirm(&mut self, now_ms: i64) -> bool {
        let mut changed = false;
        let keys: Vec<String> = self.unconfirmed.keys().cloned().collect();
        for key in keys {
            let Some(u) = self.unconfirmed.get_mut(&key) else {
                continue;
            };
            let status = match u.answer.try_recv() {
                Ok(s) => s,
                Err(tokio::sync::oneshot::error::TryRecvError::Empty) => continue,
                Err(tokio::sync::oneshot::error::TryRecvError::Closed) => BatchStatus::Errored,
            };
            let Some(u) = self.unconfirmed.remove(&key) else {
                continue;
            };
            changed = true;
            if status != BatchStatus::Errored {
                continue;
            }
            if self.state.log.get(&key).is_none_or(|e| e.at_ms == u.at_ms) {
                match u.previous {
                    Some(p) => self.state.log.insert(key.clone(), p),
                    None => self.state.log.remove(&key),
                };
            }
            let interval = self.group_interval_ms;
            let g = self.state.groups.entry(key).or_insert_with(|| AggGroup {
                next_flush_ms: now_ms + interval,
                ..u.group.clone()
            });
            for (fp, a) in u.group.alerts {
                g.alerts.entry(fp).or_insert(a);
            }
        }
        changed
    }

    /// Whether a notification waits for its sinks' answer (the transform then looks
    /// again soon, so a delivered page is saved as sent within moments).
    pub fn awaiting_answers(&self) -> bool {
        !self.unconfirmed.is_empty()
    }

    /// The state to save: notifications not yet delivered count as not sent, so a
    /// restart sends them again rather than losing them.
    pub fn saved_state(&self) -> NotifyState {
        let mut state = self.state.clone();
        for (key, u) in &self.unconfirmed {
            match &u.previous {
                Some(p) => state.log.insert(key.clone(), p.clone()),
                None => state.log.remove(key),
            };
            let g = state
                .groups
                .entry(key.clone())
                .or_insert_with(|| u.group.clone());
            for (fp, a) in &u.group.alerts {
                g.alerts.entry(fp.clone()).or_insert_with(|| a.clone());
            }
        }
        state
    }
}

/// Alertmanager's `DedupStage.needsUpdate`.
pub fn needs_update(
    entry: Option<&LogEntry>,
    firing: &BTreeSet<String>,
    resolved: &BTreeSet<String>,
    send_resolved: bool,
    repeat_ms: i64,
    now_ms: i64,
) -> bool {
    let Some(entry) = entry else {
        return !firing.is_empty();
    };
    if !firing.is_subset(&entry.firing) {
        return true;
    }
    if firing.is_empty() {
        // All resolved: notify (whatever send_resolved says) if the last notification
        // had something firing, so the log forgets it.
        return !entry.firing.is_empty();
    }
    if send_resolved && !resolved.is_subset(&entry.resolved) {
        return true;
    }
    entry.at_ms <= now_ms - repeat_ms
}

fn object(map: &BTreeMap<String, String>) -> Value {
    Value::Object(
        map.iter()
            .map(|(k, v)| (k.as_str().into(), Value::from(v.as_str())))
            .collect(),
    )
}

/// Labels (or annotations) every alert has with the same value.
fn common(
    alerts: &[AlertSnapshot],
    pick: impl Fn(&AlertSnapshot) -> &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let Some(first) = alerts.first() else {
        return BTreeMap::new();
    };
    pick(first)
        .iter()
        .filter(|(k, v)| alerts.iter().all(|a| pick(a).get(*k) == Some(*v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// One notification in the shape of Alertmanager's webhook payload (version 4).
fn notification(
    receiver: &str,
    key: &str,
    group_labels: &BTreeMap<String, String>,
    alerts: &[AlertSnapshot],
    now_ms: i64,
    source: SourceId,
) -> Event {
    let firing = alerts.iter().filter(|a| a.status == Notice::Firing).count();
    let status = if firing > 0 { "firing" } else { "resolved" };
    let mut f = ObjectMap::new();
    f.insert("version".into(), Value::from("4"));
    f.insert("receiver".into(), Value::from(receiver));
    f.insert("groupKey".into(), Value::from(key));
    f.insert("status".into(), Value::from(status));
    f.insert("groupLabels".into(), object(group_labels));
    f.insert(
        "commonLabels".into(),
        object(&common(alerts, |a| &a.labels)),
    );
    f.insert(
        "commonAnnotations".into(),
        object(&common(alerts, |a| &a.annotations)),
    );
    f.insert("externalURL".into(), Value::from(""));
    f.insert("truncatedAlerts".into(), Value::Integer(0));
    f.insert(
        "alerts".into(),
        Value::Array(alerts.iter().map(|a| a.to_value(now_ms)).collect()),
    );
    let name = alerts
        .first()
        .and_then(|a| a.labels.get("alertname"))
        .cloned()
        .unwrap_or_default();
    f.insert(
        "message".into(),
        Value::from(format!(
            "[{}] {name}: {firing} firing, {} resolved",
            status.to_uppercase(),
            alerts.len() - firing
        )),
    );
    let wall = chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
    f.insert("timestamp".into(), Value::Timestamp(wall));
    Event::Log(LogEvent::from_parts(f, EventMetadata::new(source, wall)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_decision_follows_alertmanagers_dedup_stage() {
        let h = 3_600_000;
        let entry = LogEntry {
            firing: set(&["a", "b"]),
            resolved: set(&[]),
            at_ms: 0,
        };
        // Never notified: only if something fires.
        assert!(needs_update(None, &set(&["a"]), &set(&[]), true, 4 * h, 1));
        assert!(!needs_update(None, &set(&[]), &set(&["a"]), true, 4 * h, 1));
        // A new firing alert.
        assert!(needs_update(
            Some(&entry),
            &set(&["a", "c"]),
            &set(&[]),
            true,
            4 * h,
            1
        ));
        // Fewer firing, one resolved: with send_resolved only.
        assert!(needs_update(
            Some(&entry),
            &set(&["a"]),
            &set(&["b"]),
            true,
            4 * h,
            1
        ));
        assert!(!needs_update(
            Some(&entry),
            &set(&["a"]),
            &set(&["b"]),
            false,
            4 * h,
            1
        ));
        // All resolved: always, so the log forgets them.
        assert!(needs_update(
            Some(&entry),
            &set(&[]),
            &set(&["a", "b"]),
            false,
            4 * h,
            1
        ));
        // Nothing new: only once repeat_interval passed.
        assert!(!needs_update(
            Some(&entry),
            &set(&["a", "b"]),
            &set(&[]),
            true,
            4 * h,
            4 * h - 1
        ));
        assert!(needs_update(
            Some(&entry),
            &set(&["a", "b"]),
            &set(&[]),
            true,
            4 * h,
            4 * h
        ));
        // Fired and resolved between two notifications of nothing: nothing to say.
        let empty = LogEntry::default();
        assert!(!needs_update(
            Some(&empty),
            &set(&[]),
            &set(&["x"]),
            true,
            4 * h,
            1
        ));
    }
}
