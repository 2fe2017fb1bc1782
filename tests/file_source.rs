//! The file source across restarts in the middle of a stream, a sink that fails while
//! sluice is stopped, a corrupt checkpoint, copytruncate under a lagging reader, gzip
//! rotations, multiline, `max_open_files` and odd lines. Every case counts the lines
//! written against the lines delivered, by sequence number: none lost, none doubled.
//! Rotation schemes under a live writer are in `file_rotation.rs`.

use crate::support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::seq::*;
use support::*;

fn config(logs: &str, sink_path: &str) -> String {
    format!(
        r#"
[sources.tail]
type = "file"
include = ["{logs}"]
glob_minimum_cooldown_ms = 100
rotate_wait_secs = 2

[sinks.out]
type = "file"
inputs = ["tail"]
path = "{sink_path}"
"#
    )
}

/// Length of one line `write_lines` writes: `seq=NNNNNNNN ` + 60 bytes + newline.
const LINE_BYTES: usize = 74;

/// Appends `count` numbered lines starting at `from`, reopening the file for every chunk
/// of 50, holding `pause` while writing.
fn write_lines(path: &Path, from: usize, count: usize, pause: &Mutex<()>) {
    let mut i = from;
    while i < from + count {
        let _g = pause.lock().unwrap_or_else(|p| p.into_inner());
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open log");
        let mut chunk = String::new();
        for _ in 0..50.min(from + count - i) {
            chunk.push_str(&format!("seq={i:08} {}\n", "x".repeat(60)));
            i += 1;
        }
        f.write_all(chunk.as_bytes()).expect("append");
    }
}

fn wait_delivered(out: &Path, total: usize, s: &Sluice) {
    let ok = wait_for(Duration::from_secs(30), || delivered(out).len() >= total);
    assert!(
        ok,
        "only {} of {total} delivered; log:\n{}",
        delivered(out).len(),
        s.log_text()
    );
}

/// Waits until all `total` lines arrived, gives stragglers a moment, then checks that
/// each arrived exactly once.
fn expect_all_once(out: &Path, total: usize, s: &Sluice, context: &str) {
    wait_delivered(out, total, s);
    std::thread::sleep(Duration::from_millis(300));
    assert_exactly_once(&delivered(out), total, context);
}

fn rotate(mode: &str, log: &Path, state: &Path) {
    require_tool("logrotate");
    let conf = log.with_extension("logrotate.conf");
    let compression = if mode.contains("compress") {
        ""
    } else {
        "nocompress\n"
    };
    std::fs::write(
        &conf,
        format!(
            "{} {{\n  rotate 3\n  {mode}\n  missingok\n  {compression}}}\n",
            log.display()
        ),
    )
    .expect("conf");
    run_logrotate(&conf, state);
}

/// A directory that outlives sluice restarts, with `logs/` ready, the file `a.log`
/// inside it and the sink's output path.
struct Stopped {
    dir: tempfile::TempDir,
    log: PathBuf,
    out: PathBuf,
}

fn stopped_setup() -> Stopped {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("logs")).expect("logs");
    let log = dir.path().join("logs/a.log");
    let out = dir.path().join("out.jsonl");
    Stopped { dir, log, out }
}

fn restartable(dir: &Path, sink: &str) -> Sluice {
    let cfg = format!(
        "data_dir = \"{}/state\"\n[api]\naddress = \"{{API}}\"\n",
        dir.display()
    ) + &config(&format!("{}/logs/*.log", dir.display()), sink);
    Sluice::start(&cfg)
}

#[test]
fn sigterm_in_the_middle_of_a_stream_then_restart() {
    let Stopped { dir, log, out } = stopped_setup();
    let pause = Mutex::new(());
    write_lines(&log, 0, 5000, &pause);
    let mut s = restartable(dir.path(), &out.display().to_string());
    let writer = {
        let log = log.clone();
        std::thread::spawn(move || write_lines(&log, 5000, 20_000, &Mutex::new(())))
    };
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        s.terminate(Duration::from_secs(30)).success(),
        "{}",
        s.log_text()
    );
    writer.join().expect("writer");
    let cp = std::fs::read_to_string(dir.path().join("state/tail/checkpoints.json"))
        .expect("checkpoint written");
    assert!(
        serde_json::from_str::<serde_json::Value>(&cp).is_ok(),
        "{cp}"
    );
    let s2 = restartable(dir.path(), &out.display().to_string());
    expect_all_once(&out, 25_000, &s2, "restart");
}

