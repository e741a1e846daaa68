//! The in-process fallback: a map with memcached's semantics, for local runs
//! with no server. `add` fails if the key is present, `cas` fails if the item
//! changed or is gone, `incr`/`decr` on a missing key give `None` and on a
//! non-number fail, `incr` wraps at 2^64 and `decr` stops at 0, every write
//! gets a new CAS token, and items expire after their TTL. When full it
//! evicts the least recently used items, as memcached does.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::cache::{Cache, Delta, Item, StoreMode, StoreOutcome, TtlSeconds};
use super::codec::parse_counter;
use super::MemcacheError;
use crate::{Health, ResourceDecl};

/// How much the embedded cache holds before it evicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmbeddedLimits {
    /// The most items.
    pub max_items: usize,
    /// The most bytes of keys and values.
    pub max_bytes: usize,
}

impl Default for EmbeddedLimits {
    fn default() -> Self {
        EmbeddedLimits {
            max_items: 100_000,
            max_bytes: 64 << 20,
        }
    }
}

struct Entry {
    flags: u32,
    data: Vec<u8>,
    cas: u64,
    expires: Option<Instant>,
    /// The tick of the last read or write, for LRU eviction.
    used: u64,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        self.expires.is_none_or(|t| now < t)
    }
}

#[derive(Default)]
struct State {
    items: HashMap<String, Entry>,
    bytes: usize,
    next_cas: u64,
    tick: u64,
}

impl State {
    fn next_cas(&mut self) -> u64 {
        self.next_cas += 1;
        self.next_cas
    }

    fn touch_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    /// The live entry at `key`; an expired one is removed on the way.
    fn live(&mut self, key: &str, now: Instant) -> Option<&mut Entry> {
        if self.items.get(key).is_some_and(|e| !e.live(now)) {
            self.remove(key);
        }
        let tick = self.touch_tick();
        let e = self.items.get_mut(key)?;
        e.used = tick;
        Some(e)
    }

    fn remove(&mut self, key: &str) -> bool {
        match self.items.remove(key) {
            Some(e) => {
                self.bytes -= key.len() + e.data.len();
                true
            }
            None => false,
        }
    }

    fn insert(
        &mut self,
        key: &str,
        flags: u32,
        data: Vec<u8>,
        expires: Option<Instant>,
        limits: EmbeddedLimits,
        now: Instant,
    ) {
        self.remove(key);
        let size = key.len() + data.len();
        self.make_room(size, limits, now);
        let cas = self.next_cas();
        let used = self.touch_tick();
        self.bytes += size;
        self.items.insert(
            key.to_owned(),
            Entry {
                flags,
                data,
                cas,
                expires,
                used,
            },
        );
    }

    /// Drops expired items, then the least recently used, until `size` more
    /// bytes and one more item fit. (A linear scan: fine for local runs.)
    fn make_room(&mut self, size: usize, limits: EmbeddedLimits, now: Instant) {
        let full =
            |s: &State| s.items.len() + 1 > limits.max_items || s.bytes + size > limits.max_bytes;
        if !full(self) {
            return;
        }
        let expired: Vec<String> = self
            .items
            .iter()
            .filter(|(_, e)| !e.live(now))
            .map(|(k, _)| k.clone())
            .collect();
        for k in expired {
            self.remove(&k);
        }
        while full(self) {
            let Some(oldest) = self
                .items
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            self.remove(&oldest);
        }
    }
}

/// The in-process cache.
pub struct EmbeddedCache {
    state: Mutex<State>,
    limits: EmbeddedLimits,
}

impl Default for EmbeddedCache {
    fn default() -> Self {
        EmbeddedCache::new(EmbeddedLimits::default())
    }
}

impl EmbeddedCache {
    /// An empty cache with these limits.
    pub fn new(limits: EmbeddedLimits) -> Self {
        EmbeddedCache {
            state: Mutex::new(State::default()),
            limits,
        }
    }

    /// The number of items held, expired ones not yet dropped included.
    pub fn len(&self) -> usize {
        self.lock().items.len()
    }

    /// Whether it holds no items.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the map half-updated
        // in a way that matters more than losing the cache, so keep going.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn expiry(ttl: TtlSeconds, now: Instant) -> Option<Instant> {
    (ttl > 0).then(|| now + Duration::from_secs(u64::from(ttl)))
}

impl Cache for EmbeddedCache {
    async fn get(&self, key: &str) -> Result<Option<Item>, MemcacheError> {
        let mut s = self.lock();
        Ok(s.live(key, Instant::now()).map(|e| Item {
            flags: e.flags,
            data: e.data.clone(),
            cas: e.cas,
        }))
    }

