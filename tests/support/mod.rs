//! Shared test harness: starts the real `sluice` binary on a temporary config with free
//! ports, talks to its API over real sockets, and checks the metric contract that every
//! component must honour (DESIGN.md §3).
#![allow(dead_code)]

pub mod alerts;
pub mod chat;
pub mod influx;
pub mod kafka;
pub mod moto;
pub mod receiver;
pub mod rsyslog;
pub mod seq;
pub mod smtp;

use serde_json::Value as Json;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_sluice")
}

/// A port nothing listens on right now (TCP and UDP), and never handed out before in this
/// test process: the kernel may give the same ephemeral port to two binds in a row once
/// the first listener is closed, and a test that asks for a source port and then an API
/// port must not get one port twice.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Writes each line with a newline, in one write, and flushes.
fn write_lines<L: AsRef<str>>(to: &mut impl Write, lines: impl IntoIterator<Item = L>) {
    let text: String = lines
        .into_iter()
        .map(|l| format!("{}\n", l.as_ref()))
        .collect();
    to.write_all(text.as_bytes()).expect("write");
    to.flush().expect("flush");
}

/// Sends SIGTERM to `child` (a clean stop: servers close their connections) and waits
/// for it; nothing when it is not running.
pub fn stop_child(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        let _ = c.wait();
    }
}

/// Stdout and stderr for a helper server, both appended to `path` (kept across
/// restarts, so a failure shows every run's log).
pub fn append_log(path: &Path) -> (Stdio, Stdio) {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("log");
    let err = log.try_clone().expect("log");
    (log.into(), err.into())
}

/// Polls `cond` until it holds or `timeout` passes.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    cond()
}

/// Fails the test with a clear message when an external program the suite relies on is
/// missing (the README's test command installs them).
pub fn require_tool(name: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false);
    assert!(found, "`{name}` is not installed; run the README's test command (scripts/test.sh), which installs it");
}

