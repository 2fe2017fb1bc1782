//! The disk buffer (`buffer.type = "disk"`): what waits in front of a sink survives a
//! crash, a SIGKILL and a power loss, and memory does not grow with what waits.
//!
//! **Layout** under `data_dir/buffer/<sink id>/`: data files `data-<n>.dat` of at most
//! [`SEGMENT_BYTES`], a `ledger` (the id the next event gets), `reader.state` (where
//! delivery got to) and `buffer.lock`, held while a process uses the directory.
//!
//! **Records**: each batch that reaches the buffer is one record: a 24-byte header
//! (body length, event count, the id of its first event, a CRC32C of those three, a
//! CRC32C of the body) and the events in `event::codec` form. Every event has an id,
//! one more than the one before, so any gap (a record that fails its checksum, a torn
//! or truncated file, a file gone) is counted exactly: the ids the reader expected and
//! did not find are the events lost (`sluice_buffer_corrupted_events_total`).
//!
//! **Writing**, in the buffer's task on the pipeline's runtime, beside its sources and
//! its sink: it takes the batches the
//! upstream components put into a small memory queue in front of it, joins small ones
//! into records of up to `MAX_BATCH_EVENTS` events, and appends them with one `write`
//! per gathering. A second thread, the syncer, then `fsync`s, by default as soon as
//! asked, or at most every `sync_interval_ms`, and only then acknowledges the batches to
//! their sources (a file source's checkpoint, an HTTP client's answer): nothing is
//! acknowledged that a power loss could take back. Writing does not wait for the
//! `fsync`: what is written meanwhile is covered by the next one (group commit). The
//! syncer also saves where delivery got to and deletes the data files behind it, so
//! what waits for the disk (`fsync`, a position save, unlinking a 32 MiB file) never
//! runs on a worker. The task's own I/O is one `write` per gathering into the page
//! cache and, when delivery falls behind, the reads of the records it hands out: an
//! exception to "blocking file I/O stays off the workers", measured (see
//! [`spawn_task`]). When
//! `max_size` bytes wait, the task stops taking batches (`when_full = "block"`,
//! pressure reaches the sources) or drops them, counted (`drop_newest`).
//!
//! **Delivering**, on the same task: while the sink keeps up, a record just written is
//! handed to it as the events it was written from, not read back, so an event is built
//! and freed once and memory holds no more than the sink's channel (one record), the
//! gathering being written and the queue in front of it (one record's worth), as with a memory buffer. When the sink has no room for
//! a while, delivery falls behind and reads the disk (checking each record), while
//! writing goes on; it catches up by reaching the last few records written, kept as
//! events ([`TAIL_RECORDS`]). The position moves past a record only once the sink has
//! answered for it (delivered, or given up and counted it), and is saved (atomically)
//! at most once a second, before a data file is deleted, and at the end, so after a
//! crash everything not yet answered for is delivered again: at least once. A data
//! file is deleted once every record in it is answered for.
//!
//! **Reload**: a directory is opened once. A sink rebuilt by a reload joins the buffer
//! its old instance used (its task goes on); the old instance stops taking
//! from it and its successor takes over from where delivery got to.

use super::{memory_queue, BufferReceiver, BufferSender, WhenFull};
use crate::event::{codec, Batch, BatchNotifier, BatchStatus};
use crate::internal_events::{names, ComponentMetrics};
use crate::topology::component::BuildError;
use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify};

/// The largest data file: small enough that delivered space is given back soon, large
/// enough that rolling over is rare.
pub const SEGMENT_BYTES: u64 = 32 * 1024 * 1024;

/// The smallest `max_size` (Vector's figure): room for several data files.
pub const MIN_MAX_SIZE: u64 = 256 * 1024 * 1024;

/// `max_size` when the config does not say.
pub const DEFAULT_MAX_SIZE: u64 = 1024 * 1024 * 1024;

const HEADER: usize = 24;

/// A record larger than this is corrupt: a batch never comes near it.
const MAX_RECORD: u32 = 256 * 1024 * 1024;

/// Events in memory in front of the disk: one record's worth waits in the queue while
/// one is written and one is with the sink (its channel holds one). Twice as much ran
/// at the same speed with 17 to 27 MiB more peak RSS (measured, mean of 5 runs each).
const QUEUE_EVENTS: usize = crate::event::MAX_BATCH_EVENTS;
const OUT_RECORDS: usize = 1;

/// Records just written that the sink had no room for, kept as events: a reader that
/// fell behind and reaches them takes them instead of decoding them, which is how it
/// catches up with the writes again. Older ones are dropped (read from disk).
const TAIL_RECORDS: usize = 4;

/// How long a record just written waits for room in the sink's channel before it is
/// left on disk for later. While delivery keeps up, waiting costs less than falling
/// behind and decoding from disk (measured: once behind, it never caught up); a slow
/// or down destination costs each write this wait once, then the disk absorbs the
/// difference until delivery reaches the writes again. The writer waits rather than
/// writing on meanwhile: writing on (the record left in the tail) took the cores the
/// sink needed, delivery fell behind the tail and decoded from disk, and throughput
/// halved (measured on the load test's two cores).
const TAIL_WAIT: Duration = Duration::from_millis(50);

/// A record just written, with its events.
struct Tail {
    /// The id of its first event: what finds it (ids are never reused).
    first_id: u64,
    /// Where the next record starts.
    next: ReadPos,
    batch: Batch,
}

/// Indexes of [`Shared::handed`].
const DIRECT: usize = 0;
const FROM_TAIL: usize = 1;
const FROM_DISK: usize = 2;

/// Jobs waiting for the syncer before the buffer waits for it. It must hold the
/// writes made while one `fsync` runs: with `sync_interval_ms = 1000` that `fsync`
/// flushes a second of writes and takes 100 ms and more under load, at about 1,000
/// writes a second. With 64 the writer stalled for the rest of each such `fsync`, and
/// with it every source (8% of the throughput). A slot is a few dozen bytes; a disk
/// that stays behind still holds the writer back once it is full. A syncer asleep
/// until its interval is due is woken when it fills, takes what waits and sleeps on.
const SYNC_QUEUE: usize = 1024;

/// How often the reader saves where delivery got to.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// The options of one disk buffer.
#[derive(Clone, Debug)]
pub struct DiskOptions {
    /// Bytes on disk before the buffer counts as full.
    pub max_size: u64,
    /// `fsync` at most this often instead of after every write.
    pub sync_interval: Option<Duration>,
    /// What a full buffer does.
    pub when_full: WhenFull,
}

/// State shared by the writer, the reader and the receivers.
struct Shared {
    dir: PathBuf,
    id: Arc<str>,
    max_size: AtomicU64,
    /// Bytes of data files not wholly delivered.
    bytes: AtomicU64,
    /// Where the writer is: (file, offset, next event id), published after each write.
    written: Mutex<WritePos>,
    /// A receiver took the output over: the buffer's task goes back to where delivery
    /// got to.
    wake: Notify,
    /// Events written and not yet answered for.
    waiting: AtomicU64,
    /// Bumped each time a receiver takes the reader's output over: the reader then goes
    /// back to where delivery got to, so what the previous holder took and did not
    /// answer for (an instance a reload stopped mid-retry) is read again for the new one.
    takeovers: AtomicU64,
    /// Records handed to the sink as they were written, from the tail, and decoded from
    /// disk: how far behind delivery ran (the last is the costly one).
    handed: [AtomicU64; 3],
    /// The syncer's last save of the read position failed: the reader asks again.
    unsaved: AtomicBool,
    metrics: DiskMetrics,
}

/// What the reader hands out: batches tagged with the takeover they were read under; a
/// receiver drops those of an earlier one (they are read again).
pub(super) type Output = Arc<tokio::sync::Mutex<mpsc::Receiver<(u64, Batch)>>>;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct WritePos {
    file: u64,
    offset: u64,
    next_id: u64,
}

struct DiskMetrics {
    bytes: metrics::Gauge,
    events: metrics::Gauge,
    corrupted: metrics::Counter,
    errors: crate::internal_events::Reporter<crate::internal_events::failures::BufferFailed>,
}

/// One open disk buffer, joined by every receiver made for its directory.
pub(super) struct DiskBuffer {
    shared: Arc<Shared>,
    /// The upstream side: the memory queue in front of the writer.
    sender: super::WeakBufferSender,
    /// The reader's output; a receiver holds it while its sink runs.
    output: Output,
    /// What waits in the memory queue in front of the disk: only while the disk is full
    /// (or the writer behind), and lost if the process is stopped then.
    queue: super::BufferProbe,
}

/// The buffers whose task or syncer still runs: waited for at exit (see [`settle`]).
static LIVE: std::sync::LazyLock<Mutex<Vec<Weak<Shared>>>> =
    std::sync::LazyLock::new(Default::default);

