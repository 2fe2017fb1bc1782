//! `http` sink: events to any HTTP endpoint (webhooks, workflow tools, another sluice),
//! batched per rendered URI, encoded once, optionally gzipped, and delivered through the
//! shared driver (`sinks/util/driver.rs`): bounded concurrency with order kept per URI,
//! retries with backoff and jitter that honour `Retry-After`, and a circuit breaker per
//! destination. Events are marked delivered only when the endpoint answered 2xx.

mod service;

pub use service::{classify, HttpRequest, HttpService};

use crate::config::field::FieldIssue;
use crate::config::secret::Secret;
use crate::event::{Batch, BatchStatus, Event};
use crate::http::{Auth, ClientTlsConfig};
use crate::internal_events::{ComponentMetrics, ErrorReporter};
use crate::sinks::util::batch::{BatchConfig, BatchLimits, Batcher, Framing, Payload};
use crate::sinks::util::circuit::{CircuitBreaker, CircuitBreakerConfig};
use crate::sinks::util::driver::{Driver, Work};
use crate::sinks::util::encoding::{encode_json, encode_text, Compression};
use crate::sinks::util::http_client::{redact_in, redact_uri, HttpClient};
use crate::sinks::util::retry::RequestConfig;
use crate::sinks::util::template::Template;
use crate::topology::component::{BuildError, SinkConfig, SinkContext, Task};
use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Uri};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::Arc;
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
    /// The default.
    #[default]
    Post,
    /// `PUT`.
    Put,
    /// `PATCH`.
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
};

impl HttpCodec {
    fn framing(self) -> Framing {
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

fn parse_uri(s: &str) -> Result<Uri, String> {
    let uri: Uri = s
        .parse()
        .map_err(|e| redact_in(&format!("`{s}` is not a URI: {e}"), s))?;
    match uri.scheme_str() {
        Some("http") | Some("https") if uri.host().is_some() => Ok(uri),
        _ => Err(format!(
            "`{}` needs http:// or https:// and a host",
            redact_uri(&uri)
        )),
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
        for (k, p) in self.request.problems() {
            issues.push(FieldIssue::new(format!("request.{k}"), p));
        }
        for (k, p) in self.batch.problems() {
            issues.push(FieldIssue::new(format!("batch.{k}"), p));
        }
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
                let probe = HttpClient::new(&self.tls, self.request.timeout(), &cx.metrics)
                    .map_err(BuildError::Other)?;
                tokio::spawn(healthcheck(probe, uri, headers.clone(), cx.id.clone()));
            }
        }
        let sink = HttpSink {
            batcher: Batcher::new(
                self.batch.limits(DEFAULT_BATCH),
                self.encoding.codec.framing(),
            ),
            driver: Driver::new(
                HttpService {
                    client,
                    method,
                    headers,
                },
                self.request.clone(),
                &cx.metrics,
                cx.input.held(),
            ),
            held: cx.input.held(),
            codec: self.encoding.codec,
            gzip: self.compression == Compression::Gzip,
            template,
            static_uri,
            breakers: HashMap::new(),
            breaker_config: self.circuit_breaker.clone(),
            template_errors: cx.metrics.error_reporter("template"),
            uri_errors: cx.metrics.error_reporter("invalid_uri"),
            metrics: cx.metrics.clone(),
            circuit_gauge: cx.metrics.gauge("sluice_http_client_circuit_open"),
            id: cx.id.clone(),
        };
        Ok(Box::pin(sink.run(cx)))
    }
}

async fn healthcheck(client: HttpClient, uri: Uri, headers: HeaderMap, id: Arc<str>) {
    let mut req = hyper::Request::new(http_body_util::Full::new(Bytes::new()));
    *req.uri_mut() = uri.clone();
    *req.headers_mut() = headers;
    match client.send(req).await {
        Ok(r) if r.status().is_success() => {
            tracing::info!(component_id = %id, uri = %redact_uri(&uri), "Healthcheck passed.")
        }
        Ok(r) => {
            tracing::warn!(component_id = %id, uri = %redact_uri(&uri), status = %r.status(), "Healthcheck failed; events will be sent and retried anyway.")
        }
        Err(e) => {
            tracing::warn!(component_id = %id, uri = %redact_uri(&uri), error = %e, "Healthcheck failed; events will be sent and retried anyway.")
        }
    }
}

