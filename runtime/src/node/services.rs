//! The node's services under its supervision tree.
//!
//! ```text
//! node            rest_for_one: a later service depends on the earlier ones
//! ├─ store        owns the EmbeddedStore; fails when its writer fails
//! ├─ loop         the node loop, recovered from the store at every start
//! ├─ ticker       sends the loop a tick every tick_ms
//! ├─ <services>   added with NodeServices::service (`drover node`: log
//! │               shipping, the API server, a worker per queue trigger)
//! ├─ pools        one_for_one, transient: a health worker per pool
//! └─ user         the user's gen_servers, with the user's strategy
//! ```
//!
//! `rest_for_one` makes the restart order follow the dependencies: a store
//! failure restarts the store (reopening it, so recovery cuts what an
//! unacknowledged write left behind) and then the loop, which recovers every
//! unfinished run from the store, then everything after it. The loop's
//! in-memory state is never trusted across a restart: what it acknowledged
//! is in the store, what it did not is redone or was never promised
//! (invariant 2). A ticker crash restarts only the ticker and what follows;
//! while it is down timers fire late, never early and never lost.
//!
//! If a supervisor exceeds its restart intensity it escalates; when the
//! root does, it stops every service in reverse order (closing the store)
//! and exits, and [`SupervisedNode::wait`] says why. The node never runs
//! half-alive: a node without a working store or loop is a stopped node.
//!
//! Every exit, restart and escalation is a log event of kind `node`.

use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use drover_store::{EmbeddedStore, Store, StoreStats};
use drover_supervisor::{
    ChildSpec, ExitReason, Registry, Reporter, Restart, Server, Shutdown, Strategy, Supervisor,
    SupervisorError, SupervisorRef, SupervisorReport, SupervisorSpec, SupervisorTree, WorkerSpec,
};
use futures::future::BoxFuture;
use serde_json::Value as Json;
use tokio::sync::mpsc;

use super::driver::{open_store, LogRing, LoopSeams};
use super::executor::{now_ms, EffectHandler, EmbeddedEffects};
use super::{Node, NodeConfig, NodeError, NodeHandle, RecoveryReport};
use crate::log::Level;
use crate::logs::{EventKind, LogEvent, Timestamp};

/// How long a restarting store waits for the previous incarnation's last
/// user to let go of it (the directory lock goes with the last handle).
const STORE_RELEASE_WAIT: Duration = Duration::from_secs(5);

/// What the services share: the node's config, its current store and loop,
/// and its log ring. Read by name-less services through [`NodeRef`].
struct Shared {
    config: NodeConfig,
    effects: RwLock<Arc<dyn EffectHandler>>,
    logs: LogRing,
    store: RwLock<Option<Arc<EmbeddedStore>>>,
    /// The store's recovery report, until the next loop start takes it.
    store_report: Mutex<Option<drover_store::RecoveryReport>>,
    /// The last store incarnation, so the next one waits for its lock.
    old_store: Mutex<Weak<EmbeddedStore>>,
    node: RwLock<Option<Arc<NodeHandle>>>,
    recovery: Mutex<Option<Arc<RecoveryReport>>>,
    ticks: RwLock<Option<mpsc::Sender<()>>>,
    /// The last abnormal exit reported anywhere in the tree.
    last_failure: Mutex<Option<String>>,
}

impl Shared {
    fn log(&self, level: Level, msg: impl Into<String>, fields: &[(&str, Json)]) {
        let mut event =
            LogEvent::new(Timestamp::Millis(now_ms() as i64), level, EventKind::Node).with_msg(msg);
        for (k, v) in fields {
            event = event.with_field(*k, v.clone());
        }
        self.logs.push(event, self.config.log_to_stderr);
    }

