//! SIGTERM drains: what clients sent before the signal, including bytes still in kernel
//! buffers of clients that already closed and connections still waiting in the listen
//! backlog, reaches the sink before sluice exits 0.

use crate::support;

use std::collections::HashSet;
use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::time::Duration;
use support::*;

fn config(tcp: u16, extra: &str) -> String {
    format!(
        r#"
[sources.in]
type = "syslog"
mode = "tcp"
address = "127.0.0.1:{tcp}"
{extra}

[sinks.out]
type = "file"
inputs = ["in"]
path = "{{DIR}}/out.jsonl"
"#
    )
}

fn send(tcp: u16, conn: usize, n: usize) {
    let mut c = TcpStream::connect(("127.0.0.1", tcp)).expect("connect");
    let mut buf = Vec::with_capacity(n * 120);
    for i in 0..n {
        writeln!(
            buf,
            "<134>1 2026-11-22T10:00:00.000Z web-01 app 77 ID1 [m@1 k=\"v\"] conn={conn} seq={i}"
        )
        .expect("fmt");
    }
    c.write_all(&buf).expect("send");
    c.shutdown(Shutdown::Write).expect("close");
}

fn delivered(s: &Sluice) -> HashSet<String> {
    let text = std::fs::read_to_string(s.path("out.jsonl")).unwrap_or_default();
    let mut seen = HashSet::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("json line");
        let m = v["message"].as_str().unwrap_or_default().to_string();
        assert!(seen.insert(m.clone()), "duplicate {m}");
    }
    seen
}

#[test]
fn sigterm_right_after_200k_messages_loses_none() {
    let tcp = free_port();
    let mut s = Sluice::start(&config(tcp, ""));
    let senders: Vec<_> = (0..4)
        .map(|c| std::thread::spawn(move || send(tcp, c, 50_000)))
        .collect();
    for t in senders {
        t.join().expect("sender");
    }
    let status = s.terminate(Duration::from_secs(30));
    assert!(status.success(), "exit {status:?}; log:\n{}", s.log_text());
    let seen = delivered(&s);
    assert_eq!(seen.len(), 200_000, "log:\n{}", s.log_text());
    for c in 0..4 {
        for i in [0, 49_999] {
            assert!(seen.contains(&format!("conn={c} seq={i}")));
        }
    }
    assert!(s.log_text().contains("Shutdown complete"));
}

#[test]
fn connections_waiting_in_the_backlog_are_drained_too() {
    let tcp = free_port();
    let mut s = Sluice::start(&config(tcp, "connection_limit = 1"));
    // Holds the only slot, sends nothing and never closes.
    let idle = TcpStream::connect(("127.0.0.1", tcp)).expect("connect");
    std::thread::sleep(Duration::from_millis(200));
    // These wait in the backlog: their bytes sit in kernel buffers until accepted.
    for c in 0..3 {
        send(tcp, c, 500);
    }
    let status = s.terminate(Duration::from_secs(30));
    assert!(status.success(), "exit {status:?}; log:\n{}", s.log_text());
    assert_eq!(delivered(&s).len(), 1500, "log:\n{}", s.log_text());
    drop(idle);
}

#[test]
fn health_reports_the_pipeline_and_its_components() {
    let tcp = free_port();
    let mut s = Sluice::start(&config(tcp, ""));
    let (code, body) = http_get(s.api, "/health").expect("health");
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["status"], "ok");
    assert_eq!(v["components"]["sources.in"], "running");
    assert_eq!(v["components"]["sinks.out"], "running");
    assert_eq!(http_get(s.api, "/nope").map(|r| r.0), Some(404));
    assert!(s.terminate(Duration::from_secs(10)).success());
}

#[test]
fn embedded_default_config_takes_logger_tcp_into_todays_file() {
    require_tool("logger");
    // The embedded default listens on fixed ports (5514, API 9598) and writes under the
    // working directory, exactly as a new user runs it.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = std::process::Command::new(bin())
        .arg("run")
        .current_dir(dir.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let api: std::net::SocketAddr = "127.0.0.1:9598".parse().expect("addr");
    assert!(wait_for(Duration::from_secs(10), || http_get(
        api, "/health"
    )
    .is_some_and(|(c, _)| c == 200)));
    let status = std::process::Command::new("logger")
        .args([
            "--server",
            "127.0.0.1",
            "--port",
            "5514",
            "--tcp",
            "hello from the default config",
        ])
        .status()
        .expect("logger");
    assert!(status.success());
    let file = dir.path().join(format!(
        "sluice-data/syslog-{}.jsonl",
        chrono::Utc::now().format("%Y-%m-%d")
    ));
    let arrived = wait_for(Duration::from_secs(3), || {
        std::fs::read_to_string(&file)
            .is_ok_and(|t| t.contains("\"message\":\"hello from the default config\""))
    });
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let exit = child.wait().expect("wait");
    assert!(arrived, "nothing in {}", file.display());
    assert!(exit.success());
}
