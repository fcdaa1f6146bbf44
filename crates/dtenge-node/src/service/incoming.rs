//! What other nodes send this node: deliveries of committed transactions
//! (one or a batch, verified together), payee pre-checks, PvP legs,
//! conversions, NBK's policy and report requests.

use dtenge_crypto::Ed25519;
use dtenge_ledger::Context;
use dtenge_net::{Handler, HandlerError, Role};
use dtenge_notary::{Receipt, ReceiptError, RootCheck, TxClaim};
use dtenge_types::{Address, Amount, Encumbrance, ParticipantId, Token, Transaction, TxId};

use super::protocol::{MAX_LINK_BATCH, NodeAnswer, NodeRequest, PeerAnswer, PeerRequest};
use super::{NodeService, store};
use crate::NodeError;
use crate::state::{Message, NodeRecord, Notification};

#[async_trait::async_trait]
impl Handler for NodeService {
    async fn handle(&self, from: &ParticipantId, body: Vec<u8>) -> Result<Vec<u8>, HandlerError> {
        let request: NodeRequest = dtenge_net::decode_request(&body)?;
        dtenge_net::authz::admit(&self.participants, from, &request)?;
        let answer = match request {
            NodeRequest::Deliver { tx, inputs, receipt } => match self.receive(from, *tx, inputs, receipt).await {
                Ok(()) => NodeAnswer::Accepted,
                Err(NodeError::Storage(e)) | Err(NodeError::Unavailable(e)) => {
                    return Err(HandlerError::Unavailable(e));
                }
                Err(e) => NodeAnswer::Refused(e.refusal()),
            },
            NodeRequest::Convert { kind, amount, bank_address, funding_tx } => {
                match self.accept_conversion(from, kind, amount, bank_address, funding_tx).await {
                    Ok(request) => NodeAnswer::Conversion(Box::new(request)),
                    Err(NodeError::Storage(e)) | Err(NodeError::Unavailable(e)) => {
                        return Err(HandlerError::Unavailable(e));
                    }
                    Err(e) => NodeAnswer::Refused(e.refusal()),
                }
            }
            NodeRequest::PvpPropose { body, inputs, counterparty, quote, quote_amount } => {
                match self.cosign_pvp(from, *body, inputs, counterparty, quote, quote_amount).await {
                    Ok(c) => NodeAnswer::Pvp(Box::new(c)),
                    Err(NodeError::Storage(e)) | Err(NodeError::Unavailable(e)) => {
                        return Err(HandlerError::Unavailable(e));
                    }
                    Err(e) => NodeAnswer::Refused(e.refusal()),
                }
            }
            NodeRequest::PvpAbandon { tx } => match self.abandon_cosigned(from, tx) {
                Ok(()) => NodeAnswer::Accepted,
                Err(e) => NodeAnswer::Refused(e.refusal()),
            },
            NodeRequest::CanReceive { address, amount } => match self.accepts_incoming(&address, amount).await {
                Ok(()) => NodeAnswer::Accepted,
                Err(NodeError::Storage(e)) | Err(NodeError::Unavailable(e)) => {
                    return Err(HandlerError::Unavailable(e));
                }
                Err(e) => NodeAnswer::Refused(e.refusal()),
            },
            NodeRequest::Lease { address, amount } => match self.give_lease(from, &address, amount).await {
                Ok(Some(lease)) => NodeAnswer::Lease(lease),
                Ok(None) => NodeAnswer::Accepted,
                Err(NodeError::Storage(e)) | Err(NodeError::Unavailable(e)) => {
                    return Err(HandlerError::Unavailable(e));
                }
                Err(e) => NodeAnswer::Refused(e.refusal()),
            },
            NodeRequest::LeaseEnd { address } => {
                self.leases().end(from, &address);
                NodeAnswer::Accepted
            }
            NodeRequest::Policy(policy) => match self.adopt_policy(from, *policy).await {
                Ok(()) => NodeAnswer::Accepted,
                Err(NodeError::Storage(e)) => return Err(HandlerError::Unavailable(e)),
                Err(e) => NodeAnswer::Refused(e.refusal()),
            },
            NodeRequest::Report { from: start, to, threshold } => {
                if self.participants.get(from).is_some_and(|p| p.role == Role::Nbk) {
                    match self.bank_report(start, to, threshold) {
                        Ok(report) => NodeAnswer::Report(Box::new(report)),
                        Err(e) => NodeAnswer::Refused(e.refusal()),
                    }
                } else {
                    NodeAnswer::Refused(
                        NodeError::Forbidden(format!("{from} is not NBK: reports go to the regulator only")).refusal(),
                    )
                }
            }
            NodeRequest::Batch(items) => {
                if items.len() > MAX_LINK_BATCH {
                    return Err(HandlerError::BadRequest(format!(
                        "a batch carries at most {MAX_LINK_BATCH} items, this one {}",
                        items.len()
                    )));
                }
                NodeAnswer::Batch(self.handle_batch(from, items).await)
            }
            NodeRequest::OfflineDeposit { chain } => self.take_deposit(*chain).await,
            NodeRequest::StablecoinCount { stablecoin } => match self.stablecoin_count(stablecoin) {
                Ok(counts) => NodeAnswer::StablecoinCount(counts),
                Err(e) => NodeAnswer::Refused(e.refusal()),
            },
            NodeRequest::ConversionStatus { id } => match self.conversion(&id) {
                Ok(request) if request.bank == *from => NodeAnswer::Conversion(Box::new(request)),
                Ok(_) => {
                    NodeAnswer::Refused(NodeError::Forbidden(format!("request {id} belongs to another bank")).refusal())
                }
                Err(e) => NodeAnswer::Refused(e.refusal()),
            },
        };
        Ok(borsh::to_vec(&answer).unwrap_or_default())
    }
}

