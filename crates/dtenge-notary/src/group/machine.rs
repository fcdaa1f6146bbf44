//! A replica's state machine: the notary engine applying the group's log.
//!
//! ```text
//!  apply(entry)   Normal(LogBatch) ──► decide + apply at max(at, last time) ──► decisions (the leader signs them)
//!                 Blank / Membership ──► last applied, membership
//!  build_snapshot ──► under the lock: engine memory part, last applied, membership, last time
//!                 ──► cold store persisted, then the snapshot journaled (dtenge-store) ──► the log may be purged
//!  send           ──► memory part + the whole cold store, in pieces (see `network`)
//!  install        ──► cold pieces already ingested; engine rebuilt from the memory part
//! ```
//!
//! The snapshot of a replica is its engine's memory part (live set, recent
//! generations) with the cold store beside it, exactly as the single
//! notary's: the cold store is made durable before the snapshot lets the log
//! drop entries. The cold store may hold more than a snapshot covers (it is
//! written in the background, and a replica receives another replica's whole
//! store); the engine ignores cold entries beyond its own commit count, so
//! replaying the log after the snapshot decides exactly as the first time.
//!
//! A snapshot's memory part carries a format tag ([`REPLICA_SNAPSHOT`]);
//! one written before tags reads as version 0, the same layout.
//!
//! Invariants: every replica applies the same entries in the same order with
//! the same time, so every replica has the same state and produces the same
//! receipt bodies ([`MachineState::digest`] compares them); a cold store or
//! journal failure stops the replica (openraft treats a storage error as
//! fatal).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_crypto::{Digest, Hasher};
use dtenge_store::{Journal, Recovery};
use dtenge_types::Timestamp;
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, BasicNode, Entry, EntryPayload, LogId, RaftSnapshotBuilder, SnapshotMeta, StorageError, StorageIOError,
    StoredMembership,
};

use dtenge_store::versioned::FormatError;

use crate::cold::{ColdKey, ColdStore};
use crate::engine::{ColdProbe, Decision, NotaryConfig, NotaryState, digests};
use crate::format::REPLICA_SNAPSHOT;
use crate::group::GroupConfig;
use crate::group::wire::{WireLogId, WireMembership, stored_membership_from_wire, stored_membership_to_wire};

/// What applying one entry gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// A blank or membership entry.
    Nothing,
    /// A batch: one decision per claim, in order.
    Batch(Vec<Decision>),
}

/// What a snapshot holds besides the cold store: the applied position and
/// membership, the last commit time and the engine's memory part.
#[derive(BorshSerialize, BorshDeserialize)]
struct StoredSnapshot {
    id: String,
    last_applied: Option<WireLogId>,
    membership_log_id: Option<WireLogId>,
    membership: WireMembership,
    last_time: Timestamp,
    engine: Vec<u8>,
}

/// A snapshot's data: the memory part, and where its cold part comes from.
#[derive(Debug, Clone)]
pub struct SnapshotData {
    /// `StoredSnapshot`'s bytes (or, while receiving, the bytes so far).
    pub(crate) memory: Arc<Vec<u8>>,
    /// The cold store to copy from when installed in the same process
    /// (`None`: its pieces were ingested as they arrived over the network).
    pub(crate) cold: Option<Arc<ColdStore>>,
}

impl SnapshotData {
    /// The memory part's bytes.
    pub fn memory(&self) -> &[u8] {
        &self.memory
    }
}

/// The engine and what the group's log has done to it.
pub struct MachineState {
    /// The notary engine.
    pub engine: NotaryState,
    /// The last entry applied.
    pub last_applied: Option<LogId<u64>>,
    /// The membership in force.
    pub membership: StoredMembership<u64, BasicNode>,
    /// The time of the last applied batch.
    pub last_time: Timestamp,
}

impl MachineState {
    /// A digest of everything the replicas must agree on: the applied
    /// position, the commit count and every unspent commitment (the memory
    /// part minus the history generations, whose boundaries depend on when
    /// each replica last restarted).
    pub fn digest(&self) -> Digest {
        let mut hasher = Hasher::new(b"dtenge/notary/replica-state/v1");
        hasher.update(&self.last_applied.map_or(0, |l| l.index).to_le_bytes());
        hasher.update(&self.engine.committed_count().to_le_bytes());
        hasher.update(&self.engine.unspent_digest().as_bytes()[..]);
        hasher.finish()
    }
}

/// The newest snapshot: what it covers and its memory part.
type Current = (SnapshotMeta<u64, BasicNode>, Arc<Vec<u8>>);

/// Shared by the state machine openraft drives and the replica's readers.
pub(crate) struct MachineShared {
    pub(crate) state: Mutex<MachineState>,
    pub(crate) cold: Arc<ColdStore>,
    config: NotaryConfig,
    /// Where snapshots are kept: a journal holding one marker record per
    /// snapshot and the snapshot itself (dtenge-store: atomic, durable).
    snapshots: Journal,
    current: Mutex<Option<Current>>,
    builds: AtomicU64,
}