/// Runs the real `logrotate`, forced, on one config with its own state file; fails the
/// test with logrotate's complaint.
pub fn run_logrotate(conf: &Path, state: &Path) {
    require_tool("logrotate");
    let out = Command::new("logrotate")
        .arg("-f")
        .arg("-s")
        .arg(state)
        .arg(conf)
        .output()
        .expect("run logrotate");
    assert!(
        out.status.success(),
        "logrotate {}: {}",
        conf.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A config text with `{DIR}` and `{API}` filled in, and `data_dir` and `[api]` added
/// when it has no `[api]` table.
pub fn render_config(config: &str, dir: &Path, api: SocketAddr) -> String {
    let mut text = config
        .replace("{DIR}", &dir.display().to_string())
        .replace("{API}", &api.to_string());
    if !text.contains("[api]") {
        // `[api]` goes last, so top-level keys of the config stay top-level.
        text = format!(
            "data_dir = \"{}\"\n{text}\n[api]\naddress = \"{api}\"\n",
            dir.display()
        );
    }
    text
}

/// A running sluice process.
pub struct Sluice {
    child: Option<Child>,
    /// Where the API listens.
    pub api: SocketAddr,
    /// The temporary directory holding its config and outputs.
    pub dir: tempfile::TempDir,
    log: PathBuf,
}

impl Sluice {
    /// Starts sluice on `config`, where `{DIR}` stands for the temp dir and `{API}` for a
    /// free API address (an `[api]` table is added when the config has none). Waits until
    /// `/health` says the pipeline runs.
    pub fn start(config: &str) -> Sluice {
        Self::start_with(config, |_| {})
    }

    /// Like [`Sluice::start`], letting the caller adjust the command (stdin, env).
    pub fn start_with(config: &str, adjust: impl FnOnce(&mut Command)) -> Sluice {
        let dir = tempfile::tempdir().expect("tempdir");
        let api: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let cfg = dir.path().join("sluice.toml");
        std::fs::write(&cfg, render_config(config, dir.path(), api)).expect("write config");
        Self::spawn(dir, api, &[OsString::from("--config"), cfg.into()], adjust)
    }

    /// Saves a new config over the one [`Sluice::start`] wrote, as an editor does: the
    /// new text goes to a temporary file renamed over the old one. Same placeholders.
    pub fn save_config(&self, config: &str) {
        let tmp = self.path(".sluice.toml.tmp");
        std::fs::write(&tmp, render_config(config, self.dir.path(), self.api)).expect("write");
        std::fs::rename(&tmp, self.path("sluice.toml")).expect("rename over the config");
    }

    /// Like [`Sluice::start`] with stdin piped, `lines` written to it (each with a
    /// newline) and flushed. Stdin stays open, so sluice keeps running, until the
    /// returned handle is dropped.
    pub fn start_piped<L: AsRef<str>>(
        config: &str,
        lines: impl IntoIterator<Item = L>,
    ) -> (Sluice, std::process::ChildStdin) {
        let mut s = Self::start_with(config, |c| {
            c.stdin(Stdio::piped());
        });
        let mut stdin = s.child().stdin.take().expect("stdin");
        write_lines(&mut stdin, lines);
        (s, stdin)
    }

    /// Writes `lines` (each with a newline) to the stdin of a sluice started with
    /// `Stdio::piped()` and closes it, so a stdin pipeline drains and exits.
    pub fn feed<L: AsRef<str>>(&mut self, lines: impl IntoIterator<Item = L>) {
        let mut stdin = self.child().stdin.take().expect("stdin was piped");
        write_lines(&mut stdin, lines);
    }

    /// Starts sluice on config files as an operator wrote them (any format, `${VAR}`s
    /// set through `adjust`), plus a file of its own that sets `data_dir` and the API
    /// address: the way Vector, too, merges several `--config` files.
    pub fn start_files(files: &[&Path], adjust: impl FnOnce(&mut Command, &Path)) -> Sluice {
        let dir = tempfile::tempdir().expect("tempdir");
        let api: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let base = dir.path().join("base.toml");
        std::fs::write(
            &base,
            format!(
                "data_dir = \"{}\"\n[api]\naddress = \"{api}\"\n",
                dir.path().display()
            ),
        )
        .expect("write base config");
        let mut args = Vec::new();
        for f in files.iter().copied().chain([base.as_path()]) {
            args.push(OsString::from("--config"));
            args.push(f.as_os_str().to_owned());
        }
        let path = dir.path().to_path_buf();
        Self::spawn(dir, api, &args, |c| adjust(c, &path))
    }

    fn spawn(
        dir: tempfile::TempDir,
        api: SocketAddr,
        args: &[OsString],
        adjust: impl FnOnce(&mut Command),
    ) -> Sluice {
        let log = dir.path().join("sluice.log");
        let mut cmd = Command::new(bin());
        cmd.arg("run")
            .args(args)
            .env("SLUICE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(
                // Appended: a restarted sluice (`restart`) keeps the earlier log.
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .expect("log file"),
            );
        adjust(&mut cmd);
        let child = cmd.spawn().expect("spawn sluice");
        let mut s = Sluice {
            child: Some(child),
            api,
            dir,
            log,
        };
        // A pipeline whose sources finish quickly may exit before /health is polled;
        // the caller then checks the exit status.
        let up = wait_for(Duration::from_secs(20), || {
            s.exited().is_some_and(|st| st.success())
                || http_get(api, "/health").is_some_and(|(c, _)| c == 200)
        });
        assert!(
            up,
            "sluice did not become healthy; its log:\n{}",
            s.log_text()
        );
        s
    }

    /// A path inside the temp dir.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// What sluice logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The exit status, if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// The `/metrics` text.
    pub fn metrics(&self) -> String {
        http_get(self.api, "/metrics")
            .map(|(_, b)| b)
            .unwrap_or_default()
    }

    /// Sends SIGTERM and waits for exit (at most `timeout`).
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        let pid = self.child.as_ref().map(|c| c.id()).expect("running");
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
        self.wait(timeout)
    }

    /// Waits for the process to exit on its own.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let mut status = None;
        wait_for(timeout, || {
            status = self.exited();
            status.is_some()
        });
        match status {
            Some(s) => s,
            None => {
                let log = self.log_text();
                if let Some(c) = self.child.as_mut() {
                    let _ = c.kill();
                }
                panic!("sluice did not exit within {timeout:?}; its log:\n{log}");
            }
        }
    }

    /// Kills the process with SIGKILL, as a crash or the OOM killer would, and reaps it.
    pub fn kill(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts sluice again on the same directory, config and API address, after it
    /// exited or was killed: what a restart by systemd does.
    pub fn restart(self) -> Sluice {
        let mut this = self;
        this.kill();
        this.child = None;
        let cfg = this.path("sluice.toml");
        // Move the directory out; `this` is dropped without a process.
        let dir = std::mem::replace(&mut this.dir, tempfile::tempdir().expect("tempdir"));
        let api = this.api;
        Self::spawn(dir, api, &[OsString::from("--config"), cfg.into()], |_| {})
    }

    /// The process ID, to signal it.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).expect("running")
    }

    /// Takes the child, e.g. to read its stdout.
    pub fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("running")
    }
}

