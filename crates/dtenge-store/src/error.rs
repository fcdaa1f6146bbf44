//! The one error type of `dtenge-store`.
//!
//! Two kinds of failure are kept apart, because a service must react to them
//! differently:
//! - [`StoreError::Io`] and [`StoreError::Corrupt`] mean the storage can no
//!   longer be trusted: the service must stop (never continue after a failed
//!   fsync) and an operator must look at the disk;
//! - [`StoreError::RecordTooLarge`] and [`StoreError::Closed`] are operating
//!   errors of the caller, reported as values.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in the journal.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A read, write, fsync, rename or delete failed. The journal that saw it
    /// is poisoned: every pending and later append fails with a copy of it.
    #[error("I/O error on {path}: {source}; the journal is stopped, fix the disk and restart the service")]
    Io {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// Data that was acknowledged as durable is damaged (a bad record with
    /// valid data after it, a bad segment header, a sequence gap, an
    /// unreadable snapshot). Nothing is dropped silently: restore the
    /// directory from a replica or backup.
    #[error(
        "journal damage in {file} at byte offset {offset}: {reason}; acknowledged data may be lost, \
         restore this directory from a replica or backup before restarting"
    )]
    Corrupt {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset of the damage inside `file`.
        offset: u64,
        /// What exactly is wrong.
        reason: String,
    },
    /// A record larger than [`crate::RECORD_BYTES_MAX`] was appended.
    #[error("record of {size} bytes exceeds the maximum of {max} bytes; split it")]
    RecordTooLarge {
        /// Size of the refused record.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The journal was closed (or, in memory, crashed); open it again.
    #[error("journal is closed")]
    Closed,
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        StoreError::Io { path: path.into(), source }
    }

    pub(crate) fn corrupt(file: impl Into<PathBuf>, offset: u64, reason: impl Into<String>) -> Self {
        StoreError::Corrupt { file: file.into(), offset, reason: reason.into() }
    }

    /// A copy to hand to every waiter of a failed batch (`io::Error` is not
    /// `Clone`; kind and message are kept).
    pub(crate) fn duplicate(&self) -> Self {
        match self {
            StoreError::Io { path, source } => {
                StoreError::Io { path: path.clone(), source: io::Error::new(source.kind(), source.to_string()) }
            }
            StoreError::Corrupt { file, offset, reason } => {
                StoreError::Corrupt { file: file.clone(), offset: *offset, reason: reason.clone() }
            }
            StoreError::RecordTooLarge { size, max } => StoreError::RecordTooLarge { size: *size, max: *max },
            StoreError::Closed => StoreError::Closed,
        }
    }
}