#[test]
fn sigkill_while_the_sink_is_down_then_restart_resends_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("logs")).expect("logs");
    let log = dir.path().join("logs/a.log");
    write_lines(&log, 0, 2000, &Mutex::new(()));
    // The sink's directory cannot be created: a regular file is in the way.
    std::fs::write(dir.path().join("blocker"), b"").expect("blocker");
    let mut s = restartable(
        dir.path(),
        &format!("{}/blocker/out.jsonl", dir.path().display()),
    );
    let m = || {
        metric(
            &s.metrics(),
            "sluice_component_errors_total",
            &[("component_id", "out"), ("error_type", "io")],
        )
        .unwrap_or(0.0)
    };
    assert!(
        wait_for(Duration::from_secs(10), || m() > 0.0),
        "the sink never failed"
    );
    // Killed outright while the sink is down: the checkpoint never moved past a line.
    s.child().kill().expect("SIGKILL");
    let _ = s.child().wait();
    let out = dir.path().join("out.jsonl");
    let s2 = restartable(dir.path(), &out.display().to_string());
    expect_all_once(&out, 2000, &s2, "after a failing sink");
}

#[test]
fn a_corrupt_checkpoint_is_reported_and_set_aside() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("logs")).expect("logs");
    std::fs::create_dir_all(dir.path().join("state/tail")).expect("state");
    std::fs::write(
        dir.path().join("state/tail/checkpoints.json"),
        b"\0\0{\"version\":",
    )
    .expect("corrupt");
    write_lines(&dir.path().join("logs/a.log"), 0, 500, &Mutex::new(()));
    let out = dir.path().join("out.jsonl");
    let s = restartable(dir.path(), &out.display().to_string());
    wait_delivered(&out, 500, &s);
    assert!(s.log_text().contains("corrupt"), "{}", s.log_text());
    assert!(dir
        .path()
        .join("state/tail/checkpoints.json.corrupt")
        .exists());
    assert_eq!(
        metric(
            &s.metrics(),
            "sluice_component_errors_total",
            &[("component_id", "tail"), ("error_type", "checkpoint")]
        ),
        Some(1.0)
    );
}

#[test]
fn lines_crlf_long_lines_invalid_utf8_and_short_files() {
    let s = Sluice::start(&config("{DIR}/logs/**/*.log", "{DIR}/out.jsonl").replace(
        "rotate_wait_secs = 2",
        "rotate_wait_secs = 2\nmax_line_bytes = 100\nexclude = [\"**/skip.log\"]",
    ));
    let logs = s.path("logs/nested/deeper");
    std::fs::create_dir_all(&logs).expect("dirs");
    let mut body = Vec::new();
    body.extend_from_slice(format!("{}\r\n", "h".repeat(300)).as_bytes()); // fingerprint + long line
    body.extend_from_slice(b"crlf line\r\n");
    body.extend_from_slice(b"caf\xe9\n");
    std::fs::write(logs.join("a.log"), &body).expect("write");
    std::fs::write(logs.join("skip.log"), "s".repeat(400) + "\n").expect("write");
    // Not one complete line yet, so no fingerprint: waits until the line ends.
    let short: PathBuf = s.path("logs/short.log");
    std::fs::write(&short, b"tiny").expect("write");
    let out = s.path("out.jsonl");
    let msgs = || -> Vec<String> {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).expect("json")["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    };
    assert!(
        wait_for(Duration::from_secs(10), || msgs().len() >= 3),
        "{:?}",
        msgs()
    );
    std::thread::sleep(Duration::from_millis(400));
    let got = msgs();
    assert_eq!(
        got,
        vec![
            "h".repeat(100),
            "crlf line".to_string(),
            "caf\u{fffd}".to_string()
        ]
    );
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&short)
        .expect("open");
    f.write_all(format!("\n{}\n", "g".repeat(300)).as_bytes())
        .expect("grow");
    assert!(
        wait_for(Duration::from_secs(10), || msgs().len() >= 5),
        "{:?}",
        msgs()
    );
    assert_eq!(&msgs()[3..], &["tiny".to_string(), "g".repeat(100)]);
    let m = s.metrics();
    assert_eq!(
        metric(
            &m,
            "sluice_component_errors_total",
            &[("component_id", "tail"), ("error_type", "truncated")]
        ),
        Some(2.0)
    );
}

