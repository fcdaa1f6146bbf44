//! The notary as a running service: the engine behind a lock, a journal with
//! group commit, and the message interface other participants call.
//!
//! ```text
//!  Notarise(batch) ─► check sender = batch.node, verify batch signature
//!                  ─► lock { decide; apply; journal.append(record) }   (order of the log = order of decisions)
//!                  ─► wait until durable (the record, or everything before it)
//!                  ─► sign receipts, answer
//! ```
//!
//! Nothing is answered before the record that decided it is durable: a
//! conflict or a repeat is answered only once everything journaled before the
//! decision is durable, so no answer ever depends on a spend a crash could
//! undo.

use std::sync::{Arc, Mutex, MutexGuard};

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_crypto::{Ed25519, Signer};
use dtenge_net::{Clock, Handler, HandlerError, Participants, Role};
use dtenge_store::{Journal, Recovery, StoreError};
use dtenge_types::{ParticipantId, TxId};

use crate::engine::{Decision, NotaryRecord, NotaryState};
use crate::messages::{BatchRefusal, NotariseBatch, Receipt, ReceiptBody, Verdict};

/// Take a snapshot after this many journaled batches.
pub const SNAPSHOT_EVERY_RECORDS: u64 = 100_000;

/// Requests the notary serves.
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
pub enum NotaryRequest {
    /// Notarise a batch of transactions.
    Notarise(NotariseBatch),
    /// The receipt of a committed transaction, if any.
    Receipt(TxId),
}

/// The notary's answers.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
#[allow(clippy::large_enum_variant)] // a message, decoded once per call and not kept
pub enum NotaryAnswer {
    /// One verdict per claim, in order.
    Verdicts(Vec<Verdict>),
    /// The whole batch was refused.
    Refused(BatchRefusal),
    /// The receipt asked for (None: not committed).
    Receipt(Option<Receipt>),
}

/// Why the notary service cannot run.
#[derive(Debug, thiserror::Error)]
pub enum NotaryError {
    /// Its storage failed; it must stop rather than answer without durability.
    #[error("notary storage: {0}")]
    Store(#[from] StoreError),
    /// Its journal or snapshot does not replay.
    #[error("notary journal is damaged: {0}")]
    Replay(String),
}

/// The running notary.
pub struct NotaryService {
    key: Arc<dyn Signer>,
    participants: Arc<Participants>,
    clock: Arc<dyn Clock>,
    journal: Journal,
    state: Mutex<NotaryState>,
}

impl NotaryService {
    /// Recovers the state from `recovery` (snapshot, then records) and serves
    /// with `journal`.
    pub fn recover(
        key: Arc<dyn Signer>,
        participants: Arc<Participants>,
        clock: Arc<dyn Clock>,
        journal: Journal,
        recovery: Recovery,
    ) -> Result<Arc<NotaryService>, NotaryError> {
        let mut state = match &recovery.snapshot {
            Some((_, bytes)) => NotaryState::from_snapshot(bytes).map_err(NotaryError::Replay)?,
            None => NotaryState::new(),
        };
        for (seq, bytes) in &recovery.records {
            let record: NotaryRecord = borsh::from_slice(bytes)
                .map_err(|e| NotaryError::Replay(format!("record {seq} does not decode: {e}")))?;
            state.apply(&record);
        }
        Ok(Arc::new(NotaryService { key, participants, clock, journal, state: Mutex::new(state) }))
    }

