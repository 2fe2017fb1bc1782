//! The loop every batching network sink runs, written once. A sink supplies a
//! [`RequestBuilder`] (which partition an event belongs to, how it is encoded, how a
//! closed payload becomes a request) and a [`Service`] (send one request, say what the
//! answer means); the runner owns everything else: taking batches from the buffer,
//! holding and batching events per partition (with per-event overhead and framing),
//! compression, one circuit breaker per destination, the [`Driver`] with its retries,
//! counting each event exactly once as sent or discarded, and draining at shutdown.

use super::batch::{BatchLimits, Batcher, Framing, Payload};
use super::circuit::{CircuitBreaker, CircuitBreakerConfig};
use super::driver::{Driver, Service, Work};
use super::encoding::Compression;
use super::retry::RequestConfig;
use crate::event::{Batch, BatchStatus, Event};
use crate::internal_events::{names, ComponentMetrics, ErrorReporter};
use crate::topology::buffer::HeldEvents;
use crate::topology::component::{SinkContext, Task};
use crate::topology::sleep_until;
use bytes::Bytes;
use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

/// Why an event or a payload can never be sent: counted under `error_type`, logged
/// (rate-limited) with `reason`, its events discarded and their sources told so.
#[derive(Debug)]
pub struct Unsendable {
    /// The `error_type` label, e.g. `template`, `invalid_uri`, `encode`.
    pub error_type: &'static str,
    /// What went wrong, for the log.
    pub reason: String,
}

impl Unsendable {
    /// An unsendable event or payload.
    pub fn new(error_type: &'static str, reason: impl Into<String>) -> Self {
        Self {
            error_type,
            reason: reason.into(),
        }
    }
}

/// A request ready for the driver, with the destination its circuit breaker guards.
pub struct Built<R> {
    /// The request.
    pub request: R,
    /// One breaker per destination (for HTTP, the URI's authority); shown in logs, so
    /// it must carry no credentials.
    pub destination: String,
}

/// How a sink turns events into requests.
pub trait RequestBuilder: Send + 'static {
    /// What the sink's [`Service`] sends.
    type Request: Send + Sync + 'static;

    /// Writes the partition of `event` into `key` (empty on entry). Events of one
    /// partition are batched together and their requests go out one at a time, in order.
    /// The default puts every event in one partition.
    fn partition(&mut self, _event: &Event, _key: &mut String) -> Result<(), Unsendable> {
        Ok(())
    }

    /// A key the events of one payload are sorted by before it is sent, for
    /// destinations that need an order (CloudWatch Logs: chronological). The default,
    /// `None`, keeps arrival order at no cost.
    fn order_key(&self, _event: &Event) -> Option<i64> {
        None
    }

    /// Appends one event to a payload. On error, whatever was appended is taken back.
    fn encode(&mut self, event: &Event, out: &mut Vec<u8>) -> Result<(), Unsendable>;

    /// Rewrites a closed payload before it is compressed, for a destination that packs
    /// events together (InfluxDB: metrics of one series and time as one line). The
    /// default leaves it as it is.
    fn finish(&mut self, _partition: &str, body: Vec<u8>) -> Vec<u8> {
        body
    }

    /// Makes a closed, compressed payload of `partition`, holding `events` events, into a
    /// request.
    fn build(
        &mut self,
        partition: &str,
        body: Bytes,
        events: usize,
    ) -> Result<Built<Self::Request>, Unsendable>;
}

/// The options every batching sink shares, resolved.
#[derive(Clone, Debug)]
pub struct RunnerConfig {
    /// When a payload closes.
    pub batch: BatchLimits,
    /// How events sit in a payload.
    pub framing: Framing,
    /// Applied to each closed payload.
    pub compression: Compression,
    /// Timeouts, concurrency, retries.
    pub request: RequestConfig,
    /// When to stop sending to a failing destination.
    pub circuit_breaker: CircuitBreakerConfig,
}

/// Runs a sink: see the module documentation.
pub struct SinkRunner<B: RequestBuilder, S: Service<Request = B::Request>> {
    builder: B,
    driver: Driver<S>,
    batcher: Batcher,
    compression: Compression,
    breakers: HashMap<String, Arc<CircuitBreaker>>,
    breaker_config: CircuitBreakerConfig,
    circuit_gauge: metrics::Gauge,
    metrics: ComponentMetrics,
    held: HeldEvents,
    reporters: Vec<ErrorReporter>,
    /// Where refused events go, when the sink has `dead_letter`.
    dead_letter: Option<super::dead_letter::DeadLetters>,
}

impl<B: RequestBuilder, S: Service<Request = B::Request>> SinkRunner<B, S> {
    /// A runner for the sink of `cx`, sending through `service`.
    pub fn new(config: RunnerConfig, builder: B, service: S, cx: &SinkContext) -> Self {
        let held = cx.input.held();
        Self {
            builder,
            driver: Driver::new(service, config.request, &cx.metrics, held.clone())
                .with_dead_letters(cx.dead_letter.clone()),
            batcher: Batcher::new(config.batch, config.framing),
            compression: config.compression,
            breakers: HashMap::new(),
            breaker_config: config.circuit_breaker,
            circuit_gauge: cx.metrics.gauge(names::SINK_CIRCUIT_OPEN),
            metrics: cx.metrics.clone(),
            held,
            reporters: Vec::new(),
            dead_letter: cx.dead_letter.clone(),
        }
    }

