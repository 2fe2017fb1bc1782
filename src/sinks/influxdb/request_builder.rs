//! Events to line-protocol points.
//!
//! - **A log event** is one point: the `measurement` template, the configured `tags`
//!   (fields written as tags; missing or empty ones left out) and every other field with
//!   its type (strings, `42i` integers, floats, booleans; objects flattened with `.`,
//!   arrays and timestamps as strings), at the event's `timestamp`.
//! - **A metric** is one point: measurement `namespace` (its own, else
//!   `default_namespace`) with the metric name as the field key, or, with no namespace,
//!   measurement `name` and field `value`; its tags as tags.
//!
//! Values the protocol cannot carry are changed and counted (see [`line_protocol`]); a
//! point left with no field cannot be written and is dropped and counted.

use super::line_protocol::{self as lp, Precision};
use super::service::WriteRequest;
use crate::event::MetricKind;
use crate::event::{Event, LogEvent, Metric, MetricValue, Value};
use crate::internal_events::failures::LineProtocolAltered;
use crate::internal_events::Reporter;
use crate::sinks::util::encoding::fields::{keep, FieldTree, Keep};
use crate::sinks::util::runner::{Built, RequestBuilder, Unsendable};
use crate::sinks::util::template::Template;
use bytes::Bytes;
use hyper::Uri;

/// See the module documentation.
pub struct InfluxDbRequestBuilder {
    /// The write URI with its query.
    pub uri: Uri,
    /// Breaker key and log name: the endpoint's authority.
    pub destination: String,
    /// For log events.
    pub measurement: Template,
    /// Field names written as tags, sorted (InfluxDB writes sorted tags fastest).
    pub tags: Vec<String>,
    /// For metrics without a namespace of their own.
    pub default_namespace: Option<String>,
    /// Of the timestamps.
    pub precision: Precision,
    /// Names and tag values that had to be changed.
    pub altered: Reporter<LineProtocolAltered>,
    /// Reused for the rendered measurement.
    scratch: String,
    /// Reused for flattened field keys.
    prefix: String,
    /// Partitions log points spread over (`request.concurrency`).
    pub lanes: usize,
    /// `encoding.only_fields` / `encoding.except_fields`: which log fields become fields.
    pub fields: [Option<FieldTree>; 2],
    /// Tags with a fixed value on every log point; their names are also in `tags`.
    static_tags: Vec<(String, String)>,
    /// How metrics become points.
    pub metric_layout: MetricLayout,
    /// Vector's layout: the last value of each absolute counter and each gauge, by
    /// series, to write counters as increases and gauges as levels.
    last: std::collections::HashMap<String, f64>,
}

/// How metrics become points.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum MetricLayout {
    /// Telegraf's: measurement `namespace`, the metric's name as the field; a series'
    /// metrics of one time on one line.
    #[default]
    Telegraf,
    /// Vector's `influxdb_metrics`: measurement `namespace.name`, fields `value`,
    /// `bucket_<le>`, `quantile_<q>`, `count`, `sum`, …, a `metric_type` tag; counters
    /// written as their increase since the last point.
    Vector {
        /// Tags added to every point.
        tags: Vec<(String, String)>,
        /// Quantiles computed for summary distributions.
        quantiles: Vec<f64>,
    },
}

