//! Noticing change. With inotify: which paths changed, whether the set of files may have
//! changed (a create, delete or rename: look at the globs again), and whether events may
//! have been lost (a queue overflow, a watch error, a watched directory that was deleted
//! or replaced), in which case everything is looked at again at once. When polling: the
//! modification times of the directories involved, one `stat` each per pass, so a file
//! created or renamed is seen on the next pass rather than at the next glob scan.

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// What the inotify thread tells the reading loop.
#[derive(Default)]
pub struct Wake {
    /// Woken on every event that matters.
    pub notify: tokio::sync::Notify,
    dirty: Mutex<HashSet<PathBuf>>,
    rescan: AtomicBool,
    overflowed: AtomicBool,
    errored: AtomicBool,
}

/// Why the loop must look at everything again now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rescan {
    /// A file or directory was created, deleted or renamed.
    pub names_changed: bool,
    /// The kernel's event queue overflowed: events were lost.
    pub overflowed: bool,
    /// The watcher reported an error (e.g. no watch left for a new directory).
    pub errored: bool,
}

impl Rescan {
    /// Whether any reason is set.
    pub fn any(self) -> bool {
        self.names_changed || self.overflowed || self.errored
    }
}

impl Wake {
    /// Takes the reasons to rescan that arrived since the last call.
    pub fn take_rescan(&self) -> Rescan {
        Rescan {
            names_changed: self.rescan.swap(false, Ordering::AcqRel),
            overflowed: self.overflowed.swap(false, Ordering::AcqRel),
            errored: self.errored.swap(false, Ordering::AcqRel),
        }
    }

    /// Takes the paths written to since the last call.
    pub fn take_dirty(&self) -> HashSet<PathBuf> {
        match self.dirty.lock() {
            Ok(mut d) => std::mem::take(&mut *d),
            Err(_) => HashSet::new(),
        }
    }

    fn on_event(&self, res: notify::Result<notify::Event>) {
        match res {
            Err(_) => self.errored.store(true, Ordering::Release),
            Ok(ev) if ev.need_rescan() => self.overflowed.store(true, Ordering::Release),
            // Opens and closes, ours included, change nothing; waking on them would spin
            // on a file too short to identify.
            Ok(ev) if matches!(ev.kind, EventKind::Access(_)) => return,
            Ok(ev) => {
                if matches!(
                    ev.kind,
                    EventKind::Create(_)
                        | EventKind::Remove(_)
                        | EventKind::Modify(notify::event::ModifyKind::Name(_))
                        | EventKind::Other
                ) {
                    self.rescan.store(true, Ordering::Release);
                }
                if let Ok(mut d) = self.dirty.lock() {
                    d.extend(ev.paths);
                }
            }
        }
        self.notify.notify_one();
    }
}

/// The directory a glob starts below: its components up to the first with a wildcard,
/// or the nearest one of them that exists (so files created later are still seen).
fn glob_base(pattern: &str) -> Option<PathBuf> {
    let mut base = PathBuf::new();
    for c in Path::new(pattern).components() {
        let s = c.as_os_str().to_string_lossy();
        if s.contains(['*', '?', '[', '{']) {
            break;
        }
        base.push(c);
    }
    while !base.is_dir() {
        if !base.pop() {
            return None;
        }
    }
    // Watching the whole filesystem would be worse than polling.
    (base.parent().is_some()).then_some(base)
}

/// Directories whose entries the poll loop watches by their modification time (a
/// create, delete or rename in a directory changes it).
#[derive(Default)]
pub struct DirStamps {
    dirs: Vec<(PathBuf, Option<Stamp>)>,
}

/// A directory's modification time (seconds, nanoseconds) and inode.
type Stamp = (i64, i64, u64);

impl DirStamps {
    /// Watches these directories from now on: where the globs start and where followed
    /// files are.
    pub fn reset(&mut self, patterns: &[glob::Pattern], files: impl Iterator<Item = PathBuf>) {
        let mut dirs: Vec<PathBuf> = patterns
            .iter()
            .filter_map(|p| glob_base(p.as_str()))
            .collect();
        dirs.extend(files.filter_map(|f| f.parent().map(Path::to_path_buf)));
        dirs.sort();
        dirs.dedup();
        self.dirs = dirs
            .into_iter()
            .map(|d| {
                let stamp = stamp(&d);
                (d, stamp)
            })
            .collect();
    }

    /// Whether any of the directories changed since `reset` or the last call.
    pub fn changed(&mut self) -> bool {
        let mut changed = false;
        for (dir, old) in &mut self.dirs {
            let now = stamp(dir);
            if now != *old {
                *old = now;
                changed = true;
            }
        }
        changed
    }
}

fn stamp(dir: &Path) -> Option<Stamp> {
    std::fs::metadata(dir)
        .ok()
        .map(|m| (m.mtime(), m.mtime_nsec(), m.ino()))
}

