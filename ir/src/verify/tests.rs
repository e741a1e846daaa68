//! One test per check (code, message, location), the dataflow cases,
//! rendering snapshots, and a proptest over hostile modules.

use proptest::prelude::*;

use super::codes::*;
use super::*;
use crate::entities::{Block, ConstId, EffectRef, InstAddr, Reg, WorkflowId};
use crate::instructions::{Inst, Policy, Symbol};
use crate::module::{BlockData, EffectDecl, EffectKind, Location, Module, Workflow};
use crate::text::{BlockText, InstText, TextMap, WorkflowText};
use crate::{Builtin, Value};

// ---- builders -------------------------------------------------------------

fn r(n: u32) -> Reg {
    Reg(n)
}

fn bb(n: u32) -> Block {
    Block(n)
}

fn block(label: &str, insts: Vec<Inst>) -> BlockData {
    BlockData {
        label: label.to_owned(),
        insts,
    }
}

fn wf(name: &str, params: &[&str], blocks: Vec<BlockData>) -> Workflow {
    Workflow {
        name: name.to_owned(),
        params: params.iter().map(|p| (*p).to_owned()).collect(),
        blocks,
    }
}

fn module(workflows: Vec<Workflow>) -> Module {
    Module {
        workflows,
        consts: vec![Value::Int(1)],
        ..Module::default()
    }
}

fn effect(kind: EffectKind, name: &str, params: &[&str]) -> EffectDecl {
    EffectDecl {
        kind,
        name: name.to_owned(),
        params: params.iter().map(|p| (*p).to_owned()).collect(),
    }
}

fn ret(n: u32) -> Inst {
    Inst::Ret { value: r(n) }
}

fn konst(dst: u32) -> Inst {
    Inst::Const {
        dst: r(dst),
        value: ConstId(0),
    }
}

fn jmp(b: u32) -> Inst {
    Inst::Jump { target: bb(b) }
}

fn br(cond: u32, then_block: u32, else_block: u32) -> Inst {
    Inst::Branch {
        cond: r(cond),
        then_block: bb(then_block),
        else_block: bb(else_block),
    }
}

fn at(w: u32, b: u32, i: u32) -> InstAddr {
    InstAddr::new(WorkflowId(w), bb(b), i)
}

/// A one-workflow module `main(x)` whose entry runs `insts` then `ret r0`.
fn straight(insts: Vec<Inst>) -> Module {
    let mut insts = insts;
    insts.push(ret(0));
    module(vec![wf("main", &["x"], vec![block("entry", insts)])])
}

/// The findings as (code, location, message), for compact assertions.
fn found(m: &Module) -> Vec<(&'static str, Location, String)> {
    verify(m)
        .diags
        .into_iter()
        .map(|d| (d.code, d.location, d.message))
        .collect()
}

/// The one finding of a module, which must have exactly one.
fn only(m: &Module) -> Diag {
    let report = verify(m);
    assert_eq!(report.diags.len(), 1, "{:#?}", report.diags);
    report.diags.into_iter().next().unwrap()
}

// ---- names ----------------------------------------------------------------

#[test]
fn clean_module_has_no_findings() {
    let m = straight(vec![konst(1)]);
    assert_eq!(verify(&m), Report::default());
    assert!(!verify(&m).has_errors());
}

#[test]
fn duplicate_workflow_names() {
    let w = || wf("main", &[], vec![block("entry", vec![konst(0), ret(0)])]);
    let d = only(&module(vec![w(), w()]));
    assert_eq!(d.code, DUPLICATE_WORKFLOW);
    assert_eq!(d.location, Location::Workflow(WorkflowId(1)));
    assert_eq!(d.message, "workflow `main` is defined twice");
    assert_eq!(d.help.as_deref(), Some("first defined as w0"));
}

#[test]
fn duplicate_effect_names() {
    let mut m = straight(vec![]);
    m.effects = vec![
        effect(EffectKind::Activity, "scan", &["blob"]),
        effect(EffectKind::Activity, "other", &[]),
        effect(EffectKind::Activity, "scan", &["blob"]),
    ];
    let d = only(&m);
    assert_eq!(d.code, DUPLICATE_EFFECT);
    assert_eq!(d.location, Location::Effect(EffectRef(2)));
    assert_eq!(d.message, "effect `scan` is declared twice");
    assert_eq!(d.help.as_deref(), Some("first declared as e0"));
}

#[test]
fn duplicate_param_names() {
    let m = module(vec![wf(
        "main",
        &["a", "b", "a"],
        vec![block("entry", vec![ret(0)])],
    )]);
    let d = only(&m);
    assert_eq!(d.code, DUPLICATE_PARAM);
    assert_eq!(d.location, Location::Workflow(WorkflowId(0)));
    assert_eq!(d.message, "parameter `a` (r2) is declared twice");
    assert_eq!(d.help.as_deref(), Some("it is first declared as r0"));
}