impl MachineShared {
    pub(crate) fn state(&self) -> MutexGuard<'_, MachineState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn current(&self) -> MutexGuard<'_, Option<Current>> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The state machine openraft drives (clones share it).
#[derive(Clone)]
pub struct Machine {
    pub(crate) shared: Arc<MachineShared>,
}

fn snapshot_error(e: impl std::fmt::Display) -> StorageError<u64> {
    StorageIOError::write_snapshot(None, AnyError::error(e.to_string())).into()
}

/// A stored snapshot: tagged ([`REPLICA_SNAPSHOT`]) or, written before
/// tags (version 0), the same layout untagged.
fn decode_snapshot(bytes: &[u8]) -> Result<StoredSnapshot, FormatError> {
    let limit = usize::try_from(MAX_SNAPSHOT_MEMORY_BYTES).unwrap_or(usize::MAX);
    REPLICA_SNAPSHOT.decode(bytes, limit)
}

fn meta_of(stored: &StoredSnapshot) -> SnapshotMeta<u64, BasicNode> {
    SnapshotMeta {
        last_log_id: stored.last_applied.map(Into::into),
        last_membership: stored_membership_from_wire(stored.membership_log_id, stored.membership.clone()),
        snapshot_id: stored.id.clone(),
    }
}

impl Machine {
    /// Opens the state machine over `cold` from its snapshot journal (the
    /// last snapshot, if any; the log replays what came after).
    ///
    /// # Errors
    /// The snapshot does not decode.
    pub fn recover(
        snapshots: Journal,
        recovery: Recovery,
        cold: Arc<ColdStore>,
        config: NotaryConfig,
    ) -> Result<Machine, String> {
        cold.settle_filter(recovery.snapshot.as_ref().map(|(_, bytes)| bytes.as_slice())).map_err(|e| e.to_string())?;
        let (state, current) = match &recovery.snapshot {
            Some((_, bytes)) => {
                let stored = decode_snapshot(bytes).map_err(|e| e.to_string())?;
                let engine = NotaryState::from_snapshot(&stored.engine, Arc::clone(&cold), config)?;
                let meta = meta_of(&stored);
                let state = MachineState {
                    engine,
                    last_applied: meta.last_log_id,
                    membership: meta.last_membership.clone(),
                    last_time: stored.last_time,
                };
                (state, Some((meta, Arc::new(bytes.clone()))))
            }
            None => (
                MachineState {
                    engine: NotaryState::with_cold(Arc::clone(&cold), config),
                    last_applied: None,
                    membership: StoredMembership::default(),
                    last_time: Timestamp(0),
                },
                None,
            ),
        };
        Ok(Machine {
            shared: Arc::new(MachineShared {
                state: Mutex::new(state),
                cold,
                config,
                snapshots,
                current: Mutex::new(current),
                builds: AtomicU64::new(0),
            }),
        })
    }

    /// Stops: waits for the snapshot journal, makes the cold store durable.
    ///
    /// # Errors
    /// Either failed.
    pub fn close(&self) -> Result<(), String> {
        self.shared.snapshots.close().map_err(|e| e.to_string())?;
        self.shared.cold.close().map_err(|e| e.to_string())
    }

    /// Applies one committed entry: what openraft's `apply` does with each,
    /// and what an audit does replaying a replica's log offline.
    ///
    /// # Errors
    /// The cold store failed: the replica must stop.
    #[allow(clippy::result_large_err)] // openraft's error type, returned as openraft expects it
    pub fn apply_entry(&self, entry: Entry<GroupConfig>) -> Result<Applied, StorageError<u64>> {
        let log_id = entry.log_id;
        let applied = match entry.payload {
            EntryPayload::Blank => {
                self.shared.state().last_applied = Some(log_id);
                Applied::Nothing
            }
            EntryPayload::Membership(m) => {
                let mut state = self.shared.state();
                state.last_applied = Some(log_id);
                state.membership = StoredMembership::new(Some(log_id), m);
                Applied::Nothing
            }
            EntryPayload::Normal(entry) => {
                // Digests and the cold filter's answers outside the lock.
                let digests = digests(&entry.batch);
                let probe = ColdProbe::new(&self.shared.cold, &entry.batch);
                let mut state = self.shared.state();
                if let Some(e) = state.engine.cold().failure() {
                    return Err(StorageIOError::apply(log_id, AnyError::new(&e)).into());
                }
                let at = entry.at.max(state.last_time);
                let decisions = state
                    .engine
                    .decide_and_apply(&entry.batch, &digests, Some(&probe), at, entry.may_issue, &entry.refused)
                    .map_err(|e| StorageIOError::apply(log_id, AnyError::new(&e)))?;
                state.last_time = at;
                state.last_applied = Some(log_id);
                Applied::Batch(decisions)
            }
        };
        Ok(applied)
    }

