//! The verifier: checks that a module is well formed before anyone runs it,
//! and reports every problem it finds, each at the most precise
//! [`Location`] it can name, so that miette can point into the assembly text.
//!
//! It takes any [`Module`], including one decoded from hostile bytes, and
//! never panics: every id is range-checked before it is followed, and no
//! allocation is sized by an untrusted number until that number is capped.
//!
//! # Errors
//!
//! Names
//! - `verify::duplicate-workflow`, `verify::duplicate-effect`: two
//!   workflows, or two effects, have the same name (reported at the second).
//! - `verify::duplicate-param`: two parameters of a workflow share a name.
//! - `verify::duplicate-label`: two blocks of a workflow share a label.
//!
//! Control flow
//! - `verify::no-blocks`: a workflow has no blocks, so no entry.
//! - `verify::empty-block`: a block has no instructions.
//! - `verify::missing-terminator`: a block's last instruction is not a
//!   terminator, so execution would fall off its end.
//! - `verify::dead-code`: a terminator is followed by more instructions
//!   (reported once, at the first of them).
//! - `verify::bad-target`: a `jmp`, `br`, `match` or `spawn` names a block
//!   that does not exist.
//!
//! References
//! - `verify::bad-const`: a `const` names a constant outside the pool.
//! - `verify::bad-effect`: a `perform` names an effect outside the table.
//! - `verify::register-too-large`: a register number exceeds
//!   [`MAX_REGISTER`] (or a workflow has more parameters than registers);
//!   use-before-def analysis is skipped for that workflow.
//!
//! Effects and arities
//! - `verify::unknown-effect`: a built-in effect is not in
//!   [`crate::catalog`] (the help names the closest one).
//! - `verify::effect-arity`: a built-in effect is declared with a different
//!   number of parameters than the catalog gives it.
//! - `verify::reserved-namespace`: an activity is named inside a namespace
//!   reserved for built-in effects, such as `memcache.`.
//! - `verify::arity`: a `perform`, `builtin`, or `call` of a workflow of this
//!   module passes the wrong number of arguments.
//! - `verify::format-placeholders`: a `format` template has a different
//!   number of `{}` than arguments.
//! - `verify::format-brace`: a `format` template has a `{` or `}` that is
//!   neither a placeholder nor an escape (`{{`, `}}`).
//! - `verify::duplicate-arm`: a `match` has two arms with the same tag.
//! - `verify::empty-match`: a `match` has no arms and no default.
//!
//! Registers
//! - `verify::use-before-def`: on some path from the entry, a register is
//!   read before anything wrote it. This is a forward "definitely assigned"
//!   dataflow over the control-flow graph: parameters `r0..rN` are assigned
//!   at entry, an instruction's operands are checked before its destination
//!   is assigned, and `spawn LABEL` is an edge to LABEL carrying the
//!   registers assigned before the spawn (the new fiber starts with a copy).
//!   Unreachable blocks and dead code are not analysed.
//! - `verify::too-large`: a workflow's blocks times registers exceed the
//!   analysis budget ([`MAX_DATAFLOW_BITS`]); use-before-def is skipped.
//!
//! # Warnings
//!
//! - `verify::unreachable-block`: no path of jumps, branches, matches and
//!   spawns leads from the entry to the block.
//! - `verify::unknown-workflow`: a `call` names a workflow that is not in
//!   this module; it is resolved at run time.

mod checks;
mod dataflow;
mod report;
#[cfg(test)]
mod tests;

pub use report::{Diag, Report, Severity, VerifyDiagnostic};

use crate::entities::WorkflowId;
use crate::module::{Location, Module};

/// The highest register number a module may use. It bounds the frame the
/// interpreter allocates and the bitsets the verifier does.
pub const MAX_REGISTER: u32 = 65_535;

/// The most bits (reachable blocks times registers) the use-before-def
/// analysis of one workflow may allocate: 16 MiB.
pub const MAX_DATAFLOW_BITS: usize = 1 << 27;

