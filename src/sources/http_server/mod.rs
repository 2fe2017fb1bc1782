//! `http_server` source: applications POST their logs (JSON, NDJSON or text, optionally
//! gzipped) and get an answer that tells the truth. A request is decoded whole before any
//! of it is passed on; when the pipeline is full it is refused with 503 and Retry-After
//! rather than held or dropped; with `acknowledgements` the answer waits until the sinks
//! delivered. One task per connection (HTTP/1.1 keep-alive, optional TLS); on shutdown
//! the listener closes, idle connections are closed and requests in flight complete.

/// The body decoding, shared with the other sources (kept under this name too).
pub use crate::sources::util::decoding as decode;

pub use decode::{Codec, DecodingConfig, FramingConfig};

use crate::config::field::FieldIssue;
use crate::config::Acknowledgements;
use crate::event::{BatchNotifier, BatchStatus, Event, EventMetadata, LogEvent, Value};
use crate::http::{Auth, AuthVerifier, ServerTlsConfig};
use crate::internal_events::failures::{BadRequest, BodyTooLarge, DecodeFailed, Unauthorized};
use crate::internal_events::names;
use crate::internal_events::Reporter;
use crate::sources::util::tcp::{self, ListenerContext, ListenerOptions};
use crate::topology::component::{BuildError, Resource, SourceConfig, SourceContext, Task};
use crate::topology::fanout::Refused;
use bytes::{Bytes, BytesMut};
use decode::BodyError;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use metrics::Counter;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How long a request waits for room in full sinks before it is answered 503.
const FULL_WAIT: Duration = Duration::from_millis(500);

/// A client gets this long to send its headers, and again its body: a stalled or
/// slow-drip client cannot hold a connection task for ever.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// `[sources.ID] type = "http_server"` (alias `http`, as in Vector).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpServerConfig {
    /// Where to listen, e.g. `0.0.0.0:8080`.
    pub address: SocketAddr,
    /// The path requests must use. Default `/`.
    #[serde(default = "default_path")]
    pub path: String,
    /// `true` (default): only `path` itself; `false`: any path below it too.
    #[serde(default = "default_true")]
    pub strict_path: bool,
    /// The method requests must use. Default `POST`.
    #[serde(default)]
    pub method: HttpMethod,
    /// How bodies become events.
    #[serde(default)]
    pub decoding: DecodingConfig,
    /// How a body splits into frames before decoding (Vector's `framing`).
    pub framing: Option<FramingConfig>,
    /// Field for the client's IP address, as Vector adds it. Default
    /// `log_schema.host_key` (`host`); `""` leaves it out.
    pub host_key: Option<String>,
    /// Request headers copied into each event, under the header's name (null if absent);
    /// a glob such as `X-*` copies every matching header under its (lowercase) name.
    #[serde(default)]
    pub headers: Vec<String>,
    /// Query parameters copied into each event, under the parameter's name (null if
    /// absent); globs as for `headers`.
    #[serde(default)]
    pub query_parameters: Vec<String>,
    /// The field that gets the request path. Default `path`.
    #[serde(default = "default_path_key")]
    pub path_key: String,
    /// Credentials every request must carry; none by default.
    pub auth: Option<Auth>,
    /// Largest body accepted, before and after decompression (413 beyond). Default 10 MiB.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Serve HTTPS with this certificate and key.
    pub tls: Option<ServerTlsConfig>,
    /// Answer only after the sinks delivered (500 if they failed, 400 if they rejected).
    /// Deprecated here as in Vector (a warning says so): set it on the sinks or at the
    /// top level, which also turns it on for this source.
    #[serde(default)]
    pub acknowledgements: Option<Acknowledgements>,
    /// Vector's HTTP keepalive limits: a connection older than
    /// `max_connection_age_secs` (default 300, jittered by
    /// `max_connection_age_jitter_factor`, default 0.1) is closed after its next answer
    /// (`Connection: close`), so clients behind a load balancer spread over new
    /// instances.
    #[serde(default)]
    pub keepalive: HttpKeepalive,
    /// The status of a successful answer. Default 200.
    #[serde(default = "default_response_code")]
    pub response_code: u16,
}

