//! The wire bytecode (`.dbc`): a fixed header, then the module as MessagePack.
//!
//! ```text
//! offset  size  field
//!      0     4  magic "DRBC"
//!      4     2  format version, u16 little-endian (= FORMAT_VERSION)
//!      6     2  flags, u16 little-endian (reserved, = 0)
//!      8     4  payload length in bytes, u32 little-endian
//!     12     4  CRC-32 of the payload, u32 little-endian
//!     16     n  payload: rmp_serde::to_vec(&module)
//! ```
//!
//! Encoding is canonical: a module holds no hash maps, so equal modules
//! encode to equal bytes and a module is named by the hash of its bytes
//! ([`ModuleHash`]).
//!
//! Decoding treats its input as untrusted. It checks the header, the length
//! and the checksum, then walks the MessagePack payload without recursion,
//! holding every declared length against the bytes that remain and against
//! [`Limits`], before serde sees a byte. So a hostile file can neither make
//! the decoder allocate more than its own size warrants nor overflow the
//! stack.

mod hash;
mod walk;

#[cfg(test)]
mod tests;

use serde::Serialize;

use crate::module::Module;

pub use hash::{hash_bytes, ModuleHash, ParseHashError};

/// The first four bytes of every `.dbc` file.
pub const MAGIC: [u8; 4] = *b"DRBC";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// The length of the fixed header before the payload.
pub const HEADER_LEN: usize = 16;

/// The fixed header of a `.dbc` file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// The format version the file was written in.
    pub version: u16,
    /// Reserved; a file with any flag set is refused.
    pub flags: u16,
    /// The length of the payload that follows the header.
    pub payload_len: u32,
    /// CRC-32 (IEEE) of the payload.
    pub checksum: u32,
}

/// How much a decoded module may hold. Decoding fails with
/// [`DecodeError::LimitExceeded`] before allocating past any of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Limits {
    /// The whole file, header included.
    pub max_bytes: usize,
    /// Elements of all arrays and maps together (a map entry counts once).
    pub max_items: usize,
    /// Elements of one array or map, or bytes of one string or byte string.
    pub max_len: usize,
    /// MessagePack nesting. The module's own structure nests about 10
    /// levels; a constant starts at level 3 and each level of nesting inside
    /// it takes 2 (a variant tag, then its payload), so the default admits
    /// constants nested about 30 deep.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 64 << 20,
            max_items: 4 << 20,
            max_len: 1 << 20,
            max_depth: 64,
        }
    }
}

/// Why bytes could not be decoded into a module. Each variant says what is
/// wrong and where, and carries a diagnostic code and help.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum DecodeError {
    /// The file does not start with [`MAGIC`].
    #[error(
        "not a Drover bytecode file: expected magic DRBC, found {}",
        hex_bytes(found)
    )]
    #[diagnostic(
        code(drover::wire::bad_magic),
        help("was this file produced by `dslc asm` or `dslc compile`?")
    )]
    BadMagic { found: Vec<u8> },

    /// The header's version is not [`FORMAT_VERSION`].
    #[error("unsupported bytecode format version {found}: this build reads version {supported}")]
    #[diagnostic(
        code(drover::wire::unsupported_version),
        help(
            "recompile the workflow with the `dslc` that matches this node, or run a node that reads version {found}"
        )
    )]
    UnsupportedVersion { found: u16, supported: u16 },

    /// The header sets reserved flags.
    #[error("unknown flags {flags:#06x} in the bytecode header: this build knows no flags")]
    #[diagnostic(
        code(drover::wire::unknown_flags),
        help("flags are reserved for newer formats; recompile the workflow with the `dslc` that matches this node")
    )]
    UnknownFlags { flags: u16 },

    /// The payload's CRC-32 differs from the header's.
    #[error(
        "bytecode checksum mismatch: the header says {expected:08x}, the payload's is {actual:08x}"
    )]
    #[diagnostic(
        code(drover::wire::checksum_mismatch),
        help("the file was damaged after it was written; rebuild it or fetch it again")
    )]
    ChecksumMismatch { expected: u32, actual: u32 },

    /// The file ends inside the header or the payload.
    #[error("{}", truncated_message(*needed, *available))]
    #[diagnostic(
        code(drover::wire::truncated),
        help("the file was cut short, perhaps by an interrupted copy or upload; rebuild it or fetch it again")
    )]
    Truncated { needed: usize, available: usize },

    /// Bytes follow the payload, or follow the module inside the payload.
    #[error("{} after the end of the module, at byte {offset}", plural(*count, "unexpected byte"))]
    #[diagnostic(
        code(drover::wire::trailing_bytes),
        help(
            "the file may be two files joined together, or damaged; rebuild it or fetch it again"
        )
    )]
    TrailingBytes { offset: usize, count: usize },

    /// The payload is not a well-formed module; `offset` is in the file.
    #[error("malformed module at byte {offset}: {message}")]
    #[diagnostic(
        code(drover::wire::malformed),
        help("the header and checksum are intact, so the payload was written wrong: a bug in the tool that wrote it, or a file from an incompatible build")
    )]
    Malformed { offset: usize, message: String },

    /// The file goes beyond one of the [`Limits`], named by its field.
    #[error("{}", limit_message(limit, *max, *found))]
    #[diagnostic(
        code(drover::wire::limit_exceeded),
        help("this node refuses modules this large; if the module is trusted, raise `{limit}` in the decoding limits")
    )]
    LimitExceeded {
        limit: &'static str,
        max: usize,
        found: usize,
    },
}

