//! `alert` transform: threshold rules evaluated where the events already are. Each rule
//! counts (or sums, averages, takes quantiles of) the events that meet its condition,
//! per group of `group_by` values, over a sliding window of ingest time; every
//! `eval_interval_secs` it compares each group's value with its thresholds and moves the
//! group's alert through pending, firing, resolving and inactive (`state.rs`), with the
//! flap guard on top. Each change the outside should know of becomes one event in the
//! shape of an Alertmanager webhook alert (`status`, `labels`, `annotations`,
//! `startsAt`, `endsAt`, `fingerprint`, plus `value`, `rule`, `state`, `flapping`), so
//! the `http` sink can post it to anything that takes Alertmanager's webhooks. The
//! input events themselves go no further.
//!
//! State survives restarts: every evaluation that changed something writes the alerts
//! that are not idle and the notification stage's groups and log atomically to
//! `data_dir/alert/<id>.json`. After a restart the saved alerts keep their state for one
//! window (their windows start empty) before they are evaluated again, so nothing
//! already notified is sent again and an alert that resolved meanwhile resolves.
//!
//! Windows run on ingest time (an event's own timestamp can lie or arrive late).
//! Memory per group is fixed (a ring of [`window::SLICES`] summaries); groups that are
//! idle and empty are forgotten; `max_groups` caps each rule, counting what it turns
//! away.

mod matcher;
pub mod notify;
mod sketch;
mod state;
mod window;

pub use state::{AlertState, Notice, State, Timing};
pub use window::{Agg, Window};

use super::condition::{build_condition, Condition, ConditionConfig};
use crate::config::field::FieldIssue;
use crate::event::{
    Batch, Event, EventMetadata, LogEvent, MetricKind, MetricValue, ObjectMap, SourceId, Value,
};
use crate::internal_events::names;
use crate::topology::component::{
    BuildError, Transform, TransformConfig, TransformContext, TransformOutput,
};
use metrics::{Counter, Gauge};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use tokio::time::Instant;

/// `[transforms.ID] type = "alert"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertConfig {
    /// How often every group of every rule is evaluated, in seconds. Default 10.
    #[serde(default = "default_eval_interval")]
    pub eval_interval_secs: f64,
    /// Most groups per rule; a new group beyond it is turned away and counted. Default
    /// 10000.
    #[serde(default = "default_max_groups")]
    pub max_groups: usize,
    /// The rules, `[[transforms.ID.rules]]`.
    pub rules: Vec<RuleConfig>,
    /// Group, time and deduplicate alerts into notifications, as Alertmanager does. Without
    /// it, every alert change is an event of its own.
    pub notify: Option<notify::NotifyConfig>,
}

/// One `[[transforms.ID.rules]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// The alert's name (`alertname`).
    pub name: String,
    /// Which events count (VRL or Vector's condition shapes); all when absent.
    pub condition: Option<ConditionConfig>,
    /// Fields (or metric tags) whose values split the rule into alerts.
    #[serde(default)]
    pub group_by: Vec<String>,
    /// `count`, `rate` (per second), `sum`, `avg`, `min`, `max`, `p50`, `p90`, `p95`,
    /// `p99`, `p999`, or `absent`. Default `count`.
    #[serde(default = "default_agg")]
    pub agg: String,
    /// The numeric field `sum`, `avg`, `min`, `max` and quantiles read from log events
    /// (metric events give their value: without `field`, only they count).
    pub field: Option<String>,
    /// The sliding window, in seconds.
    pub window_secs: f64,
    /// `>`, `>=`, `<`, `<=`, `==`, `!=`. Not for `absent`.
    pub op: Option<String>,
    /// The value that fires the alert. Not for `absent`.
    pub threshold: Option<f64>,
    /// The value the alert must cross back over to resolve (hysteresis); the threshold
    /// when absent.
    pub clear_threshold: Option<f64>,
    /// How long the condition must hold before the alert fires, in seconds. Default 0.
    #[serde(default)]
    pub for_secs: f64,
    /// How long a firing alert stays firing after its value fell back, in seconds.
    /// Default 0.
    #[serde(default)]
    pub keep_firing_for_secs: f64,
    /// Labels added to every alert of the rule (`severity`, `team`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations: templates over the alert's labels and `{{ value }}`.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// More changes between firing and not than this within `flap_window_secs` pin an
    /// alert to firing, marked flapping. Default 4.
    #[serde(default = "default_flap_max")]
    pub flap_max_transitions: usize,
    /// The flap guard's window, in seconds. Default 600.
    #[serde(default = "default_flap_window")]
    pub flap_window_secs: f64,
}

