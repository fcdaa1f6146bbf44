//! The notary as a running service: the engine behind a lock, a journal with
//! group commit, and the message interface other participants call.
//!
//! ```text
//!  Notarise(batch) ─► check sender = batch.node, verify batch signature
//!                  ─► digests, cold-filter probe (lock-free)
//!                  ─► lock { decide; journal.append(record); apply }   (order of the log = order of decisions)
//!                  ─► wait until durable (the record, or everything before it)
//!                  ─► sign receipts, answer
//! ```
//!
//! Nothing is answered before the record that decided it is durable: a
//! conflict or a repeat is answered only once everything journaled before the
//! decision is durable, so no answer ever depends on a spend a crash could
//! undo.

use std::sync::{Arc, Mutex, MutexGuard};

use borsh::BorshSerialize;
use dtenge_crypto::{Ed25519, Signer};
use dtenge_net::{Clock, Handler, HandlerError, Participants};
use dtenge_store::{Journal, Recovery, StoreError};
use dtenge_types::{ParticipantId, Timestamp, TxId};

use crate::cold::{ColdError, ColdStore, MemoryCold};
use crate::engine::{ColdProbe, Decision, HotCounts, NotaryConfig, NotaryState};
use crate::format::NotaryRecord;
use crate::messages::{BatchRefusal, NotariseBatch, NotaryRejection, Receipt, ReceiptBody, Verdict};
use crate::protocol::{NotaryAnswer, NotaryRequest, NotaryStatus};

