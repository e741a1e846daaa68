//! The instruction semantics, one behaviour per test, through `step`.

mod common;

use common::{b, r, retry, single, start, sym};
use drover_interpreter::{
    step, Command, Config, EffectError, EffectId, ErrorKind, Event, InterpError, LoadError,
    Program, PureFns, RunState, Status, TimerId,
};
use drover_ir::builder::ModuleBuilder;
use drover_ir::{Builtin, EffectKind, Inst, Module, Policy, Value};

fn completes(cmds: &[Command]) -> &Value {
    match cmds.last() {
        Some(Command::Complete { value }) => value,
        other => panic!("expected Complete, got {other:?} in {cmds:?}"),
    }
}

fn fails(cmds: &[Command]) -> (ErrorKind, String) {
    match cmds.last() {
        Some(Command::Fail { error }) => (error.kind, error.to_string()),
        other => panic!("expected Fail, got {other:?} in {cmds:?}"),
    }
}

fn int(i: i64) -> Value {
    Value::Int(i)
}

#[test]
fn arithmetic_is_checked_and_promotes() {
    let p = single(
        &[int(i64::MAX), int(1)],
        vec![
            Inst::Add {
                dst: r(2),
                a: r(0),
                b: r(1),
            },
            Inst::Ret { value: r(2) },
        ],
    );
    let (kind, msg) = fails(&start(&p));
    assert_eq!(kind, ErrorKind::Overflow);
    assert!(msg.contains("`add`") && msg.contains("w0:bb0:2"), "{msg}");

    let p = single(
        &[int(3), Value::Float(0.5)],
        vec![
            Inst::Mul {
                dst: r(2),
                a: r(0),
                b: r(1),
            },
            Inst::Ret { value: r(2) },
        ],
    );
    assert_eq!(completes(&start(&p)), &Value::Float(1.5));

    let p = single(
        &[int(-7), int(2)],
        vec![
            Inst::Rem {
                dst: r(2),
                a: r(0),
                b: r(1),
            },
            Inst::Ret { value: r(2) },
        ],
    );
    assert_eq!(completes(&start(&p)), &int(-1));

    let p = single(
        &[int(1), int(0)],
        vec![
            Inst::Div {
                dst: r(2),
                a: r(0),
                b: r(1),
            },
            Inst::Ret { value: r(2) },
        ],
    );
    assert_eq!(fails(&start(&p)).0, ErrorKind::DivideByZero);

    let p = single(
        &[Value::from("a"), Value::from("b")],
        vec![
            Inst::Add {
                dst: r(2),
                a: r(0),
                b: r(1),
            },
            Inst::Ret { value: r(2) },
        ],
    );
    assert_eq!(completes(&start(&p)), &Value::from("ab"));

    let p = single(
        &[Value::from("a"), int(1)],
        vec![
            Inst::Add {
                dst: r(2),
                a: r(0),
                b: r(1),
            },
            Inst::Ret { value: r(2) },
        ],
    );
    let (kind, msg) = fails(&start(&p));
    assert_eq!(kind, ErrorKind::TypeError);
    assert!(msg.contains("string and int"), "{msg}");
}

#[test]
fn comparisons_and_booleans() {
    let p = single(
        &[
            int(1),
            Value::Float(1.5),
            Value::from("a"),
            Value::from("b"),
        ],
        vec![
            Inst::Lt {
                dst: r(4),
                a: r(0),
                b: r(1),
            },
            Inst::Ge {
                dst: r(5),
                a: r(2),
                b: r(3),
            },
            Inst::And {
                dst: r(6),
                a: r(4),
                b: r(5),
            },
            Inst::Or {
                dst: r(7),
                a: r(4),
                b: r(5),
            },
            Inst::Not { dst: r(8), a: r(7) },
            Inst::Eq {
                dst: r(9),
                a: r(0),
                b: r(1),
            },
            Inst::List {
                dst: r(10),
                items: vec![r(4), r(5), r(6), r(7), r(8), r(9)],
            },
            Inst::Ret { value: r(10) },
        ],
    );
    let f = Value::Bool(false);
    let t = Value::Bool(true);
    assert_eq!(
        completes(&start(&p)),
        &Value::List(vec![t.clone(), f.clone(), f.clone(), t, f.clone(), f])
    );

    let p = single(
        &[int(1)],
        vec![Inst::Not { dst: r(1), a: r(0) }, Inst::Ret { value: r(1) }],
    );
    assert_eq!(fails(&start(&p)).0, ErrorKind::TypeError);
}