impl InfluxDbRequestBuilder {
    /// A builder writing to `uri`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        uri: Uri,
        destination: String,
        measurement: Template,
        mut tags: Vec<String>,
        default_namespace: Option<String>,
        precision: Precision,
        altered: Reporter<LineProtocolAltered>,
    ) -> Self {
        tags.sort();
        tags.dedup();
        Self {
            uri,
            destination,
            measurement,
            tags,
            default_namespace,
            precision,
            altered,
            scratch: String::new(),
            prefix: String::new(),
            lanes: 1,
            fields: [None, None],
            static_tags: Vec::new(),
            metric_layout: MetricLayout::Telegraf,
            last: std::collections::HashMap::new(),
        }
    }

    /// Adds tags with a fixed value to every log point (kept in `tags`' sorted order).
    pub fn set_static_tags(&mut self, tags: &[(String, String)]) {
        for (k, _) in tags {
            if let Err(i) = self.tags.binary_search(k) {
                self.tags.insert(i, k.clone());
            }
        }
        self.static_tags = tags.to_vec();
    }

    fn log(
        &mut self,
        log: &LogEvent,
        event: &Event,
        out: &mut Vec<u8>,
    ) -> Result<bool, Unsendable> {
        let time = Template::event_time(event);
        let mut altered = if self.measurement.is_static() {
            lp::measurement(out, self.measurement.as_str())
        } else {
            self.scratch.clear();
            self.measurement
                .render(event, time, &mut self.scratch)
                .map_err(|e| Unsendable::new("template", format!("measurement: {e}")))?;
            lp::measurement(out, &self.scratch)
        };
        for t in &self.tags {
            let fixed = self.static_tags.iter().find(|(k, _)| k == t);
            let text = match (fixed, log.get_path(t)) {
                (Some((_, v)), _) => std::borrow::Cow::Borrowed(v.as_str()),
                (None, Some(v)) => tag_text(v),
                (None, None) => continue,
            };
            if lp::is_empty_tag(&text) {
                continue;
            }
            out.push(b',');
            altered |= lp::key(out, t);
            out.push(b'=');
            altered |= lp::key(out, &text);
        }
        let mut first = true;
        let mut prefix = std::mem::take(&mut self.prefix);
        prefix.clear();
        let timestamp_key = crate::event::schema::log_schema().timestamp_key.as_str();
        let [only, except] = &self.fields;
        let (only, except) = (only.as_ref(), except.as_ref());
        for (k, v) in log.fields() {
            if k.as_str() == timestamp_key {
                continue;
            }
            if only.is_none() && except.is_none() {
                altered |= self.field(k.as_str(), v, &mut prefix, &mut first, out);
            } else {
                altered |= self.selected(k.as_str(), v, only, except, &mut prefix, &mut first, out);
            }
        }
        self.prefix = prefix;
        if first {
            return Err(Unsendable::new(
                "no_fields",
                "a log event with no field besides its tags and timestamp cannot be written",
            ));
        }
        lp::timestamp(out, nanos(time), self.precision);
        Ok(altered)
    }

    /// [`Self::field`] under `only_fields` / `except_fields`: what they leave out is
    /// not written, at any depth.
    #[allow(clippy::too_many_arguments)]
    fn selected(
        &self,
        key: &str,
        v: &Value,
        only: Option<&FieldTree>,
        except: Option<&FieldTree>,
        prefix: &mut String,
        first: &mut bool,
        out: &mut Vec<u8>,
    ) -> bool {
        let (only, except) = match keep(key, only, except) {
            Keep::Skip => return false,
            Keep::All => return self.field(key, v, prefix, first, out),
            Keep::Below(o, e) => (o, e),
        };
        let Value::Object(m) = v else {
            // A deeper `only` path names nothing in a value that is not an object; a
            // deeper `except` path leaves it whole.
            return only.is_none() && self.field(key, v, prefix, first, out);
        };
        let len = prefix.len();
        if !prefix.is_empty() {
            prefix.push('.');
        }
        prefix.push_str(key);
        let mut altered = false;
        for (k, inner) in m {
            altered |= self.selected(k.as_str(), inner, only, except, prefix, first, out);
        }
        prefix.truncate(len);
        altered
    }

    /// Writes one field (objects flattened under `prefix`); returns whether a key had to
    /// be changed.
    fn field(
        &self,
        key: &str,
        v: &Value,
        prefix: &mut String,
        first: &mut bool,
        out: &mut Vec<u8>,
    ) -> bool {
        // Top-level leaves, nearly every field, need no flattened name.
        if prefix.is_empty() && !matches!(v, Value::Object(_)) {
            if self.tags.binary_search_by(|t| t.as_str().cmp(key)).is_ok() {
                return false;
            }
            return self.leaf(key, v, first, out);
        }
        let len = prefix.len();
        if !prefix.is_empty() {
            prefix.push('.');
        }
        prefix.push_str(key);
        let mut altered = false;
        if let Value::Object(m) = v {
            for (k, inner) in m {
                altered |= self.field(k.as_str(), inner, prefix, first, out);
            }
        } else {
            altered = self.leaf(prefix, v, first, out);
        }
        prefix.truncate(len);
        altered
    }

    /// Writes one field named `name`; returns whether the name had to be changed.
    fn leaf(&self, name: &str, v: &Value, first: &mut bool, out: &mut Vec<u8>) -> bool {
        let mark = out.len();
        out.push(if *first { b' ' } else { b',' });
        let altered = lp::key(out, name);
        out.push(b'=');
        let written = match v {
            Value::Bytes(b) => {
                lp::string(out, &String::from_utf8_lossy(b));
                true
            }
            Value::String(s) => {
                lp::string(out, s);
                true
            }
            Value::Integer(i) => {
                lp::integer(out, *i);
                true
            }
            Value::Float(f) => lp::float(out, f.into_inner()),
            Value::Boolean(b) => {
                lp::boolean(out, *b);
                true
            }
            Value::Timestamp(t) => {
                lp::string(out, &t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
                true
            }
            Value::Null => false,
            other => {
                // Arrays (and anything else) as their JSON text.
                let mut json = Vec::new();
                crate::sinks::util::encoding::encode_json_value(other, &mut json);
                lp::string(out, &String::from_utf8_lossy(&json));
                true
            }
        };
        if written {
            *first = false;
        } else {
            out.truncate(mark);
        }
        altered
    }

    /// A metric in Vector's `influxdb_metrics` layout. An absolute counter's first value
    /// only sets the baseline (nothing is written, as in Vector).
    fn vector_metric(&mut self, m: &Metric, out: &mut Vec<u8>) -> Result<bool, Unsendable> {
        let MetricLayout::Vector { tags, quantiles } = &self.metric_layout else {
            return Ok(false);
        };
        let name = match m.namespace.as_deref().or(self.default_namespace.as_deref()) {
            Some(ns) => format!("{ns}.{}", m.name),
            None => m.name.clone(),
        };
        let metric_type = match &m.value {
            MetricValue::Counter(_) => "counter",
            MetricValue::Gauge(_) => "gauge",
            MetricValue::Set(_) => "set",
            MetricValue::Distribution { .. } => "distribution",
            MetricValue::AggregatedHistogram { .. } => "histogram",
            MetricValue::AggregatedSummary { .. } => "summary",
        };
        let mut all: Vec<(&str, &str)> = m
            .tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .filter(|(k, _)| *k != "metric_type")
            .chain([("metric_type", metric_type)])
            .collect();
        all.sort();
        all.dedup_by(|a, b| a.0 == b.0);
        let series = || {
            let mut key = name.clone();
            for (k, v) in &all {
                key.push(',');
                key.push_str(k);
                key.push('=');
                key.push_str(v);
            }
            key
        };
        let mut fields: Vec<(String, FieldValue)> = Vec::new();
        match &m.value {
            MetricValue::Counter(v) => {
                let v = match m.kind {
                    MetricKind::Incremental => *v,
                    MetricKind::Absolute => match self.last.insert(series(), *v) {
                        None => return Ok(false),
                        // A counter that went down was reset: all of it is new.
                        Some(prev) if *v >= prev => *v - prev,
                        Some(_) => *v,
                    },
                };
                fields.push(("value".into(), FieldValue::Float(v)));
            }
            MetricValue::Gauge(v) => {
                let v = match m.kind {
                    MetricKind::Absolute => {
                        self.last.insert(series(), *v);
                        *v
                    }
                    MetricKind::Incremental => {
                        let level = self.last.entry(series()).or_insert(0.0);
                        *level += *v;
                        *level
                    }
                };
                fields.push(("value".into(), FieldValue::Float(v)));
            }
            MetricValue::Set(values) => {
                fields.push(("value".into(), FieldValue::Float(values.len() as f64)))
            }
            MetricValue::AggregatedHistogram {
                buckets,
                count,
                sum,
            } => {
                for b in buckets {
                    let mut le = ryu::Buffer::new();
                    fields.push((
                        format!("bucket_{}", le.format(b.upper_limit)),
                        FieldValue::Int(b.count as i64),
                    ));
                }
                fields.push(("count".into(), FieldValue::Int(*count as i64)));
                fields.push(("sum".into(), FieldValue::Float(*sum)));
            }
            MetricValue::AggregatedSummary {
                quantiles: qs,
                count,
                sum,
            } => {
                for q in qs {
                    let mut p = ryu::Buffer::new();
                    fields.push((
                        format!("quantile_{}", p.format(q.quantile)),
                        FieldValue::Float(q.value),
                    ));
                }
                fields.push(("count".into(), FieldValue::Int(*count as i64)));
                fields.push(("sum".into(), FieldValue::Float(*sum)));
            }
            MetricValue::Distribution { samples, statistic } => {
                let qs: &[f64] = match statistic {
                    crate::event::StatisticKind::Histogram => &[0.95],
                    crate::event::StatisticKind::Summary => quantiles,
                };
                let Some(s) = distribution_statistic(samples, qs) else {
                    return Ok(false);
                };
                for (k, v) in [
                    ("min", s.min),
                    ("max", s.max),
                    ("median", s.median),
                    ("avg", s.avg),
                    ("sum", s.sum),
                    ("count", s.count as f64),
                ] {
                    fields.push((k.into(), FieldValue::Float(v)));
                }
                for (q, v) in s.quantiles {
                    fields.push((format!("quantile_{q:.2}"), FieldValue::Float(v)));
                }
            }
        }
        let mut altered = lp::measurement(out, &name);
        for (k, v) in &all {
            if lp::is_empty_tag(v) {
                continue;
            }
            out.push(b',');
            altered |= lp::key(out, k);
            out.push(b'=');
            altered |= lp::key(out, v);
        }
        let mut first = true;
        for (k, v) in &fields {
            let mark = out.len();
            out.push(if first { b' ' } else { b',' });
            altered |= lp::key(out, k);
            out.push(b'=');
            let written = match v {
                FieldValue::Float(f) => lp::float(out, *f),
                FieldValue::Int(i) => {
                    lp::integer(out, *i);
                    true
                }
            };
            if written {
                first = false;
            } else {
                out.truncate(mark);
            }
        }
        self.end_metric(m, !first, out)?;
        Ok(altered)
    }

    fn metric(&self, m: &Metric, out: &mut Vec<u8>) -> Result<bool, Unsendable> {
        let namespace = m.namespace.as_deref().or(self.default_namespace.as_deref());
        let (measurement, field) = match namespace {
            Some(ns) => (ns, m.name.as_str()),
            None => (m.name.as_str(), "value"),
        };
        let mut altered = lp::measurement(out, measurement);
        for (k, v) in &m.tags {
            if lp::is_empty_tag(v) {
                continue;
            }
            out.push(b',');
            altered |= lp::key(out, k);
            out.push(b'=');
            altered |= lp::key(out, v);
        }
        out.push(b' ');
        // Field keys are written in parts (`name`, `_bucket_`, `0.5`): no string is built
        // per metric.
        let mut put = |out: &mut Vec<u8>, suffix: &[&str], write: &dyn Fn(&mut Vec<u8>) -> bool| {
            let mark = out.len();
            if out.last() != Some(&b' ') {
                out.push(b',');
            }
            altered |= match suffix {
                [] => lp::key(out, field),
                [a] => lp::key_parts(out, &[field, a]),
                [a, b, ..] => lp::key_parts(out, &[field, a, b]),
            };
            out.push(b'=');
            if !write(out) {
                out.truncate(mark);
            }
        };
        match &m.value {
            MetricValue::Counter(v) | MetricValue::Gauge(v) => put(out, &[], &|o| lp::float(o, *v)),
            MetricValue::Set(values) => put(out, &[], &|o| {
                lp::integer(o, values.len() as i64);
                true
            }),
            MetricValue::Distribution { samples, .. } => {
                let count: u64 = samples.iter().map(|s| u64::from(s.rate)).sum();
                let sum: f64 = samples.iter().map(|s| s.value * f64::from(s.rate)).sum();
                put(out, &["_count"], &|o| {
                    lp::integer(o, count as i64);
                    true
                });
                put(out, &["_sum"], &|o| lp::float(o, sum));
            }
            MetricValue::AggregatedHistogram {
                buckets,
                count,
                sum,
            } => {
                // Cumulative per `le`, as Prometheus and Telegraf write them.
                let mut running = 0u64;
                for b in buckets {
                    running += b.count;
                    let mut le = ryu::Buffer::new();
                    let n = running;
                    put(out, &["_bucket_", le.format(b.upper_limit)], &|o| {
                        lp::integer(o, n as i64);
                        true
                    });
                }
                put(out, &["_count"], &|o| {
                    lp::integer(o, *count as i64);
                    true
                });
                put(out, &["_sum"], &|o| lp::float(o, *sum));
            }
            MetricValue::AggregatedSummary {
                quantiles,
                count,
                sum,
            } => {
                for q in quantiles {
                    let mut pct = ryu::Buffer::new();
                    let pct = pct.format(q.quantile * 100.0).trim_end_matches(".0");
                    put(out, &["_p", pct], &|o| lp::float(o, q.value));
                }
                put(out, &["_count"], &|o| {
                    lp::integer(o, *count as i64);
                    true
                });
                put(out, &["_sum"], &|o| lp::float(o, *sum));
            }
        }
        self.end_metric(m, out.last() != Some(&b' '), out)?;
        Ok(altered)
    }

    /// Ends a metric's point with its time, or refuses it when no field could be
    /// written.
    fn end_metric(
        &self,
        m: &Metric,
        has_fields: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), Unsendable> {
        if !has_fields {
            return Err(Unsendable::new(
                "no_fields",
                "a metric whose value cannot be written (NaN or infinite)",
            ));
        }
        lp::timestamp(
            out,
            nanos(m.timestamp.unwrap_or(m.metadata.ingest_time)),
            self.precision,
        );
        Ok(())
    }
}

