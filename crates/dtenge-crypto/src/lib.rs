//! Electronic digital signature (EDS) primitives for dtenge.
//!
//! This crate is the only place in the platform that touches cryptographic
//! primitives directly. Everything else goes through the types and traits
//! defined here:
//!
//! * [`Digest`], [`hash`] and [`Hasher`]: domain-separated SHA-256. Every hash
//!   in the system carries a domain tag, so a digest computed for one purpose
//!   can never be confused with a digest computed for another.
//! * [`PublicKey`], [`Signature`], [`SecretKey`]: Ed25519 keys and signatures
//!   as plain byte containers with hex / serde / borsh encodings.
//! * [`Signer`]: something that produces signatures (an in-memory
//!   [`SecretKey`] today, an HSM later).
//! * [`Verifier`] with the default implementation [`Ed25519`]: single and
//!   batch verification.
//!
//! # Invariants
//!
//! * Verification follows the ZIP-215 rules (via `ed25519-zebra`), so the
//!   verdict of [`Verifier::verify_batch`] always agrees with
//!   [`Verifier::verify`] on every item: consensus never depends on how
//!   signatures happen to be grouped.
//! * Small-order ("weak") public keys are rejected by [`PublicKey::check`] and
//!   by every verification path, so no signature made "for" such a key is ever
//!   accepted.
//! * Decoding a [`PublicKey`] or [`Signature`] from bytes never fails on the
//!   content; validity is a separate, explicit step.
//! * Library code never panics on outside input. The only panic is in
//!   [`SecretKey::generate`] if the operating system cannot supply randomness.
//! * Secret key material is never printed by `Debug`.

mod encoding;
mod error;
mod hash;
mod keys;
mod verify;

pub use error::{BatchError, CryptoError};
pub use hash::{Digest, Hasher, hash};
pub use keys::{PublicKey, SecretKey, Signature, Signer};
pub use verify::{Ed25519, Verifier, VerifyItem};
