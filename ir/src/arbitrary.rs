//! Proptest strategies for values and modules, for property tests here and in
//! the crates that depend on this one (feature `arbitrary`).
//!
//! [`module`] builds modules that are *structurally* valid: every block,
//! constant and effect reference is in range, every block ends in exactly one
//! terminator, names and labels are unique, and arities match their
//! declarations. It does not respect dataflow: a register may be read before
//! any instruction writes it. Modules stay small so property tests are fast.

use std::collections::BTreeSet;
use std::sync::Arc;

use proptest::collection::{btree_map, btree_set, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::sample::{select, subsequence};

use crate::builtins::Builtin;
use crate::catalog::BUILTIN_EFFECTS;
use crate::entities::{Block, ConstId, EffectRef, FileId, InstAddr, Reg, WorkflowId};
use crate::instructions::{Inst, LogLevel, Opcode, Policy, RetryPolicy, Symbol, OPCODES};
use crate::module::{BlockData, EffectDecl, EffectKind, Module, SourceMap, Span, Workflow};
use crate::value::Value;

/// The deepest value [`value`] generates, counting scalars as depth 1.
pub const MAX_VALUE_DEPTH: usize = 4;

/// Any value: every kind, including NaN, infinities and `-0.0`, bytes, and
/// lists, maps and variants nested at most [`MAX_VALUE_DEPTH`] deep.
pub fn value() -> impl Strategy<Value = Value> {
    // Each recursion level adds one to `Value::depth`, on top of the leaf,
    // and the deepest leaf (a unit variant, `#None`) is already 2 deep.
    leaf_value().prop_recursive((MAX_VALUE_DEPTH - 2) as u32, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::List),
            // Keys are mostly strings, as in records, but any value may be a key.
            btree_map(
                prop_oneof![3 => text().prop_map(Value::Str), 1 => inner.clone()],
                inner.clone(),
                0..4
            )
            .prop_map(Value::Map),
            (symbol(), inner).prop_map(|(tag, payload)| Value::variant(tag.0, payload)),
        ]
    })
}

/// A scalar value.
fn leaf_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop_oneof![any::<i64>(), -3i64..3, Just(i64::MIN), Just(i64::MAX)].prop_map(Value::Int),
        float().prop_map(Value::Float),
        text().prop_map(Value::Str),
        vec(any::<u8>(), 0..8).prop_map(Value::Bytes),
        // A unit variant, such as `#None`.
        symbol().prop_map(|tag| Value::variant(tag.0, Value::Null)),
    ]
}

/// Floats with the awkward ones made common: they are where codecs and
/// printers go wrong.
fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => any::<f64>(),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(-0.0),
        1 => Just(1.5),
        1 => Just(1e300),
    ]
}

/// Short text, sometimes with quotes, escapes and non-ASCII characters.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z ]{0,6}",
        1 => ".{0,6}",
        1 => Just("\"\\\n\t\0{}".to_owned()),
    ]
}

/// A name: usually an identifier, sometimes a string that must be quoted in
/// the text assembly.
fn symbol() -> impl Strategy<Value = Symbol> {
    prop_oneof![
        6 => "[A-Za-z_][A-Za-z0-9_]{0,6}",
        1 => ".{0,5}",
        1 => Just("odd name".to_owned()),
    ]
    .prop_map(Symbol)
}

/// What instruction generators need to know of the whole module.
#[derive(Debug)]
struct ModuleShape {
    /// The number of parameters of each effect, by `EffectRef`.
    effect_arities: Vec<usize>,
    consts: u32,
    /// Name and parameter count of each workflow, for `call`.
    workflows: Vec<(String, usize)>,
}

/// What instruction generators need to know of one workflow.
#[derive(Clone, Debug)]
struct WorkflowShape {
    module: Arc<ModuleShape>,
    blocks: u32,
    regs: u32,
}

/// The name, parameter count and block count of a workflow, chosen before
/// its body so that `call` can refer to any workflow of the module.
#[derive(Clone, Debug)]
struct WorkflowHead {
    name: String,
    params: usize,
    blocks: u32,
}

