//! The node's pure core: live runs, their programs and timers. Events go in,
//! [`Action`]s come out; the driver carries the actions out and reports back
//! (`appended`, effect results as events). No tokio, no clock, no IO: the
//! time is passed in as [`Now`].
//!
//! Per run, at most one append is in flight. Events arriving meanwhile are
//! stepped as one batch when it completes, so journal seqs are written in
//! order and commands are released only after their entry is durable.

use std::collections::{HashMap, VecDeque};

use drover_interpreter::{
    step, Command, Config, EffectError, EffectId, Event, JournalEntry, Program, RunState, Status,
};
use drover_ir::wire::ModuleHash;
use drover_ir::{InstAddr, LogLevel, Value};
use drover_store::{Record, RunData, RunId};

use super::codec;
use super::timers::TimerTable;
use super::{NodeError, Outcome};

/// Callers' events (signals, cancels) one run may have waiting behind its
/// append in flight (invariant 8).
pub const MAX_QUEUED: usize = 10_000;

/// The time, as the driver read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    /// `ms / tick_ms`.
    pub tick: u64,
    /// Wall-clock milliseconds since the Unix epoch.
    pub ms: u64,
}

/// Something the driver must do.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Make these records durable, then call [`NodeState::appended`].
    Append { run: RunId, records: Vec<Record> },
    /// Perform one attempt; report it as `EffectDone` to [`NodeState::deliver`].
    Perform {
        run: RunId,
        id: EffectId,
        attempt: u32,
        effect: String,
        args: Vec<Value>,
        /// The workflow chained `.retry`/`.timeout`: activity defaults yield.
        call_site_policy: bool,
        /// The instruction that performed it.
        at: InstAddr,
    },
    /// A step of `run` was taken and journaled (for the node's step log
    /// event; nothing to carry out).
    Stepped {
        run: RunId,
        /// The program it ran.
        program: ModuleHash,
        /// The instruction of its last command that has one.
        at: Option<InstAddr>,
        /// What it was given: `start`, `effect_done`, `timer`, `signal`, `cancel`.
        event: &'static str,
        /// The journal seq of the entry.
        seq: u64,
    },
    /// Start (or find, by the key `"<parent>/<id>"`) a child run.
    StartChild {
        parent: RunId,
        id: EffectId,
        workflow: String,
        args: Vec<Value>,
    },
    /// A workflow's log line.
    Log {
        run: RunId,
        workflow: String,
        level: LogLevel,
        message: String,
        fields: Value,
        /// The instruction that logged, e.g. `w0:bb2:3`.
        inst: String,
        /// Its source position, `file:line:col`, when the program has one.
        span: Option<String>,
        /// The program the run is pinned to.
        program: ModuleHash,
    },
    /// The run's end is durable: wake waiters, tell the parent.
    Finished {
        run: RunId,
        outcome: Outcome,
        parent: Option<(RunId, u64)>,
    },
    /// Answer the caller that sent an event with this ack token.
    Ack {
        ack: u64,
        result: Result<(), String>,
    },
    /// The store refused the run's append; the node stops driving it, and a
    /// restart resumes it from what is durable.
    Broken { run: RunId, error: String },
}

/// A start checked against its program, waiting for the store to create the
/// run: the first step is taken before, so bad input is refused before
/// anything is stored.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// The workflow.
    pub workflow: String,
    /// Its program.
    pub hash: ModuleHash,
    /// Its arguments.
    pub args: Vec<Value>,
    state: RunState,
    entry: JournalEntry,
}

#[derive(Debug)]
struct LiveRun {
    workflow: String,
    hash: ModuleHash,
    program: Program,
    state: RunState,
    parent: Option<(RunId, u64)>,
    next_seq: u64,
    since_snapshot: u64,
    /// The commands of the append in flight; `Some` while one is.
    inflight: Option<Vec<Command>>,
    inflight_acks: Vec<u64>,
    queued: VecDeque<(Event, Option<u64>)>,
}

