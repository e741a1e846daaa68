//! What the verifier found: [`Diag`]s collected in a [`Report`], and their
//! rendering as one miette diagnostic against the assembly text.

use std::fmt;
use std::ops::Range;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};

use crate::module::Location;
use crate::text::TextMap;

/// How bad a finding is: errors make a module unfit to run, warnings do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The module must not be run.
    Error,
    /// Suspicious but runnable.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One finding of the verifier, at a location of the module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diag {
    /// Error or warning.
    pub severity: Severity,
    /// A stable identifier such as `verify::use-before-def`; see [`super::codes`].
    pub code: &'static str,
    /// What is wrong, in one sentence without a trailing period.
    pub message: String,
    /// The most precise part of the module the finding is about.
    pub location: Location,
    /// How to fix it, when the verifier has an idea.
    pub help: Option<String>,
    /// The location in words (`w0 \`scan_email\` bb2 \`miss\` #3`), so that a
    /// diagnostic printed without the text still says where it is.
    pub context: String,
}

impl fmt::Display for Diag {
    /// `error[verify::code] w0 \`name\` bb2 \`label\` #3: message`; the
    /// alternate form (`{:#}`) adds the help on a second line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}] ", self.severity, self.code)?;
        if !self.context.is_empty() {
            write!(f, "{}: ", self.context)?;
        }
        f.write_str(&self.message)?;
        if f.alternate() {
            if let Some(help) = &self.help {
                write!(f, "\n  help: {help}")?;
            }
        }
        Ok(())
    }
}

/// Everything the verifier found in a module, sorted by location (in text
/// order: effects, then each workflow's header, blocks and instructions),
/// then by code.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// The findings, in a stable order.
    pub diags: Vec<Diag>,
}

impl Report {
    /// The findings that are errors.
    pub fn errors(&self) -> impl Iterator<Item = &Diag> {
        self.diags.iter().filter(|d| d.severity == Severity::Error)
    }

    /// The findings that are warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Diag> {
        self.diags
            .iter()
            .filter(|d| d.severity == Severity::Warning)
    }

    /// Whether the module must not be run.
    pub fn has_errors(&self) -> bool {
        self.errors().next().is_some()
    }

    /// A miette diagnostic over `src` (the module's text, shown as `name`),
    /// with one labelled related diagnostic per finding, located through `map`.
    pub fn diagnostic(&self, name: &str, src: &str, map: &TextMap) -> VerifyDiagnostic {
        let related = self
            .diags
            .iter()
            .map(|d| RelatedDiag {
                code: d.code,
                message: d.message.clone(),
                severity: d.severity,
                help: d.help.clone(),
                span: map
                    .locate(d.location)
                    .filter(|r| span_fits(src, r))
                    .map(|r| (r, label(d.code))),
            })
            .collect();
        let errors = self.errors().count();
        let warnings = self.warnings().count();
        VerifyDiagnostic {
            message: match (errors, warnings) {
                (0, 0) => format!("`{name}` verified"),
                (0, w) => format!("`{name}` verified with {}", plural(w, "warning")),
                (e, w) => format!(
                    "`{name}` failed verification: {}, {}",
                    plural(e, "error"),
                    plural(w, "warning")
                ),
            },
            severity: if errors > 0 {
                miette::Severity::Error
            } else {
                miette::Severity::Warning
            },
            src: NamedSource::new(name, src.to_owned()),
            related,
        }
    }

    /// [`Report::diagnostic`] rendered as plain text with
    /// [`crate::diagnostics::render`].
    pub fn render(&self, name: &str, src: &str, map: &TextMap) -> String {
        crate::diagnostics::render(&self.diagnostic(name, src, map))
    }
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// A text map from another text (or a buggy one) must not make miette fail
/// halfway through a report, so spans that do not fit the text are dropped.
fn span_fits(src: &str, r: &Range<usize>) -> bool {
    r.start <= r.end
        && r.end <= src.len()
        && src.is_char_boundary(r.start)
        && src.is_char_boundary(r.end)
}

/// The short text under the caret, by code: the message above says the rest.
fn label(code: &str) -> &'static str {
    use super::codes::*;
    match code {
        DUPLICATE_WORKFLOW | DUPLICATE_EFFECT | DUPLICATE_PARAM | DUPLICATE_LABEL => {
            "defined again here"
        }
        NO_BLOCKS => "no blocks",
        EMPTY_BLOCK => "empty block",
        MISSING_TERMINATOR => "falls off the end after this",
        DEAD_CODE => "never runs",
        BAD_TARGET => "no such block",
        BAD_CONST => "no such constant",
        BAD_EFFECT => "no such effect",
        UNKNOWN_EFFECT => "not a built-in effect",
        EFFECT_ARITY => "declared here",
        RESERVED_NAMESPACE => "reserved namespace",
        ARITY => "wrong number of arguments",
        FORMAT_PLACEHOLDERS => "wrong number of arguments",
        FORMAT_BRACE => "unmatched brace",
        DUPLICATE_ARM => "duplicate tag",
        EMPTY_MATCH => "matches nothing",
        USE_BEFORE_DEF => "may be undefined here",
        REGISTER_TOO_LARGE => "register out of range",
        TOO_LARGE => "too large to analyse",
        UNREACHABLE_BLOCK => "unreachable",
        UNKNOWN_WORKFLOW => "not in this module",
        _ => "here",
    }
}

/// A verifier report as one miette diagnostic: a summary with each finding
/// as a related diagnostic labelled in the source text.
#[derive(Debug)]
pub struct VerifyDiagnostic {
    message: String,
    severity: miette::Severity,
    src: NamedSource<String>,
    related: Vec<RelatedDiag>,
}

impl fmt::Display for VerifyDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for VerifyDiagnostic {}

impl Diagnostic for VerifyDiagnostic {
    fn severity(&self) -> Option<miette::Severity> {
        Some(self.severity)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.src)
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        Some(Box::new(self.related.iter().map(|d| d as &dyn Diagnostic)))
    }
}

/// One finding inside a [`VerifyDiagnostic`]; it borrows its parent's source.
#[derive(Debug)]
struct RelatedDiag {
    code: &'static str,
    message: String,
    severity: Severity,
    help: Option<String>,
    span: Option<(Range<usize>, &'static str)>,
}

impl fmt::Display for RelatedDiag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RelatedDiag {}

impl Diagnostic for RelatedDiag {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let (range, text) = self.span.as_ref()?;
        let label = LabeledSpan::new_with_span(Some((*text).to_owned()), range.clone());
        Some(Box::new(std::iter::once(label)))
    }
}
