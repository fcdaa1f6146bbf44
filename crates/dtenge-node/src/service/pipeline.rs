//! The one pipeline every outgoing transaction follows, and the only place
//! that journals `Prepared` and `Committed`:
//!
//! ```text
//!  Plan ─► attest ─► sign ─► validate ─► journal Prepared (durable) ─► notarise
//!       ─► settle: journal Committed / Aborted ─► deliver to payees' nodes ─► confirm to the oracle
//! ```

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use dtenge_crypto::{Ed25519, PublicKey, SecretKey};
use dtenge_ledger::Context;
use dtenge_net::{Bus, Handler, HandlerError, Role};
use dtenge_notary::{NotaryRejection, Receipt, TxClaim, Verdict};
use dtenge_oracle::model::{AttestRequest, ContractPurpose, EventState};
use dtenge_oracle::service::{NoticeKind, OracleAnswer, OracleRequest};
use dtenge_oracle::{OracleCode, OracleError, OracleRefusal};
use dtenge_types::{
    Address, Amount, CbsRef, ContractNo, Encumbrance, EventId, Hold, IinBin, InvoiceId, MandateId, MandateTerms,
    Marking, MarkingRule, Memo, ParameterId, ParticipantId, Timestamp, Token, TokenId, Transaction, TxBody, TxId,
};

use super::plan::Plan;
use super::protocol::{LinkAnswer, LinkRequest, MAX_LINK_BATCH, NodeAnswer, NodeRequest};
use super::{NOTARY_ATTEMPTS, NodeService, PayTo, TxOutcome, durable, standard_dt, store};
use crate::NodeError;
use crate::accounts::{Account, AccountId, Custody, Holder, KycState};
use crate::archive::Archive;
use crate::build::{self, Draft, Payee};
use crate::directory::{DaEntry, DirectoryAnswer, DirectoryRefusal, DirectoryRequest};
use crate::guard::{self, Clearance, Cleared, Exemption, Outflow, Standing};
use crate::state::{HistoryEntry, NodeRecord, Notification, Outgoing, Status};
use crate::vault::Balances;

impl NodeService {
    pub(super) async fn execute(&self, plan: Plan) -> Result<TxOutcome, NodeError> {
        let id = plan.body.id();
        let input_ids: Vec<TokenId> = plan.body.inputs.to_vec();
        let attested = plan.attest.is_some();
        match self.prepare(plan).await {
            Ok((tx, inputs, account)) => self.submit(tx, inputs, account).await,
            Err(e) => {
                // A refused operation leaves nothing reserved: its tokens
                // here, and what the oracle's attestation held back.
                self.state().vault.unreserve(&input_ids, id);
                if attested {
                    self.abandon_attestation(id).await;
                }
                Err(e)
            }
        }
    }

    /// Tells the oracle that `tx`, which it attested, will never be
    /// notarised, so what it reserved for it (a contract's maximum, an
    /// e-invoice, held funds) is free for others at once.
    pub(super) async fn abandon_attestation(&self, tx: TxId) {
        match self.oracle(OracleRequest::Abandon { tx }).await {
            Ok(OracleAnswer::Done) => {}
            Ok(other) => {
                tracing::warn!(%tx, answer = ?other, "the oracle did not free the reservation now; it lapses when the window closes")
            }
            Err(e) => {
                tracing::warn!(%tx, error = %e, "the oracle did not free the reservation now; it lapses when the window closes")
            }
        }
    }

