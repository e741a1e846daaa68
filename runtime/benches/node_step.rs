//! The node's own cost per run, without IO: a 3-effect workflow driven
//! through the pure `NodeState` (prepare, install, then for each effect the
//! append acknowledgement and the result), with every journal entry encoded
//! as the node would store it. `drover bench` measures the whole node with a
//! real disk; this isolates the CPU the loop spends per run and per step.
//!
//! `cargo bench -p drover --bench node_step`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use drover::node::logic::{Action, NodeState, Now};
use drover::node::RunId;
use drover_interpreter::{EffectId, Event, Program};
use drover_ir::builder::ModuleBuilder;
use drover_ir::{EffectKind, Inst, Policy, Value};

/// `w(x)`: `act(act(act(x)))`.
fn node() -> NodeState {
    let mut m = ModuleBuilder::new();
    let e = m.effect(EffectKind::Activity, "act", &["x"]);
    m.workflow("w", &["x"], |w| {
        let (a, b, c) = (w.new_reg(), w.new_reg(), w.new_reg());
        let x = w.param(0);
        for (dst, arg) in [(a, x), (b, a), (c, b)] {
            w.push(Inst::Perform {
                dst,
                effect: e,
                args: vec![arg],
                policy: Policy::default(),
            });
        }
        w.push(Inst::Ret { value: c });
    });
    let module = m.finish();
    let hash = drover_ir::wire::hash_bytes(&drover_ir::wire::encode(&module));
    let mut state = NodeState::new(10, 64);
    state.add_program(hash, Program::new(module).unwrap());
    state.deploy("w", hash);
    state
}

const NOW: Now = Now {
    tick: 100,
    ms: 1000,
};

/// One run from start to its durable end, answering each perform at once.
fn one_run(state: &mut NodeState, run: RunId) -> usize {
    let prepared = state.prepare("w", vec![Value::Int(7)], NOW).unwrap();
    let mut actions = match state.first_entry(&prepared) {
        Some(first) => {
            black_box(first);
            state.install_journaled(run, prepared, None, NOW)
        }
        None => state.install(run, prepared, None, NOW),
    };
    let mut steps = 0;
    loop {
        let mut next = Vec::new();
        let mut finished = false;
        for a in actions {
            match a {
                Action::Append { .. } => next.extend(state.appended(run, Ok(()), NOW)),
                Action::Perform { id, .. } => {
                    let done = Event::EffectDone {
                        id: EffectId(id.0),
                        attempt: 1,
                        result: Ok(Value::Int(id.0 as i64 + 1)),
                    };
                    next.extend(state.deliver(run, done, None, NOW));
                }
                Action::Stepped { .. } => steps += 1,
                Action::Finished { .. } => finished = true,
                _ => {}
            }
        }
        if finished {
            return steps;
        }
        actions = next;
    }
}

fn bench(c: &mut Criterion) {
    let mut state = node();
    let mut run = 0u64;
    assert_eq!(one_run(&mut state, RunId(u64::MAX)), 4);
    let mut g = c.benchmark_group("node_state");
    g.throughput(Throughput::Elements(1));
    g.bench_function("run_of_3_effects", |b| {
        b.iter(|| {
            run += 1;
            black_box(one_run(&mut state, RunId(run)))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
