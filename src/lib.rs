//! sluice: a small, fast observability pipeline agent. Sources read events, transforms
//! reshape them, sinks deliver them; bounded buffers between them carry batches and push
//! back instead of growing. See DESIGN.md for the architecture and metric contract.

#![warn(missing_docs)]

pub mod api;
pub mod config;
pub mod event;
pub mod http;
pub mod internal_events;
pub mod sinks;
pub mod sources;
pub mod topology;
pub mod transforms;

/// This machine's host name, for the `host` field of sources that have no peer.
pub fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}
