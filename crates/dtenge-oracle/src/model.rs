//! The oracle's registries as data: providers, events with their holds and
//! releases, marking parameters with their contracts and cumulative usage,
//! e-invoices, FX rates, and the reservations attestations make.
//!
//! Everything here is plain data with a canonical borsh encoding (ordered
//! maps only), so a snapshot of the state is byte-for-byte reproducible.
//! Counters kept here (pending holds, pending releases, contract usage,
//! invoice reservation) are maintained only by [`crate::OracleState::apply`],
//! and always agree with the open reservations:
//!
//! - an event's `pending_holds` / `pending_releases` are exactly the open
//!   reservations of kind hold / release for it;
//! - a contract's `reserved` usage is the sum of its open reservations;
//! - an invoice's `reserved_by` is its one open reservation, and `paid_by` is
//!   set once and never cleared.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_types::{
    Address, Amount, ContractNo, Currency, EventId, HoldKind, InvoiceId, ParameterId, ParticipantId, Statement,
    Timestamp, TxId,
};
use serde::{Deserialize, Serialize};

/// How long after a campaign's deadline its contributions stay held, so that a
/// successful campaign can still be released: the kernel refuses a release
/// whose window ends after the hold's valid-until, so the hold must outlive
/// the deadline. After this period unreleased contributions expire back to
/// their owners without the oracle.
pub const CAMPAIGN_RELEASE_PERIOD_MS: u64 = 7 * Timestamp::DAY_MS;

/// Longest provider name or parameter title, in bytes.
pub const MAX_NAME_BYTES: usize = 200;

/// A registry an event provider may write to.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Registry {
    /// Events for holds (§4.1, §4.4).
    Events,
    /// Marking parameters and their contracts (§4.2.2).
    Parameters,
    /// E-invoices (§4.2.3).
    Invoices,
    /// Exchange rates (§9).
    Fx,
}

impl fmt::Display for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Registry::Events => "events",
            Registry::Parameters => "parameters",
            Registry::Invoices => "e-invoices",
            Registry::Fx => "FX rates",
        })
    }
}

/// An external system allowed to feed the oracle (the tax service, a subsidy
/// system, the Smart Contract Portal, canteen terminals …).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Provider {
    /// The provider's participant id.
    pub id: ParticipantId,
    /// Its human-readable name.
    pub name: String,
    /// Where it may write.
    pub registries: BTreeSet<Registry>,
}

/// What kind of event an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// One occurrence releases (part of) the hold; the rest returns.
    Single,
    /// Each occurrence adds to a releasable balance (a canteen meal); the rest
    /// stays held.
    Recurring,
    /// Crowdfunding: anyone contributes a hold; at the deadline either all
    /// holds are released to the beneficiary (target met) or all return.
    Campaign {
        /// The total that must be held by the deadline.
        target: Amount,
    },
}

impl EventKind {
    /// The hold kind its held tokens carry. A campaign contribution is
    /// released once, whole or in part, so it is a single hold.
    pub fn hold_kind(&self) -> HoldKind {
        match self {
            EventKind::Single | EventKind::Campaign { .. } => HoldKind::Single,
            EventKind::Recurring => HoldKind::Recurring,
        }
    }

    /// Whether this is a campaign.
    pub fn is_campaign(&self) -> bool {
        matches!(self, EventKind::Campaign { .. })
    }
}

/// An event as a provider registers it.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct EventSpec {
    /// Unique id.
    pub id: EventId,
    /// Single, recurring or campaign.
    pub kind: EventKind,
    /// Whose funds are held; `None` for a campaign (anyone contributes).
    pub sender: Option<Address>,
    /// The sender's node, told about the event.
    pub sender_node: Option<ParticipantId>,
    /// Who receives released funds.
    pub recipient: Address,
    /// The recipient's node.
    pub recipient_node: ParticipantId,
    /// The amount held: fixed for single and recurring, `None` for a campaign.
    pub amount: Option<Amount>,
    /// Single/recurring: when the hold ends. Campaign: the deadline.
    pub valid_until: Timestamp,
}

