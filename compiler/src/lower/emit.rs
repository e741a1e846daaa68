//! The emitter: blocks, registers, constants and effects of the one workflow
//! being lowered, assembled into a [`Module`] at the end.
//!
//! Lowering never has to ask "is this code reachable?": after a terminator,
//! [`Emitter::emit`] opens a fresh block that nothing jumps to, and
//! [`Emitter::finish`] drops every block the entry cannot reach. That keeps
//! `return`, `break` and `?` in the middle of a block simple and leaves the
//! verifier nothing to warn about.

use std::collections::BTreeMap;

use drover_ir::{
    instructions::OperandMut, Block, BlockData, EffectDecl, EffectKind, EffectRef, Inst, InstAddr,
    Module, Reg, SourceMap, Span, Value, Workflow, WorkflowId,
};

/// A 1-based line and column in the Rust source.
pub(crate) type Loc = (u32, u32);

/// A block while it is being filled.
struct BlockBuf {
    label: String,
    insts: Vec<(Inst, Option<Loc>)>,
    /// When the block got its first instruction: blocks are laid out in
    /// that order, so the listing reads in the order of the source.
    order: u32,
}

/// Builds one workflow's blocks and the module tables they refer to.
pub(crate) struct Emitter {
    blocks: Vec<BlockBuf>,
    cur: Block,
    next_reg: u32,
    consts: Vec<Value>,
    effects: Vec<EffectDecl>,
    /// How many blocks used each label hint, so labels stay unique and stable.
    label_counts: BTreeMap<String, u32>,
    /// The source location stamped on the instructions emitted now.
    pub(crate) loc: Option<Loc>,
    /// How many blocks have received an instruction.
    started: u32,
}

impl Emitter {
    /// An emitter whose entry block is current and whose first `params`
    /// registers hold the parameters.
    pub(crate) fn new(params: usize) -> Emitter {
        Emitter {
            blocks: vec![BlockBuf {
                label: "entry".to_owned(),
                insts: Vec::new(),
                order: 0,
            }],
            cur: Block(0),
            next_reg: params as u32,
            consts: Vec::new(),
            effects: Vec::new(),
            label_counts: BTreeMap::new(),
            loc: None,
            started: 1,
        }
    }

    /// A register nothing has written yet.
    pub(crate) fn reg(&mut self) -> Reg {
        let r = Reg(self.next_reg);
        self.next_reg = self.next_reg.saturating_add(1);
        r
    }

    /// A new empty block, labelled from `hint`.
    pub(crate) fn block(&mut self, hint: &str) -> Block {
        let n = self.label_counts.entry(hint.to_owned()).or_insert(0);
        *n += 1;
        let label = format!("{hint}{n}");
        self.blocks.push(BlockBuf {
            label,
            insts: Vec::new(),
            order: u32::MAX,
        });
        Block(self.blocks.len() as u32 - 1)
    }

    /// Continues emitting into `b`.
    pub(crate) fn switch_to(&mut self, b: Block) {
        self.cur = b;
    }

    /// The block being filled.
    pub(crate) fn current(&self) -> Block {
        self.cur
    }

    /// Whether the current block already ended, so what follows is dead.
    pub(crate) fn terminated(&self) -> bool {
        self.blocks[self.cur.index()]
            .insts
            .last()
            .is_some_and(|(i, _)| i.is_terminator())
    }

    /// Appends an instruction to the current block, or to a fresh unreachable
    /// block when the current one already ended.
    pub(crate) fn emit(&mut self, inst: Inst) {
        if self.terminated() {
            let dead = self.block("dead");
            self.cur = dead;
        }
        let loc = self.loc;
        let buf = &mut self.blocks[self.cur.index()];
        if buf.insts.is_empty() && buf.order == u32::MAX {
            buf.order = self.started;
            self.started += 1;
        }
        buf.insts.push((inst, loc));
    }

    /// Ends the current block with a jump to `target`, unless it already ended.
    pub(crate) fn jump(&mut self, target: Block) {
        if !self.terminated() {
            self.emit(Inst::Jump { target });
        }
    }

    /// The test of a counted loop: `more = lt i, n; br more, body, exit`.
    pub(crate) fn branch_while_less(&mut self, i: Reg, n: Reg, body: Block, exit: Block) {
        let more = self.reg();
        self.emit(Inst::Lt {
            dst: more,
            a: i,
            b: n,
        });
        self.emit(Inst::Branch {
            cond: more,
            then_block: body,
            else_block: exit,
        });
    }

