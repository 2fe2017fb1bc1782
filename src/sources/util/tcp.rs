//! The TCP listener every socket source uses: bound with `socket2` (address reuse, a
//! receive buffer size, a deep backlog), accepting with a backoff when accept fails (out
//! of descriptors), one task per connection behind an optional TLS handshake and an
//! optional connection limit, and the connection gauges. On shutdown it stops
//! accepting, then takes the connections the kernel had already completed (the listen
//! backlog: those clients' data is ours too) and waits for every connection task, which
//! reads its peer to the end on its own terms.

use crate::internal_events::failures::{AcceptFailed, OriginRefused, TlsHandshakeFailed};
use crate::internal_events::names;
use crate::internal_events::ComponentMetrics;
use crate::topology::component::{BuildError, SourceContext};
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Backlog of completed connections the kernel keeps for us.
const BACKLOG: i32 = 1024;

/// How long to wait after a failed accept before the next one.
pub(crate) const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// A socket bound to `addr` (and listening, for TCP) with address reuse, non-blocking,
/// with its receive buffer set if given: what TCP and UDP sources bind with.
///
/// Bound once per address: while any instance of a source holds the socket, another
/// (the same source rebuilt by a reload, or a renamed one on the same address) gets a
/// duplicate of it instead of binding again. The port never closes during a reload, so
/// clients are never refused, and the new instance cannot fail on "address in use".
pub fn bind_socket(
    addr: SocketAddr,
    ty: socket2::Type,
    receive_buffer_bytes: Option<usize>,
) -> Result<SharedSocket, BuildError> {
    let proto = if ty == socket2::Type::STREAM {
        "tcp"
    } else {
        "udp"
    };
    let io = |what: &str, source| BuildError::Io {
        what: format!("{what} {addr}/{proto}"),
        source,
    };
    // Port 0 asks for a fresh port each time: nothing to share.
    let key = (addr.port() != 0).then_some((addr, ty == socket2::Type::STREAM));
    let (original, _) = BOUND.get_or_bind(key, || {
        let s = socket2::Socket::new(socket2::Domain::for_address(addr), ty, None)
            .map_err(|e| io("creating a socket for", e))?;
        s.set_reuse_address(true)
            .map_err(|e| io("configuring", e))?;
        s.set_nonblocking(true).map_err(|e| io("configuring", e))?;
        s.bind(&addr.into()).map_err(|e| io("binding", e))?;
        if ty == socket2::Type::STREAM {
            s.listen(BACKLOG).map_err(|e| io("listening on", e))?;
        }
        Ok::<_, BuildError>(s)
    })?;
    if let Some(n) = receive_buffer_bytes {
        original
            .set_recv_buffer_size(n)
            .map_err(|e| io("setting receive_buffer_bytes on", e))?;
    }
    let socket = original
        .try_clone()
        .map_err(|e| io("duplicating the socket of", e))?;
    Ok(SharedSocket {
        socket,
        holder: SocketHolder(original),
    })
}

/// Sockets bound by [`bind_socket`], by address and whether TCP; an entry lives while
/// an instance holds its [`SocketHolder`].
static BOUND: super::bound::Bound<(SocketAddr, bool), socket2::Socket> = super::bound::Bound::new();

/// A bound socket: a descriptor of its own for this instance, and the holder that keeps
/// the address bound for the next instance while this one lives.
#[derive(Debug)]
pub struct SharedSocket {
    /// This instance's descriptor (a duplicate), to register with the runtime.
    pub socket: socket2::Socket,
    /// Keep it as long as the instance runs.
    pub holder: SocketHolder,
}

