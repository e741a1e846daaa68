//! Drover's interpreter: the pure, deterministic step machine that runs
//! workflows compiled to Drover IR.
//!
//! [`step`] applies one [`Event`] to a [`RunState`] and returns the
//! [`Command`]s the runtime must carry out. The same events in give the same
//! commands out: this crate does no IO and reads no clock or randomness.
//! Workflow failures are values ([`Command::Fail`] with a [`WorkflowError`]);
//! misuse of the interpreter is a Rust error ([`InterpError`]).
//!
//! [`replay`] re-feeds a journal and reports the first divergence, and
//! [`sim`] drives runs through seeded random schedules, checking invariants
//! at every step.

mod builtins;
mod error;
mod event;
mod exec;
mod ops;
mod program;
pub mod replay;
pub mod sim;
mod state;

pub use error::{EffectError, ErrorKind, InterpError, LoadError, WorkflowError};
pub use event::{Command, EffectId, Event, TimerId};
pub use exec::{step, step_traced, Executed};
pub use program::{Program, PureFn, PureFns, MAX_CONST_DEPTH, MAX_REGS};
pub use replay::{replay, JournalEntry, ReplayError, Replayer};

pub use state::{Config, PendingEffect, RunState, Status, MAX_VALUE_DEPTH};
