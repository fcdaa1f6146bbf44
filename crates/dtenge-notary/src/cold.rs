//! The notary's cold store: history that left memory.
//!
//! ```text
//!   engine (hot)                        cold store
//!   ┌──────────────┐  full generation  ┌──────────────────────────────────┐
//!   │ current generation  │ ─── frozen ─────► │ writer: backend.write(generation),      │
//!   │ frozen gens  │ ◄── written ───── │   filter.insert(keys), flag set  │
//!   └──────────────┘                   │ backend: spent c → tx,           │
//!                                      │          tx → receipt body       │
//!                                      │ filter: fixed-size bloom (RAM)   │
//!                                      └──────────────────────────────────┘
//! ```
//!
//! Two backends behind [`ColdBackend`]: [`FjallCold`] (on disk, fjall 3.1,
//! written by sorted ingestion) and [`MemoryCold`] (for tests, the
//! deterministic simulation and non-durable platforms).
//!
//! Negative lookups — the duplicate-output check runs for every output of
//! every claim — are answered by an in-memory blocked bloom filter of fixed
//! size over every key the backend holds: a miss never touches the disk; a
//! false positive only costs one backend read. The filter is saved beside a
//! durable backend with every snapshot and read back when the store opens
//! (see [`ColdStore`] for when it is believed), or rebuilt from the
//! backend's keys.
//!
//! Durability: the notary's journal stays the source of truth. The backend
//! is written as generations fill up, without fsync; [`ColdStore::persist`]
//! makes everything written so far durable and is called before a snapshot
//! lets the journal drop records. After a crash, replaying the journal tail
//! writes the same entries again (same values: writes are idempotent).
//! That holds only for commits the journal kept: a single notary applies a
//! batch before its record is durable, so once its journal is named
//! ([`ColdStore::write_after_durable`]) a generation is written only after
//! every record appended before it froze is durable. Otherwise a crash could
//! leave the cold store a commit the journal lost; another transaction then
//! takes its sequence number and the lost one's receipt reads as committed,
//! although its inputs were never spent and its outputs never created.
//!
//! Invariant: an entry is dropped from memory only after the backend holds it
//! and the filter has its key.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_crypto::Digest;
use dtenge_types::{Commitment, Timestamp, TxId};

use dtenge_store::versioned::{TAG_BYTES, Tagged};
use dtenge_store::{Journal, Pending};

use crate::format::COLD_FILTER;
use crate::messages::ReceiptBody;

/// Why the cold store failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ColdError {
    /// The backend's storage failed.
    #[error("notary cold store: {0}")]
    Io(String),
    /// Stored bytes do not decode.
    #[error("notary cold store holds a damaged entry: {0}")]
    Corrupt(String),
}

/// Where history lives once it leaves memory: spent commitment → spender,
/// transaction id → receipt body. Writes are idempotent (the same key always
/// gets the same value).
pub trait ColdBackend: Send + Sync {
    /// The transaction that spent `c`, if the backend holds it.
    fn spender(&self, c: &Commitment) -> Result<Option<TxId>, ColdError>;
    /// The receipt body of `tx`, if the backend holds it.
    fn receipt(&self, tx: &TxId) -> Result<Option<ReceiptBody>, ColdError>;
    /// Stores the entries (each slice sorted by key, no duplicates).
    fn write(&self, spent: &[(Commitment, TxId)], receipts: &[ReceiptBody]) -> Result<(), ColdError>;
    /// Makes everything written so far durable.
    fn persist(&self) -> Result<(), ColdError>;
    /// Whether the entries outlive the process (and so may let the journal
    /// drop the records that made them).
    fn durable(&self) -> bool;
    /// Calls `f` with every key held (commitments and transaction ids).
    fn for_each_key(&self, f: &mut dyn FnMut(&[u8; 32])) -> Result<(), ColdError>;
    /// Up to `limit` entries in key order after `after` (from the first key
    /// if `None`): one piece of a snapshot sent to another replica.
    fn scan(&self, after: Option<ColdKey>, limit: usize) -> Result<ColdChunk, ColdError>;
    /// The filter last saved with [`ColdBackend::save_filter`], if any. A
    /// backend that does not outlive its process saves none.
    fn saved_filter(&self) -> Result<Option<Vec<u8>>, ColdError> {
        Ok(None)
    }
    /// Keeps `saved` (a [`Filter::encode`]) beside the entries, replacing
    /// the one before atomically and durably.
    fn save_filter(&self, _saved: &[u8]) -> Result<(), ColdError> {
        Ok(())
    }
}

/// Where a scan of the cold store stands: spent commitments are scanned
/// first, then receipt bodies, each in key order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum ColdKey {
    /// After this spent commitment.
    Spent(Commitment),
    /// After this transaction's receipt body (every spent commitment done).
    Receipt(TxId),
}

/// A piece of the cold store in key order, as a replica installing a
/// snapshot receives it; `next` is where the following piece starts (`None`:
/// this was the last).
#[derive(Debug, Clone, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ColdChunk {
    /// Spent commitments and their spenders.
    pub spent: Vec<(Commitment, TxId)>,
    /// Receipt bodies.
    pub receipts: Vec<ReceiptBody>,
    /// Where the next piece starts.
    pub next: Option<ColdKey>,
}

impl ColdChunk {
    fn len(&self) -> usize {
        self.spent.len() + self.receipts.len()
    }
}

/// A backend in memory: for tests, the simulation and non-durable platforms.
/// Clones share the same maps, so a "restarted" notary can reopen it.
#[derive(Clone, Default)]
pub struct MemoryCold {
    maps: Arc<Mutex<MemoryMaps>>,
}

#[derive(Default)]
struct MemoryMaps {
    spent: std::collections::BTreeMap<Commitment, TxId>,
    receipts: std::collections::BTreeMap<TxId, ReceiptBody>,
    writes: u64,
}

impl MemoryCold {
    /// An empty in-memory backend.
    pub fn new() -> MemoryCold {
        MemoryCold::default()
    }

    fn maps(&self) -> MutexGuard<'_, MemoryMaps> {
        self.maps.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Numbers of spent commitments and receipt bodies held.
    pub fn len(&self) -> (usize, usize) {
        let maps = self.maps();
        (maps.spent.len(), maps.receipts.len())
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0)
    }
}

impl ColdBackend for MemoryCold {
    fn spender(&self, c: &Commitment) -> Result<Option<TxId>, ColdError> {
        Ok(self.maps().spent.get(c).copied())
    }

    fn receipt(&self, tx: &TxId) -> Result<Option<ReceiptBody>, ColdError> {
        Ok(self.maps().receipts.get(tx).cloned())
    }