/// A structurally valid module; see the module documentation.
pub fn module() -> impl Strategy<Value = Module> {
    (effects(), vec(value(), 1..6), workflow_heads())
        .prop_flat_map(|(effects, consts, heads)| {
            let shape = Arc::new(ModuleShape {
                effect_arities: effects.iter().map(|e| e.params.len()).collect(),
                consts: consts.len() as u32,
                workflows: heads.iter().map(|h| (h.name.clone(), h.params)).collect(),
            });
            let workflows: Vec<_> = heads
                .into_iter()
                .map(|head| workflow(shape.clone(), head))
                .collect();
            (Just(effects), Just(consts), workflows)
        })
        .prop_flat_map(|(effects, consts, workflows)| {
            let source_map = option::of(source_map(&workflows))
                .prop_map(Option::unwrap_or_default)
                .boxed();
            (Just(effects), Just(consts), Just(workflows), source_map)
        })
        .prop_map(|(effects, consts, workflows, source_map)| Module {
            effects,
            consts,
            workflows,
            source_map,
        })
}

/// Some built-in effects with their catalog parameters, then some
/// activities; at least one effect, so `perform` can always be generated.
fn effects() -> impl Strategy<Value = Vec<EffectDecl>> {
    let catalog: Vec<usize> = (0..BUILTIN_EFFECTS.len()).collect();
    // Activity names are plain identifiers: no dot, so never in a namespace
    // reserved for built-in effects.
    let activity = ("[a-z][a-z0-9_]{0,8}", 0usize..4);
    (subsequence(catalog, 0..=4), vec(activity, 0..=2)).prop_map(|(builtins, activities)| {
        let mut decls: Vec<EffectDecl> = builtins
            .into_iter()
            .filter_map(|i| BUILTIN_EFFECTS.get(i))
            .map(|sig| EffectDecl {
                kind: EffectKind::Builtin,
                name: sig.name.to_owned(),
                params: sig.params.iter().map(|p| (*p).to_owned()).collect(),
            })
            .collect();
        let activities = if decls.is_empty() && activities.is_empty() {
            vec![("charge_card".to_owned(), 2)]
        } else {
            activities
        };
        for (i, (name, arity)) in activities.into_iter().enumerate() {
            // The index keeps activity names unique.
            decls.push(EffectDecl {
                kind: EffectKind::Activity,
                name: format!("{name}_{i}"),
                params: (0..arity).map(|p| format!("arg{p}")).collect(),
            });
        }
        decls
    })
}

/// One to three workflow heads with unique names.
fn workflow_heads() -> impl Strategy<Value = Vec<WorkflowHead>> {
    vec((symbol(), 0usize..=3, 1u32..=5), 1..=3).prop_map(|heads| {
        heads
            .into_iter()
            .enumerate()
            .map(|(i, (name, params, blocks))| WorkflowHead {
                name: format!("{}_{i}", name.0),
                params,
                blocks,
            })
            .collect()
    })
}

fn workflow(module: Arc<ModuleShape>, head: WorkflowHead) -> BoxedStrategy<Workflow> {
    let shape = WorkflowShape {
        module,
        blocks: head.blocks,
        // A few registers beyond the parameters, so that operands collide often.
        regs: head.params as u32 + 4,
    };
    let blocks: Vec<_> = (0..head.blocks).map(|i| block(shape.clone(), i)).collect();
    let name = head.name;
    let params = (0..head.params)
        .map(|i| format!("p{i}"))
        .collect::<Vec<_>>();
    blocks
        .prop_map(move |blocks| Workflow {
            name: name.clone(),
            params: params.clone(),
            blocks,
        })
        .boxed()
}

/// Block `index`: up to seven ordinary instructions, then one terminator.
fn block(shape: WorkflowShape, index: u32) -> BoxedStrategy<BlockData> {
    let ordinary: Vec<Opcode> = OPCODES
        .iter()
        .filter(|i| !i.terminator)
        .map(|i| i.opcode)
        .collect();
    let terminators: Vec<Opcode> = OPCODES
        .iter()
        .filter(|i| i.terminator)
        .map(|i| i.opcode)
        .collect();
    let body_shape = shape.clone();
    let body = vec(
        select(ordinary).prop_flat_map(move |op| inst(&body_shape, op)),
        0..=7,
    );
    let end = select(terminators).prop_flat_map(move |op| inst(&shape, op));
    let label = prop_oneof![
        4 => select(&["bb", "entry", "loop_head", "done", "ok", "err"][..]).prop_map(str::to_owned),
        1 => symbol().prop_map(|s| s.0),
    ];
    (label, body, end)
        .prop_map(move |(label, mut insts, end)| {
            insts.push(end);
            BlockData {
                // The index keeps labels unique within the workflow.
                label: format!("{label}{index}"),
                insts,
            }
        })
        .boxed()
}

