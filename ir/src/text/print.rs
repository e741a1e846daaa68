//! The printer: writes a module in the canonical text syntax and records
//! where each part went.

use std::fmt::Write;

use super::{BlockText, InstText, TextMap, WorkflowText};
use crate::entities::{Block, InstAddr, WorkflowId};
use crate::instructions::{Inst, OperandKind, OperandRef, Policy};
use crate::module::{EffectKind, Module, Workflow};
use crate::value::literal::{is_ident, write_name, write_quoted};

/// Prints a module as text assembly.
pub fn print(m: &Module) -> String {
    print_with_map(m).0
}

/// Prints a module as text assembly, with the byte range of each part.
pub fn print_with_map(m: &Module) -> (String, TextMap) {
    let mut p = Printer {
        m,
        out: String::new(),
        map: TextMap::default(),
    };
    p.module();
    (p.out, p.map)
}

/// Prints one instruction of workflow `w` as it appears in a listing, without
/// indentation or source location: `r2 = add r0, r1`.
pub fn print_inst(m: &Module, w: &Workflow, inst: &Inst) -> String {
    let mut p = Printer {
        m,
        out: String::new(),
        map: TextMap::default(),
    };
    p.inst(w, None, inst);
    p.out.trim().to_owned()
}

/// Whether an effect name can be written bare: identifiers joined by dots.
pub(super) fn is_dotted_ident(s: &str) -> bool {
    s.split('.').all(is_ident)
}

/// Writes an effect name bare when it is a dotted identifier, quoted otherwise.
pub(super) fn write_effect_name(out: &mut String, name: &str) {
    if is_dotted_ident(name) {
        out.push_str(name);
    } else {
        // Writing into a String cannot fail.
        let _ = write_quoted(out, name);
    }
}

/// Writes a duration with the largest unit that divides it exactly.
pub(super) fn write_duration(out: &mut String, ms: u64) {
    const UNITS: [(u64, &str); 3] = [(3_600_000, "h"), (60_000, "m"), (1_000, "s")];
    // Zero divides by everything; `0ms` reads better than `0h`.
    let (n, unit) = UNITS
        .iter()
        .find(|(size, _)| ms != 0 && ms.is_multiple_of(*size))
        .map_or((ms, "ms"), |&(size, unit)| (ms / size, unit));
    let _ = write!(out, "{n}{unit}");
}

/// Writes a policy, or nothing for the default one.
pub(super) fn write_policy(out: &mut String, policy: &Policy) {
    if let Some(r) = &policy.retry {
        let _ = write!(out, "retry({}, ", r.max_attempts);
        write_duration(out, r.initial_backoff_ms);
        out.push_str(", ");
        write_duration(out, r.max_backoff_ms);
        let _ = write!(out, ", x{})", r.multiplier);
    }
    if let Some(t) = policy.timeout_ms {
        if policy.retry.is_some() {
            out.push(' ');
        }
        out.push_str("timeout(");
        write_duration(out, t);
        out.push(')');
    }
}

struct Printer<'m> {
    m: &'m Module,
    out: String,
    map: TextMap,
}

