//! `internal_metrics` source: sluice's own metrics as metric events, every
//! `scrape_interval_secs`, so `internal_metrics → influxdb` (or any sink) ships the
//! agent's health beside the data it moves. It reads exactly what `/metrics` shows:
//! counters as absolute counters, gauges as gauges, histograms as aggregated histograms
//! (buckets made non-cumulative, as in Vector's model). Names lose their `sluice_`
//! prefix and gain `namespace` (default `sluice`), so a sink that joins them writes
//! `sluice.component_received_events_total` or measurement `sluice`.

use crate::event::{
    Bucket, Event, EventMetadata, Metric, MetricKind, MetricValue, MAX_BATCH_EVENTS,
};
use crate::topology::component::{BuildError, SourceConfig, SourceContext, Task};
use chrono::Utc;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

/// `[sources.ID] type = "internal_metrics"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InternalMetricsConfig {
    /// How often to read the metrics. Default 1.
    #[serde(default = "default_interval")]
    pub scrape_interval_secs: f64,
    /// The namespace of every metric. Default `sluice`.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Extra tags (Vector's names).
    #[serde(default)]
    pub tags: InternalTags,
}

/// `tags` of `internal_metrics`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InternalTags {
    /// Add this host's name under this tag key.
    pub host_key: Option<String>,
    /// Add sluice's process ID under this tag key.
    pub pid_key: Option<String>,
}

fn default_interval() -> f64 {
    1.0
}
fn default_namespace() -> String {
    "sluice".into()
}

impl SourceConfig for InternalMetricsConfig {
    fn build(&self, cx: SourceContext) -> Result<Task, BuildError> {
        let cfg = self.clone();
        Ok(Box::pin(async move {
            let Some(handle) = crate::api::metrics_handle() else {
                tracing::error!(component_id = %cx.id, "No metrics recorder is installed; internal_metrics has nothing to read.");
                return;
            };
            let source_id = crate::event::intern(&cx.id);
            let mut extra = BTreeMap::new();
            if let Some(k) = &cfg.tags.host_key {
                extra.insert(k.clone(), crate::hostname());
            }
            if let Some(k) = &cfg.tags.pid_key {
                extra.insert(k.clone(), std::process::id().to_string());
            }
            let mut tick = tokio::time::interval(crate::seconds(cfg.scrape_interval_secs));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = cx.shutdown.cancelled() => break,
                }
                let now = Utc::now();
                let mut batch = Vec::new();
                for mut m in parse(&handle.render(), &cfg.namespace) {
                    m.timestamp = Some(now);
                    m.metadata = EventMetadata::new(source_id, now);
                    m.tags
                        .extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
                    batch.push(Event::from(m));
                    if batch.len() >= MAX_BATCH_EVENTS
                        && !crate::sources::send_batch(&mut batch, &cx.metrics, &cx.out).await
                    {
                        return;
                    }
                }
                if !crate::sources::send_batch(&mut batch, &cx.metrics, &cx.out).await {
                    return;
                }
            }
        }))
    }

    fn validate(&self) -> Vec<crate::config::field::FieldIssue> {
        if self.scrape_interval_secs.is_finite() && self.scrape_interval_secs > 0.0 {
            Vec::new()
        } else {
            vec![crate::config::field::FieldIssue::new(
                "scrape_interval_secs",
                "must be a positive number of seconds",
            )]
        }
    }
}

/// One sample line: name, labels, value.
fn sample(line: &str) -> Option<(&str, BTreeMap<String, String>, f64)> {
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices();
        let (mut key, mut value) = (String::new(), String::new());
        let mut in_value = false;
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            if in_value {
                match c {
                    '\\' => match chars.next().map(|(_, c)| c) {
                        Some('n') => value.push('\n'),
                        Some(other) => value.push(other),
                        None => {}
                    },
                    '"' => {
                        labels.insert(std::mem::take(&mut key), std::mem::take(&mut value));
                        in_value = false;
                    }
                    other => value.push(other),
                }
            } else {
                match c {
                    '}' => {
                        end = Some(i + 1);
                        break;
                    }
                    '=' => {
                        // The opening quote.
                        chars.next();
                        in_value = true;
                    }
                    ',' | ' ' => {}
                    other => key.push(other),
                }
            }
        }
        rest = &body[end?..];
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some((name, labels, value))
}

