//! `dslc asm` and `dslc disasm`.

use std::path::PathBuf;

use clap::Args;
use drover_ir::{text, wire};

use super::load::{self, Loaded};
use super::output::{print_json, print_out};
use super::{output_path, Failure};

#[derive(Debug, Args)]
pub struct AsmArgs {
    /// The assembly file to read.
    file: PathBuf,
    /// Where to write the bytecode [default: FILE with the extension .dbc].
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Print a JSON summary instead of text.
    #[arg(long)]
    json: bool,
}

impl AsmArgs {
    pub fn execute(self) -> Result<(), Failure> {
        let loaded = load::load(&self.file)?;
        let report = loaded.verify()?;
        let bytes = wire::encode(&loaded.module);
        let out = output_path(&self.file, self.output, "dbc");
        load::write(&out, &bytes)?;
        let hash = wire::hash_bytes(&bytes);
        if self.json {
            print_json(&serde_json::json!({
                "output": out.display().to_string(),
                "bytes": bytes.len(),
                "hash": hash.to_string(),
                "workflows": loaded.module.workflows.iter().map(|w| &w.name).collect::<Vec<_>>(),
                "warnings": report.warnings().count(),
            }))
        } else {
            print_out(&format!(
                "wrote {} ({} bytes, {} workflow{}, hash {})\n",
                out.display(),
                bytes.len(),
                loaded.module.workflows.len(),
                plural(loaded.module.workflows.len()),
                hash.short()
            ))
        }
    }
}

#[derive(Debug, Args)]
pub struct DisasmArgs {
    /// The bytecode file to read.
    file: PathBuf,
    /// Write the assembly to this file instead of stdout.
    #[arg(short, long)]
    output: Option<PathBuf>,
}

impl DisasmArgs {
    pub fn execute(self) -> Result<(), Failure> {
        let Loaded { module, .. } = load::load_dbc(&self.file)?;
        let text = text::print(&module);
        match self.output {
            Some(path) => load::write(&path, text.as_bytes()),
            None => print_out(&text),
        }
    }
}

pub fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