/// Why a run could not be resumed.
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    /// The journal does not match what the program now produces.
    #[error("journal seq {seq} diverges: {message}")]
    Diverged {
        /// The entry that differs.
        seq: u64,
        /// What differs.
        message: String,
    },
    /// The stored data does not decode or load.
    #[error("{0}")]
    Bad(String),
    /// A pending child's arguments are before the snapshot: call again with
    /// the full journal.
    #[error("the full journal is needed to restart a pending child")]
    NeedsFullJournal,
}

/// Every live run of the node, the programs they use and their timers.
#[derive(Debug)]
pub struct NodeState {
    tick_ms: u64,
    snapshot_every: u64,
    runs: HashMap<RunId, LiveRun>,
    timers: TimerTable,
    programs: HashMap<ModuleHash, Program>,
    deployed: HashMap<String, ModuleHash>,
}

impl NodeState {
    /// An empty node.
    pub fn new(tick_ms: u64, snapshot_every: u64) -> Self {
        NodeState {
            tick_ms: tick_ms.max(1),
            snapshot_every: snapshot_every.max(1),
            runs: HashMap::new(),
            timers: TimerTable::default(),
            programs: HashMap::new(),
            deployed: HashMap::new(),
        }
    }

    /// Caches a loaded program by its hash.
    pub fn add_program(&mut self, hash: ModuleHash, program: Program) {
        self.programs.insert(hash, program);
    }

    /// The cached program with this hash.
    pub fn program(&self, hash: &ModuleHash) -> Option<&Program> {
        self.programs.get(hash)
    }

    /// New runs of `workflow` use program `hash` (stored and cached).
    pub fn deploy(&mut self, workflow: &str, hash: ModuleHash) {
        self.deployed.insert(workflow.to_owned(), hash);
    }

    /// The program new runs of `workflow` use.
    pub fn deployed(&self, workflow: &str) -> Option<ModuleHash> {
        self.deployed.get(workflow).copied()
    }

    /// Whether this node drives `run`.
    pub fn is_live(&self, run: RunId) -> bool {
        self.runs.contains_key(&run)
    }

    /// The program a live run is pinned to, and its hash.
    pub fn run_program(&self, run: RunId) -> Option<(&Program, ModuleHash)> {
        self.runs.get(&run).map(|l| (&l.program, l.hash))
    }

    /// The index of a live run's workflow in its program's module.
    pub fn run_workflow(&self, run: RunId) -> Option<u32> {
        let live = self.runs.get(&run)?;
        let index = live
            .program
            .module()
            .workflows
            .iter()
            .position(|w| w.name == live.workflow)?;
        Some(index as u32)
    }

    /// Live runs.
    pub fn live_count(&self) -> usize {
        self.runs.len()
    }

    /// Armed timers.
    pub fn timer_count(&self) -> usize {
        self.timers.len()
    }

    fn config(&self) -> Config {
        Config {
            tick_ms: self.tick_ms,
            ..Config::default()
        }
    }

    /// Checks a start of `workflow` against its deployed program by taking
    /// the first step on the side.
    pub fn prepare(
        &self,
        workflow: &str,
        args: Vec<Value>,
        now: Now,
    ) -> Result<Prepared, NodeError> {
        let hash = self
            .deployed(workflow)
            .ok_or_else(|| NodeError::UnknownWorkflow(workflow.to_owned()))?;
        let program = self
            .programs
            .get(&hash)
            .ok_or_else(|| NodeError::UnknownWorkflow(workflow.to_owned()))?;
        let mut state = RunState::new(program, workflow, self.config())
            .map_err(|e| NodeError::BadInput(e.to_string()))?;
        let event = Event::Start { args: args.clone() };
        let commands = step(program, &mut state, now.tick, event.clone())
            .map_err(|e| NodeError::BadInput(e.to_string()))?;
        Ok(Prepared {
            workflow: workflow.to_owned(),
            hash,
            args,
            state,
            entry: JournalEntry {
                tick: now.tick,
                event,
                commands,
            },
        })
    }

