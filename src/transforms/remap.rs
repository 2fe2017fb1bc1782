//! `remap` transform: Vector Remap Language programs, compiled once by the `vrl` crate
//! (its compiler, `stdlib-base`, the crypto functions and `get_env_var`; no network or
//! system functions) and run on every event, with Vector's options and meaning:
//!
//! - the event's fields are the program's `.`, its metadata the `%` paths;
//! - a program that leaves `.` an array of objects turns one event into several;
//! - a runtime error passes the event on unchanged (`drop_on_error = false`, the
//!   default) or drops it; `abort` drops it (`drop_on_abort = true`, the default) or
//!   passes it on; with `reroute_dropped` what is dropped goes to the `dropped` output
//!   with `metadata.dropped = {reason, message, component_id, component_type,
//!   component_kind}`;
//! - compile errors are `validate` errors, in VRL's own words with line, column and
//!   caret; compile warnings are config warnings.
//!
//! A metric event is seen as Vector shows it (`.name`, `.namespace`, `.tags`, `.kind`,
//! `.type`, `.timestamp`, `.interval_ms`; see [`vrl_metric`]); a dropped metric gets
//! `metadata.dropped.*` tags, as in Vector.

use super::vrl_metric;
use crate::config::field::FieldIssue;
use crate::event::{Batch, Event, EventMetadata, LogEvent, Metric, ObjectMap, Value};
use crate::internal_events::failures::{RemapDropped, RemapFailed};
use crate::internal_events::{ComponentMetrics, Reporter};
use crate::topology::component::{
    BuildError, Transform, TransformConfig, TransformContext, TransformOutput,
};
use serde::Deserialize;
use std::path::PathBuf;
use vrl::compiler::runtime::{Runtime, Terminate};
use vrl::compiler::{Program, TargetValue, TimeZone};
use vrl::diagnostic::Formatter;
use vrl::value::Secrets;

/// `[transforms.ID] type = "remap"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemapConfig {
    /// The program. Exactly one of `source` and `file`.
    pub source: Option<String>,
    /// A file holding the program.
    pub file: Option<PathBuf>,
    /// Drop an event whose program failed at runtime (default: pass it on unchanged).
    #[serde(default)]
    pub drop_on_error: bool,
    /// Drop an event whose program called `abort` (default true).
    #[serde(default = "default_true")]
    pub drop_on_abort: bool,
    /// Send what is dropped to the `dropped` output instead of discarding it.
    #[serde(default)]
    pub reroute_dropped: bool,
    /// The time zone of timestamps parsed without one: `local` or an IANA name.
    /// Default: the top-level `timezone`, else the machine's (as in Vector).
    pub timezone: Option<String>,
}

fn default_true() -> bool {
    true
}

/// What a compile produced: the program and its warnings, in VRL's words.
struct Compiled {
    program: Program,
    warnings: Option<String>,
}

impl RemapConfig {
    /// The program's text, from `source` or `file`.
    fn text(&self) -> Result<String, FieldIssue> {
        match (&self.source, &self.file) {
            (Some(s), None) => Ok(s.clone()),
            (None, Some(f)) => std::fs::read_to_string(f)
                .map_err(|e| FieldIssue::new("file", format!("cannot read {}: {e}", f.display()))),
            (None, None) => Err(FieldIssue::new(
                "source",
                "missing required key (or `file`): the VRL program",
            )),
            (Some(_), Some(_)) => Err(FieldIssue::new(
                "file",
                "set only one of `source` and `file`",
            )),
        }
    }

