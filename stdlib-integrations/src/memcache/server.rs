//! Real memcached servers through `async-memcached`'s meta-protocol commands
//! (memcached 1.6+), with a `deadpool` pool of connections per server.
//!
//! Why these: the meta commands cover every catalog operation (`mg` with
//! `c` gives CAS tokens and with `T` touches, `ms` with `ME`/`C` does add and
//! cas, `ma` does incr/decr without creating missing keys), and the client
//! closes a connection whenever an operation is cancelled or fails midway,
//! so a timeout can never leave a stale reply to be read as the answer to
//! the next request on that connection.
//!
//! Reconnection: a closed connection is discarded when it comes back to the
//! pool, and the next checkout connects afresh. A connection that looks fine
//! locally may still be dead (memcached restarted while it sat idle), so a
//! connection is checked with `version` before reuse when it has been idle
//! for [`IDLE_CHECK`] or when any connection to the same server has failed
//! since it was last checked. After a restart the first operation therefore
//! reconnects instead of failing on a dead socket.
//!
//! A key lives on the server chosen by CRC32 of the key modulo the number of
//! servers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_memcached::{AsciiProtocol, Client, Error as McError, ErrorKind, MetaProtocol, Status};
use deadpool::managed::{self, Metrics, Pool, RecycleError, RecycleResult};

use super::cache::{Cache, Delta, Item, StoreMode, StoreOutcome, TtlSeconds};
use super::codec::parse_counter;
use super::MemcacheError;
use crate::config::MemcacheConfig;
use crate::{Health, ResourceDecl, ResourceLimit, Secret};

/// An idle connection older than this is checked before reuse.
pub const IDLE_CHECK: Duration = Duration::from_secs(2);

/// memcached reads an expiry above this many seconds as a Unix time.
const RELATIVE_TTL_MAX: u32 = 30 * 24 * 3600;

/// One pooled connection.
pub struct Conn {
    client: Client,
    /// The server's failure count when this connection was last known good.
    checked_at_failure: u64,
    /// The pool's generation when it connected; a reset starts a new one.
    generation: u64,
}

/// Creates and checks connections to one server.
pub struct Manager {
    addr: String,
    credentials: Option<(String, Secret)>,
    /// Counts connection failures to this server, so idle connections from
    /// before a failure get checked before reuse.
    failures: Arc<AtomicU64>,
    /// Raised by [`ServerCache::reset`]: connections of an older generation
    /// are not reused.
    generation: Arc<AtomicU64>,
    /// Connections opened so far.
    opened: Arc<AtomicU64>,
}

impl managed::Manager for Manager {
    type Type = Conn;
    type Error = MemcacheError;

    async fn create(&self) -> Result<Conn, MemcacheError> {
        let failures = self.failures.load(Ordering::Acquire);
        let generation = self.generation.load(Ordering::Acquire);
        let mut client = Client::new(format!("tcp://{}", self.addr))
            .await
            .map_err(|e| map_error(&self.addr, e))?;
        if let Some((user, password)) = &self.credentials {
            // memcached's ASCII authentication (`-Y`): a `set` whose data is
            // "user password"; any key will do.
            let token = format!("{user} {}", password.expose());
            match client.set("auth", token.as_str(), None, None).await {
                Ok(()) => {}
                Err(McError::Protocol(Status::Error(ErrorKind::Client(_)))) => {
                    return Err(MemcacheError::Auth {
                        server: self.addr.clone(),
                    })
                }
                Err(e) => return Err(map_error(&self.addr, e)),
            }
        }
        self.opened.fetch_add(1, Ordering::Relaxed);
        Ok(Conn {
            client,
            checked_at_failure: failures,
            generation,
        })
    }

