//! `dslc inspect`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;

use clap::Args;
use drover_ir::{wire, EffectKind, Inst, Module};

use super::load;
use super::output::{print_json, print_out};
use super::Failure;

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The bytecode file to inspect.
    file: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

impl InspectArgs {
    pub fn execute(self) -> Result<(), Failure> {
        let loaded = load::load_dbc(&self.file)?;
        let bytes = loaded.bytes.as_deref().unwrap_or_default();
        let header = wire::read_header(bytes).map_err(|e| Failure::Message(e.to_string()))?;
        let hash = wire::hash_bytes(bytes);
        let m = &loaded.module;
        let counts = opcode_counts(m);
        if self.json {
            return print_json(&serde_json::json!({
                "file": self.file.display().to_string(),
                "bytes": bytes.len(),
                "format_version": header.version,
                "flags": header.flags,
                "payload_bytes": header.payload_len,
                "checksum": format!("{:08x}", header.checksum),
                "hash": hash.to_string(),
                "workflows": m.workflows.iter().map(|w| serde_json::json!({
                    "name": w.name,
                    "params": w.params,
                    "blocks": w.blocks.len(),
                    "instructions": w.inst_count(),
                    "registers": w.num_regs(),
                })).collect::<Vec<_>>(),
                "effects": m.effects.iter().map(|e| serde_json::json!({
                    "name": e.name,
                    "kind": kind_name(e.kind),
                    "params": e.params,
                })).collect::<Vec<_>>(),
                "effects_used": m.effects_used(),
                "constants": m.consts.len(),
                "instruction_counts": counts,
            }));
        }
        let mut out = String::new();
        let _ = writeln!(out, "file        {}", self.file.display());
        let _ = writeln!(
            out,
            "format      DRBC v{}, flags {:#06x}, {} bytes ({} payload), crc32 {:08x}",
            header.version,
            header.flags,
            bytes.len(),
            header.payload_len,
            header.checksum
        );
        let _ = writeln!(out, "hash        {hash}");
        let _ = writeln!(out, "constants   {}", m.consts.len());
        let _ = writeln!(out, "\nworkflows");
        for w in &m.workflows {
            let _ = writeln!(
                out,
                "  {}({})  {} blocks, {} instructions, {} registers",
                w.name,
                w.params.join(", "),
                w.blocks.len(),
                w.inst_count(),
                w.num_regs()
            );
        }
        let used = m.effects_used();
        let _ = writeln!(out, "\neffects");
        for e in &m.effects {
            let mark = if used.contains(&e.name.as_str()) {
                ""
            } else {
                "  (declared, unused)"
            };
            let _ = writeln!(
                out,
                "  {:<9} {}({}){mark}",
                kind_name(e.kind),
                e.name,
                e.params.join(", ")
            );
        }
        let _ = writeln!(out, "\ninstructions");
        let total: usize = counts.values().sum();
        for (mnemonic, n) in &counts {
            let _ = writeln!(out, "  {mnemonic:<10} {n:>6}");
        }
        let _ = writeln!(out, "  {:<10} {total:>6}", "total");
        print_out(&out)
    }
}

fn kind_name(kind: EffectKind) -> &'static str {
    match kind {
        EffectKind::Builtin => "builtin",
        EffectKind::Activity => "activity",
    }
}

/// How many of each instruction the module holds, by mnemonic.
fn opcode_counts(m: &Module) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for inst in m
        .workflows
        .iter()
        .flat_map(|w| w.blocks.iter().flat_map(|b| b.insts.iter()))
    {
        *counts.entry(Inst::mnemonic(inst)).or_default() += 1;
    }
    counts
}
