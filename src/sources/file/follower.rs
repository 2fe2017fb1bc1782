//! The follower: the file source's task. It finds files (`discovery.rs`), reads every
//! file with something new in one pass, turns lines into batches of events (through the
//! multiline aggregator when configured), sends them with a notifier whose answer moves
//! the checkpoints (`delivery.rs`), and sleeps until inotify, an acknowledgement or the
//! next due moment wakes it.

use super::delivery::Delivery;
use super::tail::{FileId, Line, Progress, Tailed};
use super::{fingerprint, multiline, watch, FileConfig, WatchMode, PROVISIONAL};
use crate::event::{EventMetadata, LogEvent, ObjectMap, Value, MAX_BATCH_EVENTS};
use crate::internal_events::failures::{FileTrouble, ReadFailed, Truncated};
use crate::internal_events::names;
use crate::internal_events::Reporter;
use crate::topology::component::SourceContext;
use bytes::Bytes;
use chrono::Utc;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// With inotify, how often every file is read and the globs scanned anyway, in case an
/// event was missed (new files are otherwise announced by inotify at once, and a
/// watch queue overflow forces a rescan); Fluent Bit's refresh interval is the same.
const SAFETY_PASS: Duration = Duration::from_secs(60);

/// How many released files' read offsets are kept while their delivery is open.
const MAX_RELEASED: usize = 4096;

/// Where reading stopped in a file that was then truncated (copytruncate): the copy
/// logrotate made has its identity and continues from exactly there.
#[derive(Clone, Debug)]
pub(super) struct Retired {
    pub(super) read_up_to: u64,
    /// Where the truncated file is: its copy is looked for beside it.
    pub(super) path: PathBuf,
    /// Looked for beside it already (a copy the globs match may still turn up).
    pub(super) searched: bool,
}

pub(super) struct Follower {
    pub(super) config: FileConfig,
    pub(super) include: Vec<glob::Pattern>,
    pub(super) exclude: Vec<glob::Pattern>,
    pub(super) fingerprinter: fingerprint::Fingerprinter,
    pub(super) cx: SourceContext,
    pub(super) files: HashMap<FileId, Tailed>,
    /// Acknowledgements and checkpoints.
    pub(super) delivery: Delivery,
    pub(super) multiline: Option<multiline::Aggregator>,
    /// Files that returned data on the last pass: read again without waiting for inotify.
    pub(super) busy: HashSet<FileId>,
    /// Files closed to respect `max_open_files`, with where reading stopped.
    pub(super) parked: HashMap<FileId, u64>,
    /// Files found while every slot of `max_open_files` held a busy file.
    pub(super) waiting: HashSet<PathBuf>,
    /// Files without enough complete lines to identify, with their size then.
    pub(super) unidentified: HashMap<PathBuf, u64>,
    pub(super) retired: HashMap<FileId, Retired>,
    /// Rotated files released while lines read from them were still in flight, with
    /// where reading stopped. Found again (a rotated `.gz` with the original's identity,
    /// a rename by the next rotation), such a file goes on from there, not from its
    /// lagging checkpoint: those lines are already in the pipeline. Forgotten once the
    /// checkpoint reaches the offset; at most `MAX_RELEASED` are kept.
    pub(super) released: HashMap<FileId, u64>,
    /// A file was truncated on the last pass: find its copy before anything else.
    pub(super) truncated_now: bool,
    pub(super) started: bool,
    pub(super) host: Value,
    pub(super) source_id: crate::event::SourceId,
    pub(super) truncated: Reporter<Truncated>,
    pub(super) io: Reporter<FileTrouble>,
    pub(super) read_errors: Reporter<ReadFailed>,
    pub(super) open_gauge: metrics::Gauge,
    /// The most files open at once since start, so `max_open_files` can be checked and
    /// tuned without sampling `sluice_files_open` fast enough to catch a spike.
    pub(super) open_peak: usize,
    pub(super) open_peak_gauge: metrics::Gauge,
    pub(super) added: metrics::Counter,
    /// Files deleted by `remove_after_secs`.
    pub(super) removed: metrics::Counter,
    /// The field for the host name (`host_key`, else `log_schema.host_key`).
    host_key: String,
    /// Whether fields move from their default names (`log_schema`, `host_key`).
    renames: bool,
    /// `encoding.charset`, when not UTF-8.
    charset: Option<&'static encoding_rs::Encoding>,
    pub(super) rotated: metrics::Counter,
    pub(super) truncations: metrics::Counter,
    pub(super) rescans: Rescans,
}

