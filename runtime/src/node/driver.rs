//! The tokio side of a node: [`Node::open`] recovers from the store and
//! spawns the loop; the loop owns the [`NodeState`] and blocks in one
//! `select!` over requests, ticks and finished tasks (store appends, run
//! starts, effect attempts), carrying out the [`Action`]s the state returns.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use drover_interpreter::{Command, EffectError, EffectId, Event, Program};
use drover_ir::wire::{hash_bytes, ModuleHash};
use drover_ir::{InstAddr, LogLevel, Value};
use drover_store::{
    EmbeddedStore, Options, Record, RunFilter, RunId, RunStart, RunSummary, StartOutcome, Store,
    StoreError,
};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{AbortHandle, JoinHandle, JoinSet};

use super::codec;
use super::executor::{now_ms, EffectHandler, EmbeddedEffects, Executor};
use super::logic::{self, Action, NodeState, Now, Prepared};
use super::{EffectProfile, NodeConfig, NodeError, Outcome, RecoveryReport, RunInfo, TraceItem};
use crate::logs::{EventKind, LogEvent, Timestamp};
use crate::registry;

/// Log events a node keeps in memory for [`NodeHandle::logs`] (invariant 8).
const LOG_LIMIT: usize = 10_000;

/// Log events a follower may fall behind by before it misses some.
const LOG_FOLLOW_CAPACITY: usize = 4096;

/// The newest log events, shared by the loop, the handle and the node's
/// services (which outlive one loop incarnation), and a broadcast of each
/// new one to followers (`drover logs --follow`). Step and effect events
/// are kept as [`NodeEvent`] structs and become [`LogEvent`]s only when
/// read or followed, so the loop pays no formatting for them.
#[derive(Clone)]
pub(crate) struct LogRing {
    ring: Arc<std::sync::Mutex<VecDeque<RingItem>>>,
    node: Arc<str>,
    follow: tokio::sync::broadcast::Sender<LogEvent>,
}

enum RingItem {
    Log(LogEvent),
    Node(NodeEvent),
}

/// A step or effect event, as cheap to keep as the loop can make it.
struct NodeEvent {
    kind: EventKind,
    at_ms: u64,
    run: RunId,
    /// For the workflow's name, the instruction's source span and the
    /// effect's name, looked up when the event is read.
    program: Program,
    hash: ModuleHash,
    workflow: u32,
    inst: Option<InstAddr>,
    duration_us: u64,
    /// Step: what the run was given. Effect: `ok` or `error`.
    what: &'static str,
    /// Step: the journal seq. Effect: the effect id.
    seq: u64,
    attempt: u32,
    effect: Option<Arc<str>>,
    error: Option<String>,
}

impl NodeEvent {
    fn to_log_event(&self, node: &str) -> LogEvent {
        use serde_json::Value as J;
        let module = self.program.module();
        let level = match (self.kind, &self.error) {
            (EventKind::Effect, Some(_)) => LogLevel::Warn,
            (EventKind::Effect, None) => LogLevel::Info,
            _ => LogLevel::Debug,
        };
        let mut e = LogEvent::new(Timestamp::Millis(self.at_ms as i64), level, self.kind)
            .with_run(self.run.to_string())
            .with_program(self.hash.to_string())
            .with_node(node)
            .with_duration_us(self.duration_us);
        if let Some(w) = module.workflows.get(self.workflow as usize) {
            e = e.with_workflow(w.name.clone());
        }
        if let Some(at) = self.inst {
            e = e.with_inst(at.to_string());
            if let Some(span) = module.source_map.describe(at) {
                e = e.with_span(span);
            }
        }
        match self.kind {
            EventKind::Effect => {
                if let Some(effect) = &self.effect {
                    e = e.with_effect(effect.to_string());
                }
                e = e
                    .with_msg(match &self.error {
                        Some(err) => format!("{} failed: {err}", self.what),
                        None => self.what.to_owned(),
                    })
                    .with_extra("effect_id", J::from(self.seq))
                    .with_extra("attempt", J::from(self.attempt));
            }
            _ => {
                e = e.with_msg(self.what).with_extra("seq", J::from(self.seq));
            }
        }
        e
    }
}

impl LogRing {
    pub(crate) fn new(node: &str) -> Self {
        LogRing {
            ring: Arc::default(),
            node: node.into(),
            follow: tokio::sync::broadcast::channel(LOG_FOLLOW_CAPACITY).0,
        }
    }

    fn push_item(&self, item: RingItem) {
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        if ring.len() >= LOG_LIMIT {
            ring.pop_front();
        }
        ring.push_back(item);
    }

    pub(crate) fn push(&self, event: LogEvent, print: bool) {
        if print {
            eprintln!("{}", event.to_json_line());
        }
        if self.follow.receiver_count() > 0 {
            // No follower left is not an error.
            let _ = self.follow.send(event.clone());
        }
        self.push_item(RingItem::Log(event));
    }

    fn push_node(&self, event: NodeEvent, print: bool) {
        let followed = self.follow.receiver_count() > 0;
        if print || followed {
            let e = event.to_log_event(&self.node);
            if print {
                eprintln!("{}", e.to_json_line());
            }
            if followed {
                let _ = self.follow.send(e);
            }
        }
        self.push_item(RingItem::Node(event));
    }

