//! Options of the `syslog` sink, their defaults and checks, and how they assemble the
//! shared sink runner around [`super::encoder`] and [`super::service`].

use super::encoder::{facility_code, severity_code, HeaderField, HeaderFields, SyslogEncoder};
use super::service::{SyslogService, Target, TlsTarget};
use crate::config::field::FieldIssue;
use crate::event::Event;
use crate::http::ClientTlsConfig;
use crate::sinks::util::batch::{BatchConfig, BatchLimits, Framing};
use crate::sinks::util::circuit::CircuitBreakerConfig;
use crate::sinks::util::encoding::Compression;
use crate::sinks::util::retry::RequestConfig;
use crate::sinks::util::runner::{Built, RequestBuilder, RunnerConfig, SinkRunner, Unsendable};
use crate::sinks::util::template::Template;
use crate::sources::syslog::Keepalive;
use crate::topology::component::{BuildError, SinkConfig, SinkContext, Task};
use bytes::Bytes;
use serde::Deserialize;
use std::time::Duration;

/// `[sinks.ID] type = "syslog"`: forwarding to another syslog server.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogSinkConfig {
    /// The receiver, `host:port` (`[v6addr]:port`); the name is resolved at every
    /// connect.
    pub address: String,
    /// `tcp` (default), `udp` or `tls` (RFC 5425).
    #[serde(default)]
    pub mode: Mode,
    /// Streams only: `octet_counting` (default; RFC 6587 and RFC 5425, safe for
    /// messages with line feeds) or `newline`.
    pub framing: Option<FramingOption>,
    /// `rfc5424` (default) or `rfc3164`.
    #[serde(default)]
    pub format: Format,
    /// Template for the facility (a name such as `local0`, or a number). Default: the
    /// event's `facility` field; `user` when missing or not a facility.
    pub facility: Option<String>,
    /// Template for the severity (a name such as `err` or `warning`, or a number).
    /// Default: the event's `severity` field; `info` when missing or not a severity.
    pub severity: Option<String>,
    /// Template for HOSTNAME. Default: the event's `hostname`, else `host`; this
    /// machine's name when missing.
    pub hostname: Option<String>,
    /// Template for APP-NAME (the RFC 3164 tag). Default: the event's `appname`; none
    /// when missing.
    pub appname: Option<String>,
    /// Template for PROCID. Default: the event's `procid`; none when missing.
    pub procid: Option<String>,
    /// Template for MSGID (RFC 5424). Default: the event's `msgid`; none when missing.
    pub msgid: Option<String>,
    /// UDP: the longest message one datagram carries; longer ones are cut (on a
    /// character boundary) and counted as `error_type="truncated"`. Default 1452,
    /// which fits one 1500-byte Ethernet frame over IPv4 or IPv6.
    pub max_datagram_bytes: Option<usize>,
    /// Streams: `keepalive.time_secs`, idle seconds before TCP keepalive probes.
    pub keepalive: Option<Keepalive>,
    /// `SO_SNDBUF` to ask the kernel for.
    pub send_buffer_bytes: Option<usize>,
    /// For `mode = "tls"`: `ca_file` to trust a private CA, `crt_file` and `key_file`
    /// for a client certificate, `verify_certificate`, `verify_hostname`.
    #[serde(default)]
    pub tls: ClientTlsConfig,
    /// How many messages go out in one write. Defaults: 1000 events, 256 KiB, and no
    /// wait (`timeout_secs = 0`): what has arrived is written at once.
    #[serde(default)]
    pub batch: BatchConfig,
    /// `timeout_secs` for a connect or a write (default 60) and the retry backoff
    /// (reconnecting after a failure).
    #[serde(default)]
    pub request: RequestConfig,
    /// When to stop trying a receiver that keeps failing.
    #[serde(default)]
    pub circuit_breaker: CircuitBreakerConfig,
}

/// Transport of the `syslog` sink.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A TCP stream: written bytes reach the receiver unless the connection breaks.
    #[default]
    Tcp,
    /// One datagram per message; nothing tells whether it arrived.
    Udp,
    /// TCP with TLS (RFC 5425).
    Tls,
}

