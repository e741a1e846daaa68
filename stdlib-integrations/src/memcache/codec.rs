//! How a [`Value`] is stored in memcached: an item's bytes and its 32-bit
//! client flags.
//!
//! - A non-negative `Int` is stored as ASCII decimal with [`FLAG_COUNTER`],
//!   because that is what memcached's `incr`/`decr` operate on: a workflow can
//!   `set` a counter and `incr` it, and `get` gives back an `Int`. memcached
//!   keeps an item's flags through `incr`/`decr`, and may pad a shrunk number
//!   with trailing spaces, which decoding trims.
//! - Every other value is stored as its MessagePack encoding (the serde form
//!   of [`Value`], the one the wire format uses) with [`FLAG_MSGPACK`], so
//!   types survive: bytes stay bytes, a float stays a float, a variant keeps
//!   its tag. MessagePack is binary-safe; memcached stores any bytes.
//! - An item with other flags was written by another client and reads back
//!   as `Bytes`, untouched.
//!
//! The flags carry a `DR` tag in their high half so that the small flag
//! numbers other clients use (pymemcache's 1 for pickles, ...) are never
//! mistaken for ours.

use drover_ir::Value;

use super::MemcacheError;

/// An item holding a MessagePack-encoded [`Value`].
pub const FLAG_MSGPACK: u32 = 0x4452_0001;
/// An item holding a counter: an unsigned integer in ASCII decimal.
pub const FLAG_COUNTER: u32 = 0x4452_0002;

/// The flags and bytes that store `v`.
pub fn encode(v: &Value) -> Result<(u32, Vec<u8>), MemcacheError> {
    match v {
        Value::Int(n) if *n >= 0 => Ok((FLAG_COUNTER, n.to_string().into_bytes())),
        other => rmp_serde::to_vec(other)
            .map(|bytes| (FLAG_MSGPACK, bytes))
            .map_err(|e| MemcacheError::Encode {
                reason: e.to_string(),
            }),
    }
}

/// The value an item with these flags and bytes holds.
pub fn decode(key: &str, flags: u32, data: &[u8]) -> Result<Value, MemcacheError> {
    match flags {
        FLAG_COUNTER => {
            let n = parse_counter(data).ok_or_else(|| MemcacheError::Decode {
                key: key.to_owned(),
                reason: "a counter item does not hold a decimal number".into(),
            })?;
            counter_value(key, n)
        }
        FLAG_MSGPACK => rmp_serde::from_slice(data).map_err(|e| MemcacheError::Decode {
            key: key.to_owned(),
            reason: format!("not a MessagePack value: {e}"),
        }),
        _ => Ok(Value::Bytes(data.to_vec())),
    }
}

/// The number in a counter item: ASCII digits, maybe space-padded (memcached
/// pads in place when a `decr` makes the number shorter).
pub fn parse_counter(data: &[u8]) -> Option<u64> {
    let digits = std::str::from_utf8(data)
        .ok()?
        .trim_end_matches([' ', '\r', '\n']);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A counter as an `Int`; workflow ints are signed, memcached's counters are not.
pub fn counter_value(key: &str, n: u64) -> Result<Value, MemcacheError> {
    i64::try_from(n)
        .map(Value::Int)
        .map_err(|_| MemcacheError::OutOfRange {
            key: key.to_owned(),
            value: n,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_with_their_types() {
        let values = [
            Value::Null,
            Value::Bool(true),
            Value::Int(0),
            Value::Int(42),
            Value::Int(-7),
            Value::Float(1.5),
            Value::Float(2.0),
            Value::Str("héllo\r\nEND\r\n".into()),
            Value::Bytes(vec![0, 13, 10, 255]),
            Value::List(vec![Value::Int(1), Value::Str("x".into())]),
            Value::record([("a", Value::Int(1))]),
            Value::ok(Value::Str("done".into())),
        ];
        for v in values {
            let (flags, bytes) = encode(&v).unwrap();
            assert_eq!(decode("k", flags, &bytes).unwrap(), v, "{v}");
            // A float that happens to be integral must not come back an int.
            assert_eq!(decode("k", flags, &bytes).unwrap().kind(), v.kind());
        }
    }

    #[test]
    fn counters_are_decimal_and_tolerate_padding() {
        assert_eq!(
            encode(&Value::Int(10)).unwrap(),
            (FLAG_COUNTER, b"10".to_vec())
        );
        assert_eq!(decode("k", FLAG_COUNTER, b"9 ").unwrap(), Value::Int(9));
        assert!(matches!(
            decode("k", FLAG_COUNTER, b"18446744073709551615"),
            Err(MemcacheError::OutOfRange { .. })
        ));
        assert!(matches!(
            decode("k", FLAG_COUNTER, b"x1"),
            Err(MemcacheError::Decode { .. })
        ));
        assert!(matches!(
            decode("k", FLAG_COUNTER, b""),
            Err(MemcacheError::Decode { .. })
        ));
    }

    #[test]
    fn foreign_items_and_bad_bytes_do_not_panic() {
        assert_eq!(
            decode("k", 0, b"raw").unwrap(),
            Value::Bytes(b"raw".to_vec())
        );
        assert!(matches!(
            decode("k", FLAG_MSGPACK, &[0xc1]),
            Err(MemcacheError::Decode { .. })
        ));
        // A deep nesting bomb is refused, not a stack overflow.
        let bomb = vec![0x91u8; 100_000];
        assert!(decode("k", FLAG_MSGPACK, &bomb).is_err());
    }
}