/// `keepalive` of the HTTP server.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpKeepalive {
    /// Longest a connection is kept, in seconds. Default 300.
    #[serde(default = "default_max_connection_age")]
    pub max_connection_age_secs: u64,
    /// The age is drawn from ±this share around it. Default 0.1.
    #[serde(default = "default_jitter")]
    pub max_connection_age_jitter_factor: f64,
}

impl Default for HttpKeepalive {
    fn default() -> Self {
        Self {
            max_connection_age_secs: default_max_connection_age(),
            max_connection_age_jitter_factor: default_jitter(),
        }
    }
}

fn default_max_connection_age() -> u64 {
    300
}
fn default_jitter() -> f64 {
    0.1
}

impl HttpKeepalive {
    /// One connection's age limit.
    fn age(&self) -> std::time::Duration {
        use rand::Rng;
        let f = self.max_connection_age_jitter_factor.clamp(0.0, 1.0);
        let factor = if f > 0.0 {
            rand::rng().random_range(1.0 - f..=1.0 + f)
        } else {
            1.0
        };
        crate::seconds(self.max_connection_age_secs as f64 * factor)
    }
}

/// The methods a source can be told to accept.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// `GET` (the body still carries the events).
    Get,
    /// `POST`, the default.
    #[default]
    Post,
    /// `PUT`.
    Put,
    /// `PATCH`.
    Patch,
}

impl HttpMethod {
    fn as_method(self) -> Method {
        match self {
            Self::Get => Method::GET,
            Self::Post => Method::POST,
            Self::Put => Method::PUT,
            Self::Patch => Method::PATCH,
        }
    }
}

fn default_path() -> String {
    "/".into()
}
fn default_true() -> bool {
    true
}
fn default_path_key() -> String {
    "path".into()
}
fn default_max_body_bytes() -> usize {
    10 * 1024 * 1024
}
fn default_response_code() -> u16 {
    200
}

impl SourceConfig for HttpServerConfig {
    fn build(&self, cx: SourceContext) -> Result<Task, BuildError> {
        let tls = match &self.tls {
            Some(t) => t
                .acceptor()
                .map_err(|e| BuildError::Other(format!("tls: {e}")))?,
            None => None,
        };
        let verifier = match &self.auth {
            Some(a) => Some(a.verifier().map_err(BuildError::Other)?),
            None => None,
        };
        let listener = crate::sources::util::tcp::bind(self.address, None)?;
        let statuses = [
            200,
            400,
            401,
            404,
            405,
            408,
            413,
            415,
            500,
            503,
            self.response_code,
        ]
        .into_iter()
        .map(|s| {
            let c = cx
                .metrics
                .counter_with(names::HTTP_SERVER_REQUESTS, "status", s.to_string());
            (s, c)
        })
        .collect();
        let handler = Arc::new(Handler {
            host_key: self
                .host_key
                .clone()
                .unwrap_or_else(|| crate::event::schema::log_schema().host_key.clone()),
            acknowledgements: cx.acknowledgements
                || self.acknowledgements.is_some_and(|a| a.enabled()),
            success: StatusCode::from_u16(self.response_code).unwrap_or(StatusCode::OK),
            method: self.method.as_method(),
            verifier,
            source_id: crate::event::intern(&cx.id),
            source_type: Value::Bytes(Bytes::from_static(b"http_server")),
            statuses,
            decode_errors: cx.metrics.reporter(),
            too_large: cx.metrics.reporter(),
            header_names: name_matches(&self.headers)
                .map_err(|e| BuildError::Other(format!("headers: {e}")))?,
            query_names: name_matches(&self.query_parameters)
                .map_err(|e| BuildError::Other(format!("query_parameters: {e}")))?,
            unauthorized: cx.metrics.reporter(),
            bad_request: cx.metrics.reporter(),
            config: self.clone(),
            cx,
        });
        Ok(Box::pin(serve(listener, tls, handler)))
    }

