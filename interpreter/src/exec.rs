//! [`step`]: check an event, apply it, then run fibers until each one
//! suspends, returns or fails.
//!
//! Scheduling is deterministic: fibers run one at a time from a FIFO queue
//! in the order they became ready, and each runs until it suspends. Every
//! check that can reject an event happens before the state is touched, so a
//! step that returns `Err` leaves the state as it was.

use std::panic::{catch_unwind, AssertUnwindSafe};

use drover_ir::{Block, EffectRef, Inst, InstAddr, Module, Policy, Reg, Symbol, Value};

use crate::builtins;
use crate::error::{EffectError, ErrorKind, InterpError, WorkflowError};
use crate::event::{Command, EffectId, Event, TimerId};
use crate::ops::{self, check_limits, fault, type_error, Arith, Cmp, Fault, Res};
use crate::program::Program;
use crate::state::{
    AttemptState, Config, Fiber, Pending, RunState, Status, Timer, TimerPurpose, Wait,
};

/// Applies `event` at `tick` to the run and returns the commands it causes.
///
/// `tick` never goes backwards. An `Err` means the event was refused (a bogus
/// id, an event after the end, a state that does not fit the program) and the
/// state is unchanged; a workflow that fails is `Ok` with a final
/// [`Command::Fail`].
pub fn step(
    program: &Program,
    state: &mut RunState,
    tick: u64,
    event: Event,
) -> Result<Vec<Command>, InterpError> {
    step_inner(program, state, tick, event, None)
}

/// One instruction a traced step ran, in the order it ran.
#[derive(Clone, Debug, PartialEq)]
pub struct Executed {
    /// The fiber that ran it.
    pub fiber: u64,
    /// Where it is.
    pub at: InstAddr,
    /// The register it wrote, with the value, when it wrote one then. An
    /// instruction that waits (an effect, a timer, a join) writes its
    /// register when the run resumes, in a later step.
    pub wrote: Option<(Reg, Value)>,
}

/// [`step`], also returning every instruction the step ran and what each
/// wrote, ending with the one a fiber failed at if it failed: the trace
/// `drover replay --step` walks one instruction at a time. The commands and the state afterwards are exactly those of
/// [`step`]; the untraced path pays nothing for this (the hot loop is
/// compiled twice).
pub fn step_traced(
    program: &Program,
    state: &mut RunState,
    tick: u64,
    event: Event,
) -> Result<(Vec<Command>, Vec<Executed>), InterpError> {
    let mut trace = Vec::new();
    let cmds = step_inner(program, state, tick, event, Some(&mut trace))?;
    Ok((cmds, trace))
}

fn step_inner(
    program: &Program,
    state: &mut RunState,
    tick: u64,
    event: Event,
    trace: Option<&mut Vec<Executed>>,
) -> Result<Vec<Command>, InterpError> {
    state.check_against(program)?;
    match (&state.status, &event) {
        (Status::NotStarted, Event::Start { .. }) => {}
        (Status::NotStarted, _) => return Err(InterpError::NotStarted),
        (Status::Running, Event::Start { .. }) => return Err(InterpError::AlreadyStarted),
        (Status::Running, _) => {}
        (Status::Completed(_) | Status::Failed(_), _) => return Err(InterpError::Finished),
    }
    if tick < state.tick {
        return Err(InterpError::TickWentBackwards {
            tick,
            current: state.tick,
        });
    }
    let apply = validate(program, state, tick, &event)?;
    state.tick = tick;
    let fuel = state.config.fuel_per_step;
    let mut m = Machine {
        program,
        module: program.module(),
        state,
        cmds: Vec::new(),
        fuel,
        trace,
    };
    if apply {
        m.apply(event);
        m.run();
    }
    Ok(m.cmds)
}

/// Whether the event is to be applied (`false`: it is late and ignored), or
/// why it is refused. Reads the state only.
fn validate(
    program: &Program,
    state: &RunState,
    tick: u64,
    event: &Event,
) -> Result<bool, InterpError> {
    match event {
        Event::Start { args } => {
            let expected = program
                .prepared(state.workflow_id)
                .map_or(0, |p| p.num_params);
            if args.len() != expected {
                return Err(InterpError::Arity {
                    workflow: state.workflow.clone(),
                    expected,
                    got: args.len(),
                });
            }
            Ok(true)
        }
        Event::EffectDone { id, attempt, .. } => {
            let (id, attempt) = (id.0, *attempt);
            if attempt == 0 {
                return Err(InterpError::FutureAttempt { id, attempt });
            }
            if let Some(p) = state.pending.get(&id) {
                if attempt < p.attempt {
                    return Ok(false);
                }
                if attempt > p.attempt {
                    return Err(InterpError::FutureAttempt { id, attempt });
                }
                return match p.state {
                    AttemptState::InFlight { .. } => Ok(true),
                    AttemptState::TimedOut => Ok(false),
                    AttemptState::Backoff {
                        timed_out: true, ..
                    } => Ok(false),
                    AttemptState::Backoff { .. } => Err(InterpError::EffectFinished(id)),
                };
            }
            if let Some(&last) = state.abandoned.get(&id) {
                return if attempt <= last {
                    Ok(false)
                } else {
                    Err(InterpError::FutureAttempt { id, attempt })
                };
            }
            if id < state.next_seq {
                Err(InterpError::EffectFinished(id))
            } else {
                Err(InterpError::UnknownEffect(id))
            }
        }
        Event::TimerFired { id } => match state.timers.get(&id.0) {
            Some(t) if tick < t.at_tick => Err(InterpError::TimerEarly {
                id: id.0,
                tick,
                at_tick: t.at_tick,
            }),
            Some(_) => Ok(true),
            // A timer whose purpose went away (its effect finished, its
            // fiber was cancelled) still fires; nothing cancels timers.
            None if id.0 < state.next_seq => Ok(false),
            None => Err(InterpError::UnknownTimer(id.0)),
        },
        Event::Signal { name, value } => {
            if let Err(f) = check_limits(value, &state.config, "the signal value") {
                return Err(InterpError::SignalTooLarge {
                    name: name.clone(),
                    reason: f.message,
                });
            }
            let waited = state
                .fibers
                .values()
                .any(|f| matches!(&f.wait, Wait::Signal { name: n, .. } if n == name));
            if !waited && state.buffered_signals >= state.config.max_buffered_signals {
                return Err(InterpError::SignalBufferFull(name.clone()));
            }
            Ok(true)
        }
        Event::Cancel { .. } => Ok(true),
    }
}