    /// Drives a run the store just created from `prepared`: journals its
    /// first step.
    pub fn install(
        &mut self,
        run: RunId,
        prepared: Prepared,
        parent: Option<(RunId, u64)>,
        now: Now,
    ) -> Vec<Action> {
        let Some(program) = self.programs.get(&prepared.hash).cloned() else {
            // `prepare` found it, and programs are never evicted.
            return vec![Action::Broken {
                run,
                error: format!("program {} is not loaded", prepared.hash.short()),
            }];
        };
        self.runs.insert(
            run,
            LiveRun {
                workflow: prepared.workflow,
                hash: prepared.hash,
                program,
                state: prepared.state,
                parent,
                next_seq: 0,
                since_snapshot: 0,
                inflight: None,
                inflight_acks: Vec::new(),
                queued: VecDeque::new(),
            },
        );
        self.journal(run, vec![(prepared.entry, None)], now)
    }

    /// The encoded first journal entry of `prepared`, when it can be made
    /// durable together with the run's start (see
    /// [`Store::start_run_journaled`](drover_store::Store::start_run_journaled)):
    /// not when it ends the run (its `Finished` record goes with it) or is
    /// due for a snapshot.
    pub fn first_entry(&self, prepared: &Prepared) -> Option<Vec<u8>> {
        if self.snapshot_every <= 1 || prepared.entry.commands.iter().any(|c| c.is_terminal()) {
            return None;
        }
        codec::encode_entry(&prepared.entry).ok()
    }

    /// Drives a run the store created together with its first journal entry
    /// (from [`NodeState::first_entry`]): that entry is durable, so its
    /// commands are carried out now.
    pub fn install_journaled(
        &mut self,
        run: RunId,
        prepared: Prepared,
        parent: Option<(RunId, u64)>,
        now: Now,
    ) -> Vec<Action> {
        let Some(program) = self.programs.get(&prepared.hash).cloned() else {
            return vec![Action::Broken {
                run,
                error: format!("program {} is not loaded", prepared.hash.short()),
            }];
        };
        let stepped = Action::Stepped {
            run,
            program: prepared.hash,
            at: prepared.entry.commands.iter().rev().find_map(Command::at),
            event: "start",
            seq: 0,
        };
        self.runs.insert(
            run,
            LiveRun {
                workflow: prepared.workflow,
                hash: prepared.hash,
                program,
                state: prepared.state,
                parent,
                next_seq: 1,
                since_snapshot: 1,
                inflight: Some(prepared.entry.commands),
                inflight_acks: Vec::new(),
                queued: VecDeque::new(),
            },
        );
        let mut actions = vec![stepped];
        actions.extend(self.appended(run, Ok(()), now));
        actions
    }

