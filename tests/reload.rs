//! Changing the config of a running sluice: saved by an editor (rename over the file),
//! swapped by Kubernetes (the `..data` symlink of a ConfigMap), SIGHUP and
//! `POST /-/reload`. While TCP clients keep sending syslog, a reload rebuilds only what
//! changed and every message arrives exactly once across the old and new sink paths; an
//! invalid config is rejected and counted; a config that cannot start rolls back.

use crate::support;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::seq::*;
use support::*;

fn reloads(s: &Sluice, result: &str) -> f64 {
    metric(
        &s.metrics(),
        "sluice_config_reloads_total",
        &[("result", result)],
    )
    .unwrap_or(0.0)
}

/// Waits until `result` has been counted `n` times; fails with the log.
fn await_reloads(s: &Sluice, result: &str, n: f64) {
    assert!(
        wait_for(Duration::from_secs(15), || reloads(s, result) >= n),
        "no {n} reloads `{result}` (applied {}, rejected {}, failed {}); log:\n{}",
        reloads(s, "applied"),
        reloads(s, "rejected"),
        reloads(s, "failed"),
        s.log_text()
    );
}

/// Sequence numbers in every `out*.jsonl` of the test's directory.
fn delivered_all(s: &Sluice) -> BTreeMap<usize, usize> {
    let mut all = BTreeMap::new();
    for e in std::fs::read_dir(s.dir.path()).expect("dir").flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("out") && name.ends_with(".jsonl") {
            for (k, v) in delivered(&e.path()) {
                *all.entry(k).or_insert(0) += v;
            }
        }
    }
    all
}

/// One pipeline in the variants the reload test moves through.
struct Shape<'a> {
    port: u16,
    max_length: usize,
    /// The file sink's file under the test directory.
    path: &'a str,
    /// Whether a `remap` transform sits between the source and the file sink.
    transform: bool,
    /// Whether a second sink (`blackhole`) also reads the source.
    spare: bool,
}

impl Shape<'_> {
    fn config(&self) -> String {
        let mut c = format!(
            r#"
[sources.in]
type = "syslog"
mode = "tcp"
address = "127.0.0.1:{}"
max_length = {}
"#,
            self.port, self.max_length
        );
        if self.transform {
            c.push_str(
                r#"
[transforms.tag]
type = "remap"
inputs = ["in"]
source = ".reloaded = true"
"#,
            );
        }
        c.push_str(&format!(
            r#"
[sinks.out]
type = "file"
inputs = ["{}"]
path = "{{DIR}}/{}"
"#,
            if self.transform { "tag" } else { "in" },
            self.path
        ));
        if self.spare {
            c.push_str("\n[sinks.spare]\ntype = \"blackhole\"\ninputs = [\"in\"]\n");
        }
        c
    }
}

/// 4 clients, each sending its own range of `per_client` numbered lines in writes of 250
/// at up to `rate` lines per second, and opening a new connection every 5,000 lines, so
/// connections are made and closed across every reload. Any refused or reset connection
/// is recorded.
fn clients(
    port: u16,
    per_client: usize,
    rate: usize,
) -> (Vec<std::thread::JoinHandle<()>>, Arc<Mutex<Vec<String>>>) {
    let errors = Arc::new(Mutex::new(Vec::new()));
    let handles = (0..4)
        .map(|c| {
            let errors = errors.clone();
            std::thread::spawn(move || {
                let start = std::time::Instant::now();
                let mut sent = 0;
                let mut conn: Option<TcpStream> = None;
                while sent < per_client {
                    if sent % 5000 == 0 {
                        conn = match TcpStream::connect(("127.0.0.1", port)) {
                            Ok(s) => Some(s),
                            Err(e) => {
                                errors
                                    .lock()
                                    .unwrap()
                                    .push(format!("client {c} connect: {e}"));
                                return;
                            }
                        };
                    }
                    let text = numbered_syslog(c * per_client + sent, 250);
                    if let Err(e) = conn
                        .as_mut()
                        .map(|s| s.write_all(text.as_bytes()))
                        .unwrap_or(Ok(()))
                    {
                        errors
                            .lock()
                            .unwrap()
                            .push(format!("client {c} write at {sent}: {e}"));
                        return;
                    }
                    sent += 250;
                    let due = Duration::from_secs_f64(sent as f64 / rate as f64);
                    if let Some(wait) = due.checked_sub(start.elapsed()) {
                        std::thread::sleep(wait);
                    }
                }
            })
        })
        .collect();
    (handles, errors)
}

