//! Deterministic simulation: drive one run through a seeded random schedule
//! of effect results, failures, late and reordered completions, timers,
//! signals, bogus events and snapshot/restore, checking the interpreter's
//! invariants after every step.
//!
//! Everything random comes from the seed, so a failing seed reproduces
//! exactly: [`SimFailure`]'s message prints the command that reruns it.
//!
//! Invariants checked at every step:
//! - `step` does not panic, and an event it refuses leaves the state as it was;
//! - effect and timer ids are new and strictly increasing; a retry reuses its
//!   effect's id with the next attempt number, and only a timer starts one;
//! - a run produces exactly one terminal command, last in its step, and
//!   refuses every event after it;
//! - timers are never set in the past; argument, fiber, pending and signal
//!   limits hold;
//! - a snapshot restores to an equal state, which then behaves identically
//!   to the original for several steps;
//! - a run that has not ended can always make progress;
//! - at the end, the recorded journal replays to the same commands and state.

use std::collections::BTreeMap;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};

use drover_ir::Value;

use crate::error::EffectError;
use crate::event::{Command, EffectId, Event, TimerId};
use crate::exec::step;
use crate::program::Program;
use crate::replay::{replay, JournalEntry};
use crate::state::{Config, RunState, Status};

/// The environment variable that selects one seed to rerun.
pub const SEED_VAR: &str = "DROVER_SIM_SEED";

/// The seed named by `DROVER_SIM_SEED` (decimal or `0x` hex), if set.
pub fn seed_from_env() -> Option<u64> {
    let s = std::env::var(SEED_VAR).ok()?;
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// A small seeded PRNG (splitmix64): fast, and the same on every platform.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// A random element of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len() as u64) as usize)
    }
}

/// Answers the effects and child workflows of a simulated run. The
/// simulation injects failures on its own; a responder gives the results.
pub trait Responder {
    /// The result of one attempt of `effect`.
    fn effect(
        &mut self,
        rng: &mut Rng,
        effect: &str,
        args: &[Value],
        attempt: u32,
    ) -> Result<Value, EffectError>;

    /// The result of a child workflow.
    fn child(
        &mut self,
        rng: &mut Rng,
        workflow: &str,
        args: &[Value],
    ) -> Result<Value, EffectError> {
        let _ = (workflow, args);
        Ok(random_value(rng))
    }
}

/// A small random value: null, a bool, an int, a string or a short list.
pub fn random_value(rng: &mut Rng) -> Value {
    match rng.below(5) {
        0 => Value::Null,
        1 => Value::Bool(rng.chance(50)),
        2 => Value::Int(rng.below(100) as i64),
        3 => Value::Str(format!("s{}", rng.below(10))),
        _ => Value::List((0..rng.below(3)).map(|i| Value::Int(i as i64)).collect()),
    }
}

/// Answers every effect with a random value.
#[derive(Debug, Default)]
pub struct RandomResponder;

impl Responder for RandomResponder {
    fn effect(
        &mut self,
        rng: &mut Rng,
        _: &str,
        _: &[Value],
        _: u32,
    ) -> Result<Value, EffectError> {
        Ok(random_value(rng))
    }
}

type Script = Box<dyn FnMut(&mut Rng, &[Value], u32) -> Result<Value, EffectError>>;

/// Answers effects by name with scripted functions, and the rest randomly.
#[derive(Default)]
pub struct ScriptedResponder {
    scripts: BTreeMap<String, Script>,
}

impl ScriptedResponder {
    /// A responder with no scripts.
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers `effect` with `f(rng, args, attempt)`.
    pub fn on(
        mut self,
        effect: &str,
        f: impl FnMut(&mut Rng, &[Value], u32) -> Result<Value, EffectError> + 'static,
    ) -> Self {
        self.scripts.insert(effect.to_owned(), Box::new(f));
        self
    }
}

