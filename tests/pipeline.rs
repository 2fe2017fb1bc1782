//! Whole pipelines through the real binary: generated and piped input, gzip and templated
//! file output, console output, sibling isolation under a stuck sink, and the drop and
//! error counters an operator relies on.

use crate::support;

use std::io::{Read, Write};
use std::process::Stdio;
use std::time::Duration;
use support::*;

#[test]
fn demo_into_gzip_files_per_app_then_exit_when_done() {
    let mut s = Sluice::start(
        r#"
[sources.gen]
type = "demo"
interval = 0.0
count = 20000

[sinks.out]
type = "file"
inputs = ["gen"]
path = "{DIR}/logs/{{ host }}/app-%Y.jsonl.gz"
compression = "gzip"
"#,
    );
    let status = s.wait(Duration::from_secs(30));
    assert!(status.success(), "log:\n{}", s.log_text());
    // Generated lines come from `localhost`, as in Vector's demo_logs.
    let dir = s.path("logs/localhost");
    let mut lines = 0;
    for f in std::fs::read_dir(&dir).expect("dir created").flatten() {
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(std::fs::File::open(f.path()).expect("open"))
            .read_to_string(&mut text)
            .expect("valid gzip");
        for l in text.lines() {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            assert_eq!(
                v["source_type"], "demo_logs",
                "Vector's source type, whichever name the config used"
            );
            lines += 1;
        }
    }
    assert_eq!(lines, 20000);
    assert!(s.log_text().contains("all sources finished"));
}

#[test]
fn stdin_to_console_as_a_filter() {
    let mut s = Sluice::start_with(
        "[sources.in]\ntype = \"stdin\"\n[sinks.out]\ntype = \"console\"\ninputs = [\"in\"]\n",
        |c| {
            c.stdin(Stdio::piped()).stdout(Stdio::piped());
        },
    );
    {
        let mut stdin = s.child().stdin.take().expect("stdin");
        stdin
            .write_all(b"first line\r\nsecond \"quoted\" line\n\nlast without newline")
            .expect("write");
    }
    let mut out = String::new();
    s.child()
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read");
    assert!(s.wait(Duration::from_secs(10)).success());
    let msgs: Vec<String> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("json")["message"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(
        msgs,
        [
            "first line",
            "second \"quoted\" line",
            "last without newline"
        ]
    );
}

#[test]
fn a_stuck_drop_newest_sink_does_not_stall_its_sibling() {
    let tcp = free_port();
    // `stuck` writes to a pipe nobody reads: it blocks once the pipe is full.
    let s = Sluice::start_with(
        &format!(
            r#"
[sources.in]
type = "syslog"
mode = "tcp"
address = "127.0.0.1:{tcp}"

[sinks.stuck]
type = "console"
inputs = ["in"]
buffer.max_events = 100
buffer.when_full = "drop_newest"

[sinks.archive]
type = "file"
inputs = ["in"]
path = "{{DIR}}/archive.jsonl"
"#
        ),
        |c| {
            c.stdout(Stdio::piped());
        },
    );
    let n = 30_000;
    let mut c = std::net::TcpStream::connect(("127.0.0.1", tcp)).expect("connect");
    let mut buf = Vec::new();
    for i in 0..n {
        writeln!(buf, "<13>1 - host app - - - event {i} {}", "p".repeat(100)).expect("fmt");
    }
    c.write_all(&buf).expect("send");
    drop(c);
    let dir = s.dir.path().to_path_buf();
    assert!(
        wait_for(Duration::from_secs(20), || count_lines(&dir, "archive")
            >= n),
        "archive got {} of {n}: the stuck sibling stalled it",
        count_lines(&dir, "archive")
    );
    let m = s.metrics();
    // The stuck sink holds the batch its blocked write carries: it cannot add up yet.
    let stuck = component_metrics_in_flight(&m, "stuck", "sink", "console");
    assert!(stuck.discarded > 0.0, "drops must be counted: {m}");
    assert_eq!(
        metric(
            &m,
            "sluice_component_discarded_events_total",
            &[("component_id", "stuck"), ("intentional", "false")]
        ),
        Some(stuck.discarded)
    );
    assert_eq!(
        metric(&m, "sluice_buffer_max_events", &[("component_id", "stuck")]),
        Some(100.0)
    );
    let archive = assert_component_metrics(&m, "archive", "sink", "file");
    assert_eq!(archive.sent_events, n as f64);
    assert_eq!(archive.discarded, 0.0);
}

#[test]
fn events_missing_a_template_field_are_counted_and_the_rest_flow() {
    let tcp = free_port();
    let s = Sluice::start(&format!(
        r#"
[sources.in]
type = "syslog"
mode = "tcp"
address = "127.0.0.1:{tcp}"

[sinks.out]
type = "file"
inputs = ["in"]
path = "{{DIR}}/by-app/{{{{ appname }}}}.jsonl"
encoding.codec = "text"
idle_timeout_secs = 1
"#
    ));
    let mut c = std::net::TcpStream::connect(("127.0.0.1", tcp)).expect("connect");
    c.write_all(b"<13>1 - host alpha - - - one\n<13>1 - host - - - - no app\n<13>1 - host beta - - - two\n<13>1 - host ../../etc - - - sneaky\n").expect("send");
    drop(c);
    let dir = s.path("by-app");
    assert!(wait_for(Duration::from_secs(5), || count_lines(&dir, "") >= 3));
    assert_eq!(
        std::fs::read_to_string(dir.join("alpha.jsonl"))
            .ok()
            .as_deref(),
        Some("one\n")
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("beta.jsonl"))
            .ok()
            .as_deref(),
        Some("two\n")
    );
    assert_eq!(
        std::fs::read_to_string(dir.join(".._.._etc.jsonl"))
            .ok()
            .as_deref(),
        Some("sneaky\n")
    );
    let m = s.metrics();
    assert_eq!(
        metric(
            &m,
            "sluice_component_errors_total",
            &[("component_id", "out"), ("error_type", "template")]
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &m,
            "sluice_component_discarded_events_total",
            &[("component_id", "out"), ("intentional", "false")]
        ),
        Some(1.0)
    );
    assert!(
        s.log_text().contains("no field `appname`"),
        "{}",
        s.log_text()
    );
    // Idle files are closed after idle_timeout_secs.
    assert!(wait_for(Duration::from_secs(5), || metric(
        &s.metrics(),
        "sluice_files_open",
        &[("component_id", "out")]
    ) == Some(0.0)));
}

