//! Workflows shared by the tests, built with `ModuleBuilder`.
#![allow(dead_code)]

use drover_interpreter::{step, Command, Config, Event, Program, RunState};
use drover_ir::builder::ModuleBuilder;
use drover_ir::{Block, EffectKind, Inst, Policy, Reg, RetryPolicy, Symbol, Value};

pub fn sym(s: &str) -> Symbol {
    Symbol::from(s)
}

pub fn retry(max_attempts: u32, timeout_ms: Option<u64>) -> Policy {
    Policy {
        retry: Some(RetryPolicy {
            max_attempts,
            initial_backoff_ms: 100,
            max_backoff_ms: 1_000,
            multiplier: 2,
        }),
        timeout_ms,
    }
}

/// Every workflow the simulation drives, in one module:
/// - `counter(n)`: a loop performing `kv.incr` with retries, summing results;
/// - `flaky()`: one `http.request` with retries and a timeout, then `match`;
/// - `fibers()`: three fibers, a `join` and a `race`;
/// - `approvals()`: waits for three `approve` signals, sleeping between;
/// - `strict()`: `unwrap`s an effect result, so an error fails the run;
/// - `parent(x)` / `child(x)`: a child workflow call.
pub fn module() -> drover_ir::Module {
    let mut m = ModuleBuilder::new();
    let incr = m.effect(EffectKind::Builtin, "memcache.incr", &["key", "delta"]);
    let http = m.effect(
        EffectKind::Builtin,
        "http.request",
        &["method", "url", "headers", "body"],
    );
    let now = m.effect(EffectKind::Builtin, "sys.now", &[]);

    m.workflow("counter", &["n"], |w| {
        let n = w.param(0);
        let i = w.konst(Value::Int(0));
        let sum = w.konst(Value::Int(0));
        let one = w.konst(Value::Int(1));
        let zero = w.konst(Value::Int(0));
        let key = w.konst(Value::from("k"));
        let (c, r, v, isint) = (w.new_reg(), w.new_reg(), w.new_reg(), w.new_reg());
        let head = w.new_block("head");
        let body = w.new_block("body");
        let add = w.new_block("add");
        let next = w.new_block("next");
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
        w.push(Inst::Perform {
            dst: r,
            effect: incr,
            args: vec![key, i],
            policy: retry(3, None),
        });
        w.push(Inst::CallBuiltin {
            dst: v,
            func: drover_ir::Builtin::UnwrapOr,
            args: vec![r, zero],
        });
        w.push(Inst::CallBuiltin {
            dst: isint,
            func: drover_ir::Builtin::TypeOf,
            args: vec![v],
        });
        let int_name = w.konst(Value::from("int"));
        w.push(Inst::Eq {
            dst: isint,
            a: isint,
            b: int_name,
        });
        w.push(Inst::Branch {
            cond: isint,
            then_block: add,
            else_block: next,
        });
        w.switch_to(add);
        w.push(Inst::Add {
            dst: sum,
            a: sum,
            b: v,
        });
        w.push(Inst::Jump { target: next });
        w.switch_to(next);
        w.push(Inst::Add {
            dst: i,
            a: i,
            b: one,
        });
        w.push(Inst::Log {
            level: drover_ir::LogLevel::Info,
            message: "step".into(),
            fields: Some(i),
        });
        w.push(Inst::Jump { target: head });
        w.switch_to(exit);
        w.push(Inst::Ret { value: sum });
    });

    m.workflow("flaky", &[], |w| {
        let get = w.konst(Value::from("GET"));
        let url = w.konst(Value::from("https://example.test"));
        let none = w.konst(Value::Null);
        let r = w.new_reg();
        let p = w.new_reg();
        let ok = w.new_block("ok");
        let bad = w.new_block("bad");
        w.push(Inst::Perform {
            dst: r,
            effect: http,
            args: vec![get, url, none, none],
            policy: retry(4, Some(500)),
        });
        w.push(Inst::Match {
            src: r,
            arms: vec![(sym("Ok"), ok), (sym("Err"), bad)],
            default: None,
        });
        w.switch_to(ok);
        w.push(Inst::Payload { dst: p, src: r });
        w.push(Inst::Ret { value: p });
        w.switch_to(bad);
        w.push(Inst::Payload { dst: p, src: r });
        w.push(Inst::Fail { error: p });
    });

    m.workflow("fibers", &[], |w| {
        let ms = w.konst(Value::Int(50));
        let two = w.konst(Value::Int(2));
        let key = w.konst(Value::from("k"));
        let (ha, hb, hc, ja, list, won, out, tmp) = (
            w.new_reg(),
            w.new_reg(),
            w.new_reg(),
            w.new_reg(),
            w.new_reg(),
            w.new_reg(),
            w.new_reg(),
            w.new_reg(),
        );
        let fa = w.new_block("fiber_a");
        let fb = w.new_block("fiber_b");
        let fc = w.new_block("fiber_c");
        w.push(Inst::Spawn {
            dst: ha,
            target: fa,
        });
        w.push(Inst::Spawn {
            dst: hb,
            target: fb,
        });
        w.push(Inst::Spawn {
            dst: hc,
            target: fc,
        });
        w.push(Inst::Join { dst: ja, fiber: ha });
        w.push(Inst::List {
            dst: list,
            items: vec![hb, hc],
        });
        w.push(Inst::Race {
            dst: won,
            fibers: list,
        });
        w.push(Inst::List {
            dst: out,
            items: vec![ja, won],
        });
        w.push(Inst::Ret { value: out });
        w.switch_to(fa);
        w.push(Inst::Perform {
            dst: tmp,
            effect: now,
            args: vec![],
            policy: Policy::default(),
        });
        w.push(Inst::Ret { value: tmp });
        w.switch_to(fb);
        w.push(Inst::Sleep { millis: ms });
        w.push(Inst::Ret { value: two });
        w.switch_to(fc);
        w.push(Inst::Perform {
            dst: tmp,
            effect: incr,
            args: vec![key, two],
            policy: retry(2, Some(100)),
        });
        w.push(Inst::Ret { value: tmp });
    });

    m.workflow("approvals", &[], |w| {
        let acc = w.new_reg();
        w.push(Inst::List {
            dst: acc,
            items: vec![],
        });
        let i = w.konst(Value::Int(0));
        let three = w.konst(Value::Int(3));
        let one = w.konst(Value::Int(1));
        let ms = w.konst(Value::Int(25));
        let (c, v) = (w.new_reg(), w.new_reg());
        let head = w.new_block("head");
        let body = w.new_block("body");
        let exit = w.new_block("exit");
        w.push(Inst::Jump { target: head });
        w.switch_to(head);
        w.push(Inst::Lt {
            dst: c,
            a: i,
            b: three,
        });
        w.push(Inst::Branch {
            cond: c,
            then_block: body,
            else_block: exit,
        });
        w.switch_to(body);
        w.push(Inst::AwaitSignal {
            dst: v,
            name: sym("approve"),
        });
        w.push(Inst::CallBuiltin {
            dst: acc,
            func: drover_ir::Builtin::Push,
            args: vec![acc, v],
        });
        w.push(Inst::Sleep { millis: ms });
        w.push(Inst::Add {
            dst: i,
            a: i,
            b: one,
        });
        w.push(Inst::Jump { target: head });
        w.switch_to(exit);
        w.push(Inst::Ret { value: acc });
    });

    m.workflow("strict", &[], |w| {
        let (r, v) = (w.new_reg(), w.new_reg());
        w.push(Inst::Perform {
            dst: r,
            effect: now,
            args: vec![],
            policy: Policy::default(),
        });
        w.push(Inst::Unwrap { dst: v, src: r });
        w.push(Inst::Ret { value: v });
    });

    m.workflow("parent", &["x"], |w| {
        let (r, v) = (w.new_reg(), w.new_reg());
        w.push(Inst::Call {
            dst: r,
            workflow: sym("child"),
            args: vec![w.param(0)],
        });
        w.push(Inst::Unwrap { dst: v, src: r });
        w.push(Inst::Ret { value: v });
    });

    m.workflow("child", &["x"], |w| {
        let x = w.param(0);
        w.push(Inst::Ret { value: x });
    });

    m.finish()
}

