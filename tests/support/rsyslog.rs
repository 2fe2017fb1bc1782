//! A real rsyslog (`rsyslogd` from Debian's `rsyslog` and `rsyslog-gnutls` packages,
//! unpacked by `scripts/test.sh` into `target/test-deps/rsyslog`) receiving on a free
//! loopback port over TCP, UDP or TLS, writing each message twice: as received
//! (`%rawmsg%`) and as the fields rsyslog parsed from it (JSON).

use super::{free_port, wait_for, TestCerts};
use serde_json::Value as Json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How rsyslog listens.
pub enum Listen<'a> {
    /// `imtcp`, both framings.
    Tcp,
    /// `imudp`.
    Udp,
    /// `imtcp` with the `gtls` driver; clients must present a certificate signed by the
    /// test CA when `client_certificates` is true.
    Tls {
        /// The server certificate and the CA.
        certs: &'a TestCerts,
        /// Require client certificates (`x509/certvalid`).
        client_certificates: bool,
    },
}

/// Where `scripts/test.sh` unpacked rsyslog.
pub fn root() -> PathBuf {
    std::env::var_os("SLUICE_RSYSLOG_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-deps/rsyslog"))
}

fn modules_dir(root: &Path) -> PathBuf {
    let lib = root.join("usr/lib");
    std::fs::read_dir(&lib)
        .ok()
        .and_then(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path().join("rsyslog"))
                .find(|p| p.join("imtcp.so").is_file())
        })
        .unwrap_or_else(|| lib.join("rsyslog"))
}

/// A running rsyslogd; stopped when dropped.
pub struct Rsyslog {
    child: Option<Child>,
    dir: tempfile::TempDir,
    conf: PathBuf,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    udp: bool,
}

impl Rsyslog {
    /// Starts rsyslogd listening as `listen`; waits until its socket is bound.
    pub fn start(listen: Listen<'_>) -> Rsyslog {
        let root = root();
        let rsyslogd = root.join("usr/sbin/rsyslogd");
        assert!(
            rsyslogd.is_file(),
            "{} is missing; run the README's test command (scripts/test.sh), which unpacks rsyslog there",
            rsyslogd.display()
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let d = dir.path().display();
        std::fs::create_dir_all(dir.path().join("spool")).expect("spool");
        let (global_tls, input) = match &listen {
            Listen::Tcp => (
                String::new(),
                format!("module(load=\"imtcp\")\ninput(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\")"),
            ),
            Listen::Udp => (
                String::new(),
                format!("module(load=\"imudp\")\ninput(type=\"imudp\" address=\"127.0.0.1\" port=\"{port}\")"),
            ),
            Listen::Tls {
                certs,
                client_certificates,
            } => (
                format!(
                    " defaultNetstreamDriver=\"gtls\" defaultNetstreamDriverCAFile=\"{}\" defaultNetstreamDriverCertFile=\"{}\" defaultNetstreamDriverKeyFile=\"{}\"",
                    certs.ca.display(),
                    certs.crt.display(),
                    certs.key.display()
                ),
                format!(
                    "module(load=\"imtcp\" streamDriver.name=\"gtls\" streamDriver.mode=\"1\" streamDriver.authMode=\"{}\")\ninput(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\")",
                    if *client_certificates { "x509/certvalid" } else { "anon" }
                ),
            ),
        };
        let conf = dir.path().join("rsyslog.conf");
        std::fs::write(
            &conf,
            format!(
                r#"global(workDirectory="{d}/spool" maxMessageSize="64k"{global_tls})
{input}
template(name="raw" type="string" string="%rawmsg%\n")
template(name="fields" type="list") {{
  constant(value="{{\"pri\":\"") property(name="pri" format="json")
  constant(value="\",\"facility\":\"") property(name="syslogfacility-text" format="json")
  constant(value="\",\"severity\":\"") property(name="syslogseverity-text" format="json")
  constant(value="\",\"timestamp\":\"") property(name="timereported" dateFormat="rfc3339" format="json")
  constant(value="\",\"hostname\":\"") property(name="hostname" format="json")
  constant(value="\",\"appname\":\"") property(name="app-name" format="json")
  constant(value="\",\"procid\":\"") property(name="procid" format="json")
  constant(value="\",\"msgid\":\"") property(name="msgid" format="json")
  constant(value="\",\"sd\":\"") property(name="structured-data" format="json")
  constant(value="\",\"msg\":\"") property(name="msg" format="json")
  constant(value="\"}}\n")
}}
action(type="omfile" file="{d}/raw.log" template="raw")
action(type="omfile" file="{d}/fields.jsonl" template="fields")
"#
            ),
        )
        .expect("rsyslog.conf");
        let mut r = Rsyslog {
            child: None,
            dir,
            conf,
            port,
            udp: matches!(listen, Listen::Udp),
        };
        r.restart();
        r
    }

    /// Starts rsyslogd (again) on the same config, port and output files.
    pub fn restart(&mut self) {
        let root = root();
        let (log, err) = super::append_log(&self.dir.path().join("rsyslogd.log"));
        self.child = Some(
            Command::new(root.join("usr/sbin/rsyslogd"))
                .arg("-n")
                .arg("-f")
                .arg(&self.conf)
                .arg("-M")
                .arg(modules_dir(&root))
                .arg("-i")
                .arg(self.dir.path().join("rsyslogd.pid"))
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(err)
                .spawn()
                .expect("rsyslogd"),
        );
        let (port, udp) = (self.port, self.udp);
        assert!(
            wait_for(Duration::from_secs(20), || bound(port, udp)),
            "rsyslogd did not bind 127.0.0.1:{port}: {}",
            self.log_text()
        );
    }

    /// Stops rsyslogd with SIGTERM (it closes its connections) and waits for it.
    pub fn stop(&mut self) {
        super::stop_child(&mut self.child);
    }

    /// What rsyslogd said.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("rsyslogd.log")).unwrap_or_default()
    }

    /// Each message as rsyslog received it.
    pub fn raw(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("raw.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The fields rsyslog parsed from each message.
    pub fn fields(&self) -> Vec<Json> {
        std::fs::read_to_string(self.dir.path().join("fields.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Whether something has bound 127.0.0.1:`port` (listening, for TCP), per /proc/net.
fn bound(port: u16, udp: bool) -> bool {
    let table = if udp {
        "/proc/net/udp"
    } else {
        "/proc/net/tcp"
    };
    let want = format!("0100007F:{port:04X}");
    std::fs::read_to_string(table)
        .unwrap_or_default()
        .lines()
        .skip(1)
        .any(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols.get(1) == Some(&want.as_str()) && (udp || cols.get(3) == Some(&"0A"))
        })
}
