//! The issuing bank's side of card payments (issue 22.1, docs/cards.md):
//! linking a card to a DA, answering the card network's messages, and
//! returning authorisations the scheme let expire. Every money movement is a
//! plan on the one pipeline, passing the payer's guard:
//!
//! | message | plan | guard outflow | signed by |
//! |---|---|---|---|
//! | 0100 / 0120 authorisation | the amount held under a mandate `CARD-<RRN>` whose grantee is the bank's own DA, until the scheme's expiry | `Commit` | the holder's custodial key |
//! | 1240 purchase (clearing) | a debit of the held funds: the captured amount to the acquirer's settlement DA, the rest back as standard money | `MandateDebit` | the bank's DA (grantee) |
//! | 0400 / 0420 reversal, expiry | the mandate revoked: everything back | `Exempt(Return)` | the holder's custodial key |
//! | 0400 / 0420 with DE 95 (partial reversal) | a debit of the held funds: all but the replacement amount back as standard money, the replacement amount held under the same terms | `Exempt(Return)` | the bank's DA (grantee) |
//! | 1240 refund | a payment from the bank's DA to the cardholder | `Pay` (the bank's DA) | the bank's DA |
//!
//! One message is handled at a time per node (`cards` lock): the decision
//! reads the book, the answer is journaled before it is given, and a
//! message's transaction id is journaled (`Acting`) before the transaction
//! is prepared, so a retransmission after a crash finds that transaction
//! rather than making a second one.

use dtenge_types::{Amount, Encumbrance, MandateId, Memo, Token};

use super::plan::{Plan, Signers};
use super::{NodeService, PayTo, standard_dt};
use crate::NodeError;
use crate::accounts::AccountId;
use crate::build;
use crate::cards::{
    CARDS_MAX, Card, CardAction, CardExpiry, CardMessage, CardPayment, CardRecord, CardResponse, CardToken, Decision,
    Effect, Last4, ResponseCode, Rrn,
};
use crate::guard::{Exemption, Outflow};
use crate::state::NodeRecord;
use crate::status::Status;

/// How an action's transaction ended.
enum Outcome {
    /// Committed.
    Done(dtenge_types::TxId),
    /// Refused before or by the ledger: this code, nothing moved.
    Declined(ResponseCode),
    /// Not resolved yet (the notary is away): answer nothing now.
    Unresolved(NodeError),
}

impl NodeService {
    /// Links a card (its scheme token, last four digits and expiry, never
    /// its number) to a custodial DA of this node.
    pub async fn link_card(
        &self,
        account: &AccountId,
        token: CardToken,
        last4: Last4,
        expiry: CardExpiry,
    ) -> Result<Card, NodeError> {
        let _cards = self.cards.lock().await;
        let da = self.account(account)?;
        if da.closed {
            return Err(NodeError::AccountClosed(account.to_string()));
        }
        if da.key().is_none() {
            return Err(NodeError::Invalid(format!(
                "{account} holds its own key: a card pays only from a DA whose key the bank keeps (it holds funds at the network's speed)"
            )));
        }
        // The bank's own DA is the grantee of every card hold.
        self.own_account()?;
        let now = self.clock.now();
        if expiry.ends_at() <= now {
            return Err(NodeError::Invalid(format!("card expiry {expiry} has passed")));
        }
        {
            let state = self.state();
            if let Some(existing) = state.cards.card(&token) {
                return Err(NodeError::Invalid(format!(
                    "card token {token} is already linked to {}",
                    existing.account
                )));
            }
            if state.cards.card_count() >= CARDS_MAX {
                return Err(NodeError::Busy(format!("this node links at most {CARDS_MAX} cards")));
            }
        }
        let card = Card { token, last4, account: account.clone(), expiry, linked_at: now };
        self.record(vec![NodeRecord::Card(Box::new(CardRecord::Linked(card.clone())))]).await?;
        Ok(card)
    }