/// An instruction with the given opcode whose references are all in range.
/// The match is exhaustive, so a new opcode does not compile until it has a
/// generator here.
fn inst(shape: &WorkflowShape, op: Opcode) -> BoxedStrategy<Inst> {
    let r = reg(shape.regs);
    let b = block_ref(shape.blocks);
    let for_lists = r.clone();
    let rs = move |n: std::ops::RangeInclusive<usize>| vec(for_lists.clone(), n);
    match op {
        Opcode::Const => (r.clone(), 0..shape.module.consts)
            .prop_map(|(dst, c)| Inst::Const {
                dst,
                value: ConstId(c),
            })
            .boxed(),
        Opcode::Move => (r.clone(), r.clone())
            .prop_map(|(dst, src)| Inst::Move { dst, src })
            .boxed(),
        Opcode::Neg => (r.clone(), r.clone())
            .prop_map(|(dst, a)| Inst::Neg { dst, a })
            .boxed(),
        Opcode::Not => (r.clone(), r.clone())
            .prop_map(|(dst, a)| Inst::Not { dst, a })
            .boxed(),
        Opcode::Add
        | Opcode::Sub
        | Opcode::Mul
        | Opcode::Div
        | Opcode::Rem
        | Opcode::Eq
        | Opcode::Ne
        | Opcode::Lt
        | Opcode::Le
        | Opcode::Gt
        | Opcode::Ge
        | Opcode::And
        | Opcode::Or => (r.clone(), r.clone(), r.clone())
            .prop_map(move |(dst, a, b)| binary(op, dst, a, b))
            .boxed(),
        Opcode::Field => (r.clone(), r.clone(), symbol())
            .prop_map(|(dst, base, name)| Inst::Field { dst, base, name })
            .boxed(),
        Opcode::SetField => (r.clone(), symbol(), r.clone())
            .prop_map(|(base, name, src)| Inst::SetField { base, name, src })
            .boxed(),
        Opcode::Index => (r.clone(), r.clone(), r.clone())
            .prop_map(|(dst, base, key)| Inst::Index { dst, base, key })
            .boxed(),
        Opcode::SetIndex => (r.clone(), r.clone(), r.clone())
            .prop_map(|(base, key, src)| Inst::SetIndex { base, key, src })
            .boxed(),
        Opcode::Record => (r.clone(), btree_map(symbol(), r.clone(), 0..4))
            .prop_map(|(dst, fields)| Inst::Record {
                dst,
                fields: fields.into_iter().collect(),
            })
            .boxed(),
        Opcode::List => (r.clone(), rs(0..=3))
            .prop_map(|(dst, items)| Inst::List { dst, items })
            .boxed(),
        Opcode::MakeVariant => (r.clone(), symbol(), option::of(r.clone()))
            .prop_map(|(dst, tag, payload)| Inst::MakeVariant { dst, tag, payload })
            .boxed(),
        Opcode::Payload => (r.clone(), r.clone())
            .prop_map(|(dst, src)| Inst::Payload { dst, src })
            .boxed(),
        Opcode::Unwrap => (r.clone(), r.clone())
            .prop_map(|(dst, src)| Inst::Unwrap { dst, src })
            .boxed(),
        Opcode::Format => (r.clone(), vec("[a-z =:,]{0,4}", 1..=4))
            .prop_flat_map(move |(dst, pieces)| {
                // One `{}` between consecutive pieces, one argument per `{}`.
                let template = pieces.join("{}");
                vec(r.clone(), pieces.len() - 1).prop_map(move |args| Inst::Format {
                    dst,
                    template: template.clone(),
                    args,
                })
            })
            .boxed(),
        Opcode::CallBuiltin => (r.clone(), select(Builtin::ALL))
            .prop_flat_map(move |(dst, func)| {
                vec(r.clone(), func.arity()).prop_map(move |args| Inst::CallBuiltin {
                    dst,
                    func,
                    args,
                })
            })
            .boxed(),
        Opcode::CallPure => (r.clone(), symbol(), rs(0..=3))
            .prop_map(|(dst, func, args)| Inst::CallPure { dst, func, args })
            .boxed(),
        Opcode::Jump => b.prop_map(|target| Inst::Jump { target }).boxed(),
        Opcode::Branch => (r.clone(), b.clone(), b)
            .prop_map(|(cond, then_block, else_block)| Inst::Branch {
                cond,
                then_block,
                else_block,
            })
            .boxed(),
        Opcode::Match => (
            r.clone(),
            btree_map(symbol(), b.clone(), 1..=3),
            option::of(b),
        )
            .prop_map(|(src, arms, default)| Inst::Match {
                src,
                arms: arms.into_iter().collect(),
                default,
            })
            .boxed(),
        Opcode::Perform => {
            let arities = shape.module.effect_arities.clone();
            let count = arities.len() as u32;
            (r.clone(), 0..count, policy())
                .prop_flat_map(move |(dst, effect, policy)| {
                    let arity = arities.get(effect as usize).copied().unwrap_or(0);
                    vec(r.clone(), arity).prop_map(move |args| Inst::Perform {
                        dst,
                        effect: EffectRef(effect),
                        args,
                        policy,
                    })
                })
                .boxed()
        }
        Opcode::Call => {
            let callees = shape.module.workflows.clone();
            (r.clone(), select(callees))
                .prop_flat_map(move |(dst, (name, params))| {
                    vec(r.clone(), params).prop_map(move |args| Inst::Call {
                        dst,
                        workflow: Symbol(name.clone()),
                        args,
                    })
                })
                .boxed()
        }
        Opcode::Spawn => (r.clone(), b)
            .prop_map(|(dst, target)| Inst::Spawn { dst, target })
            .boxed(),
        Opcode::Join => (r.clone(), r.clone())
            .prop_map(|(dst, fiber)| Inst::Join { dst, fiber })
            .boxed(),
        Opcode::Race => (r.clone(), r.clone())
            .prop_map(|(dst, fibers)| Inst::Race { dst, fibers })
            .boxed(),
        Opcode::Sleep => r.prop_map(|millis| Inst::Sleep { millis }).boxed(),
        Opcode::AwaitSignal => (r.clone(), symbol())
            .prop_map(|(dst, name)| Inst::AwaitSignal { dst, name })
            .boxed(),
        Opcode::Log => (
            select(LogLevel::ALL.to_vec()),
            text(),
            option::of(r.clone()),
        )
            .prop_map(|(level, message, fields)| Inst::Log {
                level,
                message,
                fields,
            })
            .boxed(),
        Opcode::Ret => r.prop_map(|value| Inst::Ret { value }).boxed(),
        Opcode::Fail => r.prop_map(|error| Inst::Fail { error }).boxed(),
    }
}

