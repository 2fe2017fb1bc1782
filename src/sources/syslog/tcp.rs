//! Syslog over TCP on the shared listener (`sources/util/tcp.rs`): each connection has
//! its own framer and read buffer and sends its batches straight into the downstream
//! buffers (so a full sink slows the reading of exactly the connections that feed it).
//! After shutdown a connection is read to its end (or until it has been silent for
//! `DRAIN_IDLE`), so what clients sent before SIGTERM is delivered.

use super::{EventBuilder, Framer, FramingError, SyslogConfig};
use crate::event::MAX_BATCH_EVENTS;
use crate::internal_events::failures::{FramingFailed, ReadFailed};
use crate::sources::util::tcp::{self, Conn, ListenerContext};
use crate::topology::component::{BuildError, SourceContext, Task};
use bytes::BytesMut;
use chrono::Utc;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// How much a connection reads at once.
const READ_CHUNK: usize = 64 * 1024;

/// After shutdown, a connection that stays silent this long is considered finished.
const DRAIN_IDLE: Duration = Duration::from_millis(500);

pub(super) fn build(config: SyslogConfig, cx: SourceContext) -> Result<Task, BuildError> {
    let address = config
        .address
        .ok_or_else(|| BuildError::Other("address: missing required key".into()))?;
    let listener = tcp::bind(address, config.receive_buffer_bytes)?;
    let options = config.listener_options().map_err(BuildError::Other)?;
    let listener_cx = ListenerContext::from(&cx);
    let cx = Arc::new(cx);
    let config = Arc::new(config);
    Ok(Box::pin(tcp::serve(
        listener,
        options,
        listener_cx,
        "syslog over TCP",
        move |stream: Conn, peer: SocketAddr| {
            let ip = super::ip_value(peer.ip());
            connection(stream, peer, Some(ip), config.clone(), cx.clone())
        },
    )))
}

/// Reads one stream connection to its end: TCP (`ip` is the peer's, for `source_ip`
/// and `host`) or a local stream socket (`ip` is `None`; `peer` names it in logs).
pub(super) async fn connection(
    mut stream: impl tokio::io::AsyncRead + Unpin,
    peer: impl std::fmt::Display,
    ip: Option<crate::event::Value>,
    config: Arc<SyslogConfig>,
    cx: Arc<SourceContext>,
) {
    let max_length = config.max_length;
    let builder = EventBuilder::new(&cx, &config);
    let framing_errors = cx.metrics.reporter::<FramingFailed>();
    let read_errors = cx.metrics.reporter::<ReadFailed>();
    let mut framer = Framer::new(max_length);
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut batch = Vec::with_capacity(64);
    let mut draining = cx.shutdown.is_cancelled();
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
                builder.push(frame, d.truncated, ip.as_ref(), now, &mut batch);
                if batch.len() >= MAX_BATCH_EVENTS
                    && !crate::sources::send_batch(&mut batch, &cx.metrics, &cx.out).await
                {
                    return;
                }
            }
        }
        if !crate::sources::send_batch(&mut batch, &cx.metrics, &cx.out).await || eof {
            break;
        }
    }
}
