//! `Display` for [`Value`] in the literal syntax of the text assembly.
//!
//! ```text
//! null  true  false  42  -7  1.5  1e300  nan  inf  -inf
//! "text\n"  b"\x00bytes"  [1, 2]  {"a": 1, 2: null}  #None  #Ok(1)  #"odd tag"(1)
//! ```
//! Floats always carry a `.` or an exponent, so they never read back as ints.
//! A variant whose payload is `null` prints as a unit variant.

use std::fmt::{self, Display, Write};

use super::Value;

/// Whether `s` can be printed bare (as a tag, a field or a label).
pub fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Writes `s` as a double-quoted string literal with Rust-style escapes.
pub fn write_quoted(f: &mut impl Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            '\0' => f.write_str("\\0")?,
            c if c.is_control() => write!(f, "\\u{{{:x}}}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

/// Writes a name bare when it is an identifier, quoted otherwise.
pub fn write_name(f: &mut impl Write, s: &str) -> fmt::Result {
    if is_ident(s) {
        f.write_str(s)
    } else {
        write_quoted(f, s)
    }
}

fn write_bytes(f: &mut impl Write, b: &[u8]) -> fmt::Result {
    f.write_str("b\"")?;
    for &byte in b {
        match byte {
            b'"' => f.write_str("\\\"")?,
            b'\\' => f.write_str("\\\\")?,
            0x20..=0x7e => f.write_char(byte as char)?,
            _ => write!(f, "\\x{byte:02x}")?,
        }
    }
    f.write_char('"')
}

fn write_float(f: &mut impl Write, x: f64) -> fmt::Result {
    if x.is_nan() {
        f.write_str("nan")
    } else if x.is_infinite() {
        f.write_str(if x > 0.0 { "inf" } else { "-inf" })
    } else {
        // `{:?}` is the shortest representation that reads back exactly, and
        // always has a `.` or an exponent.
        write!(f, "{x:?}")
    }
}

impl Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write_float(f, *x),
            Value::Str(s) => write_quoted(f, s),
            Value::Bytes(b) => write_bytes(f, b),
            Value::List(items) => {
                f.write_char('[')?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    Display::fmt(item, f)?;
                }
                f.write_char(']')
            }
            Value::Map(m) => {
                f.write_char('{')?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_char('}')
            }
            Value::Variant(v) => {
                f.write_char('#')?;
                write_name(f, &v.tag)?;
                if !v.payload.is_null() {
                    write!(f, "({})", v.payload)?;
                }
                Ok(())
            }
        }
    }
}
