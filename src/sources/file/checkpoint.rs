//! Checkpoints: how far each file (by fingerprint) has been *delivered*, kept in one JSON
//! file per source under `data_dir`, replaced atomically (write temp, fsync, rename,
//! fsync the directory) so a crash or power loss leaves either the old or the new file,
//! never a torn one. A checkpoint that cannot be read is reported and set aside.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// One file's progress.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    /// The file's identity (see `fingerprint`), as hex.
    pub fingerprint: String,
    /// Bytes delivered from the start of the file.
    pub offset: u64,
    /// Where the file was last seen; informational.
    pub path: String,
}

#[derive(Serialize, Deserialize)]
struct OnDisk {
    version: u32,
    checkpoints: Vec<Entry>,
}

/// The checkpoint file of one source.
#[derive(Debug)]
pub struct Checkpoints {
    path: PathBuf,
    /// Delivered offsets by fingerprint.
    pub entries: BTreeMap<String, Entry>,
    dirty: bool,
}

impl Checkpoints {
    /// Loads `dir/checkpoints.json`. A missing file is an empty start; an unreadable one
    /// is renamed aside (`checkpoints.json.corrupt`) and reported as the error, so the
    /// source starts from its `read_from` policy instead of crash-looping.
    pub fn load(dir: &Path) -> (Self, Option<String>) {
        let path = dir.join("checkpoints.json");
        let mut cp = Self {
            path: path.clone(),
            entries: BTreeMap::new(),
            dirty: false,
        };
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (cp, None),
            Err(e) => return (cp, Some(format!("cannot read {}: {e}", path.display()))),
        };
        match serde_json::from_slice::<OnDisk>(&text) {
            Ok(d) => {
                cp.entries = d
                    .checkpoints
                    .into_iter()
                    .map(|e| (e.fingerprint.clone(), e))
                    .collect();
                (cp, None)
            }
            Err(e) => {
                let aside = dir.join("checkpoints.json.corrupt");
                let _ = fs::rename(&path, &aside);
                (
                    cp,
                    Some(format!(
                        "checkpoint file {} is corrupt ({e}); moved it to {} and starting from read_from",
                        path.display(),
                        aside.display()
                    )),
                )
            }
        }
    }

    /// Records delivered progress.
    pub fn set(&mut self, fingerprint: &str, offset: u64, path: &Path) {
        let e = self
            .entries
            .entry(fingerprint.to_string())
            .or_insert_with(|| Entry {
                fingerprint: fingerprint.to_string(),
                offset: 0,
                path: String::new(),
            });
        if e.offset != offset || e.path.as_str() != path.to_string_lossy() {
            e.offset = offset;
            e.path = path.to_string_lossy().into_owned();
            self.dirty = true;
        }
    }

    /// Whether entries of earlier builds (a bare 16-digit checksum of the first 256
    /// bytes) are left to carry over to today's identities.
    pub fn has_legacy(&self) -> bool {
        self.entries.keys().any(|k| is_legacy(k))
    }

    /// Moves the progress recorded under an earlier build's identity `old` to `new`;
    /// the offset, if there was one.
    pub fn adopt(&mut self, old: &str, new: &str, path: &Path) -> Option<u64> {
        if !is_legacy(old) {
            return None;
        }
        let e = self.entries.remove(old)?;
        self.set(new, e.offset, path);
        self.dirty = true;
        Some(e.offset)
    }

    /// Forgets every entry (`ignore_checkpoints`); the file is rewritten at the next
    /// flush, so an old offset cannot come back after a crash.
    pub fn clear(&mut self) {
        if !self.entries.is_empty() {
            self.entries.clear();
            self.dirty = true;
        }
    }

    /// Whether delivered offsets wait to be written: only then is a write timer needed.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Writes the file if anything changed since the last write; `Ok(true)` if it wrote.
    pub fn flush(&mut self) -> std::io::Result<bool> {
        if !self.dirty {
            return Ok(false);
        }
        let data = serde_json::to_vec_pretty(&OnDisk {
            version: 1,
            checkpoints: self.entries.values().cloned().collect(),
        })
        .map_err(std::io::Error::other)?;
        crate::write_atomic(&self.path, &data)?;
        self.dirty = false;
        Ok(true)
    }
}

/// An identity as earlier builds wrote it: 16 hex digits, no strategy prefix.
fn is_legacy(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_sets_corrupt_files_aside() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut cp, err) = Checkpoints::load(dir.path());
        assert!(err.is_none());
        cp.set("abc", 42, Path::new("/x.log"));
        assert!(cp.flush().expect("flush"));
        assert!(!cp.flush().expect("flush"), "nothing changed");
        let (cp2, _) = Checkpoints::load(dir.path());
        assert_eq!(cp2.entries.get("abc").map(|e| e.offset), Some(42));

        std::fs::write(
            dir.path().join("checkpoints.json"),
            b"{\"version\":1,\"checkp",
        )
        .expect("write");
        let (cp3, err) = Checkpoints::load(dir.path());
        assert!(cp3.entries.is_empty());
        assert!(err.is_some_and(|e| e.contains("corrupt")));
        assert!(dir.path().join("checkpoints.json.corrupt").exists());
    }

    #[test]
    fn an_earlier_builds_entry_moves_to_the_new_identity_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut cp, _) = Checkpoints::load(dir.path());
        cp.set("00112233aabbccdd", 500, Path::new("/a.log"));
        cp.set("checksum-0000000000000001", 7, Path::new("/b.log"));
        assert!(cp.has_legacy());
        let new = "checksum-00000000000000ff";
        assert_eq!(
            cp.adopt("00112233aabbccdd", new, Path::new("/a.log")),
            Some(500)
        );
        assert_eq!(cp.adopt("00112233aabbccdd", new, Path::new("/a.log")), None);
        assert_eq!(cp.entries.get(new).map(|e| e.offset), Some(500));
        assert!(!cp.has_legacy());
        assert_eq!(
            cp.adopt("checksum-0000000000000001", new, Path::new("/b")),
            None
        );
    }
}
