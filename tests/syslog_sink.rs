//! The `syslog` sink forwarding into a real rsyslog over TCP (octet counting and newline
//! framing), UDP and TLS (rsyslog's `gtls` driver, with and without client
//! certificates): what rsyslog receives is byte for byte what the syslog source was
//! sent, structured data included, and rsyslog parses every field back. A receiver
//! that goes away and comes back gets everything sent meanwhile, once.

use crate::support;

use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;
use support::rsyslog::{Listen, Rsyslog};
use support::{errors_of, free_port, test_certs, wait_for, Sluice};

/// Well-formed RFC 5424 messages of several shapes, each with a sequence number, written
/// the way the sink writes them back (UTC, SD parameters in name order), so what
/// rsyslog receives can be compared with them byte for byte.
fn messages(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| match i % 5 {
            0 => format!("<34>1 2026-11-30T22:14:15.003Z web-1.example.com su - ID47 - seq={i} 'su root' failed for lonvick on /dev/pts/8"),
            1 => format!("<165>1 2026-11-30T05:14:15.000003Z 192.0.2.1 myproc 8710 - - seq={i} %% It's time to make the do-nuts."),
            2 => format!("<165>1 2026-11-30T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 eventID=\"1011\" eventSource=\"Application\" iut=\"3\"] seq={i} An application event log entry"),
            3 => format!("<190>1 2026-11-30T22:14:15Z host app 1 - [a@1 x=\"q\\\"uo\\\\te\\]\"][origin ip=\"192.0.2.5\"] seq={i} unicode é ✓"),
            _ => format!("<13>1 2026-11-30T00:00:00.500Z h nginx 42 - - seq={i} GET /index.html 200"),
        })
        .collect()
}

/// A pipeline: the syslog source on TCP into the sink under test.
fn config(source_port: u16, sinks: &str) -> String {
    format!(
        r#"
[sources.in]
type = "syslog"
mode = "tcp"
address = "127.0.0.1:{source_port}"
{sinks}
"#
    )
}

