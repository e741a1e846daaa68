//! Child specifications and the supervisor's grip on a running child.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::exit::ExitReason;
use crate::registry::Registry;
use crate::server::{Server, WorkerSpec};
use crate::supervisor::{start_supervisor, SupervisorRef, SupervisorSpec};

/// Shutdown timeout OTP gives a worker when none is set.
pub const DEFAULT_WORKER_SHUTDOWN: Duration = Duration::from_secs(5);

/// When a supervisor restarts a child that stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Restart {
    /// Always restarted.
    Permanent,
    /// Restarted only after an abnormal exit (not `Normal` or `Shutdown`).
    Transient,
    /// Never restarted; its spec is dropped once it stops.
    Temporary,
}

/// How a supervisor stops a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Shutdown {
    /// Abort the task at once; `terminate` does not run.
    BrutalKill,
    /// Ask the child to stop, wait this long, then abort it.
    Timeout(Duration),
    /// Ask and wait without limit. Meant for child supervisors, as OTP
    /// recommends: their own wait is bounded by their children's timeouts.
    Infinity,
}

/// Whether a child is a worker or a supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChildKind {
    /// A gen_server-like worker.
    Worker,
    /// A nested supervisor.
    Supervisor,
}

/// Why a child could not be started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// A live worker already holds the registered name.
    #[error("the name {0:?} is already registered")]
    AlreadyRegistered(String),
    /// `init` returned an error or panicked.
    #[error("init failed: {0}")]
    InitFailed(ExitReason),
    /// `init` did not finish in time; the task was aborted.
    #[error("init did not finish within {0:?}")]
    InitTimeout(Duration),
    /// A supervisor could not start one of its children, so it did not start.
    #[error("failed to start child {id:?}: {error}")]
    ChildFailed {
        /// The child that failed.
        id: String,
        /// Why it failed.
        error: Box<StartError>,
    },
    /// A supervisor spec is unusable.
    #[error("invalid supervisor spec: {0}")]
    InvalidSpec(String),
}

type StartFn =
    dyn Fn(Registry) -> BoxFuture<'static, Result<StartedChild, StartError>> + Send + Sync;

/// A factory that starts one incarnation of a child.
#[derive(Clone)]
pub struct ChildStart(Arc<StartFn>);

impl std::fmt::Debug for ChildStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChildStart(..)")
    }
}

impl ChildStart {
    /// Runs the factory; a panic inside it is a failed start, never a crash of the supervisor.
    pub(crate) async fn start(&self, registry: Registry) -> Result<StartedChild, StartError> {
        let factory = self.0.clone();
        let started = AssertUnwindSafe(async move { factory(registry).await })
            .catch_unwind()
            .await;
        match started {
            Ok(result) => result,
            Err(payload) => Err(StartError::InitFailed(ExitReason::from_panic(payload))),
        }
    }
}

/// How a supervisor starts, restarts and stops one child, as in OTP's child spec.
#[derive(Clone, Debug)]
pub struct ChildSpec {
    /// Unique among the supervisor's children.
    pub id: String,
    /// Starts one incarnation.
    pub start: ChildStart,
    /// When to restart it.
    pub restart: Restart,
    /// How to stop it.
    pub shutdown: Shutdown,
    /// Worker or supervisor.
    pub kind: ChildKind,
}

impl ChildSpec {
    /// A permanent worker with OTP's default 5 s shutdown timeout.
    pub fn worker<S: Server>(id: impl Into<String>, spec: WorkerSpec<S>) -> Self {
        let start = move |registry: Registry| {
            let spec = spec.clone();
            Box::pin(async move { spec.start(&registry).await }) as BoxFuture<'static, _>
        };
        ChildSpec {
            id: id.into(),
            start: ChildStart(Arc::new(start)),
            restart: Restart::Permanent,
            shutdown: Shutdown::Timeout(DEFAULT_WORKER_SHUTDOWN),
            kind: ChildKind::Worker,
        }
    }

    /// A permanent nested supervisor, stopped with `Shutdown::Infinity` as OTP defaults.
    pub fn supervisor(id: impl Into<String>, spec: SupervisorSpec) -> Self {
        let start = move |registry: Registry| {
            Box::pin(start_supervisor(spec.clone(), registry)) as BoxFuture<'static, _>
        };
        ChildSpec {
            id: id.into(),
            start: ChildStart(Arc::new(start)),
            restart: Restart::Permanent,
            shutdown: Shutdown::Infinity,
            kind: ChildKind::Supervisor,
        }
    }

    /// Sets the restart type.
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// Sets the shutdown method.
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }
}

/// One running incarnation of a child, owned by its supervisor.
pub(crate) struct StartedChild {
    task: JoinHandle<ExitReason>,
    /// Sending or dropping it asks the child to stop.
    stop: Option<oneshot::Sender<()>>,
    /// Set for supervisors, so the tree can be walked.
    pub(crate) supervisor: Option<SupervisorRef>,
}

impl StartedChild {
    pub(crate) fn new(
        task: JoinHandle<ExitReason>,
        stop: oneshot::Sender<()>,
        supervisor: Option<SupervisorRef>,
    ) -> Self {
        StartedChild {
            task,
            stop: Some(stop),
            supervisor,
        }
    }

    /// Polls for the child's own exit. Must not be polled again after it is ready.
    pub(crate) fn poll_exit(&mut self, cx: &mut Context<'_>) -> Poll<ExitReason> {
        self.task.poll_unpin(cx).map(|joined| match joined {
            Ok(reason) => reason,
            Err(e) => ExitReason::from_join_error(e),
        })
    }

    /// Stops the child the way `shutdown` says and returns how it ended.
    pub(crate) async fn terminate(mut self, shutdown: Shutdown) -> ExitReason {
        match shutdown {
            Shutdown::BrutalKill => self.task.abort(),
            Shutdown::Timeout(limit) => {
                self.request_stop();
                match tokio::time::timeout(limit, &mut self.task).await {
                    Ok(joined) => return joined.unwrap_or_else(ExitReason::from_join_error),
                    // It ignored the request: kill it, as OTP does after the timeout.
                    Err(_) => self.task.abort(),
                }
            }
            Shutdown::Infinity => self.request_stop(),
        }
        (&mut self.task)
            .await
            .unwrap_or_else(ExitReason::from_join_error)
    }

    /// Aborts the child's task; its exit then reads as `Killed`.
    pub(crate) fn kill(&self) {
        self.task.abort();
    }

    fn request_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for StartedChild {
    fn drop(&mut self) {
        // If the supervisor itself goes away without stopping this child
        // (it was aborted, or panicked), take the child with it, like an
        // Erlang link: no orphaned tasks. A no-op for a finished task.
        self.task.abort();
    }
}
