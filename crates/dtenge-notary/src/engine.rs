//! The notary's state machine: a spent-set of token commitments.
//!
//! ```text
//!   commitment ──► Unspent            (recorded as an output of a committed tx;
//!                                      always in memory: the live set)
//!              ──► Spent(by tx)       (consumed by a committed tx; kept forever,
//!                                      so a conflict names the spender)
//!   tx id      ──► committed entry    (seq, time, digests: a retry gets the
//!                                      same receipt body)
//!
//!   memory:  unspent shards │ current generation │ frozen generations (≤ 2)
//!   disk:                                          cold store (+ RAM filter)
//! ```
//!
//! Spent commitments and receipt bodies go to the current generation; when it
//! holds [`NotaryConfig::generation_entries`] entries, or is
//! [`NotaryConfig::generation_ms`] old, it is frozen and handed to the
//! [`ColdStore`]; once the store holds it, it leaves memory. Lookups go
//! memory first, then the cold store (whose in-memory filter answers most
//! misses without touching the disk). Memory is bounded by the live set plus
//! three generations, and reaches that bound within about three generation
//! ages at any steady rate: a generation closed by age sizes the next one
//! after its own fill, so a slow notary does not hold tables sized for a
//! fast one.
//!
//! `decide` looks at the state and returns what would happen, without changing
//! anything; `apply` makes a decided commit happen and cannot fail. The runtime
//! journals the [`NotaryRecord`] between the two, and replaying the journal
//! through `apply` rebuilds the state exactly.
//!
//! Commitments are partitioned into [`SHARDS`] shards by their first byte, so
//! the spent-set can later be split across machines; a transaction touching
//! several shards is checked in all of them before any is changed.
//!
//! Commitments bind the token's host (`Commitment::bound`): a claim opens
//! each input to its host and the service admits it only from that host
//! (or with its consent). Commitments recorded before that format existed
//! (format version 0 of the journal and snapshot) cannot be opened so: they
//! are kept as the *legacy* part of the live set, and an input whose bound
//! commitment is unknown spends the legacy commitment its opening names
//! (`Commitment(sealed)`, the earlier formula), recording both as spent.
//! The legacy set only shrinks; nothing new enters it.
//!
//! Invariant: a commitment moves Unspent → Spent once and never back; a
//! transaction is committed at most once; a commit changes all its inputs and
//! outputs or none; every commitment and committed transaction ever seen is in
//! memory or in the cold store (both backend and filter).

use std::collections::HashMap as StdHashMap;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The engine's maps: keys are SHA-256 outputs, so a fast, randomly seeded
/// hasher is enough (foldhash; the seed resists crafted collisions).
pub(crate) type HashMap<K, V> = StdHashMap<K, V, foldhash::fast::RandomState>;
/// A set of the same kind.
pub(crate) type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_crypto::Digest;
use dtenge_types::{Commitment, Timestamp, TxId};

use dtenge_store::versioned::Tagged;

use crate::cold::{ColdError, ColdStore, Frozen, Generation, MemoryCold};
use crate::format::{self, NotaryRecord};
use crate::live::DigestSet;
use crate::messages::{InputOpening, NotariseBatch, NotaryRejection, ReceiptBody, TxClaim};

/// Number of internal partitions of the unspent set.
pub const SHARDS: usize = 16;

/// Most frozen generations waiting for the cold store before `apply` waits.
pub const MAX_FROZEN: usize = 2;

/// Smallest table a generation closed by age makes for the next one.
const MIN_GENERATION_CAPACITY: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
enum Entry {
    Unspent,
    Spent(TxId),
}

/// How much history the engine keeps in memory, and how often the single
/// notary snapshots it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotaryConfig {
    /// Spent commitments plus receipt bodies per generation of recent
    /// history; at most three generations are in memory.
    pub generation_entries: usize,
    /// Longest time a generation stays open, in milliseconds of the commits'
    /// time (so a replay closes generations where the live run did).
    pub generation_ms: u64,
    /// Size of the cold store's in-memory filter, in bytes.
    pub filter_bytes: usize,
    /// Journaled batches between the single notary's snapshots (a replica
    /// snapshots on its group's policy, `GroupOptions::snapshot_every`).
    pub snapshot_every: u64,
}

