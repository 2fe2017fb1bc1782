//! `email` sink: one mail per notification group over SMTP (`lettre` on tokio and
//! rustls), plain text and HTML alternatives, with Alertmanager's option names
//! (`smarthost`, `from`, `to`, `hello`, `auth_username`, `auth_password`,
//! `require_tls`) so its users recognise them. Port 465 (or `implicit_tls = true`)
//! means implicit TLS; otherwise `require_tls = true` (the default) insists on STARTTLS, and `false` uses
//! it when offered (for a local relay). A 4xx answer or a broken connection is tried
//! again; a 5xx (an unknown recipient, refused credentials) drops that mail, counted
//! and logged. Queueing and rate limit are [`crate::sinks::util::notification`]'s.

use crate::config::field::FieldIssue;
use crate::config::secret::Secret;
use crate::http::ClientTlsConfig;
use crate::sinks::util::notification::view::{escape_html, fit, Notification, Status};
use crate::sinks::util::notification::{self, Deliver, Delivery, NotifyRequestConfig, QueueConfig};
use crate::topology::component::{BuildError, SinkConfig, SinkContext, Task};
use crate::transforms::alert::render_template;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Identity, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;
use std::fmt::Write as _;

/// `[sinks.ID] type = "email"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// The SMTP server as `host:port` (port 587, 465 for implicit TLS, 25).
    pub smarthost: String,
    /// The sender, `Name <addr>` or `addr`.
    pub from: String,
    /// The recipients: a list, or one string with commas as Alertmanager writes it.
    pub to: Recipients,
    /// The name sluice gives in EHLO. Default: this machine's host name.
    pub hello: Option<String>,
    /// Log in with this user (PLAIN or LOGIN), with `auth_password`.
    pub auth_username: Option<String>,
    /// The password; write it as `${SMTP_PASSWORD}`. Never logged.
    pub auth_password: Option<Secret>,
    /// Insist on STARTTLS (default true, as Alertmanager). Ignored with implicit TLS.
    #[serde(default = "default_true")]
    pub require_tls: bool,
    /// TLS from the first byte (SMTPS) instead of STARTTLS. Default: on for port 465
    /// (as Alertmanager decides), off otherwise; set it for SMTPS on another port.
    pub implicit_tls: Option<bool>,
    /// Trust and client certificate for the TLS connection.
    #[serde(default)]
    pub tls: ClientTlsConfig,
    /// The subject, a template over the notification: `{{ title }}` (the default,
    /// `[FIRING:2] HighErrorRate (team=payments)`), `{{ status }}`, `{{ STATUS }}`,
    /// `{{ alertname }}`, `{{ firing }}`, `{{ resolved }}` and every label the alerts
    /// share.
    #[serde(default = "default_subject")]
    pub subject: String,
    /// Text before the list of alerts, a template as `subject`. Default none.
    #[serde(default)]
    pub body: String,
    /// Timeout, rate limit (1 mail/s by default) and retries.
    #[serde(default)]
    pub request: NotifyRequestConfig,
    /// How many groups may wait unsent.
    #[serde(default)]
    pub queue: QueueConfig,
}

/// `to` as a list or as one comma-separated string.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Recipients {
    /// `to = ["a@x", "b@x"]`.
    List(Vec<String>),
    /// `to = "a@x, b@x"`.
    Joined(String),
}

impl Recipients {
    fn each(&self) -> Vec<String> {
        let all: Vec<String> = match self {
            Recipients::List(l) => l.clone(),
            Recipients::Joined(s) => s.split(',').map(str::to_string).collect(),
        };
        all.into_iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    }
}

fn default_true() -> bool {
    true
}
fn default_subject() -> String {
    "{{ title }}".into()
}

/// Alerts listed in one mail; the rest are counted.
const MAX_LISTED: usize = 500;