#[test]
fn duplicate_block_labels() {
    let m = module(vec![wf(
        "main",
        &["x"],
        vec![block("entry", vec![jmp(1)]), block("entry", vec![ret(0)])],
    )]);
    let d = only(&m);
    assert_eq!(d.code, DUPLICATE_LABEL);
    assert_eq!(d.location, Location::Block(WorkflowId(0), bb(1)));
    assert_eq!(d.message, "label `entry` is used twice");
    assert_eq!(d.help.as_deref(), Some("it first labels bb0"));
}

// ---- block shapes ---------------------------------------------------------

#[test]
fn workflow_without_blocks() {
    let d = only(&module(vec![wf("main", &[], vec![])]));
    assert_eq!(d.code, NO_BLOCKS);
    assert_eq!(d.location, Location::Workflow(WorkflowId(0)));
    assert_eq!(d.message, "workflow `main` has no blocks");
}

#[test]
fn empty_block() {
    let m = module(vec![wf(
        "main",
        &["x"],
        vec![block("entry", vec![jmp(1)]), block("hole", vec![])],
    )]);
    let d = only(&m);
    assert_eq!(d.code, EMPTY_BLOCK);
    assert_eq!(d.location, Location::Block(WorkflowId(0), bb(1)));
    assert_eq!(d.message, "block `hole` is empty");
}

#[test]
fn block_falling_off_its_end() {
    let m = module(vec![wf(
        "main",
        &["x"],
        vec![block("entry", vec![konst(1), konst(2)])],
    )]);
    let d = only(&m);
    assert_eq!(d.code, MISSING_TERMINATOR);
    assert_eq!(d.location, Location::Inst(at(0, 0, 1)));
    assert_eq!(d.message, "block `entry` falls off its end");
}

#[test]
fn instructions_after_a_terminator() {
    let m = module(vec![wf(
        "main",
        &["x"],
        vec![block("entry", vec![ret(0), konst(1), ret(1)])],
    )]);
    let d = only(&m);
    assert_eq!(d.code, DEAD_CODE);
    assert_eq!(d.location, Location::Inst(at(0, 0, 1)));
    assert_eq!(
        d.message,
        "2 instructions after the terminator `ret` can never run"
    );
}

// ---- references -----------------------------------------------------------

#[test]
fn bad_targets_point_at_the_operand() {
    let m = module(vec![wf(
        "main",
        &["x"],
        vec![
            block(
                "entry",
                vec![
                    Inst::Spawn {
                        dst: r(1),
                        target: bb(7),
                    },
                    br(0, 1, 9),
                ],
            ),
            block(
                "m",
                vec![Inst::Match {
                    src: r(0),
                    arms: vec![(Symbol::from("Ok"), bb(0)), (Symbol::from("Err"), bb(5))],
                    default: Some(bb(6)),
                }],
            ),
        ],
    )]);
    let f = found(&m);
    let expect = |loc, b: u32| {
        (
            BAD_TARGET,
            loc,
            format!("target bb{b} does not exist (the workflow has 2 blocks)"),
        )
    };
    assert_eq!(
        f,
        vec![
            expect(Location::Operand(at(0, 0, 0), 0), 7),
            expect(Location::Operand(at(0, 0, 1), 2), 9),
            expect(Location::Operand(at(0, 1, 0), 1), 5),
            expect(Location::Operand(at(0, 1, 0), 2), 6),
        ]
    );
}

#[test]
fn bad_const_and_bad_effect() {
    let m = straight(vec![
        Inst::Const {
            dst: r(1),
            value: ConstId(3),
        },
        Inst::Perform {
            dst: r(2),
            effect: EffectRef(0),
            args: vec![],
            policy: Policy::default(),
        },
    ]);
    assert_eq!(
        found(&m),
        vec![
            (
                BAD_CONST,
                Location::Operand(at(0, 0, 0), 0),
                "constant c3 does not exist (the pool has 1 constant)".to_owned()
            ),
            (
                BAD_EFFECT,
                Location::Operand(at(0, 0, 1), 0),
                "effect e0 does not exist (the table has 0 effects)".to_owned()
            ),
        ]
    );
}

#[test]
fn register_too_large_skips_dataflow() {
    // r70000 is never defined, but only the range error is reported: the
    // dataflow would have to size a bitset by it.
    let m = straight(vec![Inst::Move {
        dst: r(1),
        src: r(70_000),
    }]);
    let d = only(&m);
    assert_eq!(d.code, REGISTER_TOO_LARGE);
    assert_eq!(d.location, Location::Operand(at(0, 0, 0), 0));
    assert_eq!(d.message, "register r70000 is beyond the limit r65535");

    let m = straight(vec![Inst::Move {
        dst: r(u32::MAX),
        src: r(0),
    }]);
    assert_eq!(only(&m).location, Location::Dst(at(0, 0, 0)));
}

