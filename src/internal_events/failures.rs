//! One small type per failure a component can report: its `error_type` label, and
//! whether it costs events. A component takes a [`Reporter`] for each at start, and a
//! call site is then one line that counts the error, counts the events it cost as
//! discarded, and logs (rate-limited): all of it or none. The type system keeps the
//! two apart: a failure that loses events can only be reported with how many
//! ([`Reporter::emit_dropped`]), one that loses none without ([`Reporter::emit`]).

use super::{ComponentMetrics, ErrorReporter};
use metrics::Counter;
use std::marker::PhantomData;

/// A kind of failure: its `error_type` label.
pub trait Failure {
    /// The `error_type` label of `sluice_component_errors_total`.
    const ERROR_TYPE: &'static str;
}

/// A failure that loses nothing (the input was kept raw, the client was told, the
/// step is retried).
pub trait Lossless: Failure {}

/// A failure that costs events: they are counted as discarded (`intentional="false"`).
pub trait Lossy: Failure {}

/// Counts and logs one kind of failure of one component. Cheap to clone; every
/// reporter of one component and `error_type` shares one rate limit, however many
/// connections or tasks hold it.
pub struct Reporter<F> {
    inner: ErrorReporter,
    discarded: Counter,
    kind: PhantomData<fn() -> F>,
}

impl<F> Clone for Reporter<F> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            discarded: self.discarded.clone(),
            kind: PhantomData,
        }
    }
}

impl<F> std::fmt::Debug for Reporter<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter")
            .field("error_type", &self.inner.error_type())
            .finish()
    }
}

impl<F: Failure> Reporter<F> {
    /// The reporter of failure `F` for the component of `metrics`.
    pub fn new(metrics: &ComponentMetrics) -> Self {
        Self {
            inner: metrics.error_reporter(F::ERROR_TYPE),
            discarded: metrics.discarded_unintentional.clone(),
            kind: PhantomData,
        }
    }
}

impl<F: Lossless> Reporter<F> {
    /// Counts one occurrence and logs `message` unless the limit was reached.
    pub fn emit(&self, message: impl FnOnce() -> String) {
        self.inner.report(1, message);
    }
}

impl<F: Lossy> Reporter<F> {
    /// Counts one occurrence that cost `events` events, and logs `message` unless the
    /// limit was reached.
    pub fn emit_dropped(&self, events: u64, message: impl FnOnce() -> String) {
        if events > 0 {
            self.discarded.increment(events);
        }
        self.inner.report(1, message);
    }
}