    fn reporter(self: &Arc<Self>, supervisor: &'static str) -> Reporter {
        let shared = Arc::downgrade(self);
        Reporter::new(move |report| {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let sup = ("supervisor", Json::from(supervisor));
            match report {
                SupervisorReport::ChildExited { child, reason } => {
                    let level = if reason.is_abnormal() {
                        *shared
                            .last_failure
                            .lock()
                            .unwrap_or_else(|p| p.into_inner()) =
                            Some(format!("{child}: {reason}"));
                        Level::Error
                    } else {
                        Level::Info
                    };
                    shared.log(
                        level,
                        format!("{child} exited: {reason}"),
                        &[
                            sup,
                            ("child", Json::from(child.as_str())),
                            ("reason", Json::from(reason.to_string())),
                        ],
                    );
                }
                SupervisorReport::ChildRestarted { child, restarts } => shared.log(
                    Level::Warn,
                    format!("{child} restarted ({restarts} restarts)"),
                    &[
                        sup,
                        ("child", Json::from(child.as_str())),
                        ("restarts", Json::from(*restarts)),
                    ],
                ),
                SupervisorReport::RestartFailed { child, error } => shared.log(
                    Level::Error,
                    format!("{child} failed to restart: {error}"),
                    &[
                        sup,
                        ("child", Json::from(child.as_str())),
                        ("error", Json::from(error.as_str())),
                    ],
                ),
                SupervisorReport::Escalated {
                    intensity,
                    period_ms,
                } => shared.log(
                    Level::Error,
                    format!(
                        "{supervisor} gave up: more than {intensity} restarts in {period_ms} ms"
                    ),
                    &[sup],
                ),
            }
        })
    }
}

/// A handle on whatever incarnation of the node's services is current;
/// clone it into the `Args` of a service that needs the node (an API
/// server, a user gen_server that starts runs).
#[derive(Clone)]
pub struct NodeRef(Arc<Shared>);

impl NodeRef {
    /// The running loop's handle. Take it per use rather than keeping it:
    /// a held handle keeps its store open, and a restarting store waits
    /// for it (up to 5 s) before it can reopen the directory.
    pub fn node(&self) -> Result<Arc<NodeHandle>, NodeError> {
        self.0
            .node
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or(NodeError::Closed)
    }

    /// What the current loop recovered when it started.
    pub fn recovery(&self) -> Option<Arc<RecoveryReport>> {
        self.0
            .recovery
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The node's log events, its own (`kind == node`) and its runs',
    /// across every restart of the loop, oldest first.
    pub fn logs(&self) -> Vec<LogEvent> {
        self.0.logs.snapshot()
    }

    /// Adds a `node` log event, for a service's own reports.
    pub fn log(&self, level: Level, msg: impl Into<String>) {
        self.0.log(level, msg, &[]);
    }
}

/// Builds the node's supervision tree; [`NodeServices::start`] starts it.
pub struct NodeServices {
    shared: Arc<Shared>,
    registry: Registry,
    intensity: u32,
    period: Duration,
    store_check: Duration,
    services: Vec<ChildSpec>,
    pools: Vec<ChildSpec>,
    user: SupervisorSpec,
}

impl NodeServices {
    /// A node on `config` with the in-process embedded effects, a root
    /// that tolerates 3 restarts in 10 s, and an empty `one_for_one` user
    /// subtree (3 restarts in 5 s).
    pub fn new(config: NodeConfig) -> Self {
        let logs = LogRing::new(&config.node_name);
        let shared = Arc::new(Shared {
            config,
            effects: RwLock::new(Arc::new(EmbeddedEffects::new())),
            logs,
            store: RwLock::new(None),
            store_report: Mutex::new(None),
            old_store: Mutex::new(Weak::new()),
            node: RwLock::new(None),
            recovery: Mutex::new(None),
            ticks: RwLock::new(None),
            last_failure: Mutex::new(None),
        });
        NodeServices {
            shared,
            registry: Registry::new(),
            intensity: 3,
            period: Duration::from_secs(10),
            store_check: Duration::from_millis(50),
            services: Vec::new(),
            pools: Vec::new(),
            user: SupervisorSpec::new(Strategy::OneForOne)
                .intensity(3)
                .period(Duration::from_secs(5)),
        }
    }

