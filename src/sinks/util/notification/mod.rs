//! What the Slack, Discord and email sinks share: a queue of notifications keyed by
//! their alert group, and one sender per destination that respects its rate limit.
//!
//! - **The newest state wins.** A notification whose group already waits unsent
//!   replaces it (keeping the older one's resolves and its place in line), so a
//!   destination that is slow or down receives each group's current state once, not
//!   every step it went through. Counted as `merged`.
//! - **Bounded.** At most `max_queued_groups` groups wait; a new group beyond that is
//!   turned away and counted (`dropped`), and the alert rules never wait for a chat
//!   service: the sink keeps reading its input while a message is in flight.
//! - **Rate limited.** A token bucket (`request.rate_limit_num` per
//!   `request.rate_limit_duration_secs`, 1/s by default as Slack and Discord document)
//!   spaces the messages. A 429 pauses the destination for its `Retry-After`, and the
//!   message goes back to the head of the line, merging what its group did meanwhile;
//!   it is not re-sent in a loop.
//! - **Refusals are final.** A 4xx other than 429 drops that message (`rejected`); a
//!   webhook that is gone (deleted, revoked) is not called again until sluice is
//!   restarted or reloaded, as Discord asks.
//!
//! One message is in flight per sink, so order is kept.

pub mod view;

use crate::config::field::FieldIssue;
use crate::event::{BatchStatus, EventFinalizers};
use crate::internal_events::failures::{
    NotificationDropped, Rejected, RequestAbandoned, RequestRetried,
};
use crate::internal_events::{names, ComponentMetrics};
use crate::seconds;
use crate::sinks::util::retry::RequestConfig;
use crate::topology::buffer::BufferReceiver;
use metrics::Counter;
use serde::Deserialize;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
pub use view::Notification;

/// `request` of a notification sink: Vector's request options that make sense for one
/// message at a time.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NotifyRequestConfig {
    /// Longest wait for one answer; a timeout is retried. Default 30.
    #[serde(default = "default_timeout")]
    pub timeout_secs: f64,
    /// Messages allowed per `rate_limit_duration_secs`. Default 1 (Slack's and Discord's
    /// documented webhook rate).
    #[serde(default = "default_rate_num")]
    pub rate_limit_num: u64,
    /// The window of `rate_limit_num`, in seconds. Default 1.
    #[serde(default = "default_rate_duration")]
    pub rate_limit_duration_secs: f64,
    /// Attempts after the first before a message is given up. Default unlimited: a
    /// group's message waits (merging newer states) until the destination is back.
    #[serde(default = "default_attempts")]
    pub retry_attempts: u64,
    /// The first backoff after a failure. Default 1.
    #[serde(default = "default_initial_backoff")]
    pub retry_initial_backoff_secs: f64,
    /// The longest backoff. Default 30; a longer `Retry-After` is still honoured.
    #[serde(default = "default_max_backoff")]
    pub retry_max_duration_secs: f64,
}

fn default_timeout() -> f64 {
    30.0
}
fn default_rate_num() -> u64 {
    1
}
fn default_rate_duration() -> f64 {
    1.0
}
fn default_attempts() -> u64 {
    u64::MAX
}
fn default_initial_backoff() -> f64 {
    1.0
}
fn default_max_backoff() -> f64 {
    30.0
}
fn default_max_queued() -> usize {
    1000
}

impl Default for NotifyRequestConfig {
    fn default() -> Self {
        Self {
            timeout_secs: default_timeout(),
            rate_limit_num: default_rate_num(),
            rate_limit_duration_secs: default_rate_duration(),
            retry_attempts: default_attempts(),
            retry_initial_backoff_secs: default_initial_backoff(),
            retry_max_duration_secs: default_max_backoff(),
        }
    }
}

impl NotifyRequestConfig {
    /// The retry options in the shape the shared backoff takes.
    fn retry(&self) -> RequestConfig {
        RequestConfig {
            timeout_secs: self.timeout_secs,
            retry_attempts: self.retry_attempts,
            retry_initial_backoff_secs: self.retry_initial_backoff_secs,
            retry_max_duration_secs: self.retry_max_duration_secs,
            ..RequestConfig::default()
        }
    }

    /// The per-attempt timeout.
    pub fn timeout(&self) -> Duration {
        seconds(self.timeout_secs)
    }

