//! The canonical binary encoding (borsh) and its guarded decoder.
//!
//! Borsh gives every value exactly one encoding. Bytes from outside are decoded
//! by [`decode`], which bounds the total size before reading, relies on the
//! bounded containers for every inner length, refuses trailing bytes, and checks
//! that re-encoding gives back exactly the bytes received, so a value's hash is
//! a function of the value alone. It never panics on any input.

use std::io::Write;

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_crypto::Hasher;

use crate::TypesError;

/// Adapts a [`Hasher`] to `io::Write`, so values are hashed as they are
/// encoded, without an intermediate buffer.
pub struct HashWriter<'a>(pub &'a mut Hasher);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Encodes a value canonically.
pub fn encode<T: BorshSerialize>(value: &T) -> Vec<u8> {
    // Writing into a Vec cannot fail.
    borsh::to_vec(value).unwrap_or_default()
}

/// Decodes untrusted bytes of at most `max_bytes`, canonically.
pub fn decode<T: BorshDeserialize + BorshSerialize>(bytes: &[u8], max_bytes: usize) -> Result<T, TypesError> {
    if bytes.len() > max_bytes {
        return Err(TypesError::Decode(format!("message of {} bytes exceeds the limit of {max_bytes}", bytes.len())));
    }
    let value: T = borsh::from_slice(bytes).map_err(|e| TypesError::Decode(e.to_string()))?;
    if encode(&value) != bytes {
        return Err(TypesError::Decode("encoding is not canonical".into()));
    }
    Ok(value)
}
