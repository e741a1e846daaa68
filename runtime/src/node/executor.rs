//! The executor: performs one attempt of an effect. Registered activities
//! run as tokio tasks holding a permit per declared resource; built-in
//! effects go to the node's [`EffectHandler`]. Every attempt is timed into
//! the effect's [`EffectProfile`](super::EffectProfile).

use std::collections::{BTreeMap, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use drover_interpreter::EffectError;
use drover_ir::Value;
use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::sync::Semaphore;

use super::profile::Profiles;
use crate::registry;

/// One attempt of a built-in effect, as an [`EffectHandler`] receives it.
#[derive(Clone, Debug, PartialEq)]
pub struct EffectCall {
    /// The catalog name, such as `memcache.get`.
    pub effect: String,
    /// Arguments in catalog order.
    pub args: Vec<Value>,
    /// `"<run>/<seq>"`: the same for every attempt, so it is the idempotency
    /// key sent to systems that take one (invariant 3).
    pub key: String,
    /// The attempt number, from 1.
    pub attempt: u32,
}

/// Performs built-in effects (`memcache.*`, `statsd.*`, `sys.*`, ...). The
/// integrations crate implements it against real servers.
pub trait EffectHandler: Send + Sync + 'static {
    /// Performs one attempt. An `Err` with `retryable` set lets the run's
    /// retry policy try again.
    fn perform(&self, call: EffectCall) -> BoxFuture<'static, Result<Value, EffectError>>;

    /// A one-line summary of a call and its result (`None` while it has
    /// none) for `drover trace`, with secrets redacted; `None` to let the
    /// trace show the arguments and result as they are.
    fn summarize(
        &self,
        effect: &str,
        args: &[Value],
        key: &str,
        result: Option<Result<&Value, &EffectError>>,
    ) -> Option<String> {
        let _ = (effect, args, key, result);
        None
    }

    /// Whether attempts of `effect` hold something (a queue message) until
    /// the node calls [`EffectHandler::settled`]. Default: none.
    fn settles(&self, effect: &str) -> bool {
        let _ = effect;
        false
    }

    /// For an effect that [`settles`](EffectHandler::settles): attempt
    /// `attempt` of `key` is durable in the run's journal (`true`), or never
    /// will be (`false`: the run refused it, a later attempt replaced it,
    /// or its append failed). Called on the node's loop: must not block.
    fn settled(&self, effect: &str, key: &str, attempt: u32, durable: bool) {
        let _ = (effect, key, attempt, durable);
    }
}

/// A message an [`EmbeddedEffects`] sink received instead of a real server.
#[derive(Clone, Debug, PartialEq)]
pub struct SinkItem {
    /// The effect, such as `slack.post`.
    pub effect: String,
    /// Its arguments.
    pub args: Vec<Value>,
    /// Its idempotency key.
    pub key: String,
}

#[derive(Default)]
struct Embedded {
    cache: HashMap<String, (Value, u64)>,
    next_cas: u64,
    sink: Vec<SinkItem>,
}

/// The most sink items kept; older ones are dropped (invariant 8).
const SINK_LIMIT: usize = 10_000;

/// Effects that only send: recorded in the sink and acknowledged.
const SINK_PREFIXES: &[&str] = &[
    "statsd.",
    "slack.",
    "pagerduty.",
    "logstash.",
    "rabbitmq.publish",
    "consul.kv_put",
    "consul.register",
];

/// In-process fallbacks for every built-in effect, so a node runs with no
/// servers: `sys.*` from the OS, memcache in a map, and statsd, Slack,
/// PagerDuty, Logstash, RabbitMQ and HTTP into a recorded sink.
#[derive(Default)]
pub struct EmbeddedEffects {
    inner: Arc<Mutex<Embedded>>,
    counter: AtomicU64,
}