/// `sluice_files_rescans_total` by reason: each time inotify may have missed events and
/// everything was looked at again at once.
pub(super) struct Rescans {
    pub(super) overflow: metrics::Counter,
    pub(super) error: metrics::Counter,
    pub(super) watch_lost: metrics::Counter,
}

impl Follower {
    pub(super) fn new(
        config: FileConfig,
        include: Vec<glob::Pattern>,
        exclude: Vec<glob::Pattern>,
        dir: PathBuf,
        cx: SourceContext,
    ) -> Self {
        let delivery = Delivery::load(&dir, &cx, config.ignores_checkpoints());
        let (host_key, renames) = crate::event::schema::log_schema().host_key_for(&config.host_key);
        let rescan = |reason: &str| {
            cx.metrics
                .counter_with(names::FILES_RESCANS, "reason", reason.to_string())
        };
        Self {
            include,
            exclude,
            fingerprinter: fingerprint::Fingerprinter::new(
                &config.fingerprint,
                &config.raw_delimiter(),
                config.max_line_bytes,
            ),
            files: HashMap::new(),
            delivery,
            multiline: config
                .multiline
                .as_ref()
                .and_then(|m| multiline::Aggregator::new(m, config.max_line_bytes).ok()),
            retired: HashMap::new(),
            released: HashMap::new(),
            truncated_now: false,
            busy: Default::default(),
            parked: HashMap::new(),
            waiting: HashSet::new(),
            unidentified: HashMap::new(),
            started: false,
            host: Value::Bytes(Bytes::from(crate::hostname())),
            source_id: crate::event::intern(&cx.id),
            truncated: cx.metrics.reporter(),
            io: cx.metrics.reporter(),
            read_errors: cx.metrics.reporter(),
            open_gauge: cx.metrics.gauge(names::FILES_OPEN),
            open_peak: 0,
            open_peak_gauge: cx.metrics.gauge(names::FILES_OPEN_PEAK),
            added: cx.metrics.counter(names::FILES_ADDED),
            removed: cx.metrics.counter(names::FILES_REMOVED),
            charset: config.charset(),
            host_key,
            renames,
            rotated: cx.metrics.counter(names::FILES_ROTATED),
            truncations: cx.metrics.counter(names::FILES_TRUNCATED),
            rescans: Rescans {
                overflow: rescan("overflow"),
                error: rescan("error"),
                watch_lost: rescan("watch_lost"),
            },
            config,
            cx,
        }
    }

