//! `discord` sink: one message per notification group to a Discord webhook, one embed
//! per alert coloured by severity and status. Discord's limits are kept by cutting on
//! character boundaries: content ≤ 2,000, ≤ 10 embeds, title ≤ 256, description ≤
//! 4,096, ≤ 25 fields (name ≤ 256, value ≤ 1,024), and ≤ 6,000 characters across all
//! embeds; what does not fit is "+N more alerts" in the content. `allowed_mentions`
//! is always `{"parse": []}`, so `@everyone` in a log line pings nobody. Messages are
//! sent with `?wait=true` so a 200 means Discord stored the message. A 401, 403 or 404
//! (webhook deleted or its token revoked) stops the sink calling it, as Discord asks;
//! its rate-limit headers are read on every answer. Queueing, rate limit and 429 are
//! [`crate::sinks::util::notification`]'s.

use crate::config::field::FieldIssue;
use crate::config::secret::Secret;
use crate::http::ClientTlsConfig;
use crate::sinks::util::notification::view::{fit, units, AlertView, Status};
use crate::sinks::util::notification::{
    self, Deliver, Delivery, Notification, NotifyRequestConfig, QueueConfig, Webhook,
};
use crate::topology::component::{BuildError, SinkConfig, SinkContext, Task};
use serde::Deserialize;
use serde_json::{json, Value};

/// `[sinks.ID] type = "discord"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscordConfig {
    /// The webhook URL (`https://discord.com/api/webhooks/ID/TOKEN`). It is the
    /// credential: write it as `${DISCORD_WEBHOOK_URL}`; it is never logged.
    pub url: Secret,
    /// Overrides the webhook's name: 1–80 characters, without "clyde" or "discord".
    pub username: Option<String>,
    /// Overrides the webhook's avatar.
    pub avatar_url: Option<String>,
    /// Posts into this thread (needed for forum channels).
    pub thread_id: Option<String>,
    /// Timeout, rate limit (1 message/s by default) and retries.
    #[serde(default)]
    pub request: NotifyRequestConfig,
    /// How many groups may wait unsent.
    #[serde(default)]
    pub queue: QueueConfig,
    /// Trust for the HTTPS endpoint.
    #[serde(default)]
    pub tls: ClientTlsConfig,
}

const CONTENT: usize = 2000;
const EMBEDS: usize = 10;
const TITLE: usize = 256;
const DESCRIPTION: usize = 4096;
const FIELDS: usize = 25;
const FIELD_NAME: usize = 256;
const FIELD_VALUE: usize = 1024;
const TOTAL: usize = 6000;
const FOOTER: &str = "sluice";

fn colour(a_status: Status, severity: Option<&str>) -> u32 {
    if a_status == Status::Resolved {
        return 0x2e_cc_71;
    }
    match severity {
        Some("warning" | "warn") => 0xe6_7e_22,
        Some("info" | "notice") => 0x34_98_db,
        _ => 0xe7_4c_3c,
    }
}

/// One alert's embed within `budget` characters, with its size; `None` when not even
/// a title and a short description fit.
fn embed(a: &AlertView, budget: usize) -> Option<(Value, usize)> {
    let mark = match a.status {
        Status::Firing if a.flapping => "FLAPPING",
        Status::Firing => "FIRING",
        Status::Resolved => "RESOLVED",
    };
    let title = fit(&format!("{mark} · {}", a.headline()), TITLE, "…");
    let mut size = units(&title) + units(FOOTER);
    let mut fields = Vec::new();
    let mut entries: Vec<(String, String)> = a
        .labels
        .iter()
        .filter(|(k, _)| k.as_str() != "alertname")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(v) = &a.value {
        entries.push(("value".into(), v.clone()));
    }
    if let Some(r) = a
        .annotations
        .get("runbook_url")
        .or_else(|| a.annotations.get("runbook"))
    {
        entries.push(("runbook".into(), r.clone()));
    }
    for (k, v) in entries.into_iter().take(FIELDS) {
        let name = fit(&k, FIELD_NAME, "…");
        let mut value = fit(&v, FIELD_VALUE, "…");
        if value.is_empty() {
            // Discord refuses empty field values.
            value = "-".into();
        }
        let n = units(&name) + units(&value);
        if size + n + 64 > budget {
            break;
        }
        size += n;
        fields.push(json!({"name": name, "value": value, "inline": true}));
    }
    let mut text = a
        .annotations
        .get("description")
        .cloned()
        .unwrap_or_default();
    if a.annotations.contains_key("summary") && !text.is_empty() {
        text = format!("{}\n{text}", a.headline());
    } else if text.is_empty() {
        text = a.headline().to_string();
    }
    if let Some(e) = &a.ends_at {
        text.push_str(&format!("\nresolved {e}"));
    }
    let room = DESCRIPTION.min(budget.checked_sub(size)?);
    if room < 32.min(units(&text)) {
        return None;
    }
    let description = fit(&text, room, "…");
    size += units(&description);
    let mut e = json!({
        "title": title,
        "description": description,
        "color": colour(a.status, a.labels.get("severity").map(String::as_str)),
        "fields": fields,
        "footer": {"text": FOOTER},
    });
    if chrono::DateTime::parse_from_rfc3339(&a.starts_at).is_ok() {
        e["timestamp"] = json!(a.starts_at);
    }
    Some((e, size))
}