    fn write(&self, spent: &[(Commitment, TxId)], receipts: &[ReceiptBody]) -> Result<(), ColdError> {
        let mut maps = self.maps();
        for (c, tx) in spent {
            if let Some(previous) = maps.spent.insert(*c, *tx) {
                assert_eq!(previous, *tx, "cold store: {c:?} spent by two transactions");
            }
        }
        for body in receipts {
            if let Some(previous) = maps.receipts.insert(body.tx, body.clone()) {
                assert_eq!(previous, *body, "cold store: two receipt bodies for {:?}", body.tx);
            }
        }
        maps.writes += 1;
        Ok(())
    }

    fn persist(&self) -> Result<(), ColdError> {
        Ok(())
    }

    fn durable(&self) -> bool {
        false
    }

    fn for_each_key(&self, f: &mut dyn FnMut(&[u8; 32])) -> Result<(), ColdError> {
        let maps = self.maps();
        for c in maps.spent.keys() {
            f(c.0.as_bytes());
        }
        for tx in maps.receipts.keys() {
            f(tx.0.as_bytes());
        }
        Ok(())
    }

    fn scan(&self, after: Option<ColdKey>, limit: usize) -> Result<ColdChunk, ColdError> {
        use std::ops::Bound::{Excluded, Unbounded};
        let maps = self.maps();
        let mut chunk = ColdChunk::default();
        let receipts_from = match after {
            None | Some(ColdKey::Spent(_)) => {
                let from = match after {
                    Some(ColdKey::Spent(c)) => Excluded(c),
                    _ => Unbounded,
                };
                chunk.spent.extend(maps.spent.range((from, Unbounded)).take(limit).map(|(c, tx)| (*c, *tx)));
                if chunk.len() == limit {
                    chunk.next = chunk.spent.last().map(|(c, _)| ColdKey::Spent(*c));
                    return Ok(chunk);
                }
                Unbounded
            }
            Some(ColdKey::Receipt(tx)) => Excluded(tx),
        };
        let room = limit - chunk.len();
        chunk.receipts.extend(maps.receipts.range((receipts_from, Unbounded)).take(room).map(|(_, b)| b.clone()));
        if chunk.len() == limit {
            chunk.next = chunk.receipts.last().map(|b| ColdKey::Receipt(b.tx));
        }
        Ok(chunk)
    }
}

/// The compact stored form of a receipt body (its key is the tx id).
#[derive(BorshSerialize, BorshDeserialize)]
struct StoredReceipt {
    seq: u64,
    committed_at: u64,
    inputs_digest: Digest,
    outputs_digest: Digest,
}

/// Tables that pile up in fjall's level 0 before they are compacted (fjall's default: 4).
const COLD_L0_TABLES: u8 = 16;
/// Size ratio between fjall's levels (fjall's default: 10).
const COLD_LEVEL_RATIO: f32 = 16.0;
/// Target size of a table (fjall's default: 64 MiB). A compaction holds the
/// index and filter of the table it writes in memory: smaller tables keep
/// those peaks small. The notary's throughput did not change with it.
const COLD_TABLE_BYTES: u64 = 8 * 1024 * 1024;
/// Block cache: reads reach the backend only when the filter says "maybe"
/// (a real conflict, a retry, or a rare false positive).
const COLD_CACHE_BYTES: u64 = 8 * 1024 * 1024;

/// The file in a [`FjallCold`]'s directory that holds the saved filter.
pub const FILTER_FILE: &str = "notary-filter";

/// A backend on disk: a fjall 3.1 database with two keyspaces, `spent`
/// (commitment → spender tx id) and `receipts` (tx id → receipt body).
/// Entries arrive in large sorted runs and are ingested straight into tables
/// (no fjall journal: the notary's journal is the log).
pub struct FjallCold {
    db: fjall::Database,
    spent: fjall::Keyspace,
    receipts: fjall::Keyspace,
    dir: PathBuf,
}

fn io(e: impl std::fmt::Display) -> ColdError {
    ColdError::Io(e.to_string())
}

impl FjallCold {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<FjallCold, ColdError> {
        let db = fjall::Database::builder(dir)
            .manual_journal_persist(true)
            .worker_threads(1)
            .cache_size(COLD_CACHE_BYTES)
            .open()
            .map_err(|e| ColdError::Io(format!("cannot open {}: {e}", dir.display())))?;
        // Point reads reach the backend only after the notary's own filter
        // said "maybe", so they usually hit: fjall's last-level filters are
        // not needed.
        // Keys are hashes, so every ingested table overlaps every other and
        // each compaction rewrites a whole level: let tables pile up in
        // level 0 longer and make levels wider (less rewriting; reads stay
        // rare and cheap behind the filters).
        let options = || {
            fjall::KeyspaceCreateOptions::default().expect_point_read_hits(true).compaction_strategy(
                std::sync::Arc::new(
                    fjall::compaction::Leveled::default()
                        .with_l0_threshold(COLD_L0_TABLES)
                        .with_level_ratio_policy(vec![COLD_LEVEL_RATIO])
                        .with_table_target_size(COLD_TABLE_BYTES),
                ),
            )
        };
        let spent = db.keyspace("spent", options).map_err(io)?;
        let receipts = db.keyspace("receipts", options).map_err(io)?;
        Ok(FjallCold { db, spent, receipts, dir: dir.to_path_buf() })
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn key32(bytes: &[u8], what: &str) -> Result<[u8; 32], ColdError> {
        <[u8; 32]>::try_from(bytes).map_err(|_| ColdError::Corrupt(format!("{what} of {} bytes", bytes.len())))
    }
}

impl ColdBackend for FjallCold {
    fn spender(&self, c: &Commitment) -> Result<Option<TxId>, ColdError> {
        match self.spent.get(c.0.as_bytes()).map_err(io)? {
            None => Ok(None),
            Some(v) => Ok(Some(TxId(Digest(Self::key32(&v, "spender")?)))),
        }
    }

    fn receipt(&self, tx: &TxId) -> Result<Option<ReceiptBody>, ColdError> {
        match self.receipts.get(tx.0.as_bytes()).map_err(io)? {
            None => Ok(None),
            Some(v) => {
                let stored: StoredReceipt =
                    borsh::from_slice(&v).map_err(|e| ColdError::Corrupt(format!("receipt of {tx}: {e}")))?;
                Ok(Some(ReceiptBody {
                    tx: *tx,
                    seq: stored.seq,
                    committed_at: Timestamp(stored.committed_at),
                    inputs_digest: stored.inputs_digest,
                    outputs_digest: stored.outputs_digest,
                }))
            }
        }
    }

