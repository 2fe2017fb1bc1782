//! The `kafka` source against a real Apache Kafka broker: two sluice consumers in one
//! group share a 6-partition topic; one is killed with SIGKILL mid-stream and
//! restarted, and every message is delivered at least once, the duplicates being only
//! messages the killed one had delivered and not yet committed. A sink that is down
//! keeps offsets from being committed, so a later consumer reads everything again.

use crate::support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::kafka::{assigned_partitions, Kafka};
use support::seq::delivered_after_kill;
use support::{wait_for, Sluice};

fn aggregator(kafka: &Kafka, topic: &str, sink: &str) -> String {
    format!(
        r#"
[sources.kafka]
type = "kafka"
bootstrap_servers = "{}"
group_id = "aggregators"
topics = ["{topic}"]
auto_offset_reset = "earliest"

{sink}
"#,
        kafka.bootstrap
    )
}

const FILE_SINK: &str = r#"
[sinks.out]
type = "file"
inputs = ["kafka"]
path = "{DIR}/out.jsonl"
"#;

fn payloads(range: std::ops::Range<usize>) -> impl Iterator<Item = String> {
    range.map(|i| format!("seq={i:08} a message from an agent"))
}

/// The lines of a `/metrics` page that tell where a consumer's events got to: its
/// Kafka client (assignment, lag) and the events each component took and sent.
fn kafka_and_sink_metrics(page: &str) -> String {
    page.lines()
        .filter(|l| {
            !l.starts_with('#')
                && (l.contains("kafka") || l.contains("_events_total") || l.contains("errors"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn add(total: &mut BTreeMap<usize, usize>, part: &BTreeMap<usize, usize>) {
    for (k, v) in part {
        *total.entry(*k).or_insert(0) += v;
    }
}

#[test]
fn a_consumer_killed_mid_stream_loses_nothing_and_repeats_only_the_uncommitted() {
    const TOTAL: usize = 300_000;
    let kafka = Kafka::start();
    kafka.create_topic("agents", 6);
    let config = aggregator(&kafka, "agents", FILE_SINK);
    let a = Sluice::start(&config);
    let b = Sluice::start(&config);
    // Both consumers own three partitions each before the stream starts. A fixed wait
    // was not enough: when B joined after the group's first rebalance, A got its share
    // only after B had read every message, and A delivered none.
    assert!(
        wait_for(Duration::from_secs(60), || {
            [&a, &b]
                .iter()
                .all(|s| assigned_partitions(&s.log_text()) == Some(3))
        }),
        "the group never split six partitions three and three\nA: {}\nB: {}",
        a.log_text(),
        b.log_text()
    );
    kafka.produce("agents", payloads(0..TOTAL / 2));
    let a_file = a.path("out.jsonl");
    assert!(
        wait_for(Duration::from_secs(120), || {
            delivered_after_kill(&a_file).0.len() > TOTAL / 8
        }),
        "consumer A delivered {} messages, fewer than the {} it must reach before it is killed: {}\nA's metrics:\n{}\nB's log: {}",
        delivered_after_kill(&a_file).0.len(),
        TOTAL / 8,
        a.log_text(),
        kafka_and_sink_metrics(&a.metrics()),
        b.log_text()
    );
    let mut a = a;
    let _ = a.child().kill();
    let _ = a.child().wait();
    let (a_seen, torn) = delivered_after_kill(&a_file);
    kafka.produce("agents", payloads(TOTAL / 2..TOTAL));
    // A comes back (a new process on the same group) while B may already hold all six.
    let a2 = Sluice::start(&config);
    let b_file = b.path("out.jsonl");
    let a2_file = a2.path("out.jsonl");
    let start = Instant::now();
    let mut total = BTreeMap::new();
    while start.elapsed() < Duration::from_secs(180) {
        total.clear();
        add(&mut total, &a_seen);
        add(&mut total, &delivered_after_kill(&b_file).0);
        add(&mut total, &delivered_after_kill(&a2_file).0);
        if total.len() == TOTAL {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let missing: Vec<usize> = (0..TOTAL)
        .filter(|i| !total.contains_key(i))
        .take(10)
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {TOTAL} delivered; first missing {missing:?}\nB: {}\nA2: {}",
        total.len(),
        b.log_text(),
        a2.log_text()
    );
    let doubled: Vec<usize> = total
        .iter()
        .filter(|(_, c)| **c > 1)
        .map(|(k, _)| *k)
        .collect();
    // Only what A had delivered since its last commit can come again; never what B
    // delivered (B committed before giving partitions up) nor anything twice more.
    assert!(
        doubled.iter().all(|k| a_seen.contains_key(k)),
        "a message A never delivered arrived twice"
    );
    assert!(
        total.values().all(|c| *c <= 2),
        "a message arrived three times"
    );
    eprintln!(
        "killed consumer had delivered {} ({} torn line(s)); duplicates after its restart: {} of {TOTAL} ({:.2}%)",
        a_seen.len(),
        torn,
        doubled.len(),
        100.0 * doubled.len() as f64 / TOTAL as f64
    );
    // librdkafka's statistics come every second.
    assert!(
        wait_for(Duration::from_secs(15), || b
            .metrics()
            .contains("sluice_kafka_consumer_lag{")),
        "{}",
        b.metrics()
    );
    let m = b.metrics();
    support::assert_component_metrics(&m, "kafka", "source", "kafka");
    assert!(
        support::metric(
            &m,
            "sluice_kafka_rebalances_total",
            &[("component_id", "kafka")]
        )
        .unwrap_or(0.0)
            >= 1.0
    );
    assert!(
        support::metric(
            &m,
            "sluice_kafka_commits_total",
            &[("component_id", "kafka")]
        )
        .unwrap_or(0.0)
            >= 1.0
    );
    support::promtool_check(&m);
}

#[test]
fn a_sink_that_is_down_keeps_offsets_uncommitted() {
    let kafka = Kafka::start();
    kafka.create_topic("held", 2);
    kafka.produce("held", payloads(0..500));
    // An HTTP sink whose endpoint is down: it retries, nothing is delivered.
    let closed = support::free_port();
    let down = format!(
        r#"
[sinks.out]
type = "http"
inputs = ["kafka"]
uri = "http://127.0.0.1:{closed}/"
request.retry_initial_backoff_secs = 0.2
"#
    );
    let mut stuck = Sluice::start(&format!(
        "shutdown_timeout_secs = 3\n{}",
        aggregator(&kafka, "held", &down)
    ));
    assert!(wait_for(Duration::from_secs(60), || {
        support::metric(
            &stuck.metrics(),
            "sluice_component_received_events_total",
            &[("component_id", "kafka")],
        )
        .unwrap_or(0.0)
            >= 500.0
    }));
    // Past a commit interval (5 s) nothing is committed: nothing was delivered.
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(kafka.committed("aggregators", "held", 2), vec![None, None]);
    // SIGTERM: the sink cannot drain within shutdown_timeout_secs (sluice exits
    // non-zero and says so); the source commits nothing it did not deliver.
    stuck.terminate(Duration::from_secs(30));
    assert!(
        stuck
            .log_text()
            .contains("they are read again at the next start"),
        "{}",
        stuck.log_text()
    );
    assert_eq!(kafka.committed("aggregators", "held", 2), vec![None, None]);
    // The next consumer of the group reads all of it. Stopped with SIGTERM before its
    // first commit would be due, it commits what it delivered on the way out.
    let config = aggregator(&kafka, "held", FILE_SINK).replace(
        "auto_offset_reset = \"earliest\"",
        "auto_offset_reset = \"earliest\"\ncommit_interval_ms = 60000",
    );
    let mut ok = Sluice::start(&config);
    let out = ok.path("out.jsonl");
    assert!(wait_for(Duration::from_secs(60), || delivered_after_kill(
        &out
    )
    .0
    .len()
        == 500));
    assert_eq!(kafka.committed("aggregators", "held", 2), vec![None, None]);
    assert!(
        ok.terminate(Duration::from_secs(30)).success(),
        "{}",
        ok.log_text()
    );
    assert_eq!(
        kafka
            .committed("aggregators", "held", 2)
            .iter()
            .flatten()
            .sum::<i64>(),
        500
    );
}

#[test]
fn compressed_payloads_of_several_lines_become_one_event_per_line() {
    use std::io::Write;
    let kafka = Kafka::start();
    kafka.create_topic("batched", 1);
    let payloads: Vec<Vec<u8>> = (0..100)
        .map(|p| {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            for i in p * 10..p * 10 + 10 {
                writeln!(gz, "seq={i:08} one of ten lines").expect("gzip");
            }
            gz.finish().expect("gzip")
        })
        .collect();
    kafka.produce("batched", payloads);
    let s = Sluice::start(&format!(
        r#"
[sources.kafka]
type = "kafka"
bootstrap_servers = "{}"
group_id = "unpack"
topics = ["^batch.*"]
auto_offset_reset = "earliest"
decompression.algorithm = "gzip"
framing.method = "newline_delimited"
metrics.topic_lag_metric = false
{FILE_SINK}"#,
        kafka.bootstrap
    ));
    let out = s.path("out.jsonl");
    assert!(
        wait_for(Duration::from_secs(60), || delivered_after_kill(&out)
            .0
            .len()
            == 1000),
        "{}",
        s.log_text()
    );
    support::seq::assert_exactly_once(&delivered_after_kill(&out).0, 1000, "gzip frames");
    let first = &support::read_jsonl(s.dir.path(), "out")[0];
    assert_eq!(first["topic"], "batched");
    assert_eq!(first["partition"], 0);
    assert_eq!(first["source_type"], "kafka");
    assert!(!s.metrics().contains("sluice_kafka_consumer_lag{"));
}
