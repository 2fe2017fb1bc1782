//! The `aws_cloudwatch_logs` sink against a real CloudWatch Logs endpoint: `moto_server`
//! from PyPI, behind a recording proxy (the tests' HTTP receiver forwarding every call)
//! that can answer PutLogEvents with AWS's own throttling and 503 answers. Events come in
//! as operators send them: RFC 5424 syslog over TCP, JSON over HTTP. Everything sent is
//! read back with GetLogEvents.

use crate::support;

use serde_json::Value as Json;
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;
use support::moto::Moto;
use support::receiver::{operation, Answer, Received, Receiver};
use support::*;

const DAY_MS: i64 = 86_400_000;

/// A syslog TCP source into the sink, through `proxy`, with `extra` sink options.
fn config(tcp: u16, proxy: &str, extra: &str) -> String {
    format!(
        r#"
[sources.syslog]
type = "syslog"
mode = "tcp"
address = "127.0.0.1:{tcp}"

[sinks.cw]
type = "aws_cloudwatch_logs"
inputs = ["syslog"]
group_name = "/sluice/it"
stream_name = "{{{{ host }}}}"
endpoint = "{proxy}"
region = "us-east-1"
auth.access_key_id = "AKIDSLUICETEST"
auth.secret_access_key = "sluice-test-secret"
{extra}
"#
    )
}

/// One RFC 5424 line from `host` at `ms` (Unix milliseconds) carrying `seq`.
fn line(host: &str, ms: i64, seq: usize) -> String {
    let t = chrono::DateTime::from_timestamp_millis(ms).unwrap();
    format!(
        "<14>1 {} {host} app 1 - - seq={seq}\n",
        t.format("%Y-%m-%dT%H:%M:%S%.3fZ")
    )
}

fn send(tcp: u16, lines: &[String]) {
    let mut c = TcpStream::connect(("127.0.0.1", tcp)).expect("connect");
    for chunk in lines.chunks(1000) {
        c.write_all(chunk.concat().as_bytes()).expect("send");
    }
    c.flush().expect("flush");
}

/// The PutLogEvents calls the proxy saw.
fn puts(proxy: &Receiver) -> Vec<Received> {
    proxy
        .requests()
        .into_iter()
        .filter(|r| operation(&r.headers) == "PutLogEvents")
        .collect()
}

/// Checks one PutLogEvents body against every rule of the API.
fn assert_within_limits(body: &[u8]) -> usize {
    let v: Json = serde_json::from_slice(body).expect("PutLogEvents body is JSON");
    let events = v["logEvents"].as_array().expect("logEvents");
    assert!(
        !events.is_empty() && events.len() <= 10_000,
        "{} events",
        events.len()
    );
    let bytes: usize = events
        .iter()
        .map(|e| e["message"].as_str().unwrap().len() + 26)
        .sum();
    assert!(bytes <= 1_048_576, "{bytes} bytes");
    let ts: Vec<i64> = events
        .iter()
        .map(|e| e["timestamp"].as_i64().unwrap())
        .collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "not chronological");
    assert!(ts[ts.len() - 1] - ts[0] <= DAY_MS, "spans more than 24 h");
    events.len()
}

/// The `seq` of an event as the json codec wrote it.
fn seq_of(message: &str) -> usize {
    let v: Json = serde_json::from_str(message).expect("message is JSON");
    v["message"]
        .as_str()
        .and_then(|m| m.strip_prefix("seq="))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no seq in {message}"))
}

fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains("component_id=\"cw\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn events_over_three_days_arrive_once_in_order_per_host_within_every_limit() {
    let moto = Moto::start();
    let proxy = Receiver::start();
    proxy.set_default(Answer::Forward(moto.url.clone()));
    let tcp = free_port();
    let s = Sluice::start(&config(tcp, &proxy.url(), "retention_days = 7"));

    // 25,000 events from three hosts, spread evenly over the last three days.
    let n = 25_000usize;
    let now = chrono::Utc::now().timestamp_millis();
    let start = now - 3 * DAY_MS + 60_000;
    let hosts = ["web-1", "web-2", "db-1"];
    let mut expected: Vec<Vec<(i64, usize)>> = vec![Vec::new(); 3];
    let lines: Vec<String> = (0..n)
        .map(|i| {
            let ms = start + (i as i64) * (3 * DAY_MS - 120_000) / n as i64;
            expected[i % 3].push((ms, i));
            line(hosts[i % 3], ms, i)
        })
        .collect();
    send(tcp, &lines);

    let arrived = wait_for(Duration::from_secs(90), || {
        hosts
            .iter()
            .enumerate()
            .all(|(h, host)| moto.events("/sluice/it", host).len() >= expected[h].len())
    });
    assert!(
        arrived,
        "not everything arrived; sluice's log:\n{}",
        s.log_text()
    );
    for (h, host) in hosts.iter().enumerate() {
        let got: Vec<(i64, usize)> = moto
            .events("/sluice/it", host)
            .iter()
            .map(|(ts, m)| (*ts, seq_of(m)))
            .collect();
        assert_eq!(
            got, expected[h],
            "{host}: each event once, in order, at its time"
        );
    }
    let mut streams = moto.streams("/sluice/it");
    streams.sort();
    assert_eq!(streams, ["db-1", "web-1", "web-2"], "one stream per host");
    assert_eq!(
        moto.retention("/sluice/it"),
        Some(Some(7)),
        "created with retention"
    );

    let puts = puts(&proxy);
    let accepted: Vec<&Received> = puts.iter().filter(|r| r.answered == 200).collect();
    let total: usize = accepted.iter().map(|r| assert_within_limits(&r.body)).sum();
    assert_eq!(total, n);
    assert!(accepted.len() >= 3, "{} requests", accepted.len());
    // Only the first call per stream may find it missing; nothing else fails.
    let failed: Vec<&Received> = puts.iter().filter(|r| r.answered != 200).collect();
    assert!(failed.len() <= 3, "{} PutLogEvents failed", failed.len());
    let calls = |op: &str| {
        proxy
            .requests()
            .iter()
            .filter(|r| operation(&r.headers) == op)
            .count()
    };
    assert_eq!(
        calls("DescribeLogStreams"),
        0,
        "no DescribeLogStreams on the data path"
    );
    assert_eq!(
        calls("CreateLogGroup"),
        1,
        "three streams found it missing; one created it"
    );

    let m = s.metrics();
    assert_eq!(
        metric_sum(&m, "sluice_cloudwatch_rejected_events_total"),
        0.0
    );
    assert_eq!(sent_events(&s, "cw"), n as f64);
    promtool_check(&m);
}

