//! Diagnostics of the lowering: one spanned message per construct outside
//! the workflow subset, with a hint saying what to do instead.
//!
//! Each diagnostic is a [`Diag`]: a message, an optional help line and the
//! exact span of the offending construct. [`Diag::into_syn`] joins message and
//! help as `"{message}: {help}"`, which is what the proc macro shows; `dslc`
//! renders them apart with miette. The messages are stable: trybuild UI tests
//! compare them.

use proc_macro2::Span;
use quote::ToTokens;

/// One error of the lowering.
#[derive(Clone, Debug)]
pub struct Diag {
    /// The construct the error is about.
    pub span: Span,
    /// What is wrong.
    pub message: String,
    /// What to do instead, when there is something to say.
    pub help: Option<String>,
}

impl Diag {
    /// An error with a hint.
    pub(crate) fn new(span: Span, message: impl Into<String>, help: impl Into<String>) -> Diag {
        Diag {
            span,
            message: message.into(),
            help: Some(help.into()),
        }
    }

    /// An error that needs no hint.
    pub(crate) fn bare(span: Span, message: impl Into<String>) -> Diag {
        Diag {
            span,
            message: message.into(),
            help: None,
        }
    }

    /// The error as the proc macro reports it: message and help on one line.
    pub fn into_syn(self) -> syn::Error {
        syn::Error::new(self.span, self.text())
    }

    /// `"{message}: {help}"`, or the message alone.
    pub fn text(&self) -> String {
        match &self.help {
            Some(h) => format!("{}: {h}", self.message),
            None => self.message.clone(),
        }
    }
}

/// A construct's source text, squeezed onto one line for messages.
pub(crate) fn show(t: &impl ToTokens) -> String {
    let text = t.to_token_stream().to_string();
    // Token streams print with spaces around punctuation; tighten the usual
    // spots so the message reads like the code the user wrote.
    let text = text
        .replace(" . ", ".")
        .replace(" (", "(")
        .replace("( ", "(")
        .replace(" )", ")")
        .replace(" ,", ",")
        .replace(" :: ", "::")
        .replace(":: ", "::")
        .replace(" !", "!")
        .replace("& ", "&");
    if text.chars().count() > 60 {
        let cut: String = text.chars().take(57).collect();
        format!("{cut}...")
    } else {
        text
    }
}

/// Edit distance between two names, counting a swap of neighbours as one
/// edit (typos like `coutn`), for "did you mean" hints.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j - 1] + cost)
                .min(d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// Up to three of `candidates` closest to `name` by spelling, closest first;
/// only those close enough to be a plausible typo.
pub(crate) fn nearest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Vec<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .map(|c| (distance(name, c), c))
        .filter(|(d, c)| *d <= limit || c.starts_with(name) || name.starts_with(*c))
        .collect();
    scored.sort();
    scored.dedup();
    scored.into_iter().take(3).map(|(_, c)| c).collect()
}

/// "did you mean `a` or `b`?", or nothing when no name is close.
pub(crate) fn did_you_mean(names: &[&str]) -> Option<String> {
    match names {
        [] => None,
        [one] => Some(format!("did you mean `{one}`?")),
        [init @ .., last] => Some(format!(
            "did you mean {} or `{last}`?",
            init.iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_names_are_sorted_by_distance() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("coutn", "count"), 1);
        assert_eq!(nearest("lenn", ["len", "is_empty", "keys"]), vec!["len"]);
        assert_eq!(
            nearest("to_upper", ["to_uppercase", "to_lowercase", "trim"]),
            vec!["to_uppercase"]
        );
        assert!(nearest("zzzzzz", ["len"]).is_empty());
    }

    #[test]
    fn did_you_mean_lists_names() {
        assert_eq!(did_you_mean(&[]), None);
        assert_eq!(did_you_mean(&["a"]).unwrap(), "did you mean `a`?");
        assert_eq!(
            did_you_mean(&["a", "b", "c"]).unwrap(),
            "did you mean `a`, `b` or `c`?"
        );
    }
}