/// The message for one notification (without `username` and `avatar_url`).
pub fn render(n: &Notification) -> Value {
    let mut embeds = Vec::new();
    let mut content = n.title();
    if let Some(m) = &n.message {
        let description = fit(m, DESCRIPTION.min(TOTAL - units(FOOTER)), "…");
        embeds.push(json!({"description": description, "footer": {"text": FOOTER}}));
    } else {
        let mut left = TOTAL;
        let mut shown = 0;
        for a in &n.alerts {
            if embeds.len() == EMBEDS {
                break;
            }
            let Some((e, size)) = embed(a, left) else {
                break;
            };
            left -= size;
            embeds.push(e);
            shown += 1;
        }
        let more = n.alerts.len() - shown;
        if more > 0 {
            content = format!("{}\n+{more} more alerts", fit(&content, CONTENT - 40, "…"));
        }
    }
    json!({
        "content": fit(&content, CONTENT, "…"),
        "embeds": embeds,
        "allowed_mentions": {"parse": []},
    })
}

struct DiscordDeliver {
    webhook: Webhook,
    username: Option<String>,
    avatar_url: Option<String>,
}

impl Deliver for DiscordDeliver {
    async fn deliver(&self, n: &Notification) -> Delivery {
        let mut v = render(n);
        if let Some(u) = &self.username {
            v["username"] = json!(u);
        }
        if let Some(a) = &self.avatar_url {
            v["avatar_url"] = json!(a);
        }
        let body = serde_json::to_vec(&v).unwrap_or_default();
        self.webhook.post(body).await
    }
}

impl DiscordConfig {
    fn uri(&self) -> Result<hyper::Uri, FieldIssue> {
        let base = Webhook::parse_url(self.url.expose())?;
        let mut s = base.to_string();
        s.push(if base.query().is_some() { '&' } else { '?' });
        s.push_str("wait=true");
        if let Some(t) = &self.thread_id {
            if !t.chars().all(|c| c.is_ascii_digit()) || t.is_empty() {
                return Err(FieldIssue::new(
                    "thread_id",
                    "must be a Discord ID (digits)",
                ));
            }
            s.push_str("&thread_id=");
            s.push_str(t);
        }
        Webhook::parse_url(&s)
    }
}

impl SinkConfig for DiscordConfig {
    fn validate(&self) -> Vec<FieldIssue> {
        let mut issues = Webhook::issues(self.uri(), &self.request, &self.tls);
        if let Some(u) = &self.username {
            let lower = u.to_lowercase();
            if u.trim().is_empty() || u.chars().count() > 80 {
                issues.push(FieldIssue::new("username", "must be 1 to 80 characters"));
            } else if lower.contains("clyde") || lower.contains("discord") {
                issues.push(FieldIssue::new(
                    "username",
                    "Discord refuses names containing \"clyde\" or \"discord\"",
                ));
            }
        }
        issues
    }

    fn warnings(&self) -> Vec<FieldIssue> {
        self.tls.warnings()
    }