impl Responder for ScriptedResponder {
    fn effect(
        &mut self,
        rng: &mut Rng,
        effect: &str,
        args: &[Value],
        attempt: u32,
    ) -> Result<Value, EffectError> {
        match self.scripts.get_mut(effect) {
            Some(f) => f(rng, args, attempt),
            None => Ok(random_value(rng)),
        }
    }
}

/// One simulated run: what to run, with which seed and responder.
pub struct Simulation {
    pub seed: u64,
    pub workflow: String,
    pub args: Vec<Value>,
    pub config: Config,
    /// Signals sent now and then even when no fiber waits for them.
    pub extra_signals: Vec<String>,
    /// Steps before the simulation stops a run that has not ended.
    pub max_steps: usize,
    pub responder: Box<dyn Responder>,
}

impl fmt::Debug for Simulation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulation")
            .field("seed", &format_args!("{:#x}", self.seed))
            .field("workflow", &self.workflow)
            .finish_non_exhaustive()
    }
}

/// A run the simulation finished without finding a violation.
#[derive(Clone, Debug)]
pub struct SimReport {
    pub steps: usize,
    pub status: Status,
    pub journal: Vec<JournalEntry>,
}

/// A violated invariant, with what reproduces it.
#[derive(Clone, Debug)]
pub struct SimFailure {
    pub seed: u64,
    pub workflow: String,
    pub step: usize,
    pub message: String,
    pub journal: Vec<JournalEntry>,
}

impl fmt::Display for SimFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "simulation of `{}` failed at step {} (seed {:#x}): {}\n\
             reproduce with: {SEED_VAR}={:#x} cargo test -p drover-interpreter sim",
            self.workflow, self.step, self.seed, self.message, self.seed
        )
    }
}

impl std::error::Error for SimFailure {}

/// An effect or child the simulation has been asked to run.
#[derive(Clone, Debug)]
struct Outstanding {
    attempt: u32,
    name: String,
    args: Vec<Value>,
    child: bool,
}

/// A state stepped alongside the restored one, to show they agree.
struct Shadow {
    state: RunState,
    steps_left: u32,
}

struct Driver<'p> {
    program: &'p Program,
    rng: Rng,
    state: RunState,
    shadow: Option<Shadow>,
    tick: u64,
    outstanding: BTreeMap<u64, Outstanding>,
    /// Attempts superseded by a retry, whose results may still arrive late.
    late: Vec<(u64, u32)>,
    /// The last attempt of each effect the simulation answered.
    answered: BTreeMap<u64, u32>,
    timers: BTreeMap<u64, u64>,
    last_id: Option<u64>,
    terminal: bool,
    journal: Vec<JournalEntry>,
    step_no: usize,
}

impl Simulation {
    /// A simulation of `workflow(args)` with default limits and random results.
    pub fn new(seed: u64, workflow: &str, args: Vec<Value>) -> Self {
        Simulation {
            seed,
            workflow: workflow.to_owned(),
            args,
            config: Config::default(),
            extra_signals: Vec::new(),
            max_steps: 300,
            responder: Box::new(RandomResponder),
        }
    }

    /// Runs the simulation to the end of the run or `max_steps`.
    pub fn run(&mut self, program: &Program) -> Result<SimReport, SimFailure> {
        let state = RunState::new(program, &self.workflow, self.config.clone())
            .map_err(|e| self.failure(0, format!("cannot create the run: {e}"), Vec::new()))?;
        let mut d = Driver {
            program,
            rng: Rng::new(self.seed),
            state,
            shadow: None,
            tick: 0,
            outstanding: BTreeMap::new(),
            late: Vec::new(),
            answered: BTreeMap::new(),
            timers: BTreeMap::new(),
            last_id: None,
            terminal: false,
            journal: Vec::new(),
            step_no: 0,
        };
        let result = d.drive(self);
        let journal = std::mem::take(&mut d.journal);
        match result {
            Ok(()) => Ok(SimReport {
                steps: d.step_no,
                status: d.state.status().clone(),
                journal,
            }),
            Err(message) => Err(self.failure(d.step_no, message, journal)),
        }
    }

