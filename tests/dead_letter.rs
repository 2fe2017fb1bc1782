//! Dead letters with the real binary: an `http` sink whose receiver refuses every tenth
//! request with 400 writes each refused event to its dead-letter file, with the reason,
//! the status and the sink's ID beside the event; the others are delivered; together
//! they are every event sent, once. A file sink whose path template needs a field an
//! event lacks writes that event there too. Gzip and the size cap are honoured.

use crate::support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::receiver::{Answer, Receiver};
use support::seq::*;
use support::*;

fn seq(v: &serde_json::Value) -> Option<usize> {
    v["event"]["message"]
        .as_str()?
        .strip_prefix("seq=")?
        .get(..8)?
        .parse()
        .ok()
}

fn http_case(extra: &str) -> (Sluice, Receiver, u16) {
    let r = Receiver::start();
    let calls = Arc::new(AtomicUsize::new(0));
    r.set_judge(Arc::new(move |_, _, _| {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        (n % 10 == 9).then(|| Answer::Status(400, Vec::new(), "bad batch".into()))
    }));
    let port = free_port();
    let s = Sluice::start(&format!(
        r#"
[sources.in]
type = "syslog"
mode = "tcp"
address = "127.0.0.1:{port}"

[sinks.out]
type = "http"
inputs = ["in"]
uri = "{}/ingest"
encoding.codec = "ndjson"
batch.max_events = 10
dead_letter.path = "{{DIR}}/dead/{{{{ component_id }}}}-%Y-%m-%d.jsonl"
{extra}
"#,
        r.url()
    ));
    (s, r, port)
}

fn dead_file(s: &Sluice) -> std::path::PathBuf {
    let dir = s.path("dead");
    let _ = wait_for(Duration::from_secs(10), || dir.exists());
    std::fs::read_dir(&dir)
        .expect("dead-letter dir")
        .flatten()
        .map(|e| e.path())
        .next()
        .expect("a dead-letter file")
}

#[test]
fn refused_requests_go_to_the_dead_letter_file_and_the_rest_is_delivered() {
    let (s, r, port) = http_case("");
    let total = 1000;
    send_numbered(port, 0, total);
    let settled = wait_for(Duration::from_secs(30), || {
        let m = s.metrics();
        let written =
            metric(&m, "sluice_dead_letters_total", &[("result", "written")]).unwrap_or(0.0);
        delivered_ndjson(&r.accepted_bodies()).len() as f64 + written >= total as f64
    });
    let delivered = delivered_ndjson(&r.accepted_bodies());
    let dead = dead_letters(&dead_file(&s));
    assert!(
        settled,
        "{} delivered, {} dead letters; log:\n{}",
        delivered.len(),
        dead.len(),
        s.log_text()
    );
    assert!(!dead.is_empty(), "nothing was refused");
    let mut all: BTreeMap<usize, usize> = delivered.clone();
    for d in &dead {
        assert_eq!(d["status"], 400, "{d}");
        assert_eq!(d["component_id"], "out", "{d}");
        assert!(
            d["reason"]
                .as_str()
                .is_some_and(|r| r.contains("bad batch")),
            "{d}"
        );
        assert!(d["time"].is_string(), "{d}");
        assert_eq!(
            d["event"]["hostname"], "web",
            "the whole event is kept: {d}"
        );
        *all.entry(seq(d).expect("numbered")).or_insert(0) += 1;
    }
    assert_exactly_once(&all, total, "delivered plus dead letters");
    let m = s.metrics();
    // The drop metrics still count them.
    assert_eq!(
        metric(
            &m,
            "sluice_component_discarded_events_total",
            &[("component_id", "out"), ("intentional", "false")]
        ),
        Some(dead.len() as f64)
    );
    assert_eq!(
        metric(&m, "sluice_dead_letters_total", &[("result", "written")]),
        Some(dead.len() as f64)
    );
    promtool_check(&m);
}

#[test]
fn dead_letters_may_be_gzipped_and_are_capped() {
    let (s, r, port) =
        http_case("dead_letter.compression = \"gzip\"\ndead_letter.max_bytes = 2000");
    send_numbered(port, 0, 1000);
    assert!(wait_for(Duration::from_secs(30), || {
        let m = s.metrics();
        let written =
            metric(&m, "sluice_dead_letters_total", &[("result", "written")]).unwrap_or(0.0);
        let dropped =
            metric(&m, "sluice_dead_letters_total", &[("result", "dropped")]).unwrap_or(0.0);
        delivered_ndjson(&r.accepted_bodies()).len() as f64 + written + dropped >= 1000.0
    }));
    let path = dead_file(&s);
    let size = std::fs::metadata(&path).expect("file").len();
    assert!(size <= 2000, "{size} bytes past the cap");
    let dead = dead_letters(&path);
    assert!(!dead.is_empty());
    let m = s.metrics();
    assert_eq!(
        metric(&m, "sluice_dead_letters_total", &[("result", "written")]),
        Some(dead.len() as f64)
    );
    assert!(
        metric(&m, "sluice_dead_letters_total", &[("result", "dropped")]).unwrap_or(0.0) > 0.0,
        "the cap dropped nothing"
    );
    assert!(
        s.log_text().contains("dead_letter.max_bytes"),
        "{}",
        s.log_text()
    );
}

#[test]
fn an_event_missing_a_field_of_the_file_path_becomes_a_dead_letter() {
    let port = free_port();
    let s = Sluice::start(&format!(
        r#"
[sources.in]
type = "syslog"
mode = "tcp"
address = "127.0.0.1:{port}"

[transforms.tag]
type = "remap"
inputs = ["in"]
source = '''
if contains(string!(.message), "seq=0000000") {{ .team = "a" }}
'''

[sinks.out]
type = "file"
inputs = ["tag"]
path = "{{DIR}}/out-{{{{ team }}}}.jsonl"
dead_letter.path = "{{DIR}}/dead/out.jsonl"
"#
    ));
    send_numbered(port, 0, 20);
    let out = s.path("out-a.jsonl");
    assert!(wait_for(Duration::from_secs(10), || delivered(&out).len() >= 10));
    assert!(
        wait_for(Duration::from_secs(10), || dead_letters(
            &s.path("dead/out.jsonl")
        )
        .len()
            >= 10),
        "log:\n{}",
        s.log_text()
    );
    let dead = dead_letters(&s.path("dead/out.jsonl"));
    assert_eq!(dead.len(), 10);
    for d in &dead {
        assert!(seq(d).is_some_and(|n| n >= 10), "{d}");
        assert!(
            d["reason"].as_str().is_some_and(|r| r.contains("team")),
            "{d}"
        );
        assert!(d["status"].is_null(), "{d}");
    }
}
