//! The vault: the tokens owned by this node's DAs, with which account each
//! belongs to and whether a transaction in flight has reserved it.
//!
//! Selection takes only unreserved tokens, largest first, so a payment uses as
//! few inputs as possible; two payments in flight never pick the same token.

use std::collections::{BTreeMap, BTreeSet};

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_types::{Amount, Token, TokenId, TokenKind, TxId};
use serde::{Deserialize, Serialize};

use crate::NodeError;
use crate::accounts::AccountId;
use crate::guard::Clearance;

/// A token in the vault.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Stored {
    /// The token.
    pub token: Token,
    /// Its account.
    pub account: AccountId,
    /// The transaction in flight that will consume it, if any.
    pub reserved_by: Option<TxId>,
}

/// Balances of one DA by kind (SPEC §5 API: standard / marked / held / VAT).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balances {
    /// Free to spend.
    pub standard: Amount,
    /// Purpose-bound.
    pub marked: Amount,
    /// Held for events.
    pub held: Amount,
    /// VAT-marked.
    pub vat: Amount,
    /// Reserved for debit mandates.
    pub mandated: Amount,
    /// In a stablecoin's reserve (a licensed issuer's DA): spent only by a burn.
    #[serde(default)]
    pub reserve: Amount,
    /// Everything in DT.
    pub total: Amount,
    /// Standard tokens of other currencies (cross-border), by currency code.
    pub other_currencies: std::collections::BTreeMap<String, Amount>,
}

/// Tokens of this node's accounts.
#[derive(Debug, Clone, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Vault {
    tokens: BTreeMap<TokenId, Stored>,
    by_account: BTreeMap<AccountId, BTreeSet<TokenId>>,
}

impl Vault {
    /// Adds a token; a token already present is left as it is (deliveries may repeat).
    pub fn insert(&mut self, id: TokenId, token: Token, account: AccountId) {
        if self.tokens.contains_key(&id) {
            return;
        }
        self.by_account.entry(account.clone()).or_default().insert(id);
        self.tokens.insert(id, Stored { token, account, reserved_by: None });
    }

    /// Removes a token (spent).
    pub fn remove(&mut self, id: &TokenId) -> Option<Stored> {
        let stored = self.tokens.remove(id)?;
        if let Some(set) = self.by_account.get_mut(&stored.account) {
            set.remove(id);
        }
        Some(stored)
    }

    /// A token.
    pub fn get(&self, id: &TokenId) -> Option<&Stored> {
        self.tokens.get(id)
    }

    /// Marks tokens of the DA `clearance` clears as consumed by `tx` in flight.
    pub fn reserve(&mut self, clearance: &Clearance, ids: &[TokenId], tx: TxId) -> Result<(), NodeError> {
        for id in ids {
            match self.tokens.get(id) {
                None => return Err(NodeError::UnknownToken(*id)),
                Some(s) if s.account != *clearance.account() => return Err(NodeError::UnknownToken(*id)),
                Some(s) if s.reserved_by.is_some_and(|by| by != tx) => return Err(NodeError::TokenBusy(*id)),
                Some(_) => {}
            }
        }
        self.mark(ids, tx);
        Ok(())
    }

    /// Restores the reservations of a journaled `Prepared` transaction
    /// (replay: the guard cleared them when they were made).
    pub(crate) fn restore_reservation(&mut self, ids: &[TokenId], tx: TxId) {
        self.mark(ids, tx);
    }

    fn mark(&mut self, ids: &[TokenId], tx: TxId) {
        for id in ids {
            if let Some(s) = self.tokens.get_mut(id)
                && s.reserved_by.is_none()
            {
                s.reserved_by = Some(tx);
            }
        }
    }

    /// Frees tokens `tx` had reserved.
    pub fn unreserve(&mut self, ids: &[TokenId], tx: TxId) {
        for id in ids {
            if let Some(s) = self.tokens.get_mut(id)
                && s.reserved_by == Some(tx)
            {
                s.reserved_by = None;
            }
        }
    }

