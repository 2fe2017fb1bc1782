//! `stdin` source: one event per line of standard input. When input ends the source
//! finishes, and once every source has finished sluice drains and exits, so
//! `producer | sluice run --config pipe.toml` works as a filter.

use super::util::decoding::{DecodingConfig, FrameDecoder, FramingConfig, FramingMethod};
use super::util::framing::{Framer, Mode};
use crate::config::field::FieldIssue;
use crate::event::{EventMetadata, LogEvent, ObjectMap, Value, MAX_BATCH_EVENTS};
use crate::internal_events::failures::{ReadFailed, Truncated};
use crate::topology::component::{BuildError, SourceConfig, SourceContext, Task};
use bytes::{Bytes, BytesMut};
use chrono::Utc;
use serde::Deserialize;
use tokio::io::AsyncReadExt;

/// `[sources.ID] type = "stdin"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdinConfig {
    /// Longest line kept whole; longer lines are truncated and counted. Default 102400.
    #[serde(default = "default_max_length")]
    pub max_length: usize,
    /// What each line is: `bytes` (default, the line as `message`), `json`, `ndjson`.
    #[serde(default)]
    pub decoding: DecodingConfig,
    /// How stdin splits into frames: `newline_delimited` (default) or
    /// `octet_counting` (RFC 6587 `LEN SP MSG`).
    pub framing: Option<FramingConfig>,
    /// Field for this machine's name. Default `log_schema.host_key` (`host`); `""`
    /// leaves it out.
    pub host_key: Option<String>,
}

fn default_max_length() -> usize {
    102_400
}

impl StdinConfig {
    /// The framer mode and frame limit `framing` asks for.
    fn mode(&self) -> Result<(Mode, usize), FieldIssue> {
        let limit = |d: &Option<super::util::decoding::Delimited>| {
            d.as_ref()
                .and_then(|d| d.max_length)
                .unwrap_or(self.max_length)
                .max(1)
        };
        match &self.framing {
            None => Ok((Mode::Newline, self.max_length.max(1))),
            Some(f) => match f.method {
                FramingMethod::NewlineDelimited => Ok((Mode::Newline, limit(&f.newline_delimited))),
                FramingMethod::OctetCounting => Ok((Mode::OctetCounting, limit(&f.octet_counting))),
                _ => Err(FieldIssue::new(
                    "framing.method",
                    "stdin is read as lines (`newline_delimited`) or RFC 6587 frames (`octet_counting`)",
                )),
            },
        }
    }
}

impl SourceConfig for StdinConfig {
    fn validate(&self) -> Vec<FieldIssue> {
        self.mode().err().into_iter().collect()
    }

    fn build(&self, cx: SourceContext) -> Result<Task, BuildError> {
        let (mode, max_length) = self.mode().map_err(|e| BuildError::Other(e.message))?;
        let codec = self.decoding.codec;
        let schema = crate::event::schema::log_schema();
        let (host_key, renames) = schema.host_key_for(&self.host_key);
        Ok(Box::pin(async move {
            let source_id = crate::event::intern(&cx.id);
            let host = Value::Bytes(Bytes::from(crate::hostname()));
            let truncated = cx.metrics.reporter::<Truncated>();
            let io = cx.metrics.reporter::<ReadFailed>();
            let mut framer = Framer::with_mode(mode, max_length);
            let mut decoder = FrameDecoder::new(codec, &cx.metrics);
            let mut stdin = tokio::io::stdin();
            let mut buf = BytesMut::with_capacity(64 * 1024);
            let mut batch = Vec::new();
            loop {
                buf.reserve(64 * 1024);
                let n = tokio::select! {
                    r = stdin.read_buf(&mut buf) => match r {
                        Ok(n) => n,
                        Err(e) => { io.emit(|| format!("Reading stdin failed: {e}")); 0 }
                    },
                    _ = cx.shutdown.cancelled() => 0,
                };
                cx.metrics.received_bytes.increment(n as u64);
                let now = Utc::now();
                loop {
                    let step = if n == 0 {
                        framer.decode_eof(&mut buf)
                    } else {
                        framer.decode(&mut buf)
                    };
                    let Some(d) = step else { break };
                    let Some(mut line) = d.frame else { continue };
                    if d.truncated {
                        truncated.emit(|| {
                            format!(
                                "Line longer than max_length ({max_length} bytes) was truncated."
                            )
                        });
                    }
                    if line.last() == Some(&b'\r') {
                        line.truncate(line.len() - 1);
                    }
                    if decoder.is_text() {
                        let mut fields = ObjectMap::new();
                        fields.insert("message".into(), Value::Bytes(line));
                        fields.insert("host".into(), host.clone());
                        fields.insert("timestamp".into(), Value::Timestamp(now));
                        fields.insert("source_type".into(), Value::from("stdin"));
                        if renames {
                            schema.rename(&mut fields, &host_key);
                        }
                        batch.push(
                            LogEvent::from_parts(fields, EventMetadata::new(source_id, now)).into(),
                        );
                    } else {
                        // The decoded fields are the event's own: the standard ones go
                        // in under the schema's names, the host and time only if absent.
                        decoder.decode(line, |mut fields| {
                            if !host_key.is_empty() {
                                fields
                                    .entry(host_key.as_str().into())
                                    .or_insert_with(|| host.clone());
                            }
                            fields
                                .entry(schema.timestamp_key.as_str().into())
                                .or_insert(Value::Timestamp(now));
                            fields.insert(
                                schema.source_type_key.as_str().into(),
                                Value::from("stdin"),
                            );
                            batch.push(
                                LogEvent::from_parts(fields, EventMetadata::new(source_id, now))
                                    .into(),
                            );
                        });
                    }
                    if batch.len() >= MAX_BATCH_EVENTS
                        && !super::send_batch(&mut batch, &cx.metrics, &cx.out).await
                    {
                        return;
                    }
                }
                if !super::send_batch(&mut batch, &cx.metrics, &cx.out).await || n == 0 {
                    return;
                }
            }
        }))
    }
}
