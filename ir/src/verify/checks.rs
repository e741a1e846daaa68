//! The local checks: names, the effect table, block shapes, and each
//! instruction's references, registers and arities.

use std::collections::HashMap;

use super::codes::*;
use super::{Verifier, MAX_REGISTER};
use crate::catalog::{self, BUILTIN_EFFECTS};
use crate::entities::{Block, EffectRef, InstAddr, Reg, WorkflowId};
use crate::instructions::{Inst, OperandRef};
use crate::module::{EffectDecl, EffectKind, Location, Workflow};

/// Module-wide checks: the effect table and workflow names.
pub(super) fn module(v: &mut Verifier<'_>) {
    let m = v.m;
    let mut first_effect: HashMap<&str, usize> = HashMap::new();
    for (i, e) in m.effects.iter().enumerate() {
        let loc = Location::Effect(EffectRef(i as u32));
        if let Some(&first) = first_effect.get(e.name.as_str()) {
            v.error(
                DUPLICATE_EFFECT,
                loc,
                format!("effect `{}` is declared twice", e.name),
                Some(format!("first declared as e{first}")),
            );
        } else {
            first_effect.insert(&e.name, i);
        }
        effect_decl(v, loc, e);
    }

    let mut first_workflow: HashMap<&str, usize> = HashMap::new();
    for (i, w) in m.workflows.iter().enumerate() {
        if let Some(&first) = first_workflow.get(w.name.as_str()) {
            v.error(
                DUPLICATE_WORKFLOW,
                Location::Workflow(WorkflowId(i as u32)),
                format!("workflow `{}` is defined twice", w.name),
                Some(format!("first defined as w{first}")),
            );
        } else {
            first_workflow.insert(&w.name, i);
        }
    }
}

fn effect_decl(v: &mut Verifier<'_>, loc: Location, e: &EffectDecl) {
    match e.kind {
        EffectKind::Builtin => match catalog::builtin_effect(&e.name) {
            None => v.error(
                UNKNOWN_EFFECT,
                loc,
                format!("unknown built-in effect `{}`", e.name),
                closest_builtin(&e.name).map(|s| format!("the closest built-in effect is `{s}`")),
            ),
            Some(sig) if sig.params.len() != e.params.len() => v.error(
                EFFECT_ARITY,
                loc,
                format!(
                    "built-in effect `{}` takes {}, declared with {}",
                    e.name,
                    count(sig.params.len(), "parameter"),
                    e.params.len()
                ),
                Some(format!(
                    "its signature is `{}({})`",
                    sig.name,
                    sig.params.join(", ")
                )),
            ),
            Some(_) => {}
        },
        EffectKind::Activity if catalog::is_builtin_namespace(&e.name) => v.error(
            RESERVED_NAMESPACE,
            loc,
            format!(
                "activity `{}` is in the namespace `{}`, which is reserved for built-in effects",
                e.name,
                catalog::namespace(&e.name)
            ),
            Some("rename the activity, or declare a built-in effect instead".to_owned()),
        ),
        EffectKind::Activity => {}
    }
}

/// The catalog entry nearest to `name` by edit distance. Only a prefix of
/// the name is compared, so that a huge hostile name costs little.
fn closest_builtin(name: &str) -> Option<&'static str> {
    let name: Vec<char> = name.chars().take(64).collect();
    BUILTIN_EFFECTS
        .iter()
        .map(|sig| (edit_distance(&name, sig.name), sig.name))
        .min()
        .map(|(_, n)| n)
}

/// Levenshtein distance, with one row of memory.
fn edit_distance(a: &[char], b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == cb {
                diag
            } else {
                1 + diag.min(above).min(row[j])
            };
            diag = above;
        }
    }
    row[b.len()]
}

fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// Per-workflow checks. Returns whether every register is within
/// [`MAX_REGISTER`], which the dataflow analysis needs before allocating.
pub(super) fn workflow(v: &mut Verifier<'_>, wid: WorkflowId, w: &Workflow) -> bool {
    let mut registers_ok = true;
    let header = Location::Workflow(wid);

    let mut first_param: HashMap<&str, usize> = HashMap::new();
    for (i, p) in w.params.iter().enumerate() {
        if let Some(&first) = first_param.get(p.as_str()) {
            v.error(
                DUPLICATE_PARAM,
                header,
                format!("parameter `{p}` (r{i}) is declared twice"),
                Some(format!("it is first declared as r{first}")),
            );
        } else {
            first_param.insert(p, i);
        }
    }
    if w.params.len() > MAX_REGISTER as usize + 1 {
        registers_ok = false;
        v.error(
            REGISTER_TOO_LARGE,
            header,
            format!(
                "workflow has {} parameters, more than the {} registers a frame can hold",
                w.params.len(),
                u64::from(MAX_REGISTER) + 1
            ),
            None,
        );
    }

    if w.blocks.is_empty() {
        v.error(
            NO_BLOCKS,
            header,
            format!("workflow `{}` has no blocks", w.name),
            Some("a workflow needs at least an entry block".to_owned()),
        );
    }

    let mut first_label: HashMap<&str, usize> = HashMap::new();
    for (bi, b) in w.blocks.iter().enumerate() {
        let block = Block(bi as u32);
        if let Some(&first) = first_label.get(b.label.as_str()) {
            v.error(
                DUPLICATE_LABEL,
                Location::Block(wid, block),
                format!("label `{}` is used twice", b.label),
                Some(format!("it first labels bb{first}")),
            );
        } else {
            first_label.insert(&b.label, bi);
        }

        match b.insts.iter().position(Inst::is_terminator) {
            _ if b.insts.is_empty() => v.error(
                EMPTY_BLOCK,
                Location::Block(wid, block),
                format!("block `{}` is empty", b.label),
                Some("end it with `jmp`, `br`, `match`, `ret` or `fail`".to_owned()),
            ),
            None => v.error(
                MISSING_TERMINATOR,
                Location::Inst(InstAddr::new(wid, block, (b.insts.len() - 1) as u32)),
                format!("block `{}` falls off its end", b.label),
                Some("end it with `jmp`, `br`, `match`, `ret` or `fail`".to_owned()),
            ),
            Some(t) if t + 1 < b.insts.len() => v.error(
                DEAD_CODE,
                Location::Inst(InstAddr::new(wid, block, (t + 1) as u32)),
                format!(
                    "{} after the terminator `{}` can never run",
                    count(b.insts.len() - t - 1, "instruction"),
                    b.insts.get(t).map_or("?", Inst::mnemonic)
                ),
                Some("move them into a block of their own, or remove them".to_owned()),
            ),
            Some(_) => {}
        }

        for (ii, inst) in b.insts.iter().enumerate() {
            let addr = InstAddr::new(wid, block, ii as u32);
            registers_ok &= instruction(v, w, addr, inst);
        }
    }
    registers_ok
}

/// Checks one instruction; returns whether its registers are in range.
fn instruction(v: &mut Verifier<'_>, w: &Workflow, addr: InstAddr, inst: &Inst) -> bool {
    let m = v.m;
    let mut registers_ok = true;
    if let Some(d) = inst.dst() {
        registers_ok &= register(v, Location::Dst(addr), d);
    }
    for (n, op) in inst.operands().into_iter().enumerate() {
        let loc = Location::Operand(addr, n);
        match op {
            OperandRef::Reg(r) | OperandRef::OptReg(Some(r)) => {
                registers_ok &= register(v, loc, *r);
            }
            OperandRef::Regs(rs) => {
                for r in rs {
                    registers_ok &= register(v, loc, *r);
                }
            }
            OperandRef::Fields(fields) => {
                for (_, r) in fields {
                    registers_ok &= register(v, loc, *r);
                }
            }
            OperandRef::Block(b) | OperandRef::OptBlock(Some(b)) => target(v, w, loc, *b),
            OperandRef::Arms(arms) => {
                for (_, b) in arms {
                    target(v, w, loc, *b);
                }
            }
            OperandRef::Const(c) if m.constant(*c).is_none() => v.error(
                BAD_CONST,
                loc,
                format!(
                    "constant {c} does not exist (the pool has {})",
                    count(m.consts.len(), "constant")
                ),
                None,
            ),
            OperandRef::Effect(e) if m.effect(*e).is_none() => v.error(
                BAD_EFFECT,
                loc,
                format!(
                    "effect {e} does not exist (the table has {})",
                    count(m.effects.len(), "effect")
                ),
                None,
            ),
            _ => {}
        }
    }

    match inst {
        Inst::Perform { effect, args, .. } => {
            if let Some(decl) = m.effect(*effect) {
                if decl.params.len() != args.len() {
                    v.error(
                        ARITY,
                        Location::Operand(addr, 1),
                        format!(
                            "effect `{}` takes {}, got {}",
                            decl.name,
                            count(decl.params.len(), "argument"),
                            args.len()
                        ),
                        Some(format!(
                            "its signature is `{}({})`",
                            decl.name,
                            decl.params.join(", ")
                        )),
                    );
                }
            }
        }
        Inst::CallBuiltin { func, args, .. } if func.arity() != args.len() => v.error(
            ARITY,
            Location::Operand(addr, 1),
            format!(
                "builtin `{}` takes {}, got {}",
                func.name(),
                count(func.arity(), "argument"),
                args.len()
            ),
            Some(format!("`{}`: {}", func.name(), func.doc().trim())),
        ),
        Inst::Call { workflow, args, .. } => match m.workflow(workflow.as_str()) {
            Some((_, callee)) if callee.params.len() != args.len() => v.error(
                ARITY,
                Location::Operand(addr, 1),
                format!(
                    "workflow `{}` takes {}, got {}",
                    callee.name,
                    count(callee.params.len(), "argument"),
                    args.len()
                ),
                Some(format!(
                    "its signature is `{}({})`",
                    callee.name,
                    callee.params.join(", ")
                )),
            ),
            Some(_) => {}
            None => v.warning(
                UNKNOWN_WORKFLOW,
                Location::Operand(addr, 0),
                format!(
                    "workflow `{}` is not defined in this module; it is resolved at run time",
                    workflow.as_str()
                ),
                None,
            ),
        },
        Inst::Format { template, args, .. } => match placeholders(template) {
            Err(e) => v.error(
                FORMAT_BRACE,
                Location::Operand(addr, 0),
                format!("unmatched `{}` at byte {} of the template", e.brace, e.at),
                Some("write `{{` or `}}` for a literal brace, and `{}` for a value".to_owned()),
            ),
            Ok(n) if n != args.len() => v.error(
                FORMAT_PLACEHOLDERS,
                Location::Operand(addr, 1),
                format!(
                    "the template has {} but {} given",
                    count(n, "placeholder"),
                    match args.len() {
                        1 => "1 argument is".to_owned(),
                        k => format!("{k} arguments are"),
                    }
                ),
                None,
            ),
            Ok(_) => {}
        },
        Inst::Match { arms, default, .. } => {
            if arms.is_empty() && default.is_none() {
                v.error(
                    EMPTY_MATCH,
                    Location::Inst(addr),
                    "`match` has no arms and no default".to_owned(),
                    Some("add an arm, or `default LABEL`".to_owned()),
                );
            }
            let mut first_arm: HashMap<&str, usize> = HashMap::new();
            for (i, (tag, _)) in arms.iter().enumerate() {
                if let Some(&first) = first_arm.get(tag.as_str()) {
                    v.error(
                        DUPLICATE_ARM,
                        Location::Operand(addr, 1),
                        format!("tag `{}` has two arms", tag.as_str()),
                        Some(format!(
                            "arm {} can never be taken: arm {first} matches `{}` first",
                            i,
                            tag.as_str()
                        )),
                    );
                } else {
                    first_arm.insert(tag.as_str(), i);
                }
            }
        }
        _ => {}
    }
    registers_ok
}