fn nanos(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// A field value as tag text, borrowed when it is text already.
fn tag_text(v: &Value) -> std::borrow::Cow<'_, str> {
    match v {
        Value::Bytes(b) => String::from_utf8_lossy(b),
        Value::String(s) => std::borrow::Cow::Borrowed(s),
        Value::Null => std::borrow::Cow::Borrowed(""),
        other => other.to_string_lossy(),
    }
}

/// The partition of metric events: their lines are merged per series and time.
const METRICS: &str = "metrics";

/// Splits `series fields timestamp` at the unescaped spaces (metric lines carry no string
/// fields, so no quotes).
fn split_point(line: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let mut spaces = Vec::with_capacity(2);
    let mut i = 0;
    while i < line.len() {
        match line[i] {
            b'\\' => i += 1,
            b' ' => spaces.push(i),
            _ => {}
        }
        i += 1;
    }
    let (&first, &last) = (spaces.first()?, spaces.last()?);
    (first != last).then(|| (&line[..first], &line[first + 1..last], &line[last + 1..]))
}

/// A field value of Vector's metric layout.
enum FieldValue {
    Float(f64),
    Int(i64),
}

/// Vector's summary of a distribution: min, max, median, mean, sum, count and the
/// asked quantiles, by nearest rank over the samples weighted by their rates.
struct DistributionStatistic {
    min: f64,
    max: f64,
    median: f64,
    avg: f64,
    sum: f64,
    count: u64,
    quantiles: Vec<(f64, f64)>,
}

