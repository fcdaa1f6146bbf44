//! The vault: the tokens owned by this node's DAs, with which account each
//! belongs to and whether a transaction in flight has reserved it.
//!
//! Selection takes only unreserved tokens, largest first, so a payment uses as
//! few inputs as possible; two payments in flight never pick the same token.
//!
//! Each DA's unreserved tokens are kept in order of amount, with running
//! totals of its standard tokens per currency, so that a payment's selection,
//! the guard's free balance and the draft's token count cost the tokens used,
//! not every token the DA holds. These indexes are derived: the encoding (in
//! the node's snapshot) is the tokens and each DA's token ids, as before.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_types::{Amount, Currency, Token, TokenId, TokenKind, TxId};
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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vault {
    tokens: BTreeMap<TokenId, Stored>,
    by_account: BTreeMap<AccountId, AccountTokens>,
}

/// One DA's tokens and the indexes derived from them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct AccountTokens {
    ids: BTreeSet<TokenId>,
    /// Unreserved tokens, largest first (ties by id).
    free: BTreeSet<(Reverse<Amount>, TokenId)>,
    /// Unreserved standard tokens per currency: total (wide, so adding
    /// never overflows) and count.
    free_standard: BTreeMap<Currency, (u128, usize)>,
}

impl AccountTokens {
    fn track(&mut self, id: TokenId, token: &Token) {
        if self.free.insert((Reverse(token.amount), id)) && token.is_standard() {
            let slot = self.free_standard.entry(token.currency).or_default();
            slot.0 += u128::from(token.amount.tiyn());
            slot.1 += 1;
        }
    }

    fn untrack(&mut self, id: TokenId, token: &Token) {
        if self.free.remove(&(Reverse(token.amount), id))
            && token.is_standard()
            && let Some(slot) = self.free_standard.get_mut(&token.currency)
        {
            slot.0 -= u128::from(token.amount.tiyn());
            slot.1 -= 1;
            if slot.1 == 0 {
                self.free_standard.remove(&token.currency);
            }
        }
    }
}

impl BorshSerialize for Vault {
    fn serialize<W: Write>(&self, writer: &mut W) -> std::io::Result<()> {
        BorshSerialize::serialize(&self.tokens, writer)?;
        let len = u32::try_from(self.by_account.len())
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "too many accounts in the vault"))?;
        BorshSerialize::serialize(&len, writer)?;
        for (account, entry) in &self.by_account {
            BorshSerialize::serialize(account, writer)?;
            BorshSerialize::serialize(&entry.ids, writer)?;
        }
        Ok(())
    }
}

impl BorshDeserialize for Vault {
    fn deserialize_reader<R: Read>(reader: &mut R) -> std::io::Result<Self> {
        let tokens = BTreeMap::<TokenId, Stored>::deserialize_reader(reader)?;
        let ids = BTreeMap::<AccountId, BTreeSet<TokenId>>::deserialize_reader(reader)?;
        let mut by_account = BTreeMap::new();
        for (account, ids) in ids {
            let mut entry = AccountTokens::default();
            for id in &ids {
                if let Some(s) = tokens.get(id)
                    && s.reserved_by.is_none()
                {
                    entry.track(*id, &s.token);
                }
            }
            entry.ids = ids;
            by_account.insert(account, entry);
        }
        Ok(Vault { tokens, by_account })
    }
}

impl Vault {
    /// Adds a token; a token already present is left as it is (deliveries may repeat).
    pub fn insert(&mut self, id: TokenId, token: Token, account: AccountId) {
        if self.tokens.contains_key(&id) {
            return;
        }
        let entry = self.by_account.entry(account.clone()).or_default();
        entry.ids.insert(id);
        entry.track(id, &token);
        self.tokens.insert(id, Stored { token, account, reserved_by: None });
    }

