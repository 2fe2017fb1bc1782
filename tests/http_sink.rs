//! The `http` sink against a local HTTP server that fails on command (500s, 429 with
//! Retry-After, hanging past the timeout, closing the connection, 400): exact delivery
//! after recovery, Retry-After honoured by the server's own clock, 400 never retried,
//! one request at a time per URI, the circuit breaker, gzip and credentials, and one
//! sluice feeding another a million events.

use crate::support;

use serde_json::Value as Json;
use std::collections::HashMap;
use std::io::Write;
use std::process::Stdio;
use std::time::Duration;
use support::receiver::{Answer, Receiver};
use support::*;

/// Starts sluice reading `lines` from stdin into an `http` sink with `sink` options.
/// Stdin stays open (so sluice keeps running for its metrics to be read) until the
/// returned handle is dropped.
fn pipe_lines(
    sink: &str,
    lines: impl Iterator<Item = String>,
) -> (Sluice, std::process::ChildStdin) {
    Sluice::start_piped(
        &format!(
            r#"
[sources.in]
type = "stdin"

[sinks.out]
inputs = ["in"]
type = "http"
{sink}
"#
        ),
        lines,
    )
}

/// Waits until the sink counted `n` events as sent, then returns the metrics.
fn metrics_once_sent(s: &Sluice, n: f64) -> String {
    let mut m = String::new();
    let sent = wait_for(Duration::from_secs(60), || {
        m = s.metrics();
        count(
            &m,
            "sluice_component_sent_events_total",
            &[("component_id", "out")],
        ) >= n
    });
    assert!(
        sent,
        "the sink did not send {n} events; log:\n{}",
        s.log_text()
    );
    m
}

