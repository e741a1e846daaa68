//! `dslc diff`: what changed between two versions of compiled workflows.
//!
//! Exit codes follow `diff(1)`: 0 when the modules are the same, 1 when they
//! differ, 2 when something went wrong (an unreadable or invalid file).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;

use clap::Args;
use drover_ir::text::print_inst;
use drover_ir::{EffectDecl, EffectKind, Module, Workflow};
use similar::TextDiff;

use super::load;
use super::output::{print_json, print_out};
use super::Failure;

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The old version (`.dbc` or `.dasm`).
    old: PathBuf,
    /// The new version (`.dbc` or `.dasm`).
    new: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// The differences between two modules.
#[derive(Debug, Default, PartialEq)]
pub struct ModuleDiff {
    pub workflows_added: Vec<String>,
    pub workflows_removed: Vec<String>,
    pub effects_added: Vec<String>,
    pub effects_removed: Vec<String>,
    /// Workflows in both whose parameters or code changed.
    pub changed: Vec<WorkflowDiff>,
}

/// How one workflow present in both versions changed.
#[derive(Debug, PartialEq)]
pub struct WorkflowDiff {
    pub name: String,
    /// `(old, new)` parameter lists, when they differ.
    pub params: Option<(Vec<String>, Vec<String>)>,
    /// A unified diff of the printed assembly, empty when the code is the same.
    pub listing: String,
    pub lines_added: usize,
    pub lines_removed: usize,
}

impl ModuleDiff {
    /// Whether the two modules are the same in every way compared.
    pub fn is_empty(&self) -> bool {
        self.workflows_added.is_empty()
            && self.workflows_removed.is_empty()
            && self.effects_added.is_empty()
            && self.effects_removed.is_empty()
            && self.changed.is_empty()
    }
}

/// An effect declaration as the assembly writes it: `activity scan(sha256)`.
fn effect_line(e: &EffectDecl) -> String {
    let kind = match e.kind {
        EffectKind::Builtin => "effect",
        EffectKind::Activity => "activity",
    };
    format!("{kind} {}({})", e.name, e.params.join(", "))
}

/// A workflow's code, one line per label and per instruction, without
/// source locations (moving code in the `.rs` file is no change).
pub fn listing(m: &Module, w: &Workflow) -> String {
    let mut out = String::new();
    for b in &w.blocks {
        let _ = writeln!(out, "{}:", b.label);
        for inst in &b.insts {
            let _ = writeln!(out, "    {}", print_inst(m, w, inst));
        }
    }
    out
}

/// Compares two modules.
pub fn diff_modules(old: &Module, new: &Module) -> ModuleDiff {
    let mut d = ModuleDiff::default();
    let old_w: BTreeMap<&str, &Workflow> =
        old.workflows.iter().map(|w| (w.name.as_str(), w)).collect();
    let new_w: BTreeMap<&str, &Workflow> =
        new.workflows.iter().map(|w| (w.name.as_str(), w)).collect();
    d.workflows_added = new_w
        .keys()
        .filter(|n| !old_w.contains_key(*n))
        .map(|n| n.to_string())
        .collect();
    d.workflows_removed = old_w
        .keys()
        .filter(|n| !new_w.contains_key(*n))
        .map(|n| n.to_string())
        .collect();
    let old_e: Vec<String> = old.effects.iter().map(effect_line).collect();
    let new_e: Vec<String> = new.effects.iter().map(effect_line).collect();
    d.effects_added = new_e
        .iter()
        .filter(|e| !old_e.contains(e))
        .cloned()
        .collect();
    d.effects_removed = old_e
        .iter()
        .filter(|e| !new_e.contains(e))
        .cloned()
        .collect();
    d.effects_added.sort();
    d.effects_removed.sort();
    for (name, ow) in &old_w {
        let Some(nw) = new_w.get(name) else { continue };
        let params = (ow.params != nw.params).then(|| (ow.params.clone(), nw.params.clone()));
        let (a, b) = (listing(old, ow), listing(new, nw));
        let text_diff = TextDiff::from_lines(&a, &b);
        let (mut added, mut removed) = (0, 0);
        for change in text_diff.iter_all_changes() {
            match change.tag() {
                similar::ChangeTag::Insert => added += 1,
                similar::ChangeTag::Delete => removed += 1,
                similar::ChangeTag::Equal => {}
            }
        }
        let listing = if a == b {
            String::new()
        } else {
            text_diff
                .unified_diff()
                .context_radius(3)
                .header(&format!("old/{name}"), &format!("new/{name}"))
                .to_string()
        };
        if params.is_some() || !listing.is_empty() {
            d.changed.push(WorkflowDiff {
                name: name.to_string(),
                params,
                listing,
                lines_added: added,
                lines_removed: removed,
            });
        }
    }
    d
}

impl DiffArgs {
    /// Compares the files; `Ok(true)` when they differ.
    pub fn execute(self) -> Result<bool, Failure> {
        let old = load::load(&self.old)?;
        let new = load::load(&self.new)?;
        let d = diff_modules(&old.module, &new.module);
        if self.json {
            print_json(&serde_json::json!({
                "same": d.is_empty(),
                "workflows_added": d.workflows_added,
                "workflows_removed": d.workflows_removed,
                "effects_added": d.effects_added,
                "effects_removed": d.effects_removed,
                "changed": d.changed.iter().map(|c| serde_json::json!({
                    "name": c.name,
                    "params": c.params.as_ref().map(|(a, b)| serde_json::json!({"old": a, "new": b})),
                    "lines_added": c.lines_added,
                    "lines_removed": c.lines_removed,
                    "diff": c.listing,
                })).collect::<Vec<_>>(),
            }))?;
            return Ok(!d.is_empty());
        }
        let mut out = String::new();
        if d.is_empty() {
            out.push_str("no differences\n");
        }
        for w in &d.workflows_added {
            let _ = writeln!(out, "+ workflow {w}");
        }
        for w in &d.workflows_removed {
            let _ = writeln!(out, "- workflow {w}");
        }
        for e in &d.effects_added {
            let _ = writeln!(out, "+ {e}");
        }
        for e in &d.effects_removed {
            let _ = writeln!(out, "- {e}");
        }
        for c in &d.changed {
            let _ = writeln!(
                out,
                "~ workflow {} (+{} -{} lines)",
                c.name, c.lines_added, c.lines_removed
            );
            if let Some((a, b)) = &c.params {
                let _ = writeln!(out, "  params ({}) -> ({})", a.join(", "), b.join(", "));
            }
            out.push_str(&c.listing);
        }
        print_out(&out)?;
        Ok(!d.is_empty())
    }
}
