//! Ed25519 keys, signatures and the [`Signer`] trait.
//!
//! [`PublicKey`] and [`Signature`] are plain byte containers: any 32 / 64
//! bytes can be held and decoded, and validity is checked only when a key is
//! [checked](PublicKey::check) or a signature is verified. [`SecretKey`] wraps
//! an `ed25519-zebra` signing key (RFC 8032 deterministic signing) and caches
//! its public key.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::sync::{Mutex, OnceLock};

use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_zebra::{SigningKey, VerificationKey};

use crate::CryptoError;
use crate::encoding::impl_byte_newtype;

/// Every 32-byte string that decodes (under the ZIP-215 rules, which accept
/// non-canonical encodings) to a point of small order, i.e. a point in the
/// 8-torsion subgroup. There are exactly 14: the 8 canonical encodings plus
/// the non-canonical ones (`y + p` for `y < 19`, and a set sign bit with
/// `x = 0`).
const SMALL_ORDER_ENCODINGS: [[u8; 32]; 14] = {
    const fn enc(low: u8, fill: u8, top: u8) -> [u8; 32] {
        let mut b = [fill; 32];
        b[0] = low;
        b[31] = top;
        b
    }
    const fn flip_sign(mut b: [u8; 32]) -> [u8; 32] {
        b[31] ^= 0x80;
        b
    }
    // y-coordinates of the two order-8 point pairs.
    const Y8_A: [u8; 32] = [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5, 0xdf,
        0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05,
    ];
    const Y8_B: [u8; 32] = [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20,
        0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a,
    ];
    [
        // y = 0 (order 4), both signs; and its non-canonical form y = p.
        enc(0x00, 0x00, 0x00),
        enc(0x00, 0x00, 0x80),
        enc(0xed, 0xff, 0x7f),
        enc(0xed, 0xff, 0xff),
        // y = 1 (identity), both sign bits; and y = p + 1.
        enc(0x01, 0x00, 0x00),
        enc(0x01, 0x00, 0x80),
        enc(0xee, 0xff, 0x7f),
        enc(0xee, 0xff, 0xff),
        // y = p - 1 (order 2), both sign bits.
        enc(0xec, 0xff, 0x7f),
        enc(0xec, 0xff, 0xff),
        // order 8.
        Y8_A,
        flip_sign(Y8_A),
        Y8_B,
        flip_sign(Y8_B),
    ]
};

/// Whether the y coordinate of an encoded point (little-endian, sign bit
/// cleared) is below p = 2^255 − 19. The values not below it are
/// p..=2^255 − 1: bytes 1..=30 all 0xff, byte 31 (sign bit cleared) 0x7f and
/// byte 0 at least 0xed.
fn y_is_reduced(encoding: &[u8; 32]) -> bool {
    let top = encoding[31] & 0x7f;
    let middle_all_ones = encoding[1..31].iter().all(|b| *b == 0xff);
    !(top == 0x7f && middle_all_ones && encoding[0] >= 0xed)
}

/// An Ed25519 public key (32 bytes, as transmitted).
///
/// Holding or decoding a `PublicKey` never validates it; call
/// [`PublicKey::check`] (verification does so implicitly).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize, BorshDeserialize)]
pub struct PublicKey(pub [u8; 32]);

impl_byte_newtype!(PublicKey, 32);

impl PublicKey {
    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// `Ok` if the bytes decode to a curve point that is not of small order.
    ///
    /// Errors: [`CryptoError::InvalidPublicKey`] if the bytes are not a curve
    /// point, [`CryptoError::WeakPublicKey`] if the point has small order.
    pub fn check(&self) -> Result<(), CryptoError> {
        self.to_verification_key().map(|_| ())
    }

    /// [`PublicKey::check`], and the encoding is the canonical one (RFC 8032
    /// §5.1.3: y < p = 2^255 − 19). For keys entering at a boundary (a DA's
    /// client key, a rotated key): verification itself stays ZIP-215, which
    /// accepts both encodings, so a non-canonical key would give the same
    /// holder a second address.
    ///
    /// Errors: those of [`PublicKey::check`], and
    /// [`CryptoError::NonCanonicalPublicKey`].
    pub fn check_canonical(&self) -> Result<(), CryptoError> {
        self.check()?;
        // The only other non-canonical form, a set sign bit with x = 0, is
        // y = ±1: small order, refused by `check` already.
        if y_is_reduced(&self.0) { Ok(()) } else { Err(CryptoError::NonCanonicalPublicKey) }
    }

