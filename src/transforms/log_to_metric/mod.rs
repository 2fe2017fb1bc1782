//! `log_to_metric` transform: turns log events into metric events, as Vector's does.
//! Each entry of `metrics` reads one `field` of every log event:
//!
//! - `counter`: 1 per event that has the field (its numeric value with
//!   `increment_by_value`), incremental unless `kind = "absolute"`;
//! - `gauge`: the field's number, absolute;
//! - `histogram` / `summary`: the number as one sample of a distribution;
//! - `set`: the field's text as a member.
//!
//! `name` (default the field's name) and `namespace` are templates, as are the `tags`
//! values; the metric takes the event's timestamp. An event without the field, or with
//! one that is not a number where a number is needed, produces no metric for that
//! entry, counted and logged (Vector's behaviour); the log event itself is consumed.
//!
//! With `all_metrics = true` the `metrics` list is ignored and every log event is read
//! as a metric already in Vector's JSON shape (what Vector's own `log_to_metric` reads
//! and its JSON codec writes): `name`, `kind` (`incremental` or `absolute`), optional
//! `namespace`, `tags` and `timestamp`, and one value key, `counter.value`,
//! `gauge.value`, `set.values`, `distribution.{samples, statistic}`,
//! `aggregated_histogram.{buckets, count, sum}` or `aggregated_summary.{quantiles, count,
//! sum}`. An event of another shape makes no metric, counted and logged with the key at
//! fault. Unlike Vector, integers are accepted where a float is expected.

use crate::config::field::FieldIssue;
use crate::event::{
    Batch, Event, LogEvent, Metric, MetricKind, MetricValue, Sample, StatisticKind, Value,
};
use crate::internal_events::failures::{FieldUnusable, MetricShapeInvalid};
use crate::internal_events::{ComponentMetrics, Reporter};
use crate::sinks::util::template::Template;
use crate::topology::component::{
    BuildError, Transform, TransformConfig, TransformContext, TransformOutput,
};
use serde::Deserialize;
use std::collections::BTreeMap;

mod shaped;

/// `[transforms.ID] type = "log_to_metric"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogToMetricConfig {
    /// The metrics each log event yields.
    #[serde(default)]
    pub metrics: Vec<MetricConfig>,
    /// Read every log event as a metric in Vector's JSON shape instead, for pipelines
    /// that carry metrics as logs (Kafka, HTTP) and turn them back here.
    #[serde(default)]
    pub all_metrics: bool,
}

/// One entry of `metrics`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricConfig {
    /// `counter`, `gauge`, `histogram`, `summary` or `set`.
    #[serde(rename = "type")]
    pub metric_type: MetricType,
    /// The log field read (a path such as `a.b`).
    pub field: String,
    /// The metric's name (a template); the field's name when absent.
    pub name: Option<String>,
    /// Its namespace (a template).
    pub namespace: Option<String>,
    /// Tags, their values templates (`{{ host }}`); a tag whose field is missing is
    /// left out.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Counters: add the field's value instead of 1.
    #[serde(default)]
    pub increment_by_value: bool,
    /// Counters: `incremental` (default) or `absolute`.
    #[serde(default)]
    pub kind: Option<CounterKind>,
}

/// The metric types.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MetricType {
    /// Counts events (or sums a field).
    Counter,
    /// The last value.
    Gauge,
    /// Samples of a histogram.
    Histogram,
    /// Samples of a summary.
    Summary,
    /// Distinct values.
    Set,
}

/// A counter's kind.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CounterKind {
    /// An increase (the default).
    Incremental,
    /// A running total.
    Absolute,
}

/// One entry, parsed.
struct Rule {
    kind: MetricType,
    field: String,
    name: Template,
    namespace: Option<Template>,
    tags: Vec<(String, Template)>,
    increment_by_value: bool,
    absolute: bool,
}

impl LogToMetricConfig {
    fn rules(&self) -> Result<Vec<Rule>, FieldIssue> {
        let template = |key: String, t: &str| {
            Template::parse(t).map_err(|e| FieldIssue::new(key, e.to_string()))
        };
        self.metrics
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let at = |k: &str| format!("metrics[{i}].{k}");
                Ok(Rule {
                    kind: m.metric_type,
                    field: m.field.clone(),
                    name: template(at("name"), m.name.as_deref().unwrap_or(&m.field))?,
                    namespace: m
                        .namespace
                        .as_deref()
                        .map(|n| template(at("namespace"), n))
                        .transpose()?,
                    tags: m
                        .tags
                        .iter()
                        .map(|(k, v)| Ok((k.clone(), template(at(&format!("tags.{k}")), v)?)))
                        .collect::<Result<_, FieldIssue>>()?,
                    increment_by_value: m.increment_by_value,
                    absolute: m.kind == Some(CounterKind::Absolute),
                })
            })
            .collect()
    }
}