    fn write(&self, spent: &[(Commitment, TxId)], receipts: &[ReceiptBody]) -> Result<(), ColdError> {
        if !spent.is_empty() {
            let mut ingestion = self.spent.start_ingestion().map_err(io)?;
            for (c, tx) in spent {
                ingestion.write(c.0.as_bytes().as_slice(), tx.0.as_bytes().as_slice()).map_err(io)?;
            }
            ingestion.finish().map_err(io)?;
        }
        if !receipts.is_empty() {
            let mut ingestion = self.receipts.start_ingestion().map_err(io)?;
            for body in receipts {
                let stored = StoredReceipt {
                    seq: body.seq,
                    committed_at: body.committed_at.0,
                    inputs_digest: body.inputs_digest,
                    outputs_digest: body.outputs_digest,
                };
                let value = borsh::to_vec(&stored).map_err(io)?;
                ingestion.write(body.tx.0.as_bytes().as_slice(), value).map_err(io)?;
            }
            ingestion.finish().map_err(io)?;
        }
        Ok(())
    }

    fn persist(&self) -> Result<(), ColdError> {
        self.db.persist(fjall::PersistMode::SyncAll).map_err(io)
    }

    fn durable(&self) -> bool {
        true
    }

    fn scan(&self, after: Option<ColdKey>, limit: usize) -> Result<ColdChunk, ColdError> {
        use std::ops::Bound::{Excluded, Unbounded};
        let mut chunk = ColdChunk::default();
        let receipts_from: std::ops::Bound<[u8; 32]> = match after {
            None | Some(ColdKey::Spent(_)) => {
                let from = match after {
                    Some(ColdKey::Spent(c)) => Excluded(*c.0.as_bytes()),
                    _ => Unbounded,
                };
                for guard in self.spent.range::<[u8; 32], _>((from, Unbounded)).take(limit) {
                    let (key, value) = guard.into_inner().map_err(io)?;
                    let c = Commitment(Digest(Self::key32(&key, "commitment")?));
                    chunk.spent.push((c, TxId(Digest(Self::key32(&value, "spender")?))));
                }
                if chunk.len() == limit {
                    chunk.next = chunk.spent.last().map(|(c, _)| ColdKey::Spent(*c));
                    return Ok(chunk);
                }
                Unbounded
            }
            Some(ColdKey::Receipt(tx)) => Excluded(*tx.0.as_bytes()),
        };
        let room = limit - chunk.len();
        for guard in self.receipts.range::<[u8; 32], _>((receipts_from, Unbounded)).take(room) {
            let (key, value) = guard.into_inner().map_err(io)?;
            let tx = TxId(Digest(Self::key32(&key, "transaction id")?));
            let stored: StoredReceipt =
                borsh::from_slice(&value).map_err(|e| ColdError::Corrupt(format!("receipt of {tx}: {e}")))?;
            chunk.receipts.push(ReceiptBody {
                tx,
                seq: stored.seq,
                committed_at: Timestamp(stored.committed_at),
                inputs_digest: stored.inputs_digest,
                outputs_digest: stored.outputs_digest,
            });
        }
        if chunk.len() == limit {
            chunk.next = chunk.receipts.last().map(|b| ColdKey::Receipt(b.tx));
        }
        Ok(chunk)
    }

    fn saved_filter(&self) -> Result<Option<Vec<u8>>, ColdError> {
        let path = self.dir.join(FILTER_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ColdError::Io(format!("cannot read {}: {e}", path.display()))),
        }
    }

    fn save_filter(&self, saved: &[u8]) -> Result<(), ColdError> {
        dtenge_store::replace_file(&self.dir.join(FILTER_FILE), saved).map_err(io)
    }

    fn for_each_key(&self, f: &mut dyn FnMut(&[u8; 32])) -> Result<(), ColdError> {
        for keyspace in [&self.spent, &self.receipts] {
            for guard in keyspace.iter() {
                let key = guard.key().map_err(io)?;
                f(&Self::key32(&key, "key")?);
            }
        }
        Ok(())
    }
}

/// A blocked bloom filter of fixed size: each key sets [`PROBES`] bits in one
/// 512-bit block (one cache line). Readers never lock: the writer inserts
/// while the engine reads. Writers take turns (one lock per batch of keys),
/// so a word's update is a plain load and store rather than a locked
/// read-modify-write per bit.
pub struct Filter {
    words: Vec<AtomicU64>,
    blocks: u64,
    seeds: (u64, u64),
    inserted: AtomicU64,
    writer: Mutex<()>,
    /// False while a saved filter waits to be confirmed for the snapshot the
    /// owner recovers ([`ColdStore::settle_filter`]): every answer is then
    /// "maybe", so nothing is believed absent on its word.
    ready: AtomicBool,
}

const PROBES: u32 = 6;
const WORDS_PER_BLOCK: usize = 8;

impl Filter {
    /// A filter of about `bytes` bytes (at least one block).
    pub fn new(bytes: usize) -> Filter {
        let blocks = Filter::blocks_for(bytes);
        let words = (0..blocks * WORDS_PER_BLOCK).map(|_| AtomicU64::new(0)).collect();
        let seeds = (rand_seed(), rand_seed());
        Filter {
            words,
            blocks: blocks as u64,
            seeds,
            inserted: AtomicU64::new(0),
            writer: Mutex::new(()),
            ready: AtomicBool::new(true),
        }
    }

    fn positions(&self, key: &[u8; 32]) -> (usize, u64) {
        use std::hash::BuildHasher;
        let h1 = foldhash::fast::FixedState::with_seed(self.seeds.0).hash_one(key);
        let h2 = foldhash::fast::FixedState::with_seed(self.seeds.1).hash_one(key);
        let block = ((u128::from(h1) * u128::from(self.blocks)) >> 64) as usize;
        (block * WORDS_PER_BLOCK, h2)
    }

    /// Adds a key.
    pub fn insert(&self, key: &[u8; 32]) {
        self.insert_all(std::iter::once(key));
    }