    fn key(&self) -> &'static str {
        if self.file.is_some() {
            "file"
        } else {
            "source"
        }
    }

    /// Compiles the program; a failure is VRL's own diagnostic, with its line, column,
    /// caret and error code.
    fn compile(&self) -> Result<Compiled, FieldIssue> {
        let text = self.text()?;
        let functions = vrl::stdlib::all();
        match vrl::compiler::compile(&text, &functions) {
            Ok(result) => Ok(Compiled {
                program: result.program,
                warnings: (!result.warnings.is_empty())
                    .then(|| Formatter::new(&text, result.warnings).to_string()),
            }),
            Err(diagnostics) => Err(FieldIssue::new(
                self.key(),
                format!(
                    "the VRL program does not compile:\n{}",
                    Formatter::new(&text, diagnostics).to_string().trim()
                ),
            )),
        }
    }

    fn time_zone(&self) -> Result<Option<TimeZone>, FieldIssue> {
        match &self.timezone {
            None => Ok(None),
            Some(tz) => TimeZone::parse(tz).map(Some).ok_or_else(|| {
                FieldIssue::new(
                    "timezone",
                    format!("`{tz}` is not `local` or an IANA time zone name"),
                )
            }),
        }
    }
}

impl TransformConfig for RemapConfig {
    fn concurrent(&self) -> bool {
        true
    }

    fn outputs(&self) -> Vec<String> {
        if self.reroute_dropped {
            vec!["dropped".into()]
        } else {
            Vec::new()
        }
    }

    fn validate(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        if let Err(e) = self.compile() {
            issues.push(e);
        }
        if let Err(e) = self.time_zone() {
            issues.push(e);
        }
        issues
    }

    fn warnings(&self) -> Vec<FieldIssue> {
        match self.compile() {
            Ok(Compiled {
                warnings: Some(w), ..
            }) => vec![FieldIssue::new(
                self.key(),
                format!("VRL warns:\n{}", w.trim_end()),
            )],
            _ => Vec::new(),
        }
    }

    fn build(&self, cx: TransformContext) -> Result<Box<dyn Transform>, BuildError> {
        let compiled = self.compile()?;
        // Its own, else the top-level one, else the machine's (as in Vector).
        let timezone = self
            .time_zone()
            .map_err(|e| BuildError::Other(e.message))?
            .or(cx.timezone.map(|tz| match tz {
                crate::config::timezone::TimeZone::Local => TimeZone::Local,
                crate::config::timezone::TimeZone::Named(t) => TimeZone::Named(t),
            }))
            .unwrap_or_default();
        let info = compiled.program.info();
        // The original is kept only when it may still be needed after the program ran.
        let keep_original = (info.fallible && (!self.drop_on_error || self.reroute_dropped))
            || (info.abortable && (!self.drop_on_abort || self.reroute_dropped));
        Ok(Box::new(Remap {
            program: compiled.program,
            runtime: Runtime::default(),
            timezone,
            drop_on_error: self.drop_on_error,
            drop_on_abort: self.drop_on_abort,
            reroute_dropped: self.reroute_dropped,
            keep_original,
            component_id: Value::from(cx.id.to_string()),
            failed: cx.metrics.reporter(),
            dropped: cx.metrics.reporter(),
            metrics: cx.metrics,
        }))
    }
}

struct Remap {
    program: Program,
    runtime: Runtime,
    timezone: TimeZone,
    drop_on_error: bool,
    drop_on_abort: bool,
    reroute_dropped: bool,
    keep_original: bool,
    component_id: Value,
    failed: Reporter<RemapFailed>,
    dropped: Reporter<RemapDropped>,
    metrics: ComponentMetrics,
}

/// Why an event left the program without a result.
enum Failure {
    Error(String),
    Abort(String),
}

/// What the event was, while its fields or metric view are the program's target.
enum Carrier {
    Log(EventMetadata),
    Metric(Box<Metric>),
}

