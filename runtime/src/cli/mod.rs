//! The `drover` command line: clap arguments → a validated command →
//! `execute`, which writes to the given streams and returns the exit code.
//!
//! Exit codes: 0 success; 1 bad input (arguments, JSON, unknown workflow);
//! 2 the node or its store failed; 4 the run failed (it failed, or its
//! workflow returned `Err`).

mod bench;
mod run;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use bench::{BenchArgs, BENCH_WORKFLOW};
pub use run::RunArgs;

/// Bad input: arguments, input JSON, unknown workflow.
pub const EXIT_BAD_INPUT: u8 = 1;
/// The node or its store failed.
pub const EXIT_NODE: u8 = 2;
/// The run failed.
pub const EXIT_RUN_FAILED: u8 = 4;

/// `drover`: run durable workflows.
#[derive(Debug, Parser)]
#[command(name = "drover", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start an embedded node, run one workflow to its end, print the result
    /// and the trace of its effects.
    Run(RunArgs),
    /// Measure throughput and latency of N runs on an embedded durable node
    /// (`bench_flow`, three no-op activity steps, by default).
    Bench(BenchArgs),
}

/// The `drover` binary's entry: parses `std::env::args` and runs.
pub fn main() -> ExitCode {
    // Unlocked handles: the node's loop writes log lines to stderr from its
    // own thread while this one waits for the run, so holding the stderr
    // lock here would deadlock the first run that logs.
    let code = run_with(
        std::env::args_os(),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    );
    ExitCode::from(code)
}

/// Runs the command line `args` (program name first), writing to `out` and
/// `err`; returns the exit code. Tests call this directly.
pub fn run_with<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let text = e.render().to_string();
            // `--help` and `--version` are answers, not errors.
            return if e.use_stderr() {
                let _ = write!(err, "{text}");
                EXIT_BAD_INPUT
            } else {
                let _ = write!(out, "{text}");
                0
            };
        }
    };
    match cli.command {
        Command::Run(args) => args.execute(out, err),
        Command::Bench(args) => args.execute(out, err),
    }
}
