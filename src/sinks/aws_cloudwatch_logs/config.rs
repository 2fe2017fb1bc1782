//! Options of the `aws_cloudwatch_logs` sink, their defaults and checks, and how they
//! assemble the shared sink runner: the sink itself is this file,
//! [`super::request_builder`] and [`super::service`].

use super::healthcheck::healthcheck;
use super::request_builder::{
    name_problem, CloudwatchRequestBuilder, Names, EVENT_OVERHEAD, HEADER, MAX_REQUEST_BYTES,
    MAX_REQUEST_EVENTS, MAX_SPAN_MS,
};
use super::service::{CloudwatchService, GroupSettings};
use crate::aws::{sdk_config, AwsAuth, ClientOptions};
use crate::config::field::FieldIssue;
use crate::http::ClientTlsConfig;
use crate::sinks::util::batch::{BatchConfig, BatchLimits, Framing};
use crate::sinks::util::circuit::CircuitBreakerConfig;
use crate::sinks::util::encoding::{Codec, Compression, EncodingConfig};
use crate::sinks::util::retry::RequestConfig;
use crate::sinks::util::runner::{RunnerConfig, SinkRunner};
use crate::sinks::util::template::Template;
use crate::topology::component::{BuildError, SinkConfig, SinkContext, Task};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// `[sinks.ID] type = "aws_cloudwatch_logs"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudwatchLogsConfig {
    /// The log group: a template (`{{ field }}`, strftime).
    pub group_name: String,
    /// The log stream: a template, e.g. `{{ host }}`. Each (group, stream) is a
    /// partition with one request in flight, so its events arrive in order.
    pub stream_name: String,
    /// The AWS region. Default: `AWS_REGION`, the profile, or IMDS.
    pub region: Option<String>,
    /// Another endpoint (a VPC endpoint, a local emulator), e.g. `http://127.0.0.1:5000`.
    pub endpoint: Option<String>,
    /// Credentials; unset, the default AWS chain.
    #[serde(default)]
    pub auth: AwsAuth,
    /// Vector's older place for `auth.assume_role`: still honoured, with a warning.
    pub assume_role: Option<String>,
    /// Create the group when it is missing. Default true.
    #[serde(default = "yes")]
    pub create_missing_group: bool,
    /// Create the stream when it is missing. Default true.
    #[serde(default = "yes")]
    pub create_missing_stream: bool,
    /// Retention in days set on groups the sink creates (groups that exist keep
    /// theirs). Also how old an event may be before it is refused unsent.
    pub retention_days: Option<u32>,
    /// Vector's shape of `retention_days`: `{ enabled = true, days = 30 }`.
    pub retention: Option<Retention>,
    /// KMS key ARN for groups the sink creates.
    pub kms_key: Option<String>,
    /// Tags for groups the sink creates.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// `codec` `json` (default: every field) or `text` (the message only).
    #[serde(default)]
    pub encoding: EncodingConfig,
    /// Only `none`: PutLogEvents takes no compressed body.
    #[serde(default)]
    pub compression: Compression,
    /// Batch limits. Defaults and maxima: 10,000 events, 1,048,576 bytes (26 per event
    /// counted, as AWS does), 1 s.
    #[serde(default)]
    pub batch: BatchConfig,
    /// Timeouts, concurrency and retries, as for the `http` sink.
    #[serde(default)]
    pub request: RequestConfig,
    /// When to stop sending to a failing endpoint.
    #[serde(default)]
    pub circuit_breaker: CircuitBreakerConfig,
    /// Only `tls.ca_file`: a CA to trust besides the system's.
    #[serde(default)]
    pub tls: ClientTlsConfig,
}

/// Vector's `retention`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Whether to set it.
    #[serde(default)]
    pub enabled: bool,
    /// Days.
    #[serde(default)]
    pub days: u32,
}

fn yes() -> bool {
    true
}

