//! The in-memory backend, for simulation and tests: the same journal (same
//! writer thread, batching and `Pending` semantics) over a simulated disk
//! that can lose power.
//!
//! ```text
//!   writer thread ──append──► unsynced ──sync──► synced ──crash──► survives
//!                                │                                   │
//!                                └──────────── crash ──► lost        ▼
//!                                                      crash_and_reopen() → (Journal, Recovery)
//! ```
//!
//! Invariants:
//! - a record is in `synced` before its `Pending` completes, so a crash
//!   loses only records whose `Pending` had not completed;
//! - each opened journal writes under an epoch; a crash starts a new epoch,
//!   so the old journal's writer can never touch the disk again;
//! - snapshots are durable and atomic when `snapshot` returns (the file
//!   backend's rename), and drop the synced records they cover.

use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};

use crate::error::StoreError;
use crate::journal::{
    BATCH_RECORDS_DEFAULT, Journal, Limits, LogWriter, QUEUED_RECORDS_DEFAULT, Recovery, Shared, SnapshotWriter,
};

/// The path the in-memory journal names in its errors.
const MEMORY_PATH: &str = "<in-memory journal>";

#[derive(Default)]
struct Disk {
    epoch: u64,
    synced: Vec<(u64, Vec<u8>)>,
    unsynced: Vec<(u64, Vec<u8>)>,
    snapshot: Option<(u64, Vec<u8>)>,
    /// While set, syncs wait (the simulated disk is slow).
    sync_paused: bool,
    /// Fail the next sync with an I/O error.
    fail_next_sync: bool,
}

#[derive(Default)]
struct MemDisk {
    disk: Mutex<Disk>,
    changed: Condvar,
}

impl MemDisk {
    fn lock(&self) -> MutexGuard<'_, Disk> {
        self.disk.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Controls the simulated disk under an in-memory journal: power loss, slow
/// and failing syncs.
pub struct MemJournalHandle {
    disk: Arc<MemDisk>,
    /// The journal currently open on the disk, to fail it on a crash.
    current: Mutex<Weak<Shared>>,
}

impl Journal {
    /// An in-memory journal with default limits, and the handle that
    /// controls its simulated disk.
    ///
    /// # Panics
    /// If the writer thread cannot be spawned (the process is out of threads).
    pub fn in_memory() -> (Journal, MemJournalHandle) {
        let handle = MemJournalHandle { disk: Arc::new(MemDisk::default()), current: Mutex::new(Weak::new()) };
        let (journal, _) = handle.open();
        (journal, handle)
    }
}

impl MemJournalHandle {
    /// Simulates a power loss: records written but not synced vanish, the
    /// old journal fails every pending and later operation with
    /// [`StoreError::Closed`], and a fresh journal is opened over what
    /// survived. Also clears [`MemJournalHandle::pause_syncs`] (a reboot).
    ///
    /// # Panics
    /// If the new journal's writer thread cannot be spawned.
    pub fn crash_and_reopen(&self) -> (Journal, Recovery) {
        {
            let mut disk = self.disk.lock();
            disk.epoch += 1;
            disk.unsynced.clear();
            disk.sync_paused = false;
            disk.fail_next_sync = false;
        }
        self.disk.changed.notify_all();
        let old = self.current.lock().unwrap_or_else(PoisonError::into_inner).upgrade();
        if let Some(old) = old {
            old.poison(StoreError::Closed);
        }
        self.open()
    }

    /// While paused, batches are written but their sync does not finish, so
    /// their `Pending`s stay incomplete (a crash then loses them).
    pub fn pause_syncs(&self, paused: bool) {
        self.disk.lock().sync_paused = paused;
        self.disk.changed.notify_all();
    }

    /// Makes the next sync fail with an I/O error, as a dying disk would;
    /// the journal is then poisoned.
    pub fn fail_next_sync(&self) {
        self.disk.lock().fail_next_sync = true;
    }

    /// Records written but not yet synced.
    pub fn unsynced_records(&self) -> usize {
        self.disk.lock().unsynced.len()
    }

    fn open(&self) -> (Journal, Recovery) {
        let (epoch, recovery) = {
            let disk = self.disk.lock();
            let recovery =
                Recovery { snapshot: disk.snapshot.clone(), records: disk.synced.clone(), truncated_tail_bytes: 0 };
            (disk.epoch, recovery)
        };
        let snapshot_seq = recovery.snapshot.as_ref().map_or(0, |(seq, _)| *seq);
        let log = MemLog { disk: Arc::clone(&self.disk), epoch };
        let snapshots = MemSnapshots { disk: Arc::clone(&self.disk), epoch };
        let limits = Limits { max_batch_records: BATCH_RECORDS_DEFAULT, max_queued_records: QUEUED_RECORDS_DEFAULT };
        let journal = Journal::start(Box::new(log), Box::new(snapshots), recovery.last_seq(), snapshot_seq, limits)
            // Spawning a thread fails only when the process is out of resources;
            // a simulation cannot continue then.
            .unwrap_or_else(|error| panic!("in-memory journal: {error}"));
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Arc::downgrade(&journal.shared());
        (journal, recovery)
    }
}

struct MemLog {
    disk: Arc<MemDisk>,
    epoch: u64,
}

fn check_epoch(disk: &Disk, epoch: u64) -> Result<(), StoreError> {
    if disk.epoch == epoch { Ok(()) } else { Err(StoreError::Closed) }
}

impl LogWriter for MemLog {
    fn append(&mut self, seq: u64, payload: &[u8]) -> Result<u64, StoreError> {
        let mut disk = self.disk.lock();
        check_epoch(&disk, self.epoch)?;
        disk.unsynced.push((seq, payload.to_vec()));
        Ok((crate::format::FRAME_HEADER_BYTES + payload.len()) as u64)
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        let mut disk = self.disk.lock();
        while disk.sync_paused && disk.epoch == self.epoch {
            disk = self.disk.changed.wait(disk).unwrap_or_else(PoisonError::into_inner);
        }
        check_epoch(&disk, self.epoch)?;
        if disk.fail_next_sync {
            disk.fail_next_sync = false;
            return Err(StoreError::io(MEMORY_PATH, io::Error::other("injected sync failure")));
        }
        let written = std::mem::take(&mut disk.unsynced);
        disk.synced.extend(written);
        Ok(())
    }

    fn prune(&mut self, covered_seq: u64) -> Result<(), StoreError> {
        let mut disk = self.disk.lock();
        check_epoch(&disk, self.epoch)?;
        disk.synced.retain(|(seq, _)| *seq > covered_seq);
        Ok(())
    }
}

struct MemSnapshots {
    disk: Arc<MemDisk>,
    epoch: u64,
}

impl SnapshotWriter for MemSnapshots {
    fn write(&mut self, seq: u64, state: &[u8]) -> Result<(), StoreError> {
        let mut disk = self.disk.lock();
        check_epoch(&disk, self.epoch)?;
        disk.snapshot = Some((seq, state.to_vec()));
        Ok(())
    }
}
