//! The `remap` transform in a running sluice: VRL programs as Vector users write them,
//! events in over stdin and out as JSON lines, compared exactly; runtime errors, aborts,
//! one event becoming several, the `dropped` output; `validate` with VRL's diagnostics.

use crate::support;

use serde_json::{json, Value as Json};
use std::time::Duration;
use support::*;

/// Runs `transforms` (TOML, reading from `in`) on `lines` from stdin until sluice exits;
/// the JSON lines of each sink named in `sinks` (file sinks on `{DIR}/<name>.jsonl`).
fn run(transforms: &str, sinks: &[(&str, &str)], lines: &[&str]) -> (Vec<Vec<Json>>, String) {
    let mut config = format!("[sources.in]\ntype = \"stdin\"\n{transforms}\n");
    for (name, input) in sinks {
        config.push_str(&format!(
            "[sinks.{name}]\ntype = \"file\"\ninputs = [\"{input}\"]\npath = \"{{DIR}}/{name}.jsonl\"\n"
        ));
    }
    let (mut s, stdin) = Sluice::start_piped(&config, lines);
    drop(stdin);
    assert!(
        s.wait(Duration::from_secs(30)).success(),
        "{}",
        s.log_text()
    );
    let out = sinks
        .iter()
        .map(|(name, _)| read_jsonl(s.dir.path(), &format!("{name}.")))
        .collect();
    (out, s.log_text())
}

/// Starts `config` with piped stdin, writes `lines`, and waits until transform `id` of
/// type `ty` received `n` events and passed on or discarded all it received; the
/// metrics then, with the received = sent + discarded identity checked. Stdin stays
/// open (and sluice running) until the returned handle is dropped.
fn pipe_through(
    config: &str,
    lines: &[String],
    (id, ty, n): (&str, &str, f64),
) -> (Sluice, std::process::ChildStdin, String, ComponentSample) {
    let (s, stdin) = Sluice::start_piped(config, lines);
    let mut m = String::new();
    // Until it has taken `n` in and passed on (or discarded) all it took.
    assert!(wait_for(Duration::from_secs(10), || {
        m = s.metrics();
        let c = component_metrics_in_flight(&m, id, "transform", ty);
        c.received_events >= n && c.sent_events + c.discarded >= c.received_events
    }));
    let c = assert_component_metrics(&m, id, "transform", ty);
    (s, stdin, m, c)
}

/// `sluice validate` on `text` written to `name`: asserts it fails with EX_CONFIG and
/// that stderr holds each of `expected` (where `{file}` stands for the file's path);
/// returns stderr.
fn validate_fails(name: &str, text: &str, expected: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write");
    let out = std::process::Command::new(bin())
        .args(["validate", "--config"])
        .arg(&path)
        .output()
        .expect("validate");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(78), "{err}");
    let file = path.display().to_string();
    for e in expected {
        let e = e.replace("{file}", &file);
        assert!(err.contains(&e), "missing {e:?} in:\n{err}");
    }
    err
}

/// The fields a test compares: everything but the ones stdin adds.
fn strip(mut v: Json) -> Json {
    if let Some(o) = v.as_object_mut() {
        for k in ["host", "timestamp", "source_type"] {
            o.remove(k);
        }
    }
    v
}

#[test]
fn a_program_parses_reshapes_and_keeps_types() {
    let (out, log) = run(
        r#"
[transforms.shape]
type = "remap"
inputs = ["in"]
source = '''
. = parse_json!(.message)
.level = upcase!(.level)
.status = to_int!(.status)
.latency_ms = to_float!(.latency) * 1000.0
.tags = push(array!(.tags), "seen")
del(.secret)
%internal = "not written"
'''
"#,
        &[("out", "shape")],
        &[
            r#"{"level":"warn","status":"503","latency":0.25,"tags":["a"],"nested":{"x":[1,2]},"secret":"s"}"#,
        ],
    );
    assert_eq!(
        out[0].iter().cloned().map(strip).collect::<Vec<_>>(),
        [
            json!({"level": "WARN", "status": 503, "latency": 0.25, "latency_ms": 250.0,
                "tags": ["a", "seen"], "nested": {"x": [1, 2]}})
        ],
        "{log}"
    );
}

