//! A circuit breaker per destination: after `failure_threshold` failures in a row the
//! sink stops sending there and lets one request through every `probe_interval_secs` to
//! see whether the destination is back. While open, requests wait (their events stay in
//! the buffers, which push back on the sources) instead of each retrying on its own, so
//! a dead endpoint is not hammered by every partition at once.

use metrics::Gauge;
use serde::Deserialize;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// `circuit_breaker` of a network sink.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CircuitBreakerConfig {
    /// Consecutive failed attempts that open the circuit. Default 5; 0 turns it off.
    #[serde(default = "default_threshold")]
    pub failure_threshold: u32,
    /// Time between probes while open. Default 5.
    #[serde(default = "default_probe_interval")]
    pub probe_interval_secs: f64,
}

impl Default for CircuitBreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: default_threshold(),
            probe_interval_secs: default_probe_interval(),
        }
    }
}

fn default_threshold() -> u32 {
    5
}
fn default_probe_interval() -> f64 {
    5.0
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One probe is out; everyone else waits for its result.
    Probing,
}

/// The breaker of one destination.
#[derive(Debug)]
pub struct CircuitBreaker {
    state: Mutex<State>,
    changed: Notify,
    threshold: u32,
    probe_interval: Duration,
    open_gauge: Gauge,
    destination: String,
    component_id: std::sync::Arc<str>,
    /// Set by any failed attempt, cleared (with one log line) by the next delivery, so
    /// the last line about a destination that recovered is not a stale error.
    troubled: std::sync::atomic::AtomicBool,
}

impl CircuitBreaker {
    /// A closed breaker for `destination` (shown in logs), reporting on `open_gauge`.
    pub fn new(
        config: &CircuitBreakerConfig,
        destination: String,
        component_id: std::sync::Arc<str>,
        open_gauge: Gauge,
    ) -> Self {
        open_gauge.set(0.0);
        Self {
            state: Mutex::new(State::Closed { failures: 0 }),
            changed: Notify::new(),
            threshold: config.failure_threshold,
            probe_interval: crate::seconds(config.probe_interval_secs.max(0.01)),
            open_gauge,
            destination,
            component_id,
            troubled: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until a request may be sent: at once while closed; while open, until the
    /// probe time (one waiter becomes the probe, the rest wait for its outcome).
    pub async fn admit(&self) {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            // Register before looking, so a change between the look and the wait wakes us.
            notified.as_mut().enable();
            let wait_until = {
                let mut s = self.lock();
                match *s {
                    State::Closed { .. } => return,
                    State::Open { until } if Instant::now() >= until => {
                        *s = State::Probing;
                        return;
                    }
                    State::Open { until } => Some(until),
                    State::Probing => None,
                }
            };
            match wait_until {
                Some(until) => tokio::select! {
                    _ = tokio::time::sleep_until(until) => {}
                    _ = &mut notified => {}
                },
                None => notified.await,
            }
        }
    }

    /// The destination answered (even with a rejection): close the circuit.
    pub fn record_success(&self) {
        let mut s = self.lock();
        let was_open = !matches!(*s, State::Closed { .. });
        *s = State::Closed { failures: 0 };
        drop(s);
        if was_open {
            self.open_gauge.set(0.0);
            tracing::info!(component_id = %self.component_id, destination = %self.destination, "Destination is back; circuit closed.");
            self.changed.notify_waiters();
        }
    }

    /// An attempt failed (unwell or busy): the next delivery will say it recovered.
    pub fn record_trouble(&self) {
        self.troubled
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// A request was delivered: closes the circuit and, after failures, says once that
    /// the destination takes requests again.
    pub fn record_delivered(&self) {
        self.record_success();
        if self
            .troubled
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::info!(component_id = %self.component_id, destination = %self.destination, "Destination accepts requests again.");
        }
    }

    /// The attempt failed in a way that says the destination is unwell.
    pub fn record_failure(&self) {
        if self.threshold == 0 {
            return;
        }
        let mut s = self.lock();
        let open = match *s {
            State::Closed { failures } if failures + 1 >= self.threshold => true,
            State::Closed { failures } => {
                *s = State::Closed {
                    failures: failures + 1,
                };
                false
            }
            State::Probing | State::Open { .. } => true,
        };
        if open {
            let first = matches!(*s, State::Closed { .. });
            *s = State::Open {
                until: Instant::now() + self.probe_interval,
            };
            drop(s);
            self.open_gauge.set(1.0);
            if first {
                tracing::warn!(
                    component_id = %self.component_id,
                    destination = %self.destination,
                    failures = self.threshold,
                    probe_interval_secs = self.probe_interval.as_secs_f64(),
                    "Destination keeps failing; circuit open: sending only a probe at each interval."
                );
            }
            self.changed.notify_waiters();
        }
    }

    /// Whether requests are held back right now.
    pub fn is_open(&self) -> bool {
        !matches!(*self.lock(), State::Closed { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(threshold: u32) -> CircuitBreaker {
        CircuitBreaker::new(
            &CircuitBreakerConfig {
                failure_threshold: threshold,
                probe_interval_secs: 0.2,
            },
            "test".into(),
            "t".into(),
            metrics::Gauge::noop(),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_the_threshold_and_lets_one_probe_through_per_interval() {
        let b = std::sync::Arc::new(breaker(3));
        b.record_failure();
        b.record_failure();
        assert!(!b.is_open());
        b.admit().await; // still closed
        b.record_failure();
        assert!(b.is_open());
        let start = Instant::now();
        b.admit().await; // becomes the probe after the interval
        assert!(start.elapsed() >= Duration::from_millis(200));
        // A second sender waits for the probe's outcome.
        let b2 = b.clone();
        let waiter = tokio::spawn(async move { b2.admit().await });
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!waiter.is_finished());
        b.record_success();
        waiter.await.unwrap();
        assert!(!b.is_open());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_reopens_for_another_interval() {
        let b = breaker(1);
        b.record_failure();
        b.admit().await;
        b.record_failure();
        let start = Instant::now();
        b.admit().await;
        assert!(start.elapsed() >= Duration::from_millis(200));
    }

    #[tokio::test]
    async fn threshold_zero_never_opens() {
        let b = breaker(0);
        for _ in 0..100 {
            b.record_failure();
        }
        assert!(!b.is_open());
    }
}
