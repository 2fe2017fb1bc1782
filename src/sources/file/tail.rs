//! One followed file: an open descriptor (kept across renames and deletion, so a rotated
//! file is read to its end), the offset of the last complete line, and the bytes of a
//! line still being written. Lines are handed out with the offset just past them, which
//! is what a checkpoint may record once they are delivered.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::time::Instant;

/// How a file is recognised across renames and restarts.
pub type FileId = String;

/// How many first bytes are kept to notice a truncated file that grew back past the
/// read position (copytruncate): compared on every read that returns data.
const HEAD_BYTES: usize = 256;

/// FNV-1a over the first bytes: stable across versions, so checkpoints stay valid.
pub fn checksum(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// One line read from a file.
pub struct Line {
    /// The text, without its delimiter (cut to `max_line_bytes` when longer).
    pub bytes: Vec<u8>,
    /// The line was longer than `max_line_bytes`.
    pub truncated: bool,
    /// Offset of the line's first byte (Vector's `offset_key` value).
    pub start_offset: u64,
    /// Offset just past the line's delimiter.
    pub end_offset: u64,
}

/// Where bytes come from: the file itself, or its decompressed content for a gzip file
/// (rotated logs compressed by logrotate), which is read once from start to end.
enum Source {
    Plain(File),
    Gzip(Box<flate2::read::MultiGzDecoder<File>>),
}

/// Reads a file with positioned reads, leaving the descriptor's own position (shared
/// with its clones) untouched.
pub struct At<'a> {
    /// The file read.
    pub file: &'a File,
    /// Where the next read starts.
    pub pos: u64,
}

impl Read for At<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Whether `file` starts with the gzip magic bytes.
pub fn is_gzip(file: &File) -> bool {
    let mut magic = [0u8; 2];
    matches!(file.read_at(&mut magic, 0), Ok(2)) && magic == [0x1f, 0x8b]
}

/// A file being followed.
pub struct Tailed {
    /// Its identity.
    pub id: FileId,
    /// The path it was found at (the last one, if it was renamed).
    pub path: PathBuf,
    file: File,
    source: Source,
    /// A gzip file read to its end: nothing more will come.
    pub finished: bool,
    /// Device and inode of the open descriptor.
    pub dev_ino: (u64, u64),
    /// Offset just past the last complete line handed out.
    pub offset: u64,
    /// Where the next read starts (`offset` plus the partial line).
    read_pos: u64,
    partial: Vec<u8>,
    skipping: bool,
    /// The first bytes when opened, to notice copytruncate even when the file regrew.
    head: Vec<u8>,
    /// Set when the path no longer leads to this file (rotated or deleted).
    pub detached_since: Option<Instant>,
    /// Last time a read returned data.
    pub last_data: Instant,
    /// When the file was made (its modification time where the filesystem keeps no
    /// birth time): the order `oldest_first` reads in.
    pub born: std::time::SystemTime,
    /// Started over after a truncation: its identity must be taken again from its new
    /// first bytes once there are enough of them.
    pub needs_identity: bool,
}

/// What a read pass found.
pub enum Progress {
    /// Read this many bytes.
    Read(usize),
    /// At the end of the file.
    Eof,
    /// The file shrank below what was read, or its first bytes changed: copytruncate.
    Truncated,
}

impl Tailed {
    /// Follows `file` from `offset` (0 unless a checkpoint says otherwise).
    pub fn open(id: FileId, path: PathBuf, mut file: File, offset: u64) -> std::io::Result<Self> {
        let md = file.metadata()?;
        let (source, offset, head) = if is_gzip(&file) {
            // Offsets of a gzip file count decompressed bytes: skip what was delivered.
            file.seek(SeekFrom::Start(0))?;
            let mut d = flate2::read::MultiGzDecoder::new(file.try_clone()?);
            let skipped = std::io::copy(&mut (&mut d).take(offset), &mut std::io::sink())?;
            (Source::Gzip(Box::new(d)), skipped, Vec::new())
        } else {
            let offset = if offset > md.len() { 0 } else { offset };
            file.seek(SeekFrom::Start(offset))?;
            let mut head = vec![0u8; HEAD_BYTES.min(md.len() as usize)];
            let n = file.read_at(&mut head, 0)?;
            head.truncate(n);
            (Source::Plain(file.try_clone()?), offset, head)
        };
        Ok(Self {
            id,
            path,
            source,
            finished: false,
            dev_ino: (md.dev(), md.ino()),
            file,
            offset,
            read_pos: offset,
            partial: Vec::new(),
            skipping: false,
            head,
            detached_since: None,
            last_data: Instant::now(),
            born: md
                .created()
                .or_else(|_| md.modified())
                .unwrap_or(std::time::UNIX_EPOCH),
            needs_identity: false,
        })
    }