/// How a fiber stopped running.
enum Exit {
    Suspend,
    Return(Value),
    Fail(WorkflowError),
}

/// What an instruction that may wait did: produced its value now, or waits.
enum Flow {
    Value(Value),
    Wait(Wait),
}

/// The fiber handle `spawn` returns.
fn handle_value(id: u64) -> Value {
    Value::variant("Fiber", Value::Int(id as i64))
}

fn handle_of(op: &str, v: &Value) -> Res<u64> {
    match v {
        Value::Variant(var) if var.tag == "Fiber" => match var.payload {
            Value::Int(i) if i >= 0 => Ok(i as u64),
            _ => Err(type_error(op, "takes fiber handles", &[v])),
        },
        _ => Err(type_error(op, "takes fiber handles", &[v])),
    }
}

fn bad_handle(op: &str, id: u64, why: &str) -> Box<Fault> {
    fault(ErrorKind::BadHandle, format!("`{op}` on fiber {id}: {why}"))
}

fn fail_message(v: &Value) -> String {
    match v {
        Value::Str(s) => format!("`fail`: {s}"),
        other => match other.get_field("message").and_then(Value::as_str) {
            Some(m) => format!("`fail`: {m}"),
            None => format!("`fail` with {other}"),
        },
    }
}

/// One step in progress.
struct Machine<'a> {
    program: &'a Program,
    module: &'a Module,
    state: &'a mut RunState,
    cmds: Vec<Command>,
    fuel: u64,
    /// Where a traced step records the instructions it runs.
    trace: Option<&'a mut Vec<Executed>>,
}