#[test]
fn copytruncate_while_the_reader_lags_behind() {
    copytruncate_lagging("app.log*");
}

/// The copy is outside the glob: it is found beside the truncated file by its identity.
#[test]
fn copytruncate_while_the_reader_lags_behind_with_a_glob_that_misses_the_copy() {
    copytruncate_lagging("*.log");
}

fn copytruncate_lagging(glob: &str) {
    use std::io::BufRead;
    // The sink writes to a pipe this test does not read yet: backpressure holds the
    // reader far behind the writer when logrotate copies and truncates the file.
    let mut s = Sluice::start_with(
        &r#"
[sources.tail]
type = "file"
include = ["{DIR}/logs/GLOB"]

[sinks.out]
type = "console"
inputs = ["tail"]
buffer.max_events = 10
"#
        .replace("GLOB", glob),
        |c| {
            c.stdout(std::process::Stdio::piped());
        },
    );
    let logs = s.path("logs");
    std::fs::create_dir_all(&logs).expect("logs");
    let log = logs.join("app.log");
    let pause = Mutex::new(());
    write_lines(&log, 0, 20_000, &pause);
    std::thread::sleep(Duration::from_millis(500));
    rotate("copytruncate", &log, &s.path("logrotate.state"));
    write_lines(&log, 20_000, 5_000, &pause);
    let stdout = s.child().stdout.take().expect("stdout");
    let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = count.clone();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let v: serde_json::Value = serde_json::from_str(&line).expect("json");
            let msg = v["message"].as_str().unwrap_or_default().to_string();
            if let Some(n) = msg
                .strip_prefix("seq=")
                .and_then(|s| s.get(..8))
                .and_then(|s| s.parse().ok())
            {
                *seen.entry(n).or_insert(0) += 1;
            }
            counter.store(seen.len(), std::sync::atomic::Ordering::Relaxed);
            if seen.len() == 25_000 {
                break;
            }
        }
        seen
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !reader.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        reader.is_finished(),
        "{} of 25000 lines arrived; metrics:\n{}\nlog:\n{}",
        count.load(std::sync::atomic::Ordering::Relaxed),
        s.metrics()
            .lines()
            .filter(|l| l.contains("files_") || l.contains("received_events"))
            .collect::<Vec<_>>()
            .join("\n"),
        s.log_text()
    );
    let seen = reader.join().expect("reader");
    assert_exactly_once(&seen, 25_000, "copytruncate with a lagging reader");
    let m = s.metrics();
    assert_eq!(
        metric(
            &m,
            "sluice_files_truncated_total",
            &[("component_id", "tail")]
        ),
        Some(1.0),
        "{m}"
    );
}

