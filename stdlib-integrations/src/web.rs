//! What the HTTP-based integrations (Slack, PagerDuty, Consul, `http`) share:
//! one pooled client each, token-bucket rate limits by key, retries of 429
//! and 5xx answers inside an attempt, and mapping transport errors to
//! failures without leaking URLs (webhook URLs are secrets).
//!
//! Retry policy, the same for every integration here: an answer of 429 or
//! 5xx is retried inside the attempt, up to `max_attempts` sends, after the
//! server's `Retry-After` (seconds) or an exponential backoff, but only when
//! the wait ends before the attempt's deadline. Otherwise the attempt fails
//! with a retryable failure (`rate_limited` or `unavailable`) whose message
//! says how long the server asked to wait, and the node's retry policy
//! decides. Every send of one effect carries the same idempotency key.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, Response, StatusCode};

use crate::EffectFailure;

/// The longest wait between two sends of one attempt.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The first backoff when the server gives no `Retry-After`.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// How many keys a rate limiter tracks before it forgets the idlest.
const MAX_BUCKETS: usize = 10_000;

/// A client with the connect and request timeouts; pooled connections.
/// Fails only when the TLS backend cannot start.
pub(crate) fn client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .pool_max_idle_per_host(32)
        .user_agent(concat!("drover/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// A transport error as a failure; the URL is left out (it may hold a secret).
pub(crate) fn transport_failure(what: &str, e: reqwest::Error) -> EffectFailure {
    let e = e.without_url();
    if e.is_timeout() {
        EffectFailure::retryable("timeout", format!("{what}: no answer in time"))
    } else if e.is_connect() {
        EffectFailure::retryable("unavailable", format!("{what}: cannot connect: {e}"))
    } else if e.is_body() || e.is_decode() {
        EffectFailure::retryable("unavailable", format!("{what}: broken answer: {e}"))
    } else {
        EffectFailure::retryable("unavailable", format!("{what}: {e}"))
    }
}

/// `Retry-After` in seconds (the HTTP-date form is not honoured: every
/// service Drover talks to sends seconds).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    let secs: f64 = v.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)))
}

/// Whether an answer is worth sending again.
pub(crate) fn retryable_status(s: StatusCode) -> bool {
    s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error()
}

/// How many sends an attempt may make, and its deadline.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Retrying {
    pub max_sends: u32,
    pub deadline: Option<Instant>,
}

/// The last answer of an attempt that gave up retrying.
pub(crate) struct GaveUp {
    pub status: StatusCode,
    pub wait: Option<Duration>,
    pub body: String,
}

impl GaveUp {
    /// The retryable failure for it: `rate_limited` for 429, else `unavailable`.
    pub fn failure(&self, what: &str) -> EffectFailure {
        let kind = if self.status == StatusCode::TOO_MANY_REQUESTS {
            "rate_limited"
        } else {
            "unavailable"
        };
        let wait = match self.wait {
            Some(w) => format!("; the server asks to wait {:.1}s", w.as_secs_f64()),
            None => String::new(),
        };
        EffectFailure::retryable(
            kind,
            format!(
                "{what}: HTTP {}{wait}{}",
                self.status.as_u16(),
                body_note(&self.body)
            ),
        )
    }
}

/// `: <start of body>` for error messages, or nothing.
pub(crate) fn body_note(body: &str) -> String {
    let b = body.trim();
    if b.is_empty() {
        String::new()
    } else {
        format!(": {}", crate::summary::cut(b, 200))
    }
}

/// Sends `build()` until the answer is not 429/5xx, the sends run out, or the
/// next wait would pass the deadline. `Ok(Ok(resp))` is a final answer,
/// `Ok(Err(gave_up))` a retryable answer not retried further.
pub(crate) async fn send(
    what: &str,
    retrying: Retrying,
    build: impl Fn() -> RequestBuilder,
) -> Result<Result<Response, GaveUp>, EffectFailure> {
    let mut sends = 0;
    loop {
        sends += 1;
        let resp = build()
            .send()
            .await
            .map_err(|e| transport_failure(what, e))?;
        if !retryable_status(resp.status()) {
            return Ok(Ok(resp));
        }
        let status = resp.status();
        let asked = retry_after(resp.headers());
        let backoff = FIRST_BACKOFF.saturating_mul(1 << (sends - 1).min(16));
        let wait = asked.unwrap_or(backoff).min(MAX_BACKOFF);
        let body = read_text(resp, 4096).await.unwrap_or_default();
        let fits = retrying.deadline.is_none_or(|d| Instant::now() + wait < d);
        if sends >= retrying.max_sends || !fits || asked.is_some_and(|a| a > MAX_BACKOFF) {
            return Ok(Err(GaveUp {
                status,
                wait: asked,
                body,
            }));
        }
        tokio::time::sleep(wait).await;
    }
}

/// At most `limit` bytes of the body, as text (lossy).
pub(crate) async fn read_text(resp: Response, limit: usize) -> Result<String, reqwest::Error> {
    let bytes = read_bytes(resp, limit).await?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// At most `limit` bytes of the body; the rest is dropped unread.
pub(crate) async fn read_bytes(
    mut resp: Response,
    limit: usize,
) -> Result<Vec<u8>, reqwest::Error> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        let room = limit.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

/// Checks a base URL: `http://` or `https://`, a host, no spaces.
pub(crate) fn check_base_url(s: &str) -> Result<(), String> {
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"))
        .ok_or_else(|| format!("expected an http:// or https:// URL, got {s:?}"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "expected a URL with a host and no spaces, got {s:?}"
        ));
    }
    reqwest::Url::parse(s)
        .map(|_| ())
        .map_err(|e| format!("{e}: {s:?}"))
}

