//! Options of the `http` sink, their defaults and checks, and how they assemble the
//! shared sink runner: the sink itself is this file, [`super::request_builder`] and
//! [`super::service`].

use super::healthcheck::healthcheck;
use super::request_builder::HttpRequestBuilder;
use super::service::HttpService;
use crate::config::field::FieldIssue;
use crate::config::secret::Secret;
use crate::http::{Auth, ClientTlsConfig};
use crate::sinks::util::batch::{BatchConfig, BatchLimits, Framing};
use crate::sinks::util::circuit::CircuitBreakerConfig;
use crate::sinks::util::encoding::Compression;
use crate::sinks::util::http_client::{parse_uri, redact_in, redact_uri, HttpClient};
use crate::sinks::util::retry::RequestConfig;
use crate::sinks::util::runner::{spawn_healthcheck, RunnerConfig, SinkRunner};
use crate::sinks::util::template::Template;
use crate::topology::component::{BuildError, SinkConfig, SinkContext, Task};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::Method;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// `[sinks.ID] type = "http"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSinkConfig {
    /// Where to send; a template (`{{ field }}`, strftime), so events can pick their
    /// endpoint. Field values are percent-encoded. Each distinct URI is a partition.
    pub uri: String,
    /// `POST` (default), `PUT` or `PATCH`.
    #[serde(default)]
    pub method: SinkMethod,
    /// Extra request headers; values may use `${ENV}` and are never logged.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// Credentials sent with every request.
    pub auth: Option<Auth>,
    /// How events become the body.
    #[serde(default)]
    pub encoding: HttpEncoding,
    /// `none` (default) or `gzip`.
    #[serde(default)]
    pub compression: Compression,
    /// Batch limits. Defaults: 1000 events, 1 MB, 1 s.
    #[serde(default)]
    pub batch: BatchConfig,
    /// Timeouts, concurrency and retries.
    #[serde(default)]
    pub request: RequestConfig,
    /// When to stop sending to a failing destination.
    #[serde(default)]
    pub circuit_breaker: CircuitBreakerConfig,
    /// Trust for HTTPS endpoints.
    #[serde(default)]
    pub tls: ClientTlsConfig,
    /// A GET at start that says in the log whether the endpoint is reachable.
    #[serde(default)]
    pub healthcheck: HealthcheckConfig,
}

/// Request methods the sink can use.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum SinkMethod {
    /// The default. Vector spells the values in lower case; both are accepted.
    #[default]
    #[serde(alias = "post")]
    Post,
    /// `PUT`.
    #[serde(alias = "put")]
    Put,
    /// `PATCH`.
    #[serde(alias = "patch")]
    Patch,
}

/// `encoding` of the `http` sink.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpEncoding {
    /// `json` (default: one JSON array of objects per request), `ndjson` (one object
    /// per line) or `text` (the `message` of each event, one per line).
    #[serde(default)]
    pub codec: HttpCodec,
}

/// Body formats.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum HttpCodec {
    /// `[{…},{…}]`, `application/json`.
    #[default]
    Json,
    /// `{…}\n{…}\n`, `application/x-ndjson`.
    Ndjson,
    /// `message\n`, `text/plain`.
    Text,
}

/// `healthcheck`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HealthcheckConfig {
    /// Run the check at all. Default true.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// What to GET; without it there is no check (a webhook has no harmless request).
    pub uri: Option<String>,
}

impl Default for HealthcheckConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            uri: None,
        }
    }
}

fn default_true() -> bool {
    true
}

const DEFAULT_BATCH: BatchLimits = BatchLimits {
    max_events: 1000,
    max_bytes: 1_000_000,
    timeout: Duration::from_secs(1),
    per_event_overhead: 0,
};

