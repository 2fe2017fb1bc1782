//! sluice: a small, fast observability pipeline agent. Sources read events, transforms
//! reshape them, sinks deliver them; bounded buffers between them carry batches and push
//! back instead of growing. See DESIGN.md for the architecture and metric contract.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod api;
pub mod aws;
pub mod config;
pub mod event;
pub mod http;
pub mod internal_events;
pub mod kafka;
pub mod sinks;
pub mod sources;
pub mod topology;
pub mod transforms;

/// Seconds from a config or a server as a `Duration`, never panicking: negative or NaN
/// is zero, anything beyond a day is a day (`Duration::from_secs_f64` panics on both).
pub fn seconds(secs: f64) -> std::time::Duration {
    const DAY: std::time::Duration = std::time::Duration::from_secs(86_400);
    std::time::Duration::try_from_secs_f64(secs.max(0.0)).map_or(DAY, |d| d.min(DAY))
}

/// This machine's host name, for the `host` field of sources that have no peer.
pub fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}
