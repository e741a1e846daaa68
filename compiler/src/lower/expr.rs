//! Expressions: literals, variables, operators, field access, indexing,
//! struct/enum/tuple construction, casts, `?`, and assignment to places.
//!
//! | Rust | IR |
//! |---|---|
//! | `1`, `1.5`, `true`, `"s"`, `'c'`, `b"..."`, `b'a'` | `const` (a char is a one-char string, a byte an int) |
//! | `x` | the variable's register |
//! | `a + b` .. `a % b`, `==` .. `>=` | `add` .. `rem`, `eq` .. `ge` |
//! | `a && b`, `a \|\| b` | `br` on `a`, evaluating `b` only when needed |
//! | `-a`, `!a`, `*a`, `&a` | `neg`, `not`, the value itself |
//! | `x.f`, `x.0`, `v[i]`, `v[a..b]` | `field`, `index` (const int), `index`, `builtin slice` |
//! | `S { a, b: e }`, `E::V { a }`, `E::V(x)`, `E::V` | `record`, `variant V, record`, `variant V, x`, `variant V` |
//! | `Some(x)`, `None`, `Ok(x)`, `Err(e)` | `x`, `null`, `variant Ok, x`, `variant Err, e` |
//! | `(a, b)`, `[a, b]`, `()` | `list`, `list`, `null` |
//! | `e as f64`, `e as i64` (any int type) | `builtin to_float`, `builtin to_int` |
//! | `e?` | `match e, [Ok => .., Err => ret, None => ret], default ..` |
//! | `x = e`, `a.b[i] = e`, `x += e` .. `x %= e` | `mov`, `field`/`setindex`/`setfield` written back outward, the operator then the write |

use drover_ir::{Inst, Reg, Symbol, Value};
use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{BinOp, Expr, Lit, Member, RangeLimits, UnOp};

use super::context::Lowerer;
use super::diag::{did_you_mean, nearest, show, Diag};

/// Whether a path names an enum variant: `Verdict::Clean`, `Self::Clean`,
/// `E::V { .. }`. Needs the segment before the last to be a type (it starts
/// with an upper-case letter), so `models::Report { .. }` stays a struct.
pub(crate) fn is_variant_path(path: &syn::Path) -> bool {
    let n = path.segments.len();
    n >= 2 && starts_upper(&path.segments[n - 2].ident.to_string())
}

/// Whether a name starts with an upper-case letter (types, variants).
pub(crate) fn starts_upper(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_uppercase())
}

