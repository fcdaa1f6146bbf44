//! The on-disk format of the file journal: pure encode/decode functions, no
//! I/O, so the log reader can be fuzzed and tested byte by byte.
//!
//! A journal directory holds segment files and at most one snapshot (two for
//! a moment while a new one replaces the old):
//!
//! ```text
//! journal-00000000000000000001.log    records 1 ..= 41 887
//! journal-00000000000000041888.log    records 41 888 ..   (the active segment)
//! snapshot-00000000000000041000.bin   state covering records ..= 41 000
//! LOCK                                held (flock) while a process has the journal open
//! *.tmp                               half-written files; deleted on open
//! ```
//!
//! Segment file (`journal-{first_seq:020}.log`):
//!
//! ```text
//! ┌──────────────────────────┬─────────┬─────────┬─────┐
//! │ "DTJRNL" ‖ version u16LE │ frame 1 │ frame 2 │ ... │
//! └──────────────────────────┴─────────┴─────────┴─────┘
//!            8 bytes
//!
//! frame:
//! ┌────────────┬───────────────────────────────┬─────────┬───────────────┐
//! │ len u32 LE │ crc32(seq u64 LE ‖ payload)   │ seq u64 │ payload       │
//! │            │ u32 LE                        │ LE      │ (len bytes)   │
//! └────────────┴───────────────────────────────┴─────────┴───────────────┘
//!    4 bytes          4 bytes                    8 bytes
//! ```
//!
//! Snapshot file (`snapshot-{seq:020}.bin`):
//!
//! ```text
//! ┌──────────────────────────┬────────┬────────────┬──────────────────────┬───────┐
//! │ "DTSNAP" ‖ version u16LE │ seq u64│ len u64 LE │ crc32(seq ‖ state)   │ state │
//! │                          │ LE     │            │ u32 LE               │       │
//! └──────────────────────────┴────────┴────────────┴──────────────────────┴───────┘
//!            8 bytes            8          8                 4              len
//! ```
//!
//! Invariants:
//! - the CRC covers the sequence number, so a record written to the wrong
//!   place (misdirected or stale) is detected as well as a flipped bit;
//! - within a segment, record seqs are consecutive from the segment's
//!   `first_seq` (its file name); the next segment starts where it ended;
//! - a frame's `len` never exceeds [`RECORD_BYTES_MAX`], so a damaged length
//!   cannot make the reader allocate or skip gigabytes.

/// The largest record payload accepted, in bytes (16 MiB).
pub const RECORD_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Bytes of a frame before its payload: `len`, `crc`, `seq`.
pub const FRAME_HEADER_BYTES: usize = 16;

/// The segment header: magic and format version.
pub const SEGMENT_HEADER: [u8; 8] = *b"DTJRNL\x01\x00";

/// Snapshot magic and format version.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"DTSNAP\x01\x00";

/// Bytes of a snapshot file before the state.
pub const SNAPSHOT_HEADER_BYTES: usize = 8 + 8 + 8 + 4;

const _: () = assert!(RECORD_BYTES_MAX <= u32::MAX as usize, "a record length must fit the u32 len field");
const _: () = assert!(SEGMENT_HEADER.len() == 8 && SNAPSHOT_MAGIC.len() == 8);

/// A valid frame read from a segment.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The record's sequence number.
    pub seq: u64,
    /// The record.
    pub payload: &'a [u8],
    /// Bytes the frame takes in the file (header + payload).
    pub frame_bytes: usize,
}

/// Why the bytes at some offset are not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// Fewer bytes than the frame needs: a write that stopped midway.
    Short {
        /// Bytes the frame needs (header, or header + declared payload).
        needed: usize,
        /// Bytes that are there.
        available: usize,
    },
    /// The length field exceeds [`RECORD_BYTES_MAX`].
    TooLarge {
        /// The declared payload length.
        len: usize,
    },
    /// The checksum does not match the sequence number and payload.
    BadChecksum {
        /// Checksum stored in the frame.
        stored: u32,
        /// Checksum of what is there.
        computed: u32,
    },
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Short { needed, available } => {
                write!(f, "incomplete record: needs {needed} bytes, {available} present")
            }
            FrameError::TooLarge { len } => {
                write!(f, "record length {len} exceeds the maximum of {RECORD_BYTES_MAX}")
            }
            FrameError::BadChecksum { stored, computed } => {
                write!(f, "checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")
            }
        }
    }
}

