//! Alert rules paging people through the real `slack` and `discord` sinks: syslog over
//! TCP into the real binary, the `alert` transform with its notification stage, and a
//! local model of each webhook that enforces the documented payload limits and the
//! 1 request/s rate with 429 + Retry-After (`support::chat`). Timings are fractions of
//! a second so each scenario takes seconds.

use crate::support;

use serde_json::Value as Json;
use std::time::{Duration, Instant};
use support::alerts::{keep_firing, pipeline, send_errors};
use support::chat::{slack_texts, statuses, units, ChatServer, Service};
use support::*;

struct Rule<'a> {
    /// Extra lines of the rule (`agg`, thresholds).
    rule: &'a str,
    /// Extra lines of `notify`.
    notify: &'a str,
}

const COUNT_RULE: Rule = Rule {
    rule: r#"op = ">"
threshold = 5
clear_threshold = 2"#,
    notify: "",
};

fn config(data_dir: &std::path::Path, tcp: u16, sink: &str, url: &str, rule: &Rule) -> String {
    pipeline(
        data_dir,
        tcp,
        &format!(
            r#"condition = '.severity == "err"'
group_by = ["host", "appname"]
window_secs = 2
{rule}
labels = {{ severity = "page", team = "payments" }}
annotations = {{ summary = "{{{{ appname }}}} on {{{{ host }}}}: {{{{ value }}}} errors" }}"#,
            rule = rule.rule
        ),
        rule.notify,
        &format!(
            r#"[sinks.page]
type = "{sink}"
inputs = ["alerts"]
url = "{url}""#
        ),
    )
}

