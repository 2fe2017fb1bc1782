//! The `http_server` source driven by real clients: `curl` and the `ureq` library post
//! JSON, NDJSON, text and gzip bodies; every error answer is checked with its body; a
//! client faster than a deliberately slow sink gets 503s, and every event answered 200
//! is delivered.

use crate::support;

use serde_json::Value as Json;
use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::*;

/// `curl` with `args`; the status code and the body.
fn curl(args: &[&str]) -> (u16, String) {
    require_tool("curl");
    let out = Command::new("curl")
        .args(["-s", "-S", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

fn config(port: u16, extra: &str) -> String {
    format!(
        r#"
[sources.in]
type = "http_server"
address = "127.0.0.1:{port}"
{extra}

[sinks.out]
inputs = ["in"]
type = "file"
path = "{{DIR}}/out.jsonl"
"#
    )
}

#[test]
fn curl_and_a_library_post_json_ndjson_text_and_gzip() {
    let (pj, pn, pt) = (free_port(), free_port(), free_port());
    let s = Sluice::start(&format!(
        r#"
[sources.json]
type = "http_server"
address = "127.0.0.1:{pj}"
decoding.codec = "json"
headers = ["X-Request-Id", "X-Absent", "X-Trace-*"]
query_parameters = ["app", "tag_*"]
host_key = "client"

[sources.ndjson]
type = "http"
address = "127.0.0.1:{pn}"
path = "/logs"
strict_path = false
decoding.codec = "ndjson"

[sources.text]
type = "http_server"
address = "127.0.0.1:{pt}"
method = "PUT"
response_code = 202

[sinks.out]
inputs = ["json", "ndjson", "text"]
type = "file"
path = "{{DIR}}/out.jsonl"
"#
    ));
    // curl: one object, an array, NDJSON with CRLF and a blank line, text, gzip.
    let (code, _) = curl(&[
        "-H",
        "X-Request-Id: r-1",
        "-H",
        "X-Trace-Span: s-9",
        "--data-binary",
        r#"{"msg":"one","n":1}"#,
        &format!("http://127.0.0.1:{pj}/?app=shop%20front&other=x&tag_env=prod"),
    ]);
    assert_eq!(code, 200);
    let (code, _) = curl(&[
        "--data-binary",
        r#"[{"msg":"two"},{"msg":"three","nested":{"k":[1,2]}}]"#,
        &format!("http://127.0.0.1:{pj}/"),
    ]);
    assert_eq!(code, 200);
    let (code, _) = curl(&[
        "--data-binary",
        "{\"msg\":\"four\"}\r\n\n{\"msg\":\"five\",\"timestamp\":\"kept\"}\n",
        &format!("http://127.0.0.1:{pn}/logs/app1"),
    ]);
    assert_eq!(code, 200);
    let (code, _) = curl(&[
        "-X",
        "PUT",
        "--data-binary",
        "six\nseven\r\n",
        &format!("http://127.0.0.1:{pt}/"),
    ]);
    assert_eq!(code, 202);
    // The library: a gzipped NDJSON body.
    let (code, body) = http_post(
        &format!("http://127.0.0.1:{pn}/logs"),
        &[("Content-Encoding", "gzip")],
        &gzip(b"{\"msg\":\"eight\"}\n{\"msg\":\"nine\"}\n"),
    );
    assert_eq!((code, body.as_str()), (200, ""));

    let dir = s.dir.path().to_path_buf();
    let delivered = wait_for(Duration::from_secs(10), || count_lines(&dir, "out") == 9);
    assert!(delivered, "{:?}", read_jsonl(&dir, "out"));
    let events = read_jsonl(&dir, "out");
    let by_msg = |m: &str| -> &Json {
        events
            .iter()
            .find(|e| e["msg"] == m || e["message"] == m)
            .unwrap_or_else(|| panic!("no event {m} in {events:?}"))
    };
    let one = by_msg("one");
    assert_eq!(one["n"], 1);
    assert_eq!(one["X-Request-Id"], "r-1");
    assert_eq!(one["X-Absent"], Json::Null);
    assert_eq!(one["app"], "shop front");
    assert_eq!(one["x-trace-span"], "s-9");
    assert_eq!(one["tag_env"], "prod");
    assert!(one.get("other").is_none());
    assert_eq!(one["client"], "127.0.0.1");
    assert_eq!(one["path"], "/");
    assert_eq!(one["source_type"], "http_server");
    assert!(one["timestamp"]
        .as_str()
        .is_some_and(|t| t.starts_with("20")));
    assert_eq!(by_msg("three")["nested"]["k"][1], 2);
    assert_eq!(by_msg("four")["path"], "/logs/app1");
    assert_eq!(by_msg("five")["timestamp"], "kept");
    assert_eq!(by_msg("six")["path"], "/");
    assert_eq!(by_msg("seven")["message"], "seven");
    assert_eq!(by_msg("nine")["path"], "/logs");

    let m = s.metrics();
    promtool_check(&m);
    let c = assert_component_metrics(&m, "ndjson", "source", "http");
    assert_eq!(c.received_events, 4.0);
    let ok = |id: &str, status: &str| {
        metric(
            &m,
            "sluice_http_server_requests_total",
            &[("component_id", id), ("status", status)],
        )
    };
    assert_eq!(ok("json", "200"), Some(2.0));
    assert_eq!(ok("text", "202"), Some(1.0));
}

#[test]
fn every_error_answer_names_the_problem_and_ingests_nothing() {
    let port = free_port();
    let s = Sluice::start(&config(
        port,
        r#"decoding.codec = "ndjson"
max_body_bytes = 65536
auth.strategy = "basic"
auth.username = "app"
auth.password = "${HTTP_TEST_PASSWORD:-s3cr3t}"
"#,
    ));
    let url = format!("http://127.0.0.1:{port}/");
    let auth = ["-u", "app:s3cr3t"];
    let run = |extra: &[&str]| {
        let mut a: Vec<&str> = auth.to_vec();
        a.extend_from_slice(extra);
        curl(&a)
    };
    let json = |body: &str| -> Json { serde_json::from_str(body).expect("JSON error body") };

    // 400: the line of NDJSON that is wrong, and nothing of the request kept.
    let (code, body) = run(&[
        "--data-binary",
        "{\"seq\":1}\n{\"seq\":2}\n{\"seq\":3,}\n",
        &url,
    ]);
    assert_eq!(code, 400);
    let b = json(&body);
    assert_eq!(b["code"], 400);
    assert!(
        b["message"].as_str().unwrap().starts_with("line 3, column"),
        "{body}"
    );
    let (code, body) = run(&["--data-binary", "{\"seq\":1}\n[2]\n", &url]);
    assert_eq!(code, 400);
    assert!(body.contains("line 2: expected a JSON object, found an array"));
    // 400: corrupt gzip.
    let (code, body) = run(&[
        "-H",
        "Content-Encoding: gzip",
        "--data-binary",
        "nope",
        &url,
    ]);
    assert_eq!(code, 400);
    assert!(body.contains("gzip"), "{body}");
    // 401, with the challenge, for no and for wrong credentials.
    let (code, body) = curl(&["--data-binary", "{}", &url]);
    assert_eq!(code, 401);
    assert!(json(&body)["message"]
        .as_str()
        .unwrap()
        .contains("credentials"));
    let (code, _) = curl(&["-u", "app:wrong", "--data-binary", "{}", &url]);
    assert_eq!(code, 401);
    let out = Command::new("curl")
        .args(["-s", "-i", "--data-binary", "{}", &url])
        .output()
        .expect("curl");
    let head = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    assert!(
        head.contains("www-authenticate: basic realm=\"sluice\""),
        "{head}"
    );
    // 404 and 405 (with Allow).
    let (code, body) = run(&["--data-binary", "{}", &format!("{url}other")]);
    assert_eq!(
        (code, json(&body)["message"].as_str()),
        (404, Some("no endpoint at /other"))
    );
    let out = Command::new("curl")
        .args(["-s", "-i", "-u", "app:s3cr3t", "-X", "DELETE", &url])
        .output()
        .expect("curl");
    let head = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 405"), "{head}");
    assert!(head.contains("allow: post"), "{head}");
    // 413: a body over max_body_bytes, declared or chunked, and a zip bomb that is
    // small on the wire.
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(70_000));
    let (code, body) = run(&["--data-binary", &big, &url]);
    assert_eq!(code, 413);
    assert!(body.contains("max_body_bytes (65536"), "{body}");
    let (code, _) = run(&[
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &big,
        &url,
    ]);
    assert_eq!(code, 413);
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    for _ in 0..50 {
        enc.write_all(&[b' '; 1 << 20]).expect("gzip");
    }
    let bomb = enc.finish().expect("gzip");
    assert!(bomb.len() < 65536, "the bomb is {} bytes", bomb.len());
    let (code, body) = http_post(
        &url,
        &[
            ("Content-Encoding", "gzip"),
            ("Authorization", "Basic YXBwOnMzY3IzdA=="),
        ],
        &bomb,
    );
    assert_eq!(code, 413, "{body}");
    // 415: an encoding sluice does not speak.
    let (code, body) = run(&["-H", "Content-Encoding: br", "--data-binary", "{}", &url]);
    assert_eq!(code, 415);
    assert!(body.contains("`br`"));
    // A good request still works, and it is the only thing in the sink.
    let (code, _) = run(&["--data-binary", "{\"seq\":\"good\"}", &url]);
    assert_eq!(code, 200);
    let dir = s.dir.path().to_path_buf();
    assert!(wait_for(Duration::from_secs(10), || count_lines(
        &dir, "out"
    ) >= 1));
    std::thread::sleep(Duration::from_millis(300));
    let events = read_jsonl(&dir, "out");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["seq"], "good");

    let m = s.metrics();
    let errors = |t: &str| {
        metric(
            &m,
            "sluice_component_errors_total",
            &[("component_id", "in"), ("error_type", t)],
        )
        .unwrap_or(0.0)
    };
    assert_eq!(errors("decode"), 3.0);
    assert_eq!(errors("too_large"), 3.0);
    assert_eq!(errors("unauthorized"), 3.0);
    assert_eq!(errors("bad_request"), 3.0);
    for (status, n) in [
        ("400", 3.0),
        ("401", 3.0),
        ("404", 1.0),
        ("405", 1.0),
        ("413", 3.0),
        ("415", 1.0),
        ("200", 1.0),
    ] {
        assert_eq!(
            metric(
                &m,
                "sluice_http_server_requests_total",
                &[("status", status)]
            ),
            Some(n),
            "status {status}"
        );
    }
    let log = s.log_text();
    assert!(log.contains("Refused POST / from 127.0.0.1"), "{log}");
    assert!(log.contains("401 Unauthorized"), "{log}");
    // The password never reaches the log.
    assert!(!s.log_text().contains("s3cr3t"));
}

/// Reads the console sink's stdout slowly, like a destination that cannot keep up.
fn slow_reader(child: &mut std::process::Child) -> std::thread::JoinHandle<Vec<String>> {
    let stdout = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        let mut lines = Vec::new();
        let reader = std::io::BufReader::with_capacity(4096, stdout);
        for (i, line) in reader.lines().enumerate() {
            let Ok(line) = line else { break };
            lines.push(line);
            if i % 5 == 0 {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        lines
    })
}

#[test]
fn a_client_faster_than_a_slow_sink_gets_503s_and_every_accepted_event_arrives() {
    let port = free_port();
    let mut s = Sluice::start_with(
        &format!(
            r#"
[sources.in]
type = "http_server"
address = "127.0.0.1:{port}"
decoding.codec = "ndjson"

[sinks.out]
inputs = ["in"]
type = "console"
buffer.max_events = 500
"#
        ),
        |c| {
            c.stdout(Stdio::piped());
        },
    );
    let reader = slow_reader(s.child());
    let url = format!("http://127.0.0.1:{port}/");
    // Four clients, each posting 30 bodies of 100 events as fast as answers come; the
    // sink takes about 250 events a second.
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let url = url.clone();
            std::thread::spawn(move || {
                let (mut accepted, mut refused) = (Vec::new(), 0u32);
                for b in 0..30 {
                    let ids: Vec<String> = (0..100).map(|i| format!("c{c}-b{b}-e{i}")).collect();
                    let body: String = ids
                        .iter()
                        .map(|id| format!("{{\"id\":\"{id}\"}}\n"))
                        .collect();
                    let (code, text) = http_post(&url, &[], body.as_bytes());
                    match code {
                        200 => accepted.extend(ids),
                        503 => {
                            assert!(text.contains("pipeline is full"), "{text}");
                            refused += 1;
                        }
                        other => panic!("unexpected {other}: {text}"),
                    }
                }
                (accepted, refused)
            })
        })
        .collect();
    let mut accepted = Vec::new();
    let mut refused = 0;
    for c in clients {
        let (a, r) = c.join().expect("client");
        accepted.extend(a);
        refused += r;
    }
    assert!(refused > 0, "the slow sink never pushed back");
    assert!(!accepted.is_empty());
    let m = s.metrics();
    let status = s.terminate(Duration::from_secs(60));
    assert!(status.success(), "{}", s.log_text());
    let lines = reader.join().expect("reader");
    let delivered: HashSet<String> = lines
        .iter()
        .map(|l| {
            let v: Json = serde_json::from_str(l).expect("json line");
            v["id"].as_str().expect("id").to_string()
        })
        .collect();
    // Every 200 was delivered, once; nothing from a 503 was.
    assert_eq!(
        lines.len(),
        accepted.len(),
        "duplicates or extras delivered"
    );
    for id in &accepted {
        assert!(
            delivered.contains(id),
            "{id} was answered 200 but never delivered"
        );
    }
    assert_eq!(
        metric(
            &m,
            "sluice_http_server_requests_total",
            &[("status", "503")]
        ),
        Some(refused as f64)
    );
    // Refused events are not received: a retry must not count them twice.
    assert_eq!(
        metric(
            &m,
            "sluice_component_received_events_total",
            &[("component_id", "in")]
        ),
        Some(accepted.len() as f64)
    );
}

