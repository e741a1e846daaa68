//! `dslc compile`: lowers every `#[workflow]` of a Rust file to bytecode.

use std::path::PathBuf;

use clap::Args;
use drover_ir::{text, verify, wire};

use crate::lower::compile_file;

use super::load;
use super::output::{eprint_diag, print_json, print_out};
use super::Failure;

#[derive(Debug, Args)]
pub struct CompileArgs {
    /// The Rust file holding `#[workflow]` (and `#[activity]`, `#[pure]`) functions.
    file: PathBuf,
    /// The directory to write one `<workflow>.dbc` per workflow into.
    #[arg(short = 'o', long = "out-dir", value_name = "DIR")]
    out_dir: PathBuf,
    /// Print a JSON summary instead of text.
    #[arg(long)]
    json: bool,
}

impl CompileArgs {
    pub fn execute(self) -> Result<(), Failure> {
        let bytes = load::read(&self.file)?;
        let src = String::from_utf8(bytes)
            .map_err(|e| Failure::Message(format!("{} is not UTF-8: {e}", self.file.display())))?;
        let name = self.file.display().to_string();
        let compiled = compile_file(&name, &src).map_err(|errs| {
            eprint_diag(&errs);
            Failure::Rejected
        })?;
        if compiled.is_empty() {
            return Err(Failure::Message(format!(
                "no #[workflow] functions in {name}"
            )));
        }
        // Verify them all before writing any, so a rejected file writes nothing.
        let mut rejected = false;
        for c in &compiled {
            let report = verify::verify(&c.module);
            if !report.diags.is_empty() {
                let (text, map) = text::print_with_map(&c.module);
                let shown = format!("{} (compiled from {name})", c.name);
                eprint_diag(&report.diagnostic(&shown, &text, &map));
            }
            rejected |= report.has_errors();
        }
        if rejected {
            return Err(Failure::Rejected);
        }
        std::fs::create_dir_all(&self.out_dir)
            .map_err(|e| Failure::Io(format!("cannot create {}: {e}", self.out_dir.display())))?;
        let mut rows = Vec::new();
        for c in &compiled {
            let bytes = wire::encode(&c.module);
            let out = self.out_dir.join(format!("{}.dbc", c.name));
            load::write(&out, &bytes)?;
            let hash = wire::hash_bytes(&bytes);
            let insts = c
                .module
                .workflows
                .iter()
                .map(|w| w.inst_count())
                .sum::<usize>();
            rows.push((c, out, insts, hash));
        }
        if self.json {
            return print_json(&serde_json::json!({
                "file": name,
                "workflows": rows.iter().map(|(c, out, insts, hash)| serde_json::json!({
                    "name": c.name,
                    "params": c.params.iter().map(|(n, t)| serde_json::json!({"name": n, "type": t})).collect::<Vec<_>>(),
                    "returns": c.ret,
                    "output": out.display().to_string(),
                    "instructions": insts,
                    "hash": hash.to_string(),
                    "activities": c.activities.iter().map(|(n, _)| n).collect::<Vec<_>>(),
                    "children": c.children.iter().map(|(n, _)| n).collect::<Vec<_>>(),
                    "pures": c.pures.iter().map(|(n, _)| n).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            }));
        }
        let width = rows.iter().map(|(c, ..)| c.name.len()).max().unwrap_or(0);
        let mut text = String::new();
        for (c, out, insts, hash) in &rows {
            text.push_str(&format!(
                "{:width$}  {insts:>5} instructions  {}  {}\n",
                c.name,
                hash.short(),
                out.display()
            ));
        }
        print_out(&text)
    }
}
