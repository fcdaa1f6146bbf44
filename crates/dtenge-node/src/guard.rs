//! The payer's guard: every operation that moves a DA's funds out passes it
//! before it may select a single token (issue 17.3).
//!
//! ```text
//!  operation ─► Outflow (what it does to the DA's funds) ─► clear(standing, outflow)
//!      ├─ refused: closed, KYC, freeze, arrest, per-payment or daily tier limit
//!      ├─ TopUp: short of free standard DT, a linked bank account tops the DA up (waterfall), then clear again
//!      └─ Clearance ─► Vault::select — the only way to a DA's spendable tokens
//! ```
//!
//! A [`Clearance`] can be made only here, so an operation added later cannot
//! spend without naming its [`Outflow`] and passing [`clear`]. While a
//! clearance lives, its amount counts against the DA's daily limit (payments
//! cleared but not journaled yet), so concurrent payments cannot together
//! pass a limit each passes alone; it is dropped once the operation's
//! `Prepared` record counts the amount in the DA's book, or the operation is
//! refused.
//!
//! The policy, per outflow (docs/accounts.md):
//!
//! | outflow | closed / KYC | freeze | arrest | tier limits |
//! |---|---|---|---|---|
//! | `Pay` (transfer, marked, mark, contract payment, e-invoice, VAT, PvP leg, client-signed) | refused | refused | on standard DT | yes |
//! | `Commit` (hold, mandate grant: funds encumbered, still the holder's) | refused | refused | yes | yes (counted when released or debited) |
//! | `MandateDebit` (the grantee debits the owner's mandated funds) | closed refused | refused | — (encumbered funds) | yes |
//! | `Conversion` (to the linked bank account, the bank's own DA, redemption) | closed refused | refused | yes | no: not a payment |
//! | `Collection` (an authority's signed order) | — | no: enforcement goes first | only other bodies' arrests | no |
//! | `Exempt` (release on an event, expiry, cancelled hold, mandate revoked, key rotation, an issue) | — | — | — | — (funds already encumbered under the guard, or not leaving the DA) |

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use dtenge_crypto::PublicKey;
use dtenge_types::{Amount, OrderAct};

use crate::NodeError;
use crate::accounts::{Account, AccountId, KycState};
use crate::regime::{LimitKind, OrderEntry, Tier, TierLimits};

/// What an operation does to a DA's funds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outflow {
    /// The holder pays out of the DA.
    Pay {
        /// How much DT leaves the DA (tier limits are in DT: zero for a leg
        /// in another currency).
        amount: Amount,
        /// How much of it is spent from standard DT (arrests and the
        /// waterfall concern those; marked and VAT tokens are not arrested).
        standard: Amount,
    },
    /// The holder encumbers `amount` of standard DT (a hold, a debit mandate):
    /// still theirs, but out of their free use.
    Commit {
        /// How much is encumbered.
        amount: Amount,
    },
    /// A mandate's grantee debits `amount` of the owner's mandated funds.
    MandateDebit {
        /// How much leaves the owner's DA.
        amount: Amount,
    },
    /// Standard DT move between the DA and its linked bank account, or an
    /// institution's DA converts (not a payment: no tier limits).
    Conversion {
        /// How much.
        amount: Amount,
    },
    /// An authority's collection order debits the DA.
    Collection {
        /// How much is collected.
        amount: Amount,
        /// The authority collecting.
        authority: PublicKey,
    },
    /// Funds leave by their own rule, not by the holder's act.
    Exempt(Exemption),
}

/// Why an outflow needs no guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exemption {
    /// Held funds released to the hold's recipient on the oracle's word.
    Release,
    /// Held or mandated funds returning to their owner (expiry, cancelled
    /// event, revoked mandate).
    Return,
    /// Tokens moving to the DA's new key after a rotation.
    Rekey,
    /// The issuer creates money: nothing is spent.
    Issue,
}

