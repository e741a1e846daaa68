//! A run's whole state: plain data that serializes, so a run can move between
//! nodes at any step boundary.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use drover_ir::{Block, InstAddr, Policy, Reg, Value, WorkflowId};
use serde::{Deserialize, Serialize};

use crate::error::{InterpError, WorkflowError};
use crate::event::{EffectId, TimerId};
use crate::program::Program;

/// The largest `Config::max_value_depth` allowed.
pub const MAX_VALUE_DEPTH: usize = 256;

/// The limits and clock granularity of a run. Stored in the run's state, so a
/// run keeps the limits it started with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Milliseconds per tick; durations round up to whole ticks.
    pub tick_ms: u64,
    /// Instructions one step may execute, over all fibers.
    pub fuel_per_step: u64,
    /// The largest value (by `Value::approx_size`) an instruction may build
    /// or an effect may take or return.
    pub max_value_bytes: usize,
    /// The deepest value an instruction may build or an event may carry.
    pub max_value_depth: usize,
    /// Live fibers plus finished ones not yet joined, the main fiber included.
    pub max_fibers: usize,
    /// Effects and child workflows waiting for their result.
    pub max_pending: usize,
    /// Signals received that no fiber has taken yet.
    pub max_buffered_signals: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            tick_ms: 10,
            fuel_per_step: 10_000_000,
            max_value_bytes: 1 << 20,
            max_value_depth: 64,
            max_fibers: 1024,
            max_pending: 1024,
            max_buffered_signals: 1024,
        }
    }
}

impl Config {
    fn check(&self) -> Result<(), InterpError> {
        let bad = |what: &str| Err(InterpError::BadConfig(format!("{what} must be at least 1")));
        if self.tick_ms == 0 {
            return bad("tick_ms");
        }
        if self.fuel_per_step == 0 {
            return bad("fuel_per_step");
        }
        if self.max_fibers == 0 {
            return bad("max_fibers");
        }
        if self.max_value_depth < 4 {
            // Results arrive wrapped (`Ok(...)`, `[index, value]`), so a
            // tiny depth would refuse every result.
            return Err(InterpError::BadConfig(
                "max_value_depth must be at least 4".into(),
            ));
        }
        if self.max_value_depth > MAX_VALUE_DEPTH {
            // Values are walked, serialized and dropped recursively; the cap
            // keeps those walks far from the end of a thread's stack.
            return Err(InterpError::BadConfig(format!(
                "max_value_depth must be at most {MAX_VALUE_DEPTH}"
            )));
        }
        Ok(())
    }

    /// Milliseconds as whole ticks, rounded up.
    pub fn ticks(&self, ms: u64) -> u64 {
        ms.div_ceil(self.tick_ms.max(1))
    }
}

/// An effect or child workflow awaiting the result of its current attempt,
/// as [`RunState::pending_effects`] lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingEffect<'a> {
    /// Its id, which with the run id is its idempotency key.
    pub id: EffectId,
    /// The attempt in flight.
    pub attempt: u32,
    /// The effect's name, or the child workflow's.
    pub name: &'a str,
    /// Whether it is a child workflow.
    pub child: bool,
    /// The arguments it was performed with.
    pub args: &'a [Value],
    /// Its retry and timeout policy.
    pub policy: &'a Policy,
    /// The instruction that performed it.
    pub at: InstAddr,
}

/// Where a run is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Status {
    NotStarted,
    Running,
    Completed(Value),
    Failed(WorkflowError),
}

impl Status {
    /// Whether the run has ended.
    pub fn is_finished(&self) -> bool {
        matches!(self, Status::Completed(_) | Status::Failed(_))
    }
}

/// What a suspended fiber waits for; `dst` receives the value that wakes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum Wait {
    /// Runnable, or running.
    Ready,
    Effect {
        id: u64,
        dst: Reg,
    },
    Sleep {
        timer: u64,
    },
    /// `since` orders the waiters of one signal name.
    Signal {
        name: String,
        dst: Reg,
        since: u64,
    },
    Join {
        fiber: u64,
        dst: Reg,
    },
    Race {
        fibers: Vec<u64>,
        dst: Reg,
    },
}

/// One fiber: a frame of registers and the next instruction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Fiber {
    pub(crate) block: Block,
    /// Index of the next instruction in `block`.
    pub(crate) pc: u32,
    pub(crate) regs: Vec<Value>,
    pub(crate) wait: Wait,
}