#[test]
fn errors_aborts_and_one_event_becoming_several() {
    let (out, log) = run(
        r#"
[transforms.lenient]
type = "remap"
inputs = ["in"]
source = '. = parse_json!(.message)'

[transforms.strict]
type = "remap"
inputs = ["in"]
drop_on_error = true
reroute_dropped = true
source = '''
. = parse_json!(.message)
if .level == "debug" { abort }
'''

[transforms.split]
type = "remap"
inputs = ["in"]
source = '''
parsed, err = parse_json(.message)
if err == null && is_array(parsed.items) {
  . = map_values(array!(parsed.items)) -> |item| { {"item": item} }
} else {
  . = []
}
'''
"#,
        &[
            ("out_lenient", "lenient"),
            ("out_strict", "strict"),
            ("out_dropped", "strict.dropped"),
            ("out_split", "split"),
        ],
        &[
            r#"{"level":"info","items":[1,2,3]}"#,
            "not json",
            r#"{"level":"debug"}"#,
        ],
    );
    // A runtime error passes the event on unchanged (drop_on_error = false).
    let lenient: Vec<Json> = out[0].iter().cloned().map(strip).collect();
    assert_eq!(lenient.len(), 3, "{log}");
    assert_eq!(lenient[1], json!({"message": "not json"}));
    assert!(log.contains("The VRL program failed"), "{log}");
    // drop_on_error with reroute_dropped: to `dropped`, annotated as Vector does.
    assert_eq!(
        out[1].iter().cloned().map(strip).collect::<Vec<_>>(),
        [json!({"level": "info", "items": [1, 2, 3]})]
    );
    assert_eq!(out[2].len(), 2, "the error and the abort: {:?}", out[2]);
    let d = &out[2][0]["metadata"]["dropped"];
    assert_eq!(d["reason"], "error");
    assert_eq!(d["component_id"], "strict");
    assert_eq!(d["component_type"], "remap");
    assert!(
        d["message"]
            .as_str()
            .is_some_and(|m| m.contains("unable to parse json")),
        "{d}"
    );
    assert_eq!(out[2][1]["metadata"]["dropped"]["reason"], "abort");
    assert_eq!(
        out[2][1]["message"], r#"{"level":"debug"}"#,
        "the event as it came in"
    );
    // An array of objects is one event each; an empty one is none.
    let items: Vec<Json> = out[3].iter().map(|e| e["item"].clone()).collect();
    assert_eq!(items, [json!(1), json!(2), json!(3)]);
}

#[test]
fn the_accounting_adds_up_through_remap() {
    let lines: Vec<String> = (0..100)
        .map(|i| if i % 4 == 0 { "drop me" } else { "keep" }.to_string())
        .collect();
    let (_s, _stdin, m, c) = pipe_through(
        r#"
[sources.in]
type = "stdin"
[transforms.t]
type = "remap"
inputs = ["in"]
source = '''
if .message == "drop me" { abort }
.n = 1
'''
[sinks.out]
type = "blackhole"
inputs = ["t"]
print_interval_secs = 0
"#,
        &lines,
        ("t", "remap", 100.0),
    );
    assert_eq!(c.sent_events, 75.0);
    assert_eq!(
        metric(
            &m,
            "sluice_component_discarded_events_total",
            &[("component_id", "t"), ("intentional", "true")]
        ),
        Some(25.0)
    );
}

#[test]
fn validate_reports_vrl_diagnostics_with_file_component_and_code() {
    let err = validate_fails(
        "remap.toml",
        r#"
[sources.in]
type = "stdin"
[transforms.fallible]
type = "remap"
inputs = ["in"]
source = '. = parse_json(.message)'
[transforms.syntax]
type = "remap"
inputs = ["in"]
source = '.x = 1 +'
[transforms.unknown]
type = "remap"
inputs = ["in"]
source = '.x = no_such_function(.y)'
[transforms.plain]
type = "remap"
inputs = ["in"]
source = '.x = 1'
[sinks.out]
type = "blackhole"
inputs = ["fallible", "syntax", "unknown", "plain.dropped"]
"#,
        &[
            "{file}: [transforms.fallible] key `source`: the VRL program does not compile:",
            "error[E103]: unhandled fallible assignment",
            "update the expression to be infallible by adding a `!`: `parse_json!(.message)`",
            "{file}: [transforms.syntax] key `source`: the VRL program does not compile:",
            "error[E204]: syntax error",
            "error[E105]: call to undefined function",
            "`plain` has no output `dropped`",
        ],
    );
    // The caret sits under the column VRL names.
    assert!(err.contains("1 │ .x = 1 +\n  │         ^"), "{err}");
}

