//! The handler trait every integration implements, and the values it trades
//! in: the call, the failure, health and resource declarations.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use drover_ir::Value;

/// One attempt at one effect, as the node's executor hands it over.
#[derive(Clone, Debug)]
pub struct EffectCall<'a> {
    /// The operation within the namespace: `get` for `memcache.get`.
    pub op: &'a str,
    /// The arguments, in the catalog's parameter order.
    pub args: Vec<Value>,
    /// `<run>/<seq>`: the idempotency key, the same for every retry.
    pub effect_id: &'a str,
    /// 1 for the first attempt, 2 for the first retry, ...
    pub attempt: u32,
    /// When the attempt times out, if it has a timeout policy.
    pub deadline: Option<Instant>,
    /// The caller will call [`Integration::settled`] for this attempt once
    /// its result is durable (or will never be): an operation that
    /// [`Integration::settles`] holds what it took until then.
    pub settle: bool,
}

impl<'a> EffectCall<'a> {
    /// A first attempt without a deadline.
    pub fn new(op: &'a str, args: Vec<Value>, effect_id: &'a str) -> Self {
        EffectCall {
            op,
            args,
            effect_id,
            attempt: 1,
            deadline: None,
            settle: false,
        }
    }
}

/// A failed attempt; the workflow sees it as `Err({kind, message})`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EffectFailure {
    /// A stable machine-readable name: `unavailable`, `bad_argument`, ...
    pub kind: String,
    /// What happened, for people.
    pub message: String,
    /// Whether another attempt may succeed (the retry policy decides).
    pub retryable: bool,
}

impl EffectFailure {
    /// A failure another attempt may get past (outage, timeout).
    pub fn retryable(kind: impl Into<String>, message: impl Into<String>) -> Self {
        EffectFailure {
            kind: kind.into(),
            message: message.into(),
            retryable: true,
        }
    }

    /// A failure every attempt will repeat (bad argument, wrong type).
    pub fn permanent(kind: impl Into<String>, message: impl Into<String>) -> Self {
        EffectFailure {
            kind: kind.into(),
            message: message.into(),
            retryable: false,
        }
    }

    /// The `{kind, message}` record the workflow receives inside `Err`.
    pub fn to_value(&self) -> Value {
        Value::record([
            ("kind", Value::Str(self.kind.clone())),
            ("message", Value::Str(self.message.clone())),
        ])
    }
}

impl fmt::Display for EffectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for EffectFailure {}

/// Whether an integration can serve effects now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthStatus {
    /// Serving.
    Up,
    /// Serving, but something is wrong (a server of several is down, datagrams are lost).
    Degraded,
    /// Not serving: effects fail with retryable failures.
    Down,
}

/// The result of a health check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    /// Up, degraded or down.
    pub status: HealthStatus,
    /// One line on what was checked, such as the server versions.
    pub detail: String,
}

impl Health {
    /// Up, with a detail line.
    pub fn up(detail: impl Into<String>) -> Self {
        Health {
            status: HealthStatus::Up,
            detail: detail.into(),
        }
    }

    /// Degraded, with a detail line.
    pub fn degraded(detail: impl Into<String>) -> Self {
        Health {
            status: HealthStatus::Degraded,
            detail: detail.into(),
        }
    }

    /// Down, with a detail line.
    pub fn down(detail: impl Into<String>) -> Self {
        Health {
            status: HealthStatus::Down,
            detail: detail.into(),
        }
    }
}

/// A limited resource an integration uses, for the node's scheduler.
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceDecl {
    /// A name unique across the node: `memcache.connections`.
    pub name: String,
    /// How much of it there is.
    pub limit: ResourceLimit,
}

/// The kind and size of a resource limit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ResourceLimit {
    /// At most this many effects in flight at once (connections).
    Concurrency(u32),
    /// At most this many effects per second (API rate limits).
    Rate {
        /// The sustained rate.
        per_second: f64,
        /// How many may go at once after a quiet spell.
        burst: u32,
    },
}