/// Sends `lines` to the syslog source, newline framed, in chunks (pausing between them
/// when `pace`, so a UDP receiver is not flooded past its socket buffer).
fn send(port: u16, lines: &[String], pace: bool) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the source");
    for chunk in lines.chunks(100) {
        let text: String = chunk.iter().map(|l| format!("{l}\n")).collect();
        s.write_all(text.as_bytes()).expect("write");
        if pace {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn seq_of(line: &str) -> usize {
    line.split("seq=")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no seq in {line}"))
}

/// rsyslog's view of each message equals what was sent: raw bytes, and the fields it
/// parsed (SD included).
fn assert_received_exactly(rs: &Rsyslog, sent: &[String], ordered: bool) {
    let mut raw = rs.raw();
    let mut want = sent.to_vec();
    if !ordered {
        raw.sort();
        want.sort();
    }
    assert_eq!(
        raw.len(),
        want.len(),
        "rsyslog received {} of {}",
        raw.len(),
        want.len()
    );
    for (got, want) in raw.iter().zip(&want) {
        assert_eq!(got, want);
    }
    let by_seq: BTreeMap<usize, &String> = sent.iter().map(|l| (seq_of(l), l)).collect();
    for f in rs.fields() {
        let msg = f["msg"].as_str().unwrap_or_default();
        let original = by_seq[&seq_of(msg)];
        let sd = if original.contains(" [") {
            let start = original.find(" [").unwrap_or(0) + 1;
            let end = original.rfind("] ").unwrap_or(0) + 1;
            &original[start..end]
        } else {
            "-"
        };
        assert_eq!(f["sd"], Json::from(sd), "{f} from {original}");
        assert!(original.ends_with(msg), "{f} from {original}");
        let host = original.split(' ').nth(2).unwrap_or_default();
        assert_eq!(f["hostname"], Json::from(host), "{f}");
    }
}

#[test]
fn forwards_to_rsyslog_over_tcp_exactly_in_both_framings() {
    for framing in ["octet_counting", "newline"] {
        let rs = Rsyslog::start(Listen::Tcp);
        let port = free_port();
        let sluice = Sluice::start(&config(
            port,
            &format!(
                "[sinks.forward]\ntype = \"syslog\"\ninputs = [\"in\"]\naddress = \"127.0.0.1:{}\"\nframing = \"{framing}\"\n",
                rs.port
            ),
        ));
        let sent = messages(5000);
        send(port, &sent, false);
        assert!(
            wait_for(Duration::from_secs(30), || rs.raw().len() >= sent.len()),
            "{framing}: rsyslog got {} of {}; sluice: {}",
            rs.raw().len(),
            sent.len(),
            sluice.log_text()
        );
        assert_received_exactly(&rs, &sent, true);
        let m = sluice.metrics();
        let sample = support::assert_component_metrics(&m, "forward", "sink", "syslog");
        assert_eq!(sample.sent_events, sent.len() as f64, "{framing}");
    }
}

#[test]
fn forwards_to_rsyslog_over_udp() {
    let rs = Rsyslog::start(Listen::Udp);
    let port = free_port();
    let sluice = Sluice::start(&config(
        port,
        &format!(
            "[sinks.forward]\ntype = \"syslog\"\ninputs = [\"in\"]\naddress = \"127.0.0.1:{}\"\nmode = \"udp\"\n",
            rs.port
        ),
    ));
    let sent = messages(1000);
    send(port, &sent, true);
    assert!(
        wait_for(Duration::from_secs(30), || rs.raw().len() >= sent.len()),
        "rsyslog got {} of {} datagrams; sluice: {}",
        rs.raw().len(),
        sent.len(),
        sluice.log_text()
    );
    assert_received_exactly(&rs, &sent, false);
}

#[test]
fn udp_messages_over_max_datagram_bytes_are_cut_and_counted() {
    let rs = Rsyslog::start(Listen::Udp);
    let port = free_port();
    let sluice = Sluice::start(&config(
        port,
        &format!(
            "[sinks.forward]\ntype = \"syslog\"\ninputs = [\"in\"]\naddress = \"127.0.0.1:{}\"\nmode = \"udp\"\n",
            rs.port
        ),
    ));
    let long = format!(
        "<13>1 2026-11-30T00:00:00Z h app - - - seq=0 {}",
        "x".repeat(3000)
    );
    send(port, std::slice::from_ref(&long), false);
    assert!(wait_for(Duration::from_secs(20), || rs.raw().len() == 1));
    // The default limit, 1452 bytes, fits one Ethernet frame.
    assert_eq!(rs.raw()[0], long[..1452]);
    assert!(wait_for(Duration::from_secs(10), || {
        errors_of(&sluice.metrics(), "forward", "truncated") == Some(1.0)
    }));
}

#[test]
fn forwards_rfc3164_with_newline_framing() {
    let rs = Rsyslog::start(Listen::Tcp);
    let port = free_port();
    let _sluice = Sluice::start(&config(
        port,
        &format!(
            "[sinks.forward]\ntype = \"syslog\"\ninputs = [\"in\"]\naddress = \"127.0.0.1:{}\"\nformat = \"rfc3164\"\nframing = \"newline\"\n",
            rs.port
        ),
    ));
    let sent: Vec<String> = (0..200)
        .map(|i| {
            format!(
                "<86>Nov 30 17:32:{:02} web1 sshd[{}]: seq={i} Accepted publickey for ops",
                i % 60,
                1000 + i
            )
        })
        .collect();
    send(port, &sent, false);
    assert!(wait_for(Duration::from_secs(30), || rs.raw().len() >= sent.len()));
    assert_eq!(rs.raw(), sent);
    for (f, line) in rs.fields().iter().zip(&sent) {
        assert_eq!(f["hostname"], "web1");
        assert_eq!(f["appname"], "sshd");
        assert_eq!(f["facility"], "authpriv");
        assert_eq!(f["severity"], "info");
        assert!(line.ends_with(f["msg"].as_str().unwrap_or_default().trim_start()));
    }
}

#[test]
fn forwards_to_rsyslog_over_tls_with_a_client_certificate() {
    let certs = test_certs();
    let rs = Rsyslog::start(Listen::Tls {
        certs: &certs,
        client_certificates: true,
    });
    let port = free_port();
    let tls = |with_cert: bool| {
        let mut t = format!("tls.ca_file = \"{}\"\n", certs.ca.display());
        if with_cert {
            t += &format!(
                "tls.crt_file = \"{}\"\ntls.key_file = \"{}\"\n",
                certs.client_crt.display(),
                certs.client_key.display()
            );
        }
        t
    };
    let sluice = Sluice::start(&config(
        port,
        &format!(
            "[sinks.forward]\ntype = \"syslog\"\ninputs = [\"in\"]\naddress = \"127.0.0.1:{p}\"\nmode = \"tls\"\n{}\n[sinks.no_cert]\ntype = \"syslog\"\ninputs = [\"in\"]\naddress = \"127.0.0.1:{p}\"\nmode = \"tls\"\nrequest.retry_initial_backoff_secs = 0.2\n{}\n",
            tls(true),
            tls(false),
            p = rs.port
        ),
    ));
    let sent = messages(2000);
    send(port, &sent, false);
    assert!(
        wait_for(Duration::from_secs(30), || rs.raw().len() >= sent.len()),
        "rsyslog got {} of {}; sluice: {}\nrsyslog: {}",
        rs.raw().len(),
        sent.len(),
        sluice.log_text(),
        rs.log_text()
    );
    // The sink without a client certificate is refused at every attempt: it delivers
    // nothing, and says so.
    assert!(wait_for(Duration::from_secs(20), || {
        errors_of(&sluice.metrics(), "no_cert", "request_failed").unwrap_or(0.0) >= 2.0
    }));
    std::thread::sleep(Duration::from_millis(500));
    assert_received_exactly(&rs, &sent, true);
    assert_eq!(support::sent_events(&sluice, "no_cert"), 0.0);
}

#[test]
fn forwards_to_rsyslog_over_tls_without_client_certificates() {
    let certs = test_certs();
    let rs = Rsyslog::start(Listen::Tls {
        certs: &certs,
        client_certificates: false,
    });
    let port = free_port();
    let sluice = Sluice::start(&config(
        port,
        &format!(
            "[sinks.forward]\ntype = \"syslog\"\ninputs = [\"in\"]\naddress = \"localhost:{}\"\nmode = \"tls\"\ntls.ca_file = \"{}\"\n",
            rs.port,
            certs.ca.display()
        ),
    ));
    let sent = messages(500);
    send(port, &sent, false);
    assert!(
        wait_for(Duration::from_secs(30), || rs.raw().len() >= sent.len()),
        "rsyslog got {} of {}; sluice: {}",
        rs.raw().len(),
        sent.len(),
        sluice.log_text()
    );
    assert_received_exactly(&rs, &sent, true);
}

#[test]
fn a_receiver_that_restarts_gets_everything_once() {
    let mut rs = Rsyslog::start(Listen::Tcp);
    let port = free_port();
    let sluice = Sluice::start(&config(
        port,
        &format!(
            "[sinks.forward]\ntype = \"syslog\"\ninputs = [\"in\"]\naddress = \"127.0.0.1:{}\"\nrequest.retry_initial_backoff_secs = 0.2\nrequest.retry_max_duration_secs = 1\n",
            rs.port
        ),
    ));
    let sent = messages(3000);
    send(port, &sent[..1000], false);
    assert!(wait_for(Duration::from_secs(30), || rs.raw().len() >= 1000));
    // rsyslog stops; the sink's connection is now closed by its peer. What is sent
    // meanwhile waits, and none of it goes into the dead connection.
    rs.stop();
    send(port, &sent[1000..2000], false);
    assert!(wait_for(Duration::from_secs(20), || {
        errors_of(&sluice.metrics(), "forward", "request_failed").unwrap_or(0.0) >= 1.0
    }));
    rs.restart();
    send(port, &sent[2000..], false);
    assert!(
        wait_for(Duration::from_secs(30), || rs.raw().len() >= sent.len()),
        "rsyslog got {} of {}; sluice: {}",
        rs.raw().len(),
        sent.len(),
        sluice.log_text()
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_received_exactly(&rs, &sent, true);
}
