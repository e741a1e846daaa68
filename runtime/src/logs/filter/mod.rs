//! The log filter language.
//!
//! ```text
//! expr    := or
//! or      := and (("or" | "||") and)*
//! and     := not (("and" | "&&") not)*
//! not     := ("not" | "!") not | cmp
//! cmp     := "(" expr ")" | "exists" "(" path ")" | value (op value)?
//! op      := "==" | "!=" | "<" | "<=" | ">" | ">=" | "contains" | "matches" | "in"
//! value   := path | string | int | float | "true" | "false" | "null" | level | list
//! level   := "trace" | "debug" | "info" | "warn" | "error"
//! list    := "[" (value ("," value)* ","?)? "]"
//! path    := ident ("." ident | "." string | "[" digits "]")*
//! ```
//!
//! Keywords, literals and level names are lower case and reserved as the
//! first segment of a path (so a top-level field cannot be called `and` or
//! `warn`; nested ones can: `fields.warn`). Their upper- and mixed-case
//! spellings are reserved too, so that `AND` or `WARN` is reported rather
//! than read as a field that is never there.
//!
//! The semantics are documented on [`Filter::matches`].
//!
//! Limits: a filter is at most [`MAX_FILTER_LEN`] bytes and nests at most
//! [`MAX_DEPTH`] levels of parentheses, `not` and lists.

mod error;
mod eval;
mod parse;

use std::fmt;

use serde_json::Value;

use super::LogEvent;
use crate::log::Level;

pub use error::FilterError;

/// The longest filter text accepted, in bytes. A filter is typed by a
/// person; the cap keeps parsing and evaluation cheap on any input.
pub const MAX_FILTER_LEN: usize = 4096;

/// How deeply parentheses, `not` and lists may nest. Parsing, printing and
/// evaluating recurse along this depth, so it bounds their stack use.
pub const MAX_DEPTH: usize = 32;

/// A parsed filter, ready to match events.
#[derive(Clone, Debug, PartialEq)]
pub struct Filter {
    expr: Expr,
}

impl Filter {
    /// Parses filter text; the error points at the first mistake.
    pub fn parse(text: &str) -> Result<Filter, FilterError> {
        parse::parse(text).map(|expr| Filter { expr })
    }

    /// The expression tree.
    pub fn expr(&self) -> &Expr {
        &self.expr
    }

    /// Whether `event` (a [`LogEvent`] or a JSON value) passes the filter.
    ///
    /// # Semantics
    /// - A path that is missing compares as `null`: `x == 1` is false and
    ///   `x != 1` is true. `exists(x)` is true when `x` is present, even as
    ///   `null`.
    /// - A value on its own is a truth test: present and not `false` or
    ///   `null`.
    /// - Ints and floats compare by value with each other; strings compare
    ///   by bytes; levels compare by severity, and a string that names a
    ///   level (in any case) compares as that level.
    /// - `==` compares lists and maps deeply; `!=` is its negation.
    /// - `<`, `<=`, `>`, `>=` are false unless both sides are numbers, both
    ///   strings or both levels.
    /// - `a contains b`: substring of a string, element of a list, or key of
    ///   a map. `a matches "g*b?"`: the whole string matches the glob, where
    ///   `*` is any run of characters and `?` any one. `a in [..]`: `a`
    ///   equals an element.
    /// - Comparing values of kinds that do not fit is false, never an error.
    pub fn matches<'e>(&self, event: impl Into<Subject<'e>>) -> bool {
        eval::matches(&self.expr, event.into())
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.expr.fmt(f)
    }
}

impl std::str::FromStr for Filter {
    type Err = FilterError;

    fn from_str(s: &str) -> Result<Filter, FilterError> {
        Filter::parse(s)
    }
}

/// What a filter can be matched against.
#[derive(Clone, Copy, Debug)]
pub enum Subject<'e> {
    /// A typed event.
    Event(&'e LogEvent),
    /// An event as JSON, e.g. a line from a newer node with fields this
    /// build does not know.
    Json(&'e Value),
}

impl<'e> From<&'e LogEvent> for Subject<'e> {
    fn from(e: &'e LogEvent) -> Self {
        Subject::Event(e)
    }
}

impl<'e> From<&'e Value> for Subject<'e> {
    fn from(v: &'e Value) -> Self {
        Subject::Json(v)
    }
}

/// A filter expression. [`Display`](fmt::Display) prints the canonical
/// text, which parses back to an equal expression when the tree is one the
/// parser could have built: `Or` and `And` with at least two operands,
/// finite floats, and a list after `in`.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// True when any operand is.
    Or(Vec<Expr>),
    /// True when every operand is.
    And(Vec<Expr>),
    /// Negation.
    Not(Box<Expr>),
    /// A comparison of two values.
    Compare {
        /// The left-hand side.
        left: Operand,
        /// The operator.
        op: Op,
        /// The right-hand side.
        right: Operand,
    },
    /// `exists(path)`: the path is present, even as `null`.
    Exists(Path),
    /// A value on its own: present and not `false` or `null`.
    Truthy(Operand),
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `contains`
    Contains,
    /// `matches`
    Matches,
    /// `in`
    In,
}