    /// Resumes a run from the store: restores its snapshot, replays the
    /// journal after it (checking each entry's commands), then re-arms its
    /// timers and performs again the effects with no result yet.
    ///
    /// The interpreter keeps no arguments of a pending child, so they come
    /// from the `StartChild` command in the journal; when that entry is older
    /// than the snapshot the answer is [`RecoverError::NeedsFullJournal`] and
    /// the caller retries with `full_journal` (every entry of the run).
    pub fn recover(
        &mut self,
        data: &RunData,
        program: Program,
        full_journal: Option<&[(u64, Vec<u8>)]>,
        now: Now,
    ) -> Result<(Vec<Action>, u64), RecoverError> {
        let run = data.run;
        let bad = |e: &dyn std::fmt::Display| RecoverError::Bad(e.to_string());
        let (mut state, mut next_seq) = match &data.snapshot {
            Some(s) => (
                RunState::restore(&s.state).map_err(|e| bad(&e))?,
                s.upto_seq + 1,
            ),
            None => (
                RunState::new(&program, &data.start.workflow, self.config())
                    .map_err(|e| bad(&e))?,
                0,
            ),
        };
        let mut replayed = 0;
        let mut child_args: HashMap<u64, Vec<Value>> = HashMap::new();
        let mut note_children = |entry: &JournalEntry| {
            for c in &entry.commands {
                if let Command::StartChild { id, args, .. } = c {
                    child_args.insert(id.0, args.clone());
                }
            }
        };
        for (_, bytes) in full_journal.unwrap_or_default() {
            note_children(&codec::decode_entry(bytes).map_err(|e| bad(&e))?);
        }
        for (seq, bytes) in &data.journal {
            let entry = codec::decode_entry(bytes).map_err(|e| bad(&e))?;
            note_children(&entry);
            let actual =
                step(&program, &mut state, entry.tick, entry.event.clone()).map_err(|e| {
                    RecoverError::Diverged {
                        seq: *seq,
                        message: format!("the interpreter refused the journaled event: {e}"),
                    }
                })?;
            if actual != entry.commands {
                let i = actual
                    .iter()
                    .zip(&entry.commands)
                    .position(|(a, e)| a != e)
                    .unwrap_or(actual.len().min(entry.commands.len()));
                let show =
                    |c: Option<&Command>| c.map_or("nothing".to_owned(), |c| format!("`{c}`"));
                return Err(RecoverError::Diverged {
                    seq: *seq,
                    message: format!(
                        "the program produced {} but the journal recorded {}",
                        show(actual.get(i)),
                        show(entry.commands.get(i))
                    ),
                });
            }
            next_seq = seq + 1;
            replayed += 1;
        }
        let missing = state
            .pending_effects()
            .iter()
            .any(|p| p.child && !child_args.contains_key(&p.id.0));
        if missing {
            // Nothing was changed yet: the caller may call again.
            return Err(if full_journal.is_none() {
                RecoverError::NeedsFullJournal
            } else {
                RecoverError::Bad("a pending child has no StartChild in the journal".into())
            });
        }
        let status = state.status().clone();
        let mut actions = Vec::new();
        let live = LiveRun {
            workflow: data.start.workflow.clone(),
            hash: data.start.program,
            program,
            state,
            parent: data.start.parent,
            next_seq,
            since_snapshot: replayed,
            inflight: None,
            inflight_acks: Vec::new(),
            queued: VecDeque::new(),
        };
        match status {
            Status::NotStarted => {
                // The start is durable but its first step was not: take it
                // again from the stored input.
                let args = codec::decode_input(&data.start.input).map_err(|e| bad(&e))?;
                self.runs.insert(run, live);
                actions.extend(self.deliver(run, Event::Start { args }, None, now));
            }
            Status::Running => {
                for (id, at_tick) in live.state.timers() {
                    self.timers.arm(run, id, at_tick);
                }
                for p in live.state.pending_effects() {
                    actions.push(if p.child {
                        Action::StartChild {
                            parent: run,
                            id: p.id,
                            workflow: p.name.to_owned(),
                            args: child_args.remove(&p.id.0).unwrap_or_default(),
                        }
                    } else {
                        Action::Perform {
                            run,
                            id: p.id,
                            attempt: p.attempt,
                            effect: p.name.to_owned(),
                            args: p.args.to_vec(),
                            call_site_policy: !p.policy.is_default(),
                            at: p.at,
                        }
                    });
                }
                self.runs.insert(run, live);
            }
            // The finish is appended with the terminal entry, atomically, so
            // these only happen with a store that lost it: write it again.
            Status::Completed(value) => {
                actions.push(self.refinish(run, live, Command::Complete { value }, now)?)
            }
            Status::Failed(error) => {
                actions.push(self.refinish(run, live, Command::Fail { error }, now)?)
            }
        }
        Ok((actions, replayed))
    }

    /// Appends the `Finished` record of a run whose journal already ends.
    fn refinish(
        &mut self,
        run: RunId,
        mut live: LiveRun,
        end: Command,
        now: Now,
    ) -> Result<Action, RecoverError> {
        let outcome = codec::encode_outcome(&outcome_of(&end))
            .map_err(|e| RecoverError::Bad(e.to_string()))?;
        live.inflight = Some(vec![end]);
        self.runs.insert(run, live);
        Ok(Action::Append {
            run,
            records: vec![Record::Finished {
                run,
                outcome,
                at_ms: now.ms,
            }],
        })
    }

    /// Gives `event` to `run`: stepped now, or after the append in flight.
    /// `ack` is answered once the event is durable (or refused).
    pub fn deliver(&mut self, run: RunId, event: Event, ack: Option<u64>, now: Now) -> Vec<Action> {
        self.deliver_inner(run, event, ack, ack.is_some(), now)
    }

