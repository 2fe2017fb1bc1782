//! The `kafka` sink against a real Apache Kafka broker (KRaft, from Maven Central's
//! jars): a million events across a templated topic read back exactly once each, with
//! the broker stopped for 15 s in the middle; meanwhile the sink pushes back on the
//! syslog source, so the sender stalls instead of sluice growing or dropping.

use crate::support;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::kafka::Kafka;
use support::{free_port, wait_for, Sluice};

const TOTAL: usize = 1_000_000;

#[test]
fn a_million_events_across_templated_topics_survive_a_broker_outage() {
    let mut kafka = Kafka::start();
    let port = free_port();
    let sluice = Sluice::start(&format!(
        r#"
[sources.in]
type = "syslog"
mode = "tcp"
address = "127.0.0.1:{port}"

[sinks.kafka]
type = "kafka"
inputs = ["in"]
bootstrap_servers = "{}"
topic = "logs-{{{{ appname }}}}"
key_field = "procid"
encoding.codec = "text"
"#,
        kafka.bootstrap
    ));
    let written = Arc::new(AtomicUsize::new(0));
    let writer = {
        let written = written.clone();
        std::thread::spawn(move || {
            let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
            let mut chunk = String::with_capacity(100_000);
            for start in (0..TOTAL).step_by(1000) {
                chunk.clear();
                for i in start..start + 1000 {
                    chunk.push_str(&format!(
                        "<13>1 2026-11-30T00:00:00Z h app{} {} - - seq={i:08}\n",
                        i % 3,
                        i % 7
                    ));
                }
                s.write_all(chunk.as_bytes()).expect("write");
                written.store(start + 1000, Ordering::Release);
            }
        })
    };
    assert!(wait_for(Duration::from_secs(120), || {
        written.load(Ordering::Acquire) >= TOTAL / 4
    }));
    kafka.stop();
    // With the broker away, the producer queue fills and the sink stops taking input:
    // the sender stalls (pushed back) well short of the end.
    std::thread::sleep(Duration::from_secs(10));
    let stalled = written.load(Ordering::Acquire);
    std::thread::sleep(Duration::from_secs(5));
    let later = written.load(Ordering::Acquire);
    assert_eq!(
        stalled, later,
        "the sender kept writing while the broker was down: nothing pushed back"
    );
    assert!(
        later < TOTAL,
        "all {TOTAL} were written before the broker stopped"
    );
    let buffered = support::metric(
        &sluice.metrics(),
        "sluice_buffer_events",
        &[("component_id", "kafka")],
    );
    eprintln!("broker down: sender stalled at {later} lines; sink buffer {buffered:?}");
    kafka.restart();
    writer.join().expect("writer");

    let topics = ["logs-app0", "logs-app1", "logs-app2"];
    let payloads = kafka.read(&topics, TOTAL, Duration::from_secs(300));
    let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
    for p in &payloads {
        let text = String::from_utf8_lossy(p);
        let n: usize = text
            .strip_prefix("seq=")
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("unexpected payload {text}"));
        *seen.entry(n).or_insert(0) += 1;
    }
    let missing: Vec<usize> = (0..TOTAL)
        .filter(|i| !seen.contains_key(i))
        .take(10)
        .collect();
    let doubled = seen.values().filter(|c| **c > 1).count();
    assert!(
        missing.is_empty() && doubled == 0 && payloads.len() == TOTAL,
        "read {} records: first missing {missing:?}, {doubled} doubled; sluice: {}",
        payloads.len(),
        sluice.log_text()
    );
    let m = sluice.metrics();
    let sample = support::assert_component_metrics(&m, "kafka", "sink", "kafka");
    assert_eq!(sample.sent_events, TOTAL as f64);
    assert!(m.contains("sluice_kafka_produce_latency_seconds"), "{m}");
    support::promtool_check(&m);
}

