//! Debit mandates (SPEC §4.4, the seed's "Cryptocard"): a DA holder reserves
//! funds that a grantee (its bank) may debit until valid-until. The reserved
//! amount is the mandate's limit, carried by the tokens themselves.

use dtenge_types::{Encumbrance, MandateId, MandateTerms};

use super::{Signers, View};
use crate::Rejection;
use crate::common::{conserve, single_owner, standard_inputs};

pub(crate) fn grant(v: &View<'_>, mandate: &MandateId) -> Result<Signers, Rejection> {
    standard_inputs(v.inputs, v.command)?;
    let owner = single_owner(v.inputs)?;
    let mut terms: Option<&MandateTerms> = None;
    for (output, token) in v.outputs.iter().enumerate() {
        if token.owner != owner {
            return Err(Rejection::ChangeNotToOwner { output });
        }
        if token.marking.is_some() {
            return Err(Rejection::MandateOutputMismatch { output, reason: "only standard funds can be reserved" });
        }
        match &token.encumbrance {
            None => {}
            Some(Encumbrance::Mandate(m)) if m.mandate == *mandate => match terms {
                None => terms = Some(m),
                Some(t) if t != m => {
                    return Err(Rejection::MandateOutputMismatch {
                        output,
                        reason: "all reserved outputs carry the same terms",
                    });
                }
                Some(_) => {}
            },
            Some(_) => {
                return Err(Rejection::MandateOutputMismatch {
                    output,
                    reason: "must be reserved for the named mandate",
                });
            }
        }
    }
    let terms = terms.ok_or(Rejection::MandateOutputMismatch { output: 0, reason: "no output is reserved" })?;
    if terms.grantee == owner {
        return Err(Rejection::MandateOutputMismatch { output: 0, reason: "the grantee must differ from the owner" });
    }
    if terms.grantee.public_key().check().is_err() {
        return Err(Rejection::MandateOutputMismatch { output: 0, reason: "the grantee is not a valid public key" });
    }
    if v.tx.body.window.not_after > terms.valid_until {
        return Err(Rejection::MandateOver { valid_until: terms.valid_until });
    }
    conserve(v.inputs, v.outputs)?;
    Ok(Signers::from([*owner.public_key()]))
}

/// The common mandate terms of all inputs.
fn mandated_inputs<'a>(v: &View<'a>, mandate: &MandateId) -> Result<&'a MandateTerms, Rejection> {
    let mut common: Option<&MandateTerms> = None;
    for (input, token) in v.inputs.iter().enumerate() {
        match (&token.encumbrance, &token.marking) {
            (Some(Encumbrance::Mandate(m)), None) if m.mandate == *mandate => match common {
                None => common = Some(m),
                Some(c) if c != m => return Err(Rejection::MixedTerms { input, what: "mandate terms" }),
                Some(_) => {}
            },
            _ => return Err(Rejection::WrongInputKind { input, expected: "reserved for the named mandate" }),
        }
    }
    common.ok_or(Rejection::NoInputs { command: v.command })
}

pub(crate) fn debit(v: &View<'_>, mandate: &MandateId) -> Result<Signers, Rejection> {
    let terms = mandated_inputs(v, mandate)?;
    let owner = single_owner(v.inputs)?;
    if v.tx.body.window.not_after > terms.valid_until {
        return Err(Rejection::MandateOver { valid_until: terms.valid_until });
    }
    let reserved = Some(Encumbrance::Mandate(terms.clone()));
    for (output, token) in v.outputs.iter().enumerate() {
        if token.marking.is_some() {
            return Err(Rejection::MandateOutputMismatch { output, reason: "debited funds are standard" });
        }
        let is_change = token.encumbrance == reserved && token.owner == owner;
        if !is_change && token.encumbrance.is_some() {
            return Err(Rejection::MandateOutputMismatch {
                output,
                reason: "only change to the owner stays reserved, under the same terms",
            });
        }
    }
    conserve(v.inputs, v.outputs)?;
    Ok(Signers::from([*terms.grantee.public_key()]))
}

pub(crate) fn revoke(v: &View<'_>, mandate: &MandateId) -> Result<Signers, Rejection> {
    mandated_inputs(v, mandate)?;
    let owner = single_owner(v.inputs)?;
    for (output, token) in v.outputs.iter().enumerate() {
        if token.owner != owner {
            return Err(Rejection::ChangeNotToOwner { output });
        }
        if !token.is_standard() {
            return Err(Rejection::OutputNotStandard { output, command: v.command });
        }
    }
    conserve(v.inputs, v.outputs)?;
    Ok(Signers::from([*owner.public_key()]))
}
