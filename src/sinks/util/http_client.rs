//! The HTTP client every HTTP-speaking sink shares: hyper with rustls (system roots plus
//! `tls.ca_file`), connection reuse, a timeout per attempt covering the response body,
//! and the client metrics (`sluice_http_client_requests_total{status}`,
//! `sluice_http_client_request_duration_seconds`). The response body is read up to a
//! limit, enough to log why a request was refused.

use super::proxy::{proxy_authorization, ProxyConfig, ProxyConnector};
use crate::http::ClientTlsConfig;
use crate::internal_events::names;
use crate::internal_events::ComponentMetrics;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::proxy::matcher::Matcher;
use metrics::{Counter, Histogram};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How much of a response body is kept.
const MAX_RESPONSE_BODY: usize = 64 * 1024;

/// Why an attempt got no response.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// No response within the timeout.
    #[error("no response within {0:?}")]
    Timeout(Duration),
    /// Connecting, TLS, or the exchange failed.
    #[error("{0}")]
    Transport(String),
}

/// A response with its (possibly cut) body.
pub type HttpResponse = Response<Bytes>;

/// A client for one sink.
#[derive(Debug)]
pub struct HttpClient {
    client: Client<hyper_rustls::HttpsConnector<ProxyConnector>, Full<Bytes>>,
    proxy: Option<Arc<Matcher>>,
    timeout: Duration,
    metrics: ComponentMetrics,
    statuses: Mutex<HashMap<u16, Counter>>,
    transport_errors: Counter,
    duration: Histogram,
}

impl HttpClient {
    /// Builds the client; fails on unreadable TLS files.
    pub fn new(
        tls: &ClientTlsConfig,
        proxy: &ProxyConfig,
        timeout: Duration,
        metrics: &ComponentMetrics,
    ) -> Result<Self, String> {
        let tls_config = tls.client_config().map_err(|e| format!("tls: {e}"))?;
        let matcher = proxy.matcher();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config)
            .https_or_http()
            .enable_http1()
            .wrap_connector(ProxyConnector::new(http, matcher.clone()));
        let client = Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Self {
            client,
            proxy: matcher,
            timeout,
            statuses: Mutex::new(HashMap::new()),
            transport_errors: metrics.counter_with(
                names::HTTP_CLIENT_REQUESTS,
                "status",
                "error".into(),
            ),
            duration: metrics.histogram(names::HTTP_CLIENT_REQUEST_DURATION),
            metrics: metrics.clone(),
        })
    }

    /// Sends one request and reads its response, all within the timeout.
    pub async fn send(&self, mut req: Request<Full<Bytes>>) -> Result<HttpResponse, HttpError> {
        if let Some(auth) = proxy_authorization(&self.proxy, req.uri()) {
            req.headers_mut()
                .insert(hyper::header::PROXY_AUTHORIZATION, auth);
        }
        let start = Instant::now();
        let exchange = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| HttpError::Transport(describe(&e)))?;
            let (parts, mut body) = resp.into_parts();
            let mut buf = Vec::new();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| HttpError::Transport(describe(&e)))?;
                if let Ok(data) = frame.into_data() {
                    let room = MAX_RESPONSE_BODY.saturating_sub(buf.len());
                    buf.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
            Ok(Response::from_parts(parts, Bytes::from(buf)))
        };
        let result = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(HttpError::Timeout(self.timeout)),
        };
        self.duration.record(start.elapsed().as_secs_f64());
        match &result {
            Ok(r) => self.count_status(r.status().as_u16()),
            Err(_) => self.transport_errors.increment(1),
        }
        result
    }

    fn count_status(&self, status: u16) {
        let mut m = self.statuses.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(status)
            .or_insert_with(|| {
                self.metrics
                    .counter_with(names::HTTP_CLIENT_REQUESTS, "status", status.to_string())
            })
            .increment(1);
    }
}

/// The whole chain of causes: hyper's top-level message alone ("client error
/// (Connect)") does not say what happened.
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        cur = c.source();
    }
    text
}