impl TransformConfig for LogToMetricConfig {
    fn concurrent(&self) -> bool {
        true
    }

    fn validate(&self) -> Vec<FieldIssue> {
        let mut issues: Vec<FieldIssue> = self.rules().err().into_iter().collect();
        if self.metrics.is_empty() && !self.all_metrics {
            issues.push(FieldIssue::new("metrics", "needs at least one metric"));
        }
        issues
    }

    fn build(&self, cx: TransformContext) -> Result<Box<dyn Transform>, BuildError> {
        Ok(Box::new(LogToMetric {
            rules: self.rules().map_err(|e| BuildError::Other(e.message))?,
            all_metrics: self.all_metrics,
            shape_invalid: cx.metrics.reporter(),
            unusable: cx.metrics.reporter(),
            scratch: String::new(),
            metrics: cx.metrics,
        }))
    }
}

struct LogToMetric {
    rules: Vec<Rule>,
    all_metrics: bool,
    shape_invalid: Reporter<MetricShapeInvalid>,
    unusable: Reporter<FieldUnusable>,
    scratch: String,
    metrics: ComponentMetrics,
}

/// A field's number: integers, floats, and text that parses as one.
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Float(f) => Some(f.into_inner()),
        Value::Bytes(_) | Value::String(_) => v.to_str_lossy()?.trim().parse().ok(),
        _ => None,
    }
}

impl LogToMetric {
    /// The metric `rule` makes of `log`, or why it makes none.
    fn metric(&mut self, rule: &Rule, log: &LogEvent, event: &Event) -> Result<Metric, String> {
        let field = log
            .get_path(&rule.field)
            .ok_or_else(|| format!("the event has no field `{}`", rule.field))?;
        let numeric = || {
            number(field).ok_or_else(|| {
                format!(
                    "field `{}` is not a number: {}",
                    rule.field,
                    field.to_string_lossy()
                )
            })
        };
        let (kind, value) = match rule.kind {
            MetricType::Counter => {
                let v = if rule.increment_by_value {
                    numeric()?
                } else {
                    1.0
                };
                let kind = if rule.absolute {
                    MetricKind::Absolute
                } else {
                    MetricKind::Incremental
                };
                (kind, MetricValue::Counter(v))
            }
            MetricType::Gauge => (MetricKind::Absolute, MetricValue::Gauge(numeric()?)),
            MetricType::Histogram | MetricType::Summary => (
                MetricKind::Incremental,
                MetricValue::Distribution {
                    samples: vec![Sample {
                        value: numeric()?,
                        rate: 1,
                    }],
                    statistic: if rule.kind == MetricType::Histogram {
                        StatisticKind::Histogram
                    } else {
                        StatisticKind::Summary
                    },
                },
            ),
            MetricType::Set => (
                MetricKind::Incremental,
                MetricValue::Set([field.to_string_lossy().into_owned()].into()),
            ),
        };
        let time = Template::event_time(event);
        self.scratch.clear();
        rule.name
            .render(event, time, &mut self.scratch)
            .map_err(|e| format!("name: {e}"))?;
        let mut m = Metric::new(self.scratch.clone(), kind, value, log.metadata.clone());
        if let Some(ns) = &rule.namespace {
            self.scratch.clear();
            ns.render(event, time, &mut self.scratch)
                .map_err(|e| format!("namespace: {e}"))?;
            m.namespace = Some(self.scratch.clone());
        }
        for (k, t) in &rule.tags {
            self.scratch.clear();
            // A tag whose field is missing is left out, as in Vector.
            if t.render(event, time, &mut self.scratch).is_ok() {
                m.tags.insert(k.clone(), self.scratch.clone());
            }
        }
        m.timestamp = Some(time);
        Ok(m)
    }
}

impl Transform for LogToMetric {
    fn transform(&mut self, input: Batch, output: &mut TransformOutput) {
        let rules = std::mem::take(&mut self.rules);
        for event in input {
            let Event::Log(log) = &event else {
                // Metric events pass through: they are metrics already.
                output.push(event);
                continue;
            };
            if self.all_metrics {
                match shaped::metric(log, Template::event_time(&event)) {
                    Ok(m) => output.push(m.into()),
                    Err(why) => self.shape_invalid.emit_dropped(1, || {
                        format!(
                            "A log event is not a metric in Vector's shape; it is dropped: {why}"
                        )
                    }),
                }
                continue;
            }
            let mut made = 0;
            for rule in &rules {
                match self.metric(rule, log, &event) {
                    Ok(m) => {
                        output.push(m.into());
                        made += 1;
                    }
                    Err(why) => self
                        .unusable
                        .emit(|| format!("A log event made no metric for `{}`: {why}", rule.field)),
                }
            }
            if made == 0 {
                // Consumed without a metric: nothing came of it, by the rules' design.
                self.metrics.discarded_intentional.increment(1);
            }
        }
        self.rules = rules;
    }
}