    /// Journals `bytes` as the current snapshot (after the cold store is
    /// durable), on a blocking thread.
    async fn keep(&self, meta: SnapshotMeta<u64, BasicNode>, bytes: Arc<Vec<u8>>) -> Result<(), StorageError<u64>> {
        let shared = Arc::clone(&self.shared);
        let kept = Arc::clone(&bytes);
        let marker = meta.snapshot_id.clone().into_bytes();
        tokio::task::spawn_blocking(move || -> Result<(), String> {
            shared.cold.persist_for_snapshot(&kept).map_err(|e| e.to_string())?;
            let marker = shared.snapshots.append(marker).map_err(|e| e.to_string())?;
            shared.snapshots.snapshot(marker.seq, &kept).map_err(|e| e.to_string())
        })
        .await
        .map_err(snapshot_error)?
        .map_err(snapshot_error)?;
        *self.shared.current() = Some((meta, bytes));
        Ok(())
    }
}

impl RaftSnapshotBuilder<GroupConfig> for Machine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<GroupConfig>, StorageError<u64>> {
        let build = self.shared.builds.fetch_add(1, Ordering::Relaxed);
        let stored = {
            let state = self.shared.state();
            let (membership_log_id, membership) = stored_membership_to_wire(&state.membership);
            let last = state.last_applied;
            StoredSnapshot {
                id: format!("{}-{}-{build}", last.map_or(0, |l| l.leader_id.term), last.map_or(0, |l| l.index)),
                last_applied: last.map(Into::into),
                membership_log_id,
                membership,
                last_time: state.last_time,
                engine: state.engine.to_snapshot(),
            }
        };
        let meta = meta_of(&stored);
        let bytes = Arc::new(REPLICA_SNAPSHOT.encode(&stored));
        self.keep(meta.clone(), Arc::clone(&bytes)).await?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(SnapshotData { memory: bytes, cold: Some(Arc::clone(&self.shared.cold)) }),
        })
    }
}

impl RaftStateMachine<GroupConfig> for Machine {
    type SnapshotBuilder = Machine;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, StoredMembership<u64, BasicNode>), StorageError<u64>> {
        let state = self.shared.state();
        Ok((state.last_applied, state.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>, StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<GroupConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut out = Vec::new();
        for entry in entries {
            out.push(self.apply_entry(entry)?);
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<SnapshotData>, StorageError<u64>> {
        Ok(Box::new(SnapshotData { memory: Arc::new(Vec::new()), cold: None }))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, BasicNode>,
        snapshot: Box<SnapshotData>,
    ) -> Result<(), StorageError<u64>> {
        let SnapshotData { memory, cold } = *snapshot;
        let stored = decode_snapshot(&memory).map_err(snapshot_error)?;
        let ours = Arc::clone(&self.shared.cold);
        // In process (the sender's store at hand): copy its cold store now.
        if let Some(source) = cold.filter(|source| !Arc::ptr_eq(source, &ours)) {
            tokio::task::spawn_blocking(move || copy_cold(&source, &ours))
                .await
                .map_err(snapshot_error)?
                .map_err(snapshot_error)?;
        }
        let engine = NotaryState::from_snapshot(&stored.engine, Arc::clone(&self.shared.cold), self.shared.config)
            .map_err(snapshot_error)?;
        {
            let mut state = self.shared.state();
            *state = MachineState {
                engine,
                last_applied: meta.last_log_id,
                membership: meta.last_membership.clone(),
                last_time: stored.last_time,
            };
        }
        self.keep(meta.clone(), memory).await
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<GroupConfig>>, StorageError<u64>> {
        Ok(self.shared.current().as_ref().map(|(meta, bytes)| Snapshot {
            meta: meta.clone(),
            snapshot: Box::new(SnapshotData { memory: Arc::clone(bytes), cold: Some(Arc::clone(&self.shared.cold)) }),
        }))
    }
}

/// Largest memory part of a snapshot a replica accepts.
pub const MAX_SNAPSHOT_MEMORY_BYTES: u64 = 4 << 30;

/// Entries per piece when a cold store is copied or sent.
pub const COLD_PIECE_ENTRIES: usize = 16 * 1024;

/// Copies every entry of `from` into `to`.
fn copy_cold(from: &ColdStore, to: &ColdStore) -> Result<(), crate::cold::ColdError> {
    let mut after: Option<ColdKey> = None;
    loop {
        let chunk = from.scan(after, COLD_PIECE_ENTRIES)?;
        to.ingest(&chunk)?;
        match chunk.next {
            Some(next) => after = Some(next),
            None => return Ok(()),
        }
    }
}
