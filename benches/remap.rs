//! Per-core cost of the `remap` transform on the issue's program: `parse_syslog!` of the
//! message plus three assignments, over batches of 1000 syslog lines.
//! `cargo bench --bench remap`; events per second on one core (aim: 500k).

use chrono::Utc;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use sluice::event::{Event, EventMetadata, LogEvent, ObjectMap, Value};
use sluice::internal_events::{ComponentKind, ComponentLabels, ComponentMetrics};
use sluice::topology::component::{TransformConfig, TransformContext, TransformOutput};
use sluice::transforms::remap::RemapConfig;

fn batch() -> Vec<Event> {
    (0..1000)
        .map(|i| {
            let mut m = ObjectMap::new();
            m.insert(
                "message".into(),
                Value::from(format!(
                    "<134>1 2026-12-01T05:21:40.123Z web-{:02} nginx 2666 ID{i} - GET /api/v1/items/{i} 200",
                    i % 16
                )),
            );
            m.insert("source_type".into(), Value::from("syslog"));
            LogEvent::from_parts(m, EventMetadata::new("bench", Utc::now())).into()
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let config: RemapConfig = match toml::from_str(
        r#"source = '''
. = parse_syslog!(.message)
.env = "prod"
.status = 200
del(.msgid)
'''"#,
    ) {
        Ok(c) => c,
        Err(e) => panic!("bench config: {e}"),
    };
    let metrics = ComponentMetrics::new(ComponentLabels {
        id: "remap-bench".into(),
        kind: ComponentKind::Transform,
        type_name: "remap",
    });
    let mut remap = match config.build(TransformContext {
        id: "remap-bench".into(),
        metrics,
        timezone: None,
    }) {
        Ok(t) => t,
        Err(e) => panic!("bench build: {e}"),
    };
    let mut g = c.benchmark_group("remap");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("parse_syslog_plus_three_assignments_1000", |b| {
        b.iter_batched(
            batch,
            |input| {
                let mut out = TransformOutput::new(0);
                remap.transform(input, &mut out);
                out
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(remap_benches, benches);
criterion_main!(remap_benches);
