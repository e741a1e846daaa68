//! Properties of the text assembly: random modules print stably, literals
//! read back bit-exactly, and no text makes the parser panic.

use drover_ir::text::{assemble, parse, parse_with_map, print, print_with_map};
use drover_ir::value::Map;
use drover_ir::{
    Block, BlockData, Builtin, ConstId, EffectDecl, EffectKind, EffectRef, Inst, InstAddr,
    LogLevel, Module, Operand, OperandKind, Policy, Reg, RetryPolicy, Span, Symbol, Value,
    Workflow, WorkflowId, OPCODES,
};
use proptest::prelude::*;

const EMAIL: &str = include_str!("data/email.dasm");

/// Names are mostly identifiers, sometimes any text (which prints quoted).
fn name() -> impl Strategy<Value = String> {
    prop_oneof![3 => "[a-z_][a-z0-9_]{0,5}", 1 => ".{0,5}"]
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        any::<f64>().prop_map(Value::Float),
        ".{0,6}".prop_map(Value::Str),
        prop::collection::vec(any::<u8>(), 0..6).prop_map(Value::Bytes),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::List),
            prop::collection::btree_map(inner.clone(), inner.clone(), 0..3)
                .prop_map(|m: Map| Value::Map(m)),
            (name(), inner).prop_map(|(tag, payload)| Value::variant(tag, payload)),
        ]
    })
}

fn policy() -> impl Strategy<Value = Policy> {
    let retry = (any::<u32>(), any::<u64>(), any::<u64>(), any::<u32>()).prop_map(
        |(max_attempts, initial_backoff_ms, max_backoff_ms, multiplier)| RetryPolicy {
            max_attempts,
            initial_backoff_ms,
            max_backoff_ms,
            multiplier,
        },
    );
    let timeout = prop_oneof![any::<u64>(), (0..100u64).prop_map(|n| n * 60_000)];
    (prop::option::of(retry), prop::option::of(timeout))
        .prop_map(|(retry, timeout_ms)| Policy { retry, timeout_ms })
}

/// Enough material for one operand of any kind; the kind picks what it uses.
#[derive(Clone, Debug)]
struct OperandSeed {
    index: u32,
    regs: Vec<u32>,
    present: bool,
    name: String,
    pairs: Vec<(String, u32)>,
    policy: Policy,
}

fn operand_seed() -> impl Strategy<Value = OperandSeed> {
    (
        any::<u32>(),
        prop::collection::vec(0..40u32, 0..4),
        any::<bool>(),
        name(),
        prop::collection::vec((name(), any::<u32>()), 0..3),
        policy(),
    )
        .prop_map(|(index, regs, present, name, pairs, policy)| OperandSeed {
            index,
            regs,
            present,
            name,
            pairs,
            policy,
        })
}

#[derive(Clone, Debug)]
struct InstSeed {
    opcode: usize,
    dst: u32,
    operands: Vec<OperandSeed>,
    span: Option<(u32, u32, u32)>,
}

fn inst_seed() -> impl Strategy<Value = InstSeed> {
    (
        0..OPCODES.len(),
        0..40u32,
        prop::collection::vec(operand_seed(), 3),
        prop::option::weighted(0.2, (any::<u32>(), any::<u32>(), any::<u32>())),
    )
        .prop_map(|(opcode, dst, operands, span)| InstSeed {
            opcode,
            dst,
            operands,
            span,
        })
}

type BlockSeed = (String, Vec<InstSeed>);
type WorkflowSeed = (String, Vec<String>, Vec<BlockSeed>);

fn module_seed(
) -> impl Strategy<Value = (Vec<EffectDecl>, Vec<Value>, Vec<WorkflowSeed>, Vec<String>)> {
    let effect = (
        any::<bool>(),
        prop_oneof![name(), "[a-z]{1,4}\\.[a-z]{1,4}"],
        prop::collection::vec(name(), 0..3),
    )
        .prop_map(|(builtin, name, params)| EffectDecl {
            kind: if builtin {
                EffectKind::Builtin
            } else {
                EffectKind::Activity
            },
            name,
            params,
        });
    let block = (name(), prop::collection::vec(inst_seed(), 0..5));
    let workflow = (
        name(),
        prop::collection::vec(name(), 0..3),
        prop::collection::vec(block, 0..4),
    );
    (
        prop::collection::vec(effect, 0..4),
        prop::collection::vec(value(), 0..4),
        prop::collection::vec(workflow, 0..3),
        prop::collection::vec(".{0,8}", 1..3),
    )
}

