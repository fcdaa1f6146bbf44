//! The one pipeline every outgoing transaction follows, and the only place
//! that journals `Prepared`, `Committed` and `Aborted`:
//!
//! ```text
//!  clear (the payer's guard) ─► plan: select + build + reserve (under the clearance)
//!    ─► execute: attest ─► sign ─► validate ─► journal Prepared (durable) ─► notarise
//!    ─► settle: journal Committed / Aborted ─► deliver to payees' nodes ─► confirm to the oracle
//!  resolve (tick): what was prepared and never settled
//! ```
//!
//! An operation (`operations`) only decides what its plan is.

use std::collections::{BTreeMap, BTreeSet};

use dtenge_crypto::{Ed25519, PublicKey, SecretKey};
use dtenge_ledger::Context;
use dtenge_notary::{NotaryRejection, Receipt, TxClaim, Verdict};
use dtenge_oracle::model::AttestRequest;
use dtenge_oracle::service::{OracleAnswer, OracleRequest};
use dtenge_types::{
    Address, Amount, Command, Currency, Encumbrance, Marking, ParticipantId, Token, TokenId, Transaction, TxBody, TxId,
};

use super::plan::{InPipeline, PayeeCheck, Plan, Signers};
use super::protocol::{PeerAnswer, PeerRequest};
use super::{
    MAX_IN_PIPELINE, MAX_WAITING_FOR_CHANGE, NOTARY_ATTEMPTS, NodeService, RECHECK_CHANGE, TxOutcome, WAIT_FOR_CHANGE,
    durable,
};
use crate::accounts::Account;
use crate::build::Payee;
use crate::guard::{self, Clearance, Cleared, Outflow, Standing};
use crate::metrics::Stage;
use crate::state::{Message, NodeRecord, Notification, Reason, Status};
use crate::{NodeError, RefusalCode};

impl NodeService {
    /// Selects, builds and reserves under one lock, so concurrent operations
    /// never pick the same tokens. When the DA owns enough but part of it is
    /// reserved by its own transactions going through the pipeline, the
    /// payment waits for their change (at most [`WAIT_FOR_CHANGE`], behind
    /// at most [`MAX_WAITING_FOR_CHANGE`] others: past that the caller is
    /// told [`NodeError::Busy`]) instead of being refused. Reservations that
    /// nothing will settle soon (a transaction under review, one awaiting
    /// its holder's signature, a PvP leg signed for another node) are
    /// refused at once, as before.
    pub(super) async fn plan(
        &self,
        clearance: Clearance,
        signers: Signers,
        attest: Option<AttestRequest>,
        amount: Amount,
        wanted: impl Fn(&Token) -> bool,
        build: impl FnOnce(&[(TokenId, Token)]) -> Result<TxBody, NodeError>,
    ) -> Result<Plan, NodeError> {
        self.plan_with(clearance, signers, attest, |vault, clearance| vault.select(clearance, amount, &wanted), build)
            .await
    }

