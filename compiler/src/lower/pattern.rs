//! Patterns: tests that jump away when a value does not match, and bindings.
//!
//! | Rust pattern | IR test, then what the sub-patterns see |
//! |---|---|
//! | `x`, `mut x`, `ref x`, `x @ P` | binds `x` (a `mov` unless the value is a temporary); then `P` |
//! | `_`, `..` | nothing |
//! | `None`, `Option::None` | `match v, [None => ok], default fail` |
//! | `Some(P)` | `match v, [None => fail], default ok`; `P` on `v` itself |
//! | `Ok(P)`, `Err(P)`, `E::V(P)`, `V(P)` | `match v, [Tag => ok], default fail`; `P` on `payload v` |
//! | `E::V(P, Q)` | the tag test; `P`, `Q` on `index payload, 0`, `.., 1` |
//! | `E::V { a, b: P }`, `E::V` | the tag test; fields of the payload |
//! | `S { a, b: P, .. }` | `field v, a`, `field v, b` (no test) |
//! | `(P, Q, ..)`, `[P, Q]` | `index v, 0`, `index v, 1` (a slice pattern checks `len` first) |
//! | `1`, `"s"`, `true` | `eq v, const` then `br` |
//! | `a..=b`, `a..b` | `ge`/`le` (`lt`) then `br` |
//! | `P \| Q` | each in turn, bindings `mov`ed into shared registers |
//!
//! Upper-case single names (`Clean`, `Circle(r)`) are taken as enum
//! variants brought in with `use`, since the lowering sees no types.

use drover_ir::{Block, Builtin, Inst, Reg, Symbol, Value};
use syn::spanned::Spanned;
use syn::{Expr, Member, Pat, RangeLimits};

use super::context::Lowerer;
use super::diag::{show, Diag};
use super::expr::{is_const_name, is_variant_path, last_segment, starts_upper};