/// Waits, up to `timeout`, until every disk buffer's reader has finished and saved where
/// delivery got to. Called once the pipeline has stopped: the process exiting before the
/// last save would make the next start deliver again what was delivered.
pub(crate) async fn settle(timeout: Duration) {
    let until = tokio::time::Instant::now() + timeout;
    loop {
        let running = {
            let mut live = LIVE.lock().unwrap_or_else(|p| p.into_inner());
            live.retain(|w| w.strong_count() > 0);
            live.len()
        };
        if running == 0 {
            return;
        }
        if tokio::time::Instant::now() >= until {
            tracing::warn!(
                buffers = running,
                "Disk buffers still busy at exit; what they delivered last may be delivered again after the next start."
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Directories open in this process.
static OPEN: std::sync::LazyLock<Mutex<HashMap<PathBuf, Weak<DiskBuffer>>>> =
    std::sync::LazyLock::new(Default::default);

fn io_err(what: String) -> impl FnOnce(std::io::Error) -> BuildError {
    move |source| BuildError::Io { what, source }
}

fn data_file(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("data-{n:010}.dat"))
}

fn data_files(dir: &Path) -> std::io::Result<Vec<u64>> {
    let mut ids: Vec<u64> = std::fs::read_dir(dir)?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let name = name.to_str()?;
            name.strip_prefix("data-")?
                .strip_suffix(".dat")?
                .parse()
                .ok()
        })
        .collect();
    ids.sort_unstable();
    Ok(ids)
}

/// The header of a record whose header checks out.
#[derive(Clone, Copy, Debug)]
struct Header {
    len: u32,
    count: u32,
    first_id: u64,
    body_crc: u32,
}

fn encode_header(len: u32, count: u32, first_id: u64, body_crc: u32) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[0..4].copy_from_slice(&len.to_le_bytes());
    h[4..8].copy_from_slice(&count.to_le_bytes());
    h[8..16].copy_from_slice(&first_id.to_le_bytes());
    let crc = crc32c::crc32c(&h[0..16]);
    h[16..20].copy_from_slice(&crc.to_le_bytes());
    h[20..24].copy_from_slice(&body_crc.to_le_bytes());
    h
}

fn decode_header(h: &[u8; HEADER]) -> Option<Header> {
    let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    if crc32c::crc32c(&h[0..16]) != u32_at(16) {
        return None;
    }
    let len = u32_at(0);
    let count = u32_at(4);
    if len > MAX_RECORD || count == 0 || count > len {
        return None;
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&h[8..16]);
    Some(Header {
        len,
        count,
        first_id: u64::from_le_bytes(id),
        body_crc: u32_at(20),
    })
}

/// Reads the record at `offset` of `file` (of `file_len` bytes): `Ok(Some)` a sound
/// record and its body, `Ok(None)` nothing sound there (torn, corrupt, or the end).
fn read_record(
    file: &File,
    offset: u64,
    file_len: u64,
) -> std::io::Result<Option<(Header, Vec<u8>)>> {
    if offset + HEADER as u64 > file_len {
        return Ok(None);
    }
    let mut h = [0u8; HEADER];
    file.read_exact_at(&mut h, offset)?;
    let Some(header) = decode_header(&h) else {
        return Ok(None);
    };
    let end = offset + HEADER as u64 + u64::from(header.len);
    if end > file_len {
        return Ok(None);
    }
    let mut body = vec![0u8; header.len as usize];
    file.read_exact_at(&mut body, offset + HEADER as u64)?;
    if crc32c::crc32c(&body) != header.body_crc {
        return Ok(None);
    }
    Ok(Some((header, body)))
}

/// The ledger: the id the next event gets, with a checksum; rewritten in place after
/// every write (no fsync of its own: the data files carry the truth, the ledger only
/// tells how many events a truncated last file held).
fn write_ledger(file: &File, next_id: u64) -> std::io::Result<()> {
    let mut b = [0u8; 12];
    b[0..8].copy_from_slice(&next_id.to_le_bytes());
    let crc = crc32c::crc32c(&b[0..8]);
    b[8..12].copy_from_slice(&crc.to_le_bytes());
    file.write_all_at(&b, 0)
}

fn read_ledger(path: &Path) -> Option<u64> {
    let b = std::fs::read(path).ok()?;
    let b: [u8; 12] = b.get(0..12)?.try_into().ok()?;
    let crc = u32::from_le_bytes([b[8], b[9], b[10], b[11]]);
    (crc32c::crc32c(&b[0..8]) == crc).then(|| {
        let mut id = [0u8; 8];
        id.copy_from_slice(&b[0..8]);
        u64::from_le_bytes(id)
    })
}

/// Where delivery got to: the next record to deliver and the id of its first event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ReadPos {
    file: u64,
    offset: u64,
    id: u64,
}

fn read_state(path: &Path) -> Option<ReadPos> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut it = text.split_whitespace().map(|s| s.parse::<u64>());
    let (Some(Ok(file)), Some(Ok(offset)), Some(Ok(id))) = (it.next(), it.next(), it.next()) else {
        return None;
    };
    Some(ReadPos { file, offset, id })
}

/// Saves the read position atomically: a temp file, fsync, rename.
fn write_state(dir: &Path, pos: ReadPos) -> std::io::Result<()> {
    let tmp = dir.join("reader.state.tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(format!("{} {} {}\n", pos.file, pos.offset, pos.id).as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join("reader.state"))
}

/// Opens the disk buffer of sink `id` under `data_dir`, or joins it if this process
/// has it open already (a sink rebuilt by a reload).
pub(super) fn open(
    data_dir: &Path,
    id: &str,
    options: &DiskOptions,
    metrics: ComponentMetrics,
) -> Result<(BufferSender, BufferReceiver), BuildError> {
    let dir = data_dir.join("buffer").join(id);
    let mut open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
    open.retain(|_, w| w.strong_count() > 0);
    if let Some(existing) = open.get(&dir).and_then(Weak::upgrade) {
        if let Some(sender) = existing.sender.upgrade() {
            existing
                .shared
                .max_size
                .store(options.max_size, Ordering::Relaxed);
            let rx = BufferReceiver::disk(existing.clone(), metrics);
            return Ok((sender, rx));
        }
    }
    let (shared, sender, output, queue) = start(&dir, id, options, metrics.clone())?;
    let shared = Arc::new(DiskBuffer {
        shared,
        sender: sender.downgrade(),
        output,
        queue,
    });
    open.insert(dir, Arc::downgrade(&shared));
    let rx = BufferReceiver::disk(shared, metrics);
    Ok((sender, rx))
}

type Started = (Arc<Shared>, BufferSender, Output, super::BufferProbe);

fn start(
    dir: &Path,
    id: &str,
    options: &DiskOptions,
    metrics: ComponentMetrics,
) -> Result<Started, BuildError> {
    std::fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("buffer.lock"))
        .map_err(io_err(format!(
            "opening {}",
            dir.join("buffer.lock").display()
        )))?;
    if lock.try_lock().is_err() {
        return Err(BuildError::Other(format!(
            "the disk buffer {} is in use by another sluice process (two processes with one data_dir?)",
            dir.display()
        )));
    }
    let errors = metrics.reporter::<crate::internal_events::failures::BufferFailed>();
    let dm = DiskMetrics {
        bytes: metrics.gauge(names::BUFFER_BYTE_SIZE),
        events: metrics.gauge(names::BUFFER_EVENTS),
        corrupted: metrics.counter(names::BUFFER_CORRUPTED_EVENTS),
        errors,
    };
    metrics
        .gauge(names::BUFFER_MAX_BYTE_SIZE)
        .set(options.max_size as f64);
    let recovered = recover(dir, &dm)?;
    let ledger = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(dir.join("ledger"))
        .map_err(io_err(format!("opening {}", dir.join("ledger").display())))?;
    let shared = Arc::new(Shared {
        dir: dir.to_path_buf(),
        id: Arc::from(id),
        max_size: AtomicU64::new(options.max_size),
        bytes: AtomicU64::new(recovered.bytes),
        written: Mutex::new(recovered.write),
        wake: Notify::new(),
        waiting: AtomicU64::new(recovered.write.next_id.saturating_sub(recovered.read.id)),
        takeovers: AtomicU64::new(0),
        handed: Default::default(),
        unsaved: AtomicBool::new(false),
        metrics: dm,
    });
    LIVE.lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(Arc::downgrade(&shared));
    shared.publish_gauges();
    shared
        .metrics
        .events
        .increment(shared.waiting.load(Ordering::Relaxed) as f64);
    // The queue always blocks: `when_full` is about the disk. A burst faster than the
    // writer waits for it, as a write does; only a full disk drops (`drop_newest`, in
    // `Writer::write`). A queue that dropped when full dropped events with the disk
    // nearly empty.
    let (tx, queue) = memory_queue(QUEUE_EVENTS, WhenFull::Block, metrics.clone());
    let (out_tx, out_rx) = mpsc::channel(OUT_RECORDS);
    // Bounded: a disk whose flushes fall behind the writes holds the writer back, and
    // through it the sources, instead of growing a list of unacknowledged writes.
    let (sync_tx, sync_rx) = std::sync::mpsc::sync_channel(SYNC_QUEUE);
    let syncer = Syncer {
        shared: shared.clone(),
        jobs: sync_rx,
        interval: options.sync_interval,
        kept_from: recovered.read.file,
    };
    let syncer_thread = std::thread::Builder::new()
        .name(format!("buffer-s-{id}"))
        .spawn(move || syncer.run())
        .map_err(io_err(format!("starting the syncer of {}", dir.display())))?
        .thread()
        .clone();
    let queue_probe = queue.probe();
    let writer = Writer {
        shared: shared.clone(),
        queue,
        buf: Vec::new(),
        file: None,
        ledger,
        syncer: ToSyncer {
            tx: Some(sync_tx.clone()),
            thread: syncer_thread.clone(),
        },
        created: false,
        when_full: options.when_full,
        dropped: metrics.discarded_unintentional.clone(),
        received: metrics.received_events.clone(),
        _lock: lock,
    };
    let reader_lock = writer
        ._lock
        .try_clone()
        .map_err(io_err(format!("sharing the lock of {}", dir.display())))?;
    let reader = Reader {
        shared: shared.clone(),
        out: Some(out_tx),
        takeover: 0,
        pos: recovered.read,
        expected: recovered.read.id,
        tail: VecDeque::with_capacity(TAIL_RECORDS + 1),
        file: None,
        answers: VecDeque::new(),
        delivered: recovered.read,
        pinned: false,
        saved: recovered.read,
        last_save: Instant::now(),
        syncer: ToSyncer {
            tx: Some(sync_tx),
            thread: syncer_thread,
        },
        counted: vec![recovered.counted],
        _lock: reader_lock,
    };
    spawn_task(format!("buffer-{id}"), run(writer, reader))?;
    // The queue closes once every upstream sender is gone: the buffer itself keeps only
    // a weak one, to hand out to a sink rebuilt by a reload.
    Ok((
        shared,
        tx,
        Arc::new(tokio::sync::Mutex::new(out_rx)),
        queue_probe,
    ))
}