impl Machine<'_> {
    fn alloc_seq(&mut self) -> u64 {
        let id = self.state.next_seq;
        self.state.next_seq += 1;
        id
    }

    fn apply(&mut self, event: Event) {
        match event {
            Event::Start { args } => self.start(args),
            Event::EffectDone { id, result, .. } => self.effect_done(id.0, result),
            Event::TimerFired { id } => self.timer_fired(id.0),
            Event::Signal { name, value } => self.signal(name, value),
            Event::Cancel { reason } => self.fail_run(WorkflowError::new(
                ErrorKind::Cancelled,
                format!("the run was cancelled: {reason}"),
                None,
            )),
        }
    }

    fn start(&mut self, args: Vec<Value>) {
        let num_regs = self
            .program
            .prepared(self.state.workflow_id)
            .map_or(0, |p| p.num_regs);
        let mut regs = vec![Value::Null; num_regs];
        let too_large = ops::check_all(&args, &self.state.config, "the workflow's arguments");
        for (r, a) in regs.iter_mut().zip(args) {
            *r = a;
        }
        self.state.status = Status::Running;
        self.state.fibers.insert(
            0,
            Fiber {
                block: Block(0),
                pc: 0,
                regs,
                wait: Wait::Ready,
            },
        );
        self.state.next_fiber = 1;
        self.state.runnable.push_back(0);
        if let Err(f) = too_large {
            self.fail_run(into_error(f, None));
        }
    }

    fn fail_run(&mut self, error: WorkflowError) {
        self.state.status = Status::Failed(error.clone());
        self.state.runnable.clear();
        self.cmds.push(Command::Fail { error });
    }

    fn complete(&mut self, value: Value) {
        if let Err(f) = check_limits(&value, &self.state.config, "the run's result") {
            return self.fail_run(into_error(f, None));
        }
        self.state.status = Status::Completed(value.clone());
        self.state.runnable.clear();
        self.cmds.push(Command::Complete { value });
    }

    /// Makes a waiting fiber runnable, writing `set` into its register.
    fn wake(&mut self, fiber: u64, set: Option<(Reg, Value)>) {
        if let Some(f) = self.state.fibers.get_mut(&fiber) {
            if let Some((dst, v)) = set {
                if let Some(r) = f.regs.get_mut(dst.index()) {
                    *r = v;
                }
            }
            f.wait = Wait::Ready;
            self.state.runnable.push_back(fiber);
        }
    }

    /// Wakes the fiber a pending effect belongs to with `value`.
    fn deliver(&mut self, p: Pending, value: Value) {
        match check_limits(&value, &self.state.config, "the effect's result") {
            Ok(()) => self.wake(p.fiber, Some((p.dst, value))),
            Err(f) => self.fail_run(into_error(f, Some(p.at))),
        }
    }

    fn effect_done(&mut self, id: u64, result: Result<Value, EffectError>) {
        let Some(p) = self.state.pending.get(&id) else {
            return;
        };
        if let AttemptState::InFlight { timeout: Some(t) } = p.state {
            self.state.timers.remove(&t);
        }
        match result {
            Ok(v) => {
                if let Some(p) = self.state.pending.remove(&id) {
                    self.deliver(p, Value::ok(v));
                }
            }
            Err(e) => self.attempt_failed(id, e),
        }
    }

    /// The current attempt of effect `id` failed: retry after a backoff if
    /// the error and the policy allow, else give the fiber `Err`.
    fn attempt_failed(&mut self, id: u64, e: EffectError) {
        let Some(p) = self.state.pending.get(&id) else {
            return;
        };
        if !p.child && e.retryable && p.attempt < p.policy.max_attempts() {
            let ms = p.policy.retry.map_or(0, |r| r.backoff_ms(p.attempt));
            let at_tick = self.state.tick.saturating_add(self.state.config.ticks(ms));
            let timer = self.alloc_seq();
            self.state.timers.insert(
                timer,
                Timer {
                    at_tick,
                    purpose: TimerPurpose::Backoff { effect: id },
                },
            );
            if let Some(p) = self.state.pending.get_mut(&id) {
                let timed_out = p.state == AttemptState::TimedOut;
                p.state = AttemptState::Backoff { timer, timed_out };
            }
            self.cmds.push(Command::StartTimer {
                id: TimerId(timer),
                at_tick,
            });
        } else if let Some(p) = self.state.pending.remove(&id) {
            if p.state == AttemptState::TimedOut {
                // Its result may still arrive; it is ignored then.
                self.state.abandoned.insert(id, p.attempt);
            }
            let err = ops::error_record(&e.kind, &e.message);
            self.deliver(p, Value::err(err));
        }
    }

    /// Emits the next attempt of pending effect `id`, with its timeout timer.
    fn issue_attempt(&mut self, id: u64) {
        let Some(timeout_ms) = self.state.pending.get(&id).map(|p| p.policy.timeout_ms) else {
            return;
        };
        let timeout = timeout_ms.map(|ms| {
            let at_tick = self.state.tick.saturating_add(self.state.config.ticks(ms));
            (self.alloc_seq(), at_tick)
        });
        let Some(p) = self.state.pending.get_mut(&id) else {
            return;
        };
        p.attempt += 1;
        p.state = AttemptState::InFlight {
            timeout: timeout.map(|(t, _)| t),
        };
        self.cmds.push(Command::Perform {
            id: EffectId(id),
            attempt: p.attempt,
            effect: p.name.clone(),
            args: p.args.clone(),
            policy: p.policy,
            at: p.at,
        });
        if let Some((timer, at_tick)) = timeout {
            let attempt = p.attempt;
            self.state.timers.insert(
                timer,
                Timer {
                    at_tick,
                    purpose: TimerPurpose::Timeout {
                        effect: id,
                        attempt,
                    },
                },
            );
            self.cmds.push(Command::StartTimer {
                id: TimerId(timer),
                at_tick,
            });
        }
    }

    fn timer_fired(&mut self, id: u64) {
        let Some(timer) = self.state.timers.remove(&id) else {
            return;
        };
        match timer.purpose {
            TimerPurpose::Sleep { fiber } => self.wake(fiber, None),
            TimerPurpose::Timeout { effect, attempt } => {
                let Some(p) = self.state.pending.get_mut(&effect) else {
                    return;
                };
                if p.attempt != attempt || p.state != (AttemptState::InFlight { timeout: Some(id) })
                {
                    return;
                }
                p.state = AttemptState::TimedOut;
                let ms = p.policy.timeout_ms.unwrap_or(0);
                self.attempt_failed(
                    effect,
                    EffectError {
                        kind: "timeout".into(),
                        message: format!("attempt {attempt} did not finish within {ms} ms"),
                        retryable: true,
                    },
                );
            }
            TimerPurpose::Backoff { effect } => self.issue_attempt(effect),
        }
    }

    fn signal(&mut self, name: String, value: Value) {
        let waiter = self
            .state
            .fibers
            .iter()
            .filter_map(|(id, f)| match &f.wait {
                Wait::Signal {
                    name: n,
                    dst,
                    since,
                } if *n == name => Some((*since, *id, *dst)),
                _ => None,
            })
            .min();
        match waiter {
            Some((_, fiber, dst)) => self.wake(fiber, Some((dst, value))),
            None => {
                self.state.signals.entry(name).or_default().push_back(value);
                self.state.buffered_signals += 1;
            }
        }
    }

    /// Runs fibers until none is runnable or the run ends.
    fn run(&mut self) {
        while !self.state.status.is_finished() {
            let Some(id) = self.state.runnable.pop_front() else {
                break;
            };
            // The fiber leaves the map while it runs, so instructions that
            // touch other fibers (spawn, race) can borrow the map freely.
            let Some(mut fiber) = self.state.fibers.remove(&id) else {
                continue;
            };
            let exit = if self.trace.is_some() {
                self.run_fiber::<true>(id, &mut fiber)
            } else {
                self.run_fiber::<false>(id, &mut fiber)
            };
            match exit {
                Exit::Suspend => {
                    self.state.fibers.insert(id, fiber);
                }
                Exit::Return(v) if id == 0 => self.complete(v),
                Exit::Return(v) => self.fiber_returned(id, v),
                Exit::Fail(e) => self.fail_run(e),
            }
        }
        let stuck = self.state.status == Status::Running
            && self.state.runnable.is_empty()
            && self.state.pending.is_empty()
            && self.state.timers.is_empty()
            && !self
                .state
                .fibers
                .values()
                .any(|f| matches!(f.wait, Wait::Signal { .. }));
        if stuck {
            self.fail_run(WorkflowError::new(
                ErrorKind::Deadlock,
                "every fiber waits for another fiber, and no effect, timer or signal can wake one",
                None,
            ));
        }
    }

    /// A fiber other than the main one returned `v`: hand it to the fibers
    /// joining or racing it, or keep it for a later `join`.
    fn fiber_returned(&mut self, id: u64, v: Value) {
        let waiters: Vec<(u64, Wait)> = self
            .state
            .fibers
            .iter()
            .filter(|(_, f)| waits_on(&f.wait, id))
            .map(|(w, f)| (*w, f.wait.clone()))
            .collect();
        if waiters.is_empty() {
            self.state.finished.insert(id, v);
            return;
        }
        for (w, wait) in waiters {
            if !self.state.fibers.contains_key(&w) {
                continue;
            }
            match wait {
                Wait::Join { dst, .. } => self.wake(w, Some((dst, v.clone()))),
                Wait::Race { fibers, dst } => {
                    let index = fibers.iter().position(|f| *f == id).unwrap_or(0);
                    let won = Value::List(vec![Value::Int(index as i64), v.clone()]);
                    if let Err(f) = check_limits(&won, &self.state.config, "the race's result") {
                        return self.fail_run(into_error(f, None));
                    }
                    self.wake(w, Some((dst, won)));
                    for other in fibers.into_iter().filter(|f| *f != id) {
                        if let Err(f) = self.cancel_fiber(other, w) {
                            return self.fail_run(into_error(f, None));
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Cancels fiber `x`, which lost a race in fiber `by`: it and its
    /// pending effects and timers are dropped, and late events for them are
    /// ignored. Fibers it spawned keep running. Fails if another fiber still
    /// waits for `x`, which would otherwise wait forever.
    fn cancel_fiber(&mut self, x: u64, by: u64) -> Res<()> {
        self.state.finished.remove(&x);
        if self.state.fibers.remove(&x).is_some() {
            self.state.runnable.retain(|f| *f != x);
            let dropped: Vec<u64> = self
                .state
                .pending
                .iter()
                .filter(|(_, p)| p.fiber == x)
                .map(|(id, _)| *id)
                .collect();
            for id in dropped {
                if let Some(p) = self.state.pending.remove(&id) {
                    self.state.abandoned.insert(id, p.attempt);
                    match p.state {
                        AttemptState::InFlight { timeout: Some(t) }
                        | AttemptState::Backoff { timer: t, .. } => {
                            self.state.timers.remove(&t);
                        }
                        _ => {}
                    }
                }
            }
            self.state
                .timers
                .retain(|_, t| !matches!(t.purpose, TimerPurpose::Sleep { fiber } if fiber == x));
        }
        if let Some(w) = self
            .state
            .fibers
            .iter()
            .find(|(_, f)| waits_on(&f.wait, x))
            .map(|(w, _)| *w)
        {
            return Err(fault(
                ErrorKind::BadHandle,
                format!("fiber {w} waits for fiber {x}, which lost a race in fiber {by} and was cancelled"),
            ));
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)] // The operands of `perform`, plus where it runs.
    fn perform(
        &mut self,
        fiber: u64,
        regs: &[Value],
        dst: Reg,
        effect: EffectRef,
        args: &[Reg],
        policy: &Policy,
        at: InstAddr,
    ) -> Res<Wait> {
        let name = match self.module.effect(effect) {
            Some(e) => e.name.clone(),
            None => return Err(fault(ErrorKind::TypeError, "`perform` of a missing effect")),
        };
        let args = self.take_args("perform", regs, args)?;
        let id = self.alloc_seq();
        self.state.pending.insert(
            id,
            Pending {
                fiber,
                dst,
                name,
                child: false,
                args,
                policy: *policy,
                attempt: 0,
                state: AttemptState::TimedOut,
                at,
            },
        );
        self.issue_attempt(id);
        Ok(Wait::Effect { id, dst })
    }

    /// Copies argument registers, checking the pending limit and the size.
    fn take_args(&self, op: &str, regs: &[Value], args: &[Reg]) -> Res<Vec<Value>> {
        if self.state.pending.len() >= self.state.config.max_pending {
            return Err(fault(
                ErrorKind::LimitExceeded,
                format!(
                    "`{op}` would exceed the limit of {} pending effects",
                    self.state.config.max_pending
                ),
            ));
        }
        let args: Vec<Value> = args
            .iter()
            .map(|r| regs.get(r.index()).cloned().unwrap_or_default())
            .collect();
        ops::check_all(
            &args,
            &self.state.config,
            &format!("the arguments of `{op}`"),
        )?;
        Ok(args)
    }

    fn call_child(
        &mut self,
        fiber: u64,
        regs: &[Value],
        dst: Reg,
        workflow: &Symbol,
        args: &[Reg],
        at: InstAddr,
    ) -> Res<Wait> {
        // A child in this module is checked here; any other is resolved by
        // name when the runtime starts it (each `#[workflow]` compiles to a
        // module of its own), and the runtime checks its arity then.
        if let Some((_, wf)) = self.module.workflow(workflow.as_str()) {
            if wf.params.len() != args.len() {
                return Err(fault(
                    ErrorKind::TypeError,
                    format!(
                        "`call` of `{}` with {} arguments; it takes {}",
                        wf.name,
                        args.len(),
                        wf.params.len()
                    ),
                ));
            }
        }
        let args = self.take_args("call", regs, args)?;
        let id = self.alloc_seq();
        self.state.pending.insert(
            id,
            Pending {
                fiber,
                dst,
                name: workflow.0.clone(),
                child: true,
                args: Vec::new(),
                policy: Policy::default(),
                attempt: 1,
                state: AttemptState::InFlight { timeout: None },
                at,
            },
        );
        self.cmds.push(Command::StartChild {
            id: EffectId(id),
            workflow: workflow.0.clone(),
            args,
            at,
        });
        Ok(Wait::Effect { id, dst })
    }

    fn spawn(&mut self, regs: &[Value], target: Block) -> Res<Value> {
        // The running fiber is out of the map, hence the + 1.
        let live = self.state.fibers.len() + 1 + self.state.finished.len();
        if live >= self.state.config.max_fibers {
            return Err(fault(
                ErrorKind::LimitExceeded,
                format!(
                    "`spawn` would exceed the limit of {} fibers",
                    self.state.config.max_fibers
                ),
            ));
        }
        let id = self.state.next_fiber;
        self.state.next_fiber += 1;
        self.state.fibers.insert(
            id,
            Fiber {
                block: target,
                pc: 0,
                regs: regs.to_vec(),
                wait: Wait::Ready,
            },
        );
        self.state.runnable.push_back(id);
        Ok(handle_value(id))
    }

    fn join(&mut self, me: u64, h: &Value, dst: Reg) -> Res<Flow> {
        let x = handle_of("join", h)?;
        if x == me || x == 0 {
            return Err(bad_handle(
                "join",
                x,
                "a fiber cannot join itself or the main fiber",
            ));
        }
        if let Some(v) = self.state.finished.remove(&x) {
            return Ok(Flow::Value(v));
        }
        if self.state.fibers.contains_key(&x) {
            return Ok(Flow::Wait(Wait::Join { fiber: x, dst }));
        }
        Err(bad_handle(
            "join",
            x,
            "it is not running: already joined, cancelled, or never spawned",
        ))
    }

    fn race(&mut self, me: u64, list: &Value, dst: Reg) -> Res<Flow> {
        let Value::List(items) = list else {
            return Err(type_error("race", "takes a list of fiber handles", &[list]));
        };
        if items.is_empty() {
            return Err(fault(ErrorKind::TypeError, "`race` of an empty list"));
        }
        let ids = items
            .iter()
            .map(|h| handle_of("race", h))
            .collect::<Res<Vec<u64>>>()?;
        for &x in &ids {
            if x == me || x == 0 {
                return Err(bad_handle(
                    "race",
                    x,
                    "a fiber cannot race itself or the main fiber",
                ));
            }
            if !self.state.finished.contains_key(&x) && !self.state.fibers.contains_key(&x) {
                return Err(bad_handle(
                    "race",
                    x,
                    "it is not running: already joined, cancelled, or never spawned",
                ));
            }
        }
        let done = ids
            .iter()
            .enumerate()
            .find(|(_, x)| self.state.finished.contains_key(x))
            .map(|(i, x)| (i, *x));
        let Some((index, winner)) = done else {
            return Ok(Flow::Wait(Wait::Race { fibers: ids, dst }));
        };
        let v = self.state.finished.remove(&winner).unwrap_or_default();
        for &other in ids.iter().filter(|x| **x != winner) {
            self.cancel_fiber(other, me)?;
        }
        let won = Value::List(vec![Value::Int(index as i64), v]);
        check_limits(&won, &self.state.config, "the race's result")?;
        Ok(Flow::Value(won))
    }

    fn sleep(&mut self, fiber: u64, millis: &Value) -> Res<Wait> {
        let ms = match millis {
            Value::Int(ms) if *ms >= 0 => *ms as u64,
            _ => {
                return Err(type_error(
                    "sleep",
                    "takes a non-negative int of milliseconds",
                    &[millis],
                ))
            }
        };
        let at_tick = self.state.tick.saturating_add(self.state.config.ticks(ms));
        let timer = self.alloc_seq();
        self.state.timers.insert(
            timer,
            Timer {
                at_tick,
                purpose: TimerPurpose::Sleep { fiber },
            },
        );
        self.cmds.push(Command::StartTimer {
            id: TimerId(timer),
            at_tick,
        });
        Ok(Wait::Sleep { timer })
    }

    fn await_signal(&mut self, name: &Symbol, dst: Reg) -> Flow {
        if let Some(queue) = self.state.signals.get_mut(name.as_str()) {
            if let Some(v) = queue.pop_front() {
                self.state.buffered_signals = self.state.buffered_signals.saturating_sub(1);
                if queue.is_empty() {
                    self.state.signals.remove(name.as_str());
                }
                return Flow::Value(v);
            }
        }
        let since = self.state.next_wait;
        self.state.next_wait += 1;
        Flow::Wait(Wait::Signal {
            name: name.0.clone(),
            dst,
            since,
        })
    }

    fn call_pure(&self, name: &Symbol, args: &[&Value], config: &Config) -> Res<Value> {
        let Some(f) = self.program.pure_fns().get(name.as_str()) else {
            return Err(fault(
                ErrorKind::UnknownPure,
                format!(
                    "`pure` function `{}` is not registered in this node",
                    name.as_str()
                ),
            ));
        };
        let args: Vec<Value> = args.iter().map(|v| (*v).clone()).collect();
        // A panicking user function fails the run rather than the node.
        let v = match catch_unwind(AssertUnwindSafe(|| f(&args))) {
            Ok(Ok(v)) => v,
            Ok(Err(message)) => {
                return Err(fault(
                    ErrorKind::PureFailed,
                    format!("`pure` function `{}` failed: {message}", name.as_str()),
                ))
            }
            Err(_) => {
                return Err(fault(
                    ErrorKind::PureFailed,
                    format!("`pure` function `{}` panicked", name.as_str()),
                ))
            }
        };
        check_limits(&v, config, "the pure function's result")?;
        Ok(v)
    }

    /// The interpreter's hot loop: runs one fiber until it suspends, returns
    /// or fails. `Program::new` checked every block, constant and effect id,
    /// and `RunState::check_against` every frame, so indexing cannot fail.
    ///
    /// Only the instructions of tight loops are handled here; the rest go
    /// through [`Machine::exec_other`], which keeps this function small
    /// enough for its loop state to stay in registers.
    ///
    /// With `TRACE`, every instruction is recorded as it runs and the
    /// compare-and-branch shortcut is off, so each shows on its own.
    fn run_fiber<const TRACE: bool>(&mut self, me: u64, fiber: &mut Fiber) -> Exit {
        let module = self.module;
        let wid = self.state.workflow_id;
        let config = self.state.config.clone();
        let Some(wf) = module.workflows.get(wid.index()) else {
            return Exit::Fail(WorkflowError::new(
                ErrorKind::TypeError,
                "no workflow",
                None,
            ));
        };
        let blocks = &wf.blocks[..];
        let mut bi = fiber.block.index();
        let mut insts: &[Inst] = match blocks.get(bi) {
            Some(b) => &b.insts,
            None => &[],
        };
        let mut pc = fiber.pc as usize;
        let mut fuel = self.fuel;
        let regs = &mut fiber.regs[..];

        macro_rules! r {
            ($r:expr) => {
                regs[$r.index()]
            };
        }
        macro_rules! tri {
            ($e:expr) => {
                match $e {
                    Ok(v) => v,
                    Err(f) => break f,
                }
            };
        }
        macro_rules! goto {
            ($b:expr) => {{
                bi = $b.index();
                insts = &blocks[bi].insts;
                pc = 0;
            }};
        }
        macro_rules! arith {
            ($op:expr, $checked:ident, $dst:expr, $a:expr, $b:expr) => {{
                match (&r!($a), &r!($b)) {
                    (Value::Int(x), Value::Int(y)) => match x.$checked(*y) {
                        Some(z) => set_int(&mut r!($dst), z),
                        None => break int_fault($op, *x, *y),
                    },
                    (x, y) => {
                        let v = tri!(ops::arith($op, x, y, &config));
                        r!($dst) = v;
                    }
                }
            }};
        }
        // A comparison followed by a branch on its result (the shape of
        // every loop test) takes the branch here, saving one dispatch. The
        // register is still written and the branch still costs its fuel, so
        // the result is the same as running the two separately.
        macro_rules! compare {
            ($op:expr, $rust:tt, $dst:expr, $a:expr, $b:expr) => {{
                let v = match (&r!($a), &r!($b)) {
                    (Value::Int(x), Value::Int(y)) => x $rust y,
                    (x, y) => tri!(ops::compare($op, x, y)),
                };
                set_bool(&mut r!($dst), v);
                if let Some(Inst::Branch {
                    cond,
                    then_block,
                    else_block,
                }) = insts.get(pc)
                {
                    if !TRACE && cond == $dst && fuel > 0 {
                        fuel -= 1;
                        if v {
                            goto!(then_block)
                        } else {
                            goto!(else_block)
                        }
                    }
                }
            }};
        }

        macro_rules! record {
            ($here:expr, $inst:expr, $wrote:expr) => {
                if TRACE {
                    let at = InstAddr::new(wid, Block($here.0 as u32), $here.1 as u32);
                    let wrote = if $wrote {
                        $inst.dst().map(|r| (r, regs[r.index()].clone()))
                    } else {
                        None
                    };
                    if let Some(t) = self.trace.as_deref_mut() {
                        t.push(Executed {
                            fiber: me,
                            at,
                            wrote,
                        });
                    }
                }
            };
        }

        let fault: Box<Fault> = loop {
            let here = (bi, pc);
            let Some(inst) = insts.get(pc) else {
                break fault(
                    ErrorKind::TypeError,
                    "execution ran past the end of a block",
                );
            };
            pc += 1;
            if fuel == 0 {
                break fault(
                    ErrorKind::FuelExhausted,
                    format!(
                        "the step ran out of fuel after {} instructions",
                        config.fuel_per_step
                    ),
                );
            }
            fuel -= 1;
            match inst {
                Inst::Const { dst, value } => match &module.consts[value.index()] {
                    Value::Int(x) => set_int(&mut r!(dst), *x),
                    v => r!(dst) = v.clone(),
                },
                Inst::Move { dst, src } => match r!(src) {
                    Value::Int(x) => set_int(&mut r!(dst), x),
                    ref v => {
                        let v = v.clone();
                        r!(dst) = v;
                    }
                },
                Inst::Add { dst, a, b } => arith!(Arith::Add, checked_add, dst, a, b),
                Inst::Sub { dst, a, b } => arith!(Arith::Sub, checked_sub, dst, a, b),
                Inst::Mul { dst, a, b } => arith!(Arith::Mul, checked_mul, dst, a, b),
                Inst::Div { dst, a, b } => arith!(Arith::Div, checked_div, dst, a, b),
                Inst::Rem { dst, a, b } => arith!(Arith::Rem, checked_rem, dst, a, b),
                Inst::Lt { dst, a, b } => compare!(Cmp::Lt, <, dst, a, b),
                Inst::Le { dst, a, b } => compare!(Cmp::Le, <=, dst, a, b),
                Inst::Gt { dst, a, b } => compare!(Cmp::Gt, >, dst, a, b),
                Inst::Ge { dst, a, b } => compare!(Cmp::Ge, >=, dst, a, b),
                Inst::Jump { target } => goto!(target),
                Inst::Branch {
                    cond,
                    then_block,
                    else_block,
                } => match &r!(cond) {
                    Value::Bool(true) => goto!(then_block),
                    Value::Bool(false) => goto!(else_block),
                    other => break type_error("br", "branches on a bool", &[other]),
                },
                other => {
                    let at = InstAddr::new(wid, Block(bi as u32), (pc - 1) as u32);
                    match tri!(self.exec_other(me, regs, other, at, &config)) {
                        Next::Go => {}
                        Next::Goto(b) => goto!(b),
                        Next::Wait(wait) => {
                            record!(here, other, false);
                            fiber.wait = wait;
                            fiber.block = Block(bi as u32);
                            fiber.pc = pc as u32;
                            self.fuel = fuel;
                            return Exit::Suspend;
                        }
                        Next::Return(v) => {
                            record!(here, other, false);
                            self.fuel = fuel;
                            return Exit::Return(v);
                        }
                    }
                }
            }
            record!(here, inst, true);
        };
        self.fuel = fuel;
        let at = InstAddr::new(wid, Block(bi as u32), pc.saturating_sub(1) as u32);
        if TRACE {
            if let Some(inst) = insts.get(at.index as usize) {
                record!((bi, at.index as usize), inst, false);
            }
        }
        Exit::Fail(into_error(fault, Some(at)))
    }

    /// Every instruction the hot loop does not handle inline.
    #[inline(never)]
    fn exec_other(
        &mut self,
        me: u64,
        regs: &mut [Value],
        inst: &Inst,
        at: InstAddr,
        config: &Config,
    ) -> Res<Next> {
        macro_rules! r {
            ($r:expr) => {
                regs[$r.index()]
            };
        }
        let flow = |dst: &Reg, regs: &mut [Value], f: Flow| match f {
            Flow::Value(v) => {
                regs[dst.index()] = v;
                Next::Go
            }
            Flow::Wait(w) => Next::Wait(w),
        };
        match inst {
            Inst::Const { dst, value } => r!(dst) = self.module.consts[value.index()].clone(),
            Inst::Move { dst, src } => r!(dst) = r!(src).clone(),
            Inst::Neg { dst, a } => r!(dst) = ops::neg(&r!(a))?,
            Inst::Not { dst, a } => r!(dst) = Value::Bool(!ops::boolean("not", &r!(a))?),
            Inst::Add { dst, a, b } => r!(dst) = ops::arith(Arith::Add, &r!(a), &r!(b), config)?,
            Inst::Sub { dst, a, b } => r!(dst) = ops::arith(Arith::Sub, &r!(a), &r!(b), config)?,
            Inst::Mul { dst, a, b } => r!(dst) = ops::arith(Arith::Mul, &r!(a), &r!(b), config)?,
            Inst::Div { dst, a, b } => r!(dst) = ops::arith(Arith::Div, &r!(a), &r!(b), config)?,
            Inst::Rem { dst, a, b } => r!(dst) = ops::arith(Arith::Rem, &r!(a), &r!(b), config)?,
            Inst::Eq { dst, a, b } => r!(dst) = Value::Bool(r!(a) == r!(b)),
            Inst::Ne { dst, a, b } => r!(dst) = Value::Bool(r!(a) != r!(b)),
            Inst::Lt { dst, a, b } => r!(dst) = Value::Bool(ops::compare(Cmp::Lt, &r!(a), &r!(b))?),
            Inst::Le { dst, a, b } => r!(dst) = Value::Bool(ops::compare(Cmp::Le, &r!(a), &r!(b))?),
            Inst::Gt { dst, a, b } => r!(dst) = Value::Bool(ops::compare(Cmp::Gt, &r!(a), &r!(b))?),
            Inst::Ge { dst, a, b } => r!(dst) = Value::Bool(ops::compare(Cmp::Ge, &r!(a), &r!(b))?),
            Inst::And { dst, a, b } => {
                let v = ops::boolean("and", &r!(a))? & ops::boolean("and", &r!(b))?;
                r!(dst) = Value::Bool(v);
            }
            Inst::Or { dst, a, b } => {
                let v = ops::boolean("or", &r!(a))? | ops::boolean("or", &r!(b))?;
                r!(dst) = Value::Bool(v);
            }
            Inst::Field { dst, base, name } => r!(dst) = ops::field(&r!(base), name)?,
            Inst::SetField { base, name, src } => {
                let v = r!(src).clone();
                ops::set_field(&mut r!(base), name, v, config)?;
            }
            Inst::Index { dst, base, key } => r!(dst) = ops::index(&r!(base), &r!(key))?,
            Inst::SetIndex { base, key, src } => {
                let (k, v) = (r!(key).clone(), r!(src).clone());
                ops::set_index(&mut r!(base), &k, v, config)?;
            }
            Inst::Record { dst, fields } => {
                let v = ops::record(fields.iter().map(|(k, reg)| (k, &r!(reg))), config)?;
                r!(dst) = v;
            }
            Inst::List { dst, items } => {
                let v = Value::List(items.iter().map(|reg| r!(reg).clone()).collect());
                check_limits(&v, config, "the list `list` built")?;
                r!(dst) = v;
            }
            Inst::MakeVariant { dst, tag, payload } => {
                let p = payload.map_or(Value::Null, |reg| r!(reg).clone());
                let v = Value::variant(tag.0.clone(), p);
                check_limits(&v, config, "the variant `variant` built")?;
                r!(dst) = v;
            }
            Inst::Payload { dst, src } => r!(dst) = ops::payload(&r!(src)),
            Inst::Unwrap { dst, src } => r!(dst) = ops::unwrap(&r!(src))?,
            Inst::Format {
                dst,
                template,
                args,
            } => {
                let vals: Vec<&Value> = args.iter().map(|reg| &r!(reg)).collect();
                let v = ops::format(template, &vals, config)?;
                r!(dst) = v;
            }
            Inst::CallBuiltin { dst, func, args } => {
                let vals: Vec<&Value> = args.iter().map(|reg| &r!(reg)).collect();
                let v = builtins::call(*func, &vals, config)?;
                r!(dst) = v;
            }
            Inst::CallPure { dst, func, args } => {
                let vals: Vec<&Value> = args.iter().map(|reg| &r!(reg)).collect();
                let v = self.call_pure(func, &vals, config)?;
                r!(dst) = v;
            }
            Inst::Jump { target } => return Ok(Next::Goto(*target)),
            Inst::Branch {
                cond,
                then_block,
                else_block,
            } => {
                return match &r!(cond) {
                    Value::Bool(true) => Ok(Next::Goto(*then_block)),
                    Value::Bool(false) => Ok(Next::Goto(*else_block)),
                    other => Err(type_error("br", "branches on a bool", &[other])),
                }
            }
            Inst::Match { src, arms, default } => {
                return Ok(Next::Goto(ops::match_arm(&r!(src), arms, *default)?))
            }
            Inst::Perform {
                dst,
                effect,
                args,
                policy,
            } => {
                return Ok(Next::Wait(
                    self.perform(me, regs, *dst, *effect, args, policy, at)?,
                ))
            }
            Inst::Call {
                dst,
                workflow,
                args,
            } => {
                return Ok(Next::Wait(
                    self.call_child(me, regs, *dst, workflow, args, at)?,
                ))
            }
            Inst::Spawn { dst, target } => r!(dst) = self.spawn(regs, *target)?,
            Inst::Join { dst, fiber } => {
                let f = self.join(me, &r!(fiber), *dst)?;
                return Ok(flow(dst, regs, f));
            }
            Inst::Race { dst, fibers } => {
                let f = self.race(me, &r!(fibers), *dst)?;
                return Ok(flow(dst, regs, f));
            }
            Inst::Sleep { millis } => return Ok(Next::Wait(self.sleep(me, &r!(millis))?)),
            Inst::AwaitSignal { dst, name } => {
                let f = self.await_signal(name, *dst);
                return Ok(flow(dst, regs, f));
            }
            Inst::Log {
                level,
                message,
                fields,
            } => {
                let fields = fields.map_or(Value::Null, |reg| r!(reg).clone());
                self.cmds.push(Command::Log {
                    level: *level,
                    message: message.clone(),
                    fields,
                    at,
                });
            }
            Inst::Ret { value } => return Ok(Next::Return(std::mem::take(&mut r!(value)))),
            Inst::Fail { error } => {
                let v = std::mem::take(&mut r!(error));
                let mut f = fault(ErrorKind::Failed, fail_message(&v));
                f.value = v;
                return Err(f);
            }
        }
        Ok(Next::Go)
    }
}

/// What the hot loop does after an instruction from [`Machine::exec_other`].
enum Next {
    Go,
    Goto(Block),
    Wait(Wait),
    Return(Value),
}

/// Writes an int into a register, in place when it already holds one, which
/// skips dropping the old value.
#[inline(always)]
fn set_int(slot: &mut Value, x: i64) {
    match slot {
        Value::Int(old) => *old = x,
        other => *other = Value::Int(x),
    }
}

/// Writes a bool into a register, in place when it already holds one.
#[inline(always)]
fn set_bool(slot: &mut Value, b: bool) {
    match slot {
        Value::Bool(old) => *old = b,
        other => *other = Value::Bool(b),
    }
}

#[cold]
#[inline(never)]
fn int_fault(op: Arith, x: i64, y: i64) -> Box<Fault> {
    match ops::int_arith(op, x, y) {
        Err(f) => f,
        // The checked operation failed, so int_arith fails too.
        Ok(_) => fault(ErrorKind::Overflow, "integer arithmetic failed"),
    }
}

fn waits_on(wait: &Wait, x: u64) -> bool {
    match wait {
        Wait::Join { fiber, .. } => *fiber == x,
        Wait::Race { fibers, .. } => fibers.contains(&x),
        _ => false,
    }
}

#[allow(clippy::boxed_local)] // Faults travel boxed; unboxing here is the point.
fn into_error(f: Box<Fault>, at: Option<InstAddr>) -> WorkflowError {
    let Fault {
        kind,
        message,
        value,
    } = *f;
    WorkflowError {
        kind,
        message,
        value,
        at,
    }
}
