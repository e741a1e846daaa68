//! One test per diagnostic of the lowering: the message (hint included, as
//! the proc macro shows it) and the line:col of the token it points at.

use drover_compiler::lower::{compile_file, compile_workflow, CompileOptions};

/// The errors of lowering the single function in `src`, as (line, col, text),
/// columns from 1.
fn errors(src: &str) -> Vec<(usize, usize, String)> {
    let item: syn::ItemFn = syn::parse_str(src).expect("test input parses as a fn");
    let (compiled, errs) = compile_workflow(&item, &CompileOptions::default());
    assert!(compiled.is_some(), "a best-effort result is still returned");
    errs.iter()
        .map(|e| {
            let at = e.span().start();
            (at.line, at.column + 1, e.to_string())
        })
        .collect()
}

/// Where the first `needle` (after `after`, when given) starts in `src`.
fn position(src: &str, needle: &str) -> (usize, usize) {
    let offset = src
        .find(needle)
        .unwrap_or_else(|| panic!("`{needle}` not in the source"));
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, col)
}

/// Asserts exactly one error, with `message`, at the first `token`.
#[track_caller]
fn check(src: &str, token: &str, message: &str) {
    let errs = errors(src);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let (line, col, text) = &errs[0];
    assert_eq!(text, message);
    assert_eq!((*line, *col), position(src, token), "span of {message:?}");
}

#[test]
fn unsafe_block() {
    check(
        "async fn w() { let x = unsafe { 1 }; }",
        "unsafe",
        "`unsafe` blocks can't run in a workflow: move this into an #[activity] function",
    );
}

#[test]
fn closure_outside_all_or_race() {
    check(
        "async fn w(v: Vec<i64>) { let f = |x: i64| x + 1; }",
        "|x",
        "closures are only supported inside `all(..)`/`race(..)`: write a `for` loop, or move this into a #[pure] function",
    );
}

#[test]
fn undefined_variable_with_close_names() {
    check(
        "async fn w(count: i64) -> i64 {\n    coutn + 1\n}",
        "coutn",
        "`coutn` is not defined: did you mean `count`?",
    );
    check("async fn w() -> i64 { zzz }", "zzz", "`zzz` is not defined");
}

#[test]
fn await_on_something_else() {
    check(
        "async fn w(foo: Foo) { foo.bar().await; }",
        "foo.bar()",
        "`.await` on `foo.bar()` is not a Drover effect, activity or child workflow: await an effect (`memcache::get(..)`), an #[activity] function, `child::run(..)`, `sleep(..)`, `signal::<T>(..)`, `now()`, `random()`, `uuid()`, `all(..)` or `race(..)`",
    );
}

#[test]
fn unknown_method_lists_the_nearest() {
    let errs = errors("async fn w(v: Vec<i64>) -> usize { v.lenn() }");
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].2.starts_with(
            "the method `.lenn()` isn't supported in a workflow: did you mean `len`? (supported: abs, as_ref,"
        ),
        "{}",
        errs[0].2
    );
    assert_eq!(
        (errs[0].0, errs[0].1),
        position("async fn w(v: Vec<i64>) -> usize { v.lenn() }", "lenn")
    );
}

#[test]
fn nested_items() {
    check(
        "async fn w() {\n    fn helper() {}\n}",
        "fn helper",
        "items (`fn`, `struct`, `impl`, `static`, ..) can't be declared inside a workflow: move it out of the workflow function",
    );
}

#[test]
fn async_block_outside_all_or_race() {
    check(
        "async fn w() { let f = async { 1 }; }",
        "async {",
        "`async` blocks are only supported inside `all(..)`/`race(..)`: await the calls directly, or run them in parallel with `join!`",
    );
}

#[test]
fn raw_pointers() {
    check(
        "async fn w(x: i64) { let p = &raw const x; }",
        "&raw",
        "raw pointers can't be used in a workflow: move this into an #[activity] function",
    );
}

#[test]
fn workflow_must_be_async() {
    check(
        "fn w() -> i64 { 1 }",
        "fn",
        "a workflow must be an `async fn`: write `async fn`",
    );
}

