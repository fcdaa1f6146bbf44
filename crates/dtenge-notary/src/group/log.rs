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
//!
//! Records and journal snapshots carry format tags ([`crate::format::LOG_RECORD`],
//! [`crate::format::LOG_SNAPSHOT`]). An untagged one is version 0 (release
//! 2f8af32): its votes, positions, blank and membership entries read as they
//! were; a version 0 *batch* entry is refused, naming both versions, rather
//! than re-decided under version 1's rules (host openings, the leader's
//! findings), which could decide it otherwise than the replicas that applied
//! it did.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::RangeBounds;
use std::sync::{Arc, Mutex, MutexGuard};

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_store::{Journal, Recovery, StoreError};
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{AnyError, Entry, LogId, LogState, RaftLogReader, StorageError, StorageIOError, Vote};

use crate::format::{LOG_RECORD, LOG_SNAPSHOT, NotariseBatchV0};
use crate::group::GroupConfig;
use crate::group::wire::{WireEntry, WireLogId, WireMembership, WirePayload, WireVote};
use crate::service::NotaryError;
use dtenge_store::versioned::{Format, FormatError, Tagged};
use dtenge_types::Timestamp;

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

/// A log entry's batch in format version 0: no host findings, claims of
/// version 0 (decoded only to be refused: its fields are never read).
#[derive(BorshSerialize, BorshDeserialize)]
#[allow(dead_code)]
pub(crate) struct LogBatchV0 {
    pub(crate) batch: NotariseBatchV0,
    pub(crate) at: Timestamp,
    pub(crate) may_issue: bool,
}

/// An entry's payload in format version 0.
#[derive(BorshSerialize, BorshDeserialize)]
#[allow(clippy::large_enum_variant)] // decoded once, at recovery
pub(crate) enum WirePayloadV0 {
    Blank,
    Normal(LogBatchV0),
    Membership(WireMembership),
}

/// A log entry in format version 0.
#[derive(BorshSerialize, BorshDeserialize)]
pub(crate) struct WireEntryV0 {
    pub(crate) log_id: WireLogId,
    pub(crate) payload: WirePayloadV0,
}

/// A log record in format version 0 (untagged).
#[derive(BorshSerialize, BorshDeserialize)]
pub(crate) enum LogRecordV0 {
    Vote(WireVote),
    Entries(Vec<WireEntryV0>),
    Truncate(u64),
    Purge(WireLogId),
    Committed(Option<WireLogId>),
}

/// A log snapshot in format version 0 (untagged).
#[derive(BorshSerialize, BorshDeserialize)]
pub(crate) struct LogSnapshotV0 {
    pub(crate) vote: Option<WireVote>,
    pub(crate) committed: Option<WireLogId>,
    pub(crate) purged: Option<WireLogId>,
    pub(crate) entries: Vec<WireEntryV0>,
}

/// Version 0 entries in version 1: the same, except that a batch is refused.
fn entries_from_v0(entries: Vec<WireEntryV0>, format: Format) -> Result<Vec<WireEntry>, FormatError> {
    entries
        .into_iter()
        .map(|e| {
            let payload = match e.payload {
                WirePayloadV0::Blank => WirePayload::Blank,
                WirePayloadV0::Membership(m) => WirePayload::Membership(m),
                WirePayloadV0::Normal(_) => {
                    return Err(format.undecodable(
                        0,
                        format!(
                            "entry {} is a notarisation batch of format version 0 (claims without host openings); \
                             this release applies batches of version {} only and does not re-decide an older \
                             batch under newer rules: finish this log with the release that wrote it",
                            e.log_id.index, format.version
                        ),
                    ));
                }
            };
            Ok(WireEntry { log_id: e.log_id, payload })
        })
        .collect()
}