    async fn get_multi(&self, keys: &[&str]) -> Result<Vec<(String, Item)>, MemcacheError> {
        let mut s = self.lock();
        let now = Instant::now();
        let mut found = Vec::new();
        for key in keys {
            if let Some(e) = s.live(key, now) {
                found.push((
                    (*key).to_owned(),
                    Item {
                        flags: e.flags,
                        data: e.data.clone(),
                        cas: e.cas,
                    },
                ));
            }
        }
        Ok(found)
    }

    async fn store(
        &self,
        key: &str,
        flags: u32,
        data: &[u8],
        ttl: TtlSeconds,
        mode: StoreMode,
    ) -> Result<StoreOutcome, MemcacheError> {
        let mut s = self.lock();
        let now = Instant::now();
        let current = s.live(key, now).map(|e| e.cas);
        let outcome = match (mode, current) {
            (StoreMode::Set, _) => StoreOutcome::Stored,
            (StoreMode::Add, Some(_)) => StoreOutcome::NotStored,
            (StoreMode::Add, None) => StoreOutcome::Stored,
            (StoreMode::Cas(_), None) => StoreOutcome::NotFound,
            (StoreMode::Cas(token), Some(cas)) if token != cas => StoreOutcome::Exists,
            (StoreMode::Cas(_), Some(_)) => StoreOutcome::Stored,
        };
        if outcome == StoreOutcome::Stored {
            s.insert(
                key,
                flags,
                data.to_vec(),
                expiry(ttl, now),
                self.limits,
                now,
            );
        }
        Ok(outcome)
    }

    async fn delete(&self, key: &str) -> Result<bool, MemcacheError> {
        let mut s = self.lock();
        let present = s.live(key, Instant::now()).is_some();
        Ok(present && s.remove(key))
    }

    async fn arith(&self, key: &str, delta: Delta) -> Result<Option<u64>, MemcacheError> {
        let mut s = self.lock();
        let cas = s.next_cas();
        let Some(e) = s.live(key, Instant::now()) else {
            return Ok(None);
        };
        let Some(n) = parse_counter(&e.data) else {
            return Err(MemcacheError::NotCounter {
                key: key.to_owned(),
            });
        };
        let n = match delta {
            Delta::Incr(d) => n.wrapping_add(d),
            Delta::Decr(d) => n.saturating_sub(d),
        };
        let old_len = e.data.len();
        e.data = n.to_string().into_bytes();
        e.cas = cas;
        let new_len = e.data.len();
        s.bytes = s.bytes + new_len - old_len;
        Ok(Some(n))
    }

    async fn touch(&self, key: &str, ttl: TtlSeconds) -> Result<bool, MemcacheError> {
        let mut s = self.lock();
        let now = Instant::now();
        match s.live(key, now) {
            Some(e) => {
                e.expires = expiry(ttl, now);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn health(&self) -> Health {
        Health::up(format!("embedded in-process cache, {} items", self.len()))
    }

    fn resources(&self) -> Vec<ResourceDecl> {
        // In-process: nothing scarce to schedule around.
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn evicts_least_recently_used_when_full() {
        let c = EmbeddedCache::new(EmbeddedLimits {
            max_items: 2,
            max_bytes: 1 << 20,
        });
        block(async {
            c.store("a", 0, b"1", 0, StoreMode::Set).await.unwrap();
            c.store("b", 0, b"2", 0, StoreMode::Set).await.unwrap();
            c.get("a").await.unwrap();
            c.store("c", 0, b"3", 0, StoreMode::Set).await.unwrap();
            assert!(c.get("a").await.unwrap().is_some());
            assert!(
                c.get("b").await.unwrap().is_none(),
                "b was least recently used"
            );
            assert_eq!(c.len(), 2);
        });
    }

    #[test]
    fn byte_accounting_follows_writes() {
        let c = EmbeddedCache::new(EmbeddedLimits {
            max_items: 100,
            max_bytes: 10,
        });
        block(async {
            c.store("k", 0, b"9", 0, StoreMode::Set).await.unwrap();
            c.arith("k", Delta::Incr(1)).await.unwrap();
            assert_eq!(c.lock().bytes, 3);
            c.store("j", 0, b"12345678", 0, StoreMode::Set)
                .await
                .unwrap();
            assert!(
                c.get("k").await.unwrap().is_none(),
                "k evicted to make room"
            );
            assert_eq!(c.lock().bytes, 9);
        });
    }
}