#[test]
fn generic_workflow() {
    check(
        "async fn w<T: Clone>(x: T) {}",
        "<T",
        "a workflow can't be generic: use concrete types; values cross into the workflow through serde",
    );
}

#[test]
fn self_parameter() {
    check(
        "async fn w(&self) {}",
        "&self",
        "a workflow can't take `self`: make it a free function outside any `impl` block",
    );
}

#[test]
fn destructuring_parameter() {
    check(
        "async fn w((a, b): (i64, i64)) {}",
        "(a, b)",
        "workflow parameters must be plain names: take the value whole and destructure it with `let` in the body",
    );
}

#[test]
fn statics_and_constants() {
    check(
        "async fn w() -> i64 { COUNTER + 1 }",
        "COUNTER",
        "`COUNTER` can't be read in a workflow: statics and constants aren't supported: use a literal, or pass the value in as a parameter",
    );
}

#[test]
fn threads() {
    check(
        "async fn w() { std::thread::sleep(d); }",
        "std::thread",
        "`std::thread::sleep` can't be used in a workflow: threads and tasks are not durable: wait with `drover::sleep(..).await`, or run branches in parallel with `join!`/`all(..)`",
    );
}

#[test]
fn io_calls() {
    check(
        "async fn w() { let s = std::fs::read_to_string(\"x\"); }",
        "std::fs",
        "`std::fs::read_to_string` does IO, which can't run inside a workflow: do IO in an #[activity] function, or with a Drover effect such as `http::request`",
    );
    check(
        "async fn w() { tokio::time::sleep(d).await; }",
        "tokio",
        "`tokio::time::sleep` does IO, which can't run inside a workflow: do IO in an #[activity] function, or with a Drover effect such as `http::request`",
    );
}

#[test]
fn clock_reads() {
    check(
        "async fn w() { let t = Instant::now(); }",
        "Instant",
        "`Instant::now()` reads the clock, which is not deterministic: use `drover::now().await`, which is journaled",
    );
}

#[test]
fn randomness() {
    check(
        "async fn w() { let r = rand::random(); }",
        "rand",
        "`rand::random` is random, which is not deterministic: use `drover::random().await`, which is journaled",
    );
}

#[test]
fn unknown_macro() {
    let src = "async fn w() { let v = vek![1]; }";
    let errs = errors(src);
    assert_eq!(errs.len(), 1);
    assert_eq!(
        errs[0].2,
        "the macro `vek!` isn't supported in a workflow: did you mean `vec`? (supported: assert!, assert_eq!, assert_ne!, format!, join!, matches!, panic!, todo!, unimplemented!, unreachable!, vec!)"
    );
    assert_eq!((errs[0].0, errs[0].1), position(src, "vek"));
}

#[test]
fn printing() {
    check(
        "async fn w() { println!(\"hi\"); }",
        "println",
        "`println!` can't be used in a workflow: its output would repeat on every replay: use `drover::log::info(\"message\", fields)`",
    );
}

#[test]
fn format_specs() {
    check(
        "async fn w(n: i64) -> String { format!(\"{:>5}\", n) }",
        "\"{:>5}\"",
        "the format spec `{:>5}` isn't supported in a workflow: use `{}` or `{:?}`, and format the value in a #[pure] function",
    );
}

#[test]
fn struct_update() {
    check(
        "async fn w(b: S) -> S { S { a: 1, ..b } }",
        "..b",
        "struct update syntax `..base` isn't supported in a workflow: write out every field",
    );
}

#[test]
fn unknown_effect() {
    check(
        "async fn w() { memcache::gett(\"k\").await; }",
        "memcache::gett",
        "`memcache.gett` is not a Drover effect: did you mean `memcache.get` or `memcache.gets`?",
    );
}

#[test]
fn effect_arity() {
    check(
        "async fn w() { memcache::set(\"k\", 1).await; }",
        "memcache::set",
        "`memcache::set` takes 3 arguments (key, value, ttl_s), not 2: pass `None` for an optional argument",
    );
}