/// A watched directory and the inode it had when the watch was added.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Base {
    path: PathBuf,
    dev_ino: (u64, u64),
}

/// Where each include glob starts, as it is now.
fn bases(patterns: &[String]) -> Option<Vec<Base>> {
    let mut out: Vec<Base> = Vec::new();
    for p in patterns {
        let path = glob_base(p)?;
        let md = std::fs::metadata(&path).ok()?;
        let b = Base {
            path,
            dev_ino: (md.dev(), md.ino()),
        };
        if !out.contains(&b) {
            out.push(b);
        }
    }
    Some(out)
}

/// The inotify watches of one file source.
pub struct Watch {
    watcher: RecommendedWatcher,
    patterns: Vec<String>,
    bases: Vec<Base>,
}

impl Watch {
    /// Watches below every include glob; `None` when inotify cannot be used (the
    /// caller polls instead).
    pub fn start(include: &[glob::Pattern], wake: &Arc<Wake>) -> Option<Self> {
        let w = wake.clone();
        let watcher = notify::recommended_watcher(move |res| w.on_event(res)).ok()?;
        let mut watch = Self {
            watcher,
            patterns: include.iter().map(|p| p.as_str().to_string()).collect(),
            bases: Vec::new(),
        };
        let now = bases(&watch.patterns)?;
        for b in &now {
            watch
                .watcher
                .watch(&b.path, RecursiveMode::Recursive)
                .ok()?;
        }
        watch.bases = now;
        Some(watch)
    }

    /// Moves the watches to where the globs start now: a watched directory that was
    /// deleted or replaced by another (its watch died with it), or a missing directory
    /// that appeared. Returns whether a watched directory was lost, so the caller
    /// counts it; events inside it may have been missed.
    pub fn resync(&mut self) -> bool {
        let Some(now) = bases(&self.patterns) else {
            return false;
        };
        if now == self.bases {
            return false;
        }
        let lost = self.bases.iter().any(|old| {
            std::fs::metadata(&old.path)
                .map(|md| (md.dev(), md.ino()) != old.dev_ino)
                .unwrap_or(true)
        });
        for old in &self.bases {
            // Already gone with its directory, usually.
            let _ = self.watcher.unwatch(&old.path);
        }
        let mut kept = Vec::new();
        for b in now {
            if self
                .watcher
                .watch(&b.path, RecursiveMode::Recursive)
                .is_ok()
            {
                kept.push(b);
            }
        }
        self.bases = kept;
        lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_is_the_deepest_existing_directory_before_a_wildcard() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::create_dir_all(d.join("a/b")).expect("mkdir");
        let p = |s: &str| d.join(s).to_string_lossy().into_owned();
        assert_eq!(glob_base(&p("a/b/*.log")), Some(d.join("a/b")));
        assert_eq!(glob_base(&p("a/*/x.log")), Some(d.join("a")));
        // Not there yet: watch the nearest ancestor, which will see it appear.
        assert_eq!(glob_base(&p("a/b/c/d/*.log")), Some(d.join("a/b")));
        assert_eq!(glob_base("/*.log"), None, "never the whole filesystem");
    }

    #[test]
    fn a_directory_stamp_changes_with_its_entries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pattern = glob::Pattern::new(&format!("{}/*.log", dir.path().display())).expect("glob");
        let mut stamps = DirStamps::default();
        stamps.reset(&[pattern], std::iter::empty());
        assert!(!stamps.changed());
        std::fs::write(dir.path().join("a.log"), b"x\n").expect("create");
        assert!(stamps.changed(), "a new entry");
        assert!(!stamps.changed(), "reported once");
        std::fs::rename(dir.path().join("a.log"), dir.path().join("a.log.1")).expect("mv");
        assert!(stamps.changed(), "a rename");
    }

    #[test]
    fn a_replaced_directory_is_watched_again_and_reported_lost() {
        let dir = tempfile::tempdir().expect("tempdir");
        let logs = dir.path().join("logs");
        std::fs::create_dir(&logs).expect("mkdir");
        let pattern = glob::Pattern::new(&format!("{}/*.log", logs.display())).expect("glob");
        let wake = Arc::new(Wake::default());
        let mut w = Watch::start(&[pattern], &wake).expect("inotify");
        assert!(!w.resync(), "nothing changed");
        std::fs::remove_dir(&logs).expect("rmdir");
        assert!(w.resync(), "the watched directory is gone");
        assert_eq!(
            w.bases[0].path,
            dir.path(),
            "its parent is watched meanwhile"
        );
        std::fs::create_dir(&logs).expect("mkdir");
        assert!(!w.resync(), "a directory appearing is not a loss");
        assert_eq!(w.bases[0].path, logs);
    }
}