/// The binary instruction `op`; `op` is one of the two-operand opcodes.
fn binary(op: Opcode, dst: Reg, a: Reg, b: Reg) -> Inst {
    match op {
        Opcode::Sub => Inst::Sub { dst, a, b },
        Opcode::Mul => Inst::Mul { dst, a, b },
        Opcode::Div => Inst::Div { dst, a, b },
        Opcode::Rem => Inst::Rem { dst, a, b },
        Opcode::Eq => Inst::Eq { dst, a, b },
        Opcode::Ne => Inst::Ne { dst, a, b },
        Opcode::Lt => Inst::Lt { dst, a, b },
        Opcode::Le => Inst::Le { dst, a, b },
        Opcode::Gt => Inst::Gt { dst, a, b },
        Opcode::Ge => Inst::Ge { dst, a, b },
        Opcode::And => Inst::And { dst, a, b },
        Opcode::Or => Inst::Or { dst, a, b },
        _ => Inst::Add { dst, a, b },
    }
}

fn reg(count: u32) -> BoxedStrategy<Reg> {
    (0..count).prop_map(Reg).boxed()
}

fn block_ref(count: u32) -> BoxedStrategy<Block> {
    (0..count).prop_map(Block).boxed()
}

/// A retry and timeout policy; the default one (no retry, no timeout) half
/// the time, as in real modules.
fn policy() -> impl Strategy<Value = Policy> {
    let retry = (
        prop_oneof![1u32..=5, any::<u32>()],
        prop_oneof![0u64..=10_000, any::<u64>()],
        prop_oneof![0u64..=600_000, any::<u64>()],
        prop_oneof![1u32..=3, any::<u32>()],
    )
        .prop_map(
            |(max_attempts, initial_backoff_ms, max_backoff_ms, multiplier)| RetryPolicy {
                max_attempts,
                initial_backoff_ms,
                max_backoff_ms,
                multiplier,
            },
        );
    let timeout = prop_oneof![1u64..=3_600_000, any::<u64>()];
    prop_oneof![
        1 => Just(Policy::default()),
        1 => (option::of(retry), option::of(timeout))
            .prop_map(|(retry, timeout_ms)| Policy { retry, timeout_ms }),
    ]
}