impl EmbeddedEffects {
    /// Empty cache and sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// What the sink received, oldest first.
    pub fn sink(&self) -> Vec<SinkItem> {
        self.lock().sink.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Embedded> {
        // A panic while holding the lock leaves plain data behind; keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn random(&self) -> u64 {
        use std::hash::{BuildHasher, Hasher};
        // RandomState is seeded from the OS once per process and varies per
        // instance; mixing in a counter gives a fresh value per call without
        // a dependency on `rand`.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(self.counter.fetch_add(1, Ordering::Relaxed));
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.finish()
    }

    fn answer(&self, call: EffectCall) -> Result<Value, EffectError> {
        let arg = |i: usize| call.args.get(i).cloned().unwrap_or(Value::Null);
        let key = |i: usize| match call.args.get(i) {
            Some(Value::Str(s)) => Ok(s.clone()),
            other => Err(bad_args(
                &call.effect,
                &format!("argument {i} is not a string: {other:?}"),
            )),
        };
        let int = |i: usize| match call.args.get(i) {
            Some(Value::Int(n)) => Ok(*n),
            _ => Err(bad_args(
                &call.effect,
                &format!("argument {i} is not an int"),
            )),
        };
        match call.effect.as_str() {
            "sys.now" => Ok(Value::Int(now_ms() as i64)),
            "sys.random" => Ok(Value::Int(self.random() as i64)),
            "sys.uuid" => {
                let (a, b) = (self.random(), self.random());
                // Version 4, variant 1 bits set as RFC 4122 asks.
                let a = (a & 0xffff_ffff_ffff_0fff) | 0x4000;
                let b = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
                Ok(Value::Str(format!(
                    "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                    a >> 32,
                    (a >> 16) & 0xffff,
                    a & 0xffff,
                    b >> 48,
                    b & 0xffff_ffff_ffff
                )))
            }
            "memcache.get" => Ok(self
                .lock()
                .cache
                .get(&key(0)?)
                .map_or(Value::Null, |(v, _)| v.clone())),
            "memcache.gets" => Ok(self
                .lock()
                .cache
                .get(&key(0)?)
                .map_or(Value::Null, |(v, cas)| {
                    Value::record([("value", v.clone()), ("cas", Value::Int(*cas as i64))])
                })),
            "memcache.get_multi" => {
                let Value::List(keys) = arg(0) else {
                    return Err(bad_args(&call.effect, "keys is not a list"));
                };
                let g = self.lock();
                let mut found = BTreeMap::new();
                for k in keys {
                    if let Value::Str(k) = k {
                        if let Some((v, _)) = g.cache.get(&k) {
                            found.insert(Value::Str(k), v.clone());
                        }
                    }
                }
                Ok(Value::Map(found.into_iter().collect()))
            }
            "memcache.set" | "memcache.add" => {
                let k = key(0)?;
                let mut g = self.lock();
                if call.effect == "memcache.add" && g.cache.contains_key(&k) {
                    return Ok(Value::Bool(false));
                }
                g.next_cas += 1;
                let cas = g.next_cas;
                g.cache.insert(k, (arg(1), cas));
                Ok(if call.effect == "memcache.add" {
                    Value::Bool(true)
                } else {
                    Value::Null
                })
            }
            "memcache.delete" => Ok(Value::Bool(self.lock().cache.remove(&key(0)?).is_some())),
            "memcache.touch" => Ok(Value::Bool(self.lock().cache.contains_key(&key(0)?))),
            "memcache.incr" | "memcache.decr" => {
                let k = key(0)?;
                let delta = int(1)?;
                let mut g = self.lock();
                g.next_cas += 1;
                let next = g.next_cas;
                match g.cache.get_mut(&k) {
                    // Every change gets a new CAS token, as in memcached.
                    Some((Value::Int(n), cas)) => {
                        *n = if call.effect == "memcache.incr" {
                            n.saturating_add(delta)
                        } else {
                            n.saturating_sub(delta).max(0)
                        };
                        *cas = next;
                        Ok(Value::Int(*n))
                    }
                    _ => Ok(Value::Null),
                }
            }
            "memcache.cas" => {
                let k = key(0)?;
                let cas = int(2)?;
                let mut g = self.lock();
                g.next_cas += 1;
                let next = g.next_cas;
                match g.cache.get_mut(&k) {
                    Some(slot) if slot.1 as i64 == cas => {
                        *slot = (arg(1), next);
                        Ok(Value::Bool(true))
                    }
                    _ => Ok(Value::Bool(false)),
                }
            }
            // No server to ask, and no answer would be plausible.
            "http.request" | "rabbitmq.next" | "consul.kv_get" | "consul.kv_cas"
            | "consul.discover" => Err(EffectError {
                kind: "unavailable".into(),
                message: format!(
                    "`{}` needs a server; this node runs embedded fallbacks only",
                    call.effect
                ),
                retryable: false,
            }),
            e if SINK_PREFIXES.iter().any(|p| e.starts_with(p)) => {
                // Shaped like the real service's answer, so typed callers decode it.
                let answer = match e {
                    "slack.post" => Value::record([
                        ("channel", arg(0)),
                        ("ts", Value::Str(format!("{}.000100", now_ms() / 1000))),
                    ]),
                    "pagerduty.trigger" | "pagerduty.acknowledge" | "pagerduty.resolve" => {
                        let dedup_key = match e {
                            "pagerduty.trigger" => Value::Str(call.key.clone()),
                            _ => arg(0),
                        };
                        Value::record([
                            ("dedup_key", dedup_key),
                            ("status", Value::Str("success".into())),
                        ])
                    }
                    _ => Value::Null,
                };
                let mut g = self.lock();
                if g.sink.len() >= SINK_LIMIT {
                    g.sink.remove(0);
                }
                g.sink.push(SinkItem {
                    effect: call.effect.clone(),
                    args: call.args.clone(),
                    key: call.key.clone(),
                });
                Ok(answer)
            }
            other => Err(EffectError {
                kind: "unknown_effect".into(),
                message: format!("no activity or embedded fallback performs `{other}`"),
                retryable: false,
            }),
        }
    }
}

impl EffectHandler for EmbeddedEffects {
    fn perform(&self, call: EffectCall) -> BoxFuture<'static, Result<Value, EffectError>> {
        let r = self.answer(call);
        Box::pin(async move { r })
    }
}