    /// Adds keys. A reader sees each key once this returns (the engine
    /// learns that through the generation's release-store of `written`).
    pub fn insert_all<'k>(&self, keys: impl IntoIterator<Item = &'k [u8; 32]>) {
        let _turn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        self.insert_in_turn(keys);
    }

    /// As `insert_all`, the writer's turn already taken.
    fn insert_in_turn<'k>(&self, keys: impl IntoIterator<Item = &'k [u8; 32]>) {
        let mut count = 0u64;
        for key in keys {
            let (base, mut h) = self.positions(key);
            let mut masks = [0u64; WORDS_PER_BLOCK];
            for _ in 0..PROBES {
                let bit = (h & 511) as usize;
                h >>= 9;
                masks[bit / 64] |= 1 << (bit % 64);
            }
            for (i, mask) in masks.into_iter().enumerate() {
                if mask != 0
                    && let Some(word) = self.words.get(base + i)
                {
                    // Only this writer stores: load + store loses no bit.
                    word.store(word.load(Ordering::Relaxed) | mask, Ordering::Relaxed);
                }
            }
            count += 1;
        }
        self.inserted.fetch_add(count, Ordering::Relaxed);
    }

    /// False: the key was never inserted. True: it may have been.
    pub fn may_contain(&self, key: &[u8; 32]) -> bool {
        if !self.ready.load(Ordering::Acquire) {
            return true;
        }
        let (base, mut h) = self.positions(key);
        for _ in 0..PROBES {
            let bit = (h & 511) as usize;
            h >>= 9;
            let set =
                self.words.get(base + bit / 64).is_some_and(|w| w.load(Ordering::Relaxed) & (1 << (bit % 64)) != 0);
            if !set {
                return false;
            }
        }
        true
    }

    /// Keys inserted (with repeats).
    pub fn inserted(&self) -> u64 {
        self.inserted.load(Ordering::Relaxed)
    }

    /// Its size in bytes.
    pub fn bytes(&self) -> usize {
        self.words.len() * 8
    }

    /// The filter as saved: [`COLD_FILTER`]'s tag; its size, seeds and
    /// count; the snapshots it is valid for (`valid_for`, digests of their
    /// bytes); its words; a digest of everything before it. Taken between
    /// two writers' turns, so every batch of keys inserted before the call
    /// is in it whole.
    pub fn encode(&self, valid_for: &[Digest]) -> Vec<u8> {
        let _turn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::with_capacity(self.bytes().saturating_add(FILTER_HEADER_BYTES + 32 * (valid_for.len() + 1)));
        COLD_FILTER.tag_into(&mut out);
        for n in
            [self.blocks, self.seeds.0, self.seeds.1, self.inserted.load(Ordering::Relaxed), valid_for.len() as u64]
        {
            out.extend_from_slice(&n.to_le_bytes());
        }
        for snapshot in valid_for {
            out.extend_from_slice(snapshot.as_bytes());
        }
        for word in &self.words {
            out.extend_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
        }
        let digest = dtenge_crypto::hash(FILTER_DIGEST_DOMAIN, &[&out]);
        out.extend_from_slice(digest.as_bytes());
        out
    }

    /// A saved filter ([`Filter::encode`]) of the size `bytes` makes
    /// ([`Filter::new`]), not ready until confirmed, and the snapshots it is
    /// valid for; an error naming what is wrong otherwise (another size, a
    /// damaged file, a newer format), never a misread filter.
    pub fn decode(saved: &[u8], bytes: usize) -> Result<(Filter, Vec<Digest>), String> {
        let body = match COLD_FILTER.read(saved).map_err(|e| e.to_string())? {
            Tagged::Versioned { body, .. } => body,
            Tagged::Untagged(_) => return Err("not a saved filter (no format tag)".into()),
        };
        let (content, digest) = saved
            .split_last_chunk::<32>()
            .filter(|_| body.len() >= FILTER_HEADER_BYTES + 32)
            .ok_or_else(|| format!("cut short at {} bytes", saved.len()))?;
        if dtenge_crypto::hash(FILTER_DIGEST_DOMAIN, &[content]).as_bytes() != digest {
            return Err("damaged: its digest does not match its content".into());
        }
        let body = &content[TAG_BYTES..];
        let number = |i: usize| {
            body.get(i * 8..i * 8 + 8).and_then(|b| <[u8; 8]>::try_from(b).ok()).map_or(0, u64::from_le_bytes)
        };
        let (blocks, seeds, inserted, snapshots) = (number(0), (number(1), number(2)), number(3), number(4));
        let snapshots = usize::try_from(snapshots)
            .ok()
            .filter(|n| *n <= MAX_VALID_FOR)
            .ok_or_else(|| format!("valid for {snapshots} snapshots (at most {MAX_VALID_FOR} are saved)"))?;
        let words_at = FILTER_HEADER_BYTES + 32 * snapshots;
        let valid_for = body
            .get(FILTER_HEADER_BYTES..words_at)
            .ok_or_else(|| format!("cut short at {} bytes", saved.len()))?
            .chunks_exact(32)
            .filter_map(|d| <[u8; 32]>::try_from(d).ok().map(Digest))
            .collect();
        let wanted = Filter::blocks_for(bytes);
        if blocks != wanted as u64 {
            return Err(format!(
                "saved with {} bytes, configured for {} bytes",
                blocks.saturating_mul(WORDS_PER_BLOCK as u64 * 8),
                wanted.saturating_mul(WORDS_PER_BLOCK * 8)
            ));
        }
        let words = &body[words_at..];
        if words.len() != wanted.saturating_mul(WORDS_PER_BLOCK * 8) {
            return Err(format!("{} bytes of words for {wanted} blocks", words.len()));
        }
        let words = words
            .chunks_exact(8)
            .map(|w| AtomicU64::new(<[u8; 8]>::try_from(w).map_or(0, u64::from_le_bytes)))
            .collect();
        let filter = Filter {
            words,
            blocks,
            seeds,
            inserted: AtomicU64::new(inserted),
            writer: Mutex::new(()),
            ready: AtomicBool::new(false),
        };
        Ok((filter, valid_for))
    }

    /// Fills the filter again from every key `backend` holds, in one
    /// writer's turn (keys a writer inserts meanwhile wait for it and go in
    /// after), and makes it ready; logs how long it took and `why`.
    fn rebuild(&self, backend: &dyn ColdBackend, why: &str) -> Result<(), ColdError> {
        let started = std::time::Instant::now();
        let _turn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        for word in &self.words {
            word.store(0, Ordering::Relaxed);
        }
        self.inserted.store(0, Ordering::Relaxed);
        backend.for_each_key(&mut |k| self.insert_in_turn(std::iter::once(k)))?;
        self.ready.store(true, Ordering::Release);
        tracing::info!(
            keys = self.inserted(),
            ms = started.elapsed().as_millis(),
            "notary cold store: filter rebuilt ({why})"
        );
        Ok(())
    }

    fn blocks_for(bytes: usize) -> usize {
        (bytes / (WORDS_PER_BLOCK * 8)).max(1)
    }
}

