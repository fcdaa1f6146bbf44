//! Bank cards linked to a DA (issue 22.1, docs/cards.md): the issuing
//! bank's card book — which card token pays from which DA, every card
//! payment from authorisation to refund, and the answer to every message
//! the card network sent — and the pure decision on a message.
//!
//! ```text
//!  0100/0120 ──► Authorised (funds held under a mandate to the bank's DA, the scheme's expiry)
//!                  ├─ 1240 purchase ──► Captured (≤ authorised to the acquirer, the rest back) ─ 1240 refund ─► refunded (≤ captured)
//!                  ├─ 0400/0420 with DE 95 ─► still Authorised, for the replacement amount (the rest back)
//!                  ├─ 0400/0420 ─────► Reversed (all back)
//!                  └─ the scheme's expiry passes ─► Expired (all back, by the node's tick)
//! ```
//!
//! Invariants: the book keeps a card's token and last four digits, never its
//! number; a payment never captures more than it authorised nor refunds more
//! than it captured; a message whose key ([`MessageKey`]) was answered is
//! answered the same again and changes nothing (a retransmission), across
//! restarts (the answers are journaled, [`CardRecord`]). [`CardBook::decide`]
//! is a pure function of the book, the message and the time.

pub mod message;
pub mod network_simulator;

use std::collections::BTreeMap;

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_types::{Address, Amount, MandateId, Timestamp, TxId};

pub use message::{
    AcquirerId, CURRENCY_KZT, CardExpiry, CardMessage, CardResponse, CardToken, Last4, MessageKey, Mti, ResponseCode,
    Rrn, Stan, TransactionType,
};

use crate::accounts::AccountId;

/// How long an authorisation holds the funds (the scheme's expiry for a
/// purchase authorisation): afterwards the hold returns by itself.
pub const AUTHORISATION_VALID_MS: u64 = 7 * Timestamp::DAY_MS;
/// How long a payment that can change no more (reversed, expired) and the
/// answers to messages are remembered: retransmissions come within minutes.
pub const ANSWERS_KEPT_MS: u64 = 30 * Timestamp::DAY_MS;
/// How long a captured payment stays refundable (and remembered).
pub const REFUND_WINDOW_MS: u64 = 180 * Timestamp::DAY_MS;
/// Most cards one node links.
pub const CARDS_MAX: usize = 1_000_000;
/// Most payments one node remembers at once (open ones and those kept for refunds).
pub const PAYMENTS_MAX: usize = 1_000_000;
/// Most refunds of one payment.
pub const REFUNDS_PER_PAYMENT_MAX: usize = 16;

/// A card linked to a DA.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Card {
    /// The scheme's token.
    pub token: CardToken,
    /// The card number's last four digits.
    pub last4: Last4,
    /// The DA it pays from.
    pub account: AccountId,
    /// Its expiry date.
    pub expiry: CardExpiry,
    /// When it was linked.
    pub linked_at: Timestamp,
}

/// Where a card payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum PaymentState {
    /// Funds held, waiting for clearing.
    Authorised,
    /// Cleared: the captured amount went to the acquirer, the rest back.
    Captured,
    /// Reversed before clearing: everything back.
    Reversed,
    /// Not cleared before the scheme's expiry: everything back.
    Expired,
}

/// One card payment, from its authorisation on.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct CardPayment {
    /// DE 37 of its authorisation.
    pub rrn: Rrn,
    /// The card.
    pub card: CardToken,
    /// The DA paying.
    pub account: AccountId,
    /// The acquirer (DE 32).
    pub acquirer: AcquirerId,
    /// The acquirer's settlement DA.
    pub acquirer_account: Address,
    /// Held at authorisation, lowered by a partial reversal (DE 95) to its
    /// replacement amount: what is held now until clearing.
    pub authorised: Amount,
    /// Paid to the acquirer at clearing.
    pub captured: Amount,
    /// Paid back by refunds.
    pub refunded: Amount,
    /// Where it stands.
    pub state: PaymentState,
    /// The mandate the held funds carry (one per payment).
    pub mandate: MandateId,
    /// The end of the hold.
    pub valid_until: Timestamp,
    /// The transactions: hold, then capture / release, then refunds.
    pub txs: Vec<TxId>,
    /// When it last changed.
    pub last_at: Timestamp,
}

