//! `file` source: follows files matched by globs through rotation and restarts. Each
//! file is known by a fingerprint of its first bytes, never by its path, so renames and
//! inode reuse cannot hand one file's position to another. Checkpoints only move past
//! lines whose events the sinks reported delivered, so a sink outage followed by a crash
//! re-sends instead of losing. Runs on its own thread: file I/O blocks.
//!
//! This file holds the options; `follower` is the task that reads, `discovery` finds
//! and identifies files, `delivery` turns acknowledgements into checkpoints, `tail`,
//! `fingerprint`, `watch`, `checkpoint` and `multiline` are their parts.

mod checkpoint;
mod delivery;
mod discovery;
mod fingerprint;
mod follower;
mod multiline;
mod tail;
mod watch;

pub use checkpoint::Checkpoints;
pub use fingerprint::{FingerprintConfig, FingerprintStrategy};
pub use multiline::{MultilineConfig, MultilineMode};

use crate::config::field::FieldIssue;
use crate::topology::component::{BuildError, SourceConfig, SourceContext, Task};
use serde::Deserialize;
use std::path::PathBuf;

/// `[sources.ID] type = "file"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Globs of files to follow; `**` matches any depth.
    pub include: Vec<String>,
    /// Globs of files to leave alone, applied after `include`.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Where to start in a file never seen before that exists at start-up: `beginning`
    /// (default) or `end`. Files that appear later are always read from the beginning.
    #[serde(default)]
    pub read_from: ReadFrom,
    /// Skip files not modified for this long (`ignore_older` is Vector's older name).
    #[serde(alias = "ignore_older")]
    pub ignore_older_secs: Option<u64>,
    /// Start every file as if no checkpoint existed (`read_from` decides); checkpoints
    /// are still written. Vector's option.
    pub ignore_checkpoints: Option<bool>,
    /// Vector's deprecated switch: `true` means `ignore_checkpoints = true` (unless set)
    /// and reading from the beginning. Accepted with a warning.
    pub start_at_beginning: Option<bool>,
    /// `encoding.charset`: the files' character set (an Encoding Standard label such as
    /// `utf-16le`, `windows-1252`); lines are split on the delimiter in that charset and
    /// turned into UTF-8 (invalid sequences become U+FFFD). UTF-8 when absent.
    pub encoding: Option<FileEncoding>,
    /// Vector's deprecated source-level switch: the file source always checkpoints
    /// only what was delivered, so it changes nothing here (a warning says so).
    pub acknowledgements: Option<crate::config::Acknowledgements>,
    /// Field for the byte offset of the line's start in its file; none when absent.
    pub offset_key: Option<String>,
    /// Where this source keeps its checkpoints instead of the global `data_dir` (a
    /// subdirectory named after the source, as there).
    pub data_dir: Option<PathBuf>,
    /// Bytes read from one file before moving to the next, for fairness between files.
    /// Vector's default is 2048; sluice's is 1 MiB, since reads are batched anyway and a
    /// small figure costs a pass per 2 KiB on a busy file.
    #[serde(default = "default_max_read_bytes")]
    pub max_read_bytes: usize,
    /// Read the oldest file (by birth time) to its end before newer ones, instead of
    /// sharing each pass between all files. Vector's option.
    #[serde(default)]
    pub oldest_first: bool,
    /// Delete a file once every line of it was delivered and nothing was written to it
    /// for this many seconds. Unlike Vector, which can delete before the sinks
    /// acknowledged (its issue #20816), sluice waits for delivery. Off by default.
    #[serde(alias = "remove_after")]
    pub remove_after_secs: Option<u64>,
    /// Vector's switch for dangling symlinks: sluice never reports a matched path that
    /// vanished before it was opened, so both values behave alike. Accepted.
    #[serde(default)]
    pub ignore_not_found: bool,
    /// Longest line kept whole; longer lines are truncated and counted
    /// (`error_type="truncated"`), never dropped. Default 102400.
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
    /// What ends a line. Default `"\n"` (a CR before it is dropped too).
    #[serde(default = "default_delimiter")]
    pub line_delimiter: String,
    /// How often to look for new files, in milliseconds, when polling. Default 1000.
    /// With inotify, new files are noticed at once and the globs are rescanned every
    /// 60 s (or this, if longer) as a safety net.
    #[serde(default = "default_cooldown")]
    pub glob_minimum_cooldown_ms: u64,
    /// Field for the file's path. Default `file`.
    #[serde(default = "default_file_key")]
    pub file_key: String,
    /// Field for the host name. Default `log_schema.host_key` (`host`); `""` leaves
    /// it out.
    pub host_key: Option<String>,
    /// How a file is identified.
    #[serde(default)]
    pub fingerprint: FingerprintConfig,
    /// How long a rotated or deleted file is kept open once read to its end. Default 10.
    #[serde(default = "default_rotate_wait")]
    pub rotate_wait_secs: u64,
    /// Join multi-line messages such as stack traces (Vector's semantics).
    pub multiline: Option<MultilineConfig>,
    /// Most files held open at once. When a new or changed file needs a descriptor, the
    /// file quiet for longest is closed (its exact position kept) and reopened when it
    /// changes again. Unlimited when absent.
    pub max_open_files: Option<usize>,
    /// `inotify` (default): the kernel says which files changed, so idle files cost
    /// nothing; a full pass every few seconds is the safety net. `poll`: every file is
    /// checked on every pass, for filesystems where inotify sees nothing (NFS).
    #[serde(default)]
    pub watch: WatchMode,
}

/// How changes to files are noticed.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum WatchMode {
    /// inotify, with a periodic full pass as the safety net.
    #[default]
    Inotify,
    /// Look at every file on every pass.
    Poll,
}