#[test]
fn sigkill_mid_stream_loses_nothing_and_repeats_only_what_was_in_flight() {
    let Stopped { dir, log, out } = stopped_setup();
    let total = 40_000;
    write_lines(&log, 0, total, &Mutex::new(()));
    let mut s = restartable(dir.path(), &out.display().to_string());
    // Let part of the file through, then kill without any chance to flush.
    assert!(wait_for(Duration::from_secs(10), || delivered(&out).len() >= 5_000));
    s.child().kill().expect("SIGKILL");
    let _ = s.child().wait();
    let (before, torn) = delivered_after_kill(&out);
    let before = before.len();
    assert!(
        torn <= 1,
        "a kill can tear at most the last line, found {torn}"
    );
    let cp: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("state/tail/checkpoints.json"))
            .unwrap_or_else(|_| "{}".into()),
    )
    .unwrap_or_default();
    let checkpointed_lines =
        cp["checkpoints"][0]["offset"].as_u64().unwrap_or(0) as usize / LINE_BYTES;
    let s2 = restartable(dir.path(), &out.display().to_string());
    let ok = wait_for(Duration::from_secs(30), || {
        delivered_after_kill(&out).0.len() >= total
    });
    assert!(
        ok,
        "not everything arrived after the restart; log:\n{}",
        s2.log_text()
    );
    std::thread::sleep(Duration::from_millis(300));
    let (seen, torn_after) = delivered_after_kill(&out);
    // The one line a kill may tear is only counted once the restarted sink has ended it
    // with a newline; everything written after the restart is whole.
    assert!(
        torn_after <= 1 && torn <= torn_after,
        "only the line the kill tore may be broken: {torn} before, {torn_after} after"
    );
    let missing: Vec<usize> = (0..total).filter(|i| !seen.contains_key(i)).collect();
    assert!(missing.is_empty(), "{} lines lost", missing.len());
    // Only lines delivered after the last checkpoint write can come twice.
    let doubled = seen.values().filter(|c| **c > 1).count();
    let bound = before.saturating_sub(checkpointed_lines);
    assert!(
        doubled <= bound,
        "{doubled} doubled, but only {bound} were past the checkpoint"
    );
}

#[test]
fn a_different_file_at_a_checkpointed_path_is_read_from_its_start() {
    // The bug class of identity by path or inode: while sluice is stopped, the file it
    // checkpointed is deleted and a different one created at the same path (usually on
    // the same, now free, inode). Its first lines must not be skipped.
    let Stopped { dir, log, out } = stopped_setup();
    write_lines(&log, 0, 1000, &Mutex::new(()));
    let mut s = restartable(dir.path(), &out.display().to_string());
    wait_delivered(&out, 1000, &s);
    assert!(s.terminate(Duration::from_secs(30)).success());
    std::fs::remove_file(&log).expect("rm");
    write_lines(&log, 1000, 500, &Mutex::new(()));
    let s2 = restartable(dir.path(), &out.display().to_string());
    expect_all_once(&out, 1500, &s2, "a new file at a checkpointed path");
}

#[test]
fn a_thousand_files_under_one_glob() {
    let s = Sluice::start(&config("{DIR}/logs/**/*.log", "{DIR}/out.jsonl"));
    let pause = Mutex::new(());
    for d in 0..10 {
        let dir = s.path(&format!("logs/d{d}"));
        std::fs::create_dir_all(&dir).expect("dir");
        for f in 0..100 {
            let n = d * 100 + f;
            write_lines(&dir.join(format!("f{f}.log")), n * 10, 10, &pause);
        }
    }
    let out = s.path("out.jsonl");
    expect_all_once(&out, 10_000, &s, "1000 files");
    assert_eq!(
        metric(
            &s.metrics(),
            "sluice_files_open",
            &[("component_id", "tail")]
        ),
        Some(1000.0)
    );
}

#[test]
fn rotated_and_compressed_while_stopped_is_read_from_the_gz_at_the_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("logs")).expect("logs");
    let log = dir.path().join("logs/app.log");
    let out = dir.path().join("out.jsonl");
    let pause = Mutex::new(());
    write_lines(&log, 0, 3000, &pause);
    let glob = format!("{}/logs/app.log*", dir.path().display());
    let cfg = || {
        format!(
            "data_dir = \"{}/state\"\n[api]\naddress = \"{{API}}\"\n",
            dir.path().display()
        ) + &config(&glob, &out.display().to_string())
    };
    let mut s = Sluice::start(&cfg());
    wait_delivered(&out, 3000, &s);
    assert!(s.terminate(Duration::from_secs(30)).success());
    // While sluice is down: more lines, then rotation with compression, then new lines.
    write_lines(&log, 3000, 2000, &pause);
    rotate(
        "create\n  compress",
        &log,
        &dir.path().join("logrotate.state"),
    );
    assert!(
        dir.path().join("logs/app.log.1.gz").exists(),
        "logrotate did not compress"
    );
    write_lines(&log, 5000, 1000, &pause);
    let s2 = Sluice::start(&cfg());
    expect_all_once(&out, 6000, &s2, "gzip rotation while stopped");
}