fn default_eval_interval() -> f64 {
    10.0
}
fn default_max_groups() -> usize {
    10_000
}
fn default_agg() -> String {
    "count".into()
}
fn default_flap_max() -> usize {
    4
}
fn default_flap_window() -> f64 {
    600.0
}

/// A comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s.trim() {
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "<" => Op::Lt,
            "<=" => Op::Le,
            "==" => Op::Eq,
            "!=" => Op::Ne,
            _ => return None,
        })
    }

    /// Whether `v op t`.
    pub fn holds(self, v: f64, t: f64) -> bool {
        match self {
            Op::Gt => v > t,
            Op::Ge => v >= t,
            Op::Lt => v < t,
            Op::Le => v <= t,
            Op::Eq => v == t,
            Op::Ne => v != t,
        }
    }
}

/// `agg` parsed.
pub fn parse_agg(s: &str) -> Option<Agg> {
    Some(match s.trim() {
        "count" => Agg::Count,
        "rate" => Agg::Rate,
        "sum" => Agg::Sum,
        "avg" | "mean" => Agg::Avg,
        "min" => Agg::Min,
        "max" => Agg::Max,
        "absent" => Agg::Absent,
        p => {
            let digits = p.strip_prefix('p')?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let q: f64 = format!("0.{digits}").parse().ok()?;
            if q <= 0.0 {
                return None;
            }
            Agg::Quantile(q)
        }
    })
}

fn seconds_ok(v: f64) -> bool {
    v.is_finite() && v >= 0.0
}

impl RuleConfig {
    fn issues(&self, i: usize) -> Vec<FieldIssue> {
        let key = |k: &str| format!("rules[{i}].{k}");
        let mut issues = Vec::new();
        if self.name.trim().is_empty() {
            issues.push(FieldIssue::new(key("name"), "must not be empty"));
        }
        let agg = parse_agg(&self.agg);
        match agg {
            None => issues.push(FieldIssue::new(
                key("agg"),
                format!("`{}` is not one of count, rate, sum, avg, min, max, pNN (p50, p90, p99, p999), absent", self.agg),
            )),
            Some(Agg::Absent) => {
                for (k, set) in [
                    ("op", self.op.is_some()),
                    ("threshold", self.threshold.is_some()),
                    ("clear_threshold", self.clear_threshold.is_some()),
                ] {
                    if set {
                        issues.push(FieldIssue::new(
                            key(k),
                            "does not apply to `agg = \"absent\"`, which fires when a group seen before sends nothing for window_secs",
                        ));
                    }
                }
            }
            Some(_) => {
                match &self.op {
                    None => issues.push(FieldIssue::new(key("op"), "is required: one of >, >=, <, <=, ==, !=")),
                    Some(o) if Op::parse(o).is_none() => issues.push(FieldIssue::new(
                        key("op"),
                        format!("`{o}` is not one of >, >=, <, <=, ==, !="),
                    )),
                    Some(_) => {}
                }
                if !self.threshold.is_some_and(f64::is_finite) {
                    issues.push(FieldIssue::new(key("threshold"), "is required: a number"));
                }
            }
        }
        if let (Some(op), Some(t), Some(c)) = (
            self.op.as_deref().and_then(Op::parse),
            self.threshold,
            self.clear_threshold,
        ) {
            let wrong_side = match op {
                Op::Gt | Op::Ge => c > t,
                Op::Lt | Op::Le => c < t,
                Op::Eq | Op::Ne => c != t,
            };
            if wrong_side {
                issues.push(FieldIssue::new(
                    key("clear_threshold"),
                    format!(
                        "{c} is on the firing side of threshold {t}: the alert could never resolve"
                    ),
                ));
            }
        }
        if !(self.window_secs > 0.0 && self.window_secs.is_finite()) {
            issues.push(FieldIssue::new(
                key("window_secs"),
                "must be a positive number of seconds",
            ));
        }
        for (k, v) in [
            ("for_secs", self.for_secs),
            ("keep_firing_for_secs", self.keep_firing_for_secs),
            ("flap_window_secs", self.flap_window_secs),
        ] {
            if !seconds_ok(v) {
                issues.push(FieldIssue::new(
                    key(k),
                    "must be zero or a positive number of seconds",
                ));
            }
        }
        if let Some(Err(e)) = self
            .condition
            .as_ref()
            .map(|c| c.compile(&key("condition")))
        {
            issues.push(e);
        }
        issues
    }
}

