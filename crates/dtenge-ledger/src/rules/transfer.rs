//! Transfers of standard money (split, change, merge, several recipients,
//! several nodes) and of money marked by public address (SPEC §4.2.1).
//!
//! Marking by address. A GA marks funds to a marking recipient (level 0),
//! naming for each deeper level `1..=depth` the allowed recipients and a limit
//! on how much may reach that level in all. A holder at level `k` may send to
//! an allowed recipient of level `k+1`; at level `depth` the marking falls away
//! and the end supplier holds standard money. Change stays marked at level `k`.
//!
//! Limits travel with the tokens: a token at level `k` carries `allowances`,
//! its share of the limits of levels `k+1..=depth`. A transfer paying `P` to
//! level `k+1` needs `P ≤` the inputs' level-`k+1` allowance; what is left of
//! it goes with the change, and the deeper allowances are split between the
//! change and the payments without creating or destroying any:
//!
//! ```text
//!  inputs   allowances [A1, A2, …]            at level k
//!  change   allowances [c1, c2, …]            at level k     c1 ≤ A1 − P
//!  payments allowances [p2, …]                at level k+1   c_j + Σp_j ≤ A_j
//! ```
//!
//! Allowance may be dropped (≤, not =): that only lowers what can reach deeper
//! levels, and it lets a holder pay out a token whole when it carries more
//! allowance than value.

use dtenge_types::{Address, AddressMarking, Amount, Marking, MarkingRule, Token};

use super::{Signers, View, owner_signers};
use crate::Rejection;
use crate::common::{conserve, marked_input, single_owner, standard_inputs, sum, unencumbered};

pub(crate) fn transfer(v: &View<'_>) -> Result<Signers, Rejection> {
    for (i, token) in v.inputs.iter().enumerate() {
        unencumbered(i, token, v.command)?;
    }
    match v.inputs.first().and_then(|t| t.marking.as_ref()) {
        None => standard_transfer(v)?,
        Some(Marking::Address(first)) => marked_transfer(v, first)?,
        Some(other) => return Err(marked_input(0, other, v.command)),
    }
    Ok(owner_signers(v.inputs))
}

fn standard_transfer(v: &View<'_>) -> Result<(), Rejection> {
    standard_inputs(v.inputs, v.command)?;
    if let Some(output) = v.outputs.iter().position(|t| !t.is_standard()) {
        return Err(Rejection::OutputNotStandard { output, command: v.command });
    }
    conserve(v.inputs, v.outputs)
}

/// The address marking of input `i`, which must share `first`'s rule and level.
fn same_marking<'a>(i: usize, token: &'a Token, first: &AddressMarking) -> Result<&'a AddressMarking, Rejection> {
    match &token.marking {
        Some(Marking::Address(m)) if m.rule == first.rule && m.level == first.level => Ok(m),
        Some(Marking::Address(_)) => Err(Rejection::MixedTerms { input: i, what: "address marking or level" }),
        Some(other) => Err(marked_input(i, other, "transfer")),
        None => Err(Rejection::MixedTerms { input: i, what: "marking (standard and marked funds are not mixed)" }),
    }
}

/// Adds `values` into `acc` element-wise, checked.
fn add_into(acc: &mut [Amount], values: &[Amount]) -> Result<(), Rejection> {
    for (slot, value) in acc.iter_mut().zip(values) {
        *slot = slot.checked_add(*value).ok_or(Rejection::Overflow)?;
    }
    Ok(())
}