/// The handler for one effect namespace.
///
/// `perform` must be idempotent under retries where the external system
/// allows it: `call.effect_id` is the idempotency key (invariant 3).
pub trait Integration: Send + Sync + 'static {
    /// The namespace: `memcache`.
    fn name(&self) -> &'static str;

    /// The operations, exactly the catalog's entries for the namespace.
    fn operations(&self) -> &'static [&'static str];

    /// Performs one attempt of one effect.
    fn perform(
        &self,
        call: EffectCall<'_>,
    ) -> impl Future<Output = Result<Value, EffectFailure>> + Send;

    /// Checks that the integration can serve effects now.
    fn health(&self) -> impl Future<Output = Health> + Send;

    /// Rebuilds the connection pool: every pooled connection is dropped
    /// (connections lent out are dropped when they come back), and the
    /// next effect connects afresh. The node's pool worker calls it each
    /// time its supervisor starts it, so a restart after failed health
    /// checks rebuilds the pool. It does not connect, so it cannot fail
    /// while a server is down. Integrations with nothing pooled keep the
    /// default, which does nothing.
    fn reset(&self) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }

    /// Whether attempts of `op` take something that must go back if the run
    /// never records the result, and so wait for [`Integration::settled`]
    /// (`rabbitmq.next`: the message stays unacknowledged until the result
    /// is in the run's journal). Default: none.
    fn settles(&self, op: &str) -> bool {
        let _ = op;
        false
    }

    /// The result of `attempt` of `effect_id` (an `op` call made with
    /// [`EffectCall::settle`]) is durable in the run's journal (`true`), or
    /// never will be (`false`: give back what it took). Must not block.
    fn settled(&self, op: &str, effect_id: &str, attempt: u32, durable: bool) {
        let _ = (op, effect_id, attempt, durable);
    }

    /// The limited resources effects of this namespace take.
    fn resources(&self) -> Vec<ResourceDecl>;

    /// One line for `drover trace`: request and response, secrets redacted,
    /// long values truncated.
    fn summarize(&self, call: &EffectCall<'_>, result: &Result<Value, EffectFailure>) -> String;
}

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The object-safe form of [`Integration`], implemented for every
/// integration, so a registry can hold them by namespace. Its methods have
/// their own names so that calls on a concrete integration stay unambiguous.
pub trait DynIntegration: Send + Sync + 'static {
    /// [`Integration::name`].
    fn namespace(&self) -> &'static str;
    /// [`Integration::operations`].
    fn operation_names(&self) -> &'static [&'static str];
    /// [`Integration::perform`], boxed.
    fn perform_dyn<'a>(
        &'a self,
        call: EffectCall<'a>,
    ) -> BoxFuture<'a, Result<Value, EffectFailure>>;
    /// [`Integration::health`], boxed.
    fn health_dyn(&self) -> BoxFuture<'_, Health>;
    /// [`Integration::reset`], boxed.
    fn reset_dyn(&self) -> BoxFuture<'_, ()>;
    /// [`Integration::settles`].
    fn settles_op(&self, op: &str) -> bool;
    /// [`Integration::settled`].
    fn settled_dyn(&self, op: &str, effect_id: &str, attempt: u32, durable: bool);
    /// [`Integration::resources`].
    fn resource_decls(&self) -> Vec<ResourceDecl>;
    /// [`Integration::summarize`].
    fn summary(&self, call: &EffectCall<'_>, result: &Result<Value, EffectFailure>) -> String;
}

impl<T: Integration> DynIntegration for T {
    fn namespace(&self) -> &'static str {
        self.name()
    }

    fn operation_names(&self) -> &'static [&'static str] {
        self.operations()
    }

    fn perform_dyn<'a>(
        &'a self,
        call: EffectCall<'a>,
    ) -> BoxFuture<'a, Result<Value, EffectFailure>> {
        Box::pin(self.perform(call))
    }

    fn health_dyn(&self) -> BoxFuture<'_, Health> {
        Box::pin(self.health())
    }

    fn reset_dyn(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.reset())
    }

    fn settles_op(&self, op: &str) -> bool {
        self.settles(op)
    }

    fn settled_dyn(&self, op: &str, effect_id: &str, attempt: u32, durable: bool) {
        self.settled(op, effect_id, attempt, durable)
    }

    fn resource_decls(&self) -> Vec<ResourceDecl> {
        self.resources()
    }

    fn summary(&self, call: &EffectCall<'_>, result: &Result<Value, EffectFailure>) -> String {
        self.summarize(call, result)
    }
}
