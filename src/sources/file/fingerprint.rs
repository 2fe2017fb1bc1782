//! How a file is recognised across renames, compression and restarts: by a checksum of
//! its first line(s), as Vector's default (`fingerprint.lines = 1`), so any file with one
//! complete line can be read at once, a rotated or compressed copy is still the same
//! file, and a truncated one is a new file. Checkpoints written by earlier builds (a
//! checksum of the first 256 bytes) are still found, so an upgrade re-reads nothing.

use super::tail::{checksum, is_gzip, At, FileId};
use serde::Deserialize;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;

/// `fingerprint`: how files are told apart. Vector's options and defaults.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FingerprintConfig {
    /// `checksum` (default): of the first `lines` lines after `ignored_header_bytes`;
    /// a file is followed once it holds that many complete lines. `device_and_inode`:
    /// immediate, but a reused inode number is mistaken for the old file.
    #[serde(default)]
    pub strategy: FingerprintStrategy,
    /// How many leading lines the checksum covers. Default 1; raise it when files begin
    /// with the same line (a CSV header, a banner), or they are mistaken for one another.
    #[serde(default = "default_lines")]
    pub lines: usize,
    /// Bytes skipped before the lines that identify a file (a fixed binary header).
    #[serde(default)]
    pub ignored_header_bytes: usize,
    /// Most bytes of those lines the checksum covers; a first line this long counts as
    /// complete. Default `max_line_bytes`. Vector deprecated it; it is kept so older
    /// configs load, and its value also finds checkpoints of earlier sluice builds.
    pub bytes: Option<usize>,
}

fn default_lines() -> usize {
    1
}

impl Default for FingerprintConfig {
    fn default() -> Self {
        Self {
            strategy: FingerprintStrategy::Checksum,
            lines: default_lines(),
            ignored_header_bytes: 0,
            bytes: None,
        }
    }
}

/// Identity strategy.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FingerprintStrategy {
    /// Checksum of the first lines.
    #[default]
    Checksum,
    /// Device and inode numbers.
    DeviceAndInode,
}

/// Size of the checksum older versions took, when `fingerprint.bytes` was not set.
const LEGACY_BYTES: usize = 256;

/// Computes identities with one source's settings.
#[derive(Clone, Debug)]
pub struct Fingerprinter {
    strategy: FingerprintStrategy,
    lines: usize,
    skip: usize,
    cap: usize,
    legacy_bytes: usize,
    delimiter: Vec<u8>,
}

impl Fingerprinter {
    /// Settings from the source's config; `max_line_bytes` bounds what is read.
    pub fn new(config: &FingerprintConfig, delimiter: &[u8], max_line_bytes: usize) -> Self {
        Self {
            strategy: config.strategy,
            lines: config.lines.max(1),
            skip: config.ignored_header_bytes,
            cap: config
                .bytes
                .unwrap_or_else(|| max_line_bytes.saturating_mul(config.lines.max(1)))
                .max(1),
            legacy_bytes: config.bytes.unwrap_or(LEGACY_BYTES).max(1),
            delimiter: delimiter.to_vec(),
        }
    }

    /// The file's identity, or `None` while it is too short to have one (fewer than
    /// `lines` complete lines): it is looked at again when it grows.
    pub fn identify(&self, file: &File, md: &std::fs::Metadata) -> std::io::Result<Option<FileId>> {
        match self.strategy {
            FingerprintStrategy::DeviceAndInode => {
                Ok(Some(format!("dev{}-ino{}", md.dev(), md.ino())))
            }
            FingerprintStrategy::Checksum => Ok(self
                .first_lines(file)?
                .map(|p| format!("checksum-{:016x}", checksum(&p)))),
        }
    }

    /// The identity earlier sluice builds gave this file (a checksum of its first
    /// `bytes`, default 256), to carry an old checkpoint over to the new identity.
    pub fn legacy_identity(&self, file: &File) -> Option<FileId> {
        if self.strategy != FingerprintStrategy::Checksum {
            return None;
        }
        let mut head = Vec::with_capacity(self.legacy_bytes);
        reader(file)
            .take(self.legacy_bytes as u64)
            .read_to_end(&mut head)
            .ok()?;
        (head.len() == self.legacy_bytes).then(|| format!("{:016x}", checksum(&head)))
    }

    /// The bytes the checksum covers: the first `lines` lines after the skipped header,
    /// delimiters included, at most `cap` bytes; `None` if the file has fewer so far.
    fn first_lines(&self, file: &File) -> std::io::Result<Option<Vec<u8>>> {
        let mut r = reader(file);
        let skipped = std::io::copy(&mut (&mut r).take(self.skip as u64), &mut std::io::sink())?;
        if skipped < self.skip as u64 {
            return Ok(None);
        }
        let mut buf: Vec<u8> = Vec::new();
        let mut found = 0;
        let mut scan_from = 0;
        loop {
            if buf.len() >= self.cap {
                buf.truncate(self.cap);
                return Ok(Some(buf));
            }
            // Most first lines are short: read 4 KiB, then double.
            let want = buf.len().max(4096).min(self.cap - buf.len());
            let old = buf.len();
            buf.resize(old + want, 0);
            let n = r.read(&mut buf[old..])?;
            buf.truncate(old + n);
            if n == 0 {
                return Ok(None);
            }
            while let Some(i) = memchr::memmem::find(&buf[scan_from..], &self.delimiter) {
                let end = scan_from + i + self.delimiter.len();
                found += 1;
                if found == self.lines {
                    buf.truncate(end.min(self.cap));
                    return Ok(Some(buf));
                }
                scan_from = end;
            }
            // A delimiter may straddle the next read.
            scan_from = scan_from.max(buf.len().saturating_sub(self.delimiter.len() - 1));
        }
    }
}

