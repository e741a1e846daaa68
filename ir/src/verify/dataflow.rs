//! The control-flow checks: reachability from the entry, and a forward
//! "definitely assigned" dataflow that finds registers read before they are
//! written on some path.

use std::collections::{BTreeSet, HashSet};

use super::codes::*;
use super::{Verifier, MAX_DATAFLOW_BITS};
use crate::entities::{Block, InstAddr, Reg, WorkflowId};
use crate::instructions::{Inst, OperandRef};
use crate::module::{BlockData, Location, Workflow};

/// Warns of unreachable blocks, then (if `registers_ok`, i.e. every register
/// is small enough to size a bitset by) reports uses before definitions.
pub(super) fn workflow(v: &mut Verifier<'_>, wid: WorkflowId, w: &Workflow, registers_ok: bool) {
    if w.blocks.is_empty() {
        return;
    }
    let succs: Vec<Vec<usize>> = w.blocks.iter().map(|b| successors(w, b)).collect();
    let rpo = reverse_postorder(&succs);
    let mut reached = vec![false; w.blocks.len()];
    for &b in &rpo {
        if let Some(r) = reached.get_mut(b) {
            *r = true;
        }
    }
    for (bi, b) in w.blocks.iter().enumerate() {
        if !reached.get(bi).copied().unwrap_or(true) {
            v.warning(
                UNREACHABLE_BLOCK,
                Location::Block(wid, Block(bi as u32)),
                format!("block `{}` is unreachable", b.label),
                Some("no jump, branch, match or spawn leads here from the entry".to_owned()),
            );
        }
    }

    if !registers_ok {
        return;
    }
    // Every register is at most MAX_REGISTER here, so the width is capped.
    let width = w.num_regs();
    let words = width.div_ceil(64);
    if rpo.len().saturating_mul(words).saturating_mul(64) > MAX_DATAFLOW_BITS {
        v.error(
            TOO_LARGE,
            Location::Workflow(wid),
            format!(
                "workflow `{}` has too many blocks and registers ({} reachable blocks, {width} registers) to check for uses before definitions",
                w.name,
                rpo.len()
            ),
            Some("split it into smaller workflows, or use fewer registers".to_owned()),
        );
        return;
    }
    let entry = definitely_assigned(w, &rpo, words);
    report_uses(v, wid, w, &entry);
}

/// A fixed-width set of register numbers. Out-of-range numbers are never
/// members and are ignored on insert, so a bad register cannot panic it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct RegSet {
    words: Vec<u64>,
}

impl RegSet {
    fn empty(words: usize) -> Self {
        RegSet {
            words: vec![0; words],
        }
    }

    fn insert(&mut self, r: Reg) {
        let i = r.index();
        if let Some(w) = self.words.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }

    fn contains(&self, r: Reg) -> bool {
        let i = r.index();
        self.words
            .get(i / 64)
            .is_some_and(|w| (w >> (i % 64)) & 1 == 1)
    }

    /// Keeps only the members also in `other`; returns whether it changed.
    fn intersect_with(&mut self, other: &RegSet) -> bool {
        let mut changed = false;
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            let new = *a & *b;
            changed |= new != *a;
            *a = new;
        }
        changed
    }
}

/// The instructions that can run: up to and including the first terminator.
fn live(b: &BlockData) -> &[Inst] {
    match b.insts.iter().position(Inst::is_terminator) {
        Some(t) => b.insts.get(..=t).unwrap_or(&b.insts),
        None => &b.insts,
    }
}

/// The blocks an instruction hands control to, in range: a terminator's
/// targets, or a spawn's new fiber.
fn edges<'a>(w: &'a Workflow, inst: &'a Inst) -> impl Iterator<Item = usize> + 'a {
    let targets = match inst {
        Inst::Spawn { target, .. } => vec![*target],
        _ if inst.is_terminator() => inst.targets(),
        _ => Vec::new(),
    };
    targets
        .into_iter()
        .filter(|b| w.block(*b).is_some())
        .map(Block::index)
}

