//! Typed ids for the entities of a module: registers, blocks, constants,
//! effects, workflows, and instruction addresses.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! entity {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u32);

        impl $name {
            /// The id as an index into the owning table.
            pub fn index(self) -> usize {
                self.0 as usize
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }
    };
}

entity!(
    /// A register of a workflow's frame. Parameters occupy `r0..rN`.
    Reg,
    "r"
);
entity!(
    /// A basic block of a workflow; `Block(0)` is the entry.
    Block,
    "bb"
);
entity!(
    /// An entry of the module's constant pool.
    ConstId,
    "c"
);
entity!(
    /// An entry of the module's effect table.
    EffectRef,
    "e"
);
entity!(
    /// A workflow of the module, by position.
    WorkflowId,
    "w"
);
entity!(
    /// A file of the module's source map.
    FileId,
    "f"
);

/// The address of one instruction: workflow, block, and index in the block.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct InstAddr {
    pub workflow: WorkflowId,
    pub block: Block,
    pub index: u32,
}

impl InstAddr {
    pub fn new(workflow: WorkflowId, block: Block, index: u32) -> Self {
        Self {
            workflow,
            block,
            index,
        }
    }
}

impl fmt::Display for InstAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.workflow, self.block, self.index)
    }
}

impl fmt::Debug for InstAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