/// A stored log record of any version this release reads.
fn decode_record(stored: &[u8]) -> Result<LogRecord, FormatError> {
    match LOG_RECORD.read(stored)? {
        Tagged::Versioned { version, body } => borsh::from_slice(body).map_err(|e| LOG_RECORD.undecodable(version, e)),
        Tagged::Untagged(body) => {
            let old: LogRecordV0 = borsh::from_slice(body).map_err(|e| LOG_RECORD.undecodable(0, e))?;
            Ok(match old {
                LogRecordV0::Vote(v) => LogRecord::Vote(v),
                LogRecordV0::Entries(e) => LogRecord::Entries(entries_from_v0(e, LOG_RECORD)?),
                LogRecordV0::Truncate(i) => LogRecord::Truncate(i),
                LogRecordV0::Purge(p) => LogRecord::Purge(p),
                LogRecordV0::Committed(c) => LogRecord::Committed(c),
            })
        }
    }
}

/// A stored log snapshot of any version this release reads.
fn decode_snapshot(stored: &[u8]) -> Result<LogSnapshot, FormatError> {
    match LOG_SNAPSHOT.read(stored)? {
        Tagged::Versioned { version, body } => {
            borsh::from_slice(body).map_err(|e| LOG_SNAPSHOT.undecodable(version, e))
        }
        Tagged::Untagged(body) => {
            let old: LogSnapshotV0 = borsh::from_slice(body).map_err(|e| LOG_SNAPSHOT.undecodable(0, e))?;
            Ok(LogSnapshot {
                vote: old.vote,
                committed: old.committed,
                purged: old.purged,
                entries: entries_from_v0(old.entries, LOG_SNAPSHOT)?,
            })
        }
    }
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
    /// A record or the snapshot does not decode (damaged, or of a format
    /// version this release does not read: the message names both).
    pub fn recover(journal: Journal, recovery: Recovery) -> Result<LogStore, NotaryError> {
        let damaged = NotaryError::Replay;
        let mut memory = LogMemory::default();
        if let Some((seq, bytes)) = &recovery.snapshot {
            let snap = decode_snapshot(bytes).map_err(|e| damaged(format!("raft log snapshot at {seq}: {e}")))?;
            memory.vote = snap.vote.map(Into::into);
            memory.committed = snap.committed.map(Into::into);
            memory.purged = snap.purged.map(Into::into);
            for e in snap.entries {
                let entry: Entry<GroupConfig> = e.into();
                memory.entries.insert(entry.log_id.index, entry);
            }
        }
        for (seq, bytes) in &recovery.records {
            let record = decode_record(bytes).map_err(|e| damaged(format!("raft log record {seq}: {e}")))?;
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
        let bytes = LOG_RECORD.encode(record);
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
            (self.journal.last_seq(), LOG_SNAPSHOT.encode(&memory.snapshot()))
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use dtenge_crypto::{Digest, Signature};
    use dtenge_store::versioned::Format;
    use dtenge_types::{BoundedVec, Commitment, ParticipantId, TimeWindow, TxId};

    use super::*;
    use crate::format::TxClaimV0;
    use crate::group::wire::WireLeader;

    fn at(index: u64) -> WireLogId {
        WireLogId { leader: WireLeader { term: 1, node: 1 }, index }
    }

    fn membership() -> WireMembership {
        WireMembership { configs: vec![vec![1, 2, 3]], nodes: (1..=3).map(|n| (n, format!("NOTARY-{n}"))).collect() }
    }

    /// A batch entry as release 2f8af32 wrote it (untagged, claims of version 0).
    fn batch_v0(index: u64) -> WireEntryV0 {
        let claim = TxClaimV0 {
            tx: TxId(Digest([index as u8; 32])),
            inputs: BoundedVec::new(vec![Commitment(Digest([1; 32]))]).unwrap(),
            outputs: BoundedVec::new(vec![Commitment(Digest([2; 32]))]).unwrap(),
            window: TimeWindow::starting(Timestamp(1_000), 60_000),
        };
        let batch = NotariseBatchV0 {
            node: ParticipantId::new("STB1").unwrap(),
            claims: BoundedVec::new(vec![claim]).unwrap(),
            signature: Signature([9; 64]),
        };
        WireEntryV0 {
            log_id: at(index),
            payload: WirePayloadV0::Normal(LogBatchV0 { batch, at: Timestamp(1_000), may_issue: false }),
        }
    }

    fn recover(snapshot: Option<Vec<u8>>, records: Vec<Vec<u8>>) -> Result<LogStore, NotaryError> {
        let recovery = Recovery {
            snapshot: snapshot.map(|s| (0, s)),
            records: records.into_iter().enumerate().map(|(i, r)| (i as u64 + 1, r)).collect(),
            truncated_tail_bytes: 0,
        };
        LogStore::recover(Journal::in_memory().0, recovery)
    }

    #[test]
    fn what_this_release_writes_is_tagged_and_reads_back() {
        let log = recover(None, Vec::new()).unwrap();
        let stored = {
            let mut memory = log.memory();
            let record = LogRecord::Entries(vec![WireEntry { log_id: at(1), payload: WirePayload::Blank }]);
            let _pending = log.journal(&mut memory, &record).unwrap();
            LOG_RECORD.encode(&record)
        };
        assert!(matches!(LOG_RECORD.read(&stored).unwrap(), Tagged::Versioned { version: 1, .. }));
        let log = recover(Some(LOG_SNAPSHOT.encode(&log.memory().snapshot())), vec![stored]).unwrap();
        assert_eq!(log.entries(..).len(), 1);
    }

    #[test]
    fn an_untagged_log_without_batches_reads_as_version_0() {
        let snapshot = LogSnapshotV0 {
            vote: Some(WireVote { leader: WireLeader { term: 1, node: 1 }, committed: true }),
            committed: Some(at(1)),
            purged: None,
            entries: vec![WireEntryV0 { log_id: at(1), payload: WirePayloadV0::Blank }],
        };
        let records = vec![
            borsh::to_vec(&LogRecordV0::Entries(vec![WireEntryV0 {
                log_id: at(2),
                payload: WirePayloadV0::Membership(membership()),
            }]))
            .unwrap(),
            borsh::to_vec(&LogRecordV0::Committed(Some(at(2)))).unwrap(),
        ];
        let log = recover(Some(borsh::to_vec(&snapshot).unwrap()), records).unwrap();
        assert_eq!(log.committed_index(), Some(2));
        let entries = log.entries(..);
        assert_eq!(entries.len(), 2);
        assert!(matches!(entries[1].payload, openraft::EntryPayload::Membership(_)));
    }

    #[test]
    fn an_untagged_batch_entry_is_refused_naming_both_versions_never_misread() {
        let record = borsh::to_vec(&LogRecordV0::Entries(vec![batch_v0(7)])).unwrap();
        // Read as today's record without the tag check it would not be the batch the node signed.
        let e = recover(None, vec![record]).err().unwrap().to_string();
        assert!(e.contains("notary group log record in format version 0"), "{e}");
        assert!(e.contains("entry 7") && e.contains("version 1 only"), "{e}");
        let snapshot = LogSnapshotV0 { vote: None, committed: None, purged: None, entries: vec![batch_v0(3)] };
        let e = recover(Some(borsh::to_vec(&snapshot).unwrap()), Vec::new()).err().unwrap().to_string();
        assert!(e.contains("notary group log snapshot in format version 0") && e.contains("version 1 only"), "{e}");
    }

    #[test]
    fn a_record_of_a_newer_release_is_refused_naming_both_versions() {
        let newer = Format { version: 2, ..LOG_RECORD }.encode(&LogRecord::Truncate(4));
        let e = recover(None, vec![newer]).err().unwrap().to_string();
        assert!(e.contains("version 2") && e.contains("up to 1"), "{e}");
    }
}