/// The stable codes of [`Diag::code`], one per check (see the module docs).
pub mod codes {
    /// Two workflows share a name.
    pub const DUPLICATE_WORKFLOW: &str = "verify::duplicate-workflow";
    /// Two effects share a name.
    pub const DUPLICATE_EFFECT: &str = "verify::duplicate-effect";
    /// Two parameters of a workflow share a name.
    pub const DUPLICATE_PARAM: &str = "verify::duplicate-param";
    /// Two blocks of a workflow share a label.
    pub const DUPLICATE_LABEL: &str = "verify::duplicate-label";
    /// A workflow has no blocks.
    pub const NO_BLOCKS: &str = "verify::no-blocks";
    /// A block has no instructions.
    pub const EMPTY_BLOCK: &str = "verify::empty-block";
    /// A block does not end in a terminator.
    pub const MISSING_TERMINATOR: &str = "verify::missing-terminator";
    /// Instructions follow a terminator.
    pub const DEAD_CODE: &str = "verify::dead-code";
    /// A target block does not exist.
    pub const BAD_TARGET: &str = "verify::bad-target";
    /// A constant id is outside the pool.
    pub const BAD_CONST: &str = "verify::bad-const";
    /// An effect ref is outside the table.
    pub const BAD_EFFECT: &str = "verify::bad-effect";
    /// A built-in effect is not in the catalog.
    pub const UNKNOWN_EFFECT: &str = "verify::unknown-effect";
    /// A built-in effect is declared with the wrong parameters.
    pub const EFFECT_ARITY: &str = "verify::effect-arity";
    /// An activity is named in a built-in namespace.
    pub const RESERVED_NAMESPACE: &str = "verify::reserved-namespace";
    /// An instruction passes the wrong number of arguments.
    pub const ARITY: &str = "verify::arity";
    /// A format template's placeholders and arguments differ in number.
    pub const FORMAT_PLACEHOLDERS: &str = "verify::format-placeholders";
    /// A format template has an unmatched brace.
    pub const FORMAT_BRACE: &str = "verify::format-brace";
    /// A match has two arms with the same tag.
    pub const DUPLICATE_ARM: &str = "verify::duplicate-arm";
    /// A match has no arms and no default.
    pub const EMPTY_MATCH: &str = "verify::empty-match";
    /// A register may be read before it is written.
    pub const USE_BEFORE_DEF: &str = "verify::use-before-def";
    /// A register number exceeds the limit.
    pub const REGISTER_TOO_LARGE: &str = "verify::register-too-large";
    /// A workflow is too large for the dataflow analysis.
    pub const TOO_LARGE: &str = "verify::too-large";
    /// A block cannot be reached from the entry.
    pub const UNREACHABLE_BLOCK: &str = "verify::unreachable-block";
    /// A call names a workflow outside the module.
    pub const UNKNOWN_WORKFLOW: &str = "verify::unknown-workflow";
}

/// Checks a module and returns everything found, errors and warnings.
pub fn verify(m: &Module) -> Report {
    let mut v = Verifier {
        m,
        diags: Vec::new(),
    };
    checks::module(&mut v);
    for (i, w) in m.workflows.iter().enumerate() {
        let wid = WorkflowId(i as u32);
        let registers_ok = checks::workflow(&mut v, wid, w);
        dataflow::workflow(&mut v, wid, w, registers_ok);
    }
    let mut diags = v.diags;
    diags.sort_by(|a, b| {
        (sort_key(a.location), a.code, &a.message).cmp(&(sort_key(b.location), b.code, &b.message))
    });
    diags.dedup();
    Report { diags }
}

/// Text order: effects and constants first, then each workflow's header,
/// its blocks' labels and instructions, and within an instruction its
/// destination before its operands.
fn sort_key(loc: Location) -> (u8, u64, u64, u64, u64) {
    match loc {
        Location::Module => (0, 0, 0, 0, 0),
        Location::Effect(e) => (1, e.0.into(), 0, 0, 0),
        Location::Const(c) => (2, c.0.into(), 0, 0, 0),
        Location::Workflow(w) => (3, w.0.into(), 0, 0, 0),
        Location::Block(w, b) => (3, w.0.into(), u64::from(b.0) + 1, 0, 0),
        Location::Inst(a) => (
            3,
            a.workflow.0.into(),
            u64::from(a.block.0) + 1,
            u64::from(a.index) + 1,
            0,
        ),
        Location::Dst(a) => (
            3,
            a.workflow.0.into(),
            u64::from(a.block.0) + 1,
            u64::from(a.index) + 1,
            1,
        ),
        Location::Operand(a, n) => (
            3,
            a.workflow.0.into(),
            u64::from(a.block.0) + 1,
            u64::from(a.index) + 1,
            (n as u64).saturating_add(2),
        ),
    }
}

/// The state of one verification: the module and what was found so far.
struct Verifier<'m> {
    m: &'m Module,
    diags: Vec<Diag>,
}

impl Verifier<'_> {
    fn error(&mut self, code: &'static str, loc: Location, message: String, help: Option<String>) {
        self.push(Severity::Error, code, loc, message, help);
    }

    fn warning(
        &mut self,
        code: &'static str,
        loc: Location,
        message: String,
        help: Option<String>,
    ) {
        self.push(Severity::Warning, code, loc, message, help);
    }

    fn push(
        &mut self,
        severity: Severity,
        code: &'static str,
        location: Location,
        message: String,
        help: Option<String>,
    ) {
        let context = self.context(location);
        self.diags.push(Diag {
            severity,
            code,
            message,
            location,
            help,
            context,
        });
    }

    /// A location in words, with names looked up where the ids are in range.
    fn context(&self, loc: Location) -> String {
        let workflow = |w: WorkflowId| match self.m.workflows.get(w.index()) {
            Some(wf) => format!("{w} `{}`", wf.name),
            None => w.to_string(),
        };
        let block = |w: WorkflowId, b: crate::Block| {
            let label = self
                .m
                .workflows
                .get(w.index())
                .and_then(|wf| wf.block(b))
                .map(|bd| format!(" `{}`", bd.label))
                .unwrap_or_default();
            format!("{} {b}{label}", workflow(w))
        };
        match loc {
            Location::Module => String::new(),
            Location::Effect(e) => match self.m.effect(e) {
                Some(d) => format!("effect {e} `{}`", d.name),
                None => format!("effect {e}"),
            },
            Location::Const(c) => format!("constant {c}"),
            Location::Workflow(w) => workflow(w),
            Location::Block(w, b) => block(w, b),
            Location::Inst(a) | Location::Dst(a) | Location::Operand(a, _) => {
                format!("{} #{}", block(a.workflow, a.block), a.index)
            }
        }
    }
}
