//! The transform contract exercised end to end with components that exist only here: a
//! transform with a named output, one that holds events until a deadline of its own, and
//! a sink that keeps what it receives for the test to read.

use super::component::{
    sink, source, transform, BuildError, Registry, SinkConfig, SinkContext, SourceConfig,
    SourceContext, Task, Transform, TransformConfig, TransformContext, TransformOutput,
};
use super::{RunningTopology, Stopped};
use crate::api::Health;
use crate::config::Config;
use crate::event::{Batch, Event, EventMetadata, Metric, MetricKind, MetricValue};
use crate::internal_events::names;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::time::Instant;

/// Sends every other event to its `odd` output.
#[derive(Debug, Deserialize)]
struct SplitConfig {}

impl TransformConfig for SplitConfig {
    fn build(&self, _: TransformContext) -> Result<Box<dyn Transform>, BuildError> {
        Ok(Box::new(Split(0)))
    }
    fn outputs(&self) -> Vec<String> {
        vec!["odd".into()]
    }
}

struct Split(u64);

impl Transform for Split {
    fn transform(&mut self, input: Batch, out: &mut TransformOutput) {
        for e in input {
            if self.0 % 2 == 1 {
                out.push_named(0, e);
            } else {
                out.push(e);
            }
            self.0 += 1;
        }
    }
}

/// Holds events until `secs` after the first one arrived, then passes them all on.
#[derive(Debug, Deserialize)]
struct HoldConfig {
    secs: u64,
}

impl TransformConfig for HoldConfig {
    fn build(&self, _: TransformContext) -> Result<Box<dyn Transform>, BuildError> {
        Ok(Box::new(Hold {
            secs: self.secs,
            held: Vec::new(),
            due: None,
        }))
    }
}

struct Hold {
    secs: u64,
    held: Batch,
    due: Option<Instant>,
}

impl Transform for Hold {
    fn transform(&mut self, input: Batch, _: &mut TransformOutput) {
        if self.due.is_none() {
            self.due = Some(Instant::now() + Duration::from_secs(self.secs));
        }
        self.held.extend(input);
    }
    fn next_deadline(&self) -> Option<Instant> {
        self.due
    }
    fn on_deadline(&mut self, out: &mut TransformOutput) {
        self.due = None;
        out.default.append(&mut self.held);
    }
    fn flush(&mut self, out: &mut TransformOutput) {
        out.default.append(&mut self.held);
    }
}

fn collected() -> &'static Mutex<HashMap<String, Vec<Event>>> {
    static C: OnceLock<Mutex<HashMap<String, Vec<Event>>>> = OnceLock::new();
    C.get_or_init(Default::default)
}

fn count(name: &str) -> usize {
    collected().lock().unwrap().get(name).map_or(0, Vec::len)
}

/// Keeps what it receives under `name`.
#[derive(Debug, Deserialize)]
struct CollectConfig {
    name: String,
}

impl SinkConfig for CollectConfig {
    fn build(&self, mut cx: SinkContext) -> Result<Task, BuildError> {
        let name = self.name.clone();
        Ok(Box::pin(async move {
            while let Some(batch) = cx.input.recv().await {
                cx.metrics.sent_events.increment(batch.len() as u64);
                collected()
                    .lock()
                    .unwrap()
                    .entry(name.clone())
                    .or_default()
                    .extend(batch);
            }
        }))
    }
}

/// Emits `count` counter samples, then ends.
#[derive(Debug, Deserialize)]
struct MetricGenConfig {
    count: u64,
}

impl SourceConfig for MetricGenConfig {
    fn build(&self, cx: SourceContext) -> Result<Task, BuildError> {
        let count = self.count;
        Ok(Box::pin(async move {
            let batch: Batch = (0..count)
                .map(|i| {
                    let mut m = Metric::new(
                        "jobs",
                        MetricKind::Incremental,
                        MetricValue::Counter(i as f64),
                        EventMetadata::new("gen", chrono::Utc::now()),
                    );
                    m.tags.insert("queue".into(), "mail".into());
                    Event::from(m)
                })
                .collect();
            cx.metrics.received_events.increment(count);
            let _ = cx.out.send(batch).await;
        }))
    }
}

