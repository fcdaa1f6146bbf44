//! The rules, one module per archetype, and the common checks every
//! transaction passes first.
//!
//! A rule returns the keys that must sign; the dispatcher then matches them
//! against the transaction's signatures exactly (no missing, no extra, no
//! duplicate) and gathers them, with the attestation's, for verification.

mod enforcement;
mod holds;
mod issue;
mod mandate;
mod parameter;
mod pvp;
mod stablecoin;
mod transfer;
mod vat;

use std::collections::BTreeSet;

use dtenge_crypto::PublicKey;
use dtenge_types::{Command, Statement, Token, Transaction, TxId};

use crate::{Checked, Context, Rejection, SignatureCheck, SignerRole};

/// What a rule sees.
pub(crate) struct View<'a> {
    pub id: TxId,
    pub tx: &'a Transaction,
    pub inputs: &'a [Token],
    pub outputs: &'a [Token],
    pub ctx: &'a Context<'a>,
    pub command: &'static str,
}

/// Who must sign, as decided by a rule.
pub(crate) type Signers = BTreeSet<PublicKey>;

/// The statement an attestation must make for `command`.
pub(crate) fn expected_statement(command: &Command) -> Option<&'static str> {
    match command {
        Command::Hold { .. } => Some("hold_confirmed"),
        Command::Release { .. } => Some("event_occurred"),
        Command::CancelHold { .. } => Some("event_cancelled"),
        Command::MarkParameter { .. } => Some("parameter_registered"),
        Command::ContractPayment { .. } => Some("contract_payment"),
        Command::PayInvoice { .. } => Some("invoice"),
        Command::Pvp => Some("fx_rate"),
        Command::Issue { .. }
        | Command::Redeem { .. }
        | Command::Transfer
        | Command::MarkAddress
        | Command::Expire { .. }
        | Command::PayVat
        | Command::GrantMandate { .. }
        | Command::Debit { .. }
        | Command::RevokeMandate { .. }
        | Command::Collect { .. }
        | Command::Rekey { .. }
        | Command::Mint { .. }
        | Command::Burn { .. } => None,
    }
}

pub(crate) fn check(tx: &Transaction, inputs: &[Token], ctx: &Context<'_>) -> Result<Checked, Rejection> {
    let body = &tx.body;
    let command = body.command.name();
    let view = View { id: tx.id(), tx, inputs, outputs: &body.outputs, ctx, command };
    structure(&view)?;
    stablecoin::reserve_untouched(&view)?;
    time_window(&view)?;
    let mut signatures = Vec::with_capacity(tx.signatures.len().saturating_add(1));
    let statement = attestation(&view, &mut signatures)?;
    let signers = dispatch(&view, statement, &mut signatures)?;
    transaction_signatures(&view, &signers, &mut signatures)?;
    Ok(Checked { id: view.id, signatures })
}

fn structure(v: &View<'_>) -> Result<(), Rejection> {
    let body = &v.tx.body;
    let is_issue = matches!(body.command, Command::Issue { .. });
    if is_issue && !body.inputs.is_empty() {
        return Err(Rejection::IssueWithInputs);
    }
    if !is_issue && body.inputs.is_empty() {
        return Err(Rejection::NoInputs { command: v.command });
    }
    let may_burn_all = matches!(body.command, Command::Redeem { .. });
    if !may_burn_all && body.outputs.is_empty() {
        return Err(Rejection::NoOutputs { command: v.command });
    }
    for (i, id) in body.inputs.iter().enumerate() {
        if body.inputs[..i].contains(id) {
            return Err(Rejection::DuplicateInput { input: i });
        }
    }
    if v.inputs.len() != body.inputs.len() {
        return Err(Rejection::InputsNotResolved { expected: body.inputs.len(), resolved: v.inputs.len() });
    }
    for (output, token) in v.outputs.iter().enumerate() {
        if token.amount.is_zero() {
            return Err(Rejection::ZeroAmount { output });
        }
        // Outputs that keep the owner of an input were checked when that input
        // was created; only new owners cost a curve check.
        let known = v.inputs.iter().any(|i| i.owner == token.owner);
        if !known && token.owner.public_key().check().is_err() {
            return Err(Rejection::InvalidOwnerKey { output });
        }
    }
    Ok(())
}

fn time_window(v: &View<'_>) -> Result<(), Rejection> {
    let window = v.tx.body.window;
    let now = v.ctx.now;
    let length_ms =
        window.not_after.millis().checked_sub(window.not_before.millis()).ok_or(Rejection::WindowMalformed)?;
    if length_ms > v.ctx.params.max_window_ms {
        return Err(Rejection::WindowTooLong { length_ms, max_ms: v.ctx.params.max_window_ms });
    }
    if now < window.not_before {
        return Err(Rejection::NotYetValid { not_before: window.not_before, now });
    }
    if now > window.not_after {
        return Err(Rejection::WindowExpired { not_after: window.not_after, now });
    }
    Ok(())
}