/// Builds an instruction from seeds through the opcode table, with every id
/// in range, so that the module is one the printer can write faithfully.
fn build_inst(m: &mut Module, blocks: u32, seed: &InstSeed) -> Inst {
    let info = &OPCODES[seed.opcode];
    let mut operands = Vec::new();
    for (kind, s) in info.operands.iter().zip(seed.operands.iter().cycle()) {
        let pairs = |f: &dyn Fn(u32) -> u32| -> Vec<(Symbol, u32)> {
            s.pairs
                .iter()
                .map(|(n, i)| (Symbol(n.clone()), f(*i)))
                .collect()
        };
        operands.push(match kind {
            OperandKind::Reg => Operand::Reg(Reg(s.index % 40)),
            OperandKind::Regs => Operand::Regs(s.regs.iter().map(|r| Reg(*r)).collect()),
            OperandKind::Block => Operand::Block(Block(s.index % blocks)),
            OperandKind::OptBlock => {
                Operand::OptBlock(s.present.then_some(Block(s.index % blocks)))
            }
            OperandKind::OptReg => Operand::OptReg(s.present.then_some(Reg(s.index % 40))),
            OperandKind::Const => {
                if m.consts.is_empty() {
                    m.consts.push(Value::Null);
                }
                Operand::Const(ConstId(s.index % m.consts.len() as u32))
            }
            OperandKind::Effect => {
                if m.effects.is_empty() {
                    m.effects.push(EffectDecl {
                        kind: EffectKind::Activity,
                        name: "act".into(),
                        params: vec![],
                    });
                }
                Operand::Effect(EffectRef(s.index % m.effects.len() as u32))
            }
            OperandKind::Name => Operand::Name(Symbol(s.name.clone())),
            OperandKind::Str => Operand::Str(s.name.clone()),
            OperandKind::Fields => Operand::Fields(
                pairs(&|i| i % 40)
                    .into_iter()
                    .map(|(n, r)| (n, Reg(r)))
                    .collect(),
            ),
            OperandKind::Arms => Operand::Arms(
                pairs(&|i| i % blocks)
                    .into_iter()
                    .map(|(n, b)| (n, Block(b)))
                    .collect(),
            ),
            OperandKind::Policy => Operand::Policy(s.policy),
            OperandKind::Level => {
                Operand::Level(LogLevel::ALL[s.index as usize % LogLevel::ALL.len()])
            }
            OperandKind::Builtin => {
                Operand::Builtin(Builtin::ALL[s.index as usize % Builtin::ALL.len()])
            }
        });
    }
    let dst = info.has_dst.then_some(Reg(seed.dst));
    Inst::from_parts(info.opcode, dst, operands).expect("operands follow the opcode table")
}

fn module() -> impl Strategy<Value = Module> {
    module_seed().prop_map(|(effects, consts, workflows, files)| {
        let mut m = Module {
            effects,
            consts,
            ..Module::default()
        };
        for (w, (name, params, blocks)) in workflows.into_iter().enumerate() {
            let n = blocks.len() as u32;
            let mut out = Vec::new();
            for (b, (label, seeds)) in blocks.into_iter().enumerate() {
                let mut insts = Vec::new();
                for (i, seed) in seeds.iter().enumerate() {
                    insts.push(build_inst(&mut m, n, seed));
                    if let Some((f, line, col)) = seed.span {
                        let file = m.source_map.intern_file(&files[f as usize % files.len()]);
                        let addr = InstAddr::new(WorkflowId(w as u32), Block(b as u32), i as u32);
                        m.source_map.insert(addr, Span { file, line, col });
                    }
                }
                out.push(BlockData { label, insts });
            }
            m.workflows.push(Workflow {
                name,
                params,
                blocks: out,
            });
        }
        m
    })
}

/// Random edits of valid text: deletions, insertions of tokens and junk,
/// duplicated and swapped pieces.
fn mutated(base: String) -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just(",".to_owned()),
        Just("(".to_owned()),
        Just(")".to_owned()),
        Just("[".to_owned()),
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("\"".to_owned()),
        Just("\\".to_owned()),
        Just("\n".to_owned()),
        Just(":".to_owned()),
        Just("@".to_owned()),
        Just("#".to_owned()),
        Just("r4294967296".to_owned()),
        Just("99999999999999999999".to_owned()),
        Just("é".to_owned()),
        Just("workflow".to_owned()),
        Just("default".to_owned()),
        ".{0,4}",
    ];
    let edit = (
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        0..4u8,
        token,
    );
    prop::collection::vec(edit, 1..6).prop_map(move |edits| {
        let mut text = base.clone();
        for (a, b, op, token) in edits {
            let bounds: Vec<usize> = text
                .char_indices()
                .map(|(i, _)| i)
                .chain(std::iter::once(text.len()))
                .collect();
            let (x, y) = (a.index(bounds.len()), b.index(bounds.len()));
            let (lo, hi) = (x.min(y), x.max(y));
            let (lo, hi, short) = (bounds[lo], bounds[hi], bounds[hi.min(lo + 12)]);
            match op {
                0 => text.insert_str(lo, &token),
                1 => text.replace_range(lo..short, ""),
                2 => {
                    let piece = text[lo..hi].to_owned();
                    text.insert_str(hi, &piece);
                }
                _ => text.truncate(lo),
            }
        }
        text
    })
}

