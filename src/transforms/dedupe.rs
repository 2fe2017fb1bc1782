//! `dedupe` transform: drops an event whose chosen fields equal those of one seen
//! recently, as Vector's does. The fields are `fields.match` (default the schema's
//! `timestamp`, `host` and `message`) or every field but `fields.ignore`; values are
//! compared with their types (`"1"` is not `1`) and a missing field differs from a null
//! one. The last `cache.num_events` distinct events are remembered (least recently
//! seen forgotten first); with `time_settings.max_age_ms` an entry older than that no
//! longer counts. Duplicates are intentional discards.

use crate::config::field::FieldIssue;
use crate::event::{Batch, Event, ObjectMap, Value};
use crate::internal_events::ComponentMetrics;
use crate::sinks::util::encoding::encode_json_value;
use crate::topology::component::{
    BuildError, Transform, TransformConfig, TransformContext, TransformOutput,
};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// `[transforms.ID] type = "dedupe"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DedupeConfig {
    /// Which fields make two events the same.
    pub fields: Option<FieldsConfig>,
    /// How many distinct events are remembered.
    #[serde(default)]
    pub cache: CacheConfig,
    /// When a remembered event stops counting.
    pub time_settings: Option<TimeSettings>,
}

/// `fields`: exactly one of `match` and `ignore`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldsConfig {
    /// Compare only these fields (paths such as `a.b`).
    #[serde(rename = "match")]
    pub matched: Option<Vec<String>>,
    /// Compare every field but these.
    pub ignore: Option<Vec<String>>,
}

/// `cache`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// Distinct events remembered. Default 5000, as in Vector.
    #[serde(default = "default_num_events")]
    pub num_events: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            num_events: default_num_events(),
        }
    }
}

fn default_num_events() -> usize {
    5000
}

/// `time_settings`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeSettings {
    /// After this long a remembered event no longer makes a new one a duplicate.
    pub max_age_ms: u64,
    /// A dropped duplicate restarts its entry's age.
    #[serde(default)]
    pub refresh_on_drop: bool,
}

/// What makes two events the same.
#[derive(Clone, Debug)]
enum Selection {
    Match(Vec<String>),
    Ignore(Vec<String>),
}

impl DedupeConfig {
    fn selection(&self) -> Result<Selection, FieldIssue> {
        match &self.fields {
            None => {
                let s = crate::event::schema::log_schema();
                Ok(Selection::Match(vec![
                    s.timestamp_key.clone(),
                    s.host_key.clone(),
                    s.message_key.clone(),
                ]))
            }
            Some(FieldsConfig {
                matched: Some(m),
                ignore: None,
            }) => Ok(Selection::Match(m.clone())),
            Some(FieldsConfig {
                matched: None,
                ignore: Some(i),
            }) => Ok(Selection::Ignore(i.clone())),
            Some(_) => Err(FieldIssue::new(
                "fields",
                "set exactly one of `fields.match` and `fields.ignore`",
            )),
        }
    }
}

impl TransformConfig for DedupeConfig {
    fn validate(&self) -> Vec<FieldIssue> {
        let mut issues: Vec<FieldIssue> = self.selection().err().into_iter().collect();
        if self.cache.num_events == 0 {
            issues.push(FieldIssue::new("cache.num_events", "must be at least 1"));
        }
        issues
    }

    fn build(&self, cx: TransformContext) -> Result<Box<dyn Transform>, BuildError> {
        Ok(Box::new(Dedupe {
            selection: self.selection().map_err(|e| BuildError::Other(e.message))?,
            capacity: self.cache.num_events.max(1),
            max_age: self
                .time_settings
                .as_ref()
                .map(|t| Duration::from_millis(t.max_age_ms)),
            refresh_on_drop: self
                .time_settings
                .as_ref()
                .is_some_and(|t| t.refresh_on_drop),
            seen: HashMap::new(),
            order: BTreeMap::new(),
            tick: 0,
            key: Vec::new(),
            metrics: cx.metrics,
        }))
    }
}

/// A remembered event: when it was last seen (its place in `order`) and when its age
/// started.
struct Entry {
    tick: u64,
    born: Instant,
}

struct Dedupe {
    selection: Selection,
    capacity: usize,
    max_age: Option<Duration>,
    refresh_on_drop: bool,
    /// Key bytes of remembered events.
    seen: HashMap<Vec<u8>, Entry>,
    /// Least recently seen first.
    order: BTreeMap<u64, Vec<u8>>,
    tick: u64,
    /// Reused for each event's key.
    key: Vec<u8>,
    metrics: ComponentMetrics,
}

