//! Vector's conditions, as `filter`, `route` and `sample.exclude` take them: a VRL
//! boolean expression, written as a string or as the table `{ type = "vrl", source =
//! "…" }`. Compiled once; a program that cannot return a boolean, or does not compile,
//! is a `validate` error in VRL's own words. At run time a condition that fails (an
//! error in a fallible call) is false, counted and logged. The common comparisons of
//! a field with a literal run natively ([`native`]), with VRL's meaning.

pub mod native;

use crate::config::field::FieldIssue;
use crate::event::{Event, ObjectMap, Value};
use crate::internal_events::failures::ConditionFailed;
use crate::internal_events::Reporter;
use native::Native;
use serde::Deserialize;
use vrl::compiler::runtime::{Runtime, Terminate};
use vrl::compiler::{Program, TargetValue, TimeZone};
use vrl::diagnostic::Formatter;
use vrl::value::Secrets;

/// A condition as written: `"<VRL>"` or `{ type = "vrl", source = "<VRL>" }`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ConditionConfig {
    /// The VRL expression itself.
    Vrl(String),
    /// Vector's table form.
    Table {
        /// `vrl`; Vector's other condition types are refused with the reason.
        #[serde(rename = "type", default = "vrl_type")]
        kind: String,
        /// The expression.
        source: Option<String>,
    },
}

fn vrl_type() -> String {
    "vrl".into()
}

impl ConditionConfig {
    /// The VRL text, or why this condition cannot be used; `key` names it in messages.
    fn text(&self, key: &str) -> Result<&str, FieldIssue> {
        match self {
            ConditionConfig::Vrl(s) => Ok(s),
            ConditionConfig::Table { kind, source } => match (kind.as_str(), source) {
                ("vrl", Some(s)) => Ok(s),
                ("vrl", None) => Err(FieldIssue::new(
                    format!("{key}.source"),
                    "missing required key: the VRL expression",
                )),
                ("is_log" | "is_metric" | "is_trace", _) => Err(FieldIssue::new(
                    format!("{key}.type"),
                    format!("Vector's `{kind}` condition is not supported by sluice: write it in VRL (`is_object(.)`, or route metrics by their own sources)"),
                )),
                (other, _) => Err(FieldIssue::new(
                    format!("{key}.type"),
                    format!("Vector's `{other}` condition is not supported by sluice: write the condition in VRL (`type = \"vrl\"`)"),
                )),
            },
        }
    }

    /// Compiles the condition; the error names `key` and carries VRL's diagnostic.
    pub fn compile(&self, key: &str) -> Result<CompiledCondition, FieldIssue> {
        let text = self.text(key)?;
        let functions = vrl::stdlib::all();
        let result = vrl::compiler::compile(text, &functions).map_err(|d| {
            FieldIssue::new(
                key,
                format!(
                    "the VRL condition does not compile:\n{}",
                    Formatter::new(text, d).to_string().trim()
                ),
            )
        })?;
        let kind = result.program.final_type_info().result.kind().clone();
        if !kind.is_boolean() {
            return Err(FieldIssue::new(
                key,
                format!("a VRL condition must return a boolean; `{text}` returns {kind}"),
            ));
        }
        Ok(CompiledCondition {
            program: result.program,
            native: Native::parse(text),
        })
    }
}

/// A condition compiled by VRL, and its native form when it has one.
pub struct CompiledCondition {
    program: Program,
    native: Option<Native>,
}

/// The condition at `key` compiled for a running transform, or `None` when unset.
pub fn build_condition(
    condition: &Option<ConditionConfig>,
    key: &str,
    cx: &crate::topology::component::TransformContext,
) -> Result<Option<Condition>, crate::topology::component::BuildError> {
    let Some(c) = condition else { return Ok(None) };
    let program = c
        .compile(key)
        .map_err(|e| crate::topology::component::BuildError::Other(e.message))?;
    Ok(Some(Condition::new(
        program,
        vrl_timezone(cx.timezone),
        cx.metrics.reporter(),
    )))
}

/// A compiled condition with its runtime.
pub struct Condition {
    program: Program,
    native: Option<Native>,
    runtime: Runtime,
    timezone: TimeZone,
    failed: Reporter<ConditionFailed>,
}

impl Condition {
    /// A condition ready to check events.
    pub fn new(
        compiled: CompiledCondition,
        timezone: TimeZone,
        failed: Reporter<ConditionFailed>,
    ) -> Self {
        Self {
            program: compiled.program,
            native: compiled.native,
            runtime: Runtime::default(),
            timezone,
            failed,
        }
    }

    /// Whether `event` meets the condition. A log's fields are the program's `.` for
    /// the time of the check (no copy); a metric is seen as `remap` sees it (name,
    /// namespace, tags, kind, type, …) and left as it was.
    pub fn check(&mut self, event: &mut Event) -> bool {
        let log = match event {
            Event::Log(log) if self.native.is_some() => {
                return self.native.as_ref().is_some_and(|n| n.check(log.fields()));
            }
            Event::Log(log) => log,
            Event::Metric(m) => {
                let mut target = TargetValue {
                    value: super::vrl_metric::to_value(m),
                    metadata: m
                        .metadata
                        .value
                        .as_deref()
                        .cloned()
                        .unwrap_or_else(|| Value::Object(ObjectMap::new())),
                    secrets: Secrets::default(),
                };
                let result = self
                    .runtime
                    .resolve(&mut target, &self.program, &self.timezone);
                self.runtime.clear();
                return self.verdict(result);
            }
        };
        let fields = std::mem::take(log.fields_mut());
        let metadata = log
            .metadata
            .value
            .take()
            .map_or_else(|| Value::Object(ObjectMap::new()), |v| *v);
        let mut target = TargetValue {
            value: Value::Object(fields),
            metadata,
            secrets: Secrets::default(),
        };
        let result = self
            .runtime
            .resolve(&mut target, &self.program, &self.timezone);
        self.runtime.clear();
        match target.value {
            Value::Object(f) => *log.fields_mut() = f,
            // A condition that replaced `.` with a non-object: keep what it left.
            other => {
                log.fields_mut().insert("message".into(), other);
            }
        }
        log.metadata.value = match target.metadata {
            Value::Object(m) if m.is_empty() => None,
            v => Some(Box::new(v)),
        };
        self.verdict(result)
    }

    fn verdict(&self, result: Result<Value, Terminate>) -> bool {
        match result {
            Ok(Value::Boolean(b)) => b,
            Ok(_) => false,
            Err(e) => {
                self.failed
                    .emit(|| format!("A VRL condition failed, so it is false: {e}"));
                false
            }
        }
    }
}

/// The `vrl` time zone of the top-level `timezone` (the machine's when unset).
pub fn vrl_timezone(tz: Option<crate::config::timezone::TimeZone>) -> TimeZone {
    match tz {
        Some(crate::config::timezone::TimeZone::Named(t)) => TimeZone::Named(t),
        _ => TimeZone::Local,
    }
}
