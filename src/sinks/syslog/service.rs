//! Sending payloads of syslog messages over one connection that is opened when needed
//! and opened again after it fails (the runner's retries give the backoff). A payload
//! counts as delivered once its bytes are written to the socket: the kernel has them,
//! the receiver may not yet (see the README on what that does and does not promise).

use super::config::Mode;
use crate::sinks::util::driver::{Outcome, Service};
use bytes::Bytes;
use rustls::client::ResolvesClientCert;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::Mutex;

/// How to reach the receiver.
#[derive(Clone)]
pub struct Target {
    /// `host:port`, resolved at every connect so a moved receiver is found.
    pub address: String,
    /// The transport.
    pub mode: Mode,
    /// For `tls`: the connector, the name the certificate must carry, and whether the
    /// server asked for a client certificate in the last handshake.
    pub tls: Option<TlsTarget>,
    /// TCP keepalive idle time.
    pub keepalive: Option<Duration>,
    /// `SO_SNDBUF` to ask for.
    pub send_buffer_bytes: Option<usize>,
    /// Longest a connect or a write may take.
    pub timeout: Duration,
}

/// What a TLS connection needs.
#[derive(Clone)]
pub struct TlsTarget {
    /// Made from the sink's `tls` options.
    pub connector: tokio_rustls::TlsConnector,
    /// The name (or address) the server's certificate must carry.
    pub name: rustls::pki_types::ServerName<'static>,
    /// Set by [`NotingResolver`] when the server asks for a client certificate.
    pub asked_for_certificate: Arc<AtomicBool>,
}

impl TlsTarget {
    /// A target for `config`, whose client-certificate resolver is wrapped to note
    /// when the server asks for one.
    pub fn new(
        mut config: rustls::ClientConfig,
        name: rustls::pki_types::ServerName<'static>,
    ) -> Self {
        let asked = Arc::new(AtomicBool::new(false));
        config.client_auth_cert_resolver = Arc::new(NotingResolver {
            inner: config.client_auth_cert_resolver.clone(),
            asked: asked.clone(),
        });
        Self {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            name,
            asked_for_certificate: asked,
        }
    }
}

/// The client-certificate resolver, noting that the server asked: only then can a
/// TLS 1.3 server still refuse the client after the handshake.
#[derive(Debug)]
struct NotingResolver {
    inner: Arc<dyn ResolvesClientCert>,
    asked: Arc<AtomicBool>,
}

impl ResolvesClientCert for NotingResolver {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.asked.store(true, Ordering::Relaxed);
        self.inner.resolve(root_hint_subjects, sigschemes)
    }

    fn only_raw_public_keys(&self) -> bool {
        self.inner.only_raw_public_keys()
    }

    fn has_certs(&self) -> bool {
        self.inner.has_certs()
    }
}

enum Conn {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    Udp(UdpSocket),
}

/// The sink's [`Service`]: one connection, used by one request at a time (the sink has
/// one partition, so its payloads go out in order).
pub struct SyslogService {
    target: Arc<Target>,
    conn: Mutex<Option<Conn>>,
}

impl SyslogService {
    /// A service that connects on its first payload.
    pub fn new(target: Target) -> Self {
        Self {
            target: Arc::new(target),
            conn: Mutex::new(None),
        }
    }
}

impl Target {
    /// Opens a connection (for UDP, a connected socket).
    async fn connect(&self) -> io::Result<Conn> {
        if self.mode == Mode::Udp {
            let peer = tokio::net::lookup_host(&self.address)
                .await?
                .next()
                .ok_or_else(|| io::Error::other("the name resolved to no address"))?;
            let local: std::net::SocketAddr = if peer.is_ipv4() {
                ([0, 0, 0, 0], 0).into()
            } else {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            };
            let socket = UdpSocket::bind(local).await?;
            if let Some(n) = self.send_buffer_bytes {
                socket2::SockRef::from(&socket).set_send_buffer_size(n)?;
            }
            socket.connect(peer).await?;
            return Ok(Conn::Udp(socket));
        }
        let stream = TcpStream::connect(&self.address).await?;
        stream.set_nodelay(true)?;
        let sock = socket2::SockRef::from(&stream);
        if let Some(idle) = self.keepalive {
            sock.set_tcp_keepalive(&socket2::TcpKeepalive::new().with_time(idle))?;
        }
        if let Some(n) = self.send_buffer_bytes {
            sock.set_send_buffer_size(n)?;
        }
        match &self.tls {
            Some(t) => {
                t.asked_for_certificate.store(false, Ordering::Relaxed);
                let mut tls = t.connector.connect(t.name.clone(), stream).await?;
                if t.asked_for_certificate.load(Ordering::Relaxed) {
                    confirm_accepted(&mut tls, self.timeout.min(ACCEPTANCE_WAIT)).await?;
                }
                Ok(Conn::Tls(Box::new(tls)))
            }
            None => Ok(Conn::Tcp(stream)),
        }
    }

    /// Connects once, for the healthcheck.
    pub async fn probe(&self) -> Result<(), String> {
        match tokio::time::timeout(self.timeout, self.connect()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("{}: {e}", self.address)),
            Err(_) => Err(format!(
                "{}: no connection within {} s",
                self.address,
                self.timeout.as_secs()
            )),
        }
    }
}

/// The longest a new TLS 1.3 connection to a server that asked for a client
/// certificate waits for its word that it accepted the client.
const ACCEPTANCE_WAIT: Duration = Duration::from_secs(2);

