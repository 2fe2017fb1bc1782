//! The `influxdb` sink against a real InfluxDB 1.x (`influxd`): events posted to an
//! `http_server` source are written through the v1 API and read back with `/query`,
//! point by point, with every tag, every field and its type.

use crate::support;

use std::time::Duration;
use support::influx::{Influxd, VictoriaMetrics};
use support::*;

/// The `http_server` source the tests post their events to.
fn source(http: u16) -> String {
    format!("[sources.in]\ntype = \"http_server\"\naddress = \"127.0.0.1:{http}\"\ndecoding.codec = \"ndjson\"\n")
}

fn config(http: u16, influx: &str, extra: &str) -> String {
    format!(
        r#"
{src}
[sinks.influx]
type = "influxdb"
inputs = ["in"]
endpoint = "{influx}"
api_version = "v1"
database = "sluice"
measurement = "logs"
tags = ["host", "appname", "dir"]
{extra}
"#,
        src = source(http)
    )
}

fn post(http: u16, body: &str) {
    let (status, text) = http_post(&format!("http://127.0.0.1:{http}/"), &[], body.as_bytes());
    assert_eq!(status, 200, "{text}");
}

/// Rows of `SELECT * FROM logs` as maps of column to value.
fn rows(db: &Influxd, q: &str) -> Vec<serde_json::Map<String, serde_json::Value>> {
    let (columns, values) = db.query("sluice", q);
    values
        .into_iter()
        .map(|row| columns.iter().cloned().zip(row).collect())
        .collect()
}

