//! Agent → Kafka → aggregator end to end, with the shipped examples as they are
//! (`examples/agent_to_kafka.toml`, `examples/kafka_aggregator.toml`, their addresses
//! set through their `${VAR}`s): an agent takes syslog over TCP and tails a `*.log`
//! glob into a 3-partition topic; two aggregators in one group archive every event to
//! files and write them to a real InfluxDB. Every event arrives once.

use crate::support;

use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::influx::Influxd;
use support::kafka::Kafka;
use support::{free_port, wait_for, Sluice};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

/// Sequence numbers in the JSON lines under `dir`, with how often each is there.
fn archived(dir: &Path, seen: &mut BTreeMap<usize, usize>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            archived(&p, seen);
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap_or_default();
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<Json>(line) else {
                continue;
            };
            let msg = v["message"].as_str().unwrap_or_default();
            if let Some(n) = msg
                .strip_prefix("seq=")
                .and_then(|s| s.get(..8))
                .and_then(|s| s.parse().ok())
            {
                *seen.entry(n).or_insert(0) += 1;
            }
        }
    }
}

#[test]
fn agent_to_kafka_to_two_aggregators_with_the_shipped_examples() {
    const SYSLOG: usize = 3000;
    const FILE: usize = 2000;
    let kafka = Kafka::start();
    kafka.create_topic("logs", 3);
    let influx = Influxd::start("logs");
    let logs = tempfile::tempdir().expect("tempdir");
    let syslog_port = free_port();
    let agent = Sluice::start_files(&[&example("agent_to_kafka.toml")], |c, _| {
        c.env("AGENT_SYSLOG_ADDRESS", format!("127.0.0.1:{syslog_port}"))
            .env("AGENT_LOG_GLOB", logs.path().join("*.log"))
            .env("KAFKA_BOOTSTRAP", &kafka.bootstrap)
            .env("KAFKA_TOPIC", "logs");
    });
    let aggregator = || {
        Sluice::start_files(&[&example("kafka_aggregator.toml")], |c, dir| {
            c.env("KAFKA_BOOTSTRAP", &kafka.bootstrap)
                .env("KAFKA_TOPIC", "logs")
                .env("ARCHIVE_DIR", dir.join("archive"))
                .env("INFLUX_URL", &influx.url);
        })
    };
    let (one, two) = (aggregator(), aggregator());
    // Both join the group before anything is sent.
    assert!(wait_for(Duration::from_secs(30), || {
        [&one, &two]
            .iter()
            .all(|a| a.log_text().contains("Kafka partitions assigned"))
    }));
    std::thread::sleep(Duration::from_secs(2));

    let mut s = TcpStream::connect(("127.0.0.1", syslog_port)).expect("connect");
    let mut text = String::new();
    for i in 0..SYSLOG {
        text.push_str(&format!(
            "<14>1 2026-11-30T10:00:00.{i:06}Z web-{} netapp {} - - seq={i:08} request served\n",
            i % 4,
            1000 + i % 9
        ));
    }
    s.write_all(text.as_bytes()).expect("write");
    let mut f = std::fs::File::create(logs.path().join("app.log")).expect("log file");
    for i in SYSLOG..SYSLOG + FILE {
        writeln!(f, "seq={i:08} a line the application wrote").expect("write");
    }
    f.flush().expect("flush");

    let start = Instant::now();
    let mut seen = BTreeMap::new();
    while start.elapsed() < Duration::from_secs(90) {
        seen.clear();
        archived(&one.path("archive"), &mut seen);
        archived(&two.path("archive"), &mut seen);
        if seen.len() == SYSLOG + FILE {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    support::seq::assert_exactly_once(&seen, SYSLOG + FILE, "agent -> kafka -> aggregators");
    // Both aggregators took part: the three partitions are split between them.
    for a in [&one, &two] {
        assert!(support::sent_events(a, "archive") > 0.0, "{}", a.log_text());
    }
    // The syslog messages (distinct timestamps) are points in InfluxDB too.
    assert!(
        wait_for(Duration::from_secs(30), || {
            let (_, rows) = influx.query(
                "logs",
                "SELECT count(message) FROM logs WHERE appname = 'netapp'",
            );
            rows.first().and_then(|r| r.get(1)).and_then(Json::as_u64) == Some(SYSLOG as u64)
        }),
        "InfluxDB has {:?}",
        influx.query(
            "logs",
            "SELECT count(message) FROM logs WHERE appname = 'netapp'"
        )
    );
    drop(agent);
}
