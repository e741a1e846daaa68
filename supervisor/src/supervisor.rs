//! Supervisors: start children in order, watch them, restart them by
//! strategy within a restart intensity, and stop them in reverse order.
//!
//! Each supervisor is one tokio task that owns its children's join handles
//! and waits in one `select!` on: a stop request from its parent, a child's
//! exit, or a command from a `SupervisorRef`.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::child::{ChildKind, ChildSpec, Restart, Shutdown, StartError, StartedChild};
use crate::exit::ExitReason;
use crate::intensity::RestartWindow;
use crate::registry::Registry;
use crate::tree::{ChildCounts, ChildInfo, ChildStatus, SupervisorTree, TreeNode};

/// Most children one supervisor holds, static and dynamic together.
pub const MAX_CHILDREN: usize = 1024;
/// Commands that may wait for a supervisor before senders are made to wait.
const CONTROL_CAPACITY: usize = 16;

/// Which children a supervisor restarts when one of them dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Strategy {
    /// Restart only the child that died.
    OneForOne,
    /// Stop all other children (in reverse start order), then restart all of them.
    OneForAll,
    /// Stop the children started after the dead one (in reverse order), then
    /// restart the dead one and those.
    RestForOne,
}

/// What a supervisor tells its reporter as it acts, like OTP's supervisor
/// reports: which child died and why, what was restarted, and when it gave up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum SupervisorReport {
    /// A child exited by itself (not stopped by its supervisor).
    ChildExited {
        /// The child.
        child: String,
        /// Why.
        reason: ExitReason,
    },
    /// A child was started again, for its own exit or its group's.
    ChildRestarted {
        /// The child.
        child: String,
        /// Its restarts so far.
        restarts: u32,
    },
    /// A restart could not start the child; it counts as another restart.
    RestartFailed {
        /// The child.
        child: String,
        /// Why it failed to start.
        error: String,
    },
    /// The supervisor exceeded its restart intensity: it stops its children
    /// and exits with `MaxRestartIntensity`, escalating to its parent.
    Escalated {
        /// Restarts tolerated.
        intensity: u32,
        /// Within this many milliseconds.
        period_ms: u64,
    },
}

/// Receives a supervisor's [`SupervisorReport`]s; called on the supervisor's
/// task, so it must be quick and must not wait.
#[derive(Clone)]
pub struct Reporter(Arc<dyn Fn(&SupervisorReport) + Send + Sync>);

impl Reporter {
    /// Wraps a callback.
    pub fn new(f: impl Fn(&SupervisorReport) + Send + Sync + 'static) -> Self {
        Reporter(Arc::new(f))
    }

    fn report(&self, report: SupervisorReport) {
        // A panicking reporter must not take the supervisor down.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (self.0)(&report)));
    }
}

impl fmt::Debug for Reporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Reporter(..)")
    }
}

/// A supervisor's flags and its static children, as returned by OTP's `init/1`.
#[derive(Debug, Clone)]
pub struct SupervisorSpec {
    /// Restart strategy.
    pub strategy: Strategy,
    /// Restarts tolerated within `period`; one more and the supervisor gives up.
    pub intensity: u32,
    /// The sliding window for `intensity`; must not be zero.
    pub period: Duration,
    /// Children, started in this order and stopped in reverse.
    pub children: Vec<ChildSpec>,
    /// Told of exits, restarts and escalation, if set.
    pub reporter: Option<Reporter>,
}

impl SupervisorSpec {
    /// A spec with OTP's default intensity (1 restart per 5 seconds) and no children.
    pub fn new(strategy: Strategy) -> Self {
        SupervisorSpec {
            strategy,
            intensity: 1,
            period: Duration::from_secs(5),
            children: Vec::new(),
            reporter: None,
        }
    }

    /// Sets the callback told of exits, restarts and escalation.
    pub fn reporter(mut self, reporter: Reporter) -> Self {
        self.reporter = Some(reporter);
        self
    }