impl NodeService {
    /// Refuses a transaction that names this node as the host of an
    /// address the directory gives to another node or to none: a token is
    /// credited only to the DA the directory names.
    pub(super) async fn outputs_hosted_here(&self, tx: &Transaction) -> Result<(), NodeError> {
        for t in tx.body.outputs.iter().filter(|t| t.host == self.config.id) {
            self.ensure_hosted_here(&t.owner).await?;
        }
        Ok(())
    }

    /// Refuses `address` unless the directory gives it to this node.
    pub(super) async fn ensure_hosted_here(&self, address: &Address) -> Result<(), NodeError> {
        if self.hosted_here(address).await? { Ok(()) } else { Err(NodeError::NotHostedHere(address.to_string())) }
    }

    /// Whether `address`, which another node means to pay, is a DA of this
    /// node (as the directory says) that may receive `amount` now.
    pub(super) async fn accepts_incoming(&self, address: &Address, amount: Amount) -> Result<(), NodeError> {
        self.ensure_hosted_here(address).await?;
        let _turn = self.turn().await;
        self.incoming_check(address, amount)
    }

    /// Accepts a committed transaction from another node.
    pub async fn receive(
        &self,
        from: &ParticipantId,
        tx: Transaction,
        inputs: Vec<Token>,
        receipt: Receipt,
    ) -> Result<(), NodeError> {
        let Some(checked) = self.check_delivery(&tx, &inputs, &receipt)? else { return self.known_durably().await };
        self.outputs_hosted_here(&tx).await?;
        for verdict in self.verify_deliveries(&[&checked]) {
            verdict?;
        }
        let Some((pending, owners)) = self.journal_delivery(from, checked.tx.id, &tx, &inputs, &receipt)? else {
            return self.known_durably().await;
        };
        pending.durable().await.map_err(store)?;
        self.sweep_local(owners.into_iter()).await;
        Ok(())
    }

    pub(super) fn knows(&self, id: &TxId) -> bool {
        self.state().knows_tx(id)
    }

    /// Waits until what made a transaction known here is durable, before a
    /// repeat of its delivery is answered: the first delivery's `Received`
    /// may still be in the journal's group commit, and a crash would lose
    /// it after the sender was told the payee has it. A record is applied
    /// after it is appended, so the sync point taken now covers it.
    pub(super) async fn known_durably(&self) -> Result<(), NodeError> {
        self.journal.sync_point().durable().await.map(|_| ()).map_err(store)
    }

