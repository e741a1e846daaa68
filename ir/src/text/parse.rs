//! The parser: reads text assembly into a [`Module`], collecting every error
//! it can instead of stopping at the first.
//!
//! It works in two passes. The first reads the text into raw items (names
//! still unresolved), resynchronising at the next line after a syntax error.
//! The second resolves labels and effects, which may be used before they are
//! defined, and builds instructions with [`Inst::from_parts`], following the
//! opcode table rather than a per-instruction grammar.
//!
//! Whitespace, newlines included, and `;` comments may stand between any two
//! tokens, but each item (declaration, header, label, instruction) must end
//! its line, so a missing token is reported as "found end of line" on the
//! line that lacks it.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};
use nom::branch::alt;
use nom::character::complete::{char, digit1, one_of, satisfy};
use nom::combinator::{map, opt, recognize};
use nom::multi::many0_count;
use nom::sequence::{pair, preceded, tuple};
use nom::IResult;

use super::{BlockText, InstText, TextMap, WorkflowText};
use crate::builtins::Builtin;
use crate::catalog::{self, BUILTIN_EFFECTS};
use crate::entities::{Block, EffectRef, InstAddr, Reg, WorkflowId};
use crate::instructions::{
    Inst, LogLevel, Opcode, Operand, OperandKind, Policy, RetryPolicy, Symbol, OPCODES,
};
use crate::module::{BlockData, EffectDecl, EffectKind, Module, Span, Workflow};
use crate::value::{Map, Value};

/// How deeply literals may nest; deeper text is an error rather than a
/// stack overflow.
pub const MAX_LITERAL_DEPTH: usize = 64;
/// Errors reported before the parser gives up.
pub const MAX_ERRORS: usize = 100;

/// The name errors carry when the text has none.
const ANONYMOUS: &str = "<input>";

/// Parses text assembly into a module.
pub fn parse(src: &str) -> Result<Module, ParseErrors> {
    parse_with_map(ANONYMOUS, src).map(|(m, _)| m)
}

/// Parses text assembly named `name` (used in diagnostics), with the byte
/// range of each part.
pub fn parse_with_map(name: &str, src: &str) -> Result<(Module, TextMap), ParseErrors> {
    parse_inner(name, src, false)
}

/// Parses text assembly, then records each instruction's `.dasm` line:col in
/// `module.source_map` (file = `name`) for instructions that had no explicit
/// `@` annotation.
pub fn assemble(name: &str, src: &str) -> Result<(Module, TextMap), ParseErrors> {
    parse_inner(name, src, true)
}

/// Parses one value literal (`#Ok([1, "a"])`, `{"k": null}`, ...), the
/// syntax `Display for Value` writes; `name` is used in diagnostics.
pub fn parse_value(name: &str, src: &str) -> Result<Value, ParseErrors> {
    let lines = LineIndex::new(src);
    let start = trivia(src);
    let err = match value(0)(start) {
        Ok((rest, v)) => {
            let rest = trivia(rest);
            if rest.is_empty() {
                return Ok(v);
            }
            SynErr::expected(rest, "the end of the value")
        }
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => e,
        Err(nom::Err::Incomplete(_)) => SynErr::expected(end(src), "a value"),
    };
    Err(ParseErrors(Box::new(ErrorsInner {
        source: NamedSource::new(name, src.to_owned()),
        name: name.to_owned(),
        errors: vec![err.into_error(src, &lines)],
        truncated: false,
    })))
}

fn parse_inner(
    name: &str,
    src: &str,
    record_positions: bool,
) -> Result<(Module, TextMap), ParseErrors> {
    let lines = LineIndex::new(src);
    let mut reader = Reader {
        src,
        lines: &lines,
        errors: Vec::new(),
        effects: Vec::new(),
        workflows: Vec::new(),
    };
    reader.module();
    let Reader {
        mut errors,
        effects,
        workflows,
        ..
    } = reader;
    let mut builder = Builder {
        src,
        lines: &lines,
        module: Module::default(),
        map: TextMap::default(),
        errors: Vec::new(),
        effect_index: HashMap::new(),
        file: record_positions.then_some((name, None)),
    };
    builder.build(effects, workflows);
    errors.append(&mut builder.errors);
    if errors.is_empty() {
        return Ok((builder.module, builder.map));
    }
    errors.sort_by_key(|e| e.span.start);
    let truncated = errors.len() > MAX_ERRORS;
    errors.truncate(MAX_ERRORS);
    Err(ParseErrors(Box::new(ErrorsInner {
        source: NamedSource::new(name, src.to_owned()),
        name: name.to_owned(),
        errors,
        truncated,
    })))
}

// ---------------------------------------------------------------------------
// Errors

/// Every error found in a text, rendered by miette against that text.
// Boxed so that `Result`s carrying it stay small.
#[derive(Debug)]
pub struct ParseErrors(Box<ErrorsInner>);

#[derive(Debug)]
struct ErrorsInner {
    source: NamedSource<String>,
    name: String,
    errors: Vec<ParseError>,
    truncated: bool,
}

impl ParseErrors {
    /// The errors, in text order.
    pub fn errors(&self) -> &[ParseError] {
        &self.0.errors
    }

    /// The name the text was given.
    pub fn name(&self) -> &str {
        &self.0.name
    }
}

impl fmt::Display for ParseErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.errors.len();
        write!(
            f,
            "could not parse `{}`: {n} error{}",
            self.0.name,
            if n == 1 { "" } else { "s" }
        )?;
        if self.0.truncated {
            f.write_str(" (stopped there)")?;
        }
        Ok(())
    }
}

impl std::error::Error for ParseErrors {}

impl Diagnostic for ParseErrors {
    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.0.source)
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        Some(Box::new(self.0.errors.iter().map(|e| e as &dyn Diagnostic)))
    }
}

/// One error, at a byte range of the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
    pub span: Range<usize>,
    /// 1-based line of the span's start.
    pub line: u32,
    /// 1-based column of the span's start, in characters.
    pub col: u32,
    pub help: Option<String>,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.col, self.message)
    }
}

impl std::error::Error for ParseError {}

impl Diagnostic for ParseError {
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display + 'a>)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(
            Some(self.message.clone()),
            self.span.clone(),
        ))))
    }
}

/// Byte offset to line and column.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(src: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(src.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { starts }
    }

    /// 1-based line and column (in characters) of a byte offset.
    fn line_col(&self, src: &str, offset: usize) -> (u32, u32) {
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts.get(line - 1).copied().unwrap_or(0);
        let col = src.get(start..offset).map_or(0, |s| s.chars().count());
        (clamp_u32(line), clamp_u32(col + 1))
    }
}

