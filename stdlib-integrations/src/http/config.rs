//! `[http]`: the generic `http.request` effect.
//!
//! ```toml
//! [http]
//! timeout_ms = 10000        # DROVER_HTTP_TIMEOUT_MS
//! max_attempts = 3          # sends per attempt on 429/5xx; DROVER_HTTP_MAX_ATTEMPTS
//! max_body_bytes = 4194304  # the largest response body taken
//! hosts = { "api.example.com" = { rate_per_second = 10, burst = 20 } }
//! ```
//!
//! An empty `[http]` section turns the effect on with the defaults.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::config::{in_range, spanned_int, Issues};
use crate::web::keys;

/// `[http]`.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpConfig {
    /// The limit on one request.
    pub timeout: Duration,
    /// Sends per attempt when the server answers 429 or 5xx.
    pub max_attempts: u32,
    /// The largest response body read; a larger one fails `too_large`.
    pub max_body_bytes: usize,
    /// Rate limits by host name.
    pub hosts: BTreeMap<String, HostRate>,
}

/// A host's rate limit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HostRate {
    /// Requests per second, sustained.
    pub rate_per_second: f64,
    /// Requests at once after a quiet spell.
    pub burst: u32,
}

/// Defaults for `[http]`.
pub mod defaults {
    /// `http.timeout_ms`.
    pub const TIMEOUT_MS: u64 = 10_000;
    /// `http.max_attempts`.
    pub const MAX_ATTEMPTS: u32 = 3;
    /// `http.max_body_bytes`.
    pub const MAX_BODY_BYTES: usize = 4 << 20;
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            timeout: Duration::from_millis(defaults::TIMEOUT_MS),
            max_attempts: defaults::MAX_ATTEMPTS,
            max_body_bytes: defaults::MAX_BODY_BYTES,
            hosts: BTreeMap::new(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHttp {
    timeout_ms: Option<Spanned<i64>>,
    max_attempts: Option<Spanned<i64>>,
    max_body_bytes: Option<Spanned<i64>>,
    hosts: Option<BTreeMap<Spanned<String>, Spanned<RawHost>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHost {
    rate_per_second: Option<Spanned<f64>>,
    burst: Option<Spanned<i64>>,
}

const BODY_RANGE: (i64, i64) = (1, 256 << 20);

fn check_host(h: &str) -> Result<(), String> {
    if h.is_empty()
        || h.contains("://")
        || h.contains('/')
        || h.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        Err(format!(
            "expected a host name such as api.example.com, got {h:?}"
        ))
    } else {
        Ok(())
    }
}

pub(crate) fn from_raw(raw: Spanned<RawHttp>, issues: &mut Issues) -> HttpConfig {
    let raw = raw.into_inner();
    let mut c = HttpConfig::default();
    let (t, a) = keys::common(raw.timeout_ms, raw.max_attempts, "http", issues);
    if let Some(t) = t {
        c.timeout = Duration::from_millis(t);
    }
    if let Some(a) = a {
        c.max_attempts = a;
    }
    if let Some(n) = spanned_int(
        raw.max_body_bytes,
        "http.max_body_bytes",
        BODY_RANGE,
        issues,
    ) {
        c.max_body_bytes = n as usize;
    }
    for (host, rate) in raw.hosts.unwrap_or_default() {
        let key = format!("http.hosts.{}", host.get_ref());
        if let Err(why) = check_host(host.get_ref()) {
            issues.push(&key, why, Some(host.span()));
        }
        let span = rate.span();
        let rate = rate.into_inner();
        let per_second = match rate.rate_per_second {
            Some(r) => match keys::check_rate(*r.get_ref()) {
                Ok(r) => r,
                Err(why) => {
                    issues.push(format!("{key}.rate_per_second"), why, Some(r.span()));
                    1.0
                }
            },
            None => {
                issues.push(
                    format!("{key}.rate_per_second"),
                    "missing: requests per second for this host",
                    Some(span),
                );
                1.0
            }
        };
        let burst = match rate.burst {
            Some(b) => match in_range(*b.get_ref(), (1, 100_000)) {
                Ok(b) => b as u32,
                Err(why) => {
                    issues.push(format!("{key}.burst"), why, Some(b.span()));
                    1
                }
            },
            None => per_second.ceil().max(1.0) as u32,
        };
        c.hosts.insert(
            host.into_inner().to_ascii_lowercase(),
            HostRate {
                rate_per_second: per_second,
                burst,
            },
        );
    }
    c
}

pub(crate) fn apply_env(
    http: &mut Option<HttpConfig>,
    var: &impl Fn(&str) -> Option<String>,
    issues: &mut Issues,
) {
    let names = ["DROVER_HTTP_TIMEOUT_MS", "DROVER_HTTP_MAX_ATTEMPTS"];
    if !names.iter().any(|n| var(n).is_some()) {
        return;
    }
    let c = http.get_or_insert_with(HttpConfig::default);
    let (t, a) = keys::env_common(var, "DROVER_HTTP", issues);
    if let Some(t) = t {
        c.timeout = Duration::from_millis(t);
    }
    if let Some(a) = a {
        c.max_attempts = a;
    }
}
