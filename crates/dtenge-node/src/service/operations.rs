//! A node's operations: what a DA's holder (or the node for it) asks for —
//! pay, mark, hold, release, pay an e-invoice, mandates, issue, redeem. Each
//! resolves its payees, passes the payer's guard and plans its transaction
//! ([`super::plan`]); the pipeline ([`super::pipeline`]) does the rest.

use std::collections::BTreeSet;

use dtenge_oracle::model::{AttestRequest, ContractPurpose, EventState};
use dtenge_oracle::service::{OracleAnswer, OracleRequest};
use dtenge_oracle::{OracleCode, OracleError, OracleRefusal};
use dtenge_types::{
    Address, Amount, CbsRef, ContractNo, Encumbrance, EventId, Hold, InvoiceId, MandateId, MandateTerms, Marking,
    MarkingRule, Memo, ParameterId, Timestamp, Token, TokenId, Transaction,
};

use super::plan::{Plan, Signers};
use super::{NodeService, PayTo, TxOutcome, standard_dt};
use crate::NodeError;
use crate::accounts::AccountId;
use crate::build;
use crate::guard::{Exemption, Outflow};

#[derive(Clone)]
struct AddressRuleKey {
    rule: MarkingRule,
    level: u8,
}

impl NodeService {
    /// For a DA whose holder keeps the key (SPEC §5: "the client signs
    /// itself"): builds the payment, reserves its inputs and returns the
    /// unsigned transaction; the client signs its id and hands it back to
    /// [`NodeService::submit_signed`] within the transaction's window.
    pub async fn prepare_pay(
        &self,
        from: &AccountId,
        to: &[PayTo],
        memo: Option<Memo>,
    ) -> Result<Transaction, NodeError> {
        let account = self.account(from)?;
        if account.key().is_some() {
            return Err(NodeError::Invalid(format!("{from} is custodial: the node signs; use pay")));
        }
        let total = Amount::checked_sum(to.iter().map(|p| p.amount)).ok_or(NodeError::Overflow)?;
        let payees = self.payees(to).await?;
        let clearance = self.clear(&account, Outflow::Pay { amount: total, standard: total }).await?;
        let draft = self.draft(&account, memo);
        let plan = self
            .plan(clearance, Signers::Nobody, None, total, standard_dt, |inputs| {
                build::transfer(&draft, inputs, &payees)
            })
            .await?;
        let tx = Transaction::unsigned(plan.body.clone());
        self.expire_awaiting();
        // Parked until the holder signs: nothing to wait for meanwhile.
        let plan = Plan { in_pipeline: Default::default(), ..plan };
        self.awaiting.lock().unwrap_or_else(|p| p.into_inner()).insert(tx.id(), plan);
        Ok(tx)
    }

    /// Takes back a transaction from [`NodeService::prepare_pay`] with the
    /// holder's signature, and sees it through.
    pub async fn submit_signed(&self, tx: Transaction) -> Result<TxOutcome, NodeError> {
        let id = tx.id();
        let plan = self.awaiting.lock().unwrap_or_else(|p| p.into_inner()).remove(&id).ok_or_else(|| {
            NodeError::Invalid(format!("no prepared transaction {id} awaits a signature (expired or unknown)"))
        })?;
        let input_ids: Vec<TokenId> = plan.body.inputs.to_vec();
        // Orders placed while the client was signing apply too.
        let payer = self.account(&plan.account)?;
        if let Err(e) = self.clear(&payer, Outflow::Pay { amount: Amount::ZERO, standard: Amount::ZERO }).await {
            self.state().vault.unreserve(&input_ids, id);
            return Err(e);
        }
        if let Some(revoked) = tx.signatures.iter().find(|s| self.is_revoked(&s.signer)) {
            self.state().vault.unreserve(&input_ids, id);
            return Err(NodeError::Forbidden(format!(
                "key {} was revoked after a key rotation and can sign nothing",
                revoked.signer
            )));
        }
        // The pipeline validates the holder's signature with the rest.
        self.execute(Plan { signers: Signers::Client(Box::new(tx)), ..plan }).await
    }

