//! Vector configurations run unchanged (`tests/vector/`, YAML, TOML and JSON): each is
//! validated, run with real traffic over real sockets, and its output compared with
//! what Vector's reference documents for the options it uses: request shape (method,
//! headers, basic auth, JSON array wrapped in `payload_prefix`/`payload_suffix`, NDJSON
//! without a last newline), field selection, timestamp formats, framing, and
//! acknowledgements turned on at the top level.

use crate::support;

use serde_json::Value as Json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::receiver::{Answer, Receiver};
use support::*;

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vector")
        .join(name)
}

/// `sluice validate` on a corpus file with `env`: exit code, stdout, stderr.
fn validate(name: &str, env: &[(&str, String)]) -> (i32, String, String) {
    let out = Command::new(bin())
        .arg("validate")
        .arg("--config")
        .arg(corpus(name))
        .env("OUT_DIR", std::env::temp_dir())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run sluice validate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn start(name: &str, env: &[(&str, String)]) -> Sluice {
    let (code, _, err) = validate(name, env);
    assert_eq!(code, 0, "{name} does not validate:\n{err}");
    Sluice::start_files(&[&corpus(name)], |c, dir| {
        c.env("OUT_DIR", dir);
        for (k, v) in env {
            c.env(k, v);
        }
    })
}

#[test]
fn yaml_webhook_wraps_the_array_picks_fields_and_answers_after_delivery() {
    let receiver = Receiver::start();
    let port = free_port();
    let env = [
        ("INGEST_PORT", port.to_string()),
        ("RECEIVER_URL", receiver.url()),
        ("WEBHOOK_PASSWORD", "s3cret".to_string()),
    ];
    let s = start("http_webhook.yaml", &env);
    let url = format!("http://127.0.0.1:{port}/");
    // NDJSON with `codec: json`, as Vector's default newline framing reads it.
    let body = r#"{"message":"one","http":{"status":200,"bytes":10},"secret":"x"}
{"message":"two","http":{"status":500,"bytes":20},"secret":"y"}
{"message":"three","http":{"status":404},"secret":"z"}
"#;
    let (code, answer) = http_post(
        &url,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(code, 200, "{answer}\n{}", s.log_text());
    // Acknowledgements: the answer came after the webhook had the events.
    let requests = receiver.requests();
    assert_eq!(
        requests.len(),
        1,
        "one batch of three (batch.max_events: 3)"
    );
    let r = &requests[0];
    assert_eq!(r.method, "PUT");
    assert_eq!(r.path, "/events");
    assert_eq!(r.headers["x-team"], "payments");
    assert_eq!(r.headers["content-type"], "application/json");
    // base64("shipper:s3cret")
    assert_eq!(r.headers["authorization"], "Basic c2hpcHBlcjpzM2NyZXQ=");
    let sent: Json = serde_json::from_slice(&r.body).expect("the body is one JSON value");
    let events = sent["events"]
        .as_array()
        .expect("payload_prefix wraps the array");
    assert_eq!(events.len(), 3);
    for (e, (msg, status)) in events
        .iter()
        .zip([("one", 200), ("two", 500), ("three", 404)])
    {
        let keys: Vec<&str> = e
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["http", "message", "timestamp"], "only_fields: {e}");
        assert_eq!(e["message"], msg);
        assert_eq!(e["http"], serde_json::json!({ "status": status }));
        let ts = e["timestamp"]
            .as_i64()
            .expect("timestamp_format: unix is an integer");
        let now = chrono::Utc::now().timestamp();
        assert!(
            (now - 60..=now).contains(&ts),
            "{ts} is not a recent Unix time"
        );
    }

    // A webhook that refuses the events: with acknowledgements the client hears it.
    receiver.script([Answer::Status(400, Vec::new(), "bad".into())]);
    let (code, _) = http_post(&url, &[], br#"{"message":"refused"}"#);
    assert_eq!(
        code, 400,
        "acknowledgements carry the sink's refusal back to the client"
    );
}

#[test]
fn toml_character_framing_in_ndjson_and_files_out() {
    let receiver = Receiver::start();
    let port = free_port();
    let env = [
        ("INGEST_PORT", port.to_string()),
        ("RECEIVER_URL", receiver.url()),
    ];
    let s = start("ndjson_and_files.toml", &env);
    let (code, answer) = http_post(
        &format!("http://127.0.0.1:{port}/"),
        &[],
        b"first entry|second entry|third\tentry",
    );
    assert_eq!(code, 200, "{answer}");
    assert!(
        wait_for(Duration::from_secs(20), || {
            sent_events(&s, "ndjson") >= 3.0
                && sent_events(&s, "archive") >= 3.0
                && sent_events(&s, "raw") >= 3.0
        }),
        "not everything was sent; log:\n{}",
        s.log_text()
    );
    let messages = ["first entry", "second entry", "third\tentry"];

    // NDJSON: one object per line, no newline after the last (as Vector writes it).
    let r = &receiver.requests()[0];
    assert_eq!(r.headers["content-type"], "application/x-ndjson");
    let text = String::from_utf8_lossy(&r.body);
    assert!(!text.ends_with('\n'), "{text:?}");
    let lines: Vec<Json> = text
        .split('\n')
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 3);
    for (l, m) in lines.iter().zip(messages) {
        assert_eq!(l["message"], m);
        assert!(
            l.get("source_type").is_none() && l.get("path").is_none(),
            "except_fields: {l}"
        );
        assert!(l["timestamp"].is_string(), "rfc3339 by default: {l}");
    }

    // JSON lines with epoch milliseconds.
    let archived = read_jsonl(&s.path(""), "archive-");
    assert_eq!(archived.len(), 3);
    for (a, m) in archived.iter().zip(messages) {
        assert_eq!(a["message"], m);
        assert_eq!(a["source_type"], "http_server");
        let ms = a["timestamp"].as_i64().expect("unix_ms is an integer");
        assert!(ms > 1_700_000_000_000, "{ms} is not in milliseconds");
    }

    // raw_message with a tab after each event: exactly the text that came in.
    let raw = std::fs::read(s.path("raw.txt")).expect("raw.txt");
    assert_eq!(raw, b"first entry\tsecond entry\tthird\tentry\t");
}

#[test]
fn json_pretty_file_from_demo_logs() {
    let mut s = start("demo_pretty.json", &[]);
    // demo_logs with a count finishes, and sluice with it.
    assert!(
        s.wait(Duration::from_secs(20)).success(),
        "{}",
        s.log_text()
    );
    let text = std::fs::read_to_string(s.path("pretty.json")).expect("pretty.json");
    // Pretty JSON, one object after another: read them back as a stream.
    let objects: Vec<Json> = serde_json::Deserializer::from_str(&text)
        .into_iter::<Json>()
        .collect::<Result<_, _>>()
        .expect("a stream of JSON objects");
    assert_eq!(objects.len(), 4);
    for o in &objects {
        assert_eq!(
            text.matches("\n  \"message\": ").count(),
            4,
            "two-space indent, `key: value`"
        );
        assert!(o.get("timestamp").is_none(), "except_fields: {o}");
        let m = o["message"].as_str().unwrap_or_default();
        assert!(m.ends_with("alpha") || m.ends_with("beta"), "{m}");
    }
}

#[test]
fn deprecated_options_work_and_validate_warns() {
    let receiver = Receiver::start();
    receiver.set_default(Answer::Status(503, Vec::new(), "down".into()));
    let port = free_port();
    let env = [
        ("INGEST_PORT", port.to_string()),
        ("RECEIVER_URL", receiver.url()),
    ];
    let (code, out, err) = validate("deprecated.toml", &env);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Config OK"), "{out}");
    let file = corpus("deprecated.toml").display().to_string();
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("warning:")).collect();
    assert_eq!(warnings.len(), 2, "{err}");
    assert!(
        warnings[0].contains(&format!("{file}: [sources.ingest] key `acknowledgements`"))
            && warnings[0].contains("deprecated"),
        "{}",
        warnings[0]
    );
    assert!(
        warnings[1].contains(&format!("{file}: [sinks.webhook] key `headers`"))
            && warnings[1].contains("request.headers"),
        "{}",
        warnings[1]
    );

    let s = start("deprecated.toml", &env);
    assert!(
        s.log_text().contains("key `headers`"),
        "run logs the warning too:\n{}",
        s.log_text()
    );
    // The old spellings still act: the header is sent, and the source-level
    // acknowledgements hold the answer until the sink has given up on a 503... which it
    // never does (retries are unlimited), so let one 503 pass and then accept.
    receiver.script([Answer::Status(503, Vec::new(), "down".into())]);
    receiver.set_default(Answer::ok());
    let (code, _) = http_post(&format!("http://127.0.0.1:{port}/"), &[], b"hello");
    assert_eq!(code, 200);
    let requests = receiver.requests();
    assert!(requests.len() >= 2, "the 503 was retried before the answer");
    assert!(requests
        .iter()
        .all(|r| r.headers.get("x-old-style").map(String::as_str) == Some("yes")));
}

