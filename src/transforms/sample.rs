//! `sample` transform: passes a share of the events, to cut the volume of chatty
//! sources, with Vector's options and meaning:
//!
//! - `rate = N` keeps one event in N, `ratio = 0.13` keeps 13% (evenly spread);
//! - `key_field` samples by the hash of a field, so all events with one value are kept
//!   or dropped together (one request's lines, one trace);
//! - `group_by` (a template) gives each group its own count;
//! - `rate_field` / `ratio_field` take the rate from each event (a positive integer, or
//!   a share in (0, 1]); events without a valid one use `rate` / `ratio`;
//! - each kept event gets the rate under `sample_rate_key` (default `sample_rate`);
//! - events that meet the `exclude` condition (VRL) pass unsampled.
//!
//! Dropped events count as discarded on purpose (`intentional="true"`).

use super::condition::{build_condition, Condition, ConditionConfig};
use crate::config::field::FieldIssue;
use crate::event::{Batch, Event, Value};
use crate::internal_events::ComponentMetrics;
use crate::sinks::util::template::Template;
use crate::topology::component::{
    BuildError, Transform, TransformConfig, TransformContext, TransformOutput,
};
use serde::Deserialize;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

/// `[transforms.ID] type = "sample"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleConfig {
    /// Keep 1 event out of this many. Exactly one of `rate` and `ratio`.
    pub rate: Option<u64>,
    /// Keep this share of the events, between 0 and 1.
    pub ratio: Option<f64>,
    /// Sample by the hash of this field's value instead of by count.
    pub key_field: Option<String>,
    /// A template (`{{ service }}`): each group is sampled on its own count.
    pub group_by: Option<String>,
    /// The field whose positive integer value is the event's own rate (1 in N).
    pub rate_field: Option<String>,
    /// The field whose value in (0, 1] is the event's own share.
    pub ratio_field: Option<String>,
    /// Where each kept event records the rate; `""` leaves events as they are.
    #[serde(default = "default_rate_key")]
    pub sample_rate_key: String,
    /// A VRL condition: events that meet it pass unsampled (and without the rate).
    pub exclude: Option<ConditionConfig>,
}

fn default_rate_key() -> String {
    "sample_rate".into()
}

impl TransformConfig for SampleConfig {
    fn build(&self, cx: TransformContext) -> Result<Box<dyn Transform>, BuildError> {
        let mode = match (self.rate, self.ratio) {
            (Some(n), None) => Mode::Rate(n.max(1)),
            (None, Some(r)) => Mode::Ratio(r.clamp(0.0, 1.0)),
            _ => {
                return Err(BuildError::Other(
                    "set exactly one of rate and ratio".into(),
                ))
            }
        };
        let group_by = match &self.group_by {
            Some(t) => {
                Some(Template::parse(t).map_err(|e| BuildError::Other(format!("group_by: {e}")))?)
            }
            None => None,
        };
        let rate_text = match mode {
            Mode::Rate(n) => n.to_string(),
            Mode::Ratio(r) => r.to_string(),
        };
        Ok(Box::new(Sample {
            mode,
            key_field: self.key_field.clone(),
            group_by,
            rate_key: (!self.sample_rate_key.is_empty()).then(|| self.sample_rate_key.clone()),
            rate_value: Value::from(rate_text),
            exclude: build_condition(&self.exclude, "exclude", &cx)?,
            rate_field: self.rate_field.clone(),
            ratio_field: self.ratio_field.clone(),
            dynamic: HashMap::new(),
            seen: 0,
            groups: HashMap::new(),
            group: String::new(),
            metrics: cx.metrics,
        }))
    }

    fn validate(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        match (self.rate, self.ratio) {
            (None, None) => issues.push(FieldIssue::new(
                "rate",
                "set `rate` (1 in N) or `ratio` (a share)",
            )),
            (Some(_), Some(_)) => issues.push(FieldIssue::new(
                "ratio",
                "set only one of `rate` and `ratio`",
            )),
            (Some(0), None) => issues.push(FieldIssue::new("rate", "must be at least 1")),
            (None, Some(r)) if !(0.0..=1.0).contains(&r) => {
                issues.push(FieldIssue::new("ratio", "must be between 0 and 1"))
            }
            _ => {}
        }
        if self.rate_field.is_some() && self.ratio_field.is_some() {
            issues.push(FieldIssue::new(
                "ratio_field",
                "set only one of `rate_field` and `ratio_field` (as in Vector)",
            ));
        }
        if let Some(t) = &self.group_by {
            if let Err(e) = Template::parse(t) {
                issues.push(FieldIssue::new("group_by", e.to_string()));
            }
        }
        if let Some(Err(e)) = self.exclude.as_ref().map(|c| c.compile("exclude")) {
            issues.push(e);
        }
        issues
    }
}

#[derive(Clone, Copy)]
enum Mode {
    Rate(u64),
    Ratio(f64),
}

impl Mode {
    /// Whether the `n`th event (from 0) of a count is kept.
    fn keeps_nth(self, n: u64) -> bool {
        match self {
            Mode::Rate(rate) => n.is_multiple_of(rate),
            // Evenly spread: keep when the running share crosses a whole number.
            Mode::Ratio(r) => ((n + 1) as f64 * r).floor() > (n as f64 * r).floor(),
        }
    }

