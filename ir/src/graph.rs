//! The control-flow graph of a workflow as Graphviz DOT: one node per block,
//! listing its instructions, one edge per possible transfer of control.

use std::fmt::Write;

use crate::entities::{Block, InstAddr, WorkflowId};
use crate::instructions::{Inst, OperandRef};
use crate::module::Module;
use crate::text;

/// Options for [`to_dot`].
#[derive(Clone, Debug, Default)]
pub struct GraphOptions {
    /// An instruction to highlight, such as where a live run stands.
    pub highlight: Option<InstAddr>,
}

/// Renders workflow `w` of `m` as a DOT digraph. Returns `None` if `w` is not
/// a workflow of the module.
pub fn to_dot(m: &Module, w: WorkflowId, options: &GraphOptions) -> Option<String> {
    let wf = m.workflows.get(w.index())?;
    let mut out = String::new();
    let _ = writeln!(out, "digraph {} {{", dot_id(&wf.name));
    out.push_str("  node [shape=box, fontname=\"monospace\", fontsize=10];\n");
    out.push_str("  edge [fontname=\"monospace\", fontsize=9];\n");
    for (bi, block) in wf.blocks.iter().enumerate() {
        let b = Block(bi as u32);
        let mut label = String::new();
        let _ = write!(label, "{}:\\l", escape(&block.label));
        for (ii, inst) in block.insts.iter().enumerate() {
            let line = text::print_inst(m, wf, inst);
            let addr = InstAddr::new(w, b, ii as u32);
            let mark = if options.highlight == Some(addr) {
                "▶ "
            } else {
                "  "
            };
            let _ = write!(label, "{mark}{}\\l", escape(&line));
        }
        let style = if options
            .highlight
            .is_some_and(|a| a.workflow == w && a.block == b)
        {
            ", style=filled, fillcolor=\"#fff2a8\""
        } else if bi == 0 {
            ", style=bold"
        } else {
            ""
        };
        let _ = writeln!(out, "  {b} [label=\"{label}\"{style}];");
    }
    for (bi, block) in wf.blocks.iter().enumerate() {
        let from = Block(bi as u32);
        for inst in &block.insts {
            for (to, label) in edges(inst) {
                if to.index() >= wf.blocks.len() {
                    continue;
                }
                let attrs = match (&label, matches!(inst, Inst::Spawn { .. })) {
                    (_, true) => " [style=dashed, label=\"spawn\"]".to_owned(),
                    (Some(l), _) => format!(" [label=\"{}\"]", escape(l)),
                    (None, _) => String::new(),
                };
                let _ = writeln!(out, "  {from} -> {to}{attrs};");
            }
        }
    }
    out.push_str("}\n");
    Some(out)
}

/// The successors of an instruction with an edge label.
fn edges(inst: &Inst) -> Vec<(Block, Option<String>)> {
    match inst {
        Inst::Branch {
            then_block,
            else_block,
            ..
        } => vec![
            (*then_block, Some("true".into())),
            (*else_block, Some("false".into())),
        ],
        Inst::Match { arms, default, .. } => arms
            .iter()
            .map(|(tag, b)| (*b, Some(tag.to_string())))
            .chain(default.map(|b| (b, Some("_".into()))))
            .collect(),
        _ => {
            let mut out = Vec::new();
            inst.for_each_operand(|op| {
                if let OperandRef::Block(b) = op {
                    out.push((*b, None));
                }
            });
            out
        }
    }
}

fn dot_id(name: &str) -> String {
    format!("\"{}\"", escape(name))
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_become_nodes_and_transfers_become_labelled_edges() {
        let m = text::parse(
            "workflow w(x) {\nentry:\n    br r0, yes, no\nyes:\n    r1 = spawn no\n    ret r1\nno:\n    match r0, [Ok => yes], default no\n}\n",
        )
        .expect("parses");
        let highlight = InstAddr::new(WorkflowId(0), Block(1), 0);
        let dot = to_dot(
            &m,
            WorkflowId(0),
            &GraphOptions {
                highlight: Some(highlight),
            },
        )
        .expect("workflow exists");
        assert!(dot.starts_with("digraph \"w\" {"), "{dot}");
        assert!(dot.contains("bb0 -> bb1 [label=\"true\"];"), "{dot}");
        assert!(dot.contains("bb0 -> bb2 [label=\"false\"];"), "{dot}");
        assert!(
            dot.contains("bb1 -> bb2 [style=dashed, label=\"spawn\"];"),
            "{dot}"
        );
        assert!(dot.contains("bb2 -> bb1 [label=\"Ok\"];"), "{dot}");
        assert!(dot.contains("bb2 -> bb2 [label=\"_\"];"), "{dot}");
        assert!(dot.contains("▶ r1 = spawn no"), "{dot}");
        assert!(dot.contains("fillcolor"), "{dot}");
        assert!(to_dot(&m, WorkflowId(7), &GraphOptions::default()).is_none());
    }
}
