//! `throttle` transform: lets at most `threshold` events through per `window_secs`, per
//! key (`key_field`, a template), as Vector's does: each key has a bucket of
//! `threshold` that refills evenly over the window (a burst of `threshold` is allowed,
//! then one event per `window_secs / threshold`). Events that meet `exclude` are never
//! throttled. What it drops is counted as intentional discards. The keys it remembers
//! are bounded by `max_keys` (sluice's addition): keys idle for a whole window are
//! forgotten first (their budget is full again, so nothing changes); if every key is
//! busy, the one touched longest ago is, counted in
//! `sluice_throttle_keys_evicted_total`.

use super::condition::{build_condition, Condition, ConditionConfig};
use crate::config::field::FieldIssue;
use crate::event::{Batch, Event};
use crate::internal_events::{names, ComponentMetrics};
use crate::sinks::util::template::Template;
use crate::topology::component::{
    BuildError, Transform, TransformConfig, TransformContext, TransformOutput,
};
use serde::Deserialize;
use std::collections::HashMap;
use std::time::Instant;

/// `[transforms.ID] type = "throttle"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleConfig {
    /// Events allowed per window, per key.
    pub threshold: u32,
    /// The window, in seconds.
    pub window_secs: f64,
    /// A template (`{{ service }}`) whose value keys the budget; one budget when absent.
    pub key_field: Option<String>,
    /// A condition: events that meet it are never throttled.
    pub exclude: Option<ConditionConfig>,
    /// Most keys remembered at once. Default 100000.
    #[serde(default = "default_max_keys")]
    pub max_keys: usize,
    /// Vector's per-key discard metric: refused when true (a metric label per key grows
    /// without bound); `false` is what sluice does.
    #[serde(default)]
    pub internal_metrics: Option<toml::Value>,
}

fn default_max_keys() -> usize {
    100_000
}

impl TransformConfig for ThrottleConfig {
    fn validate(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        if self.threshold == 0 {
            issues.push(FieldIssue::new("threshold", "must be at least 1"));
        }
        if !(self.window_secs > 0.0 && self.window_secs.is_finite()) {
            issues.push(FieldIssue::new(
                "window_secs",
                "must be a positive number of seconds",
            ));
        }
        if self.max_keys == 0 {
            issues.push(FieldIssue::new("max_keys", "must be at least 1"));
        }
        if let Some(t) = &self.key_field {
            if let Err(e) = Template::parse(t) {
                issues.push(FieldIssue::new("key_field", e.to_string()));
            }
        }
        if let Some(Err(e)) = self.exclude.as_ref().map(|c| c.compile("exclude")) {
            issues.push(e);
        }
        let per_key = self
            .internal_metrics
            .as_ref()
            .and_then(|v| v.get("emit_events_discarded_per_key"))
            .and_then(toml::Value::as_bool);
        if per_key == Some(true) {
            issues.push(FieldIssue::new(
                "internal_metrics.emit_events_discarded_per_key",
                "Vector's per-key discard metric is not supported by sluice: a label per key grows without bound; the discards are in sluice_component_discarded_events_total",
            ));
        }
        issues
    }

    fn build(&self, cx: TransformContext) -> Result<Box<dyn Transform>, BuildError> {
        let key = match &self.key_field {
            Some(t) => {
                Some(Template::parse(t).map_err(|e| BuildError::Other(format!("key_field: {e}")))?)
            }
            None => None,
        };
        let exclude = build_condition(&self.exclude, "exclude", &cx)?;
        let threshold = f64::from(self.threshold.max(1));
        Ok(Box::new(Throttle {
            key,
            exclude,
            capacity: threshold,
            per_sec: threshold / self.window_secs.max(f64::MIN_POSITIVE),
            max_keys: self.max_keys.max(1),
            buckets: HashMap::new(),
            scratch: String::new(),
            evicted: cx.metrics.counter(names::THROTTLE_KEYS_EVICTED),
            metrics: cx.metrics,
        }))
    }
}

/// One key's budget: tokens left and when they were counted.
struct Bucket {
    tokens: f64,
    at: Instant,
}