impl EventSpec {
    /// The valid-until every held token of this event carries: the event's
    /// own, or for a campaign the deadline plus [`CAMPAIGN_RELEASE_PERIOD_MS`].
    pub fn hold_valid_until(&self) -> Timestamp {
        if self.kind.is_campaign() {
            self.valid_until.plus_millis(CAMPAIGN_RELEASE_PERIOD_MS)
        } else {
            self.valid_until
        }
    }
}

/// Where an event stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventStatus {
    /// Accepting holds and occurrences (a campaign: before settlement).
    Open,
    /// Cancelled by the provider: every hold returns.
    Cancelled,
    /// A campaign that met its target: every contribution may be released.
    CampaignSucceeded,
    /// A campaign that missed its target: every contribution returns.
    CampaignFailed,
}

impl EventStatus {
    /// Whether held funds under the event may be returned with `cancel_hold`.
    pub fn holds_return(&self) -> bool {
        matches!(self, EventStatus::Cancelled | EventStatus::CampaignFailed)
    }
}

/// Funds held (or released) by one transaction: whose, and how much.
#[derive(Debug, Clone, Copy, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct HeldFunds {
    /// The owner of the held tokens.
    pub sender: Address,
    /// The amount.
    pub amount: Amount,
}

/// An event and everything that happened under it.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct EventState {
    /// As registered.
    pub spec: EventSpec,
    /// Who registered it.
    pub provider: ParticipantId,
    /// Open, cancelled or settled.
    pub status: EventStatus,
    /// Total reported occurrences (single and recurring).
    pub occurred: Amount,
    /// Notarised holds, by hold transaction.
    pub holds: BTreeMap<TxId, HeldFunds>,
    /// Attested holds not yet known to be notarised.
    pub pending_holds: BTreeMap<TxId, HeldFunds>,
    /// Notarised releases, by release transaction.
    pub releases: BTreeMap<TxId, HeldFunds>,
    /// Attested releases not yet known to be notarised.
    pub pending_releases: BTreeMap<TxId, HeldFunds>,
}

/// Sums amounts, saturating. Used for views and for totals that are bounded by
/// a checked total elsewhere (a sum of holds never exceeds the money supply).
fn total<'a>(funds: impl IntoIterator<Item = &'a HeldFunds>) -> Amount {
    Amount::checked_sum(funds.into_iter().map(|f| f.amount)).unwrap_or(Amount::MAX)
}

fn total_of<'a>(funds: impl IntoIterator<Item = &'a HeldFunds>, sender: &Address) -> Amount {
    total(funds.into_iter().filter(|f| f.sender == *sender))
}

impl EventState {
    /// A freshly registered event.
    pub fn new(spec: EventSpec, provider: ParticipantId) -> EventState {
        EventState {
            spec,
            provider,
            status: EventStatus::Open,
            occurred: Amount::ZERO,
            holds: BTreeMap::new(),
            pending_holds: BTreeMap::new(),
            releases: BTreeMap::new(),
            pending_releases: BTreeMap::new(),
        }
    }

    /// Total of notarised holds.
    pub fn held_total(&self) -> Amount {
        total(self.holds.values())
    }

    /// Total of notarised releases.
    pub fn released_total(&self) -> Amount {
        total(self.releases.values())
    }

    /// Total of attested, not yet settled releases.
    pub fn release_reserved_total(&self) -> Amount {
        total(self.pending_releases.values())
    }

    /// How much a new release may still take, over all senders (reservations
    /// already deducted).
    pub fn releasable(&self) -> Amount {
        match self.spec.kind {
            EventKind::Campaign { .. } => {
                let senders: BTreeSet<Address> = self.holds.values().map(|h| h.sender).collect();
                Amount::checked_sum(senders.iter().map(|s| self.releasable_for(s))).unwrap_or(Amount::MAX)
            }
            EventKind::Single | EventKind::Recurring => {
                self.holds.values().next().map(|h| self.releasable_for(&h.sender)).unwrap_or(Amount::ZERO)
            }
        }
    }

