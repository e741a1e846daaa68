//! The Drover compiler library and the `dslc` command-line tool: lowers
//! `#[workflow]` functions (a subset of Rust) to Drover IR.

pub mod cli;
pub mod lower;
pub mod scripted;

pub use lower::{compile_file, compile_workflow, CompileOptions, Compiled, Items};
