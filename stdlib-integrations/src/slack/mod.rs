//! The Slack integration: `slack.post` through the Web API's
//! `chat.postMessage` (bot token as a Bearer header, JSON body) and
//! `slack.webhook` through incoming webhooks, or an embedded sink that
//! records messages when there is no `[slack]` section.
//!
//! Answers: `post` gives `{channel, ts}` (Slack's channel id and message
//! timestamp), `webhook` gives null. Slack's `ok: false` errors become
//! failures: `ratelimited` and Slack's own outages are retryable, the rest
//! (`channel_not_found`, `invalid_auth`, ...) permanent, kind `rejected`.
//! A 429 is retried inside the attempt after `Retry-After` when the wait
//! fits before the deadline, else a retryable `rate_limited` failure (see
//! [`crate::web`]). Each channel (and each webhook) is rate limited by a
//! token bucket, `channel_rate` per second.
//!
//! Slack has no idempotency key; every post carries the effect id in its
//! message metadata (`event_type: drover_effect`) so duplicates from a
//! retry after a lost answer can be found.

pub mod config;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use drover_ir::Value;
use serde_json::json;

pub use config::SlackConfig;

use crate::args::{self, bad};
use crate::web::{self, RateLimiter, Retrying};
use crate::{
    summary, EffectCall, EffectFailure, Health, Integration, ResourceDecl, ResourceLimit, Secret,
};

/// The operations, in catalog order.
pub const OPERATIONS: &[&str] = &["post", "webhook"];

/// How many messages the embedded sink keeps (the oldest go first).
pub const SINK_LIMIT: usize = 10_000;

/// The Slack integration.
pub struct SlackIntegration {
    mode: Mode,
    /// Per-channel buckets; none when embedded (no remote quota).
    limiter: Option<RateLimiter>,
    rate: (f64, u32),
}

enum Mode {
    Api(Api),
    Embedded(SlackSink),
}

struct Api {
    client: reqwest::Client,
    base: String,
    token: Option<Secret>,
    webhooks: std::collections::BTreeMap<String, Secret>,
    max_attempts: u32,
}

/// A message the embedded sink recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct SlackMessage {
    /// The channel, or `webhook:<name>` (a webhook given by URL shows as
    /// `webhook:[redacted]`).
    pub target: String,
    /// The text.
    pub text: String,
    /// The Block Kit blocks, if any.
    pub blocks: Option<serde_json::Value>,
    /// The effect that posted it.
    pub effect_id: String,
    /// The timestamp answered.
    pub ts: String,
}

/// Where messages go when there is no Slack: a bounded in-memory list.
#[derive(Debug, Default)]
pub struct SlackSink {
    messages: Mutex<VecDeque<SlackMessage>>,
    seq: AtomicU64,
}