/// Appends `path`, the value's type and the value itself (missing and null differ).
fn push_field(key: &mut Vec<u8>, path: &str, value: Option<&Value>) {
    key.extend_from_slice(path.as_bytes());
    key.push(0);
    match value {
        None => key.push(b'-'),
        Some(v) => {
            key.push(match v {
                Value::Bytes(_) | Value::String(_) => b's',
                Value::Integer(_) => b'i',
                Value::Float(_) => b'f',
                Value::Boolean(_) => b'b',
                Value::Timestamp(_) => b't',
                Value::Regex(_) => b'r',
                Value::Object(_) => b'o',
                Value::Array(_) => b'a',
                Value::Null => b'n',
            });
            encode_json_value(v, key);
        }
    }
    key.push(0);
}

/// Every leaf of `map` with its dotted path, in key order, leaving out `ignore`.
fn push_all(key: &mut Vec<u8>, prefix: &str, map: &ObjectMap, ignore: &[String]) {
    for (k, v) in map {
        let path = if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        };
        if ignore.contains(&path) {
            continue;
        }
        match v {
            Value::Object(inner) => push_all(key, &path, inner, ignore),
            other => push_field(key, &path, Some(other)),
        }
    }
}

impl Dedupe {
    /// Whether the event was seen recently; remembers it either way.
    fn is_duplicate(&mut self, event: &Event) -> bool {
        let Event::Log(log) = event else {
            return false;
        };
        let mut key = std::mem::take(&mut self.key);
        key.clear();
        match &self.selection {
            Selection::Match(paths) => {
                for p in paths {
                    push_field(&mut key, p, log.get_path(p));
                }
            }
            Selection::Ignore(paths) => push_all(&mut key, "", log.fields(), paths),
        }
        let now = Instant::now();
        self.tick += 1;
        let tick = self.tick;
        let duplicate = match self.seen.get_mut(&key) {
            Some(entry) => {
                let fresh = self
                    .max_age
                    .is_none_or(|age| now.duration_since(entry.born) < age);
                self.order.remove(&entry.tick);
                entry.tick = tick;
                if !fresh || self.refresh_on_drop {
                    entry.born = now;
                }
                self.order.insert(tick, key.clone());
                fresh
            }
            None => {
                self.order.insert(tick, key.clone());
                self.seen.insert(key.clone(), Entry { tick, born: now });
                if self.seen.len() > self.capacity {
                    if let Some((_, oldest)) = self.order.pop_first() {
                        self.seen.remove(&oldest);
                    }
                }
                false
            }
        };
        self.key = key;
        duplicate
    }
}

impl Transform for Dedupe {
    fn transform(&mut self, input: Batch, output: &mut TransformOutput) {
        let mut dropped = 0u64;
        for event in input {
            if self.is_duplicate(&event) {
                dropped += 1;
            } else {
                output.push(event);
            }
        }
        if dropped > 0 {
            self.metrics.discarded_intentional.increment(dropped);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventMetadata, LogEvent};
    use crate::internal_events::{ComponentKind, ComponentLabels};

    fn dedupe(toml_text: &str) -> Box<dyn Transform> {
        let config: DedupeConfig = toml::from_str(toml_text).unwrap();
        let metrics = ComponentMetrics::new(ComponentLabels {
            id: "dedupe-unit".into(),
            kind: ComponentKind::Transform,
            type_name: "dedupe",
        });
        config
            .build(TransformContext {
                id: "dedupe-unit".into(),
                metrics,
                timezone: None,
                data_dir: std::env::temp_dir(),
            })
            .unwrap()
    }

    fn passed(t: &mut Box<dyn Transform>, message: &str) -> usize {
        let mut f = ObjectMap::new();
        f.insert("message".into(), Value::from(message));
        let e: Event = LogEvent::from_parts(f, EventMetadata::new("t", chrono::Utc::now())).into();
        let mut out = TransformOutput::new(0);
        t.transform(vec![e], &mut out);
        out.default.len()
    }

    #[test]
    fn an_entry_older_than_max_age_no_longer_counts() {
        let mut t = dedupe("fields.match = [\"message\"]\ntime_settings.max_age_ms = 50");
        assert_eq!(passed(&mut t, "a"), 1);
        assert_eq!(passed(&mut t, "a"), 0);
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(
            passed(&mut t, "a"),
            1,
            "too old to count: passes, and starts anew"
        );
        assert_eq!(passed(&mut t, "a"), 0);
    }

    #[test]
    fn refresh_on_drop_keeps_a_steady_repeat_out() {
        // Four gaps of 150 ms outlast the 500 ms age only because each drop restarts
        // it (a stall of up to 350 ms between two calls is tolerated).
        let mut t = dedupe(
            "fields.match = [\"message\"]\ntime_settings.max_age_ms = 500\ntime_settings.refresh_on_drop = true",
        );
        assert_eq!(passed(&mut t, "a"), 1);
        for _ in 0..4 {
            std::thread::sleep(Duration::from_millis(150));
            assert_eq!(passed(&mut t, "a"), 0, "each drop restarts the age");
        }
    }
}