    /// A standard payment to one or several DAs (SPEC §4.3).
    pub async fn pay(&self, from: &AccountId, to: &[PayTo], memo: Option<Memo>) -> Result<TxOutcome, NodeError> {
        let account = {
            let _turn = self.turn().await;
            self.account(from)?
        };
        let total = Amount::checked_sum(to.iter().map(|p| p.amount)).ok_or(NodeError::Overflow)?;
        let payees = self.route(to).await?;
        let outflow = Outflow::Pay { amount: total, standard: total };
        let outcome = self
            .pay_checked(&account, outflow, &payees, async |clearance| {
                let keys = Self::keys_of(&account)?;
                let draft = self.draft(&account, memo);
                self.plan(clearance, Signers::Custodial(keys), None, total, standard_dt, |inputs| {
                    build::transfer(&draft, inputs, &payees)
                })
                .await
            })
            .await?;
        // Other nodes' payees are swept by their own nodes, on receipt.
        let local: Vec<Address> = payees.iter().filter(|p| p.host == self.config.id).map(|p| p.address).collect();
        self.sweep_local(local.into_iter()).await;
        Ok(outcome)
    }

    /// Reverse waterfall for this node's DAs that just received money.
    pub(super) async fn sweep_local(&self, addresses: impl Iterator<Item = Address>) {
        let mut addresses = addresses.peekable();
        if addresses.peek().is_none() {
            return;
        }
        let local: BTreeSet<AccountId> = {
            let _turn = self.turn().await;
            let state = self.state();
            addresses.filter_map(|a| state.account_of(&a).map(|acc| acc.id.clone())).collect()
        };
        for account in local {
            if let Err(e) = self.sweep_over_cap(&account).await {
                tracing::warn!(%account, error = %e, "reverse waterfall deferred");
            }
        }
    }

    /// Pays address-marked funds to next-level recipients (SPEC §4.2.1).
    pub async fn pay_marked(
        &self,
        from: &AccountId,
        to: &[PayTo],
        reference: Option<&str>,
        memo: Option<Memo>,
    ) -> Result<TxOutcome, NodeError> {
        let account = self.account(from)?;
        let payees = self.route(to).await?;
        let total = Amount::checked_sum(payees.iter().map(|p| p.amount)).ok_or(NodeError::Overflow)?;
        let outflow = Outflow::Pay { amount: total, standard: Amount::ZERO };
        self.pay_checked(&account, outflow, &payees, async |clearance| {
            let keys = Self::keys_of(&account)?;
            // All inputs must share one marking: pick the rule of the largest marked token (or the named reference).
            let rule = {
                let state = self.state();
                let mut marked: Vec<(Amount, AddressRuleKey)> = state
                    .vault
                    .of_account(&account.id)
                    .filter(|(_, s)| s.reserved_by.is_none())
                    .filter_map(|(_, s)| match &s.token.marking {
                        Some(Marking::Address(m)) if reference.is_none_or(|r| m.rule.reference.as_str() == r) => {
                            Some((s.token.amount, AddressRuleKey { rule: m.rule.clone(), level: m.level }))
                        }
                        _ => None,
                    })
                    .collect();
                marked.sort_by_key(|m| std::cmp::Reverse(m.0));
                marked.into_iter().next().map(|(_, k)| k).ok_or(NodeError::NothingToSpend)?
            };
            let draft = self.draft(&account, memo);
            let wanted = move |t: &Token| {
                matches!(&t.marking, Some(Marking::Address(m)) if m.rule == rule.rule && m.level == rule.level)
                    && t.encumbrance.is_none()
            };
            self.plan(clearance, Signers::Custodial(keys), None, total, wanted, |inputs| {
                build::marked_transfer(&draft, inputs, &payees)
            })
            .await
        })
        .await
    }

