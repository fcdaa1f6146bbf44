//! A replica's Raft log over a `dtenge-store` journal.
//!
//! ```text
//!  append(entries) ──► memory map (readable at once) + journal record Entries ──► fdatasync ──► LogFlushed
//!  save_vote(v)    ──► journal record Vote      ──► fdatasync ──► Ok
//!  truncate(i)     ──► journal record Truncate  ──► fdatasync ──► Ok
//!  purge(i)        ──► journal record Purge (no wait); every COMPACT_EVERY records
//!                      a journal snapshot of what is left drops the records before it
//!  open            ──► snapshot + records replayed in order = the log as it was
//! ```
//!
//! The journal is append-only; truncation and purging are records like any
//! other, and the journal's order is their order, so a crash that loses a
//! record also loses every later one: the log reopens as it was at some
//! moment, never with a later change but not an earlier one.
//!
//! Invariants: openraft is told an append is flushed (`LogFlushed`) and a
//! vote is saved only after the journal's fdatasync returned; a failed write
//! or sync poisons the journal, every later call fails and openraft stops
//! the replica — it never answers from a log it could not make durable.
//! Memory holds the entries not yet purged (the group purges after each
//! snapshot of the state machine).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::RangeBounds;
use std::sync::{Arc, Mutex, MutexGuard};

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_store::{Journal, Recovery, StoreError};
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{AnyError, Entry, LogId, LogState, RaftLogReader, StorageError, StorageIOError, Vote};

use crate::group::GroupConfig;
use crate::group::wire::{WireEntry, WireLogId, WireVote};

/// After this many journal records since its last snapshot, a purge also
/// writes a journal snapshot of what is left, dropping older records.
pub const COMPACT_EVERY_RECORDS: u64 = 4096;

/// Largest journal record of entries; longer appends are split.
const ENTRIES_RECORD_BYTES: usize = 8 << 20;

/// One change of the log, as journaled.
#[derive(Debug, BorshSerialize, BorshDeserialize)]
enum LogRecord {
    /// The vote.
    Vote(WireVote),
    /// Entries appended.
    Entries(Vec<WireEntry>),
    /// Entries from this index on deleted.
    Truncate(u64),
    /// Entries up to this one deleted (they are in a state machine snapshot).
    Purge(WireLogId),
    /// What the replica knows is committed.
    Committed(Option<WireLogId>),
}

/// The log as a journal snapshot holds it.
#[derive(Debug, BorshSerialize, BorshDeserialize)]
struct LogSnapshot {
    vote: Option<WireVote>,
    committed: Option<WireLogId>,
    purged: Option<WireLogId>,
    entries: Vec<WireEntry>,
}

#[derive(Default)]
struct LogMemory {
    vote: Option<Vote<u64>>,
    committed: Option<LogId<u64>>,
    purged: Option<LogId<u64>>,
    entries: BTreeMap<u64, Entry<GroupConfig>>,
    /// Journal records since its last snapshot.
    records_since_compaction: u64,
}

impl LogMemory {
    fn apply(&mut self, record: LogRecord) {
        match record {
            LogRecord::Vote(v) => self.vote = Some(v.into()),
            LogRecord::Entries(entries) => {
                for e in entries {
                    let entry: Entry<GroupConfig> = e.into();
                    self.entries.insert(entry.log_id.index, entry);
                }
            }
            LogRecord::Truncate(index) => {
                self.entries.split_off(&index);
            }
            LogRecord::Purge(upto) => self.purge(upto.into()),
            LogRecord::Committed(c) => self.committed = c.map(Into::into),
        }
    }

    fn purge(&mut self, upto: LogId<u64>) {
        let keep = self.entries.split_off(&(upto.index + 1));
        self.entries = keep;
        if self.purged.is_none_or(|p| p < upto) {
            self.purged = Some(upto);
        }
    }

    fn snapshot(&self) -> LogSnapshot {
        LogSnapshot {
            vote: self.vote.map(Into::into),
            committed: self.committed.map(Into::into),
            purged: self.purged.map(Into::into),
            entries: self.entries.values().cloned().map(Into::into).collect(),
        }
    }
}

/// The log store of one replica (clones share it: openraft's log reader is
/// a clone).
#[derive(Clone)]
pub struct LogStore {
    journal: Journal,
    memory: Arc<Mutex<LogMemory>>,
}

fn io_error(e: impl std::error::Error + 'static) -> StorageError<u64> {
    StorageIOError::write_logs(AnyError::new(&e)).into()
}

impl LogStore {
    /// The log a journal held when it was opened.
    ///
    /// # Errors
    /// A record or the snapshot does not decode: the journal is damaged.
    pub fn recover(journal: Journal, recovery: Recovery) -> Result<LogStore, StoreError> {
        let damaged = |what: String| StoreError::Corrupt {
            file: std::path::PathBuf::from("<raft log>"),
            offset: 0,
            reason: what,
        };
        let mut memory = LogMemory::default();
        if let Some((seq, bytes)) = &recovery.snapshot {
            let snap: LogSnapshot =
                borsh::from_slice(bytes).map_err(|e| damaged(format!("log snapshot at {seq} does not decode: {e}")))?;
            memory.vote = snap.vote.map(Into::into);
            memory.committed = snap.committed.map(Into::into);
            memory.purged = snap.purged.map(Into::into);
            for e in snap.entries {
                let entry: Entry<GroupConfig> = e.into();
                memory.entries.insert(entry.log_id.index, entry);
            }
        }
        for (seq, bytes) in &recovery.records {
            let record: LogRecord =
                borsh::from_slice(bytes).map_err(|e| damaged(format!("log record {seq} does not decode: {e}")))?;
            memory.apply(record);
        }
        memory.records_since_compaction = recovery.records.len() as u64;
        Ok(LogStore { journal, memory: Arc::new(Mutex::new(memory)) })
    }

