//! Modules, workflows, blocks, the effect table and the source map.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::entities::{Block, ConstId, EffectRef, FileId, InstAddr, Reg, WorkflowId};
use crate::instructions::{Inst, OperandRef};
use crate::value::Value;

/// A compiled unit: workflows with the constants, effects and source map they
/// share. A module is identified by the hash of its encoded bytes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Module {
    /// The effect table; `perform` refers to it by [`EffectRef`].
    pub effects: Vec<EffectDecl>,
    /// The constant pool; `const` refers to it by [`ConstId`].
    pub consts: Vec<Value>,
    pub workflows: Vec<Workflow>,
    pub source_map: SourceMap,
}

/// Whether an effect is a built-in primitive or a user activity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EffectKind {
    /// A primitive from the built-in catalog, such as `memcache.get`.
    Builtin,
    /// A native `#[activity]` function registered in the node.
    Activity,
}

/// One entry of the effect table.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EffectDecl {
    pub kind: EffectKind,
    pub name: String,
    pub params: Vec<String>,
}

/// A workflow: named parameters and basic blocks. Parameter `i` arrives in
/// register `ri`; `blocks[0]` is the entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Workflow {
    pub name: String,
    pub params: Vec<String>,
    pub blocks: Vec<BlockData>,
}

/// A basic block: a label and instructions, the last of which is a terminator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockData {
    pub label: String,
    pub insts: Vec<Inst>,
}

/// A position in a source file.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Span {
    pub file: FileId,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub col: u32,
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// Links instructions to the source they were written or compiled from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceMap {
    pub files: Vec<String>,
    /// Sorted by address, at most one entry per instruction.
    pub spans: Vec<(InstAddr, Span)>,
}

impl SourceMap {
    /// The span of the instruction at `addr`, if it has one.
    pub fn span(&self, addr: InstAddr) -> Option<Span> {
        self.spans
            .binary_search_by_key(&addr, |(a, _)| *a)
            .ok()
            .map(|i| self.spans[i].1)
    }

    /// The name of a file of the map.
    pub fn file(&self, id: FileId) -> Option<&str> {
        self.files.get(id.index()).map(String::as_str)
    }

    /// `file:line:col` of the instruction at `addr`.
    pub fn describe(&self, addr: InstAddr) -> Option<String> {
        let span = self.span(addr)?;
        let file = self.file(span.file).unwrap_or("?");
        Some(format!("{file}:{}:{}", span.line, span.col))
    }

    /// The id of `name`, adding it if it is new.
    pub fn intern_file(&mut self, name: &str) -> FileId {
        if let Some(i) = self.files.iter().position(|f| f == name) {
            return FileId(i as u32);
        }
        self.files.push(name.to_owned());
        FileId(self.files.len() as u32 - 1)
    }

    /// Records the span of an instruction, keeping the entries sorted.
    pub fn insert(&mut self, addr: InstAddr, span: Span) {
        match self.spans.binary_search_by_key(&addr, |(a, _)| *a) {
            Ok(i) => self.spans[i].1 = span,
            Err(i) => self.spans.insert(i, (addr, span)),
        }
    }
}

impl Module {
    pub fn workflow(&self, name: &str) -> Option<(WorkflowId, &Workflow)> {
        self.workflows
            .iter()
            .enumerate()
            .find(|(_, w)| w.name == name)
            .map(|(i, w)| (WorkflowId(i as u32), w))
    }

    pub fn constant(&self, id: ConstId) -> Option<&Value> {
        self.consts.get(id.index())
    }

    pub fn effect(&self, id: EffectRef) -> Option<&EffectDecl> {
        self.effects.get(id.index())
    }

    /// The instruction at `addr`, if the address is in range.
    pub fn inst(&self, addr: InstAddr) -> Option<&Inst> {
        self.workflows
            .get(addr.workflow.index())?
            .blocks
            .get(addr.block.index())?
            .insts
            .get(addr.index as usize)
    }

    /// Where an instruction is, for people: `` `scan_email` block `miss` #2 ``,
    /// followed by its source location when the source map has one.
    pub fn place(&self, addr: InstAddr) -> String {
        let wf = self.workflows.get(addr.workflow.index());
        let mut out = match wf {
            Some(w) => format!("`{}`", w.name),
            None => addr.workflow.to_string(),
        };
        match wf.and_then(|w| w.block(addr.block)) {
            Some(b) => out.push_str(&format!(" block `{}` #{}", b.label, addr.index)),
            None => out.push_str(&format!(" {}#{}", addr.block, addr.index)),
        }
        if let Some(loc) = self.source_map.describe(addr) {
            out.push_str(&format!(" ({loc})"));
        }
        out
    }

    /// The id of a constant equal to `v`, adding it to the pool if it is new.
    pub fn intern_const(&mut self, v: Value) -> ConstId {
        if let Some(i) = self.consts.iter().position(|c| *c == v) {
            return ConstId(i as u32);
        }
        self.consts.push(v);
        ConstId(self.consts.len() as u32 - 1)
    }

    /// The names of the effects that `perform` instructions use, sorted.
    pub fn effects_used(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .workflows
            .iter()
            .flat_map(|w| w.blocks.iter().flat_map(|b| b.insts.iter()))
            .filter_map(|inst| match inst {
                Inst::Perform { effect, .. } => self.effect(*effect).map(|e| e.name.as_str()),
                _ => None,
            })
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }
}

impl Workflow {
    /// The number of registers a frame needs: one past the highest register
    /// named by a parameter, a destination or an operand.
    pub fn num_regs(&self) -> usize {
        let mut max = self.params.len();
        for inst in self.blocks.iter().flat_map(|b| b.insts.iter()) {
            if let Some(Reg(d)) = inst.dst() {
                max = max.max(d as usize + 1);
            }
            inst.for_each_operand(|op| {
                let mut see = |r: &Reg| max = max.max(r.index() + 1);
                match op {
                    OperandRef::Reg(r) => see(r),
                    OperandRef::Regs(rs) => rs.iter().for_each(see),
                    OperandRef::OptReg(Some(r)) => see(r),
                    OperandRef::Fields(fs) => fs.iter().for_each(|(_, r)| see(r)),
                    _ => {}
                }
            });
        }
        max
    }

    /// The number of instructions in all blocks.
    pub fn inst_count(&self) -> usize {
        self.blocks.iter().map(|b| b.insts.len()).sum()
    }

    pub fn block(&self, b: Block) -> Option<&BlockData> {
        self.blocks.get(b.index())
    }

    /// The block labelled `label`.
    pub fn block_by_label(&self, label: &str) -> Option<Block> {
        self.blocks
            .iter()
            .position(|b| b.label == label)
            .map(|i| Block(i as u32))
    }
}

/// A place in a module, for diagnostics: the verifier reports errors at
/// locations, and a [`crate::text::TextMap`] turns them into text spans.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Location {
    Module,
    Effect(EffectRef),
    Const(ConstId),
    Workflow(WorkflowId),
    Block(WorkflowId, Block),
    Inst(InstAddr),
    /// The destination register of an instruction.
    Dst(InstAddr),
    /// Operand `n` (in text order, after the mnemonic) of an instruction.
    Operand(InstAddr, usize),
}
