//! Per-core cost of the HTTP hot paths: decoding an NDJSON request body into events (the
//! `http_server` source) and gathering events into an NDJSON request body (the `http`
//! sink's batcher and encoder). `cargo bench --bench http`; events per second on one core.

use bytes::Bytes;
use chrono::Utc;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use sluice::event::{Event, EventMetadata, LogEvent, ObjectMap};
use sluice::sinks::util::batch::{BatchLimits, Batcher, Framing};
use sluice::sinks::util::encoding::encode_json;
use sluice::sources::http_server::decode::{decode, Codec, Split};
use std::time::Duration;

/// 1000 small events as the load test's wrk body has them (~92 bytes each).
fn body() -> Bytes {
    let mut s = String::new();
    for i in 0..1000 {
        s.push_str(&format!(
            "{{\"level\":\"info\",\"service\":\"checkout\",\"message\":\"GET /api/cart/{i} 200 12ms\",\"user_id\":{}}}\n",
            i * 7
        ));
    }
    Bytes::from(s)
}

fn benches(c: &mut Criterion) {
    let body = body();
    let mut g = c.benchmark_group("http");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("decode_ndjson_1000", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(1000);
            decode(
                Codec::Ndjson,
                Split::At(b'\n', usize::MAX),
                black_box(&body),
                &mut out,
            )
            .map(|()| out)
        })
    });
    let mut maps = Vec::new();
    let _ = decode(
        Codec::Ndjson,
        Split::At(b'\n', usize::MAX),
        &body,
        &mut maps,
    );
    let events: Vec<Event> = maps
        .into_iter()
        .map(|m: ObjectMap| LogEvent::from_parts(m, EventMetadata::new("bench", Utc::now())).into())
        .collect();
    let limits = BatchLimits {
        max_events: 1000,
        max_bytes: 1_000_000,
        timeout: Duration::from_secs(1),
        per_event_overhead: 0,
        max_order_span: None,
    };
    let ndjson = Framing::fixed(b"", b"\n", b"\n");
    g.bench_function("batch_ndjson_1000", |b| {
        let mut batcher = Batcher::new(limits, ndjson.clone());
        let mut ready = Vec::new();
        b.iter(|| {
            for e in &events {
                let _ = batcher.push(
                    "",
                    |out| {
                        encode_json(e, out);
                        Ok::<(), ()>(())
                    },
                    Default::default(),
                    &mut ready,
                );
            }
            ready.clear();
        })
    });
    g.finish();
}

criterion_group!(http, benches);
criterion_main!(http);