    /// Performs built-in effects with `effects`.
    pub fn effects(self, effects: Arc<dyn EffectHandler>) -> Self {
        *self
            .shared
            .effects
            .write()
            .unwrap_or_else(|p| p.into_inner()) = effects;
        self
    }

    /// The handle services use to reach the node: clone it into the `Args`
    /// of a [`NodeServices::service`] or a user child before `start`.
    pub fn node_ref(&self) -> NodeRef {
        NodeRef(self.shared.clone())
    }

    /// Registers every service's name in `registry` (so the caller can
    /// reach them before `start` returns a node).
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = registry;
        self
    }

    /// The root's restart intensity: more restarts than this within
    /// `period` and the node stops.
    pub fn intensity(mut self, intensity: u32, period: Duration) -> Self {
        self.intensity = intensity;
        self.period = period;
        self
    }

    /// How often the store service checks its writer.
    pub fn store_check(mut self, every: Duration) -> Self {
        self.store_check = every.max(Duration::from_millis(1));
        self
    }

    /// Adds a node service after the ticker (the API server): it is
    /// restarted whenever the loop is, so its `init` takes the new loop
    /// from a [`NodeRef`].
    pub fn service(mut self, child: ChildSpec) -> Self {
        self.services.push(child);
        self
    }

    /// Adds a connection pool's health worker to the `pools` subtree.
    pub fn pool(mut self, pool: PoolHealth) -> Self {
        self.pools.push(pool.child_spec());
        self
    }

    /// Sets the user subtree's strategy and intensity.
    pub fn user_strategy(mut self, strategy: Strategy, intensity: u32, period: Duration) -> Self {
        self.user.strategy = strategy;
        self.user.intensity = intensity;
        self.user.period = period;
        self
    }

    /// Adds a user gen_server (or supervisor) to the user subtree; it is
    /// reachable by its registered name through [`SupervisedNode::registry`].
    pub fn child(mut self, child: ChildSpec) -> Self {
        self.user.children.push(child);
        self
    }

    /// Starts the tree: opens the store, recovers and starts the loop, the
    /// ticker, the services, the pools and the user's servers, in order.
    pub async fn start(self) -> Result<SupervisedNode, NodeError> {
        let shared = self.shared;
        let store = WorkerSpec::<StoreService>::new(
            "drover.store",
            StoreArgs {
                shared: shared.clone(),
                check: self.store_check,
            },
        )
        // Opening reads the whole log; waiting for a released lock adds 5 s.
        .init_timeout(Duration::from_secs(120));
        let lp = WorkerSpec::<LoopService>::new("drover.loop", NodeRef(shared.clone()))
            .init_timeout(Duration::from_secs(120));
        let ticker = WorkerSpec::<Ticker>::new("drover.ticker", NodeRef(shared.clone()));
        let mut root = SupervisorSpec::new(Strategy::RestForOne)
            .intensity(self.intensity)
            .period(self.period)
            .reporter(shared.reporter("node"))
            .child(
                ChildSpec::worker("store", store)
                    .shutdown(Shutdown::Timeout(Duration::from_secs(30))),
            )
            .child(
                ChildSpec::worker("loop", lp).shutdown(Shutdown::Timeout(Duration::from_secs(30))),
            )
            .child(ChildSpec::worker("ticker", ticker));
        for service in self.services {
            root = root.child(service);
        }
        if !self.pools.is_empty() {
            let mut pools = SupervisorSpec::new(Strategy::OneForOne)
                .intensity(5)
                .period(Duration::from_secs(30))
                .reporter(shared.reporter("pools"));
            pools.children = self.pools;
            // An outage that outlasts the pools' intensity stops their
            // health workers, not the node: runs keep going and effects
            // report the outage as retryable failures.
            root = root.child(ChildSpec::supervisor("pools", pools).restart(Restart::Transient));
        }
        let user = self.user.reporter(shared.reporter("user"));
        root = root.child(ChildSpec::supervisor("user", user));

        let supervisor = Supervisor::start(root, &self.registry)
            .await
            .map_err(|e| NodeError::Refused(format!("node services did not start: {e}")))?;
        shared.log(Level::Info, "node services started", &[]);
        Ok(SupervisedNode {
            supervisor,
            registry: self.registry,
            node: NodeRef(shared),
        })
    }
}

