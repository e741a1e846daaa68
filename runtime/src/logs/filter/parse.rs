//! The parser: filter text to [`Expr`], stopping at the first mistake.
//!
//! Tokens are read with nom; the precedence levels (`or`, `and`, `not`,
//! comparison) are hand-written functions, one per grammar rule in the
//! [module docs](super). Each function returns nom's `Error` when its rule
//! does not start here (so the caller may try something else) and
//! `Failure` once it has committed, which is the error the user sees.
//!
//! Positions come from pointers into the text: every slice the parser
//! passes around points into it, so an error's position is exact.

use nom::branch::alt;
use nom::bytes::complete::{tag, take_while};
use nom::character::complete::{char, digit1, one_of, satisfy};
use nom::combinator::{opt, recognize};
use nom::sequence::{pair, tuple};
use nom::IResult;

use super::error::FilterError;
use super::{
    is_root_name, reserved_as, Expr, Op, Operand, Path, Segment, MAX_DEPTH, MAX_FILTER_LEN,
};
use crate::log::Level;
use crate::logs::event::parse_level;

const LEVELS_HELP: &str = "the levels, least severe first, are trace, debug, info, warn and error";
const ESCAPES_HELP: &str = "the escapes are \\\" \\\\ \\n \\r \\t \\0 and \\u{NNNN}";

/// Parses a whole filter.
pub(super) fn parse(text: &str) -> Result<Expr, FilterError> {
    if text.len() > MAX_FILTER_LEN {
        let mut cut = MAX_FILTER_LEN;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let mut e = FilterError::new(
            text,
            cut..text.len(),
            format!("the filter is too long: {} bytes", text.len()),
            "past the limit".to_owned(),
        );
        e.inner.help = Some(format!("a filter may be at most {MAX_FILTER_LEN} bytes"));
        return Err(e);
    }
    let err = match or_expr(text, 0) {
        Ok((rest, expr)) => {
            let rest = ws(rest);
            if rest.is_empty() {
                return Ok(expr);
            }
            after_expr(rest, None)
        }
        Err(nom::Err::Failure(e)) => e,
        Err(nom::Err::Error(_)) => {
            let e = SynErr::expected(text, "a condition");
            if ws(text).is_empty() {
                e.help("write a condition, e.g. `level >= warn`")
            } else {
                e
            }
        }
        // Only streaming parsers return `Incomplete`; these are all complete.
        Err(nom::Err::Incomplete(_)) => SynErr::expected(end(text), "a condition"),
    };
    Err(err.into_error(text))
}

// ---------------------------------------------------------------------------
// Errors inside the parser

/// A syntax error while parsing: a position in the text and what to say.
// Boxed: nom passes errors by value on every failed alternative.
#[derive(Debug)]
struct SynErr<'a>(Box<SynErrData<'a>>);

#[derive(Debug)]
struct SynErrData<'a> {
    at: &'a str,
    len: usize,
    what: What,
    help: Option<String>,
    /// A second position (`at`, `len`, label).
    related: Option<(&'a str, usize, String)>,
}

#[derive(Debug)]
enum What {
    /// "expected `expected`, found `found`".
    Expected { expected: String, found: String },
    /// A complete message, and the label under the span.
    Message { message: String, label: String },
}

impl<'a> SynErr<'a> {
    /// Expected `what` at the next token of `i`.
    fn expected(i: &'a str, what: impl Into<String>) -> Self {
        let at = ws(i);
        let (len, found) = describe(at);
        SynErr(Box::new(SynErrData {
            at,
            len,
            what: What::Expected {
                expected: what.into(),
                found,
            },
            help: None,
            related: None,
        }))
    }

