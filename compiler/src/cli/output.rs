//! Writing results and failures: human text by default, JSON on request,
//! colour only on a TTY, and a closed pipe counts as success.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use miette::Diagnostic;

/// Why a command did not succeed, with the exit code it maps to.
#[derive(Debug)]
pub enum Failure {
    /// Diagnostics about the program were printed already (exit 1).
    Rejected,
    /// A file could not be read or written (exit 3).
    Io(String),
    /// The workflow run failed (exit 4); the details were printed already.
    RunFailed,
    /// Anything else the user should read (exit 1).
    Message(String),
}

impl Failure {
    /// Prints what is left to print and returns the exit code.
    pub fn report(self) -> ExitCode {
        match self {
            Failure::Rejected => ExitCode::from(1),
            Failure::Io(msg) => {
                eprintln!("error: {msg}");
                ExitCode::from(3)
            }
            Failure::RunFailed => ExitCode::from(4),
            Failure::Message(msg) => {
                eprintln!("error: {msg}");
                ExitCode::from(1)
            }
        }
    }
}

/// Writes to stdout, treating a closed pipe (`dslc disasm x | head`) as success.
pub fn print_out(text: &str) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::Io(format!("writing to stdout: {e}"))),
    }
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json(value: &serde_json::Value) -> Result<(), Failure> {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_else(|e| e.to_string());
    text.push('\n');
    print_out(&text)
}

/// Renders a diagnostic for stderr, in colour when stderr is a terminal.
pub fn render(diag: &dyn Diagnostic) -> String {
    if io::stderr().is_terminal() {
        drover_ir::diagnostics::render_color(diag)
    } else {
        drover_ir::diagnostics::render(diag)
    }
}

/// Prints a rendered diagnostic on stderr.
pub fn eprint_diag(diag: &dyn Diagnostic) {
    let text = render(diag);
    let _ = io::stderr().write_all(text.as_bytes());
}
