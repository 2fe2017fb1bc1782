//! Traffic for the alert tests: RFC 5424 error lines over TCP from chosen (host, app)
//! pairs, once or kept up for a while so a count rule stays over its threshold.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Sends `n` error lines (severity `err`) from each (host, app) in one connection.
pub fn send_errors(tcp: u16, from: &[(&str, &str)], n: usize) {
    let mut c = TcpStream::connect(("127.0.0.1", tcp)).expect("connect");
    let mut text = String::new();
    for (h, app) in from {
        for i in 0..n {
            text.push_str(&format!("<11>1 - {h} {app} - - - error {i}\n"));
        }
    }
    c.write_all(text.as_bytes()).expect("send");
}

/// Sends 10 error lines from each (host, app) every 300 ms for `secs`.
pub fn keep_firing(tcp: u16, from: &[(&str, &str)], secs: f64) {
    let end = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < end {
        send_errors(tcp, from, 10);
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The same app on each host.
pub fn hosts<'a>(hosts: &[&'a str], app: &'a str) -> Vec<(&'a str, &'a str)> {
    hosts.iter().map(|h| (*h, app)).collect()
}

/// The alert tests' pipeline: syslog over TCP on `tcp` → an `alert` transform `alerts`
/// with one rule `HighErrorRate` (its other keys are `rule`), evaluated every 0.2 s,
/// notifying with timings of fractions of a second (plus the keys in `notify`) → the
/// sink tables in `sinks`; the API on a free port.
pub fn pipeline(
    data_dir: &std::path::Path,
    tcp: u16,
    rule: &str,
    notify: &str,
    sinks: &str,
) -> String {
    format!(
        r#"
data_dir = "{data}"

[sources.syslog]
type = "syslog"
mode = "tcp"
address = "127.0.0.1:{tcp}"

[transforms.alerts]
type = "alert"
inputs = ["syslog"]
eval_interval_secs = 0.2

[[transforms.alerts.rules]]
name = "HighErrorRate"
{rule}

[transforms.alerts.notify]
group_by = ["alertname", "team"]
group_wait_secs = 0.5
group_interval_secs = 1
repeat_interval_secs = 3600
{notify}

{sinks}

[api]
address = "{{API}}"
"#,
        data = data_dir.display(),
    )
}

/// A count rule: more than 5 errors (severity `err`) from one host within 2 s, with the
/// `team = "payments"` label the notification groups by, and `labels` besides.
pub fn error_rule(labels: &str) -> String {
    format!(
        r#"condition = '.severity == "err"'
group_by = ["host"]
window_secs = 2
op = ">"
threshold = 5
labels = {{ team = "payments"{labels} }}
annotations = {{ summary = "{{{{ host }}}}: {{{{ value }}}} errors" }}"#
    )
}
