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
