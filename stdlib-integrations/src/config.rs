//! Integration config: a TOML file, then environment variables over it.
//!
//! ```toml
//! [memcache]
//! servers = ["127.0.0.1:11211"]
//! pool = 8            # connections per server
//! timeout_ms = 500    # per operation, connecting included
//!
//! [statsd]
//! addr = "127.0.0.1:8125"
//! prefix = "drover."
//! tags = { env = "prod" }
//! max_packet = 1432   # bytes per UDP datagram
//! flush_ms = 100
//! sample_rate = 1.0   # default for counts, timings and histograms
//! sample_rates = { "api.calls" = 0.1 }
//! ```
//!
//! `[slack]`, `[pagerduty]`, `[consul]` and `[http]` are documented in
//! their integrations' `config` modules ([`crate::slack::config`], ...).
//!
//! A missing section selects the integration's embedded fallback. Each key
//! has an environment variable that overrides it (`DROVER_MEMCACHE_SERVERS`
//! as a comma-separated list, `DROVER_STATSD_TAGS` as `k:v,k2:v2`, the rest
//! by upper-cased name: `DROVER_MEMCACHE_POOL`, `DROVER_STATSD_FLUSH_MS`,
//! ...); setting one creates its section. An empty variable counts as unset.
//!
//! Every problem found is reported at once, each naming its key (or
//! variable) and why; problems in the file point at the text.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use miette::{Diagnostic, LabeledSpan, NamedSource};
use serde::Deserialize;
use toml::Spanned;

pub use crate::consul::ConsulConfig;
pub use crate::http::{HostRate, HttpConfig};
pub use crate::logstash::config::LogstashConfig;
pub use crate::pagerduty::PagerDutyConfig;
pub use crate::rabbitmq::config::RabbitmqConfig;
pub use crate::slack::SlackConfig;
use crate::statsd::line::{check_metric_name, check_tag_key, check_tag_value};
use crate::Secret;

/// The config of every integration; `None` selects the embedded fallback.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    /// `[memcache]`.
    pub memcache: Option<MemcacheConfig>,
    /// `[statsd]`.
    pub statsd: Option<StatsdConfig>,
    /// `[slack]`.
    pub slack: Option<SlackConfig>,
    /// `[pagerduty]`.
    pub pagerduty: Option<PagerDutyConfig>,
    /// `[consul]`.
    pub consul: Option<ConsulConfig>,
    /// `[http]`.
    pub http: Option<HttpConfig>,
    /// `[rabbitmq]`: see [`crate::rabbitmq::config`].
    pub rabbitmq: Option<RabbitmqConfig>,
    /// `[logstash]`: see [`crate::logstash::config`].
    pub logstash: Option<LogstashConfig>,
}

/// `[memcache]`: real memcached servers.
#[derive(Clone, Debug, PartialEq)]
pub struct MemcacheConfig {
    /// `host:port` of each server; a key lives on one, chosen by hash.
    pub servers: Vec<String>,
    /// Connections per server.
    pub pool: u32,
    /// The limit on one operation, waiting for a connection included.
    pub timeout: Duration,
    /// For memcached's ASCII authentication (`memcached -Y`).
    pub username: Option<String>,
    /// For memcached's ASCII authentication; never logged.
    pub password: Option<Secret>,
    /// The largest encoded value accepted (memcached's item limit, `-I`).
    pub max_value_bytes: usize,
}

/// `[statsd]`: a statsd or DogStatsD server.
#[derive(Clone, Debug, PartialEq)]
pub struct StatsdConfig {
    /// `host:port` of the server (UDP).
    pub addr: String,
    /// Put before every metric name.
    pub prefix: String,
    /// Added to every metric.
    pub tags: BTreeMap<String, String>,
    /// The largest UDP datagram sent, in bytes.
    pub max_packet: usize,
    /// How long a line may wait in a part-filled datagram.
    pub flush: Duration,
    /// The sample rate for counts, timings and histograms.
    pub sample_rate: f64,
    /// Sample rates by metric name (without the prefix).
    pub sample_rates: BTreeMap<String, f64>,
}

