//! The memcache integration: `memcache.get`, `get_multi`, `set`, `add`,
//! `delete`, `incr`, `decr`, `cas` and `touch`, against real memcached
//! servers ([`ServerCache`]) or an in-process cache with the same semantics
//! ([`EmbeddedCache`]).
//!
//! Values are stored as described in [`codec`]: MessagePack with a flag, or
//! ASCII decimal for non-negative ints so `incr` works on them.
//!
//! TTLs are seconds from now, 0 for none, at most [`MAX_TTL_S`]. (memcached
//! reads an expiry above 30 days as a Unix time; [`ServerCache`] converts, so
//! the workflow never sees that rule.)

mod cache;
pub mod codec;
mod embedded;
mod server;

use std::collections::BTreeMap;

use drover_ir::Value;

pub use cache::{Cache, Delta, Item, StoreMode, StoreOutcome, TtlSeconds};
pub use embedded::{EmbeddedCache, EmbeddedLimits};
pub use server::{ServerCache, IDLE_CHECK};

use crate::args::{self, bad};
use crate::{summary, EffectCall, EffectFailure, Health, Integration, ResourceDecl};

/// The operations, in catalog order.
pub const OPERATIONS: &[&str] = &[
    "get",
    "gets",
    "get_multi",
    "set",
    "add",
    "delete",
    "incr",
    "decr",
    "cas",
    "touch",
];

/// The longest key memcached accepts, in bytes.
pub const MAX_KEY_BYTES: usize = 250;
/// The most keys one `get_multi` may ask for.
pub const MAX_MULTI_KEYS: usize = 1024;
/// The longest TTL accepted: ten years, in seconds.
pub const MAX_TTL_S: u32 = 10 * 365 * 24 * 3600;

/// What went wrong talking to a cache. Each maps to an [`EffectFailure`]
/// kind; the ones an outage causes are retryable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MemcacheError {
    /// No connection could be made or kept.
    #[error("memcached at {server} is unavailable: {reason}")]
    Unavailable {
        /// `host:port`.
        server: String,
        /// The I/O error.
        reason: String,
    },
    /// The operation took longer than its limit.
    #[error("memcached at {server} did not answer within {ms} ms")]
    Timeout {
        /// `host:port`.
        server: String,
        /// The limit.
        ms: u64,
    },
    /// The server's reply did not follow the protocol (the connection is dropped).
    #[error("memcached at {server} sent a bad reply: {reason}")]
    Protocol {
        /// `host:port`.
        server: String,
        /// What was wrong with it.
        reason: String,
    },
    /// `SERVER_ERROR`, such as out of memory.
    #[error("memcached at {server} failed: {reason}")]
    Server {
        /// `host:port`.
        server: String,
        /// The server's message.
        reason: String,
    },
    /// The server refused the request (`CLIENT_ERROR`).
    #[error("memcached at {server} refused the request: {reason}")]
    Rejected {
        /// `host:port`.
        server: String,
        /// The server's message.
        reason: String,
    },
    /// The server refused the credentials.
    #[error("memcached at {server} refused the credentials")]
    Auth {
        /// `host:port`.
        server: String,
    },
    /// `incr`/`decr` on an item that does not hold a decimal number.
    #[error("{key} does not hold a counter")]
    NotCounter {
        /// The key.
        key: String,
    },
    /// A value over the item size limit.
    #[error("the encoded value is {size} bytes, over the limit of {max}")]
    TooLarge {
        /// The encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A counter that does not fit a workflow int (memcached's are unsigned).
    #[error("the counter at {key} is {value}, above the largest int")]
    OutOfRange {
        /// The key.
        key: String,
        /// The counter.
        value: u64,
    },
    /// A value that could not be encoded.
    #[error("the value cannot be encoded: {reason}")]
    Encode {
        /// Why.
        reason: String,
    },
    /// A stored item that could not be decoded.
    #[error("the item at {key} cannot be decoded: {reason}")]
    Decode {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
}

impl MemcacheError {
    /// The failure kind the workflow sees.
    pub fn kind(&self) -> &'static str {
        match self {
            MemcacheError::Unavailable { .. } => "unavailable",
            MemcacheError::Timeout { .. } => "timeout",
            MemcacheError::Protocol { .. } => "protocol",
            MemcacheError::Server { .. } => "server_error",
            MemcacheError::Rejected { .. } => "rejected",
            MemcacheError::Auth { .. } => "auth_failed",
            MemcacheError::NotCounter { .. } => "not_a_counter",
            MemcacheError::TooLarge { .. } => "too_large",
            MemcacheError::OutOfRange { .. } => "out_of_range",
            MemcacheError::Encode { .. } => "encode",
            MemcacheError::Decode { .. } => "decode",
        }
    }

    /// Whether another attempt may succeed: outages, timeouts and bad
    /// replies (the next attempt gets a fresh connection) are; the rest
    /// repeat whatever happens.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            MemcacheError::Unavailable { .. }
                | MemcacheError::Timeout { .. }
                | MemcacheError::Protocol { .. }
                | MemcacheError::Server { .. }
        )
    }
}