    /// Marks funds by address for `recipient` (SPEC §4.2.1).
    pub async fn mark_address(
        &self,
        from: &AccountId,
        recipient: PayTo,
        rule: MarkingRule,
        memo: Option<Memo>,
    ) -> Result<TxOutcome, NodeError> {
        let account = self.account(from)?;
        let payees = self.route(std::slice::from_ref(&recipient)).await?;
        let amount = recipient.amount;
        self.pay_checked(&account, Outflow::Pay { amount, standard: amount }, &payees, async |clearance| {
            let keys = Self::keys_of(&account)?;
            let draft = self.draft(&account, memo);
            self.plan(clearance, Signers::Custodial(keys), None, amount, standard_dt, |inputs| {
                build::mark_address(&draft, inputs, &payees[0], rule)
            })
            .await
        })
        .await
    }

    /// Marks funds with a parameter registered on the oracle (SPEC §4.2.2).
    pub async fn mark_parameter(
        &self,
        from: &AccountId,
        recipient: PayTo,
        parameter: ParameterId,
        memo: Option<Memo>,
    ) -> Result<TxOutcome, NodeError> {
        let account = self.account(from)?;
        let payees = self.route(std::slice::from_ref(&recipient)).await?;
        let amount = recipient.amount;
        self.pay_checked(&account, Outflow::Pay { amount, standard: amount }, &payees, async |clearance| {
            let keys = Self::keys_of(&account)?;
            let draft = self.draft(&account, memo);
            self.plan(clearance, Signers::Custodial(keys), Some(AttestRequest::Plain), amount, standard_dt, |inputs| {
                build::mark_parameter(&draft, inputs, &payees[0], parameter)
            })
            .await
        })
        .await
    }

    /// Pays parameter-marked funds under a contract; `cash_out_to` names the
    /// bank DA for a cash-out (SPEC §4.2.2).
    pub async fn contract_payment(
        &self,
        from: &AccountId,
        parameter: ParameterId,
        contract: ContractNo,
        recipient: PayTo,
        cash_out: bool,
        memo: Option<Memo>,
    ) -> Result<TxOutcome, NodeError> {
        let account = self.account(from)?;
        let state = self
            .oracle(OracleRequest::GetContract { parameter: parameter.clone(), contract: contract.clone() })
            .await?;
        let OracleAnswer::Contract(Some(c)) = state else {
            return Err(NodeError::Oracle(
                OracleError::UnknownContract { parameter: parameter.clone(), contract: contract.clone() }.refusal(),
            ));
        };
        let unmark = cash_out || c.contract.final_recipient;
        let purpose =
            if cash_out { ContractPurpose::CashOut { bank: recipient.address } } else { ContractPurpose::Transfer };
        let payees = self.route(std::slice::from_ref(&recipient)).await?;
        let outflow = Outflow::Pay { amount: recipient.amount, standard: Amount::ZERO };
        self.pay_checked(&account, outflow, &payees, async |clearance| {
            let keys = Self::keys_of(&account)?;
            let draft = self.draft(&account, memo);
            let wanted = |t: &Token| {
                matches!(&t.marking, Some(Marking::Parameter(m)) if m.parameter == parameter) && t.encumbrance.is_none()
            };
            self.plan(
                clearance,
                Signers::Custodial(keys),
                Some(AttestRequest::ContractPayment { purpose }),
                recipient.amount,
                wanted,
                |inputs| build::contract_payment(&draft, inputs, &payees[0], contract.clone(), unmark),
            )
            .await
        })
        .await
    }

    /// Holds funds for an oracle event (SPEC §4.1): the event's amount, or
    /// `amount` for a campaign contribution.
    pub async fn hold(&self, from: &AccountId, event: EventId, amount: Option<Amount>) -> Result<TxOutcome, NodeError> {
        let account = self.account(from)?;
        let spec = self.event(&event).await?.spec;
        let amount = spec
            .amount
            .or(amount)
            .ok_or_else(|| NodeError::Invalid("a campaign contribution needs an amount".into()))?;
        let hold = Hold {
            event: event.clone(),
            recipient: spec.recipient,
            recipient_node: spec.recipient_node.clone(),
            valid_until: spec.hold_valid_until(),
            kind: spec.kind.hold_kind(),
        };
        let clearance = self.clear(&account, Outflow::Commit { amount }).await?;
        let keys = Self::keys_of(&account)?;
        let draft = self.draft(&account, None);
        let plan = self
            .plan(clearance, Signers::Custodial(keys), Some(AttestRequest::Plain), amount, standard_dt, |inputs| {
                build::hold(&draft, inputs, amount, hold)
            })
            .await?;
        self.execute(plan).await
    }

