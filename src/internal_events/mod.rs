//! The metric contract of DESIGN.md §3 in one place: every component gets the same
//! counters with the same labels, pre-registered so the hot path only bumps handles,
//! and every failure is counted and logged (rate-limited) by the same call.

pub mod failures;
pub mod names;

pub use failures::Reporter;

use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, Counter, Gauge,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// Which table of the config a component comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ComponentKind {
    /// `[sources.ID]`
    Source,
    /// `[transforms.ID]`
    Transform,
    /// `[sinks.ID]`
    Sink,
}

impl ComponentKind {
    /// The label value and the config table's singular name.
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentKind::Source => "source",
            ComponentKind::Transform => "transform",
            ComponentKind::Sink => "sink",
        }
    }
}

/// Identity labels of one component, shared by all of its metrics and log lines.
#[derive(Clone, Debug)]
pub struct ComponentLabels {
    /// The ID from the config (`[sinks.ID]`).
    pub id: Arc<str>,
    /// Source, transform or sink.
    pub kind: ComponentKind,
    /// The `type` from the config.
    pub type_name: &'static str,
}

impl ComponentLabels {
    fn labels(&self) -> [(&'static str, String); 3] {
        [
            ("component_id", self.id.to_string()),
            ("component_kind", self.kind.as_str().to_string()),
            ("component_type", self.type_name.to_string()),
        ]
    }
}

/// Pre-registered counters for one component. Cloning shares the handles.
#[derive(Clone, Debug)]
pub struct ComponentMetrics {
    /// Who these metrics describe.
    pub labels: ComponentLabels,
    /// `sluice_component_received_events_total`
    pub received_events: Counter,
    /// `sluice_component_received_bytes_total`
    pub received_bytes: Counter,
    /// `sluice_component_sent_events_total`
    pub sent_events: Counter,
    /// `sluice_component_sent_bytes_total`
    pub sent_bytes: Counter,
    /// `sluice_component_discarded_events_total{intentional="false"}`
    pub discarded_unintentional: Counter,
    /// `sluice_component_discarded_events_total{intentional="true"}`
    pub discarded_intentional: Counter,
}

impl ComponentMetrics {
    /// Registers the contract's counters so they show at 0 before the first event.
    pub fn new(labels: ComponentLabels) -> Self {
        let l = labels.labels();
        let with = |k: &'static str, v: &'static str| {
            let mut v2 = l.to_vec();
            v2.push((k, v.to_string()));
            v2
        };
        Self {
            received_events: counter!(names::RECEIVED_EVENTS, &l),
            received_bytes: counter!(names::RECEIVED_BYTES, &l),
            sent_events: counter!(names::SENT_EVENTS, &l),
            sent_bytes: counter!(names::SENT_BYTES, &l),
            discarded_unintentional: counter!(
                names::DISCARDED_EVENTS,
                &with("intentional", "false")
            ),
            discarded_intentional: counter!(names::DISCARDED_EVENTS, &with("intentional", "true")),
            labels,
        }
    }