impl HttpCodec {
    pub(super) fn framing(self) -> Framing {
        match self {
            HttpCodec::Json => Framing {
                prefix: b"[",
                separator: b",",
                suffix: b"]",
            },
            HttpCodec::Ndjson | HttpCodec::Text => Framing {
                prefix: b"",
                separator: b"\n",
                suffix: b"\n",
            },
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            HttpCodec::Json => "application/json",
            HttpCodec::Ndjson => "application/x-ndjson",
            HttpCodec::Text => "text/plain; charset=utf-8",
        }
    }
}

impl HttpSinkConfig {
    fn headers(&self) -> Result<HeaderMap, FieldIssue> {
        let mut h = HeaderMap::new();
        h.insert(
            hyper::header::CONTENT_TYPE,
            HeaderValue::from_static(self.encoding.codec.content_type()),
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
        if let Some(a) = &self.auth {
            h.insert(
                hyper::header::AUTHORIZATION,
                a.header_value().map_err(|e| FieldIssue::new("auth", e))?,
            );
        }
        for (name, value) in &self.headers {
            let key = format!("headers.{name}");
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| FieldIssue::new(key.clone(), "is not a valid header name"))?;
            let mut v = HeaderValue::from_str(value.expose())
                .map_err(|_| FieldIssue::new(key, "has characters a header value cannot carry"))?;
            v.set_sensitive(true);
            h.insert(n, v);
        }
        Ok(h)
    }
}

impl SinkConfig for HttpSinkConfig {
    fn validate(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        match Template::parse(&self.uri) {
            Ok(t) if t.is_static() => {
                if let Err(e) = parse_uri(&self.uri) {
                    issues.push(FieldIssue::new("uri", e));
                }
            }
            Ok(_) => {}
            Err(e) => issues.push(FieldIssue::new("uri", redact_in(&e.to_string(), &self.uri))),
        }
        if let Err(e) = self.headers() {
            issues.push(e);
        }
        issues.extend(self.request.issues("request"));
        issues.extend(self.batch.issues("batch"));
        if let Some(u) = &self.healthcheck.uri {
            if let Err(e) = parse_uri(u) {
                issues.push(FieldIssue::new("healthcheck.uri", e));
            }
        }
        issues
    }

    fn build(&self, cx: SinkContext) -> Result<Task, BuildError> {
        let template = Template::parse(&self.uri)
            .map_err(|e| BuildError::Other(redact_in(&format!("uri: {e}"), &self.uri)))?;
        let static_uri = match template.is_static() {
            true => Some(parse_uri(&self.uri).map_err(BuildError::Other)?),
            false => None,
        };
        let headers = self.headers().map_err(|e| {
            BuildError::Other(format!("{}: {}", e.key.unwrap_or_default(), e.message))
        })?;
        let client = HttpClient::new(&self.tls, self.request.timeout(), &cx.metrics)
            .map_err(BuildError::Other)?;
        let method = match self.method {
            SinkMethod::Post => Method::POST,
            SinkMethod::Put => Method::PUT,
            SinkMethod::Patch => Method::PATCH,
        };
        if self.healthcheck.enabled {
            if let Some(u) = &self.healthcheck.uri {
                let uri = parse_uri(u).map_err(BuildError::Other)?;
                let shown = redact_uri(&uri);
                let probe = HttpClient::new(&self.tls, self.request.timeout(), &cx.metrics)
                    .map_err(BuildError::Other)?;
                let check = healthcheck(probe, uri, headers.clone());
                spawn_healthcheck(cx.id.clone(), async move {
                    check.await.map_err(|e| format!("{shown}: {e}"))
                });
            }
        }
        let runner = SinkRunner::new(
            RunnerConfig {
                batch: self.batch.limits(DEFAULT_BATCH),
                framing: self.encoding.codec.framing(),
                compression: self.compression,
                request: self.request.clone(),
                circuit_breaker: self.circuit_breaker.clone(),
            },
            HttpRequestBuilder::new(template, static_uri, self.encoding.codec),
            HttpService {
                client,
                method,
                headers,
            },
            &cx,
        );
        Ok(runner.run(cx))
    }
}
