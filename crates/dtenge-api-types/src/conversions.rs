//! Conversion between non-cash tenge and DT (STB ↔ NBK through the CBS), and
//! NBK's view of the platform: supply and volumes by day.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::common::StatusView;

/// Which way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConversionKindDto {
    /// Non-cash tenge → DT.
    Issue,
    /// DT → non-cash tenge.
    Redeem,
}

/// A conversion request by a bank (`POST /api/v1/conversions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConversionRequestBody {
    /// Which way.
    pub kind: ConversionKindDto,
    /// How much, in tiyn.
    pub amount_tiyn: u64,
}

/// A conversion request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConversionView {
    /// `NBK-REQ-000001`.
    pub id: String,
    /// Which way.
    pub kind: ConversionKindDto,
    /// The bank.
    pub bank: String,
    /// Amount in tiyn.
    pub amount_tiyn: u64,
    /// Amount as shown.
    pub amount: String,
    /// Requested (ms).
    pub created_at_ms: u64,
    /// Requested, Astana time.
    pub created_at: String,
    /// Status (SPEC §6).
    pub status: StatusView,
    /// CBS confirmation reference, once imported.
    #[serde(default)]
    pub cbs_reference: Option<String>,
    /// The issue or redeem transaction.
    #[serde(default)]
    pub settled_tx: Option<String>,
    /// Who decided.
    #[serde(default)]
    pub decided_by: Option<String>,
}

/// An operator's decision (`POST /api/v1/conversions/{id}/approve|reject`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Decision {
    /// The operator's name (recorded).
    pub operator: String,
    /// Why (required to reject).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// DT in circulation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SupplyView {
    /// Per currency: total held in every node's vaults, in tiyn.
    pub supply_tiyn: BTreeMap<String, u64>,
    /// Per node: DT held by its DAs, in tiyn.
    pub by_node_tiyn: BTreeMap<String, u64>,
    /// Transactions the notary has committed.
    pub notary_committed: u64,
    /// Unspent commitments at the notary.
    pub notary_unspent: usize,
}

/// Volume of one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DayVolume {
    /// The day, Astana time (`YYYY-MM-DD`).
    pub day: String,
    /// Committed transactions built that day, all nodes.
    pub transactions: u64,
    /// Value moved (sum of outgoing amounts), in tiyn.
    pub volume_tiyn: u64,
}
