//! Payment versus payment across two currencies and two nodes (SPEC §9):
//! both legs settle in one transaction or neither does.
//!
//! ```text
//!  A's node: rate from the oracle → A's inputs and B's leg → PvpPropose ─► B's node
//!  B's node: checks B's leg, adds B's inputs and A's leg, reserves, signs ─► back
//!  A's node: checks A's leg, FX attestation, signs, kernel, notary, delivery
//! ```
//!
//! B's node reserves B's tokens only for the transaction's window; if A's
//! node never commits it, they are freed on B's next tick after the window.

use dtenge_oracle::OracleError;
use dtenge_oracle::model::AttestRequest;
use dtenge_oracle::service::{OracleAnswer, OracleRequest};
use dtenge_types::{Address, Amount, Command, Currency, ParticipantId, Token, TokenId, TxBody, TxId, TxSignature};

use super::plan::{Plan, Signers};
use super::{NodeAnswer, NodeRequest, NodeService, PvpContribution, TxOutcome};
use crate::NodeError;
use crate::accounts::AccountId;
use crate::guard::{Clearance, Outflow};

/// `floor(amount × numerator / denominator)`.
fn convert(amount: Amount, numerator: u64, denominator: u64) -> Option<Amount> {
    let v = u128::from(amount.tiyn()).checked_mul(u128::from(numerator))?.checked_div(u128::from(denominator))?;
    u64::try_from(v).ok().map(Amount::from_tiyn)
}

fn standard_of(currency: Currency) -> impl Fn(&Token) -> bool {
    move |t: &Token| t.is_standard() && t.currency == currency
}

/// A PvP leg as the payer's guard sees it: tier limits are in DT, so a leg
/// in another currency counts nothing against them (a freeze still applies).
fn dt_leg(currency: Currency, amount: Amount) -> Outflow {
    let dt = if currency == Currency::DT { amount } else { Amount::ZERO };
    Outflow::Pay { amount: dt, standard: dt }
}

/// What A proposes to B.
struct Proposal {
    payer: Address,
    counterparty: Address,
    counterparty_node: ParticipantId,
    quote: Currency,
    quote_amount: Amount,
    base: Currency,
}

impl NodeService {
    /// Party A (a DA of this node) gives `amount` of `base` to party B
    /// (`counterparty`, on any node) and receives `quote` at the FX oracle's rate.
    pub async fn pvp(
        &self,
        from: &AccountId,
        counterparty: Address,
        base: Currency,
        amount: Amount,
        quote: Currency,
    ) -> Result<TxOutcome, NodeError> {
        let account = self.account(from)?;
        let OracleAnswer::Rate(Some(rate)) = self.ask_oracle(OracleRequest::GetRate { base, quote }).await? else {
            return Err(NodeError::Oracle(OracleError::NoRate { first: base, second: quote }.refusal()));
        };
        let quote_amount = convert(amount, rate.rate.numerator, rate.rate.denominator).ok_or(NodeError::Overflow)?;
        if quote_amount.is_zero() {
            return Err(NodeError::Invalid(format!("{amount} {base} buys nothing at the current rate")));
        }
        let counterparty_node = self.host_of(&counterparty).await?;
        let clearance = self.clear(&account, dt_leg(base, amount)).await?;
        let keys = Self::custodial_keys(&account)?;
        // A's part: A's inputs, B's leg, A's change.
        let partial = {
            let mut state = self.state_mut();
            let inputs = state.vault.select(&clearance, amount, standard_of(base))?;
            let total = Amount::checked_sum(inputs.iter().map(|(_, t)| t.amount)).ok_or(NodeError::Overflow)?;
            let change = total.checked_sub(amount).ok_or(NodeError::Overflow)?;
            let mut outputs = vec![Token::standard(base, amount, counterparty, counterparty_node.clone())];
            if !change.is_zero() {
                outputs.push(Token::standard(base, change, account.address, self.id().clone()));
            }
            let body = TxBody {
                inputs: inputs.iter().map(|(id, _)| *id).collect::<Vec<_>>().try_into()?,
                outputs: outputs.try_into()?,
                command: Command::Pvp,
                window: dtenge_types::TimeWindow::starting(self.clock().now(), crate::service::WINDOW_MS),
                memo: None,
            };
            let ids: Vec<TokenId> = body.inputs.to_vec();
            state.vault.reserve(&clearance, &ids, body.id())?;
            (body, inputs.into_iter().map(|(_, t)| t).collect::<Vec<Token>>())
        };
        let (partial_body, a_inputs) = partial;
        let partial_id = partial_body.id();
        let a_ids: Vec<TokenId> = partial_body.inputs.to_vec();
        let mut cosigned = None;
        let result = self
            .finish_pvp(
                clearance,
                keys,
                partial_body.clone(),
                a_inputs,
                Proposal {
                    payer: account.address,
                    counterparty,
                    counterparty_node: counterparty_node.clone(),
                    quote,
                    quote_amount,
                    base,
                },
                &mut cosigned,
            )
            .await;
        if result.is_err() {
            // A refusal frees at once what it reserved: A's tokens under
            // either id, and B's leg at B's node (B's tokens stay safe:
            // the notary lets only one spend of them through).
            {
                let mut state = self.state_mut();
                state.vault.unreserve(&a_ids, partial_id);
                if let Some(final_id) = cosigned {
                    state.vault.unreserve(&a_ids, final_id);
                }
            }
            if let Some(tx) = cosigned
                && !self.read(|s| s.knows_tx(&tx))
                && let Err(e) = self.call_node(&counterparty_node, NodeRequest::PvpAbandon { tx }).await
            {
                tracing::info!(%tx, error = %e, "the counterparty frees its leg when the window closes");
            }
        }
        result
    }