    /// Attests, signs, validates and journals `Prepared`.
    pub(super) async fn prepare(&self, plan: Plan) -> Result<(Transaction, Vec<Token>, AccountId), NodeError> {
        let mut tx = Transaction::unsigned(plan.body);
        if let Some(request) = plan.attest {
            let answer = self.oracle(OracleRequest::Attest { body: tx.body.clone(), request }).await?;
            match answer {
                OracleAnswer::Attestation(a) => tx.attestations.try_push(a)?,
                OracleAnswer::Refused(refusal) => return Err(NodeError::Oracle(refusal)),
                _ => return Err(NodeError::Unavailable("the oracle answered something else".into())),
            }
        }
        for key in &plan.signers {
            tx.sign(key)?;
        }
        let ctx = Context { now: self.clock.now(), params: &self.config.params };
        let mut checked = dtenge_ledger::check(&tx, &plan.inputs, &ctx)?;
        // The signatures this node has just made with its custodial keys are
        // right by construction (deterministic Ed25519 over the transaction
        // id), so only the others (oracle attestations) are verified here;
        // the payee's node verifies every signature again.
        let own: Vec<PublicKey> = plan.signers.iter().map(SecretKey::public_key).collect();
        checked.signatures.retain(|s| !own.contains(&s.public_key));
        dtenge_ledger::verify(&checked, &Ed25519)?;
        let mut clearance = plan.clearance;
        let prepared = NodeRecord::Prepared {
            tx: tx.clone(),
            inputs: plan.inputs.clone(),
            account: plan.account.clone(),
            at: self.clock.now(),
        };
        self.record_cleared(vec![prepared], Some(&mut clearance)).await?;
        Ok((tx, plan.inputs, plan.account))
    }

    /// Notarises a prepared transaction and sees it through.
    pub(super) async fn submit(&self, tx: Transaction, inputs: Vec<Token>, _account: AccountId) -> Result<TxOutcome, NodeError> {
        let id = tx.id();
        let claim = self.claim_of(&tx, &inputs)?;
        let mut last_error = None;
        for _ in 0..NOTARY_ATTEMPTS {
            match self.notarise(&claim).await {
                Ok(verdict) => return self.settle(&tx, &inputs, &claim, verdict).await,
                Err(e) => last_error = Some(e),
            }
        }
        tracing::warn!(tx = %id, error = ?last_error, "notary unreachable; the transaction stays under review and is resolved later");
        Ok(TxOutcome { tx: id, status: Status::UnderReview, notary_seq: None })
    }

    pub(super) async fn notarise(&self, claim: &TxClaim) -> Result<Verdict, NodeError> {
        self.notary_batcher.call(claim.clone()).await
    }

    pub(super) async fn settle(
        &self,
        tx: &Transaction,
        inputs: &[Token],
        claim: &TxClaim,
        verdict: Verdict,
    ) -> Result<TxOutcome, NodeError> {
        let id = tx.id();
        match verdict {
            Verdict::Committed(receipt) => {
                self.notary
                    .verify(&receipt, claim)
                    .map_err(|e| NodeError::Unavailable(format!("bad notary receipt: {e}")))?;
                let deliver_to = self.recipients_of(tx, inputs);
                let bytes = borsh::to_vec(&receipt).map_err(|e| NodeError::Storage(e.to_string()))?;
                let mut records =
                    vec![NodeRecord::Committed { tx: id, receipt: bytes, deliver_to, at: self.clock.now() }];
                records.extend(self.notifications_for_own(tx, inputs));
                // The notary's commit is already durable: deliver while our
                // own `Committed` record is being made durable. A crash in
                // between leaves `Prepared` in the journal, which
                // `resolve_in_flight` settles from the notary's receipt
                // (and delivers again; payees take a delivery once).
                let pending = self.append(records)?;
                let ((), durable) = tokio::join!(self.deliver_pending(id), durable(pending));
                durable?;
                if !tx.attestations.is_empty() {
                    let _ = self.oracle(OracleRequest::Confirm { tx: id }).await;
                }
                Ok(TxOutcome { tx: id, status: Status::Success, notary_seq: Some(receipt.body.seq) })
            }
            Verdict::Rejected(rejection) => {
                let spent_elsewhere = match &rejection {
                    NotaryRejection::Conflict { input, .. } | NotaryRejection::UnknownInput { input, .. } => {
                        tx.body.inputs.get(*input).copied().into_iter().collect()
                    }
                    _ => Vec::new(),
                };
                let reason = rejection.to_string();
                self.record(vec![NodeRecord::Aborted { tx: id, reason: reason.clone(), spent_elsewhere }]).await?;
                if !tx.attestations.is_empty() {
                    self.abandon_attestation(id).await;
                }
                Err(NodeError::NotaryRejected(rejection))
            }
        }
    }