    /// A counter-and-log pair for one kind of failure of this component. Every call
    /// for one component and `error_type` returns the same one, so a thousand
    /// connections with bad input share one rate limit instead of logging a thousand
    /// lines. Looked up under a lock: take it at start, not per event. Prefer the typed
    /// [`Reporter`]; this is for error types only known at run time.
    pub fn error_reporter(&self, error_type: &'static str) -> ErrorReporter {
        type Key = (Arc<str>, ComponentKind, &'static str);
        static CACHE: OnceLock<Mutex<HashMap<Key, ErrorReporter>>> = OnceLock::new();
        let key = (self.labels.id.clone(), self.labels.kind, error_type);
        let mut cache = CACHE
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        cache
            .entry(key)
            .or_insert_with(|| {
                let mut l = self.labels.labels().to_vec();
                l.push(("error_type", error_type.to_string()));
                ErrorReporter {
                    inner: Arc::new(ErrorReporterInner {
                        counter: counter!(names::ERRORS, &l),
                        component_id: self.labels.id.clone(),
                        component_kind: self.labels.kind.as_str(),
                        error_type,
                        last_log_secs: AtomicU64::new(0),
                        suppressed: AtomicU64::new(0),
                    }),
                }
            })
            .clone()
    }

    /// The typed reporter of failure `F` for this component.
    pub fn reporter<F: failures::Failure>(&self) -> Reporter<F> {
        Reporter::new(self)
    }

    /// A gauge with this component's labels plus extra ones, for per-component extras.
    pub fn gauge(&self, name: &'static str) -> Gauge {
        gauge!(name, &self.labels.labels())
    }

    /// A counter with this component's labels, for per-component extras.
    pub fn counter(&self, name: &'static str) -> Counter {
        counter!(name, &self.labels.labels())
    }

    /// A histogram with this component's labels, for per-component extras.
    pub fn histogram(&self, name: &'static str) -> metrics::Histogram {
        metrics::histogram!(name, &self.labels.labels())
    }

    /// A counter with this component's labels plus one more (e.g. `status`). Register
    /// them up front or cache them: registering takes a lock.
    pub fn counter_with(&self, name: &'static str, key: &'static str, value: String) -> Counter {
        let mut l = self.labels.labels().to_vec();
        l.push((key, value));
        counter!(name, &l)
    }

    /// A counter with this component's labels plus `extra` ones (an alert rule and the
    /// state it entered).
    pub fn counter_with_labels(
        &self,
        name: &'static str,
        extra: &[(&'static str, String)],
    ) -> Counter {
        let mut l = self.labels.labels().to_vec();
        l.extend(extra.iter().cloned());
        counter!(name, &l)
    }

    /// A gauge with this component's labels plus `extra` ones (a Kafka partition's
    /// topic and number).
    pub fn gauge_with(&self, name: &'static str, extra: &[(&'static str, String)]) -> Gauge {
        let mut l = self.labels.labels().to_vec();
        l.extend(extra.iter().cloned());
        gauge!(name, &l)
    }
}

/// How often one error of one component may reach the log.
const ERROR_LOG_INTERVAL_SECS: u64 = 10;

/// Counts every occurrence of one failure and logs it at most every ten seconds with the
/// number suppressed in between, so a flood of bad input cannot flood the log.
#[derive(Clone, Debug)]
pub struct ErrorReporter {
    inner: Arc<ErrorReporterInner>,
}

#[derive(Debug)]
struct ErrorReporterInner {
    counter: Counter,
    component_id: Arc<str>,
    component_kind: &'static str,
    error_type: &'static str,
    last_log_secs: AtomicU64,
    suppressed: AtomicU64,
}

impl ErrorReporter {
    /// The `error_type` this reporter counts.
    pub fn error_type(&self) -> &'static str {
        self.inner.error_type
    }