impl TransformConfig for AlertConfig {
    fn validate(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        if !(self.eval_interval_secs > 0.0 && self.eval_interval_secs.is_finite()) {
            issues.push(FieldIssue::new(
                "eval_interval_secs",
                "must be a positive number of seconds",
            ));
        }
        if self.max_groups == 0 {
            issues.push(FieldIssue::new("max_groups", "must be at least 1"));
        }
        if self.rules.is_empty() {
            issues.push(FieldIssue::new(
                "rules",
                "needs at least one [[rules]] table",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, r) in self.rules.iter().enumerate() {
            if !seen.insert(r.name.as_str()) {
                issues.push(FieldIssue::new(
                    format!("rules[{i}].name"),
                    format!(
                        "`{}` names another rule too: alert names must be unique",
                        r.name
                    ),
                ));
            }
            issues.extend(r.issues(i));
        }
        if let Some(n) = &self.notify {
            issues.extend(n.issues());
        }
        issues
    }

    fn build(&self, cx: TransformContext) -> Result<Box<dyn Transform>, BuildError> {
        let mut rules = Vec::with_capacity(self.rules.len());
        for (i, r) in self.rules.iter().enumerate() {
            let agg = parse_agg(&r.agg)
                .ok_or_else(|| BuildError::Other(format!("rules[{i}].agg: `{}`", r.agg)))?;
            let op = r.op.as_deref().and_then(Op::parse).unwrap_or(Op::Gt);
            let threshold = r.threshold.unwrap_or(0.0);
            let rule_label = || r.name.clone();
            rules.push(Rule {
                describe: Describe {
                    name: r.name.clone(),
                    group_by: r.group_by.clone(),
                    labels: r.labels.clone(),
                    annotations: r.annotations.clone(),
                },
                condition: build_condition(&r.condition, &format!("rules[{i}].condition"), &cx)?,
                agg,
                field: r.field.as_deref().map(FieldPath::new),
                group_fields: r.group_by.iter().map(|g| FieldPath::new(g)).collect(),
                window_ms: (r.window_secs * 1000.0) as u64,
                op,
                threshold,
                clear: r.clear_threshold.unwrap_or(threshold),
                timing: Timing {
                    for_ms: (r.for_secs * 1000.0) as u64,
                    keep_firing_for_ms: (r.keep_firing_for_secs * 1000.0) as u64,
                    flap_max_transitions: r.flap_max_transitions,
                    flap_window_ms: (r.flap_window_secs * 1000.0) as u64,
                },
                groups: HashMap::default(),
                firing: cx
                    .metrics
                    .gauge_with(names::ALERTS_FIRING, &[("rule", rule_label())]),
                group_count: cx
                    .metrics
                    .gauge_with(names::ALERT_GROUPS, &[("rule", rule_label())]),
                evicted: cx
                    .metrics
                    .counter_with(names::ALERT_GROUPS_EVICTED, "rule", rule_label()),
                transitions: [
                    State::Inactive,
                    State::Pending,
                    State::Firing,
                    State::Resolving,
                ]
                .iter()
                .map(|s| {
                    cx.metrics.counter_with_labels(
                        names::ALERT_TRANSITIONS,
                        &[("rule", rule_label()), ("to", s.as_str().into())],
                    )
                })
                .collect(),
            });
        }
        let interval = crate::seconds(self.eval_interval_secs.max(0.001));
        let notifier = match &self.notify {
            Some(n) => Some(notify::Notifier::new(n, &cx.id).map_err(BuildError::Other)?),
            None => None,
        };
        let mut alerts = Box::new(Alerts {
            rules,
            max_groups: self.max_groups.max(1),
            interval,
            next_eval: Instant::now() + interval,
            start: Instant::now(),
            start_wall_ms: chrono::Utc::now().timestamp_millis(),
            source: SourceId::from(&*cx.id),
            scratch: String::new(),
            notifier,
            dropper: crate::sinks::util::Dropper::with_depth(&cx.id, 4),
            state_path: cx.data_dir.join("alert").join(format!("{}.json", cx.id)),
            state_errors: cx.metrics.error_reporter("state_write"),
            read_errors: cx.metrics.error_reporter("state_read"),
            id: cx.id.clone(),
        });
        alerts.load();
        alerts.publish(alerts.now_ms());
        Ok(alerts)
    }
}

/// One group's alert.
struct Group {
    /// Until when a group restored after a restart keeps its state unevaluated: its
    /// window is empty until then.
    warm_until_ms: u64,
    window: Window,
    state: AlertState,
    last_seen_ms: u64,
    /// An absolute counter's last total (or histogram's bucket counts), to take increases.
    last_totals: Vec<f64>,
    last_value: Option<f64>,
}

/// What an alert event of a rule says besides its group's state.
struct Describe {
    name: String,
    group_by: Vec<String>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

struct Rule {
    describe: Describe,
    condition: Option<Condition>,
    agg: Agg,
    field: Option<FieldPath>,
    /// `group_by`, split once.
    group_fields: Vec<FieldPath>,
    window_ms: u64,
    op: Op,
    threshold: f64,
    clear: f64,
    timing: Timing,
    groups: HashMap<String, Group, foldhash::fast::RandomState>,
    firing: Gauge,
    group_count: Gauge,
    evicted: Counter,
    /// By [`State`] in the order inactive, pending, firing, resolving.
    transitions: Vec<Counter>,
}

/// A number from a field: integers, floats, and numeric strings.
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Float(f) => Some(f.into_inner()),
        Value::Boolean(b) => Some(f64::from(u8::from(*b))),
        v @ (Value::Bytes(_) | Value::String(_)) => v.to_string_lossy().trim().parse().ok(),
        _ => None,
    }
}

/// A field a rule names (`group_by`, `field`), split into segments once at build: a
/// lookup per event is one map lookup per segment, with no parsing of the name.
struct FieldPath {
    name: String,
    segments: Vec<String>,
}

impl FieldPath {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            segments: name.split('.').map(str::to_string).collect(),
        }
    }

    fn get<'a>(&self, fields: &'a ObjectMap) -> Option<&'a Value> {
        let (first, rest) = self.segments.split_first()?;
        let mut cur = fields.get(first.as_str())?;
        for p in rest {
            cur = match cur {
                Value::Object(m) => m.get(p.as_str())?,
                _ => return None,
            };
        }
        Some(cur)
    }
}