    /// Decode and validate into an `ed25519-zebra` verification key.
    ///
    /// Decoding a point costs a field exponentiation, and the platform
    /// verifies many signatures by few keys (services, banks, DAs), so keys
    /// that decoded are remembered ([`KEY_CACHE`] of them; the memory starts
    /// over when full). Only valid keys are remembered: an invalid or weak
    /// key is decoded and refused every time.
    pub(crate) fn to_verification_key(self) -> Result<VerificationKey, CryptoError> {
        let mut cache = valid_keys().lock().unwrap_or_else(|p| p.into_inner());
        if let Some(key) = cache.get(&self.0) {
            return Ok(*key);
        }
        drop(cache);
        if SMALL_ORDER_ENCODINGS.contains(&self.0) {
            return Err(CryptoError::WeakPublicKey);
        }
        let key = VerificationKey::try_from(self.0).map_err(|_| CryptoError::InvalidPublicKey)?;
        cache = valid_keys().lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= KEY_CACHE {
            cache.clear();
        }
        cache.insert(self.0, key);
        Ok(key)
    }
}

/// Most decoded public keys remembered by [`PublicKey::to_verification_key`].
pub(crate) const KEY_CACHE: usize = 65_536;

fn valid_keys() -> &'static Mutex<HashMap<[u8; 32], VerificationKey>> {
    static KEYS: OnceLock<Mutex<HashMap<[u8; 32], VerificationKey>>> = OnceLock::new();
    KEYS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// An Ed25519 signature (64 bytes: `R || s`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize)]
pub struct Signature(pub [u8; 64]);

impl_byte_newtype!(Signature, 64);

impl Signature {
    /// The raw signature bytes.
    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }

    pub(crate) fn to_zebra(self) -> ed25519_zebra::Signature {
        ed25519_zebra::Signature::from_bytes(&self.0)
    }
}

/// An Ed25519 secret signing key.
///
/// Not `Copy`, so copies of secret material are explicit. `Debug` prints only
/// the public key. Serde encodes the 32-byte seed as hex (human-readable
/// formats; key files) and borsh encodes the raw 32-byte seed.
#[derive(Clone)]
pub struct SecretKey {
    inner: SigningKey,
    public: PublicKey,
}

impl SecretKey {
    /// A fresh key from operating-system randomness.
    ///
    /// # Panics
    ///
    /// If the operating system cannot provide random bytes; a node without a
    /// working entropy source must not create keys.
    pub fn generate() -> SecretKey {
        let mut seed = [0u8; 32];
        #[allow(clippy::expect_used)]
        getrandom::fill(&mut seed).expect("operating system random number generator failed");
        SecretKey::from_seed(seed)
    }

    /// The key for a given 32-byte seed (the RFC 8032 "private key").
    pub fn from_seed(seed: [u8; 32]) -> SecretKey {
        let inner = SigningKey::from(seed);
        let public = PublicKey(<[u8; 32]>::from(inner.verification_key()));
        SecretKey { inner, public }
    }

    /// The 32-byte seed. Handle with care.
    pub fn seed(&self) -> [u8; 32] {
        *self.inner.as_bytes()
    }

    /// The public key (cached).
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// Sign `message` (deterministic, RFC 8032 Ed25519).
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.inner.sign(message).to_bytes())
    }
}

impl PartialEq for SecretKey {
    fn eq(&self, other: &Self) -> bool {
        // Constant-time comparison inside ed25519-zebra.
        self.inner == other.inner
    }
}

impl Eq for SecretKey {}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({})", self.public)
    }
}

impl serde::Serialize for SecretKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        crate::encoding::serialize(self.inner.as_bytes(), serializer)
    }
}

impl<'de> serde::Deserialize<'de> for SecretKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::encoding::deserialize::<D, 32>(deserializer).map(SecretKey::from_seed)
    }
}

impl BorshSerialize for SecretKey {
    fn serialize<W: io::Write>(&self, writer: &mut W) -> io::Result<()> {
        writer.write_all(self.inner.as_bytes())
    }
}

impl BorshDeserialize for SecretKey {
    fn deserialize_reader<R: io::Read>(reader: &mut R) -> io::Result<Self> {
        <[u8; 32]>::deserialize_reader(reader).map(SecretKey::from_seed)
    }
}

/// Something that signs: a key held in memory now, an HSM later.
pub trait Signer: Send + Sync {
    /// The public key signatures verify against.
    fn public_key(&self) -> PublicKey;
    /// Sign `message`.
    fn sign(&self, message: &[u8]) -> Signature;
}

impl Signer for SecretKey {
    fn public_key(&self) -> PublicKey {
        self.public
    }

    fn sign(&self, message: &[u8]) -> Signature {
        SecretKey::sign(self, message)
    }
}

impl<T: Signer + ?Sized> Signer for std::sync::Arc<T> {
    fn public_key(&self) -> PublicKey {
        (**self).public_key()
    }

    fn sign(&self, message: &[u8]) -> Signature {
        (**self).sign(message)
    }
}

impl<T: Signer + ?Sized> Signer for Box<T> {
    fn public_key(&self) -> PublicKey {
        (**self).public_key()
    }

    fn sign(&self, message: &[u8]) -> Signature {
        (**self).sign(message)
    }
}
