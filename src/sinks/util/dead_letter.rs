//! Dead letters: events a destination refused for good (an HTTP 400, CloudWatch's
//! too-old events, an InfluxDB type conflict, a template field an event lacks) are
//! written to a file for a person to look at, instead of being only counted. Any sink
//! may set `dead_letter.path`; the drop metrics still count the events.
//!
//! Each line is JSON: `{"time", "component_id", "reason", "status", "event"}`, the event
//! as the `json` codec writes it. Files are appended to by a thread of their own (a sink
//! never waits on the disk for them), optionally gzip-compressed (one gzip member per
//! write, which `zcat` reads as one stream), and capped at `max_bytes` each: past the cap,
//! dead letters are counted as dropped, and said so once in the log.

use crate::event::Event;
use crate::internal_events::{names, ComponentMetrics};
use crate::sinks::util::encoding::json::{encode_json, write_str, write_timestamp};
use crate::sinks::util::template::Template;
use serde::Deserialize;
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};

/// How many batches of dead letters may wait for the writing thread; beyond that they
/// are counted as dropped rather than slowing the sink.
const QUEUE: usize = 64;

/// `dead_letter` of a sink.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterConfig {
    /// Where refused events go: a template over the event's fields and time
    /// (`/var/lib/sluice/dead/{{ component_id }}-%Y-%m-%d.jsonl`); `{{ component_id }}`
    /// is the sink's ID.
    pub path: String,
    /// `none` (default) or `gzip`.
    #[serde(default)]
    pub compression: DeadLetterCompression,
    /// The most bytes one dead-letter file may grow to; further dead letters for it are
    /// counted as dropped. Default 100 MiB.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
}

fn default_max_bytes() -> u64 {
    100 * 1024 * 1024
}

/// Compression of dead-letter files.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterCompression {
    /// Plain JSON lines.
    #[default]
    None,
    /// Gzip members appended one after another.
    Gzip,
}

impl DeadLetterConfig {
    /// Problems `validate` reports, as (key, message).
    pub fn issues(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Err(e) = Template::parse(&self.path.replace("{{ component_id }}", "x")) {
            out.push(("dead_letter.path", e.to_string()));
        }
        if self.max_bytes == 0 {
            out.push(("dead_letter.max_bytes", "must be at least 1".to_string()));
        }
        out
    }
}

/// One refused event, ready to write.
struct Letter {
    path: PathBuf,
    line: Vec<u8>,
}

/// Where a sink writes its dead letters. Cheap to clone.
#[derive(Clone)]
pub struct DeadLetters {
    id: std::sync::Arc<str>,
    template: std::sync::Arc<Template>,
    tx: SyncSender<Vec<Letter>>,
    dropped: metrics::Counter,
    behind: crate::internal_events::Reporter<crate::internal_events::failures::DeadLetterFailed>,
}

impl std::fmt::Debug for DeadLetters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetters").field("id", &self.id).finish()
    }
}

impl DeadLetters {
    /// Starts the writing thread of sink `metrics.labels.id`.
    pub fn start(config: &DeadLetterConfig, metrics: &ComponentMetrics) -> Result<Self, String> {
        let id = metrics.labels.id.clone();
        let template = Template::parse(&config.path.replace("{{ component_id }}", &id))
            .map_err(|e| format!("dead_letter.path: {e}"))?;
        let (tx, rx) = sync_channel::<Vec<Letter>>(QUEUE);
        let written = metrics.counter_with(names::DEAD_LETTERS, "result", "written".to_string());
        let dropped = metrics.counter_with(names::DEAD_LETTERS, "result", "dropped".to_string());
        let writer = Writer {
            gzip: config.compression == DeadLetterCompression::Gzip,
            max_bytes: config.max_bytes,
            files: HashMap::new(),
            written,
            dropped: dropped.clone(),
            errors: metrics.reporter(),
            id: id.clone(),
        };
        std::thread::Builder::new()
            .name(format!("dead-letter-{id}"))
            .spawn(move || writer.run(rx))
            .map_err(|e| format!("dead_letter: starting its thread: {e}"))?;
        Ok(Self {
            id,
            template: std::sync::Arc::new(template),
            tx,
            dropped,
            behind: metrics.reporter(),
        })
    }

