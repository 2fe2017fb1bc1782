//! `demo_logs` source (also `demo`): generates log lines, paced or as fast as possible,
//! for trying pipelines and for benchmarks, in Vector's `demo_logs` formats: `syslog`,
//! `bsd_syslog`, `json`, `apache_common`, `apache_error`, and `shuffle` over your own
//! `lines`.

use super::util::decoding::{
    frames_of, split_of, Codec, DecodingConfig, FrameDecoder, FramingConfig,
};
use crate::event::{EventMetadata, LogEvent, ObjectMap, Value, MAX_BATCH_EVENTS};
use crate::topology::component::{BuildError, SourceConfig, SourceContext, Task};
use bytes::Bytes;
use chrono::{SecondsFormat, Utc};
use serde::Deserialize;
use std::fmt::Write;

/// `[sources.ID] type = "demo"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoConfig {
    /// `syslog` (RFC 5424, default) or `bsd_syslog` (RFC 3164) lines in `message`.
    #[serde(default)]
    pub format: DemoFormat,
    /// Seconds between events; 0 generates as fast as the pipeline takes them. Default 1.
    #[serde(default = "default_interval")]
    pub interval: f64,
    /// Stop after this many events; unlimited when absent.
    pub count: Option<u64>,
    /// With `format = "shuffle"`: the lines to pick from.
    #[serde(default)]
    pub lines: Vec<String>,
    /// With `format = "shuffle"`: start each line with an increasing sequence number
    /// (Vector's meaning).
    #[serde(default)]
    pub sequence: bool,
    /// What each generated line is: `bytes` (default, the line as `message`) or `json`
    /// (with `format = "json"`, the line's fields become the event's).
    #[serde(default)]
    pub decoding: DecodingConfig,
    /// How a generated line splits into events (Vector's `framing`; a line holds one
    /// unless `shuffle` lines contain the delimiter).
    pub framing: Option<FramingConfig>,
}

fn default_interval() -> f64 {
    1.0
}

/// The kind of line generated.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DemoFormat {
    /// RFC 5424 with structured data.
    #[default]
    Syslog,
    /// RFC 3164.
    BsdSyslog,
    /// A JSON object per line.
    Json,
    /// Apache's common log format.
    ApacheCommon,
    /// Apache's error log format.
    ApacheError,
    /// Lines picked from `lines`.
    Shuffle,
}

const APPS: [&str; 4] = ["sshd", "nginx", "cron", "kernel"];
const STATUSES: [&str; 4] = ["200", "404", "500", "301"];

impl DemoConfig {
    fn problems(&self) -> Vec<crate::config::field::FieldIssue> {
        if self.format == DemoFormat::Shuffle && self.lines.is_empty() {
            vec![crate::config::field::FieldIssue::new(
                "lines",
                "is required with format = \"shuffle\": the lines to pick from",
            )]
        } else {
            Vec::new()
        }
    }
}

impl SourceConfig for DemoConfig {
    fn validate(&self) -> Vec<crate::config::field::FieldIssue> {
        let mut p = self.problems();
        if let Some(Err(e)) = self.framing.as_ref().map(FramingConfig::split) {
            p.push(e);
        }
        p
    }