impl Printer<'_> {
    fn name(&mut self, s: &str) {
        let _ = write_name(&mut self.out, s);
    }

    fn params(&mut self, params: &[String]) {
        self.out.push('(');
        for (i, p) in params.iter().enumerate() {
            if i > 0 {
                self.out.push_str(", ");
            }
            self.name(p);
        }
        self.out.push(')');
    }

    fn module(&mut self) {
        for e in &self.m.effects {
            let start = self.out.len();
            self.out.push_str(match e.kind {
                EffectKind::Builtin => "effect ",
                EffectKind::Activity => "activity ",
            });
            write_effect_name(&mut self.out, &e.name);
            self.params(&e.params);
            self.map.effects.push(start..self.out.len());
            self.out.push('\n');
        }
        for (i, w) in self.m.workflows.iter().enumerate() {
            if i > 0 || !self.m.effects.is_empty() {
                self.out.push('\n');
            }
            self.workflow(WorkflowId(i as u32), w);
        }
    }

    fn workflow(&mut self, id: WorkflowId, w: &Workflow) {
        let start = self.out.len();
        self.out.push_str("workflow ");
        self.name(&w.name);
        self.params(&w.params);
        let mut text = WorkflowText {
            header: start..self.out.len(),
            blocks: Vec::with_capacity(w.blocks.len()),
        };
        self.out.push_str(" {\n");
        for (b, block) in w.blocks.iter().enumerate() {
            let start = self.out.len();
            self.name(&block.label);
            self.out.push(':');
            let mut bt = BlockText {
                label: start..self.out.len(),
                insts: Vec::with_capacity(block.insts.len()),
            };
            self.out.push('\n');
            for (n, inst) in block.insts.iter().enumerate() {
                let addr = InstAddr::new(id, Block(b as u32), n as u32);
                bt.insts.push(self.inst(w, Some(addr), inst));
            }
            text.blocks.push(bt);
        }
        self.out.push_str("}\n");
        self.map.workflows.push(text);
    }

    fn inst(&mut self, w: &Workflow, addr: Option<InstAddr>, inst: &Inst) -> InstText {
        self.out.push_str("    ");
        let start = self.out.len();
        let dst = inst.dst().map(|d| {
            let s = self.out.len();
            let _ = write!(self.out, "{d}");
            let range = s..self.out.len();
            self.out.push_str(" = ");
            range
        });
        self.out.push_str(inst.mnemonic());
        let kinds = inst.info().operands;
        let mut operands = Vec::with_capacity(kinds.len());
        let mut text = String::new();
        let mut wrote_any = false;
        for (i, op) in inst.operands().into_iter().enumerate() {
            text.clear();
            self.operand(w, op, &mut text);
            if text.is_empty() {
                operands.push(self.out.len()..self.out.len());
                continue;
            }
            let kind = kinds.get(i).copied();
            let prev = i.checked_sub(1).and_then(|p| kinds.get(p)).copied();
            let glued = kind == Some(OperandKind::Regs)
                && matches!(
                    prev,
                    Some(OperandKind::Effect | OperandKind::Name | OperandKind::Builtin)
                );
            if !glued {
                self.out
                    .push_str(if !wrote_any || kind == Some(OperandKind::Policy) {
                        " "
                    } else {
                        ", "
                    });
            }
            let s = self.out.len();
            self.out.push_str(&text);
            operands.push(s..self.out.len());
            wrote_any = true;
        }
        let whole = start..self.out.len();
        if let Some(span) = addr.and_then(|a| self.m.source_map.span(a)) {
            self.out.push_str("   @ ");
            let file = self.m.source_map.file(span.file).unwrap_or("?");
            let _ = write_quoted(&mut self.out, file);
            let _ = write!(self.out, ":{}:{}", span.line, span.col);
        }
        self.out.push('\n');
        InstText {
            whole,
            dst,
            operands,
        }
    }

    /// Writes one operand's text into `out`, with no separator. Ids that do
    /// not resolve print as `?id`, which does not parse: an invalid module
    /// must not read back as a different valid one.
    fn operand(&self, w: &Workflow, op: OperandRef<'_>, out: &mut String) {
        let label = |out: &mut String, b: &Block| match w.block(*b) {
            Some(block) => {
                let _ = write_name(out, &block.label);
            }
            None => {
                let _ = write!(out, "?{b}");
            }
        };
        match op {
            OperandRef::Reg(r) | OperandRef::OptReg(Some(r)) => {
                let _ = write!(out, "{r}");
            }
            OperandRef::Regs(rs) => {
                out.push('(');
                for (i, r) in rs.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    let _ = write!(out, "{r}");
                }
                out.push(')');
            }
            OperandRef::Block(b) => label(out, b),
            OperandRef::OptBlock(Some(b)) => {
                out.push_str("default ");
                label(out, b);
            }
            OperandRef::OptBlock(None) | OperandRef::OptReg(None) => {}
            OperandRef::Const(c) => match self.m.constant(*c) {
                Some(v) => {
                    let _ = write!(out, "{v}");
                }
                None => {
                    let _ = write!(out, "?{c}");
                }
            },
            OperandRef::Effect(e) => match self.m.effect(*e) {
                Some(decl) => write_effect_name(out, &decl.name),
                None => {
                    let _ = write!(out, "?{e}");
                }
            },
            OperandRef::Name(s) => {
                let _ = write_name(out, s.as_str());
            }
            OperandRef::Str(s) => {
                let _ = write_quoted(out, s);
            }
            OperandRef::Fields(fields) => {
                out.push('{');
                for (i, (name, r)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    let _ = write!(out, "{name}: {r}");
                }
                out.push('}');
            }
            OperandRef::Arms(arms) => {
                out.push('[');
                for (i, (tag, b)) in arms.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    let _ = write!(out, "{tag} => ");
                    label(out, b);
                }
                out.push(']');
            }
            OperandRef::Policy(p) => write_policy(out, p),
            OperandRef::Level(l) => out.push_str(l.name()),
            OperandRef::Builtin(b) => out.push_str(b.name()),
        }
    }
}