#[test]
fn largest_register_is_accepted() {
    let m = straight(vec![
        konst(65_535),
        Inst::Move {
            dst: r(1),
            src: r(65_535),
        },
    ]);
    assert_eq!(found(&m), vec![]);
}

// ---- effects and arities --------------------------------------------------

#[test]
fn unknown_builtin_effect_suggests_the_closest() {
    let mut m = straight(vec![]);
    m.effects = vec![effect(EffectKind::Builtin, "memcache.gte", &["key"])];
    let d = only(&m);
    assert_eq!(d.code, UNKNOWN_EFFECT);
    assert_eq!(d.location, Location::Effect(EffectRef(0)));
    assert_eq!(d.message, "unknown built-in effect `memcache.gte`");
    assert_eq!(
        d.help.as_deref(),
        Some("the closest built-in effect is `memcache.get`")
    );
}

#[test]
fn builtin_effect_declared_with_wrong_params() {
    let mut m = straight(vec![]);
    m.effects = vec![effect(
        EffectKind::Builtin,
        "memcache.set",
        &["key", "value"],
    )];
    let d = only(&m);
    assert_eq!(d.code, EFFECT_ARITY);
    assert_eq!(d.location, Location::Effect(EffectRef(0)));
    assert_eq!(
        d.message,
        "built-in effect `memcache.set` takes 3 parameters, declared with 2"
    );
    assert_eq!(
        d.help.as_deref(),
        Some("its signature is `memcache.set(key, value, ttl_s)`")
    );
}

#[test]
fn activity_in_a_reserved_namespace() {
    let mut m = straight(vec![]);
    m.effects = vec![
        effect(EffectKind::Activity, "slack.shout", &["text"]),
        effect(EffectKind::Activity, "billing.charge", &["amount"]),
    ];
    let d = only(&m);
    assert_eq!(d.code, RESERVED_NAMESPACE);
    assert_eq!(d.location, Location::Effect(EffectRef(0)));
    assert_eq!(
        d.message,
        "activity `slack.shout` is in the namespace `slack`, which is reserved for built-in effects"
    );
}

#[test]
fn perform_arity_shows_the_signature() {
    let mut m = straight(vec![Inst::Perform {
        dst: r(1),
        effect: EffectRef(0),
        args: vec![r(0), r(0)],
        policy: Policy::default(),
    }]);
    m.effects = vec![effect(
        EffectKind::Builtin,
        "memcache.set",
        &["key", "value", "ttl_s"],
    )];
    let d = only(&m);
    assert_eq!(d.code, ARITY);
    assert_eq!(d.location, Location::Operand(at(0, 0, 0), 1));
    assert_eq!(d.message, "effect `memcache.set` takes 3 arguments, got 2");
    assert_eq!(
        d.help.as_deref(),
        Some("its signature is `memcache.set(key, value, ttl_s)`")
    );
}

#[test]
fn builtin_arity() {
    let m = straight(vec![Inst::CallBuiltin {
        dst: r(1),
        func: Builtin::Insert,
        args: vec![r(0)],
    }]);
    let d = only(&m);
    assert_eq!(d.code, ARITY);
    assert_eq!(d.location, Location::Operand(at(0, 0, 0), 1));
    assert_eq!(d.message, "builtin `insert` takes 3 arguments, got 1");
}

#[test]
fn call_arity_and_unknown_workflow() {
    let child = wf("child", &["a", "b"], vec![block("entry", vec![ret(1)])]);
    let main = wf(
        "main",
        &["x"],
        vec![block(
            "entry",
            vec![
                Inst::Call {
                    dst: r(1),
                    workflow: Symbol::from("child"),
                    args: vec![r(0)],
                },
                Inst::Call {
                    dst: r(2),
                    workflow: Symbol::from("elsewhere"),
                    args: vec![r(0)],
                },
                Inst::Call {
                    dst: r(3),
                    workflow: Symbol::from("child"),
                    args: vec![r(0), r(1)],
                },
                ret(3),
            ],
        )],
    );
    let report = verify(&module(vec![main, child]));
    let f: Vec<_> = report
        .diags
        .iter()
        .map(|d| (d.severity, d.code, d.location, d.message.as_str()))
        .collect();
    assert_eq!(
        f,
        vec![
            (
                Severity::Error,
                ARITY,
                Location::Operand(at(0, 0, 0), 1),
                "workflow `child` takes 2 arguments, got 1"
            ),
            (
                Severity::Warning,
                UNKNOWN_WORKFLOW,
                Location::Operand(at(0, 0, 1), 0),
                "workflow `elsewhere` is not defined in this module; it is resolved at run time"
            ),
        ]
    );
    assert_eq!(report.errors().count(), 1);
    assert_eq!(report.warnings().count(), 1);
}

