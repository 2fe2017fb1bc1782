//! `influxdb` sink: log and metric events as InfluxDB line protocol, through the v1
//! (`/write`) or v2 (`/api/v2/write`) write API, gzipped by default, on the shared sink
//! runner. A partial write (a field type conflict, a point outside the retention policy)
//! is the runner's partial success: the points the server kept are delivered, the
//! dropped ones counted, nothing is retried.
//!
//! [`config`] (options, checks, assembly), [`line_protocol`] (exact escaping),
//! [`request_builder`] (events to lines), [`service`] (one write and what its answer
//! means), [`healthcheck`] (`GET /ping`).

pub mod config;
pub mod healthcheck;
pub mod line_protocol;
pub mod request_builder;
pub mod service;
pub mod vector;

pub use config::{ApiVersion, InfluxDbConfig};
