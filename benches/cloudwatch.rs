//! Per-core cost of the `aws_cloudwatch_logs` sink's own work: an event's partition
//! (`stream_name = "{{ host }}"`), order key and encoding into a payload within the
//! PutLogEvents limits, and turning a payload into the SDK's events for a request.
//! `cargo bench --bench cloudwatch`; events per second on one core.

use bytes::Bytes;
use chrono::Utc;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use sluice::event::{Event, EventMetadata, LogEvent, ObjectMap, Value};
use sluice::internal_events::{ComponentKind, ComponentLabels, ComponentMetrics};
use sluice::sinks::aws_cloudwatch_logs::request_builder::{
    CloudwatchRequestBuilder, Names, EVENT_OVERHEAD, HEADER, MAX_REQUEST_BYTES, MAX_REQUEST_EVENTS,
    MAX_SPAN_MS,
};
use sluice::sinks::aws_cloudwatch_logs::service::input_events;
use sluice::sinks::util::batch::{BatchLimits, Batcher, Framing};
use sluice::sinks::util::encoding::{Codec, Encoder};
use sluice::sinks::util::runner::RequestBuilder;
use sluice::sinks::util::template::Template;
use sluice::sources::syslog::parse_into;
use std::time::Duration;

const RFC5424: &str = "<134>1 2026-11-22T14:20:00.123Z web-0{HOST}.example.com nginx 12345 ACCESS [req@32473 id=\"a1b2c3\" status=\"200\"] GET /api/v1/items/42 HTTP/1.1 200 512 0.004 seq=1234567";

/// 1000 syslog events from 4 hosts, stamped now (CloudWatch refuses old ones).
fn events() -> Vec<Event> {
    (0..1000)
        .map(|i| {
            let raw = RFC5424.replace("{HOST}", &(i % 4).to_string());
            let mut fields = ObjectMap::new();
            parse_into(&Bytes::from(raw), None, Utc::now(), &mut fields);
            fields.insert("timestamp".into(), Value::Timestamp(Utc::now()));
            LogEvent::from_parts(fields, EventMetadata::new("bench", Utc::now())).into()
        })
        .collect()
}

fn builder(codec: Codec) -> CloudwatchRequestBuilder {
    let metrics = ComponentMetrics::new(ComponentLabels {
        id: "cw".into(),
        kind: ComponentKind::Sink,
        type_name: "aws_cloudwatch_logs",
    });
    let names = Names::Templated {
        group: Template::parse("/hosts/syslog").expect("template"),
        stream: Template::parse("{{ host }}").expect("template"),
    };
    CloudwatchRequestBuilder::new(names, Encoder::new(codec), None, "bench".into(), &metrics)
}

fn benches(c: &mut Criterion) {
    let events = events();
    let limits = BatchLimits {
        max_events: MAX_REQUEST_EVENTS,
        max_bytes: MAX_REQUEST_BYTES,
        timeout: Duration::from_secs(1),
        per_event_overhead: EVENT_OVERHEAD - HEADER,
        max_order_span: Some(MAX_SPAN_MS),
    };
    let records = Framing::fixed(b"", b"", b"");
    let mut g = c.benchmark_group("cloudwatch");
    g.throughput(Throughput::Elements(1000));
    for (name, codec) in [
        ("batch_json_1000", Codec::Json),
        ("batch_text_1000", Codec::Text),
    ] {
        g.bench_function(name, |b| {
            let mut rb = builder(codec);
            let mut batcher = Batcher::new(limits, records.clone());
            let mut ready = Vec::new();
            let mut key = String::new();
            b.iter(|| {
                for e in &events {
                    key.clear();
                    if rb.partition(e, &mut key).is_err() {
                        continue;
                    }
                    let order = rb.order_key(e);
                    let _ = batcher.push_ordered(
                        &key,
                        order,
                        |out| rb.encode(e, out),
                        Default::default(),
                        &mut ready,
                    );
                }
                batcher.take_due(true, &mut ready);
                black_box(ready.len());
                ready.clear();
            })
        });
    }
    // One payload of 1000 JSON events, as a request is made of it per attempt.
    let mut rb = builder(Codec::Json);
    let mut batcher = Batcher::new(limits, records);
    let mut ready = Vec::new();
    for e in &events {
        let order = rb.order_key(e);
        let _ = batcher.push_ordered(
            "k",
            order,
            |out| rb.encode(e, out),
            Default::default(),
            &mut ready,
        );
    }
    batcher.take_due(true, &mut ready);
    let body = ready.pop().map(|p| p.body).unwrap_or_default();
    g.bench_function("input_events_1000", |b| {
        b.iter(|| input_events(black_box(&body)).map(|v| v.len()))
    });
    g.finish();
}

criterion_group!(cloudwatch, benches);
criterion_main!(cloudwatch);
