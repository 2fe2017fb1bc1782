//! One PutLogEvents call and what its answer means. No DescribeLogStreams and no
//! sequence tokens (AWS ignores them since 2023): the events go straight out, and only
//! when CloudWatch answers ResourceNotFound is the stream (and, if that is missing too,
//! the group, with its retention, KMS key and tags) created and the call made again.
//! A group is created once however many streams find it missing at the same time.
//!
//! Errors are classified by the code AWS gives (the SDK reports throttling only as an
//! unhandled error with a code): throttling, unavailability, 5xx, timeouts, connection
//! failures, expired or refused credentials and missing resources the sink may not
//! create are retried by the runner's policy; validation errors are refused for good.

use super::request_builder::{decode, RejectReason, RejectedCounters};
use crate::internal_events::{names, ComponentMetrics};
use crate::sinks::util::driver::{Outcome, Refused, Service};
use crate::sinks::util::retry::parse_retry_after;
use aws_sdk_cloudwatchlogs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cloudwatchlogs::types::{InputLogEvent, RejectedLogEventsInfo};
use aws_sdk_cloudwatchlogs::Client;
use bytes::Bytes;
use metrics::Counter;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One PutLogEvents call, ready to send as often as needed.
pub struct PutRequest {
    /// The log group.
    pub group: String,
    /// The log stream.
    pub stream: String,
    /// The events, as the request builder wrote them.
    pub body: Bytes,
    /// How many.
    pub events: usize,
}

/// What the sink does with groups it creates.
#[derive(Clone, Debug, Default)]
pub struct GroupSettings {
    /// Create a missing group.
    pub create_group: bool,
    /// Create a missing stream.
    pub create_stream: bool,
    /// Retention set on a group the sink creates.
    pub retention_days: Option<i32>,
    /// KMS key of a group the sink creates.
    pub kms_key: Option<String>,
    /// Tags of a group the sink creates.
    pub tags: HashMap<String, String>,
}

/// The statuses `sluice_cloudwatch_requests_total` counts, one per class of answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Every event taken.
    Ok,
    /// Taken, with some events refused (`rejectedLogEventsInfo`).
    Partial,
    /// ThrottlingException and kin: retried, without opening the circuit.
    Throttled,
    /// ServiceUnavailable, internal errors, other 5xx: retried.
    Unavailable,
    /// No answer in `request.timeout_secs`: retried.
    Timeout,
    /// No connection, or no readable answer: retried.
    Connection,
    /// ResourceNotFound: the stream or group is created, or (if the sink may not) retried.
    NotFound,
    /// Credentials refused or expired: retried, so fixing them loses nothing.
    Auth,
    /// The request itself was refused (InvalidParameter and other validation errors).
    Invalid,
}

impl Status {
    const ALL: [Status; 9] = [
        Status::Ok,
        Status::Partial,
        Status::Throttled,
        Status::Unavailable,
        Status::Timeout,
        Status::Connection,
        Status::NotFound,
        Status::Auth,
        Status::Invalid,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Partial => "partial",
            Status::Throttled => "throttled",
            Status::Unavailable => "unavailable",
            Status::Timeout => "timeout",
            Status::Connection => "connection_error",
            Status::NotFound => "not_found",
            Status::Auth => "auth_error",
            Status::Invalid => "invalid",
        }
    }
}

/// What an error means, from its code, HTTP status and kind.
#[derive(Debug, PartialEq, Eq)]
pub struct Class {
    /// How it is counted.
    pub status: Status,
    /// Whether to send again.
    pub retry: bool,
    /// Whether it says the service is unwell (moves the circuit breaker).
    pub unwell: bool,
}

