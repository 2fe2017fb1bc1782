//! Per-core cost of the transforms the issue names, each over batches of 1000 syslog
//! events as the syslog source makes them:
//! - `remap`: `parse_syslog!` of the message plus three assignments (aim 500k events/s);
//! - `filter`: a string comparison (aim 5M events/s);
//! - `route`: four routes on the severity (aim 5M events/s);
//! - `log_to_metric`: a counter with two templated tags;
//! - `alert`: a count rule and a p99 rule over 10,000 groups (hosts), each event
//!   checked against the rule's condition (aim 2M and 500k events/s).
//!
//! `cargo bench --bench transforms`; criterion reports events per second on one core.

use chrono::Utc;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use serde::de::DeserializeOwned;
use sluice::event::{Event, EventMetadata, LogEvent, ObjectMap, Value};
use sluice::internal_events::{ComponentKind, ComponentLabels, ComponentMetrics};
use sluice::topology::component::{Transform, TransformConfig, TransformContext, TransformOutput};
use sluice::transforms::alert::AlertConfig;
use sluice::transforms::filter::FilterConfig;
use sluice::transforms::log_to_metric::LogToMetricConfig;
use sluice::transforms::remap::RemapConfig;
use sluice::transforms::route::RouteConfig;

const SEVERITIES: [&str; 4] = ["info", "notice", "warning", "err"];

/// 1000 events: the raw line in `message` (for remap), and the fields the syslog
/// source parses out of it (for the others).
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
            m.insert("hostname".into(), Value::from(format!("web-{:02}", i % 16)));
            m.insert("appname".into(), Value::from("nginx"));
            m.insert("severity".into(), Value::from(SEVERITIES[i % 4]));
            m.insert("status".into(), Value::from(if i % 10 == 0 { 500 } else { 200 }));
            m.insert("source_type".into(), Value::from("syslog"));
            LogEvent::from_parts(m, EventMetadata::new("bench", Utc::now())).into()
        })
        .collect()
}

fn build<C: TransformConfig + DeserializeOwned>(
    type_name: &'static str,
    toml: &str,
) -> Box<dyn Transform> {
    let config: C = match toml::from_str(toml) {
        Ok(c) => c,
        Err(e) => panic!("{type_name} bench config: {e}"),
    };
    let metrics = ComponentMetrics::new(ComponentLabels {
        id: format!("{type_name}-bench").into(),
        kind: ComponentKind::Transform,
        type_name,
    });
    match config.build(TransformContext {
        id: format!("{type_name}-bench").into(),
        metrics,
        timezone: None,
        data_dir: std::env::temp_dir(),
    }) {
        Ok(t) => t,
        Err(e) => panic!("{type_name} bench build: {e}"),
    }
}

fn bench(c: &mut Criterion, name: &str, outputs: usize, mut tf: Box<dyn Transform>) {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(1000));
    g.bench_function("1000_events", |b| {
        b.iter_batched(
            batch,
            |input| {
                let mut out = TransformOutput::new(outputs);
                tf.transform(input, &mut out);
                out
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let remap = build::<RemapConfig>(
        "remap",
        r#"source = '''
. = parse_syslog!(.message)
.env = "prod"
.status = 200
del(.msgid)
'''"#,
    );
    bench(c, "remap_parse_syslog_plus_three_assignments", 0, remap);

    let filter = build::<FilterConfig>("filter", r#"condition = '.appname == "nginx"'"#);
    bench(c, "filter_string_comparison", 0, filter);

    let route = build::<RouteConfig>(
        "route",
        r#"[route]
info = '.severity == "info"'
notice = '.severity == "notice"'
warning = '.severity == "warning"'
error = '.severity == "err"'
"#,
    );
    // Four routes plus `_unmatched`.
    bench(c, "route_four_routes", 5, route);

    let l2m = build::<LogToMetricConfig>(
        "log_to_metric",
        r#"[[metrics]]
type = "counter"
field = "status"
name = "responses_total"
tags = { host = "{{ hostname }}", app = "{{ appname }}" }
"#,
    );
    bench(c, "log_to_metric_counter_two_tags", 0, l2m);
}

/// 1000 error events from hosts `offset..offset + 1000` (of 10,000), with a latency.
fn alert_batch(offset: usize) -> Vec<Event> {
    (0..1000)
        .map(|i| {
            let mut m = ObjectMap::new();
            m.insert(
                "host".into(),
                Value::from(format!("web-{:05}", (offset + i) % 10_000)),
            );
            m.insert("severity".into(), Value::from("err"));
            m.insert("latency_ms".into(), Value::Integer(((i * 37) % 900) as i64));
            LogEvent::from_parts(m, EventMetadata::new("bench", Utc::now())).into()
        })
        .collect()
}

fn alert_bench(c: &mut Criterion, name: &str, rule: &str) {
    let mut tf = build::<AlertConfig>(
        "alert",
        &format!("eval_interval_secs = 10\n[[rules]]\nname = \"R\"\ncondition = '.severity == \"err\"'\ngroup_by = [\"host\"]\nwindow_secs = 300\nop = \">\"\nthreshold = 1000000\n{rule}"),
    );
    // Every group exists before measuring.
    for o in (0..10_000).step_by(1000) {
        tf.transform(alert_batch(o), &mut TransformOutput::new(0));
    }
    let mut offset = 0;
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(1000));
    g.bench_function("1000_events_10000_groups", |b| {
        b.iter_batched(
            || {
                offset = (offset + 1000) % 10_000;
                alert_batch(offset)
            },
            |input| {
                let mut out = TransformOutput::new(0);
                tf.transform(input, &mut out);
                out
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn alert_benches(c: &mut Criterion) {
    alert_bench(c, "alert_count_rule", "agg = \"count\"");
    alert_bench(c, "alert_p99_rule", "agg = \"p99\"\nfield = \"latency_ms\"");
}

criterion_group!(transform_benches, benches);
criterion_group!(alert, alert_benches);
criterion_main!(transform_benches, alert);
