use std::process::ExitCode;

fn main() -> ExitCode {
    drover_compiler::cli::main()
}
