//! A real InfluxDB 1.x (`influxd` from Debian's `influxdb` package) on free loopback
//! ports with a temporary data directory, for the `influxdb` sink's tests.

use super::{free_port, require_tool, wait_for};
use serde_json::Value as Json;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `influxd`; stopped when dropped.
pub struct Influxd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl Influxd {
    /// Starts influxd and creates `database`.
    pub fn start(database: &str) -> Influxd {
        require_tool("influxd");
        let dir = tempfile::tempdir().expect("tempdir");
        let (http, rpc) = (free_port(), free_port());
        let d = dir.path().display();
        let config = dir.path().join("influxdb.conf");
        std::fs::write(
            &config,
            format!(
                "reporting-disabled = true\nbind-address = \"127.0.0.1:{rpc}\"\n[meta]\n  dir = \"{d}/meta\"\n[data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  query-log-enabled = false\n[http]\n  bind-address = \"127.0.0.1:{http}\"\n  log-enabled = false\n[monitor]\n  store-enabled = false\n"
            ),
        )
        .expect("config");
        let mut db = Influxd {
            child: None,
            dir,
            config,
            url: format!("http://127.0.0.1:{http}"),
        };
        db.restart();
        db.query_post(&format!("CREATE DATABASE \"{database}\""));
        db
    }

    /// Starts (again) on the same data and ports.
    pub fn restart(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("influxd.log")).expect("log");
        self.child = Some(
            Command::new("influxd")
                .arg("-config")
                .arg(&self.config)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("influxd"),
        );
        let url = self.url.clone();
        assert!(
            wait_for(Duration::from_secs(30), || ureq::get(&format!(
                "{url}/ping"
            ))
            .call()
            .is_ok()),
            "influxd did not come up"
        );
    }

    /// Stops it (as an outage would).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn query_post(&self, q: &str) -> Json {
        ureq::post(&format!("{}/query", self.url))
            .send_form(&[("q", q)])
            .expect("query")
            .into_string()
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .expect("json")
    }

    /// Runs an InfluxQL query against `database`; the first series' rows as
    /// (columns, values).
    pub fn query(&self, database: &str, q: &str) -> (Vec<String>, Vec<Vec<Json>>) {
        let r: Json = ureq::get(&format!("{}/query", self.url))
            .query("db", database)
            .query("q", q)
            .query("epoch", "ns")
            .call()
            .expect("query")
            .into_string()
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .expect("json");
        let series = &r["results"][0]["series"][0];
        let columns = series["columns"]
            .as_array()
            .map(|c| {
                c.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let values = series["values"]
            .as_array()
            .map(|rows| rows.iter().filter_map(|r| r.as_array().cloned()).collect())
            .unwrap_or_default();
        (columns, values)
    }
}

impl Drop for Influxd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A real VictoriaMetrics (Debian `victoria-metrics`) on a free loopback port with a
/// temporary data directory: the v2 write API's other server. Stopped when dropped.
pub struct VictoriaMetrics {
    child: Child,
    _dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl VictoriaMetrics {
    /// Starts it and waits until it answers.
    pub fn start() -> VictoriaMetrics {
        require_tool("victoria-metrics");
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let child = Command::new("victoria-metrics")
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg(format!("-storageDataPath={}", dir.path().display()))
            .arg("-retentionPeriod=100y")
            .arg("-loggerLevel=ERROR")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("victoria-metrics");
        let url = format!("http://127.0.0.1:{port}");
        assert!(
            wait_for(Duration::from_secs(30), || ureq::get(&format!(
                "{url}/health"
            ))
            .call()
            .is_ok()),
            "victoria-metrics did not come up"
        );
        VictoriaMetrics {
            child,
            _dir: dir,
            url,
        }
    }

    /// Every series matching `selector` with its samples, as the export API gives them
    /// (one JSON object per series: `metric`, `values`, `timestamps`).
    pub fn export(&self, selector: &str) -> Vec<Json> {
        let _ = ureq::get(&format!("{}/internal/force_flush", self.url)).call();
        let text = ureq::get(&format!("{}/api/v1/export", self.url))
            .query("match[]", selector)
            .call()
            .ok()
            .and_then(|r| r.into_string().ok())
            .unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for VictoriaMetrics {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
