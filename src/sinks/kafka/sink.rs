//! The `kafka` sink at work. Each event becomes one record handed to librdkafka's
//! producer, which batches, compresses and sends them; the events of one input batch
//! share one [`Pending`] that every record's delivery report answers, and when the
//! last one has answered, the batch's sources hear the outcome (so a file source
//! checkpoints, an HTTP client gets its 200, only once Kafka has the events).
//!
//! - A full producer queue (`QueueFull`) makes the sink wait for room instead of
//!   taking more input, so a slow or absent broker pushes back to the sources.
//! - A record the broker refuses for good (too large, not authorised, a topic that
//!   cannot exist) is counted (`error_type="rejected"`) and its event reported
//!   rejected; never retried.
//! - A record that failed for a reason that passes (the broker away past
//!   `message_timeout_ms`, a leader election) is handed to the producer again, so a
//!   long outage costs time, not events.

use super::config::KafkaSinkConfig;
use crate::event::{BatchStatus, Event, EventFinalizers, Value};
use crate::internal_events::failures::{Rejected, RequestRetried, TemplateFailed};
use crate::internal_events::{names, ComponentMetrics, Reporter};
use crate::kafka::{KafkaClientContext, StatsSink};
use crate::sinks::util::encoding::Encoder;
use crate::sinks::util::template::Template;
use crate::topology::buffer::HeldEvents;
use crate::topology::component::{BuildError, SinkContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::statistics::Statistics;
use rdkafka::ClientContext;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify};

/// What the producer's thread and the sink's task share.
struct Shared {
    metrics: ComponentMetrics,
    held: HeldEvents,
    latency: metrics::Histogram,
    rejected: Reporter<Rejected>,
    retried: Reporter<RequestRetried>,
    retries: metrics::Counter,
    /// Input batches not yet fully answered.
    outstanding: AtomicUsize,
    /// Signalled whenever a batch is answered: the producer queue has room again.
    room: Notify,
    /// Records to hand to the producer again.
    again: mpsc::UnboundedSender<Again>,
}

/// The records of one input batch, waiting for their delivery reports.
pub struct Pending {
    shared: Arc<Shared>,
    /// Reports still to come, plus one while the sink is still adding records.
    remaining: AtomicUsize,
    /// The worst outcome so far (a `BatchStatus` as u8).
    worst: AtomicU8,
    finalizers: Mutex<EventFinalizers>,
    events: AtomicUsize,
    delivered: AtomicU64,
    bytes: AtomicU64,
    started: Instant,
    /// For a record sent again stamped with the time of producing: the batch it
    /// belongs to, which its answer is passed on to.
    parent: Option<Arc<Pending>>,
}

impl Pending {
    fn new(shared: Arc<Shared>) -> Self {
        shared.outstanding.fetch_add(1, Ordering::AcqRel);
        Self::with_parent(shared, None)
    }

    fn with_parent(shared: Arc<Shared>, parent: Option<Arc<Pending>>) -> Self {
        Self {
            shared,
            remaining: AtomicUsize::new(1),
            worst: AtomicU8::new(BatchStatus::Delivered as u8),
            finalizers: Mutex::new(EventFinalizers::default()),
            events: AtomicUsize::new(0),
            delivered: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            started: Instant::now(),
            parent,
        }
    }

    /// A stand-in for one record of `parent` sent again with a new timestamp: only
    /// this record's answer tells whether the timestamp was what the broker refused.
    fn restamped(parent: Arc<Pending>) -> Self {
        Self::with_parent(parent.shared.clone(), Some(parent))
    }

    fn worsen(&self, status: BatchStatus) {
        self.worsen_to(status as u8);
    }

    fn worsen_to(&self, status: u8) {
        self.worst.fetch_max(status, Ordering::AcqRel);
    }