    /// Counts `n` occurrences and logs `message` unless one was logged in the last ten seconds.
    pub fn report(&self, n: u64, message: impl FnOnce() -> String) {
        let i = &self.inner;
        i.counter.increment(n);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let last = i.last_log_secs.load(Ordering::Relaxed);
        if (last == 0 || now >= last + ERROR_LOG_INTERVAL_SECS)
            && i.last_log_secs
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let suppressed = i.suppressed.swap(0, Ordering::Relaxed);
            tracing::error!(
                component_id = %i.component_id,
                component_kind = i.component_kind,
                error_type = i.error_type,
                suppressed_since_last_report = suppressed,
                "{}",
                message()
            );
        } else {
            i.suppressed.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// Gives every metric sluice exports its HELP text, once, at start.
pub fn describe_all() {
    describe_counter!(names::RECEIVED_EVENTS, "Events a component took in.");
    describe_counter!(
        names::RECEIVED_BYTES,
        "Raw bytes a source read off the wire or disk."
    );
    describe_counter!(
        names::SENT_EVENTS,
        "Events a component passed on or delivered."
    );
    describe_counter!(names::SENT_BYTES, "Bytes a sink wrote to its destination.");
    describe_counter!(names::ERRORS, "Errors by component and error_type.");
    describe_counter!(
        names::DISCARDED_EVENTS,
        "Events dropped: intentional=true by a filter, false by failure or overflow."
    );
    describe_gauge!(names::BUFFER_EVENTS, "Events waiting in front of a sink.");
    describe_gauge!(
        names::BUFFER_MAX_EVENTS,
        "Capacity of the buffer in front of a sink."
    );
    describe_gauge!(names::UPTIME, "Seconds since sluice started.");
    describe_counter!(
        names::DEAD_LETTERS,
        "Events a destination refused for good, by result: written to the dead-letter file, or dropped (file full, writer behind, write error)."
    );
    describe_gauge!(
        names::BUFFER_BYTE_SIZE,
        "Bytes a disk buffer holds on disk."
    );
    describe_gauge!(
        names::BUFFER_MAX_BYTE_SIZE,
        "The most bytes a disk buffer may hold (buffer.max_size)."
    );
    describe_counter!(
        names::BUFFER_CORRUPTED_EVENTS,
        "Events a disk buffer lost to corruption: a torn or truncated file, a record failing its checksum, a missing file."
    );
    describe_counter!(
        names::CONFIG_RELOADS,
        "Config reloads, by result: applied, rejected (invalid config), failed (could not be applied; the old pipeline runs on)."
    );
    describe_gauge!(
        names::BUILD_INFO,
        "Always 1; the version label says which sluice runs."
    );
    describe_counter!(
        names::HTTP_SERVER_REQUESTS,
        "Requests an HTTP source answered, by status."
    );
    describe_counter!(
        names::HTTP_CLIENT_REQUESTS,
        "Requests an HTTP sink sent, by response status (or `error` when none came)."
    );
    describe_counter!(
        names::SINK_RETRIES,
        "Requests a sink sent again after a retryable failure."
    );
    describe_histogram!(
        names::HTTP_CLIENT_REQUEST_DURATION,
        "Time from sending a request to its response, per attempt."
    );
    describe_gauge!(
        names::SINK_CIRCUIT_OPEN,
        "1 while a sink has stopped sending to a failing destination and only probes it."
    );
    describe_gauge!(
        names::TCP_CONNECTIONS,
        "Open TCP connections of a socket source."
    );
    describe_counter!(
        names::TCP_CONNECTIONS_ACCEPTED,
        "TCP connections a socket source accepted."
    );
    describe_gauge!(
        names::FILES_OPEN,
        "Files a file source follows or a file sink keeps open."
    );
    describe_gauge!(
        names::FILES_OPEN_PEAK,
        "The most files a file source has held open at once since start (bounded by max_open_files)."
    );
    describe_counter!(names::FILES_ADDED, "Files a file source started following.");
    describe_counter!(
        names::THROTTLE_KEYS_EVICTED,
        "Busy keys a throttle transform forgot because max_keys was reached (each comes back with a full budget)."
    );
    describe_counter!(
        names::FILES_REMOVED,
        "Files a file source deleted once every line was delivered (remove_after_secs)."
    );
    describe_counter!(
        names::FILES_ROTATED,
        "Followed files that were renamed away or deleted."
    );
    describe_counter!(
        names::FILES_TRUNCATED,
        "Followed files that were truncated (copytruncate) and read again from the start."
    );
    describe_counter!(
        names::FILES_RESCANS,
        "Times a file source looked at every file at once because inotify may have missed events: the kernel queue overflowed (`overflow`), the watcher failed (`error`), or a watched directory was deleted or replaced (`watch_lost`)."
    );
    describe_counter!(names::CHECKPOINT_WRITES, "Checkpoint files written.");
    describe_gauge!(
        names::ALERTS_FIRING,
        "Alerts of an alert rule that are firing (flapping ones included)."
    );
    describe_counter!(
        names::ALERT_TRANSITIONS,
        "State changes of an alert rule's alerts, by the state entered: pending, firing, resolving, inactive."
    );
    describe_gauge!(
        names::ALERT_GROUPS,
        "Groups (one alert each, active or not) an alert rule keeps."
    );
    describe_counter!(
        names::ALERT_GROUPS_EVICTED,
        "Groups an alert rule forgot or turned away because max_groups was reached."
    );
    describe_counter!(
        names::NOTIFICATIONS,
        "Notifications of a Slack, Discord or email sink, by status: sent, rate_limited (answered 429), retried, rejected, failed (out of retries), dropped (queue full), merged (replaced by a newer state of their group before being sent)."
    );
    describe_counter!(
        names::CLOUDWATCH_REQUESTS,
        "PutLogEvents calls of a CloudWatch Logs sink (and CreateLogGroup/CreateLogStream calls that failed), by answer: ok, partial, throttled, unavailable, timeout, connection_error, not_found, auth_error, invalid."
    );
    describe_counter!(
        names::CLOUDWATCH_REJECTED_EVENTS,
        "Events CloudWatch Logs would not take, by reason: too_old, too_new, expired, invalid_name, empty_message."
    );
    describe_counter!(
        names::CLOUDWATCH_TRUNCATED_EVENTS,
        "Events a CloudWatch Logs sink sent truncated (marked [Truncated...]) because they did not fit into one request."
    );
    describe_histogram!(
        names::KAFKA_PRODUCE_LATENCY,
        "Time from handing a batch's records to the Kafka producer until the broker acknowledged the last of them."
    );
    describe_gauge!(
        names::KAFKA_PRODUCER_QUEUE,
        "Records a Kafka sink's producer holds, queued or sent and not yet acknowledged."
    );
    describe_gauge!(
        names::KAFKA_IN_FLIGHT,
        "Records sent to Kafka brokers and awaiting their acknowledgement."
    );
    describe_gauge!(
        names::KAFKA_CONSUMER_LAG,
        "Messages of a partition a Kafka source's group has not committed (high watermark minus committed offset)."
    );
    describe_counter!(
        names::KAFKA_REBALANCES,
        "Partition assignments and revocations a Kafka source went through."
    );
    describe_counter!(
        names::KAFKA_COMMITS,
        "Offset commits a Kafka source made (each covers every partition with delivered events)."
    );
    describe_counter!(
        names::UDP_KERNEL_DROPS,
        "Datagrams the kernel dropped for a UDP source because its receive buffer was full."
    );
}