    pub(super) async fn run(mut self) {
        let cooldown = Duration::from_millis(self.config.glob_minimum_cooldown_ms.max(10));
        let wake = std::sync::Arc::new(watch::Wake::default());
        let mut watcher = match self.config.watch {
            WatchMode::Inotify => watch::Watch::start(&self.include, &wake),
            WatchMode::Poll => None,
        };
        if self.config.watch == WatchMode::Inotify && watcher.is_none() {
            tracing::warn!(component_id = %self.cx.id, "inotify is not available for these paths; polling instead.");
        }
        let inotify = watcher.is_some();
        let mut dir_stamps = watch::DirStamps::default();
        let mut last_scan: Option<Instant> = None;
        let mut last_full = Instant::now();
        let mut last_checkpoint = Instant::now();
        let mut buf = vec![0u8; 64 * 1024];
        let mut idle = Duration::from_millis(1);
        loop {
            if self.cx.shutdown.is_cancelled() {
                break;
            }
            let why = wake.take_rescan();
            if why.overflowed {
                self.rescans.overflow.increment(1);
                tracing::warn!(component_id = %self.cx.id, "The inotify event queue overflowed; looking at every file again now.");
            }
            if why.errored {
                self.rescans.error.increment(1);
            }
            if why.any() {
                if let Some(w) = &mut watcher {
                    if w.resync() {
                        self.rescans.watch_lost.increment(1);
                        tracing::warn!(component_id = %self.cx.id, "A watched directory was deleted or replaced; watching again and looking at every file now.");
                    }
                }
            }
            let scan_every = if inotify {
                SAFETY_PASS.max(cooldown)
            } else {
                cooldown
            };
            // Polling: a directory whose entries changed is scanned now, and a file too
            // short to identify is looked at again as soon as it grew.
            let dirs_changed = !inotify && dir_stamps.changed();
            if why.any() || dirs_changed || last_scan.is_none_or(|t| t.elapsed() >= scan_every) {
                if !inotify {
                    dir_stamps.reset(&self.include, self.files.values().map(|t| t.path.clone()));
                }
                self.discover();
                last_scan = Some(Instant::now());
            } else if !inotify && !self.unidentified.is_empty() {
                self.retry_unidentified();
            }
            // With inotify, read only what changed, what is still busy, what holds a
            // multiline message and what was rotated away (its writer may still be
            // writing to it, where no event reaches us); everything every SAFETY_PASS.
            let targets = if !inotify || why.any() || last_full.elapsed() >= SAFETY_PASS {
                last_full = Instant::now();
                wake.take_dirty();
                None
            } else {
                let dirty = wake.take_dirty();
                if !dirty.is_empty() {
                    // A changed path no live file holds is new, or was too short to
                    // identify until now: look at it now, not at the next scan.
                    let live: HashSet<&PathBuf> = self
                        .files
                        .values()
                        .filter(|t| t.detached_since.is_none())
                        .map(|t| &t.path)
                        .collect();
                    let new: Vec<PathBuf> = dirty
                        .iter()
                        .filter(|p| !live.contains(p))
                        .cloned()
                        .collect();
                    for p in new {
                        if self.wanted(&p) {
                            self.consider(&p, false, None);
                        }
                    }
                }
                let mut ids: HashSet<FileId> = self.busy.clone();
                ids.extend(
                    self.files
                        .values()
                        .filter(|t| t.detached_since.is_some() || dirty.contains(&t.path))
                        .map(|t| t.id.clone()),
                );
                if let Some(agg) = &self.multiline {
                    ids.extend(agg.pending());
                }
                Some(ids)
            };
            let read = match self.read_pass(&mut buf, targets.as_ref()).await {
                Some(n) => n,
                None => return, // nothing downstream any more
            };
            if std::mem::take(&mut self.truncated_now) {
                // copytruncate: its copy holds what we had not read yet. Find it now,
                // while it is there and before logrotate compresses or removes it.
                self.discover();
                last_scan = Some(Instant::now());
                self.adopt_copies();
                idle = Duration::from_millis(1);
                continue;
            }
            self.delivery.collect();
            if last_checkpoint.elapsed() >= Duration::from_secs(1) {
                self.delivery.write();
                last_checkpoint = Instant::now();
            }
            self.release_detached();
            self.remove_delivered();
            if read == 0 && !self.waiting.is_empty() && self.retry_waiting() {
                // All quiet: files waiting for a slot of max_open_files take one.
                continue;
            }
            if read == 0 {
                // Idle. Polling backs off up to 250 ms. With inotify nothing ticks: the
                // loop sleeps until a write, an acknowledgement, or the next thing that
                // is due (a multiline timeout, a checkpoint write, a rotated file's next
                // poll or release, the safety pass), so 1000 idle files cost no CPU.
                idle = (idle * 2).min(Duration::from_millis(250));
                let wake_at = if inotify {
                    self.next_due(last_full, last_checkpoint, idle)
                } else {
                    // Never later than the next glob scan.
                    let scan_at = last_scan.map_or_else(Instant::now, |t| t + scan_every);
                    (Instant::now() + idle).min(scan_at)
                };
                tokio::select! {
                    _ = wake.notify.notified(), if inotify => {}
                    Some((seq, status)) = self.delivery.answered() => self.delivery.ack(seq, status),
                    _ = tokio::time::sleep_until(wake_at.into()) => {}
                    _ = self.cx.shutdown.cancelled() => {}
                }
            } else {
                idle = Duration::from_millis(1);
            }
        }
        // Messages still being gathered go out now rather than wait for a restart.
        self.flush_multiline().await;
        // Shutdown: what was sent drains through the sinks; wait for their answers so
        // the final checkpoint covers everything delivered, but stop a second before
        // `shutdown_timeout_secs` runs out so the checkpoint is still written.
        let wait = self
            .cx
            .shutdown_timeout
            .saturating_sub(Duration::from_secs(1))
            .max(Duration::from_millis(100));
        self.delivery.finish(wait).await;
        self.open_gauge.set(0.0);
    }

    /// Reports how many files are open (and the peak) after the set of them changed.
    pub(super) fn files_changed(&mut self) {
        let open = self.files.len();
        self.open_gauge.set(open as f64);
        if open > self.open_peak {
            self.open_peak = open;
            self.open_peak_gauge.set(open as f64);
        }
    }