fn register(v: &mut Verifier<'_>, loc: Location, r: Reg) -> bool {
    if r.0 <= MAX_REGISTER {
        return true;
    }
    v.error(
        REGISTER_TOO_LARGE,
        loc,
        format!("register {r} is beyond the limit r{MAX_REGISTER}"),
        None,
    );
    false
}

fn target(v: &mut Verifier<'_>, w: &Workflow, loc: Location, b: Block) {
    if w.block(b).is_none() {
        v.error(
            BAD_TARGET,
            loc,
            format!(
                "target {b} does not exist (the workflow has {})",
                count(w.blocks.len(), "block")
            ),
            None,
        );
    }
}

/// An unmatched brace in a format template.
#[derive(Debug, PartialEq, Eq)]
struct BraceError {
    brace: char,
    /// Byte offset in the template.
    at: usize,
}

/// The number of `{}` placeholders in a template, where `{{` and `}}` are
/// escaped braces and any other brace is an error.
fn placeholders(template: &str) -> Result<usize, BraceError> {
    let mut n = 0;
    let mut chars = template.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            '{' => match chars.peek() {
                Some((_, '{')) => {
                    chars.next();
                }
                Some((_, '}')) => {
                    chars.next();
                    n += 1;
                }
                _ => return Err(BraceError { brace: '{', at }),
            },
            '}' => match chars.peek() {
                Some((_, '}')) => {
                    chars.next();
                }
                _ => return Err(BraceError { brace: '}', at }),
            },
            _ => {}
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_count_and_escape() {
        assert_eq!(placeholders("a {} b {}"), Ok(2));
        assert_eq!(placeholders("{{}} {}"), Ok(1));
        assert_eq!(placeholders("{{{}}}"), Ok(1));
        assert_eq!(placeholders(""), Ok(0));
        assert_eq!(placeholders("x {0}"), Err(BraceError { brace: '{', at: 2 }));
        assert_eq!(placeholders("é}"), Err(BraceError { brace: '}', at: 2 }));
        assert_eq!(placeholders("{"), Err(BraceError { brace: '{', at: 0 }));
    }

    #[test]
    fn closest_builtin_by_edit_distance() {
        assert_eq!(closest_builtin("memcache.gte"), Some("memcache.get"));
        assert_eq!(closest_builtin("slack.pots"), Some("slack.post"));
        assert_eq!(edit_distance(&['a', 'b'], "ab"), 0);
        assert_eq!(edit_distance(&[], "abc"), 3);
    }
}
