//! Programmable money on the caller's node (SPEC §4): holds, marking,
//! payments of marked funds and under contracts, e-invoice and VAT
//! payments, debit mandates, PvP.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Holding funds of a DA for an oracle event (`POST /api/v1/holds`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HoldRequest {
    /// The DA whose funds are held (on the caller's node); the event's sender.
    pub account: String,
    /// The event registered on the oracle.
    pub event: String,
    /// Only for a campaign contribution: how much to hold, in tiyn. Other
    /// events hold their registered amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_tiyn: Option<u64>,
}

/// Names the DA an operation concerns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AccountRef {
    /// The DA (on the caller's node).
    pub account: String,
}

/// A hold's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HoldKindDto {
    /// One release; the rest returns to the owner.
    Single,
    /// The rest stays held for the next occurrence.
    Recurring,
}

/// Funds a DA holds for one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HeldView {
    /// The event.
    pub event: String,
    /// Who receives released funds (address).
    pub recipient: String,
    /// The recipient's node.
    pub recipient_node: String,
    /// After this instant the funds return to the owner (ms).
    pub valid_until_ms: u64,
    /// Valid-until, Astana time.
    pub valid_until: String,
    /// Single or recurring.
    pub kind: HoldKindDto,
    /// Held in all, in tiyn.
    pub amount_tiyn: u64,
    /// Held, as shown.
    pub amount: String,
    /// Of which taken by a transaction in flight (release, return), in tiyn.
    pub in_flight_tiyn: u64,
    /// Tokens holding it.
    pub tokens: usize,
}

/// One level of an address marking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MarkingLevelDto {
    /// The DAs (addresses) allowed to receive at this level.
    pub recipients: Vec<String>,
    /// The most that may reach this level in all, in tiyn.
    pub limit_tiyn: u64,
}

/// Marking funds by address (Treasury only; `POST /api/v1/markings/address`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MarkAddressRequest {
    /// The initiating DA (a GA on the Treasury node); its funds are marked.
    pub account: String,
    /// The marking recipient (address), level 0.
    pub recipient: String,
    /// How much, in tiyn.
    pub amount_tiyn: u64,
    /// The initiator's reference for this marking (e.g. a budget programme).
    pub reference: String,
    /// Levels 1..=depth: allowed recipients and limit of each.
    pub levels: Vec<MarkingLevelDto>,
    /// Purpose text (up to 140 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
}

/// Marking funds with a parameter registered on the oracle (`POST /api/v1/markings/parameter`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MarkParameterRequest {
    /// The DA whose funds are marked (the parameter's initiator).
    pub account: String,
    /// The marking recipient (address).
    pub recipient: String,
    /// How much, in tiyn.
    pub amount_tiyn: u64,
    /// The parameter (state order number).
    pub parameter: String,
    /// Purpose text (up to 140 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
}

/// A payee by address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AddressPayee {
    /// The recipient DA's address.
    pub address: String,
    /// Amount in tiyn.
    pub amount_tiyn: u64,
}

/// A transfer of address-marked funds (`POST /api/v1/transfers/marked`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MarkedTransferRequest {
    /// The paying DA (holder of marked funds, on the caller's node).
    pub from: String,
    /// Next-level recipients (one atomic transaction).
    pub to: Vec<AddressPayee>,
    /// Only funds of the marking with this reference (default: the largest marked token's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Purpose text (up to 140 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
}

/// A payment of parameter-marked funds under a contract (`POST /api/v1/contract-payments`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ContractPaymentRequest {
    /// The paying DA (holder of the marked funds, on the caller's node).
    pub account: String,
    /// The marking parameter.
    pub parameter: String,
    /// The contract number under it.
    pub contract: String,
    /// The contract's recipient, or for a cash-out the bank's DA (address).
    pub recipient: String,
    /// Amount in tiyn.
    pub amount_tiyn: u64,
    /// Whether this converts marked funds to non-cash money through the bank's DA
    /// (counted against the contract's cash-out maximum).
    #[serde(default)]
    pub cash_out: bool,
    /// Purpose text (up to 140 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
}

/// Paying VAT tokens to the tax authority (`POST /api/v1/vat-payments`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VatPaymentRequest {
    /// The paying DA (on the caller's node).
    pub account: String,
    /// How much VAT, in tiyn.
    pub amount_tiyn: u64,
}

/// Granting a debit mandate (`POST /api/v1/mandates`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GrantMandateRequest {
    /// The owner's DA (on the caller's node), whose funds are reserved.
    pub account: String,
    /// The mandate's id.
    pub mandate: String,
    /// The DA allowed to debit (address), usually the issuing bank's.
    pub grantee: String,
    /// How much is reserved, in tiyn.
    pub amount_tiyn: u64,
    /// Debits must commit before this instant (ms since the epoch).
    pub valid_until_ms: u64,
}

/// A debit under a mandate (`POST /api/v1/mandates/{mandate}/debit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DebitRequest {
    /// The grantee's DA (on the caller's node).
    pub grantee_account: String,
    /// The owner's DA (on the caller's node).
    pub owner_account: String,
    /// Where the money goes (address).
    pub to: String,
    /// How much, in tiyn.
    pub amount_tiyn: u64,
    /// Purpose text (up to 140 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
}

/// A payment-versus-payment exchange (`POST /api/v1/pvp`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PvpRequest {
    /// The caller's DA that gives `base` (party A).
    pub account: String,
    /// Party B's DA (on any node), which gives `quote`.
    pub counterparty: String,
    /// Currency A gives (e.g. `DT`).
    pub base: String,
    /// Amount of `base` A gives, in its smallest unit.
    pub amount_tiyn: u64,
    /// Currency A receives at the FX oracle's rate.
    pub quote: String,
}