    /// A message about the `len` bytes at `at`.
    fn message(
        at: &'a str,
        len: usize,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> Self {
        SynErr(Box::new(SynErrData {
            at,
            len,
            what: What::Message {
                message: message.into(),
                label: label.into(),
            },
            help: None,
            related: None,
        }))
    }

    fn help(mut self, help: impl Into<String>) -> Self {
        self.0.help = Some(help.into());
        self
    }

    fn related(mut self, at: &'a str, len: usize, label: impl Into<String>) -> Self {
        self.0.related = Some((at, len, label.into()));
        self
    }

    fn into_error(self, text: &str) -> FilterError {
        let SynErrData {
            at,
            len,
            what,
            help,
            related,
        } = *self.0;
        let start = offset(text, at);
        let span = start..start + len;
        let mut e = match what {
            What::Expected { expected, found } => {
                let mut e = FilterError::new(
                    text,
                    span,
                    format!("expected {expected}, found {found}"),
                    format!("expected {expected}"),
                );
                e.inner.expected = Some(expected);
                e.inner.found = Some(found);
                e
            }
            What::Message { message, label } => FilterError::new(text, span, message, label),
        };
        e.inner.help = help;
        e.inner.related = related.map(|(at, len, label)| {
            let s = offset(text, at);
            (s..(s + len).min(text.len()), label)
        });
        e
    }
}

impl<'a> nom::error::ParseError<&'a str> for SynErr<'a> {
    fn from_error_kind(input: &'a str, _: nom::error::ErrorKind) -> Self {
        SynErr::expected(input, "valid syntax")
    }

    fn append(_: &'a str, _: nom::error::ErrorKind, other: Self) -> Self {
        other
    }
}

type PResult<'a, T> = IResult<&'a str, T, SynErr<'a>>;

fn error<'a, T>(e: SynErr<'a>) -> PResult<'a, T> {
    Err(nom::Err::Error(e))
}

fn failure<'a, T>(e: SynErr<'a>) -> PResult<'a, T> {
    Err(nom::Err::Failure(e))
}

/// Turns "this rule does not start here" into a committed error naming
/// what had to come next.
fn committed<'a, T>(
    i: &'a str,
    what: impl FnOnce() -> String,
    r: PResult<'a, T>,
) -> PResult<'a, T> {
    match r {
        Err(nom::Err::Error(_)) => failure(SynErr::expected(i, what())),
        other => other,
    }
}

/// The length of the token at `at` (already past whitespace) and how to
/// name it in a message.
fn describe(at: &str) -> (usize, String) {
    let Some(c) = at.chars().next() else {
        return (0, "end of filter".to_owned());
    };
    if c.is_ascii_alphanumeric()
        || c == '_'
        || (c == '-' && at[1..].starts_with(|c: char| c.is_ascii_digit()))
    {
        let len = 1 + at[1..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(at.len() - 1);
        let word = &at[..len];
        // Long words are cut so the message stays one line.
        return match word.char_indices().nth(40) {
            Some((cut, _)) => (len, format!("`{}…`", &word[..cut])),
            None => (len, format!("`{word}`")),
        };
    }
    if c == '"' {
        return (string_len(at).unwrap_or(1), "a string".to_owned());
    }
    for two in ["==", "!=", "<=", ">=", "&&", "||"] {
        if at.starts_with(two) {
            return (2, format!("`{two}`"));
        }
    }
    (c.len_utf8(), format!("`{}`", c.escape_debug()))
}

/// The byte length of the complete string literal at the start of `at`.
fn string_len(at: &str) -> Option<usize> {
    let mut escaped = false;
    for (n, c) in at.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(n + 1),
            _ => {}
        }
    }
    None
}

/// The byte offset of `sub` in `text`, clamped so a stray slice cannot make
/// a span out of bounds.
fn offset(text: &str, sub: &str) -> usize {
    (sub.as_ptr() as usize)
        .checked_sub(text.as_ptr() as usize)
        .map_or(text.len(), |o| o.min(text.len()))
}

/// The empty end of `s`, a slice that still points into the text.
fn end(s: &str) -> &str {
    &s[s.len()..]
}

// ---------------------------------------------------------------------------
// Tokens

fn ws(i: &str) -> &str {
    i.trim_start()
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn ident(i: &str) -> PResult<'_, &str> {
    recognize(pair(
        satisfy(|c| c.is_ascii_alphabetic() || c == '_'),
        take_while(is_ident_char),
    ))(i)
}