/// A group value of an event: a log field, or a metric's tag (or `name`, `namespace`).
fn group_value(event: &Event, field: &FieldPath, out: &mut String) {
    let name = field.name.as_str();
    match event {
        Event::Log(l) => match field.get(l.fields()) {
            None | Some(Value::Null) => {}
            Some(v) => out.push_str(&v.to_string_lossy()),
        },
        Event::Metric(m) => match m.tags.get(name) {
            Some(t) => out.push_str(t),
            None if name == "name" => out.push_str(&m.name),
            None if name == "namespace" => out.push_str(m.namespace.as_deref().unwrap_or("")),
            None => {}
        },
    }
}

/// Separates group values in a key: a control character field values rarely hold.
const SEP: char = '\u{1f}';

impl Rule {
    /// Counts `event` into its group, if the rule takes it.
    fn observe(&mut self, event: &mut Event, now_ms: u64, max_groups: usize, key: &mut String) {
        if let Some(c) = &mut self.condition {
            if !c.check(event) {
                return;
            }
        }
        key.clear();
        for (i, g) in self.group_fields.iter().enumerate() {
            if i > 0 {
                key.push(SEP);
            }
            group_value(event, g, key);
        }
        // One lookup for a group that exists (the common case).
        if let Some(group) = self.groups.get_mut(key.as_str()) {
            add_event(group, event, self.agg, self.field.as_ref(), now_ms);
            return;
        }
        if self.groups.len() >= max_groups && !self.evict_one() {
            self.evicted.increment(1);
            return;
        }
        let mut group = Group {
            warm_until_ms: 0,
            window: Window::new(self.window_ms, self.agg),
            state: AlertState::default(),
            last_seen_ms: now_ms,
            last_totals: Vec::new(),
            last_value: None,
        };
        add_event(&mut group, event, self.agg, self.field.as_ref(), now_ms);
        self.groups.insert(key.clone(), group);
        self.group_count.set(self.groups.len() as f64);
    }

    /// Forgets the idle group seen longest ago; `false` when every group is busy.
    fn evict_one(&mut self) -> bool {
        let oldest = self
            .groups
            .iter()
            .filter(|(_, g)| g.state.is_idle())
            .min_by_key(|(_, g)| g.last_seen_ms)
            .map(|(k, _)| k.clone());
        match oldest {
            Some(k) => {
                self.groups.remove(&k);
                self.evicted.increment(1);
                true
            }
            None => false,
        }
    }

