//! Vector's `influxdb_logs` and `influxdb_metrics` sink types, so their configs run
//! unchanged: Vector's options mapped onto the `influxdb` sink with Vector's point
//! layouts. Logs: the host and source type become tags, every point carries
//! `metric_type=logs`. Metrics: one measurement per metric (`namespace.name`), a
//! `metric_type` tag, counters written as increases. Timestamps in nanoseconds; the API
//! version from `version`, or inferred from the keys given as Vector still does.

use super::config::{ApiVersion, InfluxDbConfig, InfluxEncoding};
use super::line_protocol::Precision;
use super::request_builder::MetricLayout;
use crate::config::field::FieldIssue;
use crate::config::secret::Secret;
use crate::http::ClientTlsConfig;
use crate::sinks::util::batch::BatchConfig;
use crate::sinks::util::circuit::CircuitBreakerConfig;
use crate::sinks::util::encoding::Compression;
use crate::sinks::util::retry::RequestConfig;
use crate::topology::component::{BuildError, SinkConfig, SinkContext, Task};
use serde::Deserialize;

/// `[sinks.ID] type = "influxdb_logs"`: Vector's options and meaning.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfluxDbLogsConfig {
    /// The server, e.g. `http://127.0.0.1:8086`.
    pub endpoint: String,
    /// `"1"` or `"2"`; inferred from the keys given when absent, as Vector does today.
    pub version: Option<String>,
    /// The measurement every point is written to.
    pub measurement: Option<String>,
    /// Deprecated in Vector: the measurement is then `<namespace>.vector`.
    pub namespace: Option<String>,
    /// Fields written as tags, besides the host and the source type.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The host field (a tag). Default `log_schema.host_key`.
    pub host_key: Option<String>,
    /// The message field. Default `log_schema.message_key`; written as a field.
    pub message_key: Option<String>,
    /// The source type field (a tag). Default `log_schema.source_type_key`.
    pub source_type_key: Option<String>,
    /// v1: the database.
    pub database: Option<String>,
    /// v1: the retention policy.
    pub retention_policy_name: Option<String>,
    /// v1: `any`, `one`, `quorum` or `all`.
    pub consistency: Option<String>,
    /// v1: user name.
    pub username: Option<Secret>,
    /// v1: password.
    pub password: Option<Secret>,
    /// v2: the organization.
    pub org: Option<String>,
    /// v2: the bucket.
    pub bucket: Option<String>,
    /// v2: the API token.
    pub token: Option<Secret>,
    /// Field selection (Vector's `encoding.only_fields` / `except_fields`).
    #[serde(default)]
    pub encoding: InfluxEncoding,
    /// Batch limits, as the `influxdb` sink.
    #[serde(default)]
    pub batch: BatchConfig,
    /// Timeouts, concurrency and retries.
    #[serde(default)]
    pub request: RequestConfig,
    /// Trust for HTTPS endpoints.
    #[serde(default)]
    pub tls: ClientTlsConfig,
}

/// The `influxdb` sink options both Vector types share (where to write, as whom, and
/// how to batch and retry), with that sink's defaults for the rest. A macro because the
/// two configs are distinct types with the same fields (serde cannot flatten them
/// under `deny_unknown_fields`).
macro_rules! connection {
    ($c:expr, $api_version:expr) => {
        InfluxDbConfig {
            endpoint: $c.endpoint.clone(),
            api_version: $api_version,
            database: $c.database.clone(),
            retention_policy_name: $c.retention_policy_name.clone(),
            consistency: $c.consistency.clone(),
            username: $c.username.clone(),
            password: $c.password.clone(),
            org: $c.org.clone(),
            bucket: $c.bucket.clone(),
            token: $c.token.clone(),
            measurement: "logs".into(),
            tags: Vec::new(),
            default_namespace: None,
            precision: Precision::Ns,
            compression: Compression::Gzip,
            batch: $c.batch.clone(),
            request: $c.request.clone(),
            circuit_breaker: CircuitBreakerConfig::default(),
            tls: $c.tls.clone(),
            encoding: InfluxEncoding::default(),
            static_tags: Vec::new(),
            metric_layout: MetricLayout::Telegraf,
        }
    };
}

/// The API version `version` names, or the one the keys given imply.
fn api_version(
    version: &Option<String>,
    v2_keys: bool,
    issues: &mut Vec<FieldIssue>,
) -> ApiVersion {
    match version.as_deref() {
        Some("1") => ApiVersion::V1,
        Some("2") => ApiVersion::V2,
        Some(other) => {
            issues.push(FieldIssue::new(
                "version",
                format!("`{other}` is not an InfluxDB API version (\"1\" or \"2\")"),
            ));
            ApiVersion::V1
        }
        None if v2_keys => ApiVersion::V2,
        None => ApiVersion::V1,
    }
}

const VERSION_INFERRED: &str = "is not set: the API version is inferred from the keys given, which Vector deprecates; write `version = \"1\"` or `\"2\"`";

fn build_error(issues: Vec<FieldIssue>) -> BuildError {
    BuildError::Other(
        issues
            .iter()
            .map(|i| format!("{}: {}", i.key.as_deref().unwrap_or(""), i.message))
            .collect::<Vec<_>>()
            .join("; "),
    )
}

