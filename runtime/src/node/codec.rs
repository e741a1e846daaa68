//! How a node encodes what it stores: journal entries, run inputs and
//! outcomes, all MessagePack through rmp-serde. The store treats them as
//! opaque bytes; only this file knows their shape.

use drover_interpreter::JournalEntry;
use drover_ir::Value;

use super::Outcome;

/// Bytes read back from the store that do not decode: a node never panics on
/// them (invariant 7), it reports the run and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {op} {what}: {message}")]
pub struct CodecError {
    /// `encode` or `decode`.
    pub op: &'static str,
    /// What was being encoded or decoded.
    pub what: &'static str,
    /// The serializer's complaint.
    pub message: String,
}

fn enc<T: serde::Serialize + ?Sized>(what: &'static str, v: &T) -> Result<Vec<u8>, CodecError> {
    rmp_serde::to_vec(v).map_err(|e| CodecError {
        op: "encode",
        what,
        message: e.to_string(),
    })
}

fn dec<T: serde::de::DeserializeOwned>(what: &'static str, b: &[u8]) -> Result<T, CodecError> {
    rmp_serde::from_slice(b).map_err(|e| CodecError {
        op: "decode",
        what,
        message: e.to_string(),
    })
}

/// A journal entry as stored in `Record::Journal`.
pub fn encode_entry(e: &JournalEntry) -> Result<Vec<u8>, CodecError> {
    enc("journal entry", e)
}

/// A journal entry from `Record::Journal` bytes.
pub fn decode_entry(b: &[u8]) -> Result<JournalEntry, CodecError> {
    dec("journal entry", b)
}

/// A run's arguments as stored in `RunStart::input`.
pub fn encode_input(args: &[Value]) -> Result<Vec<u8>, CodecError> {
    enc("run input", args)
}

/// A run's arguments from `RunStart::input`.
pub fn decode_input(b: &[u8]) -> Result<Vec<Value>, CodecError> {
    dec("run input", b)
}

/// A run's outcome as stored in `Record::Finished`.
pub fn encode_outcome(o: &Outcome) -> Result<Vec<u8>, CodecError> {
    enc("outcome", o)
}

/// A run's outcome from `Record::Finished` bytes.
pub fn decode_outcome(b: &[u8]) -> Result<Outcome, CodecError> {
    dec("outcome", b)
}

#[cfg(test)]
mod tests {
    use drover_interpreter::{Command, EffectId, Event};

    use super::*;

    #[test]
    fn entries_inputs_and_outcomes_round_trip() {
        let entry = JournalEntry {
            tick: 7,
            event: Event::EffectDone {
                id: EffectId(3),
                attempt: 2,
                result: Ok(Value::Str("x".into())),
            },
            commands: vec![Command::Complete {
                value: Value::ok(Value::Int(1)),
            }],
        };
        assert_eq!(decode_entry(&encode_entry(&entry).unwrap()).unwrap(), entry);
        let args = vec![Value::Int(1), Value::List(vec![Value::Null])];
        assert_eq!(decode_input(&encode_input(&args).unwrap()).unwrap(), args);
        let o = Outcome::Completed(Value::Bool(true));
        assert_eq!(decode_outcome(&encode_outcome(&o).unwrap()).unwrap(), o);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let err = decode_entry(&[0xc1, 0xff, 0x00]).unwrap_err();
        assert_eq!(err.op, "decode");
        assert!(decode_outcome(&[]).is_err());
        assert!(decode_input(&[0x92]).is_err());
    }
}
