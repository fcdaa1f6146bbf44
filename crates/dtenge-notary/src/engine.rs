//! The notary's state machine: a spent-set of token commitments.
//!
//! ```text
//!   commitment ──► Unspent            (recorded as an output of a committed tx)
//!              ──► Spent(by tx)       (consumed by a committed tx; kept forever,
//!                                      so a conflict names the spender)
//!   tx id      ──► committed entry    (seq, time, digests: a retry gets the
//!                                      same receipt body)
//! ```
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
//! Invariant: a commitment moves Unspent → Spent once and never back; a
//! transaction is committed at most once; a commit changes all its inputs and
//! outputs or none.

use std::collections::HashMap as StdHashMap;

/// The engine's maps: keys are SHA-256 outputs, so a fast, randomly seeded
/// hasher is enough (foldhash; the seed resists crafted collisions).
type HashMap<K, V> = StdHashMap<K, V, foldhash::fast::RandomState>;

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_crypto::Digest;
use dtenge_types::{Commitment, Timestamp, TxId};

use crate::messages::{NotariseBatch, NotaryRejection, ReceiptBody, TxClaim};

/// Number of internal partitions of the spent-set.
pub const SHARDS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
enum Entry {
    Unspent,
    Spent(TxId),
}

/// What the journal stores: a batch as the node signed it (evidence) and the
/// positions of the claims that committed, at the notary's time.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct NotaryRecord {
    /// The signed batch.
    pub batch: NotariseBatch,
    /// Indices of the claims committed, in commit order.
    pub committed: Vec<u32>,
    /// The notary's clock at commit.
    pub committed_at: Timestamp,
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

/// The spent-set and the committed transactions.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct NotaryState {
    shards: Vec<HashMap<Commitment, Entry>>,
    txs: HashMap<TxId, ReceiptBody>,
    last_seq: u64,
}

impl Default for NotaryState {
    fn default() -> Self {
        Self::new()
    }
}

fn shard_of(c: &Commitment) -> usize {
    usize::from(c.0.as_bytes()[0]) % SHARDS
}

impl NotaryState {
    /// An empty notary.
    pub fn new() -> NotaryState {
        NotaryState { shards: vec![HashMap::default(); SHARDS], txs: HashMap::default(), last_seq: 0 }
    }

    fn entry(&self, c: &Commitment) -> Option<Entry> {
        self.shards.get(shard_of(c)).and_then(|s| s.get(c)).copied()
    }

    /// Restores a snapshot taken with borsh, checking its shape.
    pub fn from_snapshot(bytes: &[u8]) -> Result<NotaryState, String> {
        let state: NotaryState =
            borsh::from_slice(bytes).map_err(|e| format!("notary snapshot does not decode: {e}"))?;
        if state.shards.len() != SHARDS {
            return Err(format!("notary snapshot has {} shards, expected {SHARDS}", state.shards.len()));
        }
        Ok(state)
    }

    /// The state as snapshot bytes.
    pub fn to_snapshot(&self) -> Vec<u8> {
        borsh::to_vec(self).unwrap_or_default()
    }

    /// The receipt body of a committed transaction.
    pub fn committed(&self, tx: &TxId) -> Option<&ReceiptBody> {
        self.txs.get(tx)
    }

    /// Whether `c` exists and is unspent; `Some(tx)` if spent by `tx`.
    pub fn status(&self, c: &Commitment) -> Option<Result<(), TxId>> {
        self.entry(c).map(|e| match e {
            Entry::Unspent => Ok(()),
            Entry::Spent(by) => Err(by),
        })
    }

    /// Number of committed transactions.
    pub fn committed_count(&self) -> u64 {
        self.last_seq
    }

    /// Numbers of unspent and spent commitments.
    pub fn counts(&self) -> (usize, usize) {
        let mut unspent = 0;
        let mut spent = 0;
        for shard in &self.shards {
            for e in shard.values() {
                match e {
                    Entry::Unspent => unspent += 1,
                    Entry::Spent(_) => spent += 1,
                }
            }
        }
        (unspent, spent)
    }

    /// Decides every claim of a batch in order, as if the earlier ones had
    /// already been applied. `may_issue` says whether the node may submit
    /// claims without inputs. Nothing is changed.
    pub fn decide(&self, batch: &NotariseBatch, now: Timestamp, may_issue: bool) -> Vec<Decision> {
        self.decide_digested(batch, &digests(batch), now, may_issue)
    }