fn hex_bytes(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "nothing".to_owned();
    }
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    hex.join(" ")
}

/// `1 byte`, `2 bytes`.
pub(crate) fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn truncated_message(needed: usize, available: usize) -> String {
    if needed <= HEADER_LEN {
        format!("file is truncated: the header needs {HEADER_LEN} bytes, found {available}")
    } else {
        format!(
            "file is truncated: the header says {} payload bytes, found {}",
            needed - HEADER_LEN,
            available.saturating_sub(HEADER_LEN)
        )
    }
}

fn limit_message(limit: &str, max: usize, found: usize) -> String {
    match limit {
        "max_bytes" => format!("file is {found} bytes, more than the limit of {max}"),
        "max_items" => {
            format!("module has more than {max} array and map elements in all (reached {found})")
        }
        "max_len" => format!(
            "an array, map or string of {found} elements or bytes is longer than the limit of {max}"
        ),
        "max_depth" => format!("module nests {found} levels deep, more than the limit of {max}"),
        _ => format!("module exceeds the {limit} limit: {found} is more than {max}"),
    }
}

/// Encodes a module: header, then MessagePack payload.
///
/// # Panics
/// If the payload exceeds 4 GiB, which the header cannot describe. A module
/// that large is far beyond any decoding limit.
pub fn encode(m: &Module) -> Vec<u8> {
    let mut out = vec![0; HEADER_LEN];
    let mut ser = rmp_serde::Serializer::new(&mut out);
    // Writing into a Vec cannot fail, and every part of a module has a
    // Serialize impl that cannot fail and a known length.
    m.serialize(&mut ser)
        .expect("serializing a module into memory cannot fail");
    let payload_len = u32::try_from(out.len() - HEADER_LEN)
        .expect("a module payload larger than 4 GiB cannot be described by the header");
    let header = Header {
        version: FORMAT_VERSION,
        flags: 0,
        payload_len,
        checksum: crc32fast::hash(&out[HEADER_LEN..]),
    };
    out[..HEADER_LEN].copy_from_slice(&header.to_bytes());
    out
}

impl Header {
    /// The header as it is written at the start of a file.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0; HEADER_LEN];
        let fields = MAGIC
            .into_iter()
            .chain(self.version.to_le_bytes())
            .chain(self.flags.to_le_bytes())
            .chain(self.payload_len.to_le_bytes())
            .chain(self.checksum.to_le_bytes());
        for (dst, src) in b.iter_mut().zip(fields) {
            *dst = src;
        }
        b
    }
}