impl Lowerer<'_> {
    /// Tests `src` against `pat`, binding its names in the current scope and
    /// continuing in the block where everything matched. A failed test jumps
    /// to `fail`; without one (`let`, `for`, parameters), a pattern that can
    /// fail is an error.
    pub(crate) fn pattern(&mut self, pat: &Pat, src: Reg, fail: Option<Block>) {
        if !self.enter(pat.span()) {
            return;
        }
        self.pattern_kind(pat, src, fail);
        self.leave();
    }

    fn pattern_kind(&mut self, pat: &Pat, src: Reg, fail: Option<Block>) {
        match pat {
            Pat::Wild(_) => {}
            Pat::Type(t) => self.pattern(&t.pat, src, fail),
            Pat::Paren(p) => self.pattern(&p.pat, src, fail),
            Pat::Reference(r) => self.pattern(&r.pat, src, fail),
            Pat::Ident(id) => {
                let name = id.ident.to_string();
                if let Some((_, sub)) = &id.subpat {
                    self.bind(&name, src);
                    self.pattern(sub, src, fail);
                } else if name == "None" {
                    self.null_test(pat, src, fail, true);
                } else if is_const_name(&name) {
                    self.error(Diag::new(
                        id.ident.span(),
                        format!("the constant `{name}` can't be used as a pattern in a workflow"),
                        "match on a literal, or bind a name and compare it in a guard",
                    ));
                } else if starts_upper(&name) {
                    self.tag_test(pat, src, &name, fail);
                } else {
                    self.bind(&name, src);
                }
            }
            Pat::Path(p) => {
                let last = last_segment(&p.path);
                if last == "None" {
                    self.null_test(pat, src, fail, true);
                } else if starts_upper(&last) && !is_const_name(&last) {
                    self.tag_test(pat, src, &last, fail);
                } else {
                    self.error(Diag::new(
                        p.span(),
                        format!(
                            "`{}` can't be used as a pattern in a workflow",
                            show(&p.path)
                        ),
                        "match on an enum variant, a literal or a binding",
                    ));
                }
            }
            Pat::TupleStruct(ts) => {
                let tag = last_segment(&ts.path);
                let elems: Vec<&Pat> = ts.elems.iter().collect();
                let ignored = elems
                    .iter()
                    .all(|p| matches!(p, Pat::Wild(_) | Pat::Rest(_)));
                let payload = if tag == "Some" {
                    // `Some(v)` is `v` itself; only null is `None`.
                    self.null_test(pat, src, fail, false);
                    src
                } else {
                    self.tag_test(pat, src, &tag, fail);
                    if ignored {
                        return;
                    }
                    let p = self.em.reg();
                    self.em.emit(Inst::Payload { dst: p, src });
                    p
                };
                if let [one] = elems.as_slice() {
                    self.pattern(one, payload, fail);
                } else {
                    self.elements(&elems, payload, fail);
                }
            }
            Pat::Struct(s) => {
                let base = if is_variant_path(&s.path) {
                    self.tag_test(pat, src, &last_segment(&s.path), fail);
                    if s.fields.is_empty() {
                        return;
                    }
                    let p = self.em.reg();
                    self.em.emit(Inst::Payload { dst: p, src });
                    p
                } else {
                    src
                };
                for f in &s.fields {
                    let dst = self.em.reg();
                    match &f.member {
                        Member::Named(name) => self.em.emit(Inst::Field {
                            dst,
                            base,
                            name: Symbol(name.to_string()),
                        }),
                        Member::Unnamed(i) => {
                            let key = self.em.konst(Value::Int(i64::from(i.index)));
                            self.em.emit(Inst::Index { dst, base, key });
                        }
                    }
                    self.pattern(&f.pat, dst, fail);
                }
            }
            Pat::Tuple(t) => {
                let elems: Vec<&Pat> = t.elems.iter().collect();
                self.elements(&elems, src, fail);
            }
            Pat::Slice(s) => {
                let elems: Vec<&Pat> = s.elems.iter().collect();
                let has_rest = elems.iter().any(|p| matches!(p, Pat::Rest(_)));
                let fixed = elems.iter().filter(|p| !matches!(p, Pat::Rest(_))).count();
                let n = self.em.reg();
                self.em.emit(Inst::CallBuiltin {
                    dst: n,
                    func: Builtin::Len,
                    args: vec![src],
                });
                let want = self.em.konst(Value::Int(fixed as i64));
                let ok = self.em.reg();
                self.em.emit(if has_rest {
                    Inst::Ge {
                        dst: ok,
                        a: n,
                        b: want,
                    }
                } else {
                    Inst::Eq {
                        dst: ok,
                        a: n,
                        b: want,
                    }
                });
                self.cond_test(pat, ok, fail);
                self.elements(&elems, src, fail);
            }
            Pat::Lit(l) => {
                let Some(v) = self.lit_value(&l.lit, false) else {
                    return;
                };
                let c = self.em.konst(v);
                let ok = self.em.reg();
                self.em.emit(Inst::Eq {
                    dst: ok,
                    a: src,
                    b: c,
                });
                self.cond_test(pat, ok, fail);
            }
            Pat::Range(r) => {
                let mut conds = Vec::new();
                if let Some(lo) = &r.start {
                    let lo = self.bound(lo);
                    let c = self.em.reg();
                    self.em.emit(Inst::Ge {
                        dst: c,
                        a: src,
                        b: lo,
                    });
                    conds.push(c);
                }
                if let Some(hi) = &r.end {
                    let hi = self.bound(hi);
                    let c = self.em.reg();
                    self.em.emit(match r.limits {
                        RangeLimits::Closed(_) => Inst::Le {
                            dst: c,
                            a: src,
                            b: hi,
                        },
                        RangeLimits::HalfOpen(_) => Inst::Lt {
                            dst: c,
                            a: src,
                            b: hi,
                        },
                    });
                    conds.push(c);
                }
                for c in conds {
                    self.cond_test(pat, c, fail);
                }
            }
            Pat::Or(or) => self.or_pattern(or, src, fail),
            Pat::Rest(r) => self.error(Diag::bare(
                r.span(),
                "`..` is only allowed inside tuple, slice and struct patterns",
            )),
            other => self.error(Diag::new(
                other.span(),
                format!(
                    "the pattern `{}` isn't supported in a workflow",
                    show(other)
                ),
                "match on variants, literals, tuples, structs and bindings",
            )),
        }
    }

    /// A bound of a range pattern: a literal (possibly negative).
    fn bound(&mut self, e: &Expr) -> Reg {
        self.expr(e)
    }

    /// Tuple-like elements: `index src, i` for each, up to a `..`; elements
    /// after a `..` count from the end.
    fn elements(&mut self, elems: &[&Pat], src: Reg, fail: Option<Block>) {
        let rest = elems.iter().position(|p| matches!(p, Pat::Rest(_)));
        let (front, back) = match rest {
            Some(i) => (&elems[..i], &elems[i + 1..]),
            None => (elems, &[][..]),
        };
        for (i, p) in front.iter().enumerate() {
            if matches!(p, Pat::Wild(_)) {
                continue;
            }
            let key = self.em.konst(Value::Int(i as i64));
            let dst = self.em.reg();
            self.em.emit(Inst::Index {
                dst,
                base: src,
                key,
            });
            self.pattern(p, dst, fail);
        }
        if !back.is_empty() {
            let n = self.em.reg();
            self.em.emit(Inst::CallBuiltin {
                dst: n,
                func: Builtin::Len,
                args: vec![src],
            });
            for (j, p) in back.iter().enumerate() {
                if matches!(p, Pat::Wild(_)) {
                    continue;
                }
                let from_end = self.em.konst(Value::Int((back.len() - j) as i64));
                let key = self.em.reg();
                self.em.emit(Inst::Sub {
                    dst: key,
                    a: n,
                    b: from_end,
                });
                let dst = self.em.reg();
                self.em.emit(Inst::Index {
                    dst,
                    base: src,
                    key,
                });
                self.pattern(p, dst, fail);
            }
        }
    }

    /// `P | Q | ..`: tries each; the names they bind end up in the same
    /// registers whichever matched.
    fn or_pattern(&mut self, or: &syn::PatOr, src: Reg, fail: Option<Block>) {
        let matched = self.em.block("or_matched");
        let mut shared: Vec<(String, Reg)> = Vec::new();
        let n = or.cases.len();
        for (k, case) in or.cases.iter().enumerate() {
            let next = if k + 1 == n {
                fail
            } else {
                Some(self.em.block("or_next"))
            };
            self.push_scope();
            self.pattern(case, src, next);
            let bound = self.take_scope();
            if k == 0 {
                shared = bound
                    .keys()
                    .map(|name| (name.clone(), self.em.reg()))
                    .collect();
            }
            for (name, target) in &shared {
                match bound.get(name) {
                    Some(r) => self.em.emit(Inst::Move {
                        dst: *target,
                        src: *r,
                    }),
                    None => self.error(Diag::new(
                        case.span(),
                        format!("`{name}` is not bound in every alternative of this pattern"),
                        "bind the same names in each alternative",
                    )),
                }
            }
            self.em.jump(matched);
            if let Some(next) = next {
                if k + 1 < n {
                    self.em.switch_to(next);
                }
            }
        }
        self.em.switch_to(matched);
        for (name, reg) in shared {
            self.declare(&name, reg);
        }
    }

    /// Continues where `cond` is true; jumps to `fail` where it is false.
    fn cond_test(&mut self, pat: &Pat, cond: Reg, fail: Option<Block>) {
        let Some(fail) = self.refutable(pat, fail) else {
            return;
        };
        let ok = self.em.block("matched");
        self.em.emit(Inst::Branch {
            cond,
            then_block: ok,
            else_block: fail,
        });
        self.em.switch_to(ok);
    }

    /// Continues where `src` is the variant `tag`.
    fn tag_test(&mut self, pat: &Pat, src: Reg, tag: &str, fail: Option<Block>) {
        let Some(fail) = self.refutable(pat, fail) else {
            return;
        };
        let ok = self.em.block(&format!("is_{}", tag.to_lowercase()));
        self.em.emit(Inst::Match {
            src,
            arms: vec![(Symbol(tag.to_owned()), ok)],
            default: Some(fail),
        });
        self.em.switch_to(ok);
    }

    /// Continues where `src` is null (`want_null`) or where it is not.
    fn null_test(&mut self, pat: &Pat, src: Reg, fail: Option<Block>, want_null: bool) {
        let Some(fail) = self.refutable(pat, fail) else {
            return;
        };
        let ok = self.em.block(if want_null { "is_none" } else { "is_some" });
        let (arm, default) = if want_null { (ok, fail) } else { (fail, ok) };
        self.em.emit(Inst::Match {
            src,
            arms: vec![(Symbol::from("None"), arm)],
            default: Some(default),
        });
        self.em.switch_to(ok);
    }

    /// The block a failed test goes to, or an error when the pattern is in a
    /// place that must always match.
    fn refutable(&mut self, pat: &Pat, fail: Option<Block>) -> Option<Block> {
        if fail.is_none() {
            self.error(Diag::new(
                pat.span(),
                format!("the pattern `{}` might not match here", show(pat)),
                "use `if let`, `let .. else` or `match`",
            ));
        }
        fail
    }
}
