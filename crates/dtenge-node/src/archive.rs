//! The node's archive: settled history kept out of memory.
//!
//! ```text
//!  NodeState (memory, snapshotted)        Archive (ArchiveStore: fjall on disk, or memory)
//!  accounts, vault, in-flight outgoing ─► settled outgoing   o ‖ tx id
//!  per-DA counters (history, notices,     received           r ‖ tx id        (with its arrival number)
//!  today's spending), received count      history lines      h ‖ DA ‖ seq     (seq per DA, from the counters)
//!                                         notifications      n ‖ DA ‖ seq
//!                                         lineage            l ‖ token id     (read only: archives before
//!                                                                              lineage was read from o and r)
//! ```
//!
//! The journal stays the source of truth. [`crate::state::NodeState::apply`]
//! writes the archive as it applies records; every key is derived from the
//! record and from counters in the snapshotted state, so replaying a journal
//! tail into an archive that already holds part of it writes the same values
//! under the same keys. Before a snapshot lets the journal drop records, the
//! archive is persisted ([`Archive::persist`], fsync for fjall).
//!
//! A failing archive write or read does not stop `apply` (which cannot fail);
//! it is remembered ([`Archive::failure`]) and the node refuses further
//! records and snapshots until restarted (the journal rebuilds it).

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_store::versioned::kinds;
use dtenge_store::{Format, Tagged};

use crate::NodeError;

/// Ordered key-value storage behind the archive.
pub trait ArchiveStore: Send + Sync {
    /// Writes `value` under `key` (replacing what was there).
    fn put(&self, key: &[u8], value: &[u8]) -> Result<(), String>;
    /// Reads `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String>;
    /// Removes `key` (absent is fine).
    fn remove(&self, key: &[u8]) -> Result<(), String>;
    /// Visits the entries whose key starts with `prefix`, in key order or
    /// reversed (`newest_first`), until `visit` returns `false`.
    fn scan(
        &self,
        prefix: &[u8],
        newest_first: bool,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), String>;
    /// Makes everything written so far durable.
    fn persist(&self) -> Result<(), String>;
    /// Whether what is written survives the process (a snapshot may then drop journal records).
    fn durable(&self) -> bool;
    /// Persists and releases the store (its files and lock); later calls fail.
    fn close(&self) -> Result<(), String> {
        self.persist()
    }
}

