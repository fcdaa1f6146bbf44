//! Digital VAT (SPEC §4.2.3).
//!
//! Paying an e-invoice: the seller receives exactly the net amount as standard
//! tokens and exactly the VAT amount as VAT tokens. The buyer's own VAT tokens
//! go first; standard tokens are marked as VAT only for the shortfall, and
//! only into the seller's VAT part. VAT tokens never become standard except at
//! the tax authority ([`pay_vat`]).

use dtenge_types::{Amount, InvoiceId, Marking, Statement, Token};

use super::{Signers, View};
use crate::Rejection;
use crate::common::{conserve, marked_input, single_currency, single_owner, sum, unencumbered};

fn is_vat(token: &Token) -> bool {
    matches!(token.marking, Some(Marking::Vat))
}

/// Inputs are standard or VAT tokens of one owner.
fn vat_or_standard_inputs(v: &View<'_>) -> Result<(), Rejection> {
    for (input, token) in v.inputs.iter().enumerate() {
        unencumbered(input, token, v.command)?;
        match &token.marking {
            None | Some(Marking::Vat) => {}
            Some(other) => return Err(marked_input(input, other, v.command)),
        }
    }
    Ok(())
}

pub(crate) fn pay_invoice(v: &View<'_>, invoice: &InvoiceId, statement: &Statement) -> Result<Signers, Rejection> {
    let Statement::Invoice { invoice: i, seller, buyer, net, vat } = statement else {
        return Err(Rejection::AttestationMismatch { field: "statement kind" });
    };
    if i != invoice {
        return Err(Rejection::AttestationMismatch { field: "invoice" });
    }
    vat_or_standard_inputs(v)?;
    let owner = single_owner(v.inputs)?;
    if owner != *buyer {
        return Err(Rejection::AttestationMismatch { field: "buyer" });
    }
    if seller == buyer {
        return Err(Rejection::AttestationMismatch { field: "seller equals buyer" });
    }
    let mut seller_standard = Amount::ZERO;
    let mut seller_vat = Amount::ZERO;
    let mut buyer_vat = Amount::ZERO;
    for (output, token) in v.outputs.iter().enumerate() {
        if token.encumbrance.is_some() || !(token.marking.is_none() || is_vat(token)) {
            return Err(Rejection::WrongOutputMarking {
                output,
                reason: "an e-invoice payment creates standard and VAT tokens only",
            });
        }
        let slot = match (token.owner == *seller, token.owner == *buyer, is_vat(token)) {
            (true, _, false) => &mut seller_standard,
            (true, _, true) => &mut seller_vat,
            (false, true, true) => &mut buyer_vat,
            (false, true, false) => continue,
            (false, false, _) => return Err(Rejection::InvoicePartyMismatch { output }),
        };
        *slot = slot.checked_add(token.amount).ok_or(Rejection::Overflow)?;
    }
    if seller_standard != *net {
        return Err(Rejection::InvoiceAmountMismatch { part: "net", expected: *net, actual: seller_standard });
    }
    if seller_vat != *vat {
        return Err(Rejection::InvoiceAmountMismatch { part: "VAT", expected: *vat, actual: seller_vat });
    }
    let vat_in = sum(v.inputs.iter().filter(|t| is_vat(t)))?;
    let vat_out = seller_vat.checked_add(buyer_vat).ok_or(Rejection::Overflow)?;
    if vat_out < vat_in {
        return Err(Rejection::VatUnmarked { vat_in, vat_out });
    }
    if vat_out > vat_in && !buyer_vat.is_zero() {
        return Err(Rejection::VatNotUsedFirst { kept: buyer_vat });
    }
    let all: Vec<Token> = v.inputs.iter().chain(v.outputs.iter()).cloned().collect();
    single_currency(&all, v.command)?;
    conserve(v.inputs, v.outputs)?;
    Ok(Signers::from([*owner.public_key()]))
}

pub(crate) fn pay_vat(v: &View<'_>) -> Result<Signers, Rejection> {
    for (input, token) in v.inputs.iter().enumerate() {
        unencumbered(input, token, v.command)?;
        if !is_vat(token) {
            return Err(Rejection::WrongInputKind { input, expected: "a VAT token" });
        }
    }
    let owner = single_owner(v.inputs)?;
    let mut to_authority = false;
    for (output, token) in v.outputs.iter().enumerate() {
        let authority = v.ctx.params.tax_authorities.contains(&token.owner);
        if authority && token.is_standard() {
            to_authority = true;
        } else if token.owner == owner && is_vat(token) && token.encumbrance.is_none() {
            // VAT change.
        } else if authority {
            return Err(Rejection::WrongOutputMarking { output, reason: "VAT becomes standard at the tax authority" });
        } else {
            return Err(Rejection::VatRecipientNotTaxAuthority { output });
        }
    }
    if !to_authority {
        return Err(Rejection::NoOutputs { command: "pay_vat to the tax authority" });
    }
    conserve(v.inputs, v.outputs)?;
    Ok(Signers::from([*owner.public_key()]))
}
