//! The `alert` transform in the real binary: syslog over TCP in, notifications out
//! through the `http` sink to a recording receiver, as Alertmanager webhooks; a SIGKILL
//! while an alert fires, and a restart on the same data_dir, neither page again nor lose
//! the resolve.

use crate::support;

use serde_json::Value as Json;
use std::time::Duration;
use support::alerts::{error_rule, hosts as from_hosts, keep_firing, pipeline};
use support::receiver::Receiver;
use support::*;

fn config(data_dir: &std::path::Path, tcp: u16, hook: &str) -> String {
    pipeline(
        data_dir,
        tcp,
        &error_rule(""),
        "",
        &format!(
            r#"[sinks.hook]
type = "http"
inputs = ["alerts"]
uri = "{hook}/hook"
encoding.codec = "json"
batch.max_events = 1
framing.method = "bytes""#
        ),
    )
}

/// The notifications received so far: (status, firing hosts).
fn received(r: &Receiver) -> Vec<(String, Vec<String>)> {
    r.requests()
        .iter()
        .map(|q| {
            let v: Json = serde_json::from_slice(&q.body).expect("a JSON object");
            assert_eq!(v["version"], "4", "{v}");
            let mut hosts: Vec<String> = v["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["status"] == "firing")
                .map(|a| a["labels"]["host"].as_str().unwrap().to_string())
                .collect();
            hosts.sort();
            (v["status"].as_str().unwrap().to_string(), hosts)
        })
        .collect()
}

#[test]
fn grouped_notification_then_a_sigkill_restart_neither_repages_nor_loses_the_resolve() {
    let data = tempfile::tempdir().unwrap();
    let hook = Receiver::start();
    let tcp = free_port();
    let mut s = Sluice::start(&config(data.path(), tcp, &hook.url()));
    keep_firing(tcp, &from_hosts(&["web-1", "web-2"], "app"), 2.0);
    assert!(wait_for(Duration::from_secs(10), || !hook
        .requests()
        .is_empty()));
    let first = received(&hook);
    assert_eq!(
        first,
        [(
            "firing".to_string(),
            vec!["web-1".to_string(), "web-2".to_string()]
        )],
        "one notification for both hosts"
    );
    let m = s.metrics();
    assert_eq!(
        metric(&m, "sluice_alerts_firing", &[("rule", "HighErrorRate")]),
        Some(2.0)
    );
    let (code, body) = http_get(s.api, "/api/alerts").expect("/api/alerts");
    assert_eq!(code, 200);
    let active: Json = serde_json::from_str(&body).unwrap();
    let mut hosts: Vec<&str> = active
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["labels"]["host"].as_str().unwrap())
        .collect();
    hosts.sort();
    assert_eq!(hosts, ["web-1", "web-2"], "{body}");
    assert_eq!(active[0]["status"]["state"], "active");
    assert_eq!(active[0]["receivers"][0]["name"], "alerts");

    // SIGKILL while firing, then start again on the same data_dir.
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &s.pid().to_string()])
        .status();
    s.wait(Duration::from_secs(10));
    let tcp = free_port();
    let s = Sluice::start(&config(data.path(), tcp, &hook.url()));
    assert!(
        s.log_text().contains("Restored the saved alert state."),
        "{}",
        s.log_text()
    );
    keep_firing(tcp, &from_hosts(&["web-1", "web-2"], "app"), 4.0);
    assert_eq!(
        received(&hook).len(),
        1,
        "paged again after the restart: {:?}",
        received(&hook)
    );

    // Quiet: both resolve, one notification says so.
    assert!(wait_for(Duration::from_secs(15), || received(&hook).len() >= 2));
    std::thread::sleep(Duration::from_secs(2));
    let all = received(&hook);
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[1], ("resolved".to_string(), vec![]));
}
