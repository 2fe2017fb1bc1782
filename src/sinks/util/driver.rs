//! Runs a sink's requests: up to `request.concurrency` at once, at most one per partition
//! so events of one partition arrive in order and a batch is never in flight twice;
//! each request retried by the [`RequestConfig`] policy behind its destination's
//! [`CircuitBreaker`], then its events' finalizers told the outcome. A sink only says
//! how to send one request and what the answer means ([`Service`]); everything about
//! when to send it again lives here, once, for every network sink.

use super::circuit::CircuitBreaker;
use super::retry::RequestConfig;
use crate::event::{BatchStatus, EventFinalizers};
use crate::internal_events::failures::{Rejected, RequestAbandoned, RequestRetried};
use crate::internal_events::{names, ComponentMetrics, Reporter};
use crate::topology::buffer::HeldEvents;
use metrics::Counter;
use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// What one attempt came to.
#[derive(Debug)]
pub enum Outcome {
    /// The destination took the events.
    Delivered,
    /// A transient failure: send again after a backoff (and at least `retry_after`).
    Retry {
        /// For the log: what happened.
        reason: String,
        /// What the server asked for (`Retry-After`).
        retry_after: Option<Duration>,
        /// Whether this says the destination is unwell (5xx, no answer) rather than
        /// busy (429): only the former moves the circuit breaker.
        unwell: bool,
    },
    /// The destination took some of the events and refused the rest for good
    /// (CloudWatch's `rejectedLogEventsInfo`, InfluxDB's partial writes). The refused ones
    /// are counted as discarded and never sent again; the request is not retried, and its
    /// sources see it as delivered, since nothing in it can ever be delivered later.
    Partial {
        /// How many of the request's events were refused.
        rejected: usize,
        /// For the log: which and why.
        reason: String,
        /// Which events were refused, where the destination says (or shows): written to
        /// the dead letters. Refused events it does not point at are only counted.
        refused: Vec<Refused>,
    },
    /// The destination refused the events for good (most 4xx): never sent again.
    Reject {
        /// For the log: the status and the response body.
        reason: String,
        /// The destination's status code, when it answered with one (for dead letters).
        status: Option<u16>,
    },
}

/// Events of a request the destination refused while taking the rest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// Their places in the request, in the order its events were encoded.
    pub events: std::ops::Range<usize>,
    /// Why, for the dead letter.
    pub reason: String,
    /// The status the destination answered with, if that tells anything.
    pub status: Option<u16>,
}

/// How a sink sends one request.
pub trait Service: Send + Sync + 'static {
    /// One request, ready to send as often as needed.
    type Request: Send + Sync + 'static;
    /// Sends it once.
    fn call(&self, request: &Self::Request) -> impl Future<Output = Outcome> + Send;
}

/// A request with what the driver needs to account for it.
pub struct Work<R> {
    /// Requests with the same key go out one at a time, in order.
    pub partition: String,
    /// The request.
    pub request: R,
    /// Events it carries.
    pub events: usize,
    /// Bytes it puts on the wire.
    pub bytes: usize,
    /// Who waits for the outcome.
    pub finalizers: EventFinalizers,
    /// The breaker of its destination.
    pub breaker: Arc<CircuitBreaker>,
    /// The events, when the sink writes refused ones to its dead letters.
    pub kept: Vec<crate::event::Event>,
}

/// Counters and reporters shared by a sink's requests.
#[derive(Clone)]
struct Accounting {
    metrics: ComponentMetrics,
    held: HeldEvents,
    retries: Counter,
    retried: Reporter<RequestRetried>,
    abandoned: Reporter<RequestAbandoned>,
    rejected: Reporter<Rejected>,
    dead_letter: Option<super::dead_letter::DeadLetters>,
}

/// The request scheduler of one sink.
pub struct Driver<S: Service> {
    service: Arc<S>,
    policy: Arc<RequestConfig>,
    accounting: Accounting,
    queues: HashMap<String, VecDeque<Work<S::Request>>>,
    busy: HashSet<String>,
    queued: usize,
    in_flight: JoinSet<()>,
    /// The partition of each request task, to free it however the task ends.
    tasks: HashMap<tokio::task::Id, String>,
}

