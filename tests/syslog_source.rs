//! The syslog source end to end: the real util-linux `logger` over UDP and TCP in every
//! framing it speaks, the whole corpus over one octet-counted connection, hostile clients
//! beside well-behaved ones, and the metric contract checked with `promtool`.

use crate::support;

use serde_json::Value as Json;
use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;
use support::*;

fn pipeline(tcp: u16, udp: u16, extra: &str) -> String {
    format!(
        r#"
[sources.in_tcp]
type = "syslog"
mode = "tcp"
address = "127.0.0.1:{tcp}"
{extra}

[sources.in_udp]
type = "syslog"
mode = "udp"
address = "127.0.0.1:{udp}"

[sinks.out]
type = "file"
inputs = ["in_*"]
path = "{{DIR}}/out-%Y-%m-%d.jsonl"
"#
    )
}

fn logger(args: &[&str]) {
    require_tool("logger");
    let st = Command::new("logger").args(args).status().expect("logger");
    assert!(st.success(), "logger {args:?} failed");
}

fn find<'a>(events: &'a [Json], marker: &str) -> &'a Json {
    events
        .iter()
        .find(|e| e["message"].as_str().is_some_and(|m| m.contains(marker)))
        .unwrap_or_else(|| panic!("no event with {marker:?} in {events:#?}"))
}

#[test]
fn logger_over_udp_and_tcp_in_every_format() {
    let (tcp, udp) = (free_port(), free_port());
    let s = Sluice::start(&pipeline(tcp, udp, ""));
    let (t, u) = (tcp.to_string(), udp.to_string());
    let base = |port: &str, proto: &'static str| {
        vec![
            "--server".to_string(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string(),
            proto.into(),
        ]
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            [base(&u, "--udp"), vec!["--rfc3164".into()]].concat(),
            "m-udp-3164",
        ),
        (
            [base(&u, "--udp"), vec!["--rfc5424".into()]].concat(),
            "m-udp-5424",
        ),
        (
            [base(&t, "--tcp"), vec!["--rfc3164".into()]].concat(),
            "m-tcp-3164",
        ),
        (
            [base(&t, "--tcp"), vec!["--rfc5424".into()]].concat(),
            "m-tcp-5424",
        ),
        (
            [
                base(&t, "--tcp"),
                vec!["--rfc5424".into(), "--octet-count".into()],
            ]
            .concat(),
            "m-tcp-octet",
        ),
        (
            [
                base(&t, "--tcp"),
                vec![
                    "--rfc5424".into(),
                    "--octet-count".into(),
                    "--sd-id".into(),
                    "origin@32473".into(),
                    "--sd-param".into(),
                    "software=\"sluice-test\"".into(),
                ],
            ]
            .concat(),
            "m-tcp-sd",
        ),
    ];
    for (args, marker) in &cases {
        let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
        a.extend(["-t", "myapp", "-p", "local3.err", "--id=4242", marker]);
        logger(&a);
    }
    let dir = s.dir.path().to_path_buf();
    assert!(
        wait_for(Duration::from_secs(5), || read_jsonl(&dir, "out-").len()
            >= cases.len()),
        "only {} of {} events arrived; log:\n{}",
        read_jsonl(&dir, "out-").len(),
        cases.len(),
        s.log_text()
    );
    let events = read_jsonl(&dir, "out-");
    for (_, marker) in &cases {
        let e = find(&events, marker);
        assert_eq!(e["message"], Json::from(*marker), "{e}");
        assert_eq!(e["appname"], "myapp", "{e}");
        assert_eq!(e["procid"], 4242, "{e}");
        assert_eq!(e["severity"], "err", "{e}");
        assert_eq!(e["facility"], "local3", "{e}");
        assert_eq!(e["source_type"], "syslog");
        assert_eq!(e["source_ip"], "127.0.0.1");
        assert!(
            e["hostname"].is_string() && e["host"] == e["hostname"],
            "{e}"
        );
        assert!(
            chrono::DateTime::parse_from_rfc3339(e["timestamp"].as_str().unwrap_or("")).is_ok(),
            "{e}"
        );
    }
    assert_eq!(find(&events, "m-tcp-5424")["version"], 1);
    assert_eq!(
        find(&events, "m-tcp-sd")["origin@32473"]["software"],
        "sluice-test"
    );
    assert!(find(&events, "m-tcp-3164").get("version").is_none());

    let m = s.metrics();
    promtool_check(&m);
    let tcp_m = assert_component_metrics(&m, "in_tcp", "source", "syslog");
    let udp_m = assert_component_metrics(&m, "in_udp", "source", "syslog");
    let sink = assert_component_metrics(&m, "out", "sink", "file");
    assert_eq!(tcp_m.received_events, 4.0);
    assert_eq!(udp_m.received_events, 2.0);
    assert!(tcp_m.received_bytes > 0.0 && udp_m.received_bytes > 0.0);
    assert_eq!(sink.sent_events, 6.0);
    assert!(sink.sent_bytes > 0.0);
    assert!(m.contains("sluice_build_info{version=\""), "{m}");
    assert!(m.contains("sluice_uptime_seconds"), "{m}");
}

