//! The legal regime of a digital account (issue #9): KYC tiers with NBK's
//! limits, the link to a bank account for (reverse) waterfall, enforcement
//! orders of authorised bodies, key rotation after re-identification.
//!
//! ```text
//!  NBK publishes LimitPolicy ──(signed envelope)──► every node journals PolicyAdopted
//!  payer's node:  frozen? arrested? per-payment? daily? ──► refuse naming the limit
//!                 shortfall + linked bank account ──► waterfall top-up from the bank's DA
//!  payee's node:  closed? key revoked? balance cap? ──► refuse up front (asked before building)
//!                 over the cap + linked bank account ──► reverse waterfall to the bank's DA
//!  authority ──signed order──► the DA's bank: freeze / arrest / collect / lift (same body only)
//! ```
//!
//! Everything here is journaled by the node as [`crate::state::NodeRecord`]s.

use std::collections::BTreeMap;

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_crypto::PublicKey;
use dtenge_types::{Address, Amount, OrderAct, OrderRef, ParticipantId, SignedOrder, Timestamp, TxId};
use serde::{Deserialize, Serialize};

use crate::accounts::{AccountId, HolderKind};

/// Identification level of an individual's DA.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Remote identification (phone number, document scan).
    Simplified,
    /// Standard identification (the default for individuals).
    Standard,
    /// Full identification in person or by biometrics.
    Full,
}

impl Tier {
    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Simplified => "simplified",
            Tier::Standard => "standard",
            Tier::Full => "full",
        }
    }
}

/// The limits of one tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct TierLimits {
    /// Most a DA may hold (DT, every kind).
    pub max_balance: Amount,
    /// Largest single outgoing payment.
    pub per_payment: Amount,
    /// Most that may leave the DA per day (Astana time).
    pub daily_outgoing: Amount,
}

/// NBK's policy: limits per tier, applied to individuals' DAs.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct LimitPolicy {
    /// Increases with every publication; a node adopts only newer versions.
    pub version: u64,
    /// Simplified tier.
    pub simplified: TierLimits,
    /// Standard tier.
    pub standard: TierLimits,
    /// Full tier.
    pub full: TierLimits,
    /// When NBK published it.
    pub published_at: Timestamp,
}

impl LimitPolicy {
    /// The limits of `tier`.
    pub fn limits(&self, tier: Tier) -> &TierLimits {
        match tier {
            Tier::Simplified => &self.simplified,
            Tier::Standard => &self.standard,
            Tier::Full => &self.full,
        }
    }
}

/// Which limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    /// The balance cap.
    MaxBalance,
    /// The single-payment limit.
    PerPayment,
    /// The daily outgoing limit.
    DailyOutgoing,
}

impl LimitKind {
    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            LimitKind::MaxBalance => "maximum balance",
            LimitKind::PerPayment => "per-payment limit",
            LimitKind::DailyOutgoing => "daily outgoing limit",
        }
    }
}

/// A DA's tier and linked bank account (individuals' DAs; others have none).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct AccountProfile {
    /// The tier.
    pub tier: Tier,
    /// The holder's current account at the same bank, for (reverse) waterfall.
    pub linked_bank_account: Option<String>,
}

impl Default for AccountProfile {
    fn default() -> Self {
        AccountProfile { tier: Tier::Standard, linked_bank_account: None }
    }
}

/// An enforcement order as the DA's bank holds it.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct OrderEntry {
    /// The signed order.
    pub signed: SignedOrder,
    /// The DA.
    pub account: AccountId,
    /// Who delivered it (the authority's participant id).
    pub via: ParticipantId,
    /// When the bank recorded it.
    pub placed_at: Timestamp,
    /// When and by which order it was lifted.
    pub lifted: Option<(Timestamp, OrderRef)>,
    /// Collected so far (collection orders).
    pub collected: Amount,
    /// Collection transactions.
    pub txs: Vec<TxId>,
}

impl OrderEntry {
    /// Whether a freeze or arrest still applies.
    pub fn active(&self) -> bool {
        self.lifted.is_none() && matches!(self.signed.order.act, OrderAct::Freeze | OrderAct::Arrest { .. })
    }

    /// The authority's key.
    pub fn authority(&self) -> PublicKey {
        self.signed.order.authority
    }
}

