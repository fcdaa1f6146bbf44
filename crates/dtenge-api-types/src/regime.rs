//! The account regime: KYC tiers and NBK's limits, linked bank accounts,
//! key rotation, closing; enforcement orders of authorised bodies; NBK's
//! regulator view (aggregates, large payments, marked-funds traceability —
//! no names, no IINs).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::accounts::HolderKindDto;

/// A KYC tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TierDto {
    /// Remote identification.
    Simplified,
    /// Standard identification (default).
    Standard,
    /// Full identification.
    Full,
}

/// The limits of one tier, in tiyn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TierLimitsDto {
    /// Most a DA may hold.
    pub max_balance_tiyn: u64,
    /// Largest single outgoing payment.
    pub per_payment_tiyn: u64,
    /// Most that may leave the DA per Astana day.
    pub daily_outgoing_tiyn: u64,
}

/// NBK's limits per tier (applied to individuals' DAs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LimitsBody {
    /// Simplified tier.
    pub simplified: TierLimitsDto,
    /// Standard tier.
    pub standard: TierLimitsDto,
    /// Full tier.
    pub full: TierLimitsDto,
}

/// The limit policy in force on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PolicyView {
    /// Version (increases with every publication).
    pub version: u64,
    /// The limits.
    pub limits: LimitsBody,
    /// Published at (ms).
    pub published_at_ms: u64,
    /// Published at, Astana time.
    pub published_at: String,
    /// After a publication: each node's answer (`adopted`, `refused: …`, `unreachable: …`).
    #[serde(default)]
    pub nodes: Vec<NodeAnswerView>,
}

/// One node's answer to a publication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NodeAnswerView {
    /// The node.
    pub node: String,
    /// Its answer.
    pub answer: String,
}

/// A conversion between the DA and its linked bank account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LinkedTransferView {
    /// `to_bank_account` (reverse waterfall, closing) or `from_bank_account` (waterfall).
    pub direction: String,
    /// Amount in tiyn.
    pub amount_tiyn: u64,
    /// The bank account.
    pub bank_account: String,
    /// The DT transaction with the bank's own DA.
    pub tx: String,
    /// When (ms).
    pub at_ms: u64,
    /// Why.
    pub reason: String,
}

/// A DA's regime: tier, limits, linked account, orders in force, state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProfileView {
    /// The DA.
    pub account: String,
    /// Its current address.
    pub address: String,
    /// Whether it is closed.
    pub closed: bool,
    /// Holder kind (limits apply to individuals).
    pub kind: HolderKindDto,
    /// The tier.
    pub tier: TierDto,
    /// The tier's limits, if NBK has published a policy and the holder is an individual.
    pub limits: Option<TierLimitsDto>,
    /// Paid out today (Astana day), in tiyn, as counted against the daily limit.
    pub spent_today_tiyn: u64,
    /// Linked bank account (IBAN) for waterfall and reverse waterfall.
    pub linked_bank_account: Option<String>,
    /// Freezes in force.
    pub frozen: bool,
    /// Arrested amount in tiyn.
    pub arrested_tiyn: u64,
    /// Conversions with the linked bank account, newest first.
    pub linked_transfers: Vec<LinkedTransferView>,
    /// Revoked keys of this DA.
    pub revoked_keys: Vec<String>,
}

/// Changing a DA's tier or linked bank account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProfileBody {
    /// A new tier (individuals only).
    pub tier: Option<TierDto>,
    /// A bank account (IBAN, 1-34 letters and digits) to link.
    pub linked_bank_account: Option<String>,
    /// Unlink the bank account.
    #[serde(default)]
    pub unlink: bool,
}

/// Key rotation after re-identification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RekeyBody {
    /// How the bank re-identified the client (branch visit, biometrics), 1-100 characters.
    pub reidentification: String,
    /// The client's new public key (hex) if the client signs; otherwise the bank keeps a new key.
    pub client_public_key: Option<String>,
    /// With a client key: its signature (hex) over SHA-256("dtenge/rekey/v1" ‖ account id ‖ old key ‖ new key).
    pub proof: Option<String>,
}

/// The result of a key rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RekeyView {
    /// The DA.
    pub account: String,
    /// The revoked key.
    pub old_address: String,
    /// The new key.
    pub new_address: String,
    /// The rotation transactions (host-signed `rekey`).
    pub txs: Vec<String>,
}

/// Closing a DA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CloseBody {
    /// Convert the standard balance to the linked bank account first.
    #[serde(default)]
    pub convert_out: bool,
}