    /// Evaluates every group at `now_ms`, appending what changed for the outside;
    /// `true` when any state changed (so the saved state is stale).
    fn evaluate(&mut self, now_ms: u64, out: &mut Vec<AlertSnapshot>) -> bool {
        let mut firing = 0usize;
        let mut gone = Vec::new();
        let mut changed_any = false;
        for (key, g) in &mut self.groups {
            if now_ms < g.warm_until_ms {
                if g.state.is_shown_firing() {
                    firing += 1;
                }
                continue;
            }
            let (fire, hold, value) = if self.agg == Agg::Absent {
                let empty = g.window.is_empty(now_ms);
                (empty, empty, g.window.value(Agg::Count, now_ms))
            } else {
                match g.window.value(self.agg, now_ms) {
                    Some(v) => (
                        self.op.holds(v, self.threshold),
                        self.op.holds(v, self.clear),
                        Some(v),
                    ),
                    None => (false, false, None),
                }
            };
            let (changed, notice) = g.state.step(now_ms, fire, hold, &self.timing);
            if let Some(to) = changed {
                changed_any = true;
                let i = [
                    State::Inactive,
                    State::Pending,
                    State::Firing,
                    State::Resolving,
                ]
                .iter()
                .position(|s| *s == to)
                .unwrap_or(0);
                if let Some(c) = self.transitions.get(i) {
                    c.increment(1);
                }
            }
            if let Some(v) = value {
                g.last_value = Some(v);
            }
            if let Some(n) = notice {
                out.push(AlertSnapshot::new(&self.describe, key, g, n, now_ms));
            }
            if g.state.is_shown_firing() {
                firing += 1;
            }
            // Idle and empty: nothing to remember (an `absent` rule keeps its groups:
            // their silence is what it watches).
            if self.agg != Agg::Absent && g.state.is_idle() && g.window.is_empty(now_ms) {
                gone.push(key.clone());
            }
        }
        changed_any |= !gone.is_empty();
        for k in gone {
            self.groups.remove(&k);
        }
        self.firing.set(firing as f64);
        self.group_count.set(self.groups.len() as f64);
        changed_any
    }

    /// The groups worth saving: those not idle.
    fn saved(&self) -> Vec<SavedGroup> {
        self.groups
            .iter()
            .filter(|(_, g)| !g.state.is_idle())
            .map(|(k, g)| SavedGroup {
                key: k.clone(),
                values: k.split(SEP).map(str::to_string).collect(),
                state: g.state.clone(),
                last_value: g.last_value,
            })
            .collect()
    }

    /// Takes back saved groups, each unevaluated for one window from `now_ms`.
    fn restore(&mut self, saved: Vec<SavedGroup>, now_ms: u64) {
        for s in saved {
            self.groups.insert(
                s.key,
                Group {
                    warm_until_ms: now_ms + self.window_ms,
                    window: Window::new(self.window_ms, self.agg),
                    state: s.state,
                    last_seen_ms: now_ms,
                    last_totals: Vec::new(),
                    last_value: s.last_value,
                },
            );
        }
        self.group_count.set(self.groups.len() as f64);
    }
}

/// Counts one event (or a metric's increase, value, samples) into its group's window.
fn add_event(group: &mut Group, event: &Event, agg: Agg, field: Option<&FieldPath>, now_ms: u64) {
    group.last_seen_ms = now_ms;
    let needs_value = agg.needs_value();
    match event {
        Event::Log(l) => {
            if !needs_value {
                group.window.add(now_ms, 1.0, 1.0);
            } else if let Some(v) = field.and_then(|f| f.get(l.fields())).and_then(number) {
                group.window.add(now_ms, v, 1.0);
            }
        }
        Event::Metric(m) => observe_metric(group, m.kind, &m.value, now_ms, needs_value),
    }
}

fn observe_metric(
    group: &mut Group,
    kind: MetricKind,
    value: &MetricValue,
    now_ms: u64,
    needs_value: bool,
) {
    let w = &mut group.window;
    match value {
        MetricValue::Counter(v) => {
            let increase = match kind {
                MetricKind::Incremental => *v,
                MetricKind::Absolute => {
                    let last = group.last_totals.first().copied();
                    group.last_totals = vec![*v];
                    match last {
                        // A total lower than the last one: the counter was reset.
                        Some(l) if *v >= l => v - l,
                        Some(_) => *v,
                        None => return,
                    }
                }
            };
            if needs_value {
                w.add(now_ms, increase, 1.0);
            } else if increase > 0.0 {
                w.add(now_ms, 1.0, increase);
            }
        }
        MetricValue::Gauge(v) => w.add(now_ms, *v, 1.0),
        MetricValue::Distribution { samples, .. } => {
            for s in samples {
                w.add(now_ms, s.value, f64::from(s.rate.max(1)));
            }
        }
        MetricValue::AggregatedHistogram { buckets, .. } => {
            let counts: Vec<f64> = buckets.iter().map(|b| b.count as f64).collect();
            let deltas: Vec<f64> = match kind {
                MetricKind::Incremental => counts.clone(),
                MetricKind::Absolute => {
                    let last = std::mem::replace(&mut group.last_totals, counts.clone());
                    if last.len() != counts.len() {
                        return;
                    }
                    counts
                        .iter()
                        .zip(&last)
                        .map(|(c, l)| if c >= l { c - l } else { *c })
                        .collect()
                }
            };
            for (b, n) in buckets.iter().zip(deltas) {
                if n > 0.0 {
                    w.add(now_ms, b.upper_limit, n);
                }
            }
        }
        MetricValue::AggregatedSummary { sum, count, .. } => {
            if *count > 0 {
                w.add(now_ms, sum / *count as f64, *count as f64);
            }
        }
        MetricValue::Set(values) => w.add(now_ms, values.len() as f64, 1.0),
    }
}