#[test]
fn format_placeholders_and_braces() {
    let format = |template: &str, args: Vec<Reg>| Inst::Format {
        dst: r(1),
        template: template.to_owned(),
        args,
    };
    let m = straight(vec![
        format("{} and {}", vec![r(0)]),
        format("{{literal}} {}", vec![r(0)]),
        format("total: {count}", vec![r(0)]),
        format("oops }", vec![]),
    ]);
    assert_eq!(
        found(&m),
        vec![
            (
                FORMAT_PLACEHOLDERS,
                Location::Operand(at(0, 0, 0), 1),
                "the template has 2 placeholders but 1 argument is given".to_owned()
            ),
            (
                FORMAT_BRACE,
                Location::Operand(at(0, 0, 2), 0),
                "unmatched `{` at byte 7 of the template".to_owned()
            ),
            (
                FORMAT_BRACE,
                Location::Operand(at(0, 0, 3), 0),
                "unmatched `}` at byte 5 of the template".to_owned()
            ),
        ]
    );
}

#[test]
fn match_duplicate_arms_and_no_arms() {
    let m = module(vec![wf(
        "main",
        &["x"],
        vec![
            block(
                "entry",
                vec![Inst::Match {
                    src: r(0),
                    arms: vec![
                        (Symbol::from("Ok"), bb(1)),
                        (Symbol::from("Err"), bb(2)),
                        (Symbol::from("Ok"), bb(2)),
                    ],
                    default: None,
                }],
            ),
            block("ok", vec![ret(0)]),
            block(
                "bad",
                vec![Inst::Match {
                    src: r(0),
                    arms: vec![],
                    default: None,
                }],
            ),
        ],
    )]);
    let report = verify(&m);
    let f: Vec<_> = report
        .diags
        .iter()
        .map(|d| (d.code, d.location, d.message.as_str(), d.help.as_deref()))
        .collect();
    assert_eq!(
        f,
        vec![
            (
                DUPLICATE_ARM,
                Location::Operand(at(0, 0, 0), 1),
                "tag `Ok` has two arms",
                Some("arm 2 can never be taken: arm 0 matches `Ok` first")
            ),
            (
                EMPTY_MATCH,
                Location::Inst(at(0, 2, 0)),
                "`match` has no arms and no default",
                Some("add an arm, or `default LABEL`")
            ),
        ]
    );
}

// ---- reachability ---------------------------------------------------------

#[test]
fn unreachable_block_is_a_warning() {
    let m = module(vec![wf(
        "main",
        &["x"],
        vec![
            block("entry", vec![ret(0)]),
            // Uses an undefined register, which is not reported here.
            block("island", vec![ret(9)]),
        ],
    )]);
    let d = only(&m);
    assert_eq!(d.severity, Severity::Warning);
    assert_eq!(d.code, UNREACHABLE_BLOCK);
    assert_eq!(d.location, Location::Block(WorkflowId(0), bb(1)));
    assert_eq!(d.message, "block `island` is unreachable");
    assert!(!verify(&m).has_errors());
}

#[test]
fn spawn_targets_and_match_arms_are_reachable() {
    let m = module(vec![wf(
        "main",
        &["x"],
        vec![
            block(
                "entry",
                vec![
                    Inst::Spawn {
                        dst: r(1),
                        target: bb(1),
                    },
                    Inst::Match {
                        src: r(0),
                        arms: vec![(Symbol::from("Ok"), bb(2))],
                        default: Some(bb(3)),
                    },
                ],
            ),
            block("fiber", vec![ret(0)]),
            block("ok", vec![ret(0)]),
            block("other", vec![ret(0)]),
        ],
    )]);
    assert_eq!(found(&m), vec![]);
}

// ---- use before definition ------------------------------------------------

fn use_before_def(reg: u32, addr: InstAddr, n: usize) -> (&'static str, Location, String) {
    (
        USE_BEFORE_DEF,
        Location::Operand(addr, n),
        format!("register r{reg} may be used before it is defined"),
    )
}

#[test]
fn defined_on_one_branch_only() {
    // entry: br r0, then, join   then: r1 = const; jmp join   join: ret r1
    let m = module(vec![wf(
        "main",
        &["c"],
        vec![
            block("entry", vec![br(0, 1, 2)]),
            block("then", vec![konst(1), jmp(2)]),
            block("join", vec![ret(1)]),
        ],
    )]);
    assert_eq!(found(&m), vec![use_before_def(1, at(0, 2, 0), 0)]);
    let d = only(&m);
    assert_eq!(
        d.help.as_deref(),
        Some("some path from the entry of `main` reaches here without writing r1")
    );
}