    /// As [`NotaryState::decide`], with the claims' input and output digests
    /// computed beforehand by [`digests`] (outside the notary's lock).
    pub fn decide_digested(
        &self,
        batch: &NotariseBatch,
        digests: &[(Digest, Digest)],
        now: Timestamp,
        may_issue: bool,
    ) -> Vec<Decision> {
        let touched: usize = batch.claims.iter().map(|c| c.inputs.len() + c.outputs.len()).sum();
        let mut overlay: HashMap<Commitment, Entry> = HashMap::with_capacity_and_hasher(touched, Default::default());
        let mut new_txs: HashMap<TxId, ReceiptBody> =
            HashMap::with_capacity_and_hasher(batch.claims.len(), Default::default());
        let mut seq = self.last_seq;
        let mut decisions = Vec::with_capacity(batch.claims.len());
        for (i, claim) in batch.claims.iter().enumerate() {
            let look = |c: &Commitment| overlay.get(c).copied().or_else(|| self.entry(c));
            let decision = if let Some(body) = self.txs.get(&claim.tx).or_else(|| new_txs.get(&claim.tx)) {
                Decision::AlreadyCommitted(body.clone())
            } else {
                match check(claim, now, may_issue, look) {
                    Err(rejection) => Decision::Reject(rejection),
                    Ok(()) => {
                        seq = seq.saturating_add(1);
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
        decisions
    }

    /// Applies a journaled record. Replays of a valid journal always succeed;
    /// a record that contradicts the state is a broken invariant (corrupt
    /// journal or a bug) and stops the notary rather than guessing.
    pub fn apply(&mut self, record: &NotaryRecord) {
        for index in &record.committed {
            let Some(claim) = usize::try_from(*index).ok().and_then(|i| record.batch.claims.get(i)) else {
                panic!("journal record names claim {index} outside its batch");
            };
            self.commit(claim, record.committed_at);
        }
    }

    fn commit(&mut self, claim: &TxClaim, at: Timestamp) {
        assert!(!self.txs.contains_key(&claim.tx), "journal commits {:?} twice", claim.tx);
        for c in claim.inputs.iter() {
            let shard = &mut self.shards[shard_of(c)];
            let previous = shard.insert(*c, Entry::Spent(claim.tx));
            assert_eq!(previous, Some(Entry::Unspent), "journal spends {c:?} which was not unspent");
        }
        for c in claim.outputs.iter() {
            let previous = self.shards[shard_of(c)].insert(*c, Entry::Unspent);
            assert_eq!(previous, None, "journal creates {c:?} twice");
        }
        self.last_seq = self.last_seq.saturating_add(1);
        let body = ReceiptBody {
            tx: claim.tx,
            seq: self.last_seq,
            committed_at: at,
            inputs_digest: claim.inputs_digest(),
            outputs_digest: claim.outputs_digest(),
        };
        self.txs.insert(claim.tx, body);
    }
}

/// The rules for one new claim against the (overlaid) state.
/// Each claim's (inputs digest, outputs digest), as its receipt names them.
pub fn digests(batch: &NotariseBatch) -> Vec<(Digest, Digest)> {
    batch.claims.iter().map(|c| (c.inputs_digest(), c.outputs_digest())).collect()
}

fn check(
    claim: &TxClaim,
    now: Timestamp,
    may_issue: bool,
    look: impl Fn(&Commitment) -> Option<Entry>,
) -> Result<(), NotaryRejection> {
    if !claim.window.contains(now) {
        return Err(NotaryRejection::OutsideWindow { now, window: claim.window });
    }
    if claim.inputs.is_empty() && !may_issue {
        return Err(NotaryRejection::IssueNotAllowed);
    }
    let mut all: Vec<&Commitment> = claim.inputs.iter().chain(claim.outputs.iter()).collect();
    all.sort_unstable();
    if let Some(pair) = all.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(NotaryRejection::RepeatedCommitment { commitment: *pair[0] });
    }
    for (input, c) in claim.inputs.iter().enumerate() {
        match look(c) {
            Some(Entry::Unspent) => {}
            Some(Entry::Spent(spent_by)) => {
                return Err(NotaryRejection::Conflict { input, commitment: *c, spent_by });
            }
            None => return Err(NotaryRejection::UnknownInput { input, commitment: *c }),
        }
    }
    for (output, c) in claim.outputs.iter().enumerate() {
        if look(c).is_some() {
            return Err(NotaryRejection::DuplicateOutput { output });
        }
    }
    Ok(())
}
