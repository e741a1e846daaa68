//! The Drover compiler: lowers `#[workflow]` functions (a subset of Rust) to
//! Drover IR, and the `dslc` command-line tool.

pub mod lower;

pub use lower::{compile_file, compile_workflow, CompileOptions, Compiled, Items};
