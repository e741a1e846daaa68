//! The awaitable building blocks of a workflow: [`Effect`], [`sleep`],
//! [`signal`], the journaled `sys` effects, and [`all`]/[`race`].
//!
//! On a node none of these run as Rust: the workflow runs as IR and the
//! interpreter yields each effect to the runtime. As Rust they run natively,
//! answering every effect from the thread's [`crate::native::Responder`], so
//! a workflow can be tested (and compared with its IR) without a cluster.

use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use drover_ir::{Policy, RetryPolicy, Value};
use serde::de::DeserializeOwned;

use crate::error::Error;
use crate::native;

/// One built-in effect, to be awaited: the effect's catalog name, its
/// arguments in catalog order, and the retry/timeout policy chained on it.
/// Awaiting it gives `Result<T, Error>`.
#[must_use = "an effect does nothing until it is awaited"]
pub struct Effect<T> {
    name: &'static str,
    args: Result<Vec<Value>, Error>,
    policy: Policy,
    out: PhantomData<fn() -> T>,
}

impl<T> Effect<T> {
    /// The effect `name` with arguments already converted (or the error of
    /// converting them, reported when it is awaited).
    #[doc(hidden)]
    pub fn new(name: &'static str, args: Result<Vec<Value>, Error>) -> Effect<T> {
        Effect {
            name,
            args,
            policy: Policy::default(),
            out: PhantomData,
        }
    }

    /// Retries failed attempts: `attempts` in all, the first included,
    /// waiting `initial` before the second and doubling up to `max`.
    pub fn retry(mut self, attempts: u32, initial: Duration, max: Duration) -> Self {
        self.policy.retry = Some(RetryPolicy {
            max_attempts: attempts,
            initial_backoff_ms: millis(initial),
            max_backoff_ms: millis(max),
            multiplier: 2,
        });
        self
    }

    /// Fails each attempt that takes longer than `limit` with kind `timeout`.
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.policy.timeout_ms = Some(millis(limit));
        self
    }

    /// The effect's catalog name, such as `memcache.get`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The arguments, in catalog order.
    pub fn args(&self) -> Result<&[Value], &Error> {
        self.args.as_deref()
    }

    /// The retry and timeout policy chained on it.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl<T: DeserializeOwned> IntoFuture for Effect<T> {
    type Output = Result<T, Error>;
    type IntoFuture = EffectFuture<T>;

    fn into_future(self) -> EffectFuture<T> {
        EffectFuture { effect: Some(self) }
    }
}

/// An [`Effect`] being awaited.
#[must_use = "futures do nothing unless awaited"]
pub struct EffectFuture<T> {
    effect: Option<Effect<T>>,
}

impl<T: DeserializeOwned> Future for EffectFuture<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Responders answer synchronously, so the first poll completes.
        let Some(effect) = self.get_mut().effect.take() else {
            return Poll::Ready(Err(Error::failed("effect polled after it completed")));
        };
        Poll::Ready(perform(effect))
    }
}

