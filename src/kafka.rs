//! What the `kafka` sink and source share: Vector's connection options (`sasl.*`,
//! `tls.*`, `librdkafka_options`) turned into a librdkafka client config, and a client
//! context that sends librdkafka's own log lines and errors to sluice's log (rate
//! limited, with the component's ID) and its statistics to gauges.

use crate::config::field::FieldIssue;
use crate::config::secret::Secret;
use crate::internal_events::{ComponentMetrics, ErrorReporter};
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::KafkaError;
use rdkafka::Statistics;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// `sasl` of a Kafka component (Vector's keys). Only PLAIN and SCRAM are set up here;
/// other mechanisms go through `librdkafka_options`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KafkaSaslConfig {
    /// Authenticate with SASL.
    pub enabled: Option<bool>,
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: Option<String>,
    /// The user.
    pub username: Option<String>,
    /// The password; may use `${ENV}` and is never logged.
    pub password: Option<Secret>,
}

/// `tls` of a Kafka component (Vector's keys), handed to librdkafka's OpenSSL.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KafkaTlsConfig {
    /// Connect with TLS.
    pub enabled: Option<bool>,
    /// A CA (PEM) to trust.
    pub ca_file: Option<PathBuf>,
    /// A client certificate (PEM).
    pub crt_file: Option<PathBuf>,
    /// Its key (PEM).
    pub key_file: Option<PathBuf>,
    /// The key's passphrase, if it is encrypted (librdkafka decrypts it).
    pub key_pass: Option<Secret>,
    /// Check the broker's certificate chain. Default true.
    pub verify_certificate: Option<bool>,
    /// Check that the certificate names the broker. Default true.
    pub verify_hostname: Option<bool>,
}

/// The connection options every Kafka component has.
#[derive(Clone, Debug, Default)]
pub struct KafkaConnection<'a> {
    /// `bootstrap_servers`: `host:port,host:port`.
    pub bootstrap_servers: &'a str,
    /// `sasl`.
    pub sasl: Option<&'a KafkaSaslConfig>,
    /// `tls`.
    pub tls: Option<&'a KafkaTlsConfig>,
    /// `librdkafka_options`: set last, so they win.
    pub librdkafka_options: Option<&'a BTreeMap<String, String>>,
}

impl KafkaConnection<'_> {
    /// Contradictions and omissions, each under its key.
    pub fn issues(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        if self.bootstrap_servers.trim().is_empty() {
            issues.push(FieldIssue::new(
                "bootstrap_servers",
                "names no broker; give `host:port` (several separated by commas)",
            ));
        }
        if let Some(s) = self.sasl.filter(|s| s.enabled == Some(true)) {
            if let Some(m) = &s.mechanism {
                if !["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"].contains(&m.as_str()) {
                    issues.push(FieldIssue::new(
                        "sasl.mechanism",
                        format!("`{m}` is not set up by sluice; use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, or configure it through `librdkafka_options`"),
                    ));
                }
            }
            if s.username.is_none() {
                issues.push(FieldIssue::new("sasl.username", "missing required key"));
            }
            if s.password.is_none() {
                issues.push(FieldIssue::new("sasl.password", "missing required key"));
            }
        }
        if let Some(t) = self.tls {
            if t.crt_file.is_some() != t.key_file.is_some() {
                issues.push(FieldIssue::new(
                    "tls.crt_file",
                    "and `tls.key_file` go together: a client certificate needs its key",
                ));
            }
        }
        issues
    }

    /// The librdkafka config: security settings from `sasl` and `tls`, then
    /// `librdkafka_options` over everything.
    pub fn client_config(&self, defaults: &[(&str, String)]) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", self.bootstrap_servers);
        for (k, v) in defaults {
            c.set(*k, v.as_str());
        }
        let sasl = self.sasl.filter(|s| s.enabled == Some(true));
        let tls = self.tls.filter(|t| t.enabled == Some(true));
        let protocol = match (sasl.is_some(), tls.is_some()) {
            (false, false) => "plaintext",
            (false, true) => "ssl",
            (true, false) => "sasl_plaintext",
            (true, true) => "sasl_ssl",
        };
        c.set("security.protocol", protocol);
        if let Some(s) = sasl {
            c.set("sasl.mechanism", s.mechanism.as_deref().unwrap_or("PLAIN"));
            if let Some(u) = &s.username {
                c.set("sasl.username", u.as_str());
            }
            if let Some(p) = &s.password {
                c.set("sasl.password", p.expose());
            }
        }
        if let Some(t) = tls {
            if let Some(p) = &t.ca_file {
                c.set("ssl.ca.location", p.display().to_string());
            }
            if let Some(p) = &t.crt_file {
                c.set("ssl.certificate.location", p.display().to_string());
            }
            if let Some(p) = &t.key_file {
                c.set("ssl.key.location", p.display().to_string());
            }
            if let Some(p) = &t.key_pass {
                c.set("ssl.key.password", p.expose());
            }
            if let Some(v) = t.verify_certificate {
                c.set("enable.ssl.certificate.verification", v.to_string());
            }
            if let Some(v) = t.verify_hostname {
                c.set(
                    "ssl.endpoint.identification.algorithm",
                    if v { "https" } else { "none" },
                );
            }
        }
        if let Some(options) = self.librdkafka_options {
            for (k, v) in options {
                c.set(k.as_str(), v.as_str());
            }
        }
        c
    }
}

/// Where a Kafka client's statistics go.
pub trait StatsSink: Send + Sync + 'static {
    /// Called every `statistics.interval.ms` with librdkafka's numbers.
    fn record(&self, stats: &Statistics);
}

/// The client context of a sluice Kafka component: librdkafka's log lines and errors
/// in sluice's log with the component's ID, errors counted (`error_type="kafka"`,
/// rate-limited), statistics handed to `stats`.
pub struct KafkaClientContext<S> {
    component_id: Arc<str>,
    errors: ErrorReporter,
    /// What receives the statistics.
    pub stats: S,
}

impl<S: StatsSink> KafkaClientContext<S> {
    /// The context of the component of `metrics`.
    pub fn new(component_id: Arc<str>, metrics: &ComponentMetrics, stats: S) -> Self {
        Self {
            component_id,
            errors: metrics.error_reporter("kafka"),
            stats,
        }
    }
}

impl<S: StatsSink> ClientContext for KafkaClientContext<S> {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        let id = &*self.component_id;
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(component_id = %id, facility = fac, "librdkafka: {message}")
            }
            RDKafkaLogLevel::Warning => {
                tracing::warn!(component_id = %id, facility = fac, "librdkafka: {message}")
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(component_id = %id, facility = fac, "librdkafka: {message}")
            }
            RDKafkaLogLevel::Debug => {
                tracing::debug!(component_id = %id, facility = fac, "librdkafka: {message}")
            }
        }
    }

    fn stats(&self, statistics: Statistics) {
        self.stats.record(&statistics);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // A broker that is down says so every few seconds per connection; the count
        // is exact, the log rate-limited.
        self.errors
            .report(1, || format!("Kafka client error: {error}: {reason}"));
    }
}
