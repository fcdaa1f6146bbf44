//! Length-bounded containers for everything decoded from outside.
//!
//! Borsh encodes a `Vec` or `String` as a `u32` length followed by the items. A
//! hostile length would make a naive decoder loop or allocate; these wrappers
//! refuse any length above their bound *before* reading the items, so decoding
//! untrusted bytes is bounded in time and memory. The bound is part of the type,
//! so every length in a transaction is visible in its definition.

use std::io::{Read, Write};
use std::ops::Deref;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::TypesError;

/// A `Vec<T>` holding at most `N` items.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BoundedVec<T, const N: usize>(Vec<T>);

impl<T, const N: usize> BoundedVec<T, N> {
    /// Builds the vector, refusing more than `N` items.
    pub fn new(items: Vec<T>) -> Result<Self, TypesError> {
        if items.len() > N {
            return Err(TypesError::TooMany { what: std::any::type_name::<T>(), max: N, actual: items.len() });
        }
        Ok(Self(items))
    }

    /// An empty vector.
    pub fn empty() -> Self {
        Self(Vec::new())
    }

    /// The maximum number of items.
    pub const MAX: usize = N;

    /// The items.
    pub fn as_slice(&self) -> &[T] {
        &self.0
    }

    /// Appends an item, refusing to grow past `N`.
    pub fn try_push(&mut self, item: T) -> Result<(), TypesError> {
        if self.0.len() >= N {
            return Err(TypesError::TooMany {
                what: std::any::type_name::<T>(),
                max: N,
                actual: self.0.len().saturating_add(1),
            });
        }
        self.0.push(item);
        Ok(())
    }

    /// Gives the items back.
    pub fn into_vec(self) -> Vec<T> {
        self.0
    }
}

impl<T, const N: usize> Default for BoundedVec<T, N> {
    fn default() -> Self {
        Self::empty()
    }
}

impl<T, const N: usize> Deref for BoundedVec<T, N> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T, const N: usize> TryFrom<Vec<T>> for BoundedVec<T, N> {
    type Error = TypesError;
    fn try_from(items: Vec<T>) -> Result<Self, TypesError> {
        Self::new(items)
    }
}

impl<'a, T, const N: usize> IntoIterator for &'a BoundedVec<T, N> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<T: BorshSerialize, const N: usize> BorshSerialize for BoundedVec<T, N> {
    fn serialize<W: Write>(&self, writer: &mut W) -> std::io::Result<()> {
        self.0.serialize(writer)
    }
}

impl<T: BorshDeserialize, const N: usize> BorshDeserialize for BoundedVec<T, N> {
    fn deserialize_reader<R: Read>(reader: &mut R) -> std::io::Result<Self> {
        let len = u32::deserialize_reader(reader)? as usize;
        if len > N {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("list of {len} items exceeds the bound of {N}"),
            ));
        }
        let mut items = Vec::with_capacity(len);
        for _ in 0..len {
            items.push(T::deserialize_reader(reader)?);
        }
        Ok(Self(items))
    }
}

impl<T: Serialize, const N: usize> Serialize for BoundedVec<T, N> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>, const N: usize> Deserialize<'de> for BoundedVec<T, N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let items = Vec::<T>::deserialize(deserializer)?;
        Self::new(items).map_err(serde::de::Error::custom)
    }
}

/// Reads a borsh string of at most `max` bytes, refusing longer ones before
/// allocating.
pub(crate) fn read_bounded_string<R: Read>(reader: &mut R, max: usize) -> std::io::Result<String> {
    let len = u32::deserialize_reader(reader)? as usize;
    if len > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("text of {len} bytes exceeds the bound of {max}"),
        ));
    }
    let mut bytes = vec![0u8; len];
    reader.read_exact(&mut bytes)?;
    String::from_utf8(bytes).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "text is not UTF-8"))
}
