//! `[rabbitmq]`: a RabbitMQ broker reached over AMQP 0-9-1.
//!
//! ```toml
//! [rabbitmq]
//! url = "amqp://guest:guest@127.0.0.1:5672/%2f"   # the password is a secret
//! channels = 8                # channels open at once: effects in flight
//! confirm_timeout_ms = 5000   # how long a publish waits for the broker's confirm
//! connect_timeout_ms = 5000   # how long one connection attempt may take
//! next_wait_ms = 5000         # how long rabbitmq.next waits for a message
//! max_message_bytes = 4194304 # the largest body published
//! ```
//!
//! Environment: `DROVER_RABBITMQ_URL`, `DROVER_RABBITMQ_CHANNELS`,
//! `DROVER_RABBITMQ_CONFIRM_TIMEOUT_MS`, `DROVER_RABBITMQ_CONNECT_TIMEOUT_MS`,
//! `DROVER_RABBITMQ_NEXT_WAIT_MS`, `DROVER_RABBITMQ_MAX_MESSAGE_BYTES`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::config::{env_int, spanned_int, Issues};
use crate::Secret;

/// Defaults for keys left out.
pub mod defaults {
    /// `rabbitmq.channels`.
    pub const CHANNELS: u32 = 8;
    /// `rabbitmq.confirm_timeout_ms`.
    pub const CONFIRM_TIMEOUT_MS: u64 = 5_000;
    /// `rabbitmq.connect_timeout_ms`.
    pub const CONNECT_TIMEOUT_MS: u64 = 5_000;
    /// `rabbitmq.next_wait_ms`.
    pub const NEXT_WAIT_MS: u64 = 5_000;
    /// `rabbitmq.max_message_bytes`.
    pub const MAX_MESSAGE_BYTES: usize = 4 << 20;
}

const CHANNELS_RANGE: (i64, i64) = (1, 1024);
const TIMEOUT_RANGE: (i64, i64) = (1, 600_000);
const MAX_MESSAGE_RANGE: (i64, i64) = (1, 128 << 20);

/// `[rabbitmq]`.
#[derive(Clone, PartialEq)]
pub struct RabbitmqConfig {
    /// `amqp://user:password@host:port/vhost`; secret because of the password.
    pub url: Secret,
    /// Channels open at once: the most publishes and gets in flight.
    pub channels: u32,
    /// How long a publish waits for the broker's confirm.
    pub confirm_timeout: Duration,
    /// How long one connection attempt may take.
    pub connect_timeout: Duration,
    /// How long `rabbitmq.next` waits for a message when the effect has no
    /// deadline of its own.
    pub next_wait: Duration,
    /// The largest message body published, in bytes.
    pub max_message_bytes: usize,
}

impl RabbitmqConfig {
    /// The defaults with this broker URL.
    pub fn new(url: impl Into<String>) -> Self {
        RabbitmqConfig {
            url: Secret::new(url),
            channels: defaults::CHANNELS,
            confirm_timeout: Duration::from_millis(defaults::CONFIRM_TIMEOUT_MS),
            connect_timeout: Duration::from_millis(defaults::CONNECT_TIMEOUT_MS),
            next_wait: Duration::from_millis(defaults::NEXT_WAIT_MS),
            max_message_bytes: defaults::MAX_MESSAGE_BYTES,
        }
    }

    /// The URL with its password replaced by `[redacted]`, for logs.
    pub fn redacted_url(&self) -> String {
        redact_url(self.url.expose())
    }
}

impl fmt::Debug for RabbitmqConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RabbitmqConfig")
            .field("url", &self.redacted_url())
            .field("channels", &self.channels)
            .field("confirm_timeout", &self.confirm_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("next_wait", &self.next_wait)
            .field("max_message_bytes", &self.max_message_bytes)
            .finish()
    }
}

/// `url` with the password (between `user:` and `@`) replaced by `[redacted]`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    match rest[..at].split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:{}{}", Secret::REDACTED, &rest[at..]),
        None => url.to_owned(),
    }
}