fn successors(w: &Workflow, b: &BlockData) -> Vec<usize> {
    let mut out: Vec<usize> = live(b).iter().flat_map(|i| edges(w, i)).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The blocks reachable from the entry, in reverse postorder (an iterative
/// depth-first search, so a long chain of blocks cannot overflow the stack).
fn reverse_postorder(succs: &[Vec<usize>]) -> Vec<usize> {
    let mut seen = vec![false; succs.len()];
    let mut post = Vec::new();
    // (block, index of the next successor to visit)
    let mut stack = vec![(0usize, 0usize)];
    if let Some(s) = seen.get_mut(0) {
        *s = true;
    }
    while let Some((b, next)) = stack.last_mut() {
        let b = *b;
        match succs.get(b).and_then(|s| s.get(*next)) {
            Some(&t) => {
                *next += 1;
                if let Some(s) = seen.get_mut(t) {
                    if !*s {
                        *s = true;
                        stack.push((t, 0));
                    }
                }
            }
            None => {
                post.push(b);
                stack.pop();
            }
        }
    }
    post.reverse();
    post
}

/// The registers definitely assigned on entry to each block (`None` for
/// unreachable blocks), by a worklist iteration in reverse postorder.
fn definitely_assigned(w: &Workflow, rpo: &[usize], words: usize) -> Vec<Option<RegSet>> {
    let mut order = vec![usize::MAX; w.blocks.len()];
    for (i, &b) in rpo.iter().enumerate() {
        if let Some(o) = order.get_mut(b) {
            *o = i;
        }
    }
    let mut entry: Vec<Option<RegSet>> = vec![None; w.blocks.len()];
    let mut params = RegSet::empty(words);
    for i in 0..w.params.len() {
        params.insert(Reg(i as u32));
    }
    if let Some(e) = entry.get_mut(0) {
        *e = Some(params);
    }
    // Positions in `rpo`, so that blocks are visited in reverse postorder.
    let mut queue: BTreeSet<usize> = BTreeSet::from([0]);
    while let Some(i) = queue.pop_first() {
        let Some(&b) = rpo.get(i) else { continue };
        let (Some(data), Some(Some(start))) = (w.blocks.get(b), entry.get(b)) else {
            continue;
        };
        let mut set = start.clone();
        for inst in live(data) {
            for t in edges(w, inst) {
                let changed = match entry.get_mut(t) {
                    Some(slot @ None) => {
                        *slot = Some(set.clone());
                        true
                    }
                    Some(Some(old)) => old.intersect_with(&set),
                    None => false,
                };
                if changed {
                    if let Some(&o) = order.get(t) {
                        queue.insert(o);
                    }
                }
            }
            if let Some(d) = inst.dst() {
                set.insert(d);
            }
        }
    }
    entry
}

/// Replays each reachable block from its entry set and reports every
/// register an instruction reads that is not definitely assigned, once per
/// instruction, at the operand that reads it.
fn report_uses(v: &mut Verifier<'_>, wid: WorkflowId, w: &Workflow, entry: &[Option<RegSet>]) {
    for (bi, (data, start)) in w.blocks.iter().zip(entry).enumerate() {
        let Some(start) = start else { continue };
        let mut set = start.clone();
        for (ii, inst) in live(data).iter().enumerate() {
            let addr = InstAddr::new(wid, Block(bi as u32), ii as u32);
            let mut reported: HashSet<Reg> = HashSet::new();
            for (n, op) in inst.operands().into_iter().enumerate() {
                for r in operand_regs(op) {
                    if set.contains(r) || !reported.insert(r) {
                        continue;
                    }
                    v.error(
                        USE_BEFORE_DEF,
                        Location::Operand(addr, n),
                        format!("register {r} may be used before it is defined"),
                        Some(format!(
                            "some path from the entry of `{}` reaches here without writing {r}",
                            w.name
                        )),
                    );
                }
            }
            if let Some(d) = inst.dst() {
                set.insert(d);
            }
        }
    }
}

/// The registers an operand reads.
fn operand_regs(op: OperandRef<'_>) -> Vec<Reg> {
    match op {
        OperandRef::Reg(r) | OperandRef::OptReg(Some(r)) => vec![*r],
        OperandRef::Regs(rs) => rs.to_vec(),
        OperandRef::Fields(fs) => fs.iter().map(|(_, r)| *r).collect(),
        _ => Vec::new(),
    }
}
