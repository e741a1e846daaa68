//! What goes into a step ([`Event`]) and what comes out ([`Command`]).

use std::fmt;

use drover_ir::{InstAddr, LogLevel, Policy, Value};
use serde::{Deserialize, Serialize};

use crate::error::{EffectError, WorkflowError};

/// The id of an effect or child workflow: the run's sequence number at the
/// `perform`. The runtime pairs it with the run id to form the idempotency
/// key, which is the same for every attempt.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EffectId(pub u64);

/// The id of a timer, from the same sequence as [`EffectId`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TimerId(pub u64);

impl fmt::Display for EffectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "effect#{}", self.0)
    }
}

impl fmt::Debug for EffectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for TimerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timer#{}", self.0)
    }
}

impl fmt::Debug for TimerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Something that happened to a run; the input of [`crate::step`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// Start the run with the workflow's arguments.
    Start { args: Vec<Value> },
    /// An attempt of an effect, or a child workflow (attempt 1), finished.
    EffectDone {
        id: EffectId,
        attempt: u32,
        result: Result<Value, EffectError>,
    },
    /// A timer reached its tick.
    TimerFired { id: TimerId },
    /// A signal sent to the run.
    Signal { name: String, value: Value },
    /// Cancel the run; it fails with `Cancelled`.
    Cancel { reason: String },
}

/// Something the runtime must do; the output of [`crate::step`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Perform one attempt of an effect and report it with `EffectDone`.
    Perform {
        id: EffectId,
        attempt: u32,
        effect: String,
        args: Vec<Value>,
        policy: Policy,
        at: InstAddr,
    },
    /// Send `TimerFired` once the tick reaches `at_tick`. Timers are never
    /// cancelled; the interpreter ignores one that no longer matters.
    StartTimer { id: TimerId, at_tick: u64 },
    /// Run a child workflow and report its end with `EffectDone` (attempt 1).
    StartChild {
        id: EffectId,
        workflow: String,
        args: Vec<Value>,
        at: InstAddr,
    },
    /// A structured log event.
    Log {
        level: LogLevel,
        message: String,
        fields: Value,
        at: InstAddr,
    },
    /// The run completed with a value. Always the last command of a run.
    Complete { value: Value },
    /// The run failed. Always the last command of a run.
    Fail { error: WorkflowError },
}

impl Command {
    /// The instruction that produced the command, if one did.
    pub fn at(&self) -> Option<InstAddr> {
        match self {
            Command::Perform { at, .. }
            | Command::StartChild { at, .. }
            | Command::Log { at, .. } => Some(*at),
            Command::Fail { error } => error.at,
            Command::StartTimer { .. } | Command::Complete { .. } => None,
        }
    }

    /// Whether it ends the run.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Command::Complete { .. } | Command::Fail { .. })
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn list(f: &mut fmt::Formatter<'_>, args: &[Value]) -> fmt::Result {
            for (i, a) in args.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{a}")?;
            }
            Ok(())
        }
        match self {
            Command::Perform {
                id,
                attempt,
                effect,
                args,
                ..
            } => {
                write!(f, "perform {effect}(")?;
                list(f, args)?;
                write!(f, ") as {id} attempt {attempt}")
            }
            Command::StartTimer { id, at_tick } => write!(f, "start {id} for tick {at_tick}"),
            Command::StartChild {
                id, workflow, args, ..
            } => {
                write!(f, "start child {workflow}(")?;
                list(f, args)?;
                write!(f, ") as {id}")
            }
            Command::Log { level, message, .. } => write!(f, "log {level} {message:?}"),
            Command::Complete { value } => write!(f, "complete with {value}"),
            Command::Fail { error } => write!(f, "fail with {error}"),
        }
    }
}