fn clamp_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn make_error(
    src: &str,
    lines: &LineIndex,
    span: Range<usize>,
    message: String,
    help: Option<String>,
) -> ParseError {
    let start = span.start.min(src.len());
    let span = start..span.end.clamp(start, src.len());
    let (line, col) = lines.line_col(src, span.start);
    ParseError {
        message,
        span,
        line,
        col,
        help,
    }
}

/// A syntax error inside nom: where, what, and how to fix it.
#[derive(Debug)]
struct SynErr<'a> {
    at: &'a str,
    what: What,
    help: Option<String>,
}

#[derive(Debug)]
enum What {
    /// `expected ..., found <the token at `at`>`.
    Expected(&'static str),
    /// A complete message about the `len` bytes at `at`.
    Message(String, usize),
}

impl<'a> SynErr<'a> {
    fn expected(at: &'a str, what: &'static str) -> Self {
        SynErr {
            at,
            what: What::Expected(what),
            help: None,
        }
    }

    fn message(at: &'a str, len: usize, message: impl Into<String>) -> Self {
        SynErr {
            at,
            what: What::Message(message.into(), len),
            help: None,
        }
    }

    fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    fn or_help(self, help: impl FnOnce() -> String) -> Self {
        match self.help {
            Some(_) => self,
            None => self.help(help()),
        }
    }

    fn into_error(self, src: &str, lines: &LineIndex) -> ParseError {
        let start = offset(src, self.at);
        let (span, message) = match self.what {
            What::Expected(what) => {
                let (skip, len, found) = describe_found(self.at);
                let s = start + skip;
                (s..s + len, format!("expected {what}, found {found}"))
            }
            What::Message(message, len) => (start..start + len, message),
        };
        make_error(src, lines, span, message, self.help)
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

/// Where the token at `at` starts (after spaces on the same line), its length
/// and how to name it in a message.
fn describe_found(at: &str) -> (usize, usize, String) {
    let t = at.trim_start_matches([' ', '\t', '\r']);
    let skip = at.len() - t.len();
    let Some(c) = t.chars().next() else {
        return (skip, 0, "end of input".to_owned());
    };
    if c == '\n' || c == ';' {
        return (skip, 0, "end of line".to_owned());
    }
    if is_ident_char(c) {
        let len = t.find(|c| !is_ident_char(c)).unwrap_or(t.len());
        // The run is ASCII, so any byte index in it is a char boundary.
        let word = t.get(..len.min(40)).unwrap_or("");
        let ellipsis = if len > 40 { "…" } else { "" };
        return (skip, len, format!("`{word}{ellipsis}`"));
    }
    if c == '"' {
        return (skip, 1, "a string".to_owned());
    }
    (skip, c.len_utf8(), format!("`{}`", c.escape_debug()))
}

// ---------------------------------------------------------------------------
// Tokens

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Skips whitespace (newlines included) and `;` comments.
fn trivia(mut i: &str) -> &str {
    loop {
        let t = i.trim_start();
        match t.strip_prefix(';') {
            Some(comment) => {
                i = comment
                    .find('\n')
                    .map_or(end(comment), |n| skip(comment, n))
            }
            None => return t,
        }
    }
}

/// The text between `from` and `rest`, a suffix of it.
fn consumed<'a>(from: &'a str, rest: &'a str) -> &'a str {
    from.get(..from.len().saturating_sub(rest.len()))
        .unwrap_or_else(|| point(from))
}

// Positions are computed from pointers into the text (see [`offset`]), so
// every slice the parser returns, empty ones included, must point into the
// text: never return a literal `""`.

/// `s` from byte `n` on, or its empty end if `n` is not a boundary of it.
fn skip(s: &str, n: usize) -> &str {
    s.get(n..).unwrap_or_else(|| end(s))
}

/// The empty end of `s`.
fn end(s: &str) -> &str {
    s.split_at(s.len()).1
}

/// The byte offset of `sub` in `src`, clamped to `src` so that a slice from
/// elsewhere cannot make a span out of bounds.
fn offset(src: &str, sub: &str) -> usize {
    (sub.as_ptr() as usize)
        .checked_sub(src.as_ptr() as usize)
        .map_or(src.len(), |o| o.min(src.len()))
}

/// An empty slice at the start of `at`, to mark a position.
fn point(at: &str) -> &str {
    at.split_at(0).0
}

/// Runs `p` after trivia. When `p` does not match, the error is placed where
/// the previous token ended, naming what was expected.
fn tok<'a, O>(
    what: &'static str,
    mut p: impl FnMut(&'a str) -> PResult<'a, O>,
) -> impl FnMut(&'a str) -> PResult<'a, O> {
    move |i| match p(trivia(i)) {
        Err(nom::Err::Error(_)) => error(SynErr::expected(i, what)),
        other => other,
    }
}

/// Like [`tok`], but a mismatch is final: the caller has committed.
fn need<'a, O>(
    what: &'static str,
    p: impl FnMut(&'a str) -> PResult<'a, O>,
) -> impl FnMut(&'a str) -> PResult<'a, O> {
    nom::combinator::cut(tok(what, p))
}

fn sym<'a>(c: char, what: &'static str) -> impl FnMut(&'a str) -> PResult<'a, char> {
    tok(what, char(c))
}

fn ident(i: &str) -> PResult<'_, &str> {
    recognize(pair(
        satisfy(|c| c.is_ascii_alphabetic() || c == '_'),
        many0_count(satisfy(is_ident_char)),
    ))(i)
}

/// The identifier `kw` after trivia, and not a longer word.
fn keyword<'a>(kw: &'static str) -> impl FnMut(&'a str) -> PResult<'a, &'a str> {
    move |i| {
        let t = trivia(i);
        match ident(t) {
            Ok((rest, w)) if w == kw => Ok((rest, w)),
            _ => error(SynErr::expected(i, kw)),
        }
    }
}

/// The next identifier after trivia, without consuming it.
fn peek_word(i: &str) -> Option<&str> {
    ident(trivia(i)).ok().map(|(_, w)| w)
}

/// A register `rN`.
fn reg(i: &str) -> PResult<'_, Reg> {
    let (rest, digits) = preceded(char('r'), digit1)(i)?;
    if rest.starts_with(is_ident_char) {
        return error(SynErr::expected(i, "a register"));
    }
    match digits.parse::<u32>() {
        Ok(n) => Ok((rest, Reg(n))),
        Err(_) => failure(
            SynErr::message(i, 1 + digits.len(), "register number too large")
                .help(format!("registers go from r0 to r{}", u32::MAX)),
        ),
    }
}

/// Spaces, then the end of the line (or of the text, or a comment).
fn end_of_line(i: &str) -> PResult<'_, ()> {
    let t = i.trim_start_matches([' ', '\t', '\r']);
    if t.is_empty() || t.starts_with(['\n', ';']) {
        Ok((t, ()))
    } else {
        failure(SynErr::expected(i, "end of line"))
    }
}

/// A number without sign, for counts and line numbers.
fn unsigned<T: std::str::FromStr>(i: &str) -> PResult<'_, T> {
    let (rest, digits) = digit1(i)?;
    if rest.starts_with(is_ident_char) {
        return error(SynErr::expected(i, "a number"));
    }
    match digits.parse::<T>() {
        Ok(n) => Ok((rest, n)),
        Err(_) => failure(SynErr::message(i, digits.len(), "number too large")),
    }
}