    /// Gives an effect's result to `run` like [`NodeState::deliver`], and
    /// answers `ack` once it is durable (or the run is gone or broken);
    /// never refused for a full queue, as the run waits for it.
    pub fn deliver_result(&mut self, run: RunId, event: Event, ack: u64, now: Now) -> Vec<Action> {
        self.deliver_inner(run, event, Some(ack), false, now)
    }

    fn deliver_inner(
        &mut self,
        run: RunId,
        event: Event,
        ack: Option<u64>,
        refusable: bool,
        now: Now,
    ) -> Vec<Action> {
        let Some(live) = self.runs.get_mut(&run) else {
            return nack(ack, format!("run {run} is not running on this node"));
        };
        if live.inflight.is_some() {
            // Only callers' events are refused when full: an effect result or
            // a timer dropped here would leave the run waiting forever.
            if refusable && live.queued.len() >= MAX_QUEUED {
                return nack(ack, format!("run {run} has {MAX_QUEUED} events queued"));
            }
            live.queued.push_back((event, ack));
            return Vec::new();
        }
        self.step_batch(run, vec![(event, ack)], now)
    }

    /// Fires every timer due at `now`.
    pub fn tick(&mut self, now: Now) -> Vec<Action> {
        let mut actions = Vec::new();
        for (run, id) in self.timers.pop_due(now.tick) {
            actions.extend(self.deliver(run, Event::TimerFired { id }, None, now));
        }
        actions
    }

    /// The append of `run` finished: on success its commands are carried
    /// out and queued events stepped; on failure the run is dropped.
    pub fn appended(&mut self, run: RunId, result: Result<(), String>, now: Now) -> Vec<Action> {
        let Some(live) = self.runs.get_mut(&run) else {
            return Vec::new();
        };
        let commands = live.inflight.take().unwrap_or_default();
        let acks = std::mem::take(&mut live.inflight_acks);
        let mut actions = Vec::new();
        if let Err(error) = result {
            let live = self.runs.remove(&run).expect("looked up above");
            self.timers.forget(run);
            for ack in acks
                .into_iter()
                .chain(live.queued.into_iter().filter_map(|(_, a)| a))
            {
                actions.extend(nack(Some(ack), error.clone()));
            }
            actions.push(Action::Broken { run, error });
            return actions;
        }
        actions.extend(acks.into_iter().map(|ack| Action::Ack {
            ack,
            result: Ok(()),
        }));
        let workflow = live.workflow.clone();
        let (program, hash) = (live.program.clone(), live.hash);
        let parent = live.parent;
        let mut finished = false;
        for cmd in commands {
            match cmd {
                Command::Perform {
                    id,
                    attempt,
                    effect,
                    args,
                    policy,
                    at,
                } => actions.push(Action::Perform {
                    run,
                    id,
                    attempt,
                    effect,
                    args,
                    call_site_policy: !policy.is_default(),
                    at,
                }),
                Command::StartTimer { id, at_tick } => self.timers.arm(run, id, at_tick),
                Command::StartChild {
                    id, workflow, args, ..
                } => actions.push(Action::StartChild {
                    parent: run,
                    id,
                    workflow,
                    args,
                }),
                Command::Log {
                    level,
                    message,
                    fields,
                    at,
                } => actions.push(Action::Log {
                    run,
                    workflow: workflow.clone(),
                    level,
                    message,
                    fields,
                    inst: at.to_string(),
                    span: program.module().source_map.describe(at),
                    program: hash,
                }),
                Command::Complete { .. } | Command::Fail { .. } => {
                    finished = true;
                    actions.push(Action::Finished {
                        run,
                        outcome: outcome_of(&cmd),
                        parent,
                    });
                }
            }
        }
        if finished {
            let live = self.runs.remove(&run).expect("looked up above");
            self.timers.forget(run);
            for ack in live.queued.into_iter().filter_map(|(_, a)| a) {
                actions.extend(nack(Some(ack), format!("run {run} has finished")));
            }
            return actions;
        }
        let queued: Vec<_> = self
            .runs
            .get_mut(&run)
            .map(|l| l.queued.drain(..).collect())
            .unwrap_or_default();
        if !queued.is_empty() {
            actions.extend(self.step_batch(run, queued, now));
        }
        actions
    }