/// Whether a name is written like a constant or static: `MAX_RETRIES`.
pub(crate) fn is_const_name(s: &str) -> bool {
    s.len() > 1
        && starts_upper(s)
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// The last segment of a path, as a string.
pub(crate) fn last_segment(path: &syn::Path) -> String {
    path.segments
        .last()
        .map(|s| s.ident.to_string())
        .unwrap_or_default()
}

impl Lowerer<'_> {
    /// Lowers an expression whose value is needed.
    pub(crate) fn expr(&mut self, e: &Expr) -> Reg {
        match self.expr_want(e, true) {
            Some(r) => r,
            None => self.null(),
        }
    }

    /// Lowers an expression for its effects only.
    pub(crate) fn expr_stmt(&mut self, e: &Expr) {
        self.expr_want(e, false);
    }

    /// Lowers an expression; `want` says whether its value is used, so that
    /// `if`, `match` and blocks in statement position build no result.
    /// `None` means no value (unit, or an error already reported).
    pub(crate) fn expr_want(&mut self, e: &Expr, want: bool) -> Option<Reg> {
        if !self.enter(e.span()) {
            return None;
        }
        let saved = self.em.loc;
        self.at(e.span());
        let r = self.expr_kind(e, want);
        self.em.loc = saved;
        self.leave();
        r
    }

    fn expr_kind(&mut self, e: &Expr, want: bool) -> Option<Reg> {
        Some(match e {
            Expr::Lit(l) => self.lit(&l.lit),
            Expr::Path(p) => {
                if p.qself.is_some() {
                    return Some(self.fail(Diag::new(
                        e.span(),
                        "qualified paths like `<T as Trait>::x` aren't supported in a workflow",
                        "call a #[pure] function instead",
                    )));
                }
                self.path_expr(&p.path)
            }
            Expr::Paren(p) => return self.expr_want(&p.expr, want),
            Expr::Group(g) => return self.expr_want(&g.expr, want),
            // References are values here: there is no aliasing to preserve.
            Expr::Reference(r) => return self.expr_want(&r.expr, want),
            Expr::RawAddr(r) => self.fail(Diag::new(
                r.span(),
                "raw pointers can't be used in a workflow",
                "move this into an #[activity] function",
            )),
            Expr::Unary(u) => match u.op {
                UnOp::Deref(_) => return self.expr_want(&u.expr, want),
                UnOp::Neg(_) => self.neg(u),
                UnOp::Not(_) => {
                    let a = self.expr(&u.expr);
                    let dst = self.em.reg();
                    self.at(u.span());
                    self.em.emit(Inst::Not { dst, a });
                    dst
                }
                _ => self.fail(Diag::bare(u.span(), "this operator isn't supported")),
            },
            Expr::Binary(b) => return self.binary(b),
            Expr::Assign(a) => {
                let v = self.expr(&a.right);
                self.assign(&a.left, v);
                return None;
            }
            Expr::Field(f) => {
                let base = self.expr(&f.base);
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
                dst
            }
            Expr::Index(ix) => self.index(ix),
            Expr::Struct(s) => self.struct_lit(s),
            Expr::Tuple(t) if t.elems.is_empty() => return None,
            Expr::Tuple(t) => {
                let items = t.elems.iter().map(|e| self.expr(e)).collect();
                let dst = self.em.reg();
                self.em.emit(Inst::List { dst, items });
                dst
            }
            Expr::Array(a) => {
                let items = a.elems.iter().map(|e| self.expr(e)).collect();
                let dst = self.em.reg();
                self.em.emit(Inst::List { dst, items });
                dst
            }
            Expr::Repeat(r) => self.fail(Diag::new(
                r.span(),
                "array repeat expressions `[x; n]` aren't supported in a workflow",
                "build the list with a loop and `push`",
            )),
            Expr::Cast(c) => self.cast(c),
            Expr::Try(t) => self.try_op(&t.expr, t.question_token.span),
            Expr::Call(c) => return self.call(c),
            Expr::MethodCall(m) => return self.method_call(m),
            Expr::Macro(m) => return self.macro_expr(&m.mac),
            Expr::Await(a) => return self.await_expr(a),
            Expr::If(i) => return self.if_expr(i, want),
            Expr::Match(m) => return self.match_expr(m, want),
            Expr::Block(b) => {
                if let Some(label) = &b.label {
                    return Some(self.fail(Diag::new(
                        label.span(),
                        "labeled blocks aren't supported in a workflow",
                        "use a `loop` with `break 'label`",
                    )));
                }
                return self.block(&b.block, want);
            }
            Expr::Unsafe(u) => self.fail(Diag::new(
                u.unsafe_token.span,
                "`unsafe` blocks can't run in a workflow",
                "move this into an #[activity] function",
            )),
            Expr::Loop(l) => return self.loop_expr(l, want),
            Expr::While(w) => {
                self.while_expr(w);
                return None;
            }
            Expr::ForLoop(f) => {
                self.for_expr(f);
                return None;
            }
            Expr::Break(b) => {
                self.break_expr(b);
                return None;
            }
            Expr::Continue(c) => {
                self.continue_expr(c);
                return None;
            }
            Expr::Return(r) => {
                let v = match &r.expr {
                    Some(e) => self.expr(e),
                    None => self.null(),
                };
                self.at(r.span());
                self.em.emit(Inst::Ret { value: v });
                return None;
            }
            Expr::Closure(c) => self.fail(Diag::new(
                c.or1_token.span,
                "closures are only supported inside `all(..)`/`race(..)`",
                "write a `for` loop, or move this into a #[pure] function",
            )),
            Expr::Async(a) => self.fail(Diag::new(
                a.async_token.span,
                "`async` blocks are only supported inside `all(..)`/`race(..)`",
                "await the calls directly, or run them in parallel with `join!`",
            )),
            Expr::Let(l) => self.fail(Diag::new(
                l.let_token.span,
                "`let` expressions are only supported as the condition of `if let` and `while let`",
                "use `match` or `matches!(..)`",
            )),
            Expr::Range(r) => self.fail(Diag::new(
                r.span(),
                "ranges are only supported in `for` loops, slicing and patterns",
                "iterate with `for i in a..b`",
            )),
            Expr::TryBlock(t) => self.fail(Diag::new(
                t.try_token.span,
                "`try` blocks aren't supported in a workflow",
                "use `match` or `?` in the workflow body",
            )),
            other => self.fail(Diag::new(
                other.span(),
                format!("`{}` isn't supported in a workflow", show(other)),
                "move this into an #[activity] or #[pure] function",
            )),
        })
    }

    /// A literal, as a constant.
    pub(crate) fn lit(&mut self, lit: &Lit) -> Reg {
        match self.lit_value(lit, false) {
            Some(v) => self.em.konst(v),
            None => self.null(),
        }
    }

    /// The value of a literal (negated when `negative`), or `None` after
    /// reporting why it can't be one.
    pub(crate) fn lit_value(&mut self, lit: &Lit, negative: bool) -> Option<Value> {
        let v = match lit {
            Lit::Int(i) => {
                // Parse the digits with the sign so that i64::MIN fits.
                let digits = i.base10_digits();
                let text = if negative {
                    format!("-{digits}")
                } else {
                    digits.to_owned()
                };
                match text.parse::<i64>() {
                    Ok(n) => return Some(Value::Int(n)),
                    Err(_) => {
                        self.error(Diag::new(
                            i.span(),
                            "this integer doesn't fit a 64-bit signed int",
                            "Drover ints are i64",
                        ));
                        return None;
                    }
                }
            }
            Lit::Float(f) => match f.base10_parse::<f64>() {
                Ok(x) => Value::Float(x),
                Err(e) => {
                    self.error(Diag::bare(f.span(), e.to_string()));
                    return None;
                }
            },
            Lit::Bool(b) => Value::Bool(b.value),
            Lit::Str(s) => Value::Str(s.value()),
            Lit::Char(c) => Value::Str(c.value().to_string()),
            Lit::ByteStr(b) => Value::Bytes(b.value()),
            Lit::Byte(b) => Value::Int(i64::from(b.value())),
            other => {
                self.error(Diag::bare(
                    other.span(),
                    "this kind of literal isn't supported in a workflow",
                ));
                return None;
            }
        };
        if negative {
            return match v {
                Value::Float(x) => Some(Value::Float(-x)),
                _ => {
                    self.error(Diag::bare(lit.span(), "only numbers can be negated"));
                    None
                }
            };
        }
        Some(v)
    }

    /// `-e`, folding `-LITERAL` into a constant.
    fn neg(&mut self, u: &syn::ExprUnary) -> Reg {
        if let Expr::Lit(l) = &*u.expr {
            return match self.lit_value(&l.lit, true) {
                Some(v) => self.em.konst(v),
                None => self.null(),
            };
        }
        let a = self.expr(&u.expr);
        let dst = self.em.reg();
        self.at(u.span());
        self.em.emit(Inst::Neg { dst, a });
        dst
    }

    /// A path in value position: a variable, `None`, or a unit variant.
    fn path_expr(&mut self, path: &syn::Path) -> Reg {
        let span = path.span();
        let last = last_segment(path);
        if path.segments.len() == 1 && path.leading_colon.is_none() {
            if let Some(r) = self.lookup(&last) {
                return r;
            }
            if last == "None" {
                return self.null();
            }
            if is_const_name(&last) {
                return self.fail(Diag::new(
                    span,
                    format!("`{last}` can't be read in a workflow: statics and constants aren't supported"),
                    "use a literal, or pass the value in as a parameter",
                ));
            }
            if starts_upper(&last) {
                return self.variant(&last, None);
            }
            let names = self.names();
            let close = nearest(&last, names.iter().map(String::as_str));
            let d = match did_you_mean(&close) {
                Some(h) => Diag::new(span, format!("`{last}` is not defined"), h),
                None => Diag::bare(span, format!("`{last}` is not defined")),
            };
            return self.fail(d);
        }
        if last == "None" {
            return self.null();
        }
        if is_const_name(&last) {
            return self.fail(Diag::new(
                span,
                format!(
                    "`{}` can't be read in a workflow: statics and constants aren't supported",
                    show(path)
                ),
                "use a literal, or pass the value in as a parameter",
            ));
        }
        if starts_upper(&last) {
            return self.variant(&last, None);
        }
        self.fail(Diag::new(
            span,
            format!("`{}` can't be used as a value in a workflow", show(path)),
            "call it, or use a variable",
        ))
    }

    /// `variant TAG [, payload]`, into a new register.
    pub(crate) fn variant(&mut self, tag: &str, payload: Option<Reg>) -> Reg {
        let dst = self.em.reg();
        self.em.emit(Inst::MakeVariant {
            dst,
            tag: Symbol(tag.to_owned()),
            payload,
        });
        dst
    }

    /// Binary operators, including `&&`/`||` and the compound assignments.
    fn binary(&mut self, b: &syn::ExprBinary) -> Option<Reg> {
        let op_span = b.op.span();
        type Make = fn(Reg, Reg, Reg) -> Inst;
        let arith = |op: &BinOp| -> Option<Make> {
            Some(match op {
                BinOp::Add(_) | BinOp::AddAssign(_) => |dst, a, b| Inst::Add { dst, a, b },
                BinOp::Sub(_) | BinOp::SubAssign(_) => |dst, a, b| Inst::Sub { dst, a, b },
                BinOp::Mul(_) | BinOp::MulAssign(_) => |dst, a, b| Inst::Mul { dst, a, b },
                BinOp::Div(_) | BinOp::DivAssign(_) => |dst, a, b| Inst::Div { dst, a, b },
                BinOp::Rem(_) | BinOp::RemAssign(_) => |dst, a, b| Inst::Rem { dst, a, b },
                BinOp::Eq(_) => |dst, a, b| Inst::Eq { dst, a, b },
                BinOp::Ne(_) => |dst, a, b| Inst::Ne { dst, a, b },
                BinOp::Lt(_) => |dst, a, b| Inst::Lt { dst, a, b },
                BinOp::Le(_) => |dst, a, b| Inst::Le { dst, a, b },
                BinOp::Gt(_) => |dst, a, b| Inst::Gt { dst, a, b },
                BinOp::Ge(_) => |dst, a, b| Inst::Ge { dst, a, b },
                _ => return None,
            })
        };
        match &b.op {
            BinOp::And(_) | BinOp::Or(_) => {
                let is_and = matches!(b.op, BinOp::And(_));
                let a = self.expr(&b.left);
                // A temporary can carry the result; a variable must not change.
                let dst = if self.is_var(a) {
                    let dst = self.em.reg();
                    self.em.emit(Inst::Move { dst, src: a });
                    dst
                } else {
                    a
                };
                let rhs = self.em.block(if is_and { "and_rhs" } else { "or_rhs" });
                let done = self.em.block(if is_and { "and_end" } else { "or_end" });
                let (then_block, else_block) = if is_and { (rhs, done) } else { (done, rhs) };
                self.em.emit(Inst::Branch {
                    cond: dst,
                    then_block,
                    else_block,
                });
                self.em.switch_to(rhs);
                let r = self.expr(&b.right);
                self.em.emit(Inst::Move { dst, src: r });
                self.em.jump(done);
                self.em.switch_to(done);
                Some(dst)
            }
            op @ (BinOp::AddAssign(_)
            | BinOp::SubAssign(_)
            | BinOp::MulAssign(_)
            | BinOp::DivAssign(_)
            | BinOp::RemAssign(_)) => {
                let make = arith(op)?;
                let rhs = self.expr(&b.right);
                let cur = self.expr(&b.left);
                // `x += e` on a plain variable updates its register in place.
                let dst = if self.place_var(&b.left).is_some() {
                    cur
                } else {
                    self.em.reg()
                };
                self.at(op_span);
                self.em.emit(make(dst, cur, rhs));
                if self.place_var(&b.left).is_none() {
                    self.assign(&b.left, dst);
                }
                None
            }
            op => match arith(op) {
                Some(make) => {
                    let a = self.expr(&b.left);
                    let r = self.expr(&b.right);
                    let dst = self.em.reg();
                    self.at(op_span);
                    self.em.emit(make(dst, a, r));
                    Some(dst)
                }
                None => Some(self.fail(Diag::new(
                    op_span,
                    format!("the operator `{}` isn't supported in a workflow", show(op)),
                    "compute this in a #[pure] function",
                ))),
            },
        }
    }

    /// The register of a place that is a plain variable (through `*`, `&`
    /// and parentheses), if it is one.
    pub(crate) fn place_var(&self, place: &Expr) -> Option<Reg> {
        match place {
            Expr::Path(p) if p.qself.is_none() && p.path.segments.len() == 1 => {
                self.lookup(&last_segment(&p.path))
            }
            Expr::Paren(p) => self.place_var(&p.expr),
            Expr::Unary(u) if matches!(u.op, UnOp::Deref(_)) => self.place_var(&u.expr),
            Expr::Reference(r) => self.place_var(&r.expr),
            _ => None,
        }
    }

    /// Stores `value` into a place: a variable, `base.field`, `base.0` or
    /// `base[key]`. A nested place updates a copy of the inner value and
    /// writes that back outward, since `setfield`/`setindex` change a register.
    pub(crate) fn assign(&mut self, place: &Expr, value: Reg) {
        match place {
            Expr::Paren(p) => self.assign(&p.expr, value),
            Expr::Unary(u) if matches!(u.op, UnOp::Deref(_)) => self.assign(&u.expr, value),
            Expr::Path(p) if p.qself.is_none() && p.path.segments.len() == 1 => {
                let name = last_segment(&p.path);
                match self.lookup(&name) {
                    Some(var) if var == value => {}
                    Some(var) => {
                        self.at(place.span());
                        self.em.emit(Inst::Move {
                            dst: var,
                            src: value,
                        });
                    }
                    None if is_const_name(&name) => self.error(Diag::new(
                        place.span(),
                        format!(
                            "`{name}` can't be written in a workflow: statics aren't supported"
                        ),
                        "keep the value in a local variable",
                    )),
                    None => {
                        self.error(Diag::bare(place.span(), format!("`{name}` is not defined")))
                    }
                }
            }
            Expr::Field(f) => {
                let base = self.place_base(&f.base);
                self.at(place.span());
                match &f.member {
                    Member::Named(name) => self.em.emit(Inst::SetField {
                        base,
                        name: Symbol(name.to_string()),
                        src: value,
                    }),
                    Member::Unnamed(i) => {
                        let key = self.em.konst(Value::Int(i64::from(i.index)));
                        self.em.emit(Inst::SetIndex {
                            base,
                            key,
                            src: value,
                        });
                    }
                }
                self.write_back(&f.base, base);
            }
            Expr::Index(ix) => {
                let base = self.place_base(&ix.expr);
                let key = self.expr(&ix.index);
                self.at(place.span());
                self.em.emit(Inst::SetIndex {
                    base,
                    key,
                    src: value,
                });
                self.write_back(&ix.expr, base);
            }
            other => self.error(Diag::new(
                other.span(),
                format!("can't assign to `{}` in a workflow", show(other)),
                "assign to a variable, a field or an element",
            )),
        }
    }

    /// The register to update for the base of a field or element store: the
    /// variable itself, or a fresh copy of a nested value.
    fn place_base(&mut self, base: &Expr) -> Reg {
        if let Some(r) = self.place_var(base) {
            return r;
        }
        let r = self.expr(base);
        if self.is_var(r) {
            // Never update another variable through a copy's register.
            let copy = self.em.reg();
            self.em.emit(Inst::Move { dst: copy, src: r });
            return copy;
        }
        r
    }

    /// After updating `reg`, a copy of the nested place `base`, stores it back.
    fn write_back(&mut self, base: &Expr, reg: Reg) {
        if self.place_var(base).is_none() {
            self.assign(base, reg);
        }
    }

    /// `v[i]`, or a slice `v[a..b]`, `v[a..]`, `v[..b]`.
    fn index(&mut self, ix: &syn::ExprIndex) -> Reg {
        let base = self.expr(&ix.expr);
        if let Expr::Range(r) = &*ix.index {
            let start = match &r.start {
                Some(s) => self.expr(s),
                None => self.em.konst(Value::Int(0)),
            };
            let mut end = match &r.end {
                Some(e) => self.expr(e),
                None => {
                    let dst = self.em.reg();
                    self.em.emit(Inst::CallBuiltin {
                        dst,
                        func: drover_ir::Builtin::Len,
                        args: vec![base],
                    });
                    dst
                }
            };
            if matches!(r.limits, RangeLimits::Closed(_)) {
                end = self.plus_one(end);
            }
            let dst = self.em.reg();
            self.em.emit(Inst::CallBuiltin {
                dst,
                func: drover_ir::Builtin::Slice,
                args: vec![base, start, end],
            });
            return dst;
        }
        let key = self.expr(&ix.index);
        let dst = self.em.reg();
        self.at(ix.span());
        self.em.emit(Inst::Index { dst, base, key });
        dst
    }

    /// `r + 1`, into a new register.
    pub(crate) fn plus_one(&mut self, r: Reg) -> Reg {
        let one = self.em.konst(Value::Int(1));
        let dst = self.em.reg();
        self.em.emit(Inst::Add { dst, a: r, b: one });
        dst
    }

    /// A struct literal (a record) or a struct variant (a variant whose
    /// payload is a record).
    fn struct_lit(&mut self, s: &syn::ExprStruct) -> Reg {
        if let (Some(dots), Some(rest)) = (&s.dot2_token, &s.rest) {
            self.error(Diag::new(
                dots.spans[0].join(rest.span()).unwrap_or(dots.spans[0]),
                "struct update syntax `..base` isn't supported in a workflow",
                "write out every field",
            ));
        }
        let mut fields = Vec::new();
        for f in &s.fields {
            let name = match &f.member {
                Member::Named(n) => n.to_string(),
                Member::Unnamed(i) => {
                    self.error(Diag::new(
                        i.span,
                        "numbered fields aren't supported in struct literals",
                        "use a tuple struct constructor `S(a, b)`",
                    ));
                    continue;
                }
            };
            let r = self.expr(&f.expr);
            fields.push((Symbol(name), r));
        }
        let dst = self.em.reg();
        self.at(s.span());
        self.em.emit(Inst::Record { dst, fields });
        if is_variant_path(&s.path) {
            return self.variant(&last_segment(&s.path), Some(dst));
        }
        dst
    }

    /// `e as T`: to a float or an int; other targets are errors.
    fn cast(&mut self, c: &syn::ExprCast) -> Reg {
        let ty = show(&*c.ty);
        let func =
            match ty.as_str() {
                "f64" | "f32" => drover_ir::Builtin::ToFloat,
                "i8" | "i16" | "i32" | "i64" | "i128" | "isize" | "u8" | "u16" | "u32" | "u64"
                | "u128" | "usize" => drover_ir::Builtin::ToInt,
                _ => return self.fail(Diag::new(
                    c.ty.span(),
                    format!("casting to `{ty}` isn't supported in a workflow"),
                    "cast to a number type (`as f64`, `as i64`), or convert in a #[pure] function",
                )),
            };
        let a = self.expr(&c.expr);
        let dst = self.em.reg();
        self.at(c.span());
        self.em.emit(Inst::CallBuiltin {
            dst,
            func,
            args: vec![a],
        });
        dst
    }

    /// `e?`: the payload of `Ok`, the value of `Some`; returns `Err(..)` and
    /// `None` from the workflow (or from the branch of `all`/`race`/`join!`).
    pub(crate) fn try_op(&mut self, inner: &Expr, q: Span) -> Reg {
        let src = self.expr(inner);
        self.at(q);
        let dst = self.em.reg();
        let ok = self.em.block("try_ok");
        let some = self.em.block("try_some");
        let out = self.em.block("try_return");
        let done = self.em.block("try_done");
        self.em.emit(Inst::Match {
            src,
            arms: vec![
                (Symbol::from("Ok"), ok),
                (Symbol::from("Err"), out),
                (Symbol::from("None"), out),
            ],
            default: Some(some),
        });
        self.em.switch_to(ok);
        self.em.emit(Inst::Payload { dst, src });
        self.em.jump(done);
        self.em.switch_to(some);
        self.em.emit(Inst::Move { dst, src });
        self.em.jump(done);
        self.em.switch_to(out);
        self.em.emit(Inst::Ret { value: src });
        self.em.switch_to(done);
        dst
    }
}
