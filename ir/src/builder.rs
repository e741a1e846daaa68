//! A small builder for modules, for the compiler and for tests.
//!
//! ```
//! use drover_ir::builder::ModuleBuilder;
//! use drover_ir::{EffectKind, Inst, Value};
//!
//! let mut m = ModuleBuilder::new();
//! let get = m.effect(EffectKind::Builtin, "memcache.get", &["key"]);
//! m.workflow("lookup", &["key"], |w| {
//!     let key = w.param(0);
//!     let found = w.new_reg();
//!     w.push(Inst::Perform { dst: found, effect: get, args: vec![key], policy: Default::default() });
//!     w.push(Inst::Ret { value: found });
//! });
//! let module = m.finish();
//! assert_eq!(module.workflows[0].blocks[0].insts.len(), 2);
//! ```
//!
//! The builder does no checking beyond what construction needs: a block
//! without a terminator, or a register used before it is written, is the
//! verifier's business.

use crate::entities::{Block, ConstId, EffectRef, Reg, WorkflowId};
use crate::instructions::Inst;
use crate::module::{BlockData, EffectDecl, EffectKind, Module, Workflow};
use crate::value::Value;

/// Builds a [`Module`] one effect, constant and workflow at a time.
#[derive(Debug, Default)]
pub struct ModuleBuilder {
    module: Module,
}

impl ModuleBuilder {
    /// An empty module.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares an effect, or returns the existing entry of the same name.
    pub fn effect(&mut self, kind: EffectKind, name: &str, params: &[&str]) -> EffectRef {
        effect_in(&mut self.module, kind, name, params)
    }

    /// Interns a constant in the pool.
    pub fn constant(&mut self, value: Value) -> ConstId {
        self.module.intern_const(value)
    }

    /// Adds a workflow whose body `build` writes, starting in the entry block.
    pub fn workflow(
        &mut self,
        name: &str,
        params: &[&str],
        build: impl FnOnce(&mut WorkflowBuilder<'_>),
    ) -> WorkflowId {
        let mut w = WorkflowBuilder {
            module: &mut self.module,
            workflow: Workflow {
                name: name.to_owned(),
                params: params.iter().map(|p| (*p).to_owned()).collect(),
                blocks: vec![BlockData {
                    label: "entry".to_owned(),
                    insts: Vec::new(),
                }],
            },
            current: Block(0),
            next_reg: params.len() as u32,
        };
        build(&mut w);
        let workflow = w.workflow;
        self.module.workflows.push(workflow);
        WorkflowId(self.module.workflows.len() as u32 - 1)
    }

    /// The finished module.
    pub fn finish(self) -> Module {
        self.module
    }
}

fn effect_in(module: &mut Module, kind: EffectKind, name: &str, params: &[&str]) -> EffectRef {
    if let Some(i) = module.effects.iter().position(|e| e.name == name) {
        return EffectRef(i as u32);
    }
    module.effects.push(EffectDecl {
        kind,
        name: name.to_owned(),
        params: params.iter().map(|p| (*p).to_owned()).collect(),
    });
    EffectRef(module.effects.len() as u32 - 1)
}

/// Builds one workflow's blocks; handed out by [`ModuleBuilder::workflow`].
#[derive(Debug)]
pub struct WorkflowBuilder<'m> {
    module: &'m mut Module,
    workflow: Workflow,
    current: Block,
    next_reg: u32,
}

impl WorkflowBuilder<'_> {
    /// The register that holds parameter `i`.
    pub fn param(&self, i: usize) -> Reg {
        Reg(i as u32)
    }

    /// A register not used so far.
    pub fn new_reg(&mut self) -> Reg {
        let r = Reg(self.next_reg);
        self.next_reg += 1;
        r
    }

    /// A new, empty block; instructions still go to the current block until
    /// [`switch_to`](Self::switch_to).
    pub fn new_block(&mut self, label: &str) -> Block {
        self.workflow.blocks.push(BlockData {
            label: label.to_owned(),
            insts: Vec::new(),
        });
        Block(self.workflow.blocks.len() as u32 - 1)
    }

    /// Makes `block` the one that [`push`](Self::push) appends to.
    pub fn switch_to(&mut self, block: Block) {
        self.current = block;
    }

    /// The block that [`push`](Self::push) appends to.
    pub fn current(&self) -> Block {
        self.current
    }

    /// Appends an instruction to the current block. A `block` that did not
    /// come from this builder is ignored rather than grown into, so the
    /// builder cannot invent blocks.
    pub fn push(&mut self, inst: Inst) {
        if let Some(b) = self.workflow.blocks.get_mut(self.current.index()) {
            b.insts.push(inst);
        }
    }

    /// Loads `value` into a new register and returns it.
    pub fn konst(&mut self, value: Value) -> Reg {
        let dst = self.new_reg();
        let c = self.module.intern_const(value);
        self.push(Inst::Const { dst, value: c });
        dst
    }

    /// Interns a constant in the module's pool.
    pub fn constant(&mut self, value: Value) -> ConstId {
        self.module.intern_const(value)
    }

    /// Declares an effect in the module, or returns the existing entry.
    pub fn effect(&mut self, kind: EffectKind, name: &str, params: &[&str]) -> EffectRef {
        effect_in(self.module, kind, name, params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effects_dedup_by_name_and_registers_follow_params() {
        let mut m = ModuleBuilder::new();
        let a = m.effect(EffectKind::Builtin, "sys.now", &[]);
        let b = m.effect(EffectKind::Builtin, "sys.now", &[]);
        assert_eq!(a, b);
        m.workflow("w", &["x", "y"], |w| {
            assert_eq!(w.param(1), Reg(1));
            assert_eq!(w.new_reg(), Reg(2));
            let one = w.konst(Value::Int(1));
            assert_eq!(one, Reg(3));
            let exit = w.new_block("exit");
            w.push(Inst::Jump { target: exit });
            w.switch_to(exit);
            w.push(Inst::Ret { value: one });
        });
        let module = m.finish();
        let wf = &module.workflows[0];
        assert_eq!(wf.blocks.len(), 2);
        assert_eq!(wf.blocks[0].insts.len(), 2);
        assert_eq!(wf.blocks[1].label, "exit");
        assert_eq!(module.consts, vec![Value::Int(1)]);
        assert_eq!(wf.num_regs(), 4);
    }
}