/// Defaults for keys left out.
pub mod defaults {
    /// `memcache.pool`.
    pub const POOL: u32 = 8;
    /// `memcache.timeout_ms`.
    pub const TIMEOUT_MS: u64 = 500;
    /// `memcache.max_value_bytes`: memcached's default 1 MiB item less room
    /// for the item header and key.
    pub const MAX_VALUE_BYTES: usize = 1024 * 1024 - 1024;
    /// `statsd.max_packet`: fits an Ethernet MTU with IP and UDP headers.
    pub const MAX_PACKET: usize = 1432;
    /// `statsd.flush_ms`.
    pub const FLUSH_MS: u64 = 100;
}

impl MemcacheConfig {
    /// The defaults with these servers.
    pub fn new(servers: Vec<String>) -> Self {
        MemcacheConfig {
            servers,
            pool: defaults::POOL,
            timeout: Duration::from_millis(defaults::TIMEOUT_MS),
            username: None,
            password: None,
            max_value_bytes: defaults::MAX_VALUE_BYTES,
        }
    }
}

impl StatsdConfig {
    /// The defaults with this server address.
    pub fn new(addr: impl Into<String>) -> Self {
        StatsdConfig {
            addr: addr.into(),
            prefix: String::new(),
            tags: BTreeMap::new(),
            max_packet: defaults::MAX_PACKET,
            flush: Duration::from_millis(defaults::FLUSH_MS),
            sample_rate: 1.0,
            sample_rates: BTreeMap::new(),
        }
    }
}

/// One problem with the config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigIssue {
    /// The key (`memcache.pool`) or environment variable.
    pub key: String,
    /// Why it is wrong.
    pub reason: String,
    /// Where in the file, if it came from one.
    pub span: Option<Range<usize>>,
}

/// Everything wrong with a config, renderable against the TOML text.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("invalid integration config: {}", list(.issues))]
#[diagnostic(code(drover::integrations::config))]
pub struct ConfigError {
    /// Each problem found.
    pub issues: Vec<ConfigIssue>,
    #[source_code]
    src: Option<NamedSource<String>>,
    #[label(collection)]
    labels: Vec<LabeledSpan>,
}

fn list(issues: &[ConfigIssue]) -> String {
    let parts: Vec<String> = issues
        .iter()
        .map(|i| format!("{}: {}", i.key, i.reason))
        .collect();
    parts.join("; ")
}

impl ConfigError {
    fn new(issues: Vec<ConfigIssue>, src: Option<(&str, &str)>) -> Self {
        let labels = issues
            .iter()
            .filter_map(|i| {
                let span = i.span.clone()?;
                Some(LabeledSpan::new_with_span(
                    Some(format!("{}: {}", i.key, i.reason)),
                    span,
                ))
            })
            .collect();
        ConfigError {
            src: src.map(|(name, text)| NamedSource::new(name, text.to_owned())),
            issues,
            labels,
        }
    }

    /// The report as miette renders it, without colour: for CLIs and tests.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let handler =
            miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
                .with_width(100);
        if handler.render_report(&mut out, self).is_err() {
            return self.to_string();
        }
        out
    }
}

/// Collects issues while reading one source.
#[derive(Default)]
pub(crate) struct Issues(Vec<ConfigIssue>);

impl Issues {
    pub(crate) fn push(
        &mut self,
        key: impl Into<String>,
        reason: impl fmt::Display,
        span: Option<Range<usize>>,
    ) {
        self.0.push(ConfigIssue {
            key: key.into(),
            reason: reason.to_string(),
            span,
        });
    }
}