    async fn recycle(&self, conn: &mut Conn, metrics: &Metrics) -> RecycleResult<MemcacheError> {
        if conn.client.is_closed() {
            return Err(RecycleError::message(
                "closed after an incomplete operation",
            ));
        }
        if conn.generation != self.generation.load(Ordering::Acquire) {
            return Err(RecycleError::message("the pool was rebuilt"));
        }
        let failures = self.failures.load(Ordering::Acquire);
        if conn.checked_at_failure != failures || metrics.last_used() >= IDLE_CHECK {
            conn.client
                .version()
                .await
                .map_err(|e| RecycleError::Backend(map_error(&self.addr, e)))?;
            conn.checked_at_failure = failures;
        }
        Ok(())
    }
}

struct Server {
    addr: String,
    pool: Pool<Manager>,
    failures: Arc<AtomicU64>,
    generation: Arc<AtomicU64>,
    opened: Arc<AtomicU64>,
}

/// A memcached cluster: one pool per server.
pub struct ServerCache {
    servers: Vec<Server>,
    timeout: Duration,
    pool_size: u32,
}

impl ServerCache {
    /// Pools for the configured servers. Connects lazily: building succeeds
    /// while the servers are down, and effects fail (retryably) until they are up.
    pub fn new(config: &MemcacheConfig) -> Result<Self, MemcacheError> {
        let credentials = config.username.clone().zip(config.password.clone());
        let mut servers = Vec::with_capacity(config.servers.len());
        for addr in &config.servers {
            let failures = Arc::new(AtomicU64::new(0));
            let generation = Arc::new(AtomicU64::new(0));
            let opened = Arc::new(AtomicU64::new(0));
            let manager = Manager {
                addr: addr.clone(),
                credentials: credentials.clone(),
                failures: failures.clone(),
                generation: generation.clone(),
                opened: opened.clone(),
            };
            let pool = Pool::builder(manager)
                .max_size(config.pool as usize)
                .build()
                .map_err(|e| MemcacheError::Unavailable {
                    server: addr.clone(),
                    reason: format!("cannot build the connection pool: {e}"),
                })?;
            servers.push(Server {
                addr: addr.clone(),
                pool,
                failures,
                generation,
                opened,
            });
        }
        Ok(ServerCache {
            servers,
            timeout: config.timeout,
            pool_size: config.pool,
        })
    }

    /// Connections opened so far, to every server.
    pub fn connections_opened(&self) -> u64 {
        self.servers
            .iter()
            .map(|s| s.opened.load(Ordering::Relaxed))
            .sum()
    }

    /// How many times the pools were rebuilt.
    pub fn rebuilds(&self) -> u64 {
        self.servers
            .first()
            .map_or(0, |s| s.generation.load(Ordering::Relaxed))
    }

    fn server_index(&self, key: &str) -> usize {
        // Stable across processes and releases, unlike std's hasher.
        crc32fast::hash(key.as_bytes()) as usize % self.servers.len()
    }

    fn server(&self, key: &str) -> &Server {
        &self.servers[self.server_index(key)]
    }

    /// Runs `op` on a pooled connection to `server`, connecting if needed,
    /// all within the operation timeout.
    async fn with_conn<T>(
        &self,
        server: &Server,
        op: impl AsyncFnOnce(&mut Client) -> Result<T, McError>,
    ) -> Result<T, MemcacheError> {
        let work = async {
            let mut conn = server.pool.get().await.map_err(|e| match e {
                managed::PoolError::Backend(e) => e,
                other => MemcacheError::Unavailable {
                    server: server.addr.clone(),
                    reason: other.to_string(),
                },
            })?;
            op(&mut conn.client)
                .await
                .map_err(|e| map_error(&server.addr, e))
        };
        let result = match tokio::time::timeout(self.timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(MemcacheError::Timeout {
                server: server.addr.clone(),
                ms: self.timeout.as_millis() as u64,
            }),
        };
        if let Err(e) = &result {
            if e.retryable() {
                server.failures.fetch_add(1, Ordering::AcqRel);
            }
        }
        result
    }
}