#[test]
fn defined_on_both_branches() {
    let m = module(vec![wf(
        "main",
        &["c"],
        vec![
            block("entry", vec![br(0, 1, 2)]),
            block("then", vec![konst(1), jmp(3)]),
            block(
                "else",
                vec![
                    Inst::Move {
                        dst: r(1),
                        src: r(0),
                    },
                    jmp(3),
                ],
            ),
            block("join", vec![ret(1)]),
        ],
    )]);
    assert_eq!(found(&m), vec![]);
}

#[test]
fn loop_back_edge_keeps_definitions_from_before_the_loop() {
    // r1 is defined before the loop; r2 only inside it, after its use.
    let m = module(vec![wf(
        "main",
        &["n"],
        vec![
            block("entry", vec![konst(1), jmp(1)]),
            block(
                "head",
                vec![
                    Inst::Lt {
                        dst: r(3),
                        a: r(1),
                        b: r(0),
                    },
                    br(3, 2, 3),
                ],
            ),
            block(
                "body",
                vec![
                    Inst::Add {
                        dst: r(1),
                        a: r(1),
                        b: r(2),
                    },
                    konst(2),
                    jmp(1),
                ],
            ),
            block("done", vec![ret(1)]),
        ],
    )]);
    assert_eq!(found(&m), vec![use_before_def(2, at(0, 2, 0), 1)]);
}

#[test]
fn loop_entry_is_also_a_join() {
    // The entry block is a loop head: r1, defined later in the loop, is not
    // defined on the first arrival.
    let m = module(vec![wf(
        "main",
        &["x"],
        vec![
            block(
                "entry",
                vec![
                    Inst::Move {
                        dst: r(2),
                        src: r(1),
                    },
                    jmp(1),
                ],
            ),
            block("body", vec![konst(1), jmp(0)]),
        ],
    )]);
    assert_eq!(found(&m), vec![use_before_def(1, at(0, 0, 0), 0)]);
}

#[test]
fn spawned_fiber_sees_registers_defined_before_the_spawn() {
    // r1 is defined before the spawn (ok in the fiber); r3 after it (not).
    let m = module(vec![wf(
        "main",
        &["x"],
        vec![
            block(
                "entry",
                vec![
                    konst(1),
                    Inst::Spawn {
                        dst: r(2),
                        target: bb(1),
                    },
                    konst(3),
                    Inst::Join {
                        dst: r(4),
                        fiber: r(2),
                    },
                    ret(4),
                ],
            ),
            block(
                "fiber",
                vec![
                    Inst::Add {
                        dst: r(5),
                        a: r(1),
                        b: r(3),
                    },
                    // The handle is the spawner's, written after the copy.
                    Inst::Join {
                        dst: r(6),
                        fiber: r(2),
                    },
                    ret(5),
                ],
            ),
        ],
    )]);
    assert_eq!(
        found(&m),
        vec![
            use_before_def(3, at(0, 1, 0), 1),
            use_before_def(2, at(0, 1, 1), 0),
        ]
    );
}

#[test]
fn each_register_is_reported_once_per_instruction() {
    let m = straight(vec![Inst::Add {
        dst: r(1),
        a: r(1),
        b: r(1),
    }]);
    assert_eq!(found(&m), vec![use_before_def(1, at(0, 0, 0), 0)]);
}

#[test]
fn uses_in_every_operand_kind_are_checked() {
    let m = straight(vec![
        Inst::SetField {
            base: r(1),
            name: Symbol::from("a"),
            src: r(0),
        },
        Inst::SetIndex {
            base: r(2),
            key: r(0),
            src: r(0),
        },
        Inst::Record {
            dst: r(10),
            fields: vec![(Symbol::from("a"), r(0)), (Symbol::from("b"), r(3))],
        },
        Inst::List {
            dst: r(11),
            items: vec![r(0), r(4)],
        },
        Inst::MakeVariant {
            dst: r(12),
            tag: Symbol::from("Some"),
            payload: Some(r(5)),
        },
        // Defining its destination does not define its operand.
        Inst::Move {
            dst: r(6),
            src: r(6),
        },
    ]);
    assert_eq!(
        found(&m),
        vec![
            use_before_def(1, at(0, 0, 0), 0),
            use_before_def(2, at(0, 0, 1), 0),
            use_before_def(3, at(0, 0, 2), 0),
            use_before_def(4, at(0, 0, 3), 0),
            use_before_def(5, at(0, 0, 4), 1),
            use_before_def(6, at(0, 0, 5), 0),
        ]
    );
}

#[test]
fn dead_code_is_not_analysed() {
    let m = module(vec![wf(
        "main",
        &["x"],
        vec![block("entry", vec![ret(0), ret(9)])],
    )]);
    assert_eq!(only(&m).code, DEAD_CODE);
}

