//! Interpreter throughput on a pure arithmetic loop, and the same loop in
//! CPython for comparison.
//!
//! ```text
//! i = 0; s = 0; while i < N { s = s + (i * i) % 7; i = i + 1 }
//! ```

use std::hint::black_box;
use std::process::Command as Process;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use drover_interpreter::{step, Command, Config, Event, Program, RunState};
use drover_ir::builder::ModuleBuilder;
use drover_ir::{Inst, Value};

const N: i64 = 1_000_000;
/// Instructions the loop executes: 5 in the entry block, 7 per iteration
/// (`lt`, `br`, `mul`, `rem`, `add`, `add`, `jmp`), 2 for the last test
/// and 1 for `ret`.
const INSTRUCTIONS: u64 = 5 + 7 * N as u64 + 2 + 1;

fn program() -> Program {
    let mut m = ModuleBuilder::new();
    m.workflow("sum_loop", &["n"], |w| {
        let n = w.param(0);
        let i = w.konst(Value::Int(0));
        let s = w.konst(Value::Int(0));
        let seven = w.konst(Value::Int(7));
        let one = w.konst(Value::Int(1));
        let (c, t, t2) = (w.new_reg(), w.new_reg(), w.new_reg());
        let head = w.new_block("head");
        let body = w.new_block("body");
        let exit = w.new_block("exit");
        w.push(Inst::Jump { target: head });
        w.switch_to(head);
        w.push(Inst::Lt { dst: c, a: i, b: n });
        w.push(Inst::Branch {
            cond: c,
            then_block: body,
            else_block: exit,
        });
        w.switch_to(body);
        w.push(Inst::Mul { dst: t, a: i, b: i });
        w.push(Inst::Rem {
            dst: t2,
            a: t,
            b: seven,
        });
        w.push(Inst::Add {
            dst: s,
            a: s,
            b: t2,
        });
        w.push(Inst::Add {
            dst: i,
            a: i,
            b: one,
        });
        w.push(Inst::Jump { target: head });
        w.switch_to(exit);
        w.push(Inst::Ret { value: s });
    });
    Program::new(m.finish()).expect("the loop program loads")
}

fn expected() -> i64 {
    (0..N).map(|i| (i * i) % 7).sum()
}

fn run_once(program: &Program) -> Value {
    let mut state = RunState::new(program, "sum_loop", Config::default()).expect("state");
    let cmds = step(
        program,
        &mut state,
        0,
        Event::Start {
            args: vec![Value::Int(N)],
        },
    )
    .expect("step");
    match cmds.as_slice() {
        [Command::Complete { value }] => value.clone(),
        other => panic!("the loop did not complete: {other:?}"),
    }
}

/// Best of several runs, in seconds.
fn best_drover(program: &Program) -> f64 {
    (0..5)
        .map(|_| {
            let t = Instant::now();
            black_box(run_once(program));
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

const PYTHON: &str = r#"
import time
def f(n):
    i = 0
    s = 0
    while i < n:
        s = s + (i * i) % 7
        i = i + 1
    return s
best = float("inf")
for _ in range(3):
    t = time.perf_counter()
    f(1000000)
    best = min(best, time.perf_counter() - t)
print(best)
"#;

fn best_python() -> Option<f64> {
    let out = Process::new("python3").args(["-c", PYTHON]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn bench(c: &mut Criterion) {
    let program = program();
    assert_eq!(run_once(&program), Value::Int(expected()));

    let mut group = c.benchmark_group("interp");
    group.throughput(Throughput::Elements(INSTRUCTIONS));
    group.bench_function("arith_loop_1M", |b| {
        b.iter(|| black_box(run_once(&program)))
    });
    group.finish();

    // The machine is shared and noisy: measure the two in alternating rounds
    // so that load falls on both alike, and keep each one's best.
    let mut drover = f64::INFINITY;
    let mut python: Option<f64> = None;
    for _ in 0..5 {
        drover = drover.min(best_drover(&program));
        python = match (python, best_python()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    println!(
        "drover: {:.1} ms per run, {:.0} M instructions/s, {:.1} M loop iterations/s",
        drover * 1e3,
        INSTRUCTIONS as f64 / drover / 1e6,
        N as f64 / drover / 1e6
    );
    match python {
        Some(py) => println!(
            "cpython: {:.1} ms per run, {:.1} M loop iterations/s\ndrover/cpython = {:.1}x (loop iterations per second)",
            py * 1e3,
            N as f64 / py / 1e6,
            py / drover
        ),
        None => println!("note: python3 not found or failed; skipping the CPython comparison"),
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