    /// Range checks under `request`.
    pub fn issues(&self) -> Vec<FieldIssue> {
        let mut issues = self.retry().issues("request");
        if self.rate_limit_num == 0 {
            issues.push(FieldIssue::new(
                "request.rate_limit_num",
                "must be at least 1",
            ));
        }
        if !(self.rate_limit_duration_secs > 0.0 && self.rate_limit_duration_secs.is_finite()) {
            issues.push(FieldIssue::new(
                "request.rate_limit_duration_secs",
                "must be a positive number of seconds",
            ));
        }
        issues
    }
}

/// The options every notification sink has besides its destination.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Groups whose newest notification may wait unsent. Default 1000.
    #[serde(default = "default_max_queued")]
    pub max_groups: usize,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            max_groups: default_max_queued(),
        }
    }
}

/// What became of one attempt.
#[derive(Debug)]
pub enum Delivery {
    /// Accepted. `pause` when the destination said its allowance is used up (Discord's
    /// `X-RateLimit-Remaining: 0`) and when it refills.
    Sent {
        /// Wait this long before the next message.
        pause: Option<Duration>,
    },
    /// 429: wait `after`, then send the group's newest state.
    RateLimited {
        /// How long the destination asked to wait.
        after: Duration,
    },
    /// A failure worth another attempt (5xx, timeout, connection).
    Retry {
        /// For the log.
        reason: String,
        /// What the destination asked, if anything.
        after: Option<Duration>,
    },
    /// Refused for good (a 4xx): this message is dropped.
    Rejected {
        /// For the log.
        reason: String,
    },
    /// The destination no longer exists (a deleted webhook): nothing more is sent.
    Gone {
        /// For the log.
        reason: String,
    },
}

/// Renders and sends one notification to the sink's destination.
pub trait Deliver: Send + Sync + 'static {
    /// One attempt.
    fn deliver(&self, n: &Notification) -> impl Future<Output = Delivery> + Send;
}

/// A group's newest unsent state.
struct Pending {
    n: Notification,
    finalizers: EventFinalizers,
    events: u64,
    attempts: u32,
    not_before: Instant,
}

impl Pending {
    /// `self` is newer: takes `older`'s resolves, finalizers and backoff.
    fn absorb(&mut self, older: Pending) {
        self.n.merge_older(older.n);
        self.finalizers.merge(older.finalizers);
        self.events += older.events;
        self.not_before = self.not_before.max(older.not_before);
        self.attempts = self.attempts.max(older.attempts);
    }

    fn finish(self, status: BatchStatus) {
        self.finalizers.update_status(status);
    }
}

/// Unsent groups in line, by key.
#[derive(Default)]
struct Queue {
    order: VecDeque<String>,
    pending: HashMap<String, Pending>,
    next_plain: u64,
}

impl Queue {
    fn len(&self) -> usize {
        self.order.len()
    }

    fn head_ready_at(&self) -> Option<Instant> {
        let key = self.order.front()?;
        self.pending.get(key).map(|p| p.not_before)
    }

    fn pop(&mut self) -> Option<(String, Pending)> {
        let key = self.order.pop_front()?;
        let p = self.pending.remove(&key)?;
        Some((key, p))
    }

    fn key_of(&mut self, n: &Notification) -> String {
        match &n.key {
            Some(k) => k.clone(),
            None => {
                // Plain events are never merged: each gets a key nothing else has.
                self.next_plain += 1;
                format!("\u{0}plain-{}", self.next_plain)
            }
        }
    }
}

struct Counters {
    sent: Counter,
    rate_limited: Counter,
    retried: Counter,
    rejected: Counter,
    failed: Counter,
    dropped: Counter,
    merged: Counter,
}

impl Counters {
    fn new(m: &ComponentMetrics) -> Self {
        let c = |s: &str| m.counter_with(names::NOTIFICATIONS, "status", s.to_string());
        Self {
            sent: c("sent"),
            rate_limited: c("rate_limited"),
            retried: c("retried"),
            rejected: c("rejected"),
            failed: c("failed"),
            dropped: c("dropped"),
            merged: c("merged"),
        }
    }
}

/// A token bucket: `num` messages per `per`, bursting up to `num`.
struct Bucket {
    tokens: f64,
    capacity: f64,
    per_sec: f64,
    last: Instant,
}