impl CardPayment {
    /// What is still refundable.
    pub fn refundable(&self) -> Amount {
        self.captured.checked_sub(self.refunded).unwrap_or(Amount::ZERO)
    }
}

/// What the node must do for a message.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum CardAction {
    /// Hold `amount` of the DA's funds until `valid_until` (0100, 0120).
    Authorise {
        /// The DA.
        account: AccountId,
        /// How much.
        amount: Amount,
        /// The hold's mandate.
        mandate: MandateId,
        /// The scheme's expiry.
        valid_until: Timestamp,
    },
    /// Pay `amount` of the held funds to the acquirer, the rest back (1240 purchase).
    Capture {
        /// The payment.
        rrn: Rrn,
        /// How much.
        amount: Amount,
    },
    /// Return all held funds (0400, 0420).
    Reverse {
        /// The payment.
        rrn: Rrn,
    },
    /// Pay `amount` back to the cardholder (1240 refund).
    Refund {
        /// The purchase refunded.
        rrn: Rrn,
        /// How much.
        amount: Amount,
    },
    /// Return all but `keep` of the held funds; `keep` stays held (0400,
    /// 0420 with a DE 95 replacement amount: a partial reversal).
    Release {
        /// The payment.
        rrn: Rrn,
        /// The replacement amount: what stays held.
        keep: Amount,
    },
}

/// The pure decision on a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Answered before (a retransmission): this answer again, nothing else.
    Repeat(CardResponse),
    /// Refused: journal this answer, nothing moves.
    Decline(ResponseCode),
    /// Approved with nothing to move (e.g. a reversal of a payment that expired).
    Acknowledge,
    /// Approved if this action goes through.
    Act(CardAction),
}

/// What an answered message changed in the book.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Effect {
    /// Nothing (a decline, an acknowledgement).
    None,
    /// A new payment was authorised.
    Authorised(Box<CardPayment>),
    /// A payment was captured.
    Captured {
        /// The payment.
        rrn: Rrn,
        /// How much.
        amount: Amount,
        /// The transaction.
        tx: TxId,
    },
    /// A payment was reversed.
    Reversed {
        /// The payment.
        rrn: Rrn,
        /// The transaction.
        tx: TxId,
    },
    /// A purchase was (partly) refunded.
    Refunded {
        /// The purchase.
        rrn: Rrn,
        /// How much.
        amount: Amount,
        /// The transaction.
        tx: TxId,
    },
    /// A payment was partly reversed: `kept` stays held, the rest went back.
    Released {
        /// The payment.
        rrn: Rrn,
        /// What stays held (the new authorised amount).
        kept: Amount,
        /// The transaction.
        tx: TxId,
    },
}

/// The card book's journal records (inside [`crate::state::NodeRecord::Card`];
/// variants are only appended).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum CardRecord {
    /// A card was linked to a DA.
    Linked(Card),
    /// The node is about to carry out `action` for `message` in transaction
    /// `tx`: durable before the transaction is prepared, so a retransmission
    /// after a crash finds the transaction instead of making a second one.
    Acting {
        /// The message.
        message: CardMessage,
        /// What it does.
        action: CardAction,
        /// The transaction doing it.
        tx: TxId,
    },
    /// A message was answered (and what it changed).
    Answered {
        /// The message.
        message: CardMessage,
        /// The answer.
        response: CardResponse,
        /// What changed.
        effect: Effect,
        /// When.
        at: Timestamp,
    },
    /// An authorisation passed the scheme's expiry and its funds returned.
    Expired {
        /// The payment.
        rrn: Rrn,
        /// The return transaction (`None`: it committed before a crash lost its record).
        tx: Option<TxId>,
        /// When.
        at: Timestamp,
    },
    /// Answers and finished payments older than their keeping time are dropped.
    Forgotten {
        /// The time of the tick that dropped them.
        at: Timestamp,
    },
    /// A card was unlinked from its DA: new authorisations under its token
    /// are declined 14 (no card under the token); its open payments keep
    /// their course (they name the DA themselves).
    Unlinked {
        /// The card's token.
        token: CardToken,
        /// When.
        at: Timestamp,
    },
}