    fn resources(&self) -> Vec<Resource> {
        vec![Resource::Tcp(self.address)]
    }

    fn warnings(&self) -> Vec<FieldIssue> {
        let mut w = self.tls.as_ref().map(|t| t.warnings()).unwrap_or_default();
        if self.acknowledgements.is_some() {
            w.push(FieldIssue::new(
                "acknowledgements",
                "is deprecated on sources, as in Vector: set `acknowledgements.enabled = true` on the sinks (or at the top level); sluice still honours it here",
            ));
        }
        w
    }

    fn validate(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        if !self.path.starts_with('/') {
            issues.push(FieldIssue::new("path", "must start with `/`"));
        }
        if let Some(Err(e)) = self.framing.as_ref().map(FramingConfig::split) {
            issues.push(e);
        }
        if let Some(t) = &self.tls {
            issues.extend(t.issues());
        }
        let jitter = self.keepalive.max_connection_age_jitter_factor;
        if !(0.0..=1.0).contains(&jitter) {
            issues.push(FieldIssue::new(
                "keepalive.max_connection_age_jitter_factor",
                "must be between 0 and 1",
            ));
        }
        if self.max_body_bytes == 0 {
            issues.push(FieldIssue::new("max_body_bytes", "must be at least 1"));
        }
        if !(200..300).contains(&self.response_code) {
            issues.push(FieldIssue::new(
                "response_code",
                "must be a 2xx status (200 to 299)",
            ));
        }
        if let Err(e) = name_matches(&self.headers) {
            issues.push(FieldIssue::new("headers", e));
        }
        if let Err(e) = name_matches(&self.query_parameters) {
            issues.push(FieldIssue::new("query_parameters", e));
        }
        if let Some(a) = &self.auth {
            if let Err(e) = a.verifier() {
                issues.push(FieldIssue::new("auth", e));
            }
        }
        issues
    }
}

/// A name in `headers` or `query_parameters`: exact (the field is null when absent), or
/// a glob such as `X-*` that copies every match under its own name, as in Vector.
enum NameMatch {
    Exact(String),
    Glob(glob::Pattern),
}

impl NameMatch {
    fn new(name: &str) -> Result<Self, String> {
        if name.contains(['*', '?', '[']) {
            glob::Pattern::new(name)
                .map(NameMatch::Glob)
                .map_err(|e| format!("`{name}` is not a valid pattern: {e}"))
        } else {
            Ok(NameMatch::Exact(name.to_string()))
        }
    }

    /// Header names match without regard to case, query names with.
    fn matches(&self, name: &str, case_sensitive: bool) -> bool {
        let options = glob::MatchOptions {
            case_sensitive,
            ..Default::default()
        };
        match self {
            NameMatch::Exact(n) if case_sensitive => n == name,
            NameMatch::Exact(n) => n.eq_ignore_ascii_case(name),
            NameMatch::Glob(p) => p.matches_with(name, options),
        }
    }
}

fn name_matches(names: &[String]) -> Result<Vec<NameMatch>, String> {
    names.iter().map(|n| NameMatch::new(n)).collect()
}

/// Everything a request needs, shared by all connections.
struct Handler {
    config: HttpServerConfig,
    /// Where the client's IP goes (`host_key`, else `log_schema.host_key`; `""`: nowhere).
    host_key: String,
    /// Answer after delivery: a sink downstream acknowledges, or the deprecated
    /// source-level flag is on.
    acknowledgements: bool,
    cx: SourceContext,
    success: StatusCode,
    method: Method,
    verifier: Option<AuthVerifier>,
    source_id: crate::event::SourceId,
    source_type: Value,
    statuses: HashMap<u16, Counter>,
    decode_errors: Reporter<DecodeFailed>,
    too_large: Reporter<BodyTooLarge>,
    unauthorized: Reporter<Unauthorized>,
    bad_request: Reporter<BadRequest>,
    header_names: Vec<NameMatch>,
    query_names: Vec<NameMatch>,
}