/// An identifier or a quoted string.
fn name(i: &str) -> PResult<'_, String> {
    alt((map(ident, str::to_owned), quoted))(i)
}

/// An effect name: identifiers joined by dots, or a quoted string.
fn effect_name(i: &str) -> PResult<'_, String> {
    alt((
        map(
            recognize(pair(ident, many0_count(pair(char('.'), ident)))),
            str::to_owned,
        ),
        quoted,
    ))(i)
}

const ESCAPES_HELP: &str =
    "the escapes are \\n \\r \\t \\0 \\\\ \\\" \\' \\xNN and (in strings) \\u{NNNN}";

/// A `\` escape at `at`; returns the code it stands for. In byte strings
/// `\xNN` may exceed 0x7f and `\u{..}` is not allowed.
fn escape(at: &str, bytes: bool) -> PResult<'_, u32> {
    let after = skip(at, 1);
    let mut cs = after.chars();
    let c = cs.next();
    let simple = match c {
        Some('n') => Some('\n'),
        Some('r') => Some('\r'),
        Some('t') => Some('\t'),
        Some('0') => Some('\0'),
        Some('\\') => Some('\\'),
        Some('"') => Some('"'),
        Some('\'') => Some('\''),
        _ => None,
    };
    if let Some(s) = simple {
        return Ok((cs.as_str(), s as u32));
    }
    let bad = |len: usize, what: &str| {
        failure(SynErr::message(at, len, what.to_owned()).help(ESCAPES_HELP))
    };
    match c {
        Some('x') => {
            let hex: String = cs.clone().take(2).collect();
            let code = match u8::from_str_radix(&hex, 16) {
                Ok(code) if hex.len() == 2 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => code,
                _ => return bad(2, "invalid `\\x` escape: it takes two hex digits"),
            };
            if !bytes && code > 0x7f {
                return bad(4, "`\\x` escapes in strings only go up to \\x7f");
            }
            Ok((skip(cs.as_str(), 2), u32::from(code)))
        }
        Some('u') if !bytes => {
            let rest = cs.as_str();
            let Some(body) = rest.strip_prefix('{') else {
                return bad(2, "invalid `\\u` escape: write it `\\u{NNNN}`");
            };
            let Some(close) = body.find('}') else {
                return bad(3, "unterminated `\\u{` escape");
            };
            let hex = body.get(..close).unwrap_or("");
            let len = 4 + hex.len();
            let valid =
                !hex.is_empty() && hex.len() <= 6 && hex.bytes().all(|b| b.is_ascii_hexdigit());
            match u32::from_str_radix(hex, 16) {
                Ok(code) if valid && char::from_u32(code).is_some() => {
                    Ok((skip(body, close + 1), code))
                }
                _ => bad(len, "invalid unicode escape"),
            }
        }
        Some(c) => bad(1 + c.len_utf8(), &format!("unknown escape `\\{c}`")),
        None => bad(1, "unterminated string"),
    }
}

/// A double-quoted string with Rust escapes, on one line.
fn quoted(i: &str) -> PResult<'_, String> {
    let Some(mut rest) = i.strip_prefix('"') else {
        return error(SynErr::expected(i, "a quoted string"));
    };
    let mut out = String::new();
    loop {
        let mut cs = rest.chars();
        match cs.next() {
            None | Some('\n') => {
                return failure(
                    SynErr::message(i, 1, "unterminated string")
                        .help("close it with `\"` on the same line"),
                )
            }
            Some('"') => return Ok((cs.as_str(), out)),
            Some('\\') => {
                let (r, code) = escape(rest, false)?;
                // `escape` only returns codes that are chars when `bytes` is false.
                out.push(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER));
                rest = r;
            }
            Some(c) => {
                out.push(c);
                rest = cs.as_str();
            }
        }
    }
}

/// A byte string `b"..."`.
fn byte_string(i: &str) -> PResult<'_, Vec<u8>> {
    let Some(mut rest) = i.strip_prefix("b\"") else {
        return error(SynErr::expected(i, "a byte string"));
    };
    let mut out = Vec::new();
    loop {
        let mut cs = rest.chars();
        match cs.next() {
            None | Some('\n') => {
                return failure(
                    SynErr::message(i, 2, "unterminated byte string")
                        .help("close it with `\"` on the same line"),
                )
            }
            Some('"') => return Ok((cs.as_str(), out)),
            Some('\\') => {
                let (r, code) = escape(rest, true)?;
                out.push(u8::try_from(code).unwrap_or(0));
                rest = r;
            }
            Some(c) if c.is_ascii() => {
                out.push(c as u8);
                rest = cs.as_str();
            }
            Some(c) => {
                return failure(
                    SynErr::message(rest, c.len_utf8(), "non-ASCII character in a byte string")
                        .help("write its UTF-8 bytes as `\\xNN` escapes"),
                )
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Literals

/// A number: an int, or a float when it has a `.` or an exponent.
fn number(i: &str) -> PResult<'_, Value> {
    let (rest, text) = recognize(tuple((
        opt(char('-')),
        digit1,
        opt(pair(char('.'), digit1)),
        opt(tuple((one_of("eE"), opt(one_of("+-")), digit1))),
    )))(i)?;
    if rest.starts_with(|c: char| is_ident_char(c) || c == '.') {
        let tail = rest
            .find(|c: char| !(is_ident_char(c) || c == '.'))
            .unwrap_or(rest.len());
        return failure(
            SynErr::message(i, text.len() + tail, "malformed number")
                .help("numbers look like `42`, `-7`, `1.5` or `2.5e-3`"),
        );
    }
    if text.contains(['.', 'e', 'E']) {
        match text.parse::<f64>() {
            Ok(x) => Ok((rest, Value::Float(x))),
            Err(_) => failure(SynErr::message(i, text.len(), "malformed float")),
        }
    } else {
        match text.parse::<i64>() {
            Ok(n) => Ok((rest, Value::Int(n))),
            Err(_) => failure(
                SynErr::message(i, text.len(), "integer literal out of range")
                    .help("ints are 64-bit signed; add `.0` to write a float"),
            ),
        }
    }
}

/// A literal value in the syntax of `Display for Value`.
fn value(depth: usize) -> impl FnMut(&str) -> PResult<'_, Value> {
    move |i| value_at(i, depth)
}

fn value_at(i: &str, depth: usize) -> PResult<'_, Value> {
    if depth >= MAX_LITERAL_DEPTH {
        return failure(
            SynErr::message(
                i,
                i.chars().next().map_or(0, char::len_utf8),
                "literal nested too deeply",
            )
            .help(format!(
                "literals may nest at most {MAX_LITERAL_DEPTH} levels"
            )),
        );
    }
    let mut cs = i.chars();
    match cs.next() {
        Some('"') => map(quoted, Value::Str)(i),
        Some('b') if cs.next() == Some('"') => map(byte_string, Value::Bytes)(i),
        Some('[') => list(i, depth),
        Some('{') => map_literal(i, depth),
        Some('#') => variant(i, depth),
        Some('-')
            if i.get(1..)
                .is_some_and(|r| matches!(ident(r), Ok((_, "inf")))) =>
        {
            Ok((skip(i, 4), Value::Float(f64::NEG_INFINITY)))
        }
        Some('-' | '0'..='9') => number(i),
        _ => {
            let (rest, w) = ident(i)?;
            let v = match w {
                "null" => Value::Null,
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                "nan" => Value::Float(f64::NAN),
                "inf" => Value::Float(f64::INFINITY),
                _ => return error(SynErr::expected(i, "a literal value")),
            };
            Ok((rest, v))
        }
    }
}