#[test]
fn acknowledgements_answer_only_after_delivery() {
    let port = free_port();
    let s = Sluice::start(&config(
        port,
        "decoding.codec = \"json\"\nacknowledgements.enabled = true",
    ));
    let dir = s.dir.path().to_path_buf();
    let url = format!("http://127.0.0.1:{port}/");
    for b in 0..20 {
        let body: Vec<Json> = (0..100)
            .map(|i| serde_json::json!({ "seq": b * 100 + i }))
            .collect();
        let (code, _) = http_post(&url, &[], serde_json::to_string(&body).unwrap().as_bytes());
        assert_eq!(code, 200);
        // With acknowledgements, 200 means the file sink already wrote the events.
        assert_eq!(count_lines(&dir, "out"), (b + 1) * 100);
    }
}

#[test]
fn tls_with_a_certificate_from_openssl() {
    let certs = test_certs();
    let (crt, key) = (&certs.crt, &certs.key);
    let port = free_port();
    let s = Sluice::start(&config(
        port,
        &format!(
            "tls.crt_file = \"{}\"\ntls.key_file = \"{}\"",
            crt.display(),
            key.display()
        ),
    ));
    let (code, _) = curl(&[
        "--cacert",
        certs.ca.to_str().unwrap(),
        "--data-binary",
        "over tls",
        &format!("https://localhost:{port}/"),
    ]);
    assert_eq!(code, 200);
    // Plain HTTP to the TLS port is not served.
    let (code, _) = curl(&["--data-binary", "x", &format!("http://127.0.0.1:{port}/")]);
    assert_eq!(code, 0);
    let sdir = s.dir.path().to_path_buf();
    assert!(wait_for(Duration::from_secs(10), || count_lines(
        &sdir, "out"
    ) == 1));
    assert_eq!(read_jsonl(&sdir, "out")[0]["message"], "over tls");
    let m = s.metrics();
    assert_eq!(
        metric(
            &m,
            "sluice_component_errors_total",
            &[("error_type", "tls")]
        ),
        Some(1.0)
    );
}
