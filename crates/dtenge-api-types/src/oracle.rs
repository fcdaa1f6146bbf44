//! The oracle's registries for event providers (SPEC §1, §4, §9): events,
//! marking parameters and contracts, e-invoices, FX rates; providers (NBK).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A registry a provider may write to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RegistryDto {
    /// Events for holds.
    Events,
    /// Marking parameters and their contracts.
    Parameters,
    /// E-invoices.
    Invoices,
    /// Exchange rates.
    Fx,
}

/// Registering (or changing) an event provider (`POST /api/v1/oracle/providers`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProviderRequest {
    /// The provider's participant id (a registered participant with the provider role).
    pub id: String,
    /// Its name.
    pub name: String,
    /// Where it may write; replaces what it had.
    pub registries: Vec<RegistryDto>,
}

/// What kind of event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKindDto {
    /// One occurrence releases (part of) the hold; the rest returns.
    Single,
    /// Each occurrence releases an amount; the rest stays held.
    Recurring,
    /// Crowdfunding: contributions are held; at the deadline all go to the
    /// recipient if `target_tiyn` is met, otherwise all return.
    Campaign,
}

/// An event as a provider registers it (`POST /api/v1/oracle/events`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EventRequest {
    /// Unique id (up to 64 bytes).
    pub id: String,
    /// Single, recurring or campaign.
    pub kind: EventKindDto,
    /// Campaign only: the total that must be held by the deadline, in tiyn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_tiyn: Option<u64>,
    /// Whose funds are held (address); none for a campaign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// The sender's node; none for a campaign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_node: Option<String>,
    /// Who receives released funds (address).
    pub recipient: String,
    /// The recipient's node.
    pub recipient_node: String,
    /// The amount held, in tiyn (single and recurring); none for a campaign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_tiyn: Option<u64>,
    /// Single/recurring: when the hold ends; campaign: the deadline (ms since the epoch).
    pub valid_until_ms: u64,
}

/// An event, what happened under it and what may still be released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EventView {
    /// Its id.
    pub id: String,
    /// Single, recurring or campaign.
    pub kind: EventKindDto,
    /// Campaign: its target, in tiyn.
    #[serde(default)]
    pub target_tiyn: Option<u64>,
    /// Whose funds are held (address).
    #[serde(default)]
    pub sender: Option<String>,
    /// The sender's node.
    #[serde(default)]
    pub sender_node: Option<String>,
    /// Who receives released funds (address).
    pub recipient: String,
    /// The recipient's node.
    pub recipient_node: String,
    /// The amount held (single and recurring), in tiyn.
    #[serde(default)]
    pub amount_tiyn: Option<u64>,
    /// Valid-until or deadline (ms).
    pub valid_until_ms: u64,
    /// Valid-until or deadline, Astana time.
    pub valid_until: String,
    /// The provider that registered it.
    pub provider: String,
    /// `open`, `cancelled`, `campaign_succeeded` or `campaign_failed`.
    pub status: String,
    /// Reported occurrences in all, in tiyn.
    pub occurred_tiyn: u64,
    /// Held by notarised holds, in tiyn.
    pub held_tiyn: u64,
    /// Released by notarised releases, in tiyn.
    pub released_tiyn: u64,
    /// What a new release may still take, in tiyn.
    pub releasable_tiyn: u64,
    /// Holds attested but not yet known to be notarised, in tiyn.
    pub pending_holds_tiyn: u64,
    /// Releases attested but not yet known to be notarised, in tiyn.
    pub pending_releases_tiyn: u64,
}

/// An occurrence of an event (`POST /api/v1/oracle/events/{id}/occurrences`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OccurrenceRequest {
    /// How much it releases, in tiyn (recurring events; a single event
    /// releases its whole amount when omitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_tiyn: Option<u64>,
}

/// A marking parameter (a state order number; `POST /api/v1/oracle/parameters`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ParameterRequest {
    /// The state order number.
    pub id: String,
    /// The DA that marks funds with it (address).
    pub initiator: String,
    /// The initiator's node, which receives traceability copies.
    pub initiator_node: String,
    /// What the order is.
    pub title: String,
}