#[test]
fn whole_corpus_over_one_octet_counted_connection() {
    let (tcp, udp) = (free_port(), free_port());
    // One file, so the order of the connection is the order of the lines (with the
    // date template, corpus events from 2003 to 2026 would land in many files).
    let s = Sluice::start(&pipeline(tcp, udp, "").replace("out-%Y-%m-%d.jsonl", "out-all.jsonl"));
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/corpus/syslog/cases.jsonl"
    ))
    .expect("corpus");
    let mut stream = Vec::new();
    let mut sent = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let case: Json = serde_json::from_str(line).expect("json");
        if case.get("msg_b64").is_some() {
            continue; // non-UTF-8 cases are covered by the parser tests
        }
        let msg = case["msg"].as_str().unwrap_or_default();
        if msg.trim().is_empty() {
            continue;
        }
        write!(stream, "{} {}", msg.len(), msg).expect("write");
        sent.push(msg.to_string());
    }
    let mut c = TcpStream::connect(("127.0.0.1", tcp)).expect("connect");
    c.write_all(&stream).expect("send");
    drop(c);
    let dir = s.dir.path().to_path_buf();
    assert!(
        wait_for(Duration::from_secs(10), || count_lines(&dir, "out-")
            >= sent.len()),
        "got {} of {}",
        count_lines(&dir, "out-"),
        sent.len()
    );
    let events = read_jsonl(&dir, "out-");
    assert_eq!(events.len(), sent.len());
    for (e, msg) in events.iter().zip(&sent) {
        let m = e["message"].as_str().unwrap_or_default();
        assert!(
            msg.contains(m.trim_start_matches('\u{feff}').trim()),
            "message {m:?} lost text of {msg:?}"
        );
    }
    let m = s.metrics();
    let errors = metric(
        &m,
        "sluice_component_errors_total",
        &[("component_id", "in_tcp"), ("error_type", "parse")],
    )
    .unwrap_or(0.0);
    assert!(
        errors > 1.0,
        "corpus has non-syslog lines; they must be counted as parse errors"
    );
    // Every one is counted, but the log says it once per 10 s per component and error type.
    let logged = s.log_text().matches("is not RFC 5424 or RFC 3164").count();
    assert_eq!(
        logged,
        1,
        "parse errors must be rate-limited in the log:\n{}",
        s.log_text()
    );
    assert_eq!(
        metric(
            &m,
            "sluice_component_errors_total",
            &[("component_id", "in_tcp"), ("error_type", "framing")]
        ),
        Some(0.0)
    );
}