#[test]
fn reloads_under_load_lose_and_double_nothing_and_refuse_no_client() {
    let port = free_port();
    let mut shape = Shape {
        port,
        max_length: 102_400,
        path: "out-a.jsonl",
        transform: false,
        spare: true,
    };
    let s = Sluice::start(&shape.config());
    let per_client = 50_000;
    let (handles, errors) = clients(port, per_client, 6_000);
    let step = |s: &Sluice, what: &str, config: String, applied: f64| {
        std::thread::sleep(Duration::from_millis(700));
        s.save_config(&config);
        await_reloads(s, "applied", applied);
        eprintln!("reloaded: {what}");
    };
    // The sink's path changes: its old instance drains into out-a, the new one writes
    // out-b.
    shape.path = "out-b.jsonl";
    step(&s, "sink path", shape.config(), 1.0);
    // A transform goes in between: the source and the sink are only rewired.
    shape.transform = true;
    step(&s, "transform added", shape.config(), 2.0);
    // A sink goes away.
    shape.spare = false;
    step(&s, "sink removed", shape.config(), 3.0);
    // An invalid save in the middle is rejected; everything runs on.
    std::thread::sleep(Duration::from_millis(700));
    s.save_config(
        &shape
            .config()
            .replace("inputs = [\"tag\"]", "inputs = [\"tga\"]"),
    );
    await_reloads(&s, "rejected", 1.0);
    // The source changes: its socket passes to its new instance.
    shape.max_length = 65_536;
    step(&s, "source max_length", shape.config(), 4.0);
    for h in handles {
        h.join().expect("client");
    }
    let total = 4 * per_client;
    let all_in = wait_for(Duration::from_secs(60), || delivered_all(&s).len() >= total);
    std::thread::sleep(Duration::from_millis(500));
    let errors = errors.lock().unwrap().clone();
    assert!(errors.is_empty(), "clients saw: {errors:?}");
    assert!(
        all_in,
        "{} of {total} arrived; log:\n{}",
        delivered_all(&s).len(),
        s.log_text()
    );
    assert_exactly_once(&delivered_all(&s), total, "across five reloads");
    let log = s.log_text();
    let reloaded: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Config reloaded."))
        .collect();
    eprintln!("{}", reloaded.join("\n"));
    assert_eq!(reloaded.len(), 4, "{log}");
    // Only what changed was rebuilt: inserting the transform rewired the source and the
    // sink without rebuilding either.
    assert!(
        reloaded[0].contains("changed=[\"sinks.out\"]"),
        "{}",
        reloaded[0]
    );
    assert!(
        reloaded[1].contains("added=[\"transforms.tag\"]")
            && reloaded[1].contains("changed=[]")
            && reloaded[1].contains("rewired=[\"sources.in\", \"sinks.out\"]"),
        "{}",
        reloaded[1]
    );
    assert!(
        reloaded[2].contains("removed=[\"sinks.spare\"]"),
        "{}",
        reloaded[2]
    );
    assert!(
        reloaded[3].contains("changed=[\"sources.in\"]"),
        "{}",
        reloaded[3]
    );
    assert!(log.contains("Config invalid: 1 problem:"), "{log}");
    assert!(
        log.contains("tga"),
        "the rejected reload names the bad input: {log}"
    );
    let m = s.metrics();
    assert_eq!(reloads(&s, "failed"), 0.0, "{log}");
    assert_eq!(
        metric(
            &m,
            "sluice_tcp_connections_total",
            &[("component_id", "in")]
        ),
        Some(40.0),
        "every connection of the clients was accepted"
    );
    promtool_check(&m);
    let (code, health) = http_get(s.api, "/health").expect("health");
    assert_eq!(code, 200);
    assert!(
        health.contains("\"transforms.tag\":\"running\""),
        "{health}"
    );
    assert!(
        !health.contains("sinks.spare"),
        "a removed sink is gone: {health}"
    );
    assert!(health.contains("\"last_reload\":{"), "{health}");
}

