//! Format versions of what services store: journal records, snapshots and
//! archive values each start with an 8-byte tag naming their kind and format
//! version, so an upgrade reads what an earlier release wrote — or refuses it
//! with both versions named — and never misreads it.
//!
//! ```text
//!  ┌──────────────┬─────────────┬──────────────┬──────────────┐
//!  │ F0 'd' 't' 'V'│ kind u16 LE │ version u16 LE│ body (borsh) │
//!  └──────────────┴─────────────┴──────────────┴──────────────┘
//! ```
//!
//! Payloads written before tags existed (release 9e7a3dd and earlier) have
//! none: they read as [`Tagged::Untagged`], format version 0. A tag cannot be
//! mistaken for the start of such a payload: the services' journal records
//! are borsh enums, whose first byte (the variant) is far below `0xF0`; their
//! snapshots and archive values start with a collection's `u32` count (the
//! tag would read as over 1.4 × 10⁹ entries) or with a hash or public key,
//! whose first eight bytes would have to equal the tag's (a 2⁻⁶⁴ chance that
//! no one can steer); and a tagged payload's body must then decode, whole and
//! canonically, as the kind's type.

/// The tag's first four bytes.
pub const TAG_MAGIC: [u8; 4] = [0xF0, b'd', b't', b'V'];
/// Bytes of a tag.
pub const TAG_BYTES: usize = 8;

/// The kinds of stored payloads, one number each, never reused.
pub mod kinds {
    /// A participant node's journal record.
    pub const NODE_RECORD: u16 = 1;
    /// A participant node's snapshot.
    pub const NODE_SNAPSHOT: u16 = 2;
    /// A value in a participant node's archive.
    pub const NODE_ARCHIVE: u16 = 3;
    /// The oracle's journal record.
    pub const ORACLE_RECORD: u16 = 4;
    /// The oracle's snapshot.
    pub const ORACLE_SNAPSHOT: u16 = 5;
    /// The DA directory's journal record.
    pub const DIRECTORY_RECORD: u16 = 6;
    /// The DA directory's snapshot.
    pub const DIRECTORY_SNAPSHOT: u16 = 7;
    /// The notary's journal record (a single notary).
    pub const NOTARY_RECORD: u16 = 8;
    /// The notary's snapshot (a single notary, or a replica's memory part).
    pub const NOTARY_SNAPSHOT: u16 = 9;
    /// A notary group replica's Raft log journal record (entries, vote, …).
    pub const NOTARY_LOG_RECORD: u16 = 10;
    /// A notary group replica's Raft log journal snapshot.
    pub const NOTARY_LOG_SNAPSHOT: u16 = 11;
    /// A notary group replica's state machine snapshot (its memory part).
    pub const NOTARY_REPLICA_SNAPSHOT: u16 = 12;
    /// The notary's saved cold-store filter (a single notary's or a replica's).
    pub const NOTARY_COLD_FILTER: u16 = 13;
}

/// A kind of stored payload and the format version this release writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    /// What it is (e.g. a node's journal record): a fixed number per kind.
    pub kind: u16,
    /// The version this release writes, and the newest it reads.
    pub version: u16,
    /// A name for messages.
    pub name: &'static str,
}

/// A stored payload, its tag read.
#[derive(Debug, PartialEq, Eq)]
pub enum Tagged<'a> {
    /// Written with a tag: its format version and body.
    Versioned {
        /// The format version it was written in.
        version: u16,
        /// What follows the tag.
        body: &'a [u8],
    },
    /// Written before tags existed: format version 0, the whole payload is the body.
    Untagged(&'a [u8]),
}

/// Why a stored payload cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// Written by a newer release.
    #[error(
        "{name} in format version {found}, newer than this release reads (up to {supported}): run the release that wrote it, or a newer one"
    )]
    TooNew {
        /// The kind.
        name: &'static str,
        /// The version found.
        found: u16,
        /// The newest this release reads.
        supported: u16,
    },
    /// A tag of another kind (a payload stored in the wrong place).
    #[error("expected {name} (kind {expected}), found a payload of kind {found}")]
    WrongKind {
        /// The kind expected.
        name: &'static str,
        /// Its number.
        expected: u16,
        /// The number found.
        found: u16,
    },
    /// The body does not decode as its format version says.
    #[error("{name} in format version {version} does not decode: {reason}")]
    Undecodable {
        /// The kind.
        name: &'static str,
        /// Its version.
        version: u16,
        /// The decoder's reason.
        reason: String,
    },
}