    async fn finish_pvp(
        &self,
        clearance: Clearance,
        keys: Vec<dtenge_crypto::SecretKey>,
        partial: TxBody,
        a_inputs: Vec<Token>,
        proposal: Proposal,
        cosigned: &mut Option<TxId>,
    ) -> Result<TxOutcome, NodeError> {
        let Proposal { payer, counterparty, counterparty_node, quote, quote_amount, base } = proposal;
        let a = &payer;
        let request = NodeRequest::PvpPropose {
            body: Box::new(partial.clone()),
            inputs: a_inputs.clone(),
            counterparty,
            quote,
            quote_amount,
        };
        let contribution = match self.call_node(&counterparty_node, request).await? {
            NodeAnswer::Pvp(c) => *c,
            NodeAnswer::Refused(refusal) => return Err(NodeError::RefusedBy { node: counterparty_node, refusal }),
            _ => return Err(NodeError::Unavailable("the counterparty's bank answered something else".into())),
        };
        // B may only add: our inputs and outputs must come first, unchanged,
        // and A's leg must be exactly the quoted amount.
        let body = contribution.body;
        *cosigned = Some(body.id());
        let ours_kept = body.inputs.starts_with(&partial.inputs)
            && body.outputs.starts_with(&partial.outputs)
            && body.command == partial.command
            && body.window == partial.window;
        let a_leg =
            Amount::checked_sum(body.outputs.iter().filter(|t| t.owner == *a && t.currency == quote).map(|t| t.amount));
        if !ours_kept || a_leg != Some(quote_amount) {
            return Err(NodeError::Invalid("the counterparty's bank changed the exchange".into()));
        }
        let mut inputs = a_inputs;
        inputs.extend(contribution.inputs);
        // Move our reservation to the final id.
        let final_id = body.id();
        {
            let mut state = self.state_mut();
            let ours: Vec<TokenId> = partial.inputs.to_vec();
            state.vault.unreserve(&ours, partial.id());
            state.vault.reserve(&clearance, &ours, final_id)?;
        }
        self.remember_consent(final_id, contribution.consent);
        let account = self
            .read(|s| s.account_of(a).map(|acc| acc.id.clone()))
            .ok_or_else(|| NodeError::UnknownAccount(a.to_string()))?;
        self.execute(Plan {
            account,
            body,
            inputs,
            signers: Signers::WithCounterparty { keys, counterparty: contribution.signature },
            attest: Some(AttestRequest::Pvp { base }),
            clearance,
            in_pipeline: Default::default(),
        })
        .await
    }

    /// B's node: adds B's leg to a proposed PvP and signs it.
    pub(crate) async fn cosign_pvp(
        &self,
        from: &ParticipantId,
        body: TxBody,
        a_inputs: Vec<Token>,
        counterparty: Address,
        quote: Currency,
        quote_amount: Amount,
    ) -> Result<PvpContribution, NodeError> {
        if body.command != Command::Pvp {
            return Err(NodeError::Invalid("not a PvP proposal".into()));
        }
        let account = self
            .read(|s| s.account_of(&counterparty).cloned())
            .ok_or_else(|| NodeError::UnknownRecipient(counterparty.to_string()))?;
        let keys = Self::custodial_keys(&account)?;
        let a =
            a_inputs.first().map(|t| t.owner).ok_or_else(|| NodeError::Invalid("the proposal has no inputs".into()))?;
        if a_inputs.len() != body.inputs.len() || a_inputs.iter().any(|t| t.host != *from) {
            return Err(NodeError::Invalid("the proposal's inputs are not the proposing bank's".into()));
        }
        let b_leg = Amount::checked_sum(body.outputs.iter().filter(|t| t.owner == counterparty).map(|t| t.amount))
            .ok_or(NodeError::Overflow)?;
        if b_leg.is_zero() {
            return Err(NodeError::Invalid("the proposal gives the counterparty nothing".into()));
        }
        let clearance = self.clear(&account, dt_leg(quote, quote_amount)).await?;
        let mut state = self.state_mut();
        let b_inputs = state.vault.select(&clearance, quote_amount, standard_of(quote))?;
        let total = Amount::checked_sum(b_inputs.iter().map(|(_, t)| t.amount)).ok_or(NodeError::Overflow)?;
        let change = total.checked_sub(quote_amount).ok_or(NodeError::Overflow)?;
        let mut inputs = body.inputs.to_vec();
        inputs.extend(b_inputs.iter().map(|(id, _)| *id));
        let mut outputs = body.outputs.to_vec();
        outputs.push(Token::standard(quote, quote_amount, a, from.clone()));
        if !change.is_zero() {
            outputs.push(Token::standard(quote, change, counterparty, self.id().clone()));
        }
        let full = TxBody { inputs: inputs.try_into()?, outputs: outputs.try_into()?, ..body };
        let id = full.id();
        let ids: Vec<TokenId> = b_inputs.iter().map(|(id, _)| *id).collect();
        state.vault.reserve(&clearance, &ids, id)?;
        drop(state);
        self.keep_cosigned(id, from.clone(), ids, full.window.not_after);
        let key = keys.first().ok_or_else(|| NodeError::ClientSigns(account.id.to_string()))?;
        let signature = TxSignature {
            signer: dtenge_crypto::Signer::public_key(key),
            signature: dtenge_crypto::Signer::sign(key, &id.signing_message()),
        };
        let consent = self.consent_to(&id);
        Ok(PvpContribution { body: full, inputs: b_inputs.into_iter().map(|(_, t)| t).collect(), signature, consent })
    }
}