// The file as written, with spans for reporting.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    memcache: Option<Spanned<RawMemcache>>,
    statsd: Option<Spanned<RawStatsd>>,
    slack: Option<Spanned<crate::slack::config::RawSlack>>,
    pagerduty: Option<Spanned<crate::pagerduty::config::RawPagerDuty>>,
    consul: Option<Spanned<crate::consul::config::RawConsul>>,
    http: Option<Spanned<crate::http::config::RawHttp>>,
    rabbitmq: Option<Spanned<crate::rabbitmq::config::RawRabbitmq>>,
    logstash: Option<Spanned<crate::logstash::config::RawLogstash>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMemcache {
    servers: Option<Spanned<Vec<Spanned<String>>>>,
    pool: Option<Spanned<i64>>,
    timeout_ms: Option<Spanned<i64>>,
    username: Option<Spanned<String>>,
    password: Option<Spanned<Secret>>,
    max_value_bytes: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStatsd {
    addr: Option<Spanned<String>>,
    prefix: Option<Spanned<String>>,
    tags: Option<BTreeMap<Spanned<String>, Spanned<String>>>,
    max_packet: Option<Spanned<i64>>,
    flush_ms: Option<Spanned<i64>>,
    sample_rate: Option<Spanned<f64>>,
    sample_rates: Option<BTreeMap<Spanned<String>, Spanned<f64>>>,
}

/// Limits on each numeric key: (min, max).
const POOL_RANGE: (i64, i64) = (1, 1024);
const TIMEOUT_RANGE: (i64, i64) = (1, 60_000);
const MAX_VALUE_RANGE: (i64, i64) = (1, 128 << 20);
/// 65,507 is the largest UDP payload over IPv4.
const MAX_PACKET_RANGE: (i64, i64) = (64, 65_507);
const FLUSH_RANGE: (i64, i64) = (1, 60_000);
const MAX_SERVERS: usize = 64;
const MAX_TAGS: usize = 64;

pub(crate) fn in_range(v: i64, (min, max): (i64, i64)) -> Result<i64, String> {
    if (min..=max).contains(&v) {
        Ok(v)
    } else {
        Err(format!("must be between {min} and {max}, got {v}"))
    }
}

fn check_rate(r: f64) -> Result<f64, String> {
    if r > 0.0 && r <= 1.0 {
        Ok(r)
    } else {
        Err(format!("a sample rate must be in (0, 1], got {r}"))
    }
}

/// Checks `host:port` (a name or IPv4 address, and a port from 1 to 65535).
pub(crate) fn check_host_port(s: &str) -> Result<(), String> {
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(format!("expected host:port, got {s:?}"));
    };
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("expected host:port with a host name, got {s:?}"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(format!("expected a port from 1 to 65535, got {port:?}")),
    }
}

fn check_servers(servers: &[String]) -> Result<(), String> {
    if servers.is_empty() {
        return Err("needs at least one server".into());
    }
    if servers.len() > MAX_SERVERS {
        return Err(format!(
            "at most {MAX_SERVERS} servers, got {}",
            servers.len()
        ));
    }
    Ok(())
}

fn check_username(u: &str) -> Result<(), String> {
    if u.is_empty() || u.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err("must be non-empty without spaces".into())
    } else {
        Ok(())
    }
}

