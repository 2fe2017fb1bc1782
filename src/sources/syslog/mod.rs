//! `syslog` source: RFC 5424 and RFC 3164 over UDP (one datagram, one message) or TCP
//! (RFC 6587 octet counting or newline framing, detected per connection).

mod parse;
mod rfc5424;
mod tcp;
mod udp;
mod unix;

pub use crate::sources::util::framing::{char_boundary, Decoded, Framer, FramingError, Mode};
pub use parse::{ip_value, parse_into, resolve_year, Parsed};
pub use rfc5424::parse_strict;

use crate::sources::util::tcp::{Cidr, ListenerOptions};
use std::sync::Arc;

use crate::config::field::FieldIssue;
use crate::event::{Batch, EventMetadata, LogEvent, ObjectMap};
use crate::http::tls::ServerTlsConfig;
use crate::internal_events::failures::{NotSyslog, Truncated};
use crate::internal_events::Reporter;
use crate::topology::component::{BuildError, Resource, SourceConfig, SourceContext, Task};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::net::SocketAddr;

/// `[sources.ID] type = "syslog"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    /// `udp`, `tcp`, `unix` (datagram, as `/dev/log`) or `unix_stream`.
    pub mode: SyslogMode,
    /// Where to listen, e.g. `0.0.0.0:514` (`tcp` and `udp`).
    pub address: Option<SocketAddr>,
    /// The socket file (`unix` and `unix_stream`), e.g. `/dev/log`: created at start
    /// (a stale one replaced), removed at exit.
    pub path: Option<std::path::PathBuf>,
    /// Permission bits of the socket file, e.g. `0o666` so every user may log. The
    /// umask's when absent.
    pub socket_file_mode: Option<u32>,
    /// Longest message kept whole, in bytes; longer ones are truncated to it (on a
    /// character boundary) and counted as `error_type="truncated"`. Default 102400.
    #[serde(default = "default_max_length")]
    pub max_length: usize,
    /// TCP only: most connections served at once; further clients wait in the backlog.
    pub connection_limit: Option<usize>,
    /// Kernel receive buffer (`SO_RCVBUF`) to ask for; a larger one rides out bursts on UDP.
    pub receive_buffer_bytes: Option<usize>,
    /// TCP only: networks (CIDR) allowed to connect; others are closed unread and
    /// counted (`error_type="origin_refused"`). Everyone when absent.
    pub permit_origin: Option<Vec<String>>,
    /// TCP only: `keepalive.time_secs`, idle seconds before keepalive probes start.
    pub keepalive: Option<Keepalive>,
    /// The field for the message's host name (the sender's address when it gives
    /// none). Default `host`; `""` leaves it out.
    pub host_key: Option<String>,
    /// TCP only: serve TLS (RFC 5425, syslog over TLS), with Vector's keys:
    /// `crt_file`, `key_file`, and `ca_file` with `verify_certificate` to require
    /// client certificates. Both framings are accepted inside TLS, as without it.
    pub tls: Option<ServerTlsConfig>,
    /// TCP with TLS: seconds a client may take to finish its handshake before it is
    /// closed and counted (`error_type="tls"`). Default 60.
    pub tls_handshake_timeout_secs: Option<u64>,
}

/// `keepalive` of a TCP listener (Vector's shape).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Keepalive {
    /// Idle seconds before the first probe.
    pub time_secs: Option<u64>,
}

impl SyslogConfig {
    /// `permit_origin` parsed; an entry that is not a network is reported by
    /// `validate`.
    fn origins(&self) -> Result<Option<Arc<[Cidr]>>, String> {
        self.permit_origin
            .as_ref()
            .map(|list| {
                list.iter()
                    .map(|s| s.parse::<Cidr>())
                    .collect::<Result<Arc<[Cidr]>, _>>()
            })
            .transpose()
    }