type Reply = Response<Full<Bytes>>;

async fn serve(listener: tcp::Listener, tls: Option<tokio_rustls::TlsAcceptor>, h: Arc<Handler>) {
    // Requests in flight finish (their events drain through the sinks); idle keep-alive
    // connections are closed by the graceful shutdown in `connection`.
    let cx = ListenerContext::from(&h.cx);
    let options = ListenerOptions {
        tls,
        ..Default::default()
    };
    tcp::serve(listener, options, cx, "HTTP", move |conn, peer| {
        connection(conn, peer, h.clone())
    })
    .await;
}

async fn connection<S>(stream: S, peer: SocketAddr, h: Arc<Handler>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let shutdown = h.cx.shutdown.clone();
    let close_after = std::time::Instant::now() + h.config.keepalive.age();
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        let h = h.clone();
        async move {
            let what = format!("{} {}", req.method(), req.uri().path());
            let mut reply = h.handle(req, peer).await;
            if std::time::Instant::now() >= close_after {
                // hyper closes the connection once this answer is written.
                reply
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            let status = reply.status();
            if let Some(c) = h.statuses.get(&status.as_u16()) {
                c.increment(1);
            }
            // Refusals the handler has not reported itself: counted and logged (rate
            // limited) so a misconfigured client shows up in the log, not only in metrics.
            let message = || format!("Refused {what} from {peer} with {status}");
            match status {
                StatusCode::UNAUTHORIZED => h.unauthorized.emit(message),
                StatusCode::NOT_FOUND
                | StatusCode::METHOD_NOT_ALLOWED
                | StatusCode::REQUEST_TIMEOUT
                | StatusCode::UNSUPPORTED_MEDIA_TYPE => h.bad_request.emit(message),
                _ => {}
            }
            Ok::<_, std::convert::Infallible>(reply)
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(READ_TIMEOUT)
        .keep_alive(true)
        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// A reply with a JSON body `{"code": …, "message": …}`.
fn error(status: StatusCode, message: &str) -> Reply {
    let body = serde_json::json!({ "code": status.as_u16(), "message": message }).to_string();
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

impl Handler {
    async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Reply {
        let c = &self.config;
        let path = req.uri().path();
        let path_ok = if c.strict_path {
            path == c.path
        } else {
            path.starts_with(&c.path)
        };
        if !path_ok {
            return error(StatusCode::NOT_FOUND, &format!("no endpoint at {path}"));
        }
        if req.method() != self.method {
            let mut r = error(
                StatusCode::METHOD_NOT_ALLOWED,
                &format!("use {} for this endpoint", self.method),
            );
            if let Ok(v) = HeaderValue::from_str(self.method.as_str()) {
                r.headers_mut().insert(header::ALLOW, v);
            }
            return r;
        }
        if let Some(v) = &self.verifier {
            if !v.verify(req.headers().get(header::AUTHORIZATION)) {
                let mut r = error(StatusCode::UNAUTHORIZED, "missing or wrong credentials");
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(v.challenge()),
                );
                return r;
            }
        }
        let gzip = match req
            .headers()
            .get(header::CONTENT_ENCODING)
            .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase())
        {
            None => false,
            Some(e) if e.is_empty() || e == "identity" => false,
            Some(e) if e == "gzip" || e == "x-gzip" => true,
            Some(e) => {
                return error(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    &format!("Content-Encoding `{e}` is not supported; use gzip or none"),
                )
            }
        };
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > c.max_body_bytes as u64) {
            return self.too_large(peer);
        }
        let fields = self.fields_from_request(&req);
        let body =
            match tokio::time::timeout(READ_TIMEOUT, read_body(req.into_body(), c.max_body_bytes))
                .await
            {
                Ok(Ok(b)) => b,
                Ok(Err(BodyError::TooLarge)) => return self.too_large(peer),
                Ok(Err(BodyError::Invalid(m))) => return error(StatusCode::BAD_REQUEST, &m),
                Err(_) => {
                    return error(
                        StatusCode::REQUEST_TIMEOUT,
                        &format!("the body did not arrive within {}s", READ_TIMEOUT.as_secs()),
                    )
                }
            };
        self.cx.metrics.received_bytes.increment(body.len() as u64);
        let body = if gzip {
            match decode::gunzip(&body, c.max_body_bytes) {
                Ok(b) => Bytes::from(b),
                Err(BodyError::TooLarge) => return self.too_large(peer),
                Err(BodyError::Invalid(m)) => return self.bad_body(peer, m),
            }
        } else {
            body
        };
        let mut maps = Vec::new();
        if let Err(e) = decode::decode(
            c.decoding.codec,
            decode::split_of(&c.framing, c.decoding.codec),
            &body,
            &mut maps,
        ) {
            return match e {
                BodyError::TooLarge => self.too_large(peer),
                BodyError::Invalid(m) => self.bad_body(peer, m),
            };
        }
        let now = chrono::Utc::now();
        let ts = Value::Timestamp(now);
        let schema = crate::event::schema::log_schema();
        let move_message = c.decoding.codec == Codec::Text && schema.message_key != "message";
        let mut events: Vec<Event> = Vec::with_capacity(maps.len());
        for mut map in maps {
            if move_message {
                if let Some(m) = map.remove("message") {
                    map.insert(schema.message_key.as_str().into(), m);
                }
            }
            map.entry(schema.timestamp_key.as_str().into())
                .or_insert_with(|| ts.clone());
            map.insert(
                schema.source_type_key.as_str().into(),
                self.source_type.clone(),
            );

            for (k, v) in &fields {
                map.insert(k.as_str().into(), v.clone());
            }
            if !self.host_key.is_empty() {
                // The client's address, unless the event names its host itself (Vector
                // overwrites it; a body's own `host` is the better answer).
                map.entry(self.host_key.as_str().into())
                    .or_insert_with(|| Value::Bytes(Bytes::from(peer.ip().to_string())));
            }
            events.push(Event::Log(LogEvent::from_parts(
                map,
                EventMetadata::new(self.source_id, now),
            )));
        }
        self.deliver(events, peer).await
    }

    /// Path, headers and query parameters: the same for every event.
    fn fields_from_request(&self, req: &Request<Incoming>) -> Vec<(String, Value)> {
        let c = &self.config;
        let mut fields = vec![(
            c.path_key.clone(),
            Value::Bytes(Bytes::copy_from_slice(req.uri().path().as_bytes())),
        )];

        for sel in &self.header_names {
            match sel {
                NameMatch::Exact(name) => {
                    let v = req.headers().get(name.as_str()).map_or(Value::Null, |v| {
                        Value::Bytes(Bytes::copy_from_slice(v.as_bytes()))
                    });
                    fields.push((name.clone(), v));
                }
                NameMatch::Glob(_) => {
                    for (name, v) in req.headers() {
                        if sel.matches(name.as_str(), false) {
                            fields.push((
                                name.as_str().to_string(),
                                Value::Bytes(Bytes::copy_from_slice(v.as_bytes())),
                            ));
                        }
                    }
                }
            }
        }
        if !self.query_names.is_empty() {
            let query: Vec<(String, String)> = req
                .uri()
                .query()
                .unwrap_or("")
                .split('&')
                .filter(|kv| !kv.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    (percent_decode(k), percent_decode(v))
                })
                .collect();
            for sel in &self.query_names {
                match sel {
                    NameMatch::Exact(name) => {
                        let v = query
                            .iter()
                            .find(|(k, _)| k == name)
                            .map_or(Value::Null, |(_, v)| Value::Bytes(Bytes::from(v.clone())));
                        fields.push((name.clone(), v));
                    }
                    NameMatch::Glob(_) => {
                        for (k, v) in query.iter().filter(|(k, _)| sel.matches(k, true)) {
                            fields.push((k.clone(), Value::Bytes(Bytes::from(v.clone()))));
                        }
                    }
                }
            }
        }
        fields
    }

    /// Passes the events on all-or-nothing, then answers (after delivery, with acks).
    async fn deliver(&self, mut events: Vec<Event>, peer: SocketAddr) -> Reply {
        let n = events.len();
        if n == 0 {
            return self.ok();
        }
        let acks = self
            .acknowledgements
            .then(|| BatchNotifier::attach(&mut events));
        // The first batch decides: if the sinks have no room for it, nothing of the
        // request is taken and the client is told to come back. Later batches of a
        // large body wait their turn, since part of the request is already in.
        let rest = if n > crate::event::MAX_BATCH_EVENTS {
            events.split_off(crate::event::MAX_BATCH_EVENTS)
        } else {
            Vec::new()
        };
        match self.cx.out.send_or_refuse(events, FULL_WAIT).await {
            Ok(()) => {}
            Err(Refused::Full(batch)) => {
                // Dropping the refused events must not count as delivery.
                drop(batch);
                drop(rest);
                // Not an error: the client was told to retry, and the 503 is counted
                // in sluice_http_server_requests_total.
                tracing::debug!(component_id = %self.cx.id, %peer, events = n, "Pipeline full: answered 503.");
                let mut r = error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the pipeline is full; retry after the delay in Retry-After",
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return r;
            }
            Err(Refused::Closed) => {
                return error(StatusCode::SERVICE_UNAVAILABLE, "sluice is shutting down")
            }
        }
        let mut rest = rest;
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(crate::event::MAX_BATCH_EVENTS));
            if self.cx.out.send(rest).await.is_err() {
                return error(StatusCode::SERVICE_UNAVAILABLE, "sluice is shutting down");
            }
            rest = tail;
        }
        self.cx.metrics.received_events.increment(n as u64);
        match acks {
            None => self.ok(),
            Some(rx) => match rx.await {
                Ok(BatchStatus::Delivered) => self.ok(),
                Ok(BatchStatus::Rejected) => error(
                    StatusCode::BAD_REQUEST,
                    "a sink rejected the events; see sluice's log",
                ),
                Ok(BatchStatus::Errored) | Err(_) => error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "delivery failed; the events were not stored, send them again",
                ),
            },
        }
    }

    fn ok(&self) -> Reply {
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = self.success;
        r
    }

    fn too_large(&self, peer: SocketAddr) -> Reply {
        let max = self.config.max_body_bytes;
        self.too_large
            .emit(|| format!("A body from {peer} exceeded max_body_bytes ({max})"));
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the body exceeds max_body_bytes ({max} bytes, after decompression)"),
        )
    }

    fn bad_body(&self, peer: SocketAddr, message: String) -> Reply {
        self.decode_errors
            .emit(|| format!("Refused a body from {peer}: {message}"));
        error(StatusCode::BAD_REQUEST, &message)
    }
}

/// Reads a body, refusing more than `limit` bytes without buffering them.
async fn read_body(mut body: Incoming, limit: usize) -> Result<Bytes, BodyError> {
    let mut buf = BytesMut::new();
    let mut first: Option<Bytes> = None;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| BodyError::Invalid(format!("reading the body failed: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let total = buf.len() + first.as_ref().map_or(0, Bytes::len) + data.len();
        if total > limit {
            return Err(BodyError::TooLarge);
        }
        // One frame (the common case for small bodies) is kept without a copy.
        match first.take() {
            None if buf.is_empty() => first = Some(data),
            Some(f) => {
                buf.extend_from_slice(&f);
                buf.extend_from_slice(&data);
            }
            None => buf.extend_from_slice(&data),
        }
    }
    Ok(first.unwrap_or_else(|| buf.freeze()))
}

/// `%XX` and `+` in query strings; a malformed escape stays as it is.
fn percent_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn percent_decoding_keeps_malformed_escapes() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%C3%A9"), "é");
    }
}
