//! DT-backed stablecoins (SPEC §9): a licensed issuer mints and burns its
//! stablecoin against DT in its reserve, holders pay each other in it, and
//! anyone reads the oracle-attested proof of reserves.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::payments::Recipient;

/// A mint or a burn (`POST /api/v1/stablecoins/{code}/mint|burn`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SupplyChangeRequest {
    /// The licensed issuer's DA (on the caller's node).
    pub account: String,
    /// How much stablecoin is minted (the same DT go into the reserve) or
    /// burned (the same DT come back from it), in its smallest unit.
    pub amount_tiyn: u64,
    /// Purpose text (up to 140 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
}

/// A payment in a stablecoin (`POST /api/v1/stablecoins/{code}/transfers`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StablecoinTransferRequest {
    /// The paying DA (on the caller's node).
    pub from: String,
    /// One or several recipients; amounts in the stablecoin's smallest unit.
    pub to: Vec<Recipient>,
    /// Purpose text (up to 140 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memo: Option<String>,
}

/// A stablecoin's supply and reserve, as read from every node's vault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StablecoinView {
    /// The stablecoin's code.
    pub code: String,
    /// The licensed issuer's DA address (hex).
    pub issuer: String,
    /// Everything its holders hold, all nodes, in its smallest unit.
    pub supply_tiyn: u64,
    /// DT in its reserve, in tiyn.
    pub reserve_tiyn: u64,
    /// `reserve_tiyn ≥ supply_tiyn`.
    pub covered: bool,
    /// The supply as shown to people, `4 000,00`.
    pub supply: String,
    /// The reserve as shown to people.
    pub reserve: String,
}

/// Proof of reserves: the figures and the oracle's signature over them
/// (`GET /api/v1/stablecoins/{code}/reserves`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReservesView {
    /// The figures.
    pub stablecoin: StablecoinView,
    /// When the oracle signed them (ms).
    pub at_ms: u64,
    /// When, Astana time.
    pub at: String,
    /// The oracle's public key (hex), as in the participant registry.
    pub oracle: String,
    /// The 32 bytes the oracle signed (hex): SHA-256 under the domain
    /// `dtenge/reserves/v1` of the borsh report (code, supply, reserve) and
    /// the time.
    pub signing_message: String,
    /// The oracle's Ed25519 signature over `signing_message` (hex).
    pub signature: String,
    /// Whether the server verified the signature with the oracle's key.
    pub verified: bool,
}
