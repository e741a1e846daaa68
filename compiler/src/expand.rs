//! Expansion of Drover's attributes: `#[workflow]`, `#[activity]` and
//! `#[pure]`. The proc-macro crate `drover-macros` only parses and calls
//! these, so the logic is testable here and shared with `dslc`.
//!
//! Every expansion keeps the user's fn unchanged, so rustc type-checks it
//! against the real signatures, and adds items next to it:
//! - a `#[doc(hidden)]` module with the fn's name (fns and modules live in
//!   different namespaces) holding a kind marker, `__DroverKind`, which a
//!   workflow's expansion checks at each call so that awaiting a `#[pure]` fn
//!   or calling an unmarked fn is a compile error at the call;
//! - an `inventory` registration of the fn's definition, read at start-up
//!   through `drover::registry`.
//!
//! Generated code names everything through `::drover::__private`, as serde's
//! derives do through `_serde::__private`, so user crates depend on `drover`
//! alone. Errors are all collected (serde_derive's ctxt) and, alongside them,
//! a best-effort expansion is still emitted so IDEs and the rest of the crate
//! keep working.

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{FnArg, Ident, ItemFn, LitByteStr, LitInt, LitStr, Pat, Signature, Token, Type};

use crate::lower::{compile_workflow, CompileOptions, Compiled, Items};

/// Expands `#[workflow]` on `item` with attribute arguments `attr`.
pub fn workflow(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Vec::new();
    if !attr.is_empty() {
        errors.push(syn::Error::new_spanned(
            &attr,
            "#[workflow] takes no arguments: its name is the fn's name",
        ));
    }
    let f: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(e) => return not_a_fn(item, e, "#[workflow]"),
    };
    let opts = CompileOptions {
        file: f.sig.ident.span().file(),
        items: Items::default(),
    };
    let (compiled, lowering_errors) = compile_workflow(&f, &opts);
    errors.extend(lowering_errors);

    // The typed handle needs a signature it can forward; without one the
    // fn's own errors (from the lowering or rustc) say what is wrong.
    let forwardable =
        f.sig.asyncness.is_some() && signature_errors(&f.sig, "#[workflow]").is_empty();
    let compiled = compiled.filter(|_| errors.is_empty());
    let handle = forwardable.then(|| handle_module(&f, compiled.as_ref()));
    let (checks, registration) = match &compiled {
        Some(c) if forwardable => (kind_checks(c), workflow_registration(&f, c)),
        _ => (TokenStream::new(), TokenStream::new()),
    };
    let errors = compile_errors(errors);
    quote! {
        #f
        #handle
        #checks
        #registration
        #errors
    }
}

/// Expands `#[activity(...)]` on `item`.
pub fn activity(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Vec::new();
    let opts = parse_activity_options(attr, &mut errors);
    let f: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(e) => return not_a_fn(item, e, "#[activity]"),
    };
    if f.sig.asyncness.is_none() {
        errors.push(syn::Error::new(
            f.sig.fn_token.span,
            "an #[activity] must be an `async fn`: nodes await it like any effect",
        ));
    }
    errors.extend(signature_errors(&f.sig, "#[activity]"));
    let params = params(&f.sig);
    let marker = marker_module(&f, quote!(ActivityFn));
    let registration = if errors.is_empty() {
        activity_registration(&f, &params, &opts)
    } else {
        TokenStream::new()
    };
    let errors = compile_errors(errors);
    quote! {
        #f
        #marker
        #registration
        #errors
    }
}

/// Expands `#[pure]` on `item`.
pub fn pure(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Vec::new();
    if !attr.is_empty() {
        errors.push(syn::Error::new_spanned(&attr, "#[pure] takes no arguments"));
    }
    let f: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(e) => return not_a_fn(item, e, "#[pure]"),
    };
    if let Some(a) = &f.sig.asyncness {
        errors.push(syn::Error::new(
            a.span,
            "a #[pure] fn must not be async: the interpreter runs it inline; \
             make it an #[activity] if it needs to wait",
        ));
    }
    errors.extend(signature_errors(&f.sig, "#[pure]"));
    let params = params(&f.sig);
    let marker = marker_module(&f, quote!(PureFn));
    let registration = if errors.is_empty() {
        pure_registration(&f, &params)
    } else {
        TokenStream::new()
    };
    let errors = compile_errors(errors);
    quote! {
        #f
        #marker
        #registration
        #errors
    }
}