fn distribution_statistic(
    samples: &[crate::event::Sample],
    quantiles: &[f64],
) -> Option<DistributionStatistic> {
    let mut bins: Vec<(f64, u64)> = samples
        .iter()
        .filter(|s| s.rate > 0)
        .map(|s| (s.value, u64::from(s.rate)))
        .collect();
    if bins.is_empty() {
        return None;
    }
    bins.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let sum: f64 = bins.iter().map(|(v, r)| v * *r as f64).sum();
    for i in 1..bins.len() {
        bins[i].1 += bins[i - 1].1;
    }
    let count = bins.last().map_or(0, |b| b.1);
    // The i-th smallest value (1-based; 0 means the smallest).
    let rank = |p: f64| {
        let i = (p * count as f64).round() as u64;
        let idx = bins.partition_point(|b| b.1 < i).min(bins.len() - 1);
        bins[idx].0
    };
    Some(DistributionStatistic {
        min: bins[0].0,
        max: bins[bins.len() - 1].0,
        median: rank(0.5),
        avg: sum / count as f64,
        sum,
        count,
        quantiles: quantiles.iter().map(|&q| (q, rank(q))).collect(),
    })
}

/// Merges metric lines of one series (measurement and tags) and timestamp into one line
/// with all their fields, first-seen order kept: Telegraf's layout, far fewer points.
pub fn merge_series(body: &[u8]) -> Vec<u8> {
    let mut order: Vec<(&[u8], Vec<u8>, &[u8])> = Vec::new();
    let mut index: std::collections::HashMap<(&[u8], &[u8]), usize> = Default::default();
    let mut unsplit: Vec<&[u8]> = Vec::new();
    for line in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let Some((series, fields, ts)) = split_point(line) else {
            unsplit.push(line);
            continue;
        };
        match index.get(&(series, ts)) {
            Some(&i) => {
                order[i].1.push(b',');
                order[i].1.extend_from_slice(fields);
            }
            None => {
                index.insert((series, ts), order.len());
                order.push((series, fields.to_vec(), ts));
            }
        }
    }
    let mut out = Vec::with_capacity(body.len());
    for (series, fields, ts) in order {
        out.extend_from_slice(series);
        out.push(b' ');
        out.extend_from_slice(&fields);
        out.push(b' ');
        out.extend_from_slice(ts);
        out.push(b'\n');
    }
    for line in unsplit {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out
}