/// A token bucket's state.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by key (a channel, a routing key, a host): each key may
/// take `burst` at once and `per_second` sustained.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// A limiter of `per_second` sustained and `burst` at once, per key.
    pub fn new(per_second: f64, burst: u32) -> Self {
        RateLimiter {
            per_second: per_second.max(f64::MIN_POSITIVE),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `key` at `now`: `None` if taken, or how long until
    /// one is free (nothing is taken then).
    pub fn try_take(&self, key: &str, now: Instant) -> Option<Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if !buckets.contains_key(key) && buckets.len() >= MAX_BUCKETS {
            // Forget the bucket idle longest; a full one is the same as none.
            if let Some(oldest) = buckets
                .iter()
                .min_by_key(|(_, b)| b.at)
                .map(|(k, _)| k.clone())
            {
                buckets.remove(&oldest);
            }
        }
        let b = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.per_second).min(self.burst);
        b.at = now.max(b.at);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            None
        } else {
            Some(Duration::from_secs_f64((1.0 - b.tokens) / self.per_second))
        }
    }

    /// Waits for a token for `key`; a retryable `rate_limited` failure if
    /// the wait would pass `deadline`.
    pub(crate) async fn take(
        &self,
        what: &str,
        key: &str,
        deadline: Option<Instant>,
    ) -> Result<(), EffectFailure> {
        loop {
            let now = Instant::now();
            let Some(wait) = self.try_take(key, now) else {
                return Ok(());
            };
            if deadline.is_some_and(|d| now + wait >= d) {
                return Err(EffectFailure::retryable(
                    "rate_limited",
                    format!(
                        "{what}: the rate limit needs a wait of {:.1}s, past the deadline",
                        wait.as_secs_f64()
                    ),
                ));
            }
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let l = RateLimiter::new(2.0, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.try_take("a", t0), None);
        }
        let wait = l.try_take("a", t0).expect("the burst is spent");
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-6, "{wait:?}");
        // Another key has its own bucket.
        assert_eq!(l.try_take("b", t0), None);
        // Half a second later, one more token.
        assert_eq!(l.try_take("a", t0 + Duration::from_millis(500)), None);
        assert!(l.try_take("a", t0 + Duration::from_millis(500)).is_some());
        // A long pause refills to the burst, no more.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(l.try_take("a", later), None);
        }
        assert!(l.try_take("a", later).is_some());
    }

    #[test]
    fn retry_after_reads_seconds() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(reqwest::header::RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert(reqwest::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }
}

/// Config keys every HTTP-based integration has.
pub(crate) mod keys {
    use toml::Spanned;

    use crate::config::{env_int, spanned_int, Issues};

    /// `timeout_ms`: 1 ms to 5 minutes.
    pub const TIMEOUT_RANGE: (i64, i64) = (1, 300_000);
    /// `max_attempts`: sends per attempt.
    pub const ATTEMPTS_RANGE: (i64, i64) = (1, 10);

    /// An optional URL key, checked.
    pub fn url(v: Option<Spanned<String>>, key: &str, issues: &mut Issues) -> Option<String> {
        let v = v?;
        match super::check_base_url(v.get_ref()) {
            Ok(()) => Some(v.into_inner().trim_end_matches('/').to_owned()),
            Err(why) => {
                issues.push(key, why, Some(v.span()));
                None
            }
        }
    }

    /// A URL from environment variable `name`, checked.
    pub fn env_url(
        var: &impl Fn(&str) -> Option<String>,
        name: &str,
        issues: &mut Issues,
    ) -> Option<String> {
        let v = var(name)?;
        match super::check_base_url(&v) {
            Ok(()) => Some(v.trim_end_matches('/').to_owned()),
            Err(why) => {
                issues.push(name, why, None);
                None
            }
        }
    }

    /// `timeout_ms` and `max_attempts` from a section.
    pub fn common(
        timeout_ms: Option<Spanned<i64>>,
        max_attempts: Option<Spanned<i64>>,
        section: &str,
        issues: &mut Issues,
    ) -> (Option<u64>, Option<u32>) {
        let t = spanned_int(
            timeout_ms,
            &format!("{section}.timeout_ms"),
            TIMEOUT_RANGE,
            issues,
        );
        let a = spanned_int(
            max_attempts,
            &format!("{section}.max_attempts"),
            ATTEMPTS_RANGE,
            issues,
        );
        (t.map(|n| n as u64), a.map(|n| n as u32))
    }

    /// `DROVER_<SECTION>_TIMEOUT_MS` and `DROVER_<SECTION>_MAX_ATTEMPTS`.
    pub fn env_common(
        var: &impl Fn(&str) -> Option<String>,
        prefix: &str,
        issues: &mut Issues,
    ) -> (Option<u64>, Option<u32>) {
        let t = env_int(var, &format!("{prefix}_TIMEOUT_MS"), TIMEOUT_RANGE, issues);
        let a = env_int(
            var,
            &format!("{prefix}_MAX_ATTEMPTS"),
            ATTEMPTS_RANGE,
            issues,
        );
        (t.map(|n| n as u64), a.map(|n| n as u32))
    }

    /// A positive, finite rate.
    pub fn check_rate(r: f64) -> Result<f64, String> {
        if r.is_finite() && r > 0.0 && r <= 100_000.0 {
            Ok(r)
        } else {
            Err(format!(
                "a rate must be above 0 and at most 100000, got {r}"
            ))
        }
    }
}
