//! The text assembly: printed snapshots, round trips, text maps, and the
//! errors a user sees.

use std::collections::BTreeSet;

use drover_ir::diagnostics::render;
use drover_ir::text::{assemble, parse, parse_with_map, print, print_with_map, ParseErrors};
use drover_ir::{
    Block, BlockData, Builtin, EffectDecl, EffectKind, EffectRef, Inst, InstAddr, Location,
    LogLevel, Module, Policy, Reg, RetryPolicy, Span, Symbol, Value, Workflow, WorkflowId, OPCODES,
};

const EMAIL: &str = include_str!("data/email.dasm");

fn parse_ok(src: &str) -> Module {
    match parse(src) {
        Ok(m) => m,
        Err(e) => panic!("{}", render(&e)),
    }
}

fn parse_err(src: &str) -> ParseErrors {
    match parse(src) {
        Ok(m) => panic!("parsed, but should not have:\n{}", print(&m)),
        Err(e) => e,
    }
}

fn r(n: u32) -> Reg {
    Reg(n)
}

fn sym(s: &str) -> Symbol {
    Symbol::from(s)
}

fn block(label: &str, insts: Vec<Inst>) -> BlockData {
    BlockData {
        label: label.to_owned(),
        insts,
    }
}

fn workflow(name: &str, params: &[&str], blocks: Vec<BlockData>) -> Workflow {
    Workflow {
        name: name.to_owned(),
        params: params.iter().map(|p| (*p).to_owned()).collect(),
        blocks,
    }
}

