//! VRL's own documented examples as the oracle for `remap`: every example the `vrl`
//! stdlib ships with its functions (`Function::examples()` and the closure examples, the
//! ones VRL's own test harness runs) goes through a running sluice — stdin in, one
//! `route` output and one `remap` per example, file out — and must give the documented
//! result or the documented error, compared the way VRL's harness compares them.
//!
//! Each example's result then crosses sluice once more: a second `remap` downstream
//! reruns the example on the same input and checks that the value that came through
//! sluice's batches and channels is the same value of the same type (`[a] == [b]`
//! compares exactly, so an integer that became a float, a timestamp that became a
//! string or bytes that lost their non-UTF-8 parts would show).

use crate::support;

use serde_json::{json, Value as Json};
use std::collections::BTreeSet;
use std::time::Duration;
use support::*;

/// Functions whose documented result depends on the clock, the host, the environment or
/// randomness: VRL marks their examples non-deterministic and checks only the type of
/// the result, and so does this test (the exact rerun check is skipped for them).
/// `random_int`, `random_float` and `random_bool` are not here: their examples assert a
/// range inside the program and return a deterministic `true`.
const NON_DETERMINISTIC: &[(&str, &str)] = &[
    ("now", "the clock"),
    ("get_hostname", "the host's name"),
    ("get_timezone_name", "the host's local time zone"),
    ("get_env_var", "the process environment"),
    ("random_bytes", "randomness"),
    ("uuid_v4", "randomness"),
    ("uuid_v7", "randomness and the clock"),
];

/// Examples that need a VRL feature sluice leaves out on purpose: the system functions
/// (`get_hostname`, `parse_proto`, grok alias files, …) read the agent's file system,
/// and in vrl 0.38 `encode_proto`/`parse_proto` panic while compiling when their
/// descriptor file is missing, so a typo in a config would crash sluice.
const NOT_LINKED: &[(&str, &str, &str)] = &[(
    "parse_groks",
    "Parse using aliases from file",
    "`alias_sources` reads grok aliases from files: VRL's system functions, not linked",
)];

/// Examples whose exact bytes depend on the version of a C library linked, not on VRL
/// or sluice: for these the result must decode to what the documented result decodes
/// to (the VRL expression turns `{}` into the decoded value).
const SAME_WHEN_DECODED: &[(&str, &str, &str)] = &[(
    "encode_zstd",
    "decode_zstd!(decode_base64!({}))",
    "zstd 1.5.7 (zstd-sys 2.1.3) writes the content size into the frame header, the \
     version VRL's example was made with did not",
)];

/// One example to run.
struct Case {
    function: String,
    title: &'static str,
    source: &'static str,
    input: Json,
    expected: Result<&'static str, &'static str>,
    deterministic: bool,
}

/// Examples VRL itself only compiles (they need the network).
fn skipped_count() -> usize {
    vrl::stdlib::all()
        .iter()
        .flat_map(|f| f.examples().iter())
        .filter(|e| e.skip)
        .count()
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for f in vrl::stdlib::all() {
        let function = f.identifier().to_string();
        let closure_examples = f
            .closure()
            .map(|c| c.inputs.iter().map(|i| i.example).collect::<Vec<_>>())
            .unwrap_or_default();
        for ex in f.examples().iter().chain(closure_examples.iter()) {
            if NOT_LINKED
                .iter()
                .any(|(f, t, _)| *f == function && *t == ex.title)
            {
                continue;
            }
            if ex.skip {
                // VRL compiles these only: they need resources (network) sluice does
                // not link.
                continue;
            }
            let input = match ex.input {
                Some(i) => serde_json::from_str(i).expect("example input is JSON"),
                None => json!({}),
            };
            out.push(Case {
                function: function.clone(),
                title: ex.title,
                source: ex.source,
                input,
                expected: ex.result,
                deterministic: ex.deterministic,
            });
        }
    }
    out
}