    /// [`Self::plan`] with the selection given: a transaction spending
    /// several kinds of tokens (a stablecoin burn: the stablecoin and its
    /// reserve) selects each kind under the same lock.
    pub(super) async fn plan_with(
        &self,
        clearance: Clearance,
        signers: Signers,
        attest: Option<AttestRequest>,
        select: impl Fn(&crate::vault::Vault, &Clearance) -> Result<Vec<(TokenId, Token)>, NodeError>,
        build: impl FnOnce(&[(TokenId, Token)]) -> Result<TxBody, NodeError>,
    ) -> Result<Plan, NodeError> {
        let mut queued: Option<Queued<'_>> = None;
        let deadline = tokio::time::Instant::now() + WAIT_FOR_CHANGE;
        loop {
            // Registered before looking, so a change applied in between still wakes it.
            let changed = self.vault_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let mut state = self.state();
                match select(&state.vault, &clearance) {
                    Ok(inputs) => {
                        let body = build(&inputs)?;
                        let id = body.id();
                        let ids: Vec<TokenId> = inputs.iter().map(|(id, _)| *id).collect();
                        // Entered first: a full pipeline refuses before anything is reserved.
                        let in_pipeline = InPipeline::enter(&self.in_pipeline, id, MAX_IN_PIPELINE)?;
                        state.vault.reserve(&clearance, &ids, id)?;
                        return Ok(Plan {
                            account: clearance.account().clone(),
                            body,
                            inputs: inputs.into_iter().map(|(_, t)| t).collect(),
                            signers,
                            attest,
                            clearance,
                            in_pipeline,
                        });
                    }
                    Err(e @ NodeError::FundsInFlight { .. }) => {
                        // Looked at under the state lock: a transaction that
                        // settles in between is seen either still reserving
                        // and in flight, or settled and its change free.
                        let soon = self.settling_soon(state.vault.reserving(clearance.account()));
                        drop(state);
                        if tokio::time::Instant::now() >= deadline || !soon {
                            return Err(e);
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
            if queued.is_none() {
                queued = Some(Queued::enter(&self.waiting_for_change)?);
            }
            // Woken when records are applied; the short bound also catches a
            // reservation freed without a record (an abandoned attempt).
            let wake = deadline.min(tokio::time::Instant::now() + RECHECK_CHANGE);
            let _ = tokio::time::timeout_at(wake, changed).await;
        }
    }

    /// Whether any of `reserving` (transactions holding a DA's tokens) is
    /// going through the pipeline now, so that its change comes back soon
    /// (not parked awaiting its holder's signature, not left to the
    /// resolver, not a PvP leg this node signed for another node).
    fn settling_soon(&self, reserving: BTreeSet<TxId>) -> bool {
        let in_pipeline = self.in_pipeline.lock().unwrap_or_else(|p| p.into_inner());
        reserving.iter().any(|tx| in_pipeline.contains(tx))
    }

    /// Runs the payer's guard for `outflow` from `account` (see [`crate::guard`]):
    /// tops the DA up from its linked bank account when the guard asks, then
    /// asks again.
    pub(crate) async fn clear(&self, account: &Account, outflow: Outflow) -> Result<Clearance, NodeError> {
        self.clear_checked(account, outflow, &mut PayeeCheck::accepted()).await
    }

    /// As [`Self::clear`], while the payees' banks are asked whether they
    /// take the payment: a top-up waits for their answer.
    pub(super) async fn clear_checked(
        &self,
        account: &Account,
        outflow: Outflow,
        payees: &mut PayeeCheck<'_>,
    ) -> Result<Clearance, NodeError> {
        let mut topped_up = false;
        loop {
            let cleared = {
                let _turn = self.turn().await;
                let state = self.state();
                let current =
                    state.accounts.get(&account.id).ok_or_else(|| NodeError::UnknownAccount(account.id.to_string()))?;
                let standing = Standing {
                    account: current,
                    limits: state.limits_of(current),
                    spent_today: state.spent_on_day(&current.id, self.clock.now()),
                    orders: state.active_orders(&current.id),
                    free_standard: state.vault.free_standard(&current.id, Currency::DT)?.0,
                    linked_bank_account: state.profile(&current.id).linked_bank_account,
                };
                guard::clear(&standing, outflow, &self.pending)?
            };
            match cleared {
                Cleared::Go(clearance) => return Ok(clearance),
                Cleared::TopUp { shortfall, bank_account } if !topped_up => {
                    // A payment the payee's bank refuses moves no money.
                    payees.answer().await?;
                    // Boxed: the top-up is itself a guarded conversion.
                    Box::pin(self.waterfall(account, shortfall, &bank_account)).await?;
                    topped_up = true;
                }
                Cleared::TopUp { shortfall, .. } => {
                    return Err(NodeError::FundsInFlight { requested: shortfall, available: Amount::ZERO });
                }
            }
        }
    }

    /// Runs a payment to `payees` from `account`: their banks are asked
    /// whether they take it (the pre-check, [`PayeeCheck`]) while the
    /// payer's guard clears `outflow` and `planning` makes the plan under
    /// the clearance; the plan then runs with their answer
    /// ([`Self::execute_checked`]). Whatever fails, a payee's bank's
    /// refusal is the answer when there is one.
    pub(super) async fn pay_checked<F, Fut>(
        &self,
        account: &Account,
        outflow: Outflow,
        payees: &[Payee],
        planning: F,
    ) -> Result<TxOutcome, NodeError>
    where
        F: FnOnce(Clearance) -> Fut,
        Fut: std::future::Future<Output = Result<Plan, NodeError>>,
    {
        let mut check = self.pre_check(payees);
        let planned = async {
            let clearance = self.clear_checked(account, outflow, &mut check).await?;
            planning(clearance).await
        };
        match planned.await {
            Ok(plan) => self.execute_checked(plan, check).await,
            Err(refused) => Err(check.refusal_or(refused).await),
        }
    }

    /// The custodial key the node signs with for `account`.
    pub(super) fn keys_of(account: &Account) -> Result<Vec<SecretKey>, NodeError> {
        let key = account.key().cloned().ok_or_else(|| NodeError::ClientSigns(account.id.to_string()))?;
        Ok(vec![key])
    }

    pub(crate) fn custodial_keys(account: &Account) -> Result<Vec<SecretKey>, NodeError> {
        Self::keys_of(account)
    }

    /// Runs a plan through every stage: attest, sign, validate, journal
    /// `Prepared`, notarise, settle, deliver. A refused operation leaves
    /// nothing reserved: its tokens here, and what the oracle's attestation
    /// held back.
    pub(super) async fn execute(&self, plan: Plan) -> Result<TxOutcome, NodeError> {
        self.execute_checked(plan, PayeeCheck::accepted()).await
    }

    /// As [`Self::execute`], while the payees' banks are asked whether they
    /// take the payment: their answer is awaited alongside attesting,
    /// signing, validating and journaling `Prepared`, and before the
    /// notary. A refusal that comes after `Prepared` is journaled settles
    /// the transaction as `Aborted` (a rejected line in the payer's
    /// history); one that comes before leaves nothing.
    pub(super) async fn execute_checked(
        &self,
        mut plan: Plan,
        mut payees: PayeeCheck<'_>,
    ) -> Result<TxOutcome, NodeError> {
        // Left only once the outcome is applied (below), so a payment waiting
        // for this one's change never sees it neither in flight nor settled.
        let id = plan.body.id();
        let input_ids: Vec<TokenId> = plan.body.inputs.to_vec();
        let attested = plan.attest.is_some();
        // A plan made without `plan` (an issue, an e-invoice, a key rotation,
        // a PvP, a client's signature arriving) enters here, under the same bound.
        let entered = match std::mem::take(&mut plan.in_pipeline) {
            entered if entered.is_entered() => Ok(entered),
            _ => InPipeline::enter(&self.in_pipeline, id, MAX_IN_PIPELINE),
        };
        let refused = std::sync::atomic::AtomicBool::new(false);
        let (prepared, in_pipeline, asked_oracle, checked) = match entered {
            Ok(entered) => {
                let check = async {
                    let answer = payees.answer().await;
                    refused.store(answer.is_err(), std::sync::atomic::Ordering::Release);
                    answer
                };
                let prepare = async {
                    let started = std::time::Instant::now();
                    let prepared = self.prepare(plan, &refused).await;
                    if prepared.is_ok() {
                        self.stage_times.record(Stage::Prepare, started);
                    }
                    prepared
                };
                // The check first: a local payee's answer is there at once,
                // so nothing is journaled for a payment it refuses.
                let (checked, prepared) = tokio::join!(biased; check, prepare);
                (prepared, Some(entered), attested, checked)
            }
            Err(e) => (Err(e), None, false, Ok(())),
        };
        // The inputs are freed by `Aborted` once `Prepared` is journaled,
        // else here; either way nothing stays reserved, and the transaction
        // leaves the pipeline only after (`in_pipeline` is dropped last).
        let refused = match (prepared, checked) {
            (Ok((tx, inputs)), Ok(())) => return self.submit(tx, inputs).await,
            (Ok(_), Err(refusal)) => {
                let reason = Reason::from(refusal.refusal());
                self.record(vec![NodeRecord::Aborted { tx: id, reason, spent_elsewhere: Vec::new() }]).await?;
                refusal
            }
            (Err(e), checked) => {
                self.state().vault.unreserve(&input_ids, id);
                // The payees' refusal, when there is one, is the answer the
                // caller would have had with the pre-check asked first.
                checked.err().unwrap_or(e)
            }
        };
        drop(in_pipeline);
        self.vault_changed.notify_waiters();
        if asked_oracle {
            self.abandon_attestation(id).await;
        }
        let refused = Err(refused);
        crate::metrics::payment(&self.config.id, &id, &refused);
        refused
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

    /// Attests, signs, validates and journals `Prepared` (durable; the
    /// payer's clearance stops counting as pending in the same critical
    /// section in which the DA's book starts counting the transaction).
    async fn prepare(
        &self,
        plan: Plan,
        payees_refused: &std::sync::atomic::AtomicBool,
    ) -> Result<(Transaction, Vec<Token>), NodeError> {
        let Plan { account, body, inputs, signers, attest, mut clearance, in_pipeline: _ } = plan;
        let mut tx = match &signers {
            Signers::Client(signed) if signed.id() != body.id() => {
                return Err(NodeError::Invalid("the signed transaction is not the one prepared".into()));
            }
            Signers::Client(signed) => (**signed).clone(),
            _ => Transaction::unsigned(body),
        };
        if let Some(request) = attest {
            let answer = self.oracle(OracleRequest::Attest { body: tx.body.clone(), request }).await?;
            match answer {
                OracleAnswer::Attestation(a) => tx.attestations.try_push(a)?,
                OracleAnswer::Refused(refusal) => return Err(NodeError::Oracle(refusal)),
                _ => return Err(NodeError::Unavailable("the oracle answered something else".into())),
            }
        }
        // The signatures this node makes here are right by construction
        // (deterministic Ed25519 over the transaction id), so only the
        // others (the holder's, the counterparty's, oracle attestations)
        // are verified; the payee's node verifies every signature again.
        let mut own: Vec<PublicKey> = Vec::new();
        match signers {
            Signers::Nobody | Signers::Client(_) => {}
            Signers::Custodial(keys) => {
                for key in &keys {
                    tx.sign(key)?;
                    own.push(key.public_key());
                }
            }
            Signers::Host => {
                tx.sign(self.key.as_ref())?;
                own.push(self.key.public_key());
            }
            Signers::WithCounterparty { keys, counterparty } => {
                for key in &keys {
                    tx.sign(key)?;
                    own.push(key.public_key());
                }
                tx.signatures.try_push(counterparty)?;
            }
        }
        let ctx = Context { now: self.clock.now(), params: &self.config.params };
        let mut checked = dtenge_ledger::check(&tx, &inputs, &ctx)?;
        checked.signatures.retain(|s| !own.contains(&s.public_key));
        dtenge_ledger::verify(&checked, &Ed25519)?;
        if payees_refused.load(std::sync::atomic::Ordering::Acquire) {
            // Their answer is the refusal (see `execute_checked`); nothing to journal.
            return Err(NodeError::Unavailable("the payee's bank refused the payment".into()));
        }
        let prepared = NodeRecord::Prepared { tx: tx.clone(), inputs: inputs.clone(), account, at: self.clock.now() };
        self.record_cleared(vec![prepared], Some(&mut clearance)).await?;
        Ok((tx, inputs))
    }

    /// Notarises a prepared transaction and sees it through.
    async fn submit(&self, tx: Transaction, inputs: Vec<Token>) -> Result<TxOutcome, NodeError> {
        let (id, result) = match self.claim_of(&tx, &inputs) {
            Ok(claim) => (claim.tx, self.see_through(tx, inputs, claim).await),
            Err(e) => (tx.id(), Err(e)),
        };
        crate::metrics::payment(&self.config.id, &id, &result);
        result
    }

    /// `claim` is `tx`'s ([`NodeService::claim_of`]).
    async fn see_through(&self, tx: Transaction, inputs: Vec<Token>, claim: TxClaim) -> Result<TxOutcome, NodeError> {
        let id = claim.tx;
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

    async fn notarise(&self, claim: &TxClaim) -> Result<Verdict, NodeError> {
        let started = std::time::Instant::now();
        let verdict = self.notary_batcher.call(claim.clone()).await;
        if verdict.is_ok() {
            self.stage_times.record(Stage::Notarise, started);
        }
        verdict
    }

    async fn settle(
        &self,
        tx: &Transaction,
        inputs: &[Token],
        claim: &TxClaim,
        verdict: Verdict,
    ) -> Result<TxOutcome, NodeError> {
        let id = claim.tx;
        let started = std::time::Instant::now();
        match verdict {
            Verdict::Committed(receipt) => {
                self.notary
                    .verify(&receipt, claim)
                    .map_err(|e| NodeError::Unavailable(format!("bad notary receipt: {e}")))?;
                let deliver_to = self.recipients_of(tx, inputs);
                let bytes = borsh::to_vec(&receipt).map_err(|e| NodeError::Storage(e.to_string()))?;
                let mut records = vec![NodeRecord::Committed {
                    tx: id,
                    receipt: bytes,
                    deliver_to: deliver_to.clone(),
                    at: self.clock.now(),
                }];
                let _turn = self.turn().await;
                records.extend(self.notifications_for_own(id, tx, inputs));
                // The notary's commit is already durable: deliver while our
                // own `Committed` record is being made durable. A crash in
                // between leaves `Prepared` in the journal, which
                // `resolve_in_flight` settles from the notary's receipt
                // (and delivers again; payees take a delivery once).
                let pending = self.append(records)?;
                drop(_turn);
                let delivered = async {
                    let any = !deliver_to.is_empty();
                    let delivering = std::time::Instant::now();
                    // Timed only when every node took it: one left for the
                    // tick has not arrived yet.
                    if self.deliver(id, deliver_to, tx, inputs, &receipt).await && any {
                        self.stage_times.record(Stage::Deliver, delivering);
                    }
                };
                let settled = async {
                    durable(pending).await?;
                    self.stage_times.record(Stage::Settle, started);
                    Ok::<(), NodeError>(())
                };
                let ((), settled) = tokio::join!(delivered, settled);
                settled?;
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
                let refused = NodeError::NotaryRejected(rejection);
                let reason = Reason::from(refused.refusal());
                self.record(vec![NodeRecord::Aborted { tx: id, reason, spent_elsewhere }]).await?;
                self.stage_times.record(Stage::Settle, started);
                if !tx.attestations.is_empty() {
                    self.abandon_attestation(id).await;
                }
                Err(refused)
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
    pub(super) fn notifications_for_own(&self, id: TxId, tx: &Transaction, inputs: &[Token]) -> Vec<NodeRecord> {
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
                    notification: Notification { at: now, message: Message::incoming(t, tx), tx: Some(id) },
                });
            }
        }
        out
    }

    /// Sends a committed transaction to every node still waiting for it.
    pub(super) async fn deliver_pending(&self, id: TxId) {
        let (targets, tx, inputs, receipt) = {
            let _turn = self.turn().await;
            let state = self.state();
            let Some(o) = state.unsettled_tx(&id) else { return };
            let Some(bytes) = &o.receipt else { return };
            let Ok(receipt) = borsh::from_slice::<Receipt>(bytes) else { return };
            (o.undelivered.clone(), o.tx.clone(), o.inputs.clone(), receipt)
        };
        self.deliver(id, targets, &tx, &inputs, &receipt).await;
    }

    /// Sends committed `tx` (`id` is its id) to each of `targets`, and
    /// journals `Delivered` for each that took it. Whether all took it.
    async fn deliver(
        &self,
        id: TxId,
        targets: BTreeSet<ParticipantId>,
        tx: &Transaction,
        inputs: &[Token],
        receipt: &Receipt,
    ) -> bool {
        let mut all_took_it = true;
        for to in targets {
            let request = PeerRequest::Deliver {
                tx: Box::new(tx.clone()),
                inputs: inputs.to_vec(),
                receipt: Box::new(receipt.clone()),
            };
            let answer = self.call_peer(&to, request).await;
            all_took_it &= matches!(answer, Ok(PeerAnswer::Accepted));
            match answer {
                Ok(PeerAnswer::Accepted) => {
                    // Not waited for: if a crash loses it, the node delivers
                    // again and the payee, who already has it, accepts the
                    // repeat without a second credit. Waiting would put one
                    // more fsync of this node's journal on every payment.
                    let _turn = self.turn().await;
                    if let Err(e) = self.append(vec![NodeRecord::Delivered { tx: id, to: to.clone() }]) {
                        tracing::warn!(tx = %id, %to, error = %e, "delivered, but not journaled; it will be delivered again");
                    }
                }
                Ok(PeerAnswer::Refused(why)) => tracing::error!(tx = %id, %to, %why, "delivery refused"),
                Ok(PeerAnswer::Unavailable(why)) => tracing::info!(tx = %id, %to, %why, "delivery deferred"),
                Err(e) => tracing::info!(tx = %id, %to, error = %e, "delivery deferred"),
            }
        }
        all_took_it
    }

    /// The notary claim for `tx`, with the consent of another host if one
    /// was given.
    fn claim_of(&self, tx: &Transaction, inputs: &[Token]) -> Result<TxClaim, NodeError> {
        let claim = TxClaim::of(tx, inputs)?;
        let consent = self.consents.lock().unwrap_or_else(|p| p.into_inner()).1.get(&claim.tx).cloned();
        Ok(match consent {
            Some(consent) => claim.with_consent(consent)?,
            None => claim,
        })
    }

    async fn notary_receipt(&self, tx: &TxId) -> Result<Option<Receipt>, NodeError> {
        self.notary.receipt(tx).await.map_err(|e| NodeError::Unavailable(format!("notary: {e}")))
    }

    /// Sees through a transaction prepared but never settled (a crash, or
    /// the notary was down): committed if the notary has it, submitted
    /// again while its window is open — a payment only if its payees' banks
    /// still take it ([`Self::payees_still_accept`]) — aborted after.
    pub(super) async fn resolve(&self, tx: &Transaction, inputs: &[Token]) -> Result<TxOutcome, NodeError> {
        // A node that can record nothing more sends nothing to the notary: it
        // could not record the answer, and a payment whose payee refused it
        // after `Prepared` (its `Aborted` write the one that failed) would be
        // committed. After a restart the journal decides again.
        if let Some(failure) = self.storage_failure() {
            return Err(NodeError::Storage(format!(
                "{failure}; nothing goes to the notary until this node restarts on working storage"
            )));
        }
        let id = tx.id();
        let claim = self.claim_of(tx, inputs)?;
        // Journaled, so a restart before the window closes still names it.
        let refused_before = self.read(|s| s.refusal_in_flight(&id).cloned());
        if self.clock.now() <= tx.body.window.not_after {
            match self.payees_still_accept(tx, inputs).await {
                Ok(()) => {
                    if refused_before.is_some() {
                        self.record(vec![NodeRecord::RefusedInFlight { tx: id, refusal: None }]).await?;
                    }
                }
                // Not sent again; a claim sent before may still have
                // committed, and then it settles like any other.
                Err(refused) => {
                    return match self.notary_receipt(&id).await? {
                        Some(receipt) => self.settle(tx, inputs, &claim, Verdict::Committed(receipt)).await,
                        None => {
                            // Only a refusal is named at the end: a bank that
                            // was busy is asked again at the next tick.
                            let refusal = Reason::from(refused.refusal());
                            if !refused.code().is_transient() && refused_before.as_ref() != Some(&refusal) {
                                let record = NodeRecord::RefusedInFlight { tx: id, refusal: Some(refusal) };
                                self.record(vec![record]).await?;
                            }
                            Err(refused)
                        }
                    };
                }
            }
            let verdict = self.notarise(&claim).await?;
            return self.settle(tx, inputs, &claim, verdict).await;
        }
        let receipt = self.notary_receipt(&id).await?;
        match receipt {
            Some(receipt) => self.settle(tx, inputs, &claim, Verdict::Committed(receipt)).await,
            None => {
                let reason = match refused_before {
                    // Its payees' refusal is why, under the refusal's own code.
                    Some(why) => Reason { code: why.code, text: format!("{why}; not committed: its window closed") },
                    None => Reason::coded(RefusalCode::Expired, "not committed within its time window"),
                };
                let status = Status::Rejected { reason: reason.clone() };
                self.record(vec![NodeRecord::Aborted { tx: id, reason, spent_elsewhere: Vec::new() }]).await?;
                Ok(TxOutcome { tx: id, status, notary_seq: None })
            }
        }
    }

    /// Asks a prepared payment's payees' banks again whether they take it,
    /// before it goes to the notary again: one may have refused it after
    /// `Prepared` (the `Aborted` that recorded the refusal lost in a crash),
    /// or refuse it now (the DA closed, or full, while the notary was away).
    /// A refused payment stays off the notary and is aborted once its window
    /// has closed — only then can no claim sent before still commit. The
    /// payees are the outputs not owned by the payer, each asked for what it
    /// gets; as when it was first asked, a bank that cannot be reached does
    /// not stop it. Asked for the commands whose operations ask their payees
    /// when they are made (`pay_checked`, `payees`); the others (holds and
    /// their release, redemptions, collections, mandates, key rotations)
    /// never asked, and are not asked now.
    async fn payees_still_accept(&self, tx: &Transaction, inputs: &[Token]) -> Result<(), NodeError> {
        let asked_when_made = matches!(
            tx.body.command,
            Command::Transfer
                | Command::MarkAddress
                | Command::MarkParameter { .. }
                | Command::ContractPayment { .. }
                | Command::PayInvoice { .. }
                | Command::PayVat
                | Command::Debit { .. }
                | Command::Issue { .. }
        );
        if !asked_when_made {
            return Ok(());
        }
        let payers: BTreeSet<&Address> = inputs.iter().map(|t| &t.owner).collect();
        let mut payees: BTreeMap<(&ParticipantId, &Address), Amount> = BTreeMap::new();
        for output in tx.body.outputs.iter().filter(|t| !payers.contains(&t.owner)) {
            let due = payees.entry((&output.host, &output.owner)).or_insert(Amount::ZERO);
            *due = due.checked_add(output.amount).ok_or(NodeError::Overflow)?;
        }
        let payees: Vec<Payee> = payees
            .into_iter()
            .map(|((host, address), amount)| Payee { address: *address, host: host.clone(), amount })
            .collect();
        // Not timed as the pipeline's pre-check: it is not on a new
        // payment's path.
        self.ask_payees(&payees).await
    }
}

/// A place in the bounded line of payments waiting for change in flight.
struct Queued<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> Queued<'a> {
    fn enter(waiting: &'a std::sync::atomic::AtomicUsize) -> Result<Queued<'a>, NodeError> {
        use std::sync::atomic::Ordering;
        let before = waiting.fetch_add(1, Ordering::AcqRel);
        if before >= MAX_WAITING_FOR_CHANGE {
            waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(NodeError::Busy(format!(
                "{MAX_WAITING_FOR_CHANGE} payments already wait for change in flight at this node"
            )));
        }
        Ok(Queued(waiting))
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn the_line_waiting_for_change_is_bounded_and_frees_its_places() {
        let waiting = AtomicUsize::new(MAX_WAITING_FOR_CHANGE - 1);
        let last = Queued::enter(&waiting).expect("one place left");
        match Queued::enter(&waiting) {
            Err(e) => assert_eq!(e.code(), crate::refusal::RefusalCode::Busy),
            Ok(_) => panic!("a full line admitted one more"),
        }
        assert_eq!(waiting.load(Ordering::Acquire), MAX_WAITING_FOR_CHANGE);
        drop(last);
        assert_eq!(waiting.load(Ordering::Acquire), MAX_WAITING_FOR_CHANGE - 1);
    }

    #[test]
    fn the_pipeline_admits_up_to_its_bound_and_frees_places_when_left() {
        let pipeline = super::super::plan::Pipeline::default();
        let tx = |n: u8| TxId(dtenge_crypto::Digest([n; 32]));
        let first = InPipeline::enter(&pipeline, tx(1), 2).expect("room");
        let second = InPipeline::enter(&pipeline, tx(2), 2).expect("room");
        match InPipeline::enter(&pipeline, tx(3), 2) {
            Err(e) => assert_eq!(e.code(), crate::refusal::RefusalCode::Busy),
            Ok(_) => panic!("a full pipeline admitted one more"),
        }
        assert_eq!(pipeline.lock().map(|s| s.len()).unwrap_or_default(), 2, "a refused entry leaves no trace");
        drop(first);
        let third = InPipeline::enter(&pipeline, tx(3), 2).expect("a place was freed");
        assert!(second.is_entered() && third.is_entered());
        drop((second, third));
        assert_eq!(pipeline.lock().map(|s| s.len()).unwrap_or_default(), 0);
    }
}
