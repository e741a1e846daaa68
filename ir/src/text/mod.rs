//! The text assembly (`.dasm`): a printer and a nom parser that round-trip,
//! `print(parse(print(m))) == print(m)`.

use std::ops::Range;

use crate::entities::{Block, InstAddr, WorkflowId};
use crate::module::Location;

mod parse;
mod print;

pub use parse::{assemble, parse, parse_value, parse_with_map, ParseError, ParseErrors};
pub use print::{print, print_inst, print_with_map};

/// Byte ranges of a module's parts in its text, as the parser read them or
/// the printer wrote them. Diagnostics use it to point into the text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TextMap {
    /// The `effect`/`activity` declaration of each effect, by `EffectRef`.
    pub effects: Vec<Range<usize>>,
    /// By `WorkflowId`.
    pub workflows: Vec<WorkflowText>,
}

/// Where a workflow stands in the text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkflowText {
    /// The `workflow NAME(PARAMS)` header.
    pub header: Range<usize>,
    /// By `Block`.
    pub blocks: Vec<BlockText>,
}

/// Where a block stands in the text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockText {
    /// The `label:` line.
    pub label: Range<usize>,
    /// By index in the block.
    pub insts: Vec<InstText>,
}

/// Where an instruction and its parts stand in the text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstText {
    pub whole: Range<usize>,
    pub dst: Option<Range<usize>>,
    /// Operands in text order, after the mnemonic.
    pub operands: Vec<Range<usize>>,
}

impl TextMap {
    fn inst(&self, addr: InstAddr) -> Option<&InstText> {
        self.workflows
            .get(addr.workflow.index())?
            .blocks
            .get(addr.block.index())?
            .insts
            .get(addr.index as usize)
    }

    fn block(&self, w: WorkflowId, b: Block) -> Option<&BlockText> {
        self.workflows.get(w.index())?.blocks.get(b.index())
    }

    /// The text span of a location, falling back to the enclosing part when
    /// the exact part was not recorded.
    pub fn locate(&self, loc: Location) -> Option<Range<usize>> {
        match loc {
            Location::Module | Location::Const(_) => None,
            Location::Effect(e) => self.effects.get(e.index()).cloned(),
            Location::Workflow(w) => self.workflows.get(w.index()).map(|w| w.header.clone()),
            Location::Block(w, b) => self.block(w, b).map(|b| b.label.clone()),
            Location::Inst(a) => self.inst(a).map(|i| i.whole.clone()),
            Location::Dst(a) => self
                .inst(a)
                .and_then(|i| i.dst.clone())
                .or_else(|| self.locate(Location::Inst(a))),
            Location::Operand(a, n) => self
                .inst(a)
                .and_then(|i| i.operands.get(n).cloned())
                .or_else(|| self.locate(Location::Inst(a))),
        }
    }
}
