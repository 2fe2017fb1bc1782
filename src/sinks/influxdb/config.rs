//! Options of the `influxdb` sink (Vector's names), their checks, and how they assemble
//! the sink runner.

use super::healthcheck::ping;
use super::line_protocol::Precision;
use super::request_builder::InfluxDbRequestBuilder;
use super::request_builder::MetricLayout;
use super::service::InfluxDbService;
use crate::config::field::FieldIssue;
use crate::config::secret::Secret;
use crate::http::ClientTlsConfig;
use crate::sinks::util::batch::{BatchConfig, BatchLimits, Framing};
use crate::sinks::util::circuit::CircuitBreakerConfig;
use crate::sinks::util::encoding::{field_selection, Compression};
use crate::sinks::util::http_client::{destination, parse_uri, HttpClient};
use crate::sinks::util::retry::RequestConfig;
use crate::sinks::util::runner::{RunnerConfig, SinkRunner};
use crate::sinks::util::template::{percent_encode, Template};
use crate::topology::component::{BuildError, SinkConfig, SinkContext, Task};
use base64::Engine;
use hyper::header::{HeaderMap, HeaderValue};
use hyper::Uri;
use serde::Deserialize;
use std::time::Duration;

/// `[sinks.ID] type = "influxdb"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfluxDbConfig {
    /// The server, e.g. `http://127.0.0.1:8086` (paths are added).
    pub endpoint: String,
    /// Which write API: `v1` (`/write`, InfluxDB 1.x and 2.x's compatibility endpoint) or
    /// `v2` (`/api/v2/write`). Required: the options differ.
    pub api_version: ApiVersion,
    /// v1: the database.
    pub database: Option<String>,
    /// v1: the retention policy; the database's default when absent.
    pub retention_policy_name: Option<String>,
    /// v1: `any`, `one`, `quorum` or `all` (clustered InfluxDB only).
    pub consistency: Option<String>,
    /// v1: user name (sent with `password` as basic auth).
    pub username: Option<Secret>,
    /// v1: password.
    pub password: Option<Secret>,
    /// v2: the organization.
    pub org: Option<String>,
    /// v2: the bucket.
    pub bucket: Option<String>,
    /// v2: the API token (`Authorization: Token ...`).
    pub token: Option<Secret>,
    /// The measurement of log events; a template (`{{ appname }}`). Default `logs`.
    #[serde(default = "default_measurement")]
    pub measurement: String,
    /// Log fields written as tags (indexed); every other field is a field.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The measurement of metrics that have no namespace.
    pub default_namespace: Option<String>,
    /// Timestamp precision: `ns` (default), `us`, `ms`, `s`.
    #[serde(default)]
    pub precision: Precision,
    /// `gzip` (default) or `none`.
    #[serde(default = "default_compression")]
    pub compression: Compression,
    /// Batch limits. Defaults: 5000 points (InfluxDB's advice), 1 MB, 1 s.
    #[serde(default)]
    pub batch: BatchConfig,
    /// Timeouts, concurrency and retries.
    #[serde(default)]
    pub request: RequestConfig,
    /// When to stop sending to a failing server.
    #[serde(default)]
    pub circuit_breaker: CircuitBreakerConfig,
    /// Trust for HTTPS endpoints.
    #[serde(default)]
    pub tls: ClientTlsConfig,
    /// Vector's `encoding.only_fields` / `encoding.except_fields`: which log fields
    /// are written (tags are chosen by `tags`).
    #[serde(default)]
    pub encoding: InfluxEncoding,
    /// Tags with a fixed value on every log point (`metric_type=logs` for Vector's
    /// `influxdb_logs`); not an option of this type.
    #[serde(skip)]
    pub static_tags: Vec<(String, String)>,
    /// How metrics become points (Telegraf's layout here; Vector's for its
    /// `influxdb_metrics`); not an option of this type.
    #[serde(skip)]
    pub metric_layout: MetricLayout,
}

/// `encoding` of the `influxdb` sink.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InfluxEncoding {
    /// Write only these fields (paths such as `a.b`).
    pub only_fields: Option<Vec<String>>,
    /// Leave these fields out.
    pub except_fields: Option<Vec<String>>,
}

/// The write API.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ApiVersion {
    /// `POST /write?db=&rp=&precision=`.
    V1,
    /// `POST /api/v2/write?org=&bucket=&precision=`.
    V2,
}

fn default_measurement() -> String {
    "logs".into()
}
fn default_compression() -> Compression {
    Compression::Gzip
}

const DEFAULT_BATCH: BatchLimits = BatchLimits {
    max_events: 5000,
    max_bytes: 1_000_000,
    timeout: Duration::from_secs(1),
    per_event_overhead: 0,
    max_order_span: None,
};

/// One point per line.
const LINES: Framing = Framing::fixed(b"", b"\n", b"\n");

impl InfluxDbConfig {
    fn endpoint(&self) -> Result<Uri, String> {
        // The same check and messages as the `http` sink's `uri`, credentials hidden.
        parse_uri(&self.endpoint)
    }

    /// The write URI with its query.
    fn write_uri(&self) -> Result<Uri, String> {
        let base = self.endpoint()?.to_string();
        let base = base.trim_end_matches('/');
        let s = match self.api_version {
            ApiVersion::V1 => {
                let precision = self.precision.as_v1_str();
                let mut s = format!(
                    "{base}/write?db={}&precision={precision}",
                    percent_encode(self.database.as_deref().unwrap_or_default())
                );
                if let Some(rp) = &self.retention_policy_name {
                    s.push_str(&format!("&rp={}", percent_encode(rp)));
                }
                if let Some(c) = &self.consistency {
                    s.push_str(&format!("&consistency={}", percent_encode(c)));
                }
                s
            }
            ApiVersion::V2 => format!(
                "{base}/api/v2/write?org={}&bucket={}&precision={}",
                percent_encode(self.org.as_deref().unwrap_or_default()),
                percent_encode(self.bucket.as_deref().unwrap_or_default()),
                self.precision.as_str()
            ),
        };
        s.parse().map_err(|e| format!("{e}"))
    }