    /// Sets the restart intensity.
    pub fn intensity(mut self, intensity: u32) -> Self {
        self.intensity = intensity;
        self
    }

    /// Sets the intensity period.
    pub fn period(mut self, period: Duration) -> Self {
        self.period = period;
        self
    }

    /// Appends a child.
    pub fn child(mut self, child: ChildSpec) -> Self {
        self.children.push(child);
        self
    }

    fn validate(&self) -> Result<(), StartError> {
        if self.period.is_zero() {
            return Err(StartError::InvalidSpec(
                "the period must not be zero".into(),
            ));
        }
        if self.children.len() > MAX_CHILDREN {
            return Err(StartError::InvalidSpec(format!(
                "{} children exceed the limit of {MAX_CHILDREN}",
                self.children.len()
            )));
        }
        for (i, child) in self.children.iter().enumerate() {
            if self.children[..i].iter().any(|c| c.id == child.id) {
                return Err(StartError::InvalidSpec(format!(
                    "duplicate child id {:?}",
                    child.id
                )));
            }
        }
        Ok(())
    }
}

/// Why a supervisor command failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SupervisorError {
    /// The supervisor has exited.
    #[error("the supervisor is not running")]
    NotRunning,
    /// No child has this id.
    #[error("no child with id {0:?}")]
    NotFound(String),
    /// A child with this id is already running.
    #[error("child {0:?} is already started")]
    AlreadyStarted(String),
    /// A stopped child with this id exists; restart or delete it first.
    #[error("child {0:?} is already present")]
    AlreadyPresent(String),
    /// The child has no running incarnation.
    #[error("child {0:?} is not running")]
    Stopped(String),
    /// The child is running, so it cannot be deleted or restarted.
    #[error("child {0:?} is running")]
    Running(String),
    /// The supervisor holds `MAX_CHILDREN` children already.
    #[error("the supervisor already has {max} children")]
    TooManyChildren {
        /// The limit.
        max: usize,
    },
    /// The child's start failed.
    #[error("child {id:?} failed to start: {error}")]
    StartFailed {
        /// The child.
        id: String,
        /// Why.
        error: StartError,
    },
}

type Reply<T> = oneshot::Sender<Result<T, SupervisorError>>;

enum Control {
    StartChild(ChildSpec, Reply<()>),
    TerminateChild(String, Reply<()>),
    KillChild(String, Reply<()>),
    RestartChild(String, Reply<()>),
    DeleteChild(String, Reply<()>),
    WhichChildren(oneshot::Sender<Vec<ChildInfo>>),
    Snapshot(oneshot::Sender<Snapshot>),
}

/// One level of the tree; nested supervisors are asked by the caller, not
/// by this supervisor, so a slow subtree never blocks its parent.
struct Snapshot {
    strategy: Strategy,
    intensity: u32,
    period: Duration,
    children: Vec<(ChildInfo, Option<SupervisorRef>)>,
}

/// A handle for the dynamic API of a running supervisor.
#[derive(Clone)]
pub struct SupervisorRef {
    control: mpsc::Sender<Control>,
}

impl std::fmt::Debug for SupervisorRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupervisorRef")
            .field("running", &!self.control.is_closed())
            .finish()
    }
}