#[test]
fn records_lists_and_access() {
    let p = single(
        &[int(1), int(2), Value::from("k")],
        vec![
            Inst::Record {
                dst: r(3),
                fields: vec![(sym("a"), r(0))],
            },
            Inst::SetField {
                base: r(3),
                name: sym("b"),
                src: r(1),
            },
            Inst::Field {
                dst: r(4),
                base: r(3),
                name: sym("b"),
            },
            Inst::List {
                dst: r(5),
                items: vec![r(0), r(1)],
            },
            Inst::SetIndex {
                base: r(5),
                key: r(0),
                src: r(2),
            },
            Inst::Index {
                dst: r(6),
                base: r(5),
                key: r(0),
            },
            Inst::List {
                dst: r(7),
                items: vec![r(4), r(6), r(3)],
            },
            Inst::Ret { value: r(7) },
        ],
    );
    assert_eq!(
        completes(&start(&p)),
        &Value::List(vec![
            int(2),
            Value::from("k"),
            Value::record([("a", int(1)), ("b", int(2))])
        ])
    );

    let p = single(
        &[],
        vec![
            Inst::Record {
                dst: r(0),
                fields: vec![],
            },
            Inst::Field {
                dst: r(1),
                base: r(0),
                name: sym("x"),
            },
            Inst::Ret { value: r(1) },
        ],
    );
    assert_eq!(fails(&start(&p)).0, ErrorKind::MissingField);

    let p = single(
        &[int(5)],
        vec![
            Inst::List {
                dst: r(1),
                items: vec![r(0)],
            },
            Inst::Index {
                dst: r(2),
                base: r(1),
                key: r(0),
            },
            Inst::Ret { value: r(2) },
        ],
    );
    assert_eq!(fails(&start(&p)).0, ErrorKind::IndexOutOfRange);
}

#[test]
fn format_writes_strings_bare_and_escapes_braces() {
    let p = single(
        &[
            Value::from("x"),
            Value::List(vec![int(1)]),
            Value::from("y"),
        ],
        vec![
            Inst::Format {
                dst: r(3),
                template: "{{{}}} = {} {}".into(),
                args: vec![r(0), r(1), r(2)],
            },
            Inst::Ret { value: r(3) },
        ],
    );
    assert_eq!(completes(&start(&p)), &Value::from("{x} = [1] y"));

    let p = single(
        &[int(1)],
        vec![
            Inst::Format {
                dst: r(1),
                template: "{} {}".into(),
                args: vec![r(0)],
            },
            Inst::Ret { value: r(1) },
        ],
    );
    assert_eq!(fails(&start(&p)).0, ErrorKind::TypeError);
}

#[test]
fn match_payload_and_unwrap() {
    // match: null is None, a non-variant is Some.
    for (v, expected) in [
        (Value::Null, 1),
        (int(3), 2),
        (Value::ok(int(1)), 3),
        (Value::variant("Other", Value::Null), 4),
    ] {
        let mut m = ModuleBuilder::new();
        m.workflow("w", &[], |w| {
            let x = w.konst(v.clone());
            let arms: Vec<_> = ["None", "Some", "Ok"]
                .iter()
                .map(|t| (sym(t), w.new_block(t)))
                .collect();
            let dflt = w.new_block("default");
            w.push(Inst::Match {
                src: x,
                arms: arms.clone(),
                default: Some(dflt),
            });
            for (i, (_, blk)) in arms.iter().chain([(sym("d"), dflt)].iter()).enumerate() {
                w.switch_to(*blk);
                let k = w.konst(int(i as i64 + 1));
                w.push(Inst::Ret { value: k });
            }
        });
        let p = Program::new(m.finish()).unwrap();
        let mut s = RunState::new(&p, "w", Config::default()).unwrap();
        let cmds = step(&p, &mut s, 0, Event::Start { args: vec![] }).unwrap();
        assert_eq!(completes(&cmds), &int(expected), "{v}");
    }

    let p = single(
        &[Value::err(Value::from("nope"))],
        vec![
            Inst::Unwrap {
                dst: r(1),
                src: r(0),
            },
            Inst::Ret { value: r(1) },
        ],
    );
    let cmds = start(&p);
    match cmds.last() {
        Some(Command::Fail { error }) => {
            assert_eq!(error.kind, ErrorKind::Unwrapped);
            assert_eq!(error.value, Value::from("nope"));
        }
        other => panic!("{other:?}"),
    }
    let p = single(
        &[Value::Null],
        vec![
            Inst::Unwrap {
                dst: r(1),
                src: r(0),
            },
            Inst::Ret { value: r(1) },
        ],
    );
    assert_eq!(fails(&start(&p)).0, ErrorKind::Unwrapped);
    let p = single(
        &[int(4)],
        vec![
            Inst::Unwrap {
                dst: r(1),
                src: r(0),
            },
            Inst::Payload {
                dst: r(2),
                src: r(1),
            },
            Inst::Ret { value: r(2) },
        ],
    );
    assert_eq!(completes(&start(&p)), &int(4));
    let p = single(
        &[int(4)],
        vec![Inst::Match {
            src: r(0),
            arms: vec![(sym("Ok"), b(0))],
            default: None,
        }],
    );
    assert_eq!(fails(&start(&p)).0, ErrorKind::NoMatch);
}

