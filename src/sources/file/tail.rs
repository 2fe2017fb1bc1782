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
    /// Offset just past the line's delimiter.
    pub end_offset: u64,
}

/// A file being followed.
pub struct Tailed {
    /// Its identity.
    pub id: FileId,
    /// The path it was found at (the last one, if it was renamed).
    pub path: PathBuf,
    file: File,
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
    pub fn open(
        id: FileId,
        path: PathBuf,
        mut file: File,
        offset: u64,
        head_len: usize,
    ) -> std::io::Result<Self> {
        let md = file.metadata()?;
        let offset = if offset > md.len() { 0 } else { offset };
        file.seek(SeekFrom::Start(offset))?;
        let mut head = vec![0u8; head_len.min(md.len() as usize)];
        let n = file.read_at(&mut head, 0)?;
        head.truncate(n);
        Ok(Self {
            id,
            path,
            dev_ino: (md.dev(), md.ino()),
            file,
            offset,
            read_pos: offset,
            partial: Vec::new(),
            skipping: false,
            head,
            detached_since: None,
            last_data: Instant::now(),
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
        let md = self.file.metadata()?;
        if md.len() < self.read_pos || self.head_changed()? {
            return Ok(Progress::Truncated);
        }
        let n = self.file.read(buf)?;
        if n == 0 {
            return Ok(Progress::Eof);
        }
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
    pub fn restart(&mut self, head_len: usize) -> std::io::Result<()> {
        self.file.seek(SeekFrom::Start(0))?;
        self.offset = 0;
        self.read_pos = 0;
        self.partial.clear();
        self.skipping = false;
        let len = self.file.metadata()?.len() as usize;
        let mut head = vec![0u8; head_len.min(len)];
        let n = self.file.read_at(&mut head, 0)?;
        head.truncate(n);
        self.head = head;
        self.needs_identity = true;
        Ok(())
    }

    /// The underlying file, to take its fingerprint again.
    pub fn file(&self) -> &File {
        &self.file
    }

    fn head_changed(&mut self) -> std::io::Result<bool> {
        if self.head.is_empty() {
            return Ok(false);
        }
        let mut now = vec![0u8; self.head.len()];
        let n = self.file.read_at(&mut now, 0)?;
        Ok(n < self.head.len() || now != self.head)
    }
}