impl Config {
    /// Reads a TOML config; `name` is shown in error reports (a path).
    pub fn from_toml(text: &str, name: &str) -> Result<Config, ConfigError> {
        let raw: RawFile = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(e) => {
                let span = e.span();
                let key = span
                    .as_ref()
                    .and_then(|sp| key_at(text, sp.start))
                    .unwrap_or_else(|| name.to_owned());
                let issue = ConfigIssue {
                    key,
                    reason: e.message().trim().to_owned(),
                    span,
                };
                return Err(ConfigError::new(vec![issue], Some((name, text))));
            }
        };
        let mut issues = Issues::default();
        let config = Config {
            memcache: raw.memcache.map(|m| memcache_from_raw(m, &mut issues)),
            statsd: raw.statsd.map(|s| statsd_from_raw(s, &mut issues)),
            slack: raw
                .slack
                .map(|s| crate::slack::config::from_raw(s, &mut issues)),
            pagerduty: raw
                .pagerduty
                .map(|s| crate::pagerduty::config::from_raw(s, &mut issues)),
            consul: raw
                .consul
                .map(|s| crate::consul::config::from_raw(s, &mut issues)),
            http: raw
                .http
                .map(|s| crate::http::config::from_raw(s, &mut issues)),
            rabbitmq: raw
                .rabbitmq
                .map(|r| crate::rabbitmq::config::from_raw(r, &mut issues)),
            logstash: raw
                .logstash
                .map(|l| crate::logstash::config::from_raw(l, &mut issues)),
        };
        if issues.0.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::new(issues.0, Some((name, text))))
        }
    }

    /// Reads the TOML file at `path`.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let name = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Config::from_toml(&text, &name),
            Err(e) => Err(ConfigError::new(
                vec![ConfigIssue {
                    key: name,
                    reason: format!("cannot read: {e}"),
                    span: None,
                }],
                None,
            )),
        }
    }

    /// The file at `path` (if any), then the process environment over it.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let mut config = match path {
            Some(p) => Config::from_file(p)?,
            None => Config::default(),
        };
        config.apply_env(|name| std::env::var(name).ok())?;
        Ok(config)
    }

    /// Overrides keys from environment variables read through `var`
    /// (injectable so tests need not touch the process environment).
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let var = |name: &str| var(name).filter(|v| !v.is_empty());
        let mut issues = Issues::default();
        self.apply_memcache_env(&var, &mut issues);
        self.apply_statsd_env(&var, &mut issues);
        crate::slack::config::apply_env(&mut self.slack, &var, &mut issues);
        crate::pagerduty::config::apply_env(&mut self.pagerduty, &var, &mut issues);
        crate::consul::config::apply_env(&mut self.consul, &var, &mut issues);
        crate::http::config::apply_env(&mut self.http, &var, &mut issues);
        crate::rabbitmq::config::apply_env(&mut self.rabbitmq, &var, &mut issues);
        crate::logstash::config::apply_env(&mut self.logstash, &var, &mut issues);
        if issues.0.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::new(issues.0, None))
        }
    }

    fn apply_memcache_env(&mut self, var: &impl Fn(&str) -> Option<String>, issues: &mut Issues) {
        const SERVERS: &str = "DROVER_MEMCACHE_SERVERS";
        const POOL: &str = "DROVER_MEMCACHE_POOL";
        const TIMEOUT: &str = "DROVER_MEMCACHE_TIMEOUT_MS";
        const USERNAME: &str = "DROVER_MEMCACHE_USERNAME";
        const PASSWORD: &str = "DROVER_MEMCACHE_PASSWORD";
        const MAX_VALUE: &str = "DROVER_MEMCACHE_MAX_VALUE_BYTES";
        let names = [SERVERS, POOL, TIMEOUT, USERNAME, PASSWORD, MAX_VALUE];
        let set: Vec<&str> = names.into_iter().filter(|n| var(n).is_some()).collect();
        if set.is_empty() {
            return;
        }
        let m = self
            .memcache
            .get_or_insert_with(|| MemcacheConfig::new(Vec::new()));
        if let Some(v) = var(SERVERS) {
            let servers: Vec<String> = v.split(',').map(|s| s.trim().to_owned()).collect();
            for s in &servers {
                if let Err(why) = check_host_port(s) {
                    issues.push(SERVERS, why, None);
                }
            }
            m.servers = servers;
        }
        if let Err(why) = check_servers(&m.servers) {
            issues.push(
                set[0],
                format!("memcache {why} (set {SERVERS} or [memcache] servers)"),
                None,
            );
        }
        if let Some(v) = env_int(var, POOL, POOL_RANGE, issues) {
            m.pool = v as u32;
        }
        if let Some(v) = env_int(var, TIMEOUT, TIMEOUT_RANGE, issues) {
            m.timeout = Duration::from_millis(v as u64);
        }
        if let Some(v) = env_int(var, MAX_VALUE, MAX_VALUE_RANGE, issues) {
            m.max_value_bytes = v as usize;
        }
        if let Some(u) = var(USERNAME) {
            match check_username(&u) {
                Ok(()) => m.username = Some(u),
                Err(why) => issues.push(USERNAME, why, None),
            }
        }
        if let Some(p) = var(PASSWORD) {
            m.password = Some(Secret::new(p));
        }
        if m.username.is_some() != m.password.is_some() {
            issues.push(
                if m.username.is_some() {
                    USERNAME
                } else {
                    PASSWORD
                },
                "username and password go together",
                None,
            );
        }
    }

    fn apply_statsd_env(&mut self, var: &impl Fn(&str) -> Option<String>, issues: &mut Issues) {
        const ADDR: &str = "DROVER_STATSD_ADDR";
        const PREFIX: &str = "DROVER_STATSD_PREFIX";
        const TAGS: &str = "DROVER_STATSD_TAGS";
        const MAX_PACKET: &str = "DROVER_STATSD_MAX_PACKET";
        const FLUSH: &str = "DROVER_STATSD_FLUSH_MS";
        const RATE: &str = "DROVER_STATSD_SAMPLE_RATE";
        let names = [ADDR, PREFIX, TAGS, MAX_PACKET, FLUSH, RATE];
        let set: Vec<&str> = names.into_iter().filter(|n| var(n).is_some()).collect();
        if set.is_empty() {
            return;
        }
        let s = self.statsd.get_or_insert_with(|| StatsdConfig::new(""));
        if let Some(v) = var(ADDR) {
            if let Err(why) = check_host_port(&v) {
                issues.push(ADDR, why, None);
            }
            s.addr = v;
        }
        if s.addr.is_empty() {
            issues.push(
                set[0],
                format!("statsd needs a server address (set {ADDR} or [statsd] addr)"),
                None,
            );
        }
        if let Some(v) = var(PREFIX) {
            match check_prefix(&v) {
                Ok(()) => s.prefix = v,
                Err(why) => issues.push(PREFIX, why, None),
            }
        }
        if let Some(v) = var(TAGS) {
            let mut tags = BTreeMap::new();
            for pair in v.split(',') {
                let Some((k, val)) = pair.split_once(':') else {
                    issues.push(
                        TAGS,
                        format!("expected k:v pairs separated by commas, got {pair:?}"),
                        None,
                    );
                    continue;
                };
                match check_tag_key(k).and_then(|()| check_tag_value(val)) {
                    Ok(()) => {
                        tags.insert(k.to_owned(), val.to_owned());
                    }
                    Err(why) => issues.push(TAGS, why, None),
                }
            }
            if tags.len() > MAX_TAGS {
                issues.push(TAGS, format!("at most {MAX_TAGS} tags"), None);
            }
            s.tags = tags;
        }
        if let Some(v) = env_int(var, MAX_PACKET, MAX_PACKET_RANGE, issues) {
            s.max_packet = v as usize;
        }
        if let Some(v) = env_int(var, FLUSH, FLUSH_RANGE, issues) {
            s.flush = Duration::from_millis(v as u64);
        }
        if let Some(v) = var(RATE) {
            match v
                .trim()
                .parse::<f64>()
                .map_err(|e| e.to_string())
                .and_then(check_rate)
            {
                Ok(r) => s.sample_rate = r,
                Err(why) => issues.push(RATE, why, None),
            }
        }
    }
}

