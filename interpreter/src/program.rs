//! A module checked once so that the hot loop can index it without checks
//! that could fail, plus the node's pure functions.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use drover_ir::instructions::OperandRef;
use drover_ir::{Block, Inst, InstAddr, Module, Value, WorkflowId};

use crate::error::LoadError;

/// A `#[pure]` function: deterministic, no IO, called inline by name.
pub trait PureFn: Fn(&[Value]) -> Result<Value, String> + Send + Sync {}

impl<F: Fn(&[Value]) -> Result<Value, String> + Send + Sync> PureFn for F {}

/// The pure functions a node registers, by name.
#[derive(Clone, Default)]
pub struct PureFns {
    fns: BTreeMap<String, Arc<dyn PureFn>>,
}

impl PureFns {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `f` under `name`, replacing any earlier one.
    pub fn register(&mut self, name: &str, f: impl PureFn + 'static) -> &mut Self {
        self.fns.insert(name.to_owned(), Arc::new(f));
        self
    }

    /// The function called `name`.
    pub fn get(&self, name: &str) -> Option<&dyn PureFn> {
        self.fns.get(name).map(|f| &**f)
    }
}

impl fmt::Debug for PureFns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.fns.keys()).finish()
    }
}

/// The deepest constant a module may hold; deeper values are refused when
/// the program loads, so nothing the interpreter walks recursively is deep.
pub const MAX_CONST_DEPTH: usize = 64;

/// The most registers a workflow may use; bounds the memory of each fiber.
pub const MAX_REGS: usize = 1 << 16;

/// What the interpreter derives from a workflow when loading it.
#[derive(Clone, Debug)]
pub(crate) struct Prepared {
    pub(crate) num_regs: usize,
    pub(crate) num_params: usize,
}

/// A loaded module: every id checked in range, every block ending with its
/// one terminator. Cheap to clone.
#[derive(Clone)]
pub struct Program {
    module: Arc<Module>,
    prepared: Arc<[Prepared]>,
    pure: Arc<PureFns>,
}

impl fmt::Debug for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Program")
            .field("workflows", &self.module.workflows.len())
            .field("pure", &self.pure)
            .finish()
    }
}

impl Program {
    /// Checks `module` and loads it with no pure functions.
    pub fn new(module: Module) -> Result<Program, LoadError> {
        let mut prepared = Vec::with_capacity(module.workflows.len());
        for (i, c) in module.consts.iter().enumerate() {
            if c.depth() > MAX_CONST_DEPTH {
                return Err(LoadError::ConstTooDeep {
                    index: i as u32,
                    limit: MAX_CONST_DEPTH,
                });
            }
        }
        for (wi, wf) in module.workflows.iter().enumerate() {
            let workflow = WorkflowId(wi as u32);
            if module.workflows[..wi].iter().any(|w| w.name == wf.name) {
                return Err(LoadError::DuplicateWorkflow {
                    name: wf.name.clone(),
                });
            }
            if wf.blocks.is_empty() {
                return Err(LoadError::NoBlocks {
                    workflow,
                    name: wf.name.clone(),
                });
            }
            for (bi, block) in wf.blocks.iter().enumerate() {
                let b = Block(bi as u32);
                let Some(last) = block.insts.last() else {
                    return Err(LoadError::EmptyBlock { workflow, block: b });
                };
                if !last.is_terminator() {
                    return Err(LoadError::NoTerminator { workflow, block: b });
                }
                for (ii, inst) in block.insts.iter().enumerate() {
                    let at = InstAddr::new(workflow, b, ii as u32);
                    if ii + 1 < block.insts.len() && inst.is_terminator() {
                        return Err(LoadError::TerminatorInside { at });
                    }
                    check_inst(&module, wf.blocks.len(), at, inst)?;
                }
            }
            // Registers need no check of their own: a frame has `num_regs`
            // registers, which by construction exceeds every one named.
            let num_regs = wf.num_regs();
            if num_regs > MAX_REGS {
                return Err(LoadError::TooManyRegs {
                    workflow,
                    regs: num_regs,
                    limit: MAX_REGS,
                });
            }
            prepared.push(Prepared {
                num_regs,
                num_params: wf.params.len(),
            });
        }
        Ok(Program {
            module: Arc::new(module),
            prepared: prepared.into(),
            pure: Arc::new(PureFns::new()),
        })
    }

    /// The same program calling these pure functions.
    pub fn with_pure(mut self, pure: PureFns) -> Program {
        self.pure = Arc::new(pure);
        self
    }

    /// The module, as loaded.
    pub fn module(&self) -> &Module {
        &self.module
    }

    /// The registered pure functions.
    pub fn pure_fns(&self) -> &PureFns {
        &self.pure
    }

    pub(crate) fn prepared(&self, w: WorkflowId) -> Option<&Prepared> {
        self.prepared.get(w.index())
    }
}

fn check_inst(module: &Module, blocks: usize, at: InstAddr, inst: &Inst) -> Result<(), LoadError> {
    let mut result = Ok(());
    inst.for_each_operand(|op| {
        if result.is_err() {
            return;
        }
        let bad_block = |b: &Block| {
            if b.index() >= blocks {
                Err(LoadError::BadBlock { at, block: *b })
            } else {
                Ok(())
            }
        };
        result = match op {
            OperandRef::Block(b) => bad_block(b),
            OperandRef::OptBlock(Some(b)) => bad_block(b),
            OperandRef::Arms(arms) => arms.iter().try_for_each(|(_, b)| bad_block(b)),
            OperandRef::Const(c) if module.constant(*c).is_none() => {
                Err(LoadError::BadConst { at, index: c.0 })
            }
            OperandRef::Effect(e) if module.effect(*e).is_none() => {
                Err(LoadError::BadEffect { at, index: e.0 })
            }
            _ => Ok(()),
        };
    });
    result
}
