//! Metric events. No source in the core emits them yet; they exist so log-to-metric,
//! internal metrics and the InfluxDB sink share one model from the start.

use super::EventMetadata;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// How a sample relates to earlier ones, which decides how sinks aggregate it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// A change since the last sample (counter increments).
    Incremental,
    /// The current value (gauge readings, counter totals).
    Absolute,
}

/// The value of a metric sample.
#[derive(Clone, Debug, PartialEq)]
pub enum MetricValue {
    /// A monotonic count.
    Counter(f64),
    /// A point-in-time reading.
    Gauge(f64),
    /// Raw observations with their sample rates, to be bucketed by the sink.
    Distribution(Vec<(f64, u32)>),
}

/// One metric sample with its series identity.
#[derive(Clone, Debug)]
pub struct Metric {
    /// The series name.
    pub name: String,
    /// Tags that, with the name, identify the series.
    pub tags: BTreeMap<String, String>,
    /// Incremental or absolute.
    pub kind: MetricKind,
    /// The sample.
    pub value: MetricValue,
    /// When it was observed; sinks use now when absent.
    pub timestamp: Option<DateTime<Utc>>,
    /// Source, ingest time, finalizers.
    pub metadata: EventMetadata,
}