impl Drop for Sluice {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            if c.try_wait().ok().flatten().is_none() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// A plain HTTP/1.1 GET: status code and body.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let code = resp.split_whitespace().nth(1)?.parse().ok()?;
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((code, body))
}

/// A POST through the `ureq` library: status and body, whatever the status.
pub fn http_post(url: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let mut req = ureq::post(url).timeout(Duration::from_secs(30));
    for (k, v) in headers {
        req = req.set(k, v);
    }
    match req.send_bytes(body) {
        Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
        Err(e) => panic!("request to {url} failed: {e}"),
    }
}

/// Every complete JSON line in the files matching `prefix*` in `dir`.
pub fn read_jsonl(dir: &Path, prefix: &str) -> Vec<Json> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
            out.push(
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("bad JSON line in {}: {e}: {line}", f.display())),
            );
        }
    }
    out
}

/// Counts complete lines of the files matching `prefix*` in `dir` without parsing them.
pub fn count_lines(dir: &Path, prefix: &str) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .map(|f| {
            std::fs::read(f)
                .map(|b| b.iter().filter(|c| **c == b'\n').count())
                .unwrap_or(0)
        })
        .sum()
}

/// The value of one sample in Prometheus text, matched by name and a subset of labels.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            let n = l.split(['{', ' ']).next().unwrap_or_default();
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .reduce(|a, b| a + b)
}

/// A component's `sluice_component_errors_total` for one `error_type` in `text`.
pub fn errors_of(text: &str, id: &str, error_type: &str) -> Option<f64> {
    metric(
        text,
        "sluice_component_errors_total",
        &[("component_id", id), ("error_type", error_type)],
    )
}

/// A component's `sluice_component_sent_events_total` right now, 0 before its first.
pub fn sent_events(s: &Sluice, id: &str) -> f64 {
    metric(
        &s.metrics(),
        "sluice_component_sent_events_total",
        &[("component_id", id)],
    )
    .unwrap_or(0.0)
}

/// The contract of DESIGN.md §3: every component exports these series with its
/// `component_id`, `component_kind` and `component_type`, and after a drain its events
/// add up: every event it received was sent on or discarded, none vanished in between
/// (`received = sent + discarded`; a transform whose outputs overlap may send more).
/// Returns the samples so the caller can assert on values. Call it once the component
/// has finished what it took in; [`component_metrics_in_flight`] is for the moments
/// when events are knowingly still held (a sink whose destination is down).
pub fn assert_component_metrics(text: &str, id: &str, kind: &str, ty: &str) -> ComponentSample {
    let s = component_metrics_in_flight(text, id, kind, ty);
    assert!(
        s.received_events == s.sent_events + s.discarded
            || (kind == "transform" && s.sent_events + s.discarded > s.received_events),
        "{kind} {id} ({ty}) does not add up: received {} != sent {} + discarded {}\n{text}",
        s.received_events,
        s.sent_events,
        s.discarded
    );
    s
}