/// Renders `{{ name }}` placeholders from the alert's labels and `{{ value }}`; an
/// unknown name renders empty. Nothing else is special (a `%` stays a `%`). The
/// notification sinks render their subjects with it too, so both read alike.
pub(crate) fn render_template(
    template: &str,
    labels: &BTreeMap<String, String>,
    value: &str,
    out: &mut String,
) {
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            out.push_str(&rest[open..]);
            return;
        };
        let name = after[..close].trim();
        if name == "value" {
            out.push_str(value);
        } else if let Some(v) = labels.get(name) {
            out.push_str(v);
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
}

/// Alertmanager's fingerprint: FNV-1a 64 over the labels sorted by name, as hex.
fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (k, v) in labels {
        for b in k.bytes().chain([0xff]).chain(v.bytes()).chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// The firing alerts of every `alert` transform, by its ID, for the API's
/// `/api/alerts`: replaced by each transform after an evaluation that changed
/// something, never touched per event.
fn board() -> &'static std::sync::Mutex<BTreeMap<String, Vec<AlertSnapshot>>> {
    static BOARD: std::sync::OnceLock<std::sync::Mutex<BTreeMap<String, Vec<AlertSnapshot>>>> =
        std::sync::OnceLock::new();
    BOARD.get_or_init(Default::default)
}

/// The firing alerts of every `alert` transform as JSON, in the shape of Alertmanager's
/// `GET /api/v2/alerts` where it fits (`labels`, `annotations`, `startsAt`, `endsAt`,
/// `updatedAt`, `fingerprint`, `status.state`, `receivers`), plus `value`, `rule`,
/// `flapping`.
pub fn active_alerts_json() -> String {
    let board = board().lock().unwrap_or_else(|p| p.into_inner());
    let mut list = Vec::new();
    for (id, alerts) in board.iter() {
        for a in alerts {
            list.push(serde_json::json!({
                "labels": a.labels,
                "annotations": a.annotations,
                "startsAt": rfc3339(a.starts_ms),
                "endsAt": ZERO_TIME,
                "updatedAt": rfc3339(a.ends_ms.unwrap_or(a.starts_ms)),
                "fingerprint": a.fingerprint,
                "status": {"state": "active", "silencedBy": [], "inhibitedBy": []},
                "receivers": [{"name": id}],
                "generatorURL": "",
                "value": a.value,
                "rule": a.rule,
                "flapping": a.flapping,
            }));
        }
    }
    serde_json::Value::Array(list).to_string()
}

/// One group as saved.
#[derive(serde::Serialize, serde::Deserialize)]
struct SavedGroup {
    key: String,
    /// The key's values, for people reading the file (the key is what is restored).
    values: Vec<String>,
    state: AlertState,
    last_value: Option<f64>,
}

/// What `data_dir/alert/<id>.json` holds.
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Saved {
    version: u32,
    saved_ms: i64,
    /// Groups by rule name (a rule renamed or removed loses its groups).
    rules: BTreeMap<String, Vec<SavedGroup>>,
    notify: Option<notify::NotifyState>,
}

const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// An alert as the outside sees it after a change: what an alert event, a notification
/// and the saved state hold. Times are wall-clock milliseconds.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct AlertSnapshot {
    /// Alertmanager's fingerprint of the labels.
    pub fingerprint: String,
    /// `alertname`, the group values, the rule's labels.
    pub labels: BTreeMap<String, String>,
    /// Rendered annotations.
    pub annotations: BTreeMap<String, String>,
    /// Firing or resolved.
    pub status: Notice,
    /// When it started firing.
    pub starts_ms: i64,
    /// When it resolved.
    pub ends_ms: Option<i64>,
    /// The rule's value at the change.
    pub value: Option<f64>,
    /// The rule.
    pub rule: String,
    /// The machine's state at the change.
    pub state: State,
    /// Pinned by the flap guard.
    pub flapping: bool,
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ZERO_TIME.to_string())
}