    /// The earliest moment the idle loop has work without being woken by inotify or an
    /// acknowledgement. `poll` is how often rotated files, which inotify no longer
    /// reports on, are read.
    fn next_due(&self, last_full: Instant, last_checkpoint: Instant, poll: Duration) -> Instant {
        let mut due = last_full + SAFETY_PASS;
        if self.delivery.is_dirty() {
            due = due.min(last_checkpoint + Duration::from_secs(1));
        }
        if let Some(d) = self.multiline.as_ref().and_then(|m| m.next_deadline()) {
            due = due.min(d);
        }
        if let Some(after) = self.config.remove_after_secs {
            for t in self.files.values().filter(|t| t.detached_since.is_none()) {
                due = due.min(t.last_data + Duration::from_secs(after));
            }
        }
        let wait = Duration::from_secs(self.config.rotate_wait_secs);
        for t in self.files.values() {
            if let Some(since) = t.detached_since {
                due = due.min(since.max(t.last_data) + wait);
                due = due.min(Instant::now() + poll);
            } else if t.finished {
                due = due.min(t.last_data + wait);
            }
        }
        // Timers are coarse: never spin on a moment that has just passed.
        due.max(Instant::now() + Duration::from_millis(5))
    }

    /// Reads every file once; returns the bytes read, or `None` when downstream is gone.
    async fn read_pass(
        &mut self,
        buf: &mut [u8],
        only: Option<&std::collections::HashSet<FileId>>,
    ) -> Option<usize> {
        let mut total = 0;
        let ids: Vec<FileId> = match only {
            Some(set) => set
                .iter()
                .filter(|id| self.files.contains_key(*id))
                .cloned()
                .collect(),
            None => self.files.keys().cloned().collect(),
        };
        let mut ids = ids;
        if self.config.oldest_first {
            ids.sort_by_key(|id| self.files.get(id).map(|t| t.born));
        }
        let delimiter = self.config.raw_delimiter();
        let now = Utc::now();
        let mut batch = Vec::new();
        let mut offsets: BTreeMap<FileId, (u64, PathBuf)> = BTreeMap::new();
        for mut id in ids {
            id = self.reidentify(id);
            let Some(t) = self.files.get_mut(&id) else {
                continue;
            };
            let mut lines = Vec::new();
            let mut was_truncated = false;
            let mut at_end = false;
            let before = total;
            // Up to max_read_bytes per file per pass (at least one read), for fairness
            // between files.
            while total - before < self.config.max_read_bytes {
                match t.read_lines(buf, &delimiter, self.config.max_line_bytes, &mut lines) {
                    Ok(Progress::Read(n)) => total += n,
                    Ok(Progress::Eof) => {
                        at_end = true;
                        break;
                    }
                    Ok(Progress::Truncated) => {
                        was_truncated = true;
                        break;
                    }
                    Err(e) => {
                        self.read_errors
                            .emit(|| format!("Reading {} failed: {e}", t.path.display()));
                        break;
                    }
                }
                if lines.len() >= MAX_BATCH_EVENTS {
                    break;
                }
            }
            // With oldest_first, a file that still had more to give holds the pass: newer
            // files wait until it is drained.
            let hold = self.config.oldest_first && total > before && !at_end && !was_truncated;
            if total > before || was_truncated {
                self.busy.insert(id.clone());
            } else {
                self.busy.remove(&id);
            }
            if was_truncated {
                self.truncations.increment(1);
                let read_up_to = lines.last().map(|l| l.end_offset).unwrap_or(t.offset);
                self.retired.insert(
                    id.clone(),
                    Retired {
                        read_up_to,
                        path: t.path.clone(),
                        searched: false,
                    },
                );
                self.truncated_now = true;
            }
            let lines = match &mut self.multiline {
                Some(agg) => {
                    let mut joined = Vec::with_capacity(lines.len());
                    for line in lines {
                        agg.push(&id, line, &mut joined);
                    }
                    // The last message of a quiet file goes out after timeout_ms; a
                    // truncated file's gathered message ends with the old content.
                    agg.flush(&id, was_truncated, &mut joined);
                    joined
                }
                None => lines,
            };
            if !lines.is_empty() {
                self.emit(&id, lines, now, &mut batch, &mut offsets);
            }
            if was_truncated {
                self.restart_truncated(&id);
            }
            // Bounded batches, however many files have data: memory stays flat and the
            // sinks' backpressure reaches the reading.
            if batch.len() >= MAX_BATCH_EVENTS {
                self.send(std::mem::take(&mut batch), std::mem::take(&mut offsets))
                    .await?;
            }
            if hold {
                break;
            }
        }
        self.send(batch, offsets).await.map(|()| total)
    }