impl Remap {
    /// Runs the program on one event; its results (none, one or several) go to
    /// `output`. A log's fields are the program's `.`; a metric is seen through
    /// [`vrl_metric`] and what the program left is written back.
    fn run(&mut self, event: Event, output: &mut TransformOutput) {
        // A metric can fail after the program, when written back: keep it always.
        let original =
            (self.keep_original || matches!(event, Event::Metric(_))).then(|| event.clone());
        let (value, mut carrier) = match event {
            Event::Log(log) => {
                let (fields, metadata) = log.into_parts();
                (Value::Object(fields), Carrier::Log(metadata))
            }
            Event::Metric(m) => (vrl_metric::to_value(&m), Carrier::Metric(m)),
        };
        let metadata = match &mut carrier {
            Carrier::Log(md) => &mut md.value,
            Carrier::Metric(m) => &mut m.metadata.value,
        };
        let meta_value = metadata
            .take()
            .map_or_else(|| Value::Object(ObjectMap::new()), |v| *v);
        let mut target = TargetValue {
            value,
            metadata: meta_value,
            secrets: Secrets::default(),
        };
        let result = self
            .runtime
            .resolve(&mut target, &self.program, &self.timezone);
        self.runtime.clear();
        let mut failure = match result {
            Ok(_) => None,
            Err(Terminate::Abort(e)) => Some(Failure::Abort(e.to_string())),
            Err(Terminate::Error(e)) => Some(Failure::Error(e.to_string())),
            Err(Terminate::Interrupted) => Some(Failure::Error("interrupted".into())),
        };
        if failure.is_none() {
            let meta = match target.metadata {
                Value::Object(m) if m.is_empty() => None,
                v => Some(Box::new(v)),
            };
            match carrier {
                Carrier::Log(mut metadata) => {
                    metadata.value = meta;
                    if !emit(target.value, metadata, output) {
                        // `. = []`: the program turned the event into nothing, on purpose.
                        self.metrics.discarded_intentional.increment(1);
                    }
                    return;
                }
                Carrier::Metric(mut m) => match vrl_metric::apply(target.value, &mut m) {
                    Ok(()) => {
                        m.metadata.value = meta;
                        output.push(Event::Metric(m));
                        return;
                    }
                    Err(why) => failure = Some(Failure::Error(why)),
                },
            }
        }
        let Some(failure) = failure else {
            return;
        };
        let (drop, reason, message) = match &failure {
            Failure::Error(m) => (self.drop_on_error, "error", m.as_str()),
            Failure::Abort(m) => (self.drop_on_abort, "abort", m.as_str()),
        };
        if let Failure::Error(m) = &failure {
            if !drop {
                self.failed
                    .emit(|| format!("The VRL program failed; the event goes on unchanged: {m}"));
            }
        }
        if drop && !self.reroute_dropped {
            match failure {
                // `abort` is the program's decision: an intentional discard.
                Failure::Abort(_) => self.metrics.discarded_intentional.increment(1),
                Failure::Error(m) => self.dropped.emit_dropped(1, || {
                    format!("The VRL program failed; the event is dropped (drop_on_error): {m}")
                }),
            }
            return;
        }
        // The event as it came in: kept whenever the program can fail in a way that
        // passes it on or reroutes it.
        let Some(mut original) = original else {
            self.dropped.emit_dropped(1, || {
                format!("The VRL program failed where it could not; the event is lost: {message}")
            });
            return;
        };
        if !drop {
            output.push(original);
            return;
        }
        self.annotate_dropped(&mut original, reason, message);
        output.push_named(0, original);
    }