/// In TLS 1.3 the client's handshake is over before the server has checked the client
/// certificate (or its absence); a server that refuses it answers with an alert that
/// only a read sees, and whatever was written meanwhile is lost. So a new connection to
/// a server that asked for a certificate waits until the server shows it accepted the
/// client (a session ticket or any data), refuses it (an alert, a close), or `budget`
/// passes (rsyslog sends no tickets: its connections start 2 s late).
async fn confirm_accepted(
    tls: &mut tokio_rustls::client::TlsStream<TcpStream>,
    budget: Duration,
) -> io::Result<()> {
    if tls.get_ref().1.protocol_version() != Some(rustls::ProtocolVersion::TLSv1_3) {
        return Ok(());
    }
    let deadline = tokio::time::Instant::now() + budget;
    let mut buf = [0u8; 256];
    loop {
        if tls.get_ref().1.tls13_tickets_received() > 0 {
            return Ok(());
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Ok(());
        }
        let step = (deadline - now).min(Duration::from_millis(10));
        match tokio::time::timeout(step, tls.read(&mut buf)).await {
            Err(_) => {}
            Ok(Ok(1..)) => return Ok(()),
            Ok(Ok(0)) => {
                return Err(io::Error::other(
                    "the server closed the connection right after the TLS handshake (does it require a client certificate it did not get?)",
                ))
            }
            Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(io::Error::other(
                    "the server closed the connection right after the TLS handshake (does it require a client certificate it did not get?)",
                ))
            }
            Ok(Err(e)) => {
                return Err(io::Error::other(format!(
                    "the server refused the TLS session: {e}"
                )))
            }
        }
    }
}

impl Conn {
    /// Whether the receiver has closed a stream connection. A write into a connection
    /// the peer already closed succeeds locally and is lost, so every payload looks
    /// first (as rsyslog's `omfwd` does); anything the receiver sent is read and
    /// ignored (a TLS session ticket, say).
    fn closed_by_peer(&mut self) -> bool {
        let mut buf = [0u8; 512];
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        loop {
            let mut rb = ReadBuf::new(&mut buf);
            let polled = match self {
                Conn::Tcp(s) => Pin::new(s).poll_read(&mut cx, &mut rb),
                Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(&mut cx, &mut rb),
                Conn::Udp(_) => return false,
            };
            match polled {
                Poll::Pending => return false,
                Poll::Ready(Ok(())) if rb.filled().is_empty() => return true,
                Poll::Ready(Ok(())) => continue,
                Poll::Ready(Err(_)) => return true,
            }
        }
    }

    async fn send(&mut self, body: &[u8]) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.write_all(body).await,
            Conn::Tls(s) => {
                s.write_all(body).await?;
                s.flush().await
            }
            Conn::Udp(s) => {
                for datagram in Datagrams(body) {
                    match s.send(datagram).await {
                        Ok(_) => {}
                        // An ICMP "port unreachable" for an earlier datagram surfaces on
                        // the next send; that one is sent again once.
                        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                            s.send(datagram).await?;
                        }
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            }
        }
    }
}

/// The messages of a datagram payload, which the encoder octet-counts.
struct Datagrams<'a>(&'a [u8]);

impl<'a> Iterator for Datagrams<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let space = memchr::memchr(b' ', self.0)?;
        let len: usize = std::str::from_utf8(&self.0[..space]).ok()?.parse().ok()?;
        let msg = self.0.get(space + 1..space + 1 + len)?;
        self.0 = &self.0[space + 1 + len..];
        Some(msg)
    }
}

impl Service for SyslogService {
    type Request = Bytes;

    async fn call(&self, body: &Bytes) -> Outcome {
        let t = &self.target;
        let mut conn = self.conn.lock().await;
        if conn.as_mut().is_some_and(Conn::closed_by_peer) {
            tracing::info!(address = %t.address, "The syslog receiver closed the connection; reconnecting.");
            *conn = None;
        }
        if conn.is_none() {
            match tokio::time::timeout(t.timeout, t.connect()).await {
                Ok(Ok(c)) => *conn = Some(c),
                Ok(Err(e)) => return retry(format!("connecting to {}: {e}", t.address)),
                Err(_) => {
                    return retry(format!(
                        "connecting to {}: no connection within {} s",
                        t.address,
                        t.timeout.as_secs()
                    ))
                }
            }
        }
        let Some(c) = conn.as_mut() else {
            return retry(format!("{}: not connected", t.address));
        };
        let outcome = match tokio::time::timeout(t.timeout, c.send(body)).await {
            Ok(Ok(())) => return Outcome::Delivered,
            Ok(Err(e)) => retry(format!("writing to {}: {e}", t.address)),
            Err(_) => retry(format!(
                "writing to {}: not written within {} s",
                t.address,
                t.timeout.as_secs()
            )),
        };
        // Whatever part of the payload went out is sent again on the next connection:
        // the receiver may see those messages twice, never none.
        *conn = None;
        outcome
    }
}

fn retry(reason: String) -> Outcome {
    Outcome::Retry {
        reason,
        retry_after: None,
        unwell: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagram_payloads_split_back_into_messages() {
        let body = b"3 abc0 5 hello";
        let all: Vec<&[u8]> = Datagrams(body).collect();
        assert_eq!(all, vec![&b"abc"[..], b"", b"hello"]);
    }
}