    fn memory(&self) -> MutexGuard<'_, LogMemory> {
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends `record` to the journal (under the memory lock, so the
    /// journal's order is the order of the changes to memory).
    #[allow(clippy::result_large_err)] // openraft's error type, returned as openraft expects it
    fn journal(&self, memory: &mut LogMemory, record: &LogRecord) -> Result<dtenge_store::Pending, StorageError<u64>> {
        let bytes = borsh::to_vec(record).map_err(io_error)?;
        memory.records_since_compaction += 1;
        self.journal.append(bytes).map_err(io_error)
    }

    /// The index the replica last knew committed.
    pub fn committed_index(&self) -> Option<u64> {
        self.memory().committed.map(|c| c.index)
    }

    /// The entries held in `range` (for an offline replay).
    pub fn entries(&self, range: impl RangeBounds<u64>) -> Vec<Entry<GroupConfig>> {
        self.memory().entries.range(range).map(|(_, e)| e.clone()).collect()
    }

    /// Entries held in memory (not yet purged).
    pub fn len(&self) -> usize {
        self.memory().entries.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops: waits until everything journaled is durable.
    ///
    /// # Errors
    /// The journal failed.
    pub fn close(&self) -> Result<(), StoreError> {
        self.journal.close()
    }

    /// Writes a journal snapshot of the log as it is, dropping the records
    /// before it (on a blocking thread: the journal waits for its sync).
    async fn compact(&self) -> Result<(), StorageError<u64>> {
        let (seq, bytes) = {
            let mut memory = self.memory();
            if memory.records_since_compaction < COMPACT_EVERY_RECORDS {
                return Ok(());
            }
            memory.records_since_compaction = 0;
            (self.journal.last_seq(), borsh::to_vec(&memory.snapshot()).map_err(io_error)?)
        };
        if seq == 0 {
            return Ok(());
        }
        let journal = self.journal.clone();
        tokio::task::spawn_blocking(move || journal.snapshot(seq, &bytes)).await.map_err(io_error)?.map_err(io_error)
    }
}

impl RaftLogReader<GroupConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<GroupConfig>>, StorageError<u64>> {
        Ok(self.memory().entries.range(range).map(|(_, e)| e.clone()).collect())
    }
}

impl RaftLogStorage<GroupConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<GroupConfig>, StorageError<u64>> {
        let memory = self.memory();
        let last = memory.entries.last_key_value().map(|(_, e)| e.log_id).or(memory.purged);
        Ok(LogState { last_purged_log_id: memory.purged, last_log_id: last })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError<u64>> {
        let pending = {
            let mut memory = self.memory();
            let pending = self.journal(&mut memory, &LogRecord::Vote((*vote).into()))?;
            memory.vote = Some(*vote);
            pending
        };
        pending.durable().await.map_err(|e| StorageIOError::write_vote(AnyError::new(&e)))?;
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError<u64>> {
        Ok(self.memory().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId<u64>>) -> Result<(), StorageError<u64>> {
        // Not waited for: a lost record only means re-applying from the
        // state machine's snapshot once the leader says what is committed.
        let mut memory = self.memory();
        let _pending = self.journal(&mut memory, &LogRecord::Committed(committed.map(Into::into)))?;
        memory.committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<u64>>, StorageError<u64>> {
        Ok(self.memory().committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<GroupConfig>) -> Result<(), StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<GroupConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut last = None;
        {
            let mut memory = self.memory();
            let mut piece: Vec<WireEntry> = Vec::new();
            let mut piece_bytes = 0usize;
            for entry in entries {
                let wire: WireEntry = entry.clone().into();
                piece_bytes += borsh::object_length(&wire).map_err(io_error)?;
                piece.push(wire);
                memory.entries.insert(entry.log_id.index, entry);
                if piece_bytes >= ENTRIES_RECORD_BYTES {
                    last = Some(self.journal(&mut memory, &LogRecord::Entries(std::mem::take(&mut piece)))?);
                    piece_bytes = 0;
                }
            }
            if !piece.is_empty() {
                last = Some(self.journal(&mut memory, &LogRecord::Entries(piece))?);
            }
        }
        // The journal completes records in order: the last one's sync covers
        // every earlier one.
        let durable = match last {
            Some(pending) => pending,
            None => self.journal.sync_point(),
        };
        tokio::spawn(async move {
            let result = durable.durable().await.map(|_| ()).map_err(|e| std::io::Error::other(e.to_string()));
            callback.log_io_completed(result);
        });
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        let pending = {
            let mut memory = self.memory();
            let pending = self.journal(&mut memory, &LogRecord::Truncate(log_id.index))?;
            memory.entries.split_off(&log_id.index);
            pending
        };
        pending.durable().await.map_err(io_error)?;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        {
            let mut memory = self.memory();
            let _pending = self.journal(&mut memory, &LogRecord::Purge(log_id.into()))?;
            memory.purge(log_id);
        }
        self.compact().await
    }
}