/// Which way money moved between a DA and its linked bank account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkDirection {
    /// DA → bank account (reverse waterfall, closing by conversion).
    ToBankAccount,
    /// Bank account → DA (waterfall top-up).
    FromBankAccount,
}

/// An auditable record of a conversion between a DA and its linked bank
/// account: the DT moved between the DA and the bank's own DA, and the bank
/// account is credited or debited by the same amount in the bank's books.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct LinkedTransfer {
    /// The DA.
    pub account: AccountId,
    /// Which way.
    pub direction: LinkDirection,
    /// How much.
    pub amount: Amount,
    /// The bank account credited or debited.
    pub bank_account: String,
    /// The DT transaction with the bank's own DA.
    pub tx: TxId,
    /// When.
    pub at: Timestamp,
    /// Why (waterfall, reverse waterfall, closing).
    pub reason: String,
}

/// A client re-identified by their bank before a key rotation.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Reidentification {
    /// The DA.
    pub account: AccountId,
    /// The revoked key.
    pub old: Address,
    /// The new key.
    pub new: Address,
    /// The bank's reference of the re-identification (branch visit, biometric check).
    pub reference: String,
    /// Whether the client holds the new key (else the bank does).
    pub client_key: bool,
    /// When.
    pub at: Timestamp,
}

/// The message a client signs with a new key to prove they hold it.
pub fn rekey_proof_message(account: &AccountId, old: &Address, new: &Address) -> [u8; 32] {
    *dtenge_crypto::hash(b"dtenge/rekey/v1", &[account.0.as_bytes(), old.0.as_bytes(), new.0.as_bytes()]).as_bytes()
}

/// The Astana (UTC+5) calendar day of an instant, as days since the epoch.
pub fn astana_day(at: Timestamp) -> u64 {
    at.millis().saturating_add(5 * 3_600_000) / Timestamp::DAY_MS
}

/// One day's totals at one bank (no holder details).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct DayAggregate {
    /// Astana calendar day, as days since the epoch.
    pub day: u64,
    /// Payments that left this bank's DAs.
    pub payments_out: u64,
    /// Their total.
    pub amount_out: Amount,
    /// Payments that reached this bank's DAs.
    pub payments_in: u64,
    /// Their total.
    pub amount_in: Amount,
}

/// A payment at or above NBK's reporting threshold: no names, no IINs.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct LargePayment {
    /// The transaction.
    pub tx: TxId,
    /// The payer's bank.
    pub bank: ParticipantId,
    /// When.
    pub at: Timestamp,
    /// Amount that left the payer's DA.
    pub amount: Amount,
    /// The command (transfer, contract_payment, collect, …).
    pub kind: String,
    /// The payer's holder kind.
    pub payer_kind: HolderKind,
}

/// One step of marked funds, as the marking initiator's node sees it.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct MarkedMove {
    /// The transaction.
    pub tx: TxId,
    /// The marking level of the receiving tokens (0 = marking recipient), if address-marked.
    pub level: Option<u8>,
    /// Marked amount that moved on.
    pub amount: Amount,
    /// Amount that left the marking (paid out as standard money).
    pub unmarked: Amount,
    /// Banks of the receivers.
    pub to_banks: Vec<ParticipantId>,
}

/// Traceability of one marking (by address reference or parameter).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct MarkedReport {
    /// `address:<reference>` or `parameter:<id>`.
    pub marking: String,
    /// The initiator's node.
    pub initiator_node: ParticipantId,
    /// Every move seen.
    pub moves: Vec<MarkedMove>,
}

/// What a bank reports to NBK.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct BankReport {
    /// The bank.
    pub bank: ParticipantId,
    /// DAs open / closed.
    pub accounts_open: u64,
    /// Closed DAs.
    pub accounts_closed: u64,
    /// Individuals' DAs per tier.
    pub tiers: BTreeMap<String, u64>,
    /// Freezes and arrests in force.
    pub active_orders: u64,
    /// Per day.
    pub days: Vec<DayAggregate>,
    /// Payments at or above the threshold.
    pub large_payments: Vec<LargePayment>,
    /// Marked funds this node initiated (traceability copies).
    pub marked: Vec<MarkedReport>,
}