fn registry() -> Registry {
    let mut r = Registry::builtin();
    r.sources.push(source::<MetricGenConfig>("metric_gen"));
    r.transforms.push(transform::<SplitConfig>("split"));
    r.transforms.push(transform::<HoldConfig>("hold"));
    r.sinks.push(sink::<CollectConfig>("collect"));
    r
}

/// A config of `text` with the test components and without the API (tests run side by
/// side and would fight over its port).
fn load(text: &str) -> Result<Config, String> {
    let text = format!("{text}\n[api]\nenabled = false\n");
    Config::from_texts_with(vec![(PathBuf::from("t.toml"), text)], registry())
        .map_err(|e| e.to_string())
}

async fn start(config: &Config) -> RunningTopology {
    RunningTopology::start(config, Arc::new(Health::default()))
        .await
        .unwrap()
}

#[test]
fn inputs_name_outputs_and_validate_lists_the_ones_that_exist() {
    let base = r#"
        [sources.src]
        type = "demo"
        [transforms.t]
        type = "split"
        inputs = ["src"]
    "#;
    let ok = load(&format!(
        "{base}[sinks.a]\ntype = \"blackhole\"\ninputs = [\"t\", \"t.odd\"]\n"
    ))
    .unwrap();
    assert_eq!(ok.sinks["a"].resolved_inputs, ["t", "t.odd"]);
    let dot = crate::config::to_dot(&ok);
    assert!(dot.contains("\"t\" -> \"a\" [label=\"odd\"];"), "{dot}");
    assert!(dot.contains("\"t\" -> \"a\";"), "{dot}");

    let err = load(&format!(
        "{base}[sinks.a]\ntype = \"blackhole\"\ninputs = [\"t.od\", \"src.x\"]\n"
    ))
    .unwrap_err();
    assert!(
        err.contains("`t` has no output `od`; did you mean `odd`? (its outputs: `t`, `t.odd`)"),
        "{err}"
    );
    assert!(
        err.contains("`src` has no output `x`: it has only its default output, named `src`"),
        "{err}"
    );
}

#[tokio::test]
async fn each_output_reaches_only_its_consumers_and_the_accounting_adds_up() {
    let config = load(
        r#"
        [sources.src]
        type = "demo"
        interval = 0
        count = 2000
        [transforms.t]
        type = "split"
        inputs = ["src"]
        [transforms.unread]
        type = "split"
        inputs = ["src"]
        [sinks.even]
        type = "collect"
        name = "split-even"
        inputs = ["t"]
        [sinks.odd]
        type = "collect"
        name = "split-odd"
        inputs = ["t.odd"]
        [sinks.all]
        type = "collect"
        name = "split-all"
        inputs = ["t", "t.odd"]
        "#,
    )
    .unwrap();
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    // The components register their metrics while they are built, on this thread.
    let guard = metrics::set_default_local_recorder(&recorder);
    let running = RunningTopology::start(&config, Arc::new(Health::default()))
        .await
        .unwrap();
    drop(guard);
    running.sources_finished().await;
    assert_eq!(
        running.stop(Duration::from_secs(10)).await,
        Stopped::Drained
    );
    let text = recorder.handle().render();
    let value = |name: &str, id: &str, extra: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(name))
            .filter(|l| l.contains(&format!("component_id=\"{id}\"")) && l.contains(extra))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    // Both outputs count as sent; an output nobody reads counts as discarded on purpose.
    assert_eq!(value(names::RECEIVED_EVENTS, "t", ""), 2000.0);
    assert_eq!(value(names::SENT_EVENTS, "t", ""), 2000.0);
    assert_eq!(value(names::RECEIVED_EVENTS, "unread", ""), 2000.0);
    assert_eq!(value(names::SENT_EVENTS, "unread", ""), 0.0);
    assert_eq!(
        value(names::DISCARDED_EVENTS, "unread", "intentional=\"true\""),
        2000.0
    );
    assert_eq!(value(names::RECEIVED_EVENTS, "all", ""), 2000.0);
    assert_eq!(count("split-even"), 1000);
    assert_eq!(count("split-odd"), 1000);
    assert_eq!(count("split-all"), 2000);
}