    /// How much a new release of `sender`'s held funds may take.
    ///
    /// - single: the reported occurrence, once (the kernel returns the rest
    ///   of a single hold to the sender on the first release);
    /// - recurring: occurrences reported so far minus releases;
    /// - campaign: after success, the sender's contributions minus releases.
    pub fn releasable_for(&self, sender: &Address) -> Amount {
        let released = total_of(self.releases.values(), sender);
        let reserved = total_of(self.pending_releases.values(), sender);
        let consumed = released.checked_add(reserved).unwrap_or(Amount::MAX);
        match self.spec.kind {
            EventKind::Single if !self.releases.is_empty() || !self.pending_releases.is_empty() => Amount::ZERO,
            EventKind::Single | EventKind::Recurring => {
                if self.status != EventStatus::Open || !self.holds.values().any(|h| h.sender == *sender) {
                    return Amount::ZERO;
                }
                self.occurred.saturating_sub(consumed)
            }
            EventKind::Campaign { .. } => {
                if self.status != EventStatus::CampaignSucceeded {
                    return Amount::ZERO;
                }
                total_of(self.holds.values(), sender).saturating_sub(consumed)
            }
        }
    }
}

/// A marking parameter (a state order number) registered by the Smart
/// Contract Portal.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Parameter {
    /// The state order number.
    pub id: ParameterId,
    /// The DA that marks funds with it.
    pub initiator: Address,
    /// The initiator's node, which receives traceability copies.
    pub initiator_node: ParticipantId,
    /// What the order is.
    pub title: String,
}

/// A contract under a parameter: who may pay whom, and how much in all.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Contract {
    /// The contract number, unique within its parameter.
    pub number: ContractNo,
    /// The parameter it belongs to.
    pub parameter: ParameterId,
    /// Who pays under it.
    pub sender: Address,
    /// Who is paid under it.
    pub recipient: Address,
    /// Most that may be transferred to the recipient in all.
    pub max_transfer: Amount,
    /// Most the recipient may convert to cash or non-cash money in all.
    pub max_cashout: Amount,
    /// Payments are attested up to this instant.
    pub valid_until: Timestamp,
    /// Whether the recipient is the end supplier, who receives standard tokens.
    pub final_recipient: bool,
}

/// A later change to a contract's maxima and duration.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ContractAmendment {
    /// New maximum transfer total.
    pub max_transfer: Amount,
    /// New maximum cash-out total.
    pub max_cashout: Amount,
    /// New end of validity.
    pub valid_until: Timestamp,
}

/// Cumulative use of one of a contract's maxima.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Usage {
    /// Paid by notarised transactions.
    pub confirmed: Amount,
    /// Attested to transactions not yet known to be notarised.
    pub reserved: Amount,
}

impl Usage {
    /// Confirmed plus reserved: what counts against the maximum.
    pub fn used(&self) -> Amount {
        // Both parts were admitted under a maximum, so the sum fits.
        self.confirmed.checked_add(self.reserved).unwrap_or(Amount::MAX)
    }
}

/// Which maximum of a contract a payment counts against.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    /// Transfers to the contract's recipient.
    Transfer,
    /// The recipient's conversions to cash or non-cash money.
    CashOut,
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LimitKind::Transfer => "transfer",
            LimitKind::CashOut => "cash-out",
        })
    }
}

/// A contract with its cumulative usage.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ContractState {
    /// As registered and amended.
    pub contract: Contract,
    /// Who registered it.
    pub provider: ParticipantId,
    /// Use of `max_transfer`.
    pub transferred: Usage,
    /// Use of `max_cashout`.
    pub cashed_out: Usage,
}

impl ContractState {
    /// The maximum and usage for `kind`.
    pub fn limit(&self, kind: LimitKind) -> (Amount, &Usage) {
        match kind {
            LimitKind::Transfer => (self.contract.max_transfer, &self.transferred),
            LimitKind::CashOut => (self.contract.max_cashout, &self.cashed_out),
        }
    }

    pub(crate) fn usage_mut(&mut self, kind: LimitKind) -> &mut Usage {
        match kind {
            LimitKind::Transfer => &mut self.transferred,
            LimitKind::CashOut => &mut self.cashed_out,
        }
    }
}

/// A parameter with its contracts.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ParameterState {
    /// As registered.
    pub parameter: Parameter,
    /// Who registered it.
    pub provider: ParticipantId,
    /// Its contracts, by number.
    pub contracts: BTreeMap<ContractNo, ContractState>,
}