/// The attribute was put on something other than a fn: report it and give
/// the item back untouched.
fn not_a_fn(item: TokenStream, e: syn::Error, attr: &str) -> TokenStream {
    let e = syn::Error::new(e.span(), format!("{attr} applies to fns only: {e}"));
    let e = e.to_compile_error();
    quote!(#item #e)
}

fn compile_errors(errors: Vec<syn::Error>) -> TokenStream {
    errors.into_iter().map(|e| e.to_compile_error()).collect()
}

/// What the registry and wrappers cannot handle in any signature: methods,
/// generics, variadics, `impl Trait` parameters.
fn signature_errors(sig: &Signature, attr: &str) -> Vec<syn::Error> {
    let mut errors = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(r) => errors.push(syn::Error::new_spanned(
                r,
                format!(
                    "{attr} fns are free fns, registered by name: `self` parameters are not supported"
                ),
            )),
            FnArg::Typed(t) => {
                if let Type::ImplTrait(_) = &*t.ty {
                    errors.push(syn::Error::new_spanned(
                        &t.ty,
                        format!(
                            "{attr} parameters cross the wire as values and need a concrete type, not `impl Trait`"
                        ),
                    ));
                }
            }
        }
    }
    if !sig.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            format!("{attr} fns cannot be generic: each is registered under one name with one signature"),
        ));
    }
    if let Some(v) = &sig.variadic {
        errors.push(syn::Error::new_spanned(
            v,
            format!("{attr} fns cannot be variadic"),
        ));
    }
    errors
}

/// One parameter of an activity or pure fn.
struct Param {
    /// The name shown in the registry: the identifier, or `_N` for patterns.
    name: String,
    ty: Type,
}

fn params(sig: &Signature) -> Vec<Param> {
    sig.inputs
        .iter()
        .enumerate()
        .filter_map(|(i, input)| match input {
            FnArg::Typed(t) => Some(Param {
                name: match &*t.pat {
                    Pat::Ident(p) => p.ident.unraw().to_string(),
                    _ => format!("_{i}"),
                },
                ty: (*t.ty).clone(),
            }),
            FnArg::Receiver(_) => None,
        })
        .collect()
}

/// A type as the registry shows it: the tokens, without the spaces the
/// token printer puts around punctuation.
fn type_text(ty: &impl ToTokens) -> String {
    ty.to_token_stream()
        .to_string()
        .replace(" < ", "<")
        .replace("< ", "<")
        .replace(" <", "<")
        .replace(" >", ">")
        .replace(" ,", ",")
        .replace(" :: ", "::")
        .replace(":: ", "::")
        .replace("& ", "&")
        .replace("( ", "(")
        .replace(" )", ")")
        .replace("[ ", "[")
        .replace(" ]", "]")
        .replace(" ;", ";")
}

/// For a parameter of type `ty`: the owned type its argument is decoded
/// into, and how the fn takes it (`&`, `&mut` or by value). `&str` decodes
/// into `String` and `&[T]` into `Vec<T>`, which deref-coerce at the call.
fn decoded_type(ty: &Type) -> (TokenStream, TokenStream) {
    match ty {
        Type::Reference(r) => {
            let owned = match &*r.elem {
                Type::Path(p) if p.qself.is_none() && p.path.is_ident("str") => {
                    quote!(::std::string::String)
                }
                Type::Slice(s) => {
                    let e = &s.elem;
                    quote!(::std::vec::Vec<#e>)
                }
                other => other.to_token_stream(),
            };
            let how = if r.mutability.is_some() {
                quote!(&mut)
            } else {
                quote!(&)
            };
            (owned, how)
        }
        other => (other.to_token_stream(), TokenStream::new()),
    }
}

/// `#vis mod name { pub type __DroverKind = ...; }`, which workflow
/// expansions check the calls against.
fn marker_module(f: &ItemFn, kind: TokenStream) -> TokenStream {
    // A `self` parameter means the fn sits in an `impl`, where modules are
    // not allowed; the error about `self` is enough.
    if f.sig.receiver().is_some() {
        return TokenStream::new();
    }
    let vis = &f.vis;
    let name = &f.sig.ident;
    quote! {
        #[doc(hidden)]
        #vis mod #name {
            /// What kind of Drover fn this is; checked by `#[workflow]` at each call.
            pub type __DroverKind = ::drover::__private::kind::#kind;
        }
    }
}