/// Whatever parses prints stably, and maps the same way either direction.
fn check_stable(text: &str) -> Result<(), TestCaseError> {
    if let Ok(m) = parse(text) {
        let once = print(&m);
        let back = parse(&once).map_err(|e| TestCaseError::fail(format!("{e:?}\n{once}")))?;
        prop_assert_eq!(print(&back), once);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_modules_round_trip(m in module()) {
        let (text, printed_map) = print_with_map(&m);
        let back = match parse_with_map("m.dasm", &text) {
            Ok(back) => back,
            Err(e) => return Err(TestCaseError::fail(format!("{}\n{text}", drover_ir::diagnostics::render(&e)))),
        };
        prop_assert_eq!(print(&back.0), text);
        prop_assert_eq!(back.1, printed_map);
        prop_assert_eq!(back.0.workflows.len(), m.workflows.len());
        prop_assert_eq!(back.0.effects, m.effects);
    }

    #[test]
    fn floats_and_ints_read_back_exactly(x in any::<f64>(), n in any::<i64>()) {
        let mut m = Module::default();
        let fx = m.intern_const(Value::Float(x));
        let fn_ = m.intern_const(Value::Int(n));
        m.workflows.push(Workflow {
            name: "w".into(),
            params: vec![],
            blocks: vec![BlockData {
                label: "entry".into(),
                insts: vec![
                    Inst::Const { dst: Reg(0), value: fx },
                    Inst::Const { dst: Reg(1), value: fn_ },
                    Inst::Ret { value: Reg(0) },
                ],
            }],
        });
        let back = parse(&print(&m)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        match back.consts.first() {
            Some(Value::Float(y)) if x.is_nan() => prop_assert!(y.is_nan()),
            Some(Value::Float(y)) => prop_assert_eq!(y.to_bits(), x.to_bits()),
            other => prop_assert!(false, "{:?}", other),
        }
        prop_assert_eq!(back.consts.get(1), Some(&Value::Int(n)));
    }

    #[test]
    fn values_read_back_equal(v in value()) {
        let mut m = Module::default();
        let c = m.intern_const(v.clone());
        m.workflows.push(Workflow {
            name: "w".into(),
            params: vec![],
            blocks: vec![BlockData {
                label: "entry".into(),
                insts: vec![Inst::Const { dst: Reg(0), value: c }, Inst::Ret { value: Reg(0) }],
            }],
        });
        let back = parse(&print(&m)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        // NaN payloads have no text form; compare through the printer then.
        prop_assert_eq!(back.consts.first().map(ToString::to_string), Some(v.to_string()));
        if !v.to_string().contains("nan") {
            prop_assert_eq!(back.consts.first(), Some(&v));
        }
    }

    #[test]
    fn any_text_never_panics(text in ".*") {
        let _ = assemble("any.dasm", &text);
        check_stable(&text)?;
    }

    #[test]
    fn mutated_valid_text_never_panics(text in mutated(EMAIL.to_owned())) {
        if let Err(e) = assemble("email.dasm", &text) {
            // Rendering walks every span: it must not panic either.
            let _ = drover_ir::diagnostics::render(&e);
        }
        check_stable(&text)?;
    }

    #[test]
    fn mutated_random_modules_never_panic(text in module().prop_flat_map(|m| mutated(print(&m)))) {
        if let Err(e) = parse(&text) {
            let _ = drover_ir::diagnostics::render(&e);
        }
        check_stable(&text)?;
    }
}

// The shared generator of structurally valid modules; run with
// `cargo test -p drover-ir --features arbitrary`. The generator above runs
// without the feature and covers names and ids the shared one avoids.
#[cfg(feature = "arbitrary")]
proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_modules_round_trip(m in drover_ir::arbitrary::module()) {
        let (text, printed_map) = print_with_map(&m);
        let (back, parsed_map) = match parse_with_map("m.dasm", &text) {
            Ok(back) => back,
            Err(e) => return Err(TestCaseError::fail(format!("{}\n{text}", drover_ir::diagnostics::render(&e)))),
        };
        prop_assert_eq!(print(&back), text);
        prop_assert_eq!(parsed_map, printed_map);
        // The pool's order is not in the text (the parser interns constants in
        // order of use), so workflows can differ in `ConstId`s; effects cannot.
        prop_assert_eq!(&back.effects, &m.effects);
        let shape = |m: &Module| -> Vec<Vec<usize>> {
            m.workflows.iter().map(|w| w.blocks.iter().map(|b| b.insts.len()).collect()).collect()
        };
        prop_assert_eq!(shape(&back), shape(&m));
    }
}