impl AlertSnapshot {
    /// The alert of group `key` (its `group_by` values joined by [`SEP`]).
    fn new(rule: &Describe, key: &str, g: &Group, notice: Notice, now_ms: u64) -> Self {
        let mut labels = BTreeMap::new();
        labels.insert("alertname".to_string(), rule.name.clone());
        for (k, v) in rule.group_by.iter().zip(key.split(SEP)) {
            labels.insert(k.clone(), v.to_string());
        }
        for (k, v) in &rule.labels {
            labels.insert(k.clone(), v.clone());
        }
        let value = g.last_value.map(|v| {
            let mut s = String::new();
            let _ = write!(s, "{v}");
            s
        });
        let annotations = rule
            .annotations
            .iter()
            .map(|(k, t)| {
                let mut s = String::new();
                render_template(t, &labels, value.as_deref().unwrap_or(""), &mut s);
                (k.clone(), s)
            })
            .collect();
        Self {
            fingerprint: fingerprint(&labels),
            labels,
            annotations,
            status: notice,
            starts_ms: g.state.started_ms as i64,
            ends_ms: (notice == Notice::Resolved).then_some(now_ms as i64),
            value: g.last_value,
            rule: rule.name.clone(),
            state: g.state.state(),
            flapping: g.state.flapping,
        }
    }

    fn status_str(&self) -> &'static str {
        match self.status {
            Notice::Firing => "firing",
            Notice::Resolved => "resolved",
        }
    }

    /// The alert in the shape of an Alertmanager webhook alert, plus `value`, `rule`,
    /// `state` and `flapping`.
    pub fn to_value(&self, _now_ms: i64) -> Value {
        let mut f = ObjectMap::new();
        f.insert("status".into(), Value::from(self.status_str()));
        f.insert("fingerprint".into(), Value::from(self.fingerprint.as_str()));
        let map = |m: &BTreeMap<String, String>| {
            Value::Object(
                m.iter()
                    .map(|(k, v)| (k.as_str().into(), Value::from(v.as_str())))
                    .collect(),
            )
        };
        f.insert("labels".into(), map(&self.labels));
        f.insert("annotations".into(), map(&self.annotations));
        f.insert("startsAt".into(), Value::from(rfc3339(self.starts_ms)));
        f.insert(
            "endsAt".into(),
            Value::from(self.ends_ms.map_or_else(|| ZERO_TIME.to_string(), rfc3339)),
        );
        f.insert("generatorURL".into(), Value::from(""));
        f.insert("rule".into(), Value::from(self.rule.as_str()));
        f.insert("state".into(), Value::from(self.state.as_str()));
        f.insert("flapping".into(), Value::Boolean(self.flapping));
        if let Some(v) = self.value {
            f.insert("value".into(), Value::from_f64_or_zero(v));
        }
        Value::Object(f)
    }

    /// The alert as an event of its own: [`AlertSnapshot::to_value`] plus `message` (the
    /// `summary` annotation, or "NAME firing") and `timestamp`.
    pub fn to_event(&self, now_ms: i64, source: SourceId) -> Event {
        let Value::Object(mut f) = self.to_value(now_ms) else {
            unreachable!("to_value returns an object")
        };
        let message = match self.annotations.get("summary") {
            Some(s) => s.clone(),
            None => format!("{} {}", self.rule, self.status_str()),
        };
        f.insert("message".into(), Value::from(message));
        let wall = chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
        f.insert("timestamp".into(), Value::Timestamp(wall));
        Event::Log(LogEvent::from_parts(f, EventMetadata::new(source, wall)))
    }
}

/// How often the transform looks for its sinks' answers while a notification waits
/// for one: short, so a SIGKILL just after a page rarely sends it again.
const ANSWER_POLL: std::time::Duration = std::time::Duration::from_millis(200);

struct Alerts {
    rules: Vec<Rule>,
    max_groups: usize,
    interval: std::time::Duration,
    next_eval: Instant,
    /// The clock: wall time at start plus monotonic time since (so a clock step does
    /// not move windows, and tests can pause it).
    start: Instant,
    start_wall_ms: i64,
    source: SourceId,
    scratch: String,
    notifier: Option<notify::Notifier>,
    /// Frees consumed batches off this task's thread.
    dropper: crate::sinks::util::Dropper,
    /// `data_dir/alert/<id>.json`.
    state_path: std::path::PathBuf,
    /// Failed writes of it.
    state_errors: crate::internal_events::ErrorReporter,
    /// A saved state that could not be read or parsed at start.
    read_errors: crate::internal_events::ErrorReporter,
    id: std::sync::Arc<str>,
}

impl Alerts {
    /// Loads the saved state, if any; a file that cannot be read or parsed is reported
    /// and set aside (`.corrupt`), and the transform starts empty.
    fn load(&mut self) {
        let data = match std::fs::read(&self.state_path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => {
                let file = self.state_path.display();
                self.read_errors.report(1, || {
                    format!("Cannot read the saved alert state {file}; starting without it: {e}")
                });
                return;
            }
        };
        let saved: Saved = match serde_json::from_slice(&data) {
            Ok(s) => s,
            Err(e) => {
                let aside = self.state_path.with_extension("json.corrupt");
                let _ = std::fs::rename(&self.state_path, &aside);
                let file = self.state_path.display();
                self.read_errors.report(1, || {
                    format!("The saved alert state {file} does not parse (moved to {}); starting without it: {e}", aside.display())
                });
                return;
            }
        };
        let now = self.now_ms();
        let mut rules = saved.rules;
        let mut restored = 0;
        for r in &mut self.rules {
            if let Some(groups) = rules.remove(&r.describe.name) {
                restored += groups.len();
                r.restore(groups, now);
            }
        }
        if let (Some(n), Some(state)) = (&mut self.notifier, saved.notify) {
            n.state = state;
        }
        tracing::info!(component_id = %self.id, alerts = restored, saved_at = %rfc3339(saved.saved_ms), "Restored the saved alert state.");
    }