/// The `T` flag for a TTL: relative seconds, or a Unix time past memcached's
/// 30-day cut-off so long TTLs stay relative for the workflow.
fn ttl_flag(ttl: TtlSeconds) -> String {
    if ttl <= RELATIVE_TTL_MAX {
        return format!("T{ttl}");
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("T{}", now + u64::from(ttl))
}

/// Sorts a client error into ours.
fn map_error(server: &str, e: McError) -> MemcacheError {
    let server = server.to_owned();
    match e {
        McError::Connect(e) => MemcacheError::Unavailable {
            server,
            reason: format!("connect: {e}"),
        },
        McError::Io(e) => MemcacheError::Unavailable {
            server,
            reason: e.to_string(),
        },
        McError::ConnectionClosed => MemcacheError::Unavailable {
            server,
            reason: "connection closed".into(),
        },
        McError::ParseError(kind) => MemcacheError::Protocol {
            server,
            reason: format!("{kind:?}"),
        },
        McError::Protocol(Status::Error(kind)) => match kind {
            ErrorKind::Server(reason) => MemcacheError::Server { server, reason },
            ErrorKind::Client(reason) => MemcacheError::Rejected { server, reason },
            ErrorKind::Protocol(reason) => MemcacheError::Protocol {
                server,
                reason: reason.unwrap_or_else(|| "unparseable reply".into()),
            },
            ErrorKind::NonexistentCommand => MemcacheError::Protocol {
                server,
                reason: "the server does not know the meta commands (memcached 1.6+ is needed)"
                    .into(),
            },
            other => MemcacheError::Rejected {
                server,
                reason: format!("{other:?}"),
            },
        },
        McError::Protocol(status) => MemcacheError::Protocol {
            server,
            reason: format!("unexpected status {status:?}"),
        },
    }
}

fn is_status(e: &McError, status: Status) -> bool {
    matches!(e, McError::Protocol(s) if *s == status)
}

impl Cache for ServerCache {
    async fn get(&self, key: &str) -> Result<Option<Item>, MemcacheError> {
        let found = self
            .with_conn(self.server(key), async |c| {
                c.meta_get(key, false, None, Some(&["v", "f", "c"])).await
            })
            .await?;
        Ok(found.map(|m| Item {
            flags: m.flags.unwrap_or(0),
            data: m.data.unwrap_or_default(),
            cas: m.cas.unwrap_or(0),
        }))
    }

    async fn get_multi(&self, keys: &[&str]) -> Result<Vec<(String, Item)>, MemcacheError> {
        let mut by_server: Vec<Vec<&str>> = vec![Vec::new(); self.servers.len()];
        for key in keys {
            by_server[self.server_index(key)].push(key);
        }
        let mut found = Vec::new();
        for (server, keys) in self.servers.iter().zip(by_server) {
            if keys.is_empty() {
                continue;
            }
            let values = self
                .with_conn(server, async |c| {
                    c.meta_get_multi(&keys, Some(&["v", "f", "c"])).await
                })
                .await?;
            for m in values {
                let Some(key) = m.key.and_then(|k| String::from_utf8(k).ok()) else {
                    return Err(MemcacheError::Protocol {
                        server: server.addr.clone(),
                        reason: "a multi-get hit without its key".into(),
                    });
                };
                found.push((
                    key,
                    Item {
                        flags: m.flags.unwrap_or(0),
                        data: m.data.unwrap_or_default(),
                        cas: m.cas.unwrap_or(0),
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
        let flags = format!("F{flags}");
        let ttl = ttl_flag(ttl);
        let extra = match mode {
            StoreMode::Set => "MS".to_owned(),
            StoreMode::Add => "ME".to_owned(),
            StoreMode::Cas(token) => format!("C{token}"),
        };
        let meta: [&str; 3] = [&flags, &ttl, &extra];
        self.with_conn(self.server(key), async |c| {
            match c.meta_set(key, data, false, None, Some(&meta)).await {
                Ok(_) => Ok(StoreOutcome::Stored),
                Err(e) if is_status(&e, Status::NotStored) => Ok(StoreOutcome::NotStored),
                Err(e) if is_status(&e, Status::Exists) => Ok(StoreOutcome::Exists),
                Err(e) if is_status(&e, Status::NotFound) => Ok(StoreOutcome::NotFound),
                Err(e) => Err(e),
            }
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<bool, MemcacheError> {
        self.with_conn(self.server(key), async |c| {
            match c.meta_delete(key, false, None, None).await {
                Ok(_) => Ok(true),
                Err(e) if is_status(&e, Status::NotFound) => Ok(false),
                Err(e) => Err(e),
            }
        })
        .await
    }

    async fn arith(&self, key: &str, delta: Delta) -> Result<Option<u64>, MemcacheError> {
        let server = self.server(key);
        let reply = self
            .with_conn(server, async |c| {
                let r = match delta {
                    Delta::Incr(d) => {
                        c.meta_increment(key, false, None, Some(d), Some(&["v"]))
                            .await
                    }
                    Delta::Decr(d) => {
                        c.meta_decrement(key, false, None, Some(d), Some(&["v"]))
                            .await
                    }
                };
                match r {
                    Ok(v) => Ok(Ok(v)),
                    Err(e) if is_status(&e, Status::NotFound) => Ok(Err(None)),
                    Err(McError::Protocol(Status::Error(ErrorKind::Client(reason))))
                        if reason.contains("non-numeric") =>
                    {
                        Ok(Err(Some(reason)))
                    }
                    Err(e) => Err(e),
                }
            })
            .await?;
        match reply {
            Ok(Some(m)) => {
                let data = m.data.unwrap_or_default();
                parse_counter(&data)
                    .map(Some)
                    .ok_or_else(|| MemcacheError::Protocol {
                        server: server.addr.clone(),
                        reason: "incr/decr answered with a non-number".into(),
                    })
            }
            Ok(None) => Err(MemcacheError::Protocol {
                server: server.addr.clone(),
                reason: "incr/decr answered without the value".into(),
            }),
            Err(None) => Ok(None),
            Err(Some(_)) => Err(MemcacheError::NotCounter {
                key: key.to_owned(),
            }),
        }
    }

    async fn touch(&self, key: &str, ttl: TtlSeconds) -> Result<bool, MemcacheError> {
        let ttl = ttl_flag(ttl);
        // `f` makes a hit answer with a flag, so it cannot be mistaken for a miss.
        let meta: [&str; 2] = [&ttl, "f"];
        let found = self
            .with_conn(self.server(key), async |c| {
                c.meta_get(key, false, None, Some(&meta)).await
            })
            .await?;
        Ok(found.is_some())
    }

    async fn reset(&self) {
        for server in &self.servers {
            server.generation.fetch_add(1, Ordering::AcqRel);
            // Idle connections go now; lent ones fail recycling on return.
            server.pool.retain(|_, _| false);
        }
    }

    async fn health(&self) -> Health {
        let mut up = Vec::new();
        let mut down = Vec::new();
        for server in &self.servers {
            match self.with_conn(server, async |c| c.version().await).await {
                Ok(v) => up.push(format!(
                    "{} {v} (pool #{}, {} connections opened)",
                    server.addr,
                    server.generation.load(Ordering::Relaxed) + 1,
                    server.opened.load(Ordering::Relaxed)
                )),
                Err(e) => down.push(e.to_string()),
            }
        }
        let detail = up
            .iter()
            .chain(down.iter())
            .cloned()
            .collect::<Vec<_>>()
            .join("; ");
        match (up.is_empty(), down.is_empty()) {
            (_, true) => Health::up(detail),
            (true, false) => Health::down(detail),
            (false, false) => Health::degraded(detail),
        }
    }

    fn resources(&self) -> Vec<ResourceDecl> {
        vec![ResourceDecl {
            name: "memcache.connections".into(),
            limit: ResourceLimit::Concurrency(
                self.pool_size.saturating_mul(self.servers.len() as u32),
            ),
        }]
    }
}