impl Default for NotaryConfig {
    /// 256 Ki entries per generation (≈ 40 MiB) or 10 seconds, a 32 MiB
    /// filter (false positives stay under 0.1 % up to ~20 M cold entries;
    /// beyond that more negative lookups read the disk — still correct), a
    /// snapshot every 100 000 batches.
    fn default() -> Self {
        NotaryConfig {
            generation_entries: 256 * 1024,
            generation_ms: 10_000,
            filter_bytes: 32 * 1024 * 1024,
            snapshot_every: 100_000,
        }
    }
}

/// The outcome the engine decided for one claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// New: will commit with this receipt body once applied.
    Commit(ReceiptBody),
    /// Already committed earlier: the same receipt body again.
    AlreadyCommitted(ReceiptBody),
    /// Refused.
    Reject(NotaryRejection),
}

/// Entries held in memory, for showing that memory stays flat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct HotCounts {
    /// Unspent commitments (the live set).
    pub unspent: usize,
    /// Spent commitments still in memory.
    pub spent: usize,
    /// Receipt bodies still in memory.
    pub receipts: usize,
    /// Frozen generations waiting for the cold store.
    pub frozen: usize,
}

/// The spent-set and the committed transactions: the live set and recent
/// history in memory, older history in the cold store.
///
/// Cloning copies the memory part and shares the cold store (for audits).
#[derive(Debug, Clone)]
pub struct NotaryState {
    unspent: Vec<DigestSet>,
    current: Generation,
    /// Time of the first commit in the current generation.
    current_since: Option<Timestamp>,
    frozen: VecDeque<Frozen>,
    cold: Arc<ColdStore>,
    config: NotaryConfig,
    last_seq: u64,
    spent_total: u64,
    /// Unspent commitments recorded before commitments bound their host
    /// (a subset of `unspent`; see the module's comment).
    legacy: HashSet<Commitment>,
}

/// The snapshot: the memory part only (the cold store is persisted first).
/// Format version 1 ([`format::SNAPSHOT`]); untagged ones are version 0.
#[derive(BorshSerialize, BorshDeserialize)]
struct Snapshot {
    unspent: Vec<Commitment>,
    spent: Vec<(Commitment, TxId)>,
    txs: Vec<ReceiptBody>,
    last_seq: u64,
    spent_total: u64,
    /// The legacy part of `unspent`.
    legacy: Vec<Commitment>,
}

/// The format version 0 snapshot (`DTNOTAR2`), before commitments bound their host.
#[derive(BorshDeserialize)]
struct SnapshotV0 {
    unspent: Vec<Commitment>,
    spent: Vec<(Commitment, TxId)>,
    txs: Vec<ReceiptBody>,
    last_seq: u64,
    spent_total: u64,
}

/// The snapshot layout before the cold store (everything in memory).
#[derive(BorshDeserialize)]
struct LegacySnapshot {
    shards: Vec<HashMap<Commitment, Entry>>,
    txs: HashMap<TxId, ReceiptBody>,
    last_seq: u64,
}

const SNAPSHOT_MAGIC: &[u8; 8] = b"DTNOTAR2";

impl Default for NotaryState {
    fn default() -> Self {
        Self::new()
    }
}

fn shard_of(c: &Commitment) -> usize {
    usize::from(c.0.as_bytes()[0]) % SHARDS
}

impl NotaryState {
    /// An empty notary with an in-memory cold store and the default config.
    pub fn new() -> NotaryState {
        let config = NotaryConfig::default();
        NotaryState::with_cold(Arc::new(ColdStore::memory(MemoryCold::new(), 1024 * 1024)), config)
    }

    /// An empty notary over `cold` (which may already hold history: the
    /// journal is replayed over it).
    pub fn with_cold(cold: Arc<ColdStore>, config: NotaryConfig) -> NotaryState {
        NotaryState {
            unspent: (0..SHARDS).map(|_| DigestSet::new()).collect(),
            current: Generation::with_capacity(config.generation_entries),
            current_since: None,
            frozen: VecDeque::new(),
            cold,
            config: NotaryConfig { generation_entries: config.generation_entries.max(1), ..config },
            last_seq: 0,
            spent_total: 0,
            legacy: HashSet::default(),
        }
    }

