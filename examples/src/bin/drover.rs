//! The `drover` binary with the example workflows linked in: `drover run
//! scan_email --input '{..}'`. Exit codes are documented in `drover::cli`.

use std::process::ExitCode;

fn main() -> ExitCode {
    drover_examples::link();
    drover::cli::main()
}
