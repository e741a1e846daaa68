//! The `drover` command line: clap arguments → a validated command →
//! `execute`, which writes to the given streams and returns the exit code.
//!
//! Verbs: `run` (an embedded node, one run), `node` (a long-lived node
//! serving the API), `deploy`, `start`, `status`, `result`, `cancel`,
//! `signal`, `ls`, `trace`, `logs` (talk to a node: `--node URL`, env
//! `DROVER_NODE`), and `replay` (a run re-executed offline from its journal).
//!
//! Exit codes: 0 success; 1 bad input (arguments, JSON, a filter that does
//! not parse, a request the node refused as bad or conflicting); 2 the node
//! or its store failed, or cannot be reached; 3 no such run or workflow;
//! 4 the run failed (it failed, or its workflow returned `Err`); 5 `result
//! --timeout` ran out while the run still runs; 6 `replay` diverged from the
//! journal.

mod bench;
mod node;
mod remote;
mod replay;
mod run;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use bench::{BenchArgs, BENCH_WORKFLOW};
pub use node::NodeArgs;
pub use remote::{NodeOpts, RemoteCommand};
pub use replay::ReplayArgs;
pub(crate) use run::arguments;
pub use run::RunArgs;

/// Bad input: arguments, input JSON, unknown workflow.
pub const EXIT_BAD_INPUT: u8 = 1;
/// The node or its store failed.
pub const EXIT_NODE: u8 = 2;
/// No such run or workflow.
pub const EXIT_NOT_FOUND: u8 = 3;
/// The run failed.
pub const EXIT_RUN_FAILED: u8 = 4;
/// `drover result --timeout` ran out; the run still runs.
pub const EXIT_TIMEOUT: u8 = 5;
/// `drover replay` found the program no longer matches the journal.
pub const EXIT_DIVERGED: u8 = 6;

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
    /// Run a long-lived node serving the HTTP API, with every compiled-in
    /// workflow, until SIGINT or SIGTERM.
    Node(NodeArgs),
    /// Re-execute a run offline from its journal, with the recorded effect
    /// results and no network; stop at the first divergence.
    Replay(ReplayArgs),
    #[command(flatten)]
    Remote(RemoteCommand),
}

/// An error with its chain of causes: `cannot reach …: error sending
/// request: … : Connection refused`.
pub(crate) fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
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
        Command::Node(args) => args.execute(out, err),
        Command::Replay(args) => args.execute(out, err),
        Command::Remote(cmd) => cmd.execute(out, err),
    }
}
