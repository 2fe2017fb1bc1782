//! One request of the `http` sink and what its answer means: 2xx delivered; 408, 429 and
//! 5xx (but 501) retried, honouring `Retry-After`; a connection failure or timeout
//! retried; anything else refused for good, with the status and the start of the body
//! in the log. Redirects are not followed (the body would have to be sent again to a
//! place the operator did not name): they are refused with the new location.

use crate::sinks::util::driver::{Outcome, Service};
use crate::sinks::util::http_client::{body_excerpt, redact_uri, HttpClient};
use crate::sinks::util::retry::parse_retry_after;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderMap, RETRY_AFTER};
use hyper::{Method, StatusCode, Uri};

/// A ready request: where, and the (possibly compressed) body.
pub struct HttpRequest {
    /// The rendered URI.
    pub uri: Uri,
    /// The body as it goes on the wire.
    pub body: Bytes,
}

/// Sends requests of one `http` sink.
pub struct HttpService {
    /// The shared client.
    pub client: HttpClient,
    /// `method`.
    pub method: Method,
    /// `headers`, `Content-Type`, `Content-Encoding` and `Authorization`.
    pub headers: HeaderMap,
}

impl Service for HttpService {
    type Request = HttpRequest;

    async fn call(&self, request: &HttpRequest) -> Outcome {
        let mut req = hyper::Request::new(Full::new(request.body.clone()));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = request.uri.clone();
        *req.headers_mut() = self.headers.clone();
        match self.client.send(req).await {
            Ok(resp) => classify(&request.uri, resp.status(), resp.headers(), resp.body()),
            Err(e) => Outcome::Retry {
                reason: format!("{} {}: {e}", self.method, redact_uri(&request.uri)),
                retry_after: None,
                unwell: true,
            },
        }
    }
}

/// What a response means for the events it answers.
pub fn classify(uri: &Uri, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Outcome {
    if status.is_success() {
        return Outcome::Delivered;
    }
    let reason = format!(
        "{} answered {status}: {}",
        redact_uri(uri),
        body_excerpt(body, 500)
    );
    let retryable = status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || (status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED);
    if retryable {
        let retry_after = headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        // A server that says when to come back (429, or a 503 with Retry-After, as a
        // full sluice answers) is alive and busy: wait as asked, but do not open the
        // circuit over it.
        return Outcome::Retry {
            reason,
            unwell: status != StatusCode::TOO_MANY_REQUESTS && retry_after.is_none(),
            retry_after,
        };
    }
    if status.is_redirection() {
        let to = headers
            .get(hyper::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("?");
        return Outcome::Reject {
            reason: format!("{reason} (redirect to {to}; set `uri` to the final address)"),
            status: Some(status.as_u16()),
        };
    }
    Outcome::Reject {
        reason,
        status: Some(status.as_u16()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(status: u16, retry_after: Option<&str>) -> Outcome {
        let mut h = HeaderMap::new();
        if let Some(r) = retry_after {
            h.insert(RETRY_AFTER, r.parse().unwrap());
        }
        classify(
            &"http://u:p@h/x".parse().unwrap(),
            StatusCode::from_u16(status).unwrap(),
            &h,
            b"{\"error\":\"nope\"}",
        )
    }

    #[test]
    fn statuses_map_to_deliver_retry_or_reject() {
        assert!(matches!(outcome(200, None), Outcome::Delivered));
        assert!(matches!(outcome(204, None), Outcome::Delivered));
        for s in [408, 500, 502, 503, 504] {
            assert!(
                matches!(outcome(s, None), Outcome::Retry { unwell: true, .. }),
                "{s}"
            );
        }
        match outcome(429, Some("3")) {
            Outcome::Retry {
                retry_after,
                unwell,
                ..
            } => {
                assert_eq!(retry_after, Some(std::time::Duration::from_secs(3)));
                assert!(!unwell);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            outcome(503, Some("1")),
            Outcome::Retry { unwell: false, .. }
        ));
        for s in [400, 401, 403, 404, 413, 501, 301] {
            match outcome(s, None) {
                Outcome::Reject { reason, .. } => {
                    assert!(reason.contains("nope"), "{reason}");
                    assert!(!reason.contains("u:p"), "{reason}");
                }
                other => panic!("{s}: {other:?}"),
            }
        }
    }
}
