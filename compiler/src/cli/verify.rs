//! `dslc verify`.

use std::path::PathBuf;

use clap::Args;

use super::asm::plural;
use super::load;
use super::output::{print_json, print_out};
use super::Failure;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A `.dasm` or `.dbc` file.
    file: PathBuf,
    /// Print the diagnostics as JSON on stdout instead of rendering them.
    #[arg(long)]
    json: bool,
}

impl VerifyArgs {
    pub fn execute(self) -> Result<(), Failure> {
        if self.json {
            return self.execute_json();
        }
        let loaded = load::load(&self.file)?;
        let report = loaded.verify()?;
        let warnings = report.warnings().count();
        print_out(&format!(
            "ok: {} verified, {} workflow{}, {warnings} warning{}\n",
            self.file.display(),
            loaded.module.workflows.len(),
            plural(loaded.module.workflows.len()),
            plural(warnings),
        ))
    }

    fn execute_json(&self) -> Result<(), Failure> {
        let loaded = load::load(&self.file)?;
        let report = drover_ir::verify::verify(&loaded.module);
        let diags: Vec<_> = report
            .diags
            .iter()
            .map(|d| {
                let span = loaded.map.locate(d.location);
                let (line, col) = span
                    .as_ref()
                    .map(|r| line_col(&loaded.text, r.start))
                    .unwrap_or((0, 0));
                serde_json::json!({
                    "severity": match d.severity {
                        drover_ir::verify::Severity::Error => "error",
                        drover_ir::verify::Severity::Warning => "warning",
                    },
                    "code": d.code,
                    "message": d.message,
                    "help": d.help,
                    "location": d.to_string(),
                    "line": line,
                    "col": col,
                })
            })
            .collect();
        print_json(&serde_json::json!({
            "file": self.file.display().to_string(),
            "ok": !report.has_errors(),
            "diagnostics": diags,
        }))?;
        if report.has_errors() {
            Err(Failure::Rejected)
        } else {
            Ok(())
        }
    }
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}