/// Where the current attempt of a pending effect is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum AttemptState {
    /// Performed, result awaited; `timeout` is its deadline timer.
    InFlight { timeout: Option<u64> },
    /// It timed out; a late result for it is ignored.
    TimedOut,
    /// It failed retryably, or timed out (and then a late result for it is
    /// ignored); waiting for the backoff timer.
    Backoff { timer: u64, timed_out: bool },
}

/// An effect or child workflow waiting for its result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Pending {
    pub(crate) fiber: u64,
    pub(crate) dst: Reg,
    /// Effect name, or child workflow name.
    pub(crate) name: String,
    pub(crate) child: bool,
    pub(crate) args: Vec<Value>,
    pub(crate) policy: Policy,
    pub(crate) attempt: u32,
    pub(crate) state: AttemptState,
    pub(crate) at: InstAddr,
}

/// Why a timer was started.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum TimerPurpose {
    Sleep { fiber: u64 },
    Timeout { effect: u64, attempt: u32 },
    Backoff { effect: u64 },
}

/// A live timer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Timer {
    pub(crate) at_tick: u64,
    pub(crate) purpose: TimerPurpose,
}

/// The state of one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    pub(crate) config: Config,
    pub(crate) workflow: String,
    pub(crate) workflow_id: WorkflowId,
    pub(crate) status: Status,
    /// Live fibers by id; 0 is the main fiber.
    pub(crate) fibers: BTreeMap<u64, Fiber>,
    /// Fibers ready to run, in the order they became ready.
    pub(crate) runnable: VecDeque<u64>,
    pub(crate) next_fiber: u64,
    /// Results of fibers that returned and were not joined yet.
    pub(crate) finished: BTreeMap<u64, Value>,
    /// The sequence effect and timer ids come from.
    pub(crate) next_seq: u64,
    pub(crate) pending: BTreeMap<u64, Pending>,
    pub(crate) timers: BTreeMap<u64, Timer>,
    /// Effects dropped by a race, with the last attempt issued: their late
    /// results are ignored.
    pub(crate) abandoned: BTreeMap<u64, u32>,
    /// Ids that were timers, so a late firing of a stale one is told apart
    /// from a bogus id.
    pub(crate) timer_ids: BTreeSet<u64>,
    pub(crate) signals: BTreeMap<String, VecDeque<Value>>,
    pub(crate) buffered_signals: usize,
    /// Orders signal waiters.
    pub(crate) next_wait: u64,
    pub(crate) tick: u64,
}

impl RunState {
    /// A run of `workflow`, not started yet.
    pub fn new(program: &Program, workflow: &str, config: Config) -> Result<RunState, InterpError> {
        config.check()?;
        let (id, _) = program
            .module()
            .workflow(workflow)
            .ok_or_else(|| InterpError::UnknownWorkflow(workflow.to_owned()))?;
        Ok(RunState {
            config,
            workflow: workflow.to_owned(),
            workflow_id: id,
            status: Status::NotStarted,
            fibers: BTreeMap::new(),
            runnable: VecDeque::new(),
            next_fiber: 0,
            finished: BTreeMap::new(),
            next_seq: 0,
            pending: BTreeMap::new(),
            timers: BTreeMap::new(),
            abandoned: BTreeMap::new(),
            timer_ids: BTreeSet::new(),
            signals: BTreeMap::new(),
            buffered_signals: 0,
            next_wait: 0,
            tick: 0,
        })
    }

    /// Where the run is.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// The run's limits.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The workflow being run.
    pub fn workflow(&self) -> &str {
        &self.workflow
    }

    /// The tick of the last event.
    pub fn tick(&self) -> u64 {
        self.tick
    }

    /// Live fibers.
    pub fn fiber_count(&self) -> usize {
        self.fibers.len()
    }

    /// Effects and child workflows waiting for a result.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// Signals received and not taken yet.
    pub fn buffered_signal_count(&self) -> usize {
        self.buffered_signals
    }

    /// The signal names fibers are waiting for, with repeats, in wait order.
    pub fn awaited_signals(&self) -> Vec<&str> {
        let mut waits: Vec<(u64, &str)> = self
            .fibers
            .values()
            .filter_map(|f| match &f.wait {
                Wait::Signal { name, since, .. } => Some((*since, name.as_str())),
                _ => None,
            })
            .collect();
        waits.sort_unstable();
        waits.into_iter().map(|(_, n)| n).collect()
    }