    pub(crate) fn snapshot(&self) -> Vec<LogEvent> {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        ring.iter()
            .map(|item| match item {
                RingItem::Log(e) => e.clone(),
                RingItem::Node(e) => e.to_log_event(&self.node),
            })
            .collect()
    }
}

/// An effect attempt in flight.
struct InFlight {
    attempt: u32,
    handle: AbortHandle,
    started: std::time::Instant,
    effect: Arc<str>,
    at: InstAddr,
}

/// What a node has done since it opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeCounters {
    /// Journal entries written (steps of runs).
    pub steps: u64,
    /// Effect attempts performed.
    pub effects: u64,
    /// Runs started.
    pub started: u64,
    /// Runs whose end is durable.
    pub finished: u64,
}

#[derive(Default)]
struct Counters {
    steps: AtomicU64,
    effects: AtomicU64,
    started: AtomicU64,
    finished: AtomicU64,
}

impl Counters {
    fn get(&self) -> NodeCounters {
        NodeCounters {
            steps: self.steps.load(Ordering::Relaxed),
            effects: self.effects.load(Ordering::Relaxed),
            started: self.started.load(Ordering::Relaxed),
            finished: self.finished.load(Ordering::Relaxed),
        }
    }
}

/// Longest argument or result summary in a trace.
const SUMMARY_CHARS: usize = 120;

type Reply<T> = oneshot::Sender<Result<T, NodeError>>;

enum Request {
    Start {
        workflow: String,
        args: Vec<Value>,
        key: Option<String>,
        reply: Reply<(RunId, bool)>,
    },
    Event {
        run: RunId,
        event: Event,
        reply: Reply<()>,
    },
    /// Answered with the outcome once the run ends, or `None` at once when
    /// the run is not live here.
    Wait {
        run: RunId,
        reply: oneshot::Sender<Option<Outcome>>,
    },
    Deploy {
        hash: ModuleHash,
        bytes: Vec<u8>,
        program: Program,
        workflows: Vec<String>,
        reply: Reply<ModuleHash>,
    },
    Shutdown,
}

/// Who waits for an event to be durable.
enum AckWaiter {
    /// A caller (signal, cancel), answered through its reply.
    Caller(Reply<()>),
    /// An effect handler holding what an attempt took until its result is
    /// journaled ([`EffectHandler::settles`]).
    Settle {
        effect: Arc<str>,
        key: String,
        attempt: u32,
    },
}

/// What a task the loop spawned reports back.
enum Done {
    Appended {
        run: RunId,
        result: Result<(), String>,
    },
    Effect {
        run: RunId,
        id: EffectId,
        attempt: u32,
        effect: Arc<str>,
        result: Result<Value, drover_interpreter::EffectError>,
    },
    Started {
        /// The first journal entry was made durable with the start.
        journaled: bool,
        prepared: Box<Prepared>,
        parent: Option<(RunId, u64)>,
        outcome: Result<StartOutcome, StoreError>,
        reply: Option<Reply<(RunId, bool)>>,
    },
    /// A child found by its key that is not live here: its outcome if it ended.
    ChildFound {
        parent: RunId,
        id: u64,
        outcome: Option<Outcome>,
    },
    Deployed {
        hash: ModuleHash,
        program: Program,
        workflows: Vec<String>,
        result: Result<(), StoreError>,
        reply: Reply<ModuleHash>,
    },
}

/// Opens nodes.
pub struct Node;

impl Node {
    /// Opens the embedded store in `config.data_dir`, registers the linked
    /// workflows, resumes every unfinished run and starts the loop, with the
    /// in-process [`EmbeddedEffects`] for built-in effects.
    pub async fn open(config: NodeConfig) -> Result<(NodeHandle, RecoveryReport), NodeError> {
        Node::open_with(config, Arc::new(EmbeddedEffects::new())).await
    }

    /// As [`Node::open`], with `effects` performing the built-in effects.
    pub async fn open_with(
        config: NodeConfig,
        effects: Arc<dyn EffectHandler>,
    ) -> Result<(NodeHandle, RecoveryReport), NodeError> {
        let (store, store_report) = open_store(&config).await?;
        Node::open_on(
            Arc::new(store),
            store_report,
            config,
            effects,
            LoopSeams::default(),
        )
        .await
    }