impl From<MemcacheError> for EffectFailure {
    fn from(e: MemcacheError) -> Self {
        EffectFailure {
            kind: e.kind().to_owned(),
            message: e.to_string(),
            retryable: e.retryable(),
        }
    }
}

/// The memcache integration over a cache.
pub struct MemcacheIntegration<C> {
    cache: C,
    max_value_bytes: usize,
}

impl<C: Cache> MemcacheIntegration<C> {
    /// The integration over `cache`, refusing encoded values over `max_value_bytes`.
    pub fn new(cache: C, max_value_bytes: usize) -> Self {
        MemcacheIntegration {
            cache,
            max_value_bytes,
        }
    }

    /// The cache underneath.
    pub fn cache(&self) -> &C {
        &self.cache
    }

    /// The value at `key` with its CAS token, for `memcache.cas`.
    pub async fn gets(&self, key: &str) -> Result<Option<(Value, u64)>, EffectFailure> {
        check_key(key, "key")?;
        match self.cache.get(key).await? {
            Some(item) => Ok(Some((
                codec::decode(key, item.flags, &item.data)?,
                item.cas,
            ))),
            None => Ok(None),
        }
    }

    async fn run(&self, call: &EffectCall<'_>) -> Result<Value, EffectFailure> {
        let a = &call.args;
        match call.op {
            "get" => {
                args::expect_arity("memcache.get", &["key"], a)?;
                let key = key_arg(&a[0])?;
                match self.cache.get(key).await? {
                    Some(item) => Ok(codec::decode(key, item.flags, &item.data)?),
                    None => Ok(Value::Null),
                }
            }
            "gets" => {
                args::expect_arity("memcache.gets", &["key"], a)?;
                match self.gets(key_arg(&a[0])?).await? {
                    Some((value, cas)) => {
                        // Tokens are counters; one past i64::MAX would need a
                        // server older than the universe, but say so anyway.
                        let cas = i64::try_from(cas).map_err(|_| {
                            EffectFailure::permanent(
                                "cas_token",
                                format!("memcached returned a CAS token {cas} beyond 64-bit ints"),
                            )
                        })?;
                        Ok(Value::record([("value", value), ("cas", Value::Int(cas))]))
                    }
                    None => Ok(Value::Null),
                }
            }
            "get_multi" => {
                args::expect_arity("memcache.get_multi", &["keys"], a)?;
                let keys = keys_arg(&a[0])?;
                let mut found = BTreeMap::new();
                for (key, item) in self.cache.get_multi(&keys).await? {
                    let v = codec::decode(&key, item.flags, &item.data)?;
                    found.insert(Value::Str(key), v);
                }
                Ok(Value::Map(found))
            }
            "set" | "add" => {
                let (name, mode) = if call.op == "set" {
                    ("memcache.set", StoreMode::Set)
                } else {
                    ("memcache.add", StoreMode::Add)
                };
                args::expect_arity(name, &["key", "value", "ttl_s"], a)?;
                let key = key_arg(&a[0])?;
                let (flags, data) = self.encode(&a[1])?;
                let ttl = ttl_arg(&a[2])?;
                let outcome = self.cache.store(key, flags, &data, ttl, mode).await?;
                Ok(match mode {
                    StoreMode::Set => Value::Null,
                    _ => Value::Bool(outcome == StoreOutcome::Stored),
                })
            }
            "cas" => {
                args::expect_arity("memcache.cas", &["key", "value", "cas", "ttl_s"], a)?;
                let key = key_arg(&a[0])?;
                let (flags, data) = self.encode(&a[1])?;
                let token = args::unsigned(&a[2], "cas")?;
                let ttl = ttl_arg(&a[3])?;
                let outcome = self
                    .cache
                    .store(key, flags, &data, ttl, StoreMode::Cas(token))
                    .await?;
                Ok(Value::Bool(outcome == StoreOutcome::Stored))
            }
            "delete" => {
                args::expect_arity("memcache.delete", &["key"], a)?;
                Ok(Value::Bool(self.cache.delete(key_arg(&a[0])?).await?))
            }
            "incr" | "decr" => {
                let name = if call.op == "incr" {
                    "memcache.incr"
                } else {
                    "memcache.decr"
                };
                args::expect_arity(name, &["key", "delta"], a)?;
                let key = key_arg(&a[0])?;
                let n = args::unsigned(&a[1], "delta")?;
                let delta = if call.op == "incr" {
                    Delta::Incr(n)
                } else {
                    Delta::Decr(n)
                };
                match self.cache.arith(key, delta).await? {
                    Some(n) => Ok(codec::counter_value(key, n)?),
                    None => Ok(Value::Null),
                }
            }
            "touch" => {
                args::expect_arity("memcache.touch", &["key", "ttl_s"], a)?;
                let key = key_arg(&a[0])?;
                let ttl = ttl_arg(&a[1])?;
                Ok(Value::Bool(self.cache.touch(key, ttl).await?))
            }
            other => Err(EffectFailure::permanent(
                "unknown_effect",
                format!("memcache has no operation {other:?}"),
            )),
        }
    }