/// What runs the example: the input becomes the event, the example's value lands in
/// `.result` (the program may have made `.` an array). Its length shifts the byte offsets in VRL's error messages.
const PREFIX: &str = "%id = .id\n%input = .input\n. = object!(.input)\nsluice_result = {\n";

/// The expected value as VRL's harness reads it: `r'…'`, `t'…'` and `s'…'` literals,
/// otherwise JSON (and the text itself when that does not parse).
fn expected_json(want: &str) -> Json {
    let quoted = |p: &str| {
        want.strip_prefix(p)
            .and_then(|w| w.strip_suffix('\''))
            .map(str::to_owned)
    };
    if let Some(r) = quoted("r'") {
        return Json::String(r.replace("\\'", "'"));
    }
    if let Some(t) = quoted("t'") {
        if let Ok(dt) = t.parse::<chrono::DateTime<chrono::Utc>>() {
            return Json::String(dt.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
        }
    }
    if let Some(s) = quoted("s'") {
        return Json::String(s);
    }
    serde_json::from_str(want.trim()).unwrap_or_else(|_| Json::String(want.to_owned()))
}

/// VRL's error text for the example, its `at (a:b)` spans moved by the prefix.
fn shifted_error(want: &str) -> String {
    let re = regex::Regex::new(r"at \((\d+):(\d+)\)").expect("regex");
    re.replace_all(want.trim(), |c: &regex::Captures| {
        let a: usize = c[1].parse().unwrap_or(0);
        let b: usize = c[2].parse().unwrap_or(0);
        format!("at ({}:{})", a + PREFIX.len(), b + PREFIX.len())
    })
    .into_owned()
}

/// Same JSON kind: VRL's type-only match for non-deterministic examples.
fn same_kind(a: &Json, b: &Json) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

#[test]
fn every_documented_vrl_example_gives_its_documented_result_through_sluice() {
    let cases = cases();
    assert!(cases.len() > 300, "only {} examples found", cases.len());

    // The non-deterministic examples are exactly those of the listed functions: a new
    // vrl version that adds one makes this test say so.
    let flagged: BTreeSet<&str> = cases
        .iter()
        .filter(|c| !c.deterministic)
        .map(|c| c.function.as_str())
        .collect();
    let listed: BTreeSet<&str> = NON_DETERMINISTIC.iter().map(|(f, _)| *f).collect();
    assert!(
        flagged.is_subset(&listed),
        "unlisted non-deterministic functions: {:?}",
        flagged.difference(&listed).collect::<Vec<_>>()
    );

    let mut config = json!({
        "sources": { "in": { "type": "stdin", "decoding": { "codec": "json" } } },
        "transforms": {},
        "sinks": {},
    });
    let mut routes = serde_json::Map::new();
    let mut checked = Vec::new();
    let transforms = config["transforms"].as_object_mut().expect("object");
    for (i, c) in cases.iter().enumerate() {
        routes.insert(format!("ex{i}"), json!(format!(".id == {i}")));
        transforms.insert(
            format!("run{i}"),
            json!({
                "type": "remap",
                "inputs": [format!("pick.ex{i}")],
                "source": format!("{PREFIX}{}\n}}\n. = {{\"result\": sluice_result}}\n", c.source),
                "drop_on_error": true,
                "reroute_dropped": true,
            }),
        );
        // Downstream of sluice's channels: the same example again on the same input.
        transforms.insert(
            format!("check{i}"),
            json!({
                "type": "remap",
                "inputs": [format!("run{i}")],
                "source": format!(
                    "crossed = .result\nrerun = {{\n. = object!(%input)\n{}\n}}\n\
                     . = {{\"id\": %id, \"result\": crossed, \"exact\": [crossed] == [rerun]}}\n",
                    c.source
                ),
            }),
        );
        if let Some((_, decode, _)) = SAME_WHEN_DECODED.iter().find(|(f, ..)| *f == c.function) {
            let documented = match c.expected {
                Ok(want) => expected_json(want).to_string(),
                Err(_) => "null".into(),
            };
            transforms[&format!("check{i}")]["source"] = json!(format!(
                ". = {{\"id\": %id, \"result\": {documented}, \"exact\": {} == {}}}\n",
                decode.replace("{}", ".result"),
                decode.replace("{}", &documented),
            ));
        }
        checked.push(format!("check{i}"));
    }
    let dropped: Vec<String> = (0..cases.len())
        .map(|i| format!("run{i}.dropped"))
        .collect();
    transforms.insert(
        "pick".into(),
        json!({"type": "route", "inputs": ["in"], "route": routes}),
    );
    transforms.insert(
        "failed".into(),
        json!({
            "type": "remap",
            "inputs": dropped,
            "source": ". = {\"id\": .id, \"reason\": .metadata.dropped.reason, \"error\": .metadata.dropped.message}",
        }),
    );
    checked.push("failed".into());

    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.jsonl");
    config["sinks"]["out"] = json!({
        "type": "file",
        "inputs": checked,
        "path": out.display().to_string(),
        "encoding": { "codec": "json" },
    });
    let file = dir.path().join("vrl_examples.json");
    // As in Vector, the config's text is interpolated from the environment first, so a
    // program's own `$` is written `$$`.
    let text = serde_json::to_string_pretty(&config).expect("json");
    std::fs::write(&file, text.replace('$', "$$")).expect("write");

    let lines: Vec<String> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| json!({"id": i, "input": c.input}).to_string())
        .collect();
    let mut s = Sluice::start_files(&[&file], |cmd, _| {
        cmd.stdin(std::process::Stdio::piped());
    });
    s.feed(&lines);
    assert!(
        s.wait(Duration::from_secs(120)).success(),
        "{}",
        s.log_text()
    );

    let text = std::fs::read_to_string(&out).expect("output");
    let mut results: Vec<Option<Json>> = vec![None; cases.len()];
    for line in text.lines() {
        let v: Json = serde_json::from_str(line).expect("JSON line");
        let id = v["id"].as_u64().expect("id") as usize;
        assert!(results[id].is_none(), "example {id} came out twice");
        results[id] = Some(v);
    }

    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let name = format!("{} / {:?}", c.function, c.title);
        let Some(got) = &results[i] else {
            failures.push(format!("{name}: no event came out"));
            continue;
        };
        match (c.expected, got.get("error")) {
            (Ok(want), None) => {
                let want = expected_json(want);
                let result = got.get("result").cloned().unwrap_or(Json::Null);
                if c.deterministic {
                    if result != want {
                        failures.push(format!("{name}: got {result}, documented {want}"));
                    } else if got["exact"] != json!(true) {
                        failures.push(format!(
                            "{name}: the value changed crossing sluice: {result}"
                        ));
                    }
                } else if !same_kind(&result, &want) {
                    failures.push(format!("{name}: got {result}, documented kind of {want}"));
                }
            }
            (Err(want), Some(error)) => {
                let want = shifted_error(want);
                if error != &json!(want) {
                    failures.push(format!("{name}: error {error}, documented {want:?}"));
                }
            }
            (Ok(want), Some(error)) => {
                failures.push(format!("{name}: failed with {error}, documented {want}"))
            }
            (Err(want), None) => failures.push(format!(
                "{name}: gave {}, documented the error {want:?}",
                got["result"]
            )),
        }
    }
    let ok = cases.len() - failures.len();
    eprintln!(
        "{ok} of {} examples as documented: {} documented errors, {} checked by type only, {} \
         left out ({} not linked, {} need the network)",
        cases.len(),
        cases.iter().filter(|c| c.expected.is_err()).count(),
        cases.iter().filter(|c| !c.deterministic).count(),
        NOT_LINKED.len() + skipped_count(),
        NOT_LINKED.len(),
        skipped_count(),
    );
    assert!(
        failures.is_empty(),
        "{ok} of {} examples as documented; {} not:\n{}",
        cases.len(),
        failures.len(),
        failures.join("\n")
    );
}