/// The in-memory backend: the non-durable platform, tests, the simulation.
/// Its contents are rebuilt from the journal on every start, so a node over
/// it never snapshots.
#[derive(Debug, Default)]
pub struct MemoryStore {
    map: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl MemoryStore {
    fn map(&self) -> MutexGuard<'_, BTreeMap<Vec<u8>, Vec<u8>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ArchiveStore for MemoryStore {
    fn put(&self, key: &[u8], value: &[u8]) -> Result<(), String> {
        self.map().insert(key.to_vec(), value.to_vec());
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        Ok(self.map().get(key).cloned())
    }

    fn remove(&self, key: &[u8]) -> Result<(), String> {
        self.map().remove(key);
        Ok(())
    }

    fn scan(
        &self,
        prefix: &[u8],
        newest_first: bool,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), String> {
        let map = self.map();
        let range = map.range(prefix.to_vec()..).take_while(|(k, _)| k.starts_with(prefix));
        if newest_first {
            let all: Vec<(&Vec<u8>, &Vec<u8>)> = range.collect();
            for (k, v) in all.into_iter().rev() {
                if !visit(k, v) {
                    break;
                }
            }
        } else {
            for (k, v) in range {
                if !visit(k, v) {
                    break;
                }
            }
        }
        Ok(())
    }

    fn persist(&self) -> Result<(), String> {
        Ok(())
    }

    fn durable(&self) -> bool {
        false
    }
}

/// Bytes of writes a node's archive buffers before it hands them to fjall
/// as one sorted table: small, so a node's memory reaches its bound within
/// seconds of load.
const ARCHIVE_BUFFER_BYTES: usize = 4 * 1024 * 1024;
/// Buffers handed over and not yet written: past this a write waits for
/// the oldest to be written (backpressure) instead of memory growing.
const ARCHIVE_SEALED_MAX: usize = 2;
/// Block cache of a node's archive: it is read rarely (history pages, old
/// deliveries, audits) and the operating system caches the files anyway.
const ARCHIVE_CACHE_BYTES: u64 = 2 * 1024 * 1024;
/// Target size of an archive table (fjall's default is 64 MiB): a compaction
/// holds one table's index and filter in memory while it writes, so smaller
/// tables keep those peaks small.
const ARCHIVE_TABLE_BYTES: u64 = 8 * 1024 * 1024;

/// Writes not yet in fjall, by key; `None` is a removal.
type Entries = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// What the archive holds in memory on its way to fjall: the buffer being
/// filled, then buffers handed to the writer, oldest first.
#[derive(Default)]
struct Buffered {
    fresh: Entries,
    fresh_bytes: usize,
    sealed: VecDeque<Arc<Entries>>,
}

/// The on-disk backend: one fjall database per node, one keyspace.
///
/// Writes are buffered and reach fjall as whole sorted tables (fjall's
/// ingestion), written by a thread of the archive's own: no per-write
/// journal entry or memtable insert in fjall, which cost the payment path
/// more than the rest of the archive (docs/performance.md). Reads look in
/// the buffers first. What is buffered is lost in a crash, as fjall's
/// unpersisted journal was before: the node's journal replays it (see the
/// module docs); [`ArchiveStore::persist`] writes every buffer out.
pub struct FjallStore {
    shared: Arc<FjallShared>,
    /// Wakes the writer thread; dropped (ending the thread) on close.
    wake: Mutex<Option<std::sync::mpsc::SyncSender<()>>>,
}

struct FjallShared {
    open: std::sync::RwLock<Option<(fjall::Database, fjall::Keyspace)>>,
    buffered: Mutex<Buffered>,
    /// Held while a buffer is written, so buffers reach fjall one at a
    /// time, oldest first (a later one must win over an earlier one).
    writing: Mutex<()>,
    /// The first failure to write a buffer; every later call reports it.
    failure: Mutex<Option<String>>,
}

impl FjallStore {
    /// Opens (or creates) the archive in `dir`. Small caches: the archive is
    /// read rarely (history pages, old deliveries, audits), written often.
    pub fn open(dir: &Path) -> Result<FjallStore, String> {
        let db = fjall::Database::builder(dir)
            .cache_size(ARCHIVE_CACHE_BYTES)
            .manual_journal_persist(true)
            .worker_threads(1)
            .open()
            .map_err(|e| format!("archive {}: {e}", dir.display()))?;
        let data = db
            .keyspace("archive", || {
                // An archive written by an earlier release may hold writes
                // in fjall's journal; they stay there until fjall writes
                // them out with the next buffer. (The database-level flag
                // does not reach keyspaces, and a keyspace keeps the options
                // it was created with.)
                fjall::KeyspaceCreateOptions::default().manual_journal_persist(true).compaction_strategy(
                    std::sync::Arc::new(
                        fjall::compaction::Leveled::default().with_table_target_size(ARCHIVE_TABLE_BYTES),
                    ),
                )
            })
            .map_err(|e| format!("archive {}: {e}", dir.display()))?;
        let shared = Arc::new(FjallShared {
            open: std::sync::RwLock::new(Some((db, data))),
            buffered: Mutex::new(Buffered::default()),
            writing: Mutex::new(()),
            failure: Mutex::new(None),
        });
        let (wake, woken) = std::sync::mpsc::sync_channel::<()>(1);
        let writer = shared.clone();
        std::thread::Builder::new()
            .name("dtenge-archive".into())
            .spawn(move || {
                while woken.recv().is_ok() {
                    if let Err(e) = writer.write_sealed() {
                        tracing::error!(error = %e, "node archive could not write a buffer");
                    }
                }
            })
            .map_err(|e| format!("archive {}: writer thread: {e}", dir.display()))?;
        Ok(FjallStore { shared, wake: Mutex::new(Some(wake)) })
    }