/// Classifies an AWS error by its `code` (from `x-amzn-ErrorType` or the body) and HTTP
/// `status`; `None` for both means no answer was read.
pub fn classify_code(code: Option<&str>, status: Option<u16>) -> Class {
    let class = |status, retry, unwell| Class {
        status,
        retry,
        unwell,
    };
    match code.unwrap_or("") {
        "ResourceNotFoundException" => class(Status::NotFound, true, false),
        "ThrottlingException"
        | "Throttling"
        | "ThrottledException"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        | "LimitExceededException"
        | "RequestThrottled"
        | "RequestThrottledException"
        | "SlowDown" => class(Status::Throttled, true, false),
        "ServiceUnavailableException"
        | "ServiceUnavailable"
        | "InternalFailure"
        | "InternalServerError"
        | "InternalError" => class(Status::Unavailable, true, true),
        "RequestTimeout"
        | "RequestTimeoutException"
        | "RequestExpired"
        | "PriorRequestNotComplete"
        | "InvalidSequenceTokenException"
        | "OperationAbortedException" => class(Status::Unavailable, true, false),
        "ExpiredTokenException"
        | "ExpiredToken"
        | "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "AccessDeniedException"
        | "AccessDenied"
        | "InvalidSignatureException"
        | "SignatureDoesNotMatch"
        | "IncompleteSignature"
        | "MissingAuthenticationToken"
        | "UnauthorizedOperation" => class(Status::Auth, true, true),
        _ => match status {
            None => class(Status::Connection, true, true),
            Some(429) => class(Status::Throttled, true, false),
            Some(s) if s >= 500 => class(Status::Unavailable, true, true),
            Some(_) => class(Status::Invalid, false, false),
        },
    }
}

/// An SDK error as an answer: its class, why (for the log, never a credential), and the
/// server's `Retry-After` if it sent one.
fn describe<E: ProvideErrorMetadata + std::error::Error + 'static>(
    e: &SdkError<E, aws_sdk_cloudwatchlogs::config::http::HttpResponse>,
) -> (Class, String, Option<Duration>) {
    match e {
        SdkError::ServiceError(se) => {
            let raw = se.raw();
            let status = raw.status().as_u16();
            let code = se.err().code();
            let retry_after = raw.headers().get("retry-after").and_then(parse_retry_after);
            let message = se.err().message().unwrap_or("");
            (
                classify_code(code, Some(status)),
                format!("{} ({status}): {message}", code.unwrap_or("error")),
                retry_after,
            )
        }
        SdkError::TimeoutError(_) => (
            Class {
                status: Status::Timeout,
                retry: true,
                unwell: true,
            },
            "no answer within request.timeout_secs".into(),
            None,
        ),
        SdkError::ResponseError(r) => {
            let status = r.raw().status().as_u16();
            (
                classify_code(None, Some(status)),
                format!("unreadable answer ({status})"),
                None,
            )
        }
        SdkError::ConstructionFailure(_) => (
            Class {
                status: Status::Invalid,
                retry: false,
                unwell: false,
            },
            format!("the request could not be built: {}", error_chain(e)),
            None,
        ),
        _ => (
            classify_code(None, None),
            format!("no answer: {}", error_chain(e)),
            None,
        ),
    }
}

/// An error and its sources on one line (the SDK's top-level message is often only
/// "dispatch failure").
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

/// What one PutLogEvents attempt came to.
enum Put {
    Done(Option<RejectedLogEventsInfo>),
    Missing(String),
    Failed(Outcome),
}

/// Sends PutLogEvents calls of one `aws_cloudwatch_logs` sink.
pub struct CloudwatchService {
    client: Client,
    settings: GroupSettings,
    /// One lock per group being created, with whether it was: the first stream to find
    /// its group missing creates it, the others wait and use it. Entries go when nobody
    /// holds them, so names that come and go do not grow this.
    creating: Mutex<HashMap<String, Arc<tokio::sync::Mutex<bool>>>>,
    requests: Vec<(Status, Counter)>,
    rejected: RejectedCounters,
}

impl CloudwatchService {
    /// A service sending through `client`.
    pub fn new(client: Client, settings: GroupSettings, metrics: &ComponentMetrics) -> Self {
        Self {
            client,
            settings,
            creating: Mutex::new(HashMap::new()),
            requests: Status::ALL
                .iter()
                .map(|s| {
                    (
                        *s,
                        metrics.counter_with(
                            names::CLOUDWATCH_REQUESTS,
                            "status",
                            s.as_str().into(),
                        ),
                    )
                })
                .collect(),
            rejected: RejectedCounters::new(metrics),
        }
    }

