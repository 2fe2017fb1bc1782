//! The UDP listener: one datagram is one message. It reads everything the kernel has
//! queued before sending a batch, so a burst costs one channel send per ~1000 messages.
//! UDP cannot push back; what the kernel drops while sluice is busy is lost, which
//! `receive_buffer_bytes` makes rarer.

use super::{EventBuilder, SyslogConfig};
use crate::event::MAX_BATCH_EVENTS;
use crate::internal_events::failures::{ReadFailed, UdpOverflow};
use crate::internal_events::names;
use crate::internal_events::Reporter;
use crate::sources::util::tcp::bind_socket as socket;
use crate::topology::component::{BuildError, SourceContext, Task};
use bytes::BytesMut;
use chrono::Utc;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::Duration;
use tokio::net::UdpSocket;

/// The largest UDP payload.
const MAX_DATAGRAM: usize = 65_536;

pub(super) fn build(config: SyslogConfig, cx: SourceContext) -> Result<Task, BuildError> {
    let address = config
        .address
        .ok_or_else(|| BuildError::Other("address: missing required key".into()))?;
    let s = socket(address, socket2::Type::DGRAM, config.receive_buffer_bytes)?;
    let sock = UdpSocket::from_std(s.socket.into()).map_err(|source| BuildError::Io {
        what: format!("registering {address}/udp"),
        source,
    })?;
    let holder = s.holder;
    Ok(Box::pin(async move {
        serve(sock, address, config, cx).await;
        drop(holder);
    }))
}

/// The kernel's count of datagrams it dropped for the socket with this inode (its
/// receive buffer was full), from the `drops` column of /proc/net/udp and udp6.
fn kernel_drops(inode: u64) -> Option<u64> {
    ["/proc/net/udp", "/proc/net/udp6"]
        .iter()
        .find_map(|table| {
            let text = std::fs::read_to_string(table).ok()?;
            text.lines().skip(1).find_map(|line| {
                let cols: Vec<&str> = line.split_whitespace().collect();
                if cols.get(9)?.parse::<u64>().ok()? == inode {
                    cols.get(12)?.parse().ok()
                } else {
                    None
                }
            })
        })
}

/// The inode of a socket, which names it in /proc/net/udp.
fn socket_inode(sock: &UdpSocket) -> Option<u64> {
    let link = std::fs::read_link(format!("/proc/self/fd/{}", sock.as_raw_fd())).ok()?;
    let s = link.to_str()?;
    s.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
}

/// Publishes what the kernel dropped since the last look: UDP cannot push back, so a
/// full receive buffer loses datagrams before sluice sees them. They are counted in
/// `sluice_udp_kernel_drops_total` and as unintentional discards.
struct DropWatch {
    inode: Option<u64>,
    seen: u64,
    total: metrics::Counter,
    reporter: Reporter<UdpOverflow>,
}

impl DropWatch {
    fn check(&mut self) {
        let Some(now) = self.inode.and_then(kernel_drops) else {
            return;
        };
        if now > self.seen {
            let n = now - self.seen;
            self.seen = now;
            self.total.absolute(now);
            self.reporter.emit_dropped(n, || {
                format!("The kernel dropped {n} datagrams because the receive buffer was full; raise receive_buffer_bytes or relieve the sinks.")
            });
        }
    }
}

/// Stops a helper task when its owner ends, however it ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn serve(sock: UdpSocket, address: SocketAddr, config: SyslogConfig, cx: SourceContext) {
    let builder = EventBuilder::new(&cx, &config);
    let errors = cx.metrics.reporter::<ReadFailed>();
    let mut drops = DropWatch {
        inode: socket_inode(&sock),
        seen: 0,
        total: cx.metrics.counter(names::UDP_KERNEL_DROPS),
        reporter: cx.metrics.reporter(),
    };
    // Its own task: the kernel drops exactly while this loop is blocked on a full sink.
    let watch = AbortOnDrop(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            drops.check();
        }
    }));
    let mut buf = BytesMut::with_capacity(4 * MAX_DATAGRAM);
    let mut batch = Vec::with_capacity(64);
    tracing::info!(component_id = %cx.id, %address, "Listening for syslog over UDP.");
    let mut stopping = false;
    let mut last_peer: Option<(std::net::IpAddr, crate::event::Value)> = None;
    loop {
        if buf.capacity() - buf.len() < MAX_DATAGRAM {
            buf.reserve(4 * MAX_DATAGRAM);
        }
        let first = if stopping {
            // Take what the kernel already holds, then stop.
            match sock.try_recv_buf_from(&mut buf) {
                Ok(r) => Ok(r),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => Err(e),
            }
        } else {
            tokio::select! {
                r = sock.recv_buf_from(&mut buf) => r,
                _ = cx.shutdown.cancelled() => { stopping = true; continue; }
            }
        };
        let now = Utc::now();
        let mut next = Some(first);
        while let Some(r) = next.take() {
            match r {
                Ok((n, peer)) => {
                    cx.metrics.received_bytes.increment(n as u64);
                    let (datagram, truncated) =
                        super::datagram_frame(buf.split_to(n).freeze(), config.max_length);
                    // Senders rarely change between datagrams: reuse the formatted IP.
                    if last_peer.as_ref().map(|(ip, _)| *ip) != Some(peer.ip()) {
                        last_peer = Some((peer.ip(), super::ip_value(peer.ip())));
                    }
                    let ip = last_peer.as_ref().map(|(_, v)| v);
                    builder.push(&datagram, truncated, ip, now, &mut batch);
                }
                Err(e) => errors.emit(|| format!("Receiving a datagram failed: {e}")),
            }
            if batch.len() < MAX_BATCH_EVENTS {
                if buf.capacity() - buf.len() < MAX_DATAGRAM {
                    buf.reserve(4 * MAX_DATAGRAM);
                }
                match sock.try_recv_buf_from(&mut buf) {
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
    drop(watch);
    tracing::info!(component_id = %cx.id, "Syslog UDP listener stopped.");
}
