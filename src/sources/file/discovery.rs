//! Finding files: the glob walk, one path at a time (`consider`, also called for a single
//! path inotify reported, so a new file is followed on its first complete line without a
//! walk), noticing files that were renamed away or deleted, and finding the copy that
//! `copytruncate` made of a file that was then truncated, wherever the globs look.

use super::follower::{Follower, Retired};
use super::tail::{is_gzip, FileId, Tailed};
use super::{ReadFrom, PROVISIONAL};
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

impl Follower {
    /// Whether `path` is one the globs ask for.
    pub(super) fn wanted(&self, path: &Path) -> bool {
        self.include.iter().any(|g| g.matches_path(path))
            && !self.exclude.iter().any(|g| g.matches_path(path))
    }

    /// Walks the globs, follows new files, and notices followed files whose path now
    /// leads elsewhere.
    pub(super) fn discover(&mut self) {
        let first = !self.started;
        self.started = true;
        // The walk finds again those that are still there.
        self.unidentified.clear();
        let mut known: HashMap<(u64, u64), FileId> = self
            .files
            .values()
            .map(|t| (t.dev_ino, t.id.clone()))
            .collect();
        let patterns: Vec<String> = self
            .include
            .iter()
            .map(|p| p.as_str().to_string())
            .collect();
        for pattern in patterns {
            let Ok(paths) = glob::glob(&pattern) else {
                continue;
            };
            for entry in paths {
                // A directory that cannot be listed hides files: say so, don't skip silently.
                match entry {
                    Ok(path) => {
                        if !self.exclude.iter().any(|g| g.matches_path(&path)) {
                            self.consider(&path, first, Some(&mut known));
                        }
                    }
                    Err(e) => self.io.emit(|| {
                        format!(
                            "Cannot look into {} for `{pattern}`: {}",
                            e.path().display(),
                            e.error()
                        )
                    }),
                }
            }
        }
        self.detach_moved();
    }