fn bad_args(effect: &str, why: &str) -> EffectError {
    EffectError {
        kind: "bad_arguments".into(),
        message: format!("{effect}: {why}"),
        retryable: false,
    }
}

/// Milliseconds since the Unix epoch; 0 if the clock is before it.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Performs attempts; cheap to clone into tasks.
#[derive(Clone)]
pub struct Executor {
    handler: Arc<dyn EffectHandler>,
    /// Resource name → (permits, capacity).
    resources: Arc<HashMap<String, (Arc<Semaphore>, u32)>>,
    profiles: Arc<Mutex<Profiles>>,
}

impl Executor {
    /// An executor with these resource capacities.
    pub fn new(handler: Arc<dyn EffectHandler>, resources: &BTreeMap<String, u32>) -> Self {
        let resources = resources
            .iter()
            .map(|(name, cap)| {
                (
                    name.clone(),
                    (Arc::new(Semaphore::new(*cap as usize)), *cap),
                )
            })
            .collect();
        Executor {
            handler,
            resources: Arc::new(resources),
            profiles: Arc::default(),
        }
    }

    /// The handler performing built-in effects.
    pub fn handler(&self) -> &Arc<dyn EffectHandler> {
        &self.handler
    }

    /// The profiles measured so far.
    pub fn profiles(&self) -> Profiles {
        self.profiles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// One attempt of `effect`: an activity if one is registered under that
    /// name, else the handler. `call_site_policy` is whether the workflow
    /// chained `.retry`/`.timeout`; if it did not, the activity's own
    /// `#[activity(retry(..), timeout = ..)]` applies, inside this attempt.
    pub fn perform(
        &self,
        effect: String,
        args: Vec<Value>,
        key: String,
        attempt: u32,
        call_site_policy: bool,
    ) -> BoxFuture<'static, Result<Value, EffectError>> {
        let this = self.clone();
        Box::pin(async move {
            let started = Instant::now();
            let (result, declared): (_, &[(&str, u32)]) = match registry::activity(&effect) {
                Some(a) => (
                    this.activity(a, args, &key, call_site_policy).await,
                    a.resources,
                ),
                None => {
                    let call = EffectCall {
                        effect: effect.clone(),
                        args,
                        key,
                        attempt,
                    };
                    (this.handler.perform(call).await, &[])
                }
            };
            this.profiles
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .record(&effect, declared, started.elapsed(), result.is_ok());
            result
        })
    }