/// Runs the buffer's task on the pipeline's runtime, beside its sources and its sink:
/// a record handed to the sink then runs on the same worker, as with a memory buffer.
/// On a thread of its own, every hand-over crossed threads and left cores idle: 2M
/// syslog messages into blackhole with `sync_interval_ms = 1000`, 3 runs each on 2
/// cores, 750k against 828k events/s. Its page-cache `write` (up to a gathering, tens
/// of microseconds) stays on the worker: inside `block_in_place` the same case ran at
/// 633k. Without a runtime (a tool that only opens the buffer), on a thread of its own.
fn spawn_task(
    name: String,
    fut: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), BuildError> {
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        handle.spawn(fut);
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(io_err(format!("starting the runtime of {name}")))?;
    std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || rt.block_on(fut))
        .map_err(io_err(format!("starting the thread {name}")))?;
    Ok(())
}

struct Recovered {
    write: WritePos,
    read: ReadPos,
    bytes: u64,
    /// Ids lost in a torn tail, already counted.
    counted: (u64, u64),
}

/// Finds where to write and where to read after a start: the end of the last sound
/// record of the last data file (a torn tail is cut off, and the events the ledger says
/// it held are counted as lost), and the saved read position (or the first record).
fn recover(dir: &Path, m: &DiskMetrics) -> Result<Recovered, BuildError> {
    let files = data_files(dir).map_err(io_err(format!("listing {}", dir.display())))?;
    let mut bytes = 0;
    for f in &files {
        bytes += std::fs::metadata(data_file(dir, *f))
            .map(|m| m.len())
            .unwrap_or(0);
    }
    let saved = read_state(&dir.join("reader.state"));
    let ledger = read_ledger(&dir.join("ledger"));
    let Some(&last) = files.last() else {
        // Nothing on disk: start afresh, ids going on from the ledger.
        let next = ledger.unwrap_or(0).max(saved.map_or(0, |s| s.id));
        return Ok(Recovered {
            write: WritePos {
                file: saved.map_or(0, |s| s.file),
                offset: 0,
                next_id: next,
            },
            read: ReadPos {
                file: saved.map_or(0, |s| s.file),
                offset: 0,
                id: next,
            },
            bytes: 0,
            counted: (0, 0),
        });
    };
    let path = data_file(dir, last);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io_err(format!("opening {}", path.display())))?;
    let len = file
        .metadata()
        .map_err(io_err(format!("reading {}", path.display())))?
        .len();
    // The end of the last sound record. A corrupt record in the middle is stepped over
    // (the reader counts it when it gets there); only what follows the last sound
    // record is a torn tail.
    let mut offset = 0;
    let mut end = 0;
    let mut next_id = None;
    while offset + HEADER as u64 <= len {
        match read_record(&file, offset, len) {
            Ok(Some((h, _))) => {
                offset += HEADER as u64 + u64::from(h.len);
                end = offset;
                next_id = Some(h.first_id + u64::from(h.count));
            }
            _ => offset += 1,
        }
    }
    let offset = end;
    let mut counted = (0, 0);
    if offset < len {
        // A torn or corrupt tail: what the ledger counted beyond the last sound record
        // is lost; the file is cut there so new records follow sound ones.
        let expected = next_id.unwrap_or(0);
        let lost = ledger.map_or(0, |l| l.saturating_sub(expected));
        m.corrupted.increment(lost);
        counted = (expected, expected + lost);
        m.errors.emit(|| {
            format!(
                "Disk buffer {}: {} bytes at the end of {} are torn or corrupt (offset {offset}); {lost} events lost, the rest is delivered.",
                dir.display(),
                len - offset,
                path.display()
            )
        });
        file.set_len(offset)
            .map_err(io_err(format!("truncating {}", path.display())))?;
        bytes -= len - offset;
    }
    let next_id = match next_id {
        Some(n) => n.max(ledger.unwrap_or(0)),
        // Only a torn record in the last file: ids go on past what the ledger counted.
        None => ledger.unwrap_or(0).max(saved.map_or(0, |s| s.id)),
    };
    let first = files[0];
    let read = match saved {
        Some(s) if s.file >= first => s,
        // No saved position, or it points before every file: from the first record.
        _ => ReadPos {
            file: first,
            offset: 0,
            id: saved.map_or(0, |s| s.id),
        },
    };
    Ok(Recovered {
        write: WritePos {
            file: last,
            offset,
            next_id,
        },
        read,
        bytes,
        counted,
    })
}

impl Shared {
    fn publish_gauges(&self) {
        self.metrics
            .bytes
            .set(self.bytes.load(Ordering::Relaxed) as f64);
    }