/// Bytes of a saved filter's header after its tag: blocks, two seeds, count,
/// snapshots it is valid for.
const FILTER_HEADER_BYTES: usize = 40;
/// Snapshots a saved filter names: the last one journaled and the one about
/// to be.
const MAX_VALID_FOR: usize = 2;
/// The domain of a saved filter's digest.
const FILTER_DIGEST_DOMAIN: &[u8] = b"dtenge/notary/cold-filter/v1";

fn rand_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x6e6f_7461_7279);
    h.finish()
}

/// One generation of recent history (frozen: on its way to the backend).
///
/// The entries are appended to two vectors in commit order (sequential
/// writes) and found through tables of positions (8 bytes a slot instead of
/// the 64-byte spent entry or the 144-byte receipt): a generation's tables
/// stay small enough for the CPU's caches, and the cold writer copies the
/// vectors instead of walking hash tables.
#[derive(Debug, Default, Clone)]
pub(crate) struct Generation {
    spent: Recorded<(Commitment, TxId)>,
    receipts: Recorded<ReceiptBody>,
}

impl Generation {
    /// Pre-sized for `entries` (spent commitments are about two thirds of a
    /// generation's entries with two-input payments): no rehash while it fills.
    pub(crate) fn with_capacity(entries: usize) -> Generation {
        let entries = entries.min(1 << 22);
        Generation { spent: Recorded::with_capacity(entries * 3 / 4), receipts: Recorded::with_capacity(entries / 2) }
    }

    /// The transaction that spent `c`, if this generation holds it.
    pub(crate) fn spender(&self, c: &Commitment) -> Option<TxId> {
        self.spent.get(&c.0).map(|(_, tx)| *tx)
    }

    /// The receipt body of `tx`, if this generation holds it.
    pub(crate) fn receipt(&self, tx: &TxId) -> Option<&ReceiptBody> {
        self.receipts.get(&tx.0)
    }

    /// Records that `tx` spent `c` (a second record for `c` replaces the first).
    pub(crate) fn insert_spent(&mut self, c: Commitment, tx: TxId) {
        self.spent.put((c, tx));
    }

    /// Records a committed transaction's receipt body (a second body for the
    /// same transaction replaces the first).
    pub(crate) fn insert_receipt(&mut self, body: ReceiptBody) {
        self.receipts.put(body);
    }

    /// Spent commitments and their spenders, in the order they were recorded.
    pub(crate) fn spent(&self) -> &[(Commitment, TxId)] {
        &self.spent.items
    }

    /// Receipt bodies, in the order they were recorded.
    pub(crate) fn receipts(&self) -> &[ReceiptBody] {
        &self.receipts.items
    }

    pub(crate) fn len(&self) -> usize {
        self.spent.items.len() + self.receipts.items.len()
    }
}

/// An entry of recent history and the key it is found by.
trait Keyed {
    fn key(&self) -> &Digest;
}

impl Keyed for (Commitment, TxId) {
    fn key(&self) -> &Digest {
        &self.0.0
    }
}

impl Keyed for ReceiptBody {
    fn key(&self) -> &Digest {
        &self.tx.0
    }
}

/// Entries in the order they were recorded, found by key through a table of
/// their positions.
#[derive(Debug, Clone)]
struct Recorded<T> {
    items: Vec<T>,
    at: hashbrown::HashTable<usize>,
    hasher: foldhash::fast::RandomState,
}

impl<T: Keyed> Default for Recorded<T> {
    fn default() -> Self {
        Recorded::with_capacity(0)
    }
}

impl<T: Keyed> Recorded<T> {
    fn with_capacity(entries: usize) -> Recorded<T> {
        Recorded {
            items: Vec::with_capacity(entries),
            at: hashbrown::HashTable::with_capacity(entries),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    fn get(&self, key: &Digest) -> Option<&T> {
        use std::hash::BuildHasher;
        let items = &self.items;
        let at = self.at.find(self.hasher.hash_one(key), |&i| items.get(i).is_some_and(|e| e.key() == key))?;
        items.get(*at)
    }

    /// Appends `entry`, or replaces the entry with its key.
    fn put(&mut self, entry: T) {
        use std::hash::BuildHasher;
        let Recorded { items, at, hasher } = self;
        let hash = hasher.hash_one(entry.key());
        match at.find(hash, |&i| items.get(i).is_some_and(|e| e.key() == entry.key())) {
            Some(&i) => {
                if let Some(slot) = items.get_mut(i) {
                    *slot = entry;
                }
            }
            None => {
                at.insert_unique(hash, items.len(), |&i| items.get(i).map_or(0, |e| hasher.hash_one(e.key())));
                items.push(entry);
            }
        }
    }
}

/// A frozen generation and whether the backend holds it yet.
#[derive(Debug, Clone)]
pub(crate) struct Frozen {
    pub(crate) generation: Arc<Generation>,
    pub(crate) written: Arc<AtomicBool>,
}

/// A generation handed to the background writer, with the moment its
/// journal records are durable (when the store waits for a journal).
type ToWrite = (Frozen, Option<Pending>);

/// How generations reach the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// In the thread that froze the generation (deterministic; tests, simulation).
    Inline,
    /// In a background writer thread (the service on disk).
    Background,
}

/// Where a cold store's filter came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterOrigin {
    /// Read back as saved beside the store, valid for the snapshot the
    /// owner recovered (or waiting to be confirmed for it).
    Saved,
    /// Filled from every key the backend holds, and why no saved filter was
    /// used.
    Rebuilt {
        /// Why.
        why: String,
    },
}

/// The filter's standing with the snapshots its owner journals.
#[derive(Debug)]
struct FilterState {
    origin: FilterOrigin,
    /// A saved filter read at opening, not yet confirmed: the snapshots it
    /// is valid for.
    pending: Option<Vec<Digest>>,
    /// The snapshot the owner recovered or last journaled.
    last_snapshot: Option<Digest>,
}

/// The identity of a snapshot as a saved filter names it.
fn snapshot_id(snapshot: &[u8]) -> Digest {
    dtenge_crypto::hash(b"dtenge/notary/cold-filter/snapshot", &[snapshot])
}