    /// Restores a snapshot taken with [`NotaryState::to_snapshot`] (or an
    /// earlier format), checking its shape.
    pub fn from_snapshot(bytes: &[u8], cold: Arc<ColdStore>, config: NotaryConfig) -> Result<NotaryState, String> {
        let mut state = NotaryState::with_cold(cold, config);
        let body = match format::SNAPSHOT.read(bytes).map_err(|e| e.to_string())? {
            Tagged::Versioned { body, .. } => body,
            Tagged::Untagged(old) => {
                state.restore_v0(old)?;
                state.maybe_freeze(None);
                return Ok(state);
            }
        };
        let snap: Snapshot = borsh::from_slice(body).map_err(|e| format!("notary snapshot does not decode: {e}"))?;
        state.restore(snap.unspent, snap.spent, snap.txs, snap.last_seq, snap.spent_total);
        for c in snap.legacy {
            if !state.unspent[shard_of(&c)].contains(c.0.as_bytes()) {
                return Err(format!("notary snapshot names legacy commitment {c:?} that is not unspent"));
            }
            state.legacy.insert(c);
        }
        state.maybe_freeze(None);
        Ok(state)
    }

    fn restore(
        &mut self,
        unspent: Vec<Commitment>,
        spent: Vec<(Commitment, TxId)>,
        txs: Vec<ReceiptBody>,
        last_seq: u64,
        spent_total: u64,
    ) {
        for c in unspent {
            self.unspent[shard_of(&c)].insert(c.0.as_bytes());
        }
        for (c, tx) in spent {
            self.current.insert_spent(c, tx);
        }
        for body in txs {
            self.current.insert_receipt(body);
        }
        self.last_seq = last_seq;
        self.spent_total = spent_total;
    }

    /// A snapshot written before format tags (`DTNOTAR2`, or the older
    /// all-in-memory layout): every unspent commitment in it is legacy.
    fn restore_v0(&mut self, bytes: &[u8]) -> Result<(), String> {
        if let Some(rest) = bytes.strip_prefix(SNAPSHOT_MAGIC.as_slice()) {
            let snap: SnapshotV0 =
                borsh::from_slice(rest).map_err(|e| format!("notary snapshot does not decode: {e}"))?;
            self.restore(snap.unspent, snap.spent, snap.txs, snap.last_seq, snap.spent_total);
        } else {
            let legacy: LegacySnapshot =
                borsh::from_slice(bytes).map_err(|e| format!("notary snapshot does not decode: {e}"))?;
            if legacy.shards.len() != SHARDS {
                return Err(format!("notary snapshot has {} shards, expected {SHARDS}", legacy.shards.len()));
            }
            for (c, e) in legacy.shards.into_iter().flatten() {
                match e {
                    Entry::Unspent => {
                        self.unspent[shard_of(&c)].insert(c.0.as_bytes());
                    }
                    Entry::Spent(tx) => {
                        self.current.insert_spent(c, tx);
                        self.spent_total += 1;
                    }
                }
            }
            for body in legacy.txs.into_values() {
                self.current.insert_receipt(body);
            }
            self.last_seq = legacy.last_seq;
        }
        self.mark_unspent_legacy();
        Ok(())
    }

    /// Marks every unspent commitment as legacy: called where the journal
    /// passes from records written before commitments bound their host to
    /// records written after (every commitment unspent then is of the
    /// earlier formula).
    pub fn mark_unspent_legacy(&mut self) {
        for shard in &self.unspent {
            self.legacy.extend(shard.iter().map(|k| Commitment(Digest(k))));
        }
    }

    /// Unspent commitments recorded before commitments bound their host.
    pub fn legacy_count(&self) -> usize {
        self.legacy.len()
    }

    /// The memory part as snapshot bytes (the cold store must be persisted
    /// before the journal drops records this covers).
    pub fn to_snapshot(&self) -> Vec<u8> {
        let mut unspent: Vec<Commitment> =
            self.unspent.iter().flat_map(|s| s.iter()).map(|k| Commitment(Digest(k))).collect();
        unspent.sort_unstable();
        let mut spent: Vec<(Commitment, TxId)> = Vec::new();
        let mut txs: Vec<ReceiptBody> = Vec::new();
        for generation in self.generations() {
            spent.extend_from_slice(generation.spent());
            txs.extend_from_slice(generation.receipts());
        }
        spent.sort_unstable();
        spent.dedup();
        txs.sort_unstable_by_key(|a| a.tx);
        txs.dedup_by(|a, b| a.tx == b.tx);
        let mut legacy: Vec<Commitment> = self.legacy.iter().copied().collect();
        legacy.sort_unstable();
        let snap = Snapshot { unspent, spent, txs, last_seq: self.last_seq, spent_total: self.spent_total, legacy };
        format::SNAPSHOT.encode(&snap)
    }

    /// The memory generations, newest first.
    fn generations(&self) -> impl Iterator<Item = &Generation> {
        std::iter::once(&self.current).chain(self.frozen.iter().rev().map(|f| f.generation.as_ref()))
    }