// ---- all together ---------------------------------------------------------

#[test]
fn every_independent_error_is_reported() {
    let mut m = module(vec![
        wf(
            "main",
            &["x", "x"],
            vec![
                block(
                    "entry",
                    vec![
                        Inst::Perform {
                            dst: r(2),
                            effect: EffectRef(0),
                            args: vec![],
                            policy: Policy::default(),
                        },
                        Inst::Const {
                            dst: r(3),
                            value: ConstId(42),
                        },
                        br(7, 1, 4),
                    ],
                ),
                block("entry", vec![]),
            ],
        ),
        wf("empty", &[], vec![]),
    ]);
    m.effects = vec![effect(EffectKind::Builtin, "sys.now", &[])];
    m.effects.push(effect(EffectKind::Builtin, "sys.nope", &[]));
    let codes: Vec<_> = verify(&m).diags.iter().map(|d| d.code).collect();
    assert_eq!(
        codes,
        vec![
            UNKNOWN_EFFECT,
            DUPLICATE_PARAM,
            BAD_CONST,
            USE_BEFORE_DEF,
            BAD_TARGET,
            DUPLICATE_LABEL,
            EMPTY_BLOCK,
            NO_BLOCKS,
        ]
    );
}

#[test]
fn display_says_where_without_the_text() {
    let m = module(vec![wf(
        "scan_email",
        &["c"],
        vec![
            block("entry", vec![br(0, 1, 2)]),
            block("hit", vec![konst(5), jmp(2)]),
            block("miss", vec![konst(1), konst(2), konst(3), ret(5)]),
        ],
    )]);
    let d = only(&m);
    assert_eq!(
        d.to_string(),
        "error[verify::use-before-def] w0 `scan_email` bb2 `miss` #3: register r5 may be used before it is defined"
    );
    assert_eq!(
        format!("{d:#}"),
        "error[verify::use-before-def] w0 `scan_email` bb2 `miss` #3: register r5 may be used before it is defined\n  help: some path from the entry of `scan_email` reaches here without writing r5"
    );
    let mut m = straight(vec![]);
    m.effects = vec![effect(EffectKind::Builtin, "sys.nope", &[])];
    assert_eq!(
        only(&m).to_string(),
        "error[verify::unknown-effect] effect e0 `sys.nope`: unknown built-in effect `sys.nope`"
    );
}

// ---- rendering ------------------------------------------------------------

/// The byte range of `needle` in `hay` at or after `from`.
fn find(hay: &str, needle: &str, from: usize) -> std::ops::Range<usize> {
    let start = from + hay[from..].find(needle).expect(needle);
    start..start + needle.len()
}

/// The text map of an instruction on the line `line`, with its destination
/// and operands given as the substrings they are, in order.
fn inst_text(src: &str, line: &str, dst: Option<&str>, operands: &[&str]) -> InstText {
    let whole = find(src, line, 0);
    let mut cursor = whole.start;
    let dst = dst.map(|d| find(src, d, cursor));
    if let Some(d) = &dst {
        cursor = d.end;
    }
    let operands = operands
        .iter()
        .map(|o| {
            let range = find(src, o, cursor);
            cursor = range.end;
            range
        })
        .collect();
    InstText {
        whole,
        dst,
        operands,
    }
}

const CACHE_PUT: &str = "\
effect memcache.set(key, value, ttl_s)

workflow cache_put(key, value) {
entry:
    r3 = perform memcache.set(r0, r1)
    br r4, done, nowhere
done:
    r5 = format \"put {} {\", (r0)
    ret r3
orphan:
    ret r0
}
";

fn cache_put() -> (Module, TextMap) {
    let mut m = module(vec![wf(
        "cache_put",
        &["key", "value"],
        vec![
            block(
                "entry",
                vec![
                    Inst::Perform {
                        dst: r(3),
                        effect: EffectRef(0),
                        args: vec![r(0), r(1)],
                        policy: Policy::default(),
                    },
                    br(4, 1, 9),
                ],
            ),
            block(
                "done",
                vec![
                    Inst::Format {
                        dst: r(5),
                        template: "put {} {".to_owned(),
                        args: vec![r(0)],
                    },
                    ret(3),
                ],
            ),
            block("orphan", vec![ret(0)]),
        ],
    )]);
    m.effects = vec![effect(
        EffectKind::Builtin,
        "memcache.set",
        &["key", "value", "ttl_s"],
    )];
    let src = CACHE_PUT;
    let map = TextMap {
        effects: vec![find(src, "effect memcache.set(key, value, ttl_s)", 0)],
        workflows: vec![WorkflowText {
            header: find(src, "workflow cache_put(key, value)", 0),
            blocks: vec![
                BlockText {
                    label: find(src, "entry:", 0),
                    insts: vec![
                        inst_text(
                            src,
                            "r3 = perform memcache.set(r0, r1)",
                            Some("r3"),
                            &["memcache.set", "(r0, r1)", ""],
                        ),
                        inst_text(
                            src,
                            "br r4, done, nowhere",
                            None,
                            &["r4", "done", "nowhere"],
                        ),
                    ],
                },
                BlockText {
                    label: find(src, "done:", 0),
                    insts: vec![
                        inst_text(
                            src,
                            "r5 = format \"put {} {\", (r0)",
                            Some("r5"),
                            &["\"put {} {\"", "(r0)"],
                        ),
                        inst_text(src, "ret r3", None, &["r3"]),
                    ],
                },
                BlockText {
                    label: find(src, "orphan:", 0),
                    insts: vec![inst_text(src, "ret r0", None, &["r0"])],
                },
            ],
        }],
    };
    (m, map)
}