impl RequestBuilder for InfluxDbRequestBuilder {
    type Request = WriteRequest;

    fn partition(&mut self, event: &Event, key: &mut String) -> Result<(), Unsendable> {
        match event {
            Event::Metric(_) => key.push_str(METRICS),
            // Log points spread over `request.concurrency` partitions by their tags, so
            // writes go out in parallel while one series' points keep their order.
            Event::Log(l) if self.lanes > 1 => {
                use std::hash::{Hash, Hasher};
                let mut h = std::collections::hash_map::DefaultHasher::new();
                for t in &self.tags {
                    if let Some(v) = l.get_path(t) {
                        tag_text(v).hash(&mut h);
                    }
                }
                let lane = h.finish() % self.lanes as u64;
                key.push_str(itoa::Buffer::new().format(lane));
            }
            Event::Log(_) => {}
        }
        Ok(())
    }

    fn finish(&mut self, partition: &str, body: Vec<u8>) -> Vec<u8> {
        if partition == METRICS {
            merge_series(&body)
        } else {
            body
        }
    }

    fn encode(&mut self, event: &Event, out: &mut Vec<u8>) -> Result<(), Unsendable> {
        let altered = match event {
            Event::Log(l) => self.log(l, event, out)?,
            Event::Metric(m) => match &self.metric_layout {
                MetricLayout::Telegraf => self.metric(m, out)?,
                MetricLayout::Vector { .. } => self.vector_metric(m, out)?,
            },
        };
        if altered {
            self.altered.emit(|| {
                "A name or tag value the line protocol cannot carry was changed: trailing backslashes dropped, control characters made spaces".to_string()
            });
        }
        Ok(())
    }

