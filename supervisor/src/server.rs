//! gen_server-like workers: the `Server` trait, the mailbox, and the task
//! that runs one incarnation of a server.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::child::{StartError, StartedChild};
use crate::codec::Codec;
use crate::error::{CallError, CastError};
use crate::exit::ExitReason;
use crate::registry::{CodecEndpoint, Endpoint, PlainEndpoint, Registry};

/// Mailbox capacity used when a `WorkerSpec` does not set one.
pub const DEFAULT_MAILBOX_CAPACITY: usize = 64;
/// How long `init` may take when a `WorkerSpec` does not set a limit.
pub const DEFAULT_INIT_TIMEOUT: Duration = Duration::from_secs(5);

/// A gen_server-like state machine run by a worker task.
///
/// Every handler may stop the server by returning `Err(reason)`: `Normal`
/// or `Shutdown` for an expected stop, anything else for a crash. A panic
/// in a handler is a crash with reason `Panic`. In every case `terminate`
/// runs before the task exits, as OTP's gen_server does, except when the
/// task is killed.
pub trait Server: Sized + Send + 'static {
    /// Arguments given to `init` on every (re)start, so each incarnation begins fresh.
    type Args: Send + Clone + 'static;
    /// Requests that expect a reply.
    type Call: Send + 'static;
    /// Replies to `Call`s.
    type Reply: Send + 'static;
    /// Fire-and-forget requests.
    type Cast: Send + 'static;

    /// Builds the state; an error means the start failed.
    fn init(args: Self::Args) -> impl Future<Output = Result<Self, ExitReason>> + Send;

    /// Handles a request and produces its reply.
    fn handle_call(
        &mut self,
        msg: Self::Call,
    ) -> impl Future<Output = Result<Self::Reply, ExitReason>> + Send;

    /// Handles a fire-and-forget request.
    fn handle_cast(
        &mut self,
        msg: Self::Cast,
    ) -> impl Future<Output = Result<(), ExitReason>> + Send;

    /// Work the server does between messages, as OTP's `handle_info` does
    /// for timer and monitor messages: a future that resolves after one
    /// unit of it (a tick sent, a health check made). It is dropped whenever
    /// a message or a stop request arrives and asked for again afterwards,
    /// so it must be cancel-safe; keep timers in the state (a
    /// `tokio::time::Interval`), not in the future. `Err(reason)` stops the
    /// server as a handler's error does. The default waits forever.
    fn handle_info(&mut self) -> impl Future<Output = Result<(), ExitReason>> + Send {
        std::future::pending()
    }

    /// Cleans up before the task exits with `reason`.
    fn terminate(&mut self, reason: &ExitReason) -> impl Future<Output = ()> + Send {
        let _ = reason;
        async {}
    }
}

/// One message in a server's mailbox.
pub(crate) enum Envelope<S: Server> {
    Call {
        msg: S::Call,
        /// Carries the reply, or the reason the server stopped while handling this call.
        reply: oneshot::Sender<Result<S::Reply, ExitReason>>,
    },
    Cast(S::Cast),
}

/// The sending side of one incarnation's mailbox, plus its exit reason once known.
pub(crate) struct Mailbox<S: Server> {
    tx: mpsc::Sender<Envelope<S>>,
    exit: watch::Receiver<Option<ExitReason>>,
}

impl<S: Server> Clone for Mailbox<S> {
    fn clone(&self) -> Self {
        Mailbox {
            tx: self.tx.clone(),
            exit: self.exit.clone(),
        }
    }
}

impl<S: Server> Mailbox<S> {
    /// Whether the incarnation behind this mailbox still reads it.
    pub(crate) fn is_alive(&self) -> bool {
        !self.tx.is_closed()
    }

    /// Sends a call and waits for its reply; `timeout` covers both waiting
    /// for mailbox space and waiting for the reply.
    pub(crate) async fn call(
        &self,
        msg: S::Call,
        timeout: Duration,
    ) -> Result<S::Reply, CallError> {
        let deadline = Instant::now() + timeout;
        let (reply, reply_rx) = oneshot::channel();
        match tokio::time::timeout_at(deadline, self.tx.send(Envelope::Call { msg, reply })).await {
            Err(_) => return Err(CallError::Timeout),
            Ok(Err(_)) => return Err(self.exited().await),
            Ok(Ok(())) => {}
        }
        match tokio::time::timeout_at(deadline, reply_rx).await {
            Err(_) => Err(CallError::Timeout),
            Ok(Ok(Ok(value))) => Ok(value),
            Ok(Ok(Err(reason))) => Err(CallError::ServerExited(reason)),
            // The reply sender was dropped unanswered: the incarnation died
            // with this call still queued, like a monitor firing in OTP.
            Ok(Err(_)) => Err(self.exited().await),
        }
    }

