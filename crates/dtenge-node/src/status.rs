//! Where a request or transaction stands, as users see it: the one word the
//! node's records, its conversion requests and the API share.

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_types::TxId;
use serde::{Deserialize, Serialize};

/// Status of a request or transaction as users see it (SPEC §6).
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    /// Received and recorded.
    RequestAccepted,
    /// Waiting for NBK approval, a checker, or the notary.
    UnderReview,
    /// Done.
    Success,
    /// Refused, with the reason.
    Rejected {
        /// Why.
        reason: String,
    },
}

/// What became of an operation's transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxOutcome {
    /// The transaction.
    pub tx: TxId,
    /// Where it stands (Success once committed).
    pub status: Status,
    /// The notary's commit position, once committed.
    pub notary_seq: Option<u64>,
}