/// Keeps an address bound for [`bind_socket`] to share; the port closes when the last
/// holder (and descriptor) is dropped.
#[derive(Debug)]
pub struct SocketHolder(#[allow(dead_code)] Arc<socket2::Socket>);

/// A listening TCP socket on `addr`, ready for [`serve`]. Binding happens at build time
/// so an address in use fails start-up, not later.
pub fn bind(addr: SocketAddr, receive_buffer_bytes: Option<usize>) -> Result<Listener, BuildError> {
    let shared = bind_socket(addr, socket2::Type::STREAM, receive_buffer_bytes)?;
    let std: std::net::TcpListener = shared.socket.into();
    let tcp = TcpListener::from_std(std).map_err(|source| BuildError::Io {
        what: format!("registering {addr}/tcp"),
        source,
    })?;
    Ok(Listener {
        tcp,
        _holder: shared.holder,
    })
}

/// A listening socket for [`serve`], holding its address for the next instance.
#[derive(Debug)]
pub struct Listener {
    tcp: TcpListener,
    _holder: SocketHolder,
}

impl Listener {
    /// The address it listens on (the port chosen, for port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

/// How a listener treats its connections.
#[derive(Clone, Default)]
pub struct ListenerOptions {
    /// At most this many connections at once; further clients wait in the backlog.
    pub connection_limit: Option<usize>,
    /// Terminate TLS before the connection task sees the stream.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// Vector's `permit_origin`: clients from other networks are closed unread and
    /// counted (`error_type="origin_refused"`).
    pub permit_origin: Option<Arc<[Cidr]>>,
    /// Vector's `keepalive.time_secs`: TCP keepalive probes after this much idle time,
    /// so a client that vanished without a FIN frees its connection.
    pub keepalive: Option<Duration>,
    /// Vector's `tls_handshake_timeout_secs`: a client that has not finished its TLS
    /// handshake by then is closed and counted (`error_type="tls"`), so it cannot hold
    /// a connection slot forever. [`DEFAULT_TLS_HANDSHAKE_TIMEOUT`] when unset.
    pub tls_handshake_timeout: Option<Duration>,
}

/// How long a TLS client may take over its handshake unless told otherwise.
pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);

/// An IP network in CIDR notation (`10.0.0.0/8`, `::1/128`); a bare address is a /32
/// or /128.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let network: IpAddr = addr.trim().parse().map_err(|_| {
            format!("`{s}` is not an IP network in CIDR notation (e.g. 10.0.0.0/8)")
        })?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.trim().parse::<u8>() {
                Ok(p) if p <= max => p,
                _ => return Err(format!("`{s}`: the prefix length must be 0 to {max}")),
            },
        };
        Ok(Cidr { network, prefix })
    }
}

impl Cidr {
    /// Whether `ip` is inside the network (IPv4 clients on a dual-stack socket arrive
    /// as `::ffff:a.b.c.d` and are compared as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let bits = |a: IpAddr| -> (u128, u32) {
            match a {
                IpAddr::V4(v) => (u32::from(v) as u128, 32),
                IpAddr::V6(v) => (u128::from(v), 128),
            }
        };
        let ((net, width), (addr, addr_width)) = (bits(self.network), bits(ip));
        if width != addr_width {
            return false;
        }
        let host_bits = width - u32::from(self.prefix);
        host_bits >= width || (net >> host_bits) == (addr >> host_bits)
    }
}

/// What the listener needs of its source.
#[derive(Clone)]
pub struct ListenerContext {
    /// For log lines.
    pub id: Arc<str>,
    /// The source's metrics: connection gauges and accept errors are counted there.
    pub metrics: ComponentMetrics,
    /// Cancelled on shutdown.
    pub shutdown: CancellationToken,
}

impl From<&SourceContext> for ListenerContext {
    fn from(cx: &SourceContext) -> Self {
        Self {
            id: cx.id.clone(),
            metrics: cx.metrics.clone(),
            shutdown: cx.shutdown.clone(),
        }
    }
}

