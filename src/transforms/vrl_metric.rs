//! A metric event as a VRL program sees it, the way Vector's metric target shows it:
//! an object of `name`, `namespace`, `tags`, `kind`, `type`, `timestamp` and
//! `interval_ms`. The value itself (the counter's number, the buckets) is not exposed,
//! as in Vector. After a `remap` program ran, what it left is written back; a change a
//! metric cannot hold (a new top-level field, `type`, a missing `name`, a tag that is
//! not text) is an error of the program, handled like any other runtime error.

use crate::event::{Metric, MetricKind, ObjectMap, Value};

/// The paths a program may set, for the error message.
const SETTABLE: &str = ".name, .namespace, .interval_ms, .timestamp, .kind, .tags";

/// The object a program's `.` stands for.
pub fn to_value(m: &Metric) -> Value {
    let mut o = ObjectMap::new();
    o.insert("name".into(), Value::from(m.name.as_str()));
    if let Some(ns) = &m.namespace {
        o.insert("namespace".into(), Value::from(ns.as_str()));
    }
    let tags: ObjectMap = m
        .tags
        .iter()
        .map(|(k, v)| (k.as_str().into(), Value::from(v.as_str())))
        .collect();
    o.insert("tags".into(), Value::Object(tags));
    o.insert("kind".into(), Value::from(kind_name(m.kind)));
    o.insert("type".into(), Value::from(m.value.type_name()));
    if let Some(t) = m.timestamp {
        o.insert("timestamp".into(), Value::Timestamp(t));
    }
    if let Some(i) = m.interval_ms {
        o.insert("interval_ms".into(), Value::Integer(i64::from(i)));
    }
    Value::Object(o)
}

fn kind_name(k: MetricKind) -> &'static str {
    match k {
        MetricKind::Incremental => "incremental",
        MetricKind::Absolute => "absolute",
    }
}

/// Writes what the program left in `.` back into `m`, or says why a metric cannot hold
/// it (then `m` is left as it was).
pub fn apply(value: Value, m: &mut Metric) -> Result<(), String> {
    let Value::Object(mut o) = value else {
        return Err("a metric's `.` must stay an object".into());
    };
    let name = match o.remove("name") {
        Some(v @ (Value::Bytes(_) | Value::String(_))) => text(&v),
        Some(_) => return Err("a metric's `.name` must be text".into()),
        None => return Err("a metric needs its `.name`".into()),
    };
    let namespace = match o.remove("namespace") {
        None | Some(Value::Null) => None,
        Some(v @ (Value::Bytes(_) | Value::String(_))) => Some(text(&v)),
        Some(_) => return Err("a metric's `.namespace` must be text".into()),
    };
    let kind = match o.remove("kind") {
        Some(v @ (Value::Bytes(_) | Value::String(_))) => match text(&v).as_str() {
            "incremental" => MetricKind::Incremental,
            "absolute" => MetricKind::Absolute,
            other => {
                return Err(format!(
                    "a metric's `.kind` is \"incremental\" or \"absolute\", not {other:?}"
                ))
            }
        },
        None => m.kind,
        Some(_) => return Err("a metric's `.kind` must be text".into()),
    };
    match o.remove("type") {
        None => {}
        Some(v) if v.to_str_lossy().as_deref() == Some(m.value.type_name()) => {}
        Some(_) => return Err("a metric's `.type` cannot be changed".into()),
    }
    let timestamp = match o.remove("timestamp") {
        None | Some(Value::Null) => None,
        Some(Value::Timestamp(t)) => Some(t),
        Some(_) => return Err("a metric's `.timestamp` must be a timestamp".into()),
    };
    let interval_ms = match o.remove("interval_ms") {
        None | Some(Value::Null) => None,
        Some(Value::Integer(i)) => Some(
            u32::try_from(i)
                .map_err(|_| format!("a metric's `.interval_ms` {i} is out of range"))?,
        ),
        Some(_) => return Err("a metric's `.interval_ms` must be an integer".into()),
    };
    let tags = match o.remove("tags") {
        None | Some(Value::Null) => Default::default(),
        Some(Value::Object(t)) => t
            .into_iter()
            .filter(|(_, v)| !matches!(v, Value::Null))
            .map(|(k, v)| match v {
                Value::Bytes(_) | Value::String(_) => Ok((k.to_string(), text(&v))),
                _ => Err(format!("the metric tag `{k}` must be text")),
            })
            .collect::<Result<_, String>>()?,
        Some(_) => return Err("a metric's `.tags` must be an object".into()),
    };
    if let Some(k) = o.keys().next() {
        return Err(format!(
            "`.{k}` is not a path of a metric; a program may set {SETTABLE}"
        ));
    }
    m.name = name;
    m.namespace = namespace;
    m.kind = kind;
    m.timestamp = timestamp;
    m.interval_ms = interval_ms;
    m.tags = tags;
    Ok(())
}

fn text(v: &Value) -> String {
    v.to_str_lossy().unwrap_or_default().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventMetadata, MetricValue};
    use chrono::Utc;

    fn counter() -> Metric {
        let mut m = Metric::new(
            "user_login_total",
            MetricKind::Incremental,
            MetricValue::Counter(102.0),
            EventMetadata::new("test", Utc::now()),
        );
        m.tags.insert("host".into(), "my.host.com".into());
        m
    }

    #[test]
    fn unchanged_round_trips_and_edits_land() {
        let mut m = counter();
        let before = m.clone();
        assert_eq!(apply(to_value(&m), &mut m), Ok(()));
        assert_eq!(
            (m.name.as_str(), &m.tags),
            (before.name.as_str(), &before.tags)
        );
        let Value::Object(mut o) = to_value(&m) else {
            panic!("an object")
        };
        o.insert("namespace".into(), Value::from("app"));
        if let Some(Value::Object(t)) = o.get_mut("tags") {
            let host = t.remove("host").unwrap_or(Value::Null);
            t.insert("hostname".into(), host);
        }
        assert_eq!(apply(Value::Object(o), &mut m), Ok(()));
        assert_eq!(m.namespace.as_deref(), Some("app"));
        assert_eq!(
            m.tags.get("hostname").map(String::as_str),
            Some("my.host.com")
        );
        assert_eq!(m.value, MetricValue::Counter(102.0));
    }

    #[test]
    fn what_a_metric_cannot_hold_is_an_error_and_changes_nothing() {
        for (key, value, fault) in [
            ("type", Value::from("gauge"), "`.type` cannot be changed"),
            (
                "extra",
                Value::from(1),
                "`.extra` is not a path of a metric",
            ),
            ("kind", Value::from("often"), "not \"often\""),
        ] {
            let mut m = counter();
            let Value::Object(mut o) = to_value(&m) else {
                panic!("an object")
            };
            o.insert(key.into(), value);
            let err = apply(Value::Object(o), &mut m).err().unwrap_or_default();
            assert!(err.contains(fault), "{err}");
            assert_eq!(m.tags.len(), 1);
        }
    }
}