    /// Steps each event in order and journals the ones the interpreter took.
    fn step_batch(
        &mut self,
        run: RunId,
        events: Vec<(Event, Option<u64>)>,
        now: Now,
    ) -> Vec<Action> {
        let Some(live) = self.runs.get_mut(&run) else {
            return Vec::new();
        };
        let mut actions = Vec::new();
        let mut entries = Vec::new();
        for (event, ack) in events {
            if live.state.status().is_finished() {
                actions.extend(nack(ack, format!("run {run} has finished")));
                continue;
            }
            let tick = now.tick.max(live.state.tick());
            // A refused event leaves the state as it was (the interpreter
            // checks everything that can refuse before it changes anything),
            // so the run's own state is stepped, not a copy.
            match step(&live.program, &mut live.state, tick, event.clone()) {
                Ok(commands) => {
                    entries.push((
                        JournalEntry {
                            tick,
                            event,
                            commands,
                        },
                        ack,
                    ));
                }
                // Late or duplicate results (a child's end delivered twice, a
                // result for an attempt the run gave up on) land here.
                Err(e) => actions.extend(nack(ack, e.to_string())),
            }
        }
        if !entries.is_empty() {
            actions.extend(self.journal(run, entries, now));
        }
        actions
    }

    /// Builds the append for entries already stepped into the run's state.
    fn journal(
        &mut self,
        run: RunId,
        entries: Vec<(JournalEntry, Option<u64>)>,
        now: Now,
    ) -> Vec<Action> {
        let snapshot_every = self.snapshot_every;
        let Some(live) = self.runs.get_mut(&run) else {
            return Vec::new();
        };
        let mut records = Vec::new();
        let mut commands = Vec::new();
        let mut acks = Vec::new();
        let mut stepped = Vec::new();
        for (entry, ack) in entries {
            let seq = live.next_seq;
            stepped.push(Action::Stepped {
                run,
                program: live.hash,
                at: entry.commands.iter().rev().find_map(Command::at),
                event: event_name(&entry.event),
                seq,
            });
            let bytes = match codec::encode_entry(&entry) {
                Ok(b) => b,
                Err(e) => {
                    // Nothing of this batch is durable; stop driving the run
                    // rather than journal a gap.
                    self.runs.remove(&run);
                    self.timers.forget(run);
                    return vec![Action::Broken {
                        run,
                        error: e.to_string(),
                    }];
                }
            };
            records.push(Record::Journal {
                run,
                seq,
                entry: bytes,
            });
            live.next_seq += 1;
            live.since_snapshot += 1;
            if let Some(end) = entry.commands.iter().find(|c| c.is_terminal()) {
                let outcome = codec::encode_outcome(&outcome_of(end)).unwrap_or_default();
                records.push(Record::Finished {
                    run,
                    outcome,
                    at_ms: now.ms,
                });
            }
            commands.extend(entry.commands);
            acks.extend(ack);
        }
        if live.since_snapshot >= snapshot_every && !live.state.status().is_finished() {
            records.push(Record::Snapshot {
                run,
                upto_seq: live.next_seq - 1,
                state: live.state.snapshot(),
            });
            live.since_snapshot = 0;
        }
        live.inflight = Some(commands);
        live.inflight_acks = acks;
        stepped.push(Action::Append { run, records });
        stepped
    }
}

/// The name of an event kind in step log events.
fn event_name(e: &Event) -> &'static str {
    match e {
        Event::Start { .. } => "start",
        Event::EffectDone { .. } => "effect_done",
        Event::TimerFired { .. } => "timer",
        Event::Signal { .. } => "signal",
        Event::Cancel { .. } => "cancel",
    }
}

fn nack(ack: Option<u64>, error: String) -> Vec<Action> {
    ack.map(|ack| Action::Ack {
        ack,
        result: Err(error),
    })
    .into_iter()
    .collect()
}