impl Op {
    /// Every operator.
    pub const ALL: [Op; 9] = [
        Op::Eq,
        Op::Ne,
        Op::Lt,
        Op::Le,
        Op::Gt,
        Op::Ge,
        Op::Contains,
        Op::Matches,
        Op::In,
    ];

    /// How the operator is written.
    pub fn text(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Contains => "contains",
            Op::Matches => "matches",
            Op::In => "in",
        }
    }
}

/// A value in a filter: a path into the event or a literal.
#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    /// A path into the event.
    Path(Path),
    /// `null`
    Null,
    /// `true` or `false`
    Bool(bool),
    /// A 64-bit signed int.
    Int(i64),
    /// A float (always written with a `.` or an exponent).
    Float(f64),
    /// A double-quoted string.
    Str(String),
    /// A level name.
    Level(Level),
    /// `[a, b, ...]`
    List(Vec<Operand>),
}

/// One step of a [`Path`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Segment {
    /// `.name` or `."odd name"` (the first segment is a bare name).
    Key(String),
    /// `[n]`
    Index(usize),
}

/// A dotted path into an event, e.g. `input.items[0]."unit price"`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Path {
    // Never empty; the first is a `Key` that `is_root_name` accepts, which
    // is what lets `Display` write it bare.
    segments: Vec<Segment>,
}

impl Path {
    /// A path of one top-level name, or `None` if the name is not an
    /// identifier or is reserved (see the [module docs](self)).
    pub fn new(root: &str) -> Option<Path> {
        is_root_name(root).then(|| Path {
            segments: vec![Segment::Key(root.to_owned())],
        })
    }

    /// This path followed by `.key`.
    pub fn key(mut self, key: impl Into<String>) -> Path {
        self.segments.push(Segment::Key(key.into()));
        self
    }

    /// This path followed by `[index]`.
    pub fn index(mut self, index: usize) -> Path {
        self.segments.push(Segment::Index(index));
        self
    }

    /// The segments, the first always a `Key`.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The path is exactly this one top-level name.
    fn is_root(&self, name: &str) -> bool {
        matches!(self.segments.as_slice(), [Segment::Key(k)] if k == name)
    }
}

/// Words with a meaning of their own, which cannot start a path.
const RESERVED: [&str; 14] = [
    "and", "or", "not", "in", "contains", "matches", "true", "false", "null", "trace", "debug",
    "info", "warn", "error",
];

/// The reserved word that `word` spells in some case, if any.
fn reserved_as(word: &str) -> Option<&'static str> {
    RESERVED.into_iter().find(|r| r.eq_ignore_ascii_case(word))
}

fn is_ident(s: &str) -> bool {
    let mut cs = s.chars();
    cs.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_root_name(s: &str) -> bool {
    is_ident(s) && reserved_as(s).is_none()
}

// ---------------------------------------------------------------------------
// Printing the canonical form

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Or(items) => {
                for (n, e) in items.iter().enumerate() {
                    if n > 0 {
                        f.write_str(" or ")?;
                    }
                    // Only a nested `or` needs parentheses: `and` binds tighter.
                    write_grouped(f, e, matches!(e, Expr::Or(_)))?;
                }
                Ok(())
            }
            Expr::And(items) => {
                for (n, e) in items.iter().enumerate() {
                    if n > 0 {
                        f.write_str(" and ")?;
                    }
                    write_grouped(f, e, matches!(e, Expr::Or(_) | Expr::And(_)))?;
                }
                Ok(())
            }
            Expr::Not(e) => {
                f.write_str("not ")?;
                write_grouped(f, e, matches!(**e, Expr::Or(_) | Expr::And(_)))
            }
            Expr::Compare { left, op, right } => write!(f, "{left} {} {right}", op.text()),
            Expr::Exists(p) => write!(f, "exists({p})"),
            Expr::Truthy(v) => v.fmt(f),
        }
    }
}

fn write_grouped(f: &mut fmt::Formatter<'_>, e: &Expr, group: bool) -> fmt::Result {
    if group {
        write!(f, "({e})")
    } else {
        fmt::Display::fmt(e, f)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Path(p) => p.fmt(f),
            Operand::Null => f.write_str("null"),
            Operand::Bool(b) => write!(f, "{b}"),
            Operand::Int(n) => write!(f, "{n}"),
            // `Debug` keeps a `.0` on whole numbers and switches to an
            // exponent for large and tiny ones, so the text reads back as
            // the same float.
            Operand::Float(x) => write!(f, "{x:?}"),
            Operand::Str(s) => write_string(f, s),
            Operand::Level(l) => f.write_str(l.name()),
            Operand::List(items) => {
                f.write_str("[")?;
                for (n, v) in items.iter().enumerate() {
                    if n > 0 {
                        f.write_str(", ")?;
                    }
                    v.fmt(f)?;
                }
                f.write_str("]")
            }
        }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, s) in self.segments.iter().enumerate() {
            match s {
                Segment::Key(k) if n == 0 => f.write_str(k)?,
                Segment::Key(k) if is_ident(k) => write!(f, ".{k}")?,
                Segment::Key(k) => {
                    f.write_str(".")?;
                    write_string(f, k)?;
                }
                Segment::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

/// A double-quoted string with the escapes the parser reads.
fn write_string(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if c.is_control() => write!(f, "\\u{{{:x}}}", u32::from(c))?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}
