//! `[slack]`: a bot token for `chat.postMessage`, named incoming webhooks.
//!
//! ```toml
//! [slack]
//! token = "xoxb-..."            # or DROVER_SLACK_TOKEN
//! url = "https://slack.com/api" # or DROVER_SLACK_URL; tests point it at loopback
//! timeout_ms = 10000            # DROVER_SLACK_TIMEOUT_MS
//! max_attempts = 3              # sends per attempt on 429/5xx; DROVER_SLACK_MAX_ATTEMPTS
//! channel_rate = 1.0            # messages per second per channel; DROVER_SLACK_CHANNEL_RATE
//! channel_burst = 3
//! webhooks = { alerts = "https://hooks.slack.com/services/..." }
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::config::{in_range, Issues};
use crate::web::keys;
use crate::Secret;

/// `[slack]`.
#[derive(Clone, Debug, PartialEq)]
pub struct SlackConfig {
    /// The bot (`xoxb-`) or user (`xoxp-`) token; `slack.post` needs it.
    pub token: Option<Secret>,
    /// The Web API base URL.
    pub url: String,
    /// The limit on one request.
    pub timeout: Duration,
    /// Sends per attempt when Slack answers 429 or 5xx.
    pub max_attempts: u32,
    /// Messages per second per channel (Slack allows about one).
    pub channel_rate: f64,
    /// Messages a quiet channel may take at once.
    pub channel_burst: u32,
    /// Incoming webhook URLs by name: `slack.webhook("alerts", ..)`.
    pub webhooks: BTreeMap<String, Secret>,
}

/// Defaults for `[slack]`.
pub mod defaults {
    /// `slack.url`.
    pub const URL: &str = "https://slack.com/api";
    /// `slack.timeout_ms`.
    pub const TIMEOUT_MS: u64 = 10_000;
    /// `slack.max_attempts`.
    pub const MAX_ATTEMPTS: u32 = 3;
    /// `slack.channel_rate`.
    pub const CHANNEL_RATE: f64 = 1.0;
    /// `slack.channel_burst`.
    pub const CHANNEL_BURST: u32 = 3;
}

impl Default for SlackConfig {
    fn default() -> Self {
        SlackConfig {
            token: None,
            url: defaults::URL.into(),
            timeout: Duration::from_millis(defaults::TIMEOUT_MS),
            max_attempts: defaults::MAX_ATTEMPTS,
            channel_rate: defaults::CHANNEL_RATE,
            channel_burst: defaults::CHANNEL_BURST,
            webhooks: BTreeMap::new(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSlack {
    token: Option<Spanned<Secret>>,
    url: Option<Spanned<String>>,
    timeout_ms: Option<Spanned<i64>>,
    max_attempts: Option<Spanned<i64>>,
    channel_rate: Option<Spanned<f64>>,
    channel_burst: Option<Spanned<i64>>,
    webhooks: Option<BTreeMap<Spanned<String>, Spanned<Secret>>>,
}

/// Slack tokens start `xox` and a type letter: `xoxb-`, `xoxp-`, `xoxe-`...
pub(crate) fn check_token(t: &str) -> Result<(), String> {
    let ok = t.len() > 5
        && t.starts_with("xox")
        && t.as_bytes()[4] == b'-'
        && !t.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        // The token itself is a secret: never echo it.
        Err("expected a Slack token (xoxb-... for a bot)".into())
    }
}

fn check_webhook_url(u: &str) -> Result<(), String> {
    // Echoing the URL would leak it.
    crate::web::check_base_url(u).map_err(|_| "expected an https:// webhook URL".into())
}

pub(crate) fn from_raw(raw: Spanned<RawSlack>, issues: &mut Issues) -> SlackConfig {
    let raw = raw.into_inner();
    let mut c = SlackConfig::default();
    if let Some(t) = raw.token {
        if let Err(why) = check_token(t.get_ref().expose()) {
            // No span: the report would quote the token.
            issues.push("slack.token", why, None);
        }
        c.token = Some(t.into_inner());
    }
    if let Some(u) = keys::url(raw.url, "slack.url", issues) {
        c.url = u;
    }
    let (t, a) = keys::common(raw.timeout_ms, raw.max_attempts, "slack", issues);
    if let Some(t) = t {
        c.timeout = Duration::from_millis(t);
    }
    if let Some(a) = a {
        c.max_attempts = a;
    }
    if let Some(r) = raw.channel_rate {
        match keys::check_rate(*r.get_ref()) {
            Ok(r) => c.channel_rate = r,
            Err(why) => issues.push("slack.channel_rate", why, Some(r.span())),
        }
    }
    if let Some(b) = raw.channel_burst {
        match in_range(*b.get_ref(), (1, 1000)) {
            Ok(b) => c.channel_burst = b as u32,
            Err(why) => issues.push("slack.channel_burst", why, Some(b.span())),
        }
    }
    for (name, url) in raw.webhooks.unwrap_or_default() {
        if name.get_ref().is_empty() || name.get_ref().contains("://") {
            issues.push(
                "slack.webhooks",
                "a webhook name must be non-empty and not a URL",
                Some(name.span()),
            );
        }
        if let Err(why) = check_webhook_url(url.get_ref().expose()) {
            issues.push(format!("slack.webhooks.{}", name.get_ref()), why, None);
        }
        c.webhooks.insert(name.into_inner(), url.into_inner());
    }
    c
}

pub(crate) fn apply_env(
    slack: &mut Option<SlackConfig>,
    var: &impl Fn(&str) -> Option<String>,
    issues: &mut Issues,
) {
    const TOKEN: &str = "DROVER_SLACK_TOKEN";
    const URL: &str = "DROVER_SLACK_URL";
    const RATE: &str = "DROVER_SLACK_CHANNEL_RATE";
    let names = [
        TOKEN,
        URL,
        RATE,
        "DROVER_SLACK_TIMEOUT_MS",
        "DROVER_SLACK_MAX_ATTEMPTS",
    ];
    if !names.iter().any(|n| var(n).is_some()) {
        return;
    }
    let c = slack.get_or_insert_with(SlackConfig::default);
    if let Some(t) = var(TOKEN) {
        match check_token(&t) {
            Ok(()) => c.token = Some(Secret::new(t)),
            Err(why) => issues.push(TOKEN, why, None),
        }
    }
    if let Some(u) = keys::env_url(var, URL, issues) {
        c.url = u;
    }
    let (t, a) = keys::env_common(var, "DROVER_SLACK", issues);
    if let Some(t) = t {
        c.timeout = Duration::from_millis(t);
    }
    if let Some(a) = a {
        c.max_attempts = a;
    }
    if let Some(v) = var(RATE) {
        match v
            .trim()
            .parse::<f64>()
            .map_err(|e| e.to_string())
            .and_then(keys::check_rate)
        {
            Ok(r) => c.channel_rate = r,
            Err(why) => issues.push(RATE, why, None),
        }
    }
}