/// A node running under its supervision tree.
pub struct SupervisedNode {
    supervisor: Supervisor,
    registry: Registry,
    node: NodeRef,
}

/// Why a supervised node stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeExit {
    /// The root supervisor's exit reason: `MaxRestartIntensity` when a
    /// service kept failing.
    pub reason: ExitReason,
    /// The last abnormal exit in the tree (`child: reason`), the likely cause.
    pub last_failure: Option<String>,
}

impl std::fmt::Display for NodeExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "node stopped: {}", self.reason)?;
        if let Some(cause) = &self.last_failure {
            write!(f, " (last failure: {cause})")?;
        }
        Ok(())
    }
}

impl SupervisedNode {
    /// The running loop's handle; see [`NodeRef::node`].
    pub fn node(&self) -> Result<Arc<NodeHandle>, NodeError> {
        self.node.node()
    }

    /// A cloneable handle on the node's current incarnation.
    pub fn node_ref(&self) -> NodeRef {
        self.node.clone()
    }

    /// Where every service and user gen_server is registered by name.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The root supervisor's dynamic API.
    pub fn supervisor(&self) -> &SupervisorRef {
        self.supervisor.handle()
    }

    /// A snapshot of the whole tree with restart counts.
    pub async fn tree(&self) -> Result<SupervisorTree, SupervisorError> {
        self.supervisor.tree().await
    }

    /// The node's log events (see [`NodeRef::logs`]).
    pub fn logs(&self) -> Vec<LogEvent> {
        self.node.logs()
    }

    /// Waits until the node stops by itself (its root gave up) and says why.
    pub async fn wait(self) -> NodeExit {
        let shared = self.node.0.clone();
        let reason = self.supervisor.join().await;
        let exit = NodeExit {
            reason,
            last_failure: shared
                .last_failure
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        };
        shared.log(Level::Error, exit.to_string(), &[]);
        exit
    }

    /// Runs until `stop` resolves, then stops every service in order
    /// (`Ok`), or until the node stops by itself (`Err`, saying why).
    pub async fn run_until(
        mut self,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(), NodeExit> {
        let exited = tokio::select! {
            _ = stop => None,
            reason = self.supervisor.exited() => Some(reason),
        };
        match exited {
            None => {
                self.shutdown().await;
                Ok(())
            }
            Some(reason) => {
                let shared = self.node.0.clone();
                let exit = NodeExit {
                    reason,
                    last_failure: shared
                        .last_failure
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clone(),
                };
                shared.log(Level::Error, exit.to_string(), &[]);
                Err(exit)
            }
        }
    }

    /// Stops every service in reverse start order: the user's servers, the
    /// pools, the services, the ticker, the loop, then the store.
    pub async fn shutdown(self) -> ExitReason {
        let shared = self.node.0.clone();
        let reason = self.supervisor.shutdown().await;
        shared.log(Level::Info, "node services stopped", &[]);
        reason
    }
}

#[doc(hidden)]
pub struct StoreArgs {
    shared: Arc<Shared>,
    check: Duration,
}

impl Clone for StoreArgs {
    fn clone(&self) -> Self {
        StoreArgs {
            shared: self.shared.clone(),
            check: self.check,
        }
    }
}

/// Owns the store. Its health check fails the service once the store
/// refuses writes (a write or fsync failed: nothing after it was
/// acknowledged) or its writer thread is gone; the restart reopens the
/// store, and recovery cuts whatever the failed write left.
pub struct StoreService {
    shared: Arc<Shared>,
    store: Option<Arc<EmbeddedStore>>,
    check: tokio::time::Interval,
}

/// Requests to the store service.
#[derive(Debug)]
pub enum StoreCall {
    /// The store's counters.
    Stats,
}

impl Server for StoreService {
    type Args = StoreArgs;
    type Call = StoreCall;
    type Reply = StoreStats;
    type Cast = ();