/// The contract's series of one component without the accounting identity, for a
/// component that still holds events on purpose; returns the samples.
pub fn component_metrics_in_flight(text: &str, id: &str, kind: &str, ty: &str) -> ComponentSample {
    let l = [
        ("component_id", id),
        ("component_kind", kind),
        ("component_type", ty),
    ];
    let get = |name: &str| {
        metric(text, name, &l)
            .unwrap_or_else(|| panic!("{name} missing for {kind} {id} ({ty}) in:\n{text}"))
    };
    let s = ComponentSample {
        received_events: get("sluice_component_received_events_total"),
        sent_events: get("sluice_component_sent_events_total"),
        received_bytes: get("sluice_component_received_bytes_total"),
        sent_bytes: get("sluice_component_sent_bytes_total"),
        discarded: get("sluice_component_discarded_events_total"),
    };
    if kind == "sink" {
        get("sluice_buffer_events");
        get("sluice_buffer_max_events");
    }
    s
}

/// One component's contract counters.
#[derive(Debug)]
pub struct ComponentSample {
    pub received_events: f64,
    pub sent_events: f64,
    pub received_bytes: f64,
    pub sent_bytes: f64,
    pub discarded: f64,
}

/// Runs `promtool check metrics` on an exposition and fails with its output if it objects.
pub fn promtool_check(text: &str) {
    require_tool("promtool");
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("promtool output");
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Certificate files made with `openssl`: a private CA and a `localhost` server
/// certificate it signed, as an operator with an in-house CA would have them.
pub struct TestCerts {
    /// The CA certificate (what clients trust).
    pub ca: PathBuf,
    /// The server's certificate.
    pub crt: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
    /// A client certificate signed by the same CA (for mutual TLS).
    pub client_crt: PathBuf,
    /// Its key.
    pub client_key: PathBuf,
    _dir: tempfile::TempDir,
}

/// Makes a CA and a server certificate for `localhost` and 127.0.0.1.
pub fn test_certs() -> TestCerts {
    require_tool("openssl");
    let dir = tempfile::tempdir().expect("tempdir");
    let p = |n: &str| dir.path().join(n);
    let ext = p("ext.cnf");
    std::fs::write(
        &ext,
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .expect("ext file");
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .current_dir(dir.path())
            .args(args)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=sluice test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "key.pem",
        "-out",
        "server.csr",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "crt.pem",
    ]);
    std::fs::write(
        p("client.cnf"),
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    )
    .expect("client ext file");
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=sluice client",
        "-keyout",
        "client.key",
        "-out",
        "client.csr",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "client.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "client.cnf",
        "-out",
        "client.pem",
    ]);
    TestCerts {
        ca: p("ca.pem"),
        crt: p("crt.pem"),
        key: p("key.pem"),
        client_crt: p("client.pem"),
        client_key: p("client.key"),
        _dir: dir,
    }
}

/// A real HTTP proxy (tinyproxy) on a free port, requiring basic auth `user:pass`,
/// logging every request it forwards; stopped when dropped.
pub struct Tinyproxy {
    /// Its port on 127.0.0.1.
    pub port: u16,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tinyproxy {
    /// Starts it and waits until it listens.
    pub fn start() -> Tinyproxy {
        require_tool("tinyproxy");
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let log = dir.path().join("tinyproxy.log");
        let conf = dir.path().join("tinyproxy.conf");
        // No ConnectPort line: CONNECT to any port (the test servers' are random).
        std::fs::write(
            &conf,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 60\nMaxClients 64\nAllow 127.0.0.1\n\
                 BasicAuth user pass\nLogFile \"{}\"\nLogLevel Info\n",
                log.display()
            ),
        )
        .expect("tinyproxy.conf");
        let child = Command::new("tinyproxy")
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn tinyproxy");
        let up = wait_for(Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(up, "tinyproxy did not listen on {port}");
        Tinyproxy {
            port,
            child,
            log,
            _dir: dir,
        }
    }

    /// What it logged.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
