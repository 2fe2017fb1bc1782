//! The examples Vector's reference documents for `remap`, `filter` and `route`
//! (`website/cue/reference/remap.cue` and `components/transforms/{filter,route}.cue` at
//! vectordotdev/vector c3445d4), each pasted unchanged into a running sluice and held
//! to the documented output exactly.
//!
//! The documented input event is made as it is documented: a JSON line on stdin parsed
//! into `.` (and, for metric inputs, read back into a metric by `log_to_metric` with
//! `all_metrics`), so nothing stdin adds (`host`, `source_type`) is in the way.

use crate::support;

use serde_json::{json, Value as Json};
use std::time::Duration;
use support::*;

/// How the documented input becomes an event.
#[derive(Clone, Copy)]
enum Input {
    Log,
    Metric,
}

/// Runs the documented component `doc` (TOML, its `inputs` filled in) on `input` events
/// and returns what reaches `reads` (an output of `doc`), in order. Metric outputs
/// lose the `timestamp` sluice gives a metric documented without one.
fn through(doc: &str, reads: &str, kind: Input, input: &[Json]) -> Vec<Json> {
    let (feed, to_metric) = match kind {
        Input::Log => ("input", ""),
        Input::Metric => (
            "input_metric",
            "[transforms.input_metric]\ntype = \"log_to_metric\"\ninputs = [\"input\"]\nall_metrics = true\n",
        ),
    };
    let config = format!(
        r#"
[sources.in]
type = "stdin"

[transforms.input]
type = "remap"
inputs = ["in"]
source = '. = parse_json!(.message)'

{to_metric}
[transforms.doc]
inputs = ["{feed}"]
{doc}

[sinks.out]
type = "file"
inputs = ["{reads}"]
path = "{{DIR}}/out.jsonl"
"#
    );
    let lines: Vec<String> = input.iter().map(Json::to_string).collect();
    let mut s = Sluice::start_with(&config, |c| {
        c.stdin(std::process::Stdio::piped())
            .env("ENV", "production");
    });
    s.feed(&lines);
    assert!(
        s.wait(Duration::from_secs(30)).success(),
        "{}",
        s.log_text()
    );
    read_jsonl(s.dir.path(), "out.")
        .into_iter()
        .map(|mut v| {
            if matches!(kind, Input::Metric) {
                v.as_object_mut().map(|o| o.remove("timestamp"));
            }
            v
        })
        .collect()
}

fn remap(source: &str) -> String {
    format!("type = \"remap\"\nsource = '''\n{source}\n'''\n")
}

const SYSLOG_LINE: &str =
    "<102>1 2020-12-22T15:22:31.111Z vector-user.biz su 2666 ID389 - Something went wrong";

fn syslog_output() -> Json {
    json!({
        "appname": "su",
        "facility": "ntp",
        "hostname": "vector-user.biz",
        "message": "Something went wrong",
        "msgid": "ID389",
        "procid": 2666,
        "severity": "info",
        "timestamp": "2020-12-22T15:22:31.111Z",
        "version": 1
    })
}

#[test]
fn remap_parse_syslog_logs() {
    let out = through(
        &remap(". |= parse_syslog!(.message)"),
        "doc",
        Input::Log,
        &[json!({"message": SYSLOG_LINE})],
    );
    assert_eq!(out, [syslog_output()]);
}

#[test]
fn remap_parse_key_value_logfmt_logs() {
    let out = through(
        &remap(". = parse_key_value!(.message)"),
        "doc",
        Input::Log,
        &[
            json!({"message": "@timestamp=\"Sun Jan 10 16:47:39 EST 2021\" level=info msg=\"Stopping all fetchers\" tag#production=stopping_fetchers id=ConsumerFetcherManager-1382721708341 module=kafka.consumer.ConsumerFetcherManager"}),
        ],
    );
    assert_eq!(
        out,
        [json!({
            "@timestamp": "Sun Jan 10 16:47:39 EST 2021",
            "level": "info",
            "msg": "Stopping all fetchers",
            "tag#production": "stopping_fetchers",
            "id": "ConsumerFetcherManager-1382721708341",
            "module": "kafka.consumer.ConsumerFetcherManager"
        })]
    );
}

