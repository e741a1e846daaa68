//! Running a registered workflow's IR locally, in the interpreter, against
//! a [`Responder`]: the IR half of differential tests, whose native half is
//! [`crate::native::run`] with the same responder.

use std::collections::{BTreeMap, VecDeque};

use drover_interpreter::{
    step, Command, Config, EffectError, Event, InterpError, LoadError, Program, RunState, TimerId,
    WorkflowError,
};
use drover_ir::wire::DecodeError;
use drover_ir::Value;

use crate::error::Error;
use crate::native::{self, Installed, Responder};
use crate::registry::{self, WorkflowDef};

/// Child workflows nested deeper than this fail instead of exhausting the stack.
pub const MAX_CHILD_DEPTH: usize = 32;
/// Events one run may take before it is considered stuck in a loop.
pub const MAX_EVENTS: usize = 100_000;

/// Why [`run_ir`] gave no result.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The workflow's embedded IR does not decode.
    #[error("the IR of `{workflow}` does not decode: {source}")]
    Decode {
        workflow: String,
        source: DecodeError,
    },
    /// The interpreter refused the module.
    #[error("the IR of `{workflow}` does not load: {source}")]
    Load { workflow: String, source: LoadError },
    /// The interpreter refused an event: a harness or interpreter bug.
    #[error("the interpreter refused an event of `{workflow}`: {source}")]
    Interp {
        workflow: String,
        source: InterpError,
    },
    /// The run failed.
    #[error("`{workflow}` failed: {error}")]
    Failed {
        workflow: String,
        error: WorkflowError,
    },
    /// A child workflow that is not registered.
    #[error("no workflow `{0}` is registered")]
    UnknownWorkflow(String),
    /// The run waits for something nothing will send.
    #[error("`{workflow}` is stuck: nothing is pending and it waits for no signal")]
    Stuck { workflow: String },
    /// A limit of this harness was hit.
    #[error("`{workflow}` exceeded the harness limit: {what}")]
    Limit { workflow: String, what: String },
}

/// Runs `def`'s IR with `args` (one value per parameter) to its end and
/// gives the value it completes with.
///
/// Effects are answered as a node would, but at once: built-in effects and
/// `signal.NAME` by `responder`; activities by the registered
/// [`registry::ActivityDef`] run natively (their own effects also go to
/// `responder`); pure fns from the registry; timers fire when nothing else
/// is pending; child workflows run recursively by name from the registry,
/// and a child that completes with `Ok(v)`/`Err(e)` gives exactly that to
/// its caller, as the native `child::run(..)` does. Log lines go to
/// [`Responder::log`].
///
/// Attribute-level policies (`#[activity(retry(..))]`) are the node's
/// business and are not applied here, matching native runs.
pub fn run_ir(
    def: &WorkflowDef,
    args: Vec<Value>,
    responder: impl Responder + 'static,
) -> Result<Value, RunError> {
    let _installed = Installed::new(Box::new(responder));
    run_def(def, args, 0)
}

fn run_def(def: &WorkflowDef, args: Vec<Value>, depth: usize) -> Result<Value, RunError> {
    let workflow = def.name.to_owned();
    let module = def.module().map_err(|source| RunError::Decode {
        workflow: workflow.clone(),
        source,
    })?;
    let program = Program::new(module)
        .map_err(|source| RunError::Load {
            workflow: workflow.clone(),
            source,
        })?
        .with_pure(registry::pure_fns());
    let interp = |source| RunError::Interp {
        workflow: workflow.clone(),
        source,
    };
    let mut state = RunState::new(&program, def.name, Config::default()).map_err(interp)?;
    let mut tick = 0;
    let mut ready = VecDeque::from([Event::Start { args }]);
    // Timers by (tick, id): they fire in time order once nothing else is ready.
    let mut timers: BTreeMap<(u64, u64), TimerId> = BTreeMap::new();
    for _ in 0..MAX_EVENTS {
        let event = if let Some(e) = ready.pop_front() {
            e
        } else if let Some(((at_tick, _), id)) = timers.pop_first() {
            tick = at_tick.max(tick);
            Event::TimerFired { id }
        } else if let Some(name) = state.awaited_signals().first().map(|s| s.to_string()) {
            let value = native::respond(&format!("signal.{name}"), Vec::new()).map_err(|e| {
                RunError::Stuck {
                    workflow: format!("{workflow} (signal `{name}`: {e})"),
                }
            })?;
            Event::Signal { name, value }
        } else {
            return Err(RunError::Stuck { workflow });
        };
        for cmd in step(&program, &mut state, tick, event).map_err(interp)? {
            match cmd {
                Command::Perform {
                    id,
                    attempt,
                    effect,
                    args,
                    ..
                } => {
                    let result = perform(&effect, args).map_err(effect_error);
                    ready.push_back(Event::EffectDone {
                        id,
                        attempt,
                        result,
                    });
                }
                Command::StartTimer { id, at_tick } => {
                    timers.insert((at_tick, id.0), id);
                }
                Command::StartChild {
                    id,
                    workflow: child,
                    args,
                    ..
                } => {
                    let result = run_child(&child, args, depth)?;
                    ready.push_back(Event::EffectDone {
                        id,
                        attempt: 1,
                        result,
                    });
                }
                Command::Log {
                    level,
                    message,
                    fields,
                    ..
                } => native::log(level, &message, &fields),
                Command::Complete { value } => return Ok(value),
                Command::Fail { error } => return Err(RunError::Failed { workflow, error }),
            }
        }
    }
    Err(RunError::Limit {
        workflow,
        what: format!("more than {MAX_EVENTS} events"),
    })
}

/// Every failure is retryable here, as natively: the harness has no way to
/// know better, and the policy bounds the attempts.
fn effect_error(e: Error) -> EffectError {
    EffectError {
        kind: e.kind,
        message: e.message,
        retryable: true,
    }
}

fn perform(effect: &str, args: Vec<Value>) -> Result<Value, Error> {
    match registry::activity(effect) {
        Some(a) => futures::executor::block_on((a.call)(args)),
        None => native::respond(effect, args),
    }
}

fn run_child(
    name: &str,
    args: Vec<Value>,
    depth: usize,
) -> Result<Result<Value, EffectError>, RunError> {
    if depth >= MAX_CHILD_DEPTH {
        return Err(RunError::Limit {
            workflow: name.to_owned(),
            what: format!("child workflows nested more than {MAX_CHILD_DEPTH} deep"),
        });
    }
    let def = registry::workflow(name).ok_or_else(|| RunError::UnknownWorkflow(name.to_owned()))?;
    match run_def(def, args, depth + 1) {
        Ok(Value::Variant(v)) if v.tag == "Ok" => Ok(Ok(v.payload)),
        Ok(Value::Variant(v)) if v.tag == "Err" => {
            let e: Error = drover_ir::from_value(v.payload.clone())
                .unwrap_or_else(|_| Error::failed(v.payload.to_string()));
            Ok(Err(EffectError {
                kind: e.kind,
                message: e.message,
                retryable: false,
            }))
        }
        Ok(other) => Ok(Ok(other)),
        Err(RunError::Failed { error, .. }) => Ok(Err(EffectError {
            kind: error.kind.name().to_owned(),
            message: error.message,
            retryable: false,
        })),
        Err(other) => Err(other),
    }
}