/// The `message` of every event in the accepted NDJSON bodies, in arrival order.
fn accepted_messages(r: &Receiver) -> Vec<String> {
    r.accepted_bodies()
        .iter()
        .flat_map(|b| {
            String::from_utf8_lossy(b)
                .lines()
                .map(|l| {
                    let v: Json = serde_json::from_str(l).expect("NDJSON line");
                    v["message"].as_str().expect("message").to_string()
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn count(m: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    metric(m, name, labels).unwrap_or(0.0)
}

#[test]
fn every_event_arrives_once_and_in_order_through_500s_closed_connections_and_timeouts() {
    let r = Receiver::start();
    r.script([
        Answer::Status(500, vec![], "boom".into()),
        Answer::Status(503, vec![], String::new()),
        Answer::Close,
        Answer::Hang(Duration::from_millis(900)),
        Answer::Status(502, vec![], String::new()),
    ]);
    let (mut s, stdin) = pipe_lines(
        &format!(
            r#"uri = "{}/ingest"
encoding.codec = "ndjson"
batch.max_events = 100
batch.timeout_secs = 0.2
request.timeout_secs = 0.5
request.retry_initial_backoff_secs = 0.05
request.retry_max_duration_secs = 0.2
circuit_breaker.failure_threshold = 0
"#,
            r.url()
        ),
        (0..5000).map(|i| format!("seq-{i}")),
    );
    let m = metrics_once_sent(&s, 5000.0);
    // Input ends: sluice drains and exits 0.
    drop(stdin);
    let status = s.wait(Duration::from_secs(60));
    assert!(status.success(), "{}", s.log_text());
    let got = accepted_messages(&r);
    let want: Vec<String> = (0..5000).map(|i| format!("seq-{i}")).collect();
    assert_eq!(got.len(), want.len(), "lost or duplicated events");
    assert_eq!(got, want, "order within one URI must be kept");
    // The failed attempts carried the same first batch each time.
    let reqs = r.requests();
    assert!(reqs[..6].windows(2).all(|w| w[0].body == w[1].body));
    assert_eq!(count(&m, "sluice_sink_retries_total", &[]), 5.0);
    assert_eq!(
        count(
            &m,
            "sluice_http_client_requests_total",
            &[("status", "500")]
        ),
        1.0
    );
    assert_eq!(
        count(
            &m,
            "sluice_http_client_requests_total",
            &[("status", "error")]
        ),
        2.0
    );
    assert_eq!(
        count(
            &m,
            "sluice_component_errors_total",
            &[("error_type", "request_failed")]
        ),
        5.0
    );
    let c = assert_component_metrics(&m, "out", "sink", "http");
    assert_eq!(c.sent_events, 5000.0);
    promtool_check(&m);
    assert!(m.contains("sluice_http_client_request_duration_seconds_bucket"));
    let log = s.log_text();
    assert!(
        log.contains("answered 500 Internal Server Error: boom"),
        "{log}"
    );
    // Logged once, then rate-limited: the counters above hold every occurrence.
    assert_eq!(log.matches("request_failed").count(), 1, "{log}");
    // The destination recovered: said once, after the error, so the log does not end
    // on a stale failure.
    let recovered = log
        .find("Destination accepts requests again.")
        .unwrap_or_else(|| panic!("no recovery line: {log}"));
    assert!(recovered > log.find("request_failed").unwrap_or(0), "{log}");
    assert_eq!(
        log.matches("Destination accepts requests again.").count(),
        1,
        "{log}"
    );
}

#[test]
fn retry_after_is_honoured_and_a_400_is_never_retried() {
    let r = Receiver::start();
    r.script([
        Answer::Status(
            429,
            vec![("Retry-After".into(), "2".into())],
            "slow down".into(),
        ),
        Answer::ok(),
        Answer::Status(400, vec![], "{\"error\":\"field x is bad\"}".into()),
    ]);
    let (mut s, stdin) = pipe_lines(
        &format!(
            r#"uri = "{}/"
encoding.codec = "ndjson"
batch.max_events = 100
request.retry_initial_backoff_secs = 0.05
"#,
            r.url()
        ),
        (0..300).map(|i| format!("seq-{i}")),
    );
    let m = metrics_once_sent(&s, 200.0);
    drop(stdin);
    assert!(
        s.wait(Duration::from_secs(30)).success(),
        "{}",
        s.log_text()
    );
    let reqs = r.requests();
    assert_eq!(reqs.len(), 4, "the 400 must not be retried");
    // Measured by the server: the retry came no sooner than Retry-After said.
    let gap = reqs[1].at.duration_since(reqs[0].at);
    assert!(gap >= Duration::from_millis(1950), "retried after {gap:?}");
    assert_eq!(reqs[0].body, reqs[1].body);
    // The rejected batch never came back; the others arrived once, in order.
    assert_ne!(reqs[3].body, reqs[2].body);
    let got = accepted_messages(&r);
    let want: Vec<String> = (0..100)
        .chain(200..300)
        .map(|i| format!("seq-{i}"))
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        count(
            &m,
            "sluice_component_errors_total",
            &[("error_type", "rejected")]
        ),
        1.0
    );
    assert_eq!(
        count(
            &m,
            "sluice_component_discarded_events_total",
            &[("component_id", "out"), ("intentional", "false")]
        ),
        100.0
    );
    assert_eq!(
        count(
            &m,
            "sluice_http_client_requests_total",
            &[("status", "429")]
        ),
        1.0
    );
    let log = s.log_text();
    assert!(log.contains("field x is bad"), "{log}");
}

#[test]
fn one_request_at_a_time_per_uri_and_in_parallel_across_uris() {
    let r = Receiver::start();
    r.set_delay(Duration::from_millis(50));
    r.script([
        Answer::Status(500, vec![], String::new()),
        Answer::Status(500, vec![], String::new()),
    ]);
    let port = free_port();
    let s = Sluice::start(&format!(
        r#"
[sources.in]
type = "http_server"
address = "127.0.0.1:{port}"
decoding.codec = "ndjson"

[sinks.out]
inputs = ["in"]
type = "http"
uri = "{}/hooks/{{{{ app }}}}"
encoding.codec = "ndjson"
batch.max_events = 50
batch.timeout_secs = 0.1
request.concurrency = 4
request.retry_initial_backoff_secs = 0.05
"#,
        r.url()
    ));
    // 4000 events over four apps, posted in 40 bodies.
    for b in 0..40 {
        let body: String = (0..100)
            .map(|i| {
                let seq = b * 100 + i;
                format!("{{\"app\":\"a{}\",\"seq\":{seq}}}\n", seq % 4)
            })
            .collect();
        let (code, _) = http_post(&format!("http://127.0.0.1:{port}/"), &[], body.as_bytes());
        assert_eq!(code, 200);
    }
    let done = wait_for(Duration::from_secs(60), || {
        r.accepted_bodies()
            .iter()
            .map(|b| b.iter().filter(|&&c| c == b'\n').count())
            .sum::<usize>()
            >= 4000
    });
    assert!(done, "{}", s.log_text());
    let mut per_app: HashMap<String, Vec<i64>> = HashMap::new();
    for req in r.requests().iter().filter(|q| q.answered == 200) {
        for l in String::from_utf8_lossy(&req.body).lines() {
            let v: Json = serde_json::from_str(l).expect("json");
            assert_eq!(req.path, format!("/hooks/{}", v["app"].as_str().unwrap()));
            per_app
                .entry(v["app"].as_str().unwrap().to_string())
                .or_default()
                .push(v["seq"].as_i64().unwrap());
        }
    }
    for (app, seqs) in &per_app {
        assert_eq!(seqs.len(), 1000, "{app}");
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{app} out of order");
        assert_eq!(
            r.max_in_flight(&format!("/hooks/{app}")),
            1,
            "{app} overlapped"
        );
    }
    assert_eq!(per_app.len(), 4);
    let total = r.max_in_flight_total();
    assert!(
        (2..=4).contains(&total),
        "{total} requests were in flight at once"
    );
}

#[test]
fn the_circuit_opens_on_a_failing_destination_probes_it_and_closes_when_it_recovers() {
    let r = Receiver::start();
    r.set_default(Answer::Status(503, vec![], String::new()));
    let (mut s, stdin) = pipe_lines(
        &format!(
            r#"uri = "{}/"
encoding.codec = "ndjson"
batch.max_events = 10
request.retry_initial_backoff_secs = 0.02
request.retry_max_duration_secs = 0.05
circuit_breaker.failure_threshold = 3
circuit_breaker.probe_interval_secs = 1.0
"#,
            r.url()
        ),
        (0..100).map(|i| format!("seq-{i}")),
    );
    let open = wait_for(Duration::from_secs(10), || {
        count(&s.metrics(), "sluice_sink_circuit_open", &[]) == 1.0
    });
    assert!(open, "{}", s.log_text());
    // While open, only a probe a second reaches the destination.
    let before = r.requests().len();
    std::thread::sleep(Duration::from_millis(3500));
    let during = r.requests().len() - before;
    assert!(
        (2..=5).contains(&during),
        "{during} requests in 3.5 s while open"
    );
    r.set_default(Answer::ok());
    metrics_once_sent(&s, 100.0);
    assert_eq!(count(&s.metrics(), "sluice_sink_circuit_open", &[]), 0.0);
    drop(stdin);
    let status = s.wait(Duration::from_secs(30));
    assert!(status.success(), "{}", s.log_text());
    let got = accepted_messages(&r);
    assert_eq!(
        got,
        (0..100).map(|i| format!("seq-{i}")).collect::<Vec<_>>()
    );
    let log = s.log_text();
    assert!(log.contains("circuit open"), "{log}");
    assert!(log.contains("circuit closed"), "{log}");
}

#[test]
fn gzip_json_arrays_credentials_and_headers_and_secrets_stay_out_of_logs() {
    let r = Receiver::start();
    r.script([Answer::Status(401, vec![], "who are you".into())]);
    let mut s = Sluice::start_with(
        &format!(
            r#"
[sources.in]
type = "stdin"

[sinks.out]
inputs = ["in"]
type = "http"
uri = "{}/v1/logs?source=sluice"
method = "PUT"
compression = "gzip"
auth.strategy = "bearer"
auth.token = "${{HOOK_TOKEN}}"
headers.X-Tenant = "${{HOOK_TENANT}}"
batch.max_events = 2
"#,
            r.url()
        ),
        |c| {
            c.stdin(Stdio::piped())
                .env("HOOK_TOKEN", "tok-very-secret")
                .env("HOOK_TENANT", "tenant-7");
        },
    );
    let mut stdin = s.child().stdin.take().expect("stdin");
    stdin.write_all(b"one\ntwo\nthree\nfour\n").expect("write");
    drop(stdin);
    assert!(s.wait(Duration::from_secs(30)).success());
    let reqs = r.requests();
    assert_eq!(reqs.len(), 2);
    for q in &reqs {
        assert_eq!(q.method, "PUT");
        assert_eq!(q.path, "/v1/logs?source=sluice");
        assert_eq!(q.headers["content-encoding"], "gzip");
        assert_eq!(q.headers["content-type"], "application/json");
        assert_eq!(q.headers["authorization"], "Bearer tok-very-secret");
        assert_eq!(q.headers["x-tenant"], "tenant-7");
    }
    // The first batch was refused (401), the second delivered as a JSON array.
    let arr: Vec<Json> = serde_json::from_slice(&reqs[1].body).expect("a JSON array");
    let msgs: Vec<&str> = arr.iter().map(|e| e["message"].as_str().unwrap()).collect();
    assert_eq!(msgs, ["three", "four"]);
    let log = s.log_text();
    assert!(log.contains("who are you"), "{log}");
    assert!(
        !log.contains("tok-very-secret") && !log.contains("tenant-7"),
        "{log}"
    );

    // `validate` names the bad key without printing any secret.
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        format!(
            "[sources.in]\ntype = \"stdin\"\n[sinks.out]\ninputs = [\"in\"]\ntype = \"http\"\nuri = \"http://user:uri-very-secret@bad host:{}/\"\nauth.strategy = \"basic\"\nauth.username = \"u\"\nauth.password = \"pw-very-secret\"\nheaders.\"Bad Header\" = \"hdr-very-secret\"\nrequest.concurrency = 0\n",
            r.addr.port()
        ),
    )
    .expect("write");
    let out = std::process::Command::new(bin())
        .args(["validate", "--config"])
        .arg(&cfg)
        .output()
        .expect("validate");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(78), "{text}");
    assert!(text.contains("headers.Bad Header"), "{text}");
    assert!(text.contains("request.concurrency"), "{text}");
    assert!(text.contains("key `uri`"), "{text}");
    assert!(!text.contains("very-secret"), "{text}");
}

#[test]
fn one_sluice_feeds_another_a_million_events_and_none_is_lost() {
    let port = free_port();
    let b = Sluice::start(&format!(
        r#"
[sources.in]
type = "http_server"
address = "127.0.0.1:{port}"
decoding.codec = "ndjson"

[sinks.out]
inputs = ["in"]
type = "file"
path = "{{DIR}}/got.txt"
encoding.codec = "text"
"#
    ));
    let mut a = Sluice::start(&format!(
        r#"
[sources.gen]
type = "demo"
interval = 0.0
count = 1000000

[sinks.out]
inputs = ["gen"]
type = "http"
uri = "http://127.0.0.1:{port}/"
encoding.codec = "ndjson"
compression = "gzip"
"#
    ));
    assert!(
        a.wait(Duration::from_secs(300)).success(),
        "{}",
        a.log_text()
    );
    let dir = b.dir.path().to_path_buf();
    assert!(wait_for(Duration::from_secs(60), || count_lines(
        &dir, "got"
    ) >= 1_000_000));
    let text = std::fs::read_to_string(dir.join("got.txt")).expect("read");
    let mut seen = vec![false; 1_000_000];
    let mut lines = 0;
    for l in text.lines() {
        let seq: usize = l
            .rsplit(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no sequence number in {l}"));
        assert!(!seen[seq], "event {seq} arrived twice");
        seen[seq] = true;
        lines += 1;
    }
    assert_eq!(lines, 1_000_000);
    let mb = b.metrics();
    let c = assert_component_metrics(&mb, "in", "source", "http_server");
    assert_eq!(c.received_events, 1_000_000.0);
}

#[test]
fn acknowledgements_carry_the_sinks_outcome_back_to_the_http_client() {
    let r = Receiver::start();
    r.script([
        Answer::ok(),
        Answer::Status(422, vec![], "unprocessable".into()),
        Answer::Status(500, vec![], String::new()),
        Answer::Status(500, vec![], String::new()),
    ]);
    let port = free_port();
    let _s = Sluice::start(&format!(
        r#"
[sources.in]
type = "http_server"
address = "127.0.0.1:{port}"
decoding.codec = "json"
acknowledgements = true

[sinks.out]
inputs = ["in"]
type = "http"
uri = "{}/"
batch.timeout_secs = 0.05
request.retry_attempts = 1
request.retry_initial_backoff_secs = 0.05
"#,
        r.url()
    ));
    let post = |body: &str| http_post(&format!("http://127.0.0.1:{port}/"), &[], body.as_bytes()).0;
    // Delivered: 200. Refused by the destination: 400. Failed twice (one retry): 500.
    assert_eq!(post(r#"{"n":1}"#), 200);
    assert_eq!(post(r#"{"n":2}"#), 400);
    assert_eq!(post(r#"{"n":3}"#), 500);
    assert_eq!(r.requests().len(), 4);
}

#[test]
fn https_to_another_sluice_trusting_a_private_ca_and_healthchecks_in_the_log() {
    let certs = test_certs();
    let (crt, key) = (&certs.crt, &certs.key);
    let port = free_port();
    let b = Sluice::start(&format!(
        r#"
[sources.in]
type = "http_server"
address = "127.0.0.1:{port}"
decoding.codec = "json"
tls.crt_file = "{}"
tls.key_file = "{}"

[sinks.out]
inputs = ["in"]
type = "file"
path = "{{DIR}}/got.jsonl"
"#,
        crt.display(),
        key.display()
    ));
    let dead = free_port();
    let (mut a, stdin) = pipe_lines(
        &format!(
            r#"uri = "https://localhost:{port}/"
tls.ca_file = "{}"
healthcheck.uri = "http://{}/health"

[sinks.unreachable]
inputs = ["in"]
type = "http"
uri = "http://127.0.0.1:{dead}/"
healthcheck.uri = "http://127.0.0.1:{dead}/"
request.retry_attempts = 0
"#,
            certs.ca.display(),
            b.api
        ),
        (0..50).map(|i| format!("tls-{i}")),
    );
    let dir = b.dir.path().to_path_buf();
    assert!(
        wait_for(Duration::from_secs(20), || count_lines(&dir, "got") == 50),
        "{}",
        a.log_text()
    );
    let got = read_jsonl(&dir, "got");
    assert_eq!(got[0]["message"], "tls-0");
    drop(stdin);
    a.wait(Duration::from_secs(30));
    let log = a.log_text();
    assert!(log.contains("Healthcheck passed"), "{log}");
    assert!(log.contains("Healthcheck failed"), "{log}");
}

#[test]
fn a_destination_still_down_at_the_shutdown_timeout_is_reported_with_every_event_held() {
    let dead = free_port();
    let mut s = Sluice::start_with(
        &format!(
            r#"
data_dir = "{{DIR}}"
shutdown_timeout_secs = 2
[api]
address = "{{API}}"

[sources.in]
type = "stdin"

[sinks.out]
inputs = ["in"]
type = "http"
uri = "http://127.0.0.1:{dead}/"
"#
        ),
        |c| {
            c.stdin(Stdio::piped());
        },
    );
    let mut stdin = s.child().stdin.take().expect("stdin");
    let text: String = (0..2500).map(|i| format!("held-{i}\n")).collect();
    stdin.write_all(text.as_bytes()).expect("write");
    drop(stdin);
    // Retries never end on their own (unlimited by default); the timeout ends them, and
    // the report counts what the sink held in batches and requests, not only its buffer.
    let status = s.wait(Duration::from_secs(30));
    assert_eq!(status.code(), Some(1));
    let log = s.log_text();
    assert!(log.contains("undelivered=2500"), "{log}");
}