/// The word `kw` after whitespace, and not the start of a longer word.
fn keyword<'a>(i: &'a str, kw: &str) -> Option<&'a str> {
    match ident(ws(i)) {
        Ok((rest, w)) if w == kw => Some(rest),
        _ => None,
    }
}

/// `or`, `||`.
fn or_op(i: &str) -> Option<&str> {
    keyword(i, "or").or_else(|| ws(i).strip_prefix("||"))
}

/// `and`, `&&`.
fn and_op(i: &str) -> Option<&str> {
    keyword(i, "and").or_else(|| ws(i).strip_prefix("&&"))
}

/// `not`, or `!` when it does not begin `!=`.
fn not_op(i: &str) -> Option<&str> {
    let t = ws(i);
    keyword(t, "not").or_else(|| t.strip_prefix('!').filter(|r| !r.starts_with('=')))
}

// ---------------------------------------------------------------------------
// Expressions

fn or_expr(i: &str, depth: usize) -> PResult<'_, Expr> {
    let (mut rest, first) = and_expr(i, depth)?;
    let mut items = vec![first];
    while let Some(after) = or_op(rest) {
        let (r, e) = committed(
            after,
            || "a condition after `or`".into(),
            and_expr(after, depth),
        )?;
        items.push(e);
        rest = r;
    }
    Ok((rest, collapse(items, Expr::Or)))
}

fn and_expr(i: &str, depth: usize) -> PResult<'_, Expr> {
    let (mut rest, first) = not_expr(i, depth)?;
    let mut items = vec![first];
    while let Some(after) = and_op(rest) {
        let (r, e) = committed(
            after,
            || "a condition after `and`".into(),
            not_expr(after, depth),
        )?;
        items.push(e);
        rest = r;
    }
    Ok((rest, collapse(items, Expr::And)))
}

/// One operand stands for itself; `Or`/`And` always hold two or more.
fn collapse(mut items: Vec<Expr>, join: fn(Vec<Expr>) -> Expr) -> Expr {
    match items.pop() {
        Some(only) if items.is_empty() => only,
        Some(last) => {
            items.push(last);
            join(items)
        }
        // Callers always pass at least one item; an empty `and` is true.
        None => join(items),
    }
}

fn not_expr(i: &str, depth: usize) -> PResult<'_, Expr> {
    let Some(after) = not_op(i) else {
        return cmp(i, depth);
    };
    let t = ws(i);
    deeper(t, depth)?;
    let (rest, e) = committed(
        after,
        || "a condition after `not`".into(),
        not_expr(after, depth + 1),
    )?;
    Ok((rest, Expr::Not(Box::new(e))))
}

/// Fails if nesting once more at `at` would pass [`MAX_DEPTH`].
fn deeper(at: &str, depth: usize) -> PResult<'_, ()> {
    if depth < MAX_DEPTH {
        return Ok((at, ()));
    }
    let len = at.chars().next().map_or(0, char::len_utf8);
    failure(
        SynErr::message(
            at,
            len,
            "the filter is nested too deeply",
            "one level too many",
        )
        .help(format!(
            "parentheses, `not` and lists may nest at most {MAX_DEPTH} levels"
        )),
    )
}