/// An accepted connection, in the clear or inside TLS: both read and write the same way.
pub enum Conn {
    /// Plain TCP.
    Plain(TcpStream),
    /// After a TLS handshake.
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Conn::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Plain(s) => s.is_write_vectored(),
            Conn::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// Accepts until shutdown, running `handler` on each connection in a task of its own,
/// then drains the backlog and waits for every connection task. `protocol` names the
/// listener in its log lines ("syslog over TCP", "HTTP").
pub async fn serve<H, F>(
    listener: Listener,
    options: ListenerOptions,
    cx: ListenerContext,
    protocol: &'static str,
    handler: H,
) where
    H: Fn(Conn, SocketAddr) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let handler = Arc::new(handler);
    let limit = options
        .connection_limit
        .map(|n| Arc::new(Semaphore::new(n)));
    let open = cx.metrics.gauge(names::TCP_CONNECTIONS);
    let accepted = cx.metrics.counter(names::TCP_CONNECTIONS_ACCEPTED);
    let accept_errors = cx.metrics.reporter::<AcceptFailed>();
    let tls_errors = cx.metrics.reporter::<TlsHandshakeFailed>();
    let refused = cx.metrics.reporter::<OriginRefused>();
    let Listener {
        tcp: listener,
        _holder: holder,
    } = listener;
    let address = listener
        .local_addr()
        .map_or_else(|_| "?".to_string(), |a| a.to_string());
    tracing::info!(component_id = %cx.id, %address, tls = options.tls.is_some(), "Listening for {protocol}.");
    let mut conns = JoinSet::new();
    let spawn = |conns: &mut JoinSet<()>,
                 stream: TcpStream,
                 peer: SocketAddr,
                 permit: Option<tokio::sync::OwnedSemaphorePermit>| {
        if let Some(nets) = &options.permit_origin {
            if !nets.iter().any(|n| n.contains(peer.ip())) {
                refused.emit(|| format!("Connection from {peer} refused: not in permit_origin"));
                return;
            }
        }
        let _ = stream.set_nodelay(true);
        if let Some(idle) = options.keepalive {
            let _ = socket2::SockRef::from(&stream)
                .set_tcp_keepalive(&socket2::TcpKeepalive::new().with_time(idle));
        }
        accepted.increment(1);
        open.increment(1.0);
        let (handler, tls, tls_errors, open) = (
            handler.clone(),
            options.tls.clone(),
            tls_errors.clone(),
            open.clone(),
        );
        let handshake_limit = options
            .tls_handshake_timeout
            .unwrap_or(DEFAULT_TLS_HANDSHAKE_TIMEOUT);
        conns.spawn(async move {
            let _permit = permit;
            match tls {
                None => handler(Conn::Plain(stream), peer).await,
                Some(acceptor) => {
                    match tokio::time::timeout(handshake_limit, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => handler(Conn::Tls(Box::new(s)), peer).await,
                        Ok(Err(e)) => {
                            tls_errors.emit(|| format!("TLS handshake with {peer} failed: {e}"))
                        }
                        Err(_) => tls_errors.emit(|| {
                            format!(
                                "TLS handshake with {peer} did not finish within {} s; closed",
                                handshake_limit.as_secs()
                            )
                        }),
                    }
                }
            }
            open.decrement(1.0);
        });
    };
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
                Ok((stream, peer)) => spawn(&mut conns, stream, peer, permit),
                Err(e) => {
                    accept_errors.emit(|| format!("Accepting a connection failed: {e}"));
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            _ = cx.shutdown.cancelled() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    // Connections the kernel completed before the signal carry the clients' data too.
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
            spawn(&mut conns, stream, peer, None);
        }
    }
    drop(listener);
    drop(holder);
    while conns.join_next().await.is_some() {}
    tracing::info!(component_id = %cx.id, "Stopped listening for {protocol}; every connection drained.");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::internal_events::{ComponentKind, ComponentLabels};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn context() -> ListenerContext {
        ListenerContext {
            id: "tcp-test".into(),
            metrics: ComponentMetrics::new(ComponentLabels {
                id: "tcp-test".into(),
                kind: ComponentKind::Source,
                type_name: "test",
            }),
            shutdown: CancellationToken::new(),
        }
    }

    #[test]
    fn cidrs_parse_and_match() {
        let net: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()));
        let one: Cidr = "127.0.0.1".parse().unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("192.0.2.1".parse().unwrap()));
        let v6: Cidr = "9876:9ca3:99ab::/48".parse().unwrap();
        assert!(v6.contains("9876:9ca3:99ab::23".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("example.com/8".parse::<Cidr>().is_err());
    }

    #[tokio::test]
    async fn backlog_and_open_connections_are_drained_at_shutdown() {
        let listener = bind("127.0.0.1:0".parse().unwrap(), None).unwrap();
        let addr = listener.local_addr().unwrap();
        let cx = context();
        let shutdown = cx.shutdown.clone();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
        // A limit of one: the second client waits in the backlog while the first is open.
        let server = tokio::spawn(serve(
            listener,
            ListenerOptions {
                connection_limit: Some(1),
                ..Default::default()
            },
            cx,
            "test",
            move |mut conn: Conn, _peer| {
                let tx = tx.clone();
                async move {
                    let mut all = Vec::new();
                    let _ = conn.read_to_end(&mut all).await;
                    let _ = tx.send(all);
                }
            },
        ));
        let mut first = TcpStream::connect(addr).await.unwrap();
        first.write_all(b"first").await.unwrap();
        let mut second = TcpStream::connect(addr).await.unwrap();
        second.write_all(b"second").await.unwrap();
        second.shutdown().await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        shutdown.cancel();
        // The first connection is still open: the listener waits for it.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!server.is_finished());
        first.shutdown().await.unwrap();
        drop(first);
        server.await.unwrap();
        let mut got = vec![rx.recv().await.unwrap(), rx.recv().await.unwrap()];
        got.sort();
        assert_eq!(got, [b"first".to_vec(), b"second".to_vec()]);
    }
}