    fn build(&self, cx: SinkContext) -> Result<Task, BuildError> {
        let uri = self.uri()?;
        let deliver = DiscordDeliver {
            // 401 invalid token, 403 no permission, 404 unknown webhook: Discord asks
            // clients to stop, or it blocks the address.
            webhook: Webhook::build(
                uri,
                &self.tls,
                &self.request,
                &cx,
                &[401, 403, 404],
                "Discord",
            )?,
            username: self.username.clone(),
            avatar_url: self.avatar_url.clone(),
        };
        let (request, queue) = (self.request.clone(), self.queue.clone());
        Ok(Box::pin(notification::run(
            deliver, request, queue, cx.input, cx.metrics, "discord",
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn alert(i: usize, summary: &str, description: &str) -> AlertView {
        AlertView {
            status: Status::Firing,
            fingerprint: format!("{i:016x}"),
            labels: [
                ("alertname".to_string(), "HighErrorRate".to_string()),
                ("host".to_string(), format!("web{i}")),
                ("severity".to_string(), "warning".to_string()),
            ]
            .into(),
            annotations: [
                ("summary".to_string(), summary.to_string()),
                ("description".to_string(), description.to_string()),
            ]
            .into(),
            starts_at: "2026-12-01T10:00:00.000Z".into(),
            ends_at: None,
            value: Some("120".into()),
            flapping: false,
        }
    }

    fn notification(alerts: Vec<AlertView>) -> Notification {
        Notification {
            key: Some("g".into()),
            group_labels: [("alertname".to_string(), "HighErrorRate".to_string())].into(),
            alerts,
            message: None,
        }
    }

    /// Every documented limit, as the test receiver checks them too.
    fn check(v: &Value) {
        assert!(units(v["content"].as_str().unwrap()) <= CONTENT);
        let embeds = v["embeds"].as_array().unwrap();
        assert!(embeds.len() <= EMBEDS);
        let mut total = 0;
        for e in embeds {
            let t = |k: &str| units(e[k].as_str().unwrap_or(""));
            assert!(t("title") <= TITLE);
            assert!(t("description") <= DESCRIPTION);
            total += t("title") + t("description") + units(e["footer"]["text"].as_str().unwrap());
            let fields = e["fields"].as_array().cloned().unwrap_or_default();
            assert!(fields.len() <= FIELDS);
            for f in fields {
                let (n, val) = (f["name"].as_str().unwrap(), f["value"].as_str().unwrap());
                assert!(units(n) <= FIELD_NAME && units(val) <= FIELD_VALUE && !val.is_empty());
                total += units(n) + units(val);
            }
        }
        assert!(total <= TOTAL, "{total}");
        assert_eq!(v["allowed_mentions"], json!({"parse": []}));
    }

    #[test]
    fn many_and_large_alerts_stay_within_every_limit() {
        let v = render(&notification(
            (0..10_000).map(|i| alert(i, "errors", "x")).collect(),
        ));
        check(&v);
        assert_eq!(v["embeds"].as_array().unwrap().len(), 10);
        assert!(v["content"]
            .as_str()
            .unwrap()
            .ends_with("+9990 more alerts"));

        let big = "é".repeat(5000);
        let v = render(&notification(
            (0..3).map(|i| alert(i, &big, &big)).collect(),
        ));
        check(&v);
        assert!(v["content"].as_str().unwrap().contains("more alerts"));

        let plain = Notification {
            key: None,
            group_labels: BTreeMap::new(),
            alerts: vec![],
            message: Some(format!("@everyone {}", "😀".repeat(3000))),
        };
        let v = render(&plain);
        check(&v);
    }

    #[test]
    fn colours_follow_status_and_severity() {
        let mut a = alert(1, "s", "d");
        let v = render(&notification(vec![a.clone()]));
        assert_eq!(v["embeds"][0]["color"], json!(0xe67e22));
        a.status = Status::Resolved;
        let v = render(&notification(vec![a]));
        assert_eq!(v["embeds"][0]["color"], json!(0x2ecc71));
        assert!(v["embeds"][0]["title"]
            .as_str()
            .unwrap()
            .starts_with("RESOLVED"));
    }

    #[test]
    fn the_url_gets_wait_and_the_thread() {
        let c: DiscordConfig =
            toml::from_str("url = \"https://discord.com/api/webhooks/1/tok\"\nthread_id = \"42\"")
                .unwrap();
        assert_eq!(
            c.uri().unwrap().to_string(),
            "https://discord.com/api/webhooks/1/tok?wait=true&thread_id=42"
        );
        let c: DiscordConfig =
            toml::from_str("url = \"https://x/y\"\nusername = \"My Discord bot\"").unwrap();
        let issues = c.validate();
        assert!(issues.iter().any(|i| i.key.as_deref() == Some("username")));
    }
}