#[test]
fn filter_route_and_sample_exclude_take_vrl_conditions() {
    let lines: Vec<String> = (0..40)
        .map(|i| {
            let level = ["error", "warn", "info", "debug"][i % 4];
            format!(
                r#"{{"level":"{level}","status":{},"i":{i}}}"#,
                if i % 4 == 0 { 503 } else { 200 }
            )
        })
        .collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let (out, log) = run(
        r#"
[transforms.parsed]
type = "remap"
inputs = ["in"]
source = '. = parse_json!(.message)'

[transforms.server_errors]
type = "filter"
inputs = ["parsed"]
condition = '(int(.status) ?? 0) >= 500'

[transforms.warnings]
type = "filter"
inputs = ["parsed"]
condition.type = "vrl"
condition.source = '.level == "warn"'

[transforms.by_level]
type = "route"
inputs = ["parsed"]
route.error = '.level == "error"'
route.problems = 'includes(["error", "warn"], .level)'
route.info = '.level == "info"'

[transforms.known_only]
type = "route"
inputs = ["parsed"]
reroute_unmatched = false
route.info = '.level == "info"'

[transforms.sampled]
type = "sample"
inputs = ["parsed"]
rate = 1000
exclude = '.level == "error"'
"#,
        &[
            ("o_server_errors", "server_errors"),
            ("o_warnings", "warnings"),
            ("o_error", "by_level.error"),
            ("o_problems", "by_level.problems"),
            ("o_info", "by_level.info"),
            ("o_unmatched", "by_level._unmatched"),
            ("o_known", "known_only"),
            ("o_known_info", "known_only.info"),
            ("o_sampled", "sampled"),
        ],
        &refs,
    );
    let levels = |i: usize| -> Vec<String> {
        out[i]
            .iter()
            .map(|e| e["level"].as_str().unwrap_or("?").to_string())
            .collect()
    };
    assert_eq!(out[0].len(), 10, "{log}");
    assert!(out[0].iter().all(|e| e["status"] == 503));
    assert_eq!(levels(1), vec!["warn"; 10]);
    assert_eq!(levels(2), vec!["error"; 10]);
    // An event goes to every route it matches.
    assert_eq!(out[3].len(), 20);
    assert_eq!(levels(4), vec!["info"; 10]);
    assert_eq!(levels(5), vec!["debug"; 10], "what no route takes");
    assert!(
        out[6].is_empty(),
        "a route has no default output: {:?}",
        out[6]
    );
    assert_eq!(out[7].len(), 10);
    // exclude: every error passes unsampled; of the rest, 1 in 1000 (the first).
    let sampled = levels(8);
    assert_eq!(sampled.iter().filter(|l| *l == "error").count(), 10);
    assert_eq!(sampled.len(), 11, "{sampled:?}");
}

#[test]
fn validate_checks_conditions_and_route_outputs() {
    validate_fails(
        "conditions.toml",
        r#"
[sources.in]
type = "stdin"
[transforms.not_bool]
type = "filter"
inputs = ["in"]
condition = '.status'
[transforms.other_type]
type = "filter"
inputs = ["in"]
condition.type = "datadog_search"
condition.source = "@status:500"
[transforms.r]
type = "route"
inputs = ["in"]
route.errors = '.level == "error"'
[sinks.out]
type = "blackhole"
inputs = ["r.errors", "r.nope", "r._unmatched"]
"#,
        &[
        "{file}: [transforms.not_bool] key `condition`: a VRL condition must return a boolean; `.status` returns any",
        "{file}: [transforms.other_type] key `condition.type`: Vector's `datadog_search` condition is not supported by sluice",
        "`r` has no output `nope`",
        ],
    );
}

