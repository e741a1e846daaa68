//! Encode and decode throughput of the `.dbc` wire format, in bytes per
//! second, on a realistic module and a small one.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use drover_ir::value::Value;
use drover_ir::wire::{decode, encode};
use drover_ir::{
    Block, BlockData, EffectDecl, EffectKind, Inst, InstAddr, Module, Policy, Reg, RetryPolicy,
    Span, Symbol, Workflow, WorkflowId,
};

/// A module shaped like compiled business workflows: `workflows` workflows
/// of five blocks of ten instructions (constants, arithmetic, records,
/// fields, effects with retry policies, formatting, branches), with a
/// constant pool and a source map. Deterministic, so runs compare.
fn realistic(workflows: u32) -> Module {
    let mut m = Module::default();
    for (kind, name, params) in [
        (EffectKind::Builtin, "memcache.get", &["key"][..]),
        (
            EffectKind::Builtin,
            "http.request",
            &["method", "url", "headers", "body"][..],
        ),
        (
            EffectKind::Builtin,
            "slack.post",
            &["channel", "text", "blocks"][..],
        ),
        (EffectKind::Activity, "scan_attachment", &["attachment"][..]),
    ] {
        m.effects.push(EffectDecl {
            kind,
            name: name.into(),
            params: params.iter().map(|p| (*p).to_owned()).collect(),
        });
    }
    let file = m.source_map.intern_file("src/workflows.rs");
    let retry = Policy {
        retry: Some(RetryPolicy {
            max_attempts: 5,
            initial_backoff_ms: 100,
            max_backoff_ms: 30_000,
            multiplier: 2,
        }),
        timeout_ms: Some(10_000),
    };
    for w in 0..workflows {
        let key = m.intern_const(Value::from(format!("customer:{w}:profile")));
        let limit = m.intern_const(Value::Int(i64::from(w) * 1000));
        let config = m.intern_const(Value::record([
            ("channel", Value::from("#alerts")),
            ("threshold", Value::Float(0.75)),
            (
                "tags",
                Value::List(vec![Value::from("prod"), Value::Int(i64::from(w))]),
            ),
        ]));
        let mut blocks = Vec::new();
        for b in 0..5u32 {
            let next = Block((b + 1).min(4));
            let mut insts = vec![
                Inst::Const {
                    dst: Reg(1),
                    value: key,
                },
                Inst::Const {
                    dst: Reg(2),
                    value: limit,
                },
                Inst::Const {
                    dst: Reg(3),
                    value: config,
                },
                Inst::Perform {
                    dst: Reg(4),
                    effect: drover_ir::EffectRef(b % 4),
                    args: vec![Reg(1); m.effects[(b % 4) as usize].params.len()],
                    policy: if b % 2 == 0 { retry } else { Policy::default() },
                },
                Inst::Unwrap {
                    dst: Reg(5),
                    src: Reg(4),
                },
                Inst::Field {
                    dst: Reg(6),
                    base: Reg(5),
                    name: Symbol::from("size"),
                },
                Inst::Add {
                    dst: Reg(7),
                    a: Reg(6),
                    b: Reg(2),
                },
                Inst::Record {
                    dst: Reg(8),
                    fields: vec![
                        (Symbol::from("size"), Reg(7)),
                        (Symbol::from("input"), Reg(0)),
                    ],
                },
                Inst::Format {
                    dst: Reg(9),
                    template: "scanned {} bytes for {}".into(),
                    args: vec![Reg(7), Reg(0)],
                },
            ];
            insts.push(if b == 4 {
                Inst::Ret { value: Reg(8) }
            } else {
                Inst::Branch {
                    cond: Reg(7),
                    then_block: next,
                    else_block: Block(4),
                }
            });
            for i in 0..insts.len() as u32 {
                m.source_map.insert(
                    InstAddr::new(WorkflowId(w), Block(b), i),
                    Span {
                        file,
                        line: 10 + w * 60 + b * 11 + i,
                        col: 9,
                    },
                );
            }
            blocks.push(BlockData {
                label: format!("bb{b}"),
                insts,
            });
        }
        m.workflows.push(Workflow {
            name: format!("workflow_{w}"),
            params: vec!["p0".into()],
            blocks,
        });
    }
    m
}

fn wire(c: &mut Criterion) {
    for (name, module) in [
        ("realistic_200x50", realistic(200)),
        ("small_1x50", realistic(1)),
    ] {
        let bytes = encode(&module);
        eprintln!("{name}: {} bytes encoded", bytes.len());
        assert_eq!(
            decode(&bytes).as_ref(),
            Ok(&module),
            "the benchmark module must round-trip"
        );
        let mut group = c.benchmark_group(format!("wire/{name}"));
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function("encode", |b| b.iter(|| encode(black_box(&module))));
        group.bench_function("decode", |b| b.iter(|| decode(black_box(&bytes))));
        group.finish();
    }
}

criterion_group!(benches, wire);
criterion_main!(benches);