fn cmp(i: &str, depth: usize) -> PResult<'_, Expr> {
    let t = ws(i);
    if let Some(inner) = t.strip_prefix('(') {
        deeper(t, depth)?;
        let (rest, e) = committed(
            inner,
            || "a condition after `(`".into(),
            or_expr(inner, depth + 1),
        )?;
        let rest = ws(rest);
        return match rest.strip_prefix(')') {
            Some(r) => Ok((r, e)),
            None => failure(after_expr(rest, Some(t))),
        };
    }
    if let Some(after) = keyword(t, "exists").filter(|r| ws(r).starts_with('(')) {
        return exists(after);
    }
    let (rest, left) = value(t, depth, false)?;
    let Some((after_op, op)) = operator(rest)? else {
        return Ok((rest, Expr::Truthy(left)));
    };
    let is_level = |o: &Operand| matches!(o, Operand::Path(p) if p.is_root("level"));
    let level_cmp = !matches!(op, Op::Contains | Op::Matches);
    let right_at = ws(after_op);
    let (rest, right) = committed(
        after_op,
        || format!("a value after `{op}`"),
        value(after_op, depth, level_cmp && is_level(&left)),
    )?;
    // `warn <= level`: read the left side again as a level, now that we
    // know what it is compared with.
    let left =
        if level_cmp && is_level(&right) && !matches!(left, Operand::Path(_) | Operand::Level(_)) {
            value(t, depth, true)?.1
        } else {
            left
        };
    let right_len = right_at.len() - rest.len();
    let literal = !matches!(right, Operand::Path(_));
    if op == Op::Matches && literal && !matches!(right, Operand::Str(_)) {
        return failure(
            SynErr::message(right_at, right_len, "`matches` takes a glob pattern", "not a string")
                .help("write the pattern as a string; `*` matches any run of characters and `?` any one, e.g. `msg matches \"*timeout*\"`"),
        );
    }
    if op == Op::In && literal && !matches!(right, Operand::List(_)) {
        return failure(
            SynErr::message(right_at, right_len, "`in` takes a list", "not a list")
                .help("write the choices in brackets, e.g. `level in [warn, error]`"),
        );
    }
    Ok((rest, Expr::Compare { left, op, right }))
}

/// `exists(path)`, after the word `exists`.
fn exists(i: &str) -> PResult<'_, Expr> {
    // The caller saw the `(`.
    let open = ws(i);
    let inner = ws(&open[1..]);
    let (rest, p) = match path(inner) {
        Ok(ok) => ok,
        Err(nom::Err::Error(_)) => {
            return failure(SynErr::expected(
                inner,
                "a path, e.g. `exists(input.customer_id)`",
            ))
        }
        Err(e) => return Err(e),
    };
    let rest = ws(rest);
    match rest.strip_prefix(')') {
        Some(r) => Ok((r, Expr::Exists(p))),
        None => failure(SynErr::expected(rest, "`)`").related(open, 1, "`exists(` opens here")),
    }
}

/// The comparison operator after a value, if there is one. Common
/// spellings from other languages are reported with the right one.
fn operator(i: &str) -> Result<Option<(&str, Op)>, nom::Err<SynErr<'_>>> {
    let t = ws(i);
    let symbol: PResult<'_, &str> = alt((
        tag("=="),
        tag("!="),
        tag("<>"),
        tag("<="),
        tag(">="),
        tag("=>"),
        tag("=<"),
        tag("<"),
        tag(">"),
        tag("="),
    ))(t);
    if let Ok((rest, s)) = symbol {
        let op = match s {
            "==" => Op::Eq,
            "!=" => Op::Ne,
            "<=" => Op::Le,
            ">=" => Op::Ge,
            "<" => Op::Lt,
            ">" => Op::Gt,
            wrong => {
                let right = match wrong {
                    "<>" => "!=",
                    "=>" => ">=",
                    "=<" => "<=",
                    _ => "==",
                };
                return Err(nom::Err::Failure(
                    SynErr::message(
                        t,
                        wrong.len(),
                        format!("`{wrong}` is not an operator"),
                        "not an operator",
                    )
                    .help(format!("did you mean `{right}`?")),
                ));
            }
        };
        return Ok(Some((rest, op)));
    }
    let Ok((rest, w)) = ident(t) else {
        return Ok(None);
    };
    match w {
        "contains" => return Ok(Some((rest, Op::Contains))),
        "matches" => return Ok(Some((rest, Op::Matches))),
        "in" => return Ok(Some((rest, Op::In))),
        _ => {}
    }
    let wrong = |message: String, label: &str, help: String| {
        Err(nom::Err::Failure(
            SynErr::message(t, w.len(), message, label).help(help),
        ))
    };
    if let Some(kw @ ("contains" | "matches" | "in")) = reserved_as(w) {
        return wrong(
            format!("`{w}` is not an operator"),
            "not lower case",
            format!("keywords are lower case: write `{kw}`"),
        );
    }
    if w == "not" && matches!(ident(ws(rest)), Ok((_, "in" | "contains" | "matches"))) {
        return wrong(
            "`not` goes before the whole comparison".into(),
            "not allowed here",
            "negate the comparison instead, e.g. `not (level in [warn, error])`".into(),
        );
    }
    if w.eq_ignore_ascii_case("like") {
        return wrong(
            "`like` is not an operator".into(),
            "not an operator",
            "use `matches` with a glob: `*` for any run of characters, `?` for one, e.g. `msg matches \"*timeout*\"`".into(),
        );
    }
    Ok(None)
}