/// Why the notary service cannot run.
#[derive(Debug, thiserror::Error)]
pub enum NotaryError {
    /// Its storage failed; it must stop rather than answer without durability.
    #[error("notary storage: {0}")]
    Store(#[from] StoreError),
    /// Its journal or snapshot does not replay.
    #[error("notary journal is damaged: {0}")]
    Replay(String),
    /// Its cold store failed.
    #[error(transparent)]
    Cold(#[from] ColdError),
    /// The replicated group could not start or change (openraft refused).
    #[error("notary group: {0}")]
    Group(String),
}

/// The running notary.
pub struct NotaryService {
    key: Arc<dyn Signer>,
    participants: Arc<Participants>,
    clock: Arc<dyn Clock>,
    journal: Journal,
    state: Mutex<NotaryState>,
    /// The state's cold store (fixed for its life), for probing its
    /// lock-free filter before the state's lock is taken.
    cold: Arc<ColdStore>,
    /// One snapshot written at a time; `true` once closed, so a snapshot
    /// still queued then is not written over a closed journal.
    snapshot_turn: Arc<Mutex<bool>>,
    /// Journaled batches between snapshots (`NotaryConfig::snapshot_every`).
    snapshot_every: u64,
}

impl NotaryService {
    /// Recovers the state from `recovery` (snapshot, then records) and serves
    /// with `journal`, keeping history in memory (an in-memory cold store):
    /// for tests and non-durable platforms.
    pub fn recover(
        key: Arc<dyn Signer>,
        participants: Arc<Participants>,
        clock: Arc<dyn Clock>,
        journal: Journal,
        recovery: Recovery,
    ) -> Result<Arc<NotaryService>, NotaryError> {
        let config = NotaryConfig::default();
        let cold = Arc::new(ColdStore::memory(MemoryCold::new(), config.filter_bytes));
        NotaryService::recover_with(key, participants, clock, journal, recovery, cold, config)
    }

    /// As [`NotaryService::recover`], with older history in `cold`. The
    /// snapshot holds only what was in memory; the records after it are
    /// replayed over the cold store (writing again what it may already hold).
    pub fn recover_with(
        key: Arc<dyn Signer>,
        participants: Arc<Participants>,
        clock: Arc<dyn Clock>,
        journal: Journal,
        recovery: Recovery,
        cold: Arc<ColdStore>,
        config: NotaryConfig,
    ) -> Result<Arc<NotaryService>, NotaryError> {
        cold.settle_filter(recovery.snapshot.as_ref().map(|(_, bytes)| bytes.as_slice()))?;
        let snapshot_every = config.snapshot_every.max(1);
        let mut state = match &recovery.snapshot {
            Some((_, bytes)) => NotaryState::from_snapshot(bytes, cold, config).map_err(NotaryError::Replay)?,
            None => NotaryState::with_cold(cold, config),
        };
        // Where records of format version 0 end, the commitments then
        // unspent are of the earlier formula (see `format`).
        let mut before_bound = false;
        for (seq, bytes) in &recovery.records {
            let (record, version) = crate::format::decode_record(bytes)
                .map_err(|e| NotaryError::Replay(format!("record {seq} does not decode: {e}")))?;
            if version > 0 && before_bound {
                state.mark_unspent_legacy();
            }
            before_bound = version == 0;
            state.apply(&record);
        }
        if before_bound {
            state.mark_unspent_legacy();
        }
        if let Some(e) = state.cold().failure() {
            return Err(NotaryError::Cold(e));
        }
        // Batches are applied before their records are durable: no
        // generation may reach the cold store ahead of them.
        state.cold().write_after_durable(journal.clone());
        let cold = Arc::clone(state.cold());
        let snapshot_turn = Arc::new(Mutex::new(false));
        Ok(Arc::new(NotaryService {
            key,
            participants,
            clock,
            journal,
            state: Mutex::new(state),
            cold,
            snapshot_turn,
            snapshot_every,
        }))
    }

    fn state(&self) -> MutexGuard<'_, NotaryState> {
        // A panic while holding the lock means a broken invariant; the state
        // is still the last fully applied one, as apply panics before mutating.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notarises a batch sent by `from`.
    pub async fn notarise(&self, from: &ParticipantId, batch: NotariseBatch) -> Result<Vec<Verdict>, NotaryCallError> {
        let admitted = admit(&self.participants, from, &batch).map_err(NotaryCallError::Refused)?;
        let digests = crate::engine::digests(&batch);
        let probe = ColdProbe::new(&self.cold, &batch);
        // The journal record is its format's tag, then the batch, the
        // committed positions and the time, encoded one after another
        // (borsh): the batch — nearly all of the bytes — is encoded here,
        // outside the lock.
        let mut batch_bytes = Vec::new();
        crate::format::RECORD.tag_into(&mut batch_bytes);
        batch.serialize(&mut batch_bytes).map_err(|e| NotaryCallError::Internal(e.to_string()))?;
        let now = self.clock.now();
        let (decisions, durable) = {
            let mut state = self.state();
            if let Some(e) = state.cold().failure() {
                return Err(NotaryCallError::Internal(e.to_string()));
            }
            let decisions = state
                .decide_admitted(&batch, &digests, Some(&probe), now, admitted.may_issue, &admitted.refused)
                .map_err(|e| NotaryCallError::Internal(e.to_string()))?;
            let committed: Vec<u32> = decisions
                .iter()
                .enumerate()
                .filter(|(_, d)| matches!(d, Decision::Commit(_)))
                .filter_map(|(i, _)| u32::try_from(i).ok())
                .collect();
            let durable = if committed.is_empty() {
                self.journal.sync_point()
            } else {
                let record = NotaryRecord { batch, committed, committed_at: now };
                let bytes = record_bytes(batch_bytes, &record.committed, now)?;
                let pending = self.journal.append(bytes)?;
                state.apply_decided(&record, &decisions);
                pending
            };
            (decisions, durable)
        };
        let seq = durable.durable().await?;
        if seq > 0 && seq % self.snapshot_every == 0 {
            self.snapshot_in_background();
        }
        verdicts(decisions, self.key.as_ref())
    }

    /// The receipt of `tx`, if committed (after everything journaled is durable).
    pub async fn receipt(&self, tx: &TxId) -> Result<Option<Receipt>, NotaryCallError> {
        let (body, durable) = {
            let state = self.state();
            let body = state.lookup_committed(tx).map_err(|e| NotaryCallError::Internal(e.to_string()))?;
            (body, self.journal.sync_point())
        };
        durable.durable().await?;
        Ok(body.map(|b| Receipt::sign(b, self.key.as_ref())))
    }

    /// Writes a snapshot of the memory part of the state, after making the
    /// cold store durable (so nothing the journal then drops is lost). With a
    /// cold store that does not outlive the process, no snapshot is taken:
    /// the journal keeps every record.
    pub fn snapshot(&self) -> Result<(), NotaryError> {
        match self.capture() {
            Some(capture) => capture.write(&self.snapshot_turn),
            None => Ok(()),
        }
    }

    /// Captures a snapshot under the state's lock and writes it on a
    /// blocking thread: the batch that reached the interval is answered at
    /// once, and no runtime worker waits on the disk for the seconds a large
    /// live set and the cold store's sync can take. The journal keeps every
    /// record until the snapshot is written, so one that fails costs only a
    /// longer replay; it is logged and the next interval tries again.
    fn snapshot_in_background(&self) {
        let Some(capture) = self.capture() else { return };
        let turn = Arc::clone(&self.snapshot_turn);
        tokio::task::spawn_blocking(move || {
            let seq = capture.seq;
            let started = std::time::Instant::now();
            match capture.write(&turn) {
                Ok(()) => tracing::info!(seq, ms = started.elapsed().as_millis() as u64, "notary snapshot written"),
                Err(e) => tracing::error!(seq, "notary snapshot not written (the journal keeps its records): {e}"),
            }
        });
    }

    /// The state as a snapshot, with the journal position it covers; `None`
    /// with a cold store that does not outlive the process.
    fn capture(&self) -> Option<Capture> {
        let state = self.state();
        if !state.cold().durable() {
            return None;
        }
        Some(Capture {
            seq: self.journal.last_seq(),
            bytes: state.to_snapshot(),
            cold: Arc::clone(state.cold()),
            journal: self.journal.clone(),
        })
    }

    /// Counts: committed transactions, unspent and spent commitments (all history).
    pub fn stats(&self) -> (u64, usize, usize) {
        let state = self.state();
        let (unspent, spent) = state.counts();
        (state.committed_count(), unspent, spent)
    }

    /// Entries held in memory (live set and recent history).
    pub fn hot_counts(&self) -> HotCounts {
        self.state().hot_counts()
    }

    /// Moves all history to the cold store and waits for it (memory then
    /// holds only the live set). For tests and benches.
    pub fn flush_to_cold(&self) -> Result<(), NotaryError> {
        self.state().flush_to_cold()?;
        Ok(())
    }

    /// A copy of the engine state, for audits (shares the cold store).
    pub fn state_copy(&self) -> NotaryState {
        self.state().clone()
    }

    /// Stops: waits for everything journaled to be durable, then makes the
    /// cold store durable and releases it. Closing twice is harmless.
    pub fn close(&self) -> Result<(), NotaryError> {
        // A snapshot being written finishes first; one queued after this is
        // skipped.
        *self.snapshot_turn.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.journal.close()?;
        let cold = Arc::clone(self.state().cold());
        cold.close()?;
        Ok(())
    }
}

/// A snapshot captured under the state's lock, to be written outside it.
struct Capture {
    seq: u64,
    bytes: Vec<u8>,
    cold: Arc<ColdStore>,
    journal: Journal,
}

impl Capture {
    /// Writes the snapshot, after making the cold store durable (so nothing
    /// the journal then drops is lost), one at a time.
    fn write(self, turn: &Mutex<bool>) -> Result<(), NotaryError> {
        let closed = turn.lock().unwrap_or_else(|p| p.into_inner());
        if *closed {
            return Ok(());
        }
        // Every generation that left memory before the capture was written
        // before it was dropped; this makes those writes durable (and saves
        // the filter over them).
        self.cold.persist_for_snapshot(&self.bytes)?;
        self.journal.snapshot(self.seq, &self.bytes)?;
        Ok(())
    }
}

/// What the checks before the lock found about a batch.
pub(crate) struct Admitted {
    /// Whether the node may send claims without inputs (NBK only).
    pub(crate) may_issue: bool,
    /// Per claim: why it cannot commit whatever the state (an input not
    /// opened to its commitment, or not the submitter's without its host's
    /// consent).
    pub(crate) refused: Vec<Option<NotaryRejection>>,
}

/// Checks a batch before anything is decided: not empty, from a registered
/// participant who is its sender, signed by it; each claim's inputs opened
/// and hosted by the sender or by a host that consented (signatures checked
/// against the registry).
pub(crate) fn admit(
    participants: &Participants,
    from: &ParticipantId,
    batch: &NotariseBatch,
) -> Result<Admitted, BatchRefusal> {
    if batch.claims.is_empty() {
        return Err(BatchRefusal::Empty);
    }
    let node = participants.get(&batch.node).ok_or_else(|| BatchRefusal::UnknownNode(batch.node.clone()))?;
    if batch.node != *from || !batch.verify(&node.public_key, &Ed25519) {
        return Err(BatchRefusal::BadSignature(batch.node.clone()));
    }
    let refused = batch
        .claims
        .iter()
        .map(|claim| {
            let consented: Vec<&ParticipantId> = claim
                .consents
                .iter()
                .filter(|c| participants.get(&c.host).is_some_and(|p| c.verify(&claim.tx, &p.public_key, &Ed25519)))
                .map(|c| &c.host)
                .collect();
            claim.check_hosts(&batch.node, &consented).err()
        })
        .collect();
    Ok(Admitted {
        may_issue: dtenge_net::authz::permits(node.role, dtenge_net::authz::Operation::NotaryIssue),
        refused,
    })
}

/// One verdict per decision, every receipt of the batch under one signature
/// of `key` (a Merkle root).
pub(crate) fn verdicts(decisions: Vec<Decision>, key: &dyn Signer) -> Result<Vec<Verdict>, NotaryCallError> {
    let bodies: Vec<ReceiptBody> = decisions
        .iter()
        .filter_map(|d| match d {
            Decision::Commit(body) | Decision::AlreadyCommitted(body) => Some(body.clone()),
            Decision::Reject(_) => None,
        })
        .collect();
    let mut receipts = Receipt::sign_all(bodies, key).into_iter();
    decisions
        .into_iter()
        .map(|d| match d {
            Decision::Commit(_) | Decision::AlreadyCommitted(_) => receipts
                .next()
                .map(Verdict::Committed)
                .ok_or_else(|| NotaryCallError::Internal("fewer receipts than commits".into())),
            Decision::Reject(r) => Ok(Verdict::Rejected(r)),
        })
        .collect()
}

/// Why a notary call failed.
#[derive(Debug, thiserror::Error)]
pub enum NotaryCallError {
    /// The batch was refused.
    #[error(transparent)]
    Refused(BatchRefusal),
    /// Storage failed: nothing was acknowledged.
    #[error("notary storage failed: {0}")]
    Store(#[from] StoreError),
    /// Something that should not happen.
    #[error("notary internal error: {0}")]
    Internal(String),
    /// This replica does not lead its group (the leader, if known): nothing was done.
    #[error("this notary replica does not lead the group; ask {0:?}")]
    NotLeader(Option<ParticipantId>),
    /// The group could not commit in time (no quorum reachable): the batch
    /// may still commit later; retrying it is safe.
    #[error("the notary group did not commit in time: {0}")]
    NoQuorum(String),
}

impl From<NotaryError> for NotaryCallError {
    fn from(e: NotaryError) -> Self {
        match e {
            NotaryError::Store(s) => NotaryCallError::Store(s),
            NotaryError::Replay(r) => NotaryCallError::Internal(r),
            NotaryError::Cold(c) => NotaryCallError::Internal(c.to_string()),
            NotaryError::Group(g) => NotaryCallError::Internal(g),
        }
    }
}

#[async_trait::async_trait]
impl Handler for NotaryService {
    async fn handle(&self, from: &ParticipantId, body: Vec<u8>) -> Result<Vec<u8>, HandlerError> {
        let request: NotaryRequest = dtenge_net::decode_request(&body)?;
        dtenge_net::authz::admit(&self.participants, from, &request)?;
        let txs = batch_txs(&request);
        let answer = match request {
            NotaryRequest::Notarise(batch) => match self.notarise(from, batch).await {
                Ok(verdicts) => {
                    record_decisions(&txs, &verdicts);
                    NotaryAnswer::Verdicts(verdicts)
                }
                Err(NotaryCallError::Refused(r)) => NotaryAnswer::Refused(r),
                Err(e) => return Err(HandlerError::Unavailable(e.to_string())),
            },
            NotaryRequest::Receipt(tx) => {
                NotaryAnswer::Receipt(self.receipt(&tx).await.map_err(|e| HandlerError::Unavailable(e.to_string()))?)
            }
            NotaryRequest::Status => {
                let me = self
                    .participants
                    .all()
                    .find(|p| p.public_key == self.key.public_key())
                    .map(|p| p.id.clone())
                    .ok_or_else(|| HandlerError::Unavailable("the notary's key is not in the registry".into()))?;
                let state = self.state();
                NotaryAnswer::Status(NotaryStatus {
                    id: me.clone(),
                    leader: Some(me),
                    applied: self.journal.last_seq(),
                    committed: state.committed_count(),
                    digest: state.unspent_digest(),
                })
            }
            NotaryRequest::Group(_) => {
                return Err(HandlerError::BadRequest("this notary is not a replica of a group".into()));
            }
        };
        Ok(borsh::to_vec(&answer).unwrap_or_default())
    }
}

/// Metrics of one answered batch: its size and each decision by outcome
/// (`committed`, or the rejection's kind: `conflict` is a double-spend
/// attempt); a debug line per decision names its transaction (in the trace
/// of the request that carried it: see `dtenge_net::telemetry`).
pub(crate) fn record_decisions(txs: &[TxId], verdicts: &[Verdict]) {
    metrics::histogram!("dtenge_notary_batch_size").record(verdicts.len() as f64);
    for (tx, verdict) in txs.iter().zip(verdicts) {
        let outcome = match verdict {
            Verdict::Committed(_) => "committed",
            Verdict::Rejected(NotaryRejection::Conflict { .. }) => "conflict",
            Verdict::Rejected(NotaryRejection::UnknownInput { .. }) => "unknown_input",
            Verdict::Rejected(NotaryRejection::OutsideWindow { .. }) => "outside_window",
            Verdict::Rejected(NotaryRejection::NotHost { .. } | NotaryRejection::BadOpening { .. }) => "not_host",
            Verdict::Rejected(_) => "rejected",
        };
        metrics::counter!("dtenge_notary_decisions_total", "outcome" => outcome).increment(1);
        tracing::debug!(%tx, outcome, "notary decision");
    }
}

/// The transactions of a notarise request, in order (for [`record_decisions`]).
pub(crate) fn batch_txs(request: &NotaryRequest) -> Vec<TxId> {
    match request {
        NotaryRequest::Notarise(batch) => batch.claims.iter().map(|c| c.tx).collect(),
        _ => Vec::new(),
    }
}

/// The journal bytes of a [`NotaryRecord`] from its tag and its batch's
/// encoding: borsh encodes a struct as its fields one after another, so this
/// equals `format::RECORD.encode(&NotaryRecord { batch, committed, committed_at })`.
fn record_bytes(mut batch_bytes: Vec<u8>, committed: &[u32], at: Timestamp) -> Result<Vec<u8>, NotaryCallError> {
    let internal = |e: std::io::Error| NotaryCallError::Internal(e.to_string());
    committed.serialize(&mut batch_bytes).map_err(internal)?;
    at.serialize(&mut batch_bytes).map_err(internal)?;
    Ok(batch_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::TxClaim;
    use dtenge_crypto::{SecretKey, hash};
    use dtenge_types::{Commitment, TimeWindow, TxId};

    #[test]
    fn the_record_built_from_the_batch_bytes_is_the_record_encoded_whole() {
        let key = SecretKey::from_seed([3; 32]);
        let node = ParticipantId::new("STB1").unwrap_or_else(|e| panic!("{e}"));
        let claim = |n: u8| TxClaim {
            tx: TxId(hash(b"t", &[&[n]])),
            inputs: vec![Commitment(hash(b"i", &[&[n]]))].try_into().unwrap_or_default(),
            outputs: vec![Commitment(hash(b"o", &[&[n]]))].try_into().unwrap_or_default(),
            window: TimeWindow { not_before: Timestamp(1), not_after: Timestamp(9) },
            openings: Default::default(),
            consents: Default::default(),
        };
        let batch =
            NotariseBatch::signed(node, vec![claim(1), claim(2), claim(3)], &key).unwrap_or_else(|e| panic!("{e}"));
        for committed in [vec![], vec![1], vec![0, 2]] {
            let record = NotaryRecord { batch: batch.clone(), committed, committed_at: Timestamp(1_234) };
            let whole = crate::format::RECORD.encode(&record);
            let built = record_bytes(
                crate::format::RECORD.tag(&borsh::to_vec(&batch).unwrap_or_default()),
                &record.committed,
                Timestamp(1_234),
            )
            .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(built, whole);
            let (decoded, version) = crate::format::decode_record(&built).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!((decoded, version), (record, 1));
        }
    }
}