#[test]
fn hostile_clients_do_not_hurt_anyone_else() {
    let (tcp, udp) = (free_port(), free_port());
    let s = Sluice::start(&pipeline(tcp, udp, "max_length = 4096"));
    let addr = ("127.0.0.1", tcp);
    // A 1 MiB line without a newline until the very end.
    let mut big = TcpStream::connect(addr).expect("connect");
    let mut line = b"<13>Jan  1 00:00:00 host app: ".to_vec();
    line.extend(std::iter::repeat_n(b'x', 1 << 20));
    line.push(b'\n');
    big.write_all(&line).expect("big");
    // Clients that vanish mid-frame, in both framings.
    for half in [
        &b"500 <13>1 - host app - - - only part"[..],
        b"<13>Jan  1 00:00:00 host app: no newline and gone",
    ] {
        let mut c = TcpStream::connect(addr).expect("connect");
        c.write_all(half).expect("half");
    }
    // Thousands of well-behaved clients, all connected at the same time.
    let mut clients: Vec<TcpStream> = (0..2000)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();
    assert!(
        wait_for(Duration::from_secs(10), || metric(
            &s.metrics(),
            "sluice_tcp_connections",
            &[("component_id", "in_tcp")]
        )
        .unwrap_or(0.0)
            >= 2001.0),
        "not all connections were accepted: {:?}",
        metric(
            &s.metrics(),
            "sluice_tcp_connections",
            &[("component_id", "in_tcp")]
        )
    );
    for (i, c) in clients.iter_mut().enumerate() {
        writeln!(c, "<13>1 - host app - - - good-{i}").expect("send");
    }
    drop(clients);
    drop(big);
    let dir = s.dir.path().to_path_buf();
    let want = 2000 + 3;
    assert!(
        wait_for(Duration::from_secs(20), || count_lines(&dir, "out-")
            >= want),
        "got {}",
        count_lines(&dir, "out-")
    );
    let events = read_jsonl(&dir, "out-");
    let good = events
        .iter()
        .filter(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("good-"))
        })
        .count();
    assert_eq!(good, 2000);
    let long = events
        .iter()
        .find(|e| e["message"].as_str().is_some_and(|m| m.starts_with("xxx")))
        .expect("the long line arrives, truncated");
    assert!(long["message"].as_str().unwrap_or_default().len() < 4096);
    assert!(
        events.iter().any(|e| e["message"] == "only part"),
        "half frame kept"
    );
    assert!(
        events.iter().any(|e| e["message"] == "no newline and gone"),
        "unterminated last line kept"
    );
    let m = s.metrics();
    assert_eq!(
        metric(
            &m,
            "sluice_component_errors_total",
            &[("component_id", "in_tcp"), ("error_type", "truncated")]
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &m,
            "sluice_component_errors_total",
            &[("component_id", "in_tcp"), ("error_type", "framing")]
        ),
        Some(1.0)
    );
    // Clients closed; their connection tasks see EOF shortly after the last event.
    assert!(
        wait_for(Duration::from_secs(10), || metric(
            &s.metrics(),
            "sluice_tcp_connections",
            &[("component_id", "in_tcp")]
        ) == Some(0.0)),
        "connections left open"
    );
    assert!(
        metric(
            &m,
            "sluice_tcp_connections_total",
            &[("component_id", "in_tcp")]
        )
        .unwrap_or(0.0)
            >= 503.0
    );
    assert!(
        s.log_text().contains("truncated"),
        "truncation is reported in the log"
    );
}

#[test]
fn udp_datagrams_longer_than_max_length_are_truncated_and_counted() {
    let (tcp, udp) = (free_port(), free_port());
    let s = Sluice::start(
        &pipeline(tcp, udp, "").replace("mode = \"udp\"", "mode = \"udp\"\nmax_length = 100"),
    );
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let msg = format!("<13>1 - host app - - - {}\n", "y".repeat(300));
    sock.send_to(msg.as_bytes(), ("127.0.0.1", udp))
        .expect("send");
    let dir = s.dir.path().to_path_buf();
    assert!(wait_for(Duration::from_secs(5), || count_lines(
        &dir, "out-"
    ) >= 1));
    let e = &read_jsonl(&dir, "out-")[0];
    assert!(e["message"].as_str().unwrap_or_default().starts_with("yyy"));
    assert_eq!(
        metric(
            &s.metrics(),
            "sluice_component_errors_total",
            &[("component_id", "in_udp"), ("error_type", "truncated")]
        ),
        Some(1.0)
    );
}

#[test]
fn udp_datagrams_the_kernel_drops_are_counted() {
    let udp = free_port();
    // A sink that never drains (stdout is a pipe nobody reads) with a tiny buffer, and a
    // tiny kernel receive buffer: the source blocks, the kernel must drop.
    let s = Sluice::start_with(
        &format!(
            r#"
[sources.in_udp]
type = "syslog"
mode = "udp"
address = "127.0.0.1:{udp}"
receive_buffer_bytes = 4096

[sinks.stuck]
type = "console"
inputs = ["in_udp"]
buffer.max_events = 10
"#
        ),
        |c| {
            c.stdout(std::process::Stdio::piped());
        },
    );
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let line = format!("<13>1 - host app - - - {}", "z".repeat(200));
    for _ in 0..20_000 {
        let _ = sock.send_to(line.as_bytes(), ("127.0.0.1", udp));
    }
    let label = [("component_id", "in_udp")];
    assert!(
        wait_for(Duration::from_secs(5), || metric(
            &s.metrics(),
            "sluice_udp_kernel_drops_total",
            &label
        )
        .unwrap_or(0.0)
            > 0.0),
        "kernel drops not counted:\n{}",
        s.metrics()
    );
    let m = s.metrics();
    let drops = metric(&m, "sluice_udp_kernel_drops_total", &label).unwrap_or(0.0);
    assert_eq!(
        metric(
            &m,
            "sluice_component_discarded_events_total",
            &[("component_id", "in_udp"), ("intentional", "false")]
        ),
        Some(drops)
    );
    assert!(
        metric(
            &m,
            "sluice_component_errors_total",
            &[("component_id", "in_udp"), ("error_type", "udp_overflow")]
        )
        .unwrap_or(0.0)
            > 0.0
    );
    assert!(
        s.log_text().contains("receive buffer was full"),
        "{}",
        s.log_text()
    );
}

