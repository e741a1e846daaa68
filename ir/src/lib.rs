//! Drover IR: the values, modules and instructions that workflows compile to,
//! their wire bytecode (`.dbc`) and text assembly (`.dasm`), and the verifier.
//!
//! This crate knows nothing of tokio, IO beyond byte slices, or time.

pub mod builder;
pub mod builtins;
pub mod catalog;
pub mod diagnostics;
mod entities;
pub mod graph;
pub mod instructions;
mod module;
pub mod text;
pub mod value;
pub mod verify;
pub mod wire;

#[cfg(feature = "arbitrary")]
pub mod arbitrary;

pub use builtins::Builtin;
pub use entities::{Block, ConstId, EffectRef, FileId, InstAddr, Reg, WorkflowId};
pub use instructions::{
    Inst, LogLevel, Opcode, OpcodeInfo, Operand, OperandKind, OperandRef, Policy, RetryPolicy,
    Symbol, OPCODES,
};
pub use module::{BlockData, EffectDecl, EffectKind, Location, Module, SourceMap, Span, Workflow};
pub use value::{from_value, to_value, Value};
