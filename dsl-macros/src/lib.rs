//! Drover's attribute macros. Thin on purpose: each parses nothing itself
//! and hands its tokens to `drover_compiler::expand`, which `dslc` shares.
//! Use them through the `drover` crate, which re-exports them.

use proc_macro::TokenStream;

/// Marks an `async fn` as a Drover workflow: compiles it to IR, registers it
/// and adds a typed handle module of the same name.
#[proc_macro_attribute]
pub fn workflow(attr: TokenStream, item: TokenStream) -> TokenStream {
    drover_compiler::expand::workflow(attr.into(), item.into()).into()
}

/// Marks an `async fn` as an activity: native code a node runs as an effect.
#[proc_macro_attribute]
pub fn activity(attr: TokenStream, item: TokenStream) -> TokenStream {
    drover_compiler::expand::activity(attr.into(), item.into()).into()
}

/// Marks a deterministic fn that workflows may call inline, by name.
#[proc_macro_attribute]
pub fn pure(attr: TokenStream, item: TokenStream) -> TokenStream {
    drover_compiler::expand::pure(attr.into(), item.into()).into()
}
