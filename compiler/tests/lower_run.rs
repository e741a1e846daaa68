//! Compiled workflows run in the interpreter against scripted effects: the
//! lowering means what the Rust means.

use drover_compiler::lower::compile_file;
use drover_compiler::scripted::{self, Outcome, Response, Script};
use drover_interpreter::{Config, EffectError, Program};
use drover_ir::Value;

/// Compiles `src` (one workflow), checks it verifies, and runs it.
fn run_with(src: &str, args: Vec<Value>, script: &mut Script) -> Outcome {
    let compiled = match compile_file("run.rs", src) {
        Ok(c) => c,
        Err(e) => panic!(
            "{:?}",
            e.errors
                .iter()
                .map(|e| e.message.clone())
                .collect::<Vec<_>>()
        ),
    };
    let c = &compiled[0];
    let report = drover_ir::verify::verify(&c.module);
    assert!(!report.has_errors(), "{:?}", report.diags);
    let program = Program::new(c.module.clone()).expect("program loads");
    scripted::run(&program, &c.name, args, &[], script, Config::default())
        .expect("no interpreter error")
        .outcome
}

fn run(src: &str, args: Vec<Value>) -> Value {
    match run_with(src, args, &mut Script::default()) {
        Outcome::Completed(v) => v,
        other => panic!("{other:?}"),
    }
}

fn ok(v: Value) -> Response {
    Response {
        result: Ok(v),
        delay_ms: 0,
    }
}

fn list(items: &[i64]) -> Value {
    Value::List(items.iter().map(|i| Value::Int(*i)).collect())
}