/// A module with every opcode, built directly (not parsed), in the order the
/// parser would intern its constants and files.
fn every_opcode() -> Module {
    let mut m = Module {
        effects: vec![
            EffectDecl {
                kind: EffectKind::Builtin,
                name: "memcache.get".into(),
                params: vec!["key".into()],
            },
            EffectDecl {
                kind: EffectKind::Activity,
                name: "scan".into(),
                params: vec!["attachment".into()],
            },
        ],
        ..Module::default()
    };
    let c_hello = m.intern_const(Value::from("hello"));
    let c_list = m.intern_const(Value::List(vec![Value::Int(1), Value::Float(2.5)]));
    let arith = workflow(
        "arith",
        &["a", "b"],
        vec![block(
            "entry",
            vec![
                Inst::Const {
                    dst: r(2),
                    value: c_hello,
                },
                Inst::Const {
                    dst: r(3),
                    value: c_list,
                },
                Inst::Move {
                    dst: r(4),
                    src: r(0),
                },
                Inst::Neg { dst: r(5), a: r(0) },
                Inst::Not { dst: r(6), a: r(1) },
                Inst::Add {
                    dst: r(7),
                    a: r(0),
                    b: r(1),
                },
                Inst::Sub {
                    dst: r(7),
                    a: r(0),
                    b: r(1),
                },
                Inst::Mul {
                    dst: r(7),
                    a: r(0),
                    b: r(1),
                },
                Inst::Div {
                    dst: r(7),
                    a: r(0),
                    b: r(1),
                },
                Inst::Rem {
                    dst: r(7),
                    a: r(0),
                    b: r(1),
                },
                Inst::Eq {
                    dst: r(8),
                    a: r(0),
                    b: r(1),
                },
                Inst::Ne {
                    dst: r(8),
                    a: r(0),
                    b: r(1),
                },
                Inst::Lt {
                    dst: r(8),
                    a: r(0),
                    b: r(1),
                },
                Inst::Le {
                    dst: r(8),
                    a: r(0),
                    b: r(1),
                },
                Inst::Gt {
                    dst: r(8),
                    a: r(0),
                    b: r(1),
                },
                Inst::Ge {
                    dst: r(8),
                    a: r(0),
                    b: r(1),
                },
                Inst::And {
                    dst: r(8),
                    a: r(8),
                    b: r(6),
                },
                Inst::Or {
                    dst: r(8),
                    a: r(8),
                    b: r(6),
                },
                Inst::Ret { value: r(7) },
            ],
        )],
    );
    let data = workflow(
        "data",
        &["input"],
        vec![block(
            "entry",
            vec![
                Inst::Field {
                    dst: r(1),
                    base: r(0),
                    name: sym("customer"),
                },
                Inst::SetField {
                    base: r(0),
                    name: sym("odd field"),
                    src: r(1),
                },
                Inst::Index {
                    dst: r(2),
                    base: r(0),
                    key: r(1),
                },
                Inst::SetIndex {
                    base: r(0),
                    key: r(1),
                    src: r(2),
                },
                Inst::Record {
                    dst: r(3),
                    fields: vec![(sym("a"), r(1)), (sym("b c"), r(2))],
                },
                Inst::Record {
                    dst: r(4),
                    fields: vec![],
                },
                Inst::List {
                    dst: r(5),
                    items: vec![r(1), r(2), r(3)],
                },
                Inst::List {
                    dst: r(6),
                    items: vec![],
                },
                Inst::MakeVariant {
                    dst: r(7),
                    tag: sym("Some"),
                    payload: Some(r(1)),
                },
                Inst::MakeVariant {
                    dst: r(8),
                    tag: sym("None"),
                    payload: None,
                },
                Inst::Payload {
                    dst: r(9),
                    src: r(7),
                },
                Inst::Unwrap {
                    dst: r(10),
                    src: r(7),
                },
                Inst::Format {
                    dst: r(11),
                    template: "{} of {}\n\"quoted\"".into(),
                    args: vec![r(1), r(2)],
                },
                Inst::CallBuiltin {
                    dst: r(12),
                    func: Builtin::Len,
                    args: vec![r(5)],
                },
                Inst::CallBuiltin {
                    dst: r(13),
                    func: Builtin::Insert,
                    args: vec![r(3), r(1), r(2)],
                },
                Inst::CallPure {
                    dst: r(14),
                    func: sym("score"),
                    args: vec![r(3)],
                },
                Inst::CallPure {
                    dst: r(15),
                    func: sym("my crate::helper"),
                    args: vec![],
                },
                Inst::Log {
                    level: LogLevel::Debug,
                    message: "built".into(),
                    fields: None,
                },
                Inst::Log {
                    level: LogLevel::Error,
                    message: "built {}".into(),
                    fields: Some(r(3)),
                },
                Inst::Ret { value: r(3) },
            ],
        )],
    );
    let retry = Policy {
        retry: Some(RetryPolicy {
            max_attempts: 3,
            initial_backoff_ms: 100,
            max_backoff_ms: 10_000,
            multiplier: 2,
        }),
        timeout_ms: Some(5_000),
    };
    let control = workflow(
        "control",
        &["order", "user"],
        vec![
            block(
                "entry",
                vec![
                    Inst::Perform {
                        dst: r(2),
                        effect: EffectRef(0),
                        args: vec![r(0)],
                        policy: retry,
                    },
                    Inst::Perform {
                        dst: r(3),
                        effect: EffectRef(1),
                        args: vec![r(0), r(1)],
                        policy: Policy::default(),
                    },
                    Inst::Match {
                        src: r(2),
                        arms: vec![(sym("Ok"), Block(1)), (sym("Err"), Block(4))],
                        default: Some(Block(4)),
                    },
                ],
            ),
            block(
                "hit",
                vec![
                    Inst::Call {
                        dst: r(4),
                        workflow: sym("child_flow"),
                        args: vec![r(2)],
                    },
                    Inst::Spawn {
                        dst: r(5),
                        target: Block(2),
                    },
                    Inst::Join {
                        dst: r(6),
                        fiber: r(5),
                    },
                    Inst::List {
                        dst: r(7),
                        items: vec![r(5)],
                    },
                    Inst::Race {
                        dst: r(8),
                        fibers: r(7),
                    },
                    Inst::Sleep { millis: r(6) },
                    Inst::AwaitSignal {
                        dst: r(9),
                        name: sym("approved"),
                    },
                    Inst::Branch {
                        cond: r(9),
                        then_block: Block(3),
                        else_block: Block(4),
                    },
                ],
            ),
            block("other", vec![Inst::Ret { value: r(1) }]),
            block(
                "done",
                vec![
                    Inst::Match {
                        src: r(0),
                        arms: vec![],
                        default: None,
                    },
                    Inst::Jump { target: Block(4) },
                ],
            ),
            block("miss", vec![Inst::Fail { error: r(2) }]),
        ],
    );
    m.workflows = vec![arith, data, control];
    let file = m.source_map.intern_file("src/orders.rs");
    for (index, line) in [(0, 10), (1, 11)] {
        m.source_map.insert(
            InstAddr::new(WorkflowId(2), Block(0), index),
            Span { file, line, col: 9 },
        );
    }
    m
}