fn list(i: &str, depth: usize) -> PResult<'_, Value> {
    let mut rest = skip(i, 1);
    let mut items = Vec::new();
    if let Ok((r, _)) = sym(']', "`]`")(rest) {
        return Ok((r, Value::List(items)));
    }
    loop {
        let (r, v) = need("a literal value", value(depth + 1))(rest)?;
        items.push(v);
        rest = r;
        if let Ok((r, _)) = sym(',', "`,`")(rest) {
            rest = r;
        } else if let Ok((r, _)) = sym(']', "`]`")(rest) {
            return Ok((r, Value::List(items)));
        } else {
            return failure(SynErr::expected(rest, "`,` or `]`"));
        }
    }
}

fn map_literal(i: &str, depth: usize) -> PResult<'_, Value> {
    let mut rest = skip(i, 1);
    let mut entries = Map::new();
    if let Ok((r, _)) = sym('}', "`}`")(rest) {
        return Ok((r, Value::Map(entries)));
    }
    loop {
        let key_at = trivia(rest);
        let (r, k) = need("a literal value", value(depth + 1))(rest)?;
        let key_len = consumed(key_at, r).len();
        let (r, _) = need("`:`", char(':'))(r)?;
        let (r, v) = need("a literal value", value(depth + 1))(r)?;
        if entries.contains_key(&k) {
            return failure(SynErr::message(
                key_at,
                key_len,
                format!("duplicate key `{k}` in a map literal"),
            ));
        }
        entries.insert(k, v);
        rest = r;
        if let Ok((r, _)) = sym(',', "`,`")(rest) {
            rest = r;
        } else if let Ok((r, _)) = sym('}', "`}`")(rest) {
            return Ok((r, Value::Map(entries)));
        } else {
            return failure(SynErr::expected(rest, "`,` or `}`"));
        }
    }
}

fn variant(i: &str, depth: usize) -> PResult<'_, Value> {
    let after_hash = skip(i, 1);
    let (rest, tag) = match name(after_hash) {
        Ok(x) => x,
        Err(nom::Err::Error(_)) => return failure(SynErr::expected(after_hash, "a variant tag")),
        Err(e) => return Err(e),
    };
    match sym('(', "`(`")(rest) {
        Ok((r, _)) => {
            let (r, payload) = need("a literal value", value(depth + 1))(r)?;
            let (r, _) = need("`)`", char(')'))(r)?;
            Ok((r, Value::variant(tag, payload)))
        }
        Err(_) => Ok((rest, Value::variant(tag, Value::Null))),
    }
}

// ---------------------------------------------------------------------------
// Policies

const DURATION_HELP: &str = "durations are an integer with a unit: `250ms`, `5s`, `2m`, `1h`";

fn duration(i: &str) -> PResult<'_, u64> {
    let Ok((rest, digits)) = digit1::<_, SynErr>(i) else {
        return error(SynErr::expected(i, "a duration"));
    };
    let units: [(&str, u64); 4] = [("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000)];
    let unit = units.iter().find(|(u, _)| {
        rest.strip_prefix(u)
            .is_some_and(|r| !r.starts_with(is_ident_char))
    });
    let Some(&(u, scale)) = unit else {
        let tail = rest.find(|c| !is_ident_char(c)).unwrap_or(rest.len());
        return failure(
            SynErr::message(i, digits.len() + tail, "expected a duration with a unit")
                .help(DURATION_HELP),
        );
    };
    let len = digits.len() + u.len();
    match digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
    {
        Some(ms) => Ok((skip(rest, u.len()), ms)),
        None => failure(
            SynErr::message(i, len, "duration too long")
                .help("it must fit in 64 bits of milliseconds"),
        ),
    }
}

/// A backoff multiplier `xN`.
fn factor(i: &str) -> PResult<'_, u32> {
    let (rest, w) = ident(i)?;
    match w.strip_prefix('x').map(str::parse::<u32>) {
        Some(Ok(n)) => Ok((rest, n)),
        _ => error(SynErr::expected(i, "a multiplier")),
    }
}

const POLICY_HELP: &str =
    "write `retry(ATTEMPTS, INITIAL, MAX, xFACTOR)`, e.g. `retry(3, 100ms, 10s, x2)`";

fn policy<'a>(i: &'a str) -> PResult<'a, Policy> {
    let mut p = Policy::default();
    let mut rest = i;
    if let Ok((r, _)) = keyword("retry")(rest) {
        let with_help = |e: nom::Err<SynErr<'a>>| e.map(|e| e.or_help(|| POLICY_HELP.to_owned()));
        let (r, _) = need("`(`", char('('))(r).map_err(with_help)?;
        let (r, max_attempts) =
            need("a number of attempts", unsigned::<u32>)(r).map_err(with_help)?;
        let (r, _) = need("`,`", char(','))(r).map_err(with_help)?;
        let (r, initial_backoff_ms) = need("a duration", duration)(r).map_err(with_help)?;
        let (r, _) = need("`,`", char(','))(r).map_err(with_help)?;
        let (r, max_backoff_ms) = need("a duration", duration)(r).map_err(with_help)?;
        let (r, _) = need("`,`", char(','))(r).map_err(with_help)?;
        let (r, multiplier) = need("a multiplier like `x2`", factor)(r).map_err(with_help)?;
        let (r, _) = need("`)`", char(')'))(r).map_err(with_help)?;
        p.retry = Some(RetryPolicy {
            max_attempts,
            initial_backoff_ms,
            max_backoff_ms,
            multiplier,
        });
        rest = r;
    }
    if let Ok((r, _)) = keyword("timeout")(rest) {
        let (r, _) = need("`(`", char('('))(r)?;
        let (r, ms) = need("a duration", duration)(r)?;
        let (r, _) = need("`)`", char(')'))(r)?;
        p.timeout_ms = Some(ms);
        rest = r;
    }
    Ok((rest, p))
}

