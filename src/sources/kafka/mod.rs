//! `kafka` source: the aggregator end of agent → Kafka → aggregator. A consumer in a
//! group (librdkafka, as Vector) reads its assigned partitions on a thread of its own;
//! each message becomes an event (or several, for a JSON array), and an offset is
//! committed only once the events before it are delivered end to end, per partition
//! and in order ([`offsets`]). On a rebalance, what is delivered is committed before
//! the partitions are given up and nothing undelivered is; on SIGTERM, events in
//! flight drain and their offsets are committed before exit.

pub mod offsets;

use crate::config::field::FieldIssue;
use crate::event::{schema::log_schema, EventMetadata, LogEvent, ObjectMap, Value};
use crate::internal_events::{names, ComponentMetrics, ErrorReporter};
use crate::kafka::{
    KafkaClientContext, KafkaConnection, KafkaSaslConfig, KafkaTlsConfig, StatsSink,
};
use crate::sources::util::decoding::{
    frames_of, Codec, DecodingConfig, FrameDecoder, FramingConfig, Split,
};
use crate::topology::component::{BuildError, SourceConfig, SourceContext, Task};
use bytes::Bytes;
use chrono::{TimeZone, Utc};
use offsets::{Offsets, Partition};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaResult;
use rdkafka::message::{Headers, Message};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::ClientContext;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `[sources.ID] type = "kafka"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSourceConfig {
    /// `host:port` of one or more brokers, comma-separated.
    pub bootstrap_servers: String,
    /// The consumer group: sluice instances with one `group_id` share the partitions.
    pub group_id: String,
    /// Topic names, or regular expressions starting with `^`.
    pub topics: Vec<String>,
    /// Where a group with no committed offset starts: `largest` (Vector's default:
    /// new messages only), `smallest`/`earliest`, `latest`, `error`.
    #[serde(default = "default_auto_offset_reset")]
    pub auto_offset_reset: String,
    /// `codec = "text"` (default; Vector's `bytes`), `json` or `syslog`.
    #[serde(default)]
    pub decoding: DecodingConfig,
    /// How a payload splits into frames before decoding (Vector's `framing`); the
    /// whole payload is one frame by default.
    pub framing: Option<FramingConfig>,
    /// Undo compression the producer applied to each payload itself:
    /// `algorithm = "gzip" | "zlib" | "zstd"` (Kafka's own batch compression is undone
    /// by the client without this).
    pub decompression: Option<Decompression>,
    /// `topic_lag_metric = false` turns `sluice_kafka_consumer_lag` off (sluice
    /// exports it by default; Vector only when asked).
    pub metrics: Option<SourceMetricsConfig>,
    /// The field for the message key. Default `message_key`; `""` leaves it out.
    #[serde(default = "default_key_field")]
    pub key_field: String,
    /// The field for the topic. Default `topic`.
    #[serde(default = "default_topic_key")]
    pub topic_key: String,
    /// The field for the partition. Default `partition`.
    #[serde(default = "default_partition_key")]
    pub partition_key: String,
    /// The field for the offset. Default `offset`.
    #[serde(default = "default_offset_key")]
    pub offset_key: String,
    /// The field for the headers (an object). Default `headers`.
    #[serde(default = "default_headers_key")]
    pub headers_key: String,
    /// How long the group waits for a silent member before giving its partitions to
    /// others. Default 10000.
    #[serde(default = "default_session_timeout_ms")]
    pub session_timeout_ms: u64,
    /// librdkafka's network timeout. Default 60000.
    #[serde(default = "default_socket_timeout_ms")]
    pub socket_timeout_ms: u64,
    /// Longest a fetch waits for data. Default 100.
    #[serde(default = "default_fetch_wait_max_ms")]
    pub fetch_wait_max_ms: u64,
    /// How often delivered offsets are committed. Default 5000.
    #[serde(default = "default_commit_interval_ms")]
    pub commit_interval_ms: u64,
    /// On a rebalance, how long events of the partitions being given up may take to
    /// be delivered before the partitions go anyway (what is undelivered is then read
    /// again by their next owner). Default: half of `session_timeout_ms`.
    pub drain_timeout_ms: Option<u64>,
    /// The client ID the brokers see. Default `sluice`.
    pub client_id: Option<String>,
    /// SASL: `enabled`, `mechanism`, `username`, `password`.
    pub sasl: Option<KafkaSaslConfig>,
    /// TLS: `enabled`, `ca_file`, `crt_file`, `key_file`, `key_pass`,
    /// `verify_certificate`, `verify_hostname`.
    pub tls: Option<KafkaTlsConfig>,
    /// Any librdkafka consumer property, set last.
    pub librdkafka_options: Option<BTreeMap<String, String>>,
    /// Vector's per-source `acknowledgements` (deprecated there): sluice always
    /// commits only what was delivered, so it is accepted and changes nothing.
    pub acknowledgements: Option<toml::Value>,
}

/// `decompression` of the `kafka` source.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Decompression {
    /// The algorithm the producer compressed payloads with.
    pub algorithm: DecompressionAlgorithm,
    /// Largest payload after decompression, in bytes; a larger one is kept as it
    /// arrived and counted. Default 100 MiB.
    pub max_bytes: Option<usize>,
}

/// `decompression.algorithm`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DecompressionAlgorithm {
    /// gzip.
    Gzip,
    /// zlib (deflate with a zlib header).
    Zlib,
    /// Zstandard.
    Zstd,
}

/// `metrics` of the `kafka` source.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SourceMetricsConfig {
    /// Export `sluice_kafka_consumer_lag` per topic and partition. Default true.
    pub topic_lag_metric: Option<bool>,
}

impl DecompressionAlgorithm {
    /// The payload decompressed, at most `limit` bytes.
    fn decompress(self, data: &[u8], limit: usize) -> Result<Vec<u8>, String> {
        use std::io::Read;
        let mut out = Vec::with_capacity(data.len() * 4);
        let read = match self {
            Self::Gzip => flate2::read::MultiGzDecoder::new(data)
                .take(limit as u64 + 1)
                .read_to_end(&mut out),
            Self::Zlib => flate2::read::ZlibDecoder::new(data)
                .take(limit as u64 + 1)
                .read_to_end(&mut out),
            Self::Zstd => zstd::stream::read::Decoder::new(data)
                .and_then(|d| d.take(limit as u64 + 1).read_to_end(&mut out)),
        };
        read.map_err(|e| e.to_string())?;
        if out.len() > limit {
            return Err(format!("larger than {limit} bytes decompressed"));
        }
        Ok(out)
    }
}

fn default_auto_offset_reset() -> String {
    "largest".into()
}
fn default_key_field() -> String {
    "message_key".into()
}
fn default_topic_key() -> String {
    "topic".into()
}
fn default_partition_key() -> String {
    "partition".into()
}
fn default_offset_key() -> String {
    "offset".into()
}
fn default_headers_key() -> String {
    "headers".into()
}
fn default_session_timeout_ms() -> u64 {
    10_000
}
fn default_socket_timeout_ms() -> u64 {
    60_000
}
fn default_fetch_wait_max_ms() -> u64 {
    100
}
fn default_commit_interval_ms() -> u64 {
    5_000
}

const OFFSET_RESETS: &[&str] = &[
    "smallest",
    "earliest",
    "beginning",
    "largest",
    "latest",
    "end",
    "error",
];

impl KafkaSourceConfig {
    fn connection(&self) -> KafkaConnection<'_> {
        KafkaConnection {
            bootstrap_servers: &self.bootstrap_servers,
            sasl: self.sasl.as_ref(),
            tls: self.tls.as_ref(),
            librdkafka_options: self.librdkafka_options.as_ref(),
        }
    }

    fn consumer_config(&self) -> rdkafka::ClientConfig {
        let defaults: Vec<(&str, String)> = vec![
            ("group.id", self.group_id.clone()),
            (
                "client.id",
                self.client_id.clone().unwrap_or_else(|| "sluice".into()),
            ),
            ("auto.offset.reset", self.auto_offset_reset.clone()),
            ("session.timeout.ms", self.session_timeout_ms.to_string()),
            ("socket.timeout.ms", self.socket_timeout_ms.to_string()),
            ("fetch.wait.max.ms", self.fetch_wait_max_ms.to_string()),
            // Offsets are stored by sluice once delivered, and committed from there.
            ("enable.auto.commit", "true".into()),
            (
                "auto.commit.interval.ms",
                self.commit_interval_ms.to_string(),
            ),
            ("enable.auto.offset.store", "false".into()),
            ("enable.partition.eof", "false".into()),
            ("statistics.interval.ms", "1000".into()),
        ];
        self.connection().client_config(&defaults)
    }
}

impl SourceConfig for KafkaSourceConfig {
    fn validate(&self) -> Vec<FieldIssue> {
        let mut issues = self.connection().issues();
        if self.group_id.trim().is_empty() {
            issues.push(FieldIssue::new("group_id", "is empty"));
        }
        if self.topics.is_empty() {
            issues.push(FieldIssue::new("topics", "names no topic"));
        }
        for t in self.topics.iter().filter(|t| t.starts_with('^')) {
            if let Err(e) = regex::Regex::new(t) {
                issues.push(FieldIssue::new(
                    "topics",
                    format!("`{t}` is not a regular expression: {e}"),
                ));
            }
        }
        if !OFFSET_RESETS.contains(&self.auto_offset_reset.as_str()) {
            issues.push(FieldIssue::new(
                "auto_offset_reset",
                format!(
                    "`{}` is not one of {}",
                    self.auto_offset_reset,
                    OFFSET_RESETS.join(", ")
                ),
            ));
        }
        if let Some(Err(e)) = self.framing.as_ref().map(FramingConfig::split) {
            issues.push(e);
        }
        if self.decoding.codec == Codec::Ndjson {
            issues.push(FieldIssue::new(
                "decoding.codec",
                "a Kafka message is one value: use `json` (an object, or an array of them)",
            ));
        }
        issues
    }

    fn build(&self, cx: SourceContext) -> Result<Task, BuildError> {
        let offsets = Arc::new(Mutex::new(Offsets::default()));
        let context = SourceKafkaContext {
            client: KafkaClientContext::new(
                cx.id.clone(),
                &cx.metrics,
                ConsumerStats {
                    metrics: cx.metrics.clone(),
                    lag: self
                        .metrics
                        .as_ref()
                        .and_then(|m| m.topic_lag_metric)
                        .unwrap_or(true),
                },
            ),
            offsets: offsets.clone(),
            drain_timeout: Duration::from_millis(
                self.drain_timeout_ms.unwrap_or(self.session_timeout_ms / 2),
            ),
            rebalances: cx.metrics.counter(names::KAFKA_REBALANCES),
            commits: cx.metrics.counter(names::KAFKA_COMMITS),
            commit_errors: cx.metrics.error_reporter("commit"),
            id: cx.id.clone(),
            revoked: Mutex::new(HashSet::new()),
            closing: std::sync::atomic::AtomicBool::new(false),
        };
        let consumer: BaseConsumer<SourceKafkaContext> = self
            .consumer_config()
            .create_with_context(context)
            .map_err(|e| BuildError::Other(format!("the Kafka consumer: {e}")))?;
        let topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|e| BuildError::Other(format!("subscribing to {topics:?}: {e}")))?;
        let fields = Fields {
            key: non_empty(&self.key_field),
            topic: non_empty(&self.topic_key),
            partition: non_empty(&self.partition_key),
            offset: non_empty(&self.offset_key),
            headers: non_empty(&self.headers_key),
        };
        let codec = self.decoding.codec;
        let payloads = Payloads {
            split: match self.framing.as_ref().map(FramingConfig::split) {
                Some(Ok(s)) => s,
                _ => Split::Whole,
            },
            decompression: self
                .decompression
                .as_ref()
                .map(|d| (d.algorithm, d.max_bytes.unwrap_or(100 << 20))),
        };
        let runtime = tokio::runtime::Handle::current();
        Ok(Box::pin(async move {
            let (done_tx, done_rx) = tokio::sync::oneshot::channel();
            let name = format!("kafka-{}", cx.id);
            let spawned = std::thread::Builder::new().name(name).spawn(move || {
                consume(consumer, offsets, fields, codec, payloads, cx, runtime);
                let _ = done_tx.send(());
            });
            match spawned {
                Ok(_) => {
                    let _ = done_rx.await;
                }
                Err(e) => tracing::error!(error = %e, "Could not start the Kafka consumer thread."),
            }
        }))
    }
}

fn non_empty(s: &str) -> Option<crate::event::KeyString> {
    (!s.is_empty()).then(|| s.into())
}

/// How a payload becomes frames.
struct Payloads {
    split: Split,
    decompression: Option<(DecompressionAlgorithm, usize)>,
}

/// The fields a message's facts go into.
struct Fields {
    key: Option<crate::event::KeyString>,
    topic: Option<crate::event::KeyString>,
    partition: Option<crate::event::KeyString>,
    offset: Option<crate::event::KeyString>,
    headers: Option<crate::event::KeyString>,
}

/// The consumer's context: rebalances drain and commit ([`Offsets`]), commits are
/// counted.
struct SourceKafkaContext {
    client: KafkaClientContext<ConsumerStats>,
    offsets: Arc<Mutex<Offsets>>,
    drain_timeout: Duration,
    rebalances: metrics::Counter,
    commits: metrics::Counter,
    commit_errors: ErrorReporter,
    id: Arc<str>,
    /// Partitions revoked since the consumer thread last looked.
    revoked: Mutex<HashSet<Partition>>,
    /// Set at shutdown once in-flight events were waited for: the revoke that leaving
    /// the group brings does not wait again (past `shutdown_timeout_secs`).
    closing: std::sync::atomic::AtomicBool,
}

/// Consumer lag per partition, from librdkafka's statistics.
struct ConsumerStats {
    metrics: ComponentMetrics,
    lag: bool,
}

impl StatsSink for ConsumerStats {
    fn record(&self, stats: &Statistics) {
        if !self.lag {
            return;
        }
        for (topic, t) in &stats.topics {
            for (p, part) in &t.partitions {
                // Before the group's first commit of a partition, the lag is measured
                // from what sluice has stored for commit.
                let lag = if part.consumer_lag >= 0 {
                    part.consumer_lag
                } else {
                    part.consumer_lag_stored
                };
                if *p < 0 || lag < 0 {
                    continue;
                }
                self.metrics
                    .gauge_with(
                        names::KAFKA_CONSUMER_LAG,
                        &[("topic", topic.clone()), ("partition", p.to_string())],
                    )
                    .set(lag as f64);
            }
        }
    }
}

impl ClientContext for SourceKafkaContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        self.client.log(level, fac, message);
    }
    fn stats(&self, statistics: Statistics) {
        self.client.stats(statistics);
    }
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        self.client.error(error, reason);
    }
}

impl SourceKafkaContext {
    /// The partitions revoked since the last call.
    fn take_revoked(&self) -> HashSet<Partition> {
        let mut r = match self.revoked.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        std::mem::take(&mut *r)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Offsets> {
        match self.offsets.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

impl ConsumerContext for SourceKafkaContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        self.rebalances.increment(1);
        let Rebalance::Revoke(tpl) = rebalance else {
            return;
        };
        let revoked: HashSet<Partition> = tpl
            .elements()
            .iter()
            .map(|e| (Arc::from(e.topic()), e.partition()))
            .collect();
        let mut offsets = self.lock();
        // What is on its way to the sinks may still be delivered: wait for it (within
        // the drain timeout), then commit everything delivered before giving up the
        // partitions. What stays undelivered is read again by their next owner.
        let wait = if self.closing.load(std::sync::atomic::Ordering::Acquire) {
            Duration::ZERO
        } else {
            self.drain_timeout
        };
        let drained = offsets.drain(Some(&revoked), Instant::now() + wait);
        if !drained {
            tracing::warn!(component_id = %self.id, partitions = revoked.len(), "Partitions are being revoked with events still undelivered; their next owner reads them again.");
        }
        store(consumer, &mut offsets, &self.commit_errors);
        offsets.forget(&revoked);
        drop(offsets);
        match self.revoked.lock() {
            Ok(mut r) => r.extend(revoked.iter().cloned()),
            Err(poisoned) => poisoned.into_inner().extend(revoked.iter().cloned()),
        }
        if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
            if !matches!(
                e.rdkafka_error_code(),
                Some(rdkafka::types::RDKafkaErrorCode::NoOffset)
            ) {
                self.commit_errors.report(1, || {
                    format!("Committing offsets before a rebalance failed: {e}")
                });
            }
        }
        tracing::info!(component_id = %self.id, partitions = revoked.len(), "Kafka partitions revoked; delivered offsets committed.");
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            tracing::info!(component_id = %self.id, partitions = tpl.count(), "Kafka partitions assigned.");
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        match result {
            Ok(()) => self.commits.increment(1),
            Err(rdkafka::error::KafkaError::ConsumerCommit(
                rdkafka::types::RDKafkaErrorCode::NoOffset,
            )) => {}
            Err(e) => self
                .commit_errors
                .report(1, || format!("Committing offsets failed: {e}")),
        }
    }
}

/// Hands the offsets that may be committed to librdkafka (which commits them every
/// `commit_interval_ms`, and at once on a rebalance or at exit).
fn store<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    offsets: &mut Offsets,
    errors: &ErrorReporter,
) {
    let ready = offsets.take_ready();
    if ready.is_empty() {
        return;
    }
    let mut tpl = TopicPartitionList::with_capacity(ready.len());
    for ((topic, partition), next) in &ready {
        if let Err(e) = tpl.add_partition_offset(topic, *partition, Offset::Offset(*next)) {
            errors.report(1, || format!("Offset {next} of {topic}/{partition}: {e}"));
        }
    }
    if let Err(e) = consumer.store_offsets(&tpl) {
        // A partition revoked meanwhile refuses its offset; its next owner reads on
        // from the last commit.
        tracing::debug!(error = %e, "Storing offsets failed.");
    }
}

/// The frames of one payload; a whole payload without a vector.
enum Frames {
    One(Option<Bytes>),
    Many(std::vec::IntoIter<Bytes>),
}

impl Iterator for Frames {
    type Item = Bytes;
    fn next(&mut self) -> Option<Bytes> {
        match self {
            Frames::One(f) => f.take(),
            Frames::Many(it) => it.next(),
        }
    }
}

/// How long a batch may wait to fill once its first message is in.
const BATCH_FILL: Duration = Duration::from_millis(5);

/// The consumer thread: polls, sends batches (blocking on backpressure), stores
/// delivered offsets; at shutdown waits for what is in flight and commits.
fn consume(
    consumer: BaseConsumer<SourceKafkaContext>,
    offsets: Arc<Mutex<Offsets>>,
    fields: Fields,
    codec: Codec,
    payloads: Payloads,
    cx: SourceContext,
    runtime: tokio::runtime::Handle,
) {
    let source_id = crate::event::intern(&cx.id);
    let schema = log_schema();
    let mut decoder = FrameDecoder::new(codec, &cx.metrics);
    let mut topics: HashMap<String, (Arc<str>, Value)> = HashMap::new();
    // Messages come in runs of one topic: the last one's name and value, unhashed.
    let mut last_topic: Option<(Arc<str>, Value)> = None;
    let errors = cx.metrics.error_reporter("kafka");
    let decompress_errors = cx
        .metrics
        .reporter::<crate::internal_events::failures::DecodeFailed>();
    let commit_errors = cx.metrics.error_reporter("commit");
    let lock = || match offsets.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    let mut batch = Vec::with_capacity(crate::event::MAX_BATCH_EVENTS);
    let mut reached: HashMap<Partition, i64> = HashMap::new();
    // The partition of the last message and its offset, folded into `reached` when the
    // partition changes (messages come in runs of one partition).
    let mut last_reached: Option<(Partition, i64)> = None;
    // The partition of each event in `batch`.
    let mut origins: Vec<Partition> = Vec::with_capacity(crate::event::MAX_BATCH_EVENTS);
    while !cx.shutdown.is_cancelled() {
        let mut wait = Duration::from_millis(100);
        let mut bytes = 0usize;
        // A batch fills for at most BATCH_FILL after its first message: librdkafka
        // hands messages over in bursts, and a batch cut at the first gap costs a send
        // and an acknowledgement per handful of messages.
        let mut fill_until: Option<Instant> = None;
        // One clock reading per batch: the ingest time of its events.
        let mut now = Utc::now();
        while batch.len() < crate::event::MAX_BATCH_EVENTS && bytes < 1 << 20 {
            if let Some(until) = fill_until {
                wait = until.saturating_duration_since(Instant::now());
            }
            let polled = consumer.poll(wait);
            // A revoke inside that poll: what was read from those partitions and not yet
            // sent belongs to their next owner now, which reads it from the last
            // commit; sending it too would deliver it twice.
            let revoked = consumer.context().take_revoked();
            if !revoked.is_empty() {
                let mut i = 0;
                batch.retain(|_| {
                    let keep = !revoked.contains(&origins[i]);
                    i += 1;
                    keep
                });
                origins.retain(|o| !revoked.contains(o));
                if last_reached
                    .as_ref()
                    .is_some_and(|(tp, _)| revoked.contains(tp))
                {
                    last_reached = None;
                }
                reached.retain(|tp, _| !revoked.contains(tp));
            }
            let Some(polled) = polled else {
                break;
            };
            if fill_until.is_none() {
                fill_until = Some(Instant::now() + BATCH_FILL);
                now = Utc::now();
            }
            let m = match polled {
                Ok(m) => m,
                Err(e) => {
                    errors.report(1, || format!("Reading from Kafka failed: {e}"));
                    continue;
                }
            };
            let (topic_name, topic_value) = {
                let t = m.topic();
                match &last_topic {
                    Some((name, value)) if &**name == t => (name.clone(), value.clone()),
                    _ => {
                        if !topics.contains_key(t) {
                            topics.insert(
                                t.to_string(),
                                (Arc::from(t), Value::Bytes(Bytes::from(t.to_string()))),
                            );
                        }
                        let Some((a, v)) = topics.get(t) else {
                            continue;
                        };
                        last_topic = Some((a.clone(), v.clone()));
                        (a.clone(), v.clone())
                    }
                }
            };
            let partition = m.partition();
            let offset = m.offset();
            let origin: Partition = (topic_name, partition);
            match &mut last_reached {
                Some((tp, o)) if Arc::ptr_eq(&tp.0, &origin.0) && tp.1 == partition => *o = offset,
                _ => {
                    if let Some((tp, o)) = last_reached.take() {
                        reached.insert(tp, o);
                    }
                    last_reached = Some((origin.clone(), offset));
                }
            }
            let raw = m.payload().unwrap_or_default();
            bytes += raw.len();
            let payload = match payloads.decompression {
                None => Bytes::copy_from_slice(raw),
                Some((algorithm, limit)) => match algorithm.decompress(raw, limit) {
                    Ok(d) => Bytes::from(d),
                    Err(e) => {
                        decompress_errors.emit(|| {
                            format!("A payload did not decompress ({e}); kept as it arrived")
                        });
                        Bytes::copy_from_slice(raw)
                    }
                },
            };
            let time = m
                .timestamp()
                .to_millis()
                .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
                .unwrap_or(now);
            let key = m.key().map(|k| Value::Bytes(Bytes::copy_from_slice(k)));
            let headers = fields.headers.as_ref().map(|_| {
                let mut h = ObjectMap::new();
                if let Some(hs) = m.headers() {
                    for header in hs.iter() {
                        let v = header
                            .value
                            .map_or(Value::Null, |v| Value::Bytes(Bytes::copy_from_slice(v)));
                        h.insert(header.key.into(), v);
                    }
                }
                Value::Object(h)
            });
            let mut add = |mut f: ObjectMap| {
                if let Some(k) = &fields.key {
                    f.insert(k.clone(), key.clone().unwrap_or(Value::Null));
                }
                if let Some(k) = &fields.topic {
                    f.insert(k.clone(), topic_value.clone());
                }
                if let Some(k) = &fields.partition {
                    f.insert(k.clone(), Value::Integer(i64::from(partition)));
                }
                if let Some(k) = &fields.offset {
                    f.insert(k.clone(), Value::Integer(offset));
                }
                if let (Some(k), Some(h)) = (&fields.headers, &headers) {
                    f.insert(k.clone(), h.clone());
                }
                f.entry(schema.timestamp_key.as_str().into())
                    .or_insert(Value::Timestamp(time));
                f.insert(schema.source_type_key.as_str().into(), Value::from("kafka"));
                batch.push(LogEvent::from_parts(f, EventMetadata::new(source_id, now)).into());
                origins.push(origin.clone());
            };
            let frames = match payloads.split {
                Split::Whole => Frames::One(Some(payload)),
                split => Frames::Many(frames_of(&payload, split).into_iter()),
            };
            for frame in frames {
                if decoder.is_text() {
                    let mut f = ObjectMap::new();
                    f.insert(schema.message_key.as_str().into(), Value::Bytes(frame));
                    add(f);
                } else {
                    decoder.decode(frame, &mut add);
                }
            }
        }
        {
            let mut o = lock();
            o.collect();
            store(&consumer, &mut o, &commit_errors);
        }
        if let Some((tp, o)) = last_reached.take() {
            reached.insert(tp, o);
        }
        if reached.is_empty() {
            continue;
        }
        cx.metrics.received_bytes.increment(bytes as u64);
        let offsets_reached: Vec<(Partition, i64)> = reached.drain().collect();
        origins.clear();
        lock().track(&mut batch, offsets_reached, &runtime);
        let sent = runtime.block_on(crate::sources::send_batch(&mut batch, &cx.metrics, &cx.out));
        if !sent {
            break;
        }
    }
    // Shutdown: what was sent may still be delivered; commit it before leaving.
    let deadline = Instant::now() + cx.shutdown_timeout.saturating_sub(Duration::from_secs(1));
    let mut o = lock();
    if !o.drain(None, deadline) {
        tracing::warn!(component_id = %cx.id, open = o.open(), "Shutting down with Kafka events undelivered; they are read again at the next start.");
    }
    store(&consumer, &mut o, &commit_errors);
    drop(o);
    if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
        if !matches!(
            e.rdkafka_error_code(),
            Some(rdkafka::types::RDKafkaErrorCode::NoOffset)
        ) {
            commit_errors.report(1, || format!("Committing offsets at shutdown failed: {e}"));
        }
    }
    // Dropping the consumer leaves the group (its revoke commits once more, without
    // waiting again).
    consumer
        .context()
        .closing
        .store(true, std::sync::atomic::Ordering::Release);
    drop(consumer);
}