impl InfluxDbLogsConfig {
    /// The `influxdb` sink this describes, or what is missing.
    fn to_influxdb(&self) -> Result<InfluxDbConfig, Vec<FieldIssue>> {
        let mut issues = Vec::new();
        let v2_keys = self.org.is_some() || self.bucket.is_some() || self.token.is_some();
        let api_version = api_version(&self.version, v2_keys, &mut issues);
        let measurement = match (&self.measurement, &self.namespace) {
            (Some(m), _) => m.clone(),
            (None, Some(ns)) => format!("{ns}.vector"),
            (None, None) => {
                issues.push(FieldIssue::new("measurement", "missing required key"));
                String::new()
            }
        };
        let schema = crate::event::schema::log_schema();
        let mut tags = self.tags.clone();
        for key in [
            self.host_key.as_deref().unwrap_or(&schema.host_key),
            self.source_type_key
                .as_deref()
                .unwrap_or(&schema.source_type_key),
        ] {
            if !key.is_empty() && !tags.iter().any(|t| t == key) {
                tags.push(key.to_string());
            }
        }
        if !issues.is_empty() {
            return Err(issues);
        }
        Ok(InfluxDbConfig {
            // The measurement is a plain name here, not a template: a `%` is literal.
            measurement: measurement.replace('%', "%%"),
            tags,
            encoding: self.encoding.clone(),
            static_tags: vec![("metric_type".into(), "logs".into())],
            ..connection!(self, api_version)
        })
    }
}

impl SinkConfig for InfluxDbLogsConfig {
    fn warnings(&self) -> Vec<FieldIssue> {
        let mut w = self.tls.warnings();
        if self.namespace.is_some() {
            w.push(FieldIssue::new(
                "namespace",
                "is deprecated, as in Vector: write `measurement` (the measurement is `<namespace>.vector` until then)",
            ));
        }
        if self.version.is_none() {
            w.push(FieldIssue::new("version", VERSION_INFERRED));
        }
        w
    }

    fn validate(&self) -> Vec<FieldIssue> {
        match self.to_influxdb() {
            Ok(c) => c.validate(),
            Err(issues) => issues,
        }
    }

    fn build(&self, cx: SinkContext) -> Result<Task, BuildError> {
        self.to_influxdb().map_err(build_error)?.build(cx)
    }
}

/// `[sinks.ID] type = "influxdb_metrics"`: Vector's options and meaning.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfluxDbMetricsConfig {
    /// The server, e.g. `http://127.0.0.1:8086`.
    pub endpoint: String,
    /// `"1"` or `"2"`; inferred from the keys given when absent, as Vector does today.
    pub version: Option<String>,
    /// The namespace of metrics that have none (`namespace` is Vector's older name).
    #[serde(alias = "namespace")]
    pub default_namespace: Option<String>,
    /// Tags added to every point.
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
    /// Quantiles computed for summary distributions. Default 0.5, 0.75, 0.9, 0.95, 0.99.
    #[serde(default = "default_quantiles")]
    pub quantiles: Vec<f64>,
    /// v1: the database.
    pub database: Option<String>,
    /// v1: the retention policy.
    pub retention_policy_name: Option<String>,
    /// v1: `any`, `one`, `quorum` or `all`.
    pub consistency: Option<String>,
    /// v1: user name.
    pub username: Option<Secret>,
    /// v1: password.
    pub password: Option<Secret>,
    /// v2: the organization.
    pub org: Option<String>,
    /// v2: the bucket.
    pub bucket: Option<String>,
    /// v2: the API token.
    pub token: Option<Secret>,
    /// Batch limits, as the `influxdb` sink.
    #[serde(default)]
    pub batch: BatchConfig,
    /// Timeouts, concurrency and retries.
    #[serde(default)]
    pub request: RequestConfig,
    /// Trust for HTTPS endpoints.
    #[serde(default)]
    pub tls: ClientTlsConfig,
}

fn default_quantiles() -> Vec<f64> {
    vec![0.5, 0.75, 0.9, 0.95, 0.99]
}

impl InfluxDbMetricsConfig {
    /// The `influxdb` sink this describes, or what is wrong.
    fn to_influxdb(&self) -> Result<InfluxDbConfig, Vec<FieldIssue>> {
        let mut issues = Vec::new();
        let v2_keys = self.org.is_some() || self.bucket.is_some() || self.token.is_some();
        let api_version = api_version(&self.version, v2_keys, &mut issues);
        if !self.quantiles.iter().all(|q| (0.0..=1.0).contains(q)) {
            issues.push(FieldIssue::new("quantiles", "each must be between 0 and 1"));
        }
        if !issues.is_empty() {
            return Err(issues);
        }
        Ok(InfluxDbConfig {
            default_namespace: self.default_namespace.clone(),
            metric_layout: MetricLayout::Vector {
                tags: self.tags.clone().into_iter().collect(),
                quantiles: self.quantiles.clone(),
            },
            ..connection!(self, api_version)
        })
    }
}

impl SinkConfig for InfluxDbMetricsConfig {
    fn warnings(&self) -> Vec<FieldIssue> {
        let mut w = self.tls.warnings();
        if self.version.is_none() {
            w.push(FieldIssue::new("version", VERSION_INFERRED));
        }
        w
    }

    fn validate(&self) -> Vec<FieldIssue> {
        match self.to_influxdb() {
            Ok(c) => c.validate(),
            Err(issues) => issues,
        }
    }

    fn build(&self, cx: SinkContext) -> Result<Task, BuildError> {
        self.to_influxdb().map_err(build_error)?.build(cx)
    }
}
