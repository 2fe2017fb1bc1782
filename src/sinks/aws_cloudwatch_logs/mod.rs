//! `aws_cloudwatch_logs` sink: events to CloudWatch Logs through PutLogEvents, on the
//! shared sink runner (`sinks/util/runner.rs`), which batches per (group, stream) within
//! the API's limits (10,000 events, 1,048,576 bytes with 26 per event, chronological,
//! at most 24 hours apart), keeps one request in flight per stream, and retries with
//! backoff and jitter; the SDK's own retries are off. Groups and streams are created
//! when PutLogEvents says they are missing, never looked up per batch.
//!
//! Split as every network sink is: [`config`] (options, checks, assembly),
//! [`request_builder`] (events to requests, limits, truncation), [`service`] (one call
//! and what its answer means), [`healthcheck`].

pub mod config;
pub mod healthcheck;
pub mod request_builder;
pub mod service;

pub use config::CloudwatchLogsConfig;
