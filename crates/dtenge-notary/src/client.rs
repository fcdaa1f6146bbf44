//! How a participant reaches the notary, whether it is one process or a
//! replicated group: the node's pipeline calls [`NotaryClient::notarise`] and
//! [`NotaryClient::verify`] and knows nothing of replicas.
//!
//! ```text
//!  notarise(claims) ─► sign the batch once ─► ask the replica believed to lead
//!      Verdicts / Refused ─────────────────────────────► answer (remember the leader)
//!      NotLeader(Some(l)) ─► ask l at once
//!      NotLeader(None), Unavailable, unreachable, timeout ─► ask the next replica
//!                          (a pause after as many calls as replicas, until FAILOVER_BUDGET)
//! ```
//!
//! A retry sends the same signed batch: a claim that committed before
//! (the first answer was lost, or the old leader committed it as it died)
//! gets the same receipt body, so retrying never spends twice.
//!
//! Receipts are accepted from any replica of the group (every participant
//! with the notary role): the leader that answered signs with its own key
//! (see [`crate::group`] for why).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dtenge_crypto::{Ed25519, PublicKey, Signer};
use dtenge_net::{Bus, HandlerError, NetError, Participants, Role};
use dtenge_types::{ParticipantId, TxId};

use crate::messages::{
    BatchRefusal, NotariseBatch, Receipt, ReceiptError, ReceiptVerifier, RootCheck, TxClaim, Verdict,
};
use crate::protocol::{NotaryAnswer, NotaryRequest};

/// Longest a call keeps looking for a leader of a group (a new leader is
/// normally elected within one election timeout, under a second).
pub const FAILOVER_BUDGET: Duration = Duration::from_secs(5);
/// Pause after as many calls as there are replicas without an answer
/// (redirects included: a follower may point at a leader that just died).
pub const ROUND_PAUSE: Duration = Duration::from_millis(50);
/// Most calls one request makes, whatever the budget.
pub const MAX_CALLS: usize = 1_000;

/// Why the notary gave no verdicts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotaryClientError {
    /// No replica answered within the budget (nothing is known of the batch:
    /// ask again later, or ask for the receipts).
    #[error("notary unavailable: {0}")]
    Unavailable(String),
    /// The whole batch was refused.
    #[error("notary refused the batch: {0}")]
    Refused(BatchRefusal),
    /// The batch could not be made (too many claims).
    #[error("notary batch: {0}")]
    Batch(String),
    /// An answer that does not fit the request.
    #[error("notary answered something else: {0}")]
    Unexpected(String),
}

/// A participant's link to the notary (one process or a replicated group).
pub struct NotaryClient {
    bus: Arc<dyn Bus>,
    key: Arc<dyn Signer>,
    replicas: Vec<ParticipantId>,
    keys: Vec<PublicKey>,
    /// Index in `replicas` of the replica that answered last.
    leader: AtomicUsize,
    receipts: ReceiptVerifier,
}

impl NotaryClient {
    /// A client over `bus` (bound to this participant) for the notary
    /// replicas `participants` lists (every participant with the notary
    /// role, in registry order).
    pub fn new(bus: Arc<dyn Bus>, key: Arc<dyn Signer>, participants: &Participants) -> NotaryClient {
        let notaries = participants.with_role(Role::Notary);
        NotaryClient {
            bus,
            key,
            replicas: notaries.iter().map(|p| p.id.clone()).collect(),
            keys: notaries.iter().map(|p| p.public_key).collect(),
            leader: AtomicUsize::new(0),
            receipts: ReceiptVerifier::default(),
        }
    }

    /// The participant this client speaks for.
    pub fn me(&self) -> &ParticipantId {
        self.bus.me()
    }

    /// The replicas, in registry order.
    pub fn replicas(&self) -> &[ParticipantId] {
        &self.replicas
    }

    /// The replica that answered last (the leader, for a group).
    pub fn leader(&self) -> Option<&ParticipantId> {
        self.replicas.get(self.leader.load(Ordering::Relaxed))
    }