    async fn init(args: StoreArgs) -> Result<Self, ExitReason> {
        let shared = args.shared;
        // A killed incarnation ran no `terminate`: let go of its store here.
        let killed = shared
            .store
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(old) = killed {
            *shared.old_store.lock().unwrap_or_else(|p| p.into_inner()) = Arc::downgrade(&old);
            let _ = tokio::task::spawn_blocking(move || drop(old)).await;
        }
        // The directory lock is held until the old store's last handle is
        // dropped (a loop that is stopping, a caller mid-request).
        let old = shared
            .old_store
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let deadline = tokio::time::Instant::now() + STORE_RELEASE_WAIT;
        while old.strong_count() > 0 {
            if tokio::time::Instant::now() >= deadline {
                return Err(ExitReason::error(
                    "the previous store is still in use; its directory stays locked",
                ));
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (store, report) = open_store(&shared.config)
            .await
            .map_err(|e| ExitReason::error(format!("store did not open: {e}")))?;
        let mut fields = vec![
            ("records", Json::from(report.records)),
            ("runs", Json::from(report.runs)),
        ];
        let level = match &report.truncated {
            Some(t) => {
                fields.push((
                    "truncated",
                    Json::from(format!("{} at {}: {:?}", t.segment, t.offset, t.reason)),
                ));
                Level::Warn
            }
            None => Level::Info,
        };
        shared.log(level, "store opened", &fields);
        let store = Arc::new(store);
        *shared.store.write().unwrap_or_else(|p| p.into_inner()) = Some(store.clone());
        *shared
            .store_report
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(report);
        let mut check = tokio::time::interval(args.check);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ok(StoreService {
            shared,
            store: Some(store),
            check,
        })
    }

    async fn handle_call(&mut self, StoreCall::Stats: StoreCall) -> Result<StoreStats, ExitReason> {
        match &self.store {
            Some(store) => Ok(store.stats()),
            None => Err(ExitReason::error("the store is closed")),
        }
    }

    async fn handle_cast(&mut self, (): ()) -> Result<(), ExitReason> {
        Ok(())
    }

    async fn handle_info(&mut self) -> Result<(), ExitReason> {
        self.check.tick().await;
        match self.store.as_ref().map(|s| s.health()) {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(ExitReason::error(format!("store writer failed: {e}"))),
            None => Err(ExitReason::error("the store is closed")),
        }
    }

    async fn terminate(&mut self, _: &ExitReason) {
        *self.shared.store.write().unwrap_or_else(|p| p.into_inner()) = None;
        if let Some(store) = self.store.take() {
            *self
                .shared
                .old_store
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = Arc::downgrade(&store);
            // The last handle joins the writer thread: blocking work.
            let _ = tokio::task::spawn_blocking(move || drop(store)).await;
        }
    }
}

/// Runs the node loop. Every start recovers from the store, so a restart
/// resumes every unfinished run; the service fails if the loop stops.
pub struct LoopService {
    shared: Arc<Shared>,
    node: Option<Arc<NodeHandle>>,
}

impl Server for LoopService {
    type Args = NodeRef;
    type Call = ();
    type Reply = ();
    type Cast = ();

    async fn init(NodeRef(shared): NodeRef) -> Result<Self, ExitReason> {
        // A killed incarnation ran no `terminate`: its loop may still run,
        // and two loops must never drive the same runs.
        let killed = shared
            .node
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(old) = killed {
            old.stop().await;
            let _ = tokio::task::spawn_blocking(move || drop(old)).await;
        }
        let store = shared
            .store
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| ExitReason::error("no store is open"))?;
        // An earlier loop's appends may still wait in the writer's queue
        // (their tasks were aborted, the writes were not): recovery must
        // read the store after them, or it would resume runs from behind.
        store
            .barrier()
            .await
            .map_err(|e| ExitReason::error(format!("store refused: {e}")))?;
        let store_report = shared
            .store_report
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        // One tick may wait: a loop that is behind skips ticks, as an
        // interval with `MissedTickBehavior::Skip` does.
        let (ticks, ticks_rx) = mpsc::channel(1);
        let seams = LoopSeams {
            ticks: Some(ticks_rx),
            logs: Some(shared.logs.clone()),
        };
        let effects = shared
            .effects
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let (node, mut report) = Node::open_on(
            store,
            store_report.clone().unwrap_or_else(empty_store_report),
            shared.config.clone(),
            effects,
            seams,
        )
        .await
        .map_err(|e| ExitReason::error(format!("loop did not start: {e}")))?;
        if store_report.is_none() {
            report.store = None;
        }
        shared.log(
            Level::Info,
            "loop started",
            &[
                ("resumed", Json::from(report.resumed.len())),
                ("replayed_entries", Json::from(report.replayed_entries)),
            ],
        );
        let node = Arc::new(node);
        *shared.node.write().unwrap_or_else(|p| p.into_inner()) = Some(node.clone());
        *shared.ticks.write().unwrap_or_else(|p| p.into_inner()) = Some(ticks);
        *shared.recovery.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(report));
        Ok(LoopService {
            shared,
            node: Some(node),
        })
    }

