//! `filter` transform: passes the events for which a VRL condition is true, as Vector's
//! does; the others are intentional discards.

use super::condition::{vrl_timezone, Condition, ConditionConfig};
use crate::config::field::FieldIssue;
use crate::event::Batch;
use crate::internal_events::ComponentMetrics;
use crate::topology::component::{
    BuildError, Transform, TransformConfig, TransformContext, TransformOutput,
};
use serde::Deserialize;

/// `[transforms.ID] type = "filter"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterConfig {
    /// The condition events must meet: `'.status >= 500'` or Vector's table form.
    pub condition: ConditionConfig,
}

impl TransformConfig for FilterConfig {
    fn concurrent(&self) -> bool {
        true
    }

    fn validate(&self) -> Vec<FieldIssue> {
        self.condition
            .compile("condition")
            .err()
            .into_iter()
            .collect()
    }

    fn build(&self, cx: TransformContext) -> Result<Box<dyn Transform>, BuildError> {
        let program = self
            .condition
            .compile("condition")
            .map_err(|e| BuildError::Other(e.message))?;
        Ok(Box::new(Filter {
            condition: Condition::new(program, vrl_timezone(cx.timezone), cx.metrics.reporter()),
            metrics: cx.metrics,
        }))
    }
}

struct Filter {
    condition: Condition,
    metrics: ComponentMetrics,
}

impl Transform for Filter {
    fn transform(&mut self, input: Batch, output: &mut TransformOutput) {
        let mut dropped = 0u64;
        for mut event in input {
            if self.condition.check(&mut event) {
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