/// Framing of a stream, as the operator names it.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FramingOption {
    /// `LEN SP MSG`.
    OctetCounting,
    /// `MSG LF` (Vector's name `newline_delimited` also accepted).
    #[serde(alias = "newline_delimited")]
    Newline,
}

/// What the encoder writes around each message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireFraming {
    /// `LEN SP MSG`.
    OctetCounting,
    /// `MSG LF`, line feeds inside written as `#012`.
    Newline,
    /// One message per datagram.
    Datagram,
}

/// The message format.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `<PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD] MSG`.
    #[default]
    Rfc5424,
    /// `<PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG`.
    Rfc3164,
}

const DEFAULT_BATCH: BatchLimits = BatchLimits {
    max_events: 1000,
    max_bytes: 256 * 1024,
    timeout: Duration::ZERO,
    per_event_overhead: 0,
    max_order_span: None,
};

const DEFAULT_MAX_DATAGRAM: usize = 1452;

impl SyslogSinkConfig {
    fn framing(&self) -> WireFraming {
        match (self.mode, self.framing) {
            (Mode::Udp, _) => WireFraming::Datagram,
            (_, Some(FramingOption::Newline)) => WireFraming::Newline,
            _ => WireFraming::OctetCounting,
        }
    }

    /// The host part of `address`, checked to have a port.
    fn host(&self) -> Result<&str, String> {
        let (host, port) = self
            .address
            .rsplit_once(':')
            .ok_or_else(|| format!("`{}` is not `host:port`", self.address))?;
        port.parse::<u16>()
            .map_err(|_| format!("`{}` has no valid port", self.address))?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() {
            return Err(format!("`{}` names no host", self.address));
        }
        Ok(host)
    }

    fn templates(&self) -> Vec<(&'static str, &Option<String>)> {
        vec![
            ("facility", &self.facility),
            ("severity", &self.severity),
            ("hostname", &self.hostname),
            ("appname", &self.appname),
            ("procid", &self.procid),
            ("msgid", &self.msgid),
        ]
    }

    fn header(&self) -> Result<HeaderFields, FieldIssue> {
        let field = |key: &'static str,
                     t: &Option<String>,
                     fields: &'static [&'static str]|
         -> Result<HeaderField, FieldIssue> {
            let template = t
                .as_deref()
                .map(Template::parse)
                .transpose()
                .map_err(|e| FieldIssue::new(key, e.to_string()))?;
            Ok(HeaderField::new(template, fields))
        };
        Ok(HeaderFields {
            facility: field("facility", &self.facility, &["facility"])?,
            severity: field("severity", &self.severity, &["severity"])?,
            hostname: field("hostname", &self.hostname, &["hostname", "host"])?,
            appname: field("appname", &self.appname, &["appname"])?,
            procid: field("procid", &self.procid, &["procid"])?,
            msgid: field("msgid", &self.msgid, &["msgid"])?,
        })
    }

    fn target(&self, timeout: Duration) -> Result<Target, String> {
        let host = self.host()?;
        let tls = match self.mode {
            Mode::Tls => {
                let config = self.tls.client_config().map_err(|e| format!("tls: {e}"))?;
                let name =
                    rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| {
                        format!("address: `{host}` cannot be checked against a certificate: {e}")
                    })?;
                Some(TlsTarget::new(config, name))
            }
            _ => None,
        };
        Ok(Target {
            address: self.address.clone(),
            mode: self.mode,
            tls,
            keepalive: self
                .keepalive
                .as_ref()
                .and_then(|k| k.time_secs)
                .map(Duration::from_secs),
            send_buffer_bytes: self.send_buffer_bytes,
            timeout,
        })
    }
}

impl SinkConfig for SyslogSinkConfig {
    fn warnings(&self) -> Vec<FieldIssue> {
        if self.mode == Mode::Tls {
            self.tls.warnings()
        } else {
            Vec::new()
        }
    }

