//! The `alert` transform driven as the topology drives it (batches in, deadlines), on
//! tokio's paused clock so windows and timers are exact.

use super::*;
use crate::event::{BatchStatus, EventMetadata, LogEvent, Metric};
use crate::internal_events::{ComponentKind, ComponentLabels, ComponentMetrics};
use std::time::Duration;

fn build(toml_text: &str) -> Box<dyn Transform> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    // Left behind on purpose: a transform may write there until the test ends.
    std::mem::forget(dir);
    build_in(toml_text, &path)
}

/// A transform with a fresh ID keeping its state in `data_dir`.
fn build_in(toml_text: &str, data_dir: &std::path::Path) -> Box<dyn Transform> {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let id = format!(
        "alert-unit-{}",
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    build_as(toml_text, data_dir, &id)
}

/// The transform `id` on `data_dir`: built again with the same ID, as after a restart.
fn build_as(toml_text: &str, data_dir: &std::path::Path, id: &str) -> Box<dyn Transform> {
    let config: AlertConfig = toml::from_str(toml_text).unwrap();
    assert!(config.validate().is_empty(), "{:?}", config.validate());
    config
        .build(TransformContext {
            id: id.into(),
            metrics: ComponentMetrics::new(ComponentLabels {
                id: id.into(),
                kind: ComponentKind::Transform,
                type_name: "alert",
            }),
            timezone: None,
            data_dir: data_dir.to_path_buf(),
        })
        .unwrap()
}

fn log(fields: &[(&str, Value)]) -> Event {
    let mut f = ObjectMap::new();
    for (k, v) in fields {
        f.insert((*k).into(), v.clone());
    }
    LogEvent::from_parts(f, EventMetadata::new("t", chrono::Utc::now())).into()
}

fn err(host: &str) -> Event {
    log(&[
        ("host", Value::from(host)),
        ("severity", Value::from("err")),
    ])
}

/// Advances the paused clock by `secs`, running every deadline on the way, and returns
/// what the transform emitted.
async fn advance(t: &mut Box<dyn Transform>, secs: u64) -> Vec<Event> {
    let end = Instant::now() + Duration::from_secs(secs);
    let mut emitted = Vec::new();
    while let Some(d) = t.next_deadline().filter(|d| *d <= end) {
        tokio::time::sleep_until(d).await;
        let mut out = TransformOutput::new(0);
        t.on_deadline(&mut out);
        emitted.extend(out.default);
    }
    tokio::time::sleep_until(end).await;
    emitted
}

/// The alert events emitted while the clock advances `secs`: (status, host label, value).
async fn run_for(t: &mut Box<dyn Transform>, secs: u64) -> Vec<(String, String, f64)> {
    advance(t, secs)
        .await
        .iter()
        .map(|e| {
            let l = e.as_log().unwrap();
            (
                l.get("status").unwrap().to_string_lossy().into_owned(),
                l.get_path("labels.host")
                    .map(|v| v.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                match l.get("value") {
                    Some(Value::Float(f)) => f.into_inner(),
                    _ => f64::NAN,
                },
            )
        })
        .collect()
}

fn feed(t: &mut Box<dyn Transform>, events: Vec<Event>) {
    let mut out = TransformOutput::new(0);
    t.transform(events, &mut out);
    assert!(out.default.is_empty(), "input events go no further");
}

const ERRORS: &str = r#"
eval_interval_secs = 1
[[rules]]
name = "HighErrorRate"
condition = '.severity == "err"'
group_by = ["host"]
window_secs = 60
op = ">"
threshold = 100
clear_threshold = 80
for_secs = 5
annotations = { summary = "{{ host }}: {{ value }} errors in 1m" }
"#;

#[tokio::test(start_paused = true)]
async fn error_rate_over_threshold_fires_after_for_and_resolves_below_clear() {
    let mut t = build(ERRORS);
    // 150 errors from web-1, 50 from web-2, and info lines that do not count.
    let mut batch: Vec<Event> = (0..150).map(|_| err("web-1")).collect();
    batch.extend((0..50).map(|_| err("web-2")));
    batch.extend((0..500).map(|_| {
        log(&[
            ("host", Value::from("web-1")),
            ("severity", Value::from("info")),
        ])
    }));
    feed(&mut t, batch);
    let first = run_for(&mut t, 4).await;
    assert!(first.is_empty(), "pending until for_secs: {first:?}");
    let fired = run_for(&mut t, 3).await;
    assert_eq!(fired, [("firing".into(), "web-1".into(), 150.0)]);
    // The 150 leave the window after 60 s; 90 more keep it between clear and fire.
    feed(&mut t, (0..90).map(|_| err("web-1")).collect());
    let held = run_for(&mut t, 58).await;
    assert!(held.is_empty(), "90 > 80 holds it firing: {held:?}");
    let resolved = run_for(&mut t, 60).await;
    assert_eq!(resolved.len(), 1);
    assert_eq!(
        (resolved[0].0.as_str(), resolved[0].1.as_str()),
        ("resolved", "web-1")
    );
}

#[tokio::test(start_paused = true)]
async fn the_alert_event_has_alertmanagers_shape() {
    let mut t = build(&ERRORS.replace(
        "for_secs = 5",
        "for_secs = 0\nlabels = { severity = \"page\" }",
    ));
    feed(&mut t, (0..101).map(|_| err("web-1")).collect());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut out = TransformOutput::new(0);
    t.on_deadline(&mut out);
    assert_eq!(out.default.len(), 1);
    let a = out.default[0].as_log().unwrap();
    let s = |p: &str| a.get_path(p).map(|v| v.to_string_lossy().into_owned());
    assert_eq!(s("status").as_deref(), Some("firing"));
    assert_eq!(s("labels.alertname").as_deref(), Some("HighErrorRate"));
    assert_eq!(s("labels.host").as_deref(), Some("web-1"));
    assert_eq!(s("labels.severity").as_deref(), Some("page"));
    assert_eq!(
        s("annotations.summary").as_deref(),
        Some("web-1: 101 errors in 1m")
    );
    assert_eq!(s("message").as_deref(), Some("web-1: 101 errors in 1m"));
    assert_eq!(s("endsAt").as_deref(), Some("0001-01-01T00:00:00Z"));
    assert!(chrono::DateTime::parse_from_rfc3339(&s("startsAt").unwrap()).is_ok());
    let fp = s("fingerprint").unwrap();
    assert_eq!(fp.len(), 16);
    assert_eq!(s("state").as_deref(), Some("firing"));
    assert_eq!(a.get("flapping"), Some(&Value::Boolean(false)));
}

#[tokio::test(start_paused = true)]
async fn a_value_oscillating_around_the_threshold_is_pinned_by_the_flap_guard() {
    let mut t = build(
        r#"
eval_interval_secs = 1
[[rules]]
name = "Flappy"
group_by = ["host"]
window_secs = 2
op = ">"
threshold = 5
flap_max_transitions = 4
flap_window_secs = 60
"#,
    );
    // Bursts of 10 every 6 s for 2 minutes: over, then under, every few seconds.
    let mut notices = Vec::new();
    for _ in 0..20 {
        feed(&mut t, (0..10).map(|_| err("web-1")).collect());
        notices.extend(run_for(&mut t, 6).await);
    }
    assert_eq!(
        notices.len(),
        5,
        "fire, resolve, fire, resolve, fire (pinned): {notices:?}"
    );
    assert!(notices
        .iter()
        .zip(["firing", "resolved", "firing", "resolved", "firing"])
        .all(|(n, s)| n.0 == s));
    // Quiet for a whole flap window: resolved once.
    let after = run_for(&mut t, 70).await;
    assert_eq!(
        after.iter().map(|n| n.0.as_str()).collect::<Vec<_>>(),
        ["resolved"]
    );
}

#[tokio::test(start_paused = true)]
async fn absent_fires_when_a_known_host_goes_quiet_and_resolves_when_it_returns() {
    let mut t = build(
        r#"
eval_interval_secs = 1
[[rules]]
name = "HostSilent"
agg = "absent"
group_by = ["host"]
window_secs = 10
"#,
    );
    feed(&mut t, vec![err("web-1"), err("web-2")]);
    assert!(run_for(&mut t, 5).await.is_empty());
    feed(&mut t, vec![err("web-2")]);
    let fired = run_for(&mut t, 7).await;
    assert_eq!(
        fired
            .iter()
            .map(|n| (n.0.as_str(), n.1.as_str()))
            .collect::<Vec<_>>(),
        [("firing", "web-1")]
    );
    feed(&mut t, vec![err("web-1")]);
    let back = run_for(&mut t, 2).await;
    // web-2 went quiet meanwhile too.
    assert!(
        back.iter().any(|n| n.0 == "resolved" && n.1 == "web-1"),
        "{back:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn quantile_and_metric_rules() {
    let mut t = build(
        r#"
eval_interval_secs = 1
[[rules]]
name = "SlowRequests"
agg = "p99"
field = "latency_ms"
condition = 'exists(.latency_ms)'
group_by = ["host"]
window_secs = 60
op = ">"
threshold = 500
[[rules]]
name = "QueueDepth"
agg = "max"
group_by = ["host"]
condition = '.name == "queue_depth"'
window_secs = 60
op = ">="
threshold = 1000
"#,
    );
    let mut batch: Vec<Event> = (0..1000)
        .map(|i| {
            let latency = if i % 50 == 0 { 2000 } else { 20 };
            log(&[
                ("host", Value::from("web-1")),
                ("latency_ms", Value::Integer(latency)),
            ])
        })
        .collect();
    let mut m = Metric::new(
        "queue_depth",
        MetricKind::Absolute,
        MetricValue::Gauge(1500.0),
        EventMetadata::new("t", chrono::Utc::now()),
    );
    m.tags.insert("host".into(), "db-1".into());
    batch.push(m.into());
    feed(&mut t, batch);
    let fired = run_for(&mut t, 1).await;
    let mut got: Vec<(String, String)> = fired.iter().map(|n| (n.0.clone(), n.1.clone())).collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("firing".to_string(), "db-1".to_string()),
            ("firing".into(), "web-1".into())
        ]
    );
    let p99 = fired.iter().find(|n| n.1 == "web-1").unwrap().2;
    assert!((p99 - 2000.0).abs() < 25.0, "{p99}");
}

#[tokio::test(start_paused = true)]
async fn max_groups_turns_new_groups_away_when_all_are_busy_and_idle_groups_are_forgotten() {
    let mut t = build(
        r#"
eval_interval_secs = 1
max_groups = 100
[[rules]]
name = "Any"
group_by = ["host"]
window_secs = 5
op = ">"
threshold = 0
flap_window_secs = 5
"#,
    );
    feed(&mut t, (0..1000).map(|i| err(&format!("h{i}"))).collect());
    let fired = run_for(&mut t, 1).await;
    assert_eq!(
        fired.len(),
        100,
        "the first 100 groups fire; the others are turned away"
    );
    // Quiet: all resolve, then (their changes older than the flap window) their empty
    // groups are forgotten, and new ones fit.
    let resolved = run_for(&mut t, 20).await;
    assert_eq!(resolved.len(), 100);
    feed(&mut t, (0..100).map(|i| err(&format!("n{i}"))).collect());
    assert_eq!(run_for(&mut t, 1).await.len(), 100);
}

#[test]
fn rules_are_checked_with_their_index_and_key() {
    let config: AlertConfig = toml::from_str(
        r#"
[[rules]]
name = "A"
agg = "p1x"
window_secs = 0
[[rules]]
name = "A"
agg = "avg"
window_secs = 10
op = "=>"
threshold = 10
[[rules]]
name = "B"
window_secs = 10
op = ">"
threshold = 100
clear_threshold = 120
[[rules]]
name = "C"
agg = "absent"
window_secs = 10
threshold = 1
"#,
    )
    .unwrap();
    let issues: Vec<String> = config
        .validate()
        .iter()
        .map(|i| format!("{}: {}", i.key.clone().unwrap_or_default(), i.message))
        .collect();
    let expect = [
        "rules[0].agg: `p1x` is not one of",
        "rules[0].window_secs: must be a positive number",
        "rules[1].name: `A` names another rule too",
        "rules[1].op: `=>` is not one of",
        "rules[2].clear_threshold: 120 is on the firing side of threshold 100",
        "rules[3].threshold: does not apply to `agg = \"absent\"`",
    ];
    for e in expect {
        assert!(
            issues.iter().any(|i| i.starts_with(e)),
            "{e} not in {issues:#?}"
        );
    }
}

/// Notifications emitted while the paused clock advances `secs`: (status, alert count,
/// the firing alerts' host labels).
async fn notifications(t: &mut Box<dyn Transform>, secs: u64) -> Vec<(String, usize, Vec<String>)> {
    advance(t, secs)
        .await
        .iter()
        .map(|e| {
            let l = e.as_log().unwrap();
            assert_eq!(
                l.get("version")
                    .map(|v| v.to_string_lossy().into_owned())
                    .as_deref(),
                Some("4")
            );
            let Some(Value::Array(alerts)) = l.get("alerts") else {
                panic!("no alerts: {l:?}")
            };
            let label = |a: &ObjectMap, k: &str| match a.get("labels") {
                Some(Value::Object(l)) => l.get(k).map(|h| h.to_string_lossy().into_owned()),
                _ => None,
            };
            let mut hosts: Vec<String> = alerts
                .iter()
                .filter_map(|a| match a {
                    Value::Object(o)
                        if o.get("status")
                            .is_some_and(|s| s.to_string_lossy() == "firing") =>
                    {
                        label(o, "host")
                    }
                    _ => None,
                })
                .collect();
            hosts.sort();
            (
                l.get("status").unwrap().to_string_lossy().into_owned(),
                alerts.len(),
                hosts,
            )
        })
        .collect()
}

const NOTIFY: &str = r#"
eval_interval_secs = 1
[[rules]]
name = "HighErrorRate"
group_by = ["host"]
window_secs = 10
op = ">"
threshold = 100
clear_threshold = 80
labels = { team = "payments" }
[notify]
group_by = ["alertname", "team"]
group_wait_secs = 5
group_interval_secs = 20
repeat_interval_secs = 120
"#;

#[tokio::test(start_paused = true)]
async fn two_hosts_make_one_grouped_notification_then_resolves_and_repeats() {
    let mut t = build(NOTIFY);
    let mut batch: Vec<Event> = (0..150).map(|_| err("web-1")).collect();
    batch.extend((0..150).map(|_| err("web-2")));
    feed(&mut t, batch);
    // Fired at the 1 s evaluation; one notification after group_wait (5 s) with both.
    let first = notifications(&mut t, 7).await;
    assert_eq!(
        first,
        [(
            "firing".to_string(),
            2,
            vec!["web-1".to_string(), "web-2".to_string()]
        )]
    );
    // web-1 keeps sending; web-2 stops and resolves after its window (10 s): the next
    // group_interval tick (25 s) says so, with both alerts. Then nothing new until
    // repeat_interval (120 s after that) sends web-1 again, at the 145 s tick.
    let mut later = Vec::new();
    for _ in 0..30 {
        feed(&mut t, (0..150).map(|_| err("web-1")).collect());
        later.extend(notifications(&mut t, 5).await);
    }
    assert_eq!(
        later,
        [
            ("firing".to_string(), 2, vec!["web-1".to_string()]),
            ("firing".to_string(), 1, vec!["web-1".to_string()]),
        ]
    );
    // web-1 stops: all resolved, one last notification.
    let last = notifications(&mut t, 60).await;
    assert_eq!(last, [("resolved".to_string(), 1, vec![])]);
}

#[tokio::test(start_paused = true)]
async fn an_alert_resolved_within_group_wait_is_never_sent() {
    let mut t = build(&NOTIFY.replace("group_wait_secs = 5", "group_wait_secs = 30"));
    feed(&mut t, (0..150).map(|_| err("web-1")).collect());
    assert!(notifications(&mut t, 120).await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn ten_thousand_groups_firing_at_once_make_one_notification() {
    let mut t = build(
        &NOTIFY
            .replace("threshold = 100", "threshold = 0")
            .replace("clear_threshold = 80", "clear_threshold = 0"),
    );
    feed(&mut t, (0..10_000).map(|i| err(&format!("h{i}"))).collect());
    let n = notifications(&mut t, 7).await;
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].1, 10_000);
}

#[tokio::test(start_paused = true)]
async fn inhibition_and_a_silence_file_edited_while_running_mute_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let silences = dir.path().join("silences.json");
    let config = format!(
        r#"
eval_interval_secs = 1
[[rules]]
name = "HostDown"
group_by = ["host"]
condition = '.severity == "crit"'
window_secs = 10
op = ">"
threshold = 0
labels = {{ severity = "critical" }}
[[rules]]
name = "HighErrorRate"
group_by = ["host"]
condition = '.severity == "err"'
window_secs = 10
op = ">"
threshold = 0
labels = {{ severity = "warning" }}
[notify]
group_by = ["alertname"]
group_wait_secs = 1
group_interval_secs = 2
repeat_interval_secs = 3600
silences_file = "{}"
inhibit_rules = [{{ source_matchers = ['severity="critical"'], target_matchers = ['severity="warning"'], equal = ["host"] }}]
"#,
        silences.display()
    );
    let mut t = build(&config);
    let crit = log(&[
        ("host", Value::from("web-1")),
        ("severity", Value::from("crit")),
    ]);
    feed(&mut t, vec![crit, err("web-1"), err("web-2")]);
    let n = notifications(&mut t, 3).await;
    // HostDown for web-1; HighErrorRate only for web-2 (web-1's is inhibited).
    let mut hosts: Vec<Vec<String>> = n.iter().map(|x| x.2.clone()).collect();
    hosts.sort();
    assert_eq!(
        hosts,
        [vec!["web-1".to_string()], vec!["web-2".to_string()]],
        "{n:?}"
    );
    // A silence for web-3, written while running; web-3's errors are not notified.
    std::fs::write(
        &silences,
        r#"[{"matchers": ["host=\"web-3\""], "comment": "maintenance"}]"#,
    )
    .unwrap();
    feed(&mut t, vec![err("web-3")]);
    let n = notifications(&mut t, 4).await;
    assert!(
        n.iter().all(|x| !x.2.contains(&"web-3".to_string())),
        "{n:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_restart_neither_pages_again_nor_loses_the_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let id = "alert-restart-unit";
    for graceful in [false, true] {
        let mut t = build_as(NOTIFY, dir.path(), id);
        feed(&mut t, (0..150).map(|_| err("web-1")).collect());
        let first = notifications(&mut t, 7).await;
        if graceful {
            // Still firing from the first round: the restart before did not page again.
            assert!(first.is_empty(), "{first:?}");
            let mut out = TransformOutput::new(0);
            t.flush(&mut out);
        } else {
            assert_eq!(
                first,
                [("firing".to_string(), 1, vec!["web-1".to_string()])]
            );
            // Delivered (the event is gone): the transform hears it within a moment
            // and saves, before the kill.
            advance(&mut t, 1).await;
        }
        // Killed (state as of the last change) or stopped (saved at shutdown).
        drop(t);
        let mut t = build_as(NOTIFY, dir.path(), id);
        let mut seen = Vec::new();
        for _ in 0..12 {
            feed(&mut t, (0..150).map(|_| err("web-1")).collect());
            seen.extend(notifications(&mut t, 5).await);
        }
        assert!(seen.is_empty(), "paged again after a restart: {seen:?}");
        if graceful {
            // The host goes quiet: resolved, once.
            let last = notifications(&mut t, 60).await;
            assert_eq!(last, [("resolved".to_string(), 1, vec![])]);
        } else {
            let mut out = TransformOutput::new(0);
            t.flush(&mut out);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_corrupt_state_file_is_set_aside_and_the_transform_starts_empty() {
    let dir = tempfile::tempdir().unwrap();
    let id = "alert-corrupt-unit";
    let file = dir.path().join("alert").join(format!("{id}.json"));
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, b"{not json").unwrap();
    let mut t = build_as(NOTIFY, dir.path(), id);
    assert!(file.with_extension("json.corrupt").exists());
    feed(&mut t, (0..150).map(|_| err("web-1")).collect());
    assert_eq!(notifications(&mut t, 7).await.len(), 1);
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(saved["version"], 1);
}

#[tokio::test(start_paused = true)]
async fn a_notification_counts_as_sent_only_once_its_sinks_delivered_it() {
    let dir = tempfile::tempdir().unwrap();
    let id = "alert-confirm-unit";
    let mut t = build_as(NOTIFY, dir.path(), id);
    feed(&mut t, (0..150).map(|_| err("web-1")).collect());
    // The first notification fails in its sink (out of retries): it is undone and the
    // group's next tick (group_interval, 20 s) sends it again.
    let mut first = advance(&mut t, 7).await;
    assert_eq!(first.len(), 1);
    for e in first.iter_mut() {
        e.take_finalizers().update_status(BatchStatus::Errored);
    }
    drop(first);
    let mut again = Vec::new();
    for _ in 0..5 {
        feed(&mut t, (0..150).map(|_| err("web-1")).collect());
        again.extend(advance(&mut t, 5).await);
    }
    assert_eq!(again.len(), 1, "sent again after the failure");
    // This one is still unanswered when sluice is killed: the saved state does not
    // count it, so the restart sends it rather than losing it.
    let held = again;
    drop(t);
    let mut t = build_as(NOTIFY, dir.path(), id);
    let mut after = Vec::new();
    for _ in 0..12 {
        feed(&mut t, (0..150).map(|_| err("web-1")).collect());
        after.extend(notifications(&mut t, 5).await);
    }
    assert_eq!(
        after,
        [("firing".to_string(), 1, vec!["web-1".to_string()])],
        "the unanswered notification is sent after the restart"
    );
    drop(held);
}