    /// Reads what is there (up to `buf.len()` bytes) and appends complete lines to `out`.
    pub fn read_lines(
        &mut self,
        buf: &mut [u8],
        delimiter: &[u8],
        max_line_bytes: usize,
        out: &mut Vec<Line>,
    ) -> std::io::Result<Progress> {
        // The first bytes are compared at most once a second (a truncated file that
        // regrew past our position); the size is checked whenever we reach the end.
        let n = match &mut self.source {
            Source::Gzip(d) => {
                if self.finished {
                    return Ok(Progress::Eof);
                }
                let n = d.read(buf)?;
                if n == 0 {
                    // A compressed file does not grow: its last line needs no delimiter.
                    self.finished = true;
                    if !self.partial.is_empty() && !self.skipping {
                        let end = self.read_pos;
                        out.push(Line {
                            bytes: std::mem::take(&mut self.partial),
                            truncated: false,
                            start_offset: self.offset,
                            end_offset: end,
                        });
                        self.offset = end;
                    }
                    return Ok(Progress::Eof);
                }
                n
            }
            Source::Plain(f) => {
                let n = f.read(buf)?;
                if n == 0 {
                    if f.metadata()?.len() < self.read_pos {
                        return Ok(Progress::Truncated);
                    }
                    return Ok(Progress::Eof);
                }
                // New data, but is it still the same file? A truncated file that grew
                // back past our position would hand us the middle of its new content;
                // its first bytes tell. The chunk is then dropped: reading restarts at 0.
                if head_changed(f, &self.head)? {
                    return Ok(Progress::Truncated);
                }
                n
            }
        };
        self.last_data = Instant::now();
        let mut chunk = &buf[..n];
        let mut pos = self.read_pos;
        while !chunk.is_empty() {
            match memchr::memmem::find(chunk, delimiter) {
                Some(i) => {
                    let end = pos + (i + delimiter.len()) as u64;
                    if self.skipping {
                        self.skipping = false;
                    } else {
                        let room = max_line_bytes.saturating_sub(self.partial.len());
                        let take = i.min(room);
                        self.partial.extend_from_slice(&chunk[..take]);
                        let mut bytes = std::mem::take(&mut self.partial);
                        if delimiter == b"\n" && bytes.last() == Some(&b'\r') {
                            bytes.pop();
                        }
                        out.push(Line {
                            bytes,
                            truncated: take < i,
                            start_offset: self.offset,
                            end_offset: end,
                        });
                    }
                    self.offset = end;
                    chunk = &chunk[i + delimiter.len()..];
                    pos = end;
                }
                None => {
                    if !self.skipping {
                        let room = max_line_bytes.saturating_sub(self.partial.len());
                        self.partial
                            .extend_from_slice(&chunk[..chunk.len().min(room)]);
                        if chunk.len() > room {
                            // Hand out the first max_line_bytes now and skip the rest of the
                            // line; a checkpoint can only move past it once it is complete.
                            let bytes = std::mem::take(&mut self.partial);
                            out.push(Line {
                                bytes,
                                truncated: true,
                                start_offset: self.offset,
                                end_offset: self.offset,
                            });
                            self.skipping = true;
                        }
                    }
                    pos += chunk.len() as u64;
                    chunk = &[];
                }
            }
        }
        self.read_pos = pos;
        Ok(Progress::Read(n))
    }

    /// Starts over at the beginning of the (truncated) file.
    pub fn restart(&mut self) -> std::io::Result<()> {
        if let Source::Plain(f) = &mut self.source {
            f.seek(SeekFrom::Start(0))?;
        }
        self.offset = 0;
        self.read_pos = 0;
        self.partial.clear();
        self.skipping = false;
        let len = self.file.metadata()?.len() as usize;
        let mut head = vec![0u8; HEAD_BYTES.min(len)];
        let n = self.file.read_at(&mut head, 0)?;
        head.truncate(n);
        self.head = head;
        self.needs_identity = true;
        Ok(())
    }

    /// Whether everything read so far ended in complete lines, so closing the file and
    /// reopening it at `offset` loses and repeats nothing.
    pub fn is_between_lines(&self) -> bool {
        self.partial.is_empty() && !self.skipping && self.read_pos == self.offset
    }

    /// The underlying file, to take its fingerprint again.
    pub fn file(&self) -> &File {
        &self.file
    }
}

/// Whether the first bytes of `file` differ from `head` (a truncated, rewritten file).
fn head_changed(file: &File, head: &[u8]) -> std::io::Result<bool> {
    if head.is_empty() {
        return Ok(false);
    }
    let mut now = vec![0u8; head.len()];
    let n = file.read_at(&mut now, 0)?;
    Ok(n < head.len() || now != head)
}