    /// Runs an activity, with its attribute retry and timeout unless the
    /// call site set a policy. These inner retries are not journaled: after
    /// a restart the attempt starts over.
    async fn activity(
        &self,
        a: &'static registry::ActivityDef,
        args: Vec<Value>,
        key: &str,
        call_site_policy: bool,
    ) -> Result<Value, EffectError> {
        let retry = a.retry.filter(|_| !call_site_policy);
        let timeout_ms = a.timeout_ms.filter(|_| !call_site_policy);
        let tries = retry.map_or(1, |r| r.max_attempts.clamp(1, MAX_INNER_TRIES));
        let mut backoff_ms = retry.map_or(0, |r| r.initial_backoff_ms);
        let mut n = 1;
        loop {
            let result = self.activity_once(a, args.clone(), key, timeout_ms).await;
            match (result, retry) {
                (Err(e), Some(r)) if e.retryable && n < tries => {
                    tokio::time::sleep(std::time::Duration::from_millis(backoff_ms)).await;
                    backoff_ms = backoff_ms
                        .saturating_mul(u64::from(r.multiplier.max(1)))
                        .min(r.max_backoff_ms.max(r.initial_backoff_ms));
                    n += 1;
                }
                (result, _) => return result,
            }
        }
    }

    /// One call of an activity, holding its resource permits.
    async fn activity_once(
        &self,
        a: &'static registry::ActivityDef,
        args: Vec<Value>,
        key: &str,
        timeout_ms: Option<u64>,
    ) -> Result<Value, EffectError> {
        let effect = a.name;
        // Permits are taken in one fixed order (by name) so that two
        // activities needing the same two resources cannot deadlock.
        let mut wanted: Vec<(&str, u32)> = a.resources.to_vec();
        wanted.sort_unstable();
        let mut permits = Vec::with_capacity(wanted.len());
        for (name, units) in wanted {
            // A resource the node does not declare is not limited here.
            let Some((sem, cap)) = self.resources.get(name) else {
                continue;
            };
            if units > *cap {
                // Waiting would hang forever (invariant 8).
                return Err(EffectError {
                    kind: "resource_capacity".into(),
                    message: format!(
                        "{effect} needs {units} units of `{name}`; this node has {cap}"
                    ),
                    retryable: false,
                });
            }
            match sem.clone().acquire_many_owned(units).await {
                Ok(p) => permits.push(p),
                Err(_) => {
                    return Err(EffectError {
                        kind: "shutdown".into(),
                        message: "the node is closing".into(),
                        retryable: true,
                    })
                }
            }
        }
        // The activity's own effects (`http::request(..).await` inside it)
        // go to the node's handler.
        let call = WithResponder {
            fut: (a.call)(args),
            handler: self.handler.clone(),
            key: key.to_owned(),
            nested: Arc::new(AtomicU64::new(0)),
        };
        // A panicking activity fails its attempt, not the node.
        let guarded = AssertUnwindSafe(call).catch_unwind();
        let outcome = match timeout_ms {
            Some(ms) => {
                match tokio::time::timeout(std::time::Duration::from_millis(ms), guarded).await {
                    Ok(o) => o,
                    Err(_) => {
                        return Err(EffectError {
                            kind: "timeout".into(),
                            message: format!("activity `{effect}` took longer than {ms}ms"),
                            retryable: true,
                        })
                    }
                }
            }
            None => guarded.await,
        };
        drop(permits);
        match outcome {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(EffectError {
                kind: e.kind,
                message: e.message,
                retryable: true,
            }),
            Err(_) => Err(EffectError {
                kind: "panic".into(),
                message: format!("activity `{effect}` panicked"),
                retryable: true,
            }),
        }
    }
}

/// Tries one activity call may make under its attribute retry policy.
const MAX_INNER_TRIES: u32 = 100;