fn marked_transfer(v: &View<'_>, first: &AddressMarking) -> Result<(), Rejection> {
    let rule = &first.rule;
    let depth = rule.depth();
    let level = usize::from(first.level);
    // Inputs were validated when created, but a token is data from a store:
    // re-check the shape before indexing by it.
    if level >= depth || first.allowances.len() != depth.saturating_sub(level) {
        return Err(Rejection::MarkingRuleInvalid { reason: "input marking level or allowances malformed" });
    }
    let owner = single_owner(v.inputs)?;
    let next = level.saturating_add(1);
    let allowed = &rule.levels[level].recipients;
    let last = next == depth;

    let mut available = vec![Amount::ZERO; depth.saturating_sub(level)];
    for (i, token) in v.inputs.iter().enumerate() {
        let m = same_marking(i, token, first)?;
        add_into(&mut available, &m.allowances)?;
    }

    // `carried[j]` = allowance for level next+j carried by the outputs.
    let mut carried = vec![Amount::ZERO; available.len()];
    let mut paid = Amount::ZERO;
    for (output, token) in v.outputs.iter().enumerate() {
        if token.encumbrance.is_some() {
            return Err(Rejection::WrongOutputMarking { output, reason: "marked funds cannot be encumbered here" });
        }
        match &token.marking {
            Some(Marking::Address(m)) if m.rule == *rule && usize::from(m.level) == level => {
                if token.owner != owner {
                    return Err(Rejection::WrongOutputMarking {
                        output,
                        reason: "only change to the sender stays at the sender's level",
                    });
                }
                if m.allowances.len() != available.len() {
                    return Err(Rejection::WrongOutputMarking {
                        output,
                        reason: "change must carry every level's allowance",
                    });
                }
                add_into(&mut carried, &m.allowances)?;
            }
            Some(Marking::Address(m)) if m.rule == *rule && usize::from(m.level) == next && !last => {
                if !allowed.contains(&token.owner) {
                    return Err(Rejection::RecipientNotAllowed { output, level: next });
                }
                if m.allowances.len() != available.len().saturating_sub(1) {
                    return Err(Rejection::WrongOutputMarking {
                        output,
                        reason: "payment must carry the deeper levels' allowances",
                    });
                }
                add_into(carried.get_mut(1..).unwrap_or_default(), &m.allowances)?;
                paid = paid.checked_add(token.amount).ok_or(Rejection::Overflow)?;
            }
            None if last => {
                if !allowed.contains(&token.owner) {
                    return Err(Rejection::RecipientNotAllowed { output, level: next });
                }
                paid = paid.checked_add(token.amount).ok_or(Rejection::Overflow)?;
            }
            None => {
                return Err(if allowed.contains(&token.owner) {
                    Rejection::WrongOutputMarking { output, reason: "marking is removed only at the last level" }
                } else {
                    Rejection::RecipientNotAllowed { output, level: next }
                });
            }
            Some(_) => {
                return Err(if allowed.contains(&token.owner) || token.owner == owner {
                    Rejection::WrongOutputMarking {
                        output,
                        reason: "marking must be the inputs' rule at the sender's or the next level",
                    }
                } else {
                    Rejection::RecipientNotAllowed { output, level: next }
                });
            }
        }
    }

    // The next level's allowance is consumed by the payment.
    let next_available = available[0];
    let left = next_available.checked_sub(paid).ok_or(Rejection::MarkingLimitExceeded {
        level: next,
        requested: paid,
        available: next_available,
    })?;
    // Outputs may carry at most what the inputs had left, level by level.
    // Carrying less is allowed: dropped allowance only lowers what can reach
    // deeper levels, and it lets a holder spend a token whole.
    let allowed = std::iter::once(left).chain(available.iter().skip(1).copied());
    for (j, (want, got)) in allowed.zip(carried.iter()).enumerate() {
        if *got > want {
            return Err(Rejection::AllowanceNotConserved {
                level: next.saturating_add(j),
                inputs: want,
                outputs: *got,
            });
        }
    }
    conserve(v.inputs, v.outputs)
}

/// Checks a marking rule's own shape.
fn check_rule(rule: &MarkingRule, initiator: Address) -> Result<(), Rejection> {
    let bad = |reason| Err(Rejection::MarkingRuleInvalid { reason });
    if rule.initiator != initiator {
        return bad("the initiator must be the owner of the marked funds");
    }
    if rule.levels.is_empty() {
        return bad("depth must be at least 1");
    }
    for level in rule.levels.iter() {
        if level.recipients.is_empty() {
            return bad("every level needs at least one allowed recipient");
        }
        if level.limit.is_zero() {
            return bad("every level needs a positive limit");
        }
        if level.recipients.iter().any(|r| r.public_key().check().is_err()) {
            return bad("an allowed recipient is not a valid public key");
        }
    }
    Ok(())
}

pub(crate) fn mark_address(v: &View<'_>) -> Result<Signers, Rejection> {
    standard_inputs(v.inputs, v.command)?;
    let initiator = single_owner(v.inputs)?;
    let mut rule: Option<&MarkingRule> = None;
    let mut marked_total = Amount::ZERO;
    let mut allowances: Vec<Amount> = Vec::new();
    for (output, token) in v.outputs.iter().enumerate() {
        if token.encumbrance.is_some() {
            return Err(Rejection::WrongOutputMarking { output, reason: "marked funds cannot be encumbered here" });
        }
        match &token.marking {
            None if token.owner == initiator => {}
            None => return Err(Rejection::ChangeNotToOwner { output }),
            Some(Marking::Address(m)) => {
                let r = *rule.get_or_insert(&m.rule);
                if m.rule != *r {
                    return Err(Rejection::WrongOutputMarking {
                        output,
                        reason: "one marking transaction makes one marking",
                    });
                }
                if m.level != 0 || m.allowances.len() != r.depth() {
                    return Err(Rejection::WrongOutputMarking {
                        output,
                        reason: "new marked funds start at level 0 with an allowance for every level",
                    });
                }
                if allowances.is_empty() {
                    allowances = vec![Amount::ZERO; r.depth()];
                }
                add_into(&mut allowances, &m.allowances)?;
                marked_total = marked_total.checked_add(token.amount).ok_or(Rejection::Overflow)?;
            }
            Some(_) => {
                return Err(Rejection::WrongOutputMarking {
                    output,
                    reason: "mark_address creates address markings only",
                });
            }
        }
    }
    let rule = rule.ok_or(Rejection::MarkingRuleInvalid { reason: "no output is marked" })?;
    check_rule(rule, initiator)?;
    if let Some(input) = v.inputs.iter().position(|t| t.host != rule.initiator_node) {
        return Err(Rejection::MixedTerms { input, what: "host than the marking's initiator node" });
    }
    for (j, level) in rule.levels.iter().enumerate() {
        let level_number = j.saturating_add(1);
        if level.limit > marked_total {
            return Err(Rejection::MarkingRuleInvalid { reason: "a level's limit exceeds the amount marked" });
        }
        if allowances[j] != level.limit {
            return Err(Rejection::AllowanceNotConserved {
                level: level_number,
                inputs: level.limit,
                outputs: allowances[j],
            });
        }
    }
    sum(v.outputs)?;
    conserve(v.inputs, v.outputs)?;
    Ok(Signers::from([*initiator.public_key()]))
}