/// Reports the token at `rest`, where an expression ended but the text did
/// not: inside parentheses opened at `open`, or at the top level.
fn after_expr<'a>(rest: &'a str, open: Option<&'a str>) -> SynErr<'a> {
    let expected = if open.is_some() {
        "`)`, `and` or `or`"
    } else {
        "`and`, `or` or the end of the filter"
    };
    let e = SynErr::expected(rest, expected);
    let e = match open {
        Some(open) if rest.is_empty() => {
            return SynErr::expected(rest, "`)`")
                .related(open, 1, "this `(` is never closed")
                .help("add a `)` to close it");
        }
        Some(open) => e.related(open, 1, "the `(` opened here"),
        None => e,
    };
    if open.is_none() && rest.starts_with(')') {
        return SynErr::message(rest, 1, "unmatched `)`", "no `(` opens this")
            .help("remove it, or add the `(` it closes");
    }
    if rest.starts_with('&') && !rest.starts_with("&&") {
        return e.help("did you mean `&&` (or `and`)?");
    }
    if rest.starts_with('|') && !rest.starts_with("||") {
        return e.help("did you mean `||` (or `or`)?");
    }
    if let Ok((_, w)) = ident(rest) {
        if let Some(kw @ ("and" | "or" | "not")) = reserved_as(w) {
            if w != kw {
                return e.help(format!("keywords are lower case: write `{kw}`"));
            }
        }
    }
    if matches!(operator(rest), Ok(Some(_))) {
        return e.help("comparisons do not chain: join them with `and`, e.g. `a > 1 and a < 5`");
    }
    if value(rest, 0, false).is_ok() {
        return e.help("join conditions with `and` or `or`");
    }
    e
}

// ---------------------------------------------------------------------------
// Values

/// A value. With `level` set it is compared with the event's level, so a
/// string or bare word must name a level.
fn value(i: &str, depth: usize, level: bool) -> PResult<'_, Operand> {
    let t = ws(i);
    let Some(c) = t.chars().next() else {
        return error(SynErr::expected(t, "a value"));
    };
    match c {
        '"' => {
            let (rest, s) = string(t)?;
            if !level {
                return Ok((rest, Operand::Str(s)));
            }
            // Any case, as levels in events are read.
            match parse_level(&s) {
                Some(l) => Ok((rest, Operand::Level(l))),
                None => failure(unknown_level(t, t.len() - rest.len(), &s)),
            }
        }
        '\'' => {
            let len = t[1..].find('\'').map_or(1, |n| n + 2);
            failure(
                SynErr::message(
                    t,
                    len,
                    "strings are written in double quotes",
                    "single quotes",
                )
                .help("write `\"...\"`"),
            )
        }
        '[' => list(t, depth, level),
        '-' | '0'..='9' => {
            let (rest, n) = number(t)?;
            if level {
                return failure(
                    SynErr::message(
                        t,
                        t.len() - rest.len(),
                        "`level` is compared with a level name",
                        "not a level",
                    )
                    .help(LEVELS_HELP),
                );
            }
            Ok((rest, n))
        }
        _ => word(t, level),
    }
}