impl Outflow {
    /// The amount that counts against the tier limits, if any.
    fn limited(&self) -> Option<Amount> {
        match *self {
            Outflow::Pay { amount, .. } | Outflow::Commit { amount } | Outflow::MandateDebit { amount } => Some(amount),
            Outflow::Conversion { .. } | Outflow::Collection { .. } | Outflow::Exempt(_) => None,
        }
    }
}

/// What the guard looks at, read from the node's state in one critical section.
#[derive(Debug, Clone)]
pub struct Standing<'a> {
    /// The DA.
    pub account: &'a Account,
    /// Its tier's limits, if NBK's policy applies to it (individuals).
    pub limits: Option<(Tier, TierLimits)>,
    /// What left it today by its holder's payments (its book).
    pub spent_today: Amount,
    /// Freezes and arrests in force on it.
    pub orders: Vec<&'a OrderEntry>,
    /// Its unreserved standard DT.
    pub free_standard: Amount,
    /// Its linked bank account, for the waterfall.
    pub linked_bank_account: Option<String>,
}

/// The guard's answer.
#[derive(Debug)]
pub enum Cleared {
    /// Go ahead.
    Go(Clearance),
    /// Short of free standard DT by `shortfall`: top the DA up from
    /// `bank_account` (waterfall), then ask again.
    TopUp {
        /// How much is missing.
        shortfall: Amount,
        /// The linked bank account.
        bank_account: String,
    },
}

/// The guard's permission to spend from one DA. Only [`clear`] makes one;
/// [`crate::vault::Vault::select`] wants one.
#[derive(Debug)]
pub struct Clearance {
    account: AccountId,
    outflow: Outflow,
    counted: Option<(PendingOutflows, Amount)>,
}

impl Clearance {
    /// A clearance for tests of the vault alone (no guard, nothing counted).
    #[cfg(test)]
    pub(crate) fn for_tests(account: AccountId) -> Clearance {
        Clearance { account, outflow: Outflow::Pay { amount: Amount::ZERO, standard: Amount::ZERO }, counted: None }
    }

    /// The DA it clears.
    pub fn account(&self) -> &AccountId {
        &self.account
    }

    /// The outflow it clears.
    pub fn outflow(&self) -> Outflow {
        self.outflow
    }
}

impl Clearance {
    /// The DA's book now counts the amount (its `Prepared` record was just
    /// applied): it no longer counts as pending. Called under the node's
    /// state lock, where the guard reads the book, so that no guard ever
    /// sees the amount in both places (or in neither).
    pub(crate) fn counted_in_book(&mut self) {
        if let Some((pending, amount)) = self.counted.take() {
            pending.release(&self.account, amount);
        }
    }
}

impl Drop for Clearance {
    fn drop(&mut self) {
        self.counted_in_book();
    }
}

/// Amounts cleared but not yet in the DAs' books, per DA.
#[derive(Debug, Clone, Default)]
pub struct PendingOutflows(Arc<Mutex<BTreeMap<AccountId, Amount>>>);

impl PendingOutflows {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<AccountId, Amount>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Cleared and not yet journaled for `account`.
    pub fn of(&self, account: &AccountId) -> Amount {
        self.lock().get(account).copied().unwrap_or(Amount::ZERO)
    }

    fn release(&self, account: &AccountId, amount: Amount) {
        let mut map = self.lock();
        if let Some(slot) = map.get_mut(account) {
            *slot = slot.checked_sub(amount).unwrap_or(Amount::ZERO);
            if slot.is_zero() {
                map.remove(account);
            }
        }
    }
}