#[test]
fn an_http_client_gets_its_200_only_once_kafka_has_the_events() {
    let mut kafka = Kafka::start();
    kafka.create_topic("acked", 1);
    let port = free_port();
    let _sluice = Sluice::start(&format!(
        r#"
[sources.in]
type = "http_server"
address = "127.0.0.1:{port}"
decoding.codec = "json"

[sinks.kafka]
type = "kafka"
inputs = ["in"]
bootstrap_servers = "{}"
topic = "acked"
acknowledgements.enabled = true
"#,
        kafka.bootstrap
    ));
    let url = format!("http://127.0.0.1:{port}/");
    let (code, _) = support::http_post(&url, &[], br#"[{"n":1},{"n":2}]"#);
    assert_eq!(code, 200);
    assert_eq!(kafka.read(&["acked"], 2, Duration::from_secs(30)).len(), 2);
    // With the broker away, the request waits: no 200 before Kafka has the events.
    kafka.stop();
    let (tx, rx) = std::sync::mpsc::channel();
    let poster = std::thread::spawn(move || {
        let answer = support::http_post(&url, &[], br#"[{"n":3}]"#);
        let _ = tx.send(answer);
    });
    assert!(
        rx.recv_timeout(Duration::from_secs(5)).is_err(),
        "answered while the broker was down"
    );
    kafka.restart();
    let (code, _) = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("an answer once the broker is back");
    assert_eq!(code, 200);
    poster.join().expect("poster");
    assert_eq!(kafka.read(&["acked"], 3, Duration::from_secs(30)).len(), 3);
}

#[test]
fn records_over_message_max_bytes_are_rejected_and_counted_not_retried() {
    let kafka = Kafka::start();
    kafka.create_topic("sized", 1);
    let port = free_port();
    let sluice = Sluice::start(&format!(
        r#"
[sources.in]
type = "syslog"
mode = "tcp"
address = "127.0.0.1:{port}"

[sinks.kafka]
type = "kafka"
inputs = ["in"]
bootstrap_servers = "{}"
topic = "sized"
encoding.codec = "text"
librdkafka_options."message.max.bytes" = "10000"
"#,
        kafka.bootstrap
    ));
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let big = "x".repeat(20_000);
    let mut text = String::new();
    for i in 0..10 {
        text.push_str(&format!("<13>1 - h app - - - seq={i:08} small\n"));
    }
    text.push_str(&format!("<13>1 - h app - - - seq=00000010 {big}\n"));
    for i in 11..20 {
        text.push_str(&format!("<13>1 - h app - - - seq={i:08} small\n"));
    }
    s.write_all(text.as_bytes()).expect("write");
    let got = kafka.read(&["sized"], 19, Duration::from_secs(30));
    assert_eq!(got.len(), 19, "{}", sluice.log_text());
    assert!(got.iter().all(|p| p.len() < 100));
    assert!(wait_for(Duration::from_secs(10), || {
        support::errors_of(&sluice.metrics(), "kafka", "rejected") == Some(1.0)
    }));
    let m = sluice.metrics();
    assert_eq!(
        support::metric(
            &m,
            "sluice_component_discarded_events_total",
            &[("component_id", "kafka"), ("intentional", "false")]
        ),
        Some(1.0)
    );
    assert_eq!(support::sent_events(&sluice, "kafka"), 19.0);
}

#[test]
fn a_timestamp_the_broker_refuses_is_replaced_by_the_time_of_producing() {
    let kafka = Kafka::start();
    kafka.create_topic_with(
        "clocks",
        1,
        &[
            ("message.timestamp.before.max.ms", "86400000"),
            ("message.timestamp.after.max.ms", "3600000"),
        ],
    );
    let port = free_port();
    let sluice = Sluice::start(&format!(
        r#"
[sources.in]
type = "syslog"
mode = "tcp"
address = "127.0.0.1:{port}"

[sinks.kafka]
type = "kafka"
inputs = ["in"]
bootstrap_servers = "{}"
topic = "clocks"
"#,
        kafka.bootstrap
    ));
    // A device whose clock is years off either way: the broker refuses the records'
    // timestamps, and sluice sends them again stamped now rather than lose them.
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.write_all(
        b"<13>1 2099-01-01T00:00:00Z h app - - - seq=00000000 from the future\n\
          <13>1 2001-01-01T00:00:00Z h app - - - seq=00000001 from the past\n",
    )
    .expect("write");
    let got = kafka.read(&["clocks"], 2, Duration::from_secs(60));
    assert_eq!(got.len(), 2, "{}", sluice.log_text());
    for p in &got {
        let v: serde_json::Value = serde_json::from_slice(p).expect("json");
        // The event keeps the time it was written with.
        let ts = v["timestamp"].as_str().unwrap_or_default();
        assert!(ts.starts_with("2099-") || ts.starts_with("2001-"), "{v}");
    }
    assert_eq!(support::sent_events(&sluice, "kafka"), 2.0);
}
