//! `file` sink: events as JSON lines (or text) into files named by a template, e.g.
//! `/var/log/sluice/{{ appname }}-%Y-%m-%d.jsonl`. Files stay open while written and are
//! closed after `idle_timeout_secs`; each batch costs one `write` per file it touches.
//! Runs on its own thread because file I/O blocks.

use super::util::encoding::{EncodingConfig, FramingConfig, StreamEncoder};
use super::util::template::Template;
use super::util::{on_own_thread, Dropper};
use crate::config::field::FieldIssue;
use crate::event::{Batch, BatchStatus, EventFinalizers};
use crate::internal_events::failures::{FileTrouble, TemplateFailed, WriteFailed};
use crate::internal_events::names;
use crate::internal_events::{ComponentMetrics, Reporter};
use crate::topology::component::{BuildError, SinkConfig, SinkContext, Task};
use chrono::{DateTime, Utc};
use flate2::write::GzEncoder;
use metrics::Gauge;
use serde::Deserialize;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// `[sinks.ID] type = "file"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSinkConfig {
    /// File name template: strftime specifiers use the event's `timestamp`, `{{ field }}`
    /// its fields. Parent directories are created. An event missing a field the template
    /// names is dropped and counted (`error_type="template"`), as in Vector.
    pub path: String,
    /// Close a file nobody wrote to for this long. Default 30.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_secs: u64,
    /// `none` (default) or `gzip`. Gzip files are flushed every second and finished
    /// when closed; a reopened file gets a new gzip member, which `zcat` reads as one.
    #[serde(default)]
    pub compression: Compression,
    /// `encoding.codec = "json" | "text"` and Vector's other encoding options.
    #[serde(default)]
    pub encoding: EncodingConfig,
    /// What follows each event; a newline by default.
    pub framing: Option<FramingConfig>,
    /// Vector's confinement root: `path` must lie under it. Field values can never
    /// leave the directory `path` names (`/` and `..` are replaced), so this only checks
    /// the literal part of `path`.
    pub base_dir: Option<std::path::PathBuf>,
    /// The zone `path`'s strftime specifiers render in: `local` or an IANA name.
    /// Default: the top-level `timezone`, else UTC (as in Vector).
    pub timezone: Option<crate::config::timezone::TimeZone>,
}

fn default_idle_timeout() -> u64 {
    30
}

pub use super::util::encoding::Compression;

impl SinkConfig for FileSinkConfig {
    fn build(&self, cx: SinkContext) -> Result<Task, BuildError> {
        let template = Template::parse(&self.path)
            .map_err(|e| BuildError::Other(e.to_string()))?
            .with_timezone(self.timezone.or(cx.timezone));
        let name = cx.id.to_string();
        let sink = FileSink {
            template,
            encoder: StreamEncoder::new(&self.encoding, &self.framing)
                .map_err(|_| BuildError::Other("invalid encoding or framing".into()))?,
            compression: self.compression,
            idle_timeout: Duration::from_secs(self.idle_timeout_secs.max(1)),
            files: HashMap::new(),
            io_errors: cx.metrics.reporter(),
            file_trouble: cx.metrics.reporter(),
            template_errors: cx.metrics.reporter(),
            dead_letter: cx.dead_letter.clone(),
            open_gauge: cx.metrics.gauge(names::FILES_OPEN),
            metrics: cx.metrics.clone(),
            path_buf: String::new(),
            cached: None,
            last: None,
            dropper: Dropper::new(&name),
            spent: Vec::new(),
        };
        on_own_thread(&format!("sink-{name}"), sink.run(cx))
    }

