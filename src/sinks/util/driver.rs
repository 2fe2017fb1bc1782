//! Runs a sink's requests: up to `request.concurrency` at once, at most one per partition
//! so events of one partition arrive in order and a batch is never in flight twice;
//! each request retried by the [`RequestConfig`] policy behind its destination's
//! [`CircuitBreaker`], then its events' finalizers told the outcome. A sink only says
//! how to send one request and what the answer means ([`Service`]); everything about
//! when to send it again lives here, once, for every network sink.

use super::circuit::CircuitBreaker;
use super::retry::RequestConfig;
use crate::event::{BatchStatus, EventFinalizers};
use crate::internal_events::{ComponentMetrics, ErrorReporter};
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
    /// The destination refused the events for good (most 4xx): never sent again.
    Reject {
        /// For the log: the status and the response body.
        reason: String,
    },
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
}

/// Counters and reporters shared by a sink's requests.
#[derive(Clone)]
struct Accounting {
    metrics: ComponentMetrics,
    held: HeldEvents,
    retries: Counter,
    failed: ErrorReporter,
    rejected: ErrorReporter,
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
                retries: metrics.counter("sluice_http_client_retries_total"),
                failed: metrics.error_reporter("request_failed"),
                rejected: metrics.error_reporter("rejected"),
                metrics: metrics.clone(),
            },
            policy: Arc::new(policy),
            queues: HashMap::new(),
            busy: HashSet::new(),
            queued: 0,
            in_flight: JoinSet::new(),
            tasks: HashMap::new(),
        }
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
                work.breaker.record_success();
                acc.metrics.sent_events.increment(work.events as u64);
                acc.metrics.sent_bytes.increment(work.bytes as u64);
                break BatchStatus::Delivered;
            }
            Outcome::Reject { reason } => {
                work.breaker.record_success();
                let n = work.events;
                acc.rejected.report(1, || {
                    format!("The destination refused {n} events; they are not sent again: {reason}")
                });
                acc.metrics.discarded_unintentional.increment(n as u64);
                break BatchStatus::Rejected;
            }
            Outcome::Retry {
                reason,
                retry_after,
                unwell,
            } => {
                if unwell {
                    work.breaker.record_failure();
                } else {
                    work.breaker.record_success();
                }
                if u64::from(retry) >= policy.retry_attempts {
                    let n = work.events;
                    acc.failed.report(1, || {
                        format!("Giving up on {n} events after {retry} retries: {reason}")
                    });
                    acc.metrics.discarded_unintentional.increment(n as u64);
                    break BatchStatus::Errored;
                }
                retry = retry.saturating_add(1);
                let delay = policy.backoff(retry, retry_after);
                acc.failed.report(1, || {
                    format!("{reason}; retry {retry} in {} ms", delay.as_millis())
                });
                acc.retries.increment(1);
                tokio::time::sleep(delay).await;
            }
        }
    };
    acc.held.sub(work.events as u64);
    work.finalizers.update_status(status);
}
