//! `[pagerduty]`: an Events API v2 integration (routing) key.
//!
//! ```toml
//! [pagerduty]
//! routing_key = "0123456789abcdef0123456789abcdef" # DROVER_PAGERDUTY_ROUTING_KEY
//! url = "https://events.pagerduty.com"             # DROVER_PAGERDUTY_URL
//! timeout_ms = 10000                               # DROVER_PAGERDUTY_TIMEOUT_MS
//! max_attempts = 3                                 # DROVER_PAGERDUTY_MAX_ATTEMPTS
//! rate_per_minute = 120                            # PagerDuty's limit per routing key
//! ```

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::config::{in_range, Issues};
use crate::web::keys;
use crate::Secret;

/// `[pagerduty]`.
#[derive(Clone, Debug, PartialEq)]
pub struct PagerDutyConfig {
    /// The integration key events are routed by (32 characters).
    pub routing_key: Secret,
    /// The Events API base URL (`/v2/enqueue` is appended).
    pub url: String,
    /// The limit on one request.
    pub timeout: Duration,
    /// Sends per attempt when PagerDuty answers 429 or 5xx.
    pub max_attempts: u32,
    /// Events per minute allowed for the routing key.
    pub rate_per_minute: u32,
}

/// Defaults for `[pagerduty]`.
pub mod defaults {
    /// `pagerduty.url`.
    pub const URL: &str = "https://events.pagerduty.com";
    /// `pagerduty.timeout_ms`.
    pub const TIMEOUT_MS: u64 = 10_000;
    /// `pagerduty.max_attempts`.
    pub const MAX_ATTEMPTS: u32 = 3;
    /// `pagerduty.rate_per_minute`: the Events API's limit per routing key.
    pub const RATE_PER_MINUTE: u32 = 120;
}

impl PagerDutyConfig {
    /// The defaults with this routing key.
    pub fn new(routing_key: Secret) -> Self {
        PagerDutyConfig {
            routing_key,
            url: defaults::URL.into(),
            timeout: Duration::from_millis(defaults::TIMEOUT_MS),
            max_attempts: defaults::MAX_ATTEMPTS,
            rate_per_minute: defaults::RATE_PER_MINUTE,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPagerDuty {
    routing_key: Option<Spanned<Secret>>,
    url: Option<Spanned<String>>,
    timeout_ms: Option<Spanned<i64>>,
    max_attempts: Option<Spanned<i64>>,
    rate_per_minute: Option<Spanned<i64>>,
}

/// Routing keys are 32 characters, letters and digits.
pub(crate) fn check_routing_key(k: &str) -> Result<(), String> {
    if k.len() == 32 && k.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(())
    } else {
        // Never echo the key.
        Err(format!(
            "a routing key is 32 letters and digits, this one has {} characters",
            k.chars().count()
        ))
    }
}

pub(crate) fn from_raw(raw: Spanned<RawPagerDuty>, issues: &mut Issues) -> PagerDutyConfig {
    let span = raw.span();
    let raw = raw.into_inner();
    let mut c = PagerDutyConfig::new(Secret::new(""));
    match raw.routing_key {
        Some(k) => {
            if let Err(why) = check_routing_key(k.get_ref().expose()) {
                // No span: the report would quote the key.
                issues.push("pagerduty.routing_key", why, None);
            }
            c.routing_key = k.into_inner();
        }
        None => issues.push(
            "pagerduty.routing_key",
            "missing: the section needs the Events API v2 routing key (or remove the section for the embedded recorder)",
            Some(span),
        ),
    }
    if let Some(u) = keys::url(raw.url, "pagerduty.url", issues) {
        c.url = u;
    }
    let (t, a) = keys::common(raw.timeout_ms, raw.max_attempts, "pagerduty", issues);
    if let Some(t) = t {
        c.timeout = Duration::from_millis(t);
    }
    if let Some(a) = a {
        c.max_attempts = a;
    }
    if let Some(r) = raw.rate_per_minute {
        match in_range(*r.get_ref(), (1, 100_000)) {
            Ok(r) => c.rate_per_minute = r as u32,
            Err(why) => issues.push("pagerduty.rate_per_minute", why, Some(r.span())),
        }
    }
    c
}

pub(crate) fn apply_env(
    pd: &mut Option<PagerDutyConfig>,
    var: &impl Fn(&str) -> Option<String>,
    issues: &mut Issues,
) {
    const KEY: &str = "DROVER_PAGERDUTY_ROUTING_KEY";
    const URL: &str = "DROVER_PAGERDUTY_URL";
    let names = [
        KEY,
        URL,
        "DROVER_PAGERDUTY_TIMEOUT_MS",
        "DROVER_PAGERDUTY_MAX_ATTEMPTS",
    ];
    let set: Vec<&str> = names.into_iter().filter(|n| var(n).is_some()).collect();
    if set.is_empty() {
        return;
    }
    let c = pd.get_or_insert_with(|| PagerDutyConfig::new(Secret::new("")));
    if let Some(k) = var(KEY) {
        match check_routing_key(&k) {
            Ok(()) => c.routing_key = Secret::new(k),
            Err(why) => issues.push(KEY, why, None),
        }
    }
    if c.routing_key.expose().is_empty() && var(KEY).is_none() {
        issues.push(
            set[0],
            format!("pagerduty needs a routing key (set {KEY} or [pagerduty] routing_key)"),
            None,
        );
    }
    if let Some(u) = keys::env_url(var, URL, issues) {
        c.url = u;
    }
    let (t, a) = keys::env_common(var, "DROVER_PAGERDUTY", issues);
    if let Some(t) = t {
        c.timeout = Duration::from_millis(t);
    }
    if let Some(a) = a {
        c.max_attempts = a;
    }
}