/// The dotted key (`memcache.pool`) assigned on the line holding byte `at`,
/// for parse errors, which carry a span but not the key.
fn key_at(text: &str, at: usize) -> Option<String> {
    let at = at.min(text.len());
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    let (key, _) = text[line_start..line_end].split_once('=')?;
    let key = key.trim().trim_matches('"');
    if key.is_empty() || key.starts_with('[') {
        return None;
    }
    let section = text[..line_start]
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix('[')?.strip_suffix(']').map(str::trim));
    Some(match section {
        Some(sec) => format!("{sec}.{key}"),
        None => key.to_owned(),
    })
}

pub(crate) fn env_int(
    var: &impl Fn(&str) -> Option<String>,
    name: &str,
    range: (i64, i64),
    issues: &mut Issues,
) -> Option<i64> {
    let v = var(name)?;
    match v.trim().parse::<i64>() {
        Ok(n) => match in_range(n, range) {
            Ok(n) => Some(n),
            Err(why) => {
                issues.push(name, why, None);
                None
            }
        },
        Err(_) => {
            issues.push(name, format!("expected an integer, got {v:?}"), None);
            None
        }
    }
}

fn check_prefix(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Ok(());
    }
    check_metric_name(p).map_err(|why| format!("prefix: {why}"))
}

/// Reads an optional spanned integer key within `range`.
pub(crate) fn spanned_int(
    v: Option<Spanned<i64>>,
    key: &str,
    range: (i64, i64),
    issues: &mut Issues,
) -> Option<i64> {
    let v = v?;
    match in_range(*v.get_ref(), range) {
        Ok(n) => Some(n),
        Err(why) => {
            issues.push(key, why, Some(v.span()));
            None
        }
    }
}