    /// What the TCP listener is told.
    pub(crate) fn listener_options(&self) -> Result<ListenerOptions, String> {
        Ok(ListenerOptions {
            connection_limit: self.connection_limit,
            tls: match &self.tls {
                Some(t) => t.acceptor()?,
                None => None,
            },
            permit_origin: self.origins()?,
            keepalive: self
                .keepalive
                .as_ref()
                .and_then(|k| k.time_secs)
                .map(std::time::Duration::from_secs),
            tls_handshake_timeout: self
                .tls_handshake_timeout_secs
                .map(std::time::Duration::from_secs),
        })
    }
}

fn default_max_length() -> usize {
    102_400
}

/// Transport of a syslog source.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SyslogMode {
    /// Datagrams; cannot push back, so what the kernel drops is lost.
    Udp,
    /// Streams with backpressure.
    Tcp,
    /// A local datagram socket at `path`, the way glibc's `syslog(3)` and `logger`
    /// write to `/dev/log`. A full pipeline blocks the writers, as rsyslog does.
    #[serde(alias = "unix_datagram")]
    Unix,
    /// A local stream socket at `path` (Vector's `mode = "unix"`), framed as TCP is.
    #[serde(rename = "unix_stream")]
    UnixStream,
}

impl SourceConfig for SyslogConfig {
    fn build(&self, cx: SourceContext) -> Result<Task, BuildError> {
        match self.mode {
            SyslogMode::Tcp => tcp::build(self.clone(), cx),
            SyslogMode::Udp => udp::build(self.clone(), cx),
            SyslogMode::Unix | SyslogMode::UnixStream => unix::build(self.clone(), cx),
        }
    }

    fn warnings(&self) -> Vec<FieldIssue> {
        self.tls.as_ref().map(|t| t.warnings()).unwrap_or_default()
    }

    fn resources(&self) -> Vec<Resource> {
        match (self.mode, self.address) {
            (SyslogMode::Tcp, Some(a)) => vec![Resource::Tcp(a)],
            (SyslogMode::Udp, Some(a)) => vec![Resource::Udp(a)],
            (SyslogMode::Unix | SyslogMode::UnixStream, _) => {
                self.path.iter().cloned().map(Resource::Unix).collect()
            }
            _ => Vec::new(),
        }
    }

    fn validate(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        if self.max_length == 0 {
            issues.push(FieldIssue::new("max_length", "must be at least 1"));
        }
        if self.mode != SyslogMode::Tcp && self.connection_limit.is_some() {
            issues.push(FieldIssue::new(
                "connection_limit",
                "only applies to mode = \"tcp\"",
            ));
        }
        if matches!(self.mode, SyslogMode::Unix | SyslogMode::UnixStream)
            && self.receive_buffer_bytes.is_some()
        {
            issues.push(FieldIssue::new(
                "receive_buffer_bytes",
                "only applies to mode = \"tcp\" or \"udp\" (as in Vector)",
            ));
        }
        if self.tls_handshake_timeout_secs == Some(0) {
            issues.push(FieldIssue::new(
                "tls_handshake_timeout_secs",
                "must be at least 1",
            ));
        }
        if self.connection_limit == Some(0) {
            issues.push(FieldIssue::new("connection_limit", "must be at least 1"));
        }
        if let Err(e) = self.origins() {
            issues.push(FieldIssue::new("permit_origin", e));
        }
        if let Some(t) = &self.tls {
            issues.extend(t.issues());
        }
        let unix = matches!(self.mode, SyslogMode::Unix | SyslogMode::UnixStream);
        match (unix, &self.address, &self.path) {
            (false, None, _) => issues.push(FieldIssue::new("address", "missing required key")),
            (false, _, Some(_)) => issues.push(FieldIssue::new(
                "path",
                "only applies to mode = \"unix\" or \"unix_stream\"",
            )),
            (true, _, None) => issues.push(FieldIssue::new(
                "path",
                "missing required key: the socket file, e.g. \"/dev/log\"",
            )),
            (true, Some(_), _) => issues.push(FieldIssue::new(
                "address",
                "does not apply to a unix socket; give its `path`",
            )),
            (true, None, Some(p)) if !p.is_absolute() => {
                issues.push(FieldIssue::new("path", "must be an absolute path"))
            }
            _ => {}
        }
        match self.socket_file_mode {
            Some(_) if !unix => issues.push(FieldIssue::new(
                "socket_file_mode",
                "only applies to mode = \"unix\" or \"unix_stream\"",
            )),
            Some(m) if m > 0o777 => issues.push(FieldIssue::new(
                "socket_file_mode",
                format!("{m:#o} is not a file mode (at most 0o777)"),
            )),
            _ => {}
        }
        if self.mode != SyslogMode::Tcp {
            for (key, set) in [
                ("permit_origin", self.permit_origin.is_some()),
                ("keepalive", self.keepalive.is_some()),
                ("tls", self.tls.is_some()),
                (
                    "tls_handshake_timeout_secs",
                    self.tls_handshake_timeout_secs.is_some(),
                ),
            ] {
                if set {
                    issues.push(FieldIssue::new(
                        key,
                        "only applies to mode = \"tcp\" (as in Vector)",
                    ));
                }
            }
        }
        issues
    }
}