pub fn program() -> Program {
    Program::new(module()).expect("the test module loads")
}

/// The workflows of [`module`] with the arguments they take.
pub fn runs() -> Vec<(&'static str, Vec<Value>)> {
    vec![
        ("counter", vec![Value::Int(4)]),
        ("flaky", vec![]),
        ("fibers", vec![]),
        ("approvals", vec![]),
        ("strict", vec![]),
        ("parent", vec![Value::Int(7)]),
    ]
}

/// A one-workflow program `w()` whose entry block is `insts` (so the last
/// must be a terminator), with `consts` loaded into r0.. first.
pub fn single(consts: &[Value], insts: Vec<Inst>) -> Program {
    let mut m = ModuleBuilder::new();
    m.workflow("w", &[], |w| {
        for c in consts {
            w.konst(c.clone());
        }
        for i in insts {
            w.push(i);
        }
    });
    Program::new(m.finish()).expect("the test program loads")
}

/// Starts `w()` and returns the commands of the first step.
pub fn start(program: &Program) -> Vec<Command> {
    let mut s = RunState::new(program, "w", Config::default()).expect("state");
    step(program, &mut s, 0, Event::Start { args: vec![] }).expect("step")
}

pub fn r(i: u32) -> Reg {
    Reg(i)
}

pub fn b(i: u32) -> Block {
    Block(i)
}