fn checksum(seq: u64, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&seq.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// Appends the frame of record `seq` to `out`.
///
/// # Panics
/// If `payload` exceeds [`RECORD_BYTES_MAX`]; callers check first
/// (`Journal::append` returns `RecordTooLarge`).
pub fn encode_frame(seq: u64, payload: &[u8], out: &mut Vec<u8>) {
    assert!(payload.len() <= RECORD_BYTES_MAX, "record size checked before framing");
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.reserve(FRAME_HEADER_BYTES + payload.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&checksum(seq, payload).to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(payload);
}

/// Reads the frame at the start of `bytes`.
pub fn decode_frame(bytes: &[u8]) -> Result<Frame<'_>, FrameError> {
    if bytes.len() < FRAME_HEADER_BYTES {
        return Err(FrameError::Short { needed: FRAME_HEADER_BYTES, available: bytes.len() });
    }
    let len = u32_at(bytes, 0) as usize;
    if len > RECORD_BYTES_MAX {
        return Err(FrameError::TooLarge { len });
    }
    let frame_bytes = FRAME_HEADER_BYTES + len;
    if bytes.len() < frame_bytes {
        return Err(FrameError::Short { needed: frame_bytes, available: bytes.len() });
    }
    let stored = u32_at(bytes, 4);
    let seq = u64_at(bytes, 8);
    let payload = &bytes[FRAME_HEADER_BYTES..frame_bytes];
    let computed = checksum(seq, payload);
    if stored != computed {
        return Err(FrameError::BadChecksum { stored, computed });
    }
    Ok(Frame { seq, payload, frame_bytes })
}

/// Looks for any valid frame starting after byte `from` whose seq is above
/// `after_seq`: evidence that damage at `from` is not a torn tail but a hole
/// in acknowledged data. Returns its offset and seq.
///
/// A frame of seq `s` can only be `s - after_seq - 1` frames further on, and
/// every frame is at least [`FRAME_HEADER_BYTES`] long, so seqs beyond that
/// are rejected before the checksum is computed; random garbage almost never
/// reaches the CRC.
pub fn find_valid_frame_after(bytes: &[u8], from: usize, after_seq: u64) -> Option<(usize, u64)> {
    let last_start = bytes.len().checked_sub(FRAME_HEADER_BYTES)?;
    for offset in from.saturating_add(1)..=last_start {
        let rest = &bytes[offset..];
        let seq = u64_at(rest, 8);
        let frames_fitting = (rest.len() / FRAME_HEADER_BYTES) as u64;
        if seq <= after_seq || seq - after_seq > frames_fitting.saturating_add(1) {
            continue;
        }
        if let Ok(frame) = decode_frame(rest) {
            return Some((offset, frame.seq));
        }
    }
    None
}

/// The header of a snapshot file holding `state` (the state follows it).
pub fn snapshot_header(seq: u64, state: &[u8]) -> [u8; SNAPSHOT_HEADER_BYTES] {
    let mut header = [0u8; SNAPSHOT_HEADER_BYTES];
    header[..8].copy_from_slice(&SNAPSHOT_MAGIC);
    header[8..16].copy_from_slice(&seq.to_le_bytes());
    header[16..24].copy_from_slice(&(state.len() as u64).to_le_bytes());
    header[24..28].copy_from_slice(&checksum(seq, state).to_le_bytes());
    header
}

/// Encodes a whole snapshot file (header ‖ state).
pub fn encode_snapshot(seq: u64, state: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(SNAPSHOT_HEADER_BYTES + state.len());
    out.extend_from_slice(&snapshot_header(seq, state));
    out.extend_from_slice(state);
    out
}

/// Decodes a snapshot file; on failure returns the byte offset and reason.
pub fn decode_snapshot(bytes: &[u8]) -> Result<(u64, &[u8]), (u64, String)> {
    if bytes.len() < SNAPSHOT_HEADER_BYTES {
        return Err((0, format!("snapshot header incomplete: {} of {SNAPSHOT_HEADER_BYTES} bytes", bytes.len())));
    }
    if bytes[..8] != SNAPSHOT_MAGIC {
        return Err((0, "not a dtenge snapshot of a known version (bad magic)".to_owned()));
    }
    let seq = u64_at(bytes, 8);
    let len = u64_at(bytes, 16);
    let stored = u32_at(bytes, 24);
    let state = &bytes[SNAPSHOT_HEADER_BYTES..];
    if state.len() as u64 != len {
        return Err((16, format!("snapshot declares {len} bytes of state but holds {}", state.len())));
    }
    let computed = checksum(seq, state);
    if stored != computed {
        return Err((24, format!("snapshot checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")));
    }
    Ok((seq, state))
}

/// File name of the segment whose first record is `first_seq`.
pub fn segment_file_name(first_seq: u64) -> String {
    format!("journal-{first_seq:020}.log")
}

/// File name of the snapshot covering records `..= seq`.
pub fn snapshot_file_name(seq: u64) -> String {
    format!("snapshot-{seq:020}.bin")
}

fn parse_numbered(name: &str, prefix: &str, suffix: &str) -> Option<u64> {
    let digits = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
    if digits.len() != 20 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The `first_seq` of a segment file name, if it is one.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    parse_numbered(name, "journal-", ".log")
}

/// The `seq` of a snapshot file name, if it is one.
pub fn parse_snapshot_file_name(name: &str) -> Option<u64> {
    parse_numbered(name, "snapshot-", ".bin")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn frame_round_trips() {
        let mut out = Vec::new();
        encode_frame(7, b"hello", &mut out);
        encode_frame(8, b"", &mut out);
        let first = decode_frame(&out).unwrap();
        assert_eq!((first.seq, first.payload, first.frame_bytes), (7, &b"hello"[..], 21));
        let second = decode_frame(&out[first.frame_bytes..]).unwrap();
        assert_eq!((second.seq, second.payload), (8, &b""[..]));
    }

    #[test]
    fn frame_with_wrong_seq_fails_checksum() {
        let mut out = Vec::new();
        encode_frame(7, b"hello", &mut out);
        out[8] = 9;
        assert!(matches!(decode_frame(&out), Err(FrameError::BadChecksum { .. })));
    }

    #[test]
    fn oversized_length_is_refused_before_reading() {
        let mut out = Vec::new();
        encode_frame(1, b"x", &mut out);
        out[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode_frame(&out), Err(FrameError::TooLarge { len: u32::MAX as usize }));
    }

    #[test]
    fn scan_finds_the_next_valid_frame_only() {
        let mut out = vec![0xAB; 5];
        encode_frame(3, b"abc", &mut out);
        assert_eq!(find_valid_frame_after(&out, 0, 2), Some((5, 3)));
        assert_eq!(find_valid_frame_after(&out, 0, 3), None, "seqs at or below the last valid one do not count");
    }

    #[test]
    fn snapshot_round_trips_and_detects_flips() {
        let mut bytes = encode_snapshot(42, b"state");
        assert_eq!(decode_snapshot(&bytes).unwrap(), (42, &b"state"[..]));
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert!(decode_snapshot(&bytes).is_err());
    }

    #[test]
    fn file_names_round_trip_and_reject_others() {
        assert_eq!(parse_segment_file_name(&segment_file_name(12)), Some(12));
        assert_eq!(parse_snapshot_file_name(&snapshot_file_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_segment_file_name("journal-12.log"), None);
        assert_eq!(parse_segment_file_name("journal-00000000000000000012.log.tmp"), None);
    }
}
