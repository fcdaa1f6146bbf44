//! Shared hex / serde plumbing for the fixed-size byte newtypes.
//!
//! Human-readable serde formats (JSON, TOML, ...) see lowercase hex strings;
//! binary serde formats see raw bytes. Hex parsing accepts upper or lower case
//! and reports [`CryptoError::Hex`] for bad digits or an odd digit count and
//! [`CryptoError::Length`] for the wrong number of bytes.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserializer, Serializer};

use crate::CryptoError;

/// Parse exactly `N` bytes from a hex string.
pub(crate) fn decode_hex<const N: usize>(s: &str) -> Result<[u8; N], CryptoError> {
    if !s.len().is_multiple_of(2) {
        return Err(CryptoError::Hex("odd number of hex digits".to_owned()));
    }
    if s.len() != 2 * N {
        return Err(CryptoError::Length { expected: N, actual: s.len() / 2 });
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|e| CryptoError::Hex(e.to_string()))?;
    Ok(out)
}

/// Write bytes as lowercase hex without allocating.
pub(crate) fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 128];
    for chunk in bytes.chunks(buf.len() / 2) {
        let out = &mut buf[..chunk.len() * 2];
        for (pair, b) in out.chunks_exact_mut(2).zip(chunk) {
            pair[0] = DIGITS[usize::from(b >> 4)];
            pair[1] = DIGITS[usize::from(b & 0x0f)];
        }
        f.write_str(std::str::from_utf8(out).map_err(|_| fmt::Error)?)?;
    }
    Ok(())
}

/// Serialize as a hex string (human-readable formats) or raw bytes.
pub(crate) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    if serializer.is_human_readable() {
        serializer.serialize_str(&hex::encode(bytes))
    } else {
        serializer.serialize_bytes(bytes)
    }
}

/// Inverse of [`serialize`].
pub(crate) fn deserialize<'de, D: Deserializer<'de>, const N: usize>(deserializer: D) -> Result<[u8; N], D::Error> {
    if deserializer.is_human_readable() {
        deserializer.deserialize_str(BytesVisitor::<N>(PhantomData))
    } else {
        deserializer.deserialize_bytes(BytesVisitor::<N>(PhantomData))
    }
}

struct BytesVisitor<const N: usize>(PhantomData<[u8; N]>);

impl<'de, const N: usize> Visitor<'de> for BytesVisitor<N> {
    type Value = [u8; N];

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{N} bytes as a hex string or byte array")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        decode_hex::<N>(v).map_err(E::custom)
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        <[u8; N]>::try_from(v).map_err(|_| E::invalid_length(v.len(), &self))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = [0u8; N];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(i, &self))?;
        }
        if seq.next_element::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(N + 1, &self));
        }
        Ok(out)
    }
}

/// Implement `Debug`, `Display`, `FromStr`, `Serialize`, `Deserialize`,
/// `AsRef<[u8]>` and `From<[u8; N]>` for a `pub struct T(pub [u8; N])`.
macro_rules! impl_byte_newtype {
    ($ty:ident, $n:expr) => {
        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                $crate::encoding::write_hex(f, &self.0)
            }
        }

        impl ::std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                $crate::encoding::write_hex(f, &self.0)
            }
        }

        impl ::std::str::FromStr for $ty {
            type Err = $crate::CryptoError;

            fn from_str(s: &str) -> ::std::result::Result<Self, Self::Err> {
                $crate::encoding::decode_hex::<$n>(s).map($ty)
            }
        }

        impl ::serde::Serialize for $ty {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> ::std::result::Result<S::Ok, S::Error> {
                $crate::encoding::serialize(&self.0, serializer)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $ty {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> ::std::result::Result<Self, D::Error> {
                $crate::encoding::deserialize::<D, $n>(deserializer).map($ty)
            }
        }

        impl ::std::convert::AsRef<[u8]> for $ty {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl ::std::convert::From<[u8; $n]> for $ty {
            fn from(bytes: [u8; $n]) -> Self {
                $ty(bytes)
            }
        }
    };
}

pub(crate) use impl_byte_newtype;
