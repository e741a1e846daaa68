//! [`FilterError`]: the first mistake in a filter, rendered by miette
//! against the filter text.

use std::fmt;
use std::ops::Range;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};

/// The name the filter text carries in rendered errors.
const SOURCE_NAME: &str = "filter";

/// Why a filter did not parse: where, what was expected and found, and how
/// to fix it.
// Boxed so that `Result`s carrying it stay small.
#[derive(Debug)]
pub struct FilterError {
    pub(super) inner: Box<ErrorData>,
}

#[derive(Debug)]
pub(super) struct ErrorData {
    pub(super) source: NamedSource<String>,
    pub(super) span: Range<usize>,
    pub(super) message: String,
    pub(super) label: String,
    pub(super) expected: Option<String>,
    pub(super) found: Option<String>,
    pub(super) help: Option<String>,
    /// A second place worth pointing at, e.g. the `(` a missing `)` closes.
    pub(super) related: Option<(Range<usize>, String)>,
}

impl FilterError {
    /// An error at `span` of `text`, spans clamped to the text.
    pub(super) fn new(text: &str, span: Range<usize>, message: String, label: String) -> Self {
        FilterError {
            inner: Box::new(ErrorData {
                // One space past the end gives "found end of filter" a column to
                // point at: miette draws no label for an empty span at the end.
                source: NamedSource::new(SOURCE_NAME, format!("{text} ")),
                span: clamp(text, span),
                message,
                label,
                expected: None,
                found: None,
                help: None,
                related: None,
            }),
        }
    }

    /// The byte range of the filter text the error is about.
    pub fn span(&self) -> Range<usize> {
        self.inner.span.clone()
    }

    /// The one-line message.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// What the parser expected at the span, when it expected something.
    pub fn expected(&self) -> Option<&str> {
        self.inner.expected.as_deref()
    }

    /// What it found there instead, e.g. ``"`AND`"`` or `"end of filter"`.
    pub fn found(&self) -> Option<&str> {
        self.inner.found.as_deref()
    }

    /// How to fix it, when there is something useful to say.
    pub fn help(&self) -> Option<&str> {
        self.inner.help.as_deref()
    }
}

/// How a span is drawn: an empty one as one column wide, so that it is
/// still drawn.
fn drawn(span: &Range<usize>) -> Range<usize> {
    span.start..span.end.max(span.start + 1)
}

/// `span` inside `text`, so that miette never reads past its end.
fn clamp(text: &str, span: Range<usize>) -> Range<usize> {
    let start = span.start.min(text.len());
    start..span.end.clamp(start, text.len())
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.message)
    }
}

impl std::error::Error for FilterError {}

impl Diagnostic for FilterError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new("drover::logs::filter"))
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.inner.source)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.inner
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display + 'a>)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let primary = LabeledSpan::new_primary_with_span(
            Some(self.inner.label.clone()),
            drawn(&self.inner.span),
        );
        let related = self
            .inner
            .related
            .iter()
            .map(|(span, label)| LabeledSpan::new_with_span(Some(label.clone()), drawn(span)));
        Some(Box::new(std::iter::once(primary).chain(related)))
    }
}