    fn headers(&self) -> Result<HeaderMap, String> {
        let mut h = HeaderMap::new();
        h.insert(
            hyper::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if self.compression == Compression::Gzip {
            h.insert(
                hyper::header::CONTENT_ENCODING,
                HeaderValue::from_static("gzip"),
            );
        }
        h.insert(
            hyper::header::USER_AGENT,
            HeaderValue::from_static(concat!("sluice/", env!("CARGO_PKG_VERSION"))),
        );
        let auth = match (self.api_version, &self.token, &self.username) {
            (ApiVersion::V2, Some(t), _) => Some(format!("Token {}", t.expose())),
            (ApiVersion::V1, _, Some(u)) => {
                let p = self.password.as_ref().map_or("", |p| p.expose());
                let b64 =
                    base64::engine::general_purpose::STANDARD.encode(format!("{}:{p}", u.expose()));
                Some(format!("Basic {b64}"))
            }
            _ => None,
        };
        if let Some(a) = auth {
            let mut v = HeaderValue::from_str(&a)
                .map_err(|_| "credentials hold characters a header cannot carry".to_string())?;
            v.set_sensitive(true);
            h.insert(hyper::header::AUTHORIZATION, v);
        }
        RequestConfig::add_headers(&self.request.headers, "request.headers", &mut h)
            .map_err(|e| format!("{}: {}", e.key.unwrap_or_default(), e.message))?;
        Ok(h)
    }
}

impl SinkConfig for InfluxDbConfig {
    fn warnings(&self) -> Vec<FieldIssue> {
        self.tls.warnings()
    }

    fn validate(&self) -> Vec<FieldIssue> {
        let mut issues = self.tls.issues();
        issues.extend(
            field_selection(
                "encoding",
                &self.encoding.only_fields,
                &self.encoding.except_fields,
            )
            .0,
        );
        if let Err(e) = self.endpoint() {
            issues.push(FieldIssue::new("endpoint", e));
        }
        type Presence<'a> = &'a [(&'static str, bool)];
        let (needed, foreign): (Presence, Presence) = match self.api_version {
            ApiVersion::V1 => (
                &[("database", self.database.is_some())],
                &[
                    ("org", self.org.is_some()),
                    ("bucket", self.bucket.is_some()),
                    ("token", self.token.is_some()),
                ],
            ),
            ApiVersion::V2 => (
                &[
                    ("org", self.org.is_some()),
                    ("bucket", self.bucket.is_some()),
                    ("token", self.token.is_some()),
                ],
                &[
                    ("database", self.database.is_some()),
                    (
                        "retention_policy_name",
                        self.retention_policy_name.is_some(),
                    ),
                    ("consistency", self.consistency.is_some()),
                    ("username", self.username.is_some()),
                    ("password", self.password.is_some()),
                ],
            ),
        };
        let version = match self.api_version {
            ApiVersion::V1 => "v1",
            ApiVersion::V2 => "v2",
        };
        for (k, present) in needed {
            if !present {
                issues.push(FieldIssue::new(
                    *k,
                    format!("is required with api_version = \"{version}\""),
                ));
            }
        }
        for (k, present) in foreign {
            if *present {
                issues.push(FieldIssue::new(
                    *k,
                    format!("is not an option of api_version = \"{version}\""),
                ));
            }
        }
        if let Err(e) = Template::parse(&self.measurement) {
            issues.push(FieldIssue::new("measurement", e.to_string()));
        }
        if let Err(e) = self.headers() {
            issues.push(FieldIssue::new("password", e));
        }
        issues.extend(self.request.issues("request"));
        issues.extend(self.batch.issues("batch"));
        issues
    }

    fn build(&self, cx: SinkContext) -> Result<Task, BuildError> {
        let endpoint = self.endpoint().map_err(BuildError::Other)?;
        let uri = self.write_uri().map_err(BuildError::Other)?;
        let headers = self.headers().map_err(BuildError::Other)?;
        let measurement = Template::parse(&self.measurement)
            .map_err(|e| BuildError::Other(format!("measurement: {e}")))?;
        let client = HttpClient::new(&self.tls, &cx.proxy, self.request.timeout(), &cx.metrics)
            .map_err(BuildError::Other)?;
        if cx.healthcheck.enabled {
            let probe = HttpClient::new(&self.tls, &cx.proxy, self.request.timeout(), &cx.metrics)
                .map_err(BuildError::Other)?;
            cx.spawn_healthcheck(ping(probe, endpoint.clone()));
        }
        let destination = destination(&endpoint);
        let mut builder = InfluxDbRequestBuilder::new(
            uri,
            destination,
            measurement,
            self.tags.clone(),
            self.default_namespace.clone(),
            self.precision,
            cx.metrics.reporter(),
        );
        builder.lanes = self.request.concurrency.max(1);
        builder.set_static_tags(&self.static_tags);
        builder.metric_layout = self.metric_layout.clone();
        builder.fields = field_selection(
            "encoding",
            &self.encoding.only_fields,
            &self.encoding.except_fields,
        )
        .1;
        let runner = SinkRunner::new(
            RunnerConfig {
                batch: self.batch.limits(DEFAULT_BATCH),
                framing: LINES,
                compression: self.compression,
                request: self.request.clone(),
                circuit_breaker: self.circuit_breaker.clone(),
            },
            builder,
            InfluxDbService { client, headers },
            &cx,
        );
        Ok(runner.run(cx))
    }
}