    fn count(&self, status: Status) {
        if let Some((_, c)) = self.requests.iter().find(|(s, _)| *s == status) {
            c.increment(1);
        }
    }

    /// How many groups are being created now (for the test that the map empties).
    pub fn groups_in_creation(&self) -> usize {
        self.creating.lock().map_or(0, |m| m.len())
    }

    async fn put(&self, req: &PutRequest, events: Vec<InputLogEvent>) -> Put {
        let sent = self
            .client
            .put_log_events()
            .log_group_name(&req.group)
            .log_stream_name(&req.stream)
            .set_log_events(Some(events))
            .send()
            .await;
        match sent {
            Ok(out) => {
                let info = out.rejected_log_events_info().cloned();
                self.count(if info.is_some() {
                    Status::Partial
                } else {
                    Status::Ok
                });
                Put::Done(info)
            }
            // A retry of a batch CloudWatch already took (sequence tokens of old).
            Err(e) if is_code(&e, "DataAlreadyAcceptedException") => {
                self.count(Status::Ok);
                Put::Done(None)
            }
            Err(e) => {
                let (class, why) = self.failed(&e, "PutLogEvents", req);
                if class.status == Status::NotFound {
                    return Put::Missing(why);
                }
                Put::Failed(outcome(class, why, retry_after(&e)))
            }
        }
    }

    /// Counts a failed call and says what it was.
    fn failed<E: ProvideErrorMetadata + std::error::Error + 'static>(
        &self,
        e: &SdkError<E, aws_sdk_cloudwatchlogs::config::http::HttpResponse>,
        call: &str,
        req: &PutRequest,
    ) -> (Class, String) {
        let (class, why, _) = describe(e);
        self.count(class.status);
        (
            class,
            format!("{call} to {} / {}: {why}", req.group, req.stream),
        )
    }

    /// Creates the stream, and the group first if it is missing too. `Err` is what the
    /// attempt comes to when that fails.
    async fn create(&self, req: &PutRequest, missing: String) -> Result<(), Outcome> {
        let s = &self.settings;
        if !s.create_stream {
            return Err(not_created(format!(
                "{missing}; create_missing_stream is false, so it is retried until the stream exists"
            )));
        }
        match self.create_stream(req).await {
            Ok(()) => return Ok(()),
            Err(Put::Missing(_)) => {}
            Err(Put::Failed(o)) => return Err(o),
            Err(Put::Done(_)) => return Ok(()),
        }
        if !s.create_group {
            return Err(not_created(format!(
                "log group {} does not exist; create_missing_group is false, so it is retried until the group exists",
                req.group
            )));
        }
        let lock = {
            let mut m = self.creating.lock().unwrap_or_else(|p| p.into_inner());
            m.entry(req.group.clone()).or_default().clone()
        };
        let created = {
            let mut done = lock.lock().await;
            let r = if *done {
                Ok(())
            } else {
                self.create_group(req).await
            };
            if r.is_ok() {
                *done = true;
            }
            r
        };
        {
            let mut m = self.creating.lock().unwrap_or_else(|p| p.into_inner());
            // Held by the map and this call only: nobody else waits on it.
            if Arc::strong_count(&lock) == 2 {
                m.remove(&req.group);
            }
        }
        created?;
        match self.create_stream(req).await {
            Ok(()) | Err(Put::Done(_)) => Ok(()),
            Err(Put::Missing(why)) => Err(not_created(why)),
            Err(Put::Failed(o)) => Err(o),
        }
    }

    async fn create_stream(&self, req: &PutRequest) -> Result<(), Put> {
        let r = self
            .client
            .create_log_stream()
            .log_group_name(&req.group)
            .log_stream_name(&req.stream)
            .send()
            .await;
        match r {
            Ok(_) => {
                tracing::info!(group = %req.group, stream = %req.stream, "Created log stream.");
                Ok(())
            }
            Err(e) if is_code(&e, "ResourceAlreadyExistsException") => Ok(()),
            Err(e) => {
                let (class, why) = self.failed(&e, "CreateLogStream", req);
                Err(if class.status == Status::NotFound {
                    Put::Missing(why)
                } else {
                    Put::Failed(outcome(class, why, retry_after(&e)))
                })
            }
        }
    }

    async fn create_group(&self, req: &PutRequest) -> Result<(), Outcome> {
        let s = &self.settings;
        let r = self
            .client
            .create_log_group()
            .log_group_name(&req.group)
            .set_kms_key_id(s.kms_key.clone())
            .set_tags((!s.tags.is_empty()).then(|| s.tags.clone()))
            .send()
            .await;
        match r {
            Ok(_) => {
                tracing::info!(group = %req.group, "Created log group.");
            }
            // Someone else made it: its retention is theirs.
            Err(e) if is_code(&e, "ResourceAlreadyExistsException") => return Ok(()),
            Err(e) => {
                let (class, why) = self.failed(&e, "CreateLogGroup", req);
                return Err(outcome(class, why, retry_after(&e)));
            }
        }
        if let Some(days) = s.retention_days {
            let r = self
                .client
                .put_retention_policy()
                .log_group_name(&req.group)
                .retention_in_days(days)
                .send()
                .await;
            if let Err(e) = r {
                // The events can still go; a group kept longer than asked loses nothing.
                let (_, why, _) = describe(&e);
                tracing::warn!(group = %req.group, retention_days = days, error = %why, "Could not set the retention of the log group the sink created; set it by hand.");
            }
        }
        Ok(())
    }

    /// Counts what `rejectedLogEventsInfo` refused and says how many, why, and which
    /// (the request's events are in the order sent, so the indexes are theirs).
    fn rejected(
        &self,
        info: &RejectedLogEventsInfo,
        events: usize,
    ) -> (usize, String, Vec<Refused>) {
        let n = events as i64;
        let too_new = info
            .too_new_log_event_start_index()
            .map_or(0, |i| (n - i64::from(i)).clamp(0, n));
        // Both end indexes are exclusive: the events before them were refused.
        let too_old = info
            .too_old_log_event_end_index()
            .map_or(0, |i| i64::from(i).clamp(0, n));
        let expired = info
            .expired_log_event_end_index()
            .map_or(0, |i| i64::from(i).clamp(0, n));
        let mut parts = Vec::new();
        let refused = refused(expired, too_old, too_new, n);
        if too_new > 0 {
            self.rejected.add(RejectReason::TooNew, too_new as u64);
            parts.push(format!("{too_new} too far in the future"));
        }
        let old = too_old.max(expired);
        if old > 0 {
            let reason = if expired >= too_old {
                RejectReason::Expired
            } else {
                RejectReason::TooOld
            };
            self.rejected.add(reason, old as u64);
            parts.push(format!(
                "{old} {}",
                if reason == RejectReason::Expired {
                    "older than the group's retention"
                } else {
                    "too old"
                }
            ));
        }
        (((too_new + old).min(n)) as usize, parts.join(", "), refused)
    }
}

