//! The durable single-node runtime: one tokio task owns every live run, steps
//! it through the interpreter, journals each step in the store and carries
//! out the commands only once the journal entry is durable (invariant 2).
//!
//! - [`logic`]: the pure node state machine (`NodeState`): events in,
//!   [`logic::Action`]s out; no tokio, no IO.
//! - `driver`: the tokio loop around it, blocking in one `select!`
//!   (requests, ticks, store appends, effect completions), and [`NodeHandle`].
//! - [`executor`]: activities with resource permits, built-in effects
//!   through an [`EffectHandler`], profiles.
//! - [`services`]: the node's supervision tree (store, loop, ticker,
//!   services, pools, user gen_servers): [`NodeServices`].
//! - `timers`, `codec`, `profile`: the timer table, what is stored, and
//!   effect profiles.

pub mod codec;
mod driver;
pub mod executor;
pub mod integrations;
pub mod logic;
pub(crate) mod owned_task;
mod profile;
pub mod services;
pub mod shipping;
mod timers;
pub mod trigger;

use std::collections::BTreeMap;
use std::path::PathBuf;

use drover_interpreter::{EffectError, WorkflowError};
use drover_ir::wire::ModuleHash;
use drover_ir::Value;
use serde::{Deserialize, Serialize};

pub use codec::CodecError;
pub use driver::{Node, NodeCounters, NodeHandle};
pub use drover_store::{RunFilter, RunId, RunStatus, RunSummary, StoreError};
pub use executor::{EffectCall, EffectHandler, EmbeddedEffects, SinkItem};
pub use integrations::{IntegrationEffects, SetupError};
pub use profile::EffectProfile;
pub use services::{NodeExit, NodeRef, NodeServices, PoolHealth, SupervisedNode};
pub use shipping::{LogShipArgs, LogShipService};
pub use trigger::{TriggerService, TriggerServiceArgs, WorkflowStarter};

/// How a node is set up.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The embedded store's directory.
    pub data_dir: PathBuf,
    /// Milliseconds per tick. Ticks are `wall-clock ms / tick_ms`, so a
    /// timer's `at_tick` means the same after a restart.
    pub tick_ms: u64,
    /// A run's state is snapshotted after every this many journal entries,
    /// so recovery replays at most that many.
    pub snapshot_every: u64,
    /// Capacity of each user-defined resource (`scanner_license = 4`).
    /// Activities needing a resource not listed here are not limited.
    pub resources: BTreeMap<String, u32>,
    /// Requests that may wait for the loop before callers wait too.
    pub inbox_capacity: usize,
    /// Print the workflows' `log` lines to stderr as JSON.
    pub log_to_stderr: bool,
    /// Keep a log event for every step and every effect in the node's log
    /// ring (and print them with `log_to_stderr`).
    pub step_events: bool,
    /// Also print step and effect events to stderr (with `log_to_stderr`).
    pub print_step_events: bool,
    /// The node's name in log events.
    pub node_name: String,
}

impl NodeConfig {
    /// Defaults with the store in `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        NodeConfig {
            data_dir: data_dir.into(),
            tick_ms: 10,
            snapshot_every: 64,
            resources: BTreeMap::new(),
            inbox_capacity: 1024,
            log_to_stderr: false,
            step_events: true,
            print_step_events: false,
            node_name: "local".to_owned(),
        }
    }
}

/// How a run ended; stored in its `Finished` record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    /// It completed with this value (a workflow returning `Result` completes
    /// with `Ok(..)` or `Err(..)`).
    Completed(Value),
    /// The interpreter failed it (cancelled, a limit, an unwrap of `Err`).
    Failed(WorkflowError),
}