/// Finds the one attestation the command needs (or checks there is none),
/// checks its oracle is a platform oracle, and queues its signature.
fn attestation<'a>(v: &View<'a>, signatures: &mut Vec<SignatureCheck>) -> Result<Option<&'a Statement>, Rejection> {
    let attestations = &v.tx.attestations;
    let Some(expected) = expected_statement(&v.tx.body.command) else {
        return match attestations.first() {
            Some(a) => Err(Rejection::UnexpectedAttestation { statement: a.statement.name() }),
            None => Ok(None),
        };
    };
    let mut iter = attestations.iter();
    let Some(attestation) = iter.next() else {
        return Err(Rejection::MissingAttestation { command: v.command, expected });
    };
    if let Some(extra) = iter.next() {
        return Err(Rejection::UnexpectedAttestation { statement: extra.statement.name() });
    }
    if attestation.statement.name() != expected {
        return Err(Rejection::AttestationMismatch { field: "statement kind" });
    }
    if !v.ctx.params.oracles.contains(&attestation.oracle) {
        return Err(Rejection::UnknownOracle { oracle: attestation.oracle });
    }
    signatures.push(SignatureCheck {
        public_key: attestation.oracle,
        message: attestation.statement.signing_message(&v.id).to_vec(),
        signature: attestation.signature,
        role: SignerRole::Oracle,
    });
    Ok(Some(&attestation.statement))
}

/// Programmable-money amounts (holds, allowances, invoices, contracts) are in
/// one currency; only plain transfers and PvP may mix currencies.
fn one_currency_unless_plain(v: &View<'_>) -> Result<(), Rejection> {
    let plain = match &v.tx.body.command {
        // Mint and burn check their own two currencies (DT and the stablecoin).
        Command::Pvp | Command::Rekey { .. } | Command::Mint { .. } | Command::Burn { .. } => true,
        Command::Transfer => v.inputs.iter().all(|t| t.marking.is_none()),
        _ => false,
    };
    if plain {
        return Ok(());
    }
    let mut currencies = v.inputs.iter().chain(v.outputs.iter()).map(|t| t.currency);
    let first = currencies.next();
    if currencies.any(|c| Some(c) != first) {
        return Err(Rejection::MixedCurrencies { command: v.command });
    }
    Ok(())
}

fn dispatch(
    v: &View<'_>,
    statement: Option<&Statement>,
    signatures: &mut Vec<SignatureCheck>,
) -> Result<Signers, Rejection> {
    one_currency_unless_plain(v)?;
    // `attestation` guarantees a statement of the expected kind is present
    // for every command that needs one.
    let attested = || statement.ok_or(Rejection::MissingAttestation { command: v.command, expected: "statement" });
    match &v.tx.body.command {
        Command::Issue { .. } => issue::issue(v),
        Command::Redeem { .. } => issue::redeem(v),
        Command::Transfer => transfer::transfer(v),
        Command::MarkAddress => transfer::mark_address(v),
        Command::MarkParameter { parameter } => parameter::mark(v, parameter, attested()?),
        Command::ContractPayment { parameter, contract } => parameter::pay(v, parameter, contract, attested()?),
        Command::Hold { event } => holds::hold(v, event, attested()?),
        Command::Release { event } => holds::release(v, event, attested()?),
        Command::Expire { event } => holds::expire(v, event),
        Command::CancelHold { event } => holds::cancel(v, event, attested()?),
        Command::PayInvoice { invoice } => vat::pay_invoice(v, invoice, attested()?),
        Command::PayVat => vat::pay_vat(v),
        Command::GrantMandate { mandate } => mandate::grant(v, mandate),
        Command::Debit { mandate } => mandate::debit(v, mandate),
        Command::RevokeMandate { mandate } => mandate::revoke(v, mandate),
        Command::Pvp => pvp::pvp(v, attested()?),
        Command::Collect { order } => enforcement::collect(v, order, signatures),
        Command::Rekey { old, new } => enforcement::rekey(v, old, new),
        Command::Mint { stablecoin } => stablecoin::mint(v, *stablecoin),
        Command::Burn { stablecoin } => stablecoin::burn(v, *stablecoin),
    }
}

/// The transaction's signatures are exactly `required`, each once.
fn transaction_signatures(
    v: &View<'_>,
    required: &Signers,
    signatures: &mut Vec<SignatureCheck>,
) -> Result<(), Rejection> {
    let message = v.id.signing_message();
    let mut seen = BTreeSet::new();
    for entry in v.tx.signatures.iter() {
        if !seen.insert(entry.signer) {
            return Err(Rejection::DuplicateSignature { signer: entry.signer });
        }
        if !required.contains(&entry.signer) {
            return Err(Rejection::UnexpectedSignature { signer: entry.signer });
        }
        signatures.push(SignatureCheck {
            public_key: entry.signer,
            message: message.to_vec(),
            signature: entry.signature,
            role: SignerRole::Transaction,
        });
    }
    if let Some(missing) = required.iter().find(|k| !seen.contains(*k)) {
        return Err(Rejection::MissingSignature { signer: *missing });
    }
    Ok(())
}

/// The owners of `inputs` as signer keys.
pub(crate) fn owner_signers(inputs: &[Token]) -> Signers {
    inputs.iter().map(|t| *t.owner.public_key()).collect()
}