fn default_max_line_bytes() -> usize {
    102_400
}
fn default_delimiter() -> String {
    "\n".into()
}
fn default_cooldown() -> u64 {
    1000
}
fn default_file_key() -> String {
    "file".into()
}
fn default_rotate_wait() -> u64 {
    10
}

/// Where to start reading a file first seen at start-up.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ReadFrom {
    /// From its first byte.
    #[default]
    Beginning,
    /// From its current end: only what is written from now on.
    End,
}

impl SourceConfig for FileConfig {
    fn warnings(&self) -> Vec<FieldIssue> {
        let mut w = Vec::new();
        if self.start_at_beginning.is_some() {
            w.push(FieldIssue::new(
                "start_at_beginning",
                "is deprecated, as in Vector: use `ignore_checkpoints` and `read_from`; sluice still reads it the way Vector does",
            ));
        }
        if self.acknowledgements.is_some() {
            w.push(FieldIssue::new(
                "acknowledgements",
                "is deprecated on sources, as in Vector; the file source always checkpoints only delivered lines, so it changes nothing",
            ));
        }
        w
    }

    fn build(&self, cx: SourceContext) -> Result<Task, BuildError> {
        let dir = self
            .data_dir
            .as_ref()
            .unwrap_or(&cx.data_dir)
            .join(cx.id.as_ref());
        std::fs::create_dir_all(&dir).map_err(|source| BuildError::Io {
            what: format!("creating the checkpoint directory {}", dir.display()),
            source,
        })?;
        let include = compile(&self.include)?;
        let exclude = compile(&self.exclude)?;
        let name = format!("source-{}", cx.id);
        let config = self.clone();
        crate::topology::on_own_thread(&name, async move {
            follower::Follower::new(config, include, exclude, dir, cx)
                .run()
                .await;
        })
    }

    fn validate(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        if self.include.is_empty() {
            issues.push(FieldIssue::new("include", "needs at least one glob"));
        }
        for (key, globs) in [("include", &self.include), ("exclude", &self.exclude)] {
            for g in globs {
                if let Err(e) = glob::Pattern::new(g) {
                    issues.push(FieldIssue::new(
                        key,
                        format!("`{g}` is not a valid glob: {e}"),
                    ));
                }
            }
        }
        if let Some(e) = &self.encoding {
            if encoding_rs::Encoding::for_label(e.charset.as_bytes()).is_none() {
                issues.push(FieldIssue::new(
                    "encoding.charset",
                    format!("`{}` is not a charset label of the Encoding Standard (e.g. `utf-16le`, `windows-1252`, `iso-8859-1`)", e.charset),
                ));
            }
        }
        if self.line_delimiter.is_empty() {
            issues.push(FieldIssue::new("line_delimiter", "must not be empty"));
        }
        if self.max_line_bytes == 0 {
            issues.push(FieldIssue::new("max_line_bytes", "must be at least 1"));
        }
        if self.fingerprint.bytes == Some(0) {
            issues.push(FieldIssue::new("fingerprint.bytes", "must be at least 1"));
        }
        if self.fingerprint.lines == 0 {
            issues.push(FieldIssue::new("fingerprint.lines", "must be at least 1"));
        }
        if self.max_read_bytes == 0 {
            issues.push(FieldIssue::new("max_read_bytes", "must be at least 1"));
        }
        if self.offset_key.as_deref() == Some("") {
            issues.push(FieldIssue::new("offset_key", "must not be empty"));
        }
        if self.max_open_files == Some(0) {
            issues.push(FieldIssue::new("max_open_files", "must be at least 1"));
        }
        if let Some(m) = &self.multiline {
            if let Err(e) = multiline::Aggregator::new(m, self.max_line_bytes) {
                issues.push(FieldIssue::new("multiline", e));
            }
        }
        issues
    }
}

/// `encoding` of the file source.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileEncoding {
    /// The label, as the Encoding Standard spells it.
    pub charset: String,
}

impl FileConfig {
    /// The charset to decode lines from, when not UTF-8.
    pub fn charset(&self) -> Option<&'static encoding_rs::Encoding> {
        let e = encoding_rs::Encoding::for_label(self.encoding.as_ref()?.charset.as_bytes())?;
        (e != encoding_rs::UTF_8).then_some(e)
    }

    /// `line_delimiter` as it appears in the files' bytes.
    pub fn raw_delimiter(&self) -> Vec<u8> {
        match self.charset() {
            None => self.line_delimiter.as_bytes().to_vec(),
            Some(e) if e == encoding_rs::UTF_16LE => self
                .line_delimiter
                .encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect(),
            Some(e) if e == encoding_rs::UTF_16BE => self
                .line_delimiter
                .encode_utf16()
                .flat_map(u16::to_be_bytes)
                .collect(),
            Some(e) => e.encode(&self.line_delimiter).0.into_owned(),
        }
    }
}

fn default_max_read_bytes() -> usize {
    1 << 20
}

impl FileConfig {
    /// Whether checkpoints from an earlier run are ignored, reconciled as Vector does
    /// with the deprecated `start_at_beginning`.
    pub fn ignores_checkpoints(&self) -> bool {
        match self.start_at_beginning {
            Some(true) => self.ignore_checkpoints.unwrap_or(true),
            _ => self.ignore_checkpoints.unwrap_or(false),
        }
    }
}

fn compile(globs: &[String]) -> Result<Vec<glob::Pattern>, BuildError> {
    globs
        .iter()
        .map(|g| glob::Pattern::new(g).map_err(|e| BuildError::Other(format!("`{g}`: {e}"))))
        .collect()
}

/// Prefix of the identity a truncated file has until it is long enough to fingerprint;
/// never written to checkpoints.
const PROVISIONAL: &str = "provisional-";