    /// Starts the loop on an open store: registers the linked workflows,
    /// resumes every unfinished run, and takes its ticks and log ring from
    /// `seams` when given (the node's services supply both).
    pub(crate) async fn open_on(
        store: Arc<EmbeddedStore>,
        store_report: drover_store::RecoveryReport,
        config: NodeConfig,
        effects: Arc<dyn EffectHandler>,
        seams: LoopSeams,
    ) -> Result<(NodeHandle, RecoveryReport), NodeError> {
        let dups = registry::duplicates();
        if !dups.is_empty() {
            return Err(NodeError::Duplicates(dups.join(", ")));
        }
        let mut report = RecoveryReport {
            store: Some(store_report),
            ..RecoveryReport::default()
        };
        let mut state = NodeState::new(config.tick_ms, config.snapshot_every);
        let now = now_of(config.tick_ms);

        // Linked workflows: store and deploy those whose program is new, in
        // one append (one fsync).
        let mut records = Vec::new();
        for def in registry::workflows() {
            let hash = hash_bytes(def.ir);
            if store.program(hash).await?.is_none() {
                records.push(Record::Program {
                    hash,
                    bytes: def.ir.to_vec(),
                });
                records.push(Record::Deploy {
                    workflow: def.name.to_owned(),
                    hash,
                    at_ms: now.ms,
                });
                report.deployed.push(def.name.to_owned());
            }
        }
        if !records.is_empty() {
            store.append(records).await?;
        }
        for d in store.deployments().await? {
            match load_program(&*store, &mut state, d.program).await {
                Ok(_) => state.deploy(&d.workflow, d.program),
                Err(e) => report
                    .bad_deployments
                    .push((d.workflow.clone(), e.to_string())),
            }
        }

        // Resume unfinished runs, all before any action runs, so a parent's
        // re-issued child start finds the child already live.
        let mut actions = Vec::new();
        for run in store.unfinished().await? {
            let Some(data) = store.load_run(run).await? else {
                continue;
            };
            let program = match load_program(&*store, &mut state, data.start.program).await {
                Ok(p) => p,
                Err(e) => {
                    report.failed.push((run, e.to_string()));
                    continue;
                }
            };
            let mut recovered = state.recover(&data, program.clone(), None, now);
            if let Err(logic::RecoverError::NeedsFullJournal) = recovered {
                let full = store.journal(run).await?;
                recovered = state.recover(&data, program, Some(&full), now);
            }
            match recovered {
                Ok((a, replayed)) => {
                    actions.extend(a);
                    report.resumed.push(run);
                    report.replayed_entries += replayed;
                }
                Err(logic::RecoverError::Diverged { seq, message }) => {
                    report.diverged.push((run, format!("seq {seq}: {message}")))
                }
                Err(e) => report.failed.push((run, e.to_string())),
            }
        }

        let executor = Executor::new(effects, &config.resources);
        let logs = seams
            .logs
            .unwrap_or_else(|| LogRing::new(&config.node_name));
        let ticks = match seams.ticks {
            Some(rx) => Ticks::Channel(rx),
            None => {
                let mut i = tokio::time::interval(Duration::from_millis(config.tick_ms.max(1)));
                i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                Ticks::Interval(i)
            }
        };
        let counters = Arc::new(Counters::default());
        let (tx, rx) = mpsc::channel(config.inbox_capacity.max(1));
        let lp = Loop {
            store: store.clone(),
            state,
            executor: executor.clone(),
            config: config.clone(),
            tasks: JoinSet::new(),
            waiters: HashMap::new(),
            acks: HashMap::new(),
            next_ack: 0,
            logs: logs.clone(),
            effects: HashMap::new(),
            counters: counters.clone(),
            took: Duration::ZERO,
        };
        let task = tokio::spawn(lp.run(rx, ticks, actions));
        Ok((
            NodeHandle {
                tx,
                store,
                executor,
                tick_ms: config.tick_ms.max(1),
                logs,
                counters,
                task: Some(task),
            },
            report,
        ))
    }
}

/// Opens the embedded store in `config.data_dir`.
pub(crate) async fn open_store(
    config: &NodeConfig,
) -> Result<(EmbeddedStore, drover_store::RecoveryReport), NodeError> {
    let dir = config.data_dir.clone();
    // Opening reads and checks the whole log: blocking work.
    let opened = tokio::task::spawn_blocking(move || EmbeddedStore::open(&dir, Options::default()))
        .await
        .map_err(|e| NodeError::Refused(format!("store open task: {e}")))??;
    Ok(opened)
}

/// What the node's services hand a loop in place of its own: ticks from the
/// supervised tick generator, and the node's log ring.
#[derive(Default)]
pub(crate) struct LoopSeams {
    pub(crate) ticks: Option<mpsc::Receiver<()>>,
    pub(crate) logs: Option<LogRing>,
}

/// Where the loop's ticks come from.
enum Ticks {
    /// Its own interval (a node opened without services).
    Interval(tokio::time::Interval),
    /// A tick generator outside the loop; while it is down (restarting)
    /// no ticks come, and timers fire late rather than not at all.
    Channel(mpsc::Receiver<()>),
}

impl Ticks {
    async fn next(&mut self) {
        match self {
            Ticks::Interval(i) => {
                i.tick().await;
            }
            Ticks::Channel(rx) => {
                if rx.recv().await.is_none() {
                    std::future::pending::<()>().await;
                }
            }
        }
    }
}

/// Loads a stored program into the cache (with the registered pure fns).
async fn load_program<S: Store>(
    store: &S,
    state: &mut NodeState,
    hash: ModuleHash,
) -> Result<Program, NodeError> {
    if let Some(p) = state.program(&hash) {
        return Ok(p.clone());
    }
    let bytes = store
        .program(hash)
        .await?
        .ok_or_else(|| NodeError::BadProgram(format!("program {} is not stored", hash.short())))?;
    let program = load_bytes(&bytes)?;
    state.add_program(hash, program.clone());
    Ok(program)
}