#[test]
fn sample_transform_passes_one_in_n_and_counts_the_rest() {
    // `idle` never finishes, so sluice keeps serving /metrics after the demo is done.
    let mut s = Sluice::start_with(
        r#"
[sources.gen]
type = "demo"
interval = 0.0
count = 1000

[sources.idle]
type = "demo"
interval = 3600.0

[transforms.tenth]
type = "sample"
inputs = ["gen"]
rate = 10

[sinks.out]
type = "file"
inputs = ["tenth"]
path = "{DIR}/out.jsonl"

[sinks.all]
type = "console"
inputs = ["stdin_in", "idle"]

[sources.stdin_in]
type = "stdin"

[sinks.hole]
type = "blackhole"
inputs = ["gen", "stdin_in"]
print_interval_secs = 0
"#,
        |c| {
            c.stdin(Stdio::piped()).stdout(Stdio::piped());
        },
    );
    {
        let mut stdin = s.child().stdin.take().expect("stdin");
        for i in 0..500 {
            writeln!(stdin, "line {i}").expect("write");
        }
    }
    let mut stdout = s.child().stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    assert!(
        wait_for(Duration::from_secs(20), || sent_events(&s, "out") >= 100.0
            && sent_events(&s, "hole") >= 1500.0
            && sent_events(&s, "all") >= 501.0),
        "{}",
        s.metrics()
    );
    assert_eq!(count_lines(s.dir.path(), "out.jsonl"), 100);
    let m = s.metrics();
    let t = assert_component_metrics(&m, "tenth", "transform", "sample");
    assert_eq!(
        (t.received_events, t.sent_events, t.discarded),
        (1000.0, 100.0, 900.0)
    );
    assert_eq!(
        metric(
            &m,
            "sluice_component_discarded_events_total",
            &[("component_id", "tenth"), ("intentional", "true")]
        ),
        Some(900.0)
    );
    assert_eq!(
        assert_component_metrics(&m, "gen", "source", "demo").sent_events,
        1000.0
    );
    assert_eq!(
        assert_component_metrics(&m, "idle", "source", "demo").sent_events,
        1.0
    );
    assert_eq!(
        assert_component_metrics(&m, "stdin_in", "source", "stdin").sent_events,
        500.0
    );
    assert_eq!(
        assert_component_metrics(&m, "out", "sink", "file").sent_events,
        100.0
    );
    assert_eq!(
        assert_component_metrics(&m, "hole", "sink", "blackhole").sent_events,
        1500.0
    );
    assert_eq!(
        assert_component_metrics(&m, "all", "sink", "console").sent_events,
        501.0
    );
    assert!(s.terminate(Duration::from_secs(10)).success());
    assert_eq!(reader.join().expect("reader").lines().count(), 501);
}

