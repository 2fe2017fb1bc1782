//! One write and what its answer means: 2xx delivered; a partial write (1.x answers 400,
//! 2.x answers 422, both with `partial write: ... dropped=N`) is the runner's partial
//! success, never retried; 401 and 403 are configuration errors, named as such; the rest
//! as the `http` sink classifies it (408, 429 and 5xx retried honouring `Retry-After`,
//! other 4xx refused).

use super::line_protocol::read_points;
use crate::sinks::http::classify;
use crate::sinks::util::driver::{Outcome, Refused, Service};
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
    /// Each point is one event, in order (logs): the points a partial write refused
    /// are then the events to write to the dead letters.
    pub point_per_event: bool,
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
            Ok(resp) => answer(request, resp.status(), resp.headers(), resp.body()),
            Err(e) => Outcome::Retry {
                reason: format!("POST {}: {e}", redact_uri(&request.uri)),
                retry_after: None,
                unwell: true,
            },
        }
    }
}

/// What InfluxDB's answer to `request` means.
fn answer(request: &WriteRequest, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Outcome {
    let (uri, points) = (&request.uri, request.points);
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
                refused: type_conflicts(request, &text, status.as_u16()),
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

/// The points a "field type conflict" refused, found as InfluxDB found them: of the
/// measurement it names, those that carry the field it names with the type it names.
/// InfluxDB names only the first conflict of a write; points refused for another
/// reason or another field are counted, not named.
fn type_conflicts(request: &WriteRequest, answer: &str, status: u16) -> Vec<Refused> {
    if !request.point_per_event {
        return Vec::new();
    }
    // 1.x answers {"error": ...}, 2.x {"message": ...}: the quotes are escaped in JSON.
    let message = serde_json::from_str::<serde_json::Value>(answer)
        .ok()
        .and_then(|v| {
            v.get("error")
                .or_else(|| v.get("message"))
                .and_then(|m| m.as_str().map(str::to_string))
        })
        .unwrap_or_else(|| answer.to_string());
    let Some((field, measurement, sent)) = conflict(&message) else {
        return Vec::new();
    };
    let body = if request.body.starts_with(&[0x1f, 0x8b]) {
        let mut plain = Vec::new();
        let mut gz = flate2::read::GzDecoder::new(&request.body[..]);
        if std::io::Read::read_to_end(&mut gz, &mut plain).is_err() {
            return Vec::new();
        }
        Bytes::from(plain)
    } else {
        request.body.clone()
    };
    let points = read_points(&body);
    if points.len() != request.points {
        return Vec::new();
    }
    let reason = format!(
        "field type conflict: field \"{field}\" of measurement \"{measurement}\" was sent as {sent}; InfluxDB holds another type"
    );
    points
        .iter()
        .enumerate()
        .filter(|(_, p)| {
            p.measurement == measurement.as_bytes()
                && p.fields
                    .iter()
                    .any(|(k, t)| k == field.as_bytes() && *t == sent)
        })
        .map(|(i, _)| Refused {
            events: i..i + 1,
            reason: reason.clone(),
            status: Some(status),
        })
        .collect()
}

/// `... input field "F" on measurement "M" is type T, ...`: (F, M, T).
fn conflict(message: &str) -> Option<(&str, &str, &str)> {
    let rest = message.split_once("field type conflict: input field \"")?.1;
    let (field, rest) = rest.split_once("\" on measurement \"")?;
    let (measurement, rest) = rest.split_once("\" is type ")?;
    let sent = rest.split(|c: char| !c.is_ascii_alphanumeric()).next()?;
    Some((field, measurement, sent))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(status: u16, body: &str, points: usize) -> Outcome {
        let lines: String = (0..points).map(|i| format!("logs n={i}i\n")).collect();
        answer_to(status, body, lines.as_bytes())
    }

    fn answer_to(status: u16, answer_body: &str, sent: &[u8]) -> Outcome {
        let request = WriteRequest {
            uri: "http://h/write?db=x".parse().unwrap(),
            body: Bytes::copy_from_slice(sent),
            points: read_points(sent).len(),
            point_per_event: true,
        };
        answer(
            &request,
            StatusCode::from_u16(status).unwrap(),
            &HeaderMap::new(),
            answer_body.as_bytes(),
        )
    }

    #[test]
    fn a_type_conflict_names_the_points_it_refused() {
        let v1 = r#"{"error":"partial write: field type conflict: input field \"status\" on measurement \"logs\" is type string, already exists as type integer dropped=2"}"#;
        let sent = b"logs,host=a status=1i\nlogs,host=b status=\"oops\"\nother status=\"x\"\nlogs,host=d status=\"no\",n=1\n";
        match answer_to(400, v1, sent) {
            Outcome::Partial {
                rejected, refused, ..
            } => {
                assert_eq!(rejected, 2);
                let places: Vec<_> = refused.iter().map(|r| r.events.clone()).collect();
                assert_eq!(places, [1..2, 3..4]);
                assert_eq!(refused[0].status, Some(400));
                assert!(
                    refused[0].reason.contains("\"status\""),
                    "{}",
                    refused[0].reason
                );
            }
            other => panic!("{other:?}"),
        }
        // Gzipped bodies are read back too.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, sent).unwrap();
        let zipped = gz.finish().unwrap();
        let request = WriteRequest {
            uri: "http://h/write?db=x".parse().unwrap(),
            body: Bytes::from(zipped),
            points: 4,
            point_per_event: true,
        };
        assert_eq!(type_conflicts(&request, v1, 400).len(), 2);
        // Retention drops name no point.
        let v2 = r#"{"code":"unprocessable entity","message":"partial write: points beyond retention policy dropped=1"}"#;
        assert!(matches!(
            answer_to(422, v2, sent),
            Outcome::Partial { refused, .. } if refused.is_empty()
        ));
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
