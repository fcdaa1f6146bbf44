//! Holds (SPEC §4.1): standard funds held on the owner's DA for an oracle
//! event, released to the recipient on the oracle's word, returned after
//! valid-until without it, or returned when the provider cancels.
//!
//! Release, expiry and cancel need no owner signature: the oracle's
//! attestation (bound to this transaction's id) or the clock is the authority,
//! and the outputs are fully fixed by the hold's terms, so no one can redirect
//! anything. This is what makes expiry independent of the oracle and the
//! owner's node being up.

use dtenge_types::{Amount, Encumbrance, EventId, Hold, HoldKind, Statement};

use super::{Signers, View};
use crate::Rejection;
use crate::common::{conserve, single_owner, standard_inputs, sum};

fn mismatch(field: &'static str) -> Rejection {
    Rejection::AttestationMismatch { field }
}

pub(crate) fn hold(v: &View<'_>, event: &EventId, statement: &Statement) -> Result<Signers, Rejection> {
    let Statement::HoldConfirmed { event: e, sender, recipient, amount, valid_until, kind } = statement else {
        return Err(mismatch("statement kind"));
    };
    if e != event {
        return Err(mismatch("event"));
    }
    if sender == recipient {
        return Err(mismatch("recipient equals sender"));
    }
    standard_inputs(v.inputs, v.command)?;
    let owner = single_owner(v.inputs)?;
    if owner != *sender {
        return Err(mismatch("sender"));
    }
    if v.tx.body.window.not_after > *valid_until {
        return Err(Rejection::HoldOver { valid_until: *valid_until });
    }
    let mut held = Amount::ZERO;
    for (output, token) in v.outputs.iter().enumerate() {
        if token.owner != owner {
            return Err(Rejection::ChangeNotToOwner { output });
        }
        if token.marking.is_some() {
            return Err(Rejection::HoldTermsMismatch { output });
        }
        match &token.encumbrance {
            None => {}
            Some(Encumbrance::Hold(h))
                if h.event == *event
                    && h.recipient == *recipient
                    && h.valid_until == *valid_until
                    && h.kind == *kind =>
            {
                held = held.checked_add(token.amount).ok_or(Rejection::Overflow)?;
            }
            Some(_) => return Err(Rejection::HoldTermsMismatch { output }),
        }
    }
    // All held outputs must carry one and the same hold.
    let mut terms = v.outputs.iter().filter_map(|t| match &t.encumbrance {
        Some(Encumbrance::Hold(h)) => Some(h),
        _ => None,
    });
    if let Some(first) = terms.next()
        && let Some(output) =
            v.outputs.iter().position(|t| matches!(&t.encumbrance, Some(Encumbrance::Hold(h)) if h != first))
    {
        return Err(Rejection::HoldTermsMismatch { output });
    }
    if held != *amount {
        return Err(Rejection::HoldAmountMismatch { expected: *amount, actual: held });
    }
    conserve(v.inputs, v.outputs)?;
    Ok(Signers::from([*owner.public_key()]))
}

/// The common hold of all inputs, which must be held for `event`.
fn held_inputs<'a>(v: &View<'a>, event: &EventId) -> Result<&'a Hold, Rejection> {
    let mut common: Option<&Hold> = None;
    for (input, token) in v.inputs.iter().enumerate() {
        let Some(Encumbrance::Hold(h)) = &token.encumbrance else {
            return Err(Rejection::WrongInputKind { input, expected: "held for an event" });
        };
        if token.marking.is_some() {
            return Err(Rejection::WrongInputKind { input, expected: "an unmarked held token" });
        }
        if h.event != *event {
            return Err(Rejection::WrongInputKind { input, expected: "held for the named event" });
        }
        match common {
            None => common = Some(h),
            Some(c) if c != h => return Err(Rejection::MixedTerms { input, what: "hold terms" }),
            Some(_) => {}
        }
    }
    common.ok_or(Rejection::NoInputs { command: v.command })
}

/// Every output is a standard token returned to `owner`.
fn all_returned(v: &View<'_>, owner: &dtenge_types::Address) -> Result<(), Rejection> {
    for (output, token) in v.outputs.iter().enumerate() {
        if token.owner != *owner {
            return Err(Rejection::ChangeNotToOwner { output });
        }
        if !token.is_standard() {
            return Err(Rejection::OutputNotStandard { output, command: v.command });
        }
    }
    conserve(v.inputs, v.outputs)
}

pub(crate) fn release(v: &View<'_>, event: &EventId, statement: &Statement) -> Result<Signers, Rejection> {
    let Statement::EventOccurred { event: e, amount } = statement else {
        return Err(mismatch("statement kind"));
    };
    if e != event {
        return Err(mismatch("event"));
    }
    let hold = held_inputs(v, event)?;
    let owner = single_owner(v.inputs)?;
    if !hold.open_during(&v.tx.body.window) {
        return Err(Rejection::HoldOver { valid_until: hold.valid_until });
    }
    let held = sum(v.inputs)?;
    if amount.is_zero() || *amount > held {
        return Err(Rejection::ReleaseExceedsHeld { held, requested: *amount });
    }
    let mut released = Amount::ZERO;
    for (output, token) in v.outputs.iter().enumerate() {
        let to_recipient = token.owner == hold.recipient && token.is_standard() && token.host == hold.recipient_node;
        let back_to_owner = token.owner == owner
            && token.marking.is_none()
            && match hold.kind {
                HoldKind::Single => token.encumbrance.is_none(),
                HoldKind::Recurring => token.encumbrance.as_ref() == Some(&Encumbrance::Hold(hold.clone())),
            };
        if to_recipient {
            released = released.checked_add(token.amount).ok_or(Rejection::Overflow)?;
        } else if !back_to_owner {
            return Err(Rejection::ReleaseOutputMismatch {
                output,
                reason: match hold.kind {
                    HoldKind::Single => "goes neither to the recipient nor back to the owner as standard money",
                    HoldKind::Recurring => "goes neither to the recipient nor back to the owner still held",
                },
            });
        }
    }
    if released != *amount {
        return Err(Rejection::ReleaseAmountMismatch { expected: *amount, actual: released });
    }
    conserve(v.inputs, v.outputs)?;
    Ok(Signers::new())
}

pub(crate) fn expire(v: &View<'_>, event: &EventId) -> Result<Signers, Rejection> {
    let hold = held_inputs(v, event)?;
    let owner = single_owner(v.inputs)?;
    let not_before = v.tx.body.window.not_before;
    if not_before <= hold.valid_until {
        return Err(Rejection::HoldNotOver { valid_until: hold.valid_until, not_before });
    }
    all_returned(v, &owner)?;
    Ok(Signers::new())
}

pub(crate) fn cancel(v: &View<'_>, event: &EventId, statement: &Statement) -> Result<Signers, Rejection> {
    let Statement::EventCancelled { event: e } = statement else {
        return Err(mismatch("statement kind"));
    };
    if e != event {
        return Err(mismatch("event"));
    }
    held_inputs(v, event)?;
    let owner = single_owner(v.inputs)?;
    all_returned(v, &owner)?;
    Ok(Signers::new())
}
