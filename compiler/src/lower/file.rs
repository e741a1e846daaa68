//! `dslc compile`'s entry point: a whole Rust file, whose `#[activity]`,
//! `#[pure]` and `#[workflow]` functions tell the lowering what each
//! workflow calls, and miette rendering of every error against the file.

use miette::{Diagnostic, NamedSource, SourceSpan};

use super::diag::Diag;
use super::{lower_workflow, CompileOptions, Compiled, Items};

/// Every error of a file, rendered by miette against the `.rs` source.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{} error{} in {name}", errors.len(), if errors.len() == 1 { "" } else { "s" })]
pub struct FileErrors {
    /// The file name, as given.
    pub name: String,
    /// One diagnostic per error, each with its labeled span and help.
    #[related]
    pub errors: Vec<FileError>,
}

/// One error of a file.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{message}")]
pub struct FileError {
    /// What is wrong.
    pub message: String,
    /// What to do instead.
    #[help]
    pub help: Option<String>,
    #[source_code]
    src: NamedSource<String>,
    #[label("here")]
    span: SourceSpan,
    /// 1-based line and column of the error.
    pub line_col: (usize, usize),
}

impl FileErrors {
    fn new(name: &str, src: &str, diags: Vec<Diag>) -> FileErrors {
        let errors = diags
            .into_iter()
            .map(|d| {
                let range = d.span.byte_range();
                let start = d.span.start();
                FileError {
                    message: d.message,
                    help: d.help,
                    src: NamedSource::new(name, src.to_owned()),
                    span: SourceSpan::from(range.start..range.end.max(range.start)),
                    line_col: (start.line, start.column + 1),
                }
            })
            .collect();
        FileErrors {
            name: name.to_owned(),
            errors,
        }
    }
}

/// Whether an attribute's path ends in `name` (`#[workflow]`, `#[drover::workflow]`).
fn has_attr(attrs: &[syn::Attribute], name: &str) -> bool {
    attrs
        .iter()
        .any(|a| a.path().segments.last().is_some_and(|s| s.ident == name))
}

/// The parameter names of a function; unnamed ones are `p{i}`.
fn param_names(sig: &syn::Signature) -> Vec<String> {
    sig.inputs
        .iter()
        .enumerate()
        .filter_map(|(i, a)| match a {
            syn::FnArg::Typed(t) => Some(match &*t.pat {
                syn::Pat::Ident(id) => id.ident.to_string(),
                _ => format!("p{i}"),
            }),
            syn::FnArg::Receiver(_) => None,
        })
        .collect()
}

/// Collects the marked functions of a file, descending into inline modules.
fn collect<'a>(
    items: &'a [syn::Item],
    known: &mut Items,
    workflows: &mut Vec<&'a syn::ItemFn>,
    diags: &mut Vec<Diag>,
) {
    for item in items {
        match item {
            syn::Item::Fn(f) => {
                let name = f.sig.ident.to_string();
                if has_attr(&f.attrs, "workflow") {
                    known.workflows.insert(name, param_names(&f.sig));
                    workflows.push(f);
                } else if has_attr(&f.attrs, "activity") {
                    known.activities.insert(name, param_names(&f.sig));
                } else if has_attr(&f.attrs, "pure") {
                    known.pures.insert(name);
                }
            }
            syn::Item::Mod(m) => {
                if let Some((_, inner)) = &m.content {
                    collect(inner, known, workflows, diags);
                }
            }
            syn::Item::Impl(imp) => {
                for it in &imp.items {
                    if let syn::ImplItem::Fn(f) = it {
                        if has_attr(&f.attrs, "workflow") {
                            diags.push(Diag::new(
                                f.sig.ident.span(),
                                "a #[workflow] can't be a method in an `impl` block",
                                "make it a free function",
                            ));
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// dslc compile: parses a Rust file, finds #[workflow]/#[activity]/#[pure] fns (attribute path ending in those names), compiles every workflow.
pub fn compile_file(name: &str, src: &str) -> Result<Vec<Compiled>, FileErrors> {
    let file = match syn::parse_file(src) {
        Ok(f) => f,
        Err(e) => {
            let diags = e
                .into_iter()
                .map(|e| Diag::bare(e.span(), e.to_string()))
                .collect();
            return Err(FileErrors::new(name, src, diags));
        }
    };
    let mut known = Items::default();
    let mut workflows = Vec::new();
    let mut diags = Vec::new();
    collect(&file.items, &mut known, &mut workflows, &mut diags);
    let opts = CompileOptions {
        file: name.to_owned(),
        items: known,
    };
    let mut out = Vec::new();
    for f in workflows {
        let (compiled, mut errs) = lower_workflow(f, &opts);
        diags.append(&mut errs);
        out.extend(compiled);
    }
    if diags.is_empty() {
        Ok(out)
    } else {
        // Report in source order, whatever the lowering order was.
        diags.sort_by_key(|d| {
            let s = d.span.start();
            (s.line, s.column)
        });
        Err(FileErrors::new(name, src, diags))
    }
}