    /// Buffers one write (`None`: a removal) and hands the buffer over once
    /// it is full.
    fn buffer(&self, key: &[u8], value: Option<&[u8]>) -> Result<(), String> {
        self.shared.usable()?;
        let full = {
            let mut buffered = self.shared.buffered();
            let bytes = key.len().saturating_add(value.map_or(0, <[u8]>::len));
            buffered.fresh_bytes = buffered.fresh_bytes.saturating_add(bytes);
            buffered.fresh.insert(key.to_vec(), value.map(<[u8]>::to_vec));
            buffered.fresh_bytes >= ARCHIVE_BUFFER_BYTES
        };
        if full { self.seal() } else { Ok(()) }
    }

    /// Hands the filled buffer to the writer thread, or writes the oldest
    /// buffers here when the writer is behind.
    fn seal(&self) -> Result<(), String> {
        if self.shared.seal_fresh() > ARCHIVE_SEALED_MAX {
            return self.shared.write_sealed();
        }
        if let Some(wake) = self.wake.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            // Full: a wake-up is already pending, and it writes every buffer.
            let _ = wake.try_send(());
        }
        Ok(())
    }

    /// Writes every buffer out here and makes it durable.
    fn flush(&self) -> Result<(), String> {
        self.shared.seal_fresh();
        self.shared.write_sealed()?;
        self.shared.with(|db, _| db.persist(fjall::PersistMode::SyncAll).map_err(|e| e.to_string()))
    }
}

impl Drop for FjallStore {
    /// Closes the store if it is open, writing the buffers out as fjall does
    /// with its journal when dropped, and releasing the database now (its
    /// lock, for a reopen). A crash loses what is buffered: the node's
    /// journal replays it.
    fn drop(&mut self) {
        let open = self.shared.open.read().unwrap_or_else(|p| p.into_inner()).is_some();
        if open && let Err(e) = self.close() {
            tracing::warn!(error = %e, "node archive: buffered writes not written out when closed; the journal replays them");
        }
    }
}

impl FjallShared {
    fn buffered(&self) -> MutexGuard<'_, Buffered> {
        self.buffered.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves the buffer being filled (if it holds anything) to the end of
    /// the line for the writer; returns how many buffers wait in it.
    fn seal_fresh(&self) -> usize {
        let mut buffered = self.buffered();
        if !buffered.fresh.is_empty() {
            let fresh = std::mem::take(&mut buffered.fresh);
            buffered.fresh_bytes = 0;
            buffered.sealed.push_back(Arc::new(fresh));
        }
        buffered.sealed.len()
    }

    /// Whether the store takes writes: open, and no buffer failed to be written.
    fn usable(&self) -> Result<(), String> {
        self.with(|_, _| Ok(()))
    }

    fn with<T>(&self, f: impl FnOnce(&fjall::Database, &fjall::Keyspace) -> Result<T, String>) -> Result<T, String> {
        if let Some(failure) = self.failure.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Err(failure);
        }
        let open = self.open.read().unwrap_or_else(|p| p.into_inner());
        match open.as_ref() {
            Some((db, data)) => f(db, data),
            None => Err("the archive is closed".into()),
        }
    }

    /// Writes the sealed buffers to fjall, oldest first, each as one sorted
    /// run of tables (durable when this returns); a buffer leaves memory
    /// only once written, so a read finds every entry in one place or the other.
    fn write_sealed(&self) -> Result<(), String> {
        let _one_at_a_time = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let Some(oldest) = self.buffered().sealed.front().cloned() else { return Ok(()) };
            let written = self.with(|_, data| {
                let mut ingestion = data.start_ingestion().map_err(|e| e.to_string())?;
                for (key, value) in oldest.iter() {
                    match value {
                        Some(value) => ingestion.write(key.as_slice(), value.as_slice()),
                        None => ingestion.write_tombstone(key.as_slice()),
                    }
                    .map_err(|e| e.to_string())?;
                }
                ingestion.finish().map_err(|e| e.to_string())
            });
            if let Err(e) = written {
                let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
                return Err(failure.get_or_insert_with(|| format!("writing a buffer: {e}")).clone());
            }
            self.buffered().sealed.pop_front();
        }
    }

    /// The buffered entries under `prefix`, the newest write of each key.
    fn buffered_under(&self, prefix: &[u8]) -> Entries {
        let buffered = self.buffered();
        let mut out = Entries::new();
        for entries in buffered.sealed.iter().map(|s| &**s).chain(std::iter::once(&buffered.fresh)) {
            for (k, v) in entries.range(prefix.to_vec()..).take_while(|(k, _)| k.starts_with(prefix)) {
                out.insert(k.clone(), v.clone());
            }
        }
        out
    }
}