#[test]
fn fail_carries_the_value_and_the_address() {
    let p = single(
        &[Value::from("bad input")],
        vec![Inst::Fail { error: r(0) }],
    );
    let cmds = start(&p);
    match cmds.last() {
        Some(Command::Fail { error }) => {
            assert_eq!(error.kind, ErrorKind::Failed);
            assert_eq!(error.value, Value::from("bad input"));
            assert_eq!(error.at.map(|a| a.to_string()), Some("w0:bb0:1".into()));
            assert_eq!(error.to_string(), "Failed at w0:bb0:1: `fail`: bad input");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn builtins_and_pure_functions() {
    let p = single(
        &[Value::from("a,b")],
        vec![
            Inst::CallBuiltin {
                dst: r(1),
                func: Builtin::Split,
                args: vec![r(0)],
            },
            Inst::Ret { value: r(1) },
        ],
    );
    // Wrong arity is a type error, not a panic.
    assert_eq!(fails(&start(&p)).0, ErrorKind::TypeError);

    let mut m = ModuleBuilder::new();
    m.workflow("w", &["x"], |w| {
        let out = w.new_reg();
        w.push(Inst::CallPure {
            dst: out,
            func: sym("double"),
            args: vec![w.param(0)],
        });
        w.push(Inst::Ret { value: out });
    });
    m.workflow("v", &[], |w| {
        let out = w.new_reg();
        w.push(Inst::CallPure {
            dst: out,
            func: sym("explode"),
            args: vec![],
        });
        w.push(Inst::Ret { value: out });
    });
    let module = m.finish();
    let mut fns = PureFns::new();
    fns.register("double", |args: &[Value]| match args {
        [Value::Int(i)] => Ok(Value::Int(i * 2)),
        _ => Err("double takes one int".into()),
    });
    fns.register("explode", |_: &[Value]| -> Result<Value, String> {
        panic!("boom")
    });
    let p = Program::new(module.clone()).unwrap().with_pure(fns);
    let run = |p: &Program, wf: &str, args: Vec<Value>| {
        let mut s = RunState::new(p, wf, Config::default()).unwrap();
        step(p, &mut s, 0, Event::Start { args }).unwrap()
    };
    assert_eq!(completes(&run(&p, "w", vec![int(21)])), &int(42));
    assert_eq!(
        fails(&run(&p, "w", vec![Value::Null])).0,
        ErrorKind::PureFailed
    );
    assert_eq!(fails(&run(&p, "v", vec![])).0, ErrorKind::PureFailed);
    let bare = Program::new(module).unwrap();
    assert_eq!(
        fails(&run(&bare, "w", vec![int(1)])).0,
        ErrorKind::UnknownPure
    );
}

/// A workflow that performs `sys.now` with `policy` and returns the result.
fn perform_program(policy: Policy) -> Program {
    let mut m = ModuleBuilder::new();
    let now = m.effect(EffectKind::Builtin, "sys.now", &[]);
    m.workflow("w", &[], |w| {
        let out = w.new_reg();
        w.push(Inst::Perform {
            dst: out,
            effect: now,
            args: vec![],
            policy,
        });
        w.push(Inst::Ret { value: out });
    });
    Program::new(m.finish()).unwrap()
}

fn retryable(kind: &str) -> EffectError {
    EffectError {
        kind: kind.into(),
        message: "down".into(),
        retryable: true,
    }
}

#[test]
fn perform_retries_with_backoff_and_the_same_id() {
    let p = perform_program(retry(3, None));
    let mut s = RunState::new(&p, "w", Config::default()).unwrap();
    let cmds = step(&p, &mut s, 0, Event::Start { args: vec![] }).unwrap();
    assert!(
        matches!(
            &cmds[..],
            [Command::Perform {
                id: EffectId(0),
                attempt: 1,
                ..
            }]
        ),
        "{cmds:?}"
    );
    let cmds = step(
        &p,
        &mut s,
        5,
        Event::EffectDone {
            id: EffectId(0),
            attempt: 1,
            result: Err(retryable("http_503")),
        },
    )
    .unwrap();
    // 100 ms at 10 ms a tick is 10 ticks.
    assert_eq!(
        cmds,
        vec![Command::StartTimer {
            id: TimerId(1),
            at_tick: 15
        }]
    );
    assert_eq!(
        step(&p, &mut s, 14, Event::TimerFired { id: TimerId(1) }),
        Err(InterpError::TimerEarly {
            id: 1,
            tick: 14,
            at_tick: 15
        })
    );
    let cmds = step(&p, &mut s, 15, Event::TimerFired { id: TimerId(1) }).unwrap();
    assert!(
        matches!(
            &cmds[..],
            [Command::Perform {
                id: EffectId(0),
                attempt: 2,
                ..
            }]
        ),
        "{cmds:?}"
    );
    let cmds = step(
        &p,
        &mut s,
        16,
        Event::EffectDone {
            id: EffectId(0),
            attempt: 2,
            result: Err(retryable("x")),
        },
    )
    .unwrap();
    // The second delay doubles: 200 ms.
    assert_eq!(
        cmds,
        vec![Command::StartTimer {
            id: TimerId(2),
            at_tick: 36
        }]
    );
    step(&p, &mut s, 36, Event::TimerFired { id: TimerId(2) }).unwrap();
    let cmds = step(
        &p,
        &mut s,
        37,
        Event::EffectDone {
            id: EffectId(0),
            attempt: 3,
            result: Err(retryable("x")),
        },
    )
    .unwrap();
    // Out of attempts: the workflow gets Err({kind, message}).
    let expected = Value::err(Value::record([
        ("kind", Value::from("x")),
        ("message", Value::from("down")),
    ]));
    assert_eq!(completes(&cmds), &expected);
}

#[test]
fn a_timeout_fails_the_attempt_and_late_results_are_ignored() {
    let p = perform_program(retry(2, Some(30)));
    let mut s = RunState::new(&p, "w", Config::default()).unwrap();
    let cmds = step(&p, &mut s, 0, Event::Start { args: vec![] }).unwrap();
    assert!(
        matches!(
            &cmds[..],
            [
                Command::Perform { attempt: 1, .. },
                Command::StartTimer {
                    id: TimerId(1),
                    at_tick: 3
                }
            ]
        ),
        "{cmds:?}"
    );
    let cmds = step(&p, &mut s, 3, Event::TimerFired { id: TimerId(1) }).unwrap();
    assert_eq!(
        cmds,
        vec![Command::StartTimer {
            id: TimerId(2),
            at_tick: 13
        }]
    );
    // The timed-out attempt answers late: ignored, not an error.
    assert_eq!(
        step(
            &p,
            &mut s,
            4,
            Event::EffectDone {
                id: EffectId(0),
                attempt: 1,
                result: Ok(Value::Null)
            }
        ),
        Ok(vec![])
    );
    let cmds = step(&p, &mut s, 13, Event::TimerFired { id: TimerId(2) }).unwrap();
    assert!(
        matches!(
            &cmds[..],
            [
                Command::Perform { attempt: 2, .. },
                Command::StartTimer { id: TimerId(3), .. }
            ]
        ),
        "{cmds:?}"
    );
    let cmds = step(
        &p,
        &mut s,
        14,
        Event::EffectDone {
            id: EffectId(0),
            attempt: 2,
            result: Ok(int(9)),
        },
    )
    .unwrap();
    assert_eq!(completes(&cmds), &Value::ok(int(9)));
}

#[test]
fn bogus_events_are_refused_and_leave_the_state_alone() {
    let p = perform_program(Policy::default());
    let mut s = RunState::new(&p, "w", Config::default()).unwrap();
    assert_eq!(
        step(&p, &mut s, 0, Event::Cancel { reason: "x".into() }),
        Err(InterpError::NotStarted)
    );
    assert!(matches!(
        step(&p, &mut s, 0, Event::Start { args: vec![int(1)] }),
        Err(InterpError::Arity { .. })
    ));
    step(&p, &mut s, 0, Event::Start { args: vec![] }).unwrap();
    let before = s.clone();
    assert_eq!(
        step(&p, &mut s, 0, Event::Start { args: vec![] }),
        Err(InterpError::AlreadyStarted)
    );
    assert_eq!(
        step(
            &p,
            &mut s,
            0,
            Event::EffectDone {
                id: EffectId(7),
                attempt: 1,
                result: Ok(Value::Null)
            }
        ),
        Err(InterpError::UnknownEffect(7))
    );
    assert!(matches!(
        step(
            &p,
            &mut s,
            0,
            Event::EffectDone {
                id: EffectId(0),
                attempt: 2,
                result: Ok(Value::Null)
            }
        ),
        Err(InterpError::FutureAttempt { .. })
    ));
    assert_eq!(
        step(&p, &mut s, 0, Event::TimerFired { id: TimerId(9) }),
        Err(InterpError::UnknownTimer(9))
    );
    s.clone_from(&before);
    step(&p, &mut s, 5, Event::Cancel { reason: "x".into() }).unwrap();
    assert!(matches!(
        step(&p, &mut s, 1, Event::Cancel { reason: "x".into() }),
        Err(InterpError::Finished)
    ));
    let mut t = before.clone();
    step(
        &p,
        &mut t,
        5,
        Event::EffectDone {
            id: EffectId(0),
            attempt: 1,
            result: Ok(Value::Null),
        },
    )
    .unwrap();
    assert_eq!(
        step(
            &p,
            &mut t,
            5,
            Event::EffectDone {
                id: EffectId(0),
                attempt: 1,
                result: Ok(Value::Null)
            }
        ),
        Err(InterpError::Finished)
    );
    let mut u = before;
    assert!(
        matches!(step(&p, &mut u, 0, Event::Signal { name: "s".into(), value: Value::Null }), Ok(v) if v.is_empty())
    );
    assert_eq!(
        step(
            &p,
            &mut u,
            0,
            Event::EffectDone {
                id: EffectId(0),
                attempt: 1,
                result: Ok(Value::Null)
            }
        )
        .map(|c| c.len()),
        Ok(1)
    );
}

#[test]
fn cancel_fails_the_run() {
    let p = perform_program(Policy::default());
    let mut s = RunState::new(&p, "w", Config::default()).unwrap();
    step(&p, &mut s, 0, Event::Start { args: vec![] }).unwrap();
    let cmds = step(
        &p,
        &mut s,
        1,
        Event::Cancel {
            reason: "operator".into(),
        },
    )
    .unwrap();
    assert_eq!(fails(&cmds).0, ErrorKind::Cancelled);
    assert!(matches!(s.status(), Status::Failed(e) if e.kind == ErrorKind::Cancelled));
}

#[test]
fn fuel_exhaustion_is_a_named_failure() {
    let p = single(&[], vec![Inst::Jump { target: b(0) }]);
    let mut s = RunState::new(
        &p,
        "w",
        Config {
            fuel_per_step: 1000,
            ..Config::default()
        },
    )
    .unwrap();
    let cmds = step(&p, &mut s, 0, Event::Start { args: vec![] }).unwrap();
    let (kind, msg) = fails(&cmds);
    assert_eq!(kind, ErrorKind::FuelExhausted);
    assert!(msg.contains("1000 instructions"), "{msg}");
}

#[test]
fn values_over_the_limit_fail_the_run() {
    let p = single(
        &[Value::from("x".repeat(600))],
        vec![
            Inst::Add {
                dst: r(1),
                a: r(0),
                b: r(0),
            },
            Inst::Ret { value: r(1) },
        ],
    );
    let mut s = RunState::new(
        &p,
        "w",
        Config {
            max_value_bytes: 1000,
            ..Config::default()
        },
    )
    .unwrap();
    let cmds = step(&p, &mut s, 0, Event::Start { args: vec![] }).unwrap();
    assert_eq!(fails(&cmds).0, ErrorKind::ValueTooLarge);

    // Depth: a list nested in a loop.
    let p = single(
        &[],
        vec![
            Inst::List {
                dst: r(0),
                items: vec![r(0)],
            },
            Inst::Jump { target: b(0) },
        ],
    );
    let cmds = start(&p);
    assert_eq!(fails(&cmds).0, ErrorKind::ValueTooLarge);
}

#[test]
fn sleep_and_signals() {
    let p = common::program();
    let mut s = RunState::new(
        &p,
        "approvals",
        Config {
            max_buffered_signals: 1,
            ..Config::default()
        },
    )
    .unwrap();
    assert_eq!(
        step(&p, &mut s, 0, Event::Start { args: vec![] }),
        Ok(vec![])
    );
    assert_eq!(s.awaited_signals(), vec!["approve"]);
    let cmds = step(
        &p,
        &mut s,
        1,
        Event::Signal {
            name: "approve".into(),
            value: int(1),
        },
    )
    .unwrap();
    // 25 ms is 3 ticks, rounded up.
    assert_eq!(
        cmds,
        vec![Command::StartTimer {
            id: TimerId(0),
            at_tick: 4
        }]
    );
    // Signals sent while nobody waits are buffered, up to the limit.
    assert_eq!(
        step(
            &p,
            &mut s,
            2,
            Event::Signal {
                name: "approve".into(),
                value: int(2)
            }
        ),
        Ok(vec![])
    );
    assert_eq!(
        step(
            &p,
            &mut s,
            2,
            Event::Signal {
                name: "approve".into(),
                value: int(3)
            }
        ),
        Err(InterpError::SignalBufferFull("approve".into()))
    );
    let cmds = step(&p, &mut s, 4, Event::TimerFired { id: TimerId(0) }).unwrap();
    assert_eq!(
        cmds,
        vec![Command::StartTimer {
            id: TimerId(1),
            at_tick: 7
        }]
    );
    step(&p, &mut s, 7, Event::TimerFired { id: TimerId(1) }).unwrap();
    step(
        &p,
        &mut s,
        8,
        Event::Signal {
            name: "approve".into(),
            value: int(3),
        },
    )
    .unwrap();
    let cmds = step(&p, &mut s, 11, Event::TimerFired { id: TimerId(2) }).unwrap();
    assert_eq!(completes(&cmds), &Value::List(vec![int(1), int(2), int(3)]));
}

#[test]
fn fibers_join_and_race() {
    let p = common::program();
    let mut s = RunState::new(&p, "fibers", Config::default()).unwrap();
    let cmds = step(&p, &mut s, 0, Event::Start { args: vec![] }).unwrap();
    // Fibers a, b, c run in spawn order once main waits: a performs (id 0),
    // b sleeps (timer 1), c performs (id 2) with a timeout timer (3).
    assert!(
        matches!(
            &cmds[..],
            [
                Command::Perform {
                    id: EffectId(0),
                    ..
                },
                Command::StartTimer {
                    id: TimerId(1),
                    at_tick: 5
                },
                Command::Perform {
                    id: EffectId(2),
                    ..
                },
                Command::StartTimer {
                    id: TimerId(3),
                    at_tick: 10
                },
            ]
        ),
        "{cmds:?}"
    );
    assert_eq!(s.fiber_count(), 4);
    assert_eq!(
        step(
            &p,
            &mut s,
            1,
            Event::EffectDone {
                id: EffectId(0),
                attempt: 1,
                result: Ok(int(100))
            }
        ),
        Ok(vec![])
    );
    // b's timer wins the race; c is cancelled and its late result ignored.
    let cmds = step(&p, &mut s, 5, Event::TimerFired { id: TimerId(1) }).unwrap();
    let expected = Value::List(vec![Value::ok(int(100)), Value::List(vec![int(0), int(2)])]);
    assert_eq!(completes(&cmds), &expected);
}

#[test]
fn pending_effects_and_timers_list_what_a_restart_must_rearm() {
    let p = common::program();
    let mut s = RunState::new(&p, "fibers", Config::default()).unwrap();
    step(&p, &mut s, 0, Event::Start { args: vec![] }).unwrap();
    let pending: Vec<(EffectId, u32, bool)> = s
        .pending_effects()
        .iter()
        .map(|e| (e.id, e.attempt, e.child))
        .collect();
    assert_eq!(
        pending,
        vec![(EffectId(0), 1, false), (EffectId(2), 1, false)]
    );
    assert_eq!(s.timers(), vec![(TimerId(1), 5), (TimerId(3), 10)]);
    // A restored snapshot lists the same.
    let restored = RunState::restore(&s.snapshot()).unwrap();
    assert_eq!(restored.pending_effects(), s.pending_effects());
    assert_eq!(restored.timers(), s.timers());
    step(
        &p,
        &mut s,
        1,
        Event::EffectDone {
            id: EffectId(0),
            attempt: 1,
            result: Ok(int(100)),
        },
    )
    .unwrap();
    let ids: Vec<EffectId> = s.pending_effects().iter().map(|e| e.id).collect();
    assert_eq!(ids, vec![EffectId(2)]);
}

#[test]
fn race_cancels_losers_and_ignores_their_events() {
    let mut m = ModuleBuilder::new();
    let e = m.effect(EffectKind::Activity, "slow", &[]);
    m.workflow("w", &[], |w| {
        let (h1, h2, l, won, x, y, forever) = (
            w.new_reg(),
            w.new_reg(),
            w.new_reg(),
            w.new_reg(),
            w.new_reg(),
            w.new_reg(),
            w.new_reg(),
        );
        let f1 = w.new_block("f1");
        let f2 = w.new_block("f2");
        w.push(Inst::Spawn {
            dst: h1,
            target: f1,
        });
        w.push(Inst::Spawn {
            dst: h2,
            target: f2,
        });
        w.push(Inst::List {
            dst: l,
            items: vec![h1, h2],
        });
        w.push(Inst::Race {
            dst: won,
            fibers: l,
        });
        w.push(Inst::AwaitSignal {
            dst: forever,
            name: sym("go"),
        });
        w.push(Inst::Ret { value: won });
        w.switch_to(f1);
        w.push(Inst::Perform {
            dst: x,
            effect: e,
            args: vec![],
            policy: Policy::default(),
        });
        w.push(Inst::Ret { value: x });
        w.switch_to(f2);
        w.push(Inst::Perform {
            dst: y,
            effect: e,
            args: vec![],
            policy: Policy::default(),
        });
        w.push(Inst::Ret { value: y });
    });
    let p = Program::new(m.finish()).unwrap();
    let mut s = RunState::new(&p, "w", Config::default()).unwrap();
    step(&p, &mut s, 0, Event::Start { args: vec![] }).unwrap();
    assert_eq!(s.pending_count(), 2);
    step(
        &p,
        &mut s,
        1,
        Event::EffectDone {
            id: EffectId(1),
            attempt: 1,
            result: Ok(int(2)),
        },
    )
    .unwrap();
    assert_eq!(s.pending_count(), 0);
    assert_eq!(s.fiber_count(), 1);
    // The loser's effect answers after the race: ignored.
    assert_eq!(
        step(
            &p,
            &mut s,
            2,
            Event::EffectDone {
                id: EffectId(0),
                attempt: 1,
                result: Ok(int(1))
            }
        ),
        Ok(vec![])
    );
    let cmds = step(
        &p,
        &mut s,
        3,
        Event::Signal {
            name: "go".into(),
            value: Value::Null,
        },
    )
    .unwrap();
    assert_eq!(
        completes(&cmds),
        &Value::List(vec![int(1), Value::ok(int(2))])
    );
}

#[test]
fn join_misuse_and_deadlock_are_named_failures() {
    let p = single(
        &[int(1)],
        vec![
            Inst::Join {
                dst: r(1),
                fiber: r(0),
            },
            Inst::Ret { value: r(1) },
        ],
    );
    assert_eq!(fails(&start(&p)).0, ErrorKind::TypeError);
    let p = single(
        &[Value::variant("Fiber", int(0))],
        vec![
            Inst::Join {
                dst: r(1),
                fiber: r(0),
            },
            Inst::Ret { value: r(1) },
        ],
    );
    assert_eq!(fails(&start(&p)).0, ErrorKind::BadHandle);
    // A fiber that joins its joiner's future handle never wakes: main waits
    // for fiber 1, which waits for fiber 2, which joins fiber 1.
    let mut m = ModuleBuilder::new();
    m.workflow("w", &[], |w| {
        let (h1, h2, v) = (w.new_reg(), w.new_reg(), w.new_reg());
        let one = w.konst(Value::variant("Fiber", int(1)));
        let f1 = w.new_block("f1");
        let f2 = w.new_block("f2");
        w.push(Inst::Spawn {
            dst: h1,
            target: f1,
        });
        w.push(Inst::Join { dst: v, fiber: h1 });
        w.push(Inst::Ret { value: v });
        w.switch_to(f1);
        w.push(Inst::Spawn {
            dst: h2,
            target: f2,
        });
        w.push(Inst::Join { dst: v, fiber: h2 });
        w.push(Inst::Ret { value: v });
        w.switch_to(f2);
        w.push(Inst::Join { dst: v, fiber: one });
        w.push(Inst::Ret { value: v });
    });
    let p = Program::new(m.finish()).unwrap();
    let mut s = RunState::new(&p, "w", Config::default()).unwrap();
    let cmds = step(&p, &mut s, 0, Event::Start { args: vec![] }).unwrap();
    assert_eq!(fails(&cmds).0, ErrorKind::Deadlock);
}

#[test]
fn spawn_respects_the_fiber_limit() {
    let p = single(
        &[],
        vec![
            Inst::Spawn {
                dst: r(0),
                target: b(0),
            },
            Inst::Jump { target: b(0) },
        ],
    );
    let mut s = RunState::new(
        &p,
        "w",
        Config {
            max_fibers: 8,
            ..Config::default()
        },
    )
    .unwrap();
    let cmds = step(&p, &mut s, 0, Event::Start { args: vec![] }).unwrap();
    assert_eq!(fails(&cmds).0, ErrorKind::LimitExceeded);
}

#[test]
fn child_workflows() {
    let p = common::program();
    let mut s = RunState::new(&p, "parent", Config::default()).unwrap();
    let cmds = step(&p, &mut s, 0, Event::Start { args: vec![int(7)] }).unwrap();
    assert!(
        matches!(&cmds[..], [Command::StartChild { id: EffectId(0), workflow, args, .. }] if workflow == "child" && args == &vec![int(7)]),
        "{cmds:?}"
    );
    let cmds = step(
        &p,
        &mut s,
        1,
        Event::EffectDone {
            id: EffectId(0),
            attempt: 1,
            result: Ok(int(8)),
        },
    )
    .unwrap();
    assert_eq!(completes(&cmds), &int(8));

    // A child from another module is started by name; the runtime resolves
    // it, and its result comes back like any other.
    let external = single(
        &[],
        vec![
            Inst::Call {
                dst: r(0),
                workflow: sym("elsewhere"),
                args: vec![],
            },
            Inst::Ret { value: r(0) },
        ],
    );
    let mut state = RunState::new(&external, "w", Config::default()).expect("state");
    let cmds = step(&external, &mut state, 0, Event::Start { args: vec![] }).expect("step");
    assert!(
        matches!(&cmds[..], [Command::StartChild { workflow, .. }] if workflow == "elsewhere"),
        "{cmds:?}"
    );
    let cmds = step(
        &external,
        &mut state,
        0,
        Event::EffectDone {
            id: EffectId(0),
            attempt: 1,
            result: Ok(int(3)),
        },
    )
    .unwrap();
    assert_eq!(completes(&cmds), &Value::ok(int(3)));
}

#[test]
fn logs_carry_their_instruction() {
    let p = single(
        &[int(1)],
        vec![
            Inst::Log {
                level: drover_ir::LogLevel::Warn,
                message: "hi".into(),
                fields: Some(r(0)),
            },
            Inst::Ret { value: r(0) },
        ],
    );
    let cmds = start(&p);
    assert!(
        matches!(&cmds[0], Command::Log { message, fields, at, .. } if message == "hi" && *fields == int(1) && at.to_string() == "w0:bb0:1"),
        "{cmds:?}"
    );
}

#[test]
fn program_new_rejects_out_of_range_ids() {
    let load = |insts: Vec<Inst>| {
        let mut m = ModuleBuilder::new();
        m.workflow("w", &[], |w| insts.into_iter().for_each(|i| w.push(i)));
        Program::new(m.finish()).map(drop)
    };
    assert!(matches!(
        load(vec![Inst::Jump { target: b(3) }]),
        Err(LoadError::BadBlock { .. })
    ));
    assert!(matches!(
        load(vec![
            Inst::Const {
                dst: r(0),
                value: drover_ir::ConstId(0)
            },
            Inst::Ret { value: r(0) }
        ]),
        Err(LoadError::BadConst { .. })
    ));
    assert!(matches!(
        load(vec![
            Inst::Perform {
                dst: r(0),
                effect: drover_ir::EffectRef(2),
                args: vec![],
                policy: Policy::default()
            },
            Inst::Ret { value: r(0) }
        ]),
        Err(LoadError::BadEffect { .. })
    ));
    assert!(matches!(
        load(vec![Inst::Ret { value: r(0) }, Inst::Ret { value: r(0) }]),
        Err(LoadError::TerminatorInside { .. })
    ));
    assert!(matches!(
        load(vec![Inst::Move {
            dst: r(0),
            src: r(0)
        }]),
        Err(LoadError::NoTerminator { .. })
    ));
    assert!(matches!(load(vec![]), Err(LoadError::EmptyBlock { .. })));
    let mut module = Module::default();
    module.workflows.push(drover_ir::Workflow {
        name: "w".into(),
        params: vec![],
        blocks: vec![],
    });
    assert!(matches!(
        Program::new(module),
        Err(LoadError::NoBlocks { .. })
    ));
}

#[test]
fn restored_snapshots_are_checked_against_the_program() {
    let p = common::program();
    let mut s = RunState::new(&p, "counter", Config::default()).unwrap();
    step(&p, &mut s, 0, Event::Start { args: vec![int(2)] }).unwrap();
    let restored = RunState::restore(&s.snapshot()).unwrap();
    assert_eq!(restored, s);
    assert!(matches!(
        RunState::restore(b"\x93garbage"),
        Err(InterpError::BadSnapshot(_))
    ));
    // The same state against a program whose workflow is smaller.
    let tiny = single(&[], vec![Inst::Ret { value: r(0) }]);
    let mut wrong = restored.clone();
    assert!(matches!(
        step(
            &tiny,
            &mut wrong,
            1,
            Event::Cancel {
                reason: String::new()
            }
        ),
        Err(InterpError::StateMismatch(_))
    ));
}
