//! Property tests: arbitrary events and arbitrary programs never panic the
//! interpreter, refused events leave the state alone, and a snapshot taken
//! after any step continues exactly like the original.

mod common;

use drover_interpreter::sim::Rng;
use drover_interpreter::{
    step, Command, Config, EffectError, EffectId, Event, Program, RunState, TimerId,
};
use drover_ir::instructions::{Operand, OperandKind};
use drover_ir::{
    Block, BlockData, Builtin, ConstId, EffectDecl, EffectKind, Inst, LogLevel, Module, Policy,
    Reg, RetryPolicy, Symbol, Value, Workflow, OPCODES,
};
use proptest::prelude::*;

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-5i64..100).prop_map(Value::Int),
        prop_oneof![Just(i64::MAX), Just(i64::MIN)].prop_map(Value::Int),
        any::<f64>().prop_map(Value::Float),
        "[a-z]{0,4}".prop_map(Value::Str),
    ];
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::List),
            ("[A-Z][a-z]{0,3}", inner).prop_map(|(t, v)| Value::variant(t, v)),
        ]
    })
}

fn event() -> impl Strategy<Value = Event> {
    let result = prop_oneof![
        value().prop_map(Ok),
        ("[a-z]{1,3}", any::<bool>()).prop_map(|(kind, retryable)| Err(EffectError {
            kind,
            message: "m".into(),
            retryable
        })),
    ];
    prop_oneof![
        prop::collection::vec(value(), 0..2).prop_map(|args| Event::Start { args }),
        (0u64..12, 0u32..4, result).prop_map(|(id, attempt, result)| Event::EffectDone {
            id: EffectId(id),
            attempt,
            result
        }),
        (0u64..12).prop_map(|id| Event::TimerFired { id: TimerId(id) }),
        (
            prop_oneof![Just("approve".to_owned()), Just("other".to_owned())],
            value()
        )
            .prop_map(|(name, value)| Event::Signal { name, value }),
        Just(Event::Cancel { reason: "p".into() }),
    ]
}

/// Events with their ticks; ticks mostly grow, sometimes go back.
fn events() -> impl Strategy<Value = Vec<(u64, Event)>> {
    prop::collection::vec((0u64..40, event()), 1..40)
}