    /// The account's tokens.
    pub fn of_account<'a>(&'a self, account: &AccountId) -> impl Iterator<Item = (&'a TokenId, &'a Stored)> + 'a {
        let ids = self.by_account.get(account);
        ids.into_iter().flatten().filter_map(move |id| self.tokens.get(id).map(|s| (id, s)))
    }

    /// Picks unreserved tokens of the DA `clearance` clears matching
    /// `wanted`, largest first, until they cover `amount`. Only the payer's
    /// guard gives a [`Clearance`]: no operation spends without passing it.
    pub fn select(
        &self,
        clearance: &Clearance,
        amount: Amount,
        wanted: impl Fn(&Token) -> bool,
    ) -> Result<Vec<(TokenId, Token)>, NodeError> {
        let account = clearance.account();
        let mut candidates: Vec<(&TokenId, &Token)> = self
            .of_account(account)
            .filter(|(_, s)| s.reserved_by.is_none() && wanted(&s.token))
            .map(|(id, s)| (id, &s.token))
            .collect();
        candidates.sort_by(|a, b| b.1.amount.cmp(&a.1.amount).then(a.0.cmp(b.0)));
        let mut chosen = Vec::new();
        let mut covered = Amount::ZERO;
        for (id, token) in candidates {
            if covered >= amount {
                break;
            }
            if chosen.len() >= dtenge_types::MAX_INPUTS {
                return Err(NodeError::TooFragmented { needed: amount, reachable: covered });
            }
            covered = covered.checked_add(token.amount).ok_or(NodeError::Overflow)?;
            chosen.push((*id, token.clone()));
        }
        if covered < amount {
            let available = self.available(account, &wanted)?;
            let owned = Amount::checked_sum(
                self.of_account(account).filter(|(_, s)| wanted(&s.token)).map(|(_, s)| s.token.amount),
            )
            .ok_or(NodeError::Overflow)?;
            if owned >= amount {
                return Err(NodeError::FundsInFlight { requested: amount, available });
            }
            return Err(NodeError::InsufficientFunds { requested: amount, available });
        }
        Ok(chosen)
    }

    /// Every unreserved token of the DA `clearance` clears matching
    /// `wanted`, at most `max` of them.
    pub fn select_all(
        &self,
        clearance: &Clearance,
        wanted: impl Fn(&Token) -> bool,
        max: usize,
    ) -> Vec<(TokenId, Token)> {
        self.of_account(clearance.account())
            .filter(|(_, s)| s.reserved_by.is_none() && wanted(&s.token))
            .take(max)
            .map(|(id, s)| (*id, s.token.clone()))
            .collect()
    }

    /// The transactions holding reservations on `account`'s tokens.
    pub fn reserving(&self, account: &AccountId) -> BTreeSet<TxId> {
        self.of_account(account).filter_map(|(_, s)| s.reserved_by).collect()
    }

    /// How many unreserved tokens of `account` match `wanted`.
    pub fn free_tokens(&self, account: &AccountId, wanted: impl Fn(&Token) -> bool) -> usize {
        self.of_account(account).filter(|(_, s)| s.reserved_by.is_none() && wanted(&s.token)).count()
    }

    /// Total of unreserved tokens of `account` matching `wanted`.
    /// [`NodeError::Overflow`] only if the sum is not representable, which
    /// the issuers' supply limit rules out for tokens of one currency.
    pub fn available(&self, account: &AccountId, wanted: impl Fn(&Token) -> bool) -> Result<Amount, NodeError> {
        Amount::checked_sum(
            self.of_account(account)
                .filter(|(_, s)| s.reserved_by.is_none() && wanted(&s.token))
                .map(|(_, s)| s.token.amount),
        )
        .ok_or(NodeError::Overflow)
    }

    /// DT balances by kind, and other currencies' totals (reserved tokens
    /// included: they are still the holder's until spent); a sum that is not
    /// representable is [`NodeError::Overflow`], never a saturated figure.
    pub fn balances(&self, account: &AccountId) -> Result<Balances, NodeError> {
        let add = |slot: &mut Amount, amount: Amount| -> Result<(), NodeError> {
            *slot = slot.checked_add(amount).ok_or(NodeError::Overflow)?;
            Ok(())
        };
        let mut b = Balances::default();
        for (_, s) in self.of_account(account) {
            if s.token.currency != dtenge_types::Currency::DT {
                add(b.other_currencies.entry(s.token.currency.to_string()).or_default(), s.token.amount)?;
                continue;
            }
            let slot = match s.token.kind() {
                TokenKind::Standard => &mut b.standard,
                TokenKind::Marked => &mut b.marked,
                TokenKind::Held => &mut b.held,
                TokenKind::Vat => &mut b.vat,
                TokenKind::Mandated => &mut b.mandated,
                TokenKind::Reserve => &mut b.reserve,
            };
            add(slot, s.token.amount)?;
            add(&mut b.total, s.token.amount)?;
        }
        Ok(b)
    }

    /// Number of tokens held.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether the vault is empty.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Every token, for audits.
    pub fn iter(&self) -> impl Iterator<Item = (&TokenId, &Stored)> {
        self.tokens.iter()
    }
}
