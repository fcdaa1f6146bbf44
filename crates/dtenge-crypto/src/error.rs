//! Error types of the crate.
//!
//! [`CryptoError`] covers decoding and single verification; [`BatchError`]
//! reports every failing index of a batch verification.

use std::fmt;

/// Errors from decoding keys, digests and signatures, and from verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The input was not valid hexadecimal.
    #[error("invalid hex: {0}")]
    Hex(String),
    /// The input decoded to the wrong number of bytes.
    #[error("wrong length: expected {expected} bytes, got {actual}")]
    Length {
        /// Bytes required.
        expected: usize,
        /// Bytes supplied.
        actual: usize,
    },
    /// The public key bytes do not encode a point on the Ed25519 curve.
    #[error("public key is not a valid Ed25519 point")]
    InvalidPublicKey,
    /// The public key is a point of small order (a weak key).
    #[error("public key has small order (weak key)")]
    WeakPublicKey,
    /// The public key encodes its y coordinate as a number not below the
    /// field's prime (RFC 8032 §5.1.3 refuses it): another encoding of the
    /// same point exists, so one key would have two addresses.
    #[error("public key is not in canonical encoding (its y coordinate is not reduced modulo 2^255 - 19)")]
    NonCanonicalPublicKey,
    /// The signature does not verify for this key and message.
    #[error("signature does not verify")]
    BadSignature,
}

/// A batch verification failed; `failed` lists the indices (ascending, no
/// duplicates) of every item that does not verify on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchError {
    /// Indices into the verified slice of every failing item, ascending.
    pub failed: Vec<usize>,
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.failed.first() {
            Some(first) => write!(
                f,
                "{} of the signatures in the batch do not verify (first at index {})",
                self.failed.len(),
                first
            ),
            None => f.write_str("batch verification failed"),
        }
    }
}

impl std::error::Error for BatchError {}