    /// Nodes that must see a committed transaction: payees' hosts, hold
    /// recipients' nodes, and the initiators of markings it touches.
    pub(super) fn recipients_of(&self, tx: &Transaction, inputs: &[Token]) -> BTreeSet<ParticipantId> {
        let mut to = BTreeSet::new();
        for t in tx.body.outputs.iter().chain(inputs.iter()) {
            to.insert(t.host.clone());
            if let Some(Encumbrance::Hold(h)) = &t.encumbrance {
                to.insert(h.recipient_node.clone());
            }
            match &t.marking {
                Some(Marking::Address(m)) => {
                    to.insert(m.rule.initiator_node.clone());
                }
                Some(Marking::Parameter(m)) => {
                    to.insert(m.initiator_node.clone());
                }
                _ => {}
            }
        }
        to.remove(&self.config.id);
        to
    }

    /// Notifications for local DAs in a transaction this node committed.
    pub(super) fn notifications_for_own(&self, tx: &Transaction, inputs: &[Token]) -> Vec<NodeRecord> {
        let state = self.state();
        let now = self.clock.now();
        let mut out = Vec::new();
        for t in tx.body.outputs.iter() {
            // An output to an owner of an input is change, not an incoming payment.
            let change = inputs.iter().any(|i| i.owner == t.owner);
            if let Some(account) = state.credited_account(t)
                && !change
            {
                out.push(NodeRecord::Notified {
                    account: account.id.clone(),
                    notification: Notification {
                        at: now,
                        text: format!("Incoming {} DT ({})", t.amount, tx.body.command.name()),
                        tx: Some(tx.id()),
                    },
                });
            }
        }
        out
    }

    /// Sends a committed transaction to every node still waiting for it.
    pub(super) async fn deliver_pending(&self, id: TxId) {
        let (targets, tx, inputs, receipt) = {
            let state = self.state();
            let Some(o) = state.unsettled_tx(&id) else { return };
            let Some(bytes) = &o.receipt else { return };
            let Ok(receipt) = borsh::from_slice::<Receipt>(bytes) else { return };
            (o.undelivered.clone(), o.tx.clone(), o.inputs.clone(), receipt)
        };
        for to in targets {
            let request = LinkRequest::Deliver {
                tx: Box::new(tx.clone()),
                inputs: inputs.clone(),
                receipt: Box::new(receipt.clone()),
            };
            match self.call_link(&to, request).await {
                Ok(LinkAnswer::Accepted) => {
                    // Not waited for: if a crash loses it, the node delivers
                    // again and the payee, who already has it, accepts the
                    // repeat without a second credit. Waiting would put one
                    // more fsync of this node's journal on every payment.
                    if let Err(e) = self.append(vec![NodeRecord::Delivered { tx: id, to: to.clone() }]) {
                        tracing::warn!(tx = %id, %to, error = %e, "delivered, but not journaled; it will be delivered again");
                    }
                }
                Ok(LinkAnswer::Refused(why)) => tracing::error!(tx = %id, %to, %why, "delivery refused"),
                Ok(LinkAnswer::Unavailable(why)) => tracing::info!(tx = %id, %to, %why, "delivery deferred"),
                Err(e) => tracing::info!(tx = %id, %to, error = %e, "delivery deferred"),
            }
        }
    }

    /// The notary claim for `tx`, with the consent of another host if one
    /// was given.
    pub(super) fn claim_of(&self, tx: &Transaction, inputs: &[Token]) -> Result<TxClaim, NodeError> {
        let claim = TxClaim::of(tx, inputs)?;
        let consent = self.consents.lock().unwrap_or_else(|p| p.into_inner()).1.get(&claim.tx).cloned();
        Ok(match consent {
            Some(consent) => claim.with_consent(consent)?,
            None => claim,
        })
    }

    pub(super) async fn notary_receipt(&self, tx: &TxId) -> Result<Option<Receipt>, NodeError> {
        self.notary.receipt(tx).await.map_err(|e| NodeError::Unavailable(format!("notary: {e}")))
    }

    pub(crate) async fn submit_prepared(
        &self,
        tx: Transaction,
        inputs: Vec<Token>,
        account: AccountId,
    ) -> Result<TxOutcome, NodeError> {
        self.submit(tx, inputs, account).await
    }
}
