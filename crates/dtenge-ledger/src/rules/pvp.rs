//! Payment versus payment (SPEC §9): two parties exchange two currencies in
//! one transaction at a rate an FX oracle attests, so both legs settle or
//! neither does.
//!
//! Party A gives `base`, party B gives `quote`; B's leg must equal
//! `floor(A's leg × numerator / denominator)`.

use dtenge_types::{Address, Amount, Statement};

use super::{Signers, View};
use crate::Rejection;
use crate::common::{conserve, standard_inputs};

pub(crate) fn pvp(v: &View<'_>, statement: &Statement) -> Result<Signers, Rejection> {
    let Statement::FxRate { base, quote, numerator, denominator } = statement else {
        return Err(Rejection::AttestationMismatch { field: "statement kind" });
    };
    let legs = |reason| Rejection::PvpLegs { reason };
    if base == quote || *denominator == 0 || *numerator == 0 {
        return Err(Rejection::AttestationMismatch { field: "rate" });
    }
    standard_inputs(v.inputs, v.command)?;
    let mut payer_base: Option<Address> = None;
    let mut payer_quote: Option<Address> = None;
    for (input, token) in v.inputs.iter().enumerate() {
        let slot = if token.currency == *base {
            &mut payer_base
        } else if token.currency == *quote {
            &mut payer_quote
        } else {
            return Err(legs("an input is in neither of the attested currencies"));
        };
        match slot {
            None => *slot = Some(token.owner),
            Some(owner) if *owner != token.owner => return Err(Rejection::MixedOwners { input }),
            Some(_) => {}
        }
    }
    let (Some(a), Some(b)) = (payer_base, payer_quote) else {
        return Err(legs("both parties must give inputs"));
    };
    if a == b {
        return Err(legs("the two legs must have different parties"));
    }
    let mut leg_base = Amount::ZERO;
    let mut leg_quote = Amount::ZERO;
    for (output, token) in v.outputs.iter().enumerate() {
        if !token.is_standard() {
            return Err(Rejection::OutputNotStandard { output, command: v.command });
        }
        let (change_owner, receiver, leg) = if token.currency == *base {
            (a, b, &mut leg_base)
        } else if token.currency == *quote {
            (b, a, &mut leg_quote)
        } else {
            return Err(legs("an output is in neither of the attested currencies"));
        };
        if token.owner == receiver {
            *leg = leg.checked_add(token.amount).ok_or(Rejection::Overflow)?;
        } else if token.owner != change_owner {
            return Err(legs("an output goes to neither party"));
        }
    }
    if leg_base.is_zero() || leg_quote.is_zero() {
        return Err(legs("each party must receive something"));
    }
    let expected = u128::from(leg_base.tiyn())
        .checked_mul(u128::from(*numerator))
        .and_then(|x| x.checked_div(u128::from(*denominator)))
        .and_then(|x| u64::try_from(x).ok())
        .map(Amount::from_tiyn)
        .ok_or(Rejection::Overflow)?;
    if leg_quote != expected {
        return Err(Rejection::PvpRateMismatch { expected, actual: leg_quote });
    }
    conserve(v.inputs, v.outputs)?;
    Ok(Signers::from([*a.public_key(), *b.public_key()]))
}