/// Sends `data` over TLS with `openssl s_client` (trusting the test CA, presenting the
/// client certificate when `with_cert`), then closes; whether the client succeeded.
fn s_client(port: u16, certs: &TestCerts, with_cert: bool, data: &str) -> bool {
    let mut args = vec![
        "s_client".to_string(),
        "-connect".into(),
        format!("localhost:{port}"),
        "-CAfile".into(),
        certs.ca.display().to_string(),
        "-verify_return_error".into(),
        "-quiet".into(),
        "-no_ign_eof".into(),
    ];
    if with_cert {
        for (flag, path) in [("-cert", &certs.client_crt), ("-key", &certs.client_key)] {
            args.push(flag.into());
            args.push(path.display().to_string());
        }
    }
    let mut child = Command::new("openssl")
        .args(&args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("openssl s_client");
    let mut stdin = child.stdin.take().expect("stdin");
    // A refused handshake may close the pipe before the data is written.
    let _ = stdin.write_all(data.as_bytes());
    drop(stdin);
    child.wait().expect("s_client").success()
}

#[test]
fn syslog_over_tls_with_client_certificates_in_both_framings() {
    let certs = test_certs();
    let port = free_port();
    let s = Sluice::start(&format!(
        r#"
[sources.in]
type = "syslog"
mode = "tcp"
address = "127.0.0.1:{port}"
tls.enabled = true
tls.crt_file = "{}"
tls.key_file = "{}"
tls.ca_file = "{}"
tls.verify_certificate = true
tls_handshake_timeout_secs = 2

[sinks.out]
type = "file"
inputs = ["in"]
path = "{{DIR}}/out.jsonl"
"#,
        certs.crt.display(),
        certs.key.display(),
        certs.ca.display()
    ));
    // RFC 5425: octet counting over TLS, two messages on one connection.
    let m1 = "<134>1 2026-12-01T10:00:00Z web-1 app 1 - - tls-octet-1";
    let m2 = "<134>1 2026-12-01T10:00:01Z web-1 app 1 - [x@1 k=\"v\"] tls-octet-2";
    let octet = format!("{} {m1}{} {m2}", m1.len(), m2.len());
    assert!(s_client(port, &certs, true, &octet));
    // Newline framing is accepted inside TLS too.
    assert!(s_client(
        port,
        &certs,
        true,
        "<13>Dec  1 10:00:02 web-2 cron[7]: tls-newline\n"
    ));
    // No client certificate: the handshake is refused and nothing is read.
    let _ = s_client(
        port,
        &certs,
        false,
        "<13>Dec  1 10:00:03 web-3 x: tls-no-cert\n",
    );
    // Plain text to the TLS port is not syslog.
    if let Ok(mut plain) = TcpStream::connect(("127.0.0.1", port)) {
        let _ = plain.write_all(b"<13>Dec  1 10:00:04 web-4 x: plain-text\n");
    }
    // A client that never starts its handshake is closed after
    // `tls_handshake_timeout_secs`, freeing its slot.
    let mut silent = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    silent
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let started = std::time::Instant::now();
    let mut byte = [0u8; 1];
    assert!(matches!(std::io::Read::read(&mut silent, &mut byte), Ok(0)));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(15),
        "{waited:?}"
    );
    let dir = s.dir.path().to_path_buf();
    assert!(wait_for(Duration::from_secs(10), || count_lines(
        &dir, "out"
    ) >= 3));
    assert!(wait_for(Duration::from_secs(10), || metric(
        &s.metrics(),
        "sluice_component_errors_total",
        &[("component_id", "in"), ("error_type", "tls")]
    )
    .unwrap_or(0.0)
        >= 3.0));
    let events = read_jsonl(&dir, "out");
    assert_eq!(events.len(), 3, "{events:#?}");
    assert_eq!(find(&events, "tls-octet-1")["appname"], "app");
    assert_eq!(find(&events, "tls-octet-2")["x@1"]["k"], "v");
    assert_eq!(find(&events, "tls-newline")["appname"], "cron");
    for e in &events {
        let m = e["message"].as_str().unwrap_or_default();
        assert!(!m.contains("no-cert") && !m.contains("plain-text"), "{m}");
    }
    assert_component_metrics(&s.metrics(), "in", "source", "syslog");
}