impl SupervisorRef {
    async fn request<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Control,
    ) -> Result<T, SupervisorError> {
        let (reply, reply_rx) = oneshot::channel();
        self.control
            .send(command(reply))
            .await
            .map_err(|_| SupervisorError::NotRunning)?;
        reply_rx.await.map_err(|_| SupervisorError::NotRunning)
    }

    /// Adds and starts a child; the spec is kept only if the start succeeds.
    pub async fn start_child(&self, spec: ChildSpec) -> Result<(), SupervisorError> {
        self.request(|r| Control::StartChild(spec, r)).await?
    }

    /// Stops a child by its shutdown method; the spec stays unless the child is temporary.
    pub async fn terminate_child(&self, id: &str) -> Result<(), SupervisorError> {
        self.request(|r| Control::TerminateChild(id.to_string(), r))
            .await?
    }

    /// Kills a running child at once, as OTP's `exit(Pid, kill)` does: its
    /// task is aborted without `terminate`, and the supervisor sees it exit
    /// with `Killed`, a crash, and restarts by strategy.
    pub async fn kill_child(&self, id: &str) -> Result<(), SupervisorError> {
        self.request(|r| Control::KillChild(id.to_string(), r))
            .await?
    }

    /// Starts a stopped child again from its spec.
    pub async fn restart_child(&self, id: &str) -> Result<(), SupervisorError> {
        self.request(|r| Control::RestartChild(id.to_string(), r))
            .await?
    }

    /// Removes the spec of a stopped child.
    pub async fn delete_child(&self, id: &str) -> Result<(), SupervisorError> {
        self.request(|r| Control::DeleteChild(id.to_string(), r))
            .await?
    }

    /// Lists the children in start order.
    pub async fn which_children(&self) -> Result<Vec<ChildInfo>, SupervisorError> {
        self.request(Control::WhichChildren).await
    }

    /// Counts specs, running children, supervisors and workers.
    pub async fn count_children(&self) -> Result<ChildCounts, SupervisorError> {
        let children = self.which_children().await?;
        let supervisors = children
            .iter()
            .filter(|c| c.kind == ChildKind::Supervisor)
            .count();
        Ok(ChildCounts {
            specs: children.len(),
            active: children
                .iter()
                .filter(|c| c.status == ChildStatus::Running)
                .count(),
            supervisors,
            workers: children.len() - supervisors,
        })
    }

    /// Snapshots this supervisor and every running supervisor below it.
    pub fn tree(&self) -> BoxFuture<'_, Result<SupervisorTree, SupervisorError>> {
        Box::pin(async move {
            let snapshot = self.request(Control::Snapshot).await?;
            let mut children = Vec::with_capacity(snapshot.children.len());
            for (info, sub) in snapshot.children {
                // A nested supervisor may exit between the two questions;
                // it then shows without a subtree.
                let supervisor = match sub {
                    Some(sub) => sub.tree().await.ok(),
                    None => None,
                };
                children.push(TreeNode { info, supervisor });
            }
            Ok(SupervisorTree {
                strategy: snapshot.strategy,
                intensity: snapshot.intensity,
                period_ms: u64::try_from(snapshot.period.as_millis()).unwrap_or(u64::MAX),
                children,
            })
        })
    }
}

/// A top-level supervisor: the root of a tree, owned by whoever started it.
///
/// Dropping it kills the tree at once (no `terminate` callbacks); call
/// `shutdown` for an orderly stop.
pub struct Supervisor {
    handle: SupervisorRef,
    task: StartedChild,
}

impl Supervisor {
    /// Starts the supervisor and all its children, in order; fails if any child fails.
    pub async fn start(spec: SupervisorSpec, registry: &Registry) -> Result<Self, StartError> {
        let mut task = start_supervisor(spec, registry.clone()).await?;
        let handle = task
            .supervisor
            .take()
            .expect("start_supervisor always sets the handle");
        Ok(Supervisor { handle, task })
    }

    /// The dynamic API.
    pub fn handle(&self) -> &SupervisorRef {
        &self.handle
    }

    /// Waits until the supervisor exits by itself and returns why.
    pub async fn join(mut self) -> ExitReason {
        std::future::poll_fn(|cx| self.task.poll_exit(cx)).await
    }

    /// As [`join`](Self::join), but keeps the supervisor, so a caller can
    /// wait for it alongside something else (a signal) and still
    /// [`shutdown`](Self::shutdown) when that comes first. Cancel-safe; do
    /// not call it again once it has returned.
    pub async fn exited(&mut self) -> ExitReason {
        std::future::poll_fn(|cx| self.task.poll_exit(cx)).await
    }