/// Decodes, verifies and loads `.dbc` bytes (untrusted: errors, never panics).
fn load_bytes(bytes: &[u8]) -> Result<Program, NodeError> {
    let module =
        drover_ir::wire::decode(bytes).map_err(|e| NodeError::BadProgram(e.to_string()))?;
    let report = drover_ir::verify::verify(&module);
    if report.has_errors() {
        let msgs: Vec<String> = report.errors().map(|d| d.message.clone()).collect();
        return Err(NodeError::BadProgram(msgs.join("; ")));
    }
    Program::new(module)
        .map(|p| p.with_pure(registry::pure_fns()))
        .map_err(|e| NodeError::BadProgram(e.to_string()))
}

fn now_of(tick_ms: u64) -> Now {
    let ms = now_ms();
    Now {
        tick: ms / tick_ms.max(1),
        ms,
    }
}

struct Loop<S: Store> {
    store: Arc<S>,
    state: NodeState,
    executor: Executor,
    config: NodeConfig,
    tasks: JoinSet<Done>,
    waiters: HashMap<RunId, Vec<oneshot::Sender<Option<Outcome>>>>,
    acks: HashMap<u64, AckWaiter>,
    next_ack: u64,
    logs: LogRing,
    /// The task of each effect attempt in flight, by (run, effect id): a
    /// newer attempt or the run's end aborts the old one, so an attempt the
    /// run gave up on (timed out, cancelled) stops holding its permits.
    effects: HashMap<(RunId, u64), InFlight>,
    counters: Arc<Counters>,
    /// How long the last call into the state took, shared among the steps
    /// it took for their log events.
    took: Duration,
}