    fn write_pos(&self) -> WritePos {
        *self.written.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The writing side of the buffer's task: the queue in front of it and the data files.
struct Writer {
    shared: Arc<Shared>,
    queue: BufferReceiver,
    /// The encoded records of one gathering, kept for the next.
    buf: Vec<u8>,
    /// The data file written to, and its number.
    file: Option<(u64, Arc<File>)>,
    ledger: File,
    /// Where what is written goes to be made durable.
    syncer: ToSyncer,
    /// A data file was created that no request to the syncer has named yet.
    created: bool,
    when_full: WhenFull,
    dropped: metrics::Counter,
    /// The sink's `received_events`: those dropped here reached it too (as with a
    /// memory buffer's `drop_newest`), so its events still add up.
    received: metrics::Counter,
    _lock: File,
}

impl Writer {
    /// Whether the next batch may be taken: a full buffer that blocks takes none until
    /// delivery frees space (pressure reaches the sources); one that drops takes them
    /// and drops them, counted.
    fn has_room(&self) -> bool {
        self.when_full == WhenFull::DropNewest || !self.full()
    }

    fn full(&self) -> bool {
        self.shared.bytes.load(Ordering::Relaxed) >= self.shared.max_size.load(Ordering::Relaxed)
    }

    /// Writes `first` and what else the queue holds: joins small batches into records,
    /// appends them with one `write` per gathering, and hands the `fsync` (and with it
    /// the sources' acknowledgement) to the syncer. Returns the records written, with
    /// their events, in order.
    fn write(&mut self, first: Batch) -> Vec<Tail> {
        let first_len = first.len();
        let mut batches: Vec<Batch> = vec![first];
        let mut gathered = first_len;
        while gathered < QUEUE_EVENTS {
            match self.queue.try_recv_now() {
                Some(b) => {
                    gathered += b.len();
                    // Small batches become one record: fewer records to check, hand
                    // over and answer for, and larger batches for the sink.
                    match batches.last_mut() {
                        Some(last) if last.len() + b.len() <= crate::event::MAX_BATCH_EVENTS => {
                            if last.capacity() < last.len() + b.len() {
                                // Grown once to what a record may hold, not doubled
                                // batch by batch into ever larger fresh allocations.
                                last.reserve_exact(crate::event::MAX_BATCH_EVENTS - last.len());
                            }
                            last.extend(b)
                        }
                        _ => batches.push(b),
                    }
                }
                None => break,
            }
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let mut pos = self.shared.write_pos();
        let mut finalizers = Vec::with_capacity(batches.len());
        // The records written, and those in `buf` not yet written.
        let mut written: Vec<Tail> = Vec::with_capacity(batches.len());
        let mut staged: Vec<Tail> = Vec::with_capacity(batches.len());
        // Events in `buf`.
        let mut events = 0u64;
        for mut batch in batches {
            if self.when_full == WhenFull::DropNewest && self.full() {
                // Counted as discarded. As with a memory buffer's drop_newest, their
                // sources are not held back (a dropped event answers as a filtered one).
                self.dropped.increment(batch.len() as u64);
                self.received.increment(batch.len() as u64);
                continue;
            }
            let mut fin = crate::event::EventFinalizers::default();
            // Encoded in place after room for its header, filled in below.
            let start = buf.len();
            buf.resize(start + HEADER, 0);
            for e in &mut batch {
                fin.merge(e.take_finalizers());
                codec::encode(e, &mut buf);
            }
            let count = batch.len() as u32;
            let len = (buf.len() - start - HEADER) as u32;
            let header = encode_header(
                len,
                count,
                pos.next_id,
                crc32c::crc32c(&buf[start + HEADER..]),
            );
            buf[start..start + HEADER].copy_from_slice(&header);
            // Roll over before a file grows past its size.
            let record = (HEADER as u64) + u64::from(len);
            if pos.offset > 0 && pos.offset + (buf.len() as u64) > SEGMENT_BYTES {
                // This record goes to the next file: the ones before it are written
                // first, then it moves to the front of the same buffer (a new one,
                // grown again from nothing, took fresh pages at every file).
                match self.append(&mut pos, &buf[..start], events).and_then(|_| {
                    written.append(&mut staged);
                    self.roll(&mut pos)
                }) {
                    Ok(()) => {}
                    Err(e) => {
                        staged.clear();
                        self.failed(e, &mut finalizers);
                    }
                }
                buf.drain(..start);
                events = 0;
            }
            let offset = pos.offset + (buf.len() as u64) - record;
            staged.push(Tail {
                first_id: pos.next_id,
                next: ReadPos {
                    file: pos.file,
                    offset: offset + record,
                    id: pos.next_id + u64::from(count),
                },
                batch,
            });
            pos.next_id += u64::from(count);
            events += u64::from(count);
            finalizers.push(fin);
        }
        match self.append(&mut pos, &buf, events) {
            Ok(()) => written.append(&mut staged),
            Err(e) => self.failed(e, &mut finalizers),
        }
        self.buf = buf;
        if !finalizers.is_empty() {
            // Made durable by the syncer, which tells the sources; the writer goes on
            // writing meanwhile, and one fsync covers what was written during the one
            // before (group commit). A dropped finalizer would read as "delivered", so
            // every way out tells the sources something.
            let file = self.file.as_ref().map(|(n, f)| (*n, f.clone()));
            let refused = match file {
                None => Some((finalizers, "no data file is open")),
                // Blocks while the syncer is SYNC_QUEUE writes behind: the disk holds
                // back the buffer's thread and, through the queue, the sources.
                Some(file) => match self.syncer.send(Job::Flush(SyncRequest {
                    file,
                    finalizers,
                    created: self.created,
                })) {
                    Ok(()) => {
                        self.created = false;
                        None
                    }
                    Err(std::sync::mpsc::SendError(Job::Flush(r))) => {
                        Some((r.finalizers, "the syncer thread is gone"))
                    }
                    Err(_) => Some((Vec::new(), "the syncer thread is gone")),
                },
            };
            if let Some((mut finalizers, why)) = refused {
                self.failed(std::io::Error::other(why), &mut finalizers);
            }
        }
        self.shared.publish_gauges();
        written
    }

    /// Appends `buf` (records of `events` events) to the current data file and
    /// publishes the new end.
    fn append(&mut self, pos: &mut WritePos, buf: &[u8], events: u64) -> std::io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        if self.file.as_ref().is_none_or(|(n, _)| *n != pos.file) {
            let path = data_file(&self.shared.dir, pos.file);
            let f = OpenOptions::new().create(true).append(true).open(&path)?;
            self.file = Some((pos.file, Arc::new(f)));
            self.created = true;
        }
        let Some((_, file)) = self.file.as_ref() else {
            return Ok(());
        };
        (&**file).write_all(buf)?;
        pos.offset += buf.len() as u64;
        // Counted before the reader can see them, so its answers never go below zero.
        self.shared.waiting.fetch_add(events, Ordering::Relaxed);
        self.shared.metrics.events.increment(events as f64);
        self.shared
            .bytes
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        *self
            .shared
            .written
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = *pos;
        if let Err(e) = write_ledger(&self.ledger, pos.next_id) {
            // Only the count of a torn tail after a crash depends on it; the data is safe.
            self.shared.metrics.errors.emit(|| {
                format!(
                    "Disk buffer {}: updating the ledger failed: {e}; events lost to a crash right now would be counted short.",
                    self.shared.dir.display()
                )
            });
        }
        Ok(())
    }

    /// Closes the current data file and starts the next. The syncer makes the end of the
    /// old file durable, ahead of every request after it (it answers them in order), so
    /// nothing in either file is acknowledged before it is on disk. Syncing it here
    /// stalled the whole pipeline for each file's last flush (up to 32 MiB, several
    /// times a second under load with `sync_interval_ms`).
    fn roll(&mut self, pos: &mut WritePos) -> std::io::Result<()> {
        if let Some(old) = self.file.take() {
            self.syncer
                .send(Job::Flush(SyncRequest {
                    file: old,
                    finalizers: Vec::new(),
                    created: false,
                }))
                .map_err(|_| std::io::Error::other("the syncer thread is gone"))?;
        }
        pos.file += 1;
        pos.offset = 0;
        *self
            .shared
            .written
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = *pos;
        // The new file's entry in the directory must survive a power loss too: the
        // syncer syncs the directory before it acknowledges anything written to it.
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_file(&self.shared.dir, pos.file))?;
        self.file = Some((pos.file, Arc::new(f)));
        self.created = true;
        Ok(())
    }

    fn failed(&mut self, e: std::io::Error, finalizers: &mut Vec<crate::event::EventFinalizers>) {
        self.shared.metrics.errors.emit(|| {
            format!(
                "Disk buffer {}: writing failed: {e}; the sources of these events are told they were not kept.",
                self.shared.dir.display()
            )
        });
        for f in finalizers.drain(..) {
            f.update_status(BatchStatus::Errored);
        }
    }
}

/// What the syncer thread is asked to do.
enum Job {
    /// Make records durable, then tell their sources.
    Flush(SyncRequest),
    /// Save where delivery got to, then delete the data files wholly behind it.
    Save(ReadPos),
}

/// Records written, to be made durable before their sources are told.
struct SyncRequest {
    /// The data file they are in, and its number.
    file: (u64, Arc<File>),
    finalizers: Vec<crate::event::EventFinalizers>,
    /// A data file was created since the last request: the directory entry that names
    /// it must be made durable as well before these are acknowledged.
    created: bool,
}

/// The syncing thread: `fsync`s what the writer wrote and only then acknowledges it to
/// the sources. It runs beside the writer so that a write never waits for the disk's
/// flush: what is written while one `fsync` runs is covered by the next (group
/// commit), and no source is told before the `fsync` that covers its events returned.
/// It also does the reader's durable bookkeeping (position saves, deletes), which
/// would otherwise stall a worker of the pipeline's runtime.
struct Syncer {
    shared: Arc<Shared>,
    jobs: std::sync::mpsc::Receiver<Job>,
    /// `fsync` at most this often (`sync_interval_ms`), instead of as soon as asked.
    interval: Option<Duration>,
    /// The first data file that may still be on disk behind the saved position.
    kept_from: u64,
}

/// The way to the syncer thread, for the writer and the reader. With
/// `sync_interval_ms` the syncer sleeps until its next `fsync` is due instead of
/// waking for every write (about 1,000 a second under load, each a context switch on
/// 2 cores): a write request is only queued, and only what cannot wait wakes it (a
/// position save, which may free space a full buffer waits for; a full queue; the
/// handle going away at shutdown).
struct ToSyncer {
    /// `None` only while dropping: the syncer is woken after the channel lost it.
    tx: Option<std::sync::mpsc::SyncSender<Job>>,
    thread: std::thread::Thread,
}

impl ToSyncer {
    /// Hands `job` to the syncer, waiting while it is [`SYNC_QUEUE`] jobs behind (the
    /// disk holds back the buffer's task and, through the queue, the sources). On a
    /// multi-threaded runtime the wait gives up the worker's other tasks first.
    fn send(&self, job: Job) -> Result<(), std::sync::mpsc::SendError<Job>> {
        use std::sync::mpsc::{SendError, TrySendError};
        let Some(tx) = self.tx.as_ref() else {
            return Err(SendError(job));
        };
        let urgent = matches!(job, Job::Save(_));
        match tx.try_send(job) {
            Ok(()) => {
                if urgent {
                    self.thread.unpark();
                }
                Ok(())
            }
            Err(TrySendError::Disconnected(job)) => Err(SendError(job)),
            Err(TrySendError::Full(job)) => {
                self.thread.unpark();
                match tokio::runtime::Handle::try_current() {
                    Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                        tokio::task::block_in_place(|| tx.send(job))
                    }
                    _ => tx.send(job),
                }
            }
        }
    }
}