/// Decodes the arguments one by one into `__drover_argN` locals, and the
/// expressions that pass them to the fn.
fn decode_args(
    fn_name: &str,
    params: &[Param],
    from: TokenStream,
) -> (TokenStream, Vec<TokenStream>) {
    let mut lets = TokenStream::new();
    let mut pass = Vec::new();
    for (i, p) in params.iter().enumerate() {
        let local = format_ident!("__drover_arg{i}");
        let (owned, how) = decoded_type(&p.ty);
        let pname = &p.name;
        let m = if how.to_string() == "& mut" {
            quote!(mut)
        } else {
            TokenStream::new()
        };
        lets.extend(quote! {
            let #m #local: #owned = ::drover::__private::decode_arg(#fn_name, #pname, #from.next())?;
        });
        pass.push(quote!(#how #local));
    }
    (lets, pass)
}

fn param_table(params: &[Param]) -> TokenStream {
    let rows = params.iter().map(|p| {
        let name = &p.name;
        let ty = type_text(&p.ty);
        quote!((#name, #ty))
    });
    quote!(&[#(#rows),*])
}

fn activity_registration(f: &ItemFn, params: &[Param], opts: &ActivityOptions) -> TokenStream {
    let ident = &f.sig.ident;
    let name = ident.unraw().to_string();
    let arity = params.len();
    let (lets, pass) = decode_args(&name, params, quote!(__drover_args));
    let table = param_table(params);
    let resources = opts.resources.iter().map(|(n, c)| quote!((#n, #c)));
    let retry = match &opts.retry {
        Some(r) => {
            let (a, i, m) = (r.attempts, r.initial_ms, r.max_ms);
            quote!(::core::option::Option::Some(::drover::__private::RetryPolicy {
                max_attempts: #a,
                initial_backoff_ms: #i,
                max_backoff_ms: #m,
                multiplier: 2,
            }))
        }
        None => quote!(::core::option::Option::None),
    };
    let timeout = match opts.timeout_ms {
        Some(ms) => quote!(::core::option::Option::Some(#ms)),
        None => quote!(::core::option::Option::None),
    };
    quote! {
        const _: () = {
            fn __drover_call(
                args: ::std::vec::Vec<::drover::__private::Value>,
            ) -> ::drover::__private::BoxFuture<
                'static,
                ::core::result::Result<::drover::__private::Value, ::drover::Error>,
            > {
                ::std::boxed::Box::pin(async move {
                    ::drover::__private::check_arity(#name, args.len(), #arity)?;
                    let mut __drover_args = args.into_iter();
                    #lets
                    ::drover::__private::ActivityOutput::into_value(#ident(#(#pass),*).await)
                })
            }
            ::drover::__private::inventory::submit! {
                ::drover::__private::ActivityDef {
                    name: #name,
                    params: #table,
                    resources: &[#(#resources),*],
                    retry: #retry,
                    timeout_ms: #timeout,
                    call: __drover_call,
                }
            }
        };
    }
}

fn pure_registration(f: &ItemFn, params: &[Param]) -> TokenStream {
    let ident = &f.sig.ident;
    let name = ident.unraw().to_string();
    let arity = params.len();
    let (lets, pass) = decode_args(&name, params, quote!(__drover_args));
    quote! {
        const _: () = {
            fn __drover_call(
                args: &[::drover::__private::Value],
            ) -> ::core::result::Result<::drover::__private::Value, ::std::string::String> {
                let run = || -> ::core::result::Result<::drover::__private::Value, ::drover::Error> {
                    ::drover::__private::check_arity(#name, args.len(), #arity)?;
                    let mut __drover_args = args.iter().cloned();
                    #lets
                    ::drover::__private::encode_value(&#ident(#(#pass),*))
                };
                run().map_err(|e| e.to_string())
            }
            ::drover::__private::inventory::submit! {
                ::drover::__private::PureDef { name: #name, call: __drover_call }
            }
        };
    }
}

/// The typed handle `mod name { NAME, HASH, IR, run, start }`. Without a
/// compiled module (the lowering failed) the constants are empty, so code
/// using the handle still type-checks while the errors are shown.
fn handle_module(f: &ItemFn, compiled: Option<&Compiled>) -> TokenStream {
    let vis = &f.vis;
    let ident = &f.sig.ident;
    let name = ident.unraw().to_string();
    let (hash, bytes) = match compiled {
        Some(c) => {
            let bytes = drover_ir::wire::encode(&c.module);
            let hash = drover_ir::wire::hash_bytes(&bytes).to_string();
            (hash, bytes)
        }
        None => (String::new(), Vec::new()),
    };
    let ir = LitByteStr::new(&bytes, Span::call_site());
    let mut names = Vec::new();
    let mut types = Vec::new();
    for (i, input) in f.sig.inputs.iter().enumerate() {
        if let FnArg::Typed(t) = input {
            names.push(format_ident!("__drover_arg{i}"));
            types.push(&t.ty);
        }
    }
    let output = &f.sig.output;
    quote! {
        #[doc(hidden)]
        #vis mod #ident {
            // The handle's signatures use the user's types, written in the
            // parent module.
            #[allow(unused_imports)]
            use super::*;

            /// The workflow's name, as registered and as `call` names it.
            pub const NAME: &str = #name;
            /// The BLAKE3 hash of [`IR`], in hex: the program's identity.
            pub const HASH: &str = #hash;
            /// The workflow compiled to Drover bytecode (`.dbc`).
            pub const IR: &[u8] = #ir;
            /// What kind of Drover fn this is; checked by `#[workflow]` at each call.
            pub type __DroverKind = ::drover::__private::kind::WorkflowFn;

            /// Runs the workflow as a child of the calling workflow (natively:
            /// awaits the fn itself).
            pub async fn run(#(#names: #types),*) #output {
                super::#ident(#(#names),*).await
            }

            /// Starts a run of the workflow through `client`.
            pub async fn start<C: ::drover::client::StartWorkflow + ?Sized>(
                client: &C,
                #(#names: #types),*
            ) -> ::core::result::Result<::drover::client::RunId, ::drover::Error> {
                let args = ::std::vec![#(::drover::__private::encode_value(&#names)?),*];
                client.start_raw(NAME, HASH, args).await
            }
        }
    }
}

fn workflow_registration(f: &ItemFn, c: &Compiled) -> TokenStream {
    let ident = &f.sig.ident;
    let rows = c.params.iter().map(|(n, t)| quote!((#n, #t)));
    let ret = &c.ret;
    quote! {
        const _: () = {
            ::drover::__private::inventory::submit! {
                ::drover::__private::WorkflowDef {
                    name: #ident::NAME,
                    hash: #ident::HASH,
                    ir: #ident::IR,
                    params: &[#(#rows),*],
                    ret: #ret,
                }
            }
        };
    }
}

/// One check per activity, pure fn and child workflow the body uses, spanned
/// at its first call, so a callee of the wrong kind (or no kind) is an error
/// there rather than a failure at run time.
fn kind_checks(c: &Compiled) -> TokenStream {
    let lists = [
        (&c.activities, quote!(expect_activity)),
        (&c.pures, quote!(expect_pure)),
        (&c.children, quote!(expect_workflow)),
    ];
    let mut checks = TokenStream::new();
    for (list, check) in lists {
        for (name, span) in list {
            let Some(callee) = callee_ident(name, *span) else {
                continue;
            };
            checks.extend(quote_spanned! {*span=>
                ::drover::__private::kind::#check::<#callee::__DroverKind>();
            });
        }
    }
    if checks.is_empty() {
        return checks;
    }
    quote!(const _: () = { #checks };)
}

/// `name` as an identifier (raw when it is a keyword), or `None` when it is
/// not one, which the lowering never reports; then there is nothing to check.
fn callee_ident(name: &str, span: Span) -> Option<Ident> {
    if syn::parse_str::<Ident>(name).is_ok() {
        Some(Ident::new(name, span))
    } else if syn::parse_str::<Ident>(&format!("r#{name}")).is_ok() {
        Some(Ident::new_raw(name, span))
    } else {
        None
    }
}

/// The options of `#[activity(...)]`.
#[derive(Default)]
struct ActivityOptions {
    resources: Vec<(String, u32)>,
    retry: Option<RetryOption>,
    timeout_ms: Option<u64>,
}

struct RetryOption {
    attempts: u32,
    initial_ms: u64,
    max_ms: u64,
}

/// Defaults of `retry(...)` for the keys left out.
const DEFAULT_INITIAL_MS: u64 = 100;
const DEFAULT_MAX_MS: u64 = 10_000;

/// Parses `resources(a = 1, ..), retry(attempts = n, initial = "..", max = ".."), timeout = ".."`,
/// collecting every error and skipping past the bad parts.
fn parse_activity_options(attr: TokenStream, errors: &mut Vec<syn::Error>) -> ActivityOptions {
    let mut opts = ActivityOptions::default();
    let mut seen: Vec<String> = Vec::new();
    let parser = syn::meta::parser(|meta| {
        let key = meta
            .path
            .get_ident()
            .map(|i| i.to_string())
            .unwrap_or_default();
        if seen.contains(&key) {
            errors.push(meta.error(format!("`{key}` is given twice")));
            return skip_value(&meta);
        }
        seen.push(key.clone());
        match key.as_str() {
            "resources" => {
                if !meta.input.peek(syn::token::Paren) {
                    errors.push(meta.error("expected `resources(name = units, ...)`"));
                    return skip_value(&meta);
                }
                meta.parse_nested_meta(|r| {
                    let Some(name) = r.path.get_ident().map(|i| i.unraw().to_string()) else {
                        errors.push(r.error("a resource name is a single identifier"));
                        return skip_value(&r);
                    };
                    let units: LitInt = r.value()?.parse()?;
                    match units.base10_parse::<u32>() {
                        Ok(0) | Err(_) => errors.push(syn::Error::new(
                            units.span(),
                            "resource units must be a whole number from 1 to 4294967295",
                        )),
                        Ok(_) if opts.resources.iter().any(|(r, _)| *r == name) => {
                            errors.push(r.error(format!("resource `{name}` is given twice")));
                        }
                        Ok(n) => opts.resources.push((name, n)),
                    }
                    Ok(())
                })
            }
            "retry" => {
                if !meta.input.peek(syn::token::Paren) {
                    errors.push(meta.error(
                        "expected `retry(attempts = n, initial = \"100ms\", max = \"10s\")`",
                    ));
                    return skip_value(&meta);
                }
                let mut attempts = None;
                let mut attempts_given = false;
                let mut initial = DEFAULT_INITIAL_MS;
                let mut max = DEFAULT_MAX_MS;
                let mut initial_span = None;
                meta.parse_nested_meta(|r| {
                    let key = r.path.get_ident().map(|i| i.to_string()).unwrap_or_default();
                    match key.as_str() {
                        "attempts" => {
                            attempts_given = true;
                            let lit: LitInt = r.value()?.parse()?;
                            match lit.base10_parse::<u32>() {
                                Ok(n) if n >= 1 => attempts = Some(n),
                                _ => errors.push(syn::Error::new(
                                    lit.span(),
                                    "`attempts` counts every attempt, the first included: a whole number from 1",
                                )),
                            }
                        }
                        "initial" | "max" => {
                            let lit: LitStr = r.value()?.parse()?;
                            if let Some(ms) = duration_ms(&lit, errors) {
                                if key == "initial" {
                                    initial = ms;
                                    initial_span = Some(lit.span());
                                } else {
                                    max = ms;
                                }
                            }
                        }
                        _ => {
                            errors.push(r.error(format!(
                                "unknown retry option `{}`: expected `attempts`, `initial` or `max`",
                                path_text(&r.path)
                            )));
                            return skip_value(&r);
                        }
                    }
                    Ok(())
                })?;
                if initial > max {
                    errors.push(syn::Error::new(
                        initial_span.unwrap_or_else(|| meta.path.span()),
                        "the `initial` backoff is longer than the `max` backoff",
                    ));
                }
                match attempts {
                    Some(attempts) => {
                        opts.retry = Some(RetryOption {
                            attempts,
                            initial_ms: initial,
                            max_ms: max,
                        })
                    }
                    // A bad count was reported where it was written.
                    None if attempts_given => {}
                    None => errors.push(meta.error("`retry(...)` needs `attempts = n`")),
                }
                Ok(())
            }
            "timeout" => {
                let lit: LitStr = meta.value()?.parse()?;
                opts.timeout_ms = duration_ms(&lit, errors);
                Ok(())
            }
            _ => {
                errors.push(meta.error(format!(
                    "unknown activity option `{}`: expected `resources`, `retry` or `timeout`",
                    path_text(&meta.path)
                )));
                skip_value(&meta)
            }
        }
    });
    if let Err(e) = syn::parse::Parser::parse2(parser, attr) {
        errors.push(e);
    }
    opts
}

fn path_text(p: &syn::Path) -> String {
    type_text(p)
}

/// Consumes whatever follows a key we already reported: `= expr` or `(...)`.
fn skip_value(meta: &syn::meta::ParseNestedMeta) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        meta.value()?.parse::<syn::Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        let _content;
        syn::parenthesized!(_content in meta.input);
    }
    Ok(())
}

/// A duration literal such as `"100ms"`, `"30s"` or `"2m"`, in whole
/// milliseconds; records an error on the literal when it is not one.
fn duration_ms(lit: &LitStr, errors: &mut Vec<syn::Error>) -> Option<u64> {
    let text = lit.value();
    let parsed: Result<Duration, String> =
        humantime::parse_duration(&text).map_err(|e| e.to_string());
    let problem = match parsed {
        Ok(d) if d.is_zero() => "a duration must be longer than zero".to_owned(),
        Ok(d) if d.subsec_nanos() % 1_000_000 != 0 => {
            "durations are kept in whole milliseconds".to_owned()
        }
        Ok(d) => match u64::try_from(d.as_millis()) {
            Ok(ms) => return Some(ms),
            Err(_) => "this duration is too long".to_owned(),
        },
        Err(e) => e,
    };
    errors.push(syn::Error::new(
        lit.span(),
        format!("bad duration {text:?}: {problem}; write e.g. \"250ms\", \"30s\" or \"5m\""),
    ));
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn activity_errors(attr: TokenStream, item: TokenStream) -> Vec<String> {
        let mut errors = Vec::new();
        let _ = parse_activity_options(attr, &mut errors);
        let f: ItemFn = syn::parse2(item).unwrap();
        errors.extend(signature_errors(&f.sig, "#[activity]"));
        errors.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn activity_options_parse() {
        let mut errors = Vec::new();
        let opts = parse_activity_options(
            quote!(
                resources(scanner_license = 1, db = 20),
                retry(attempts = 5, initial = "100ms", max = "10s"),
                timeout = "30s"
            ),
            &mut errors,
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            opts.resources,
            vec![("scanner_license".to_owned(), 1), ("db".to_owned(), 20)]
        );
        let r = opts.retry.unwrap();
        assert_eq!((r.attempts, r.initial_ms, r.max_ms), (5, 100, 10_000));
        assert_eq!(opts.timeout_ms, Some(30_000));
    }

    #[test]
    fn every_attribute_error_is_collected() {
        let errs = activity_errors(
            quote!(
                colour = "red",
                timeout = "soon",
                retry(attempts = 0, max = "1s", initial = "2s")
            ),
            quote!(
                async fn f<T>(&self) {}
            ),
        );
        assert_eq!(errs.len(), 6, "{errs:#?}");
        assert!(errs[0].contains("unknown activity option `colour`"));
        assert!(errs[1].contains("bad duration \"soon\""));
        assert!(errs[2].contains("`attempts` counts every attempt"));
        assert!(errs[3].contains("`initial` backoff is longer than the `max`"));
        assert!(errs[4].contains("`self` parameters"));
        assert!(errs[5].contains("cannot be generic"));
    }

    #[test]
    fn durations_are_whole_positive_milliseconds() {
        let mut errors = Vec::new();
        let ms = |s: &str, errors: &mut Vec<syn::Error>| {
            duration_ms(&LitStr::new(s, Span::call_site()), errors)
        };
        assert_eq!(ms("250ms", &mut errors), Some(250));
        assert_eq!(ms("2m", &mut errors), Some(120_000));
        assert_eq!(ms("0s", &mut errors), None);
        assert_eq!(ms("10us", &mut errors), None);
        assert_eq!(errors.len(), 2);
    }

    #[test]
    fn pure_rejects_async_and_keeps_the_fn() {
        let out = pure(
            TokenStream::new(),
            quote!(
                async fn f(x: i64) -> i64 {
                    x
                }
            ),
        );
        let text = out.to_string();
        assert!(text.contains("must not be async"), "{text}");
        assert!(text.contains("async fn f"), "{text}");
        assert!(
            !text.contains("PureDef"),
            "no registration on error: {text}"
        );
    }

    #[test]
    fn reference_params_decode_into_owned_types() {
        let (owned, how) = decoded_type(&syn::parse_quote!(&str));
        assert_eq!(owned.to_string(), ":: std :: string :: String");
        assert_eq!(how.to_string(), "&");
        let (owned, _) = decoded_type(&syn::parse_quote!(&[u8]));
        assert_eq!(owned.to_string(), ":: std :: vec :: Vec < u8 >");
        let ty: Type = syn::parse_quote!(Option<&[String]>);
        assert_eq!(type_text(&ty), "Option<&[String]>");
    }
}
