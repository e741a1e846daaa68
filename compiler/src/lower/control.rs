//! Statements and control flow: blocks, `let`, `if`/`if let`, `match`,
//! `loop`/`while`/`while let`/`for`, `break`/`continue`.
//!
//! | Rust | IR |
//! |---|---|
//! | `{ s; e }` | the statements in a new scope; the value of `e` |
//! | `let P = e;`, `let P = e else { .. };` | the pattern's tests and bindings (see `pattern.rs`); `else` is where a test fails |
//! | `if c { a } else { b }` | `br c, then, else`, each arm `mov`ing into one result register, `jmp` to the end |
//! | `if let P = e { a } else { b }` | the pattern's tests, failing to `else` |
//! | `match e { P if g => a, .. }` | per arm: the pattern's tests and the guard `br`, failing to the next arm; after the last, `fail {kind: "no_match"}` |
//! | `loop { .. }` | a block that jumps to itself; `break v` `mov`s into the result |
//! | `while c { .. }`, `while let P = e { .. }` | a head block testing `c` (or `P`), the body jumping back |
//! | `for P in xs { .. }` | `n = len xs`, an index from 0 to n, `index xs, i` bound to `P`; ranges become `builtin range(a, b)` |
//! | `break 'l`, `continue 'l` | `jmp` to the loop's end / next-iteration block |

use drover_ir::{Builtin, Inst, Reg, Value};
use syn::spanned::Spanned;
use syn::{Expr, Pat, RangeLimits, Stmt};

use super::context::{LoopFrame, Lowerer};
use super::diag::{show, Diag};

