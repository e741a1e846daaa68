//! Lowering: one `#[workflow] async fn` (a syn `ItemFn`) to a Drover IR
//! module, with every error found on the way.
//!
//! The lowering is syntactic: it sees one function at a time and no types,
//! so what a name is (an effect, an activity, a variant) follows from its
//! shape and from the [`Items`] that `dslc compile` collects from the file.
//! Each concept has its file: `context.rs` (scopes, loops, diagnostics
//! sink), `emit.rs` (blocks, registers, tables), `expr.rs` (expressions and
//! places), `control.rs` (statements and control flow), `pattern.rs`,
//! `call.rs` (calls, awaits, macros, methods), `diag.rs` (messages), and
//! `file.rs` (`dslc compile`'s whole-file entry point). Each file's docs
//! carry the table of the constructs it lowers.
//!
//! Decisions worth knowing:
//! - Registers are not SSA: a variable keeps one register, and loops update
//!   it in place. Temporaries are bound to names without copies.
//! - `panic!`, `unreachable!`, `todo!`, `unimplemented!` and failed
//!   `assert!`s lower to `fail {kind, message}` rather than being errors: a
//!   workflow may legitimately give up.
//! - A `Duration` is an int of milliseconds.
//! - `Option<T>` is `T` or null, so `Some(x)` tests "not null"; an
//!   `Option` holding `Ok(..)`/`Err(..)` is therefore seen by `?` as the
//!   `Result`. `unwrap` of an `Option` holding a user enum fails at run time.
//! - `for (k, v) in &map` is not supported (a map iterates as a list would);
//!   loop over `map.keys()` instead.

mod call;
mod context;
mod control;
mod diag;
mod emit;
mod expr;
mod file;
mod pattern;

use std::collections::{BTreeMap, BTreeSet};

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{FnArg, Pat, ReturnType};

pub use call::METHODS;
pub use diag::Diag;
pub use file::{compile_file, FileError, FileErrors};

use context::Lowerer;

/// What is known about the functions a workflow calls (dslc compile fills it from the whole file; the macro passes `Items::default()`).
#[derive(Default, Clone, Debug)]
pub struct Items {
    /// `#[activity]` functions and their parameter names.
    pub activities: BTreeMap<String, Vec<String>>,
    /// `#[pure]` functions.
    pub pures: BTreeSet<String>,
    /// `#[workflow]` functions and their parameter names.
    pub workflows: BTreeMap<String, Vec<String>>,
}

/// How to lower one workflow.
#[derive(Default, Clone, Debug)]
pub struct CompileOptions {
    /// The file name recorded in the source map.
    pub file: String,
    /// What the workflow's callees are.
    pub items: Items,
}

/// One lowered workflow.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// This one workflow, its effects and constants, and the source map with the line:col of each instruction.
    pub module: drover_ir::Module,
    /// The workflow's name.
    pub name: String,
    /// Parameter names and their types as text.
    pub params: Vec<(String, String)>,
    /// The return type as text (`()` when none is written).
    pub ret: String,
    /// Activities called, once each, at their first call.
    pub activities: Vec<(String, Span)>,
    /// `#[pure]` functions called, once each, at their first call.
    pub pures: Vec<(String, Span)>,
    /// Child workflows called, once each, at their first call.
    pub children: Vec<(String, Span)>,
}

/// Lowers one `#[workflow] async fn`. Collects every error (never stops at the first); still returns a best-effort `Compiled` when it can.
pub fn compile_workflow(
    item: &syn::ItemFn,
    opts: &CompileOptions,
) -> (Option<Compiled>, Vec<syn::Error>) {
    let (compiled, diags) = lower_workflow(item, opts);
    (compiled, diags.into_iter().map(Diag::into_syn).collect())
}

/// [`compile_workflow`] with the diagnostics kept apart from their hints.
pub fn lower_workflow(item: &syn::ItemFn, opts: &CompileOptions) -> (Option<Compiled>, Vec<Diag>) {
    let mut diags = Vec::new();
    let sig = &item.sig;
    if sig.asyncness.is_none() {
        diags.push(Diag::new(
            sig.fn_token.span,
            "a workflow must be an `async fn`",
            "write `async fn`",
        ));
    }
    if let Some(u) = &sig.unsafety {
        diags.push(Diag::new(
            u.span,
            "a workflow can't be `unsafe`",
            "move unsafe code into an #[activity] function",
        ));
    }
    if let Some(c) = &sig.constness {
        diags.push(Diag::bare(c.span, "a workflow can't be `const`"));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        diags.push(Diag::new(
            sig.generics.span(),
            "a workflow can't be generic",
            "use concrete types; values cross into the workflow through serde",
        ));
    }
    if let Some(v) = &sig.variadic {
        diags.push(Diag::bare(v.span(), "a workflow can't be variadic"));
    }
    let mut params = Vec::new();
    for (i, input) in sig.inputs.iter().enumerate() {
        match input {
            FnArg::Receiver(r) => diags.push(Diag::new(
                r.span(),
                "a workflow can't take `self`",
                "make it a free function outside any `impl` block",
            )),
            FnArg::Typed(t) => {
                let name = match &*t.pat {
                    Pat::Ident(id) if id.subpat.is_none() => id.ident.to_string(),
                    Pat::Wild(_) => format!("_{i}"),
                    other => {
                        diags.push(Diag::new(
                            other.span(),
                            "workflow parameters must be plain names",
                            "take the value whole and destructure it with `let` in the body",
                        ));
                        format!("_{i}")
                    }
                };
                params.push((name, type_text(&t.ty)));
            }
        }
    }
    let ret = match &sig.output {
        ReturnType::Default => "()".to_owned(),
        ReturnType::Type(_, ty) => type_text(ty),
    };
    let names: Vec<String> = params.iter().map(|(n, _)| n.clone()).collect();
    let mut lw = Lowerer::new(&opts.items, &names);
    lw.at(item.block.brace_token.span.open());
    let value = lw.block(&item.block, true);
    if !lw.em.terminated() {
        let value = match value {
            Some(v) => v,
            None => lw.null(),
        };
        lw.at(item.block.brace_token.span.close());
        lw.em.emit(drover_ir::Inst::Ret { value });
    }
    diags.append(&mut lw.diags);
    let name = sig.ident.to_string();
    let module = match lw.em.finish(&name, names, &opts.file) {
        Ok(m) => m,
        Err(why) => {
            diags.push(Diag::bare(
                sig.ident.span(),
                format!("internal error of the Drover lowering: {why}"),
            ));
            drover_ir::Module::default()
        }
    };
    let compiled = Compiled {
        module,
        name,
        params,
        ret,
        activities: lw.activities,
        pures: lw.pures,
        children: lw.children,
    };
    (Some(compiled), diags)
}

/// A type as compact text: `Vec<String>`, `&[(&str, i64)]`.
fn type_text(ty: &syn::Type) -> String {
    use quote::ToTokens;
    let raw = ty.to_token_stream().to_string();
    let mut out = String::with_capacity(raw.len());
    let chars: Vec<char> = raw.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if *c == ' ' {
            let prev = i.checked_sub(1).map(|j| chars[j]);
            let next = chars.get(i + 1).copied();
            // Keep the spaces that separate words (`dyn Trait`, `mut x`)
            // and follow commas; drop those around punctuation.
            let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
            if prev == Some(',')
                || (word(prev) && word(next))
                || next == Some('+')
                || prev == Some('+')
            {
                out.push(' ');
            }
            continue;
        }
        out.push(*c);
    }
    out
}
