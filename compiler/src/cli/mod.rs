//! `dslc`: assemble, disassemble, verify, inspect, graph and run Drover IR.
//!
//! Exit codes:
//! - 0: success
//! - 1: the program was rejected (parse, verify or decode errors were printed)
//! - 2: the command line was wrong (clap prints usage)
//! - 3: a file could not be read or written
//! - 4: `dslc run`: the workflow run failed, or could not make progress
//!
//! `dslc diff` follows `diff(1)` instead: 0 same, 1 different, 2 trouble.

mod asm;
mod compile;
mod diff;
mod graph;
mod inspect;
mod load;
mod output;
mod run;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use output::Failure;

/// Drover's IR tool: assemble, disassemble, verify, inspect, graph and run
/// workflows compiled to Drover bytecode.
#[derive(Debug, Parser)]
#[command(name = "dslc", version, about, long_about = None)]
#[command(
    after_help = "Exit codes: 0 success, 1 program rejected, 2 usage error, 3 I/O error, 4 workflow run failed."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Assemble a `.dasm` file into `.dbc` bytecode, verifying it first.
    Asm(asm::AsmArgs),
    /// Print the assembly of a `.dbc` file.
    Disasm(asm::DisasmArgs),
    /// Verify a `.dbc` or `.dasm` file and print every error and warning.
    Verify(verify::VerifyArgs),
    /// Show a `.dbc` file's header, hash, workflows, effects and instruction counts.
    Inspect(inspect::InspectArgs),
    /// Print a workflow's control-flow graph as Graphviz DOT (or SVG).
    Graph(graph::GraphArgs),
    /// Run a workflow in the interpreter with scripted effect responses.
    Run(run::RunArgs),
    /// Compile the `#[workflow]` functions of a Rust file to `.dbc` files.
    Compile(compile::CompileArgs),
    /// Show what changed between two compiled versions (exit 0 same, 1 different, 2 trouble).
    Diff(diff::DiffArgs),
}

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Asm(args) => args.execute(),
        Command::Disasm(args) => args.execute(),
        Command::Verify(args) => args.execute(),
        Command::Inspect(args) => args.execute(),
        Command::Graph(args) => args.execute(),
        Command::Run(args) => args.execute(),
        Command::Compile(args) => args.execute(),
        Command::Diff(args) => {
            return match args.execute() {
                Ok(false) => ExitCode::SUCCESS,
                Ok(true) => ExitCode::from(1),
                Err(failure) => {
                    // Print what the failure carries; its own code would
                    // collide with "different".
                    let _ = failure.report();
                    ExitCode::from(2)
                }
            };
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

/// An output path next to `input` with another extension, unless one is given.
fn output_path(input: &std::path::Path, given: Option<PathBuf>, ext: &str) -> PathBuf {
    given.unwrap_or_else(|| input.with_extension(ext))
}