    /// One record answered (or the sink done adding); the last answer reports the
    /// batch.
    fn answer(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        if let Some(parent) = &self.parent {
            parent
                .delivered
                .fetch_add(self.delivered.load(Ordering::Acquire), Ordering::AcqRel);
            parent
                .bytes
                .fetch_add(self.bytes.load(Ordering::Acquire), Ordering::AcqRel);
            parent.worsen_to(self.worst.load(Ordering::Acquire));
            parent.answer();
            return;
        }
        let status = match self.worst.load(Ordering::Acquire) {
            x if x == BatchStatus::Delivered as u8 => BatchStatus::Delivered,
            x if x == BatchStatus::Errored as u8 => BatchStatus::Errored,
            _ => BatchStatus::Rejected,
        };
        let finalizers = match self.finalizers.lock() {
            Ok(mut f) => std::mem::take(&mut *f),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        finalizers.update_status(status);
        let s = &self.shared;
        s.held.sub(self.events.load(Ordering::Acquire) as u64);
        s.metrics
            .sent_events
            .increment(self.delivered.load(Ordering::Acquire));
        s.metrics
            .sent_bytes
            .increment(self.bytes.load(Ordering::Acquire));
        s.latency.record(self.started.elapsed().as_secs_f64());
        s.outstanding.fetch_sub(1, Ordering::AcqRel);
        s.room.notify_waiters();
    }
}

/// A record that failed for a passing reason, copied out of its delivery report.
struct Again {
    topic: String,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
    headers: Option<OwnedHeaders>,
    timestamp: Option<i64>,
    pending: Arc<Pending>,
}

/// Errors after which sending the record again cannot help.
fn is_permanent(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        code,
        C::MessageSizeTooLarge
            | C::InvalidMessageSize
            | C::InvalidMessage
            | C::InvalidRecord
            | C::TopicAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::UnsupportedForMessageFormat
            | C::InvalidRequiredAcks
            | C::InvalidTopic
            | C::UnknownTopic
            | C::UnknownTopicOrPartition
            | C::PolicyViolation
    )
}

/// The producer's context: delivery reports answer [`Pending`]s.
pub struct SinkKafkaContext {
    client: KafkaClientContext<ProducerStats>,
    shared: Arc<Shared>,
}

/// The sink's gauges from librdkafka's statistics.
pub struct ProducerStats {
    queue: metrics::Gauge,
    in_flight: metrics::Gauge,
}

impl StatsSink for ProducerStats {
    fn record(&self, stats: &Statistics) {
        self.queue.set(stats.msg_cnt as f64);
        let waiting: i64 = stats.brokers.values().map(|b| b.waitresp_msg_cnt).sum();
        self.in_flight.set(waiting.max(0) as f64);
    }
}

impl ClientContext for SinkKafkaContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        self.client.log(level, fac, message);
    }
    fn stats(&self, statistics: Statistics) {
        self.client.stats(statistics);
    }
    fn error(&self, error: KafkaError, reason: &str) {
        self.client.error(error, reason);
    }
}

impl ProducerContext for SinkKafkaContext {
    type DeliveryOpaque = Arc<Pending>;

    fn delivery(&self, result: &DeliveryResult<'_>, pending: Arc<Pending>) {
        let (e, msg) = match result {
            Ok(msg) => {
                pending.delivered.fetch_add(1, Ordering::Relaxed);
                let len = msg.payload_len() + msg.key().map_or(0, <[u8]>::len);
                pending.bytes.fetch_add(len as u64, Ordering::Relaxed);
                pending.answer();
                return;
            }
            Err((e, msg)) => (e, msg),
        };
        let code = match e {
            KafkaError::MessageProduction(code) => Some(*code),
            _ => None,
        };
        // A broker refuses a timestamp too far from its clock
        // (`message.timestamp.*.max.ms`; Kafka 4 answers "invalid record"): the record
        // goes again, once, stamped with the time it is produced (the event keeps its
        // own `timestamp` field). Refused again, it is refused for good.
        let restamp = pending.parent.is_none()
            && matches!(
                code,
                Some(RDKafkaErrorCode::InvalidTimestamp | RDKafkaErrorCode::InvalidRecord)
            );
        if !restamp && code.is_some_and(is_permanent) {
            let topic = msg.topic().to_string();
            self.shared.rejected.emit_dropped(1, || {
                format!("Kafka refused a record for topic `{topic}` for good: {e}")
            });
            pending.worsen(BatchStatus::Rejected);
            pending.answer();
            return;
        }
        let reason = e.to_string();
        self.shared.retried.emit(|| {
            let what = if restamp {
                "sending it again stamped now"
            } else {
                "sending it again"
            };
            format!(
                "A record for topic `{}` failed ({reason}); {what}",
                msg.topic()
            )
        });
        self.shared.retries.increment(1);
        let again = Again {
            topic: msg.topic().to_string(),
            key: msg.key().map(<[u8]>::to_vec),
            payload: msg.payload().map(<[u8]>::to_vec).unwrap_or_default(),
            headers: msg.headers().map(|h| h.detach()),
            timestamp: if restamp {
                None
            } else {
                msg.timestamp().to_millis()
            },
            pending: if restamp {
                Arc::new(Pending::restamped(pending))
            } else {
                pending
            },
        };
        if let Err(mpsc::error::SendError(lost)) = self.shared.again.send(again) {
            // The sink has stopped: the record cannot be sent again.
            lost.pending.worsen(BatchStatus::Errored);
            lost.pending.answer();
        }
    }
}