/// An e-invoice as the tax service registers it.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Invoice {
    /// The ISEI id.
    pub id: InvoiceId,
    /// Who is paid.
    pub seller: Address,
    /// Who pays.
    pub buyer: Address,
    /// Amount without VAT.
    pub net: Amount,
    /// VAT amount.
    pub vat: Amount,
}

/// An e-invoice and whether it is paid.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct InvoiceState {
    /// As registered.
    pub invoice: Invoice,
    /// Who registered it.
    pub provider: ParticipantId,
    /// The transaction attested to pay it, not yet known to be notarised.
    pub reserved_by: Option<TxId>,
    /// The notarised transaction that paid it.
    pub paid_by: Option<TxId>,
}

/// An exchange rate: `quote = floor(base × numerator / denominator)`.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct FxRate {
    /// Currency given.
    pub base: Currency,
    /// Currency received.
    pub quote: Currency,
    /// Rate numerator, positive.
    pub numerator: u64,
    /// Rate denominator, positive.
    pub denominator: u64,
    /// Attested up to this instant.
    pub valid_until: Timestamp,
}

/// A rate and who set it.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct RateState {
    /// The rate.
    pub rate: FxRate,
    /// Who set it.
    pub provider: ParticipantId,
}

/// What an attestation holds back until its transaction is known to be
/// notarised (confirm) or never to commit (release).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reservation {
    /// A hold under an event.
    Hold {
        /// The event.
        event: EventId,
        /// Held funds.
        funds: HeldFunds,
    },
    /// A release of held funds.
    Release {
        /// The event.
        event: EventId,
        /// Whose held funds and how much is released.
        funds: HeldFunds,
    },
    /// A payment against a contract's maximum.
    Contract {
        /// The parameter.
        parameter: ParameterId,
        /// The contract.
        contract: ContractNo,
        /// Which maximum.
        kind: LimitKind,
        /// The amount.
        amount: Amount,
    },
    /// The payment of an e-invoice.
    Invoice {
        /// The invoice.
        invoice: InvoiceId,
    },
}

/// An open reservation: what it holds back, the statement that was attested
/// (returned again to a repeated request) and when the transaction's window
/// closes.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ReservationEntry {
    /// What is held back.
    pub reservation: Reservation,
    /// What was attested.
    pub statement: Statement,
    /// The transaction's `not_after`: after it the transaction can no longer
    /// commit, so the notary's answer is final.
    pub expires_at: Timestamp,
    /// The node that asked for the attestation (it alone may abandon it);
    /// `None` for reservations recorded before nodes were named.
    pub node: Option<ParticipantId>,
}

/// What a contract payment is for.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContractPurpose {
    /// The contract's sender pays its recipient (counted against `max_transfer`).
    Transfer,
    /// The contract's recipient converts marked funds to non-cash money
    /// through its bank's DA (counted against `max_cashout`).
    CashOut {
        /// The bank's DA that receives the funds, unmarked.
        bank: Address,
    },
}

/// What the node asks the oracle to attest, where the transaction body alone
/// does not say it.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AttestRequest {
    /// Everything follows from the body.
    Plain,
    /// A `contract_payment`, with its purpose.
    ContractPayment {
        /// Transfer or cash-out.
        purpose: ContractPurpose,
    },
    /// A `pvp` in which the party giving `base` is party A (the rate's base).
    /// With [`AttestRequest::Plain`] a `pvp` gets whichever direction is stored.
    Pvp {
        /// The currency party A gives.
        base: Currency,
    },
}

/// What a node is told.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Notice {
    /// Position in the oracle's notice log, from 1.
    pub seq: u64,
    /// The node it is for; `None`: every node.
    pub to: Option<ParticipantId>,
    /// What happened.
    pub kind: NoticeKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NoticeKind {
    /// An event was registered with these terms (to the sender's and recipient's nodes).
    EventRegistered(EventSpec),
    /// An event occurred: held funds may be released.
    EventOccurred {
        /// The event.
        event: EventId,
    },
    /// An event was cancelled (or a campaign missed its target): held funds return.
    EventCancelled {
        /// The event.
        event: EventId,
    },
    /// A campaign met its target: every contribution may be released.
    CampaignSucceeded {
        /// The event.
        event: EventId,
    },
    /// A marking parameter was registered for an initiator on this node.
    ParameterRegistered {
        /// The parameter.
        parameter: ParameterId,
    },
}