/// Visits fjall's entries and the buffered ones merged in key order
/// (`ascending`, or descending), a buffered entry hiding fjall's under the
/// same key and a buffered removal hiding both.
fn merged(
    stored: impl Iterator<Item = fjall::Guard>,
    buffered: impl Iterator<Item = (Vec<u8>, Option<Vec<u8>>)>,
    ascending: bool,
    visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
) -> Result<(), String> {
    let first = |a: &[u8], b: &[u8]| if ascending { a < b } else { a > b };
    let mut buffered = buffered.peekable();
    for guard in stored {
        let (key, value) = guard.into_inner().map_err(|e| e.to_string())?;
        while let Some((k, v)) = buffered.next_if(|(k, _)| first(k, &key)) {
            if let Some(v) = v
                && !visit(&k, &v)
            {
                return Ok(());
            }
        }
        if let Some((k, v)) = buffered.next_if(|(k, _)| k.as_slice() == &*key) {
            if let Some(v) = v
                && !visit(&k, &v)
            {
                return Ok(());
            }
            continue;
        }
        if !visit(&key, &value) {
            return Ok(());
        }
    }
    for (k, v) in buffered {
        if let Some(v) = v
            && !visit(&k, &v)
        {
            return Ok(());
        }
    }
    Ok(())
}

impl ArchiveStore for FjallStore {
    fn put(&self, key: &[u8], value: &[u8]) -> Result<(), String> {
        self.buffer(key, Some(value))
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        {
            let buffered = self.shared.buffered();
            let newest_first = std::iter::once(&buffered.fresh).chain(buffered.sealed.iter().rev().map(|s| &**s));
            for entries in newest_first {
                if let Some(found) = entries.get(key) {
                    return Ok(found.clone());
                }
            }
        }
        self.shared.with(|_, data| data.get(key).map(|v| v.map(|v| v.to_vec())).map_err(|e| e.to_string()))
    }

    fn remove(&self, key: &[u8]) -> Result<(), String> {
        self.buffer(key, None)
    }

    fn scan(
        &self,
        prefix: &[u8],
        newest_first: bool,
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), String> {
        // Taken before fjall's view: an entry written out in between is in
        // both, and the buffered copy (the same) is the one visited.
        let buffered = self.shared.buffered_under(prefix);
        self.shared.with(|_, data| {
            if newest_first {
                merged(data.prefix(prefix).rev(), buffered.into_iter().rev(), false, visit)
            } else {
                merged(data.prefix(prefix), buffered.into_iter(), true, visit)
            }
        })
    }

    fn persist(&self) -> Result<(), String> {
        self.flush()
    }

    fn durable(&self) -> bool {
        true
    }

    fn close(&self) -> Result<(), String> {
        let result = self.flush();
        // Ends the writer thread; the database closes with the last reference.
        self.wake.lock().unwrap_or_else(|p| p.into_inner()).take();
        let mut open = self.shared.open.write().unwrap_or_else(|p| p.into_inner());
        *open = None;
        result
    }
}

/// What the archive holds, as the first byte of every key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Table {
    /// Settled outgoing transactions by id.
    Outgoing = b'o',
    /// Received transactions by id.
    Received = b'r',
    /// History lines by DA and number.
    History = b'h',
    /// Notifications by DA and number.
    Notifications = b'n',
    /// Parents of tokens by token id: written by earlier releases, read
    /// when neither `Outgoing` nor `Received` has the creating transaction.
    Lineage = b'l',
}