/// What an order does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OrderActDto {
    /// Nothing may leave the DA.
    Freeze,
    /// This much may not be spent.
    Arrest {
        /// Amount in tiyn.
        amount_tiyn: u64,
    },
    /// Debit the DA to the beneficiary (as much as its free standard funds allow).
    Collect {
        /// Amount in tiyn.
        amount_tiyn: u64,
        /// The beneficiary's DA address (hex).
        beneficiary: String,
    },
    /// Lift an earlier freeze or arrest of the same body.
    Lift {
        /// Its reference.
        order: String,
    },
}

/// An authority's signed order, delivered to the DA's bank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderBody {
    /// The bank (node) hosting the DA.
    pub bank: String,
    /// The authority's reference (1-64 characters).
    pub reference: String,
    /// The DA's address (hex).
    pub debtor: String,
    /// What the order does.
    pub act: OrderActDto,
    /// The legal reason (1-140 characters).
    pub reason: String,
    /// When the authority issued it (ms).
    pub issued_at_ms: u64,
    /// The authority's Ed25519 signature (hex) over the order (see `dtenge_types::EnforcementOrder::signing_message`).
    pub signature: String,
}

/// An order as the bank records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderView {
    /// The bank hosting the DA.
    pub bank: String,
    /// The DA.
    pub account: String,
    /// The authority (participant) that delivered it.
    pub authority: String,
    /// The authority's key.
    pub authority_key: String,
    /// Its reference.
    pub reference: String,
    /// What it does.
    pub act: OrderActDto,
    /// The legal reason.
    pub reason: String,
    /// The authority's signature (hex).
    pub signature: String,
    /// Recorded at (ms).
    pub placed_at_ms: u64,
    /// In force (freeze / arrest not lifted).
    pub active: bool,
    /// Lifted by which order, if lifted.
    pub lifted_by: Option<String>,
    /// Collected so far (tiyn).
    pub collected_tiyn: u64,
    /// Collection transactions.
    pub txs: Vec<String>,
}

/// Report period and threshold.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// From (ms, inclusive); default the epoch.
    pub from_ms: Option<u64>,
    /// To (ms, inclusive); default now.
    pub to_ms: Option<u64>,
    /// Large-payment threshold in tiyn (default 100 000 000 = 1 000 000 DT).
    pub threshold_tiyn: Option<u64>,
}

/// Default large-payment threshold: 1 000 000 DT.
pub const DEFAULT_THRESHOLD_TIYN: u64 = 100_000_000;

/// One day at one bank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DayView {
    /// The Astana day, `YYYY-MM-DD`.
    pub day: String,
    /// Payments out of the bank's DAs.
    pub payments_out: u64,
    /// Their total (tiyn).
    pub amount_out_tiyn: u64,
    /// Payments into the bank's DAs.
    pub payments_in: u64,
    /// Their total (tiyn).
    pub amount_in_tiyn: u64,
}

/// A bank's aggregates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BankAggregatesView {
    /// The bank.
    pub bank: String,
    /// Open DAs.
    pub accounts_open: u64,
    /// Closed DAs.
    pub accounts_closed: u64,
    /// Individuals' open DAs per tier.
    pub tiers: BTreeMap<String, u64>,
    /// Freezes and arrests in force.
    pub active_orders: u64,
    /// Per day.
    pub days: Vec<DayView>,
}

/// A payment at or above the threshold: bank, amount, time, transaction — no names, no IINs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LargePaymentView {
    /// The transaction.
    pub tx: String,
    /// The payer's bank.
    pub bank: String,
    /// Amount (tiyn).
    pub amount_tiyn: u64,
    /// When (ms).
    pub at_ms: u64,
    /// When, Astana time.
    pub at: String,
    /// The command.
    pub kind: String,
    /// The payer's holder kind.
    pub payer_kind: HolderKindDto,
}

/// One move of marked funds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MarkedMoveView {
    /// The transaction.
    pub tx: String,
    /// Marking level reached (address markings).
    pub level: Option<u8>,
    /// Marked amount moved (tiyn).
    pub amount_tiyn: u64,
    /// Banks of the receivers.
    pub to_banks: Vec<String>,
}

/// Traceability of one marking, as its initiator's node reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MarkedReportView {
    /// `address:<reference>` or `parameter:<id>`.
    pub marking: String,
    /// The initiator's node.
    pub initiator_node: String,
    /// Total marked amount moved (tiyn).
    pub moved_tiyn: u64,
    /// The moves.
    pub moves: Vec<MarkedMoveView>,
}