struct HttpSink {
    batcher: Batcher,
    driver: Driver<HttpService>,
    codec: HttpCodec,
    gzip: bool,
    template: Template,
    static_uri: Option<Uri>,
    breakers: HashMap<String, Arc<CircuitBreaker>>,
    breaker_config: CircuitBreakerConfig,
    template_errors: ErrorReporter,
    uri_errors: ErrorReporter,
    metrics: ComponentMetrics,
    circuit_gauge: metrics::Gauge,
    id: Arc<str>,
    held: crate::topology::buffer::HeldEvents,
}

impl HttpSink {
    async fn run(mut self, mut cx: SinkContext) {
        let mut ready: Vec<Payload> = Vec::new();
        let mut uri = String::new();
        loop {
            let deadline = self.batcher.next_deadline();
            tokio::select! {
                b = cx.input.recv(), if self.driver.has_room() => match b {
                    Some(batch) => self.add(batch, &mut uri, &mut ready),
                    None => break,
                },
                _ = sleep_until(deadline), if deadline.is_some() => self.batcher.take_due(false, &mut ready),
                _ = self.driver.next_done(), if !self.driver.is_idle() => {}
            }
            for p in ready.drain(..) {
                self.submit(p);
            }
        }
        // The input closed (shutdown): send what is gathered and wait for every answer.
        self.batcher.take_due(true, &mut ready);
        for p in ready.drain(..) {
            self.submit(p);
        }
        self.driver.drain().await;
        self.circuit_gauge.set(0.0);
    }

    fn add(&mut self, mut batch: Batch, uri: &mut String, ready: &mut Vec<Payload>) {
        self.metrics.received_events.increment(batch.len() as u64);
        let codec = self.codec;
        let mut taken = 0u64;
        for e in batch.iter_mut() {
            if self.static_uri.is_none() {
                let time = Template::event_time(e);
                if let Err(err) = self.template.render_uri(e, time, uri) {
                    self.template_errors
                        .report(1, || format!("Dropped an event: uri: {err}"));
                    self.metrics.discarded_unintentional.increment(1);
                    e.take_finalizers().update_status(BatchStatus::Rejected);
                    continue;
                }
            }
            let finalizers = e.take_finalizers();
            taken += 1;
            let event: &Event = e;
            self.batcher.push(
                uri,
                |out| match codec {
                    HttpCodec::Json | HttpCodec::Ndjson => encode_json(event, out),
                    HttpCodec::Text => encode_text(event, out),
                },
                finalizers,
                ready,
            );
        }
        self.held.add(taken);
    }

    fn submit(&mut self, p: Payload) {
        let uri = match &self.static_uri {
            Some(u) => u.clone(),
            None => match parse_uri(&p.key) {
                Ok(u) => u,
                Err(e) => {
                    let n = p.events;
                    self.uri_errors
                        .report(1, || format!("Dropped {n} events: {e}"));
                    self.metrics.discarded_unintentional.increment(n as u64);
                    self.held.sub(n as u64);
                    p.finalizers.update_status(BatchStatus::Rejected);
                    return;
                }
            },
        };
        let body = if self.gzip {
            let mut enc = flate2::write::GzEncoder::new(
                Vec::with_capacity(p.body.len() / 4),
                flate2::Compression::fast(),
            );
            // Writing to a Vec cannot fail.
            let _ = enc.write_all(&p.body);
            Bytes::from(enc.finish().unwrap_or_default())
        } else {
            Bytes::from(p.body)
        };
        let authority = uri.authority().map_or("", |a| a.as_str()).to_string();
        let breaker = self
            .breakers
            .entry(authority.clone())
            .or_insert_with(|| {
                Arc::new(CircuitBreaker::new(
                    &self.breaker_config,
                    redact_uri(&uri),
                    self.id.clone(),
                    self.circuit_gauge.clone(),
                ))
            })
            .clone();
        self.driver.submit(Work {
            partition: p.key,
            bytes: body.len(),
            request: HttpRequest { uri, body },
            events: p.events,
            finalizers: p.finalizers,
            breaker,
        });
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