/// A value that starts with a letter: a literal, a level or a path.
fn word(t: &str, level: bool) -> PResult<'_, Operand> {
    let (rest, w) = match ident(t) {
        Ok(ok) => ok,
        Err(_) => return error(SynErr::expected(t, "a value")),
    };
    let literal = match w {
        "null" => Some(Operand::Null),
        "true" => Some(Operand::Bool(true)),
        "false" => Some(Operand::Bool(false)),
        _ => None,
    };
    if let Some(lit) = literal {
        if level {
            return failure(
                SynErr::message(
                    t,
                    w.len(),
                    "`level` is compared with a level name",
                    "not a level",
                )
                .help(LEVELS_HELP),
            );
        }
        return Ok((rest, lit));
    }
    if let Some(l) = Level::from_name(w) {
        return Ok((rest, Operand::Level(l)));
    }
    match reserved_as(w) {
        // A keyword where a value belongs: the caller says what was missing.
        Some(r) if r == w => return error(SynErr::expected(t, "a value")),
        Some(r) => {
            let what = if Level::from_name(r).is_some() {
                "level names"
            } else if matches!(r, "true" | "false" | "null") {
                "literals"
            } else {
                "keywords"
            };
            return failure(
                SynErr::message(
                    t,
                    w.len(),
                    format!("`{w}` must be written `{r}`"),
                    "not lower case",
                )
                .help(format!("{what} are lower case")),
            );
        }
        None => {}
    }
    let (rest, p) = path(t)?;
    if level && p.segments.len() == 1 {
        return failure(unknown_level(t, w.len(), w));
    }
    Ok((rest, Operand::Path(p)))
}

fn unknown_level<'a>(at: &'a str, len: usize, name: &str) -> SynErr<'a> {
    let close = Level::ALL.into_iter().find(|l| {
        let n = l.name();
        name.len() >= 3 && (n.starts_with(name) || name.starts_with(n))
    });
    let help = match close {
        Some(l) => format!("did you mean `{l}`? {LEVELS_HELP}"),
        None => LEVELS_HELP.to_owned(),
    };
    SynErr::message(at, len, format!("unknown level `{name}`"), "not a level").help(help)
}

/// A path: a name, then `.name`, `."quoted name"` or `[index]`, with no
/// spaces in between.
fn path(t: &str) -> PResult<'_, Path> {
    let (mut rest, root) = ident(t)?;
    if !is_root_name(root) {
        return error(SynErr::expected(t, "a path"));
    }
    let mut segments = vec![Segment::Key(root.to_owned())];
    loop {
        if let Some(after) = rest.strip_prefix('.') {
            if after.starts_with('"') {
                let (r, key) = string(after)?;
                segments.push(Segment::Key(key));
                rest = r;
            } else if let Ok((r, key)) = ident(after) {
                segments.push(Segment::Key(key.to_owned()));
                rest = r;
            } else {
                return failure(SynErr::expected(after, "a field name after `.`"));
            }
        } else if let Some(after) = rest.strip_prefix('[') {
            let (r, digits) =
                match digit1::<_, SynErr<'_>>(after) {
                    Ok(ok) => ok,
                    Err(_) => return failure(SynErr::expected(after, "an index").help(
                        "indexes are whole numbers from 0, e.g. `items[0]`; name fields with `.`",
                    )),
                };
            let Ok(n) = digits.parse::<usize>() else {
                return failure(SynErr::message(
                    after,
                    digits.len(),
                    "index too large",
                    "too large",
                ));
            };
            let Some(r) = r.strip_prefix(']') else {
                return failure(SynErr::expected(r, "`]`").related(
                    rest,
                    1,
                    "the index starts here",
                ));
            };
            segments.push(Segment::Index(n));
            rest = r;
        } else {
            return Ok((rest, Path { segments }));
        }
    }
}

/// `[a, b, ...]`, at the `[`.
fn list(t: &str, depth: usize, level: bool) -> PResult<'_, Operand> {
    deeper(t, depth)?;
    let mut rest = &t[1..];
    let mut items = Vec::new();
    loop {
        if let Some(r) = ws(rest).strip_prefix(']') {
            return Ok((r, Operand::List(items)));
        }
        let (r, v) = committed(
            rest,
            || "a value or `]`".into(),
            value(rest, depth + 1, level),
        )?;
        items.push(v);
        let r = ws(r);
        if let Some(r) = r.strip_prefix(',') {
            rest = r;
        } else if let Some(r) = r.strip_prefix(']') {
            return Ok((r, Operand::List(items)));
        } else {
            let label = if r.is_empty() {
                "this `[` is never closed"
            } else {
                "the list starts here"
            };
            let e = SynErr::expected(r, "`,` or `]`").related(t, 1, label);
            return failure(if r.is_empty() {
                e.help("add a `]` to close it")
            } else {
                e
            });
        }
    }
}