    /// Stops all children in reverse start order, then the supervisor.
    pub async fn shutdown(self) -> ExitReason {
        self.task.terminate(Shutdown::Infinity).await
    }
}

impl std::ops::Deref for Supervisor {
    type Target = SupervisorRef;

    fn deref(&self) -> &SupervisorRef {
        &self.handle
    }
}

/// Starts a supervisor task and waits until all its children have started.
pub(crate) async fn start_supervisor(
    spec: SupervisorSpec,
    registry: Registry,
) -> Result<StartedChild, StartError> {
    spec.validate()?;
    let (control, control_rx) = mpsc::channel(CONTROL_CAPACITY);
    let (stop, stop_rx) = oneshot::channel();
    let (init_tx, init_rx) = oneshot::channel();
    let task = tokio::spawn(run(spec, registry, control_rx, stop_rx, init_tx));
    // Wrapped at once so that if this start is abandoned, the task goes too.
    let mut child = StartedChild::new(task, stop, Some(SupervisorRef { control }));
    match init_rx.await {
        Ok(Ok(())) => Ok(child),
        Ok(Err(error)) => {
            std::future::poll_fn(|cx| child.poll_exit(cx)).await;
            Err(error)
        }
        Err(_) => {
            let reason = std::future::poll_fn(|cx| child.poll_exit(cx)).await;
            Err(StartError::InitFailed(reason))
        }
    }
}

/// One child slot of a supervisor.
struct Child {
    spec: ChildSpec,
    running: Option<StartedChild>,
    restarts: u32,
}

impl Child {
    fn info(&self) -> ChildInfo {
        ChildInfo {
            id: self.spec.id.clone(),
            kind: self.spec.kind,
            status: if self.running.is_some() {
                ChildStatus::Running
            } else {
                ChildStatus::Stopped
            },
            restart: self.spec.restart,
            restarts: self.restarts,
        }
    }
}

/// The supervisor has exceeded its restart intensity and must exit.
struct Escalate;

struct State {
    strategy: Strategy,
    intensity: u32,
    period: Duration,
    window: RestartWindow,
    /// In start order.
    children: Vec<Child>,
    registry: Registry,
    reporter: Option<Reporter>,
}

async fn run(
    spec: SupervisorSpec,
    registry: Registry,
    mut control: mpsc::Receiver<Control>,
    mut stop: oneshot::Receiver<()>,
    init: oneshot::Sender<Result<(), StartError>>,
) -> ExitReason {
    let mut sup = State {
        strategy: spec.strategy,
        intensity: spec.intensity,
        period: spec.period,
        window: RestartWindow::new(spec.intensity, spec.period),
        children: Vec::with_capacity(spec.children.len()),
        registry,
        reporter: spec.reporter,
    };
    for child_spec in spec.children {
        match child_spec.start.start(sup.registry.clone()).await {
            Ok(started) => sup.children.push(Child {
                spec: child_spec,
                running: Some(started),
                restarts: 0,
            }),
            Err(error) => {
                // As OTP: undo the children already started, then fail the start.
                sup.terminate_all().await;
                let _ = init.send(Err(StartError::ChildFailed {
                    id: child_spec.id,
                    error: Box::new(error),
                }));
                return ExitReason::Shutdown;
            }
        }
    }
    let _ = init.send(Ok(()));

    let mut control_open = true;
    loop {
        tokio::select! {
            // A parent's stop request wins over restarts; a child's exit is
            // handled before commands so they see an up-to-date tree.
            biased;
            // Sent or dropped: the parent wants us gone either way.
            _ = &mut stop => {
                sup.terminate_all().await;
                return ExitReason::Shutdown;
            }
            (index, reason) = next_exit(&mut sup.children) => {
                if sup.child_exited(index, reason).await.is_err() {
                    return ExitReason::MaxRestartIntensity;
                }
            }
            command = control.recv(), if control_open => match command {
                Some(command) => sup.handle(command).await,
                // Nobody can send commands any more; keep supervising.
                None => control_open = false,
            },
        }
    }
}

