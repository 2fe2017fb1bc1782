//! Pieces every sink shares: encoders, templates, and a home for blocking I/O.

pub mod encoding;
pub mod template;

use crate::topology::component::{BuildError, Task};
use std::future::Future;

/// Runs a sink whose writes block (files, stdout) on a thread of its own with a
/// single-threaded runtime, so blocking I/O never stalls the async workers while the sink
/// still awaits its buffer and timers as usual.
pub fn on_own_thread<F>(name: &str, fut: F) -> Result<Task, BuildError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|source| BuildError::Io {
            what: "starting the sink's runtime".into(),
            source,
        })?;
    std::thread::Builder::new()
        .name(format!("sink-{name}"))
        .spawn(move || {
            rt.block_on(fut);
            let _ = tx.send(());
        })
        .map_err(|source| BuildError::Io {
            what: "starting the sink's thread".into(),
            source,
        })?;
    Ok(Box::pin(async move {
        let _ = rx.await;
    }))
}
