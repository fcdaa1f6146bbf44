//! # dtenge-store
//!
//! Durable storage for every dtenge service (notary, oracle, participant
//! nodes). A service is an in-memory state machine; every state change is a
//! record appended to a [`Journal`]; on restart it loads the latest snapshot
//! and replays the records after it ([`Recovery`]).
//!
//! ```text
//!  service ── append(record) ──► Pending(seq) ─┐
//!     ▲                                         │ group commit: many records, one fsync
//!     └── answer the client only after ◄── wait()/durable()
//!
//!  restart: Journal::open(dir) ──► Recovery { snapshot, records after it }
//! ```
//!
//! Invariants:
//! - a `Pending` completes only after its record is durable (fdatasync under
//!   [`SyncMode::Fsync`]); after a failed write or fsync the journal is
//!   poisoned and acknowledges nothing more;
//! - sequence numbers are consecutive from 1 and survive restarts;
//! - an unacknowledged torn tail is cut off on open and reported; damage to
//!   acknowledged data is an error ([`StoreError::Corrupt`]), never a silent loss.
//!
//! Modules: [`format`](mod@format) (bytes on disk), `journal` (group commit, shared by
//! both backends), `file` (segments, snapshots, recovery), `memory` (the
//! simulated disk), [`conformance`] (the suite every backend passes),
//! [`versioned`] (the format-version tag services put on what they store).

pub mod conformance;
mod error;
mod file;
pub mod format;
mod journal;
mod memory;
pub mod versioned;

pub use error::StoreError;
pub use file::{RESERVE_BYTES, replace_file};
pub use format::RECORD_BYTES_MAX;
pub use journal::{
    BATCH_RECORDS_DEFAULT, Journal, JournalConfig, JournalStats, Pending, QUEUED_RECORDS_DEFAULT, Recovery,
    SEGMENT_BYTES_DEFAULT, SyncMode,
};
pub use memory::MemJournalHandle;
pub use versioned::{Format, FormatError, Tagged};

impl Journal {
    /// Opens (creating the directory if needed) a file journal.
    ///
    /// A torn or corrupt *last* record with nothing valid after it is an
    /// unacknowledged tail: it is cut off, reported in
    /// [`Recovery::truncated_tail_bytes`] and logged with `tracing::warn!`.
    /// Damage to acknowledged data — a bad record followed by valid data, a
    /// bad segment header, a sequence gap, an unreadable snapshot — is
    /// [`StoreError::Corrupt`]; nothing is dropped silently.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] as above; [`StoreError::Io`] if the directory
    /// cannot be read or written, or is already open (its `LOCK` is held).
    pub fn open(config: JournalConfig) -> Result<(Journal, Recovery), StoreError> {
        file::open(config)
    }
}
