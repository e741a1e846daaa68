//! `[consul]`: a Consul agent's HTTP API.
//!
//! ```toml
//! [consul]
//! addr = "127.0.0.1:8500"  # or http(s)://host:port; DROVER_CONSUL_ADDR
//! token = "..."            # ACL token, sent as X-Consul-Token; DROVER_CONSUL_TOKEN
//! timeout_ms = 5000        # DROVER_CONSUL_TIMEOUT_MS
//! max_attempts = 3         # DROVER_CONSUL_MAX_ATTEMPTS
//! ```

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::config::Issues;
use crate::web::keys;
use crate::Secret;

/// `[consul]`.
#[derive(Clone, Debug, PartialEq)]
pub struct ConsulConfig {
    /// The agent's base URL (`http://127.0.0.1:8500`).
    pub url: String,
    /// The ACL token.
    pub token: Option<Secret>,
    /// The limit on one request.
    pub timeout: Duration,
    /// Sends per attempt when the agent answers 429 or 5xx.
    pub max_attempts: u32,
}

/// Defaults for `[consul]`.
pub mod defaults {
    /// `consul.timeout_ms`.
    pub const TIMEOUT_MS: u64 = 5_000;
    /// `consul.max_attempts`.
    pub const MAX_ATTEMPTS: u32 = 3;
}

impl ConsulConfig {
    /// The defaults with this agent address (`host:port` or a URL).
    pub fn new(addr: &str) -> Self {
        ConsulConfig {
            url: normalize(addr),
            token: None,
            timeout: Duration::from_millis(defaults::TIMEOUT_MS),
            max_attempts: defaults::MAX_ATTEMPTS,
        }
    }
}

/// `host:port` becomes `http://host:port`; URLs lose a trailing slash.
fn normalize(addr: &str) -> String {
    let a = addr.trim().trim_end_matches('/');
    if a.contains("://") {
        a.to_owned()
    } else {
        format!("http://{a}")
    }
}

fn check_addr(addr: &str) -> Result<String, String> {
    if addr.contains("://") {
        crate::web::check_base_url(addr)?;
    } else {
        crate::config::check_host_port(addr)?;
    }
    Ok(normalize(addr))
}

fn check_token(t: &str) -> Result<(), String> {
    if t.is_empty() || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err("a token must be non-empty without spaces".into())
    } else {
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConsul {
    addr: Option<Spanned<String>>,
    token: Option<Spanned<Secret>>,
    timeout_ms: Option<Spanned<i64>>,
    max_attempts: Option<Spanned<i64>>,
}

pub(crate) fn from_raw(raw: Spanned<RawConsul>, issues: &mut Issues) -> ConsulConfig {
    let span = raw.span();
    let raw = raw.into_inner();
    let mut c = ConsulConfig::new("");
    match raw.addr {
        Some(a) => match check_addr(a.get_ref()) {
            Ok(u) => c.url = u,
            Err(why) => issues.push("consul.addr", why, Some(a.span())),
        },
        None => issues.push(
            "consul.addr",
            "missing: the section needs the agent's host:port (or remove the section for the embedded store)",
            Some(span),
        ),
    }
    if let Some(t) = raw.token {
        if let Err(why) = check_token(t.get_ref().expose()) {
            // No span: the report would quote the token.
            issues.push("consul.token", why, None);
        }
        c.token = Some(t.into_inner());
    }
    let (t, a) = keys::common(raw.timeout_ms, raw.max_attempts, "consul", issues);
    if let Some(t) = t {
        c.timeout = Duration::from_millis(t);
    }
    if let Some(a) = a {
        c.max_attempts = a;
    }
    c
}

pub(crate) fn apply_env(
    consul: &mut Option<ConsulConfig>,
    var: &impl Fn(&str) -> Option<String>,
    issues: &mut Issues,
) {
    const ADDR: &str = "DROVER_CONSUL_ADDR";
    const TOKEN: &str = "DROVER_CONSUL_TOKEN";
    let names = [
        ADDR,
        TOKEN,
        "DROVER_CONSUL_TIMEOUT_MS",
        "DROVER_CONSUL_MAX_ATTEMPTS",
    ];
    let set: Vec<&str> = names.into_iter().filter(|n| var(n).is_some()).collect();
    if set.is_empty() {
        return;
    }
    let had_addr = consul.is_some();
    let c = consul.get_or_insert_with(|| ConsulConfig::new(""));
    match var(ADDR) {
        Some(a) => match check_addr(&a) {
            Ok(u) => c.url = u,
            Err(why) => issues.push(ADDR, why, None),
        },
        None if !had_addr => issues.push(
            set[0],
            format!("consul needs the agent's address (set {ADDR} or [consul] addr)"),
            None,
        ),
        None => {}
    }
    if let Some(t) = var(TOKEN) {
        match check_token(&t) {
            Ok(()) => c.token = Some(Secret::new(t)),
            Err(why) => issues.push(TOKEN, why, None),
        }
    }
    let (t, a) = keys::env_common(var, "DROVER_CONSUL", issues);
    if let Some(t) = t {
        c.timeout = Duration::from_millis(t);
    }
    if let Some(a) = a {
        c.max_attempts = a;
    }
}