    /// Unlinks a card (the holder lost it, closed it, or moves it to another
    /// DA): from now on an authorisation under its token is declined 14;
    /// open authorisations keep their course — clearing, reversal, expiry and
    /// refunds of its payments are answered as before. Its token may be
    /// linked again.
    pub async fn unlink_card(&self, token: &CardToken) -> Result<Card, NodeError> {
        let _cards = self.cards.lock().await;
        let card = self
            .card(token)
            .ok_or_else(|| NodeError::Invalid(format!("no card {token} is linked at {}", self.config.id)))?;
        let at = self.clock.now();
        self.record(vec![NodeRecord::Card(Box::new(CardRecord::Unlinked { token: token.clone(), at }))]).await?;
        Ok(card)
    }

    /// A linked card.
    pub fn card(&self, token: &CardToken) -> Option<Card> {
        self.state().cards.card(token).cloned()
    }

    /// A card payment by its authorisation's RRN.
    pub fn card_payment(&self, rrn: &Rrn) -> Option<CardPayment> {
        self.state().cards.payment(rrn).cloned()
    }

    /// Answers a message of the card network. A retransmission gets the
    /// first answer and changes nothing. `Err` means nothing is decided yet
    /// (storage, or a transaction still being resolved): the network
    /// retransmits.
    pub async fn card_message(&self, message: CardMessage) -> Result<CardResponse, NodeError> {
        message.check_references()?;
        if !message.mti.is_request() {
            return Err(NodeError::Invalid(format!(
                "MTI {} is a response; the issuer answers requests",
                message.mti.code()
            )));
        }
        let _cards = self.cards.lock().await;
        let key = message.key();
        let interrupted = self.state().cards.acting(&key).cloned();
        if let Some(acting) = interrupted {
            if acting.message != message {
                return Ok(CardResponse::declined(&message, ResponseCode::Duplicate));
            }
            match self.read(|s| s.outgoing(&acting.tx)).map(|o| o.status) {
                Some(Status::Success) => {
                    return self.answer(&message, Outcome::Done(acting.tx), Some(&acting.action)).await;
                }
                Some(Status::UnderReview | Status::RequestAccepted) => {
                    return Err(NodeError::Busy(format!(
                        "transaction {} of this card message is being resolved with the notary; retransmit",
                        acting.tx
                    )));
                }
                // Never committed: nothing moved.
                Some(Status::Rejected { .. }) | None => {
                    return self.answer(&message, Outcome::Declined(ResponseCode::SystemMalfunction), None).await;
                }
            }
        }
        let now = self.clock.now();
        let decision = self.state().cards.decide(&message, now);
        match decision {
            Decision::Repeat(response) => Ok(response),
            Decision::Decline(code) => self.answer(&message, Outcome::Declined(code), None).await,
            Decision::Acknowledge => {
                let response = CardResponse::approved(&message, Amount::ZERO, None);
                self.journal_answer(&message, response, Effect::None).await
            }
            Decision::Act(action) => {
                let outcome = self.act(&message, &action).await?;
                self.answer(&message, outcome, Some(&action)).await
            }
        }
    }

    async fn journal_answer(
        &self,
        message: &CardMessage,
        response: CardResponse,
        effect: Effect,
    ) -> Result<CardResponse, NodeError> {
        let at = self.clock.now();
        let record = CardRecord::Answered { message: message.clone(), response: response.clone(), effect, at };
        self.record(vec![NodeRecord::Card(Box::new(record))]).await?;
        Ok(response)
    }

