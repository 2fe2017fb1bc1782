//! When and how soon a failed request is sent again: exponential backoff with full jitter
//! (so many senders that failed together do not come back together), never shorter than
//! what the server asked for in `Retry-After`, and a limit on attempts. Vector's option
//! names and meanings (`request.retry_attempts`, `retry_initial_backoff_secs`,
//! `retry_max_duration_secs` = the longest wait between two attempts).

use crate::config::field::FieldIssue;
use crate::config::secret::Secret;
use crate::seconds;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use rand::Rng;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// `request` of a network sink.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RequestConfig {
    /// Longest wait for one response; a timeout is retried. Default 60.
    #[serde(default = "default_timeout")]
    pub timeout_secs: f64,
    /// Requests in flight at once, across partitions (one per partition keeps order).
    /// Default 4.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Attempts after the first before the events are given up (counted and reported).
    /// Default: unlimited, so a destination that is down pushes back on the sources
    /// instead of losing events.
    #[serde(default = "default_attempts")]
    pub retry_attempts: u64,
    /// The first backoff. Default 1.
    #[serde(default = "default_initial_backoff")]
    pub retry_initial_backoff_secs: f64,
    /// The longest backoff between two attempts. Default 30. A longer `Retry-After` from
    /// the server is still honoured.
    #[serde(default = "default_max_duration")]
    pub retry_max_duration_secs: f64,
    /// Extra headers on every request (Vector's `request.headers`); values may use
    /// `${ENV}` and are never logged.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
}

impl Default for RequestConfig {
    fn default() -> Self {
        Self {
            timeout_secs: default_timeout(),
            concurrency: default_concurrency(),
            retry_attempts: default_attempts(),
            retry_initial_backoff_secs: default_initial_backoff(),
            retry_max_duration_secs: default_max_duration(),
            headers: BTreeMap::new(),
        }
    }
}

fn default_timeout() -> f64 {
    60.0
}
fn default_concurrency() -> usize {
    4
}
fn default_attempts() -> u64 {
    u64::MAX
}
fn default_initial_backoff() -> f64 {
    1.0
}
fn default_max_duration() -> f64 {
    30.0
}

impl RequestConfig {
    /// Range checks, each under `prefix` (the table's key in the sink, e.g. `request`),
    /// so every sink reports them the same way.
    pub fn issues(&self, prefix: &str) -> Vec<crate::config::field::FieldIssue> {
        crate::config::field::FieldIssue::under(prefix, self.problems())
    }

    /// Range checks, as `(key, problem)` relative to the table.
    fn problems(&self) -> Vec<(&'static str, &'static str)> {
        let mut p = Vec::new();
        if !(self.timeout_secs > 0.0 && self.timeout_secs.is_finite()) {
            p.push(("timeout_secs", "must be a positive number of seconds"));
        }
        if self.concurrency == 0 {
            p.push(("concurrency", "must be at least 1"));
        }
        if !(self.retry_initial_backoff_secs > 0.0 && self.retry_initial_backoff_secs.is_finite()) {
            p.push((
                "retry_initial_backoff_secs",
                "must be a positive number of seconds",
            ));
        }
        if !(self.retry_max_duration_secs >= self.retry_initial_backoff_secs
            && self.retry_max_duration_secs.is_finite())
        {
            p.push((
                "retry_max_duration_secs",
                "must be at least retry_initial_backoff_secs",
            ));
        }
        p
    }

    /// Adds `headers` (the key of each under `prefix`) to `map`, replacing what the sink
    /// set itself: an operator who names a header means it.
    pub fn add_headers(
        headers: &BTreeMap<String, Secret>,
        prefix: &str,
        map: &mut HeaderMap,
    ) -> Result<(), FieldIssue> {
        for (name, value) in headers {
            let key = format!("{prefix}.{name}");
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| FieldIssue::new(key.clone(), "is not a valid header name"))?;
            let mut v = HeaderValue::from_str(value.expose())
                .map_err(|_| FieldIssue::new(key, "has characters a header value cannot carry"))?;
            v.set_sensitive(true);
            map.insert(n, v);
        }
        Ok(())
    }

    /// The per-attempt timeout.
    pub fn timeout(&self) -> Duration {
        seconds(self.timeout_secs)
    }

    /// How long to wait before attempt `retry` (1 for the first retry): a random time
    /// up to `initial * 2^(retry-1)`, capped at `retry_max_duration_secs`, and at least
    /// `retry_after` when the server gave one.
    pub fn backoff(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let ceiling = (self.retry_initial_backoff_secs * 2f64.powi(retry.saturating_sub(1) as i32))
            .min(self.retry_max_duration_secs);
        let jittered = rand::rng().random_range(0.0..=ceiling);
        // Never hammer: a floor of a tenth of the initial backoff.
        let d = seconds(jittered.max(self.retry_initial_backoff_secs / 10.0));
        match retry_after {
            Some(r) => d.max(r),
            None => d,
        }
    }
}

/// Parses `Retry-After`: delay-seconds or an HTTP date (RFC 9110 §10.2.3). A date in the
/// past means now.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs.min(86_400)));
    }
    if let Ok(secs) = v.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some(seconds(secs));
        }
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_up_to_the_cap_and_respects_retry_after() {
        let r = RequestConfig {
            retry_initial_backoff_secs: 1.0,
            retry_max_duration_secs: 8.0,
            ..Default::default()
        };
        for retry in 1..20 {
            let cap = (2f64.powi(retry as i32 - 1)).min(8.0);
            for _ in 0..50 {
                let d = r.backoff(retry, None).as_secs_f64();
                assert!((0.1..=cap).contains(&d), "retry {retry}: {d}");
            }
        }
        // Spread: full jitter, not a fixed value.
        let samples: std::collections::HashSet<u128> =
            (0..20).map(|_| r.backoff(5, None).as_micros()).collect();
        assert!(samples.len() > 10);
        assert!(r.backoff(1, Some(Duration::from_secs(90))) >= Duration::from_secs(90));
    }

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        let later = SystemTime::now() + Duration::from_secs(120);
        let d = parse_retry_after(&httpdate::fmt_http_date(later)).unwrap();
        assert!(
            d > Duration::from_secs(115) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        // A server cannot make sluice panic or wait for ever.
        assert_eq!(
            parse_retry_after("1e300"),
            Some(Duration::from_secs(86_400))
        );
        assert_eq!(
            parse_retry_after("99999999999999999999"),
            Some(Duration::from_secs(86_400))
        );
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("-3"), None);
    }
}
