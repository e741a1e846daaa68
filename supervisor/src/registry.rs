//! Registered names: name → the current incarnation's mailbox, like OTP's
//! locally registered processes. Callers resolve the name on every message,
//! so a handle keeps working across restarts.

use std::any::Any;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec::Codec;
use crate::error::{CallError, CastError, EncodedError};
use crate::server::{Mailbox, Server};

/// Largest encoded message `call_encoded` accepts when no limit is set.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1 << 20;

/// A type-erased registered incarnation.
pub(crate) trait Endpoint: Send + Sync + 'static {
    fn is_alive(&self) -> bool;
    fn as_any(&self) -> &dyn Any;
    fn call_encoded(
        &self,
        name: &str,
        bytes: &[u8],
        timeout: Duration,
    ) -> Result<BoxFuture<'static, Result<Vec<u8>, EncodedError>>, EncodedError>;
    fn cast_encoded(&self, name: &str, bytes: &[u8]) -> Result<(), EncodedError>;
}

/// A server reachable only with typed messages.
pub(crate) struct PlainEndpoint<S: Server> {
    pub(crate) mailbox: Mailbox<S>,
}

impl<S: Server> Endpoint for PlainEndpoint<S> {
    fn is_alive(&self) -> bool {
        self.mailbox.is_alive()
    }

    fn as_any(&self) -> &dyn Any {
        &self.mailbox
    }

    fn call_encoded(
        &self,
        name: &str,
        _: &[u8],
        _: Duration,
    ) -> Result<BoxFuture<'static, Result<Vec<u8>, EncodedError>>, EncodedError> {
        Err(EncodedError::NoCodec(name.to_string()))
    }

    fn cast_encoded(&self, name: &str, _: &[u8]) -> Result<(), EncodedError> {
        Err(EncodedError::NoCodec(name.to_string()))
    }
}

/// A server that also accepts messages encoded with `C`.
pub(crate) struct CodecEndpoint<S: Server, C> {
    pub(crate) mailbox: Mailbox<S>,
    pub(crate) codec: Arc<C>,
}

impl<S, C> Endpoint for CodecEndpoint<S, C>
where
    S: Server,
    S::Call: DeserializeOwned,
    S::Cast: DeserializeOwned,
    S::Reply: Serialize,
    C: Codec,
{
    fn is_alive(&self) -> bool {
        self.mailbox.is_alive()
    }

    fn as_any(&self) -> &dyn Any {
        &self.mailbox
    }

    fn call_encoded(
        &self,
        _: &str,
        bytes: &[u8],
        timeout: Duration,
    ) -> Result<BoxFuture<'static, Result<Vec<u8>, EncodedError>>, EncodedError> {
        let msg: S::Call = self.codec.decode(bytes).map_err(EncodedError::Decode)?;
        let mailbox = self.mailbox.clone();
        let codec = self.codec.clone();
        Ok(Box::pin(async move {
            let reply = mailbox
                .call(msg, timeout)
                .await
                .map_err(EncodedError::Call)?;
            codec.encode(&reply).map_err(EncodedError::Encode)
        }))
    }

    fn cast_encoded(&self, _: &str, bytes: &[u8]) -> Result<(), EncodedError> {
        let msg: S::Cast = self.codec.decode(bytes).map_err(EncodedError::Decode)?;
        self.mailbox.cast(msg).map_err(EncodedError::Cast)
    }
}

struct Entry {
    incarnation: u64,
    endpoint: Arc<dyn Endpoint>,
}

struct Inner {
    names: RwLock<HashMap<String, Entry>>,
    next_incarnation: AtomicU64,
    max_message_bytes: usize,
}

/// The name is held by a live incarnation.
#[derive(Debug)]
pub(crate) struct AlreadyRegistered;

/// Names of running workers, shared by a supervision tree and its callers.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("names", &self.names())
            .finish()
    }
}

impl Registry {
    /// An empty registry with the default encoded message limit.
    pub fn new() -> Self {
        Self::with_max_message_bytes(DEFAULT_MAX_MESSAGE_BYTES)
    }

    /// An empty registry that rejects encoded messages longer than `max` bytes.
    pub fn with_max_message_bytes(max: usize) -> Self {
        Registry {
            inner: Arc::new(Inner {
                names: RwLock::new(HashMap::new()),
                next_incarnation: AtomicU64::new(1),
                max_message_bytes: max,
            }),
        }
    }

    /// A handle that sends to whichever incarnation holds `name` at send time.
    pub fn server<S: Server>(&self, name: impl Into<String>) -> ServerRef<S> {
        ServerRef {
            registry: self.clone(),
            name: name.into().into(),
            _server: PhantomData,
        }
    }

    /// Names with a live incarnation, sorted.
    pub fn names(&self) -> Vec<String> {
        let names = self.read();
        let mut live: Vec<String> = names
            .iter()
            .filter(|(_, e)| e.endpoint.is_alive())
            .map(|(n, _)| n.clone())
            .collect();
        live.sort();
        live
    }