// ---------------------------------------------------------------------------
// Items

struct RawEffect<'a> {
    kind: EffectKind,
    name: String,
    params: Vec<String>,
    text: &'a str,
}

struct RawWorkflow<'a> {
    name: String,
    params: Vec<String>,
    header: &'a str,
    blocks: Vec<RawBlock<'a>>,
}

struct RawBlock<'a> {
    label: String,
    text: &'a str,
    insts: Vec<RawInst<'a>>,
}

struct RawInst<'a> {
    opcode: Opcode,
    dst: Option<(Reg, &'a str)>,
    operands: Vec<(RawOperand<'a>, &'a str)>,
    whole: &'a str,
    annotation: Option<(String, u32, u32)>,
}

/// An operand as read, before labels, effects and constants are resolved.
enum RawOperand<'a> {
    Ready(Operand),
    Const(Value),
    Effect(String),
    Block(String),
    OptBlock(Option<(String, &'a str)>),
    Arms(Vec<(Symbol, String, &'a str)>),
}

/// `(name, ...)`: the parameters of a declaration or a workflow.
fn params(i: &str) -> PResult<'_, Vec<String>> {
    let (mut rest, _) = need("`(`", char('('))(i)?;
    let mut out = Vec::new();
    if let Ok((r, _)) = sym(')', "`)`")(rest) {
        return Ok((r, out));
    }
    loop {
        let (r, p) = need("a parameter name", name)(rest)?;
        out.push(p);
        rest = r;
        if let Ok((r, _)) = sym(',', "`,`")(rest) {
            rest = r;
        } else if let Ok((r, _)) = sym(')', "`)`")(rest) {
            return Ok((r, out));
        } else {
            return failure(SynErr::expected(rest, "`,` or `)`"));
        }
    }
}

/// `effect NAME(params)` or `activity NAME(params)`.
fn effect_decl(i: &str) -> PResult<'_, RawEffect<'_>> {
    let start = trivia(i);
    let (rest, kw) = alt((keyword("effect"), keyword("activity")))(i)?;
    let kind = if kw == "effect" {
        EffectKind::Builtin
    } else {
        EffectKind::Activity
    };
    let (rest, name) = need("an effect name", effect_name)(rest)?;
    let (rest, params) = params(rest)?;
    let text = consumed(start, rest);
    let (rest, _) = end_of_line(rest)?;
    Ok((
        rest,
        RawEffect {
            kind,
            name,
            params,
            text,
        },
    ))
}

/// `workflow NAME(params) {`.
fn workflow_header(i: &str) -> PResult<'_, (String, Vec<String>, &str)> {
    let start = trivia(i);
    let (rest, _) = keyword("workflow")(i)?;
    let (rest, name) = need("a workflow name", name)(rest)?;
    let (rest, params) = params(rest)?;
    let header = consumed(start, rest);
    let (rest, _) = need("`{`", char('{'))(rest)?;
    let (rest, _) = end_of_line(rest)?;
    Ok((rest, (name, params, header)))
}

/// `LABEL:`.
fn label(i: &str) -> PResult<'_, (String, &str)> {
    let start = trivia(i);
    let (rest, label) = name(start)?;
    let (rest, _) = sym(':', "`:`")(rest)?;
    let text = consumed(start, rest);
    let (rest, _) = end_of_line(rest)?;
    Ok((rest, (label, text)))
}

fn what_operand(kind: OperandKind) -> &'static str {
    match kind {
        OperandKind::Reg | OperandKind::OptReg => "a register",
        OperandKind::Regs => "`(` and a register list",
        OperandKind::Block => "a block label",
        OperandKind::OptBlock => "`default LABEL`",
        OperandKind::Const => "a literal value",
        OperandKind::Effect => "an effect name",
        OperandKind::Name => "a name",
        OperandKind::Str => "a quoted string",
        OperandKind::Fields => "`{` and a field list",
        OperandKind::Arms => "`[` and a list of match arms",
        OperandKind::Policy => "a retry or timeout policy",
        OperandKind::Level => "a log level",
        OperandKind::Builtin => "a builtin function name",
    }
}

/// `(r1, r2)`.
fn reg_list(i: &str) -> PResult<'_, Vec<Reg>> {
    let (mut rest, _) = char('(')(i)?;
    let mut out = Vec::new();
    if let Ok((r, _)) = sym(')', "`)`")(rest) {
        return Ok((r, out));
    }
    loop {
        let (r, reg) = need("a register", reg)(rest)?;
        out.push(reg);
        rest = r;
        if let Ok((r, _)) = sym(',', "`,`")(rest) {
            rest = r;
        } else if let Ok((r, _)) = sym(')', "`)`")(rest) {
            return Ok((r, out));
        } else {
            return failure(SynErr::expected(rest, "`,` or `)`"));
        }
    }
}

/// `{name: reg, ...}`.
fn fields(i: &str) -> PResult<'_, Vec<(Symbol, Reg)>> {
    let (mut rest, _) = char('{')(i)?;
    let mut out = Vec::new();
    if let Ok((r, _)) = sym('}', "`}`")(rest) {
        return Ok((r, out));
    }
    loop {
        let (r, field) = need("a field name", name)(rest)?;
        let (r, _) = need("`:`", char(':'))(r)?;
        let (r, reg) = need("a register", reg)(r)?;
        out.push((Symbol(field), reg));
        rest = r;
        if let Ok((r, _)) = sym(',', "`,`")(rest) {
            rest = r;
        } else if let Ok((r, _)) = sym('}', "`}`")(rest) {
            return Ok((r, out));
        } else {
            return failure(SynErr::expected(rest, "`,` or `}`"));
        }
    }
}