macro_rules! failures {
    ($($(#[$doc:meta])* $name:ident: $error_type:literal, $loss:ident;)*) => {
        $(
            $(#[$doc])*
            #[derive(Debug)]
            pub struct $name;
            impl Failure for $name {
                const ERROR_TYPE: &'static str = $error_type;
            }
            impl $loss for $name {}
        )*
    };
}

failures! {
    /// A message that is not syslog; kept whole as `message`.
    NotSyslog: "parse", Lossless;
    /// A line or message longer than the limit; the rest was cut off, the event kept.
    Truncated: "truncated", Lossless;
    /// A stream's framing broke (bad octet count, a frame cut short); reading goes on.
    FramingFailed: "framing", Lossless;
    /// Reading input failed; what was read before is kept.
    ReadFailed: "io", Lossless;
    /// A file step that loses nothing (listing, opening to follow, closing, flushing);
    /// it is tried again.
    FileTrouble: "io", Lossless;
    /// Events could not be written to their destination.
    WriteFailed: "io", Lossy;
    /// Accepting a connection failed (out of descriptors and the like).
    AcceptFailed: "accept", Lossless;
    /// A TLS handshake failed; the connection is closed.
    TlsHandshakeFailed: "tls", Lossless;
    /// A client outside `permit_origin` connected; the connection is closed unread.
    OriginRefused: "origin_refused", Lossless;
    /// An event named a field its template needs and does not have.
    TemplateFailed: "template", Lossy;
    /// The destination refused events for good.
    Rejected: "rejected", Lossy;
    /// A request failed and will be sent again.
    RequestRetried: "request_failed", Lossless;
    /// A request ran out of retries; its events are given up.
    RequestAbandoned: "request_failed", Lossy;
    /// The kernel dropped datagrams because the receive buffer was full.
    UdpOverflow: "udp_overflow", Lossy;
    /// A notification sink's queue of unsent groups was full; a new group was turned away.
    NotificationDropped: "queue_full", Lossy;
    /// Reading or writing checkpoints failed.
    CheckpointFailed: "checkpoint", Lossless;
    /// A disk buffer could not write, sync or read (its events are accounted where
    /// they went: sources told, corrupted events counted).
    BufferFailed: "buffer", Lossless;
    /// Writing dead letters failed (the events were counted as dropped already).
    DeadLetterFailed: "dead_letter", Lossless;
    /// A name or tag value the line protocol cannot carry was changed (trailing
    /// backslashes dropped, control characters made spaces); the point was written.
    LineProtocolAltered: "line_protocol", Lossless;
    /// A log event lacked the field a `log_to_metric` entry reads (or it was not a
    /// number); that entry made no metric, as in Vector.
    FieldUnusable: "field_missing", Lossless;
    /// `log_to_metric` with `all_metrics`: a log event was not a metric in Vector's
    /// JSON shape, so it is dropped (Vector drops it too).
    MetricShapeInvalid: "parser_failed", Lossy;
    /// A VRL condition failed at runtime and counted as false.
    ConditionFailed: "condition", Lossless;
    /// A VRL program failed at runtime; the event went on unchanged.
    RemapFailed: "conversion", Lossless;
    /// A VRL program failed at runtime and `drop_on_error` dropped the event.
    RemapDropped: "conversion", Lossy;
    /// A request body could not be decoded; the client was told (400).
    DecodeFailed: "decode", Lossless;
    /// A request body exceeded the limit; the client was told (413).
    BodyTooLarge: "too_large", Lossless;
    /// A request without valid credentials; the client was told (401).
    Unauthorized: "unauthorized", Lossless;
    /// A request the source cannot take (wrong method or path); the client was told.
    BadRequest: "bad_request", Lossless;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::internal_events::{names, ComponentKind, ComponentLabels};
    use metrics_exporter_prometheus::PrometheusBuilder;

    #[test]
    fn every_holder_shares_one_rate_limit_and_lossy_failures_count_their_events() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let (a, b, lossy) = metrics::with_local_recorder(&recorder, || {
            let m = ComponentMetrics::new(ComponentLabels {
                id: "shared-limit".into(),
                kind: ComponentKind::Source,
                type_name: "test",
            });
            (
                Reporter::<FramingFailed>::new(&m),
                Reporter::<FramingFailed>::new(&m),
                Reporter::<WriteFailed>::new(&m),
            )
        });
        #[derive(Clone, Default)]
        struct Log(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Log {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let log = Log::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            // Two holders (two connections) hammering one failure: one line.
            for _ in 0..500 {
                a.emit(|| String::from("bad frame"));
                b.emit(|| String::from("bad frame"));
            }
            lossy.emit_dropped(7, || String::from("write failed"));
        });
        let text = String::from_utf8_lossy(&log.0.lock().unwrap()).into_owned();
        assert_eq!(text.matches("bad frame").count(), 1, "{text}");
        assert_eq!(text.matches("write failed").count(), 1, "{text}");
        let text = recorder.handle().render();
        let value = |name: &str, extra: &str| -> f64 {
            text.lines()
                .filter(|l| l.starts_with(name) && l.contains(extra))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        assert_eq!(value(names::ERRORS, "error_type=\"framing\""), 1000.0);
        assert_eq!(value(names::ERRORS, "error_type=\"io\""), 1.0);
        assert_eq!(value(names::DISCARDED_EVENTS, "intentional=\"false\""), 7.0);
    }
}