#[test]
fn throttling_and_503s_are_retried_with_backoff_and_nothing_is_lost_or_doubled() {
    let moto = Moto::start();
    let proxy = Receiver::start();
    proxy.set_default(Answer::Forward(moto.url.clone()));
    let throttled = Answer::Status(
        400,
        vec![
            ("x-amzn-ErrorType".into(), "ThrottlingException".into()),
            ("Content-Type".into(), "application/x-amz-json-1.1".into()),
        ],
        r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.into(),
    );
    let unavailable = Answer::Status(503, Vec::new(), "Service Unavailable".into());
    proxy.script_operation(
        "PutLogEvents",
        [
            throttled.clone(),
            unavailable.clone(),
            throttled,
            unavailable,
        ],
    );
    let tcp = free_port();
    let s = Sluice::start(&config(tcp, &proxy.url(), ""));
    let now = chrono::Utc::now().timestamp_millis();
    let lines: Vec<String> = (0..2_000)
        .map(|i| line("web-1", now - 2_000 + i, i as usize))
        .collect();
    send(tcp, &lines);

    let arrived = wait_for(Duration::from_secs(90), || {
        moto.events("/sluice/it", "web-1").len() >= 2_000
    });
    assert!(arrived, "sluice's log:\n{}", s.log_text());
    std::thread::sleep(Duration::from_secs(2));
    let seqs: Vec<usize> = moto
        .events("/sluice/it", "web-1")
        .iter()
        .map(|(_, m)| seq_of(m))
        .collect();
    assert_eq!(
        seqs,
        (0..2_000).collect::<Vec<_>>(),
        "each event exactly once"
    );

    // The four refused attempts, then the ones that went through: each retry waited.
    let puts = puts(&proxy);
    let answered: Vec<u16> = puts.iter().map(|r| r.answered).collect();
    assert_eq!(&answered[..4], &[400, 503, 400, 503], "{answered:?}");
    for w in puts[..5].windows(2) {
        let gap = w[1].at.duration_since(w[0].at);
        assert!(gap >= Duration::from_millis(100), "retried after {gap:?}");
    }
    let m = s.metrics();
    let status = |st: &str| {
        metric(
            &m,
            "sluice_cloudwatch_requests_total",
            &[("component_id", "cw"), ("status", st)],
        )
        .unwrap_or(0.0)
    };
    assert_eq!(status("throttled"), 2.0);
    assert_eq!(status("unavailable"), 2.0);
    assert!(
        metric(&m, "sluice_sink_retries_total", &[("component_id", "cw")]).unwrap_or(0.0) >= 4.0
    );
    assert_eq!(sent_events(&s, "cw"), 2_000.0);
}

#[test]
fn a_stream_deleted_while_running_is_created_again_and_delivery_goes_on() {
    let moto = Moto::start();
    let proxy = Receiver::start();
    proxy.set_default(Answer::Forward(moto.url.clone()));
    let tcp = free_port();
    let s = Sluice::start(&config(tcp, &proxy.url(), ""));
    let now = chrono::Utc::now().timestamp_millis();
    send(
        tcp,
        &(0..100)
            .map(|i| line("web-1", now - 1_000 + i, i as usize))
            .collect::<Vec<_>>(),
    );
    assert!(wait_for(Duration::from_secs(30), || moto
        .events("/sluice/it", "web-1")
        .len()
        >= 100));

    let creates = || {
        proxy
            .requests()
            .iter()
            .filter(|r| operation(&r.headers) == "CreateLogStream")
            .count()
    };
    let before = creates();
    moto.delete_stream("/sluice/it", "web-1");
    send(
        tcp,
        &(100..200)
            .map(|i| line("web-1", now + i, i as usize))
            .collect::<Vec<_>>(),
    );
    let again = wait_for(Duration::from_secs(30), || {
        moto.events("/sluice/it", "web-1").len() >= 100
    });
    assert!(again, "sluice's log:\n{}", s.log_text());
    let seqs: Vec<usize> = moto
        .events("/sluice/it", "web-1")
        .iter()
        .map(|(_, m)| seq_of(m))
        .collect();
    assert_eq!(seqs, (100..200).collect::<Vec<_>>());
    assert_eq!(
        creates() - before,
        1,
        "created again once after the deletion"
    );
    assert_eq!(sent_events(&s, "cw"), 200.0);
}

