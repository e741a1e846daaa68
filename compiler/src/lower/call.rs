//! Calls, awaits and macros: effects, activities, child workflows, pure
//! functions, `sleep`/`signal`/`now`, `join!`/`all`/`race`, `log`, and the
//! macros of the subset. The surface is `shared-notes/surface.md`.
//!
//! | Rust | IR |
//! |---|---|
//! | `ns::op(args).await` (`ns` a built-in namespace) | `perform ns.op(args)`, declared `effect ns.op(catalog params)` |
//! | `f(args).await` | `perform f(args)`, declared `activity f(params)` |
//! | `.retry(n, d, d)` / `.timeout(d)` before `.await` | the `perform`'s policy (multiplier 2) |
//! | `child::run(args).await`, or `f(args).await` for a known `#[workflow] f` | `call child(args)` |
//! | `sleep(d).await` | `sleep rD` (a `Duration` is an int of milliseconds) |
//! | `signal::<T>("name").await` | `signal name` |
//! | `now().await`, `random().await`, `uuid().await` | `perform sys.now()` .. then `unwrap` |
//! | `join!(a, b)` [`.await`] | `spawn` per future, `join` each, `list` of the results |
//! | `all(xs.iter().map(\|x\| F)).await` | a loop `spawn`ing one fiber per element, then `join`ing each into a list |
//! | `race(..).await` | the same spawns, then `race` (gives `[index, value]`) |
//! | `g(args)` | `pure g(args)` |
//! | `log::info("msg", fields)` | `log info, "msg", rF` |
//! | `Error::new(k, m)` | `record {kind, message}` |
//! | `String::new()`, `Vec::new()`, `HashMap::new()` | `""`, `[]`, `{}` |
//! | `Duration::from_secs(n)` | `n * 1000` (milliseconds) |
//! | `format!("{} {x}", a)` | `format "{} {}", (a, x)` |
//! | `vec![a, b]` | `list (a, b)` |
//! | `matches!(e, P)` | the pattern's tests, giving a bool |
//! | `assert!(c)`, `assert_eq!(a, b)` | `br`, `fail {kind: "assert", message}` |
//! | `panic!(..)`, `unreachable!(..)`, `todo!(..)` | `fail {kind: "panic", message}` |
//!
//! Methods are in [`METHODS`].

use drover_ir::{
    catalog, Builtin, EffectKind, Inst, LogLevel, Policy, Reg, RetryPolicy, Symbol, Value,
};
use proc_macro2::Span;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, Lit, Token};

use super::context::Lowerer;
use super::diag::{did_you_mean, nearest, show, Diag};
use super::expr::{last_segment, starts_upper};

/// The methods a workflow may call, and what each lowers to:
///
/// | method | IR |
/// |---|---|
/// | `clone`, `to_owned`, `into`, `as_str`, `as_ref`, `iter`, `into_iter`, `collect`, `cloned`, `copied`, `to_vec`, `borrow` | the value itself |
/// | `len`, `is_empty`, `keys`, `values`, `trim`, `abs`, `sum`, `to_string`, `is_some`, `is_none`, `is_ok`, `is_err` | the builtin of that name |
/// | `to_uppercase`, `to_lowercase`, `rev` | `to_upper`, `to_lower`, `reverse` |
/// | `contains(x)`, `get(k)`, `starts_with(s)`, `ends_with(s)`, `split(s)`, `join(s)`, `unwrap_or(d)`, `min(b)`, `max(b)` | the builtin of that name |
/// | `replace(a, b)` | `replace` |
/// | `parse::<i64>()` (any int type) | `parse_int` |
/// | `unwrap()`, `expect(msg)` | `unwrap` |
/// | `first()` | `get(v, 0)` |
/// | `v.push(x)`, `m.insert(k, v)`, `v.sort()`, `v.extend(w)` | `v = push(v, x)`, `m = insert(m, k, v)`, `v = sort(v)`, `v = add v, w` |
/// | `m.remove(k)` | `old = get(m, k)`, `m = remove(m, k)`; the value is `old` |
pub const METHODS: &[&str] = &[
    "abs",
    "as_ref",
    "as_str",
    "borrow",
    "clone",
    "cloned",
    "collect",
    "contains",
    "copied",
    "ends_with",
    "expect",
    "extend",
    "first",
    "get",
    "insert",
    "into",
    "into_iter",
    "is_empty",
    "is_err",
    "is_none",
    "is_ok",
    "is_some",
    "iter",
    "join",
    "keys",
    "len",
    "max",
    "min",
    "parse",
    "push",
    "remove",
    "replace",
    "rev",
    "sort",
    "sort_unstable",
    "split",
    "starts_with",
    "sum",
    "to_lowercase",
    "to_owned",
    "to_string",
    "to_uppercase",
    "to_vec",
    "trim",
    "unwrap",
    "unwrap_or",
    "values",
];

/// The macros a workflow may use.
const MACROS: &[&str] = &[
    "assert",
    "assert_eq",
    "assert_ne",
    "format",
    "join",
    "matches",
    "panic",
    "todo",
    "unimplemented",
    "unreachable",
    "vec",
];

/// What the hint of an unsupported `.await` lists.
const AWAITABLE: &str = "await an effect (`memcache::get(..)`), an #[activity] function, `child::run(..)`, `sleep(..)`, `signal::<T>(..)`, `now()`, `random()`, `uuid()`, `all(..)` or `race(..)`";

/// The segments of a path as strings, without a leading `drover::`, which
/// only says where the facade lives.
fn segments(path: &syn::Path) -> Vec<String> {
    let mut segs: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    if segs.len() > 1 && segs[0] == "drover" {
        segs.remove(0);
    }
    segs
}

/// The path of a call's function, when it is one.
fn call_path(c: &syn::ExprCall) -> Option<&syn::Path> {
    match &*c.func {
        Expr::Path(p) if p.qself.is_none() => Some(&p.path),
        _ => None,
    }
}

/// Strips parentheses and references, which do not change a future.
fn peel(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => peel(&p.expr),
        Expr::Group(g) => peel(&g.expr),
        Expr::Reference(r) => peel(&r.expr),
        other => other,
    }
}