struct Throttle {
    key: Option<Template>,
    exclude: Option<Condition>,
    capacity: f64,
    per_sec: f64,
    max_keys: usize,
    buckets: HashMap<String, Bucket>,
    scratch: String,
    evicted: metrics::Counter,
    metrics: ComponentMetrics,
}

impl Throttle {
    /// Whether the event's key has budget left (and spends one if so).
    fn allows(&mut self, event: &Event, now: Instant) -> bool {
        self.scratch.clear();
        if let Some(t) = &self.key {
            // An event without the key's field shares the budget of "".
            let _ = t.render(event, Template::event_time(event), &mut self.scratch);
        }
        if !self.buckets.contains_key(self.scratch.as_str()) && self.buckets.len() >= self.max_keys
        {
            // A key idle for a whole window has its full budget back: forgetting it
            // changes nothing, so those go first, all at once (the scan is paid once per
            // purge, not per event).
            let (capacity, per_sec) = (self.capacity, self.per_sec);
            self.buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.at).as_secs_f64() * per_sec < capacity
            });
            if self.buckets.len() >= self.max_keys {
                // Every key is busy: the one touched longest ago is forgotten (it gets a
                // full budget if it comes back), and that is counted.
                if let Some(oldest) = self
                    .buckets
                    .iter()
                    .min_by_key(|(_, b)| b.at)
                    .map(|(k, _)| k.clone())
                {
                    self.buckets.remove(&oldest);
                    self.evicted.increment(1);
                }
            }
        }
        let capacity = self.capacity;
        let bucket = match self.buckets.get_mut(self.scratch.as_str()) {
            Some(b) => b,
            None => self.buckets.entry(self.scratch.clone()).or_insert(Bucket {
                tokens: capacity,
                at: now,
            }),
        };
        let refill = now.duration_since(bucket.at).as_secs_f64() * self.per_sec;
        bucket.tokens = (bucket.tokens + refill).min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Transform for Throttle {
    fn transform(&mut self, input: Batch, output: &mut TransformOutput) {
        let now = Instant::now();
        let mut dropped = 0u64;
        for mut event in input {
            let excluded = match &mut self.exclude {
                Some(c) => c.check(&mut event),
                None => false,
            };
            if excluded || self.allows(&event, now) {
                output.push(event);
            } else {
                dropped += 1;
            }
        }
        if dropped > 0 {
            self.metrics.discarded_intentional.increment(dropped);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventMetadata, LogEvent, ObjectMap, Value};
    use crate::internal_events::{ComponentKind, ComponentLabels};

    #[test]
    fn busy_keys_beyond_max_keys_are_forgotten_oldest_first() {
        let config: ThrottleConfig = toml::from_str(
            "threshold = 1\nwindow_secs = 3600\nkey_field = \"{{ k }}\"\nmax_keys = 2",
        )
        .unwrap();
        let metrics = ComponentMetrics::new(ComponentLabels {
            id: "throttle-unit".into(),
            kind: ComponentKind::Transform,
            type_name: "throttle",
        });
        let mut t = config
            .build(TransformContext {
                id: "throttle-unit".into(),
                metrics,
                timezone: None,
                data_dir: std::env::temp_dir(),
            })
            .unwrap();
        let mut pass = |k: &str| {
            let mut f = ObjectMap::new();
            f.insert("k".into(), Value::from(k));
            let e: Event =
                LogEvent::from_parts(f, EventMetadata::new("t", chrono::Utc::now())).into();
            let mut out = TransformOutput::new(0);
            t.transform(vec![e], &mut out);
            out.default.len()
        };
        assert_eq!((pass("a"), pass("a"), pass("b")), (1, 0, 1));
        // A third key: both others are busy (spent), so `a`, touched longest ago, goes.
        assert_eq!(pass("c"), 1);
        // `a` comes back with a full budget: the price of the cap, counted.
        assert_eq!(pass("a"), 1);
        assert_eq!(pass("c"), 0, "c is still remembered");
    }
}