/// Subject, plain text and HTML of one mail.
pub fn render(n: &Notification, subject: &str, intro: &str) -> (String, String, String) {
    let vars = n.vars();
    let mut subj = String::new();
    render_template(subject, &vars, "", &mut subj);
    // A subject is one line.
    let subj = fit(&subj.replace(['\r', '\n'], " "), 250, "…");
    let mut head = String::new();
    render_template(intro, &vars, "", &mut head);
    let mut text = String::new();
    let mut html = String::from("<html><body style=\"font-family: sans-serif\">\n");
    if !head.is_empty() {
        let _ = writeln!(text, "{head}\n");
        let _ = writeln!(html, "<p>{}</p>", escape_html(&head));
    }
    if let Some(m) = &n.message {
        let _ = writeln!(text, "{m}");
        let _ = writeln!(html, "<pre>{}</pre>", escape_html(m));
    }
    for status in [Status::Firing, Status::Resolved] {
        let of: Vec<_> = n.alerts.iter().filter(|a| a.status == status).collect();
        if of.is_empty() {
            continue;
        }
        let label = status.as_str().to_uppercase();
        let colour = match status {
            Status::Firing => "#e74c3c",
            Status::Resolved => "#2ecc71",
        };
        let _ = writeln!(text, "{label} ({})", of.len());
        let _ = writeln!(
            html,
            "<h3 style=\"color: {colour}\">{label} ({})</h3>\n<table cellpadding=\"4\" border=\"1\" style=\"border-collapse: collapse\">",
            of.len()
        );
        for a in of.iter().take(MAX_LISTED) {
            let labels = a.label_pairs();
            let mut when = format!("since {}", a.starts_at);
            if let Some(e) = &a.ends_at {
                let _ = write!(when, ", resolved {e}");
            }
            if let Some(v) = &a.value {
                let _ = write!(when, ", value {v}");
            }
            if a.flapping {
                when.push_str(", flapping");
            }
            let _ = writeln!(text, "- {}", a.headline());
            if let Some(d) = a.annotations.get("description") {
                let _ = writeln!(text, "  {d}");
            }
            let _ = writeln!(text, "  {}\n  {when}", labels.join(" "));
            let _ = writeln!(
                html,
                "<tr><td><b>{}</b><br>{}</td><td>{}</td><td>{}</td></tr>",
                escape_html(a.headline()),
                escape_html(a.annotations.get("description").map_or("", String::as_str)),
                escape_html(&labels.join(" ")),
                escape_html(&when)
            );
        }
        if of.len() > MAX_LISTED {
            let _ = writeln!(text, "+{} more alerts", of.len() - MAX_LISTED);
            let _ = writeln!(
                html,
                "<tr><td colspan=\"3\">+{} more alerts</td></tr>",
                of.len() - MAX_LISTED
            );
        }
        text.push('\n');
        html.push_str("</table>\n");
    }
    text.push_str("-- \nsent by sluice\n");
    html.push_str("<p style=\"color: #888\">sent by sluice</p>\n</body></html>\n");
    (subj, text, html)
}

struct EmailDeliver {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    subject: String,
    body: String,
    host: String,
    /// lettre's own timeout covers connecting, not a server that stops answering
    /// mid-session: the whole exchange is bounded here.
    timeout: std::time::Duration,
}

impl EmailDeliver {
    fn message(&self, n: &Notification) -> Result<Message, String> {
        let (subject, text, html) = render(n, &self.subject, &self.body);
        let mut b = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .message_id(None);
        for t in &self.to {
            b = b.to(t.clone());
        }
        b.multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(|e| format!("building the mail failed: {e}"))
    }
}

