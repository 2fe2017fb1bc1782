//! Per-core cost of the `influxdb` sink's encoder: syslog-shaped log events (tags
//! host/appname/severity, a message, integer and float fields) into line protocol.
//! `cargo bench --bench influxdb`; lines per second on one core (aim: 2 million).

use chrono::Utc;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use sluice::event::{Event, EventMetadata, LogEvent, ObjectMap, Value};
use sluice::internal_events::{ComponentKind, ComponentLabels, ComponentMetrics};
use sluice::sinks::influxdb::line_protocol::Precision;
use sluice::sinks::influxdb::request_builder::InfluxDbRequestBuilder;
use sluice::sinks::util::runner::RequestBuilder;
use sluice::sinks::util::template::Template;

fn events() -> Vec<Event> {
    (0..1000)
        .map(|i| {
            let mut m = ObjectMap::new();
            m.insert("host".into(), Value::from(format!("web-{:02}", i % 16)));
            m.insert("appname".into(), Value::from("nginx"));
            m.insert("severity".into(), Value::from("info"));
            m.insert(
                "message".into(),
                Value::from(format!(
                    "GET /api/v1/items/{i} HTTP/1.1 200 512 \"curl/8.4\""
                )),
            );
            m.insert("status".into(), Value::from(200));
            m.insert("bytes".into(), Value::from(512 + i));
            m.insert(
                "latency_ms".into(),
                Value::from_f64_or_zero(12.5 + f64::from(i % 7)),
            );
            m.insert("timestamp".into(), Value::Timestamp(Utc::now()));
            LogEvent::from_parts(m, EventMetadata::new("bench", Utc::now())).into()
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let events = events();
    let metrics = ComponentMetrics::new(ComponentLabels {
        id: "bench".into(),
        kind: ComponentKind::Sink,
        type_name: "influxdb",
    });
    let mut builder = InfluxDbRequestBuilder::new(
        "http://127.0.0.1:8086/write?db=x".parse().expect("uri"),
        "127.0.0.1:8086".into(),
        Template::parse("syslog").expect("template"),
        vec!["host".into(), "appname".into(), "severity".into()],
        None,
        Precision::Ns,
        metrics.reporter(),
    );
    let mut g = c.benchmark_group("influxdb");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("encode_logs_1000", |b| {
        let mut out = Vec::with_capacity(256 * 1024);
        b.iter(|| {
            out.clear();
            for e in &events {
                let _ = builder.encode(black_box(e), &mut out);
                out.push(b'\n');
            }
            out.len()
        })
    });
    g.finish();
}

criterion_group!(influxdb, benches);
criterion_main!(influxdb);