    fn entry(&self, c: &Commitment) -> Result<Option<Entry>, ColdError> {
        self.entry_probed(c, None)
    }

    /// As `entry`; `in_cold: Some(false)` is a valid [`ColdProbe`]'s "not
    /// in the cold store".
    fn entry_probed(&self, c: &Commitment, in_cold: Option<bool>) -> Result<Option<Entry>, ColdError> {
        if self.unspent[shard_of(c)].contains(c.0.as_bytes()) {
            return Ok(Some(Entry::Unspent));
        }
        for generation in self.generations() {
            if let Some(tx) = generation.spender(c) {
                return Ok(Some(Entry::Spent(tx)));
            }
        }
        if in_cold == Some(false) {
            return Ok(None);
        }
        match self.cold.spender(c)? {
            Some(tx) if self.receipt_of(&tx)?.is_some() => Ok(Some(Entry::Spent(tx))),
            // Spent by a transaction this state has not reached (see `receipt_probed`).
            _ => Ok(None),
        }
    }

    fn receipt_of(&self, tx: &TxId) -> Result<Option<ReceiptBody>, ColdError> {
        self.receipt_probed(tx, None)
    }

    fn receipt_probed(&self, tx: &TxId, in_cold: Option<bool>) -> Result<Option<ReceiptBody>, ColdError> {
        for generation in self.generations() {
            if let Some(body) = generation.receipt(tx) {
                return Ok(Some(body.clone()));
            }
        }
        if in_cold == Some(false) {
            return Ok(None);
        }
        // The cold store may run ahead of this state: after a restart from a
        // snapshot (its later generations were written before the crash), or
        // on a replica that received another replica's whole cold store with
        // a snapshot. What this state has not committed yet does not exist
        // for it; replaying the log commits it again with the same body.
        Ok(self.cold.receipt(tx)?.filter(|body| body.seq <= self.last_seq))
    }

    /// The receipt body of a committed transaction, memory or cold store.
    pub fn lookup_committed(&self, tx: &TxId) -> Result<Option<ReceiptBody>, ColdError> {
        self.receipt_of(tx)
    }

    /// The receipt body of a committed transaction (for audits: an
    /// unreadable cold store reads as "not committed" and is logged).
    pub fn committed(&self, tx: &TxId) -> Option<ReceiptBody> {
        self.receipt_of(tx).unwrap_or_else(|e| {
            tracing::error!("{e}");
            None
        })
    }

    /// Whether `c` exists and is unspent; `Some(tx)` if spent by `tx` (for
    /// audits: an unreadable cold store reads as unknown and is logged).
    pub fn status(&self, c: &Commitment) -> Option<Result<(), TxId>> {
        let entry = self.entry(c).unwrap_or_else(|e| {
            tracing::error!("{e}");
            None
        });
        entry.map(|e| match e {
            Entry::Unspent => Ok(()),
            Entry::Spent(by) => Err(by),
        })
    }

    /// The status of token `id` as its host knows it: as
    /// [`NotaryState::status`] of its commitment, or for a token recorded
    /// before commitments bound their host, of its legacy commitment. For
    /// audits.
    pub fn token_status(&self, id: &dtenge_types::TokenId, token: &dtenge_types::Token) -> Option<Result<(), TxId>> {
        let opening = InputOpening::of(id, token);
        self.status(&opening.commitment()).or_else(|| {
            let legacy = opening.legacy_commitment();
            self.status(&legacy).filter(|_| self.legacy.contains(&legacy))
        })
    }

    /// A digest of the live set (every unspent commitment, in order):
    /// replicas of a group that applied the same log have the same one.
    pub fn unspent_digest(&self) -> Digest {
        let mut unspent: Vec<[u8; 32]> = self.unspent.iter().flat_map(|s| s.iter()).collect();
        unspent.sort_unstable();
        let mut hasher = dtenge_crypto::Hasher::new(b"dtenge/notary/unspent/v1");
        for key in &unspent {
            hasher.update(key);
        }
        hasher.finish()
    }

    /// Number of committed transactions.
    pub fn committed_count(&self) -> u64 {
        self.last_seq
    }

    /// Numbers of unspent and spent commitments (all history).
    pub fn counts(&self) -> (usize, usize) {
        let unspent = self.unspent.iter().map(|s| s.len()).sum();
        (unspent, usize::try_from(self.spent_total).unwrap_or(usize::MAX))
    }