fn simple(port: u16, path: &str) -> String {
    Shape {
        port,
        max_length: 102_400,
        path,
        transform: false,
        spare: false,
    }
    .config()
}

/// Sends 10 lines starting at `from` and waits until they are in `path`.
fn lines_reach(s: &Sluice, port: u16, from: usize, path: &str) {
    send_numbered(port, from, 10);
    let out = s.path(path);
    assert!(
        wait_for(Duration::from_secs(10), || (from..from + 10)
            .all(|i| delivered(&out).contains_key(&i))),
        "lines {from}.. did not reach {path}; log:\n{}",
        s.log_text()
    );
}

#[test]
fn a_configmap_symlink_swap_is_applied() {
    let port = free_port();
    let conf = tempfile::tempdir().expect("tempdir");
    let out = tempfile::tempdir().expect("tempdir");
    // A ConfigMap volume: sluice.toml -> ..data/sluice.toml, ..data -> ..v1.
    let version = |name: &str, path: &str| {
        let d = conf.path().join(name);
        std::fs::create_dir(&d).expect("version dir");
        let text = simple(port, path).replace("{DIR}", &out.path().display().to_string());
        std::fs::write(d.join("sluice.toml"), text).expect("write");
    };
    version("..v1", "out-1.jsonl");
    std::os::unix::fs::symlink("..v1", conf.path().join("..data")).expect("symlink");
    std::os::unix::fs::symlink("..data/sluice.toml", conf.path().join("sluice.toml"))
        .expect("symlink");
    let s = Sluice::start_files(&[&conf.path().join("sluice.toml")], |_, _| {});
    let lines = |from: usize, path: &str| {
        send_numbered(port, from, 10);
        let p = out.path().join(path);
        assert!(
            wait_for(Duration::from_secs(10), || (from..from + 10)
                .all(|i| delivered(&p).contains_key(&i))),
            "lines {from}.. did not reach {path}; log:\n{}",
            s.log_text()
        );
    };
    lines(0, "out-1.jsonl");
    // What the kubelet does: a new version, a new symlink renamed over `..data`.
    version("..v2", "out-2.jsonl");
    std::os::unix::fs::symlink("..v2", conf.path().join("..data_tmp")).expect("symlink");
    std::fs::rename(conf.path().join("..data_tmp"), conf.path().join("..data")).expect("swap");
    await_reloads(&s, "applied", 1.0);
    lines(100, "out-2.jsonl");
}

#[test]
fn sighup_reloads_and_the_watcher_can_be_turned_off() {
    let port = free_port();
    let s = Sluice::start_with(&simple(port, "out-1.jsonl"), |c| {
        c.arg("--no-watch-config");
    });
    lines_reach(&s, port, 0, "out-1.jsonl");
    s.save_config(&simple(port, "out-2.jsonl"));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        reloads(&s, "applied"),
        0.0,
        "--no-watch-config still watched"
    );
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &s.pid().to_string()])
        .status()
        .expect("kill");
    assert!(hup.success());
    await_reloads(&s, "applied", 1.0);
    lines_reach(&s, port, 100, "out-2.jsonl");
    assert!(
        s.log_text().contains("trigger=\"SIGHUP\""),
        "{}",
        s.log_text()
    );
}

