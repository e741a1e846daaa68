//! The lowering context: the emitter, the variables in scope, the loops
//! that `break`/`continue` may leave, and the diagnostics collected so far.

use std::collections::{BTreeMap, BTreeSet};

use drover_ir::{Block, Reg, Value};
use proc_macro2::Span;

use super::diag::Diag;
use super::emit::Emitter;
use super::Items;

/// Expressions nested deeper than this are refused rather than risking the
/// stack: the lowering recurses once per level.
const MAX_DEPTH: u32 = 200;

/// A loop that `break` and `continue` may target.
pub(crate) struct LoopFrame {
    /// `'label`, without the quote.
    pub label: Option<String>,
    pub break_to: Block,
    pub continue_to: Block,
    /// Where `break VALUE` puts its value; only `loop` has one.
    pub result: Option<Reg>,
}

/// Everything the lowering of one workflow carries around.
pub(crate) struct Lowerer<'a> {
    pub em: Emitter,
    pub items: &'a Items,
    /// Innermost scope last; each maps a variable to its register.
    scopes: Vec<BTreeMap<String, Reg>>,
    /// Registers that belong to a variable: binding one of them to a new
    /// name must copy it, or mutating one name would change the other.
    var_regs: BTreeSet<Reg>,
    pub loops: Vec<LoopFrame>,
    pub diags: Vec<Diag>,
    pub activities: Vec<(String, Span)>,
    pub pures: Vec<(String, Span)>,
    pub children: Vec<(String, Span)>,
    depth: u32,
}

impl<'a> Lowerer<'a> {
    /// A context whose parameters `params[i]` live in `ri`.
    pub(crate) fn new(items: &'a Items, params: &[String]) -> Lowerer<'a> {
        let mut lw = Lowerer {
            em: Emitter::new(params.len()),
            items,
            scopes: vec![BTreeMap::new()],
            var_regs: BTreeSet::new(),
            loops: Vec::new(),
            diags: Vec::new(),
            activities: Vec::new(),
            pures: Vec::new(),
            children: Vec::new(),
            depth: 0,
        };
        for (i, p) in params.iter().enumerate() {
            lw.declare(p, Reg(i as u32));
        }
        lw
    }

    /// Records an error and keeps going.
    pub(crate) fn error(&mut self, d: Diag) {
        self.diags.push(d);
    }

    /// Records an error and yields a null register, so the caller can carry on.
    pub(crate) fn fail(&mut self, d: Diag) -> Reg {
        self.error(d);
        self.null()
    }

    /// A register holding `null` (Rust's `()` and `None`).
    pub(crate) fn null(&mut self) -> Reg {
        self.em.konst(Value::Null)
    }

    /// Stamps what follows with the start of `span`.
    pub(crate) fn at(&mut self, span: Span) {
        let start = span.start();
        // Line 0 means the span carries no location (inside a proc macro on
        // an older compiler); keep the previous one instead.
        if start.line > 0 {
            self.em.loc = Some((start.line as u32, start.column as u32 + 1));
        }
    }

    /// Enters one level of expression nesting; false (with an error) when too deep.
    pub(crate) fn enter(&mut self, span: Span) -> bool {
        if self.depth >= MAX_DEPTH {
            if !self
                .diags
                .iter()
                .any(|d| d.message.contains("nests too deeply"))
            {
                self.error(Diag::new(
                    span,
                    "this expression nests too deeply",
                    "split it with `let` bindings",
                ));
            }
            return false;
        }
        self.depth += 1;
        true
    }

    /// Leaves a level entered with [`Lowerer::enter`].
    pub(crate) fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    pub(crate) fn push_scope(&mut self) {
        self.scopes.push(BTreeMap::new());
    }

    pub(crate) fn pop_scope(&mut self) {
        // The outermost scope holds the parameters and is never popped.
        if self.scopes.len() > 1 {
            self.scopes.pop();
        }
    }

    /// Leaves the innermost scope, returning the variables it declared.
    pub(crate) fn take_scope(&mut self) -> BTreeMap<String, Reg> {
        if self.scopes.len() > 1 {
            self.scopes.pop().unwrap_or_default()
        } else {
            BTreeMap::new()
        }
    }

    /// Names `reg` as variable `name` in the innermost scope (shadowing).
    pub(crate) fn declare(&mut self, name: &str, reg: Reg) {
        self.var_regs.insert(reg);
        if let Some(s) = self.scopes.last_mut() {
            s.insert(name.to_owned(), reg);
        }
    }

    /// Binds `name` to the value in `src`: reuses `src` when it is a
    /// temporary, copies it when it already belongs to a variable.
    pub(crate) fn bind(&mut self, name: &str, src: Reg) -> Reg {
        let reg = if self.var_regs.contains(&src) {
            let r = self.em.reg();
            self.em.emit(drover_ir::Inst::Move { dst: r, src });
            r
        } else {
            src
        };
        self.declare(name, reg);
        reg
    }

    /// The register of variable `name`, innermost first.
    pub(crate) fn lookup(&self, name: &str) -> Option<Reg> {
        self.scopes.iter().rev().find_map(|s| s.get(name).copied())
    }

    /// Every variable name in scope, for "did you mean" hints.
    pub(crate) fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.scopes.iter().flat_map(|s| s.keys().cloned()).collect();
        v.sort();
        v.dedup();
        v
    }

    /// Whether `reg` holds a variable (rather than a temporary).
    pub(crate) fn is_var(&self, reg: Reg) -> bool {
        self.var_regs.contains(&reg)
    }

    /// Remembers a use of an activity, pure function or child workflow, once
    /// per name, at its first span.
    pub(crate) fn note(list: &mut Vec<(String, Span)>, name: &str, span: Span) {
        if !list.iter().any(|(n, _)| n == name) {
            list.push((name.to_owned(), span));
        }
    }
}