impl<S: Store> Loop<S> {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Request>,
        mut ticks: Ticks,
        initial: Vec<Action>,
    ) {
        self.execute(initial);
        loop {
            tokio::select! {
                req = rx.recv() => match req {
                    Some(Request::Shutdown) | None => break,
                    Some(req) => self.request(req),
                },
                _ = ticks.next() => {
                    let now = self.now();
                    let a = self.timed(|s| s.tick(now));
                    self.execute(a);
                }
                Some(done) = self.tasks.join_next() => match done {
                    Ok(done) => self.done(done),
                    // Aborted on purpose: an attempt the run gave up on.
                    Err(e) if e.is_cancelled() => {}
                    // Tasks catch their own panics, so this is a bug; the
                    // run waits for the attempt's timeout, if it has one.
                    Err(e) => eprintln!("drover node: task ended abnormally: {e}"),
                },
            }
        }
        // Abort effects and appends in flight; what was not durable is
        // redone by the next open.
        self.tasks.shutdown().await;
    }

    fn now(&self) -> Now {
        now_of(self.config.tick_ms)
    }

    fn request(&mut self, req: Request) {
        let now = self.now();
        match req {
            Request::Start {
                workflow,
                args,
                key,
                reply,
            } => match self.state.prepare(&workflow, args, now) {
                Ok(prepared) => self.spawn_start(prepared, key, None, Some(reply)),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Request::Event { run, event, reply } => {
                let ack = self.next_ack;
                self.next_ack += 1;
                self.acks.insert(ack, AckWaiter::Caller(reply));
                let a = self.timed(|s| s.deliver(run, event, Some(ack), now));
                self.execute(a);
            }
            Request::Wait { run, reply } => {
                if self.state.is_live(run) {
                    self.waiters.entry(run).or_default().push(reply);
                } else {
                    let _ = reply.send(None);
                }
            }
            Request::Deploy {
                hash,
                bytes,
                program,
                workflows,
                reply,
            } => {
                let store = self.store.clone();
                let mut records = vec![Record::Program { hash, bytes }];
                records.extend(workflows.iter().map(|w| Record::Deploy {
                    workflow: w.clone(),
                    hash,
                    at_ms: now.ms,
                }));
                self.tasks.spawn(async move {
                    let result = store.append(records).await;
                    Done::Deployed {
                        hash,
                        program,
                        workflows,
                        result,
                        reply,
                    }
                });
            }
            Request::Shutdown => {}
        }
    }

    fn spawn_start(
        &mut self,
        prepared: Prepared,
        key: Option<String>,
        parent: Option<(RunId, u64)>,
        reply: Option<Reply<(RunId, bool)>>,
    ) {
        let input = match codec::encode_input(&prepared.args) {
            Ok(i) => i,
            Err(e) => {
                if let Some(reply) = reply {
                    let _ = reply.send(Err(e.into()));
                }
                return;
            }
        };
        let start = RunStart {
            workflow: prepared.workflow.clone(),
            program: prepared.hash,
            input,
            idempotency_key: key,
            parent,
            started_at_ms: self.now().ms,
        };
        let store = self.store.clone();
        let first = self.state.first_entry(&prepared);
        self.tasks.spawn(async move {
            let journaled = first.is_some();
            let outcome = match first {
                Some(first) => store.start_run_journaled(start, first).await,
                None => store.start_run(start).await,
            };
            Done::Started {
                journaled,
                prepared: Box::new(prepared),
                parent,
                outcome,
                reply,
            }
        });
    }

    fn done(&mut self, done: Done) {
        let now = self.now();
        match done {
            Done::Appended { run, result } => {
                let a = self.timed(|s| s.appended(run, result, now));
                self.execute(a);
            }
            Done::Effect {
                run,
                id,
                attempt,
                effect,
                result,
            } => {
                let current = self
                    .effects
                    .get(&(run, id.0))
                    .is_some_and(|f| f.attempt == attempt);
                if current {
                    if let Some(f) = self.effects.remove(&(run, id.0)) {
                        self.effect_event(run, id.0, &f, &result, now);
                    }
                }
                // What the attempt took (a queue message) is acked once the
                // result is durable in the journal, or given back.
                let settles = self.executor.handler().settles(&effect);
                let key = || format!("{run}/{}", id.0);
                if settles && !current {
                    self.executor
                        .handler()
                        .settled(&effect, &key(), attempt, false);
                }
                let event = Event::EffectDone {
                    id,
                    attempt,
                    result,
                };
                let a = if settles && current {
                    let ack = self.next_ack;
                    self.next_ack += 1;
                    self.acks.insert(
                        ack,
                        AckWaiter::Settle {
                            effect,
                            key: key(),
                            attempt,
                        },
                    );
                    self.timed(|s| s.deliver_result(run, event, ack, now))
                } else {
                    self.timed(|s| s.deliver(run, event, None, now))
                };
                self.execute(a);
            }
            Done::Started {
                journaled,
                prepared,
                parent,
                outcome,
                reply,
            } => match outcome {
                Ok(StartOutcome::Created(run)) => {
                    self.counters.started.fetch_add(1, Ordering::Relaxed);
                    let a = if journaled {
                        self.timed(|s| s.install_journaled(run, *prepared, parent, now))
                    } else {
                        self.timed(|s| s.install(run, *prepared, parent, now))
                    };
                    self.execute(a);
                    if let Some(reply) = reply {
                        let _ = reply.send(Ok((run, true)));
                    }
                }
                Ok(StartOutcome::Existing(run)) => {
                    if let Some(reply) = reply {
                        let _ = reply.send(Ok((run, false)));
                    }
                    // A child started before a restart: if it is not live it
                    // may have ended, and the parent must hear of it.
                    if let Some((p, id)) = parent {
                        if !self.state.is_live(run) {
                            let store = self.store.clone();
                            self.tasks.spawn(async move {
                                let outcome = match store.load_run(run).await {
                                    Ok(Some(data)) => data
                                        .finished
                                        .and_then(|f| codec::decode_outcome(&f.outcome).ok()),
                                    _ => None,
                                };
                                Done::ChildFound {
                                    parent: p,
                                    id,
                                    outcome,
                                }
                            });
                        }
                    }
                }
                Err(e) => match (reply, parent) {
                    (Some(reply), _) => {
                        let _ = reply.send(Err(e.into()));
                    }
                    (None, Some((p, id))) => {
                        let ev = logic::child_failed(id, "start_failed", e.to_string());
                        let a = self.state.deliver(p, ev, None, now);
                        self.execute(a);
                    }
                    (None, None) => {}
                },
            },
            Done::ChildFound {
                parent,
                id,
                outcome,
            } => {
                if let Some(outcome) = outcome {
                    let a = self
                        .state
                        .deliver(parent, logic::child_done(id, &outcome), None, now);
                    self.execute(a);
                }
            }
            Done::Deployed {
                hash,
                program,
                workflows,
                result,
                reply,
            } => {
                let answer = result.map(|()| {
                    self.state.add_program(hash, program);
                    for w in &workflows {
                        self.state.deploy(w, hash);
                    }
                    hash
                });
                let _ = reply.send(answer.map_err(NodeError::from));
            }
        }
    }

    /// Calls into the state, timing the call for the step events.
    fn timed<T>(&mut self, f: impl FnOnce(&mut NodeState) -> T) -> T {
        let t = std::time::Instant::now();
        let r = f(&mut self.state);
        self.took = t.elapsed();
        r
    }

    /// Keeps the log event of an effect attempt that ended.
    fn effect_event(
        &self,
        run: RunId,
        id: u64,
        f: &InFlight,
        result: &Result<Value, drover_interpreter::EffectError>,
        now: Now,
    ) {
        if !self.config.step_events {
            return;
        }
        let Some((program, hash)) = self.state.run_program(run) else {
            return;
        };
        self.logs.push_node(
            NodeEvent {
                kind: EventKind::Effect,
                at_ms: now.ms,
                run,
                program: program.clone(),
                hash,
                workflow: f.at.workflow.index() as u32,
                inst: Some(f.at),
                duration_us: f.started.elapsed().as_micros() as u64,
                what: if result.is_ok() { "ok" } else { "error" },
                seq: id,
                attempt: f.attempt,
                effect: Some(f.effect.clone()),
                error: result
                    .as_ref()
                    .err()
                    .map(|e| format!("{}: {}", e.kind, e.message)),
            },
            self.config.log_to_stderr && self.config.print_step_events,
        );
    }

    fn execute(&mut self, actions: Vec<Action>) {
        let steps = actions
            .iter()
            .filter(|a| matches!(a, Action::Stepped { .. }))
            .count();
        let per_step = self.took / (steps.max(1) as u32);
        let mut queue: VecDeque<Action> = actions.into();
        while let Some(action) = queue.pop_front() {
            let now = self.now();
            match action {
                Action::Stepped {
                    run,
                    program,
                    at,
                    event,
                    seq,
                } => {
                    self.counters.steps.fetch_add(1, Ordering::Relaxed);
                    if !self.config.step_events {
                        continue;
                    }
                    let Some((p, workflow)) = self
                        .state
                        .program(&program)
                        .zip(self.state.run_workflow(run))
                    else {
                        continue;
                    };
                    self.logs.push_node(
                        NodeEvent {
                            kind: EventKind::Step,
                            at_ms: now.ms,
                            run,
                            program: p.clone(),
                            hash: program,
                            workflow,
                            inst: at,
                            duration_us: per_step.as_micros() as u64,
                            what: event,
                            seq,
                            attempt: 0,
                            effect: None,
                            error: None,
                        },
                        self.config.log_to_stderr && self.config.print_step_events,
                    );
                }
                Action::Append { run, records } => {
                    let store = self.store.clone();
                    self.tasks.spawn(async move {
                        let result = store.append(records).await.map_err(|e| e.to_string());
                        Done::Appended { run, result }
                    });
                }
                Action::Perform {
                    run,
                    id,
                    attempt,
                    effect,
                    args,
                    call_site_policy,
                    at,
                } => {
                    self.counters.effects.fetch_add(1, Ordering::Relaxed);
                    let key = format!("{run}/{}", id.0);
                    let name: Arc<str> = effect.as_str().into();
                    let fut = self
                        .executor
                        .perform(effect, args, key, attempt, call_site_policy);
                    let effect = name.clone();
                    let handle = self.tasks.spawn(async move {
                        let result = fut.await;
                        Done::Effect {
                            run,
                            id,
                            attempt,
                            effect,
                            result,
                        }
                    });
                    let flight = InFlight {
                        attempt,
                        handle,
                        started: std::time::Instant::now(),
                        effect: name,
                        at,
                    };
                    if let Some(old) = self.effects.insert((run, id.0), flight) {
                        old.handle.abort();
                    }
                }
                Action::StartChild {
                    parent,
                    id,
                    workflow,
                    args,
                } => match self.state.prepare(&workflow, args, now) {
                    Ok(prepared) => {
                        // The key makes a re-issued start (after a restart)
                        // find the same child.
                        let key = format!("{parent}/{}", id.0);
                        self.spawn_start(prepared, Some(key), Some((parent, id.0)), None);
                    }
                    Err(e) => {
                        let ev = logic::child_failed(id.0, "child_start", e.to_string());
                        queue.extend(self.state.deliver(parent, ev, None, now));
                    }
                },
                Action::Log {
                    run,
                    workflow,
                    level,
                    message,
                    fields,
                    inst,
                    span,
                    program,
                } => {
                    let mut event =
                        LogEvent::new(Timestamp::Millis(now.ms as i64), level, EventKind::Log)
                            .with_run(run.to_string())
                            .with_workflow(workflow)
                            .with_program(program.to_string())
                            .with_inst(inst)
                            .with_node(&*self.logs.node)
                            .with_msg(message);
                    if let Some(span) = span {
                        event = event.with_span(span);
                    }
                    match fields.to_json() {
                        serde_json::Value::Object(map) => {
                            for (k, v) in map {
                                event = event.with_field(k, v);
                            }
                        }
                        serde_json::Value::Null => {}
                        // A log of a non-record keeps it under one name.
                        other => event = event.with_field("value", other),
                    }
                    self.logs.push(event, self.config.log_to_stderr);
                }
                Action::Finished {
                    run,
                    outcome,
                    parent,
                } => {
                    self.counters.finished.fetch_add(1, Ordering::Relaxed);
                    let stale: Vec<(RunId, u64)> = self
                        .effects
                        .keys()
                        .filter(|(r, _)| *r == run)
                        .copied()
                        .collect();
                    for key in stale {
                        if let Some(f) = self.effects.remove(&key) {
                            f.handle.abort();
                        }
                    }
                    for w in self.waiters.remove(&run).unwrap_or_default() {
                        let _ = w.send(Some(outcome.clone()));
                    }
                    if let Some((p, id)) = parent {
                        queue.extend(self.state.deliver(
                            p,
                            logic::child_done(id, &outcome),
                            None,
                            now,
                        ));
                    }
                }
                Action::Ack { ack, result } => match self.acks.remove(&ack) {
                    Some(AckWaiter::Caller(reply)) => {
                        let _ = reply.send(result.map_err(NodeError::Refused));
                    }
                    Some(AckWaiter::Settle {
                        effect,
                        key,
                        attempt,
                    }) => {
                        self.executor
                            .handler()
                            .settled(&effect, &key, attempt, result.is_ok());
                    }
                    None => {}
                },
                Action::Broken { run, error } => {
                    eprintln!("drover node: run {run} stopped: {error}");
                    // Waiters see `None` and fall back to the store.
                    self.waiters.remove(&run);
                }
            }
        }
    }
}