/// Which events of `n` the marks of `rejectedLogEventsInfo` (counted as events from
/// the start or the end) refused, each once: the expired first, then the too old, then
/// the too new.
fn refused(expired: i64, too_old: i64, too_new: i64, n: i64) -> Vec<Refused> {
    let mut refused = Vec::new();
    let mut refuse = |from: i64, to: i64, why: &str| {
        if to > from {
            refused.push(Refused {
                events: from as usize..to as usize,
                reason: format!("CloudWatch Logs refused the event: {why}"),
                status: None,
            });
        }
    };
    refuse(0, expired, "older than the log group's retention");
    refuse(expired, too_old, "too old");
    refuse(
        (n - too_new).max(too_old.max(expired)),
        n,
        "too far in the future",
    );
    refused
}

fn is_code<E: ProvideErrorMetadata>(
    e: &SdkError<E, aws_sdk_cloudwatchlogs::config::http::HttpResponse>,
    code: &str,
) -> bool {
    e.as_service_error().and_then(|s| s.code()) == Some(code)
}

fn retry_after<E: ProvideErrorMetadata + std::error::Error + 'static>(
    e: &SdkError<E, aws_sdk_cloudwatchlogs::config::http::HttpResponse>,
) -> Option<Duration> {
    describe(e).2
}