    /// Queues a cast without waiting: a full mailbox is an error, not a wait.
    pub(crate) fn cast(&self, msg: S::Cast) -> Result<(), CastError> {
        self.tx.try_send(Envelope::Cast(msg)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => CastError::MailboxFull,
            mpsc::error::TrySendError::Closed(_) => CastError::NotRunning,
        })
    }

    /// The exit reason of a dead incarnation.
    async fn exited(&self) -> CallError {
        let mut exit = self.exit.clone();
        // The task's exit guard publishes a reason before its sender is
        // dropped, so this only waits for the task's teardown to finish.
        let reason = match exit.wait_for(Option::is_some).await {
            Ok(r) => r.clone().unwrap_or(ExitReason::Killed),
            Err(_) => ExitReason::Killed,
        };
        CallError::ServerExited(reason)
    }
}

type EndpointFactory<S> = Arc<dyn Fn(Mailbox<S>) -> Arc<dyn Endpoint> + Send + Sync>;

/// How to start a worker: its registered name, its `init` arguments and its limits.
pub struct WorkerSpec<S: Server> {
    name: String,
    // Behind a mutex so the spec is `Sync` (child factories are shared)
    // without requiring `Args: Sync`; each start clones the arguments.
    args: Arc<Mutex<S::Args>>,
    mailbox_capacity: usize,
    init_timeout: Duration,
    endpoint: EndpointFactory<S>,
}

impl<S: Server> Clone for WorkerSpec<S> {
    fn clone(&self) -> Self {
        WorkerSpec {
            name: self.name.clone(),
            args: self.args.clone(),
            mailbox_capacity: self.mailbox_capacity,
            init_timeout: self.init_timeout,
            endpoint: self.endpoint.clone(),
        }
    }
}

impl<S: Server> WorkerSpec<S> {
    /// A worker registered under `name`, started with `args`.
    pub fn new(name: impl Into<String>, args: S::Args) -> Self {
        WorkerSpec {
            name: name.into(),
            args: Arc::new(Mutex::new(args)),
            mailbox_capacity: DEFAULT_MAILBOX_CAPACITY,
            init_timeout: DEFAULT_INIT_TIMEOUT,
            endpoint: Arc::new(|mailbox| Arc::new(PlainEndpoint { mailbox })),
        }
    }

    /// Sets how many messages may wait in the mailbox (at least 1).
    pub fn mailbox_capacity(mut self, capacity: usize) -> Self {
        self.mailbox_capacity = capacity.max(1);
        self
    }

    /// Sets how long `init` may take before the start counts as failed.
    pub fn init_timeout(mut self, timeout: Duration) -> Self {
        self.init_timeout = timeout;
        self
    }

    /// Makes the worker reachable with encoded bytes through `Registry::call_encoded`.
    pub fn codec<C: Codec>(mut self, codec: C) -> Self
    where
        S::Call: DeserializeOwned,
        S::Cast: DeserializeOwned,
        S::Reply: Serialize,
    {
        let codec = Arc::new(codec);
        self.endpoint = Arc::new(move |mailbox| {
            Arc::new(CodecEndpoint {
                mailbox,
                codec: codec.clone(),
            })
        });
        self
    }