/// The file's content from its first byte (decompressed for gzip), leaving the
/// descriptor's position alone.
fn reader(file: &File) -> Box<dyn Read + '_> {
    let at = At { file, pos: 0 };
    if is_gzip(file) {
        Box::new(flate2::read::MultiGzDecoder::new(at))
    } else {
        Box::new(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(content: &[u8]) -> (tempfile::NamedTempFile, File) {
        let mut f = tempfile::NamedTempFile::new().expect("temp");
        f.write_all(content).expect("write");
        let file = File::open(f.path()).expect("open");
        (f, file)
    }

    fn id(fp: &Fingerprinter, content: &[u8]) -> Option<FileId> {
        let (_keep, file) = file_with(content);
        let md = file.metadata().expect("md");
        fp.identify(&file, &md).expect("identify")
    }

    fn default_fp() -> Fingerprinter {
        Fingerprinter::new(&FingerprintConfig::default(), b"\n", 102_400)
    }

    #[test]
    fn one_complete_line_is_enough_and_later_lines_do_not_change_it() {
        let fp = default_fp();
        assert_eq!(id(&fp, b""), None);
        assert_eq!(id(&fp, b"half a line"), None, "no delimiter yet");
        let one = id(&fp, b"first line\n").expect("one line identifies");
        assert_eq!(id(&fp, b"first line\nsecond\n"), Some(one.clone()));
        assert_ne!(id(&fp, b"other line\n"), Some(one));
    }

    #[test]
    fn lines_tells_apart_files_with_a_common_header() {
        let cfg = FingerprintConfig {
            lines: 2,
            ..Default::default()
        };
        let fp = Fingerprinter::new(&cfg, b"\n", 1000);
        assert_eq!(
            id(&fp, b"ts,level,msg\n"),
            None,
            "waits for the second line"
        );
        let a = id(&fp, b"ts,level,msg\n1,info,a\n");
        let b = id(&fp, b"ts,level,msg\n2,info,b\n");
        assert!(a.is_some() && b.is_some());
        assert_ne!(a, b);
        // With one line they are the same file, as in Vector.
        assert_eq!(
            id(&default_fp(), b"ts,level,msg\n1,info,a\n"),
            id(&default_fp(), b"ts,level,msg\n2,info,b\n")
        );
    }

    #[test]
    fn header_bytes_are_skipped_and_long_lines_are_capped() {
        let cfg = FingerprintConfig {
            ignored_header_bytes: 4,
            ..Default::default()
        };
        let fp = Fingerprinter::new(&cfg, b"\n", 1000);
        assert_eq!(id(&fp, b"AAAAline\n"), id(&fp, b"BBBBline\n"));
        assert_eq!(id(&fp, b"AAA"), None);
        let capped = Fingerprinter::new(&FingerprintConfig::default(), b"\n", 8);
        assert!(
            id(&capped, b"0123456789").is_some(),
            "8 bytes without a newline"
        );
        assert_eq!(id(&capped, b"01234567xx"), id(&capped, b"01234567yy\n"));
    }

    #[test]
    fn a_multibyte_delimiter_split_across_reads_is_found() {
        let mut content = vec![b'a'; 4095];
        content.extend_from_slice(b"\r\nrest");
        let fp = Fingerprinter::new(&FingerprintConfig::default(), b"\r\n", 100_000);
        assert!(id(&fp, &content).is_some());
    }

    #[test]
    fn a_gzip_copy_has_the_identity_of_its_content() {
        let plain = b"line one\nline two\n".repeat(20);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&plain).expect("gz");
        let gz = gz.finish().expect("gz");
        let fp = default_fp();
        assert_eq!(id(&fp, &gz), id(&fp, &plain));
        let (_k1, f1) = file_with(&gz);
        let (_k2, f2) = file_with(&plain);
        assert_eq!(fp.legacy_identity(&f1), fp.legacy_identity(&f2));
        assert!(fp.legacy_identity(&f2).is_some());
    }

    #[test]
    fn the_legacy_identity_is_the_old_256_byte_checksum() {
        let content = vec![b'x'; 300];
        let (_k, f) = file_with(&content);
        let fp = default_fp();
        assert_eq!(
            fp.legacy_identity(&f),
            Some(format!("{:016x}", checksum(&content[..256])))
        );
        let (_k, short) = file_with(b"short\n");
        assert_eq!(fp.legacy_identity(&short), None);
    }
}