/// Feeds events, checking that refusals change nothing; returns the
/// commands of each accepted event.
fn feed(p: &Program, s: &mut RunState, events: &[(u64, Event)]) -> Vec<Vec<Command>> {
    let mut out = Vec::new();
    for (tick, e) in events {
        let before = s.clone();
        match step(p, s, *tick, e.clone()) {
            Ok(cmds) => out.push(cmds),
            Err(_) => assert_eq!(*s, before, "a refused {e:?} changed the state"),
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_events_never_panic(w in 0usize..6, args in prop::collection::vec(value(), 0..2), evs in events()) {
        let p = common::program();
        let (name, _) = common::runs()[w].clone();
        let mut s = RunState::new(&p, name, Config::default()).unwrap();
        let _ = step(&p, &mut s, 0, Event::Start { args });
        feed(&p, &mut s, &evs);
    }

    #[test]
    fn snapshot_after_any_step_continues_identically(w in 0usize..6, evs in events(), split in 0usize..40) {
        let p = common::program();
        let (name, args) = common::runs()[w].clone();
        let mut s = RunState::new(&p, name, Config::default()).unwrap();
        step(&p, &mut s, 0, Event::Start { args }).unwrap();
        let split = split.min(evs.len());
        feed(&p, &mut s, &evs[..split]);
        let mut restored = RunState::restore(&s.snapshot()).unwrap();
        prop_assert_eq!(&restored, &s);
        let a = feed(&p, &mut s, &evs[split..]);
        let b = feed(&p, &mut restored, &evs[split..]);
        prop_assert_eq!(a, b);
        prop_assert_eq!(restored, s);
    }
}

/// A random operand of `kind`, with ids that are mostly in range.
fn operand(rng: &mut Rng, kind: OperandKind) -> Operand {
    let reg = |rng: &mut Rng| Reg(rng.below(6) as u32);
    let block = |rng: &mut Rng| Block(rng.below(4) as u32);
    match kind {
        OperandKind::Reg => Operand::Reg(reg(rng)),
        OperandKind::Regs => Operand::Regs((0..rng.below(3)).map(|_| reg(rng)).collect()),
        OperandKind::Block => Operand::Block(block(rng)),
        OperandKind::OptBlock => Operand::OptBlock(rng.chance(50).then(|| block(rng))),
        OperandKind::OptReg => Operand::OptReg(rng.chance(50).then(|| reg(rng))),
        OperandKind::Const => Operand::Const(ConstId(rng.below(5) as u32)),
        OperandKind::Effect => Operand::Effect(drover_ir::EffectRef(rng.below(2) as u32)),
        OperandKind::Name => Operand::Name(Symbol::from(
            *rng.pick(&["Ok", "Err", "None", "Some", "w", "x", "Fiber"])
                .unwrap_or(&"x"),
        )),
        OperandKind::Str => {
            Operand::Str((*rng.pick(&["{}", "a{}b", "{{", "}", ""]).unwrap_or(&"")).to_owned())
        }
        OperandKind::Fields => Operand::Fields(
            (0..rng.below(3))
                .map(|i| (Symbol(format!("f{i}")), reg(rng)))
                .collect(),
        ),
        OperandKind::Arms => Operand::Arms(
            (0..rng.below(3))
                .map(|i| (Symbol::from(["Ok", "Err", "Some"][i as usize]), block(rng)))
                .collect(),
        ),
        OperandKind::Policy => Operand::Policy(Policy {
            retry: rng.chance(50).then(|| RetryPolicy {
                max_attempts: rng.below(4) as u32,
                initial_backoff_ms: rng.below(50),
                max_backoff_ms: 100,
                multiplier: rng.below(3) as u32,
            }),
            timeout_ms: rng.chance(50).then(|| rng.below(100)),
        }),
        OperandKind::Level => Operand::Level(LogLevel::Info),
        OperandKind::Builtin => Operand::Builtin(*rng.pick(Builtin::ALL).unwrap_or(&Builtin::Len)),
    }
}

/// A random module of one workflow `w(x)` (plus a trivial `x()` to call),
/// built from random instructions of every opcode.
fn random_module(rng: &mut Rng) -> Module {
    let consts = vec![
        Value::Int(3),
        Value::Int(0),
        Value::from("s"),
        Value::List(vec![Value::Int(1)]),
        Value::variant("Fiber", Value::Int(1)),
    ];
    let mut blocks = Vec::new();
    for bi in 0..(1 + rng.below(3)) {
        let mut insts = Vec::new();
        for _ in 0..rng.below(6) {
            let info = loop {
                let info = rng.pick(OPCODES).expect("opcodes");
                if !info.terminator {
                    break info;
                }
            };
            let ops = info.operands.iter().map(|k| operand(rng, *k)).collect();
            let dst = info.has_dst.then(|| Reg(rng.below(6) as u32));
            insts.push(Inst::from_parts(info.opcode, dst, ops).expect("operands fit"));
        }
        let term = loop {
            let info = rng.pick(OPCODES).expect("opcodes");
            if info.terminator {
                break info;
            }
        };
        let ops = term.operands.iter().map(|k| operand(rng, *k)).collect();
        insts.push(Inst::from_parts(term.opcode, None, ops).expect("operands fit"));
        blocks.push(BlockData {
            label: format!("b{bi}"),
            insts,
        });
    }
    let decl = |name: &str| EffectDecl {
        kind: EffectKind::Activity,
        name: name.into(),
        params: vec![],
    };
    Module {
        effects: vec![decl("a"), decl("b")],
        consts,
        workflows: vec![
            Workflow {
                name: "w".into(),
                params: vec!["x".into()],
                blocks,
            },
            Workflow {
                name: "x".into(),
                params: vec![],
                blocks: vec![BlockData {
                    label: "entry".into(),
                    insts: vec![Inst::Ret { value: Reg(0) }],
                }],
            },
        ],
        source_map: Default::default(),
    }
}

#[test]
fn random_programs_never_panic() {
    let mut loaded = 0;
    for seed in 0..3_000u64 {
        let mut rng = Rng::new(seed);
        let module = random_module(&mut rng);
        let Ok(p) = Program::new(module) else {
            continue;
        };
        loaded += 1;
        let config = Config {
            fuel_per_step: 2_000,
            max_fibers: 16,
            max_pending: 16,
            ..Config::default()
        };
        let mut s = RunState::new(&p, "w", config).unwrap();
        let _ = step(
            &p,
            &mut s,
            0,
            Event::Start {
                args: vec![Value::Int(rng.below(3) as i64)],
            },
        );
        let mut tick = 0;
        for _ in 0..30 {
            tick += rng.below(20);
            let id = rng.below(12);
            let event = match rng.below(4) {
                0 => Event::EffectDone {
                    id: EffectId(id),
                    attempt: 1 + rng.below(2) as u32,
                    result: if rng.chance(70) {
                        Ok(Value::Int(1))
                    } else {
                        Err(EffectError {
                            kind: "k".into(),
                            message: "m".into(),
                            retryable: rng.chance(50),
                        })
                    },
                },
                1 => Event::TimerFired { id: TimerId(id) },
                2 => Event::Signal {
                    name: (*rng.pick(&["w", "x", "Ok"]).unwrap_or(&"x")).to_owned(),
                    value: Value::Int(2),
                },
                _ => Event::Signal {
                    name: "Some".into(),
                    value: Value::Null,
                },
            };
            let before = s.clone();
            if step(&p, &mut s, tick, event).is_err() {
                assert_eq!(s, before, "seed {seed}: a refused event changed the state");
            }
        }
    }
    assert!(loaded > 300, "only {loaded} random programs loaded");
}
