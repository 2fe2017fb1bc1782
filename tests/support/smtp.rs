//! aiosmtpd (PyPI, installed by `scripts/test-deps.sh` into `target/test-deps/smtp`)
//! as a real SMTP server on a free loopback port, run by `smtp_server.py` beside this
//! file: plain, or STARTTLS with AUTH, or answering the first mails 451. Each mail it
//! accepts is a JSON line in its output file.

use super::{free_port, wait_for};
use serde_json::Value as Json;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How the server is started.
#[derive(Default)]
pub struct SmtpOptions {
    /// STARTTLS with this certificate and key (then required).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// AUTH with `user:password`.
    pub auth: Option<String>,
    /// Answer the first this many mails 451.
    pub transient: u32,
    /// With `tls`: TLS from the first byte (SMTPS) instead of STARTTLS.
    pub implicit_tls: bool,
}

/// A running server; killed when dropped.
pub struct Smtp {
    child: Child,
    /// Its port.
    pub port: u16,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Smtp {
    /// Starts the server and waits until it listens.
    pub fn start(o: SmtpOptions) -> Smtp {
        let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-deps/smtp/bin/python");
        assert!(
            python.is_file(),
            "{} is missing; run the README's test command (scripts/test.sh), which installs aiosmtpd",
            python.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("mails.jsonl");
        let port = free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_server.py");
        let mut cmd = Command::new(python);
        cmd.arg(script)
            .args(["--port", &port.to_string()])
            .arg("--out")
            .arg(&out)
            .args(["--transient", &o.transient.to_string()]);
        if let Some((crt, key)) = &o.tls {
            cmd.arg("--tls-cert").arg(crt).arg("--tls-key").arg(key);
        }
        if o.implicit_tls {
            cmd.arg("--implicit-tls");
        }
        if let Some(a) = &o.auth {
            cmd.args(["--auth", a]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start smtp_server.py");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        BufReader::new(stdout).read_line(&mut line).expect("read");
        assert_eq!(line.trim(), "ready", "smtp_server.py did not start");
        assert!(wait_for(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        }));
        Smtp {
            child,
            port,
            out,
            _dir: dir,
        }
    }

    /// The mails accepted so far.
    pub fn mails(&self) -> Vec<Json> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