/// An answered message, kept to answer its retransmissions.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Answered {
    /// The message as first received.
    pub message: CardMessage,
    /// The answer given.
    pub response: CardResponse,
    /// When.
    pub at: Timestamp,
}

/// A message whose transaction was being carried out.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Acting {
    /// The message.
    pub message: CardMessage,
    /// What it does.
    pub action: CardAction,
    /// The transaction.
    pub tx: TxId,
}

/// The issuing bank's cards, payments and answers (part of the node's state).
#[derive(Debug, Clone, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct CardBook {
    cards: BTreeMap<CardToken, Card>,
    payments: BTreeMap<Rrn, CardPayment>,
    answered: BTreeMap<MessageKey, Answered>,
    acting: BTreeMap<MessageKey, Acting>,
}

impl CardBook {
    /// A linked card.
    pub fn card(&self, token: &CardToken) -> Option<&Card> {
        self.cards.get(token)
    }

    /// Cards linked to `account`.
    pub fn cards_of<'a>(&'a self, account: &'a AccountId) -> impl Iterator<Item = &'a Card> + 'a {
        self.cards.values().filter(move |c| c.account == *account)
    }

    /// How many cards are linked.
    pub fn card_count(&self) -> usize {
        self.cards.len()
    }

    /// A payment by its authorisation's RRN.
    pub fn payment(&self, rrn: &Rrn) -> Option<&CardPayment> {
        self.payments.get(rrn)
    }

    /// Payments of `card`.
    pub fn payments_of<'a>(&'a self, card: &'a CardToken) -> impl Iterator<Item = &'a CardPayment> + 'a {
        self.payments.values().filter(move |p| p.card == *card)
    }

    /// Authorisations whose hold ended before `now` and that no
    /// interrupted message is acting on.
    pub fn expired(&self, now: Timestamp) -> Vec<CardPayment> {
        self.payments
            .values()
            .filter(|p| p.state == PaymentState::Authorised && p.valid_until < now)
            .filter(|p| !self.acting.values().any(|a| a.message.rrn == p.rrn))
            .cloned()
            .collect()
    }

    /// Messages whose transaction was being carried out when the node stopped.
    pub fn interrupted(&self) -> Vec<Acting> {
        self.acting.values().cloned().collect()
    }

    /// The message being carried out under `key`, if a crash interrupted it.
    pub fn acting(&self, key: &MessageKey) -> Option<&Acting> {
        self.acting.get(key)
    }

    /// The answer to `key`, if it was answered.
    pub fn answer(&self, key: &MessageKey) -> Option<&Answered> {
        self.answered.get(key)
    }

    /// Whether a [`CardRecord::Forgotten`] at `now` would drop anything.
    pub fn has_forgettable(&self, now: Timestamp) -> bool {
        self.answered.values().any(|a| a.at.plus_millis(ANSWERS_KEPT_MS) < now)
            || self.payments.values().any(|p| forgettable(p, now))
    }

    /// The decision on `message` at `now` (pure).
    pub fn decide(&self, message: &CardMessage, now: Timestamp) -> Decision {
        if let Some(answered) = self.answered.get(&message.key()) {
            return if answered.message == *message {
                Decision::Repeat(answered.response.clone())
            } else {
                Decision::Decline(ResponseCode::Duplicate)
            };
        }
        let key = message.key();
        let touches = |a: &Acting| {
            let rrns = [Some(&a.message.rrn), a.message.original_rrn.as_ref()];
            rrns.contains(&Some(&message.rrn)) || message.original_rrn.as_ref().is_some_and(|o| rrns.contains(&Some(o)))
        };
        if self.acting.iter().any(|(k, a)| *k == key || touches(a)) {
            // A message of this payment was interrupted by a restart: it is
            // resolved first (its retransmission, or the tick).
            return Decision::Decline(ResponseCode::IssuerUnavailable);
        }
        if message.currency != CURRENCY_KZT || message.amount.is_zero() {
            return Decision::Decline(ResponseCode::InvalidAmount);
        }
        match (message.mti, message.transaction) {
            (Mti::AuthorisationRequest | Mti::AuthorisationAdvice, TransactionType::Purchase) => {
                self.decide_authorisation(message, now)
            }
            (Mti::ReversalRequest | Mti::ReversalAdvice, TransactionType::Purchase) => {
                match self.payments.get(&message.rrn) {
                    None => Decision::Decline(ResponseCode::OriginalNotFound),
                    Some(p) if p.card != message.card => Decision::Decline(ResponseCode::OriginalNotFound),
                    Some(p) => match p.state {
                        PaymentState::Authorised => match message.replacement.filter(|r| !r.is_zero()) {
                            // A full reversal, or a partial one of a hold past its end
                            // (everything returns at the end anyway).
                            None => Decision::Act(CardAction::Reverse { rrn: p.rrn.clone() }),
                            Some(_) if p.valid_until < now => Decision::Act(CardAction::Reverse { rrn: p.rrn.clone() }),
                            Some(keep) if keep < p.authorised => {
                                Decision::Act(CardAction::Release { rrn: p.rrn.clone(), keep })
                            }
                            // Already held for exactly that much (a second partial
                            // reversal to the same amount): nothing to release.
                            Some(keep) if keep == p.authorised => Decision::Acknowledge,
                            Some(_) => Decision::Decline(ResponseCode::InvalidAmount),
                        },
                        // Already back with the holder: nothing left to release.
                        PaymentState::Reversed | PaymentState::Expired => Decision::Acknowledge,
                        PaymentState::Captured => Decision::Decline(ResponseCode::InvalidTransaction),
                    },
                }
            }
            (Mti::Presentment, TransactionType::Purchase) => match self.payments.get(&message.rrn) {
                None => Decision::Decline(ResponseCode::OriginalNotFound),
                Some(p) if p.card != message.card => Decision::Decline(ResponseCode::OriginalNotFound),
                Some(p) if p.state != PaymentState::Authorised || p.valid_until < now => {
                    Decision::Decline(ResponseCode::InvalidTransaction)
                }
                Some(p) if message.amount > p.authorised => Decision::Decline(ResponseCode::InvalidAmount),
                Some(p) => Decision::Act(CardAction::Capture { rrn: p.rrn.clone(), amount: message.amount }),
            },
            (Mti::Presentment, TransactionType::Refund) => {
                let Some(original) = &message.original_rrn else {
                    return Decision::Decline(ResponseCode::OriginalNotFound);
                };
                match self.payments.get(original) {
                    None => Decision::Decline(ResponseCode::OriginalNotFound),
                    Some(p) if p.card != message.card => Decision::Decline(ResponseCode::OriginalNotFound),
                    Some(p) if p.state != PaymentState::Captured => Decision::Decline(ResponseCode::InvalidTransaction),
                    Some(p) if p.txs.len() >= REFUNDS_PER_PAYMENT_MAX.saturating_add(2) => {
                        Decision::Decline(ResponseCode::InvalidTransaction)
                    }
                    Some(p) if message.amount > p.refundable() => Decision::Decline(ResponseCode::InvalidAmount),
                    Some(p) => Decision::Act(CardAction::Refund { rrn: p.rrn.clone(), amount: message.amount }),
                }
            }
            _ => Decision::Decline(ResponseCode::InvalidTransaction),
        }
    }

    fn decide_authorisation(&self, message: &CardMessage, now: Timestamp) -> Decision {
        let Some(card) = self.cards.get(&message.card) else {
            return Decision::Decline(ResponseCode::InvalidCard);
        };
        if card.expiry.ends_at() <= now || message.card_expiry.is_some_and(|e| e != card.expiry) {
            return Decision::Decline(ResponseCode::ExpiredCard);
        }
        if self.payments.contains_key(&message.rrn) {
            // Another authorisation already has this payment's RRN.
            return Decision::Decline(ResponseCode::InvalidTransaction);
        }
        if self.payments.len() >= PAYMENTS_MAX {
            return Decision::Decline(ResponseCode::IssuerUnavailable);
        }
        let mandate = match MandateId::new(format!("CARD-{}", message.rrn)) {
            Ok(m) => m,
            Err(_) => return Decision::Decline(ResponseCode::InvalidTransaction),
        };
        Decision::Act(CardAction::Authorise {
            account: card.account.clone(),
            amount: message.amount,
            mandate,
            valid_until: now.plus_millis(AUTHORISATION_VALID_MS),
        })
    }

    /// The effect of `action` for `message` carried out in `tx` at `at`.
    pub fn effect_of(&self, message: &CardMessage, action: &CardAction, tx: TxId, at: Timestamp) -> Effect {
        match action {
            CardAction::Authorise { account, amount, mandate, valid_until } => {
                Effect::Authorised(Box::new(CardPayment {
                    rrn: message.rrn.clone(),
                    card: message.card.clone(),
                    account: account.clone(),
                    acquirer: message.acquirer.clone(),
                    acquirer_account: message.acquirer_account,
                    authorised: *amount,
                    captured: Amount::ZERO,
                    refunded: Amount::ZERO,
                    state: PaymentState::Authorised,
                    mandate: mandate.clone(),
                    valid_until: *valid_until,
                    txs: vec![tx],
                    last_at: at,
                }))
            }
            CardAction::Capture { rrn, amount } => Effect::Captured { rrn: rrn.clone(), amount: *amount, tx },
            CardAction::Reverse { rrn } => Effect::Reversed { rrn: rrn.clone(), tx },
            CardAction::Refund { rrn, amount } => Effect::Refunded { rrn: rrn.clone(), amount: *amount, tx },
            CardAction::Release { rrn, keep } => Effect::Released { rrn: rrn.clone(), kept: *keep, tx },
        }
    }

    /// Applies a journaled record.
    pub fn apply(&mut self, record: &CardRecord) {
        match record {
            CardRecord::Linked(card) => {
                self.cards.insert(card.token.clone(), card.clone());
            }
            CardRecord::Acting { message, action, tx } => {
                self.acting.insert(message.key(), Acting { message: message.clone(), action: action.clone(), tx: *tx });
            }
            CardRecord::Answered { message, response, effect, at } => {
                let key = message.key();
                self.acting.remove(&key);
                self.answered.insert(key, Answered { message: message.clone(), response: response.clone(), at: *at });
                self.apply_effect(effect, *at);
            }
            CardRecord::Expired { rrn, tx, at } => {
                if let Some(p) = self.payments.get_mut(rrn) {
                    p.state = PaymentState::Expired;
                    p.txs.extend(*tx);
                    p.last_at = *at;
                }
            }
            CardRecord::Unlinked { token, .. } => {
                self.cards.remove(token);
            }
            CardRecord::Forgotten { at } => {
                let at = *at;
                self.answered.retain(|_, a| a.at.plus_millis(ANSWERS_KEPT_MS) >= at);
                self.payments.retain(|_, p| !forgettable(p, at));
            }
        }
    }

    fn apply_effect(&mut self, effect: &Effect, at: Timestamp) {
        match effect {
            Effect::None => {}
            Effect::Authorised(payment) => {
                self.payments.insert(payment.rrn.clone(), (**payment).clone());
            }
            Effect::Captured { rrn, amount, tx } => {
                if let Some(p) = self.payments.get_mut(rrn) {
                    p.state = PaymentState::Captured;
                    p.captured = *amount;
                    p.txs.push(*tx);
                    p.last_at = at;
                }
            }
            Effect::Reversed { rrn, tx } => {
                if let Some(p) = self.payments.get_mut(rrn) {
                    p.state = PaymentState::Reversed;
                    p.txs.push(*tx);
                    p.last_at = at;
                }
            }
            Effect::Refunded { rrn, amount, tx } => {
                if let Some(p) = self.payments.get_mut(rrn) {
                    // `decide` refused any refund past the captured amount.
                    p.refunded = p.refunded.checked_add(*amount).unwrap_or(p.captured);
                    p.txs.push(*tx);
                    p.last_at = at;
                }
            }
            Effect::Released { rrn, kept, tx } => {
                if let Some(p) = self.payments.get_mut(rrn) {
                    // `decide` asked for less than was held.
                    p.authorised = (*kept).min(p.authorised);
                    p.txs.push(*tx);
                    p.last_at = at;
                }
            }
        }
    }
}

/// Whether a payment can change no more and its keeping time is over.
fn forgettable(p: &CardPayment, now: Timestamp) -> bool {
    match p.state {
        PaymentState::Authorised => false,
        PaymentState::Captured => p.last_at.plus_millis(REFUND_WINDOW_MS) < now,
        PaymentState::Reversed | PaymentState::Expired => p.last_at.plus_millis(ANSWERS_KEPT_MS) < now,
    }
}
