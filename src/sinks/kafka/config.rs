//! Options of the `kafka` sink (Vector's names and defaults), their checks, and the
//! producer they configure.

use super::sink::KafkaSink;
use crate::config::field::FieldIssue;
use crate::kafka::{KafkaConnection, KafkaSaslConfig, KafkaTlsConfig};
use crate::sinks::util::batch::BatchConfig;
use crate::sinks::util::encoding::{Codec, EncodingConfig};
use crate::sinks::util::template::Template;
use crate::topology::component::{BuildError, SinkConfig, SinkContext, Task};
use serde::Deserialize;
use std::collections::BTreeMap;

/// `[sinks.ID] type = "kafka"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSinkConfig {
    /// `host:port` of one or more brokers, comma-separated: where the client learns
    /// the cluster.
    pub bootstrap_servers: String,
    /// Topic template, e.g. `logs-{{ appname }}`. An event missing a field it names is
    /// dropped and counted (`error_type="template"`).
    pub topic: String,
    /// The field whose value is the record key (records of one key go to one
    /// partition, in order). None: the producer spreads records over partitions.
    pub key_field: Option<String>,
    /// A field holding an object whose entries become record headers.
    pub headers_key: Option<String>,
    /// `codec = "json"` (default) or `"text"` (the `message` field), with Vector's
    /// field and timestamp options.
    #[serde(default)]
    pub encoding: EncodingConfig,
    /// `none` (default), `gzip`, `snappy`, `lz4` or `zstd`: per producer batch.
    #[serde(default)]
    pub compression: KafkaCompression,
    /// `max_events` → librdkafka's `batch.num.messages`, `max_bytes` → `batch.size`,
    /// `timeout_secs` → `linger.ms`; librdkafka's defaults where unset.
    #[serde(default)]
    pub batch: BatchConfig,
    /// How long the producer keeps trying a record before reporting it failed (sluice
    /// then hands it to the producer again: nothing is dropped for a broker that is
    /// away). Default 300000.
    #[serde(default = "default_message_timeout_ms")]
    pub message_timeout_ms: u64,
    /// librdkafka's network timeout. Default 60000.
    #[serde(default = "default_socket_timeout_ms")]
    pub socket_timeout_ms: u64,
    /// Vector's topic for the healthcheck's metadata request; any topic's metadata
    /// proves the cluster answers, so it is accepted and only used for that.
    pub healthcheck_topic: Option<String>,
    /// SASL: `enabled`, `mechanism`, `username`, `password`.
    pub sasl: Option<KafkaSaslConfig>,
    /// TLS: `enabled`, `ca_file`, `crt_file`, `key_file`, `key_pass`,
    /// `verify_certificate`, `verify_hostname`.
    pub tls: Option<KafkaTlsConfig>,
    /// Any librdkafka producer property, set last (e.g. `"enable.idempotence" =
    /// "true"`).
    pub librdkafka_options: Option<BTreeMap<String, String>>,
}

fn default_message_timeout_ms() -> u64 {
    300_000
}

fn default_socket_timeout_ms() -> u64 {
    60_000
}

/// `compression` of the `kafka` sink.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum KafkaCompression {
    /// No compression.
    #[default]
    None,
    /// gzip.
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl KafkaCompression {
    fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Snappy => "snappy",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        }
    }
}

/// What librdkafka's producer queue may hold, in KiB: librdkafka's default is 1 GiB,
/// which a broker outage would fill before pushing back; 64 MiB holds several seconds
/// of a busy agent and keeps memory bounded.
const QUEUE_MAX_KBYTES: u64 = 65_536;

impl KafkaSinkConfig {
    fn connection(&self) -> KafkaConnection<'_> {
        KafkaConnection {
            bootstrap_servers: &self.bootstrap_servers,
            sasl: self.sasl.as_ref(),
            tls: self.tls.as_ref(),
            librdkafka_options: self.librdkafka_options.as_ref(),
        }
    }

    /// The producer's librdkafka config.
    pub fn producer_config(&self) -> rdkafka::ClientConfig {
        let mut defaults: Vec<(&str, String)> = vec![
            ("client.id", "sluice".into()),
            // Delivered means every in-sync replica has the record, and the producer's
            // own retries neither duplicate nor reorder records.
            ("acks", "all".into()),
            ("enable.idempotence", "true".into()),
            ("compression.codec", self.compression.as_str().into()),
            ("message.timeout.ms", self.message_timeout_ms.to_string()),
            ("socket.timeout.ms", self.socket_timeout_ms.to_string()),
            ("queue.buffering.max.kbytes", QUEUE_MAX_KBYTES.to_string()),
            ("statistics.interval.ms", "1000".into()),
        ];
        if let Some(n) = self.batch.max_events {
            defaults.push(("batch.num.messages", n.to_string()));
        }
        if let Some(n) = self.batch.max_bytes {
            defaults.push(("batch.size", n.to_string()));
        }
        if let Some(t) = self
            .batch
            .timeout_secs
            .filter(|t| t.is_finite() && *t >= 0.0)
        {
            defaults.push(("linger.ms", format!("{}", (t * 1000.0).round() as u64)));
        }
        self.connection().client_config(&defaults)
    }
}

impl SinkConfig for KafkaSinkConfig {
    fn validate(&self) -> Vec<FieldIssue> {
        let mut issues = self.connection().issues();
        if let Err(e) = Template::parse(&self.topic) {
            issues.push(FieldIssue::new("topic", e.to_string()));
        } else if self.topic.trim().is_empty() {
            issues.push(FieldIssue::new("topic", "is empty"));
        }
        if self.encoding.codec == Codec::Ndjson {
            issues.push(FieldIssue::new(
                "encoding.codec",
                "`ndjson` frames several events in one body; a Kafka record holds one: use `json`",
            ));
        }
        issues.extend(self.encoding.issues("encoding"));
        issues.extend(self.batch.issues("batch"));
        if self.message_timeout_ms == 0 {
            issues.push(FieldIssue::new(
                "message_timeout_ms",
                "must be at least 1 (sluice retries a timed-out record itself)",
            ));
        }
        issues
    }

    fn build(&self, cx: SinkContext) -> Result<Task, BuildError> {
        let topic =
            Template::parse(&self.topic).map_err(|e| BuildError::Other(format!("topic: {e}")))?;
        let sink = KafkaSink::new(self, topic, &cx)?;
        Ok(Box::pin(sink.run(cx)))
    }
}