    /// `dst = const v`, into a new register.
    pub(crate) fn konst(&mut self, v: Value) -> Reg {
        let dst = self.reg();
        self.konst_into(dst, v);
        dst
    }

    /// `dst = const v`.
    pub(crate) fn konst_into(&mut self, dst: Reg, v: Value) {
        let value = drover_ir::ConstId(match self.consts.iter().position(|c| *c == v) {
            Some(i) => i as u32,
            None => {
                self.consts.push(v);
                self.consts.len() as u32 - 1
            }
        });
        self.emit(Inst::Const { dst, value });
    }

    /// The effect table entry for `name`, declaring it on first use.
    /// Returns `None` when `name` was declared before with other parameters.
    pub(crate) fn effect(
        &mut self,
        kind: EffectKind,
        name: &str,
        params: Vec<String>,
    ) -> Option<EffectRef> {
        if let Some(i) = self.effects.iter().position(|e| e.name == name) {
            let same = self.effects[i].params.len() == params.len();
            return same.then_some(EffectRef(i as u32));
        }
        self.effects.push(EffectDecl {
            kind,
            name: name.to_owned(),
            params,
        });
        Some(EffectRef(self.effects.len() as u32 - 1))
    }

    /// Assembles the module: keeps the blocks reachable from the entry (in
    /// creation order), renumbers their targets, and builds the source map.
    /// Returns the index of a reachable block that has no terminator, which
    /// would be a bug in the lowering, as `Err`.
    pub(crate) fn finish(
        self,
        name: &str,
        params: Vec<String>,
        file: &str,
    ) -> Result<Module, String> {
        let reachable = self.reachable();
        let mut layout: Vec<usize> = (0..self.blocks.len()).filter(|i| reachable[*i]).collect();
        layout.sort_by_key(|i| self.blocks[*i].order);
        let mut renumber = vec![None; self.blocks.len()];
        for (new, old) in layout.iter().enumerate() {
            renumber[*old] = Some(Block(new as u32));
        }
        let mut bufs: Vec<Option<BlockBuf>> = self.blocks.into_iter().map(Some).collect();
        let mut source_map = SourceMap::default();
        let file_id = source_map.intern_file(file);
        let mut blocks = Vec::new();
        for old in layout {
            let Some(buf) = bufs[old].take() else {
                continue;
            };
            let Some(new_id) = renumber[old] else {
                continue;
            };
            if !buf.insts.last().is_some_and(|(i, _)| i.is_terminator()) {
                return Err(format!("block `{}` has no terminator", buf.label));
            }
            let mut insts = Vec::with_capacity(buf.insts.len());
            for (index, (mut inst, loc)) in buf.insts.into_iter().enumerate() {
                inst.for_each_operand_mut(|op| match op {
                    OperandMut::Block(b) => *b = renumber[b.index()].unwrap_or(*b),
                    OperandMut::OptBlock(Some(b)) => *b = renumber[b.index()].unwrap_or(*b),
                    OperandMut::Arms(arms) => {
                        for (_, b) in arms.iter_mut() {
                            *b = renumber[b.index()].unwrap_or(*b);
                        }
                    }
                    _ => {}
                });
                if let Some((line, col)) = loc {
                    let addr = InstAddr::new(WorkflowId(0), new_id, index as u32);
                    source_map.insert(
                        addr,
                        Span {
                            file: file_id,
                            line,
                            col,
                        },
                    );
                }
                insts.push(inst);
            }
            blocks.push(BlockData {
                label: buf.label,
                insts,
            });
        }
        Ok(Module {
            effects: self.effects,
            consts: self.consts,
            workflows: vec![Workflow {
                name: name.to_owned(),
                params,
                blocks,
            }],
            source_map,
        })
    }

    /// Which blocks a path of jumps, branches, matches and spawns reaches
    /// from the entry.
    fn reachable(&self) -> Vec<bool> {
        let mut seen = vec![false; self.blocks.len()];
        let mut stack = vec![0usize];
        seen[0] = true;
        while let Some(b) = stack.pop() {
            for (inst, _) in &self.blocks[b].insts {
                // `targets` includes the block a `spawn` starts its fiber at.
                for t in inst.targets() {
                    if t.index() < seen.len() && !seen[t.index()] {
                        seen[t.index()] = true;
                        stack.push(t.index());
                    }
                }
                // What follows a terminator in the same buffer never runs.
                if inst.is_terminator() {
                    break;
                }
            }
        }
        seen
    }
}
