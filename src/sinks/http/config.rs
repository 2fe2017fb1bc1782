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
use crate::sinks::util::encoding::{Codec, Compression, EncodingConfig, FramingConfig};
use crate::sinks::util::http_client::{parse_uri, redact_in, redact_uri, HttpClient};
use crate::sinks::util::retry::RequestConfig;
use crate::sinks::util::runner::{RunnerConfig, SinkRunner};
use crate::sinks::util::template::Template;
use crate::topology::component::{BuildError, SinkConfig, SinkContext, Task};
use hyper::header::{HeaderMap, HeaderValue};
use hyper::Method;
use serde::Deserialize;
use std::borrow::Cow;
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
    /// Extra request headers, as before Vector 0.55 moved them to `request.headers`:
    /// still honoured, with a warning.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// Credentials sent with every request.
    pub auth: Option<Auth>,
    /// How each event becomes bytes: `codec` `json` (default), `ndjson`, `text` or
    /// `raw_message`, and Vector's field and timestamp options.
    #[serde(default)]
    pub encoding: EncodingConfig,
    /// What separates events in a body. For `json` the default is a JSON array
    /// (`character_delimited` with `,`); for text a newline after each event.
    pub framing: Option<FramingConfig>,
    /// Written before the JSON array (with `json` and the default framing), e.g.
    /// `{"data":`.
    #[serde(default)]
    pub payload_prefix: String,
    /// Written after the JSON array, e.g. `}`.
    #[serde(default)]
    pub payload_suffix: String,
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

const DEFAULT_BATCH: BatchLimits = BatchLimits {
    max_events: 1000,
    max_bytes: 1_000_000,
    timeout: Duration::from_secs(1),
    per_event_overhead: 0,
    max_order_span: None,
};

/// The body layout of one encoding and framing, as Vector builds it: a JSON array
/// (wrapped in `payload_prefix` / `payload_suffix`) for `json` with the default or a `,`
/// framing; NDJSON without a final newline for `json` with `newline_delimited`; the
/// delimiter after every event otherwise.
struct Body {
    framing: Framing,
    content_type: Option<&'static str>,
}

impl HttpSinkConfig {
    fn body(&self) -> Result<Body, FieldIssue> {
        let codec = self.encoding.codec;
        let delimiter = match &self.framing {
            Some(f) => Some(f.delimiter()?),
            None => None,
        };
        if codec == Codec::Ndjson && self.framing.is_some() {
            return Err(FieldIssue::new(
                "framing",
                "the `ndjson` codec frames itself; for another framing use `codec = \"json\"`",
            ));
        }
        let json_array = codec == Codec::Json && delimiter.as_deref().is_none_or(|d| d == b",");
        if json_array {
            let wrapped = format!("{}{{}}{}", self.payload_prefix, self.payload_suffix);
            if serde_json::from_str::<serde_json::Value>(&wrapped).is_err() {
                return Err(FieldIssue::new(
                    "payload_prefix",
                    format!("with payload_suffix it must wrap the array into valid JSON; `{wrapped}` is not"),
                ));
            }
            let mut prefix = self.payload_prefix.as_bytes().to_vec();
            prefix.push(b'[');
            let mut suffix = b"]".to_vec();
            suffix.extend_from_slice(self.payload_suffix.as_bytes());
            return Ok(Body {
                framing: Framing {
                    prefix: prefix.into(),
                    separator: Cow::Borrowed(b","),
                    suffix: suffix.into(),
                },
                content_type: Some("application/json"),
            });
        }
        let delimiter = delimiter.unwrap_or(Cow::Borrowed(b"\n"));
        let newline = delimiter.as_ref() == b"\n";
        let (suffix, content_type) = match codec {
            // Vector leaves the last newline off a JSON-lines body (as its 0.20 did).
            Codec::Json => (
                Cow::Borrowed(&b""[..]),
                newline.then_some("application/x-ndjson"),
            ),
            Codec::Ndjson => (delimiter.clone(), Some("application/x-ndjson")),
            Codec::Text | Codec::RawMessage => {
                (delimiter.clone(), Some("text/plain; charset=utf-8"))
            }
        };
        Ok(Body {
            framing: Framing {
                prefix: Cow::Borrowed(b""),
                separator: delimiter,
                suffix,
            },
            content_type,
        })
    }

    fn headers(&self) -> Result<HeaderMap, FieldIssue> {
        let mut h = HeaderMap::new();
        if let Some(t) = self.body()?.content_type {
            h.insert(hyper::header::CONTENT_TYPE, HeaderValue::from_static(t));
        }
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
        RequestConfig::add_headers(&self.headers, "headers", &mut h)?;
        RequestConfig::add_headers(&self.request.headers, "request.headers", &mut h)?;
        Ok(h)
    }
}

impl SinkConfig for HttpSinkConfig {
    fn warnings(&self) -> Vec<FieldIssue> {
        let mut w = self.tls.warnings();
        if !self.headers.is_empty() {
            w.push(FieldIssue::new(
                "headers",
                "is deprecated, as in Vector 0.55: write `request.headers`; sluice still sends these",
            ));
        }
        let json_array = self.encoding.codec == Codec::Json
            && self
                .framing
                .as_ref()
                .is_none_or(|f| f.delimiter().is_ok_and(|d| d.as_ref() == b","));
        let wrapped = !self.payload_prefix.is_empty() || !self.payload_suffix.is_empty();
        if wrapped && !json_array {
            w.push(FieldIssue::new(
                "payload_prefix",
                "is ignored: it only wraps the JSON array of `codec = \"json\"` with its default framing (as in Vector)",
            ));
        }
        w
    }

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
        issues.extend(self.encoding.issues("encoding"));
        issues.extend(self.tls.issues());
        issues.extend(self.request.issues("request"));
        issues.extend(self.batch.issues("batch"));
        issues
    }

    fn build(&self, cx: SinkContext) -> Result<Task, BuildError> {
        let template = Template::parse(&self.uri)
            .map_err(|e| BuildError::Other(redact_in(&format!("uri: {e}"), &self.uri)))?;
        let static_uri = match template.is_static() {
            true => Some(parse_uri(&self.uri).map_err(BuildError::Other)?),
            false => None,
        };
        let headers = self.headers()?;
        let client = HttpClient::new(&self.tls, &cx.proxy, self.request.timeout(), &cx.metrics)
            .map_err(BuildError::Other)?;
        let method = match self.method {
            SinkMethod::Post => Method::POST,
            SinkMethod::Put => Method::PUT,
            SinkMethod::Patch => Method::PATCH,
        };
        // `healthcheck` is every sink's option, handled by the config loader.
        if cx.healthcheck.enabled {
            if let Some(u) = &cx.healthcheck.uri {
                let uri = parse_uri(u).map_err(BuildError::Other)?;
                let shown = redact_uri(&uri);
                let probe =
                    HttpClient::new(&self.tls, &cx.proxy, self.request.timeout(), &cx.metrics)
                        .map_err(BuildError::Other)?;
                let check = healthcheck(probe, uri, headers.clone());
                cx.spawn_healthcheck(
                    async move { check.await.map_err(|e| format!("{shown}: {e}")) },
                );
            }
        }
        let body = self.body()?;
        let runner = SinkRunner::new(
            RunnerConfig {
                batch: self.batch.limits(DEFAULT_BATCH),
                framing: body.framing,
                compression: self.compression,
                request: self.request.clone(),
                circuit_breaker: self.circuit_breaker.clone(),
            },
            HttpRequestBuilder::new(template, static_uri, self.encoding.encoder()),
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