/// A double-quoted string with escapes, at the `"`.
fn string(t: &str) -> PResult<'_, String> {
    let mut out = String::new();
    let mut rest = &t[1..];
    loop {
        let mut cs = rest.chars();
        match cs.next() {
            None => {
                return failure(
                    SynErr::message(
                        t,
                        t.len(),
                        "unterminated string",
                        "this string is never closed",
                    )
                    .help("close it with `\"`"),
                )
            }
            Some('"') => return Ok((cs.as_str(), out)),
            Some('\\') => {
                let (r, c) = escape(rest)?;
                out.push(c);
                rest = r;
            }
            Some(c) => {
                out.push(c);
                rest = cs.as_str();
            }
        }
    }
}

/// The escape at `at` (a `\`) and the char it stands for.
fn escape(at: &str) -> PResult<'_, char> {
    let mut cs = at[1..].chars();
    let simple = match cs.next() {
        Some('"') => '"',
        Some('\\') => '\\',
        Some('n') => '\n',
        Some('r') => '\r',
        Some('t') => '\t',
        Some('0') => '\0',
        Some('u') => return unicode_escape(at),
        Some(c) => {
            return failure(
                SynErr::message(
                    at,
                    1 + c.len_utf8(),
                    format!("unknown escape `\\{c}`"),
                    "unknown escape",
                )
                .help(ESCAPES_HELP),
            )
        }
        None => {
            return failure(
                SynErr::message(
                    at,
                    1,
                    "unterminated string",
                    "the text ends inside an escape",
                )
                .help("close the string with `\"`"),
            )
        }
    };
    Ok((cs.as_str(), simple))
}

/// `\u{NNNN}`, at the `\`.
fn unicode_escape(at: &str) -> PResult<'_, char> {
    let bad = |len: usize| {
        failure(
            SynErr::message(at, len, "invalid unicode escape", "invalid escape")
                .help("write a unicode escape as `\\u{NNNN}`, 1 to 6 hex digits naming a char"),
        )
    };
    let Some(body) = at[2..].strip_prefix('{') else {
        return bad(2);
    };
    let Some(close) = body.find('}') else {
        return bad(3);
    };
    let hex = &body[..close];
    let code = (1..=6)
        .contains(&hex.len())
        .then(|| u32::from_str_radix(hex, 16).ok())
        .flatten()
        .and_then(char::from_u32);
    match code {
        Some(c) => Ok((&body[close + 1..], c)),
        None => bad(4 + close),
    }
}

/// An int, or a float when it has a `.` or an exponent.
fn number(t: &str) -> PResult<'_, Operand> {
    let (rest, text) = match recognize::<_, _, SynErr<'_>, _>(tuple((
        opt(char('-')),
        digit1,
        opt(pair(char('.'), digit1)),
        opt(tuple((one_of("eE"), opt(one_of("+-")), digit1))),
    )))(t)
    {
        Ok(ok) => ok,
        // A lone `-`.
        Err(_) => return error(SynErr::expected(t, "a value")),
    };
    if rest.starts_with(|c: char| is_ident_char(c) || c == '.') {
        let tail = rest
            .find(|c: char| !(is_ident_char(c) || c == '.'))
            .unwrap_or(rest.len());
        return failure(
            SynErr::message(t, text.len() + tail, "malformed number", "not a number")
                .help("numbers look like `42`, `-7`, `1.5` or `2.5e-3`; quote text: `\"v1.2\"`"),
        );
    }
    if text.contains(['.', 'e', 'E']) {
        match text.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok((rest, Operand::Float(x))),
            _ => failure(SynErr::message(
                t,
                text.len(),
                "float out of range",
                "too large",
            )),
        }
    } else {
        match text.parse::<i64>() {
            Ok(n) => Ok((rest, Operand::Int(n))),
            Err(_) => failure(
                SynErr::message(t, text.len(), "integer out of range", "too large")
                    .help("ints are 64-bit signed; add `.0` to compare as a float"),
            ),
        }
    }
}