    /// Entries held in memory.
    pub fn hot_counts(&self) -> HotCounts {
        let mut counts = HotCounts {
            unspent: self.counts().0,
            frozen: self.frozen.iter().filter(|f| !f.written.load(Ordering::Acquire)).count(),
            ..HotCounts::default()
        };
        for generation in std::iter::once(&self.current)
            .chain(self.frozen.iter().filter(|f| !f.written.load(Ordering::Acquire)).map(|f| f.generation.as_ref()))
        {
            counts.spent += generation.spent().len();
            counts.receipts += generation.receipts().len();
        }
        counts
    }

    /// The cold store.
    pub fn cold(&self) -> &Arc<ColdStore> {
        &self.cold
    }

    /// Its configuration.
    pub fn config(&self) -> NotaryConfig {
        self.config
    }

    /// Decides every claim of a batch in order, as if the earlier ones had
    /// already been applied. `may_issue` says whether the node may submit
    /// claims without inputs. Nothing is changed.
    pub fn decide(&self, batch: &NotariseBatch, now: Timestamp, may_issue: bool) -> Result<Vec<Decision>, ColdError> {
        self.decide_digested(batch, &digests(batch), None, now, may_issue)
    }

    /// As [`NotaryState::decide`], with the claims' input and output digests
    /// computed beforehand by [`digests`] and the cold filter probed by
    /// [`ColdProbe::new`] over this state's cold store (both outside the
    /// notary's lock). A probe made before a generation was written, or one
    /// of another batch's shape, is ignored (the filter is asked again).
    ///
    /// # Errors
    /// The cold store could not be read: nothing can be decided.
    pub fn decide_digested(
        &self,
        batch: &NotariseBatch,
        digests: &[(Digest, Digest)],
        probe: Option<&ColdProbe>,
        now: Timestamp,
        may_issue: bool,
    ) -> Result<Vec<Decision>, ColdError> {
        self.decide_admitted(batch, digests, probe, now, may_issue, &[])
    }

    /// As [`NotaryState::decide_digested`], with the rejections the checks
    /// made before the lock found (`refused[i]` for claim `i`: an input not
    /// opened to its commitment, or not hosted by the submitter and without
    /// its host's consent). A claim committed before is still answered with
    /// its receipt body (a retry of a committed transaction never fails).
    ///
    /// # Errors
    /// The cold store could not be read: nothing can be decided.
    pub fn decide_admitted(
        &self,
        batch: &NotariseBatch,
        digests: &[(Digest, Digest)],
        probe: Option<&ColdProbe>,
        now: Timestamp,
        may_issue: bool,
        refused: &[Option<NotaryRejection>],
    ) -> Result<Vec<Decision>, ColdError> {
        let written = self.cold.generations_written();
        let expected: usize = batch.claims.iter().map(|c| 1 + c.outputs.len()).sum();
        let probe = probe.filter(|p| p.written == written && p.maybe.len() == expected).map(|p| p.maybe.as_slice());
        let mut at = 0usize;
        let touched: usize = batch.claims.iter().map(|c| c.inputs.len() + c.outputs.len()).sum();
        let mut overlay: HashMap<Commitment, Entry> = HashMap::with_capacity_and_hasher(touched, Default::default());
        let mut new_txs: HashMap<TxId, ReceiptBody> =
            HashMap::with_capacity_and_hasher(batch.claims.len(), Default::default());
        // Legacy commitments spent by earlier claims of this batch.
        let mut legacy_spent: HashMap<Commitment, TxId> = HashMap::default();
        let mut seq = self.last_seq;
        let mut decisions = Vec::with_capacity(batch.claims.len());
        for (i, claim) in batch.claims.iter().enumerate() {
            // This claim's probe answers: its tx id, then each output.
            let hints = probe.and_then(|p| p.get(at..at + 1 + claim.outputs.len()));
            at += 1 + claim.outputs.len();
            let hint = |k: usize| hints.and_then(|h| h.get(k).copied());
            let look = |c: &Commitment, in_cold: Option<bool>| match overlay.get(c) {
                Some(e) => Ok(Some(*e)),
                None => self.entry_probed(c, in_cold),
            };
            let earlier = match new_txs.get(&claim.tx) {
                Some(body) => Some(body.clone()),
                None => self.receipt_probed(&claim.tx, hint(0))?,
            };
            let decision = if let Some(body) = earlier {
                Decision::AlreadyCommitted(body)
            } else if let Some(Some(rejection)) = refused.get(i) {
                Decision::Reject(rejection.clone())
            } else {
                let look_legacy = |input: usize| self.look_legacy(claim, input, &legacy_spent);
                match check(
                    claim,
                    now,
                    may_issue,
                    |c| look(c, None),
                    look_legacy,
                    |output, c| look(c, hint(1 + output)),
                )? {
                    Err(rejection) => Decision::Reject(rejection),
                    Ok(legacy) => {
                        seq = seq.saturating_add(1);
                        for l in legacy {
                            legacy_spent.insert(l, claim.tx);
                        }
                        for c in claim.inputs.iter() {
                            overlay.insert(*c, Entry::Spent(claim.tx));
                        }
                        for c in claim.outputs.iter() {
                            overlay.insert(*c, Entry::Unspent);
                        }
                        let (inputs_digest, outputs_digest) =
                            digests.get(i).copied().unwrap_or_else(|| (claim.inputs_digest(), claim.outputs_digest()));
                        let body = ReceiptBody { tx: claim.tx, seq, committed_at: now, inputs_digest, outputs_digest };
                        new_txs.insert(claim.tx, body.clone());
                        Decision::Commit(body)
                    }
                }
            };
            decisions.push(decision);
        }
        Ok(decisions)
    }