impl Outcome {
    /// What a parent awaiting this run as a child receives: `Ok(v)`
    /// completes with `v`, `Err(e)` and failures are non-retryable errors,
    /// as `child::run(..)` behaves natively.
    pub fn as_child_result(&self) -> Result<Value, EffectError> {
        match self {
            Outcome::Completed(Value::Variant(v)) if v.tag == "Ok" => Ok(v.payload.clone()),
            Outcome::Completed(Value::Variant(v)) if v.tag == "Err" => {
                let e: crate::Error = drover_ir::from_value(v.payload.clone())
                    .unwrap_or_else(|_| crate::Error::failed(v.payload.to_string()));
                Err(EffectError {
                    kind: e.kind,
                    message: e.message,
                    retryable: false,
                })
            }
            Outcome::Completed(other) => Ok(other.clone()),
            Outcome::Failed(error) => Err(EffectError {
                kind: error.kind.name().to_owned(),
                message: error.message.clone(),
                retryable: false,
            }),
        }
    }
}

/// A run as [`NodeHandle::status`] reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct RunInfo {
    /// The run.
    pub run: RunId,
    /// Its workflow.
    pub workflow: String,
    /// The program it is pinned to.
    pub program: ModuleHash,
    /// The parent run and effect id, for a child.
    pub parent: Option<(RunId, u64)>,
    /// When it started.
    pub started_at_ms: u64,
    /// How it ended, once it has.
    pub outcome: Option<Outcome>,
    /// Journal entries so far.
    pub journal_len: u64,
}

/// One effect attempt of a run, from its journal, for `drover run` and traces.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TraceItem {
    /// The effect id (the run's sequence number at the perform).
    pub id: u64,
    /// The effect, activity, or `child:<workflow>`.
    pub effect: String,
    /// The attempt, from 1.
    pub attempt: u32,
    /// The arguments, shortened; empty when the integration gives a
    /// [`summary`](Self::summary) instead (it redacts secrets).
    pub args: String,
    /// The integration's one-line summary of request and response, secrets
    /// redacted; `None` for activities, children and `sys.*`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The result, shortened; `None` while no result is journaled.
    pub result: Option<String>,
    /// Whether the result was `Ok`.
    pub ok: bool,
    /// The tick it was performed at.
    pub tick: u64,
    /// The tick its result was journaled at.
    pub done_tick: Option<u64>,
    /// `(done_tick - tick) * tick_ms`: time from perform to journaled result.
    pub duration_ms: Option<u64>,
}

/// What [`Node::open`] found and did.
#[derive(Debug, Default)]
pub struct RecoveryReport {
    /// Runs resumed from the store.
    pub resumed: Vec<RunId>,
    /// Runs whose journal no longer matches their program: not driven.
    pub diverged: Vec<(RunId, String)>,
    /// Runs that could not be loaded (bad bytes, missing program): not driven.
    pub failed: Vec<(RunId, String)>,
    /// Deployments whose program cannot be loaded: (workflow, why); new
    /// starts of these workflows are refused.
    pub bad_deployments: Vec<(String, String)>,
    /// Registered workflows stored and deployed because they were new.
    pub deployed: Vec<String>,
    /// Journal entries replayed in all.
    pub replayed_entries: u64,
    /// What the embedded store found opening its log (a torn tail it cut).
    pub store: Option<drover_store::RecoveryReport>,
}

/// Why a node call failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The store failed or refused.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// Stored bytes do not decode.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// No program is deployed for this workflow.
    #[error("no workflow `{0}` is deployed")]
    UnknownWorkflow(String),
    /// No such run in the store.
    #[error("no run {0}")]
    UnknownRun(RunId),
    /// The run is finished or not driven by this node.
    #[error("run {0} is not running on this node")]
    NotRunning(RunId),
    /// The arguments do not fit the workflow.
    #[error("bad input: {0}")]
    BadInput(String),
    /// Deployed bytes that do not decode, verify or load.
    #[error("bad program: {0}")]
    BadProgram(String),
    /// The interpreter refused an event (a late or duplicate one).
    #[error("refused: {0}")]
    Refused(String),
    /// Two registered fns share a name.
    #[error("registered more than once: {0}")]
    Duplicates(String),
    /// The node loop has stopped.
    #[error("the node is closed")]
    Closed,
}