    fn build(
        &mut self,
        partition: &str,
        body: Bytes,
        points: usize,
    ) -> Result<Built<WriteRequest>, Unsendable> {
        Ok(Built {
            request: WriteRequest {
                uri: self.uri.clone(),
                body,
                points,
                // Metric points are merged by series; a log event is one point.
                point_per_event: partition != METRICS,
            },
            destination: self.destination.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::merge_series;

    #[test]
    fn tags_are_not_also_fields_and_a_tags_only_event_is_refused() {
        use super::*;
        use crate::event::{EventMetadata, ObjectMap};
        use crate::internal_events::{ComponentKind, ComponentLabels, ComponentMetrics};
        let m = ComponentMetrics::new(ComponentLabels {
            id: "lp-unit".into(),
            kind: ComponentKind::Sink,
            type_name: "influxdb",
        });
        let mut b = InfluxDbRequestBuilder::new(
            "http://h/write?db=x".parse().unwrap(),
            "h".into(),
            Template::parse("logs").unwrap(),
            vec!["host".into(), "app".into()],
            None,
            Precision::S,
            m.reporter(),
        );
        let event = |pairs: &[(&str, &str)]| -> Event {
            let mut f = ObjectMap::new();
            for (k, v) in pairs {
                f.insert((*k).into(), Value::from(*v));
            }
            f.insert(
                "timestamp".into(),
                Value::Timestamp(chrono::DateTime::from_timestamp(100, 0).unwrap()),
            );
            LogEvent::from_parts(f, EventMetadata::new("t", chrono::Utc::now())).into()
        };
        let mut out = Vec::new();
        b.encode(
            &event(&[("host", "a"), ("app", "b"), ("msg", "hi")]),
            &mut out,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "logs,app=b,host=a msg=\"hi\" 100"
        );
        let mut out = Vec::new();
        let err = b
            .encode(&event(&[("host", "a"), ("app", "b")]), &mut out)
            .unwrap_err();
        assert_eq!(err.error_type, "no_fields");

        // encoding.only_fields / except_fields, nested objects included.
        let mut nested = ObjectMap::new();
        nested.insert("a".into(), Value::from(1));
        nested.insert("b".into(), Value::from(2));
        let mut f = ObjectMap::new();
        f.insert("host".into(), Value::from("h"));
        f.insert("msg".into(), Value::from("hi"));
        f.insert("drop".into(), Value::from("x"));
        f.insert("n".into(), Value::Object(nested));
        f.insert(
            "timestamp".into(),
            Value::Timestamp(chrono::DateTime::from_timestamp(100, 0).unwrap()),
        );
        let e: Event = LogEvent::from_parts(f, EventMetadata::new("t", chrono::Utc::now())).into();
        let tree = |p: &[&str]| {
            Some(
                crate::sinks::util::encoding::FieldTree::parse(
                    &p.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                )
                .unwrap(),
            )
        };
        b.fields = [tree(&["msg", "n.b"]), None];
        let mut out = Vec::new();
        b.encode(&e, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "logs,host=h msg=\"hi\",n.b=2i 100"
        );
        b.fields = [None, tree(&["drop", "n.a"])];
        let mut out = Vec::new();
        b.encode(&e, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "logs,host=h msg=\"hi\",n.b=2i 100"
        );
    }

    #[test]
    fn metrics_of_one_series_and_time_become_one_line() {
        let body = b"sluice,id=a received=1.0 10\nsluice,id=a sent=2.0 10\nsluice,id=b received=5.0 10\nsluice,id=a received=3.0 20\nsluice,id=a\\ x sent=1.0 10\n";
        assert_eq!(
            String::from_utf8(merge_series(body)).unwrap(),
            "sluice,id=a received=1.0,sent=2.0 10\nsluice,id=b received=5.0 10\nsluice,id=a received=3.0 20\nsluice,id=a\\ x sent=1.0 10\n"
        );
    }
}