    async fn handle_call(&mut self, (): ()) -> Result<(), ExitReason> {
        Ok(())
    }

    async fn handle_cast(&mut self, (): ()) -> Result<(), ExitReason> {
        Ok(())
    }

    async fn handle_info(&mut self) -> Result<(), ExitReason> {
        if let Some(node) = &self.node {
            node.closed().await;
        }
        Err(ExitReason::error("the node loop stopped"))
    }

    async fn terminate(&mut self, _: &ExitReason) {
        *self.shared.ticks.write().unwrap_or_else(|p| p.into_inner()) = None;
        *self.shared.node.write().unwrap_or_else(|p| p.into_inner()) = None;
        if let Some(node) = self.node.take() {
            node.stop().await;
            // If this is the store's last handle, dropping it joins the
            // store's writer thread: blocking work.
            let _ = tokio::task::spawn_blocking(move || drop(node)).await;
        }
    }
}

fn empty_store_report() -> drover_store::RecoveryReport {
    drover_store::RecoveryReport {
        segments: 0,
        frames: 0,
        records: 0,
        runs: 0,
        truncated: None,
    }
}

/// The tick generator: sends the current loop a tick every `tick_ms`
/// (invariant 6: the loop's timers are driven by ticks, not by timers of
/// its own). A crash restarts it; the loop then waits for ticks.
pub struct Ticker {
    shared: Arc<Shared>,
    interval: tokio::time::Interval,
    sent: u64,
}

/// Requests to the ticker.
#[derive(Debug)]
pub enum TickerCall {
    /// Ticks this incarnation delivered to the loop.
    Sent,
}

impl Server for Ticker {
    type Args = NodeRef;
    type Call = TickerCall;
    type Reply = u64;
    type Cast = ();

    async fn init(NodeRef(shared): NodeRef) -> Result<Self, ExitReason> {
        let mut interval =
            tokio::time::interval(Duration::from_millis(shared.config.tick_ms.max(1)));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        Ok(Ticker {
            shared,
            interval,
            sent: 0,
        })
    }

