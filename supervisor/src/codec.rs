//! Byte encodings for a worker's messages, so it can be driven by name from
//! outside the process (the node's HTTP API).

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A message could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{format} codec: {message}")]
pub struct CodecError {
    /// Which codec failed (`json`, `msgpack`).
    pub format: &'static str,
    /// What the underlying serializer said.
    pub message: String,
}

/// A wire format for `Call`, `Cast` and `Reply` values.
///
/// Decoding reads untrusted bytes: it must return an error, never panic.
pub trait Codec: Send + Sync + 'static {
    /// Short name of the format, used in errors.
    fn format(&self) -> &'static str;
    /// Encodes a value to bytes.
    fn encode<T: Serialize>(&self, value: &T) -> Result<Vec<u8>, CodecError>;
    /// Decodes a value from bytes.
    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError>;
}

/// JSON, for humans and HTTP clients.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonCodec;

impl Codec for JsonCodec {
    fn format(&self) -> &'static str {
        "json"
    }

    fn encode<T: Serialize>(&self, value: &T) -> Result<Vec<u8>, CodecError> {
        serde_json::to_vec(value).map_err(|e| CodecError {
            format: self.format(),
            message: e.to_string(),
        })
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        serde_json::from_slice(bytes).map_err(|e| CodecError {
            format: self.format(),
            message: e.to_string(),
        })
    }
}

/// MessagePack with named fields, the same family as Drover's wire bytecode.
#[derive(Debug, Clone, Copy, Default)]
pub struct MsgPackCodec;

impl Codec for MsgPackCodec {
    fn format(&self) -> &'static str {
        "msgpack"
    }

    fn encode<T: Serialize>(&self, value: &T) -> Result<Vec<u8>, CodecError> {
        rmp_serde::to_vec_named(value).map_err(|e| CodecError {
            format: self.format(),
            message: e.to_string(),
        })
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        rmp_serde::from_slice(bytes).map_err(|e| CodecError {
            format: self.format(),
            message: e.to_string(),
        })
    }
}