impl Drop for ToSyncer {
    /// The syncer ends once both handles are gone; woken, it does not sleep out its
    /// interval first.
    fn drop(&mut self) {
        drop(self.tx.take());
        self.thread.unpark();
    }
}

impl Syncer {
    /// Takes one job: a flush waits in `pending` for the next `fsync`; a save is done
    /// at once, since a full buffer may be waiting for the space it frees.
    fn take(&mut self, job: Job, pending: &mut Vec<SyncRequest>) {
        match job {
            Job::Flush(r) => pending.push(r),
            Job::Save(pos) => self.save(pos),
        }
    }

    /// Saves the read position, then deletes the data files wholly behind it. A
    /// crash must never leave the saved position inside a deleted file (its events
    /// would be counted as lost), so a failed save deletes nothing until one succeeds.
    fn save(&mut self, pos: ReadPos) {
        if let Err(e) = write_state(&self.shared.dir, pos) {
            self.shared.metrics.errors.emit(|| {
                format!(
                    "Disk buffer {}: saving the read position failed: {e}",
                    self.shared.dir.display()
                )
            });
            self.shared.unsaved.store(true, Ordering::Relaxed);
            return;
        }
        self.shared.unsaved.store(false, Ordering::Relaxed);
        if pos.file <= self.kept_from {
            return;
        }
        for f in self.kept_from..pos.file {
            let path = data_file(&self.shared.dir, f);
            let Ok(md) = std::fs::metadata(&path) else {
                continue;
            };
            if std::fs::remove_file(&path).is_ok() {
                let used = self.shared.bytes.load(Ordering::Relaxed);
                self.shared
                    .bytes
                    .fetch_sub(md.len().min(used), Ordering::Relaxed);
            }
        }
        self.kept_from = pos.file;
        self.shared.publish_gauges();
        // A full buffer that blocks looks again for room.
        self.shared.wake.notify_one();
    }

    fn run(mut self) {
        use std::sync::mpsc::TryRecvError;
        let mut last = Instant::now();
        while let Ok(first) = self.jobs.recv() {
            let mut pending = Vec::new();
            self.take(first, &mut pending);
            if pending.is_empty() {
                continue;
            }
            if let Some(every) = self.interval {
                // Asleep until the fsync is due: write requests queue up without
                // waking it; a save, a full queue or a handle gone does (`ToSyncer`).
                'due: loop {
                    let due = (last + every).saturating_duration_since(Instant::now());
                    if due.is_zero() {
                        break;
                    }
                    std::thread::park_timeout(due);
                    loop {
                        match self.jobs.try_recv() {
                            Ok(job) => self.take(job, &mut pending),
                            Err(TryRecvError::Empty) => break,
                            Err(TryRecvError::Disconnected) => break 'due,
                        }
                    }
                }
            }
            while let Ok(job) = self.jobs.try_recv() {
                self.take(job, &mut pending);
            }
            let mut status = BatchStatus::Delivered;
            let mut synced: Vec<u64> = Vec::with_capacity(2);
            for r in &pending {
                if synced.contains(&r.file.0) {
                    continue;
                }
                synced.push(r.file.0);
                if let Err(e) = r.file.1.sync_data() {
                    self.shared.metrics.errors.emit(|| {
                        format!(
                            "Disk buffer {}: fsync failed: {e}; the sources of these events are told they were not kept.",
                            self.shared.dir.display()
                        )
                    });
                    status = BatchStatus::Errored;
                }
            }
            // After the files: a new data file's name is made durable with its contents.
            if pending.iter().any(|r| r.created) {
                if let Err(e) = File::open(&self.shared.dir).and_then(|d| d.sync_all()) {
                    self.shared.metrics.errors.emit(|| {
                        format!(
                            "Disk buffer {}: syncing the directory failed: {e}; the sources of these events are told they were not kept.",
                            self.shared.dir.display()
                        )
                    });
                    status = BatchStatus::Errored;
                }
            }
            last = Instant::now();
            for r in pending {
                for f in r.finalizers {
                    f.update_status(status);
                }
            }
        }
    }
}