/// The cold store: a backend, the filter over its keys and the writer.
///
/// The filter is saved beside a durable backend whenever the owner is about
/// to journal a snapshot ([`ColdStore::persist_for_snapshot`]) and when the
/// store closes, naming the snapshots it is valid for: the one journaled
/// last and the one about to be (a crash may come before it is). A filter
/// saved then holds every key of every generation that left memory before
/// the snapshot's capture; what came after is in the snapshot or in the
/// journal after it, and goes back into the filter when written again. So a
/// store reopened with a saved filter ([`ColdStore::open_saved`]) believes
/// it only once its owner recovers one of those snapshots
/// ([`ColdStore::settle_filter`]), or none (the journal then holds every
/// record); otherwise — a snapshot journaled by a release that did not save
/// filters, say — the filter is filled from the backend's keys, as every
/// start did before filters were saved.
pub struct ColdStore {
    /// `None` once closed (the backend's files are released).
    backend: std::sync::RwLock<Option<Arc<dyn ColdBackend>>>,
    durable: bool,
    filter: Arc<Filter>,
    filter_state: Mutex<FilterState>,
    /// Generations to write, each with the moment its journal records are
    /// durable (when a journal is named).
    queue: Mutex<Option<std::sync::mpsc::Sender<ToWrite>>>,
    /// The journal whose records the generations hold, if writes must wait
    /// for it ([`ColdStore::write_after_durable`]).
    journal: Mutex<Option<Journal>>,
    shared: Arc<WriterShared>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

#[derive(Default)]
struct WriterShared {
    failure: Mutex<Option<ColdError>>,
    progress: Condvar,
    generations_written: AtomicU64,
    entries_written: AtomicU64,
}

impl std::fmt::Debug for ColdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ColdStore").field("durable", &self.durable).field("filter_bytes", &self.filter.bytes()).finish()
    }
}

/// Byte order of two keys, comparing their first eight bytes as one number
/// first (keys are hashes: the rest almost never decides).
fn by_key(a: &[u8; 32], b: &[u8; 32]) -> std::cmp::Ordering {
    let head = |k: &[u8; 32]| u64::from_be_bytes([k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7]]);
    head(a).cmp(&head(b)).then_with(|| a.cmp(b))
}

fn write_generation(
    backend: &dyn ColdBackend,
    filter: &Filter,
    shared: &WriterShared,
    frozen: &Frozen,
) -> Result<(), ColdError> {
    let mut spent: Vec<(Commitment, TxId)> = frozen.generation.spent().to_vec();
    spent.sort_unstable_by(|a, b| by_key(a.0.0.as_bytes(), b.0.0.as_bytes()));
    let mut receipts: Vec<ReceiptBody> = frozen.generation.receipts().to_vec();
    receipts.sort_unstable_by(|a, b| by_key(a.tx.0.as_bytes(), b.tx.0.as_bytes()));
    backend.write(&spent, &receipts)?;
    filter.insert_all(spent.iter().map(|(c, _)| c.0.as_bytes()).chain(receipts.iter().map(|b| b.tx.0.as_bytes())));
    shared.entries_written.fetch_add((spent.len() + receipts.len()) as u64, Ordering::Relaxed);
    // Release: whoever reads the new count (Acquire) also sees the filter
    // holding every key of this generation (`ColdStore::generations_written`).
    shared.generations_written.fetch_add(1, Ordering::Release);
    frozen.written.store(true, Ordering::Release);
    Ok(())
}

impl ColdStore {
    /// A cold store over `backend` with a filter of `filter_bytes`; the
    /// filter is filled from the backend's keys.
    pub fn open(backend: Arc<dyn ColdBackend>, filter_bytes: usize, mode: WriteMode) -> Result<ColdStore, ColdError> {
        ColdStore::rebuilt(backend, filter_bytes, "opened without reading a saved filter".into(), mode)
    }

    /// As [`ColdStore::open`], but with the filter the backend saved, if it
    /// has one of `filter_bytes`: believed once the owner confirms it for
    /// the snapshot it recovers ([`ColdStore::settle_filter`]), every answer
    /// "maybe" until then. A saved filter that cannot be used (damaged,
    /// another size, a newer format) is named in a warning and rebuilt.
    pub fn open_saved(
        backend: Arc<dyn ColdBackend>,
        filter_bytes: usize,
        mode: WriteMode,
    ) -> Result<ColdStore, ColdError> {
        let why = match backend.saved_filter()? {
            None => "no filter was saved".to_string(),
            Some(saved) => match Filter::decode(&saved, filter_bytes) {
                Ok((filter, valid_for)) => {
                    let state =
                        FilterState { origin: FilterOrigin::Saved, pending: Some(valid_for), last_snapshot: None };
                    return ColdStore::with_filter(backend, filter, state, mode);
                }
                Err(why) => {
                    tracing::warn!("notary cold store: the saved filter is not used ({why}); rebuilding it");
                    format!("the saved filter is not used: {why}")
                }
            },
        };
        ColdStore::rebuilt(backend, filter_bytes, why, mode)
    }

    /// A store whose filter is filled from the backend's keys, for `why`.
    fn rebuilt(
        backend: Arc<dyn ColdBackend>,
        filter_bytes: usize,
        why: String,
        mode: WriteMode,
    ) -> Result<ColdStore, ColdError> {
        let filter = Filter::new(filter_bytes);
        filter.rebuild(backend.as_ref(), &why)?;
        let state = FilterState { origin: FilterOrigin::Rebuilt { why }, pending: None, last_snapshot: None };
        ColdStore::with_filter(backend, filter, state, mode)
    }

    fn with_filter(
        backend: Arc<dyn ColdBackend>,
        filter: Filter,
        filter_state: FilterState,
        mode: WriteMode,
    ) -> Result<ColdStore, ColdError> {
        let filter = Arc::new(filter);
        let shared = Arc::new(WriterShared::default());
        let (queue, writer) = match mode {
            WriteMode::Inline => (None, None),
            WriteMode::Background => {
                let (tx, rx) = std::sync::mpsc::channel::<ToWrite>();
                let (backend, filter, shared) = (Arc::clone(&backend), Arc::clone(&filter), Arc::clone(&shared));
                let handle = std::thread::Builder::new()
                    .name("notary-cold".into())
                    .spawn(move || {
                        for (frozen, durable) in rx {
                            let result = match durable.map(Pending::wait) {
                                // Its commits may be lost with the journal's
                                // tail: it must not outlive them here.
                                Some(Err(e)) => Err(ColdError::Io(format!(
                                    "a generation is not written: the journal did not make its records durable ({e})"
                                ))),
                                _ => write_generation(backend.as_ref(), &filter, &shared, &frozen),
                            };
                            let mut failure = shared.failure.lock().unwrap_or_else(|p| p.into_inner());
                            if let Err(e) = result {
                                tracing::error!("notary cold store write failed: {e}");
                                failure.get_or_insert(e);
                            }
                            drop(failure);
                            shared.progress.notify_all();
                        }
                    })
                    .map_err(io)?;
                (Some(tx), Some(handle))
            }
        };
        Ok(ColdStore {
            durable: backend.durable(),
            backend: std::sync::RwLock::new(Some(backend)),
            filter,
            filter_state: Mutex::new(filter_state),
            queue: Mutex::new(queue),
            journal: Mutex::new(None),
            shared,
            writer: Mutex::new(writer),
        })
    }