    async fn answer(
        &self,
        message: &CardMessage,
        outcome: Outcome,
        action: Option<&CardAction>,
    ) -> Result<CardResponse, NodeError> {
        match (outcome, action) {
            (Outcome::Done(tx), Some(action)) => {
                let at = self.clock.now();
                let effect = self.state().cards.effect_of(message, action, tx, at);
                let amount = match action {
                    CardAction::Authorise { amount, .. }
                    | CardAction::Capture { amount, .. }
                    | CardAction::Refund { amount, .. } => *amount,
                    CardAction::Reverse { rrn } => {
                        self.state().cards.payment(rrn).map(|p| p.authorised).unwrap_or(Amount::ZERO)
                    }
                    // What went back: the hold less what it keeps.
                    CardAction::Release { rrn, keep } => self
                        .state()
                        .cards
                        .payment(rrn)
                        .and_then(|p| p.authorised.checked_sub(*keep))
                        .unwrap_or(Amount::ZERO),
                };
                self.journal_answer(message, CardResponse::approved(message, amount, Some(tx)), effect).await
            }
            (Outcome::Done(_), None) => Err(NodeError::Invalid("a transaction without an action".into())),
            (Outcome::Declined(ResponseCode::IssuerUnavailable), _) => {
                // Not journaled: a retransmission is decided afresh.
                Ok(CardResponse::declined(message, ResponseCode::IssuerUnavailable))
            }
            (Outcome::Declined(code), _) => {
                self.journal_answer(message, CardResponse::declined(message, code), Effect::None).await
            }
            (Outcome::Unresolved(e), _) => Err(e),
        }
    }

    /// Plans `action`, journals its transaction id, and runs it.
    async fn act(&self, message: &CardMessage, action: &CardAction) -> Result<Outcome, NodeError> {
        let planned = match action {
            CardAction::Authorise { account, amount, mandate, valid_until } => {
                self.plan_authorisation(account, *amount, mandate, *valid_until).await
            }
            CardAction::Capture { rrn, amount } => self.plan_capture(rrn, *amount).await,
            CardAction::Reverse { rrn } => self.plan_return(rrn).await,
            CardAction::Refund { rrn, amount } => self.plan_refund(rrn, *amount).await,
            CardAction::Release { rrn, keep } => self.plan_release(rrn, *keep).await,
        };
        let plan = match planned {
            Ok(plan) => plan,
            Err(e) => return Ok(Outcome::Declined(self.decline_code(message, action, &e))),
        };
        let tx = plan.body.id();
        let acting = CardRecord::Acting { message: message.clone(), action: action.clone(), tx };
        if let Err(e) = self.record(vec![NodeRecord::Card(Box::new(acting))]).await {
            let inputs: Vec<dtenge_types::TokenId> = plan.body.inputs.to_vec();
            self.state().vault.unreserve(&inputs, tx);
            return Err(e);
        }
        Ok(match self.execute(plan).await {
            Ok(outcome) if outcome.status == Status::Success => Outcome::Done(outcome.tx),
            Ok(outcome) => Outcome::Unresolved(NodeError::Busy(format!(
                "transaction {} of this card message is being resolved with the notary; retransmit",
                outcome.tx
            ))),
            Err(e) => Outcome::Declined(self.decline_code(message, action, &e)),
        })
    }

    /// The scheme's code for an operation the node refused.
    fn decline_code(&self, message: &CardMessage, action: &CardAction, e: &NodeError) -> ResponseCode {
        match e {
            NodeError::InsufficientFunds { .. } | NodeError::NothingToSpend | NodeError::TooFragmented { .. } => {
                let CardAction::Authorise { account, amount, .. } = action else {
                    return ResponseCode::SystemMalfunction;
                };
                // Enough money, but marked, held or mandated: not permitted to
                // pay by card; not enough money at all: insufficient funds.
                let total = self.balances(account).map(|b| b.total).unwrap_or(Amount::ZERO);
                if total >= *amount { ResponseCode::NotPermitted } else { ResponseCode::InsufficientFunds }
            }
            NodeError::AccountClosed(_)
            | NodeError::KycNotVerified(_)
            | NodeError::Enforcement(_)
            | NodeError::LimitExceeded { .. }
            | NodeError::ClientSigns(_)
            | NodeError::Forbidden(_) => ResponseCode::NotPermitted,
            NodeError::FundsInFlight { .. } | NodeError::Busy(_) | NodeError::Unavailable(_) => {
                ResponseCode::IssuerUnavailable
            }
            other => {
                tracing::warn!(rrn = %message.rrn, mti = message.mti.code(), error = %other, "card message refused by the ledger");
                ResponseCode::SystemMalfunction
            }
        }
    }