    fn validate(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        if let Err(e) = self.host() {
            issues.push(FieldIssue::new("address", e));
        }
        if let Err(e) = self.header() {
            issues.push(e);
        }
        for (key, value) in self.templates() {
            let Some(v) = value else { continue };
            let (known, example) = match key {
                "facility" => (facility_code(v).is_some(), "local0"),
                "severity" => (severity_code(v).is_some(), "warning"),
                _ => (true, ""),
            };
            if !v.contains("{{") && !known {
                issues.push(FieldIssue::new(
                    key,
                    format!("`{v}` is not a syslog {key}: give a name (such as `{example}`) or a number, or a `{{{{ field }}}}` template"),
                ));
            }
        }
        match self.mode {
            Mode::Udp => {
                if self.framing.is_some() {
                    issues.push(FieldIssue::new(
                        "framing",
                        "only applies to mode = \"tcp\" or \"tls\" (UDP sends one message per datagram)",
                    ));
                }
                if self.keepalive.is_some() {
                    issues.push(FieldIssue::new(
                        "keepalive",
                        "only applies to mode = \"tcp\" or \"tls\"",
                    ));
                }
                if self.max_datagram_bytes.is_some_and(|n| n < 480) {
                    issues.push(FieldIssue::new(
                        "max_datagram_bytes",
                        "must be at least 480, what RFC 5426 says every receiver takes",
                    ));
                }
            }
            Mode::Tcp | Mode::Tls => {
                if self.max_datagram_bytes.is_some() {
                    issues.push(FieldIssue::new(
                        "max_datagram_bytes",
                        "only applies to mode = \"udp\"",
                    ));
                }
            }
        }
        if self.mode == Mode::Tls {
            issues.extend(self.tls.issues());
        } else if self.tls != ClientTlsConfig::default() {
            issues.push(FieldIssue::new(
                "tls",
                "only applies to mode = \"tls\"; set it to send over TLS",
            ));
        }
        if !self.request.headers.is_empty() {
            issues.push(FieldIssue::new(
                "request.headers",
                "only applies to HTTP sinks",
            ));
        }
        issues.extend(self.request.issues("request"));
        issues.extend(self.batch.issues("batch"));
        issues
    }

    fn build(&self, cx: SinkContext) -> Result<Task, BuildError> {
        let header = self.header()?;
        let target = self
            .target(self.request.timeout())
            .map_err(BuildError::Other)?;
        if cx.healthcheck.enabled && self.mode != Mode::Udp {
            let probe = target.clone();
            cx.spawn_healthcheck(async move { probe.probe().await });
        }
        let encoder = SyslogEncoder::new(
            self.format,
            self.framing(),
            header,
            self.max_datagram_bytes.unwrap_or(DEFAULT_MAX_DATAGRAM),
            cx.metrics.reporter(),
        );
        let runner = SinkRunner::new(
            RunnerConfig {
                batch: self.batch.limits(DEFAULT_BATCH),
                framing: Framing::fixed(b"", b"", b""),
                compression: Compression::None,
                request: self.request.clone(),
                circuit_breaker: self.circuit_breaker.clone(),
            },
            SyslogRequestBuilder {
                encoder,
                destination: self.address.clone(),
            },
            SyslogService::new(target),
            &cx,
        );
        Ok(runner.run(cx))
    }
}

/// Events into payloads of framed messages, all in one partition so they stay in order.
struct SyslogRequestBuilder {
    encoder: SyslogEncoder,
    destination: String,
}

impl RequestBuilder for SyslogRequestBuilder {
    type Request = Bytes;

    fn encode(&mut self, event: &Event, out: &mut Vec<u8>) -> Result<(), Unsendable> {
        self.encoder.encode(event, out);
        Ok(())
    }

    fn build(
        &mut self,
        _partition: &str,
        body: Bytes,
        _events: usize,
    ) -> Result<Built<Bytes>, Unsendable> {
        Ok(Built {
            request: body,
            destination: self.destination.clone(),
        })
    }
}