#[test]
fn cache_put_findings() {
    let (m, _) = cache_put();
    let codes: Vec<_> = verify(&m).diags.iter().map(|d| d.code).collect();
    assert_eq!(
        codes,
        vec![
            ARITY,
            USE_BEFORE_DEF,
            BAD_TARGET,
            FORMAT_BRACE,
            UNREACHABLE_BLOCK
        ]
    );
}

#[test]
fn render_survives_a_map_of_another_text() {
    let (m, map) = cache_put();
    let out = verify(&m).render("short.dasm", "ret r0\n", &map);
    // Every finding is still listed, without a snippet it cannot show.
    assert!(
        out.contains("effect `memcache.set` takes 3 arguments, got 2"),
        "{out}"
    );
    assert!(out.contains("block `orphan` is unreachable"), "{out}");
}

// ---- robustness -----------------------------------------------------------

/// A register: usually small, sometimes just past the limit, sometimes huge.
fn any_reg() -> impl Strategy<Value = Reg> {
    prop_oneof![
        8 => (0u32..8).prop_map(Reg),
        1 => (65_530u32..65_540).prop_map(Reg),
        1 => any::<u32>().prop_map(Reg),
    ]
}

/// A block id, often in range of a small workflow, sometimes not.
fn any_block() -> impl Strategy<Value = Block> {
    prop_oneof![4 => (0u32..4).prop_map(Block), 1 => any::<u32>().prop_map(Block)]
}

fn any_inst() -> impl Strategy<Value = Inst> {
    let regs = || proptest::collection::vec(any_reg(), 0..4);
    let name =
        || prop_oneof![Just("Ok"), Just("Err"), Just("w"), Just("main")].prop_map(Symbol::from);
    prop_oneof![
        (any_reg(), 0u32..3).prop_map(|(dst, c)| Inst::Const {
            dst,
            value: ConstId(c)
        }),
        (any_reg(), any_reg()).prop_map(|(dst, src)| Inst::Move { dst, src }),
        (any_reg(), any_reg(), any_reg()).prop_map(|(dst, a, b)| Inst::Add { dst, a, b }),
        (any_reg(), any_reg(), any_reg()).prop_map(|(base, key, src)| Inst::SetIndex {
            base,
            key,
            src
        }),
        (
            any_reg(),
            proptest::collection::vec((name(), any_reg()), 0..3)
        )
            .prop_map(|(dst, fields)| Inst::Record { dst, fields }),
        (any_reg(), "[{}a]{0,6}", regs()).prop_map(|(dst, template, args)| Inst::Format {
            dst,
            template,
            args
        }),
        (any_reg(), proptest::sample::select(Builtin::ALL), regs())
            .prop_map(|(dst, func, args)| Inst::CallBuiltin { dst, func, args }),
        (any_reg(), 0u32..3, regs()).prop_map(|(dst, e, args)| Inst::Perform {
            dst,
            effect: EffectRef(e),
            args,
            policy: Policy::default(),
        }),
        (any_reg(), name(), regs()).prop_map(|(dst, workflow, args)| Inst::Call {
            dst,
            workflow,
            args
        }),
        (any_reg(), any_block()).prop_map(|(dst, target)| Inst::Spawn { dst, target }),
        any_block().prop_map(|target| Inst::Jump { target }),
        (any_reg(), any_block(), any_block()).prop_map(|(cond, then_block, else_block)| {
            Inst::Branch {
                cond,
                then_block,
                else_block,
            }
        }),
        (
            any_reg(),
            proptest::collection::vec((name(), any_block()), 0..3),
            proptest::option::of(any_block())
        )
            .prop_map(|(src, arms, default)| Inst::Match { src, arms, default }),
        any_reg().prop_map(|value| Inst::Ret { value }),
    ]
}