#[test]
fn own_logs_are_json_on_request_and_filtered_by_sluice_log() {
    let mut s = Sluice::start_with(
        "[sources.gen]\ntype = \"demo\"\ninterval = 0.0\ncount = 10\n[sinks.out]\ntype = \"blackhole\"\ninputs = [\"gen\"]\n",
        |c| {
            c.arg("--log-format").arg("json").env("SLUICE_LOG", "info");
        },
    );
    assert!(s.wait(Duration::from_secs(10)).success());
    let log = s.log_text();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["level"] == "INFO" && l["fields"]["message"] == "sluice started."),
        "{log}"
    );

    let mut quiet = Sluice::start_with(
        "[sources.gen]\ntype = \"demo\"\ninterval = 0.0\ncount = 10\n[sinks.out]\ntype = \"blackhole\"\ninputs = [\"gen\"]\n",
        |c| {
            c.env("SLUICE_LOG", "warn");
        },
    );
    assert!(quiet.wait(Duration::from_secs(10)).success());
    assert!(!quiet.log_text().contains("INFO"), "{}", quiet.log_text());
}

#[test]
fn a_torn_last_line_from_a_crash_is_ended_before_appending() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.jsonl");
    std::fs::write(&out, b"{\"message\":\"half a li").expect("torn");
    let mut s = Sluice::start(&format!(
        "[sources.gen]\ntype = \"demo\"\ninterval = 0.0\ncount = 10\n[sinks.out]\ntype = \"file\"\ninputs = [\"gen\"]\npath = \"{}\"\n",
        out.display()
    ));
    assert!(s.wait(Duration::from_secs(10)).success());
    let text = std::fs::read_to_string(&out).expect("read");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 11);
    assert_eq!(lines[0], "{\"message\":\"half a li");
    for l in &lines[1..] {
        assert!(serde_json::from_str::<serde_json::Value>(l).is_ok(), "{l}");
    }
}

#[test]
fn a_yaml_pipeline_runs_as_its_toml_twin_would() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.jsonl");
    let config = dir.path().join("vector.yaml");
    std::fs::write(
        &config,
        format!(
            "data_dir: {d}\napi:\n  enabled: false\nsources:\n  gen:\n    type: demo\n    interval: 0.0\n    count: 300\ntransforms:\n  third:\n    type: sample\n    rate: 3\n    inputs: [gen]\nsinks:\n  out:\n    type: file\n    inputs: [third]\n    path: {o}\n",
            d = dir.path().display(),
            o = out.display()
        ),
    )
    .expect("write");
    let status = std::process::Command::new(bin())
        .args(["run", "--config"])
        .arg(&config)
        .status()
        .expect("run");
    assert!(status.success());
    assert_eq!(count_lines(dir.path(), "out.jsonl"), 100);
}