/// Decides whether `outflow` may leave the DA of `standing`; `pending`
/// counts the amount of a cleared payment until its clearance is dropped.
pub fn clear(standing: &Standing<'_>, outflow: Outflow, pending: &PendingOutflows) -> Result<Cleared, NodeError> {
    let account = standing.account;
    let id = &account.id;
    if matches!(outflow, Outflow::Exempt(_)) {
        return Ok(Cleared::Go(Clearance { account: id.clone(), outflow, counted: None }));
    }
    let holders_act = matches!(outflow, Outflow::Pay { .. } | Outflow::Commit { .. });
    if !matches!(outflow, Outflow::Collection { .. }) {
        if account.closed {
            return Err(NodeError::AccountClosed(id.to_string()));
        }
        if holders_act && account.kyc != KycState::Verified {
            return Err(NodeError::KycNotVerified(id.to_string()));
        }
        if let Some(f) = standing.orders.iter().find(|e| matches!(e.signed.order.act, OrderAct::Freeze)) {
            return Err(NodeError::Enforcement(format!(
                "digital account {id} is frozen by order {} ({}) of {}: nothing may leave it until that body lifts the order",
                f.signed.order.reference, f.signed.order.reason, f.via
            )));
        }
    }
    // Arrests keep standard DT: the arrested sum may not be spent, except by
    // a collection of the body that arrested it.
    let arrested = Amount::checked_sum(standing.orders.iter().filter_map(|e| match (&e.signed.order.act, outflow) {
        (OrderAct::Arrest { .. }, Outflow::Collection { authority, .. }) if e.authority() == authority => None,
        (OrderAct::Arrest { amount }, _) => Some(*amount),
        _ => None,
    }))
    .ok_or(NodeError::Overflow)?;
    let mut pending_guard = pending.lock();
    let counted = match (outflow.limited(), standing.limits) {
        (Some(amount), Some((tier, limits))) => {
            if amount > limits.per_payment {
                return Err(NodeError::LimitExceeded {
                    tier,
                    limit: LimitKind::PerPayment,
                    limit_amount: limits.per_payment,
                    detail: format!("the payment is {amount}"),
                });
            }
            let in_flight = pending_guard.get(id).copied().unwrap_or(Amount::ZERO);
            let spent = standing.spent_today.checked_add(in_flight).ok_or(NodeError::Overflow)?;
            let after = spent.checked_add(amount).ok_or(NodeError::Overflow)?;
            if after > limits.daily_outgoing {
                return Err(NodeError::LimitExceeded {
                    tier,
                    limit: LimitKind::DailyOutgoing,
                    limit_amount: limits.daily_outgoing,
                    detail: format!("{spent} already paid today, {amount} more would make {after}"),
                });
            }
            Some(amount)
        }
        _ => None,
    };
    let spends_standard = match outflow {
        Outflow::Pay { standard, .. } => (!standard.is_zero()).then_some(standard),
        Outflow::Commit { amount } | Outflow::Conversion { amount } | Outflow::Collection { amount, .. } => {
            Some(amount)
        }
        Outflow::MandateDebit { .. } | Outflow::Exempt(_) => None,
    };
    if let Some(amount) = spends_standard {
        let spendable = standing.free_standard.checked_sub(arrested).unwrap_or(Amount::ZERO);
        if amount > spendable {
            let shortfall = amount.checked_sub(spendable).unwrap_or(Amount::ZERO);
            match (&standing.linked_bank_account, outflow) {
                (Some(bank_account), Outflow::Pay { .. } | Outflow::Commit { .. }) => {
                    return Ok(Cleared::TopUp { shortfall, bank_account: bank_account.clone() });
                }
                _ if !arrested.is_zero() => {
                    return Err(NodeError::Enforcement(format!(
                        "{arrested} of {id} is arrested by an enforcement order; {spendable} may be spent, {amount} requested"
                    )));
                }
                // Not enough money: the selection says so, naming what is there.
                _ => {}
            }
        }
    }
    let counted = match counted {
        Some(amount) => {
            let slot = pending_guard.entry(id.clone()).or_insert(Amount::ZERO);
            *slot = slot.checked_add(amount).ok_or(NodeError::Overflow)?;
            Some((pending.clone(), amount))
        }
        None => None,
    };
    drop(pending_guard);
    Ok(Cleared::Go(Clearance { account: id.clone(), outflow, counted }))
}
