//! `slack` sink: one message per notification group to a Slack incoming webhook, in
//! Block Kit (a header, one section per alert, a context line) with a plain `text`
//! fallback for the phone notification. Every limit Slack documents is kept by cutting
//! on character boundaries and saying "+N more alerts": header ≤ 150, section ≤ 3,000,
//! ≤ 50 blocks, and a total of block text well under the ~13,000 at which Slack starts
//! answering `msg_blocks_too_long`. Log text is escaped (`&`, `<`, `>`), so nothing in
//! a log line can ping `@channel` or become a link. Queueing, rate limit and 429 are
//! [`crate::sinks::util::notification`]'s.

use crate::config::field::FieldIssue;
use crate::config::secret::Secret;
use crate::http::ClientTlsConfig;
use crate::sinks::util::notification::view::{fit, fit_mrkdwn, AlertView, Status};
use crate::sinks::util::notification::{
    self, Deliver, Delivery, Notification, NotifyRequestConfig, QueueConfig, Webhook,
};
use crate::topology::component::{BuildError, SinkConfig, SinkContext, Task};
use serde::Deserialize;
use serde_json::{json, Value};

/// `[sinks.ID] type = "slack"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// The incoming webhook URL (`https://hooks.slack.com/services/…`). It is the
    /// credential: write it as `${SLACK_WEBHOOK_URL}`; it is never logged.
    pub url: Secret,
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

/// Section text limit.
const SECTION: usize = 3000;
/// Header text limit.
const HEADER: usize = 150;
/// Blocks per message.
const MAX_BLOCKS: usize = 50;
/// Block text sluice allows itself per message: the documented limits alone are not
/// enough (slackapi/bolt-js#2509 saw `msg_blocks_too_long` near 13,000).
const BLOCK_BUDGET: usize = 11_000;
/// The fallback `text`: Slack keeps 40,000 but advises about 4,000.
const TEXT: usize = 3000;

fn emoji(n: &Notification) -> &'static str {
    if n.alerts.is_empty() {
        return ":speech_balloon:";
    }
    if n.status() == Status::Resolved {
        return ":white_check_mark:";
    }
    match n.severity().as_deref() {
        Some("critical" | "page" | "error" | "emergency") => ":red_circle:",
        Some("warning" | "warn") => ":large_orange_circle:",
        Some("info" | "notice") => ":large_blue_circle:",
        _ => ":fire:",
    }
}

fn alert_section(a: &AlertView) -> String {
    let mark = match a.status {
        Status::Firing if a.flapping => ":repeat: FLAPPING",
        Status::Firing => ":fire: FIRING",
        Status::Resolved => ":white_check_mark: RESOLVED",
    };
    let mut s = format!("{mark} {}", a.headline());
    // Bold for the headline line; the marker and headline are escaped below with the
    // rest (the asterisks are ours).
    if let Some(d) = a.annotations.get("description") {
        s.push('\n');
        s.push_str(d);
    }
    let labels = a.label_pairs();
    if !labels.is_empty() {
        s.push('\n');
        s.push_str(&labels.join("  "));
    }
    let mut when = Vec::new();
    if let Some(v) = &a.value {
        when.push(format!("value {v}"));
    }
    if !a.starts_at.is_empty() {
        when.push(format!("since {}", a.starts_at));
    }
    if let Some(e) = &a.ends_at {
        when.push(format!("resolved {e}"));
    }
    if let Some(r) = a
        .annotations
        .get("runbook_url")
        .or_else(|| a.annotations.get("runbook"))
    {
        when.push(format!("runbook {r}"));
    }
    if !when.is_empty() {
        s.push('\n');
        s.push_str(&when.join(" · "));
    }
    s
}

/// The message for one notification.
pub fn render(n: &Notification) -> Value {
    let title = n.title();
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": fit(&format!("{} {title}", emoji(n)), HEADER, "…"), "emoji": true}
    })];
    let mut used = 0usize;
    let text;
    if let Some(m) = &n.message {
        // A plain event: its text in sections of at most 3,000.
        let escaped = fit_mrkdwn(m, BLOCK_BUDGET, "… (cut)");
        let mut rest = escaped.as_str();
        while !rest.is_empty() && blocks.len() < MAX_BLOCKS - 1 {
            let piece = fit(rest, SECTION, "");
            let piece = if piece.is_empty() {
                rest.to_string()
            } else {
                piece
            };
            rest = rest[piece.len().min(rest.len())..].trim_start();
            blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": piece}}));
        }
        text = fit_mrkdwn(m, TEXT, "…");
    } else {
        let mut shown = 0;
        for a in &n.alerts {
            let section = fit_mrkdwn(&alert_section(a), SECTION, "…");
            // Room for this section, the "+N more" line and the context line.
            if blocks.len() + 3 > MAX_BLOCKS || used + section.len() > BLOCK_BUDGET {
                break;
            }
            used += section.len();
            blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": section}}));
            shown += 1;
        }
        let more = n.alerts.len() - shown;
        if more > 0 {
            blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("_+{more} more alerts_")}}));
        }
        let lines: Vec<String> = n
            .alerts
            .iter()
            .take(20)
            .map(|a| format!("{}: {}", a.status.as_str(), a.headline()))
            .collect();
        text = fit_mrkdwn(&format!("{title}\n{}", lines.join("\n")), TEXT, "…");
        let resolved = n.alerts.len() - n.firing();
        let mut ctx = format!("sluice · {} firing, {resolved} resolved", n.firing());
        if !n.group_labels.is_empty() {
            let g: Vec<String> = n
                .group_labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            ctx.push_str(" · ");
            ctx.push_str(&g.join(" "));
        }
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": fit_mrkdwn(&ctx, SECTION, "…")}]}));
    }
    json!({"text": text, "blocks": blocks, "unfurl_links": false, "unfurl_media": false})
}