#[test]
fn a_two_mib_message_arrives_truncated_as_valid_json_and_is_counted() {
    let moto = Moto::start();
    let port = free_port();
    let s = Sluice::start(&format!(
        r#"
[sources.http]
type = "http_server"
address = "127.0.0.1:{port}"
decoding.codec = "json"

[sinks.cw]
type = "aws_cloudwatch_logs"
inputs = ["http"]
group_name = "/sluice/big"
stream_name = "{{{{ host }}}}"
endpoint = "{}"
region = "us-east-1"
auth.access_key_id = "AKIDSLUICETEST"
auth.secret_access_key = "sluice-test-secret"
"#,
        moto.url
    ));
    let big = "ü\"".repeat(700_000); // 2.1 MiB of UTF-8, more once quotes are escaped
    let body = serde_json::json!({"host": "big", "message": big}).to_string();
    let (code, _) = http_post(
        &format!("http://127.0.0.1:{port}/"),
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(code, 200);
    assert!(wait_for(Duration::from_secs(30), || !moto
        .events("/sluice/big", "big")
        .is_empty()));
    let events = moto.events("/sluice/big", "big");
    let m = &events[0].1;
    assert!(m.len() <= 1_048_576 - 26, "{} bytes", m.len());
    let v: Json = serde_json::from_str(m).expect("still valid JSON");
    assert_eq!(v["host"], "big");
    let msg = v["message"].as_str().unwrap();
    assert!(msg.ends_with("[Truncated...]"));
    assert!(big.starts_with(msg.trim_end_matches("[Truncated...]")));
    // Escaped quotes take 2 bytes each in JSON: what is kept fills the line, not the
    // message's raw bytes.
    assert!(m.len() > 1_040_000, "the line holds only {} bytes", m.len());
    let text = s.metrics();
    assert_eq!(
        metric_sum(&text, "sluice_cloudwatch_truncated_events_total"),
        1.0
    );
}

#[test]
fn events_too_old_or_too_far_ahead_are_counted_and_the_rest_delivered() {
    let moto = Moto::start();
    let tcp = free_port();
    let s = Sluice::start(&config(tcp, &moto.url, ""));
    let now = chrono::Utc::now().timestamp_millis();
    let hour = 3_600_000;
    let lines = [
        line("web-1", now - 20 * DAY_MS, 0),
        line("web-1", now - 1_000, 1),
        line("web-1", now + 3 * hour, 2),
        line("web-1", now - 500, 3),
    ];
    send(tcp, &lines);
    assert!(wait_for(Duration::from_secs(30), || moto
        .events("/sluice/it", "web-1")
        .len()
        >= 2));
    let seqs: Vec<usize> = moto
        .events("/sluice/it", "web-1")
        .iter()
        .map(|(_, m)| seq_of(m))
        .collect();
    assert_eq!(seqs, [1, 3]);
    let m = s.metrics();
    let rejected = |reason: &str| {
        metric(
            &m,
            "sluice_cloudwatch_rejected_events_total",
            &[("component_id", "cw"), ("reason", reason)],
        )
    };
    assert_eq!(rejected("too_old"), Some(1.0));
    assert_eq!(rejected("too_new"), Some(1.0));
    assert_eq!(errors_of(&m, "cw", "too_old"), Some(1.0));
    let log = s.log_text();
    assert!(
        log.contains("is older than CloudWatch Logs accepts"),
        "{log}"
    );
}

#[test]
fn require_healthy_refuses_to_start_against_an_endpoint_that_does_not_answer() {
    let dir = tempfile::tempdir().unwrap();
    let dead = free_port();
    let cfg = dir.path().join("sluice.toml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir = \"{}\"\n{}\n[api]\nenabled = false\n",
            dir.path().display(),
            config(free_port(), &format!("http://127.0.0.1:{dead}"), "")
        ),
    )
    .unwrap();
    let out = std::process::Command::new(bin())
        .args(["run", "--require-healthy", "--config"])
        .arg(&cfg)
        .output()
        .expect("run sluice");
    assert!(!out.status.success());
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains(
            "[sinks.cw] healthcheck failed, and require_healthy is set: DescribeLogGroups"
        ),
        "{log}"
    );
    assert!(
        !log.contains("sluice-test-secret"),
        "a credential reached the log"
    );

    // Against a live endpoint it starts, though the group does not exist yet.
    let moto = Moto::start();
    let mut s = Sluice::start_with(&config(free_port(), &moto.url, ""), |c| {
        c.arg("--require-healthy");
    });
    assert!(s.exited().is_none());
    assert!(s.log_text().contains("Healthcheck passed."));
}