/// `[Tag => label, ...]`.
fn arms(i: &str) -> PResult<'_, Vec<(Symbol, String, &str)>> {
    let (mut rest, _) = char('[')(i)?;
    let mut out = Vec::new();
    if let Ok((r, _)) = sym(']', "`]`")(rest) {
        return Ok((r, out));
    }
    loop {
        let (r, tag) = need("a variant tag", name)(rest)?;
        let (r, _) = need("`=>`", nom::bytes::complete::tag("=>"))(r)?;
        let at = trivia(r);
        let (r, label) = need("a block label", name)(r)?;
        out.push((Symbol(tag), label, consumed(at, r)));
        rest = r;
        if let Ok((r, _)) = sym(',', "`,`")(rest) {
            rest = r;
        } else if let Ok((r, _)) = sym(']', "`]`")(rest) {
            return Ok((r, out));
        } else {
            return failure(SynErr::expected(rest, "`,` or `]`"));
        }
    }
}

/// One operand of `kind`, at the start of `i` (after trivia).
fn operand(kind: OperandKind) -> impl FnMut(&str) -> PResult<'_, RawOperand<'_>> {
    move |i| {
        let ready = |(r, op)| Ok((r, RawOperand::Ready(op)));
        match kind {
            OperandKind::Reg => reg(i).and_then(|(r, x)| ready((r, Operand::Reg(x)))),
            OperandKind::OptReg => reg(i).and_then(|(r, x)| ready((r, Operand::OptReg(Some(x))))),
            OperandKind::Regs => reg_list(i).and_then(|(r, x)| ready((r, Operand::Regs(x)))),
            OperandKind::Block => map(name, RawOperand::Block)(i),
            OperandKind::OptBlock => {
                let (r, _) = keyword("default")(i)?;
                let at = trivia(r);
                let (r, label) = need("a block label", name)(r)?;
                Ok((r, RawOperand::OptBlock(Some((label, consumed(at, r))))))
            }
            OperandKind::Const => map(value(0), RawOperand::Const)(i),
            OperandKind::Effect => map(effect_name, RawOperand::Effect)(i),
            OperandKind::Name => name(i).and_then(|(r, x)| ready((r, Operand::Name(Symbol(x))))),
            OperandKind::Str => quoted(i).and_then(|(r, x)| ready((r, Operand::Str(x)))),
            OperandKind::Fields => fields(i).and_then(|(r, x)| ready((r, Operand::Fields(x)))),
            OperandKind::Arms => map(arms, RawOperand::Arms)(i),
            OperandKind::Policy => policy(i).and_then(|(r, x)| ready((r, Operand::Policy(x)))),
            OperandKind::Level => {
                let (r, w) = ident(i)?;
                match LogLevel::from_name(w) {
                    Some(l) => ready((r, Operand::Level(l))),
                    None => failure(
                        SynErr::message(i, w.len(), format!("unknown log level `{w}`"))
                            .help("the levels are trace, debug, info, warn and error"),
                    ),
                }
            }
            OperandKind::Builtin => {
                let (r, w) = ident(i)?;
                match Builtin::from_name(w) {
                    Some(b) => ready((r, Operand::Builtin(b))),
                    None => {
                        let mut e = SynErr::message(i, w.len(), format!("unknown builtin `{w}`"));
                        if let Some(c) = closest(w, Builtin::ALL.iter().map(|b| b.name())) {
                            e = e.help(format!("did you mean `{c}`?"));
                        }
                        failure(e)
                    }
                }
            }
        }
    }
}

/// The syntax line of an opcode's doc, such as `dst = add A, B`.
fn syntax_of(opcode: Opcode) -> Option<&'static str> {
    let doc = opcode.info().doc;
    let start = doc.find('`')? + 1;
    let len = doc.get(start..)?.find('`')?;
    doc.get(start..start + len)
}

/// `[rD =] mnemonic operands [@ "file":line:col]`.
fn instruction<'a>(i: &'a str) -> PResult<'a, RawInst<'a>> {
    let start = trivia(i);
    let (rest, dst) = match reg(start) {
        Ok((r, d)) => {
            let (r2, _) = need("`=` after the destination register", char('='))(r)?;
            (r2, Some((d, consumed(start, r))))
        }
        Err(nom::Err::Error(_)) => (start, None),
        Err(e) => return Err(e),
    };
    let at = trivia(rest);
    let Ok((rest, word)) = ident(at) else {
        return error(SynErr::expected(rest, "an instruction"));
    };
    let Some(opcode) = Opcode::from_mnemonic(word) else {
        let mut e = SynErr::message(at, word.len(), format!("unknown instruction `{word}`"));
        if let Some(c) = closest(word, OPCODES.iter().map(|o| o.mnemonic)) {
            e = e.help(format!("did you mean `{c}`?"));
        }
        return failure(e);
    };
    let info = opcode.info();
    let syntax_help = || format!("the syntax is `{}`", syntax_of(opcode).unwrap_or(word));
    match &dst {
        None if info.has_dst => {
            return failure(
                SynErr::message(
                    at,
                    word.len(),
                    format!("`{word}` needs a destination register"),
                )
                .help(syntax_help()),
            )
        }
        Some((_, text)) if !info.has_dst => {
            return failure(
                SynErr::message(start, text.len(), format!("`{word}` writes no register"))
                    .help(syntax_help()),
            )
        }
        _ => {}
    }
    let add_help = |e: nom::Err<SynErr<'a>>| e.map(|e| e.or_help(syntax_help));
    let mut rest = rest;
    let mut operands = Vec::with_capacity(info.operands.len());
    let mut prev = None;
    for (k, &kind) in info.operands.iter().enumerate() {
        let glued = kind == OperandKind::Regs
            && matches!(
                prev,
                Some(OperandKind::Effect | OperandKind::Name | OperandKind::Builtin)
            );
        prev = Some(kind);
        let optional = matches!(kind, OperandKind::OptReg | OperandKind::OptBlock);
        if optional {
            let after = if k == 0 {
                Some(rest)
            } else {
                sym(',', "`,`")(rest).ok().map(|(r, _)| r)
            };
            let Some(after) = after else {
                let absent = match kind {
                    OperandKind::OptReg => Operand::OptReg(None),
                    _ => Operand::OptBlock(None),
                };
                operands.push((RawOperand::Ready(absent), point(rest)));
                continue;
            };
            rest = after;
        } else if kind == OperandKind::Policy {
            let at = trivia(rest);
            let (r, p) = policy(rest).map_err(add_help)?;
            let text = if p.is_default() {
                point(rest)
            } else {
                consumed(at, r)
            };
            operands.push((RawOperand::Ready(Operand::Policy(p)), text));
            rest = r;
            continue;
        } else if k > 0 && !glued {
            rest = need("`,`", char(','))(rest).map_err(add_help)?.0;
        }
        let at = trivia(rest);
        let (r, op) = need(what_operand(kind), operand(kind))(rest).map_err(add_help)?;
        operands.push((op, consumed(at, r)));
        rest = r;
    }
    let whole = consumed(start, rest);
    let (rest, annotation) = match sym('@', "`@`")(rest) {
        Ok((r, _)) => {
            let (r, file) = need("a quoted file name", quoted)(r)?;
            let (r, _) = need("`:`", char(':'))(r)?;
            let (r, line) = need("a line number", unsigned::<u32>)(r)?;
            let (r, _) = need("`:`", char(':'))(r)?;
            let (r, col) = need("a column number", unsigned::<u32>)(r)?;
            (r, Some((file, line, col)))
        }
        Err(_) => (rest, None),
    };
    let (rest, _) = end_of_line(rest).map_err(|e| {
        e.map(|e| {
            e.help(format!(
                "`{word}` takes {} operand{}; {}",
                info.operands.len(),
                if info.operands.len() == 1 { "" } else { "s" },
                syntax_help()
            ))
        })
    })?;
    Ok((
        rest,
        RawInst {
            opcode,
            dst,
            operands,
            whole,
            annotation,
        },
    ))
}