/// A Slack message's header text.
fn header(v: &Json) -> String {
    v["blocks"][0]["text"]["text"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

fn notifications(m: &str, status: &str) -> f64 {
    metric(
        m,
        "sluice_notifications_total",
        &[("component_id", "page"), ("status", status)],
    )
    .unwrap_or(0.0)
}

#[test]
fn slack_gets_one_grouped_page_for_two_hosts_then_one_resolve_and_log_text_cannot_ping() {
    let data = tempfile::tempdir().unwrap();
    let slack = ChatServer::start(Service::Slack);
    let tcp = free_port();
    let s = Sluice::start(&config(
        data.path(),
        tcp,
        "slack",
        &slack.url(),
        &COUNT_RULE,
    ));
    // The application name comes from the log line: Slack must not read it as a mention.
    let from = [("web-1", "<!channel>"), ("web-2", "api&<@U123>")];
    keep_firing(tcp, &from, 2.0);
    assert!(wait_for(Duration::from_secs(10), || !slack
        .accepted()
        .is_empty()));
    // Quiet: both resolve.
    assert!(wait_for(Duration::from_secs(15), || slack.accepted().len() >= 2));
    std::thread::sleep(Duration::from_secs(2));
    let got = slack.accepted();
    assert_eq!(
        got.len(),
        2,
        "{:#?}",
        got.iter().map(|a| &a.body).collect::<Vec<_>>()
    );
    assert!(
        header(&got[0].body).contains("[FIRING:2] HighErrorRate"),
        "{}",
        got[0].body
    );
    let first = slack_texts(&got[0].body).join("\n");
    assert!(
        first.contains("web-1") && first.contains("web-2"),
        "{first}"
    );
    assert!(first.contains("&lt;!channel&gt;"), "{first}");
    for bad in ["<!channel>", "<@U123>"] {
        for a in &got {
            for t in slack_texts(&a.body) {
                assert!(!t.contains(bad), "{bad} reached Slack: {t}");
            }
        }
    }
    assert!(
        header(&got[1].body).contains("[RESOLVED] HighErrorRate"),
        "{}",
        got[1].body
    );
    assert!(slack.violations().is_empty(), "{:?}", slack.violations());
    let m = s.metrics();
    assert_eq!(notifications(&m, "sent"), 2.0);
    assert_eq!(notifications(&m, "rejected"), 0.0);
    promtool_check(&m);
    // The webhook URL is the credential: it never reaches the log.
    assert!(!s.log_text().contains("s3cr3t"), "{}", s.log_text());
}

#[test]
fn ten_thousand_groups_firing_at_once_make_a_few_messages_within_slacks_limits() {
    let data = tempfile::tempdir().unwrap();
    let slack = ChatServer::start(Service::Slack);
    let tcp = free_port();
    let rule = Rule {
        rule: "op = \">\"\nthreshold = 0",
        notify: "",
    };
    // A window far longer than a loaded CI machine may take to ingest the 10,000 lines,
    // so the first groups are still firing when the last one starts.
    let cfg = config(data.path(), tcp, "slack", &slack.url(), &rule)
        .replace("window_secs = 2\n", "window_secs = 120\n");
    let s = Sluice::start(&cfg);
    let hosts: Vec<String> = (0..10_000).map(|i| format!("host-{i:05}")).collect();
    let from: Vec<(&str, &str)> = hosts.iter().map(|h| (h.as_str(), "app")).collect();
    send_errors(tcp, &from, 1);
    let mut firing = None;
    assert!(
        wait_for(Duration::from_secs(30), || {
            firing = metric(
                &s.metrics(),
                "sluice_alerts_firing",
                &[("rule", "HighErrorRate")],
            );
            firing == Some(10_000.0)
        }),
        "firing: {firing:?}"
    );
    std::thread::sleep(Duration::from_secs(3));
    let got = slack.accepted();
    assert!(
        !got.is_empty() && got.len() <= 3,
        "{} messages for 10,000 alerts",
        got.len()
    );
    let answers = statuses(&slack.answers());
    assert_eq!(
        answers.get(&400),
        None,
        "a payload broke a limit: {answers:?}"
    );
    let h = header(&got[0].body);
    assert!(h.contains("[FIRING:"), "{h}");
    let texts = slack_texts(&got.last().unwrap().body).join("\n");
    assert!(texts.contains("more alerts"), "{texts}");
    assert!(slack.violations().is_empty(), "{:?}", slack.violations());
}

#[test]
fn slack_answering_429_for_ten_seconds_gets_no_early_request_and_the_final_state() {
    let data = tempfile::tempdir().unwrap();
    let slack = ChatServer::start(Service::Slack);
    slack.throttle_for(Duration::from_secs(10), 3);
    let tcp = free_port();
    let s = Sluice::start(&config(
        data.path(),
        tcp,
        "slack",
        &slack.url(),
        &COUNT_RULE,
    ));
    keep_firing(tcp, &[("web-1", "api")], 2.0);
    // The group resolves while Slack still refuses: the firing message waits, merges.
    let end = Instant::now() + Duration::from_secs(25);
    while Instant::now() < end {
        if slack
            .accepted()
            .iter()
            .any(|a| header(&a.body).contains("RESOLVED"))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let got = slack.accepted();
    assert!(!got.is_empty(), "nothing delivered");
    let last = got.last().unwrap();
    assert!(
        header(&last.body).contains("RESOLVED"),
        "the final state is resolved: {:?}",
        got.iter().map(|a| header(&a.body)).collect::<Vec<_>>()
    );
    assert!(slack.violations().is_empty(), "{:?}", slack.violations());
    let answers = slack.answers();
    let throttled = statuses(&answers).get(&429).copied().unwrap_or(0);
    // Ten seconds of 429 with Retry-After 3: about four attempts, never a loop.
    assert!((2..=5).contains(&throttled), "{throttled} answers of 429");
    let m = s.metrics();
    assert_eq!(notifications(&m, "rate_limited"), throttled as f64);
    assert!(notifications(&m, "merged") >= 1.0, "{m}");
}

#[test]
fn discord_pages_once_across_a_sigterm_or_sigkill_restart_and_delivers_the_resolve() {
    for signal in ["TERM", "KILL"] {
        restart_by(signal);
    }
}

fn restart_by(signal: &str) {
    let data = tempfile::tempdir().unwrap();
    let discord = ChatServer::start(Service::Discord);
    let tcp = free_port();
    let mut s = Sluice::start(&config(
        data.path(),
        tcp,
        "discord",
        &discord.url(),
        &COUNT_RULE,
    ));
    keep_firing(tcp, &[("web-1", "api"), ("web-2", "api")], 2.0);
    assert!(wait_for(Duration::from_secs(10), || !discord
        .accepted()
        .is_empty()));
    let first = &discord.accepted()[0].body;
    assert!(
        first["content"].as_str().unwrap().contains("[FIRING:2]"),
        "{first}"
    );
    assert_eq!(first["allowed_mentions"], serde_json::json!({"parse": []}));
    assert_eq!(first["embeds"].as_array().unwrap().len(), 2);
    assert_eq!(first["embeds"][0]["color"], 0xe74c3c);
    assert!(
        discord.receiver.requests()[0].path.contains("wait=true"),
        "delivery confirmed with wait=true"
    );

    let _ = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &s.pid().to_string()])
        .status();
    let status = s.wait(Duration::from_secs(20));
    assert!(signal == "KILL" || status.success(), "{status:?}");
    let tcp = free_port();
    let s = Sluice::start(&config(
        data.path(),
        tcp,
        "discord",
        &discord.url(),
        &COUNT_RULE,
    ));
    keep_firing(tcp, &[("web-1", "api"), ("web-2", "api")], 3.0);
    assert_eq!(
        discord.accepted().len(),
        1,
        "paged again after a SIG{signal} restart"
    );
    assert!(wait_for(Duration::from_secs(15), || discord
        .accepted()
        .len()
        >= 2));
    std::thread::sleep(Duration::from_secs(2));
    let got = discord.accepted();
    assert_eq!(got.len(), 2);
    let resolved = &got[1].body;
    assert!(
        resolved["content"]
            .as_str()
            .unwrap()
            .starts_with("[RESOLVED]"),
        "{resolved}"
    );
    assert_eq!(resolved["embeds"][0]["color"], 0x2ecc71);
    assert!(
        discord.violations().is_empty(),
        "{:?}",
        discord.violations()
    );
    promtool_check(&s.metrics());
}

#[test]
fn an_absent_rule_pages_discord_when_a_host_goes_quiet_and_resolves_when_it_returns() {
    let data = tempfile::tempdir().unwrap();
    let discord = ChatServer::start(Service::Discord);
    let tcp = free_port();
    let rule = Rule {
        rule: "agg = \"absent\"",
        notify: "",
    };
    let cfg = config(data.path(), tcp, "discord", &discord.url(), &rule)
        .replace("condition = '.severity == \"err\"'\n", "");
    let _s = Sluice::start(&cfg);
    // Two hosts talk; then db-1 stops.
    keep_firing(tcp, &[("web-1", "api"), ("db-1", "pg")], 1.0);
    keep_firing(tcp, &[("web-1", "api")], 4.0);
    assert!(wait_for(Duration::from_secs(5), || !discord
        .accepted()
        .is_empty()));
    let first = discord.accepted()[0].body.clone();
    let embeds = first["embeds"].as_array().unwrap();
    assert_eq!(embeds.len(), 1, "{first}");
    let fields = serde_json::to_string(&embeds[0]["fields"]).unwrap();
    assert!(
        fields.contains("db-1") && !fields.contains("web-1"),
        "{fields}"
    );
    // db-1 comes back.
    keep_firing(tcp, &[("web-1", "api"), ("db-1", "pg")], 3.0);
    assert!(wait_for(Duration::from_secs(5), || discord
        .accepted()
        .len()
        >= 2));
    let got = discord.accepted();
    assert!(got[1].body["content"]
        .as_str()
        .unwrap()
        .starts_with("[RESOLVED]"));
    assert_eq!(
        got.len(),
        2,
        "{:?}",
        got.iter().map(|a| &a.body["content"]).collect::<Vec<_>>()
    );
}

#[test]
fn a_deleted_discord_webhook_is_not_called_again() {
    let data = tempfile::tempdir().unwrap();
    let discord = ChatServer::start(Service::Discord);
    discord.delete();
    let tcp = free_port();
    let s = Sluice::start(&config(
        data.path(),
        tcp,
        "discord",
        &discord.url(),
        &COUNT_RULE,
    ));
    keep_firing(tcp, &[("web-1", "api")], 2.0);
    assert!(wait_for(Duration::from_secs(10), || !discord
        .receiver
        .requests()
        .is_empty()));
    // Resolve and fire again: more notifications, no more requests.
    std::thread::sleep(Duration::from_secs(5));
    keep_firing(tcp, &[("web-2", "api")], 2.0);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(discord.receiver.requests().len(), 1);
    let m = s.metrics();
    assert!(notifications(&m, "rejected") >= 2.0, "{m}");
    assert!(
        s.log_text().contains("the destination is gone"),
        "{}",
        s.log_text()
    );
    assert!(!s.log_text().contains("s3cr3t"));
}

#[test]
fn a_silence_file_edited_while_running_and_an_inhibition_mute_pages() {
    let data = tempfile::tempdir().unwrap();
    let silences = data.path().join("silences.json");
    std::fs::write(&silences, "[]").unwrap();
    let slack = ChatServer::start(Service::Slack);
    let tcp = free_port();
    let rule = Rule {
        rule: COUNT_RULE.rule,
        notify: &format!(
            r#"silences_file = "{}"
[[transforms.alerts.notify.inhibit_rules]]
source_matchers = ['host="db-1"']
target_matchers = ['host=~"web-.*"']
equal = ["team"]"#,
            silences.display()
        ),
    };
    let _s = Sluice::start(&config(data.path(), tcp, "slack", &slack.url(), &rule));
    // Silence app "noisy" before it fires.
    let until = chrono::Utc::now() + chrono::Duration::hours(1);
    std::fs::write(
        &silences,
        format!(
            r#"[{{"matchers": ["appname=\"noisy\""], "ends_at": "{}"}}]"#,
            until.to_rfc3339()
        ),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // db-1 fires, and inhibits web-1 (same team); noisy is silenced.
    keep_firing(
        tcp,
        &[("db-1", "pg"), ("web-1", "api"), ("cache-1", "noisy")],
        2.5,
    );
    assert!(wait_for(Duration::from_secs(10), || !slack
        .accepted()
        .is_empty()));
    let first = slack_texts(&slack.accepted()[0].body).join("\n");
    assert!(first.contains("db-1"), "{first}");
    assert!(!first.contains("web-1"), "inhibited: {first}");
    assert!(!first.contains("noisy"), "silenced: {first}");
}

#[test]
fn every_payload_the_sinks_send_for_long_multibyte_alerts_is_accepted() {
    let data = tempfile::tempdir().unwrap();
    let slack = ChatServer::start(Service::Slack);
    let discord = ChatServer::start(Service::Discord);
    let tcp = free_port();
    let long = "é😀".repeat(700);
    let rule = Rule {
        rule: "op = \">\"\nthreshold = 0",
        notify: "",
    };
    let cfg = config(data.path(), tcp, "slack", &slack.url(), &rule).replace(
        "summary = \"{{ appname }}",
        &format!("description = \"{long}{long}{long}\", summary = \"{long} {{{{ appname }}}}"),
    ) + &format!(
        "\n[sinks.discord]\ntype = \"discord\"\ninputs = [\"alerts\"]\nurl = \"{}\"\n",
        discord.url()
    );
    let _s = Sluice::start(&cfg);
    let hosts: Vec<String> = (0..40).map(|i| format!("h{i}")).collect();
    let from: Vec<(&str, &str)> = hosts.iter().map(|h| (h.as_str(), "app")).collect();
    send_errors(tcp, &from, 1);
    assert!(wait_for(Duration::from_secs(10), || !slack
        .accepted()
        .is_empty()
        && !discord.accepted().is_empty()));
    for (name, server) in [("slack", &slack), ("discord", &discord)] {
        let answers = statuses(&server.answers());
        assert_eq!(answers.get(&400), None, "{name}: {answers:?}");
    }
    let d = &discord.accepted()[0].body;
    assert!(units(d["content"].as_str().unwrap()).le(&2000));
    assert!(
        d["content"].as_str().unwrap().contains("more alerts"),
        "{d}"
    );
}

#[test]
fn a_value_oscillating_around_the_threshold_pages_no_more_than_the_flap_guard_allows() {
    let data = tempfile::tempdir().unwrap();
    let slack = ChatServer::start(Service::Slack);
    let tcp = free_port();
    let rule = Rule {
        rule: "op = \">\"\nthreshold = 5\nflap_max_transitions = 4\nflap_window_secs = 120",
        notify: "",
    };
    let cfg = config(data.path(), tcp, "slack", &slack.url(), &rule)
        .replace("window_secs = 2\n", "window_secs = 1\n");
    let s = Sluice::start(&cfg);
    // Eight cycles of over the threshold, then quiet: sixteen changes without a guard.
    for _ in 0..8 {
        keep_firing(tcp, &[("web-1", "api")], 1.5);
        std::thread::sleep(Duration::from_millis(1800));
    }
    std::thread::sleep(Duration::from_secs(2));
    let got = slack.accepted();
    let headers: Vec<String> = got.iter().map(|a| header(&a.body)).collect();
    assert!(
        (2..=5).contains(&got.len()),
        "{} messages for 16 changes: {headers:?}",
        got.len()
    );
    assert!(headers.last().unwrap().contains("FIRING"), "{headers:?}");
    let m = s.metrics();
    assert_eq!(
        metric(&m, "sluice_alerts_firing", &[("rule", "HighErrorRate")]),
        Some(1.0),
        "pinned firing while flapping"
    );
    assert!(slack.violations().is_empty(), "{:?}", slack.violations());
}