    /// Effects and child workflows whose current attempt is in flight, in id
    /// order: what a node must perform again after a restart. Attempts in
    /// backoff are left out; their timer issues the next `Perform`.
    pub fn pending_effects(&self) -> Vec<PendingEffect<'_>> {
        self.pending
            .iter()
            .filter(|(_, p)| matches!(p.state, AttemptState::InFlight { .. }))
            .map(|(id, p)| PendingEffect {
                id: EffectId(*id),
                attempt: p.attempt,
                name: &p.name,
                child: p.child,
                args: &p.args,
                policy: &p.policy,
                at: p.at,
            })
            .collect()
    }

    /// Live timers as (id, tick they fire at), in id order: what a node must
    /// arm again after a restart.
    pub fn timers(&self) -> Vec<(TimerId, u64)> {
        self.timers
            .iter()
            .map(|(id, t)| (TimerId(*id), t.at_tick))
            .collect()
    }

    /// The state as MessagePack bytes, for [`RunState::restore`].
    pub fn snapshot(&self) -> Vec<u8> {
        // Serializing plain derived data into a Vec cannot fail: every
        // sequence and map has a known length and writes to a Vec never fail.
        rmp_serde::to_vec(self).expect("RunState serializes infallibly")
    }

    /// A state from [`RunState::snapshot`] bytes. It is checked against the
    /// program at the next step.
    pub fn restore(bytes: &[u8]) -> Result<RunState, InterpError> {
        let state: RunState =
            rmp_serde::from_slice(bytes).map_err(|e| InterpError::BadSnapshot(e.to_string()))?;
        state.config.check()?;
        Ok(state)
    }

    /// Checks everything the hot loop relies on: the workflow is this
    /// program's, and every fiber's frame and position fit it. A restored
    /// snapshot is untrusted data.
    pub(crate) fn check_against(&self, program: &Program) -> Result<(), InterpError> {
        let mismatch = |s: String| Err(InterpError::StateMismatch(s));
        let module = program.module();
        let Some(wf) = module.workflows.get(self.workflow_id.index()) else {
            return mismatch(format!("no workflow {}", self.workflow_id));
        };
        if wf.name != self.workflow {
            return mismatch(format!(
                "workflow {} is `{}`, not `{}`",
                self.workflow_id, wf.name, self.workflow
            ));
        }
        let Some(prep) = program.prepared(self.workflow_id) else {
            return mismatch(format!("no workflow {}", self.workflow_id));
        };
        for (id, f) in &self.fibers {
            if f.regs.len() != prep.num_regs {
                return mismatch(format!(
                    "fiber {id} has {} registers, the workflow {}",
                    f.regs.len(),
                    prep.num_regs
                ));
            }
            let Some(block) = wf.blocks.get(f.block.index()) else {
                return mismatch(format!("fiber {id} is in missing block {}", f.block));
            };
            if f.pc as usize >= block.insts.len() {
                return mismatch(format!("fiber {id} is past the end of {}", f.block));
            }
            let dst = match &f.wait {
                Wait::Effect { dst, .. }
                | Wait::Signal { dst, .. }
                | Wait::Join { dst, .. }
                | Wait::Race { dst, .. } => Some(*dst),
                Wait::Ready | Wait::Sleep { .. } => None,
            };
            if dst.is_some_and(|d| d.index() >= prep.num_regs) {
                return mismatch(format!("fiber {id} waits to write a missing register"));
            }
        }
        for (id, p) in &self.pending {
            match self.fibers.get(&p.fiber) {
                Some(f)
                    if f.wait
                        == (Wait::Effect {
                            id: *id,
                            dst: p.dst,
                        }) => {}
                _ => return mismatch(format!("effect {id} waits for no fiber")),
            }
        }
        for (id, t) in &self.timers {
            if let TimerPurpose::Sleep { fiber } = t.purpose {
                match self.fibers.get(&fiber) {
                    Some(f) if f.wait == (Wait::Sleep { timer: *id }) => {}
                    _ => return mismatch(format!("timer {id} wakes no fiber")),
                }
            }
        }
        Ok(())
    }
}