impl Lowerer<'_> {
    /// A block in a new scope; its value is the trailing expression's.
    pub(crate) fn block(&mut self, b: &syn::Block, want: bool) -> Option<Reg> {
        self.push_scope();
        let mut value = None;
        let n = b.stmts.len();
        for (i, stmt) in b.stmts.iter().enumerate() {
            let last = i + 1 == n;
            match stmt {
                Stmt::Local(l) => self.let_stmt(l),
                Stmt::Item(syn::Item::Use(_)) => {
                    // A `use` changes only how names resolve, which the
                    // lowering decides by name shape anyway.
                }
                Stmt::Item(item) => self.error(Diag::new(
                    item.span(),
                    "items (`fn`, `struct`, `impl`, `static`, ..) can't be declared inside a workflow",
                    "move it out of the workflow function",
                )),
                Stmt::Expr(e, None) if last => value = self.expr_want(e, want),
                Stmt::Expr(e, _) => self.expr_stmt(e),
                Stmt::Macro(m) if last && m.semi_token.is_none() => {
                    value = self.macro_expr(&m.mac)
                }
                Stmt::Macro(m) => {
                    self.macro_expr(&m.mac);
                }
            }
        }
        self.pop_scope();
        value
    }

    /// `let P [: T] [= e [else { .. }]];`
    fn let_stmt(&mut self, l: &syn::Local) {
        let Some(init) = &l.init else {
            // `let x;`: a register that the assignments on each path define.
            match strip_type(&l.pat) {
                Pat::Ident(id) if id.subpat.is_none() => {
                    let r = self.em.reg();
                    self.declare(&id.ident.to_string(), r);
                }
                other => self.error(Diag::new(
                    other.span(),
                    "a `let` without a value must bind a single name",
                    "give it a value, or write `let x;`",
                )),
            }
            return;
        };
        let v = self.expr(&init.expr);
        self.at(l.span());
        match &init.diverge {
            None => self.pattern(&l.pat, v, None),
            Some((_, otherwise)) => {
                let fail = self.em.block("let_else");
                self.pattern(&l.pat, v, Some(fail));
                let ok = self.em.current();
                self.em.switch_to(fail);
                self.expr_stmt(otherwise);
                if !self.em.terminated() {
                    self.error(Diag::new(
                        otherwise.span(),
                        "the `else` of `let .. else` must not fall through",
                        "end it with `return`, `break` or `continue`",
                    ));
                    // Close the block anyway, so the module stays well formed.
                    let null = self.null();
                    self.em.emit(Inst::Fail { error: null });
                }
                self.em.switch_to(ok);
            }
        }
    }

    /// `if` and `if let`, as an expression when `want`.
    pub(crate) fn if_expr(&mut self, i: &syn::ExprIf, want: bool) -> Option<Reg> {
        let dst = want.then(|| self.em.reg());
        let done = self.em.block("if_end");
        // Without an `else` nor a value to set, a failed test goes straight on.
        let else_b = if i.else_branch.is_some() || want {
            self.em.block("else")
        } else {
            done
        };
        self.push_scope();
        if let Expr::Let(l) = &*i.cond {
            let v = self.expr(&l.expr);
            self.pattern(&l.pat, v, Some(else_b));
        } else {
            let c = self.expr(&i.cond);
            let then_b = self.em.block("then");
            self.at(i.if_token.span);
            self.em.emit(Inst::Branch {
                cond: c,
                then_block: then_b,
                else_block: else_b,
            });
            self.em.switch_to(then_b);
        }
        let v = self.block(&i.then_branch, want);
        self.pop_scope();
        self.arm_result(dst, v);
        self.em.jump(done);
        if else_b != done {
            self.em.switch_to(else_b);
            let v = match &i.else_branch {
                Some((_, e)) => self.expr_want(e, want),
                None => None,
            };
            self.arm_result(dst, v);
            self.em.jump(done);
        }
        self.em.switch_to(done);
        dst
    }

    /// Puts an arm's value into the result register, unless the arm already
    /// left (its value is never used then).
    fn arm_result(&mut self, dst: Option<Reg>, v: Option<Reg>) {
        let Some(dst) = dst else { return };
        if self.em.terminated() {
            return;
        }
        match v {
            Some(src) => self.em.emit(Inst::Move { dst, src }),
            None => self.em.konst_into(dst, Value::Null),
        }
    }

    /// `match`: each arm's pattern and guard tested in order.
    pub(crate) fn match_expr(&mut self, m: &syn::ExprMatch, want: bool) -> Option<Reg> {
        let src = self.expr(&m.expr);
        let dst = want.then(|| self.em.reg());
        let done = self.em.block("match_end");
        for (i, arm) in m.arms.iter().enumerate() {
            let next = if i + 1 == m.arms.len() {
                self.em.block("no_match")
            } else {
                self.em.block("arm")
            };
            self.push_scope();
            self.at(arm.pat.span());
            self.pattern(&arm.pat, src, Some(next));
            if let Some((_, guard)) = &arm.guard {
                let g = self.expr(guard);
                let body = self.em.block("guarded");
                self.em.emit(Inst::Branch {
                    cond: g,
                    then_block: body,
                    else_block: next,
                });
                self.em.switch_to(body);
            }
            let v = self.expr_want(&arm.body, want);
            self.arm_result(dst, v);
            self.em.jump(done);
            self.pop_scope();
            self.em.switch_to(next);
        }
        // Rust checks exhaustiveness, but the values come from outside
        // (effects, parameters): fail clearly rather than run on.
        self.at(m.match_token.span);
        let err = self.em.konst(Value::record([
            ("kind", Value::Str("no_match".into())),
            ("message", Value::Str("no arm of `match` matched".into())),
        ]));
        self.em.emit(Inst::Fail { error: err });
        self.em.switch_to(done);
        dst
    }

    /// The name of a loop label, without its quote.
    fn label_name(label: &Option<syn::Label>) -> Option<String> {
        label.as_ref().map(|l| l.name.ident.to_string())
    }

    /// `loop { .. }`; its value is what `break v` gives.
    pub(crate) fn loop_expr(&mut self, l: &syn::ExprLoop, want: bool) -> Option<Reg> {
        let head = self.em.block("loop");
        let exit = self.em.block("loop_end");
        let result = self.em.reg();
        self.em.jump(head);
        self.em.switch_to(head);
        self.loops.push(LoopFrame {
            label: Self::label_name(&l.label),
            break_to: exit,
            continue_to: head,
            result: Some(result),
        });
        self.block(&l.body, false);
        self.em.jump(head);
        self.loops.pop();
        self.em.switch_to(exit);
        want.then_some(result)
    }

    /// `while c { .. }` and `while let P = e { .. }`.
    pub(crate) fn while_expr(&mut self, w: &syn::ExprWhile) {
        let head = self.em.block("while");
        let exit = self.em.block("while_end");
        self.em.jump(head);
        self.em.switch_to(head);
        self.push_scope();
        if let Expr::Let(l) = &*w.cond {
            let v = self.expr(&l.expr);
            self.pattern(&l.pat, v, Some(exit));
        } else {
            let c = self.expr(&w.cond);
            let body = self.em.block("while_body");
            self.em.emit(Inst::Branch {
                cond: c,
                then_block: body,
                else_block: exit,
            });
            self.em.switch_to(body);
        }
        self.loops.push(LoopFrame {
            label: Self::label_name(&w.label),
            break_to: exit,
            continue_to: head,
            result: None,
        });
        self.block(&w.body, false);
        self.em.jump(head);
        self.loops.pop();
        self.pop_scope();
        self.em.switch_to(exit);
    }

    /// `for P in xs { .. }` over a list or a range.
    pub(crate) fn for_expr(&mut self, f: &syn::ExprForLoop) {
        let mut enumerate = false;
        let list = self.iter_list(&f.expr, &mut enumerate);
        self.at(f.for_token.span);
        let n = self.em.reg();
        self.em.emit(Inst::CallBuiltin {
            dst: n,
            func: Builtin::Len,
            args: vec![list],
        });
        let i = self.em.konst(Value::Int(0));
        let head = self.em.block("for");
        let body = self.em.block("for_body");
        let step = self.em.block("for_next");
        let exit = self.em.block("for_end");
        self.em.jump(head);
        self.em.switch_to(head);
        self.em.branch_while_less(i, n, body, exit);
        self.em.switch_to(body);
        self.push_scope();
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
        self.pattern(&f.pat, item, None);
        self.loops.push(LoopFrame {
            label: Self::label_name(&f.label),
            break_to: exit,
            continue_to: step,
            result: None,
        });
        self.block(&f.body, false);
        self.em.jump(step);
        self.loops.pop();
        self.pop_scope();
        self.em.switch_to(step);
        let one = self.em.konst(Value::Int(1));
        self.em.emit(Inst::Add {
            dst: i,
            a: i,
            b: one,
        });
        self.em.jump(head);
        self.em.switch_to(exit);
    }

    /// The list a `for` loop walks: ranges become `range`, `.iter()` and the
    /// like are looked through, `.rev()` reverses, `.enumerate()` pairs each
    /// element with its index.
    pub(crate) fn iter_list(&mut self, e: &Expr, enumerate: &mut bool) -> Reg {
        match e {
            Expr::Paren(p) => self.iter_list(&p.expr, enumerate),
            Expr::Reference(r) => self.iter_list(&r.expr, enumerate),
            Expr::Range(r) => {
                let start = match &r.start {
                    Some(s) => self.expr(s),
                    None => self.em.konst(Value::Int(0)),
                };
                let Some(end_e) = &r.end else {
                    return self.fail(Diag::new(
                        r.span(),
                        "a `for` loop over a range needs an end",
                        "write `a..b`, or use `loop` with a counter",
                    ));
                };
                let mut end = self.expr(end_e);
                if matches!(r.limits, RangeLimits::Closed(_)) {
                    end = self.plus_one(end);
                }
                let dst = self.em.reg();
                self.em.emit(Inst::CallBuiltin {
                    dst,
                    func: Builtin::Range,
                    args: vec![start, end],
                });
                dst
            }
            Expr::MethodCall(m) if m.args.is_empty() => match m.method.to_string().as_str() {
                "iter" | "into_iter" | "copied" | "cloned" => {
                    self.iter_list(&m.receiver, enumerate)
                }
                "enumerate" => {
                    *enumerate = true;
                    self.iter_list(&m.receiver, enumerate)
                }
                "rev" => {
                    let inner = self.iter_list(&m.receiver, enumerate);
                    let dst = self.em.reg();
                    self.em.emit(Inst::CallBuiltin {
                        dst,
                        func: Builtin::Reverse,
                        args: vec![inner],
                    });
                    dst
                }
                "iter_mut" => self.fail(Diag::new(
                    m.method.span(),
                    "`iter_mut()` isn't supported in a workflow",
                    "loop over the indices (`for i in 0..v.len()`) and assign `v[i]`",
                )),
                _ => self.expr(e),
            },
            _ => self.expr(e),
        }
    }

    /// The loop a `break`/`continue` with this label leaves, innermost first.
    fn find_loop(
        &mut self,
        label: &Option<syn::Lifetime>,
        span: proc_macro2::Span,
    ) -> Option<usize> {
        let found = match label {
            None => self.loops.len().checked_sub(1),
            Some(l) => {
                let name = l.ident.to_string();
                self.loops
                    .iter()
                    .rposition(|f| f.label.as_deref() == Some(name.as_str()))
            }
        };
        if found.is_none() {
            let msg = match label {
                None => "`break`/`continue` outside of a loop".to_owned(),
                Some(l) => format!("no enclosing loop is labeled `'{}`", l.ident),
            };
            self.error(Diag::bare(span, msg));
        }
        found
    }

    /// `break ['label] [value]`.
    pub(crate) fn break_expr(&mut self, b: &syn::ExprBreak) {
        let Some(i) = self.find_loop(&b.label, b.span()) else {
            return;
        };
        let (break_to, result) = (self.loops[i].break_to, self.loops[i].result);
        if let Some(e) = &b.expr {
            let v = self.expr(e);
            match result {
                Some(dst) => {
                    self.at(b.span());
                    self.em.emit(Inst::Move { dst, src: v });
                }
                None => self.error(Diag::new(
                    e.span(),
                    format!(
                        "`break {}` with a value is only allowed in `loop`",
                        show(&**e)
                    ),
                    "use `loop`, or assign the value to a variable",
                )),
            }
        }
        self.at(b.span());
        self.em.jump(break_to);
    }

    /// `continue ['label]`.
    pub(crate) fn continue_expr(&mut self, c: &syn::ExprContinue) {
        if let Some(i) = self.find_loop(&c.label, c.span()) {
            let to = self.loops[i].continue_to;
            self.at(c.span());
            self.em.jump(to);
        }
    }
}

/// The pattern inside a type ascription `P: T`.
pub(crate) fn strip_type(p: &Pat) -> &Pat {
    match p {
        Pat::Type(t) => strip_type(&t.pat),
        other => other,
    }
}
