//! What every area shares: errors, statuses, pages and list filters, health.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The code of a request the authorisation table refuses for the caller's
/// participant kind (403).
pub const OPERATION_FORBIDDEN: &str = "operation_forbidden";

/// The JSON body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// An error's code and message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine code, e.g. `insufficient_funds`, `bad_signature`.
    pub code: String,
    /// What was wrong and what to do.
    pub message: String,
    /// When another service refused (`oracle_refused`): that service's own
    /// stable code, e.g. the oracle's `event_not_occurred` or `invoice_paid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A status as shown everywhere (SPEC §6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StatusView {
    /// `request_accepted`, `under_review`, `success` or `rejected`.
    pub status: String,
    /// Why, when rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The refusal's stable code (the code an immediate refusal is answered
    /// with, e.g. `account_closed`, `notary_rejected`; or one only a status
    /// carries: `expired`, `cbs_rejected`, `operator_rejected`); absent only
    /// for a rejection recorded before codes were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<String>,
}

/// A page of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Items in all pages.
    pub total: usize,
    /// This page, from 1.
    pub page: usize,
    /// Items per page.
    pub per_page: usize,
}

/// Paging and filters for lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page number from 1 (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<usize>,
    /// Items per page, 1-200 (default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_page: Option<usize>,
    /// Only items at or after this time (ms since epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_ms: Option<u64>,
    /// Only items before this time (ms since epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_ms: Option<u64>,
    /// Only items with this status (`request_accepted`, `under_review`, `success`, `rejected`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Only items of this type (e.g. `transfer`, `hold`, `issue`).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    #[param(rename = "type")]
    pub kind: Option<String>,
}

/// Items per page when a list query names none.
pub const PER_PAGE_DEFAULT: usize = 50;
/// Most items per page.
pub const PER_PAGE_MAX: usize = 200;

impl ListQuery {
    /// Whether any filter (period, status, type) is set.
    pub fn filters(&self) -> bool {
        self.from_ms.is_some() || self.to_ms.is_some() || self.status.is_some() || self.kind.is_some()
    }

    /// Whether a time lies in the requested period.
    pub fn in_period(&self, at_ms: u64) -> bool {
        self.from_ms.is_none_or(|f| at_ms >= f) && self.to_ms.is_none_or(|t| at_ms < t)
    }

    /// Whether a status matches the filter.
    pub fn status_matches(&self, status: &StatusView) -> bool {
        self.status.as_deref().is_none_or(|s| s == status.status)
    }

    /// Whether a type matches the filter.
    pub fn kind_matches(&self, kind: &str) -> bool {
        self.kind.as_deref().is_none_or(|k| k == kind)
    }
}

/// Health of the platform as a whole and of each service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok` when every service answers.
    pub status: String,
    /// Transactions the notary has committed.
    pub notary_committed: u64,
    /// Per participant node.
    pub nodes: Vec<NodeHealth>,
    /// The platform clock (ms since the epoch, UTC).
    pub now_ms: u64,
}

/// One node's health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NodeHealth {
    /// The node.
    pub id: String,
    /// Its DAs.
    pub accounts: usize,
    /// Tokens in its vault.
    pub tokens: usize,
    /// Its transactions not yet settled.
    pub in_flight: usize,
}

/// A request without fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Empty {}