impl Lowerer<'_> {
    /// Refuses calls to APIs that would break determinism or do IO inline,
    /// with what to use instead. True when the call was refused.
    fn forbidden_call(&mut self, segs: &[String], span: Span) -> bool {
        let s = |i: usize| segs.get(i).map(String::as_str).unwrap_or("");
        let last = segs.last().map(String::as_str).unwrap_or("");
        let n = segs.len();
        let prev = if n >= 2 { s(n - 2) } else { "" };
        let shown = segs.join("::");
        let (msg, help) = if matches!(s(0), "std" | "core" | "tokio" | "async_std")
            && segs.iter().any(|p| p == "thread" || p == "task")
            || prev == "thread"
        {
            (
                format!("`{shown}` can't be used in a workflow: threads and tasks are not durable"),
                "wait with `drover::sleep(..).await`, or run branches in parallel with `join!`/`all(..)`",
            )
        } else if matches!(prev, "Instant" | "SystemTime" | "Utc" | "Local") && last == "now" {
            (
                format!("`{shown}()` reads the clock, which is not deterministic"),
                "use `drover::now().await`, which is journaled",
            )
        } else if s(0) == "rand" || matches!(last, "thread_rng" | "rng") {
            (
                format!("`{shown}` is random, which is not deterministic"),
                "use `drover::random().await`, which is journaled",
            )
        } else if prev == "Uuid" && last.starts_with("new_v") {
            (
                format!("`{shown}()` is random, which is not deterministic"),
                "use `drover::uuid().await`, which is journaled",
            )
        } else if matches!(s(0), "std" | "core")
            && matches!(s(1), "fs" | "net" | "io" | "process" | "env")
            || matches!(
                s(0),
                "tokio" | "async_std" | "reqwest" | "hyper" | "fs" | "File" | "TcpStream"
            )
        {
            (
                format!("`{shown}` does IO, which can't run inside a workflow"),
                "do IO in an #[activity] function, or with a Drover effect such as `http::request`",
            )
        } else {
            return false;
        };
        self.error(Diag::new(span, msg, help));
        true
    }

    /// `f(args)` without `.await`.
    pub(crate) fn call(&mut self, c: &syn::ExprCall) -> Option<Reg> {
        let Some(path) = call_path(c) else {
            return Some(self.fail(Diag::new(
                c.func.span(),
                format!("`{}` can't be called in a workflow", show(&*c.func)),
                "call a named #[pure] function, activity or effect",
            )));
        };
        let span = c.span();
        let segs = segments(path);
        if self.forbidden_call(&segs, span) {
            return Some(self.null());
        }
        let last = last_segment(path);
        let n = segs.len();
        let prev = if n >= 2 { segs[n - 2].as_str() } else { "" };
        let args: Vec<&Expr> = c.args.iter().collect();

        // Constructors: `Some(x)`, `Ok(x)`, `Err(e)`, `E::V(x, y)`.
        if starts_upper(&last) {
            if last == "Some" {
                return match args.as_slice() {
                    [one] => Some(self.expr(one)),
                    _ => Some(self.fail(Diag::bare(span, "`Some` takes one value"))),
                };
            }
            let payload = match args.as_slice() {
                [] => None,
                [one] => Some(self.expr(one)),
                many => {
                    let items = many.iter().map(|a| self.expr(a)).collect();
                    let dst = self.em.reg();
                    self.em.emit(Inst::List { dst, items });
                    Some(dst)
                }
            };
            self.at(span);
            return Some(self.variant(&last, payload));
        }

        // An awaitable called without `.await` does nothing in Rust either.
        if self.is_future_call(&segs) {
            return Some(self.fail(Diag::new(
                span,
                format!(
                    "`{}(..)` is asynchronous and must be awaited",
                    segs.join("::")
                ),
                "add `.await`",
            )));
        }

        if prev == "log" && LogLevel::from_name(&last).is_some() {
            return self.log_call(&last, &args, span);
        }
        if starts_upper(prev) {
            return Some(self.assoc_call(prev, &last, &args, span));
        }
        if matches!(segs.as_slice(), [a, b, f] if a == "std" && b == "cmp" && (f == "max" || f == "min"))
        {
            let func = if last == "max" {
                Builtin::Max
            } else {
                Builtin::Min
            };
            return Some(self.builtin_call(func, &args, span));
        }
        if n == 1 || self.items.pures.contains(&last) {
            let argv: Vec<Reg> = args.iter().map(|a| self.expr(a)).collect();
            Self::note(&mut self.pures, &last, path.span());
            let dst = self.em.reg();
            self.at(span);
            self.em.emit(Inst::CallPure {
                dst,
                func: Symbol(last),
                args: argv,
            });
            return Some(dst);
        }
        Some(self.fail(Diag::new(
            path.span(),
            format!("`{}` can't be called in a workflow", show(path)),
            "only #[pure] functions, activities, effects and child workflows can be called; move this into an #[activity] or #[pure] function",
        )))
    }

    /// Whether a call path names something that must be awaited.
    fn is_future_call(&self, segs: &[String]) -> bool {
        let n = segs.len();
        let last = segs.last().map(String::as_str).unwrap_or("");
        if n == 1 {
            return matches!(
                last,
                "sleep" | "signal" | "now" | "random" | "uuid" | "all" | "race"
            ) || self.items.activities.contains_key(last)
                || self.items.workflows.contains_key(last);
        }
        let ns = segs[n - 2].as_str();
        catalog::NAMESPACES.contains(&ns) || (last == "run" && !starts_upper(ns))
    }

    /// `Type::function(args)`: the few constructors the subset knows.
    fn assoc_call(&mut self, ty: &str, f: &str, args: &[&Expr], span: Span) -> Reg {
        let argv: Vec<Reg> = args.iter().map(|a| self.expr(a)).collect();
        self.at(span);
        match (ty, f, argv.as_slice()) {
            ("Error", "new", [kind, message]) => {
                let dst = self.em.reg();
                self.em.emit(Inst::Record {
                    dst,
                    fields: vec![
                        (Symbol::from("kind"), *kind),
                        (Symbol::from("message"), *message),
                    ],
                });
                dst
            }
            ("String", "new", []) => self.em.konst(Value::Str(String::new())),
            ("String", "from", [x]) => *x,
            ("Vec", "new" | "with_capacity", _) | ("VecDeque", "new", []) => {
                let dst = self.em.reg();
                self.em.emit(Inst::List { dst, items: vec![] });
                dst
            }
            ("HashMap" | "BTreeMap", "new", []) => {
                let dst = self.em.reg();
                self.em.emit(Inst::Record { dst, fields: vec![] });
                dst
            }
            ("Duration", "from_millis" | "from_secs" | "from_mins", [x]) => {
                let factor = match f {
                    "from_millis" => 1,
                    "from_secs" => 1_000,
                    _ => 60_000,
                };
                if factor == 1 {
                    return *x;
                }
                let k = self.em.konst(Value::Int(factor));
                let dst = self.em.reg();
                self.em.emit(Inst::Mul { dst, a: *x, b: k });
                dst
            }
            _ => self.fail(Diag::new(
                span,
                format!("`{ty}::{f}` can't be called in a workflow"),
                "supported are `Error::new(kind, message)`, `String::new()`, `String::from(s)`, `Vec::new()`, `HashMap::new()`, `BTreeMap::new()` and `Duration::from_millis/from_secs/from_mins(n)`; call a #[pure] function for the rest",
            )),
        }
    }

    /// `builtin func(args)` after checking the argument count.
    fn builtin_call(&mut self, func: Builtin, args: &[&Expr], span: Span) -> Reg {
        if args.len() != func.arity() {
            return self.fail(Diag::bare(
                span,
                format!("`{}` takes {} arguments", func.name(), func.arity()),
            ));
        }
        let argv: Vec<Reg> = args.iter().map(|a| self.expr(a)).collect();
        let dst = self.em.reg();
        self.at(span);
        self.em.emit(Inst::CallBuiltin {
            dst,
            func,
            args: argv,
        });
        dst
    }

    /// `log::LEVEL("message", fields)`.
    fn log_call(&mut self, level: &str, args: &[&Expr], span: Span) -> Option<Reg> {
        let level = LogLevel::from_name(level).unwrap_or(LogLevel::Info);
        let message = match args.first().map(|a| peel(a)) {
            Some(Expr::Lit(syn::ExprLit {
                lit: Lit::Str(s), ..
            })) => s.value(),
            _ => {
                self.error(Diag::new(
                    args.first().map_or(span, |a| a.span()),
                    "the message of `log::..` must be a string literal",
                    "put the changing parts in the fields: `log::info(\"charged\", &order)`",
                ));
                return None;
            }
        };
        let fields = match args.get(1..) {
            Some([]) | None => None,
            Some([f]) => Some(self.expr(f)),
            Some(_) => {
                self.error(Diag::new(
                    span,
                    "`log::..` takes a message and one value of fields",
                    "group the fields in a struct or a tuple",
                ));
                return None;
            }
        };
        self.at(span);
        self.em.emit(Inst::Log {
            level,
            message,
            fields,
        });
        None
    }

    /// `e.await`.
    pub(crate) fn await_expr(&mut self, a: &syn::ExprAwait) -> Option<Reg> {
        self.future(&a.base, a.span())
    }

    /// Runs a future expression to completion and gives its value: the
    /// forms of surface.md, with an optional `.retry(..)`/`.timeout(..)`.
    pub(crate) fn future(&mut self, e: &Expr, span: Span) -> Option<Reg> {
        let mut e = peel(e);
        let mut policy = Policy::default();
        let mut policy_span = None;
        while let Expr::MethodCall(m) = e {
            let name = m.method.to_string();
            if name != "retry" && name != "timeout" {
                break;
            }
            policy_span.get_or_insert(m.method.span());
            self.policy_part(&name, m, &mut policy);
            e = peel(&m.receiver);
        }
        let refuse_policy = |lw: &mut Self| {
            if let Some(s) = policy_span {
                lw.error(Diag::new(
                    s,
                    "`.retry(..)`/`.timeout(..)` only apply to effects and activities",
                    "remove it; retries of child workflows belong in the child",
                ));
            }
        };
        match e {
            Expr::Call(c) => {
                let Some(path) = call_path(c) else {
                    return Some(self.not_a_future(e, span));
                };
                let segs = segments(path);
                if self.forbidden_call(&segs, c.span()) {
                    return Some(self.null());
                }
                let args: Vec<&Expr> = c.args.iter().collect();
                let n = segs.len();
                let last = segs[n - 1].as_str();
                if n >= 2 && catalog::NAMESPACES.contains(&segs[n - 2].as_str()) {
                    let name = format!("{}.{}", segs[n - 2], last);
                    return Some(self.effect_call(&name, &args, policy, c.span(), path.span()));
                }
                if n == 1 {
                    match last {
                        "sleep" => {
                            refuse_policy(self);
                            let [d] = args.as_slice() else {
                                return Some(
                                    self.fail(Diag::bare(c.span(), "`sleep` takes one duration")),
                                );
                            };
                            let millis = self.expr(d);
                            self.at(c.span());
                            self.em.emit(Inst::Sleep { millis });
                            return None;
                        }
                        "now" | "random" | "uuid" => {
                            refuse_policy(self);
                            let name = format!("sys.{last}");
                            let r = self.effect_call(
                                &name,
                                &args,
                                Policy::default(),
                                c.span(),
                                path.span(),
                            );
                            let dst = self.em.reg();
                            self.em.emit(Inst::Unwrap { dst, src: r });
                            return Some(dst);
                        }
                        "signal" => {
                            refuse_policy(self);
                            return Some(self.signal(&args, c.span()));
                        }
                        "all" | "race" => {
                            refuse_policy(self);
                            return Some(self.parallel(last == "race", &args, c.span()));
                        }
                        _ => {}
                    }
                    if self.items.workflows.contains_key(last) {
                        refuse_policy(self);
                        return Some(self.child_call(last, &args, c.span(), path.span()));
                    }
                    return Some(self.activity_call(last, &args, policy, c.span(), path.span()));
                }
                if last == "run" && !starts_upper(&segs[n - 2]) {
                    refuse_policy(self);
                    let child = segs[n - 2].clone();
                    return Some(self.child_call(&child, &args, c.span(), path.span()));
                }
                Some(self.not_a_future(e, span))
            }
            Expr::Macro(m) if last_segment(&m.mac.path) == "join" => {
                refuse_policy(self);
                Some(self.join_macro(&m.mac))
            }
            _ => Some(self.not_a_future(e, span)),
        }
    }

    /// The error for `.await` on something that is no Drover future.
    fn not_a_future(&mut self, e: &Expr, span: Span) -> Reg {
        self.fail(Diag::new(
            span,
            format!(
                "`.await` on `{}` is not a Drover effect, activity or child workflow",
                show(e)
            ),
            AWAITABLE,
        ))
    }

    /// One `.retry(attempts, initial, max)` or `.timeout(d)` of a chain.
    fn policy_part(&mut self, name: &str, m: &syn::ExprMethodCall, policy: &mut Policy) {
        let args: Vec<&Expr> = m.args.iter().collect();
        let bad = |lw: &mut Self| {
            lw.error(Diag::new(
                m.method.span(),
                format!("`.{name}(..)` takes literal arguments"),
                "write `.retry(3, Duration::from_millis(100), Duration::from_secs(10))` or `.timeout(Duration::from_secs(5))`",
            ));
        };
        if name == "retry" {
            let parsed = match args.as_slice() {
                [a, i, x] => match (int_lit(a), duration_ms(i), duration_ms(x)) {
                    (Some(a), Some(i), Some(x)) => u32::try_from(a).ok().map(|a| (a, i, x)),
                    _ => None,
                },
                _ => None,
            };
            match parsed {
                Some((max_attempts, initial_backoff_ms, max_backoff_ms)) => {
                    policy.retry = Some(RetryPolicy {
                        max_attempts,
                        initial_backoff_ms,
                        max_backoff_ms,
                        multiplier: 2,
                    })
                }
                None => bad(self),
            }
        } else {
            match args.as_slice() {
                [d] => match duration_ms(d) {
                    Some(ms) => policy.timeout_ms = Some(ms),
                    None => bad(self),
                },
                _ => bad(self),
            }
        }
    }

    /// `perform ns.op(args)` for a built-in effect.
    fn effect_call(
        &mut self,
        name: &str,
        args: &[&Expr],
        policy: Policy,
        span: Span,
        path_span: Span,
    ) -> Reg {
        let Some(sig) = catalog::builtin_effect(name) else {
            let ns = catalog::namespace(name);
            let ops: Vec<&str> = catalog::BUILTIN_EFFECTS
                .iter()
                .filter(|e| e.namespace() == ns)
                .map(|e| e.name)
                .collect();
            // Compare operation names alone: the shared namespace would make
            // every operation look close.
            let op = name.split_once('.').map_or(name, |(_, op)| op);
            let close: Vec<&str> = nearest(
                op,
                ops.iter()
                    .map(|o| o.split_once('.').map_or(*o, |(_, op)| op)),
            )
            .into_iter()
            .filter_map(|short| {
                ops.iter()
                    .copied()
                    .find(|o| o.ends_with(&format!(".{short}")))
            })
            .collect();
            let help = did_you_mean(&close)
                .unwrap_or_else(|| format!("the `{ns}` effects are {}", ops.join(", ")));
            return self.fail(Diag::new(
                path_span,
                format!("`{name}` is not a Drover effect"),
                help,
            ));
        };
        if args.len() != sig.params.len() {
            return self.fail(Diag::new(
                span,
                format!(
                    "`{}` takes {} arguments ({}), not {}",
                    name.replace('.', "::"),
                    sig.params.len(),
                    sig.params.join(", "),
                    args.len()
                ),
                "pass `None` for an optional argument",
            ));
        }
        let argv: Vec<Reg> = args.iter().map(|a| self.expr(a)).collect();
        let params = sig.params.iter().map(|p| (*p).to_owned()).collect();
        let effect = self.em.effect(EffectKind::Builtin, name, params);
        self.perform(effect, argv, policy, span)
    }

    /// `perform f(args)` for an `#[activity]`.
    fn activity_call(
        &mut self,
        name: &str,
        args: &[&Expr],
        policy: Policy,
        span: Span,
        path_span: Span,
    ) -> Reg {
        let params: Vec<String> = match self.items.activities.get(name) {
            Some(p) => p.clone(),
            None => (0..args.len()).map(|i| format!("p{i}")).collect(),
        };
        if params.len() != args.len() {
            return self.fail(Diag::bare(
                span,
                format!(
                    "the activity `{name}` takes {} arguments, not {}",
                    params.len(),
                    args.len()
                ),
            ));
        }
        let argv: Vec<Reg> = args.iter().map(|a| self.expr(a)).collect();
        Self::note(&mut self.activities, name, path_span);
        let effect = self.em.effect(EffectKind::Activity, name, params);
        self.perform(effect, argv, policy, span)
    }

    /// Emits the `perform`, or reports an effect used with two arities.
    fn perform(
        &mut self,
        effect: Option<drover_ir::EffectRef>,
        args: Vec<Reg>,
        policy: Policy,
        span: Span,
    ) -> Reg {
        let Some(effect) = effect else {
            return self.fail(Diag::bare(
                span,
                "this activity is called with different numbers of arguments",
            ));
        };
        let dst = self.em.reg();
        self.at(span);
        self.em.emit(Inst::Perform {
            dst,
            effect,
            args,
            policy,
        });
        dst
    }

    /// `call child(args)`.
    fn child_call(&mut self, child: &str, args: &[&Expr], span: Span, path_span: Span) -> Reg {
        let argv: Vec<Reg> = args.iter().map(|a| self.expr(a)).collect();
        Self::note(&mut self.children, child, path_span);
        let dst = self.em.reg();
        self.at(span);
        self.em.emit(Inst::Call {
            dst,
            workflow: Symbol(child.to_owned()),
            args: argv,
        });
        dst
    }

    /// `signal::<T>("name")`.
    fn signal(&mut self, args: &[&Expr], span: Span) -> Reg {
        match args {
            [a] => match peel(a) {
                Expr::Lit(syn::ExprLit {
                    lit: Lit::Str(s), ..
                }) => {
                    let dst = self.em.reg();
                    self.at(span);
                    self.em.emit(Inst::AwaitSignal {
                        dst,
                        name: Symbol(s.value()),
                    });
                    dst
                }
                other => self.fail(Diag::new(
                    other.span(),
                    "the name of a signal must be a string literal",
                    "write `signal::<T>(\"approved\")`",
                )),
            },
            _ => self.fail(Diag::bare(span, "`signal` takes one name")),
        }
    }

    /// Lowers `body` as a fiber started here; gives the fiber's handle. The
    /// fiber sees a copy of the registers, and `break`/`continue` cannot
    /// leave it.
    fn fiber(&mut self, body: impl FnOnce(&mut Self) -> Option<Reg>) -> Reg {
        let start = self.em.block("branch");
        let handle = self.em.reg();
        self.em.emit(Inst::Spawn {
            dst: handle,
            target: start,
        });
        let resume = self.em.current();
        let loops = std::mem::take(&mut self.loops);
        let loc = self.em.loc;
        self.em.switch_to(start);
        self.push_scope();
        let v = body(self);
        let value = match v {
            Some(r) => r,
            None => self.null(),
        };
        if !self.em.terminated() {
            self.em.emit(Inst::Ret { value });
        }
        self.pop_scope();
        self.loops = loops;
        self.em.loc = loc;
        self.em.switch_to(resume);
        handle
    }

    /// `join!(a, b, ..)`: one fiber per future, joined in order into a list.
    fn join_macro(&mut self, mac: &syn::Macro) -> Reg {
        let Some(futures) = self.macro_args(mac) else {
            return self.null();
        };
        let futures: Vec<Expr> = futures.into_iter().collect();
        self.join_list(&futures, mac.span())
    }

    /// Spawns one fiber per future and joins them into a list.
    fn join_list(&mut self, futures: &[Expr], span: Span) -> Reg {
        let handles: Vec<Reg> = futures
            .iter()
            .map(|f| self.fiber(|lw| lw.future(f, f.span())))
            .collect();
        self.at(span);
        let items = handles
            .into_iter()
            .map(|fiber| {
                let dst = self.em.reg();
                self.em.emit(Inst::Join { dst, fiber });
                dst
            })
            .collect();
        let dst = self.em.reg();
        self.em.emit(Inst::List { dst, items });
        dst
    }

    /// `all(..)`/`race(..)` over `xs.iter().map(|x| F)` or a list of futures.
    fn parallel(&mut self, race: bool, args: &[&Expr], span: Span) -> Reg {
        let what = if race { "race" } else { "all" };
        let form = |lw: &mut Self, at: Span| {
            lw.fail(Diag::new(
                at,
                format!("`{what}(..)` takes `LIST.iter().map(|x| FUTURE)` or `vec![FUTURE, ..]`"),
                "for example `all(ids.iter().map(|id| fetch(id.clone()))).await`",
            ))
        };
        let [arg] = args else {
            return form(self, span);
        };
        let handles = match peel(arg) {
            Expr::MethodCall(m) if m.method == "map" && m.args.len() == 1 => {
                let Expr::Closure(c) = &m.args[0] else {
                    return form(self, m.args[0].span());
                };
                if c.inputs.len() != 1 {
                    return form(self, c.span());
                }
                self.spawn_each(&m.receiver, c)
            }
            Expr::Macro(mac) if last_segment(&mac.mac.path) == "vec" => {
                let Some(futures) = self.macro_args(&mac.mac) else {
                    return self.null();
                };
                self.spawn_list(&futures.into_iter().collect::<Vec<_>>())
            }
            Expr::Array(a) => self.spawn_list(&a.elems.iter().cloned().collect::<Vec<_>>()),
            other => return form(self, other.span()),
        };
        self.at(span);
        if race {
            let dst = self.em.reg();
            self.em.emit(Inst::Race {
                dst,
                fibers: handles,
            });
            return dst;
        }
        self.join_all(handles)
    }

    /// Spawns a fiber per future; gives the list of handles.
    fn spawn_list(&mut self, futures: &[Expr]) -> Reg {
        let handles = futures
            .iter()
            .map(|f| self.fiber(|lw| lw.future(f, f.span())))
            .collect();
        let dst = self.em.reg();
        self.em.emit(Inst::List {
            dst,
            items: handles,
        });
        dst
    }

    /// A loop over the list that spawns the closure's future per element;
    /// gives the list of handles.
    fn spawn_each(&mut self, list: &Expr, c: &syn::ExprClosure) -> Reg {
        let mut enumerate = false;
        let list = self.iter_list(list, &mut enumerate);
        let n = self.em.reg();
        self.em.emit(Inst::CallBuiltin {
            dst: n,
            func: Builtin::Len,
            args: vec![list],
        });
        let i = self.em.konst(Value::Int(0));
        let handles = self.em.reg();
        self.em.emit(Inst::List {
            dst: handles,
            items: vec![],
        });
        let head = self.em.block("spawn");
        let body = self.em.block("spawn_body");
        let exit = self.em.block("spawned");
        self.em.jump(head);
        self.em.switch_to(head);
        self.em.branch_while_less(i, n, body, exit);
        self.em.switch_to(body);
        let mut item = self.em.reg();
        self.em.emit(Inst::Index {
            dst: item,
            base: list,
            key: i,
        });
        if enumerate {
            let pair = self.em.reg();
            self.em.emit(Inst::List {
                dst: pair,
                items: vec![i, item],
            });
            item = pair;
        }
        self.push_scope();
        if let Some(p) = c.inputs.first() {
            self.pattern(p, item, None);
        }
        let h = self.fiber(|lw| match peel(&c.body) {
            Expr::Async(a) => lw.block(&a.block, true),
            body => lw.future(body, body.span()),
        });
        self.pop_scope();
        self.em.emit(Inst::CallBuiltin {
            dst: handles,
            func: Builtin::Push,
            args: vec![handles, h],
        });
        let one = self.em.konst(Value::Int(1));
        self.em.emit(Inst::Add {
            dst: i,
            a: i,
            b: one,
        });
        self.em.jump(head);
        self.em.switch_to(exit);
        handles
    }

    /// Joins every fiber of a list of handles, in order, into a list.
    fn join_all(&mut self, handles: Reg) -> Reg {
        let n = self.em.reg();
        self.em.emit(Inst::CallBuiltin {
            dst: n,
            func: Builtin::Len,
            args: vec![handles],
        });
        let j = self.em.konst(Value::Int(0));
        let results = self.em.reg();
        self.em.emit(Inst::List {
            dst: results,
            items: vec![],
        });
        let head = self.em.block("join");
        let body = self.em.block("join_body");
        let exit = self.em.block("joined");
        self.em.jump(head);
        self.em.switch_to(head);
        self.em.branch_while_less(j, n, body, exit);
        self.em.switch_to(body);
        let h = self.em.reg();
        self.em.emit(Inst::Index {
            dst: h,
            base: handles,
            key: j,
        });
        let v = self.em.reg();
        self.em.emit(Inst::Join { dst: v, fiber: h });
        self.em.emit(Inst::CallBuiltin {
            dst: results,
            func: Builtin::Push,
            args: vec![results, v],
        });
        let one = self.em.konst(Value::Int(1));
        self.em.emit(Inst::Add {
            dst: j,
            a: j,
            b: one,
        });
        self.em.jump(head);
        self.em.switch_to(exit);
        results
    }

    /// A method call, by the table in [`METHODS`].
    pub(crate) fn method_call(&mut self, m: &syn::ExprMethodCall) -> Option<Reg> {
        let name = m.method.to_string();
        let span = m.method.span();
        let args: Vec<&Expr> = m.args.iter().collect();
        let want = |lw: &mut Self, n: usize| -> bool {
            if args.len() == n {
                return true;
            }
            lw.error(Diag::bare(
                span,
                format!(
                    "`.{name}(..)` takes {n} argument{}, not {}",
                    if n == 1 { "" } else { "s" },
                    args.len()
                ),
            ));
            false
        };
        let simple = |func: Builtin| Some(func);
        let unary = match name.as_str() {
            "clone" | "to_owned" | "into" | "as_str" | "as_ref" | "iter" | "into_iter"
            | "collect" | "cloned" | "copied" | "to_vec" | "borrow" => {
                want(self, 0);
                return self.expr_want(&m.receiver, true);
            }
            "len" => simple(Builtin::Len),
            "is_empty" => simple(Builtin::IsEmpty),
            "keys" => simple(Builtin::Keys),
            "values" => simple(Builtin::Values),
            "trim" => simple(Builtin::Trim),
            "abs" => simple(Builtin::Abs),
            "sum" => simple(Builtin::Sum),
            "to_string" => simple(Builtin::ToString),
            "is_some" => simple(Builtin::IsSome),
            "is_none" => simple(Builtin::IsNone),
            "is_ok" => simple(Builtin::IsOk),
            "is_err" => simple(Builtin::IsErr),
            "to_uppercase" => simple(Builtin::ToUpper),
            "to_lowercase" => simple(Builtin::ToLower),
            "rev" => simple(Builtin::Reverse),
            _ => None,
        };
        if let Some(func) = unary {
            want(self, 0);
            let r = self.expr(&m.receiver);
            let dst = self.em.reg();
            self.at(span);
            self.em.emit(Inst::CallBuiltin {
                dst,
                func,
                args: vec![r],
            });
            return Some(dst);
        }
        let binary = match name.as_str() {
            "contains" => Some(Builtin::Contains),
            "get" => Some(Builtin::Get),
            "starts_with" => Some(Builtin::StartsWith),
            "ends_with" => Some(Builtin::EndsWith),
            "split" => Some(Builtin::Split),
            "join" => Some(Builtin::Join),
            "unwrap_or" => Some(Builtin::UnwrapOr),
            "min" => Some(Builtin::Min),
            "max" => Some(Builtin::Max),
            _ => None,
        };
        if let Some(func) = binary {
            if !want(self, 1) {
                return Some(self.null());
            }
            let r = self.expr(&m.receiver);
            let a = self.expr(args[0]);
            let dst = self.em.reg();
            self.at(span);
            self.em.emit(Inst::CallBuiltin {
                dst,
                func,
                args: vec![r, a],
            });
            return Some(dst);
        }
        match name.as_str() {
            "replace" => {
                if !want(self, 2) {
                    return Some(self.null());
                }
                let r = self.expr(&m.receiver);
                let a = self.expr(args[0]);
                let b = self.expr(args[1]);
                let dst = self.em.reg();
                self.at(span);
                self.em.emit(Inst::CallBuiltin {
                    dst,
                    func: Builtin::Replace,
                    args: vec![r, a, b],
                });
                Some(dst)
            }
            "parse" => {
                want(self, 0);
                if let Some(t) = &m.turbofish {
                    let ty = show(&t.args);
                    let int = matches!(
                        ty.as_str(),
                        "i8" | "i16"
                            | "i32"
                            | "i64"
                            | "isize"
                            | "u8"
                            | "u16"
                            | "u32"
                            | "u64"
                            | "usize"
                    );
                    if !int {
                        return Some(self.fail(Diag::new(
                            t.span(),
                            format!("`.parse::<{ty}>()` isn't supported in a workflow; only integers parse"),
                            "parse other types in a #[pure] function",
                        )));
                    }
                }
                let r = self.expr(&m.receiver);
                let dst = self.em.reg();
                self.at(span);
                self.em.emit(Inst::CallBuiltin {
                    dst,
                    func: Builtin::ParseInt,
                    args: vec![r],
                });
                Some(dst)
            }
            "unwrap" | "expect" => {
                want(self, usize::from(name == "expect"));
                let src = self.expr(&m.receiver);
                let dst = self.em.reg();
                self.at(span);
                self.em.emit(Inst::Unwrap { dst, src });
                Some(dst)
            }
            "first" => {
                want(self, 0);
                let r = self.expr(&m.receiver);
                let zero = self.em.konst(Value::Int(0));
                let dst = self.em.reg();
                self.at(span);
                self.em.emit(Inst::CallBuiltin {
                    dst,
                    func: Builtin::Get,
                    args: vec![r, zero],
                });
                Some(dst)
            }
            "push" | "insert" | "sort" | "sort_unstable" | "extend" => {
                let (func, n) = match name.as_str() {
                    "push" => (Some(Builtin::Push), 1),
                    "insert" => (Some(Builtin::Insert), 2),
                    "extend" => (None, 1),
                    _ => (Some(Builtin::Sort), 0),
                };
                if !want(self, n) {
                    return None;
                }
                let r = self.expr(&m.receiver);
                let mut argv = vec![r];
                argv.extend(args.iter().map(|a| self.expr(a)));
                let dst = self.em.reg();
                self.at(span);
                match func {
                    Some(func) => self.em.emit(Inst::CallBuiltin {
                        dst,
                        func,
                        args: argv,
                    }),
                    None => self.em.emit(Inst::Add {
                        dst,
                        a: argv[0],
                        b: argv[1],
                    }),
                }
                self.assign(&m.receiver, dst);
                None
            }
            "remove" => {
                if !want(self, 1) {
                    return Some(self.null());
                }
                let r = self.expr(&m.receiver);
                let k = self.expr(args[0]);
                self.at(span);
                let old = self.em.reg();
                self.em.emit(Inst::CallBuiltin {
                    dst: old,
                    func: Builtin::Get,
                    args: vec![r, k],
                });
                let rest = self.em.reg();
                self.em.emit(Inst::CallBuiltin {
                    dst: rest,
                    func: Builtin::Remove,
                    args: vec![r, k],
                });
                self.assign(&m.receiver, rest);
                Some(old)
            }
            "retry" | "timeout" => Some(self.fail(Diag::new(
                span,
                format!("`.{name}(..)` sets the policy of an effect that is awaited"),
                "add `.await` after it",
            ))),
            _ => {
                let close = nearest(&name, METHODS.iter().copied());
                let mut help = did_you_mean(&close)
                    .map(|h| format!("{h} "))
                    .unwrap_or_default();
                help.push_str(&format!("(supported: {})", METHODS.join(", ")));
                Some(self.fail(Diag::new(
                    span,
                    format!("the method `.{name}()` isn't supported in a workflow"),
                    help,
                )))
            }
        }
    }

    /// Parses a macro's tokens as comma-separated expressions.
    fn macro_args(&mut self, mac: &syn::Macro) -> Option<Punctuated<Expr, Token![,]>> {
        match Punctuated::<Expr, Token![,]>::parse_terminated.parse2(mac.tokens.clone()) {
            Ok(args) => Some(args),
            Err(e) => {
                self.error(Diag::bare(e.span(), e.to_string()));
                None
            }
        }
    }

    /// A macro call, as an expression or a statement.
    pub(crate) fn macro_expr(&mut self, mac: &syn::Macro) -> Option<Reg> {
        let name = last_segment(&mac.path);
        let span = mac.path.span();
        self.at(span);
        match name.as_str() {
            "format" => {
                let args = self.macro_args(mac)?;
                Some(self.format(&args.into_iter().collect::<Vec<_>>(), mac.span()))
            }
            "vec" => {
                if has_top_level_semi(&mac.tokens) {
                    return Some(self.fail(Diag::new(
                        mac.span(),
                        "`vec![x; n]` isn't supported in a workflow",
                        "build the list with a loop and `push`",
                    )));
                }
                let args = self.macro_args(mac)?;
                let items = args.iter().map(|a| self.expr(a)).collect();
                let dst = self.em.reg();
                self.em.emit(Inst::List { dst, items });
                Some(dst)
            }
            "join" => Some(self.join_macro(mac)),
            "matches" => Some(self.matches_macro(mac)),
            "assert" | "assert_eq" | "assert_ne" | "debug_assert" | "debug_assert_eq"
            | "debug_assert_ne" => {
                self.assert_macro(&name, mac);
                None
            }
            "panic" | "unreachable" | "todo" | "unimplemented" => {
                let args = self.macro_args(mac)?;
                let args: Vec<Expr> = args.into_iter().collect();
                let message = if args.is_empty() {
                    let text = match name.as_str() {
                        "panic" => "explicit panic",
                        "unreachable" => "entered unreachable code",
                        _ => "not yet implemented",
                    };
                    self.em.konst(Value::Str(text.to_owned()))
                } else {
                    self.format(&args, mac.span())
                };
                self.fail_with("panic", message, span);
                None
            }
            "println" | "print" | "eprintln" | "eprint" | "dbg" => Some(self.fail(Diag::new(
                span,
                format!("`{name}!` can't be used in a workflow: its output would repeat on every replay"),
                "use `drover::log::info(\"message\", fields)`",
            ))),
            "select" => Some(self.fail(Diag::new(
                span,
                "`select!` isn't supported in a workflow",
                "use `race(..).await`, which is durable",
            ))),
            "thread_local" | "lazy_static" => Some(self.fail(Diag::new(
                span,
                "statics can't be used in a workflow: their state is not journaled",
                "keep state in local variables, or pass it in as a parameter",
            ))),
            _ => {
                let close = nearest(&name, MACROS.iter().copied());
                let mut help = did_you_mean(&close).map(|h| format!("{h} ")).unwrap_or_default();
                help.push_str(&format!(
                    "(supported: {})",
                    MACROS.iter().map(|m| format!("{m}!")).collect::<Vec<_>>().join(", ")
                ));
                Some(self.fail(Diag::new(
                    span,
                    format!("the macro `{name}!` isn't supported in a workflow"),
                    help,
                )))
            }
        }
    }

    /// `fail {kind, message}` with `message` in a register.
    fn fail_with(&mut self, kind: &str, message: Reg, span: Span) {
        let kind = self.em.konst(Value::Str(kind.to_owned()));
        let error = self.em.reg();
        self.at(span);
        self.em.emit(Inst::Record {
            dst: error,
            fields: vec![
                (Symbol::from("kind"), kind),
                (Symbol::from("message"), message),
            ],
        });
        self.em.emit(Inst::Fail { error });
    }

    /// `matches!(e, P [if guard])`.
    fn matches_macro(&mut self, mac: &syn::Macro) -> Reg {
        let parser = |input: syn::parse::ParseStream| {
            let e: Expr = input.parse()?;
            input.parse::<Token![,]>()?;
            let p = syn::Pat::parse_multi_with_leading_vert(input)?;
            let guard = if input.peek(Token![if]) {
                input.parse::<Token![if]>()?;
                Some(input.parse::<Expr>()?)
            } else {
                None
            };
            let _ = input.parse::<Option<Token![,]>>()?;
            Ok((e, p, guard))
        };
        let (e, p, guard) = match parser.parse2(mac.tokens.clone()) {
            Ok(parts) => parts,
            Err(err) => return self.fail(Diag::bare(err.span(), err.to_string())),
        };
        let v = self.expr(&e);
        let dst = self.em.konst(Value::Bool(false));
        let no = self.em.block("no_match");
        let done = self.em.block("matches_end");
        self.push_scope();
        self.pattern(&p, v, Some(no));
        if let Some(g) = guard {
            let c = self.expr(&g);
            let yes = self.em.block("guarded");
            self.em.emit(Inst::Branch {
                cond: c,
                then_block: yes,
                else_block: no,
            });
            self.em.switch_to(yes);
        }
        self.em.konst_into(dst, Value::Bool(true));
        self.em.jump(done);
        self.pop_scope();
        self.em.switch_to(no);
        self.em.jump(done);
        self.em.switch_to(done);
        dst
    }

    /// `assert!(c [, fmt..])`, `assert_eq!(a, b [, fmt..])`, `assert_ne!`.
    fn assert_macro(&mut self, name: &str, mac: &syn::Macro) {
        let Some(args) = self.macro_args(mac) else {
            return;
        };
        let args: Vec<Expr> = args.into_iter().collect();
        let eq = name.ends_with("_eq");
        let ne = name.ends_with("_ne");
        let operands = if eq || ne { 2 } else { 1 };
        if args.len() < operands {
            self.error(Diag::bare(
                mac.span(),
                format!("`{name}!` needs {operands} operands"),
            ));
            return;
        }
        let cond = if operands == 2 {
            let a = self.expr(&args[0]);
            let b = self.expr(&args[1]);
            let dst = self.em.reg();
            self.em.emit(if eq {
                Inst::Eq { dst, a, b }
            } else {
                Inst::Ne { dst, a, b }
            });
            dst
        } else {
            self.expr(&args[0])
        };
        let ok = self.em.block("assert_ok");
        let bad = self.em.block("assert_failed");
        self.em.emit(Inst::Branch {
            cond,
            then_block: ok,
            else_block: bad,
        });
        self.em.switch_to(bad);
        let message = if args.len() > operands {
            self.format(&args[operands..], mac.span())
        } else {
            let text = format!("assertion failed: {}", show(&mac.tokens));
            self.em.konst(Value::Str(text))
        };
        self.fail_with("assert", message, mac.path.span());
        self.em.switch_to(ok);
    }

    /// `format!("..", args)`: `{}`, `{0}`, `{name}` and `{:?}` become `{}` of
    /// a `format` instruction; other format specs are errors.
    pub(crate) fn format(&mut self, args: &[Expr], span: Span) -> Reg {
        let Some(first) = args.first() else {
            return self.fail(Diag::bare(span, "`format!` needs a format string"));
        };
        let lit = match peel(first) {
            Expr::Lit(syn::ExprLit {
                lit: Lit::Str(s), ..
            }) => s.clone(),
            other => {
                return self.fail(Diag::new(
                    other.span(),
                    "the format string must be a string literal",
                    "write `format!(\"{}\", value)`",
                ))
            }
        };
        let mut positional: Vec<&Expr> = Vec::new();
        let mut named: Vec<(String, &Expr)> = Vec::new();
        for a in &args[1..] {
            match a {
                Expr::Assign(asg) => match &*asg.left {
                    Expr::Path(p) if p.path.segments.len() == 1 => {
                        named.push((last_segment(&p.path), &asg.right));
                    }
                    other => positional.push(other),
                },
                other => positional.push(other),
            }
        }
        let text = lit.value();
        let mut template = String::new();
        // Which argument each `{}` of the template takes, in order.
        let mut picks: Vec<Pick> = Vec::new();
        let mut next_positional = 0usize;
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    template.push_str("{{");
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    template.push_str("}}");
                }
                '{' => {
                    let mut inner = String::new();
                    let mut closed = false;
                    for c in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        inner.push(c);
                    }
                    if !closed {
                        return self
                            .fail(Diag::bare(lit.span(), "unclosed `{` in the format string"));
                    }
                    let (arg, spec) = inner.split_once(':').unwrap_or((inner.as_str(), ""));
                    if !matches!(spec, "" | "?" | "#?") {
                        return self.fail(Diag::new(
                            lit.span(),
                            format!("the format spec `{{{inner}}}` isn't supported in a workflow"),
                            "use `{}` or `{:?}`, and format the value in a #[pure] function",
                        ));
                    }
                    let arg = arg.trim();
                    let pick = if arg.is_empty() {
                        next_positional += 1;
                        Pick::Positional(next_positional - 1)
                    } else if let Ok(i) = arg.parse::<usize>() {
                        Pick::Positional(i)
                    } else {
                        Pick::Named(arg.to_owned())
                    };
                    template.push_str("{}");
                    picks.push(pick);
                }
                '}' => {
                    return self.fail(Diag::new(
                        lit.span(),
                        "unmatched `}` in the format string",
                        "write `}}` for a literal brace",
                    ))
                }
                c => template.push(c),
            }
        }
        let positional_regs: Vec<Reg> = positional.iter().map(|e| self.expr(e)).collect();
        let named_regs: Vec<(String, Reg)> = named
            .iter()
            .map(|(n, e)| (n.clone(), self.expr(e)))
            .collect();
        let mut regs = Vec::new();
        for pick in picks {
            let r = match pick {
                Pick::Positional(i) => match positional_regs.get(i) {
                    Some(r) => *r,
                    None => {
                        return self.fail(Diag::bare(
                            lit.span(),
                            format!(
                                "the format string refers to argument {i}, but there are {}",
                                positional_regs.len()
                            ),
                        ))
                    }
                },
                Pick::Named(n) => match named_regs.iter().find(|(k, _)| *k == n) {
                    Some((_, r)) => *r,
                    None => match self.lookup(&n) {
                        Some(r) => r,
                        None => {
                            return self.fail(Diag::bare(
                                lit.span(),
                                format!("`{n}` in the format string is not defined"),
                            ))
                        }
                    },
                },
            };
            regs.push(r);
        }
        let dst = self.em.reg();
        self.at(span);
        self.em.emit(Inst::Format {
            dst,
            template,
            args: regs,
        });
        dst
    }
}