/// Resolves with the first child that exits on its own, and clears its slot
/// so its join handle is never polled again.
fn next_exit(children: &mut [Child]) -> impl Future<Output = (usize, ExitReason)> + '_ {
    std::future::poll_fn(move |cx| {
        for (index, child) in children.iter_mut().enumerate() {
            if let Some(running) = child.running.as_mut() {
                if let Poll::Ready(reason) = running.poll_exit(cx) {
                    child.running = None;
                    return Poll::Ready((index, reason));
                }
            }
        }
        Poll::Pending
    })
}

impl State {
    fn report(&self, report: SupervisorReport) {
        if let Some(reporter) = &self.reporter {
            reporter.report(report);
        }
    }

    fn position(&self, id: &str) -> Option<usize> {
        self.children.iter().position(|c| c.spec.id == id)
    }

    /// Applies the restart type and strategy to a child that exited by itself.
    async fn child_exited(&mut self, index: usize, reason: ExitReason) -> Result<(), Escalate> {
        self.report(SupervisorReport::ChildExited {
            child: self.children[index].spec.id.clone(),
            reason: reason.clone(),
        });
        let restart = match self.children[index].spec.restart {
            Restart::Permanent => true,
            Restart::Transient => reason.is_abnormal(),
            Restart::Temporary => {
                self.children.remove(index);
                false
            }
        };
        if !restart {
            return Ok(());
        }
        let id = self.children[index].spec.id.clone();
        self.restart(id).await
    }

    /// Restarts by strategy around `id`. A failed start counts as one more
    /// restart and is retried, as OTP does, so a child that can never start
    /// exhausts the intensity instead of looping forever.
    async fn restart(&mut self, mut id: String) -> Result<(), Escalate> {
        loop {
            if !self.window.record(Instant::now()) {
                self.report(SupervisorReport::Escalated {
                    intensity: self.intensity,
                    period_ms: u64::try_from(self.period.as_millis()).unwrap_or(u64::MAX),
                });
                self.terminate_all().await;
                return Err(Escalate);
            }
            match self.restart_group(&id).await {
                Ok(()) => return Ok(()),
                Err(failed) => id = failed,
            }
        }
    }

    /// Stops the group the strategy picks around `id` in reverse order and
    /// starts it again in order; returns the id of a child that failed to start.
    async fn restart_group(&mut self, id: &str) -> Result<(), String> {
        let Some(index) = self.position(id) else {
            return Ok(());
        };
        let range = match self.strategy {
            Strategy::OneForOne => index..index + 1,
            Strategy::OneForAll => 0..self.children.len(),
            Strategy::RestForOne => index..self.children.len(),
        };
        let group: Vec<String> = self.children[range]
            .iter()
            .map(|c| c.spec.id.clone())
            .collect();
        for member in group.iter().rev() {
            self.terminate(member).await;
        }
        for member in &group {
            // Temporary members were dropped when terminated.
            let Some(i) = self.position(member) else {
                continue;
            };
            let child = &mut self.children[i];
            if child.running.is_some() {
                continue;
            }
            match child.spec.start.start(self.registry.clone()).await {
                Ok(started) => {
                    child.running = Some(started);
                    child.restarts += 1;
                    let restarts = child.restarts;
                    self.report(SupervisorReport::ChildRestarted {
                        child: member.clone(),
                        restarts,
                    });
                }
                Err(error) => {
                    self.report(SupervisorReport::RestartFailed {
                        child: member.clone(),
                        error: error.to_string(),
                    });
                    return Err(member.clone());
                }
            }
        }
        Ok(())
    }