    fn build(&self, cx: SourceContext) -> Result<Task, BuildError> {
        let cfg = self.clone();
        Ok(Box::pin(async move {
            let source_id = crate::event::intern(&cx.id);
            // As Vector's demo_logs: the host of generated lines is `localhost`.
            let host = Value::Bytes(Bytes::from_static(b"localhost"));
            let service = Value::Bytes(Bytes::from_static(b"sluice"));
            let codec = cfg.decoding.codec;
            let plain = codec == Codec::Text && cfg.framing.is_none();
            let split = split_of(&cfg.framing, codec);
            let mut decoder = FrameDecoder::new(codec, &cx.metrics);
            let schema = crate::event::schema::log_schema();
            let renames = schema.renames(&schema.host_key);
            let interval = crate::seconds(cfg.interval);
            let limit = cfg.count.unwrap_or(u64::MAX);
            let mut seq: u64 = 0;
            let mut batch = Vec::with_capacity(MAX_BATCH_EVENTS);
            while seq < limit && !cx.shutdown.is_cancelled() {
                let now = Utc::now();
                let per_batch = if interval.is_zero() {
                    MAX_BATCH_EVENTS as u64
                } else {
                    1
                };
                let mut bytes = 0;
                for _ in 0..per_batch.min(limit - seq) {
                    let mut line = String::with_capacity(160);
                    let app = APPS[(seq % 4) as usize];
                    let _ = match cfg.format {
                        DemoFormat::Syslog => write!(
                            line,
                            "<165>1 {} demo.example.com {app} {} ID{} [meta seq=\"{seq}\"] demo event number {seq}",
                            now.to_rfc3339_opts(SecondsFormat::Millis, true),
                            1000 + seq % 100,
                            seq % 50
                        ),
                        DemoFormat::BsdSyslog => write!(
                            line,
                            "<34>{} demo {app}[{}]: demo event number {seq}",
                            now.format("%b %e %H:%M:%S"),
                            1000 + seq % 100
                        ),
                        DemoFormat::Json => write!(
                            line,
                            "{{\"host\":\"10.0.{}.{}\",\"user-identifier\":\"user{}\",\"datetime\":\"{}\",\"method\":\"GET\",\"request\":\"/api/items/{seq}\",\"protocol\":\"HTTP/1.1\",\"status\":\"{}\",\"bytes\":{}}}",
                            seq % 256,
                            (seq / 256) % 256,
                            seq % 10,
                            now.format("%d/%b/%Y:%H:%M:%S %z"),
                            STATUSES[(seq % 4) as usize],
                            512 + seq % 4096
                        ),
                        DemoFormat::ApacheCommon => write!(
                            line,
                            "10.0.{}.{} - user{} [{}] \"GET /api/items/{seq} HTTP/1.1\" {} {}",
                            seq % 256,
                            (seq / 256) % 256,
                            seq % 10,
                            now.format("%d/%b/%Y:%H:%M:%S %z"),
                            STATUSES[(seq % 4) as usize],
                            512 + seq % 4096
                        ),
                        DemoFormat::ApacheError => write!(
                            line,
                            "[{}] [core:{}] [pid {}] [client 10.0.{}.{}:{}] demo event number {seq}",
                            now.format("%a %b %d %H:%M:%S%.6f %Y"),
                            ["error", "warn", "notice", "info"][(seq % 4) as usize],
                            1000 + seq % 100,
                            seq % 256,
                            (seq / 256) % 256,
                            40000 + seq % 20000
                        ),
                        DemoFormat::Shuffle => {
                            let n = cfg.lines.len().max(1) as u64;
                            let i = rand::random::<u64>() % n;
                            if cfg.sequence {
                                let _ = write!(line, "{seq} ");
                            }
                            line.push_str(cfg.lines.get(i as usize).map_or("", String::as_str));
                            Ok(())
                        }
                    };
                    bytes += line.len();
                    seq += 1;
                    if plain {
                        let mut fields = ObjectMap::new();
                        fields.insert("message".into(), Value::Bytes(Bytes::from(line)));
                        fields.insert("host".into(), host.clone());
                        fields.insert("service".into(), service.clone());
                        fields.insert("timestamp".into(), Value::Timestamp(now));
                        fields.insert("source_type".into(), Value::from("demo_logs"));
                        if renames {
                            schema.rename(&mut fields, &schema.host_key);
                        }
                        batch.push(
                            LogEvent::from_parts(fields, EventMetadata::new(source_id, now)).into(),
                        );
                        continue;
                    }
                    for frame in frames_of(&Bytes::from(line), split) {
                        decoder.decode(frame, |mut fields| {
                            // The standard fields where the decoded ones leave room.
                            for (k, v) in [(schema.host_key.as_str(), &host), ("service", &service)]
                            {
                                if !k.is_empty() {
                                    fields.entry(k.into()).or_insert_with(|| v.clone());
                                }
                            }
                            fields
                                .entry(schema.timestamp_key.as_str().into())
                                .or_insert(Value::Timestamp(now));
                            fields.insert(
                                schema.source_type_key.as_str().into(),
                                Value::from("demo_logs"),
                            );
                            if codec == Codec::Text && schema.message_key != "message" {
                                if let Some(m) = fields.remove("message") {
                                    fields.insert(schema.message_key.as_str().into(), m);
                                }
                            }
                            batch.push(
                                LogEvent::from_parts(fields, EventMetadata::new(source_id, now))
                                    .into(),
                            );
                        });
                    }
                }
                cx.metrics.received_bytes.increment(bytes as u64);
                if !super::send_batch(&mut batch, &cx.metrics, &cx.out).await {
                    return;
                }
                if !interval.is_zero() {
                    tokio::select! {
                        _ = tokio::time::sleep(interval) => {}
                        _ = cx.shutdown.cancelled() => {}
                    }
                }
            }
        }))
    }
}
