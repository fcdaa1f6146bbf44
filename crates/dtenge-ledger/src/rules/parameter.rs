//! Marking by parameter (SPEC §4.2.2): funds marked with a state order number
//! registered on the oracle move only under a contract the oracle attests. The
//! oracle tracks each contract's cumulative transfers and cash-outs against
//! their maxima; the kernel checks the transaction says what was attested.

use dtenge_types::{Amount, ContractNo, Marking, ParameterId, ParameterMarking, Statement};

use super::{Signers, View};
use crate::Rejection;
use crate::common::{conserve, marked_input, single_owner, standard_inputs, unencumbered};

pub(crate) fn mark(v: &View<'_>, parameter: &ParameterId, statement: &Statement) -> Result<Signers, Rejection> {
    let Statement::ParameterRegistered { parameter: p, initiator } = statement else {
        return Err(Rejection::AttestationMismatch { field: "statement kind" });
    };
    if p != parameter {
        return Err(Rejection::AttestationMismatch { field: "parameter" });
    }
    standard_inputs(v.inputs, v.command)?;
    let owner = single_owner(v.inputs)?;
    if owner != *initiator {
        return Err(Rejection::AttestationMismatch { field: "initiator" });
    }
    let mut marked = false;
    for (output, token) in v.outputs.iter().enumerate() {
        if token.encumbrance.is_some() {
            return Err(Rejection::WrongOutputMarking { output, reason: "marked funds cannot be encumbered here" });
        }
        match &token.marking {
            None if token.owner == owner => {}
            None => return Err(Rejection::ChangeNotToOwner { output }),
            Some(Marking::Parameter(m)) => {
                let host_matches = v.inputs.iter().all(|t| t.host == m.initiator_node);
                if m.parameter != *parameter || m.initiator != owner || !host_matches {
                    return Err(Rejection::WrongOutputMarking {
                        output,
                        reason: "must carry the attested parameter, the initiator and the initiator's node",
                    });
                }
                marked = true;
            }
            Some(_) => {
                return Err(Rejection::WrongOutputMarking {
                    output,
                    reason: "mark_parameter creates parameter markings only",
                });
            }
        }
    }
    if !marked {
        return Err(Rejection::MarkingRuleInvalid { reason: "no output is marked" });
    }
    conserve(v.inputs, v.outputs)?;
    Ok(Signers::from([*owner.public_key()]))
}

pub(crate) fn pay(
    v: &View<'_>,
    parameter: &ParameterId,
    contract: &ContractNo,
    statement: &Statement,
) -> Result<Signers, Rejection> {
    let Statement::ContractPayment { parameter: p, contract: c, sender, recipient, amount, unmark } = statement else {
        return Err(Rejection::AttestationMismatch { field: "statement kind" });
    };
    if p != parameter {
        return Err(Rejection::AttestationMismatch { field: "parameter" });
    }
    if c != contract {
        return Err(Rejection::AttestationMismatch { field: "contract" });
    }
    let mut marking: Option<&ParameterMarking> = None;
    for (input, token) in v.inputs.iter().enumerate() {
        unencumbered(input, token, v.command)?;
        match &token.marking {
            Some(Marking::Parameter(m)) if m.parameter == *parameter => match marking {
                None => marking = Some(m),
                Some(first) if first != m => return Err(Rejection::MixedTerms { input, what: "parameter marking" }),
                Some(_) => {}
            },
            Some(Marking::Parameter(_)) => {
                return Err(Rejection::WrongInputKind { input, expected: "marked with the contract's parameter" });
            }
            Some(other) => return Err(marked_input(input, other, v.command)),
            None => return Err(Rejection::WrongInputKind { input, expected: "parameter-marked" }),
        }
    }
    let marking = marking.ok_or(Rejection::NoInputs { command: v.command })?;
    let owner = single_owner(v.inputs)?;
    if owner != *sender {
        return Err(Rejection::AttestationMismatch { field: "sender" });
    }
    if sender == recipient {
        return Err(Rejection::AttestationMismatch { field: "recipient equals sender" });
    }
    let kept = Some(Marking::Parameter(marking.clone()));
    let mut paid = Amount::ZERO;
    for (output, token) in v.outputs.iter().enumerate() {
        if token.encumbrance.is_some() {
            return Err(Rejection::WrongOutputMarking { output, reason: "marked funds cannot be encumbered here" });
        }
        if token.owner == *recipient {
            let expected = if *unmark { None } else { kept.clone() };
            if token.marking != expected {
                return Err(Rejection::WrongOutputMarking {
                    output,
                    reason: if *unmark {
                        "the contract's recipient receives standard tokens"
                    } else {
                        "the contract's recipient receives tokens still marked with the parameter"
                    },
                });
            }
            paid = paid.checked_add(token.amount).ok_or(Rejection::Overflow)?;
        } else if token.owner == owner {
            if token.marking != kept {
                return Err(Rejection::WrongOutputMarking { output, reason: "change stays marked with the parameter" });
            }
        } else {
            return Err(Rejection::ContractRecipientMismatch { output });
        }
    }
    if paid != *amount {
        return Err(Rejection::ContractAmountMismatch { expected: *amount, actual: paid });
    }
    conserve(v.inputs, v.outputs)?;
    Ok(Signers::from([*owner.public_key()]))
}