    /// Checks a delivered transaction: the notary's receipt and every rule of
    /// the kernel. The signatures — the ones the kernel gathered and the
    /// receipt's root, unless verified before — are left to
    /// [`Self::verify_deliveries`] (one transaction, or many in one batch).
    /// `None` if the transaction is already known.
    pub(super) fn check_delivery(
        &self,
        tx: &Transaction,
        inputs: &[Token],
        receipt: &Receipt,
    ) -> Result<Option<CheckedDelivery>, NodeError> {
        if self.knows(&tx.id()) {
            return Ok(None);
        }
        let claim = TxClaim::of(tx, inputs)?;
        let root = self.notary.check_root(receipt, &claim).map_err(|e| NodeError::BadReceipt(e.to_string()))?;
        let ctx = Context { now: receipt.body.committed_at, params: &self.config.params };
        Ok(Some(CheckedDelivery { tx: dtenge_ledger::check(tx, inputs, &ctx)?, root }))
    }

    /// Verifies checked deliveries' signatures in one batch: their
    /// transactions' and each receipt root not verified before, once however
    /// many of them share it (a notary batch's receipts do). Returns each
    /// delivery's verdict; the notary client remembers the roots that
    /// verified.
    pub(super) fn verify_deliveries(&self, deliveries: &[&CheckedDelivery]) -> Vec<Result<(), NodeError>> {
        let mut roots: Vec<&RootCheck> = Vec::new();
        let root_of: Vec<Option<usize>> = deliveries
            .iter()
            .map(|d| {
                d.root.as_ref().map(|root| match roots.iter().position(|r| r.same_root(root)) {
                    Some(at) => at,
                    None => {
                        roots.push(root);
                        roots.len() - 1
                    }
                })
            })
            .collect();
        let txs: Vec<&dtenge_ledger::Checked> = deliveries.iter().map(|d| &d.tx).collect();
        let (failed, roots_verified) =
            self.notary.verify_batch_with(&dtenge_ledger::signature_items(&txs), &roots, &Ed25519);
        dtenge_ledger::verdicts(&txs, &failed)
            .into_iter()
            .zip(root_of)
            .map(|(verdict, root)| {
                if root.is_some_and(|at| !roots_verified.get(at).copied().unwrap_or(false)) {
                    return Err(NodeError::BadReceipt(ReceiptError::BadSignature.to_string()));
                }
                verdict.map_err(NodeError::Rejected)
            })
            .collect()
    }

    /// Journals `Received` (and notifications) for a delivered transaction
    /// (`id` is its id) that passed [`NodeService::check_delivery`] and signature verification,
    /// without waiting for durability (the caller waits, once for a whole
    /// batch). `None` if it became known meanwhile; otherwise the journal's
    /// pending write and the owners of its outputs (for the reverse waterfall
    /// once durable).
    pub(super) fn journal_delivery(
        &self,
        from: &ParticipantId,
        id: TxId,
        tx: &Transaction,
        inputs: &[Token],
        receipt: &Receipt,
    ) -> Result<Option<(dtenge_store::Pending, Vec<Address>)>, NodeError> {
        if self.knows(&id) {
            return Ok(None);
        }
        let bytes = borsh::to_vec(receipt).map_err(|e| NodeError::Storage(e.to_string()))?;
        let now = self.clock.now();
        let mut records = vec![NodeRecord::Received {
            tx: tx.clone(),
            inputs: inputs.to_vec(),
            receipt: bytes,
            from: from.clone(),
            at: now,
        }];
        {
            let state = self.state();
            for t in tx.body.outputs.iter() {
                if let Some(account) = state.credited_account(t) {
                    if matches!(t.encumbrance, Some(Encumbrance::Hold(_))) {
                        continue;
                    }
                    let message = Message::incoming(t, tx);
                    records.push(NodeRecord::Notified {
                        account: account.id.clone(),
                        notification: Notification { at: now, message, tx: Some(id) },
                    });
                }
                if let Some(Encumbrance::Hold(h)) = &t.encumbrance
                    && let Some(account) = state.account_of(&h.recipient)
                {
                    records.push(NodeRecord::Notified {
                        account: account.id.clone(),
                        notification: Notification {
                            at: now,
                            message: Message::HeldForYou { amount: t.amount, event: h.event.clone() },
                            tx: Some(id),
                        },
                    });
                }
            }
        }
        let owners = tx.body.outputs.iter().map(|t| t.owner).collect();
        Ok(self.append(records)?.map(|pending| (pending, owners)))
    }