    fn encode(&self, v: &Value) -> Result<(u32, Vec<u8>), EffectFailure> {
        let (flags, data) = codec::encode(v)?;
        if data.len() > self.max_value_bytes {
            return Err(MemcacheError::TooLarge {
                size: data.len(),
                max: self.max_value_bytes,
            }
            .into());
        }
        Ok((flags, data))
    }
}

impl<C: Cache> Integration for MemcacheIntegration<C> {
    fn name(&self) -> &'static str {
        "memcache"
    }

    fn operations(&self) -> &'static [&'static str] {
        OPERATIONS
    }

    async fn perform(&self, call: EffectCall<'_>) -> Result<Value, EffectFailure> {
        match call.deadline {
            // Cancelling a memcached operation closes its connection (the
            // client guarantees it), so a timeout never leaves a stale reply
            // for the next user of that connection.
            Some(deadline) => {
                let deadline = tokio::time::Instant::from_std(deadline);
                match tokio::time::timeout_at(deadline, self.run(&call)).await {
                    Ok(r) => r,
                    Err(_) => Err(EffectFailure::retryable(
                        "timeout",
                        "the effect's deadline passed",
                    )),
                }
            }
            None => self.run(&call).await,
        }
    }

    async fn health(&self) -> Health {
        self.cache.health().await
    }

    async fn reset(&self) {
        self.cache.reset().await
    }

    fn resources(&self) -> Vec<ResourceDecl> {
        self.cache.resources()
    }

    fn summarize(&self, call: &EffectCall<'_>, result: &Result<Value, EffectFailure>) -> String {
        summary::call("memcache", call, result)
    }
}

/// Checks a key: 1 to 250 bytes, no spaces or control characters (the
/// text protocol splits on them), so both caches accept the same keys.
pub(crate) fn check_key(key: &str, name: &str) -> Result<(), EffectFailure> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(bad(
            name,
            format!(
                "a key must be 1 to {MAX_KEY_BYTES} bytes, got {}",
                key.len()
            ),
        ));
    }
    if key.bytes().any(|b| b <= 0x20 || b == 0x7f) {
        return Err(bad(
            name,
            "a key must not contain spaces or control characters",
        ));
    }
    Ok(())
}

fn key_arg(v: &Value) -> Result<&str, EffectFailure> {
    let key = args::string(v, "key")?;
    check_key(key, "key")?;
    Ok(key)
}

fn keys_arg(v: &Value) -> Result<Vec<&str>, EffectFailure> {
    let Value::List(items) = v else {
        return Err(bad(
            "keys",
            format!("expected a list of strings, got {}", v.kind()),
        ));
    };
    if items.len() > MAX_MULTI_KEYS {
        return Err(bad(
            "keys",
            format!("at most {MAX_MULTI_KEYS} keys, got {}", items.len()),
        ));
    }
    items
        .iter()
        .map(|k| {
            let key = args::string(k, "keys")?;
            check_key(key, "keys")?;
            Ok(key)
        })
        .collect()
}

fn ttl_arg(v: &Value) -> Result<TtlSeconds, EffectFailure> {
    let n = args::unsigned(v, "ttl_s")?;
    if n > u64::from(MAX_TTL_S) {
        return Err(bad(
            "ttl_s",
            format!("at most {MAX_TTL_S} seconds (ten years), got {n}"),
        ));
    }
    Ok(n as TtlSeconds)
}