/// A module of odd corners: quoted names, every literal form, policies, an
/// empty workflow, and no effects.
fn corners() -> Module {
    let mut m = Module::default();
    let literals = [
        Value::Null,
        Value::Bool(true),
        Value::Bool(false),
        Value::Int(i64::MIN),
        Value::Int(i64::MAX),
        Value::Float(-0.0),
        Value::Float(1e300),
        Value::Float(5e-324),
        Value::Float(0.1),
        Value::Float(f64::NAN),
        Value::Float(f64::INFINITY),
        Value::Float(f64::NEG_INFINITY),
        Value::from("tab\there \"q\" \\ \u{7} é 🚀"),
        Value::Bytes(vec![0, b'"', b'\\', b'a', 0x7f, 0xff]),
        Value::List(vec![]),
        Value::Map(Default::default()),
        Value::Map(
            [
                (Value::Int(2), Value::Null),
                (Value::from("k"), Value::List(vec![Value::Bool(false)])),
            ]
            .into_iter()
            .collect(),
        ),
        Value::variant("None", Value::Null),
        Value::variant("odd tag", Value::err(Value::from("boom"))),
    ];
    let mut insts = Vec::new();
    for (i, v) in literals.into_iter().enumerate() {
        let value = m.intern_const(v);
        insts.push(Inst::Const {
            dst: Reg(i as u32 + 1),
            value,
        });
    }
    let policies = [
        Policy {
            retry: Some(RetryPolicy {
                max_attempts: 1,
                initial_backoff_ms: 0,
                max_backoff_ms: 3_600_000,
                multiplier: 1,
            }),
            timeout_ms: None,
        },
        Policy {
            retry: None,
            timeout_ms: Some(90_000),
        },
        Policy {
            retry: None,
            timeout_ms: Some(1_500),
        },
    ];
    m.effects.push(EffectDecl {
        kind: EffectKind::Activity,
        name: "billing charge!".into(),
        params: vec!["amount".into(), "odd param".into()],
    });
    m.effects.push(EffectDecl {
        kind: EffectKind::Builtin,
        name: "sys.now".into(),
        params: vec![],
    });
    for (i, policy) in policies.into_iter().enumerate() {
        insts.push(Inst::Perform {
            dst: Reg(100 + i as u32),
            effect: EffectRef(i as u32 % 2),
            args: if i % 2 == 0 { vec![r(1), r(2)] } else { vec![] },
            policy,
        });
    }
    insts.push(Inst::Jump { target: Block(1) });
    m.workflows = vec![
        workflow(
            "quoted \"name\"",
            &["first param", "r1"],
            vec![
                block("entry", insts),
                block("ret", vec![Inst::Ret { value: r(0) }]),
            ],
        ),
        workflow("empty", &[], vec![]),
    ];
    m
}

