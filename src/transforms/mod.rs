//! Transforms: functions from batches to batches between sources and sinks. Register a
//! new one with one line below.

pub mod aggregate;
pub mod alert;
pub mod condition;
pub mod dedupe;
pub mod filter;
pub mod log_to_metric;
pub mod remap;
pub mod route;
pub mod sample;
pub mod throttle;
pub mod vrl_metric;

use crate::topology::component::{transform, Registration, TransformConfig};

/// Every transform type by its `type` name.
pub static REGISTRY: &[Registration<dyn TransformConfig>] = &[
    transform::<aggregate::AggregateConfig>("aggregate"),
    transform::<alert::AlertConfig>("alert"),
    transform::<dedupe::DedupeConfig>("dedupe"),
    transform::<filter::FilterConfig>("filter"),
    transform::<log_to_metric::LogToMetricConfig>("log_to_metric"),
    transform::<remap::RemapConfig>("remap"),
    transform::<route::RouteConfig>("route"),
    transform::<sample::SampleConfig>("sample"),
    transform::<throttle::ThrottleConfig>("throttle"),
];