/// The outcome a terminal command stands for.
fn outcome_of(cmd: &Command) -> Outcome {
    match cmd {
        Command::Fail { error } => Outcome::Failed(error.clone()),
        Command::Complete { value } => Outcome::Completed(value.clone()),
        // Only terminal commands reach here.
        other => Outcome::Completed(Value::Str(other.to_string())),
    }
}

/// The event a parent receives when its child ends.
pub fn child_done(id: u64, outcome: &Outcome) -> Event {
    Event::EffectDone {
        id: EffectId(id),
        attempt: 1,
        result: outcome.as_child_result(),
    }
}

/// The event for a child that could not be started.
pub fn child_failed(id: u64, kind: &str, message: String) -> Event {
    Event::EffectDone {
        id: EffectId(id),
        attempt: 1,
        result: Err(EffectError {
            kind: kind.to_owned(),
            message,
            retryable: false,
        }),
    }
}

#[cfg(test)]
mod tests {
    use drover_interpreter::Event;
    use drover_ir::builder::ModuleBuilder;
    use drover_ir::{EffectKind, Inst, Policy};
    use drover_store::RunStart;

    use super::*;

    /// `w(x)`: `act(act(x))`.
    fn node() -> (NodeState, ModuleHash) {
        let mut m = ModuleBuilder::new();
        let e = m.effect(EffectKind::Activity, "act", &["x"]);
        m.workflow("w", &["x"], |w| {
            let (y, z) = (w.new_reg(), w.new_reg());
            let x = w.param(0);
            for (dst, arg) in [(y, x), (z, y)] {
                w.push(Inst::Perform {
                    dst,
                    effect: e,
                    args: vec![arg],
                    policy: Policy::default(),
                });
            }
            w.push(Inst::Ret { value: z });
        });
        let module = m.finish();
        let hash = drover_ir::wire::hash_bytes(&drover_ir::wire::encode(&module));
        let mut state = NodeState::new(10, 2);
        state.add_program(hash, Program::new(module).unwrap());
        state.deploy("w", hash);
        (state, hash)
    }

    const NOW: Now = Now {
        tick: 100,
        ms: 1000,
    };
    const RUN: RunId = RunId(1);

    fn done(id: u64, v: i64) -> Event {
        Event::EffectDone {
            id: EffectId(id),
            attempt: 1,
            result: Ok(Value::Int(v)),
        }
    }

    fn seqs(actions: &[Action]) -> Vec<String> {
        let mut out = Vec::new();
        for a in actions {
            match a {
                Action::Append { records, .. } => {
                    for r in records {
                        out.push(match r {
                            Record::Journal { seq, .. } => format!("journal {seq}"),
                            Record::Snapshot { upto_seq, .. } => format!("snapshot {upto_seq}"),
                            Record::Finished { .. } => "finished".into(),
                            other => format!("{other:?}"),
                        });
                    }
                }
                Action::Perform { id, args, .. } => {
                    out.push(format!("perform {} {:?}", id.0, args))
                }
                Action::Finished { outcome, .. } => out.push(format!("end {outcome:?}")),
                Action::Ack { ack, result } => out.push(format!("ack {ack} {}", result.is_ok())),
                Action::Stepped { .. } => {}
                other => out.push(format!("{other:?}")),
            }
        }
        out
    }

    #[test]
    fn commands_wait_for_their_append_and_events_queue_behind_it() {
        let (mut s, _) = node();
        let prepared = s.prepare("w", vec![Value::Int(5)], NOW).unwrap();
        // Journaled first; the perform is not released yet.
        assert_eq!(seqs(&s.install(RUN, prepared, None, NOW)), ["journal 0"]);
        // An event meanwhile waits for the append.
        let signal = Event::Signal {
            name: "x".into(),
            value: Value::Null,
        };
        assert!(s.deliver(RUN, signal, Some(3), NOW).is_empty());
        assert_eq!(
            seqs(&s.appended(RUN, Ok(()), NOW)),
            ["perform 0 [5]", "journal 1", "snapshot 1"]
        );
        assert!(s.deliver(RUN, done(0, 6), None, NOW).is_empty());
        assert_eq!(
            seqs(&s.appended(RUN, Ok(()), NOW)),
            ["ack 3 true", "journal 2"]
        );
        assert_eq!(seqs(&s.appended(RUN, Ok(()), NOW)), ["perform 1 [#Ok(6)]"]);
        assert_eq!(
            seqs(&s.deliver(RUN, done(1, 7), None, NOW)),
            ["journal 3", "finished"]
        );
        assert!(s.is_live(RUN));
        assert_eq!(
            seqs(&s.appended(RUN, Ok(()), NOW)),
            ["end Completed(#Ok(7))"]
        );
        assert!(!s.is_live(RUN));
    }