#[test]
fn logs_arrive_with_their_tags_typed_fields_and_escaping_intact() {
    let db = Influxd::start("sluice");
    let http = free_port();
    let s = Sluice::start(&config(http, &db.url, ""));
    // Distinct hosts: points with one measurement, tag set and timestamp overwrite
    // each other in InfluxDB, and one request's events share their arrival time.
    post(
        http,
        concat!(
            r#"{"message":"first line\nsecond \"quoted\" line \\ end","host":"web-1","appname":"api","status":200,"latency":25.0,"ok":true,"nested":{"a":1,"b":"x"},"dir":"C:\\logs\\"}"#,
            "\n",
            r#"{"message":"tags that need escaping","host":"web 2,eu=1","appname":"api","status":201,"latency":0.5,"ok":false}"#,
            "\n"
        ),
    );
    assert!(
        wait_for(Duration::from_secs(20), || rows(&db, "SELECT * FROM logs")
            .len()
            == 2),
        "{}",
        s.log_text()
    );
    let got = rows(&db, "SELECT * FROM logs WHERE host = 'web-1'");
    assert_eq!(got.len(), 1, "{got:?}");
    let p = &got[0];
    assert_eq!(p["message"], "first line\nsecond \"quoted\" line \\ end");
    assert_eq!(p["appname"], "api");
    assert_eq!(p["status"], 200);
    assert_eq!(p["latency"], 25.0);
    assert_eq!(p["ok"], true);
    assert_eq!(p["nested.a"], 1);
    assert_eq!(p["nested.b"], "x");
    // A tag value ending in a backslash cannot be stored: the backslash is dropped, counted.
    assert_eq!(p["dir"], "C:\\logs");
    let escaped = rows(&db, "SELECT * FROM logs WHERE host = 'web 2,eu=1'");
    assert_eq!(
        escaped.len(),
        1,
        "the escaped tag value must read back exactly"
    );
    assert_eq!(escaped[0]["status"], 201);

    // Types as InfluxDB recorded them: integers stay integers, 25.0 stays a float.
    let (_, keys) = db.query("sluice", "SHOW FIELD KEYS FROM logs");
    let types: std::collections::BTreeMap<String, String> = keys
        .into_iter()
        .map(|r| {
            (
                r[0].as_str().unwrap_or_default().to_string(),
                r[1].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(types["status"], "integer");
    assert_eq!(types["latency"], "float");
    assert_eq!(types["ok"], "boolean");
    assert_eq!(types["message"], "string");
    assert_eq!(types["nested.a"], "integer");
    let (_, tag_keys) = db.query("sluice", "SHOW TAG KEYS FROM logs");
    let tags: Vec<&str> = tag_keys.iter().filter_map(|r| r[0].as_str()).collect();
    assert_eq!(tags, ["appname", "dir", "host"]);

    // Rows are visible a moment before the write's answer reaches sluice and counts.
    assert!(wait_for(Duration::from_secs(10), || sent_events(
        &s, "influx"
    ) == 2.0));
    let m = s.metrics();
    let c = assert_component_metrics(&m, "influx", "sink", "influxdb");
    assert_eq!(c.sent_events, 2.0);
    assert_eq!(errors_of(&m, "influx", "line_protocol"), Some(1.0));
    assert!(
        s.log_text().contains("Healthcheck passed"),
        "{}",
        s.log_text()
    );
}

#[test]
fn a_field_type_conflict_rejects_only_that_point() {
    let db = Influxd::start("sluice");
    let http = free_port();
    let s = Sluice::start(&config(
        http,
        &db.url,
        "dead_letter.path = \"{DIR}/dead.jsonl\"",
    ));
    post(http, "{\"host\":\"a\",\"status\":1}\n");
    assert!(wait_for(Duration::from_secs(20), || rows(
        &db,
        "SELECT * FROM logs"
    )
    .len()
        == 1));
    // `status` is an integer now: a string there is refused, the other point lands.
    post(
        http,
        "{\"host\":\"b\",\"status\":\"oops\"}\n{\"host\":\"c\",\"status\":3}\n",
    );
    assert!(
        wait_for(Duration::from_secs(20), || rows(&db, "SELECT * FROM logs")
            .len()
            == 2),
        "{}",
        s.log_text()
    );
    assert!(wait_for(Duration::from_secs(10), || sent_events(
        &s, "influx"
    ) == 2.0));
    let m = s.metrics();
    let c = assert_component_metrics(&m, "influx", "sink", "influxdb");
    assert_eq!(
        (c.received_events, c.sent_events, c.discarded),
        (3.0, 2.0, 1.0)
    );
    assert_eq!(errors_of(&m, "influx", "rejected"), Some(1.0));
    assert!(
        s.log_text().contains("field type conflict"),
        "{}",
        s.log_text()
    );
    assert_eq!(rows(&db, "SELECT * FROM logs WHERE host = 'c'").len(), 1);
    // The refused point, and only it, is a dead letter: InfluxDB named the field and
    // the type, and the request was read back to find it.
    let dead_file = s.path("dead.jsonl");
    assert!(wait_for(Duration::from_secs(10), || {
        support::seq::read_text(&dead_file).ends_with('\n')
    }));
    let dead = support::seq::dead_letters(&dead_file);
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["event"]["host"], "b", "{}", dead[0]);
    assert_eq!(dead[0]["status"], 400, "{}", dead[0]);
    assert!(
        dead[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("status")),
        "{}",
        dead[0]
    );
}

#[test]
fn the_v2_write_api_reaches_victoria_metrics() {
    let vm = VictoriaMetrics::start();
    let http = free_port();
    let s = Sluice::start_with(
        &format!(
            r#"
{src}
[sinks.vm]
type = "influxdb"
inputs = ["in"]
endpoint = "{url}"
api_version = "v2"
org = "ops"
bucket = "apps"
token = "${{VM_TOKEN}}"
measurement = "{{{{ appname }}}}"
tags = ["host"]
precision = "ms"
"#,
            src = source(http),
            url = vm.url
        ),
        |c| {
            c.env("VM_TOKEN", "a-token");
        },
    );
    post(
        http,
        "{\"appname\":\"checkout\",\"host\":\"web-1\",\"status\":200,\"latency\":12.5,\"message\":\"ok\"}\n{\"appname\":\"checkout\",\"host\":\"web-2\",\"status\":503,\"latency\":80.25,\"message\":\"busy\"}\n",
    );
    let series = |name: &str| vm.export(&format!("{{__name__=\"{name}\"}}"));
    assert!(
        wait_for(Duration::from_secs(20), || series("checkout_status").len()
            == 2),
        "{:?}\n{}",
        series("checkout_status"),
        s.log_text()
    );
    let by_host = |name: &str, host: &str| -> Vec<f64> {
        series(name)
            .into_iter()
            .find(|s| s["metric"]["host"] == host)
            .and_then(|s| s["values"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(serde_json::Value::as_f64)
            .collect()
    };
    assert_eq!(by_host("checkout_status", "web-1"), [200.0]);
    assert_eq!(by_host("checkout_status", "web-2"), [503.0]);
    assert_eq!(by_host("checkout_latency", "web-2"), [80.25]);
    assert!(wait_for(Duration::from_secs(10), || sent_events(&s, "vm") == 2.0));
    let m = s.metrics();
    assert_eq!(
        assert_component_metrics(&m, "vm", "sink", "influxdb").sent_events,
        2.0
    );
}

#[test]
fn internal_metrics_ship_sluices_own_counters_to_influxdb() {
    let db = Influxd::start("sluice");
    let http = free_port();
    let s = Sluice::start(&format!(
        r#"
{src}
[sinks.quiet]
type = "blackhole"
inputs = ["in"]
print_interval_secs = 0

[sources.self]
type = "internal_metrics"
scrape_interval_secs = 0.2
tags.host_key = "host"

[sinks.influx]
type = "influxdb"
inputs = ["self"]
endpoint = "{url}"
api_version = "v1"
database = "sluice"
"#,
        src = source(http),
        url = db.url
    ));
    post(http, "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n");
    let received = || {
        rows(
            &db,
            "SELECT last(component_received_events_total) FROM sluice WHERE component_id = 'in' AND component_kind = 'source'",
        )
        .first()
        .and_then(|r| r.get("last").and_then(serde_json::Value::as_f64))
    };
    assert!(
        wait_for(Duration::from_secs(20), || received() == Some(3.0)),
        "{:?}\n{}",
        received(),
        s.log_text()
    );
    let host = rows(
        &db,
        "SELECT * FROM sluice WHERE component_id = 'in' LIMIT 1",
    );
    assert_eq!(host[0]["host"], sluice::hostname());
    // A histogram (the sink's own request durations) as count, sum and cumulative
    // buckets, all fields of the same point as the sink's counters.
    let writes = || {
        rows(
            &db,
            "SELECT last(http_client_request_duration_seconds_count) AS n, last(\"http_client_request_duration_seconds_bucket_60.0\") AS le60, last(http_client_request_duration_seconds_sum) AS s FROM sluice WHERE component_id = 'influx'",
        )
    };
    assert!(
        wait_for(Duration::from_secs(20), || writes()
            .first()
            .and_then(|r| r["n"].as_f64())
            .unwrap_or(0.0)
            > 0.0),
        "{:?}",
        writes()
    );
    let w = &writes()[0];
    assert_eq!(
        w["le60"], w["n"],
        "every write took under 60 s: the last bucket holds them all"
    );
    assert!(w["s"].as_f64().unwrap_or(-1.0) >= 0.0);
    let m = s.metrics();
    assert_component_metrics(&m, "self", "source", "internal_metrics");
}

#[test]
fn influxd_down_for_twenty_seconds_loses_nothing() {
    let mut db = Influxd::start("sluice");
    let http = free_port();
    let s = Sluice::start(&format!(
        r#"
{src}
[sinks.influx]
type = "influxdb"
inputs = ["in"]
endpoint = "{url}"
api_version = "v1"
database = "sluice"
measurement = "logs"
tags = ["seq"]
"#,
        src = source(http),
        url = db.url
    ));
    let total = 3000;
    let feeder = std::thread::spawn(move || {
        for batch in 0..(total / 10) {
            let body: String = (0..10)
                .map(|i| format!("{{\"seq\":{},\"n\":1}}\n", batch * 10 + i))
                .collect();
            // The pipeline fills while influxd is down: a 503 means come back later.
            loop {
                let (status, _) =
                    http_post(&format!("http://127.0.0.1:{http}/"), &[], body.as_bytes());
                if status == 200 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    std::thread::sleep(Duration::from_secs(1));
    db.stop();
    std::thread::sleep(Duration::from_secs(20));
    db.restart();
    feeder.join().expect("feeder");
    let count = || {
        rows(&db, "SELECT count(n) FROM logs")
            .first()
            .and_then(|r| r.get("count").and_then(serde_json::Value::as_f64))
            .unwrap_or(0.0)
    };
    assert!(
        wait_for(Duration::from_secs(60), || count() == total as f64),
        "{} of {total} points after the outage\n{}",
        count(),
        s.log_text()
    );
    // influxd may hold the points before the sink has read every answer.
    assert!(
        wait_for(Duration::from_secs(60), || sent_events(&s, "influx")
            == total as f64),
        "{}",
        s.metrics()
    );
    let m = s.metrics();
    let c = assert_component_metrics(&m, "influx", "sink", "influxdb");
    assert_eq!(c.discarded, 0.0);
    assert!(
        metric(
            &m,
            "sluice_sink_retries_total",
            &[("component_id", "influx")]
        )
        .unwrap_or(0.0)
            > 0.0,
        "the outage must have been retried through"
    );
}

#[test]
fn names_that_need_escaping_round_trip_and_a_point_without_fields_is_counted() {
    let db = Influxd::start("sluice");
    let http = free_port();
    // Everything the source adds is a tag here, so an event can be left with no field.
    let s = Sluice::start(
        &config(http, &db.url, "")
            .replace("measurement = \"logs\"", "measurement = \"{{ appname }}\"")
            .replace(
                "tags = [\"host\", \"appname\", \"dir\"]",
                "tags = [\"host\", \"appname\", \"source_type\", \"path\"]",
            ),
    );
    post(
        http,
        concat!(
            r#"{"appname":"my app,v=1","host":"h 1,x=2","odd key,=x":"v \"q\" \\","ünïcode":"✓"}"#,
            "\n",
            // Nothing but tags: no line can carry it.
            r#"{"appname":"tags-only","host":"h2"}"#,
            "\n"
        ),
    );
    let got = || rows(&db, "SELECT * FROM \"my app,v=1\"");
    assert!(
        wait_for(Duration::from_secs(20), || got().len() == 1),
        "{}",
        s.log_text()
    );
    let p = &got()[0];
    assert_eq!(p["host"], "h 1,x=2");
    assert_eq!(p["odd key,=x"], "v \"q\" \\");
    assert_eq!(p["ünïcode"], "✓");
    let dropped = |s: &Sluice| errors_of(&s.metrics(), "influx", "no_fields");
    assert!(
        wait_for(Duration::from_secs(10), || dropped(&s) == Some(1.0)),
        "{}",
        s.metrics()
    );
    // The row is in InfluxDB a moment before its answer reaches sluice and counts.
    assert!(wait_for(Duration::from_secs(10), || sent_events(
        &s, "influx"
    ) == 1.0));
    let c = assert_component_metrics(&s.metrics(), "influx", "sink", "influxdb");
    assert_eq!((c.sent_events, c.discarded), (1.0, 1.0));
}

#[test]
fn a_syslog_messages_own_timestamp_is_the_points_time_at_the_configured_precision() {
    let db = Influxd::start("sluice");
    let tcp = free_port();
    let s = Sluice::start(&format!(
        r#"
[sources.in]
type = "syslog"
mode = "tcp"
address = "127.0.0.1:{tcp}"

[sinks.influx]
type = "influxdb"
inputs = ["in"]
endpoint = "{url}"
api_version = "v1"
database = "sluice"
measurement = "syslog"
tags = ["appname", "hostname"]
precision = "us"
"#,
        url = db.url
    ));
    let mut c = std::net::TcpStream::connect(("127.0.0.1", tcp)).expect("connect");
    std::io::Write::write_all(
        &mut c,
        b"<134>1 2026-11-22T14:20:00.123456Z web-1 nginx 42 ACCESS - GET / 200\n",
    )
    .expect("send");
    drop(c);
    let got = || rows(&db, "SELECT * FROM syslog");
    assert!(
        wait_for(Duration::from_secs(20), || got().len() == 1),
        "{}",
        s.log_text()
    );
    let p = &got()[0];
    // 2026-11-22T14:20:00.123456Z in nanoseconds, written in microseconds.
    assert_eq!(p["time"], 1_795_357_200_123_456_000_i64);
    assert_eq!(p["appname"], "nginx");
    assert_eq!(p["hostname"], "web-1");
    assert_eq!(p["message"], "GET / 200");
    assert_eq!(p["severity"], "info");
    assert_eq!(p["procid"], 42);
}