/// The metrics of a Prometheus text exposition, named without the `sluice_` prefix.
pub fn parse(text: &str, namespace: &str) -> Vec<Metric> {
    let mut types: HashMap<&str, &str> = HashMap::new();
    let mut out = Vec::new();
    // Histograms gather their lines per label set first: cumulative buckets, sum, count.
    type Key = (String, BTreeMap<String, String>);
    type Parts = (Vec<(f64, f64)>, f64, f64);
    let mut histograms: BTreeMap<Key, Parts> = BTreeMap::new();
    let short = |n: &str| n.strip_prefix("sluice_").unwrap_or(n).to_string();
    let new = |name: String, tags: BTreeMap<String, String>, value: MetricValue| {
        let mut m = Metric::new(
            name,
            MetricKind::Absolute,
            value,
            EventMetadata::new("internal_metrics", Utc::now()),
        );
        m.namespace = Some(namespace.to_string());
        m.tags = tags;
        m
    };
    for line in text.lines() {
        if let Some(t) = line.strip_prefix("# TYPE ") {
            let mut it = t.split_whitespace();
            if let (Some(n), Some(k)) = (it.next(), it.next()) {
                types.insert(n, k);
            }
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some((name, mut labels, value)) = sample(line) else {
            continue;
        };
        let histogram = ["_bucket", "_sum", "_count"].iter().find_map(|s| {
            let base = name.strip_suffix(s)?;
            (types.get(base) == Some(&"histogram")).then_some((base, *s))
        });
        match (histogram, types.get(name).copied()) {
            (Some((base, part)), _) => {
                let le = labels.remove("le");
                let h = histograms.entry((base.to_string(), labels)).or_default();
                match (part, le) {
                    ("_bucket", Some(le)) => {
                        let upper = if le == "+Inf" {
                            f64::INFINITY
                        } else {
                            le.parse().unwrap_or(f64::INFINITY)
                        };
                        h.0.push((upper, value));
                    }
                    ("_sum", _) => h.1 = value,
                    ("_count", _) => h.2 = value,
                    _ => {}
                }
            }
            (None, Some("counter")) => {
                out.push(new(short(name), labels, MetricValue::Counter(value)))
            }
            (None, _) => out.push(new(short(name), labels, MetricValue::Gauge(value))),
        }
    }
    for ((name, tags), (mut cumulative, sum, count)) in histograms {
        cumulative.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut previous = 0.0;
        let buckets = cumulative
            .into_iter()
            .filter(|(upper, _)| upper.is_finite())
            .map(|(upper_limit, c)| {
                let count = (c - previous).max(0.0) as u64;
                previous = c;
                Bucket { upper_limit, count }
            })
            .collect();
        out.push(new(
            short(&name),
            tags,
            MetricValue::AggregatedHistogram {
                buckets,
                count: count as u64,
                sum,
            },
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exposition_becomes_metric_events() {
        let text = r#"# HELP sluice_component_received_events_total Events a component took in.
# TYPE sluice_component_received_events_total counter
sluice_component_received_events_total{component_id="in",component_kind="source",component_type="http_server"} 3
# TYPE sluice_buffer_events gauge
sluice_buffer_events{component_id="out",component_kind="sink",component_type="file"} 0
# TYPE sluice_http_client_request_duration_seconds histogram
sluice_http_client_request_duration_seconds_bucket{component_id="h",le="0.1"} 2
sluice_http_client_request_duration_seconds_bucket{component_id="h",le="1"} 5
sluice_http_client_request_duration_seconds_bucket{component_id="h",le="+Inf"} 6
sluice_http_client_request_duration_seconds_sum{component_id="h"} 4.5
sluice_http_client_request_duration_seconds_count{component_id="h"} 6
# TYPE sluice_weird gauge
sluice_weird{path="a \"quoted\" \\ value"} 1.5
"#;
        let ms = parse(text, "sluice");
        let find = |n: &str| ms.iter().find(|m| m.name == n).unwrap();
        let c = find("component_received_events_total");
        assert_eq!(c.value, MetricValue::Counter(3.0));
        assert_eq!(c.namespace.as_deref(), Some("sluice"));
        assert_eq!(c.tags["component_type"], "http_server");
        assert_eq!(find("buffer_events").value, MetricValue::Gauge(0.0));
        assert_eq!(
            find("http_client_request_duration_seconds").value,
            MetricValue::AggregatedHistogram {
                buckets: vec![
                    Bucket {
                        upper_limit: 0.1,
                        count: 2
                    },
                    Bucket {
                        upper_limit: 1.0,
                        count: 3
                    }
                ],
                count: 6,
                sum: 4.5
            }
        );
        assert_eq!(find("weird").tags["path"], "a \"quoted\" \\ value");
    }
}
