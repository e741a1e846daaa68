//! [`Error`]: what effects, activities and workflows fail with.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A failure a workflow can handle: a kind (short and machine-readable, such
/// as `timeout` or `http_503`) and a message for people. In the IR it is the
/// record `{kind, message}` inside `#Err`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Error {
    /// Short and machine-readable: `timeout`, `not_found`, `http_503`.
    pub kind: String,
    /// What happened, for people.
    pub message: String,
}

impl Error {
    /// Kind of an effect awaited natively with no responder installed.
    pub const NO_RESPONDER: &'static str = "no_responder";
    /// Kind of a value that did not fit the expected Rust type.
    pub const DECODE: &'static str = "decode";
    /// Kind of a Rust value that could not become a Drover value.
    pub const ENCODE: &'static str = "encode";
    /// Kind of a call with the wrong number of arguments.
    pub const ARITY: &'static str = "arity";
    /// Kind of a generic failure raised by user code.
    pub const FAILED: &'static str = "failed";

    /// An error of `kind` with `message`.
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Error {
        Error {
            kind: kind.into(),
            message: message.into(),
        }
    }

    /// A generic failure (kind `failed`).
    pub fn failed(message: impl Into<String>) -> Error {
        Error::new(Error::FAILED, message)
    }

    /// A value that did not fit the expected type (kind `decode`).
    pub fn decode(message: impl fmt::Display) -> Error {
        Error::new(Error::DECODE, message.to_string())
    }

    /// A Rust value that could not be represented (kind `encode`).
    pub fn encode(message: impl fmt::Display) -> Error {
        Error::new(Error::ENCODE, message.to_string())
    }

    /// The kind.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_round_trips_as_the_ir_record() {
        let e = Error::new("timeout", "too slow");
        assert_eq!(e.to_string(), "timeout: too slow");
        let v = drover_ir::to_value(&e).unwrap();
        assert_eq!(
            v,
            drover_ir::Value::record([
                ("kind", drover_ir::Value::Str("timeout".into())),
                ("message", drover_ir::Value::Str("too slow".into())),
            ])
        );
        assert_eq!(drover_ir::from_value::<Error>(v).unwrap(), e);
    }
}