/// Reads the header at the start of `bytes`, checking only the magic and that
/// there are enough bytes for it; version and flags are returned as found, so
/// that tools can show the header of a file they cannot decode.
pub fn read_header(bytes: &[u8]) -> Result<Header, DecodeError> {
    let magic_prefix = bytes.get(..MAGIC.len()).unwrap_or(bytes);
    if MAGIC.get(..magic_prefix.len()) != Some(magic_prefix) {
        return Err(DecodeError::BadMagic {
            found: magic_prefix.to_vec(),
        });
    }
    let Some(header) = bytes.first_chunk::<HEADER_LEN>() else {
        return Err(DecodeError::Truncated {
            needed: HEADER_LEN,
            available: bytes.len(),
        });
    };
    let [_, _, _, _, v0, v1, f0, f1, l0, l1, l2, l3, c0, c1, c2, c3] = *header;
    Ok(Header {
        version: u16::from_le_bytes([v0, v1]),
        flags: u16::from_le_bytes([f0, f1]),
        payload_len: u32::from_le_bytes([l0, l1, l2, l3]),
        checksum: u32::from_le_bytes([c0, c1, c2, c3]),
    })
}

/// Decodes a module with the default [`Limits`].
pub fn decode(bytes: &[u8]) -> Result<Module, DecodeError> {
    decode_with_limits(bytes, &Limits::default())
}

/// Decodes a module from untrusted bytes, refusing anything beyond `limits`.
pub fn decode_with_limits(bytes: &[u8], limits: &Limits) -> Result<Module, DecodeError> {
    if bytes.len() > limits.max_bytes {
        return Err(DecodeError::LimitExceeded {
            limit: "max_bytes",
            max: limits.max_bytes,
            found: bytes.len(),
        });
    }
    let header = read_header(bytes)?;
    if header.version != FORMAT_VERSION {
        return Err(DecodeError::UnsupportedVersion {
            found: header.version,
            supported: FORMAT_VERSION,
        });
    }
    if header.flags != 0 {
        return Err(DecodeError::UnknownFlags {
            flags: header.flags,
        });
    }
    // u32 always fits usize on the 32- and 64-bit targets we build for; if it
    // did not, the file could not be that long either.
    let payload_len = usize::try_from(header.payload_len).unwrap_or(usize::MAX);
    let needed = HEADER_LEN.saturating_add(payload_len);
    let payload = match bytes.get(HEADER_LEN..needed) {
        Some(payload) => payload,
        None => {
            return Err(DecodeError::Truncated {
                needed,
                available: bytes.len(),
            })
        }
    };
    if bytes.len() > needed {
        return Err(DecodeError::TrailingBytes {
            offset: needed,
            count: bytes.len() - needed,
        });
    }
    let actual = crc32fast::hash(payload);
    if actual != header.checksum {
        return Err(DecodeError::ChecksumMismatch {
            expected: header.checksum,
            actual,
        });
    }
    walk::check_payload(payload, HEADER_LEN, limits)?;
    deserialize(payload, limits)
}

/// Deserializes a payload that [`walk::check_payload`] accepted.
fn deserialize(payload: &[u8], limits: &Limits) -> Result<Module, DecodeError> {
    let mut de = rmp_serde::Deserializer::from_read_ref(payload);
    // The walk bounded the depth already; keep serde's own guard in step.
    de.set_max_depth(limits.max_depth.saturating_add(1));
    match serde::Deserialize::deserialize(&mut de) {
        Ok(module) => Ok(module),
        Err(err) => {
            // The fast reader does not say where it stopped. Errors are rare,
            // so read again with a reader that does.
            let mut cursor = rmp_serde::Deserializer::new(std::io::Cursor::new(payload));
            cursor.set_max_depth(limits.max_depth.saturating_add(1));
            let _ = <Module as serde::Deserialize>::deserialize(&mut cursor);
            let offset = usize::try_from(cursor.position()).unwrap_or(payload.len());
            Err(DecodeError::Malformed {
                offset: HEADER_LEN + offset,
                message: err.to_string(),
            })
        }
    }
}

impl Module {
    /// The content hash of this module: the BLAKE3 hash of its encoding.
    pub fn hash(&self) -> ModuleHash {
        hash_bytes(&encode(self))
    }
}