#[test]
fn dedupe_remembers_recent_events_by_their_fields() {
    let (out, log) = run(
        r#"
[transforms.parsed]
type = "remap"
inputs = ["in"]
source = '. = parse_json!(.message)'

[transforms.by_message]
type = "dedupe"
inputs = ["parsed"]
fields.match = ["msg", "ctx.user"]
cache.num_events = 2

[transforms.all_but_seq]
type = "dedupe"
inputs = ["parsed"]
fields.ignore = ["seq", "timestamp", "host", "source_type"]
"#,
        &[
            ("o_by_message", "by_message"),
            ("o_all_but_seq", "all_but_seq"),
        ],
        &[
            r#"{"seq":1,"msg":"a","ctx":{"user":"x"}}"#,
            r#"{"seq":2,"msg":"a","ctx":{"user":"x"}}"#,
            r#"{"seq":3,"msg":"a","ctx":{"user":"y"}}"#,
            r#"{"seq":4,"msg":"b","ctx":{"user":"x"}}"#,
            r#"{"seq":5,"msg":"a","ctx":{"user":"x"}}"#,
            r#"{"seq":6,"msg":1}"#,
            r#"{"seq":7,"msg":"1"}"#,
            r#"{"seq":8,"msg":"1"}"#,
        ],
    );
    let seqs = |i: usize| -> Vec<i64> { out[i].iter().filter_map(|e| e["seq"].as_i64()).collect() };
    // 2 repeats 1; 5 repeats 1 but (a,x) was pushed out by (a,y) and (b,x) (two
    // remembered); 1 and "1" differ by type; 8 repeats 7.
    assert_eq!(seqs(0), [1, 3, 4, 5, 6, 7], "{log}");
    // Every field but seq (and the ones stdin adds): the same pairs are duplicates,
    // with the default cache nothing is pushed out.
    assert_eq!(seqs(1), [1, 3, 4, 6, 7]);
}