impl Deliver for EmailDeliver {
    async fn deliver(&self, n: &Notification) -> Delivery {
        let message = match self.message(n) {
            Ok(m) => m,
            Err(reason) => return Delivery::Rejected { reason },
        };
        let sent = tokio::time::timeout(self.timeout, self.transport.send(message)).await;
        match sent {
            Ok(Ok(_)) => Delivery::Sent { pause: None },
            Err(_) => Delivery::Retry {
                reason: format!(
                    "SMTP server {}: no answer within {:?}",
                    self.host, self.timeout
                ),
                after: None,
            },
            Ok(Err(e)) => {
                let reason = format!("SMTP server {}: {e}", self.host);
                if e.is_permanent() || e.is_client() {
                    Delivery::Rejected { reason }
                } else {
                    Delivery::Retry {
                        reason,
                        after: None,
                    }
                }
            }
        }
    }
}

impl EmailConfig {
    fn host_port(&self) -> Result<(String, u16), FieldIssue> {
        let bad = || {
            FieldIssue::new(
                "smarthost",
                "must be `host:port`, e.g. `smtp.example.com:587`",
            )
        };
        let (host, port) = self.smarthost.rsplit_once(':').ok_or_else(bad)?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port: u16 = port.parse().map_err(|_| bad())?;
        if host.is_empty() || port == 0 {
            return Err(bad());
        }
        Ok((host.to_string(), port))
    }