#[test]
fn yaml_file_source_offsets_own_data_dir_and_start_at_beginning() {
    let logs = tempfile::tempdir().expect("tempdir");
    let lines = ["first line", "a second, longer line", "third"];
    std::fs::write(
        logs.path().join("app.log"),
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .expect("write log");
    let state = tempfile::tempdir().expect("tempdir");
    let run = |n: u32, ignore: &str| {
        let env = [
            ("LOG_DIR", logs.path().display().to_string()),
            ("RUN", n.to_string()),
            ("IGNORE_CHECKPOINTS", ignore.to_string()),
        ];
        let (code, _, err) = validate("file_tail.yaml", &env);
        assert_eq!(code, 0, "{err}");
        assert!(
            err.contains("key `start_at_beginning`") && err.contains("deprecated"),
            "{err}"
        );
        let mut s = Sluice::start_files(&[&corpus("file_tail.yaml")], |c, _| {
            c.env("OUT_DIR", state.path());
            for (k, v) in &env {
                c.env(k, v);
            }
        });
        // Let the source read and checkpoint, then stop.
        std::thread::sleep(Duration::from_secs(3));
        assert!(
            s.terminate(Duration::from_secs(30)).success(),
            "{}",
            s.log_text()
        );
        read_jsonl(state.path(), &format!("out-{n}"))
    };

    let first = run(1, "true");
    let got: Vec<(&str, i64)> = first
        .iter()
        .map(|e| {
            (
                e["message"].as_str().unwrap_or(""),
                e["offset"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    // Each offset is where the line starts in the file.
    assert_eq!(
        got,
        [
            ("first line", 0),
            ("a second, longer line", 11),
            ("third", 33)
        ]
    );
    assert!(
        state
            .path()
            .join("state/app_logs/checkpoints.json")
            .is_file(),
        "checkpoints live under the source's own data_dir"
    );
    // start_at_beginning = true ignores checkpoints (Vector's reconciliation): read again.
    assert_eq!(run(2, "true").len(), 3);
    // ignore_checkpoints = false wins over it: nothing new to read.
    assert_eq!(run(3, "false").len(), 0);
}

#[test]
fn mutual_tls_between_two_hops_with_vectors_tls_options() {
    let certs = test_certs();
    let port = free_port();
    let path = |p: &Path| p.display().to_string();
    let common = [
        ("INGEST_PORT", port.to_string()),
        ("CA_FILE", path(&certs.ca)),
        ("SERVER_CRT", path(&certs.crt)),
        ("SERVER_KEY", path(&certs.key)),
        ("CLIENT_CRT", path(&certs.client_crt)),
        ("CLIENT_KEY", path(&certs.client_key)),
    ];
    let receiver = start("mtls_receiver.yaml", &common);
    let received = || read_jsonl(&receiver.path(""), "received");

    // Without a client certificate the server refuses the handshake.
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(&certs.ca)
        .args(["--data-binary", "{}", &format!("https://localhost:{port}/")])
        .output()
        .expect("curl");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "000",
        "no answer without a client cert"
    );

    // Forward one event through an agent with `file` and `env` as given; the status
    // its own client hears (acknowledged delivery).
    let forward =
        |file: &str, host: &str, extra: &[(&str, &str)], message: &str| -> (u16, String) {
            let sender_port = free_port();
            let mut env: Vec<(&str, String)> = common.to_vec();
            env.push(("SENDER_PORT", sender_port.to_string()));
            env.push(("TARGET_HOST", host.to_string()));
            env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
            let s = start(file, &env);
            let (code, _) = http_post(
                &format!("http://127.0.0.1:{sender_port}/"),
                &[],
                message.as_bytes(),
            );
            (code, s.log_text())
        };

    let (code, log) = forward("tls_forwarder.toml", "localhost", &[], "by name");
    assert_eq!(code, 200, "{log}");
    // 127.0.0.2 reaches the same server, but the certificate names 127.0.0.1.
    let (code, log) = forward("tls_forwarder.toml", "127.0.0.2", &[], "wrong name");
    assert_eq!(code, 500, "the name check refuses it\n{log}");
    assert!(log.contains("certificate not valid for name"), "{log}");
    let (code, log) = forward(
        "tls_forwarder.toml",
        "127.0.0.2",
        &[("VERIFY_HOSTNAME", "false")],
        "name not checked",
    );
    assert_eq!(code, 200, "{log}");
    assert!(
        log.contains("key `tls.verify_hostname`"),
        "a warning at start\n{log}"
    );
    let (code, log) = forward(
        "tls_forwarder_lab.yaml",
        "localhost",
        &[],
        "chain not checked",
    );
    assert_eq!(code, 200, "{log}");
    assert!(log.contains("key `tls.verify_certificate`"), "{log}");

    let messages: Vec<String> = received()
        .iter()
        .map(|e| e["message"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        messages,
        ["by name", "name not checked", "chain not checked"]
    );
}

#[test]
fn syslog_tcp_permit_origin_keepalive_and_host_key() {
    require_tool("logger");
    let port = free_port();
    let s = start("syslog_tcp.toml", &[("SYSLOG_PORT", port.to_string())]);
    // From 127.0.0.1: allowed.
    let status = Command::new("logger")
        .args([
            "-T",
            "-n",
            "127.0.0.1",
            "-P",
            &port.to_string(),
            "--rfc5424",
        ])
        .args(["-t", "app", "allowed line"])
        .status()
        .expect("logger");
    assert!(status.success());
    // From 127.0.0.2 (still loopback, outside the permitted /32): closed unread.
    let socket = tokio_free_connect_from("127.0.0.2", port);
    let _ = (&socket).write_all(b"<13>1 - denied app - - - refused line\n");
    drop(socket);
    // A connection that stays open shows its keepalive timer.
    let idle = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let sdir = s.path("");
    assert!(
        wait_for(Duration::from_secs(10), || count_lines(&sdir, "syslog")
            >= 1),
        "{}",
        s.log_text()
    );
    let m = s.metrics();
    assert!(
        wait_for(Duration::from_secs(10), || errors_of(
            &s.metrics(),
            "syslog_in",
            "origin_refused"
        ) == Some(1.0)),
        "{m}"
    );
    // `timer:(keepalive,44sec,0)`: probes armed, due within the configured 45 s (the
    // kernel's own default is two hours, and off unless asked for). The kernel shows
    // the connection before sluice has accepted it, so look until it has.
    let mut ss = String::new();
    let armed = wait_for(Duration::from_secs(10), || {
        let out = Command::new("ss")
            .args(["-tnoH", "state", "established", &format!("sport = :{port}")])
            .output()
            .expect("ss");
        ss = String::from_utf8_lossy(&out.stdout).into_owned();
        let secs: Option<u64> = ss
            .split("timer:(keepalive,")
            .nth(1)
            .and_then(|t| t.split("sec").next().and_then(|n| n.parse().ok()));
        secs.is_some_and(|s| s <= 45)
    });
    assert!(armed, "SO_KEEPALIVE with the configured idle time:\n{ss}");
    drop(idle);
    let events = read_jsonl(&sdir, "syslog");
    assert_eq!(
        events.len(),
        1,
        "only the permitted client's line: {events:?}"
    );
    assert_eq!(events[0]["message"], "allowed line");
    // logger writes this machine's name as the message's host.
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    assert_eq!(
        events[0]["origin_host"],
        hostname.trim(),
        "host_key renames `host`"
    );
    assert!(events[0].get("host").is_none());
}

/// A TCP connection to `127.0.0.1:port` from the local address `from`.
fn tokio_free_connect_from(from: &str, port: u16) -> std::net::TcpStream {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    let local: std::net::SocketAddr = format!("{from}:0").parse().expect("addr");
    socket.bind(&local.into()).expect("bind");
    let remote: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    socket.connect(&remote.into()).expect("connect");
    socket.into()
}

#[test]
fn http_server_recycles_connections_past_their_age() {
    use std::io::{BufRead, BufReader, Read};
    let port = free_port();
    let s = start("http_keepalive.yaml", &[("INGEST_PORT", port.to_string())]);
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    // One request on the connection: the answer's headers, lowercased, and whether the
    // server then closed it.
    let mut ask = |body: &str| -> Vec<String> {
        write!(
            conn,
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .expect("write");
        let mut headers = Vec::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("read");
            let line = line.trim_end().to_ascii_lowercase();
            if line.is_empty() {
                break;
            }
            if let Some(n) = line.strip_prefix("content-length: ") {
                length = n.parse().unwrap_or(0);
            }
            headers.push(line);
        }
        let mut rest = vec![0; length];
        reader.read_exact(&mut rest).expect("body");
        headers
    };
    let first = ask("young");
    assert!(first[0].contains("200"), "{first:?}");
    assert!(
        !first.contains(&"connection: close".to_string()),
        "{first:?}"
    );
    std::thread::sleep(Duration::from_millis(1200));
    let second = ask("old");
    assert!(second[0].contains("200"), "{second:?}");
    assert!(
        second.contains(&"connection: close".to_string()),
        "{second:?}"
    );
    let mut byte = [0u8; 1];
    assert_eq!(
        reader.read(&mut byte).unwrap_or(0),
        0,
        "the server closed it"
    );
    assert!(wait_for(Duration::from_secs(10), || count_lines(
        &s.path(""),
        "out"
    ) == 2));
}

#[test]
fn http_sinks_go_through_a_real_proxy_with_tunnels_bypasses_and_the_environment() {
    let proxy = Tinyproxy::start();
    let receiver = Receiver::start();
    let certs = test_certs();
    // The TLS destination: another sluice serving HTTPS.
    let tls_port = free_port();
    let tls_target = Sluice::start(&format!(
        r#"
[sources.tls_in]
type = "http_server"
address = "127.0.0.1:{tls_port}"
decoding.codec = "json"
tls.enabled = true
tls.crt_file = "{}"
tls.key_file = "{}"
[sinks.out]
type = "file"
inputs = ["tls_in"]
path = "{{DIR}}/tls.jsonl"
"#,
        certs.crt.display(),
        certs.key.display()
    ));
    let ingest = free_port();
    let env = [
        ("PROXY_PORT", proxy.port.to_string()),
        ("INGEST_PORT", ingest.to_string()),
        ("RECEIVER_PORT", receiver.addr.port().to_string()),
        ("TLS_PORT", tls_port.to_string()),
        ("CA_FILE", certs.ca.display().to_string()),
    ];
    let s = start("proxy.yaml", &env);
    let (code, _) = http_post(
        &format!("http://127.0.0.1:{ingest}/"),
        &[],
        b"through the proxy",
    );
    assert_eq!(code, 200, "{}\n{}", s.log_text(), proxy.log_text());
    let log = proxy.log_text();
    // Plain HTTP in absolute form, HTTPS in a CONNECT tunnel, the bypass direct.
    assert!(log.contains("/via-proxy"), "{log}");
    assert!(
        log.contains(&format!("CONNECT localhost:{tls_port}")),
        "{log}"
    );
    assert!(!log.contains("/internal"), "{log}");
    let paths: Vec<String> = receiver.requests().iter().map(|r| r.path.clone()).collect();
    assert!(paths.contains(&"/via-proxy".to_string()) && paths.contains(&"/internal".to_string()));
    // The target answered before its own file sink wrote the line.
    assert!(wait_for(Duration::from_secs(10), || count_lines(
        &tls_target.path(""),
        "tls"
    ) == 1));
    assert_eq!(
        read_jsonl(&tls_target.path(""), "tls")[0]["message"],
        "through the proxy"
    );
    drop(s);

    let ingest = free_port();
    let env = [
        ("INGEST_PORT", ingest.to_string()),
        ("RECEIVER_PORT", receiver.addr.port().to_string()),
    ];
    let (code, _, err) = validate("proxy_env.toml", &env);
    assert_eq!(code, 0, "{err}");
    let s = Sluice::start_files(&[&corpus("proxy_env.toml")], |c, _| {
        c.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
        c.env(
            "HTTP_PROXY",
            format!("http://user:pass@127.0.0.1:{}", proxy.port),
        );
    });
    let (code, _) = http_post(&format!("http://127.0.0.1:{ingest}/"), &[], b"env");
    assert_eq!(code, 200, "{}", s.log_text());
    let log = proxy.log_text();
    assert!(log.contains("/from-env"), "{log}");
    assert!(!log.contains("/direct"), "{log}");
}

#[test]
fn file_spool_oldest_first_and_removed_only_after_delivery() {
    let spool = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, n: usize| {
        let text: String = (0..n)
            .map(|i| format!("{name} line {i:05} {}\n", "x".repeat(60)))
            .collect();
        std::fs::write(spool.path().join(format!("{name}.log")), text).expect("write");
    };
    write("old", 3000);
    std::thread::sleep(Duration::from_millis(50));
    write("new", 3000);
    let receiver = Receiver::start();
    // The destination is down at first: nothing is delivered, so nothing may be removed.
    receiver.set_default(Answer::Status(503, Vec::new(), "down".into()));
    let env = [
        ("SPOOL_DIR", spool.path().display().to_string()),
        ("RECEIVER_URL", receiver.url()),
    ];
    let s = start("file_spool.toml", &env);
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        spool.path().join("old.log").exists() && spool.path().join("new.log").exists(),
        "files were removed before their lines were delivered"
    );
    receiver.set_default(Answer::ok());
    let gone = wait_for(Duration::from_secs(30), || {
        !spool.path().join("old.log").exists() && !spool.path().join("new.log").exists()
    });
    assert!(gone, "{}", s.log_text());
    assert_eq!(
        metric(
            &s.metrics(),
            "sluice_files_removed_total",
            &[("component_id", "spool")]
        ),
        Some(2.0)
    );
    let lines: Vec<String> = receiver
        .requests()
        .iter()
        .filter(|r| r.answered == 200)
        .flat_map(|r| {
            String::from_utf8_lossy(&r.body)
                .lines()
                .map(|l| {
                    let v: Json = serde_json::from_str(l).expect("json line");
                    v["message"].as_str().unwrap_or("").to_string()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(lines.len(), 6000);
    // Oldest first: every line of old.log before any of new.log.
    let first_new = lines.iter().position(|l| l.starts_with("new")).unwrap_or(0);
    assert_eq!(first_new, 3000, "old.log was drained first");
    assert!(lines[..3000].iter().all(|l| l.starts_with("old")));
}

#[test]
fn log_schema_names_the_standard_fields_everywhere() {
    let logs = tempfile::tempdir().expect("tempdir");
    std::fs::write(logs.path().join("app.log"), "from a file\n").expect("write");
    let port = free_port();
    let env = [
        ("INGEST_PORT", port.to_string()),
        ("LOG_DIR", logs.path().display().to_string()),
    ];
    let s = start("log_schema.yaml", &env);
    let (code, _) = http_post(&format!("http://127.0.0.1:{port}/"), &[], b"over http");
    assert_eq!(code, 200);
    let dir = s.path("");
    assert!(
        wait_for(Duration::from_secs(10), || count_lines(&dir, "structured-")
            == 2
            && count_lines(&dir, "text") == 2),
        "{}",
        s.log_text()
    );
    let year = chrono::Utc::now().format("%Y").to_string();
    let mut events = read_jsonl(&dir, &format!("structured-{year}"));
    events.sort_by_key(|e| e["kind"].as_str().unwrap_or("").to_string());
    for (e, (kind, msg)) in events
        .iter()
        .zip([("file", "from a file"), ("http_server", "over http")])
    {
        assert_eq!(e["kind"], kind, "{e}");
        assert_eq!(e["msg"], msg, "{e}");
        assert!(e["@timestamp"].is_string(), "{e}");
        assert!(e["origin"].is_string(), "{e}");
        for default in ["message", "timestamp", "host", "source_type"] {
            assert!(e.get(default).is_none(), "{default} in {e}");
        }
    }
    // The text codec writes the schema's message field.
    let mut text: Vec<String> = std::fs::read_to_string(dir.join("text.log"))
        .expect("text.log")
        .lines()
        .map(str::to_string)
        .collect();
    text.sort();
    assert_eq!(text, ["from a file", "over http"]);
}

#[test]
fn timezone_global_and_per_sink_name_the_files() {
    let port = free_port();
    let s = start("timezone.toml", &[("INGEST_PORT", port.to_string())]);
    let now = chrono::Utc::now();
    let (code, _) = http_post(&format!("http://127.0.0.1:{port}/"), &[], b"hello");
    assert_eq!(code, 200);
    let dir = s.path("");
    assert!(wait_for(Duration::from_secs(10), || count_lines(
        &dir, "daily-"
    ) == 1
        && count_lines(&dir, "hourly-") == 1));
    let names: Vec<String> = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    // The event's time lies between `now` and `later` (an hour may turn in between).
    let later = chrono::Utc::now();
    let named = |tz: chrono_tz::Tz, f: &str| {
        [now, later].map(|t| t.with_timezone(&tz).format(f).to_string())
    };
    let tokyo = named(chrono_tz::Asia::Tokyo, "daily-%Y-%m-%d-%H.log");
    let ny = named(chrono_tz::America::New_York, "hourly-%H.log");
    assert!(
        tokyo.iter().any(|n| names.contains(n)),
        "{tokyo:?} not in {names:?}"
    );
    assert!(
        ny.iter().any(|n| names.contains(n)),
        "{ny:?} not in {names:?}"
    );
}

#[test]
fn sample_takes_each_events_own_rate_from_a_field() {
    let port = free_port();
    let s = start("sample_dynamic.yaml", &[("INGEST_PORT", port.to_string())]);
    let mut body = String::new();
    for i in 0..2000 {
        body.push_str(&format!(
            "{{\"message\":\"chatty {i}\",\"keep_one_in\":10}}\n"
        ));
    }
    for i in 0..100 {
        body.push_str(&format!("{{\"message\":\"quiet {i}\"}}\n"));
    }
    // An invalid rate falls back to the static one, as in Vector.
    body.push_str("{\"message\":\"odd\",\"keep_one_in\":\"ten\"}\n");
    let (code, answer) = http_post(&format!("http://127.0.0.1:{port}/"), &[], body.as_bytes());
    assert_eq!(code, 200, "{answer}");
    let dir = s.path("");
    // Everything the transform passed on is in the file.
    assert!(wait_for(Duration::from_secs(10), || {
        let m = s.metrics();
        let c = component_metrics_in_flight(&m, "by_app", "transform", "sample");
        c.received_events >= 2101.0
            && c.sent_events + c.discarded >= c.received_events
            && count_lines(&dir, "kept") as f64 == sent_events(&s, "by_app")
    }));
    assert_component_metrics(&s.metrics(), "by_app", "transform", "sample");
    let kept = read_jsonl(&dir, "kept");
    let chatty: Vec<&Json> = kept
        .iter()
        .filter(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("chatty"))
        })
        .collect();
    let quiet = kept
        .iter()
        .filter(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("quiet"))
        })
        .count();
    // One in ten of 2000, hash-spread: 200 on average, 13 standard deviations apart
    // from keeping all or none.
    assert!(
        (140..=260).contains(&chatty.len()),
        "{} chatty kept",
        chatty.len()
    );
    assert!(chatty.iter().all(|e| e["sample_rate"] == "10"));
    assert_eq!(quiet, 100, "no rate field: the static rate 1 keeps all");
    let odd: Vec<&Json> = kept.iter().filter(|e| e["message"] == "odd").collect();
    assert_eq!(odd.len(), 1);
    assert_eq!(odd[0]["sample_rate"], "1");
}

#[test]
fn blackhole_rate_holds_the_pipeline_to_its_pace() {
    let started = std::time::Instant::now();
    let mut s = start("blackhole_rate.toml", &[]);
    assert!(
        s.wait(Duration::from_secs(30)).success(),
        "{}",
        s.log_text()
    );
    // 3000 events at 1000 a second: the first batch goes at once, the rest take at
    // least two seconds (a lower bound; a slow machine only takes longer).
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1900), "took {took:?}");
}

#[test]
fn demo_logs_and_stdin_decode_json_frames() {
    let mut s = start("demo_json.yaml", &[]);
    assert!(
        s.wait(Duration::from_secs(20)).success(),
        "{}",
        s.log_text()
    );
    let events = read_jsonl(&s.path(""), "demo");
    assert_eq!(events.len(), 5);
    for e in &events {
        // The generated JSON's own fields, its host kept over `localhost`.
        assert_eq!(e["method"], "GET", "{e}");
        assert!(
            e["host"].as_str().is_some_and(|h| h.starts_with("10.0.")),
            "{e}"
        );
        assert_eq!(e["source_type"], "demo_logs");
        assert!(e["timestamp"].is_string());
        assert!(e.get("message").is_none(), "{e}");
    }

    let (code, _, err) = validate("stdin_framed.toml", &[]);
    assert_eq!(code, 0, "{err}");
    let mut s = Sluice::start_files(&[&corpus("stdin_framed.toml")], |c, dir| {
        c.env("OUT_DIR", dir).stdin(std::process::Stdio::piped());
    });
    {
        let mut stdin = s.child().stdin.take().expect("stdin");
        let records = [
            "{\"message\":\"first\\nwith a newline inside\",\"level\":\"info\"}",
            "not json at all",
            "{\"message\":\"third\",\"collector\":\"its own\"}",
        ];
        for r in records {
            write!(stdin, "{} {}", r.len(), r).expect("write");
        }
    }
    assert!(
        s.wait(Duration::from_secs(20)).success(),
        "{}",
        s.log_text()
    );
    let events = read_jsonl(&s.path(""), "stdin");
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(events[0]["message"], "first\nwith a newline inside");
    assert_eq!(events[0]["level"], "info");
    assert!(events[0]["collector"].is_string(), "host_key");
    // A frame that is not JSON is kept whole and counted, not lost.
    assert_eq!(events[1]["message"], "not json at all");
    assert_eq!(
        events[2]["collector"], "its own",
        "a decoded field is not overwritten"
    );
    assert!(
        s.log_text().contains("kept whole as `message`"),
        "{}",
        s.log_text()
    );
}

#[test]
fn file_source_reads_other_charsets_into_utf8() {
    let logs = tempfile::tempdir().expect("tempdir");
    // UTF-16LE with a BOM and CRLF line ends.
    let mut utf16 = vec![0xFF, 0xFE];
    for line in ["grüße aus Köln\r\n", "日本語のログ\r\n"] {
        utf16.extend(line.encode_utf16().flat_map(u16::to_le_bytes));
    }
    std::fs::write(logs.path().join("app.utf16.log"), utf16).expect("write");
    // windows-1252: é is one byte, 0xE9; € is 0x80.
    std::fs::write(logs.path().join("old.1252.log"), b"caf\xe9 costs 3\x80\n").expect("write");
    let env = [("LOG_DIR", logs.path().display().to_string())];
    let (code, _, err) = validate("file_charset.yaml", &env);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("[sources.utf16] key `acknowledgements`"),
        "{err}"
    );
    let s = start("file_charset.yaml", &env);
    let dir = s.path("");
    assert!(
        wait_for(Duration::from_secs(10), || count_lines(&dir, "decoded")
            == 3),
        "{}",
        s.log_text()
    );
    let mut messages: Vec<String> = read_jsonl(&dir, "decoded")
        .iter()
        .map(|e| e["message"].as_str().unwrap_or("").to_string())
        .collect();
    messages.sort();
    assert_eq!(
        messages,
        ["café costs 3€", "grüße aus Köln", "日本語のログ"]
    );
}

#[test]
fn influxdb_logs_writes_vectors_point_layout_into_a_real_influxd() {
    let influx = support::influx::Influxd::start("vector");
    let port = free_port();
    let env = [
        ("INGEST_PORT", port.to_string()),
        ("INFLUX_URL", influx.url.clone()),
    ];
    let s = start("influxdb_logs.toml", &env);
    let (code, answer) = http_post(
        &format!("http://127.0.0.1:{port}/"),
        &[],
        br#"{"message":"hello","app":"web","status":200}"#,
    );
    assert_eq!(code, 200, "{answer}\n{}", s.log_text());
    let (columns, rows) = influx.query("vector", "SELECT * FROM \"vector-logs\"");
    assert_eq!(rows.len(), 1, "{columns:?} {rows:?}");
    let get = |name: &str| {
        columns
            .iter()
            .position(|c| c == name)
            .map(|i| rows[0][i].clone())
            .unwrap_or(Json::Null)
    };
    assert_eq!(get("message"), "hello");
    assert_eq!(get("status"), 200);
    assert_eq!(get("app"), "web");
    assert_eq!(get("metric_type"), "logs");
    assert_eq!(get("source_type"), "http_server");
    assert_eq!(get("host"), "127.0.0.1");
    assert_eq!(get("path"), Json::Null, "except_fields");
    let (_, tag_keys) = influx.query("vector", "SHOW TAG KEYS FROM \"vector-logs\"");
    let tag_keys: Vec<&str> = tag_keys.iter().filter_map(|r| r[0].as_str()).collect();
    assert_eq!(tag_keys, ["app", "host", "metric_type", "source_type"]);
}

#[test]
fn influxdb_metrics_writes_vectors_layout_with_counters_as_increases() {
    let influx = support::influx::Influxd::start("vector");
    let port = free_port();
    let env = [
        ("INGEST_PORT", port.to_string()),
        ("INFLUX_URL", influx.url.clone()),
    ];
    let s = start("influxdb_metrics.yaml", &env);
    let url = format!("http://127.0.0.1:{port}/");
    assert_eq!(http_post(&url, &[], b"a\nb\nc").0, 200);
    // Two scrapes apart, so the counter moves twice.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(http_post(&url, &[], b"d\ne").0, 200);
    let measurement = "sluice.component_received_events_total";
    let query = format!(
        "SELECT sum(\"value\") FROM \"{measurement}\" WHERE component_id = 'ingest' AND metric_type = 'counter' AND region = 'eu-1'"
    );
    let mut rows = Vec::new();
    let arrived = wait_for(Duration::from_secs(20), || {
        rows = influx.query("vector", &query).1;
        rows.first().and_then(|r| r[1].as_f64()) == Some(5.0)
    });
    // The counter starts at 0 when sluice starts (its baseline): its increases add up
    // to every event, each counted once.
    assert!(
        arrived,
        "the increases add up to 5: {rows:?}\n{}",
        s.log_text()
    );
    let (_, points) = influx.query(
        "vector",
        &format!("SELECT \"value\" FROM \"{measurement}\" WHERE component_id = 'ingest' AND \"value\" > 0"),
    );
    let moves: Vec<f64> = points.iter().filter_map(|r| r[1].as_f64()).collect();
    assert_eq!(
        moves,
        [3.0, 2.0],
        "written as increases, not running totals"
    );
    // Histograms: cumulative-free bucket counts with count and sum.
    let (columns, _) = influx.query(
        "vector",
        "SELECT * FROM \"sluice.http_client_request_duration_seconds\" LIMIT 1",
    );
    assert!(
        columns.iter().any(|c| c.starts_with("bucket_")),
        "{columns:?}"
    );
    assert!(columns.contains(&"count".to_string()) && columns.contains(&"sum".to_string()));
    let (_, gauges) = influx.query(
        "vector",
        "SHOW TAG VALUES FROM \"sluice.buffer_max_events\" WITH KEY = \"metric_type\"",
    );
    assert_eq!(
        gauges.first().and_then(|r| r[1].as_str()),
        Some("gauge"),
        "{gauges:?}"
    );
}