    /// Vector's record of why an event went to `dropped`: `metadata.dropped` in a log's
    /// fields, `metadata.dropped.*` tags on a metric (which has no fields).
    fn annotate_dropped(&self, event: &mut Event, reason: &str, message: &str) {
        let component_id = self.component_id.clone();
        match event {
            Event::Log(log) => {
                let mut dropped = ObjectMap::new();
                dropped.insert("reason".into(), Value::from(reason));
                dropped.insert("message".into(), Value::from(message));
                dropped.insert("component_id".into(), component_id);
                dropped.insert("component_type".into(), Value::from("remap"));
                dropped.insert("component_kind".into(), Value::from("transform"));
                let fields = log.fields_mut();
                match fields.get_mut("metadata") {
                    Some(Value::Object(m)) => {
                        m.insert("dropped".into(), Value::Object(dropped));
                    }
                    _ => {
                        let mut m = ObjectMap::new();
                        m.insert("dropped".into(), Value::Object(dropped));
                        fields.insert("metadata".into(), Value::Object(m));
                    }
                }
            }
            Event::Metric(m) => {
                let id = component_id.to_str_lossy().unwrap_or_default().into_owned();
                for (k, v) in [
                    ("reason", reason),
                    ("component_id", id.as_str()),
                    ("component_type", "remap"),
                    ("component_kind", "transform"),
                ] {
                    m.tags.insert(format!("metadata.dropped.{k}"), v.to_owned());
                }
            }
        }
    }
}

/// The events a program's `.` stands for: an object is one event, an array of
/// objects one each (sharing the metadata and its finalizers), anything else the
/// `message` of one. Whether any event came out.
fn emit(value: Value, metadata: EventMetadata, output: &mut TransformOutput) -> bool {
    match value {
        Value::Object(fields) => output.push(LogEvent::from_parts(fields, metadata).into()),
        Value::Array(items) if items.is_empty() => return false,
        Value::Array(items) => {
            for item in items {
                let fields = match item {
                    Value::Object(f) => f,
                    other => {
                        let mut f = ObjectMap::new();
                        f.insert("message".into(), other);
                        f
                    }
                };
                output.push(LogEvent::from_parts(fields, metadata.clone()).into());
            }
        }
        other => {
            let mut f = ObjectMap::new();
            f.insert("message".into(), other);
            output.push(LogEvent::from_parts(f, metadata).into());
        }
    }
    true
}

impl Transform for Remap {
    fn transform(&mut self, input: Batch, output: &mut TransformOutput) {
        for event in input {
            self.run(event, output);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventMetadata;
    use crate::internal_events::{ComponentKind, ComponentLabels};
    use proptest::prelude::*;

    fn remap(source: &str) -> Box<dyn Transform> {
        let config = RemapConfig {
            source: Some(source.into()),
            file: None,
            drop_on_error: false,
            drop_on_abort: true,
            reroute_dropped: false,
            timezone: None,
        };
        let metrics = ComponentMetrics::new(ComponentLabels {
            id: "remap-unit".into(),
            kind: ComponentKind::Transform,
            type_name: "remap",
        });
        match config.build(TransformContext {
            id: "remap-unit".into(),
            metrics,
            timezone: None,
            data_dir: std::env::temp_dir(),
        }) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        }
    }

    /// JSON values of every kind, nested a few levels.
    fn json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            (-1e12f64..1e12).prop_map(serde_json::Value::from),
            "\\PC{0,12}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
                prop::collection::btree_map("[a-z_]{1,6}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Any JSON object through the program `.` comes out as it went in: nothing is
        /// lost or retyped crossing into VRL and back.
        #[test]
        fn an_empty_program_returns_every_object_unchanged(
            fields in prop::collection::btree_map("[a-z_]{1,8}", json(), 0..6)
        ) {
            let object = serde_json::Value::Object(fields.into_iter().collect());
            let Value::Object(map) = Value::from(object.clone()) else {
                return Err(TestCaseError::fail("not an object"));
            };
            let mut t = remap(".");
            let mut out = TransformOutput::new(1);
            let event = LogEvent::from_parts(map.clone(), EventMetadata::new("t", chrono::Utc::now()));
            t.transform(vec![event.into()], &mut out);
            prop_assert_eq!(out.default.len(), 1);
            let Some(Event::Log(back)) = out.default.pop() else {
                return Err(TestCaseError::fail("no log event came out"));
            };
            prop_assert_eq!(back.fields(), &map);
        }
    }
}
