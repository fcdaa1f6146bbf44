//! Why a node refused, as other services receive it: a stable code to decide
//! on and a message for people.
//!
//! Every [`NodeError`] has a [`RefusalCode`]; a refusal that crosses the wire
//! ([`crate::service::NodeAnswer::Refused`], [`crate::service::PeerAnswer::Refused`])
//! carries the code, never only text, so callers (another node, the API, the
//! simulation) decide on the code. The API turns a code into an HTTP status
//! through one table (`dtenge-api`'s `error.rs`).
//!
//! Stability: a variant is only ever appended (its position is its wire
//! encoding) and a code's text never changes.

use borsh::{BorshDeserialize, BorshSerialize};

use crate::NodeError;

/// What a refusal is, as a stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize)]
pub enum RefusalCode {
    /// Not enough unreserved funds of the needed kind.
    InsufficientFunds,
    /// Enough funds, but part is being spent by payments in flight.
    FundsInFlight,
    /// Funds exist but in more tokens than one transaction may consume.
    TooFragmented,
    /// No such token or DA here.
    NotFound,
    /// A token another transaction in flight is consuming.
    TokenBusy,
    /// Nothing of the right kind to spend.
    NothingToSpend,
    /// A marking level's remaining limit is too low.
    MarkingLimit,
    /// The request is malformed.
    Invalid,
    /// A sum overflowed.
    Overflow,
    /// An issue would take the supply past the largest amount.
    SupplyOverflow,
    /// A DA's day total would pass the largest amount.
    DailyTotalOverflow,
    /// The DA is closed.
    AccountClosed,
    /// The DA's holder is not identified yet.
    KycNotVerified,
    /// The client holds the key and must sign.
    ClientSigns,
    /// The recipient address is registered nowhere.
    UnknownRecipient,
    /// The address is registered to another node.
    NotHostedHere,
    /// The kernel refused the transaction under this rule
    /// (`dtenge_ledger::Rejection::code`).
    Rule(u16),
    /// The notary refused the transaction (a conflict).
    NotaryRejected,
    /// The oracle refused.
    OracleRefused,
    /// A service is unreachable; retry later.
    Unavailable,
    /// Storage failed; retry later.
    Storage,
    /// A KYC-tier limit would be broken.
    LimitExceeded,
    /// An enforcement order forbids it.
    EnforcementOrder,
    /// The DA still holds money.
    BalanceNotZero,
    /// The caller may not do this.
    Forbidden,
    /// The payee's bank refused the incoming payment.
    PayeeRefused,
    /// A delivered transaction's notary receipt does not verify.
    BadReceipt,
    /// The address belongs to another node's DA.
    AddressTaken,
    /// The node's bounded queue for this stage is full; retry shortly.
    Busy,
    /// A prepared transaction was not committed within its time window
    /// (the status a payment ends in, never an immediate answer).
    Expired,
    /// The core banking system refused a conversion (its words follow; the
    /// status a conversion ends in, never an immediate answer).
    CbsRejected,
    /// An NBK operator rejected a conversion under review (their words
    /// follow; a status, never an immediate answer).
    OperatorRejected,
}

impl RefusalCode {
    /// The code's class as stable text (`snake_case`); every kernel rule is
    /// `rule` (its [`Display`](std::fmt::Display) names the rule: `rule_802`).
    pub fn code(self) -> &'static str {
        match self {
            RefusalCode::InsufficientFunds => "insufficient_funds",
            RefusalCode::FundsInFlight => "funds_in_flight",
            RefusalCode::TooFragmented => "too_fragmented",
            RefusalCode::NotFound => "not_found",
            RefusalCode::TokenBusy => "token_busy",
            RefusalCode::NothingToSpend => "nothing_to_spend",
            RefusalCode::MarkingLimit => "marking_limit",
            RefusalCode::Invalid => "invalid",
            RefusalCode::Overflow => "overflow",
            RefusalCode::SupplyOverflow => "supply_overflow",
            RefusalCode::DailyTotalOverflow => "daily_total_overflow",
            RefusalCode::AccountClosed => "account_closed",
            RefusalCode::KycNotVerified => "kyc_not_verified",
            RefusalCode::ClientSigns => "client_signs",
            RefusalCode::UnknownRecipient => "unknown_recipient",
            RefusalCode::NotHostedHere => "not_hosted_here",
            RefusalCode::Rule(_) => "rule",
            RefusalCode::NotaryRejected => "notary_rejected",
            RefusalCode::OracleRefused => "oracle_refused",
            RefusalCode::Unavailable => "unavailable",
            RefusalCode::Storage => "storage",
            RefusalCode::LimitExceeded => "limit_exceeded",
            RefusalCode::EnforcementOrder => "enforcement_order",
            RefusalCode::BalanceNotZero => "balance_not_zero",
            RefusalCode::Forbidden => "forbidden",
            RefusalCode::PayeeRefused => "payee_refused",
            RefusalCode::BadReceipt => "bad_receipt",
            RefusalCode::AddressTaken => "address_taken",
            RefusalCode::Busy => "busy",
            RefusalCode::Expired => "expired",
            RefusalCode::CbsRejected => "cbs_rejected",
            RefusalCode::OperatorRejected => "operator_rejected",
        }
    }

    /// Whether a retry of the same request may succeed once a service is
    /// back (nothing about the request itself was wrong).
    pub fn is_transient(self) -> bool {
        matches!(self, RefusalCode::Unavailable | RefusalCode::Storage | RefusalCode::Busy)
    }
}