    /// The incarnation number holding `name`, if it is alive; it changes on every restart.
    pub fn incarnation(&self, name: &str) -> Option<u64> {
        self.live(name).map(|(incarnation, _)| incarnation)
    }

    /// Decodes `bytes` as a call for the server `name`, calls it, and encodes the reply.
    pub async fn call_encoded(
        &self,
        name: &str,
        bytes: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, EncodedError> {
        self.check_len(bytes)?;
        let (_, endpoint) = self
            .live(name)
            .ok_or_else(|| EncodedError::NotRunning(name.to_string()))?;
        endpoint.call_encoded(name, bytes, timeout)?.await
    }

    /// Decodes `bytes` as a cast for the server `name` and queues it.
    pub fn cast_encoded(&self, name: &str, bytes: &[u8]) -> Result<(), EncodedError> {
        self.check_len(bytes)?;
        let (_, endpoint) = self
            .live(name)
            .ok_or_else(|| EncodedError::NotRunning(name.to_string()))?;
        endpoint.cast_encoded(name, bytes)
    }

    fn check_len(&self, bytes: &[u8]) -> Result<(), EncodedError> {
        let max = self.inner.max_message_bytes;
        if bytes.len() > max {
            return Err(EncodedError::TooLarge {
                len: bytes.len(),
                max,
            });
        }
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Entry>> {
        // The lock is never held across an await or user code, so a poisoned
        // lock still holds a consistent map.
        self.inner
            .names
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Entry>> {
        self.inner
            .names
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn live(&self, name: &str) -> Option<(u64, Arc<dyn Endpoint>)> {
        let names = self.read();
        let entry = names.get(name)?;
        entry
            .endpoint
            .is_alive()
            .then(|| (entry.incarnation, entry.endpoint.clone()))
    }

    /// Claims `name` for a new incarnation; a dead holder's claim is replaced.
    pub(crate) fn register(
        &self,
        name: &str,
        endpoint: Arc<dyn Endpoint>,
    ) -> Result<u64, AlreadyRegistered> {
        let mut names = self.write();
        if let Some(existing) = names.get(name) {
            if existing.endpoint.is_alive() {
                return Err(AlreadyRegistered);
            }
        }
        let incarnation = self.inner.next_incarnation.fetch_add(1, Ordering::Relaxed);
        names.insert(
            name.to_string(),
            Entry {
                incarnation,
                endpoint,
            },
        );
        Ok(incarnation)
    }

    /// Frees `name` if `incarnation` still holds it.
    pub(crate) fn unregister(&self, name: &str, incarnation: u64) {
        let mut names = self.write();
        if names
            .get(name)
            .is_some_and(|e| e.incarnation == incarnation)
        {
            names.remove(name);
        }
    }

    fn mailbox<S: Server>(&self, name: &str) -> Result<Mailbox<S>, LookupError> {
        let (_, endpoint) = self.live(name).ok_or(LookupError::NotRunning)?;
        endpoint
            .as_any()
            .downcast_ref::<Mailbox<S>>()
            .cloned()
            .ok_or(LookupError::WrongType)
    }
}

enum LookupError {
    NotRunning,
    WrongType,
}

/// A handle to a registered server; it resolves the name on every message,
/// so it reaches the current incarnation across restarts.
pub struct ServerRef<S: Server> {
    registry: Registry,
    name: Arc<str>,
    _server: PhantomData<fn() -> S>,
}

impl<S: Server> Clone for ServerRef<S> {
    fn clone(&self) -> Self {
        ServerRef {
            registry: self.registry.clone(),
            name: self.name.clone(),
            _server: PhantomData,
        }
    }
}

impl<S: Server> std::fmt::Debug for ServerRef<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerRef")
            .field("name", &self.name)
            .finish()
    }
}

impl<S: Server> ServerRef<S> {
    /// The registered name this handle resolves.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends a request and waits up to `timeout` for the reply.
    pub async fn call(&self, msg: S::Call, timeout: Duration) -> Result<S::Reply, CallError> {
        let mailbox = self
            .registry
            .mailbox::<S>(&self.name)
            .map_err(|e| match e {
                LookupError::NotRunning => CallError::NotRunning,
                LookupError::WrongType => CallError::WrongServerType {
                    expected: std::any::type_name::<S>(),
                },
            })?;
        mailbox.call(msg, timeout).await
    }

    /// Queues a fire-and-forget request without waiting.
    pub fn cast(&self, msg: S::Cast) -> Result<(), CastError> {
        let mailbox = self
            .registry
            .mailbox::<S>(&self.name)
            .map_err(|e| match e {
                LookupError::NotRunning => CastError::NotRunning,
                LookupError::WrongType => CastError::WrongServerType {
                    expected: std::any::type_name::<S>(),
                },
            })?;
        mailbox.cast(msg)
    }
}