    /// Puts the firing alerts on the API's board.
    fn publish(&self, now_ms: u64) {
        let mut firing = Vec::new();
        for r in &self.rules {
            for (key, g) in r.groups.iter().filter(|(_, g)| g.state.is_shown_firing()) {
                let mut a = AlertSnapshot::new(&r.describe, key, g, Notice::Firing, now_ms);
                a.ends_ms = Some(now_ms as i64);
                firing.push(a);
            }
        }
        board()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(self.id.to_string(), firing);
    }

    /// Writes the state; a failure is logged and tried again at the next change.
    fn save(&self) {
        let saved = Saved {
            version: 1,
            saved_ms: self.now_ms() as i64,
            rules: self
                .rules
                .iter()
                .map(|r| (r.describe.name.clone(), r.saved()))
                .collect(),
            notify: self.notifier.as_ref().map(notify::Notifier::saved_state),
        };
        let result = serde_json::to_vec(&saved)
            .map_err(std::io::Error::other)
            .and_then(|data| {
                if let Some(dir) = self.state_path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                crate::write_atomic(&self.state_path, &data)
            });
        if let Err(e) = result {
            // Counted in `error_type="state_write"`, logged at most every 10 s; tried
            // again at the next change.
            let file = self.state_path.display();
            self.state_errors
                .report(1, || format!("Cannot save the alert state to {file}: {e}"));
        }
    }

    fn now_ms(&self) -> u64 {
        (self.start_wall_ms.max(0) as u64)
            .saturating_add(Instant::now().duration_since(self.start).as_millis() as u64)
    }

    fn instant_of(&self, ms: i64) -> Instant {
        let offset = ms.saturating_sub(self.start_wall_ms).max(0) as u64;
        self.start + std::time::Duration::from_millis(offset)
    }
}

impl Drop for Alerts {
    fn drop(&mut self) {
        board()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&*self.id);
    }
}

impl Transform for Alerts {
    fn transform(&mut self, mut input: Batch, _output: &mut TransformOutput) {
        // One clock read per batch: ingest time at batch resolution.
        let now = self.now_ms();
        for e in input.iter_mut() {
            for r in &mut self.rules {
                r.observe(e, now, self.max_groups, &mut self.scratch);
            }
        }
        // The events end here: freed on a helper thread, as sinks free theirs.
        self.dropper.drop_batches(vec![input]);
    }

    fn next_deadline(&self) -> Option<Instant> {
        let flush = self
            .notifier
            .as_ref()
            .and_then(notify::Notifier::next_due_ms)
            .map(|ms| self.instant_of(ms));
        let mut next = flush.map_or(self.next_eval, |f| f.min(self.next_eval));
        if self
            .notifier
            .as_ref()
            .is_some_and(notify::Notifier::awaiting_answers)
        {
            next = next.min(Instant::now() + ANSWER_POLL);
        }
        Some(next)
    }

    fn on_deadline(&mut self, output: &mut TransformOutput) {
        let now = self.now_ms();
        let mut dirty = false;
        if Instant::now() >= self.next_eval {
            let mut changes = Vec::new();
            for r in &mut self.rules {
                dirty |= r.evaluate(now, &mut changes);
            }
            dirty |= !changes.is_empty();
            for a in changes {
                match &mut self.notifier {
                    Some(n) => n.ingest(a, now as i64),
                    None => output.push(a.to_event(now as i64, self.source)),
                }
            }
            // The next tick from now, not from the missed one: a stalled task evaluates
            // once when it comes back, not in a burst.
            self.next_eval = Instant::now() + self.interval;
        }
        if let Some(n) = &mut self.notifier {
            dirty |= n.confirm(now as i64);
            let mut out = Vec::new();
            dirty |= n.flush(now as i64, self.source, &mut out);
            for e in out {
                output.push(e);
            }
        }
        if dirty {
            self.save();
            self.publish(now);
        }
    }

    fn flush(&mut self, _output: &mut TransformOutput) {
        // At shutdown: what the last evaluation left, for the next start.
        self.save();
    }
}

#[cfg(test)]
mod tests;