    /// Removes a token (spent).
    pub fn remove(&mut self, id: &TokenId) -> Option<Stored> {
        let stored = self.tokens.remove(id)?;
        if let Some(entry) = self.by_account.get_mut(&stored.account) {
            entry.ids.remove(id);
            entry.untrack(*id, &stored.token);
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
                if let Some(entry) = self.by_account.get_mut(&s.account) {
                    entry.untrack(*id, &s.token);
                }
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
                if let Some(entry) = self.by_account.get_mut(&s.account) {
                    entry.track(*id, &s.token);
                }
            }
        }
    }

    /// The account's tokens.
    pub fn of_account<'a>(&'a self, account: &AccountId) -> impl Iterator<Item = (&'a TokenId, &'a Stored)> + 'a {
        let ids = self.by_account.get(account).map(|entry| &entry.ids);
        ids.into_iter().flatten().filter_map(move |id| self.tokens.get(id).map(|s| (id, s)))
    }

    /// The account's unreserved tokens, largest first.
    fn free_of<'a>(&'a self, account: &AccountId) -> impl Iterator<Item = (&'a TokenId, &'a Token)> + 'a {
        let free = self.by_account.get(account).map(|entry| &entry.free);
        free.into_iter().flatten().filter_map(move |(_, id)| self.tokens.get(id).map(|s| (id, &s.token)))
    }

    /// Total and number of the account's unreserved standard tokens of
    /// `currency`, without a scan (the guard and the draft ask on every
    /// payment).
    pub fn free_standard(&self, account: &AccountId, currency: Currency) -> Result<(Amount, usize), NodeError> {
        let Some(&(total, count)) = self.by_account.get(account).and_then(|entry| entry.free_standard.get(&currency))
        else {
            return Ok((Amount::ZERO, 0));
        };
        let total = u64::try_from(total).map_err(|_| NodeError::Overflow)?;
        Ok((Amount::from_tiyn(total), count))
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
        let mut chosen = Vec::new();
        let mut covered = Amount::ZERO;
        for (id, token) in self.free_of(account).filter(|(_, token)| wanted(token)) {
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
    /// `wanted`, largest first, at most `max` of them.
    pub fn select_all(
        &self,
        clearance: &Clearance,
        wanted: impl Fn(&Token) -> bool,
        max: usize,
    ) -> Vec<(TokenId, Token)> {
        self.free_of(clearance.account())
            .filter(|(_, token)| wanted(token))
            .take(max)
            .map(|(id, token)| (*id, token.clone()))
            .collect()
    }

    /// The transactions holding reservations on `account`'s tokens.
    pub fn reserving(&self, account: &AccountId) -> BTreeSet<TxId> {
        self.of_account(account).filter_map(|(_, s)| s.reserved_by).collect()
    }

    /// How many unreserved tokens of `account` match `wanted`.
    pub fn free_tokens(&self, account: &AccountId, wanted: impl Fn(&Token) -> bool) -> usize {
        self.free_of(account).filter(|(_, token)| wanted(token)).count()
    }

    /// Total of unreserved tokens of `account` matching `wanted`.
    /// [`NodeError::Overflow`] only if the sum is not representable, which
    /// the issuers' supply limit rules out for tokens of one currency.
    pub fn available(&self, account: &AccountId, wanted: impl Fn(&Token) -> bool) -> Result<Amount, NodeError> {
        Amount::checked_sum(self.free_of(account).filter(|(_, token)| wanted(token)).map(|(_, token)| token.amount))
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

#[cfg(test)]
mod tests {
    //! The vault's indexes against a plain model: after any sequence of
    //! inserts, reservations, releases and removals, selection, free totals
    //! and counts equal what a scan of every token gives, and the encoding
    //! round-trips to the same vault.

    use super::*;
    use dtenge_crypto::{Digest, SecretKey};
    use dtenge_types::{Address, Marking, ParticipantId};
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Insert { n: u8, account: u8, amount: u64, vat: bool },
        Reserve { n: u8, tx: u8 },
        Unreserve { n: u8, tx: u8 },
        Remove { n: u8 },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (any::<u8>(), 0u8..3, 1u64..1_000, any::<bool>()).prop_map(|(n, account, amount, vat)| Op::Insert {
                n,
                account,
                amount,
                vat
            }),
            (any::<u8>(), 0u8..3).prop_map(|(n, tx)| Op::Reserve { n, tx }),
            (any::<u8>(), 0u8..3).prop_map(|(n, tx)| Op::Unreserve { n, tx }),
            any::<u8>().prop_map(|n| Op::Remove { n }),
        ]
    }

    fn token_id(n: u8) -> TokenId {
        TokenId { tx: TxId(Digest([n; 32])), index: u16::from(n % 3) }
    }

    fn account(n: u8) -> AccountId {
        AccountId(format!("STB1-{n:06}"))
    }

    /// What a scan of every token says: unreserved tokens of `account`
    /// matching `wanted`, largest first.
    fn scan(vault: &Vault, account: &AccountId, wanted: impl Fn(&Token) -> bool) -> Vec<(TokenId, Amount)> {
        let mut free: Vec<(TokenId, Amount)> = vault
            .iter()
            .filter(|(_, s)| &s.account == account && s.reserved_by.is_none() && wanted(&s.token))
            .map(|(id, s)| (*id, s.token.amount))
            .collect();
        free.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        free
    }

    proptest! {
        #[test]
        fn the_indexes_agree_with_a_scan(ops in proptest::collection::vec(op(), 1..120), want in 1u64..3_000) {
            let owner = Address(SecretKey::generate().public_key());
            let host = ParticipantId::new("STB1").map_err(|e| TestCaseError::fail(e.to_string()))?;
            let mut vault = Vault::default();
            for op in ops {
                match op {
                    Op::Insert { n, account: a, amount, vat } => {
                        let mut token = Token::standard(Currency::DT, Amount::from_tiyn(amount), owner, host.clone());
                        if vat {
                            token.marking = Some(Marking::Vat);
                        }
                        vault.insert(token_id(n), token, account(a));
                    }
                    Op::Reserve { n, tx } => {
                        if let Some(s) = vault.get(&token_id(n)) {
                            let clearance = Clearance::for_tests(s.account.clone());
                            let _ = vault.reserve(&clearance, &[token_id(n)], TxId(Digest([tx; 32])));
                        }
                    }
                    Op::Unreserve { n, tx } => vault.unreserve(&[token_id(n)], TxId(Digest([tx; 32]))),
                    Op::Remove { n } => {
                        vault.remove(&token_id(n));
                    }
                }
            }
            let standard_dt = |t: &Token| t.is_standard() && t.currency == Currency::DT;
            for a in 0..3 {
                let account = account(a);
                let expected = scan(&vault, &account, standard_dt);
                let total = expected.iter().map(|(_, amount)| amount.tiyn()).sum::<u64>();
                prop_assert_eq!(vault.free_standard(&account, Currency::DT)?, (Amount::from_tiyn(total), expected.len()));
                prop_assert_eq!(vault.available(&account, standard_dt)?, Amount::from_tiyn(total));
                prop_assert_eq!(vault.free_tokens(&account, |_| true), scan(&vault, &account, |_| true).len());
                let clearance = Clearance::for_tests(account.clone());
                let mut covered = 0;
                let prefix: Vec<TokenId> = expected
                    .iter()
                    .take_while(|(_, amount)| {
                        let take = covered < want;
                        covered += amount.tiyn();
                        take
                    })
                    .map(|(id, _)| *id)
                    .collect();
                match vault.select(&clearance, Amount::from_tiyn(want), standard_dt) {
                    Ok(chosen) => {
                        prop_assert!(total >= want);
                        prop_assert_eq!(chosen.iter().map(|(id, _)| *id).collect::<Vec<_>>(), prefix);
                    }
                    Err(NodeError::TooFragmented { .. }) => prop_assert!(prefix.len() > dtenge_types::MAX_INPUTS),
                    Err(NodeError::InsufficientFunds { .. } | NodeError::FundsInFlight { .. }) => prop_assert!(total < want),
                    Err(other) => prop_assert!(false, "unexpected {other}"),
                }
            }
            let bytes = borsh::to_vec(&vault)?;
            let again: Vault = borsh::from_slice(&bytes)?;
            prop_assert_eq!(&again, &vault);
            prop_assert_eq!(borsh::to_vec(&again)?, bytes);
        }
    }

    /// The encoding is the one the vault had before it kept indexes: its
    /// tokens, then each DA's token ids (a snapshot written by an earlier
    /// release opens unchanged).
    #[test]
    fn the_encoding_is_the_tokens_and_each_accounts_ids() -> Result<(), Box<dyn std::error::Error>> {
        let owner = Address(SecretKey::generate().public_key());
        let token = Token::standard(Currency::DT, Amount::from_tiyn(500), owner, ParticipantId::new("STB1")?);
        let mut vault = Vault::default();
        vault.insert(token_id(1), token.clone(), account(0));
        let stored = Stored { token, account: account(0), reserved_by: None };
        let tokens = BTreeMap::from([(token_id(1), stored)]);
        let ids = BTreeMap::from([(account(0), BTreeSet::from([token_id(1)]))]);
        assert_eq!(borsh::to_vec(&vault)?, borsh::to_vec(&(tokens, ids))?);
        Ok(())
    }
}
