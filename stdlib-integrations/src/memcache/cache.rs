//! The cache behind the memcache integration: a real memcached cluster
//! ([`super::ServerCache`]) or the in-process fallback
//! ([`super::EmbeddedCache`]). Both speak in raw items (flags and bytes);
//! encoding values is the integration's job, so both store exactly the same
//! bytes and `incr` treats them the same way.

use std::future::Future;

use super::MemcacheError;
use crate::{Health, ResourceDecl};

/// A stored item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// The client flags given when it was stored.
    pub flags: u32,
    /// The stored bytes.
    pub data: Vec<u8>,
    /// Its CAS token: changes on every write.
    pub cas: u64,
}

/// How long an item lives: seconds from now, 0 for no expiry.
pub type TtlSeconds = u32;

/// The condition a store is made under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreMode {
    /// Always store.
    Set,
    /// Store only if the key is absent.
    Add,
    /// Store only if the item's CAS token is still this one.
    Cas(u64),
}

/// What a store did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreOutcome {
    /// Stored.
    Stored,
    /// `Add` on a key that exists.
    NotStored,
    /// `Cas` on an item changed since the token was read.
    Exists,
    /// `Cas` on a key that does not exist.
    NotFound,
}

/// Which way `incr`/`decr` goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delta {
    /// Add, wrapping at 2^64 like memcached.
    Incr(u64),
    /// Subtract, stopping at 0 like memcached.
    Decr(u64),
}

/// A memcached-compatible cache.
pub trait Cache: Send + Sync + 'static {
    /// The item at `key`.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Item>, MemcacheError>> + Send;

    /// The items found among `keys`, with their keys.
    fn get_multi(
        &self,
        keys: &[&str],
    ) -> impl Future<Output = Result<Vec<(String, Item)>, MemcacheError>> + Send;

    /// Stores an item under `mode`.
    fn store(
        &self,
        key: &str,
        flags: u32,
        data: &[u8],
        ttl: TtlSeconds,
        mode: StoreMode,
    ) -> impl Future<Output = Result<StoreOutcome, MemcacheError>> + Send;

    /// Deletes `key`; whether it existed.
    fn delete(&self, key: &str) -> impl Future<Output = Result<bool, MemcacheError>> + Send;

    /// Applies `delta` to the counter at `key`; its new value, or `None` if missing.
    fn arith(
        &self,
        key: &str,
        delta: Delta,
    ) -> impl Future<Output = Result<Option<u64>, MemcacheError>> + Send;

    /// Sets a new expiry; whether the key exists.
    fn touch(
        &self,
        key: &str,
        ttl: TtlSeconds,
    ) -> impl Future<Output = Result<bool, MemcacheError>> + Send;

    /// Checks the servers.
    fn health(&self) -> impl Future<Output = Health> + Send;

    /// Drops every pooled connection (see [`crate::Integration::reset`]).
    fn reset(&self) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }

    /// The connections (or nothing) effects take.
    fn resources(&self) -> Vec<ResourceDecl>;
}