#[test]
fn local_datagram_and_stream_sockets_as_dev_log() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let dir = tempfile::tempdir().expect("tempdir");
    let dgram = dir.path().join("log");
    let stream = dir.path().join("log-stream");
    // A stale socket file, left by a process that is gone: replaced.
    drop(std::os::unix::net::UnixDatagram::bind(&dgram).expect("stale socket"));
    assert!(dgram.exists());
    let mut s = Sluice::start(&format!(
        r#"
[sources.devlog]
type = "syslog"
mode = "unix"
path = "{}"
socket_file_mode = 0o666

[sources.devlog_stream]
type = "syslog"
mode = "unix_stream"
path = "{}"

[sinks.out]
type = "file"
inputs = ["devlog*"]
path = "{{DIR}}/out.jsonl"
"#,
        dgram.display(),
        stream.display()
    ));
    let meta = std::fs::metadata(&dgram).expect("socket file");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o666);
    let d = dgram.display().to_string();
    let st = stream.display().to_string();
    // As glibc writes (RFC 3164, no host name), over a datagram and over a stream.
    logger(&[
        "-u",
        &d,
        "--socket-errors=on",
        "-d",
        "-t",
        "myapp",
        "-p",
        "local3.warning",
        "dgram-one",
    ]);
    logger(&[
        "-u",
        &st,
        "--socket-errors=on",
        "-T",
        "-t",
        "other",
        "stream-one",
    ]);
    logger(&[
        "-u",
        &d,
        "--socket-errors=on",
        "-d",
        "--rfc5424",
        "-t",
        "five",
        "dgram-5424",
    ]);
    let out = s.dir.path().to_path_buf();
    assert!(wait_for(Duration::from_secs(10), || count_lines(
        &out, "out"
    ) >= 3));
    let events = read_jsonl(&out, "out");
    let host = sluice::hostname();
    let one = find(&events, "dgram-one");
    assert_eq!(one["appname"], "myapp", "{one}");
    assert_eq!(one["facility"], "local3");
    assert_eq!(one["severity"], "warning");
    assert_eq!(one["host"], host.as_str(), "{one}");
    assert!(one.get("source_ip").is_none(), "{one}");
    assert_eq!(find(&events, "stream-one")["appname"], "other");
    assert_eq!(find(&events, "stream-one")["host"], host.as_str());
    assert_eq!(find(&events, "dgram-5424")["appname"], "five");
    let m = s.metrics();
    assert_component_metrics(&m, "devlog", "source", "syslog");
    assert_component_metrics(&m, "devlog_stream", "source", "syslog");

    // A second sluice on the same path refuses it, naming the path.
    let second = dir.path().join("second.toml");
    std::fs::write(
        &second,
        format!(
            "data_dir = \"{}\"\n[api]\naddress = \"127.0.0.1:{}\"\n\
             [sources.devlog]\ntype = \"syslog\"\nmode = \"unix\"\npath = \"{d}\"\n\
             [sinks.out]\ntype = \"blackhole\"\ninputs = [\"devlog\"]\n",
            dir.path().display(),
            free_port()
        ),
    )
    .expect("second config");
    let taken = Command::new(bin())
        .args(["run", "--config"])
        .arg(&second)
        .output()
        .expect("second sluice");
    let err = String::from_utf8_lossy(&taken.stderr);
    assert!(!taken.status.success(), "{err}");
    assert!(
        err.contains(&d) && err.contains("served by another running process"),
        "{err}"
    );
    // The socket files go when sluice stops.
    assert!(s.terminate(Duration::from_secs(10)).success());
    assert!(!dgram.exists() && !stream.exists());
}
