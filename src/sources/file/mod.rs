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
    /// Skip files not modified for this long.
    pub ignore_older_secs: Option<u64>,
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
    /// Field for the host name. Default `host`.
    #[serde(default = "default_host_key")]
    pub host_key: String,
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
fn default_host_key() -> String {
    "host".into()
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
    fn build(&self, cx: SourceContext) -> Result<Task, BuildError> {
        let dir = cx.data_dir.join(cx.id.as_ref());
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

fn compile(globs: &[String]) -> Result<Vec<glob::Pattern>, BuildError> {
    globs
        .iter()
        .map(|g| glob::Pattern::new(g).map_err(|e| BuildError::Other(format!("`{g}`: {e}"))))
        .collect()
}

/// Prefix of the identity a truncated file has until it is long enough to fingerprint;
/// never written to checkpoints.
const PROVISIONAL: &str = "provisional-";