#[test]
fn post_reload_answers_with_the_outcome() {
    let port = free_port();
    let s = Sluice::start_with(&simple(port, "out-1.jsonl"), |c| {
        c.arg("--no-watch-config");
    });
    let url = format!("http://{}/-/reload", s.api);
    let (code, body) = http_post(&url, &[], b"");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"unchanged\""), "{body}");
    s.save_config(&simple(port, "out-2.jsonl"));
    let (code, body) = http_post(&url, &[], b"");
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("\"applied\"") && body.contains("sinks.out"),
        "{body}"
    );
    lines_reach(&s, port, 0, "out-2.jsonl");
    s.save_config(&simple(port, "out-3.jsonl").replace("type = \"file\"", "type = \"fiel\""));
    let (code, body) = http_post(&url, &[], b"");
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("fiel"),
        "the answer names the problem: {body}"
    );
    assert_eq!(reloads(&s, "rejected"), 1.0);
    lines_reach(&s, port, 100, "out-2.jsonl");
}

#[test]
fn a_config_that_cannot_start_rolls_back_and_says_why() {
    let port = free_port();
    let s = Sluice::start(&simple(port, "out-1.jsonl"));
    lines_reach(&s, port, 0, "out-1.jsonl");
    // Another program holds the port the new source wants.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let busy = taken.local_addr().expect("addr").port();
    let with_second = format!(
        "{}\n[sources.second]\ntype = \"syslog\"\nmode = \"tcp\"\naddress = \"127.0.0.1:{busy}\"\n",
        simple(port, "out-2.jsonl")
    )
    .replace("inputs = [\"in\"]", "inputs = [\"in\", \"second\"]");
    s.save_config(&with_second);
    await_reloads(&s, "failed", 1.0);
    let log = s.log_text();
    assert!(log.contains("[sources.second] failed to start"), "{log}");
    assert!(log.contains("previous pipeline runs on unchanged"), "{log}");
    // Nothing changed: the sink still writes out-1.
    lines_reach(&s, port, 100, "out-1.jsonl");
    assert!(!s.path("out-2.jsonl").exists());
}

/// A local socket source (`/dev/log`) changed by a reload keeps its socket: `logger`
/// writing throughout never finds the path missing, and every line arrives once.
#[test]
fn a_changed_unix_socket_source_keeps_its_socket_through_a_reload() {
    require_tool("logger");
    let conf = |max_length: usize| {
        format!(
            r#"
[sources.devlog]
type = "syslog"
mode = "unix"
path = "{{DIR}}/log.sock"
max_length = {max_length}

[sinks.out]
type = "file"
inputs = ["devlog"]
path = "{{DIR}}/out.jsonl"
"#
        )
    };
    let s = Sluice::start(&conf(102400));
    let sock = s.path("log.sock");
    assert!(wait_for(Duration::from_secs(10), || sock.exists()));
    // One logger process, one datagram per stdin line, reporting any socket error.
    let mut logger = std::process::Command::new("logger")
        .args(["--socket-errors=on", "-t", "app", "-u"])
        .arg(&sock)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("logger");
    let mut stdin = logger.stdin.take().expect("stdin");
    // Lines go on until well after the reload was applied.
    let mut chunk = 0;
    let mut after = None;
    while after.is_none_or(|a| chunk < a + 10) {
        let text: String = (chunk * 1000..chunk * 1000 + 1000)
            .map(|i| format!("seq={i:08} x\n"))
            .collect();
        if stdin.write_all(text.as_bytes()).is_err() {
            // logger quit: it says why below.
            break;
        }
        chunk += 1;
        if chunk == 5 {
            s.save_config(&conf(8192));
        }
        if after.is_none() && reloads(&s, "applied") >= 1.0 {
            after = Some(chunk);
        }
        assert!(
            chunk < 1000,
            "the reload was never applied:\n{}",
            s.log_text()
        );
    }
    let total = chunk * 1000;
    drop(stdin);
    let out = logger.wait_with_output().expect("logger");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "logger saw the socket fail: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = s.path("out.jsonl");
    assert!(
        wait_for(Duration::from_secs(20), || delivered(&path).len() >= total),
        "{} of {total} arrived; log:\n{}",
        delivered(&path).len(),
        s.log_text()
    );
    assert_exactly_once(&delivered(&path), total, "unix socket reload");
}
