//! A structural check of a MessagePack payload, run before serde sees it.
//!
//! The walk reads markers and lengths only, iteratively with an explicit
//! stack, so its own memory is bounded by the depth limit. It proves that:
//! - the payload is exactly one well-formed MessagePack value;
//! - every declared length fits in the bytes that remain (an array of n
//!   elements needs at least n more bytes), so no length read from the input
//!   can make the deserializer allocate more than the input warrants;
//! - nesting, per-collection lengths and the total number of elements stay
//!   within [`Limits`].

use rmp::Marker;

use super::{plural, DecodeError, Limits};

/// Checks `payload`, which starts at byte `base` of the file (for offsets in
/// errors).
pub(super) fn check_payload(
    payload: &[u8],
    base: usize,
    limits: &Limits,
) -> Result<(), DecodeError> {
    let mut reader = Reader {
        bytes: payload,
        pos: 0,
        base,
    };
    // Values still to read in each open array or map; the bottom entry is the
    // single root value. A map of n entries is 2n values.
    let mut open: Vec<usize> = vec![1];
    let mut items: usize = 0;
    while let Some(left) = open.last_mut() {
        if *left == 0 {
            open.pop();
            continue;
        }
        *left -= 1;
        let start = reader.pos;
        let (children, elements) = match reader.value_header(limits)? {
            Shape::Leaf => continue,
            Shape::Array(n) => (Some(n), n),
            Shape::Map(n) => (n.checked_mul(2), n),
        };
        // The bottom entry is the root slot, not a container.
        let depth = open.len();
        if depth > limits.max_depth {
            return Err(DecodeError::LimitExceeded {
                limit: "max_depth",
                max: limits.max_depth,
                found: depth,
            });
        }
        items = items.saturating_add(elements);
        if items > limits.max_items {
            return Err(DecodeError::LimitExceeded {
                limit: "max_items",
                max: limits.max_items,
                found: items,
            });
        }
        let remaining = reader.remaining();
        match children {
            // Every value takes at least one byte.
            Some(children) if children <= remaining => {
                if children > 0 {
                    open.push(children);
                }
            }
            _ => {
                return Err(reader.malformed_at(
                    start,
                    format!(
                        "a collection declares {} but only {} remain",
                        plural(elements, "element"),
                        plural(remaining, "byte"),
                    ),
                ))
            }
        }
    }
    if reader.remaining() > 0 {
        return Err(DecodeError::TrailingBytes {
            offset: base + reader.pos,
            count: reader.remaining(),
        });
    }
    Ok(())
}

/// What a value header announced.
enum Shape {
    /// A scalar, string, byte string or extension, already skipped.
    Leaf,
    /// An array of n values follows.
    Array(usize),
    /// A map of n key-value pairs follows.
    Map(usize),
}

/// A cursor over the payload that never reads out of bounds.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// The payload's offset in the file.
    base: usize,
}

