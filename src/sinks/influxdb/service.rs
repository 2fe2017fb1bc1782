//! One write and what its answer means: 2xx delivered; a partial write (1.x answers 400,
//! 2.x answers 422, both with `partial write: ... dropped=N`) is the runner's partial
//! success, never retried; 401 and 403 are configuration errors, named as such; the rest
//! as the `http` sink classifies it (408, 429 and 5xx retried honouring `Retry-After`,
//! other 4xx refused).

use crate::sinks::http::classify;
use crate::sinks::util::driver::{Outcome, Service};
use crate::sinks::util::http_client::{body_excerpt, redact_uri, HttpClient};
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::HeaderMap;
use hyper::{Method, StatusCode, Uri};

/// A ready write: where, and the (possibly compressed) lines.
pub struct WriteRequest {
    /// `/write?db=...` or `/api/v2/write?org=...`.
    pub uri: Uri,
    /// The body as it goes on the wire.
    pub body: Bytes,
    /// Points in it, to tell a partial write from a whole one.
    pub points: usize,
}

/// Sends the writes of one `influxdb` sink.
pub struct InfluxDbService {
    /// The shared client.
    pub client: HttpClient,
    /// `Content-Type`, `Content-Encoding`, `Authorization`.
    pub headers: HeaderMap,
}

impl Service for InfluxDbService {
    type Request = WriteRequest;

    async fn call(&self, request: &WriteRequest) -> Outcome {
        let mut req = hyper::Request::new(Full::new(request.body.clone()));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = request.uri.clone();
        *req.headers_mut() = self.headers.clone();
        match self.client.send(req).await {
            Ok(resp) => answer(
                &request.uri,
                resp.status(),
                resp.headers(),
                resp.body(),
                request.points,
            ),
            Err(e) => Outcome::Retry {
                reason: format!("POST {}: {e}", redact_uri(&request.uri)),
                retry_after: None,
                unwell: true,
            },
        }
    }
}

/// What InfluxDB's answer to a write of `points` points means.
pub fn answer(
    uri: &Uri,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    points: usize,
) -> Outcome {
    if status.is_success() {
        return Outcome::Delivered;
    }
    let text = String::from_utf8_lossy(body);
    if matches!(status.as_u16(), 400 | 422) && text.contains("partial write") {
        // `... dropped=N`: the server kept the rest of the batch.
        let dropped = text
            .rsplit("dropped=")
            .next()
            .and_then(|t| {
                let digits: String = t.chars().take_while(char::is_ascii_digit).collect();
                digits.parse::<usize>().ok()
            })
            .filter(|_| text.contains("dropped="));
        let reason = body_excerpt(body, 500);
        return match dropped {
            Some(n) if n < points => Outcome::Partial {
                rejected: n,
                reason,
            },
            _ => Outcome::Reject {
                reason,
                status: Some(status.as_u16()),
            },
        };
    }
    if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        return Outcome::Reject {
            reason: format!(
                "{} answered {status}: the credentials are missing or may not write here (check username/password for v1, token for v2): {}",
                redact_uri(uri),
                body_excerpt(body, 300)
            ),
            status: Some(status.as_u16()),
        };
    }
    classify(uri, status, headers, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(status: u16, body: &str, points: usize) -> Outcome {
        answer(
            &"http://h/write?db=x".parse().unwrap(),
            StatusCode::from_u16(status).unwrap(),
            &HeaderMap::new(),
            body.as_bytes(),
            points,
        )
    }

    #[test]
    fn partial_writes_count_what_was_dropped_and_are_never_retried() {
        let v1 = r#"{"error":"partial write: field type conflict: input field \"n\" on measurement \"logs\" is type float, already exists as type integer dropped=1"}"#;
        assert!(matches!(
            outcome(400, v1, 3),
            Outcome::Partial { rejected: 1, .. }
        ));
        let v2 = r#"{"code":"unprocessable entity","message":"partial write: dropped 2 points outside retention policy dropped=2"}"#;
        assert!(matches!(
            outcome(422, v2, 10),
            Outcome::Partial { rejected: 2, .. }
        ));
        // Everything dropped: a rejection, not a success.
        assert!(matches!(outcome(400, v1, 1), Outcome::Reject { .. }));
        assert!(matches!(
            outcome(400, "{\"error\":\"unable to parse\"}", 5),
            Outcome::Reject { .. }
        ));
        assert!(matches!(outcome(204, "", 5), Outcome::Delivered));
        assert!(matches!(outcome(503, "", 5), Outcome::Retry { .. }));
        match outcome(401, "{\"error\":\"authorization failed\"}", 5) {
            Outcome::Reject { reason, .. } => assert!(reason.contains("credentials"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }
}