    /// The sink's task: runs until the input closes, then sends what it holds and
    /// waits for every answer.
    pub fn run(self, cx: SinkContext) -> Task {
        Box::pin(self.run_inner(cx))
    }

    async fn run_inner(mut self, mut cx: SinkContext) {
        let mut ready: Vec<Payload> = Vec::new();
        let mut key = String::new();
        loop {
            let deadline = self.batcher.next_deadline();
            tokio::select! {
                b = cx.input.recv(), if self.driver.has_room() => match b {
                    Some(batch) => self.add(batch, &mut key, &mut ready),
                    None => break,
                },
                _ = sleep_until(deadline), if deadline.is_some() => self.batcher.take_due(false, &mut ready),
                _ = self.driver.next_done(), if !self.driver.is_idle() => {}
            }
            for p in ready.drain(..) {
                self.submit(p);
            }
        }
        self.batcher.take_due(true, &mut ready);
        for p in ready.drain(..) {
            self.submit(p);
        }
        self.driver.drain().await;
        self.circuit_gauge.set(0.0);
    }

    fn reporter(&mut self, error_type: &'static str) -> &ErrorReporter {
        let i = match self
            .reporters
            .iter()
            .position(|r| r.error_type() == error_type)
        {
            Some(i) => i,
            None => {
                self.reporters.push(self.metrics.error_reporter(error_type));
                self.reporters.len() - 1
            }
        };
        &self.reporters[i]
    }

    /// Counts, logs and rejects `n` events that can never be sent; writes `events` (the
    /// ones at hand) to the dead letters.
    fn give_up(&mut self, n: usize, why: Unsendable, events: &[Event]) {
        let Unsendable { error_type, reason } = why;
        if let Some(d) = &self.dead_letter {
            d.write(events, &reason, None);
        }
        self.reporter(error_type)
            .report(1, || format!("Dropped {n} events: {reason}"));
        self.metrics.discarded_unintentional.increment(n as u64);
    }

    fn add(&mut self, batch: Batch, key: &mut String, ready: &mut Vec<Payload>) {
        let mut taken = 0u64;
        let keep = self.dead_letter.is_some();
        for mut e in batch {
            key.clear();
            if let Err(why) = self.builder.partition(&e, key) {
                e.take_finalizers().update_status(BatchStatus::Rejected);
                self.give_up(1, why, std::slice::from_ref(&e));
                continue;
            }
            let finalizers = e.take_finalizers();
            let order = self.builder.order_key(&e);
            let builder = &mut self.builder;
            let pushed = if keep {
                self.batcher.push_keeping(
                    key,
                    order,
                    |event, out| builder.encode(event, out),
                    finalizers,
                    e,
                    ready,
                )
            } else {
                let event: &Event = &e;
                self.batcher
                    .push_ordered(
                        key,
                        order,
                        |out| builder.encode(event, out),
                        finalizers,
                        ready,
                    )
                    .map_err(|(why, f)| (why, f, None))
            };
            match pushed {
                Ok(()) => taken += 1,
                Err((why, finalizers, e)) => {
                    finalizers.update_status(BatchStatus::Rejected);
                    let events: Vec<Event> = e.into_iter().collect();
                    self.give_up(1, why, &events);
                }
            }
        }
        self.held.add(taken);
    }

    fn submit(&mut self, mut p: Payload) {
        p.body = self.builder.finish(&p.key, std::mem::take(&mut p.body));
        let body = match self.compression {
            Compression::None => Bytes::from(p.body),
            Compression::Gzip => {
                let mut enc = flate2::write::GzEncoder::new(
                    Vec::with_capacity(p.body.len() / 4),
                    flate2::Compression::fast(),
                );
                // Writing into a Vec cannot fail.
                let _ = enc.write_all(&p.body);
                Bytes::from(enc.finish().unwrap_or_default())
            }
        };
        let bytes = body.len();
        let built = match self.builder.build(&p.key, body, p.events) {
            Ok(b) => b,
            Err(why) => {
                self.held.sub(p.events as u64);
                p.finalizers.update_status(BatchStatus::Rejected);
                let kept = std::mem::take(&mut p.kept);
                self.give_up(p.events, why, &kept);
                return;
            }
        };
        let breaker = match self.breakers.get(&built.destination) {
            Some(b) => b.clone(),
            None => {
                let b = Arc::new(CircuitBreaker::new(
                    &self.breaker_config,
                    built.destination.clone(),
                    self.metrics.labels.id.clone(),
                    self.circuit_gauge.clone(),
                ));
                self.breakers.insert(built.destination, b.clone());
                b
            }
        };
        self.driver.submit(Work {
            partition: p.key,
            bytes,
            request: built.request,
            events: p.events,
            finalizers: p.finalizers,
            breaker,
            kept: p.kept,
        });
    }
}