    /// Emits every message the multiline aggregator still holds.
    async fn flush_multiline(&mut self) {
        let Some(agg) = &mut self.multiline else {
            return;
        };
        let mut per_file = Vec::new();
        for id in agg.pending() {
            let mut lines = Vec::new();
            agg.flush(&id, true, &mut lines);
            per_file.push((id, lines));
        }
        let (mut batch, mut offsets) = (Vec::new(), BTreeMap::new());
        for (id, lines) in per_file {
            self.emit(&id, lines, Utc::now(), &mut batch, &mut offsets);
        }
        let _ = self.send(batch, offsets).await;
    }

    /// A truncated file starts over from its first byte under a provisional identity,
    /// which frees its old one for the copy; its real one is taken once it has enough
    /// bytes (see `reidentify`).
    fn restart_truncated(&mut self, id: &FileId) {
        let Some(mut t) = self.files.remove(id) else {
            return;
        };
        if let Err(e) = t.restart() {
            self.io
                .emit(|| format!("Cannot restart {}: {e}", t.path.display()));
        }
        let provisional = format!("{PROVISIONAL}{}-{}", t.dev_ino.0, t.dev_ino.1);
        t.id = provisional.clone();
        // What was written since the truncation was announced before it was noticed:
        // read it now, not when inotify next speaks of this file.
        self.busy.insert(provisional.clone());
        self.files.insert(provisional, t);
    }

    /// Turns one file's lines into events.
    fn emit(
        &mut self,
        id: &FileId,
        lines: Vec<Line>,
        now: chrono::DateTime<Utc>,
        batch: &mut Vec<crate::event::Event>,
        offsets: &mut BTreeMap<FileId, (u64, PathBuf)>,
    ) {
        let Some(t) = self.files.get(id) else { return };
        {
            self.cx
                .metrics
                .received_bytes
                .increment(lines.iter().map(|l| l.bytes.len() as u64).sum());
            let path_value = Value::Bytes(Bytes::from(t.path.to_string_lossy().into_owned()));
            let last = lines.last().map(|l| l.end_offset).unwrap_or(t.offset);
            offsets.insert(id.clone(), (last, t.path.clone()));
            let t_path = t.path.clone();
            for Line {
                bytes,
                truncated,
                start_offset,
                ..
            } in lines
            {
                if truncated {
                    let max = self.config.max_line_bytes;
                    self.truncated.emit(|| {
                        format!(
                            "Line longer than max_line_bytes ({max}) in {} was truncated.",
                            t_path.display()
                        )
                    });
                }
                let message = match self.charset {
                    None => match String::from_utf8(bytes) {
                        Ok(s) => Bytes::from(s),
                        Err(e) => Bytes::from(String::from_utf8_lossy(e.as_bytes()).into_owned()),
                    },
                    Some(charset) => {
                        // A byte-order mark opens a file, not a line's text.
                        let text = if start_offset == 0 {
                            charset.decode_with_bom_removal(&bytes).0
                        } else {
                            charset.decode_without_bom_handling(&bytes).0
                        };
                        let text = text.strip_suffix('\r').unwrap_or(&text);
                        Bytes::from(text.to_string())
                    }
                };
                let mut fields = ObjectMap::new();
                fields.insert(self.config.file_key.as_str().into(), path_value.clone());
                fields.insert("host".into(), self.host.clone());
                fields.insert("message".into(), Value::Bytes(message));
                fields.insert("source_type".into(), Value::from("file"));
                fields.insert("timestamp".into(), Value::Timestamp(now));
                if let Some(k) = &self.config.offset_key {
                    fields.insert(k.as_str().into(), Value::Integer(start_offset as i64));
                }
                if self.renames {
                    crate::event::schema::log_schema().rename(&mut fields, &self.host_key);
                }
                batch.push(
                    LogEvent::from_parts(fields, EventMetadata::new(self.source_id, now)).into(),
                );
            }
        }
    }

