//! `aggregate` transform: folds the metric events of each series (name, namespace,
//! tags, kind) over `interval_ms` into one, as Vector's `Auto` mode does: incremental
//! values add up (counters and gauge changes sum, sets unite, distributions gather their
//! samples, histograms with the same buckets add), absolute values keep the latest.
//! What it holds goes out at each interval and at shutdown. Each metric folded into
//! another is an intentional discard, so received = sent + discarded; the finalizers of
//! folded metrics travel with the one that goes out. Log events pass through.

use crate::config::field::FieldIssue;
use crate::event::{Batch, Event, Metric, MetricKind, MetricValue};
use crate::internal_events::ComponentMetrics;
use crate::topology::component::{
    BuildError, Transform, TransformConfig, TransformContext, TransformOutput,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

/// `[transforms.ID] type = "aggregate"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateConfig {
    /// How long metrics are gathered before they go out. Default 10000, as in Vector.
    #[serde(default = "default_interval")]
    pub interval_ms: u64,
    /// Vector's aggregation function; `Auto` (the default) is built.
    #[serde(default = "default_mode")]
    pub mode: String,
}

fn default_interval() -> u64 {
    10_000
}

fn default_mode() -> String {
    "Auto".into()
}

impl TransformConfig for AggregateConfig {
    fn validate(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        if self.interval_ms == 0 {
            issues.push(FieldIssue::new("interval_ms", "must be at least 1"));
        }
        match self.mode.as_str() {
            "Auto" | "auto" => {}
            "Count" | "Diff" | "Latest" | "Max" | "Mean" | "Min" | "Stdev" | "Sum" => {
                issues.push(FieldIssue::new(
                    "mode",
                    format!("Vector's `mode = \"{}\"` is not supported by sluice yet: `Auto` sums incremental metrics and keeps the latest absolute value", self.mode),
                ))
            }
            other => issues.push(FieldIssue::new(
                "mode",
                format!("unknown value `{other}` (Vector's modes: Auto, Count, Diff, Latest, Max, Mean, Min, Stdev, Sum)"),
            )),
        }
        issues
    }

    fn build(&self, cx: TransformContext) -> Result<Box<dyn Transform>, BuildError> {
        Ok(Box::new(Aggregate {
            interval: Duration::from_millis(self.interval_ms.max(1)),
            due: None,
            series: BTreeMap::new(),
            metrics: cx.metrics,
        }))
    }
}

/// A series' identity.
type SeriesKey = (String, Option<String>, BTreeMap<String, String>, bool);

struct Aggregate {
    interval: Duration,
    /// When what is held goes out; none while nothing is held.
    due: Option<Instant>,
    series: BTreeMap<SeriesKey, Metric>,
    metrics: ComponentMetrics,
}

/// Folds `new` into `held` (same series); `false` when the values cannot be added and
/// `new` replaces `held` instead.
fn fold(held: &mut Metric, new: &Metric) -> bool {
    if new.kind == MetricKind::Absolute {
        return false;
    }
    match (&mut held.value, &new.value) {
        (MetricValue::Counter(a), MetricValue::Counter(b))
        | (MetricValue::Gauge(a), MetricValue::Gauge(b)) => *a += b,
        (MetricValue::Set(a), MetricValue::Set(b)) => a.extend(b.iter().cloned()),
        (
            MetricValue::Distribution {
                samples: a,
                statistic: sa,
            },
            MetricValue::Distribution {
                samples: b,
                statistic: sb,
            },
        ) if sa == sb => a.extend_from_slice(b),
        (
            MetricValue::AggregatedHistogram {
                buckets: a,
                count: ca,
                sum: sa,
            },
            MetricValue::AggregatedHistogram {
                buckets: b,
                count: cb,
                sum: sb,
            },
        ) if a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.upper_limit == y.upper_limit) => {
            for (x, y) in a.iter_mut().zip(b) {
                x.count += y.count;
            }
            *ca += cb;
            *sa += sb;
        }
        _ => return false,
    }
    if new.timestamp.is_some() {
        held.timestamp = new.timestamp;
    }
    true
}

impl Aggregate {
    fn take(&mut self, output: &mut TransformOutput) {
        for (_, m) in std::mem::take(&mut self.series) {
            output.push(m.into());
        }
        self.due = None;
    }
}

impl Transform for Aggregate {
    fn transform(&mut self, input: Batch, output: &mut TransformOutput) {
        let mut folded = 0u64;
        for event in input {
            let Event::Metric(m) = event else {
                output.push(event);
                continue;
            };
            let mut m = *m;
            let key: SeriesKey = (
                m.name.clone(),
                m.namespace.clone(),
                m.tags.clone(),
                m.kind == MetricKind::Absolute,
            );
            match self.series.get_mut(&key) {
                Some(held) => {
                    let waiting = std::mem::take(&mut m.metadata.finalizers);
                    if !fold(held, &m) {
                        // The new value stands; the old one's waiters go with it.
                        std::mem::swap(held, &mut m);
                        held.metadata
                            .finalizers
                            .merge(std::mem::take(&mut m.metadata.finalizers));
                    }
                    held.metadata.finalizers.merge(waiting);
                    folded += 1;
                }
                None => {
                    self.series.insert(key, m);
                }
            }
        }
        if !self.series.is_empty() && self.due.is_none() {
            self.due = Some(Instant::now() + self.interval);
        }
        if folded > 0 {
            self.metrics.discarded_intentional.increment(folded);
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.due
    }

    fn on_deadline(&mut self, output: &mut TransformOutput) {
        self.take(output);
    }

    fn flush(&mut self, output: &mut TransformOutput) {
        self.take(output);
    }
}
