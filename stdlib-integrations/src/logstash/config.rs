//! `[logstash]`: a Logstash `tcp` or `udp` input with the `json_lines` codec.
//!
//! ```toml
//! [logstash]
//! addr = "127.0.0.1:5000"
//! protocol = "tcp"     # or "udp": one datagram per event
//! buffer = 10000       # lines kept while Logstash is unreachable; the oldest go first
//! ```
//!
//! Environment: `DROVER_LOGSTASH_ADDR`, `DROVER_LOGSTASH_PROTOCOL`,
//! `DROVER_LOGSTASH_BUFFER`.

use serde::Deserialize;
use toml::Spanned;

use crate::config::{check_host_port, env_int, spanned_int, Issues};

/// Defaults for keys left out.
pub mod defaults {
    /// `logstash.buffer`.
    pub const BUFFER: usize = 10_000;
}

const BUFFER_RANGE: (i64, i64) = (1, 10_000_000);

/// How lines travel to Logstash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// One connection, newline-delimited JSON.
    Tcp,
    /// One datagram per event.
    Udp,
}

impl Protocol {
    fn parse(s: &str) -> Result<Protocol, String> {
        match s {
            "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            other => Err(format!("expected \"tcp\" or \"udp\", got {other:?}")),
        }
    }

    /// `tcp` or `udp`.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// `[logstash]`.
#[derive(Clone, Debug, PartialEq)]
pub struct LogstashConfig {
    /// `host:port` of the Logstash input.
    pub addr: String,
    /// TCP or UDP.
    pub protocol: Protocol,
    /// How many lines wait while Logstash is unreachable; beyond it the
    /// oldest are dropped and counted.
    pub buffer: usize,
}

impl LogstashConfig {
    /// TCP to `addr` with the default buffer.
    pub fn new(addr: impl Into<String>) -> Self {
        LogstashConfig {
            addr: addr.into(),
            protocol: Protocol::Tcp,
            buffer: defaults::BUFFER,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLogstash {
    addr: Option<Spanned<String>>,
    protocol: Option<Spanned<String>>,
    buffer: Option<Spanned<i64>>,
}

pub(crate) fn from_raw(raw: Spanned<RawLogstash>, issues: &mut Issues) -> LogstashConfig {
    let section_span = raw.span();
    let raw = raw.into_inner();
    let mut l = LogstashConfig::new("");
    match raw.addr {
        Some(a) => {
            if let Err(why) = check_host_port(a.get_ref()) {
                issues.push("logstash.addr", why, Some(a.span()));
            }
            l.addr = a.into_inner();
        }
        None => issues.push(
            "logstash.addr",
            "missing: the section needs host:port (or remove the section for the embedded sink)",
            Some(section_span),
        ),
    }
    if let Some(p) = raw.protocol {
        match Protocol::parse(p.get_ref()) {
            Ok(proto) => l.protocol = proto,
            Err(why) => issues.push("logstash.protocol", why, Some(p.span())),
        }
    }
    if let Some(n) = spanned_int(raw.buffer, "logstash.buffer", BUFFER_RANGE, issues) {
        l.buffer = n as usize;
    }
    l
}

pub(crate) fn apply_env(
    config: &mut Option<LogstashConfig>,
    var: &impl Fn(&str) -> Option<String>,
    issues: &mut Issues,
) {
    const ADDR: &str = "DROVER_LOGSTASH_ADDR";
    const PROTOCOL: &str = "DROVER_LOGSTASH_PROTOCOL";
    const BUFFER: &str = "DROVER_LOGSTASH_BUFFER";
    let set: Vec<&str> = [ADDR, PROTOCOL, BUFFER]
        .into_iter()
        .filter(|n| var(n).is_some())
        .collect();
    if set.is_empty() {
        return;
    }
    let l = config.get_or_insert_with(|| LogstashConfig::new(""));
    if let Some(v) = var(ADDR) {
        if let Err(why) = check_host_port(&v) {
            issues.push(ADDR, why, None);
        }
        l.addr = v;
    }
    if l.addr.is_empty() {
        issues.push(
            set[0],
            format!("logstash needs an address (set {ADDR} or [logstash] addr)"),
            None,
        );
    }
    if let Some(v) = var(PROTOCOL) {
        match Protocol::parse(v.trim()) {
            Ok(p) => l.protocol = p,
            Err(why) => issues.push(PROTOCOL, why, None),
        }
    }
    if let Some(n) = env_int(var, BUFFER, BUFFER_RANGE, issues) {
        l.buffer = n as usize;
    }
}