/// A running node. Dropping it stops the loop; [`NodeHandle::shutdown`]
/// also waits for the store to close.
pub struct NodeHandle<S: Store = EmbeddedStore> {
    tx: mpsc::Sender<Request>,
    store: Arc<S>,
    executor: Executor,
    tick_ms: u64,
    logs: LogRing,
    counters: Arc<Counters>,
    task: Option<JoinHandle<()>>,
}

impl<S: Store> NodeHandle<S> {
    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Request) -> Result<T, NodeError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| NodeError::Closed)?;
        rx.await.map_err(|_| NodeError::Closed)?
    }

    /// Starts a run of `workflow`; returns once the start is durable. The
    /// same `idempotency_key` gives the same run.
    pub async fn start(
        &self,
        workflow: &str,
        args: Vec<Value>,
        idempotency_key: Option<String>,
    ) -> Result<RunId, NodeError> {
        Ok(self.start_created(workflow, args, idempotency_key).await?.0)
    }

    /// As [`NodeHandle::start`], also saying whether the run is new (`false`:
    /// the idempotency key named a run that already existed).
    pub async fn start_created(
        &self,
        workflow: &str,
        args: Vec<Value>,
        idempotency_key: Option<String>,
    ) -> Result<(RunId, bool), NodeError> {
        self.ask(|reply| Request::Start {
            workflow: workflow.to_owned(),
            args,
            key: idempotency_key,
            reply,
        })
        .await
    }

    /// Where a run is, from the store.
    pub async fn status(&self, run: RunId) -> Result<RunInfo, NodeError> {
        let data = self
            .store
            .load_run(run)
            .await?
            .ok_or(NodeError::UnknownRun(run))?;
        let journal_len = match (&data.snapshot, data.journal.last()) {
            (_, Some((seq, _))) => seq + 1,
            (Some(s), None) => s.upto_seq + 1,
            (None, None) => 0,
        };
        let outcome = match &data.finished {
            Some(f) => Some(codec::decode_outcome(&f.outcome)?),
            None => None,
        };
        Ok(RunInfo {
            run,
            workflow: data.start.workflow,
            program: data.start.program,
            parent: data.start.parent,
            started_at_ms: data.start.started_at_ms,
            outcome,
            journal_len,
        })
    }

    /// Waits for the run to end and gives its outcome.
    pub async fn result(&self, run: RunId) -> Result<Outcome, NodeError> {
        // The loop first: a live run is answered when its end is durable,
        // without reading the store. A run that is not live has ended (or
        // is not driven here), and the store has the answer.
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::Wait { run, reply })
            .await
            .map_err(|_| NodeError::Closed)?;
        if let Some(o) = rx.await.ok().flatten() {
            return Ok(o);
        }
        // Not live here: it has ended, or no node drives it.
        self.status(run)
            .await?
            .outcome
            .ok_or(NodeError::NotRunning(run))
    }

    /// Cancels a run; it fails with `Cancelled`. Returns once that is durable.
    pub async fn cancel(&self, run: RunId, reason: &str) -> Result<(), NodeError> {
        let event = Event::Cancel {
            reason: reason.to_owned(),
        };
        self.ask(|reply| Request::Event { run, event, reply }).await
    }

    /// Sends a signal; returns once it is durable in the run's journal.
    pub async fn signal(&self, run: RunId, name: &str, value: Value) -> Result<(), NodeError> {
        let event = Event::Signal {
            name: name.to_owned(),
            value,
        };
        self.ask(|reply| Request::Event { run, event, reply }).await
    }

    /// Runs matching `filter`.
    pub async fn list(&self, filter: &RunFilter) -> Result<Vec<RunSummary>, NodeError> {
        Ok(self.store.runs(filter).await?)
    }

    /// Every effect attempt of a run, in the order it was performed, from
    /// its journal.
    pub async fn trace(&self, run: RunId) -> Result<Vec<TraceItem>, NodeError> {
        let journal = self.store.journal(run).await?;
        if journal.is_empty() && self.store.load_run(run).await?.is_none() {
            return Err(NodeError::UnknownRun(run));
        }
        let mut entries = Vec::with_capacity(journal.len());
        for (_, bytes) in &journal {
            entries.push(codec::decode_entry(bytes)?);
        }
        let handler = self.executor.handler();
        let summarize = |effect: &str,
                         args: &[Value],
                         id: u64,
                         result: Option<Result<&Value, &EffectError>>| {
            handler.summarize(effect, args, &format!("{run}/{id}"), result)
        };
        Ok(trace_of(&entries, self.tick_ms, &summarize))
    }

    /// Deploys a `.dbc` module: verified, stored, and used by new starts of
    /// each of its workflows. Running runs keep their program.
    pub async fn deploy(&self, bytes: Vec<u8>) -> Result<ModuleHash, NodeError> {
        let program = load_bytes(&bytes)?;
        let workflows = program
            .module()
            .workflows
            .iter()
            .map(|w| w.name.clone())
            .collect();
        let hash = hash_bytes(&bytes);
        self.ask(|reply| Request::Deploy {
            hash,
            bytes,
            program,
            workflows,
            reply,
        })
        .await
    }

    /// Effect profiles measured on this node, by effect name.
    pub fn profiles(&self) -> std::collections::BTreeMap<String, EffectProfile> {
        self.executor.profiles().all().clone()
    }

    /// What the node has done since it opened.
    pub fn counters(&self) -> NodeCounters {
        self.counters.get()
    }

    /// The newest workflow log events, oldest first (at most 10 000).
    pub fn logs(&self) -> Vec<LogEvent> {
        self.logs.snapshot()
    }

    /// Every log event from now on, as it is emitted. A receiver that falls
    /// more than 4096 events behind misses the oldest (`Lagged`).
    pub fn subscribe_logs(&self) -> tokio::sync::broadcast::Receiver<LogEvent> {
        self.logs.follow.subscribe()
    }

    /// A run's whole journal, decoded, in order (empty for an unknown run).
    pub async fn journal(
        &self,
        run: RunId,
    ) -> Result<Vec<drover_interpreter::JournalEntry>, NodeError> {
        let journal = self.store.journal(run).await?;
        let mut entries = Vec::with_capacity(journal.len());
        for (_, bytes) in &journal {
            entries.push(codec::decode_entry(bytes)?);
        }
        Ok(entries)
    }

    /// The store the node runs on (programs, deployments, runs).
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// Milliseconds per tick.
    pub fn tick_ms(&self) -> u64 {
        self.tick_ms
    }

    /// The store's counters.
    pub fn store_stats(&self) -> drover_store::StoreStats {
        self.store.stats()
    }

    /// Resolves once the loop has stopped, whether asked to or not.
    pub async fn closed(&self) {
        self.tx.closed().await
    }

    /// Asks the loop to stop (aborting effects in flight, which the next
    /// open performs again) and waits until it has, without closing the
    /// store: for a handle shared with others.
    pub(crate) async fn stop(&self) {
        let _ = self.tx.send(Request::Shutdown).await;
        self.tx.closed().await
    }

    /// Stops the loop (aborting effects in flight, which the next open
    /// performs again) and closes the store.
    pub async fn shutdown(mut self) {
        let _ = self.tx.send(Request::Shutdown).await;
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        // Dropping the last `Arc` joins the store's writer thread, which
        // blocks: do it where blocking is allowed.
        let store = self.store.clone();
        drop(self);
        let _ = tokio::task::spawn_blocking(move || drop(store)).await;
    }
}