    /// Sends a batch with a notifier whose answer moves the files' checkpoints. `None`
    /// when nothing downstream listens any more.
    async fn send(
        &mut self,
        mut batch: Vec<crate::event::Event>,
        offsets: BTreeMap<FileId, (u64, PathBuf)>,
    ) -> Option<()> {
        if batch.is_empty() {
            return Some(());
        }
        // One notifier per batch: its answer moves the checkpoints of these files.
        self.delivery.track(&mut batch, offsets);
        if !crate::sources::send_batch(&mut batch, &self.cx.metrics, &self.cx.out).await {
            return None;
        }
        Some(())
    }

    /// After a truncation the file is new content: once it has enough bytes, it is
    /// known (and checkpointed) by its new fingerprint. Returns the id to use now.
    fn reidentify(&mut self, id: FileId) -> FileId {
        let Some(t) = self.files.get(&id) else {
            return id;
        };
        if !t.needs_identity {
            return id;
        }
        let Ok(md) = t.file().metadata() else {
            return id;
        };
        let Ok(Some(new_id)) = self.fingerprinter.identify(t.file(), &md) else {
            return id;
        };
        if self.files.contains_key(&new_id) {
            // Begins like a file we follow (its copy, with a common first line): stays
            // provisional until it can be told apart. `fingerprint.lines` helps.
            return id;
        }
        let Some(mut t) = self.files.remove(&id) else {
            return id;
        };
        t.needs_identity = false;
        t.id = new_id.clone();
        self.files.insert(new_id.clone(), t);
        new_id
    }

    /// `remove_after_secs`: deletes files whose every line was delivered (the checkpoint
    /// is at their end, which is where reading stopped) and that nothing was written to
    /// for that long. The path must still lead to the open file, so a file that
    /// replaced it in the meantime is left alone.
    fn remove_delivered(&mut self) {
        use std::os::unix::fs::MetadataExt;
        let Some(after) = self.config.remove_after_secs.map(Duration::from_secs) else {
            return;
        };
        let mut removed = Vec::new();
        for (id, t) in &self.files {
            if t.detached_since.is_some() || t.last_data.elapsed() < after {
                continue;
            }
            let delivered = self.delivery.checkpoints.entries.get(id).map(|e| e.offset);
            if delivered != Some(t.offset) {
                continue;
            }
            let Ok(md) = std::fs::metadata(&t.path) else {
                continue;
            };
            if (md.dev(), md.ino()) != t.dev_ino || md.len() != t.offset {
                continue;
            }
            match std::fs::remove_file(&t.path) {
                Ok(()) => {
                    tracing::info!(component_id = %self.cx.id, path = %t.path.display(), "Removed a file whose lines were all delivered (remove_after_secs).");
                    removed.push(id.clone());
                }
                Err(e) => self.io.emit(|| {
                    format!(
                        "Cannot remove {} (remove_after_secs): {e}",
                        t.path.display()
                    )
                }),
            }
        }
        if !removed.is_empty() {
            for id in &removed {
                self.files.remove(id);
                self.busy.remove(id);
            }
            self.removed.increment(removed.len() as u64);
            self.files_changed();
        }
    }

    /// Closes rotated or deleted files that were read to their end long enough ago,
    /// remembering where reading stopped in those whose lines are not all delivered.
    fn release_detached(&mut self) {
        let wait = Duration::from_secs(self.config.rotate_wait_secs);
        let done: Vec<FileId> = self
            .files
            .iter()
            .filter(|(_, t)| match t.detached_since {
                Some(since) => since.elapsed() >= wait && t.last_data.elapsed() >= wait,
                // A compressed file read to its end is done.
                None => t.finished && t.last_data.elapsed() >= wait,
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in &done {
            let Some(t) = self.files.remove(id) else {
                continue;
            };
            self.busy.remove(id);
            let delivered = self.delivery.checkpoints.entries.get(id).map(|e| e.offset);
            if !id.starts_with(PROVISIONAL) && delivered.is_none_or(|d| d < t.offset) {
                if self.released.len() >= MAX_RELEASED {
                    // Only with a sink stalled for hundreds of rotations: the oldest
                    // entry's file, if found again, resumes from its checkpoint.
                    if let Some(k) = self.released.keys().next().cloned() {
                        self.released.remove(&k);
                    }
                }
                self.released.insert(id.clone(), t.offset);
            }
        }
        if !done.is_empty() {
            self.files_changed();
        }
        if !self.released.is_empty() {
            let checkpoints = &self.delivery.checkpoints.entries;
            self.released
                .retain(|id, at| checkpoints.get(id).is_none_or(|e| e.offset < *at));
        }
    }
}