/// The running sink.
pub struct KafkaSink {
    producer: ThreadedProducer<SinkKafkaContext>,
    shared: Arc<Shared>,
    again: mpsc::UnboundedReceiver<Again>,
    topic: Template,
    encoder: Encoder,
    key_field: Option<String>,
    headers_key: Option<String>,
    templates: Reporter<TemplateFailed>,
    topic_buf: String,
    payload: Vec<u8>,
    key: Vec<u8>,
}

impl KafkaSink {
    /// Creates the producer (it connects in the background) and starts the healthcheck.
    pub fn new(
        config: &KafkaSinkConfig,
        topic: Template,
        cx: &SinkContext,
    ) -> Result<Self, BuildError> {
        let (again_tx, again) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            metrics: cx.metrics.clone(),
            held: cx.input.held(),
            latency: cx.metrics.histogram(names::KAFKA_PRODUCE_LATENCY),
            rejected: cx.metrics.reporter(),
            retried: cx.metrics.reporter(),
            retries: cx.metrics.counter(names::SINK_RETRIES),
            outstanding: AtomicUsize::new(0),
            room: Notify::new(),
            again: again_tx,
        });
        let context = SinkKafkaContext {
            client: KafkaClientContext::new(
                cx.id.clone(),
                &cx.metrics,
                ProducerStats {
                    queue: cx.metrics.gauge(names::KAFKA_PRODUCER_QUEUE),
                    in_flight: cx.metrics.gauge(names::KAFKA_IN_FLIGHT),
                },
            ),
            shared: shared.clone(),
        };
        let producer: ThreadedProducer<SinkKafkaContext> = config
            .producer_config()
            .create_with_context(context)
            .map_err(|e| BuildError::Other(format!("the Kafka producer: {e}")))?;
        if cx.healthcheck.enabled {
            let client_config = config.producer_config();
            let servers = config.bootstrap_servers.clone();
            let topic = config.healthcheck_topic.clone();
            cx.spawn_healthcheck(async move {
                tokio::task::spawn_blocking(move || {
                    let probe: rdkafka::producer::BaseProducer =
                        client_config.create().map_err(|e| e.to_string())?;
                    probe
                        .client()
                        .fetch_metadata(topic.as_deref(), Duration::from_secs(10))
                        .map(|_| ())
                        .map_err(|e| format!("{servers}: {e}"))
                })
                .await
                .map_err(|e| e.to_string())?
            });
        }
        Ok(Self {
            producer,
            shared,
            again,
            topic,
            encoder: config.encoding.encoder(),
            key_field: config.key_field.clone(),
            headers_key: config.headers_key.clone(),
            templates: cx.metrics.reporter(),
            topic_buf: String::new(),
            payload: Vec::with_capacity(1024),
            key: Vec::new(),
        })
    }

    /// Sends until the input closes, then waits for every delivery report.
    pub async fn run(mut self, mut cx: SinkContext) {
        loop {
            tokio::select! {
                biased;
                Some(a) = self.again.recv() => self.send_again(a).await,
                b = cx.input.recv() => match b {
                    Some(mut batch) => self.send_batch(&mut batch).await,
                    None => break,
                },
            }
        }
        while self.shared.outstanding.load(Ordering::Acquire) > 0 {
            tokio::select! {
                Some(a) = self.again.recv() => self.send_again(a).await,
                _ = self.shared.room.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }

    async fn send_batch(&mut self, batch: &mut crate::event::Batch) {
        let pending = Arc::new(Pending::new(self.shared.clone()));
        let mut finalizers = EventFinalizers::default();
        let n = batch.len();
        self.shared.held.add(n as u64);
        for event in batch.iter_mut() {
            finalizers.merge(event.take_finalizers());
            let event: &Event = event;
            let time = Template::event_time(event);
            if let Err(e) = self.topic.render_text(event, time, &mut self.topic_buf) {
                self.templates
                    .emit_dropped(1, || format!("No topic for an event: {e}"));
                pending.worsen(BatchStatus::Rejected);
                continue;
            }
            self.payload.clear();
            self.encoder.encode(event, &mut self.payload);
            let log = event.as_log();
            let has_key = match (log, &self.key_field) {
                (Some(l), Some(f)) => match l.get_path(f) {
                    None | Some(Value::Null) => false,
                    Some(v) => {
                        self.key.clear();
                        match v {
                            Value::Bytes(b) => self.key.extend_from_slice(b),
                            other => self
                                .key
                                .extend_from_slice(other.to_string_lossy().as_bytes()),
                        }
                        true
                    }
                },
                _ => false,
            };
            let headers = match (log, &self.headers_key) {
                (Some(l), Some(f)) => match l.get_path(f) {
                    Some(Value::Object(map)) => {
                        let mut h = OwnedHeaders::new_with_capacity(map.len());
                        for (k, v) in map {
                            let text;
                            let value: &[u8] = match v {
                                Value::Bytes(b) => b,
                                other => {
                                    text = other.to_string_lossy().into_owned();
                                    text.as_bytes()
                                }
                            };
                            h = h.insert(Header {
                                key: k.as_str(),
                                value: Some(value),
                            });
                        }
                        Some(h)
                    }
                    _ => None,
                },
                _ => None,
            };
            let mut record = BaseRecord::with_opaque_to(&self.topic_buf, pending.clone())
                .payload(&self.payload[..])
                .timestamp(time.timestamp_millis());
            if has_key {
                record = record.key(&self.key[..]);
            }
            if let Some(h) = headers {
                record = record.headers(h);
            }
            pending.remaining.fetch_add(1, Ordering::AcqRel);
            if let Err(code) = produce(&self.producer, &self.shared, record).await {
                let topic = self.topic_buf.clone();
                self.shared.rejected.emit_dropped(1, || {
                    format!("Kafka refused a record for topic `{topic}` for good: {code}")
                });
                pending.worsen(BatchStatus::Rejected);
                pending.remaining.fetch_sub(1, Ordering::AcqRel);
            }
        }
        pending.events.store(n, Ordering::Release);
        match pending.finalizers.lock() {
            Ok(mut f) => *f = finalizers,
            Err(poisoned) => *poisoned.into_inner() = finalizers,
        }
        pending.answer();
    }

    async fn send_again(&mut self, a: Again) {
        let pending = a.pending.clone();
        let mut record = BaseRecord::with_opaque_to(&a.topic, a.pending).payload(&a.payload[..]);
        if let Some(k) = &a.key {
            record = record.key(&k[..]);
        }
        if let Some(t) = a.timestamp {
            record = record.timestamp(t);
        }
        if let Some(h) = a.headers {
            record = record.headers(h);
        }
        if let Err(code) = produce(&self.producer, &self.shared, record).await {
            let topic = a.topic.clone();
            self.shared.rejected.emit_dropped(1, || {
                format!("Kafka refused a record for topic `{topic}` for good: {code}")
            });
            pending.worsen(BatchStatus::Rejected);
            pending.answer();
        }
    }
}

/// Hands a record to the producer, waiting while its queue is full. Returns the error
/// of a record the producer refuses outright (too large for `message.max.bytes`).
async fn produce(
    producer: &ThreadedProducer<SinkKafkaContext>,
    shared: &Shared,
    mut record: BaseRecord<'_, [u8], [u8], Arc<Pending>>,
) -> Result<(), RDKafkaErrorCode> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                tokio::select! {
                    _ = shared.room.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                }
            }
            Err((KafkaError::MessageProduction(code), _)) if is_permanent(code) => {
                return Err(code)
            }
            Err((e, back)) => {
                // Anything else at enqueue time (the client shutting down): wait a bit
                // and try again rather than lose the event.
                shared.retried.emit(|| {
                    format!("The Kafka producer did not take a record ({e}); trying again")
                });
                record = back;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