/// A URI fit for logs: user and password removed.
pub fn redact_uri(uri: &hyper::Uri) -> String {
    match uri.authority() {
        Some(a) if a.as_str().contains('@') => {
            let host = a.as_str().rsplit_once('@').map_or("", |(_, h)| h);
            format!(
                "{}://**REDACTED**@{host}{}",
                uri.scheme_str().unwrap_or("http"),
                uri.path_and_query().map_or("", |p| p.as_str())
            )
        }
        _ => uri.to_string(),
    }
}

/// The host and port of a URI without its credentials: the key of a destination's
/// circuit breaker, shown in logs.
pub fn destination(uri: &hyper::Uri) -> String {
    let a = uri.authority().map_or("", |a| a.as_str());
    a.rsplit_once('@').map_or(a, |(_, host)| host).to_string()
}

/// GETs `uri` with `headers`: the healthcheck of HTTP sinks. `Err` says what came back
/// instead of a 2xx.
pub async fn get_ok(
    client: &HttpClient,
    uri: hyper::Uri,
    headers: hyper::HeaderMap,
) -> Result<(), String> {
    let mut req = Request::new(Full::new(Bytes::new()));
    *req.uri_mut() = uri;
    *req.headers_mut() = headers;
    match client.send(req).await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("answered {}", r.status())),
        Err(e) => Err(e.to_string()),
    }
}

/// Parses a sink's `uri` or `endpoint`: an `http://` or `https://` URI with a host. The
/// message never shows the URI's credentials.
pub fn parse_uri(s: &str) -> Result<hyper::Uri, String> {
    let uri: hyper::Uri = s
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

/// The `user:password` part of a URI as written in a config (even one that does not
/// parse), so messages about it can leave it out.
pub fn userinfo(uri: &str) -> Option<&str> {
    let rest = &uri[uri.find("://")? + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    authority.rfind('@').map(|at| &authority[..at])
}

/// `message` with the credentials of `uri` (if it has any) replaced.
pub fn redact_in(message: &str, uri: &str) -> String {
    match userinfo(uri) {
        Some(u) if !u.is_empty() => message.replace(u, "**REDACTED**"),
        _ => message.to_string(),
    }
}

/// Up to `max` characters of a response body on one log line: every run of whitespace
/// (an HTML error page's newlines and indentation) becomes one space.
pub fn body_excerpt(body: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(body);
    let (mut cut, mut taken, mut more) = (String::new(), 0, false);
    'words: for word in text.split_whitespace() {
        if !cut.is_empty() {
            cut.push(' ');
            taken += 1;
        }
        for c in word.chars() {
            if taken >= max {
                more = true;
                break 'words;
            }
            cut.push(c);
            taken += 1;
        }
    }
    if more {
        cut.truncate(cut.trim_end().len());
        cut.push('…');
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_lose_their_credentials_in_logs() {
        let u: hyper::Uri = "https://user:pw@example.com:8443/hook?x=1".parse().unwrap();
        assert_eq!(
            redact_uri(&u),
            "https://**REDACTED**@example.com:8443/hook?x=1"
        );
        let u: hyper::Uri = "http://example.com/a".parse().unwrap();
        assert_eq!(redact_uri(&u), "http://example.com/a");
    }

    #[test]
    fn credentials_are_found_even_in_unparseable_uris() {
        assert_eq!(userinfo("https://u:p@h/x@y"), Some("u:p"));
        assert_eq!(userinfo("https://h/x@y"), None);
        assert_eq!(
            redact_in("`http://u:p w@h/{{` is bad", "http://u:p w@h/{{"),
            "`http://**REDACTED**@h/{{` is bad"
        );
    }

    #[test]
    fn excerpts_are_cut_on_characters() {
        assert_eq!(body_excerpt("ééé".as_bytes(), 2), "éé…");
        assert_eq!(body_excerpt(b"ok", 10), "ok");
        assert_eq!(
            body_excerpt(b"<html>\n  <body>\n\n   501\n</body>\n", 100),
            "<html> <body> 501 </body>"
        );
    }
}
