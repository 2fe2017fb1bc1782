//! Metric events in Vector's model, so log_to_metric, aggregate, internal_metrics and
//! the InfluxDB sink share one shape and a Vector user's metric pipeline means the same
//! here: a series (namespace, name, tags), a kind (incremental or absolute), a value of
//! one of six types, and an optional timestamp and interval.

use super::EventMetadata;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};

/// How a sample relates to earlier ones, which decides how sinks aggregate it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// A change since the last sample (counter increments).
    Incremental,
    /// The current value (gauge readings, counter totals).
    Absolute,
}

/// Whether a distribution's samples become histogram buckets or summary quantiles
/// downstream (Vector's `statistic`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StatisticKind {
    /// Buckets.
    #[default]
    Histogram,
    /// Quantiles.
    Summary,
}

/// One raw observation of a distribution, standing for `rate` observations.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// The observed value.
    pub value: f64,
    /// How many observations it stands for (sampling).
    pub rate: u32,
}

/// One bucket of an aggregated histogram: observations at most `upper_limit`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    /// Inclusive upper bound.
    pub upper_limit: f64,
    /// Observations in this bucket (not cumulative, as in Vector).
    pub count: u64,
}

/// One quantile of an aggregated summary.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quantile {
    /// Between 0 and 1.
    pub quantile: f64,
    /// The value at that quantile.
    pub value: f64,
}

/// The value of a metric sample: Vector's six metric types.
#[derive(Clone, Debug, PartialEq)]
pub enum MetricValue {
    /// A monotonic count.
    Counter(f64),
    /// A point-in-time reading.
    Gauge(f64),
    /// Distinct values seen (unique users, hosts).
    Set(BTreeSet<String>),
    /// Raw observations, to be bucketed or summarised by a sink.
    Distribution {
        /// The observations.
        samples: Vec<Sample>,
        /// Histogram or summary downstream.
        statistic: StatisticKind,
    },
    /// Observations already counted into buckets.
    AggregatedHistogram {
        /// The buckets, by ascending upper limit.
        buckets: Vec<Bucket>,
        /// All observations.
        count: u64,
        /// Their sum.
        sum: f64,
    },
    /// Observations already reduced to quantiles.
    AggregatedSummary {
        /// The quantiles.
        quantiles: Vec<Quantile>,
        /// All observations.
        count: u64,
        /// Their sum.
        sum: f64,
    },
}

impl MetricValue {
    /// Vector's name for the type, the key its JSON shape uses.
    pub fn type_name(&self) -> &'static str {
        match self {
            MetricValue::Counter(_) => "counter",
            MetricValue::Gauge(_) => "gauge",
            MetricValue::Set(_) => "set",
            MetricValue::Distribution { .. } => "distribution",
            MetricValue::AggregatedHistogram { .. } => "aggregated_histogram",
            MetricValue::AggregatedSummary { .. } => "aggregated_summary",
        }
    }
}

/// One metric sample with its series identity.
#[derive(Clone, Debug)]
pub struct Metric {
    /// The series name.
    pub name: String,
    /// Prefix of the name in sinks that join them (`sluice` for internal metrics).
    pub namespace: Option<String>,
    /// Tags that, with the name, identify the series.
    pub tags: BTreeMap<String, String>,
    /// Incremental or absolute.
    pub kind: MetricKind,
    /// The sample.
    pub value: MetricValue,
    /// When it was observed; sinks use now when absent.
    pub timestamp: Option<DateTime<Utc>>,
    /// The time span an incremental value covers, when known.
    pub interval_ms: Option<u32>,
    /// Source, ingest time, finalizers.
    pub metadata: EventMetadata,
}

impl Metric {
    /// A sample of `name` with no namespace, tags, timestamp or interval.
    pub fn new(
        name: impl Into<String>,
        kind: MetricKind,
        value: MetricValue,
        metadata: EventMetadata,
    ) -> Self {
        Self {
            name: name.into(),
            namespace: None,
            tags: BTreeMap::new(),
            kind,
            value,
            timestamp: None,
            interval_ms: None,
            metadata,
        }
    }
}
