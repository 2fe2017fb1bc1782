//! Slack's and Discord's webhooks as they answer, for the notification sinks' tests
//! (neither can be reached from here): a [`Receiver`] whose judge checks every payload
//! against the documented limits (`shared/corpus/webhooks/LIMITS.md`) and answers like
//! the service: 400 with its error body for an oversize block or embed, 404 for an
//! unknown webhook, 429 with `Retry-After` (and Discord's JSON `retry_after` and
//! rate-limit headers) above one request per second, or during a throttle the test
//! sets. Accepted messages are recorded with the time they arrived.

use super::receiver::{Answer, Judge, Receiver};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Which service to model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// Incoming webhooks: 200 `ok`, errors as plain-text strings.
    Slack,
    /// Execute Webhook: 200 with the message (`wait=true`) or 204, errors as JSON.
    Discord,
}

/// A message the service accepted.
#[derive(Clone, Debug)]
pub struct Accepted {
    /// When it arrived.
    pub at: Instant,
    /// The payload.
    pub body: Json,
}

#[derive(Default)]
struct ChatState {
    accepted: Vec<Accepted>,
    /// Every answer given: (when, status).
    answers: Vec<(Instant, u16)>,
    /// The end of the last 429's `Retry-After`: a request before it is a violation.
    not_before: Option<Instant>,
    /// Requests that came earlier than a 429 allowed, or faster than 1/s.
    violations: Vec<String>,
    last_accepted: Option<Instant>,
    throttle_until: Option<Instant>,
    throttle_secs: u64,
    deleted: bool,
}

/// A running model of one webhook.
pub struct ChatServer {
    /// The receiver underneath (every request, answered or not, is in its log).
    pub receiver: Receiver,
    service: Service,
    state: Arc<Mutex<ChatState>>,
}

/// Slack and Discord count JavaScript string length.
pub fn units(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// How much faster than 1/s two accepted messages may arrive: the sender spaces them by
/// a second; the network may bring one a little early.
const JITTER: Duration = Duration::from_millis(50);

impl ChatServer {
    /// Starts the model.
    pub fn start(service: Service) -> ChatServer {
        let receiver = Receiver::start();
        let state = Arc::new(Mutex::new(ChatState::default()));
        let st = state.clone();
        let judge: Judge = Arc::new(move |path, _headers, body| {
            Some(judge(service, &mut st.lock().unwrap(), path, body))
        });
        receiver.set_judge(judge);
        ChatServer {
            receiver,
            service,
            state,
        }
    }

    /// The webhook's URL.
    pub fn url(&self) -> String {
        format!("{}{}", self.receiver.url(), self.path())
    }

    fn path(&self) -> &'static str {
        match self.service {
            Service::Slack => SLACK_PATH,
            Service::Discord => DISCORD_PATH,
        }
    }

    /// Answers every request 429 with `Retry-After: retry_after` for `d` from now.
    pub fn throttle_for(&self, d: Duration, retry_after: u64) {
        let mut s = self.state.lock().unwrap();
        s.throttle_until = Some(Instant::now() + d);
        s.throttle_secs = retry_after;
    }

    /// The webhook is deleted: 404 from now on.
    pub fn delete(&self) {
        self.state.lock().unwrap().deleted = true;
    }

    /// Messages accepted so far.
    pub fn accepted(&self) -> Vec<Accepted> {
        self.state.lock().unwrap().accepted.clone()
    }

    /// Every answer so far: (when, status).
    pub fn answers(&self) -> Vec<(Instant, u16)> {
        self.state.lock().unwrap().answers.clone()
    }

    /// Requests that broke the rate limit or a `Retry-After`.
    pub fn violations(&self) -> Vec<String> {
        self.state.lock().unwrap().violations.clone()
    }
}

const SLACK_PATH: &str = "/services/T0001/B0001/s3cr3tT0k3n";
const DISCORD_PATH: &str = "/api/webhooks/1234567890/s3cr3t-t0k3n";

fn slack_error(status: u16, text: &str) -> Answer {
    Answer::Status(
        status,
        vec![("Content-Type".into(), "text/plain".into())],
        text.into(),
    )
}