/// A source map over some of the instructions of `workflows`: files interned
/// (unique), spans sorted by address with at most one per instruction.
fn source_map(workflows: &[Workflow]) -> BoxedStrategy<SourceMap> {
    let addrs: Vec<InstAddr> = workflows
        .iter()
        .enumerate()
        .flat_map(|(w, wf)| {
            wf.blocks.iter().enumerate().flat_map(move |(b, block)| {
                (0..block.insts.len())
                    .map(move |i| InstAddr::new(WorkflowId(w as u32), Block(b as u32), i as u32))
            })
        })
        .collect();
    let len = addrs.len();
    let files = btree_set("[a-z]{1,6}(/[a-z]{1,6})?\\.rs", 1..=3);
    (files, subsequence(addrs, 0..=len))
        .prop_flat_map(|(files, addrs): (BTreeSet<String>, Vec<InstAddr>)| {
            let file_count = files.len() as u32;
            let spans = addrs
                .into_iter()
                .map(|addr| {
                    (0..file_count, 1u32..5_000, 1u32..120).prop_map(move |(f, line, col)| {
                        (
                            addr,
                            Span {
                                file: FileId(f),
                                line,
                                col,
                            },
                        )
                    })
                })
                .collect::<Vec<_>>();
            (Just(files.into_iter().collect::<Vec<_>>()), spans)
        })
        .prop_map(|(files, spans)| SourceMap { files, spans })
        .boxed()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRunner};

    use super::*;

    /// Generates `cases` modules from a fixed seed.
    fn sample_modules(cases: usize) -> Vec<Module> {
        let mut runner = TestRunner::deterministic();
        let strategy = module();
        (0..cases)
            .map(|_| match strategy.new_tree(&mut runner) {
                Ok(tree) => tree.current(),
                Err(reason) => panic!("module strategy rejected: {reason}"),
            })
            .collect()
    }

    #[test]
    fn every_opcode_is_generated() {
        let mut seen = BTreeSet::new();
        for m in sample_modules(300) {
            for inst in m
                .workflows
                .iter()
                .flat_map(|w| w.blocks.iter().flat_map(|b| b.insts.iter()))
            {
                seen.insert(inst.opcode());
            }
        }
        let missing: Vec<&str> = OPCODES
            .iter()
            .filter(|i| !seen.contains(&i.opcode))
            .map(|i| i.mnemonic)
            .collect();
        assert!(missing.is_empty(), "never generated: {missing:?}");
    }

    /// Checks the structural promises of [`module`] on one module.
    fn check_structure(m: &Module) -> Result<(), String> {
        let names: BTreeSet<&str> = m.workflows.iter().map(|w| w.name.as_str()).collect();
        if names.len() != m.workflows.len() || m.workflows.is_empty() || m.workflows.len() > 3 {
            return Err("workflow names must be unique, 1..=3 of them".into());
        }
        let effect_names: BTreeSet<&str> = m.effects.iter().map(|e| e.name.as_str()).collect();
        if effect_names.len() != m.effects.len() {
            return Err("effect names must be unique".into());
        }
        for e in &m.effects {
            if e.kind == EffectKind::Builtin {
                let sig = crate::catalog::builtin_effect(&e.name)
                    .ok_or_else(|| format!("{} is not in the catalog", e.name))?;
                if sig.params != e.params.as_slice() {
                    return Err(format!("{} has params {:?}", e.name, e.params));
                }
            }
        }
        for w in &m.workflows {
            let expected: Vec<String> = (0..w.params.len()).map(|i| format!("p{i}")).collect();
            if w.params != expected {
                return Err(format!("params {:?}", w.params));
            }
            let labels: BTreeSet<&str> = w.blocks.iter().map(|b| b.label.as_str()).collect();
            if labels.len() != w.blocks.len() || w.blocks.is_empty() || w.blocks.len() > 5 {
                return Err(format!("{}: labels must be unique, 1..=5 blocks", w.name));
            }
            for b in &w.blocks {
                let Some((last, body)) = b.insts.split_last() else {
                    return Err(format!("{}: empty block", b.label));
                };
                if !last.is_terminator() || body.iter().any(Inst::is_terminator) {
                    return Err(format!("{}: terminator misplaced", b.label));
                }
                if b.insts.len() > 8 {
                    return Err(format!("{}: too many instructions", b.label));
                }
                for inst in &b.insts {
                    check_inst(m, w, inst)?;
                }
            }
        }
        let sm = &m.source_map;
        if sm.files.iter().collect::<BTreeSet<_>>().len() != sm.files.len() {
            return Err("files must be interned".into());
        }
        if !sm.spans.windows(2).all(|p| p[0].0 < p[1].0) {
            return Err("spans must be sorted with unique addresses".into());
        }
        for (addr, span) in &sm.spans {
            if m.inst(*addr).is_none() || sm.file(span.file).is_none() {
                return Err(format!("span at {addr} out of range"));
            }
        }
        Ok(())
    }

    fn check_inst(m: &Module, w: &Workflow, inst: &Inst) -> Result<(), String> {
        let in_range = inst.targets().iter().all(|b| w.block(*b).is_some());
        if !in_range {
            return Err(format!("{inst:?}: block out of range"));
        }
        match inst {
            Inst::Const { value, .. } if m.constant(*value).is_none() => {
                Err(format!("{inst:?}: constant out of range"))
            }
            Inst::Perform { effect, args, .. } => match m.effect(*effect) {
                Some(decl) if decl.params.len() == args.len() => Ok(()),
                _ => Err(format!("{inst:?}: effect out of range or arity mismatch")),
            },
            Inst::CallBuiltin { func, args, .. } if func.arity() != args.len() => {
                Err(format!("{inst:?}: builtin arity"))
            }
            _ => Ok(()),
        }
    }

    proptest! {
        #![proptest_config(Config::with_cases(64))]

        #[test]
        fn modules_are_structurally_valid(m in module()) {
            if let Err(why) = check_structure(&m) {
                prop_assert!(false, "{}", why);
            }
        }

        #[test]
        fn values_are_bounded(v in value()) {
            prop_assert!(v.depth() <= MAX_VALUE_DEPTH, "depth {} of {}", v.depth(), v);
        }
    }

    #[test]
    fn values_cover_every_kind_and_odd_floats() {
        let mut runner = TestRunner::deterministic();
        let strategy = value();
        let mut kinds = BTreeSet::new();
        let (mut nan, mut inf) = (false, false);
        let mut stack = Vec::new();
        for _ in 0..500 {
            match strategy.new_tree(&mut runner) {
                Ok(tree) => stack.push(tree.current()),
                Err(reason) => panic!("value strategy rejected: {reason}"),
            }
            while let Some(v) = stack.pop() {
                kinds.insert(v.kind());
                match v {
                    Value::Float(x) => {
                        nan |= x.is_nan();
                        inf |= x.is_infinite();
                    }
                    Value::List(items) => stack.extend(items),
                    Value::Map(m) => stack.extend(m.into_iter().flat_map(|(k, v)| [k, v])),
                    Value::Variant(v) => stack.push(v.payload),
                    _ => {}
                }
            }
        }
        assert_eq!(kinds.len(), 9, "kinds seen: {kinds:?}");
        assert!(nan && inf, "NaN seen: {nan}, infinity seen: {inf}");
    }
}
