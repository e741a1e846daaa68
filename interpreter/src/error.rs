//! The two kinds of failure, kept apart: a [`WorkflowError`] is a value the
//! run ends with (the program failed); an [`InterpError`] is a Rust error
//! (the caller misused the interpreter or handed it a bad state).

use std::fmt;

use drover_ir::{Block, InstAddr, Value, WorkflowId};
use serde::{Deserialize, Serialize};

/// Why a run failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ErrorKind {
    /// The program executed `fail`.
    Failed,
    /// `unwrap` met `Err` or `None`.
    Unwrapped,
    /// An instruction got operands of the wrong kind.
    TypeError,
    /// Division or remainder by zero.
    DivideByZero,
    /// Integer arithmetic overflowed.
    Overflow,
    /// `field` or `index` on a map without that key.
    MissingField,
    /// A list index outside the list.
    IndexOutOfRange,
    /// `match` found no arm and no default.
    NoMatch,
    /// One step executed more instructions than `Config::fuel_per_step`.
    FuelExhausted,
    /// A value exceeded `Config::max_value_bytes` or `Config::max_value_depth`.
    ValueTooLarge,
    /// Too many fibers or pending effects.
    LimitExceeded,
    /// The run was cancelled from outside.
    Cancelled,
    /// `call` named a workflow the module does not have.
    UnknownWorkflow,
    /// `pure` named a function the node did not register.
    UnknownPure,
    /// A pure function returned an error or panicked.
    PureFailed,
    /// `join` or `race` on something that is not a live or finished,
    /// not yet joined fiber of this run.
    BadHandle,
    /// Every fiber waits on another fiber and nothing outside can wake one.
    Deadlock,
}

impl ErrorKind {
    /// The kind's name, as written in messages.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Failed => "Failed",
            ErrorKind::Unwrapped => "Unwrapped",
            ErrorKind::TypeError => "TypeError",
            ErrorKind::DivideByZero => "DivideByZero",
            ErrorKind::Overflow => "Overflow",
            ErrorKind::MissingField => "MissingField",
            ErrorKind::IndexOutOfRange => "IndexOutOfRange",
            ErrorKind::NoMatch => "NoMatch",
            ErrorKind::FuelExhausted => "FuelExhausted",
            ErrorKind::ValueTooLarge => "ValueTooLarge",
            ErrorKind::LimitExceeded => "LimitExceeded",
            ErrorKind::Cancelled => "Cancelled",
            ErrorKind::UnknownWorkflow => "UnknownWorkflow",
            ErrorKind::UnknownPure => "UnknownPure",
            ErrorKind::PureFailed => "PureFailed",
            ErrorKind::BadHandle => "BadHandle",
            ErrorKind::Deadlock => "Deadlock",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error a failed run ends with: a value, journaled and shown to users.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkflowError {
    pub kind: ErrorKind,
    /// A sentence naming the instruction and what it found.
    pub message: String,
    /// The value given to `fail`, the error `unwrap` met, or null.
    pub value: Value,
    /// The instruction that failed, if one did.
    pub at: Option<InstAddr>,
}

impl WorkflowError {
    /// An error with a null value.
    pub fn new(kind: ErrorKind, message: impl Into<String>, at: Option<InstAddr>) -> Self {
        WorkflowError {
            kind,
            message: message.into(),
            value: Value::Null,
            at,
        }
    }

    /// The same error carrying `value`.
    pub fn with_value(mut self, value: Value) -> Self {
        self.value = value;
        self
    }
}

impl fmt::Display for WorkflowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Some(at) => write!(f, "{} at {at}: {}", self.kind, self.message),
            None => write!(f, "{}: {}", self.kind, self.message),
        }
    }
}

impl std::error::Error for WorkflowError {}

/// How an effect attempt failed, as the runtime reports it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EffectError {
    /// A short machine-readable kind, such as `timeout` or `http_503`.
    pub kind: String,
    pub message: String,
    /// Whether another attempt may succeed; only then is the policy's retry used.
    pub retryable: bool,
}

/// The module cannot be run: `Program::new` found an id out of range or a
/// block that does not end in a terminator.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    #[error("workflow {workflow} (`{name}`) has no blocks")]
    NoBlocks { workflow: WorkflowId, name: String },
    #[error("block {workflow}:{block} is empty")]
    EmptyBlock { workflow: WorkflowId, block: Block },
    #[error("block {workflow}:{block} does not end with a terminator")]
    NoTerminator { workflow: WorkflowId, block: Block },
    #[error("instruction {at} is a terminator in the middle of its block")]
    TerminatorInside { at: InstAddr },
    #[error("instruction {at} names block {block}, which does not exist")]
    BadBlock { at: InstAddr, block: Block },
    #[error("instruction {at} names constant c{index}, which does not exist")]
    BadConst { at: InstAddr, index: u32 },
    #[error("instruction {at} names effect e{index}, which does not exist")]
    BadEffect { at: InstAddr, index: u32 },
    #[error("workflow {workflow} needs {regs} registers, more than the limit of {limit}")]
    TooManyRegs {
        workflow: WorkflowId,
        regs: usize,
        limit: usize,
    },
    #[error("constant c{index} is deeper than {limit} levels")]
    ConstTooDeep { index: u32, limit: usize },
    #[error("two workflows are called `{name}`")]
    DuplicateWorkflow { name: String },
}

/// The interpreter was misused or handed a bad state; the state is unchanged.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum InterpError {
    #[error("the module has no workflow `{0}`")]
    UnknownWorkflow(String),
    #[error("the run has already started")]
    AlreadyStarted,
    #[error("the run has not started; the first event must be `Start`")]
    NotStarted,
    #[error("the run has finished; it takes no more events")]
    Finished,
    #[error("workflow `{workflow}` takes {expected} arguments, got {got}")]
    Arity {
        workflow: String,
        expected: usize,
        got: usize,
    },
    #[error("effect id {0} was never issued")]
    UnknownEffect(u64),
    #[error("effect id {0} is not awaiting a result: it has one already, or is not an effect")]
    EffectFinished(u64),
    #[error("effect id {id} got a result for attempt {attempt}, which was never issued")]
    FutureAttempt { id: u64, attempt: u32 },
    #[error("timer id {0} was never issued")]
    UnknownTimer(u64),
    #[error("timer id {id} fired at tick {tick}, before its tick {at_tick}")]
    TimerEarly { id: u64, tick: u64, at_tick: u64 },
    #[error("tick {tick} is before the run's current tick {current}")]
    TickWentBackwards { tick: u64, current: u64 },
    #[error("signal `{0}` refused: the run already buffers the maximum number of signals")]
    SignalBufferFull(String),
    #[error("signal `{name}` refused: its value is {reason}")]
    SignalTooLarge { name: String, reason: String },
    #[error("invalid config: {0}")]
    BadConfig(String),
    #[error("bad snapshot: {0}")]
    BadSnapshot(String),
    #[error("the state does not belong to this program: {0}")]
    StateMismatch(String),
}
