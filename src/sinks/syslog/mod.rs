//! `syslog` sink: forwarding to another syslog server (rsyslog, syslog-ng, a SIEM, or
//! another sluice) over TCP, UDP or TLS, as RFC 5424 or RFC 3164, octet-counted or
//! newline framed. Vector sends syslog through its `socket` sink with a syslog
//! encoder; here it is one sink with the options a forwarder needs. Delivery, retries
//! and reconnect backoff are the shared sink runner's.
//!
//! Split as every network sink is: [`config`] (options, checks, assembly),
//! [`encoder`] (events to framed messages), [`service`] (the connection).

pub mod config;
pub mod encoder;
pub mod service;

pub use config::SyslogSinkConfig;