impl Format {
    /// `body` with this format's tag in front.
    pub fn tag(&self, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(TAG_BYTES.saturating_add(body.len()));
        self.tag_into(&mut out);
        out.extend_from_slice(body);
        out
    }

    /// Writes this format's tag into `out` (the body follows).
    pub fn tag_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&TAG_MAGIC);
        out.extend_from_slice(&self.kind.to_le_bytes());
        out.extend_from_slice(&self.version.to_le_bytes());
    }

    /// Reads the tag of a stored payload of this kind: a version this
    /// release reads, or the whole payload if it has no tag.
    pub fn read<'a>(&self, payload: &'a [u8]) -> Result<Tagged<'a>, FormatError> {
        let Some((tag, body)) = payload.split_first_chunk::<TAG_BYTES>() else {
            return Ok(Tagged::Untagged(payload));
        };
        if tag[..4] != TAG_MAGIC {
            return Ok(Tagged::Untagged(payload));
        }
        let kind = u16::from_le_bytes([tag[4], tag[5]]);
        let version = u16::from_le_bytes([tag[6], tag[7]]);
        if kind != self.kind {
            return Err(FormatError::WrongKind { name: self.name, expected: self.kind, found: kind });
        }
        if version > self.version {
            return Err(FormatError::TooNew { name: self.name, found: version, supported: self.version });
        }
        Ok(Tagged::Versioned { version, body })
    }

    /// `value` as stored: this format's tag, then its borsh encoding.
    pub fn encode<T: borsh::BorshSerialize>(&self, value: &T) -> Vec<u8> {
        let mut out = Vec::new();
        self.tag_into(&mut out);
        // Writing into a Vec cannot fail.
        let _ = borsh::BorshSerialize::serialize(value, &mut out);
        out
    }

    /// A stored value of a kind whose type every version this release reads
    /// shares (untagged, version 0, included): decoded whole and canonically
    /// (re-encoding gives the same bytes), at most `max_bytes`.
    pub fn decode<T: borsh::BorshDeserialize + borsh::BorshSerialize>(
        &self,
        stored: &[u8],
        max_bytes: usize,
    ) -> Result<T, FormatError> {
        let (version, body) = match self.read(stored)? {
            Tagged::Versioned { version, body } => (version, body),
            Tagged::Untagged(body) => (0, body),
        };
        if body.len() > max_bytes {
            return Err(self.undecodable(version, format!("{} bytes exceed the limit of {max_bytes}", body.len())));
        }
        let value: T = borsh::from_slice(body).map_err(|e| self.undecodable(version, e))?;
        if borsh::to_vec(&value).map_err(|e| self.undecodable(version, e))? != body {
            return Err(self.undecodable(version, "the encoding is not canonical"));
        }
        Ok(value)
    }

    /// The error for a body of `version` that does not decode.
    pub fn undecodable(&self, version: u16, reason: impl std::fmt::Display) -> FormatError {
        FormatError::Undecodable { name: self.name, version, reason: reason.to_string() }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const F: Format = Format { kind: 7, version: 2, name: "test record" };

    #[test]
    fn a_tagged_payload_reads_back_its_version_and_body() {
        let stored = F.tag(b"body");
        assert_eq!(F.read(&stored).unwrap(), Tagged::Versioned { version: 2, body: b"body" });
        let older = Format { version: 1, ..F }.tag(b"old");
        assert_eq!(F.read(&older).unwrap(), Tagged::Versioned { version: 1, body: b"old" });
    }

    #[test]
    fn a_payload_without_a_tag_is_version_zero_whole() {
        for legacy in [&b""[..], b"\x03abc", b"\xF0dt", b"\xF0dtX\x07\x00\x01\x00rest"] {
            assert_eq!(F.read(legacy).unwrap(), Tagged::Untagged(legacy));
        }
    }

    #[test]
    fn a_newer_version_or_another_kind_is_refused_naming_both() {
        let newer = Format { version: 3, ..F }.tag(b"x");
        let e = F.read(&newer).unwrap_err();
        assert_eq!(e, FormatError::TooNew { name: "test record", found: 3, supported: 2 });
        assert!(e.to_string().contains("version 3") && e.to_string().contains("up to 2"));
        let other = Format { kind: 8, ..F }.tag(b"x");
        assert!(matches!(F.read(&other).unwrap_err(), FormatError::WrongKind { expected: 7, found: 8, .. }));
    }
}