    fn failure(&self, step: usize, message: String, journal: Vec<JournalEntry>) -> SimFailure {
        SimFailure {
            seed: self.seed,
            workflow: self.workflow.clone(),
            step,
            message,
            journal,
        }
    }
}

impl Driver<'_> {
    fn drive(&mut self, sim: &mut Simulation) -> Result<(), String> {
        self.feed(Event::Start {
            args: sim.args.clone(),
        })?;
        while !self.terminal && self.step_no < sim.max_steps {
            self.act(sim)?;
        }
        if self.terminal {
            // Nothing may follow the end.
            let before = self.state.clone();
            match self.try_step(Event::Cancel {
                reason: "after the end".into(),
            }) {
                Ok(cmds) => return Err(format!("an event after the end produced {cmds:?}")),
                Err(_) if self.state != before => {
                    return Err("a refused event changed the state".into())
                }
                Err(_) => {}
            }
        }
        let replayed = replay(
            self.program,
            &sim.workflow,
            sim.config.clone(),
            &self.journal,
        )
        .map_err(|e| format!("the journal does not replay: {e}"))?;
        if replayed != self.state {
            return Err("the replayed state differs from the simulated one".into());
        }
        Ok(())
    }

    /// Picks and performs one random action.
    fn act(&mut self, sim: &mut Simulation) -> Result<(), String> {
        let awaited: Vec<String> = self
            .state
            .awaited_signals()
            .into_iter()
            .map(str::to_owned)
            .collect();
        if self.outstanding.is_empty() && self.timers.is_empty() && awaited.is_empty() {
            return Err(format!(
                "the run has not ended, yet nothing can make progress: {:?}",
                self.state.status()
            ));
        }
        let roll = self.rng.below(100);
        let ids: Vec<u64> = self.outstanding.keys().copied().collect();
        if roll < 45 && !ids.is_empty() {
            let Some(&id) = self.rng.pick(&ids) else {
                return Ok(());
            };
            let Some(o) = self.outstanding.remove(&id) else {
                return Ok(());
            };
            self.answered.insert(id, o.attempt);
            let result = if self.rng.chance(20) {
                let retryable = self.rng.chance(60);
                Err(EffectError {
                    kind: "sim".into(),
                    message: format!("injected failure of attempt {}", o.attempt),
                    retryable,
                })
            } else if o.child {
                sim.responder.child(&mut self.rng, &o.name, &o.args)
            } else {
                sim.responder
                    .effect(&mut self.rng, &o.name, &o.args, o.attempt)
            };
            self.feed(Event::EffectDone {
                id: EffectId(id),
                attempt: if o.child { 1 } else { o.attempt },
                result,
            })
        } else if roll < 70 && !self.timers.is_empty() {
            let timers: Vec<(u64, u64)> = self.timers.iter().map(|(i, t)| (*i, *t)).collect();
            // Mostly the earliest timer, sometimes any: a late timer is valid.
            let (id, at) = if self.rng.chance(70) {
                timers
                    .iter()
                    .min_by_key(|(_, t)| *t)
                    .copied()
                    .unwrap_or((0, 0))
            } else {
                self.rng.pick(&timers).copied().unwrap_or((0, 0))
            };
            self.timers.remove(&id);
            self.tick = self.tick.max(at);
            self.feed(Event::TimerFired { id: TimerId(id) })
        } else if roll < 85 && !awaited.is_empty() {
            let name = self.rng.pick(&awaited).cloned().unwrap_or_default();
            let value = random_value(&mut self.rng);
            self.feed(Event::Signal { name, value })
        } else if roll < 88 && !sim.extra_signals.is_empty() {
            let name = self
                .rng
                .pick(&sim.extra_signals)
                .cloned()
                .unwrap_or_default();
            let value = random_value(&mut self.rng);
            self.feed_maybe_refused(Event::Signal { name, value })
        } else if roll < 91 && !self.late.is_empty() {
            let i = self.rng.below(self.late.len() as u64) as usize;
            let (id, attempt) = self.late.swap_remove(i);
            let result = Ok(random_value(&mut self.rng));
            let cmds = self.feed_cmds(Event::EffectDone {
                id: EffectId(id),
                attempt,
                result,
            })?;
            if cmds.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "a late result of {id} attempt {attempt} produced {cmds:?}"
                ))
            }
        } else if roll < 94 {
            self.bogus()
        } else if roll < 99 {
            self.snapshot_restore()
        } else {
            self.feed(Event::Cancel {
                reason: "simulated".into(),
            })
        }
    }

    /// Feeds an event the interpreter must refuse, and checks it did so
    /// without changing the state.
    fn bogus(&mut self) -> Result<(), String> {
        let beyond = self.last_id.map_or(0, |i| i + 1) + self.rng.below(5);
        let event = match self.rng.below(4) {
            0 => Event::EffectDone {
                id: EffectId(beyond),
                attempt: 1,
                result: Ok(Value::Null),
            },
            1 => Event::TimerFired {
                id: TimerId(beyond),
            },
            2 => Event::Start { args: Vec::new() },
            _ => match self.outstanding.iter().next() {
                Some((id, o)) => Event::EffectDone {
                    id: EffectId(*id),
                    attempt: o.attempt + 1,
                    result: Ok(Value::Null),
                },
                None => Event::Start { args: Vec::new() },
            },
        };
        let before = self.state.clone();
        match self.try_step(event.clone()) {
            Ok(cmds) => Err(format!("bogus event {event:?} was accepted: {cmds:?}")),
            Err(_) if self.state != before => Err(format!("refused {event:?} changed the state")),
            Err(_) => Ok(()),
        }
    }

    fn snapshot_restore(&mut self) -> Result<(), String> {
        let bytes = self.state.snapshot();
        let restored =
            RunState::restore(&bytes).map_err(|e| format!("a snapshot does not restore: {e}"))?;
        if restored != self.state {
            return Err("a restored snapshot differs from the state it was taken of".into());
        }
        let original = std::mem::replace(&mut self.state, restored);
        self.shadow = Some(Shadow {
            state: original,
            steps_left: 5,
        });
        Ok(())
    }

    /// Steps the run, catching panics.
    fn try_step(&mut self, event: Event) -> Result<Vec<Command>, String> {
        let (program, tick) = (self.program, self.tick);
        let state = &mut self.state;
        match catch_unwind(AssertUnwindSafe(|| step(program, state, tick, event))) {
            Ok(Ok(cmds)) => Ok(cmds),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("PANIC".into()),
        }
    }

    /// Feeds an event that must be accepted.
    fn feed(&mut self, event: Event) -> Result<(), String> {
        self.feed_cmds(event).map(drop)
    }

    /// Feeds an event the interpreter may refuse (a signal over the buffer).
    fn feed_maybe_refused(&mut self, event: Event) -> Result<(), String> {
        let before = self.state.clone();
        match self.try_step(event.clone()) {
            Ok(cmds) => self.accepted(event, cmds).map(drop),
            Err(e) if e == "PANIC" => Err(format!("step panicked on {event:?}")),
            Err(_) if self.state != before => Err(format!("refused {event:?} changed the state")),
            Err(_) => Ok(()),
        }
    }

    fn feed_cmds(&mut self, event: Event) -> Result<Vec<Command>, String> {
        let cmds = self
            .try_step(event.clone())
            .map_err(|e| format!("step refused or panicked on {event:?}: {e}"))?;
        self.accepted(event, cmds)
    }

    /// Checks the commands of an accepted event and records it.
    fn accepted(&mut self, event: Event, cmds: Vec<Command>) -> Result<Vec<Command>, String> {
        self.step_no += 1;
        if let Some(shadow) = &mut self.shadow {
            let theirs =
                step(self.program, &mut shadow.state, self.tick, event.clone()).map_err(|e| {
                    format!("the original state refused what the restored accepted: {e}")
                })?;
            if theirs != cmds || shadow.state != self.state {
                return Err(format!(
                    "a restored snapshot diverged from the original: {cmds:?} vs {theirs:?}"
                ));
            }
            shadow.steps_left -= 1;
            if shadow.steps_left == 0 {
                self.shadow = None;
            }
        }
        let timer_event = matches!(event, Event::TimerFired { .. });
        for (i, cmd) in cmds.iter().enumerate() {
            if self.terminal {
                return Err(format!("{cmd:?} after the run ended"));
            }
            let mut fresh = |id: u64| -> Result<(), String> {
                if self.last_id.is_some_and(|last| id <= last) {
                    return Err(format!(
                        "id {id} is not above the last id {:?}",
                        self.last_id
                    ));
                }
                self.last_id = Some(id);
                Ok(())
            };
            match cmd {
                Command::Perform {
                    id,
                    attempt,
                    effect,
                    args,
                    ..
                } => {
                    let size: usize = args.iter().map(Value::approx_size).sum();
                    if size > self.state.config().max_value_bytes {
                        return Err(format!("perform arguments of {size} bytes"));
                    }
                    if *attempt == 1 {
                        fresh(id.0)?;
                    } else {
                        if !timer_event {
                            return Err(format!("retry {cmd:?} not started by a timer"));
                        }
                        // The previous attempt timed out (so it is still
                        // outstanding and may yet answer, late) or the
                        // simulation failed it.
                        let prev = match self.outstanding.remove(&id.0) {
                            Some(p) => {
                                self.late.push((id.0, p.attempt));
                                Some(p.attempt)
                            }
                            None => self.answered.remove(&id.0),
                        };
                        if prev.map(|p| p + 1) != Some(*attempt) {
                            return Err(format!("{id} attempt {attempt} follows attempt {prev:?}"));
                        }
                    }
                    if self.outstanding.contains_key(&id.0) {
                        return Err(format!("{id} has two live attempts"));
                    }
                    self.outstanding.insert(
                        id.0,
                        Outstanding {
                            attempt: *attempt,
                            name: effect.clone(),
                            args: args.clone(),
                            child: false,
                        },
                    );
                }
                Command::StartChild {
                    id, workflow, args, ..
                } => {
                    fresh(id.0)?;
                    self.outstanding.insert(
                        id.0,
                        Outstanding {
                            attempt: 1,
                            name: workflow.clone(),
                            args: args.clone(),
                            child: true,
                        },
                    );
                }
                Command::StartTimer { id, at_tick } => {
                    fresh(id.0)?;
                    if *at_tick < self.tick {
                        return Err(format!("{id} set for tick {at_tick}, in the past"));
                    }
                    self.timers.insert(id.0, *at_tick);
                }
                Command::Log { .. } => {}
                Command::Complete { .. } | Command::Fail { .. } => {
                    if i + 1 != cmds.len() {
                        return Err(format!("{cmd:?} is not the step's last command"));
                    }
                    self.terminal = true;
                }
            }
        }
        if self.state.status().is_finished() != self.terminal {
            return Err(format!(
                "status {:?} disagrees with the commands {cmds:?}",
                self.state.status()
            ));
        }
        let c = self.state.config();
        if self.state.pending_count() > c.max_pending
            || self.state.fiber_count() > c.max_fibers
            || self.state.buffered_signal_count() > c.max_buffered_signals
        {
            return Err("a limit was exceeded".into());
        }
        self.journal.push(JournalEntry {
            tick: self.tick,
            event,
            commands: cmds.clone(),
        });
        Ok(cmds)
    }
}
