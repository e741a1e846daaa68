//! [`ModuleHash`]: a module's identity, the BLAKE3 hash of its encoded bytes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The BLAKE3 hash of a module's encoded bytes; a running workflow is pinned
/// to the module with this hash. Displays as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ModuleHash(pub [u8; 32]);

/// The hash of encoded module bytes, as [`crate::Module::hash`] computes it.
pub fn hash_bytes(bytes: &[u8]) -> ModuleHash {
    ModuleHash(*blake3::hash(bytes).as_bytes())
}

impl ModuleHash {
    /// The first 12 hex digits, enough to tell modules apart in logs and UIs.
    pub fn short(&self) -> String {
        let mut s = self.to_string();
        s.truncate(12);
        s
    }
}

impl fmt::Display for ModuleHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for ModuleHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ModuleHash({self})")
    }
}

/// A string that is not 64 hex digits.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
#[error("not a module hash: expected 64 hex digits, found {found:?}")]
#[diagnostic(
    code(drover::wire::bad_hash),
    help(
        "a module hash is 32 bytes of BLAKE3 written as 64 hex digits, as logs and tools print it"
    )
)]
pub struct ParseHashError {
    /// The input, cut to a readable length.
    pub found: String,
}

impl FromStr for ModuleHash {
    type Err = ParseHashError;

    fn from_str(s: &str) -> Result<Self, ParseHashError> {
        let error = || ParseHashError {
            found: s.chars().take(80).collect(),
        };
        if s.len() != 64 {
            return Err(error());
        }
        let mut out = [0u8; 32];
        // Digit by digit: `u8::from_str_radix` would accept a leading `+`.
        let digit = |b: u8| char::from(b).to_digit(16).ok_or_else(error);
        for (byte, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
            let &[hi, lo] = pair else {
                return Err(error());
            };
            // Both digits are below 16, so the byte fits.
            *byte = (digit(hi)? * 16 + digit(lo)?) as u8;
        }
        Ok(ModuleHash(out))
    }
}