    /// Signs `claims` as one batch and has the notary decide them: one
    /// verdict per claim, in order.
    pub async fn notarise(&self, claims: Vec<TxClaim>) -> Result<Vec<Verdict>, NotaryClientError> {
        let count = claims.len();
        let batch = NotariseBatch::signed(self.bus.me().clone(), claims, self.key.as_ref())
            .map_err(|e| NotaryClientError::Batch(e.to_string()))?;
        let body =
            borsh::to_vec(&NotaryRequest::Notarise(batch)).map_err(|e| NotaryClientError::Batch(e.to_string()))?;
        match self.call(body).await? {
            NotaryAnswer::Verdicts(v) if v.len() == count => Ok(v),
            NotaryAnswer::Refused(r) => Err(NotaryClientError::Refused(r)),
            other => Err(NotaryClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// The receipt of `tx` if the notary committed it (`None`: it did not,
    /// as of the leader's committed log).
    pub async fn receipt(&self, tx: &TxId) -> Result<Option<Receipt>, NotaryClientError> {
        let body = borsh::to_vec(&NotaryRequest::Receipt(*tx)).map_err(|e| NotaryClientError::Batch(e.to_string()))?;
        match self.call(body).await? {
            NotaryAnswer::Receipt(r) => Ok(r),
            other => Err(NotaryClientError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Checks that `receipt` proves `claim` committed: signed by a replica
    /// of the notary, matching the claim's commitments.
    pub fn verify(&self, receipt: &Receipt, claim: &TxClaim) -> Result<(), ReceiptError> {
        if !self.keys.contains(&receipt.notary) {
            return Err(ReceiptError::WrongNotary);
        }
        self.receipts.verify(receipt, &receipt.notary, claim, &Ed25519)
    }

    /// As [`Self::verify`], leaving the root's signature for later: `None`
    /// if this client has verified that root before, else the signature to
    /// verify in a batch with others ([`Self::verify_batch_with`]).
    pub fn check_root(&self, receipt: &Receipt, claim: &TxClaim) -> Result<Option<RootCheck>, ReceiptError> {
        if !self.keys.contains(&receipt.notary) {
            return Err(ReceiptError::WrongNotary);
        }
        self.receipts.check_root(receipt, &receipt.notary, claim)
    }

    /// [`ReceiptVerifier::verify_batch_with`] over this client's verifier.
    pub fn verify_batch_with(
        &self,
        others: &[dtenge_crypto::VerifyItem<'_>],
        roots: &[&RootCheck],
        verifier: &dyn dtenge_crypto::Verifier,
    ) -> (Vec<usize>, Vec<bool>) {
        self.receipts.verify_batch_with(others, roots, verifier)
    }

    /// Sends `body` until a replica that can answer does (see the module docs).
    async fn call(&self, body: Vec<u8>) -> Result<NotaryAnswer, NotaryClientError> {
        let count = self.replicas.len();
        if count == 0 {
            return Err(NotaryClientError::Unavailable("no notary in the registry".into()));
        }
        let started = tokio::time::Instant::now();
        let mut at = self.leader.load(Ordering::Relaxed) % count;
        let mut calls_since_pause = 0usize;
        let mut last = String::new();
        for _ in 0..MAX_CALLS {
            if calls_since_pause >= count {
                calls_since_pause = 0;
                tokio::time::sleep(ROUND_PAUSE).await;
            }
            calls_since_pause += 1;
            let to = &self.replicas[at];
            match self.bus.call(to, body.clone()).await {
                Ok(bytes) => match dtenge_types::encoding::decode::<NotaryAnswer>(&bytes, dtenge_net::MAX_BODY_BYTES) {
                    Ok(NotaryAnswer::NotLeader(Some(leader))) if leader != *to => {
                        last = format!("{to} redirected to {leader}");
                        if let Some(i) = self.replicas.iter().position(|r| *r == leader) {
                            at = i;
                            continue;
                        }
                    }
                    Ok(NotaryAnswer::NotLeader(_)) => last = format!("{to} knows no leader"),
                    Ok(answer) => {
                        self.leader.store(at, Ordering::Relaxed);
                        return Ok(answer);
                    }
                    Err(e) => return Err(NotaryClientError::Unexpected(format!("{to}: {e}"))),
                },
                // Down, cut off, or without a quorum: another replica may lead.
                Err(e @ (NetError::Unreachable { .. } | NetError::Timeout { .. }))
                | Err(e @ NetError::Refused(HandlerError::Unavailable(_))) => last = format!("{to}: {e}"),
                Err(e) => return Err(NotaryClientError::Unavailable(format!("{to}: {e}"))),
            }
            if count == 1 || started.elapsed() >= FAILOVER_BUDGET {
                break;
            }
            at = (at + 1) % count;
        }
        Err(NotaryClientError::Unavailable(last))
    }
}
