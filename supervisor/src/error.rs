//! Errors seen by callers of workers.

use crate::codec::CodecError;
use crate::exit::ExitReason;

/// Why a `call` got no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// No reply within the caller's timeout; a late reply is discarded.
    #[error("call timed out")]
    Timeout,
    /// No live server is registered under the name (for example, mid-restart).
    #[error("no server is running under this name")]
    NotRunning,
    /// The incarnation that received the call stopped before replying.
    #[error("server exited: {0}")]
    ServerExited(ExitReason),
    /// The name belongs to a server of another type.
    #[error("the server registered under this name is not a {expected}")]
    WrongServerType {
        /// The type the caller asked for.
        expected: &'static str,
    },
}

/// Why a `cast` was not queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CastError {
    /// No live server is registered under the name.
    #[error("no server is running under this name")]
    NotRunning,
    /// The mailbox is at capacity; casts never wait for space.
    #[error("mailbox full")]
    MailboxFull,
    /// The name belongs to a server of another type.
    #[error("the server registered under this name is not a {expected}")]
    WrongServerType {
        /// The type the caller asked for.
        expected: &'static str,
    },
}

/// Why an encoded call or cast through the registry failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodedError {
    /// No live server is registered under the name.
    #[error("no server is running under the name {0:?}")]
    NotRunning(String),
    /// The server was started without a codec, so it only takes typed messages.
    #[error("the server {0:?} has no codec")]
    NoCodec(String),
    /// The request is bigger than the registry accepts.
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Size of the rejected message.
        len: usize,
        /// The registry's limit.
        max: usize,
    },
    /// The request bytes are not a valid message for this server.
    #[error("cannot decode the request: {0}")]
    Decode(CodecError),
    /// The reply could not be encoded.
    #[error("cannot encode the reply: {0}")]
    Encode(CodecError),
    /// The decoded call failed.
    #[error(transparent)]
    Call(CallError),
    /// The decoded cast failed.
    #[error(transparent)]
    Cast(CastError),
}