/// One received datagram as a frame: the line ending many senders add (LF, CR or NUL)
/// is not message text and goes; a datagram longer than `max_length` is cut on a
/// character boundary. Whether it was cut. Shared by the UDP and unix datagram sockets.
pub(crate) fn datagram_frame(mut datagram: Bytes, max_length: usize) -> (Bytes, bool) {
    while let Some(b'\n' | b'\0' | b'\r') = datagram.last() {
        datagram.truncate(datagram.len() - 1);
    }
    let truncated = datagram.len() > max_length;
    if truncated {
        datagram.truncate(char_boundary(&datagram, max_length));
    }
    (datagram, truncated)
}

/// Turns frames into events and keeps the counters; one per connection or socket.
pub(crate) struct EventBuilder {
    source_id: crate::event::SourceId,
    /// `host_key` (else `log_schema.host_key`), where `host` moves (`""` drops it).
    host_key: String,
    /// Whether any field moves from its default name.
    renames: bool,
    parse_errors: Reporter<NotSyslog>,
    truncated: Reporter<Truncated>,
    max_length: usize,
    /// This machine's name, for messages from the local socket (which have no sender
    /// address and, as glibc writes them, no host name).
    local_host: Option<crate::event::Value>,
}

impl EventBuilder {
    pub(crate) fn new(cx: &SourceContext, config: &SyslogConfig) -> Self {
        let max_length = config.max_length;
        let (host_key, renames) = crate::event::schema::log_schema().host_key_for(&config.host_key);
        Self {
            host_key,
            renames,
            source_id: crate::event::intern(&cx.id),
            parse_errors: cx.metrics.reporter(),
            truncated: cx.metrics.reporter(),
            max_length,
            local_host: matches!(config.mode, SyslogMode::Unix | SyslogMode::UnixStream)
                .then(|| crate::event::Value::from(crate::hostname())),
        }
    }

    /// Adds the event for one frame to `batch`.
    pub(crate) fn push(
        &self,
        frame: &Bytes,
        truncated: bool,
        peer: Option<&crate::event::Value>,
        now: DateTime<Utc>,
        batch: &mut Batch,
    ) {
        let mut fields = ObjectMap::new();
        let parsed = match &self.local_host {
            Some(host) => parse::parse_local(frame, host, now, &mut fields),
            None => parse_into(frame, peer, now, &mut fields),
        };
        match parsed {
            Parsed::Empty => return,
            Parsed::Raw => self.parse_errors.emit(|| {
                let shown = &frame[..frame.len().min(120)];
                format!(
                    "Message is not RFC 5424 or RFC 3164 syslog; kept whole as `message`: {:?}",
                    String::from_utf8_lossy(shown)
                )
            }),
            Parsed::Syslog => {}
        }
        if self.renames {
            crate::event::schema::log_schema().rename(&mut fields, &self.host_key);
        }
        if truncated {
            self.truncated.emit(|| {
                format!(
                    "Message longer than max_length ({} bytes) was truncated.",
                    self.max_length
                )
            });
        }
        batch.push(LogEvent::from_parts(fields, EventMetadata::new(self.source_id, now)).into());
    }
}