    pub(super) async fn event(&self, event: &EventId) -> Result<EventState, NodeError> {
        match self.oracle(OracleRequest::GetEvent(event.clone())).await? {
            OracleAnswer::Event(Some(e)) => Ok(e),
            _ => Err(NodeError::Oracle(OracleError::UnknownEvent { event: event.clone() }.refusal())),
        }
    }

    /// Local DAs holding funds for `event`.
    pub(super) fn holders_of(&self, event: &EventId) -> BTreeSet<AccountId> {
        let state = self.state();
        state
            .vault
            .iter()
            .filter(|(_, s)| s.reserved_by.is_none())
            .filter(|(_, s)| matches!(&s.token.encumbrance, Some(Encumbrance::Hold(h)) if h.event == *event))
            .map(|(_, s)| s.account.clone())
            .collect()
    }

    pub(super) fn held_by(event: &EventId) -> impl Fn(&Token) -> bool + '_ {
        move |t: &Token| matches!(&t.encumbrance, Some(Encumbrance::Hold(h)) if h.event == *event)
    }

    /// Releases what the oracle says is releasable for `event` from a local DA.
    pub async fn release(&self, account_id: &AccountId, event: &EventId) -> Result<TxOutcome, NodeError> {
        let account = self.account(account_id)?;
        let state = self.event(event).await?;
        let releasable =
            if state.spec.kind.is_campaign() { state.releasable_for(&account.address) } else { state.releasable() };
        if releasable.is_zero() {
            return Err(NodeError::Oracle(OracleRefusal::new(
                OracleCode::EventNotOccurred,
                format!("nothing is releasable for event {event}"),
            )));
        }
        let held = self.state().vault.available(&account.id, Self::held_by(event))?;
        let amount = releasable.min(held);
        let clearance = self.clear(&account, Outflow::Exempt(Exemption::Release)).await?;
        let draft = self.draft(&account, None);
        let plan = self
            .plan(clearance, Signers::Nobody, Some(AttestRequest::Plain), held, Self::held_by(event), |inputs| {
                build::release(&draft, inputs, amount)
            })
            .await?;
        self.execute(plan).await
    }

    /// Returns held funds: after valid-until (`expire`) or on a cancelled event.
    pub async fn unhold(&self, account_id: &AccountId, event: &EventId, expire: bool) -> Result<TxOutcome, NodeError> {
        let account = self.account(account_id)?;
        let held = self.state().vault.available(&account.id, Self::held_by(event))?;
        let draft = self.draft(&account, None);
        let attest = (!expire).then_some(AttestRequest::Plain);
        let clearance = self.clear(&account, Outflow::Exempt(Exemption::Return)).await?;
        let plan = self
            .plan(clearance, Signers::Nobody, attest, held, Self::held_by(event), |inputs| {
                build::unhold(&draft, inputs, event.clone(), expire)
            })
            .await?;
        self.execute(plan).await
    }

    /// Pays an e-invoice registered on the oracle (SPEC §4.2.3): own VAT
    /// tokens first, standard tokens for the rest.
    pub async fn pay_invoice(&self, from: &AccountId, invoice: InvoiceId) -> Result<TxOutcome, NodeError> {
        let account = self.account(from)?;
        let OracleAnswer::Invoice(Some(state)) = self.oracle(OracleRequest::GetInvoice(invoice.clone())).await? else {
            return Err(NodeError::Oracle(OracleError::UnknownInvoice { invoice: invoice.clone() }.refusal()));
        };
        let inv = state.invoice;
        if inv.buyer != account.address {
            return Err(NodeError::Invalid(format!("e-invoice {invoice} is addressed to another buyer")));
        }
        if let Some(tx) = state.paid_by {
            return Err(NodeError::Oracle(OracleError::InvoicePaid { invoice, tx }.refusal()));
        }
        let sellers = self.route(&[PayTo { address: inv.seller, amount: Amount::from_tiyn(1) }]).await?;
        let draft = self.draft(&account, None);
        let is_vat = |t: &Token| t.marking == Some(Marking::Vat) && t.encumbrance.is_none();
        let total = inv.net.checked_add(inv.vat).ok_or(NodeError::Overflow)?;
        let own_vat = self.state().vault.available(&account.id, is_vat)?;
        let from_standard =
            inv.net.checked_add(inv.vat.checked_sub(own_vat).unwrap_or(Amount::ZERO)).ok_or(NodeError::Overflow)?;
        let outflow = Outflow::Pay { amount: total, standard: from_standard };
        self.pay_checked(&account, outflow, &sellers, async |clearance| {
            let keys = Self::keys_of(&account)?;
            let seller = &sellers[0];
            let mut st = self.state();
            let vat_inputs = match st.vault.select(&clearance, inv.vat, is_vat) {
                Ok(enough) => enough,
                // Fewer VAT tokens than the VAT part: take them all.
                Err(_) => st.vault.select_all(&clearance, is_vat, dtenge_types::MAX_INPUTS),
            };
            let vat_in = Amount::checked_sum(vat_inputs.iter().map(|(_, t)| t.amount)).ok_or(NodeError::Overflow)?;
            let std_needed = inv.net.checked_add(inv.vat.saturating_sub(vat_in)).ok_or(NodeError::Overflow)?;
            let mut inputs = vat_inputs;
            if !std_needed.is_zero() {
                inputs.extend(st.vault.select(&clearance, std_needed, standard_dt)?);
            }
            let body = build::pay_invoice(&draft, &inputs, seller, inv.net, inv.vat, invoice)?;
            let ids: Vec<TokenId> = inputs.iter().map(|(id, _)| *id).collect();
            st.vault.reserve(&clearance, &ids, body.id())?;
            Ok(Plan {
                account: account.id.clone(),
                body,
                inputs: inputs.into_iter().map(|(_, t)| t).collect(),
                signers: Signers::Custodial(keys),
                attest: Some(AttestRequest::Plain),
                clearance,
                in_pipeline: Default::default(),
            })
        })
        .await
    }

    /// Pays VAT tokens to the tax authority, where they become standard.
    pub async fn pay_vat(&self, from: &AccountId, amount: Amount) -> Result<TxOutcome, NodeError> {
        let account = self.account(from)?;
        let authority = *self
            .config
            .params
            .tax_authorities
            .iter()
            .next()
            .ok_or_else(|| NodeError::Invalid("no tax authority is configured".into()))?;
        let payees = self.route(&[PayTo { address: authority, amount }]).await?;
        self.pay_checked(&account, Outflow::Pay { amount, standard: Amount::ZERO }, &payees, async |clearance| {
            let keys = Self::keys_of(&account)?;
            let draft = self.draft(&account, None);
            let is_vat = |t: &Token| t.marking == Some(Marking::Vat) && t.encumbrance.is_none();
            self.plan(clearance, Signers::Custodial(keys), None, amount, is_vat, |inputs| {
                build::pay_vat(&draft, inputs, &payees[0])
            })
            .await
        })
        .await
    }

    /// Reserves funds a grantee may debit until `valid_until` (SPEC §4.4).
    pub async fn grant_mandate(
        &self,
        from: &AccountId,
        mandate: MandateId,
        grantee: Address,
        amount: Amount,
        valid_until: Timestamp,
    ) -> Result<TxOutcome, NodeError> {
        let account = self.account(from)?;
        let clearance = self.clear(&account, Outflow::Commit { amount }).await?;
        let keys = Self::keys_of(&account)?;
        let terms = MandateTerms { mandate, grantee, valid_until };
        let draft = self.draft(&account, None);
        let plan = self
            .plan(clearance, Signers::Custodial(keys), None, amount, standard_dt, |inputs| {
                build::grant_mandate(&draft, inputs, amount, terms)
            })
            .await?;
        self.execute(plan).await
    }

    /// The grantee (a DA of this node) debits `owner`'s reserved funds to `to`.
    pub async fn debit(
        &self,
        grantee: &AccountId,
        owner: &AccountId,
        mandate: &MandateId,
        to: PayTo,
        memo: Option<Memo>,
    ) -> Result<TxOutcome, NodeError> {
        let grantee_account = self.account(grantee)?;
        if grantee_account.closed {
            return Err(NodeError::AccountClosed(grantee.to_string()));
        }
        let keys = Self::keys_of(&grantee_account)?;
        let owner_account = self.account(owner)?;
        let payees = self.route(std::slice::from_ref(&to)).await?;
        let outflow = Outflow::MandateDebit { amount: to.amount };
        self.pay_checked(&owner_account, outflow, &payees, async |clearance| {
            let draft = self.draft(&grantee_account, memo);
            let wanted = |t: &Token| matches!(&t.encumbrance, Some(Encumbrance::Mandate(m)) if m.mandate == *mandate && m.grantee == grantee_account.address);
            let owner_host = self.config.id.clone();
            self.plan(clearance, Signers::Custodial(keys), None, to.amount, wanted, |inputs| {
                build::debit(&draft, inputs, &payees[0], owner_account.address, owner_host)
            })
            .await
        })
        .await
    }

    /// The owner takes reserved funds back.
    pub async fn revoke_mandate(&self, from: &AccountId, mandate: &MandateId) -> Result<TxOutcome, NodeError> {
        let account = self.account(from)?;
        let clearance = self.clear(&account, Outflow::Exempt(Exemption::Return)).await?;
        let keys = Self::keys_of(&account)?;
        let wanted = |t: &Token| matches!(&t.encumbrance, Some(Encumbrance::Mandate(m)) if m.mandate == *mandate);
        let all = self.state().vault.available(&account.id, wanted)?;
        let draft = self.draft(&account, None);
        let plan = self
            .plan(clearance, Signers::Custodial(keys), None, all, wanted, |inputs| {
                build::revoke_mandate(&draft, inputs, mandate.clone())
            })
            .await?;
        self.execute(plan).await
    }

    /// NBK: issues DT to a bank's DA once the CBS has confirmed (SPEC §5).
    /// Another central bank's node issues its own currency the same way.
    pub async fn issue(&self, issuer: &AccountId, to: PayTo, cbs_reference: CbsRef) -> Result<TxOutcome, NodeError> {
        let account = self.account(issuer)?;
        if account.closed {
            return Err(NodeError::AccountClosed(issuer.to_string()));
        }
        let keys = Self::keys_of(&account)?;
        let currency = self
            .config
            .params
            .issuers
            .iter()
            .find(|(_, a)| **a == account.address)
            .map(|(c, _)| *c)
            .ok_or_else(|| NodeError::Invalid(format!("{issuer} is not the issuer of any currency")))?;
        let payees = self.route(std::slice::from_ref(&to)).await?;
        self.pay_checked(&account, Outflow::Exempt(Exemption::Issue), &payees, async |clearance| {
            let body = build::issue(&self.draft(&account, None), &payees[0], cbs_reference, currency)?;
            Ok(Plan {
                account: account.id.clone(),
                body,
                inputs: Vec::new(),
                signers: Signers::Custodial(keys),
                attest: None,
                clearance,
                in_pipeline: Default::default(),
            })
        })
        .await
    }

    /// NBK: destroys `amount` of DT it holds once the CBS has credited the bank (SPEC §5).
    pub async fn redeem(
        &self,
        issuer: &AccountId,
        amount: Amount,
        cbs_reference: CbsRef,
    ) -> Result<TxOutcome, NodeError> {
        let account = self.account(issuer)?;
        let clearance = self.clear(&account, Outflow::Conversion { amount }).await?;
        let keys = Self::keys_of(&account)?;
        let draft = self.draft(&account, None);
        let plan = self
            .plan(clearance, Signers::Custodial(keys), None, amount, standard_dt, |inputs| {
                build::redeem(&draft, inputs, amount, cbs_reference)
            })
            .await?;
        self.execute(plan).await
    }
}