    fn validate(&self) -> Vec<FieldIssue> {
        let mut issues = StreamEncoder::new(&self.encoding, &self.framing)
            .err()
            .unwrap_or_default();
        if let Err(e) = Template::parse(&self.path) {
            issues.push(FieldIssue::new("path", e.to_string()));
        }
        if let Some(base) = &self.base_dir {
            // The part of `path` before the first field or strftime specifier.
            let literal = &self.path[..self.path.find(['{', '%']).unwrap_or(self.path.len())];
            let dir = match literal.rfind('/') {
                Some(i) => &literal[..=i],
                None => "",
            };
            if !base.is_absolute() {
                issues.push(FieldIssue::new("base_dir", "must be an absolute path"));
            } else if !std::path::Path::new(dir).starts_with(base) || dir.contains("/../") {
                issues.push(FieldIssue::new(
                    "path",
                    format!(
                        "`{}` does not lie under base_dir `{}`",
                        self.path,
                        base.display()
                    ),
                ));
            }
        }
        issues
    }
}

enum Writer {
    Plain(File),
    Gzip(Box<GzEncoder<File>>),
}

struct OpenFile {
    writer: Writer,
    pending: Vec<u8>,
    pending_events: u64,
    last_write: Instant,
}

impl OpenFile {
    fn write_pending(&mut self) -> std::io::Result<usize> {
        let n = self.pending.len();
        if n == 0 {
            return Ok(0);
        }
        let res = match &mut self.writer {
            Writer::Plain(f) => f.write_all(&self.pending),
            Writer::Gzip(g) => g.write_all(&self.pending),
        };
        self.pending.clear();
        self.last_write = Instant::now();
        res.map(|_| n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.writer {
            Writer::Plain(f) => f.flush(),
            Writer::Gzip(g) => g.flush(),
        }
    }

    fn close(self) -> std::io::Result<()> {
        self.finish()?.sync_data()
    }

    /// Writes what the file still lacks (a gzip trailer): after this, nothing but the
    /// flush is left, and a successor may append to the same path.
    fn finish(self) -> std::io::Result<File> {
        match self.writer {
            Writer::Plain(f) => Ok(f),
            Writer::Gzip(g) => g.finish(),
        }
    }
}

/// Stopped file sinks whose files are still being flushed to disk.
static SYNCING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Waits, up to `timeout`, for stopped file sinks to flush their files, before the
/// process exits: data written before a shutdown survives a power loss right after.
pub(crate) async fn settle_syncs(timeout: Duration) {
    use std::sync::atomic::Ordering;
    let until = tokio::time::Instant::now() + timeout;
    while SYNCING.load(Ordering::Acquire) > 0 {
        if tokio::time::Instant::now() >= until {
            tracing::warn!(
                timeout_secs = timeout.as_secs(),
                "File sinks still flushing their files at exit; the kernel writes the rest back."
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

struct FileSink {
    template: Template,
    encoder: StreamEncoder,
    compression: Compression,
    idle_timeout: Duration,
    files: HashMap<String, OpenFile>,
    io_errors: Reporter<WriteFailed>,
    file_trouble: Reporter<FileTrouble>,
    template_errors: Reporter<TemplateFailed>,
    open_gauge: Gauge,
    metrics: ComponentMetrics,
    path_buf: String,
    /// The last rendered path of a time-only template and the second it is valid for.
    cached: Option<(i64, String)>,
    /// The file written last, kept out of `files` so the next event finds it without hashing.
    last: Option<(String, OpenFile)>,
    /// Frees encoded batches beside this thread.
    dropper: Dropper,
    spent: Vec<Batch>,
    /// Where events whose path cannot be rendered go, with `dead_letter`.
    dead_letter: Option<super::util::dead_letter::DeadLetters>,
}

/// Stop gathering queued batches once this much waits to be written: big enough for few
/// large writes, small enough that what the dropper holds stays a few MiB.
const MAX_PENDING_BYTES: usize = 256 << 10;

impl FileSink {
    async fn run(mut self, mut cx: SinkContext) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                batch = cx.input.recv() => match batch {
                    Some(batch) => {
                        let mut finalizers = Vec::new();
                        let mut pending = self.encode(batch, &mut finalizers);
                        // Gather what else is queued so a busy sink writes big chunks.
                        while pending < MAX_PENDING_BYTES {
                            let Some(more) = cx.input.try_recv_now() else { break };
                            pending += self.encode(more, &mut finalizers);
                        }
                        self.dropper.drop_batches(std::mem::take(&mut self.spent));
                        let status = self.write_all();
                        for f in finalizers {
                            f.update_status(status);
                        }
                    }
                    None => break,
                },
                _ = tick.tick() => self.maintain(),
            }
        }
        self.close_all();
    }

    /// Encodes a batch into the pending buffers of its files; returns bytes added.
    fn encode(&mut self, mut batch: Batch, finalizers: &mut Vec<EventFinalizers>) -> usize {
        let mut added = 0;
        for event in batch.iter_mut() {
            let f = event.take_finalizers();
            let time: DateTime<Utc> = Template::event_time(event);
            let path: &str = if self.template.is_static() {
                self.template.as_str()
            } else if self.template.is_time_only() {
                let sec = time.timestamp();
                if self.cached.as_ref().is_none_or(|(s, _)| *s != sec) {
                    let mut p = String::new();
                    let _ = self.template.render(event, time, &mut p);
                    self.cached = Some((sec, p));
                }
                self.cached
                    .as_ref()
                    .map(|(_, p)| p.as_str())
                    .unwrap_or_default()
            } else {
                match self.template.render(event, time, &mut self.path_buf) {
                    Ok(()) => &self.path_buf,
                    Err(e) => {
                        // Permanent for this event: its source must not wait for it.
                        f.update_status(BatchStatus::Rejected);
                        if let Some(d) = &self.dead_letter {
                            d.write(
                                std::slice::from_ref(event),
                                &format!("cannot render path `{}`: {e}", self.template.as_str()),
                                None,
                            );
                        }
                        self.template_errors.emit_dropped(1, || {
                            format!(
                                "Event dropped: cannot render path `{}`: {e}",
                                self.template.as_str()
                            )
                        });
                        continue;
                    }
                }
            };
            // Consecutive events nearly always go to the same file: compare with the
            // last one before hashing the path.
            let same_as_last = self.last.as_ref().is_some_and(|(p, _)| p == path);
            let file = if same_as_last {
                self.last.as_mut().map(|(_, f)| f)
            } else {
                if let Some((p, f)) = self.last.take() {
                    self.files.insert(p, f);
                }
                let entry = match self.files.remove(path) {
                    Some(f) => Ok(f),
                    None => open(path, self.compression).map(|w| {
                        self.open_gauge.increment(1.0);
                        OpenFile {
                            writer: w,
                            pending: Vec::with_capacity(64 * 1024),
                            pending_events: 0,
                            last_write: Instant::now(),
                        }
                    }),
                };
                match entry {
                    Ok(f) => {
                        self.last = Some((path.to_string(), f));
                        self.last.as_mut().map(|(_, f)| f)
                    }
                    Err(e) => {
                        // Not delivered: a source that waits (file tail) keeps it.
                        f.update_status(BatchStatus::Errored);
                        self.io_errors.emit_dropped(1, || {
                            format!("Event dropped: cannot open `{path}`: {e}")
                        });
                        continue;
                    }
                }
            };
            let Some(file) = file else { continue };
            if !f.is_empty() {
                finalizers.push(f);
            }
            let before = file.pending.len();
            self.encoder.encode(event, &mut file.pending);
            file.pending_events += 1;
            added += file.pending.len() - before;
        }
        self.spent.push(batch);
        added
    }

    /// Writes every pending buffer; the worst outcome decides the batch status.
    fn write_all(&mut self) -> BatchStatus {
        let mut status = BatchStatus::Delivered;
        let last = self.last.as_mut().map(|(p, f)| (&*p, f));
        for (path, file) in self.files.iter_mut().chain(last) {
            let lines = std::mem::take(&mut file.pending_events);
            match file.write_pending() {
                Ok(0) => {}
                Ok(n) => {
                    self.metrics.sent_bytes.increment(n as u64);
                    self.metrics.sent_events.increment(lines);
                }
                Err(e) => {
                    status = BatchStatus::Errored;
                    self.io_errors
                        .emit_dropped(lines, || format!("Writing to `{path}` failed: {e}"));
                }
            }
        }
        status
    }

    /// Once a second: flush gzip streams and close idle files.
    fn maintain(&mut self) {
        if let Some((p, f)) = self.last.take() {
            self.files.insert(p, f);
        }
        let idle = self.idle_timeout;
        let stale: Vec<String> = self
            .files
            .iter()
            .filter(|(_, f)| f.last_write.elapsed() >= idle)
            .map(|(p, _)| p.clone())
            .collect();
        for path in stale {
            if let Some(f) = self.files.remove(&path) {
                self.open_gauge.decrement(1.0);
                if let Err(e) = f.close() {
                    self.file_trouble
                        .emit(|| format!("Closing `{path}` failed: {e}"));
                }
            }
        }
        for (path, f) in self.files.iter_mut() {
            if let Err(e) = f.flush() {
                self.file_trouble
                    .emit(|| format!("Flushing `{path}` failed: {e}"));
            }
        }
    }

    /// At the end: everything is written and finished here, and the `fsync`s run on a
    /// helper thread, so a sink replaced by a reload hands over to its successor without
    /// waiting for the disk (flushing a few hundred MiB paused delivery for 90–170 ms
    /// under load). The process waits for the flush at exit ([`settle_syncs`]).
    fn close_all(&mut self) {
        use std::sync::atomic::Ordering;
        self.write_all();
        if let Some((p, f)) = self.last.take() {
            self.files.insert(p, f);
        }
        let mut finished = Vec::with_capacity(self.files.len());
        for (path, f) in self.files.drain() {
            self.open_gauge.decrement(1.0);
            match f.finish() {
                Ok(file) => finished.push((path, file)),
                Err(e) => self
                    .file_trouble
                    .emit(|| format!("Closing `{path}` failed: {e}")),
            }
        }
        if finished.is_empty() {
            return;
        }
        let trouble = self.file_trouble.clone();
        SYNCING.fetch_add(1, Ordering::AcqRel);
        let spawned = std::thread::Builder::new()
            .name("file-sync".into())
            .spawn(move || {
                for (path, file) in finished {
                    if let Err(e) = file.sync_data() {
                        trouble.emit(|| format!("Closing `{path}` failed: {e}"));
                    }
                }
                SYNCING.fetch_sub(1, Ordering::AcqRel);
            });
        if let Err(e) = spawned {
            SYNCING.fetch_sub(1, Ordering::AcqRel);
            self.file_trouble.emit(|| {
                format!("Flushing closed files failed: no thread for it ({e}); the kernel writes them back.")
            });
        }
    }
}

fn open(path: &str, compression: Compression) -> std::io::Result<Writer> {
    if let Some(parent) = Path::new(path).parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent)?;
        }
    }
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)?;
    if compression == Compression::None {
        end_torn_line(&mut f)?;
    }
    Ok(match compression {
        Compression::None => Writer::Plain(f),
        Compression::Gzip => Writer::Gzip(Box::new(GzEncoder::new(f, flate2::Compression::fast()))),
    })
}

/// A crash (SIGKILL, power loss) can leave a half-written last line. Ending it before
/// appending keeps every later line whole and parseable; the torn line itself is
/// resent by sources that wait for delivery.
fn end_torn_line(f: &mut File) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    let mut last = [0u8; 1];
    f.read_at(&mut last, len - 1)?;
    if last[0] != b'\n' {
        f.write_all(b"\n")?;
    }
    Ok(())
}