    /// Applies a journaled record. Replays of a valid journal always succeed;
    /// a record that contradicts the state is a broken invariant (corrupt
    /// journal or a bug) and stops the notary rather than guessing.
    ///
    /// May hand a full generation to the cold store, and waits if more than
    /// [`MAX_FROZEN`] are still being written. A failing cold store does not
    /// make `apply` fail: the history stays in memory and
    /// [`ColdStore::failure`] reports the error (the service stops answering).
    pub fn apply(&mut self, record: &NotaryRecord) {
        for claim in Self::committed_claims(record) {
            assert!(
                !self.generations().any(|g| g.receipt(&claim.tx).is_some()),
                "journal commits {:?} twice",
                claim.tx
            );
            let body = ReceiptBody {
                tx: claim.tx,
                seq: self.last_seq.saturating_add(1),
                committed_at: record.committed_at,
                inputs_digest: claim.inputs_digest(),
                outputs_digest: claim.outputs_digest(),
            };
            self.commit(claim, body);
        }
        self.maybe_freeze(Some(record.committed_at));
    }

    /// As [`NotaryState::apply`], for a record `decide` has just produced
    /// under the same lock, with its `decisions`: it takes each receipt body
    /// (and so the claim's digests) from its `Commit` decision instead of
    /// hashing the claim again, and skips re-checking that no committed
    /// transaction repeats (three lookups per claim), which `decide` has
    /// just done. Every other check stays: inputs must be unspent, outputs
    /// new. The state it leaves is the one `apply` leaves.
    pub fn apply_decided(&mut self, record: &NotaryRecord, decisions: &[Decision]) {
        for (index, claim) in record.committed.iter().zip(Self::committed_claims(record)) {
            let body = match usize::try_from(*index).ok().and_then(|i| decisions.get(i)) {
                Some(Decision::Commit(body)) if body.tx == claim.tx => body.clone(),
                other => panic!("record commits claim {index} but its decision is {other:?}"),
            };
            self.commit(claim, body);
        }
        self.maybe_freeze(Some(record.committed_at));
    }

    /// Decides `batch` at `now` and applies what commits, in one step: what
    /// every replica of a notary group does with a log entry (the log holds
    /// the batch and the time; the decisions follow from the state, the same
    /// on every replica). `digests` and `probe` as for
    /// [`NotaryState::decide_digested`].
    ///
    /// # Errors
    /// The cold store could not be read: nothing was changed.
    pub fn decide_and_apply(
        &mut self,
        batch: &NotariseBatch,
        digests: &[(Digest, Digest)],
        probe: Option<&ColdProbe>,
        now: Timestamp,
        may_issue: bool,
        refused: &[Option<NotaryRejection>],
    ) -> Result<Vec<Decision>, ColdError> {
        let decisions = self.decide_admitted(batch, digests, probe, now, may_issue, refused)?;
        for (claim, decision) in batch.claims.iter().zip(&decisions) {
            if let Decision::Commit(body) = decision {
                self.commit(claim, body.clone());
            }
        }
        self.maybe_freeze(Some(now));
        Ok(decisions)
    }