impl<S: Store> Drop for NodeHandle<S> {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn summary(v: &str) -> String {
    if v.chars().count() <= SUMMARY_CHARS {
        v.to_owned()
    } else {
        let mut s: String = v.chars().take(SUMMARY_CHARS).collect();
        s.push('…');
        s
    }
}

/// An integration's summary of `(effect, args, effect id, result)`.
pub(crate) type Summarize<'a> =
    dyn Fn(&str, &[Value], u64, Option<Result<&Value, &EffectError>>) -> Option<String> + 'a;

/// Pairs each perform (and child start) with the result that answered it.
/// `summarize` gives an integration's own one-line summary (secrets
/// redacted) of an effect, its arguments and its result when it has one.
pub(crate) fn trace_of(
    entries: &[drover_interpreter::JournalEntry],
    tick_ms: u64,
    summarize: &Summarize<'_>,
) -> Vec<TraceItem> {
    let mut items: Vec<TraceItem> = Vec::new();
    // Each open item's raw arguments, for the summary once its result comes.
    let mut open: HashMap<(u64, u32), (usize, &[Value])> = HashMap::new();
    for e in entries {
        if let Event::EffectDone {
            id,
            attempt,
            result,
        } = &e.event
        {
            if let Some(&(i, args)) = open.get(&(id.0, *attempt)) {
                let item = &mut items[i];
                if item.result.is_none() {
                    if let Some(s) = summarize(&item.effect, args, id.0, Some(result.as_ref())) {
                        item.summary = Some(s);
                    }
                    item.ok = result.is_ok();
                    item.result = Some(summary(&match result {
                        Ok(v) => v.to_string(),
                        Err(err) => format!("error {}: {}", err.kind, err.message),
                    }));
                    item.done_tick = Some(e.tick);
                    item.duration_ms = Some(e.tick.saturating_sub(item.tick) * tick_ms);
                }
            }
        }
        for c in &e.commands {
            let (id, attempt, effect, args) = match c {
                Command::Perform {
                    id,
                    attempt,
                    effect,
                    args,
                    ..
                } => (id.0, *attempt, effect.clone(), args),
                Command::StartChild {
                    id, workflow, args, ..
                } => (id.0, 1, format!("child:{workflow}"), args),
                _ => continue,
            };
            let text: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            open.insert((id, attempt), (items.len(), args.as_slice()));
            let request = summarize(&effect, args, id, None);
            items.push(TraceItem {
                id,
                // Redacted by the integration when it summarises its own
                // effect, so secrets in arguments never reach a trace.
                args: match &request {
                    Some(_) => String::new(),
                    None => summary(&text.join(", ")),
                },
                summary: request,
                effect,
                attempt,
                result: None,
                ok: false,
                tick: e.tick,
                done_tick: None,
                duration_ms: None,
            });
        }
    }
    items
}