    /// The name the worker registers under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Starts one incarnation: registers the name, runs `init` in a new task
    /// and returns once `init` has succeeded, like OTP's `start_link`.
    pub(crate) async fn start(&self, registry: &Registry) -> Result<StartedChild, StartError> {
        let (tx, rx) = mpsc::channel(self.mailbox_capacity);
        let (exit_tx, exit_rx) = watch::channel(None);
        let mailbox = Mailbox { tx, exit: exit_rx };
        let incarnation = registry
            .register(&self.name, (self.endpoint)(mailbox))
            .map_err(|_| StartError::AlreadyRegistered(self.name.clone()))?;
        let guard = ExitGuard {
            exit: exit_tx,
            registry: registry.clone(),
            name: self.name.clone(),
            incarnation,
        };
        let args = self
            .args
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        let (stop, stop_rx) = oneshot::channel();
        let (init_tx, init_rx) = oneshot::channel();
        let mut task = tokio::spawn(run::<S>(args, rx, stop_rx, init_tx, guard));

        match tokio::time::timeout(self.init_timeout, init_rx).await {
            Ok(Ok(Ok(()))) => Ok(StartedChild::new(task, stop, None)),
            Ok(Ok(Err(reason))) => {
                // The task is already returning; wait so the name is free
                // before the supervisor tries again.
                let _ = (&mut task).await;
                Err(StartError::InitFailed(reason))
            }
            Ok(Err(_)) => {
                let reason = match (&mut task).await {
                    Ok(reason) => reason,
                    Err(e) => ExitReason::from_join_error(e),
                };
                Err(StartError::InitFailed(reason))
            }
            Err(_) => {
                task.abort();
                let _ = (&mut task).await;
                Err(StartError::InitTimeout(self.init_timeout))
            }
        }
    }
}

/// Publishes the exit reason and frees the name when an incarnation ends,
/// however it ends: returning, panicking or being aborted.
struct ExitGuard {
    exit: watch::Sender<Option<ExitReason>>,
    registry: Registry,
    name: String,
    incarnation: u64,
}

impl ExitGuard {
    fn publish(&self, reason: &ExitReason) {
        self.exit.send_if_modified(|slot| {
            if slot.is_none() {
                *slot = Some(reason.clone());
                true
            } else {
                false
            }
        });
    }
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        // Only an abort drops the guard without a published reason.
        self.publish(&ExitReason::Killed);
        self.registry.unregister(&self.name, self.incarnation);
    }
}

/// Runs `fut`, turning a panic into a `Panic` exit reason.
async fn guarded<T>(fut: impl Future<Output = Result<T, ExitReason>>) -> Result<T, ExitReason> {
    match AssertUnwindSafe(fut).catch_unwind().await {
        Ok(result) => result,
        Err(payload) => Err(ExitReason::from_panic(payload)),
    }
}

/// Calls `terminate`; a panic there is swallowed so the original reason stands.
async fn terminate<S: Server>(state: &mut S, reason: &ExitReason) {
    let _ = AssertUnwindSafe(state.terminate(reason))
        .catch_unwind()
        .await;
}

/// The body of one incarnation's task.
async fn run<S: Server>(
    args: S::Args,
    mut rx: mpsc::Receiver<Envelope<S>>,
    mut stop_rx: oneshot::Receiver<()>,
    init_tx: oneshot::Sender<Result<(), ExitReason>>,
    guard: ExitGuard,
) -> ExitReason {
    let mut state = match guarded(S::init(args)).await {
        Ok(state) => state,
        Err(reason) => {
            guard.publish(&reason);
            let _ = init_tx.send(Err(reason.clone()));
            return reason;
        }
    };
    let _ = init_tx.send(Ok(()));

    loop {
        // Stop first: a supervisor's shutdown request must not wait behind
        // a full mailbox.
        let envelope = tokio::select! {
            biased;
            // Sent or dropped, both mean the supervisor wants us gone.
            _ = &mut stop_rx => None,
            envelope = rx.recv() => envelope,
            info = guarded(state.handle_info()) => match info {
                Ok(()) => continue,
                Err(reason) => {
                    terminate(&mut state, &reason).await;
                    guard.publish(&reason);
                    return reason;
                }
            },
        };
        let Some(envelope) = envelope else {
            // A stop request, or every sender is gone (the name was
            // unregistered): either way this incarnation has no more work.
            let reason = ExitReason::Shutdown;
            terminate(&mut state, &reason).await;
            guard.publish(&reason);
            return reason;
        };
        match envelope {
            Envelope::Call { msg, reply } => match guarded(state.handle_call(msg)).await {
                Ok(value) => {
                    // The caller may have timed out and gone; that is its business.
                    let _ = reply.send(Ok(value));
                }
                Err(reason) => {
                    terminate(&mut state, &reason).await;
                    guard.publish(&reason);
                    let _ = reply.send(Err(reason.clone()));
                    return reason;
                }
            },
            Envelope::Cast(msg) => {
                if let Err(reason) = guarded(state.handle_cast(msg)).await {
                    terminate(&mut state, &reason).await;
                    guard.publish(&reason);
                    return reason;
                }
            }
        }
    }
}
