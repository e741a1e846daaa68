//! Snapshots of a supervisor's children and of a whole tree, for
//! `which_children` and the control panel.

use std::fmt;

use serde::Serialize;

use crate::child::{ChildKind, Restart};
use crate::supervisor::Strategy;

/// Whether a child has a running incarnation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ChildStatus {
    /// It has a live incarnation.
    Running,
    /// Its spec is kept but nothing runs (terminated, or a transient child that exited normally).
    Stopped,
}

/// One row of `which_children`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChildInfo {
    /// The child's id.
    pub id: String,
    /// Worker or supervisor.
    pub kind: ChildKind,
    /// Running or stopped.
    pub status: ChildStatus,
    /// Its restart type.
    pub restart: Restart,
    /// How many times the supervisor restarted it, counting group restarts.
    pub restarts: u32,
}

/// The answer to `count_children`, as in OTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ChildCounts {
    /// Child specs, running or not.
    pub specs: usize,
    /// Children with a live incarnation.
    pub active: usize,
    /// Children that are supervisors.
    pub supervisors: usize,
    /// Children that are workers.
    pub workers: usize,
}

/// A supervisor and, recursively, its children.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SupervisorTree {
    /// Its restart strategy.
    pub strategy: Strategy,
    /// Restarts tolerated within `period_ms`.
    pub intensity: u32,
    /// The intensity period in milliseconds.
    pub period_ms: u64,
    /// Its children in start order.
    pub children: Vec<TreeNode>,
}

/// One child in a tree snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TreeNode {
    /// What `which_children` says about it.
    #[serde(flatten)]
    pub info: ChildInfo,
    /// Its own subtree, when it is a running supervisor.
    pub supervisor: Option<SupervisorTree>,
}

impl SupervisorTree {
    fn write_indented(&self, f: &mut fmt::Formatter<'_>, depth: usize) -> fmt::Result {
        for node in &self.children {
            let info = &node.info;
            writeln!(
                f,
                "{:indent$}{} [{:?} {:?}] {:?}, restarts: {}",
                "",
                info.id,
                info.kind,
                info.restart,
                info.status,
                info.restarts,
                indent = depth * 2
            )?;
            if let Some(sub) = &node.supervisor {
                sub.write_indented(f, depth + 1)?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for SupervisorTree {
    /// One line per child, nested children indented.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "supervisor [{:?}, intensity {} per {} ms]",
            self.strategy, self.intensity, self.period_ms
        )?;
        self.write_indented(f, 1)
    }
}