fn memcache_from_raw(raw: Spanned<RawMemcache>, issues: &mut Issues) -> MemcacheConfig {
    let section_span = raw.span();
    let raw = raw.into_inner();
    let mut m = MemcacheConfig::new(Vec::new());
    match raw.servers {
        Some(servers) => {
            let list_span = servers.span();
            for s in servers.get_ref() {
                if let Err(why) = check_host_port(s.get_ref()) {
                    issues.push("memcache.servers", why, Some(s.span()));
                }
            }
            m.servers = servers.into_inner().into_iter().map(Spanned::into_inner).collect();
            if let Err(why) = check_servers(&m.servers) {
                issues.push("memcache.servers", why, Some(list_span));
            }
        }
        None => issues.push("memcache.servers", "missing: the section needs a list of host:port (or remove the section for the embedded cache)", Some(section_span.clone())),
    }
    if let Some(n) = spanned_int(raw.pool, "memcache.pool", POOL_RANGE, issues) {
        m.pool = n as u32;
    }
    if let Some(n) = spanned_int(raw.timeout_ms, "memcache.timeout_ms", TIMEOUT_RANGE, issues) {
        m.timeout = Duration::from_millis(n as u64);
    }
    if let Some(n) = spanned_int(
        raw.max_value_bytes,
        "memcache.max_value_bytes",
        MAX_VALUE_RANGE,
        issues,
    ) {
        m.max_value_bytes = n as usize;
    }
    if let Some(u) = raw.username {
        if let Err(why) = check_username(u.get_ref()) {
            issues.push("memcache.username", why, Some(u.span()));
        }
        m.username = Some(u.into_inner());
    }
    m.password = raw.password.map(Spanned::into_inner);
    if m.username.is_some() != m.password.is_some() {
        issues.push(
            "memcache.password",
            "username and password go together",
            Some(section_span),
        );
    }
    m
}

fn statsd_from_raw(raw: Spanned<RawStatsd>, issues: &mut Issues) -> StatsdConfig {
    let section_span = raw.span();
    let raw = raw.into_inner();
    let mut s = StatsdConfig::new("");
    match raw.addr {
        Some(a) => {
            if let Err(why) = check_host_port(a.get_ref()) {
                issues.push("statsd.addr", why, Some(a.span()));
            }
            s.addr = a.into_inner();
        }
        None => issues.push("statsd.addr", "missing: the section needs host:port (or remove the section for the embedded aggregator)", Some(section_span)),
    }
    if let Some(p) = raw.prefix {
        if let Err(why) = check_prefix(p.get_ref()) {
            issues.push("statsd.prefix", why, Some(p.span()));
        }
        s.prefix = p.into_inner();
    }
    if let Some(tags) = raw.tags {
        if tags.len() > MAX_TAGS {
            issues.push("statsd.tags", format!("at most {MAX_TAGS} tags"), None);
        }
        for (k, v) in tags {
            if let Err(why) = check_tag_key(k.get_ref()) {
                issues.push("statsd.tags", why, Some(k.span()));
            }
            if let Err(why) = check_tag_value(v.get_ref()) {
                issues.push(format!("statsd.tags.{}", k.get_ref()), why, Some(v.span()));
            }
            s.tags.insert(k.into_inner(), v.into_inner());
        }
    }
    if let Some(n) = spanned_int(
        raw.max_packet,
        "statsd.max_packet",
        MAX_PACKET_RANGE,
        issues,
    ) {
        s.max_packet = n as usize;
    }
    if let Some(n) = spanned_int(raw.flush_ms, "statsd.flush_ms", FLUSH_RANGE, issues) {
        s.flush = Duration::from_millis(n as u64);
    }
    if let Some(r) = raw.sample_rate {
        match check_rate(*r.get_ref()) {
            Ok(v) => s.sample_rate = v,
            Err(why) => issues.push("statsd.sample_rate", why, Some(r.span())),
        }
    }
    for (name, r) in raw.sample_rates.unwrap_or_default() {
        if let Err(why) = check_metric_name(name.get_ref()) {
            issues.push("statsd.sample_rates", why, Some(name.span()));
        }
        match check_rate(*r.get_ref()) {
            Ok(v) => {
                s.sample_rates.insert(name.into_inner(), v);
            }
            Err(why) => issues.push(
                format!("statsd.sample_rates.{}", name.get_ref()),
                why,
                Some(r.span()),
            ),
        }
    }
    s
}