#[test]
fn effect_not_awaited() {
    check(
        "async fn w() { let f = memcache::get(\"k\"); }",
        "memcache::get",
        "`memcache::get(..)` is asynchronous and must be awaited: add `.await`",
    );
}

#[test]
fn refutable_let() {
    check(
        "async fn w(o: Option<i64>) { let Some(x) = o; }",
        "Some(x)",
        "the pattern `Some(x)` might not match here: use `if let`, `let .. else` or `match`",
    );
}

#[test]
fn break_outside_loop() {
    check(
        "async fn w() { break; }",
        "break",
        "`break`/`continue` outside of a loop",
    );
}

#[test]
fn break_value_outside_loop_expression() {
    check(
        "async fn w() { while true { break 5; } }",
        "5",
        "`break 5` with a value is only allowed in `loop`: use `loop`, or assign the value to a variable",
    );
}

#[test]
fn unknown_loop_label() {
    check(
        "async fn w() { loop { break 'nope; } }",
        "break",
        "no enclosing loop is labeled `'nope`",
    );
}

#[test]
fn bitwise_operators() {
    check(
        "async fn w(a: i64) -> i64 { a << 2 }",
        "<<",
        "the operator `<<` isn't supported in a workflow: compute this in a #[pure] function",
    );
}

#[test]
fn unsupported_casts() {
    check(
        "async fn w(a: i64) -> char { a as char }",
        "char }",
        "casting to `char` isn't supported in a workflow: cast to a number type (`as f64`, `as i64`), or convert in a #[pure] function",
    );
}

#[test]
fn select_macro() {
    check(
        "async fn w() { select! { a = x => 1 } }",
        "select",
        "`select!` isn't supported in a workflow: use `race(..).await`, which is durable",
    );
}

#[test]
fn retry_needs_literals() {
    check(
        "async fn w(n: u32) { memcache::get(\"k\").retry(n, 1, 2).await; }",
        "retry",
        "`.retry(..)` takes literal arguments: write `.retry(3, Duration::from_millis(100), Duration::from_secs(10))` or `.timeout(Duration::from_secs(5))`",
    );
}

#[test]
fn log_message_must_be_literal() {
    check(
        "async fn w(m: String) { log::info(m, ()); }",
        "m, ()",
        "the message of `log::..` must be a string literal: put the changing parts in the fields: `log::info(\"charged\", &order)`",
    );
}

#[test]
fn integer_too_large() {
    check(
        "async fn w() -> u64 { 18446744073709551615 }",
        "1844",
        "this integer doesn't fit a 64-bit signed int: Drover ints are i64",
    );
}

#[test]
fn let_else_must_diverge() {
    check(
        "async fn w(o: Option<i64>) { let Some(x) = o else { 1 }; }",
        "{ 1 }",
        "the `else` of `let .. else` must not fall through: end it with `return`, `break` or `continue`",
    );
}

#[test]
fn unknown_associated_function() {
    check(
        "async fn w() { let x = Foo::build(); }",
        "Foo::build",
        "`Foo::build` can't be called in a workflow: supported are `Error::new(kind, message)`, `String::new()`, `String::from(s)`, `Vec::new()`, `HashMap::new()`, `BTreeMap::new()` and `Duration::from_millis/from_secs/from_mins(n)`; call a #[pure] function for the rest",
    );
}

#[test]
fn signal_name_must_be_literal() {
    check(
        "async fn w(n: String) { let v: bool = signal::<bool>(n).await; }",
        "n).await",
        "the name of a signal must be a string literal: write `signal::<T>(\"approved\")`",
    );
}

#[test]
fn activity_called_without_await_in_a_file() {
    let src = "#[activity]\nasync fn scan(x: i64) -> i64 { x }\n#[workflow]\nasync fn w() { let v = scan(1); }\n";
    let errs = compile_file("f.rs", src).expect_err("rejected");
    assert_eq!(errs.errors.len(), 1);
    let e = &errs.errors[0];
    assert_eq!(e.message, "`scan(..)` is asynchronous and must be awaited");
    assert_eq!(e.help.as_deref(), Some("add `.await`"));
    assert_eq!(e.line_col, position(src, "scan(1)"));
}

