//! `all_metrics`: a log event that already is a metric in Vector's JSON shape, read
//! back into a metric. The value keys are tried in Vector's order (its fields iterate
//! sorted), so an event with two of them gives the same metric as in Vector.

use crate::event::{
    Bucket, LogEvent, Metric, MetricKind, MetricValue, Quantile, Sample, StatisticKind, Value,
};
use chrono::{DateTime, Utc};

/// The metric `log` describes, or the key that keeps it from being one.
pub(super) fn metric(log: &LogEvent, time: DateTime<Utc>) -> Result<Metric, String> {
    let name = text(log.get("name"), "name")?;
    let kind = match text(log.get("kind"), "kind")?.as_str() {
        "incremental" => MetricKind::Incremental,
        "absolute" => MetricKind::Absolute,
        other => {
            return Err(format!(
                "`kind` is {other:?}, not \"incremental\" or \"absolute\""
            ))
        }
    };
    let value = value(log)?;
    let mut m = Metric::new(name, kind, value, log.metadata.clone());
    if let Some(ns) = log.get("namespace") {
        m.namespace = Some(text(Some(ns), "namespace")?);
    }
    match log.get("tags") {
        None | Some(Value::Null) => {}
        Some(Value::Object(tags)) => {
            for (k, v) in tags {
                if let Some(v) = v.to_str_lossy() {
                    m.tags.insert(k.to_string(), v.into_owned());
                }
            }
        }
        Some(_) => return Err("`tags` is not an object".into()),
    }
    m.timestamp = Some(time);
    Ok(m)
}

fn value(log: &LogEvent) -> Result<MetricValue, String> {
    if let Some(h) = log.get("aggregated_histogram") {
        let buckets = array(h.field("buckets"), "aggregated_histogram.buckets")?
            .iter()
            .map(|b| {
                Ok(Bucket {
                    upper_limit: float(
                        b.field("upper_limit"),
                        "aggregated_histogram.buckets.upper_limit",
                    )?,
                    count: count(b.field("count"), "aggregated_histogram.buckets.count")?,
                })
            })
            .collect::<Result<_, String>>()?;
        return Ok(MetricValue::AggregatedHistogram {
            buckets,
            count: count(h.field("count"), "aggregated_histogram.count")?,
            sum: float(h.field("sum"), "aggregated_histogram.sum")?,
        });
    }
    if let Some(s) = log.get("aggregated_summary") {
        let quantiles = array(s.field("quantiles"), "aggregated_summary.quantiles")?
            .iter()
            .map(|q| {
                Ok(Quantile {
                    quantile: float(q.field("quantile"), "aggregated_summary.quantiles.quantile")?,
                    value: float(q.field("value"), "aggregated_summary.quantiles.value")?,
                })
            })
            .collect::<Result<_, String>>()?;
        return Ok(MetricValue::AggregatedSummary {
            quantiles,
            count: count(s.field("count"), "aggregated_summary.count")?,
            sum: float(s.field("sum"), "aggregated_summary.sum")?,
        });
    }
    if let Some(c) = log.get("counter") {
        return Ok(MetricValue::Counter(float(
            c.field("value"),
            "counter.value",
        )?));
    }
    if let Some(d) = log.get("distribution") {
        let samples = array(d.field("samples"), "distribution.samples")?
            .iter()
            .map(|s| {
                let rate = count(s.field("rate"), "distribution.samples.rate")?;
                Ok(Sample {
                    value: float(s.field("value"), "distribution.samples.value")?,
                    rate: u32::try_from(rate)
                        .map_err(|_| format!("`distribution.samples.rate` {rate} is too large"))?,
                })
            })
            .collect::<Result<_, String>>()?;
        let statistic = match text(d.field("statistic"), "distribution.statistic")?.as_str() {
            "histogram" => StatisticKind::Histogram,
            "summary" => StatisticKind::Summary,
            other => {
                return Err(format!(
                    "`distribution.statistic` is {other:?}, not \"histogram\" or \"summary\""
                ))
            }
        };
        return Ok(MetricValue::Distribution { samples, statistic });
    }
    if let Some(g) = log.get("gauge") {
        return Ok(MetricValue::Gauge(float(g.field("value"), "gauge.value")?));
    }
    if let Some(s) = log.get("set") {
        let values = array(s.field("values"), "set.values")?
            .iter()
            .map(|v| match v {
                Value::Bytes(_) | Value::String(_) => {
                    Ok(v.to_str_lossy().unwrap_or_default().into_owned())
                }
                _ => Err("`set.values` holds something other than text".to_string()),
            })
            .collect::<Result<_, String>>()?;
        return Ok(MetricValue::Set(values));
    }
    Err(
        "it has none of `counter`, `gauge`, `set`, `distribution`, `aggregated_histogram`, \
         `aggregated_summary`"
            .into(),
    )
}