#[test]
fn demo_logs_writes_vectors_formats() {
    let mut s = Sluice::start(
        r#"
[sources.json]
type = "demo_logs"
format = "json"
interval = 0.0
count = 5

[sources.apache]
type = "demo_logs"
format = "apache_common"
interval = 0.0
count = 5

[sources.shuffle]
type = "demo_logs"
format = "shuffle"
lines = ["alpha", "beta"]
sequence = true
interval = 0.0
count = 5

[sinks.out]
type = "file"
inputs = ["json", "apache", "shuffle"]
path = "{DIR}/out.jsonl"
"#,
    );
    assert!(
        s.wait(Duration::from_secs(20)).success(),
        "{}",
        s.log_text()
    );
    let events = read_jsonl(s.dir.path(), "out.jsonl");
    assert_eq!(events.len(), 15);
    let messages: Vec<&str> = events
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    let json: Vec<&&str> = messages.iter().filter(|m| m.starts_with('{')).collect();
    assert_eq!(json.len(), 5);
    for m in json {
        let v: serde_json::Value = serde_json::from_str(m).expect("a JSON line");
        assert_eq!(v["method"], "GET");
    }
    assert_eq!(
        messages
            .iter()
            .filter(|m| m.contains("\"GET /api/items/"))
            .count(),
        5
    );
    let shuffled: Vec<&&str> = messages
        .iter()
        .filter(|m| m.ends_with("alpha") || m.ends_with("beta"))
        .collect();
    assert_eq!(shuffled.len(), 5);
    assert!(shuffled.iter().any(|m| m.starts_with("0 ")), "{shuffled:?}");
}

#[test]
fn sample_by_key_by_group_and_by_ratio_as_vector_does() {
    // Ten values, ten lines each; stdin closes, so the pipeline drains and exits.
    let (mut s, stdin) = Sluice::start_piped(
        r#"
[sources.in]
type = "stdin"

[transforms.by_key]
type = "sample"
inputs = ["in"]
rate = 2
key_field = "message"

[transforms.by_group]
type = "sample"
inputs = ["in"]
rate = 2
group_by = "{{ message }}"

[transforms.by_ratio]
type = "sample"
inputs = ["in"]
ratio = 0.25
sample_rate_key = "rate"

[sinks.key]
type = "file"
inputs = ["by_key"]
path = "{DIR}/key.jsonl"

[sinks.group]
type = "file"
inputs = ["by_group"]
path = "{DIR}/group.jsonl"

[sinks.ratio]
type = "file"
inputs = ["by_ratio"]
path = "{DIR}/ratio.jsonl"
"#,
        (0..100).map(|i| format!("value-{}", i % 10)),
    );
    drop(stdin);
    assert!(
        s.wait(Duration::from_secs(20)).success(),
        "{}",
        s.log_text()
    );
    let per_value = |name: &str| {
        let mut m = std::collections::BTreeMap::<String, usize>::new();
        for e in read_jsonl(s.dir.path(), name) {
            *m.entry(e["message"].as_str().unwrap_or_default().to_string())
                .or_default() += 1;
        }
        m
    };
    // By key: every value is kept whole or not at all, and something of each kind happens.
    let key = per_value("key.jsonl");
    assert!(key.values().all(|&n| n == 10), "{key:?}");
    assert!(!key.is_empty() && key.len() < 10, "{key:?}");
    // By group: each value keeps one in two of its own lines.
    let group = per_value("group.jsonl");
    assert_eq!(group.len(), 10);
    assert!(group.values().all(|&n| n == 5), "{group:?}");
    // By ratio: a quarter, each with the rate recorded where asked.
    let ratio = read_jsonl(s.dir.path(), "ratio.jsonl");
    assert_eq!(ratio.len(), 25);
    assert!(
        ratio.iter().all(|e| e["rate"] == "0.25"),
        "{:?}",
        ratio.first()
    );
    assert!(read_jsonl(s.dir.path(), "key.jsonl")
        .iter()
        .all(|e| e["sample_rate"] == "2"));
}