/// An activity's future with a responder installed around every poll, so
/// the effects it awaits natively reach the node's [`EffectHandler`]. The
/// responder is per thread and a task may move between polls, hence per poll.
struct WithResponder {
    fut: BoxFuture<'static, Result<Value, crate::Error>>,
    handler: Arc<dyn EffectHandler>,
    key: String,
    nested: Arc<AtomicU64>,
}

impl std::future::Future for WithResponder {
    type Output = Result<Value, crate::Error>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let responder = HandlerResponder {
            handler: self.handler.clone(),
            key: self.key.clone(),
            nested: self.nested.clone(),
        };
        let _installed = crate::native::Installed::new(Box::new(responder));
        self.fut.as_mut().poll(cx)
    }
}

/// Answers an activity's effects through the handler, each with the key
/// `"<run>/<seq>/<n>"`, n counting the activity's effects.
struct HandlerResponder {
    handler: Arc<dyn EffectHandler>,
    key: String,
    nested: Arc<AtomicU64>,
}

impl crate::native::Responder for HandlerResponder {
    fn respond(&mut self, effect: &str, args: Vec<Value>) -> Result<Value, crate::Error> {
        let n = self.nested.fetch_add(1, Ordering::Relaxed);
        let fut = self.handler.perform(EffectCall {
            effect: effect.to_owned(),
            args,
            key: format!("{}/{n}", self.key),
            attempt: 1,
        });
        // Native effects answer synchronously; on a multi-thread runtime the
        // worker hands its other tasks off while this one waits.
        use tokio::runtime::{Handle, RuntimeFlavor};
        let result = match Handle::try_current() {
            Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| h.block_on(fut))
            }
            _ => futures::executor::block_on(fut),
        };
        result.map_err(|e| crate::Error::new(e.kind, e.message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(effect: &str, args: Vec<Value>) -> EffectCall {
        EffectCall {
            effect: effect.into(),
            args,
            key: "r-1/0".into(),
            attempt: 1,
        }
    }

    #[test]
    fn embedded_memcache_and_sink_behave_plausibly() {
        let e = EmbeddedEffects::new();
        let s = |x: &str| Value::Str(x.into());
        assert_eq!(
            e.answer(call("memcache.get", vec![s("k")])),
            Ok(Value::Null)
        );
        e.answer(call(
            "memcache.set",
            vec![s("k"), Value::Int(5), Value::Int(0)],
        ))
        .unwrap();
        assert_eq!(
            e.answer(call("memcache.get", vec![s("k")])),
            Ok(Value::Int(5))
        );
        assert_eq!(
            e.answer(call("memcache.incr", vec![s("k"), Value::Int(2)])),
            Ok(Value::Int(7))
        );
        // gets gives the token cas checks.
        let Ok(Value::Map(got)) = e.answer(call("memcache.gets", vec![s("k")])) else {
            panic!("gets finds the key")
        };
        let token = got[&s("cas")].clone();
        let swap = |cas: Value| {
            call(
                "memcache.cas",
                vec![s("k"), Value::Int(1), cas, Value::Int(0)],
            )
        };
        assert_eq!(e.answer(swap(token.clone())), Ok(Value::Bool(true)));
        assert_eq!(e.answer(swap(token)), Ok(Value::Bool(false)));
        assert_eq!(
            e.answer(call(
                "memcache.add",
                vec![s("k"), Value::Int(1), Value::Int(0)]
            )),
            Ok(Value::Bool(false))
        );
        e.answer(call("slack.post", vec![s("#c"), s("hi"), Value::Null]))
            .unwrap();
        assert_eq!(e.sink().len(), 1);
        assert_eq!(e.sink()[0].key, "r-1/0");
        let Ok(Value::Str(u)) = e.answer(call("sys.uuid", vec![])) else {
            panic!("uuid is a string")
        };
        assert_eq!(u.len(), 36);
        assert_ne!(e.answer(call("sys.uuid", vec![])), Ok(Value::Str(u)));
        let err = e.answer(call("nope.nothing", vec![])).unwrap_err();
        assert!(!err.retryable);
        // Bad arguments are an error, not a panic.
        assert!(e.answer(call("memcache.get", vec![])).is_err());
    }
}
