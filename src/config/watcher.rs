//! Watching the config files for `--watch-config`. Each file is watched through its
//! directory, so every way a file gets replaced is seen: written in place, an editor's
//! rename over it, and a Kubernetes ConfigMap's swap of the `..data` symlink its files
//! point through. A directory given as config is watched whole. Nothing here reads the
//! config: a change only wakes the reload loop, which debounces, reads and diffs.

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

/// Keeps the watch alive; dropping it stops watching.
pub struct ConfigWatcher {
    _watcher: RecommendedWatcher,
}

/// What to watch for the config `paths` (files or directories): the directories to
/// watch and whether recursively, and the file names that matter in them.
struct Plan {
    dirs: Vec<(PathBuf, RecursiveMode)>,
    /// Names of config files inside watched directories (not recursive ones).
    names: BTreeSet<OsString>,
    /// Directories watched whole.
    whole: Vec<PathBuf>,
}

fn plan(paths: &[PathBuf]) -> Plan {
    let mut p = Plan {
        dirs: Vec::new(),
        names: BTreeSet::new(),
        whole: Vec::new(),
    };
    for path in paths {
        if path.is_dir() {
            p.dirs.push((path.clone(), RecursiveMode::Recursive));
            p.whole.push(path.clone());
            continue;
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if let Some(name) = path.file_name() {
            p.names.insert(name.to_os_string());
        }
        if !p.dirs.iter().any(|(d, _)| *d == dir) {
            p.dirs.push((dir, RecursiveMode::NonRecursive));
        }
    }
    p
}

/// Whether a change at `path` may change the config.
fn relevant(plan: &Plan, path: &Path) -> bool {
    if plan.whole.iter().any(|d| path.starts_with(d)) {
        return true;
    }
    match path.file_name() {
        // `..data`, `..data_tmp`, `..2026_12_01_…`: a ConfigMap update.
        Some(name) => plan.names.contains(name) || name.to_string_lossy().starts_with(".."),
        None => false,
    }
}

/// Starts watching `paths`; each relevant change sends `()` on `changed` (a full
/// channel means a reload is already due, so nothing is lost by not waiting).
pub fn watch(paths: &[PathBuf], changed: mpsc::Sender<()>) -> Result<ConfigWatcher, String> {
    let plan = plan(paths);
    let dirs = plan.dirs.clone();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(event) = res else {
            // The queue overflowed or the watch broke: read the config again to be sure.
            let _ = changed.try_send(());
            return;
        };
        if matches!(event.kind, EventKind::Access(_)) {
            return;
        }
        if event.need_rescan() || event.paths.iter().any(|p| relevant(&plan, p)) {
            let _ = changed.try_send(());
        }
    })
    .map_err(|e| format!("cannot watch the config files: {e}"))?;
    for (dir, mode) in &dirs {
        watcher
            .watch(dir, *mode)
            .map_err(|e| format!("cannot watch {} for config changes: {e}", dir.display()))?;
    }
    Ok(ConfigWatcher { _watcher: watcher })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_watched_through_their_directory_and_configmap_swaps_count() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sluice.toml");
        std::fs::write(&file, "").unwrap();
        let sub = dir.path().join("conf.d");
        std::fs::create_dir(&sub).unwrap();
        let p = plan(&[file.clone(), sub.clone()]);
        assert_eq!(p.dirs.len(), 2);
        assert!(relevant(&p, &file));
        assert!(relevant(&p, &dir.path().join("..data")));
        assert!(relevant(&p, &sub.join("sinks").join("out.toml")));
        assert!(!relevant(&p, &dir.path().join("other.log")));
        assert!(!relevant(&p, &dir.path().join(".sluice.toml.swp")));
    }
}