#[test]
fn throttle_keeps_each_key_to_its_budget_and_exclude_passes() {
    let mut lines = Vec::new();
    for (service, n) in [("a", 20), ("b", 20), ("c", 3)] {
        for i in 0..n {
            lines.push(format!(
                r#"{{"service":"{service}","level":"info","i":{i}}}"#
            ));
        }
    }
    for i in 0..10 {
        lines.push(format!(r#"{{"service":"a","level":"error","i":{i}}}"#));
    }
    let (mut s, stdin, m, c) = pipe_through(
        r#"
[sources.in]
type = "stdin"
[transforms.parsed]
type = "remap"
inputs = ["in"]
source = '. = parse_json!(.message)'
[transforms.t]
type = "throttle"
inputs = ["parsed"]
threshold = 5
window_secs = 60
key_field = "{{ service }}"
exclude = '.level == "error"'
[sinks.out]
type = "file"
inputs = ["t"]
path = "{DIR}/out.jsonl"
"#,
        &lines,
        ("t", "throttle", 53.0),
    );
    // 5 of a, 5 of b, all 3 of c, and the 10 errors that bypass the throttle.
    assert_eq!(c.sent_events, 23.0);
    assert_eq!(
        metric(
            &m,
            "sluice_component_discarded_events_total",
            &[("component_id", "t"), ("intentional", "true")]
        ),
        Some(30.0)
    );
    drop(stdin);
    assert!(s.wait(Duration::from_secs(20)).success());
    let out = read_jsonl(s.dir.path(), "out");
    let count = |svc: &str, level: &str| {
        out.iter()
            .filter(|e| e["service"] == svc && e["level"] == level)
            .count()
    };
    assert_eq!(
        (
            count("a", "info"),
            count("b", "info"),
            count("c", "info"),
            count("a", "error")
        ),
        (5, 5, 3, 10)
    );
    // The first five of each key pass, in order.
    let a: Vec<i64> = out
        .iter()
        .filter(|e| e["service"] == "a" && e["level"] == "info")
        .filter_map(|e| e["i"].as_i64())
        .collect();
    assert_eq!(a, [0, 1, 2, 3, 4]);
}

#[test]
fn log_to_metric_makes_vectors_metrics_from_fields() {
    let (out, log) = run(
        r#"
[transforms.parsed]
type = "remap"
inputs = ["in"]
source = '. = parse_json!(.message)'

[transforms.m]
type = "log_to_metric"
inputs = ["parsed"]

[[transforms.m.metrics]]
type = "counter"
field = "status"
name = "responses_total"
namespace = "web"
tags = { status = "{{ status }}", host = "{{ host }}" }

[[transforms.m.metrics]]
type = "counter"
field = "bytes"
name = "bytes_total"
increment_by_value = true

[[transforms.m.metrics]]
type = "gauge"
field = "queue"

[[transforms.m.metrics]]
type = "histogram"
field = "latency"

[[transforms.m.metrics]]
type = "set"
field = "user"
"#,
        &[("o_metrics", "m")],
        &[
            r#"{"status":200,"host":"a","bytes":100,"queue":3,"latency":0.25,"user":"u1"}"#,
            r#"{"status":"503","bytes":"50","latency":"oops"}"#,
            r#"{"nothing":true}"#,
        ],
    );
    let by_name = |name: &str| -> Vec<Json> {
        out[0]
            .iter()
            .filter(|m| m["name"] == name)
            .cloned()
            .collect()
    };
    let responses = by_name("responses_total");
    assert_eq!(responses.len(), 2, "{log}");
    assert_eq!(responses[0]["namespace"], "web");
    assert_eq!(responses[0]["kind"], "incremental");
    assert_eq!(responses[0]["counter"], json!({"value": 1.0}));
    assert_eq!(responses[0]["tags"], json!({"status": "200", "host": "a"}));
    // A tag whose field is missing is left out.
    assert_eq!(responses[1]["tags"], json!({"status": "503"}));
    let bytes: Vec<f64> = by_name("bytes_total")
        .iter()
        .filter_map(|m| m["counter"]["value"].as_f64())
        .collect();
    assert_eq!(
        bytes,
        [100.0, 50.0],
        "increment_by_value, text that parses included: {:?}\n{log}",
        out[0]
    );
    assert_eq!(by_name("queue")[0]["gauge"], json!({"value": 3.0}));
    assert_eq!(by_name("queue")[0]["kind"], "absolute");
    let latency = by_name("latency");
    assert_eq!(latency.len(), 1, "`oops` is not a number: no metric");
    assert_eq!(
        latency[0]["distribution"],
        json!({"samples": [{"value": 0.25, "rate": 1}], "statistic": "histogram"})
    );
    assert_eq!(by_name("user")[0]["set"], json!({"values": ["u1"]}));
    // 5 + 2 metrics; the third event made none.
    assert_eq!(out[0].len(), 7);
    assert!(log.contains("made no metric"), "{log}");
}

#[test]
fn log_to_metric_all_metrics_reads_vectors_metric_json_back() {
    // Every metric type in the JSON shape Vector's (and sluice's) JSON codec writes, as
    // it arrives when metrics travel as logs; then one that is not a metric.
    let metrics = [
        json!({"name": "requests", "namespace": "web", "kind": "incremental",
               "tags": {"env": "test_env", "host": "localhost"}, "counter": {"value": 10.0}}),
        json!({"name": "queue", "kind": "absolute", "gauge": {"value": 3.5}}),
        json!({"name": "users", "kind": "incremental", "set": {"values": ["a", "b"]}}),
        json!({"name": "latency", "kind": "incremental",
               "distribution": {"samples": [{"value": 0.25, "rate": 2}], "statistic": "histogram"}}),
        json!({"name": "sizes", "kind": "absolute",
               "aggregated_histogram": {"buckets": [{"upper_limit": 1.0, "count": 4},
                                                    {"upper_limit": 2.0, "count": 6}],
                                        "count": 10, "sum": 12.5}}),
        json!({"name": "ages", "kind": "absolute",
               "aggregated_summary": {"quantiles": [{"quantile": 0.5, "value": 3.0}],
                                      "count": 7, "sum": 20.0}}),
    ];
    let mut lines: Vec<String> = metrics.iter().map(Json::to_string).collect();
    lines.push(r#"{"name":"broken","kind":"incremental","gauge":{"value":"high"}}"#.into());
    let config = r#"
[sources.in]
type = "stdin"

[transforms.parsed]
type = "remap"
inputs = ["in"]
source = '. = parse_json!(.message)'

[transforms.m]
type = "log_to_metric"
inputs = ["parsed"]
all_metrics = true
metrics = []

[sinks.out]
type = "file"
inputs = ["m"]
path = "{DIR}/out.jsonl"
"#;
    let (mut s, stdin, m, c) = pipe_through(config, &lines, ("m", "log_to_metric", 7.0));
    assert_eq!((c.sent_events, c.discarded), (6.0, 1.0), "{m}");
    assert_eq!(
        metric(
            &m,
            "sluice_component_errors_total",
            &[("component_id", "m"), ("error_type", "parser_failed")]
        ),
        Some(1.0)
    );
    drop(stdin);
    assert!(s.wait(Duration::from_secs(30)).success());
    let out: Vec<Json> = read_jsonl(s.dir.path(), "out.")
        .into_iter()
        .map(|mut v| {
            v.as_object_mut().map(|o| o.remove("timestamp"));
            v
        })
        .collect();
    assert_eq!(out, metrics, "{}", s.log_text());
    let log = s.log_text();
    assert!(
        log.contains("not a metric in Vector's shape")
            && log.contains("`gauge.value` is not a number"),
        "{log}"
    );
}

#[test]
fn aggregate_sums_increments_keeps_the_latest_absolute_and_flushes() {
    let lines: Vec<String> = (1..=10)
        .map(|i| {
            format!(
                r#"{{"host":"{}","queue":{i}}}"#,
                if i <= 6 { "a" } else { "b" }
            )
        })
        .collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let pipeline = |interval_ms: u64| {
        format!(
            r#"
[transforms.parsed]
type = "remap"
inputs = ["in"]
source = '. = parse_json!(.message)'

[transforms.m]
type = "log_to_metric"
inputs = ["parsed"]
[[transforms.m.metrics]]
type = "counter"
field = "host"
name = "events"
tags = {{ host = "{{{{ host }}}}" }}
[[transforms.m.metrics]]
type = "gauge"
field = "queue"

[transforms.agg]
type = "aggregate"
inputs = ["m"]
interval_ms = {interval_ms}
"#
        )
    };
    // A long interval: everything goes out at shutdown, folded.
    let (out, log) = run(&pipeline(60_000), &[("o_agg", "agg")], &refs);
    let mut got: Vec<(String, String, f64)> = out[0]
        .iter()
        .map(|m| {
            let v = m["counter"]["value"]
                .as_f64()
                .or(m["gauge"]["value"].as_f64())
                .unwrap_or(-1.0);
            (
                m["name"].as_str().unwrap_or("").to_string(),
                m["tags"]["host"].as_str().unwrap_or("").to_string(),
                v,
            )
        })
        .collect();
    got.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    assert_eq!(
        got,
        [
            ("events".into(), "a".into(), 6.0),
            ("events".into(), "b".into(), 4.0),
            ("queue".into(), "".into(), 10.0)
        ],
        "{log}"
    );

    // A short interval: it goes out on the timer, while the input stays open.
    let (s, stdin, _, _) = pipe_through(
        &format!("[sources.in]\ntype = \"stdin\"\n{}\n[sinks.out]\ntype = \"file\"\ninputs = [\"agg\"]\npath = \"{{DIR}}/agg.jsonl\"\n", pipeline(300)),
        &lines,
        ("parsed", "remap", 10.0),
    );
    assert!(
        wait_for(Duration::from_secs(10), || count_lines(s.dir.path(), "agg")
            == 3),
        "{}",
        s.log_text()
    );
    let m = s.metrics();
    let c = assert_component_metrics(&m, "agg", "transform", "aggregate");
    assert_eq!(
        (c.received_events, c.sent_events),
        (20.0, 3.0),
        "17 folded into 3"
    );
    drop(stdin);
}

#[test]
fn copies_of_a_transform_keep_the_order_of_events() {
    // remap, filter and route run as several copies at once (one per core; four here
    // whatever the machine); what comes out must still be in the order it came in.
    let lines: Vec<String> = (0..50_000).map(|i| i.to_string()).collect();
    let config = r#"
[sources.in]
type = "stdin"

[transforms.num]
type = "remap"
inputs = ["in"]
source = '''
.n = to_int!(.message)
.sha = sha2(string!(.message))
del(.host)
'''

[transforms.odd_out]
type = "filter"
inputs = ["num"]
condition = '.n != 7'

[transforms.split]
type = "route"
inputs = ["odd_out"]
route.low = '(int(.n) ?? 0) < 25000'

[sinks.out]
type = "file"
inputs = ["split.low", "split._unmatched"]
path = "{DIR}/out.jsonl"
"#;
    let mut s = Sluice::start_with(config, |c| {
        c.stdin(std::process::Stdio::piped())
            .env("SLUICE_TRANSFORM_WORKERS", "4");
    });
    s.feed(&lines);
    assert!(
        s.wait(Duration::from_secs(60)).success(),
        "{}",
        s.log_text()
    );
    let out = read_jsonl(s.dir.path(), "out.");
    let got: Vec<i64> = out.iter().filter_map(|e| e["n"].as_i64()).collect();
    let want: Vec<i64> = (0..50_000).filter(|n| *n != 7).collect();
    assert_eq!(got.len(), want.len(), "{}", s.log_text());
    // Both routes feed one sink: each route's events keep their order, and the two
    // interleave only at batch boundaries.
    let low: Vec<i64> = got.iter().copied().filter(|n| *n < 25_000).collect();
    let high: Vec<i64> = got.iter().copied().filter(|n| *n >= 25_000).collect();
    for (got, want) in [(&low, &want[..24_999]), (&high, &want[24_999..])] {
        let first_wrong = got.iter().zip(want).position(|(g, w)| g != w);
        assert_eq!(first_wrong, None, "out of order from there");
        assert_eq!(got.len(), want.len());
    }
}
