//! Local syslog sockets, for a host where sluice replaces the syslog daemon:
//! `mode = "unix"` is a datagram socket, the way glibc's `syslog(3)` and `logger` write
//! to `/dev/log`; `mode = "unix_stream"` is a stream socket framed as TCP is. The socket
//! file is created at start: a stale one (left by a crash) is replaced, one another
//! running process still serves is an error naming the path, and anything that is not a
//! socket is left alone and refused. It is removed at exit. A local datagram writer
//! blocks while the socket's queue is full, so a slow pipeline pushes back on the
//! applications instead of losing their messages.
//!
//! The socket is bound once per path: a source rebuilt by a reload gets a duplicate of
//! the bound socket while its old instance still holds it, so the path never goes away
//! and a local writer never finds it missing (glibc's `syslog(3)` drops the message
//! then). The file is removed when the last instance ends.

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
    let stream = config.mode == SyslogMode::UnixStream;
    let held = bind(&path, stream, config.socket_file_mode)?;
    let io = |what: &str, source| BuildError::Io {
        what: format!("{what} {}", path.display()),
        source,
    };
    let task: Task = match &held.socket {
        Bound::Stream(l) => {
            let listener = l
                .try_clone()
                .and_then(UnixListener::from_std)
                .map_err(|e| io("registering", e))?;
            Box::pin(serve_stream(listener, held, config, cx))
        }
        Bound::Datagram(d) => {
            let sock = d
                .try_clone()
                .and_then(UnixDatagram::from_std)
                .map_err(|e| io("registering", e))?;
            Box::pin(serve_datagrams(sock, held, config, cx))
        }
    };
    Ok(task)
}

/// A bound unix socket, shared by the instances of the source on its path.
enum Bound {
    Stream(std::os::unix::net::UnixListener),
    Datagram(std::os::unix::net::UnixDatagram),
}

/// Holds a path bound: the socket and its file, removed when the last holder goes.
struct Held {
    socket: Bound,
    file: SocketFile,
}

/// Paths bound in this process, each while an instance holds it.
static BOUND: crate::sources::util::bound::Bound<PathBuf, Held> =
    crate::sources::util::bound::Bound::new();

/// The socket at `path`: the one this process already holds there (a reload), else a
/// new one, after making room for it.
fn bind(path: &Path, stream: bool, mode: Option<u32>) -> Result<Arc<Held>, BuildError> {
    let io = |what: &str, source| BuildError::Io {
        what: format!("{what} {}", path.display()),
        source,
    };
    let (held, existed) = BOUND.get_or_bind(Some(path.to_path_buf()), || {
        clear_stale(path)?;
        let socket = if stream {
            let l = std::os::unix::net::UnixListener::bind(path).map_err(|e| io("binding", e))?;
            l.set_nonblocking(true).map_err(|e| io("configuring", e))?;
            Bound::Stream(l)
        } else {
            let d = std::os::unix::net::UnixDatagram::bind(path).map_err(|e| io("binding", e))?;
            d.set_nonblocking(true).map_err(|e| io("configuring", e))?;
            Bound::Datagram(d)
        };
        Ok::<_, BuildError>(Held {
            socket,
            file: SocketFile(path.to_path_buf()),
        })
    })?;
    if existed && matches!(held.socket, Bound::Stream(_)) != stream {
        return Err(BuildError::Other(format!(
            "path: {} is held by this source's running instance as a {} socket; switching between mode = \"unix\" and \"unix_stream\" takes a restart",
            path.display(),
            if stream { "datagram" } else { "stream" }
        )));
    }
    held.file.set_mode(mode)?;
    Ok(held)
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

/// The socket file: its mode set at start, removed when the last instance ends.
struct SocketFile(PathBuf);

impl SocketFile {
    fn set_mode(&self, mode: Option<u32>) -> Result<(), BuildError> {
        let Some(mode) = mode else { return Ok(()) };
        std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(mode)).map_err(|source| {
            BuildError::Io {
                what: format!("setting mode {mode:#o} on {}", self.0.display()),
                source,
            }
        })
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn serve_datagrams(
    sock: UnixDatagram,
    held: Arc<Held>,
    config: SyslogConfig,
    cx: SourceContext,
) {
    let file = &held.file;
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
    held: Arc<Held>,
    config: SyslogConfig,
    cx: SourceContext,
) {
    let file = &held.file;
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