#[test]
fn snapshots_cover_every_opcode() {
    let mut seen = BTreeSet::new();
    for m in [every_opcode(), corners()] {
        for inst in m
            .workflows
            .iter()
            .flat_map(|w| w.blocks.iter().flat_map(|b| &b.insts))
        {
            seen.insert(inst.opcode());
        }
    }
    let missing: Vec<&str> = OPCODES
        .iter()
        .filter(|info| !seen.contains(&info.opcode))
        .map(|info| info.mnemonic)
        .collect();
    assert!(missing.is_empty(), "no snapshot covers {missing:?}");
}

#[test]
fn prints_every_opcode() {
    insta::assert_snapshot!("every_opcode", print(&every_opcode()));
}

#[test]
fn prints_corners() {
    insta::assert_snapshot!("corners", print(&corners()));
}

#[test]
fn built_modules_read_back_equal() {
    for m in [every_opcode(), corners()] {
        let text = print(&m);
        let back = parse_ok(&text);
        // NaN has no canonical bits in text; compare everything else exactly.
        assert_eq!(print(&back), text);
        assert_eq!(back.effects, m.effects);
        assert_eq!(back.workflows, m.workflows);
        assert_eq!(back.source_map, m.source_map);
        assert_eq!(back.consts.len(), m.consts.len());
        for (a, b) in back.consts.iter().zip(&m.consts) {
            assert_eq!(a.to_string(), b.to_string());
        }
    }
}

#[test]
fn canonical_text_prints_as_itself() {
    let m = parse_ok(EMAIL);
    let printed = print(&m);
    // The example file is canonical apart from its leading comment.
    let canonical = EMAIL
        .lines()
        .filter(|l| !l.starts_with(';'))
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    assert_eq!(printed, canonical);
}

const MESSY: &str = r#"
   ; a leading comment, then declarations out of the usual spacing
activity   "billing.charge!" ( amount ,"odd param" )   ; trailing comment
effect memcache.set(key, value, ttl_s)