    fn mailboxes(&self) -> Result<(Mailbox, Vec<Mailbox>), FieldIssue> {
        let from: Mailbox = self.from.parse().map_err(|e| {
            FieldIssue::new("from", format!("`{}` is not an address: {e}", self.from))
        })?;
        let to = self
            .to
            .each()
            .into_iter()
            .map(|t| {
                t.parse::<Mailbox>()
                    .map_err(|e| FieldIssue::new("to", format!("`{t}` is not an address: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if to.is_empty() {
            return Err(FieldIssue::new("to", "needs at least one recipient"));
        }
        Ok((from, to))
    }

    fn tls_parameters(&self, host: &str) -> Result<TlsParameters, FieldIssue> {
        let mut b = TlsParameters::builder(host.to_string());
        if let Some(ca) = &self.tls.ca_file {
            let data = std::fs::read(ca)
                .map_err(|e| FieldIssue::new("tls.ca_file", format!("{}: {e}", ca.display())))?;
            let certs: Vec<_> = rustls_pemfile::certs(&mut data.as_slice())
                .collect::<Result<_, _>>()
                .map_err(|e| FieldIssue::new("tls.ca_file", format!("{}: {e}", ca.display())))?;
            if certs.is_empty() {
                return Err(FieldIssue::new(
                    "tls.ca_file",
                    format!("{}: holds no PEM certificate", ca.display()),
                ));
            }
            for c in certs {
                let cert = Certificate::from_der(c.to_vec())
                    .map_err(|e| FieldIssue::new("tls.ca_file", e.to_string()))?;
                b = b.add_root_certificate(cert);
            }
        }
        if let (Some(crt), Some(key)) = (&self.tls.crt_file, &self.tls.key_file) {
            let read = |p: &std::path::Path, k: &str| {
                std::fs::read(p).map_err(|e| FieldIssue::new(k, format!("{}: {e}", p.display())))
            };
            let identity =
                Identity::from_pem(&read(crt, "tls.crt_file")?, &read(key, "tls.key_file")?)
                    .map_err(|e| FieldIssue::new("tls.crt_file", e.to_string()))?;
            b = b.identify_with(identity);
        }
        if self.tls.verify_certificate == Some(false) {
            b = b.dangerous_accept_invalid_certs(true);
        }
        if self.tls.verify_hostname == Some(false) {
            b = b.dangerous_accept_invalid_hostnames(true);
        }
        b.build_rustls()
            .map_err(|e| FieldIssue::new("tls", e.to_string()))
    }

    fn transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, FieldIssue> {
        let (host, port) = self.host_port()?;
        let params = self.tls_parameters(&host)?;
        let tls = if self.implicit_tls.unwrap_or(port == 465) {
            Tls::Wrapper(params)
        } else if self.require_tls {
            Tls::Required(params)
        } else {
            Tls::Opportunistic(params)
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .tls(tls)
            .timeout(Some(self.request.timeout()));
        if let Some(h) = &self.hello {
            b = b.hello_name(ClientId::Domain(h.clone()));
        }
        match (&self.auth_username, &self.auth_password) {
            (Some(u), Some(p)) => {
                b = b.credentials(Credentials::new(u.clone(), p.expose().to_string()));
            }
            (None, None) => {}
            _ => {
                return Err(FieldIssue::new(
                    "auth_username",
                    "and auth_password go together",
                ))
            }
        }
        Ok(b.build())
    }
}

impl SinkConfig for EmailConfig {
    fn validate(&self) -> Vec<FieldIssue> {
        let mut issues = Vec::new();
        if let Err(e) = self.mailboxes() {
            issues.push(e);
        }
        if let Err(e) = self.transport() {
            issues.push(e);
        }
        issues.extend(self.request.issues());
        issues.extend(self.tls.issues());
        issues
    }

    fn warnings(&self) -> Vec<FieldIssue> {
        let mut w = self.tls.warnings();
        if !self.require_tls && self.auth_password.is_some() {
            w.push(FieldIssue::new(
                "require_tls",
                "is false while auth_password is set: the password may cross the network unencrypted",
            ));
        }
        w
    }

    fn build(&self, cx: SinkContext) -> Result<Task, BuildError> {
        let (from, to) = self.mailboxes()?;
        let transport = self.transport()?;
        let deliver = EmailDeliver {
            transport,
            from,
            to,
            subject: self.subject.clone(),
            body: self.body.clone(),
            host: self.smarthost.clone(),
            timeout: self.request.timeout(),
        };
        let (request, queue) = (self.request.clone(), self.queue.clone());
        Ok(Box::pin(notification::run(
            deliver, request, queue, cx.input, cx.metrics, "email",
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::util::notification::view::AlertView;

    #[test]
    fn a_mail_lists_firing_then_resolved_and_escapes_html() {
        let a = |host: &str, status| AlertView {
            status,
            fingerprint: host.into(),
            labels: [
                ("alertname".to_string(), "HighErrorRate".to_string()),
                ("host".to_string(), host.to_string()),
                ("team".to_string(), "payments".to_string()),
            ]
            .into(),
            annotations: [("summary".to_string(), format!("<b>{host}</b> errors"))].into(),
            starts_at: "2026-12-01T10:00:00.000Z".into(),
            ends_at: None,
            value: Some("7".into()),
            flapping: false,
        };
        let n = Notification {
            key: Some("g".into()),
            group_labels: [("team".to_string(), "payments".to_string())].into(),
            alerts: vec![a("web-1", Status::Firing), a("web-2", Status::Resolved)],
            message: None,
        };
        let (subject, text, html) =
            render(&n, "{{ title }}", "Team {{ team }}: {{ firing }} firing");
        assert_eq!(subject, "[FIRING:1] HighErrorRate (team=payments)");
        assert!(text.starts_with("Team payments: 1 firing\n"), "{text}");
        let (f, r) = (
            text.find("FIRING (1)").unwrap(),
            text.find("RESOLVED (1)").unwrap(),
        );
        assert!(f < r);
        assert!(html.contains("&lt;b&gt;web-1&lt;/b&gt;"), "{html}");
        assert!(!html.contains("<b>web-1</b>"));
    }

    #[test]
    fn options_are_checked_with_their_keys() {
        let c: EmailConfig = toml::from_str(
            "smarthost = \"smtp.example.com\"\nfrom = \"not an address\"\nto = \"a@example.com, b@example.com\"",
        )
        .unwrap();
        let keys: Vec<_> = c.validate().into_iter().filter_map(|i| i.key).collect();
        assert!(keys.contains(&"smarthost".to_string()), "{keys:?}");
        assert!(keys.contains(&"from".to_string()), "{keys:?}");
        assert_eq!(c.to.each(), ["a@example.com", "b@example.com"]);
    }
}