#[tokio::test(start_paused = true)]
async fn a_timed_transform_acts_at_its_deadline_without_new_input() {
    let config = load(
        r#"
        [sources.src]
        type = "demo"
        interval = 3600
        [transforms.h]
        type = "hold"
        secs = 5
        inputs = ["src"]
        [sinks.out]
        type = "collect"
        name = "hold-deadline"
        inputs = ["h"]
        "#,
    )
    .unwrap();
    let running = start(&config).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(count("hold-deadline"), 0, "released before its deadline");
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The source stays open (one event an hour): only the deadline can release it.
    assert_eq!(count("hold-deadline"), 1, "not released at its deadline");
    assert_eq!(
        running.stop(Duration::from_secs(10)).await,
        Stopped::Drained
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_flushes_held_events_through_the_rest_of_the_graph() {
    let config = load(
        r#"
        [sources.src]
        type = "demo"
        interval = 3600
        [transforms.h1]
        type = "hold"
        secs = 3600
        inputs = ["src"]
        [transforms.h2]
        type = "hold"
        secs = 3600
        inputs = ["h1"]
        [sinks.out]
        type = "collect"
        name = "hold-flush"
        inputs = ["h2"]
        "#,
    )
    .unwrap();
    let running = start(&config).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(count("hold-flush"), 0);
    // h1 flushes into h2, whose input then closes and which flushes into the sink.
    assert_eq!(
        running.stop(Duration::from_secs(10)).await,
        Stopped::Drained
    );
    assert_eq!(count("hold-flush"), 1);
}

#[tokio::test]
async fn metric_events_pass_through_transforms_into_the_file_sink() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.jsonl");
    let config = load(&format!(
        r#"
        data_dir = "{dir}"
        [sources.gen]
        type = "metric_gen"
        count = 10
        [transforms.s]
        type = "sample"
        rate = 2
        inputs = ["gen"]
        [sinks.out]
        type = "file"
        path = "{path}"
        inputs = ["s"]
        "#,
        dir = dir.path().display(),
        path = path.display()
    ))
    .unwrap();
    let running = start(&config).await;
    running.sources_finished().await;
    assert_eq!(
        running.stop(Duration::from_secs(10)).await,
        Stopped::Drained
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert_eq!(
        lines[1],
        serde_json::json!({"name": "jobs", "tags": {"queue": "mail"}, "kind": "incremental", "counter": {"value": 2.0}})
    );
}

#[tokio::test]
async fn one_component_stops_alone_and_its_siblings_go_on() {
    let config = load(
        r#"
        [sources.src]
        type = "demo"
        interval = 0.001
        [sinks.a]
        type = "collect"
        name = "stop-a"
        inputs = ["src"]
        [sinks.b]
        type = "collect"
        name = "stop-b"
        inputs = ["src"]
        "#,
    )
    .unwrap();
    let running = start(&config).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(running.stop_component(crate::internal_events::ComponentKind::Sink, "a"));
    assert!(!running.stop_component(crate::internal_events::ComponentKind::Sink, "nope"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (a1, b1) = (count("stop-a"), count("stop-b"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (a2, b2) = (count("stop-a"), count("stop-b"));
    assert!(a1 > 0, "a never received anything");
    assert_eq!(a1, a2, "a stopped, yet it still receives");
    assert!(b2 > b1, "b stopped with a: {b1} then {b2}");
    assert_eq!(
        running.stop(Duration::from_secs(10)).await,
        Stopped::Drained
    );
}
