//! Joining multi-line messages (stack traces) into one event per file, with Vector's
//! `multiline` semantics: a line matching `start_pattern` opens a group; what the group
//! takes next depends on `condition_pattern` and `mode`; `timeout_ms` without a new line
//! ends a group (the last one of a file, typically). Until a group is emitted no later
//! line of its file is, so a checkpoint never moves past a half-gathered message.

use super::tail::{FileId, Line};
use serde::Deserialize;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// `multiline` of a file source.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultilineConfig {
    /// A line matching this starts a message.
    pub start_pattern: String,
    /// What decides whether following lines belong to it (see `mode`).
    pub condition_pattern: String,
    /// How `condition_pattern` is applied.
    pub mode: MultilineMode,
    /// Emit a gathered message after this long without a new line. Default 1000.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
}

fn default_timeout() -> u64 {
    1000
}

/// Vector's four modes.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MultilineMode {
    /// Following lines that match `condition_pattern` belong to the message.
    ContinueThrough,
    /// Following lines that match belong, and so does the first one that does not.
    ContinuePast,
    /// Following lines that do not match belong; a matching one starts the next message.
    HaltBefore,
    /// Following lines that do not match belong, and so does the first one that matches.
    HaltWith,
}

struct Group {
    line: Line,
    last: Instant,
}

/// The aggregator of one file source.
pub struct Aggregator {
    start: regex::bytes::Regex,
    condition: regex::bytes::Regex,
    mode: MultilineMode,
    timeout: Duration,
    max_bytes: usize,
    groups: HashMap<FileId, Group>,
}

impl Aggregator {
    /// Compiles the patterns; the error names the bad one.
    pub fn new(config: &MultilineConfig, max_bytes: usize) -> Result<Self, String> {
        let compile = |key: &str, p: &str| {
            regex::bytes::Regex::new(p)
                .map_err(|e| format!("multiline.{key}: `{p}` is not a valid regex: {e}"))
        };
        Ok(Self {
            start: compile("start_pattern", &config.start_pattern)?,
            condition: compile("condition_pattern", &config.condition_pattern)?,
            mode: config.mode,
            timeout: Duration::from_millis(config.timeout_ms),
            max_bytes,
            groups: HashMap::new(),
        })
    }

    fn append(&self, group: &mut Group, line: Line) {
        let g = &mut group.line;
        let room = self.max_bytes.saturating_sub(g.bytes.len() + 1);
        if line.bytes.len() > room || line.truncated {
            g.truncated = true;
        }
        if room > 0 {
            g.bytes.push(b'\n');
            g.bytes
                .extend_from_slice(&line.bytes[..line.bytes.len().min(room - 1)]);
        }
        g.end_offset = line.end_offset;
        group.last = Instant::now();
    }

    /// Feeds one line of file `id`; completed messages are appended to `out`.
    pub fn push(&mut self, id: &FileId, line: Line, out: &mut Vec<Line>) {
        let now = Instant::now();
        let Some(mut group) = self.groups.remove(id) else {
            if self.start.is_match(&line.bytes) {
                self.groups.insert(id.clone(), Group { line, last: now });
            } else {
                out.push(line);
            }
            return;
        };
        let matched = self.condition.is_match(&line.bytes);
        match (self.mode, matched) {
            // The line belongs to the message, which goes on.
            (MultilineMode::ContinueThrough, true)
            | (MultilineMode::HaltBefore, false)
            | (MultilineMode::ContinuePast, true)
            | (MultilineMode::HaltWith, false) => {
                self.append(&mut group, line);
                self.groups.insert(id.clone(), group);
            }
            (MultilineMode::ContinueThrough, false) | (MultilineMode::HaltBefore, true) => {
                out.push(group.line);
                // The line that ended the message may start the next one.
                if self.start.is_match(&line.bytes) {
                    self.groups.insert(id.clone(), Group { line, last: now });
                } else {
                    out.push(line);
                }
            }
            // The line ends the message and belongs to it.
            (MultilineMode::ContinuePast, false) | (MultilineMode::HaltWith, true) => {
                self.append(&mut group, line);
                out.push(group.line);
            }
        }
    }

    /// Emits the message of file `id` if no line came for `timeout_ms` (or `force`).
    pub fn flush(&mut self, id: &FileId, force: bool, out: &mut Vec<Line>) {
        let due = self
            .groups
            .get(id)
            .is_some_and(|g| force || g.last.elapsed() >= self.timeout);
        if due {
            if let Some(g) = self.groups.remove(id) {
                out.push(g.line);
            }
        }
    }

    /// When the earliest gathered message times out: the reading loop sleeps until then
    /// instead of waking on a fixed tick.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.groups.values().map(|g| g.last + self.timeout).min()
    }

    /// Files with a message being gathered.
    pub fn pending(&self) -> Vec<FileId> {
        self.groups.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(mode: MultilineMode, start: &str, cond: &str, lines: &[&str]) -> Vec<String> {
        let cfg = MultilineConfig {
            start_pattern: start.into(),
            condition_pattern: cond.into(),
            mode,
            timeout_ms: 0,
        };
        let mut agg = Aggregator::new(&cfg, 1 << 20).expect("patterns");
        let id: FileId = "f".into();
        let mut out = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            let line = Line {
                bytes: l.as_bytes().to_vec(),
                truncated: false,
                start_offset: i as u64,
                end_offset: i as u64,
            };
            agg.push(&id, line, &mut out);
        }
        agg.flush(&id, true, &mut out);
        out.into_iter()
            .map(|l| String::from_utf8_lossy(&l.bytes).into_owned())
            .collect()
    }

    #[test]
    fn continue_through_takes_matching_followers() {
        let got = run(
            MultilineMode::ContinueThrough,
            r"^\S",
            r"^\s",
            &["a", " 1", " 2", "b", "c", " 3"],
        );
        assert_eq!(got, ["a\n 1\n 2", "b", "c\n 3"]);
    }

    #[test]
    fn continue_past_takes_the_first_non_matching_line_too() {
        let got = run(
            MultilineMode::ContinuePast,
            r"\\$",
            r"\\$",
            &["x \\", "y \\", "z", "w"],
        );
        assert_eq!(got, ["x \\\ny \\\nz", "w"]);
    }

    #[test]
    fn halt_with_ends_on_the_matching_line() {
        let got = run(
            MultilineMode::HaltWith,
            r"^BEGIN",
            r"^END",
            &["BEGIN", "a", "END", "other"],
        );
        assert_eq!(got, ["BEGIN\na\nEND", "other"]);
    }
}