impl Reader<'_> {
    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    fn malformed_at(&self, pos: usize, message: String) -> DecodeError {
        DecodeError::Malformed {
            offset: self.base + pos,
            message,
        }
    }

    /// Takes the next `n` bytes, or fails saying what was being read.
    fn take(&mut self, n: usize, what: &str) -> Result<&[u8], DecodeError> {
        let end = self.pos.checked_add(n);
        match end.and_then(|end| self.bytes.get(self.pos..end)) {
            Some(bytes) => {
                self.pos += n;
                Ok(bytes)
            }
            None => Err(self.malformed_at(
                self.pos,
                format!(
                    "the payload ends inside {what}: {n} bytes needed, {} remain",
                    self.remaining()
                ),
            )),
        }
    }

    /// Reads a big-endian length of `width` bytes (1, 2 or 4).
    fn length(&mut self, width: usize, what: &str) -> Result<usize, DecodeError> {
        let bytes = self.take(width, what)?;
        let n = bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        // At most 32 bits were read; saturate on 16-bit targets.
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// Skips `n` bytes of string, binary or extension data, checking the
    /// length against the limit first.
    fn skip_data(&mut self, n: usize, limits: &Limits, what: &str) -> Result<Shape, DecodeError> {
        check_len(n, limits)?;
        self.take(n, what)?;
        Ok(Shape::Leaf)
    }

    /// Reads one value's marker and length, skipping the value itself unless
    /// it is an array or a map.
    fn value_header(&mut self, limits: &Limits) -> Result<Shape, DecodeError> {
        let start = self.pos;
        let Some(&byte) = self.take(1, "a value")?.first() else {
            return Err(self.malformed_at(start, "the payload ends before a value".to_owned()));
        };
        let shape = match Marker::from_u8(byte) {
            Marker::FixPos(_) | Marker::FixNeg(_) | Marker::Null | Marker::True | Marker::False => {
                Shape::Leaf
            }
            Marker::U8 | Marker::I8 => self.skip(1, "an integer")?,
            Marker::U16 | Marker::I16 => self.skip(2, "an integer")?,
            Marker::U32 | Marker::I32 => self.skip(4, "an integer")?,
            Marker::U64 | Marker::I64 => self.skip(8, "an integer")?,
            Marker::F32 => self.skip(4, "a float")?,
            Marker::F64 => self.skip(8, "a float")?,
            Marker::FixStr(n) => self.skip_data(n.into(), limits, "a string")?,
            Marker::Str8 => {
                let n = self.length(1, "a string length")?;
                self.skip_data(n, limits, "a string")?
            }
            Marker::Str16 => {
                let n = self.length(2, "a string length")?;
                self.skip_data(n, limits, "a string")?
            }
            Marker::Str32 => {
                let n = self.length(4, "a string length")?;
                self.skip_data(n, limits, "a string")?
            }
            Marker::Bin8 => {
                let n = self.length(1, "a byte string length")?;
                self.skip_data(n, limits, "a byte string")?
            }
            Marker::Bin16 => {
                let n = self.length(2, "a byte string length")?;
                self.skip_data(n, limits, "a byte string")?
            }
            Marker::Bin32 => {
                let n = self.length(4, "a byte string length")?;
                self.skip_data(n, limits, "a byte string")?
            }
            // Extensions: a type byte, then data. Modules use none, but they
            // are well-formed MessagePack; serde will refuse them with a
            // message of its own.
            Marker::FixExt1 => self.skip(2, "an extension")?,
            Marker::FixExt2 => self.skip(3, "an extension")?,
            Marker::FixExt4 => self.skip(5, "an extension")?,
            Marker::FixExt8 => self.skip(9, "an extension")?,
            Marker::FixExt16 => self.skip(17, "an extension")?,
            Marker::Ext8 => {
                let n = self.length(1, "an extension length")?;
                self.skip_data(n.saturating_add(1), limits, "an extension")?
            }
            Marker::Ext16 => {
                let n = self.length(2, "an extension length")?;
                self.skip_data(n.saturating_add(1), limits, "an extension")?
            }
            Marker::Ext32 => {
                let n = self.length(4, "an extension length")?;
                self.skip_data(n.saturating_add(1), limits, "an extension")?
            }
            Marker::FixArray(n) => Shape::Array(check_len(n.into(), limits)?),
            Marker::Array16 => Shape::Array(check_len(self.length(2, "an array length")?, limits)?),
            Marker::Array32 => Shape::Array(check_len(self.length(4, "an array length")?, limits)?),
            Marker::FixMap(n) => Shape::Map(check_len(n.into(), limits)?),
            Marker::Map16 => Shape::Map(check_len(self.length(2, "a map length")?, limits)?),
            Marker::Map32 => Shape::Map(check_len(self.length(4, "a map length")?, limits)?),
            Marker::Reserved => {
                return Err(
                    self.malformed_at(start, "byte 0xc1 is not a MessagePack marker".to_owned())
                )
            }
        };
        Ok(shape)
    }

    /// Skips a fixed-size scalar body.
    fn skip(&mut self, n: usize, what: &str) -> Result<Shape, DecodeError> {
        self.take(n, what)?;
        Ok(Shape::Leaf)
    }
}

/// Checks one collection's or string's length against `max_len`.
fn check_len(n: usize, limits: &Limits) -> Result<usize, DecodeError> {
    if n > limits.max_len {
        return Err(DecodeError::LimitExceeded {
            limit: "max_len",
            max: limits.max_len,
            found: n,
        });
    }
    Ok(n)
}
