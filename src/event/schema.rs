//! Vector's global `log_schema`: the names of the fields every source writes (`message`,
//! `host`, `timestamp`, `source_type`) and sinks read. Set once when the pipeline
//! starts (as in Vector, a change needs a restart); sources build events with the
//! default names and move them only when the schema says otherwise, so the common case
//! costs one branch per event.

use super::{KeyString, ObjectMap};
use serde::Deserialize;
use std::sync::OnceLock;

/// `log_schema`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LogSchema {
    /// The raw text of a log line. Default `message`.
    #[serde(default = "message")]
    pub message_key: String,
    /// The host that produced it. Default `host`.
    #[serde(default = "host")]
    pub host_key: String,
    /// When it happened. Default `timestamp`.
    #[serde(default = "timestamp")]
    pub timestamp_key: String,
    /// The type of source that made the event. Default `source_type`.
    #[serde(default = "source_type")]
    pub source_type_key: String,
    /// Vector's metadata field: sluice keeps metadata beside the fields, so only the
    /// default is accepted.
    #[serde(default)]
    pub metadata_key: Option<String>,
}

fn message() -> String {
    "message".into()
}
fn host() -> String {
    "host".into()
}
fn timestamp() -> String {
    "timestamp".into()
}
fn source_type() -> String {
    "source_type".into()
}

impl Default for LogSchema {
    fn default() -> Self {
        Self {
            message_key: message(),
            host_key: host(),
            timestamp_key: timestamp(),
            source_type_key: source_type(),
            metadata_key: None,
        }
    }
}

static SCHEMA: OnceLock<LogSchema> = OnceLock::new();

/// The schema in force (the defaults until a pipeline with `log_schema` starts).
pub fn log_schema() -> &'static LogSchema {
    SCHEMA.get_or_init(LogSchema::default)
}

/// Installs the schema of the pipeline about to start. Once events exist their field
/// names are fixed, so a second, different schema is refused with the reason.
pub fn set_log_schema(schema: LogSchema) -> Result<(), String> {
    let current = SCHEMA.get_or_init(|| schema.clone());
    if *current == schema {
        Ok(())
    } else {
        Err("log_schema cannot change while sluice runs (as in Vector); restart to apply it".into())
    }
}

impl LogSchema {
    /// Whether any name differs from the defaults.
    pub fn is_default(&self) -> bool {
        self.message_key == "message"
            && self.host_key == "host"
            && self.timestamp_key == "timestamp"
            && self.source_type_key == "source_type"
    }

    /// Problems with the names, as `(key, problem)`.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        for (k, v) in [
            ("message_key", &self.message_key),
            ("host_key", &self.host_key),
            ("timestamp_key", &self.timestamp_key),
            ("source_type_key", &self.source_type_key),
        ] {
            if v.is_empty() {
                p.push((k, "must not be empty".to_string()));
            }
        }
        if let Some(m) = &self.metadata_key {
            p.push((
                "metadata_key",
                format!("Vector's `log_schema.metadata_key = \"{m}\"` is not supported by sluice: event metadata travels beside the fields, never inside them"),
            ));
        }
        p
    }

    /// Moves the standard fields a source wrote under their default names to the
    /// schema's, `host` to `host_key` (a source's own option, or the schema's; `""`
    /// drops it). Nothing happens for the defaults.
    pub fn rename(&self, fields: &mut ObjectMap, host_key: &str) {
        for (from, to) in [
            ("message", self.message_key.as_str()),
            ("timestamp", self.timestamp_key.as_str()),
            ("source_type", self.source_type_key.as_str()),
            ("host", host_key),
        ] {
            if from == to {
                continue;
            }
            if let Some(v) = fields.remove(from) {
                if !to.is_empty() {
                    fields.insert(KeyString::from(to), v);
                }
            }
        }
    }

    /// A source's host field (its own `host_key`, else the schema's) and whether its
    /// events need [`LogSchema::rename`] at all.
    pub fn host_key_for(&self, own: &Option<String>) -> (String, bool) {
        let key = own.clone().unwrap_or_else(|| self.host_key.clone());
        let renames = self.renames(&key);
        (key, renames)
    }

    /// Whether [`LogSchema::rename`] would change anything for a source whose host
    /// field is `host_key`.
    pub fn renames(&self, host_key: &str) -> bool {
        !self.is_default() || host_key != "host"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Value;

    #[test]
    fn rename_moves_only_what_differs() {
        let schema = LogSchema {
            message_key: "msg".into(),
            timestamp_key: "@timestamp".into(),
            ..Default::default()
        };
        let mut f = ObjectMap::new();
        for k in ["message", "timestamp", "source_type", "host", "other"] {
            f.insert(k.into(), Value::from(k));
        }
        schema.rename(&mut f, "");
        let keys: Vec<&str> = f.keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, ["@timestamp", "msg", "other", "source_type"]);
        assert!(LogSchema::default().is_default());
        assert!(!LogSchema::default().renames("host"));
        assert!(LogSchema::default().renames("hostname"));
        let bad = LogSchema {
            metadata_key: Some("meta".into()),
            ..Default::default()
        };
        assert!(bad.problems()[0].1.contains("not supported by sluice"));
    }
}