/// The buffer's task: takes batches from the queue and writes them, and hands the sink
/// what was written. While delivery keeps up, a record just written goes to the sink as
/// the events it was written from, straight away: the sink's channel and the gathering
/// being written are all the buffer holds in memory, and each event is built and freed
/// once, as with a memory buffer. When the sink has no room for a while (a slow or down
/// destination, or a receiver that took over), delivery falls behind and reads the
/// disk, while writing goes on; it catches up by reaching the last records written,
/// kept as events ([`TAIL_RECORDS`]).
async fn run(mut writer: Writer, mut reader: Reader) {
    let mut queue_open = true;
    loop {
        reader.collect();
        let written = writer.shared.write_pos();
        let caught_up = reader.caught_up(written);
        if caught_up && !queue_open {
            if reader.expected < written.next_id {
                reader.lost(written.next_id, "the end of the buffer");
            }
            break;
        }
        let Some(out) = reader.out.clone() else { break };
        tokio::select! {
            b = writer.queue.recv(), if queue_open && writer.has_room() => match b {
                Some(first) => {
                    let records = writer.write(first);
                    reader.deliver(records, &out).await;
                }
                None => queue_open = false,
            },
            permit = out.reserve(), if !caught_up => match permit {
                Ok(permit) => reader.send_from_disk(permit, written),
                // No receiver: the sink is gone; what is unread stays on disk.
                Err(_) => break,
            },
            // A receiver took over.
            _ = writer.shared.wake.notified() => {}
            // Answers move delivery on (and free space) while nothing else happens.
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
    // Nothing more is written: the syncer finishes what it was given and ends.
    drop(writer);
    reader.finish().await;
}

/// A batch handed to the sink, waiting for its answer.
struct Answer {
    /// Where the next record starts once this one is answered for.
    next: ReadPos,
    events: u64,
    rx: tokio::sync::oneshot::Receiver<BatchStatus>,
}

/// The reading side of the buffer's task: what goes to the sink, and where delivery got to.
struct Reader {
    shared: Arc<Shared>,
    out: Option<mpsc::Sender<(u64, Batch)>>,
    /// The takeover the batches handed out belong to.
    takeover: u64,
    /// The next record to hand out.
    pos: ReadPos,
    /// The id the next sound record should start with; a larger one means events lost.
    expected: u64,
    /// Records written that the sink had no room for, as events, oldest first.
    tail: VecDeque<Tail>,
    file: Option<(u64, File)>,
    answers: VecDeque<Answer>,
    /// Where delivery got to.
    delivered: ReadPos,
    /// A batch failed (the sink gave up on it, or shutdown abandoned it): delivery stops
    /// moving there until restart, which delivers it again, as a file source's
    /// checkpoint does.
    pinned: bool,
    /// Where delivery got to, as last handed to the syncer to save.
    saved: ReadPos,
    /// Saves positions and deletes what is behind them.
    syncer: ToSyncer,
    last_save: Instant,
    /// Id ranges whose loss was counted, so no gap is counted twice.
    counted: Vec<(u64, u64)>,
    /// The directory stays locked until the reader, too, is done with it.
    _lock: File,
}

impl Reader {
    /// Whether every record written has been handed out.
    fn caught_up(&self, written: WritePos) -> bool {
        self.pos.file == written.file && self.pos.offset >= written.offset
    }

    /// Hands records just written to the sink, in order, while it has room for them
    /// within [`TAIL_WAIT`] and nothing written before them still waits; the rest are
    /// kept in the tail, for when delivery gets there.
    async fn deliver(&mut self, records: Vec<Tail>, out: &mpsc::Sender<(u64, Batch)>) {
        let mut direct = true;
        for t in records {
            // Ids are consecutive and never reused: the record whose first id is the
            // one expected is the next one to hand out, wherever it starts.
            if direct && self.tail.is_empty() && t.first_id == self.expected {
                if let Ok(Ok(permit)) = tokio::time::timeout(TAIL_WAIT, out.reserve()).await {
                    if self.takeover == self.shared.takeovers.load(Ordering::Acquire) {
                        self.pos = t.next;
                        self.expected = t.next.id;
                        self.send(permit, t.next, t.batch);
                        self.shared.handed[DIRECT].fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                }
                direct = false;
            }
            self.tail.push_back(t);
            if self.tail.len() > TAIL_RECORDS {
                self.tail.pop_front();
            }
        }
    }

    /// Hands the sink the next record, which is behind the last one written: from the
    /// tail if it is there, else read from disk.
    fn send_from_disk(&mut self, permit: mpsc::Permit<'_, (u64, Batch)>, written: WritePos) {
        if self.takeover != self.shared.takeovers.load(Ordering::Acquire) {
            // Taken over while waiting: the next round goes back to where delivery got to.
            return;
        }
        match self.next_record() {
            Some((next, batch)) => self.send(permit, next, batch),
            None => {
                if !self.advance_file(written) && self.pos.file == written.file {
                    // Nothing sound up to the end of what was written (its loss is
                    // counted at the next sound record): wait for the next write.
                    self.pos.offset = self.pos.offset.max(written.offset);
                }
            }
        }
    }

    fn send(&mut self, permit: mpsc::Permit<'_, (u64, Batch)>, next: ReadPos, mut batch: Batch) {
        let events = batch.len() as u64;
        let rx = BatchNotifier::attach(&mut batch);
        permit.send((self.takeover, batch));
        self.answers.push_back(Answer { next, events, rx });
    }

    /// Nothing more is written: the sink sees the end, and its last answers still count.
    async fn finish(mut self) {
        let h = &self.shared.handed;
        tracing::debug!(
            buffer = %self.shared.dir.display(),
            direct = h[DIRECT].load(Ordering::Relaxed),
            from_tail = h[FROM_TAIL].load(Ordering::Relaxed),
            from_disk = h[FROM_DISK].load(Ordering::Relaxed),
            "Disk buffer closed; records handed to the sink as written, from the tail and read back from disk."
        );
        self.out = None;
        self.tail.clear();
        while let Some(a) = self.answers.pop_front() {
            let status = a.rx.await.unwrap_or(BatchStatus::Errored);
            self.answered(a.next, a.events, status);
        }
        self.save();
    }

    /// A new receiver took the output: start again from where delivery got to.
    fn follow_takeover(&mut self) {
        let now = self.shared.takeovers.load(Ordering::Acquire);
        if now == self.takeover {
            return;
        }
        self.takeover = now;
        self.answers.clear();
        self.pinned = false;
        self.pos = self.delivered;
        self.expected = self.delivered.id;
        self.file = None;
    }

    /// Takes the answers that arrived, in order.
    fn collect(&mut self) {
        self.follow_takeover();
        while let Some(a) = self.answers.front_mut() {
            let status = match a.rx.try_recv() {
                Ok(s) => s,
                Err(tokio::sync::oneshot::error::TryRecvError::Closed) => BatchStatus::Errored,
                Err(tokio::sync::oneshot::error::TryRecvError::Empty) => break,
            };
            // A receiver that took over drops the batches read for its predecessor,
            // which answers "delivered"; it bumped the takeover count first, so that
            // answer is seen here as stale and the batch is read again instead.
            if self.shared.takeovers.load(Ordering::Acquire) != self.takeover {
                self.follow_takeover();
                return;
            }
            if let Some(a) = self.answers.pop_front() {
                self.answered(a.next, a.events, status);
            }
        }
        let retry = self.shared.unsaved.load(Ordering::Relaxed);
        if (self.delivered != self.saved || retry) && self.last_save.elapsed() >= SAVE_EVERY {
            self.save();
        }
    }

    /// The sink answered for a batch: delivery moves past it, and data files wholly
    /// behind delivery are deleted.
    fn answered(&mut self, next: ReadPos, events: u64, status: BatchStatus) {
        self.shared.waiting.fetch_sub(
            events.min(self.shared.waiting.load(Ordering::Relaxed)),
            Ordering::Relaxed,
        );
        self.shared.metrics.events.decrement(events as f64);
        if status == BatchStatus::Errored && !self.pinned {
            self.pinned = true;
            let (dir, at) = (self.shared.dir.clone(), self.delivered);
            self.shared.metrics.errors.emit(|| {
                format!(
                    "Disk buffer {}: a batch was not delivered; the buffer keeps everything from data-{:010}.dat offset {} and delivers it again after a restart.",
                    dir.display(),
                    at.file,
                    at.offset
                )
            });
        }
        if self.pinned {
            return;
        }
        let from = self.delivered;
        self.delivered = next;
        if next.file > from.file {
            // Saved at once: the syncer deletes the files behind the saved position.
            self.save();
        }
    }

    /// Has the syncer save where delivery got to (and delete what is behind it).
    fn save(&mut self) {
        let pos = self.delivered;
        if self.syncer.send(Job::Save(pos)).is_err() {
            self.shared.metrics.errors.emit(|| {
                format!(
                    "Disk buffer {}: saving the read position failed: the syncer thread is gone",
                    self.shared.dir.display()
                )
            });
        }
        self.saved = pos;
        self.last_save = Instant::now();
    }

    fn lost(&mut self, up_to: u64, where_: &str) {
        let gap = up_to - self.expected;
        self.shared.metrics.events.decrement(gap as f64);
        let waiting = self.shared.waiting.load(Ordering::Relaxed);
        self.shared
            .waiting
            .fetch_sub(gap.min(waiting), Ordering::Relaxed);
        // Less what was counted already: a torn tail cut off when the buffer was
        // opened, or this same gap met before a takeover sent the reader back.
        let from = self.expected;
        let seen: u64 = self
            .counted
            .iter()
            .map(|(a, b)| up_to.min(*b).saturating_sub(from.max(*a)))
            .sum();
        let n = gap.saturating_sub(seen);
        self.counted.push((from, up_to));
        if n == 0 {
            self.expected = up_to;
            return;
        }
        self.shared.metrics.corrupted.increment(n);
        let (dir, file, offset) = (self.shared.dir.clone(), self.pos.file, self.pos.offset);
        self.shared.metrics.errors.emit(|| {
            format!(
                "Disk buffer {}: {n} events lost to corruption before {where_} (data-{file:010}.dat, offset {offset}); delivery goes on after them.",
                dir.display()
            )
        });
        self.expected = up_to;
    }

    /// Reads the record at the read position: the position after it and its events.
    /// A corrupt stretch is skipped to the next sound record (counted when found).
    fn next_record(&mut self) -> Option<(ReadPos, Batch)> {
        if let Some(t) = self.take_tail() {
            self.shared.handed[FROM_TAIL].fetch_add(1, Ordering::Relaxed);
            self.pos = t.next;
            self.expected = t.next.id;
            return Some((t.next, t.batch));
        }
        let (expected, mut offset) = (self.expected, self.pos.offset);
        let file = self.open_current()?;
        let len = file.metadata().ok()?.len();
        let found = loop {
            match read_record(file, offset, len) {
                Ok(Some(r)) if r.0.first_id >= expected => break Some((offset, r)),
                Ok(Some(r)) => {
                    // A sound record of ids already passed (a resync landed inside
                    // delivered data): step over it.
                    offset += HEADER as u64 + u64::from(r.0.len);
                }
                Ok(None) | Err(_) => {
                    // The writer may be mid-write at the very end: only look further
                    // where the file holds more.
                    if offset + HEADER as u64 >= len {
                        break None;
                    }
                    offset += 1;
                }
            }
        };
        let Some((at, (h, body))) = found else {
            if offset > self.pos.offset {
                self.pos.offset = offset;
            }
            return None;
        };
        if h.first_id > self.expected {
            self.pos.offset = at;
            self.lost(h.first_id, "a sound record");
        }
        self.shared.handed[FROM_DISK].fetch_add(1, Ordering::Relaxed);
        let body = bytes::Bytes::from(body);
        let mut d = codec::Decoder::shared(&body);
        let mut batch = Vec::with_capacity(h.count as usize);
        for _ in 0..h.count {
            match d.event() {
                Ok(e) => batch.push(e),
                Err(_) => break,
            }
        }
        let next = ReadPos {
            file: self.pos.file,
            offset: at + HEADER as u64 + u64::from(h.len),
            id: h.first_id + u64::from(h.count),
        };
        if batch.len() < h.count as usize {
            // A record that checks out but does not decode: written by another version.
            let missing = u64::from(h.count) - batch.len() as u64;
            self.shared.metrics.corrupted.increment(missing);
            let dir = self.shared.dir.clone();
            self.shared.metrics.errors.emit(|| {
                format!("Disk buffer {}: {missing} events could not be decoded (another sluice version?).", dir.display())
            });
        }
        self.pos = next;
        self.expected = next.id;
        Some((next, batch))
    }

    /// The writer's copy of the record at the read position, if it has one. Copies of
    /// records already passed are dropped; those further on are kept for later.
    fn take_tail(&mut self) -> Option<Tail> {
        while let Some(t) = self.tail.front() {
            if t.first_id > self.expected {
                return None;
            }
            let t = self.tail.pop_front()?;
            if t.first_id == self.expected {
                return Some(t);
            }
        }
        None
    }

    fn open_current(&mut self) -> Option<&File> {
        let stale = !matches!(&self.file, Some((n, _)) if *n == self.pos.file);
        if stale {
            let f = File::open(data_file(&self.shared.dir, self.pos.file)).ok();
            self.file = f.map(|f| (self.pos.file, f));
        }
        self.file.as_ref().map(|(_, f)| f)
    }

    /// At the end of a file that is not the one written to: on to the next file.
    fn advance_file(&mut self, written: WritePos) -> bool {
        if self.pos.file >= written.file {
            return false;
        }
        let next = data_files(&self.shared.dir)
            .ok()
            .and_then(|fs| fs.into_iter().find(|f| *f > self.pos.file))
            .unwrap_or(written.file);
        self.pos = ReadPos {
            file: next,
            offset: 0,
            id: self.pos.id,
        };
        self.file = None;
        true
    }
}

impl DiskBuffer {
    /// The reader's output, held by one receiver at a time.
    pub(super) fn output(&self) -> Output {
        self.output.clone()
    }

    /// A receiver took the output over: the reader starts again from where delivery
    /// got to; batches tagged with an earlier takeover are to be dropped.
    pub(super) fn take_over(&self) -> u64 {
        let n = self.shared.takeovers.fetch_add(1, Ordering::AcqRel) + 1;
        self.shared.wake.notify_one();
        n
    }

    /// Records handed out directly, from the tail and from disk, so far.
    #[cfg(test)]
    pub(super) fn handed(&self) -> [u64; 3] {
        let h = &self.shared.handed;
        [DIRECT, FROM_TAIL, FROM_DISK].map(|i| h[i].load(Ordering::Relaxed))
    }

    /// Events in memory in front of the disk, not yet written.
    pub(super) fn in_memory(&self) -> u64 {
        self.queue.queued()
    }

    /// Events written and not yet answered for.
    pub(super) fn waiting(&self) -> u64 {
        self.shared.waiting.load(Ordering::Relaxed)
    }

    /// The sink's ID, for logs.
    pub(super) fn id(&self) -> &str {
        &self.shared.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventMetadata, LogEvent, ObjectMap};
    use crate::internal_events::{ComponentKind, ComponentLabels};

    fn numbered(from: i64, n: i64) -> Batch {
        numbered_with(from, n, None)
    }

    /// Events numbered from `from` in field `n`, with `pad` in field `pad` if given.
    fn numbered_with(from: i64, n: i64, pad: Option<&str>) -> Batch {
        (from..from + n)
            .map(|i| {
                let mut log = LogEvent::from_parts(
                    ObjectMap::new(),
                    EventMetadata::new("t", chrono::Utc::now()),
                );
                log.insert("n", i);
                if let Some(pad) = pad {
                    log.insert("pad", pad);
                }
                log.into()
            })
            .collect()
    }

    fn numbers(batch: &Batch) -> Vec<i64> {
        batch
            .iter()
            .filter_map(|e| e.as_log()?.get("n")?.as_integer())
            .collect()
    }

    fn opened(dir: &Path) -> (BufferSender, BufferReceiver) {
        opened_with(dir, None)
    }

    fn opened_with(dir: &Path, sync_interval: Option<Duration>) -> (BufferSender, BufferReceiver) {
        opened_as(
            dir,
            DiskOptions {
                max_size: MIN_MAX_SIZE,
                sync_interval,
                when_full: WhenFull::Block,
            },
        )
    }

    fn opened_as(dir: &Path, options: DiskOptions) -> (BufferSender, BufferReceiver) {
        let metrics = ComponentMetrics::new(ComponentLabels {
            id: "t".into(),
            kind: ComponentKind::Sink,
            type_name: "test",
        });
        match open(dir, "t", &options, metrics) {
            Ok(pair) => pair,
            Err(e) => panic!("opening the buffer: {e}"),
        }
    }

    /// Events of about 4 KiB, numbered from `from`: a buffer fills in few of them.
    fn padded(from: i64, n: i64) -> Batch {
        numbered_with(from, n, Some(&"x".repeat(4096)))
    }

    /// Takes batches from the sink's end until `n` events came or, after a batch,
    /// `done()` holds; panics if none comes for 30 s.
    async fn take_events(rx: &mut BufferReceiver, n: usize, done: impl Fn() -> bool) {
        let mut got = 0;
        while got < n {
            match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
                Ok(Some(b)) => got += b.len(),
                other => panic!("stalled at {got}: {:?}", other.map(|b| b.map(|b| b.len()))),
            }
            if done() {
                break;
            }
        }
    }

    /// Sends 12 batches of 1,000 events of 4 KiB, past the first 32 MiB data file, and
    /// hands the sender back (the queue stays open until it is dropped).
    fn past_the_first_file(tx: BufferSender) -> tokio::task::JoinHandle<BufferSender> {
        tokio::spawn(async move {
            for b in 0..12 {
                if tx.send(padded(b * 1000, 1000)).await.is_err() {
                    break;
                }
            }
            tx
        })
    }

    /// Bytes in the buffer's data files.
    fn on_disk(dir: &Path) -> u64 {
        data_files(&dir.join("buffer").join("t"))
            .unwrap_or_default()
            .iter()
            .filter_map(|n| std::fs::metadata(data_file(&dir.join("buffer").join("t"), *n)).ok())
            .map(|m| m.len())
            .sum()
    }

    /// What `fill_then_read` saw.
    struct Filled {
        /// The sender was waiting once the sink stopped taking.
        held_back: bool,
        /// Bytes in data files then.
        on_disk: u64,
        /// What a shutdown report would have said then: events kept on disk, and
        /// events only in memory.
        kept: u64,
        in_memory: u64,
        /// What the sink received afterwards, and how many were sent.
        got: Vec<i64>,
        total: i64,
    }

    /// Fills a buffer of `max_size` bytes (a data file and a quarter) with half as much
    /// again while the sink takes nothing, then lets the sink read it.
    async fn fill_then_read(dir: &Path, when_full: WhenFull) -> Filled {
        let max_size = SEGMENT_BYTES + SEGMENT_BYTES / 4;
        let (tx, mut rx) = opened_as(
            dir,
            DiskOptions {
                max_size,
                sync_interval: None,
                when_full,
            },
        );
        let total = (max_size * 3 / 2 / 4096) as i64;
        let sent = Arc::new(AtomicU64::new(0));
        let sender = tokio::spawn({
            let sent = sent.clone();
            async move {
                let mut next = 0;
                while next < total {
                    let n = 100.min(total - next);
                    if tx.send(padded(next, n)).await.is_err() {
                        break;
                    }
                    next += n;
                    sent.store(next as u64, Ordering::Relaxed);
                }
            }
        });
        // The sink takes nothing until what was sent stops growing for a second.
        let mut last = u64::MAX;
        for _ in 0..60 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let now = sent.load(Ordering::Relaxed);
            if now == last || sender.is_finished() {
                break;
            }
            last = now;
        }
        let held_back = !sender.is_finished();
        let full = on_disk(dir);
        let probe = rx.probe();
        let (kept, in_memory) = (probe.queued(), probe.in_memory());
        assert!(
            full >= max_size,
            "the buffer stopped at {full} bytes, below its max_size of {max_size}"
        );
        let mut got = Vec::new();
        loop {
            match tokio::time::timeout(Duration::from_secs(3), rx.recv()).await {
                Ok(Some(b)) => got.extend(numbers(&b)),
                Ok(None) => break,
                // Nothing more comes: everything kept was delivered.
                Err(_) => break,
            }
            if got.last() == Some(&(total - 1)) {
                break;
            }
        }
        let finished = tokio::time::timeout(Duration::from_secs(30), sender)
            .await
            .is_ok();
        assert!(finished, "the sender was still held back after delivery");
        Filled {
            held_back,
            on_disk: full,
            kept,
            in_memory,
            got,
            total,
        }
    }

    /// `when_full = "block"`: a full buffer takes nothing more, so its senders wait,
    /// until delivery frees space (a whole data file delivered and deleted); then it
    /// takes the rest. Nothing is dropped, nothing comes twice or out of order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_buffer_that_blocks_holds_its_senders_until_delivery_frees_space() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = fill_then_read(dir.path(), WhenFull::Block).await;
        assert!(f.held_back, "the sender was not held back by a full buffer");
        assert_eq!(
            f.got,
            (0..f.total).collect::<Vec<_>>(),
            "lost, doubled or out of order"
        );
        // A shutdown then keeps what is on disk and must report what waits in front of
        // it as lost, not as kept.
        assert!(
            f.kept > 0 && f.in_memory > 0,
            "a full disk buffer reports {} events kept and {} in memory",
            f.kept,
            f.in_memory
        );
    }

    /// `when_full = "drop_newest"`: a full buffer never holds its senders back; what did
    /// not fit is dropped (counted), and what was kept is delivered in order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_buffer_that_drops_never_waits_and_delivers_what_it_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let Filled {
            held_back,
            on_disk: full,
            in_memory,
            got,
            total,
            ..
        } = fill_then_read(dir.path(), WhenFull::DropNewest).await;
        assert!(!held_back, "a drop_newest buffer held its sender back");
        assert_eq!(in_memory, 0, "events left in memory in front of the disk");
        assert!(
            (got.len() as i64) < total,
            "nothing was dropped though the buffer was full"
        );
        assert!(
            got.windows(2).all(|w| w[0] < w[1]),
            "delivered twice or out of order"
        );
        // At least what filled the disk was kept.
        assert!(
            got.len() as u64 * 4096 >= full * 9 / 10,
            "kept {} events of {total}",
            got.len()
        );
    }

    /// Once delivery moves past a data file, the file is deleted only after the read
    /// position was saved beyond it: a crash right then must not leave the saved
    /// position inside a deleted file (the next start counted its events as lost).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_read_position_is_saved_before_a_delivered_file_is_deleted() {
        delivered_file_goes_once_saved(None).await;
    }

    /// The syncer sleeps through its interval while writes queue up, but a save wakes
    /// it: delivered files go at once, not a minute later (a full buffer that blocks
    /// waits for that space).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_save_does_not_wait_for_a_long_sync_interval() {
        delivered_file_goes_once_saved(Some(Duration::from_secs(60))).await;
    }

    async fn delivered_file_goes_once_saved(sync_interval: Option<Duration>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (tx, mut rx) = opened_with(dir.path(), sync_interval);
        let buffer_dir = dir.path().join("buffer").join("t");
        let first = data_file(&buffer_dir, 0);
        // Kept open: the writer ending would wake the syncer too.
        let sender = past_the_first_file(tx);
        take_events(&mut rx, 12_000, || !first.exists()).await;
        // The moment the first file is gone, the saved position is past it.
        first_file_goes_after_the_position_moves_past_it(&buffer_dir, "").await;
        drop(rx);
        drop(sender.await);
    }

    /// Waits (up to 10 s) for the first data file to be deleted, then checks that the
    /// saved read position is past it.
    async fn first_file_goes_after_the_position_moves_past_it(buffer_dir: &Path, when: &str) {
        let first = data_file(buffer_dir, 0);
        let deadline = Instant::now() + Duration::from_secs(10);
        while first.exists() {
            assert!(
                Instant::now() < deadline,
                "the first data file was never deleted{when}"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let saved = read_state(&buffer_dir.join("reader.state")).expect("a saved position");
        assert!(saved.file >= 1, "saved inside the deleted file: {saved:?}");
    }

    /// A read position that cannot be saved keeps the data files behind it: deleting
    /// them would leave the saved position inside a deleted file. Once a save works
    /// again, they go.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn delivered_files_stay_until_the_read_position_is_saved() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (tx, mut rx) = opened(dir.path());
        let buffer_dir = dir.path().join("buffer").join("t");
        let first = data_file(&buffer_dir, 0);
        // A directory where the save writes its temp file: every save fails.
        let blocker = buffer_dir.join("reader.state.tmp");
        std::fs::create_dir_all(&blocker).expect("blocker");
        let sender = past_the_first_file(tx);
        take_events(&mut rx, 12_000, || false).await;
        // Everything is delivered, the reader is past the first file, and its saves
        // have failed for more than a second.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(first.exists(), "deleted although no save succeeded");
        std::fs::remove_dir(&blocker).expect("unblock");
        first_file_goes_after_the_position_moves_past_it(&buffer_dir, " after a save worked again")
            .await;
        drop(rx);
        drop(sender.await);
    }

    /// A sink that keeps up takes the writer's copies of the records; one that falls
    /// behind reads them back from disk. Either way every event comes once, in order,
    /// with its fields, and what the sink answered for is not delivered again after a
    /// restart.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn events_come_once_in_order_whether_the_sink_keeps_up_or_falls_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (tx, mut rx) = opened(dir.path());
        let total: i64 = 60_000;
        let sender = tokio::spawn(async move {
            let mut next = 0;
            let mut size = 1;
            while next < total {
                let n = size.min(total - next);
                if tx.send(numbered(next, n)).await.is_err() {
                    break;
                }
                next += n;
                size = size % 700 + 37;
                if next % 7 == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        });
        let mut expected = 0;
        let mut batches = 0;
        while expected < total {
            let batch = match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
                Ok(Some(b)) => b,
                other => panic!(
                    "stalled at {expected}: {:?}",
                    other.map(|b| b.map(|b| b.len()))
                ),
            };
            let got = numbers(&batch);
            let want: Vec<i64> = (expected..expected + got.len() as i64).collect();
            assert_eq!(got, want, "out of order or missing after {expected}");
            assert_eq!(got.len(), batch.len(), "an event lost its field");
            expected += got.len() as i64;
            batches += 1;
            // Now and then a sink slower than TAIL_WAIT: writing gets ahead, and
            // delivery reads the disk until it reaches the records kept as events.
            if batches % 40 == 0 {
                tokio::time::sleep(TAIL_WAIT * 3).await;
            }
        }
        sender.await.expect("sender");
        let handed = rx.disk_handed().expect("a disk buffer");
        assert!(
            handed.iter().all(|n| *n > 0),
            "every way of handing out was used: direct, from the tail, from disk: {handed:?}"
        );
        drop(rx);
        // Delivery was answered for (the batches were dropped as delivered): a new
        // process finds nothing to deliver again.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (tx2, mut rx2) = opened(dir.path());
        drop(tx2);
        match tokio::time::timeout(Duration::from_secs(10), rx2.recv()).await {
            Ok(None) => {}
            Ok(Some(b)) => panic!("delivered again: {:?}", numbers(&b)),
            Err(_) => panic!("the reopened buffer did not end"),
        }
    }

    /// A data file fills up and the next one starts: the syncer, not the writer,
    /// flushes the end of the full one, and every batch on either side of the change is
    /// acknowledged, once, as kept.
    async fn batches_across_a_new_data_file_are_all_acknowledged(sync_interval: Option<Duration>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (tx, mut rx) = opened_with(dir.path(), sync_interval);
        // 4 KiB events: 12,000 of them fill more than one 32 MiB data file.
        let (batches, per) = (120, 100);
        let sender = tokio::spawn(async move {
            let mut acks = Vec::new();
            for b in 0..batches {
                let mut batch = padded(b * per, per);
                acks.push(BatchNotifier::attach(&mut batch));
                tx.send(batch).await.expect("send");
            }
            acks
        });
        let mut got = Vec::new();
        while got.len() < (batches * per) as usize {
            match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
                Ok(Some(b)) => got.extend(numbers(&b)),
                other => panic!(
                    "stalled at {}: {:?}",
                    got.len(),
                    other.map(|b| b.map(|b| b.len()))
                ),
            }
        }
        assert_eq!(got, (0..batches * per).collect::<Vec<_>>());
        let files = data_files(&dir.path().join("buffer").join("t")).unwrap_or_default();
        assert!(
            files.last().is_some_and(|n| *n > 0),
            "no second data file was started: {files:?}"
        );
        for (i, ack) in sender.await.expect("sender").into_iter().enumerate() {
            let status = tokio::time::timeout(Duration::from_secs(10), ack)
                .await
                .unwrap_or_else(|_| panic!("batch {i} was never acknowledged"));
            assert_eq!(status.ok(), Some(BatchStatus::Delivered), "batch {i}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batches_across_a_new_data_file_are_acknowledged_with_fsync_per_write() {
        batches_across_a_new_data_file_are_all_acknowledged(None).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batches_across_a_new_data_file_are_acknowledged_with_a_sync_interval() {
        batches_across_a_new_data_file_are_all_acknowledged(Some(Duration::from_millis(200))).await;
    }

    /// With `sync_interval_ms`, the syncer flushes at most that often and only then tells
    /// the sources: batches written within one interval are all acknowledged, as kept,
    /// by the flush that follows, never before it is due; and the events still reach
    /// the sink at once (delivery does not wait for the flush).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_a_sync_interval_sources_hear_after_the_flush_that_covers_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let interval = Duration::from_millis(400);
        let opened_at = Instant::now();
        let (tx, mut rx) = opened_with(dir.path(), Some(interval));
        let mut acks = Vec::new();
        for b in 0..5 {
            let mut batch = numbered(b * 100, 100);
            acks.push(BatchNotifier::attach(&mut batch));
            tx.send(batch).await.expect("send");
        }
        let mut got = 0;
        while got < 500 {
            match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
                Ok(Some(b)) => got += b.len(),
                other => panic!("stalled at {got}: {:?}", other.map(|b| b.map(|b| b.len()))),
            }
        }
        for (i, ack) in acks.into_iter().enumerate() {
            let status = tokio::time::timeout(Duration::from_secs(10), ack)
                .await
                .unwrap_or_else(|_| panic!("batch {i} was never acknowledged"));
            assert_eq!(status.ok(), Some(BatchStatus::Delivered), "batch {i}");
        }
        // The first flush is due one interval after the buffer started.
        assert!(
            opened_at.elapsed() >= interval,
            "acknowledged after {:?}, before the flush was due",
            opened_at.elapsed()
        );
        drop(tx);
    }
}
