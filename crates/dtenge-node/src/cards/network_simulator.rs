//! A card network simulator (as `dtenge-cbs`'s CBS simulator stands in for
//! NBK's core banking system): it numbers messages as a scheme does (STAN,
//! RRN), knows each acquirer's settlement DA, and writes the messages of a
//! card payment for the issuer — authorisation, advice, reversal, clearing,
//! refund — and their retransmissions. It only writes messages: the caller
//! delivers them (to [`crate::service::NodeService::card_message`] in
//! process, or through the API's `POST /api/v1/cards/messages`).

use std::collections::BTreeMap;

use dtenge_types::{Address, Amount, Timestamp};

use super::message::{AcquirerId, CURRENCY_KZT, CardExpiry, CardMessage, CardToken, Mti, Rrn, Stan, TransactionType};
use crate::NodeError;

/// Most acquirers the simulator knows.
pub const ACQUIRERS_MAX: usize = 64;

/// The simulated network.
#[derive(Debug, Default)]
pub struct CardNetworkSimulator {
    /// Acquirers (DE 32) and their settlement DAs.
    acquirers: BTreeMap<AcquirerId, Address>,
    /// The last STAN given (wraps at 999 999, as DE 11 does).
    stan: u32,
    /// The last RRN given.
    rrn: u64,
}

impl CardNetworkSimulator {
    /// A network with no acquirer yet; numbers start after `seed` (so two
    /// runs against one issuer do not reuse RRNs).
    pub fn new(seed: u64) -> CardNetworkSimulator {
        CardNetworkSimulator { acquirers: BTreeMap::new(), stan: (seed % 999_999) as u32, rrn: seed }
    }

    /// Registers an acquirer and the DA its captures settle to.
    pub fn add_acquirer(&mut self, id: AcquirerId, settlement: Address) -> Result<(), NodeError> {
        if self.acquirers.len() >= ACQUIRERS_MAX && !self.acquirers.contains_key(&id) {
            return Err(NodeError::Invalid(format!("the simulator knows at most {ACQUIRERS_MAX} acquirers")));
        }
        self.acquirers.insert(id, settlement);
        Ok(())
    }

    fn next_stan(&mut self) -> Stan {
        self.stan = if self.stan >= 999_999 { 1 } else { self.stan.saturating_add(1) };
        // Six digits by construction.
        Stan::new(format!("{:06}", self.stan)).unwrap_or_else(|_| unreachable!("six digits"))
    }

    fn next_rrn(&mut self) -> Rrn {
        self.rrn = self.rrn.wrapping_add(1) % 1_000_000_000_000;
        Rrn::new(format!("{:012}", self.rrn)).unwrap_or_else(|_| unreachable!("twelve digits"))
    }

    #[allow(clippy::too_many_arguments)]
    fn message(
        &mut self,
        mti: Mti,
        transaction: TransactionType,
        card: &CardToken,
        card_expiry: Option<CardExpiry>,
        acquirer: &AcquirerId,
        amount: Amount,
        rrn: Rrn,
        original_rrn: Option<Rrn>,
        now: Timestamp,
    ) -> Result<CardMessage, NodeError> {
        let acquirer_account = *self
            .acquirers
            .get(acquirer)
            .ok_or_else(|| NodeError::Invalid(format!("acquirer {acquirer} is not known to the network")))?;
        Ok(CardMessage {
            mti,
            transaction,
            amount,
            currency: CURRENCY_KZT,
            transmitted_at: now,
            stan: self.next_stan(),
            card: card.clone(),
            card_expiry,
            acquirer: acquirer.clone(),
            acquirer_account,
            rrn,
            original_rrn,
            replacement: None,
        })
    }

    /// 0100: a purchase of `amount` at `acquirer`'s merchant, a new payment (new RRN).
    pub fn authorisation(
        &mut self,
        card: &CardToken,
        expiry: CardExpiry,
        acquirer: &AcquirerId,
        amount: Amount,
        now: Timestamp,
    ) -> Result<CardMessage, NodeError> {
        let rrn = self.next_rrn();
        self.message(
            Mti::AuthorisationRequest,
            TransactionType::Purchase,
            card,
            Some(expiry),
            acquirer,
            amount,
            rrn,
            None,
            now,
        )
    }

    /// 0120: the network approved a purchase on the issuer's behalf (stand-in).
    pub fn advice(
        &mut self,
        card: &CardToken,
        expiry: CardExpiry,
        acquirer: &AcquirerId,
        amount: Amount,
        now: Timestamp,
    ) -> Result<CardMessage, NodeError> {
        let rrn = self.next_rrn();
        self.message(
            Mti::AuthorisationAdvice,
            TransactionType::Purchase,
            card,
            Some(expiry),
            acquirer,
            amount,
            rrn,
            None,
            now,
        )
    }

    /// 0400 (or 0420 as an advice): cancels the authorisation `original`.
    pub fn reversal(&mut self, original: &CardMessage, advice: bool, now: Timestamp) -> Result<CardMessage, NodeError> {
        let mti = if advice { Mti::ReversalAdvice } else { Mti::ReversalRequest };
        self.message(
            mti,
            TransactionType::Purchase,
            &original.card,
            None,
            &original.acquirer,
            original.amount,
            original.rrn.clone(),
            None,
            now,
        )
    }

    /// 0400 (or 0420) with DE 95: the payment `original` really comes to
    /// `replacement`; the rest of its hold is released.
    pub fn partial_reversal(
        &mut self,
        original: &CardMessage,
        replacement: Amount,
        advice: bool,
        now: Timestamp,
    ) -> Result<CardMessage, NodeError> {
        let message = self.reversal(original, advice, now)?;
        Ok(CardMessage { replacement: Some(replacement), ..message })
    }

    /// 1240: clears the authorisation `original` for `amount` (all of it or part).
    pub fn presentment(
        &mut self,
        original: &CardMessage,
        amount: Amount,
        now: Timestamp,
    ) -> Result<CardMessage, NodeError> {
        self.message(
            Mti::Presentment,
            TransactionType::Purchase,
            &original.card,
            None,
            &original.acquirer,
            amount,
            original.rrn.clone(),
            None,
            now,
        )
    }

    /// 1240 with DE 3 `20`: the merchant refunds `amount` of the purchase `original` (its own RRN).
    pub fn refund(&mut self, original: &CardMessage, amount: Amount, now: Timestamp) -> Result<CardMessage, NodeError> {
        let rrn = self.next_rrn();
        self.message(
            Mti::Presentment,
            TransactionType::Refund,
            &original.card,
            None,
            &original.acquirer,
            amount,
            rrn,
            Some(original.rrn.clone()),
            now,
        )
    }

    /// The same message again (a retransmission: same type, STAN and RRN).
    pub fn retransmission(&self, message: &CardMessage) -> CardMessage {
        message.clone()
    }
}