    /// Whether an event whose key hashes to `h` is kept.
    fn keeps_hash(self, h: u64) -> bool {
        match self {
            Mode::Rate(rate) => h.is_multiple_of(rate),
            Mode::Ratio(r) => (h as f64 / u64::MAX as f64) < r,
        }
    }
}

struct Sample {
    mode: Mode,
    key_field: Option<String>,
    group_by: Option<Template>,
    rate_key: Option<String>,
    rate_value: Value,
    exclude: Option<Condition>,
    rate_field: Option<String>,
    ratio_field: Option<String>,
    /// Counts of events sampled at their own rate, per group.
    dynamic: HashMap<String, u64>,
    seen: u64,
    groups: HashMap<String, u64>,
    group: String,
    metrics: ComponentMetrics,
}

impl Sample {
    /// The event's own rate or share from `rate_field` / `ratio_field`, when valid.
    fn own_mode(&self, e: &Event) -> Option<Mode> {
        let l = e.as_log()?;
        let number = |v: &Value| -> Option<f64> {
            match v {
                Value::Integer(i) => Some(*i as f64),
                Value::Float(f) => Some(f.into_inner()),
                Value::Bytes(_) | Value::String(_) => v.to_str_lossy()?.trim().parse().ok(),
                _ => None,
            }
        };
        if let Some(f) = &self.ratio_field {
            return number(l.get_path(f)?)
                .filter(|r| *r > 0.0 && *r <= 1.0)
                .map(Mode::Ratio);
        }
        let f = self.rate_field.as_ref()?;
        let rate = match l.get_path(f)? {
            Value::Integer(i) => u64::try_from(*i).ok(),
            v @ (Value::Bytes(_) | Value::String(_)) => v.to_str_lossy()?.trim().parse().ok(),
            _ => None,
        };
        rate.filter(|r| *r > 0).map(Mode::Rate)
    }

    /// Sampling at the event's own rate: a per-group count, hashed so events of
    /// different rates in one group do not fall into step (Vector's approach).
    fn keeps_dynamic(&mut self, e: &Event, mode: Mode) -> bool {
        self.group.clear();
        if let Some(t) = &self.group_by {
            let _ = t.render(e, Template::event_time(e), &mut self.group);
        }
        let count = match self.dynamic.get_mut(self.group.as_str()) {
            Some(c) => c,
            None => self.dynamic.entry(self.group.clone()).or_insert(0),
        };
        let n = *count;
        *count = count.wrapping_add(1);
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.group.hash(&mut h);
        n.hash(&mut h);
        mode.keeps_hash(h.finish())
    }

    fn keeps(&mut self, e: &Event) -> bool {
        if let (Some(k), Event::Log(l)) = (&self.key_field, e) {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            match l.get_path(k) {
                Some(Value::Bytes(b)) => b.hash(&mut h),
                Some(v) => v.to_string_lossy().hash(&mut h),
                None => 0u8.hash(&mut h),
            }
            return self.mode.keeps_hash(h.finish());
        }
        let n = match &self.group_by {
            None => {
                let n = self.seen;
                self.seen = self.seen.wrapping_add(1);
                n
            }
            Some(t) => {
                self.group.clear();
                // An event missing a group field is sampled in the group of "".
                let _ = t.render(e, Template::event_time(e), &mut self.group);
                let count = match self.groups.get_mut(self.group.as_str()) {
                    Some(c) => c,
                    None => self.groups.entry(self.group.clone()).or_insert(0),
                };
                let n = *count;
                *count = count.wrapping_add(1);
                n
            }
        };
        self.mode.keeps_nth(n)
    }
}

impl Transform for Sample {
    fn transform(&mut self, input: Batch, output: &mut TransformOutput) {
        let before = input.len();
        let mut kept = 0;
        for mut e in input {
            if let Some(c) = &mut self.exclude {
                if c.check(&mut e) {
                    output.push(e);
                    kept += 1;
                    continue;
                }
            }
            let own = self.own_mode(&e);
            let kept_it = match own {
                Some(mode) => self.keeps_dynamic(&e, mode),
                None => self.keeps(&e),
            };
            if kept_it {
                if let (Some(k), Event::Log(l)) = (&self.rate_key, &mut e) {
                    let rate = match own {
                        Some(Mode::Rate(n)) => Value::from(n.to_string()),
                        Some(Mode::Ratio(r)) => Value::from(r.to_string()),
                        None => self.rate_value.clone(),
                    };
                    l.insert(k.as_str(), rate);
                }
                output.push(e);
                kept += 1;
            }
        }
        let dropped = (before - kept) as u64;
        if dropped > 0 {
            self.metrics.discarded_intentional.increment(dropped);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Mode;

    #[test]
    fn ratio_keeps_its_share_evenly() {
        let kept: Vec<u64> = (0..20)
            .filter(|&n| Mode::Ratio(0.25).keeps_nth(n))
            .collect();
        assert_eq!(kept, [3, 7, 11, 15, 19]);
        assert_eq!(
            (0..1000)
                .filter(|&n| Mode::Ratio(0.13).keeps_nth(n))
                .count(),
            130
        );
        assert_eq!((0..30).filter(|&n| Mode::Rate(10).keeps_nth(n)).count(), 3);
    }
}