#[test]
fn workflow_in_impl_block() {
    let src = "struct S;\nimpl S {\n    #[workflow]\n    async fn w(&self) {}\n}\n";
    let errs = compile_file("f.rs", src).expect_err("rejected");
    assert_eq!(errs.errors.len(), 1);
    assert_eq!(
        errs.errors[0].message,
        "a #[workflow] can't be a method in an `impl` block"
    );
    assert_eq!(errs.errors[0].line_col, position(src, "w(&self)"));
}

#[test]
fn every_error_is_collected() {
    let src = "async fn w() { unsafe { 1 }; let a = missing; println!(\"x\"); }";
    let errs = errors(src);
    assert_eq!(errs.len(), 3, "{errs:#?}");
}

#[test]
fn file_errors_render_with_labels_and_help() {
    let src = "#[workflow]\nasync fn w() {\n    let x = unsafe { 1 };\n}\n";
    let errs = compile_file("w.rs", src).expect_err("rejected");
    let text = drover_ir::diagnostics::render(&errs);
    assert!(text.contains("1 error in w.rs"), "{text}");
    assert!(
        text.contains("`unsafe` blocks can't run in a workflow"),
        "{text}"
    );
    assert!(
        text.contains("move this into an #[activity] function"),
        "{text}"
    );
    assert!(text.contains("w.rs:3:13"), "{text}");
}

#[test]
fn odd_inputs_never_panic() {
    // Every kind of expression, pattern and statement the subset refuses,
    // and some it accepts in odd places: errors, never a panic.
    let bodies = [
        "let x = [0; 3]; let y = x[..]; let z = (..);",
        "let a = try { 1 }; let b = yield 1; let c = const { 1 };",
        "match x { [a, .., b] => {}, box y => {}, &(ref m, _) => {}, A::B::C => {} }",
        "let <i64 as T>::X = 1; <T as U>::f(); x.0.1 = 2; (a, b) = (1, 2);",
        "for x in .. {} for y in ..5 {} loop { continue 'a; } 'b: { break 'b; }",
        "async move {}.await; (|| 1)(); f()()(); x?.y?.z?;",
        "join!(); all().await; race(1, 2).await; all(v.iter().map(|a, b| a)).await;",
        "format!(); format!(x); format!(\"{\"); format!(\"}\"); format!(\"{9}\", 1); format!(\"{nope}\");",
        "signal().await; sleep().await; now(1).await; foo::bar::run().await; x.await.await;",
        "let v = vec![1; 2]; assert!(); assert_eq!(1); matches!(); matches!(x, );",
        "let s = S { 0: 1 }; let t = -\"s\"; let u = -1.5; let w = 1e999; let c = c\"x\";",
        "log::info(); log::trace(\"m\", 1, 2); log::debug(\"m\");",
        "let (a, .., b) = t; let [x, y] = l else { return; }; if let A | B(z) = q {}",
        "std::process::exit(1); thread_local!{}; x as u8 as f32 as String;",
        "let y = match x { _ if x > 1 => 1, _ => 2 }; match x {} let z = loop {};",
        "let mut v = vec![]; v[0] = 1; v.len(); let (a, b); a = 1; b = 2;",
    ];
    for body in bodies {
        let src = format!("async fn w(x: i64) {{ {body} }}");
        if let Ok(item) = syn::parse_str::<syn::ItemFn>(&src) {
            let (compiled, errs) = compile_workflow(&item, &CompileOptions::default());
            if errs.is_empty() {
                let report = drover_ir::verify::verify(&compiled.expect("compiled").module);
                assert!(!report.has_errors(), "{body}: {:?}", report.diags);
            }
        }
    }
    let deep = format!(
        "async fn w() -> i64 {{ {}1{} }}",
        "(".repeat(300),
        ")".repeat(300)
    );
    let item: syn::ItemFn = syn::parse_str(&deep).expect("parses");
    let (_, errs) = compile_workflow(&item, &CompileOptions::default());
    assert!(errs
        .iter()
        .any(|e| e.to_string().contains("nests too deeply")));
}