    /// Stops one child if it runs; a temporary child's spec is dropped, as in OTP.
    async fn terminate(&mut self, id: &str) {
        let Some(index) = self.position(id) else {
            return;
        };
        let child = &mut self.children[index];
        if let Some(running) = child.running.take() {
            running.terminate(child.spec.shutdown).await;
        }
        if child.spec.restart == Restart::Temporary {
            self.children.remove(index);
        }
    }

    /// Stops every child in reverse start order.
    async fn terminate_all(&mut self) {
        for child in self.children.iter_mut().rev() {
            if let Some(running) = child.running.take() {
                running.terminate(child.spec.shutdown).await;
            }
        }
    }

    async fn handle(&mut self, command: Control) {
        match command {
            Control::StartChild(spec, reply) => {
                let _ = reply.send(self.start_child(spec).await);
            }
            Control::TerminateChild(id, reply) => {
                let result = match self.position(&id) {
                    None => Err(SupervisorError::NotFound(id)),
                    Some(_) => {
                        self.terminate(&id).await;
                        Ok(())
                    }
                };
                let _ = reply.send(result);
            }
            Control::KillChild(id, reply) => {
                let result = match self.position(&id) {
                    None => Err(SupervisorError::NotFound(id)),
                    Some(i) => match &self.children[i].running {
                        // The exit is picked up by `next_exit`, like any crash.
                        Some(running) => {
                            running.kill();
                            Ok(())
                        }
                        None => Err(SupervisorError::Stopped(id)),
                    },
                };
                let _ = reply.send(result);
            }
            Control::RestartChild(id, reply) => {
                let _ = reply.send(self.restart_child(id).await);
            }
            Control::DeleteChild(id, reply) => {
                let result = match self.position(&id) {
                    None => Err(SupervisorError::NotFound(id)),
                    Some(i) if self.children[i].running.is_some() => {
                        Err(SupervisorError::Running(id))
                    }
                    Some(i) => {
                        self.children.remove(i);
                        Ok(())
                    }
                };
                let _ = reply.send(result);
            }
            Control::WhichChildren(reply) => {
                let _ = reply.send(self.children.iter().map(Child::info).collect());
            }
            Control::Snapshot(reply) => {
                let children = self
                    .children
                    .iter()
                    .map(|c| {
                        let sub = c.running.as_ref().and_then(|r| r.supervisor.clone());
                        (c.info(), sub)
                    })
                    .collect();
                let _ = reply.send(Snapshot {
                    strategy: self.strategy,
                    intensity: self.intensity,
                    period: self.period,
                    children,
                });
            }
        }
    }

    async fn start_child(&mut self, spec: ChildSpec) -> Result<(), SupervisorError> {
        if let Some(i) = self.position(&spec.id) {
            return Err(if self.children[i].running.is_some() {
                SupervisorError::AlreadyStarted(spec.id)
            } else {
                SupervisorError::AlreadyPresent(spec.id)
            });
        }
        if self.children.len() >= MAX_CHILDREN {
            return Err(SupervisorError::TooManyChildren { max: MAX_CHILDREN });
        }
        match spec.start.start(self.registry.clone()).await {
            Ok(started) => {
                self.children.push(Child {
                    spec,
                    running: Some(started),
                    restarts: 0,
                });
                Ok(())
            }
            Err(error) => Err(SupervisorError::StartFailed { id: spec.id, error }),
        }
    }

    async fn restart_child(&mut self, id: String) -> Result<(), SupervisorError> {
        let Some(i) = self.position(&id) else {
            return Err(SupervisorError::NotFound(id));
        };
        let child = &mut self.children[i];
        if child.running.is_some() {
            return Err(SupervisorError::Running(id));
        }
        match child.spec.start.start(self.registry.clone()).await {
            Ok(started) => {
                child.running = Some(started);
                Ok(())
            }
            Err(error) => Err(SupervisorError::StartFailed { id, error }),
        }
    }
}
