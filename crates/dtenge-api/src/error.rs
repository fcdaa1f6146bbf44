//! Every error is JSON naming the problem:
//! `{"error": {"code": "insufficient_funds", "message": "…"}}` with a status
//! that says whose problem it is (4xx: the caller's; 503: a service is down).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use dtenge_node::{NodeError, Refusal, RefusalCode};
use dtenge_oracle::OracleRefusal;

/// An API error.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine code.
    pub code: String,
    /// What was wrong and what to do.
    pub message: String,
    /// Seconds after which a retry may succeed (sent as `Retry-After`).
    pub retry_after: Option<u64>,
    /// The refusing service's own code (`ErrorDetail::reason`).
    pub reason: Option<String>,
}

pub use dtenge_api_types::{ErrorBody, ErrorDetail};

impl ApiError {
    /// An error with a status.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError { status, code: code.to_string(), message: message.into(), retry_after: None, reason: None }
    }

    /// 400.
    pub fn bad_request(code: &str, message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 401.
    pub fn unauthorized(code: &str, message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 403 with a specific code.
    pub fn forbidden_code(code: &str, message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 503: a service or a limit; retry later.
    pub fn unavailable(code: &str, message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    /// The same error, telling the caller when to retry.
    pub fn retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after = Some(seconds);
        self
    }

    /// The same error, naming the refusing service's own code.
    pub fn reason(mut self, code: &str) -> ApiError {
        self.reason = Some(code.to_string());
        self
    }

    /// 422.
    pub fn unprocessable(code: &str, message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = self.retry_after;
        let body = ErrorBody { error: ErrorDetail { code: self.code, message: self.message, reason: self.reason } };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(seconds));
        }
        response
    }
}

/// The one table from a node's refusal code to the HTTP status that says whose
/// problem it is.
pub fn status_of(code: RefusalCode) -> StatusCode {
    match code {
        RefusalCode::NotFound => StatusCode::NOT_FOUND,
        RefusalCode::Invalid | RefusalCode::Overflow => StatusCode::BAD_REQUEST,
        RefusalCode::Forbidden => StatusCode::FORBIDDEN,
        RefusalCode::FundsInFlight
        | RefusalCode::TokenBusy
        | RefusalCode::NotaryRejected
        | RefusalCode::AddressTaken => StatusCode::CONFLICT,
        RefusalCode::Unavailable | RefusalCode::Storage | RefusalCode::Busy => StatusCode::SERVICE_UNAVAILABLE,
        RefusalCode::InsufficientFunds
        | RefusalCode::TooFragmented
        | RefusalCode::NothingToSpend
        | RefusalCode::MarkingLimit
        | RefusalCode::SupplyOverflow
        | RefusalCode::DailyTotalOverflow
        | RefusalCode::AccountClosed
        | RefusalCode::KycNotVerified
        | RefusalCode::ClientSigns
        | RefusalCode::UnknownRecipient
        | RefusalCode::NotHostedHere
        | RefusalCode::Rule(_)
        | RefusalCode::OracleRefused
        | RefusalCode::LimitExceeded
        | RefusalCode::EnforcementOrder
        | RefusalCode::BalanceNotZero
        | RefusalCode::PayeeRefused
        | RefusalCode::BadReceipt
        | RefusalCode::Expired
        | RefusalCode::CbsRejected
        | RefusalCode::OperatorRejected => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> ApiError {
        let busy = refusal.code == RefusalCode::Busy;
        let error = ApiError::new(status_of(refusal.code), &refusal.code.to_string(), refusal.message);
        // A full queue empties within a second: the caller comes back then.
        if busy { error.retry_after(1) } else { error }
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> ApiError {
        let error = ApiError::from(e.refusal());
        match &e {
            NodeError::Oracle(refusal) => error.reason(refusal.code.code()),
            _ => error,
        }
    }
}

/// A refusal by the oracle: 403 when the caller may not write there, 422
/// (`oracle_refused`) otherwise.
impl From<OracleRefusal> for ApiError {
    fn from(refusal: OracleRefusal) -> ApiError {
        let reason = refusal.code.code();
        if refusal.code.is_permission() {
            ApiError::forbidden(refusal.message).reason(reason)
        } else {
            ApiError::unprocessable("oracle_refused", refusal.message).reason(reason)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_is_503_with_retry_after() {
        let busy = Refusal { code: RefusalCode::Busy, message: "queue full".into() };
        let response = ApiError::from(busy).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers().get(axum::http::header::RETRY_AFTER).map(|v| v.as_bytes()), Some(&b"1"[..]));
        let conflict = Refusal { code: RefusalCode::FundsInFlight, message: "in flight".into() };
        assert!(ApiError::from(conflict).into_response().headers().get(axum::http::header::RETRY_AFTER).is_none());
    }
}