    /// An in-memory cold store (inline writes), as tests and the simulation use.
    pub fn memory(backend: MemoryCold, filter_bytes: usize) -> ColdStore {
        match ColdStore::open(Arc::new(backend), filter_bytes, WriteMode::Inline) {
            Ok(store) => store,
            Err(e) => unreachable!("the memory backend cannot fail: {e}"),
        }
    }

    /// The first write failure, if any: then nothing more leaves memory and
    /// the notary must stop answering.
    pub fn failure(&self) -> Option<ColdError> {
        self.shared.failure.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn backend(&self) -> Result<Arc<dyn ColdBackend>, ColdError> {
        let backend = self.backend.read().unwrap_or_else(|p| p.into_inner());
        backend.clone().ok_or_else(|| ColdError::Io("the cold store is closed".into()))
    }

    /// From now on a generation is written only once every record appended
    /// to `journal` before the generation froze is durable: the cold store
    /// then never holds a commit that a crash takes from the journal. For an
    /// owner that applies commits before their records are durable (the
    /// single notary); a replica of a group applies only committed entries.
    /// Only the background writer waits: an inline store is in memory and
    /// does not outlive the process.
    pub fn write_after_durable(&self, journal: Journal) {
        *self.journal.lock().unwrap_or_else(|p| p.into_inner()) = Some(journal);
    }

    pub(crate) fn submit(&self, frozen: Frozen) -> Result<(), ColdError> {
        if let Some(e) = self.failure() {
            return Err(e);
        }
        let queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        match queue.as_ref() {
            Some(queue) => {
                // Taken as the generation freezes, under the engine's lock,
                // after the journal append of the last commit it holds.
                let durable = self.journal.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(Journal::sync_point);
                queue.send((frozen, durable)).map_err(|_| ColdError::Io("the cold writer stopped".into()))
            }
            None => {
                drop(queue);
                let result = write_generation(self.backend()?.as_ref(), &self.filter, &self.shared, &frozen);
                if let Err(e) = &result {
                    self.shared.failure.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e.clone());
                }
                result
            }
        }
    }

    /// Waits until `frozen` is written (or the writer failed).
    pub(crate) fn wait_written(&self, frozen: &Frozen) -> Result<(), ColdError> {
        let mut failure = self.shared.failure.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if frozen.written.load(Ordering::Acquire) {
                return Ok(());
            }
            if let Some(e) = failure.as_ref() {
                return Err(e.clone());
            }
            failure = self
                .shared
                .progress
                .wait_timeout(failure, std::time::Duration::from_millis(50))
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// The spender of `c` if the backend holds it (the filter first).
    pub fn spender(&self, c: &Commitment) -> Result<Option<TxId>, ColdError> {
        if !self.filter.may_contain(c.0.as_bytes()) {
            return Ok(None);
        }
        self.backend()?.spender(c)
    }

    /// The receipt body of `tx` if the backend holds it (the filter first).
    pub fn receipt(&self, tx: &TxId) -> Result<Option<ReceiptBody>, ColdError> {
        if !self.filter.may_contain(tx.0.as_bytes()) {
            return Ok(None);
        }
        self.backend()?.receipt(tx)
    }

    /// One piece of everything the store holds, in key order (see
    /// [`ColdBackend::scan`]); at least one entry per piece.
    pub fn scan(&self, after: Option<ColdKey>, limit: usize) -> Result<ColdChunk, ColdError> {
        self.backend()?.scan(after, limit.max(1))
    }

    /// Writes entries received from another replica (a snapshot's cold
    /// part) and waits until the backend and the filter hold them. They are
    /// committed history, so they agree with whatever this store holds.
    pub fn ingest(&self, chunk: &ColdChunk) -> Result<(), ColdError> {
        let mut generation = Generation::with_capacity(chunk.len());
        for (c, tx) in &chunk.spent {
            generation.insert_spent(*c, *tx);
        }
        for body in &chunk.receipts {
            generation.insert_receipt(body.clone());
        }
        let frozen = Frozen { generation: Arc::new(generation), written: Arc::new(AtomicBool::new(false)) };
        self.submit(frozen.clone())?;
        self.wait_written(&frozen)
    }

    /// Makes everything written durable.
    pub fn persist(&self) -> Result<(), ColdError> {
        if let Some(e) = self.failure() {
            return Err(e);
        }
        self.backend()?.persist()
    }

    /// Makes everything written durable before the owner journals
    /// `snapshot` (captured before this call), and saves the filter as valid
    /// for it and for the snapshot journaled before it.
    pub fn persist_for_snapshot(&self, snapshot: &[u8]) -> Result<(), ColdError> {
        let backend = self.backend()?;
        self.persist()?;
        let id = snapshot_id(snapshot);
        let mut state = self.filter_state();
        let valid_for: Vec<Digest> = state.last_snapshot.into_iter().chain(std::iter::once(id)).collect();
        self.save_filter(backend.as_ref(), &state, &valid_for)?;
        state.last_snapshot = Some(id);
        Ok(())
    }

    /// Saves the filter as valid for `valid_for`, unless the backend does not
    /// outlive the process or the filter itself waits to be confirmed.
    fn save_filter(
        &self,
        backend: &dyn ColdBackend,
        state: &FilterState,
        valid_for: &[Digest],
    ) -> Result<(), ColdError> {
        if !self.durable || state.pending.is_some() {
            return Ok(());
        }
        backend.save_filter(&self.filter.encode(valid_for))
    }

    /// Confirms the filter for the snapshot the owner recovered (`None`: no
    /// snapshot, the journal holds every record): a saved filter valid for
    /// it is believed from now on, any other is rebuilt from the backend's
    /// keys. Harmless for a filter that was rebuilt at opening.
    pub fn settle_filter(&self, recovered: Option<&[u8]>) -> Result<(), ColdError> {
        let id = recovered.map(snapshot_id);
        let mut state = self.filter_state();
        state.last_snapshot = id;
        let Some(valid_for) = state.pending.take() else { return Ok(()) };
        match id {
            Some(id) if !valid_for.contains(&id) => {
                let why = "saved for another snapshot than the one recovered".to_string();
                self.filter.rebuild(self.backend()?.as_ref(), &why)?;
                state.origin = FilterOrigin::Rebuilt { why };
            }
            _ => {
                self.filter.ready.store(true, Ordering::Release);
                tracing::info!(keys = self.filter.inserted(), "notary cold store: the saved filter is used");
            }
        }
        Ok(())
    }

    /// Where the filter came from.
    pub fn filter_origin(&self) -> FilterOrigin {
        self.filter_state().origin.clone()
    }

    fn filter_state(&self) -> MutexGuard<'_, FilterState> {
        self.filter_state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the backend outlives the process.
    pub fn durable(&self) -> bool {
        self.durable
    }

    /// Generations written since opening. Once a caller has read a count,
    /// the filter holds every key of those generations: a filter probe made
    /// after reading it is valid for every generation the count covers, and
    /// an engine (which drops a generation only once it is written) that
    /// still reads the same count has dropped no generation the probe
    /// could have missed.
    pub fn generations_written(&self) -> u64 {
        self.shared.generations_written.load(Ordering::Acquire)
    }

    /// Generations and entries written since opening.
    pub fn written(&self) -> (u64, u64) {
        (self.shared.generations_written.load(Ordering::Relaxed), self.shared.entries_written.load(Ordering::Relaxed))
    }

    /// The filter over the backend's keys.
    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// Stops the writer (after what was submitted is written), makes the
    /// backend durable and releases it (its files can be opened again).
    /// Closing twice is harmless; lookups that need the backend then fail.
    pub fn close(&self) -> Result<(), ColdError> {
        self.stop_writer();
        let backend = self.backend.write().unwrap_or_else(|p| p.into_inner()).take();
        match (self.failure(), backend) {
            (Some(e), _) => Err(e),
            (None, Some(backend)) => {
                backend.persist()?;
                // Valid for the snapshot journaled last: it covers a superset
                // of what that snapshot's own saved filter held.
                let state = self.filter_state();
                let valid_for: Vec<Digest> = state.last_snapshot.into_iter().collect();
                self.save_filter(backend.as_ref(), &state, &valid_for)
            }
            (None, None) => Ok(()),
        }
    }

    fn stop_writer(&self) {
        drop(self.queue.lock().unwrap_or_else(|p| p.into_inner()).take());
        if let Some(handle) = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = handle.join();
        }
    }
}