/// `v` (a field of an object) when it is one.
trait Field {
    fn field(&self, key: &str) -> Option<&Value>;
}

impl Field for Value {
    fn field(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(o) => o.get(key),
            _ => None,
        }
    }
}

fn text(v: Option<&Value>, key: &str) -> Result<String, String> {
    match v {
        Some(v @ (Value::Bytes(_) | Value::String(_))) => {
            Ok(v.to_str_lossy().unwrap_or_default().into_owned())
        }
        Some(_) => Err(format!("`{key}` is not text")),
        None => Err(format!("`{key}` is missing")),
    }
}

fn float(v: Option<&Value>, key: &str) -> Result<f64, String> {
    match v {
        Some(Value::Float(f)) => Ok(f.into_inner()),
        Some(Value::Integer(i)) => Ok(*i as f64),
        Some(_) => Err(format!("`{key}` is not a number")),
        None => Err(format!("`{key}` is missing")),
    }
}

fn count(v: Option<&Value>, key: &str) -> Result<u64, String> {
    match v {
        Some(Value::Integer(i)) => u64::try_from(*i).map_err(|_| format!("`{key}` is negative")),
        Some(_) => Err(format!("`{key}` is not an integer")),
        None => Err(format!("`{key}` is missing")),
    }
}

fn array<'a>(v: Option<&'a Value>, key: &str) -> Result<&'a [Value], String> {
    match v {
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(format!("`{key}` is not an array")),
        None => Err(format!("`{key}` is missing")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventMetadata;

    fn log(json: serde_json::Value) -> LogEvent {
        let v: Value = serde_json::from_value(json).unwrap_or(Value::Null);
        let Value::Object(fields) = v else {
            panic!("an object")
        };
        LogEvent::from_parts(fields, EventMetadata::new("test", Utc::now()))
    }

    #[test]
    fn vectors_counter_example_reads_back() {
        let l = log(serde_json::json!({
            "counter": {"value": 10.0},
            "kind": "incremental",
            "name": "test.transform.counter",
            "tags": {"env": "test_env", "host": "localhost"}
        }));
        let m = metric(&l, Utc::now()).expect("a metric");
        assert_eq!(m.name, "test.transform.counter");
        assert_eq!(m.kind, MetricKind::Incremental);
        assert_eq!(m.value, MetricValue::Counter(10.0));
        assert_eq!(m.tags.get("env").map(String::as_str), Some("test_env"));
        assert_eq!(m.namespace, None);
    }

    #[test]
    fn every_shape_and_every_fault_names_its_key() {
        let h = log(serde_json::json!({
            "name": "h", "kind": "absolute", "namespace": "ns",
            "aggregated_histogram": {"buckets": [{"upper_limit": 1.0, "count": 2}], "count": 2, "sum": 1.5}
        }));
        let m = metric(&h, Utc::now()).expect("histogram");
        assert_eq!(m.namespace.as_deref(), Some("ns"));
        assert_eq!(
            m.value,
            MetricValue::AggregatedHistogram {
                buckets: vec![Bucket {
                    upper_limit: 1.0,
                    count: 2
                }],
                count: 2,
                sum: 1.5
            }
        );
        let d = log(serde_json::json!({
            "name": "d", "kind": "incremental",
            "distribution": {"samples": [{"value": 3, "rate": 1}], "statistic": "summary"}
        }));
        assert!(matches!(
            metric(&d, Utc::now()).map(|m| m.value),
            Ok(MetricValue::Distribution {
                statistic: StatisticKind::Summary,
                ..
            })
        ));
        for (json, fault) in [
            (
                serde_json::json!({"kind": "absolute", "gauge": {"value": 1}}),
                "`name` is missing",
            ),
            (
                serde_json::json!({"name": "g", "kind": "sometimes", "gauge": {"value": 1}}),
                "`kind` is \"sometimes\"",
            ),
            (
                serde_json::json!({"name": "g", "kind": "absolute", "gauge": {"value": "x"}}),
                "`gauge.value` is not a number",
            ),
            (
                serde_json::json!({"name": "g", "kind": "absolute"}),
                "it has none of",
            ),
            (
                serde_json::json!({"name": "s", "kind": "absolute", "set": {"values": [1]}}),
                "`set.values` holds",
            ),
        ] {
            let err = metric(&log(json), Utc::now()).err().unwrap_or_default();
            assert!(err.contains(fault), "{err:?} lacks {fault:?}");
        }
    }
}