    async fn handle_call(&mut self, TickerCall::Sent: TickerCall) -> Result<u64, ExitReason> {
        Ok(self.sent)
    }

    async fn handle_cast(&mut self, (): ()) -> Result<(), ExitReason> {
        Ok(())
    }

    async fn handle_info(&mut self) -> Result<(), ExitReason> {
        self.interval.tick().await;
        let ticks = self
            .shared
            .ticks
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        // A full channel means the loop has a tick it has not taken yet.
        if let Some(ticks) = ticks {
            if ticks.try_send(()).is_ok() {
                self.sent += 1;
            }
        }
        Ok(())
    }
}

type HealthFn = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// A connection pool's health worker: `init` builds (or rebuilds) the pool
/// with `rebuild`, then `check` runs every `every`; after `down_limit`
/// failed checks in a row the worker fails, and its restart rebuilds the
/// pool. A check that hangs past `every` counts as failed.
#[derive(Clone)]
pub struct PoolHealth {
    name: String,
    rebuild: HealthFn,
    check: HealthFn,
    every: Duration,
    down_limit: u32,
}

impl PoolHealth {
    /// A health worker registered as `pool.<name>`.
    pub fn new(
        name: impl Into<String>,
        rebuild: impl Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync + 'static,
        check: impl Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync + 'static,
    ) -> Self {
        PoolHealth {
            name: name.into(),
            rebuild: Arc::new(rebuild),
            check: Arc::new(check),
            every: Duration::from_secs(5),
            down_limit: 3,
        }
    }

    /// Sets the check period and how many failures in a row fail the worker.
    pub fn every(mut self, every: Duration, down_limit: u32) -> Self {
        self.every = every.max(Duration::from_millis(1));
        self.down_limit = down_limit.max(1);
        self
    }

    fn child_spec(self) -> ChildSpec {
        let id = self.name.clone();
        let name = format!("pool.{}", self.name);
        ChildSpec::worker(id, WorkerSpec::<PoolWorker>::new(name, self))
    }
}

/// The running health worker of one pool.
pub struct PoolWorker {
    spec: PoolHealth,
    interval: tokio::time::Interval,
    failures: u32,
    last: Result<(), String>,
}

impl Server for PoolWorker {
    type Args = PoolHealth;
    type Call = ();
    /// The last check's result.
    type Reply = Result<(), String>;
    type Cast = ();

    async fn init(spec: PoolHealth) -> Result<Self, ExitReason> {
        (spec.rebuild)()
            .await
            .map_err(|e| ExitReason::error(format!("pool {} not built: {e}", spec.name)))?;
        let mut interval = tokio::time::interval(spec.every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is immediate; the pool was just checked by building it.
        interval.reset();
        Ok(PoolWorker {
            spec,
            interval,
            failures: 0,
            last: Ok(()),
        })
    }

    async fn handle_call(&mut self, (): ()) -> Result<Result<(), String>, ExitReason> {
        Ok(self.last.clone())
    }

    async fn handle_cast(&mut self, (): ()) -> Result<(), ExitReason> {
        Ok(())
    }

    async fn handle_info(&mut self) -> Result<(), ExitReason> {
        self.interval.tick().await;
        let check = (self.spec.check)();
        self.last = match tokio::time::timeout(self.spec.every, check).await {
            Ok(result) => result,
            Err(_) => Err(format!("health check hung for {:?}", self.spec.every)),
        };
        match &self.last {
            Ok(()) => self.failures = 0,
            Err(e) => {
                self.failures += 1;
                if self.failures >= self.spec.down_limit {
                    return Err(ExitReason::error(format!(
                        "pool {} unhealthy {} times in a row: {e}",
                        self.spec.name, self.failures
                    )));
                }
            }
        }
        Ok(())
    }
}