    /// Handles a batch of deliveries and pre-checks from `from`, in order.
    /// Deliveries are journaled one after another and answered once the last
    /// of them is durable (one group commit for the batch).
    pub(super) async fn handle_batch(&self, from: &ParticipantId, items: Vec<PeerRequest>) -> Vec<PeerAnswer> {
        let refuse = |e: NodeError| match e {
            NodeError::Storage(e) | NodeError::Unavailable(e) => PeerAnswer::Unavailable(e),
            e => PeerAnswer::Refused(e.refusal()),
        };
        // Rules and receipts first, item by item; the transactions' and the
        // receipts' signatures then verify together in one batch.
        let mut answers: Vec<Option<PeerAnswer>> = Vec::with_capacity(items.len());
        // Deliveries of transactions already known: answered only once what
        // made them known is durable (see `known_durably`).
        let mut known: Vec<usize> = Vec::new();
        let mut checked: Vec<(usize, CheckedDelivery)> = Vec::new();
        // Pre-checks of DAs hosted here, decided below in the batch's one turn.
        let mut asked: Vec<(usize, &Address, Amount)> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            answers.push(match item {
                PeerRequest::CanReceive { address, amount } => match self.ensure_hosted_here(address).await {
                    Ok(()) => {
                        asked.push((i, address, *amount));
                        None
                    }
                    Err(e) => Some(refuse(e)),
                },
                PeerRequest::Deliver { tx, inputs, receipt } => match self.check_delivery(tx, inputs, receipt) {
                    Ok(Some(c)) => match self.outputs_hosted_here(tx).await {
                        Ok(()) => {
                            checked.push((i, c));
                            None
                        }
                        Err(e) => Some(refuse(e)),
                    },
                    Ok(None) => {
                        known.push(i);
                        Some(PeerAnswer::Accepted)
                    }
                    Err(e) => Some(refuse(e)),
                },
            });
        }
        let verdicts = self.verify_deliveries(&checked.iter().map(|(_, c)| c).collect::<Vec<_>>());
        for ((i, _), verdict) in checked.iter().zip(verdicts) {
            if let (Err(e), Some(a)) = (verdict, answers.get_mut(*i)) {
                *a = Some(refuse(e));
            }
        }
        let mut written = Vec::new();
        let mut received: Vec<Address> = Vec::new();
        let mut last = None;
        // One turn for the pre-checks and the deliveries (neither awaits);
        // the pre-checks see the state before this batch's deliveries.
        let turn = if checked.is_empty() && asked.is_empty() { None } else { Some(self.turn().await) };
        for (i, address, amount) in asked {
            if let Some(slot) = answers.get_mut(i) {
                *slot = Some(match self.incoming_check(address, amount) {
                    Ok(()) => PeerAnswer::Accepted,
                    Err(e) => refuse(e),
                });
            }
        }
        // Only checked deliveries are still unanswered here.
        for (i, id) in checked.iter().map(|(i, c)| (*i, c.tx.id)) {
            let (Some(slot), Some(PeerRequest::Deliver { tx, inputs, receipt })) = (answers.get_mut(i), items.get(i))
            else {
                continue;
            };
            if slot.is_some() {
                continue;
            }
            *slot = Some(match self.journal_delivery(from, id, tx, inputs, receipt) {
                Ok(Some((pending, owners))) => {
                    crate::metrics::received(&self.config.id, from, &id);
                    last = Some(pending);
                    written.push(i);
                    received.extend(owners);
                    PeerAnswer::Accepted
                }
                Ok(None) => {
                    known.push(i);
                    PeerAnswer::Accepted
                }
                Err(e) => refuse(e),
            });
        }
        drop(turn);
        let mut answers: Vec<PeerAnswer> =
            answers.into_iter().map(|a| a.unwrap_or_else(|| PeerAnswer::Unavailable("not handled".into()))).collect();
        // The sync point, taken after this batch's own writes, covers them
        // and whatever made the known ones known.
        let wait = if known.is_empty() { last } else { Some(self.journal.sync_point()) };
        if let Some(pending) = wait
            && let Err(e) = pending.durable().await
        {
            for i in written.into_iter().chain(known) {
                if let Some(a) = answers.get_mut(i) {
                    *a = PeerAnswer::Unavailable(e.to_string());
                }
            }
            return answers;
        }
        self.sweep_local(received.into_iter()).await;
        answers
    }
}

/// A delivery that passed [`NodeService::check_delivery`]: the kernel's
/// verdict with the signatures it gathered, and the receipt's root if its
/// signature is still to verify.
pub(super) struct CheckedDelivery {
    tx: dtenge_ledger::Checked,
    root: Option<RootCheck>,
}
