//! Transforms: functions from batches to batches between sources and sinks. Register a
//! new one with one line below.

pub mod remap;
pub mod sample;

use crate::topology::component::{transform, Registration, TransformConfig};

/// Every transform type by its `type` name.
pub static REGISTRY: &[Registration<dyn TransformConfig>] = &[
    transform::<remap::RemapConfig>("remap"),
    transform::<sample::SampleConfig>("sample"),
];
