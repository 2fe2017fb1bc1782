//! Per-core cost of the syslog hot path: framing, parsing into an event, JSON encoding,
//! and what a disk buffer adds (each event encoded into a record, and decoded back when
//! the sink reads the disk). `cargo bench --bench syslog`; results are events per
//! second on one core.

use bytes::{Bytes, BytesMut};
use chrono::Utc;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use sluice::event::{Event, EventMetadata, LogEvent, ObjectMap};
use sluice::sinks::util::encoding::{EncodingConfig, StreamEncoder};
use sluice::sources::syslog::{parse_into, Framer};

const RFC5424: &[u8] = b"<134>1 2026-11-22T14:20:00.123Z web-01.example.com nginx 12345 ACCESS [req@32473 id=\"a1b2c3\" status=\"200\"] GET /api/v1/items/42 HTTP/1.1 200 512 0.004 seq=1234567";
const RFC3164: &[u8] = b"<34>Nov 22 14:20:00 web-01 sshd[4242]: Accepted publickey for deploy from 10.0.0.7 port 52341 ssh2: ED25519 SHA256:abcdefghijklmnop";

fn event(raw: &[u8]) -> Event {
    let mut fields = ObjectMap::new();
    parse_into(
        &Bytes::copy_from_slice(raw),
        Some(&sluice::sources::syslog::ip_value([10, 0, 0, 1].into())),
        Utc::now(),
        &mut fields,
    );
    LogEvent::from_parts(fields, EventMetadata::new("bench", Utc::now())).into()
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("syslog");
    g.throughput(Throughput::Elements(1));
    let now = Utc::now();
    for (name, raw) in [("parse_rfc5424", RFC5424), ("parse_rfc3164", RFC3164)] {
        let frame = Bytes::from_static(raw);
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut fields = ObjectMap::new();
                parse_into(
                    black_box(&frame),
                    Some(&sluice::sources::syslog::ip_value([10, 0, 0, 1].into())),
                    now,
                    &mut fields,
                );
                fields
            })
        });
    }
    let ev = event(RFC5424);
    let mut out = Vec::with_capacity(1 << 16);
    let mut encoder =
        StreamEncoder::new(&EncodingConfig::default(), &None).unwrap_or_else(|_| unreachable!());
    g.bench_function("encode_json_rfc5424", |b| {
        b.iter(|| {
            out.clear();
            encoder.encode(black_box(&ev), &mut out);
        })
    });
    // A disk buffer's record form: what the writer does to every event, and what a
    // reader that fell behind does to read it back.
    g.bench_function("disk_record_encode_rfc5424", |b| {
        b.iter(|| {
            out.clear();
            sluice::event::codec::encode(black_box(&ev), &mut out);
        })
    });
    out.clear();
    sluice::event::codec::encode(&ev, &mut out);
    let record = Bytes::copy_from_slice(&out);
    g.bench_function("disk_record_decode_rfc5424", |b| {
        b.iter(|| sluice::event::codec::Decoder::shared(black_box(&record)).event())
    });
    g.finish();

    let mut g = c.benchmark_group("framing");
    let mut stream = Vec::new();
    for _ in 0..1000 {
        stream.extend_from_slice(RFC5424);
        stream.push(b'\n');
    }
    let mut octets = Vec::new();
    for _ in 0..1000 {
        octets.extend_from_slice(format!("{} ", RFC5424.len()).as_bytes());
        octets.extend_from_slice(RFC5424);
    }
    g.throughput(Throughput::Elements(1000));
    for (name, data) in [("newline_1000", &stream), ("octet_counting_1000", &octets)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut f = Framer::new(102_400);
                let mut buf = BytesMut::from(&data[..]);
                let mut n = 0;
                while let Some(d) = f.decode(&mut buf) {
                    n += d.frame.is_some() as usize;
                }
                n
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = group;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = benches
}
criterion_main!(group);