/// The text after the line that `at` is on.
fn next_line(at: &str) -> &str {
    at.find('\n').map_or(end(at), |n| skip(at, n + 1))
}

/// Reads the text into raw items, collecting syntax errors.
struct Reader<'a, 'l> {
    src: &'a str,
    lines: &'l LineIndex,
    errors: Vec<ParseError>,
    effects: Vec<RawEffect<'a>>,
    workflows: Vec<RawWorkflow<'a>>,
}

impl<'a> Reader<'a, '_> {
    fn full(&self) -> bool {
        self.errors.len() >= MAX_ERRORS
    }

    /// Records a syntax error and returns where to resume: the next line.
    fn report(&mut self, e: nom::Err<SynErr<'a>>) -> &'a str {
        match e {
            nom::Err::Error(e) | nom::Err::Failure(e) => {
                let resume = next_line(e.at);
                self.errors.push(e.into_error(self.src, self.lines));
                resume
            }
            // Only streaming parsers report missing input, and these are complete ones.
            nom::Err::Incomplete(_) => "",
        }
    }

    fn module(&mut self) {
        let mut i = self.src;
        loop {
            i = trivia(i);
            if i.is_empty() || self.full() {
                return;
            }
            i = match peek_word(i) {
                Some("effect" | "activity") => match effect_decl(i) {
                    Ok((rest, e)) => {
                        self.effects.push(e);
                        rest
                    }
                    Err(e) => self.report(e),
                },
                Some("workflow") => self.workflow(i),
                _ => {
                    let e = SynErr::expected(i, "`effect`, `activity` or `workflow`");
                    self.report(nom::Err::Error(e))
                }
            };
        }
    }

    /// Reads a workflow and returns the text after it.
    fn workflow(&mut self, i: &'a str) -> &'a str {
        let (mut i, (name, params, header)) = match workflow_header(i) {
            Ok(x) => x,
            Err(e) => {
                // Skip the body so its lines are not read as top-level items.
                let mut rest = self.report(e);
                while !rest.is_empty() {
                    let line = rest.split('\n').next().unwrap_or("");
                    if matches!(peek_word(line), Some("workflow" | "effect" | "activity")) {
                        break;
                    }
                    rest = next_line(rest);
                    if line.trim() == "}" {
                        break;
                    }
                }
                return rest;
            }
        };
        let mut wf = RawWorkflow {
            name,
            params,
            header,
            blocks: Vec::new(),
        };
        loop {
            i = trivia(i);
            if self.full() {
                break;
            }
            if i.is_empty() {
                // Point at the header: that is where the unclosed workflow starts.
                let start = offset(self.src, wf.header);
                self.errors.push(make_error(
                    self.src,
                    self.lines,
                    start..start + wf.header.len(),
                    format!("expected `}}` to close workflow `{}`", wf.name),
                    Some("the text ends before this workflow's closing `}`".to_owned()),
                ));
                break;
            }
            if let Some(rest) = i.strip_prefix('}') {
                i = match end_of_line(rest) {
                    Ok((rest, _)) => rest,
                    Err(e) => self.report(e),
                };
                break;
            }
            match label(i) {
                Ok((rest, (label, text))) => {
                    wf.blocks.push(RawBlock {
                        label,
                        text,
                        insts: Vec::new(),
                    });
                    i = rest;
                    continue;
                }
                Err(nom::Err::Failure(e)) => {
                    i = self.report(nom::Err::Failure(e));
                    continue;
                }
                Err(_) => {}
            }
            if let Some(kw @ ("workflow" | "effect" | "activity")) = peek_word(i) {
                let e = SynErr::message(
                    i,
                    kw.len(),
                    format!(
                        "expected `}}` to close workflow `{}`, found `{kw}`",
                        wf.name
                    ),
                )
                .help("add a line with `}` before it");
                self.report(nom::Err::Failure(e));
                break;
            }
            match instruction(i) {
                Ok((rest, inst)) => {
                    match wf.blocks.last_mut() {
                        Some(b) => b.insts.push(inst),
                        None => {
                            let e = SynErr::message(
                                i,
                                inst.whole.len(),
                                "instruction before the first block label",
                            )
                            .help("start the workflow with a label such as `entry:`");
                            self.report(nom::Err::Failure(e));
                        }
                    }
                    i = rest;
                }
                Err(e) => i = self.report(e),
            }
        }
        self.workflows.push(wf);
        i
    }
}

// ---------------------------------------------------------------------------
// Resolution

/// Builds the module from raw items, resolving names.
struct Builder<'a, 'l> {
    src: &'a str,
    lines: &'l LineIndex,
    module: Module,
    map: TextMap,
    errors: Vec<ParseError>,
    effect_index: HashMap<String, EffectRef>,
    /// When recording `.dasm` positions: the file name, and its id once interned.
    file: Option<(&'a str, Option<crate::entities::FileId>)>,
}

impl<'a> Builder<'a, '_> {
    fn range(&self, text: &str) -> Range<usize> {
        let start = offset(self.src, text);
        start..start + text.len()
    }

    fn error(&mut self, text: &str, message: String, help: Option<String>) {
        let span = self.range(text);
        self.errors
            .push(make_error(self.src, self.lines, span, message, help));
    }

    fn build(&mut self, effects: Vec<RawEffect<'a>>, workflows: Vec<RawWorkflow<'a>>) {
        for e in effects {
            let id = EffectRef(self.module.effects.len() as u32);
            self.effect_index.entry(e.name.clone()).or_insert(id);
            self.module.effects.push(EffectDecl {
                kind: e.kind,
                name: e.name,
                params: e.params,
            });
            self.map.effects.push(self.range(e.text));
        }
        for (w, raw) in workflows.into_iter().enumerate() {
            self.workflow(WorkflowId(w as u32), raw);
        }
    }

    fn workflow(&mut self, id: WorkflowId, raw: RawWorkflow<'a>) {
        let mut labels: HashMap<&str, Block> = HashMap::new();
        for (b, block) in raw.blocks.iter().enumerate() {
            labels
                .entry(block.label.as_str())
                .or_insert(Block(b as u32));
        }
        let mut text = WorkflowText {
            header: self.range(raw.header),
            blocks: Vec::with_capacity(raw.blocks.len()),
        };
        let mut blocks = Vec::with_capacity(raw.blocks.len());
        for (b, block) in raw.blocks.iter().enumerate() {
            let mut bt = BlockText {
                label: self.range(block.text),
                insts: Vec::with_capacity(block.insts.len()),
            };
            let mut insts = Vec::with_capacity(block.insts.len());
            for inst in &block.insts {
                let addr = InstAddr::new(id, Block(b as u32), insts.len() as u32);
                let Some(built) = self.inst(&raw, &labels, inst) else {
                    continue;
                };
                self.annotate(addr, inst);
                insts.push(built);
                bt.insts.push(InstText {
                    whole: self.range(inst.whole),
                    dst: inst.dst.map(|(_, t)| self.range(t)),
                    operands: inst.operands.iter().map(|(_, t)| self.range(t)).collect(),
                });
            }
            text.blocks.push(bt);
            blocks.push(BlockData {
                label: block.label.clone(),
                insts,
            });
        }
        self.module.workflows.push(Workflow {
            name: raw.name,
            params: raw.params,
            blocks,
        });
        self.map.workflows.push(text);
    }

    fn annotate(&mut self, addr: InstAddr, inst: &RawInst<'_>) {
        let sm = &mut self.module.source_map;
        let span = match (&inst.annotation, &mut self.file) {
            (Some((file, line, col)), _) => Span {
                file: sm.intern_file(file),
                line: *line,
                col: *col,
            },
            (None, Some((name, id))) => {
                let file = *id.get_or_insert_with(|| sm.intern_file(name));
                let (line, col) = self.lines.line_col(self.src, offset(self.src, inst.whole));
                Span { file, line, col }
            }
            (None, None) => return,
        };
        sm.insert(addr, span);
    }

    fn block(
        &mut self,
        wf: &RawWorkflow<'_>,
        labels: &HashMap<&str, Block>,
        label: &str,
        text: &str,
    ) -> Option<Block> {
        if let Some(b) = labels.get(label) {
            return Some(*b);
        }
        let known: Vec<&str> = wf.blocks.iter().map(|b| b.label.as_str()).collect();
        let help = match closest(label, known.iter().copied()) {
            Some(c) => format!("did you mean `{c}`?"),
            None if known.is_empty() => format!("workflow `{}` has no labelled blocks", wf.name),
            None => {
                let mut list: Vec<String> =
                    known.iter().take(10).map(|l| format!("`{l}`")).collect();
                if known.len() > 10 {
                    list.push("…".to_owned());
                }
                format!("the labels in `{}` are {}", wf.name, list.join(", "))
            }
        };
        self.error(
            text,
            format!("no block labelled `{label}` in workflow `{}`", wf.name),
            Some(help),
        );
        None
    }

    fn effect(&mut self, name: &str, text: &str) -> Option<EffectRef> {
        if let Some(e) = self.effect_index.get(name) {
            return Some(*e);
        }
        if let Some(sig) = catalog::builtin_effect(name) {
            let id = EffectRef(self.module.effects.len() as u32);
            self.module.effects.push(EffectDecl {
                kind: EffectKind::Builtin,
                name: name.to_owned(),
                params: sig.params.iter().map(|p| (*p).to_owned()).collect(),
            });
            // An implicit declaration has no text of its own; point at its first use.
            self.map.effects.push(self.range(text));
            self.effect_index.insert(name.to_owned(), id);
            return Some(id);
        }
        let declared = self.module.effects.iter().map(|e| e.name.as_str());
        let help = match closest(name, declared.chain(BUILTIN_EFFECTS.iter().map(|e| e.name))) {
            Some(c) => format!("did you mean `{c}`?"),
            None => {
                let mut shown = String::new();
                super::print::write_effect_name(&mut shown, name);
                format!("declare it at the top of the file: `activity {shown}(...)`")
            }
        };
        self.error(text, format!("unknown effect `{name}`"), Some(help));
        None
    }

    fn inst(
        &mut self,
        wf: &RawWorkflow<'_>,
        labels: &HashMap<&str, Block>,
        raw: &RawInst<'_>,
    ) -> Option<Inst> {
        let mut operands = Vec::with_capacity(raw.operands.len());
        let mut ok = true;
        for (op, text) in &raw.operands {
            let resolved = match op {
                RawOperand::Ready(op) => Some(op.clone()),
                RawOperand::Const(v) => Some(Operand::Const(self.module.intern_const(v.clone()))),
                RawOperand::Effect(name) => self.effect(name, text).map(Operand::Effect),
                RawOperand::Block(label) => self.block(wf, labels, label, text).map(Operand::Block),
                RawOperand::OptBlock(None) => Some(Operand::OptBlock(None)),
                RawOperand::OptBlock(Some((label, at))) => self
                    .block(wf, labels, label, at)
                    .map(|b| Operand::OptBlock(Some(b))),
                RawOperand::Arms(arms) => {
                    let mut out = Vec::with_capacity(arms.len());
                    for (tag, label, at) in arms {
                        if let Some(b) = self.block(wf, labels, label, at) {
                            out.push((tag.clone(), b));
                        }
                    }
                    (out.len() == arms.len()).then_some(Operand::Arms(out))
                }
            };
            match resolved {
                Some(op) => operands.push(op),
                None => ok = false,
            }
        }
        if !ok {
            return None;
        }
        match Inst::from_parts(raw.opcode, raw.dst.map(|(d, _)| d), operands) {
            Ok(inst) => Some(inst),
            Err(e) => {
                // The reader follows the same opcode table, so this means the two disagree.
                self.error(raw.whole, format!("internal error: {e}"), None);
                None
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Suggestions

/// The candidate nearest to `word` by edit distance, if it is near enough to
/// be a likely typo.
pub(super) fn closest<'c>(
    word: &str,
    candidates: impl Iterator<Item = &'c str>,
) -> Option<&'c str> {
    // Distances on long words cost more than they help.
    if word.len() > 64 {
        return None;
    }
    let limit = (word.chars().count().max(3)) / 3;
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        if c == word || c.len() > 64 {
            continue;
        }
        let d = edit_distance(word, c);
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}
