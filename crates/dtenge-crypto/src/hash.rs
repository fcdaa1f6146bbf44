//! Domain-separated SHA-256.
//!
//! `hash(domain, parts) = SHA-256(len(domain) as u8 || domain || parts[0] || parts[1] || ...)`.
//!
//! The domain is length-prefixed, so two different domains can never produce
//! the same prefix. The parts are *not* length-prefixed: callers must pass
//! canonical, self-delimiting encodings (for example borsh) so that distinct
//! inputs cannot concatenate to the same bytes. Domains are short constants
//! chosen by the platform and must be at most 255 bytes.

use borsh::{BorshDeserialize, BorshSerialize};
use sha2::Digest as _;

use crate::encoding::impl_byte_newtype;

/// A SHA-256 digest.
///
/// `Debug` and `Display` print 64 lowercase hex digits; `FromStr` parses
/// exactly 64 hex digits; serde uses a hex string in human-readable formats;
/// borsh uses the raw 32 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize, BorshDeserialize)]
pub struct Digest(pub [u8; 32]);

impl_byte_newtype!(Digest, 32);

impl Digest {
    /// The all-zero digest (used as "no parent" / placeholder).
    pub const ZERO: Digest = Digest([0u8; 32]);

    /// The raw digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The first 8 hex digits, for logs.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }
}

impl Default for Digest {
    fn default() -> Self {
        Digest::ZERO
    }
}

/// Domain-separated SHA-256 of `parts` concatenated in order.
///
/// See the module documentation for the exact byte layout.
pub fn hash(domain: &[u8], parts: &[&[u8]]) -> Digest {
    let mut hasher = Hasher::new(domain);
    for part in parts {
        hasher.update(part);
    }
    hasher.finish()
}

/// Streaming form of [`hash`]: `Hasher::new(d)` + `update(p)`... +
/// `finish()` equals `hash(d, &[p, ...])`.
#[derive(Clone)]
pub struct Hasher {
    inner: sha2::Sha256,
}

impl Hasher {
    /// Start a hash in the given domain (at most 255 bytes).
    pub fn new(domain: &[u8]) -> Self {
        debug_assert!(domain.len() <= usize::from(u8::MAX), "hash domain too long");
        let mut inner = sha2::Sha256::new();
        inner.update([domain.len() as u8]);
        inner.update(domain);
        Hasher { inner }
    }

    /// Append bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
    }

    /// Finish and return the digest.
    pub fn finish(self) -> Digest {
        Digest(self.inner.finalize().into())
    }
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hasher")
    }
}