/// The archive's values. Format 0 (release 9e7a3dd) wrote them untagged;
/// format 1 tags them; the value types are the same in both. Format 2
/// stores a refusal's code with its words in a status
/// ([`crate::status::Reason`], which reads earlier formats' words unchanged),
/// format 3 a notification's kind with its particulars
/// ([`crate::notification::Message`], the same).
pub const VALUE: Format = Format { kind: kinds::NODE_ARCHIVE, version: 3, name: "node archive value" };

/// A stored value, whichever format wrote it.
fn decode_value<T: BorshDeserialize>(stored: &[u8]) -> Result<T, String> {
    let (version, body) = match VALUE.read(stored).map_err(|e| e.to_string())? {
        Tagged::Versioned { version, body } => (version, body),
        Tagged::Untagged(body) => (0, body),
    };
    borsh::from_slice(body).map_err(|e| VALUE.undecodable(version, e).to_string())
}

/// A key: the table's byte, then the borsh encoding of each part (borsh
/// strings carry their length, so a DA's prefix never matches another DA).
pub(crate) fn key(table: Table, parts: &[&dyn KeyPart]) -> Vec<u8> {
    let mut out = vec![table as u8];
    for p in parts {
        p.append(&mut out);
    }
    out
}

/// Something that can be part of a key.
pub(crate) trait KeyPart {
    fn append(&self, out: &mut Vec<u8>);
}

impl<T: BorshSerialize> KeyPart for T {
    fn append(&self, out: &mut Vec<u8>) {
        // Encoding into a Vec cannot fail.
        let _ = borsh::to_writer(&mut *out, self);
    }
}

/// A sequence number in keys: big-endian so keys sort by number.
pub(crate) struct Seq(pub u64);

impl KeyPart for Seq {
    fn append(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0.to_be_bytes());
    }
}

/// The node's archive: a store plus the first failure it reported.
#[derive(Clone)]
pub struct Archive {
    store: Arc<dyn ArchiveStore>,
    failure: Arc<Mutex<Option<String>>>,
}

impl Default for Archive {
    fn default() -> Self {
        Archive::memory()
    }
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive").field("durable", &self.store.durable()).field("failure", &self.failure()).finish()
    }
}

impl PartialEq for Archive {
    /// Two archives are equal when they hold the same entries (compared by
    /// scanning both; meant for tests over small states).
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.store, &other.store) || self.entries() == other.entries()
    }
}

impl Eq for Archive {}

impl Archive {
    /// A fresh in-memory archive.
    pub fn memory() -> Archive {
        Archive::over(Arc::new(MemoryStore::default()))
    }

    /// The fjall archive in `dir`.
    pub fn open(dir: &Path) -> Result<Archive, NodeError> {
        Ok(Archive::over(Arc::new(FjallStore::open(dir).map_err(NodeError::Storage)?)))
    }

    /// An archive over any store.
    pub fn over(store: Arc<dyn ArchiveStore>) -> Archive {
        Archive { store, failure: Arc::new(Mutex::new(None)) }
    }

    /// Whether the store survives a restart.
    pub fn durable(&self) -> bool {
        self.store.durable()
    }

    /// The first failure of the store, if any (the node then stops taking records).
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn fail(&self, what: &str, error: String) {
        tracing::error!(%what, %error, "node archive failed; restart the node (its journal rebuilds the archive)");
        let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        if failure.is_none() {
            *failure = Some(format!("archive {what}: {error}"));
        }
    }

    /// Persists and releases the store (a node's files and lock, at shutdown).
    pub fn close(&self) -> Result<(), NodeError> {
        self.store.close().map_err(|e| NodeError::Storage(format!("archive close: {e}")))
    }

    /// Makes everything written durable (before a snapshot drops journal records).
    pub fn persist(&self) -> Result<(), NodeError> {
        if let Some(f) = self.failure() {
            return Err(NodeError::Storage(f));
        }
        self.store.persist().map_err(|e| NodeError::Storage(format!("archive persist: {e}")))
    }

    pub(crate) fn put<T: BorshSerialize>(&self, key: &[u8], value: &T) {
        let mut bytes = Vec::new();
        VALUE.tag_into(&mut bytes);
        match BorshSerialize::serialize(value, &mut bytes) {
            Ok(()) => {
                if let Err(e) = self.store.put(key, &bytes) {
                    self.fail("write", e);
                }
            }
            Err(e) => self.fail("encode", e.to_string()),
        }
    }

