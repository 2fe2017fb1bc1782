//! `sample` transform: passes one event in every `rate`, to cut the volume of chatty
//! sources. Dropped events count as discarded on purpose (`intentional="true"`).

use crate::config::field::FieldIssue;
use crate::event::Batch;
use crate::internal_events::ComponentMetrics;
use crate::topology::component::{
    BuildError, Transform, TransformConfig, TransformContext, TransformOutput,
};
use serde::Deserialize;

/// `[transforms.ID] type = "sample"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleConfig {
    /// Keep 1 event out of this many (Vector's meaning).
    pub rate: u64,
}

impl TransformConfig for SampleConfig {
    fn build(&self, cx: TransformContext) -> Result<Box<dyn Transform>, BuildError> {
        Ok(Box::new(Sample {
            rate: self.rate.max(1),
            seen: 0,
            metrics: cx.metrics,
        }))
    }

    fn validate(&self) -> Vec<FieldIssue> {
        if self.rate == 0 {
            vec![FieldIssue::new("rate", "must be at least 1")]
        } else {
            Vec::new()
        }
    }
}

struct Sample {
    rate: u64,
    seen: u64,
    metrics: ComponentMetrics,
}

impl Transform for Sample {
    fn transform(&mut self, input: Batch, output: &mut TransformOutput) {
        let before = input.len();
        let mut kept = 0;
        for e in input {
            if self.seen % self.rate == 0 {
                output.push(e);
                kept += 1;
            }
            self.seen = self.seen.wrapping_add(1);
        }
        let dropped = (before - kept) as u64;
        if dropped > 0 {
            self.metrics.discarded_intentional.increment(dropped);
        }
    }
}