/// Which argument a placeholder of a format string takes.
enum Pick {
    Positional(usize),
    Named(String),
}

/// Whether a token stream has a `;` outside any group (`vec![x; n]`).
fn has_top_level_semi(tokens: &proc_macro2::TokenStream) -> bool {
    tokens
        .clone()
        .into_iter()
        .any(|t| matches!(t, proc_macro2::TokenTree::Punct(p) if p.as_char() == ';'))
}

/// An integer literal's value.
fn int_lit(e: &Expr) -> Option<u64> {
    match peel(e) {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(i), ..
        }) => i.base10_parse().ok(),
        _ => None,
    }
}

/// A literal duration in milliseconds: an int literal, or
/// `Duration::from_millis/from_secs/from_mins(LITERAL)`.
fn duration_ms(e: &Expr) -> Option<u64> {
    if let Some(ms) = int_lit(e) {
        return Some(ms);
    }
    let Expr::Call(c) = peel(e) else { return None };
    let path = call_path(c)?;
    let factor: u64 = match last_segment(path).as_str() {
        "from_millis" => 1,
        "from_secs" => 1_000,
        "from_mins" => 60_000,
        _ => return None,
    };
    match c.args.iter().collect::<Vec<_>>().as_slice() {
        [a] => int_lit(a)?.checked_mul(factor),
        _ => None,
    }
}