    /// Looks at one path the globs match: a followed file seen under a new name, a new
    /// file to follow, or one too short to identify yet (looked at again when it is
    /// written to). `first` is the start-up pass, where `read_from = "end"` applies;
    /// `known` indexes followed files by inode during a walk.
    pub(super) fn consider(
        &mut self,
        path: &Path,
        first: bool,
        known: Option<&mut HashMap<(u64, u64), FileId>>,
    ) {
        let Ok(md) = std::fs::metadata(path) else {
            return;
        };
        if !md.is_file() {
            return;
        }
        let key = (md.dev(), md.ino());
        let followed = match &known {
            Some(k) => k.get(&key).and_then(|id| self.files.get_mut(id)),
            None => self.files.values_mut().find(|t| t.dev_ino == key),
        };
        if let Some(t) = followed {
            if t.path != path && t.detached_since.is_none() {
                // Renamed (rotation by rename) to a name the globs match: followed
                // under its new name.
                t.path = path.to_path_buf();
                self.rotated.increment(1);
            }
            return;
        }
        if let Some(secs) = self.config.ignore_older_secs {
            let old = md
                .modified()
                .ok()
                .and_then(|m| SystemTime::now().duration_since(m).ok())
                .is_some_and(|age| age.as_secs() > secs);
            if old {
                return;
            }
        }
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) => {
                // Unreadable (permissions, usually): counted, logged, retried at the
                // next scan.
                self.io
                    .emit(|| format!("Cannot open {} to follow it: {e}", path.display()));
                return;
            }
        };
        let id = match self.fingerprinter.identify(&file, &md) {
            Ok(Some(id)) => {
                self.unidentified.remove(path);
                id
            }
            // Fewer complete lines than the fingerprint needs: its next write brings it
            // back (inotify), or the next pass that sees it grow (polling).
            Ok(None) => {
                self.unidentified.insert(path.to_path_buf(), md.len());
                return;
            }
            Err(e) => {
                self.io
                    .emit(|| format!("Cannot fingerprint {}: {e}", path.display()));
                return;
            }
        };
        if self.files.contains_key(&id) {
            // Same content under another inode (a copy, e.g. by copytruncate, made
            // before the original was truncated): already followed through the original.
            return;
        }
        if let Some(&parked_at) = self.parked.get(&id) {
            // A parked file comes back only if it grew (or a slot is free).
            let grew = md.len() > parked_at;
            if !grew && self.at_file_limit() {
                return;
            }
        }
        if self.at_file_limit() && !self.park_quietest() {
            // Every slot holds a busy file: tried again once they are all quiet.
            self.waiting.insert(path.to_path_buf());
            return;
        }
        let start = self.start_offset(&id, &file, &md, path, first);
        if self.follow(id.clone(), path, file, start) {
            if let Some(k) = known {
                k.insert(key, id);
            }
        }
    }

    /// Where reading a newly found file starts.
    fn start_offset(
        &mut self,
        id: &FileId,
        file: &std::fs::File,
        md: &std::fs::Metadata,
        path: &Path,
        first: bool,
    ) -> u64 {
        if let Some(r) = self.retired.remove(id) {
            // The copy of a truncated file continues where reading the original stopped.
            // Where we read further than the copy holds (lines written after logrotate's
            // copy and before its truncate), it starts at its end: those lines came
            // from the original.
            return if is_gzip(file) {
                r.read_up_to
            } else {
                r.read_up_to.min(md.len())
            };
        }
        if let Some(at) = self.parked.remove(id) {
            return at;
        }
        if let Some(at) = self.released.remove(id) {
            // Released with lines in flight: they are not read twice.
            return at;
        }
        if let Some(e) = self.delivery.checkpoints.entries.get(id) {
            return e.offset;
        }
        if self.delivery.checkpoints.has_legacy() {
            if let Some(old) = self.fingerprinter.legacy_identity(file) {
                if let Some(offset) = self.delivery.checkpoints.adopt(&old, id, path) {
                    return offset;
                }
            }
        }
        if first && self.config.read_from == ReadFrom::End {
            md.len()
        } else {
            0
        }
    }

    /// Starts following `file` from `start`.
    fn follow(&mut self, id: FileId, path: &Path, file: std::fs::File, start: u64) -> bool {
        match Tailed::open(id.clone(), path.to_path_buf(), file, start) {
            Ok(t) => {
                // Read on the next pass, whether or not inotify says anything about it.
                self.busy.insert(id.clone());
                self.files.insert(id, t);
                self.added.increment(1);
                self.files_changed();
                true
            }
            Err(e) => {
                self.io
                    .emit(|| format!("Cannot follow {}: {e}", path.display()));
                false
            }
        }
    }

    /// Files whose path now leads elsewhere (renamed away, or deleted) are read to their
    /// end, polled in case their writer has not reopened yet, and released
    /// `rotate_wait_secs` after their last data.
    fn detach_moved(&mut self) {
        for t in self.files.values_mut() {
            if t.detached_since.is_some() {
                continue;
            }
            let here = std::fs::metadata(&t.path).ok().map(|m| (m.dev(), m.ino()));
            if here != Some(t.dev_ino) {
                t.detached_since = Some(Instant::now());
                self.rotated.increment(1);
            }
        }
    }

    /// After a truncation, the copy `copytruncate` made holds the lines written between
    /// our last read and the copy. Where the globs did not find it (`*.log` leaves out
    /// `app.log.1`), it is looked for beside the truncated file: a file longer than what
    /// was read, with the same identity. It is read from where reading stopped, then
    /// released like a rotated file.
    pub(super) fn adopt_copies(&mut self) {
        let wanted: Vec<(FileId, Retired)> = self
            .retired
            .iter()
            .filter(|(_, r)| !r.searched)
            .map(|(id, r)| (id.clone(), r.clone()))
            .collect();
        if wanted.is_empty() {
            return;
        }
        let open: HashMap<(u64, u64), ()> = self.files.values().map(|t| (t.dev_ino, ())).collect();
        for (id, r) in wanted {
            if let Some(e) = self.retired.get_mut(&id) {
                e.searched = true;
            }
            let Some(dir) = r.path.parent() else { continue };
            // No file there longer than what was read means the copy holds nothing we
            // have not delivered: nothing is lost, nothing to report.
            let entries = match std::fs::read_dir(dir) {
                Ok(e) => e,
                Err(e) => {
                    self.io.emit(|| {
                        format!(
                            "Cannot look for the copy of truncated {} in {}: {e}",
                            r.path.display(),
                            dir.display()
                        )
                    });
                    continue;
                }
            };
            for entry in entries.flatten() {
                let path: PathBuf = entry.path();
                let Ok(md) = std::fs::metadata(&path) else {
                    continue;
                };
                let gz = path.extension().is_some_and(|e| e == "gz");
                if !md.is_file()
                    || open.contains_key(&(md.dev(), md.ino()))
                    || (!gz && md.len() <= r.read_up_to)
                {
                    continue;
                }
                let Ok(file) = std::fs::File::open(&path) else {
                    continue;
                };
                if !matches!(self.fingerprinter.identify(&file, &md), Ok(Some(ref c)) if *c == id) {
                    continue;
                }
                self.retired.remove(&id);
                let start = if is_gzip(&file) {
                    r.read_up_to
                } else {
                    r.read_up_to.min(md.len())
                };
                if self.follow(id.clone(), &path, file, start) {
                    if let Some(t) = self.files.get_mut(&id) {
                        // Not under the globs: polled, then released.
                        t.detached_since = Some(Instant::now());
                    }
                }
                break;
            }
        }
    }

    /// Looks again at files too short to identify that grew since (polling).
    pub(super) fn retry_unidentified(&mut self) {
        let grown: Vec<PathBuf> = self
            .unidentified
            .iter()
            .filter(|(p, len)| std::fs::metadata(p).map_or(true, |m| m.len() != **len))
            .map(|(p, _)| p.clone())
            .collect();
        for p in grown {
            self.unidentified.remove(&p);
            self.consider(&p, false, None);
        }
    }

    /// Tries again the files that found every slot of `max_open_files` busy; whether
    /// any of them is followed now.
    pub(super) fn retry_waiting(&mut self) -> bool {
        let before = self.files.len() + self.parked.len();
        for path in std::mem::take(&mut self.waiting) {
            self.consider(&path, false, None);
        }
        self.files.len() + self.parked.len() != before || self.waiting.is_empty()
    }

    pub(super) fn at_file_limit(&self) -> bool {
        self.config
            .max_open_files
            .is_some_and(|max| self.files.len() >= max)
    }

    /// Closes the followed file quiet for longest to free a descriptor, keeping where it
    /// stopped. Only quiet files with nothing half-read, still at their path and with no
    /// multiline message pending are candidates; `false` if there is none.
    pub(super) fn park_quietest(&mut self) -> bool {
        let pending = self
            .multiline
            .as_ref()
            .map(|a| a.pending())
            .unwrap_or_default();
        let candidate = self
            .files
            .values()
            .filter(|t| {
                // A rotated-away file could not be found again by its path, and a busy
                // one would be reopened at once: neither is parked.
                t.is_between_lines()
                    && t.detached_since.is_none()
                    && !self.busy.contains(&t.id)
                    && !pending.contains(&t.id)
                    && !t.id.starts_with(PROVISIONAL)
            })
            // Nothing written since the last read (the write may be in an inotify
            // event not handled yet): parked, it would wait for the next one.
            .filter(|t| t.file().metadata().is_ok_and(|m| m.len() == t.offset))
            .min_by_key(|t| t.last_data)
            .map(|t| t.id.clone());
        let Some(id) = candidate else { return false };
        if let Some(t) = self.files.remove(&id) {
            self.parked.insert(id.clone(), t.offset);
            self.busy.remove(&id);
            self.files_changed();
        }
        true
    }
}