impl<S: Service> Driver<S> {
    /// A driver sending through `service` with `policy`.
    /// `held` is the sink's count of events taken from its buffer; the driver takes
    /// each request's events off it when the request is finished.
    pub fn new(
        service: S,
        policy: RequestConfig,
        metrics: &ComponentMetrics,
        held: HeldEvents,
    ) -> Self {
        Self {
            service: Arc::new(service),
            accounting: Accounting {
                held,
                retries: metrics.counter(names::SINK_RETRIES),
                retried: metrics.reporter(),
                abandoned: metrics.reporter(),
                rejected: metrics.reporter(),
                metrics: metrics.clone(),
                dead_letter: None,
            },
            policy: Arc::new(policy),
            queues: HashMap::new(),
            busy: HashSet::new(),
            queued: 0,
            in_flight: JoinSet::new(),
            tasks: HashMap::new(),
        }
    }

    /// Writes the events of requests the destination refuses to `dead_letter`.
    pub fn with_dead_letters(
        mut self,
        dead_letter: Option<super::dead_letter::DeadLetters>,
    ) -> Self {
        self.accounting.dead_letter = dead_letter;
        self
    }

    /// Whether the sink may take more input. Requests waiting for their turn are
    /// bounded, so a slow destination pushes back through the buffers to the sources.
    pub fn has_room(&self) -> bool {
        self.queued < self.policy.concurrency.max(2)
    }

    /// Whether nothing is queued or in flight.
    pub fn is_idle(&self) -> bool {
        self.queued == 0 && self.in_flight.is_empty()
    }

    /// Queues a request behind the others of its partition and starts what may start.
    pub fn submit(&mut self, work: Work<S::Request>) {
        self.queues
            .entry(work.partition.clone())
            .or_default()
            .push_back(work);
        self.queued += 1;
        self.dispatch();
    }

    fn dispatch(&mut self) {
        if self.in_flight.len() >= self.policy.concurrency {
            return;
        }
        let ready: Vec<String> = self
            .queues
            .iter()
            .filter(|(k, q)| !q.is_empty() && !self.busy.contains(*k))
            .map(|(k, _)| k.clone())
            .take(self.policy.concurrency - self.in_flight.len())
            .collect();
        for key in ready {
            let Some(work) = self.queues.get_mut(&key).and_then(VecDeque::pop_front) else {
                continue;
            };
            if self.queues.get(&key).is_some_and(VecDeque::is_empty) {
                self.queues.remove(&key);
            }
            self.queued -= 1;
            self.busy.insert(key.clone());
            let (service, policy, acc) = (
                self.service.clone(),
                self.policy.clone(),
                self.accounting.clone(),
            );
            let handle = self.in_flight.spawn(async move {
                run(service, work, &policy, &acc).await;
            });
            self.tasks.insert(handle.id(), key);
        }
    }

    /// Waits for one request to finish (never returns while none is in flight) and
    /// starts the next ones.
    pub async fn next_done(&mut self) {
        let id = match self.in_flight.join_next_with_id().await {
            Some(Ok((id, ()))) => id,
            Some(Err(e)) => {
                tracing::error!(error = %e, "A request task failed.");
                e.id()
            }
            None => std::future::pending::<tokio::task::Id>().await,
        };
        if let Some(key) = self.tasks.remove(&id) {
            self.busy.remove(&key);
        }
        self.dispatch();
    }

    /// Sends everything queued and waits for all of it.
    pub async fn drain(&mut self) {
        while !self.is_idle() {
            self.next_done().await;
        }
    }
}

