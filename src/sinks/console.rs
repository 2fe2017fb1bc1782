//! `console` sink: events to stdout (or stderr), one per line, for trying pipelines and
//! for running under a supervisor that collects stdout.

use super::util::encoding::{EncodingConfig, FramingConfig, StreamEncoder};
use super::util::on_own_thread;
use crate::config::field::FieldIssue;
use crate::event::BatchStatus;
use crate::internal_events::failures::WriteFailed;
use crate::topology::component::{BuildError, SinkConfig, SinkContext, Task};
use serde::Deserialize;
use std::io::Write;

/// `[sinks.ID] type = "console"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// `stdout` (default) or `stderr`.
    #[serde(default)]
    pub target: Target,
    /// `encoding.codec = "json" | "text"` and Vector's other encoding options.
    #[serde(default)]
    pub encoding: EncodingConfig,
    /// What follows each event; a newline by default.
    pub framing: Option<FramingConfig>,
}

/// Which standard stream.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// Standard output.
    #[default]
    Stdout,
    /// Standard error.
    Stderr,
}

impl SinkConfig for ConsoleConfig {
    fn validate(&self) -> Vec<FieldIssue> {
        StreamEncoder::new(&self.encoding, &self.framing)
            .err()
            .unwrap_or_default()
    }

    fn build(&self, mut cx: SinkContext) -> Result<Task, BuildError> {
        let mut encoder = StreamEncoder::new(&self.encoding, &self.framing)
            .map_err(|_| BuildError::Other("invalid encoding or framing".into()))?;
        let target = self.target;
        let name = cx.id.to_string();
        on_own_thread(&format!("sink-{name}"), async move {
            let errors = cx.metrics.reporter::<WriteFailed>();
            let mut buf = Vec::with_capacity(64 * 1024);
            // Once the reader has gone (`| head`), nothing more can be written: the rest
            // is counted, not attempted, and reported once at the end.
            let mut closed = false;
            let mut unwritten = 0u64;
            while let Some(mut batch) = cx.input.recv().await {
                buf.clear();
                let n = batch.len() as u64;
                let res = if closed {
                    Err(std::io::ErrorKind::BrokenPipe.into())
                } else {
                    for e in &batch {
                        encoder.encode(e, &mut buf);
                    }
                    match target {
                        Target::Stdout => std::io::stdout().lock().write_all(&buf),
                        Target::Stderr => std::io::stderr().lock().write_all(&buf),
                    }
                };
                let status = match res {
                    Ok(()) => {
                        cx.metrics.sent_events.increment(n);
                        cx.metrics.sent_bytes.increment(buf.len() as u64);
                        BatchStatus::Delivered
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                        if !closed {
                            errors.emit_dropped(n, || format!("{target:?} was closed by its reader; events are no longer written"));
                            closed = true;
                        } else {
                            cx.metrics.discarded_unintentional.increment(n);
                        }
                        unwritten += n;
                        BatchStatus::Errored
                    }
                    Err(e) => {
                        errors.emit_dropped(n, || format!("Writing to {target:?} failed: {e}"));
                        BatchStatus::Errored
                    }
                };
                for e in batch.iter_mut() {
                    e.take_finalizers().update_status(status);
                }
            }
            if unwritten > 0 {
                tracing::error!(component_id = %cx.id, undelivered = unwritten, "{target:?} closed before the end: these events were not written.");
            }
        })
    }
}
