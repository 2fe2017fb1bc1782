//! The `email` sink against a real SMTP server (aiosmtpd from PyPI): alert
//! notifications from the real binary arrive as one mail per group, plain text and
//! HTML, over a plain local relay and over STARTTLS with AUTH; a 451 is retried, a
//! refused login is counted and never logs the password.

use crate::support;

use std::io::Write;
use std::time::Duration;
use support::alerts::{error_rule, hosts, keep_firing, pipeline};
use support::smtp::{Smtp, SmtpOptions};
use support::*;

fn config(data: &std::path::Path, tcp: u16, sink: &str) -> String {
    pipeline(
        data,
        tcp,
        &error_rule(", severity = \"page\""),
        "",
        &format!(
            r#"[sinks.mail]
type = "email"
inputs = ["alerts"]
from = "sluice <sluice@example.com>"
to = "oncall@example.com, lead@example.com"
{sink}"#
        ),
    )
}

/// The sink options for the TLS server of `certs` on `port`, logging in as `alerts`
/// with `password`, plus `extra` lines.
fn tls_sink(port: u16, certs: &TestCerts, password: &str, extra: &str) -> String {
    format!(
        "smarthost = \"localhost:{port}\"\nauth_username = \"alerts\"\nauth_password = \"{password}\"\ntls.ca_file = \"{}\"\n{extra}",
        certs.ca.display()
    )
}

/// An aiosmtpd with TLS (STARTTLS, or implicit) for `certs` and login `alerts:correct-horse`.
fn tls_server(certs: &TestCerts, transient: u32, implicit_tls: bool) -> Smtp {
    Smtp::start(SmtpOptions {
        tls: Some((certs.crt.clone(), certs.key.clone())),
        auth: Some("alerts:correct-horse".into()),
        transient,
        implicit_tls,
    })
}

fn notifications(m: &str, status: &str) -> f64 {
    metric(
        m,
        "sluice_notifications_total",
        &[("component_id", "mail"), ("status", status)],
    )
    .unwrap_or(0.0)
}

#[test]
fn a_local_relay_gets_one_mail_per_group_then_the_resolve() {
    let smtp = Smtp::start(SmtpOptions::default());
    let data = tempfile::tempdir().unwrap();
    let tcp = free_port();
    let s = Sluice::start(&config(
        data.path(),
        tcp,
        &format!(
            "smarthost = \"127.0.0.1:{}\"\nrequire_tls = false",
            smtp.port
        ),
    ));
    keep_firing(tcp, &hosts(&["web-1", "web-2"], "app"), 2.0);
    assert!(wait_for(Duration::from_secs(15), || smtp.mails().len() >= 2));
    std::thread::sleep(Duration::from_secs(2));
    let mails = smtp.mails();
    assert_eq!(mails.len(), 2, "{mails:#?}");
    let first = &mails[0];
    assert_eq!(first["subject"], "[FIRING:2] HighErrorRate (team=payments)");
    assert_eq!(first["from"], "sluice@example.com");
    assert_eq!(
        first["to"],
        serde_json::json!(["oncall@example.com", "lead@example.com"])
    );
    assert_eq!(first["content_type"], "multipart/alternative");
    let text = first["text"].as_str().unwrap();
    assert!(
        text.contains("FIRING (2)") && text.contains("web-1: ") && text.contains("web-2: "),
        "{text}"
    );
    assert!(first["html"].as_str().unwrap().contains("<table"));
    assert_eq!(
        mails[1]["subject"],
        "[RESOLVED] HighErrorRate (team=payments)"
    );
    let m = s.metrics();
    assert_eq!(notifications(&m, "sent"), 2.0);
    promtool_check(&m);
}

#[test]
fn starttls_with_auth_retries_a_451_and_a_refused_login_is_counted_without_the_password() {
    let certs = test_certs();
    let smtp = tls_server(&certs, 2, false);
    let data = tempfile::tempdir().unwrap();
    let tcp = free_port();
    let sink = tls_sink(
        smtp.port,
        &certs,
        "correct-horse",
        "request.retry_initial_backoff_secs = 0.2",
    );
    let s = Sluice::start(&config(data.path(), tcp, &sink));
    keep_firing(tcp, &hosts(&["web-1"], "app"), 2.0);
    assert!(wait_for(Duration::from_secs(15), || !smtp
        .mails()
        .is_empty()));
    let mails = smtp.mails();
    assert_eq!(mails[0]["tls"], true);
    assert_eq!(mails[0]["authenticated"], true);
    assert_eq!(
        mails[0]["subject"],
        "[FIRING:1] HighErrorRate (team=payments)"
    );
    let m = s.metrics();
    assert_eq!(notifications(&m, "retried"), 2.0, "the two 451 answers");
    drop(s);

    // The same server, a wrong password: refused for good, counted, not logged.
    let data = tempfile::tempdir().unwrap();
    let tcp = free_port();
    let s = Sluice::start(&config(
        data.path(),
        tcp,
        &sink.replace("correct-horse", "wrong-staple"),
    ));
    keep_firing(tcp, &hosts(&["web-1"], "app"), 2.0);
    assert!(
        wait_for(Duration::from_secs(45), || notifications(
            &s.metrics(),
            "rejected"
        ) >= 1.0),
        "{}\n{}",
        s.log_text(),
        s.metrics()
            .lines()
            .filter(|l| l.contains("notif") || l.contains("alerts_firing") || l.contains("mail"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let log = s.log_text();
    assert!(!log.contains("wrong-staple"), "{log}");
    assert!(log.contains("SMTP server localhost:"), "{log}");
}

#[test]
fn a_server_that_stops_answering_mid_session_is_timed_out_and_tried_again() {
    // Greets, then never answers EHLO: lettre's own timeout only covers connecting.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming().flatten() {
            let mut c = c;
            let _ = c.write_all(b"220 mute.example ESMTP\r\n");
            held.push(c);
        }
    });
    let data = tempfile::tempdir().unwrap();
    let tcp = free_port();
    let s = Sluice::start(&config(
        data.path(),
        tcp,
        &format!(
            "smarthost = \"127.0.0.1:{port}\"\nrequire_tls = false\nrequest.timeout_secs = 1\nrequest.retry_initial_backoff_secs = 0.2"
        ),
    ));
    keep_firing(tcp, &hosts(&["web-1"], "app"), 2.0);
    assert!(
        wait_for(Duration::from_secs(20), || notifications(
            &s.metrics(),
            "retried"
        ) >= 2.0),
        "{}",
        s.log_text()
    );
    assert!(
        s.log_text().contains("no answer within 1s"),
        "{}",
        s.log_text()
    );
}

#[test]
fn implicit_tls_on_another_port_than_465() {
    let certs = test_certs();
    let smtp = tls_server(&certs, 0, true);
    let data = tempfile::tempdir().unwrap();
    let tcp = free_port();
    let s = Sluice::start(&config(
        data.path(),
        tcp,
        &tls_sink(smtp.port, &certs, "correct-horse", "implicit_tls = true"),
    ));
    keep_firing(tcp, &hosts(&["web-1"], "app"), 2.0);
    assert!(
        wait_for(Duration::from_secs(15), || !smtp.mails().is_empty()),
        "{}",
        s.log_text()
    );
    let mails = smtp.mails();
    assert_eq!(mails[0]["tls"], true);
    assert_eq!(mails[0]["authenticated"], true);
    assert_eq!(notifications(&s.metrics(), "sent"), 1.0);
}
