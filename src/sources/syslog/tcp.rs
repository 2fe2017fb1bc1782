//! The TCP listener: one task per connection, each with its own framer and read buffer,
//! sending its batches straight into the downstream buffers (so a full sink slows the
//! reading of exactly the connections that feed it). On shutdown it stops accepting but
//! first takes the connections already waiting in the backlog, and every connection is
//! read to its end, so what clients sent before SIGTERM is delivered.

use super::{socket, EventBuilder, Framer, FramingError, SyslogConfig};
use crate::event::MAX_BATCH_EVENTS;
use crate::internal_events::failures::{AcceptFailed, FramingFailed, ReadFailed};
use crate::topology::component::{BuildError, SourceContext, Task};
use bytes::BytesMut;
use chrono::Utc;
use metrics::Gauge;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// How much a connection reads at once.
const READ_CHUNK: usize = 64 * 1024;

/// After shutdown, a connection that stays silent this long is considered finished.
const DRAIN_IDLE: Duration = Duration::from_millis(500);

pub(super) fn build(config: SyslogConfig, cx: SourceContext) -> Result<Task, BuildError> {
    let s = socket(
        config.address,
        socket2::Type::STREAM,
        config.receive_buffer_bytes,
    )?;
    s.listen(1024).map_err(|source| BuildError::Io {
        what: format!("listening on {}/tcp", config.address),
        source,
    })?;
    let listener = TcpListener::from_std(s.into()).map_err(|source| BuildError::Io {
        what: format!("registering {}/tcp", config.address),
        source,
    })?;
    Ok(Box::pin(serve(listener, config, cx)))
}

async fn serve(listener: TcpListener, config: SyslogConfig, cx: SourceContext) {
    let cx = Arc::new(cx);
    let limit = config.connection_limit.map(|n| Arc::new(Semaphore::new(n)));
    let open = cx.metrics.gauge("sluice_tcp_connections");
    let accepted = cx.metrics.counter("sluice_tcp_connections_total");
    let accept_errors = cx.metrics.reporter::<AcceptFailed>();
    let mut conns = JoinSet::new();
    tracing::info!(component_id = %cx.id, address = %config.address, "Listening for syslog over TCP.");
    loop {
        let permit = match &limit {
            Some(sem) => tokio::select! {
                p = sem.clone().acquire_owned() => p.ok(),
                _ = cx.shutdown.cancelled() => break,
            },
            None => None,
        };
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    accepted.increment(1);
                    conns.spawn(connection(stream, peer, config.max_length, cx.clone(), open.clone(), permit));
                }
                Err(e) => {
                    accept_errors.emit(|| format!("Accepting a TCP connection failed: {e}"));
                    // Out of descriptors and the like: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = cx.shutdown.cancelled() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    // Connections the kernel completed before the signal are the clients' data too.
    let sock = socket2::SockRef::from(&listener);
    while let Ok((s, addr)) = sock.accept() {
        let Some(peer) = addr.as_socket() else {
            continue;
        };
        let std: std::net::TcpStream = s.into();
        if std.set_nonblocking(true).is_err() {
            continue;
        }
        if let Ok(stream) = TcpStream::from_std(std) {
            accepted.increment(1);
            conns.spawn(connection(
                stream,
                peer,
                config.max_length,
                cx.clone(),
                open.clone(),
                None,
            ));
        }
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
    tracing::info!(component_id = %cx.id, "Syslog TCP listener stopped; all connections drained.");
}

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    max_length: usize,
    cx: Arc<SourceContext>,
    open: Gauge,
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
) {
    open.increment(1.0);
    let _ = stream.set_nodelay(true);
    let builder = EventBuilder::new(&cx, max_length);
    let framing_errors = cx.metrics.reporter::<FramingFailed>();
    let read_errors = cx.metrics.reporter::<ReadFailed>();
    let mut framer = Framer::new(max_length);
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut batch = Vec::with_capacity(64);
    let mut draining = cx.shutdown.is_cancelled();
    let ip = super::ip_value(peer.ip());
    loop {
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        let read = if draining {
            match tokio::time::timeout(DRAIN_IDLE, stream.read_buf(&mut buf)).await {
                Ok(r) => r,
                Err(_) => Ok(0), // silent since shutdown: treat as closed
            }
        } else {
            tokio::select! {
                r = stream.read_buf(&mut buf) => r,
                _ = cx.shutdown.cancelled() => { draining = true; continue; }
            }
        };
        let n = match read {
            Ok(n) => n,
            Err(e) => {
                read_errors.emit(|| format!("Reading from {peer} failed: {e}"));
                0
            }
        };
        cx.metrics.received_bytes.increment(n as u64);
        let now = Utc::now();
        let eof = n == 0;
        loop {
            let step = if eof {
                framer.decode_eof(&mut buf)
            } else {
                framer.decode(&mut buf)
            };
            let Some(d) = step else { break };
            if let Some(e) = d.error {
                framing_errors.emit(|| match e {
                    FramingError::BadLengthPrefix => format!(
                        "Connection from {peer} sent a bad octet-counting length; reading the rest as newline-framed."
                    ),
                    FramingError::IncompleteFrame => format!(
                        "Connection from {peer} closed inside an octet-counted frame; kept the part that arrived."
                    ),
                });
            }
            if let Some(frame) = &d.frame {
                builder.push(frame, d.truncated, Some(&ip), now, &mut batch);
                if batch.len() >= MAX_BATCH_EVENTS
                    && !crate::sources::send_batch(&mut batch, &cx.metrics, &cx.out).await
                {
                    open.decrement(1.0);
                    return;
                }
            }
        }
        if !crate::sources::send_batch(&mut batch, &cx.metrics, &cx.out).await || eof {
            break;
        }
    }
    open.decrement(1.0);
}
