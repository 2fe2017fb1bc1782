//! `http` sink: events to any HTTP endpoint (webhooks, workflow tools, another sluice),
//! batched per rendered URI, encoded once, optionally gzipped, and delivered by the
//! shared sink runner (`sinks/util/runner.rs`): bounded concurrency with order kept per
//! URI, retries with backoff and jitter that honour `Retry-After`, and a circuit breaker
//! per destination. Events are marked delivered only when the endpoint answered 2xx.
//!
//! Split as every network sink is: [`config`] (options, checks, assembly),
//! [`request_builder`] (events to request bodies), [`service`] (one request and what its
//! answer means), [`healthcheck`].

pub mod config;
pub mod healthcheck;
pub mod request_builder;
pub mod service;

pub use config::{HttpSinkConfig, SinkMethod};
pub use service::{classify, HttpRequest, HttpService};
