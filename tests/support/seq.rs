//! Numbered log lines (`seq=NNNNNNNN ...`): what a sink delivered and what is on disk,
//! counted by sequence number, so a test can say exactly which lines were lost or doubled.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

/// Numbered RFC 5424 lines `from..from + n`, newline-framed, as a syslog client sends
/// them.
pub fn numbered_syslog(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("<13>1 - web app - - - seq={i:08} x\n"))
        .collect()
}

/// Sends numbered syslog lines `from..from + n` to a TCP source in one write.
pub fn send_numbered(port: u16, from: usize, n: usize) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.write_all(numbered_syslog(from, n).as_bytes())
        .expect("send");
}

/// The sequence number a line starts with, if it is one of ours.
fn seq_of(msg: &str) -> Option<usize> {
    msg.strip_prefix("seq=")
        .and_then(|s| s.get(..8))
        .and_then(|s| s.parse().ok())
}

/// Sequence numbers delivered to the sink file, with how often each arrived. Only a
/// SIGKILL may leave a torn line (see `delivered_after_kill`).
pub fn delivered(path: &Path) -> BTreeMap<usize, usize> {
    let (seen, torn) = delivered_after_kill(path);
    assert_eq!(torn, 0, "torn lines in {}", path.display());
    seen
}

/// Like `delivered`, counting lines that are not whole JSON (torn by a kill) instead.
pub fn delivered_after_kill(path: &Path) -> (BTreeMap<usize, usize>, usize) {
    let mut seen = BTreeMap::new();
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let torn = count_json_lines(&text, &mut seen);
    (seen, torn)
}

/// Sequence numbers in the NDJSON bodies an HTTP sink delivered, with how often each
/// arrived.
pub fn delivered_ndjson(bodies: &[Vec<u8>]) -> BTreeMap<usize, usize> {
    let mut seen = BTreeMap::new();
    for body in bodies {
        let torn = count_json_lines(&String::from_utf8_lossy(body), &mut seen);
        assert_eq!(torn, 0, "a body that is not NDJSON");
    }
    seen
}

/// Counts the numbered `message` of each whole JSON line in `text` into `seen`; how many
/// lines were not JSON.
fn count_json_lines(text: &str, seen: &mut BTreeMap<usize, usize>) -> usize {
    let mut torn = 0;
    // A line still being written (no newline yet) is not delivered yet.
    for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            torn += 1;
            continue;
        };
        let msg = v["message"].as_str().unwrap_or_default();
        if let Some(n) = seq_of(msg) {
            *seen.entry(n).or_insert(0) += 1;
        }
    }
    torn
}

/// Every sequence number below `total` arrived exactly once; the failure lists the first
/// lines lost or doubled.
pub fn assert_exactly_once(seen: &BTreeMap<usize, usize>, total: usize, context: &str) {
    let missing: Vec<usize> = (0..total).filter(|i| !seen.contains_key(i)).collect();
    assert!(
        missing.is_empty(),
        "{context}: {} lines lost, first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert_none_doubled(seen, context);
}

/// No sequence number arrived more than once; the failure lists the first doubled.
pub fn assert_none_doubled(seen: &BTreeMap<usize, usize>, context: &str) {
    let doubled: Vec<(&usize, &usize)> = seen.iter().filter(|(_, c)| **c > 1).collect();
    assert!(
        doubled.is_empty(),
        "{context}: {} lines doubled, first {:?}",
        doubled.len(),
        &doubled[..doubled.len().min(10)]
    );
}

/// Sequence numbers in the log files under `dir` (recursively, `.gz` decompressed), with
/// how often each is there: what rotation left for a reader to find.
pub fn on_disk(dir: &Path) -> BTreeMap<usize, usize> {
    let mut seen = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let text = read_text(&p);
            for line in text.lines() {
                if let Some(n) = seq_of(line) {
                    *seen.entry(n).or_insert(0) += 1;
                }
            }
        }
    }
    seen
}

/// A file's text, gunzipped when it is gzip (one member or several); empty if missing.
pub fn read_text(path: &Path) -> String {
    let raw = std::fs::read(path).unwrap_or_default();
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut s = String::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_string(&mut s)
            .expect("gunzip");
        s
    } else {
        String::from_utf8_lossy(&raw).into_owned()
    }
}

/// The dead letters in `path` (gzip members or plain lines): each line parsed.
pub fn dead_letters(path: &std::path::Path) -> Vec<serde_json::Value> {
    read_text(path)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a dead letter is one JSON line"))
        .collect()
}