fn outcome(class: Class, reason: String, retry_after: Option<Duration>) -> Outcome {
    if class.retry {
        Outcome::Retry {
            reason,
            retry_after,
            unwell: class.unwell,
        }
    } else {
        Outcome::Reject {
            reason,
            status: None,
        }
    }
}

/// A resource the sink may not (or could not) create: retried, so creating it by hand
/// loses nothing.
fn not_created(reason: String) -> Outcome {
    Outcome::Retry {
        reason,
        retry_after: None,
        unwell: false,
    }
}

/// The SDK's events of a payload: one `String` per event, which the SDK's types need;
/// made for each attempt, so a payload waiting for a retry stays one buffer.
pub fn input_events(body: &[u8]) -> Option<Vec<InputLogEvent>> {
    decode(body)?
        .into_iter()
        .map(|(ts, m)| {
            InputLogEvent::builder()
                .timestamp(ts)
                .message(m)
                .build()
                .ok()
        })
        .collect()
}

impl Service for CloudwatchService {
    type Request = PutRequest;

    async fn call(&self, req: &PutRequest) -> Outcome {
        let Some(events) = input_events(&req.body) else {
            return Outcome::Reject {
                reason: "internal error: a payload could not be read back".into(),
                status: None,
            };
        };
        let mut answer = self.put(req, events).await;
        if let Put::Missing(why) = answer {
            if let Err(o) = self.create(req, why).await {
                return o;
            }
            let Some(events) = input_events(&req.body) else {
                return Outcome::Reject {
                    reason: "internal error: a payload could not be read back".into(),
                    status: None,
                };
            };
            answer = self.put(req, events).await;
        }
        match answer {
            Put::Done(None) => Outcome::Delivered,
            Put::Done(Some(info)) => {
                let (rejected, why, refused) = self.rejected(&info, req.events);
                if rejected == 0 {
                    Outcome::Delivered
                } else {
                    Outcome::Partial {
                        rejected,
                        reason: format!("{} / {}: {why}", req.group, req.stream),
                        refused,
                    }
                }
            }
            Put::Missing(why) => not_created(why),
            Put::Failed(o) => o,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_events_are_named_by_place_each_once() {
        let places = |r: Vec<Refused>| r.into_iter().map(|r| r.events).collect::<Vec<_>>();
        // 10 events: 2 expired, 3 too old (the expired among them), the last 4 too new.
        assert_eq!(places(refused(2, 3, 4, 10)), [0..2, 2..3, 6..10]);
        assert_eq!(
            places(refused(0, 0, 0, 10)),
            Vec::<std::ops::Range<usize>>::new()
        );
        // Marks that overlap never name an event twice.
        assert_eq!(places(refused(0, 8, 5, 10)), [0..8, 8..10]);
        let r = refused(0, 1, 0, 3);
        assert!(r[0].reason.contains("too old"), "{}", r[0].reason);
    }

    #[test]
    fn errors_are_classified_by_code_then_status() {
        let c = |code: Option<&str>, status: Option<u16>| classify_code(code, status);
        // The SDK's unhandled throttling error: a 400 with a code.
        assert_eq!(
            c(Some("ThrottlingException"), Some(400)),
            Class {
                status: Status::Throttled,
                retry: true,
                unwell: false
            }
        );
        assert_eq!(
            c(Some("ServiceUnavailableException"), Some(503)).status,
            Status::Unavailable
        );
        assert!(c(None, Some(503)).retry && c(None, Some(503)).unwell);
        assert!(c(None, Some(500)).retry);
        assert_eq!(c(None, Some(429)).status, Status::Throttled);
        assert_eq!(c(None, None).status, Status::Connection);
        assert_eq!(
            c(Some("ResourceNotFoundException"), Some(400)).status,
            Status::NotFound
        );
        assert_eq!(
            c(Some("ExpiredTokenException"), Some(400)).status,
            Status::Auth
        );
        assert!(c(Some("AccessDeniedException"), Some(400)).retry);
        for code in [
            "InvalidParameterException",
            "SerializationException",
            "ValidationException",
        ] {
            let k = c(Some(code), Some(400));
            assert_eq!(k.status, Status::Invalid, "{code}");
            assert!(!k.retry, "{code}");
        }
        assert!(!c(None, Some(413)).retry);
    }
}