impl SlackSink {
    /// The messages recorded, oldest first.
    pub fn messages(&self) -> Vec<SlackMessage> {
        self.lock().iter().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<SlackMessage>> {
        self.messages.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(&self, mut m: SlackMessage) -> String {
        let n = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        // Slack's ts is seconds.micros and unique per channel.
        m.ts = format!("{secs}.{:06}", n % 1_000_000);
        let ts = m.ts.clone();
        let mut g = self.lock();
        if g.len() >= SINK_LIMIT {
            g.pop_front();
        }
        g.push_back(m);
        ts
    }
}

/// A validated message.
struct Message {
    text: String,
    blocks: Option<serde_json::Value>,
}

fn message(text: &Value, blocks: &Value) -> Result<Message, EffectFailure> {
    let text = args::string(text, "text")?.to_owned();
    let blocks = match blocks {
        Value::Null => None,
        Value::List(_) => Some(blocks.to_json()),
        other => {
            return Err(bad(
                "blocks",
                format!(
                    "expected a list of Block Kit blocks or null, got {}",
                    other.kind()
                ),
            ))
        }
    };
    if text.is_empty() && blocks.is_none() {
        return Err(bad("text", "a message needs text or blocks"));
    }
    if text.len() > 40_000 {
        return Err(bad("text", "Slack takes at most 40000 characters"));
    }
    Ok(Message { text, blocks })
}

impl SlackIntegration {
    /// The integration against Slack's Web API as configured.
    pub fn new(c: &SlackConfig) -> Result<Self, String> {
        Ok(SlackIntegration {
            mode: Mode::Api(Api {
                client: web::client(c.timeout)?,
                base: c.url.clone(),
                token: c.token.clone(),
                webhooks: c.webhooks.clone(),
                max_attempts: c.max_attempts,
            }),
            limiter: Some(RateLimiter::new(c.channel_rate, c.channel_burst)),
            rate: (c.channel_rate, c.channel_burst),
        })
    }

    /// The embedded fallback: messages go to a [`SlackSink`].
    pub fn embedded() -> Self {
        let d = SlackConfig::default();
        SlackIntegration {
            mode: Mode::Embedded(SlackSink::default()),
            limiter: None,
            rate: (d.channel_rate, d.channel_burst),
        }
    }

    /// The embedded sink, when embedded.
    pub fn sink(&self) -> Option<&SlackSink> {
        match &self.mode {
            Mode::Embedded(s) => Some(s),
            Mode::Api(_) => None,
        }
    }

    async fn post(&self, call: &EffectCall<'_>) -> Result<Value, EffectFailure> {
        let channel = args::string(&call.args[0], "channel")?;
        if channel.is_empty() || channel.chars().any(char::is_whitespace) {
            return Err(bad("channel", "expected a channel id or #name"));
        }
        let m = message(&call.args[1], &call.args[2])?;
        if let Some(l) = &self.limiter {
            l.take("slack.post", channel, call.deadline).await?;
        }
        let api = match &self.mode {
            Mode::Embedded(sink) => {
                let ts = sink.record(SlackMessage {
                    target: channel.to_owned(),
                    text: m.text,
                    blocks: m.blocks,
                    effect_id: call.effect_id.to_owned(),
                    ts: String::new(),
                });
                return Ok(posted(channel, &ts));
            }
            Mode::Api(api) => api,
        };
        let Some(token) = &api.token else {
            return Err(EffectFailure::permanent(
                "unavailable",
                "slack.post needs a bot token: set [slack] token or DROVER_SLACK_TOKEN",
            ));
        };
        let mut body = json!({
            "channel": channel,
            "text": m.text,
            "metadata": {
                "event_type": "drover_effect",
                "event_payload": { "effect_id": call.effect_id },
            },
        });
        if let Some(b) = m.blocks {
            body["blocks"] = b;
        }
        let url = format!("{}/chat.postMessage", api.base);
        let retrying = Retrying {
            max_sends: api.max_attempts,
            deadline: call.deadline,
        };
        let resp = web::send("slack.post", retrying, || {
            api.client
                .post(&url)
                .bearer_auth(token.expose())
                .json(&body)
        })
        .await?
        .map_err(|g| g.failure("slack.post"))?;
        let status = resp.status();
        let text = web::read_text(resp, 1 << 20)
            .await
            .map_err(|e| web::transport_failure("slack.post", e))?;
        let answer: serde_json::Value = serde_json::from_str(&text).map_err(|_| {
            EffectFailure::retryable(
                "unavailable",
                format!(
                    "slack.post: HTTP {} with a body that is not JSON{}",
                    status.as_u16(),
                    web::body_note(&text)
                ),
            )
        })?;
        if answer["ok"] != json!(true) {
            let code = answer["error"].as_str().unwrap_or("unknown_error");
            return Err(slack_error("slack.post", code));
        }
        match (answer["channel"].as_str(), answer["ts"].as_str()) {
            (Some(c), Some(ts)) => Ok(posted(c, ts)),
            _ => Err(EffectFailure::retryable(
                "unavailable",
                "slack.post: Slack answered ok without channel and ts",
            )),
        }
    }

    async fn webhook(&self, call: &EffectCall<'_>) -> Result<Value, EffectFailure> {
        let target = args::string(&call.args[0], "url")?;
        let m = message(&call.args[1], &call.args[2])?;
        let (url, label) = match &self.mode {
            Mode::Api(api) => match api.webhooks.get(target) {
                Some(u) => (Some(u.expose().to_owned()), format!("webhook:{target}")),
                None if web::check_base_url(target).is_ok() => {
                    (Some(target.to_owned()), "webhook:[redacted]".to_owned())
                }
                None => {
                    return Err(bad(
                        "url",
                        "expected a webhook URL or the name of one in [slack] webhooks",
                    ))
                }
            },
            Mode::Embedded(_) => {
                let label = if target.contains("://") {
                    "webhook:[redacted]".to_owned()
                } else {
                    format!("webhook:{target}")
                };
                (None, label)
            }
        };
        if let Some(l) = &self.limiter {
            l.take("slack.webhook", &label, call.deadline).await?;
        }
        let api = match &self.mode {
            Mode::Embedded(sink) => {
                sink.record(SlackMessage {
                    target: label,
                    text: m.text,
                    blocks: m.blocks,
                    effect_id: call.effect_id.to_owned(),
                    ts: String::new(),
                });
                return Ok(Value::Null);
            }
            Mode::Api(api) => api,
        };
        let url = url.unwrap_or_default();
        let mut body = json!({ "text": m.text });
        if let Some(b) = m.blocks {
            body["blocks"] = b;
        }
        let retrying = Retrying {
            max_sends: api.max_attempts,
            deadline: call.deadline,
        };
        let resp = web::send("slack.webhook", retrying, || {
            api.client.post(&url).json(&body)
        })
        .await?
        .map_err(|g| g.failure("slack.webhook"))?;
        let status = resp.status();
        let text = web::read_text(resp, 4096).await.unwrap_or_default();
        if status.is_success() {
            return Ok(Value::Null);
        }
        // Webhooks answer errors as plain text codes: invalid_payload,
        // channel_not_found, action_prohibited, ...
        let code = text.trim();
        let code = if code.is_empty() { "http_error" } else { code };
        let mut f = slack_error("slack.webhook", summary::cut(code, 100));
        f.message = format!("{} (HTTP {})", f.message, status.as_u16());
        Err(f)
    }

    fn redacted<'a>(&self, call: &EffectCall<'a>) -> EffectCall<'a> {
        let mut c = call.clone();
        if call.op == "webhook" {
            if let Some(Value::Str(u)) = c.args.first() {
                let named = matches!(&self.mode, Mode::Api(api) if api.webhooks.contains_key(u))
                    || (!u.contains("://") && !u.is_empty());
                if !named {
                    c.args[0] = Value::Str(Secret::REDACTED.into());
                }
            }
        }
        c
    }
}