    pub(crate) fn get<T: BorshDeserialize>(&self, key: &[u8]) -> Option<T> {
        match self.store.get(key) {
            Ok(Some(bytes)) => match decode_value(&bytes) {
                Ok(v) => Some(v),
                Err(e) => {
                    self.fail("decode", e.to_string());
                    None
                }
            },
            Ok(None) => None,
            Err(e) => {
                self.fail("read", e);
                None
            }
        }
    }

    pub(crate) fn remove(&self, key: &[u8]) {
        if let Err(e) = self.store.remove(key) {
            self.fail("remove", e);
        }
    }

    pub(crate) fn contains(&self, key: &[u8]) -> bool {
        match self.store.get(key) {
            Ok(v) => v.is_some(),
            Err(e) => {
                self.fail("read", e);
                false
            }
        }
    }

    /// Visits decoded values under `prefix` until `visit` returns `false`.
    pub(crate) fn scan<T: BorshDeserialize>(
        &self,
        prefix: &[u8],
        newest_first: bool,
        mut visit: impl FnMut(&[u8], T) -> bool,
    ) {
        let mut bad = None;
        let result = self.store.scan(prefix, newest_first, &mut |k, v| match decode_value::<T>(v) {
            Ok(value) => visit(k, value),
            Err(e) => {
                bad = Some(e.to_string());
                false
            }
        });
        if let Some(e) = bad {
            self.fail("decode", e);
        }
        if let Err(e) = result {
            self.fail("scan", e);
        }
    }

    /// Visits keys under `prefix` until `visit` returns `false`.
    pub(crate) fn scan_keys(&self, prefix: &[u8], mut visit: impl FnMut(&[u8]) -> bool) -> bool {
        match self.store.scan(prefix, false, &mut |k, _| visit(k)) {
            Ok(()) => true,
            Err(e) => {
                self.fail("scan", e);
                false
            }
        }
    }

    /// Every entry (tests and equality).
    fn entries(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        let _ = self.store.scan(&[], false, &mut |k, v| {
            out.push((k.to_vec(), v.to_vec()));
            true
        });
        out
    }

    /// Number of entries in each table: outgoing, received, history, notifications.
    pub fn counts(&self) -> ArchiveCounts {
        let count = |t: Table| {
            let mut n = 0u64;
            let _ = self.store.scan(&[t as u8], false, &mut |_, _| {
                n = n.saturating_add(1);
                true
            });
            n
        };
        ArchiveCounts {
            outgoing: count(Table::Outgoing),
            received: count(Table::Received),
            history: count(Table::History),
            notifications: count(Table::Notifications),
        }
    }
}

