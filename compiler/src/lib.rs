//! The Drover compiler library and the `dslc` command-line tool: lowers
//! `#[workflow]` functions (a subset of Rust) to Drover IR ([`lower`]), and
//! expands the `#[workflow]`, `#[activity]` and `#[pure]` attributes for
//! `drover-macros` ([`expand`]).

pub mod cli;
pub mod expand;
pub mod lower;
pub mod scripted;

pub use lower::{compile_file, compile_workflow, CompileOptions, Compiled, Items};