workflow   flow ( a ) {   ; header comment

   "first block"   :
	r1 = const   { "b" : [ 1 ,2 ] , 1 : #Tag( b"\x41\x00" ) }
    r2 = perform memcache.set ( r0 , r1 , r1 )
         retry( 5 , 1000ms , 120000ms , x3 )   timeout( 3600s )
    r3 = perform sys.now()        ; declared implicitly from the catalog
    r4 = perform "billing.charge!"(r0, r1) @ "a b.rs" : 3 : 4
    r5 = record {
        x: r1,
        "y z": r2
    }
    match r2 , [ Ok=>"first block" , Err => end ] , default end



end:
    log  trace , "bye"
    ret r5
}
workflow second() {
only:
    ret r0
}
"#;

#[test]
fn messy_text_reads_and_prints_canonically() {
    let m = parse_ok(MESSY);
    let printed = print(&m);
    assert_eq!(print(&parse_ok(&printed)), printed);
    insta::assert_snapshot!("messy", printed);
}

#[test]
fn hand_written_texts_round_trip() {
    for src in [EMAIL, MESSY] {
        let once = print(&parse_ok(src));
        let twice = print(&parse_ok(&once));
        assert_eq!(once, twice);
    }
}

#[test]
fn implicit_builtin_effects_take_catalog_params() {
    let m = parse_ok(
        "workflow w() {\nentry:\n    r0 = perform memcache.set(r1, r2, r3)\n    ret r0\n}\n",
    );
    assert_eq!(
        m.effects,
        vec![EffectDecl {
            kind: EffectKind::Builtin,
            name: "memcache.set".into(),
            params: vec!["key".into(), "value".into(), "ttl_s".into()],
        }]
    );
    assert!(print(&m).starts_with("effect memcache.set(key, value, ttl_s)\n\nworkflow w() {\n"));
}

#[test]
fn duplicate_labels_resolve_to_the_first() {
    let m = parse_ok("workflow w() {\na:\n    jmp a\na:\n    ret r0\n}\n");
    let w = &m.workflows[0];
    assert_eq!(w.blocks.len(), 2);
    assert_eq!(w.blocks[0].insts[0], Inst::Jump { target: Block(0) });
}

#[test]
fn constants_are_interned_once() {
    let m = parse_ok(
        "workflow w() {\nentry:\n    r0 = const [1, 2]\n    r1 = const [1, 2]\n    r2 = const 1\n    ret r0\n}\n",
    );
    assert_eq!(
        m.consts,
        vec![
            Value::List(vec![Value::Int(1), Value::Int(2)]),
            Value::Int(1)
        ]
    );
}

#[test]
fn literals_parse_exactly() {
    let cases: &[(&str, Value)] = &[
        ("-9223372036854775808", Value::Int(i64::MIN)),
        ("1e3", Value::Float(1000.0)),
        ("2.5E-3", Value::Float(0.0025)),
        ("-0.0", Value::Float(-0.0)),
        ("-inf", Value::Float(f64::NEG_INFINITY)),
        (r#""\u{1F680}\x41\'""#, Value::from("🚀A'")),
        (r#"b"\xff\n""#, Value::Bytes(vec![0xff, b'\n'])),
        ("#\"a b\"", Value::variant("a b", Value::Null)),
        ("#Some(null)", Value::variant("Some", Value::Null)),
        (
            "{[1]: {}}",
            Value::Map(
                [(
                    Value::List(vec![Value::Int(1)]),
                    Value::Map(Default::default()),
                )]
                .into_iter()
                .collect(),
            ),
        ),
    ];
    for (text, want) in cases {
        let m = parse_ok(&format!(
            "workflow w() {{\nentry:\n    r0 = const {text}\n    ret r0\n}}\n"
        ));
        let got = &m.consts[0];
        assert_eq!(got, want, "{text}");
        if let (Value::Float(a), Value::Float(b)) = (got, want) {
            assert_eq!(a.to_bits(), b.to_bits(), "{text}");
        }
    }
}

#[test]
fn durations_print_in_the_largest_exact_unit() {
    let src = "workflow w() {\nentry:\n    r0 = perform sys.now() retry(2, 0ms, 7200000ms, x1) timeout(61000ms)\n    ret r0\n}\n";
    let printed = print(&parse_ok(src));
    assert!(
        printed.contains("r0 = perform sys.now() retry(2, 0ms, 2h, x1) timeout(61s)\n"),
        "{printed}"
    );
}

// ---------------------------------------------------------------------------
// Text maps

fn slice(text: &str, range: std::ops::Range<usize>) -> &str {
    &text[range]
}

#[test]
fn printer_and_parser_agree_on_the_text_map() {
    for m in [every_opcode(), corners(), parse_ok(EMAIL), parse_ok(MESSY)] {
        let (text, printed_map) = print_with_map(&m);
        let (_, parsed_map) = parse_with_map("m.dasm", &text).expect("printed text parses");
        assert_eq!(parsed_map, printed_map);
    }
}

#[test]
fn text_map_points_at_each_part() {
    let (m, map) = parse_with_map("email.dasm", EMAIL).expect("parses");
    let w = WorkflowId(0);
    let at = |b, i| InstAddr::new(w, Block(b), i);
    let locate = |loc| slice(EMAIL, map.locate(loc).expect("located"));
    assert_eq!(
        locate(Location::Effect(EffectRef(1))),
        "activity scan(attachment)"
    );
    assert_eq!(locate(Location::Workflow(w)), "workflow scan_email(input)");
    assert_eq!(locate(Location::Block(w, Block(1))), "hit:");
    assert_eq!(
        locate(Location::Inst(at(0, 1))),
        "r2 = perform memcache.get(r1) retry(3, 100ms, 10s, x2) timeout(5s)"
    );
    assert_eq!(locate(Location::Dst(at(0, 1))), "r2");
    assert_eq!(locate(Location::Operand(at(0, 1), 0)), "memcache.get");
    assert_eq!(locate(Location::Operand(at(0, 1), 1)), "(r1)");
    assert_eq!(
        locate(Location::Operand(at(0, 1), 2)),
        "retry(3, 100ms, 10s, x2) timeout(5s)"
    );
    assert_eq!(
        locate(Location::Operand(at(0, 11), 1)),
        "[Ok => hit, Err => miss]"
    );
    assert_eq!(locate(Location::Operand(at(0, 11), 2)), "default miss");
    // An absent operand has an empty range right after the one before it.
    let log = map.locate(Location::Operand(at(0, 9), 2)).expect("located");
    assert!(log.is_empty());
    assert_eq!(
        &EMAIL[..log.start].lines().last(),
        &Some("    log info, \"looked up\"")
    );
    let variant = map.locate(Location::Operand(at(0, 8), 1)).expect("located");
    assert!(variant.is_empty());
    assert!(EMAIL[..variant.start].ends_with("r9 = variant None"));
    // A default policy is empty too.
    assert_eq!(m.workflows[0].blocks[0].insts.len(), 12);
}

#[test]
fn assemble_records_dasm_positions_unless_annotated() {
    let (m, _) = assemble("email.dasm", EMAIL).expect("parses");
    let sm = &m.source_map;
    let first = InstAddr::new(WorkflowId(0), Block(0), 0);
    let annotated = InstAddr::new(WorkflowId(0), Block(0), 1);
    let in_hit = InstAddr::new(WorkflowId(0), Block(1), 3);
    assert_eq!(sm.describe(first).as_deref(), Some("email.dasm:7:5"));
    assert_eq!(
        sm.describe(annotated).as_deref(),
        Some("examples/email.rs:12:5")
    );
    assert_eq!(sm.describe(in_hit).as_deref(), Some("email.dasm:23:5"));
    let plain = parse_ok(EMAIL);
    assert_eq!(plain.source_map.spans.len(), 1);
}

// ---------------------------------------------------------------------------
// Errors

fn only_error(src: &str) -> (ParseErrors, drover_ir::text::ParseError) {
    let errs = parse_err(src);
    assert_eq!(errs.errors().len(), 1, "{}", render(&errs));
    let e = errs.errors()[0].clone();
    (errs, e)
}

fn in_workflow(body: &str) -> String {
    format!("workflow flow(a) {{\nentry:\n{body}}}\n")
}

#[test]
fn unknown_label_shows_line_col_caret_and_hint() {
    let src = in_workflow("    br r0, finsh, entry\nfinish:\n    ret r0\n");
    let (errs, e) = only_error(&src);
    assert_eq!(e.message, "no block labelled `finsh` in workflow `flow`");
    assert_eq!((e.line, e.col), (3, 12));
    assert_eq!(e.help.as_deref(), Some("did you mean `finish`?"));
    assert_eq!(
        e.to_string(),
        "3:12: no block labelled `finsh` in workflow `flow`"
    );
    insta::assert_snapshot!("unknown_label", render(&errs));
}

#[test]
fn unknown_label_lists_labels_when_none_is_close() {
    let (errs, e) = only_error(&in_workflow(
        "    jmp somewhere_else\nfinish:\n    ret r0\n",
    ));
    assert_eq!(
        e.help.as_deref(),
        Some("the labels in `flow` are `entry`, `finish`")
    );
    insta::assert_snapshot!("unknown_label_list", render(&errs));
}

#[test]
fn unknown_effect_suggests_a_builtin_or_a_declaration() {
    let (errs, e) = only_error(&in_workflow(
        "    r1 = perform memcache.gte(r0)\n    ret r1\n",
    ));
    assert_eq!(e.message, "unknown effect `memcache.gte`");
    assert_eq!(e.help.as_deref(), Some("did you mean `memcache.get`?"));
    insta::assert_snapshot!("unknown_effect_close", render(&errs));
    let (errs, e) = only_error(&in_workflow(
        "    r1 = perform scan_attachment(r0)\n    ret r1\n",
    ));
    assert_eq!(
        e.help.as_deref(),
        Some("declare it at the top of the file: `activity scan_attachment(...)`")
    );
    insta::assert_snapshot!("unknown_effect_declare", render(&errs));
}

#[test]
fn unknown_mnemonic_suggests_the_closest() {
    let (errs, e) = only_error(&in_workflow("    r1 = ad r0, r0\n    ret r1\n"));
    assert_eq!(e.message, "unknown instruction `ad`");
    assert_eq!((e.line, e.col), (3, 10));
    assert_eq!(e.help.as_deref(), Some("did you mean `add`?"));
    insta::assert_snapshot!("unknown_mnemonic", render(&errs));
}

#[test]
fn unknown_builtin_suggests_the_closest() {
    let (errs, e) = only_error(&in_workflow("    r1 = builtin lenn(r0)\n    ret r1\n"));
    assert_eq!(e.message, "unknown builtin `lenn`");
    assert_eq!(e.help.as_deref(), Some("did you mean `len`?"));
    insta::assert_snapshot!("unknown_builtin", render(&errs));
}

#[test]
fn wrong_operand_kind_says_what_was_expected() {
    let (errs, e) = only_error(&in_workflow("    r1 = add r0, entry\n    ret r1\n"));
    assert_eq!(e.message, "expected a register, found `entry`");
    assert_eq!((e.line, e.col), (3, 18));
    assert_eq!(e.help.as_deref(), Some("the syntax is `dst = add A, B`"));
    insta::assert_snapshot!("wrong_operand_kind", render(&errs));
}

#[test]
fn missing_operand_is_found_at_end_of_line() {
    let (errs, e) = only_error(&in_workflow("    r1 = add r0\n    ret r1\n"));
    assert_eq!(e.message, "expected `,`, found end of line");
    assert_eq!((e.line, e.col), (3, 16));
    insta::assert_snapshot!("missing_operand", render(&errs));
}

#[test]
fn int_out_of_range_is_an_error() {
    let (errs, e) = only_error(&in_workflow(
        "    r1 = const 9223372036854775808\n    ret r1\n",
    ));
    assert_eq!(e.message, "integer literal out of range");
    assert_eq!(e.span.len(), "9223372036854775808".len());
    insta::assert_snapshot!("int_out_of_range", render(&errs));
}

#[test]
fn literal_errors_point_inside_the_literal() {
    let cases = [
        (r#"    r1 = const "a\qb""#, "unknown escape `\\q`", 3, 18),
        (r#"    r1 = const "open"#, "unterminated string", 3, 16),
        (
            r#"    r1 = const "\u{110000}""#,
            "invalid unicode escape",
            3,
            17,
        ),
        (
            r#"    r1 = const b"é""#,
            "non-ASCII character in a byte string",
            3,
            18,
        ),
        (
            "    r1 = const [1, 2",
            "expected `,` or `]`, found end of line",
            3,
            21,
        ),
        (
            "    r1 = const {1: 2, 1: 3}",
            "duplicate key `1` in a map literal",
            3,
            23,
        ),
        ("    r1 = const 12abc", "malformed number", 3, 16),
        (
            "    r1 = const nul",
            "expected a literal value, found `nul`",
            3,
            16,
        ),
    ];
    for (line, message, l, c) in cases {
        let (_, e) = only_error(&in_workflow(&format!("{line}\n    ret r1\n")));
        assert_eq!(
            (e.message.as_str(), e.line, e.col),
            (message, l, c),
            "{line}"
        );
    }
}

#[test]
fn deep_literals_are_an_error_not_a_crash() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let (_, e) = only_error(&in_workflow(&format!(
        "    r1 = const {deep}\n    ret r1\n"
    )));
    assert_eq!(e.message, "literal nested too deeply");
    let ok = format!("{}{}", "[".repeat(60), "]".repeat(60));
    parse_ok(&in_workflow(&format!("    r1 = const {ok}\n    ret r1\n")));
}

#[test]
fn structural_errors() {
    let cases = [
        ("    jmp entry r0\n", "expected end of line, found `r0`"),
        ("    r1 = jmp entry\n", "`jmp` writes no register"),
        ("    add r0, r0\n", "`add` needs a destination register"),
        ("    log loud, \"x\"\n", "unknown log level `loud`"),
        (
            "    r1 = perform sys.now() retry(3, 100, 1s, x2)\n",
            "expected a duration with a unit",
        ),
        (
            "    r1 = perform sys.now() timeout(5s\n",
            "expected `)`, found end of line",
        ),
        (
            "    r1 = const 1 @ \"f.rs\":x:1\n",
            "expected a line number, found `x`",
        ),
        ("    r99999999999 = const 1\n", "register number too large"),
    ];
    for (body, message) in cases {
        let src = format!("workflow w() {{\nentry:\n{body}    ret r0\n}}\n");
        let (errs, e) = only_error(&src);
        assert_eq!(e.message, message, "{}", render(&errs));
        assert_eq!(e.line, 3, "{body}");
    }
    let (_, e) = only_error("workflow w() {\n    ret r0\n}\n");
    assert_eq!(e.message, "instruction before the first block label");
    let (_, e) = only_error("workflow w() {\nentry:\n    ret r0\n");
    assert_eq!(
        (e.message.as_str(), e.line, e.col),
        ("expected `}` to close workflow `w`", 1, 1)
    );
    let (_, e) = only_error("effect a.b(x) junk\n");
    assert_eq!(e.message, "expected end of line, found `junk`");
    let (_, e) = only_error("flow w() {}\n");
    assert_eq!(
        e.message,
        "expected `effect`, `activity` or `workflow`, found `flow`"
    );
}

#[test]
fn several_errors_are_reported_together() {
    let src = "\
effect memcache.get(key)
bogus line
workflow w(a) {
entry:
    r1 = ad r0, r0
    r2 = perform nothing.here(r0)
    r3 = add r1
    jmp nowhere
    ret r2
}
workflow v() {
entry:
    r1 = builtin nope(r0)
    ret r1
}
";
    let errs = parse_err(src);
    let got: Vec<(u32, &str)> = errs
        .errors()
        .iter()
        .map(|e| (e.line, e.message.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                2,
                "expected `effect`, `activity` or `workflow`, found `bogus`"
            ),
            (5, "unknown instruction `ad`"),
            (6, "unknown effect `nothing.here`"),
            (7, "expected `,`, found end of line"),
            (8, "no block labelled `nowhere` in workflow `w`"),
            (13, "unknown builtin `nope`"),
        ]
    );
    assert_eq!(errs.to_string(), "could not parse `<input>`: 6 errors");
    insta::assert_snapshot!("several_errors", render(&errs));
}

#[test]
fn parse_value_reads_one_literal_and_points_at_mistakes() {
    use drover_ir::text::parse_value;
    use drover_ir::Value;
    let v = parse_value("input", " #Ok([1, \"a\", {\"k\": null}]) ").expect("a literal");
    assert_eq!(v.to_string(), "#Ok([1, \"a\", {\"k\": null}])");
    assert_eq!(
        parse_value("input", "{\"a\": 1.5}").expect("JSON-shaped"),
        { Value::record([("a", Value::Float(1.5))]) }
    );
    let err = parse_value("input", "[1, 2] 3").expect_err("trailing text");
    assert_eq!(
        err.errors()[0].to_string(),
        "1:8: expected the end of the value, found `3`"
    );
    let err = parse_value("input", "#").expect_err("no tag");
    assert_eq!(err.errors()[0].col, 2);
}