/// Entries per table (tests, the operator interface).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArchiveCounts {
    /// Settled outgoing transactions.
    pub outgoing: u64,
    /// Received transactions.
    pub received: u64,
    /// History lines.
    pub history: u64,
    /// Notifications.
    pub notifications: u64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn exercise(store: &dyn ArchiveStore) {
        store.put(&[b'h', 1, 0, 0, 0, 0, 0, 0, 0, 1], b"one").unwrap();
        store.put(&[b'h', 1, 0, 0, 0, 0, 0, 0, 0, 2], b"two").unwrap();
        store.put(&[b'h', 2, 0, 0, 0, 0, 0, 0, 0, 1], b"other").unwrap();
        store.put(&[b'h', 1, 0, 0, 0, 0, 0, 0, 0, 2], b"two again").unwrap();
        assert_eq!(store.get(&[b'h', 1, 0, 0, 0, 0, 0, 0, 0, 2]).unwrap().unwrap(), b"two again");
        assert_eq!(store.get(b"missing").unwrap(), None);
        let mut seen = Vec::new();
        store
            .scan(&[b'h', 1], true, &mut |_, v| {
                seen.push(v.to_vec());
                true
            })
            .unwrap();
        assert_eq!(seen, vec![b"two again".to_vec(), b"one".to_vec()], "newest first, only the prefix");
        let mut first = Vec::new();
        store
            .scan(b"h", false, &mut |_, v| {
                first.push(v.to_vec());
                false
            })
            .unwrap();
        assert_eq!(first, vec![b"one".to_vec()], "a visitor stops the scan");
        store.persist().unwrap();

        // Entries already written out and entries still buffered read as one.
        store.put(b"m1", b"a").unwrap();
        store.put(b"m3", b"c").unwrap();
        store.put(b"m5", b"e").unwrap();
        store.persist().unwrap();
        store.put(b"m2", b"b").unwrap();
        store.put(b"m3", b"c again").unwrap();
        store.remove(b"m5").unwrap();
        store.put(b"m6", b"f").unwrap();
        assert_eq!(store.get(b"m5").unwrap(), None, "a removal hides what was written out");
        assert_eq!(store.get(b"m3").unwrap().unwrap(), b"c again");
        let scan = |newest_first: bool| {
            let mut seen = Vec::new();
            store
                .scan(b"m", newest_first, &mut |k, v| {
                    seen.push((k.to_vec(), v.to_vec()));
                    true
                })
                .unwrap();
            seen
        };
        let ascending: Vec<(Vec<u8>, Vec<u8>)> = [("m1", "a"), ("m2", "b"), ("m3", "c again"), ("m6", "f")]
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect();
        let descending: Vec<_> = ascending.iter().rev().cloned().collect();
        assert_eq!(scan(false), ascending);
        assert_eq!(scan(true), descending);
        store.persist().unwrap();
        assert_eq!(scan(false), ascending, "the same once written out");
        assert_eq!(scan(true), descending);
    }

    #[test]
    fn both_backends_behave_alike() {
        exercise(&MemoryStore::default());
        let dir = tempfile::tempdir().unwrap();
        exercise(&FjallStore::open(dir.path()).unwrap());
    }

    #[test]
    fn fjall_writes_full_buffers_out_and_reads_every_entry_back() {
        let dir = tempfile::tempdir().unwrap();
        let value = |i: u32, round: u32| format!("{i}:{round}:{}", "x".repeat(4000)).into_bytes();
        let count = u32::try_from(ARCHIVE_BUFFER_BYTES * (ARCHIVE_SEALED_MAX + 2) / 4000).unwrap();
        let check = |store: &FjallStore| {
            for i in (0..count).step_by(97) {
                let round = u32::from(i % 3 == 0);
                assert_eq!(store.get(&i.to_be_bytes()).unwrap().unwrap(), value(i, round), "entry {i}");
            }
            let mut seen = 0u32;
            store
                .scan(&[], false, &mut |k, v| {
                    let i = u32::from_be_bytes(k.try_into().unwrap());
                    assert_eq!(i, seen, "in key order, each once");
                    assert_eq!(v, value(i, u32::from(i % 3 == 0)));
                    seen += 1;
                    true
                })
                .unwrap();
            assert_eq!(seen, count);
        };
        {
            let store = FjallStore::open(dir.path()).unwrap();
            for i in 0..count {
                store.put(&i.to_be_bytes(), &value(i, 0)).unwrap();
            }
            // Rewrites of entries already written out win over them.
            for i in (0..count).step_by(3) {
                store.put(&i.to_be_bytes(), &value(i, 1)).unwrap();
            }
            let buffered = store.shared.buffered();
            assert!(buffered.sealed.len() <= ARCHIVE_SEALED_MAX + 1, "memory stays bounded");
            assert!(buffered.fresh_bytes < ARCHIVE_BUFFER_BYTES);
            drop(buffered);
            check(&store);
            store.close().unwrap();
        }
        check(&FjallStore::open(dir.path()).unwrap());
    }

    #[test]
    fn fjall_keeps_what_was_persisted_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = FjallStore::open(dir.path()).unwrap();
            store.put(b"o1", b"settled").unwrap();
            store.persist().unwrap();
        }
        let store = FjallStore::open(dir.path()).unwrap();
        assert_eq!(store.get(b"o1").unwrap().unwrap(), b"settled");
    }
}