fn posted(channel: &str, ts: &str) -> Value {
    Value::record([
        ("channel", Value::Str(channel.to_owned())),
        ("ts", Value::Str(ts.to_owned())),
    ])
}

/// Slack's error code as a failure.
fn slack_error(what: &str, code: &str) -> EffectFailure {
    let message = format!("{what}: Slack answered {code}");
    match code {
        "ratelimited" | "rate_limited" => EffectFailure::retryable("rate_limited", message),
        "internal_error"
        | "fatal_error"
        | "service_unavailable"
        | "request_timeout"
        | "team_added_to_org" => EffectFailure::retryable("unavailable", message),
        "not_authed" | "invalid_auth" | "account_inactive" | "token_revoked" | "token_expired"
        | "no_permission" | "missing_scope" | "action_prohibited" => {
            EffectFailure::permanent("unauthorized", message)
        }
        _ => EffectFailure::permanent("rejected", message),
    }
}

impl Integration for SlackIntegration {
    fn name(&self) -> &'static str {
        "slack"
    }

    fn operations(&self) -> &'static [&'static str] {
        OPERATIONS
    }

    async fn perform(&self, call: EffectCall<'_>) -> Result<Value, EffectFailure> {
        let effect = format!("slack.{}", call.op);
        let params: &[&str] = match call.op {
            "post" => &["channel", "text", "blocks"],
            "webhook" => &["url", "text", "blocks"],
            other => {
                return Err(EffectFailure::permanent(
                    "unknown_effect",
                    format!("slack has no operation {other:?}"),
                ))
            }
        };
        args::expect_arity(&effect, params, &call.args)?;
        if call.op == "post" {
            self.post(&call).await
        } else {
            self.webhook(&call).await
        }
    }

    async fn health(&self) -> Health {
        let api = match &self.mode {
            Mode::Embedded(s) => {
                return Health::up(format!("embedded: {} messages recorded", s.lock().len()))
            }
            Mode::Api(api) => api,
        };
        let Some(token) = &api.token else {
            return Health::up("webhooks only: no bot token to check");
        };
        let resp = api
            .client
            .post(format!("{}/auth.test", api.base))
            .bearer_auth(token.expose())
            .send()
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => return Health::down(web::transport_failure("slack auth.test", e).message),
        };
        let text = web::read_text(resp, 1 << 16).await.unwrap_or_default();
        let answer: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        if answer["ok"] == json!(true) {
            Health::up(format!(
                "auth.test ok: team {}",
                answer["team"].as_str().unwrap_or("?")
            ))
        } else {
            Health::down(format!(
                "auth.test: {}",
                answer["error"].as_str().unwrap_or("no answer")
            ))
        }
    }

    fn resources(&self) -> Vec<ResourceDecl> {
        if self.limiter.is_none() {
            return Vec::new();
        }
        vec![ResourceDecl {
            name: "slack.channel".into(),
            limit: ResourceLimit::Rate {
                per_second: self.rate.0,
                burst: self.rate.1,
            },
        }]
    }

    fn summarize(&self, call: &EffectCall<'_>, result: &Result<Value, EffectFailure>) -> String {
        summary::call("slack", &self.redacted(call), result)
    }
}
