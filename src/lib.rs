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

/// Replaces `path` with `data` so that a crash at any moment leaves the old file or the
/// new one, never a torn one: written to `<path>.tmp`, synced, renamed over, and the
/// directory synced so the rename itself survives power loss. For checkpoints and
/// saved state.
pub fn write_atomic(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// This machine's host name, for the `host` field of sources that have no peer.
pub fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}