    fn state(&self) -> MutexGuard<'_, NotaryState> {
        // A panic while holding the lock means a broken invariant; the state
        // is still the last fully applied one, as apply panics before mutating.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notarises a batch sent by `from`.
    pub async fn notarise(&self, from: &ParticipantId, batch: NotariseBatch) -> Result<Vec<Verdict>, NotaryCallError> {
        if batch.claims.is_empty() {
            return Err(NotaryCallError::Refused(BatchRefusal::Empty));
        }
        let node = self
            .participants
            .get(&batch.node)
            .ok_or_else(|| NotaryCallError::Refused(BatchRefusal::UnknownNode(batch.node.clone())))?;
        if batch.node != *from {
            return Err(NotaryCallError::Refused(BatchRefusal::BadSignature(batch.node.clone())));
        }
        if !batch.verify(&node.public_key, &Ed25519) {
            return Err(NotaryCallError::Refused(BatchRefusal::BadSignature(batch.node.clone())));
        }
        let may_issue = node.role == Role::Nbk;
        let digests = crate::engine::digests(&batch);
        let now = self.clock.now();
        let (decisions, durable) = {
            let mut state = self.state();
            let decisions = state.decide_digested(&batch, &digests, now, may_issue);
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
                let bytes = borsh::to_vec(&record).map_err(|e| NotaryCallError::Internal(e.to_string()))?;
                let pending = self.journal.append(bytes)?;
                state.apply(&record);
                pending
            };
            (decisions, durable)
        };
        let seq = durable.durable().await?;
        if seq > 0 && seq % SNAPSHOT_EVERY_RECORDS == 0 {
            self.snapshot()?;
        }
        // One signature for every receipt of the batch (a Merkle root).
        let bodies: Vec<ReceiptBody> = decisions
            .iter()
            .filter_map(|d| match d {
                Decision::Commit(body) | Decision::AlreadyCommitted(body) => Some(body.clone()),
                Decision::Reject(_) => None,
            })
            .collect();
        let mut receipts = Receipt::sign_all(bodies, self.key.as_ref()).into_iter();
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

    /// The receipt of `tx`, if committed (after everything journaled is durable).
    pub async fn receipt(&self, tx: &TxId) -> Result<Option<Receipt>, NotaryCallError> {
        let (body, durable) = {
            let state = self.state();
            (state.committed(tx).cloned(), self.journal.sync_point())
        };
        durable.durable().await?;
        Ok(body.map(|b| Receipt::sign(b, self.key.as_ref())))
    }

    /// Writes a snapshot of the current state.
    pub fn snapshot(&self) -> Result<(), NotaryError> {
        let (seq, bytes) = {
            let state = self.state();
            (self.journal.last_seq(), state.to_snapshot())
        };
        self.journal.snapshot(seq, &bytes)?;
        Ok(())
    }

    /// Counts: committed transactions, unspent and spent commitments.
    pub fn stats(&self) -> (u64, usize, usize) {
        let state = self.state();
        let (unspent, spent) = state.counts();
        (state.committed_count(), unspent, spent)
    }

    /// A copy of the engine state, for audits.
    pub fn state_copy(&self) -> NotaryState {
        self.state().clone()
    }

    /// Stops: waits for everything journaled to be durable.
    pub fn close(&self) -> Result<(), NotaryError> {
        self.journal.close()?;
        Ok(())
    }
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
}

impl From<NotaryError> for NotaryCallError {
    fn from(e: NotaryError) -> Self {
        match e {
            NotaryError::Store(s) => NotaryCallError::Store(s),
            NotaryError::Replay(r) => NotaryCallError::Internal(r),
        }
    }
}

#[async_trait::async_trait]
impl Handler for NotaryService {
    async fn handle(&self, from: &ParticipantId, body: Vec<u8>) -> Result<Vec<u8>, HandlerError> {
        let request: NotaryRequest = dtenge_types::encoding::decode(&body, dtenge_net::MAX_BODY_BYTES)
            .map_err(|e| HandlerError::BadRequest(format!("not a notary request: {e}")))?;
        let answer = match request {
            NotaryRequest::Notarise(batch) => match self.notarise(from, batch).await {
                Ok(verdicts) => NotaryAnswer::Verdicts(verdicts),
                Err(NotaryCallError::Refused(r)) => NotaryAnswer::Refused(r),
                Err(e) => return Err(HandlerError::Unavailable(e.to_string())),
            },
            NotaryRequest::Receipt(tx) => {
                NotaryAnswer::Receipt(self.receipt(&tx).await.map_err(|e| HandlerError::Unavailable(e.to_string()))?)
            }
        };
        Ok(borsh::to_vec(&answer).unwrap_or_default())
    }
}