    fn committed_claims(record: &NotaryRecord) -> impl Iterator<Item = &TxClaim> {
        record.committed.iter().map(|index| {
            match usize::try_from(*index).ok().and_then(|i| record.batch.claims.get(i)) {
                Some(claim) => claim,
                None => panic!("journal record names claim {index} outside its batch"),
            }
        })
    }

    /// The legacy commitment input `input` of `claim` spends, if its bound
    /// commitment is unknown: `Unspent` while in the legacy set, `Spent` if
    /// an earlier claim of the batch (`spent_in_batch`) took it, `None` if
    /// it is no legacy commitment (anything else a claim could name is not
    /// one: only what was unspent at the upgrade is).
    fn look_legacy(
        &self,
        claim: &TxClaim,
        input: usize,
        spent_in_batch: &HashMap<Commitment, TxId>,
    ) -> Option<(Commitment, Entry)> {
        let legacy = claim.openings.get(input)?.legacy_commitment();
        if let Some(by) = spent_in_batch.get(&legacy) {
            return Some((legacy, Entry::Spent(*by)));
        }
        self.legacy.contains(&legacy).then_some((legacy, Entry::Unspent))
    }

    fn commit(&mut self, claim: &TxClaim, body: ReceiptBody) {
        let mut spent: u64 = 0;
        for (input, c) in claim.inputs.iter().enumerate() {
            if !self.unspent[shard_of(c)].remove(c.0.as_bytes()) {
                // A token recorded before commitments bound their host: its
                // legacy commitment goes, and both are kept as spent (a
                // second spend of the token conflicts by either).
                let legacy = claim.openings.get(input).map(InputOpening::legacy_commitment);
                let legacy = legacy.filter(|l| self.legacy.remove(l));
                let Some(legacy) = legacy else { panic!("journal spends {c:?} which was not unspent") };
                let removed = self.unspent[shard_of(&legacy)].remove(legacy.0.as_bytes());
                assert!(removed, "legacy commitment {legacy:?} was not unspent");
                self.current.insert_spent(legacy, claim.tx);
                spent += 1;
            }
            self.current.insert_spent(*c, claim.tx);
            spent += 1;
        }
        for c in claim.outputs.iter() {
            let fresh = self.unspent[shard_of(c)].insert(c.0.as_bytes());
            assert!(fresh, "journal creates {c:?} twice");
        }
        self.last_seq = self.last_seq.saturating_add(1);
        debug_assert_eq!(body.seq, self.last_seq, "a receipt's sequence number is the commit's");
        self.spent_total = self.spent_total.saturating_add(spent);
        self.current.insert_receipt(body);
    }

    /// Freezes a full or (at a commit's time `now`) old current generation,
    /// drops written ones, applies backpressure.
    fn maybe_freeze(&mut self, now: Option<Timestamp>) {
        let filled = self.current.len();
        if filled > 0 && self.current_since.is_none() {
            self.current_since = now;
        }
        let full = filled >= self.config.generation_entries;
        // `current_since` is set only while the generation holds entries.
        let old = match (self.current_since, now) {
            (Some(since), Some(now)) => now.millis().saturating_sub(since.millis()) >= self.config.generation_ms,
            _ => false,
        };
        if full || old {
            // Closed by age: the next one is sized for the rate seen (a
            // quarter more), so a slow notary keeps small tables.
            let capacity = if full {
                self.config.generation_entries
            } else {
                filled.saturating_add(filled / 4).clamp(MIN_GENERATION_CAPACITY, self.config.generation_entries)
            };
            self.current_since = None;
            let next = Generation::with_capacity(capacity);
            let generation = Arc::new(std::mem::replace(&mut self.current, next));
            let frozen = Frozen { generation, written: Arc::new(AtomicBool::new(false)) };
            // On failure the generation stays in memory; the store reports it.
            let _ = self.cold.submit(frozen.clone());
            self.frozen.push_back(frozen);
        }
        self.drop_written();
        while self.frozen.len() > MAX_FROZEN {
            let Some(oldest) = self.frozen.front().cloned() else { break };
            if self.cold.wait_written(&oldest).is_err() {
                break;
            }
            self.drop_written();
        }
    }

    fn drop_written(&mut self) {
        while self.frozen.front().is_some_and(|f| f.written.load(Ordering::Acquire)) {
            self.frozen.pop_front();
        }
    }