/// One request, attempted until it is delivered, rejected, or out of retries.
async fn run<S: Service>(
    service: Arc<S>,
    work: Work<S::Request>,
    policy: &RequestConfig,
    acc: &Accounting,
) {
    let mut retry: u32 = 0;
    let status = loop {
        work.breaker.admit().await;
        match service.call(&work.request).await {
            Outcome::Delivered => {
                work.breaker.record_delivered();
                acc.metrics.sent_events.increment(work.events as u64);
                acc.metrics.sent_bytes.increment(work.bytes as u64);
                break BatchStatus::Delivered;
            }
            Outcome::Partial {
                rejected,
                reason,
                refused,
            } => {
                work.breaker.record_delivered();
                let rejected = rejected.min(work.events);
                if let Some(d) = &acc.dead_letter {
                    let kept = &work.kept;
                    for r in &refused {
                        let end = r.events.end.min(kept.len());
                        let start = r.events.start.min(end);
                        d.write(&kept[start..end], &r.reason, r.status);
                    }
                }
                acc.rejected.emit_dropped(rejected as u64, || {
                    format!("The destination refused {rejected} of {} events; they are not sent again: {reason}", work.events)
                });
                acc.metrics
                    .sent_events
                    .increment((work.events - rejected) as u64);
                acc.metrics.sent_bytes.increment(work.bytes as u64);
                break BatchStatus::Delivered;
            }
            Outcome::Reject { reason, status } => {
                work.breaker.record_success();
                let n = work.events;
                if let Some(d) = &acc.dead_letter {
                    d.write(&work.kept, &reason, status);
                }
                acc.rejected.emit_dropped(n as u64, || {
                    format!("The destination refused {n} events; they are not sent again: {reason}")
                });
                break BatchStatus::Rejected;
            }
            Outcome::Retry {
                reason,
                retry_after,
                unwell,
            } => {
                work.breaker.record_trouble();
                if unwell {
                    work.breaker.record_failure();
                } else {
                    work.breaker.record_success();
                }
                if u64::from(retry) >= policy.retry_attempts {
                    let n = work.events;
                    acc.abandoned.emit_dropped(n as u64, || {
                        format!("Giving up on {n} events after {retry} retries: {reason}")
                    });
                    break BatchStatus::Errored;
                }
                retry = retry.saturating_add(1);
                let delay = policy.backoff(retry, retry_after);
                acc.retried
                    .emit(|| format!("{reason}; retry {retry} in {} ms", delay.as_millis()));
                acc.retries.increment(1);
                tokio::time::sleep(delay).await;
            }
        }
    };
    acc.held.sub(work.events as u64);
    work.finalizers.update_status(status);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::BatchNotifier;
    use crate::internal_events::{ComponentKind, ComponentLabels};
    use crate::sinks::util::circuit::CircuitBreakerConfig;
    use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
    use std::sync::Mutex;
    use tokio::time::Instant;

    /// A destination that answers from a script, per request, and records when each
    /// attempt started and how many were in flight, per partition and in all.
    #[derive(Default)]
    struct Fake {
        script: Mutex<HashMap<u32, VecDeque<Outcome>>>,
        attempts: Mutex<Vec<(String, u32, Instant)>>,
        in_flight: Mutex<HashMap<String, usize>>,
        peak_total: Mutex<usize>,
        peak_partition: Mutex<usize>,
    }

    impl Service for Arc<Fake> {
        type Request = (String, u32);

        async fn call(&self, (partition, seq): &(String, u32)) -> Outcome {
            self.attempts
                .lock()
                .unwrap()
                .push((partition.clone(), *seq, Instant::now()));
            {
                let mut f = self.in_flight.lock().unwrap();
                *f.entry(partition.clone()).or_default() += 1;
                let total: usize = f.values().sum();
                let mut pt = self.peak_total.lock().unwrap();
                *pt = (*pt).max(total);
                let mut pp = self.peak_partition.lock().unwrap();
                *pp = (*pp).max(f[partition]);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            *self.in_flight.lock().unwrap().get_mut(partition).unwrap() -= 1;
            self.script
                .lock()
                .unwrap()
                .get_mut(seq)
                .and_then(VecDeque::pop_front)
                .unwrap_or(Outcome::Delivered)
        }
    }

    fn retry(unwell: bool, retry_after: Option<u64>) -> Outcome {
        Outcome::Retry {
            reason: "scripted".into(),
            retry_after: retry_after.map(Duration::from_secs),
            unwell,
        }
    }

    struct Rig {
        driver: Driver<Arc<Fake>>,
        fake: Arc<Fake>,
        breaker: Arc<CircuitBreaker>,
        recorder: PrometheusRecorder,
    }

    fn rig(policy: RequestConfig, threshold: u32) -> Rig {
        let recorder = PrometheusBuilder::new().build_recorder();
        let fake = Arc::new(Fake::default());
        let (driver, breaker) = metrics::with_local_recorder(&recorder, || {
            // Reporters are shared per component ID: each test needs its own.
            static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let id = format!(
                "driver-{}",
                N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            );
            let m = ComponentMetrics::new(ComponentLabels {
                id: id.into(),
                kind: ComponentKind::Sink,
                type_name: "test",
            });
            let b = Arc::new(CircuitBreaker::new(
                &CircuitBreakerConfig {
                    failure_threshold: threshold,
                    probe_interval_secs: 5.0,
                },
                "dest".into(),
                "t".into(),
                m.gauge(crate::internal_events::names::SINK_CIRCUIT_OPEN),
            ));
            let d = Driver::new(fake.clone(), policy, &m, HeldEvents::default());
            (d, b)
        });
        Rig {
            driver,
            fake,
            breaker,
            recorder,
        }
    }

    impl Rig {
        fn submit(
            &mut self,
            partition: &str,
            seq: u32,
            events: usize,
        ) -> tokio::sync::oneshot::Receiver<BatchStatus> {
            let (notifier, rx) = BatchNotifier::new();
            let mut finalizers = EventFinalizers::default();
            finalizers.add(notifier);
            self.driver.submit(Work {
                partition: partition.into(),
                request: (partition.into(), seq),
                events,
                bytes: 100,
                finalizers,
                breaker: self.breaker.clone(),
                kept: Vec::new(),
            });
            rx
        }

        fn script(&self, seq: u32, outcomes: Vec<Outcome>) {
            self.fake
                .script
                .lock()
                .unwrap()
                .insert(seq, outcomes.into());
        }

        /// A counter's value for this sink, 0 when absent.
        fn counter(&self, name: &str, extra: &str) -> f64 {
            self.recorder
                .handle()
                .render()
                .lines()
                .filter(|l| l.starts_with(name) && l.contains(extra))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        }
    }

    fn policy(concurrency: usize, attempts: u64) -> RequestConfig {
        RequestConfig {
            concurrency,
            retry_attempts: attempts,
            retry_initial_backoff_secs: 1.0,
            retry_max_duration_secs: 10.0,
            ..RequestConfig::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_honour_retry_after_and_then_deliver() {
        let mut r = rig(policy(4, u64::MAX), 5);
        r.script(1, vec![retry(false, Some(7)), retry(true, None)]);
        let status = r.submit("p", 1, 10);
        r.driver.drain().await;
        assert_eq!(status.await.unwrap(), BatchStatus::Delivered);
        let attempts = r.fake.attempts.lock().unwrap().clone();
        assert_eq!(attempts.len(), 3);
        let gap = attempts[1].2 - attempts[0].2;
        assert!(
            gap >= Duration::from_secs(7),
            "Retry-After: 7 was not honoured: {gap:?}"
        );
        assert_eq!(r.counter(names::SENT_EVENTS, ""), 10.0);
        assert_eq!(r.counter(names::SINK_RETRIES, ""), 2.0);
        assert_eq!(r.counter(names::DISCARDED_EVENTS, ""), 0.0);
    }

    #[tokio::test(start_paused = true)]
    async fn partitions_that_come_and_go_leave_no_state_behind() {
        // A template that makes a new stream (partition) per hour, per host: once their
        // requests are answered, nothing of them stays.
        let mut r = rig(policy(4, u64::MAX), 5);
        for i in 0..1000u32 {
            drop(r.submit(&format!("stream-{i}"), i, 1));
            while !r.driver.has_room() {
                r.driver.next_done().await;
            }
        }
        r.driver.drain().await;
        let d = &r.driver;
        assert_eq!(
            (d.queues.len(), d.busy.len(), d.tasks.len(), d.queued),
            (0, 0, 0, 0)
        );
        assert_eq!(r.counter(names::SENT_EVENTS, ""), 1000.0);
    }

    #[tokio::test(start_paused = true)]
    async fn rejections_are_final_and_exhausted_retries_are_errors() {
        let mut r = rig(policy(4, 2), 5);
        r.script(
            1,
            vec![Outcome::Reject {
                reason: "400".into(),
                status: Some(400),
            }],
        );
        r.script(
            2,
            vec![retry(true, None), retry(true, None), retry(true, None)],
        );
        let rejected = r.submit("a", 1, 3);
        let errored = r.submit("b", 2, 4);
        r.driver.drain().await;
        assert_eq!(rejected.await.unwrap(), BatchStatus::Rejected);
        assert_eq!(errored.await.unwrap(), BatchStatus::Errored);
        let attempts = r.fake.attempts.lock().unwrap();
        assert_eq!(
            attempts.iter().filter(|a| a.1 == 1).count(),
            1,
            "a rejection is never retried"
        );
        assert_eq!(
            attempts.iter().filter(|a| a.1 == 2).count(),
            3,
            "one attempt and two retries"
        );
        assert_eq!(
            r.counter(names::DISCARDED_EVENTS, "intentional=\"false\""),
            7.0
        );
        assert_eq!(r.counter(names::ERRORS, "error_type=\"rejected\""), 1.0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_partial_success_counts_the_refused_events_once() {
        let mut r = rig(policy(4, u64::MAX), 5);
        r.script(
            1,
            vec![Outcome::Partial {
                rejected: 3,
                reason: "too old".into(),
                refused: Vec::new(),
            }],
        );
        let status = r.submit("p", 1, 10);
        r.driver.drain().await;
        assert_eq!(status.await.unwrap(), BatchStatus::Delivered);
        assert_eq!(r.fake.attempts.lock().unwrap().len(), 1, "never retried");
        assert_eq!(r.counter(names::SENT_EVENTS, ""), 7.0);
        assert_eq!(
            r.counter(names::DISCARDED_EVENTS, "intentional=\"false\""),
            3.0
        );
    }

    #[tokio::test(start_paused = true)]
    async fn one_request_per_partition_in_order_and_concurrency_across_them() {
        let mut r = rig(policy(3, u64::MAX), 5);
        let mut statuses = Vec::new();
        for seq in 0..20u32 {
            let partition = format!("p{}", seq % 5);
            if seq == 6 {
                r.script(seq, vec![retry(true, None)]);
            }
            statuses.push(r.submit(&partition, seq, 1));
            while !r.driver.has_room() {
                r.driver.next_done().await;
            }
        }
        r.driver.drain().await;
        for s in statuses {
            assert_eq!(s.await.unwrap(), BatchStatus::Delivered);
        }
        assert_eq!(*r.fake.peak_partition.lock().unwrap(), 1);
        let total = *r.fake.peak_total.lock().unwrap();
        assert!((2..=3).contains(&total), "peak in flight {total}");
        // Within each partition, requests started in submission order, even around a retry.
        let attempts = r.fake.attempts.lock().unwrap();
        for p in 0..5 {
            let seqs: Vec<u32> = attempts
                .iter()
                .filter(|a| a.0 == format!("p{p}"))
                .map(|a| a.1)
                .collect();
            let mut sorted = seqs.clone();
            sorted.sort();
            assert_eq!(seqs, sorted, "partition p{p}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_breaker_opens_and_only_probes_until_the_destination_answers() {
        let mut r = rig(
            RequestConfig {
                retry_initial_backoff_secs: 0.1,
                retry_max_duration_secs: 0.1,
                ..policy(1, u64::MAX)
            },
            2,
        );
        // Ten failures in a row, then success.
        r.script(1, (0..10).map(|_| retry(true, None)).collect());
        let status = r.submit("p", 1, 1);
        r.driver.drain().await;
        assert_eq!(status.await.unwrap(), BatchStatus::Delivered);
        let attempts = r.fake.attempts.lock().unwrap();
        assert_eq!(attempts.len(), 11);
        // After the second failure the circuit is open: attempts come one probe interval
        // (5 s) apart, not at the 0.1 s backoff.
        for w in attempts[2..].windows(2) {
            let gap = w[1].2 - w[0].2;
            assert!(gap >= Duration::from_secs(5), "{gap:?}");
        }
        assert!(!r.breaker.is_open());
        assert_eq!(r.counter(names::SINK_CIRCUIT_OPEN, ""), 0.0);
    }
}
