//! DT-backed stablecoins (SPEC §9): a licensed issuer's own currency, held
//! 1:1 in DT.
//!
//! Mint: the issuer spends its standard DT; outputs are the stablecoin
//! (standard, to anyone), DT in the stablecoin's reserve (encumbered
//! `Reserve`, owned by the issuer) and the issuer's DT change. The stablecoin
//! minted equals the DT put in the reserve.
//!
//! Burn: the issuer spends stablecoin it holds and reserve DT; outputs are
//! its stablecoin change, reserve change and the released DT (standard, to
//! the issuer). The stablecoin destroyed equals the DT released.
//!
//! No other command may create or spend a reserve token, and a stablecoin
//! cannot be issued or redeemed, so per stablecoin, reserve = supply after
//! every transaction: both start at zero and move together.

use dtenge_types::{Address, Currency, Encumbrance, Token};

use super::{Signers, View};
use crate::Rejection;
use crate::common::sum;

/// What one token of a mint or burn is.
enum Part {
    /// The stablecoin itself, standard.
    Coin,
    /// DT in this stablecoin's reserve, held by the issuer.
    Reserve,
    /// The issuer's standard DT.
    Dt,
}

fn reserve_of(token: &Token) -> Option<Currency> {
    match &token.encumbrance {
        Some(Encumbrance::Reserve(terms)) => Some(terms.stablecoin),
        _ => None,
    }
}

/// Reserve tokens appear in no other command's inputs or outputs.
pub(crate) fn reserve_untouched(v: &View<'_>) -> Result<(), Rejection> {
    if matches!(v.tx.body.command, dtenge_types::Command::Mint { .. } | dtenge_types::Command::Burn { .. }) {
        return Ok(());
    }
    if v.inputs.iter().any(|t| reserve_of(t).is_some()) {
        return Err(Rejection::ReserveUntouchable { command: v.command, which: "an input" });
    }
    if v.outputs.iter().any(|t| reserve_of(t).is_some()) {
        return Err(Rejection::ReserveUntouchable { command: v.command, which: "an output" });
    }
    Ok(())
}

/// The licensed issuer of `stablecoin`; DT and centrally issued currencies
/// are never stablecoins, whatever the parameters say.
fn issuer(v: &View<'_>, stablecoin: Currency) -> Result<Address, Rejection> {
    let params = v.ctx.params;
    if stablecoin == Currency::DT || params.issuers.contains_key(&stablecoin) {
        return Err(Rejection::UnknownStablecoin { currency: stablecoin });
    }
    params.stablecoins.get(&stablecoin).copied().ok_or(Rejection::UnknownStablecoin { currency: stablecoin })
}

/// Classifies a token of a mint or burn of `stablecoin` by `issuer`; `None`
/// if it is none of the three parts.
fn part(token: &Token, stablecoin: Currency, issuer: &Address) -> Option<Part> {
    if token.marking.is_some() {
        return None;
    }
    match (&token.encumbrance, token.currency) {
        (None, c) if c == stablecoin => Some(Part::Coin),
        (None, Currency::DT) if token.owner == *issuer => Some(Part::Dt),
        (Some(Encumbrance::Reserve(terms)), Currency::DT)
            if terms.stablecoin == stablecoin && token.owner == *issuer =>
        {
            Some(Part::Reserve)
        }
        _ => None,
    }
}

/// Totals of each part.
#[derive(Default)]
struct Parts {
    coin: Vec<Token>,
    reserve: Vec<Token>,
    dt: Vec<Token>,
}

impl Parts {
    fn add(&mut self, part: Part, token: &Token) {
        match part {
            Part::Coin => self.coin.push(token.clone()),
            Part::Reserve => self.reserve.push(token.clone()),
            Part::Dt => self.dt.push(token.clone()),
        }
    }
}

fn outputs(v: &View<'_>, stablecoin: Currency, issuer: &Address, coin_to_anyone: bool) -> Result<Parts, Rejection> {
    let mut parts = Parts::default();
    for (output, token) in v.outputs.iter().enumerate() {
        let part = part(token, stablecoin, issuer).ok_or(Rejection::StablecoinOutput {
            output,
            reason: "must be the stablecoin (standard), DT in its reserve held by the issuer, or the issuer's standard DT",
        })?;
        if matches!(part, Part::Coin) && !coin_to_anyone && token.owner != *issuer {
            return Err(Rejection::StablecoinOutput {
                output,
                reason: "a burn's stablecoin change returns to the issuer",
            });
        }
        parts.add(part, token);
    }
    Ok(parts)
}

pub(crate) fn mint(v: &View<'_>, stablecoin: Currency) -> Result<Signers, Rejection> {
    let issuer = issuer(v, stablecoin)?;
    for (input, token) in v.inputs.iter().enumerate() {
        if token.owner != issuer {
            return Err(Rejection::NotStablecoinIssuer { input });
        }
        if !matches!(part(token, stablecoin, &issuer), Some(Part::Dt)) {
            return Err(Rejection::WrongInputKind { input, expected: "the issuer's standard DT" });
        }
    }
    let made = outputs(v, stablecoin, &issuer, true)?;
    let minted = sum(&made.coin)?;
    let reserved = sum(&made.reserve)?;
    if minted.is_zero() {
        return Err(Rejection::NothingMintedOrBurned { command: v.command });
    }
    if minted != reserved {
        return Err(Rejection::ReserveMismatch { command: v.command, stablecoin: minted, reserve: reserved });
    }
    let given = sum(v.inputs)?;
    let kept = reserved.checked_add(sum(&made.dt)?).ok_or(Rejection::Overflow)?;
    if given != kept {
        return Err(Rejection::ValueNotConserved { currency: Currency::DT, inputs: given, outputs: kept });
    }
    Ok(Signers::from([*issuer.public_key()]))
}

pub(crate) fn burn(v: &View<'_>, stablecoin: Currency) -> Result<Signers, Rejection> {
    let issuer = issuer(v, stablecoin)?;
    let mut spent = Parts::default();
    for (input, token) in v.inputs.iter().enumerate() {
        if token.owner != issuer {
            return Err(Rejection::NotStablecoinIssuer { input });
        }
        match part(token, stablecoin, &issuer) {
            Some(Part::Dt) | None => {
                return Err(Rejection::WrongInputKind { input, expected: "the stablecoin or its reserve" });
            }
            Some(p) => spent.add(p, token),
        }
    }
    let made = outputs(v, stablecoin, &issuer, false)?;
    let coin_in = sum(&spent.coin)?;
    let coin_out = sum(&made.coin)?;
    let burned = coin_in.checked_sub(coin_out).ok_or(Rejection::ValueNotConserved {
        currency: stablecoin,
        inputs: coin_in,
        outputs: coin_out,
    })?;
    if burned.is_zero() {
        return Err(Rejection::NothingMintedOrBurned { command: v.command });
    }
    let reserve_in = sum(&spent.reserve)?;
    let reserve_out = sum(&made.reserve)?;
    let released = sum(&made.dt)?;
    let dt_out = reserve_out.checked_add(released).ok_or(Rejection::Overflow)?;
    if reserve_in != dt_out {
        return Err(Rejection::ValueNotConserved { currency: Currency::DT, inputs: reserve_in, outputs: dt_out });
    }
    if released != burned {
        return Err(Rejection::ReserveMismatch { command: v.command, stablecoin: burned, reserve: released });
    }
    Ok(Signers::from([*issuer.public_key()]))
}
