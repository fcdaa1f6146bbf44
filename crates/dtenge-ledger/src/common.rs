//! Small checks shared by the command rules: sums, conservation, owners and
//! input kinds. Each returns the precise [`Rejection`].

use std::collections::BTreeMap;

use dtenge_types::{Address, Amount, Currency, Encumbrance, Marking, Token};

use crate::Rejection;

/// The sum of `tokens`' amounts, checked.
pub fn sum<'a>(tokens: impl IntoIterator<Item = &'a Token>) -> Result<Amount, Rejection> {
    Amount::checked_sum(tokens.into_iter().map(|t| t.amount)).ok_or(Rejection::Overflow)
}

/// Per-currency totals, checked.
pub fn totals<'a>(tokens: impl IntoIterator<Item = &'a Token>) -> Result<BTreeMap<Currency, Amount>, Rejection> {
    let mut totals: BTreeMap<Currency, Amount> = BTreeMap::new();
    for token in tokens {
        let entry = totals.entry(token.currency).or_default();
        *entry = entry.checked_add(token.amount).ok_or(Rejection::Overflow)?;
    }
    Ok(totals)
}

/// Inputs and outputs carry the same value in every currency.
pub fn conserve(inputs: &[Token], outputs: &[Token]) -> Result<(), Rejection> {
    let given = totals(inputs)?;
    let made = totals(outputs)?;
    for currency in given.keys().chain(made.keys()) {
        let i = given.get(currency).copied().unwrap_or_default();
        let o = made.get(currency).copied().unwrap_or_default();
        if i != o {
            return Err(Rejection::ValueNotConserved { currency: *currency, inputs: i, outputs: o });
        }
    }
    Ok(())
}

/// The single currency of `tokens`, or `MixedCurrencies`.
pub fn single_currency(tokens: &[Token], command: &'static str) -> Result<Option<Currency>, Rejection> {
    let mut found = None;
    for token in tokens {
        match found {
            None => found = Some(token.currency),
            Some(c) if c != token.currency => return Err(Rejection::MixedCurrencies { command }),
            Some(_) => {}
        }
    }
    Ok(found)
}

/// The one owner of all `inputs`.
pub fn single_owner(inputs: &[Token]) -> Result<Address, Rejection> {
    let first = inputs.first().ok_or(Rejection::NoInputs { command: "this command" })?.owner;
    match inputs.iter().position(|t| t.owner != first) {
        Some(input) => Err(Rejection::MixedOwners { input }),
        None => Ok(first),
    }
}

fn marking_name(marking: &Marking) -> (&'static str, &'static str) {
    match marking {
        Marking::Address(_) => ("address", "transfer it to an allowed recipient of the next level"),
        Marking::Parameter(_) => ("parameter", "pay it with contract_payment under a registered contract"),
        Marking::Vat => ("VAT", "pay it as an e-invoice's VAT part or to the tax authority"),
    }
}

fn encumbrance_name(encumbrance: &Encumbrance) -> &'static str {
    match encumbrance {
        Encumbrance::Hold(_) => "held for an oracle event",
        Encumbrance::Mandate(_) => "reserved for a debit mandate",
        Encumbrance::Reserve(_) => "in a stablecoin's reserve",
    }
}

/// The input is not encumbered.
pub fn unencumbered(input: usize, token: &Token, command: &'static str) -> Result<(), Rejection> {
    match &token.encumbrance {
        Some(e) => Err(Rejection::EncumberedInput { input, encumbrance: encumbrance_name(e), command }),
        None => Ok(()),
    }
}

/// The input is neither marked nor encumbered.
pub fn standard_input(input: usize, token: &Token, command: &'static str) -> Result<(), Rejection> {
    unencumbered(input, token, command)?;
    match &token.marking {
        Some(m) => {
            let (marking, hint) = marking_name(m);
            Err(Rejection::MarkedInput { input, marking, command, hint })
        }
        None => Ok(()),
    }
}

/// Every input is standard.
pub fn standard_inputs(inputs: &[Token], command: &'static str) -> Result<(), Rejection> {
    inputs.iter().enumerate().try_for_each(|(i, t)| standard_input(i, t, command))
}

/// A rejection for a marked input, with the hint of what would spend it.
pub fn marked_input(input: usize, marking: &Marking, command: &'static str) -> Rejection {
    let (name, hint) = marking_name(marking);
    Rejection::MarkedInput { input, marking: name, command, hint }
}