    fn mandated(mandate: &MandateId) -> impl Fn(&Token) -> bool + '_ {
        move |t: &Token| matches!(&t.encumbrance, Some(Encumbrance::Mandate(m)) if m.mandate == *mandate)
    }

    async fn plan_authorisation(
        &self,
        account: &AccountId,
        amount: Amount,
        mandate: &MandateId,
        valid_until: dtenge_types::Timestamp,
    ) -> Result<Plan, NodeError> {
        let holder = self.account(account)?;
        let bank = self.account(&self.own_account()?)?;
        let clearance = self.clear(&holder, Outflow::Commit { amount }).await?;
        let keys = Self::keys_of(&holder)?;
        let terms = dtenge_types::MandateTerms { mandate: mandate.clone(), grantee: bank.address, valid_until };
        let draft = self.draft(&holder, Memo::new(format!("card authorisation {mandate}")).ok());
        self.plan(clearance, Signers::Custodial(keys), None, amount, standard_dt, |inputs| {
            build::grant_mandate(&draft, inputs, amount, terms)
        })
        .await
    }

    fn payment(&self, rrn: &Rrn) -> Result<CardPayment, NodeError> {
        self.card_payment(rrn).ok_or_else(|| NodeError::Invalid(format!("no card payment {rrn} on this node")))
    }

    async fn plan_capture(&self, rrn: &Rrn, amount: Amount) -> Result<Plan, NodeError> {
        let payment = self.payment(rrn)?;
        let holder = self.account(&payment.account)?;
        let bank = self.account(&self.own_account()?)?;
        let keys = Self::keys_of(&bank)?;
        let acquirer = self
            .payees(&[PayTo { address: payment.acquirer_account, amount }])
            .await?
            .into_iter()
            .next()
            .ok_or(NodeError::Invalid("no acquirer".into()))?;
        let clearance = self.clear(&holder, Outflow::MandateDebit { amount }).await?;
        let wanted = Self::mandated(&payment.mandate);
        let held = self.state().vault.available(&holder.id, &wanted)?;
        let draft = self.draft(&bank, Memo::new(format!("card clearing {rrn}")).ok());
        let host = self.config.id.clone();
        self.plan(clearance, Signers::Custodial(keys), None, held, &wanted, |inputs| {
            build::card_capture(&draft, inputs, &acquirer, holder.address, host)
        })
        .await
    }

    /// All of a payment's held funds back to the holder (reversal, expiry).
    async fn plan_return(&self, rrn: &Rrn) -> Result<Plan, NodeError> {
        let payment = self.payment(rrn)?;
        let holder = self.account(&payment.account)?;
        let clearance = self.clear(&holder, Outflow::Exempt(Exemption::Return)).await?;
        let keys = Self::keys_of(&holder)?;
        let wanted = Self::mandated(&payment.mandate);
        let held = self.state().vault.available(&holder.id, &wanted)?;
        let draft = self.draft(&holder, None);
        let mandate = payment.mandate.clone();
        self.plan(clearance, Signers::Custodial(keys), None, held, &wanted, |inputs| {
            build::revoke_mandate(&draft, inputs, mandate)
        })
        .await
    }

    /// A partial reversal: all held funds but `keep` back to the holder, `keep`
    /// still held; the bank signs as the grantee (no holder key needed).
    async fn plan_release(&self, rrn: &Rrn, keep: Amount) -> Result<Plan, NodeError> {
        let payment = self.payment(rrn)?;
        let holder = self.account(&payment.account)?;
        let bank = self.account(&self.own_account()?)?;
        let keys = Self::keys_of(&bank)?;
        let clearance = self.clear(&holder, Outflow::Exempt(Exemption::Return)).await?;
        let wanted = Self::mandated(&payment.mandate);
        let held = self.state().vault.available(&holder.id, &wanted)?;
        let draft = self.draft(&bank, Memo::new(format!("card partial reversal {rrn}")).ok());
        let host = self.config.id.clone();
        self.plan(clearance, Signers::Custodial(keys), None, held, &wanted, |inputs| {
            build::card_release(&draft, inputs, keep, holder.address, host)
        })
        .await
    }

    async fn plan_refund(&self, rrn: &Rrn, amount: Amount) -> Result<Plan, NodeError> {
        let payment = self.payment(rrn)?;
        let holder = self.account(&payment.account)?;
        let bank = self.account(&self.own_account()?)?;
        let payee = self.payees(&[PayTo { address: holder.address, amount }]).await?;
        let clearance = self.clear(&bank, Outflow::Pay { amount, standard: amount }).await?;
        let keys = Self::keys_of(&bank)?;
        let draft = self.draft(&bank, Memo::new(format!("card refund of {rrn}")).ok());
        self.plan(clearance, Signers::Custodial(keys), None, amount, standard_dt, |inputs| {
            build::transfer(&draft, inputs, &payee)
        })
        .await
    }

    /// Returns the funds of authorisations the scheme let expire, and
    /// records the answers to messages whose transaction committed while
    /// their answer was lost (a crash): the tick.
    pub(super) async fn expire_card_authorisations(&self, done: &mut Vec<String>) {
        let _cards = self.cards.lock().await;
        let interrupted = self.state().cards.interrupted();
        for acting in interrupted {
            // The lock is held: no card transaction is being prepared now, so
            // one the journal does not know was never prepared.
            let outcome = match self.read(|s| s.outgoing(&acting.tx)).map(|o| o.status) {
                Some(Status::Success) => Outcome::Done(acting.tx),
                Some(Status::Rejected { .. }) | None => Outcome::Declined(ResponseCode::SystemMalfunction),
                Some(Status::UnderReview | Status::RequestAccepted) => continue,
            };
            match self.answer(&acting.message, outcome, Some(&acting.action)).await {
                Ok(r) => done.push(format!(
                    "card message {} {} answered after a restart: {}",
                    acting.message.mti.code(),
                    acting.message.rrn,
                    r.code.code()
                )),
                Err(e) => done.push(format!("card message {}: {e}", acting.message.rrn)),
            }
        }
        let now = self.clock.now();
        let expired = self.state().cards.expired(now);
        for payment in expired {
            let wanted = Self::mandated(&payment.mandate);
            let (free, any) = {
                let state = self.state();
                let mut tokens = state.vault.of_account(&payment.account).filter(|(_, s)| wanted(&s.token));
                let any = tokens.next().is_some();
                (state.vault.available(&payment.account, &wanted).unwrap_or(Amount::ZERO), any)
            };
            let tx = if !any {
                // Returned already (its record lost in a crash): only the book is behind.
                None
            } else if free.is_zero() {
                continue;
            } else {
                let outcome = match self.plan_return(&payment.rrn).await {
                    Ok(plan) => self.execute(plan).await,
                    Err(e) => Err(e),
                };
                match outcome {
                    Ok(o) if o.status == Status::Success => Some(o.tx),
                    Ok(o) => {
                        done.push(format!("card authorisation {} expiry under review: {}", payment.rrn, o.tx));
                        continue;
                    }
                    Err(e) => {
                        done.push(format!("card authorisation {} expiry: {e}", payment.rrn));
                        continue;
                    }
                }
            };
            let record = CardRecord::Expired { rrn: payment.rrn.clone(), tx, at: now };
            match self.record(vec![NodeRecord::Card(Box::new(record))]).await {
                Ok(()) => done.push(format!("card authorisation {} expired: held funds back", payment.rrn)),
                Err(e) => done.push(format!("card authorisation {} expiry: {e}", payment.rrn)),
            }
        }
        if self.state().cards.has_forgettable(now)
            && let Err(e) = self.record(vec![NodeRecord::Card(Box::new(CardRecord::Forgotten { at: now }))]).await
        {
            done.push(format!("card book: {e}"));
        }
    }
}