/// A contract under a parameter (`POST /api/v1/oracle/contracts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ContractRequest {
    /// The contract number, unique within its parameter.
    pub number: String,
    /// The parameter it belongs to.
    pub parameter: String,
    /// Who pays under it (address).
    pub sender: String,
    /// Who is paid under it (address).
    pub recipient: String,
    /// Most that may be transferred to the recipient in all, in tiyn.
    pub max_transfer_tiyn: u64,
    /// Most the recipient may convert to cash or non-cash money in all, in tiyn (0: none).
    pub max_cashout_tiyn: u64,
    /// Payments are attested up to this instant (ms since the epoch).
    pub valid_until_ms: u64,
    /// Whether the recipient is the end supplier, who receives standard tokens.
    #[serde(default)]
    pub final_recipient: bool,
}

/// A contract's change of maxima and duration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AmendRequest {
    /// New maximum transfer total, in tiyn.
    pub max_transfer_tiyn: u64,
    /// New maximum cash-out total, in tiyn.
    pub max_cashout_tiyn: u64,
    /// New end of validity (ms since the epoch).
    pub valid_until_ms: u64,
}

/// A contract with its cumulative use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ContractView {
    /// The contract number.
    pub number: String,
    /// Its parameter.
    pub parameter: String,
    /// Who pays (address).
    pub sender: String,
    /// Who is paid (address).
    pub recipient: String,
    /// Maximum transfer total, in tiyn.
    pub max_transfer_tiyn: u64,
    /// Maximum cash-out total, in tiyn.
    pub max_cashout_tiyn: u64,
    /// End of validity (ms).
    pub valid_until_ms: u64,
    /// End of validity, Astana time.
    pub valid_until: String,
    /// Whether the recipient receives standard tokens.
    pub final_recipient: bool,
    /// The provider that registered it.
    pub provider: String,
    /// Transferred by notarised payments, in tiyn.
    pub transferred_tiyn: u64,
    /// Transfers attested, not yet known to be notarised, in tiyn.
    pub transfer_reserved_tiyn: u64,
    /// What may still be transferred, in tiyn.
    pub transfer_remaining_tiyn: u64,
    /// Cashed out by notarised payments, in tiyn.
    pub cashed_out_tiyn: u64,
    /// Cash-outs attested, not yet known to be notarised, in tiyn.
    pub cashout_reserved_tiyn: u64,
    /// What may still be cashed out, in tiyn.
    pub cashout_remaining_tiyn: u64,
}

/// An e-invoice as the tax service registers it (`POST /api/v1/oracle/invoices`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InvoiceRequest {
    /// The ISEI id.
    pub id: String,
    /// Who is paid (address).
    pub seller: String,
    /// Who pays (address).
    pub buyer: String,
    /// Amount without VAT, in tiyn.
    pub net_tiyn: u64,
    /// VAT amount, in tiyn.
    pub vat_tiyn: u64,
}

/// An e-invoice and whether it is paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InvoiceView {
    /// The ISEI id.
    pub id: String,
    /// Who is paid (address).
    pub seller: String,
    /// Who pays (address).
    pub buyer: String,
    /// Amount without VAT, in tiyn.
    pub net_tiyn: u64,
    /// VAT amount, in tiyn.
    pub vat_tiyn: u64,
    /// Net plus VAT, in tiyn.
    pub total_tiyn: u64,
    /// Total as shown.
    pub total: String,
    /// The provider that registered it.
    pub provider: String,
    /// `unpaid`, `being_paid` (a payment is attested, not yet notarised) or `paid`.
    pub state: String,
    /// Whether it is paid.
    pub paid: bool,
    /// The notarised payment.
    #[serde(default)]
    pub paid_by: Option<String>,
    /// The payment in flight.
    #[serde(default)]
    pub reserved_by: Option<String>,
}

/// An exchange rate: `quote = floor(base × numerator / denominator)` (`POST /api/v1/oracle/fx-rates`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RateRequest {
    /// Currency given (2-8 of A-Z, 0-9), e.g. `DT`.
    pub base: String,
    /// Currency received.
    pub quote: String,
    /// Rate numerator, positive.
    pub numerator: u64,
    /// Rate denominator, positive.
    pub denominator: u64,
    /// Attested up to this instant (ms since the epoch).
    pub valid_until_ms: u64,
}

/// A current exchange rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RateView {
    /// Currency given.
    pub base: String,
    /// Currency received.
    pub quote: String,
    /// Rate numerator.
    pub numerator: u64,
    /// Rate denominator.
    pub denominator: u64,
    /// Attested up to (ms).
    pub valid_until_ms: u64,
    /// Attested up to, Astana time.
    pub valid_until: String,
    /// Who set it.
    pub provider: String,
}