impl Drop for ColdStore {
    fn drop(&mut self) {
        self.stop_writer();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dtenge_crypto::hash;

    fn c(n: u64) -> Commitment {
        Commitment(hash(b"c", &[&n.to_le_bytes()]))
    }

    fn t(n: u64) -> TxId {
        TxId(hash(b"t", &[&n.to_le_bytes()]))
    }

    fn body(n: u64, seq: u64) -> ReceiptBody {
        ReceiptBody {
            tx: t(n),
            seq,
            committed_at: Timestamp(n),
            inputs_digest: hash(b"i", &[&n.to_le_bytes()]),
            outputs_digest: hash(b"o", &[&n.to_le_bytes()]),
        }
    }

    #[test]
    fn a_generation_finds_every_entry_past_its_capacity_and_nothing_else() {
        // Capacity 8, filled with 5 000 of each: the position tables grow
        // (rehash by the entries' own keys) and still find every entry.
        let mut g = Generation::with_capacity(8);
        for n in 0..5_000 {
            g.insert_spent(c(n), t(n / 2));
            g.insert_receipt(body(n, n + 1));
        }
        assert_eq!(g.len(), 10_000);
        for n in 0..5_000 {
            assert_eq!(g.spender(&c(n)), Some(t(n / 2)));
            assert_eq!(g.receipt(&t(n)), Some(&body(n, n + 1)));
        }
        for n in 5_000..6_000 {
            assert_eq!(g.spender(&c(n)), None);
            assert_eq!(g.receipt(&t(n)), None);
        }
        // Commit order is kept for the cold writer and snapshots.
        assert_eq!(g.spent()[4_999], (c(4_999), t(2_499)));
        assert_eq!(g.receipts()[0], body(0, 1));
    }

    #[test]
    fn a_saved_filter_reads_back_its_keys_and_snapshots_and_refuses_any_other_file() {
        let filter = Filter::new(4096);
        let keys: Vec<[u8; 32]> = (0..200).map(|n| *c(n).0.as_bytes()).collect();
        filter.insert_all(keys.iter());
        let snapshots = [hash(b"s", &[b"1"]), hash(b"s", &[b"2"])];
        let saved = filter.encode(&snapshots);
        let (back, valid_for) = Filter::decode(&saved, 4096).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(valid_for, snapshots);
        assert_eq!((back.inserted(), back.bytes()), (200, 4096));
        assert!(keys.iter().all(|k| back.may_contain(k)), "every key, while waiting to be confirmed too");
        back.ready.store(true, Ordering::Release);
        assert!(keys.iter().all(|k| back.may_contain(k)));
        let absent = (1_000..3_000).filter(|n| back.may_contain(c(*n).0.as_bytes())).count();
        assert_eq!(absent, (1_000..3_000).filter(|n| filter.may_contain(c(*n).0.as_bytes())).count(), "same bits");
        // Not ready: every answer "maybe".
        let (pending, _) = Filter::decode(&saved, 4096).unwrap_or_else(|e| panic!("{e}"));
        assert!((1_000..1_100).all(|n| pending.may_contain(c(n).0.as_bytes())));

        let error = |bytes: &[u8], size: usize| Filter::decode(bytes, size).err().unwrap_or_default();
        assert_eq!(error(&saved, 8192), "saved with 4096 bytes, configured for 8192 bytes");
        assert_eq!(error(&saved[..saved.len() - 1], 4096), "damaged: its digest does not match its content");
        assert_eq!(error(&saved[..20], 4096), "cut short at 20 bytes");
        assert_eq!(error(b"anything else", 4096), "not a saved filter (no format tag)");
        let mut newer = saved.clone();
        newer[6] = 9;
        assert_eq!(
            error(&newer, 4096),
            "notary cold filter in format version 9, newer than this release reads (up to 1): run the release \
             that wrote it, or a newer one"
        );
        let mut damaged = saved;
        damaged[100] ^= 1;
        assert_eq!(error(&damaged, 4096), "damaged: its digest does not match its content");
    }

    #[test]
    fn a_second_record_for_a_key_replaces_the_first_as_a_map_would() {
        let mut g = Generation::with_capacity(4);
        g.insert_spent(c(1), t(1));
        g.insert_spent(c(1), t(2));
        g.insert_receipt(body(7, 1));
        g.insert_receipt(body(7, 2));
        assert_eq!(g.len(), 2);
        assert_eq!(g.spender(&c(1)), Some(t(2)));
        assert_eq!(g.receipt(&t(7)).map(|b| b.seq), Some(2));
        // A clone is independent (audits copy the state).
        let copy = g.clone();
        g.insert_spent(c(2), t(3));
        assert_eq!(copy.spender(&c(2)), None);
        assert_eq!(g.spender(&c(2)), Some(t(3)));
    }
}