fn discord_error(status: u16, code: u32, message: &str) -> Answer {
    Answer::Status(
        status,
        vec![("Content-Type".into(), "application/json".into())],
        format!(r#"{{"code": {code}, "message": "{message}"}}"#),
    )
}

fn too_many(service: Service, secs: u64) -> Answer {
    match service {
        Service::Slack => Answer::Status(
            429,
            vec![("Retry-After".into(), secs.to_string())],
            "rate_limited".into(),
        ),
        Service::Discord => Answer::Status(
            429,
            vec![
                ("Content-Type".into(), "application/json".into()),
                ("Retry-After".into(), secs.to_string()),
                ("X-RateLimit-Limit".into(), "1".into()),
                ("X-RateLimit-Remaining".into(), "0".into()),
                ("X-RateLimit-Reset-After".into(), format!("{secs}.000")),
                ("X-RateLimit-Scope".into(), "user".into()),
            ],
            format!(
                r#"{{"message": "You are being rate limited.", "retry_after": {secs}.0, "global": false}}"#
            ),
        ),
    }
}

fn judge(service: Service, s: &mut ChatState, path: &str, body: &[u8]) -> Answer {
    let now = Instant::now();
    let answer = decide(service, s, path, body, now);
    let status = match &answer {
        Answer::Status(c, ..) => *c,
        _ => 0,
    };
    s.answers.push((now, status));
    answer
}

fn decide(service: Service, s: &mut ChatState, path: &str, body: &[u8], now: Instant) -> Answer {
    if let Some(nb) = s.not_before {
        if now + JITTER < nb {
            s.violations.push(format!(
                "a request {:?} before Retry-After allowed",
                nb - now
            ));
        }
    }
    let (base, query) = path.split_once('?').unwrap_or((path, ""));
    let expected = match service {
        Service::Slack => SLACK_PATH,
        Service::Discord => DISCORD_PATH,
    };
    if base != expected || s.deleted {
        return match service {
            Service::Slack => slack_error(404, "no_service"),
            Service::Discord => discord_error(404, 10015, "Unknown Webhook"),
        };
    }
    if let Some(until) = s.throttle_until {
        if now < until {
            s.not_before = Some(now + Duration::from_secs(s.throttle_secs));
            return too_many(service, s.throttle_secs);
        }
    }
    if let Some(last) = s.last_accepted {
        if now + JITTER < last + Duration::from_secs(1) {
            s.violations
                .push(format!("{:?} after the previous message", now - last));
            s.not_before = Some(last + Duration::from_secs(1));
            return too_many(service, 1);
        }
    }
    let Ok(v) = serde_json::from_slice::<Json>(body) else {
        return match service {
            Service::Slack => slack_error(400, "invalid_payload"),
            Service::Discord => {
                discord_error(400, 50109, "The request body contains invalid JSON.")
            }
        };
    };
    let problem = match service {
        Service::Slack => slack_problem(&v),
        Service::Discord => discord_problem(&v),
    };
    if let Some(p) = problem {
        return match service {
            Service::Slack => slack_error(400, p),
            Service::Discord => discord_error(400, 50035, &format!("Invalid Form Body ({p})")),
        };
    }
    s.last_accepted = Some(now);
    s.accepted.push(Accepted { at: now, body: v });
    match service {
        Service::Slack => Answer::Status(200, Vec::new(), "ok".into()),
        Service::Discord if query.contains("wait=true") => Answer::Status(
            200,
            vec![("Content-Type".into(), "application/json".into())],
            r#"{"id": "1", "type": 0}"#.into(),
        ),
        Service::Discord => Answer::Status(204, Vec::new(), String::new()),
    }
}

fn slack_problem(v: &Json) -> Option<&'static str> {
    let text = v["text"].as_str().unwrap_or("");
    let blocks = v["blocks"].as_array().cloned().unwrap_or_default();
    if text.is_empty() && blocks.is_empty() {
        return Some("no_text");
    }
    if units(text) > 40_000 || blocks.len() > 50 {
        return Some("invalid_blocks");
    }
    let mut total = 0;
    for b in &blocks {
        match b["type"].as_str() {
            Some("header") => {
                let t = b["text"]["text"].as_str().unwrap_or("");
                if b["text"]["type"] != "plain_text" || units(t) > 150 || t.is_empty() {
                    return Some("invalid_blocks");
                }
                total += units(t);
            }
            Some("section") => {
                let t = b["text"]["text"].as_str().unwrap_or("");
                if units(t) > 3000 || t.is_empty() {
                    return Some("invalid_blocks");
                }
                total += units(t);
            }
            Some("context") => {
                let el = b["elements"].as_array().cloned().unwrap_or_default();
                if el.is_empty() || el.len() > 10 {
                    return Some("invalid_blocks");
                }
                total += el
                    .iter()
                    .map(|e| units(e["text"].as_str().unwrap_or("")))
                    .sum::<usize>();
            }
            _ => return Some("invalid_blocks_format"),
        }
    }
    // What Slack users meet below the documented limits (bolt-js#2509).
    if total > 13_000 {
        return Some("msg_blocks_too_long");
    }
    None
}

fn discord_problem(v: &Json) -> Option<&'static str> {
    let content = v["content"].as_str().unwrap_or("").trim();
    let embeds = v["embeds"].as_array().cloned().unwrap_or_default();
    if content.is_empty() && embeds.is_empty() {
        return Some("empty message");
    }
    if units(content) > 2000 {
        return Some("content");
    }
    if embeds.len() > 10 {
        return Some("embeds");
    }
    let len = |x: &Json| units(x.as_str().unwrap_or("").trim());
    let mut total = 0;
    for e in &embeds {
        if len(&e["title"]) > 256 || len(&e["description"]) > 4096 {
            return Some("embed title or description");
        }
        if len(&e["footer"]["text"]) > 2048 {
            return Some("footer");
        }
        total += len(&e["title"]) + len(&e["description"]) + len(&e["footer"]["text"]);
        let fields = e["fields"].as_array().cloned().unwrap_or_default();
        if fields.len() > 25 {
            return Some("fields");
        }
        for f in fields {
            let (n, val) = (len(&f["name"]), len(&f["value"]));
            if n == 0 || n > 256 || val == 0 || val > 1024 {
                return Some("field name or value");
            }
            total += n + val;
        }
    }
    if total > 6000 {
        return Some("embeds total over 6000");
    }
    None
}

/// Every mrkdwn text of a Slack message, and the fallback text.
pub fn slack_texts(v: &Json) -> Vec<String> {
    let mut out = vec![v["text"].as_str().unwrap_or("").to_string()];
    for b in v["blocks"].as_array().into_iter().flatten() {
        if b["text"]["type"] == "mrkdwn" {
            out.push(b["text"]["text"].as_str().unwrap_or("").to_string());
        }
        for e in b["elements"].as_array().into_iter().flatten() {
            out.push(e["text"].as_str().unwrap_or("").to_string());
        }
    }
    out
}

/// Counts of the statuses answered.
pub fn statuses(answers: &[(Instant, u16)]) -> HashMap<u16, usize> {
    let mut m = HashMap::new();
    for (_, s) in answers {
        *m.entry(*s).or_default() += 1;
    }
    m
}