    /// Hands the current generation to the cold store and waits until every
    /// frozen generation is written: afterwards only the live set is in
    /// memory. For tests, benches and shutdown.
    ///
    /// # Errors
    /// The cold store failed.
    pub fn flush_to_cold(&mut self) -> Result<(), ColdError> {
        if self.current.len() > 0 {
            self.current_since = None;
            let generation = Arc::new(std::mem::take(&mut self.current));
            let frozen = Frozen { generation, written: Arc::new(AtomicBool::new(false)) };
            self.cold.submit(frozen.clone())?;
            self.frozen.push_back(frozen);
        }
        while let Some(oldest) = self.frozen.front().cloned() {
            self.cold.wait_written(&oldest)?;
            self.drop_written();
        }
        Ok(())
    }
}

/// The cold store's filter asked, before the notary's lock is taken, about
/// every transaction id and output of a batch: the filter is lock-free and
/// its probes are cache misses, so they need not lengthen the critical
/// section. A "no" is final only if no generation was written between the
/// probe and the decision (then none was dropped from memory either); the
/// engine checks that under its lock and otherwise asks the filter again.
#[derive(Debug, Clone)]
pub struct ColdProbe {
    written: u64,
    /// Per claim: whether its tx id may be in the cold store, then whether
    /// each of its outputs may be.
    maybe: Vec<bool>,
}

impl ColdProbe {
    /// Probes the filter of `cold` for `batch`.
    pub fn new(cold: &ColdStore, batch: &NotariseBatch) -> ColdProbe {
        // The count first: the probes below see at least its generations.
        let written = cold.generations_written();
        let filter = cold.filter();
        let mut maybe = Vec::with_capacity(batch.claims.iter().map(|c| 1 + c.outputs.len()).sum());
        for claim in &batch.claims {
            maybe.push(filter.may_contain(claim.tx.0.as_bytes()));
            maybe.extend(claim.outputs.iter().map(|o| filter.may_contain(o.0.as_bytes())));
        }
        ColdProbe { written, maybe }
    }
}

/// Each claim's (inputs digest, outputs digest), as its receipt names them.
pub fn digests(batch: &NotariseBatch) -> Vec<(Digest, Digest)> {
    batch.claims.iter().map(|c| (c.inputs_digest(), c.outputs_digest())).collect()
}

/// The rules for one new claim against the (overlaid) state; if it may
/// commit, the legacy commitments it spends.
fn check(
    claim: &TxClaim,
    now: Timestamp,
    may_issue: bool,
    look_input: impl Fn(&Commitment) -> Result<Option<Entry>, ColdError>,
    look_legacy: impl Fn(usize) -> Option<(Commitment, Entry)>,
    look_output: impl Fn(usize, &Commitment) -> Result<Option<Entry>, ColdError>,
) -> Result<Result<Vec<Commitment>, NotaryRejection>, ColdError> {
    if !claim.window.contains(now) {
        return Ok(Err(NotaryRejection::OutsideWindow { now, window: claim.window }));
    }
    if claim.inputs.is_empty() && !may_issue {
        return Ok(Err(NotaryRejection::IssueNotAllowed));
    }
    let mut all: Vec<&Commitment> = claim.inputs.iter().chain(claim.outputs.iter()).collect();
    all.sort_unstable();
    if let Some(pair) = all.windows(2).find(|pair| pair[0] == pair[1]) {
        return Ok(Err(NotaryRejection::RepeatedCommitment { commitment: *pair[0] }));
    }
    let mut legacy_inputs: Vec<Commitment> = Vec::new();
    for (input, c) in claim.inputs.iter().enumerate() {
        let entry = match look_input(c)? {
            Some(entry) => Some(entry),
            None => look_legacy(input).map(|(legacy, entry)| {
                legacy_inputs.push(legacy);
                entry
            }),
        };
        match entry {
            Some(Entry::Unspent) => {}
            Some(Entry::Spent(spent_by)) => {
                return Ok(Err(NotaryRejection::Conflict { input, commitment: *c, spent_by }));
            }
            None => return Ok(Err(NotaryRejection::UnknownInput { input, commitment: *c })),
        }
    }
    // Two inputs opened to the same legacy commitment (under two hosts).
    legacy_inputs.sort_unstable();
    if let Some(pair) = legacy_inputs.windows(2).find(|pair| pair[0] == pair[1]) {
        return Ok(Err(NotaryRejection::RepeatedCommitment { commitment: pair[0] }));
    }
    for (output, c) in claim.outputs.iter().enumerate() {
        if look_output(output, c)?.is_some() {
            return Ok(Err(NotaryRejection::DuplicateOutput { output }));
        }
    }
    Ok(Ok(legacy_inputs))
}