/// The retention periods CloudWatch Logs accepts.
const RETENTION_DAYS: &[u32] = &[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

const DEFAULT_BATCH: BatchLimits = BatchLimits {
    max_events: MAX_REQUEST_EVENTS,
    max_bytes: MAX_REQUEST_BYTES,
    timeout: Duration::from_secs(1),
    // The payload's 12-byte header per event plus these make AWS's 26.
    per_event_overhead: EVENT_OVERHEAD - HEADER,
    max_order_span: Some(MAX_SPAN_MS),
};

/// Events sit back to back in a payload, each behind its header.
const RECORDS: Framing = Framing::fixed(b"", b"", b"");

impl CloudwatchLogsConfig {
    /// The retention asked for, in either shape.
    fn retention(&self) -> Option<u32> {
        self.retention_days.or(self
            .retention
            .as_ref()
            .filter(|r| r.enabled)
            .map(|r| r.days))
    }

    fn auth(&self) -> AwsAuth {
        let mut auth = self.auth.clone();
        if auth.assume_role.is_none() {
            auth.assume_role = self.assume_role.clone();
        }
        auth
    }

    fn names(&self) -> Result<Names, FieldIssue> {
        let group = Template::parse(&self.group_name)
            .map_err(|e| FieldIssue::new("group_name", e.to_string()))?;
        let stream = Template::parse(&self.stream_name)
            .map_err(|e| FieldIssue::new("stream_name", e.to_string()))?;
        if group.is_static() && stream.is_static() {
            return Ok(Names::Fixed(CloudwatchRequestBuilder::key(
                &self.group_name,
                &self.stream_name,
            )));
        }
        Ok(Names::Templated { group, stream })
    }

    /// Where requests go, for logs and the circuit breaker.
    fn destination(&self) -> String {
        match (&self.endpoint, &self.region) {
            (Some(e), _) => e.clone(),
            (None, Some(r)) => format!("logs.{r}.amazonaws.com"),
            (None, None) => "CloudWatch Logs".into(),
        }
    }
}

impl SinkConfig for CloudwatchLogsConfig {
    fn warnings(&self) -> Vec<FieldIssue> {
        let mut w = Vec::new();
        if self.assume_role.is_some() {
            w.push(FieldIssue::new(
                "assume_role",
                "is deprecated, as in Vector: write `auth.assume_role`; sluice still assumes it",
            ));
        }
        w
    }

    fn validate(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        for (key, text, group) in [
            ("group_name", &self.group_name, true),
            ("stream_name", &self.stream_name, false),
        ] {
            match Template::parse(text) {
                Ok(t) if t.is_static() => {
                    if let Some(p) = name_problem(key, text, group) {
                        issues.push(FieldIssue::new(key, p));
                    }
                }
                Ok(_) => {}
                Err(e) => issues.push(FieldIssue::new(key, e.to_string())),
            }
        }
        if let Some(days) = self.retention() {
            if !RETENTION_DAYS.contains(&days) {
                issues.push(FieldIssue::new(
                    if self.retention_days.is_some() { "retention_days" } else { "retention.days" },
                    format!("{days} is not a retention CloudWatch Logs offers; choose one of {RETENTION_DAYS:?}"),
                ));
            }
        }
        if self.retention_days.is_some() && self.retention.is_some() {
            issues.push(FieldIssue::new(
                "retention",
                "and retention_days say the same thing: keep one",
            ));
        }
        if let Some(e) = &self.endpoint {
            let ok = e.parse::<hyper::Uri>().ok().is_some_and(|u| {
                matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some()
            });
            if !ok {
                issues.push(FieldIssue::new(
                    "endpoint",
                    format!("`{e}` is not an http:// or https:// URL"),
                ));
            }
        }
        if self.region.as_deref().is_some_and(|r| r.trim().is_empty()) {
            issues.push(FieldIssue::new("region", "must not be empty"));
        }
        if !matches!(
            self.encoding.codec,
            Codec::Json | Codec::Text | Codec::RawMessage
        ) {
            issues.push(FieldIssue::new(
                "encoding.codec",
                "must be `json` or `text`: each event is one CloudWatch log event",
            ));
        }
        if self.compression != Compression::None {
            issues.push(FieldIssue::new(
                "compression",
                "must be `none`: PutLogEvents takes no compressed body",
            ));
        }
        if self
            .batch
            .max_events
            .is_some_and(|n| n > MAX_REQUEST_EVENTS)
        {
            issues.push(FieldIssue::new(
                "batch.max_events",
                format!("must be at most {MAX_REQUEST_EVENTS}, the most PutLogEvents takes"),
            ));
        }
        if self.batch.max_bytes.is_some_and(|n| n > MAX_REQUEST_BYTES) {
            issues.push(FieldIssue::new(
                "batch.max_bytes",
                format!("must be at most {MAX_REQUEST_BYTES}, the most PutLogEvents takes (26 bytes counted per event)"),
            ));
        }
        if self.auth.assume_role.is_some() && self.assume_role.is_some() {
            issues.push(FieldIssue::new(
                "assume_role",
                "and auth.assume_role are both set: keep auth.assume_role",
            ));
        }
        let t = &self.tls;
        for (key, set) in [
            ("tls.crt_file", t.crt_file.is_some()),
            ("tls.key_file", t.key_file.is_some()),
            ("tls.key_pass", t.key_pass.is_some()),
            (
                "tls.verify_certificate",
                t.verify_certificate == Some(false),
            ),
            ("tls.verify_hostname", t.verify_hostname == Some(false)),
        ] {
            if set {
                issues.push(FieldIssue::new(
                    key,
                    "is not supported by the AWS client: it authenticates with AWS credentials and always verifies the endpoint; only tls.ca_file (a CA to trust) applies",
                ));
            }
        }
        issues.extend(self.auth.issues());
        issues.extend(self.encoding.issues("encoding"));
        issues.extend(self.request.issues("request"));
        issues.extend(self.batch.issues("batch"));
        issues
    }

    fn build(&self, cx: SinkContext) -> Result<Task, BuildError> {
        let names = self.names()?;
        let options = ClientOptions {
            auth: self.auth(),
            region: self.region.clone(),
            endpoint: self.endpoint.clone(),
            proxy: cx.proxy.clone(),
            timeout: self.request.timeout(),
            ca_file: self.tls.ca_file.clone(),
        };
        let load = move || {
            let options = options.clone();
            async move { sdk_config(&options).await }
        };
        if cx.healthcheck.enabled {
            let probe = load();
            let group = Template::parse(&self.group_name)
                .ok()
                .filter(Template::is_static)
                .map(|_| self.group_name.clone());
            let create = self.create_missing_group;
            cx.spawn_healthcheck(async move {
                let config = probe.await?;
                match group {
                    Some(g) => healthcheck(&config, &g, create).await,
                    // A templated group has no one name to look for (as in Vector).
                    None => Ok(()),
                }
            });
        }
        let settings = GroupSettings {
            create_group: self.create_missing_group,
            create_stream: self.create_missing_stream,
            retention_days: self.retention().map(|d| d as i32),
            kms_key: self.kms_key.clone(),
            tags: self
                .tags
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<HashMap<_, _>>(),
        };
        let builder = CloudwatchRequestBuilder::new(
            names,
            self.encoding.encoder(),
            self.retention(),
            self.destination(),
            &cx.metrics,
        );
        let runner_config = RunnerConfig {
            batch: self.batch.limits(DEFAULT_BATCH),
            framing: RECORDS,
            compression: Compression::None,
            request: self.request.clone(),
            circuit_breaker: self.circuit_breaker.clone(),
        };
        Ok(Box::pin(async move {
            // Loading credentials and the region may wait on IMDS or STS; until it
            // works, the sink takes nothing, so its sources are pushed back, not dropped.
            // Counted in `error_type="client_setup"`, logged at most every 10 s.
            let setup = cx.metrics.error_reporter("client_setup");
            let config = loop {
                match load().await {
                    Ok(c) => break c,
                    Err(e) => {
                        setup.report(1, || {
                            format!("Cannot set up the CloudWatch Logs client; trying again every 10 s: {e}")
                        });
                        tokio::time::sleep(Duration::from_secs(10)).await;
                    }
                }
            };
            let client = aws_sdk_cloudwatchlogs::Client::new(&config);
            let service = CloudwatchService::new(client, settings, &cx.metrics);
            SinkRunner::new(runner_config, builder, service, &cx)
                .run(cx)
                .await;
        }))
    }
}