    #[test]
    fn refused_events_and_failed_appends_answer_their_callers() {
        let (mut s, _) = node();
        assert!(matches!(
            s.prepare("w", vec![], NOW),
            Err(NodeError::BadInput(_))
        ));
        assert!(matches!(
            s.prepare("nope", vec![], NOW),
            Err(NodeError::UnknownWorkflow(_))
        ));
        let prepared = s.prepare("w", vec![Value::Int(5)], NOW).unwrap();
        s.install(RUN, prepared, None, NOW);
        s.appended(RUN, Ok(()), NOW);
        // A result for an effect that does not exist changes nothing.
        assert_eq!(
            seqs(&s.deliver(RUN, done(9, 1), Some(1), NOW)),
            ["ack 1 false"]
        );
        s.deliver(RUN, done(0, 6), None, NOW);
        assert!(s
            .deliver(RUN, Event::Cancel { reason: "x".into() }, Some(2), NOW)
            .is_empty());
        let a = s.appended(RUN, Err("disk full".into()), NOW);
        assert_eq!(
            seqs(&a),
            [
                "ack 2 false",
                "Broken { run: RunId(1), error: \"disk full\" }"
            ]
        );
        assert!(!s.is_live(RUN));
        assert_eq!(
            seqs(&s.deliver(RUN, done(0, 1), Some(4), NOW)),
            ["ack 4 false"]
        );
    }

    #[test]
    fn recovery_replays_rearms_and_catches_divergence() {
        let (mut s, hash) = node();
        let prepared = s.prepare("w", vec![Value::Int(5)], NOW).unwrap();
        let program = s.program(&hash).unwrap().clone();
        let mut journal = Vec::new();
        for a in s.install(RUN, prepared, None, NOW) {
            if let Action::Append { records, .. } = a {
                for r in records {
                    if let Record::Journal { seq, entry, .. } = r {
                        journal.push((seq, entry));
                    }
                }
            }
        }
        let data = |journal: Vec<(u64, Vec<u8>)>| RunData {
            run: RunId(2),
            start: RunStart {
                workflow: "w".into(),
                program: hash,
                input: codec::encode_input(&[Value::Int(5)]).unwrap(),
                idempotency_key: None,
                parent: None,
                started_at_ms: 0,
            },
            snapshot: None,
            journal,
            finished: None,
        };
        let (actions, replayed) = s
            .recover(&data(journal.clone()), program.clone(), None, NOW)
            .unwrap();
        assert_eq!(replayed, 1);
        // The effect with no result is performed again, same id and attempt.
        assert_eq!(seqs(&actions), ["perform 0 [5]"]);
        // Nothing journaled but the start: the first step is taken again.
        let (actions, _) = s
            .recover(&data(vec![]), program.clone(), None, NOW)
            .unwrap();
        assert_eq!(seqs(&actions), ["journal 0"]);
        // A journal whose commands the program no longer produces.
        let mut entry = codec::decode_entry(&journal[0].1).unwrap();
        if let Command::Perform { args, .. } = &mut entry.commands[0] {
            args[0] = Value::Int(6);
        }
        let bad = vec![(0, codec::encode_entry(&entry).unwrap())];
        let err = s
            .recover(&data(bad), program.clone(), None, NOW)
            .unwrap_err();
        assert!(
            matches!(err, RecoverError::Diverged { seq: 0, .. }),
            "{err}"
        );
        let garbage = vec![(0, vec![0xc1])];
        let err = s.recover(&data(garbage), program, None, NOW).unwrap_err();
        assert!(matches!(err, RecoverError::Bad(_)), "{err}");
    }
}
