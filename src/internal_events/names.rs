//! Names of the metrics that more than one module emits, shared by the emitters and
//! [`super::describe_all`] so a renamed metric cannot leave a stale description behind.

/// Requests a sink sent again after a retryable failure (any network sink, not only HTTP).
pub const SINK_RETRIES: &str = "sluice_sink_retries_total";

/// 1 while a sink only probes a failing destination.
pub const SINK_CIRCUIT_OPEN: &str = "sluice_sink_circuit_open";