impl std::fmt::Display for RefusalCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RefusalCode::Rule(n) => write!(f, "rule_{n}"),
            other => f.write_str(other.code()),
        }
    }
}

/// A refusal as it crosses the wire.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    /// What was refused.
    pub code: RefusalCode,
    /// What was wrong and what to do, for people.
    pub message: String,
}

impl NodeError {
    /// The stable code of this refusal.
    pub fn code(&self) -> RefusalCode {
        match self {
            NodeError::InsufficientFunds { .. } => RefusalCode::InsufficientFunds,
            NodeError::FundsInFlight { .. } => RefusalCode::FundsInFlight,
            NodeError::TooFragmented { .. } => RefusalCode::TooFragmented,
            NodeError::UnknownToken(_) | NodeError::UnknownAccount(_) => RefusalCode::NotFound,
            NodeError::TokenBusy(_) => RefusalCode::TokenBusy,
            NodeError::NothingToSpend => RefusalCode::NothingToSpend,
            NodeError::MarkingLimit { .. } => RefusalCode::MarkingLimit,
            NodeError::TooManyOutputs(_) | NodeError::Types(_) | NodeError::Invalid(_) => RefusalCode::Invalid,
            NodeError::Overflow => RefusalCode::Overflow,
            NodeError::SupplyOverflow { .. } => RefusalCode::SupplyOverflow,
            NodeError::DailyTotalOverflow { .. } => RefusalCode::DailyTotalOverflow,
            NodeError::AccountClosed(_) => RefusalCode::AccountClosed,
            NodeError::KycNotVerified(_) => RefusalCode::KycNotVerified,
            NodeError::ClientSigns(_) => RefusalCode::ClientSigns,
            NodeError::NotHostedHere(_) => RefusalCode::NotHostedHere,
            NodeError::UnknownRecipient(_) => RefusalCode::UnknownRecipient,
            NodeError::Rejected(r) => RefusalCode::Rule(r.code()),
            NodeError::NotaryRejected(_) => RefusalCode::NotaryRejected,
            NodeError::Oracle(_) => RefusalCode::OracleRefused,
            NodeError::Unavailable(_) => RefusalCode::Unavailable,
            NodeError::Storage(_) => RefusalCode::Storage,
            NodeError::LimitExceeded { .. } => RefusalCode::LimitExceeded,
            NodeError::Enforcement(_) => RefusalCode::EnforcementOrder,
            NodeError::BalanceNotZero { .. } => RefusalCode::BalanceNotZero,
            NodeError::Forbidden(_) => RefusalCode::Forbidden,
            NodeError::PayeeRefused { .. } => RefusalCode::PayeeRefused,
            NodeError::RefusedBy { refusal, .. } => refusal.code,
            NodeError::BadReceipt(_) => RefusalCode::BadReceipt,
            NodeError::AddressTaken { .. } => RefusalCode::AddressTaken,
            NodeError::Busy(_) => RefusalCode::Busy,
        }
    }

    /// The refusal as it crosses the wire.
    pub fn refusal(&self) -> Refusal {
        Refusal { code: self.code(), message: self.to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_crosses_the_wire_with_its_code() {
        let error =
            NodeError::FundsInFlight { requested: dtenge_types::Amount::ZERO, available: dtenge_types::Amount::ZERO };
        let wire = borsh::to_vec(&error.refusal()).unwrap_or_default();
        let back: Refusal = dtenge_types::encoding::decode(&wire, 1024).expect("decodes");
        assert_eq!(back.code, RefusalCode::FundsInFlight);
        assert_eq!(back.code.to_string(), "funds_in_flight");
        assert_eq!(back.message, error.to_string());
    }

    #[test]
    fn a_kernel_rule_keeps_its_number() {
        assert_eq!(RefusalCode::Rule(802).to_string(), "rule_802");
        assert_eq!(RefusalCode::Rule(802).code(), "rule");
    }
}