#[test]
fn multiline_corpus_gives_exactly_the_listed_events() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/multiline");
    for (name, pattern, events, second_lines) in [
        ("java.log", r"^\d{4}-\d{2}-\d{2} ", 4, 11),
        ("python.log", r"^\d{4}-\d{2}-\d{2} ", 4, 7),
        ("go-panic.log", r"^(\d{4}/\d{2}/\d{2} |panic: )", 3, 9),
    ] {
        let s = Sluice::start(&format!(
            r#"
[sources.tail]
type = "file"
include = ["{{DIR}}/logs/*.log"]
glob_minimum_cooldown_ms = 100
multiline.start_pattern = '{pattern}'
multiline.condition_pattern = '{pattern}'
multiline.mode = "halt_before"
multiline.timeout_ms = 200

[sinks.out]
type = "file"
inputs = ["tail"]
path = "{{DIR}}/out.jsonl"
"#
        ));
        std::fs::create_dir_all(s.path("logs")).expect("logs");
        let text = std::fs::read_to_string(corpus.join(name)).expect("corpus");
        std::fs::write(s.path("logs").join(name), &text).expect("copy");
        let out = s.path("out.jsonl");
        let msgs = || -> Vec<String> {
            std::fs::read_to_string(&out)
                .unwrap_or_default()
                .split_inclusive('\n')
                .filter(|l| l.ends_with('\n'))
                .map(|l| {
                    serde_json::from_str::<serde_json::Value>(l).expect("json")["message"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string()
                })
                .collect()
        };
        assert!(
            wait_for(Duration::from_secs(10), || msgs().len() >= events),
            "{name}: {:?}",
            msgs()
        );
        std::thread::sleep(Duration::from_millis(400));
        let got = msgs();
        assert_eq!(got.len(), events, "{name}: {got:#?}");
        assert_eq!(got[1].lines().count(), second_lines, "{name}: {}", got[1]);
        assert_eq!(
            got.join("\n"),
            text.trim_end_matches('\n'),
            "{name}: every line exactly once, in order"
        );
    }
}

#[test]
fn poll_mode_follows_files_without_inotify() {
    let s = Sluice::start(&config("{DIR}/logs/*.log", "{DIR}/out.jsonl").replace(
        "glob_minimum_cooldown_ms = 100",
        "glob_minimum_cooldown_ms = 100\nwatch = \"poll\"",
    ));
    std::fs::create_dir_all(s.path("logs")).expect("logs");
    let log = s.path("logs/a.log");
    let pause = Mutex::new(());
    write_lines(&log, 0, 1000, &pause);
    let out = s.path("out.jsonl");
    wait_delivered(&out, 1000, &s);
    write_lines(&log, 1000, 1000, &pause);
    expect_all_once(&out, 2000, &s, "poll mode");
    assert!(
        !s.log_text().contains("polling instead"),
        "{}",
        s.log_text()
    );
}

#[test]
fn max_open_files_parks_quiet_files_and_loses_nothing() {
    let s = Sluice::start(&config("{DIR}/logs/*.log", "{DIR}/out.jsonl").replace(
        "rotate_wait_secs = 2",
        "rotate_wait_secs = 2\nmax_open_files = 5",
    ));
    std::fs::create_dir_all(s.path("logs")).expect("logs");
    let pause = Mutex::new(());
    let out = s.path("out.jsonl");
    // Three rounds over twenty files: each file is parked and reopened along the way.
    let mut total = 0;
    for round in 0..3 {
        for f in 0..20 {
            write_lines(&s.path(&format!("logs/f{f:02}.log")), total, 50, &pause);
            total += 50;
        }
        wait_delivered(&out, total, &s);
        let _ = round;
    }
    expect_all_once(&out, total, &s, "max_open_files");
    // The source's own high-water mark: every change to the open set updates it, so a
    // spike between two scrapes cannot hide.
    let m = s.metrics();
    let peak = metric(&m, "sluice_files_open_peak", &[("component_id", "tail")]);
    assert_eq!(
        peak,
        Some(5.0),
        "more than 5 files were open, or the limit was never reached"
    );
    assert_component_metrics(&m, "tail", "source", "file");
    assert_component_metrics(&m, "out", "sink", "file");
}
