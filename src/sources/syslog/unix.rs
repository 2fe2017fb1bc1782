//! Local syslog sockets, for a host where sluice replaces the syslog daemon:
//! `mode = "unix"` is a datagram socket, the way glibc's `syslog(3)` and `logger` write
//! to `/dev/log`; `mode = "unix_stream"` is a stream socket framed as TCP is. The socket
//! file is created at start: a stale one (left by a crash) is replaced, one another
//! running process still serves is an error naming the path, and anything that is not a
//! socket is left alone and refused. It is removed at exit. A local datagram writer
//! blocks while the socket's queue is full, so a slow pipeline pushes back on the
//! applications instead of losing their messages.

use super::{EventBuilder, SyslogConfig, SyslogMode};
use crate::event::MAX_BATCH_EVENTS;
use crate::internal_events::failures::{AcceptFailed, ReadFailed};
use crate::topology::component::{BuildError, SourceContext, Task};
use bytes::BytesMut;
use chrono::Utc;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::{UnixDatagram, UnixListener};

/// The largest datagram read; longer ones are cut by the kernel.
const MAX_DATAGRAM: usize = 65_536;

pub(super) fn build(config: SyslogConfig, cx: SourceContext) -> Result<Task, BuildError> {
    let path = config
        .path
        .clone()
        .ok_or_else(|| BuildError::Other("path: missing required key".into()))?;
    clear_stale(&path)?;
    let io = |what: &str, source| BuildError::Io {
        what: format!("{what} {}", path.display()),
        source,
    };
    let task: Task = match config.mode {
        SyslogMode::UnixStream => {
            let listener = UnixListener::bind(&path).map_err(|e| io("binding", e))?;
            let file = SocketFile::new(path.clone(), config.socket_file_mode)?;
            Box::pin(serve_stream(listener, file, config, cx))
        }
        _ => {
            let sock = UnixDatagram::bind(&path).map_err(|e| io("binding", e))?;
            let file = SocketFile::new(path.clone(), config.socket_file_mode)?;
            Box::pin(serve_datagrams(sock, file, config, cx))
        }
    };
    Ok(task)
}

/// Makes room for the socket at `path`: removes a socket nobody serves any more, and
/// refuses one that is served or anything that is not a socket.
fn clear_stale(path: &Path) -> Result<(), BuildError> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Err(BuildError::Other(format!(
            "path: {} exists and is not a socket; sluice will not replace it",
            path.display()
        )));
    }
    // A socket that answers, or whose kind differs from ours, is alive.
    let stream = std::os::unix::net::UnixStream::connect(path);
    let datagram = std::os::unix::net::UnixDatagram::unbound().and_then(|d| d.connect(path));
    let alive = |r: &std::io::Result<()>| match r {
        Ok(()) => true,
        Err(e) => e.raw_os_error() == Some(EPROTOTYPE),
    };
    if alive(&stream.map(|_| ())) || alive(&datagram) {
        return Err(BuildError::Other(format!(
            "path: {} is served by another running process (another syslog daemon, or a second sluice); stop it or choose another path",
            path.display()
        )));
    }
    std::fs::remove_file(path).map_err(|source| BuildError::Io {
        what: format!("removing the stale socket {}", path.display()),
        source,
    })?;
    tracing::info!(path = %path.display(), "Replaced a stale syslog socket file.");
    Ok(())
}

/// Linux's `EPROTOTYPE`: the socket exists and is served, with the other kind.
const EPROTOTYPE: i32 = 91;

/// The socket file: its mode set at start, removed when the source ends.
struct SocketFile(PathBuf);

impl SocketFile {
    fn new(path: PathBuf, mode: Option<u32>) -> Result<Self, BuildError> {
        let file = SocketFile(path);
        if let Some(mode) = mode {
            std::fs::set_permissions(&file.0, std::fs::Permissions::from_mode(mode)).map_err(
                |source| BuildError::Io {
                    what: format!("setting mode {mode:#o} on {}", file.0.display()),
                    source,
                },
            )?;
        }
        Ok(file)
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn serve_datagrams(
    sock: UnixDatagram,
    file: SocketFile,
    config: SyslogConfig,
    cx: SourceContext,
) {
    let builder = EventBuilder::new(&cx, &config);
    let errors = cx.metrics.reporter::<ReadFailed>();
    let mut buf = BytesMut::with_capacity(4 * MAX_DATAGRAM);
    let mut batch = Vec::with_capacity(64);
    tracing::info!(component_id = %cx.id, path = %file.0.display(), "Listening for syslog on a unix datagram socket.");
    loop {
        if buf.capacity() - buf.len() < MAX_DATAGRAM {
            buf.reserve(4 * MAX_DATAGRAM);
        }
        let first = tokio::select! {
            r = sock.recv_buf(&mut buf) => r,
            _ = cx.shutdown.cancelled() => break,
        };
        let now = Utc::now();
        let mut next = Some(first);
        while let Some(r) = next.take() {
            match r {
                Ok(n) => {
                    cx.metrics.received_bytes.increment(n as u64);
                    let (datagram, truncated) =
                        super::datagram_frame(buf.split_to(n).freeze(), config.max_length);
                    builder.push(&datagram, truncated, None, now, &mut batch);
                }
                Err(e) => {
                    errors.emit(|| format!("Receiving from {} failed: {e}", file.0.display()))
                }
            }
            if batch.len() < MAX_BATCH_EVENTS {
                if buf.capacity() - buf.len() < MAX_DATAGRAM {
                    buf.reserve(4 * MAX_DATAGRAM);
                }
                match sock.try_recv_buf(&mut buf) {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    r => next = Some(r),
                }
            }
        }
        if !crate::sources::send_batch(&mut batch, &cx.metrics, &cx.out).await {
            return;
        }
    }
    crate::sources::send_batch(&mut batch, &cx.metrics, &cx.out).await;
    tracing::info!(component_id = %cx.id, "Syslog unix socket stopped.");
}

async fn serve_stream(
    listener: UnixListener,
    file: SocketFile,
    config: SyslogConfig,
    cx: SourceContext,
) {
    let errors = cx.metrics.reporter::<AcceptFailed>();
    let config = Arc::new(config);
    let cx = Arc::new(cx);
    let mut connections = tokio::task::JoinSet::new();
    tracing::info!(component_id = %cx.id, path = %file.0.display(), "Listening for syslog on a unix stream socket.");
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = cx.shutdown.cancelled() => break,
        };
        match accepted {
            Ok((stream, _)) => {
                let peer = file.0.display().to_string();
                connections.spawn(super::tcp::connection(
                    stream,
                    peer,
                    None,
                    config.clone(),
                    cx.clone(),
                ));
            }
            Err(e) => {
                // As the TCP listener does: a pause, so a lasting failure (no file
                // descriptors left) does not spin.
                errors.emit(|| format!("Accepting on {} failed: {e}", file.0.display()));
                tokio::time::sleep(crate::sources::util::tcp::ACCEPT_BACKOFF).await;
            }
        }
        // Reap the finished ones so the set does not grow with every client.
        while connections.try_join_next().is_some() {}
    }
    // Each connection reads what its client sent before the shutdown, then ends.
    while connections.join_next().await.is_some() {}
    tracing::info!(component_id = %cx.id, "Syslog unix socket stopped.");
}
