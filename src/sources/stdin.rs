//! `stdin` source: one event per line of standard input. When input ends the source
//! finishes, and once every source has finished sluice drains and exits, so
//! `producer | sluice run --config pipe.toml` works as a filter.

use super::util::framing::{Framer, Mode};
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
    /// Field for this machine's name. Default `log_schema.host_key` (`host`); `""`
    /// leaves it out.
    pub host_key: Option<String>,
}

fn default_max_length() -> usize {
    102_400
}

impl SourceConfig for StdinConfig {
    fn build(&self, cx: SourceContext) -> Result<Task, BuildError> {
        let max_length = self.max_length.max(1);
        let schema = crate::event::schema::log_schema();
        let host_key = self
            .host_key
            .clone()
            .unwrap_or_else(|| schema.host_key.clone());
        let renames = schema.renames(&host_key);
        Ok(Box::pin(async move {
            let source_id = crate::event::intern(&cx.id);
            let host = Value::Bytes(Bytes::from(crate::hostname()));
            let truncated = cx.metrics.reporter::<Truncated>();
            let io = cx.metrics.reporter::<ReadFailed>();
            let mut framer = Framer::with_mode(Mode::Newline, max_length);
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
