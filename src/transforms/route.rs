//! `route` transform: one named output per route (`route.NAME = "<VRL condition>"`); an
//! event goes to every route whose condition it meets, and to `_unmatched` when it
//! meets none (unless `reroute_unmatched = false`, which discards it), as in Vector.
//! Routes are checked in name order.

use super::condition::{vrl_timezone, Condition, ConditionConfig};
use crate::config::field::FieldIssue;
use crate::event::Batch;
use crate::internal_events::ComponentMetrics;
use crate::topology::component::{
    BuildError, Transform, TransformConfig, TransformContext, TransformOutput,
};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The output of events no route takes.
const UNMATCHED: &str = "_unmatched";

/// `[transforms.ID] type = "route"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Route name to condition; consumers read `ID.NAME`.
    #[serde(default)]
    pub route: BTreeMap<String, ConditionConfig>,
    /// Send events no route takes to `ID._unmatched` (default true); `false` discards
    /// them (intentionally).
    #[serde(default = "default_true")]
    pub reroute_unmatched: bool,
}

fn default_true() -> bool {
    true
}

impl TransformConfig for RouteConfig {
    fn concurrent(&self) -> bool {
        true
    }

    fn outputs(&self) -> Vec<String> {
        let mut names: Vec<String> = self.route.keys().cloned().collect();
        if self.reroute_unmatched {
            names.push(UNMATCHED.into());
        }
        names
    }

    fn validate(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        if self.route.is_empty() {
            issues.push(FieldIssue::new(
                "route",
                "needs at least one route (`route.NAME = \"<VRL condition>\"`)",
            ));
        }
        for (name, condition) in &self.route {
            if name == UNMATCHED {
                issues.push(FieldIssue::new(
                    format!("route.{name}"),
                    "is the output of events no route takes; name the route otherwise",
                ));
            } else if name.is_empty() || name.contains('.') {
                issues.push(FieldIssue::new(
                    format!("route.{name}"),
                    "route names may not be empty or contain `.`",
                ));
            }
            if let Err(e) = condition.compile(&format!("route.{name}")) {
                issues.push(e);
            }
        }
        issues
    }

    fn build(&self, cx: TransformContext) -> Result<Box<dyn Transform>, BuildError> {
        let timezone = vrl_timezone(cx.timezone);
        let mut routes = Vec::new();
        for (name, condition) in &self.route {
            let program = condition
                .compile(&format!("route.{name}"))
                .map_err(|e| BuildError::Other(e.message))?;
            routes.push(Condition::new(program, timezone, cx.metrics.reporter()));
        }
        Ok(Box::new(Route {
            unmatched: self.reroute_unmatched.then_some(routes.len()),
            routes,
            metrics: cx.metrics,
        }))
    }
}

struct Route {
    routes: Vec<Condition>,
    /// The index of `_unmatched` among the named outputs, when rerouted.
    unmatched: Option<usize>,
    metrics: ComponentMetrics,
}

impl Transform for Route {
    fn transform(&mut self, input: Batch, output: &mut TransformOutput) {
        let mut discarded = 0u64;
        for mut event in input {
            // Which routes take it, then one copy each (the last takes the event).
            let mut matched: Vec<usize> = Vec::new();
            for (i, route) in self.routes.iter_mut().enumerate() {
                if route.check(&mut event) {
                    matched.push(i);
                }
            }
            match matched.split_last() {
                Some((&last, rest)) => {
                    for &i in rest {
                        output.push_named(i, event.clone());
                    }
                    output.push_named(last, event);
                }
                None => match self.unmatched {
                    Some(i) => output.push_named(i, event),
                    None => discarded += 1,
                },
            }
        }
        if discarded > 0 {
            self.metrics.discarded_intentional.increment(discarded);
        }
    }
}