fn any_module() -> impl Strategy<Value = Module> {
    let label = prop_oneof![Just("a"), Just("b"), Just("c")].prop_map(str::to_owned);
    let block = (label, proptest::collection::vec(any_inst(), 0..6))
        .prop_map(|(label, insts)| BlockData { label, insts });
    let workflow = (
        prop_oneof![Just("main"), Just("w")],
        proptest::collection::vec(prop_oneof![Just("x"), Just("y")], 0..3),
        proptest::collection::vec(block, 0..5),
    )
        .prop_map(|(name, params, blocks)| Workflow {
            name: name.to_owned(),
            params: params.into_iter().map(str::to_owned).collect(),
            blocks,
        });
    let effect = (
        prop_oneof![Just(EffectKind::Builtin), Just(EffectKind::Activity)],
        prop_oneof![
            Just("memcache.get"),
            Just("memcache.gett"),
            Just("slack.x"),
            Just("scan"),
            Just("")
        ],
        proptest::collection::vec(Just("p".to_owned()), 0..3),
    )
        .prop_map(|(kind, name, params)| EffectDecl {
            kind,
            name: name.to_owned(),
            params,
        });
    (
        proptest::collection::vec(effect, 0..3),
        proptest::collection::vec(workflow, 0..3),
    )
        .prop_map(|(effects, workflows)| Module {
            effects,
            consts: vec![Value::Null],
            workflows,
            ..Module::default()
        })
}

proptest! {
    #[test]
    fn hostile_modules_never_panic(m in any_module()) {
        let report = verify(&m);
        // The order is stable: verifying twice gives the same report.
        prop_assert_eq!(&report, &verify(&m));
        // Rendering against an empty text and map must not panic either.
        let _ = report.render("x.dasm", "", &TextMap::default());
        for d in &report.diags {
            prop_assert!(!d.to_string().is_empty());
        }
    }
}

#[test]
fn too_many_params_is_a_register_error() {
    let params: Vec<String> = (0..70_000).map(|i| format!("p{i}")).collect();
    let mut w = wf("main", &[], vec![block("entry", vec![ret(0)])]);
    w.params = params;
    let d = only(&module(vec![w]));
    assert_eq!(d.code, REGISTER_TOO_LARGE);
    assert_eq!(d.location, Location::Workflow(WorkflowId(0)));
    assert_eq!(
        d.message,
        "workflow has 70000 parameters, more than the 65536 registers a frame can hold"
    );
}

#[test]
fn dataflow_over_budget_is_an_error_not_an_allocation() {
    // 2100 reachable blocks times 65536 registers is over the 2^27-bit budget.
    let n = 2100;
    let mut blocks: Vec<BlockData> = (0..n - 1)
        .map(|i| block(&format!("b{i}"), vec![jmp(i + 1)]))
        .collect();
    blocks.push(block("last", vec![konst(65_535), ret(65_535)]));
    let d = only(&module(vec![wf("main", &[], blocks)]));
    assert_eq!(d.code, TOO_LARGE);
    assert_eq!(d.location, Location::Workflow(WorkflowId(0)));
    assert_eq!(
        d.message,
        "workflow `main` has too many blocks and registers (2100 reachable blocks, 65536 registers) to check for uses before definitions"
    );
}

#[test]
fn long_chain_of_blocks_does_not_overflow_the_stack() {
    let n = 200_000;
    let mut blocks: Vec<BlockData> = (0..n - 1).map(|i| block("b", vec![jmp(i + 1)])).collect();
    blocks.push(block("last", vec![ret(1)]));
    let report = verify(&module(vec![wf("main", &[], blocks)]));
    let codes: Vec<_> = report.diags.iter().map(|d| d.code).collect();
    // n - 2 duplicate `b` labels, then the use of r1 found at the end of
    // the chain.
    assert_eq!(codes.len(), n as usize - 1);
    assert_eq!(codes.last(), Some(&USE_BEFORE_DEF));
}

/// Whether a location names something that exists in the module.
fn location_exists(m: &Module, loc: Location) -> bool {
    let inst = |a: InstAddr| m.inst(a);
    match loc {
        Location::Module => true,
        Location::Effect(e) => m.effect(e).is_some(),
        Location::Const(c) => m.constant(c).is_some(),
        Location::Workflow(w) => m.workflows.get(w.index()).is_some(),
        Location::Block(w, b) => m
            .workflows
            .get(w.index())
            .and_then(|w| w.block(b))
            .is_some(),
        Location::Inst(a) => inst(a).is_some(),
        Location::Dst(a) => inst(a).and_then(Inst::dst).is_some(),
        Location::Operand(a, n) => inst(a).is_some_and(|i| n < i.info().operands.len()),
    }
}

proptest! {
    #[test]
    fn findings_point_at_things_that_exist(m in any_module()) {
        for d in verify(&m).diags {
            prop_assert!(location_exists(&m, d.location), "{d}");
        }
    }
}