impl Bucket {
    fn new(num: u64, per: Duration, now: Instant) -> Self {
        let capacity = num.max(1) as f64;
        Self {
            tokens: capacity,
            capacity,
            per_sec: capacity / per.as_secs_f64().max(1e-3),
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.per_sec).min(self.capacity);
        self.last = now;
    }

    fn ready_at(&mut self, now: Instant) -> Instant {
        self.refill(now);
        if self.tokens >= 1.0 {
            now
        } else {
            now + Duration::from_secs_f64((1.0 - self.tokens) / self.per_sec)
        }
    }

    fn take(&mut self, now: Instant) {
        self.refill(now);
        self.tokens -= 1.0;
    }

    /// After a 429 the allowance is spent, whatever the bucket thought.
    fn empty(&mut self, now: Instant) {
        self.refill(now);
        self.tokens = self.tokens.min(0.0);
    }
}

type InFlight = Pin<Box<dyn Future<Output = (String, Pending, Delivery)> + Send>>;

/// Runs a notification sink until its input closes and everything queued is sent (or
/// given up).
pub async fn run<D: Deliver>(
    deliver: D,
    request: NotifyRequestConfig,
    queue_config: QueueConfig,
    mut input: BufferReceiver,
    metrics: ComponentMetrics,
    what: &'static str,
) {
    let deliver = Arc::new(deliver);
    let counters = Counters::new(&metrics);
    let dropped = metrics.reporter::<NotificationDropped>();
    let rejected = metrics.reporter::<Rejected>();
    let retried = metrics.reporter::<RequestRetried>();
    let abandoned = metrics.reporter::<RequestAbandoned>();
    let retry = request.retry();
    let mut bucket = Bucket::new(
        request.rate_limit_num,
        seconds(request.rate_limit_duration_secs),
        Instant::now(),
    );
    let mut queue = Queue::default();
    let mut paused_until = Instant::now();
    let mut gone: Option<String> = None;
    let mut in_flight: Option<InFlight> = None;
    let mut input_open = true;
    loop {
        if !input_open && in_flight.is_none() && queue.len() == 0 {
            break;
        }
        let now = Instant::now();
        let wake = match (in_flight.is_none(), queue.head_ready_at()) {
            (true, Some(head)) => Some(head.max(paused_until).max(bucket.ready_at(now))),
            _ => None,
        };
        tokio::select! {
            batch = input.recv(), if input_open => {
                let Some(mut batch) = batch else {
                    input_open = false;
                    continue;
                };
                for e in batch.iter_mut() {
                    let n = Notification::from_event(e);
                    let p = Pending {
                        n,
                        finalizers: e.take_finalizers(),
                        events: 1,
                        attempts: 0,
                        not_before: Instant::now(),
                    };
                    if let Some(reason) = &gone {
                        counters.rejected.increment(1);
                        rejected.emit_dropped(1, || format!("{what}: not sent, the destination is gone ({reason}); fix `url` and reload"));
                        p.finish(BatchStatus::Rejected);
                        continue;
                    }
                    let key = queue.key_of(&p.n);
                    match queue.pending.remove(&key) {
                        Some(older) => {
                            let mut p = p;
                            p.absorb(older);
                            counters.merged.increment(1);
                            queue.pending.insert(key, p);
                        }
                        None if queue.len() >= queue_config.max_groups => {
                            counters.dropped.increment(1);
                            dropped.emit_dropped(1, || format!("{what}: {} groups already wait to be sent (queue.max_groups); a notification of a new group is dropped", queue_config.max_groups));
                            p.finish(BatchStatus::Errored);
                        }
                        None => {
                            queue.order.push_back(key.clone());
                            queue.pending.insert(key, p);
                        }
                    }
                }
            }
            done = async {
                match in_flight.as_mut() {
                    Some(f) => f.await,
                    None => std::future::pending().await,
                }
            }, if in_flight.is_some() => {
                in_flight = None;
                let (key, mut p, outcome) = done;
                let now = Instant::now();
                let requeue = |queue: &mut Queue, mut p: Pending| {
                    // A newer state of the group arrived meanwhile: it goes out next, with
                    // what this one told.
                    match queue.pending.remove(&key) {
                        Some(mut newer) => {
                            counters.merged.increment(1);
                            newer.absorb(p);
                            queue.pending.insert(key.clone(), newer);
                            queue.order.retain(|k| k != &key);
                        }
                        None => {
                            p.not_before = p.not_before.max(now);
                            queue.pending.insert(key.clone(), p);
                        }
                    }
                    queue.order.push_front(key.clone());
                };
                match outcome {
                    Delivery::Sent { pause } => {
                        counters.sent.increment(1);
                        metrics.sent_events.increment(p.events);
                        if let Some(d) = pause {
                            paused_until = paused_until.max(now + d);
                        }
                        p.finish(BatchStatus::Delivered);
                    }
                    Delivery::RateLimited { after } => {
                        counters.rate_limited.increment(1);
                        bucket.empty(now);
                        paused_until = paused_until.max(now + after);
                        tracing::debug!(component_id = %metrics.labels.id, wait = ?after, "{what} answered 429: waiting as asked");
                        requeue(&mut queue, p);
                    }
                    Delivery::Retry { reason, after } => {
                        p.attempts += 1;
                        if u64::from(p.attempts) > retry.retry_attempts {
                            counters.failed.increment(1);
                            let events = p.events;
                            abandoned.emit_dropped(events, || format!("{what}: giving up after {} attempts: {reason}", p.attempts));
                            p.finish(BatchStatus::Errored);
                        } else {
                            counters.retried.increment(1);
                            let wait = retry.backoff(p.attempts, after);
                            retried.emit(|| format!("{what}: {reason}; trying again in {wait:.1?}"));
                            p.not_before = now + wait;
                            requeue(&mut queue, p);
                        }
                    }
                    Delivery::Rejected { reason } => {
                        counters.rejected.increment(1);
                        let events = p.events;
                        rejected.emit_dropped(events, || format!("{what} refused a notification ({}): {reason}", p.n.title()));
                        p.finish(BatchStatus::Rejected);
                    }
                    Delivery::Gone { reason } => {
                        counters.rejected.increment(1);
                        let events = p.events;
                        tracing::error!(component_id = %metrics.labels.id, "{what}: the destination is gone ({reason}); nothing more is sent to it until `url` is fixed and sluice reloaded or restarted");
                        rejected.emit_dropped(events, || format!("{what} refused a notification: {reason}"));
                        p.finish(BatchStatus::Rejected);
                        while let Some((_, rest)) = queue.pop() {
                            counters.rejected.increment(1);
                            rejected.emit_dropped(rest.events, || format!("{what}: not sent, the destination is gone"));
                            rest.finish(BatchStatus::Rejected);
                        }
                        gone = Some(reason);
                    }
                }
            }
            _ = sleep_until_opt(wake), if wake.is_some() => {
                let Some((key, p)) = queue.pop() else { continue };
                bucket.take(Instant::now());
                let d = deliver.clone();
                in_flight = Some(Box::pin(async move {
                    let outcome = d.deliver(&p.n).await;
                    (key, p, outcome)
                }));
            }
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Reads a `Retry-After` header, or the JSON body's float `retry_after` (Discord's, more
/// precise) when there is one; `fallback` when neither says.
pub fn retry_after(headers: &hyper::HeaderMap, body: &[u8], fallback: Duration) -> Duration {
    let from_body = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("retry_after").and_then(serde_json::Value::as_f64))
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(seconds);
    from_body
        .or_else(|| {
            headers
                .get(hyper::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(crate::sinks::util::retry::parse_retry_after)
        })
        .unwrap_or(fallback)
}

/// The HTTP side of the webhook sinks: the client, the URL (a secret: the URL is the
/// credential, so it is never logged) and what their answers mean.
pub struct Webhook {
    /// The shared client (TLS, proxy, timeout, client metrics).
    pub client: crate::sinks::util::http_client::HttpClient,
    /// Where to post.
    pub uri: hyper::Uri,
    /// Answers that mean the webhook no longer exists.
    pub gone: &'static [u16],
    /// The service's name in messages (`Slack`, `Discord`).
    pub service: &'static str,
}

impl Webhook {
    /// The webhook of one sink: its client (TLS, the sink's proxy, the request timeout)
    /// and `uri`.
    pub fn build(
        uri: hyper::Uri,
        tls: &crate::http::ClientTlsConfig,
        request: &NotifyRequestConfig,
        cx: &crate::topology::component::SinkContext,
        gone: &'static [u16],
        service: &'static str,
    ) -> Result<Self, crate::topology::component::BuildError> {
        let client = crate::sinks::util::http_client::HttpClient::new(
            tls,
            &cx.proxy,
            request.timeout(),
            &cx.metrics,
        )
        .map_err(crate::topology::component::BuildError::Other)?;
        Ok(Self {
            client,
            uri,
            gone,
            service,
        })
    }

    /// What every webhook sink checks: its URL (as `uri` came out), `request`, `tls`.
    pub fn issues(
        uri: Result<hyper::Uri, FieldIssue>,
        request: &NotifyRequestConfig,
        tls: &crate::http::ClientTlsConfig,
    ) -> Vec<FieldIssue> {
        let mut issues: Vec<FieldIssue> = uri.err().into_iter().collect();
        issues.extend(request.issues());
        issues.extend(tls.issues());
        issues
    }

    /// Parses `url` without ever putting it in an error.
    pub fn parse_url(url: &str) -> Result<hyper::Uri, FieldIssue> {
        crate::sinks::util::http_client::parse_uri(url).map_err(|_| {
            FieldIssue::new(
                "url",
                "must be an http:// or https:// URL with a host (the value is a secret and not shown)",
            )
        })
    }

    /// Posts `body` as JSON once and classifies the answer.
    pub async fn post(&self, body: Vec<u8>) -> Delivery {
        let mut req = hyper::Request::new(http_body_util::Full::new(bytes::Bytes::from(body)));
        *req.method_mut() = hyper::Method::POST;
        *req.uri_mut() = self.uri.clone();
        req.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        );
        req.headers_mut().insert(
            hyper::header::USER_AGENT,
            hyper::header::HeaderValue::from_static(concat!("sluice/", env!("CARGO_PKG_VERSION"))),
        );
        match self.client.send(req).await {
            Ok(resp) => self.classify(resp.status().as_u16(), resp.headers(), resp.body()),
            Err(e) => Delivery::Retry {
                reason: format!("{} webhook: {e}", self.service),
                after: None,
            },
        }
    }

    /// 2xx sent (pausing when the allowance is used up), 429 rate limited, `gone`
    /// statuses gone, 408 and 5xx retried, other 4xx rejected.
    pub fn classify(&self, status: u16, headers: &hyper::HeaderMap, body: &[u8]) -> Delivery {
        let header_secs = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(seconds)
        };
        if (200..300).contains(&status) {
            let spent = headers
                .get("x-ratelimit-remaining")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim() == "0");
            return Delivery::Sent {
                pause: if spent {
                    header_secs("x-ratelimit-reset-after")
                } else {
                    None
                },
            };
        }
        let reason = format!(
            "{} answered {status}: {}",
            self.service,
            crate::sinks::util::http_client::body_excerpt(body, 300)
        );
        if status == 429 {
            return Delivery::RateLimited {
                after: retry_after(headers, body, Duration::from_secs(1)),
            };
        }
        if self.gone.contains(&status) {
            return Delivery::Gone { reason };
        }
        if status == 408 || status >= 500 {
            return Delivery::Retry {
                reason,
                after: headers
                    .get(hyper::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(crate::sinks::util::retry::parse_retry_after),
            };
        }
        Delivery::Rejected { reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_spaces_messages_after_its_burst() {
        let t0 = Instant::now();
        let mut b = Bucket::new(2, Duration::from_secs(1), t0);
        assert_eq!(b.ready_at(t0), t0);
        b.take(t0);
        b.take(t0);
        let next = b.ready_at(t0);
        assert!(next >= t0 + Duration::from_millis(499), "{next:?}");
        assert!(next <= t0 + Duration::from_millis(501));
        b.empty(t0 + Duration::from_secs(5));
        assert!(b.ready_at(t0 + Duration::from_secs(5)) > t0 + Duration::from_secs(5));
    }

    #[test]
    fn retry_after_prefers_discords_float_body() {
        let mut h = hyper::HeaderMap::new();
        h.insert(hyper::header::RETRY_AFTER, "3".parse().unwrap());
        let body =
            br#"{"message": "You are being rate limited.", "retry_after": 2.5, "global": false}"#;
        assert_eq!(
            retry_after(&h, body, Duration::ZERO),
            Duration::from_millis(2500)
        );
        assert_eq!(retry_after(&h, b"", Duration::ZERO), Duration::from_secs(3));
        assert_eq!(
            retry_after(&hyper::HeaderMap::new(), b"x", Duration::from_secs(1)),
            Duration::from_secs(1)
        );
    }
}