#[test]
fn loops_sum_skip_and_break() {
    let src = r#"
        #[workflow]
        async fn sums(xs: Vec<i64>, n: i64) -> Vec<i64> {
            let mut total = 0;
            for x in &xs {
                if *x < 0 { continue; }
                total += x;
            }
            let mut r = 0;
            for i in 1..=n { r += i; }
            for i in (0..3).rev() { r = r * 10 + i; }
            let mut w = 0;
            while w < 5 { w += 2; }
            let mut k = 0;
            let found = loop {
                k += 1;
                if k * k > 50 { break k; }
            };
            let mut pairs = 0;
            'outer: for a in 0..5 {
                for b in 0..5 {
                    if b > a { continue 'outer; }
                    if a == 4 { break 'outer; }
                    pairs += 1;
                }
            }
            let mut idx = 0;
            for (i, x) in xs.iter().enumerate() { idx += i * x; }
            vec![total, r, w, found, pairs, idx]
        }
    "#;
    let out = run(src, vec![list(&[3, -1, 4]), Value::Int(4)]);
    // r: 1+2+3+4 = 10, then 10*10+2, *10+1, *10+0 = 10210.
    // pairs: a=0:1, a=1:2, a=2:3, a=3:4 → 10. idx: 0*3 + 1*-1 + 2*4 = 7.
    assert_eq!(out, list(&[7, 10210, 6, 8, 10, 7]));
}

#[test]
fn matches_pick_the_first_arm_that_fits() {
    let src = r#"
        #[workflow]
        async fn classify(shape: Shape, n: i64, o: Option<i64>) -> Vec<String> {
            let s = match shape {
                Shape::Empty => "empty".to_string(),
                Shape::Circle(r) if r > 10 => "big circle".to_string(),
                Shape::Circle(r) => format!("circle {r}"),
                Shape::Rect(w, h) => format!("rect {}x{}", w, h),
                Shape::Named { name } => name,
            };
            let k = match n {
                0 => "zero",
                1 | 2 => "one or two",
                3..=9 => "few",
                m @ 10..=99 if m % 2 == 0 => "even tens",
                _ => "many",
            };
            let v = match o { Some(x) => format!("some {x}"), None => "none".to_string() };
            let t = if let Some(x) = o { x > 1 } else { false };
            vec![s, k.to_string(), v, t.to_string(), matches!(shape, Shape::Rect(..)).to_string()]
        }
    "#;
    let rect = Value::variant("Rect", list(&[2, 3]));
    let out = run(src, vec![rect, Value::Int(42), Value::Int(5)]);
    let strs = |xs: &[&str]| Value::List(xs.iter().map(|s| Value::Str(s.to_string())).collect());
    assert_eq!(
        out,
        strs(&["rect 2x3", "even tens", "some 5", "true", "true"])
    );
    let circle = Value::variant("Circle", Value::Int(3));
    let out = run(src, vec![circle, Value::Int(2), Value::Null]);
    assert_eq!(
        out,
        strs(&["circle 3", "one or two", "none", "false", "false"])
    );
    let named = Value::variant("Named", Value::record([("name", Value::Str("x".into()))]));
    let out = run(src, vec![named, Value::Int(11), Value::Null]);
    assert_eq!(out, strs(&["x", "many", "none", "false", "false"]));
}

#[test]
fn question_mark_returns_err_and_none() {
    let src = r#"
        #[workflow]
        async fn tries(r: Result<i64, Error>, o: Option<i64>) -> Result<i64, Error> {
            let a = r?;
            let b = o?;
            Ok(a + b)
        }
    "#;
    let err = Value::err(Value::Str("boom".into()));
    assert_eq!(run(src, vec![err.clone(), Value::Int(1)]), err);
    assert_eq!(
        run(src, vec![Value::ok(Value::Int(2)), Value::Null]),
        Value::Null
    );
    assert_eq!(
        run(src, vec![Value::ok(Value::Int(2)), Value::Int(3)]),
        Value::ok(Value::Int(5))
    );
}

#[test]
fn records_and_variants_update_in_place() {
    let src = r#"
        #[workflow]
        async fn update(mut order: Order) -> Order {
            order.customer.city = "Oslo".to_string();
            order.lines[1] += 5;
            order.tags.push("new".to_string());
            let Order { id, .. } = order.clone();
            order.status = Status::Shipped { by: id };
            let (a, b) = (1, 2);
            order.pair = (b, a);
            order
        }
    "#;
    let order = Value::record([
        ("id", Value::Str("o1".into())),
        (
            "customer",
            Value::record([("city", Value::Str("Bergen".into()))]),
        ),
        ("lines", list(&[1, 2])),
        ("tags", Value::List(vec![])),
        ("status", Value::Null),
        ("pair", Value::Null),
    ]);
    let out = run(src, vec![order]);
    let expected = Value::record([
        ("id", Value::Str("o1".into())),
        (
            "customer",
            Value::record([("city", Value::Str("Oslo".into()))]),
        ),
        ("lines", list(&[1, 7])),
        ("tags", Value::List(vec![Value::Str("new".into())])),
        (
            "status",
            Value::variant("Shipped", Value::record([("by", Value::Str("o1".into()))])),
        ),
        ("pair", list(&[2, 1])),
    ]);
    assert_eq!(out, expected);
}

#[test]
fn effects_activities_join_and_all() {
    let src = r#"
        #[activity]
        async fn fetch(id: i64) -> Result<i64, Error> { Ok(id * 2) }

        #[workflow]
        async fn fan_out(ids: Vec<i64>) -> Result<Vec<i64>, Error> {
            let cached: Option<i64> = memcache::get("k").await?;
            let (a, b) = join!(fetch(1), fetch(2));
            let all_of = all(ids.iter().map(|id| async move {
                let v = fetch(*id).await?;
                Ok(v * 10)
            }))
            .await;
            let mut sum = cached.unwrap_or(100) + a? + b?;
            for r in all_of {
                sum += r?;
            }
            Ok(vec![sum, ids.len() as i64])
        }
    "#;
    let mut script = Script::default();
    script.push("memcache.get", ok(Value::Null));
    for v in [1, 2, 3, 4, 5] {
        script.push("fetch", ok(Value::Int(v)));
    }
    let out = run_with(src, vec![list(&[7, 8, 9])], &mut script);
    // 100 + 1 + 2 + (3 + 4 + 5) * 10 = 223.
    match out {
        Outcome::Completed(v) => assert_eq!(v, Value::ok(list(&[223, 3]))),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_effect_error_propagates_through_question_mark() {
    let src = r#"
        #[workflow]
        async fn set(key: String) -> Result<(), Error> {
            memcache::set(&key, &1, 60).await?;
            Ok(())
        }
    "#;
    let mut script = Script::default();
    script.push(
        "memcache.set",
        Response {
            result: Err(EffectError {
                kind: "down".into(),
                message: "no server".into(),
                retryable: false,
            }),
            delay_ms: 0,
        },
    );
    match run_with(src, vec![Value::Str("k".into())], &mut script) {
        Outcome::Completed(Value::Variant(v)) => assert_eq!(v.tag, "Err"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn strings_and_lists_through_methods() {
    let src = r#"
        #[workflow]
        async fn text(s: String) -> Vec<String> {
            let words: Vec<String> = s.trim().split(" ").collect();
            let mut sorted = words.clone();
            sorted.sort();
            let back: Vec<String> = words.iter().rev().collect();
            let n = "12".parse::<i64>().unwrap() + words.len() as i64;
            vec![sorted.join(","), back.join(" ").to_uppercase(), n.to_string(), s.replace(" ", "_")]
        }
    "#;
    let out = run(src, vec![Value::Str(" b a c ".into())]);
    let strs = |xs: &[&str]| Value::List(xs.iter().map(|s| Value::Str(s.to_string())).collect());
    assert_eq!(out, strs(&["a,b,c", "C A B", "15", "_b_a_c_"]));
}

#[test]
fn panic_and_failed_asserts_fail_the_run() {
    let src = r#"
        #[workflow]
        async fn check(n: i64) -> i64 {
            assert!(n >= 0, "negative: {}", n);
            if n > 100 { panic!("too big"); }
            n
        }
    "#;
    assert_eq!(run(src, vec![Value::Int(5)]), Value::Int(5));
    match run_with(src, vec![Value::Int(-1)], &mut Script::default()) {
        Outcome::Failed(e) => assert_eq!(
            e.value.get_field("message"),
            Some(&Value::Str("negative: -1".into()))
        ),
        other => panic!("{other:?}"),
    }
    match run_with(src, vec![Value::Int(101)], &mut Script::default()) {
        Outcome::Failed(e) => {
            assert_eq!(e.value.get_field("kind"), Some(&Value::Str("panic".into())))
        }
        other => panic!("{other:?}"),
    }
}