/// Checks an AMQP URL; the reason never includes the password.
pub fn check_url(url: &str) -> Result<(), String> {
    if !(url.starts_with("amqp://") || url.starts_with("amqps://")) {
        return Err(format!(
            "expected amqp://user:password@host:port/vhost, got {:?}",
            redact_url(url)
        ));
    }
    if url.starts_with("amqps://") {
        return Err("amqps:// (TLS) is not supported by this build; use amqp://".into());
    }
    match lapin::uri::AMQPUri::from_str(url) {
        Ok(_) => Ok(()),
        Err(e) => Err(format!(
            "{:?} is not an AMQP URL: {}",
            redact_url(url),
            e.replace(url, &redact_url(url))
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRabbitmq {
    url: Option<Spanned<String>>,
    channels: Option<Spanned<i64>>,
    confirm_timeout_ms: Option<Spanned<i64>>,
    connect_timeout_ms: Option<Spanned<i64>>,
    next_wait_ms: Option<Spanned<i64>>,
    max_message_bytes: Option<Spanned<i64>>,
}

pub(crate) fn from_raw(raw: Spanned<RawRabbitmq>, issues: &mut Issues) -> RabbitmqConfig {
    let section_span = raw.span();
    let raw = raw.into_inner();
    let mut r = RabbitmqConfig::new("");
    match raw.url {
        Some(u) => {
            if let Err(why) = check_url(u.get_ref()) {
                issues.push("rabbitmq.url", why, Some(u.span()));
            }
            r.url = Secret::new(u.into_inner());
        }
        None => issues.push(
            "rabbitmq.url",
            "missing: the section needs amqp://user:password@host:port/vhost (or remove the section for the embedded broker)",
            Some(section_span),
        ),
    }
    if let Some(n) = spanned_int(raw.channels, "rabbitmq.channels", CHANNELS_RANGE, issues) {
        r.channels = n as u32;
    }
    let ms = |v, key: &str, issues: &mut Issues| {
        spanned_int(v, key, TIMEOUT_RANGE, issues).map(|n| Duration::from_millis(n as u64))
    };
    if let Some(d) = ms(
        raw.confirm_timeout_ms,
        "rabbitmq.confirm_timeout_ms",
        issues,
    ) {
        r.confirm_timeout = d;
    }
    if let Some(d) = ms(
        raw.connect_timeout_ms,
        "rabbitmq.connect_timeout_ms",
        issues,
    ) {
        r.connect_timeout = d;
    }
    if let Some(d) = ms(raw.next_wait_ms, "rabbitmq.next_wait_ms", issues) {
        r.next_wait = d;
    }
    if let Some(n) = spanned_int(
        raw.max_message_bytes,
        "rabbitmq.max_message_bytes",
        MAX_MESSAGE_RANGE,
        issues,
    ) {
        r.max_message_bytes = n as usize;
    }
    r
}

pub(crate) fn apply_env(
    config: &mut Option<RabbitmqConfig>,
    var: &impl Fn(&str) -> Option<String>,
    issues: &mut Issues,
) {
    const URL: &str = "DROVER_RABBITMQ_URL";
    const CHANNELS: &str = "DROVER_RABBITMQ_CHANNELS";
    const CONFIRM: &str = "DROVER_RABBITMQ_CONFIRM_TIMEOUT_MS";
    const CONNECT: &str = "DROVER_RABBITMQ_CONNECT_TIMEOUT_MS";
    const NEXT: &str = "DROVER_RABBITMQ_NEXT_WAIT_MS";
    const MAX: &str = "DROVER_RABBITMQ_MAX_MESSAGE_BYTES";
    let names = [URL, CHANNELS, CONFIRM, CONNECT, NEXT, MAX];
    let set: Vec<&str> = names.into_iter().filter(|n| var(n).is_some()).collect();
    if set.is_empty() {
        return;
    }
    let r = config.get_or_insert_with(|| RabbitmqConfig::new(""));
    if let Some(v) = var(URL) {
        if let Err(why) = check_url(&v) {
            issues.push(URL, why, None);
        }
        r.url = Secret::new(v);
    }
    if r.url.expose().is_empty() {
        issues.push(
            set[0],
            format!("rabbitmq needs a broker URL (set {URL} or [rabbitmq] url)"),
            None,
        );
    }
    if let Some(n) = env_int(var, CHANNELS, CHANNELS_RANGE, issues) {
        r.channels = n as u32;
    }
    if let Some(n) = env_int(var, CONFIRM, TIMEOUT_RANGE, issues) {
        r.confirm_timeout = Duration::from_millis(n as u64);
    }
    if let Some(n) = env_int(var, CONNECT, TIMEOUT_RANGE, issues) {
        r.connect_timeout = Duration::from_millis(n as u64);
    }
    if let Some(n) = env_int(var, NEXT, TIMEOUT_RANGE, issues) {
        r.next_wait = Duration::from_millis(n as u64);
    }
    if let Some(n) = env_int(var, MAX, MAX_MESSAGE_RANGE, issues) {
        r.max_message_bytes = n as usize;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_never_shows() {
        let url = "amqp://guest:hunter2@127.0.0.1:5672/%2f";
        assert_eq!(
            redact_url(url),
            "amqp://guest:[redacted]@127.0.0.1:5672/%2f"
        );
        let c = RabbitmqConfig::new(url);
        assert!(!format!("{c:?}").contains("hunter2"), "{c:?}");
        assert_eq!(redact_url("amqp://127.0.0.1"), "amqp://127.0.0.1");
        let bad = check_url("amqp://guest:hunter2@127.0.0.1:notaport/%2f").unwrap_err();
        assert!(!bad.contains("hunter2"), "{bad}");
        assert!(check_url(url).is_ok());
        assert!(check_url("http://x").is_err());
    }
}