/// Performs an effect natively. Attempts are repeated as the retry policy
/// allows, as the interpreter does; backoffs and timeouts take no time here,
/// since the responder answers at once.
fn perform<T: DeserializeOwned>(effect: Effect<T>) -> Result<T, Error> {
    let args = effect.args?;
    let attempts = effect.policy.max_attempts();
    let mut attempt = 1;
    loop {
        match native::respond(effect.name, args.clone()) {
            Ok(v) => return drover_ir::from_value(v).map_err(Error::decode),
            // With no responder, no attempt can go differently.
            Err(e) if e.kind == Error::NO_RESPONDER => return Err(e),
            Err(_) if attempt < attempts => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

/// `.retry(..)` and `.timeout(..)` for activity calls. An activity is a plain
/// `async fn`, so natively its future runs once and the policy is only
/// recorded in the IR, where the node applies it.
pub trait PolicyExt: Future + Sized {
    /// Natively a no-op; in IR, the retry policy of the activity call.
    fn retry(self, _attempts: u32, _initial: Duration, _max: Duration) -> Self {
        self
    }

    /// Natively a no-op; in IR, the per-attempt timeout of the activity call.
    fn timeout(self, _limit: Duration) -> Self {
        self
    }
}

impl<F: Future> PolicyExt for F {}

/// One of the journaled `sys` effects (`now`, `random`, `uuid`): awaiting it
/// gives the value itself, as the IR unwraps it.
#[must_use = "an effect does nothing until it is awaited"]
pub struct Sys<T> {
    name: &'static str,
    out: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Future for Sys<T> {
    type Output = T;

    /// # Panics
    /// Natively, when the responder fails or answers with a value of the
    /// wrong type: in IR the same `unwrap` fails the run.
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<T> {
        let name = self.name;
        match native::respond(name, Vec::new())
            .and_then(|v| drover_ir::from_value(v).map_err(Error::decode))
        {
            Ok(v) => Poll::Ready(v),
            Err(e) => panic!("`{name}` has no usable answer from the native responder: {e}"),
        }
    }
}

/// Wall-clock time in milliseconds since the Unix epoch, journaled.
pub fn now() -> Sys<i64> {
    Sys {
        name: "sys.now",
        out: PhantomData,
    }
}

/// A random 64-bit number, journaled.
pub fn random() -> Sys<u64> {
    Sys {
        name: "sys.random",
        out: PhantomData,
    }
}

/// A random UUID, journaled.
pub fn uuid() -> Sys<String> {
    Sys {
        name: "sys.uuid",
        out: PhantomData,
    }
}

/// Waits for `duration` of workflow time (a durable timer on a node).
pub fn sleep(duration: Duration) -> Sleep {
    Sleep { duration }
}

/// A durable timer being awaited; natively it completes at once.
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    duration: Duration,
}

impl Sleep {
    /// How long it waits.
    pub fn duration(&self) -> Duration {
        self.duration
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Ready(())
    }
}

/// Waits for the signal `name` sent to this run and gives its value.
pub fn signal<T: DeserializeOwned>(name: &str) -> Signal<T> {
    Signal {
        name: name.to_owned(),
        out: PhantomData,
    }
}

/// A signal being awaited; natively the responder answers effect
/// `signal.NAME`.
#[must_use = "futures do nothing unless awaited"]
pub struct Signal<T> {
    name: String,
    out: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Future for Signal<T> {
    type Output = T;

    /// # Panics
    /// Natively, when the responder has no value of type `T` for the
    /// signal: a run would wait for it forever.
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<T> {
        let effect = format!("signal.{}", self.name);
        match native::respond(&effect, Vec::new())
            .and_then(|v| drover_ir::from_value(v).map_err(Error::decode))
        {
            Ok(v) => Poll::Ready(v),
            Err(e) => panic!("`{effect}` has no usable answer from the native responder: {e}"),
        }
    }
}

/// Awaits every future (or effect) and gives their outputs in order; in IR,
/// one fiber per element.
pub fn all<I>(futures: I) -> impl Future<Output = Vec<<I::Item as IntoFuture>::Output>>
where
    I: IntoIterator,
    I::Item: IntoFuture,
{
    futures::future::join_all(futures.into_iter().map(IntoFuture::into_future))
}

/// Awaits the first of several futures (or effects) to finish and gives its
/// index and output; the others are dropped (in IR, cancelled).
pub fn race<I>(futures: I) -> Race<<I::Item as IntoFuture>::IntoFuture>
where
    I: IntoIterator,
    I::Item: IntoFuture,
{
    Race {
        futures: futures
            .into_iter()
            .map(|f| Box::pin(f.into_future()))
            .collect(),
    }
}

/// A [`race`] being awaited.
#[must_use = "futures do nothing unless awaited"]
pub struct Race<F> {
    futures: Vec<Pin<Box<F>>>,
}

impl<F: Future> Future for Race<F> {
    type Output = (usize, F::Output);

    /// # Panics
    /// When racing nothing, which could never finish (in IR it fails the run).
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        assert!(
            !this.futures.is_empty(),
            "`race` of no futures never finishes"
        );
        // Polling in order makes the earliest ready branch win, as the
        // interpreter's FIFO scheduling does.
        for (i, f) in this.futures.iter_mut().enumerate() {
            if let Poll::Ready(v) = f.as_mut().poll(cx) {
                return Poll::Ready((i, v));
            }
        }
        Poll::Pending
    }
}