#[test]
fn remap_parse_custom_logs_coercing_fields() {
    let source = r#". |= parse_regex!(.message, r'^(?P<timestamp>\d+/\d+/\d+ \d+:\d+:\d+ \+\d+) \[(?P<severity>\w+)\] (?P<pid>\d+)#(?P<tid>\d+):(?: \*(?P<connid>\d+))? (?P<message>.*)$')

# Coerce parsed fields
.timestamp = parse_timestamp(.timestamp, "%Y/%m/%d %H:%M:%S %z") ?? now()
.pid = to_int!(.pid)
.tid = to_int!(.tid)

# Extract structured data
message_parts = split(.message, ", ", limit: 2)
structured = parse_key_value(message_parts[1], key_value_delimiter: ":", field_delimiter: ",") ?? {}
.message = message_parts[0]
. = merge(., structured)"#;
    let out = through(
        &remap(source),
        "doc",
        Input::Log,
        &[
            json!({"message": r#"2021/01/20 06:39:15 +0000 [error] 17755#17755: *3569904 open() "/usr/share/nginx/html/test.php" failed (2: No such file or directory), client: xxx.xxx.xxx.xxx, server: localhost, request: "GET /test.php HTTP/1.1", host: "yyy.yyy.yyy.yyy""#}),
        ],
    );
    assert_eq!(
        out,
        [json!({
            "timestamp": "2021-01-20T06:39:15Z",
            "severity": "error",
            "pid": 17755,
            "tid": 17755,
            "connid": "3569904",
            "message": r#"open() "/usr/share/nginx/html/test.php" failed (2: No such file or directory)"#,
            "client": "xxx.xxx.xxx.xxx",
            "server": "localhost",
            "request": "GET /test.php HTTP/1.1",
            "host": "yyy.yyy.yyy.yyy"
        })]
    );
}

#[test]
fn remap_multiple_parsing_strategies() {
    let source = r#"structured =
  parse_syslog(.message) ??
  parse_common_log(.message) ??
  parse_regex!(.message, r'^(?P<timestamp>\d+/\d+/\d+ \d+:\d+:\d+) \[(?P<severity>\w+)\] (?P<pid>\d+)#(?P<tid>\d+):(?: \*(?P<connid>\d+))? (?P<message>.*)$')
. = merge(., structured)"#;
    let out = through(
        &remap(source),
        "doc",
        Input::Log,
        &[json!({"message": SYSLOG_LINE})],
    );
    assert_eq!(out, [syslog_output()]);
}

#[test]
fn remap_emits_several_logs_from_json_objects_and_non_objects() {
    let out = through(
        &remap(". = parse_json!(.message) # sets `.` to an array of objects"),
        "doc",
        Input::Log,
        &[
            json!({"message": r#"[{"message": "first_log"}, {"message": "second_log"}]"#}),
            // Vector documents this one but skips it in its own doc tests.
            json!({"message": r#"[5, true, "hello"]"#}),
        ],
    );
    assert_eq!(
        out,
        [
            json!({"message": "first_log"}),
            json!({"message": "second_log"}),
            json!({"message": 5}),
            json!({"message": true}),
            json!({"message": "hello"}),
        ]
    );
}

#[test]
fn remap_modifies_metric_tags() {
    let source = r#".tags.environment = get_env_var!("ENV") # add
.tags.hostname = del(.tags.host) # rename
del(.tags.email)"#;
    let out = through(
        &remap(source),
        "doc",
        Input::Metric,
        &[json!({
            "kind": "incremental",
            "name": "user_login_total",
            "counter": {"value": 102.0},
            "tags": {"host": "my.host.com", "instance_id": "abcd1234", "email": "vic@vector.dev"}
        })],
    );
    assert_eq!(
        out,
        [json!({
            "kind": "incremental",
            "name": "user_login_total",
            "counter": {"value": 102.0},
            "tags": {"environment": "production", "hostname": "my.host.com", "instance_id": "abcd1234"}
        })]
    );
}

#[test]
fn remap_compile_errors_are_vectors_diagnostics() {
    // The two documented compile-time errors, with the lines of VRL's diagnostic that
    // do not depend on the program's position in the config.
    for (source, expected) in [
        (
            "upcase(42)",
            &[
                "error[E110]: invalid argument type",
                "this expression resolves to the exact type integer",
                "but the parameter \"value\" expects the exact type string",
                "learn more about error code 110 at https://errors.vrl.dev/110",
            ][..],
        ),
        (
            "structured = parse_key_value(.message)",
            &[
                "error[E103]: unhandled fallible assignment",
                "update the expression to be infallible by adding a `!`: `parse_key_value!(.message)`",
                "structured, err = parse_key_value(.message)",
            ][..],
        ),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vector.toml");
        std::fs::write(
            &path,
            format!(
                "[sources.in]\ntype = \"stdin\"\n[transforms.doc]\ninputs = [\"in\"]\n{}\
                 [sinks.out]\ntype = \"blackhole\"\ninputs = [\"doc\"]\n",
                remap(source)
            ),
        )
        .expect("write");
        let out = std::process::Command::new(bin())
            .args(["validate", "--config"])
            .arg(&path)
            .output()
            .expect("validate");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{err}");
        assert!(err.contains("[transforms.doc] key `source`"), "{err}");
        for e in expected {
            assert!(err.contains(e), "missing {e:?} in:\n{err}");
        }
    }
}

#[test]
fn filter_drops_debug_logs() {
    let out = through(
        "type = \"filter\"\ncondition = '.level != \"debug\"'\n",
        "doc",
        Input::Log,
        &[
            json!({"level": "debug", "message": "I'm a noisy debug log"}),
            json!({"level": "info", "message": "I'm a normal info log"}),
        ],
    );
    assert_eq!(
        out,
        [json!({"level": "info", "message": "I'm a normal info log"})]
    );
}

fn route_by_level() -> &'static str {
    r#"type = "route"
route.debug = '.level == "debug"'
route.info = '.level == "info"'
route.warn = '.level == "warn"'
route.error = '.level == "error"'
"#
}

#[test]
fn route_splits_by_log_level() {
    let input = [
        json!({"level": "info"}),
        json!({"level": "error"}),
        json!({"level": "trace"}),
    ];
    assert_eq!(
        through(route_by_level(), "doc.info", Input::Log, &input),
        [json!({"level": "info"})]
    );
    assert_eq!(
        through(route_by_level(), "doc.error", Input::Log, &input),
        [json!({"level": "error"})]
    );
    assert_eq!(
        through(route_by_level(), "doc._unmatched", Input::Log, &input),
        [json!({"level": "trace"})]
    );
}

#[test]
fn route_splits_by_metric_namespace() {
    let doc = "type = \"route\"\nroute.app = '.namespace == \"app\"'\nroute.host = '.namespace == \"host\"'\n";
    let metric = json!({
        "counter": {"value": 10000.0},
        "kind": "absolute",
        "name": "memory_available_bytes",
        "namespace": "host"
    });
    let input = [metric];
    assert_eq!(through(doc, "doc.host", Input::Metric, &input), input);
    assert_eq!(
        through(doc, "doc.app", Input::Metric, &input),
        Vec::<Json>::new()
    );
}
