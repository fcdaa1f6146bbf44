//! Issue and redeem: the only commands that change the money supply.
//!
//! Issue: no inputs; standard outputs of one currency; signed by that
//! currency's issuer (NBK for DT). The CBS confirmation reference names the
//! debit of the bank's non-cash tenge that backs it.
//!
//! Redeem: the issuer destroys tokens it holds (a bank first transfers the DT to
//! the issuer's DA with its redemption request); any change returns to the
//! issuer; signed by the issuer.

use dtenge_types::Token;

use super::{Signers, View};
use crate::Rejection;
use crate::common::{single_currency, standard_inputs, sum};

fn issuer_of(v: &View<'_>, tokens: &[Token]) -> Result<dtenge_types::Address, Rejection> {
    let currency = single_currency(tokens, v.command)?.ok_or(Rejection::NoOutputs { command: v.command })?;
    if v.ctx.params.stablecoins.contains_key(&currency) {
        return Err(Rejection::StablecoinWithoutReserve { currency });
    }
    v.ctx.params.issuers.get(&currency).copied().ok_or(Rejection::UnknownCurrency { currency })
}

fn standard_outputs(v: &View<'_>) -> Result<(), Rejection> {
    match v.outputs.iter().position(|t| !t.is_standard()) {
        Some(output) => Err(Rejection::OutputNotStandard { output, command: v.command }),
        None => Ok(()),
    }
}

pub(crate) fn issue(v: &View<'_>) -> Result<Signers, Rejection> {
    standard_outputs(v)?;
    let issuer = issuer_of(v, v.outputs)?;
    sum(v.outputs)?;
    Ok(Signers::from([*issuer.public_key()]))
}

pub(crate) fn redeem(v: &View<'_>) -> Result<Signers, Rejection> {
    standard_inputs(v.inputs, v.command)?;
    standard_outputs(v)?;
    let issuer = issuer_of(v, v.inputs)?;
    if let Some(input) = v.inputs.iter().position(|t| t.owner != issuer) {
        return Err(Rejection::RedeemNotIssuerHeld { input });
    }
    let all: Vec<Token> = v.inputs.iter().chain(v.outputs.iter()).cloned().collect();
    single_currency(&all, v.command)?;
    if let Some(output) = v.outputs.iter().position(|t| t.owner != issuer) {
        return Err(Rejection::ChangeNotToOwner { output });
    }
    let destroyed = sum(v.inputs)?.checked_sub(sum(v.outputs)?);
    match destroyed {
        Some(d) if !d.is_zero() => Ok(Signers::from([*issuer.public_key()])),
        Some(_) => Err(Rejection::NothingRedeemed),
        None => Err(Rejection::ValueNotConserved {
            currency: v.inputs[0].currency,
            inputs: sum(v.inputs)?,
            outputs: sum(v.outputs)?,
        }),
    }
}
