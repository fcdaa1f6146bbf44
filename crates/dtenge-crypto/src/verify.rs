//! Signature verification: the [`Verifier`] trait and its Ed25519
//! implementation.
//!
//! [`Ed25519`] follows the ZIP-215 rules (`ed25519-zebra`): non-canonical
//! point encodings are accepted, `s` must be canonical, and the cofactored
//! equation `[8][s]B = [8]R + [8][k]A` is used. Because of that, batch and
//! single verification agree on every input. On top of ZIP-215 this crate
//! rejects small-order public keys everywhere ([`CryptoError::WeakPublicKey`]).
//!
//! Batch verification draws its random coefficients from a SHA-512 based
//! generator seeded by the operating system. If the OS cannot supply a seed,
//! the batch is verified item by item instead (same verdict, slower), so no
//! verification path panics.

use std::convert::Infallible;

use ed25519_zebra::VerificationKeyBytes;
use rand_core::{TryCryptoRng, TryRng};
use sha2::Digest as _;

use crate::{BatchError, CryptoError, PublicKey, Signature};

/// One (key, message, signature) triple for [`Verifier::verify_batch`].
#[derive(Debug, Clone, Copy)]
pub struct VerifyItem<'a> {
    /// Claimed signer.
    pub public_key: &'a PublicKey,
    /// Signed message.
    pub message: &'a [u8],
    /// Signature to check.
    pub signature: &'a Signature,
}

/// The EDS verification interface.
pub trait Verifier: Send + Sync {
    /// Verify one signature.
    fn verify(&self, public_key: &PublicKey, message: &[u8], signature: &Signature) -> Result<(), CryptoError>;

    /// Verify all items. On failure the error lists the index of every item
    /// for which [`Verifier::verify`] fails, ascending. An empty slice is `Ok`.
    /// Must agree with `verify` on every item.
    fn verify_batch(&self, items: &[VerifyItem<'_>]) -> Result<(), BatchError>;
}

/// Ed25519 under the ZIP-215 rules, rejecting small-order public keys.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ed25519;

impl Verifier for Ed25519 {
    fn verify(&self, public_key: &PublicKey, message: &[u8], signature: &Signature) -> Result<(), CryptoError> {
        let vk = public_key.to_verification_key()?;
        vk.verify(&signature.to_zebra(), message).map_err(|_| CryptoError::BadSignature)
    }

    fn verify_batch(&self, items: &[VerifyItem<'_>]) -> Result<(), BatchError> {
        match items {
            [] => Ok(()),
            [only] => {
                self.verify(only.public_key, only.message, only.signature).map_err(|_| BatchError { failed: vec![0] })
            }
            _ => batch_verify(self, items),
        }
    }
}

fn batch_verify(single: &Ed25519, items: &[VerifyItem<'_>]) -> Result<(), BatchError> {
    let mut failed = Vec::new();
    // Indices of items that passed the key checks and went into the batch.
    let mut queued = Vec::with_capacity(items.len());
    let mut batch = ed25519_zebra::batch::Verifier::new();
    for (index, item) in items.iter().enumerate() {
        match item.public_key.check() {
            Ok(()) => {
                batch.queue((VerificationKeyBytes::from(item.public_key.0), item.signature.to_zebra(), item.message));
                queued.push(index);
            }
            Err(_) => failed.push(index),
        }
    }

    let batch_ok = match OsSeededRng::new() {
        Some(rng) => queued.is_empty() || batch.verify(rng).is_ok(),
        // No OS randomness: decide item by item below.
        None => false,
    };

    if !batch_ok {
        // Find the culprits; the final verdict is always the single verdict.
        for &index in &queued {
            let item = &items[index];
            if single.verify(item.public_key, item.message, item.signature).is_err() {
                failed.push(index);
            }
        }
        failed.sort_unstable();
    }

    if failed.is_empty() { Ok(()) } else { Err(BatchError { failed }) }
}

/// SHA-512 in counter mode keyed by a 32-byte seed from the OS.
///
/// Infallible once seeded, which lets batch verification run without any
/// panic path. Output is unpredictable as long as the seed is.
struct OsSeededRng {
    seed: [u8; 32],
    counter: u64,
    block: [u8; 64],
    used: usize,
}

impl OsSeededRng {
    fn new() -> Option<Self> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).ok()?;
        Some(OsSeededRng { seed, counter: 0, block: [0u8; 64], used: 64 })
    }

    fn refill(&mut self) {
        let mut h = sha2::Sha512::new();
        h.update(b"dtenge-crypto batch rng");
        h.update(self.seed);
        h.update(self.counter.to_le_bytes());
        self.block = h.finalize().into();
        self.counter = self.counter.wrapping_add(1);
        self.used = 0;
    }
}

impl TryRng for OsSeededRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        let mut filled = 0;
        while filled < dst.len() {
            if self.used == self.block.len() {
                self.refill();
            }
            let n = (dst.len() - filled).min(self.block.len() - self.used);
            dst[filled..filled + n].copy_from_slice(&self.block[self.used..self.used + n]);
            self.used += n;
            filled += n;
        }
        Ok(())
    }
}

impl TryCryptoRng for OsSeededRng {}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::Rng;

    #[test]
    fn os_seeded_rng_produces_distinct_streams_and_spans_blocks() {
        let mut a = OsSeededRng::new().expect("os rng");
        let mut b = OsSeededRng::new().expect("os rng");
        let mut x = [0u8; 100];
        let mut y = [0u8; 100];
        a.fill_bytes(&mut x);
        b.fill_bytes(&mut y);
        assert_ne!(x, y);
        assert_ne!(x[..64], x[64..]);
        assert_ne!(a.next_u64(), a.next_u64());
    }
}