struct SlackDeliver {
    webhook: Webhook,
}

impl Deliver for SlackDeliver {
    async fn deliver(&self, n: &Notification) -> Delivery {
        let body = serde_json::to_vec(&render(n)).unwrap_or_default();
        self.webhook.post(body).await
    }
}

impl SinkConfig for SlackConfig {
    fn validate(&self) -> Vec<FieldIssue> {
        Webhook::issues(
            Webhook::parse_url(self.url.expose()),
            &self.request,
            &self.tls,
        )
    }

    fn warnings(&self) -> Vec<FieldIssue> {
        self.tls.warnings()
    }

    fn build(&self, cx: SinkContext) -> Result<Task, BuildError> {
        let uri = Webhook::parse_url(self.url.expose())?;
        let deliver = SlackDeliver {
            // 404 no_service / channel_not_found, 410 channel_is_archived.
            webhook: Webhook::build(uri, &self.tls, &self.request, &cx, &[404, 410], "Slack")?,
        };
        let (request, queue) = (self.request.clone(), self.queue.clone());
        Ok(Box::pin(notification::run(
            deliver, request, queue, cx.input, cx.metrics, "slack",
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::util::notification::view::units;
    use std::collections::BTreeMap;

    fn alert(i: usize, summary: &str) -> AlertView {
        AlertView {
            status: Status::Firing,
            fingerprint: format!("{i:016x}"),
            labels: [
                ("alertname".to_string(), "HighErrorRate".to_string()),
                ("host".to_string(), format!("web{i}")),
                ("severity".to_string(), "page".to_string()),
            ]
            .into(),
            annotations: [("summary".to_string(), summary.to_string())].into(),
            starts_at: "2026-12-01T10:00:00.000Z".into(),
            ends_at: None,
            value: Some("120".into()),
            flapping: false,
        }
    }

    fn notification(alerts: Vec<AlertView>) -> Notification {
        Notification {
            key: Some("{}:{alertname=\"HighErrorRate\"}".into()),
            group_labels: [("alertname".to_string(), "HighErrorRate".to_string())].into(),
            alerts,
            message: None,
        }
    }

    fn texts(v: &Value) -> Vec<(String, String)> {
        v["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                let t = b["text"]["text"]
                    .as_str()
                    .or_else(|| b["elements"][0]["text"].as_str())
                    .unwrap_or_default();
                (b["type"].as_str().unwrap().to_string(), t.to_string())
            })
            .collect()
    }

    #[test]
    fn ten_thousand_alerts_fit_slacks_limits_in_one_message() {
        let alerts = (0..10_000)
            .map(|i| alert(i, &format!("web{i}: {} errors", "é".repeat(i % 50))))
            .collect();
        let v = render(&notification(alerts));
        let blocks = texts(&v);
        assert!(blocks.len() <= MAX_BLOCKS, "{}", blocks.len());
        let mut total = 0;
        for (kind, t) in &blocks {
            let limit = if kind == "header" { HEADER } else { SECTION };
            assert!(units(t) <= limit, "{kind}: {}", units(t));
            total += units(t);
        }
        assert!(total <= 13_000, "{total}");
        assert!(units(v["text"].as_str().unwrap()) <= 40_000);
        assert!(
            blocks.iter().any(|(_, t)| t.contains("more alerts_")),
            "{blocks:?}"
        );
        assert!(blocks[0]
            .1
            .starts_with(":red_circle: [FIRING:10000] HighErrorRate"));
    }

    #[test]
    fn log_text_cannot_ping_or_link() {
        let n = notification(vec![alert(
            1,
            "<!channel> disk full & <@U123> <http://x|y>",
        )]);
        let body = serde_json::to_string(&render(&n)).unwrap();
        for bad in ["<!channel>", "<@U123>", "<http"] {
            assert!(!body.contains(bad), "{bad} in {body}");
        }
        assert!(body.contains("&lt;!channel&gt; disk full &amp; &lt;@U123&gt;"));
    }

    #[test]
    fn a_long_section_is_cut_on_a_character_boundary() {
        let n = notification(vec![alert(1, &"😀".repeat(4000))]);
        let v = render(&n);
        for (_, t) in texts(&v) {
            assert!(units(&t) <= SECTION);
        }
        let plain = Notification {
            key: None,
            group_labels: BTreeMap::new(),
            alerts: vec![],
            message: Some("x".repeat(10_000)),
        };
        let v = render(&plain);
        let blocks = texts(&v);
        assert!(blocks.len() >= 4, "{}", blocks.len());
        assert!(blocks.iter().all(|(_, t)| units(t) <= SECTION));
    }

    #[test]
    fn resolved_groups_say_so() {
        let mut a = alert(1, "ok again");
        a.status = Status::Resolved;
        a.ends_at = Some("2026-12-01T10:05:00.000Z".into());
        let v = render(&notification(vec![a]));
        let blocks = texts(&v);
        assert!(blocks[0]
            .1
            .starts_with(":white_check_mark: [RESOLVED] HighErrorRate"));
        assert!(blocks[1].1.contains("RESOLVED ok again"));
    }
}