    /// Writes `events` refused for `reason` (with the destination's `status`, if it
    /// gave one).
    pub fn write<'a>(
        &self,
        events: impl IntoIterator<Item = &'a Event>,
        reason: &str,
        status: Option<u16>,
    ) {
        let now = chrono::Utc::now();
        let mut letters = Vec::new();
        let mut path = String::new();
        for e in events {
            path.clear();
            if self
                .template
                .render(e, Template::event_time(e), &mut path)
                .is_err()
            {
                // A field the path needs is missing: the time-only part still names a file.
                path = self.template.as_str().to_string();
            }
            let mut line = Vec::with_capacity(256);
            line.extend_from_slice(b"{\"time\":\"");
            write_timestamp(&now, &mut line);
            line.extend_from_slice(b"\",\"component_id\":");
            write_str(&self.id, &mut line);
            line.extend_from_slice(b",\"reason\":");
            write_str(reason, &mut line);
            line.extend_from_slice(b",\"status\":");
            match status {
                Some(s) => line.extend_from_slice(s.to_string().as_bytes()),
                None => line.extend_from_slice(b"null"),
            }
            line.extend_from_slice(b",\"event\":");
            encode_json(e, &mut line);
            line.extend_from_slice(b"}\n");
            letters.push(Letter {
                path: PathBuf::from(&path),
                line,
            });
        }
        if letters.is_empty() {
            return;
        }
        let n = letters.len() as u64;
        if let Err(e) = self.tx.try_send(letters) {
            self.dropped.increment(n);
            let why = match e {
                TrySendError::Full(_) => "the dead-letter writer is behind (a slow disk?)",
                TrySendError::Disconnected(_) => "the dead-letter writer has stopped",
            };
            self.behind
                .emit(|| format!("{n} dead letters not written: {why}; counted as dropped."));
        }
    }
}

struct Writer {
    gzip: bool,
    max_bytes: u64,
    /// Open files and their size.
    files: HashMap<PathBuf, (std::fs::File, u64, bool)>,
    written: metrics::Counter,
    dropped: metrics::Counter,
    errors: crate::internal_events::Reporter<crate::internal_events::failures::DeadLetterFailed>,
    id: std::sync::Arc<str>,
}

impl Writer {
    fn run(mut self, rx: std::sync::mpsc::Receiver<Vec<Letter>>) {
        while let Ok(letters) = rx.recv() {
            let mut by_file: HashMap<PathBuf, Vec<u8>> = HashMap::new();
            let mut counts: HashMap<PathBuf, u64> = HashMap::new();
            for l in letters {
                by_file
                    .entry(l.path.clone())
                    .or_default()
                    .extend_from_slice(&l.line);
                *counts.entry(l.path).or_default() += 1;
            }
            for (path, text) in by_file {
                let n = counts.get(&path).copied().unwrap_or(0);
                match self.append(&path, &text) {
                    Ok(true) => self.written.increment(n),
                    Ok(false) => self.dropped.increment(n),
                    Err(e) => {
                        self.dropped.increment(n);
                        self.errors.emit(|| {
                            format!("Writing {n} dead letters to {} failed: {e}", path.display())
                        });
                    }
                }
            }
            // Closed files are reopened when needed; keep few open.
            if self.files.len() > 16 {
                self.files.clear();
            }
        }
    }

    /// Appends `text`; `Ok(false)` when the file is at its cap.
    fn append(&mut self, path: &PathBuf, text: &[u8]) -> std::io::Result<bool> {
        if !self.files.contains_key(path) {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            let len = f.metadata()?.len();
            self.files.insert(path.clone(), (f, len, false));
        }
        let Some((f, len, warned)) = self.files.get_mut(path) else {
            return Ok(false);
        };
        let data = if self.gzip {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(text)?;
            enc.finish()?
        } else {
            text.to_vec()
        };
        if *len + data.len() as u64 > self.max_bytes {
            if !*warned {
                *warned = true;
                let (id, p, max) = (self.id.clone(), path.display().to_string(), self.max_bytes);
                tracing::warn!(component_id = %id, path = %p, max_bytes = max, "Dead-letter file is full (dead_letter.max_bytes); further dead letters for it are counted as dropped.");
            }
            return Ok(false);
        }
        f.write_all(&data)?;
        *len += data.len() as u64;
        Ok(true)
    }
}
